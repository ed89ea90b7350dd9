//! The hot loop of one worker: take the clock's permit (paced runs), claim the next request
//! index, send it on the worker's own connection, record the outcome. Nothing here allocates per
//! request.
//!
//! On loopback most of the cost of a request is the kernel's (one `write` and usually one `read`
//! on the connection, plus a share of `epoll_wait`), so the loop keeps its own part small:
//!
//! - **No timer per request.** `tokio::time::timeout` inserts an entry in the runtime's timer
//!   wheel (under a lock) for every request and removes it again on drop. Instead each worker
//!   owns one [`Sleep`] for the request timeout, armed once and left alone while it is due no
//!   later than the current request's deadline: deadlines only move forward (each is the send
//!   instant plus the same timeout), so a timer armed for an earlier request can only fire early,
//!   never late. When it fires before the current deadline it is re-armed for that deadline, so it
//!   fires about once per timeout period per worker instead of being touched on every request.
//! - **No pacing timer at all**: the engine's one clock (`clock`) lets each paced request go at
//!   its due instant with a permit, so a worker only waits on a semaphore. Its send instant
//!   minus the due instant is the request's schedule lag, recorded apart from the latency.
//! - **One stop listener per worker**, reused for every request rather than built each time.
//! - **Two clock reads per unpaced request** (send and completion): an unpaced request is due the
//!   moment its worker is free, so its intended instant *is* its send instant, and its latency and
//!   service time are the same number, recorded once (see [`StatsShard::mirror_service`]).
//! - **No shared writes besides the index counter** (which sits on its own cache lines) and, in a
//!   paced run, the clock's semaphore: results go to the stats shard of the thread the worker is
//!   running on, whose lock only a snapshot ever contends.
//!
//! [`Sleep`]: tokio::time::Sleep

