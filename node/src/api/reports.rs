//! Placeholder: the reports routes (issue 3).

use crate::orchestrator::Orchestrator;
use axum::Router;

pub fn routes() -> Router<Orchestrator> {
    Router::new()
}
