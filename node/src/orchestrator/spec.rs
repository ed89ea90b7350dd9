//! What a user asks for when creating a test, validated field by field.
//!
//! Strict where the wire protocol is liberal: this is user input, so an unknown field or a
//! wrong type is an error that names the field, not something to guess around.

pub use super::spec_mix::{checked_mix, MixSpec};
use crate::http::{self, Part};
use crate::protocol::limits::{self, Caps, MAX_DELAY_MS, MAX_DRIVERS, MAX_TIMEOUT_MS, MIN_DRIVERS};
use crate::protocol::mix::Checks;
use crate::protocol::{
    HttpTarget, HttpVersion, RateStage, TestConfig, TestType, TlsSettings, Transport,
};
use crate::thresholds::{self, Threshold};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A validation failure naming the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// The request body of `POST /api/v1/tests`, as typed by a user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpecInput {
    pub test_type: Option<String>,
    pub delay_ms: Option<f64>,
    pub requests_per_driver: Option<u64>,
    pub throughput_per_driver: Option<f64>,
    pub target_url: Option<String>,
    pub method: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    /// Names of headers whose values are secret besides the ones that always are
    /// (crate::secrets::ALWAYS_SECRET): shown redacted in every view and report.
    pub secret_headers: Option<Vec<String>>,
    pub body: Option<String>,
    pub concurrency: Option<u64>,
    pub timeout_ms: Option<u64>,
    /// How many drivers take part (2–8); all alive ones (up to 8) when absent.
    pub drivers: Option<u64>,
    /// Exactly these drivers take part.
    pub driver_ids: Option<Vec<String>>,
    /// With `driver_ids`: an idle driver may join in a lost one's place (issue 13) only if its
    /// ID starts with this (the operator gives its driver Deployment's pod prefix); without
    /// it, such a test is re-split among its own drivers only.
    pub replacement_prefix: Option<String>,
    /// Create and trigger in one call.
    pub trigger: Option<bool>,
    /// Pass/fail expressions on the merged data: each a string (`"p99 < 250ms"`) or an object
    /// `{"threshold": "...", "abort_on_fail": true, "delay": "10s"}` (crate::thresholds).
    pub thresholds: Option<Vec<serde_json::Value>>,
    /// A time-bound test instead of `requests_per_driver` (issue 12): a duration such as
    /// `"30s"` or `"2m 30s"`, or `duration_ms`.
    pub duration: Option<String>,
    pub duration_ms: Option<u64>,
    /// Rate stages (requests/s per driver, each a linear ramp from the previous stage's rate);
    /// they imply the duration.
    pub stages: Option<Vec<StageInput>>,
    /// The rate the first stage ramps from (default 0).
    pub start_rate: Option<f64>,
    /// `"1.1"` (default) or `"2"` (h2 via ALPN over https://, h2c prior knowledge over http://).
    pub http_version: Option<HttpVersion>,
    /// Concurrent streams per HTTP/2 connection (default 1); `concurrency` stays connections.
    pub streams_per_connection: Option<u64>,
    /// How an https:// target's certificate is checked.
    pub tls: Option<TlsInput>,
    /// A request mix instead of `target_url`/`method`/`headers`/`body` (issue 12).
    pub mix: Option<Vec<MixSpec>>,
    /// What a response must look like to count as a success (default: a 2xx status).
    pub checks: Option<Checks>,
    /// Requests over all participants, shared by capacity, instead of `requests_per_driver`
    /// (issue 13).
    pub total_requests: Option<u64>,
    /// Requests per second over all participants, shared as the count is, instead of
    /// `delay_ms` (Tsunami) or `throughput_per_driver` (Avalanche).
    pub total_rate: Option<f64>,
    /// How totals are shared: `capacity` (default) or `equal`.
    pub split: Option<super::split::SplitBy>,
    /// A driver that hears neither the orchestrator nor a majority of the participants for
    /// this long stops sending (issue 13); 0 turns it off. Default 15 s.
    pub fail_safe_ms: Option<u64>,
}

