use super::*;
use serde_json::json;

fn entry(name: &str, url: &str, weight: u32) -> MixEntry {
    MixEntry {
        name: name.into(),
        method: "GET".into(),
        url: url.into(),
        headers: vec![],
        body: None,
        weight,
        checks: None,
    }
}

#[test]
fn statuses_read_as_codes_ranges_and_classes() {
    let s: StatusSet = serde_json::from_value(json!([200, "201-204", "3xx", "404"])).expect("ok");
    assert_eq!(s.0, vec![(200, 200), (201, 204), (300, 399), (404, 404)]);
    assert!(s.contains(302) && s.contains(404) && !s.contains(205) && !s.contains(500));
    assert_eq!(
        serde_json::to_value(&s).expect("json"),
        json!([200, "201-204", "300-399", 404])
    );
    let one: StatusSet = serde_json::from_value(json!(204)).expect("one");
    assert_eq!(one.0, vec![(204, 204)]);
    assert!(StatusSet::default().contains(299) && !StatusSet::default().contains(300));
    for bad in [
        json!([]),
        json!(["6xx"]),
        json!([99]),
        json!(["300-200"]),
        json!([true]),
    ] {
        assert!(
            serde_json::from_value::<StatusSet>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        StatusSet::parse_list("2xx,304").expect("list").0,
        vec![(200, 299), (304, 304)]
    );
    assert!(StatusSet::parse_list(" , ").is_err());
}

#[test]
fn a_mix_is_refused_naming_the_field() {
    let ok = vec![
        entry("home", "http://h:8080/", 3),
        entry("search", "http://H:8080/search?q=1", 1),
    ];
    assert_eq!(check_mix(&ok), Ok(()));
    let cases: Vec<(Vec<MixEntry>, &str)> = vec![
        (vec![], "mix"),
        (vec![entry("a", "http://h/", 0)], "mix[0].weight"),
        (
            vec![entry("a", "http://h/", 1), entry("a", "http://h/x", 1)],
            "mix[1].name",
        ),
        (vec![entry(" ", "http://h/", 1)], "mix[0].name"),
        (
            vec![entry("a", "http://h/", 1), entry("b", "http://other/", 1)],
            "mix[1].url",
        ),
        (
            vec![entry("a", "http://h/", 1), entry("b", "https://h/", 1)],
            "mix[1].url",
        ),
        (vec![entry("a", "ftp://h/", 1)], "mix[0].url"),
        (
            vec![entry("a", "http://h/", limits::MAX_WEIGHT + 1)],
            "mix[0].weight",
        ),
    ];
    for (mix, field) in cases {
        let e = check_mix(&mix).expect_err(field);
        assert_eq!(e.field, field, "{e}");
    }
    let mut with_checks = ok.clone();
    with_checks[1].checks = Some(Checks {
        json: vec![JsonCheck {
            pointer: "a/b".into(),
            equals: json!(1),
        }],
        ..Checks::default()
    });
    assert_eq!(
        check_mix(&with_checks).expect_err("pointer").field,
        "mix[1].checks.json[0].pointer"
    );
}

#[test]
fn origins_compare_scheme_host_and_port() {
    assert_eq!(origin("http://h/"), origin("HTTP://H:80/x"));
    assert_eq!(origin("https://h/"), origin("https://h:443"));
    assert_ne!(origin("http://h/"), origin("http://h:81/"));
    assert_eq!(
        origin("http://[::1]:9/"),
        Some(("http".into(), "[::1]".into(), 9))
    );
    assert_eq!(origin("h/"), None);
}

#[test]
fn by_request_is_read_liberally_and_bounded() {
    let v = json!({"home": {"requests_sent": "3", "responses_received": 3,
        "errors": {"http": 1}, "checks_failed": {"status": 1}}});
    let m = by_request(Some(&v)).expect("ok");
    assert_eq!(m["home"].requests_sent, 3);
    assert_eq!(m["home"].errors.http, 1);
    assert_eq!(m["home"].checks_failed.status, 1);
    assert!(by_request(None).expect("none").is_empty());
    assert!(by_request(Some(&json!([1]))).is_err());
    let many: serde_json::Map<String, Value> = (0..=limits::MAX_MIX_ENTRIES)
        .map(|i| (format!("n{i}"), json!({})))
        .collect();
    assert!(by_request(Some(&Value::Object(many))).is_err());
}

#[test]
fn a_mix_and_checks_survive_the_wire() {
    use crate::protocol::{DelayUnit, SeedStyle, TestConfig};
    let raw = json!({"test_id": "t", "test_type": "AVALANCHE", "request_count": 5,
        "target": {"url": "http://h/ping"},
        "mix": [{"name": "a", "url": "h/x", "weight": 2}, {"name": "b", "url": "http://h/y"}],
        "checks": {"status": ["2xx", 404], "body_contains": "ok"}});
    let c = TestConfig::parse(raw.to_string().as_bytes(), DelayUnit::Seconds).expect("parsed");
    assert_eq!(c.mix.len(), 2);
    assert_eq!(
        (c.mix[0].url.as_str(), c.mix[0].weight, c.mix[1].weight),
        ("http://h/x", 2, 1)
    );
    let again =
        TestConfig::parse(&c.emit(&SeedStyle::default()), DelayUnit::Seconds).expect("again");
    assert_eq!((again.mix, again.checks), (c.mix, c.checks));
    let zero = json!({"test_id": "t", "test_type": "AVALANCHE",
        "mix": [{"name": "a", "url": "http://h/", "weight": 0}]});
    let e =
        TestConfig::parse(zero.to_string().as_bytes(), DelayUnit::Seconds).expect_err("weight 0");
    assert!(e.to_string().contains("mix[0].weight"), "{e}");
}
