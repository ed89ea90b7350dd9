//! The results table of `floodgate test run|show` and its notes: the aggregate row and one row
//! per driver, with `n/a` where a figure cannot be given exactly.

use crate::api::dto::{RequestStats, Stats, Test};
use crate::cli::Output;
use crate::model::Ended;
use crate::protocol::ChecksFailed;
use crate::thresholds::eval::{shown, State, Thresholds};
use std::io::Write;

pub fn print_result(v: &Test, output: Output) {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    }
    println!(
        "test {}  {}  {}  drivers {}{}",
        v.id,
        v.spec.test_type,
        v.status.as_str(),
        v.drivers.len(),
        v.reason
            .as_ref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default()
    );
    println!(
        "{:<14} {:>9} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "driver",
        "sent",
        "ok",
        "errors",
        "req/s",
        "min",
        "mean",
        "median",
        "mode",
        "p90",
        "p95",
        "p99",
        "max",
        "(ms)"
    );
    println!("{}", row("all", &v.aggregate));
    for d in &v.per_driver {
        println!("{}", row(short(&d.driver_id), &d.stats));
    }
    // A mix's requests by name, merged over the drivers, beside the totals.
    for (name, n) in &v.aggregate.by_request {
        println!("{}", named_row(name, n));
    }
    let c = &v.aggregate.checks_failed;
    if !c.is_empty() {
        println!("{}", checks_line("all", c));
        for (name, n) in &v.aggregate.by_request {
            if !n.checks_failed.is_empty() {
                println!("{}", checks_line(name, &n.checks_failed));
            }
        }
    }
    let a = &v.aggregate;
    if let Some(line) = crate::stats::timing_line(&a.latency, &a.service_time, &a.schedule_lag) {
        println!("{line}");
    }
    for line in handshake_rows(a) {
        println!("{line}");
    }
    if let Some(n) = &v.aggregate.lag_note {
        println!("note: {n}");
    }
    for st in &v.aggregate.stages {
        println!(
            "stage {}: {:.1} s, {:.0} → {:.0} req/s per driver: target {:.1} req/s ({} due), achieved {:.1} req/s ({} sent)",
            st.stage,
            st.duration_ms as f64 / 1000.0,
            st.from_rate,
            st.to_rate,
            st.target_rps,
            st.planned,
            st.achieved_rps,
            st.sent
        );
    }
    if let Some(split) = &v.split {
        println!("{}", split_line(split));
    }
    if let Some(line) = start_line(v) {
        println!("{line}");
    }
    for c in &v.rate_changes {
        println!("{}", rate_change_line(c));
    }
    for h in &v.hand_overs {
        println!("{}", hand_over_line(h));
    }
    for w in &v.generator_warnings {
        println!("warning: {w}");
    }
    // Say why a figure is missing, and what a driver of another implementation did.
    if let Some(n) = &v.aggregate.latency.not_mergeable {
        println!("n/a in the aggregate: {}", n.reason);
    }
    for d in &v.per_driver {
        let mut notes = Vec::new();
        if let Some(how) = d.ended_by.filter(|h| *h != Ended::Final) {
            notes.push(format!("ended by {}", how.as_str()));
        }
        if let Some(r) = &d.reason {
            notes.push(r.clone());
        }
        for (k, val) in &d.defaults {
            notes.push(format!("{k} not in the config: used {val}"));
        }
        if !d.stats.counted {
            notes.push("reported no counts".to_string());
        }
        if !notes.is_empty() {
            println!("{}: {}", d.driver_id, notes.join("; "));
        }
    }
    if let Some(t) = &v.thresholds {
        print_thresholds(t);
    }
    let _ = std::io::stdout().flush();
}

/// How far apart the drivers started, and each one's schedule lag p50/p99/max (issue 13).
fn start_line(v: &Test) -> Option<String> {
    let s = v.start_skew?;
    let bound = match s.bound_ms {
        Some(b) => format!("clock bound ±{b:.3} ms"),
        None => "a driver's clock offset unmeasured".to_string(),
    };
    let lags: Vec<String> = v
        .per_driver
        .iter()
        .filter_map(|d| {
            let l = &d.stats.schedule_lag;
            let (p50, p99, max) = (l.median_ms?, l.p99_ms?, l.max_ms?);
            (l.count > 0).then(|| format!("{} {p50:.3}/{p99:.3}/{max:.3}", short(&d.driver_id)))
        })
        .collect();
    let lag = if lags.is_empty() {
        String::new()
    } else {
        format!("; schedule lag p50/p99/max (ms): {}", lags.join(" · "))
    };
    Some(format!(
        "start skew {:.3} ms over {} drivers ({bound}){lag}",
        s.skew_ms, s.drivers
    ))
}

