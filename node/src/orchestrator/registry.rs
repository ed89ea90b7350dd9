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
    heartbeats: u64,
    /// Floodgate's agent name, when the node sent it.
    agent: Option<String>,
    declared: Option<Duration>,
    last_beat: Option<Instant>,
    gaps: VecDeque<Duration>,
    /// Heard from since this orchestrator started (false for a registration read back from
    /// before it started, until the driver beats or reports).
    heard: bool,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            address: String::new(),
            registered_at: SystemTime::now(),
            first_seen: now,
            last_seen: now,
            test_id: None,
            heartbeats: 0,
            agent: None,
            declared: None,
            last_beat: None,
            gaps: VecDeque::new(),
            heard: false,
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
        }
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
            },
            None => Liveness {
                alive: now.saturating_duration_since(self.since) <= self.timeout,
                test_id: None,
                floodgate: false,
                silent_for: now.saturating_duration_since(self.since),
            },
        }
    }

    /// How long `e` may stay silent before it is lost.
    fn timeout_of(&self, e: &Entry) -> Duration {
        self.timeout.max(e.interval() * MISSED_BEATS)
    }

    fn is_alive(&self, e: &Entry, now: Instant) -> bool {
        e.heard && now.saturating_duration_since(e.last_seen) <= self.timeout_of(e)
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
            })
            .collect()
    }

    /// Forgets drivers lost long ago, and registrations read back that no heartbeat followed.
    pub fn prune(&mut self, now: Instant) {
        self.drivers
            .retain(|_, e| now.saturating_duration_since(e.last_seen) <= FORGET_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    fn ours() -> Beat<'static> {
        Beat {
            agent: Some("floodgate"),
            interval: Some(S),
            ..Default::default()
        }
    }

    #[test]
    fn a_driver_is_lost_after_the_timeout_and_back_on_a_heartbeat() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.register(
            "a",
            &Beat {
                address: Some("h:1"),
                ..ours()
            },
            t0,
        );
        assert!(r.liveness("a", t0 + 3 * S).alive);
        assert!(!r.liveness("a", t0 + 3 * S + MS).alive);
        r.heartbeat(
            "a",
            Beat {
                test_id: Some("t".into()),
                ..ours()
            },
            t0 + 10 * S,
        );
        let l = r.liveness("a", t0 + 11 * S);
        assert_eq!(
            l,
            Liveness {
                alive: true,
                test_id: Some("t".into()),
                floodgate: true,
                silent_for: S,
            }
        );
        assert_eq!(
            r.view(t0 + 11 * S)[0].address,
            "h:1",
            "a heartbeat without address keeps it"
        );
        assert!(!r.liveness("nobody", t0 + 10 * S).alive);
    }

    #[test]
    fn liveness_is_judged_against_each_nodes_own_interval() {
        // (beats at these seconds, declared interval, silent for, alive?)
        let cases: [(&[u64], Option<Duration>, Duration, bool); 8] = [
            // Floodgate's 1 s driver: lost after the 3 s minimum.
            (&[0, 1, 2], Some(S), 3 * S, true),
            (&[0, 1, 2], Some(S), 3 * S + MS, false),
            // A peer that beats every 5 s without saying so: lost after 15 s, not 3 s.
            (&[0, 5, 10, 15], None, 14 * S, true),
            (&[0, 5, 10, 15], None, 15 * S + MS, false),
            // One beat only: the assumed 5 s interval.
            (&[0], None, 15 * S, true),
            (&[0], None, 15 * S + MS, false),
            // A peer beating every 2 s: the 3 s minimum does not shrink, 6 s it is.
            (&[0, 2, 4, 6], None, 6 * S, true),
            // One long stall does not move the median of a 1 s beater.
            (&[0, 1, 2, 3, 9, 10, 11], None, 3 * S + MS, false),
        ];
        for (beats, declared, silent, alive) in cases {
            let t0 = Instant::now();
            let mut r = Registry::started_at(3 * S, t0);
            r.register(
                "n",
                &Beat {
                    interval: declared,
                    ..Default::default()
                },
                t0,
            );
            for &b in beats {
                r.heartbeat(
                    "n",
                    Beat {
                        interval: declared,
                        ..Default::default()
                    },
                    t0 + S * b as u32,
                );
            }
            let last = t0 + S * beats[beats.len() - 1] as u32;
            assert_eq!(
                r.liveness("n", last + silent).alive,
                alive,
                "beats {beats:?}, declared {declared:?}, silent {silent:?}"
            );
        }
    }

    #[test]
    fn a_driver_not_heard_from_yet_gets_one_timeout_after_start() {
        // A restarted orchestrator restores a running test before any heartbeat arrives: its
        // drivers must not be declared lost at once, only if they stay silent.
        let t0 = Instant::now();
        let r = Registry::started_at(3 * S, t0);
        assert!(r.liveness("d", t0).alive);
        assert!(r.liveness("d", t0 + 3 * S).alive);
        assert!(!r.liveness("d", t0 + 3 * S + MS).alive);
        assert!(
            r.alive(t0).is_empty(),
            "but it is not offered for new tests"
        );
    }

    #[test]
    fn a_report_keeps_a_known_driver_alive_but_makes_no_stranger_known() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.register("quiet", &Beat::default(), t0);
        r.heard_from("quiet", t0 + 14 * S);
        r.heard_from("stranger", t0 + 14 * S);
        assert!(
            r.liveness("quiet", t0 + 28 * S).alive,
            "15 s from its last report"
        );
        assert!(!r.liveness("quiet", t0 + 30 * S).alive);
        assert_eq!(r.view(t0).len(), 1);
    }

    #[test]
    fn only_a_registration_makes_a_driver() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        let peer = || Beat {
            address: Some("h:2"),
            ..Default::default()
        };
        assert!(!r.heartbeat("b", peer(), t0), "a stranger's heartbeat");
        assert!(r.view(t0).is_empty() && r.alive(t0).is_empty());
        assert!(r.register("b", &peer(), t0));
        assert!(r.heartbeat("b", peer(), t0 + S));
        let v = r.view(t0 + 2 * S);
        assert_eq!(
            (
                v[0].id.as_str(),
                v[0].alive,
                v[0].heartbeat_age_ms,
                v[0].heartbeats,
                v[0].agent.as_deref(),
                v[0].timeout_ms
            ),
            ("b", true, 1000, 1, None, 15_000)
        );
    }

    #[test]
    fn a_registration_read_back_is_known_but_not_alive_until_it_beats() {
        let t0 = Instant::now();
        let mut r = Registry::started_at(3 * S, t0);
        assert!(r.replayed("old", &ours(), t0));
        assert!(r.view(t0).is_empty(), "not listed");
        assert!(r.alive(t0).is_empty(), "not offered for a test");
        assert!(
            r.heartbeat("old", ours(), t0 + S),
            "but its heartbeat counts"
        );
        assert_eq!(r.alive(t0 + S), ["old"]);
        // Read back again (the same registration, from the live topic) it changes nothing.
        assert!(r.replayed("old", &ours(), t0 + 2 * S));
        assert_eq!(r.view(t0 + 2 * S)[0].heartbeats, 1);
        // Never heard from: forgotten like a lost driver.
        r.replayed("gone", &ours(), t0);
        r.prune(t0 + 700 * S);
        assert!(!r.heartbeat("gone", ours(), t0 + 700 * S));
    }

    #[test]
    fn the_registry_is_bounded_and_keeps_alive_drivers_over_lost_ones() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        let max = limits::MAX_KNOWN_DRIVERS;
        for i in 0..max {
            assert!(r.register(&format!("d{i}"), &ours(), t0));
        }
        // Full of alive drivers: a new registration is refused, the known stay.
        assert!(!r.register("late", &ours(), t0 + S));
        assert_eq!(r.view(t0 + S).len(), max);
        // d0 keeps beating; the others are lost after 3 s. A newcomer takes the place of the
        // one silent longest, never of an alive one.
        for b in 1..=10 {
            r.heartbeat("d0", ours(), t0 + b * S);
        }
        let taken = (0..1000)
            .filter(|i| r.register(&format!("fake{i}"), &ours(), t0 + 10 * S))
            .count();
        assert_eq!(taken, max - 1, "the places of the lost ones, and no more");
        let v = r.view(t0 + 10 * S);
        assert_eq!(v.len(), max);
        assert!(v.iter().any(|d| d.id == "d0" && d.alive));
    }

    #[test]
    fn alive_lists_in_first_seen_order_and_prune_forgets_old() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.register("z", &ours(), t0);
        r.register("a", &ours(), t0 + S);
        r.register("m", &ours(), t0 + S);
        assert_eq!(r.alive(t0 + S), ["z", "a", "m"]);
        assert_eq!(r.alive(t0 + 3 * S + MS), ["a", "m"]);
        r.prune(t0 + 700 * S);
        assert!(r.view(t0).is_empty());
    }

    #[test]
    fn an_out_of_order_timestamp_never_moves_last_seen_back() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.register("a", &ours(), t0 + 5 * S);
        r.register("a", &ours(), t0);
        assert!(r.liveness("a", t0 + 8 * S).alive);
    }
}
