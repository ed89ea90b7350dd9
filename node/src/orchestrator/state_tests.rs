//! The orchestrator's state and its transition function, without a bus or a store: participant
//! choice, the create/trigger/stop rules, and what each event asks the edges to store.

use super::*;
use crate::orchestrator::spec::parse_input;
use crate::protocol;

const S: Duration = Duration::from_secs(1);

fn spec(extra: &str) -> TestSpec {
    let body = format!(
        r#"{{"test_type":"avalanche","requests_per_driver":4,"target_url":"http://127.0.0.1:1/"{extra}}}"#
    );
    parse_input(body.as_bytes())
        .expect("parse")
        .validate()
        .expect("valid")
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn participant_choice_decision_table() {
    // (spec fields, alive drivers in first-seen order, participants or the start of the error)
    type Want = Result<&'static [&'static str], &'static str>;
    let cases: [(&str, &[&str], Want); 7] = [
        ("", &["a", "b", "c"], Ok(&["a", "b", "c"])),
        (r#","drivers":2"#, &["a", "b", "c"], Ok(&["a", "b"])),
        (
            "",
            &["a"],
            Err("a test needs 2 to 8 alive drivers; 1 alive"),
        ),
        (r#","drivers":3"#, &["a", "b"], Err("a test needs 3 to 8")),
        (
            r#","driver_ids":["c","a"]"#,
            &["a", "b", "c"],
            Ok(&["c", "a"]),
        ),
        (
            r#","driver_ids":["a","z"]"#,
            &["a", "b"],
            Err("driver(s) not alive: z"),
        ),
        (
            "",
            &["1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Ok(&["1", "2", "3", "4", "5", "6", "7", "8"]),
        ),
    ];
    for (extra, alive, want) in cases {
        let got = participants(&spec(extra), &ids(alive));
        match (got, want) {
            (Ok(p), Ok(w)) => assert_eq!(p, ids(w), "{extra}"),
            (Err(e), Err(w)) => assert!(e.to_string().starts_with(w), "{extra}: {e}"),
            (got, want) => panic!("{extra}: got {got:?}, want {want:?}"),
        }
    }
}

/// A heartbeat as received, with the clock exchange it completes, if any.
fn beat_event(json: &str, clock: Option<crate::orchestrator::clock::Exchange>) -> Event {
    let beat = protocol::parse(json.as_bytes()).expect("heartbeat");
    Event::Heartbeat { beat, clock }
}

/// A state with alive Floodgate drivers `a` and `b`.
fn state(t0: Instant) -> State {
    let mut st = State::new(3 * S, Policy::default());
    for id in ["a", "b"] {
        let reg = format!(
            r#"{{"node_id":"{id}","node_IP":"h:1","message_type":"DRIVER_NODE_REGISTER","agent":"floodgate","heartbeat_ms":1000}}"#
        );
        let r = protocol::parse(reg.as_bytes()).expect("registration");
        st.apply(Event::Registered(r), t0, 0).expect("registration");
        let beat = format!(
            r#"{{"node_id":"{id}","heartbeat":"YES","agent":"floodgate","heartbeat_ms":1000}}"#
        );
        let applied = st.apply(beat_event(&beat, None), t0, 0).expect("heartbeat");
        assert_eq!(applied.presence, None);
    }
    st
}

#[test]
fn a_heartbeat_from_a_node_that_never_registered_makes_no_driver() {
    let t0 = Instant::now();
    let mut st = state(t0);
    let beat = r#"{"node_id":"ghost","heartbeat":"YES","agent":"floodgate"}"#;
    let applied = st.apply(beat_event(beat, None), t0, 0).expect("applied");
    assert_eq!(
        applied.presence,
        Some(Unheard::Unregistered {
            node_id: "ghost".into(),
            floodgate: true
        })
    );
    assert_eq!(st.drivers(t0).len(), 2);
}

fn create(
    st: &mut State,
    id: &str,
    for_trigger: bool,
    t: Instant,
) -> Result<Applied, OrchestratorError> {
    st.apply(
        Event::Create {
            id: id.into(),
            spec: spec(""),
            for_trigger,
            created_ms: 1,
            caps: Default::default(),
        },
        t,
        1,
    )
}

fn start(st: &mut State, id: &str, t: Instant) -> Result<Applied, OrchestratorError> {
    st.apply(
        Event::Start {
            id: id.into(),
            start_at_ms: 2,
            start: t,
        },
        t,
        2,
    )
}

#[test]
fn create_trigger_and_stop_follow_the_rules_and_say_what_to_store() {
    let t0 = Instant::now();
    let mut st = state(t0);
    let created = create(&mut st, "t1", false, t0).expect("created");
    assert_eq!(created.view.as_ref().map(|v| v.drivers.len()), Some(2));
    assert!(
        matches!(created.effects.as_slice(), [Effect::SaveTest(v)] if v.status == TestStatus::Created)
    );
    assert!(matches!(
        create(&mut st, "t1", false, t0),
        Err(OrchestratorError::AlreadyExists(_))
    ));
    start(&mut st, "t1", t0).expect("started");
    assert_eq!(st.running(), Some("t1"));
    // While t1 runs: a create-and-trigger is refused and changes nothing; a plain create is fine.
    assert!(matches!(
        create(&mut st, "t2", true, t0),
        Err(OrchestratorError::Busy { running }) if running == "t1"
    ));
    assert!(st.get("t2", t0).is_err(), "nothing was created");
    create(&mut st, "t3", false, t0).expect("a plain create");
    assert!(matches!(
        start(&mut st, "t3", t0),
        Err(OrchestratorError::Busy { .. })
    ));
    assert!(
        matches!(start(&mut st, "t1", t0), Err(OrchestratorError::Conflict(m)) if m.contains("not created"))
    );
    // Stop ends it at once.
    let stopped = st
        .apply(Event::Stop { id: "t1".into() }, t0, 3)
        .expect("stopped");
    assert_eq!(stopped.view.map(|v| v.status), Some(TestStatus::Stopped));
    assert_eq!(st.running(), None);
    assert!(matches!(
        st.apply(Event::Stop { id: "t1".into() }, t0, 4),
        Err(OrchestratorError::Conflict(m)) if m.contains("already ended (stopped)")
    ));
    assert!(matches!(
        st.apply(Event::Stop { id: "nope".into() }, t0, 4),
        Err(OrchestratorError::NotFound(_))
    ));
}

#[test]
fn a_trigger_is_refused_when_a_participant_was_lost_since_creation() {
    let t0 = Instant::now();
    let mut st = state(t0);
    create(&mut st, "t", false, t0).expect("created");
    let later = t0 + 4 * S;
    assert!(matches!(
        st.check_startable("t", later),
        Err(OrchestratorError::Conflict(m)) if m.contains("lost since the test was created")
    ));
}

#[test]
fn reports_end_the_test_and_ask_for_the_view_and_the_points_to_be_stored() {
    let t0 = Instant::now();
    let mut st = state(t0);
    create(&mut st, "t", false, t0).expect("created");
    start(&mut st, "t", t0).expect("started");
    let report = |node: &str| {
        let mut snap = crate::engine::Snapshot {
            requests: 4,
            sent: 4,
            ..Default::default()
        };
        snap.elapsed = S;
        for _ in 0..4 {
            snap.recorder.latency.record(1_000);
            snap.recorder.status.record(200);
        }
        let mut r = crate::driver::reporter_for_tests(node, "t", &snap, true);
        r.seq = 1;
        r
    };
    let a = st
        .apply(Event::Report(Box::new(report("a"))), t0 + S, 5)
        .expect("a");
    assert!(matches!(
        a.effects.as_slice(),
        [Effect::SaveReport { order: 1, .. }]
    ));
    assert!(a.ended.is_empty());
    let b = st
        .apply(Event::Report(Box::new(report("b"))), t0 + S, 6)
        .expect("b");
    assert_eq!(b.ended.len(), 1, "every final report is in");
    assert_eq!(b.ended[0].status, TestStatus::Completed);
    assert!(b
        .effects
        .iter()
        .any(|e| matches!(e, Effect::SaveTest(v) if v.settled)));
    assert!(b
        .effects
        .iter()
        .any(|e| matches!(e, Effect::SaveSeries { .. })));
    // A report for a test that has ended, or from a stranger, is rejected without an error.
    let late = st
        .apply(Event::Report(Box::new(report("a"))), t0 + S, 7)
        .expect("late");
    assert_eq!(late.rejected, Some(Rejected::Finished));
    let mut stranger = report("z");
    stranger.test_id = "other".into();
    let s = st
        .apply(Event::Report(Box::new(stranger)), t0, 7)
        .expect("stranger");
    assert_eq!(s.rejected, Some(Rejected::NotParticipant));
}

#[test]
fn a_silent_driver_fails_the_test_when_time_passes() {
    let t0 = Instant::now();
    let mut st = state(t0);
    create(&mut st, "t", false, t0).expect("created");
    start(&mut st, "t", t0).expect("started");
    let quiet = st
        .apply(Event::Evaluate { only: None }, t0 + 2 * S, 2)
        .expect("tick");
    assert!(quiet.ended.is_empty());
    let gone = st
        .apply(Event::Evaluate { only: None }, t0 + 4 * S, 4)
        .expect("tick");
    assert_eq!(gone.ended.len(), 1);
    assert_eq!(gone.ended[0].status, TestStatus::Failed);
    assert!(gone.ended[0]
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("lost driver(s) a"));
}

#[test]
fn echoed_beats_give_each_driver_s_offset_and_the_view_its_start_skew() {
    use crate::orchestrator::clock::Exchange;
    let t0 = Instant::now();
    let mut st = state(t0);
    // b's clock is 30 ms ahead (1 ms each way): corrected to within its 1 ms bound. a's agrees.
    let beat = |id: &str, t1: u64, t2: u64, t3: u64, t4: u64| {
        let json = format!(r#"{{"node_id":"{id}","heartbeat":"YES","agent":"floodgate"}}"#);
        beat_event(&json, Some(Exchange { t1, t2, t3, t4 }))
    };
    st.apply(beat("a", 0, 1_000, 500_000, 501_000), t0, 0)
        .expect("a");
    st.apply(beat("b", 0, 31_000, 530_000, 501_000), t0, 0)
        .expect("b");
    // A stranger's exchange is dropped with its beat.
    st.apply(beat("ghost", 0, 0, 0, 0), t0, 0).expect("ghost");
    let offsets: Vec<_> = st.drivers(t0).iter().map(|d| d.clock).collect();
    assert_eq!(
        offsets,
        [
            Some(crate::orchestrator::clock::Offset {
                offset_us: 0,
                bound_us: 1_000
            }),
            Some(crate::orchestrator::clock::Offset {
                offset_us: 30_000,
                bound_us: 1_000
            }),
        ]
    );
    create(&mut st, "t", false, t0).expect("created");
    start(&mut st, "t", t0).expect("started");
    // a sent first at 10.000 s, b at 10.035 s by its clock: 10.006 s on ours.
    for (node, first_us) in [("a", 10_000_000u64), ("b", 10_035_000)] {
        let snap = crate::engine::Snapshot {
            requests: 4,
            sent: 1,
            ..Default::default()
        };
        let mut r = crate::driver::reporter_for_tests(node, "t", &snap, false);
        r.seq = 1;
        r.first_send_us = Some(first_us);
        st.apply(Event::Report(Box::new(r)), t0 + S, 5)
            .expect("report");
    }
    // A later exchange does not move a start already given.
    st.apply(beat("b", 0, 1_000, 500_000, 501_000), t0, 0)
        .expect("b again");
    let v = st.get("t", t0 + S).expect("view");
    let skew = v.start_skew.expect("both started");
    assert_eq!(
        (skew.drivers, skew.first_ms, skew.bound_ms),
        (2, 10_000.0, Some(2.0))
    );
    assert!((skew.skew_ms - 6.0).abs() < 1e-9, "{skew:?}");
    let b = v.per_driver[1].start.expect("b's start");
    assert_eq!((b.clock_offset_ms, b.clock_applied_ms), (Some(30.0), 29.0));
}
