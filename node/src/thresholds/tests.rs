use super::eval::{evaluate, evaluate_all, first_abort, measure, Data, State, Verdict};
use super::*;
use crate::stats::Latency;
use serde_json::json;

fn ok(text: &str) -> Expr {
    parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn expressions_parse_to_metric_op_and_limit_in_internal_units() {
    use Metric::*;
    let cases: [(&str, Option<&str>, Metric, Op, f64); 22] = [
        ("p99 < 250ms", None, Percentile(99.0), Op::Lt, 250_000.0),
        ("p(99.9) < 1s", None, Percentile(99.9), Op::Lt, 1_000_000.0),
        ("p( 99.9 )<1s", None, Percentile(99.9), Op::Lt, 1_000_000.0),
        ("p95 <= 100ms", None, Percentile(95.0), Op::Le, 100_000.0),
        ("p50>=1.5ms", None, Percentile(50.0), Op::Ge, 1_500.0),
        ("p100 < 2s", None, Percentile(100.0), Op::Lt, 2e6),
        ("median < 800us", None, Percentile(50.0), Op::Lt, 800.0),
        ("median < 800µs", None, Percentile(50.0), Op::Lt, 800.0),
        ("mean < 50ms", None, Mean, Op::Lt, 50_000.0),
        ("avg < 50ms", None, Mean, Op::Lt, 50_000.0),
        ("min > 0.5ms", None, Min, Op::Gt, 500.0),
        ("max < 2s", None, Max, Op::Lt, 2e6),
        ("error_rate < 0.1%", None, ErrorRate, Op::Lt, 0.001),
        ("error_rate < 0.001", None, ErrorRate, Op::Lt, 0.001),
        ("error_rate <= 100%", None, ErrorRate, Op::Le, 1.0),
        ("rps >= 950", None, Rps, Op::Ge, 950.0),
        ("rps > 10.5/s", None, Rps, Op::Gt, 10.5),
        ("errors == 0", None, Errors, Op::Eq, 0.0),
        ("checks_failed == 0", None, ChecksFailed, Op::Eq, 0.0),
        ("checks_failed != 3", None, ChecksFailed, Op::Ne, 3.0),
        (
            "home: p95 < 100ms",
            Some("home"),
            Percentile(95.0),
            Op::Lt,
            100_000.0,
        ),
        (
            "  api.v2-x_y :error_rate<5%  ",
            Some("api.v2-x_y"),
            ErrorRate,
            Op::Lt,
            0.05,
        ),
    ];
    for (text, request, metric, op, limit) in cases {
        let e = ok(text);
        assert_eq!(
            (e.request.as_deref(), e.metric, e.op, e.limit),
            (request, metric, op, limit),
            "{text}"
        );
    }
    // `0.1%` and `0.001` are the same double: a boundary compares alike either way.
    assert_eq!(
        ok("error_rate < 0.1%").limit,
        ok("error_rate < 0.001").limit
    );
    assert_eq!(ok("p(99.9) < 1s").metric.to_string(), "p(99.9)");
    assert_eq!(ok("p99 < 1s").metric.to_string(), "p99");
}

#[test]
fn bad_expressions_say_what_and_where() {
    // (input, words the message must contain)
    let cases = [
        ("p999x < 1s", &["unknown metric \"p999x\"", "column 1"][..]),
        (
            "  latency < 1s",
            &["unknown metric \"latency\"", "column 3"],
        ),
        ("p999 < 1s", &["at most 100", "p(99.9)"]),
        ("p0 < 1s", &["over 0"]),
        ("p(99.9 < 1s", &["unknown metric"]),
        ("p99 250ms", &["no comparison"]),
        ("p99 < 250", &["needs a unit", "column 7"]),
        ("p99 < 250m", &["\"m\" is not a latency unit"]),
        ("p99 <", &["no value"]),
        ("p99 < -1ms", &["not a number"]),
        ("p99 < 1e3ms", &["not a latency unit"]),
        ("p99 < 1..2ms", &["not a number"]),
        ("< 1s", &["no metric"]),
        ("error_rate < 2", &["between 0 and 1"]),
        ("error_rate < 150%", &["between 0 and 1"]),
        ("error_rate < 1ms", &["not a unit of a rate"]),
        ("rps > 10ms", &["not a unit of rps"]),
        ("errors < 1.5", &["whole count"]),
        ("home page: p99 < 1s", &["not a request name"]),
        (": p99 < 1s", &["not a request name"]),
        ("", &["is empty"]),
    ];
    for (text, words) in cases {
        let e = parse(text).expect_err(text);
        for w in words {
            assert!(e.contains(w), "{text:?}: {e:?} lacks {w:?}");
        }
    }
    assert!(parse(&"p".repeat(MAX_TEXT + 1)).is_err());
}

#[test]
fn json_thresholds_name_the_element_and_field_at_fault() {
    let good = from_json(&[
        json!("p99 < 250ms"),
        json!({"threshold": "rps >= 10", "abort_on_fail": true, "delay": "1m 30s"}),
    ])
    .expect("valid");
    assert_eq!(
        (good[1].abort_on_fail, good[1].delay),
        (true, Duration::from_secs(90))
    );
    assert!(!good[0].abort_on_fail);
    let cases = [
        (
            json!(["p99 < 1s", "p999x < 1s"]),
            "thresholds[1]",
            "unknown metric \"p999x\"",
        ),
        (
            json!([{"threshold": "p999x < 1s"}]),
            "thresholds[0].threshold",
            "unknown metric",
        ),
        (
            json!([{"abort_on_fail": true}]),
            "thresholds[0].threshold",
            "is required",
        ),
        (
            json!([{"threshold": "p99 < 1s", "abort": true}]),
            "thresholds[0].abort",
            "not a known field",
        ),
        (
            json!([{"threshold": "p99 < 1s", "abort_on_fail": "yes"}]),
            "thresholds[0].abort_on_fail",
            "true or false",
        ),
        (
            json!([{"threshold": "p99 < 1s", "abort_on_fail": true, "delay": "soon"}]),
            "thresholds[0].delay",
            "not a duration",
        ),
        (
            json!([{"threshold": "p99 < 1s", "abort_on_fail": true, "delay": 10}]),
            "thresholds[0].delay",
            "duration string",
        ),
        (
            json!([{"threshold": "p99 < 1s", "abort_on_fail": true, "delay": "2days"}]),
            "thresholds[0].delay",
            "at most",
        ),
        (
            json!([{"threshold": "p99 < 1s", "delay": "1s"}]),
            "thresholds[0].delay",
            "abort_on_fail",
        ),
        (
            json!([7]),
            "thresholds[0]",
            "expression string or an object",
        ),
    ];
    for (items, field, words) in cases {
        let items = items.as_array().cloned().unwrap_or_default();
        let e = from_json(&items).expect_err(field);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(words), "{e}");
    }
    let many: Vec<_> = (0..=MAX_THRESHOLDS).map(|_| json!("rps > 1")).collect();
    assert_eq!(from_json(&many).expect_err("too many").field, "thresholds");
}

