//! The `LoadTest` custom resource (`floodgate.dev/v1alpha1`): the single source of the CRD,
//! whose YAML in `crds/` is generated from these types (`cargo run -p floodgate-operator --bin
//! crdgen`). The API server enforces the schema (ranges, the `http://` pattern) and the CEL
//! rules, so an invalid LoadTest is refused at `kubectl apply` with a clear message.

use floodgate::protocol::limits;
use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A distributed load test run by 2–8 Floodgate drivers.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "floodgate.dev",
    version = "v1alpha1",
    kind = "LoadTest",
    plural = "loadtests",
    shortname = "lt",
    namespaced,
    status = "LoadTestStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Drivers","type":"string","jsonPath":".status.driversSummary"}"#,
    printcolumn = r#"{"name":"Sent","type":"integer","jsonPath":".status.aggregate.sent"}"#,
    printcolumn = r#"{"name":"P99 ms","type":"number","jsonPath":".status.aggregate.p99Ms"}"#,
    printcolumn = r#"{"name":"Thresholds","type":"string","jsonPath":".status.thresholds.verdict"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self.testType != 'Tsunami' || !has(self.throughputPerDriver) || !has(oldSelf.throughputPerDriver) || self.throughputPerDriver == oldSelf.throughputPerDriver").message("a Tsunami's pace is delayMs: its throughputPerDriver cap cannot change").field_path(".throughputPerDriver"))]
