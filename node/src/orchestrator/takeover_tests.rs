//! Taking tests over: the pure parts (resume positions, catching up, the start instant, the
//! adopt and hold events), then whole orchestrators on the in-memory bus: the start recorded
//! before the trigger, and a successor without a store finishing a test from the log.

use super::*;
use crate::bus::{Bus, MemoryBus};
use crate::model::TestStatus;
use crate::orchestrator::run::Policy;
use crate::orchestrator::spec::parse_input;
use crate::orchestrator::state::{Effect, Event};
use crate::orchestrator::{Orchestrator, OrchestratorConfig, OrchestratorError};
use crate::protocol::{self, Topics};
use std::sync::{Arc, Mutex};

const S: Duration = Duration::from_secs(1);

fn pos(v: &[(&str, i32, i64)]) -> Vec<(String, i32, i64)> {
    v.iter().map(|(t, p, n)| (t.to_string(), *p, *n)).collect()
}

#[test]
fn the_metrics_read_resumes_from_the_earliest_position_decision_table() {
    // (stored, recorded for topic "m", where the read resumes)
    type Case = (
        &'static [(&'static str, i32, i64)],
        &'static [(i32, i64)],
        &'static [(&'static str, i32, i64)],
    );
    let cases: [Case; 6] = [
        (&[], &[], &[]),
        (&[("m", 0, 40)], &[], &[("m", 0, 40)]),
        // The store was lost: the recorded position alone.
        (&[], &[(0, 12)], &[("m", 0, 12)]),
        // The earlier of the two wins, either way round.
        (&[("m", 0, 40)], &[(0, 12)], &[("m", 0, 12)]),
        (&[("m", 0, 10)], &[(0, 12), (0, 30)], &[("m", 0, 10)]),
        // Other partitions and topics are kept; nonsense from outside is ignored.
        (
            &[("x", 0, 5), ("m", 1, 9)],
            &[(0, 3), (-1, 0), (2, -4)],
            &[("m", 0, 3), ("m", 1, 9), ("x", 0, 5)],
        ),
    ];
    for (stored, recorded, want) in cases {
        let got = resume_positions(pos(stored), "m", recorded.iter().copied());
        assert_eq!(got, pos(want), "stored {stored:?}, recorded {recorded:?}");
    }
}

#[test]
fn the_read_has_caught_up_once_it_reaches_every_partition_end_at_start() {
    // Nothing to read: caught up from the start.
    assert!(CatchUp::new("m", &[(0, 7)], &pos(&[])).done());
    assert!(CatchUp::new("m", &[(0, 7)], &pos(&[("m", 0, 7)])).done());
    assert!(CatchUp::new("m", &[(0, 7)], &pos(&[("x", 0, 0)])).done());
    let mut c = CatchUp::new("m", &[(0, 7), (1, 3)], &pos(&[("m", 0, 5), ("m", 1, 0)]));
    assert!(!c.done());
    assert!(!c.read(0, 5));
    assert!(!c.read(0, 6), "partition 0 is in, partition 1 is not");
    assert!(!c.read(1, 1));
    assert!(c.read(1, 2), "the read that catches up says so");
    assert!(c.done());
    assert!(!c.read(1, 3), "and only once");
    let mut unknown = CatchUp::unknown();
    assert!(!unknown.read(0, 1_000_000));
    assert!(
        !unknown.done(),
        "unknown ends: only the deadline ends the hold"
    );
}

#[test]
fn a_start_in_unix_time_becomes_a_local_instant() {
    let now = Instant::now();
    assert_eq!(start_instant(10_000, now, 10_000), now);
    assert_eq!(start_instant(7_000, now, 10_000) + 3 * S, now);
    assert_eq!(start_instant(12_000, now, 10_000), now + 2 * S);
    // Before the machine's boot or the epoch: never panics.
    let _ = start_instant(0, now, u64::MAX);
}

fn spec() -> crate::orchestrator::spec::TestSpec {
    parse_input(
        br#"{"test_type":"avalanche","requests_per_driver":4,"target_url":"http://127.0.0.1:1/"}"#,
    )
    .expect("parse")
    .validate()
    .expect("valid")
}

