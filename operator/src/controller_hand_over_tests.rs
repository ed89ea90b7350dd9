//! A lost driver's hand-over (issue 13, item 2) through whole reconciles: the orchestrator on
//! the in-memory bus with drivers that only beat (none sends a request), the API server mocked
//! (tower-test, as in `controller_rate_tests`).

use super::rate_tests::{events, last_status, orchestrator_on, started_in_totals};
use super::*;
use floodgate::bus::{Bus, MemoryBus};
use floodgate::protocol::Topics;
use serde_json::Value;
use std::sync::Mutex;

/// The drivers that beat, each with the test its heartbeats name.
type Beating = Arc<Mutex<BTreeMap<String, Option<String>>>>;

/// Heartbeats every 100 ms for each driver in `beating`, as a Floodgate driver sends them.
fn beat(bus: &MemoryBus, topics: &Topics, beating: &Beating) {
    let (bus, topic, beating) = (bus.clone(), topics.heartbeat.clone(), beating.clone());
    tokio::spawn(async move {
        loop {
            let now = beating.lock().expect("beating").clone();
            for (id, test) in now {
                let mut beat = json!({"node_id": id, "heartbeat": "YES", "agent": "floodgate", "heartbeat_ms": 100});
                if let Some(t) = test {
                    beat["test_id"] = json!(t);
                }
                let _ = bus.publish(&topic, &id, beat.to_string().as_bytes()).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

async fn register(bus: &MemoryBus, topics: &Topics, beating: &Beating, id: &str) {
    let reg = json!({"node_id": id, "node_IP": "h:1", "message_type": "DRIVER_NODE_REGISTER", "agent": "floodgate", "heartbeat_ms": 100});
    bus.publish(&topics.register, id, reg.to_string().as_bytes())
        .await
        .expect("publish");
    beating
        .lock()
        .expect("beating")
        .insert(id.to_string(), None);
}

/// The LoadTest's 100,000 requests at 300/s run on ping-drivers-0 and -1 (50,000 each at
/// 150/s); ping-drivers-2 registers during the test, idle, and -1 goes silent. Lost after
/// 600 ms, its whole share goes to -2, which joins in its place. The reconciles before show no
/// hand-over; the next shows it in `status.handOvers`, as the orchestrator has it, and one
/// Warning Event `DriverHandedOver` says so; reconciling again (the status as written) adds no
/// second Event, and asks for no pace (the hand-over is a change the operator did not make).
#[tokio::test]
async fn a_lost_driver_s_hand_over_is_in_the_status_and_announced_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (orchestrator, bus, topics) = orchestrator_on(dir.path(), Duration::from_millis(600)).await;
    let beating = Beating::default();
    beat(&bus, &topics, &beating);
    for i in 0..2 {
        register(&bus, &topics, &beating, &format!("ping-drivers-{i}")).await;
    }
    floodgate_testkit::eventually("two drivers", Duration::from_secs(10), async || {
        (orchestrator.drivers().iter().filter(|d| d.alive).count() == 2).then_some(())
    })
    .await;

    let (mut lt, seen, ctx) = started_in_totals(&orchestrator).await;
    let id = test_id(&lt);
    for d in ["ping-drivers-0", "ping-drivers-1"] {
        beating
            .lock()
            .expect("beating")
            .insert(d.into(), Some(id.clone()));
    }
    register(&bus, &topics, &beating, "ping-drivers-2").await;
    floodgate_testkit::eventually(
        "an idle third driver",
        Duration::from_secs(10),
        async || {
            let idle = orchestrator
                .drivers()
                .into_iter()
                .find(|d| d.id == "ping-drivers-2")?;
            (idle.alive && idle.test_id.is_none()).then_some(())
        },
    )
    .await;
    lt.status = Some(last_status(&seen));
    apply(&lt, &ctx).await.expect("reconciled");
    let st = last_status(&seen);
    assert!(st.hand_overs.is_empty(), "{:?}", st.hand_overs);
    assert!(events(&seen).is_empty());

    beating.lock().expect("beating").remove("ping-drivers-1");
    let view = floodgate_testkit::eventually("a hand-over", Duration::from_secs(10), async || {
        let v = orchestrator.get(&id).ok()?;
        (!v.hand_overs.is_empty()).then_some(v)
    })
    .await;
    // It joined: its heartbeats name the test from now on, as a driver's do.
    (beating.lock().expect("beating")).insert("ping-drivers-2".into(), Some(id.clone()));
    let h = &view.hand_overs[0].hand_over;
    assert_eq!(
        (h.from.as_str(), h.replacement.as_deref(), h.unsent),
        ("ping-drivers-1", Some("ping-drivers-2"), 50_000)
    );

    lt.status = Some(st);
    apply(&lt, &ctx).await.expect("reconciled");
    let st = last_status(&seen);
    let [shown] = &st.hand_overs[..] else {
        panic!("one hand-over, got {:?}", st.hand_overs);
    };
    assert_eq!(shown, &hand_over::status_of(&view.hand_overs[0]));
    assert_eq!(
        (shown.seq, shown.share, shown.reported_sent, shown.unsent),
        (1, 50_000, 0, 50_000)
    );
    assert!(
        shown.unknown_max > 0
            && shown.unknown_max <= shown.unsent
            && shown.unknown == shown.unknown_max,
        "{shown:?}"
    );
    let receiver = &shown.receivers[..];
    assert_eq!(receiver.len(), 1);
    assert_eq!(
        (receiver[0].id.as_str(), receiver[0].requests),
        ("ping-drivers-2", 50_000)
    );
    let pace = receiver[0].rate.expect("a pace");
    assert!(
        (pace - 150.0).abs() < 0.01,
        "the lost driver's pace: {pace}"
    );
    assert!(
        st.rate_changes.iter().any(|c| c.seq == shown.seq),
        "a paced hand-over is a rate change"
    );
    let evs = events(&seen);
    let [ev] = &evs[..] else {
        panic!("one Event, got {evs:?}");
    };
    let field = |f: &str| ev.pointer(f).and_then(Value::as_str);
    assert_eq!(
        (field("/type"), field("/reason"), field("/action")),
        (Some("Warning"), Some("DriverHandedOver"), Some("HandOver"))
    );
    assert_eq!(field("/regarding/name"), Some("ping"));
    let note = field("/note").expect("a note");
    assert_eq!(note, hand_over::message(shown));
    for part in [
        "driver ping-drivers-1 was lost",
        "its 50000 unsent requests went to ping-drivers-2, which joined in its place at 150 requests/s",
        &format!("up to {} may have left it unreported", shown.unknown_max),
    ] {
        assert!(note.contains(part), "{part:?} in {note}");
    }

    // Reconciling again on what was written announces nothing more, and asks for no pace.
    for _ in 0..2 {
        lt.status = Some(last_status(&seen));
        apply(&lt, &ctx).await.expect("reconciled");
    }
    let st = last_status(&seen);
    assert_eq!(st.hand_overs.len(), 1);
    assert_eq!(events(&seen).len(), 1, "announced once");
    assert_eq!(st.rate.and_then(|r| r.total_rate), Some(300.0));
    orchestrator.stop(&id).await.expect("stopped");
}
