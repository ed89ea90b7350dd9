//! The load engine: a plan goes in, snapshots come out. It knows nothing of Kafka or Kubernetes.
//!
//! `concurrency` workers each own one keep-alive connection. They claim request indices from one
//! shared counter (first come, first served); in a paced test each first takes a permit that
//! the engine's one clock (`clock`) hands out at every due instant of the pure [`Pacer`], to
//! within microseconds (`wait`). They record into per-thread stats shards (see `recorder`).
//! The caller reads merged [`Snapshot`]s whenever it likes (the driver's reporter does so on a
//! timer) and awaits the end of the run. Where the time per request goes, and what the hot loop
//! avoids, is described in `worker` and in `docs/benchmarks.md`.
//!
//! A worker talks to the target through a [`client::Client`]: its own HTTP/1.1 connection
//! (plain or TLS, `conn`), or one stream of an HTTP/2 connection shared with the workers of its
//! slot (`h2`). The loop is generic over it, so each is compiled on its own ([`Transport`]).

pub mod check;
mod client;
mod clock;
mod conn;
mod connect;
mod h2;
pub mod mix;
pub mod pacer;
mod recorder;
pub mod request;
pub mod retime;
pub mod tls;
mod wait;
mod worker;

pub use crate::http::RequestError;
pub use check::Checker;
pub use connect::Handshake;
pub use mix::MixRequest;
pub use pacer::Pacer;
pub use recorder::{CheckCounts, ErrorCounts, NameStats, Recorder, Snapshot, StatusClasses};
pub use request::PreparedRequest;
pub use retime::{Retime, RetimeError};

use recorder::StatsShard;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

/// Everything one driver needs to run its share of a test.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The request sent; with a mix, its first entry's (the URL the target is resolved from).
    pub request: PreparedRequest,
    /// A request mix sent instead of `request`, by weight (see `mix`); empty for one request.
    pub mix: Vec<MixRequest>,
    /// What a response must look like to be a success (entries of a mix may have their own).
    pub checker: Checker,
    pub pacer: Pacer,
    /// Requests to send in all; `u64::MAX` with [`Plan::until`] for as many as fit.
    pub requests: u64,
    /// Sends nothing from this offset after the start on (an unpaced time-bound test: as many
    /// requests as the target answers until then); `None` ends by the count alone. A paced
    /// time-bound test needs none: its count is its schedule's, all due before its end.
    pub until: Option<Duration>,
    /// Workers, and so connections, at most.
    pub concurrency: usize,
    /// Per request, from the actual send to the last byte of the response.
    pub timeout: Duration,
    /// Wall-clock instant of the first due request; `None` (or a past instant) starts now.
    pub start_at: Option<SystemTime>,
    /// Record the send instants of the first this many requests ([`Running::send_offsets`]);
    /// 0 records none. Costs 8 bytes each, allocated once, and one store per request.
    pub record_sends: usize,
    /// HTTP version and TLS; the default is plain HTTP/1.1.
    pub transport: Transport,
    /// Live rate changes the run takes at most ([`Running::retime`]); 0 takes none.
    pub max_retimes: usize,
}

/// How the workers talk to the target: HTTP/1.1 or HTTP/2, plain or TLS.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    /// HTTP/2: h2 chosen with ALPN over TLS, h2c with prior knowledge over plain TCP.
    pub http2: bool,
    /// Concurrent streams per HTTP/2 connection (0 and 1 both mean one).
    pub streams: usize,
    tls: Option<TlsClient>,
}

