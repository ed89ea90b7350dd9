//! The orchestrator's REST API (JSON, under `/api/v1`): view and control tests and drivers.
//! Handlers are thin: they parse, call the [`Orchestrator`], and let [`ApiError`] map failures.

pub mod access;
mod dashboard;
pub mod dto;
mod error;
mod events;
mod prometheus;
mod reports;

pub use access::Access;
pub use error::ApiError;

use crate::orchestrator::rate_change::RateInput;
use crate::orchestrator::spec::{parse_input, parse_json};
use crate::orchestrator::Orchestrator;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use error::TestId;
use serde_json::json;

const OPENAPI: &str = include_str!("openapi.json");

/// The whole API, behind `access` (tokens and the CSRF rules; see [`access`]).
pub fn router(o: Orchestrator, access: Access) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/drivers", get(drivers))
        .route("/api/v1/tests", get(list_tests).post(create_test))
        .route("/api/v1/tests/current", get(current_test))
        .route("/api/v1/tests/{id}", get(get_test).patch(patch_test))
        .route("/api/v1/tests/{id}/trigger", post(trigger_test))
        .route("/api/v1/tests/{id}/stop", post(stop_test))
        .route("/api/v1/tests/{id}/series", get(events::series))
        .route("/api/v1/events", get(events::events))
        .merge(dashboard::routes())
        .merge(prometheus::routes())
        .merge(reports::routes())
        .fallback(|| async { ApiError::not_found("no such endpoint; see /api/v1/openapi.json") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(o)
        .layer(axum::middleware::from_fn_with_state(access, access::guard))
}

/// Readiness: 200 while this orchestrator hears the bus, 503 naming Kafka when it does not.
async fn healthz(State(o): State<Orchestrator>) -> impl IntoResponse {
    let kafka = o.bus_stats().to_json();
    if o.bus_down() {
        let error = "Kafka is unreachable: this orchestrator's own heartbeats have not come back";
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "kafka_unreachable", "error": error, "orchestrator_id": o.id(), "kafka": kafka }),
            ),
        );
    }
    (
        StatusCode::OK,
        Json(json!({ "status": "ok", "orchestrator_id": o.id(), "kafka": kafka })),
    )
}

/// Liveness: the process serves (a Kafka outage is no reason to restart it).
async fn livez() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn drivers(State(o): State<Orchestrator>) -> impl IntoResponse {
    let drivers = dto::drivers(&o.drivers());
    let alive = drivers.iter().filter(|d| d.alive).count();
    Json(json!({ "alive": alive, "drivers": drivers }))
}

async fn list_tests(State(o): State<Orchestrator>) -> impl IntoResponse {
    Json(json!({ "tests": dto::tests(&o.list()) }))
}

async fn create_test(
    State(o): State<Orchestrator>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = parse_input(&body?)?;
    let view = o.create(input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/tests/{}", view.id))],
        Json(dto::Test::from(&view)),
    ))
}

async fn current_test(State(o): State<Orchestrator>) -> Result<impl IntoResponse, ApiError> {
    o.current()
        .map(|v| Json(dto::Test::from(&v)))
        .ok_or_else(|| ApiError::not_found("no test has been created yet"))
}

async fn get_test(
    State(o): State<Orchestrator>,
    TestId(id): TestId,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(dto::Test::from(&o.get(&id)?)))
}

async fn trigger_test(
    State(o): State<Orchestrator>,
    TestId(id): TestId,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(dto::Test::from(&o.trigger(&id).await?)))
}

/// A live rate change of a running test (issue 13): `{"total_rate": …}`, `{"delay_ms": …}` or
/// `{"throughput_per_driver": …}`, as the test gave its pace.
async fn patch_test(
    State(o): State<Orchestrator>,
    TestId(id): TestId,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = parse_json::<RateInput>(&body?)?;
    Ok(Json(dto::Test::from(&o.set_rate(&id, input).await?)))
}

async fn stop_test(
    State(o): State<Orchestrator>,
    TestId(id): TestId,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(dto::Test::from(&o.stop(&id).await?)))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod openapi_tests;
