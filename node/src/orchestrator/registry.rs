//! The driver registry: who registered, when each was last heard from, and so who is alive.
//! Pure (time is passed in), so liveness is computed when asked and tested without clocks.
//!
//! Liveness is judged per node against the interval that node beats at: the one it declares
//! (Floodgate's drivers send `heartbeat_ms`), else the median of the gaps seen between its
//! heartbeats, else an assumed [`ASSUMED_INTERVAL`] until a second beat is seen. A node is lost
//! after [`MISSED_BEATS`] of its intervals without a heartbeat, never sooner than the configured
//! timeout; so a peer that beats every 5 s is not called lost while it runs.

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

/// Lost drivers are forgotten after this long, so the list stays bounded.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// After the bus returns from an outage, nobody is judged lost for this long: each node
/// reconnects on its own (its client backs off between attempts), and the last to do so must
/// not be taken for dead.
pub const RETURN_GRACE: Duration = Duration::from_secs(10);
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
    last_beat: Option<Instant>,
    gaps: VecDeque<Duration>,
}

impl Entry {
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
    /// Whether this orchestrator itself hears the bus (see [`BusWatch`]); `None` when not
    /// watched (unit tests of other logic).
    bus: Option<BusWatch>,
}

/// The orchestrator's own heartbeats, coming back to it through Kafka, tell "the bus is down"
/// from "a driver died": while its own beats do not come back, it cannot hear anyone's, so
/// nobody is judged lost; once they do, silence is counted again from that instant, which
/// gives every driver one timeout to be heard again.
#[derive(Debug, Clone, Copy)]
struct BusWatch {
    last_echo: Option<Instant>,
    /// The instant the bus was last heard again after an outage (or the watch began).
    up_since: Instant,
    /// The instant it was last heard again after an outage (not set by the watch's start).
    returned_at: Option<Instant>,
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
        self.bus = Some(BusWatch {
            last_echo: None,
            up_since: now,
            returned_at: None,
        });
    }

    /// One of the orchestrator's own heartbeats came back through the bus.
    pub fn echo(&mut self, now: Instant) {
        let down = self.bus_down(now);
        if let Some(w) = self.bus.as_mut() {
            if down {
                w.up_since = now;
                w.returned_at = Some(now);
            }
            w.last_echo = Some(w.last_echo.map_or(now, |e| e.max(now)));
        }
    }

    /// Whether this orchestrator has not heard its own heartbeats for a timeout: the bus (or
    /// its own connection to it) is down.
    pub fn bus_down(&self, now: Instant) -> bool {
        self.bus.is_some_and(|w| {
            let heard = w.last_echo.unwrap_or(w.up_since);
            now.saturating_duration_since(heard) > self.timeout
        })
    }

    /// Whether the bus returned from an outage within [`RETURN_GRACE`].
    fn just_returned(&self, now: Instant) -> bool {
        self.bus
            .and_then(|w| w.returned_at)
            .is_some_and(|t| now.saturating_duration_since(t) <= RETURN_GRACE)
    }

    /// Silence is counted from this instant at the earliest: this orchestrator's start, or
    /// the end of the last bus outage.
    fn counted_from(&self) -> Instant {
        self.bus.map_or(self.since, |w| w.up_since.max(self.since))
    }

    /// How long `since` ago is, counted only while the bus could be heard.
    fn heard_silence(&self, since: Instant, now: Instant) -> Duration {
        now.saturating_duration_since(since.max(self.counted_from()))
    }

    /// A registration, or a heartbeat from a driver not yet known (one that was running before
    /// this orchestrator started): either way the driver is alive now.
    pub fn seen(&mut self, id: &str, beat: &Beat<'_>, now: Instant) {
        let e = self.drivers.entry(id.to_string()).or_insert_with(|| Entry {
            address: String::new(),
            registered_at: SystemTime::now(),
            first_seen: now,
            last_seen: now,
            test_id: None,
            test_since: now,
            heartbeats: 0,
            agent: None,
            declared: None,
            last_beat: None,
            gaps: VecDeque::new(),
        });
        if let Some(a) = beat.address.filter(|a| !a.is_empty()) {
            e.address = a.to_string();
        }
        if let Some(a) = beat.agent {
            e.agent = Some(a.to_string());
        }
        if beat.interval.is_some() {
            e.declared = beat.interval;
        }
        e.last_seen = e.last_seen.max(now);
    }

    pub fn heartbeat(&mut self, id: &str, beat: Beat<'_>, now: Instant) {
        self.seen(id, &beat, now);
        if let Some(e) = self.drivers.get_mut(id) {
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
        }
    }

    /// A sign of life other than a heartbeat (a metrics report) from a driver already known:
    /// one peer sends no heartbeat until long after its test has started, but reports all along.
    pub fn heard_from(&mut self, id: &str, now: Instant) {
        if let Some(e) = self.drivers.get_mut(id) {
            e.last_seen = e.last_seen.max(now);
        }
    }

    pub fn liveness(&self, id: &str, now: Instant) -> Liveness {
        match self.drivers.get(id) {
            Some(e) => Liveness {
                alive: self.is_alive(e, now),
                test_id: e.test_id.clone(),
                floodgate: e.floodgate(),
                silent_for: now.saturating_duration_since(e.last_seen),
                test_for: self.heard_silence(e.test_since, now),
            },
            None => Liveness {
                alive: self.bus_down(now)
                    || self.just_returned(now)
                    || self.heard_silence(self.since, now) <= self.timeout,
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
        self.bus_down(now)
            || self.just_returned(now)
            || self.heard_silence(e.last_seen, now) <= self.timeout_of(e)
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

    /// Forgets drivers lost long ago.
    pub fn prune(&mut self, now: Instant) {
        if self.bus_down(now) {
            return;
        }
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
        r.seen(
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
                test_for: S,
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
        r.seen("quiet", &Beat::default(), t0);
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
    fn heartbeats_alone_make_a_driver_known() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.heartbeat(
            "b",
            Beat {
                address: Some("h:2"),
                ..Default::default()
            },
            t0,
        );
        let v = r.view(t0 + S);
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
    fn alive_lists_in_first_seen_order_and_prune_forgets_old() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.seen("z", &ours(), t0);
        r.seen("a", &ours(), t0 + S);
        r.seen("m", &ours(), t0 + S);
        assert_eq!(r.alive(t0 + S), ["z", "a", "m"]);
        assert_eq!(r.alive(t0 + 3 * S + MS), ["a", "m"]);
        r.prune(t0 + 700 * S);
        assert!(r.view(t0).is_empty());
    }

    #[test]
    fn an_out_of_order_timestamp_never_moves_last_seen_back() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.seen("a", &ours(), t0 + 5 * S);
        r.seen("a", &ours(), t0);
        assert!(r.liveness("a", t0 + 8 * S).alive);
    }

    #[test]
    fn while_the_bus_is_down_nobody_is_lost_and_silence_counts_again_from_its_return() {
        let t0 = Instant::now();
        let mut r = Registry::started_at(3 * S, t0);
        r.watch_bus(t0);
        for t in 0..=10 {
            r.echo(t0 + S * t);
        }
        r.heartbeat("d", ours(), t0 + 10 * S);
        // (seconds after t0, bus down?, d alive?)
        let before_return: [(u32, bool, bool); 3] = [
            (13, false, true),
            // The orchestrator's own beats stop coming back at 10 s: from 13 s the bus is down,
            // and a driver silent since 10 s is not judged.
            (14, true, true),
            (60, true, true),
        ];
        for (t, down, alive) in before_return {
            assert_eq!(r.bus_down(t0 + S * t), down, "bus at {t} s");
            assert_eq!(r.liveness("d", t0 + S * t).alive, alive, "d at {t} s");
        }
        r.prune(t0 + 700 * S);
        assert_eq!(r.view(t0).len(), 1, "an outage forgets nobody");
        // The bus is back at 61 s: d has the return grace from then to be heard again.
        for t in 61..=72 {
            r.echo(t0 + S * t);
        }
        assert!(!r.bus_down(t0 + 72 * S));
        assert!(r.liveness("d", t0 + 71 * S).alive);
        assert!(
            !r.liveness("d", t0 + 71 * S + MS).alive,
            "silent after the bus returned"
        );
    }

    #[test]
    fn with_the_bus_up_from_the_start_a_silent_driver_is_lost_after_one_timeout() {
        let t0 = Instant::now();
        let mut r = Registry::started_at(3 * S, t0);
        r.watch_bus(t0);
        for t in 0..=5 {
            r.echo(t0 + S * t);
        }
        r.heartbeat("d", ours(), t0 + S);
        assert!(r.liveness("d", t0 + 4 * S).alive);
        assert!(
            !r.liveness("d", t0 + 4 * S + MS).alive,
            "no outage, no grace"
        );
    }

    #[test]
    fn without_a_watch_the_bus_is_never_down() {
        let t0 = Instant::now();
        let mut r = Registry::started_at(3 * S, t0);
        r.heartbeat("d", ours(), t0);
        assert!(!r.bus_down(t0 + 100 * S));
        assert!(!r.liveness("d", t0 + 100 * S).alive);
    }

    #[test]
    fn how_long_a_driver_has_said_it_runs_no_test() {
        let t0 = Instant::now();
        let mut r = Registry::started_at(3 * S, t0);
        let beat = |test: Option<&str>| Beat {
            test_id: test.map(str::to_string),
            ..ours()
        };
        r.heartbeat("d", beat(Some("t")), t0);
        r.heartbeat("d", beat(Some("t")), t0 + S);
        assert_eq!(r.liveness("d", t0 + 2 * S).test_for, 2 * S);
        // Restarted: its beats name no test from 3 s on.
        r.heartbeat("d", beat(None), t0 + 3 * S);
        r.heartbeat("d", beat(None), t0 + 4 * S);
        let l = r.liveness("d", t0 + 5 * S);
        assert_eq!((l.test_id, l.test_for), (None, 2 * S));
    }
}
