//! Table tests of the decision on a spec's ConfigMap references (`spec.tls.caFrom`,
//! `spec.mix[i].bodyFrom`): a missing ConfigMap or key holds the LoadTest in Pending naming the
//! field, retried; both caPem and caFrom fail it; so do a threshold scoped to no mix entry and
//! checks the schema cannot hold.

use super::*;
use crate::configmaps::{RefPending, CA_FROM};
use crate::crd::{ConfigMapKeyRef, FromConfigMap, LoadTestTls};

fn ca_from_spec(ca_pem: Option<&str>) -> LoadTestSpec {
    let mut spec = crate::crd::sample_loadtest().spec;
    spec.target_url = Some("https://t/".into());
    spec.tls = Some(LoadTestTls {
        ca_pem: ca_pem.map(str::to_string),
        ca_from: Some(FromConfigMap {
            config_map_key_ref: ConfigMapKeyRef {
                name: "ca-bundle".into(),
                key: "ca.crt".into(),
            },
        }),
        ..Default::default()
    });
    spec
}

fn observed(registered: usize, inputs: Resolved) -> Observed {
    Observed {
        // The Deployment is there once drivers register.
        deployment_replicas: (registered > 0).then_some(3),
        registered: (0..registered)
            .map(|i| format!("ping-drivers-{i}"))
            .collect(),
        inputs,
        now: "now".into(),
        ..Default::default()
    }
}

fn pending(p: RefPending) -> Resolved {
    Resolved {
        values: Default::default(),
        pending: Some(p),
    }
}

fn resolved() -> Resolved {
    Resolved {
        values: [(CA_FROM.to_string(), "PEM".to_string())].into(),
        pending: None,
    }
}

fn no_config_map() -> RefPending {
    RefPending::NoConfigMap {
        field: CA_FROM.into(),
        name: "ca-bundle".into(),
        key: "ca.crt".into(),
    }
}

fn no_key() -> RefPending {
    RefPending::NoKey {
        field: CA_FROM.into(),
        name: "ca-bundle".into(),
        key: "ca.crt".into(),
    }
}

fn inputs_condition(st: &LoadTestStatus) -> Option<(&str, &str, &str)> {
    st.conditions
        .iter()
        .find(|c| c.type_ == INPUTS)
        .map(|c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()))
}

#[test]
fn a_missing_config_map_or_key_holds_the_loadtest_in_pending_naming_the_field() {
    struct Case {
        name: &'static str,
        phase: Option<Phase>,
        registered: usize,
        inputs: Resolved,
        actions: Vec<Action>,
        next: Phase,
        requeue: Option<Duration>,
        condition: Option<(&'static str, &'static str)>,
    }
    let spec = ca_from_spec(None);
    let cases = [
        Case {
            name: "new, no ConfigMap: no driver, retried",
            phase: None,
            registered: 0,
            inputs: pending(no_config_map()),
            actions: vec![],
            next: Phase::Pending,
            requeue: Some(INPUTS_EVERY),
            condition: Some(("False", "ConfigMapNotFound")),
        },
        Case {
            name: "pending, no key",
            phase: Some(Phase::Pending),
            registered: 0,
            inputs: pending(no_key()),
            actions: vec![],
            next: Phase::Pending,
            requeue: Some(INPUTS_EVERY),
            condition: Some(("False", "ConfigMapKeyNotFound")),
        },
        Case {
            name: "new, ConfigMap there: scale up",
            phase: None,
            registered: 0,
            inputs: resolved(),
            actions: vec![Action::ScaleDrivers(3)],
            next: Phase::Scaling,
            requeue: Some(SCALING_EVERY),
            condition: None,
        },
        Case {
            name: "drivers ready, ConfigMap gone since: wait, no start",
            phase: Some(Phase::Scaling),
            registered: 3,
            inputs: pending(no_config_map()),
            actions: vec![],
            next: Phase::Scaling,
            requeue: Some(INPUTS_EVERY),
            condition: Some(("False", "ConfigMapNotFound")),
        },
        Case {
            name: "drivers ready, ConfigMap there: start",
            phase: Some(Phase::Scaling),
            registered: 3,
            inputs: resolved(),
            actions: vec![Action::StartTest {
                driver_ids: (0..3).map(|i| format!("ping-drivers-{i}")).collect(),
            }],
            next: Phase::Running,
            requeue: Some(PROGRESS_EVERY),
            condition: None,
        },
    ];
    for c in cases {
        let current = c.phase.map(|phase| LoadTestStatus {
            phase,
            ..Default::default()
        });
        let p = plan(&spec, current.as_ref(), &observed(c.registered, c.inputs));
        assert_eq!(p.actions, c.actions, "{}", c.name);
        assert_eq!(p.status.phase, c.next, "{}", c.name);
        assert_eq!(p.requeue, c.requeue, "{}", c.name);
        let got = inputs_condition(&p.status);
        assert_eq!(got.map(|(s, r, _)| (s, r)), c.condition, "{}", c.name);
        if let Some((_, _, message)) = got {
            assert!(
                message.starts_with("waiting for spec.tls.caFrom: ConfigMap ca-bundle")
                    && message.contains("ca.crt"),
                "{}: {message}",
                c.name
            );
            assert_eq!(p.status.message.as_deref(), Some(message), "{}", c.name);
        }
    }
}

