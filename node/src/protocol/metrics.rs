//! `metrics`: one driver's cumulative report for one test.
//!
//! Floodgate's drivers send sequenced, cumulative reports with exact counts and HDR histograms.
//! Other implementations send only the seed's four latencies (numbers, numeric strings, or Go
//! duration strings), sometimes a count of their own name, a raw `latencies` list, or a
//! `test_status`; this parser takes all of it and says what was present (`counted`, `seq` 0).

use super::lenient::{
    any_as_string, duration_ms, lenient_bool, lenient_latency_ms, lenient_number, lenient_opt_u64,
    lenient_u64,
};
use super::limits;
use super::mix::{ChecksFailed, RequestReport};
use super::pace::{GeneratorLoad, StageProgress};
use super::style::SeedStyle;
use super::ParseError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Raw samples kept from one report's `latencies` list at most; a longer list is not used.
pub const MAX_SAMPLES: usize = 1_000_000;

/// The seed's latency summary plus Floodgate's, in milliseconds; `None` where the sender gave
/// no value (a peer without a median, say), so that nothing absent is shown as zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyFields {
    #[serde(
        default,
        deserialize_with = "lenient_latency_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub mean_latency: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_latency_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub median_latency: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_latency_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_latency: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_latency_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_latency: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_latency_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode_latency: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_latency_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub p90_latency: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_latency_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub p95_latency: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_latency_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub p99_latency: Option<f64>,
}

impl LatencyFields {
    /// Whether any value is present and not zero (a report of zeros says nothing yet).
    pub fn any(&self) -> bool {
        [
            self.mean_latency,
            self.median_latency,
            self.min_latency,
            self.max_latency,
        ]
        .iter()
        .any(|v| v.is_some_and(|v| v > 0.0))
    }
}

/// Errors by kind, counted separately (a Floodgate extension of `metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// Could not connect (refused, reset during connect, DNS).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub connect: u64,
    /// No complete response within the request timeout.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timeout: u64,
    /// A complete response whose status was not 2xx.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub http: u64,
    /// The connection broke or the response could not be parsed.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub io: u64,
    /// A response with an expected status that failed a body or JSON check (issue 12).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub check: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.as_array().iter().sum()
    }

    pub fn add(&mut self, o: &ErrorCounts) {
        self.connect += o.connect;
        self.timeout += o.timeout;
        self.http += o.http;
        self.io += o.io;
        self.check += o.check;
    }

    /// Responses that failed a check: an unexpected status (`http`) or a body or JSON check.
    pub fn failed_responses(&self) -> u64 {
        self.http + self.check
    }

    /// connect, timeout, http, io, check.
    pub fn as_array(&self) -> [u64; 5] {
        [self.connect, self.timeout, self.http, self.io, self.check]
    }
}

/// Responses by status class (`1xx` … `5xx`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClasses {
    #[serde(default, rename = "1xx", deserialize_with = "lenient_u64")]
    pub c1: u64,
    #[serde(default, rename = "2xx", deserialize_with = "lenient_u64")]
    pub c2: u64,
    #[serde(default, rename = "3xx", deserialize_with = "lenient_u64")]
    pub c3: u64,
    #[serde(default, rename = "4xx", deserialize_with = "lenient_u64")]
    pub c4: u64,
    #[serde(default, rename = "5xx", deserialize_with = "lenient_u64")]
    pub c5: u64,
}

impl StatusClasses {
    pub fn add(&mut self, o: &StatusClasses) {
        self.c1 += o.c1;
        self.c2 += o.c2;
        self.c3 += o.c3;
        self.c4 += o.c4;
        self.c5 += o.c5;
    }

    pub fn total(&self) -> u64 {
        self.as_array().iter().sum()
    }

    /// 1xx … 5xx.
    pub fn as_array(&self) -> [u64; 5] {
        [self.c1, self.c2, self.c3, self.c4, self.c5]
    }

    pub fn from_array(a: [u64; 5]) -> Self {
        let [c1, c2, c3, c4, c5] = a;
        Self { c1, c2, c3, c4, c5 }
    }
}

