#![allow(clippy::unwrap_used)]

use super::driver::DriverMetrics;
use super::*;
use crate::bus::BusStats;
use crate::engine::Snapshot;
use std::sync::Arc;
use std::time::Duration;

fn latency_of(values_us: &[u64]) -> Latency {
    let mut l = Latency::default();
    for &v in values_us {
        l.record(v);
    }
    l
}

/// The sample lines of `text` whose name and labels start with `prefix`, as (line, value).
fn samples<'a>(text: &'a str, prefix: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
        .map(|l| {
            let (head, v) = l.rsplit_once(' ').unwrap();
            (head, v.parse().unwrap())
        })
        .collect()
}

fn value(text: &str, series: &str) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "{series} in\n{text}");
    found[0]
}

#[test]
fn buckets_count_each_value_once_at_its_bound_with_exact_sum_and_count() {
    // 400 µs, 500 µs (exactly on a bound), 501 µs, 3 ms, 20 s, 2 min (above every finite bound).
    let l = latency_of(&[400, 500, 501, 3_000, 20_000_000, 120_000_000]);
    let b = Buckets::from_latency(&l);
    assert_eq!(b.count, 6);
    assert_eq!(
        b.sum_seconds,
        (400 + 500 + 501 + 3_000 + 20_000_000 + 120_000_000) as f64 / 1e6
    );
    let at = |bound: f64| {
        let i = LATENCY_BUCKETS.iter().position(|&x| x == bound).unwrap();
        b.cumulative[i]
    };
    assert_eq!(at(0.0005), 2, "le is inclusive: 400 and 500 µs");
    assert_eq!(at(0.001), 3);
    assert_eq!(at(0.0025), 3);
    assert_eq!(at(0.005), 4);
    assert_eq!(at(10.0), 4);
    assert_eq!(at(30.0), 5);
    assert_eq!(at(60.0), 5, "2 min is only in +Inf (the count)");
    assert!(b.cumulative.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn empty_latency_gives_zero_buckets_and_no_quantiles() {
    let l = Latency::default();
    let b = Buckets::from_latency(&l);
    assert_eq!((b.count, b.sum_seconds), (0, 0.0));
    assert!(b.cumulative.iter().all(|&c| c == 0));
    assert!(quantiles(&l.summary()).is_empty());
}

#[test]
fn quantiles_use_exact_min_and_max() {
    let l = latency_of(&[1_000, 2_000, 9_999]);
    let q = quantiles(&l.summary());
    assert_eq!(q.first(), Some(&(0.0, 0.001)));
    assert_eq!(q.last(), Some(&(1.0, 0.009999)));
}

#[test]
fn every_descriptor_is_valid_and_names_are_unique() {
    let specs: Vec<&Spec> = COMMON
        .iter()
        .chain(orchestrator::specs())
        .chain(driver::specs())
        .copied()
        .collect();
    assert_eq!(descs(&specs).len(), specs.len(), "an invalid descriptor");
    let mut names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate metric names");
    for s in &specs {
        assert!(s.name.starts_with("floodgate_"), "{}", s.name);
        assert_eq!(
            s.kind == Kind::Counter,
            s.name.ends_with("_total"),
            "counters and only counters end in _total: {}",
            s.name
        );
        for l in s.labels {
            assert!(
                [
                    "test_id",
                    "node_id",
                    "status_class",
                    "kind",
                    "state",
                    "direction",
                    "role",
                    "version",
                    // At most thresholds::MAX_THRESHOLDS per exported test.
                    "threshold",
                    // At most limits::MAX_MIX_ENTRIES per exported test.
                    "request"
                ]
                .contains(l),
                "unbounded or unexpected label {l} on {}",
                s.name
            );
        }
    }
}

fn snapshot(test_ok: u64, latency_us: u64) -> Snapshot {
    let mut s = Snapshot {
        requests: test_ok,
        sent: test_ok,
        elapsed: Duration::from_secs(2),
        done: true,
        ..Default::default()
    };
    for _ in 0..test_ok {
        s.recorder.latency.record(latency_us);
    }
    s.recorder.status.0[1] = test_ok;
    s
}

#[test]
fn a_driver_exports_its_ended_tests_up_to_the_bound() {
    let bus = Arc::new(BusStats::default());
    bus.received.store(7, std::sync::atomic::Ordering::Relaxed);
    bus.malformed.store(2, std::sync::atomic::Ordering::Relaxed);
    let m = DriverMetrics::new("driver-x", bus);
    for i in 0..(RECENT_TESTS as u64 + 2) {
        m.ended(&format!("t{i}"), &snapshot(10 + i, 1_500));
    }
    let text = m.render().unwrap();
    assert_eq!(
        value(
            &text,
            r#"floodgate_kafka_messages_total{node_id="driver-x",direction="in"}"#
        ),
        7.0
    );
    assert_eq!(
        value(
            &text,
            r#"floodgate_kafka_malformed_total{node_id="driver-x"}"#
        ),
        2.0
    );
    let running = samples(&text, "floodgate_driver_test_running{");
    assert_eq!(running.len(), RECENT_TESTS, "{text}");
    assert!(running.iter().all(|(_, v)| *v == 0.0));
    assert!(!text.contains(r#"test_id="t0""#) && !text.contains(r#"test_id="t1""#));
    let last = RECENT_TESTS + 1;
    let t = format!(r#"test_id="t{last}",node_id="driver-x""#);
    let n = (10 + last) as f64;
    assert_eq!(
        value(
            &text,
            &format!("floodgate_driver_requests_sent_total{{{t}}}")
        ),
        n
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"floodgate_driver_responses_total{{{t},status_class="2xx"}}"#)
        ),
        n
    );
    assert_eq!(
        value(
            &text,
            &format!("floodgate_driver_latency_seconds_count{{{t}}}")
        ),
        n
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"floodgate_driver_latency_seconds_bucket{{{t},le="0.001"}}"#)
        ),
        0.0
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"floodgate_driver_latency_seconds_bucket{{{t},le="0.0025"}}"#)
        ),
        n
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"floodgate_driver_latency_seconds_bucket{{{t},le="+Inf"}}"#)
        ),
        n
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"floodgate_driver_latency_summary_seconds{{{t},quantile="1"}}"#)
        ),
        0.0015
    );
    assert_eq!(
        value(&text, &format!("floodgate_driver_achieved_rps{{{t}}}")),
        n / 2.0
    );
    assert!(text.contains("# TYPE floodgate_driver_latency_seconds histogram"));
    assert!(text.contains("# TYPE floodgate_driver_latency_summary_seconds summary"));
}

