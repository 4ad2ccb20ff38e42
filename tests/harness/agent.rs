//! A test work agent that speaks MQTT directly through `maestro_wire::agent_link`: it
//! applies every spec event in memory (dropping stale ones, as OCM agents do), answers at once
//! with a status (`Applied`, or `Deleted` for a delete), resyncs on every (re)connect and
//! answers the hub's status resync requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maestro_wire::agent_link::AgentLink;
use maestro_wire::mqtt::MqttConfig;
use maestro_wire::wire::{
    self, EventAction, ManifestBundle, ManifestBundleStatus, ResourceVersion, ResourceVersionList, SpecEvent,
    StatusReport, WorkEvent,
};
use serde_json::json;
use tokio::task::JoinHandle;

/// What the agent holds for one resource.
#[derive(Debug, Clone)]
pub struct Applied {
    pub version: i64,
    pub bundle: ManifestBundle,
    pub deleted: bool,
    pub status: ManifestBundleStatus,
}

/// Everything the agent saw and holds; survives a restart through [`TestAgent::stop`].
#[derive(Debug, Clone, Default)]
pub struct AgentState {
    pub applied: HashMap<String, Applied>,
    /// Every spec event received, stale ones included: (resource id, version, action).
    pub spec_events: Vec<(String, i64, EventAction)>,
    pub stale_dropped: usize,
    pub status_resyncs: usize,
    pub resyncs_sent: usize,
}

impl AgentState {
    pub fn live_versions(&self) -> ResourceVersionList {
        let mut versions: Vec<ResourceVersion> = self
            .applied
            .iter()
            .filter(|(_, a)| !a.deleted)
            .map(|(id, a)| ResourceVersion { resource_id: id.clone(), resource_version: a.version })
            .collect();
        versions.sort_by(|a, b| a.resource_id.cmp(&b.resource_id));
        ResourceVersionList { resource_versions: versions }
    }
}

pub struct TestAgent {
    pub consumer: String,
    state: Arc<Mutex<AgentState>>,
    task: JoinHandle<AgentLink>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// A Deployment's status as an agent with `readyReplicas` feedback reports it.
pub fn applied_status(ready_replicas: i64) -> ManifestBundleStatus {
    let feedback = json!({"readyReplicas": ready_replicas}).to_string();
    ManifestBundleStatus {
        manifest_bundle: None,
        conditions: vec![json!({"type": "Applied", "status": "True", "reason": "AppliedManifestWorkComplete"})],
        resource_status: vec![json!({
            "resourceMeta": {"ordinal": 0},
            "statusFeedback": {"values": [{"name": "status", "fieldValue": {"type": "JsonRaw", "jsonRaw": feedback}}]},
            "conditions": [{"type": "Applied", "status": "True"}, {"type": "Available", "status": "True"}],
        })],
    }
}

/// A bundle's status once its objects are gone.
pub fn deleted_status() -> ManifestBundleStatus {
    ManifestBundleStatus {
        conditions: vec![json!({"type": "Deleted", "status": "True", "reason": "ManifestsDeleted"})],
        ..Default::default()
    }
}

impl TestAgent {
    pub async fn start(url: &str, source: &str, consumer: &str) -> TestAgent {
        Self::start_with_state(url, source, consumer, AgentState::default()).await
    }

    /// Starts an agent holding what an earlier run held (as after a restart).
    pub async fn start_with_state(url: &str, source: &str, consumer: &str, state: AgentState) -> TestAgent {
        Self::start_with_config(MqttConfig::new(url, ""), source, consumer, state).await
    }

    /// Starts an agent with connection settings of its own (credentials, TLS).
    pub async fn start_with_config(mut mqtt: MqttConfig, source: &str, consumer: &str, state: AgentState) -> TestAgent {
        maestro_net::install_crypto_provider();
        mqtt.client_id = format!("agent-{consumer}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let link = AgentLink::connect(mqtt, source, consumer).expect("agent link");
        link.connected(Duration::from_secs(30)).await.expect("agent connects to the broker");
        let state = Arc::new(Mutex::new(state));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(link, state.clone(), stopped));
        TestAgent { consumer: consumer.to_string(), state, task, stop }
    }

