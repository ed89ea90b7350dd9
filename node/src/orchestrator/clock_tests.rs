use super::*;

fn ex(t1: u64, t2: u64, t3: u64, t4: u64) -> Exchange {
    Exchange { t1, t2, t3, t4 }
}

#[test]
fn an_exchange_bounds_the_offset_by_half_its_delay() {
    // (exchange, offset, bound): the driver's clock minus the orchestrator's.
    let cases = [
        // Same clocks, 1 ms each way, held 500 ms: offset 0, bound 1 ms.
        (ex(1_000, 2_000, 502_000, 503_000), Some((0, 1_000))),
        // The driver 10 ms ahead, same delays.
        (ex(1_000, 12_000, 512_000, 503_000), Some((10_000, 1_000))),
        // The driver 10 ms behind.
        (ex(20_000, 11_000, 511_000, 522_000), Some((-10_000, 1_000))),
        // Asymmetric (3 ms out, 1 ms back), same clocks: off by the asymmetry's half, within bound.
        (ex(0, 3_000, 10_000, 11_000), Some((1_000, 2_000))),
        // An odd delay rounds the bound up, never under-states it.
        (ex(0, 1, 1, 3), Some((0, 2))),
        // An echo back before it left, a negative hold, a delay below zero: not one exchange.
        (ex(10, 20, 30, 5), None),
        (ex(0, 20, 10, 50), None),
        (ex(0, 0, 100, 50), None),
        // A round trip beyond MAX_DELAY_US says nothing.
        (ex(0, 0, 0, MAX_DELAY_US + 1), None),
    ];
    for (e, want) in cases {
        assert_eq!(e.offset().map(|o| (o.offset_us, o.bound_us)), want, "{e:?}");
    }
}

#[test]
fn the_correction_is_the_allowed_offset_nearest_zero() {
    let cases = [
        (0, 1_000, 0),
        (900, 1_000, 0),
        (-1_000, 1_000, 0),
        (10_000, 1_000, 9_000),
        (-10_000, 1_000, -9_000),
        (5, 0, 5),
    ];
    for (offset_us, bound_us, applied) in cases {
        let o = Offset {
            offset_us,
            bound_us,
        };
        assert_eq!(o.applied_us(), applied, "{o:?}");
    }
}

#[test]
fn the_filter_keeps_the_least_delay_of_its_window() {
    let mut f = ClockFilter::default();
    assert_eq!(f.estimate(), None);
    // Delays 8, 2, 6 ms: the 2 ms one wins.
    f.add(ex(0, 4_000, 4_000, 8_000));
    f.add(ex(100_000, 101_500, 101_500, 102_000));
    f.add(ex(200_000, 203_000, 203_000, 206_000));
    assert_eq!(
        f.estimate(),
        Some(Offset {
            offset_us: 500,
            bound_us: 1_000
        })
    );
    // A bad exchange is not kept; WINDOW later ones push the best out.
    f.add(ex(10, 20, 30, 5));
    for i in 0..WINDOW as u64 {
        let t = 1_000_000 * (i + 1);
        f.add(ex(t, t + 5_000, t + 5_000, t + 10_000));
    }
    assert_eq!(
        f.estimate(),
        Some(Offset {
            offset_us: 0,
            bound_us: 5_000
        })
    );
}

#[test]
fn the_skew_is_latest_minus_earliest_on_the_orchestrator_s_clock() {
    let off = |offset_us, bound_us| {
        Some(Offset {
            offset_us,
            bound_us,
        })
    };
    // a: same clock; b: 20 ms ahead (corrected by 19 ms), sent 3 ms after a really did; c: none
    // measured.
    let a = driver_start(1_000_000, off(100, 500));
    let b = driver_start(1_023_000, off(20_000, 1_000));
    let c = driver_start(1_002_000, None);
    assert_eq!(a.clock_applied_ms, 0.0);
    assert_eq!(b.clock_applied_ms, 19.0);
    assert_eq!(b.first_send_ms, 1_004.0);
    assert_eq!((c.clock_offset_ms, c.clock_bound_ms), (None, None));

    let s = start_skew([&a, &b]).expect("two started");
    assert_eq!(
        (s.skew_ms, s.bound_ms, s.first_ms, s.drivers),
        (4.0, Some(1.5), 1_000.0, 2)
    );
    // The latest is b; c in the middle leaves the bound known.
    let s = start_skew([&a, &b, &c]).expect("three");
    assert_eq!((s.skew_ms, s.bound_ms, s.drivers), (4.0, Some(1.5), 3));
    // c the earliest: its offset is unknown, so is the bound.
    let early = driver_start(990_000, None);
    let s = start_skew([&a, &b, &early]).expect("three");
    assert_eq!((s.skew_ms, s.bound_ms), (14.0, None));
    // One driver: no skew, exactly.
    let s = start_skew([&c]).expect("one");
    assert_eq!((s.skew_ms, s.bound_ms), (0.0, Some(0.0)));
    assert_eq!(start_skew(std::iter::empty()), None);
}
