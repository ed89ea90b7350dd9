//! The pacer: a pure function from a request's index to the instant it is due.
//!
//! Requests are scheduled at absolute offsets from the start (`i × gap`), never relative to the
//! previous send, so a late request does not push every later one back and the schedule cannot
//! drift. Latency in a paced test is measured from this due instant (coordinated omission).
//! A constant pace is `i × gap`; a staged test's is its rate schedule's (`crate::schedule`).

use crate::schedule::Schedule;
use std::sync::Arc;
use std::time::Duration;

/// When each request of a test is due.
#[derive(Clone, Debug, PartialEq)]
pub enum Pacer {
    /// Request `i` at `i × gap`; a zero gap means "as soon as a connection is free". The seed's
    /// two test types, and the path that stays as cheap as before stages existed (integer
    /// nanoseconds, no lookup).
    Constant { gap: Duration },
    /// Request `i` at the rate schedule's due instant (stages with linear ramps; see
    /// [`crate::schedule`]).
    Staged(Arc<Schedule>),
}

impl Pacer {
    /// No pacing: every request is due immediately (an uncapped Avalanche).
    pub const UNPACED: Pacer = Pacer::Constant {
        gap: Duration::ZERO,
    };

    /// The gap is the larger of the Tsunami delay and the throughput cap's `1 / rate`, so the cap
    /// holds in either mode and a Tsunami never sends faster than its delay allows.
    pub fn new(delay: Duration, rate_per_sec: Option<f64>) -> Self {
        Pacer::Constant {
            gap: crate::schedule::gap(delay, rate_per_sec),
        }
    }

    /// Paced by a rate schedule.
    pub fn staged(schedule: Schedule) -> Self {
        Pacer::Staged(Arc::new(schedule))
    }

    /// The constant gap; zero when unpaced, and for a staged schedule (which has none).
    pub fn gap(&self) -> Duration {
        match self {
            Pacer::Constant { gap } => *gap,
            Pacer::Staged(_) => Duration::ZERO,
        }
    }

    /// The rate schedule, when staged.
    pub fn schedule(&self) -> Option<&Schedule> {
        match self {
            Pacer::Staged(s) => Some(s),
            Pacer::Constant { .. } => None,
        }
    }

    pub fn is_paced(&self) -> bool {
        match self {
            Pacer::Constant { gap } => !gap.is_zero(),
            Pacer::Staged(_) => true,
        }
    }

    /// Offset from the start at which request `index` (0-based) is due; `None` when unpaced
    /// (and, staged, past the schedule's last request).
    pub fn due(&self, index: u64) -> Option<Duration> {
        let gap = match self {
            Pacer::Constant { gap } => *gap,
            Pacer::Staged(s) => return s.due(index),
        };
        if gap.is_zero() {
            return None;
        }
        // Nanosecond arithmetic in u128 so that long tests with tiny gaps cannot overflow.
        let nanos = gap.as_nanos().saturating_mul(u128::from(index));
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    /// How many requests are due by `elapsed` (indices `0..n`), at most `requests`; a paced test
    /// has its first due at zero, so this is at least one. `requests` when unpaced.
    pub fn due_by(&self, elapsed: Duration, requests: u64) -> u64 {
        let gap = match self {
            Pacer::Constant { gap } => *gap,
            Pacer::Staged(s) => return s.due_by(elapsed).clamp(1, requests.max(1)),
        };
        if gap.is_zero() {
            return requests;
        }
        let n = elapsed.as_nanos() / gap.as_nanos() + 1;
        u64::try_from(n).unwrap_or(u64::MAX).min(requests)
    }

    /// How long after `elapsed` the next request is due, given `sent` requests already went out:
    /// zero when it is already due (or unpaced).
    pub fn wait(&self, elapsed: Duration, sent: u64) -> Duration {
        self.due(sent)
            .map_or(Duration::ZERO, |due| due.saturating_sub(elapsed))
    }

    /// The shortest time `count` requests can take from first to last due instant.
    pub fn min_duration(&self, count: u64) -> Duration {
        self.due(count.saturating_sub(1)).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn unpaced_sends_everything_now() {
        let p = Pacer::new(Duration::ZERO, None);
        assert_eq!(p, Pacer::UNPACED);
        assert_eq!(p.due(1_000_000), None);
        assert_eq!(p.wait(Duration::ZERO, 5), Duration::ZERO);
    }

    #[test]
    fn cap_sets_the_gap() {
        let p = Pacer::new(Duration::ZERO, Some(500.0));
        assert_eq!(p.gap(), 2 * MS);
        assert_eq!(p.due(0), Some(Duration::ZERO));
        assert_eq!(p.due(1999), Some(3998 * MS));
        assert_eq!(p.min_duration(2000), 3998 * MS);
    }

    #[test]
    fn tsunami_uses_the_larger_of_delay_and_cap() {
        assert_eq!(Pacer::new(10 * MS, Some(1000.0)).gap(), 10 * MS);
        assert_eq!(Pacer::new(MS, Some(10.0)).gap(), 100 * MS);
        assert_eq!(Pacer::new(10 * MS, None).gap(), 10 * MS);
        // A zero or nonsense cap is no cap.
        assert_eq!(Pacer::new(10 * MS, Some(0.0)).gap(), 10 * MS);
        assert_eq!(Pacer::new(10 * MS, Some(f64::NAN)).gap(), 10 * MS);
    }

    #[test]
    fn schedule_is_absolute_and_does_not_drift() {
        let p = Pacer::new(Duration::from_micros(333), None);
        // The millionth request is due at exactly 1e6 × gap, not at an accumulated sum.
        assert_eq!(p.due(1_000_000), Some(Duration::from_micros(333_000_000)));
        // Being late does not move the next due instant.
        assert_eq!(p.wait(Duration::from_millis(50), 10), Duration::ZERO);
        assert_eq!(
            p.wait(Duration::from_micros(3_000), 10),
            Duration::from_micros(330)
        );
    }

    #[test]
    fn due_by_counts_every_index_whose_instant_has_come() {
        let p = Pacer::new(Duration::from_micros(250), None);
        // (elapsed µs, due by then, out of 10)
        let cases = [
            (0, 1),
            (249, 1),
            (250, 2),
            (999, 4),
            (1_000, 5),
            (2_250, 10),
            (9_999_999, 10),
        ];
        for (us, want) in cases {
            assert_eq!(p.due_by(Duration::from_micros(us), 10), want, "{us} µs");
            // Consistent with `due`: the last one counted is due by then, the next is not.
            let last = p.due(want - 1).expect("paced");
            assert!(last <= Duration::from_micros(us));
        }
        assert_eq!(Pacer::UNPACED.due_by(Duration::ZERO, 7), 7);
        assert_eq!(
            Pacer::new(Duration::from_nanos(1), None).due_by(Duration::MAX, 5),
            5
        );
    }

    #[test]
    fn huge_indices_saturate_instead_of_overflowing() {
        let p = Pacer::new(Duration::from_secs(3600), None);
        assert_eq!(p.due(u64::MAX), Some(Duration::from_nanos(u64::MAX)));
    }

    #[test]
    fn a_rate_too_small_for_a_duration_is_the_longest_gap_not_a_panic() {
        // Issue 10, item 5: `from_secs_f64(1 / 1e-300)` panicked every driver.
        let p = Pacer::new(Duration::ZERO, Some(1e-300));
        assert_eq!(p.gap(), Duration::MAX);
        assert_eq!(p.due_by(Duration::from_secs(3600), 10), 1);
    }
}
