//! A LoadTest's spec as the orchestrator's input (the REST API's `TestSpecInput`), with its
//! secret headers' values and its ConfigMap references resolved. A request mix (issue 12) gets
//! each entry's body from its ConfigMap (`mix[i].bodyFrom`) and the secret headers on every
//! entry; `checks` become the wire's types. What the schema cannot hold (a code out of
//! 100-599, a range backwards, `equals` that is not JSON) is refused naming the field
//! (`spec.checks.status[1]`): by the plan before any driver starts, and here at the start.

use crate::configmaps;
use crate::crd::{self, LoadTest, LoadTestSpec};
use floodgate::orchestrator::spec::{FieldError, MixSpec, StageInput, TestSpecInput, TlsInput};
use floodgate::protocol::{Checks, JsonCheck, StatusSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// A LoadTest's spec as the REST API's input, with its secret headers' values and its
/// ConfigMap references (`config`, by field: [`crate::configmaps::Resolved`]) resolved: the
/// orchestrator validates it with the same rules (limits, headers, a mix's names and origin)
/// as a test created through the API, so a value from a ConfigMap is held to the inline
/// field's limits.
pub(crate) fn test_input(
    lt: &LoadTest,
    driver_ids: &[String],
    secret_values: Vec<(String, String)>,
    config: &BTreeMap<String, String>,
) -> Result<TestSpecInput, FieldError> {
    let s = &lt.spec;
    let secret_headers: Vec<String> = secret_values.iter().map(|(k, _)| k.clone()).collect();
    let mix = mix(s, config, &secret_values)?;
    let mut headers = s.headers.clone();
    // With a mix, the secret headers are every entry's (a mix has no top-level headers).
    if mix.is_none() {
        headers.extend(secret_values);
    }
    Ok(TestSpecInput {
        test_type: Some(s.test_type.as_str().to_string()),
        delay_ms: s.delay_ms,
        requests_per_driver: s.requests_per_driver,
        duration_ms: s.duration_ms,
        stages: s.stages.as_ref().map(|st| {
            st.iter()
                .map(|x| StageInput {
                    duration: None,
                    duration_ms: Some(x.duration_ms),
                    rate: Some(x.rate),
                })
                .collect()
        }),
        start_rate: s.start_rate,
        throughput_per_driver: s.throughput_per_driver,
        total_requests: s.total_requests,
        total_rate: s.total_rate,
        split: s.split.map(Into::into),
        fail_safe_ms: s.fail_safe_ms,
        target_url: s.target_url.clone(),
        method: s.method.clone(),
        headers: (!headers.is_empty()).then_some(headers),
        secret_headers: (!secret_headers.is_empty()).then_some(secret_headers),
        body: s.body.clone(),
        concurrency: s.concurrency.map(u64::from),
        timeout_ms: s.timeout_ms,
        drivers: None,
        driver_ids: Some(driver_ids.to_vec()),
        // A lost driver's replacement is a pod of the same Deployment, never another
        // LoadTest's driver (issue 13).
        replacement_prefix: Some(format!("{}-", crate::resources::deployment_name(lt))),
        trigger: Some(true),
        thresholds: (!s.thresholds.is_empty()).then(|| {
            s.thresholds
                .iter()
                .map(|t| {
                    let mut o = serde_json::json!({"threshold": t.threshold});
                    if let Some(a) = t.abort_on_fail {
                        o["abort_on_fail"] = a.into();
                    }
                    if let Some(d) = &t.delay {
                        o["delay"] = d.as_str().into();
                    }
                    o
                })
                .collect()
        }),
        http_version: s.http_version.map(Into::into),
        streams_per_connection: s.streams_per_connection,
        tls: s.tls.as_ref().map(|t| TlsInput {
            ca_pem: t
                .ca_pem
                .clone()
                .or_else(|| config.get(configmaps::CA_FROM).cloned()),
            insecure_skip_verify: t.insecure_skip_verify,
            server_name: t.server_name.clone(),
        }),
        mix,
        checks: s
            .checks
            .as_ref()
            .map(|c| checks(c, "spec.checks"))
            .transpose()?,
        ..Default::default()
    })
}

/// The spec's mix as the orchestrator takes it, `None` without one: `config` holds the values
/// read from ConfigMaps by field, `secret` the secret headers' values (on every entry).
pub fn mix(
    spec: &LoadTestSpec,
    config: &BTreeMap<String, String>,
    secret: &[(String, String)],
) -> Result<Option<Vec<MixSpec>>, FieldError> {
    let Some(mix) = &spec.mix else {
        return Ok(None);
    };
    let entries = mix.iter().enumerate().map(|(i, m)| {
        let mut headers = m.headers.clone();
        headers.extend(secret.iter().cloned());
        // The plan starts a test only once every reference was read, so a bodyFrom has its
        // value here.
        let body_from = || {
            m.body_from
                .as_ref()
                .and_then(|_| config.get(&configmaps::body_from(i)).cloned())
        };
        Ok(MixSpec {
            name: m.name.clone(),
            method: m.method.clone().unwrap_or_else(|| "GET".to_string()),
            url: m.url.clone(),
            headers,
            body: m.body.clone().or_else(body_from),
            weight: m.weight,
            checks: m
                .checks
                .as_ref()
                .map(|c| checks(c, &format!("spec.mix[{i}].checks")))
                .transpose()?,
        })
    });
    entries.collect::<Result<Vec<_>, _>>().map(Some)
}

/// A LoadTest's `checks` (at field `at`, e.g. `spec.checks`) in the wire's types.
pub fn checks(c: &crd::Checks, at: &str) -> Result<Checks, FieldError> {
    let status = c
        .status
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let v = match &s.0 {
                IntOrString::Int(n) => serde_json::Value::from(*n),
                IntOrString::String(t) => serde_json::Value::from(t.as_str()),
            };
            StatusSet::parse_one(&v).map_err(|e| FieldError::new(&format!("{at}.status[{i}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let json = c
        .json
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let equals = serde_json::from_str(&j.equals).map_err(|e| {
                FieldError::new(
                    &format!("{at}.json[{i}].equals"),
                    format!("is not JSON ({e}); a string is written '\"ok\"'"),
                )
            })?;
            Ok(JsonCheck {
                pointer: j.pointer.clone(),
                equals,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    Ok(Checks {
        status: StatusSet(status),
        body_contains: c.body_contains.clone(),
        json,
    })
}

/// Every set of checks of a spec converts: for the plan, which fails such a LoadTest before
/// any driver starts.
pub fn check(spec: &LoadTestSpec) -> Result<(), FieldError> {
    if let Some(c) = &spec.checks {
        checks(c, "spec.checks")?;
    }
    for (i, m) in spec.mix.iter().flatten().enumerate() {
        if let Some(c) = &m.checks {
            checks(c, &format!("spec.mix[{i}].checks"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
