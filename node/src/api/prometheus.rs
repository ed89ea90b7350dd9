//! `GET /metrics`: the orchestrator's Prometheus metrics in the text exposition format (0.0.4).
//! What is exported, and why, is in `crate::metrics` and `docs/prometheus.md`.

use crate::orchestrator::Orchestrator;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<Orchestrator> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(o): State<Orchestrator>) -> Response {
    let text = crate::metrics::orchestrator::render(&o).map(|mut t| {
        t.push_str(&o.extra_metrics());
        t
    });
    crate::metrics::response(text)
}