    pub fn state(&self) -> AgentState {
        self.state.lock().unwrap().clone()
    }

    /// Polls the agent's state for up to 30 s.
    pub async fn wait_for(&self, what: &str, check: impl Fn(&AgentState) -> bool) -> AgentState {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let state = self.state();
            if check(&state) {
                return state;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "agent {} never saw {what}; it holds {:?}",
                    self.consumer,
                    state.applied.keys().collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the agent (its connection closes) and returns what it held.
    pub async fn stop(self) -> AgentState {
        let _ = self.stop.send(true);
        if let Ok(link) = self.task.await {
            link.close().await;
        }
        self.state.lock().unwrap().clone()
    }
}

async fn run(
    mut link: AgentLink,
    state: Arc<Mutex<AgentState>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> AgentLink {
    let mut connection = link.state();
    let mut resynced = 0;
    loop {
        let now = *connection.borrow_and_update();
        if now.connected && now.generation != resynced {
            resynced = now.generation;
            let versions = state.lock().unwrap().live_versions();
            if link.request_resync(&versions).await.is_ok() {
                state.lock().unwrap().resyncs_sent += 1;
            }
        }
        tokio::select! {
            event = link.next() => match event {
                Some(Ok(WorkEvent::Spec(spec))) => apply(&link, &state, spec).await,
                Some(Ok(WorkEvent::StatusResync { hashes, .. })) => {
                    state.lock().unwrap().status_resyncs += 1;
                    let held: HashMap<String, String> =
                        hashes.status_hashes.into_iter().map(|h| (h.resource_id, h.status_hash)).collect();
                    let applied: Vec<(String, Applied)> =
                        state.lock().unwrap().applied.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    for (id, a) in applied {
                        let listed = held.get(&id);
                        if held.is_empty() || listed.is_some_and(|h| *h != wire::status_hash(&a.status)) {
                            report(&link, &id, a.version, &a.status).await;
                        }
                    }
                }
                Some(_) => {}
                None => return link,
            },
            _ = connection.changed() => {}
            _ = stop.changed() => return link,
        }
    }
}

async fn apply(link: &AgentLink, state: &Mutex<AgentState>, spec: SpecEvent) {
    let id = spec.context.resource_id.clone();
    let version = spec.context.resource_version;
    let action = spec.context.event_type.action;
    let status = {
        let mut state = state.lock().unwrap();
        state.spec_events.push((id.clone(), version, action));
        let current = state.applied.get(&id).cloned();
        let deleting = spec.deletion_timestamp.is_some() || action == EventAction::Delete;
        let stale = match &current {
            Some(held) if deleting => held.deleted,
            Some(held) => held.version >= version,
            None => false,
        };
        if stale {
            state.stale_dropped += 1;
            return;
        }
        let status = if deleting { deleted_status() } else { applied_status(1) };
        let bundle = if deleting { current.map(|c| c.bundle).unwrap_or_default() } else { spec.bundle };
        state.applied.insert(id.clone(), Applied { version, bundle, deleted: deleting, status: status.clone() });
        status
    };
    report(link, &id, version, &status).await;
}

async fn report(link: &AgentLink, id: &str, version: i64, status: &ManifestBundleStatus) {
    let report = StatusReport {
        resource_id: id,
        resource_version: version,
        cluster_name: link.consumer(),
        original_source: "maestro",
        sequence_id: link.next_sequence_id(),
        status,
    };
    if let Err(err) = link.publish_status(&report).await {
        eprintln!("test agent: status of {id} not sent ({err}); it goes again on the next status resync");
    }
}