/// What opening connections cost (a Floodgate extension of `metrics`): TCP connect and TLS
/// handshake times, one sample per connection opened, kept apart from request latency.
/// Cumulative like the rest of a report; absent when no connection was opened yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeFields {
    /// Exact sum of TCP connect times in microseconds.
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "is_zero"
    )]
    pub connect_sum_us: u64,
    /// Base64 HdrHistogram (as `histogram`) of TCP connect times in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_histogram: Option<String>,
    /// Exact sum of TLS handshake times in microseconds (after the TCP connect).
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "is_zero"
    )]
    pub tls_sum_us: u64,
    /// Base64 HdrHistogram of TLS handshake times in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_histogram: Option<String>,
    /// TLS handshakes that resumed a session (of those in `tls_histogram`).
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "is_zero"
    )]
    pub tls_resumed: u64,
}

/// Where a driver is with a test, as its report says (`test_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    /// Every request was sent and every response (or error) is in. Written `complete`, the
    /// word the one peer orchestrator that reads this field waits for; `completed` is read too.
    #[serde(rename = "complete", alias = "completed")]
    Completed,
    /// Ended early on request (a stop, or the driver shutting down).
    Stopped,
    /// The driver could not run the configuration; `reason` says why.
    Refused,
    Failed,
}

impl RunState {
    /// The words implementations use, in any case; `None` for words it does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "running" | "in_progress" | "in progress" | "started" | "active" | "ongoing" => {
                RunState::Running
            }
            "completed" | "complete" | "done" | "finished" | "success" | "succeeded" => {
                RunState::Completed
            }
            "stopped" | "aborted" | "cancelled" | "canceled" => RunState::Stopped,
            "refused" | "rejected" => RunState::Refused,
            "failed" | "error" => RunState::Failed,
            _ => return None,
        })
    }

    /// Whether the driver says its part of the test is over.
    pub fn is_end(self) -> bool {
        self != RunState::Running
    }
}

/// `metrics` topic: one cumulative report of one driver for one test.
///
/// Reports are idempotent: the latest `seq` of a (test, node) pair supersedes every earlier one,
/// so duplicates and reordering are harmless. A report without `seq` (another implementation's)
/// is ordered by arrival.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct MetricsReport {
    pub node_id: String,
    pub test_id: String,
    pub report_id: String,
    pub metrics: LatencyFields,
    // --- Floodgate extensions ---
    /// Per (test, node) sequence number, starting at 1; 0 when the sender numbers nothing.
    pub seq: u64,
    #[serde(rename = "final")]
    pub is_final: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_status: Option<RunState>,
    /// Why a driver refused or stopped a test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Settings the driver filled in itself because the config named none, with the value used
    /// (e.g. `{"message_count_per_driver": 1000}`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub defaults: BTreeMap<String, Value>,
    /// Requests whose first byte was written (or attempted) so far.
    pub requests_sent: u64,
    /// Complete HTTP responses of any status.
    pub responses_received: u64,
    /// False when the sender reported no count at all (then the two above are 0, not known).
    #[serde(skip_serializing_if = "is_true")]
    pub counted: bool,
    /// A count of requests since the previous report rather than since the start, as one peer
    /// sends it (`no_of_req`); the orchestrator turns it into a cumulative count.
    #[serde(skip)]
    pub count_delta: Option<u64>,
    pub errors: ErrorCounts,
    pub status: StatusClasses,
    /// Requests the test will send in all.
    #[serde(rename = "requests_total")]
    pub requests: u64,
    /// Exact sum of latencies in microseconds, so that means merge exactly.
    pub latency_sum_us: u64,
    /// Exact sum of raw service times in microseconds.
    pub service_sum_us: u64,
    /// Exact sum of schedule lags in microseconds (paced tests only).
    #[serde(skip_serializing_if = "is_zero")]
    pub lag_sum_us: u64,
    /// Microseconds since the driver's scheduled start.
    pub elapsed_us: u64,
    /// Base64 of an HdrHistogram V2 (deflate) of latency in microseconds from the intended send
    /// time; merging these is how cross-driver percentiles stay exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
    /// The same for raw service time (from the actual write to the last byte).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_histogram: Option<String>,
    /// The same for schedule lag: how late each paced request left (actual send minus due
    /// instant). Absent in an unpaced test, which has no schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_histogram: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<u64>,
    /// When the driver's first request of the test left, in µs since the Unix epoch on the
    /// driver's clock (issue 13: the orchestrator's start skew is made of these).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_send_us: Option<u64>,
    /// The live rate changes the driver applied (issue 13), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rate_changes: Vec<super::AppliedRate>,
    /// The shares of lost drivers this driver took (issue 13), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hand_overs: Vec<super::TookOver>,
    /// Connect and TLS handshake times.
    #[serde(flatten)]
    pub handshakes: HandshakeFields,
    /// The first transport error the driver saw (a TLS handshake refused, a connection
    /// reset), for diagnosis; bounded like `reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Raw latencies in ms, as one peer sends them (`latencies`, cumulative); the orchestrator
    /// records them into a histogram.
    #[serde(skip)]
    pub samples_ms: Option<Vec<f64>>,
    /// Progress per rate stage of a staged test (issue 12); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageProgress>,
    /// The driver's own load, and its saturation warning (issue 12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorLoad>,
    /// Responses that failed a check, by kind (issue 12).
    #[serde(skip_serializing_if = "ChecksFailed::is_empty")]
    pub checks_failed: ChecksFailed,
    /// A request mix's figures by request name (issue 12); empty without a mix.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_request: BTreeMap<String, RequestReport>,
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The typed part of a report; the names peers disagree on are looked up by hand.
#[derive(Deserialize)]
struct MetricsWire {
    #[serde(default)]
    metrics: LatencyFields,
    #[serde(default, deserialize_with = "lenient_u64")]
    seq: u64,
    #[serde(default, rename = "final", deserialize_with = "lenient_bool")]
    is_final: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    defaults: BTreeMap<String, Value>,
    #[serde(default)]
    errors: ErrorCounts,
    #[serde(default, deserialize_with = "lenient_u64")]
    requests_total: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    latency_sum_us: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    service_sum_us: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    lag_sum_us: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    elapsed_us: u64,
    #[serde(default)]
    histogram: Option<String>,
    #[serde(default)]
    service_histogram: Option<String>,
    #[serde(default)]
    lag_histogram: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    timestamp_ms: Option<u64>,
    #[serde(flatten)]
    handshakes: HandshakeFields,
    #[serde(default)]
    first_error: Option<String>,
}

