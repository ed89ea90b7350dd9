//! The driver's reaction to `test_config` and `trigger` messages: which tests to run, when,
//! and never twice; and, for the running test, the report loop that ends in a final report.

use super::{plan_for, Ctx};
use crate::driver::reporter::Reporter;
use crate::engine::{self, Running};
use crate::protocol::{self, TestConfig, Trigger, TriggerAction};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A trigger may arrive a moment before its config (they travel on different topics).
const TRIGGER_GRACE: Duration = Duration::from_secs(5);
/// A trigger whose start instant is this far in the past is stale and never run.
const STALE_START: Duration = Duration::from_secs(60);
/// Configs kept while waiting for their trigger.
const MAX_PENDING_CONFIGS: usize = 64;

pub(super) struct ActiveRun {
    pub(super) test_id: String,
    pub(super) running: Running,
    pub(super) task: tokio::task::JoinHandle<()>,
}

/// The driver's reaction to `test_config` and `trigger` messages.
pub(super) struct Control {
    ctx: Arc<Ctx>,
    configs: HashMap<String, (TestConfig, Instant)>,
    early_triggers: Vec<(Trigger, Instant)>,
    pub(super) active: Option<ActiveRun>,
}

impl Control {
    pub(super) fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            configs: HashMap::new(),
            early_triggers: Vec::new(),
            active: None,
        }
    }

    pub(super) async fn handle(&mut self, topic: &str, payload: &[u8]) {
        if self.active.as_ref().is_some_and(|a| a.task.is_finished()) {
            self.active = None;
            *self.ctx.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let topics = &self.ctx.cfg.topics;
        if topic == topics.test_config {
            match protocol::parse::<TestConfig>(payload) {
                Ok(c) => self.on_config(c).await,
                Err(e) => self.ctx.bus.stats.malformed(topic, &e),
            }
        } else if topic == topics.trigger {
            match protocol::parse::<Trigger>(payload) {
                Ok(t) => self.on_trigger(t).await,
                Err(e) => self.ctx.bus.stats.malformed(topic, &e),
            }
        }
    }

    /// Drops triggers whose config never came, with the warning the spec asks for.
    pub(super) fn prune(&mut self) {
        let now = Instant::now();
        self.early_triggers.retain(|(t, at)| {
            let keep = now.duration_since(*at) < TRIGGER_GRACE;
            if !keep {
                tracing::warn!(test_id = %t.test_id, "ignoring a trigger for an unknown test");
            }
            keep
        });
    }

    async fn on_config(&mut self, c: TestConfig) {
        if !c.drivers.is_empty() && !c.drivers.contains(&self.ctx.cfg.id) {
            tracing::debug!(test_id = %c.test_id, "config for other drivers");
            return;
        }
        tracing::info!(test_id = %c.test_id, test_type = %c.test_type, requests = c.message_count_per_driver, "test configured");
        if self.configs.len() >= MAX_PENDING_CONFIGS {
            if let Some(oldest) = self
                .configs
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                self.configs.remove(&oldest);
            }
        }
        let id = c.test_id.clone();
        self.configs.insert(id.clone(), (c, Instant::now()));
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

    async fn on_trigger(&mut self, t: Trigger) {
        if t.trigger == TriggerAction::Stop {
            match &self.active {
                Some(a) if a.test_id == t.test_id => {
                    tracing::info!(test_id = %t.test_id, "stop requested");
                    a.running.stop();
                }
                _ => tracing::debug!(test_id = %t.test_id, "stop for a test not running here"),
            }
            return;
        }
        let Some((config, _)) = self.configs.get(&t.test_id).cloned() else {
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
        }
        if let Some(a) = &self.active {
            tracing::warn!(test_id = %t.test_id, running = %a.test_id, "ignoring a trigger: another test is running");
            return;
        }
        match self.ctx.store.begin(&config, protocol::now_unix_ms()).await {
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
        self.start(config, start_at).await;
    }

    async fn start(&mut self, config: TestConfig, start_at: Option<SystemTime>) {
        let mut reporter = Reporter::new(&self.ctx.cfg.id, &config.test_id);
        let default_target = self.ctx.cfg.default_target.as_deref();
        let started = match plan_for(&config, default_target, start_at) {
            Ok(plan) => engine::start(plan).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let running = match started {
            Ok(r) => r,
            Err(e) => {
                // A final report all the same, so the orchestrator ends the test instead of waiting.
                tracing::error!(test_id = %config.test_id, "cannot run the test: {e}");
                let report = reporter.failed_to_start(config.message_count_per_driver);
                finish(&self.ctx, &report).await;
                return;
            }
        };
        tracing::info!(test_id = %config.test_id, "test started");
        *self.ctx.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(config.test_id.clone());
        // Issue 3: the live run, for GET /metrics.
        self.ctx.metrics.started(&config.test_id, running.clone());
        let task = tokio::spawn(report_loop(self.ctx.clone(), running.clone(), reporter));
        self.active = Some(ActiveRun {
            test_id: config.test_id,
            running,
            task,
        });
    }
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
                ctx.bus.publish_nowait(&ctx.cfg.topics.metrics, &ctx.cfg.id, &protocol::emit(&report));
                if let Err(e) = ctx.store.record(&report, protocol::now_unix_ms()).await {
                    tracing::warn!("metrics store: {e}");
                }
            }
        }
    };
    let report = reporter.report(&last, true);
    ctx.metrics.ended(&report.test_id, &last); // issue 3: final figures for GET /metrics
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
    if let Err(e) = ctx.store.finish(report, protocol::now_unix_ms()).await {
        // Without the store, deliver directly: losing the store must not lose the result.
        tracing::error!("metrics store: {e}; sending the final report without it");
        ctx.bus.publish_nowait(
            &ctx.cfg.topics.metrics,
            &ctx.cfg.id,
            &protocol::emit(report),
        );
        return;
    }
    ctx.outbox.notify_one();
}