#[x_kube(validation = Rule::new("self.testType != 'Tsunami' || has(self.stages) || has(self.totalRate) || (has(self.delayMs) && self.delayMs > 0.0)").message("a Tsunami test needs delayMs > 0 (or stages, or totalRate)"))]
#[x_kube(validation = Rule::new("(has(self.requestsPerDriver) ? 1 : 0) + (has(self.totalRequests) ? 1 : 0) + (has(self.durationMs) ? 1 : 0) + (has(self.stages) ? 1 : 0) == 1").message("give exactly one of requestsPerDriver or totalRequests (a count), durationMs or stages (a time)"))]
#[x_kube(validation = Rule::new("!has(self.totalRate) || ((has(self.totalRequests) || has(self.durationMs)) && !has(self.throughputPerDriver) && !has(self.delayMs))").message("totalRate goes with totalRequests or durationMs, instead of throughputPerDriver or delayMs"))]
#[x_kube(validation = Rule::new("!has(self.totalRequests) || has(self.totalRate) || (self.testType == 'Avalanche' && !has(self.throughputPerDriver))").message("a paced test given in totalRequests takes its pace as totalRate"))]
#[x_kube(validation = Rule::new("!has(self.split) || has(self.totalRequests) || has(self.totalRate)").message("split applies to a test given in totalRequests or totalRate"))]
#[x_kube(validation = Rule::new("!has(self.stages) || (!has(self.throughputPerDriver) && !has(self.delayMs))").message("stages set the pace alone: leave out throughputPerDriver and delayMs"))]
#[x_kube(validation = Rule::new("!has(self.startRate) || has(self.stages)").message("startRate is the rate the first of the stages ramps from: it needs stages"))]
#[x_kube(validation = Rule::new("self.testType != 'Avalanche' || !has(self.delayMs) || self.delayMs == 0.0").message("only Tsunami tests take delayMs; cap an Avalanche with throughputPerDriver"))]
#[x_kube(validation = Rule::new("!has(self.streamsPerConnection) || self.streamsPerConnection == 1 || (has(self.httpVersion) && self.httpVersion == '2')").message("streamsPerConnection above 1 needs httpVersion \"2\""))]
#[x_kube(validation = Rule::new("!has(self.tls) || (has(self.mix) ? (size(self.mix) > 0 && self.mix[0].url.matches('^[hH][tT][tT][pP][sS]://')) : (has(self.targetUrl) && self.targetUrl.matches('^[hH][tT][tT][pP][sS]://')))").message("tls applies to https:// targets only (targetUrl, or mix[0].url with a mix)"))]
#[x_kube(validation = Rule::new("has(self.targetUrl) != has(self.mix)").message("give exactly one of targetUrl (one request) or mix (a request mix)"))]
#[x_kube(validation = Rule::new("!has(self.mix) || (!has(self.method) && !has(self.headers) && !has(self.body))").message("with a mix, each entry has its own method, headers and body: leave the top-level ones out"))]
#[x_kube(validation = Rule::new("!has(self.mix) || self.mix.all(a, self.mix.exists_one(b, b.name == a.name))").message("each mix entry needs a name of its own (mix[].name must be unique)"))]
// Immutability: every field but the pace, one transition rule each (see immutable_but_pace).
#[schemars(transform = immutable_but_pace)]
#[serde(rename_all = "camelCase")]
pub struct LoadTestSpec {
    /// The URL every request goes to, http:// or https://, e.g.
    /// http://my-svc.default.svc:8080/ping. Not with mix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = URL_PATTERN), length(max = MAX_URL_CHARS))]
    pub target_url: Option<String>,
    /// A request mix instead of targetUrl, method, headers and body: each driver sends its
    /// entries in turn by weight. Every entry's URL shares one origin (scheme, host, port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::MAX_MIX_ENTRIES))]
    pub mix: Option<Vec<MixRequest>>,
    /// What a response must look like to count as a success (default: a 2xx status); a mix
    /// entry's own checks replace these for its requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
    /// HTTP method (default GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z]+$"))]
    pub method: Option<String>,
    /// Extra request headers. Authorization, Proxy-Authorization, Cookie, X-Api-Key and
    /// X-Auth-Token are shown redacted in every view and report; put credentials in
    /// secretHeaders rather than here, where anyone who can read the LoadTest sees them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request headers whose values come from a Secret in the LoadTest's namespace or from the
    /// operator's environment; their values are secret (redacted in every view and report).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub secret_headers: Vec<SecretHeader>,
    /// Request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Tsunami: a fixed delay between requests on each driver. Avalanche: as fast as
    /// connections free up (within throughputPerDriver).
    pub test_type: TestType,
    /// Tsunami only: milliseconds between two consecutive requests of one driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = limits::MAX_DELAY_MS))]
    pub delay_ms: Option<f64>,
    /// Requests each driver sends (a count-bound test; or give durationMs or stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_REQUESTS))]
    pub requests_per_driver: Option<u64>,
    /// A time-bound test: milliseconds to send for, at the test's pace (as fast as the target
    /// answers when unpaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_DURATION_MS))]
    pub duration_ms: Option<u64>,
    /// Rate stages (requests/s per driver), each a linear ramp from the previous stage's rate
    /// (the first from startRate): they set the pace and imply the duration (their sum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::MAX_STAGES))]
    pub stages: Option<Vec<RateStage>>,
    /// The rate the first stage ramps from (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = limits::MAX_RATE))]
    pub start_rate: Option<f64>,
    /// Cap in requests per second per driver; absent means uncapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = limits::MIN_RATE, max = limits::MAX_RATE))]
    pub throughput_per_driver: Option<f64>,
    /// Requests over all drivers instead of requestsPerDriver, shared by each driver's
    /// capacity (its pod's CPU) so that the shares add up exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_TOTAL_REQUESTS))]
    pub total_requests: Option<u64>,
    /// Requests per second over all drivers, shared as totalRequests is, instead of delayMs
    /// (Tsunami) or throughputPerDriver (Avalanche); with totalRequests or durationMs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = limits::MIN_RATE, max = limits::MAX_RATE))]
    pub total_rate: Option<f64>,
    /// How totals are shared: Capacity (default: by each driver's CPU) or Equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitBy>,
    /// A driver that hears neither the orchestrator nor a majority of the drivers for this
    /// long stops sending (default 15000; 0 turns it off, else 1000 or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = limits::MAX_FAIL_SAFE_MS))]
    pub fail_safe_ms: Option<u64>,
    /// Number of drivers (the driver Deployment's replicas).
    #[schemars(range(min = limits::MIN_DRIVERS, max = limits::MAX_DRIVERS))]
    pub drivers: u32,
    /// Connections per driver (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_CONCURRENCY))]
    pub concurrency: Option<u32>,
    /// Per-request timeout in milliseconds (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_TIMEOUT_MS))]
    pub timeout_ms: Option<u64>,
    /// Driver image (default: the operator's --driver-image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_image: Option<String>,
    /// Resources of each driver container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_resources: Option<ResourceRequirements>,
    /// Pass/fail thresholds on the merged data of all drivers, evaluated by the orchestrator;
    /// the verdict is the ThresholdsPassed condition and `status.thresholds`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = floodgate::thresholds::MAX_THRESHOLDS))]
    pub thresholds: Vec<ThresholdSpec>,
    /// "1.1" (default) or "2": HTTP/2 negotiated with ALPN over https://, with prior knowledge
    /// (h2c) over http://.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_version: Option<HttpVersion>,
    /// Concurrent streams per HTTP/2 connection (default 1); concurrency stays connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_STREAMS_PER_CONNECTION))]
    pub streams_per_connection: Option<u64>,
    /// How an https:// target's certificate is checked (default: the drivers' system roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<LoadTestTls>,
}

