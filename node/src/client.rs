//! The CLI's side of the REST API: `floodgate test run|list|show|stop|report` and
//! `floodgate nodes`, with progress while a test runs and a table of the results.

use crate::api::dto::{Stats, Test};
use crate::cli::{ClientArgs, Output, ReportArgs, ReportFormat, RunArgs, TestKind};
use crate::model::{DriverState, Ended, TestStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A failure the CLI reports in one line, with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub message: String,
    pub code: i32,
}

fn fail(code: i32, message: impl Into<String>) -> CliError {
    CliError {
        message: message.into(),
        code,
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(addr: &str) -> Result<Self, CliError> {
        let base = if addr.starts_with("http://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{addr}")
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| fail(2, format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { http, base })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<reqwest::Response, CliError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            fail(
                2,
                format!(
                    "cannot reach the orchestrator at {}: {e} (set --orchestrator)",
                    self.base
                ),
            )
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        let msg = value["error"].as_str().unwrap_or("request failed");
        Err(match value["field"].as_str() {
            Some(field) => fail(2, format!("{msg} (fix --{})", cli_flag(field))),
            None => fail(2, format!("{msg} (HTTP {status})")),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let resp = self.send(method, path, body).await?;
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// The body of a GET, as bytes (an export).
    async fn download(&self, path: &str) -> Result<Vec<u8>, CliError> {
        let resp = self.send(reqwest::Method::GET, path, None).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| fail(2, format!("the download from {} broke off: {e}", self.base)))?;
        Ok(bytes.to_vec())
    }

    async fn test(&self, id: &str) -> Result<Test, CliError> {
        let v = self
            .call(reqwest::Method::GET, &format!("/api/v1/tests/{id}"), None)
            .await?;
        serde_json::from_value(v)
            .map_err(|e| fail(2, format!("unexpected answer from the orchestrator: {e}")))
    }
}

/// The CLI flag that sets an API field, for error messages.
fn cli_flag(field: &str) -> &str {
    match field {
        "test_type" => "type",
        "target_url" => "url",
        "requests_per_driver" => "requests",
        "throughput_per_driver" => "rate",
        "delay_ms" => "delay-ms",
        "timeout_ms" => "timeout-ms",
        "headers" => "header",
        other => other,
    }
}

pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let api = Api::new(&args.client.orchestrator)?;
    let mut headers = serde_json::Map::new();
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| fail(2, format!("--header {h:?} must look like 'Name: value'")))?;
        headers.insert(k.trim().to_string(), json!(v.trim()));
    }
    let mut body = json!({
        "test_type": match args.kind { TestKind::Tsunami => "tsunami", TestKind::Avalanche => "avalanche" },
        "target_url": args.url,
        "requests_per_driver": args.requests,
        "method": args.method,
        "trigger": !args.no_trigger,
    });
    let fields = [
        ("delay_ms", args.delay_ms.map(|v| json!(v))),
        ("throughput_per_driver", args.rate.map(|v| json!(v))),
        ("concurrency", args.concurrency.map(|v| json!(v))),
        ("timeout_ms", args.timeout_ms.map(|v| json!(v))),
        ("drivers", args.drivers.map(|v| json!(v))),
        ("body", args.body.map(|v| json!(v))),
        (
            "headers",
            (!headers.is_empty()).then_some(Value::Object(headers)),
        ),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            body[k] = v;
        }
    }
    let created = api
        .call(reqwest::Method::POST, "/api/v1/tests", Some(body))
        .await?;
    let id = created["id"]
        .as_str()
        .ok_or_else(|| fail(2, "the orchestrator returned no test id"))?
        .to_string();
    if args.no_trigger {
        println!("{id}");
        return Ok(());
    }
    let drivers: Vec<String> = created["drivers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    eprintln!("test {id} started on {} drivers", drivers.len());
    let mut progress = Progress::new(&drivers, args.requests);
    let view = loop {
        tokio::time::sleep(POLL).await;
        let v = api.test(&id).await?;
        progress.update(&v);
        // A stopped test still takes its drivers' last reports for a moment: wait for them.
        if v.status.is_finished() && v.settled {
            progress.finish();
            break v;
        }
    };
    print_result(&view, args.client.output);
    match view.status {
        TestStatus::Completed => Ok(()),
        s => Err(fail(
            1,
            format!(
                "test {id} ended {}: {}",
                s.as_str(),
                view.reason.as_deref().unwrap_or("stopped")
            ),
        )),
    }
}

/// How often `test run` asks for the test's state.
const POLL: Duration = Duration::from_millis(500);
/// Room kept for a bar's message: rate, p99, errors and state.
const MSG_WIDTH: usize = 52;
/// How often `test run` prints a progress line when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Progress of a running test on stderr: on a terminal, one bar per driver and one for the
/// total, each with requests sent, req/s and p99; otherwise one plain line a second.
enum Progress {
    Bars {
        _multi: MultiProgress,
        total: ProgressBar,
        drivers: Vec<(String, ProgressBar)>,
    },
    Lines {
        last: Option<Instant>,
    },
}

