//! The driver registry: who registered, when each was last heard from, and so who is alive.
//! Pure (time is passed in), so liveness is computed when asked and tested without clocks.
//!
//! Liveness is judged per node against the interval that node beats at: the one it declares
//! (Floodgate's drivers send `heartbeat_ms`), else the median of the gaps seen between its
//! heartbeats, else an assumed [`ASSUMED_INTERVAL`] until a second beat is seen. A node is lost
//! after [`MISSED_BEATS`] of its intervals without a heartbeat, never sooner than the configured
//! timeout; so a peer that beats every 5 s is not called lost while it runs.
//!
//! Only a registration makes a driver: a heartbeat from a node with none here is refused (the
//! caller counts it and asks Floodgate's drivers to register again). Registrations sent before
//! this orchestrator started are read back from the topic ([`Registry::replayed`]) and count
//! once the driver is heard from. The registry holds at most [`limits::MAX_KNOWN_DRIVERS`].

use super::bus_watch::BusWatch;
use super::clock::{ClockFilter, Exchange, Offset};
use crate::protocol::limits;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

/// Lost drivers are forgotten after this long (and the list never holds more than
/// [`limits::MAX_KNOWN_DRIVERS`]), so it stays bounded whatever arrives on `register`.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Heartbeats missed in a row before a node is lost.
pub const MISSED_BEATS: u32 = 3;
/// The interval assumed for a node that declares none, until two of its beats have been seen:
/// the slowest of the public implementations that beat from the start beats every 5 s.
pub const ASSUMED_INTERVAL: Duration = Duration::from_secs(5);
/// Gaps kept per node to estimate its interval.
const GAPS_KEPT: usize = 8;

#[derive(Clone, Debug)]
struct Entry {
    address: String,
    registered_at: SystemTime,
    first_seen: Instant,
    last_seen: Instant,
    test_id: Option<String>,
    /// Since when its heartbeats have named `test_id` (none: since when they named no test).
    test_since: Instant,
    heartbeats: u64,
    /// Floodgate's agent name, when the node sent it.
    agent: Option<String>,
    declared: Option<Duration>,
    /// The capacity it declared (issue 13), by which totals are shared.
    capacity: Option<f64>,
    last_beat: Option<Instant>,
    gaps: VecDeque<Duration>,
    /// Heard from since this orchestrator started (false for a registration read back from
    /// before it started, until the driver beats or reports).
    heard: bool,
    /// Its clock's offset from ours, from the beats it echoed (issue 13).
    clock: ClockFilter,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            address: String::new(),
            registered_at: SystemTime::now(),
            first_seen: now,
            last_seen: now,
            test_id: None,
            test_since: now,
            heartbeats: 0,
            agent: None,
            declared: None,
            capacity: None,
            last_beat: None,
            gaps: VecDeque::new(),
            heard: false,
            clock: ClockFilter::default(),
        }
    }

    /// What a registration or heartbeat says about the node besides "alive now".
    fn update(&mut self, beat: &Beat<'_>) {
        if let Some(a) = beat.address.filter(|a| !a.is_empty()) {
            self.address = a.to_string();
        }
        if let Some(a) = beat.agent {
            self.agent = Some(a.to_string());
        }
        if beat.interval.is_some() {
            self.declared = beat.interval;
        }
        if beat.capacity.is_some() {
            self.capacity = beat.capacity;
        }
    }

    /// The interval this node beats at, as best known.
    fn interval(&self) -> Duration {
        if let Some(d) = self.declared.filter(|d| !d.is_zero()) {
            return d;
        }
        if self.gaps.is_empty() {
            return ASSUMED_INTERVAL;
        }
        let mut sorted: Vec<Duration> = self.gaps.iter().copied().collect();
        sorted.sort();
        sorted[sorted.len() / 2]
    }

    fn floodgate(&self) -> bool {
        self.agent.as_deref() == Some(crate::protocol::AGENT)
    }
}

/// What a heartbeat or registration says about its node, besides "alive now".
#[derive(Clone, Debug, Default)]
pub struct Beat<'a> {
    pub address: Option<&'a str>,
    pub test_id: Option<String>,
    pub agent: Option<&'a str>,
    /// The interval the node declares.
    pub interval: Option<Duration>,
    /// The capacity it declares.
    pub capacity: Option<f64>,
}

/// What the API shows of one driver.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DriverView {
    pub id: String,
    pub address: String,
    pub alive: bool,
    pub heartbeat_age_ms: u64,
    pub test_id: Option<String>,
    pub heartbeats: u64,
    pub registered_at: String,
    /// `floodgate` for Floodgate's drivers; absent for other implementations'.
    pub agent: Option<String>,
    /// The heartbeat interval liveness is judged against, and the silence after which the
    /// driver is lost.
    pub heartbeat_interval_ms: u64,
    pub timeout_ms: u64,
    /// The capacity it declared, absent if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<f64>,
    /// Its clock minus ours, as estimated from its echoes, and the estimate's bound; absent
    /// before any (and always for another implementation's driver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<Offset>,
}

