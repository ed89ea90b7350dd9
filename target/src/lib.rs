//! floodgate-target: a lean HTTP/1.1 server for load tests to hit, with counters and fault
//! injection; optionally over TLS (with a generated certificate) and HTTP/2 (`transport`).
//!
//! Endpoints: `GET /ping`, `GET /metrics` (JSON, or Prometheus text when the
//! client accepts `text/plain` or asks `?format=prometheus`), `POST /reset`,
//! `GET /arrivals`.

mod config;
mod handler;
mod server;
mod state;
pub mod tls;
mod transport;

pub use config::{Config, MAX_LATENCY_MS, MAX_RECORD_ARRIVALS};
pub use handler::{handle, Body, Handler, HandlerFuture};
pub use server::{bind, serve, shutdown_signal, DRAIN_GRACE, LISTEN_BACKLOG};
pub use state::{Counters, Target};
pub use transport::{serve_h2c, serve_tls};