#[derive(Clone, Debug)]
struct TlsClient {
    /// One config for every connection of the test, so session tickets are shared.
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl Transport {
    /// The transport for `url` (TLS for `https://`, with `tls`), HTTP/2 with `streams` per
    /// connection or HTTP/1.1, for a test of `connections` connections.
    pub fn new(
        url: &crate::http::Url,
        http2: bool,
        streams: u64,
        tls: &tls::TlsOptions,
        connections: usize,
    ) -> Result<Transport, RequestError> {
        let tls_err = |message: String| RequestError {
            part: crate::http::Part::Tls,
            message,
        };
        let tls = if url.tls {
            Some(TlsClient {
                config: tls::client_config(tls, http2, connections).map_err(tls_err)?,
                name: tls::server_name(tls, &url.host).map_err(tls_err)?,
            })
        } else {
            None
        };
        Ok(Transport {
            http2,
            streams: usize::try_from(streams.max(1)).unwrap_or(usize::MAX),
            tls,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// The state every worker reads.
pub(crate) struct Shared {
    addr: SocketAddr,
    /// The request or mix, each with its checks.
    mix: mix::Requests,
    pacer: Pacer,
    /// Requests to send in all, and whether the count is final (see [`Count`]).
    count: Count,
    /// No request is sent from this instant on (see [`Plan::until`]).
    end: Option<Instant>,
    timeout: Duration,
    start: Instant,
    /// The next request index to claim. Every worker writes it once per request, so it sits on
    /// cache lines of its own: the read-only fields around it (and `stopped`, read once per
    /// request) are then not invalidated on every claim when workers run on several threads.
    next: CacheAligned<AtomicU64>,
    stopped: AtomicBool,
    stop_notify: Notify,
    /// Nanoseconds from `start` to the send of request `i`, for the first requests (0: not
    /// sent yet); see [`Plan::record_sends`].
    sends: Box<[AtomicU64]>,
    /// Nanoseconds from `start` to the earliest send, plus one (0: none yet). Only an index
    /// below `workers` can be the first one sent: before the first write no request has ended,
    /// so no worker has claimed twice. Later sends never touch it.
    first_send: AtomicU64,
    workers: u64,
    /// `start` on the wall clock, so the first send can be reported as an instant other nodes
    /// can compare (the start skew, issue 13).
    start_wall: SystemTime,
    /// Sends are allowed until this many ns after `start` (`u64::MAX`: no limit). The driver
    /// extends it while it hears the orchestrator or a majority (issue 13's fail-safe); every
    /// send checks it, so a driver resumed after a pause sends nothing once it has lapsed,
    /// however many permits the clock releases to catch up.
    lease_ns: AtomicU64,
    /// The lease lapsed and stopped the run.
    lapsed: AtomicBool,
    /// Permits to send: the clock adds one at each paced request's due instant (one per worker
    /// at the start of an unpaced run); closed on stop. See `clock`.
    gate: Semaphore,
    /// Live rate changes of a constant pace (see `retime`), and the clock's wake-up for them.
    retimes: retime::Retimes,
    retimed: Notify,
}

impl Shared {
    /// `at` as nanoseconds after the start (0 before it), below `u64::MAX` so that the slots
    /// that store it plus one, and the lease's "no limit", stay apart.
    fn offset_ns(&self, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.start).as_nanos();
        u64::try_from(ns).unwrap_or(u64::MAX - 1).min(u64::MAX - 1)
    }

    /// Offset from the start at which request `index` is due, with any rate change that reached
    /// it; `None` when unpaced.
    fn due(&self, index: u64) -> Option<Duration> {
        match self.retimes.segment_for(index) {
            Some(p) => Some(Duration::from_nanos(p.due_ns(index))),
            None => self.pacer.due(index),
        }
    }

    /// How many requests are due by `elapsed` (see [`Pacer::due_by`]), with the rate changes in
    /// force by then.
    fn due_by(&self, elapsed: Duration) -> u64 {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        match self.retimes.segment_at(ns) {
            Some(p) => p.due_by(ns).clamp(1, self.requests().max(1)),
            None => self.pacer.due_by(elapsed, self.requests()),
        }
    }

    /// Requests to send in all, as of now (a hand-over may still add some).
    fn requests(&self) -> u64 {
        self.count.get()
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.gate.close();
        self.stop_notify.notify_waiters();
    }

    /// [`Shared::lease_lapsed_at`] when the run still has requests to send; a run that sent
    /// everything (or was stopped, or reached its end) has nothing a lease could hold back.
    fn lapse_if_pending(&self, at: Instant) -> bool {
        let pending = self.next.load(Ordering::Relaxed) < self.requests()
            && !self.stopped.load(Ordering::Relaxed)
            && self.end.is_none_or(|end| at < end);
        pending && self.lease_lapsed_at(at)
    }

    /// Whether a send at `at` is past the lease; if so the run stops, as lapsed.
    fn lease_lapsed_at(&self, at: Instant) -> bool {
        let lease = self.lease_ns.load(Ordering::Relaxed);
        if lease == u64::MAX {
            return false;
        }
        if self.offset_ns(at) <= lease {
            return false;
        }
        self.lapsed.store(true, Ordering::Relaxed);
        self.stop();
        true
    }
}

/// A run's request count, which a hand-over may raise until the run closes it. One atomic holds
/// both, so that raising it and closing it cannot cross: the worker that ends the run closes
/// the count it saw, and a raise after that is refused rather than lost.
pub(crate) struct Count(AtomicU64);

/// The top bit: the count is final.
const CLOSED: u64 = 1 << 63;

/// Why a run's count was not raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extended {
    /// Its last request already left (or was answered), or it was stopped.
    Ended,
    /// A time-bound run has no count to raise.
    TimeBound,
    /// The new count would be over what a run can hold.
    TooMany,
}

impl std::fmt::Display for Extended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Extended::Ended => "the run has ended (its last request was let go, or it was stopped)",
            Extended::TimeBound => "a time-bound run has no count to raise",
            Extended::TooMany => "the count would be over what a run can hold",
        })
    }
}

