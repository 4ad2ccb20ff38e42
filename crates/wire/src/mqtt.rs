//! One MQTT 5 connection (rumqttc) with what both the hub and agents need from it: QoS 1
//! publishes whose broker acknowledgement can be awaited one by one, subscriptions that are
//! renewed on every reconnect, reconnects with backoff, and the connection state as a watch.
//!
//! rumqttc reports a publish's packet id only as an `Outgoing::Publish(pkid)` event, in the
//! order requests entered its channel. So every publish enters that channel under one lock,
//! with its waiter queued in the same order; `Outgoing::Publish` pairs the next waiter with its
//! pkid, and the `PubAck` for that pkid completes it. On a disconnect, under the same lock,
//! requests not yet sent are dropped (sessions are clean) and every waiter fails: nothing is
//! acknowledged that the broker did not acknowledge, and the callers send again.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, PubAckReason, PublishProperties, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::wire::MqttMessage;

/// How to reach a broker and who to be there.
#[derive(Clone, Default)]
pub struct MqttConfig {
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub url: String,
    pub client_id: String,
    pub username: Option<String>,
    /// Never logged.
    pub password: Option<String>,
    /// PEM CA bundle that signs the broker's certificate (required for `mqtts://`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for brokers that require client certificates.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Largest packet this client accepts; the broker does not send larger ones.
    pub max_packet_bytes: u32,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish()
    }
}

impl MqttConfig {
    pub fn new(url: impl Into<String>, client_id: impl Into<String>) -> MqttConfig {
        MqttConfig {
            url: url.into(),
            client_id: client_id.into(),
            max_packet_bytes: 16 * 1024 * 1024,
            ..Default::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("MQTT URL {0:?} must be mqtt://host:port or mqtts://host:port")]
    Url(String),
    #[error("{path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error(
        "mqtts:// without --mqtt-ca-file verifies the broker against the system's CA certificates, and none were found: {0}"
    )]
    NoSystemRoots(String),
    #[error("TLS client settings: {0}")]
    Tls(String),
    #[error("a client certificate needs both a certificate and a key file")]
    HalfClientCert,
    #[error("not connected to the broker")]
    NotConnected,
    #[error("the broker connection was lost before the broker acknowledged")]
    Lost,
    #[error("the broker refused the publish: {0}")]
    Refused(String),
    #[error("the broker did not acknowledge within {0:?}")]
    Timeout(Duration),
    #[error("the MQTT client is closed")]
    Closed,
}

/// The connection as its users see it. `generation` counts completed (re)connections, so a
/// change of it means "resubscribed after a reconnect: resync".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionState {
    pub connected: bool,
    pub generation: u64,
}

/// A message received on one of the link's subscriptions.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub message: MqttMessage,
    /// Size of the payload as received, before any decoding.
    pub payload_bytes: usize,
}

/// Completes when the broker acknowledged one publish.
pub struct Ack(oneshot::Receiver<Result<(), MqttError>>);

impl Ack {
    pub async fn wait(self, timeout: Duration) -> Result<(), MqttError> {
        match tokio::time::timeout(timeout, self.0).await {
            Err(_) => Err(MqttError::Timeout(timeout)),
            Ok(Err(_)) => Err(MqttError::Lost),
            Ok(Ok(result)) => result,
        }
    }
}

type Waiter = oneshot::Sender<Result<(), MqttError>>;

#[derive(Default)]
struct Waiters {
    connected: bool,
    /// Publishes in the channel, in order, not yet given a packet id.
    queued: VecDeque<Waiter>,
    /// Publishes sent, by packet id, awaiting their PUBACK.
    sent: HashMap<u16, Waiter>,
}

impl Waiters {
    fn fail_all(&mut self) {
        for waiter in self.queued.drain(..).chain(self.sent.drain().map(|(_, w)| w)) {
            let _ = waiter.send(Err(MqttError::Lost));
        }
    }
}

/// A live MQTT 5 connection; reconnects by itself until [`MqttLink::close`].
pub struct MqttLink {
    client: AsyncClient,
    /// Serializes entering the request channel with queuing the waiter (see the module doc).
    send_turn: Arc<tokio::sync::Mutex<()>>,
    waiters: Arc<Mutex<Waiters>>,
    state: watch::Receiver<ConnectionState>,
    task: JoinHandle<()>,
}