/// Names of a cumulative request count, in the order they are preferred.
const COUNT_NAMES: [&str; 6] = [
    "requests_sent",
    "num_requests",
    "request_count",
    "total_requests",
    "requests",
    "count",
];

impl TryFrom<Value> for MetricsReport {
    type Error = String;

    fn try_from(v: Value) -> Result<Self, String> {
        let obj = v.as_object().ok_or("a report is a JSON object")?;
        let id = |names: &[&str]| -> Result<String, String> {
            names
                .iter()
                .find_map(|k| obj.get(*k))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("{}: missing or empty", names[0]))
        };
        let node_id = id(&["node_id", "node_ID", "nodeId"])?;
        limits::check_id(&node_id).map_err(|e| format!("node_id: {e}"))?;
        let test_id = id(&["test_id", "test_ID", "testId"])?;
        limits::check_id(&test_id).map_err(|e| format!("test_id: {e}"))?;
        let report_id = obj
            .get("report_id")
            .map(|v| any_as_string(v.clone()).unwrap_or_default())
            .unwrap_or_default();
        limits::check_len(&report_id, limits::MAX_TEXT_LEN)
            .map_err(|e| format!("report_id: {e}"))?;
        let inner = obj.get("metrics").and_then(Value::as_object);
        let count_of = |names: &[&str]| -> Result<Option<u64>, String> {
            let found = names
                .iter()
                .find_map(|k| obj.get(*k).or_else(|| inner.and_then(|m| m.get(*k))));
            match found {
                None => Ok(None),
                Some(v) => lenient_opt_u64(v.clone())
                    .map_err(|e: serde_json::Error| format!("{}: {e}", names[0])),
            }
        };
        let sent = count_of(&COUNT_NAMES)?;
        let responses = count_of(&["responses_received", "responses"])?;
        let count_delta = count_of(&["no_of_req"])?;
        let w: MetricsWire =
            super::parse_value(v.clone()).map_err(|e: ParseError| e.to_string())?;
        // `status` is the response classes (an object); a string there, or `test_status`, is a
        // run state as other implementations send it.
        let mut classes = StatusClasses::default();
        let mut state = None;
        for key in ["test_status", "status"] {
            match obj.get(key) {
                Some(Value::String(s)) => state = state.or(RunState::parse(s)),
                Some(o @ Value::Object(_)) if key == "status" => {
                    classes = super::parse_value(o.clone())
                        .map_err(|e: ParseError| format!("status: {e}"))?;
                }
                _ => {}
            }
        }
        let counted = match obj.get("counted") {
            Some(Value::Bool(b)) => *b,
            _ => sent.is_some() || responses.is_some(),
        };
        Ok(MetricsReport {
            node_id,
            test_id,
            report_id,
            metrics: w.metrics,
            seq: w.seq,
            is_final: w.is_final,
            test_status: state,
            reason: w.reason.map(|r| truncated(r, limits::MAX_REASON_LEN)),
            defaults: bounded_defaults(w.defaults),
            requests_sent: sent.unwrap_or(0),
            responses_received: responses.or(sent).unwrap_or(0),
            counted,
            count_delta,
            errors: w.errors,
            status: classes,
            requests: w.requests_total,
            latency_sum_us: w.latency_sum_us,
            service_sum_us: w.service_sum_us,
            lag_sum_us: w.lag_sum_us,
            elapsed_us: w.elapsed_us,
            histogram: w.histogram.filter(|h| !h.is_empty()),
            service_histogram: w.service_histogram.filter(|h| !h.is_empty()),
            lag_histogram: w.lag_histogram.filter(|h| !h.is_empty()),
            timestamp_ms: w.timestamp_ms,
            // Liberal, as the other extensions: a value that is no instant is dropped.
            first_send_us: obj
                .get("first_send_us")
                .and_then(Value::as_u64)
                .filter(|&t| t > 0),
            rate_changes: super::rate::applied(obj.get("rate_changes")),
            hand_overs: super::hand_over::took(obj.get("hand_overs")),
            handshakes: HandshakeFields {
                connect_histogram: w.handshakes.connect_histogram.filter(|h| !h.is_empty()),
                tls_histogram: w.handshakes.tls_histogram.filter(|h| !h.is_empty()),
                ..w.handshakes
            },
            first_error: w.first_error.map(|r| truncated(r, limits::MAX_REASON_LEN)),
            samples_ms: obj.get("latencies").and_then(samples),
            stages: super::pace::stages(obj.get("stages")),
            generator: super::pace::generator(obj.get("generator")),
            // Liberal: malformed figures of an extension are dropped, the report is kept.
            checks_failed: obj
                .get("checks_failed")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            by_request: super::mix::by_request(obj.get("by_request")).unwrap_or_default(),
        })
    }
}