impl Count {
    fn new(n: u64) -> Self {
        Self(AtomicU64::new(n.min(CLOSED - 1)))
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire) & !CLOSED
    }

    /// Closes the count if it is still `n`; false when it was raised past `n` meanwhile (or
    /// is closed already).
    fn close_at(&self, n: u64) -> bool {
        self.0
            .compare_exchange(n, n | CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire) & CLOSED != 0
    }

    fn extend(&self, extra: u64) -> Result<u64, Extended> {
        let mut out = Err(Extended::Ended);
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                if v & CLOSED != 0 {
                    out = Err(Extended::Ended);
                    return None;
                }
                match v.checked_add(extra).filter(|&n| n < CLOSED) {
                    Some(n) => {
                        out = Ok(n);
                        Some(n)
                    }
                    None => {
                        out = Err(Extended::TooMany);
                        None
                    }
                }
            });
        out
    }
}

/// A value alone on its cache lines (128 bytes: x86 prefetches 64-byte lines in pairs).
#[repr(align(128))]
pub(crate) struct CacheAligned<T>(pub T);

impl<T> std::ops::Deref for CacheAligned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A run in progress. Cheap to clone: every clone sees the same run.
#[derive(Clone)]
pub struct Running {
    shared: Arc<Shared>,
    stats: Arc<[StatsShard]>,
    finished: watch::Receiver<Option<Instant>>,
}

/// Resolves the target once, then starts the workers.
pub async fn start(plan: Plan) -> Result<Running, RequestError> {
    let authority = plan.request.url.authority();
    let requests = std::iter::once(&plan.request).chain(plan.mix.iter().map(|m| &m.request));
    for r in requests {
        if r.url.tls != plan.transport.is_tls()
            || (plan.transport.http2 && r.h2.is_none())
            || r.url.authority() != authority
        {
            return Err(RequestError {
                part: crate::http::Part::Url,
                message: format!(
                    "{}: the transport was not built for this URL, or it is not on {authority} \
                     (see engine::Transport::new)",
                    r.url.authority()
                ),
            });
        }
    }
    let addr = tokio::net::lookup_host(&authority)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| RequestError {
            part: crate::http::Part::Url,
            message: format!("cannot resolve {authority}"),
        })?;
    Ok(start_at_addr(plan, addr))
}

