//! `test_config`: what to run. Read liberally from any implementation's orchestrator, written in
//! the configured [`SeedStyle`] plus exact extension fields that Floodgate's drivers prefer.

use super::lenient::{lenient_number, lenient_opt_f64, lenient_opt_u64, opt_id};
use super::limits;
use super::mix::{self, Checks, MixEntry};
use super::share::ConfigShare;
use super::style::{DelayUnit, SeedStyle, TypeCase};
use super::timing::TimeBound;
use super::transport::{Transport, TransportWire};
use super::ParseError;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;

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

    /// The name in the given spelling.
    pub fn spelled(self, case: TypeCase) -> &'static str {
        match (self, case) {
            (_, TypeCase::Upper) => self.as_wire(),
            (TestType::Tsunami, TypeCase::Title) => "Tsunami",
            (TestType::Avalanche, TypeCase::Title) => "Avalanche",
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
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
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

impl HttpTarget {
    /// A plain GET of `url`.
    pub fn get(url: &str) -> Self {
        Self {
            url: url.to_string(),
            method: default_method(),
            headers: Vec::new(),
            body: None,
        }
    }
}

/// `test_config` topic, as understood: every figure in one unit, `None` where the sender named
/// nothing (the driver then applies its documented defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct TestConfig {
    pub test_id: String,
    pub test_type: TestType,
    /// The gap between two consecutive requests of one driver (Tsunami), in microseconds.
    pub delay_us: u64,
    /// Requests per driver; `None` when the config named no count (one peer sends none).
    pub requests: Option<u64>,
    pub target: Option<HttpTarget>,
    /// Cap in requests per second per driver; `None` means uncapped.
    pub throughput_per_driver: Option<f64>,
    pub concurrency: Option<u64>,
    pub timeout_ms: Option<u64>,
    /// The participating drivers; empty means every driver that receives the message.
    pub drivers: Vec<String>,
    pub orchestrator_id: Option<String>,
    /// A time-bound test (`duration_ms`, `stages`): sends until its end instead of a count.
    /// `None` is the seed's count-bound test.
    pub time_bound: Option<TimeBound>,
    /// HTTP version, streams per connection and TLS (extensions; absent = HTTP/1.1).
    pub transport: Transport,
    /// A request mix (issue 12): sent instead of `target` by Floodgate's drivers, each entry by
    /// its weight; empty for the seed's one request. `target` is then the first entry, for
    /// drivers that know no mix.
    pub mix: Vec<MixEntry>,
    /// What a response must look like to count as a success; `None` expects a 2xx status.
    pub checks: Option<Checks>,
    /// Floodgate drivers' shares of a test given in totals (issue 13), by driver ID; empty
    /// when every driver runs the broadcast figures.
    pub shares: BTreeMap<String, ConfigShare>,
    /// The fail-safe (issue 13): a Floodgate driver stops sending after hearing neither the
    /// orchestrator nor a majority of the participants for this long. `None` (a config of
    /// another implementation, whose orchestrator does not beat) or 0: no fail-safe.
    pub fail_safe_ms: Option<u64>,
}

/// Why a `test_config` could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// Not a test configuration at all (no `test_id` and `test_type`): skipped and counted.
    Malformed(ParseError),
    /// A configuration for `test_id`, but one that cannot be run: refused, with a report saying
    /// why, if it is addressed to the reader.
    Unusable {
        test_id: String,
        drivers: Vec<String>,
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Malformed(e) => e.fmt(f),
            ConfigError::Unusable {
                test_id, reason, ..
            } => write!(f, "test {test_id}: {reason}"),
        }
    }
}

