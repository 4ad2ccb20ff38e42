//! Watch streams: newline-delimited `{"type": ..., "object": ...}` events from a
//! resourceVersion, with label and field selectors, bookmarks and `timeoutSeconds`, ending
//! when the cluster stops. A resourceVersion older than the retained history gets one
//! `ERROR` event carrying a 410 `Expired` Status, as a real server sends it, and `kube`'s
//! watcher then lists again.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::ClusterState;
use super::discovery::ResourceDef;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Event, EventKind, ObjKey, WatchStart};
use super::table;
use super::target::{Target, present};

/// Without `timeoutSeconds` a watch lasts 30 minutes, like the real server's default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Watcher {
    def: ResourceDef,
    version: String,
    labels: LabelSelector,
    fields: FieldSelector,
    bookmarks: bool,
    send_initial: bool,
    timeout: Duration,
    /// Stream `kubectl get -w` Table rows instead of objects (`full`: with whole objects).
    table: Option<bool>,
    /// Events at or below this resourceVersion were already seen by the client.
    floor: u64,
}

impl Watcher {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// What this watcher reports for a change, if anything: an object leaving the selection
    /// is DELETED for it, one entering is ADDED.
    fn translate<'a>(&self, event: &'a Event) -> Option<(&'static str, &'a Value)> {
        let now = self.matches(&event.object);
        let before = event.old.as_ref().is_some_and(|o| self.matches(o));
        let kind = match event.kind {
            EventKind::Added => now.then_some("ADDED"),
            EventKind::Deleted => (now || before).then_some("DELETED"),
            EventKind::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }?;
        Some((kind, &event.object))
    }

    fn line(&self, kind: &str, obj: &Value) -> Bytes {
        let obj = present(&self.def, &self.version, obj.clone());
        let obj = match self.table {
            Some(full) if kind != "BOOKMARK" && kind != "ERROR" => {
                let rv = obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""));
                table::render(&self.def, &[obj], json!({"resourceVersion": rv}), full)
            }
            _ => obj,
        };
        let event = json!({"type": kind, "object": obj});
        let mut bytes = serde_json::to_vec(&event).unwrap_or_default();
        bytes.push(b'\n');
        Bytes::from(bytes)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.def.kind, "apiVersion": self.def.api_version(&self.version), "metadata": metadata});
        self.line("BOOKMARK", &obj)
    }
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| v == "true" || v == "1")
}

/// Starts a watch for `target` and answers with its stream.
pub(crate) fn serve(
    sim: Arc<ClusterState>,
    target: &Target,
    query: &HashMap<String, String>,
    accept: &str,
) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
    let timeout = match query.get("timeoutSeconds") {
        Some(t) => {
            Duration::from_secs(t.parse().map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))?)
        }
        None => DEFAULT_TIMEOUT,
    };
    let send_initial = flag(query, "sendInitialEvents");
    let rv = query.get("resourceVersion").map_or("", String::as_str);
    let from = if send_initial || rv.is_empty() || rv == "0" {
        None
    } else {
        Some(rv.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?)
    };
    let rid = target.def.rid();
    let namespace = target.namespace.clone();
    let filter = move |k: &ObjKey| k.rid == rid && namespace.as_ref().is_none_or(|ns| k.namespace == *ns);
    let mut watcher = Watcher {
        def: target.def.clone(),
        version: target.version.clone(),
        labels,
        fields,
        bookmarks: flag(query, "allowWatchBookmarks"),
        send_initial,
        timeout,
        table: table::wanted(accept).then(|| query.get("includeObject").is_some_and(|i| i == "Object")),
        floor: 0,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    match sim.store.watch(from, filter.clone()) {
        Err(expired) => {
            let status = ApiError::expired(expired.requested, expired.oldest).to_status();
            let line = watcher.line("ERROR", &status);
            let _ = tx.try_send(line);
        }
        Ok(start) => {
            watcher.floor = from.unwrap_or(start.rv);
            tokio::spawn(run(sim, watcher, start, filter, tx));
        }
    }
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<Bytes, Infallible>(bytes), rx))
    }));
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn run(
    sim: Arc<ClusterState>,
    watcher: Watcher,
    start: WatchStart,
    filter: impl Fn(&ObjKey) -> bool,
    tx: mpsc::Sender<Bytes>,
) {
    let WatchStart { initial, backlog, rv, mut rx } = start;
    let mut last_rv = rv.max(watcher.floor);
    for obj in initial.iter().filter(|o| watcher.matches(o)) {
        if tx.send(watcher.line("ADDED", obj)).await.is_err() {
            return;
        }
    }
    if watcher.send_initial && tx.send(watcher.bookmark(last_rv, true)).await.is_err() {
        return;
    }
    for event in &backlog {
        if let Some((kind, obj)) = watcher.translate(event)
            && tx.send(watcher.line(kind, obj)).await.is_err()
        {
            return;
        }
    }
    let mut stop = sim.stop.clone();
    let deadline = tokio::time::sleep(watcher.timeout);
    tokio::pin!(deadline);
    let mut ticks = tokio::time::interval(sim.options.bookmark_interval.max(Duration::from_millis(10)));
    ticks.tick().await;
    loop {
        let line = tokio::select! {
            () = &mut deadline => return,
            _ = stop.changed() => return,
            _ = ticks.tick(), if watcher.bookmarks => Some(watcher.bookmark(last_rv, false)),
            received = rx.recv() => match received {
                Ok(event) if event.rv <= watcher.floor => None,
                Ok(event) => {
                    // resourceVersions are global, so any later event moves the bookmark on.
                    last_rv = event.rv;
                    if filter(&event.key) {
                        watcher.translate(&event).map(|(kind, obj)| watcher.line(kind, obj))
                    } else {
                        None
                    }
                }
                // A watcher too slow for the channel is closed, as the real server closes
                // watchers that fall behind; the client resumes from its last resourceVersion.
                Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
            },
        };
        if let Some(line) = line
            && tx.send(line).await.is_err()
        {
            return;
        }
    }
}
