//! A run's measurements, and the merged snapshot the reporter reads on a timer.
//!
//! Workers record into *shards* ([`StatsShard`]), one per runtime thread rather than one per
//! worker: a worker records into the shard of the thread it is running on at that moment
//! ([`shard_for_this_thread`]). A thread runs one task at a time and never holds the lock across
//! an `.await`, so a shard's mutex is only ever contended by a snapshot (twice a second), exactly
//! as with per-worker recorders, and its cache lines stay on the core that writes them. What it
//! changes is memory: an HDR histogram covering tens of milliseconds is some 40–100 KB, so one or
//! two per connection came to ~200 KB per connection (about 200 MB at 1,000 connections); per
//! thread it is a handful of histograms whatever the connection count. Snapshots also merge a few
//! histograms instead of one per connection.
//!
//! Memory is bounded by the HDR histograms (they grow with the largest latency seen, never with
//! the number of samples).

use super::check::Judged;
use crate::stats::Latency;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Requests that ended without a response, by kind, and responses whose status was not 2xx.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// Could not connect (refused, reset during connect, DNS).
    pub connect: u64,
    /// No complete response within the request timeout.
    pub timeout: u64,
    /// A complete response whose status was not 2xx.
    pub http: u64,
    /// The connection broke or the response could not be parsed.
    pub io: u64,
    /// A response with an expected status that failed a body or JSON check.
    pub check: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.as_array().iter().sum()
    }

    pub fn add(&mut self, o: &ErrorCounts) {
        self.connect += o.connect;
        self.timeout += o.timeout;
        self.http += o.http;
        self.io += o.io;
        self.check += o.check;
    }

    /// Responses that failed a check: an unexpected status (`http`) or a body or JSON check.
    pub fn failed_responses(&self) -> u64 {
        self.http + self.check
    }

    /// connect, timeout, http, io, check.
    pub fn as_array(&self) -> [u64; 5] {
        [self.connect, self.timeout, self.http, self.io, self.check]
    }
}

/// Responses that failed a check, by kind: `status` (also counted in `errors.http`), `body`
/// and `json` (a response failing both counts in each, once in `errors.check`), and of those
/// two, the ones whose body was larger than what is kept to check it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckCounts {
    pub status: u64,
    pub body: u64,
    pub json: u64,
    pub too_large: u64,
}

impl CheckCounts {
    pub fn add(&mut self, o: &CheckCounts) {
        self.status += o.status;
        self.body += o.body;
        self.json += o.json;
        self.too_large += o.too_large;
    }

    fn count(&mut self, j: &Judged) {
        self.status += u64::from(j.status);
        self.body += u64::from(j.body);
        self.json += u64::from(j.json);
        self.too_large += u64::from(j.too_large);
    }
}

/// One entry of a request mix: its own counts and latency, beside the totals.
#[derive(Clone, Debug, Default)]
pub struct NameStats {
    /// Requests of this entry handed to a connection (filled in by snapshots).
    pub sent: u64,
    pub latency: Latency,
    pub status: StatusClasses,
    pub errors: ErrorCounts,
    pub checks: CheckCounts,
}

impl NameStats {
    fn merge(&mut self, o: &NameStats) {
        self.sent += o.sent;
        self.latency.merge(&o.latency);
        self.status.add(&o.status);
        self.errors.add(&o.errors);
        self.checks.add(&o.checks);
    }
}

/// How one request ended, for [`Recorder::count`].
#[derive(Clone, Copy, Debug)]
pub enum Ended {
    /// A response, its latency (from the intended instant) and how it fared against its checks.
    Response {
        status: u16,
        latency_us: u64,
        judged: Judged,
    },
    Connect,
    Io,
    Timeout,
}

/// Responses by status class (1xx … 5xx).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusClasses(pub [u64; 5]);

impl StatusClasses {
    /// Counts one response; a status outside 100–499 counts as 5xx.
    pub fn record(&mut self, status: u16) {
        let class = match status / 100 {
            c @ 1..=4 => usize::from(c) - 1,
            _ => 4,
        };
        self.0[class] += 1;
    }

    pub fn add(&mut self, o: &StatusClasses) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Responses with a 2xx status.
    pub fn ok(&self) -> u64 {
        self.0[1]
    }
}

/// What one worker has measured.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    /// From the intended send instant to the last byte of the response (coordinated omission).
    pub latency: Latency,
    /// From the actual write to the last byte (raw service time).
    pub service: Latency,
    /// How late each paced request left: its actual send instant minus its due instant. Kept
    /// apart, so that the generator's lateness is never mistaken for the target's.
    pub lag: Latency,
    /// TCP connect time of each connection opened (not part of any request's latency unless
    /// the request had to reconnect).
    pub connect: Latency,
    /// TLS handshake time of each TLS connection opened, after its TCP connect.
    pub tls: Latency,
    /// TLS handshakes that resumed a session rather than doing a full handshake.
    pub tls_resumed: u64,
    pub status: StatusClasses,
    pub errors: ErrorCounts,
    /// The first transport error seen, for diagnosis (kept once, so errors cost no allocation
    /// after the first).
    pub first_error: Option<String>,
    /// Requests sent in each stage of a staged test, by send instant (empty otherwise): sized
    /// once when the shard is made, so counting allocates nothing.
    pub stage_sent: Vec<u64>,
    pub checks: CheckCounts,
    /// Per entry of a request mix, by position (empty without a mix); sized once.
    pub by_name: Vec<NameStats>,
}

