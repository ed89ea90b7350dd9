//! Prometheus metrics, served at `GET /metrics` (text exposition format 0.0.4) by the
//! orchestrator (its REST port) and by every driver (its health port). `docs/prometheus.md`
//! lists every metric.
//!
//! Nothing is counted twice: each node's metrics are custom [`Collector`]s that read the live
//! state when scraped (the orchestrator's registry and tests, the bus counters, a driver's
//! running engine through [`crate::engine::Running::snapshot`]), so the engine's hot loop and
//! the controller do no extra work between scrapes.
//!
//! Labels are bounded: test IDs (the running test plus the [`RECENT_TESTS`] newest others),
//! node IDs, status classes, error kinds, test states, Kafka directions and latency quantiles.
//! Never a URL, a header or an error text.

pub mod driver;
pub mod orchestrator;

use crate::bus::BusStats;
use crate::stats::{Latency, Summary};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// The `Content-Type` of the exposition (`text/plain; version=0.0.4`).
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Finished (or created, not yet triggered) tests exported beside the running one, newest
/// first. Older tests' series end, which keeps the `test_id` label bounded.
pub const RECENT_TESTS: usize = 5;

/// Upper bounds, in seconds, of the latency histograms' buckets (`+Inf` is added).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The values of the `status_class` label, in the order of the counts' arrays.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// The values of the `kind` label, in the order of the counts' arrays.
pub const ERROR_KINDS: [&str; 5] = ["connect", "timeout", "http", "io", "check"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

/// One metric family: its name, help, type and label names (in the order values are given).
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

// Families both roles export, about the process itself.
pub const BUILD_INFO: Spec = Spec {
    name: "floodgate_build_info",
    help: "Always 1; the labels name the node, its role and its version.",
    kind: Kind::Gauge,
    labels: &["node_id", "role", "version"],
};
pub const KAFKA_MESSAGES: Spec = Spec {
    name: "floodgate_kafka_messages_total",
    help: "Kafka messages this node received (in) or handed to its producer (out).",
    kind: Kind::Counter,
    labels: &["node_id", "direction"],
};
pub const KAFKA_MALFORMED: Spec = Spec {
    name: "floodgate_kafka_malformed_total",
    help: "Kafka messages this node received but could not use (not JSON, missing fields, unknown test).",
    kind: Kind::Counter,
    labels: &["node_id"],
};
pub const KAFKA_SEND_ERRORS: Spec = Spec {
    name: "floodgate_kafka_send_errors_total",
    help: "Kafka messages this node could not queue or that were not acknowledged.",
    kind: Kind::Counter,
    labels: &["node_id"],
};

/// The families common to both roles.
pub const COMMON: [&Spec; 4] = [
    &BUILD_INFO,
    &KAFKA_MESSAGES,
    &KAFKA_MALFORMED,
    &KAFKA_SEND_ERRORS,
];

/// Adds the common families for a node.
pub fn collect_common(out: &mut Families, node_id: &str, role: &str, bus: &BusStats) {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    out.gauge(
        &BUILD_INFO,
        &[node_id, role, env!("CARGO_PKG_VERSION")],
        1.0,
    );
    out.counter(&KAFKA_MESSAGES, &[node_id, "in"], n(&bus.received));
    out.counter(&KAFKA_MESSAGES, &[node_id, "out"], n(&bus.sent));
    out.counter(&KAFKA_MALFORMED, &[node_id], n(&bus.malformed));
    out.counter(&KAFKA_SEND_ERRORS, &[node_id], n(&bus.send_errors));
}

/// A latency summary's quantiles in seconds: 0 is the exact minimum, 1 the exact maximum, the
/// others come from the HDR histogram. None when nothing was recorded.
pub fn quantiles(s: &Summary) -> Vec<(f64, f64)> {
    if s.count == 0 {
        return Vec::new();
    }
    [
        (0.0, s.min_ms),
        (0.5, s.median_ms),
        (0.9, s.p90_ms),
        (0.95, s.p95_ms),
        (0.99, s.p99_ms),
        (1.0, s.max_ms),
    ]
    .into_iter()
    // Every value is a whole number of microseconds: round-trip through µs so that the seconds
    // print as the shortest exact decimal (9.999 ms is 0.009999 s, not 0.009999000000000001).
    .map(|(q, ms)| (q, (ms * 1000.0).round() / 1e6))
    .collect()
}

/// The descriptors of `specs`, for [`Collector::desc`].
pub fn descs(specs: &[&Spec]) -> Vec<Desc> {
    specs
        .iter()
        .filter_map(|s| {
            let labels = s.labels.iter().map(|l| l.to_string()).collect();
            match Desc::new(
                s.name.to_string(),
                s.help.to_string(),
                labels,
                HashMap::new(),
            ) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!(metric = s.name, "invalid metric descriptor: {e}");
                    None
                }
            }
        })
        .collect()
}

