//! A test's time series for charts: sampled from the drivers' cumulative reports, one point per
//! interval with the interval's throughput (total and per driver) and the interval's latency
//! percentiles. Percentiles come from subtracting the previous merged histogram from the
//! current one, so they are exact for the responses completed in that interval.
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
    /// Latency percentiles of the responses completed in the interval, in ms (0 if none).
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub drivers: BTreeMap<String, DriverPoint>,
}

/// What one driver has reported so far, as the sampler needs it.
pub struct DriverTotals<'a> {
    pub id: &'a str,
    pub sent: u64,
    pub responses: u64,
    pub errors: u64,
    pub latency: &'a Latency,
}

#[derive(Debug)]
pub struct Series {
    points: Vec<Point>,
    /// Take a point only when at least this long has passed since the last.
    every_ms: u64,
    last_t_ms: Option<u64>,
    last_merged: Histogram<u64>,
    last_responses: BTreeMap<String, u64>,
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
            last_responses: BTreeMap::new(),
            generation: 0,
        }
    }

    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Samples the drivers' totals at `t_ms`; returns true when a point was added.
    pub fn sample<'a>(
        &mut self,
        t_ms: u64,
        drivers: impl IntoIterator<Item = DriverTotals<'a>>,
        force: bool,
    ) -> bool {
        let since = self.last_t_ms.map(|l| t_ms.saturating_sub(l));
        if !force && since.is_some_and(|s| s < self.every_ms) {
            return false;
        }
        let dt_s = since.unwrap_or(t_ms).max(1) as f64 / 1000.0;
        let mut merged = new_histogram();
        let mut point = Point {
            t_ms,
            ..Default::default()
        };
        let mut total_delta = 0;
        for d in drivers {
            let _ = merged.add(&d.latency.histogram);
            let before = self
                .last_responses
                .insert(d.id.to_string(), d.responses)
                .unwrap_or(0);
            let delta = d.responses.saturating_sub(before);
            total_delta += delta;
            point.sent += d.sent;
            point.errors += d.errors;
            point.drivers.insert(
                d.id.to_string(),
                DriverPoint {
                    sent: d.sent,
                    rps: delta as f64 / dt_s,
                },
            );
        }
        point.rps = total_delta as f64 / dt_s;
        let mut interval = merged.clone();
        // Cumulative reports only grow, so this succeeds; if a report was ever replaced by a
        // smaller one, fall back to the cumulative percentiles rather than show nonsense.
        let window = if interval.subtract(&self.last_merged).is_ok() {
            &interval
        } else {
            &merged
        };
        if !window.is_empty() {
            point.p50_ms = window.value_at_quantile(0.5) as f64 / 1000.0;
            point.p95_ms = window.value_at_quantile(0.95) as f64 / 1000.0;
            point.p99_ms = window.value_at_quantile(0.99) as f64 / 1000.0;
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

    #[test]
    fn points_carry_interval_rates_and_interval_percentiles() {
        let mut s = Series::new(500);
        let a1 = lat(&[1_000; 100]);
        assert!(s.sample(
            1_000,
            [DriverTotals {
                id: "a",
                sent: 100,
                responses: 100,
                errors: 0,
                latency: &a1
            }],
            false
        ));
        assert!(
            !s.sample(
                1_200,
                [DriverTotals {
                    id: "a",
                    sent: 100,
                    responses: 100,
                    errors: 0,
                    latency: &a1
                }],
                false
            ),
            "too soon"
        );
        // In the next second, 50 slow responses: the interval's p50 is the slow value even though
        // the cumulative median is still the fast one.
        let mut a2 = a1.clone();
        for _ in 0..50 {
            a2.record(20_000);
        }
        assert!(s.sample(
            2_000,
            [DriverTotals {
                id: "a",
                sent: 150,
                responses: 150,
                errors: 1,
                latency: &a2
            }],
            false
        ));
        let p = &s.points()[1];
        assert_eq!((p.t_ms, p.sent, p.errors, p.rps), (2_000, 150, 1, 50.0));
        assert!(
            (p.p50_ms - 20.0).abs() <= 0.02,
            "p50 {} is 20 ms within the histogram's 0.1%",
            p.p50_ms
        );
        assert_eq!(s.points()[0].p50_ms, 1.0);
        assert_eq!(
            p.drivers["a"],
            DriverPoint {
                sent: 150,
                rps: 50.0
            }
        );
    }

    #[test]
    fn per_driver_and_total_rates_add_up() {
        let mut s = Series::new(1);
        let (a, b) = (lat(&[500; 30]), lat(&[700; 10]));
        s.sample(
            500,
            [
                DriverTotals {
                    id: "a",
                    sent: 30,
                    responses: 30,
                    errors: 0,
                    latency: &a,
                },
                DriverTotals {
                    id: "b",
                    sent: 10,
                    responses: 10,
                    errors: 0,
                    latency: &b,
                },
            ],
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
            s.sample(
                t * 10,
                [DriverTotals {
                    id: "a",
                    sent: t,
                    responses: t,
                    errors: 0,
                    latency: &l,
                }],
                false,
            );
        }
        assert!(s.points().len() <= MAX_POINTS);
        assert!(s.generation >= 1);
        assert!(s.points().windows(2).all(|w| w[0].t_ms < w[1].t_ms));
    }
}
