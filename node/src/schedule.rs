//! The rate schedule of a staged test: the instant each request is due, a pure function of its
//! index, shared by the driver's engine (when to send) and the orchestrator (how many to expect,
//! per stage). Uses nothing else in the crate.
//!
//! A schedule is a piecewise-linear rate `r(t)` (requests per second, per driver): each stage
//! ramps linearly from the previous stage's rate (`start_rate` for the first) to its own over its
//! duration. With `R(t) = ∫₀ᵗ r` the number of requests due by `t`, request `i` (0-based) is due
//! at `inf { t : R(t) > i }`: request 0 at the start, request `i` when the `i`-th whole request
//! of area has accumulated, and after a stretch at rate 0 the next one at the stretch's end
//! rather than its start. Per stage that is closed form, solving `R(t) = i` on one segment:
//! a division on a flat stage, the stable root of a quadratic on a ramp. No step depends on an
//! earlier one, so there is nothing to drift.
//!
//! A stage covers the half-open span `[start, end)`: it holds the requests due in it, so a
//! schedule sends `ceil(R(end))` requests in all and a stage `ceil(R(end)) - ceil(R(start))`.
//! Those figures are computed once at construction, with integrals that come within a billionth
//! of a whole number taken as that number (`0.1 × 30` is 3, not 3.0000000000000004 and so 4).

use std::time::Duration;

/// One stage as a user gives it: its length, and the rate reached at its end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    /// Requests per second at the stage's end.
    pub rate: f64,
}

/// One stage as scheduled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// Offsets from the start, in ns.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Rate at the start and at the end, per second.
    pub from_rate: f64,
    pub to_rate: f64,
    /// Requests due before the stage (the index of its first) and before its end.
    pub first: u64,
    pub end_index: u64,
    /// `R(start)`: requests of area before the stage.
    area_before: f64,
}

impl Segment {
    /// Requests due in this stage.
    pub fn planned(&self) -> u64 {
        self.end_index - self.first
    }

    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_ns - self.start_ns)
    }

    /// The stage's mean rate (its target), per second.
    pub fn mean_rate(&self) -> f64 {
        (self.from_rate + self.to_rate) / 2.0
    }

    fn secs(&self) -> f64 {
        (self.end_ns - self.start_ns) as f64 / 1e9
    }

    /// Seconds into the stage at which `n` requests of area have accumulated in it.
    fn time_of(&self, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let (r0, t) = (self.from_rate, self.secs());
        let slope = (self.to_rate - r0) / t;
        if !slope.is_finite() || slope.abs() <= 1e-12 * r0.max(self.to_rate) {
            return n / r0;
        }
        // r0·τ + slope·τ²/2 = n, in the form that does not cancel when slope·n is small
        // against r0² (the textbook (−r0 + √…)/slope loses every digit there); the discriminant
        // only dips below zero through rounding, on a ramp down at its very end.
        let disc = (r0 * r0 + 2.0 * slope * n).max(0.0);
        let denom = r0 + disc.sqrt();
        if denom > 0.0 {
            2.0 * n / denom
        } else {
            t
        }
    }

    /// Requests of area accumulated `secs` into the stage.
    fn area_at(&self, secs: f64) -> f64 {
        let t = self.secs();
        let slope = if t > 0.0 {
            (self.to_rate - self.from_rate) / t
        } else {
            0.0
        };
        self.area_before + self.from_rate * secs + slope * secs * secs / 2.0
    }
}

/// A whole schedule: its stages, the requests due in all, and its end.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    segments: Vec<Segment>,
    total: u64,
}

/// A rate the schedule can use: a negative, NaN or infinite one (never let through by the
/// limits, but the engine never panics on one) counts as 0.
fn sane(rate: f64) -> f64 {
    if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        0.0
    }
}

/// `x`, or the whole number it is within a billionth of.
fn snap(x: f64) -> f64 {
    let r = x.round();
    if (x - r).abs() <= 1e-9 * x.abs().max(1.0) {
        r
    } else {
        x
    }
}

