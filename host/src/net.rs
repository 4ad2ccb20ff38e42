//! Socket settings shared by every HTTP server of the crate (hub API, simulator).

use tokio::net::TcpStream;

/// Turns Nagle's algorithm off on an accepted connection. hyper may write a response's head and
/// body separately; with Nagle on, the second write waits for the client's delayed ACK, which
/// adds ~40 ms to a small request. Use with `axum::serve::ListenerExt::tap_io`.
pub fn set_nodelay(tcp: &mut TcpStream) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(error = %err, "TCP_NODELAY not set");
    }
}
