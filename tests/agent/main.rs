//! The agent end to end: a real hub (SQLite) with its transport, a broker (the embedded one,
//! the real Mosquitto, or a private Mosquitto that tests stop), our agent, and a simulated
//! cluster it reaches through `kube` over HTTP. Changes go in through the REST API; what the
//! cluster holds is read with `kube`, and statuses are read back from the REST API.

mod deploy;
mod fleet;
mod lifecycle;
mod operators;
mod ops;
mod plugins;
mod resilience;
mod strategies;
mod wire;
