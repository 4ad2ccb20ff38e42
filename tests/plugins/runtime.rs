//! The agent's and the transport's extension points through the runtime API, with real
//! components: status feedback, codecs and reconcile hooks, including recovery of pooled
//! instances after a trap and policies chosen by label.

use std::sync::Arc;

use maestro_plugins::calls::CallError;
use maestro_plugins::policy::PolicySpec;
use maestro_plugins::types::{Applied, BeforeApplyOutcome, BeforeDeleteOutcome, HealthState, HookBundle, Value as Fv};
use maestro_plugins::{PluginRuntime, Subject};
use serde_json::{Value, json};

use crate::plugin_config;

async fn runtime(plugins: &[&str], policies: Value) -> (Arc<PluginRuntime>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let runtime = PluginRuntime::start(plugin_config(dir.path(), plugins)).await.expect("runtime starts");
    let policies: Vec<PolicySpec> = serde_json::from_value(policies).expect("policies parse");
    for policy in &policies {
        assert_eq!(runtime.check_policy(policy.clone()).await, Vec::<(String, String)>::new(), "{}", policy.name);
    }
    runtime.set_stored_policies(policies);
    (runtime, dir)
}

fn subject(consumer: &str, labels: &[(&str, &str)]) -> Subject {
    Subject {
        consumer: consumer.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Subject::default()
    }
}