/// The spec fields an existing LoadTest may change (issue 13): its pace, which a running
/// test takes live. Only the field the test gives its pace with is set (the cross-field
/// rules), and none of them may be added or removed, so a test keeps the way it gives it.
pub const PACE_FIELDS: [&str; 3] = ["delayMs", "throughputPerDriver", "totalRate"];

/// The spec's transition rules, made from its schema's properties: each field but the pace
/// cannot change (nor be added or removed), each pace field cannot be added or removed. One
/// rule per field, each naming it (`fieldPath`), so a refusal says which field; a field added
/// to the spec later is immutable unless it is listed in [`PACE_FIELDS`].
fn immutable_but_pace(schema: &mut schemars::Schema) {
    let names = |key: &str| -> Vec<String> {
        match schema.get(key) {
            Some(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let (properties, required) = (names("properties"), names("required"));
    for name in properties {
        let present = format!("has(self.{name}) == has(oldSelf.{name})");
        let rule = if PACE_FIELDS.contains(&name.as_str()) {
            kube::core::Rule::new(present).message(
                format!(
                    "spec.{name} can change but not be added or removed: a LoadTest keeps the way it gives its pace"
                )
                .as_str(),
            )
        } else {
            let same = if required.contains(&name) {
                format!("self.{name} == oldSelf.{name}")
            } else {
                format!("{present} && (!has(self.{name}) || self.{name} == oldSelf.{name})")
            };
            kube::core::Rule::new(same).message(
                format!(
                    "a LoadTest's spec.{name} cannot change (only its pace can: delayMs, \
                     throughputPerDriver or totalRate); create a new LoadTest to run again"
                )
                .as_str(),
            )
        };
        let rule = rule.field_path(format!(".{name}"));
        // Only fails on a rule that does not serialize, which a Rule always does.
        let _ = kube::core::validate(schema, rule);
    }
}

#[path = "crd_mix.rs"]
mod mix;
pub use mix::{Checks, JsonCheck, MixRequest, RequestProgress, StatusMatch};

/// A target URL: http:// or https://, a host, then a path or query.
const URL_PATTERN: &str = r"^[hH][tT][tT][pP][sS]?://[^\s/?#]+([/?][^\s]*)?$";
/// A target URL's length in the schema; the orchestrator holds it to `limits::MAX_URL_LEN`.
const MAX_URL_CHARS: usize = 2048;

/// One threshold, e.g. `{threshold: "p99 < 250ms"}` or `{threshold: "error_rate < 1%",
/// abortOnFail: true, delay: "10s"}`. The expression's grammar is checked by the orchestrator
/// when the test is created (a refusal names `thresholds[i]` in the status); the pattern here
/// catches the shape at `kubectl apply`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("!has(self.delay) || (has(self.abortOnFail) && self.abortOnFail)").message("delay only applies with abortOnFail: true"))]
#[serde(rename_all = "camelCase")]
pub struct ThresholdSpec {
    /// `[<request>:] <metric> <op> <value>`: p99, p(99.9), median, mean, min, max (with us, ms
    /// or s), error_rate (a ratio or a %), rps, errors, checks_failed; <, <=, >, >=, ==, !=.
    #[schemars(
        length(min = 1, max = floodgate::thresholds::MAX_TEXT),
        regex(pattern = r"^[^<>=!]+(<=|>=|==|!=|<|>)[^<>=!]+$")
    )]
    pub threshold: String,
    /// Stop the test on every driver as soon as this threshold fails (evaluated live on the
    /// cumulative merged data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_on_fail: Option<bool>,
    /// How long after the start an abortOnFail threshold is first evaluated, e.g. 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\s*[0-9][0-9a-zµ. ]*$"), length(max = 64))]
    pub delay: Option<String>,
}

/// The thresholds' verdict and measured values, as the orchestrator evaluated them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdsStatus {
    /// passed, failed, not_evaluated (a threshold had no data) or pending (still running).
    pub verdict: String,
    /// The abortOnFail threshold that stopped the test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ThresholdResult>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdResult {
    pub threshold: String,
    /// passed, failed or no_data.
    pub state: String,
    /// In `unit`; absent with no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<f64>,
    /// ms, ratio, per_second or count.
    pub unit: String,
}