/// Settings a driver says it filled in: a few short entries are all a driver has, so more, or
/// longer, are dropped rather than kept in every view of the test.
fn bounded_defaults(mut d: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    d.retain(|k, v| k.len() <= limits::MAX_ID_LEN && v.to_string().len() <= limits::MAX_TEXT_LEN);
    d.into_iter().take(MAX_DEFAULTS).collect()
}

/// Entries kept of a report's `defaults`.
const MAX_DEFAULTS: usize = 16;

/// `s` cut to at most `max` bytes, on a character boundary, marked with an ellipsis.
fn truncated(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub(3);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A list of latencies in ms (numbers or strings with units); `None` when it is not one, or too
/// long to be worth trusting.
fn samples(v: &Value) -> Option<Vec<f64>> {
    let list = v.as_array()?;
    if list.len() > MAX_SAMPLES {
        return None;
    }
    list.iter()
        .map(|x| match x {
            Value::String(s) => duration_ms(s.trim()),
            other => lenient_number(other.clone()).ok().flatten(),
        })
        .map(|x| x.filter(|v| v.is_finite() && *v >= 0.0))
        .collect()
}

impl MetricsReport {
    /// The message in `style` (the seed's latency fields as numbers or as quoted strings).
    pub fn to_json(&self, style: &SeedStyle) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(m) = v.get_mut("metrics").and_then(Value::as_object_mut) {
            for value in m.values_mut() {
                if let Some(ms) = value.as_f64() {
                    *value = style.millis(ms);
                }
            }
        }
        v
    }

    /// [`MetricsReport::to_json`] as bytes.
    pub fn emit(&self, style: &SeedStyle) -> Vec<u8> {
        super::emit(&self.to_json(style))
    }

    /// Whether the report says anything yet: counts, latencies or samples above zero.
    pub fn has_progress(&self) -> bool {
        self.requests_sent > 0
            || self.responses_received > 0
            || self.count_delta.is_some_and(|d| d > 0)
            || self.metrics.any()
            || self.samples_ms.as_ref().is_some_and(|s| !s.is_empty())
            || self.histogram.is_some()
    }
}
