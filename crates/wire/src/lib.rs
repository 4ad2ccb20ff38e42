//! The wire between hub and agents: CloudEvents over MQTT 5, in exactly the protocol of
//! open-cluster-management's Maestro and its work agents, plus Maestro's own event types.
//!
//! - [`wire`]: event types, topics, extensions, payloads, and the MQTT 5 binary binding of
//!   `cloudevents-sdk` events.
//! - [`mqtt`]: one rumqttc v5 connection with awaitable per-publish acknowledgements,
//!   resubscribe and reconnect with backoff, TLS and credentials.
//! - [`codec`]: codec plugins around event data, named in the `maestrocodec` extension.
//! - [`agent_link`]: the agent's side of the protocol; [`broker`]: the embedded broker.
//!
//! Used by both the hub and the agent, so it never imports either (nor the store: what a side
//! needs from its database it passes in).

pub mod agent_link;
pub mod broker;
pub mod codec;
pub mod mqtt;
pub mod wire;
