//! The wire protocol: the seed's five Kafka messages plus Floodgate's extensions, as serde types.
//!
//! Emitting is strict: the seed's field names, with the seed's fields quoted as strings
//! (`"message_count_per_driver": "1000"`). Parsing is liberal, because a dozen earlier
//! implementations of the same spec put slightly different JSON on these topics: numbers or
//! numeric strings, any case of `TSUNAMI`/`AVALANCHE`, `node_IP`/`node_ip`/`node_ID`, `heartbeat`
//! as `"YES"` or `true`, missing optional fields and unknown fields are all accepted.
//! See `docs/protocol.md` for the format with units.

mod lenient;

use lenient::{
    any_as_string, lenient_f64, lenient_opt_f64, lenient_opt_u64, lenient_u64, lenient_yes,
    ms_as_string, num_as_string,
};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// Seed value of `register.message_type` for drivers.
pub const DRIVER_REGISTER: &str = "DRIVER_NODE_REGISTER";
/// Floodgate's value of `register.message_type` for the orchestrator's own registration.
pub const ORCHESTRATOR_REGISTER: &str = "ORCHESTRATOR_NODE_REGISTER";

/// The five topic names, each overridable (flag or environment) so that several clusters or
/// test runs can share one broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    pub register: String,
    pub test_config: String,
    pub trigger: String,
    pub metrics: String,
    pub heartbeat: String,
}

impl Topics {
    /// The seed's names, each with `prefix` in front (an empty prefix gives the seed's names).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            register: format!("{prefix}register"),
            test_config: format!("{prefix}test_config"),
            trigger: format!("{prefix}trigger"),
            metrics: format!("{prefix}metrics"),
            heartbeat: format!("{prefix}heartbeat"),
        }
    }

    pub fn all(&self) -> [&str; 5] {
        [
            &self.register,
            &self.test_config,
            &self.trigger,
            &self.metrics,
            &self.heartbeat,
        ]
    }
}

/// Which kind of node sent a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Driver,
    Orchestrator,
}

/// `register` topic. A registration names its node and carries `node_IP` or `message_type`
/// (older implementations left one of them out, never both), so other JSON that merely has a
/// `node_id` is not mistaken for a new driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RegisterWire")]
pub struct Register {
    pub node_id: String,
    #[serde(rename = "node_IP")]
    pub node_ip: String,
    pub message_type: String,
    // --- Floodgate extensions ---
    pub role: Role,
    /// The orchestrator address the node was told on its command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Deserialize)]
struct RegisterWire {
    #[serde(alias = "node_ID", alias = "nodeId", alias = "id")]
    node_id: String,
    #[serde(
        rename = "node_IP",
        alias = "node_ip",
        alias = "node_Ip",
        alias = "nodeIp"
    )]
    node_ip: Option<String>,
    message_type: Option<String>,
    #[serde(default)]
    role: Role,
    #[serde(default)]
    orchestrator: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

impl TryFrom<RegisterWire> for Register {
    type Error = String;

    fn try_from(w: RegisterWire) -> Result<Self, String> {
        if w.node_ip.is_none() && w.message_type.is_none() {
            return Err("a registration needs node_IP or message_type".into());
        }
        if w.node_id.trim().is_empty() {
            return Err("node_id is empty".into());
        }
        Ok(Register {
            node_id: w.node_id,
            node_ip: w.node_ip.unwrap_or_default(),
            message_type: w
                .message_type
                .unwrap_or_else(|| DRIVER_REGISTER.to_string()),
            role: w.role,
            orchestrator: w.orchestrator,
            version: w.version,
        })
    }
}

impl Register {
    /// A registration is a driver's unless it says otherwise in either field.
    pub fn is_driver(&self) -> bool {
        self.role == Role::Driver
            && !self
                .message_type
                .eq_ignore_ascii_case(ORCHESTRATOR_REGISTER)
    }
}

/// The two kinds of test of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestType {
    /// A fixed gap between consecutive requests on each driver.
    Tsunami,
    /// Requests go out as soon as a connection is free, first come first served.
    Avalanche,
}

impl TestType {
    pub fn as_wire(self) -> &'static str {
        match self {
            TestType::Tsunami => "TSUNAMI",
            TestType::Avalanche => "AVALANCHE",
        }
    }

    /// Any case of the two names.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "TSUNAMI" => Some(TestType::Tsunami),
            "AVALANCHE" => Some(TestType::Avalanche),
            _ => None,
        }
    }
}

