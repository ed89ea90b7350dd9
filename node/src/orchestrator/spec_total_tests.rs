use super::*;
use crate::orchestrator::spec::parse_input;

fn validated(extra: &str) -> Result<TestSpec, FieldError> {
    let body = format!(r#"{{"target_url":"http://127.0.0.1:1/ping",{extra}}}"#);
    parse_input(body.as_bytes())?.validate()
}

fn members(caps: &[Option<f64>]) -> Vec<Member> {
    caps.iter()
        .enumerate()
        .map(|(i, c)| Member {
            id: format!("d{i}"),
            floodgate: true,
            capacity: *c,
        })
        .collect()
}

#[test]
fn totals_are_refused_beside_what_they_replace_naming_the_field() {
    // (the spec's fields, the field named)
    let cases = [
        (
            r#""test_type":"avalanche","split":"equal","requests_per_driver":5"#,
            "split",
        ),
        (
            r#""test_type":"avalanche","total_requests":10,"requests_per_driver":5"#,
            "total_requests",
        ),
        (
            r#""test_type":"avalanche","total_requests":0"#,
            "total_requests",
        ),
        (
            r#""test_type":"avalanche","total_requests":10,"duration":"10s","throughput_per_driver":5"#,
            "total_requests",
        ),
        (
            r#""test_type":"avalanche","total_requests":10,"total_rate":100,"throughput_per_driver":5"#,
            "total_rate",
        ),
        (
            r#""test_type":"tsunami","total_requests":10,"total_rate":100,"delay_ms":5"#,
            "total_rate",
        ),
        (
            r#""test_type":"avalanche","total_rate":100,"requests_per_driver":5"#,
            "total_rate",
        ),
        (
            r#""test_type":"avalanche","total_requests":10,"total_rate":-1"#,
            "total_rate",
        ),
        (
            r#""test_type":"avalanche","total_requests":10,"total_rate":1e300"#,
            "total_rate",
        ),
        // A per-driver pace beside a count shared by capacity.
        (
            r#""test_type":"tsunami","total_requests":10,"delay_ms":5"#,
            "total_requests",
        ),
        (
            r#""test_type":"avalanche","total_requests":10,"throughput_per_driver":5"#,
            "total_requests",
        ),
        (
            r#""test_type":"avalanche","total_requests":10,"split":"random""#,
            "split",
        ),
        // A staged test's rates are its stages', per driver.
        (
            r#""test_type":"avalanche","total_rate":10,"stages":[{"duration":"1s","rate":5}]"#,
            "total_rate",
        ),
    ];
    for (fields, field) in cases {
        match validated(fields) {
            Err(e) => assert_eq!(e.field, field, "{fields}: {}", e.message),
            Ok(s) => panic!("{fields} was accepted: {s:?}"),
        }
    }
}

#[test]
fn a_test_in_totals_resolves_to_the_means_and_each_drivers_share() {
    // The issue's case: 30,000 requests at 3,000 req/s over capacities 1, 2 and 3.
    let spec = validated(r#""test_type":"tsunami","total_requests":30000,"total_rate":3000"#)
        .expect("valid");
    assert_eq!(
        spec.totals,
        Some(Totals {
            requests: Some(30_000),
            rate: Some(3000.0),
            split: SplitBy::Capacity,
            shared: None,
        })
    );
    let m = members(&[Some(1.0), Some(2.0), Some(3.0)]);
    let resolved = resolve(&spec, &m, &Caps::HARD).expect("resolves");
    // The resolved spec carries the shares, for every copy of it.
    let split = shared(&resolved).expect("a split").clone();
    // The broadcast figures are the means: 10,000 each, one request a millisecond.
    assert_eq!(resolved.requests_per_driver, 10_000);
    assert!(
        (resolved.delay_ms - 1.0).abs() < 1e-9,
        "{}",
        resolved.delay_ms
    );
    let wire = split.wire(true);
    let counts: Vec<(u64, f64)> = wire
        .values()
        .map(|s| (s.request_count.unwrap_or(0), s.rate_scale))
        .collect();
    assert_eq!(counts, [(5_000, 0.5), (10_000, 1.0), (15_000, 1.5)]);

    // An Avalanche's total rate becomes a mean cap per driver.
    let spec =
        validated(r#""test_type":"avalanche","total_requests":9,"total_rate":30"#).expect("valid");
    let resolved = resolve(&spec, &members(&[None, None]), &Caps::HARD).expect("resolves");
    assert_eq!(resolved.throughput_per_driver, Some(15.0));
    assert_eq!(resolved.requests_per_driver, 4);

    // Unpaced, only the count is shared.
    let spec = validated(r#""test_type":"avalanche","total_requests":9"#).expect("valid");
    let resolved = resolve(&spec, &members(&[Some(2.0), Some(1.0)]), &Caps::HARD).expect("ok");
    let wire = shared(&resolved).expect("a split").wire(true);
    assert_eq!(wire["d0"].request_count, Some(6));
    assert_eq!(wire["d1"].request_count, Some(3));

    // A spec with no totals is left as it is.
    let spec = validated(r#""test_type":"avalanche","requests_per_driver":9"#).expect("valid");
    let same = resolve(&spec, &members(&[None, None]), &Caps::HARD).expect("ok");
    assert_eq!((shared(&same), &same), (None, &spec));
}

#[test]
fn a_share_outside_what_one_driver_may_run_is_refused_naming_the_total() {
    let caps = Caps::new(Some(100), None, Some(50.0)).expect("caps");
    // (spec fields, capacities, the field named)
    let cases: [(&str, &[Option<f64>], &str); 3] = [
        // One request for two drivers leaves one with nothing.
        (
            r#""test_type":"avalanche","total_requests":1"#,
            &[None, None],
            "total_requests",
        ),
        // 150 of 200 on the bigger driver, over the cap of 100 per driver.
        (
            r#""test_type":"avalanche","total_requests":200"#,
            &[Some(3.0), Some(1.0)],
            "total_requests",
        ),
        // 75 req/s on the bigger driver, over the cap of 50.
        (
            r#""test_type":"avalanche","total_requests":100,"total_rate":100"#,
            &[Some(3.0), Some(1.0)],
            "total_rate",
        ),
    ];
    for (fields, capacities, field) in cases {
        let spec = parse_input(format!(r#"{{"target_url":"http://h/",{fields}}}"#).as_bytes())
            .and_then(|i| i.validate_with(&caps))
            .expect("valid");
        match resolve(&spec, &members(capacities), &caps) {
            Err(e) => assert_eq!(e.field, field, "{fields}: {}", e.message),
            Ok(r) => panic!("{fields} resolved: {r:?}"),
        }
    }
}

#[test]
fn a_total_rate_over_a_duration_gives_each_share_its_own_paces_count() {
    // 300 req/s for 10 s over capacities 1 and 2: 100 and 200 req/s, so 1,000 and 2,000
    // requests; seed drivers would run the mean, 150 req/s (1,500).
    for test_type in ["avalanche", "tsunami"] {
        let spec = validated(&format!(
            r#""test_type":"{test_type}","total_rate":300,"duration":"10s""#
        ))
        .expect("valid");
        let spec =
            resolve(&spec, &members(&[Some(1.0), Some(2.0)]), &Caps::HARD).expect("resolves");
        let split = shared(&spec).expect("shared");
        let counts: Vec<u64> = split.shares.iter().map(|s| s.requests).collect();
        assert_eq!(counts, [1_000, 2_000], "{test_type}");
        assert_eq!((spec.requests_per_driver, split.per_driver), (1_500, 1_500));
        assert_eq!(spec.duration_ms, Some(10_000));
    }
}
