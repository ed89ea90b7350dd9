//! floodgate-target: a lean HTTP/1.1 server for load tests to hit, with counters and fault
//! injection; optionally over TLS (with a generated certificate) and HTTP/2 (`transport`).
//!
//! Endpoints: `GET /ping`, `GET /metrics` (JSON, or Prometheus text when the
//! client accepts `text/plain` or asks `?format=prometheus`), `POST /reset`,
//! `GET /arrivals`, `GET /headers`; `/echo` (the request back as JSON) and `/status/{code}`
//! (any method). `/metrics` also counts requests by path (`paths`).

mod config;
mod endpoints;
mod handler;
mod paths;
mod server;
mod state;
pub mod tls;
mod transport;

pub use config::{Config, MAX_LATENCY_MS, MAX_RECORD_ARRIVALS};
pub use endpoints::MAX_ECHO_BODY;
pub use handler::{handle, Body, Handler, HandlerFuture};
pub use paths::{MAX_PATHS, MAX_PATH_LEN, OTHER};
pub use server::{bind, serve, shutdown_signal, DRAIN_GRACE, LISTEN_BACKLOG};
pub use state::{Counters, Target};
pub use transport::{serve_h2c, serve_tls};