impl fmt::Display for TestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TestType::Tsunami => "tsunami",
            TestType::Avalanche => "avalanche",
        })
    }
}

impl Serialize for TestType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_wire())
    }
}

impl<'de> Deserialize<'de> for TestType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TestType::parse(&s).ok_or_else(|| {
            de::Error::custom(format!(
                "unknown test_type {s:?}: want TSUNAMI or AVALANCHE"
            ))
        })
    }
}

/// What to send to the target (a Floodgate extension of `test_config`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpTarget {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

fn default_method() -> String {
    "GET".to_string()
}

/// `test_config` topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestConfig {
    #[serde(alias = "testId", alias = "test_ID")]
    pub test_id: String,
    pub test_type: TestType,
    /// Milliseconds between two consecutive requests of one driver (Tsunami); `0` for Avalanche.
    #[serde(
        default,
        serialize_with = "num_as_string",
        deserialize_with = "lenient_f64"
    )]
    pub test_message_delay: f64,
    #[serde(serialize_with = "num_as_string", deserialize_with = "lenient_u64")]
    pub message_count_per_driver: u64,
    // --- Floodgate extensions (absent from older implementations' messages) ---
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<HttpTarget>,
    /// Cap in requests per second per driver; `None` means uncapped.
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    pub throughput_per_driver: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub concurrency: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub timeout_ms: Option<u64>,
    /// The participating drivers; empty means every driver that receives the message.
    #[serde(default)]
    pub drivers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_id: Option<String>,
}

/// What a `trigger` message asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerAction {
    /// The seed's `"YES"`: start the configured test.
    Start,
    /// Floodgate's `"STOP"`: stop a running test early.
    Stop,
}

impl Serialize for TriggerAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            TriggerAction::Start => "YES",
            TriggerAction::Stop => "STOP",
        })
    }
}

impl<'de> Deserialize<'de> for TriggerAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(TriggerAction::Start),
            serde_json::Value::Bool(false) => Ok(TriggerAction::Stop),
            serde_json::Value::String(s) => match s.trim().to_ascii_uppercase().as_str() {
                "YES" | "TRUE" | "START" => Ok(TriggerAction::Start),
                "STOP" | "NO" | "FALSE" => Ok(TriggerAction::Stop),
                _ => Err(de::Error::custom(format!("unknown trigger {s:?}"))),
            },
            other => Err(de::Error::custom(format!("unknown trigger {other}"))),
        }
    }
}

/// `trigger` topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(alias = "testId", alias = "test_ID")]
    pub test_id: String,
    pub trigger: TriggerAction,
    /// Unix time in milliseconds at which every driver starts, so that all begin together.
    #[serde(
        default,
        deserialize_with = "lenient_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_at_ms: Option<u64>,
}

/// The seed's latency summary, in milliseconds, emitted as strings; Floodgate adds the rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyFields {
    #[serde(
        default,
        serialize_with = "ms_as_string",
        deserialize_with = "lenient_f64"
    )]
    pub mean_latency: f64,
    #[serde(
        default,
        serialize_with = "ms_as_string",
        deserialize_with = "lenient_f64"
    )]
    pub median_latency: f64,
    #[serde(
        default,
        serialize_with = "ms_as_string",
        deserialize_with = "lenient_f64"
    )]
    pub min_latency: f64,
    #[serde(
        default,
        serialize_with = "ms_as_string",
        deserialize_with = "lenient_f64"
    )]
    pub max_latency: f64,
    #[serde(
        default,
        serialize_with = "ms_as_string",
        deserialize_with = "lenient_f64"
    )]
    pub mode_latency: f64,
    #[serde(
        default,
        serialize_with = "ms_as_string",
        deserialize_with = "lenient_f64"
    )]
    pub p90_latency: f64,
    #[serde(
        default,
        serialize_with = "ms_as_string",
        deserialize_with = "lenient_f64"
    )]
    pub p95_latency: f64,
    #[serde(
        default,
        serialize_with = "ms_as_string",
        deserialize_with = "lenient_f64"
    )]
    pub p99_latency: f64,
}

/// Errors by kind, counted separately (a Floodgate extension of `metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// Could not connect (refused, reset during connect, DNS).
    #[serde(default)]
    pub connect: u64,
    /// No complete response within the request timeout.
    #[serde(default)]
    pub timeout: u64,
    /// A complete response whose status was not 2xx.
    #[serde(default)]
    pub http: u64,
    /// The connection broke or the response could not be parsed.
    #[serde(default)]
    pub io: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.http + self.io
    }

    pub fn add(&mut self, o: &ErrorCounts) {
        self.connect += o.connect;
        self.timeout += o.timeout;
        self.http += o.http;
        self.io += o.io;
    }
}

