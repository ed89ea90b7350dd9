//! The driver registry's decisions, table-tested with instants passed in: liveness per node,
//! registration as the only way in, the read-back registrations, and the bounds.

use super::*;

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn ours() -> Beat<'static> {
    Beat {
        agent: Some("floodgate"),
        interval: Some(S),
        ..Default::default()
    }
}

#[test]
fn a_driver_is_lost_after_the_timeout_and_back_on_a_heartbeat() {
    let t0 = Instant::now();
    let mut r = Registry::new(3 * S);
    r.register(
        "a",
        &Beat {
            address: Some("h:1"),
            ..ours()
        },
        t0,
    );
    assert!(r.liveness("a", t0 + 3 * S).alive);
    assert!(!r.liveness("a", t0 + 3 * S + MS).alive);
    r.heartbeat(
        "a",
        Beat {
            test_id: Some("t".into()),
            ..ours()
        },
        t0 + 10 * S,
    );
    let l = r.liveness("a", t0 + 11 * S);
    assert_eq!(
        l,
        Liveness {
            alive: true,
            test_id: Some("t".into()),
            floodgate: true,
            silent_for: S,
            test_for: S,
        }
    );
    assert_eq!(
        r.view(t0 + 11 * S)[0].address,
        "h:1",
        "a heartbeat without address keeps it"
    );
    assert!(!r.liveness("nobody", t0 + 10 * S).alive);
}

#[test]
fn liveness_is_judged_against_each_nodes_own_interval() {
    // (beats at these seconds, declared interval, silent for, alive?)
    let cases: [(&[u64], Option<Duration>, Duration, bool); 8] = [
        // Floodgate's 1 s driver: lost after the 3 s minimum.
        (&[0, 1, 2], Some(S), 3 * S, true),
        (&[0, 1, 2], Some(S), 3 * S + MS, false),
        // A peer that beats every 5 s without saying so: lost after 15 s, not 3 s.
        (&[0, 5, 10, 15], None, 14 * S, true),
        (&[0, 5, 10, 15], None, 15 * S + MS, false),
        // One beat only: the assumed 5 s interval.
        (&[0], None, 15 * S, true),
        (&[0], None, 15 * S + MS, false),
        // A peer beating every 2 s: the 3 s minimum does not shrink, 6 s it is.
        (&[0, 2, 4, 6], None, 6 * S, true),
        // One long stall does not move the median of a 1 s beater.
        (&[0, 1, 2, 3, 9, 10, 11], None, 3 * S + MS, false),
    ];
    for (beats, declared, silent, alive) in cases {
        let t0 = Instant::now();
        let mut r = Registry::started_at(3 * S, t0);
        r.register(
            "n",
            &Beat {
                interval: declared,
                ..Default::default()
            },
            t0,
        );
        for &b in beats {
            r.heartbeat(
                "n",
                Beat {
                    interval: declared,
                    ..Default::default()
                },
                t0 + S * b as u32,
            );
        }
        let last = t0 + S * beats[beats.len() - 1] as u32;
        assert_eq!(
            r.liveness("n", last + silent).alive,
            alive,
            "beats {beats:?}, declared {declared:?}, silent {silent:?}"
        );
    }
}

#[test]
fn a_driver_not_heard_from_yet_gets_one_timeout_after_start() {
    // A restarted orchestrator restores a running test before any heartbeat arrives: its
    // drivers must not be declared lost at once, only if they stay silent.
    let t0 = Instant::now();
    let r = Registry::started_at(3 * S, t0);
    assert!(r.liveness("d", t0).alive);
    assert!(r.liveness("d", t0 + 3 * S).alive);
    assert!(!r.liveness("d", t0 + 3 * S + MS).alive);
    assert!(
        r.alive(t0).is_empty(),
        "but it is not offered for new tests"
    );
}

#[test]
fn a_report_keeps_a_known_driver_alive_but_makes_no_stranger_known() {
    let t0 = Instant::now();
    let mut r = Registry::new(3 * S);
    r.register("quiet", &Beat::default(), t0);
    r.heard_from("quiet", t0 + 14 * S);
    r.heard_from("stranger", t0 + 14 * S);
    assert!(
        r.liveness("quiet", t0 + 28 * S).alive,
        "15 s from its last report"
    );
    assert!(!r.liveness("quiet", t0 + 30 * S).alive);
    assert_eq!(r.view(t0).len(), 1);
}

