//! Prometheus metrics end to end: a real Kafka broker, the real binaries, a real test. Scrapes
//! the orchestrator's and each driver's `GET /metrics`, checks exact values against the test
//! (and the orchestrator against the drivers), runs every exposition through the reference
//! Python parser (`prometheus_client`, installed by `scripts/deps.sh`), and checks that the
//! Grafana dashboard in docs/ only reads metrics that exist.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

/// One sample line of an exposition.
#[derive(Clone, Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// A scrape: its text and its samples.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    async fn of(addr: &str) -> Scrape {
        let r = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            ct.starts_with("text/plain; version=0.0.4"),
            "content-type {ct}"
        );
        let text = r.text().await.unwrap();
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(parse_line)
            .collect();
        Scrape { text, samples }
    }

    /// Every sample of `name` whose labels include `with`.
    fn all(&self, name: &str, with: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .collect()
    }

    /// The one sample of `name` whose labels include `with`.
    fn one(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        let found = self.all(name, with);
        assert_eq!(
            found.len(),
            1,
            "expected one {name} with {with:?}, found {found:?} in\n{}",
            self.text
        );
        found[0].value
    }

    /// Sample names, and family names (a histogram's family has no sample of its own name).
    fn names(&self) -> BTreeSet<String> {
        let families = self
            .text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next());
        self.samples
            .iter()
            .map(|s| s.name.as_str())
            .chain(families)
            .map(str::to_string)
            .collect()
    }
}

/// `name{k="v",...} value` (label values here never hold escaped quotes).
fn parse_line(line: &str) -> Sample {
    let (head, value) = line.rsplit_once(' ').unwrap();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let (name, labels) = match head.split_once('{') {
        None => (head.to_string(), Vec::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').unwrap();
            let mut labels = Vec::new();
            let mut s = body;
            while !s.is_empty() {
                let (k, after) = s.split_once("=\"").unwrap();
                let end = after.find('"').unwrap();
                labels.push((k.to_string(), after[..end].to_string()));
                s = after[end + 1..].trim_start_matches(',');
            }
            (name.to_string(), labels)
        }
    };
    Sample {
        name,
        labels,
        value,
    }
}