/// One rate stage of a LoadTest.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("self.rate == 0.0 || self.rate >= 0.0002777777777777778").message("a stage's rate is 0 (a pause) or at least one an hour"))]
#[serde(rename_all = "camelCase")]
pub struct RateStage {
    /// The stage's length in milliseconds; required, above 0.
    #[schemars(range(min = 1, max = limits::MAX_DURATION_MS))]
    pub duration_ms: u64,
    /// Requests/s per driver at the stage's end.
    #[schemars(range(min = 0.0, max = limits::MAX_RATE))]
    pub rate: f64,
}

/// `httpVersion`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum HttpVersion {
    #[serde(rename = "1.1")]
    Http11,
    #[serde(rename = "2")]
    Http2,
}

impl From<HttpVersion> for floodgate::protocol::HttpVersion {
    fn from(v: HttpVersion) -> Self {
        match v {
            HttpVersion::Http11 => Self::Http11,
            HttpVersion::Http2 => Self::Http2,
        }
    }
}

/// `tls`: trust and names for an https:// target.
#[derive(Clone, Debug, Deserialize, Serialize, KubeSchema, PartialEq, Default)]
#[x_kube(validation = Rule::new("!has(self.caPem) || !has(self.caFrom)").message("give tls.caPem or tls.caFrom, not both"))]
#[serde(rename_all = "camelCase")]
pub struct LoadTestTls {
    /// CA certificates (PEM) to trust instead of the drivers' system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_CA_PEM_BYTES))]
    pub ca_pem: Option<String>,
    /// caPem kept in a ConfigMap of the LoadTest's namespace, read when the test starts; the
    /// LoadTest stays Pending until the ConfigMap and its key exist. Not with caPem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_from: Option<FromConfigMap>,
    /// Accept any certificate (test environments only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// The name sent in SNI and checked against the certificate, instead of the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::MAX_SERVER_NAME_LEN))]
    pub server_name: Option<String>,
}

/// How a LoadTest's totals are shared among its drivers.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SplitBy {
    Capacity,
    Equal,
}

