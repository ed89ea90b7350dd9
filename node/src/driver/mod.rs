//! The driver role: registers, heartbeats, and runs the tests the orchestrator configures and
//! triggers, reporting cumulative metrics until a final report is safely in Kafka.

mod control;
mod failsafe;
pub mod generator;
mod reporter;
pub mod store;

use crate::bus::{Bus, KafkaBus};
use crate::engine::{Checker, MixRequest, Pacer, Plan, PreparedRequest};
use crate::protocol::{self, Heartbeat, Register, Role, SeedStyle, TestConfig, TestType};
use crate::schedule::Pace;
use control::Control;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use store::DriverStore;
use tokio::sync::Notify;

/// Requests per driver when a `test_config` names no count (one peer's orchestrator sends none);
/// `--default-count` changes it, and every report of such a test says it was used.
pub const DEFAULT_COUNT: u64 = 1000;

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
    /// Requests per driver when a `test_config` names no count.
    pub default_count: u64,
    /// The capacity it declares in `register` and `heartbeat` (issue 13).
    pub capacity: Option<f64>,
    /// How the seed's fields are written in reports, and the unit of a foreign config's delay.
    pub seed: SeedStyle,
    /// How long start-up waits for Kafka.
    pub kafka_wait: Duration,
    /// How its Kafka clients authenticate and encrypt.
    pub kafka_security: crate::bus::security::KafkaSecurity,
}

struct Ctx {
    cfg: DriverConfig,
    bus: Arc<dyn Bus>,
    store: DriverStore,
    /// The test being run, shown in heartbeats.
    current: Mutex<Option<String>>,
    outbox: Notify,
    /// Prometheus metrics: the running test's engine and recent tests' figures.
    metrics: crate::metrics::driver::DriverMetrics,
    /// The latest orchestrator beat heard, echoed in every beat of ours (issue 13).
    echo: Mutex<Option<protocol::ClockEcho>>,
}

/// Runs a driver on Kafka until `shutdown` resolves, serving its health endpoint on `http`.
pub async fn run(
    cfg: DriverConfig,
    http: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let bus = KafkaBus::with_startup_wait(
        &cfg.kafka,
        &format!("floodgate-driver-{}", cfg.id),
        cfg.topics.clone(),
        cfg.kafka_wait,
        &cfg.kafka_security,
    )?;
    run_on(cfg, Arc::new(bus), http, shutdown).await
}

/// [`run`] on a given bus (the in-memory one, in unit tests).
pub async fn run_on(
    cfg: DriverConfig,
    bus: Arc<dyn Bus>,
    http: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = DriverStore::open(&cfg.store)?;
    bus.ensure_topics().await?;
    // Listen before registering, so that a config sent in answer to the registration is seen.
    let mut inbox = bus
        .subscribe(
            &[
                &cfg.topics.test_config,
                &cfg.topics.trigger,
                &cfg.topics.control,
                // Others' beats: the orchestrator's are echoed for its clock estimate.
                &cfg.topics.heartbeat,
            ],
            vec![],
        )
        .await?;
    let metrics = crate::metrics::driver::DriverMetrics::new(&cfg.id, bus.stats().clone());
    let ctx = Arc::new(Ctx {
        cfg,
        bus,
        store,
        current: Mutex::new(None),
        outbox: Notify::new(),
        metrics,
        echo: Mutex::new(None),
    });
    tokio::spawn(serve_health(ctx.clone(), http));
    register(&ctx).await?;
    tracing::info!(id = %ctx.cfg.id, orchestrator = %ctx.cfg.orchestrator, "driver registered");

    let heartbeat = tokio::spawn(heartbeat_loop(ctx.clone()));
    let outbox = tokio::spawn(outbox_loop(ctx.clone()));
    let mut control = Control::new(ctx.clone());
    let mut prune = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            msg = inbox.recv() => control.handle(&msg.topic, &msg.payload).await,
            _ = prune.tick() => control.prune(std::time::Instant::now()),
            _ = &mut shutdown => break,
        }
    }
    if let Some(active) = control.active.take().filter(|a| !a.task.is_finished()) {
        tracing::info!(test_id = %active.test_id, "stopping the running test before exit");
        active.running.stop();
        let _ = tokio::time::timeout(Duration::from_secs(10), active.task).await;
    }
    heartbeat.abort();
    outbox.abort();
    // One last bounded attempt; whatever is still owed stays in the store for the next start.
    if tokio::time::timeout(Duration::from_secs(5), deliver_owed(&ctx))
        .await
        .is_err()
    {
        tracing::warn!("final reports still owed; they will be sent on the next start");
    }
    ctx.bus.flush(Duration::from_secs(5));
    tracing::info!("driver stopped");
    Ok(())
}