#[test]
fn the_loadtest_starts_once_the_config_map_appears() {
    let spec = ca_from_spec(None);
    let waiting = plan(&spec, None, &observed(0, pending(no_config_map())));
    assert_eq!(waiting.status.phase, Phase::Pending);
    let later = plan(&spec, Some(&waiting.status), &observed(0, resolved()));
    assert_eq!(later.status.phase, Phase::Scaling);
    assert_eq!(later.actions, [Action::ScaleDrivers(3)]);
    assert_eq!(
        inputs_condition(&later.status).map(|(s, r, _)| (s, r)),
        Some(("True", "Resolved"))
    );
}

#[test]
fn both_ca_pem_and_ca_from_fail_the_loadtest_naming_both() {
    let spec = ca_from_spec(Some("PEM"));
    assert_eq!(
        check_tls(&spec),
        Err("spec.tls: give tls.caPem or tls.caFrom, not both".to_string())
    );
    let p = plan(&spec, None, &observed(0, resolved()));
    assert_eq!(p.status.phase, Phase::Failed);
    assert!(p.actions.is_empty(), "no driver starts: {:?}", p.actions);
    assert_eq!(p.requeue, None);
    let msg = p.status.message.unwrap_or_default();
    assert!(
        msg.contains("tls.caPem") && msg.contains("tls.caFrom"),
        "{msg}"
    );
    assert!(check_tls(&ca_from_spec(None)).is_ok());
}

#[test]
fn the_config_maps_are_read_while_pending_and_at_the_start_only() {
    let spec = ca_from_spec(None);
    let at = |phase: Phase| LoadTestStatus {
        phase,
        ..Default::default()
    };
    let running_test = || crate::plan::TestObservation {
        status: floodgate::model::TestStatus::Running,
        reason: None,
        aggregate: Default::default(),
        drivers: vec![],
        started_at: None,
        finished_at: None,
        settled: false,
        generator_warnings: vec![],
        thresholds: None,
        by_request: vec![],
        start_skew: None,
        rate_changes: vec![],
        start_pace: None,
        last_asked: None,
    };
    let mut started = observed(3, Resolved::default());
    started.test = Some(running_test());
    let cases = [
        ("new", None, observed(0, Resolved::default()), true),
        (
            "pending",
            Some(at(Phase::Pending)),
            observed(0, Resolved::default()),
            true,
        ),
        (
            "scaling, drivers coming",
            Some(at(Phase::Scaling)),
            observed(2, Resolved::default()),
            false,
        ),
        (
            "scaling, drivers ready",
            Some(at(Phase::Scaling)),
            observed(3, Resolved::default()),
            true,
        ),
        (
            "scaling, test already created",
            Some(at(Phase::Scaling)),
            started,
            false,
        ),
        (
            "running",
            Some(at(Phase::Running)),
            observed(3, Resolved::default()),
            false,
        ),
        (
            "succeeded",
            Some(at(Phase::Succeeded)),
            observed(0, Resolved::default()),
            false,
        ),
    ];
    for (name, current, seen, want) in cases {
        assert_eq!(reads_inputs(&spec, current.as_ref(), &seen), want, "{name}");
    }
}

#[test]
fn the_condition_turns_true_only_on_a_read_that_found_the_config_map() {
    let spec = ca_from_spec(None);
    let waiting = plan(
        &spec,
        Some(&LoadTestStatus {
            phase: Phase::Scaling,
            ..Default::default()
        }),
        &observed(3, pending(no_config_map())),
    );
    assert_eq!(waiting.status.phase, Phase::Scaling);
    // A driver went away: nothing is read this time, so nothing is known of the ConfigMap.
    let unread = plan(
        &spec,
        Some(&waiting.status),
        &observed(2, Resolved::default()),
    );
    assert_eq!(
        inputs_condition(&unread.status).map(|(s, r, _)| (s, r)),
        Some(("False", "ConfigMapNotFound"))
    );
    let found = plan(&spec, Some(&unread.status), &observed(3, resolved()));
    assert_eq!(found.status.phase, Phase::Running);
    assert_eq!(
        inputs_condition(&found.status).map(|(s, r, _)| (s, r)),
        Some(("True", "Resolved"))
    );
}