/// Responses by status class (`1xx` … `5xx`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClasses {
    #[serde(default, rename = "1xx")]
    pub c1: u64,
    #[serde(default, rename = "2xx")]
    pub c2: u64,
    #[serde(default, rename = "3xx")]
    pub c3: u64,
    #[serde(default, rename = "4xx")]
    pub c4: u64,
    #[serde(default, rename = "5xx")]
    pub c5: u64,
}

impl StatusClasses {
    pub fn record(&mut self, status: u16) {
        match status / 100 {
            1 => self.c1 += 1,
            2 => self.c2 += 1,
            3 => self.c3 += 1,
            4 => self.c4 += 1,
            _ => self.c5 += 1,
        }
    }

    pub fn add(&mut self, o: &StatusClasses) {
        self.c1 += o.c1;
        self.c2 += o.c2;
        self.c3 += o.c3;
        self.c4 += o.c4;
        self.c5 += o.c5;
    }

    pub fn total(&self) -> u64 {
        self.c1 + self.c2 + self.c3 + self.c4 + self.c5
    }
}

/// `metrics` topic: one cumulative report of one driver for one test.
///
/// Reports are idempotent: the latest `seq` of a (test, node) pair supersedes every earlier one,
/// so duplicates and reordering are harmless.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    #[serde(alias = "node_ID", alias = "nodeId")]
    pub node_id: String,
    #[serde(alias = "testId", alias = "test_ID")]
    pub test_id: String,
    #[serde(default)]
    pub report_id: String,
    #[serde(default)]
    pub metrics: LatencyFields,
    // --- Floodgate extensions ---
    /// Per (test, node) sequence number, starting at 1.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub seq: u64,
    #[serde(default, rename = "final")]
    pub is_final: bool,
    /// Requests whose first byte was written (or attempted) so far.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub requests_sent: u64,
    /// Complete HTTP responses of any status.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub responses_received: u64,
    #[serde(default)]
    pub errors: ErrorCounts,
    #[serde(default)]
    pub status: StatusClasses,
    /// Requests the test will send in all (`message_count_per_driver`).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub requests_total: u64,
    /// Exact sum of latencies in microseconds, so that means merge exactly.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub latency_sum_us: u64,
    /// Exact sum of raw service times in microseconds.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub service_sum_us: u64,
    /// Microseconds since the driver's scheduled start.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub elapsed_us: u64,
    /// Base64 of an HdrHistogram V2 (deflate) of latency in microseconds from the intended send
    /// time; merging these is how cross-driver percentiles stay exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
    /// The same for raw service time (from the actual write to the last byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_histogram: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_ms: Option<u64>,
}

/// `heartbeat` topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    #[serde(alias = "node_ID", alias = "nodeId")]
    pub node_id: String,
    /// Required: JSON without it is not a heartbeat, whatever else it holds.
    #[serde(deserialize_with = "lenient_yes")]
    pub heartbeat: String,
    /// Sender's clock, informational only: liveness is judged by the time of receipt.
    #[serde(default, deserialize_with = "any_as_string")]
    pub timestamp: String,
    // --- Floodgate extensions, so that a restarted orchestrator learns of running drivers ---
    #[serde(
        rename = "node_IP",
        alias = "node_ip",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_ip: Option<String>,
    #[serde(default)]
    pub role: Role,
    /// The test the node is running, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_id: Option<String>,
}

/// Why a message on a topic could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not valid UTF-8 JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    Invalid(String),
}

/// Parses one message, telling "not JSON at all" (stray `EOT` markers) from "JSON we cannot use".
pub fn parse<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, ParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    T::deserialize(de).map_err(|e| {
        let path = track.path().to_string();
        if path == "." {
            ParseError::Invalid(e.to_string())
        } else {
            ParseError::Invalid(format!("{path}: {e}"))
        }
    })
}

/// Strict emission: the canonical JSON of a message.
pub fn emit<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (string keys, finite numbers are checked
    // by `ms_as_string`), so an empty payload would only ever signal a programming error.
    serde_json::to_vec(msg).unwrap_or_default()
}

/// The current wall-clock time as an RFC 3339 string, for `heartbeat.timestamp`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