/// One rate stage as typed by a user: `{"duration": "30s", "rate": 100}` (or `duration_ms`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    pub duration: Option<String>,
    pub duration_ms: Option<u64>,
    pub rate: Option<f64>,
}

/// `tls` as a user types it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsInput {
    /// CA certificates (PEM) to trust instead of the system roots.
    pub ca_pem: Option<String>,
    /// Accept any certificate (test environments only).
    pub insecure_skip_verify: Option<bool>,
    /// SNI and certificate name instead of the URL's host.
    pub server_name: Option<String>,
}

/// A validated test specification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSpec {
    pub test_type: TestType,
    /// Milliseconds between two consecutive requests of one driver (Tsunami only).
    pub delay_ms: f64,
    pub requests_per_driver: u64,
    /// Requests per second per driver; `None` is uncapped.
    pub throughput_per_driver: Option<f64>,
    pub target_url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    /// Header names marked secret by the user (stored rows from before have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_headers: Vec<String>,
    pub body: Option<String>,
    pub concurrency: u64,
    pub timeout_ms: u64,
    pub drivers: Option<u64>,
    pub driver_ids: Option<Vec<String>>,
    /// See [`TestSpecInput::replacement_prefix`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_prefix: Option<String>,
    /// A time-bound test's duration (the stages' sum when staged); `None` is count-bound, and
    /// `requests_per_driver` is then the count. Time-bound, it is the count the pace has due
    /// in the duration, or 0 when unpaced (as many as fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<RateStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_rate: Option<f64>,
    /// Evaluated by the orchestrator on merged data; never sent to the drivers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    #[serde(default, skip_serializing_if = "HttpVersion::is_default")]
    pub http_version: HttpVersion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams_per_connection: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// A request mix; `target_url` is then its first entry's URL (every entry shares its
    /// origin), and `method`, `headers` and `body` are unused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mix: Vec<MixSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
    /// What the test gave in totals; the per-driver figures above are then the means over its
    /// participants, once they are known (`spec_total::resolve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<super::spec_total::Totals>,
    /// See [`TestSpecInput::fail_safe_ms`]; a row stored before it had the default.
    #[serde(default = "default_fail_safe_ms")]
    pub fail_safe_ms: u64,
}

fn default_fail_safe_ms() -> u64 {
    limits::DEFAULT_FAIL_SAFE_MS
}

/// " (this deployment's cap)" when a cap is below its hard limit, so that the error says why
/// a figure the documentation allows is refused here.
fn cap_note<T: PartialOrd>(cap: T, hard: T) -> &'static str {
    if cap < hard {
        " (this deployment's cap)"
    } else {
        ""
    }
}

impl TestSpecInput {
    /// Validates against the hard limits alone.
    pub fn validate(self) -> Result<TestSpec, FieldError> {
        self.validate_with(&Caps::HARD)
    }