/// Liveness of one driver as the test state machine needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    pub alive: bool,
    /// The test the driver's last heartbeat said it was running.
    pub test_id: Option<String>,
    /// Whether it is a Floodgate driver (it sends test IDs in heartbeats and final reports).
    pub floodgate: bool,
    /// How long since it was last heard from.
    pub silent_for: Duration,
    /// How long its heartbeats have named `test_id` (counted, like silence, only while this
    /// orchestrator could hear them).
    pub test_for: Duration,
}

#[derive(Debug)]
pub struct Registry {
    drivers: BTreeMap<String, Entry>,
    /// A driver is never lost sooner than this (3 s by default: three of Floodgate's beats).
    timeout: Duration,
    /// When this registry (this orchestrator) started: a driver it has not heard from yet is
    /// given one timeout from then, as if it had been seen at that instant, so a restarted
    /// orchestrator does not declare a running test's drivers lost before their next heartbeat.
    since: Instant,
    /// Whether this orchestrator itself hears the bus; `None` when not watched (unit tests of
    /// other logic).
    bus: Option<BusWatch>,
}

impl Registry {
    pub fn new(timeout: Duration) -> Self {
        Self::started_at(timeout, Instant::now())
    }

    pub fn started_at(timeout: Duration, since: Instant) -> Self {
        Self {
            drivers: BTreeMap::new(),
            timeout,
            since,
            bus: None,
        }
    }

    /// Starts judging liveness against the orchestrator's own heartbeats ([`Registry::echo`]).
    pub fn watch_bus(&mut self, now: Instant) {
        self.bus = Some(BusWatch::new(now));
    }

    /// One of the orchestrator's own heartbeats came back through the bus.
    pub fn echo(&mut self, now: Instant) {
        let timeout = self.timeout;
        if let Some(w) = self.bus.as_mut() {
            w.echo(now, timeout);
        }
    }

    /// Whether this orchestrator has not heard its own heartbeats for a timeout: while so,
    /// nobody is judged lost or forgotten.
    pub fn bus_down(&self, now: Instant) -> bool {
        self.bus.is_some_and(|w| w.down(now, self.timeout))
    }

    /// Whether silence cannot be judged now: the bus is down, or has just come back.
    fn unheard_bus(&self, now: Instant) -> bool {
        self.bus
            .is_some_and(|w| w.down(now, self.timeout) || w.just_returned(now))
    }

    /// How long ago `since` is, counted only while the bus was heard: from this
    /// orchestrator's start and the bus's last return, up to its last echo.
    fn heard_silence(&self, since: Instant, now: Instant) -> Duration {
        let from = self
            .bus
            .map_or(self.since, |w| w.up_since().max(self.since));
        let until = self.bus.map_or(now, |w| w.heard_until(now));
        until.saturating_duration_since(since.max(from))
    }

    /// A registration: the driver is known, and alive now. `false` when the registry is full
    /// of drivers that are alive (see [`limits::MAX_KNOWN_DRIVERS`]): the registration is refused.
    pub fn register(&mut self, id: &str, beat: &Beat<'_>, now: Instant) -> bool {
        if !self.make_room(id, now) {
            return false;
        }
        let e = self
            .drivers
            .entry(id.to_string())
            .or_insert_with(|| Entry::new(now));
        e.update(beat);
        e.heard = true;
        e.last_seen = e.last_seen.max(now);
        true
    }

    /// A registration sent before this orchestrator started, read back from the `register`
    /// topic: the driver is known, but not heard from, so neither alive nor listed until its
    /// next heartbeat or report. A driver already known is left as it is.
    pub fn replayed(&mut self, id: &str, beat: &Beat<'_>, now: Instant) -> bool {
        if self.drivers.contains_key(id) {
            return true;
        }
        if !self.make_room(id, now) {
            return false;
        }
        let mut e = Entry::new(now);
        e.update(beat);
        self.drivers.insert(id.to_string(), e);
        true
    }

