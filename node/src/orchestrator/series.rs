//! A test's time series for charts: sampled from the drivers' cumulative reports, one point per
//! interval with the interval's throughput (total and per driver) and the interval's latency
//! percentiles. Percentiles come from subtracting the previous merged histogram from the
//! current one, so they are exact for the responses completed in that interval.
//!
//! Rates are measured on the drivers' own report intervals (responses and elapsed time both
//! come from the reports), never on the orchestrator's sampling instants: sampling and
//! reporting run on different clocks, and dividing one by the other would alias (a steady
//! rate shown too low, then a spike). Drivers report at the same instants (aligned to the
//! common start), so a point waits until every driver still running has reported since the
//! last one, or at most two intervals, so that a lost driver cannot stall the chart.
//!
//! Bounded: past [`MAX_POINTS`] every other point is dropped and the interval doubles, so a
//! long test keeps its whole shape at a coarser grain.

use crate::stats::{new_histogram, Latency};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_POINTS: usize = 4000;

/// One driver's share of a point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DriverPoint {
    /// Requests sent so far (cumulative).
    pub sent: u64,
    /// Responses per second over the interval.
    pub rps: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Milliseconds since the test's start.
    pub t_ms: u64,
    /// Requests sent so far, all drivers (cumulative).
    pub sent: u64,
    /// Errors so far, all drivers (cumulative).
    pub errors: u64,
    /// Responses per second over the interval, all drivers.
    pub rps: f64,
    /// Latency percentiles of the responses completed in the interval, in ms; null when no
    /// response completed in it (a gap in a chart, not a zero).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub drivers: BTreeMap<String, DriverPoint>,
}

/// What one driver has reported so far, as the sampler needs it.
pub struct DriverTotals<'a> {
    pub id: &'a str,
    /// Sequence number of the report these totals come from.
    pub seq: u64,
    /// The driver's own time since the start, from that report.
    pub elapsed_us: u64,
    pub sent: u64,
    pub responses: u64,
    pub errors: u64,
    /// The report is the driver's last for the test.
    pub is_final: bool,
    pub latency: &'a Latency,
}

/// What was last seen of one driver.
#[derive(Debug, Default, Clone, Copy)]
struct DriverState {
    seq: u64,
    is_final: bool,
    responses: u64,
    elapsed_us: u64,
    rps: f64,
    /// The point that last took news from it.
    heard_t_ms: u64,
}

#[derive(Debug)]
pub struct Series {
    points: Vec<Point>,
    /// Take a point only when at least this long has passed since the last.
    every_ms: u64,
    last_t_ms: Option<u64>,
    last_merged: Histogram<u64>,
    drivers: BTreeMap<String, DriverState>,
    /// Points dropped from the front by decimation, so clients can tell a restart of the list.
    pub generation: u64,
}