    /// Validates against a deployment's caps (at most the hard limits). A test that names no
    /// rate on a deployment that caps the rate is paced at the cap.
    pub fn validate_with(self, caps: &Caps) -> Result<TestSpec, FieldError> {
        let test_type = match self.test_type.as_deref() {
            None => {
                return Err(FieldError::new(
                    "test_type",
                    "is required: tsunami or avalanche",
                ))
            }
            Some(t) => TestType::parse(t).ok_or_else(|| {
                FieldError::new("test_type", format!("{t:?} is not tsunami or avalanche"))
            })?,
        };
        let delay_ms = self.delay_ms.unwrap_or(0.0);
        if !delay_ms.is_finite() || !(0.0..=MAX_DELAY_MS).contains(&delay_ms) {
            return Err(FieldError::new(
                "delay_ms",
                format!("must be between 0 and {MAX_DELAY_MS} ms"),
            ));
        }
        let totals = super::spec_total::check(&super::spec_total::Given {
            test_type,
            total_requests: self.total_requests,
            total_rate: self.total_rate,
            split: self.split,
            requests_per_driver: self.requests_per_driver,
            throughput_per_driver: self.throughput_per_driver,
            delay_ms,
            time_bound: self.duration.is_some()
                || self.duration_ms.is_some()
                || self.stages.is_some(),
            staged: self.stages.is_some(),
        })?;
        let rate_in_total = totals.as_ref().is_some_and(|t| t.rate.is_some());
        match test_type {
            TestType::Tsunami
                if delay_ms <= 0.0
                    && !rate_in_total
                    && !super::spec_timing::staged(&self.stages) =>
            {
                return Err(FieldError::new(
                    "delay_ms",
                    "a Tsunami test needs a delay > 0 ms between requests",
                ))
            }
            TestType::Avalanche if delay_ms > 0.0 => {
                return Err(FieldError::new(
                    "delay_ms",
                    "only Tsunami tests take a delay; cap an Avalanche with throughput_per_driver",
                ))
            }
            _ => {}
        }
        let timing = super::spec_timing::timing(
            self.duration.as_deref(),
            self.duration_ms,
            self.stages.as_deref(),
            self.start_rate,
            caps,
        )?;
        if let Some(t) = &timing {
            super::spec_timing::check_exclusive(
                t,
                self.requests_per_driver,
                self.throughput_per_driver,
                delay_ms,
            )?;
        }
        let requests_per_driver = match &timing {
            // Checked against the caps below, once the pace is known.
            Some(_) => 1,
            // The mean share, once the participants are known (each checked then).
            None if totals.as_ref().is_some_and(|t| t.requests.is_some()) => 1,
            None => self
                .requests_per_driver
                .ok_or_else(|| FieldError::new("requests_per_driver", "is required"))?,
        };
        if !(1..=caps.requests).contains(&requests_per_driver) {
            return Err(FieldError::new(
                "requests_per_driver",
                format!(
                    "must be between 1 and {}{}",
                    caps.requests,
                    cap_note(caps.requests, Caps::HARD.requests)
                ),
            ));
        }
        let throughput_per_driver = match self.throughput_per_driver {
            Some(r) => {
                limits::check_rate(r).map_err(|e| {
                    FieldError::new(
                        "throughput_per_driver",
                        format!("{e} (leave it out for no cap)"),
                    )
                })?;
                if r > caps.rate {
                    return Err(FieldError::new(
                        "throughput_per_driver",
                        format!(
                            "must be at most {} requests/s (this deployment's cap)",
                            caps.rate
                        ),
                    ));
                }
                Some(r)
            }
            // A staged test's stages are its rate (each checked against the cap), and a total
            // rate is its shares' (each checked when the participants are known).
            None => {
                (caps.caps_rate() && !rate_in_total && !super::spec_timing::staged(&self.stages))
                    .then_some(caps.rate)
            }
        };
        let mix = super::spec_mix::validate(
            self.mix,
            self.checks.as_ref(),
            super::spec_mix::Single {
                target_url: self.target_url.as_deref(),
                method: self.method.as_deref(),
                has_headers: self.headers.is_some(),
                has_body: self.body.is_some(),
            },
        )?;
        let target_url = match mix.first() {
            Some(first) => first.url.clone(),
            None => self.target_url.ok_or_else(|| {
                FieldError::new("target_url", "is required, e.g. http://127.0.0.1:8080/ping")
            })?,
        };
        let method = self
            .method
            .unwrap_or_else(|| "GET".to_string())
            .to_ascii_uppercase();
        let headers = self.headers.unwrap_or_default();
        let header_list: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        http::check(&target_url, &method, &header_list).map_err(|e| {
            let field = match e.part {
                Part::Url => "target_url",
                Part::Method => "method",
                Part::Header => "headers",
                Part::Tls => "tls",
            };
            FieldError::new(field, e.message)
        })?;
        let secret_headers = self.secret_headers.unwrap_or_default();
        let mut all_headers = headers
            .keys()
            .chain(mix.iter().flat_map(|m| m.headers.keys()));
        if let Some(name) = secret_headers
            .iter()
            .find(|n| !all_headers.any(|k| k.eq_ignore_ascii_case(n)))
        {
            return Err(FieldError::new(
                "secret_headers",
                format!("names {name:?}, which is not one of the headers"),
            ));
        }
        // The default stays within a lower cap, so a spec that names none is never refused.
        let concurrency = self
            .concurrency
            .unwrap_or(limits::DEFAULT_CONCURRENCY.min(caps.concurrency));
        if !(1..=caps.concurrency).contains(&concurrency) {
            return Err(FieldError::new(
                "concurrency",
                format!(
                    "must be between 1 and {}{}",
                    caps.concurrency,
                    cap_note(caps.concurrency, Caps::HARD.concurrency)
                ),
            ));
        }
        let http_version = self.http_version.unwrap_or_default();
        let tls = self.tls.map(|t| TlsSettings {
            ca_pem: t.ca_pem,
            insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
            server_name: t.server_name,
        });
        if tls.is_some() && !http::Url::parse(&target_url).is_ok_and(|u| u.tls) {
            return Err(FieldError::new(
                "tls",
                "applies to https:// targets only; target_url is http://",
            ));
        }
        crate::protocol::transport::check(
            http_version,
            self.streams_per_connection,
            concurrency,
            tls.as_ref(),
        )
        .map_err(|e| FieldError::new(e.field, e.message))?;
        let fail_safe_ms =
            limits::check_fail_safe_ms(self.fail_safe_ms.unwrap_or(limits::DEFAULT_FAIL_SAFE_MS))
                .map_err(|e| FieldError::new("fail_safe_ms", e))?;
        let timeout_ms = self.timeout_ms.unwrap_or(limits::DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(FieldError::new(
                "timeout_ms",
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            ));
        }
        if let Some(n) = self.drivers {
            if !(MIN_DRIVERS as u64..=MAX_DRIVERS as u64).contains(&n) {
                return Err(FieldError::new(
                    "drivers",
                    format!("must be between {MIN_DRIVERS} and {MAX_DRIVERS}"),
                ));
            }
        }
        if let Some(ids) = &self.driver_ids {
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            if unique.len() != ids.len() || ids.iter().any(|i| i.trim().is_empty()) {
                return Err(FieldError::new(
                    "driver_ids",
                    "must be distinct, non-empty driver IDs",
                ));
            }
            if let Some(e) = ids.iter().find_map(|i| limits::check_id(i).err()) {
                return Err(FieldError::new("driver_ids", format!("an ID {e}")));
            }
            if !(MIN_DRIVERS..=MAX_DRIVERS).contains(&ids.len()) {
                return Err(FieldError::new(
                    "driver_ids",
                    format!("must name between {MIN_DRIVERS} and {MAX_DRIVERS} drivers"),
                ));
            }
            if self.drivers.is_some_and(|n| n as usize != ids.len()) {
                return Err(FieldError::new(
                    "drivers",
                    "disagrees with the number of driver_ids",
                ));
            }
        }
        if let Some(p) = &self.replacement_prefix {
            if p.is_empty() {
                return Err(FieldError::new("replacement_prefix", "must not be empty"));
            }
            limits::check_id(p).map_err(|e| FieldError::new("replacement_prefix", e))?;
        }
        let thresholds = thresholds::from_json(self.thresholds.as_deref().unwrap_or_default())
            .map_err(|e| FieldError::new(&e.field, e.message))?;
        // The request names a threshold may be scoped to: the mix's; a test without one has none.
        let names: Vec<&str> = mix.iter().map(|m| m.name.as_str()).collect();
        let request_names: Option<&[&str]> = (!names.is_empty()).then_some(&names[..]);
        thresholds::check_scopes(&thresholds, request_names)
            .map_err(|e| FieldError::new(&e.field, e.message))?;
        let mut spec = TestSpec {
            test_type,
            delay_ms,
            requests_per_driver,
            throughput_per_driver,
            target_url,
            method,
            headers,
            secret_headers,
            body: self.body,
            concurrency,
            timeout_ms,
            drivers: self.drivers,
            driver_ids: self.driver_ids,
            replacement_prefix: self.replacement_prefix,
            http_version,
            streams_per_connection: self.streams_per_connection,
            tls,
            thresholds,
            duration_ms: None,
            stages: Vec::new(),
            start_rate: None,
            mix,
            checks: self.checks,
            totals,
            fail_safe_ms,
        };
        if let Some(t) = timing {
            super::spec_timing::apply(&mut spec, t, caps)?;
        }
        Ok(spec)
    }
}

