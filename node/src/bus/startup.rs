//! Waiting out a broker that is not ready yet: which Kafka errors mean "try again shortly"
//! (a just-started broker, a topic whose partition leader is still being elected, a group
//! coordinator that is loading) and the bounded, logged backoff every node uses at start-up.

use super::BusError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
use std::time::{Duration, Instant};

/// How long a node waits for Kafka at start-up before it gives up with an error, by default.
/// Long enough for a broker started at the same moment (a cold JVM takes 10–30 s), short enough
/// that a wrong address fails within a couple of minutes.
pub const DEFAULT_STARTUP_WAIT: Duration = Duration::from_secs(120);

/// Broker error codes that a starting broker or a topic being created returns for a while and
/// that go away by themselves. Anything else (authorization, an invalid topic name, an
/// unsupported version) is a configuration error and is reported at once.
pub fn retriable_code(code: Code) -> bool {
    matches!(
        code,
        Code::NotLeaderForPartition
            | Code::LeaderNotAvailable
            | Code::UnknownTopicOrPartition
            | Code::UnknownTopic
            | Code::UnknownPartition
            | Code::UnknownTopicId
            | Code::CoordinatorLoadInProgress
            | Code::CoordinatorNotAvailable
            | Code::NotCoordinator
            | Code::WaitingForCoordinator
            | Code::NotController
            | Code::RequestTimedOut
            | Code::OperationTimedOut
            | Code::MessageTimedOut
            | Code::TimedOutQueue
            | Code::BrokerNotAvailable
            | Code::ReplicaNotAvailable
            | Code::NetworkException
            | Code::BrokerTransportFailure
            | Code::AllBrokersDown
            | Code::Resolve
            | Code::NotEnoughReplicas
            | Code::NotEnoughReplicasAfterAppend
            | Code::KafkaStorageError
            | Code::FencedLeaderEpoch
            | Code::UnknownLeaderEpoch
            | Code::OffsetNotAvailable
            | Code::PreferredLeaderNotAvailable
            | Code::EligibleLeadersNotAvailable
            | Code::ThrottlingQuotaExceeded
            | Code::RebootstrapRequired
            | Code::InProgress
            | Code::Retry
            // A KRaft broker that has just started may not have registered itself yet, so a
            // replication factor of 1 is "larger than the 0 available brokers" for a moment.
            | Code::InvalidReplicationFactor
    )
}

/// Whether an error is worth waiting out.
pub fn retriable(e: &BusError) -> bool {
    match e {
        BusError::Kafka(KafkaError::AdminOp(code)) => retriable_code(*code),
        BusError::Kafka(k) => k.rdkafka_error_code().is_some_and(retriable_code),
        BusError::NotReady(_) | BusError::Down => true,
        BusError::Other(_) | BusError::Refused(_) => false,
    }
}

/// A bounded exponential backoff with a deadline, for one start-up step.
#[derive(Debug)]
pub struct Backoff {
    step: &'static str,
    deadline: Instant,
    next: Duration,
    attempts: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    pub fn new(step: &'static str, wait: Duration, now: Instant) -> Self {
        Self {
            step,
            deadline: now + wait,
            next: Self::FIRST,
            attempts: 0,
        }
    }

    /// What to do after a failed attempt at `now`: how long to wait before the next one, or the
    /// error to give up with (not retriable, or past the deadline).
    pub fn after(&mut self, e: BusError, now: Instant) -> Result<Duration, BusError> {
        self.attempts += 1;
        if !retriable(&e) {
            return Err(e);
        }
        if now >= self.deadline {
            return Err(BusError::Other(format!(
                "gave up {} after {} attempts: {e}",
                self.step, self.attempts
            )));
        }
        let wait = self.next.min(self.deadline.saturating_duration_since(now));
        self.next = (self.next * 2).min(Self::MAX);
        Ok(wait)
    }

    /// Waits after a failed attempt (logging it), or returns the error to give up with.
    pub async fn wait(&mut self, e: BusError) -> Result<(), BusError> {
        let why = e.to_string();
        let wait = self.after(e, Instant::now())?;
        tracing::warn!(
            step = self.step,
            attempt = self.attempts,
            retry_in_ms = wait.as_millis() as u64,
            "Kafka is not ready yet, retrying: {why}"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(code: Code) -> BusError {
        BusError::Kafka(KafkaError::MetadataFetch(code))
    }

    #[test]
    fn start_up_errors_are_retried_and_configuration_errors_are_not() {
        let cases = [
            (kafka(Code::NotLeaderForPartition), true),
            (kafka(Code::LeaderNotAvailable), true),
            (kafka(Code::CoordinatorLoadInProgress), true),
            (kafka(Code::UnknownTopicOrPartition), true),
            (kafka(Code::AllBrokersDown), true),
            (kafka(Code::BrokerTransportFailure), true),
            (kafka(Code::InvalidReplicationFactor), true),
            (
                BusError::Kafka(KafkaError::AdminOp(Code::NotController)),
                true,
            ),
            (BusError::NotReady("no leader yet".into()), true),
            (kafka(Code::TopicAuthorizationFailed), false),
            (kafka(Code::InvalidTopic), false),
            (kafka(Code::UnsupportedVersion), false),
            (
                BusError::Kafka(KafkaError::ClientCreation("bad".into())),
                false,
            ),
            (BusError::Other("cannot create topic".into()), false),
            (
                BusError::Refused("SASL authentication failed".into()),
                false,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(retriable(&e), want, "{e}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_cap_and_gives_up_at_the_deadline() {
        let t0 = Instant::now();
        let mut b = Backoff::new("test", Duration::from_secs(5), t0);
        let waits: Vec<u64> = (0..6)
            .map(|_| {
                b.after(kafka(Code::NotLeaderForPartition), t0)
                    .expect("within the deadline")
                    .as_millis() as u64
            })
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000]);
        // Never sleeps past the deadline.
        let near = t0 + Duration::from_millis(4_900);
        assert_eq!(
            b.after(kafka(Code::LeaderNotAvailable), near).ok(),
            Some(Duration::from_millis(100))
        );
        let e = b
            .after(kafka(Code::LeaderNotAvailable), t0 + Duration::from_secs(5))
            .expect_err("past the deadline");
        assert!(
            e.to_string().contains("gave up test after 8 attempts"),
            "{e}"
        );
        // A configuration error is returned at once, whatever the time.
        let mut b = Backoff::new("test", Duration::from_secs(5), t0);
        assert!(b.after(kafka(Code::TopicAuthorizationFailed), t0).is_err());
    }
}
