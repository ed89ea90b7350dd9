//! Shared server state: the request counters (and counts by path), the fault-injection knobs
//! and the arrival log.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::paths::PathCounts;

/// Keeps each hot counter on its own cache line (128 bytes covers adjacent-line
/// prefetching on x86) so the two counters do not false-share with each other
/// or with neighbouring fields.
#[derive(Debug, Default)]
#[repr(align(128))]
struct PaddedCounter(AtomicU64);

/// Snapshot of the /ping counters, as served by /metrics and /reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counters {
    pub requests_received: u64,
    pub responses_sent: u64,
}

/// State shared by every connection of one server.
#[derive(Debug)]
pub struct Target {
    requests_received: PaddedCounter,
    responses_sent: PaddedCounter,
    latency: Duration,
    jitter_ms: f64,
    error_ratio: f64,
    arrivals: Arrivals,
    header: Option<RecordedHeader>,
    paths: PathCounts,
}

/// The header named by `--record-header`: how many /ping requests carried it, and its last
/// value (bounded: a value longer than [`RecordedHeader::MAX`] bytes is cut).
#[derive(Debug)]
struct RecordedHeader {
    name: String,
    count: AtomicU64,
    last: Mutex<String>,
}

impl RecordedHeader {
    const MAX: usize = 4096;
}

/// What GET /headers serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HeaderRecord {
    pub name: String,
    pub count: u64,
    pub last: Option<String>,
}

impl Target {
    /// Builds the state for `config`, preallocating the arrival log.
    pub fn new(config: &Config) -> Result<Self, String> {
        config.validate()?;
        Ok(Self {
            requests_received: PaddedCounter::default(),
            responses_sent: PaddedCounter::default(),
            latency: Duration::from_secs_f64(config.latency_ms / 1000.0),
            jitter_ms: config.latency_jitter_ms,
            error_ratio: config.error_ratio,
            arrivals: Arrivals::new(config.record_arrivals)?,
            header: config.record_header.as_ref().map(|name| RecordedHeader {
                name: name.clone(),
                count: AtomicU64::new(0),
                last: Mutex::new(String::new()),
            }),
            paths: PathCounts::default(),
        })
    }

    /// Counts (and possibly records) a /ping on arrival, before any added latency.
    pub(crate) fn on_ping_arrival(&self) {
        self.requests_received.0.fetch_add(1, Ordering::Relaxed);
        self.arrivals.record();
    }

    /// Records the `--record-header` header of a /ping, if it has one.
    pub(crate) fn on_ping_headers(&self, headers: &hyper::HeaderMap) {
        let Some(h) = &self.header else { return };
        if let Some(v) = headers.get(h.name.as_str()) {
            h.count.fetch_add(1, Ordering::Relaxed);
            let text = String::from_utf8_lossy(v.as_bytes());
            let cut: String = text.chars().take(RecordedHeader::MAX).collect();
            *h.last.lock().unwrap_or_else(|p| p.into_inner()) = cut;
        }
    }

    /// The recorded header, if `--record-header` is set.
    pub fn header_record(&self) -> Option<HeaderRecord> {
        self.header.as_ref().map(|h| {
            let count = h.count.load(Ordering::Relaxed);
            HeaderRecord {
                name: h.name.clone(),
                count,
                last: (count > 0).then(|| h.last.lock().unwrap_or_else(|p| p.into_inner()).clone()),
            }
        })
    }

    /// Counts a /ping response once it has been built.
    pub(crate) fn on_ping_response(&self) {
        self.responses_sent.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Draws whether this /ping gets the injected 500.
    pub(crate) fn inject_error(&self) -> bool {
        // The bounds skip the RNG entirely in the common configurations.
        if self.error_ratio <= 0.0 {
            false
        } else if self.error_ratio >= 1.0 {
            true
        } else {
            rand::random::<f64>() < self.error_ratio
        }
    }

    /// Latency to add before answering this /ping; `None` when nothing should be awaited.
    pub(crate) fn ping_delay(&self) -> Option<Duration> {
        let jitter = if self.jitter_ms > 0.0 {
            Duration::from_secs_f64(rand::random_range(0.0..self.jitter_ms) / 1000.0)
        } else {
            Duration::ZERO
        };
        let delay = self.latency + jitter;
        (!delay.is_zero()).then_some(delay)
    }

    /// Longest latency /ping can add, used to bound the shutdown drain.
    pub fn max_ping_delay(&self) -> Duration {
        self.latency + Duration::from_secs_f64(self.jitter_ms / 1000.0)
    }

    /// Current counter values.
    pub fn counters(&self) -> Counters {
        Counters {
            requests_received: self.requests_received.0.load(Ordering::Relaxed),
            responses_sent: self.responses_sent.0.load(Ordering::Relaxed),
        }
    }

    /// Zeroes the counters, the counts by path and the arrival log, returning the counters as
    /// they were.
    pub fn reset(&self) -> Counters {
        let before = Counters {
            requests_received: self.requests_received.0.swap(0, Ordering::Relaxed),
            responses_sent: self.responses_sent.0.swap(0, Ordering::Relaxed),
        };
        self.paths.reset();
        self.arrivals.clear();
        before
    }

    /// Requests counted by path (without the query string), at most
    /// [`MAX_PATHS`](crate::MAX_PATHS) of them, the rest under [`OTHER`](crate::OTHER). GET
    /// /ping is `requests_received`; the control endpoints are not counted.
    pub fn path_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.paths
            .snapshot(self.requests_received.0.load(Ordering::Relaxed))
    }

