//! Watches: order, resuming from a resourceVersion, expiry, and `kube::runtime::watcher`.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use maestro_sim::SimOptions;
use serde_json::json;

use crate::Sim;

fn config_map(name: &str) -> ConfigMap {
    crate::json(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "w"}}, "data": {"v": "1"}}),
    )
}

/// The next event that is not a bookmark, within 30 seconds.
async fn next_event<S>(stream: &mut S) -> WatchEvent<ConfigMap>
where
    S: futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
        match next {
            Ok(Some(Ok(WatchEvent::Bookmark(_)))) => continue,
            Ok(Some(Ok(event))) => return event,
            other => panic!("no watch event: {other:?}"),
        }
    }
}

fn describe(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
        WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
        WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
        WatchEvent::Bookmark(_) => "BOOKMARK".into(),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

#[tokio::test]
async fn a_watch_sees_added_modified_deleted_in_order_and_resumes_from_a_resource_version() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let start = api.list(&Default::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let from = start.metadata.resource_version.unwrap_or_default();
    let mut stream = api.watch(&WatchParams::default(), &from).await.unwrap_or_else(|e| panic!("{e}")).boxed();

    api.create(&PostParams::default(), &config_map("a")).await.unwrap_or_else(|e| panic!("{e}"));
    let modified = api
        .patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    api.delete("a", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&next_event(&mut stream).await));
    }
    assert_eq!(seen, ["ADDED a", "MODIFIED a", "DELETED a"]);

    // Resuming after the modification replays only what came later.
    let mut resumed = api
        .watch(&WatchParams::default(), &modified.resource_version().unwrap_or_default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .boxed();
    assert_eq!(describe(&next_event(&mut resumed).await), "DELETED a");
    s.stop().await;
}

#[tokio::test]
async fn a_watch_filters_by_label_and_field_selectors() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let mut by_name = api
        .watch(&WatchParams::default().fields("metadata.name=b"), "0")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .boxed();
    let mut by_label =
        api.watch(&WatchParams::default().labels("app=other"), "0").await.unwrap_or_else(|e| panic!("{e}")).boxed();
    api.create(&PostParams::default(), &config_map("a")).await.unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &config_map("b")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(describe(&next_event(&mut by_name).await), "ADDED b");
    // Relabelling brings "a" into the label watch.
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(describe(&next_event(&mut by_label).await), "ADDED a");
    s.stop().await;
}

#[tokio::test]
async fn a_watch_from_a_resource_version_older_than_the_history_gets_410_expired() {
    let s = Sim::start_with(SimOptions { watch_history: 3, ..SimOptions::default() }).await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let old = api.create(&PostParams::default(), &config_map("first")).await.unwrap_or_else(|e| panic!("{e}"));
    for i in 0..5 {
        api.create(&PostParams::default(), &config_map(&format!("c{i}"))).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut stream = api
        .watch(&WatchParams::default(), &old.resource_version().unwrap_or_default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(status) => assert_eq!((status.code, status.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410 Expired, got {}", describe(&other)),
    }
    s.stop().await;
}

#[tokio::test]
async fn the_kube_runtime_watcher_follows_objects_in_both_list_modes() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    api.create(&PostParams::default(), &config_map("before")).await.unwrap_or_else(|e| panic!("{e}"));
    for config in [watcher::Config::default().page_size(1), watcher::Config::default().streaming_lists()] {
        let mut names = watcher(api.clone(), config).applied_objects().map_ok(|o| o.name_any()).boxed();
        let first = tokio::time::timeout(Duration::from_secs(30), names.try_next()).await;
        assert!(matches!(first, Ok(Ok(Some(ref n))) if n == "before" || n == "after"), "{first:?}");
        if api.get("after").await.is_err() {
            api.create(&PostParams::default(), &config_map("after")).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let mut seen = vec![first.ok().and_then(Result::ok).flatten().unwrap_or_default()];
        while !seen.iter().any(|n| n == "after") {
            let next = tokio::time::timeout(Duration::from_secs(30), names.try_next()).await;
            seen.push(next.ok().and_then(Result::ok).flatten().unwrap_or_else(|| panic!("watcher ended: {seen:?}")));
        }
    }
    s.stop().await;
}
