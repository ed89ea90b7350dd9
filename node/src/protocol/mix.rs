//! A request mix and response checks (issue 12, items 3 and 4; Floodgate extensions of
//! `test_config` and `metrics`): the entries a driver sends in turn by weight, what a response
//! must look like to count as a success, and the per-name figures a report carries. The checks
//! here (bounds, unique names, one origin) are shared by the wire, the REST API and the CLI,
//! each error naming its field (`mix[2].weight`). See `docs/protocol.md`.

use super::lenient::lenient_u64;
use super::limits;
use super::metrics::{ErrorCounts, StatusClasses};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// One request of a mix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixEntry {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Its share of the requests: `weight / sum of weights`, exactly (see `engine::mix`).
    #[serde(default = "one")]
    pub weight: u32,
    /// Its own checks, instead of the test's `checks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
}

fn default_method() -> String {
    "GET".to_string()
}

fn one() -> u32 {
    1
}

/// What a response must look like to count as a success.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checks {
    /// Expected statuses; empty means 200-299 (what a test without checks expects).
    #[serde(default, skip_serializing_if = "StatusSet::is_default")]
    pub status: StatusSet,
    /// The body must contain these bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// The body must be JSON with these values at these pointers (RFC 6901).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<JsonCheck>,
}

/// `{"pointer": "/a/0/b", "equals": <any JSON>}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonCheck {
    pub pointer: String,
    pub equals: Value,
}

impl Checks {
    /// Whether a response body must be kept to evaluate these checks.
    pub fn needs_body(&self) -> bool {
        self.body_contains.is_some() || !self.json.is_empty()
    }
}

/// A set of statuses: codes and inclusive ranges. Written as `[200, "200-299", "3xx"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    /// 200-299, the set a test without checks expects.
    pub const DEFAULT: (u16, u16) = (200, 299);

    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }

    /// The ranges, the default when none is named.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        if self.0.is_empty() {
            vec![Self::DEFAULT]
        } else {
            self.0.clone()
        }
    }

    pub fn contains(&self, status: u16) -> bool {
        if self.0.is_empty() {
            return (Self::DEFAULT.0..=Self::DEFAULT.1).contains(&status);
        }
        self.0.iter().any(|&(a, b)| (a..=b).contains(&status))
    }

    /// One element: `304`, `"304"`, `"200-299"` or `"2xx"`.
    pub fn parse_one(v: &Value) -> Result<(u16, u16), String> {
        let code = |n: u64| -> Result<u16, String> {
            u16::try_from(n)
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("{n} is not a status code (100-599)"))
        };
        match v {
            Value::Number(n) => {
                let c = code(
                    n.as_u64()
                        .ok_or_else(|| format!("{n} is not a status code"))?,
                )?;
                Ok((c, c))
            }
            Value::String(s) => Self::parse_text(s),
            other => Err(format!(
                "{other} is not a status, a range (\"200-299\") or a class (\"2xx\")"
            )),
        }
    }

    /// `"304"`, `"200-299"`, `"2xx"` (any case).
    pub fn parse_text(s: &str) -> Result<(u16, u16), String> {
        let t = s.trim().to_ascii_lowercase();
        let code = |x: &str| -> Result<u16, String> {
            x.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("{s:?}: {x:?} is not a status code (100-599)"))
        };
        if let Some(class) = t.strip_suffix("xx") {
            return match class {
                "1" | "2" | "3" | "4" | "5" => {
                    let c = class.parse::<u16>().unwrap_or(0) * 100;
                    Ok((c, c + 99))
                }
                _ => Err(format!("{s:?} is not a status class (1xx to 5xx)")),
            };
        }
        match t.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (code(a)?, code(b)?);
                if a > b {
                    return Err(format!("{s:?}: the range is empty (start above end)"));
                }
                Ok((a, b))
            }
            None => code(&t).map(|c| (c, c)),
        }
    }

    /// A comma-separated list, as the CLI takes it (`200-299,304`).
    pub fn parse_list(s: &str) -> Result<StatusSet, String> {
        let ranges = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Self::parse_text)
            .collect::<Result<Vec<_>, _>>()?;
        if ranges.is_empty() {
            return Err("names no status".into());
        }
        if ranges.len() > limits::MAX_STATUS_RANGES {
            return Err(format!(
                "at most {} codes or ranges",
                limits::MAX_STATUS_RANGES
            ));
        }
        Ok(StatusSet(ranges))
    }
}