fn adopt_event(id: &str, drivers: &[&str]) -> Event {
    Event::Adopt {
        id: id.into(),
        spec: spec(),
        drivers: drivers.iter().map(|d| d.to_string()).collect(),
        created_ms: 1_000,
        started_ms: 2_000,
        shares: Default::default(),
    }
}

fn final_report(node: &str, test: &str, sent: u64) -> protocol::MetricsReport {
    let mut snap = crate::engine::Snapshot {
        requests: sent,
        sent,
        ..Default::default()
    };
    snap.elapsed = S;
    for _ in 0..sent {
        snap.recorder.latency.record(1_000);
        snap.recorder.status.record(200);
    }
    let mut r = crate::driver::reporter_for_tests(node, test, &snap, true);
    r.seq = 3;
    r
}

#[test]
fn an_adopted_test_runs_from_its_recorded_start_and_is_stored() {
    let t0 = Instant::now();
    let mut st = State::new(3 * S, Policy::default());
    let adopted = st
        .apply(adopt_event("t", &["a", "b"]), t0, 5_000)
        .expect("adopted");
    let view = adopted.view.expect("view");
    assert_eq!(
        (view.status, view.started_at_ms, view.drivers.len()),
        (TestStatus::Running, Some(2_000), 2)
    );
    assert!(matches!(adopted.effects.as_slice(), [Effect::SaveTest(v)] if v.id == "t"));
    assert_eq!(st.running(), Some("t"));
    assert!(matches!(
        st.apply(adopt_event("t", &["a", "b"]), t0, 5_000),
        Err(OrchestratorError::AlreadyExists(_))
    ));
    // A participant list from outside is checked.
    for bad in [
        &["a"][..],
        &["a", "a"],
        &["a", ""],
        &["1", "2", "3", "4", "5", "6", "7", "8", "9"],
    ] {
        assert!(
            matches!(st.apply(adopt_event("u", bad), t0, 5_000), Err(OrchestratorError::Conflict(m)) if m.contains("distinct")),
            "{bad:?}"
        );
    }
    // Its drivers' final reports end it, with their totals.
    for node in ["a", "b"] {
        st.apply(
            Event::Report(Box::new(final_report(node, "t", 4))),
            t0,
            6_000,
        )
        .expect("report");
    }
    let v = st.get("t", t0).expect("view");
    assert_eq!((v.status, v.aggregate.sent), (TestStatus::Completed, 8));
}

#[test]
fn a_held_state_judges_no_test_until_it_caught_up_or_the_hold_ran_out() {
    let t0 = Instant::now();
    let mut st = State::new(3 * S, Policy::default());
    st.apply(adopt_event("t", &["a", "b"]), t0, 5_000)
        .expect("adopted");
    st.hold(t0 + 60 * S);
    // Its drivers were never heard from: long after, they would be lost, but not while held.
    let held = st
        .apply(Event::Evaluate { only: None }, t0 + 10 * S, 0)
        .expect("tick");
    assert!(held.ended.is_empty(), "held");
    st.apply(Event::CaughtUp, t0 + 10 * S, 0)
        .expect("caught up");
    let judged = st
        .apply(Event::Evaluate { only: None }, t0 + 10 * S, 0)
        .expect("tick");
    assert_eq!(judged.ended.len(), 1, "judged once caught up");

    let mut st = State::new(3 * S, Policy::default());
    st.apply(adopt_event("t", &["a", "b"]), t0, 5_000)
        .expect("adopted");
    st.hold(t0 + 60 * S);
    let late = st
        .apply(Event::Evaluate { only: None }, t0 + 61 * S, 0)
        .expect("tick");
    assert_eq!(late.ended.len(), 1, "the hold has a deadline");
}

struct Rig {
    bus: MemoryBus,
    dir: tempfile::TempDir,
    topics: Topics,
}

impl Rig {
    fn new() -> Rig {
        let topics = Topics::with_prefix("");
        Rig {
            bus: MemoryBus::new(topics.clone()),
            dir: tempfile::tempdir().expect("tempdir"),
            topics,
        }
    }

