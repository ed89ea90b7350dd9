//! The LoadTest's request mix and checks (issue 12): the types of `spec.mix`, `spec.checks`
//! and `status.byRequest`, bounded by the wire's limits (`floodgate::protocol::limits`).

use super::{FromConfigMap, MAX_URL_CHARS, URL_PATTERN};
use floodgate::protocol::limits;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One request of a mix. Its share of the requests is `weight / sum of weights`, exactly.
#[derive(Clone, Debug, Deserialize, Serialize, KubeSchema, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.body) || !has(self.bodyFrom)").message("give a mix entry's body or bodyFrom, not both"))]
#[serde(rename_all = "camelCase")]
pub struct MixRequest {
    /// The entry's name, unique in the mix: its figures in `status.byRequest` and the scope of
    /// a threshold (`home: p95 < 100ms`).
    #[schemars(length(min = 1, max = limits::MAX_ID_LEN), regex(pattern = r"\S"))]
    pub name: String,
    /// HTTP method (default GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z]+$"))]
    pub method: Option<String>,
    /// http:// or https://; every entry's on the origin of the first's.
    #[schemars(regex(pattern = URL_PATTERN), length(max = MAX_URL_CHARS))]
    pub url: String,
    /// Request headers (secretHeaders are added to every entry's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body. Not with bodyFrom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_BODY_BYTES))]
    pub body: Option<String>,
    /// The body kept in a ConfigMap of the LoadTest's namespace, read when the test starts; the
    /// LoadTest stays Pending until the ConfigMap and its key exist. Not with body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_from: Option<FromConfigMap>,
    /// Its share of the requests (default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = limits::MAX_WEIGHT))]
    pub weight: u32,
    /// Its own checks, instead of the test's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
}

fn one() -> u32 {
    1
}

/// What a response must look like to count as a success.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Checks {
    /// Expected statuses: codes (304), ranges ("200-299") or classes ("2xx"); default
    /// 200-299.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = limits::MAX_STATUS_RANGES))]
    pub status: Vec<StatusMatch>,
    /// The body must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::MAX_CHECK_TEXT))]
    pub body_contains: Option<String>,
    /// The body must be JSON with these values at these pointers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_JSON_CHECKS))]
    pub json: Vec<JsonCheck>,
}

/// `{pointer: /a/0/b, equals: '"ok"'}`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct JsonCheck {
    /// A JSON pointer (RFC 6901): "" (the whole body) or starting with "/".
    #[schemars(length(max = limits::MAX_TEXT_LEN), regex(pattern = r"^(/.*)?$"))]
    pub pointer: String,
    /// The expected value, written as JSON: '"ok"' (a string), '3', 'true', '{"a": 1}'. Text,
    /// not an untyped field: a field the schema gives no type would be out of reach of the
    /// spec's CEL rules (`self == oldSelf`).
    #[schemars(length(min = 1, max = limits::MAX_CHECK_TEXT))]
    pub equals: String,
}

/// One element of `checks.status`: an integer (304) or a string ("304", "200-299", "2xx").
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(transparent)]
pub struct StatusMatch(pub k8s_openapi::apimachinery::pkg::util::intstr::IntOrString);

impl JsonSchema for StatusMatch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusMatch".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // The API server checks the string forms' shape; the codes' range (100-599) and a
        // range's order are checked by the operator, naming the element.
        schemars::json_schema!({
            "description": "A status code (304), a range (\"200-299\") or a class (\"2xx\").",
            "x-kubernetes-int-or-string": true,
            "pattern": r"^\s*([1-5][0-9][0-9](\s*-\s*[1-5][0-9][0-9])?|[1-5][xX][xX])\s*$",
        })
    }
}

/// One mix entry's figures over all drivers, its p99 from their merged histograms.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestProgress {
    pub name: String,
    pub sent: u64,
    pub responses: u64,
    /// Responses that passed every check.
    pub ok: u64,
    pub errors: u64,
    /// Check failures of any kind (a response failing two checks counts twice).
    pub checks_failed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;
    use serde_json::Value;

    /// The spec's schema in the generated CRD, and the messages of its CEL rules.
    fn spec_schema() -> (Value, Vec<String>) {
        let crd = serde_json::to_value(super::super::LoadTest::crd()).expect("json");
        let spec =
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone();
        let rules = spec["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["rule"].as_str().unwrap_or_default().to_string())
            .collect();
        (spec, rules)
    }

    #[test]
    fn the_schema_bounds_a_mix_by_the_wire_s_limits() {
        use floodgate::protocol::limits;
        let (spec, _) = spec_schema();
        let mix = &spec["properties"]["mix"];
        assert_eq!(mix["maxItems"], limits::MAX_MIX_ENTRIES);
        assert_eq!(mix["minItems"], 1);
        let entry = &mix["items"];
        let weight = &entry["properties"]["weight"];
        // Weight 0 is refused at `kubectl apply`; absent, it is 1.
        assert_eq!(weight["minimum"].as_f64(), Some(1.0));
        assert_eq!(
            weight["maximum"].as_f64(),
            Some(f64::from(limits::MAX_WEIGHT))
        );
        assert_eq!(weight["default"], 1);
        assert_eq!(
            entry["properties"]["body"]["maxLength"],
            limits::MAX_BODY_BYTES
        );
        assert_eq!(entry["required"], serde_json::json!(["name", "url"]));
        assert_eq!(
            entry["x-kubernetes-validations"][0]["rule"],
            "!has(self.body) || !has(self.bodyFrom)"
        );
        let checks = &spec["properties"]["checks"]["properties"];
        let status = &checks["status"];
        assert_eq!(status["maxItems"], limits::MAX_STATUS_RANGES);
        assert_eq!(status["items"]["x-kubernetes-int-or-string"], true);
        assert_eq!(checks["json"]["maxItems"], limits::MAX_JSON_CHECKS);
        assert_eq!(checks["bodyContains"]["maxLength"], limits::MAX_CHECK_TEXT);
        // targetUrl is optional now: a mix replaces it.
        let required: Vec<&str> = spec["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert!(!required.contains(&"targetUrl"), "{required:?}");
    }

    #[test]
    fn the_cel_rules_tie_a_mix_to_the_top_level_fields() {
        let (_, rules) = spec_schema();
        for rule in [
            "has(self.targetUrl) != has(self.mix)",
            "!has(self.mix) || (!has(self.method) && !has(self.headers) && !has(self.body))",
            "!has(self.mix) || self.mix.all(a, self.mix.exists_one(b, b.name == a.name))",
        ] {
            assert!(
                rules.iter().any(|r| r == rule),
                "no rule {rule}: {rules:#?}"
            );
        }
        let tls = rules
            .iter()
            .find(|r| r.starts_with("!has(self.tls)"))
            .expect("the tls rule");
        assert!(
            tls.contains("self.mix[0].url.matches(") && tls.contains("self.targetUrl.matches("),
            "{tls}"
        );
    }

    #[test]
    fn a_status_element_is_an_integer_or_a_string() {
        let checks: super::Checks =
            serde_json::from_value(serde_json::json!({"status": [200, "2xx", "500-503"]}))
                .expect("parses");
        let back = serde_json::to_value(&checks).expect("json");
        assert_eq!(back["status"], serde_json::json!([200, "2xx", "500-503"]));
        let e: super::MixRequest =
            serde_json::from_value(serde_json::json!({"name": "a", "url": "http://t/"}))
                .expect("parses");
        assert_eq!(e.weight, 1, "the default weight");
    }
}
