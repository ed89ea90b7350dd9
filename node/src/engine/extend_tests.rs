//! A run's count raised while it runs (issue 13's hand-over): every request added is sent
//! exactly once, on the run's schedule, and a count already final refuses the raise.

use super::tests::{plan, server, OK};
use super::*;
use std::sync::atomic::AtomicU64;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_run_sends_the_requests_added_on_its_schedule() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let mut p = plan(addr, 100, 8, Pacer::new(ms(1), None));
    p.record_sends = 200;
    p.start_at = Some(SystemTime::now() + ms(100));
    let run = start(p).await.expect("start");
    assert_eq!(run.extend(60), Ok(160));
    let s = run.finished().await;
    assert_eq!(
        (count.load(Ordering::Relaxed), s.sent, s.ok()),
        (160, 160, 160)
    );
    assert_eq!(s.requests, 160);
    // The added requests follow the first ones 1 ms apart, as if planned from the start: none
    // leaves before its due instant.
    for (i, at) in run.send_offsets().iter().take(160).enumerate() {
        let at = at.unwrap_or_else(|| panic!("request {i} has no send instant"));
        assert!(at >= ms(i as u64), "request {i} left at {at:?}");
    }
    assert_eq!(run.extend(1), Err(Extended::Ended));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_run_whose_permits_are_all_out_still_takes_a_raise() {
    // Every permit is released within 10 ms; the slow server keeps the last answer 100 ms away.
    let (addr, count) = server(OK, ms(100)).await;
    let run = start(plan(addr, 10, 16, Pacer::new(ms(1), None)))
        .await
        .expect("start");
    while run.snapshot().sent < 10 {
        tokio::time::sleep(ms(1)).await;
    }
    assert_eq!(run.extend(5), Ok(15));
    let s = run.finished().await;
    assert_eq!((count.load(Ordering::Relaxed), s.ok()), (15, 15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raises_racing_an_unpaced_run_lose_no_request_and_send_none_twice() {
    let (addr, count) = server(OK, Duration::ZERO).await;
    let run = start(plan(addr, 2_000, 8, Pacer::UNPACED))
        .await
        .expect("start");
    // Raised by one at a time until a raise is refused (the run ended): each accepted raise is
    // one more request at the target.
    let accepted = Arc::new(AtomicU64::new(0));
    let raiser = {
        let (run, accepted) = (run.clone(), accepted.clone());
        tokio::spawn(async move {
            while run.extend(1).is_ok() {
                accepted.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    let s = run.finished().await;
    raiser.await.expect("raiser");
    let n = 2_000 + accepted.load(Ordering::Relaxed);
    assert!(n > 2_000, "no raise was taken");
    assert_eq!((count.load(Ordering::Relaxed), s.sent, s.ok()), (n, n, n));
    assert_eq!(s.requests, n);
}

#[tokio::test]
async fn a_stopped_or_time_bound_run_refuses_a_raise() {
    let (addr, _) = server(OK, Duration::ZERO).await;
    let run = start(plan(addr, 1_000, 1, Pacer::new(ms(10), None)))
        .await
        .expect("start");
    run.stop();
    assert_eq!(run.extend(1), Err(Extended::Ended));
    run.finished().await;
    let mut p = plan(addr, u64::MAX, 1, Pacer::UNPACED);
    p.until = Some(ms(50));
    let run = start(p).await.expect("start");
    assert_eq!(run.extend(1), Err(Extended::TimeBound));
    let s = run.finished().await;
    assert_eq!(s.requests, 0);
}
