//! The exports from a hand-built test view: exact numbers, CSV quoting, HTML escaping, and a
//! report that references nothing outside itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::model::{DriverState, TestStatus};
use crate::orchestrator::series::DriverPoint;
use crate::orchestrator::spec::TestSpec;
use crate::protocol::{ErrorCounts, StatusClasses, TestType};
use crate::stats::{LatencySource, LatencyStats};
use std::collections::BTreeMap;

const EVIL_ID: &str = "drv,\"1\"<script>alert(1)</script>";
const EVIL_URL: &str = "http://127.0.0.1:8080/p?q=</script><script>alert(2)</script>&x=1";

fn summary(base: f64) -> LatencyStats {
    LatencyStats {
        count: 1000,
        min_ms: Some(base),
        max_ms: Some(base * 10.0),
        mean_ms: Some(0.1 + 0.2), // 0.30000000000000004: must survive exactly
        median_ms: Some(base * 2.0),
        mode_ms: Some(1.25),
        p90_ms: Some(base * 3.0),
        p95_ms: Some(base * 4.0),
        p99_ms: Some(7.123),
        source: LatencySource::Histogram,
        not_mergeable: None,
    }
}

fn stats(sent: u64, rps: f64, base: f64) -> Stats {
    Stats {
        requests_total: 1000,
        sent,
        responses: sent - 3,
        ok: sent - 5,
        errors: ErrorCounts {
            connect: 1,
            timeout: 2,
            http: 2,
            io: 0,
            check: 0,
        },
        error_total: 5,
        counted: true,
        status: StatusClasses {
            c1: 0,
            c2: sent - 5,
            c3: 0,
            c4: 2,
            c5: 0,
        },
        achieved_rps: rps,
        progress: 1.0,
        elapsed_ms: 2501,
        latency: summary(base),
        service_time: summary(base / 2.0),
        schedule_lag: summary(base / 10.0),
        lag_note: None,
        stages: vec![],
        connect_time: LatencyStats::default(),
        tls_handshake: LatencyStats::default(),
        tls_resumed: 0,
        first_error: None,
        checks_failed: Default::default(),
        by_request: Default::default(),
    }
}

pub(crate) fn view() -> TestView {
    let mut headers = BTreeMap::new();
    headers.insert("X-Token".to_string(), "<b>secret</b>".to_string());
    TestView {
        id: "5f0c2b9e-0000-4000-8000-000000000001".into(),
        status: TestStatus::Completed,
        reason: None,
        spec: TestSpec {
            test_type: TestType::Avalanche,
            delay_ms: 0.0,
            requests_per_driver: 1000,
            throughput_per_driver: Some(500.0),
            target_url: EVIL_URL.into(),
            method: "GET".into(),
            headers,
            secret_headers: vec![],
            body: None,
            concurrency: 8,
            timeout_ms: 10_000,
            drivers: None,
            driver_ids: None,
            replacement_prefix: None,
            duration_ms: None,
            stages: vec![],
            start_rate: None,
            mix: Vec::new(),
            checks: None,
            thresholds: vec![],
            http_version: Default::default(),
            streams_per_connection: None,
            tls: None,
            totals: None,
            fail_safe_ms: 15_000,
        },
        drivers: vec!["driver-a".into(), EVIL_ID.into()],
        created_at_ms: 1_795_261_770_000,
        started_at_ms: Some(1_795_261_771_000),
        finished_at_ms: Some(1_795_261_773_600),
        settled: true,
        thresholds: None,
        split: None,
        start_skew: None,
        rate_changes: Vec::new(),
        hand_overs: Vec::new(),
        aggregate: stats(2000, 799.6801279488205, 0.5),
        per_driver: vec![
            DriverStats {
                driver_id: "driver-a".into(),
                state: DriverState::Done,
                report_seq: 6,
                report_age_ms: None,
                report_format: None,
                ended_by: None,
                reason: None,
                defaults: BTreeMap::new(),
                generator: None,
                start: None,
                stats: stats(1000, 399.8400639744102, 0.25),
            },
            DriverStats {
                driver_id: EVIL_ID.into(),
                state: DriverState::Lost,
                report_seq: 5,
                report_age_ms: None,
                report_format: None,
                ended_by: None,
                reason: None,
                defaults: BTreeMap::new(),
                generator: None,
                start: None,
                stats: stats(1000, 400.1, 0.75),
            },
        ],
        generator_warnings: vec![],
    }
}

