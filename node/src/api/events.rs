//! Live updates for the dashboard: a Server-Sent Events stream that pushes, twice a second,
//! the drivers, the current test and the chart points added since the last event.

use super::dto;
use super::error::TestId;
use crate::orchestrator::Orchestrator;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{self, Stream};
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;

use super::ApiError;

pub const EVENT_INTERVAL: Duration = Duration::from_millis(500);

/// `GET /api/v1/tests/{id}/series`: every chart point of a test.
pub async fn series(
    State(o): State<Orchestrator>,
    TestId(id): TestId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (points, generation) = o.series(&id).await?;
    Ok(Json(
        json!({ "test_id": id, "generation": generation, "points": points }),
    ))
}

/// What one client has been sent so far.
struct Cursor {
    test_id: Option<String>,
    sent: usize,
    generation: u64,
}

/// `GET /api/v1/events`: `state` events. Each carries `drivers`, `test` (the current test or
/// null) and `points`, the chart points the client does not have yet; `reset: true` means
/// "drop the points you have" (another test, or a long series that was thinned out).
pub async fn events(
    State(o): State<Orchestrator>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let cursor = Cursor {
        test_id: None,
        sent: 0,
        generation: 0,
    };
    let stream = stream::unfold((o, cursor, true), |(o, mut cur, first)| async move {
        if !first {
            tokio::time::sleep(EVENT_INTERVAL).await;
        }
        let test = o.current();
        let id = test.as_ref().map(|t| t.id.clone());
        let mut reset = false;
        if id != cur.test_id {
            cur = Cursor {
                test_id: id.clone(),
                sent: 0,
                generation: 0,
            };
            reset = true;
        }
        let mut points = Vec::new();
        if let Some(id) = &id {
            match o.series_since(id, cur.sent) {
                Some((mut new, generation)) => {
                    if generation != cur.generation {
                        cur.generation = generation;
                        cur.sent = 0;
                        reset = true;
                        new = o.series_since(id, 0).map(|(p, _)| p).unwrap_or_default();
                    }
                    cur.sent += new.len();
                    points = new;
                }
                // The test has ended: its points come from the store, once.
                None if cur.sent == 0 => {
                    points = o.series(id).await.map(|(p, _)| p).unwrap_or_default();
                    cur.sent = points.len().max(1);
                }
                None => {}
            }
        }
        let data = json!({
            "drivers": dto::drivers(&o.drivers()),
            "test": test.as_ref().map(dto::Test::from),
            "points": points,
            "reset": reset,
        });
        let event = Event::default().event("state").data(data.to_string());
        Some((Ok(event), (o, cur, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