impl TestSpec {
    /// The spec as it may be shown: secret header values redacted.
    pub fn shown(&self) -> TestSpec {
        TestSpec {
            headers: crate::secrets::redact(&self.headers, &self.secret_headers),
            mix: self
                .mix
                .iter()
                .map(|m| MixSpec {
                    headers: crate::secrets::redact(&m.headers, &self.secret_headers),
                    ..m.clone()
                })
                .collect(),
            ..self.clone()
        }
    }

    /// The `test_config` message for this spec.
    pub fn to_config(
        &self,
        test_id: &str,
        drivers: &[String],
        orchestrator_id: &str,
    ) -> TestConfig {
        let mix: Vec<_> = self.mix.iter().map(MixSpec::to_wire).collect();
        TestConfig {
            test_id: test_id.to_string(),
            test_type: self.test_type,
            delay_us: (self.delay_ms * 1000.0).round() as u64,
            // Time-bound and unpaced, there is no count (seed drivers use their own default).
            requests: Some(self.requests_per_driver)
                .filter(|&n| n > 0 || self.duration_ms.is_none()),
            // With a mix, its first entry: what a driver that knows no mix sends.
            target: Some(match mix.first() {
                Some(w) => HttpTarget {
                    url: w.url.clone(),
                    method: w.method.clone(),
                    headers: w.headers.clone(),
                    body: w.body.clone(),
                },
                None => HttpTarget {
                    url: self.target_url.clone(),
                    method: self.method.clone(),
                    headers: self
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    body: self.body.clone(),
                },
            }),
            throughput_per_driver: self.throughput_per_driver,
            concurrency: Some(self.concurrency),
            timeout_ms: Some(self.timeout_ms),
            drivers: drivers.to_vec(),
            orchestrator_id: Some(orchestrator_id.to_string()),
            time_bound: self.time_bound(),
            transport: Transport {
                http_version: self.http_version,
                streams_per_connection: self.streams_per_connection,
                tls: self.tls.clone(),
            },
            mix,
            checks: self.checks.clone(),
            shares: Default::default(),
            fail_safe_ms: Some(self.fail_safe_ms),
        }
    }
}