#[test]
fn a_stored_threshold_reads_back_the_same() {
    let t =
        from_json(&[json!({"threshold": "p(99.9) < 1s", "abort_on_fail": true, "delay": "10s"})])
            .expect("valid")
            .remove(0);
    let v = serde_json::to_value(&t).expect("serializes");
    assert_eq!(
        v,
        json!({"threshold": "p(99.9) < 1s", "abort_on_fail": true, "delay_ms": 10_000})
    );
    let back: Threshold = serde_json::from_value(v).expect("reads back");
    assert_eq!(back, t);
    assert!(serde_json::from_value::<Threshold>(json!({"threshold": "nope"})).is_err());
}

#[test]
fn scoped_thresholds_must_name_a_request_of_the_mix() {
    let ts = from_json(&[json!("p99 < 1s"), json!("home: p99 < 1s")]).expect("valid");
    assert!(check_scopes(&ts, Some(&["home", "cart"])).is_ok());
    let e = check_scopes(&ts, Some(&["cart"])).expect_err("unknown name");
    assert_eq!(e.field, "thresholds[1]");
    assert!(e.message.contains("not in the mix (cart)"), "{e}");
    let e = check_scopes(&ts, None).expect_err("no mix");
    assert!(e.message.contains("no mix"), "{e}");
    assert!(check_scopes(&ts[..1], None).is_ok());
}

fn latency(values_us: &[u64]) -> Latency {
    let mut l = Latency::default();
    for &v in values_us {
        l.record(v);
    }
    l
}

fn data(l: &Latency, responses: u64, errors: u64, completed: u64, elapsed_ms: u64) -> Data<'_> {
    let elapsed_us = elapsed_ms * 1000;
    Data {
        latency: Ok(l),
        responses,
        errors,
        completed,
        elapsed_us,
        counted: true,
        checks_failed: None,
    }
}

fn threshold(text: &str) -> Threshold {
    from_json(&[json!(text)]).expect("valid").remove(0)
}