impl Series {
    pub fn new(every_ms: u64) -> Self {
        Self {
            points: Vec::new(),
            every_ms: every_ms.max(1),
            last_t_ms: None,
            last_merged: new_histogram(),
            drivers: BTreeMap::new(),
            generation: 0,
        }
    }

    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Samples the drivers' totals at `t_ms`; returns true when a point was added. `force`
    /// skips the minimum spacing (for the last point of a test), never the need for news.
    pub fn sample<'a>(
        &mut self,
        t_ms: u64,
        drivers: impl IntoIterator<Item = DriverTotals<'a>>,
        force: bool,
    ) -> bool {
        if !force
            && self
                .last_t_ms
                .is_some_and(|l| t_ms.saturating_sub(l) < self.every_ms)
        {
            return false;
        }
        let drivers: Vec<DriverTotals<'a>> = drivers.into_iter().collect();
        let known = &self.drivers;
        let advanced = |d: &DriverTotals| known.get(d.id).map_or(d.seq > 0, |s| d.seq != s.seq);
        // A driver whose final report is already in a point has nothing more to say (nor has
        // one called final without a new report: a lost driver whose share was handed over).
        let settled = |d: &DriverTotals| {
            known
                .get(d.id)
                .is_some_and(|s| (s.is_final || d.is_final) && s.seq == d.seq)
        };
        if !drivers.iter().any(advanced) {
            return false;
        }
        let everyone = drivers.iter().all(|d| advanced(d) || settled(d));
        let waited = t_ms.saturating_sub(self.last_t_ms.unwrap_or(0)) >= 2 * self.every_ms;
        if !everyone && !waited && !force {
            return false;
        }
        let mut merged = new_histogram();
        let mut point = Point {
            t_ms,
            ..Default::default()
        };
        for d in &drivers {
            let _ = merged.add(&d.latency.histogram);
            let state = self.drivers.entry(d.id.to_string()).or_default();
            if d.seq != state.seq {
                let dt_us = d.elapsed_us.saturating_sub(state.elapsed_us);
                if dt_us > 0 {
                    state.rps =
                        d.responses.saturating_sub(state.responses) as f64 * 1e6 / dt_us as f64;
                }
                *state = DriverState {
                    seq: d.seq,
                    is_final: d.is_final,
                    responses: d.responses,
                    elapsed_us: d.elapsed_us,
                    rps: state.rps,
                    heard_t_ms: t_ms,
                };
            }
            // A driver silent for two intervals (lost, or done) is sending nothing that the
            // chart knows of: its last rate is not carried on (a lost driver would otherwise
            // show its pace until the test ends). Its next report, if one comes, is measured
            // over its own interval since the last.
            let silent = t_ms.saturating_sub(state.heard_t_ms) >= 2 * self.every_ms;
            let rps = if silent { 0.0 } else { state.rps };
            point.sent += d.sent;
            point.errors += d.errors;
            point.rps += rps;
            point
                .drivers
                .insert(d.id.to_string(), DriverPoint { sent: d.sent, rps });
        }
        let mut window = merged.clone();
        // Cumulative reports only grow, so this succeeds; if a report was ever replaced by a
        // smaller one, fall back to the cumulative percentiles rather than show nonsense.
        if window.subtract(&self.last_merged).is_err() {
            window = merged.clone();
        }
        if !window.is_empty() {
            let q = |p: f64| Some(window.value_at_quantile(p) as f64 / 1000.0);
            (point.p50_ms, point.p95_ms, point.p99_ms) = (q(0.5), q(0.95), q(0.99));
        }
        self.last_merged = merged;
        self.last_t_ms = Some(t_ms);
        self.points.push(point);
        if self.points.len() > MAX_POINTS {
            self.decimate();
        }
        true
    }

    fn decimate(&mut self) {
        let mut i = 0;
        self.points.retain(|_| {
            i += 1;
            i % 2 == 0
        });
        self.every_ms *= 2;
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lat(values_us: &[u64]) -> Latency {
        let mut l = Latency::default();
        for &v in values_us {
            l.record(v);
        }
        l
    }

    fn totals<'a>(
        id: &'a str,
        seq: u64,
        elapsed_ms: u64,
        responses: u64,
        latency: &'a Latency,
    ) -> DriverTotals<'a> {
        DriverTotals {
            id,
            seq,
            elapsed_us: elapsed_ms * 1000,
            sent: responses,
            responses,
            is_final: false,
            errors: 0,
            latency,
        }
    }

    #[test]
    fn points_carry_interval_rates_and_interval_percentiles() {
        let mut s = Series::new(500);
        let a1 = lat(&[1_000; 100]);
        assert!(s.sample(1_000, [totals("a", 1, 1_000, 100, &a1)], false));
        assert!(
            !s.sample(1_200, [totals("a", 1, 1_000, 100, &a1)], false),
            "too soon"
        );
        // In the next second, 50 slow responses: the interval's p50 is the slow value even though
        // the cumulative median is still the fast one.
        let mut a2 = a1.clone();
        for _ in 0..50 {
            a2.record(20_000);
        }
        assert!(s.sample(2_000, [totals("a", 2, 2_000, 150, &a2)], false));
        let p = &s.points()[1];
        assert_eq!((p.t_ms, p.sent, p.rps), (2_000, 150, 50.0));
        let p50 = p.p50_ms.unwrap_or(0.0);
        assert!(
            (p50 - 20.0).abs() <= 0.02,
            "p50 {p50} is 20 ms within the histogram's 0.1%"
        );
        assert_eq!(s.points()[0].p50_ms, Some(1.0));
        assert_eq!(
            p.drivers["a"],
            DriverPoint {
                sent: 150,
                rps: 50.0
            }
        );
    }

    #[test]
    fn rates_come_from_the_drivers_report_intervals_not_the_sampling_clock() {
        // Reports every 500 ms at a steady 1,000 req/s, sampled at odd instants: the rate shown
        // is always 1,000, and a forced sample a moment after the last adds nothing new.
        let mut s = Series::new(1);
        let l = lat(&[1_000]);
        for (i, t) in [(1u64, 530u64), (2, 1_190), (3, 1_620), (4, 2_100)] {
            assert!(s.sample(t, [totals("a", i, i * 500, i * 500, &l)], false));
        }
        assert!(
            s.points().iter().all(|p| p.rps == 1_000.0),
            "{:?}",
            s.points().iter().map(|p| p.rps).collect::<Vec<_>>()
        );
        assert!(
            !s.sample(2_103, [totals("a", 4, 2_000, 2_000, &l)], true),
            "no news, no point (and no spike)"
        );
    }

    #[test]
    fn a_window_without_responses_has_no_percentiles() {
        let mut s = Series::new(1);
        let l = lat(&[1_000]);
        s.sample(500, [totals("a", 1, 500, 1, &l)], false);
        s.sample(1_000, [totals("a", 2, 1_000, 1, &l)], false);
        let p = &s.points()[1];
        assert_eq!((p.rps, p.p50_ms, p.p99_ms), (0.0, None, None));
    }

    #[test]
    fn a_point_waits_for_every_running_driver_but_not_forever() {
        let mut s = Series::new(500);
        let l = lat(&[1_000]);
        assert!(
            !s.sample(
                520,
                [totals("a", 1, 500, 500, &l), totals("b", 0, 0, 0, &l)],
                false
            ),
            "b has not reported yet"
        );
        assert!(s.sample(
            540,
            [totals("a", 1, 500, 500, &l), totals("b", 1, 500, 500, &l)],
            false
        ));
        assert_eq!(s.points()[0].rps, 2_000.0);
        // b is lost: after two intervals a point comes without it.
        assert!(!s.sample(
            1_040,
            [
                totals("a", 2, 1_000, 1_000, &l),
                totals("b", 1, 500, 500, &l)
            ],
            false
        ));
        assert!(s.sample(
            1_540,
            [
                totals("a", 3, 1_500, 1_500, &l),
                totals("b", 1, 500, 500, &l)
            ],
            false
        ));
        // Silent for two intervals, b sends nothing the chart knows of: its last 1,000/s is not
        // carried on.
        let p = &s.points()[1];
        assert_eq!(
            (p.rps, p.drivers["b"].rps, p.drivers["a"].rps),
            (1_000.0, 0.0, 1_000.0)
        );
        // A driver that has finished does not hold the others back.
        let done = |seq| DriverTotals {
            is_final: true,
            ..totals("b", seq, 1_600, 1_600, &l)
        };
        assert!(s.sample(2_040, [totals("a", 4, 2_000, 2_000, &l), done(2)], false));
        assert!(s.sample(2_540, [totals("a", 5, 2_500, 2_500, &l), done(2)], false));
    }

    #[test]
    fn per_driver_and_total_rates_add_up() {
        let mut s = Series::new(1);
        let (a, b) = (lat(&[500; 30]), lat(&[700; 10]));
        s.sample(
            500,
            [totals("a", 1, 500, 30, &a), totals("b", 1, 500, 10, &b)],
            false,
        );
        let p = &s.points()[0];
        assert_eq!(p.rps, 80.0);
        assert_eq!(p.drivers["a"].rps + p.drivers["b"].rps, p.rps);
    }

    #[test]
    fn memory_is_bounded_by_decimation() {
        let mut s = Series::new(1);
        let l = lat(&[1]);
        for t in 1..=(3 * MAX_POINTS as u64) {
            s.sample(t * 10, [totals("a", t, t * 10, t, &l)], false);
        }
        assert!(s.points().len() <= MAX_POINTS);
        assert!(s.generation >= 1);
        assert!(s.points().windows(2).all(|w| w[0].t_ms < w[1].t_ms));
    }
}
