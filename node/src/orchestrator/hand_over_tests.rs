//! The hand-over decisions, table-tested.

use super::*;

fn loss(requests: u64, sent: u64, rate: Option<f64>, unreported_ms: u64) -> Loss {
    Loss {
        driver_id: "d1".into(),
        why: "no heartbeat or report for 3000 ms".into(),
        requests,
        sent,
        rate,
        measured_rate: 900.0,
        unreported_for: Duration::from_millis(unreported_ms),
    }
}

fn receiver(id: &str, rate: Option<f64>, weight: f64) -> Receiver {
    Receiver {
        driver_id: id.into(),
        weight,
        rate,
    }
}

const CAPS: Caps = Caps::HARD;

#[test]
fn the_unsent_share_is_split_exactly_by_weight_and_the_lost_pace_shared_the_same_way() {
    // 10,000 at 1,000/s, 3,001 reported sent: 6,999 left, over receivers at 2,000/s and
    // 1,000/s (weights 2:1), which take 1,000/s more between them.
    let l = loss(10_000, 3_001, Some(1_000.0), 2_000);
    let rs = [
        receiver("d0", Some(2_000.0), 2_000.0),
        receiver("d2", Some(1_000.0), 1_000.0),
    ];
    let h = plan(&l, &rs, None, &CAPS, 4, 1_000, 1_000).expect("planned");
    assert_eq!(
        (h.seq, h.at_ms, h.unsent, h.reported_sent),
        (4, 2_000, 6_999, 3_001)
    );
    let d0 = h.parts["d0"];
    let d2 = h.parts["d2"];
    assert_eq!(d0.requests + d2.requests, 6_999);
    assert_eq!((d0.requests, d2.requests), (4_666, 2_333));
    let (r0, r2) = (d0.rate.expect("paced"), d2.rate.expect("paced"));
    assert!((r0 - 2_666.666).abs() < 0.01 && (r2 - 1_333.333).abs() < 0.01);
    assert!((r0 + r2 - 4_000.0).abs() < 1e-6, "the total rate holds");
    assert_eq!(h.replacement, None);
    // Its pace over the unreported 2 s.
    assert_eq!(h.unknown_max, 2_000);
}

#[test]
fn a_replacement_takes_the_whole_share_at_the_lost_pace() {
    let l = loss(10_000, 3_000, Some(1_000.0), 1_500);
    let rs = [receiver("d0", Some(1_000.0), 1_000.0)];
    let h = plan(&l, &rs, Some("d9"), &CAPS, 1, 0, 1_000).expect("planned");
    assert_eq!(
        h.parts,
        BTreeMap::from([(
            "d9".to_string(),
            HandOverPart {
                requests: 7_000,
                rate: Some(1_000.0)
            }
        )])
    );
    assert_eq!(h.replacement.as_deref(), Some("d9"));
}

#[test]
fn nothing_is_handed_over_without_something_to_hand_or_someone_to_take_it() {
    let rs = [receiver("d0", Some(1_000.0), 1_000.0)];
    let table = [
        (
            "all sent",
            loss(5_000, 5_000, Some(1_000.0), 1_000),
            &rs[..],
        ),
        (
            "no receiver",
            loss(5_000, 10, Some(1_000.0), 1_000),
            &[][..],
        ),
    ];
    for (why, l, rs) in table {
        assert_eq!(plan(&l, rs, None, &CAPS, 1, 0, 1_000), None, "{why}");
    }
}

#[test]
fn an_unpaced_share_goes_by_count_and_a_raised_pace_is_held_to_the_cap() {
    let l = loss(9_000, 0, None, 1_000);
    let rs = [receiver("d0", None, 3_000.0), receiver("d2", None, 6_000.0)];
    let h = plan(&l, &rs, None, &CAPS, 1, 0, 1_000).expect("planned");
    assert_eq!(
        (h.parts["d0"].requests, h.parts["d2"].requests),
        (3_000, 6_000)
    );
    assert_eq!((h.parts["d0"].rate, h.parts["d2"].rate), (None, None));
    // Unpaced: bounded by the pace it measured.
    assert_eq!(h.unknown_max, 900);
    let caps = Caps {
        rate: 1_500.0,
        ..Caps::HARD
    };
    let l = loss(9_000, 0, Some(1_000.0), 1_000);
    let rs = [receiver("d0", Some(1_000.0), 1_000.0)];
    let h = plan(&l, &rs, None, &caps, 1, 0, 1_000).expect("planned");
    assert_eq!(h.parts["d0"].rate, Some(1_500.0));
}

#[test]
fn the_unknown_is_the_pace_over_the_unreported_time_and_never_more_than_was_left() {
    let table = [
        (loss(10_000, 0, Some(500.0), 2_500), 10_000, 1_250),
        (loss(10_000, 0, Some(500.0), 2_501), 10_000, 1_251),
        (loss(10_000, 0, Some(500.0), 60_000), 800, 800),
        (loss(10_000, 0, None, 1_000), 10_000, 900),
    ];
    for (l, unsent, want) in table {
        assert_eq!(unknown_max(&l, unsent), want, "{l:?}");
    }
}

#[test]
fn the_history_shows_what_each_receiver_took_and_resolves_the_unknown_once_the_lost_reports() {
    let l = loss(10_000, 3_000, Some(1_000.0), 2_000);
    let rs = [receiver("d0", Some(1_000.0), 1.0)];
    let h = plan(&l, &rs, None, &CAPS, 2, 0, 1_000).expect("planned");
    let took = [TookOver {
        seq: 2,
        from: "d1".into(),
        requests: 7_000,
        at_us: 5_000_000,
    }];
    let reported = [("d0", &took[..], 1.0)];
    let v = history(std::slice::from_ref(&h), reported, |_| None);
    assert_eq!(
        v[0].taken,
        vec![Taken {
            driver_id: "d0".into(),
            requests: 7_000,
            at_ms: 4_999.0
        }]
    );
    assert_eq!((v[0].unknown, v[0].sent_after), (2_000, None));
    // It was cut off, not dead: its final report says 3,400.
    let v = history(std::slice::from_ref(&h), reported, |_| Some(3_400));
    assert_eq!((v[0].unknown, v[0].sent_after), (0, Some(400)));
}
