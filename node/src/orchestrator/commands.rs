//! The orchestrator's commands, from the REST API and the operator: create, trigger, stop (and
//! fail, when the bus refuses a test's messages), and adopt (take over a running test at
//! start-up). Each changes the state through one event, and publishes to the bus around it in
//! the order the drivers must see.

use super::rate_change::RateInput;
use super::spec::TestSpecInput;
use super::state::Event;
use super::takeover::{Adoption, Recorder, Starting};
use super::view::TestView;
use super::{Orchestrator, OrchestratorError};
use crate::protocol::{self, Control, Trigger};
use std::time::Instant;

impl Orchestrator {
    /// Refuses at once what needs the bus while it is down, before anything is changed: a
    /// create would otherwise wait out the delivery timeout and leave a failed test behind.
    fn check_bus(&self) -> Result<(), OrchestratorError> {
        if self.bus_down() {
            return Err(OrchestratorError::Bus(
                "Kafka is unreachable (this orchestrator's own heartbeats have not come back); \
                 nothing was changed"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Validates a spec, picks its drivers and publishes its `test_config`; with `trigger: true`
    /// starts it too.
    pub async fn create(&self, input: TestSpecInput) -> Result<TestView, OrchestratorError> {
        self.create_as(uuid::Uuid::new_v4().to_string(), input)
            .await
    }

    /// [`Orchestrator::create`] with a chosen test ID (the operator uses the LoadTest's UID, so
    /// that creating is idempotent). An ID already in use is [`OrchestratorError::AlreadyExists`].
    pub async fn create_as(
        &self,
        id: String,
        input: TestSpecInput,
    ) -> Result<TestView, OrchestratorError> {
        self.create_with(id, input, None).await
    }

    /// [`Orchestrator::create_as`] with `trigger: true` whose start is handed to `record` after
    /// the metrics position is read and before the trigger is published, so that a successor
    /// that lost this orchestrator's store can take the test over ([`Adoption`]). If `record`
    /// fails, the test fails and no trigger is sent.
    pub async fn create_recorded(
        &self,
        id: String,
        input: TestSpecInput,
        record: Recorder,
    ) -> Result<TestView, OrchestratorError> {
        self.create_with(id, input, Some(record)).await
    }

    async fn create_with(
        &self,
        id: String,
        input: TestSpecInput,
        record: Option<Recorder>,
    ) -> Result<TestView, OrchestratorError> {
        let trigger = input.trigger.unwrap_or(false);
        let spec = input.validate_with(&self.inner.cfg.caps)?;
        // Before anything is created, so that a refused target leaves nothing behind.
        self.inner.cfg.targets.check(&spec.target_url).await?;
        self.check_bus()?;
        let _control = self.inner.control.lock().await;
        let created = self
            .apply(Event::Create {
                id: id.clone(),
                spec,
                for_trigger: trigger,
                created_ms: protocol::now_unix_ms(),
                caps: self.inner.cfg.caps,
            })
            .await?;
        let view = created
            .view
            .ok_or_else(|| OrchestratorError::NotFound(id.clone()))?;
        if let Err(e) = self.publish_config(&view).await {
            self.fail(&id, &format!("could not publish test_config: {e}"))
                .await;
            return Err(e);
        }
        tracing::info!(test_id = %id, drivers = view.drivers.len(), "test created");
        if trigger {
            return self.trigger_locked(&id, record).await;
        }
        Ok(view)
    }

    async fn publish_config(&self, v: &TestView) -> Result<(), OrchestratorError> {
        let mut config = v.spec.to_config(&v.id, &v.drivers, &self.inner.cfg.id);
        if let (Some(split), Some(t)) = (&v.split, &v.spec.totals) {
            config.shares = split.wire(t.requests.is_some());
        }
        self.inner
            .bus
            .publish(
                &self.inner.cfg.topics.test_config,
                &v.id,
                &config.emit(&self.inner.cfg.seed),
            )
            .await
            .map_err(|e| OrchestratorError::Bus(e.to_string()))
    }

    /// Starts a created test: every participant begins at the same instant.
    pub async fn trigger(&self, id: &str) -> Result<TestView, OrchestratorError> {
        let _control = self.inner.control.lock().await;
        self.trigger_locked(id, None).await
    }

    /// [`Orchestrator::trigger`] with the control lock held; `record` is told the start before
    /// the trigger is published.
    async fn trigger_locked(
        &self,
        id: &str,
        record: Option<Recorder>,
    ) -> Result<TestView, OrchestratorError> {
        let view = self.state().check_startable(id, Instant::now())?;
        self.check_bus()?;
        // The config again first (a driver restarted since creation has not seen it), then a
        // gap, so that no driver reads the trigger before the config.
        if let Err(e) = self.publish_config(&view).await {
            self.fail(id, &format!("could not publish test_config: {e}"))
                .await;
            return Err(e);
        }
        tokio::time::sleep(self.inner.cfg.config_gap).await;
        // Read before the trigger, so every report of this test is at or after it.
        let metrics_topic = &self.inner.cfg.topics.metrics;
        let metrics_from = match &record {
            None => Vec::new(),
            Some(_) => match self.inner.bus.end_offsets(metrics_topic).await {
                Ok(ends) => ends,
                Err(e) => {
                    let e = OrchestratorError::Bus(e.to_string());
                    self.fail(id, &format!("could not read the metrics position: {e}"))
                        .await;
                    return Err(e);
                }
            },
        };
        let start_at_ms = protocol::now_unix_ms() + self.inner.cfg.start_delay.as_millis() as u64;
        let started = self
            .apply(Event::Start {
                id: id.to_string(),
                start_at_ms,
                start: Instant::now() + self.inner.cfg.start_delay,
            })
            .await?;
        if let Some(record) = record {
            let starting = Starting {
                id: id.to_string(),
                drivers: view.drivers.clone(),
                start_at_ms,
                metrics_topic: metrics_topic.clone(),
                metrics_from,
                shares: view.split.as_ref().map_or_else(Default::default, |s| {
                    s.shares
                        .iter()
                        .map(|x| (x.driver_id.clone(), x.requests))
                        .collect()
                }),
            };
            if let Err(why) = record(starting).await {
                let e = OrchestratorError::Unrecorded(why);
                self.fail(id, &e.to_string()).await;
                return Err(e);
            }
        }
        let trigger = Trigger::start(id, start_at_ms);
        if let Err(e) = self
            .inner
            .bus
            .publish(
                &self.inner.cfg.topics.trigger,
                id,
                &protocol::emit(&trigger),
            )
            .await
        {
            let e = OrchestratorError::Bus(e.to_string());
            self.fail(id, &format!("could not publish the trigger: {e}"))
                .await;
            return Err(e);
        }
        tracing::info!(test_id = %id, start_at_ms, "test triggered");
        started
            .view
            .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))
    }

    /// Stops a test at once, whatever its drivers do: a running one becomes `stopped` with what
    /// has arrived (Floodgate's drivers are told on the control topic and their final reports,
    /// arriving within the settle window, fill in the numbers); a created one is cancelled.
    ///
    /// The state changes before anything waits: a stop ends the test even while a trigger is
    /// publishing or the bus is down. The drivers are told afterwards, in the background and
    /// behind any trigger still being published (the control lock), so that a trigger never
    /// follows the stop it should have preceded.
    pub async fn stop(&self, id: &str) -> Result<TestView, OrchestratorError> {
        let was_running = self.state().running() == Some(id);
        let stopped = self.apply(Event::Stop { id: id.to_string() }).await?;
        tracing::info!(test_id = %id, "test stopped");
        let view = stopped
            .view
            .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))?;
        self.tell_drivers_to_stop(id.to_string(), was_running);
        Ok(view)
    }