/// Whole requests due before an area of `x` (`ceil`, saturating, never negative).
fn whole(x: f64) -> u64 {
    // `as` saturates: a NaN is 0 and an area beyond u64 is u64::MAX.
    x.ceil() as u64
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Schedule {
    pub fn new(start_rate: f64, stages: &[Stage]) -> Schedule {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut at_ns, mut area, mut rate) = (0u64, 0.0f64, sane(start_rate));
        for s in stages {
            let to = sane(s.rate);
            let end_ns = at_ns.saturating_add(nanos(s.duration));
            let secs = (end_ns - at_ns) as f64 / 1e9;
            let end_area = snap(area + (rate + to) / 2.0 * secs);
            segments.push(Segment {
                start_ns: at_ns,
                end_ns,
                from_rate: rate,
                to_rate: to,
                first: whole(area),
                end_index: whole(end_area).max(whole(area)),
                area_before: area,
            });
            (at_ns, area, rate) = (end_ns, end_area, to);
        }
        let total = segments.last().map_or(0, |s| s.end_index);
        Schedule { segments, total }
    }

    /// A flat rate for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Schedule {
        Schedule::new(rate, &[Stage { duration, rate }])
    }

    /// Requests due in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When the schedule ends (the sum of its stages).
    pub fn end(&self) -> Duration {
        Duration::from_nanos(self.segments.last().map_or(0, |s| s.end_ns))
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The stage request `index` is due in; `None` past the last.
    pub fn stage_of(&self, index: u64) -> Option<usize> {
        if index >= self.total {
            return None;
        }
        // Stages due nothing (rate 0, or too short for a whole request) have
        // `end_index == first` and are never the answer.
        Some(self.segments.partition_point(|s| s.end_index <= index))
    }

    /// The stage whose span holds `offset` from the start; the last one from its end on (a
    /// request sent late, after the schedule ended, counts there).
    pub fn stage_at(&self, offset: Duration) -> usize {
        let ns = nanos(offset);
        self.segments
            .partition_point(|s| s.end_ns <= ns)
            .min(self.segments.len().saturating_sub(1))
    }

    /// Offset from the start at which request `index` is due; `None` past the last request.
    pub fn due(&self, index: u64) -> Option<Duration> {
        let s = &self.segments[self.stage_of(index)?];
        let tau = s.time_of(index as f64 - s.area_before);
        // Rounding never moves a request out of its own stage (nor before the previous one).
        let ns = (tau * 1e9).round();
        let ns = if ns.is_finite() { ns as u64 } else { u64::MAX };
        let span = s.end_ns - s.start_ns;
        Some(Duration::from_nanos(
            s.start_ns + ns.min(span.saturating_sub(1)),
        ))
    }

    /// How many requests are due by `elapsed` (indices `0..n`): at least 1 (request 0 is due at
    /// the start), at most [`Schedule::total`].
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let ns = nanos(elapsed);
        let s = &self.segments[self.stage_at(elapsed)];
        let estimate = if ns >= s.end_ns {
            self.total
        } else {
            let secs = (ns - s.start_ns) as f64 / 1e9;
            whole(s.area_at(secs).floor() + 1.0)
        };
        // The area is an estimate within rounding (and one too many in a stretch at rate 0):
        // `due` is the truth, so the count is moved until it agrees with it.
        let mut n = estimate.clamp(1, self.total);
        while n > 1 && self.due(n - 1).is_some_and(|d| d > elapsed) {
            n -= 1;
        }
        while n < self.total && self.due(n).is_some_and(|d| d <= elapsed) {
            n += 1;
        }
        n
    }
}

/// How a test is paced, from its figures: what a driver runs, and what the orchestrator expects
/// of it.
#[derive(Clone, Debug, PartialEq)]
pub enum Pace {
    /// Request `i` at `i × gap`; a zero gap is unpaced.
    Constant(Duration),
    Staged(Schedule),
}

impl Pace {
    /// Stages when there are any (they set the pace alone); else the constant [`gap`]. The
    /// stages as the wire and the spec give them: (milliseconds, rate at the end).
    pub fn of(
        delay: Duration,
        rate: Option<f64>,
        start_rate: f64,
        stages: impl IntoIterator<Item = (u64, f64)>,
    ) -> Pace {
        let stages: Vec<Stage> = stages
            .into_iter()
            .map(|(ms, rate)| Stage {
                duration: Duration::from_millis(ms),
                rate,
            })
            .collect();
        if stages.is_empty() {
            Pace::Constant(gap(delay, rate))
        } else {
            Pace::Staged(Schedule::new(start_rate, &stages))
        }
    }

    /// Requests per driver of a test bounded by `duration` at this pace: those due before its
    /// end; `None` when unpaced (as many as the target answers in the time).
    pub fn count_within(&self, duration: Duration) -> Option<u64> {
        match self {
            Pace::Constant(g) => count_within(*g, duration),
            Pace::Staged(s) => Some(s.total()),
        }
    }
}

/// The gap of a constant pace: the larger of a Tsunami's delay and a throughput cap's `1 / rate`,
/// so the cap holds in either mode; zero is unpaced.
pub fn gap(delay: Duration, rate_per_sec: Option<f64>) -> Duration {
    let cap_gap = match rate_per_sec {
        // Rates are range-checked where a test is defined, but nothing panics on one that was
        // not: a gap beyond `Duration`'s range is the longest gap there is.
        Some(r) if r.is_finite() && r > 0.0 => {
            Duration::try_from_secs_f64(1.0 / r).unwrap_or(Duration::MAX)
        }
        _ => Duration::ZERO,
    };
    delay.max(cap_gap)
}

/// Requests a constant pace of `gap` has due within `duration` (those at `i × gap < duration`);
/// `None` when unpaced (as many as the target answers).
pub fn count_within(gap: Duration, duration: Duration) -> Option<u64> {
    let g = gap.as_nanos();
    if g == 0 {
        return None;
    }
    Some(u64::try_from(duration.as_nanos().div_ceil(g)).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