/// The driver's HTTP endpoint: `/healthz`, Prometheus `/metrics`, and its metrics store:
/// `/api/v1/tests` (the tests it ran, newest first, each with its last progress row) and
/// `/api/v1/tests/{id}` (every progress row of one test).
async fn serve_health(ctx: Arc<Ctx>, listener: tokio::net::TcpListener) {
    let metrics_ctx = ctx.clone();
    let store = ctx.store.clone();
    let store2 = ctx.store.clone();
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || async move {
            let test_id = ctx.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
            axum::Json(serde_json::json!({
                "status": "ok", "driver_id": ctx.cfg.id, "test_id": test_id, "kafka": ctx.bus.stats().to_json(),
            }))
        }),
    )
    .route(
        "/metrics",
        axum::routing::get(move || async move {
            crate::metrics::response(metrics_ctx.metrics.render())
        }),
    )
    .route(
        "/api/v1/tests",
        axum::routing::get(move || async move {
            match store.tests().await {
                Ok(tests) => Ok(axum::Json(serde_json::json!({ "tests": tests }))),
                Err(e) => Err(store_error(&e)),
            }
        }),
    )
    .route(
        "/api/v1/tests/{id}",
        axum::routing::get(move |axum::extract::Path(id): axum::extract::Path<String>| async move {
            match store2.reports(&id, false).await {
                Ok(rows) => Ok(axum::Json(serde_json::json!({ "test_id": id, "reports": rows }))),
                Err(e) => Err(store_error(&e)),
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("driver HTTP endpoint stopped: {e}");
    }
}

/// A store failure as a 500 that does not echo the database's message (it is logged).
fn store_error(e: &anyhow::Error) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    tracing::error!("metrics store: {e}");
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({"error": "the driver's metrics store failed; see its log"})),
    )
}

/// Registers, waiting out a broker that is not ready (up to the start-up deadline).
async fn register(ctx: &Ctx) -> anyhow::Result<()> {
    let payload = protocol::emit(&registration(ctx));
    let mut backoff = crate::bus::startup::Backoff::new(
        "registering",
        ctx.cfg.kafka_wait,
        std::time::Instant::now(),
    );
    while let Err(e) = ctx
        .bus
        .publish(&ctx.cfg.topics.register, &ctx.cfg.id, &payload)
        .await
    {
        backoff.wait(e).await?;
    }
    Ok(())
}

/// This driver's `register` message.
fn registration(ctx: &Ctx) -> Register {
    Register {
        node_id: ctx.cfg.id.clone(),
        node_ip: ctx.cfg.advertise.clone(),
        message_type: protocol::DRIVER_REGISTER.to_string(),
        role: Role::Driver,
        orchestrator: Some(ctx.cfg.orchestrator.clone()),
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        agent: Some(protocol::AGENT.to_string()),
        heartbeat_ms: Some(ctx.cfg.heartbeat_interval.as_millis() as u64),
        capacity: ctx.cfg.capacity,
    }
}

/// Registers again, when an orchestrator that has no registration of this driver asks (it
/// started after this driver did): queued, like a heartbeat, so the control loop never waits.
fn register_again(ctx: &Ctx) {
    tracing::info!("registering again, as the orchestrator asked");
    ctx.bus.publish_nowait(
        &ctx.cfg.topics.register,
        &ctx.cfg.id,
        &protocol::emit(&registration(ctx)),
    );
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
            agent: Some(protocol::AGENT.to_string()),
            heartbeat_ms: Some(ctx.cfg.heartbeat_interval.as_millis() as u64),
            capacity: ctx.cfg.capacity,
            clock: ctx.echo.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            sent_us: Some(protocol::now_unix_us()),
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
        if deliver_owed(&ctx).await {
            backoff = Duration::from_millis(250);
            ctx.outbox.notified().await;
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// One pass over the outbox; true when nothing is owed any more.
async fn deliver_owed(ctx: &Ctx) -> bool {
    let owed = match ctx.store.undelivered().await {
        Ok(owed) => owed,
        Err(e) => {
            tracing::error!("reading the outbox: {e}");
            return false;
        }
    };
    let mut all = true;
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
                    .stats()
                    .trouble("final report not delivered yet, will retry", &e);
                all = false;
            }
        }
    }
    all
}

/// A report built the way a driver builds one (for other modules' tests).
#[cfg(test)]
pub(crate) fn reporter_for_tests(
    node: &str,
    test: &str,
    snap: &crate::engine::Snapshot,
    is_final: bool,
) -> protocol::MetricsReport {
    reporter::Reporter::new(node, test, Default::default()).report(snap, is_final)
}

