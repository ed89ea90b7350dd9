//! The orchestrator's state and its one transition function: every change (a driver seen, a
//! report, a test created, started, adopted, stopped, failed, ended) is an [`Event`] applied
//! here, which returns the [`Effect`]s (store writes) for the edges to carry out. Synchronous and
//! free of I/O, so it is tested without a broker or a store; the decisions it applies are pure
//! functions (participants in `participants`, liveness in `registry`, completion in `part` and
//! `run`); the queries are in `state_queries`.

use super::measured;
use super::participants::check_participants;
pub use super::participants::participants;
use super::registry::{Beat, Registry};
use super::run::{Policy, Rejected, TestRun};
use super::series::Point;
use super::spec::TestSpec;
use super::split::SplitBy;
use super::view::TestView;
use super::OrchestratorError;
use crate::model::TestStatus;
use crate::protocol::limits::Caps;
use crate::protocol::{Heartbeat, MetricsReport, Register, Role};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Something that happened, for [`State::apply`].
#[derive(Debug)]
pub enum Event {
    Registered(Register),
    /// A registration sent before this orchestrator started, read back from the topic.
    Replayed(Register),
    /// A beat, with the clock exchange it completes if it echoes one of ours.
    Heartbeat {
        beat: Heartbeat,
        clock: Option<super::clock::Exchange>,
    },
    /// One of this orchestrator's own heartbeats came back through the bus.
    Echo,
    Report(Box<MetricsReport>),
    /// A new test; `for_trigger` refuses it if another test runs (a create-and-trigger that
    /// would be refused must change nothing).
    Create {
        id: String,
        spec: TestSpec,
        for_trigger: bool,
        created_ms: u64,
        /// The deployment's caps, which each share of a test given in totals is held to.
        caps: Caps,
    },
    /// The trigger is about to be published: the test runs from `start_at_ms` (`start` here).
    Start {
        id: String,
        start_at_ms: u64,
        start: Instant,
    },
    /// A running test taken over from an outside description (its store row was lost): it runs
    /// from `started_ms` with these participants.
    Adopt {
        id: String,
        spec: TestSpec,
        drivers: Vec<String>,
        created_ms: u64,
        started_ms: u64,
        /// A test given in totals: the shares recorded at its start (empty: none recorded).
        shares: BTreeMap<String, u64>,
    },
    /// The metrics read has caught up with what the log held at start-up: tests are judged.
    CaughtUp,
    Stop {
        id: String,
    },
    Fail {
        id: String,
        reason: String,
    },
    /// A rate change was published to the running test's drivers (see `State::plan_rate`).
    SetRate {
        id: String,
        change: super::rate_change::RateChange,
    },
    /// Time passed: decide which tests have ended (`only` narrows it to one).
    Evaluate {
        only: Option<String>,
    },
    /// The store holds a finished test's chart points: free them.
    SeriesStored {
        id: String,
    },
}

/// What the edges must do after an event.
#[derive(Debug, PartialEq)]
pub enum Effect {
    SaveTest(Box<TestView>),
    SaveReport {
        report: Box<MetricsReport>,
        order: u64,
    },
    SaveSeries {
        id: String,
        points: Vec<Point>,
    },
    /// A threshold stopped the test: tell its drivers, as a stop on request does.
    StopDrivers {
        id: String,
    },
    /// A lost driver's share was handed over (issue 13): publish it on the control topic.
    HandOver {
        id: String,
        decided: Box<super::run::Decided>,
    },
}

/// The outcome of an event: the view of the test it concerned, if any, and what to store.
#[derive(Debug, Default)]
pub struct Applied {
    pub view: Option<TestView>,
    pub effects: Vec<Effect>,
    /// Tests that ended with this event (for the log).
    pub ended: Vec<TestView>,
    /// Why a report was not taken (not an error of the caller: reports arrive from anyone).
    pub rejected: Option<Rejected>,
    /// Why a registration or heartbeat was not taken.
    pub presence: Option<Unheard>,
}

/// A registration or heartbeat that made no driver.
#[derive(Debug, PartialEq, Eq)]
pub enum Unheard {
    /// A heartbeat from a node with no registration here; `floodgate` if the node said it is a
    /// Floodgate driver (it can be asked to register again).
    Unregistered { node_id: String, floodgate: bool },
    /// A registration while every place in the registry holds an alive driver.
    Full { node_id: String },
}