impl Progress {
    fn new(drivers: &[String], requests_per_driver: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines { last: None };
        }
        let width = drivers
            .iter()
            .map(|d| d.chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        let total = requests_per_driver * drivers.len() as u64;
        let digits = total.max(1).ilog10() as usize + 1;
        let target = ProgressDrawTarget::stderr();
        // The bar takes what the terminal's width leaves, short of the last column (a line that
        // fills it leaves the cursor waiting to wrap, which not every terminal does the same).
        let term = usize::from(console::Term::stderr().size().1);
        let bar_len = term
            .saturating_sub(width + 2 * digits + MSG_WIDTH + 5)
            .clamp(10, 40);
        let style = ProgressStyle::with_template(&format!(
            "{{prefix:<{width}.bold}} {{bar:{bar_len}.cyan/blue}} {{pos:>{digits}}}/{{len:<{digits}}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▉▊▋▌▍▎▏ ");
        let multi = MultiProgress::with_draw_target(target);
        let bar = |name: &str, len: u64| {
            let b = multi.add(ProgressBar::new(len));
            b.set_style(style.clone());
            b.set_prefix(name.to_string());
            b.set_message("waiting for the start");
            b
        };
        let total = bar("total", total);
        let drivers = drivers
            .iter()
            .map(|d| (d.clone(), bar(d, requests_per_driver)))
            .collect();
        Progress::Bars {
            _multi: multi,
            total,
            drivers,
        }
    }

    fn update(&mut self, v: &Test) {
        match self {
            Progress::Bars { total, drivers, .. } => {
                set_bar(total, &v.aggregate, None);
                for d in &v.per_driver {
                    if let Some((_, b)) = drivers.iter().find(|(id, _)| *id == d.driver_id) {
                        set_bar(b, &d.stats, Some(d.state));
                    }
                }
            }
            Progress::Lines { last } => {
                let due = last.is_none_or(|t| t.elapsed() + POLL / 10 >= LINE_EVERY);
                if due && !v.status.is_finished() {
                    eprintln!("{}", progress_line(v));
                    *last = Some(Instant::now());
                }
            }
        }
    }

    /// Leaves the bars on screen at their final state.
    fn finish(&mut self) {
        if let Progress::Bars { total, drivers, .. } = self {
            for (_, b) in drivers.iter() {
                b.finish();
            }
            total.finish();
        }
    }
}

fn set_bar(b: &ProgressBar, s: &Stats, state: Option<DriverState>) {
    if s.requests_total > 0 {
        b.set_length(s.requests_total);
    }
    b.set_position(s.sent);
    let mut msg = format!(
        "{:>7.0} req/s  p99 {:>7} ms",
        s.achieved_rps,
        ms(s.latency.p99_ms, 2)
    );
    if s.error_total > 0 {
        msg.push_str(&format!("  errors {}", s.error_total));
    }
    match state {
        Some(DriverState::Done) => msg.push_str("  done"),
        Some(DriverState::Lost) => msg.push_str("  LOST"),
        Some(DriverState::Refused) => msg.push_str("  REFUSED"),
        Some(DriverState::Waiting) if s.sent == 0 => msg.push_str("  waiting"),
        _ => {}
    }
    b.set_message(msg);
}

fn progress_line(v: &Test) -> String {
    let a = &v.aggregate;
    let mut line = format!(
        "[{:>3.0}%] sent {}/{}  ok {}  errors {}  {:.0} req/s  p99 {} ms |",
        a.progress * 100.0,
        a.sent,
        a.requests_total,
        a.ok,
        a.error_total,
        a.achieved_rps,
        ms(a.latency.p99_ms, 2)
    );
    for d in &v.per_driver {
        line.push_str(&format!(" {} {}", short(&d.driver_id), d.stats.sent));
    }
    line
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

pub fn print_result(v: &Test, output: Output) {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    }
    println!(
        "test {}  {}  {}  drivers {}{}",
        v.id,
        v.spec.test_type,
        v.status.as_str(),
        v.drivers.len(),
        v.reason
            .as_ref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default()
    );
    println!(
        "{:<14} {:>9} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "driver",
        "sent",
        "ok",
        "errors",
        "req/s",
        "min",
        "mean",
        "median",
        "mode",
        "p90",
        "p95",
        "p99",
        "max",
        "(ms)"
    );
    println!("{}", row("all", &v.aggregate));
    for d in &v.per_driver {
        println!("{}", row(short(&d.driver_id), &d.stats));
    }
    // Say why a figure is missing, and what a driver of another implementation did.
    if let Some(n) = &v.aggregate.latency.not_mergeable {
        println!("n/a in the aggregate: {}", n.reason);
    }
    for d in &v.per_driver {
        let mut notes = Vec::new();
        if let Some(how) = d.ended_by.filter(|h| *h != Ended::Final) {
            notes.push(format!("ended by {}", how.as_str()));
        }
        if let Some(r) = &d.reason {
            notes.push(r.clone());
        }
        for (k, val) in &d.defaults {
            notes.push(format!("{k} not in the config: used {val}"));
        }
        if !d.stats.counted {
            notes.push("reported no counts".to_string());
        }
        if !notes.is_empty() {
            println!("{}: {}", d.driver_id, notes.join("; "));
        }
    }
    let _ = std::io::stdout().flush();
}

fn row(name: &str, s: &Stats) -> String {
    // Counts a driver of another implementation did not report are unknown, not zero.
    let counts = |n: u64| match (s.counted, n) {
        (true, _) => n.to_string(),
        (false, 0) => "?".to_string(),
        (false, _) => format!("{n}+?"),
    };
    let mut line = format!(
        "{:<14} {:>9} {:>9} {:>7} {:>9.1}",
        name,
        counts(s.sent),
        counts(s.ok),
        s.error_total,
        s.achieved_rps
    );
    for v in s.latency.ordered_ms() {
        line.push_str(&format!(" {:>8}", ms(v, 3)));
    }
    line
}

/// A latency in ms with `digits` decimals, or `n/a` where it is not known (a median that
/// cannot be merged from other implementations' summaries).
fn ms(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.digits$}"))
}

