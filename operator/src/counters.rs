//! The operator's own Prometheus metrics, appended to the orchestrator's `/metrics`:
//! reconciles, failed reconciles by kind of error, and LoadTests by phase.

use crate::controller::Context;
use floodgate::metrics::{self, Kind, Spec};
use std::sync::atomic::{AtomicU64, Ordering};

/// Operator counters (exported with the orchestrator's metrics).
#[derive(Debug, Default)]
pub struct Counters {
    pub reconciles: AtomicU64,
    pub errors_kubernetes: AtomicU64,
    pub errors_orchestrator: AtomicU64,
    pub errors_finalizer: AtomicU64,
}

impl Context {
    /// The operator's metrics in the Prometheus text format (appended to the orchestrator's).
    pub fn metrics_text(&self) -> String {
        let reconciles = self.counters.reconciles.load(Ordering::Relaxed) as f64;
        let errors = [
            (
                "kubernetes",
                self.counters.errors_kubernetes.load(Ordering::Relaxed),
            ),
            (
                "orchestrator",
                self.counters.errors_orchestrator.load(Ordering::Relaxed),
            ),
            (
                "finalizer",
                self.counters.errors_finalizer.load(Ordering::Relaxed),
            ),
        ];
        let mut by_phase = [0u64; 5];
        for p in self
            .phases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            by_phase[*p as usize] += 1;
        }
        let text =
            metrics::render_families(&[&RECONCILES, &RECONCILE_ERRORS, &LOADTESTS], move || {
                let mut out = metrics::Families::default();
                out.counter(&RECONCILES, &[], reconciles);
                for (kind, n) in errors {
                    out.counter(&RECONCILE_ERRORS, &[kind], n as f64);
                }
                for (name, n) in ["Pending", "Scaling", "Running", "Succeeded", "Failed"]
                    .iter()
                    .zip(by_phase)
                {
                    out.gauge(&LOADTESTS, &[name], n as f64);
                }
                out
            });
        text.unwrap_or_else(|e| {
            tracing::error!("encoding the operator's metrics: {e}");
            String::new()
        })
    }
}

const RECONCILES: Spec = Spec {
    name: "floodgate_operator_reconciles_total",
    help: "LoadTest reconciliations run.",
    kind: Kind::Counter,
    labels: &[],
};
const RECONCILE_ERRORS: Spec = Spec {
    name: "floodgate_operator_reconcile_errors_total",
    help: "Failed reconciliations, by kind of error.",
    kind: Kind::Counter,
    labels: &["kind"],
};
const LOADTESTS: Spec = Spec {
    name: "floodgate_loadtests",
    help: "LoadTests known to the operator, by phase.",
    kind: Kind::Gauge,
    labels: &["phase"],
};