/// The liberal reading of every field any implementation has been seen to send.
#[derive(Deserialize)]
struct ConfigWire {
    test_type: TestType,
    #[serde(default, deserialize_with = "lenient_number")]
    test_message_delay: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    message_count_per_driver: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    delay_us: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    request_count: Option<u64>,
    #[serde(default)]
    target: Option<TargetWire>,
    #[serde(default)]
    target_url: Option<String>,
    #[serde(default)]
    test_server: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_f64")]
    throughput_per_driver: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    concurrency: Option<u64>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_id")]
    orchestrator_id: Option<String>,
    #[serde(default)]
    mix: Option<Vec<MixEntry>>,
    #[serde(default)]
    checks: Option<Checks>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    fail_safe_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TargetWire {
    Url(String),
    Full(HttpTarget),
}

impl TestConfig {
    /// Reads a `test_config`. `seed_delay_unit` is the unit of a `test_message_delay` that comes
    /// without Floodgate's exact `delay_us` (a foreign orchestrator's).
    pub fn parse(payload: &[u8], seed_delay_unit: DelayUnit) -> Result<TestConfig, ConfigError> {
        let value: Value = serde_json::from_slice(payload)
            .map_err(|e| ConfigError::Malformed(ParseError::NotJson(e.to_string())))?;
        let (test_id, drivers) = identity(&value).map_err(ConfigError::Malformed)?;
        let unusable = |reason: String| ConfigError::Unusable {
            test_id: test_id.clone(),
            drivers: drivers.clone(),
            reason,
        };
        let time_bound = super::timing::parse(&value).map_err(&unusable)?;
        let shares = super::share::parse(&value).map_err(&unusable)?;
        // A test given a duration may share its rate (each driver's count is then its own
        // pace's over the duration); a staged one's rates are its stages', per driver.
        let staged = time_bound.as_ref().is_some_and(|t| !t.stages.is_empty());
        let counted = shares.values().any(|s| s.request_count.is_some());
        if time_bound.is_some() && !shares.is_empty() && (staged || counted) {
            return Err(unusable(
                "shares: a staged test is not shared by capacity, and a time-bound one's shares \
                 take no request_count"
                    .into(),
            ));
        }
        let transport: TransportWire =
            super::parse_value(value.clone()).map_err(|e| unusable(e.to_string()))?;
        let w: ConfigWire = super::parse_value(value).map_err(|e| unusable(e.to_string()))?;
        if let Some(t) = &time_bound {
            // The seed's `message_count_per_driver` is written for seed drivers (what they send
            // instead) and is no conflict; Floodgate's exact count is.
            if w.request_count.is_some() {
                return Err(unusable(
                    "request_count: a time-bound test (duration_ms, stages) takes no count".into(),
                ));
            }
            if !t.stages.is_empty() && w.throughput_per_driver.is_some() {
                return Err(unusable(
                    "throughput_per_driver: a staged test's rate is its stages'".into(),
                ));
            }
            if !t.stages.is_empty() && w.delay_us.is_some_and(|d| d > 0) {
                return Err(unusable(
                    "delay_us: a staged test's pace is its stages'".into(),
                ));
            }
        }
        let delay_us = match (w.delay_us, w.test_message_delay) {
            (Some(us), _) => limits::check_delay_us(us as f64),
            (None, Some(d)) => limits::check_delay_us(d * seed_delay_unit.micros()),
            (None, None) => Ok(0),
        }
        .map_err(|e| unusable(format!("test_message_delay: {e}")))?;
        let request_count = w.request_count.or(w.message_count_per_driver);
        if request_count.is_some_and(|n| n == 0 || n > limits::MAX_REQUESTS) {
            return Err(unusable(format!(
                "message_count_per_driver: must be between 1 and {}",
                limits::MAX_REQUESTS
            )));
        }
        let throughput_per_driver = w
            .throughput_per_driver
            .map(limits::check_rate)
            .transpose()
            .map_err(|e| unusable(format!("throughput_per_driver: {e}")))?;
        if w.concurrency
            .is_some_and(|c| c == 0 || c > limits::MAX_CONCURRENCY)
        {
            return Err(unusable(format!(
                "concurrency: must be between 1 and {}",
                limits::MAX_CONCURRENCY
            )));
        }
        if w.timeout_ms
            .is_some_and(|t| t == 0 || t > limits::MAX_TIMEOUT_MS)
        {
            return Err(unusable(format!(
                "timeout_ms: must be between 1 and {}",
                limits::MAX_TIMEOUT_MS
            )));
        }
        let fail_safe_ms = w
            .fail_safe_ms
            .map(limits::check_fail_safe_ms)
            .transpose()
            .map_err(|e| unusable(format!("fail_safe_ms: {e}")))?;
        let transport = transport
            .checked(w.concurrency.unwrap_or(limits::DEFAULT_CONCURRENCY))
            .map_err(|e| unusable(e.to_string()))?;
        // The first that is named, in this order; see docs/protocol.md.
        let target = match w.target {
            Some(TargetWire::Full(t)) => Some(t),
            Some(TargetWire::Url(u)) => Some(HttpTarget::get(&u)),
            None => [w.target_url, w.test_server, w.url]
                .into_iter()
                .flatten()
                .find(|u| !u.trim().is_empty())
                .map(|u| HttpTarget::get(&u)),
        }
        .map(|mut t| {
            t.url = with_scheme(t.url.trim());
            t
        });
        let mut mix = w.mix.unwrap_or_default();
        for e in &mut mix {
            e.url = with_scheme(e.url.trim());
        }
        if !mix.is_empty() {
            mix::check_mix(&mix).map_err(|e| unusable(e.to_string()))?;
        }
        if let Some(c) = &w.checks {
            mix::check_checks(c, "checks").map_err(|e| unusable(e.to_string()))?;
        }
        Ok(TestConfig {
            test_id,
            test_type: w.test_type,
            delay_us,
            requests: request_count,
            target,
            throughput_per_driver,
            concurrency: w.concurrency,
            timeout_ms: w.timeout_ms,
            drivers,
            orchestrator_id: w.orchestrator_id,
            time_bound,
            transport,
            mix,
            checks: w.checks,
            shares,
            fail_safe_ms,
        })
    }

