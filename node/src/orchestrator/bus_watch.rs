//! Whether this orchestrator hears the bus at all: its own heartbeats come back to it through
//! Kafka, and while they do not, it is the bus (or this node's connection to it) that is down,
//! not the drivers. Pure (time is passed in); the registry asks it before judging anyone lost.

use std::time::{Duration, Instant};

/// After the bus returns from an outage, nobody is judged lost for this long: each node
/// reconnects on its own (its client backs off between attempts), and the last to do so must
/// not be taken for dead.
pub const RETURN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct BusWatch {
    last_echo: Option<Instant>,
    /// The instant the bus was last heard again after an outage (or the watch began).
    up_since: Instant,
    /// The instant it was last heard again after an outage (not set by the watch's start).
    returned_at: Option<Instant>,
}

impl BusWatch {
    pub fn new(now: Instant) -> Self {
        Self {
            last_echo: None,
            up_since: now,
            returned_at: None,
        }
    }

    /// One of this orchestrator's own heartbeats came back.
    pub fn echo(&mut self, now: Instant, timeout: Duration) {
        if self.down(now, timeout) {
            self.up_since = now;
            self.returned_at = Some(now);
        }
        self.last_echo = Some(self.last_echo.map_or(now, |e| e.max(now)));
    }

    /// Whether no echo has come for longer than `timeout`.
    pub fn down(&self, now: Instant, timeout: Duration) -> bool {
        let heard = self.last_echo.unwrap_or(self.up_since);
        now.saturating_duration_since(heard) > timeout
    }

    /// Whether the bus returned from an outage within [`RETURN_GRACE`].
    pub fn just_returned(&self, now: Instant) -> bool {
        self.returned_at
            .is_some_and(|t| now.saturating_duration_since(t) <= RETURN_GRACE)
    }

    /// Silence counts from this instant at the earliest: the end of the last outage.
    pub fn up_since(&self) -> Instant {
        self.up_since
    }

    /// Silence counts up to this instant at the latest: the last echo, the last moment the bus
    /// is known to have carried heartbeats. An outage is only known one timeout after it
    /// began, and a driver's beats lost in that window are not the driver's silence: counting
    /// to `now` raced the two timeouts, and a broker stop failed a healthy test (seen once in
    /// a fresh-clone `make test`). Before the first echo, `now`.
    pub fn heard_until(&self, now: Instant) -> Instant {
        self.last_echo.map_or(now, |e| e.min(now))
    }
}