impl From<SplitBy> for floodgate::orchestrator::split::SplitBy {
    fn from(s: SplitBy) -> Self {
        match s {
            SplitBy::Capacity => Self::Capacity,
            SplitBy::Equal => Self::Equal,
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TestType {
    Tsunami,
    Avalanche,
}

impl TestType {
    /// The name the REST API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            TestType::Tsunami => "tsunami",
            TestType::Avalanche => "avalanche",
        }
    }
}

/// Phases only move forward: Pending → Scaling → Running → Succeeded | Failed.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum Phase {
    #[default]
    Pending,
    Scaling,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// Latency and counts, over all drivers or for one. A latency is absent when it cannot be
/// given exactly (a median cannot be merged from summaries of other implementations' drivers).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub achieved_rps: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_ms: Option<f64>,
    /// Midpoint of the fullest 0.1 ms bin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// p99 of how late paced requests left against their due instants (merged over the
    /// drivers); absent when unpaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p99_ms: Option<f64>,
}

/// How far apart the drivers sent their first requests (issue 13).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartSkewStatus {
    /// Latest first send minus earliest, on the orchestrator's clock.
    pub skew_ms: f64,
    /// How far the drivers' clock corrections may be off, added over the two that set the
    /// skew; absent when one of them has no measured offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_ms: Option<f64>,
    /// Drivers that sent a first request.
    pub drivers: u32,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverProgress {
    pub id: String,
    /// waiting, running, done, lost or refused.
    pub state: String,
    /// Requests it was told to send: its share when the LoadTest gives totalRequests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// p50 of its schedule lag (how late its sends left against their due instants); absent
    /// when unpaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p50_ms: Option<f64>,
    /// p99 of its schedule lag; absent when unpaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p99_ms: Option<f64>,
    /// The latest of its sends against its due instant; absent when unpaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_max_ms: Option<f64>,
    /// Its first send after the earliest driver's, on the orchestrator's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_offset_ms: Option<f64>,
}

/// A condition in the usual Kubernetes shape.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadTestStatus {
    #[serde(default)]
    pub phase: Phase,
    /// The orchestrator's test ID, once the test was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_id: Option<String>,
    #[serde(default)]
    pub drivers_wanted: u32,
    #[serde(default)]
    pub drivers_registered: u32,
    /// "registered/wanted", for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drivers_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<DriverProgress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Stats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_skew: Option<StartSkewStatus>,
    /// A mix's figures by request name, over all drivers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_MIX_ENTRIES))]
    pub by_request: Vec<RequestProgress>,
    /// The thresholds' verdict and values, when the LoadTest has thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdsStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// What an operator that lost its store needs to take the running test over, written
    /// before the test's trigger. Read leniently: a record that does not parse is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub run: Option<RunRecord>,
    /// The pace the operator set, the way the spec gives it (issue 13): the spec's at the
    /// start, then each value of a live change it made. Read leniently, as `run` is.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub rate: Option<RateStatus>,
    /// The test's live rate changes (the operator's and any made through the REST API or
    /// the CLI), as the drivers applied them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_RATE_CHANGES))]
    pub rate_changes: Vec<RateChangeStatus>,
    /// The lost drivers whose unsent share was handed to others (issue 13, item 2), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_RATE_CHANGES))]
    pub hand_overs: Vec<crate::hand_over::HandOverStatus>,
}

/// A running LoadTest's pace as the operator set it (`status.rate`): one of `delayMs`,
/// `throughputPerDriver` and `totalRate`, the spec's own field.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_per_driver: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rate: Option<f64>,
    /// Live rate changes the test has had.
    #[serde(default)]
    pub changes: u32,
    /// A pace from the spec the orchestrator refused (the `RateChanged` condition says why):
    /// not asked for again until the spec's pace changes. Written as null when there is none,
    /// so that the status's merge patch removes it.
    #[serde(default)]
    pub refused: Option<PaceValue>,
}

/// One of a spec's pace fields with its value.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaceValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_per_driver: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rate: Option<f64>,
}

/// One live rate change (`status.rateChanges[]`), on the orchestrator's clock.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateChangeStatus {
    /// 1 for the test's first change.
    pub seq: u64,
    /// The instant every driver was to switch at, Unix milliseconds.
    pub at_ms: u64,
    /// The new pace over all drivers, requests/s.
    pub total_rate: f64,
    /// The drivers told to switch.
    pub drivers: u32,
    /// The drivers that reported the switch.
    pub switched: u32,
    /// Latest switch minus earliest, once two or more drivers reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_skew_ms: Option<f64>,
}