#[test]
fn only_a_registration_makes_a_driver() {
    let t0 = Instant::now();
    let mut r = Registry::new(3 * S);
    let peer = || Beat {
        address: Some("h:2"),
        ..Default::default()
    };
    assert!(!r.heartbeat("b", peer(), t0), "a stranger's heartbeat");
    assert!(r.view(t0).is_empty() && r.alive(t0).is_empty());
    assert!(r.register("b", &peer(), t0));
    assert!(r.heartbeat("b", peer(), t0 + S));
    let v = r.view(t0 + 2 * S);
    assert_eq!(
        (
            v[0].id.as_str(),
            v[0].alive,
            v[0].heartbeat_age_ms,
            v[0].heartbeats,
            v[0].agent.as_deref(),
            v[0].timeout_ms
        ),
        ("b", true, 1000, 1, None, 15_000)
    );
}

#[test]
fn a_registration_read_back_is_known_but_not_alive_until_it_beats() {
    let t0 = Instant::now();
    let mut r = Registry::started_at(3 * S, t0);
    assert!(r.replayed("old", &ours(), t0));
    assert!(r.view(t0).is_empty(), "not listed");
    assert!(r.alive(t0).is_empty(), "not offered for a test");
    assert!(
        r.heartbeat("old", ours(), t0 + S),
        "but its heartbeat counts"
    );
    assert_eq!(r.alive(t0 + S), ["old"]);
    // Read back again (the same registration, from the live topic) it changes nothing.
    assert!(r.replayed("old", &ours(), t0 + 2 * S));
    assert_eq!(r.view(t0 + 2 * S)[0].heartbeats, 1);
    // Never heard from: forgotten like a lost driver.
    r.replayed("gone", &ours(), t0);
    r.prune(t0 + 700 * S);
    assert!(!r.heartbeat("gone", ours(), t0 + 700 * S));
}

#[test]
fn the_registry_is_bounded_and_keeps_alive_drivers_over_lost_ones() {
    let t0 = Instant::now();
    let mut r = Registry::new(3 * S);
    let max = limits::MAX_KNOWN_DRIVERS;
    for i in 0..max {
        assert!(r.register(&format!("d{i}"), &ours(), t0));
    }
    // Full of alive drivers: a new registration is refused, the known stay.
    assert!(!r.register("late", &ours(), t0 + S));
    assert_eq!(r.view(t0 + S).len(), max);
    // d0 keeps beating; the others are lost after 3 s. A newcomer takes the place of the
    // one silent longest, never of an alive one.
    for b in 1..=10 {
        r.heartbeat("d0", ours(), t0 + b * S);
    }
    let taken = (0..1000)
        .filter(|i| r.register(&format!("fake{i}"), &ours(), t0 + 10 * S))
        .count();
    assert_eq!(taken, max - 1, "the places of the lost ones, and no more");
    let v = r.view(t0 + 10 * S);
    assert_eq!(v.len(), max);
    assert!(v.iter().any(|d| d.id == "d0" && d.alive));
}

#[test]
fn alive_lists_in_first_seen_order_and_prune_forgets_old() {
    let t0 = Instant::now();
    let mut r = Registry::new(3 * S);
    r.register("z", &ours(), t0);
    r.register("a", &ours(), t0 + S);
    r.register("m", &ours(), t0 + S);
    assert_eq!(r.alive(t0 + S), ["z", "a", "m"]);
    assert_eq!(r.alive(t0 + 3 * S + MS), ["a", "m"]);
    r.prune(t0 + 700 * S);
    assert!(r.view(t0).is_empty());
}

#[test]
fn an_out_of_order_timestamp_never_moves_last_seen_back() {
    let t0 = Instant::now();
    let mut r = Registry::new(3 * S);
    r.register("a", &ours(), t0 + 5 * S);
    r.register("a", &ours(), t0);
    assert!(r.liveness("a", t0 + 8 * S).alive);
}

#[test]
fn while_the_bus_is_down_nobody_is_lost_and_silence_counts_again_from_its_return() {
    let t0 = Instant::now();
    let mut r = Registry::started_at(3 * S, t0);
    r.watch_bus(t0);
    for t in 0..=10 {
        r.echo(t0 + S * t);
    }
    r.register("d", &ours(), t0 + 10 * S);
    // (seconds after t0, bus down?, d alive?)
    let before_return: [(u32, bool, bool); 3] = [
        (13, false, true),
        // The orchestrator's own beats stop coming back at 10 s: from 13 s the bus is down,
        // and a driver silent since 10 s is not judged.
        (14, true, true),
        (60, true, true),
    ];
    for (t, down, alive) in before_return {
        assert_eq!(r.bus_down(t0 + S * t), down, "bus at {t} s");
        assert_eq!(r.liveness("d", t0 + S * t).alive, alive, "d at {t} s");
    }
    r.prune(t0 + 700 * S);
    assert_eq!(r.view(t0).len(), 1, "an outage forgets nobody");
    // The bus is back at 61 s: d has the return grace from then to be heard again.
    for t in 61..=72 {
        r.echo(t0 + S * t);
    }
    assert!(!r.bus_down(t0 + 72 * S));
    assert!(r.liveness("d", t0 + 71 * S).alive);
    assert!(
        !r.liveness("d", t0 + 71 * S + MS).alive,
        "silent after the bus returned"
    );
}