fn points() -> Vec<Point> {
    (1..=3u64)
        .map(|i| {
            let mut drivers = BTreeMap::new();
            drivers.insert(
                "driver-a".to_string(),
                DriverPoint {
                    sent: i * 300,
                    rps: 600.5,
                },
            );
            if i > 1 {
                drivers.insert(
                    EVIL_ID.to_string(),
                    DriverPoint {
                        sent: i * 250,
                        rps: 500.0,
                    },
                );
            }
            Point {
                t_ms: i * 500,
                sent: i * 550,
                errors: i,
                rps: 1100.5,
                p50_ms: Some(1.5),
                p95_ms: Some(2.25),
                p99_ms: Some(3.125),
                drivers,
            }
        })
        .collect()
}

/// A strict RFC 4180 reader, independent of the writer: CRLF records, quoted fields.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(field.is_empty(), "a quote inside an unquoted field");
                quoted = true;
            }
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            '\n' => panic!("a bare LF ends a record"),
            c => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quote");
    assert!(
        field.is_empty() && row.is_empty(),
        "no CRLF after the last record"
    );
    rows
}

#[test]
fn csv_has_a_header_an_all_row_and_one_row_per_driver_with_exact_numbers() {
    let v = view();
    let text = csv(&v);
    let quoted = format!("\"{}\"", EVIL_ID.replace('"', "\"\""));
    assert!(
        text.contains(&format!("\r\ndriver,{quoted},lost,")),
        "{text}"
    );
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 4);
    let header: Vec<String> = CSV_COLUMNS
        .iter()
        .chain(&["threshold", "limit", "measured", "unit"])
        .chain(&handshakes::CSV_COLUMNS)
        .chain(&super::mix::CSV_COLUMNS)
        .map(|c| c.to_string())
        .collect();
    assert_eq!(rows[0], header);
    assert_eq!(
        rows[1][..CSV_COLUMNS.len()],
        [
            "all",
            "",
            "completed",
            "2000",
            "1997",
            "1995",
            "1",
            "2",
            "2",
            "0",
            "799.6801279488205",
            "0.5",
            "0.30000000000000004",
            "1",
            "1.25",
            "1.5",
            "2",
            "7.123",
            "5",
            "2501",
            // Service time and schedule lag: median and p99.
            "0.5",
            "7.123",
            "0.1",
            "7.123"
        ]
    );
    assert_eq!(rows[2][..4], ["driver", "driver-a", "done", "1000"]);
    assert_eq!(rows[2][10], "399.8400639744102");
    assert_eq!(rows[3][..3], ["driver", EVIL_ID, "lost"]);
    assert_eq!(rows[3][10], "400.1");
    for r in &rows {
        assert_eq!(r.len(), header.len());
    }
    let thresholds = CSV_COLUMNS.len()..CSV_COLUMNS.len() + 4;
    for r in &rows[1..] {
        assert!(r[thresholds.clone()].iter().all(String::is_empty), "{r:?}");
        // No connection measured: counts 0, figures empty (never a zero time).
        assert_eq!(
            r[thresholds.end..thresholds.end + handshakes::CSV_COLUMNS.len()],
            ["0", "", "", "", "", "0", "", "", "", "", "0"]
        );
    }
    // Every number reads back to exactly the value in the view.
    for (row, d) in rows[2..].iter().zip(&v.per_driver) {
        let f = |i: usize| row[i].parse::<f64>().unwrap();
        assert_eq!(f(10), d.stats.achieved_rps);
        assert_eq!(Some(f(12)), d.stats.latency.mean_ms);
        assert_eq!(Some(f(17)), d.stats.latency.p99_ms);
    }
}

