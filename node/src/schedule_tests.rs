//! Table tests of the rate schedule: exact due instants, monotone, whole counts per stage equal
//! to the integral of the rate, and no panic on extreme figures.

use super::*;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn st(duration: Duration, rate: f64) -> Stage {
    Stage { duration, rate }
}

/// (start rate, stages, total wanted, planned per stage wanted, (index, due wanted) pairs)
type Case = (f64, Vec<Stage>, u64, Vec<u64>, Vec<(u64, Option<Duration>)>);

fn cases() -> Vec<Case> {
    let ns = Duration::from_nanos;
    vec![
        // Flat: request i at i / rate, exactly as the constant pacer.
        (
            100.0,
            vec![st(2 * S, 100.0)],
            200,
            vec![200],
            vec![
                (0, Some(ns(0))),
                (1, Some(10 * MS)),
                (199, Some(1990 * MS)),
                (200, None),
            ],
        ),
        // A ramp 0 → 100/s over 2 s: R(t) = 25 t², so request i is due at √i / 5 s.
        (
            0.0,
            vec![st(2 * S, 100.0)],
            100,
            vec![100],
            vec![
                (0, Some(ns(0))),
                (1, Some(200 * MS)),
                (4, Some(400 * MS)),
                (25, Some(S)),
                (99, Some(ns(1_989_974_874))),
                (100, None),
            ],
        ),
        // The ramp, then a flat stage at its end rate: the flat stage starts at its start.
        (
            0.0,
            vec![st(2 * S, 100.0), st(2 * S, 100.0)],
            300,
            vec![100, 200],
            vec![
                (100, Some(2 * S)),
                (101, Some(2010 * MS)),
                (299, Some(3990 * MS)),
            ],
        ),
        // A ramp down 100 → 0: R(t) = 100 t − 25 t², so R(1 s) = 75.
        (
            100.0,
            vec![st(2 * S, 0.0)],
            100,
            vec![100],
            vec![(0, Some(ns(0))), (75, Some(S)), (100, None)],
        ),
        // A stretch at rate 0 first: the first request is due at its end, not at the start.
        (
            0.0,
            vec![st(S, 0.0), st(S, 10.0)],
            5,
            vec![0, 5],
            vec![(0, Some(S)), (1, Some(ns(1_447_213_595))), (5, None)],
        ),
        // Up, down to 0, a pause, up again: the pause holds nothing and shifts nothing.
        (
            0.0,
            vec![st(S, 10.0), st(S, 0.0), st(S, 0.0), st(S, 10.0)],
            15,
            vec![5, 5, 0, 5],
            vec![
                (5, Some(S)),
                (9, Some(ns(1_552_786_405))),
                (10, Some(3 * S)),
            ],
        ),
        // Rates whose products are not whole in binary: 0.1/s × 30 s is 3 requests, not 4.
        (
            0.1,
            vec![st(30 * S, 0.1)],
            3,
            vec![3],
            vec![(2, Some(20 * S)), (3, None)],
        ),
        // A fractional area rounds up: requests at 0, 0.4 and 0.8 s of a 2.5/s second.
        (2.5, vec![st(S, 2.5)], 3, vec![3], vec![(2, Some(800 * MS))]),
    ]
}

#[test]
fn due_instants_and_counts_are_exact() {
    for (i, (from, stages, total, planned, dues)) in cases().into_iter().enumerate() {
        let s = Schedule::new(from, &stages);
        assert_eq!(s.total(), total, "case {i}: total");
        let got: Vec<u64> = s.segments().iter().map(Segment::planned).collect();
        assert_eq!(got, planned, "case {i}: per stage");
        for (index, want) in dues {
            assert_eq!(s.due(index), want, "case {i}: due({index})");
        }
    }
}

#[test]
fn due_instants_are_monotone_inside_their_stage_and_agree_with_due_by() {
    for (i, (from, stages, ..)) in cases().into_iter().enumerate() {
        let s = Schedule::new(from, &stages);
        let mut last = Duration::ZERO;
        for index in 0..s.total() {
            let d = s.due(index).expect("in the schedule");
            assert!(d >= last, "case {i}: due({index}) {d:?} before {last:?}");
            last = d;
            let k = s.stage_of(index).expect("a stage");
            let seg = s.segments()[k];
            assert!(
                (seg.start_ns..seg.end_ns).contains(&(d.as_nanos() as u64)),
                "case {i}: request {index} due outside its stage {k}"
            );
            assert_eq!(s.stage_at(d), k, "case {i}: stage_at(due({index}))");
            // Counted as due from its instant on, and not a nanosecond before.
            assert!(s.due_by(d) > index, "case {i}: due_by(due({index}))");
            if let Some(before) = d.checked_sub(Duration::from_nanos(1)) {
                if index > 0 && s.due(index - 1) != Some(d) {
                    assert!(
                        s.due_by(before) <= index,
                        "case {i}: due_by just before {index}"
                    );
                }
            }
        }
        assert_eq!(s.due_by(s.end()), s.total(), "case {i}: all due at the end");
    }
}

