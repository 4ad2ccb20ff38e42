//! The embedded MQTT 5 broker (rumqttd), so that a hub and its agents work on a fresh machine
//! with nothing installed. It listens on loopback only: on a free port chosen at start (and
//! logged), or on `--mqtt-listen`; a taken address is an error that names the flag.
//!
//! rumqttd's `Broker::start` blocks forever on threads of its own; its `Server` runs on our
//! runtime instead, so aborting the task closes the listener. Its router runs on one thread.
//!
//! With [`BrokerAccess`] it requires a user name and password and keeps every agent to its own
//! consumer's topics, the rules of `deploy/mosquitto/acl`: a user named after a consumer may
//! subscribe only to `sources/<source>/consumers/<itself>/sourceevents` and publish only to
//! `.../<itself>/agentevents`; the hub's user may do anything. A refused PUBLISH or SUBSCRIBE
//! closes the client's connection (rumqttd, patched: `vendor/rumqttd`, `AclHandler`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumqttd::protocol::v5::V5;
use rumqttd::{AclAccess, ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "embedded MQTT broker cannot listen on {addr} (choose another with --mqtt-listen, or use --mqtt-url): {source}"
    )]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the embedded MQTT broker only listens on loopback; {0} is not (use --mqtt-url for an external broker)")]
    NotLoopback(SocketAddr),
    #[error("embedded MQTT broker on {0} did not start accepting connections")]
    NotUp(SocketAddr),
}

/// Who may log in to the embedded broker, and as whom the hub does.
#[derive(Clone)]
pub struct BrokerAccess {
    /// User name to password; the hub's user among them. Every other user is a consumer.
    pub users: HashMap<String, String>,
    pub hub_user: String,
}

impl std::fmt::Debug for BrokerAccess {
    /// Names the users, never their passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut users: Vec<&String> = self.users.keys().collect();
        users.sort();
        f.debug_struct("BrokerAccess").field("users", &users).field("hub_user", &self.hub_user).finish()
    }
}

/// Whether `user` may publish to or subscribe to `topic` (see the module doc).
pub fn allows(hub_user: &str, user: &str, topic: &str, access: AclAccess) -> bool {
    if user == hub_user {
        return true;
    }
    let wanted = match access {
        AclAccess::Publish => "agentevents",
        AclAccess::Subscribe => "sourceevents",
    };
    let plain = |s: &str| !s.is_empty() && !s.contains(['+', '#']);
    matches!(topic.split('/').collect::<Vec<_>>().as_slice(),
        ["sources", source, "consumers", consumer, kind]
            if plain(source) && *consumer == user && *kind == wanted && !user.is_empty())
}

/// An embedded broker serving on `addr` until [`EmbeddedBroker::stop`].
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

/// Largest payload the embedded broker accepts; larger statuses are refused by the hub anyway.
const MAX_PAYLOAD: usize = 20 * 1024 * 1024;

impl EmbeddedBroker {
    /// Starts a broker on `listen`, or on a free loopback port when `None`; anonymous without
    /// `access`.
    pub async fn start(
        listen: Option<SocketAddr>,
        access: Option<BrokerAccess>,
    ) -> Result<EmbeddedBroker, BrokerError> {
        let requested = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        if !requested.ip().is_loopback() {
            return Err(BrokerError::NotLoopback(requested));
        }
        // rumqttd binds by address itself; binding here first proves the address is free (and
        // picks the port), then it is released for rumqttd to take a moment later.
        let probe =
            std::net::TcpListener::bind(requested).map_err(|source| BrokerError::Listen { addr: requested, source })?;
        let addr = probe.local_addr().map_err(|source| BrokerError::Listen { addr: requested, source })?;
        drop(probe);

        let router = RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 1000,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        };
        let router_tx = Router::new(0, router).spawn();
        let settings = ServerSettings {
            name: "maestro-embedded".to_string(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 0,
            connections: ConnectionSettings {
                connection_timeout_ms: 10_000,
                max_payload_size: MAX_PAYLOAD,
                max_inflight_count: 1000,
                auth: access.as_ref().map(|a| a.users.clone()),
                external_auth: None,
                dynamic_filters: true,
                acl: access.map(|a| {
                    let hub = a.hub_user;
                    Arc::new(move |user: &str, topic: &str, access| allows(&hub, user, topic, access))
                        as rumqttd::AclHandler
                }),
            },
        };
        let mut server = Server::new(settings, router_tx, V5);
        let task = tokio::spawn(async move {
            if let Err(err) = server.start(LinkType::Remote).await {
                tracing::error!(error = %err, "embedded MQTT broker stopped");
            }
        });
        wait_until_listening(addr).await?;
        tracing::info!(%addr, url = %format!("mqtt://{addr}"), "embedded MQTT broker listening");
        Ok(EmbeddedBroker { addr, task })
    }

    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Closes the listener. Connections already open end when their clients disconnect.
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn wait_until_listening(addr: SocketAddr) -> Result<(), BrokerError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(BrokerError::NotUp(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_reaches_only_its_own_consumers_topics() {
        let allows = |user, topic, access| allows("hub", user, topic, access);
        assert!(allows("c1", "sources/maestro/consumers/c1/sourceevents", AclAccess::Subscribe));
        assert!(allows("c1", "sources/maestro/consumers/c1/agentevents", AclAccess::Publish));
        assert!(!allows("c1", "sources/maestro/consumers/c2/sourceevents", AclAccess::Subscribe));
        assert!(!allows("c1", "sources/maestro/consumers/c2/agentevents", AclAccess::Publish));
        assert!(!allows("c1", "sources/maestro/consumers/c1/agentevents", AclAccess::Subscribe));
        assert!(!allows("c1", "sources/maestro/consumers/c1/sourceevents", AclAccess::Publish));
        assert!(!allows("c1", "sources/+/consumers/c1/sourceevents", AclAccess::Subscribe));
        assert!(!allows("c1", "sources/maestro/consumers/+/agentevents", AclAccess::Subscribe));
        assert!(!allows("c1", "$share/maestro-hubs/sources/maestro/consumers/+/agentevents", AclAccess::Subscribe));
        assert!(!allows("c1", "#", AclAccess::Subscribe));
        assert!(!allows("", "sources/maestro/consumers//sourceevents", AclAccess::Subscribe));
        assert!(allows("hub", "$share/maestro-hubs/sources/maestro/consumers/+/agentevents", AclAccess::Subscribe));
    }
}
