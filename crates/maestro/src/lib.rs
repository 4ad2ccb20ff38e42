//! Maestro: a hub that ships Kubernetes resources to fleets of clusters and brings their status
//! back, and whose behaviour operators change with sandboxed WebAssembly plugins.
//!
//! Data enters through [`api`] (REST), is kept by [`store`] (PostgreSQL or SQLite) together
//! with an outbox row per change, and leaves through the transport that drains the outbox
//! (CloudEvents over MQTT 5). See ARCHITECTURE.md for the map and its invariants.

pub mod cli;
pub mod config;
