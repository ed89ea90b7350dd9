//! Exports of a finished test (see `docs/reports.md`):
//! - `GET /api/v1/tests/{id}/report.json`: the test's view plus its chart points;
//! - `GET /api/v1/tests/{id}/report.csv`: one row for all drivers and one per driver;
//! - `GET /api/v1/tests/{id}/report.html`: a self-contained HTML report with charts;
//! - `GET /api/v1/tests/{id}/series.csv`: the chart points.
//!
//! A test that has not ended is a `409` (its numbers are not final; the live view is at
//! `GET /api/v1/tests/{id}`); an unknown test is a `404`.

use super::error::TestId;
use super::ApiError;
use crate::model::TestStatus;
use crate::orchestrator::series::Point;
use crate::orchestrator::view::TestView;
use crate::orchestrator::{Orchestrator, OrchestratorError};
use crate::report;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<Orchestrator> {
    Router::new()
        .route("/api/v1/tests/{id}/report.json", get(report_json))
        .route("/api/v1/tests/{id}/report.csv", get(report_csv))
        .route("/api/v1/tests/{id}/report.html", get(report_html))
        .route("/api/v1/tests/{id}/series.csv", get(series_csv))
}

async fn report_json(
    State(o): State<Orchestrator>,
    TestId(id): TestId,
) -> Result<Response, ApiError> {
    let (view, points) = finished(&o, &id).await?;
    let body = report::json(&view, &points).to_string();
    Ok(file(&view, "json", "application/json", body, true))
}

async fn report_csv(
    State(o): State<Orchestrator>,
    TestId(id): TestId,
) -> Result<Response, ApiError> {
    let view = finished_view(&o, &id)?;
    let body = report::csv(&view);
    Ok(file(&view, "csv", CSV, body, true))
}

async fn series_csv(
    State(o): State<Orchestrator>,
    TestId(id): TestId,
) -> Result<Response, ApiError> {
    let (view, points) = finished(&o, &id).await?;
    let body = report::series_csv(&points);
    Ok(file(&view, "series.csv", CSV, body, true))
}

async fn report_html(
    State(o): State<Orchestrator>,
    TestId(id): TestId,
) -> Result<Response, ApiError> {
    let (view, points) = finished(&o, &id).await?;
    let body = report::html(&view, &points);
    let mut resp = file(&view, "html", "text/html; charset=utf-8", body, false);
    let h = resp.headers_mut();
    // The same policy as the page's own <meta>, plus what only a header can say.
    let csp = format!("{}; frame-ancestors 'none'", report::CSP);
    if let Ok(v) = csp.parse() {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(resp)
}

const CSV: &str = "text/csv; charset=utf-8; header=present";

/// A download: `attachment` asks browsers to save it, `inline` to show it (the HTML report),
/// and both carry the file name `floodgate-<id>.<ext>`.
fn file(
    view: &TestView,
    ext: &str,
    content_type: &str,
    body: String,
    attachment: bool,
) -> Response {
    let disposition = format!(
        "{}; filename=\"{}\"",
        if attachment { "attachment" } else { "inline" },
        report::file_name(view, ext)
    );
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        body,
    )
        .into_response()
}

/// The test's view if it has ended; a `409` saying why not otherwise.
/// The view is the one reports are made from, so its secret header values are redacted here.
fn finished_view(o: &Orchestrator, id: &str) -> Result<TestView, ApiError> {
    let mut view = o.get(id)?;
    view.spec = view.spec.shown();
    let why = match view.status {
        s if s.is_finished() && view.settled => return Ok(view),
        s if s.is_finished() => format!(
            "test {id} has just been stopped and its drivers' last reports are still arriving: \
             ask again in a few seconds"
        ),
        TestStatus::Created => format!(
            "test {id} has not run yet (created, not triggered): reports exist once a test has \
             ended"
        ),
        _ => format!(
            "test {id} is still running: reports exist once it has ended (follow it at \
             GET /api/v1/tests/{id}, or stop it with POST /api/v1/tests/{id}/stop)"
        ),
    };
    Err(OrchestratorError::Conflict(why).into())
}

async fn finished(o: &Orchestrator, id: &str) -> Result<(TestView, Vec<Point>), ApiError> {
    let view = finished_view(o, id)?;
    // A test's points are in memory until the store holds them, so they are always in one of
    // the two: no waiting here.
    let (points, _) = o.series(id).await?;
    Ok((view, points))
}
