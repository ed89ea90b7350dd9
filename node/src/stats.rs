//! Latency statistics: HDR histograms in microseconds, their wire codec, and the summary
//! (min, max, mean, median, mode, p90/p95/p99) computed from them.
//!
//! Exactness rules: min, max and mean come from exact counters kept beside the histogram
//! (`Latency`), so they merge exactly; percentiles come from the merged histogram (3 significant
//! digits, so within 0.1% of the true value); nothing is ever averaged across drivers.
//!
//! Mode is binned: latencies are grouped into bins of [`MODE_BIN_US`] (0.1 ms) and the mode is the
//! midpoint of the fullest bin (the lowest such bin on a tie). Above ~130 ms the histogram's own
//! resolution is coarser than 0.1 ms, so the mode there is as precise as the histogram.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Width of a mode bin, in microseconds.
pub const MODE_BIN_US: u64 = 100;
/// Significant digits kept by every histogram.
pub const SIGFIG: u8 = 3;
/// Largest latency a histogram records exactly; longer ones are clamped to it (1 hour).
pub const MAX_US: u64 = 3_600_000_000;

/// A new, empty, auto-resizing latency histogram (memory grows with the largest value seen,
/// not with the number of samples).
pub fn new_histogram() -> Histogram<u64> {
    // 3 significant digits is a valid precision, so this cannot fail; fall back defensively.
    let mut h =
        Histogram::new(SIGFIG).unwrap_or_else(|_| Histogram::new(2).expect("sigfig 2 is valid"));
    h.auto(true);
    h
}

/// Exact latency accounting beside the histogram: count, sum, min, max (microseconds).
#[derive(Clone, Debug)]
pub struct Latency {
    pub histogram: Histogram<u64>,
    pub sum_us: u64,
    pub min_us: u64,
    pub max_us: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            histogram: new_histogram(),
            sum_us: 0,
            min_us: u64::MAX,
            max_us: 0,
        }
    }
}

impl Latency {
    /// Records one latency; allocation-free unless a new maximum grows the histogram.
    #[inline]
    pub fn record(&mut self, us: u64) {
        self.record_from_zero(us.max(1));
    }

    /// Records a duration that may be zero (a schedule lag; a response time never is).
    #[inline]
    pub fn record_from_zero(&mut self, us: u64) {
        let us = us.min(MAX_US);
        // `record` grows an auto-resizing histogram; `saturating_record` would clamp instead.
        if self.histogram.record(us).is_err() {
            self.histogram.saturating_record(us);
        }
        self.sum_us += us;
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Adds another recorder's samples to this one.
    pub fn merge(&mut self, other: &Latency) {
        // Both sides auto-resize, so adding cannot run out of range.
        let _ = self.histogram.add(&other.histogram);
        self.sum_us += other.sum_us;
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The summary in milliseconds; all zero when nothing was recorded.
    pub fn summary(&self) -> Summary {
        let n = self.count();
        if n == 0 {
            return Summary::default();
        }
        let h = &self.histogram;
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            count: n,
            min_ms: ms(self.min_us),
            max_ms: ms(self.max_us),
            mean_ms: self.sum_us as f64 / n as f64 / 1000.0,
            median_ms: ms(h.value_at_quantile(0.5)),
            mode_ms: mode_us(h) / 1000.0,
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
        }
    }

    /// Rebuilds a recorder from a report's histogram and exact fields.
    pub fn from_parts(histogram: Histogram<u64>, sum_us: u64, min_ms: f64, max_ms: f64) -> Self {
        let empty = histogram.is_empty();
        let mut h = histogram;
        h.auto(true);
        let exact_or = |ms: f64, fallback: u64| {
            if ms > 0.0 {
                (ms * 1000.0).round() as u64
            } else {
                fallback
            }
        };
        Self {
            min_us: if empty {
                u64::MAX
            } else {
                exact_or(min_ms, h.min())
            },
            max_us: if empty { 0 } else { exact_or(max_ms, h.max()) },
            sum_us,
            histogram: h,
        }
    }
}

/// The numbers shown for one driver or for all of them, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub mode_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// Where a shown latency figure comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencySource {
    /// Nothing recorded yet.
    None,
    /// Exact: from HDR histograms (merged across drivers for an aggregate).
    #[default]
    Histogram,
    /// As a driver reported it: the seed's summary fields, without a histogram.
    Summary,
    /// An aggregate over drivers of which some sent only summaries.
    Mixed,
}

