//! Live rate changes (issue 13, item 3): change points appended to a constant pace while the
//! run goes on, so every driver switches at one agreed instant and keeps an absolute schedule.
//!
//! A constant pace is `due(i) = i × gap`. A change at offset `at` to a new gap keeps every request
//! due before `at` where it was and puts request `i` from there on at `origin + i × gap'`, where
//! `origin` is chosen so the fraction of a gap that had passed at `at` carries over: the first
//! request after the change is due as far into its new gap as the schedule was into its old one.
//! So there is no burst and no hole at the switch, and no step depends on the sends before it
//! (pacing stays a pure function of the index). Each change point is one segment of that
//! piecewise schedule; [`ChangePoint::from_segment`] is the pure step, table-tested.
//!
//! The points live in a fixed array of atomics, as many as the plan allows (the driver gives the
//! protocol's limit, so it never refuses a change the orchestrator accepted), written under a
//! lock by the one caller that changes rates (the driver) and read without one by the clock and
//! the workers: a run with no change costs one atomic load per request.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One segment of a retimed schedule: request `i >= first` is due `origin_ns + i × gap_ns` after
/// the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangePoint {
    /// The first request index the segment paces (those before keep their earlier due instants).
    pub first: u64,
    /// Offset of the change from the start, in ns.
    pub at_ns: u64,
    /// Where index 0 would have been due on this segment's gap (may be before the start).
    pub origin_ns: i64,
    pub gap_ns: u64,
}

impl ChangePoint {
    /// The run's own constant pace as a segment.
    pub fn base(gap_ns: u64) -> Self {
        Self {
            first: 0,
            at_ns: 0,
            origin_ns: 0,
            gap_ns,
        }
    }

    /// The segment that follows `self` when the gap changes to `gap_ns` at `at_ns` (never before
    /// `self` began): the fraction of a gap that had passed at the change carries over.
    pub fn from_segment(&self, at_ns: u64, gap_ns: u64) -> Self {
        let at_ns = at_ns.max(self.at_ns);
        let (old, new) = (i128::from(self.gap_ns.max(1)), i128::from(gap_ns.max(1)));
        // How far the old schedule had come at the change, in ns of its own gap since index 0.
        let phase = (i128::from(at_ns) - i128::from(self.origin_ns)).max(0);
        // Indices due strictly before the change stay on the old schedule.
        let first = u64::try_from((phase + old - 1) / old)
            .unwrap_or(u64::MAX)
            .max(self.first);
        // `origin + first × new >= at` since `first >= phase / old` (rounded down here, so the
        // first new instant is never before the change).
        let origin = i128::from(at_ns) - phase * new / old;
        Self {
            first,
            at_ns,
            origin_ns: i64::try_from(origin).unwrap_or(i64::MIN),
            gap_ns,
        }
    }

    /// Offset of request `index` (at least `first`) from the start, in ns.
    pub fn due_ns(&self, index: u64) -> u64 {
        let ns = i128::from(self.origin_ns) + i128::from(index) * i128::from(self.gap_ns);
        u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
    }

    /// How many requests are due by `elapsed_ns` (at least `first`, which were all due before
    /// the change), given `elapsed_ns >= at_ns`.
    pub fn due_by(&self, elapsed_ns: u64) -> u64 {
        let since = i128::from(elapsed_ns) - i128::from(self.origin_ns);
        let n = if since < 0 {
            0
        } else {
            since / i128::from(self.gap_ns.max(1)) + 1
        };
        u64::try_from(n).unwrap_or(u64::MAX).max(self.first)
    }
}

/// A change as applied, for the caller's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retimed {
    /// The caller's label for the change (the driver's: the orchestrator's change number).
    pub tag: u64,
    pub point: ChangePoint,
}

/// A change as the caller sees it: when it took effect on the wall clock, from which request
/// on, and the new gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retime {
    pub tag: u64,
    pub at: std::time::SystemTime,
    pub first: u64,
    pub gap: std::time::Duration,
}

impl Retimed {
    /// On the wall clock of a run that started at `start_wall`.
    pub fn on_wall(&self, start_wall: std::time::SystemTime) -> Retime {
        Retime {
            tag: self.tag,
            at: start_wall + std::time::Duration::from_nanos(self.point.at_ns),
            first: self.point.first,
            gap: std::time::Duration::from_nanos(self.point.gap_ns),
        }
    }
}

