//! The runtime controller's intake: drivers' registrations and heartbeats into the registry,
//! metrics reports into their tests, and the periodic decision of which running tests have
//! ended (all final reports in, or a driver lost).

use super::registry::Beat;
use super::run::{Rejected, TestStatus, TestView};
use super::series::Point;
use super::Orchestrator;
use crate::bus::Inbox;
use crate::protocol::{self, Heartbeat, MetricsReport, Register, Role};
use std::time::{Duration, Instant};

impl Orchestrator {
    pub(super) async fn presence_loop(self, mut inbox: Box<dyn Inbox>) {
        let topics = self.inner.cfg.topics.clone();
        loop {
            let msg = inbox.recv().await;
            let now = Instant::now();
            if msg.topic == topics.register {
                match protocol::parse::<Register>(&msg.payload) {
                    Ok(r) if r.is_driver() => {
                        tracing::info!(driver = %r.node_id, address = %r.node_ip, agent = r.agent.as_deref().unwrap_or("other"), "driver registered");
                        let beat = Beat {
                            address: Some(&r.node_ip),
                            test_id: None,
                            agent: r.agent.as_deref(),
                            interval: r.heartbeat_ms.map(Duration::from_millis),
                        };
                        self.state().registry.seen(&r.node_id, &beat, now);
                    }
                    Ok(_) => {}
                    Err(e) => self.inner.bus.stats().malformed(&msg.topic, &e),
                }
            } else if msg.topic == topics.heartbeat {
                match protocol::parse::<Heartbeat>(&msg.payload) {
                    Ok(h) if h.role == Role::Driver => {
                        let beat = Beat {
                            address: h.node_ip.as_deref(),
                            test_id: h.test_id.clone(),
                            agent: h.agent.as_deref(),
                            interval: h.heartbeat_ms.map(Duration::from_millis),
                        };
                        self.state().registry.heartbeat(&h.node_id, beat, now);
                    }
                    Ok(_) => {}
                    Err(e) => self.inner.bus.stats().malformed(&msg.topic, &e),
                }
            }
        }
    }

    pub(super) async fn metrics_loop(self, mut inbox: Box<dyn Inbox>) {
        loop {
            let msg = inbox.recv().await;
            self.on_metrics(&msg.topic, &msg.payload).await;
            // Stored after handling: replaying a report is harmless, skipping one is not.
            if let Err(e) = self
                .inner
                .store
                .save_position(&msg.topic, msg.partition, msg.offset + 1)
                .await
            {
                tracing::error!("metrics store: {e}");
            }
        }
    }

    async fn on_metrics(&self, topic: &str, payload: &[u8]) {
        let stats = self.inner.bus.stats();
        let report = match protocol::parse::<MetricsReport>(payload) {
            Ok(r) => r,
            Err(e) => return stats.malformed(topic, &e),
        };
        let now = Instant::now();
        let applied = {
            let mut st = self.state();
            st.registry.heard_from(&report.node_id, now);
            match st.tests.get_mut(&report.test_id) {
                None => Err(Rejected::NotParticipant),
                Some(t) => t.apply(report.clone(), now),
            }
        };
        match applied {
            Ok((order, held)) => {
                if let Err(e) = self
                    .inner
                    .store
                    .save_report(&held, order, protocol::now_unix_ms())
                    .await
                {
                    tracing::error!("metrics store: {e}");
                }
                self.evaluate(Some(&report.test_id)).await;
            }
            Err(Rejected::Malformed(why)) => stats.malformed(topic, &why),
            Err(Rejected::NotParticipant) => stats.malformed(
                topic,
                &format!(
                    "report for unknown test {} or node {}",
                    report.test_id, report.node_id
                ),
            ),
            Err(Rejected::Stale | Rejected::Finished) => {}
        }
    }

    /// Ends running tests whose drivers are all done or lost, and freezes stopped tests once
    /// they have settled; `only` narrows it to one test.
    pub(super) async fn evaluate(&self, only: Option<&str>) {
        let ended: Vec<(TestView, Option<Vec<Point>>)> = {
            let mut guard = self.state();
            let st = &mut *guard;
            let now = Instant::now();
            let now_ms = protocol::now_unix_ms();
            let registry = &st.registry;
            let mut ended = Vec::new();
            for t in st.tests.values_mut() {
                let live = t.status == TestStatus::Running || t.settling();
                if !live || only.is_some_and(|id| id != t.id) {
                    continue;
                }
                t.sample(now, false);
                if t.evaluate(now, now_ms, |d| registry.liveness(d, now)) {
                    // The last point shows the test's end even if one was taken a moment ago.
                    t.sample(now, true);
                    // The points stay in memory until the store has them, so they are always
                    // readable from one or the other.
                    let series = t.series_points();
                    ended.push((t.freeze(now), series));
                }
            }
            ended
        };
        for (v, series) in ended {
            tracing::info!(test_id = %v.id, status = ?v.status, reason = v.reason.as_deref().unwrap_or(""), "test ended");
            self.save(&v).await;
            if let Some(points) = series {
                match self.inner.store.save_series(&v.id, &points).await {
                    Ok(()) => {
                        if let Some(t) = self.state().tests.get_mut(&v.id) {
                            t.drop_series();
                        }
                    }
                    Err(e) => tracing::error!(test_id = %v.id, "metrics store: {e}"),
                }
            }
        }
    }

    pub(super) async fn tick_loop(self) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            self.evaluate(None).await;
            n += 1;
            if n.is_multiple_of(300) {
                self.state().registry.prune(Instant::now());
            }
        }
    }
}