#[test]
fn label_values_are_escaped() {
    let m = DriverMetrics::new("odd\"id\\with\nnewline", Arc::new(BusStats::default()));
    let text = m.render().unwrap();
    assert!(
        text.contains(r#"floodgate_build_info{node_id="odd\"id\\with\nnewline",role="driver""#),
        "{text}"
    );
}

#[test]
fn a_driver_exports_connect_and_tls_handshake_times_apart_from_latency() {
    let m = DriverMetrics::new("driver-x", Arc::new(BusStats::default()));
    let mut https = snapshot(100, 1_500);
    for us in [200, 300, 400, 700_000] {
        https.recorder.connect.record(us);
    }
    for us in [2_000, 3_000, 4_000, 1_500_000] {
        https.recorder.tls.record(us);
    }
    https.recorder.tls_resumed = 3;
    m.ended("https", &https);
    m.ended("plain", &snapshot(10, 1_500));
    let text = m.render().unwrap();
    let t = r#"test_id="https",node_id="driver-x""#;
    let v = |series: &str| value(&text, &series.replace("{t}", t));
    assert_eq!(
        v("floodgate_driver_connect_duration_seconds_count{{t}}"),
        4.0
    );
    assert_eq!(
        v("floodgate_driver_connect_duration_seconds_sum{{t}}"),
        0.7009
    );
    assert_eq!(
        v(r#"floodgate_driver_connect_duration_seconds_bucket{{t},le="0.0005"}"#),
        3.0
    );
    assert_eq!(
        v(r#"floodgate_driver_connect_duration_seconds_bucket{{t},le="0.5"}"#),
        3.0
    );
    assert_eq!(
        v(r#"floodgate_driver_connect_duration_seconds_bucket{{t},le="1"}"#),
        4.0
    );
    assert_eq!(
        v("floodgate_driver_tls_handshake_duration_seconds_count{{t}}"),
        4.0
    );
    assert_eq!(
        v("floodgate_driver_tls_handshake_duration_seconds_sum{{t}}"),
        1.509
    );
    assert_eq!(
        v(r#"floodgate_driver_tls_handshake_duration_seconds_bucket{{t},le="0.005"}"#),
        3.0
    );
    assert_eq!(v("floodgate_driver_tls_resumed_total{{t}}"), 3.0);
    // Kept apart: the latency histogram still counts the 100 requests only.
    assert_eq!(v("floodgate_driver_latency_seconds_count{{t}}"), 100.0);
    assert!(text.contains("# TYPE floodgate_driver_tls_handshake_duration_seconds histogram"));
    assert!(text.contains("# TYPE floodgate_driver_tls_resumed_total counter"));
    // A test that opened no connection (or no TLS one) has no handshake series.
    let plain = r#"test_id="plain""#;
    assert!(!text
        .lines()
        .any(|l| l.contains(plain) && (l.contains("_connect_") || l.contains("_tls_"))));
}

#[test]
fn the_orchestrator_exports_handshake_histograms_summaries_and_resumed_counts() {
    use crate::orchestrator::run::DriverHistograms;
    let view = crate::report::tests::https_view();
    let histograms: Vec<DriverHistograms> = view
        .per_driver
        .iter()
        .enumerate()
        .map(|(i, d)| DriverHistograms {
            node: d.driver_id.clone(),
            latency: latency_of(&[1_000; 3]),
            connect: latency_of(&[100 * (i as u64 + 1); 16]),
            tls: latency_of(&[1_000 * (i as u64 + 1); 16]),
        })
        .collect();
    let specs: Vec<&Spec> = orchestrator::specs().to_vec();
    let (v, h) = (view.clone(), histograms.clone());
    let text = render_families(&specs, move || {
        let mut out = Families::default();
        orchestrator::test_families(&mut out, &v, &h);
        out
    })
    .unwrap();
    let t = format!(r#"test_id="{}""#, view.id);
    let d0 = format!(r#"{t},node_id="driver-a""#);
    let series = |s: &str| value(&text, s);
    assert_eq!(
        series(&format!(
            "floodgate_test_connect_duration_seconds_count{{{d0}}}"
        )),
        16.0
    );
    assert_eq!(
        series(&format!(
            "floodgate_test_connect_duration_seconds_sum{{{d0}}}"
        )),
        0.0016
    );
    assert_eq!(
        series(&format!(
            "floodgate_test_tls_handshake_duration_seconds_count{{{d0}}}"
        )),
        16.0
    );
    assert_eq!(
        series(&format!(
            r#"floodgate_test_tls_handshake_duration_seconds_bucket{{{d0},le="0.001"}}"#
        )),
        16.0
    );
    assert_eq!(
        series(&format!("floodgate_test_tls_resumed_total{{{d0}}}")),
        5.0
    );
    assert_eq!(
        samples(&text, "floodgate_test_tls_resumed_total{")
            .iter()
            .map(|(_, v)| v)
            .sum::<f64>(),
        12.0
    );
    // The merged summaries, from the view's aggregate (kept once the test has ended).
    assert_eq!(
        series(&format!(
            "floodgate_test_tls_handshake_summary_seconds_count{{{t}}}"
        )),
        32.0
    );
    assert_eq!(
        series(&format!(
            r#"floodgate_test_tls_handshake_summary_seconds{{{t},quantile="0.99"}}"#
        )),
        0.003
    );
    assert_eq!(
        series(&format!(
            r#"floodgate_test_connect_summary_seconds{{{t},quantile="0.5"}}"#
        )),
        0.0001
    );
    assert_eq!(
        series(&format!(
            "floodgate_test_connect_summary_seconds_sum{{{t}}}"
        )),
        0.004
    );
    // Request latency stays its own: 3 per driver.
    assert_eq!(
        series(&format!("floodgate_test_latency_seconds_count{{{d0}}}")),
        3.0
    );
}

#[test]
fn the_orchestrator_exports_a_mix_s_names_and_failed_checks() {
    use crate::orchestrator::view_mix::RequestStats;
    use crate::protocol::ChecksFailed;
    let mut view = crate::report::tests::https_view();
    view.aggregate.checks_failed = ChecksFailed {
        status: 7,
        body: 3,
        json: 0,
        too_large: 0,
    };
    let mut home = RequestStats {
        sent: 30,
        responses: 30,
        ok: 23,
        latency: crate::stats::LatencyStats::exact(&latency_of(&[2_000; 30])),
        ..Default::default()
    };
    home.status.c2 = 23;
    home.status.c5 = 7;
    home.errors.http = 7;
    view.aggregate.by_request.insert("home".into(), home);
    let specs: Vec<&Spec> = orchestrator::specs().to_vec();
    let v = view.clone();
    let text = render_families(&specs, move || {
        let mut out = Families::default();
        orchestrator::test_families(&mut out, &v, &[]);
        out
    })
    .unwrap();
    let t = format!(r#"test_id="{}""#, view.id);
    let series = |s: &str| value(&text, s);
    let r = format!(r#"{t},request="home""#);
    assert_eq!(
        series(&format!("floodgate_test_request_sent_total{{{r}}}")),
        30.0
    );
    assert_eq!(
        series(&format!(
            r#"floodgate_test_request_responses_total{{{r},status_class="5xx"}}"#
        )),
        7.0
    );
    assert_eq!(
        series(&format!(
            r#"floodgate_test_request_errors_total{{{r},kind="http"}}"#
        )),
        7.0
    );
    assert_eq!(
        series(&format!(
            "floodgate_test_request_latency_summary_seconds_count{{{r}}}"
        )),
        30.0
    );
    assert_eq!(
        series(&format!(
            r#"floodgate_test_checks_failed_total{{{t},kind="body"}}"#
        )),
        3.0
    );
}