/// Why a change was not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetimeError {
    /// The run is not paced by a constant gap (unpaced, or staged: the stages are its pace).
    NotConstant,
    /// The run already took as many changes as its plan allows ([`super::Plan::max_retimes`]).
    TooMany(usize),
    /// A zero gap (an unpaced run cannot be reached by a change).
    ZeroGap,
}

impl std::fmt::Display for RetimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetimeError::NotConstant => {
                f.write_str("the run is not paced by a constant rate (uncapped, or staged)")
            }
            RetimeError::TooMany(n) => write!(f, "the run already took {n} rate changes"),
            RetimeError::ZeroGap => f.write_str("a rate change needs a rate above zero"),
        }
    }
}

#[derive(Default)]
struct Slot {
    first: AtomicU64,
    at_ns: AtomicU64,
    origin_ns: AtomicI64,
    gap_ns: AtomicU64,
    tag: AtomicU64,
}

/// A run's change points (see the module docs).
pub struct Retimes {
    /// The run's own gap in ns; 0 when it cannot be retimed.
    base_gap_ns: u64,
    /// Points published so far; a reader sees a point's fields once it sees the count include it.
    count: AtomicUsize,
    slots: Box<[Slot]>,
    writer: Mutex<()>,
}

impl Retimes {
    /// For a run paced by `base_gap_ns` taking at most `most` changes (0 either way: not
    /// retimable, and then nothing is allocated).
    pub fn new(base_gap_ns: u64, most: usize) -> Self {
        let slots = if base_gap_ns == 0 { 0 } else { most };
        Self {
            base_gap_ns,
            count: AtomicUsize::new(0),
            slots: (0..slots).map(|_| Slot::default()).collect(),
            writer: Mutex::new(()),
        }
    }

    fn read(&self, i: usize) -> Retimed {
        let s = &self.slots[i];
        Retimed {
            tag: s.tag.load(Ordering::Relaxed),
            point: ChangePoint {
                first: s.first.load(Ordering::Relaxed),
                at_ns: s.at_ns.load(Ordering::Relaxed),
                origin_ns: s.origin_ns.load(Ordering::Relaxed),
                gap_ns: s.gap_ns.load(Ordering::Relaxed),
            },
        }
    }

    /// The segment pacing `index`, if a change reached it; `None`: the run's own pace. Asked for
    /// every request: only the slot found is read whole.
    pub fn segment_for(&self, index: u64) -> Option<ChangePoint> {
        self.latest(|s| index >= s.first.load(Ordering::Relaxed))
    }

    /// The segment in force at `elapsed_ns`, if a change has taken effect by then.
    pub fn segment_at(&self, elapsed_ns: u64) -> Option<ChangePoint> {
        self.latest(|s| elapsed_ns >= s.at_ns.load(Ordering::Relaxed))
    }

    /// The newest published point whose slot passes `test`.
    fn latest(&self, test: impl Fn(&Slot) -> bool) -> Option<ChangePoint> {
        let n = self.count.load(Ordering::Acquire);
        (0..n)
            .rev()
            .find(|&i| test(&self.slots[i]))
            .map(|i| self.read(i).point)
    }

    /// Appends a change to `gap_ns` at `at_ns` (moved to `not_before_ns` if that is later:
    /// requests already let go cannot be moved).
    pub fn push(
        &self,
        at_ns: u64,
        not_before_ns: u64,
        gap_ns: u64,
        tag: u64,
    ) -> Result<Retimed, RetimeError> {
        if self.base_gap_ns == 0 {
            return Err(RetimeError::NotConstant);
        }
        if self.slots.is_empty() {
            return Err(RetimeError::TooMany(0));
        }
        if gap_ns == 0 {
            return Err(RetimeError::ZeroGap);
        }
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let n = self.count.load(Ordering::Relaxed);
        if n >= self.slots.len() {
            return Err(RetimeError::TooMany(self.slots.len()));
        }
        let last = match n {
            0 => ChangePoint::base(self.base_gap_ns),
            _ => self.read(n - 1).point,
        };
        let point = last.from_segment(at_ns.max(not_before_ns), gap_ns);
        let s = &self.slots[n];
        s.first.store(point.first, Ordering::Relaxed);
        s.at_ns.store(point.at_ns, Ordering::Relaxed);
        s.origin_ns.store(point.origin_ns, Ordering::Relaxed);
        s.gap_ns.store(point.gap_ns, Ordering::Relaxed);
        s.tag.store(tag, Ordering::Relaxed);
        self.count.store(n + 1, Ordering::Release);
        Ok(Retimed { tag, point })
    }

