//! Table tests of the decision on a spec's ConfigMap references (`spec.tls.caFrom`): a
//! missing ConfigMap or key holds the LoadTest in Pending naming the field, retried; both
//! caPem and caFrom fail it.

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
