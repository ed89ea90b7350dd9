//! The Kafka bus: one producer, topic creation, and consumers that either start at the current
//! end of their topics (never replaying old tests or stale heartbeats) or follow a consumer group.
//!
//! It carries bytes; it knows the topic names but not what the messages mean, except that it
//! counts and rate-limits the logging of the ones a role could not parse. Every start-up step
//! waits out a broker that is not ready yet ([`startup`]) up to a deadline.

pub mod startup;

use crate::protocol::Topics;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use startup::Backoff;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const META_TIMEOUT: Duration = Duration::from_secs(5);
/// A delivery not acknowledged within this is reported as failed, so callers can retry.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// Kafka answered, but the thing asked for is not there yet (a partition without a leader).
    #[error("kafka: {0}")]
    NotReady(String),
    #[error("kafka: {0}")]
    Other(String),
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

#[derive(Clone)]
pub struct Bus {
    brokers: String,
    client_id: String,
    pub topics: Topics,
    producer: FutureProducer,
    pub stats: Arc<BusStats>,
    /// How long start-up steps wait for a broker that is not ready.
    startup_wait: Duration,
}

impl Bus {
    pub fn new(brokers: &str, client_id: &str, topics: Topics) -> Result<Bus, BusError> {
        Self::with_startup_wait(brokers, client_id, topics, startup::DEFAULT_STARTUP_WAIT)
    }

    /// A bus whose start-up steps wait up to `startup_wait` for the broker.
    pub fn with_startup_wait(
        brokers: &str,
        client_id: &str,
        topics: Topics,
        startup_wait: Duration,
    ) -> Result<Bus, BusError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", client_id)
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .create()?;
        Ok(Bus {
            brokers: brokers.to_string(),
            client_id: client_id.to_string(),
            topics,
            producer,
            stats: Arc::new(BusStats::default()),
            startup_wait,
        })
    }

    /// Creates any of the five topics that are missing (one partition each, so that every
    /// message of a topic is seen in order). Waits for a broker that is starting.
    pub async fn ensure_topics(&self) -> Result<(), BusError> {
        let admin: AdminClient<DefaultClientContext> = self.config().create()?;
        let new: Vec<NewTopic> = self
            .topics
            .all()
            .iter()
            .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
            .collect();
        let opts = AdminOptions::new()
            .operation_timeout(Some(META_TIMEOUT))
            .request_timeout(Some(META_TIMEOUT));
        let mut backoff = Backoff::new("creating topics", self.startup_wait, Instant::now());
        loop {
            let attempt = match admin.create_topics(&new, &opts).await {
                Ok(results) => results
                    .into_iter()
                    .filter_map(|r| match r {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => None,
                        Err((topic, code)) => Some((topic, code)),
                    })
                    .map(|(topic, code)| {
                        if startup::retriable_code(code) {
                            BusError::NotReady(format!("topic {topic}: {code}"))
                        } else {
                            BusError::Other(format!("cannot create topic {topic}: {code}"))
                        }
                    })
                    .next()
                    .map_or(Ok(()), Err),
                Err(e) => Err(BusError::Kafka(e)),
            };
            match attempt {
                Ok(()) => return Ok(()),
                Err(e) => backoff.wait(e).await?,
            }
        }
    }

    /// Publishes and waits for the broker's acknowledgement.
    pub async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), BusError> {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        match self.producer.send(record, DELIVERY_TIMEOUT).await {
            Ok(_) => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err((e, _)) => {
                self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                Err(e.into())
            }
        }
    }

    /// Queues a message without waiting: for periodic, cumulative messages where the next one
    /// supersedes a lost one (heartbeats, progress reports).
    pub fn publish_nowait(&self, topic: &str, key: &str, payload: &[u8]) {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        match self.producer.send_result(record) {
            Ok(delivery) => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                let stats = self.stats.clone();
                tokio::spawn(async move {
                    if let Ok(Err((e, _))) = delivery.await {
                        stats.send_errors.fetch_add(1, Ordering::Relaxed);
                        stats.trouble("a message was not delivered", &e);
                    }
                });
            }
            Err((e, _)) => {
                self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.trouble("cannot queue a message", &e);
            }
        }
    }

    /// Flushes queued messages (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        c
    }

    /// A consumer positioned at the current end of `topics`: it sees only what is published
    /// from now on. Positions are read before returning, so nothing published after this call
    /// returns can be missed (unlike `auto.offset.reset=latest`, which resolves lazily).
    pub async fn consume_from_now(&self, topics: &[&str]) -> Result<Inbox, BusError> {
        self.consume_resuming(topics, Vec::new()).await
    }

    /// Like [`Bus::consume_from_now`], except that partitions listed in `resume` as
    /// `(topic, partition, next offset)` start there: a restarted orchestrator picks up the
    /// reports sent while it was down, from a position it stored itself.
    pub async fn consume_resuming(
        &self,
        topics: &[&str],
        resume: Vec<(String, i32, i64)>,
    ) -> Result<Inbox, BusError> {
        let mut cfg = self.config();
        cfg.set(
            "group.id",
            format!("{}-{}", self.client_id, uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
        let names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let mut backoff =
            Backoff::new("reading topic positions", self.startup_wait, Instant::now());
        let positions = loop {
            let (probe_cfg, names, resume) = (cfg.clone(), names.clone(), resume.clone());
            let attempt =
                tokio::task::spawn_blocking(move || start_positions(&probe_cfg, &names, &resume))
                    .await
                    .map_err(|e| BusError::Other(e.to_string()))?;
            match attempt {
                Ok(positions) => break positions,
                Err(e) => backoff.wait(e).await?,
            }
        };
        let consumer: StreamConsumer = cfg.create()?;
        consumer.assign(&positions)?;
        Ok(Inbox {
            consumer,
            stats: self.stats.clone(),
        })
    }
}

/// Every partition of `topics` at its resume offset (kept within the log's bounds) or else at
/// its high watermark.
fn start_positions(
    cfg: &ClientConfig,
    topics: &[String],
    resume: &[(String, i32, i64)],
) -> Result<TopicPartitionList, BusError> {
    let probe: BaseConsumer = cfg.create()?;
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let partitions = partitions_of(&probe, topic)?;
        for p in partitions {
            let (low, high) = probe.fetch_watermarks(topic, p, META_TIMEOUT)?;
            let at = resume
                .iter()
                .find(|(t, part, _)| t == topic && *part == p)
                .map_or(high, |(_, _, next)| (*next).clamp(low, high));
            tpl.add_partition_offset(topic, p, Offset::Offset(at))?;
        }
    }
    Ok(tpl)
}