    fn cfg(&self, store: &str) -> OrchestratorConfig {
        OrchestratorConfig {
            config_gap: Duration::ZERO,
            start_delay: Duration::ZERO,
            ..OrchestratorConfig::new(
                "orch",
                "",
                "127.0.0.1:0",
                self.topics.clone(),
                self.dir.path().join(store),
            )
        }
    }

    async fn publish(&self, topic: &str, payload: &[u8]) {
        self.bus
            .publish(topic, "k", payload)
            .await
            .expect("publish");
    }

    async fn beat(&self, id: &str) {
        let reg = serde_json::json!({"node_id": id, "node_IP": "127.0.0.1:1", "message_type": "DRIVER_NODE_REGISTER", "agent": "floodgate", "heartbeat_ms": 1000});
        self.publish(&self.topics.register, reg.to_string().as_bytes())
            .await;
        let beat = serde_json::json!({"node_id": id, "heartbeat": "YES", "agent": "floodgate", "heartbeat_ms": 1000});
        self.publish(&self.topics.heartbeat, beat.to_string().as_bytes())
            .await;
    }
}

fn input(drivers: &[&str]) -> crate::orchestrator::spec::TestSpecInput {
    let body = serde_json::json!({"test_type": "avalanche", "requests_per_driver": 4,
        "target_url": "http://127.0.0.1:1/", "driver_ids": drivers, "trigger": true});
    parse_input(body.to_string().as_bytes()).expect("input")
}

#[tokio::test]
async fn the_start_is_recorded_after_the_config_and_before_the_trigger() {
    let r = Rig::new();
    let o = Orchestrator::start_on(r.cfg("o.sqlite"), Arc::new(r.bus.handle()))
        .await
        .expect("started");
    // A report of an earlier test is on the log: the recorded position is past it.
    r.publish(&r.topics.metrics, b"{}").await;
    for d in ["a", "b"] {
        r.beat(d).await;
    }
    floodgate_testkit::eventually("two drivers", 10 * S, async || {
        (o.drivers().iter().filter(|d| d.alive).count() == 2).then_some(())
    })
    .await;
    let seen: Arc<Mutex<Option<(Starting, usize, usize)>>> = Arc::default();
    let (seen2, bus) = (seen.clone(), r.bus.clone());
    let (config, trigger) = (r.topics.test_config.clone(), r.topics.trigger.clone());
    let record: Recorder = Box::new(move |s: Starting| {
        Box::pin(async move {
            let at = (s, bus.messages(&config).len(), bus.messages(&trigger).len());
            *seen2.lock().expect("lock") = Some(at);
            Ok(())
        })
    });
    let view = o
        .create_recorded("t1".into(), input(&["a", "b"]), record)
        .await
        .expect("started");
    assert_eq!(view.status, TestStatus::Running);
    let (starting, configs, triggers) = seen.lock().expect("lock").clone().expect("recorded");
    assert_eq!(
        (configs > 0, triggers),
        (true, 0),
        "recorded after the config, before the trigger"
    );
    assert_eq!(starting.metrics_from, [(0, 1)]);
    assert_eq!(
        (
            starting.id.as_str(),
            starting.drivers.as_slice(),
            starting.metrics_topic.as_str()
        ),
        (
            "t1",
            &["a".to_string(), "b".to_string()][..],
            r.topics.metrics.as_str()
        )
    );
    assert_eq!(Some(starting.start_at_ms), view.started_at_ms);
    assert_eq!(r.bus.messages(&r.topics.trigger).len(), 1);

    // A start that cannot be recorded is not started.
    o.stop("t1").await.expect("stopped");
    let refuse: Recorder = Box::new(|_| Box::pin(async { Err("the API server is away".into()) }));
    let e = o
        .create_recorded("t2".into(), input(&["a", "b"]), refuse)
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, OrchestratorError::Unrecorded(m) if m.contains("away")),
        "{e}"
    );
    let v = o.get("t2").expect("kept");
    assert_eq!(v.status, TestStatus::Failed);
    assert!(v.reason.unwrap_or_default().contains("not started"));
    assert_eq!(
        r.bus.messages(&r.topics.trigger).len(),
        1,
        "no trigger for t2"
    );
}

