//! A LoadTest's mix and checks as the orchestrator's input, as tables: each field where the
//! REST API takes it, a body from its ConfigMap, the secret headers on every entry, and what
//! the schema cannot hold refused naming the field. The example LoadTest converts and passes
//! the orchestrator's validation.

use super::*;
use crate::crd::{ConfigMapKeyRef, FromConfigMap, JsonCheck as CrdJsonCheck, MixRequest};
use crate::crd::{StatusMatch, ThresholdSpec};

const IDS: [&str; 2] = ["d-0", "d-1"];

fn ids() -> Vec<String> {
    IDS.iter().map(|s| s.to_string()).collect()
}

fn entry(name: &str, url: &str) -> MixRequest {
    MixRequest {
        name: name.into(),
        method: None,
        url: url.into(),
        headers: Default::default(),
        body: None,
        body_from: None,
        weight: 1,
        checks: None,
    }
}

fn status(list: &[IntOrString]) -> Vec<StatusMatch> {
    list.iter().cloned().map(StatusMatch).collect()
}

fn int(n: i32) -> IntOrString {
    IntOrString::Int(n)
}

fn text(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

/// A mix of `home` (weight 3, own checks) and `add` (POST, body from ConfigMap cart/add.json).
fn with_mix() -> LoadTest {
    let mut lt = crate::crd::sample_loadtest();
    lt.spec.target_url = None;
    let mut add = entry("add", "http://t/cart");
    add.method = Some("post".into());
    add.headers
        .insert("Content-Type".into(), "application/json".into());
    add.body_from = Some(FromConfigMap {
        config_map_key_ref: ConfigMapKeyRef {
            name: "cart".into(),
            key: "add.json".into(),
        },
    });
    let mut home = entry("home", "http://t/");
    home.weight = 3;
    home.checks = Some(crd::Checks {
        status: status(&[int(200), text("304")]),
        body_contains: Some("welcome".into()),
        json: vec![CrdJsonCheck {
            pointer: "/ok".into(),
            equals: "true".into(),
        }],
    });
    lt.spec.mix = Some(vec![home, add]);
    lt.spec.checks = Some(crd::Checks {
        status: status(&[text("2xx"), int(404), text("500-503")]),
        ..Default::default()
    });
    lt.spec.thresholds = vec![ThresholdSpec {
        threshold: "home: p99 < 250ms".into(),
        abort_on_fail: None,
        delay: None,
    }];
    lt
}

fn bodies() -> BTreeMap<String, String> {
    [(configmaps::body_from(1), r#"{"item": 1}"#.to_string())].into()
}

#[test]
fn a_mix_and_its_checks_become_the_api_s_fields() {
    let input = test_input(&with_mix(), &ids(), Vec::new(), &bodies()).expect("converts");
    assert_eq!(input.target_url, None, "a mix names no target_url");
    assert_eq!(
        (&input.method, &input.headers, &input.body),
        (&None, &None, &None)
    );
    let mix = input.mix.clone().expect("a mix");
    // (name, method, url, weight, body, headers)
    let got: Vec<_> = mix
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.method.as_str(),
                m.url.as_str(),
                m.weight,
                m.body.as_deref(),
                m.headers.len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("home", "GET", "http://t/", 3, None, 0),
            ("add", "post", "http://t/cart", 1, Some(r#"{"item": 1}"#), 1),
        ]
    );
    let home = mix[0].checks.clone().expect("home's checks");
    assert_eq!(home.status, StatusSet(vec![(200, 200), (304, 304)]));
    assert_eq!(home.body_contains.as_deref(), Some("welcome"));
    assert_eq!(
        home.json,
        [JsonCheck {
            pointer: "/ok".into(),
            equals: serde_json::json!(true)
        }]
    );
    assert_eq!(mix[1].checks, None);
    let test_checks = input.checks.clone().expect("the test's checks");
    assert_eq!(
        test_checks.status,
        StatusSet(vec![(200, 299), (404, 404), (500, 503)])
    );
    // The orchestrator takes it as a test created through the API would be: the thresholds'
    // scope names an entry, the methods in upper case.
    let spec = input.validate().expect("valid");
    assert_eq!(spec.request_names(), ["home", "add"]);
    assert_eq!(spec.mix[1].method, "POST");
    assert_eq!(spec.thresholds.len(), 1);
    let config = spec.to_config("t", &ids(), "o");
    assert_eq!(config.mix.len(), 2);
    assert_eq!(config.mix[1].body.as_deref(), Some(r#"{"item": 1}"#));
}

#[test]
fn secret_headers_go_on_every_entry_of_a_mix() {
    let secret = vec![("Authorization".to_string(), "Bearer s3cret".to_string())];
    let input = test_input(&with_mix(), &ids(), secret.clone(), &bodies()).expect("converts");
    assert_eq!(input.headers, None, "a mix has no top-level headers");
    assert_eq!(
        input.secret_headers.as_deref(),
        Some(&["Authorization".to_string()][..])
    );
    let mix = input.mix.clone().expect("a mix");
    for m in &mix {
        assert_eq!(
            m.headers.get("Authorization").map(String::as_str),
            Some("Bearer s3cret"),
            "{}",
            m.name
        );
    }
    let spec = input.validate().expect("valid");
    // Redacted in every view, as a secret top-level header is.
    let shown = spec.shown();
    assert!(shown
        .mix
        .iter()
        .all(|m| m.headers["Authorization"] != "Bearer s3cret"));
    // Without a mix they stay the test's headers.
    let plain =
        test_input(&crate::crd::sample_loadtest(), &ids(), secret, &bodies()).expect("converts");
    assert_eq!(
        plain.headers.map(|h| h.contains_key("Authorization")),
        Some(true)
    );
    assert_eq!(plain.mix, None);
}

#[test]
fn what_the_schema_cannot_hold_is_refused_naming_the_field() {
    type Edit = fn(&mut LoadTest);
    let cases: [(&str, Edit, &str); 6] = [
        (
            "a code out of range",
            |lt| lt.spec.checks.as_mut().expect("checks").status[1] = StatusMatch(int(700)),
            "spec.checks.status[1]",
        ),
        (
            "a negative code",
            |lt| lt.spec.checks.as_mut().expect("checks").status[0] = StatusMatch(int(-1)),
            "spec.checks.status[0]",
        ),
        (
            "a range backwards",
            |lt| lt.spec.checks.as_mut().expect("checks").status[2] = StatusMatch(text("503-500")),
            "spec.checks.status[2]",
        ),
        (
            "a class that is none",
            |lt| lt.spec.checks.as_mut().expect("checks").status[0] = StatusMatch(text("6xx")),
            "spec.checks.status[0]",
        ),
        (
            "equals that is not JSON",
            |lt| {
                let mix = lt.spec.mix.as_mut().expect("mix");
                mix[0].checks.as_mut().expect("checks").json[0].equals = "ok".into();
            },
            "spec.mix[0].checks.json[0].equals",
        ),
        (
            "an entry's code out of range",
            |lt| {
                let mix = lt.spec.mix.as_mut().expect("mix");
                mix[0].checks.as_mut().expect("checks").status[0] = StatusMatch(int(99));
            },
            "spec.mix[0].checks.status[0]",
        ),
    ];
    for (name, edit, field) in cases {
        let mut lt = with_mix();
        edit(&mut lt);
        let e = test_input(&lt, &ids(), Vec::new(), &bodies()).expect_err(name);
        assert_eq!(e.field, field, "{name}: {e}");
        // The plan refuses it too, before any driver starts.
        let why = crate::plan::check_checks(&lt.spec).expect_err(name);
        assert!(why.starts_with(&format!("{field}: ")), "{name}: {why}");
    }
    assert!(crate::plan::check_checks(&with_mix().spec).is_ok());
}

#[test]
fn the_orchestrator_refuses_a_bad_mix_naming_the_entry() {
    type Edit = fn(&mut LoadTest);
    let cases: [(&str, Edit, &str); 5] = [
        (
            "a name twice",
            |lt| lt.spec.mix.as_mut().expect("mix")[1].name = "home".into(),
            "mix[1].name",
        ),
        (
            "weight 0 (the schema's minimum is 1)",
            |lt| lt.spec.mix.as_mut().expect("mix")[0].weight = 0,
            "mix[0].weight",
        ),
        (
            "another origin",
            |lt| lt.spec.mix.as_mut().expect("mix")[1].url = "http://other/".into(),
            "mix[1].url",
        ),
        (
            "a target URL too",
            |lt| lt.spec.target_url = Some("http://t/".into()),
            "target_url",
        ),
        (
            "a threshold scoped to no entry",
            |lt| lt.spec.thresholds[0].threshold = "cart: p99 < 1s".into(),
            "thresholds[0]",
        ),
    ];
    for (name, edit, field) in cases {
        let mut lt = with_mix();
        edit(&mut lt);
        let e = test_input(&lt, &ids(), Vec::new(), &bodies())
            .expect("converts")
            .validate()
            .expect_err(name);
        assert!(
            e.field == field || e.field.starts_with(&format!("{field}.")),
            "{name}: {e}"
        );
    }
}

#[test]
fn the_example_converts_and_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/loadtest-mix.yaml");
    let text = std::fs::read_to_string(path).expect("the example");
    let lt = text
        .split("\n---\n")
        .find(|doc| doc.contains("kind: LoadTest"))
        .map(|doc| serde_yaml::from_str::<LoadTest>(doc).expect("a LoadTest"))
        .expect("a LoadTest document");
    let refs = configmaps::refs(&lt.spec);
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].0, "spec.mix[1].bodyFrom");
    let config = [(
        refs[0].0.clone(),
        r#"{"item": "floodgate-mug"}"#.to_string(),
    )]
    .into();
    let ids: Vec<String> = (0..3).map(|i| format!("d-{i}")).collect();
    let spec = test_input(&lt, &ids, Vec::new(), &config)
        .expect("converts")
        .validate()
        .expect("valid");
    let weights: Vec<u32> = spec.mix.iter().map(|m| m.weight).collect();
    assert_eq!(weights, [6, 3, 1]);
    assert!(spec.thresholds.iter().any(|t| t.expr.request.is_some()));
    assert!(crate::plan::check_thresholds(&lt.spec).is_ok());
    assert!(crate::plan::check_checks(&lt.spec).is_ok());
}