    /// Every change applied so far, in order.
    pub fn applied(&self) -> Vec<Retimed> {
        let n = self.count.load(Ordering::Acquire);
        (0..n).map(|i| self.read(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const MOST: usize = 8;

    #[test]
    fn a_change_keeps_what_was_due_before_it_and_carries_the_phase_over() {
        // (old gap, change at, new gap) → (first index on the new gap, its due instant)
        let cases = [
            // 1 ms → 0.5 ms at 10.4 ms: 0..=10 stay (10 at 10 ms); 11 was 0.6 gaps away, so it
            // is due 0.6 new gaps (0.3 ms) after the change.
            (MS, 10_400_000, MS / 2, 11, 10_700_000),
            // Slowing down: 11 is due 0.6 × 2 ms after the change.
            (MS, 10_400_000, 2 * MS, 11, 11_600_000),
            // On an instant of the old schedule: that request takes the new gap's start.
            (MS, 10 * MS, 2 * MS, 10, 10 * MS),
            // At the start: the whole run on the new gap.
            (MS, 0, 3 * MS, 0, 0),
        ];
        for (old, at, new, first, due) in cases {
            let p = ChangePoint::base(old).from_segment(at, new);
            assert_eq!(
                (p.first, p.due_ns(p.first)),
                (first, due),
                "{old} {at} {new}"
            );
            assert!(p.due_ns(p.first) >= at);
            // The next ones follow at the new gap, absolutely.
            assert_eq!(p.due_ns(p.first + 1000), due + 1000 * new);
        }
    }

    #[test]
    fn due_by_agrees_with_due() {
        let p = ChangePoint::base(MS).from_segment(10_400_000, MS / 4);
        for elapsed in (10_400_000..20 * MS).step_by(37_000) {
            let n = p.due_by(elapsed);
            assert!(p.due_ns(n - 1) <= elapsed || n - 1 < p.first, "{elapsed}");
            assert!(p.due_ns(n) > elapsed, "{elapsed}");
        }
        // Right at the change, only what was due before it.
        assert_eq!(p.due_by(10_400_000), 11);
    }

    #[test]
    fn changes_chain_and_never_go_back_in_time() {
        let r = Retimes::new(MS, MOST);
        let a = r.push(10 * MS, 0, MS / 2, 1).expect("first");
        // Asked for an instant before the previous change: taken at that change.
        let b = r.push(5 * MS, 0, 2 * MS, 2).expect("second");
        assert_eq!(b.point.at_ns, a.point.at_ns);
        assert!(b.point.first >= a.point.first);
        // The lateness floor moves a change that arrives after its instant.
        let c = r.push(30 * MS, 41 * MS, MS, 3).expect("third");
        assert_eq!(c.point.at_ns, 41 * MS);
        assert_eq!(r.applied().len(), 3);
        assert_eq!(r.segment_for(0), None);
        assert_eq!(r.segment_for(c.point.first), Some(c.point));
        assert_eq!(r.segment_at(41 * MS), Some(c.point));
        assert_eq!(r.segment_at(MS), None);
    }

    #[test]
    fn a_run_that_cannot_be_retimed_says_why() {
        assert_eq!(
            Retimes::new(0, MOST).push(0, 0, MS, 1),
            Err(RetimeError::NotConstant)
        );
        assert_eq!(
            Retimes::new(MS, MOST).push(0, 0, 0, 1),
            Err(RetimeError::ZeroGap)
        );
        let r = Retimes::new(MS, MOST);
        for i in 0..MOST as u64 {
            r.push(i * MS, 0, MS, i).expect("within the limit");
        }
        assert_eq!(r.push(0, 0, MS, 99), Err(RetimeError::TooMany(MOST)));
        assert_eq!(
            Retimes::new(MS, 0).push(0, 0, MS, 1),
            Err(RetimeError::TooMany(0))
        );
    }
}
