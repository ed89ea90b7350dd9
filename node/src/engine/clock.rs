//! The engine's clock: one task that lets each paced request go at its due instant.
//!
//! Workers do not time their own requests. Each waits for a permit from [`Shared::gate`]; the
//! clock adds one permit at each due instant, so the first free worker takes it and sends at
//! once. One clock for the whole run means one precise wait at a time (see `wait`), whatever
//! the number of connections, and a wake-up costs one timer, not one per connection:
//!
//! - when every connection is busy, permits wait for a worker (the request then leaves late,
//!   and its schedule lag says so);
//! - when the clock itself is late (a busy machine), it lets every request go whose instant has
//!   passed at once: the schedule is absolute ([`Pacer::due_by`]), so lateness never
//!   accumulates;
//! - an unpaced run gets one permit per worker at the start instant, and no clock after that;
//! - a live rate change (`retime`) wakes it to wait for the next instant of the new schedule,
//!   and a raised count (a hand-over, `Running::extend`) to release the requests added;
//! - the gate is closed at the end (by the worker of the last request) or on a stop, and a
//!   closed gate tells every waiting worker that nothing is left.
//!
//! [`Pacer::due_by`]: super::Pacer::due_by

use super::wait::Waiter;
use super::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The most permits added at once (the semaphore's own bound is far above any test's size).
const MAX_BATCH: u64 = 1 << 32;

pub(super) async fn run(shared: Arc<Shared>, workers: usize) {
    let stop = shared.stop_notify.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    if shared.stopped.load(Ordering::Relaxed) {
        return;
    }
    if shared.requests() == 0 && shared.count.close_at(0) {
        // Nothing to send: the workers end at once.
        shared.gate.close();
        return idle().await;
    }
    let mut waiter = Waiter::new();
    let mut released = 0u64;
    loop {
        if released >= shared.requests() {
            if shared.count.is_closed() {
                break;
            }
            // Every permit of the count is out, and a hand-over may still raise it (`extend`
            // wakes this wait; a wake-up that came first is kept by the `Notify`).
            tokio::select! {
                () = shared.retimed.notified() => continue,
                () = &mut stop => return,
            }
        }
        let Some(offset) = shared.due(released) else {
            // Unpaced: every worker goes at the start instant.
            tokio::select! {
                () = waiter.until(shared.start) => {}
                () = &mut stop => return,
            }
            shared.gate.add_permits(workers);
            return idle().await;
        };
        tokio::select! {
            () = waiter.until(shared.start + offset) => {}
            () = &mut stop => return,
            // A rate change moved the instants to come: wait for the new one instead. Requests
            // due before the change keep theirs, so none already waited for is moved earlier
            // than it was let go.
            () = shared.retimed.notified() => continue,
        }
        if shared.due(released) != Some(offset) {
            // Retimed just as the wait ended (the wake-up is still pending): the instant waited
            // for is no longer this request's.
            continue;
        }
        let elapsed = Instant::now().saturating_duration_since(shared.start);
        let due = shared.due_by(elapsed).max(released + 1);
        let batch = (due - released).min(MAX_BATCH);
        shared
            .gate
            .add_permits(usize::try_from(batch).unwrap_or(Semaphore::MAX_PERMITS / 2));
        released += batch;
    }
    idle().await
    // The worker that sends the last request closes the gate once its response is in, which
    // lets the others end (see `worker`). Waking them all here, as the last request leaves,
    // would make it wait its turn behind them.
}

/// The clock stays until the run aborts it when every worker has ended: ending sooner would
/// put the cost of its own teardown (its timer's deregistration from the reactor, measured at
/// up to a millisecond in a VM) on a request still to leave or to be answered.
async fn idle() {
    std::future::pending::<()>().await;
}
