//! Prometheus metrics for `/metrics`. Label values come from small fixed sets (route templates,
//! methods, status codes, pool states): never an object id, so series stay bounded however
//! many resources the hub holds.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use maestro_store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    db_connections: Family<PoolLabels, Gauge>,
    /// Shared with the transport, which updates it.
    pub transport: crate::transport::metrics::TransportMetrics,
    /// Shared with the bundle service, which counts force deletes.
    pub force_deletes: crate::service::ForceDeletes,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("maestro");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let db_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route template and method",
            http_duration.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state (idle, in_use, max)",
            db_connections.clone(),
        );
        let transport = crate::transport::metrics::TransportMetrics::default();
        transport.register(&mut registry);
        let force_deletes = crate::service::ForceDeletes::default();
        force_deletes.register(&mut registry);
        Metrics { registry, http_requests, http_duration, db_connections, transport, force_deletes }
    }
}

impl Metrics {
    /// For subsystems that register their own metrics (plugins) before the hub serves.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Renders every metric in the OpenMetrics text format, reading the pool as of now.
    pub fn render(&self, store: &Store) -> String {
        let pool = store.pool_stats();
        self.db_connections.get_or_create(&PoolLabels { state: "idle" }).set(i64::from(pool.idle));
        self.db_connections
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(i64::from(pool.size.saturating_sub(pool.idle)));
        self.db_connections.get_or_create(&PoolLabels { state: "max" }).set(i64::from(pool.max));
        let mut text = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %err, "metrics could not be encoded");
        }
        text
    }

    fn observe(&self, route: String, method: &'static str, status: u16, seconds: f64) {
        self.http_duration.get_or_create(&RouteLabels { route: route.clone(), method }).observe(seconds);
        self.http_requests.get_or_create(&HttpLabels { route, method, status }).inc();
    }
}

/// Any other method (clients can send anything) is one label value, not one each.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request by its route template (`/consumers/{id}`, not the id).
pub async fn track_http(State(metrics): State<std::sync::Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(route, method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}
