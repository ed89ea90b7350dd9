//! The orchestrator role and its runtime controller: tracks drivers through `register` and
//! `heartbeat`, publishes `test_config` and `trigger`, folds `metrics` reports into each test,
//! and decides when a test has ended. The REST API and the operator drive it through
//! [`Orchestrator`]'s methods.

mod controller;
pub mod part;
pub mod registry;
pub mod run;
pub mod series;
pub mod spec;
pub mod store;
pub mod view;

use crate::bus::{Bus, KafkaBus};
use crate::protocol::limits::{MAX_DRIVERS, MIN_DRIVERS};
use crate::protocol::{self, Control, Register, Role, SeedStyle, Topics, Trigger};
use registry::{DriverView, Registry};
use run::{Policy, TestRun, TestStatus, TestView};
use spec::{FieldError, TestSpecInput};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use store::OrchestratorStore;

#[derive(Clone, Debug)]
pub struct OrchestratorConfig {
    pub id: String,
    pub kafka: String,
    /// The address shown as this node's `node_IP` (its REST API).
    pub advertise: String,
    pub topics: Topics,
    pub store: PathBuf,
    /// A driver unheard of for this long is lost.
    pub heartbeat_timeout: Duration,
    /// How far ahead of the trigger the common start instant is set.
    pub start_delay: Duration,
    /// The least time between the last `test_config` and its `trigger`: seed drivers read the
    /// two topics independently, and one that sees the trigger first crashes.
    pub config_gap: Duration,
    /// How the seed's fields of `test_config` are written (numbers, delay unit, type case).
    pub seed: SeedStyle,
    /// How drivers without completion signals are judged.
    pub policy: Policy,
    /// How long start-up waits for Kafka.
    pub kafka_wait: Duration,
}

impl OrchestratorConfig {
    /// The defaults of `floodgate orchestrator`, for embedding (the operator, tests).
    pub fn new(id: &str, kafka: &str, advertise: &str, topics: Topics, store: PathBuf) -> Self {
        Self {
            id: id.to_string(),
            kafka: kafka.to_string(),
            advertise: advertise.to_string(),
            topics,
            store,
            heartbeat_timeout: Duration::from_secs(3),
            start_delay: Duration::from_secs(1),
            config_gap: Duration::from_millis(1000),
            seed: SeedStyle::default(),
            policy: Policy::default(),
            kafka_wait: crate::bus::startup::DEFAULT_STARTUP_WAIT,
        }
    }
}

/// Why an orchestrator operation failed; the API maps each kind to one status code.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("no test with id {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("kafka is unavailable: {0}")]
    Bus(String),
    #[error("metrics store: {0}")]
    Store(String),
}

#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

/// Extra Prometheus text appended to the orchestrator's `/metrics` (the operator's counters).
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

struct Inner {
    extra_metrics: Mutex<Vec<MetricsSource>>,
    cfg: OrchestratorConfig,
    bus: Arc<dyn Bus>,
    store: OrchestratorStore,
    state: Mutex<State>,
    /// Serializes create, trigger and stop, so that a check ("no test is running") still holds
    /// when the action it allowed is taken.
    control: tokio::sync::Mutex<()>,
}

struct State {
    registry: Registry,
    tests: BTreeMap<String, TestRun>,
    /// Test IDs in creation order.
    order: Vec<String>,
}

impl Orchestrator {
    /// Connects to Kafka, restores history from the store, and starts the controller's tasks.
    pub async fn start(cfg: OrchestratorConfig) -> anyhow::Result<Orchestrator> {
        let bus = KafkaBus::with_startup_wait(
            &cfg.kafka,
            &format!("floodgate-orchestrator-{}", cfg.id),
            cfg.topics.clone(),
            cfg.kafka_wait,
        )?;
        Self::start_on(cfg, Arc::new(bus)).await
    }