/// Builds rumqttc options from a config; the password and keys are read here, not logged.
pub fn options(config: &MqttConfig) -> Result<MqttOptions, MqttError> {
    let (tls, rest) = if let Some(rest) = config.url.strip_prefix("mqtt://") {
        (false, rest)
    } else if let Some(rest) = config.url.strip_prefix("mqtts://") {
        (true, rest)
    } else {
        return Err(MqttError::Url(config.url.clone()));
    };
    let authority = rest.trim_end_matches('/');
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| MqttError::Url(config.url.clone()))?),
        None => (authority, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() || authority.contains('/') {
        return Err(MqttError::Url(config.url.clone()));
    }
    let mut options = MqttOptions::new(config.client_id.clone(), host.trim_matches(['[', ']']), port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_start(true);
    options.set_connection_timeout(10);
    options.set_max_packet_size(Some(config.max_packet_bytes));
    options.set_request_channel_capacity(4096);
    options.set_outgoing_inflight_upper_limit(1000);
    let mut network = rumqttc::NetworkOptions::new();
    // Without it Nagle and delayed ACKs add ~40 ms to every QoS 1 round trip.
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    if let Some(user) = &config.username {
        options.set_credentials(user.clone(), config.password.clone().unwrap_or_default());
    }
    if tls {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| MqttError::File { path: path.display().to_string(), source })
        };
        let client_auth = match (&config.cert_file, &config.key_file) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            (None, None) => None,
            _ => return Err(MqttError::HalfClientCert),
        };
        let tls = match &config.ca_file {
            Some(ca) => TlsConfiguration::Simple { ca: read(ca)?, alpn: None, client_auth },
            None => system_roots_tls(client_auth)?,
        };
        options.set_transport(Transport::tls_with_config(tls));
    }
    Ok(options)
}

/// TLS verified against the operating system's CA certificates: what a broker with a
/// certificate from a public CA (a managed MQTT service) needs, with no CA file to ship.
fn system_roots_tls(client_auth: Option<(Vec<u8>, Vec<u8>)>) -> Result<TlsConfiguration, MqttError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(MqttError::NoSystemRoots(if errors.is_empty() {
            "no certificates".into()
        } else {
            errors.join("; ")
        }));
    }
    // An explicit provider: the library must not depend on a process-wide default being installed.
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| MqttError::Tls(err.to_string()))?
        .with_root_certificates(roots);
    let config = match client_auth {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| MqttError::Tls(format!("--mqtt-cert-file: {err}")))?;
            let key =
                PrivateKeyDer::from_pem_slice(&key).map_err(|err| MqttError::Tls(format!("--mqtt-key-file: {err}")))?;
            builder.with_client_auth_cert(chain, key).map_err(|err| MqttError::Tls(err.to_string()))?
        }
    };
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

impl MqttLink {
    /// Starts connecting in the background. `subscriptions` are (re)subscribed at QoS 1 after
    /// every connect; what arrives on them goes to `incoming`.
    pub fn start(
        config: &MqttConfig,
        subscriptions: Vec<String>,
        incoming: mpsc::Sender<Received>,
    ) -> Result<MqttLink, MqttError> {
        let options = options(config)?;
        let (client, eventloop) = AsyncClient::new(options, 4096);
        let send_turn = Arc::new(tokio::sync::Mutex::new(()));
        let waiters = Arc::new(Mutex::new(Waiters::default()));
        let (state_tx, state) = watch::channel(ConnectionState::default());
        let driver = Driver {
            eventloop,
            client: client.clone(),
            send_turn: send_turn.clone(),
            waiters: waiters.clone(),
            state: state_tx,
            subscriptions,
            incoming,
            url: config.url.clone(),
            client_id: config.client_id.clone(),
        };
        let task = tokio::spawn(driver.run());
        Ok(MqttLink { client, send_turn, waiters, state, task })
    }

    /// The connection state, to wait for a connect or to notice reconnects.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Waits until connected and subscribed, up to `timeout`.
    pub async fn connected(&self, timeout: Duration) -> Result<(), MqttError> {
        let mut state = self.state.clone();
        tokio::time::timeout(timeout, state.wait_for(|s| s.connected))
            .await
            .map_err(|_| MqttError::Timeout(timeout))?
            .map_err(|_| MqttError::Closed)?;
        Ok(())
    }

    /// Sends one message at QoS 1; the returned [`Ack`] completes on the broker's PUBACK.
    pub async fn publish(&self, topic: &str, message: MqttMessage) -> Result<Ack, MqttError> {
        let properties = PublishProperties {
            content_type: message.content_type,
            user_properties: message.user_properties,
            ..Default::default()
        };
        let (tx, rx) = oneshot::channel();
        let _turn = self.send_turn.lock().await;
        {
            let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if !waiters.connected {
                return Err(MqttError::NotConnected);
            }
            waiters.queued.push_back(tx);
        }
        let sent = self
            .client
            .publish_with_properties(topic.to_string(), QoS::AtLeastOnce, false, message.payload, properties)
            .await;
        if sent.is_err() {
            let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            waiters.queued.pop_back();
            return Err(MqttError::Closed);
        }
        Ok(Ack(rx))
    }

    /// Disconnects and stops reconnecting.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.disconnect()).await;
        // Give the DISCONNECT a moment to leave, then stop the driver either way.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            let mut state = self.state.clone();
            let _ = state.wait_for(|s| !s.connected).await;
        })
        .await;
        self.task.abort();
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).fail_all();
    }
}

