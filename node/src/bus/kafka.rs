//! The Kafka implementation of [`Bus`]: one producer, topic creation, and consumers assigned to
//! every partition of their topics at positions read before they return (the current end, or a
//! stored resume offset), so that a node never replays old tests or stale heartbeats and never
//! misses a message published after it subscribed. Every client carries the node's security
//! settings ([`super::security`]), and a broker that refuses them ends start-up with that reason.

use super::security::KafkaSecurity;
use super::startup::{self, Backoff};
use super::{Bus, BusError, BusStats, Inbox, Incoming};
use crate::protocol::Topics;
use futures_util::future::BoxFuture;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const META_TIMEOUT: Duration = Duration::from_secs(5);
/// A delivery not acknowledged within this is reported as failed, so callers can retry.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts to reach a broker that went away (librdkafka's
/// default is 10 s, which after a broker restart kept the count stalled long after it was
/// back): one attempt a second costs nothing next to a stalled test.
const RECONNECT_BACKOFF_MAX_MS: &str = "1000";

/// The context of every client of one bus: it remembers a broker's refusal of the node's
/// credentials or TLS settings, which librdkafka only reports through this callback (the
/// requests themselves just time out), so that start-up can stop with the reason.
#[derive(Clone, Default)]
struct Refusals(Arc<Mutex<Option<String>>>);

impl Refusals {
    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ClientContext for Refusals {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(code @ (RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL)) =
            error.rdkafka_error_code()
        {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{code}: {reason}"));
        }
        tracing::error!("librdkafka: {error}: {reason}");
    }
}

impl ConsumerContext for Refusals {}

#[derive(Clone)]
pub struct KafkaBus {
    brokers: String,
    client_id: String,
    /// The security and pass-through properties every client is created with.
    properties: Vec<(String, String)>,
    refusals: Refusals,
    topics: Topics,
    producer: FutureProducer<Refusals>,
    stats: Arc<BusStats>,
    /// How long start-up steps wait for a broker that is not ready.
    startup_wait: Duration,
}

impl KafkaBus {
    pub fn new(brokers: &str, client_id: &str, topics: Topics) -> Result<KafkaBus, BusError> {
        Self::with_startup_wait(
            brokers,
            client_id,
            topics,
            startup::DEFAULT_STARTUP_WAIT,
            &KafkaSecurity::default(),
        )
    }

    /// A bus whose start-up steps wait up to `startup_wait` for the broker, and whose clients
    /// use `security`.
    pub fn with_startup_wait(
        brokers: &str,
        client_id: &str,
        topics: Topics,
        startup_wait: Duration,
        security: &KafkaSecurity,
    ) -> Result<KafkaBus, BusError> {
        let properties = security
            .properties()
            .map_err(|e| BusError::Other(e.to_string()))?;
        let refusals = Refusals::default();
        let mut cfg = client_config(brokers, client_id, &properties);
        // A pass-through linger.ms wins over this default.
        if !properties.iter().any(|(k, _)| k == "linger.ms") {
            cfg.set("linger.ms", "2");
        }
        let producer: FutureProducer<Refusals> = cfg
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .set("enable.idempotence", "true")
            .create_with_context(refusals.clone())?;
        Ok(KafkaBus {
            brokers: brokers.to_string(),
            client_id: client_id.to_string(),
            properties,
            refusals,
            topics,
            producer,
            stats: Arc::new(BusStats::default()),
            startup_wait,
        })
    }

    /// Creates any of the five topics that are missing (one partition each, so that every
    /// message of a topic is seen in order). Waits for a broker that is starting.
    async fn create_topics(&self) -> Result<(), BusError> {
        let admin: AdminClient<Refusals> =
            self.config().create_with_context(self.refusals.clone())?;
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
                Err(e) => backoff.wait(self.refused_or(e)).await?,
            }
        }
    }

    /// Publishes and waits for the broker's acknowledgement.
    async fn send_acked(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), BusError> {
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
    fn send_queued(&self, topic: &str, key: &str, payload: &[u8]) {
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

    fn config(&self) -> ClientConfig {
        client_config(&self.brokers, &self.client_id, &self.properties)
    }

    /// The broker's refusal of this node's credentials or TLS settings, if it gave one (the
    /// request itself then fails with a timeout that would be waited out), else `e`.
    fn refused_or(&self, e: BusError) -> BusError {
        match self.refusals.get() {
            Some(why) => BusError::Refused(why),
            None => e,
        }
    }

    /// A consumer assigned to every partition of `topics` at its current end (its high
    /// watermark, read before this returns, unlike `auto.offset.reset=latest`, which resolves
    /// lazily), or at the offset given in `resume`.
    async fn assign_from(
        &self,
        topics: &[&str],
        resume: Vec<(String, i32, i64)>,
    ) -> Result<KafkaInbox, BusError> {
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
            let ctx = self.refusals.clone();
            let attempt = tokio::task::spawn_blocking(move || {
                start_positions(&probe_cfg, ctx, &names, &resume)
            })
            .await
            .map_err(|e| BusError::Other(e.to_string()))?;
            match attempt {
                Ok(positions) => break positions,
                Err(e) => backoff.wait(self.refused_or(e)).await?,
            }
        };
        let consumer: StreamConsumer<Refusals> = cfg.create_with_context(self.refusals.clone())?;
        consumer.assign(&positions)?;
        Ok(KafkaInbox {
            consumer,
            stats: self.stats.clone(),
        })
    }
}