/// One live rate change: when, to what, and how far apart the drivers switched (issue 13).
pub(super) fn rate_change_line(c: &crate::api::dto::RateChangeView) -> String {
    let at = c.change.at_ms;
    let switched = match (c.applied.len(), c.switch_skew_ms) {
        (0, _) => "no driver has reported the switch yet".to_string(),
        (n, Some(skew)) => format!("{n} drivers switched within {skew:.3} ms"),
        (n, None) => format!("{n} driver switched"),
    };
    let late = (c.applied.iter().map(|s| s.late_ms)).fold(0.0, f64::max);
    let late = if late > 0.0 {
        format!(", the latest {late:.1} ms after the agreed instant")
    } else {
        String::new()
    };
    format!(
        "rate change {}: {:.1} req/s over all drivers from {} (Unix ms); {switched}{late}",
        c.change.seq, c.total_rate, at
    )
}

/// One hand-over: who was lost with what it had sent, who took the rest, and the unknown.
pub(super) fn hand_over_line(v: &crate::api::dto::HandOverView) -> String {
    let h = &v.hand_over;
    let parts: Vec<String> = (h.parts.iter())
        .map(|(id, p)| match p.rate {
            Some(rate) => format!("{id} +{} at {rate:.1} req/s", p.requests),
            None => format!("{id} +{}", p.requests),
        })
        .collect();
    let how = match &h.replacement {
        Some(r) => format!("went to {r}, which joined in its place"),
        None => "were handed to the others".to_string(),
    };
    let unknown = match v.sent_after {
        Some(n) => format!("it reported {n} more sent after that, so none is unknown"),
        None => format!(
            "up to {} of them may have left it unreported (unknown)",
            v.unknown
        ),
    };
    format!(
        "hand-over {}: {} was lost ({}) after reporting {} of {} sent; the {} unsent {how} \
         ({}); {unknown}",
        h.seq,
        h.from,
        h.why,
        h.reported_sent,
        h.share,
        h.unsent,
        parts.join(", ")
    )
}

/// How a test given in totals was shared: each driver's requests and weight (`~` marks a
/// weight assumed for a driver that declared (or was measured at) no capacity, `seed` one that
/// runs the even share).
fn split_line(split: &crate::api::dto::Split) -> String {
    let by = match split.by {
        crate::api::dto::SplitBy::Capacity => "by capacity",
        crate::api::dto::SplitBy::Equal => "equally",
        crate::api::dto::SplitBy::Measured => "by measured capacity",
    };
    let shares: Vec<String> = split
        .shares
        .iter()
        .map(|s| {
            let how = if !s.floodgate {
                "seed".to_string()
            } else if s.declared {
                format!("capacity {}", s.weight)
            } else {
                format!("capacity ~{}", s.weight)
            };
            // A measured capacity is a rate, shown as one.
            let how = match split.by {
                crate::api::dto::SplitBy::Measured if s.floodgate => {
                    let tilde = if s.declared { "" } else { "~" };
                    format!("measured {tilde}{:.0} req/s", s.weight)
                }
                _ => how,
            };
            format!(
                "{} {} ({how}, rate ×{:.3})",
                short(&s.driver_id),
                s.requests,
                s.rate_scale
            )
        })
        .collect();
    format!("shared {by}: {}", shares.join(" · "))
}

/// The thresholds' lines: the verdict, then each threshold with its measured value.
pub fn print_thresholds(t: &Thresholds) {
    println!("thresholds: {}", t.verdict.as_str().to_uppercase());
    for o in &t.results {
        let state = match o.state {
            State::Passed => "pass",
            State::Failed => "FAIL",
            State::NoData => "no data",
        };
        let measured = match (o.measured, &o.note) {
            (Some(v), _) => format!("measured {}", shown(v, o.unit)),
            (None, Some(n)) => n.clone(),
            (None, None) => String::new(),
        };
        let abort = if o.aborted {
            "  (stopped the test)"
        } else if o.abort_on_fail {
            "  (abort_on_fail)"
        } else {
            ""
        };
        println!("  {state:<7} {:<32} {measured}{abort}", o.threshold);
    }
}

/// The connect and TLS rows under the table, over all drivers: connections opened and their
/// times, apart from request latency; each only when measured (TLS only for HTTPS).
fn handshake_rows(s: &Stats) -> Vec<String> {
    let mut out = Vec::new();
    for (name, l) in [("connect", &s.connect_time), ("TLS", &s.tls_handshake)] {
        if l.is_empty() {
            continue;
        }
        let mut line = format!(
            "{name:<8} {:>9} connections  mean {}  p50 {}  p99 {} ms",
            l.count,
            ms(l.mean_ms, 3),
            ms(l.median_ms, 3),
            ms(l.p99_ms, 3)
        );
        if name == "TLS" {
            line.push_str(&format!("  resumed {}", s.tls_resumed));
        }
        out.push(line);
    }
    out
}