/// The partitions of `topic` that have a leader. Right after a topic is created the broker may
/// report it without partitions, or without their leaders: that is [`BusError::NotReady`], and
/// the caller waits it out.
fn partitions_of(probe: &BaseConsumer, topic: &str) -> Result<Vec<i32>, BusError> {
    let meta = probe.fetch_metadata(Some(topic), META_TIMEOUT)?;
    let mut partitions = Vec::new();
    for t in meta.topics().iter().filter(|t| t.name() == topic) {
        if let Some(e) = t.error() {
            return Err(BusError::Kafka(KafkaError::MetadataFetch(e.into())));
        }
        for p in t.partitions() {
            if p.leader() < 0 || p.error().is_some() {
                return Err(BusError::NotReady(format!(
                    "topic {topic} partition {} has no leader yet",
                    p.id()
                )));
            }
            partitions.push(p.id());
        }
    }
    if partitions.is_empty() {
        return Err(BusError::NotReady(format!(
            "topic {topic} has no partitions yet"
        )));
    }
    Ok(partitions)
}

pub struct Inbox {
    consumer: StreamConsumer,
    stats: Arc<BusStats>,
}

impl Inbox {
    /// The next message. Broker trouble is logged and waited out, never returned: a consumer
    /// does not stop because Kafka hiccuped.
    pub async fn recv(&self) -> Incoming {
        loop {
            match self.consumer.recv().await {
                Ok(m) => {
                    self.stats.received.fetch_add(1, Ordering::Relaxed);
                    return Incoming {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        offset: m.offset(),
                        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    };
                }
                Err(e) => {
                    self.stats.trouble("kafka consumer", &e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
