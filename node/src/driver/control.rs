//! The driver's reaction to `test_config`, `trigger` and control messages: which tests to run,
//! when, never twice, which to refuse (with a report saying why); and, for the running test, the
//! report loop that ends in a final report.

use super::failsafe::FailSafe;
use super::{plan_for, Ctx};
use crate::driver::reporter::{Notes, Reporter};
use crate::engine::{self, Running};
use crate::protocol::{
    self, Control as ControlMsg, Heartbeat, Role, TestConfig, Trigger, TriggerAction,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A trigger may arrive a moment before its config (they travel on different topics).
const TRIGGER_GRACE: Duration = Duration::from_secs(5);
/// A trigger whose start instant is this far in the past is stale and never run.
const STALE_START: Duration = Duration::from_secs(60);
/// Configs kept while waiting for their trigger.
const MAX_PENDING_CONFIGS: usize = 64;
/// Refused test IDs remembered, so a config sent again is not refused (and reported) again.
const MAX_REFUSED: usize = 64;
/// How long a new trigger waits for a stopped test to wind down before it is started.
const STOPPING_WAIT: Duration = Duration::from_secs(15);

pub(super) struct ActiveRun {
    pub(super) test_id: String,
    pub(super) running: Running,
    pub(super) task: tokio::task::JoinHandle<()>,
    stopping: bool,
    /// What the run's fail-safe has heard; `None` when the config asked for none.
    fail_safe: Option<FailSafe>,
    /// Its lapse was logged (once).
    lapse_noted: bool,
    /// The last rate change or hand-over applied (`seq`; 0: none).
    rate_seq: u64,
    /// What the run's reports say of hand-overs and why it was stopped.
    notes: Notes,
}

/// A config accepted for this driver, with the settings it lacked filled in.
#[derive(Clone)]
struct Pending {
    config: TestConfig,
    requests: u64,
    defaults: BTreeMap<String, Value>,
    at: Instant,
}

/// The driver's reaction to `test_config`, `trigger` and control messages.
pub(super) struct Control {
    ctx: Arc<Ctx>,
    configs: HashMap<String, Pending>,
    early_triggers: Vec<(Trigger, Instant)>,
    refused: VecDeque<String>,
    pub(super) active: Option<ActiveRun>,
    /// When this driver last registered again on request.
    registered_again: Option<Instant>,
}

/// The shortest gap between two registrations on request.
const REGISTER_AGAIN_EVERY: Duration = Duration::from_secs(1);

impl Control {
    pub(super) fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            configs: HashMap::new(),
            early_triggers: Vec::new(),
            refused: VecDeque::new(),
            active: None,
            registered_again: None,
        }
    }

    pub(super) async fn handle(&mut self, topic: &str, payload: &[u8]) {
        if self.active.as_ref().is_some_and(|a| a.task.is_finished()) {
            self.active = None;
            *self.ctx.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let topics = &self.ctx.cfg.topics;
        if topic == topics.test_config {
            match TestConfig::parse(payload, self.ctx.cfg.seed.delay_unit) {
                Ok(c) => self.on_config(c).await,
                Err(protocol::ConfigError::Unusable {
                    test_id,
                    drivers,
                    reason,
                }) => {
                    if drivers.is_empty() || drivers.contains(&self.ctx.cfg.id) {
                        self.refuse(&test_id, None, &reason).await;
                    }
                }
                Err(e @ protocol::ConfigError::Malformed(_)) => {
                    self.ctx.bus.stats().malformed(topic, &e)
                }
            }
        } else if topic == topics.trigger {
            match protocol::parse::<Trigger>(payload) {
                Ok(t) => self.on_trigger(t).await,
                Err(e) => self.ctx.bus.stats().malformed(topic, &e),
            }
        } else if topic == topics.heartbeat {
            let received_us = protocol::now_unix_us();
            match protocol::parse::<Heartbeat>(payload) {
                Ok(h) => self.on_heartbeat(h, received_us),
                Err(e) => self.ctx.bus.stats().malformed(topic, &e),
            }
        } else if topic == topics.control {
            match protocol::parse::<ControlMsg>(payload) {
                Ok(ControlMsg::Stop { test_id, .. }) => self.stop(&test_id),
                Ok(ControlMsg::SetRate {
                    test_id,
                    seq,
                    at_ms,
                    rates,
                    ..
                }) => match protocol::rate::checked_rates(&rates) {
                    Ok(()) => self.set_rate(&test_id, seq, at_ms, &rates),
                    Err(e) => self.ctx.bus.stats().malformed(topic, &e),
                },
                Ok(msg @ ControlMsg::HandOver { .. }) => self.on_hand_over(msg, topic).await,
                Ok(ControlMsg::Register { node_id, .. }) => {
                    let me = node_id.as_deref().is_none_or(|n| n == self.ctx.cfg.id);
                    // At most once a second, whoever keeps asking.
                    let due = self
                        .registered_again
                        .is_none_or(|at| at.elapsed() >= REGISTER_AGAIN_EVERY);
                    if me && due {
                        self.registered_again = Some(Instant::now());
                        super::register_again(&self.ctx);
                    }
                }
                Err(e) if is_unknown_command(payload) => {
                    tracing::debug!(
                        "ignoring a control message of a kind this driver does not know: {e}"
                    )
                }
                Err(e) => self.ctx.bus.stats().malformed(topic, &e),
            }
        }
    }

    /// Drops triggers whose config never came, with the warning the spec asks for.
    pub(super) fn prune(&mut self, now: Instant) {
        if let Some(run) = self.active.as_mut() {
            // A run with its next send far off stops as lapsed now, not at that send.
            if run.fail_safe.is_some() && !run.lapse_noted && run.running.lapsed() {
                run.lapse_noted = true;
                tracing::warn!(test_id = %run.test_id, "fail-safe: cut off too long; stopped sending");
            }
        }
        self.early_triggers.retain(|(t, at)| {
            let keep = now.duration_since(*at) < TRIGGER_GRACE;
            if !keep {
                tracing::warn!(test_id = %t.test_id, "ignoring a trigger for an unknown test");
            }
            keep
        });
    }

    /// A Floodgate orchestrator's beat is kept, to be echoed in our next beat: the orchestrator
    /// then bounds this node's clock offset (issue 13). Other beats carry nothing for us yet.
    fn on_heartbeat(&mut self, h: Heartbeat, received_us: u64) {
        self.hear(&h, received_us);
        if h.role != Role::Orchestrator || !h.is_floodgate() {
            return;
        }
        if let Some(sent_us) = h.sent_us {
            *self.ctx.echo.lock().unwrap_or_else(|p| p.into_inner()) = Some(protocol::ClockEcho {
                orchestrator: h.node_id,
                orchestrator_sent_us: sent_us,
                received_us,
            });
        }
    }

    /// A beat is a sign of its sender for the running test's fail-safe, as of when it was
    /// sent: a backlog read after a pause (or a partition) is old news, not a renewal.
    fn hear(&mut self, h: &Heartbeat, received_us: u64) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        let Some(f) = run.fail_safe.as_mut() else {
            return;
        };
        let age = h.sent_us.map_or(Duration::ZERO, |s| {
            Duration::from_micros(received_us.saturating_sub(s))
        });
        let Some(at) = Instant::now().checked_sub(age) else {
            return;
        };
        match h.role {
            Role::Orchestrator => f.heard_orchestrator(&h.node_id, at),
            Role::Driver => f.heard_driver(&h.node_id, at),
        }
        if let Some(lease) = f.lease() {
            run.running.extend_lease(lease.into());
        }
    }

    async fn on_config(&mut self, c: TestConfig) {
        if !c.includes(&self.ctx.cfg.id) {
            tracing::debug!(test_id = %c.test_id, "config for other drivers");
            return;
        }
        if self.refused.contains(&c.test_id) {
            return;
        }
        // A test given in totals: this driver's share of it, if it has one.
        let test_id = c.test_id.clone();
        let c = match c.for_driver(&self.ctx.cfg.id) {
            Ok(c) => c,
            Err(reason) => {
                self.refuse(&test_id, None, &reason).await;
                return;
            }
        };
        let mut defaults = BTreeMap::new();
        let requests = match super::planned_requests(&c) {
            Some(n) => n,
            None => {
                let n = self.ctx.cfg.default_count;
                defaults.insert("message_count_per_driver".to_string(), Value::from(n));
                n
            }
        };
        // Refuse now what could never run, rather than at the trigger.
        if let Err(reason) = plan_for(&c, requests, self.ctx.cfg.default_target.as_deref(), None) {
            self.refuse(&c.test_id, Some(requests), &reason).await;
            return;
        }
        if !defaults.is_empty() {
            tracing::info!(test_id = %c.test_id, requests, "the config names no message_count_per_driver: using --default-count");
        }
        tracing::info!(test_id = %c.test_id, test_type = %c.test_type, requests, mix = c.mix.len(), "test configured");
        if self.configs.len() >= MAX_PENDING_CONFIGS {
            if let Some(oldest) = self
                .configs
                .iter()
                .min_by_key(|(_, p)| p.at)
                .map(|(k, _)| k.clone())
            {
                self.configs.remove(&oldest);
            }
        }
        let id = c.test_id.clone();
        self.configs.insert(
            id.clone(),
            Pending {
                config: c,
                requests,
                defaults,
                at: Instant::now(),
            },
        );
        // A trigger that overtook its config on the other topic is honoured now.
        if let Some(i) = self
            .early_triggers
            .iter()
            .position(|(t, _)| t.test_id == id)
        {
            let (t, _) = self.early_triggers.remove(i);
            self.on_trigger(t).await;
        }
    }

    /// Will not run `test_id`: one log line, and a final report that says why.
    async fn refuse(&mut self, test_id: &str, requests: Option<u64>, reason: &str) {
        if self.refused.iter().any(|r| r == test_id) {
            return;
        }
        match self.ctx.store.has_run(test_id).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::warn!("metrics store: {e}"),
        }
        tracing::warn!(%test_id, "refusing the test: {reason}");
        if self.refused.len() >= MAX_REFUSED {
            self.refused.pop_front();
        }
        self.refused.push_back(test_id.to_string());
        self.configs.remove(test_id);
        let requests = requests.unwrap_or(self.ctx.cfg.default_count);
        let report =
            Reporter::new(&self.ctx.cfg.id, test_id, BTreeMap::new()).refused(requests, reason);
        if let Err(e) = self
            .ctx
            .store
            .refused(&report, protocol::now_unix_ms())
            .await
        {
            tracing::warn!("metrics store: {e}");
        }
        finish(&self.ctx, &report).await;
    }

    /// Applies a live rate change to the running test, once per `seq`, from `at_ms` on (or now,
    /// if that has passed: requests already let go stay sent); see `engine::Running::retime`.
    fn set_rate(&mut self, test_id: &str, seq: u64, at_ms: u64, rates: &BTreeMap<String, f64>) {
        let Some(a) = self
            .active
            .as_mut()
            .filter(|a| a.test_id == test_id && !a.stopping)
        else {
            return tracing::debug!(%test_id, "a rate change for a test not running here");
        };
        let Some(&rate) = rates.get(&self.ctx.cfg.id) else {
            return tracing::debug!(%test_id, "a rate change that names no rate for this driver");
        };
        if seq <= a.rate_seq {
            return;
        }
        let at = UNIX_EPOCH + Duration::from_millis(at_ms);
        let gap = Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX);
        match a.running.retime(at, gap, seq) {
            Ok(r) => {
                a.rate_seq = seq;
                let late_ms = r.at.duration_since(at).map_or(0, |d| d.as_millis());
                tracing::info!(%test_id, seq, rate, first = r.first, late_ms, "rate changed");
            }
            Err(e) => tracing::warn!(%test_id, seq, "rate change not applied: {e}"),
        }
    }

    fn stop(&mut self, test_id: &str) {
        match self.active.as_mut() {
            Some(a) if a.test_id == test_id => {
                tracing::info!(%test_id, "stop requested");
                a.stopping = true;
                a.running.stop();
            }
            _ => tracing::debug!(%test_id, "stop for a test not running here"),
        }
        // A test stopped before its trigger never starts.
        self.configs.remove(test_id);
    }

    async fn on_trigger(&mut self, t: Trigger) {
        if t.trigger == TriggerAction::Stop {
            self.stop(&t.test_id);
            return;
        }
        if self.refused.contains(&t.test_id) {
            tracing::debug!(test_id = %t.test_id, "trigger for a refused test");
            return;
        }
        let Some(pending) = self.configs.get(&t.test_id).cloned() else {
            let now = Instant::now();
            if self
                .early_triggers
                .iter()
                .any(|(e, _)| e.test_id == t.test_id)
            {
                return;
            }
            // Keep it for a moment in case the config is still on its way; `prune` warns if it
            // never comes (a trigger for a test this driver was never configured for).
            self.early_triggers.push((t, now));
            return;
        };
        if let Some(at) = t.start_at_ms {
            let now = protocol::now_unix_ms();
            if now > at && Duration::from_millis(now - at) > STALE_START {
                tracing::warn!(test_id = %t.test_id, "ignoring a stale trigger (start was {}s ago)", (now - at) / 1000);
                return;
            }
            let max = protocol::limits::MAX_START_AHEAD_MS;
            if at > now.saturating_add(max) {
                let reason = format!(
                    "start_at_ms is {} s ahead; a start may be at most {} s ahead",
                    (at - now) / 1000,
                    max / 1000
                );
                self.refuse(&t.test_id, Some(pending.requests), &reason)
                    .await;
                return;
            }
        }
        if let Some(a) = self.active.as_mut().filter(|a| !a.stopping) {
            if !a.running.has_started() {
                // A test still waiting for its start gives way to a newer one: the orchestrator
                // runs one test at a time, so it has given the waiting one up (a start set too
                // far ahead, a test stopped while this driver was away).
                tracing::warn!(test_id = %t.test_id, waiting = %a.test_id, "a new trigger replaces a test that has not started yet");
                a.stopping = true;
                a.running.stop();
            }
        }
        if let Some(a) = self.active.take() {
            if a.stopping {
                // The stopped test is winding down (in-flight requests end or time out): let it
                // finish and send its final report, then start the new one.
                let _ = tokio::time::timeout(STOPPING_WAIT, a.task).await;
                *self.ctx.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
            } else {
                tracing::warn!(test_id = %t.test_id, running = %a.test_id, "ignoring a trigger: another test is running");
                self.active = Some(a);
                return;
            }
        }
        match self
            .ctx
            .store
            .begin(&pending.config, protocol::now_unix_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(test_id = %t.test_id, "ignoring a trigger for a test this driver already ran");
                return;
            }
            Err(e) => {
                tracing::error!(test_id = %t.test_id, "metrics store: {e}; not starting the test");
                return;
            }
        }
        self.configs.remove(&t.test_id);
        let start_at = t
            .start_at_ms
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        self.start(pending, start_at).await;
    }

    async fn start(&mut self, p: Pending, start_at: Option<SystemTime>) {
        let test_id = p.config.test_id.clone();
        let mut reporter = Reporter::new(&self.ctx.cfg.id, &test_id, p.defaults);
        let default_target = self.ctx.cfg.default_target.as_deref();
        let started = match plan_for(&p.config, p.requests, default_target, start_at) {
            Ok(plan) => {
                reporter = reporter
                    .for_run(&plan.pacer)
                    .named(p.config.mix.iter().map(|e| e.name.clone()).collect());
                engine::start(plan).await.map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        let running = match started {
            Ok(r) => r,
            Err(e) => {
                // A final report all the same, so the orchestrator ends the test instead of waiting.
                tracing::warn!(%test_id, "refusing the test: {e}");
                let report = reporter.refused(p.requests, &e);
                finish(&self.ctx, &report).await;
                return;
            }
        };
        tracing::info!(%test_id, "test started");
        *self.ctx.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(test_id.clone());
        // The live run, for GET /metrics.
        self.ctx.metrics.started(&test_id, running.clone());
        // The fail-safe counts from the start (or now, if that has passed): the trigger is the
        // orchestrator heard.
        let fail_safe = p.config.fail_safe_ms.filter(|&ms| ms > 0).map(|ms| {
            let from = Instant::now().max(running.start().into_std());
            FailSafe::new(
                Duration::from_millis(ms),
                &self.ctx.cfg.id,
                &p.config.drivers,
                p.config.orchestrator_id.clone(),
                from,
            )
        });
        if let Some(f) = &fail_safe {
            reporter = reporter.on_lapse(f.reason());
            if let Some(lease) = f.lease() {
                running.extend_lease(lease.into());
            }
        }
        let notes = reporter.notes();
        let task = tokio::spawn(report_loop(self.ctx.clone(), running.clone(), reporter));
        self.active = Some(ActiveRun {
            test_id,
            running,
            task,
            stopping: false,
            fail_safe,
            lapse_noted: false,
            rate_seq: 0,
            notes,
        });
    }
}

/// A control message with a `type` this driver does not know (a newer orchestrator's command);
/// one of a known type that does not parse is malformed.
fn is_unknown_command(payload: &[u8]) -> bool {
    const KNOWN: [&str; 4] = ["stop", "set_rate", "hand_over", "register"];
    serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .is_some_and(|t| !KNOWN.contains(&t.as_str()))
}

/// Publishes a cumulative report every interval until the run ends, then the final one.
async fn report_loop(ctx: Arc<Ctx>, running: Running, mut reporter: Reporter) {
    // Ticks are aligned to the common start instant, so every driver reports at the same
    // moments and the orchestrator's per-driver counts are comparable.
    let every = ctx.cfg.report_interval;
    let mut tick = tokio::time::interval_at(running.start() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let finished = running.finished();
    tokio::pin!(finished);
    let last = loop {
        tokio::select! {
            snap = &mut finished => break snap,
            _ = tick.tick() => {
                let report = reporter.report(&running.snapshot(), false);
                ctx.bus.publish_nowait(&ctx.cfg.topics.metrics, &ctx.cfg.id, &report.emit(&ctx.cfg.seed));
                if let Err(e) = ctx.store.record(&report, protocol::now_unix_ms()).await {
                    tracing::warn!("metrics store: {e}");
                }
            }
        }
    };
    let report = reporter.report(&last, true);
    ctx.metrics.ended(&report.test_id, &last);
    tracing::info!(
        test_id = %report.test_id,
        sent = report.requests_sent,
        ok = report.status.c2,
        errors = report.errors.total(),
        first_error = last.recorder.first_error.as_deref().unwrap_or("none"),
        "test finished"
    );
    finish(&ctx, &report).await;
    *ctx.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Puts a final report in the store's outbox and wakes the delivery loop.
async fn finish(ctx: &Ctx, report: &protocol::MetricsReport) {
    let payload = report.emit(&ctx.cfg.seed);
    if let Err(e) = ctx
        .store
        .finish(report, payload.clone(), protocol::now_unix_ms())
        .await
    {
        // Without the store, deliver directly: losing the store must not lose the result.
        tracing::error!("metrics store: {e}; sending the final report without it");
        ctx.bus
            .publish_nowait(&ctx.cfg.topics.metrics, &ctx.cfg.id, &payload);
        return;
    }
    ctx.outbox.notify_one();
}

#[path = "hand_over.rs"]
mod hand_over;

#[cfg(test)]
#[path = "hand_over_tests.rs"]
mod hand_over_tests;
#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
