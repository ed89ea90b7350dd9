//! Table tests of taking a running test over from its status record, and of the record as
//! read from a status anyone may have written.

use super::*;
use crate::crd::{LoadTest, PartitionOffset};

const NOW_MS: u64 = 1_700_000_000_000;

fn record() -> RunRecord {
    RunRecord {
        test_id: "uid-1".into(),
        drivers: vec!["lt-drivers-a".into(), "lt-drivers-b".into()],
        start_at_ms: NOW_MS - 5_000,
        metrics_topic: "p.metrics".into(),
        metrics_from: vec![PartitionOffset {
            partition: 0,
            offset: 42,
        }],
        shares: Default::default(),
    }
}

fn running(run: Option<RunRecord>) -> LoadTestStatus {
    LoadTestStatus {
        phase: Phase::Running,
        run,
        ..Default::default()
    }
}

#[test]
fn which_records_a_test_is_taken_over_from_decision_table() {
    let with = |f: fn(&mut RunRecord)| {
        let mut r = record();
        f(&mut r);
        Some(running(Some(r)))
    };
    // (case, status, None = nothing to take over, Some(Ok) = taken over, Some(Err(needle)))
    type Want = Option<Result<(), &'static str>>;
    let cases: Vec<(&str, Option<LoadTestStatus>, Want)> = vec![
        ("no status", None, None),
        (
            "scaling",
            Some(LoadTestStatus {
                phase: Phase::Scaling,
                run: Some(record()),
                ..Default::default()
            }),
            None,
        ),
        (
            "finished",
            Some(LoadTestStatus {
                phase: Phase::Succeeded,
                run: Some(record()),
                ..Default::default()
            }),
            None,
        ),
        (
            "running, recorded",
            Some(running(Some(record()))),
            Some(Ok(())),
        ),
        (
            "running, no record (an older operator)",
            Some(running(None)),
            Some(Err("no readable record")),
        ),
        (
            "another test's record",
            with(|r| r.test_id = "x".repeat(10_000)),
            Some(Err("not of this LoadTest's (uid-1)")),
        ),
        (
            "one driver",
            with(|r| r.drivers.truncate(1)),
            Some(Err("names 1 driver(s)")),
        ),
        (
            "a driver twice",
            with(|r| r.drivers[1] = r.drivers[0].clone()),
            Some(Err("(1 distinct)")),
        ),
        (
            "an empty driver ID",
            with(|r| r.drivers[1].clear()),
            Some(Err("non-empty")),
        ),
        (
            "nine drivers",
            with(|r| r.drivers = (0..9).map(|i| format!("d{i}")).collect()),
            Some(Err("names 9 driver(s)")),
        ),
        (
            "another metrics topic (the prefix changed)",
            with(|r| r.metrics_topic = "q.metrics".into()),
            Some(Err("this operator reads \"p.metrics\"")),
        ),
        (
            "no position",
            with(|r| r.metrics_from.clear()),
            Some(Err("positions are unusable (0 listed")),
        ),
        (
            "a negative offset",
            with(|r| r.metrics_from[0].offset = -1),
            Some(Err("none negative")),
        ),
        (
            "a negative partition",
            with(|r| r.metrics_from[0].partition = -1),
            Some(Err("none negative")),
        ),
        (
            "a partition twice",
            with(|r| r.metrics_from.push(r.metrics_from[0])),
            Some(Err("each partition once")),
        ),
        (
            "too many partitions",
            with(|r| {
                r.metrics_from = (0..65)
                    .map(|partition| PartitionOffset {
                        partition,
                        offset: 0,
                    })
                    .collect()
            }),
            Some(Err("65 listed")),
        ),
        ("no start", with(|r| r.start_at_ms = 0), Some(Err("unset"))),
        (
            "a start far ahead",
            with(|r| r.start_at_ms = u64::MAX),
            Some(Err("too far ahead")),
        ),
    ];
    for (name, status, want) in cases {
        let got = takeover("uid-1", status.as_ref(), "p.metrics", NOW_MS);
        match (got, want) {
            (None, None) => {}
            (Some(Ok(r)), Some(Ok(()))) => {
                assert_eq!(Some(&r), status.and_then(|s| s.run).as_ref(), "{name}")
            }
            (Some(Err(why)), Some(Err(needle))) => {
                assert!(why.contains(needle), "{name}: {why}");
                assert!(why.len() < 400, "{name}: what is echoed is bounded: {why}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn a_running_test_nobody_knows_fails_with_the_reason_it_was_not_taken_over() {
    let observed = |why: Option<&str>| Observed {
        deployment_replicas: Some(2),
        not_taken_over: why.map(str::to_string),
        now: "now".into(),
        ..Default::default()
    };
    let spec = crate::crd::sample_loadtest().spec;
    for (why, needle) in [
        (
            Some("the record names 1 driver(s)"),
            "could not be taken over: the record names 1 driver(s)",
        ),
        (None, "its store was lost"),
    ] {
        let p = plan(&spec, Some(&running(Some(record()))), &observed(why));
        assert_eq!(p.status.phase, Phase::Failed);
        assert_eq!(p.actions, [Action::ScaleDrivers(0)]);
        let msg = p.status.message.unwrap_or_default();
        assert!(msg.contains(needle), "{msg}");
        assert_eq!(
            p.status.run,
            Some(record()),
            "the record stays for the record"
        );
    }
}

#[test]
fn a_status_record_is_read_leniently_and_written_back_whole() {
    let base = serde_json::to_value(crate::crd::sample_loadtest()).expect("json");
    let with_run = |run: serde_json::Value| {
        let mut v = base.clone();
        v["status"] = serde_json::json!({"phase": "Running", "testId": "uid-1", "run": run});
        v
    };
    // Written back as it was read.
    let good = with_run(serde_json::to_value(record()).expect("json"));
    let lt: LoadTest = serde_json::from_value(good).expect("parses");
    let st = lt.status.expect("status");
    assert_eq!(st.run, Some(record()));
    let written = serde_json::to_value(&st).expect("json");
    assert_eq!(written["run"]["metricsFrom"][0]["offset"], 42);
    assert_eq!(written["run"]["startAtMs"], NOW_MS - 5_000);
    // What does not parse is absent, and the LoadTest still reads (the watch never breaks).
    for bad in [
        serde_json::json!("a string"),
        serde_json::json!({"testId": 5}),
        serde_json::json!({"testId": "uid-1", "startAtMs": -3}),
        serde_json::json!({"testId": "uid-1", "metricsFrom": [{"partition": "zero"}]}),
    ] {
        let lt: LoadTest = serde_json::from_value(with_run(bad.clone())).expect("still parses");
        let st = lt.status.expect("status");
        assert_eq!((st.phase, st.run), (Phase::Running, None), "{bad}");
    }
    // A status from before records existed.
    let mut old = base.clone();
    old["status"] = serde_json::json!({"phase": "Running", "testId": "uid-1"});
    let lt: LoadTest = serde_json::from_value(old).expect("an old status parses");
    assert_eq!(lt.status.and_then(|s| s.run), None);
    assert!(
        serde_json::to_value(LoadTestStatus::default())
            .expect("json")
            .get("run")
            .is_none(),
        "no record, no field"
    );
}
