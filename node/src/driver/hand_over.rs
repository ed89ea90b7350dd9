//! The driver's side of a hand-over (issue 13): the lost driver stops, a receiver running the
//! test raises its count and takes its new pace at the agreed instant, an idle driver joins the
//! test with the config it is handed. Each `seq` is applied once.

use super::{ActiveRun, Control};
use crate::protocol::{self, Control as ControlMsg, TestConfig, Trigger};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

impl ActiveRun {
    /// Notes a hand-over taken (for every report from now on), applied once per `seq`.
    fn took(&mut self, h: &HandOver, requests: u64) {
        self.rate_seq = h.seq;
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        notes.took.push(protocol::TookOver {
            seq: h.seq,
            from: h.from.clone(),
            requests,
            at_us: protocol::now_unix_us(),
        });
    }
}

/// A `hand_over` command, checked.
struct HandOver {
    test_id: String,
    seq: u64,
    at_ms: u64,
    from: String,
    parts: BTreeMap<String, protocol::HandOverPart>,
    config: Option<Value>,
}

impl Control {
    /// A `hand_over` command: checked (a malformed one is counted and skipped), then applied.
    pub(super) async fn on_hand_over(&mut self, msg: ControlMsg, topic: &str) {
        let ControlMsg::HandOver {
            test_id,
            seq,
            at_ms,
            from,
            parts,
            config,
            ..
        } = msg
        else {
            return;
        };
        if let Err(e) = protocol::hand_over::checked_parts(&from, &parts) {
            return self.ctx.bus.stats().malformed(topic, &e);
        }
        let h = HandOver {
            test_id,
            seq,
            at_ms,
            from,
            parts,
            config,
        };
        self.hand_over(h).await
    }

    /// A lost driver's share handed over (issue 13): the lost driver stops if it hears it; a
    /// receiver running the test adds the requests to its count and takes its new pace at the
    /// agreed instant; a receiver running nothing joins the test with the config given. Each
    /// `seq` is applied once, and what was taken is in the run's reports (`hand_overs`).
    async fn hand_over(&mut self, h: HandOver) {
        let me = self.ctx.cfg.id.clone();
        if h.from == me {
            if let Some(a) = self.running_test(&h.test_id) {
                let to: Vec<&str> = h.parts.keys().map(String::as_str).collect();
                let why = format!(
                    "handed over: the orchestrator judged this driver lost and gave its unsent \
                     share to {}",
                    to.join(", ")
                );
                a.notes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .stop_reason = Some(why);
                tracing::warn!(test_id = %h.test_id, "this driver's share was handed over; stopping");
                self.stop(&h.test_id);
            }
            return;
        }
        let Some(part) = h.parts.get(&me).copied() else {
            return tracing::debug!(test_id = %h.test_id, "a hand-over to other drivers");
        };
        if self.running_test(&h.test_id).is_none() {
            self.join(&h, part.requests).await;
            return;
        }
        let Some(a) = self.running_test(&h.test_id) else {
            return;
        };
        if h.seq <= a.rate_seq {
            return;
        }
        match a.running.extend(part.requests) {
            Ok(count) => {
                a.took(&h, part.requests);
                tracing::info!(test_id = %h.test_id, seq = h.seq, from = %h.from, added = part.requests, count, "took a lost driver's share");
            }
            Err(e) => {
                return tracing::warn!(test_id = %h.test_id, seq = h.seq, "could not take a lost driver's share: {e}");
            }
        }
        if let Some(rate) = part.rate {
            let at = UNIX_EPOCH + Duration::from_millis(h.at_ms);
            let gap = Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX);
            if let Err(e) = a.running.retime(at, gap, h.seq) {
                tracing::warn!(test_id = %h.test_id, seq = h.seq, "the hand-over's pace not applied: {e}");
            }
        }
    }

    /// Joins a running test as a lost driver's replacement: its config (naming this driver's
    /// share) and a start at the hand-over's instant, as if they came on their own topics.
    async fn join(&mut self, h: &HandOver, requests: u64) {
        let Some(config) = &h.config else {
            return tracing::debug!(test_id = %h.test_id, "a hand-over for a test not running here");
        };
        let c = match TestConfig::parse(&protocol::emit(config), self.ctx.cfg.seed.delay_unit) {
            Ok(c) if c.test_id == h.test_id && c.includes(&self.ctx.cfg.id) => c,
            Ok(_) => {
                return tracing::warn!(test_id = %h.test_id, "a hand-over whose config is for another test or other drivers")
            }
            Err(e) => {
                return self
                    .ctx
                    .bus
                    .stats()
                    .malformed(&self.ctx.cfg.topics.control, &e)
            }
        };
        self.on_config(c).await;
        self.on_trigger(Trigger::start(&h.test_id, h.at_ms)).await;
        let Some(a) = self.running_test(&h.test_id) else {
            return;
        };
        a.took(h, requests);
        tracing::info!(test_id = %h.test_id, seq = h.seq, from = %h.from, requests, "joined a running test in a lost driver's place");
    }

    /// The run of `test_id`, if this driver runs it and it was not told to stop.
    fn running_test(&mut self, test_id: &str) -> Option<&mut ActiveRun> {
        self.active
            .as_mut()
            .filter(|a| a.test_id == test_id && !a.stopping)
    }
}