fn row(name: &str, s: &Stats) -> String {
    // Counts a driver of another implementation did not report are unknown, not zero.
    let counts = |n: u64| match (s.counted, n) {
        (true, _) => n.to_string(),
        (false, 0) => "?".to_string(),
        (false, _) => format!("{n}+?"),
    };
    let mut line = format!(
        "{:<14} {:>9} {:>9} {:>7} {:>9.1}",
        name,
        counts(s.sent),
        counts(s.ok),
        s.error_total,
        s.achieved_rps
    );
    for v in s.latency.ordered_ms() {
        line.push_str(&format!(" {:>8}", ms(v, 3)));
    }
    line
}

/// One request name's row, in the table's columns.
fn named_row(name: &str, n: &RequestStats) -> String {
    let mut line = format!(
        "{:<14} {:>9} {:>9} {:>7} {:>9.1}",
        format!("· {}", short(name)),
        n.sent,
        n.ok,
        n.error_total,
        n.achieved_rps
    );
    for v in n.latency.ordered_ms() {
        line.push_str(&format!(" {:>8}", ms(v, 3)));
    }
    line
}

/// Failed checks by kind, for the whole test or one request name.
fn checks_line(scope: &str, c: &ChecksFailed) -> String {
    let mut line = format!(
        "checks failed ({scope}): status {}, body {}, json {}",
        c.status, c.body, c.json
    );
    if c.too_large > 0 {
        line.push_str(&format!(
            " ({} on bodies larger than a driver keeps to check)",
            c.too_large
        ));
    }
    line
}

/// A latency in ms with `digits` decimals, or `n/a` where it is not known (a median that
/// cannot be merged from other implementations' summaries).
pub(super) fn ms(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.digits$}"))
}

/// A driver ID short enough for a table column.
pub(super) fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Latency, LatencyStats};

    fn exact(values_us: &[u64]) -> LatencyStats {
        let mut l = Latency::default();
        for &v in values_us {
            l.record(v);
        }
        LatencyStats::exact(&l)
    }

    fn stats() -> Stats {
        Stats {
            requests_total: 10,
            sent: 10,
            responses: 10,
            ok: 10,
            errors: Default::default(),
            error_total: 0,
            status: Default::default(),
            counted: true,
            achieved_rps: 100.0,
            progress: 1.0,
            elapsed_ms: 100,
            latency: exact(&[1_000]),
            service_time: exact(&[1_000]),
            schedule_lag: LatencyStats::default(),
            lag_note: None,
            stages: Vec::new(),
            connect_time: LatencyStats::default(),
            tls_handshake: LatencyStats::default(),
            tls_resumed: 0,
            first_error: None,
            checks_failed: Default::default(),
            by_request: Default::default(),
        }
    }

    #[test]
    fn handshake_rows_show_count_mean_p50_p99_and_resumed() {
        let mut s = stats();
        assert!(handshake_rows(&s).is_empty(), "no data, no rows");
        s.connect_time = exact(&[100, 200, 300, 400]);
        assert_eq!(
            handshake_rows(&s),
            ["connect          4 connections  mean 0.250  p50 0.200  p99 0.400 ms"]
        );
        s.tls_handshake = exact(&[1_000, 2_000]);
        s.tls_resumed = 1;
        let rows = handshake_rows(&s);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1],
            "TLS              2 connections  mean 1.500  p50 1.000  p99 2.000 ms  resumed 1"
        );
    }

    #[test]
    fn a_hand_over_line_says_who_took_what_and_the_unknown() {
        use crate::api::dto::{HandOver, HandOverView};
        use crate::protocol::HandOverPart;
        let part = |requests, rate| HandOverPart { requests, rate };
        let mut v = HandOverView {
            hand_over: HandOver {
                seq: 2,
                decided_at_ms: 0,
                at_ms: 1_000,
                from: "d1".into(),
                why: "no heartbeat or report for 3000 ms".into(),
                share: 4_000,
                reported_sent: 1_200,
                unsent: 2_800,
                unknown_max: 900,
                parts: [
                    ("d0".into(), part(1_400, Some(600.0))),
                    ("d2".into(), part(1_400, None)),
                ]
                .into(),
                replacement: None,
            },
            taken: Vec::new(),
            sent_after: None,
            unknown: 900,
        };
        assert_eq!(
            hand_over_line(&v),
            "hand-over 2: d1 was lost (no heartbeat or report for 3000 ms) after reporting 1200 \
             of 4000 sent; the 2800 unsent were handed to the others (d0 +1400 at 600.0 req/s, \
             d2 +1400); up to 900 of them may have left it unreported (unknown)"
        );
        v.hand_over.replacement = Some("d9".into());
        v.sent_after = Some(12);
        let line = hand_over_line(&v);
        assert!(
            line.contains("the 2800 unsent went to d9, which joined in its place (")
                && line.ends_with("it reported 12 more sent after that, so none is unknown"),
            "{line}"
        );
    }
}
