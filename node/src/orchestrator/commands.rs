//! The orchestrator's commands, from the REST API and the operator: create, trigger, stop (and
//! fail, when the bus refuses a test's messages). Each changes the state through one event, and
//! publishes to the bus around it in the order the drivers must see.

use super::spec::TestSpecInput;
use super::state::Event;
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
            return self.trigger_locked(&id).await;
        }
        Ok(view)
    }

    async fn publish_config(&self, v: &TestView) -> Result<(), OrchestratorError> {
        let config = v.spec.to_config(&v.id, &v.drivers, &self.inner.cfg.id);
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
        self.trigger_locked(id).await
    }

    /// [`Orchestrator::trigger`] with the control lock held.
    async fn trigger_locked(&self, id: &str) -> Result<TestView, OrchestratorError> {
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
        let start_at_ms = protocol::now_unix_ms() + self.inner.cfg.start_delay.as_millis() as u64;
        let started = self
            .apply(Event::Start {
                id: id.to_string(),
                start_at_ms,
                start: Instant::now() + self.inner.cfg.start_delay,
            })
            .await?;
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
        let this = self.clone();
        let test_id = id.to_string();
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
        Ok(view)
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