#[test]
fn csv_quotes_commas_quotes_and_line_breaks() {
    let mut v = view();
    v.per_driver[0].driver_id = "a\r\nb, \"c\"".into();
    v.per_driver[1].driver_id = " padded".into();
    let text = csv(&v);
    assert!(
        text.contains("\r\ndriver,\"a\r\nb, \"\"c\"\"\",done,"),
        "{text}"
    );
    assert!(text.contains("\r\ndriver,\" padded\",lost,"), "{text}");
    let rows = parse_csv(&text);
    assert_eq!(rows[2][1], "a\r\nb, \"c\"");
    assert_eq!(rows[3][1], " padded");
}

#[test]
fn series_csv_has_a_column_pair_per_driver() {
    let rows = parse_csv(&series_csv(&points()));
    assert_eq!(
        rows[0],
        [
            "t_ms",
            "sent",
            "errors",
            "rps",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "sent[driver-a]",
            "rps[driver-a]",
            &format!("sent[{EVIL_ID}]"),
            &format!("rps[{EVIL_ID}]"),
        ]
    );
    assert_eq!(
        rows[1],
        ["500", "550", "1", "1100.5", "1.5", "2.25", "3.125", "300", "600.5", "", ""]
    );
    assert_eq!(rows[3][7..], ["900", "600.5", "750", "500"]);
    assert_eq!(
        series_csv(&[]),
        "t_ms,sent,errors,rps,p50_ms,p95_ms,p99_ms\r\n"
    );
}

#[test]
fn json_is_the_view_plus_its_series() {
    let v = view();
    let mut j = json(&v, &points());
    let series = j.as_object_mut().unwrap().remove("series").unwrap();
    assert_eq!(j, serde_json::to_value(&v).unwrap());
    assert_eq!(series, serde_json::to_value(points()).unwrap());
}

#[test]
fn file_names_are_header_safe() {
    let mut v = view();
    assert_eq!(
        file_name(&v, "csv"),
        "floodgate-5f0c2b9e-0000-4000-8000-000000000001.csv"
    );
    v.id = "a\"b/c d".into();
    assert_eq!(file_name(&v, "json"), "floodgate-a_b_c_d.json");
}

fn embedded_data(page: &str) -> serde_json::Value {
    let open = r#"<script type="application/json" id="floodgate-data">"#;
    let start = page.find(open).expect("the data element") + open.len();
    let len = page[start..].find("</script>").expect("its end");
    serde_json::from_str(&page[start..start + len]).expect("the data is JSON")
}

