//! The Kubernetes API simulator as `kube` sees it: each test starts its own simulated cluster
//! on a free port and talks to it over HTTP with the real `kube` client (typed k8s-openapi
//! APIs, `DynamicObject` through discovery, and `kube::runtime::watcher`).

mod api;
mod controllers;
mod deploy;
mod discovery;
mod exec;
mod kudo;
mod watch;

use std::future::Future;
use std::time::Duration;

use kube::Client;
use maestro_sim::{RunningSim, SimCluster, SimOptions};
use serde_json::Value;

/// A simulated cluster and a client for it.
pub struct Sim {
    pub sim: RunningSim,
    pub client: Client,
}

impl Sim {
    pub async fn start() -> Sim {
        Sim::start_with(SimOptions { ready_delay: Duration::from_millis(300), ..SimOptions::default() }).await
    }

    pub async fn start_with(options: SimOptions) -> Sim {
        let sim = SimCluster::start(options).await.unwrap_or_else(|e| panic!("start simulator: {e}"));
        let client = sim.client().unwrap_or_else(|e| panic!("client: {e}"));
        Sim { sim, client }
    }

    pub async fn stop(self) {
        self.sim.shutdown().await.unwrap_or_else(|e| panic!("shutdown: {e}"));
    }
}

/// Polls `check` until it yields a value, for up to 30 seconds (generous: CI machines are slow).
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    maestro_tests::poll_until(what, Duration::from_secs(30), check).await
}

/// The `Status` of a failed request.
pub fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("decode: {e}"))
}
