//! `floodgate load --mix FILE` and the check flags on one machine (issue 12, items 3 and 4): the
//! same mix file and checks as `test run`, checked by the same rules, and the per-name figures
//! of the run in its output and its thresholds.

use crate::cli::LoadArgs;
use crate::engine::{Checker, MixRequest, PreparedRequest, Snapshot};
use crate::orchestrator::spec::{checked_mix, MixSpec};
use crate::protocol::mix::{self, Checks};
use crate::thresholds::eval::Data;
use serde_json::{json, Value};

/// What a `load` run sends, and the names of its mix (empty for one URL).
pub struct LoadRequests {
    pub request: PreparedRequest,
    pub mix: Vec<MixRequest>,
    pub checker: Checker,
    pub names: Vec<String>,
}

pub fn requests(args: &LoadArgs, http2: bool) -> anyhow::Result<LoadRequests> {
    let checks: Option<Checks> = match crate::client::checks_field(&args.checks) {
        Ok(Some(v)) => Some(serde_json::from_value(v).map_err(|e| anyhow::anyhow!("checks: {e}"))?),
        Ok(None) => None,
        Err(e) => anyhow::bail!(e),
    };
    let checker = checks
        .as_ref()
        .map(crate::driver::checker_of)
        .unwrap_or_default();
    let Some(path) = &args.mix else {
        let url = args.url.as_deref().unwrap_or_default();
        let request = PreparedRequest::build_for(url, "GET", &[], None, http2)
            .map_err(|e| anyhow::anyhow!("--url: {}", e.message))?;
        return Ok(LoadRequests {
            request,
            mix: Vec::new(),
            checker,
            names: Vec::new(),
        });
    };
    let list = crate::client::mix_field(path).map_err(anyhow::Error::msg)?;
    let specs: Vec<MixSpec> = serde_path_to_error::deserialize(list)
        .map_err(|e| anyhow::anyhow!("--mix: mix{}: {}", e.path(), e.inner()))?;
    let specs = checked_mix(specs).map_err(|e| anyhow::anyhow!("--mix: {e}"))?;
    let wire: Vec<mix::MixEntry> = specs.iter().map(MixSpec::to_wire).collect();
    let mix =
        crate::driver::mix_requests(&wire, http2).map_err(|e| anyhow::anyhow!("--mix: {e}"))?;
    let request = mix
        .first()
        .map(|m| m.request.clone())
        .ok_or_else(|| anyhow::anyhow!("--mix: names no request"))?;
    Ok(LoadRequests {
        request,
        mix,
        checker,
        names: specs.into_iter().map(|m| m.name).collect(),
    })
}

/// A threshold scope's data: the whole run, or one name of its mix.
pub fn data<'a>(s: &'a Snapshot, names: &[String], scope: Option<&str>) -> Option<Data<'a>> {
    let (latency, status, e) = match scope {
        None => (&s.recorder.latency, &s.recorder.status, &s.recorder.errors),
        Some(name) => {
            let n = s
                .recorder
                .by_name
                .get(names.iter().position(|x| x == name)?)?;
            (&n.latency, &n.status, &n.errors)
        }
    };
    Some(Data {
        latency: Ok(latency),
        responses: status.total(),
        errors: e.total(),
        completed: status.total() + e.connect + e.timeout + e.io,
        elapsed_us: u64::try_from(s.elapsed.as_micros()).unwrap_or(u64::MAX),
        counted: true,
        checks_failed: Some(e.failed_responses()),
    })
}

/// Adds `checks_failed` and `by_request` to the run's JSON result.
pub fn add_json(result: &mut Value, names: &[String], s: &Snapshot) {
    let c = &s.recorder.checks;
    result["checks_failed"] =
        json!({"status": c.status, "body": c.body, "json": c.json, "too_large": c.too_large});
    if names.is_empty() {
        return;
    }
    let by: serde_json::Map<String, Value> = names
        .iter()
        .zip(&s.recorder.by_name)
        .map(|(name, n)| {
            let e = &n.errors;
            (
                name.clone(),
                json!({"sent": n.sent, "responses": n.status.total(),
                    "ok": n.status.total().saturating_sub(e.failed_responses()),
                    "errors": {"connect": e.connect, "timeout": e.timeout, "http": e.http, "io": e.io, "check": e.check},
                    "checks_failed": {"status": n.checks.status, "body": n.checks.body, "json": n.checks.json},
                    "latency": n.latency.summary()}),
            )
        })
        .collect();
    result["by_request"] = Value::Object(by);
}

/// One line per name of the mix, and the failed checks.
pub fn print(names: &[String], s: &Snapshot) {
    for (name, n) in names.iter().zip(&s.recorder.by_name) {
        let l = n.latency.summary();
        let e = &n.errors;
        println!(
            "  {name}: sent {}, ok {}, errors {} | latency ms: p50 {:.3} p99 {:.3} max {:.3}",
            n.sent,
            n.status.total().saturating_sub(e.failed_responses()),
            e.total(),
            l.median_ms,
            l.p99_ms,
            l.max_ms
        );
    }
    let c = &s.recorder.checks;
    if c.status + c.body + c.json > 0 {
        println!(
            "checks failed: status {}, body {}, json {}",
            c.status, c.body, c.json
        );
    }
}