pub async fn list(args: ClientArgs) -> Result<(), CliError> {
    let api = Api::new(&args.orchestrator)?;
    let v = api
        .call(reqwest::Method::GET, "/api/v1/tests", None)
        .await?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let tests: Vec<Test> = serde_json::from_value(v["tests"].clone())
        .map_err(|e| fail(2, format!("unexpected answer: {e}")))?;
    println!(
        "{:<38} {:<10} {:<10} {:>7} {:>10} {:>9} {:>9}",
        "test", "type", "status", "drivers", "sent", "p50 ms", "p99 ms"
    );
    for t in tests {
        let a = &t.aggregate;
        println!(
            "{:<38} {:<10} {:<10} {:>7} {:>10} {:>9} {:>9}",
            t.id,
            t.spec.test_type.to_string(),
            t.status.as_str(),
            t.drivers.len(),
            a.sent,
            ms(a.latency.median_ms, 3),
            ms(a.latency.p99_ms, 3)
        );
    }
    Ok(())
}

pub async fn show(id: &str, args: ClientArgs) -> Result<(), CliError> {
    let api = Api::new(&args.orchestrator)?;
    print_result(&api.test(id).await?, args.output);
    Ok(())
}

/// `floodgate test report <id>`: downloads an export of a finished test to a file or stdout.
pub async fn report(args: ReportArgs) -> Result<(), CliError> {
    let format = args
        .format
        .or_else(|| {
            args.out
                .as_ref()
                .and_then(|p| p.file_name())
                .and_then(|n| ReportFormat::from_file_name(&n.to_string_lossy()))
        })
        .unwrap_or(ReportFormat::Html);
    let api = Api::new(&args.orchestrator)?;
    let path = format!(
        "/api/v1/tests/{}/{}",
        path_segment(&args.id),
        format.endpoint()
    );
    let bytes = api.download(&path).await?;
    match &args.out {
        Some(file) => {
            std::fs::write(file, &bytes)
                .map_err(|e| fail(2, format!("cannot write {}: {e}", file.display())))?;
            eprintln!("wrote {} ({} bytes)", file.display(), bytes.len());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| fail(2, format!("cannot write to stdout: {e}")))?;
        }
    }
    Ok(())
}

/// Percent-encodes what cannot appear as-is in one URL path segment.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn stop(id: &str, args: ClientArgs) -> Result<(), CliError> {
    let api = Api::new(&args.orchestrator)?;
    api.call(
        reqwest::Method::POST,
        &format!("/api/v1/tests/{id}/stop"),
        None,
    )
    .await?;
    eprintln!("stop requested for test {id}");
    Ok(())
}

pub async fn nodes(args: ClientArgs) -> Result<(), CliError> {
    let api = Api::new(&args.orchestrator)?;
    let v = api
        .call(reqwest::Method::GET, "/api/v1/drivers", None)
        .await?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    println!(
        "{:<40} {:<22} {:<6} {:>10}  test",
        "driver", "address", "state", "beat age"
    );
    for d in v["drivers"].as_array().cloned().unwrap_or_default() {
        println!(
            "{:<40} {:<22} {:<6} {:>8}ms  {}",
            d["id"].as_str().unwrap_or(""),
            d["address"].as_str().unwrap_or(""),
            if d["alive"].as_bool().unwrap_or(false) {
                "alive"
            } else {
                "lost"
            },
            d["heartbeat_age_ms"].as_u64().unwrap_or(0),
            d["test_id"].as_str().unwrap_or("-")
        );
    }
    Ok(())
}
