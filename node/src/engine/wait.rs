//! Waiting for an instant to within microseconds, for the engine's clock (`clock`).
//!
//! Tokio's timer fires on millisecond ticks, so a request due at `t` would leave up to a
//! millisecond late, and the coordinated-omission correction would then charge that lateness to
//! the target. Instead:
//!
//! - **A long wait** sleeps on a `timerfd` (a kernel high-resolution timer with no tick and no
//!   timer slack, read through the runtime's reactor) until shortly before the instant. Sleeping
//!   costs no CPU.
//! - **How early** it wakes is learned: waking a thread takes the kernel (and, in a virtual
//!   machine, the hypervisor) a while, about 5 µs on bare metal and 40–60 µs in a VM. The waiter
//!   keeps the last [`Early::SAMPLES`] overshoots and wakes their median ahead of the instant
//!   (half the wake-ups then come a few microseconds late, which costs less than spinning), within [`Early::MIN`] and [`Early::MAX`]. The median, because a VM's
//!   wake-ups have a long tail (a few per cent take milliseconds) that no spin should pay for.
//! - **A long wait** (over 3 ms) is woken a sixty-fourth of itself early, at most 1 ms: a CPU
//!   idle that long wakes later still, and a spin that short costs under 2 % of the wait.
//! - **The last stretch** is a spin that yields to the runtime on every turn, so the workers'
//!   responses are still read while the clock waits. Its CPU cost is bounded by the rate: at most
//!   the learned earliness per wait (docs/benchmarks.md measures it at 100 to 50,000 req/s).
//! - **Without a `timerfd`** (not Linux, or the call fails) the wait falls back to Tokio's timer
//!   until [`COARSE_EARLY`] before the instant, then spins: as precise, but costlier.
//!
//! Which of these to do next is the pure [`step`], tested without clocks.

use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How early Tokio's millisecond timer must wake the clock when there is no `timerfd`.
pub const COARSE_EARLY: Duration = Duration::from_micros(1_200);

/// What to do next to reach `due` from `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// It has come.
    Done,
    /// Close enough: spin (yielding) until it comes.
    Spin,
    /// Sleep on a timer until this instant, then look again.
    Sleep(Instant),
}

/// A long sleep wakes later than a short one (the CPU, and in a VM the host, idle more deeply),
/// so a wait of `left` is woken at least `left / LONG_WAIT_SHARE` early, up to
/// [`LONG_EARLY_MAX`]: a spin of at most 1.6 % of the wait.
pub const LONG_WAIT_SHARE: u32 = 64;
pub const LONG_EARLY_MAX: Duration = Duration::from_millis(1);

/// The next step of a wait for `due`, when a timer wakes about `early` late.
pub fn step(now: Instant, due: Instant, early: Duration) -> Step {
    let Some(left) = due.checked_duration_since(now).filter(|l| !l.is_zero()) else {
        return Step::Done;
    };
    let early = early.max((left / LONG_WAIT_SHARE).min(LONG_EARLY_MAX));
    if left <= early {
        Step::Spin
    } else {
        Step::Sleep(due - early)
    }
}

/// How early a timer must be set to wake in time, learned from how late it woke before.
#[derive(Clone, Debug)]
pub struct Early {
    /// The last overshoots, in µs (a ring).
    samples: [u32; Self::SAMPLES],
    /// Samples recorded so far (the ring's write position is this modulo its size).
    seen: usize,
    current: Duration,
}

impl Early {
    pub const SAMPLES: usize = 64;
    /// Never less: the reactor's own turn takes a few microseconds.
    pub const MIN: Duration = Duration::from_micros(5);
    /// Never more: a wake-up this late is a busy machine, not the timer, and spinning for it
    /// would cost more than it saves.
    pub const MAX: Duration = Duration::from_micros(150);
    /// The first guess, until samples come in: a VM's typical wake-up.
    pub const INITIAL: Duration = Duration::from_micros(50);

    pub fn new() -> Self {
        Self {
            samples: [0; Self::SAMPLES],
            seen: 0,
            current: Self::INITIAL,
        }
    }

    /// How early to set the next timer.
    pub fn get(&self) -> Duration {
        self.current
    }

    /// Records that a timer set for some instant fired `overshoot` after it.
    pub fn observe(&mut self, overshoot: Duration) {
        let us = u32::try_from(overshoot.as_micros()).unwrap_or(u32::MAX);
        self.samples[self.seen % Self::SAMPLES] = us;
        self.seen += 1;
        // Re-estimated after 8, 16 and 32 samples, then once per ring, so that a slow test
        // learns soon and sorting costs well under a microsecond per wait.
        let n = self.seen.min(Self::SAMPLES);
        if self.seen.is_multiple_of(Self::SAMPLES) || (n >= 8 && n.is_power_of_two()) {
            let mut sorted = self.samples;
            let sorted = &mut sorted[..n];
            sorted.sort_unstable();
            let median = Duration::from_micros(u64::from(sorted[n / 2]));
            self.current = median.clamp(Self::MIN, Self::MAX);
        }
    }
}

impl Default for Early {
    fn default() -> Self {
        Self::new()
    }
}

/// A means of waiting precisely: a high-resolution timer if one could be made, the runtime's
/// timer otherwise.
pub struct Waiter {
    #[cfg(target_os = "linux")]
    fine: Option<fine::Timer>,
    coarse: Pin<Box<Sleep>>,
    early: Early,
}

impl Waiter {
    pub fn new() -> Self {
        Self {
            #[cfg(target_os = "linux")]
            fine: fine::Timer::new()
                .map_err(|e| tracing::debug!("no timerfd, pacing on the runtime's timer: {e}"))
                .ok(),
            coarse: Box::pin(tokio::time::sleep(Duration::ZERO)),
            early: Early::new(),
        }
    }

