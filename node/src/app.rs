//! Wires each CLI role from its arguments: IDs, stores, listeners, shutdown. `main` stays thin.

use crate::api::access::{self, Access, Exposure};
use crate::cli::{AccessArgs, DriverArgs, LoadArgs, OrchestratorArgs};
use crate::driver::{self, DriverConfig};
use crate::engine::{self, Pacer, Plan};
use crate::orchestrator::{Orchestrator, OrchestratorConfig};
use crate::protocol::limits;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Parses the command line; on a usage error prints one line saying what to fix (not a usage
/// screen) and exits 2. `--help` and `--version` print and exit 0.
pub fn parse_args_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let rendered = e.to_string();
            let first: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{} (see --help)", first.join(" "));
            std::process::exit(2);
        }
    }
}

/// Starts logging and the multi-thread runtime, or exits 2 with one line.
pub fn runtime_or_exit(format: crate::cli::LogFormat, filter: &str) -> tokio::runtime::Runtime {
    if let Err(e) = crate::telemetry::init(format, filter) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn short_uuid() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

fn default_store(name: &str) -> PathBuf {
    let dir = std::env::var_os("FLOODGATE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".floodgate"));
    dir.join(format!("{name}.sqlite"))
}

async fn bind(addr: &str, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({flag}): {e}"))
}

/// The API's access policy from its flags, FLOODGATE_TOKEN and the token file; refuses an API
/// without tokens on a reachable address unless `--insecure-no-auth`. Tokens are never logged.
pub fn access(args: &AccessArgs, bound: std::net::SocketAddr) -> anyhow::Result<Access> {
    let mut tokens = Vec::new();
    if let Some(t) = std::env::var(access::TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        let t = t.trim().to_string();
        access::check_token(&t, access::TOKEN_ENV)?;
        tokens.push(t);
    }
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", path.display()))?;
        tokens.extend(access::parse_token_file(
            &text,
            &format!("--token-file {}", path.display()),
        )?);
    }
    let count = tokens.len();
    let exposure =
        access::exposure(bound, count > 0, args.insecure_no_auth).map_err(anyhow::Error::msg)?;
    match exposure {
        Exposure::Tokens => tracing::info!(
            tokens = count,
            reads_open = args.reads_open,
            "the API requires a token"
        ),
        Exposure::Loopback => {
            tracing::info!("the API needs no token: it listens on loopback only ({bound})")
        }
        Exposure::Insecure => tracing::warn!(
            "the API on {bound} needs no token (--insecure-no-auth): anyone who reaches it can \
             start load tests"
        ),
    }
    let mut access = if count > 0 {
        Access::with_tokens(tokens)
    } else {
        Access::open()
    };
    access.reads_open = args.reads_open;
    access.metrics_open = args.metrics_open;
    access.loopback_names_only = exposure == Exposure::Loopback;
    Ok(access.allow_origins(&args.allowed_origins)?)
}

pub async fn orchestrator(args: OrchestratorArgs) -> anyhow::Result<()> {
    let id = args
        .id
        .unwrap_or_else(|| format!("orchestrator-{}", short_uuid()));
    let (targets, caps) = args.deployment.policy()?;
    let listener = bind(&args.listen, "--listen").await?;
    let advertise = listener.local_addr()?.to_string();
    // Before Kafka: a refused configuration fails at once, not after the broker wait.
    let access = access(&args.access, listener.local_addr()?)?;
    let cfg = OrchestratorConfig {
        targets,
        caps,
        heartbeat_timeout: Duration::from_millis(args.heartbeat_timeout_ms.max(1)),
        start_delay: Duration::from_millis(args.start_delay_ms),
        config_gap: Duration::from_millis(args.config_gap_ms),
        seed: args.seed.style(),
        policy: crate::orchestrator::run::Policy {
            quiet: Duration::from_millis(args.quiet_period_ms.max(1)),
            no_report: Duration::from_millis(args.no_report_timeout_ms.max(1)),
        },
        kafka_wait: args.kafka.wait(),
        kafka_security: args.kafka.security.security(),
        ..OrchestratorConfig::new(
            &id,
            &args.kafka.kafka,
            &advertise,
            args.kafka.topics(),
            args.store.unwrap_or_else(|| default_store("orchestrator")),
        )
    };
    let o = Orchestrator::start(cfg).await?;
    tracing::info!("REST API on http://{advertise}/api/v1");
    // Printed plainly too, so scripts and tests can find a port chosen with :0.
    println!("floodgate orchestrator listening on {advertise}");
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let server =
        axum::serve(listener, crate::api::router(o, access)).with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = stopping_tx.send(true);
        });
    // Graceful shutdown waits for every open response, and a dashboard's event stream never
    // ends: give requests in flight a moment, then exit regardless.
    let grace = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served?,
        _ = grace => tracing::info!("stopped with event streams still open"),
    }
    Ok(())
}

