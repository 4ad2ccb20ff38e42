//! Watches (`kube::runtime::watcher`) over every kind and namespace the agent applied to.
//! They feed status and drift: the agent never polls for an object's state.
//!
//! One watch per (resource, namespace) serves all objects there; events for objects the agent
//! does not track are dropped by the reconciler. After a watch restarts, the objects listed
//! again are compared with those tracked, so an object deleted while the watch was down is
//! noticed too (`Relisted`).

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::apply::Target;

/// Which watch an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
}

impl Scope {
    pub fn of(target: &Target) -> Scope {
        Scope {
            group: target.resource.group.clone(),
            version: target.resource.version.clone(),
            plural: target.resource.plural.clone(),
            namespace: target.namespace.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum WatchEvent {
    Applied(Value),
    Deleted(Value),
    /// The watch listed everything again; these (namespace, name) pairs exist.
    Relisted(HashSet<(Option<String>, String)>),
}

/// Sent to the reconciler.
#[derive(Debug, Clone)]
pub struct Observed {
    pub scope: Scope,
    pub event: WatchEvent,
}

/// The running watches.
pub struct Watches {
    client: Client,
    sink: UnboundedSender<Observed>,
    running: HashMap<Scope, JoinHandle<()>>,
}

impl Watches {
    pub fn new(client: Client, sink: UnboundedSender<Observed>) -> Watches {
        Watches { client, sink, running: HashMap::new() }
    }

    /// Starts a watch over the target's resource and namespace unless one runs already.
    pub fn ensure(&mut self, target: &Target) {
        let scope = Scope::of(target);
        if self.running.contains_key(&scope) {
            return;
        }
        let api = target.api(&self.client);
        let sink = self.sink.clone();
        let task_scope = scope.clone();
        let task = tokio::spawn(async move {
            tracing::debug!(resource = %task_scope.plural, namespace = ?task_scope.namespace, "watch started");
            // The default backoff retries a failed watch forever, growing the wait up to a cap.
            let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
            let mut listing: Option<HashSet<(Option<String>, String)>> = None;
            while let Some(event) = stream.next().await {
                let event = match event {
                    Ok(Event::Init) => {
                        listing = Some(HashSet::new());
                        continue;
                    }
                    Ok(Event::InitApply(object)) => {
                        if let Some(seen) = listing.as_mut() {
                            seen.insert((object.namespace(), object.name_any()));
                        }
                        WatchEvent::Applied(serde_json::to_value(&object).unwrap_or(Value::Null))
                    }
                    Ok(Event::InitDone) => WatchEvent::Relisted(listing.take().unwrap_or_default()),
                    Ok(Event::Apply(object)) => {
                        WatchEvent::Applied(serde_json::to_value(&object).unwrap_or(Value::Null))
                    }
                    Ok(Event::Delete(object)) => {
                        WatchEvent::Deleted(serde_json::to_value(&object).unwrap_or(Value::Null))
                    }
                    Err(err) => {
                        tracing::warn!(resource = %task_scope.plural, namespace = ?task_scope.namespace, error = %err,
                            "watch failed; retrying with backoff");
                        continue;
                    }
                };
                if sink.send(Observed { scope: task_scope.clone(), event }).is_err() {
                    break;
                }
            }
        });
        self.running.insert(scope, task);
    }

    pub fn stop(&mut self) {
        for (_, task) in self.running.drain() {
            task.abort();
        }
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        self.stop();
    }
}
