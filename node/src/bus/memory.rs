//! An in-memory [`Bus`] for unit tests of the roles' logic: one log per topic, subscribers that
//! start at the end of each log (or at a resume offset), order kept per topic, and a switch that
//! makes publishing fail as a broker outage would. Integration and end-to-end tests use Kafka.

use super::{Bus, BusError, BusStats, Inbox, Incoming};
use crate::protocol::Topics;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Cheap to clone: every clone is the same bus (the nodes of a test share one).
#[derive(Clone)]
pub struct MemoryBus {
    topics: Topics,
    stats: Arc<BusStats>,
    shared: Arc<Shared>,
}

struct Shared {
    logs: Mutex<HashMap<String, Vec<Vec<u8>>>>,
    /// Bumped on every publish, so that a waiting inbox wakes up.
    version: watch::Sender<u64>,
    down: AtomicBool,
}

impl MemoryBus {
    pub fn new(topics: Topics) -> Self {
        Self {
            topics,
            stats: Arc::new(BusStats::default()),
            shared: Arc::new(Shared {
                logs: Mutex::new(HashMap::new()),
                version: watch::channel(0).0,
                down: AtomicBool::new(false),
            }),
        }
    }

    /// Another node's view of the same bus: same topics and messages, its own counters.
    pub fn handle(&self) -> Self {
        Self {
            topics: self.topics.clone(),
            stats: Arc::new(BusStats::default()),
            shared: self.shared.clone(),
        }
    }

    /// While down, every publish fails (and queued ones are lost), as in a broker outage.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::Relaxed);
    }

    /// Every message published on `topic` so far.
    pub fn messages(&self, topic: &str) -> Vec<Vec<u8>> {
        self.logs().get(topic).cloned().unwrap_or_default()
    }

    fn logs(&self) -> MutexGuard<'_, HashMap<String, Vec<Vec<u8>>>> {
        self.shared.logs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, topic: &str, payload: &[u8]) -> Result<(), BusError> {
        if self.shared.down.load(Ordering::Relaxed) {
            self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            return Err(BusError::Down);
        }
        self.logs()
            .entry(topic.to_string())
            .or_default()
            .push(payload.to_vec());
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        self.shared.version.send_modify(|v| *v += 1);
        Ok(())
    }
}

impl Bus for MemoryBus {
    fn topics(&self) -> &Topics {
        &self.topics
    }

    fn stats(&self) -> &Arc<BusStats> {
        &self.stats
    }

    fn ensure_topics(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut logs = self.logs();
            for t in self.topics.all() {
                logs.entry(t.to_string()).or_default();
            }
            Ok(())
        })
    }

    fn publish<'a>(
        &'a self,
        topic: &'a str,
        _key: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move { self.append(topic, payload) })
    }

    fn publish_nowait(&self, topic: &str, _key: &str, payload: &[u8]) {
        // Like a queued Kafka message during an outage: counted as failed and lost.
        let _ = self.append(topic, payload);
    }

    fn subscribe<'a>(
        &'a self,
        topics: &'a [&'a str],
        resume: Vec<(String, i32, i64)>,
    ) -> BoxFuture<'a, Result<Box<dyn Inbox>, BusError>> {
        Box::pin(async move {
            let logs = self.logs();
            let cursors = topics
                .iter()
                .map(|t| {
                    let end = logs.get(*t).map_or(0, Vec::len);
                    let at = resume
                        .iter()
                        .find(|(rt, p, _)| rt == t && (*p == 0 || *p == super::ALL_PARTITIONS))
                        .map_or(end, |(_, _, next)| (*next).clamp(0, end as i64) as usize);
                    (t.to_string(), at)
                })
                .collect();
            Ok(Box::new(MemoryInbox {
                bus: self.clone(),
                cursors,
                version: self.shared.version.subscribe(),
            }) as Box<dyn Inbox>)
        })
    }

    fn end_offsets<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(i32, i64)>, BusError>> {
        Box::pin(async move {
            if self.shared.down.load(Ordering::Relaxed) {
                return Err(BusError::Down);
            }
            let end = self.logs().get(topic).map_or(0, Vec::len);
            Ok(vec![(0, end as i64)])
        })
    }

    fn flush(&self, _timeout: Duration) {}
}

struct MemoryInbox {
    bus: MemoryBus,
    /// Per topic, the index of the next message to deliver.
    cursors: Vec<(String, usize)>,
    version: watch::Receiver<u64>,
}

impl MemoryInbox {
    /// The oldest undelivered message over all topics, taken in topic order (each topic in
    /// publish order, as a Kafka partition is).
    fn take(&mut self) -> Option<Incoming> {
        let logs = self.bus.logs();
        for (topic, next) in &mut self.cursors {
            if let Some(payload) = logs.get(topic.as_str()).and_then(|l| l.get(*next)) {
                let m = Incoming {
                    topic: topic.clone(),
                    partition: 0,
                    offset: *next as i64,
                    payload: payload.clone(),
                };
                *next += 1;
                self.bus.stats.received.fetch_add(1, Ordering::Relaxed);
                return Some(m);
            }
        }
        None
    }
}

impl Inbox for MemoryInbox {
    fn recv(&mut self) -> BoxFuture<'_, Incoming> {
        Box::pin(async move {
            loop {
                self.version.borrow_and_update();
                if let Some(m) = self.take() {
                    return m;
                }
                // The sender lives as long as the bus; if it were gone, nothing more can come.
                if self.version.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_gets_everything_after_it_subscribed_in_order() {
        let bus = MemoryBus::new(Topics::with_prefix(""));
        bus.publish("a", "k", b"old").await.expect("publish");
        let mut inbox = bus.subscribe(&["a", "b"], vec![]).await.expect("subscribe");
        let other = bus.handle();
        let sender = tokio::spawn(async move {
            for m in [&b"1"[..], b"2", b"3"] {
                other.publish("a", "k", m).await.expect("publish");
            }
            other.publish("b", "k", b"x").await.expect("publish");
        });
        let mut got = Vec::new();
        for _ in 0..4 {
            let m = inbox.recv().await;
            got.push((m.topic, m.payload));
        }
        sender.await.expect("sender");
        let a: Vec<&[u8]> = got
            .iter()
            .filter(|(t, _)| t == "a")
            .map(|(_, p)| p.as_slice())
            .collect();
        assert_eq!(
            a,
            [&b"1"[..], b"2", b"3"],
            "in order, and nothing from before"
        );
        assert!(got.iter().any(|(t, p)| t == "b" && p == b"x"));
    }

    #[tokio::test]
    async fn resume_starts_at_the_stored_offset_and_down_fails_publishes() {
        let bus = MemoryBus::new(Topics::with_prefix(""));
        for m in [&b"0"[..], b"1", b"2"] {
            bus.publish("m", "k", m).await.expect("publish");
        }
        let mut inbox = bus
            .subscribe(&["m"], vec![("m".into(), 0, 1)])
            .await
            .expect("subscribe");
        assert_eq!(inbox.recv().await.payload, b"1");
        assert_eq!(bus.end_offsets("m").await.expect("ends"), [(0, 3)]);
        bus.set_down(true);
        assert!(bus.end_offsets("m").await.is_err());
        assert!(matches!(
            bus.publish("m", "k", b"lost").await,
            Err(BusError::Down)
        ));
        bus.set_down(false);
        assert_eq!(inbox.recv().await.payload, b"2");
        assert_eq!(bus.stats().send_errors.load(Ordering::Relaxed), 1);
    }
}
