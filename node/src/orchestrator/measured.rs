//! Measured capacity (issue 13, item 1): a driver's weight in a test shared `split: measured`
//! is the rate it achieved, unpaced, against the same target in the latest earlier test it
//! completed: what it did when nothing held it back, on the load it will send again. Pure,
//! over the finished tests' views, newest first.
//!
//! "The same target" is the same scheme, host and port: a driver's capacity is its CPU and its
//! connections to that server, whatever the path. Only completed, unpaced tests count: a paced
//! driver's rate is its pace, not its capacity, and a failed or stopped test measured less than
//! the whole run. A driver never measured there weighs the mean of those that were (the split
//! marks it assumed, as for an undeclared capacity).

use super::view::TestView;
use crate::http::Url;
use crate::model::TestStatus;
use crate::protocol::TestType;

/// The origin a spec's load goes to (`tls`, host, port), if its URL parses.
fn origin(url: &str) -> Option<(bool, String, u16)> {
    Url::parse(url)
        .ok()
        .map(|u| (u.tls, u.host.to_ascii_lowercase(), u.port))
}

/// Whether a finished test measured its drivers' capacity against `target`'s origin.
fn measures(v: &TestView, target: &(bool, String, u16)) -> bool {
    let s = &v.spec;
    let unpaced = s.test_type == TestType::Avalanche
        && s.throughput_per_driver.is_none()
        && s.stages.is_empty()
        && s.totals.as_ref().is_none_or(|t| t.rate.is_none());
    v.status == TestStatus::Completed
        && unpaced
        && origin(&s.target_url).is_some_and(|o| &o == target)
}

/// `driver`'s measured capacity against `target_url`, responses/s, from `finished` (newest
/// first): its achieved rate in the latest test that measured it there.
pub fn capacity<'a>(
    finished: impl IntoIterator<Item = &'a TestView>,
    target_url: &str,
    driver: &str,
) -> Option<f64> {
    let target = origin(target_url)?;
    finished
        .into_iter()
        .filter(|v| measures(v, &target))
        .find_map(|v| {
            let d = v.per_driver.iter().find(|d| d.driver_id == driver)?;
            let rps = d.stats.achieved_rps;
            (rps.is_finite() && rps > 0.0).then_some(rps)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::spec::parse_input;
    use crate::orchestrator::view::{DriverStats, Stats};

    fn view(body: &str, status: TestStatus, rates: &[(&str, f64)]) -> TestView {
        let spec = parse_input(body.as_bytes()).expect("parse");
        let spec = spec.validate().expect("valid");
        let stats = serde_json::to_value(Stats::default()).expect("stats");
        let mut v: TestView =
            serde_json::from_value(serde_json::json!({"id": "t", "status": "completed",
                "spec": spec, "drivers": [], "created_at_ms": 0, "aggregate": stats,
                "per_driver": []}))
            .expect("a view");
        v.status = status;
        v.per_driver = rates
            .iter()
            .map(|(id, rps)| DriverStats {
                driver_id: id.to_string(),
                state: crate::model::DriverState::Done,
                report_seq: 1,
                report_age_ms: None,
                report_format: None,
                ended_by: None,
                reason: None,
                defaults: Default::default(),
                generator: None,
                start: None,
                stats: Stats {
                    achieved_rps: *rps,
                    ..Default::default()
                },
            })
            .collect();
        v
    }

    const UNPACED: &str =
        r#"{"test_type":"avalanche","requests_per_driver":100,"target_url":"http://t:8080/a"}"#;
    const PACED: &str = r#"{"test_type":"avalanche","requests_per_driver":100,
        "throughput_per_driver":50,"target_url":"http://t:8080/a"}"#;
    const ELSEWHERE: &str =
        r#"{"test_type":"avalanche","requests_per_driver":100,"target_url":"http://u:8080/a"}"#;

    #[test]
    fn the_latest_completed_unpaced_run_against_the_same_origin_counts() {
        let done = TestStatus::Completed;
        let history = [
            view(PACED, done, &[("d0", 50.0)]),
            view(ELSEWHERE, done, &[("d0", 9_000.0)]),
            view(UNPACED, TestStatus::Failed, &[("d0", 10.0)]),
            view(UNPACED, done, &[("d0", 4_000.0), ("d1", 0.0)]),
            view(UNPACED, done, &[("d0", 1_000.0), ("d1", 2_000.0)]),
        ];
        let table = [
            // Another path, the same origin.
            ("http://T:8080/other", "d0", Some(4_000.0)),
            // A zero is no measurement: the older one stands.
            ("http://t:8080/", "d1", Some(2_000.0)),
            ("http://u:8080/", "d0", Some(9_000.0)),
            ("https://t:8080/", "d0", None),
            ("http://t:8080/", "d9", None),
            ("not a url", "d0", None),
        ];
        for (url, driver, want) in table {
            assert_eq!(capacity(&history, url, driver), want, "{url} {driver}");
        }
    }
}
