//! The REST API's JSON: the contract with the CLI, the dashboard and every other client. Built
//! from the orchestrator's views, so that the API's shape and the orchestrator's internals (its
//! store among them) can each change without the other noticing. States are the shared enums of
//! [`crate::model`]; counts and latency are the wire's and the statistics' value types.

use crate::model::{DriverState, Ended, ReportFormat, TestStatus};
pub use crate::orchestrator::hand_over::{HandOver, HandOverView, Taken};
pub use crate::orchestrator::rate_change::{RateChangeView, RateInput};
use crate::orchestrator::registry::DriverView;
use crate::orchestrator::spec::{MixSpec, TestSpec};
use crate::orchestrator::spec_total::Totals;
pub use crate::orchestrator::split::{Split, SplitBy};
use crate::orchestrator::view::{self, StageStats, TestView};
pub use crate::orchestrator::view::{DriverStart, StartSkew};
pub use crate::orchestrator::view_mix::RequestStats;
use crate::protocol::{
    Checks, ChecksFailed, ErrorCounts, GeneratorLoad, HttpVersion, RateStage, StatusClasses,
    TestType, TlsSettings,
};
use crate::stats::LatencyStats;
use crate::thresholds::{self, eval::Thresholds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A test: `GET /api/v1/tests/{id}`, and the element of `GET /api/v1/tests`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Test {
    pub id: String,
    pub status: TestStatus,
    pub reason: Option<String>,
    pub spec: Spec,
    pub drivers: Vec<String>,
    pub created_at_ms: u64,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    /// True once the numbers are final (a stopped test takes its drivers' last reports first).
    pub settled: bool,
    pub aggregate: Stats,
    pub per_driver: Vec<DriverStats>,
    /// Drivers that could not keep up, each named: their figures measure the load generator,
    /// not the target (issue 12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generator_warnings: Vec<String>,
    /// Each threshold's measured value and state, and the verdict (`passed`, `failed`,
    /// `not_evaluated`, or `pending` while the test runs); absent when the test has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    /// How a test given in totals was shared among its participants (issue 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// How far apart the drivers sent their first requests, on the orchestrator's clock, with
    /// the bound of the clock corrections it used (issue 13); absent before any sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_skew: Option<StartSkew>,
    /// Live rate changes (issue 13), in order: each as asked and planned (the instant every
    /// driver switches at, each one's new pace) and as each driver reported it applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_changes: Vec<RateChangeView>,
    /// Lost drivers' shares handed to others (issue 13), in order: who was lost, what it had
    /// reported sent, who took the rest at what pace, and how many requests it may have sent
    /// that no report counted (`unknown`, at most `unknown_max`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hand_overs: Vec<HandOverView>,
}

/// What the test was asked to do, validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub test_type: TestType,
    pub delay_ms: f64,
    pub requests_per_driver: u64,
    pub throughput_per_driver: Option<f64>,
    pub target_url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub concurrency: u64,
    pub timeout_ms: u64,
    pub drivers: Option<u64>,
    pub driver_ids: Option<Vec<String>>,
    /// With `driver_ids`: the ID prefix a lost driver's replacement must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_prefix: Option<String>,
    /// A time-bound test's duration (its stages' sum); absent for a count-bound test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<RateStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<thresholds::Stored>,
    #[serde(default, skip_serializing_if = "HttpVersion::is_default")]
    pub http_version: HttpVersion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams_per_connection: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// A request mix (secret header values redacted); `target_url` is its first entry's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mix: Vec<MixSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
    /// What the test gave in totals; the per-driver figures above are then the means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Totals>,
    /// A driver cut off this long (from the orchestrator and a majority) stops sending; 0: off.
    #[serde(default)]
    pub fail_safe_ms: u64,
}

/// Counters and latency over one driver or all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub requests_total: u64,
    pub sent: u64,
    pub responses: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    pub error_total: u64,
    pub status: StatusClasses,
    /// False when a driver reported no counts: its counts are unknown, not 0.
    pub counted: bool,
    pub achieved_rps: f64,
    pub progress: f64,
    pub elapsed_ms: u64,
    pub latency: LatencyStats,
    pub service_time: LatencyStats,
    /// How late paced requests left; empty (count 0) when unpaced.
    #[serde(default)]
    pub schedule_lag: LatencyStats,
    /// Present when the schedule lag is a large share of the latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_note: Option<String>,
    /// A staged test's stages: target and achieved rate of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageStats>,
    /// TCP connect time per connection opened (apart from request latency).
    #[serde(default, skip_serializing_if = "LatencyStats::is_empty")]
    pub connect_time: LatencyStats,
    /// TLS handshake time per TLS connection opened.
    #[serde(default, skip_serializing_if = "LatencyStats::is_empty")]
    pub tls_handshake: LatencyStats,
    /// TLS handshakes that resumed a session (of those in `tls_handshake`); absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tls_resumed: u64,
    /// The first transport error a driver saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Responses that failed a check, by kind.
    #[serde(default, skip_serializing_if = "ChecksFailed::is_empty")]
    pub checks_failed: ChecksFailed,
    /// A request mix's figures by request name, merged exactly over the drivers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_request: BTreeMap<String, RequestStats>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One participant's row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriverStats {
    pub driver_id: String,
    pub state: DriverState,
    pub report_seq: u64,
    pub report_age_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_format: Option<ReportFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<Ended>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub defaults: BTreeMap<String, serde_json::Value>,
    /// Its own load (CPU, schedule lag) and its saturation warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorLoad>,
    /// When its first request left, on the orchestrator's clock, and the clock offset used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DriverStart>,
    #[serde(flatten)]
    pub stats: Stats,
}