impl Serialize for StatusSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let list: Vec<Value> = self
            .0
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    Value::from(a)
                } else {
                    Value::from(format!("{a}-{b}"))
                }
            })
            .collect();
        list.serialize(s)
    }
}

impl<'de> Deserialize<'de> for StatusSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = match Value::deserialize(d)? {
            Value::Array(l) => l,
            // A single code or range is a set of one.
            one @ (Value::Number(_) | Value::String(_)) => vec![one],
            other => {
                return Err(de::Error::custom(format!(
                    "want a list of statuses or ranges, got {other}"
                )))
            }
        };
        if list.len() > limits::MAX_STATUS_RANGES {
            return Err(de::Error::custom(format!(
                "at most {} codes or ranges",
                limits::MAX_STATUS_RANGES
            )));
        }
        if list.is_empty() {
            return Err(de::Error::custom(
                "names no status; leave it out for 200-299",
            ));
        }
        list.iter()
            .enumerate()
            .map(|(i, v)| StatusSet::parse_one(v).map_err(|e| format!("[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(StatusSet)
            .map_err(de::Error::custom)
    }
}

/// A mix or checks that cannot be used: the field path (`mix[2].weight`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for MixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn refuse(field: String, message: impl Into<String>) -> MixError {
    MixError {
        field,
        message: message.into(),
    }
}

/// Checks the bounds of one set of checks; `at` is its field path (`checks`, `mix[1].checks`).
pub fn check_checks(c: &Checks, at: &str) -> Result<(), MixError> {
    if c.status.0.len() > limits::MAX_STATUS_RANGES {
        return Err(refuse(
            format!("{at}.status"),
            format!("at most {} codes or ranges", limits::MAX_STATUS_RANGES),
        ));
    }
    if let Some(b) = &c.body_contains {
        if b.is_empty() || b.len() > limits::MAX_CHECK_TEXT {
            return Err(refuse(
                format!("{at}.body_contains"),
                format!("must be 1 to {} bytes", limits::MAX_CHECK_TEXT),
            ));
        }
    }
    if c.json.len() > limits::MAX_JSON_CHECKS {
        return Err(refuse(
            format!("{at}.json"),
            format!("at most {} checks", limits::MAX_JSON_CHECKS),
        ));
    }
    for (i, j) in c.json.iter().enumerate() {
        if !(j.pointer.is_empty() || j.pointer.starts_with('/'))
            || j.pointer.len() > limits::MAX_TEXT_LEN
        {
            return Err(refuse(
                format!("{at}.json[{i}].pointer"),
                format!(
                    "must be a JSON pointer (\"\" or starting with \"/\", e.g. \"/a/0/b\") of at most {} bytes",
                    limits::MAX_TEXT_LEN
                ),
            ));
        }
        if j.equals.to_string().len() > limits::MAX_CHECK_TEXT {
            return Err(refuse(
                format!("{at}.json[{i}].equals"),
                format!("must be at most {} bytes of JSON", limits::MAX_CHECK_TEXT),
            ));
        }
    }
    Ok(())
}