#[test]
fn with_the_bus_up_from_the_start_a_silent_driver_is_lost_after_one_timeout() {
    let t0 = Instant::now();
    let mut r = Registry::started_at(3 * S, t0);
    r.watch_bus(t0);
    for t in 0..=5 {
        r.echo(t0 + S * t);
    }
    r.register("d", &ours(), t0 + S);
    assert!(r.liveness("d", t0 + 4 * S).alive);
    assert!(
        !r.liveness("d", t0 + 4 * S + MS).alive,
        "no outage, no grace"
    );
}

#[test]
fn without_a_watch_the_bus_is_never_down() {
    let t0 = Instant::now();
    let mut r = Registry::started_at(3 * S, t0);
    r.register("d", &ours(), t0);
    assert!(!r.bus_down(t0 + 100 * S));
    assert!(!r.liveness("d", t0 + 100 * S).alive);
}

#[test]
fn how_long_a_driver_has_said_it_runs_no_test() {
    let t0 = Instant::now();
    let mut r = Registry::started_at(3 * S, t0);
    let beat = |test: Option<&str>| Beat {
        test_id: test.map(str::to_string),
        ..ours()
    };
    r.register("d", &ours(), t0);
    r.heartbeat("d", beat(Some("t")), t0);
    r.heartbeat("d", beat(Some("t")), t0 + S);
    assert_eq!(r.liveness("d", t0 + 2 * S).test_for, 2 * S);
    // Restarted: its beats name no test from 3 s on.
    r.heartbeat("d", beat(None), t0 + 3 * S);
    r.heartbeat("d", beat(None), t0 + 4 * S);
    let l = r.liveness("d", t0 + 5 * S);
    assert_eq!((l.test_id, l.test_for), (None, 2 * S));
}

#[test]
fn beats_lost_before_an_outage_is_known_are_not_a_drivers_silence() {
    let t0 = Instant::now();
    let mut r = Registry::started_at(3 * S, t0);
    r.watch_bus(t0);
    // The orchestrator's own beats come back at 0.6, 1.6 … 10.6 s; the broker stops just after.
    for t in 0..=10 {
        r.echo(t0 + S * t + 600 * MS);
    }
    r.register("d", &ours(), t0 + 10 * S);
    // At 13.05 s, d has been silent 3.05 s, but the outage is not known before 13.6 s: only
    // the 0.6 s up to the last echo count, so d is not lost (it was, before this rule).
    assert!(!r.bus_down(t0 + 13 * S + 50 * MS));
    assert!(r.liveness("d", t0 + 13 * S + 50 * MS).alive);
    assert!(r.bus_down(t0 + 13 * S + 700 * MS));
    assert!(
        r.liveness("d", t0 + 20 * S).alive,
        "nobody is judged while it is down"
    );
}

#[test]
fn a_declared_capacity_is_kept_until_declared_again_and_a_seed_driver_is_not_ours() {
    let t0 = Instant::now();
    let mut r = Registry::started_at(3 * S, t0);
    let with = |c: Option<f64>| Beat {
        capacity: c,
        ..ours()
    };
    r.register("a", &with(Some(4.0)), t0);
    r.register("seed", &Beat::default(), t0);
    // A heartbeat that declares none leaves it as it was; one that declares another changes it.
    r.heartbeat("a", with(None), t0 + S);
    let ids = ["a".to_string(), "seed".to_string(), "never".to_string()];
    let m = r.members(&ids);
    assert_eq!(
        m.iter()
            .map(|m| (m.id.as_str(), m.floodgate, m.capacity))
            .collect::<Vec<_>>(),
        [
            ("a", true, Some(4.0)),
            ("seed", false, None),
            ("never", false, None)
        ]
    );
    r.heartbeat("a", with(Some(2.0)), t0 + 2 * S);
    assert_eq!(r.members(&ids)[0].capacity, Some(2.0));
    assert_eq!(r.view(t0 + 2 * S)[0].capacity, Some(2.0));
}