/// Starts the workers against an already-resolved address.
pub fn start_at_addr(plan: Plan, addr: SocketAddr) -> Running {
    let now_wall = SystemTime::now();
    let now = Instant::now();
    // A start already past (a late trigger) is now.
    let ahead = plan
        .start_at
        .and_then(|at| at.duration_since(now_wall).ok())
        .unwrap_or(Duration::ZERO);
    let (start, start_wall) = (now + ahead, now_wall + ahead);
    let connections = plan.concurrency.max(1);
    // One worker per stream: one per connection for HTTP/1.1, `streams` per connection for
    // HTTP/2; never more than there are requests.
    let streams = if plan.transport.http2 {
        plan.transport.streams.max(1)
    } else {
        1
    };
    let n = connections
        .saturating_mul(streams)
        .min(usize::try_from(plan.requests).unwrap_or(usize::MAX))
        .max(1);
    // A constant pace can change while the run goes on (issue 13); a staged one is its stages.
    let retimable_gap = match &plan.pacer {
        Pacer::Constant { gap } => u64::try_from(gap.as_nanos()).unwrap_or(u64::MAX),
        Pacer::Staged(_) => 0,
    };
    let shared = Arc::new(Shared {
        addr,
        mix: mix::Requests::new(plan.request, plan.checker, plan.mix),
        pacer: plan.pacer,
        count: Count::new(plan.requests),
        end: plan.until.and_then(|u| start.checked_add(u)),
        timeout: plan.timeout,
        start,
        next: CacheAligned(AtomicU64::new(0)),
        stopped: AtomicBool::new(false),
        stop_notify: Notify::new(),
        gate: Semaphore::new(0),
        sends: (0..plan
            .record_sends
            .min(usize::try_from(plan.requests).unwrap_or(usize::MAX)))
            .map(|_| AtomicU64::new(0))
            .collect(),
        first_send: AtomicU64::new(0),
        workers: n as u64,
        start_wall,
        lease_ns: AtomicU64::new(u64::MAX),
        lapsed: AtomicBool::new(false),
        retimes: retime::Retimes::new(retimable_gap, plan.max_retimes),
        retimed: Notify::new(),
    });
    let mirror_service = !shared.pacer.is_paced();
    // Sends are counted per stage in each shard's recorder, sized here once.
    let stages = shared.pacer.schedule().map_or(0, |s| s.segments().len());
    let names = shared.mix.named();
    let stats: Arc<[StatsShard]> = (0..recorder::shard_count(n))
        .map(|_| StatsShard::new(mirror_service, stages, names))
        .collect();
    let (done_tx, finished) = watch::channel(None);
    let mut tasks = tokio::task::JoinSet::new();
    let t = &plan.transport;
    match (&t.tls, t.http2) {
        (None, false) => spawn_h1(&mut tasks, &shared, &stats, n, connect::Plain),
        (Some(c), false) => spawn_h1(&mut tasks, &shared, &stats, n, c.connector()),
        (None, true) => spawn_h2(&mut tasks, &shared, &stats, n, connections, connect::Plain),
        (Some(c), true) => spawn_h2(&mut tasks, &shared, &stats, n, connections, c.connector()),
    }
    // Not one of the tasks waited for: the clock never ends by itself (see `clock`), and is
    // aborted once every worker has ended, whatever ended them.
    let clock = tokio::spawn(clock::run(shared.clone(), n));
    tokio::spawn(async move {
        while tasks.join_next().await.is_some() {}
        let finished_at = Instant::now();
        clock.abort();
        let _ = done_tx.send(Some(finished_at));
    });
    Running {
        shared,
        stats,
        finished,
    }
}

impl TlsClient {
    fn connector(&self) -> connect::Tls {
        connect::Tls::new(self.config.clone(), self.name.clone())
    }
}

type Tasks = tokio::task::JoinSet<()>;

/// `n` HTTP/1.1 workers, each with its own connection.
fn spawn_h1<C: connect::Connect>(
    tasks: &mut Tasks,
    shared: &Arc<Shared>,
    stats: &Arc<[StatsShard]>,
    n: usize,
    connector: C,
) {
    let connector = Arc::new(connector);
    for _ in 0..n {
        let c = client::H1::new(connector.clone());
        tasks.spawn(worker::run(shared.clone(), stats.clone(), c));
    }
}

/// `n` HTTP/2 workers (streams) spread over at most `connections` shared connections.
fn spawn_h2<C: connect::Connect>(
    tasks: &mut Tasks,
    shared: &Arc<Shared>,
    stats: &Arc<[StatsShard]>,
    n: usize,
    connections: usize,
    connector: C,
) {
    let connector = Arc::new(connector);
    let slots: Vec<_> = (0..connections.min(n))
        .map(|_| h2::Slot::new(connector.clone()))
        .collect();
    for i in 0..n {
        let c = h2::H2::new(slots[i % slots.len()].clone());
        tasks.spawn(worker::run(shared.clone(), stats.clone(), c));
    }
}

