//! Socket and TLS settings that every server and client of Maestro shares (hub API, simulator,
//! MQTT links), so that a setting found once to matter is applied everywhere.
//!
//! Never imports another Maestro crate.

use tokio::net::TcpStream;

/// Turns Nagle's algorithm off on an accepted connection. hyper may write a response's head and
/// body separately; with Nagle on, the second write waits for the client's delayed ACK, which
/// adds ~40 ms to a small request. Use with `axum::serve::ListenerExt::tap_io`.
pub fn set_nodelay(tcp: &mut TcpStream) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(error = %err, "TCP_NODELAY not set");
    }
}

/// Makes ring the one rustls provider of the process. Several dependencies can each enable a
/// provider, and rustls then refuses to pick one at run time; installing one first settles it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