    /// The config as `driver` runs it: its share's count and pace instead of the broadcast
    /// ones, when the config gives it a share.
    pub fn for_driver(mut self, driver: &str) -> Result<TestConfig, String> {
        let Some(share) = self.shares.get(driver).copied() else {
            return Ok(self);
        };
        if share.request_count.is_some() {
            self.requests = share.request_count;
        }
        if self.test_type == TestType::Tsunami {
            self.delay_us = super::share::scaled_gap_us(self.delay_us, share.rate_scale)?;
        }
        if let Some(r) = self.throughput_per_driver {
            self.throughput_per_driver = Some(super::share::scaled_rate(r, share.rate_scale)?);
        }
        Ok(self)
    }

    /// The message in `style`: the seed's fields as peers read them, and the exact extension
    /// fields (`delay_us`, `request_count`) that Floodgate's drivers read instead.
    pub fn to_json(&self, style: &SeedStyle) -> Value {
        let mut m = Map::new();
        m.insert("test_id".into(), json!(self.test_id));
        m.insert(
            "test_type".into(),
            json!(self.test_type.spelled(style.type_case)),
        );
        let delay = self.delay_us as f64 / style.delay_unit.micros();
        m.insert("test_message_delay".into(), style.number(delay));
        if let Some(n) = self.requests {
            m.insert("message_count_per_driver".into(), style.number(n as f64));
        }
        m.insert("delay_us".into(), json!(self.delay_us));
        match &self.time_bound {
            // A time-bound test's count (when it has one) is for seed drivers only.
            Some(t) => t.emit_into(&mut m),
            None => {
                if let Some(n) = self.requests {
                    m.insert("request_count".into(), json!(n));
                }
            }
        }
        if let Some(t) = &self.target {
            m.insert("target".into(), json!(t));
            // The flat name one peer's drivers read their target from.
            m.insert("test_server".into(), json!(t.url));
        }
        if let Some(r) = self.throughput_per_driver {
            m.insert("throughput_per_driver".into(), json!(r));
        }
        if let Some(c) = self.concurrency {
            m.insert("concurrency".into(), json!(c));
        }
        if let Some(t) = self.timeout_ms {
            m.insert("timeout_ms".into(), json!(t));
        }
        self.transport.emit_into(&mut m);
        if !self.mix.is_empty() {
            m.insert("mix".into(), json!(self.mix));
        }
        if let Some(c) = &self.checks {
            m.insert("checks".into(), json!(c));
        }
        if !self.shares.is_empty() {
            m.insert("shares".into(), json!(self.shares));
        }
        if let Some(f) = self.fail_safe_ms {
            m.insert("fail_safe_ms".into(), json!(f));
        }
        m.insert("drivers".into(), json!(self.drivers));
        if let Some(o) = &self.orchestrator_id {
            m.insert("orchestrator_id".into(), json!(o));
        }
        Value::Object(m)
    }

    /// [`TestConfig::to_json`] as bytes.
    pub fn emit(&self, style: &SeedStyle) -> Vec<u8> {
        super::emit(&self.to_json(style))
    }

    /// Whether `driver` takes part (an empty list means every driver).
    pub fn includes(&self, driver: &str) -> bool {
        self.drivers.is_empty() || self.drivers.iter().any(|d| d == driver)
    }
}

/// The `test_id` (any JSON scalar) and the participant list of something that claims to be a
/// test configuration: it must name a test and a test type, else it is not one.
fn identity(v: &Value) -> Result<(String, Vec<String>), ParseError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ParseError::Invalid("a test_config is a JSON object".into()))?;
    let id = ["test_id", "testId", "test_ID"]
        .iter()
        .find_map(|k| obj.get(*k))
        .and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(|| ParseError::Invalid("test_id: missing or empty".into()))?;
    limits::check_id(&id).map_err(|e| ParseError::Invalid(format!("test_id: {e}")))?;
    if !obj.get("test_type").is_some_and(Value::is_string) {
        return Err(ParseError::Invalid(format!(
            "test {id}: test_type: missing; want TSUNAMI or AVALANCHE"
        )));
    }
    // Liberal: a list of driver IDs; anything else means "every driver".
    let drivers: Vec<String> = obj
        .get("drivers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // Bounded, and refused whole rather than trimmed: a list that lost its entries would mean
    // "every driver".
    if drivers.len() > limits::MAX_KNOWN_DRIVERS
        || drivers.iter().any(|d| limits::check_id(d).is_err())
    {
        return Err(ParseError::Invalid(format!(
            "test {id}: drivers: at most {} IDs of at most {} bytes each",
            limits::MAX_KNOWN_DRIVERS,
            limits::MAX_ID_LEN
        )));
    }
    Ok((id, drivers))
}

/// `host:port/path` as `http://host:port/path`; a URL with a scheme is kept as it is.
fn with_scheme(url: &str) -> String {
    if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}
