use super::*;

fn m(id: &str, floodgate: bool, capacity: Option<f64>) -> Member {
    Member {
        id: id.into(),
        floodgate,
        capacity,
    }
}

fn counts(s: &Split) -> Vec<u64> {
    s.shares.iter().map(|s| s.requests).collect()
}

fn scales(s: &Split) -> Vec<f64> {
    s.shares
        .iter()
        .map(|s| (s.rate_scale * 1000.0).round() / 1000.0)
        .collect()
}

/// (total, members, how, counts wanted, rate scales wanted)
type Case = (u64, Vec<Member>, SplitBy, Vec<u64>, Vec<f64>);

#[test]
fn shares_follow_the_capacities_and_add_up_to_the_total() {
    let cases: Vec<Case> = vec![
        // The case: 30,000 over three unequal drivers.
        (
            30_000,
            vec![
                m("a", true, Some(1.0)),
                m("b", true, Some(2.0)),
                m("c", true, Some(3.0)),
            ],
            SplitBy::Capacity,
            vec![5_000, 10_000, 15_000],
            vec![0.5, 1.0, 1.5],
        ),
        // Remainders go to the largest fractions, ties to the earlier driver.
        (
            10,
            vec![
                m("a", true, Some(1.0)),
                m("b", true, Some(1.0)),
                m("c", true, Some(1.0)),
            ],
            SplitBy::Capacity,
            vec![4, 3, 3],
            vec![1.0, 1.0, 1.0],
        ),
        (
            100,
            vec![
                m("a", true, Some(1.0)),
                m("b", true, Some(2.0)),
                m("c", true, Some(4.0)),
            ],
            SplitBy::Capacity,
            // 14.29, 28.57, 57.14: the .57 gets the one left.
            vec![14, 29, 57],
            vec![0.429, 0.857, 1.714],
        ),
        // Equal ignores capacities.
        (
            9,
            vec![m("a", true, Some(1.0)), m("b", true, Some(8.0))],
            SplitBy::Equal,
            vec![5, 4],
            vec![1.0, 1.0],
        ),
        // A driver that declared nothing weighs the mean of those that did (2 here).
        (
            6_000,
            vec![
                m("a", true, Some(1.0)),
                m("b", true, Some(3.0)),
                m("c", true, None),
            ],
            SplitBy::Capacity,
            vec![1_000, 3_000, 2_000],
            vec![0.5, 1.5, 1.0],
        ),
        // Nobody declared: all weigh 1.
        (
            7,
            vec![m("a", true, None), m("b", true, None)],
            SplitBy::Capacity,
            vec![4, 3],
            vec![1.0, 1.0],
        ),
        // Another implementation's driver runs the broadcast figures (1,000 = 3,001 / 3
        // rounded down, and the mean rate); Floodgate's share the rest by capacity.
        (
            3_001,
            vec![
                m("a", true, Some(1.0)),
                m("seed", false, None),
                m("c", true, Some(3.0)),
            ],
            SplitBy::Capacity,
            vec![500, 1_000, 1_501],
            vec![0.5, 1.0, 1.5],
        ),
        // Only drivers of other implementations, and the total divides: the seed's split.
        (
            3_000,
            vec![
                m("x", false, None),
                m("y", false, None),
                m("z", false, None),
            ],
            SplitBy::Capacity,
            vec![1_000, 1_000, 1_000],
            vec![1.0, 1.0, 1.0],
        ),
        // A rate alone (no count): only the scales matter.
        (
            0,
            vec![m("a", true, Some(4.0)), m("b", true, Some(12.0))],
            SplitBy::Capacity,
            vec![0, 0],
            vec![0.5, 1.5],
        ),
        // Capacities that are not numbers a driver could mean count as undeclared.
        (
            4,
            vec![
                m("a", true, Some(f64::NAN)),
                m("b", true, Some(-1.0)),
                m("c", true, Some(0.0)),
            ],
            SplitBy::Capacity,
            vec![2, 1, 1],
            vec![1.0, 1.0, 1.0],
        ),
    ];
    for (i, (total, members, by, want_counts, want_scales)) in cases.into_iter().enumerate() {
        let s = split(total, &members, by).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(counts(&s), want_counts, "case {i}: counts");
        assert_eq!(counts(&s).iter().sum::<u64>(), total, "case {i}: the total");
        assert_eq!(scales(&s), want_scales, "case {i}: rate scales");
        // The scales' sum is the participants': the total rate is held.
        let sum: f64 = s.shares.iter().map(|s| s.rate_scale).sum();
        assert!((sum - members.len() as f64).abs() < 1e-9, "case {i}: {sum}");
        assert_eq!(s.per_driver, total / members.len() as u64, "case {i}");
    }
}

#[test]
fn a_total_no_participant_can_take_unevenly_is_refused() {
    let seeds = [
        m("x", false, None),
        m("y", false, None),
        m("z", false, None),
    ];
    assert_eq!(
        split(3_001, &seeds, SplitBy::Capacity),
        Err(SplitError::Indivisible {
            total: 3_001,
            drivers: 3
        })
    );
    assert_eq!(
        split(1, &[], SplitBy::Equal),
        Err(SplitError::NoParticipants)
    );
}

#[test]
fn no_share_is_off_its_proportion_by_a_request_even_at_the_largest_totals() {
    let members: Vec<Member> = (1..=8)
        .map(|i| m(&format!("d{i}"), true, Some(i as f64 * 0.37)))
        .collect();
    let sum: f64 = members.iter().map(|m| m.capacity.unwrap_or(0.0)).sum();
    for total in [0, 1, 7, 8, 999_999_937, 8_000_000_000] {
        let s = split(total, &members, SplitBy::Capacity).expect("split");
        assert_eq!(counts(&s).iter().sum::<u64>(), total, "{total}");
        for (sh, mm) in s.shares.iter().zip(&members) {
            let exact = total as f64 * mm.capacity.unwrap_or(0.0) / sum;
            assert!(
                (sh.requests as f64 - exact).abs() < 1.0 + 1e-6 * exact,
                "{total}: {} against {exact}",
                sh.requests
            );
        }
    }
}

/// A successor that weighs each driver by the share it was given at the start gets the same
/// shares back exactly, at any size (how an adopted test given in totals is shared again).
#[test]
fn shares_used_as_weights_give_themselves_back_exactly() {
    let cases: [&[u64]; 5] = [
        &[5_000, 10_000, 15_000],
        &[101, 100, 100],
        &[1_000_000_000, 999_999_999, 7],
        &[
            333_333_333,
            333_333_334,
            333_333_333,
            1,
            2,
            3,
            999_999_999,
            12_345,
        ],
        &[1, 1],
    ];
    for shares in cases {
        let members: Vec<Member> = shares
            .iter()
            .enumerate()
            .map(|(i, &n)| m(&format!("d{i}"), true, Some(n as f64)))
            .collect();
        let total = shares.iter().sum();
        let s = split(total, &members, SplitBy::Capacity).expect("split");
        assert_eq!(counts(&s), shares.to_vec(), "{shares:?}");
    }
}