    /// [`Orchestrator::start`] on a given bus (the in-memory one, in unit tests).
    pub async fn start_on(
        cfg: OrchestratorConfig,
        bus: Arc<dyn Bus>,
    ) -> anyhow::Result<Orchestrator> {
        let store = OrchestratorStore::open(&cfg.store)?;
        bus.ensure_topics().await?;
        let presence = bus
            .subscribe(&[&cfg.topics.register, &cfg.topics.heartbeat], vec![])
            .await?;
        // Metrics resume from the position this orchestrator stored, so final reports sent
        // while it was down are not lost; positions are explicit, so none is missed at start.
        let metrics = bus
            .subscribe(&[&cfg.topics.metrics], store.positions().await?)
            .await?;
        let mut state = State {
            registry: Registry::new(cfg.heartbeat_timeout),
            tests: BTreeMap::new(),
            order: Vec::new(),
        };
        restore(&store, &mut state, cfg.policy).await?;
        let o = Orchestrator {
            inner: Arc::new(Inner {
                extra_metrics: Mutex::new(Vec::new()),
                cfg,
                bus,
                store,
                state: Mutex::new(state),
                control: tokio::sync::Mutex::new(()),
            }),
        };
        o.announce().await;
        tokio::spawn(o.clone().presence_loop(presence));
        tokio::spawn(o.clone().metrics_loop(metrics));
        tokio::spawn(o.clone().tick_loop());
        tracing::info!(id = %o.inner.cfg.id, "orchestrator started");
        Ok(o)
    }

    /// Adds text in the Prometheus exposition format to every scrape of `/metrics`.
    pub fn add_metrics_source(&self, source: MetricsSource) {
        self.inner
            .extra_metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(source);
    }

    /// The extra exposition text of every added source.
    pub fn extra_metrics(&self) -> String {
        let sources = self
            .inner
            .extra_metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        sources.iter().map(|s| s()).collect()
    }

    pub fn id(&self) -> &str {
        &self.inner.cfg.id
    }

