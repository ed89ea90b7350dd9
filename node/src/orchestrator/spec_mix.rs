//! A test spec's request mix and checks (issue 12, items 3 and 4), validated field by field:
//! each entry's request as `target_url`/`method`/`headers` are (naming `mix[i].url` and so
//! on), then the mix as a whole by the wire's own rules (`protocol::mix::check_mix`: weights,
//! unique names, one origin), so REST, the CLI, the CRD and Kafka refuse the same mixes.

use super::spec::{FieldError, TestSpec};
use crate::http::{self, Part};
use crate::protocol::mix::{self, Checks, MixEntry};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One request of a mix, as a user types it and as a spec keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixSpec {
    pub name: String,
    #[serde(default = "get")]
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Its share of the requests, `weight / sum of weights` exactly (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Its own checks instead of the test's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
}

fn get() -> String {
    "GET".into()
}

fn one() -> u32 {
    1
}

impl MixSpec {
    pub fn to_wire(&self) -> MixEntry {
        MixEntry {
            name: self.name.clone(),
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: self.body.clone(),
            weight: self.weight,
            checks: self.checks.clone(),
        }
    }
}

/// What the top-level request fields said, for the rule that a mix replaces them.
pub(super) struct Single<'a> {
    pub target_url: Option<&'a str>,
    pub method: Option<&'a str>,
    pub has_headers: bool,
    pub has_body: bool,
}

/// Checks a mix (when given) and the test's checks; the mix comes back with its methods in
/// upper case.
pub(super) fn validate(
    mix: Option<Vec<MixSpec>>,
    checks: Option<&Checks>,
    single: Single<'_>,
) -> Result<Vec<MixSpec>, FieldError> {
    if let Some(c) = checks {
        mix::check_checks(c, "checks").map_err(|e| FieldError::new(&e.field, e.message))?;
    }
    let Some(mut mix) = mix else {
        return Ok(Vec::new());
    };
    let named = [
        ("target_url", single.target_url.is_some()),
        ("method", single.method.is_some()),
        ("headers", single.has_headers),
        ("body", single.has_body),
    ];
    if let Some((field, _)) = named.iter().find(|(_, given)| *given) {
        return Err(FieldError::new(
            field,
            "a test with a mix takes each request from its entry (mix[i].url, .method, .headers, .body); leave the top-level one out",
        ));
    }
    for (i, e) in mix.iter_mut().enumerate() {
        e.method = e.method.to_ascii_uppercase();
        let headers: Vec<(String, String)> = e
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        http::check(&e.url, &e.method, &headers).map_err(|err| {
            let field = match err.part {
                Part::Url | Part::Tls => "url",
                Part::Method => "method",
                Part::Header => "headers",
            };
            FieldError::new(&format!("mix[{i}].{field}"), err.message)
        })?;
    }
    let wire: Vec<MixEntry> = mix.iter().map(MixSpec::to_wire).collect();
    mix::check_mix(&wire).map_err(|e| FieldError::new(&e.field, e.message))?;
    Ok(mix)
}

/// A mix alone, as `floodgate load --mix` gives it: checked by the same rules, methods in upper
/// case.
pub fn checked_mix(mix: Vec<MixSpec>) -> Result<Vec<MixSpec>, FieldError> {
    validate(
        Some(mix),
        None,
        Single {
            target_url: None,
            method: None,
            has_headers: false,
            has_body: false,
        },
    )
}

impl TestSpec {
    /// The names thresholds may be scoped to: the mix's.
    pub fn request_names(&self) -> Vec<&str> {
        self.mix.iter().map(|m| m.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::TestSpecInput;
    use serde_json::json;

    fn check(v: serde_json::Value) -> Result<super::TestSpec, super::FieldError> {
        super::super::spec::parse_input(v.to_string().as_bytes()).and_then(TestSpecInput::validate)
    }

    fn base(mix: serde_json::Value) -> serde_json::Value {
        json!({"test_type": "avalanche", "requests_per_driver": 10, "mix": mix})
    }

    #[test]
    fn a_mix_travels_to_the_drivers_with_its_checks() {
        let spec = check(json!({"test_type": "avalanche", "requests_per_driver": 10,
            "checks": {"status": ["2xx", 404]},
            "mix": [{"name": "home", "url": "http://h:81/", "weight": 3},
                    {"name": "add", "method": "post", "url": "http://h:81/cart", "body": "x",
                     "headers": {"X-A": "1"}, "checks": {"body_contains": "ok"}}],
            "thresholds": ["home: p99 < 1s"]}))
        .expect("valid");
        assert_eq!(spec.target_url, "http://h:81/");
        assert_eq!(spec.request_names(), ["home", "add"]);
        let c = spec.to_config("t", &[], "o");
        assert_eq!(c.mix.len(), 2);
        assert_eq!((c.mix[1].method.as_str(), c.mix[1].weight), ("POST", 1));
        assert_eq!(c.mix[0].weight, 3);
        assert!(c.checks.is_some_and(|k| k.status.contains(404)));
        // Seed drivers, which know no mix, send its first entry.
        assert_eq!(c.target.map(|t| t.url), Some("http://h:81/".to_string()));
    }

    #[test]
    fn a_bad_mix_is_refused_naming_the_field() {
        let one = |e: serde_json::Value| base(json!([e]));
        let cases = [
            (
                one(json!({"name": "a", "url": "http://h/", "weight": 0})),
                "mix[0].weight",
            ),
            (
                one(json!({"name": "a", "url": "http://h/", "weight": -1})),
                "mix[0].weight",
            ),
            (one(json!({"name": "a", "url": "ftp://h/"})), "mix[0].url"),
            (
                one(json!({"name": "a", "url": "http://h/", "method": "G T"})),
                "mix[0].method",
            ),
            (one(json!({"name": "", "url": "http://h/"})), "mix[0].name"),
            (
                one(json!({"name": "a", "url": "http://h/", "colour": 1})),
                "colour",
            ),
            (
                base(
                    json!([{"name": "a", "url": "http://h/"}, {"name": "a", "url": "http://h/b"}]),
                ),
                "mix[1].name",
            ),
            (
                base(json!([{"name": "a", "url": "http://h/"}, {"name": "b", "url": "http://g/"}])),
                "mix[1].url",
            ),
            (base(json!([])), "mix"),
            (
                json!({"test_type": "avalanche", "requests_per_driver": 1, "target_url": "http://h/",
                       "mix": [{"name": "a", "url": "http://h/"}]}),
                "target_url",
            ),
            (
                json!({"test_type": "avalanche", "requests_per_driver": 1, "target_url": "http://h/",
                       "checks": {"status": ["7xx"]}}),
                "checks.status",
            ),
            (
                json!({"test_type": "avalanche", "requests_per_driver": 1, "target_url": "http://h/",
                       "checks": {"json": [{"pointer": "a", "equals": 1}]}}),
                "checks.json[0].pointer",
            ),
            (
                base(json!([{"name": "a", "url": "http://h/"}]))
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o.insert("thresholds".into(), json!(["b: p99 < 1s"]));
                        serde_json::Value::Object(o)
                    })
                    .unwrap_or_default(),
                "thresholds[0]",
            ),
        ];
        for (input, field) in cases {
            let e = check(input.clone()).expect_err(field);
            assert!(
                e.field == field || e.field.starts_with(&format!("{field}.")),
                "{input}: got {e}, want {field}"
            );
        }
    }
}