use super::check::Body;
use super::client::{After, Client};
use super::conn::SendError;
use super::recorder::{shard_for_this_thread, Ended, StatsShard};
use super::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub(super) async fn run<C: Client>(shared: Arc<Shared>, stats: Arc<[StatsShard]>, mut client: C) {
    // Created (and enabled) before the first look at `stopped`, so a stop that comes later is
    // seen either through the flag or through this future, never missed.
    let stop = shared.stop_notify.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    // The request-timeout timer: created once, reset as needed; not registered with the runtime
    // until first reset.
    let deadline_timer = tokio::time::sleep_until(shared.start);
    tokio::pin!(deadline_timer);
    let mut deadline_armed = false;
    let paced = shared.pacer.is_paced();
    // The current response's body, kept only for checks that read it; reused.
    let mut body = Body::default();

    // Connected before the first request, while waiting for the start instant or the first
    // permit: a request's latency is then the target's answer, not the TCP handshake (a test
    // that waits a second between config and trigger gives every connection time to open). A
    // failure here is not counted: the first request connects again, and counts its error.
    tokio::select! {
        () = client.preconnect(&shared) => {},
        () = &mut stop => return,
    }
    // Every driver begins at the orchestrator's start instant, paced or not: the clock lets each
    // worker go then (see `clock`).
    if !paced && !take_permit(&shared, stop.as_mut()).await {
        return;
    }
    loop {
        if shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        // A paced request waits for the clock to let it go at its due instant.
        if paced && !take_permit(&shared, stop.as_mut()).await {
            return;
        }
        // Claiming indices from one counter is what makes the order first come, first served:
        // whichever worker is free first takes the next request. A paced index is claimed only
        // after its permit, so it is never claimed before it is due.
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if !within_count(&shared, index) {
            return;
        }
        let sent_at = Instant::now();
        if shared.end.is_some_and(|end| sent_at >= end) {
            // A time-bound run's time is up; the index claimed is simply not sent.
            return;
        }
        if shared.lease_lapsed_at(sent_at) {
            // Cut off too long (the fail-safe): nothing more leaves, not even what is due.
            return;
        }
        if let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| shared.sends.get(i))
        {
            // Stored plus one, so that 0 means "not sent".
            slot.store(shared.offset_ns(sent_at) + 1, Ordering::Relaxed);
        }
        if index < shared.workers {
            // Stored plus one, so that 0 means "none yet"; see `Shared::first_send`.
            let ns = shared.offset_ns(sent_at) + 1;
            let _ = shared
                .first_send
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    (v == 0 || ns < v).then_some(ns)
                });
        }
        let intended = match shared.due(index) {
            Some(offset) => shared.start + offset,
            None => sent_at,
        };
        let (entry, request, checker) = shared.mix.pick(index);
        // The shard is picked afresh after every `.await`: the task may have moved thread.
        {
            let shard = shard_for_this_thread(&stats);
            shard.sent.fetch_add(1, Ordering::Relaxed);
            if let Some(n) = shard.name_sent.get(entry) {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        let keep = checker.needs_body().then_some(&mut body);

        // The request's deadline; `None` when the timeout is too large to represent (no limit).
        let deadline = sent_at.checked_add(shared.timeout);
        if let Some(d) = deadline {
            // Arm the timer only when it is not already pending for an earlier (so sooner)
            // deadline; see the module docs.
            if !deadline_armed || deadline_timer.is_elapsed() {
                deadline_timer.as_mut().reset(d);
                deadline_armed = true;
            }
        }
        let outcome = {
            let request = client.send(&shared, request, keep);
            tokio::pin!(request);
            loop {
                tokio::select! {
                    biased;
                    r = &mut request => break Some(r),
                    () = &mut deadline_timer, if deadline.is_some() => match deadline {
                        // It fired for an earlier request's deadline: re-arm for this one.
                        Some(d) if Instant::now() < d => deadline_timer.as_mut().reset(d),
                        _ => break None,
                    },
                }
            }
        };
        let done_at = Instant::now();
        // Judged outside the shard's lock: a JSON check parses the body.
        let judged = match &outcome {
            Some(Ok(resp)) => checker.judge(resp.status, &body),
            _ => Default::default(),
        };
        let after = {
            let shard = shard_for_this_thread(&stats);
            let mut rec = shard.lock();
            if let Some(h) = client.take_handshake() {
                // The connection opened for (or before) this request: its cost, apart.
                rec.connect.record(h.connect_us);
                if let Some(tls) = h.tls_us {
                    rec.tls.record(tls);
                    rec.tls_resumed += u64::from(h.resumed);
                }
            }
            if !shard.mirror_service {
                // Paced: how late it left, whatever its outcome.
                rec.lag
                    .record_from_zero(micros(sent_at.saturating_duration_since(intended)));
            }
            if let Some(schedule) = shared.pacer.schedule() {
                // Counted in the stage it left in, not the one it was due in: a stage's
                // achieved rate then shows lateness (see docs/decisions.md, issue 12).
                let k = schedule.stage_at(sent_at.saturating_duration_since(shared.start));
                if let Some(n) = rec.stage_sent.get_mut(k) {
                    *n += 1;
                }
            }
            match outcome {
                Some(Ok(resp)) => {
                    let service = micros(done_at - sent_at);
                    let latency_us = if shard.mirror_service {
                        // Unpaced: intended == sent_at, so latency == service time; the snapshot
                        // copies it (see `StatsShard::mirror_service`).
                        rec.latency.record(service);
                        service
                    } else {
                        let l = micros(done_at - intended);
                        rec.latency.record(l);
                        rec.service.record(service);
                        l
                    };
                    rec.count(
                        entry,
                        Ended::Response {
                            status: resp.status,
                            latency_us,
                            judged,
                        },
                    );
                    if resp.keep_alive {
                        After::Kept
                    } else {
                        After::Closed
                    }
                }
                // A failed TLS handshake is a connection that could not be opened.
                Some(Err(e @ (SendError::Connect(_) | SendError::Tls(_)))) => {
                    rec.count(entry, Ended::Connect);
                    rec.note_error(&e);
                    After::Failed
                }
                Some(Err(e)) => {
                    rec.count(entry, Ended::Io);
                    rec.note_error(&e);
                    After::Failed
                }
                None => {
                    rec.count(entry, Ended::Timeout);
                    After::TimedOut
                }
            }
        };
        // Outside the lock: a snapshot never waits for a socket to close.
        client.after(after);
        if paced && shared.count.close_at(index + 1) {
            // The last request of the run is in (and no hand-over raised the count meanwhile):
            // the workers waiting for a permit can end.
            shared.gate.close();
        }
    }
}

