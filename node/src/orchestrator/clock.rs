//! How far apart the drivers really started (issue 13): each driver's clock offset, bounded from
//! NTP-style exchanges carried by heartbeats, and the start skew of a test's first sends on the
//! orchestrator's clock. Pure: the instants come in, the figures go out.

use crate::protocol::Heartbeat;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Exchanges kept per driver: at one beat a second, the last few seconds. The estimate is the
/// one of least delay among them (NTP's clock filter): its bound is the tightest.
pub const WINDOW: usize = 8;

/// A round trip longer than this says nothing useful about a clock (a paused process, a broker
/// that was down): its bound would be wider than any skew worth showing.
pub const MAX_DELAY_US: u64 = 5_000_000;

/// The four instants of one exchange, in µs since the Unix epoch: the orchestrator's beat left
/// at `t1` and its echo came back at `t4` (the orchestrator's clock); the driver received that
/// beat at `t2` and sent its own at `t3` (the driver's clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub t1: u64,
    pub t2: u64,
    pub t3: u64,
    pub t4: u64,
}

/// The driver's clock minus the orchestrator's, with the bound that exchange puts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    pub offset_us: i64,
    /// Half the exchange's network delay: the true offset is within `offset_us ± bound_us`
    /// whatever the asymmetry of the two directions.
    pub bound_us: u64,
}

impl Exchange {
    /// The offset this exchange shows, or `None` when its instants cannot be one exchange (an
    /// echo received before it was sent, a driver that held it for negative time) or its delay
    /// is too long to say anything.
    pub fn offset(self) -> Option<Offset> {
        let round = self.t4.checked_sub(self.t1)?;
        let held = self.t3.checked_sub(self.t2)?;
        let delay = round.checked_sub(held)?;
        if delay > MAX_DELAY_US {
            return None;
        }
        let (t1, t2, t3, t4) = (
            i128::from(self.t1),
            i128::from(self.t2),
            i128::from(self.t3),
            i128::from(self.t4),
        );
        let offset = ((t2 - t1) + (t3 - t4)) / 2;
        Some(Offset {
            offset_us: i64::try_from(offset).ok()?,
            bound_us: delay.div_ceil(2),
        })
    }
}

impl Exchange {
    /// The exchange a driver's beat completes, received at `received_us`: only an echo of one
    /// of `me`'s own beats is one.
    pub fn of_beat(h: &Heartbeat, me: &str, received_us: u64) -> Option<Exchange> {
        let echo = h.clock.as_ref().filter(|c| c.orchestrator == me)?;
        Some(Exchange {
            t1: echo.orchestrator_sent_us,
            t2: echo.received_us,
            t3: h.sent_us?,
            t4: received_us,
        })
    }
}

impl Offset {
    /// The correction applied to the driver's instants: of the offsets this exchange allows,
    /// the one nearest zero. Nodes whose clocks agree within the bound (one machine, or NTP
    /// doing its job) are then left as they are, rather than moved by the asymmetry of Kafka's
    /// two directions; a real offset larger than the bound is corrected to within it.
    pub fn applied_us(self) -> i64 {
        let b = i64::try_from(self.bound_us).unwrap_or(i64::MAX);
        if self.offset_us > b {
            self.offset_us - b
        } else if self.offset_us < -b {
            self.offset_us + b
        } else {
            0
        }
    }
}

/// The last [`WINDOW`] offsets measured for one driver.
#[derive(Clone, Debug, Default)]
pub struct ClockFilter {
    recent: VecDeque<Offset>,
}

impl ClockFilter {
    pub fn add(&mut self, e: Exchange) {
        if let Some(o) = e.offset() {
            if self.recent.len() == WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back(o);
        }
    }

    /// The offset of least delay (the newest of equals), or `None` before any exchange.
    pub fn estimate(&self) -> Option<Offset> {
        self.recent.iter().rev().min_by_key(|o| o.bound_us).copied()
    }
}

/// When one driver's first request left, on the orchestrator's clock.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriverStart {
    /// Ms since the Unix epoch, the driver's clock corrected by `clock_applied_ms`.
    pub first_send_ms: f64,
    /// The driver's clock offset as estimated (driver minus orchestrator) and its bound; absent
    /// when none was measured (another implementation's driver, which echoes no beats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_bound_ms: Option<f64>,
    /// The correction applied (see [`Offset::applied_us`]).
    pub clock_applied_ms: f64,
}

/// How far apart a test's drivers sent their first requests.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartSkew {
    /// Latest first send minus earliest, on the orchestrator's clock; ms.
    pub skew_ms: f64,
    /// How far the clock corrections may be off: the bounds of the two drivers that set the
    /// skew, added. Absent when one of them has no measured offset (taken as zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_ms: Option<f64>,
    /// The earliest first send, ms since the Unix epoch.
    pub first_ms: f64,
    /// Drivers that reported a first send (those that sent nothing have no start).
    pub drivers: usize,
}

fn ms(us: i128) -> f64 {
    us as f64 / 1000.0
}

/// One driver's start: its reported first send, moved onto the orchestrator's clock.
pub fn driver_start(first_send_us: u64, clock: Option<Offset>) -> DriverStart {
    let applied = clock.map_or(0, Offset::applied_us);
    DriverStart {
        first_send_ms: ms(i128::from(first_send_us) - i128::from(applied)),
        clock_offset_ms: clock.map(|c| ms(i128::from(c.offset_us))),
        clock_bound_ms: clock.map(|c| ms(i128::from(c.bound_us))),
        clock_applied_ms: ms(i128::from(applied)),
    }
}

/// The skew over the drivers that have started, or `None` before any has.
pub fn start_skew<'a>(starts: impl IntoIterator<Item = &'a DriverStart>) -> Option<StartSkew> {
    let starts: Vec<&DriverStart> = starts.into_iter().collect();
    let by_time =
        |a: &&&DriverStart, b: &&&DriverStart| a.first_send_ms.total_cmp(&b.first_send_ms);
    let first = starts.iter().min_by(by_time)?;
    let last = starts.iter().max_by(by_time)?;
    Some(StartSkew {
        skew_ms: last.first_send_ms - first.first_send_ms,
        // One driver's first send against itself is exact, whatever its clock.
        bound_ms: if std::ptr::eq(*first, *last) {
            Some(0.0)
        } else {
            first
                .clock_bound_ms
                .zip(last.clock_bound_ms)
                .map(|(a, b)| a + b)
        },
        first_ms: first.first_send_ms,
        drivers: starts.len(),
    })
}

#[cfg(test)]
#[path = "clock_tests.rs"]
mod tests;