/// Checks a mix: 1 to [`limits::MAX_MIX_ENTRIES`] entries with unique, non-empty names,
/// weights within bounds, bounded bodies, and one origin (scheme, host, port) for every URL: a
/// driver's connections are to one origin. URL syntax, methods and headers are checked where
/// requests are built (`http::check`), naming `mix[i].url` and so on.
pub fn check_mix(mix: &[MixEntry]) -> Result<(), MixError> {
    if mix.is_empty() || mix.len() > limits::MAX_MIX_ENTRIES {
        return Err(refuse(
            "mix".into(),
            format!("must have 1 to {} entries", limits::MAX_MIX_ENTRIES),
        ));
    }
    let mut names: Vec<&str> = Vec::with_capacity(mix.len());
    let mut body_bytes = 0usize;
    let first = origin(&mix[0].url);
    for (i, e) in mix.iter().enumerate() {
        let at = |f: &str| format!("mix[{i}].{f}");
        if e.name.trim().is_empty() || e.name.len() > limits::MAX_ID_LEN {
            return Err(refuse(
                at("name"),
                format!("must be 1 to {} bytes, not blank", limits::MAX_ID_LEN),
            ));
        }
        if names.contains(&e.name.as_str()) {
            return Err(refuse(
                at("name"),
                format!("{:?} is already the name of another entry", e.name),
            ));
        }
        names.push(&e.name);
        if !(1..=limits::MAX_WEIGHT).contains(&e.weight) {
            return Err(refuse(
                at("weight"),
                format!("must be between 1 and {}", limits::MAX_WEIGHT),
            ));
        }
        if let Some(b) = &e.body {
            if b.len() > limits::MAX_BODY_BYTES {
                return Err(refuse(
                    at("body"),
                    format!(
                        "is {} bytes; at most {} are accepted",
                        b.len(),
                        limits::MAX_BODY_BYTES
                    ),
                ));
            }
            body_bytes += b.len();
        }
        match (origin(&e.url), &first) {
            (None, _) => {
                return Err(refuse(
                    at("url"),
                    "must be an http:// or https:// URL with a host",
                ))
            }
            (Some(o), Some(f)) if o != *f => {
                return Err(refuse(
                    at("url"),
                    format!(
                        "is on {}://{}:{}, but mix[0].url is on {}://{}:{}: every entry of a mix shares one origin",
                        o.0, o.1, o.2, f.0, f.1, f.2
                    ),
                ))
            }
            _ => {}
        }
        if let Some(c) = &e.checks {
            check_checks(c, &at("checks"))?;
        }
    }
    if body_bytes > limits::MAX_MIX_BODY_BYTES {
        return Err(refuse(
            "mix".into(),
            format!(
                "its bodies come to {body_bytes} bytes; at most {} are accepted in one test",
                limits::MAX_MIX_BODY_BYTES
            ),
        ));
    }
    Ok(())
}

/// The (scheme, host, port) of an `http[s]://` URL, lower case, with the scheme's default
/// port; `None` if it is not one. Only for comparing origins: the full check is `http::check`.
pub fn origin(url: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal without a port ends with `]`.
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()?),
        _ => (authority, default),
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme, host.to_ascii_lowercase(), port))
}

/// Responses that failed a check, by kind (a Floodgate extension of `metrics`). A response can
/// fail both `body` and `json`; `status` failures are the ones counted in `errors.http`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksFailed {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub status: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub body: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub json: u64,
    /// Of the body and JSON failures, those whose body was larger than the driver keeps for
    /// checking (`engine::check::MAX_CHECKED_BODY`): failed, never grown without bound.
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "is_zero"
    )]
    pub too_large: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ChecksFailed {
    pub fn is_empty(&self) -> bool {
        *self == ChecksFailed::default()
    }

    pub fn add(&mut self, o: &ChecksFailed) {
        self.status += o.status;
        self.body += o.body;
        self.json += o.json;
        self.too_large += o.too_large;
    }

    /// Failures of any kind (a response failing two checks counts twice).
    pub fn total(&self) -> u64 {
        self.status + self.body + self.json
    }
}

/// One mix entry's cumulative figures in a driver's report (`by_request.<name>`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestReport {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub requests_sent: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub responses_received: u64,
    #[serde(default)]
    pub errors: ErrorCounts,
    #[serde(default)]
    pub status: StatusClasses,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub latency_sum_us: u64,
    /// Base64 HdrHistogram of this entry's latencies, as the report's `histogram`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
    #[serde(default, skip_serializing_if = "ChecksFailed::is_empty")]
    pub checks_failed: ChecksFailed,
}

/// A report's `by_request`, read liberally: `None` when it is absent; when it is malformed
/// (not an object of objects, too many names, a name too long) it is dropped whole and
/// `Err` says why, so the caller can count it while the rest of the report is used.
pub(super) fn by_request(v: Option<&Value>) -> Result<BTreeMap<String, RequestReport>, String> {
    let Some(v) = v else {
        return Ok(BTreeMap::new());
    };
    let obj = v.as_object().ok_or("by_request: not an object")?;
    if obj.len() > limits::MAX_MIX_ENTRIES {
        return Err(format!(
            "by_request: {} names, at most {} are read",
            obj.len(),
            limits::MAX_MIX_ENTRIES
        ));
    }
    let mut out = BTreeMap::new();
    for (name, r) in obj {
        if name.is_empty() || name.len() > limits::MAX_ID_LEN || !r.is_object() {
            return Err(format!("by_request: a malformed entry {:.40?}", name));
        }
        let mut report: RequestReport =
            serde_json::from_value(r.clone()).map_err(|e| format!("by_request.{name}: {e}"))?;
        report.histogram = report.histogram.filter(|h| !h.is_empty());
        out.insert(name.clone(), report);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "mix_tests.rs"]
mod tests;