/// Whether the claimed `index` is one to send. Past the count, the count is closed where this
/// worker saw it: a hand-over that raised it first makes the index one to send after all (no
/// index is skipped), and one that comes after is refused (see `Count`).
fn within_count(shared: &Shared, index: u64) -> bool {
    loop {
        let n = shared.requests();
        if index < n {
            return true;
        }
        if shared.count.close_at(n) || shared.count.is_closed() {
            return false;
        }
    }
}

/// Waits for the clock's permit to send; `false` when the run was stopped.
async fn take_permit(
    shared: &Shared,
    stop: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
) -> bool {
    tokio::select! {
        permit = shared.gate.acquire() => match permit {
            Ok(p) => {
                p.forget();
                !shared.stopped.load(Ordering::Relaxed)
            }
            // Closed: stopped.
            Err(_) => false,
        },
        () = stop => false,
    }
}

/// Whole microseconds, saturating. Avoids `Duration::as_micros`, whose u128 division is a
/// library call on every request.
fn micros(d: Duration) -> u64 {
    super::connect::micros(d)
}

#[cfg(test)]
mod tests {
    use super::micros;
    use crate::engine::{start_at_addr, Pacer, Plan, PreparedRequest};
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn micros_truncates_and_saturates() {
        assert_eq!(micros(Duration::from_nanos(1_999)), 1);
        assert_eq!(micros(Duration::new(3, 250_000_999)), 3_250_000);
        assert_eq!(micros(Duration::MAX), u64::MAX);
    }

    /// One keep-alive connection; the n-th request (0-based) is answered after `delays[n]`, or
    /// never once the list runs out.
    async fn server(delays: Vec<Duration>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            for delay in delays {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if s.write_all(ok).await.is_err() {
                    return;
                }
            }
            // Hold the connection open without answering.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        addr
    }

    fn plan(addr: SocketAddr, requests: u64, timeout: Duration) -> Plan {
        Plan {
            request: PreparedRequest::build(&format!("http://{addr}/"), "GET", &[], None)
                .expect("request"),
            pacer: Pacer::UNPACED,
            requests,
            until: None,
            concurrency: 1,
            timeout,
            start_at: None,
            mix: Vec::new(),
            checker: Default::default(),
            record_sends: 0,
            max_retimes: 0,
            transport: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_reused_deadline_timer_fires_only_for_the_current_request() {
        // Each response takes 120 ms against a 200 ms timeout: the timer armed for request 1
        // fires during request 2, which must not time out, only re-arm.
        let ms = Duration::from_millis;
        let addr = server(vec![ms(120), ms(120), ms(120)]).await;
        let s = start_at_addr(plan(addr, 3, ms(200)), addr).finished().await;
        assert_eq!((s.ok(), s.recorder.errors.timeout), (3, 0));
        assert_eq!(s.recorder.service.count(), 3);

        // The second request is never answered: it times out about 200 ms after it was sent.
        let addr = server(vec![ms(0)]).await;
        let s = start_at_addr(plan(addr, 2, ms(200)), addr).finished().await;
        assert_eq!(
            (s.ok(), s.recorder.errors.timeout, s.completed()),
            (1, 1, 2)
        );
        assert!(
            s.elapsed >= ms(200) && s.elapsed < ms(1_000),
            "{:?}",
            s.elapsed
        );
    }
}