/// A latency histogram in Prometheus form: cumulative counts at [`LATENCY_BUCKETS`], the exact
/// count and the exact sum.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    /// Cumulative count at each bound of [`LATENCY_BUCKETS`].
    pub cumulative: [u64; LATENCY_BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl Buckets {
    /// Derives the buckets from an HDR histogram. A value counts in the bucket `le = b` when its
    /// HDR bucket starts at or below `b`, so bounds are as exact as the histogram (3 significant
    /// digits); the count and the sum are exact.
    pub fn from_latency(l: &Latency) -> Buckets {
        let h = &l.histogram;
        let bounds_us = LATENCY_BUCKETS.map(|b| (b * 1e6).round() as u64);
        let mut per = [0u64; LATENCY_BUCKETS.len()];
        for v in h.iter_recorded() {
            let low = h.lowest_equivalent(v.value_iterated_to());
            if let Some(i) = bounds_us.iter().position(|&b| low <= b) {
                per[i] += v.count_at_value();
            }
        }
        let mut cumulative = [0u64; LATENCY_BUCKETS.len()];
        let mut run = 0;
        for (c, p) in cumulative.iter_mut().zip(per) {
            run += p;
            *c = run;
        }
        Buckets {
            cumulative,
            count: h.len(),
            sum_seconds: l.sum_us as f64 / 1e6,
        }
    }
}

/// The families of one scrape, filled in any order and emitted in the order first used.
#[derive(Default)]
pub struct Families {
    families: Vec<MetricFamily>,
    index: HashMap<&'static str, usize>,
}

impl Families {
    fn push(&mut self, spec: &Spec, values: &[&str], m: proto::Metric) {
        debug_assert_eq!(spec.labels.len(), values.len(), "labels of {}", spec.name);
        let i = *self.index.entry(spec.name).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(spec.name.to_string());
            f.set_help(spec.help.to_string());
            f.set_field_type(match spec.kind {
                Kind::Counter => MetricType::COUNTER,
                Kind::Gauge => MetricType::GAUGE,
                Kind::Histogram => MetricType::HISTOGRAM,
                Kind::Summary => MetricType::SUMMARY,
            });
            self.families.push(f);
            self.families.len() - 1
        });
        let mut m = m;
        m.set_label(
            spec.labels
                .iter()
                .zip(values)
                .map(|(name, value)| {
                    let mut p = proto::LabelPair::default();
                    p.set_name(name.to_string());
                    p.set_value(value.to_string());
                    p
                })
                .collect(),
        );
        self.families[i].mut_metric().push(m);
    }

    pub fn gauge(&mut self, spec: &Spec, values: &[&str], v: f64) {
        debug_assert_eq!(spec.kind, Kind::Gauge);
        let mut g = proto::Gauge::default();
        g.set_value(v);
        let mut m = proto::Metric::default();
        m.set_gauge(g);
        self.push(spec, values, m);
    }

    pub fn counter(&mut self, spec: &Spec, values: &[&str], v: f64) {
        debug_assert_eq!(spec.kind, Kind::Counter);
        let mut c = proto::Counter::default();
        c.set_value(v);
        let mut m = proto::Metric::default();
        m.set_counter(c);
        self.push(spec, values, m);
    }

    pub fn histogram(&mut self, spec: &Spec, values: &[&str], b: &Buckets) {
        debug_assert_eq!(spec.kind, Kind::Histogram);
        let mut h = proto::Histogram::default();
        h.set_sample_count(b.count);
        h.set_sample_sum(b.sum_seconds);
        h.set_bucket(
            LATENCY_BUCKETS
                .iter()
                .zip(b.cumulative)
                .map(|(&bound, count)| {
                    let mut bucket = proto::Bucket::default();
                    bucket.set_upper_bound(bound);
                    bucket.set_cumulative_count(count);
                    bucket
                })
                .collect(),
        );
        let mut m = proto::Metric::default();
        m.set_histogram(h);
        self.push(spec, values, m);
    }

    /// A summary: `quantiles` as (quantile, value), with its count and sum.
    pub fn summary(
        &mut self,
        spec: &Spec,
        values: &[&str],
        quantiles: &[(f64, f64)],
        count: u64,
        sum: f64,
    ) {
        debug_assert_eq!(spec.kind, Kind::Summary);
        let mut s = proto::Summary::default();
        s.set_sample_count(count);
        s.set_sample_sum(sum);
        s.set_quantile(
            quantiles
                .iter()
                .map(|&(q, v)| {
                    let mut pq = proto::Quantile::default();
                    pq.set_quantile(q);
                    pq.set_value(v);
                    pq
                })
                .collect(),
        );
        let mut m = proto::Metric::default();
        m.set_summary(s);
        self.push(spec, values, m);
    }

    pub fn into_families(self) -> Vec<MetricFamily> {
        self.families
    }
}

/// The families that `collect` builds, declared by `specs`, in the text format: how an embedding
/// (the operator) exports metrics of its own with the same builder and checks as the nodes.
pub fn render_families(
    specs: &[&Spec],
    collect: impl Fn() -> Families + Send + Sync + 'static,
) -> Result<String, prometheus::Error> {
    struct Built<F> {
        descs: Vec<Desc>,
        collect: F,
    }
    impl<F: Fn() -> Families + Send + Sync> Collector for Built<F> {
        fn desc(&self) -> Vec<&Desc> {
            self.descs.iter().collect()
        }
        fn collect(&self) -> Vec<MetricFamily> {
            (self.collect)().into_families()
        }
    }
    encode(Built {
        descs: descs(specs),
        collect,
    })
}

/// Gathers one collector through a fresh registry (which sorts the series and checks the
/// descriptors) and encodes the result in the text format.
pub fn encode(collector: impl Collector + 'static) -> Result<String, prometheus::Error> {
    let registry = prometheus::Registry::new();
    registry.register(Box::new(collector))?;
    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

/// The HTTP answer to a scrape.
pub fn response(body: Result<String, prometheus::Error>) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    match body {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!("encoding metrics: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode metrics: {e}\n"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests;
