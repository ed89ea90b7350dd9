//! The web dashboard end to end: served by a real orchestrator, driven by headless Chromium
//! (Debian's `chromium` with `playwright-core`, installed by `bash scripts/deps.sh`) through
//! `node/tests/browser/dashboard.mjs`, against a real 2-driver cluster over Kafka.
//!
//! `FLOODGATE_UPDATE_SCREENSHOT=1` writes the screenshot of the finished test to
//! `docs/dashboard.png` instead of a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run: about 15 s on an idle machine.
const BROWSER_DEADLINE: Duration = Duration::from_secs(240);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Fails (never skips) when the browser test's dependencies are missing.
fn require_browser_deps() {
    const FIX: &str = "run `bash scripts/deps.sh` (it installs Debian's chromium and runs \
                       `npm ci` in node/tests/browser); `make test` does this";
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: {FIX}");
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "{} is missing: {FIX}",
        playwright.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "`node` is not on PATH: install Node.js 20 or newer, then {FIX}"
    );
}

/// Runs a command to its end or the deadline, keeping stdout and stderr interleaved.
fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> (Option<i32>, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let out = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut s| {
        let out = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    })
    .collect();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for r in readers {
        let _ = r.join();
    }
    let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    (status.map(|s| s.code().unwrap_or(-1)), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_on_the_api_port() {
    let c = Cluster::start(0).await;
    let client = reqwest::Client::new();
    let fetch = async |path: &str| {
        let r = client.get(c.url(path)).send().await.unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status().as_u16(), ct, r.text().await.unwrap())
    };

    let (status, ct, body) = fetch("/").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(body.contains("<title>Floodgate</title>"), "{body}");
    assert!(body.contains(r#"<script src="/ui/app.js" type="module">"#));
    assert!(
        !body.contains("https://") && !body.contains("//cdn"),
        "the page must load nothing from the network"
    );

    let (status, ct, body) = fetch("/ui/app.js").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/javascript"), "{ct}");
    // The stream is read with fetch: EventSource cannot send the API token (a header).
    assert!(
        !body.contains("new EventSource"),
        "app.js must read /api/v1/events with fetch"
    );
    let (status, ct, _) = fetch("/ui/vendor/uPlot.iife.min.js").await;
    assert_eq!((status, ct.starts_with("text/javascript")), (200, true));
    let (status, ct, _) = fetch("/ui/app.css").await;
    assert_eq!((status, ct.starts_with("text/css")), (200, true));

    let (status, _, body) = fetch("/ui/nope.js").await;
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = fetch("/api/v1/drivers").await;
    assert_eq!(status, 200, "the API is still served beside the dashboard");
}

/// Runs one of the browser scripts with its arguments; panics with its output unless it exits 0.
async fn browser_script(script: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("node");
    cmd.arg(browser_dir().join(script))
        .args(args)
        .current_dir(browser_dir());
    let (code, output) =
        tokio::task::spawn_blocking(move || run_with_deadline(&mut cmd, BROWSER_DEADLINE))
            .await
            .unwrap();
    match code {
        Some(0) => output,
        Some(code) => panic!("{script} failed (exit {code}):\n{output}"),
        None => panic!("{script} did not end within {BROWSER_DEADLINE:?}:\n{output}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_network_sends_is_shown_as_text() {
    require_browser_deps();
    let c = Cluster::start(0).await;
    let id = r#"<img src=x onerror="window.__pwned=1">"'&amp;"#;
    let address = "<b>127.0.0.1:1</b>";
    // Only a registration makes a driver; the heartbeat then makes it alive.
    let registration =
        json!({"node_id": id, "node_IP": address, "message_type": "DRIVER_NODE_REGISTER"});
    produce_raw(
        &format!("{}register", c.prefix),
        registration.to_string().as_bytes(),
    )
    .await;
    let heartbeat =
        json!({"node_id": id, "heartbeat": "YES", "node_IP": address, "role": "driver"});
    produce_raw(
        &format!("{}heartbeat", c.prefix),
        heartbeat.to_string().as_bytes(),
    )
    .await;
    eventually(
        "the driver in the API",
        Duration::from_secs(15),
        async || c.driver(id).await,
    )
    .await;
    let out = browser_script("escaping.mjs", &[&format!("http://{}", c.api), id, address]).await;
    println!("{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_runs_a_test_in_headless_chromium() {
    require_browser_deps();
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let tmp = tempfile::tempdir().unwrap();
    let update = std::env::var("FLOODGATE_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1");
    let screenshot = if update {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png")
    } else {
        tmp.path().join("dashboard.png")
    };
    let api = format!("http://{}", c.api);
    let shot = screenshot.to_str().unwrap();
    let output = browser_script("dashboard.mjs", &[&api, &target.url(), shot]).await;
    println!("{output}");
    let png = std::fs::read(&screenshot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{output}", screenshot.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} is not a full-page screenshot ({} bytes)",
        screenshot.display(),
        png.len()
    );
    // Real traffic: the form's test (2 × 3000) and the script's second one (2 × 200), exactly.
    assert_eq!(target.metrics().await, (6_400, 6_400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_with_an_api_token() {
    require_browser_deps();
    const TOKEN: &str = "dashboard-token-7f3a9c2e5b1d";
    let target = Target::start(&[]).await;
    let extra = Options {
        args: vec![],
        env: vec![("FLOODGATE_TOKEN".into(), TOKEN.into())],
    };
    let c = Cluster::start_with(2, extra, Some(TOKEN)).await;
    let api = format!("http://{}", c.api);
    let output = browser_script("login.mjs", &[&api, TOKEN, &target.url()]).await;
    println!("{output}");
    // The form's test really ran, with the token: 2 × 200 requests.
    assert_eq!(target.metrics().await, (400, 400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_sets_http2_headers_and_thresholds_and_shows_the_verdict() {
    require_browser_deps();
    // h2c on a plain port (HTTP/1.1 too, on the same port): the form's HTTP/2 test goes here.
    let target = Target::start(&["--h2c"]).await;
    let c = Cluster::start(2).await;
    let api = format!("http://{}", c.api);
    let output = browser_script("form.mjs", &[&api, &target.url()]).await;
    println!("{output}");
    // Real traffic, counted by the target: the h2c test (2 × 300), the two threshold tests
    // (2 × 100 each), the total of 301, the 300 shared by measured capacity and the 301 at a
    // total rate; the refused forms sent nothing.
    assert_eq!(target.metrics().await, (1_902, 1_902));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_runs_a_request_mix_and_shows_it_by_request() {
    require_browser_deps();
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let api = format!("http://{}", c.api);
    let origin = format!("http://{}", target.addr);
    let output = browser_script("mix.mjs", &[&api, &origin]).await;
    println!("{output}");
    // The target's own count of every request by path: weights 3:1 of 400 per driver are
    // exactly 300 and 100 on each of the 2 drivers, and the markup-named mix sent 2 × 2 to
    // /echo; the refused forms sent nothing.
    let m = get(&format!("{origin}/metrics")).await;
    assert_eq!(
        m["paths"],
        json!({"/echo": 4, "/ping": 600, "/status/404": 200}),
        "{m}"
    );
    assert_eq!(target.metrics().await, (600, 600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_changes_a_running_tests_rate_and_marks_it() {
    require_browser_deps();
    let target = Target::start(&[]).await;
    let c = Cluster::start(2).await;
    let api = format!("http://{}", c.api);
    let output = browser_script("rate.mjs", &[&api, &target.url()]).await;
    println!("{output}");
    // The one test, raised from 300 to 600 req/s from the page: both drivers switched, and the
    // target counts every request of the total, exactly; the refused value sent nothing.
    let tests = c.get("/api/v1/tests").await;
    let t = &tests["tests"][0];
    let changes = t["rate_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{t}");
    assert_eq!(changes[0]["total_rate"], json!(600.0), "{t}");
    assert_eq!(changes[0]["applied"].as_array().unwrap().len(), 2, "{t}");
    assert_eq!(target.metrics().await, (3_000, 3_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_lost_drivers_hand_over_and_marks_it() {
    require_browser_deps();
    let target = Target::start(&[]).await;
    let mut c = Cluster::start(3).await;
    // 12,000 requests at 1,200 req/s over 3 drivers; driver-1 killed (SIGKILL) mid-test.
    let id = kill_mid_shared_test(&mut c, &target, 1, false).await;
    let lost = Cluster::driver_id(1);
    let api = format!("http://{}", c.api);
    let output = browser_script("handover.mjs", &[&api, &id, &lost, &target.url()]).await;
    println!("{output}");
    // One hand-over, from the killed driver to the two others; the target counts the total,
    // the script's second test (100) and at most the unknown the view states.
    let v = c.test(&id).await;
    assert_eq!(v["status"], "completed", "{v}");
    let hs = v["hand_overs"].as_array().unwrap();
    assert_eq!(hs.len(), 1, "{v}");
    assert_eq!(hs[0]["from"], lost.as_str(), "{v}");
    assert_eq!(hs[0]["parts"].as_object().unwrap().len(), 2, "{v}");
    let unknown = hs[0]["unknown"].as_u64().unwrap();
    let (arrived, _) = target.metrics().await;
    assert!(
        (12_100..=12_100 + unknown).contains(&arrived),
        "the target counted {arrived}, unknown at most {unknown}: {v}"
    );
}