/// Every partition of `topics` at its resume offset (kept within the log's bounds) or else at
/// its high watermark.
fn start_positions(
    cfg: &ClientConfig,
    ctx: Refusals,
    topics: &[String],
    resume: &[(String, i32, i64)],
) -> Result<TopicPartitionList, BusError> {
    let probe: BaseConsumer<Refusals> = cfg.create_with_context(ctx)?;
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let partitions = partitions_of(&probe, topic)?;
        for p in partitions {
            let (low, high) = probe.fetch_watermarks(topic, p, META_TIMEOUT)?;
            let at = resume
                .iter()
                .find(|(t, part, _)| t == topic && (*part == p || *part == super::ALL_PARTITIONS))
                .map_or(high, |(_, _, next)| (*next).clamp(low, high));
            tpl.add_partition_offset(topic, p, Offset::Offset(at))?;
        }
    }
    Ok(tpl)
}

/// Every partition of `topic` with its high watermark (the offset of its next message).
fn end_offsets_of(
    cfg: &ClientConfig,
    ctx: Refusals,
    topic: &str,
) -> Result<Vec<(i32, i64)>, BusError> {
    let probe: BaseConsumer<Refusals> = cfg.create_with_context(ctx)?;
    partitions_of(&probe, topic)?
        .into_iter()
        .map(|p| Ok((p, probe.fetch_watermarks(topic, p, META_TIMEOUT)?.1)))
        .collect()
}

/// The partitions of `topic` that have a leader. Right after a topic is created the broker may
/// report it without partitions, or without their leaders: that is [`BusError::NotReady`], and
/// the caller waits it out.
fn partitions_of(probe: &BaseConsumer<Refusals>, topic: &str) -> Result<Vec<i32>, BusError> {
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

impl Bus for KafkaBus {
    fn topics(&self) -> &Topics {
        &self.topics
    }

    fn stats(&self) -> &Arc<BusStats> {
        &self.stats
    }

    fn ensure_topics(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.create_topics())
    }

    fn publish<'a>(
        &'a self,
        topic: &'a str,
        key: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.send_acked(topic, key, payload))
    }

    fn publish_nowait(&self, topic: &str, key: &str, payload: &[u8]) {
        self.send_queued(topic, key, payload)
    }

    fn subscribe<'a>(
        &'a self,
        topics: &'a [&'a str],
        resume: Vec<(String, i32, i64)>,
    ) -> BoxFuture<'a, Result<Box<dyn Inbox>, BusError>> {
        Box::pin(async move {
            let inbox = self.assign_from(topics, resume).await?;
            Ok(Box::new(inbox) as Box<dyn Inbox>)
        })
    }

    fn end_offsets<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(i32, i64)>, BusError>> {
        Box::pin(async move {
            let (cfg, ctx, topic) = (self.config(), self.refusals.clone(), topic.to_string());
            tokio::task::spawn_blocking(move || end_offsets_of(&cfg, ctx, &topic))
                .await
                .map_err(|e| BusError::Other(e.to_string()))?
                .map_err(|e| self.refused_or(e))
        })
    }

    fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}

/// The settings every client of a bus starts from.
fn client_config(brokers: &str, client_id: &str, properties: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", client_id)
        .set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS);
    for (k, v) in properties {
        c.set(k, v);
    }
    c
}

pub struct KafkaInbox {
    consumer: StreamConsumer<Refusals>,
    stats: Arc<BusStats>,
}

impl Inbox for KafkaInbox {
    fn recv(&mut self) -> BoxFuture<'_, Incoming> {
        Box::pin(self.next())
    }
}

impl KafkaInbox {
    /// The next message; broker trouble is logged and waited out.
    async fn next(&self) -> Incoming {
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
