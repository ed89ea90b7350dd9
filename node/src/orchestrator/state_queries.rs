//! The orchestrator state's queries: drivers, tests, the current test, chart points, and what
//! the Prometheus exporter shows. Read-only; every change goes through `State::apply`.

use super::State;
use crate::model::TestStatus;
use crate::orchestrator::rate_change::{self, RateChange, RateInput};
use crate::orchestrator::registry::DriverView;
use crate::orchestrator::run::{DriverHistograms, TestRun};
use crate::orchestrator::series::Point;
use crate::orchestrator::view::TestView;
use crate::orchestrator::OrchestratorError;
use crate::protocol::limits::Caps;
use std::time::Instant;

impl State {
    pub fn drivers(&self, now: Instant) -> Vec<DriverView> {
        self.registry.view(now)
    }

    pub fn get(&self, id: &str, now: Instant) -> Result<TestView, OrchestratorError> {
        self.tests
            .get(id)
            .map(|t| t.view(now))
            .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))
    }

    /// The rate change `input` comes to for running test `id`, without making it (the caller
    /// publishes it, then records it with `Event::SetRate`).
    pub fn plan_rate(
        &self,
        id: &str,
        input: RateInput,
        now_ms: u64,
        caps: &Caps,
    ) -> Result<RateChange, OrchestratorError> {
        let t = self
            .tests
            .get(id)
            .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))?;
        if t.status() != TestStatus::Running {
            return Err(OrchestratorError::Conflict(format!(
                "test {id} is {}; only a running test changes pace",
                t.status().as_str()
            )));
        }
        let not_floodgate = (self.registry.members(t.drivers()).into_iter())
            .filter(|m| !m.floodgate)
            .map(|m| m.id)
            .collect();
        rate_change::plan(&t.rate_context(not_floodgate), input, now_ms, caps)
    }

    /// Every test, newest first.
    pub fn list(&self, now: Instant) -> Vec<TestView> {
        self.newest_first().map(|t| t.view(now)).collect()
    }

    /// The running test, or else the most recent one.
    pub fn current(&self, now: Instant) -> Option<TestView> {
        self.tests
            .values()
            .find(|t| t.status() == TestStatus::Running)
            .or_else(|| self.newest_first().next())
            .map(|t| t.view(now))
    }

    /// A test's chart points while it holds them, with their generation; `Ok(None)` once they
    /// moved to the store.
    #[allow(clippy::type_complexity)]
    pub fn series(&self, id: &str) -> Result<Option<(Vec<Point>, u64)>, OrchestratorError> {
        let t = self
            .tests
            .get(id)
            .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))?;
        Ok(t.series().map(|(p, g)| (p.to_vec(), g)))
    }

    /// For the Prometheus exporter: every test's status, and the running test(s) plus the
    /// `recent` newest others, each with its drivers' histograms while it still holds them.
    #[allow(clippy::type_complexity)]
    pub fn metrics_view(
        &self,
        recent: usize,
        now: Instant,
    ) -> (Vec<TestStatus>, Vec<(TestView, Vec<DriverHistograms>)>) {
        let statuses = self.tests.values().map(TestRun::status).collect();
        let running = self
            .tests
            .values()
            .filter(|t| t.status() == TestStatus::Running);
        let others = self
            .newest_first()
            .filter(|t| t.status() != TestStatus::Running)
            .take(recent);
        let views = running
            .chain(others)
            .map(|t| (t.view(now), t.driver_histograms().collect()))
            .collect();
        (statuses, views)
    }

    fn newest_first(&self) -> impl Iterator<Item = &TestRun> {
        self.order.iter().rev().filter_map(|id| self.tests.get(id))
    }
}