/// How long the orchestrator's HTTP server waits for open responses once asked to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub async fn driver(args: DriverArgs) -> anyhow::Result<()> {
    if args.report_ms == 0 || args.report_ms > 1000 {
        anyhow::bail!("--report-ms must be between 1 and 1000 (the orchestrator must know counts at most 1 s old)");
    }
    use crate::protocol::limits::{MAX_CAPACITY, MIN_CAPACITY};
    if args.heartbeat_ms == 0 {
        anyhow::bail!("--heartbeat-ms must be > 0");
    }
    if !(1..=crate::protocol::limits::MAX_REQUESTS).contains(&args.default_count) {
        anyhow::bail!(
            "--default-count must be between 1 and {}",
            crate::protocol::limits::MAX_REQUESTS
        );
    }
    let declared = args
        .capacity
        .or(args.capacity_millicores.map(|m| m as f64 / 1000.0));
    let capacity = match declared {
        Some(c) if (MIN_CAPACITY..=MAX_CAPACITY).contains(&c) => c,
        Some(c) => {
            anyhow::bail!("--capacity must be between {MIN_CAPACITY} and {MAX_CAPACITY}, got {c}")
        }
        None => std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
    };
    let id = args
        .id
        .unwrap_or_else(|| format!("driver-{}", short_uuid()));
    let listener = bind(&args.listen, "--listen").await?;
    let bound = listener.local_addr()?.to_string();
    let cfg = DriverConfig {
        store: args
            .store
            .unwrap_or_else(|| default_store(&format!("driver-{id}"))),
        id,
        kafka: args.kafka.kafka.clone(),
        orchestrator: args.orchestrator,
        advertise: args.advertise.unwrap_or_else(|| bound.clone()),
        topics: args.kafka.topics(),
        heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
        report_interval: Duration::from_millis(args.report_ms),
        default_target: args.target,
        default_count: args.default_count,
        capacity: Some(capacity),
        seed: args.seed.style(),
        kafka_wait: args.kafka.wait(),
        kafka_security: args.kafka.security.security(),
    };
    println!("floodgate driver {} listening on {bound}", cfg.id);
    driver::run(cfg, listener, shutdown_signal()).await
}

/// `floodgate load`: the engine alone, for one machine and for benchmarks.
/// How long `floodgate load` leaves its connections to open before the first request is due.
const LOAD_WARMUP: Duration = Duration::from_millis(200);
/// How many send instants `floodgate load` records for its gap figures (800 KB).
const RECORD_SENDS: usize = 100_000;