#[test]
fn a_stage_holds_the_integral_of_its_rate() {
    // (start rate, end rate, seconds): whole integrals, so the count is exactly the integral.
    let table = [
        (0.0, 100.0, 2.0),
        (100.0, 300.0, 3.0),
        (1_000.0, 0.0, 0.5),
        (7.0, 7.0, 10.0),
        (0.0, 10_000_000.0, 1.0),
        (250.0, 750.0, 60.0),
    ];
    for (from, to, secs) in table {
        let s = Schedule::new(from, &[st(Duration::from_secs_f64(secs), to)]);
        let integral = (from + to) / 2.0 * secs;
        assert_eq!(s.total(), integral as u64, "{from} → {to} over {secs} s");
    }
    // Across stages the counts add up, and each is its own integral.
    let s = Schedule::new(50.0, &[st(2 * S, 150.0), st(S, 150.0), st(4 * S, 50.0)]);
    let got: Vec<u64> = s.segments().iter().map(Segment::planned).collect();
    assert_eq!(got, vec![200, 150, 400]);
    assert_eq!(s.total(), 750);
    assert_eq!(s.end(), 7 * S);
}

#[test]
fn extreme_figures_neither_panic_nor_overflow() {
    // Less than a billionth of a request in an hour is none; a millionth is one, due at once.
    let tiny = Schedule::new(1e-300, &[st(Duration::from_secs(3600), 1e-300)]);
    assert_eq!((tiny.total(), tiny.due(0)), (0, None));
    assert_eq!(tiny.due_by(Duration::from_secs(3600)), 0);
    let small = Schedule::new(1e-6, &[st(S, 1e-6), st(S, 0.0)]);
    assert_eq!((small.total(), small.due(0)), (1, Some(Duration::ZERO)));
    assert_eq!(small.due_by(2 * S), 1);
    let nonsense = Schedule::new(f64::NAN, &[st(S, f64::INFINITY), st(S, -5.0)]);
    assert_eq!(nonsense.total(), 0, "nonsense rates are rate 0");
    assert_eq!((nonsense.due(0), nonsense.due_by(S)), (None, 0));
    let empty = Schedule::new(10.0, &[]);
    assert_eq!(
        (empty.total(), empty.end(), empty.due(0)),
        (0, Duration::ZERO, None)
    );
    assert_eq!(empty.due_by(S), 0);
    // The hard limits: ten million a second for a day.
    let big = Schedule::new(1e7, &[st(Duration::from_secs(86_400), 1e7)]);
    assert_eq!(big.total(), 864_000_000_000);
    let last = big.due(big.total() - 1).expect("due");
    assert!(last < big.end(), "{last:?}");
    assert_eq!(big.due(u64::MAX), None);
    assert_eq!(big.due_by(Duration::MAX), big.total());
    // Stages as long as a Duration goes saturate instead of overflowing.
    let long = Schedule::new(1.0, &[st(Duration::MAX, 1.0), st(Duration::MAX, 1.0)]);
    assert_eq!(long.end(), Duration::from_nanos(u64::MAX));
    assert!(long.due(1_000).is_some());
    // A zero-length stage holds nothing (validation refuses it; the schedule does not care).
    let zero = Schedule::new(0.0, &[st(Duration::ZERO, 100.0), st(S, 100.0)]);
    assert_eq!((zero.total(), zero.due(0)), (100, Some(Duration::ZERO)));
}

#[test]
fn a_constant_pace_counts_the_requests_due_before_the_end() {
    assert_eq!(count_within(10 * MS, S), Some(100));
    assert_eq!(count_within(3 * MS, 10 * MS), Some(4), "0, 3, 6 and 9 ms");
    assert_eq!(count_within(Duration::ZERO, S), None);
    assert_eq!(count_within(Duration::MAX, S), Some(1));
    assert_eq!(gap(10 * MS, Some(1000.0)), 10 * MS);
    assert_eq!(gap(MS, Some(10.0)), 100 * MS);
    assert_eq!(gap(Duration::ZERO, Some(1e-300)), Duration::MAX);
    assert_eq!(gap(Duration::ZERO, Some(f64::NAN)), Duration::ZERO);
}
