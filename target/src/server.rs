//! Listening socket setup, the accept loop with one task per connection, and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

use crate::handler::Handler;
use crate::state::Target;

/// Load tests open many connections at once; the kernel clamps this to
/// `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 4096;

/// How long in-flight requests get to finish after shutdown starts, on top of
/// the longest configured /ping delay.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Back-off after an accept error that is not about one connection (e.g. out
/// of file descriptors), so the loop does not spin on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Drives one hyper connection to its end, switching it to graceful shutdown when `drain`
/// fires. Connection errors (peer resets, malformed requests) are the client's business under
/// load; hyper already answered what it could.
macro_rules! drive {
    ($connection:expr, $drain:expr) => {{
        let connection = $connection;
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = $drain.changed() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }};
}
pub(crate) use drive;

/// Binds `addr` with SO_REUSEADDR and a large backlog. Must run inside a
/// tokio runtime.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restarted target rebind while the previous run's connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops
/// accepting, lets open connections finish their in-flight request (bounded
/// by [`DRAIN_GRACE`] plus the longest /ping delay) and returns.
pub async fn serve(listener: TcpListener, state: Arc<Target>, shutdown: impl Future<Output = ()>) {
    let mut http = http1::Builder::new();
    // hyper's default 30 s header-read timeout needs a timer and also runs
    // while a keep-alive connection is idle, which would cut the pools of
    // load generators; it also costs a timer registration per request.
    // Buffer sizes and writev stay at hyper's defaults, which suit tiny bodies.
    http.keep_alive(true).header_read_timeout(None);
    accept_loop(
        listener,
        state,
        shutdown,
        move |stream, handler, mut drain| {
            let connection = http.serve_connection(TokioIo::new(stream), handler);
            tokio::spawn(async move { drive!(connection, drain) });
        },
    )
    .await;
}

/// The accept loop shared by every protocol: accepts until `shutdown`, hands each connection
/// (with a drain signal that fires when shutdown starts) to `on_connection`, which spawns its
/// task; then waits for the open connections to finish, bounded as [`serve`] says.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<Target>,
    shutdown: impl Future<Output = ()>,
    mut on_connection: impl FnMut(TcpStream, Handler, watch::Receiver<()>),
) {
    // Connection tasks watch this to switch to graceful shutdown; the sender
    // learns they are all gone once every receiver has been dropped.
    let (drain_tx, drain_rx) = watch::channel(());
    let grace = DRAIN_GRACE + state.max_ping_delay();

    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    if !is_per_connection_error(&error) {
                        eprintln!("floodgate-target: accept failed: {error}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
        };
        // Tiny responses must leave immediately instead of waiting on Nagle's
        // algorithm; failure only costs latency, so it is not fatal.
        let _ = stream.set_nodelay(true);
        on_connection(stream, Handler::new(Arc::clone(&state)), drain_rx.clone());
    }

    drop(listener);
    drop(drain_rx);
    // Fails only when no connection is open, which is fine.
    let _ = drain_tx.send(());
    let _ = tokio::time::timeout(grace, drain_tx.closed()).await;
}

fn is_per_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Installs the SIGINT/SIGTERM handlers now and returns a future resolving on
/// the first of them. Installing eagerly (before the startup line is printed)
/// matters: a supervisor may signal as soon as it has read the port, and a
/// signal arriving before the handler exists would kill the process instead
/// of stopping it cleanly. Must run inside a tokio runtime.
#[cfg(unix)]
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Returns a future resolving on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    Ok(async {
        // Without a working handler, never resolving beats shutting down at once.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}
