//! HTTPS and HTTP/2 serving: TLS with ALPN (`h2` or `http/1.1` on one port), and h2c with
//! prior knowledge on a plain port (`--h2c`). The same handler and counters as HTTP/1.1, so
//! `/metrics` counts every request once whatever the protocol. Plain HTTP/1.1 without `--h2c`
//! keeps its own loop (`server::serve`), so the benchmark baseline is unchanged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::server::{accept_loop, drive};
use crate::state::Target;

/// A TLS handshake that has not finished in this long is dropped (a client that connects and
/// sends nothing would otherwise hold a task forever).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams one HTTP/2 connection may have open: above what any test asks for (the engine's
/// limit is 256), so the server never throttles a client's `streams_per_connection`.
const MAX_STREAMS: u32 = 1024;

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // As `server::serve`: no header-read timer on idle keep-alive connections.
    b.http1().keep_alive(true).header_read_timeout(None);
    b.http2().max_concurrent_streams(MAX_STREAMS);
    b
}

/// Serves HTTP/1.1 and HTTP/2 (ALPN, or the h2 preface) over TLS until `shutdown`.
pub async fn serve_tls(
    listener: TcpListener,
    state: Arc<Target>,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()>,
) {
    serve_auto(listener, state, Some(TlsAcceptor::from(config)), shutdown).await;
}

/// Serves HTTP/1.1 and h2c (HTTP/2 with prior knowledge, told apart by its preface) on a
/// plain port until `shutdown`.
pub async fn serve_h2c(
    listener: TcpListener,
    state: Arc<Target>,
    shutdown: impl Future<Output = ()>,
) {
    serve_auto(listener, state, None, shutdown).await;
}

async fn serve_auto(
    listener: TcpListener,
    state: Arc<Target>,
    acceptor: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let http = Arc::new(builder());
    accept_loop(
        listener,
        state,
        shutdown,
        move |stream, handler, mut drain| {
            let acceptor = acceptor.clone();
            let http = http.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => drive!(http.serve_connection(TokioIo::new(stream), handler), drain),
                    Some(acceptor) => {
                        let accept =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                        // A failed handshake (an untrusting client, a scanner) is the client's
                        // business.
                        let Ok(Ok(tls)) = accept.await else { return };
                        drive!(http.serve_connection(TokioIo::new(tls), handler), drain)
                    }
                }
            });
        },
    )
    .await;
}