impl Recorder {
    pub fn note_error(&mut self, e: &dyn std::fmt::Display) {
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    /// Counts how request `entry` (its position in the mix) ended: status, errors and checks,
    /// in the totals and in its entry's figures. Latency is recorded by the caller (the totals'
    /// differs between paced and unpaced runs).
    pub fn count(&mut self, entry: usize, ended: Ended) {
        let mut errors = ErrorCounts::default();
        let mut response = None;
        match ended {
            Ended::Response {
                status,
                latency_us,
                judged,
            } => {
                if judged.status {
                    errors.http = 1;
                } else if judged.failed() {
                    errors.check = 1;
                }
                self.status.record(status);
                self.checks.count(&judged);
                response = Some((status, latency_us, judged));
            }
            Ended::Connect => errors.connect = 1,
            Ended::Io => errors.io = 1,
            Ended::Timeout => errors.timeout = 1,
        }
        self.errors.add(&errors);
        if let Some(n) = self.by_name.get_mut(entry) {
            n.errors.add(&errors);
            if let Some((status, latency_us, judged)) = response {
                n.status.record(status);
                n.latency.record(latency_us);
                n.checks.count(&judged);
            }
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        self.lag.merge(&other.lag);
        self.connect.merge(&other.connect);
        self.tls.merge(&other.tls);
        self.tls_resumed += other.tls_resumed;
        self.status.add(&other.status);
        self.errors.add(&other.errors);
        if self.stage_sent.len() < other.stage_sent.len() {
            self.stage_sent.resize(other.stage_sent.len(), 0);
        }
        for (a, b) in self.stage_sent.iter_mut().zip(&other.stage_sent) {
            *a += b;
        }
        self.checks.add(&other.checks);
        if self.by_name.len() < other.by_name.len() {
            self.by_name
                .resize(other.by_name.len(), NameStats::default());
        }
        for (a, b) in self.by_name.iter_mut().zip(&other.by_name) {
            a.merge(b);
        }
    }
}

/// One shard of a run's counters. 128-byte alignment keeps two shards off the same cache lines
/// (adjacent-line prefetch pairs 64-byte lines on x86).
#[repr(align(128))]
pub struct StatsShard {
    /// Requests handed to a connection so far.
    pub sent: AtomicU64,
    /// The same per entry of a request mix (empty without one).
    pub name_sent: Box<[AtomicU64]>,
    pub recorder: Mutex<Recorder>,
    /// Workers record latency only and `recorder.service` stays empty: in an unpaced run a
    /// request is due the moment it is sent, so its service time *is* its latency. Snapshots
    /// copy the latency histogram into the service one, which halves the per-request histogram
    /// work and the histogram memory of unpaced runs.
    pub mirror_service: bool,
}

impl StatsShard {
    /// A shard; `stages` is the number of stages whose sends it counts (0 when unstaged),
    /// `names` the entries of a request mix (0 without one).
    pub fn new(mirror_service: bool, stages: usize, names: usize) -> Self {
        StatsShard {
            sent: AtomicU64::new(0),
            name_sent: (0..names).map(|_| AtomicU64::new(0)).collect(),
            recorder: Mutex::new(Recorder {
                stage_sent: vec![0; stages],
                by_name: vec![NameStats::default(); names],
                ..Recorder::default()
            }),
            mirror_service,
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Recorder> {
        // A worker that panicked mid-record leaves counts that are still valid numbers.
        self.recorder.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How many shards a run of `workers` workers uses: twice the current runtime's threads (at most
/// one per worker). Thread slots are handed out process-wide in the order threads first record,
/// so one runtime's threads normally get consecutive slots and distinct shards; the spare
/// shards make a collision unlikely when other threads take slots in between (as with tests
/// running several runtimes). A collision only costs speed, never correctness.
pub fn shard_count(workers: usize) -> usize {
    let threads = tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers())
        .unwrap_or(1);
    (2 * threads).clamp(1, workers.max(1))
}

/// The shard the calling thread records into.
pub fn shard_for_this_thread(shards: &[StatsShard]) -> &StatsShard {
    static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
    }
    &shards[SLOT.with(|s| *s) % shards.len()]
}

/// A cumulative view of a whole run, merged from every shard.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub requests: u64,
    pub sent: u64,
    pub recorder: Recorder,
    /// Time since the scheduled start (zero before it).
    pub elapsed: Duration,
    /// Every request has a response or a recorded error (or the run was stopped).
    pub done: bool,
    /// The run was stopped on request (before or after it sent everything).
    pub stopped: bool,
    /// The run ends by time ([`super::Plan::until`]), not by a count; `requests` is then 0.
    pub time_bound: bool,
    /// When the first request left, on the wall clock (`None` before it).
    pub first_send: Option<std::time::SystemTime>,
    /// The run stopped because its lease lapsed (see `Running::extend_lease`).
    pub lapsed: bool,
    /// The rate changes applied, in order (see `Running::retime`).
    pub retimes: Vec<super::Retime>,
}

impl Snapshot {
    pub fn merge_from(shards: &[StatsShard]) -> Snapshot {
        let mut s = Snapshot::default();
        for shard in shards {
            s.sent += shard.sent.load(Ordering::Relaxed);
            let rec = shard.lock();
            s.recorder.merge(&rec);
            for (n, sent) in s.recorder.by_name.iter_mut().zip(shard.name_sent.iter()) {
                n.sent += sent.load(Ordering::Relaxed);
            }
            if shard.mirror_service {
                s.recorder.service.merge(&rec.latency);
            }
        }
        s
    }

    /// Complete HTTP responses of any status.
    pub fn responses(&self) -> u64 {
        self.recorder.status.total()
    }

    /// Responses with a 2xx status.
    pub fn ok(&self) -> u64 {
        self.recorder.status.ok()
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
