//! The agent's `/metrics`, `/healthz` and `/readyz` (`maestro agent --metrics-listen`).
//!
//! Labels come from fixed sets only: event types (`spec.create`, ...) and apply error reasons
//! (the Kubernetes `StatusReason`s, our own `UnknownKind`/`InvalidManifest`/
//! `ApiServerUnreachable`, everything else `Other`). Never a bundle id or an object name.
//!
//! The counters themselves live where they are incremented ([`Counters`], [`LinkCounters`]);
//! this module reads them at scrape time, so the reconciler and the link never wait on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::apply::ApplyError;
use super::local::LocalStore;
use super::shared::Counters;
use super::shared::LinkCounters;
use maestro_wire::mqtt::ConnectionState;

/// How often the API server is asked for `/version` when nothing else shows whether it answers.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// Bounds that probe and the local store's count at scrape time.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the endpoints read: the agent's counters, its link and its local store.
#[derive(Clone)]
pub struct Sources {
    /// Series of what runs beside the agent (the operator engine), registered unprefixed.
    pub beside: Option<Beside>,
    pub counters: Arc<Counters>,
    pub link_counters: Arc<LinkCounters>,
    pub connection: watch::Receiver<ConnectionState>,
    pub local: LocalStore,
    pub client: kube::Client,
}

/// Registers the series of a component that runs beside the agent in the same process (the
/// operator engine of `maestro agent --operators`), so one scrape of the agent's `/metrics`
/// covers both. It registers at the root: its series keep their own prefix.
#[derive(Clone)]
pub struct Beside(pub Arc<dyn Fn(&mut Registry) + Send + Sync>);

impl std::fmt::Debug for Beside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Beside(..)")
    }
}

/// Reads the atomic counters and the connection at scrape time.
#[derive(Debug)]
struct Snapshot {
    counters: Arc<Counters>,
    link_counters: Arc<LinkCounters>,
    connection: watch::Receiver<ConnectionState>,
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
        let (c, l) = (&self.counters, &self.link_counters);
        let e = &mut encoder;
        counter(e, "applies", "Writes to the API server (drift corrections included)", load(&c.applies))?;
        counter(
            e,
            "drift_corrections",
            "Objects restored after someone else changed them",
            load(&c.drift_corrections),
        )?;
        counter(
            e,
            "malformed_events_dropped",
            "Events from the hub that could not be read",
            load(&l.malformed_events),
        )?;
        counter(e, "statuses_sent", "Statuses the broker acknowledged", load(&l.statuses_sent))?;
        counter(e, "resyncs_requested", "spec.resync_request events sent (one per connection)", load(&l.resyncs_sent))?;
        let watched = i64::try_from(load(&c.watched_objects)).unwrap_or(i64::MAX);
        gauge(e, "watched_objects", "Objects the agent applied and watches", watched)?;
        let connected = i64::from(self.connection.borrow().connected);
        gauge(e, "broker_connected", "1 while connected and subscribed to the MQTT broker", connected)?;
        let reachable = i64::from(c.api.reachable());
        gauge(e, "kube_api_reachable", "1 when the API server answered the latest call", reachable)
    }
}

struct Served {
    registry: Registry,
    pending: Gauge,
    sources: Sources,
}

/// The running endpoints and the API server probe; dropped or [`MetricsServer::stop`]ped with the agent.
pub struct MetricsServer {
    addr: SocketAddr,
    server: JoinHandle<()>,
    probe: JoinHandle<()>,
}