/// The running test as a successor needs it: who runs it, since when, and where on the
/// metrics topic its reports begin (read before the trigger was published).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The orchestrator's test ID (the LoadTest's UID).
    #[schemars(length(max = 256))]
    pub test_id: String,
    /// The participants' driver IDs.
    #[serde(default)]
    #[schemars(length(max = limits::MAX_DRIVERS))]
    pub drivers: Vec<String>,
    /// The start instant the trigger carried, in Unix milliseconds.
    #[serde(default)]
    pub start_at_ms: u64,
    /// The Kafka topic the drivers report on.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub metrics_topic: String,
    /// A LoadTest given in totalRequests: each driver's share at the start, so that a
    /// successor judges each part by it (capacities heard later could share it differently).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = limits::MAX_DRIVERS))]
    pub shares: BTreeMap<String, u64>,
    /// Each partition of the metrics topic with the offset its next message had before the
    /// trigger.
    #[serde(default)]
    #[schemars(length(max = MAX_RECORDED_PARTITIONS))]
    pub metrics_from: Vec<PartitionOffset>,
}

/// Partitions a run record may list (the metrics topic has one).
pub const MAX_RECORDED_PARTITIONS: usize = 64;

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionOffset {
    pub partition: i32,
    pub offset: i64,
}

/// A status field from outside (anyone who may write the status): a value that does not parse
/// is taken as absent, so one bad record never makes the whole LoadTest unreadable.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// The CRD as YAML, exactly as committed in `crds/`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    let mut crd = serde_json::to_value(LoadTest::crd())
        .map_err(<serde_yaml::Error as serde::ser::Error>::custom)?;
    strip_unknown_formats(&mut crd);
    serde_yaml::to_string(&crd)
}

/// Removes the `format`s schemars writes for Rust integer types (`uint32`, `uint64`…), which
/// the API server does not know and warns about on every apply; the ranges stay.
fn strip_unknown_formats(v: &mut serde_json::Value) {
    const KNOWN: [&str; 4] = ["int32", "int64", "float", "double"];
    match v {
        serde_json::Value::Object(map) => {
            let unknown = map.get("format").and_then(|f| f.as_str()).is_some_and(|f| {
                f.starts_with("uint") || f.starts_with("int") && !KNOWN.contains(&f)
            });
            if unknown {
                map.remove("format");
            }
            map.values_mut().for_each(strip_unknown_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_unknown_formats),
        _ => {}
    }
}

/// A request header whose value is looked up when the test starts.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretHeader {
    /// The header name, e.g. Authorization.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    pub value_from: HeaderValueFrom,
}

/// Where a secret header's value comes from: exactly one of the two.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HeaderValueFrom {
    /// A key of a Secret in the LoadTest's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// A variable of the operator's environment; only names starting with FLOODGATE_HEADER_
    /// may be read, so a LoadTest cannot extract the operator's own settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^FLOODGATE_HEADER_[A-Z0-9_]+$"))]
    pub env: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// A value kept in a ConfigMap of the LoadTest's namespace (`tls.caFrom`, `mix[i].bodyFrom`).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FromConfigMap {
    pub config_map_key_ref: ConfigMapKeyRef,
}

