//! How an orchestrator picks up tests at start-up: from its own store (a restart of the same
//! process or container), or, when the store is gone (a new pod with an empty volume), from an
//! outside description of a running test ([`Adoption`]: what the operator recorded in the
//! LoadTest status before the trigger, [`Starting`]). The pure parts are here: where the metrics
//! read resumes, when it has caught up with what was sent before start-up, and the start instant.

use super::run::TestRun;
use super::spec::TestSpecInput;
use super::state::State;
use super::store::StoredTest;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Running tests are not judged (lost drivers, quiet periods) until the metrics read has caught
/// up with what the log held at start-up, or this long at most: the reports sent while no
/// orchestrator ran, final ones included, decide those tests, not a heartbeat that came first.
pub const CATCH_UP_MAX: Duration = Duration::from_secs(60);

/// A running test to take over from an outside description, when this orchestrator's store
/// does not know it.
#[derive(Debug)]
pub struct Adoption {
    pub id: String,
    /// The test as it was created; validated against the hard limits only (it already runs).
    pub spec: TestSpecInput,
    /// Its participants.
    pub drivers: Vec<String>,
    pub created_ms: u64,
    /// The start instant its trigger carried.
    pub started_ms: u64,
    /// Positions on the metrics topic (partition, next offset) read before its trigger was
    /// published: every report of the test is at or after them.
    pub metrics_from: Vec<(i32, i64)>,
    /// A test given in totals: each driver's share as it was when the test started (empty
    /// otherwise), so a successor judges each part by it, not by capacities heard since.
    pub shares: BTreeMap<String, u64>,
}

/// A test whose trigger is about to be published, for a caller that records it where a
/// successor can read it ([`Recorder`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Starting {
    pub id: String,
    pub drivers: Vec<String>,
    pub start_at_ms: u64,
    pub metrics_topic: String,
    /// (partition, next offset) on `metrics_topic`, read after the config and before the
    /// trigger.
    pub metrics_from: Vec<(i32, i64)>,
    /// Each driver's share of a test given in totals (empty otherwise).
    pub shares: BTreeMap<String, u64>,
}

/// Records a [`Starting`] test before its trigger is published; an error fails the test, and
/// no trigger is sent (a test nobody could take over is not started).
pub type Recorder = Box<dyn FnOnce(Starting) -> BoxFuture<'static, Result<(), String>> + Send>;

/// Where the metrics read starts: the stored positions, moved back to the earliest recorded
/// position of each adopted test's partition (re-reading a report is harmless, skipping one is
/// not). Positions below zero are ignored.
pub fn resume_positions(
    stored: Vec<(String, i32, i64)>,
    metrics_topic: &str,
    recorded: impl IntoIterator<Item = (i32, i64)>,
) -> Vec<(String, i32, i64)> {
    let mut at: BTreeMap<(String, i32), i64> = stored
        .into_iter()
        .map(|(t, p, next)| ((t, p), next))
        .collect();
    for (p, next) in recorded {
        if p < 0 || next < 0 {
            continue;
        }
        at.entry((metrics_topic.to_string(), p))
            .and_modify(|n| *n = (*n).min(next))
            .or_insert(next);
    }
    at.into_iter().map(|((t, p), n)| (t, p, n)).collect()
}

/// The local instant of a start given in Unix milliseconds, `now` being `now_ms`.
pub fn start_instant(started_ms: u64, now: Instant, now_ms: u64) -> Instant {
    if started_ms <= now_ms {
        let ago = Duration::from_millis(now_ms - started_ms);
        now.checked_sub(ago).unwrap_or(now)
    } else {
        now + Duration::from_millis(started_ms - now_ms)
    }
}

/// Whether the metrics read has reached the end the log had at start-up, on every partition.
#[derive(Debug)]
pub struct CatchUp {
    /// Partitions still behind, with the end offset to reach; `None` when the ends could not
    /// be read (then only [`CATCH_UP_MAX`] ends the wait).
    behind: Option<BTreeMap<i32, i64>>,
}

impl CatchUp {
    /// `ends`: every partition's end at start-up; `from`: where the read starts on each
    /// partition of `topic` (a partition not listed starts at its end).
    pub fn new(topic: &str, ends: &[(i32, i64)], from: &[(String, i32, i64)]) -> Self {
        let behind = ends
            .iter()
            .filter(|(p, end)| {
                from.iter()
                    .any(|(t, fp, next)| t == topic && fp == p && next < end)
            })
            .copied()
            .collect();
        Self {
            behind: Some(behind),
        }
    }

    /// The ends are unknown: the read never counts as caught up.
    pub fn unknown() -> Self {
        Self { behind: None }
    }

    pub fn done(&self) -> bool {
        self.behind.as_ref().is_some_and(BTreeMap::is_empty)
    }

    /// A message at `offset` on `partition` was read; true when this read caught up.
    pub fn read(&mut self, partition: i32, offset: i64) -> bool {
        let Some(behind) = self.behind.as_mut() else {
            return false;
        };
        let was_done = behind.is_empty();
        if behind.get(&partition).is_some_and(|end| offset + 1 >= *end) {
            behind.remove(&partition);
        }
        !was_done && behind.is_empty()
    }
}

/// Rebuilds the tests of the store after a restart.
pub fn restore(stored: Vec<StoredTest>, st: &mut State, now: Instant) {
    for t in stored {
        let run = match t.view {
            Some(view) => TestRun::finished(view),
            None => {
                let mut run =
                    TestRun::new(t.id.clone(), t.spec, t.drivers, t.created_ms, st.policy());
                if t.status == crate::model::TestStatus::Running {
                    run.start(t.started_ms.unwrap_or(t.created_ms), now);
                }
                for r in t.latest {
                    let _ = run.apply(r, now);
                }
                run
            }
        };
        st.restore(run);
    }
}

#[cfg(test)]
#[path = "takeover_tests.rs"]
mod tests;
