//! `status.handOvers` from the orchestrator's view, what is new, and the Event's message.

use super::*;
use floodgate::orchestrator::hand_over::{HandOver, Taken};
use floodgate::protocol::HandOverPart;
use std::collections::BTreeMap;

/// driver-1 lost after reporting 1,200 of 4,000; its 2,800 to driver-0 and driver-2 at 600/s
/// each (driver-0 reported taking its part), up to 908 unknown.
fn to_survivors(seq: u64) -> HandOverView {
    let part = |requests| HandOverPart {
        requests,
        rate: Some(600.0),
    };
    HandOverView {
        hand_over: HandOver {
            seq,
            decided_at_ms: 1_000_000,
            at_ms: 1_001_000,
            from: "driver-1".into(),
            why: "no heartbeat or report for 3000 ms".into(),
            share: 4_000,
            reported_sent: 1_200,
            unsent: 2_800,
            unknown_max: 908,
            parts: BTreeMap::from([
                ("driver-2".to_string(), part(1_400)),
                ("driver-0".to_string(), part(1_400)),
            ]),
            replacement: None,
        },
        taken: vec![Taken {
            driver_id: "driver-0".into(),
            requests: 1_400,
            at_ms: 1_001_000.5,
        }],
        sent_after: None,
        unknown: 908,
    }
}

/// The same loss, the whole share to driver-3, which joined at the lost pace.
fn to_replacement(seq: u64) -> HandOverView {
    let mut v = to_survivors(seq);
    v.hand_over.parts = BTreeMap::from([(
        "driver-3".to_string(),
        HandOverPart {
            requests: 2_800,
            rate: Some(400.0),
        },
    )]);
    v.hand_over.replacement = Some("driver-3".into());
    v.taken.clear();
    v
}

#[test]
fn a_hand_over_is_shown_field_for_field_with_its_receivers_in_driver_order() {
    let st = status_of(&to_survivors(2));
    let want = HandOverStatus {
        seq: 2,
        decided_at_ms: 1_000_000,
        at_ms: 1_001_000,
        from: "driver-1".into(),
        why: "no heartbeat or report for 3000 ms".into(),
        share: 4_000,
        reported_sent: 1_200,
        unsent: 2_800,
        unknown_max: 908,
        unknown: 908,
        sent_after: None,
        replacement: None,
        receivers: vec![
            HandOverReceiver {
                id: "driver-0".into(),
                requests: 1_400,
                rate: Some(600.0),
                taken: true,
            },
            HandOverReceiver {
                id: "driver-2".into(),
                requests: 1_400,
                rate: Some(600.0),
                taken: false,
            },
        ],
    };
    assert_eq!(st, want);
    let st = status_of(&to_replacement(1));
    assert_eq!(st.replacement.as_deref(), Some("driver-3"));
    assert_eq!(
        (
            st.receivers.len(),
            st.receivers[0].requests,
            st.receivers[0].rate
        ),
        (1, 2_800, Some(400.0))
    );
}

#[test]
fn the_status_is_camel_case_and_leaves_out_what_is_absent() {
    let mut v = to_survivors(1);
    v.hand_over.parts.values_mut().for_each(|p| p.rate = None);
    let json = serde_json::to_value(status_of(&v)).expect("json");
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "atMs",
            "decidedAtMs",
            "from",
            "receivers",
            "reportedSent",
            "seq",
            "share",
            "unknown",
            "unknownMax",
            "unsent",
            "why"
        ]
    );
    assert_eq!(
        json["receivers"][0],
        serde_json::json!({"id": "driver-0", "requests": 1400, "taken": true})
    );
    let mut v = to_replacement(1);
    (v.sent_after, v.unknown) = (Some(15), 0);
    let json = serde_json::to_value(status_of(&v)).expect("json");
    assert_eq!(
        (json["sentAfter"].as_u64(), json["replacement"].as_str()),
        (Some(15), Some("driver-3"))
    );
    let back: HandOverStatus = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, status_of(&v));
}

#[test]
fn the_history_and_a_long_reason_are_bounded() {
    let mut v = to_survivors(1);
    v.hand_over.why = "x".repeat(10_000);
    assert_eq!(status_of(&v).why.chars().count(), MAX_WHY_CHARS);
    let many: Vec<HandOverView> = (1..=limits::MAX_RATE_CHANGES as u64 + 5)
        .map(to_survivors)
        .collect();
    let shown = history(&many);
    assert_eq!(shown.len(), limits::MAX_RATE_CHANGES);
    assert_eq!(shown.first().map(|h| h.seq), Some(1));
    // The receivers are bounded as a hand-over's parts are.
    let mut wide = to_survivors(1);
    wide.hand_over.parts = (0..limits::MAX_DRIVERS + 3)
        .map(|i| {
            (
                format!("d-{i:02}"),
                HandOverPart {
                    requests: 1,
                    rate: None,
                },
            )
        })
        .collect();
    assert_eq!(status_of(&wide).receivers.len(), limits::MAX_DRIVERS);
}

