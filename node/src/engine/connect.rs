//! Opening a connection to the target: plain TCP, or TCP then a TLS handshake. The workers are
//! generic over [`Connect`], so the plain path compiles to exactly the code it had before TLS
//! existed (no enum to match on every read), and each connection says what its opening cost
//! ([`Handshake`]: TCP connect and TLS handshake, recorded apart from request latency).

use super::conn::SendError;
use rustls::pki_types::ServerName;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What opening one connection cost, in whole microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The TCP connect (SYN to established).
    pub connect_us: u64,
    /// The TLS handshake after it; `None` on a plain connection.
    pub tls_us: Option<u64>,
    /// The TLS handshake resumed an earlier session (a ticket from the test's shared config).
    pub resumed: bool,
}

/// How a worker opens its connections.
pub trait Connect: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Whether a write must be flushed: rustls may hold the last record until it is, a
    /// `TcpStream` writes through.
    const FLUSH: bool;

    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<(Self::Stream, Handshake), SendError>> + Send;

    /// Whether the connection speaks HTTP/2: negotiated with ALPN over TLS; on a plain
    /// connection HTTP/2 is spoken with prior knowledge (h2c), so always.
    fn is_h2(stream: &Self::Stream) -> bool;
}

/// Plain TCP.
pub struct Plain;

async fn tcp(addr: SocketAddr) -> Result<(TcpStream, u64), SendError> {
    let t0 = Instant::now();
    let stream = TcpStream::connect(addr).await.map_err(SendError::Connect)?;
    // Requests are small and latency-sensitive: never wait for Nagle.
    stream.set_nodelay(true).map_err(SendError::Connect)?;
    Ok((stream, micros(t0.elapsed())))
}

impl Connect for Plain {
    type Stream = TcpStream;
    const FLUSH: bool = false;

    async fn connect(&self, addr: SocketAddr) -> Result<(TcpStream, Handshake), SendError> {
        let (stream, connect_us) = tcp(addr).await?;
        Ok((
            stream,
            Handshake {
                connect_us,
                tls_us: None,
                resumed: false,
            },
        ))
    }

    fn is_h2(_: &TcpStream) -> bool {
        true
    }
}

/// TCP, then a TLS handshake with the test's one shared client config.
pub struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl Tls {
    pub fn new(config: Arc<rustls::ClientConfig>, name: ServerName<'static>) -> Self {
        Tls {
            connector: TlsConnector::from(config),
            name,
        }
    }
}

impl Connect for Tls {
    type Stream = TlsStream<TcpStream>;
    const FLUSH: bool = true;

    async fn connect(&self, addr: SocketAddr) -> Result<(Self::Stream, Handshake), SendError> {
        let (stream, connect_us) = tcp(addr).await?;
        let t0 = Instant::now();
        let stream = self
            .connector
            .connect(self.name.clone(), stream)
            .await
            .map_err(SendError::Tls)?;
        let tls_us = micros(t0.elapsed());
        let resumed = stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        Ok((
            stream,
            Handshake {
                connect_us,
                tls_us: Some(tls_us),
                resumed,
            },
        ))
    }

    fn is_h2(stream: &Self::Stream) -> bool {
        stream.get_ref().1.alpn_protocol() == Some(b"h2")
    }
}

/// Whole microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
}
