//! The LoadTest controller: for each LoadTest it observes (its Deployment, the drivers
//! registered over Kafka, the orchestrator's test), asks [`plan`] what to do, and does it:
//! scale the drivers, start the test (recording it in the status first, for a successor:
//! `takeover`), write the status. A finalizer stops a running test when its LoadTest is
//! deleted and removes its drivers.

pub use crate::counters::Counters;
use crate::crd::{DriverProgress, LoadTest, Phase, RequestProgress, Stats};
use crate::crd::{StartSkewStatus, ThresholdResult, ThresholdsStatus};
use crate::hand_over::{self, HandOverStatus};
pub(crate) use crate::input::test_input;
use crate::plan::{self, Action as Step, Observed, TestObservation};
use crate::rate::Pace;
use crate::resources::{deployment_name, driver_deployment, owns_driver, DriverDefaults};
use floodgate::orchestrator::view::TestView;
use floodgate::orchestrator::{Orchestrator, OrchestratorError};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{finalizer, Event};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub const FINALIZER: &str = "floodgate.dev/stop-test";
const MANAGER: &str = "floodgate-operator";

/// One error type at the operator's boundary; each becomes a requeue and a metric.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("orchestrator: {0}")]
    Orchestrator(#[from] OrchestratorError),
    #[error("finalizer: {0}")]
    Finalizer(FinalizerError),
    #[error("secret header: {0}")]
    SecretHeader(#[from] crate::secrets::SecretHeaderError),
}

/// What went wrong with the finalizer.
#[derive(Debug, thiserror::Error)]
pub enum FinalizerError {
    /// The LoadTest was deleted before the finalizer's removal landed (an earlier reconcile
    /// removed it): nothing left to do.
    #[error("the LoadTest is gone")]
    Gone,
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// A short, bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Orchestrator(_) => "orchestrator",
            Error::Finalizer(_) => "finalizer",
            Error::SecretHeader(_) => "secret_header",
        }
    }
}

pub struct Context {
    pub client: Client,
    pub orchestrator: Orchestrator,
    pub defaults: DriverDefaults,
    pub counters: Counters,
    /// The phase of every LoadTest reconciled, by `namespace/name` (for metrics).
    pub phases: std::sync::Mutex<std::collections::BTreeMap<String, Phase>>,
    /// Running tests found at start-up that could not be taken over, by test ID, with why.
    pub not_taken_over: std::collections::BTreeMap<String, String>,
}

impl Context {
    fn set_phase(&self, lt: &LoadTest, phase: Option<Phase>) {
        let key = format!("{}/{}", lt.namespace().unwrap_or_default(), lt.name_any());
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        match phase {
            Some(p) => phases.insert(key, p),
            None => phases.remove(&key),
        };
    }
}

/// Runs the controller until the process is asked to stop.
pub async fn run(ctx: Arc<Context>, namespace: Option<String>) {
    let (loadtests, deployments): (Api<LoadTest>, Api<Deployment>) = match &namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    Controller::new(loadtests, watcher::Config::default())
        .owns(deployments, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!("reconcile: {e}");
            }
        })
        .await;
}