/// The engine's transport for a test's wire settings (the TLS config is built here, once).
pub fn engine_transport(
    url: &crate::http::Url,
    t: &protocol::Transport,
    connections: usize,
) -> Result<crate::engine::Transport, crate::http::RequestError> {
    let tls = t.tls.clone().unwrap_or_default();
    let options = crate::engine::tls::TlsOptions {
        ca_pem: tls.ca_pem,
        insecure_skip_verify: tls.insecure_skip_verify,
        server_name: tls.server_name,
    };
    crate::engine::Transport::new(
        url,
        t.http_version == protocol::HttpVersion::Http2,
        t.streams(),
        &options,
        connections,
    )
}

/// Translates a `test_config` into the engine's plan: `requests` per driver (the config's count
/// or the driver's default), against the config's target or else the driver's `--target`.
pub fn plan_for(
    c: &TestConfig,
    requests: u64,
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
    let http2 = c.transport.http_version == protocol::HttpVersion::Http2;
    let mix = mix_requests(&c.mix, http2)?;
    let request = match mix.first() {
        Some(m) => m.request.clone(),
        None => PreparedRequest::build_for(url, method, headers, body, http2)
            .map_err(|e| e.to_string())?,
    };
    let concurrency = usize::try_from(
        c.concurrency
            .unwrap_or(protocol::limits::DEFAULT_CONCURRENCY)
            .max(1),
    )
    .unwrap_or(usize::MAX);
    let transport =
        engine_transport(&request.url, &c.transport, concurrency).map_err(|e| e.to_string())?;
    let (pacer, requests, until) = pace_of(c, requests);
    Ok(Plan {
        request,
        pacer,
        requests,
        until,
        concurrency,
        timeout: Duration::from_millis(
            c.timeout_ms
                .unwrap_or(protocol::limits::DEFAULT_TIMEOUT_MS)
                .max(1),
        ),
        start_at,
        // The mix and the test's checks reach the engine (an entry's own checks are in it).
        mix,
        checker: c.checks.as_ref().map(checker_of).unwrap_or_default(),
        record_sends: 0,
        // The orchestrator sends at most this many (it refuses more), so none is refused here.
        max_retimes: crate::protocol::limits::MAX_RATE_CHANGES,
        transport,
    })
}

/// A mix's entries as the engine sends them; an error names the entry (`mix[2]: ...`).
pub fn mix_requests(mix: &[protocol::MixEntry], http2: bool) -> Result<Vec<MixRequest>, String> {
    mix.iter()
        .enumerate()
        .map(|(i, e)| {
            let request =
                PreparedRequest::build_for(&e.url, &e.method, &e.headers, e.body.as_deref(), http2)
                    .map_err(|err| format!("mix[{i}]: {err}"))?;
            Ok(MixRequest {
                request,
                weight: e.weight,
                checker: e.checks.as_ref().map(checker_of),
            })
        })
        .collect()
}

/// The engine's checker for a test's (or a mix entry's) checks.
pub fn checker_of(c: &protocol::Checks) -> Checker {
    Checker::new(
        c.status.0.clone(),
        c.body_contains.as_deref().map(str::as_bytes),
        c.json
            .iter()
            .map(|j| (j.pointer.clone(), j.equals.clone()))
            .collect(),
    )
}

/// The pace of a test, how many requests it sends and until when: a count-bound test sends
/// `requests` at its constant pace; a time-bound one the requests its pace has due within its
/// duration, or (unpaced) as many as fit before its end.
pub fn pace_of(c: &TestConfig, requests: u64) -> (Pacer, u64, Option<Duration>) {
    let delay = match c.test_type {
        TestType::Tsunami => Duration::from_micros(c.delay_us),
        TestType::Avalanche => Duration::ZERO,
    };
    let Some(t) = &c.time_bound else {
        return (Pacer::new(delay, c.throughput_per_driver), requests, None);
    };
    let duration = Duration::from_millis(t.duration_ms);
    let stages = t.stages.iter().map(|s| (s.duration_ms, s.rate));
    let pace = Pace::of(delay, c.throughput_per_driver, t.start_rate, stages);
    match (pace.count_within(duration), pace) {
        (Some(n), Pace::Staged(s)) => (Pacer::staged(s), n, None),
        (Some(n), Pace::Constant(gap)) => (Pacer::Constant { gap }, n, None),
        (None, _) => (Pacer::UNPACED, u64::MAX, Some(duration)),
    }
}

/// The requests per driver a config asks for: its count, or a time-bound test's planned count
/// (0 when unpaced: as many as fit); `None` when it names neither (the driver's default).
pub fn planned_requests(c: &TestConfig) -> Option<u64> {
    if c.time_bound.is_some() {
        let (_, n, until) = pace_of(c, 0);
        return Some(if until.is_some() { 0 } else { n });
    }
    c.requests
}