/// Runs the exposition through the reference parser; returns the number of families.
fn python_parse(text: &str) -> usize {
    let script =
        "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
                  fams = list(p(sys.stdin.read()))\nprint(len(fams))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed (bash scripts/deps.sh installs prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Python prometheus_client parser rejected the exposition (run `bash scripts/deps.sh` if \
         it is missing):\n{}\n----\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Parses with the reference parser, checks the family count, and that no label is a URL.
fn check_exposition(s: &Scrape, min_families: usize, target: &str) {
    let n = python_parse(&s.text);
    assert!(
        n >= min_families,
        "{n} families, expected at least {min_families}:\n{}",
        s.text
    );
    for sample in &s.samples {
        for (k, v) in &sample.labels {
            assert!(
                !v.contains("://") && !v.contains(target),
                "label {k}={v:?} of {} looks like a URL",
                sample.name
            );
        }
    }
    assert!(!s.text.contains(target), "the target's address leaked");
}

async fn driver_addresses(c: &Cluster) -> Vec<(String, String)> {
    let v = get(&c.url("/api/v1/drivers")).await;
    let mut out: Vec<(String, String)> = v["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["address"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every `floodgate_…` name in a text.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("floodgate_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every string in a JSON document (expressions, template queries).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_are_exact_parse_and_feed_the_dashboard() {
    let target = Target::start(&["--error-ratio", "0.2", "--latency-ms", "1"]).await;
    let c = Cluster::start(2).await;
    let mut seen_names = BTreeSet::new();

    // Before any test: the cluster itself, once every driver has sent a heartbeat.
    let o = eventually("a heartbeat from each driver", MIN, async || {
        let o = Scrape::of(&c.api).await;
        let beats = o.all("floodgate_driver_heartbeats_received_total", &[]);
        (beats.len() == 2 && beats.iter().all(|s| s.value >= 1.0)).then_some(o)
    })
    .await;
    check_exposition(&o, 9, &target.addr);
    assert_eq!(o.one("floodgate_drivers_alive", &[]), 2.0);
    let drivers = driver_addresses(&c).await;
    assert_eq!(drivers.len(), 2);
    for (id, _) in &drivers {
        assert_eq!(o.one("floodgate_driver_up", &[("node_id", id)]), 1.0);
        let age = o.one("floodgate_driver_heartbeat_age_seconds", &[("node_id", id)]);
        assert!((0.0..3.0).contains(&age), "heartbeat age {age}");
        assert!(
            o.one(
                "floodgate_driver_heartbeats_received_total",
                &[("node_id", id)]
            ) >= 1.0
        );
    }
    assert_eq!(
        o.one(
            "floodgate_build_info",
            &[("node_id", "orch-1"), ("role", "orchestrator")]
        ),
        1.0
    );
    for state in ["created", "running", "completed", "failed", "stopped"] {
        assert_eq!(o.one("floodgate_tests", &[("state", state)]), 0.0);
    }
    assert!(o.all("floodgate_test_state", &[]).is_empty());
    seen_names.extend(o.names());
    for (id, addr) in &drivers {
        let d = Scrape::of(addr).await;
        check_exposition(&d, 4, &target.addr);
        assert_eq!(
            d.one(
                "floodgate_build_info",
                &[("node_id", id), ("role", "driver")]
            ),
            1.0
        );
        assert!(d.one("floodgate_kafka_messages_total", &[("direction", "out")]) >= 1.0);
        assert!(d.all("floodgate_driver_test_running", &[]).is_empty());
    }

    // A paced test of ~2.5 s, scraped while it runs.
    let n: u64 = 500;
    let spec = json!({"test_type": "tsunami", "delay_ms": 5, "requests_per_driver": n,
                      "target_url": target.url(), "concurrency": 16});
    let test_id = c.start_test(spec).await;
    let t = test_id.as_str();
    let mut live_checked = false;
    let mut driver_live_checked = 0;
    loop {
        let view = c.test(t).await;
        let running = view["status"] == "running";
        let o = Scrape::of(&c.api).await;
        check_exposition(&o, 17, &target.addr);
        seen_names.extend(o.names());
        if running
            && o.one(
                "floodgate_test_state",
                &[("test_id", t), ("state", "running")],
            ) == 1.0
        {
            assert_eq!(o.one("floodgate_tests", &[("state", "running")]), 1.0);
            // The histogram and the counters of a driver come from the same report.
            for (id, _) in &drivers {
                let ids = [("test_id", t), ("node_id", id.as_str())];
                let count = o.all("floodgate_test_latency_seconds_count", &ids);
                if let [h] = count[..] {
                    let responses: f64 = o
                        .all("floodgate_test_responses_total", &ids)
                        .iter()
                        .map(|s| s.value)
                        .sum();
                    assert_eq!(h.value, responses, "histogram count = responses, {id}");
                    let inf = o.one(
                        "floodgate_test_latency_seconds_bucket",
                        &[ids[0], ids[1], ("le", "+Inf")],
                    );
                    assert_eq!(inf, h.value);
                    live_checked |= h.value > 0.0;
                }
            }
            for (id, addr) in &drivers {
                let d = Scrape::of(addr).await;
                check_exposition(&d, 13, &target.addr);
                seen_names.extend(d.names());
                let ids = [("test_id", t), ("node_id", id.as_str())];
                if d.all("floodgate_driver_test_running", &ids)
                    .first()
                    .map(|s| s.value)
                    == Some(1.0)
                {
                    let sent = d.one("floodgate_driver_requests_sent_total", &ids);
                    assert!(sent <= n as f64);
                    assert_eq!(d.one("floodgate_driver_requests_planned", &ids), n as f64);
                    driver_live_checked += 1;
                }
            }
        }
        if !running && view["status"] != "created" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        live_checked,
        "never scraped the running test with responses in"
    );
    assert!(driver_live_checked > 0, "never scraped a driver mid-test");

    let view = c.wait_finished(t, MIN).await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(target.metrics().await, (2 * n, 2 * n));

    // The ended test, on the orchestrator: exact counts.
    let o = Scrape::of(&c.api).await;
    check_exposition(&o, 17, &target.addr);
    seen_names.extend(o.names());
    assert_eq!(o.one("floodgate_tests", &[("state", "completed")]), 1.0);
    assert_eq!(o.one("floodgate_tests", &[("state", "running")]), 0.0);
    assert_eq!(
        o.one(
            "floodgate_test_state",
            &[("test_id", t), ("state", "completed")]
        ),
        1.0
    );
    assert_eq!(
        o.one(
            "floodgate_test_state",
            &[("test_id", t), ("state", "running")]
        ),
        0.0
    );
    let mut total_ok = 0.0;
    let mut drivers_latency_sum = 0.0;
    for (id, addr) in &drivers {
        let ids = [("test_id", t), ("node_id", id.as_str())];
        let per = view["per_driver"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["driver_id"] == id.as_str())
            .unwrap();
        assert_eq!(o.one("floodgate_test_requests_sent_total", &ids), n as f64);
        assert_eq!(o.one("floodgate_test_requests_planned", &ids), n as f64);
        let class = |c: &str| {
            o.one(
                "floodgate_test_responses_total",
                &[ids[0], ids[1], ("status_class", c)],
            )
        };
        let (ok, e5) = (class("2xx"), class("5xx"));
        assert_eq!(ok + e5, n as f64, "every response is 2xx or 5xx");
        assert!(e5 > 0.0 && ok > 0.0, "the target injects 20% errors");
        assert_eq!(ok, per["ok"].as_f64().unwrap());
        for c in ["1xx", "3xx", "4xx"] {
            assert_eq!(class(c), 0.0);
        }
        let err = |k: &str| {
            o.one(
                "floodgate_test_errors_total",
                &[ids[0], ids[1], ("kind", k)],
            )
        };
        assert_eq!(err("http"), e5, "http errors are the non-2xx responses");
        for k in ["connect", "timeout", "io"] {
            assert_eq!(err(k), 0.0);
        }
        let rps = o.one("floodgate_test_achieved_rps", &ids);
        assert_eq!(rps, per["achieved_rps"].as_f64().unwrap());
        total_ok += ok;

        // The same test on the driver, read from its engine: the same numbers.
        let d = Scrape::of(addr).await;
        check_exposition(&d, 13, &target.addr);
        seen_names.extend(d.names());
        assert_eq!(d.one("floodgate_driver_test_running", &ids), 0.0);
        assert_eq!(
            d.one("floodgate_driver_requests_sent_total", &ids),
            n as f64
        );
        assert_eq!(
            d.one(
                "floodgate_driver_responses_total",
                &[ids[0], ids[1], ("status_class", "2xx")]
            ),
            ok
        );
        assert_eq!(
            d.one(
                "floodgate_driver_errors_total",
                &[ids[0], ids[1], ("kind", "http")]
            ),
            e5
        );
        assert_eq!(
            d.one("floodgate_driver_latency_seconds_count", &ids),
            n as f64
        );
        drivers_latency_sum += d.one("floodgate_driver_latency_seconds_sum", &ids);
        assert_eq!(
            d.one(
                "floodgate_driver_latency_seconds_bucket",
                &[ids[0], ids[1], ("le", "+Inf")]
            ),
            n as f64
        );
        assert!(
            d.one(
                "floodgate_driver_latency_seconds_bucket",
                &[ids[0], ids[1], ("le", "0.0005")]
            ) < n as f64,
            "the target waits 1 ms per request"
        );
        assert_eq!(
            d.one("floodgate_driver_latency_summary_seconds_count", &ids),
            n as f64
        );
        // Exact min and max: the driver's own equal what the orchestrator shows for it.
        let lat = &per["latency"];
        for (q, field) in [("0", "min_ms"), ("1", "max_ms")] {
            let v = d.one(
                "floodgate_driver_latency_summary_seconds",
                &[ids[0], ids[1], ("quantile", q)],
            );
            let want = lat[field].as_f64().unwrap() / 1000.0;
            assert!((v - want).abs() < 1e-9, "{id} quantile {q}: {v} vs {want}");
        }
        // A Tsunami is paced: one schedule lag per request, the same the orchestrator shows.
        assert_eq!(
            d.one("floodgate_driver_schedule_lag_seconds_count", &ids),
            n as f64
        );
        let lag_max = d.one(
            "floodgate_driver_schedule_lag_seconds",
            &[ids[0], ids[1], ("quantile", "1")],
        );
        // The driver's max is exact; the orchestrator's comes from the reported histogram, so
        // the two agree to its precision (3 significant digits).
        let want = per["schedule_lag"]["max_ms"].as_f64().unwrap() / 1000.0;
        assert!(
            (lag_max - want).abs() <= want * 1e-3,
            "{id} lag max: {lag_max} vs {want}"
        );
        // Opening connections, apart from latency: one connect each of the 16 keep-alive
        // connections, as the view shows; no TLS series for plain HTTP.
        assert_eq!(per["connect_time"]["count"], 16, "{per}");
        assert_eq!(
            d.one("floodgate_driver_connect_duration_seconds_count", &ids),
            16.0
        );
        assert!(d
            .all(
                "floodgate_driver_tls_handshake_duration_seconds_count",
                &ids
            )
            .is_empty());
    }
    assert_eq!(
        o.one(
            "floodgate_test_connect_summary_seconds_count",
            &[("test_id", t)]
        ),
        32.0
    );
    assert!(o
        .all("floodgate_test_tls_handshake_summary_seconds_count", &[])
        .is_empty());
    assert_eq!(
        total_ok,
        view["aggregate"]["ok"].as_f64().unwrap(),
        "per-driver 2xx add up to the aggregate"
    );
    // The merged summary over both drivers: exact count, and the aggregate's percentiles.
    assert_eq!(
        o.one(
            "floodgate_test_latency_summary_seconds_count",
            &[("test_id", t)]
        ),
        (2 * n) as f64
    );
    let sum = o.one(
        "floodgate_test_latency_summary_seconds_sum",
        &[("test_id", t)],
    );
    assert!(
        (sum - drivers_latency_sum).abs() < 1e-6,
        "exact sums: {sum} vs the drivers' {drivers_latency_sum}"
    );
    let agg = &view["aggregate"]["latency"];
    for (q, field) in [
        ("0", "min_ms"),
        ("0.5", "median_ms"),
        ("0.99", "p99_ms"),
        ("1", "max_ms"),
    ] {
        let v = o.one(
            "floodgate_test_latency_summary_seconds",
            &[("test_id", t), ("quantile", q)],
        );
        let want = agg[field].as_f64().unwrap() / 1000.0;
        assert!((v - want).abs() <= 1e-12, "quantile {q}: {v} vs {want}");
    }
    // The orchestrator freed the ended test's histograms, so its histogram series ended.
    assert!(o
        .all("floodgate_test_latency_seconds_count", &[("test_id", t)])
        .is_empty());

    // Malformed messages: exactly one more on the orchestrator, and on each driver.
    let before = o.one("floodgate_kafka_malformed_total", &[("node_id", "orch-1")]);
    let received = o.one(
        "floodgate_kafka_messages_total",
        &[("node_id", "orch-1"), ("direction", "in")],
    );
    let mut driver_before = Vec::new();
    for (id, addr) in &drivers {
        let d = Scrape::of(addr).await;
        driver_before.push(d.one("floodgate_kafka_malformed_total", &[("node_id", id)]));
    }
    produce_raw(&format!("{}heartbeat", c.prefix), b"EOFBREAK").await;
    produce_raw(&format!("{}test_config", c.prefix), b"EOT").await;
    let (malformed, o) = eventually(
        "the orchestrator to count a malformed message",
        MIN,
        async || {
            let o = Scrape::of(&c.api).await;
            let m = o.one("floodgate_kafka_malformed_total", &[("node_id", "orch-1")]);
            (m > before).then_some((m, o))
        },
    )
    .await;
    for ((id, addr), before) in drivers.iter().zip(driver_before) {
        eventually("a driver to count a malformed message", MIN, async || {
            let d = Scrape::of(addr).await;
            let m = d.one("floodgate_kafka_malformed_total", &[("node_id", id)]);
            (m > before).then_some(())
        })
        .await;
    }
    // Exactly one garbage message reached the orchestrator (on `heartbeat`), and the same
    // scrape shows messages still coming in.
    assert_eq!(malformed, before + 1.0);
    assert!(
        o.one(
            "floodgate_kafka_messages_total",
            &[("node_id", "orch-1"), ("direction", "in")]
        ) > received
    );

    // The dashboard reads only metrics that were exported.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana-dashboard.json"
    );
    let raw = std::fs::read_to_string(path).unwrap();
    let dash: Value = serde_json::from_str(&raw).expect("the dashboard is JSON");
    assert!(dash["panels"].as_array().unwrap().len() >= 9);
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
    let mut texts = Vec::new();
    strings(&dash, &mut texts);
    let used: BTreeSet<String> = texts.iter().flat_map(|s| metric_names_in(s)).collect();
    assert!(used.len() >= 10, "{used:?}");
    let missing: Vec<&String> = used.difference(&seen_names).collect();
    assert!(
        missing.is_empty(),
        "the dashboard reads metrics never exported: {missing:?}\nexported: {seen_names:?}"
    );
}