/// The latency figures a view shows, in milliseconds: exact where they can be, `null` where
/// they cannot, with the reason in `not_mergeable` (a median cannot be merged from medians).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Samples behind the figures, where known (0 for a summary without a count).
    pub count: u64,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub median_ms: Option<f64>,
    pub mode_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    #[serde(default)]
    pub source: LatencySource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_mergeable: Option<NotMergeable>,
}

/// Figures left out of an aggregate, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotMergeable {
    pub fields: Vec<String>,
    pub reason: String,
}

impl LatencyStats {
    /// Exact figures from a histogram and its counters.
    pub fn exact(l: &Latency) -> Self {
        let s = l.summary();
        if s.count == 0 {
            return Self {
                source: LatencySource::None,
                ..Default::default()
            };
        }
        Self {
            count: s.count,
            min_ms: Some(s.min_ms),
            max_ms: Some(s.max_ms),
            mean_ms: Some(s.mean_ms),
            median_ms: Some(s.median_ms),
            mode_ms: Some(s.mode_ms),
            p90_ms: Some(s.p90_ms),
            p95_ms: Some(s.p95_ms),
            p99_ms: Some(s.p99_ms),
            source: LatencySource::Histogram,
            not_mergeable: None,
        }
    }

    /// Whether there is any figure to show.
    /// Nothing measured: no source, or no sample and no figure. The second covers figures read
    /// back from a stored view that had none (serde's default is an empty `Histogram`), so a
    /// view shows the same fields before and after an orchestrator restart.
    pub fn is_empty(&self) -> bool {
        self.source == LatencySource::None
            || (self.count == 0 && self.ordered_ms().iter().all(Option::is_none))
    }

    /// The figures in the order tables show them: min, mean, median, mode, p90, p95, p99, max.
    pub fn ordered_ms(&self) -> [Option<f64>; 8] {
        [
            self.min_ms,
            self.mean_ms,
            self.median_ms,
            self.mode_ms,
            self.p90_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
        ]
    }
}

/// How evenly a paced run's requests left: from the recorded send instant of each (by index),
/// the jitter of each gap between consecutive requests (`|gap - scheduled gap|`) and how far the
/// last one left from its due instant. In µs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SendGaps {
    pub gaps: usize,
    pub jitter_p50_us: f64,
    pub jitter_p99_us: f64,
    pub jitter_max_us: f64,
    /// Send instant minus due instant of the last recorded request.
    pub last_drift_us: f64,
}

/// [`SendGaps`] of consecutive recorded sends (`offsets[i]`: request `i`'s send, from the start),
/// scheduled `gap` apart; `None` without two consecutive sends to compare.
pub fn send_gaps(
    offsets: &[Option<std::time::Duration>],
    gap: std::time::Duration,
) -> Option<SendGaps> {
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    let mut jitter: Vec<f64> = offsets
        .windows(2)
        .filter_map(|w| Some((us(w[1]?) - us(w[0]?) - us(gap)).abs()))
        .collect();
    if jitter.is_empty() {
        return None;
    }
    jitter.sort_by(f64::total_cmp);
    let q = |p: f64| jitter[((jitter.len() as f64 * p) as usize).min(jitter.len() - 1)];
    let (last, at) = offsets
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, o)| Some((i, (*o)?)))?;
    Some(SendGaps {
        gaps: jitter.len(),
        jitter_p50_us: q(0.5),
        jitter_p99_us: q(0.99),
        jitter_max_us: jitter[jitter.len() - 1],
        last_drift_us: us(at) - us(gap) * last as f64,
    })
}