impl Running {
    /// A merged, cumulative view of the run so far.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::merge_from(&self.stats);
        s.time_bound = self.shared.end.is_some();
        // An open count is not a figure to show: 0 says "as many as fit in the duration".
        let requests = self.shared.requests();
        s.requests = if s.time_bound && requests >= CLOSED - 1 {
            0
        } else {
            requests
        };
        s.stopped = self.shared.stopped.load(Ordering::Relaxed);
        let finished_at = *self.finished.borrow();
        let until = finished_at.unwrap_or_else(Instant::now);
        s.elapsed = until.saturating_duration_since(self.shared.start);
        s.done = finished_at.is_some();
        s.lapsed = self.shared.lapsed.load(Ordering::Relaxed);
        s.retimes = (self.shared.retimes.applied().iter())
            .map(|r| r.on_wall(self.shared.start_wall))
            .collect();
        s.first_send = match self.shared.first_send.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.shared.start_wall + Duration::from_nanos(ns - 1)),
        };
        s
    }

    /// Stops sending new requests; those in flight finish or time out.
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Allows sends until `until` (never shortens an earlier grant); see `Shared::lease_ns`.
    /// The first call sets a limit where there was none. A lease already past is not renewed:
    /// it lapsed while nothing ran (a paused process), and the run stops as lapsed, whatever
    /// news arrives late.
    pub fn extend_lease(&self, until: Instant) {
        if self.lapsed() {
            return;
        }
        let ns = self.shared.offset_ns(until);
        let _ = self
            .shared
            .lease_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v == u64::MAX || ns > v).then_some(ns)
            });
    }

    /// Changes the pace to one request every `gap` from `at` on (issue 13's live rate change):
    /// requests due before `at` keep their instants, the rest follow the new gap on an absolute
    /// schedule that carries the phase over (see `retime`). An `at` already past (or before
    /// the start) is taken as now (the start): what was let go cannot be called back. `tag` is
    /// the caller's label, returned in [`Snapshot::retimes`].
    pub fn retime(&self, at: SystemTime, gap: Duration, tag: u64) -> Result<Retime, RetimeError> {
        let offset = |wall: SystemTime| {
            let d = wall
                .duration_since(self.shared.start_wall)
                .unwrap_or(Duration::ZERO);
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
        };
        let now = self.shared.offset_ns(Instant::now());
        let gap_ns = u64::try_from(gap.as_nanos()).unwrap_or(u64::MAX);
        let applied = self.shared.retimes.push(offset(at), now, gap_ns, tag)?;
        // The clock may be waiting for an instant of the old schedule.
        self.shared.retimed.notify_one();
        Ok(applied.on_wall(self.shared.start_wall))
    }

    /// Adds `extra` requests to the run's count (issue 13's hand-over of a lost driver's share):
    /// they follow the ones already planned, on the same schedule. Refused once the count is
    /// final: the last request was let go (unpaced) or answered (paced), the run was stopped,
    /// or it is time-bound. Returns the new count.
    pub fn extend(&self, extra: u64) -> Result<u64, Extended> {
        if self.shared.end.is_some() {
            return Err(Extended::TimeBound);
        }
        if self.shared.stopped.load(Ordering::Relaxed) {
            return Err(Extended::Ended);
        }
        let n = self.shared.count.extend(extra)?;
        // The clock may be idle, every permit of the old count released.
        self.shared.retimed.notify_one();
        Ok(n)
    }

    /// The instant sends are allowed until, if a lease was set.
    pub fn lease(&self) -> Option<Instant> {
        match self.shared.lease_ns.load(Ordering::Relaxed) {
            u64::MAX => None,
            ns => Some(self.shared.start + Duration::from_nanos(ns)),
        }
    }

    /// Whether the lease lapsed and stopped the run; checks it now, so that a run whose next
    /// send is far off stops as lapsed without waiting for it.
    pub fn lapsed(&self) -> bool {
        self.shared.lapse_if_pending(Instant::now()) || self.shared.lapsed.load(Ordering::Relaxed)
    }

    /// Waits until every request has a response or an error, then returns the final snapshot.
    pub async fn finished(&self) -> Snapshot {
        let mut rx = self.finished.clone();
        // The sender lives until every worker has ended, so waiting cannot miss the end.
        let _ = rx.wait_for(|f| f.is_some()).await;
        self.snapshot()
    }

    /// Whether the start instant has come (before it, nothing has been sent).
    pub fn has_started(&self) -> bool {
        Instant::now() >= self.shared.start
    }

    /// The instant the first request was due.
    pub fn start(&self) -> Instant {
        self.shared.start
    }

    /// When each of the first requests (by index) was sent, from the start instant; `None` for
    /// one not sent. As many as [`Plan::record_sends`] asked for.
    pub fn send_offsets(&self) -> Vec<Option<Duration>> {
        self.shared
            .sends
            .iter()
            .map(|s| match s.load(Ordering::Relaxed) {
                0 => None,
                ns => Some(Duration::from_nanos(ns - 1)),
            })
            .collect()
    }
}

#[cfg(test)]
mod extend_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transport_tests;