    /// Changes a running test's pace (issue 13): every driver switches at one instant a moment
    /// ahead ([`crate::protocol::limits::RATE_CHANGE_LEAD_MS`]) and continues its absolute
    /// schedule from there. Published before it is recorded, so a change the bus refused is
    /// not in the history; behind the control lock, so changes reach the drivers in order.
    pub async fn set_rate(
        &self,
        id: &str,
        input: RateInput,
    ) -> Result<TestView, OrchestratorError> {
        self.check_bus()?;
        let _control = self.inner.control.lock().await;
        let change =
            self.state()
                .plan_rate(id, input, protocol::now_unix_ms(), &self.inner.cfg.caps)?;
        let command = Control::SetRate {
            test_id: id.to_string(),
            orchestrator_id: Some(self.inner.cfg.id.clone()),
            seq: change.seq,
            at_ms: change.at_ms,
            rates: change.rates.clone(),
        };
        self.inner
            .bus
            .publish(
                &self.inner.cfg.topics.control,
                id,
                &protocol::emit(&command),
            )
            .await
            .map_err(|e| OrchestratorError::Bus(e.to_string()))?;
        tracing::info!(test_id = %id, seq = change.seq, at_ms = change.at_ms, total_rate = change.total_rate(), "rate change published");
        let changed = self
            .apply(Event::SetRate {
                id: id.to_string(),
                change,
            })
            .await?;
        changed
            .view
            .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))
    }

    /// Publishes a hand-over decided by the state (issue 13) on the control topic. A failure is
    /// logged, not retried: the receivers then send only their own shares, and the test ends
    /// failed, short of its total.
    pub(super) async fn publish_hand_over(&self, id: &str, d: &super::run::Decided) {
        let h = &d.hand_over;
        let config = d.config.as_ref().map(|c| {
            let mut c = (**c).clone();
            c.orchestrator_id = Some(self.inner.cfg.id.clone());
            c.to_json(&self.inner.cfg.seed)
        });
        let command = Control::HandOver {
            test_id: id.to_string(),
            orchestrator_id: Some(self.inner.cfg.id.clone()),
            seq: h.seq,
            at_ms: h.at_ms,
            from: h.from.clone(),
            parts: h.parts.clone(),
            config,
        };
        let to: Vec<&str> = h.parts.keys().map(String::as_str).collect();
        match (self.inner.bus)
            .publish(
                &self.inner.cfg.topics.control,
                id,
                &protocol::emit(&command),
            )
            .await
        {
            Ok(()) => {
                tracing::warn!(test_id = %id, seq = h.seq, from = %h.from, unsent = h.unsent, unknown_max = h.unknown_max, to = %to.join(","), "a lost driver's share was handed over")
            }
            Err(e) => {
                tracing::error!(test_id = %id, from = %h.from, "could not publish a hand-over: {e}")
            }
        }
    }

    /// Publishes the stop of a test on the control topic, in the background and behind any
    /// trigger still being published (see [`Orchestrator::stop`]); for a stop on request and
    /// for an `abort_on_fail` threshold that failed.
    pub(super) fn tell_drivers_to_stop(&self, test_id: String, was_running: bool) {
        let this = self.clone();
        tokio::spawn(async move {
            let _control = this.inner.control.lock().await;
            // A stop that cancelled a test whose trigger was on its way is sent too.
            if !was_running
                && this
                    .state()
                    .get(&test_id, Instant::now())
                    .is_ok_and(|v| v.started_at_ms.is_none())
            {
                return;
            }
            let stop = Control::Stop {
                test_id: test_id.clone(),
                orchestrator_id: Some(this.inner.cfg.id.clone()),
            };
            if let Err(e) = this
                .inner
                .bus
                .publish(
                    &this.inner.cfg.topics.control,
                    &test_id,
                    &protocol::emit(&stop),
                )
                .await
            {
                // The test has ended here all the same; drivers finish their share on their own.
                tracing::warn!(%test_id, "could not tell the drivers to stop: {e}");
            }
        });
    }

    /// Takes over a running test from an outside description (at start-up, before the metrics
    /// read begins, so that none of its reports is passed by). Its spec is checked against the
    /// hard limits only: it already runs. A test the store knows is
    /// [`OrchestratorError::AlreadyExists`], and the store's record of it wins.
    pub(super) async fn adopt(&self, a: Adoption) -> Result<TestView, OrchestratorError> {
        let spec = a.spec.validate()?;
        let adopted = self
            .apply(Event::Adopt {
                id: a.id.clone(),
                spec,
                drivers: a.drivers,
                created_ms: a.created_ms,
                started_ms: a.started_ms,
                shares: a.shares,
            })
            .await?;
        tracing::info!(test_id = %a.id, started_at_ms = a.started_ms, "running test taken over");
        adopted
            .view
            .ok_or_else(|| OrchestratorError::NotFound(a.id.clone()))
    }

    async fn fail(&self, id: &str, reason: &str) {
        let failed = self
            .apply(Event::Fail {
                id: id.to_string(),
                reason: reason.to_string(),
            })
            .await;
        if let Err(e) = failed {
            tracing::warn!(test_id = %id, "could not fail the test: {e}");
        }
    }
}