/// A paced test's three timings side by side (p50 / p99, ms): latency from the due instant,
/// service time from the actual write, and schedule lag; `None` when there is no lag (unpaced,
/// so no schedule). The CLI's result table and `floodgate load` print it.
pub fn timing_line(
    latency: &LatencyStats,
    service: &LatencyStats,
    lag: &LatencyStats,
) -> Option<String> {
    if lag.count == 0 {
        return None;
    }
    let ms = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
    let pair = |l: &LatencyStats| format!("{} / {}", ms(l.median_ms), ms(l.p99_ms));
    Some(format!(
        "p50 / p99 ms: latency from due {} | service time {} | schedule lag {}",
        pair(latency),
        pair(service),
        pair(lag)
    ))
}

/// Schedule lag under this (p99, ms) is never worth a warning, whatever its share.
const LAG_NEGLIGIBLE_MS: f64 = 0.1;

/// When the generator's own lateness (schedule lag) is a large share of the latency shown, a
/// sentence saying so: that latency is then the generator's, not the target's. `None` when the
/// lag is negligible, under half the latency at the median and at p99, or not measured (an
/// unpaced test has no schedule).
pub fn lag_note(latency: &LatencyStats, lag: &LatencyStats) -> Option<String> {
    let (Some(l50), Some(l99), Some(g50), Some(g99)) =
        (latency.median_ms, latency.p99_ms, lag.median_ms, lag.p99_ms)
    else {
        return None;
    };
    if lag.count == 0 || g99 < LAG_NEGLIGIBLE_MS || (g50 < 0.5 * l50 && g99 < 0.5 * l99) {
        return None;
    }
    let share = |g: f64, l: f64| if l > 0.0 { 100.0 * g / l } else { 100.0 };
    Some(format!(
        "schedule lag is {:.0}% of the median latency and {:.0}% of p99 ({g50:.3} of {l50:.3} ms, \
         {g99:.3} of {l99:.3} ms): requests left late, so this latency is the load generator's, \
         not the target's (compare the service time)",
        share(g50, l50),
        share(g99, l99)
    ))
}

/// The midpoint (µs) of the fullest [`MODE_BIN_US`]-wide bin; ties go to the lowest bin.
pub fn mode_us(h: &Histogram<u64>) -> f64 {
    // Iterating recorded values visits only non-empty buckets, so the cost is bounded by the
    // histogram's resolution, never by the number of samples.
    let mut bins: BTreeMap<u64, u64> = BTreeMap::new();
    for v in h.iter_recorded() {
        let value = h.median_equivalent(v.value_iterated_to());
        *bins.entry(value / MODE_BIN_US).or_default() += v.count_at_value();
    }
    let mut best: Option<(u64, u64)> = None;
    for (bin, count) in bins {
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((bin, count));
        }
    }
    best.map(|(bin, _)| (bin * MODE_BIN_US) as f64 + MODE_BIN_US as f64 / 2.0)
        .unwrap_or(0.0)
}

/// Encodes a histogram as base64 of its V2 deflate serialization.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail for an in-range histogram; an empty string decodes as empty.
    if V2DeflateSerializer::new().serialize(h, &mut buf).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Decodes what [`encode`] produced; an empty string is an empty histogram.
