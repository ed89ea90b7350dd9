//! The driver registry: who registered, when each was last heard from, and so who is alive.
//! Pure (time is passed in), so liveness is computed when asked and tested without clocks.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// Lost drivers are forgotten after this long, so the list stays bounded.
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
struct Entry {
    address: String,
    registered_at: SystemTime,
    first_seen: Instant,
    last_seen: Instant,
    test_id: Option<String>,
    heartbeats: u64,
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
}

/// Liveness of one driver as the test state machine needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liveness {
    pub alive: bool,
    /// The test the driver's last heartbeat said it was running.
    pub test_id: Option<String>,
}

#[derive(Debug)]
pub struct Registry {
    drivers: BTreeMap<String, Entry>,
    /// A driver unheard of for longer than this is lost (3 heartbeat intervals by default).
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

    /// A registration, or a heartbeat from a driver not yet known (one that was running before
    /// this orchestrator started): either way the driver is alive now.
    pub fn seen(&mut self, id: &str, address: Option<&str>, now: Instant) {
        let e = self.drivers.entry(id.to_string()).or_insert_with(|| Entry {
            address: String::new(),
            registered_at: SystemTime::now(),
            first_seen: now,
            last_seen: now,
            test_id: None,
            heartbeats: 0,
        });
        if let Some(a) = address.filter(|a| !a.is_empty()) {
            e.address = a.to_string();
        }
        e.last_seen = e.last_seen.max(now);
    }

    pub fn heartbeat(
        &mut self,
        id: &str,
        address: Option<&str>,
        test_id: Option<String>,
        now: Instant,
    ) {
        self.seen(id, address, now);
        if let Some(e) = self.drivers.get_mut(id) {
            e.heartbeats += 1;
            e.test_id = test_id;
        }
    }

    pub fn liveness(&self, id: &str, now: Instant) -> Liveness {
        match self.drivers.get(id) {
            Some(e) => Liveness {
                alive: self.is_alive(e, now),
                test_id: e.test_id.clone(),
            },
            None => Liveness {
                alive: now.saturating_duration_since(self.since) <= self.timeout,
                test_id: None,
            },
        }
    }

    fn is_alive(&self, e: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(e.last_seen) <= self.timeout
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
            })
            .collect()
    }

    /// Forgets drivers lost long ago.
    pub fn prune(&mut self, now: Instant) {
        self.drivers
            .retain(|_, e| now.saturating_duration_since(e.last_seen) <= FORGET_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_driver_is_lost_after_the_timeout_and_back_on_a_heartbeat() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.seen("a", Some("h:1"), t0);
        assert!(r.liveness("a", t0 + 3 * S).alive);
        assert!(!r.liveness("a", t0 + 3 * S + Duration::from_millis(1)).alive);
        r.heartbeat("a", None, Some("t".into()), t0 + 10 * S);
        let l = r.liveness("a", t0 + 11 * S);
        assert_eq!(
            l,
            Liveness {
                alive: true,
                test_id: Some("t".into())
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
    fn a_driver_not_heard_from_yet_gets_one_timeout_after_start() {
        // A restarted orchestrator restores a running test before any heartbeat arrives: its
        // drivers must not be declared lost at once, only if they stay silent.
        let t0 = Instant::now();
        let r = Registry::started_at(3 * S, t0);
        assert!(r.liveness("d", t0).alive);
        assert!(r.liveness("d", t0 + 3 * S).alive);
        assert!(!r.liveness("d", t0 + 3 * S + Duration::from_millis(1)).alive);
        assert!(
            r.alive(t0).is_empty(),
            "but it is not offered for new tests"
        );
    }

    #[test]
    fn heartbeats_alone_make_a_driver_known() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.heartbeat("b", Some("h:2"), None, t0);
        let v = r.view(t0 + S);
        assert_eq!(
            (
                v[0].id.as_str(),
                v[0].alive,
                v[0].heartbeat_age_ms,
                v[0].heartbeats
            ),
            ("b", true, 1000, 1)
        );
    }

    #[test]
    fn alive_lists_in_first_seen_order_and_prune_forgets_old() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.seen("z", None, t0);
        r.seen("a", None, t0 + S);
        r.seen("m", None, t0 + S);
        assert_eq!(r.alive(t0 + S), ["z", "a", "m"]);
        assert_eq!(r.alive(t0 + 3 * S + Duration::from_millis(1)), ["a", "m"]);
        r.prune(t0 + 700 * S);
        assert!(r.view(t0).is_empty());
    }

    #[test]
    fn an_out_of_order_timestamp_never_moves_last_seen_back() {
        let t0 = Instant::now();
        let mut r = Registry::new(3 * S);
        r.seen("a", None, t0 + 5 * S);
        r.seen("a", None, t0);
        assert!(r.liveness("a", t0 + 8 * S).alive);
    }
}
