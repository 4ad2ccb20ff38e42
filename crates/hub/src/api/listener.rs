//! Errors hyper answers by itself, in the API's error shape.
//!
//! A request line over hyper's URI limit (64 KiB) or a head over its buffer never reaches a
//! handler or middleware: hyper writes `414 URI Too Long` or `431 Request Header Fields Too
//! Large` with an empty body and closes the connection. Clients of this API read every error
//! as a Maestro error object, so the listener's connections ([`ShapedErrors`]) recognise that
//! one automatic response, the first bytes of a connection, and write it with a body.
//! Nothing else is touched: a handler never answers 414 or 431, so a connection whose first
//! response carries either status is one hyper refused.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::{ApiError, Code};

/// A listener whose connections answer hyper's own 414 and 431 in the error shape.
pub struct ShapedErrors<L>(pub L);

impl<L: Listener> Listener for ShapedErrors<L> {
    type Io = ShapedIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.0.accept().await;
        (ShapedIo { inner: io, first: true, replacement: None }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

pub struct ShapedIo<T> {
    inner: T,
    /// Nothing written yet on this connection.
    first: bool,
    /// The shaped response being written, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
}

/// The shaped response for a head hyper wrote on its own, if `head` is one.
fn shaped(head: &[u8]) -> Option<Vec<u8>> {
    let (status, reason) = if head.starts_with(b"HTTP/1.1 414 ") {
        (axum::http::StatusCode::URI_TOO_LONG, "the request line is longer than this server reads (64 KiB)")
    } else if head.starts_with(b"HTTP/1.1 431 ") {
        (
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request's headers are larger than this server reads",
        )
    } else {
        return None;
    };
    let operation_id = uuid::Uuid::new_v4().to_string();
    let error = ApiError::new(status, Code::MalformedRequest, reason);
    let body = serde_json::to_vec(&error.body(&operation_id)).unwrap_or_default();
    let mut response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-operation-id: {operation_id}\r\n\
         connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    Some(response)
}

impl<T: AsyncRead + Unpin> AsyncRead for ShapedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ShapedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if std::mem::take(&mut this.first)
            && let Some(response) = shaped(buf)
        {
            this.replacement = Some((response, 0));
        }
        let Some((response, written)) = &mut this.replacement else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        while *written < response.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &response[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        // What hyper wrote was replaced by the shaped response; the connection closes next.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands over the whole head in one buffer, which `shaped` reads.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_414_and_431_are_shaped() {
        let shaped_414 = shaped(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n").expect("shaped");
        let text = String::from_utf8(shaped_414).expect("text");
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        let body: serde_json::Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).expect("body")).expect("json");
        assert_eq!(body["kind"], "Error");
        assert!(shaped(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n").is_some());
        assert!(shaped(b"HTTP/1.1 200 OK\r\n\r\n").is_none());
        assert!(shaped(b"HTTP/1.1 400 Bad Request\r\n\r\n").is_none());
    }
}