    fn has_fine_timer(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.fine.is_some();
        #[cfg(not(target_os = "linux"))]
        return false;
    }

    /// How early the timer is set ahead of an instant, now.
    pub fn early(&self) -> Duration {
        if self.has_fine_timer() {
            self.early.get()
        } else {
            COARSE_EARLY
        }
    }

    /// Returns once `due` has come (at once if it has passed).
    pub async fn until(&mut self, due: Instant) {
        loop {
            match step(Instant::now(), due, self.early()) {
                Step::Done => return,
                Step::Spin => tokio::task::yield_now().await,
                Step::Sleep(at) => {
                    #[cfg(target_os = "linux")]
                    if let Some(t) = self.fine.as_mut() {
                        if t.sleep_until(at).await.is_ok() {
                            self.early
                                .observe(Instant::now().saturating_duration_since(at));
                            continue;
                        }
                        // A timer that fails once is not trusted again.
                        self.fine = None;
                    }
                    self.coarse.as_mut().reset(at);
                    self.coarse.as_mut().await;
                }
            }
        }
    }
}

impl Default for Waiter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_os = "linux")]
mod fine {
    //! A `timerfd` (CLOCK_MONOTONIC, non-blocking) registered with the runtime's reactor.

    use rustix::fd::OwnedFd;
    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags, Timespec,
    };
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;
    use tokio::time::Instant;

    pub struct Timer {
        fd: AsyncFd<OwnedFd>,
    }

    impl Timer {
        pub fn new() -> std::io::Result<Self> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            // Deprecated in favour of an `unsafe` registration, because a registered fd must not
            // be closed or replaced behind the reactor's back: this one is an `OwnedFd` that only
            // the `AsyncFd` holds, so nothing else can close it, and this crate forbids `unsafe`.
            #[allow(deprecated)]
            let fd = AsyncFd::with_interest(fd, Interest::READABLE)?;
            Ok(Self { fd })
        }

        /// Sleeps until `at` (set relative to now, so the two clocks' bases never mix).
        pub async fn sleep_until(&mut self, at: Instant) -> std::io::Result<()> {
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let spec = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                    tv_nsec: left.subsec_nanos().into(),
                },
            };
            timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
            loop {
                let mut ready = self.fd.readable().await?;
                // Reading the expiry count resets the timer's readiness.
                let mut expirations = [0u8; 8];
                match rustix::io::read(ready.get_inner(), &mut expirations) {
                    Ok(_) => return Ok(()),
                    Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn the_strategy_by_time_left() {
        let t0 = Instant::now();
        let early = 40 * US;
        // (time left, step wanted)
        let cases = [
            (Duration::ZERO, Step::Done),
            (US, Step::Spin),
            (early, Step::Spin),
            (early + US, Step::Sleep(t0 + US)),
            // A long wait wakes 1/64 of itself early (the learned earliness is less)...
            (6_400 * US, Step::Sleep(t0 + 6_300 * US)),
            // ...but never more than a millisecond early.
            (
                Duration::from_secs(1),
                Step::Sleep(t0 + Duration::from_secs(1) - LONG_EARLY_MAX),
            ),
        ];
        for (left, want) in cases {
            assert_eq!(step(t0, t0 + left, early), want, "{left:?}");
        }
        assert_eq!(step(t0 + US, t0, early), Step::Done, "a passed instant");
        // Without a timerfd the runtime's millisecond timer must wake well before.
        assert_eq!(step(t0, t0 + 900 * US, COARSE_EARLY), Step::Spin);
    }

    #[test]
    fn earliness_follows_the_timers_median_within_bounds() {
        let mut e = Early::new();
        assert_eq!(e.get(), Early::INITIAL);
        // A slow test learns after its first 8 waits.
        for _ in 0..7 {
            e.observe(20 * US);
        }
        assert_eq!(e.get(), Early::INITIAL);
        e.observe(20 * US);
        assert_eq!(e.get(), 20 * US);
        // (overshoots fed for one whole ring, earliness wanted after it)
        let ring = |f: &dyn Fn(usize) -> u64| -> Vec<Duration> {
            (0..Early::SAMPLES).map(|i| US * f(i) as u32).collect()
        };
        let cases: [(Vec<Duration>, Duration); 4] = [
            // A VM: wake-ups about 40 µs late, and a tail of stragglers that does not count.
            (ring(&|i| if i % 5 == 0 { 4_000 } else { 40 }), 40 * US),
            (ring(&|i| 38 + (i as u64 % 5)), 40 * US),
            // Bare metal: a few microseconds; never below the floor.
            (ring(&|_| 2), Early::MIN),
            // A busy machine: capped.
            (ring(&|_| 5_000), Early::MAX),
        ];
        for (i, (samples, want)) in cases.into_iter().enumerate() {
            for s in samples {
                e.observe(s);
            }
            assert_eq!(e.get(), want, "case {i}");
        }
    }

    #[tokio::test]
    async fn a_wait_ends_on_time_not_on_a_millisecond_tick() {
        let mut w = Waiter::new();
        let mut late = Vec::new();
        for _ in 0..40 {
            let due = Instant::now() + Duration::from_micros(700);
            w.until(due).await;
            let now = Instant::now();
            assert!(now >= due, "never early");
            late.push(now - due);
        }
        late.sort();
        // Only the median is asserted (the machine running the tests may be busy): a tick-bound
        // timer would be some 300 µs late at the median here.
        assert!(late[20] < 150 * US, "median lateness {:?}", late[20]);
    }
}