#[test]
fn thresholds_compare_the_merged_figures_at_their_boundaries() {
    // 1..=1000 ms, one of each: p99 is 990 ms, p(99.9) 999 ms (within the histogram's 0.1%).
    let values: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
    let l = latency(&values);
    let d = data(&l, 1000, 1, 1000, 2000);
    let p999 = measure(Metric::Percentile(99.9), &d).expect("measured");
    assert!((p999 - 999_000.0).abs() <= 999.0, "{p999}");
    let p99 = measure(Metric::Percentile(99.0), &d).expect("measured") / 1000.0;
    let cases = [
        ("max < 1s", State::Failed),
        ("max <= 1s", State::Passed),
        ("max == 1000ms", State::Passed),
        ("min >= 1ms", State::Passed),
        ("min > 1ms", State::Failed),
        ("mean == 500.5ms", State::Passed),
        ("p(99.9) < 1s", State::Passed),
        ("p(99.9) < 998ms", State::Failed),
        (&format!("p99 < {p99}ms"), State::Failed),
        (&format!("p99 <= {p99}ms"), State::Passed),
        ("error_rate < 0.1%", State::Failed),
        ("error_rate <= 0.1%", State::Passed),
        ("error_rate <= 0.001", State::Passed),
        ("rps >= 500", State::Passed),
        ("rps > 500", State::Failed),
        ("errors == 1", State::Passed),
        ("errors < 1", State::Failed),
        ("checks_failed == 0", State::NoData),
    ];
    for (text, want) in cases {
        let o = evaluate(&threshold(text), Some(&d));
        assert_eq!(o.state, want, "{text}: {o:?}");
    }
    let o = evaluate(&threshold("p99 < 250ms"), Some(&d));
    assert_eq!(
        (o.metric.as_str(), o.op.as_str(), o.limit, o.unit),
        ("p99", "<", 250.0, Unit::Ms)
    );
    assert_eq!(o.measured, Some(p99), "measured in ms");
}

#[test]
fn no_data_is_never_a_pass() {
    let empty = Latency::default();
    let none = data(&empty, 0, 0, 0, 0);
    for text in ["p99 < 1s", "mean < 1s", "error_rate < 1%", "rps > 0"] {
        let o = evaluate(&threshold(text), Some(&none));
        assert_eq!(o.state, State::NoData, "{text}");
        assert!(o.note.is_some() && o.measured.is_none(), "{o:?}");
    }
    // Summaries only: no percentile; no counts: no rates.
    let l = latency(&[1_000]);
    let mut d = data(&l, 1, 0, 1, 10);
    d.latency = Err("b sent only summaries".into());
    d.counted = false;
    for text in ["p99 < 1s", "error_rate < 1%", "rps > 0", "errors == 0"] {
        assert_eq!(
            evaluate(&threshold(text), Some(&d)).state,
            State::NoData,
            "{text}"
        );
    }
    // A request name without per-request data.
    let o = evaluate(&threshold("home: p99 < 1s"), None);
    assert_eq!(o.state, State::NoData);
    assert!(
        o.note.as_deref().unwrap_or("").contains("\"home\""),
        "{o:?}"
    );
    // Check counts, once known.
    let mut d = data(&l, 1, 0, 1, 10);
    d.checks_failed = Some(0);
    assert_eq!(
        evaluate(&threshold("checks_failed == 0"), Some(&d)).state,
        State::Passed
    );
}

#[test]
fn the_verdict_is_pending_while_running_and_failed_by_any_failure_or_an_abort() {
    let l = latency(&[10_000; 10]);
    let ts: Vec<Threshold> = ["p99 < 1s", "rps > 1", "home: p99 < 1s"]
        .map(threshold)
        .to_vec();
    let lookup = |scope: Option<&str>| scope.is_none().then(|| data(&l, 10, 0, 10, 1000));
    // (thresholds, finished, aborted_by, verdict)
    let cases = [
        (&ts[..2], true, None, Verdict::Passed),
        (&ts[..2], false, None, Verdict::Pending),
        (&ts[..], true, None, Verdict::NotEvaluated),
        (&ts[..2], true, Some("rps > 1"), Verdict::Failed),
        (&ts[..2], false, Some("rps > 1"), Verdict::Failed),
    ];
    for (set, finished, aborted, want) in cases {
        let r = evaluate_all(set, lookup, finished, aborted);
        assert_eq!(r.verdict, want, "{set:?} {finished} {aborted:?}");
        if let Some(a) = aborted {
            let o = r.results.iter().find(|o| o.threshold == a).expect("listed");
            assert!(o.aborted && o.state == State::Failed, "{o:?}");
        }
    }
    let failing = [threshold("p99 < 1s"), threshold("p99 < 1ms")];
    let r = evaluate_all(&failing, lookup, true, None);
    assert_eq!((r.verdict, r.failed().len()), (Verdict::Failed, 1));
}

#[test]
fn an_abort_fires_only_for_an_aborting_threshold_past_its_delay() {
    let l = latency(&[10_000; 10]);
    let lookup = |_: Option<&str>| Some(data(&l, 10, 0, 10, 1000));
    let ts = from_json(&[
        json!("p99 < 1ms"),
        json!({"threshold": "p50 < 2ms", "abort_on_fail": true, "delay": "5s"}),
        json!({"threshold": "p99 < 1s", "abort_on_fail": true}),
    ])
    .expect("valid");
    assert_eq!(
        first_abort(&ts, lookup, 4_999),
        None,
        "the failing abort is not due"
    );
    let o = first_abort(&ts, lookup, 5_000).expect("due and failing");
    assert_eq!(o.threshold, "p50 < 2ms");
}
