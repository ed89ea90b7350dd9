//! Progress of a running test on stderr: a bar per driver and one for the total on a terminal,
//! one plain line a second otherwise.

use super::table::{ms, short};
use super::POLL;
use crate::api::dto::{Stats, Test};
use crate::model::DriverState;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Room kept for a bar's message: rate, p99, errors and state.
const MSG_WIDTH: usize = 52;
/// How often `test run` prints a progress line when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Progress of a running test on stderr: on a terminal, one bar per driver and one for the
/// total, each with requests sent, req/s and p99; otherwise one plain line a second.
pub(super) enum Progress {
    Bars {
        _multi: MultiProgress,
        total: ProgressBar,
        drivers: Vec<(String, ProgressBar)>,
    },
    Lines {
        last: Option<Instant>,
    },
}

impl Progress {
    pub(super) fn new(drivers: &[String], requests_per_driver: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines { last: None };
        }
        let width = drivers
            .iter()
            .map(|d| d.chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        let total = requests_per_driver * drivers.len() as u64;
        let digits = total.max(1).ilog10() as usize + 1;
        let target = ProgressDrawTarget::stderr();
        // The bar takes what the terminal's width leaves, short of the last column (a line that
        // fills it leaves the cursor waiting to wrap, which not every terminal does the same).
        let term = usize::from(console::Term::stderr().size().1);
        let bar_len = term
            .saturating_sub(width + 2 * digits + MSG_WIDTH + 5)
            .clamp(10, 40);
        let style = ProgressStyle::with_template(&format!(
            "{{prefix:<{width}.bold}} {{bar:{bar_len}.cyan/blue}} {{pos:>{digits}}}/{{len:<{digits}}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▉▊▋▌▍▎▏ ");
        let multi = MultiProgress::with_draw_target(target);
        let bar = |name: &str, len: u64| {
            let b = multi.add(ProgressBar::new(len));
            b.set_style(style.clone());
            b.set_prefix(name.to_string());
            b.set_message("waiting for the start");
            b
        };
        let total = bar("total", total);
        let drivers = drivers
            .iter()
            .map(|d| (d.clone(), bar(d, requests_per_driver)))
            .collect();
        Progress::Bars {
            _multi: multi,
            total,
            drivers,
        }
    }

    pub(super) fn update(&mut self, v: &Test) {
        match self {
            Progress::Bars { total, drivers, .. } => {
                set_bar(total, &v.aggregate, None);
                for d in &v.per_driver {
                    if let Some((_, b)) = drivers.iter().find(|(id, _)| *id == d.driver_id) {
                        set_bar(b, &d.stats, Some(d.state));
                    }
                }
            }
            Progress::Lines { last } => {
                let due = last.is_none_or(|t| t.elapsed() + POLL / 10 >= LINE_EVERY);
                if due && !v.status.is_finished() {
                    eprintln!("{}", progress_line(v));
                    *last = Some(Instant::now());
                }
            }
        }
    }

    /// Leaves the bars on screen at their final state.
    pub(super) fn finish(&mut self) {
        if let Progress::Bars { total, drivers, .. } = self {
            for (_, b) in drivers.iter() {
                b.finish();
            }
            total.finish();
        }
    }
}

fn set_bar(b: &ProgressBar, s: &Stats, state: Option<DriverState>) {
    if s.requests_total > 0 {
        b.set_length(s.requests_total);
    }
    b.set_position(s.sent);
    let mut msg = format!(
        "{:>7.0} req/s  p99 {:>7} ms",
        s.achieved_rps,
        ms(s.latency.p99_ms, 2)
    );
    if s.error_total > 0 {
        msg.push_str(&format!("  errors {}", s.error_total));
    }
    match state {
        Some(DriverState::Done) => msg.push_str("  done"),
        Some(DriverState::Lost) => msg.push_str("  LOST"),
        Some(DriverState::Refused) => msg.push_str("  REFUSED"),
        Some(DriverState::Waiting) if s.sent == 0 => msg.push_str("  waiting"),
        _ => {}
    }
    b.set_message(msg);
}

fn progress_line(v: &Test) -> String {
    let a = &v.aggregate;
    let mut line = format!(
        "[{:>3.0}%] sent {}/{}  ok {}  errors {}  {:.0} req/s  p99 {} ms |",
        a.progress * 100.0,
        a.sent,
        a.requests_total,
        a.ok,
        a.error_total,
        a.achieved_rps,
        ms(a.latency.p99_ms, 2)
    );
    for d in &v.per_driver {
        line.push_str(&format!(" {} {}", short(&d.driver_id), d.stats.sent));
    }
    line
}