#[tokio::test]
async fn a_successor_without_the_store_finishes_an_adopted_test_from_the_log() {
    let r = Rig::new();
    // Before the recorded position: another test's report, and a stale one of this test's
    // drivers that must not count.
    r.publish(
        &r.topics.metrics,
        &protocol::emit(&final_report("a", "older", 9)),
    )
    .await;
    let recorded = r.bus.end_offsets(&r.topics.metrics).await.expect("ends");
    // Sent while no orchestrator ran: both drivers' final reports, one of them twice.
    for node in ["a", "b", "a"] {
        let report = final_report(node, "t", 4);
        r.publish(&r.topics.metrics, &protocol::emit(&report)).await;
    }
    let adoption = |id: &str, spec| Adoption {
        id: id.into(),
        spec,
        drivers: vec!["a".into(), "b".into()],
        created_ms: 1_000,
        started_ms: protocol::now_unix_ms() - 5_000,
        metrics_from: recorded.clone(),
        shares: Default::default(),
    };
    let bad = parse_input(br#"{"test_type":"avalanche","target_url":"http://127.0.0.1:1/"}"#)
        .expect("input");
    let (o, refused) = Orchestrator::start_on_adopting(
        r.cfg("fresh.sqlite"),
        Arc::new(r.bus.handle()),
        vec![adoption("t", input(&["a", "b"])), adoption("bad", bad)],
    )
    .await
    .expect("started");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].0 == "bad" && refused[0].1.contains("requests_per_driver"));
    let done = floodgate_testkit::eventually("the adopted test to end", 10 * S, async || {
        o.get("t").ok().filter(|v| v.status.is_finished())
    })
    .await;
    assert_eq!(
        (done.status, done.aggregate.sent, done.aggregate.ok),
        (TestStatus::Completed, 8, 8),
        "exact totals from the log: {:?}",
        done.reason
    );
    assert!(o.get("older").is_err(), "other tests are not taken over");

    // The successor's store now knows the test: a restart of it resumes from the store, and
    // the outside description, told again, changes nothing.
    drop(o);
    let (again, refused) = Orchestrator::start_on_adopting(
        r.cfg("fresh.sqlite"),
        Arc::new(r.bus.handle()),
        vec![adoption("t", input(&["a", "b"]))],
    )
    .await
    .expect("restarted");
    assert!(refused.is_empty());
    let v = again.get("t").expect("from the store");
    assert_eq!((v.status, v.aggregate.sent), (TestStatus::Completed, 8));
}

#[test]
fn an_adopted_test_in_totals_keeps_the_shares_recorded_at_its_start() {
    let t0 = Instant::now();
    let mut st = State::new(3 * S, Policy::default());
    let spec = parse_input(
        br#"{"test_type":"avalanche","total_requests":101,"target_url":"http://127.0.0.1:1/"}"#,
    )
    .expect("parse")
    .validate()
    .expect("valid");
    // Neither driver heard yet (so no capacity, not even known as Floodgate's): the record
    // alone gives the shares, 70 and 31, not an even 51/50 nor a refusal of the odd total.
    let adopted = st
        .apply(
            Event::Adopt {
                id: "t".into(),
                spec,
                drivers: vec!["a".into(), "b".into()],
                created_ms: 1_000,
                started_ms: 2_000,
                shares: [("a".to_string(), 70), ("b".to_string(), 31)].into(),
            },
            t0,
            5_000,
        )
        .expect("adopted");
    let view = adopted.view.expect("view");
    let shares: Vec<u64> = view
        .split
        .expect("split")
        .shares
        .iter()
        .map(|s| s.requests)
        .collect();
    assert_eq!(shares, [70, 31]);
    assert_eq!(
        view.per_driver
            .iter()
            .map(|d| d.stats.requests_total)
            .collect::<Vec<_>>(),
        [70, 31],
        "each part is judged by its recorded share"
    );
}
