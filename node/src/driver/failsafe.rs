//! The fail-safe (issue 13): a driver cut off from the orchestrator and from a majority of its
//! test's participants stops sending, rather than go on loading the target while nobody can
//! stop it. Pure: [`lease`] says until when sending is allowed from what was heard and when;
//! the control loop feeds [`FailSafe`], and the engine enforces its lease on every send
//! (`Running::extend_lease`), so a driver resumed from a pause sends nothing once it lapsed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Until when a driver may send: `window` after it last heard the orchestrator, or after the
/// latest instant by which it had heard a majority of the `participants` (itself included, so
/// `participants / 2` of the others); the later of the two. `None` when it has heard neither.
pub fn lease(
    window: Duration,
    orchestrator: Option<Instant>,
    others: &[Instant],
    participants: usize,
) -> Option<Instant> {
    let need = participants / 2;
    let majority = if need == 0 {
        None
    } else {
        let mut heard = others.to_vec();
        heard.sort_unstable_by(|a, b| b.cmp(a));
        // The need-th most recent: by then `need` others (and this driver) were all heard.
        heard.get(need - 1).copied()
    };
    orchestrator.max(majority).map(|at| at + window)
}

/// What one run's fail-safe has heard.
#[derive(Debug)]
pub struct FailSafe {
    window: Duration,
    /// The orchestrator that configured the test, when the config named it.
    orchestrator_id: Option<String>,
    /// The other participants (bounded by the config's list).
    others: Vec<String>,
    participants: usize,
    orchestrator: Option<Instant>,
    heard: HashMap<String, Instant>,
}

impl FailSafe {
    /// A run triggered at `now`: the trigger is the orchestrator heard. An empty participant
    /// list (every driver) leaves only the orchestrator to hear.
    pub fn new(
        window: Duration,
        me: &str,
        participants: &[String],
        orchestrator_id: Option<String>,
        now: Instant,
    ) -> Self {
        let others: Vec<String> = participants
            .iter()
            .filter(|p| p.as_str() != me)
            .cloned()
            .collect();
        FailSafe {
            window,
            orchestrator_id,
            participants: others.len() + 1,
            others,
            orchestrator: Some(now),
            heard: HashMap::new(),
        }
    }

    /// An orchestrator's beat sent at `at`; another orchestrator than the test's is no sign.
    pub fn heard_orchestrator(&mut self, id: &str, at: Instant) {
        if self.orchestrator_id.as_deref().is_none_or(|o| o == id) {
            self.orchestrator = self.orchestrator.max(Some(at));
        }
    }

    /// A driver's beat sent at `at`; only the test's participants count.
    pub fn heard_driver(&mut self, id: &str, at: Instant) {
        if self.others.iter().any(|o| o == id) {
            let e = self.heard.entry(id.to_string()).or_insert(at);
            *e = (*e).max(at);
        }
    }

    /// Until when sending is allowed.
    pub fn lease(&self) -> Option<Instant> {
        let others: Vec<Instant> = self.heard.values().copied().collect();
        lease(self.window, self.orchestrator, &others, self.participants)
    }

    /// Why the run stopped, for its final report.
    pub fn reason(&self) -> String {
        let need = self.participants / 2;
        format!(
            "fail-safe: heard neither the orchestrator nor {need} of the other {} participant(s) for {:.1} s; stopped sending",
            self.others.len(),
            self.window.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_lease_follows_the_orchestrator_or_a_majority() {
        let t = Instant::now();
        let w = 10 * S;
        // (orchestrator heard at, others heard at (s after t), participants, lease after t)
        type Case = (Option<u64>, &'static [u64], usize, Option<u64>);
        let cases: [Case; 8] = [
            (Some(0), &[], 3, Some(10)),
            // 3 participants: one other is a majority with this driver.
            (None, &[5], 3, Some(15)),
            (Some(2), &[5, 1], 3, Some(15)),
            // 2 participants: the other is needed.
            (None, &[4], 2, Some(14)),
            // 5 participants: two others; the second most recent sets the instant.
            (None, &[9, 3, 7, 1], 5, Some(17)),
            (None, &[9], 5, None),
            // The orchestrator heard later than the majority wins.
            (Some(20), &[9, 3], 5, Some(30)),
            // Heard nobody: no lease.
            (None, &[], 4, None),
        ];
        for (orch, others, n, want) in cases {
            let at = |s: u64| t + Duration::from_secs(s);
            let others: Vec<Instant> = others.iter().map(|&s| at(s)).collect();
            assert_eq!(
                lease(w, orch.map(at), &others, n),
                want.map(at),
                "{orch:?} {others:?} {n}"
            );
        }
    }

    #[test]
    fn only_the_test_s_orchestrator_and_participants_count() {
        let t = Instant::now();
        let ids = ["a", "b", "c"].map(String::from);
        let mut f = FailSafe::new(2 * S, "a", &ids, Some("o".into()), t);
        assert_eq!(f.lease(), Some(t + 2 * S), "the trigger counts");
        f.heard_orchestrator("other", t + 5 * S);
        f.heard_driver("z", t + 5 * S);
        f.heard_driver("a", t + 5 * S);
        assert_eq!(
            f.lease(),
            Some(t + 2 * S),
            "strangers and itself are no sign"
        );
        f.heard_driver("b", t + 3 * S);
        assert_eq!(f.lease(), Some(t + 5 * S), "b with a is a majority of 3");
        // An older beat read late (a backlog) does not move it back.
        f.heard_driver("b", t + S);
        f.heard_orchestrator("o", t + 4 * S);
        assert_eq!(f.lease(), Some(t + 6 * S));
        assert!(
            f.reason()
                .contains("nor 1 of the other 2 participant(s) for 2.0 s"),
            "{}",
            f.reason()
        );
    }
}