/// A key of a ConfigMap in the LoadTest's namespace.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct ConfigMapKeyRef {
    /// The ConfigMap's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key in its data (or binaryData, if UTF-8 text).
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// A small valid LoadTest `ping` in namespace `load` with UID `uid-1`, for tests.
#[cfg(test)]
pub(crate) fn sample_loadtest() -> LoadTest {
    let mut lt = LoadTest::new(
        "ping",
        LoadTestSpec {
            target_url: Some("http://t/".into()),
            mix: None,
            checks: None,
            method: None,
            headers: Default::default(),
            secret_headers: vec![],
            body: None,
            test_type: TestType::Avalanche,
            delay_ms: None,
            requests_per_driver: Some(10),
            duration_ms: None,
            stages: None,
            start_rate: None,
            throughput_per_driver: None,
            total_requests: None,
            total_rate: None,
            split: None,
            fail_safe_ms: None,
            drivers: 3,
            concurrency: None,
            timeout_ms: None,
            driver_image: None,
            driver_resources: None,
            thresholds: vec![],
            http_version: None,
            streams_per_connection: None,
            tls: None,
        },
    );
    lt.metadata.namespace = Some("load".into());
    lt.metadata.uid = Some("uid-1".into());
    lt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_crd_is_current() {
        let generated = crd_yaml().expect("serializes");
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        for path in [
            "crds/loadtests.floodgate.dev.yaml",
            "charts/floodgate/crds/loadtests.floodgate.dev.yaml",
        ] {
            let committed = std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_default();
            assert!(
                committed == generated,
                "{path} is stale: run `make generate` (cargo run -p floodgate-operator --bin crdgen)"
            );
        }
    }

    /// Issue 13: every spec field but the pace is immutable, by a rule of its own naming it;
    /// the pace fields may change value, not be added or removed.
    #[test]
    fn every_spec_field_but_the_pace_is_immutable_by_a_rule_naming_it() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(LoadTest::crd()).expect("json");
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let properties: Vec<&String> = spec["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .collect();
        assert!(properties.len() > 20, "{properties:?}");
        let rules = spec["x-kubernetes-validations"].as_array().expect("rules");
        let by_path = |name: &str| -> Vec<&serde_json::Value> {
            rules
                .iter()
                .filter(|r| r["fieldPath"] == format!(".{name}"))
                .collect()
        };
        const CEL_RESERVED: [&str; 18] = [
            "as",
            "break",
            "const",
            "continue",
            "else",
            "for",
            "function",
            "if",
            "import",
            "let",
            "loop",
            "package",
            "namespace",
            "return",
            "var",
            "void",
            "while",
            "in",
        ];
        for name in properties {
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric())
                    && !CEL_RESERVED.contains(&name.as_str()),
                "{name} would need escaping in CEL"
            );
            let rules = by_path(name);
            let rule = |r: &serde_json::Value| r["rule"].as_str().unwrap_or("").to_string();
            let texts: Vec<String> = rules.iter().map(|r| rule(r)).collect();
            let present = format!("has(self.{name}) == has(oldSelf.{name})");
            if PACE_FIELDS.contains(&name.as_str()) {
                assert!(texts.contains(&present), "{name}: {texts:?}");
                assert!(
                    !texts
                        .iter()
                        .any(|t| t.contains(&format!("self.{name} == oldSelf.{name}"))
                            && !t.contains("Tsunami")),
                    "{name} may change: {texts:?}"
                );
            } else {
                let found = rules
                    .iter()
                    .find(|r| rule(r).contains(&format!("self.{name} == oldSelf.{name}")))
                    .unwrap_or_else(|| panic!("{name} has no immutability rule: {texts:?}"));
                let same = rule(found);
                let required = spec["required"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|n| n == name.as_str()));
                assert!(required || same.contains(&present), "{name}: {same}");
                let message = found["message"].as_str().unwrap_or("");
                assert!(
                    message.contains(&format!("spec.{name} cannot change")),
                    "{name}: {message}"
                );
            }
        }
    }

    #[test]
    fn the_schema_carries_ranges_and_rules() {
        let yaml = crd_yaml().expect("serializes");
        for needle in [
            "minimum: 2",
            "maximum: 8",
            "x-kubernetes-validations",
            "self.drivers == oldSelf.drivers",
            "has(self.totalRate) == has(oldSelf.totalRate)",
            "shortNames",
            "subresources",
            "status: {}",
        ] {
            assert!(yaml.contains(needle), "CRD lacks {needle}:\n{yaml}");
        }
    }
}