    pub fn bus_stats(&self) -> &crate::bus::BusStats {
        self.inner.bus.stats()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the orchestrator itself on the `register` topic (the spec: all nodes register).
    async fn announce(&self) {
        let me = Register {
            node_id: self.inner.cfg.id.clone(),
            node_ip: self.inner.cfg.advertise.clone(),
            message_type: protocol::ORCHESTRATOR_REGISTER.to_string(),
            role: Role::Orchestrator,
            orchestrator: None,
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            agent: Some(protocol::AGENT.to_string()),
            heartbeat_ms: None,
        };
        if let Err(e) = self
            .inner
            .bus
            .publish(
                &self.inner.cfg.topics.register,
                &me.node_id,
                &protocol::emit(&me),
            )
            .await
        {
            tracing::warn!("could not register the orchestrator: {e}");
        }
    }

    pub fn drivers(&self) -> Vec<DriverView> {
        self.state().registry.view(Instant::now())
    }

    pub fn list(&self) -> Vec<TestView> {
        let now = Instant::now();
        let st = self.state();
        st.order
            .iter()
            .rev()
            .filter_map(|id| st.tests.get(id))
            .map(|t| t.view(now))
            .collect()
    }

    pub fn get(&self, id: &str) -> Result<TestView, OrchestratorError> {
        let st = self.state();
        st.tests
            .get(id)
            .map(|t| t.view(Instant::now()))
            .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))
    }

    /// A test's chart points: live from memory while it runs, from the store once it ended.
    /// The second value changes when a long series was thinned out (clients then reload it).
    pub async fn series(&self, id: &str) -> Result<(Vec<series::Point>, u64), OrchestratorError> {
        {
            let st = self.state();
            let t = st
                .tests
                .get(id)
                .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))?;
            if let Some((points, generation)) = t.series() {
                return Ok((points.to_vec(), generation));
            }
        }
        let points = self
            .inner
            .store
            .series(id)
            .await
            .map_err(|e| OrchestratorError::Store(e.to_string()))?;
        Ok((points, 0))
    }

    /// Points of a running test's series from index `from` on, with its generation; `None` when
    /// the test is not running.
    pub fn series_since(&self, id: &str, from: usize) -> Option<(Vec<series::Point>, u64)> {
        let st = self.state();
        let (points, generation) = st.tests.get(id)?.series()?;
        Some((points.get(from..).unwrap_or_default().to_vec(), generation))
    }

    /// For the Prometheus exporter (`crate::metrics`; accessor added for issue 3): the status of
    /// every test held, and the running test(s) plus the `recent` newest others, each with its
    /// drivers' latency histograms while it still holds them (an ended test has freed them).
    #[allow(clippy::type_complexity)]
    pub fn metrics_view(
        &self,
        recent: usize,
    ) -> (
        Vec<TestStatus>,
        Vec<(TestView, Vec<(String, crate::stats::Latency)>)>,
    ) {
        let now = Instant::now();
        let st = self.state();
        let statuses = st.tests.values().map(|t| t.status).collect();
        let running = st
            .tests
            .values()
            .filter(|t| t.status == TestStatus::Running);
        let others = st
            .order
            .iter()
            .rev()
            .filter_map(|id| st.tests.get(id))
            .filter(|t| t.status != TestStatus::Running)
            .take(recent);
        let views = running
            .chain(others)
            .map(|t| {
                let latencies = t
                    .driver_latencies()
                    .map(|(id, l)| (id.to_string(), l.clone()))
                    .collect();
                (t.view(now), latencies)
            })
            .collect();
        (statuses, views)
    }

    /// The running test, or else the most recent one.
    pub fn current(&self) -> Option<TestView> {
        let st = self.state();
        let now = Instant::now();
        st.tests
            .values()
            .find(|t| t.status == TestStatus::Running)
            .or_else(|| st.order.last().and_then(|id| st.tests.get(id)))
            .map(|t| t.view(now))
    }

    /// Validates a spec, picks its drivers and publishes its `test_config`; with `trigger: true`
    /// starts it too.
    pub async fn create(&self, input: TestSpecInput) -> Result<TestView, OrchestratorError> {
        self.create_as(uuid::Uuid::new_v4().to_string(), input)
            .await
    }

    /// [`Orchestrator::create`] with a chosen test ID (the operator uses the LoadTest's UID, so
    /// that creating is idempotent). An ID already in use is a conflict.
    pub async fn create_as(
        &self,
        id: String,
        input: TestSpecInput,
    ) -> Result<TestView, OrchestratorError> {
        let trigger = input.trigger.unwrap_or(false);
        let spec = input.validate()?;
        let _control = self.inner.control.lock().await;
        let view = {
            let mut st = self.state();
            if st.tests.contains_key(&id) {
                return Err(OrchestratorError::Conflict(format!(
                    "a test with id {id} exists already"
                )));
            }
            // A refused request changes nothing: check what the trigger would refuse first.
            if trigger {
                if let Some(other) = running(&st) {
                    return Err(OrchestratorError::Conflict(format!(
                        "test {other} is running; stop it or wait for it to end"
                    )));
                }
            }
            let now = Instant::now();
            let alive = st.registry.alive(now);
            let drivers = match &spec.driver_ids {
                Some(ids) => {
                    let missing: Vec<&str> = ids
                        .iter()
                        .filter(|i| !alive.contains(i))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        return Err(OrchestratorError::Conflict(format!(
                            "driver(s) not alive: {}",
                            missing.join(", ")
                        )));
                    }
                    ids.clone()
                }
                None => {
                    let want = spec
                        .drivers
                        .map(|n| n as usize)
                        .unwrap_or(alive.len().min(MAX_DRIVERS));
                    if alive.len() < want.max(MIN_DRIVERS) {
                        return Err(OrchestratorError::Conflict(format!(
                            "a test needs {} to {MAX_DRIVERS} alive drivers; {} alive",
                            want.max(MIN_DRIVERS),
                            alive.len()
                        )));
                    }
                    alive.into_iter().take(want).collect()
                }
            };
            let run = TestRun::new(
                id.clone(),
                spec,
                drivers,
                protocol::now_unix_ms(),
                self.inner.cfg.policy,
            );
            let view = run.view(now);
            st.tests.insert(id.clone(), run);
            st.order.push(id.clone());
            view
        };
        self.save(&view).await;
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
        let view = {
            let st = self.state();
            let now = Instant::now();
            if let Some(other) = running(&st).filter(|other| other != id) {
                return Err(OrchestratorError::Conflict(format!(
                    "test {other} is running; stop it or wait for it to end"
                )));
            }
            let lost: Vec<String> = {
                let t = st
                    .tests
                    .get(id)
                    .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))?;
                if t.status != TestStatus::Created {
                    return Err(OrchestratorError::Conflict(
                        format!(
                            "test {id} is {:?}, not created; create a new test to run again",
                            t.status
                        )
                        .to_lowercase(),
                    ));
                }
                t.drivers
                    .iter()
                    .filter(|d| !st.registry.liveness(d, now).alive)
                    .cloned()
                    .collect()
            };
            if !lost.is_empty() {
                return Err(OrchestratorError::Conflict(format!(
                    "driver(s) lost since the test was created: {}; create a new test",
                    lost.join(", ")
                )));
            }
            st.tests
                .get(id)
                .map(|t| t.view(now))
                .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))?
        };
        // The config again first (a driver restarted since creation has not seen it), then a
        // gap, so that no driver reads the trigger before the config.
        if let Err(e) = self.publish_config(&view).await {
            self.fail(id, &format!("could not publish test_config: {e}"))
                .await;
            return Err(e);
        }
        tokio::time::sleep(self.inner.cfg.config_gap).await;
        let start_at_ms = protocol::now_unix_ms() + self.inner.cfg.start_delay.as_millis() as u64;
        let view = {
            let mut st = self.state();
            let t = st
                .tests
                .get_mut(id)
                .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))?;
            let now = Instant::now();
            t.start(start_at_ms, now + self.inner.cfg.start_delay);
            t.view(now)
        };
        let trigger = Trigger::start(id, start_at_ms);
        let published = self
            .inner
            .bus
            .publish(
                &self.inner.cfg.topics.trigger,
                id,
                &protocol::emit(&trigger),
            )
            .await
            .map_err(|e| OrchestratorError::Bus(e.to_string()));
        if let Err(e) = published {
            self.fail(id, &format!("could not publish the trigger: {e}"))
                .await;
            return Err(e);
        }
        self.save(&view).await;
        tracing::info!(test_id = %id, start_at_ms, "test triggered");
        Ok(view)
    }

    /// Stops a test at once, whatever its drivers do: a running one becomes `stopped` with what
    /// has arrived (Floodgate's drivers are told on the control topic and their final reports,
    /// arriving within the settle window, fill in the numbers); a created one is cancelled.
    pub async fn stop(&self, id: &str) -> Result<TestView, OrchestratorError> {
        let _control = self.inner.control.lock().await;
        // Decide under the lock, act (store, Kafka) after it.
        let (view, was_running) = {
            let mut st = self.state();
            let t = st
                .tests
                .get_mut(id)
                .ok_or_else(|| OrchestratorError::NotFound(id.to_string()))?;
            let now = Instant::now();
            let was_running = match t.status {
                TestStatus::Running => true,
                TestStatus::Created => false,
                s => {
                    return Err(OrchestratorError::Conflict(
                        format!("test {id} has already ended ({s:?})").to_lowercase(),
                    ))
                }
            };
            t.stop(now, protocol::now_unix_ms());
            let view = if was_running {
                t.view(now)
            } else {
                t.freeze(now)
            };
            (view, was_running)
        };
        self.save(&view).await;
        tracing::info!(test_id = %id, "test stopped");
        if was_running {
            let stop = Control::Stop {
                test_id: id.to_string(),
                orchestrator_id: Some(self.inner.cfg.id.clone()),
            };
            if let Err(e) = self
                .inner
                .bus
                .publish(&self.inner.cfg.topics.control, id, &protocol::emit(&stop))
                .await
            {
                // The test has ended here all the same; drivers finish their share on their own.
                tracing::warn!(test_id = %id, "could not tell the drivers to stop: {e}");
            }
        }
        Ok(view)
    }

    async fn fail(&self, id: &str, reason: &str) {
        let v = {
            let mut st = self.state();
            let Some(t) = st.tests.get_mut(id) else {
                return;
            };
            t.fail(reason, protocol::now_unix_ms());
            t.freeze(Instant::now())
        };
        self.save(&v).await;
    }

    async fn save(&self, v: &TestView) {
        if let Err(e) = self.inner.store.save_test(v).await {
            tracing::error!(test_id = %v.id, "metrics store: {e}");
        }
    }
}

/// The running test's ID, if one runs.
fn running(st: &State) -> Option<String> {
    st.tests
        .values()
        .find(|t| t.status == TestStatus::Running)
        .map(|t| t.id.clone())
}

/// Rebuilds tests from the store after a restart.
async fn restore(store: &OrchestratorStore, st: &mut State, policy: Policy) -> anyhow::Result<()> {
    let now = Instant::now();
    for t in store.load().await? {
        let run = match t.view {
            Some(view) => TestRun::finished(view),
            None => {
                let mut run = TestRun::new(t.id.clone(), t.spec, t.drivers, t.created_ms, policy);
                if t.status == "running" {
                    run.start(t.started_ms.unwrap_or(t.created_ms), now);
                }
                for r in t.latest {
                    let _ = run.apply(r, now);
                }
                run
            }
        };
        st.order.push(t.id.clone());
        st.tests.insert(t.id, run);
    }
    Ok(())
}