/// A driver: the element of `GET /api/v1/drivers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub id: String,
    pub address: String,
    pub alive: bool,
    pub heartbeat_age_ms: u64,
    pub test_id: Option<String>,
    pub heartbeats: u64,
    pub registered_at: String,
    pub agent: Option<String>,
    pub heartbeat_interval_ms: u64,
    pub timeout_ms: u64,
    /// The capacity it declared (cores, or its pod's CPU); absent if none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<f64>,
    /// Its clock minus the orchestrator's, estimated from the heartbeats it echoed, and the
    /// estimate's bound (half the least round trip seen); absent before any, and for another
    /// implementation's driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_bound_ms: Option<f64>,
}

impl From<&TestView> for Test {
    fn from(v: &TestView) -> Self {
        Self {
            id: v.id.clone(),
            status: v.status,
            reason: v.reason.clone(),
            spec: Spec::from(&v.spec),
            drivers: v.drivers.clone(),
            created_at_ms: v.created_at_ms,
            started_at_ms: v.started_at_ms,
            finished_at_ms: v.finished_at_ms,
            settled: v.settled,
            aggregate: Stats::from(&v.aggregate),
            per_driver: v.per_driver.iter().map(DriverStats::from).collect(),
            generator_warnings: v.generator_warnings.clone(),
            thresholds: v.thresholds.clone(),
            split: v.split.clone(),
            start_skew: v.start_skew,
            rate_changes: v.rate_changes.clone(),
            hand_overs: v.hand_overs.clone(),
        }
    }
}

impl From<&TestSpec> for Spec {
    fn from(s: &TestSpec) -> Self {
        Self {
            test_type: s.test_type,
            delay_ms: s.delay_ms,
            requests_per_driver: s.requests_per_driver,
            throughput_per_driver: s.throughput_per_driver,
            target_url: s.target_url.clone(),
            method: s.method.clone(),
            headers: crate::secrets::redact(&s.headers, &s.secret_headers),
            body: s.body.clone(),
            concurrency: s.concurrency,
            timeout_ms: s.timeout_ms,
            drivers: s.drivers,
            driver_ids: s.driver_ids.clone(),
            replacement_prefix: s.replacement_prefix.clone(),
            duration_ms: s.duration_ms,
            stages: s.stages.clone(),
            start_rate: s.start_rate,
            thresholds: s.thresholds.iter().cloned().map(Into::into).collect(),
            http_version: s.http_version,
            streams_per_connection: s.streams_per_connection,
            tls: s.tls.clone(),
            mix: s.shown().mix,
            checks: s.checks.clone(),
            // The shares are the view's `split`, once.
            totals: s.totals.clone().map(|t| Totals { shared: None, ..t }),
            fail_safe_ms: s.fail_safe_ms,
        }
    }
}

impl From<&view::Stats> for Stats {
    fn from(s: &view::Stats) -> Self {
        Self {
            requests_total: s.requests_total,
            sent: s.sent,
            responses: s.responses,
            ok: s.ok,
            errors: s.errors,
            error_total: s.error_total,
            status: s.status,
            counted: s.counted,
            achieved_rps: s.achieved_rps,
            progress: s.progress,
            elapsed_ms: s.elapsed_ms,
            latency: s.latency.clone(),
            service_time: s.service_time.clone(),
            schedule_lag: s.schedule_lag.clone(),
            lag_note: s.lag_note.clone(),
            stages: s.stages.clone(),
            connect_time: s.connect_time.clone(),
            tls_handshake: s.tls_handshake.clone(),
            tls_resumed: s.tls_resumed,
            first_error: s.first_error.clone(),
            checks_failed: s.checks_failed,
            by_request: s.by_request.clone(),
        }
    }
}

impl From<&view::DriverStats> for DriverStats {
    fn from(d: &view::DriverStats) -> Self {
        Self {
            driver_id: d.driver_id.clone(),
            state: d.state,
            report_seq: d.report_seq,
            report_age_ms: d.report_age_ms,
            report_format: d.report_format,
            ended_by: d.ended_by,
            reason: d.reason.clone(),
            defaults: d.defaults.clone(),
            generator: d.generator.clone(),
            start: d.start,
            stats: Stats::from(&d.stats),
        }
    }
}

impl From<&DriverView> for Driver {
    fn from(d: &DriverView) -> Self {
        Self {
            id: d.id.clone(),
            address: d.address.clone(),
            alive: d.alive,
            heartbeat_age_ms: d.heartbeat_age_ms,
            test_id: d.test_id.clone(),
            heartbeats: d.heartbeats,
            registered_at: d.registered_at.clone(),
            agent: d.agent.clone(),
            heartbeat_interval_ms: d.heartbeat_interval_ms,
            timeout_ms: d.timeout_ms,
            capacity: d.capacity,
            clock_offset_ms: d.clock.map(|c| c.offset_us as f64 / 1000.0),
            clock_bound_ms: d.clock.map(|c| c.bound_us as f64 / 1000.0),
        }
    }
}

/// The views as the API shows them.
pub fn tests(views: &[TestView]) -> Vec<Test> {
    views.iter().map(Test::from).collect()
}

pub fn drivers(views: &[DriverView]) -> Vec<Driver> {
    views.iter().map(Driver::from).collect()
}