    pub(crate) fn paths(&self) -> &PathCounts {
        &self.paths
    }

    /// Recorded arrivals in microseconds since the earliest one, ascending.
    pub fn arrivals_us(&self) -> Vec<u64> {
        self.arrivals.snapshot_us()
    }

    /// The earliest recorded arrival, in µs since the Unix epoch.
    pub fn first_arrival_unix_us(&self) -> Option<u64> {
        self.arrivals.first_unix_us()
    }
}

/// Fixed-capacity, lock-free log of /ping arrival instants.
///
/// Writers claim a slot with one `fetch_add` and store the arrival as
/// nanoseconds since `epoch` plus one, so zero can mean "not written yet".
/// Timestamps are rebased on the earliest entry when read, which gives
/// "since the first recorded arrival" without writers having to agree on
/// who came first.
#[derive(Debug)]
struct Arrivals {
    epoch: Instant,
    /// `epoch` on the wall clock, so the first arrival can be given as an instant that other
    /// processes on the machine can compare with theirs.
    epoch_wall: std::time::SystemTime,
    next: AtomicUsize,
    slots: Box<[AtomicU64]>,
}

impl Arrivals {
    fn new(capacity: usize) -> Result<Self, String> {
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(capacity)
            .map_err(|e| format!("cannot allocate {capacity} arrival slots: {e}"))?;
        slots.extend((0..capacity).map(|_| AtomicU64::new(0)));
        Ok(Self {
            epoch: Instant::now(),
            epoch_wall: std::time::SystemTime::now(),
            next: AtomicUsize::new(0),
            slots: slots.into_boxed_slice(),
        })
    }

    fn record(&self) {
        let capacity = self.slots.len();
        // The plain load keeps a full (or disabled) log from turning every
        // request into a contended read-modify-write.
        if self.next.load(Ordering::Relaxed) >= capacity {
            return;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.slots.get(index) {
            let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
            slot.store(nanos + 1, Ordering::Relaxed);
        }
    }

    fn clear(&self) {
        // Slots first, then the index: a writer racing with the reset either
        // still sees a full log or writes into an already-cleared slot.
        for slot in self.slots.iter() {
            slot.store(0, Ordering::Relaxed);
        }
        self.next.store(0, Ordering::Relaxed);
    }

    /// The earliest recorded arrival in µs since the Unix epoch, if any.
    fn first_unix_us(&self) -> Option<u64> {
        let written = self.next.load(Ordering::Relaxed).min(self.slots.len());
        let first = self.slots[..written]
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|&n| n != 0)
            .min()?;
        let at = self.epoch_wall + std::time::Duration::from_nanos(first - 1);
        let us = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_micros();
        u64::try_from(us).ok()
    }

    fn snapshot_us(&self) -> Vec<u64> {
        let written = self.next.load(Ordering::Relaxed).min(self.slots.len());
        let mut nanos: Vec<u64> = self.slots[..written]
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|&n| n != 0)
            .collect();
        nanos.sort_unstable();
        let first = nanos.first().copied().unwrap_or(0);
        nanos.iter().map(|&n| (n - first) / 1000).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(config: Config) -> Target {
        Target::new(&config).unwrap()
    }

    #[test]
    fn arrival_log_is_bounded_and_sorted() {
        let t = target(Config {
            record_arrivals: 4,
            ..Config::default()
        });
        for _ in 0..10 {
            t.on_ping_arrival();
        }
        let arrivals = t.arrivals_us();
        assert_eq!(arrivals.len(), 4);
        assert_eq!(arrivals[0], 0);
        assert!(arrivals.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(t.counters().requests_received, 10);
    }

    #[test]
    fn the_first_arrival_is_given_on_the_wall_clock() {
        let unix_us = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64
        };
        let t = target(Config {
            record_arrivals: 4,
            ..Config::default()
        });
        assert_eq!(t.first_arrival_unix_us(), None);
        let before = unix_us();
        t.on_ping_arrival();
        let after = unix_us();
        t.on_ping_arrival();
        let first = t.first_arrival_unix_us().expect("recorded");
        // The epoch's two clocks are read apart, by at most a few µs.
        assert!(
            before.saturating_sub(50) <= first && first <= after + 50,
            "{before} {first} {after}"
        );
    }

    #[test]
    fn disabled_arrival_log_stays_empty() {
        let t = target(Config::default());
        t.on_ping_arrival();
        assert!(t.arrivals_us().is_empty());
    }

    #[test]
    fn reset_returns_previous_counters_and_clears_arrivals() {
        let t = target(Config {
            record_arrivals: 2,
            ..Config::default()
        });
        t.on_ping_arrival();
        t.on_ping_response();
        t.on_ping_arrival();
        let before = t.reset();
        assert_eq!(
            before,
            Counters {
                requests_received: 2,
                responses_sent: 1
            }
        );
        assert_eq!(t.counters().requests_received, 0);
        assert!(t.arrivals_us().is_empty());
        t.on_ping_arrival();
        assert_eq!(t.arrivals_us(), vec![0]);
    }

    #[test]
    fn delay_is_none_without_latency_knobs() {
        assert!(target(Config::default()).ping_delay().is_none());
        let t = target(Config {
            latency_ms: 2.0,
            latency_jitter_ms: 1.0,
            ..Config::default()
        });
        for _ in 0..100 {
            let d = t.ping_delay().unwrap();
            assert!(d >= Duration::from_millis(2) && d < Duration::from_millis(3));
        }
    }

    #[test]
    fn counters_do_not_share_a_cache_line() {
        assert!(std::mem::align_of::<PaddedCounter>() >= 128);
    }
}
