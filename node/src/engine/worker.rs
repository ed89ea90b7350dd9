//! The hot loop of one worker: claim the next request index, wait for its due instant, send it on
//! the worker's own connection, record the outcome. Nothing here allocates per request.

use super::conn::{Conn, SendError};
use super::recorder::WorkerStats;
use super::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;

pub(super) async fn run(shared: Arc<Shared>, stats: Arc<WorkerStats>) {
    let mut conn: Option<Conn> = None;
    // Every driver begins at the orchestrator's start instant, paced or not.
    if shared.start > Instant::now() {
        tokio::select! {
            _ = tokio::time::sleep_until(shared.start) => {}
            _ = shared.stop_notify.notified() => return,
        }
    }
    loop {
        if shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        // Claiming indices from one counter is what makes the order first come, first served:
        // whichever worker is free first takes the next request.
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= shared.total {
            return;
        }
        let intended = match shared.pacer.due(index) {
            Some(offset) => {
                let due = shared.start + offset;
                if due > Instant::now() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due) => {}
                        _ = shared.stop_notify.notified() => return,
                    }
                }
                if shared.stopped.load(Ordering::Relaxed) {
                    return;
                }
                due
            }
            None => Instant::now(),
        };
        let sent_at = Instant::now();
        stats.sent.fetch_add(1, Ordering::Relaxed);
        let outcome = tokio::time::timeout(shared.timeout, send(&shared, &mut conn)).await;
        let done_at = Instant::now();
        let mut rec = stats.lock();
        match outcome {
            Ok(Ok(resp)) => {
                rec.latency.record(micros(done_at - intended));
                rec.service.record(micros(done_at - sent_at));
                rec.status.record(resp.status);
                if !(200..300).contains(&resp.status) {
                    rec.errors.http += 1;
                }
                if !resp.keep_alive {
                    conn = None;
                }
            }
            Ok(Err(e @ SendError::Connect(_))) => {
                rec.errors.connect += 1;
                rec.note_error(&e);
                conn = None;
            }
            Ok(Err(e)) => {
                rec.errors.io += 1;
                rec.note_error(&e);
                conn = None;
            }
            Err(_elapsed) => {
                rec.errors.timeout += 1;
                // The response may still arrive; the connection is out of step, so drop it.
                conn = None;
            }
        }
    }
}

async fn send(
    shared: &Shared,
    conn: &mut Option<Conn>,
) -> Result<super::conn::Response, SendError> {
    if let Some(c) = conn {
        match c.send(&shared.request.bytes, shared.request.is_head).await {
            Err(SendError::Stale) => *conn = None,
            other => return other,
        }
    }
    let c = conn.insert(Conn::connect(shared.addr).await?);
    c.send(&shared.request.bytes, shared.request.is_head).await
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