#[test]
fn merging_takes_the_latest_and_keeps_what_a_restarted_orchestrator_forgot() {
    let first = status_of(&to_survivors(1));
    // Later reports: driver-2 took its part too, and driver-1 came back (cut off, not dead).
    let mut later = to_survivors(1);
    later.taken.push(Taken {
        driver_id: "driver-2".into(),
        requests: 1_400,
        at_ms: 1_001_001.0,
    });
    (later.sent_after, later.unknown) = (Some(40), 0);
    let merged = merge(
        std::slice::from_ref(&first),
        history(std::slice::from_ref(&later)),
    );
    assert_eq!(merged, vec![status_of(&later)]);
    assert!(merged[0].receivers.iter().all(|r| r.taken));

    // The orchestrator restarted and forgot it, then handed over another share: both shown.
    let second = status_of(&to_replacement(3));
    let merged = merge(&merged, vec![second.clone()]);
    assert_eq!(merged, vec![status_of(&later), second.clone()]);
    // And with nothing seen, the record stays as it is.
    assert_eq!(merge(&merged, vec![]), merged);

    // A number given twice (after a restart) is two hand-overs, in order.
    let mut again = status_of(&to_replacement(3));
    again.decided_at_ms += 60_000;
    let merged = merge(&merged, vec![again.clone()]);
    assert_eq!(
        merged
            .iter()
            .map(|h| (h.seq, h.decided_at_ms))
            .collect::<Vec<_>>(),
        [(1, 1_000_000), (3, 1_000_000), (3, 1_060_000)]
    );

    // Never over the bound: the latest are kept.
    let old: Vec<HandOverStatus> = (1..=limits::MAX_RATE_CHANGES as u64)
        .map(|s| status_of(&to_survivors(s)))
        .collect();
    let newest = status_of(&to_replacement(limits::MAX_RATE_CHANGES as u64 + 1));
    let merged = merge(&old, vec![newest.clone()]);
    assert_eq!(merged.len(), limits::MAX_RATE_CHANGES);
    assert_eq!((merged[0].seq, merged.last()), (2, Some(&newest)));
}

#[test]
fn only_a_hand_over_the_status_did_not_have_is_new() {
    let one = status_of(&to_survivors(1));
    let two = status_of(&to_replacement(2));
    assert_eq!(new_since(&[], std::slice::from_ref(&one)), vec![&one]);
    let now = [one.clone(), two.clone()];
    assert_eq!(new_since(std::slice::from_ref(&one), &now), vec![&two]);
    // Its figures changing (takes, the unknown) does not make it new.
    let mut updated = one.clone();
    (updated.unknown, updated.sent_after) = (0, Some(3));
    updated.receivers.iter_mut().for_each(|r| r.taken = true);
    assert!(new_since(&now, &[updated, two.clone()]).is_empty());
    // The same number for another loss is.
    let mut other = one.clone();
    other.from = "driver-2".into();
    assert_eq!(new_since(&now, std::slice::from_ref(&other)), vec![&other]);
}

#[test]
fn the_message_names_the_lost_driver_the_unsent_who_took_it_and_the_unknown() {
    let m = message(&status_of(&to_survivors(1)));
    assert_eq!(
        m,
        "driver driver-1 was lost (no heartbeat or report for 3000 ms) after reporting 1200 of \
         its 4000 sent: its 2800 unsent requests went to the drivers still sending: driver-0 \
         +1400 (now 600 requests/s), driver-2 +1400 (now 600 requests/s); up to 908 may have \
         left it unreported, so the target may count up to 908 over the total"
    );
    let mut v = to_replacement(1);
    v.hand_over.parts.get_mut("driver-3").expect("part").rate = Some(1000.0 / 3.0);
    let m = message(&status_of(&v));
    assert!(
        m.contains("went to driver-3, which joined in its place at 333.3 requests/s; up to 908"),
        "{m}"
    );
    v.hand_over.unknown_max = 0;
    v.unknown = 0;
    let m = message(&status_of(&v));
    assert!(m.ends_with("; none can have left it unreported"), "{m}");
    (v.sent_after, v.hand_over.unknown_max) = (Some(12), 908);
    let m = message(&status_of(&v));
    assert!(
        m.ends_with("; it reported again since, 12 sent after its last report"),
        "{m}"
    );
    // Unpaced: the counts only.
    let mut v = to_survivors(1);
    v.hand_over.parts.values_mut().for_each(|p| p.rate = None);
    let m = message(&status_of(&v));
    assert!(m.contains("driver-0 +1400, driver-2 +1400;"), "{m}");
}
