//! Engine tests against small real HTTP servers on loopback.

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A keep-alive server answering every request with `response`, after `delay`; counts requests.
pub(super) async fn server(
    response: &'static [u8],
    delay: Duration,
) -> (SocketAddr, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..i + 4);
                        c.fetch_add(1, Ordering::Relaxed);
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        if s.write_all(response).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, count)
}

pub(super) const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

pub(super) fn plan(addr: SocketAddr, requests: u64, concurrency: usize, pacer: Pacer) -> Plan {
    Plan {
        request: PreparedRequest::build(&format!("http://{addr}/ping"), "GET", &[], None)
            .expect("request"),
        pacer,
        requests,
        until: None,
        concurrency,
        timeout: Duration::from_secs(5),
        start_at: None,
        mix: Vec::new(),
        checker: Default::default(),
        record_sends: 0,
        max_retimes: 4,
        transport: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_exactly_the_requested_count() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let run = start(plan(addr, 1_000, 16, Pacer::UNPACED))
        .await
        .expect("start");
    let s = run.finished().await;
    assert!(s.done);
    assert_eq!(count.load(Ordering::Relaxed), 1_000);
    assert_eq!(
        (s.sent, s.ok(), s.responses(), s.completed()),
        (1_000, 1_000, 1_000, 1_000)
    );
    assert_eq!(s.recorder.latency.count(), 1_000);
    assert_eq!(s.recorder.service.count(), 1_000);
    assert_eq!(s.recorder.errors.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_cap_holds_and_latency_counts_from_the_due_instant() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let run = start(plan(
        addr,
        200,
        4,
        Pacer::new(Duration::ZERO, Some(1_000.0)),
    ))
    .await
    .expect("start");
    let s = run.finished().await;
    assert_eq!(count.load(Ordering::Relaxed), 200);
    // 200 requests at 1,000/s: the last is due 199 ms after the first.
    assert!(s.elapsed >= Duration::from_millis(199), "{:?}", s.elapsed);
    assert!(s.recorder.latency.summary().min_ms >= s.recorder.service.summary().min_ms);
    assert_latency_is_lag_plus_service(&s.recorder, 200);
}

/// Per request, latency from the due instant = schedule lag + service time, so the exact sums
/// agree to the truncation of each figure to whole microseconds.
fn assert_latency_is_lag_plus_service(r: &Recorder, n: u64) {
    assert_eq!(
        (r.latency.count(), r.service.count(), r.lag.count()),
        (n, n, n)
    );
    let parts = r.lag.sum_us + r.service.sum_us;
    assert!(
        r.latency.sum_us >= parts && r.latency.sum_us <= parts + 2 * n,
        "latency {} µs vs lag {} + service {}",
        r.latency.sum_us,
        r.lag.sum_us,
        r.service.sum_us
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaced_run_has_no_schedule_lag() {
    let (addr, _) = server(OK, Duration::ZERO).await;
    let s = start(plan(addr, 300, 4, Pacer::UNPACED))
        .await
        .expect("start")
        .finished()
        .await;
    assert_eq!((s.ok(), s.recorder.lag.count()), (300, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_shows_in_latency_not_in_the_schedule() {
    // One connection, 20 ms per response, a request due every 5 ms: the backlog must show up as
    // latency measured from the due instant (coordinated omission), far above the service time.
    let (addr, _) = server(OK, Duration::from_millis(20)).await;
    let s = start(plan(
        addr,
        20,
        1,
        Pacer::new(Duration::from_millis(5), None),
    ))
    .await
    .expect("start")
    .finished()
    .await;
    let lat = s.recorder.latency.summary();
    let svc = s.recorder.service.summary();
    assert!(svc.max_ms < 100.0, "service {svc:?}");
    assert!(lat.max_ms > 250.0, "latency {lat:?}");
    // The wait for the one busy connection is the schedule lag: requests left late, and say so.
    let lag = s.recorder.lag.summary();
    assert!(lag.max_ms > 250.0, "lag {lag:?}");
    assert_latency_is_lag_plus_service(&s.recorder, 20);
}

#[tokio::test]
async fn counts_http_errors_by_class() {
    let (addr, _) = server(
        b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
        Duration::ZERO,
    )
    .await;
    let s = start(plan(addr, 50, 2, Pacer::UNPACED))
        .await
        .expect("start")
        .finished()
        .await;
    assert_eq!(
        (
            s.recorder.status.0[4],
            s.recorder.errors.http,
            s.ok(),
            s.completed()
        ),
        (50, 50, 0, 50)
    );
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    let s = start(plan(addr, 30, 3, Pacer::UNPACED))
        .await
        .expect("start")
        .finished()
        .await;
    assert_eq!(
        (s.recorder.errors.connect, s.completed(), s.responses()),
        (30, 30, 0)
    );
}

#[tokio::test]
async fn timeouts_are_counted() {
    let (addr, _) = server(OK, Duration::from_secs(30)).await;
    let mut p = plan(addr, 3, 3, Pacer::UNPACED);
    p.timeout = Duration::from_millis(100);
    let s = start(p).await.expect("start").finished().await;
    assert_eq!((s.recorder.errors.timeout, s.completed()), (3, 3));
}

/// Stops `run` once three responses are in (polled, with a deadline), and returns its end.
async fn stop_after_three_responses(run: &Running) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(5);
    while run.snapshot().responses() < 3 {
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.stop();
    tokio::time::timeout(Duration::from_secs(5), run.finished())
        .await
        .expect("stops promptly")
}

#[tokio::test]
async fn stop_ends_a_run_early() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let run = start(plan(
        addr,
        1_000_000,
        2,
        Pacer::new(Duration::from_millis(10), None),
    ))
    .await
    .expect("start");
    let s = stop_after_three_responses(&run).await;
    assert!(s.done && s.sent < 1_000_000);
    assert_eq!(count.load(Ordering::Relaxed), s.sent);
}

#[tokio::test]
async fn waits_for_the_start_instant() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let mut p = plan(addr, 5, 5, Pacer::UNPACED);
    p.start_at = Some(SystemTime::now() + Duration::from_millis(300));
    let run = start(p).await.expect("start");
    assert_eq!(count.load(Ordering::Relaxed), 0);
    let s = run.finished().await;
    assert_eq!(s.ok(), 5);
    assert!(run.start() <= Instant::now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_requests_never_leave_before_their_due_instant() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let gap = Duration::from_micros(700);
    let mut p = plan(addr, 300, 8, Pacer::new(gap, None));
    p.record_sends = 300;
    let run = start(p).await.expect("start");
    let s = run.finished().await;
    assert_eq!((count.load(Ordering::Relaxed), s.ok()), (300, 300));
    let sent = run.send_offsets();
    assert_eq!(sent.len(), 300);
    for (i, at) in sent.iter().enumerate() {
        let at = at.unwrap_or_else(|| panic!("request {i} has no send instant"));
        let due = gap * u32::try_from(i).expect("small");
        assert!(
            at >= due,
            "request {i} left {:?} before its due instant",
            due - at
        );
    }
    // What the machine allows is not asserted here (benchmarks measure it); only that the
    // figures exist and agree: every gap between consecutive sends is measured.
    let g = crate::stats::send_gaps(&sent, gap).expect("gaps");
    assert_eq!(g.gaps, 299);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_run_sends_its_schedule_and_counts_sends_per_stage() {
    use crate::schedule::{Schedule, Stage};
    let (addr, count) = server(OK, Duration::ZERO).await;
    // A ramp 0 → 1,000/s over 200 ms (100 requests), then 300 ms flat (300 requests).
    let schedule = Schedule::new(
        0.0,
        &[
            Stage {
                duration: Duration::from_millis(200),
                rate: 1_000.0,
            },
            Stage {
                duration: Duration::from_millis(300),
                rate: 1_000.0,
            },
        ],
    );
    let total = schedule.total();
    assert_eq!(total, 400);
    let mut p = plan(addr, total, 4, Pacer::staged(schedule.clone()));
    p.record_sends = 400;
    let run = start(p).await.expect("start");
    let s = run.finished().await;
    assert_eq!(
        (count.load(Ordering::Relaxed), s.sent, s.ok()),
        (400, 400, 400)
    );
    assert_eq!(s.recorder.stage_sent.iter().sum::<u64>(), 400);
    assert_eq!(s.recorder.stage_sent.len(), 2);
    assert_latency_is_lag_plus_service(&s.recorder, 400);
    for (i, at) in run.send_offsets().iter().enumerate() {
        let at = at.unwrap_or_else(|| panic!("request {i} has no send instant"));
        let due = schedule.due(i as u64).expect("due");
        assert!(at >= due, "request {i} left before its due instant");
    }
    assert!(s.elapsed >= schedule.due(399).expect("due"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaced_time_bound_run_sends_until_its_end_and_says_it_was_not_stopped() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let mut p = plan(addr, u64::MAX, 2, Pacer::UNPACED);
    p.until = Some(Duration::from_millis(300));
    let s = start(p).await.expect("start").finished().await;
    assert!(s.done && s.time_bound && !s.stopped);
    assert_eq!(s.requests, 0, "an open count is shown as 0");
    assert_eq!(count.load(Ordering::Relaxed), s.sent);
    assert_eq!(s.ok(), s.sent);
    assert!(s.sent > 10, "sent {}", s.sent);
    assert!(s.elapsed >= Duration::from_millis(300), "{:?}", s.elapsed);

    // Stopped halfway, it says so.
    let (addr, _) = server(OK, Duration::ZERO).await;
    let mut p = plan(addr, u64::MAX, 2, Pacer::UNPACED);
    p.until = Some(Duration::from_secs(30));
    let run = start(p).await.expect("start");
    let s = stop_after_three_responses(&run).await;
    assert!(s.stopped && s.time_bound);
}

/// A keep-alive server answering `200 ok` and counting requests by their first line's path.
async fn path_server() -> (SocketAddr, Arc<std::sync::Mutex<BTreeMap<String, u64>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let paths = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let p = paths.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let p = p.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..i]).to_string();
                        pending.drain(..i + 4);
                        let path = head.split(' ').nth(1).unwrap_or("").to_string();
                        *p.lock().expect("lock").entry(path.clone()).or_insert(0) += 1;
                        let body = if path == "/bad" { "nope" } else { "ok" };
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if s.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, paths)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mix_sends_each_entry_by_weight_and_checks_bodies() {
    let (addr, paths) = path_server().await;
    let req = |p: &str| {
        PreparedRequest::build(&format!("http://{addr}{p}"), "GET", &[], None).expect("request")
    };
    let mut p = plan(addr, 1_001, 8, Pacer::UNPACED);
    p.request = req("/a");
    p.mix = vec![
        MixRequest {
            request: req("/a"),
            weight: 3,
            checker: None,
        },
        MixRequest {
            request: req("/bad"),
            weight: 1,
            checker: Some(Checker::new(vec![], Some(b"ok"), vec![])),
        },
    ];
    let s = start(p).await.expect("start").finished().await;
    let want = mix::counts(&[3, 1], 1_001);
    assert_eq!(want, vec![751, 250]);
    let got = paths.lock().expect("lock").clone();
    assert_eq!((got["/a"], got["/bad"]), (751, 250), "{got:?}");
    let by: Vec<(u64, u64, u64)> = s
        .recorder
        .by_name
        .iter()
        .map(|n| (n.sent, n.status.total(), n.errors.check))
        .collect();
    assert_eq!(by, vec![(751, 751, 0), (250, 250, 250)]);
    assert_eq!(
        (s.recorder.errors.check, s.recorder.checks.body),
        (250, 250)
    );
    assert_eq!(s.recorder.by_name[0].latency.count(), 751);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_leaves_after_the_lease_and_the_run_says_it_lapsed() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let mut p = plan(addr, 100, 4, Pacer::new(Duration::from_millis(10), None));
    p.record_sends = 100;
    p.start_at = Some(SystemTime::now() + Duration::from_millis(50));
    let run = start(p).await.expect("start");
    assert_eq!(run.lease(), None, "no lease until one is given");
    let lease = Duration::from_millis(205);
    run.extend_lease(run.start() + lease);
    // A shorter grant never shortens it.
    run.extend_lease(run.start() + Duration::from_millis(1));
    assert_eq!(run.lease(), Some(run.start() + lease));
    let s = run.finished().await;
    assert!(s.lapsed && s.stopped, "{s:?}");
    // Lapsed, it is not renewed by news that comes late.
    run.extend_lease(tokio::time::Instant::now() + Duration::from_secs(60));
    assert_eq!(run.lease(), Some(run.start() + lease));
    let sent: Vec<Duration> = run.send_offsets().into_iter().flatten().collect();
    assert_eq!(sent.len() as u64, s.sent);
    assert!(s.sent >= 10 && s.sent < 100, "sent {}", s.sent);
    assert!(
        sent.iter().all(|&at| at <= lease),
        "a send after the lease: {sent:?}"
    );
    assert_eq!(
        count.load(Ordering::Relaxed),
        s.sent,
        "the server saw what was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_change_moves_the_rest_of_the_schedule_from_its_instant() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let ms = Duration::from_millis;
    let mut p = plan(addr, 200, 8, Pacer::new(ms(2), None));
    p.record_sends = 200;
    let start_at = SystemTime::now() + ms(200);
    p.start_at = Some(start_at);
    let run = start(p).await.expect("start");
    // Planned before the start, for 100 ms into the run: requests 0..50 stay 2 ms apart (the
    // 50th would have been due at 100 ms), the rest follow at 1 ms from there.
    let r = run.retime(start_at + ms(100), ms(1), 7).expect("retimed");
    assert_eq!((r.tag, r.first, r.gap), (7, 50, ms(1)));
    assert_eq!(r.at, start_at + ms(100));
    let s = run.finished().await;
    assert_eq!((count.load(Ordering::Relaxed), s.ok()), (200, 200));
    assert_eq!(s.retimes, vec![r]);
    let due = |i: u32| {
        if i < 50 {
            ms(2) * i
        } else {
            ms(50) + ms(1) * i
        }
    };
    for (i, at) in run.send_offsets().iter().enumerate() {
        let i = u32::try_from(i).expect("small");
        let at = at.unwrap_or_else(|| panic!("request {i} has no send instant"));
        assert!(at >= due(i), "request {i} left {:?} early", due(i) - at);
    }
    // An unpaced run has no pace to change.
    let run = start(plan(addr, 1, 1, Pacer::UNPACED))
        .await
        .expect("start");
    assert_eq!(
        run.retime(SystemTime::now(), ms(1), 1),
        Err(RetimeError::NotConstant)
    );
    run.finished().await;
}
