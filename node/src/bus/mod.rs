//! The bus the nodes talk through: an interface ([`Bus`]) with the delivery and position
//! semantics the roles rely on, implemented on Kafka ([`kafka`], in production and in the
//! integration tests) and in memory ([`memory`], for unit tests of the roles' logic).
//!
//! A bus carries bytes; it knows the topic names but not what the messages mean, except that it
//! counts and rate-limits the logging of the ones a role could not parse. Every start-up step
//! waits out a broker that is not ready yet ([`startup`]) up to a deadline.

pub mod kafka;
pub mod memory;
pub mod security;
pub mod startup;

pub use kafka::KafkaBus;
pub use memory::MemoryBus;

use crate::protocol::Topics;
use futures_util::future::BoxFuture;
use rdkafka::error::KafkaError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A partition number in a `resume` list that stands for every partition of its topic
/// (`(topic, ALL_PARTITIONS, 0)`: the whole topic, from its first retained message).
pub const ALL_PARTITIONS: i32 = -1;

/// What the roles need of a bus.
///
/// - `publish` returns once the message is durable (acknowledged), so a caller that retries on
///   error delivers at least once; `publish_nowait` is for periodic messages that the next one
///   supersedes (heartbeats, progress reports).
/// - Messages of one topic are delivered in the order they were published.
/// - `subscribe` positions the inbox at the current end of each topic before it returns, so every
///   message published afterwards is received, and none from before; a partition listed in
///   `resume` as `(topic, partition, next offset)` starts there instead (a restarted orchestrator
///   reads the reports sent while it was down); [`ALL_PARTITIONS`] stands for each partition.
/// - `end_offsets` reads where each partition of a topic ends now (the offset the next message
///   will get), so a caller can record a position that every later message is at or after.
pub trait Bus: Send + Sync {
    fn topics(&self) -> &Topics;
    fn stats(&self) -> &Arc<BusStats>;
    /// Creates any missing topic; waits for a broker that is starting.
    fn ensure_topics(&self) -> BoxFuture<'_, Result<(), BusError>>;
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        key: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BusError>>;
    fn publish_nowait(&self, topic: &str, key: &str, payload: &[u8]);
    fn subscribe<'a>(
        &'a self,
        topics: &'a [&'a str],
        resume: Vec<(String, i32, i64)>,
    ) -> BoxFuture<'a, Result<Box<dyn Inbox>, BusError>>;
    /// Every partition of `topic` with the offset its next message will get.
    fn end_offsets<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(i32, i64)>, BusError>>;
    /// Delivers what is queued, for at most `timeout` (at shutdown).
    fn flush(&self, timeout: Duration);
}

/// Messages taken off the topics a bus subscribed to. Trouble on the way (a broker that is down)
/// is logged and waited out, never returned: a consumer does not stop because Kafka hiccuped.
pub trait Inbox: Send {
    fn recv(&mut self) -> BoxFuture<'_, Incoming>;
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// Kafka answered, but the thing asked for is not there yet (a partition without a leader).
    #[error("kafka: {0}")]
    NotReady(String),
    #[error("kafka: {0}")]
    Other(String),
    /// The broker refused this node's credentials or TLS settings: waiting does not help.
    #[error(
        "Kafka refused the connection (check the --kafka-sasl-* and --kafka-ssl-* settings): {0}"
    )]
    Refused(String),
    /// The in-memory bus, told to fail (unit tests of what a role does when the bus is down).
    #[error("bus is down")]
    Down,
}

/// Counters of what crossed the bus; exported as metrics.
#[derive(Debug, Default)]
pub struct BusStats {
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    pub received: AtomicU64,
    pub malformed: AtomicU64,
    log_gate: LogGate,
}

impl BusStats {
    /// The counters as JSON, for health endpoints.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sent": self.sent.load(Ordering::Relaxed),
            "send_errors": self.send_errors.load(Ordering::Relaxed),
            "received": self.received.load(Ordering::Relaxed),
            "malformed": self.malformed.load(Ordering::Relaxed),
        })
    }

    /// Counts a message that could not be used and logs it, at most once every few seconds.
    pub fn malformed(&self, topic: &str, why: &dyn std::fmt::Display) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.log_gate.open() {
            tracing::warn!(topic, suppressed, "skipped a malformed message: {why}");
        }
    }

    /// Logs a bus-level problem (broker down, delivery failed) at a bounded rate.
    pub fn trouble(&self, what: &str, why: &dyn std::fmt::Display) {
        if let Some(suppressed) = self.log_gate.open() {
            tracing::warn!(suppressed, "{what}: {why}");
        }
    }
}

/// Lets one log line through per interval and counts the ones it held back.
#[derive(Debug, Default)]
struct LogGate {
    last: Mutex<Option<Instant>>,
    held: AtomicU64,
}

impl LogGate {
    const EVERY: Duration = Duration::from_secs(5);

    fn open(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Self::EVERY) {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.held.swap(0, Ordering::Relaxed))
    }
}

/// One message taken off a topic.
pub struct Incoming {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
}