#[test]
fn html_embeds_the_data_and_shows_every_stat() {
    let v = view();
    let page = html(&v, &points());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(embedded_data(&page), json(&v, &points()));
    assert!(page.contains(&v.id));
    assert!(page.contains("mode: midpoint of the fullest 0.1 ms bin"));
    assert!(page.contains(r#"id="chart-rps""#) && page.contains(r#"id="chart-latency""#));
    // The aggregate row and one row per driver in each of the five tables (requests, latency,
    // service time, schedule lag, status classes).
    assert_eq!(page.matches(r#"<tr class="all""#).count(), 5);
    assert_eq!(
        page.matches(r#"<tr class="driver" data-scope="driver" data-driver="driver-a">"#)
            .count(),
        5
    );
    assert!(page.contains("Schedule lag"));
    for shown in [
        "2,000", // sent
        "1,997", // responses
        "799.7", // req/s
        "0.300", // mean (3 decimals)
        "1.250", // mode
        "7.123", // p99
        "2,501", // elapsed (ms)
        "500 req/s per driver",
        "8 per driver",
        "10000 ms",
    ] {
        assert!(page.contains(shown), "missing {shown:?}");
    }
    // The vendored uPlot and its licence are inline.
    assert!(page.contains("uPlot"));
    assert!(page.contains("Leon Sorokin"));
}

#[test]
fn html_escapes_everything_that_comes_from_the_test() {
    let mut v = view();
    v.reason = Some("<img src=x onerror=alert(3)>".into());
    v.spec.body = Some("</pre><script>alert(4)</script>".into());
    let page = html(&v, &points());
    for raw in [
        "<script>alert",
        "<img src=x",
        "<b>secret</b>",
        "</script><script>",
    ] {
        assert!(!page.contains(raw), "{raw:?} is not escaped");
    }
    assert!(page.contains("drv,&quot;1&quot;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;secret&lt;/b&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(3)&gt;"));
    // Exactly the three scripts of the report: data, uPlot, the chart code.
    assert_eq!(page.matches("<script").count(), 3);
    assert_eq!(page.matches("</script>").count(), 3);
    // The data still holds the exact strings.
    let data = embedded_data(&page);
    assert_eq!(data["spec"]["target_url"], EVIL_URL);
    assert_eq!(data["per_driver"][1]["driver_id"], EVIL_ID);
}

#[test]
fn html_loads_nothing_from_outside() {
    let page = html(&view(), &points());
    let lower = page.to_ascii_lowercase();
    for external in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "src=\"//",
        "href=\"//",
        "url(http",
        "url(//",
        "@import",
        "<link",
        "<iframe",
    ] {
        assert!(
            !lower.contains(external),
            "the report references {external:?}"
        );
    }
    // Nothing can be fetched even if something tried.
    assert!(page.contains("default-src 'none'"));
}

#[test]
fn html_without_points_or_result_still_renders() {
    let mut v = view();
    v.status = TestStatus::Stopped;
    v.started_at_ms = None;
    v.per_driver.clear();
    v.aggregate = Stats::default();
    let page = html(&v, &[]);
    assert!(page.contains("status-stopped"));
    assert_eq!(embedded_data(&page)["series"], serde_json::json!([]));
    assert!(page.contains("<dt>Started</dt><dd>–</dd>"));
}

#[test]
fn thresholds_are_rows_of_the_csv_and_a_section_of_the_html() {
    use crate::thresholds::eval::{evaluate_all, Data};
    let mut v = view();
    let ts = crate::thresholds::from_json(&[
        serde_json::json!("p99 < 1ms"),
        serde_json::json!("rps >= 100"),
        serde_json::json!({"threshold": "error_rate < 0.1%", "abort_on_fail": true}),
    ])
    .expect("valid");
    let mut l = crate::stats::Latency::default();
    l.record(5_000);
    let data = || Data {
        latency: Ok(&l),
        responses: 10,
        errors: 1,
        completed: 10,
        elapsed_us: 50_000,
        counted: true,
        checks_failed: None,
    };
    v.thresholds = Some(evaluate_all(&ts, |_| Some(data()), true, None));
    let rows = parse_csv(&csv(&v));
    let n = CSV_COLUMNS.len();
    assert_eq!(
        rows.len(),
        4 + 1 + 3,
        "the stats rows, the verdict, three thresholds"
    );
    assert_eq!(
        (rows[4][0].as_str(), rows[4][2].as_str()),
        ("thresholds", "failed")
    );
    assert_eq!(rows[5][..3], ["threshold", "", "failed"]);
    assert_eq!(rows[5][n..n + 4], ["p99 < 1ms", "1", "5.003", "ms"]);
    assert_eq!(rows[6][n..n + 4], ["rps >= 100", "100", "200", "req/s"]);
    assert_eq!(rows[7][2], "failed");
    assert_eq!(
        rows[7][n..n + 4],
        ["error_rate < 0.1%", "0.001", "0.1", "ratio"]
    );
    // The connection and mix columns come last and are empty on threshold rows.
    for r in &rows[4..] {
        assert_eq!(
            r.len(),
            n + 4 + handshakes::CSV_COLUMNS.len() + super::mix::CSV_COLUMNS.len()
        );
        assert!(r[n + 4..].iter().all(String::is_empty), "{r:?}");
    }
    let page = html(&v, &points());
    assert!(page.contains("<code>p99 &lt; 1ms</code>"), "escaped");
    assert!(page.contains(r#"<span class="status verdict-failed">failed</span>"#));
    assert!(page.contains("5.003 ms") && page.contains("abort_on_fail after 0 ms"));
}

fn handshake(count: u64, mean: f64, median: f64, p99: f64, max: f64) -> LatencyStats {
    LatencyStats {
        count,
        min_ms: Some(median / 2.0),
        max_ms: Some(max),
        mean_ms: Some(mean),
        median_ms: Some(median),
        mode_ms: Some(median),
        p90_ms: Some(p99),
        p95_ms: Some(p99),
        p99_ms: Some(p99),
        source: LatencySource::Histogram,
        not_mergeable: None,
    }
}

/// A view of an HTTPS test: 16 connections per driver, 12 of the 32 handshakes resumed.
pub(crate) fn https_view() -> TestView {
    let mut v = view();
    let set = |s: &mut Stats, n: u64, resumed: u64, k: f64| {
        s.connect_time = handshake(n, 0.125 * k, 0.1 * k, 0.25 * k, 0.5 * k);
        s.tls_handshake = handshake(n, 1.5 * k, 1.25 * k, 3.0 * k, 4.0 * k);
        s.tls_resumed = resumed;
    };
    set(&mut v.aggregate, 32, 12, 1.0);
    set(&mut v.per_driver[0].stats, 16, 5, 1.0);
    set(&mut v.per_driver[1].stats, 16, 7, 2.0);
    v
}

#[test]
fn handshake_figures_are_the_last_csv_columns_exactly() {
    let rows = parse_csv(&csv(&https_view()));
    let n = rows[0].len() - super::mix::CSV_COLUMNS.len();
    let tail = n - handshakes::CSV_COLUMNS.len();
    assert_eq!(tail, CSV_COLUMNS.len() + 4, "after the threshold columns");
    assert_eq!(rows[0][tail..n], handshakes::CSV_COLUMNS);
    assert_eq!(
        rows[0][tail..n],
        [
            "connect_count",
            "connect_mean_ms",
            "connect_median_ms",
            "connect_p99_ms",
            "connect_max_ms",
            "tls_count",
            "tls_mean_ms",
            "tls_median_ms",
            "tls_p99_ms",
            "tls_max_ms",
            "tls_resumed"
        ]
    );
    let all = [
        "32", "0.125", "0.1", "0.25", "0.5", "32", "1.5", "1.25", "3", "4", "12",
    ];
    assert_eq!(rows[1][tail..n], all);
    assert_eq!(
        rows[3][tail..n],
        ["16", "0.25", "0.2", "0.5", "1", "16", "3", "2.5", "6", "8", "7"]
    );
    // The existing columns did not move.
    assert_eq!(rows[1][..4], ["all", "", "completed", "2000"]);
    assert_eq!(rows[1][17], "7.123");
}

#[test]
fn handshake_figures_are_in_the_json_and_a_table_of_the_html() {
    let v = https_view();
    let j = json(&v, &points());
    assert_eq!(j["aggregate"]["connect_time"]["count"], 32);
    assert_eq!(j["aggregate"]["tls_handshake"]["p99_ms"], 3.0);
    assert_eq!(j["aggregate"]["tls_resumed"], 12);
    assert_eq!(j["per_driver"][1]["tls_resumed"], 7);
    // A plain HTTP view has none of them.
    let plain = json(&view(), &points());
    assert!(plain["aggregate"].get("tls_resumed").is_none());
    assert!(plain["aggregate"].get("tls_handshake").is_none());

    let page = html(&v, &points());
    let start = page
        .find(r#"<table class="stats handshakes">"#)
        .expect("the handshake table");
    let table = &page[start..start + page[start..].find("</table>").unwrap()];
    assert!(table.contains("<th>TLS handshakes</th>") && table.contains("<th>resumed</th>"));
    let all_row = table
        .lines()
        .find(|l| l.starts_with(r#"<tr class="all""#))
        .unwrap();
    let cells: Vec<&str> = all_row
        .split("<td>")
        .skip(1)
        .map(|c| c.trim_end_matches("</tr>").trim_end_matches("</td>"))
        .collect();
    assert_eq!(
        cells,
        [
            "32", "0.125", "0.100", "0.250", "0.500", "32", "1.500", "1.250", "3.000", "4.000",
            "12"
        ]
    );
    // Without any connection measured, no table.
    assert!(!html(&view(), &points()).contains("stats handshakes"));
}

#[test]
fn a_mix_is_a_row_per_name_of_the_csv_and_a_table_of_the_html() {
    use crate::orchestrator::view_mix::RequestStats;
    let mut v = view();
    let mut n = RequestStats {
        sent: 40,
        responses: 40,
        ok: 30,
        error_total: 10,
        achieved_rps: 20.0,
        ..Default::default()
    };
    n.errors.check = 10;
    n.checks_failed.body = 10;
    v.aggregate.by_request.insert("<b>home</b>".into(), n);
    v.aggregate.errors.check = 10;
    v.aggregate.checks_failed.body = 10;
    let rows = parse_csv(&csv(&v));
    let width = rows[0].len();
    assert_eq!(
        rows[0][width - 5..],
        [
            "errors_check",
            "checks_failed_status",
            "checks_failed_body",
            "checks_failed_json",
            "request"
        ]
    );
    assert!(
        rows.iter().all(|r| r.len() == width),
        "every row is as wide as the header"
    );
    assert_eq!(rows[1][width - 5..], ["10", "0", "10", "0", ""]);
    let last = rows.last().expect("rows");
    assert_eq!(last[..6], ["request", "", "", "40", "40", "30"]);
    assert_eq!(last[10], "20");
    assert_eq!(last[width - 5..], ["10", "0", "10", "0", "<b>home</b>"]);
    let page = html(&v, &points());
    assert!(
        page.contains("data-request=\"&lt;b&gt;home&lt;/b&gt;\""),
        "escaped"
    );
    assert!(!page.contains("<b>home</b>"));
}

#[test]
fn html_lists_the_rate_changes_and_embeds_them_for_the_chart() {
    use crate::orchestrator::rate_change::{RateChange, RateChangeView, RateInput, Switched};
    let mut v = view();
    let started = v.started_at_ms.expect("started");
    let switched = |driver: &str, late_ms: f64| Switched {
        driver_id: driver.to_string(),
        at_ms: (started + 2_500) as f64 + late_ms,
        late_ms,
        first: 1_500,
    };
    v.rate_changes = vec![RateChangeView {
        change: RateChange {
            seq: 1,
            requested_at_ms: started + 1_500,
            at_ms: started + 2_500,
            input: RateInput {
                total_rate: Some(1_200.0),
                ..Default::default()
            },
            rates: BTreeMap::from([("d1".to_string(), 600.0), ("d2".to_string(), 600.0)]),
        },
        total_rate: 1_200.0,
        applied: vec![switched("d1", 0.0), switched("d2", 0.25)],
        switch_skew_ms: Some(0.25),
    }];
    let page = super::html(&v, &points());
    assert!(page.contains("<h2>Rate changes</h2>"), "the section");
    assert!(
        page.contains("<tr><th class=\"name\">1</th><td>2.500</td><td>1200.0</td><td>2 of 2</td><td>0.250</td><td>0.2</td></tr>"),
        "the row"
    );
    let data = embedded_data(&page);
    assert_eq!(data["rate_changes"][0]["at_ms"], started + 2_500);
    // Without changes, no section.
    assert!(!super::html(&view(), &points()).contains("Rate changes"));
}

#[test]
fn html_lists_the_hand_overs_with_the_unknown() {
    use crate::orchestrator::hand_over::{HandOver, HandOverView};
    use crate::protocol::HandOverPart;
    let mut v = view();
    let started = v.started_at_ms.expect("started");
    let part = |requests, rate| HandOverPart {
        requests,
        rate: Some(rate),
    };
    v.hand_overs = vec![HandOverView {
        hand_over: HandOver {
            seq: 2,
            decided_at_ms: started + 3_000,
            at_ms: started + 4_000,
            from: "d<3>".into(),
            why: "no heartbeat or report for 3000 ms".into(),
            share: 4_000,
            reported_sent: 1_200,
            unsent: 2_800,
            unknown_max: 900,
            parts: BTreeMap::from([
                ("d1".into(), part(1_400, 600.0)),
                ("d2".into(), part(1_400, 600.0)),
            ]),
            replacement: None,
        },
        taken: Vec::new(),
        sent_after: None,
        unknown: 900,
    }];
    let page = super::html(&v, &points());
    assert!(page.contains("<h2>Hand-overs</h2>"), "the section");
    assert!(
        page.contains("<tr><th class=\"name\">2</th><td>4.000</td><td>d&lt;3&gt;</td><td>no heartbeat or report for 3000 ms</td><td>1200 of 4000</td><td>2800</td><td>d1 +1400 at 600.0 req/s, d2 +1400 at 600.0 req/s</td><td>900</td></tr>"),
        "the row, escaped"
    );
    assert!(!super::html(&view(), &points()).contains("Hand-overs"));
}