/// A mix whose second entry, `add`, takes its body from ConfigMap cart (key add.json).
fn body_from_spec() -> LoadTestSpec {
    use crate::crd::MixRequest;
    let entry = |name: &str, body_from: Option<FromConfigMap>| MixRequest {
        name: name.into(),
        method: None,
        url: "http://t/".into(),
        headers: Default::default(),
        body: None,
        body_from,
        weight: 1,
        checks: None,
    };
    let mut spec = crate::crd::sample_loadtest().spec;
    spec.target_url = None;
    let cart = FromConfigMap {
        config_map_key_ref: ConfigMapKeyRef {
            name: "cart".into(),
            key: "add.json".into(),
        },
    };
    spec.mix = Some(vec![entry("home", None), entry("add", Some(cart))]);
    spec
}

#[test]
fn a_missing_body_config_map_holds_the_loadtest_in_pending_naming_the_entry() {
    let spec = body_from_spec();
    let field = crate::configmaps::body_from(1);
    let missing = |p: fn(String) -> RefPending| pending(p(field.clone()));
    let cases: [(&str, Resolved, &str, &str); 2] = [
        (
            "no ConfigMap",
            missing(|field| RefPending::NoConfigMap {
                field,
                name: "cart".into(),
                key: "add.json".into(),
            }),
            "ConfigMapNotFound",
            "waiting for spec.mix[1].bodyFrom: ConfigMap cart (key add.json) is not in the LoadTest's namespace",
        ),
        (
            "no key",
            missing(|field| RefPending::NoKey {
                field,
                name: "cart".into(),
                key: "add.json".into(),
            }),
            "ConfigMapKeyNotFound",
            "waiting for spec.mix[1].bodyFrom: ConfigMap cart has no key add.json",
        ),
    ];
    for (name, inputs, reason, message) in cases {
        let p = plan(&spec, None, &observed(0, inputs));
        assert_eq!(p.status.phase, Phase::Pending, "{name}");
        assert!(p.actions.is_empty(), "{name}: no driver: {:?}", p.actions);
        assert_eq!(p.requeue, Some(INPUTS_EVERY), "{name}");
        let (status, got_reason, got) = inputs_condition(&p.status).expect("the condition");
        assert_eq!((status, got_reason), ("False", reason), "{name}");
        assert!(got.starts_with(message), "{name}: {got}");
        // Once it is there, the drivers are scaled up.
        let body = Resolved {
            values: [(field.clone(), "{}".to_string())].into(),
            pending: None,
        };
        let later = plan(&spec, Some(&p.status), &observed(0, body));
        assert_eq!(later.status.phase, Phase::Scaling, "{name}");
        assert_eq!(later.actions, [Action::ScaleDrivers(3)], "{name}");
    }
}

#[test]
fn a_threshold_may_name_a_mix_entry_and_only_one() {
    use crate::crd::ThresholdSpec;
    let threshold = |t: &str| ThresholdSpec {
        threshold: t.into(),
        abort_on_fail: None,
        delay: None,
    };
    let mut spec = body_from_spec();
    spec.thresholds = vec![threshold("p99 < 1s"), threshold("home: p95 < 100ms")];
    assert_eq!(check_thresholds(&spec), Ok(()));
    let p = plan(&spec, None, &observed(0, Resolved::default()));
    assert_eq!(p.status.phase, Phase::Scaling);
    // A name no entry has, or any name without a mix: failed before any driver starts.
    let mut unknown = spec.clone();
    unknown.thresholds[1] = threshold("cart: p95 < 100ms");
    let mut no_mix = crate::crd::sample_loadtest().spec;
    no_mix.thresholds = spec.thresholds.clone();
    for (name, bad) in [("unknown name", unknown), ("no mix", no_mix)] {
        let why = check_thresholds(&bad).expect_err(name);
        assert!(why.starts_with("spec.thresholds[1]"), "{name}: {why}");
        let p = plan(&bad, None, &observed(0, Resolved::default()));
        assert_eq!(p.status.phase, Phase::Failed, "{name}");
        assert!(p.actions.is_empty(), "{name}");
    }
}

#[test]
fn checks_the_schema_cannot_hold_fail_the_loadtest_before_any_driver() {
    use crate::crd::{Checks, StatusMatch};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let mut spec = body_from_spec();
    spec.checks = Some(Checks {
        status: vec![
            StatusMatch(IntOrString::Int(200)),
            StatusMatch(IntOrString::Int(700)),
        ],
        ..Default::default()
    });
    let p = plan(&spec, None, &observed(0, Resolved::default()));
    assert_eq!(p.status.phase, Phase::Failed);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let msg = p.status.message.unwrap_or_default();
    assert!(msg.starts_with("spec.checks.status[1]: 700"), "{msg}");
    let reason = p.status.conditions.iter().find(|c| c.type_ == "Succeeded");
    assert_eq!(reason.map(|c| c.reason.as_str()), Some("InvalidChecks"));
}