fn live(ready: i64, trap: bool) -> Value {
    let mut live = json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"image": "nginx:1.27"}]}}},
                          "status": {"readyReplicas": ready}});
    if trap {
        live["metadata"]["annotations"] = json!({"test/trap": "yes"});
    }
    live
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_feedback_reports_values_and_health_and_recovers_from_a_trap() {
    let (rt, _dir) = runtime(
        &["feedback-basic"],
        json!([
            {"name": "by-label", "selector": {"labels": {"fleet": "web"}}, "status-feedback": {"plugins": [{"plugin": "feedback-basic"}]}},
            {"name": "strict", "selector": {"consumers": ["strict"]},
             "status-feedback": {"failure_mode": "fail-closed", "plugins": [{"plugin": "feedback-basic"}]}}
        ]),
    )
    .await;
    let desired = json!({"spec": {"replicas": 3}});
    let web = subject("c1", &[("fleet", "web")]);

    let report = rt.status_feedback(web.clone(), live(2, false), desired.clone()).await.expect("report");
    assert_eq!(report.values.len(), 2);
    assert_eq!(report.values[0].name, "readyReplicas");
    assert!(matches!(report.values[0].value, Fv::Integer(2)));
    assert!(matches!(&report.values[1].value, Fv::Text(image) if image == "nginx:1.27"));
    let health = report.health.expect("health");
    assert_eq!(health.state, HealthState::Progressing);
    assert_eq!(health.message, "2/3 replicas ready");

    // A consumer without the label gets no plugin at all.
    let other =
        rt.status_feedback(subject("c2", &[("fleet", "db")]), live(2, false), desired.clone()).await.expect("report");
    assert!(other.values.is_empty() && other.health.is_none());

    // Fail-open (the default here): a trap yields no report, and the next call is served.
    let trapped = rt.status_feedback(web.clone(), live(3, true), desired.clone()).await.expect("fail-open");
    assert!(trapped.values.is_empty());
    let healthy = rt.status_feedback(web.clone(), live(3, false), desired.clone()).await.expect("report");
    assert_eq!(healthy.health.expect("health").state, HealthState::Healthy);

    // Fail-closed: the trap is the answer, and still the next call is served.
    let strict = subject("strict", &[]);
    let failure = rt.status_feedback(strict.clone(), live(1, true), desired.clone()).await.expect_err("fail-closed");
    assert_eq!(failure.plugin, "feedback-basic");
    assert!(matches!(failure.error, CallError::Trap(_)), "{failure}");
    for _ in 0..3 {
        assert!(
            rt.status_feedback(strict.clone(), live(1, false), desired.clone()).await.is_ok(),
            "a trap never poisons later calls"
        );
    }
    assert!(rt.plugin("feedback-basic").expect("loaded").warm_instances() >= 1, "instances are reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codecs_encode_and_decode_round_trip_and_refuse_what_they_did_not_encode() {
    let (rt, _dir) = runtime(
        &["codec-basic"],
        json!([{"name": "xor", "codec": {"plugins": [{"plugin": "codec-basic", "settings": {"key": 42}}]}}]),
    )
    .await;
    let who = subject("c1", &[]);
    let data = br#"{"manifests":[{"kind":"ConfigMap"}]}"#.to_vec();
    let encoded = rt.encode(who.clone(), data.clone()).await.expect("encode");
    assert_eq!(encoded.codecs, ["codec-basic"]);
    assert!(encoded.data.starts_with(b"mz1:"));
    assert_ne!(&encoded.data[4..], &data[..]);
    assert_eq!(rt.decode(who.clone(), encoded.codecs.clone(), encoded.data.clone()).await.expect("decode"), data);

    let refused =
        rt.decode(who.clone(), encoded.codecs.clone(), b"plain".to_vec()).await.expect_err("not encoded by it");
    assert!(matches!(&refused.error, CallError::Plugin(m) if m.contains("no mz1: prefix")), "{refused}");
    let unknown = rt.decode(who.clone(), vec!["other".into()], encoded.data.clone()).await.expect_err("unknown codec");
    assert!(matches!(unknown.error, CallError::Missing));

    // Codecs fail closed by default; a trapped instance is replaced, not reused.
    assert!(matches!(rt.encode(who.clone(), b"trap".to_vec()).await.expect_err("trap").error, CallError::Trap(_)));
    for _ in 0..3 {
        let again = rt.encode(who.clone(), data.clone()).await.expect("encode");
        assert_eq!(rt.decode(who.clone(), again.codecs, again.data).await.expect("decode"), data);
    }
}

fn hook_bundle(manifests: &[Value]) -> HookBundle {
    HookBundle { manifests: manifests.iter().map(Value::to_string).collect(), updated_unix_ms: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_hooks_proceed_skip_requeue_and_fail_as_the_plugin_decides() {
    let (rt, _dir) = runtime(
        &["hooks-basic"],
        json!([{"name": "hooks", "reconcile-hook": {"plugins": [{"plugin": "hooks-basic", "settings": {"requeue_ms": 250}}]}}]),
    )
    .await;
    let who = subject("c1", &[]);
    let manifest = json!({"kind": "ConfigMap", "metadata": {"name": "a"}});
    match rt.before_apply(who.clone(), hook_bundle(std::slice::from_ref(&manifest))).await {
        BeforeApplyOutcome::Proceed(manifests) => {
            let changed: Value = serde_json::from_str(&manifests[0]).expect("json");
            assert_eq!(changed["metadata"]["labels"]["maestro.io/hooked"], "true");
        }
        other => panic!("expected proceed, got {other:?}"),
    }
    assert!(
        matches!(rt.before_apply(who.clone(), hook_bundle(&[])).await, BeforeApplyOutcome::Skip(reason) if reason == "empty bundle")
    );
    let frozen = subject("c1", &[("frozen", "true")]);
    assert!(matches!(
        rt.before_apply(frozen, hook_bundle(std::slice::from_ref(&manifest))).await,
        BeforeApplyOutcome::Requeue(250)
    ));

    let results = [
        Applied { index: 0, ok: true, message: String::new() },
        Applied { index: 1, ok: false, message: "conflict".into() },
    ];
    let error = rt
        .after_apply(who.clone(), hook_bundle(std::slice::from_ref(&manifest)), results.to_vec())
        .await
        .expect_err("a failure is reported");
    assert!(error.contains("manifest 1 failed: conflict"), "{error}");
    assert!(
        rt.after_apply(who.clone(), hook_bundle(std::slice::from_ref(&manifest)), results[..1].to_vec()).await.is_ok()
    );

    let protected = json!({"kind": "ConfigMap", "metadata": {"name": "a", "annotations": {"maestro.io/protect": "x"}}});
    assert!(matches!(rt.before_delete(who.clone(), hook_bundle(&[protected])).await, BeforeDeleteOutcome::Fail(_)));
    assert!(matches!(rt.before_delete(who.clone(), hook_bundle(&[manifest])).await, BeforeDeleteOutcome::Proceed));
}