/// What a registration says about its node.
fn registration_beat(r: &Register) -> Beat<'_> {
    Beat {
        address: Some(&r.node_ip),
        test_id: None,
        agent: r.agent.as_deref(),
        interval: r.heartbeat_ms.map(Duration::from_millis),
        capacity: r.capacity,
    }
}

pub struct State {
    registry: Registry,
    tests: BTreeMap<String, TestRun>,
    /// Test IDs in creation order.
    order: Vec<String>,
    policy: Policy,
    /// Until then no test is judged, unless the metrics read catches up first (see
    /// [`super::takeover::CATCH_UP_MAX`]).
    held_until: Option<Instant>,
    /// The deployment's caps, which a hand-over's raised paces are held to.
    caps: Caps,
}

impl State {
    pub fn new(heartbeat_timeout: Duration, policy: Policy) -> Self {
        Self {
            registry: Registry::new(heartbeat_timeout),
            tests: BTreeMap::new(),
            order: Vec::new(),
            policy,
            held_until: None,
            caps: Caps::HARD,
        }
    }

    /// Holds hand-overs to the deployment's caps.
    pub fn with_caps(mut self, caps: Caps) -> Self {
        self.caps = caps;
        self
    }

    /// Judges no test until `until` or [`Event::CaughtUp`], whichever comes first: the tests
    /// running at start-up are decided by the reports sent while no orchestrator ran.
    pub fn hold(&mut self, until: Instant) {
        self.held_until = Some(until);
    }

    /// A test read back from the store at start-up.
    pub fn restore(&mut self, run: TestRun) {
        self.order.push(run.id().to_string());
        self.tests.insert(run.id().to_string(), run);
    }

    /// Judges liveness against this orchestrator's own heartbeats from now on (see
    /// [`Registry::echo`]): while they do not come back, the bus is down and nobody is lost.
    pub fn watch_bus(&mut self, now: Instant) {
        self.registry.watch_bus(now);
    }

