//! The driver role: registers, heartbeats, and runs the tests the orchestrator configures and
//! triggers, reporting cumulative metrics until a final report is safely in Kafka.

mod reporter;
pub mod store;

use crate::bus::Bus;
use crate::engine::{self, Pacer, Plan, PreparedRequest, Running};
use crate::protocol::{
    self, Heartbeat, Register, Role, TestConfig, TestType, Trigger, TriggerAction,
};
use reporter::Reporter;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::DriverStore;
use tokio::sync::Notify;

/// Defaults applied when a `test_config` leaves an option out (older orchestrators do).
pub const DEFAULT_CONCURRENCY: u64 = 50;
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// A trigger may arrive a moment before its config (they travel on different topics).
const TRIGGER_GRACE: Duration = Duration::from_secs(5);
/// A trigger whose start instant is this far in the past is stale and never run.
const STALE_START: Duration = Duration::from_secs(60);
/// Configs kept while waiting for their trigger.
const MAX_PENDING_CONFIGS: usize = 64;

#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub id: String,
    pub kafka: String,
    pub orchestrator: String,
    /// The address this node reports as its `node_IP`.
    pub advertise: String,
    pub topics: protocol::Topics,
    pub store: PathBuf,
    pub heartbeat_interval: Duration,
    pub report_interval: Duration,
    /// The target URL used when a `test_config` names none (older orchestrators).
    pub default_target: Option<String>,
}

struct Ctx {
    cfg: DriverConfig,
    bus: Bus,
    store: DriverStore,
    /// The test being run, shown in heartbeats.
    current: Mutex<Option<String>>,
    outbox: Notify,
}

/// Runs a driver until `shutdown` resolves.
/// Runs a driver until `shutdown` resolves, serving its health endpoint on `http`.
pub async fn run(
    cfg: DriverConfig,
    http: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = DriverStore::open(&cfg.store)?;
    let bus = Bus::new(
        &cfg.kafka,
        &format!("floodgate-driver-{}", cfg.id),
        cfg.topics.clone(),
    )?;
    bus.ensure_topics().await?;
    // Listen before registering, so that a config sent in answer to the registration is seen.
    let inbox = bus
        .consume_from_now(&[&cfg.topics.test_config, &cfg.topics.trigger])
        .await?;
    let ctx = Arc::new(Ctx {
        cfg,
        bus,
        store,
        current: Mutex::new(None),
        outbox: Notify::new(),
    });
    tokio::spawn(serve_health(ctx.clone(), http));
    register(&ctx).await;
    tracing::info!(id = %ctx.cfg.id, orchestrator = %ctx.cfg.orchestrator, "driver registered");

    let heartbeat = tokio::spawn(heartbeat_loop(ctx.clone()));
    let outbox = tokio::spawn(outbox_loop(ctx.clone()));
    let mut control = Control {
        ctx: ctx.clone(),
        configs: HashMap::new(),
        early_triggers: Vec::new(),
        active: None,
    };
    let mut prune = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            msg = inbox.recv() => control.handle(&msg.topic, &msg.payload).await,
            _ = prune.tick() => control.prune(),
            _ = &mut shutdown => break,
        }
    }
    if let Some(active) = control.active.take() {
        tracing::info!(test_id = %active.test_id, "stopping the running test before exit");
        active.running.stop();
        let _ = tokio::time::timeout(Duration::from_secs(10), active.task).await;
    }
    heartbeat.abort();
    outbox.abort();
    ctx.bus.flush(Duration::from_secs(5));
    tracing::info!("driver stopped");
    Ok(())
}

async fn serve_health(ctx: Arc<Ctx>, listener: tokio::net::TcpListener) {
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || async move {
            let test_id = ctx.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
            axum::Json(serde_json::json!({
                "status": "ok", "driver_id": ctx.cfg.id, "test_id": test_id, "kafka": ctx.bus.stats.to_json(),
            }))
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("driver HTTP endpoint stopped: {e}");
    }
}

