//! Maestro: a hub that ships Kubernetes resources to fleets of clusters and brings their status
//! back, and whose behaviour operators change with sandboxed WebAssembly plugins.
//!
//! Data enters through [`api`] (REST), is kept by [`store`] (PostgreSQL or SQLite) together
//! with an outbox row per change, and leaves through the transport that drains the outbox
//! (CloudEvents over MQTT 5). See ARCHITECTURE.md for the map and its invariants.

pub mod agent;
pub mod api;
pub mod cli;
pub mod config;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod net;
pub mod plugins;
pub mod search;
pub mod sim;
pub mod store;
pub mod transport;

/// Makes ring the one rustls provider of the process. Several dependencies can each enable a
/// provider, and rustls then refuses to pick one at run time; installing one first settles it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