async fn reconcile(lt: Arc<LoadTest>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.counters.reconciles.fetch_add(1, Ordering::Relaxed);
    let ns = lt.namespace().unwrap_or_else(|| "default".to_string());
    let api: Api<LoadTest> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, lt.clone(), |event| async {
        match event {
            Event::Apply(lt) => apply(&lt, &ctx).await,
            Event::Cleanup(lt) => cleanup(&lt, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        kube::runtime::finalizer::Error::RemoveFinalizer(kube::Error::Api(s)) if s.code == 404 => {
            Error::Finalizer(FinalizerError::Gone)
        }
        other => Error::Finalizer(FinalizerError::Other(other.to_string())),
    });
    match result {
        // The orchestrator refused the spec: it can never run, so the LoadTest fails with the
        // reason instead of retrying every few seconds.
        Err(Error::Orchestrator(OrchestratorError::Invalid(why))) => {
            let st = plan::failed_reconcile(
                lt.status.as_ref(),
                "orchestrator",
                &why.to_string(),
                true,
                &now(),
            );
            write_status(&api, &lt.name_any(), &st).await?;
            ctx.set_phase(&lt, Some(st.phase));
            Ok(Action::await_change())
        }
        // Another LoadTest's test is running: wait for it, shown as queued (not an error).
        Err(Error::Orchestrator(OrchestratorError::Busy { running })) => {
            let st = plan::queued(lt.status.as_ref(), &running, &now());
            if lt.status.as_ref().map(|s| &s.message) != Some(&st.message) {
                write_status(&api, &lt.name_any(), &st).await?;
                tracing::info!(loadtest = %lt.name_any(), "queued behind test {running}");
            }
            Ok(Action::requeue(Duration::from_secs(2)))
        }
        // The finalizer was removed by an earlier reconcile and the LoadTest is gone already.
        Err(Error::Finalizer(FinalizerError::Gone)) => Ok(Action::await_change()),
        Err(e) => {
            // Shown in the status too (best effort: the status write may be what failed).
            let st =
                plan::failed_reconcile(lt.status.as_ref(), e.kind(), &e.to_string(), false, &now());
            if lt.status.as_ref() != Some(&st) {
                let _ = write_status(&api, &lt.name_any(), &st).await;
            }
            Err(e)
        }
        ok => ok,
    }
}

fn error_policy(lt: Arc<LoadTest>, e: &Error, ctx: Arc<Context>) -> Action {
    let counter = match e {
        // A Secret or key that is missing is a Kubernetes-side problem, counted as such.
        Error::Kube(_) | Error::SecretHeader(_) => &ctx.counters.errors_kubernetes,
        Error::Orchestrator(_) => &ctx.counters.errors_orchestrator,
        Error::Finalizer(_) => &ctx.counters.errors_finalizer,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(loadtest = %lt.name_any(), kind = e.kind(), "reconcile failed: {e}");
    Action::requeue(Duration::from_secs(5))
}

async fn apply(lt: &LoadTest, ctx: &Context) -> Result<Action, Error> {
    let (observed, hand_overs) = observe(lt, ctx).await?;
    let p = plan::plan(&lt.spec, lt.status.as_ref(), &observed);
    let mut status = p.status;
    status.observed_generation = lt.metadata.generation;
    if let Some(seen) = hand_overs {
        status.hand_overs = hand_over::merge(&status.hand_overs, seen);
    }
    if status.phase >= Phase::Running {
        status.test_id = Some(test_id(lt));
    }
    for step in &p.actions {
        match step {
            Step::ScaleDrivers(replicas) => scale(lt, *replicas, ctx).await?,
            Step::StartTest { driver_ids } => {
                let config = &observed.inputs.values;
                if let Some(run) = start_test(lt, driver_ids, &status, config, ctx).await? {
                    status.run = Some(run);
                }
            }
            Step::SetRate(pace) => set_rate(lt, *pace, &mut status, &observed.now, ctx).await?,
        }
    }
    ctx.set_phase(lt, Some(status.phase));
    if lt.status.as_ref() != Some(&status) {
        let api: Api<LoadTest> =
            Api::namespaced(ctx.client.clone(), &lt.namespace().unwrap_or_default());
        write_status(&api, &lt.name_any(), &status).await?;
    }
    announce_hand_overs(lt, ctx, &status.hand_overs).await;
    Ok(p.requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Gathers what [`plan::plan`] decides on, and the test's hand-overs (issue 13, item 2) as the
/// status shows them, when the orchestrator has the test.
async fn observe(
    lt: &LoadTest,
    ctx: &Context,
) -> Result<(Observed, Option<Vec<HandOverStatus>>), Error> {
    let deployments: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &lt.namespace().unwrap_or_default());
    let deployment_replicas = deployments
        .get_opt(&deployment_name(lt))
        .await?
        .and_then(|d| d.spec)
        .and_then(|s| s.replicas);
    let registered = ctx
        .orchestrator
        .drivers()
        .into_iter()
        .filter(|d| d.alive && d.test_id.is_none() && owns_driver(lt, &d.id))
        .map(|d| d.id)
        .collect();
    let view = match ctx.orchestrator.get(&test_id(lt)) {
        Ok(view) => Some(view),
        Err(OrchestratorError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let test = view.as_ref().map(observation);
    let hand_overs = view.as_ref().map(|v| hand_over::history(&v.hand_overs));
    let scaling_for = lt
        .status
        .as_ref()
        .filter(|s| s.phase == Phase::Scaling)
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Progressing"))
        .and_then(|c| humantime::parse_rfc3339(&c.last_transition_time).ok())
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    let mut observed = Observed {
        deployment_replicas,
        registered,
        test,
        scaling_for,
        not_taken_over: ctx.not_taken_over.get(&test_id(lt)).cloned(),
        inputs: Default::default(),
        now: now(),
    };
    if plan::reads_inputs(&lt.spec, lt.status.as_ref(), &observed) {
        let config_maps: Api<ConfigMap> =
            Api::namespaced(ctx.client.clone(), &lt.namespace().unwrap_or_default());
        observed.inputs = crate::configmaps::resolve(&config_maps, &lt.spec).await?;
        if let Some(p) = &observed.inputs.pending {
            tracing::info!(loadtest = %lt.name_any(), "waiting: {p}");
        }
    }
    Ok((observed, hand_overs))
}

/// The orchestrator's test ID for a LoadTest: its UID, stable across operator restarts.
pub fn test_id(lt: &LoadTest) -> String {
    lt.metadata
        .uid
        .clone()
        .unwrap_or_else(|| format!("{}-{}", lt.namespace().unwrap_or_default(), lt.name_any()))
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn ms_to_rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
        .to_string()
}

/// The part of the orchestrator's view of a test that goes into the LoadTest status.
pub fn observation(v: &TestView) -> TestObservation {
    let a = &v.aggregate;
    let l = &a.latency;
    TestObservation {
        status: v.status,
        reason: v.reason.clone(),
        aggregate: Stats {
            sent: a.sent,
            ok: a.ok,
            errors: a.error_total,
            achieved_rps: a.achieved_rps,
            min_ms: l.min_ms,
            max_ms: l.max_ms,
            mean_ms: l.mean_ms,
            median_ms: l.median_ms,
            mode_ms: l.mode_ms,
            p90_ms: l.p90_ms,
            p95_ms: l.p95_ms,
            p99_ms: l.p99_ms,
            lag_p99_ms: paced(&a.schedule_lag, |l| l.p99_ms),
        },
        start_skew: v.start_skew.map(|s| StartSkewStatus {
            skew_ms: s.skew_ms,
            bound_ms: s.bound_ms,
            drivers: u32::try_from(s.drivers).unwrap_or(u32::MAX),
        }),
        drivers: v
            .per_driver
            .iter()
            .map(|d| DriverProgress {
                id: d.driver_id.clone(),
                state: d.state.as_str().to_string(),
                requests: (d.stats.requests_total > 0).then_some(d.stats.requests_total),
                sent: d.stats.sent,
                ok: d.stats.ok,
                errors: d.stats.error_total,
                p99_ms: d.stats.latency.p99_ms,
                lag_p50_ms: paced(&d.stats.schedule_lag, |l| l.median_ms),
                lag_p99_ms: paced(&d.stats.schedule_lag, |l| l.p99_ms),
                lag_max_ms: paced(&d.stats.schedule_lag, |l| l.max_ms),
                start_offset_ms: d
                    .start
                    .zip(v.start_skew)
                    .map(|(d, s)| d.first_send_ms - s.first_ms),
            })
            .collect(),
        started_at: v.started_at_ms.map(ms_to_rfc3339),
        finished_at: v.finished_at_ms.map(ms_to_rfc3339),
        settled: v.settled,
        generator_warnings: v.generator_warnings.clone(),
        thresholds: v.thresholds.as_ref().map(thresholds_status),
        by_request: by_request(&a.by_request),
        rate_changes: crate::rate::history(&v.rate_changes),
        start_pace: Pace::of_test(&v.spec),
        last_asked: v
            .rate_changes
            .last()
            .and_then(|c| Pace::of_input(&c.change.input)),
    }
}

/// A figure of a schedule lag, when there was a schedule to be late for.
fn paced(
    lag: &floodgate::stats::LatencyStats,
    figure: impl Fn(&floodgate::stats::LatencyStats) -> Option<f64>,
) -> Option<f64> {
    figure(lag).filter(|_| lag.count > 0)
}

/// A mix's figures by name as the status shows them: bounded, as a mix is, whatever the
/// view holds.
fn by_request(
    named: &BTreeMap<String, floodgate::orchestrator::view_mix::RequestStats>,
) -> Vec<RequestProgress> {
    named
        .iter()
        .take(floodgate::protocol::limits::MAX_MIX_ENTRIES)
        .map(|(name, r)| RequestProgress {
            name: name.clone(),
            sent: r.sent,
            responses: r.responses,
            ok: r.ok,
            errors: r.error_total,
            checks_failed: r.checks_failed.total(),
            p99_ms: r.latency.p99_ms,
        })
        .collect()
}

/// The thresholds as the LoadTest status shows them.
fn thresholds_status(t: &floodgate::thresholds::eval::Thresholds) -> ThresholdsStatus {
    ThresholdsStatus {
        verdict: t.verdict.as_str().to_string(),
        aborted_by: t.aborted_by.clone(),
        results: t
            .results
            .iter()
            .map(|o| ThresholdResult {
                threshold: o.threshold.clone(),
                state: enum_name(&o.state),
                measured: o.measured,
                unit: enum_name(&o.unit),
            })
            .collect(),
    }
}

/// The name serde gives a unit variant (`no_data`, `per_second`).
fn enum_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Creates or scales the LoadTest's driver Deployment (server-side apply: idempotent).
async fn scale(lt: &LoadTest, replicas: i32, ctx: &Context) -> Result<(), Error> {
    let api: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &lt.namespace().unwrap_or_default());
    apply_deployment(&api, lt, replicas, &ctx.defaults).await?;
    tracing::info!(loadtest = %lt.name_any(), replicas, "driver deployment scaled");
    Ok(())
}

/// The server-side apply of a LoadTest's driver Deployment.
pub async fn apply_deployment(
    api: &Api<Deployment>,
    lt: &LoadTest,
    replicas: i32,
    defaults: &DriverDefaults,
) -> Result<Deployment, kube::Error> {
    let deployment = driver_deployment(lt, replicas, defaults);
    let params = PatchParams::apply(MANAGER).force();
    api.patch(&deployment_name(lt), &params, &Patch::Apply(&deployment))
        .await
}

/// Writes a LoadTest's status through the status subresource.
pub async fn write_status(
    api: &Api<LoadTest>,
    name: &str,
    status: &crate::crd::LoadTestStatus,
) -> Result<LoadTest, kube::Error> {
    let patch = Patch::Merge(json!({ "status": status }));
    api.patch_status(name, &PatchParams::apply(MANAGER), &patch)
        .await
}

/// Creates and starts the LoadTest's test. `status` (the one this reconcile writes) is written
/// with the test's record before the trigger is published, so that an operator that loses its
/// store can take the test over; the record is returned for the status.
async fn start_test(
    lt: &LoadTest,
    driver_ids: &[String],
    status: &crate::crd::LoadTestStatus,
    config: &BTreeMap<String, String>,
    ctx: &Context,
) -> Result<Option<crate::crd::RunRecord>, Error> {
    let ns = lt.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let resolved = crate::secrets::resolve(&secrets, &lt.spec.secret_headers, |name| {
        std::env::var(name).ok()
    })
    .await?;
    // What the schema cannot hold (a status code out of 100-599) is refused as the orchestrator
    // refuses a spec: the LoadTest fails, naming the field.
    let input = test_input(lt, driver_ids, resolved, config).map_err(OrchestratorError::Invalid)?;
    let written = std::sync::Arc::default();
    let record = crate::takeover::recorder(
        Api::namespaced(ctx.client.clone(), &ns),
        lt.name_any(),
        status.clone(),
        std::sync::Arc::clone(&written),
    );
    match ctx
        .orchestrator
        .create_recorded(test_id(lt), input, record)
        .await
    {
        Ok(view) => {
            tracing::info!(loadtest = %lt.name_any(), test_id = %view.id, "test started");
            Ok(written.lock().unwrap_or_else(|p| p.into_inner()).take())
        }
        // Created by an earlier reconcile whose status write was lost: nothing to do.
        Err(OrchestratorError::AlreadyExists(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Asks the orchestrator for the spec's new pace (issue 13), once: the status records what
/// was set, or that it was refused (a condition and an Event), so a reconcile does not ask
/// again. Only an error that may pass (Kafka unavailable) is returned, and retried.
async fn set_rate(
    lt: &LoadTest,
    pace: Pace,
    status: &mut crate::crd::LoadTestStatus,
    now: &str,
    ctx: &Context,
) -> Result<(), Error> {
    let (note, warning) = match ctx.orchestrator.set_rate(&test_id(lt), pace.input()).await {
        Ok(view) => {
            let changes = crate::rate::history(&view.rate_changes);
            let note = crate::rate::applied(status, pace, changes, now);
            tracing::info!(loadtest = %lt.name_any(), "{note}");
            (note, false)
        }
        // The value (`FieldError` names the API's field; the message is the spec's) or the
        // test (not running, staged, time-bound, ...): not asked for again.
        Err(OrchestratorError::Invalid(why)) => (
            crate::rate::refused(status, pace, &why.message, false, now),
            true,
        ),
        Err(OrchestratorError::Conflict(why)) => {
            (crate::rate::refused(status, pace, &why, true, now), true)
        }
        Err(e) => return Err(e.into()),
    };
    if warning {
        tracing::warn!(loadtest = %lt.name_any(), "{note}");
    }
    let reason = if warning {
        "RateChangeRefused"
    } else {
        "RateChanged"
    };
    publish_event(lt, ctx, warning, reason, "SetRate", &note).await;
    Ok(())
}

/// A Warning Event (`DriverHandedOver`) for each hand-over the status as this reconcile read it
/// did not have: published once the status that records it is written, so that a write that
/// fails (and is retried) announces nothing twice.
async fn announce_hand_overs(lt: &LoadTest, ctx: &Context, now: &[HandOverStatus]) {
    let before = lt.status.as_ref().map_or(&[][..], |s| &s.hand_overs[..]);
    for h in hand_over::new_since(before, now) {
        let note = hand_over::message(h);
        tracing::warn!(loadtest = %lt.name_any(), "{note}");
        publish_event(
            lt,
            ctx,
            true,
            hand_over::DRIVER_HANDED_OVER,
            "HandOver",
            &note,
        )
        .await;
    }
}

/// An Event on the LoadTest (`kubectl describe`); best effort: the status says it too.
async fn publish_event(
    lt: &LoadTest,
    ctx: &Context,
    warning: bool,
    reason: &str,
    action: &str,
    note: &str,
) {
    use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
    use kube::Resource;
    let recorder = Recorder::new(ctx.client.clone(), MANAGER.into());
    let event = KubeEvent {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &lt.object_ref(&())).await {
        tracing::warn!(loadtest = %lt.name_any(), "could not publish an event: {e}");
    }
}

/// On deletion: stop the test if it runs, and remove the drivers (the owner reference would
/// too, through the garbage collector; doing it here does not depend on one).
async fn cleanup(lt: &LoadTest, ctx: &Context) -> Result<Action, Error> {
    match ctx.orchestrator.stop(&test_id(lt)).await {
        Ok(_) | Err(OrchestratorError::NotFound(_) | OrchestratorError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let api: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &lt.namespace().unwrap_or_default());
    match api
        .delete(&deployment_name(lt), &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    ctx.set_phase(lt, None);
    tracing::info!(loadtest = %lt.name_any(), "cleaned up");
    Ok(Action::await_change())
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "controller_configmap_tests.rs"]
mod configmap_tests;

#[cfg(test)]
#[path = "controller_rate_tests.rs"]
mod rate_tests;

#[cfg(test)]
#[path = "controller_hand_over_tests.rs"]
mod hand_over_tests;
