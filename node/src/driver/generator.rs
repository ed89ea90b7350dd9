//! The driver's own load during a run (issue 12, item 7): its process CPU time against the cores
//! it may use, and its schedule lag; and the pure rule [`assess`] that says when it could not
//! keep up, so that figures measuring the generator are never taken for the target's.

use crate::protocol::GeneratorLoad;
use std::time::{Duration, Instant};

/// A share of its cores at or above which a driver counts as CPU-bound. Not 1.0: a process
/// never shows quite all of its cores (the kernel's share of its sockets is partly elsewhere),
/// and at 90 % the runtime already queues tasks behind each other.
pub const CPU_BUSY: f64 = 0.90;
/// A p99 schedule lag below this is timer and scheduling noise, whatever the gap (a VM wakes
/// threads 40–60 µs late; a busy one a few hundred).
pub const LAG_FLOOR: Duration = Duration::from_millis(1);

/// What [`assess`] judges, all cumulative over the run so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figures {
    /// CPU time over wall time, as a share of the cores (0 to 1).
    pub cpu: f64,
    pub cores: u32,
    /// p99 schedule lag; `None` when unpaced (no schedule to be late for).
    pub lag_p99: Option<Duration>,
    /// The mean gap between due requests; `None` when unpaced.
    pub gap: Option<Duration>,
}

/// The saturation warning, if the driver could not keep up. The rule:
///
/// - **paced**: its p99 schedule lag is above one gap (and above [`LAG_FLOOR`]), *and* its CPU
///   is at [`CPU_BUSY`] or more. Late requests with idle CPU are the target's doing: every
///   connection was busy waiting for it, and the latency (counted from the due instants)
///   says so; that is a measurement of the target, not a warning;
/// - **unpaced**: its CPU is at [`CPU_BUSY`] or more: then the rate it achieved, and the
///   latency of requests queued in its own runtime, are its limits, not the target's.
pub fn assess(f: &Figures) -> Option<String> {
    let cpu = format!(
        "CPU at {:.0} % of its {} core{}",
        f.cpu * 100.0,
        f.cores,
        if f.cores == 1 { "" } else { "s" }
    );
    if f.cpu < CPU_BUSY {
        return None;
    }
    match (f.lag_p99, f.gap) {
        (Some(lag), Some(gap)) => {
            if lag <= gap.max(LAG_FLOOR) {
                return None;
            }
            Some(format!(
                "could not keep up: requests left up to {:.1} ms after their due instants (p99; the \
                 gap is {:.3} ms) with its {cpu}; these figures measure the load generator, not the \
                 target",
                lag.as_secs_f64() * 1e3,
                gap.as_secs_f64() * 1e3,
            ))
        }
        _ => Some(format!(
            "saturated: {cpu} in an unpaced test; the rate achieved and the latency measure the \
             load generator, not the target"
        )),
    }
}

/// Measures the process's CPU from the start of a run.
pub struct Meter {
    cpu_at_start: Option<Duration>,
    started: Instant,
    cores: u32,
}

impl Meter {
    pub fn start() -> Self {
        Self {
            cpu_at_start: process_cpu(),
            started: Instant::now(),
            cores: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
        }
    }

    /// The load so far; `lag_p99` and `gap` as for [`Figures`].
    pub fn load(&self, lag_p99: Option<Duration>, gap: Option<Duration>) -> GeneratorLoad {
        let wall = self.started.elapsed().as_secs_f64();
        let cpu = match (self.cpu_at_start, process_cpu()) {
            (Some(a), Some(b)) if wall > 0.0 => {
                (b.saturating_sub(a).as_secs_f64() / wall / f64::from(self.cores.max(1)))
                    .clamp(0.0, 1.0)
            }
            _ => 0.0,
        };
        let figures = Figures {
            cpu,
            cores: self.cores,
            lag_p99,
            gap,
        };
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        GeneratorLoad {
            cpu: (cpu * 1000.0).round() / 1000.0,
            cores: self.cores,
            lag_p99_us: lag_p99.map(micros),
            gap_us: gap.map(micros),
            warning: assess(&figures),
        }
    }
}

/// CPU time of every thread of this process (user and system); `None` where it cannot be read.
fn process_cpu() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Some(Duration::new(
            u64::try_from(t.tv_sec).ok()?,
            u32::try_from(t.tv_nsec).ok()?,
        ))
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_warning_needs_a_busy_cpu_and_a_schedule_it_missed() {
        let f = |cpu, lag: Option<Duration>, gap: Option<Duration>| Figures {
            cpu,
            cores: 2,
            lag_p99: lag,
            gap,
        };
        // (figures, warned)
        let cases = [
            // Keeping up: lag under a gap.
            (f(0.99, Some(MS / 2), Some(MS)), false),
            // Late by more than a gap, with a busy CPU: the generator.
            (f(0.95, Some(12 * MS), Some(MS)), true),
            // Late with idle CPU: the target kept every connection busy; not the generator.
            (f(0.30, Some(12 * MS), Some(MS)), false),
            // Late by more than a tiny gap but under the floor: noise.
            (f(0.99, Some(MS / 2), Some(MS / 100)), false),
            (f(0.99, Some(2 * MS), Some(MS / 100)), true),
            // Exactly at the thresholds: not yet.
            (f(CPU_BUSY - 1e-9, Some(50 * MS), Some(MS)), false),
            (f(CPU_BUSY, Some(MS), Some(MS)), false),
            // Unpaced: the CPU alone.
            (f(0.97, None, None), true),
            (f(0.50, None, None), false),
        ];
        for (i, (figures, warned)) in cases.iter().enumerate() {
            assert_eq!(assess(figures).is_some(), *warned, "case {i}: {figures:?}");
        }
        let w = assess(&f(0.95, Some(12 * MS), Some(MS))).unwrap_or_default();
        assert!(
            w.contains("12.0 ms") && w.contains("95 %") && w.contains("not the target"),
            "{w}"
        );
    }

    #[test]
    fn the_meter_reads_this_process_s_cpu() {
        let m = Meter::start();
        // Burn a little CPU so that the share is above zero on Linux.
        let until = Instant::now() + 20 * MS;
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        let load = m.load(None, None);
        assert!(
            load.cores >= 1 && (0.0..=1.0).contains(&load.cpu),
            "{load:?}"
        );
        #[cfg(target_os = "linux")]
        assert!(load.cpu > 0.0, "{load:?}");
    }
}