impl MetricsServer {
    /// Serves `/metrics`, `/healthz` and `/readyz` on `listener`.
    pub fn start(listener: tokio::net::TcpListener, sources: Sources) -> std::io::Result<MetricsServer> {
        let addr = listener.local_addr()?;
        let mut root = Registry::default();
        if let Some(beside) = &sources.beside {
            (beside.0)(&mut root);
        }
        let registry = root.sub_registry_with_prefix("maestro_agent");
        let pending = Gauge::default();
        registry.register(
            "events_received",
            "Events received from the hub, by type",
            sources.link_counters.events.0.clone(),
        );
        registry.register(
            "apply_errors",
            "Failed writes and lookups, by reason (Kubernetes StatusReason, ApiServerUnreachable, Other)",
            sources.counters.apply_errors.0.clone(),
        );
        registry.register("bundles", "Bundles the agent holds, by phase", sources.counters.bundles.0.clone());
        registry.register(
            "pending_statuses",
            "Statuses queued locally, not yet acknowledged by the broker",
            pending.clone(),
        );
        registry.register_collector(Box::new(Snapshot {
            counters: sources.counters.clone(),
            link_counters: sources.link_counters.clone(),
            connection: sources.connection.clone(),
        }));
        let probe = tokio::spawn(probe(sources.client.clone(), sources.counters.clone()).in_current_span());
        let served = Arc::new(Served { registry: root, pending, sources });
        let app = axum::Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(served);
        let server = tokio::spawn(
            async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::error!(error = %err, "the agent's metrics endpoint stopped");
                }
            }
            .in_current_span(),
        );
        tracing::info!(%addr, "agent metrics and probes serving");
        Ok(MetricsServer { addr, server, probe })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn stop(self) {
        self.server.abort();
        self.probe.abort();
        let _ = self.server.await;
        let _ = self.probe.await;
    }
}

/// Keeps [`ApiHealth`] current while the reconciler is idle (or stuck retrying): a bounded
/// `/version` call every [`PROBE_INTERVAL`].
async fn probe(client: kube::Client, counters: Arc<Counters>) {
    loop {
        match tokio::time::timeout(CALL_TIMEOUT, client.apiserver_version()).await {
            Ok(Ok(_)) => counters.api.answered(),
            Ok(Err(kube::Error::Api(_))) => counters.api.answered(),
            Ok(Err(err)) => {
                if counters.api.reachable() || !counters.api.known() {
                    tracing::warn!(error = %err, "the API server does not answer");
                }
                counters.api.failed(&ApplyError::Unreachable { message: err.to_string() });
            }
            Err(_) => counters.api.failed(&ApplyError::Unreachable { message: "probe timed out".into() }),
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

async fn metrics(State(served): State<Arc<Served>>) -> impl IntoResponse {
    match tokio::time::timeout(CALL_TIMEOUT, served.sources.local.pending_count()).await {
        Ok(Ok(count)) => {
            served.pending.set(count);
        }
        Ok(Err(err)) => tracing::warn!(error = %err, "metrics: cannot count pending statuses"),
        Err(_) => tracing::warn!("metrics: counting pending statuses timed out"),
    }
    let mut text = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &served.registry) {
        tracing::error!(error = %err, "agent metrics could not be encoded");
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
}

/// The process is up and serving HTTP.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The agent can do its work: connected to the broker, and the API server answered last time.
async fn readyz(State(served): State<Arc<Served>>) -> (StatusCode, Json<serde_json::Value>) {
    let broker = served.sources.connection.borrow().connected;
    let api = served.sources.counters.api.reachable();
    let body = json!({
        "status": if broker && api { "ready" } else { "not ready" },
        "broker": if broker { "connected" } else { "disconnected" },
        "kubernetes": if api { "reachable" } else { "unreachable" },
    });
    let code = if broker && api { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{ApiHealth, reason_label};

    fn refused(reason: &str) -> ApplyError {
        ApplyError::Refused { reason: reason.into(), message: String::new(), retry: false }
    }

    #[test]
    fn error_reasons_are_a_fixed_set() {
        assert_eq!(reason_label(&refused("Forbidden")), "Forbidden");
        assert_eq!(reason_label(&refused("UnknownKind")), "UnknownKind");
        assert_eq!(reason_label(&refused("Http418")), "Other");
        assert_eq!(reason_label(&refused("anything a server invents")), "Other");
        assert_eq!(reason_label(&ApplyError::Unreachable { message: "x".into() }), "ApiServerUnreachable");
    }

    #[test]
    fn a_refusal_shows_the_api_server_answers() {
        let health = ApiHealth::default();
        assert!(!health.reachable());
        health.failed(&ApplyError::Unreachable { message: "down".into() });
        assert!(!health.reachable());
        health.failed(&refused("Invalid"));
        assert!(health.reachable());
    }
}