    /// Frees a place for `id` if it is new and the registry is full, by forgetting the driver
    /// silent longest among those not alive; false if every known driver is alive.
    fn make_room(&mut self, id: &str, now: Instant) -> bool {
        if self.drivers.len() < limits::MAX_KNOWN_DRIVERS || self.drivers.contains_key(id) {
            return true;
        }
        let oldest = self
            .drivers
            .iter()
            .filter(|(_, e)| !self.is_alive(e, now))
            .min_by_key(|(_, e)| e.last_seen)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                self.drivers.remove(&k);
                true
            }
            None => false,
        }
    }

    /// A heartbeat. Only a registration makes a driver: a heartbeat from a node that has none
    /// (here) changes nothing and returns false, and the caller asks it to register again.
    pub fn heartbeat(&mut self, id: &str, beat: Beat<'_>, now: Instant) -> bool {
        let Some(e) = self.drivers.get_mut(id) else {
            return false;
        };
        e.update(&beat);
        e.heard = true;
        e.last_seen = e.last_seen.max(now);
        e.heartbeats += 1;
        if e.test_id != beat.test_id || e.heartbeats == 1 {
            e.test_since = now;
        }
        e.test_id = beat.test_id;
        if let Some(prev) = e.last_beat.filter(|p| *p <= now) {
            if e.gaps.len() >= GAPS_KEPT {
                e.gaps.pop_front();
            }
            e.gaps.push_back(now - prev);
        }
        e.last_beat = Some(now);
        true
    }

    /// One clock exchange with a known driver (its beat echoing one of ours).
    pub fn clock_exchange(&mut self, id: &str, exchange: Exchange) {
        if let Some(e) = self.drivers.get_mut(id) {
            e.clock.add(exchange);
        }
    }

    /// A driver's clock offset as estimated so far.
    pub fn clock(&self, id: &str) -> Option<Offset> {
        self.drivers.get(id).and_then(|e| e.clock.estimate())
    }

    /// A sign of life other than a heartbeat (a metrics report) from a driver already known:
    /// one peer sends no heartbeat until long after its test has started, but reports all along.
    pub fn heard_from(&mut self, id: &str, now: Instant) {
        if let Some(e) = self.drivers.get_mut(id) {
            e.heard = true;
            e.last_seen = e.last_seen.max(now);
        }
    }

    pub fn liveness(&self, id: &str, now: Instant) -> Liveness {
        match self.drivers.get(id).filter(|e| e.heard) {
            Some(e) => Liveness {
                alive: self.is_alive(e, now),
                test_id: e.test_id.clone(),
                floodgate: e.floodgate(),
                silent_for: now.saturating_duration_since(e.last_seen),
                test_for: self.heard_silence(e.test_since, now),
            },
            None => Liveness {
                alive: self.unheard_bus(now) || self.heard_silence(self.since, now) <= self.timeout,
                test_id: None,
                floodgate: false,
                silent_for: now.saturating_duration_since(self.since),
                test_for: Duration::ZERO,
            },
        }
    }

    /// How long `e` may stay silent before it is lost.
    fn timeout_of(&self, e: &Entry) -> Duration {
        self.timeout.max(e.interval() * MISSED_BEATS)
    }

    fn is_alive(&self, e: &Entry, now: Instant) -> bool {
        e.heard
            && (self.unheard_bus(now) || self.heard_silence(e.last_seen, now) <= self.timeout_of(e))
    }

    /// Alive drivers, in the order they were first seen (ties by ID), for picking participants.
    pub fn alive(&self, now: Instant) -> Vec<String> {
        let mut v: Vec<(&String, &Entry)> = self
            .drivers
            .iter()
            .filter(|(_, e)| self.is_alive(e, now))
            .collect();
        v.sort_by(|a, b| a.1.first_seen.cmp(&b.1.first_seen).then(a.0.cmp(b.0)));
        v.into_iter().map(|(id, _)| id.clone()).collect()
    }

    pub fn view(&self, now: Instant) -> Vec<DriverView> {
        self.drivers
            .iter()
            .filter(|(_, e)| e.heard)
            .map(|(id, e)| DriverView {
                id: id.clone(),
                address: e.address.clone(),
                alive: self.is_alive(e, now),
                heartbeat_age_ms: now.saturating_duration_since(e.last_seen).as_millis() as u64,
                test_id: e.test_id.clone(),
                heartbeats: e.heartbeats,
                registered_at: humantime::format_rfc3339_millis(e.registered_at).to_string(),
                agent: e.agent.clone(),
                heartbeat_interval_ms: e.interval().as_millis() as u64,
                timeout_ms: self.timeout_of(e).as_millis() as u64,
                capacity: e.capacity,
                clock: e.clock.estimate(),
            })
            .collect()
    }

    /// How a test given in totals sees each of these drivers (in their order).
    pub fn members(&self, ids: &[String]) -> Vec<super::split::Member> {
        ids.iter()
            .map(|id| {
                let e = self.drivers.get(id);
                super::split::Member {
                    id: id.clone(),
                    floodgate: e.is_some_and(Entry::floodgate),
                    capacity: e.and_then(|e| e.capacity),
                }
            })
            .collect()
    }

    /// Forgets drivers lost long ago, and registrations read back that no heartbeat followed.
    pub fn prune(&mut self, now: Instant) {
        if self.bus_down(now) {
            return;
        }
        self.drivers
            .retain(|_, e| now.saturating_duration_since(e.last_seen) <= FORGET_AFTER);
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