async fn register(ctx: &Ctx) {
    let msg = Register {
        node_id: ctx.cfg.id.clone(),
        node_ip: ctx.cfg.advertise.clone(),
        message_type: protocol::DRIVER_REGISTER.to_string(),
        role: Role::Driver,
        orchestrator: Some(ctx.cfg.orchestrator.clone()),
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
    };
    let payload = protocol::emit(&msg);
    let mut backoff = Duration::from_millis(200);
    while let Err(e) = ctx
        .bus
        .publish(&ctx.cfg.topics.register, &ctx.cfg.id, &payload)
        .await
    {
        ctx.bus.stats.trouble("cannot register yet", &e);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Heartbeats from registration until the driver stops, on a fixed schedule.
async fn heartbeat_loop(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(ctx.cfg.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let beat = Heartbeat {
            node_id: ctx.cfg.id.clone(),
            heartbeat: "YES".to_string(),
            timestamp: protocol::now_rfc3339(),
            node_ip: Some(ctx.cfg.advertise.clone()),
            role: Role::Driver,
            test_id: ctx
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        };
        ctx.bus.publish_nowait(
            &ctx.cfg.topics.heartbeat,
            &ctx.cfg.id,
            &protocol::emit(&beat),
        );
    }
}

/// Delivers final reports from the store until Kafka acknowledges each; survives outages and
/// restarts because the store, not memory, holds what is owed.
async fn outbox_loop(ctx: Arc<Ctx>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let owed = match ctx.store.undelivered().await {
            Ok(owed) => owed,
            Err(e) => {
                tracing::error!("reading the outbox: {e}");
                Vec::new()
            }
        };
        let mut failed = false;
        for (test_id, payload) in owed {
            match ctx
                .bus
                .publish(&ctx.cfg.topics.metrics, &ctx.cfg.id, &payload)
                .await
            {
                Ok(()) => {
                    if let Err(e) = ctx.store.delivered(&test_id).await {
                        tracing::error!("marking a final report delivered: {e}");
                    }
                    tracing::info!(%test_id, "final report delivered");
                }
                Err(e) => {
                    ctx.bus
                        .stats
                        .trouble("final report not delivered yet, will retry", &e);
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        } else {
            backoff = Duration::from_millis(250);
            ctx.outbox.notified().await;
        }
    }
}

struct ActiveRun {
    test_id: String,
    running: Running,
    task: tokio::task::JoinHandle<()>,
}

/// The driver's reaction to `test_config` and `trigger` messages.
struct Control {
    ctx: Arc<Ctx>,
    configs: HashMap<String, (TestConfig, Instant)>,
    early_triggers: Vec<(Trigger, Instant)>,
    active: Option<ActiveRun>,
}

impl Control {
    async fn handle(&mut self, topic: &str, payload: &[u8]) {
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
    fn prune(&mut self) {
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
        let plan = match plan_for(&config, self.ctx.cfg.default_target.as_deref(), start_at) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(test_id = %config.test_id, "cannot run the test: {e}");
                let report = reporter.failed_to_start(config.message_count_per_driver);
                finish(&self.ctx, &report).await;
                return;
            }
        };
        let running = match engine::start(plan).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(test_id = %config.test_id, "cannot run the test: {e}");
                let report = reporter.failed_to_start(config.message_count_per_driver);
                finish(&self.ctx, &report).await;
                return;
            }
        };
        tracing::info!(test_id = %config.test_id, "test started");
        *self.ctx.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(config.test_id.clone());
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

/// A report built the way a driver builds one (for other modules' tests).
#[cfg(test)]
pub(crate) fn reporter_for_tests(
    node: &str,
    test: &str,
    snap: &engine::Snapshot,
    is_final: bool,
) -> protocol::MetricsReport {
    Reporter::new(node, test).report(snap, is_final)
}

/// Translates a `test_config` into the engine's plan.
pub fn plan_for(
    c: &TestConfig,
    default_target: Option<&str>,
    start_at: Option<SystemTime>,
) -> Result<Plan, String> {
    let (url, method, headers, body) = match &c.target {
        Some(t) => (
            t.url.as_str(),
            t.method.as_str(),
            t.headers.as_slice(),
            t.body.as_deref(),
        ),
        None => (
            default_target
                .ok_or("the test names no target URL and the driver has no --target default")?,
            "GET",
            &[][..],
            None,
        ),
    };
    let request = PreparedRequest::build(url, method, headers, body).map_err(|e| e.to_string())?;
    let delay = match c.test_type {
        TestType::Tsunami if c.test_message_delay > 0.0 => {
            Duration::from_secs_f64(c.test_message_delay / 1000.0)
        }
        _ => Duration::ZERO,
    };
    Ok(Plan {
        request,
        pacer: Pacer::new(delay, c.throughput_per_driver),
        requests: c.message_count_per_driver,
        concurrency: usize::try_from(c.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1))
            .unwrap_or(usize::MAX),
        timeout: Duration::from_millis(c.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS).max(1)),
        start_at,
    })
}
