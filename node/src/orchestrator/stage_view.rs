//! What the API shows of a staged test's stages (issue 12): per stage, the rate the schedule
//! targets and the rate the drivers achieved, from the requests they sent while it ran; and the
//! drivers' saturation warnings, each naming its driver.

use super::spec::TestSpec;
use crate::protocol::StageProgress;
use crate::schedule::Pace;
use serde::{Deserialize, Serialize};

/// One stage over one driver or all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    pub stage: usize,
    pub duration_ms: u64,
    /// The rate it ramps from and to, per driver (requests/s).
    pub from_rate: f64,
    pub to_rate: f64,
    /// Its mean rate (the ramp's), over the drivers counted.
    pub target_rps: f64,
    /// Requests the schedule has due in it, over the drivers counted.
    pub planned: u64,
    /// Requests sent while it ran, as the drivers report them.
    pub sent: u64,
    /// `sent` over its duration.
    pub achieved_rps: f64,
}

/// The stages of `spec` over `drivers` drivers whose progress lists are `reported` (each a
/// driver's, index by stage; a missing entry is nothing sent yet).
pub fn stage_stats<'a>(
    spec: &TestSpec,
    drivers: u64,
    reported: impl Iterator<Item = &'a [StageProgress]>,
) -> Vec<StageStats> {
    let Pace::Staged(schedule) = spec.pace() else {
        return Vec::new();
    };
    let mut sent = vec![0u64; schedule.segments().len()];
    for list in reported {
        for (total, p) in sent.iter_mut().zip(list) {
            *total += p.sent;
        }
    }
    let n = drivers as f64;
    schedule
        .segments()
        .iter()
        .zip(sent)
        .enumerate()
        .map(|(stage, (seg, sent))| {
            let secs = seg.duration().as_secs_f64();
            StageStats {
                stage,
                duration_ms: u64::try_from(seg.duration().as_millis()).unwrap_or(u64::MAX),
                from_rate: seg.from_rate,
                to_rate: seg.to_rate,
                target_rps: seg.mean_rate() * n,
                planned: seg.planned() * drivers,
                sent,
                achieved_rps: if secs > 0.0 { sent as f64 / secs } else { 0.0 },
            }
        })
        .collect()
}

/// A driver's warning as the test's: which driver, then what it measured.
pub fn named_warning(driver: &str, warning: &str) -> String {
    format!("driver {driver} {warning}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::spec::parse_input;

    #[test]
    fn stages_show_target_and_achieved_rates_summed_over_drivers() {
        let body = serde_json::json!({"test_type": "avalanche", "target_url": "http://h/",
            "stages": [{"duration": "2s", "rate": 100}, {"duration": "2s", "rate": 100}]});
        let spec = parse_input(body.to_string().as_bytes())
            .and_then(|i| i.validate())
            .expect("valid");
        let a = [
            StageProgress {
                sent: 99,
                planned: 100,
            },
            StageProgress {
                sent: 201,
                planned: 200,
            },
        ];
        let b = [StageProgress {
            sent: 100,
            planned: 100,
        }];
        let s = stage_stats(&spec, 2, [&a[..], &b[..]].into_iter());
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].planned, s[0].sent, s[0].target_rps, s[0].achieved_rps),
            (200, 199, 100.0, 99.5)
        );
        assert_eq!((s[1].planned, s[1].sent, s[1].from_rate), (400, 201, 100.0));
        assert_eq!((s[1].target_rps, s[1].achieved_rps), (200.0, 100.5));
        // A count-bound test has no stages.
        let body = serde_json::json!({"test_type": "avalanche", "target_url": "http://h/",
            "requests_per_driver": 5});
        let spec = parse_input(body.to_string().as_bytes())
            .and_then(|i| i.validate())
            .expect("valid");
        assert!(stage_stats(&spec, 2, std::iter::empty()).is_empty());
    }
}