/// `floodgate load` ran, but its thresholds did not pass (exit code 3, as `test run`).
#[derive(Debug, thiserror::Error)]
#[error("thresholds {0}")]
pub struct ThresholdsNotPassed(pub &'static str);

/// The `--threshold`s of `floodgate load`, parsed before anything runs.
fn load_thresholds(
    args: &LoadArgs,
    names: &[String],
) -> anyhow::Result<Vec<crate::thresholds::Threshold>> {
    let items: Vec<serde_json::Value> = args.thresholds.iter().map(|t| t.as_str().into()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let scopes = (!names.is_empty()).then_some(&names[..]);
    crate::thresholds::from_json(&items)
        .and_then(|t| crate::thresholds::check_scopes(&t, scopes).map(|()| t))
        .map_err(|e| {
            let i: usize = e
                .field
                .trim_start_matches("thresholds[")
                .trim_end_matches(']')
                .parse()
                .unwrap_or(0);
            let given = args.thresholds.get(i).map(String::as_str).unwrap_or("");
            anyhow::anyhow!("--threshold {given:?}: {}", e.message)
        })
}

/// Evaluates `floodgate load`'s thresholds on its own data, with the orchestrator's evaluator.
fn load_verdict(
    thresholds: &[crate::thresholds::Threshold],
    s: &engine::Snapshot,
    names: &[String],
) -> Option<crate::thresholds::eval::Thresholds> {
    use crate::thresholds::eval::evaluate_all;
    if thresholds.is_empty() {
        return None;
    }
    Some(evaluate_all(
        thresholds,
        |scope| crate::load_mix::data(s, names, scope),
        true,
        None,
    ))
}

pub async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let settings = args
        .transport
        .settings(args.concurrency)
        .map_err(anyhow::Error::msg)?;
    let http2 = settings.http_version == crate::protocol::HttpVersion::Http2;
    let to_send = crate::load_mix::requests(&args, http2)?;
    let thresholds = load_thresholds(&args, &to_send.names)?;
    let transport = crate::driver::engine_transport(
        &to_send.request.url,
        &settings,
        usize::try_from(args.concurrency).unwrap_or(usize::MAX),
    )
    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if args.requests == Some(0) || args.concurrency == 0 {
        anyhow::bail!("--requests and --concurrency must be > 0");
    }
    // The same bounds as a test's (no panic on a delay of 1e300 or a rate of 1e-300).
    let delay_us = limits::check_delay_us(args.delay_ms * 1000.0)
        .map_err(|e| anyhow::anyhow!("--delay-ms: {e}"))?;
    let rate = args
        .rate
        .map(limits::check_rate)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--rate: {e}"))?;
    let (pacer, requests, until) = load_pace(
        &args.timing,
        Duration::from_micros(delay_us),
        rate,
        args.requests,
    )?;
    let meter = crate::driver::generator::Meter::start();
    let plan = Plan {
        request: to_send.request,
        mix: to_send.mix,
        checker: to_send.checker,
        pacer: pacer.clone(),
        requests,
        until,
        concurrency: usize::try_from(args.concurrency).unwrap_or(usize::MAX),
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        // The connections open during this warm-up, before the first request is due, as they
        // do in a distributed test between its config and its trigger: no request's latency
        // then includes a TCP handshake.
        start_at: Some(SystemTime::now() + LOAD_WARMUP),
        // Only a paced run has gaps to measure.
        record_sends: if pacer.is_paced() { RECORD_SENDS } else { 0 },
        // One machine, one run: nothing changes its rate.
        max_retimes: 0,
        transport,
    };
    let running = engine::start(plan)
        .await
        .map_err(|e| anyhow::anyhow!("--url: {}", e.message))?;
    let s = tokio::select! {
        s = running.finished() => s,
        _ = shutdown_signal() => { running.stop(); running.finished().await }
    };
    let lat = s.recorder.latency.summary();
    let svc = s.recorder.service.summary();
    let lag = s.recorder.lag.summary();
    let figures = |l| crate::stats::LatencyStats::exact(l);
    let (lat_f, svc_f, lag_f) = (
        figures(&s.recorder.latency),
        figures(&s.recorder.service),
        figures(&s.recorder.lag),
    );
    let note = crate::stats::lag_note(&lat_f, &lag_f);
    let stages = load_stages(&pacer, &s.recorder.stage_sent);
    let lag_p99 = (s.recorder.lag.count() > 0)
        .then(|| Duration::from_micros(s.recorder.lag.histogram.value_at_quantile(0.99)));
    let top_gap = match pacer.schedule() {
        Some(sch) => crate::schedule::gap(
            Duration::ZERO,
            Some(
                sch.segments()
                    .iter()
                    .map(|g| g.to_rate.max(g.from_rate))
                    .fold(0.0, f64::max),
            ),
        ),
        None => pacer.gap(),
    };
    let generator = meter.load(lag_p99, pacer.is_paced().then_some(top_gap));
    let gaps = (pacer.is_paced() && !pacer.gap().is_zero())
        .then(|| crate::stats::send_gaps(&running.send_offsets(), pacer.gap()))
        .flatten();
    let verdict = load_verdict(&thresholds, &s, &to_send.names);
    let mut result = serde_json::json!({
        "requests": s.requests, "sent": s.sent, "ok": s.ok(), "responses": s.responses(),
        "errors": {"connect": s.recorder.errors.connect, "timeout": s.recorder.errors.timeout, "http": s.recorder.errors.http, "io": s.recorder.errors.io, "check": s.recorder.errors.check}, "elapsed_s": s.elapsed.as_secs_f64(), "achieved_rps": s.achieved_rps(),
        "latency": lat, "service_time": svc, "schedule_lag": lag, "send_gaps": gaps, "note": note, "first_error": s.recorder.first_error,
        "stages": stages, "generator": generator,
    });
    // Connection opening costs, apart from request latency (one sample per connection).
    for (name, l) in [
        ("connect_time", &s.recorder.connect),
        ("tls_handshake", &s.recorder.tls),
    ] {
        if l.count() > 0 {
            result[name] = serde_json::json!({"connections": l.count(), "ms": l.summary()});
        }
    }
    if s.recorder.tls.count() > 0 {
        result["tls_handshake"]["resumed"] = s.recorder.tls_resumed.into();
    }
    if let Some(v) = &verdict {
        result["thresholds"] = serde_json::to_value(v).unwrap_or_default();
    }
    crate::load_mix::add_json(&mut result, &to_send.names, &s);
    if args.json {
        println!("{result}");
    } else {
        println!(
            "{} requests in {:.3}s: {:.1} req/s, ok {}, errors {} | latency ms: min {:.3} mean {:.3} p50 {:.3} p99 {:.3} max {:.3}",
            s.sent,
            s.elapsed.as_secs_f64(),
            s.achieved_rps(),
            s.ok(),
            s.recorder.errors.total(),
            lat.min_ms,
            lat.mean_ms,
            lat.median_ms,
            lat.p99_ms,
            lat.max_ms
        );
        if let Some(line) = crate::stats::timing_line(&lat_f, &svc_f, &lag_f) {
            println!("{line}");
        }
        crate::load_mix::print(&to_send.names, &s);
        if let Some(g) = &gaps {
            println!(
                "gaps between sends (first {}): jitter p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; the last left {:.1} µs after its due instant",
                g.gaps + 1,
                g.jitter_p50_us,
                g.jitter_p99_us,
                g.jitter_max_us,
                g.last_drift_us
            );
        }
        for (what, l) in [
            ("connect", &s.recorder.connect),
            ("TLS handshake", &s.recorder.tls),
        ] {
            if l.count() > 0 {
                let h = l.summary();
                println!(
                    "{what} ms over {} connections: mean {:.3} p50 {:.3} p99 {:.3} max {:.3}",
                    l.count(),
                    h.mean_ms,
                    h.median_ms,
                    h.p99_ms,
                    h.max_ms
                );
            }
        }
        if s.recorder.tls.count() > 0 {
            println!(
                "TLS sessions resumed: {} of {} handshakes",
                s.recorder.tls_resumed,
                s.recorder.tls.count()
            );
        }
        if let Some(e) = &s.recorder.first_error {
            if s.recorder.errors.total() > s.recorder.errors.http {
                println!("first error: {e}");
            }
        }
        if let Some(n) = note {
            println!("note: {n}");
        }
        for st in &stages {
            println!(
                "stage {}: {:.1} s, target {:.1} req/s ({} due), achieved {:.1} req/s ({} sent)",
                st["stage"],
                st["seconds"].as_f64().unwrap_or(0.0),
                st["target_rps"].as_f64().unwrap_or(0.0),
                st["planned"],
                st["achieved_rps"].as_f64().unwrap_or(0.0),
                st["sent"]
            );
        }
        if let Some(w) = &generator.warning {
            println!("warning: this generator {w}");
        }
        if let Some(v) = &verdict {
            crate::client::print_thresholds(v);
        }
    }
    match verdict {
        Some(v) if !v.passed() => Err(ThresholdsNotPassed(v.verdict.as_str()).into()),
        _ => Ok(()),
    }
}

/// The pace, count and end of a `floodgate load` run from its flags, checked against the same
/// limits as a test's.
fn load_pace(
    t: &crate::cli::TimingArgs,
    delay: Duration,
    rate: Option<f64>,
    requests: Option<u64>,
) -> anyhow::Result<(Pacer, u64, Option<Duration>)> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if !t.stages.is_empty() {
        let start_rate = limits::check_stage_rate(t.start_rate.unwrap_or(0.0))
            .map_err(|e| anyhow::anyhow!("--start-rate: {e}"))?;
        let mut stages = Vec::new();
        for (i, st) in t.stages.iter().enumerate() {
            limits::check_duration_ms(ms(st.duration))
                .and_then(|_| limits::check_stage_rate(st.rate))
                .map_err(|e| anyhow::anyhow!("--stage #{}: {e}", i + 1))?;
            stages.push((ms(st.duration), st.rate));
        }
        let pace = crate::schedule::Pace::of(delay, rate, start_rate, stages);
        return match pace {
            crate::schedule::Pace::Staged(s) => Ok((Pacer::staged(s.clone()), s.total(), None)),
            crate::schedule::Pace::Constant(_) => anyhow::bail!("--stage: no stages"),
        };
    }
    if t.start_rate.is_some() {
        anyhow::bail!("--start-rate: only a run with --stage ramps from a start rate");
    }
    if let Some(d) = t.duration {
        limits::check_duration_ms(ms(d)).map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
        let pacer = Pacer::new(delay, rate);
        return Ok(match crate::schedule::count_within(pacer.gap(), d) {
            Some(n) => (pacer, n, None),
            None => (pacer, u64::MAX, Some(d)),
        });
    }
    Ok((Pacer::new(delay, rate), requests.unwrap_or(0), None))
}

/// Per stage of a staged run: target and achieved rate, as JSON rows.
fn load_stages(pacer: &Pacer, sent: &[u64]) -> Vec<serde_json::Value> {
    let Some(s) = pacer.schedule() else {
        return Vec::new();
    };
    s.segments()
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let secs = g.duration().as_secs_f64();
            let n = sent.get(i).copied().unwrap_or(0);
            serde_json::json!({"stage": i, "seconds": secs, "target_rps": g.mean_rate(),
                "planned": g.planned(), "sent": n,
                "achieved_rps": if secs > 0.0 { n as f64 / secs } else { 0.0 }})
        })
        .collect()
}