pub fn decode(s: &str) -> Result<Histogram<u64>, String> {
    if s.is_empty() {
        return Ok(new_histogram());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    h.auto(true);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency_of(values_us: &[u64]) -> Latency {
        let mut l = Latency::default();
        for &v in values_us {
            l.record(v);
        }
        l
    }

    #[test]
    fn summary_matches_raw_data() {
        let values: Vec<u64> = (1..=1000).map(|i| i * 100).collect(); // 0.1 ms .. 100 ms
        let s = latency_of(&values).summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.min_ms, 0.1);
        assert_eq!(s.max_ms, 100.0);
        assert!((s.mean_ms - 50.05).abs() < 1e-9, "mean {}", s.mean_ms);
        assert!((s.median_ms - 50.0).abs() <= 0.05, "median {}", s.median_ms);
        assert!((s.p99_ms - 99.0).abs() <= 0.1, "p99 {}", s.p99_ms);
    }

    #[test]
    fn mode_is_the_fullest_bin_midpoint() {
        let mut v = vec![1_000; 3];
        v.extend([5_020, 5_040, 5_060, 5_080]); // four in the 5.0–5.1 ms bin
        v.extend([9_000; 2]);
        assert_eq!(latency_of(&v).summary().mode_ms, 5.05);
        // A tie goes to the lowest bin.
        assert_eq!(
            latency_of(&[2_000, 2_000, 7_000, 7_000]).summary().mode_ms,
            2.05
        );
    }

    #[test]
    fn merged_percentiles_are_not_averaged_medians() {
        // Driver A: 99 fast requests; driver B: 1 fast and 100 slow. The average of the two
        // medians would be ~50 ms; the true median of all 200 is the fast value.
        let a = latency_of(&[1_000; 99]);
        let mut b = latency_of(&[100_000; 100]);
        b.record(1_000);
        let mut all = a.clone();
        all.merge(&b);
        let s = all.summary();
        assert_eq!(s.count, 200);
        assert_eq!(s.median_ms, 1.0);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 100.0);
        assert!((s.mean_ms - (100.0 * 1.0 + 100.0 * 100.0) / 200.0).abs() < 1e-9);
    }

    #[test]
    fn codec_round_trips_and_rejects_garbage() {
        let l = latency_of(&[10, 250, 3_000, 3_600_000_000, 7]);
        let back = decode(&encode(&l.histogram)).expect("decodes");
        assert_eq!(back, l.histogram);
        assert!(decode("").expect("empty").is_empty());
        assert!(decode("not base64!").is_err());
        assert!(decode("aGVsbG8=").is_err());
    }

    #[test]
    fn from_parts_keeps_exact_min_max() {
        let l = latency_of(&[1_234, 5_678]);
        let s = l.summary();
        let r = Latency::from_parts(l.histogram.clone(), l.sum_us, s.min_ms, s.max_ms);
        assert_eq!(r.summary(), s);
        assert_eq!(
            Latency::from_parts(new_histogram(), 0, 0.0, 0.0).summary(),
            Summary::default()
        );
    }

    #[test]
    fn send_gaps_measure_jitter_between_consecutive_sends_and_the_last_ones_drift() {
        let us = std::time::Duration::from_micros;
        let gap = us(100);
        // Sends at 0, 100, 230 (30 late), 300, not recorded, 510 (10 late).
        let sent = [
            Some(us(0)),
            Some(us(100)),
            Some(us(230)),
            Some(us(300)),
            None,
            Some(us(510)),
        ];
        let g = send_gaps(&sent, gap).expect("gaps");
        // Gaps 100, 130, 70: jitter 0, 30, 30; the unrecorded one breaks two gaps.
        assert_eq!(g.gaps, 3);
        assert_eq!((g.jitter_p50_us, g.jitter_max_us), (30.0, 30.0));
        assert!((g.last_drift_us - 10.0).abs() < 1e-6, "{g:?}");
        assert_eq!(send_gaps(&[Some(us(0)), None], gap), None);
    }

    #[test]
    fn lag_is_called_out_only_when_it_is_a_large_share_of_latency() {
        let stats = |p50_ms: f64, p99_ms: f64| LatencyStats {
            count: 100,
            median_ms: Some(p50_ms),
            p99_ms: Some(p99_ms),
            ..Default::default()
        };
        // (latency p50/p99, lag p50/p99, noted?)
        let cases = [
            ((1.49, 2.11), (1.40, 1.90), true),
            ((0.20, 0.40), (0.01, 0.03), false),
            ((0.20, 4.00), (0.05, 2.50), true),
            ((0.05, 0.09), (0.04, 0.08), false),
        ];
        for ((l50, l99), (g50, g99), noted) in cases {
            let note = lag_note(&stats(l50, l99), &stats(g50, g99));
            assert_eq!(
                note.is_some(),
                noted,
                "{l50}/{l99} vs {g50}/{g99}: {note:?}"
            );
        }
        let unpaced = LatencyStats {
            count: 0,
            ..stats(1.0, 1.0)
        };
        assert_eq!(lag_note(&stats(1.0, 2.0), &unpaced), None);
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(Latency::default().summary(), Summary::default());
    }
}