    pub fn bus_down(&self, now: Instant) -> bool {
        self.registry.bus_down(now)
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The one transition function.
    pub fn apply(
        &mut self,
        event: Event,
        now: Instant,
        now_ms: u64,
    ) -> Result<Applied, OrchestratorError> {
        let mut out = Applied::default();
        match event {
            Event::Registered(r) | Event::Replayed(r) if !r.is_driver() => {}
            Event::Registered(r) => {
                if !self
                    .registry
                    .register(&r.node_id, &registration_beat(&r), now)
                {
                    out.presence = Some(Unheard::Full { node_id: r.node_id });
                }
            }
            Event::Replayed(r) => {
                if !self
                    .registry
                    .replayed(&r.node_id, &registration_beat(&r), now)
                {
                    out.presence = Some(Unheard::Full { node_id: r.node_id });
                }
            }
            Event::Heartbeat { beat: h, clock } => {
                if h.role == Role::Driver {
                    let beat = Beat {
                        address: h.node_ip.as_deref(),
                        test_id: h.test_id.clone(),
                        agent: h.agent.as_deref(),
                        interval: h.heartbeat_ms.map(Duration::from_millis),
                        capacity: h.capacity,
                    };
                    let known = self.registry.heartbeat(&h.node_id, beat, now);
                    if let Some(exchange) = clock.filter(|_| known) {
                        self.registry.clock_exchange(&h.node_id, exchange);
                    }
                    if !known {
                        out.presence = Some(Unheard::Unregistered {
                            floodgate: h.is_floodgate(),
                            node_id: h.node_id,
                        });
                    }
                }
            }
            Event::Echo => self.registry.echo(now),
            Event::Report(report) => {
                // A report is a sign of life, whatever test it is for.
                self.registry.heard_from(&report.node_id, now);
                let test_id = report.test_id.clone();
                let (node_id, clock) =
                    (report.node_id.clone(), self.registry.clock(&report.node_id));
                let applied = match self.tests.get_mut(&test_id) {
                    Some(t) => t
                        .apply(*report, now)
                        .inspect(|_| t.note_clock(&node_id, clock)),
                    None => Err(Rejected::NotParticipant),
                };
                match applied {
                    Ok((order, held)) => {
                        out.effects.push(Effect::SaveReport {
                            report: Box::new(held),
                            order,
                        });
                        self.evaluate(Some(&test_id), now, now_ms, &mut out);
                    }
                    Err(why) => out.rejected = Some(why),
                }
            }
            Event::Create {
                id,
                spec,
                for_trigger,
                created_ms,
                caps,
            } => {
                if self.tests.contains_key(&id) {
                    return Err(OrchestratorError::AlreadyExists(id));
                }
                if for_trigger {
                    self.check_none_running(&id)?;
                }
                let drivers = participants(&spec, &self.registry.alive(now))?;
                let mut members = self.registry.members(&drivers);
                if spec
                    .totals
                    .as_ref()
                    .is_some_and(|t| t.split == SplitBy::Measured)
                {
                    // Newest first: the latest measurement of each driver counts.
                    let finished: Vec<&TestView> = (self.order.iter().rev())
                        .filter_map(|id| self.tests.get(id)?.frozen_view())
                        .collect();
                    for m in &mut members {
                        m.capacity =
                            measured::capacity(finished.iter().copied(), &spec.target_url, &m.id);
                    }
                }
                let spec = super::spec_total::resolve(&spec, &members, &caps)?;
                let run = TestRun::new(id.clone(), spec, drivers, created_ms, self.policy);
                let view = run.view(now);
                self.tests.insert(id.clone(), run);
                self.order.push(id);
                out.effects.push(Effect::SaveTest(Box::new(view.clone())));
                out.view = Some(view);
            }
            Event::Start {
                id,
                start_at_ms,
                start,
            } => {
                self.check_startable(&id, now)?;
                let t = self.test_mut(&id)?;
                t.start(start_at_ms, start);
                let view = t.view(now);
                out.effects.push(Effect::SaveTest(Box::new(view.clone())));
                out.view = Some(view);
            }
            Event::Adopt {
                id,
                spec,
                drivers,
                created_ms,
                started_ms,
                shares,
            } => {
                if self.tests.contains_key(&id) {
                    return Err(OrchestratorError::AlreadyExists(id));
                }
                check_participants(&drivers)?;
                // Shared again as it was at the start: the same participants, weighed by the
                // shares recorded then (a share used as its own weight comes back exactly, and
                // a seed driver's broadcast share too, whether or not it was heard yet), else by
                // the capacities they declare now.
                let mut members = self.registry.members(&drivers);
                if !shares.is_empty() {
                    for m in &mut members {
                        m.capacity = shares.get(&m.id).map(|&n| n as f64);
                        m.floodgate |= m.capacity.is_some();
                    }
                }
                let spec = super::spec_total::resolve(&spec, &members, &Caps::HARD)?;
                let mut run = TestRun::new(id.clone(), spec, drivers, created_ms, self.policy);
                run.start(
                    started_ms,
                    super::takeover::start_instant(started_ms, now, now_ms),
                );
                let view = run.view(now);
                self.tests.insert(id.clone(), run);
                self.order.push(id);
                out.effects.push(Effect::SaveTest(Box::new(view.clone())));
                out.view = Some(view);
            }
            Event::CaughtUp => self.held_until = None,
            Event::Stop { id } => {
                let t = self.test_mut(&id)?;
                let was_running = match t.status() {
                    TestStatus::Running => true,
                    TestStatus::Created => false,
                    s => {
                        return Err(OrchestratorError::Conflict(format!(
                            "test {id} has already ended ({})",
                            s.as_str()
                        )))
                    }
                };
                t.stop(now, now_ms);
                let view = if was_running {
                    t.view(now)
                } else {
                    t.freeze(now)
                };
                out.effects.push(Effect::SaveTest(Box::new(view.clone())));
                out.view = Some(view);
            }
            Event::Fail { id, reason } => {
                let t = self.test_mut(&id)?;
                t.fail(&reason, now_ms);
                let view = t.freeze(now);
                out.effects.push(Effect::SaveTest(Box::new(view.clone())));
                out.view = Some(view);
            }
            Event::SetRate { id, change } => {
                let t = self.test_mut(&id)?;
                if t.status() != TestStatus::Running {
                    return Err(OrchestratorError::Conflict(format!(
                        "test {id} has ended ({}); its pace was not changed",
                        t.status().as_str()
                    )));
                }
                t.change_rate(change);
                let view = t.view(now);
                out.effects.push(Effect::SaveTest(Box::new(view.clone())));
                out.view = Some(view);
            }
            Event::Evaluate { only } => {
                self.evaluate(only.as_deref(), now, now_ms, &mut out);
                if only.is_none() {
                    self.registry.prune(now);
                }
            }
            Event::SeriesStored { id } => {
                if let Some(t) = self.tests.get_mut(&id) {
                    t.drop_series();
                }
            }
        }
        Ok(out)
    }

    /// Ends running tests whose drivers are all done or lost, and freezes stopped tests once they
    /// have settled; their views and chart points go to the store.
    fn evaluate(&mut self, only: Option<&str>, now: Instant, now_ms: u64, out: &mut Applied) {
        if self.held_until.is_some_and(|until| now < until) {
            return;
        }
        let registry = &self.registry;
        for t in self.tests.values_mut() {
            let live = t.status() == TestStatus::Running || t.settling();
            if !live || only.is_some_and(|id| id != t.id()) {
                continue;
            }
            if t.check_abort(now, now_ms) {
                out.effects.push(Effect::SaveTest(Box::new(t.view(now))));
                out.effects.push(Effect::StopDrivers {
                    id: t.id().to_string(),
                });
            }
            t.sample(now, false);
            // Floodgate drivers running nothing, in the order they were first seen: the first
            // can join in a lost driver's place.
            let idle: Vec<String> = (registry.alive(now).into_iter())
                .filter(|d| {
                    let l = registry.liveness(d, now);
                    l.floodgate && l.test_id.is_none()
                })
                .collect();
            let liveness = |d: &str| registry.liveness(d, now);
            for decided in t.plan_hand_overs(now, now_ms, liveness, idle, &self.caps) {
                out.effects.push(Effect::HandOver {
                    id: t.id().to_string(),
                    decided: Box::new(decided),
                });
                out.effects.push(Effect::SaveTest(Box::new(t.view(now))));
            }
            if t.evaluate(now, now_ms, |d| registry.liveness(d, now)) {
                // The last point shows the test's end even if one was taken a moment ago.
                t.sample(now, true);
                let points = t.series_points();
                let view = t.freeze(now);
                out.effects.push(Effect::SaveTest(Box::new(view.clone())));
                if let Some(points) = points {
                    out.effects.push(Effect::SaveSeries {
                        id: view.id.clone(),
                        points,
                    });
                }
                out.ended.push(view);
            }
        }
    }

    fn test_mut(&mut self, id: &str) -> Result<&mut TestRun, OrchestratorError> {
        self.tests
            .get_mut(id)
            .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))
    }

    fn check_none_running(&self, except: &str) -> Result<(), OrchestratorError> {
        match self.running() {
            Some(other) if other != except => Err(OrchestratorError::Busy {
                running: other.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether `id` may be triggered now: created, no other test running, every participant
    /// still alive. Checked before the trigger's messages are published, and again at `Start`.
    pub fn check_startable(&self, id: &str, now: Instant) -> Result<TestView, OrchestratorError> {
        self.check_none_running(id)?;
        let t = self
            .tests
            .get(id)
            .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))?;
        if t.status() != TestStatus::Created {
            return Err(OrchestratorError::Conflict(format!(
                "test {id} is {}, not created; create a new test to run again",
                t.status().as_str()
            )));
        }
        let lost: Vec<&str> = t
            .drivers()
            .iter()
            .filter(|d| !self.registry.liveness(d, now).alive)
            .map(String::as_str)
            .collect();
        if !lost.is_empty() {
            return Err(OrchestratorError::Conflict(format!(
                "driver(s) lost since the test was created: {}; create a new test",
                lost.join(", ")
            )));
        }
        Ok(t.view(now))
    }

    /// The running test's ID, if one runs.
    pub fn running(&self) -> Option<&str> {
        self.tests
            .values()
            .find(|t| t.status() == TestStatus::Running)
            .map(TestRun::id)
    }
}

#[path = "state_queries.rs"]
mod queries;

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