/// Parses a JSON body into a spec input, naming the field of any type error.
pub fn parse_input(body: &[u8]) -> Result<TestSpecInput, FieldError> {
    parse_json(body)
}

/// A request body as JSON object `T`; an error names the field it is about (`body` for the
/// whole). Also for `PATCH /api/v1/tests/{id}` (a rate change).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, FieldError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(FieldError::new("body", "is empty; send a JSON object"));
    }
    // Through a Value first: serde would otherwise accept a JSON array as positional fields.
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| FieldError::new("body", format!("is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(FieldError::new("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        // serde names an unknown field in its message but not in the path.
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or("");
            return FieldError::new(name, format!("is not a known field ({msg})"));
        }
        if path == "." {
            FieldError::new("body", msg)
        } else {
            FieldError::new(&path, msg)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str) -> Result<TestSpec, FieldError> {
        parse_input(body.as_bytes())?.validate()
    }

    const OK: &str = r#"{"test_type":"tsunami","delay_ms":10,"requests_per_driver":100,"target_url":"http://127.0.0.1:1/ping"}"#;

    #[test]
    fn a_minimal_spec_gets_defaults() {
        let s = check(OK).expect("valid");
        assert_eq!(
            (s.test_type, s.concurrency, s.timeout_ms, s.method.as_str()),
            (TestType::Tsunami, 50, 10_000, "GET")
        );
        let c = s.to_config("t", &["a".into(), "b".into()], "o");
        assert_eq!(c.drivers.len(), 2);
        assert_eq!(c.delay_us, 10_000);
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (r#"{}"#, "test_type"),
            (r#"{"test_type":"blizzard"}"#, "test_type"),
            (
                r#"{"test_type":"tsunami","requests_per_driver":1,"target_url":"http://h/"}"#,
                "delay_ms",
            ),
            (
                r#"{"test_type":"avalanche","delay_ms":5,"requests_per_driver":1,"target_url":"http://h/"}"#,
                "delay_ms",
            ),
            (
                r#"{"test_type":"avalanche","delay_ms":-1,"requests_per_driver":1,"target_url":"http://h/"}"#,
                "delay_ms",
            ),
            (
                r#"{"test_type":"avalanche","target_url":"http://h/"}"#,
                "requests_per_driver",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":0,"target_url":"http://h/"}"#,
                "requests_per_driver",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":"ten","target_url":"http://h/"}"#,
                "requests_per_driver",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":-5,"target_url":"http://h/"}"#,
                "requests_per_driver",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5}"#,
                "target_url",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"ftp://h/"}"#,
                "target_url",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","throughput_per_driver":0}"#,
                "throughput_per_driver",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","concurrency":0}"#,
                "concurrency",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","timeout_ms":0}"#,
                "timeout_ms",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","fail_safe_ms":500}"#,
                "fail_safe_ms",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","fail_safe_ms":3600001}"#,
                "fail_safe_ms",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","drivers":9}"#,
                "drivers",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","drivers":1}"#,
                "drivers",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","driver_ids":["a","a"]}"#,
                "driver_ids",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","driver_ids":["a"]}"#,
                "driver_ids",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","method":"G T"}"#,
                "method",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","headers":{"X":"a\r\nb"}}"#,
                "headers",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","requests":5}"#,
                "requests",
            ),
            // Issue 10, item 5: figures that would make a driver panic converting them.
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","throughput_per_driver":1e-300}"#,
                "throughput_per_driver",
            ),
            (
                r#"{"test_type":"tsunami","delay_ms":1e300,"requests_per_driver":5,"target_url":"http://h/"}"#,
                "delay_ms",
            ),
            (
                &format!(
                    r#"{{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","driver_ids":["a","{}"]}}"#,
                    "b".repeat(limits::MAX_ID_LEN + 1)
                ),
                "driver_ids",
            ),
            // Issue 10, item 7: framing headers are the engine's.
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","method":"POST","headers":{"Content-Length":"0"},"body":"GET / HTTP/1.1\r\nHost: h\r\n\r\n"}"#,
                "headers",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","headers":{"Transfer-Encoding":"chunked"}}"#,
                "headers",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","headers":{"Connection":"close"}}"#,
                "headers",
            ),
            // Issue 12, item 6: a threshold that does not parse names its place.
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","thresholds":["p99 < 1s","p999x < 1s"]}"#,
                "thresholds[1]",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","thresholds":[{"threshold":"p99 < 1s","abort_on_fail":true,"delay":"soon"}]}"#,
                "thresholds[0].delay",
            ),
            (
                r#"{"test_type":"avalanche","requests_per_driver":5,"target_url":"http://h/","thresholds":"p99 < 1s"}"#,
                "thresholds",
            ),
            (r#"not json"#, "body"),
            (r#"{not json"#, "body"),
            (r#"{"test_type":"avalanche","#, "body"),
            (r#""#, "body"),
            (r#"[1]"#, "body"),
        ];
        for (body, field) in cases {
            let e = check(body).expect_err(body);
            assert_eq!(e.field, field, "{body}: {e}");
        }
    }

    #[test]
    fn a_deployment_s_caps_bound_a_spec_and_fill_in_its_rate() {
        let caps = Caps::new(Some(100), Some(8), Some(50.0)).expect("caps");
        let with = |field: &str, value: serde_json::Value| {
            let mut body = serde_json::json!({"test_type": "avalanche",
                "target_url": "http://h/", "requests_per_driver": 100});
            if !field.is_empty() {
                body[field] = value;
            }
            parse_input(body.to_string().as_bytes())
                .expect("json")
                .validate_with(&caps)
        };
        let s = with("", 0.into()).expect("within the caps");
        assert_eq!((s.concurrency, s.throughput_per_driver), (8, Some(50.0)));
        let s = with("throughput_per_driver", 20.into()).expect("below the cap");
        assert_eq!(s.throughput_per_driver, Some(20.0));
        for (field, value) in [
            ("requests_per_driver", 101),
            ("concurrency", 9),
            ("throughput_per_driver", 51),
        ] {
            let e = with(field, value.into()).expect_err(field);
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains("this deployment's cap"), "{e}");
        }
        // The hard limits alone: no rate filled in, and no cap named in the errors.
        assert_eq!(check(OK).expect("valid").throughput_per_driver, None);
    }

    #[test]
    fn transport_fields_are_validated_and_travel_in_the_config() {
        let with = |extra: serde_json::Value| {
            let mut body = serde_json::json!({"test_type": "avalanche",
                "target_url": "https://h/", "requests_per_driver": 10, "concurrency": 4});
            for (k, v) in extra.as_object().into_iter().flatten() {
                body[k] = v.clone();
            }
            parse_input(body.to_string().as_bytes())?.validate()
        };
        let s = with(
            serde_json::json!({"http_version": "2", "streams_per_connection": 16,
            "tls": {"insecure_skip_verify": true, "server_name": "localhost"}}),
        )
        .expect("valid");
        let c = s.to_config("t", &["a".into(), "b".into()], "o");
        assert_eq!(c.transport.http_version, HttpVersion::Http2);
        assert_eq!(c.transport.streams(), 16);
        assert!(c
            .transport
            .tls
            .as_ref()
            .is_some_and(|t| t.insecure_skip_verify));
        // A stored spec from before these fields reads as HTTP/1.1.
        let old: TestSpec = serde_json::from_value(serde_json::json!({"test_type": "AVALANCHE",
            "delay_ms": 0.0, "requests_per_driver": 1, "throughput_per_driver": null,
            "target_url": "http://h/", "method": "GET", "headers": {}, "body": null,
            "concurrency": 1, "timeout_ms": 1, "drivers": null, "driver_ids": null}))
        .expect("old row");
        assert_eq!((old.http_version, old.tls), (HttpVersion::Http11, None));
        for (extra, field) in [
            (serde_json::json!({"http_version": "3"}), "http_version"),
            (
                serde_json::json!({"streams_per_connection": 2}),
                "streams_per_connection",
            ),
            (
                serde_json::json!({"http_version": "2", "streams_per_connection": 0}),
                "streams_per_connection",
            ),
            (
                serde_json::json!({"tls": {"ca_pem": "not a pem"}}),
                "tls.ca_pem",
            ),
            (
                serde_json::json!({"tls": {"server_name": "a b"}}),
                "tls.server_name",
            ),
            (serde_json::json!({"tls": {"verify": false}}), "verify"),
            (
                serde_json::json!({"tls": {"insecure_skip_verify": "yes"}}),
                "tls.insecure_skip_verify",
            ),
        ] {
            let e = with(extra.clone()).expect_err(&extra.to_string());
            assert_eq!(e.field, field, "{extra}: {e}");
        }
        let mut plain = parse_input(
            br#"{"test_type":"avalanche","target_url":"http://h/","requests_per_driver":1,"tls":{"insecure_skip_verify":true}}"#,
        )
        .expect("json");
        plain.concurrency = Some(1);
        assert_eq!(plain.validate().expect_err("tls on http").field, "tls");
    }
}
