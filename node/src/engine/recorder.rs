//! Per-worker measurements and the merged snapshot the reporter reads on a timer.
//!
//! Each worker owns one `WorkerStats`: the sent counter is an atomic (read live without a lock)
//! and the rest sits behind a mutex that only its worker and, twice a second, the reporter touch,
//! so the lock is uncontended on the hot path.

use crate::protocol::{ErrorCounts, StatusClasses};
use crate::stats::Latency;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What one worker has measured.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    /// From the intended send instant to the last byte of the response (coordinated omission).
    pub latency: Latency,
    /// From the actual write to the last byte (raw service time).
    pub service: Latency,
    pub status: StatusClasses,
    pub errors: ErrorCounts,
    /// The first transport error seen, for diagnosis (kept once, so errors cost no allocation
    /// after the first).
    pub first_error: Option<String>,
}

impl Recorder {
    pub fn note_error(&mut self, e: &dyn std::fmt::Display) {
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        self.status.add(&other.status);
        self.errors.add(&other.errors);
    }
}

#[derive(Default)]
pub struct WorkerStats {
    pub sent: AtomicU64,
    pub recorder: Mutex<Recorder>,
}

impl WorkerStats {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Recorder> {
        // A worker that panicked mid-record leaves counts that are still valid numbers.
        self.recorder.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A cumulative view of a whole run, merged from every worker.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub requests_total: u64,
    pub sent: u64,
    pub recorder: Recorder,
    /// Time since the scheduled start (zero before it).
    pub elapsed: Duration,
    /// Every request has a response or a recorded error (or the run was stopped).
    pub done: bool,
}

impl Snapshot {
    pub fn merge_from(workers: &[std::sync::Arc<WorkerStats>]) -> Snapshot {
        let mut s = Snapshot::default();
        for w in workers {
            s.sent += w.sent.load(Ordering::Relaxed);
            s.recorder.merge(&w.lock());
        }
        s
    }

    /// Complete HTTP responses of any status.
    pub fn responses(&self) -> u64 {
        self.recorder.status.total()
    }

    /// Responses with a 2xx status.
    pub fn ok(&self) -> u64 {
        self.recorder.status.c2
    }

    /// Requests that ended one way or another (a response or an error other than an HTTP status).
    pub fn completed(&self) -> u64 {
        let e = &self.recorder.errors;
        self.responses() + e.connect + e.timeout + e.io
    }

    /// Responses per second since the start.
    pub fn achieved_rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.responses() as f64 / secs
        } else {
            0.0
        }
    }
}