impl Drop for MqttLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Owns the event loop: the only place that polls it.
struct Driver {
    eventloop: EventLoop,
    client: AsyncClient,
    send_turn: Arc<tokio::sync::Mutex<()>>,
    waiters: Arc<Mutex<Waiters>>,
    state: watch::Sender<ConnectionState>,
    subscriptions: Vec<String>,
    incoming: mpsc::Sender<Received>,
    url: String,
    client_id: String,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Driver {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut failures = 0u32;
        loop {
            match self.eventloop.poll().await {
                Ok(event) => {
                    if self.handle(event).await {
                        backoff = BACKOFF_MIN;
                        failures = 0;
                    }
                }
                Err(err) => {
                    self.disconnected().await;
                    if matches!(err, rumqttc::v5::ConnectionError::RequestsDone) {
                        return;
                    }
                    failures += 1;
                    // Every failure is logged at first; a broker that stays away is logged
                    // every tenth try so the log does not fill.
                    if failures <= 3 || failures.is_multiple_of(10) {
                        tracing::warn!(url = %self.url, client_id = %self.client_id, error = %err, retry_in = ?backoff, "MQTT connection failed; reconnecting");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Handles one event; true when it proves the connection healthy (a CONNACK).
    async fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                self.lock_waiters().connected = true;
                tracing::info!(url = %self.url, client_id = %self.client_id, "connected to MQTT broker");
                if self.subscriptions.is_empty() {
                    self.mark_ready();
                } else {
                    let filters = self.subscriptions.iter().map(|topic| Filter::new(topic.clone(), QoS::AtLeastOnce));
                    if let Err(err) = self.client.try_subscribe_many(filters.collect::<Vec<_>>()) {
                        tracing::warn!(error = %err, "cannot queue MQTT subscribe");
                    }
                }
                return true;
            }
            Event::Incoming(Packet::SubAck(ack)) => {
                let refused = ack.return_codes.iter().any(|code| !matches!(code, SubscribeReasonCode::Success(_)));
                if refused {
                    tracing::error!(client_id = %self.client_id, codes = ?ack.return_codes, subscriptions = ?self.subscriptions, "broker refused a subscription");
                }
                self.mark_ready();
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                let mut waiters = self.lock_waiters();
                if let Some(waiter) = waiters.queued.pop_front() {
                    waiters.sent.insert(pkid, waiter);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                let waiter = self.lock_waiters().sent.remove(&ack.pkid);
                if let Some(waiter) = waiter {
                    let result = match ack.reason {
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                        other => Err(MqttError::Refused(format!("{other:?}"))),
                    };
                    let _ = waiter.send(result);
                }
            }
            Event::Incoming(Packet::Publish(publish)) => {
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                let payload_bytes = publish.payload.len();
                let properties = publish.properties.unwrap_or_default();
                let message = MqttMessage {
                    user_properties: properties.user_properties,
                    content_type: properties.content_type,
                    payload: publish.payload.to_vec(),
                };
                // Waiting here is the backpressure: a slow consumer slows reading from the broker.
                if self.incoming.send(Received { topic, message, payload_bytes }).await.is_err() {
                    tracing::debug!("nobody reads incoming MQTT messages any more");
                }
            }
            Event::Incoming(Packet::Disconnect(disconnect)) => {
                tracing::warn!(reason = ?disconnect.reason_code, "broker sent DISCONNECT");
            }
            _ => {}
        }
        false
    }

    fn mark_ready(&self) {
        self.state.send_modify(|s| {
            s.connected = true;
            s.generation += 1;
        });
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops what was not sent and fails every waiter, with no publish entering meanwhile.
    async fn disconnected(&mut self) {
        let _turn = self.send_turn.lock().await;
        self.eventloop.clean();
        self.eventloop.pending.clear();
        self.lock_waiters().connected = false;
        self.lock_waiters().fail_all();
        if self.state.borrow().connected {
            self.state.send_modify(|s| s.connected = false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_config() -> MqttConfig {
        MqttConfig::new("mqtts://broker.example:8883", "c1")
    }

    #[test]
    fn mqtts_without_a_ca_file_verifies_against_the_system_roots() {
        // This machine has the system CA bundle (`ca-certificates`), as any broker host does.
        let options = options(&tls_config()).unwrap_or_else(|err| panic!("mqtts without a CA file: {err}"));
        assert!(matches!(options.transport(), Transport::Tls(TlsConfiguration::Rustls(_))));
    }

    #[test]
    fn a_client_key_that_is_not_pem_is_refused_naming_its_flag() {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("temp dir: {err}"));
        let (cert, key) = (dir.path().join("c.crt"), dir.path().join("c.key"));
        std::fs::write(&cert, "").and_then(|()| std::fs::write(&key, "not a key")).unwrap_or_else(|e| panic!("{e}"));
        let config = MqttConfig { cert_file: Some(cert), key_file: Some(key), ..tls_config() };
        let err = options(&config).err().map(|err| err.to_string()).unwrap_or_default();
        assert!(err.contains("--mqtt-key-file"), "{err}");
    }
}
