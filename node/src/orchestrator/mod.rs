//! The orchestrator role: the handle the REST API and the operator drive ([`Orchestrator`]),
//! the edges that carry out what the state decides (Kafka, the store), and the runtime
//! controller's intake (`intake`). The state itself, and its one transition function, are in
//! `state`; the decisions it applies are pure functions in `registry`, `part`, `run` and `state`.

pub mod bus_watch;
pub mod clock;
mod commands;
pub mod hand_over;
mod intake;
pub mod measured;
pub mod part;
mod participants;
pub mod rate_change;
pub mod registry;
pub mod run;
pub mod series;
pub mod spec;
mod spec_mix;
mod spec_timing;
pub mod spec_total;
pub mod split;
pub mod stage_view;
pub mod state;
pub mod store;
pub mod takeover;
pub mod targets;
mod verdict;
pub mod view;
pub mod view_mix;

use crate::bus::{Bus, KafkaBus};
use crate::model::TestStatus;
use crate::protocol::{self, Control, Register, Role, SeedStyle, Topics};
use registry::DriverView;
use run::Policy;
use spec::FieldError;
use state::{Applied, Effect, Event, State};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use store::OrchestratorStore;
use view::TestView;

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
    /// What this deployment lets a test aim at, and ask for.
    pub targets: targets::TargetPolicy,
    pub caps: protocol::limits::Caps,
    /// How its Kafka clients authenticate and encrypt.
    pub kafka_security: crate::bus::security::KafkaSecurity,
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
            targets: targets::TargetPolicy::default(),
            caps: protocol::limits::Caps::HARD,
            kafka_security: Default::default(),
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
    /// A test with this ID exists already (the operator creates idempotently by ID).
    #[error("a test with id {0} exists already")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    /// Another test is running: one runs at a time. The operator queues behind it.
    #[error("test {running} is running; stop it or wait for it to end")]
    Busy { running: String },
    #[error("kafka is unavailable: {0}")]
    Bus(String),
    #[error("metrics store: {0}")]
    Store(String),
    /// The caller's [`takeover::Recorder`] failed: the test was failed before its trigger.
    #[error("the test's start could not be recorded for a successor, so it was not started: {0}")]
    Unrecorded(String),
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
    /// The one owner of the orchestrator's state; changed only through [`State::apply`].
    state: Mutex<State>,
    /// Applies one event and writes its effects at a time, so the store sees them in order.
    writes: tokio::sync::Mutex<()>,
    /// Serializes create, trigger and stop, so that a check ("no test is running") still holds
    /// when the action it allowed is taken, across the trigger's awaits.
    control: tokio::sync::Mutex<()>,
}

impl Orchestrator {
    /// Connects to Kafka, restores history from the store, and starts the controller's tasks.
    pub async fn start(cfg: OrchestratorConfig) -> anyhow::Result<Orchestrator> {
        Ok(Self::start_adopting(cfg, Vec::new()).await?.0)
    }

    /// [`Orchestrator::start`], taking over the running tests `adopt` describes that the store
    /// does not know (see [`takeover`]). Returns the ones that could not be taken over, each
    /// with the reason.
    pub async fn start_adopting(
        cfg: OrchestratorConfig,
        adopt: Vec<takeover::Adoption>,
    ) -> anyhow::Result<(Orchestrator, Vec<(String, String)>)> {
        let bus = KafkaBus::with_startup_wait(
            &cfg.kafka,
            &format!("floodgate-orchestrator-{}", cfg.id),
            cfg.topics.clone(),
            cfg.kafka_wait,
            &cfg.kafka_security,
        )?;
        Self::start_on_adopting(cfg, Arc::new(bus), adopt).await
    }

    /// [`Orchestrator::start`] on a given bus (the in-memory one, in unit tests).
    pub async fn start_on(
        cfg: OrchestratorConfig,
        bus: Arc<dyn Bus>,
    ) -> anyhow::Result<Orchestrator> {
        Ok(Self::start_on_adopting(cfg, bus, Vec::new()).await?.0)
    }

    /// [`Orchestrator::start_adopting`] on a given bus.
    pub async fn start_on_adopting(
        cfg: OrchestratorConfig,
        bus: Arc<dyn Bus>,
        adopt: Vec<takeover::Adoption>,
    ) -> anyhow::Result<(Orchestrator, Vec<(String, String)>)> {
        let store = OrchestratorStore::open(&cfg.store)?;
        bus.ensure_topics().await?;
        let presence = bus
            .subscribe(&[&cfg.topics.register, &cfg.topics.heartbeat], vec![])
            .await?;
        // Only a registration makes a driver, so the registrations sent before this
        // orchestrator started are read back: drivers that never register again (the seed's)
        // are known once they next beat.
        let replay = bus
            .subscribe(
                &[&cfg.topics.register],
                vec![(cfg.topics.register.clone(), crate::bus::ALL_PARTITIONS, 0)],
            )
            .await?;
        let stored = store.load().await?;
        // The store's record of a test wins over an outside one (a restart in the same pod).
        let (known, adopt): (Vec<_>, Vec<_>) = adopt
            .into_iter()
            .partition(|a| stored.iter().any(|t| t.id == a.id));
        for a in &known {
            tracing::info!(test_id = %a.id, "the store knows the test: resumed from the store");
        }
        // Metrics resume from the position this orchestrator stored, or from an adopted test's
        // recorded one if earlier, so final reports sent while no orchestrator ran are not
        // lost; positions are explicit, so none is missed at start.
        let metrics_topic = cfg.topics.metrics.clone();
        let resume = takeover::resume_positions(
            store.positions().await?,
            &metrics_topic,
            adopt.iter().flat_map(|a| a.metrics_from.iter().copied()),
        );
        let catch_up = match bus.end_offsets(&metrics_topic).await {
            Ok(ends) => takeover::CatchUp::new(&metrics_topic, &ends, &resume),
            Err(e) => {
                tracing::warn!("could not read where the metrics topic ends: {e}");
                takeover::CatchUp::unknown()
            }
        };
        let metrics = bus.subscribe(&[&metrics_topic], resume).await?;
        let mut state = State::new(cfg.heartbeat_timeout, cfg.policy).with_caps(cfg.caps);
        state.watch_bus(Instant::now());
        takeover::restore(stored, &mut state, Instant::now());
        let o = Orchestrator {
            inner: Arc::new(Inner {
                extra_metrics: Mutex::new(Vec::new()),
                cfg,
                bus,
                store,
                state: Mutex::new(state),
                writes: tokio::sync::Mutex::new(()),
                control: tokio::sync::Mutex::new(()),
            }),
        };
        let mut refused = Vec::new();
        for a in adopt {
            let id = a.id.clone();
            match o.adopt(a).await {
                Ok(_) | Err(OrchestratorError::AlreadyExists(_)) => {}
                Err(e) => {
                    tracing::error!(test_id = %id, "could not take the running test over: {e}");
                    refused.push((id, e.to_string()));
                }
            }
        }
        if o.state().running().is_some() && !catch_up.done() {
            o.state().hold(Instant::now() + takeover::CATCH_UP_MAX);
        }
        o.announce().await;
        tokio::spawn(intake::presence(o.clone(), presence));
        tokio::spawn(intake::replay(o.clone(), replay));
        tokio::spawn(intake::metrics(o.clone(), metrics, catch_up));
        tokio::spawn(intake::ticks(o.clone()));
        tokio::spawn(intake::heartbeats(o.clone()));
        tracing::info!(id = %o.inner.cfg.id, "orchestrator started");
        Ok((o, refused))
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

    /// Applies an event to the state, then carries out its effects (store writes).
    async fn apply(&self, event: Event) -> Result<Applied, OrchestratorError> {
        let _in_order = self.inner.writes.lock().await;
        let applied = self
            .state()
            .apply(event, Instant::now(), protocol::now_unix_ms())?;
        for effect in &applied.effects {
            self.carry_out(effect).await;
        }
        for v in &applied.ended {
            tracing::info!(test_id = %v.id, status = v.status.as_str(), reason = v.reason.as_deref().unwrap_or(""), "test ended");
        }
        Ok(applied)
    }

    async fn carry_out(&self, effect: &Effect) {
        let store = &self.inner.store;
        let done = match effect {
            Effect::SaveTest(v) => store.save_test(v).await,
            Effect::SaveReport { report, order } => store.save_report(report, *order).await,
            Effect::SaveSeries { id, points } => {
                let saved = store.save_series(id, points).await;
                if saved.is_ok() {
                    // The points stay in memory until the store has them, so they are always
                    // readable from one or the other.
                    let _ = self.state().apply(
                        Event::SeriesStored { id: id.clone() },
                        Instant::now(),
                        protocol::now_unix_ms(),
                    );
                }
                saved
            }
            Effect::HandOver { id, decided } => {
                // In the background: the state's lock on writes is not held over the bus.
                let (this, id, decided) = (self.clone(), id.clone(), decided.clone());
                tokio::spawn(async move { this.publish_hand_over(&id, &decided).await });
                Ok(())
            }
            Effect::StopDrivers { id } => {
                tracing::info!(test_id = %id, "a threshold failed: telling the drivers to stop");
                self.tell_drivers_to_stop(id.clone(), true);
                Ok(())
            }
        };
        if let Err(e) = done {
            tracing::error!("metrics store: {e}");
        }
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
            capacity: None,
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

    /// Whether this orchestrator cannot hear the bus (its own heartbeats do not come back).
    pub fn bus_down(&self) -> bool {
        self.state().bus_down(Instant::now())
    }

    pub fn drivers(&self) -> Vec<DriverView> {
        self.state().drivers(Instant::now())
    }

    pub fn list(&self) -> Vec<TestView> {
        self.state().list(Instant::now())
    }

    pub fn get(&self, id: &str) -> Result<TestView, OrchestratorError> {
        self.state().get(id, Instant::now())
    }

    /// A test's chart points: live from memory while it runs, from the store once it ended.
    /// The second value changes when a long series was thinned out (clients then reload it).
    pub async fn series(&self, id: &str) -> Result<(Vec<series::Point>, u64), OrchestratorError> {
        if let Some(live) = self.state().series(id)? {
            return Ok(live);
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
        let (points, generation) = self.state().series(id).ok()??;
        Some((points.get(from..).unwrap_or_default().to_vec(), generation))
    }

    /// For the Prometheus exporter: the status of every test held, and the running test(s) plus
    /// the `recent` newest others, each with its drivers' latency histograms while it still
    /// holds them (an ended test has freed them).
    #[allow(clippy::type_complexity)]
    pub fn metrics_view(
        &self,
        recent: usize,
    ) -> (Vec<TestStatus>, Vec<(TestView, Vec<run::DriverHistograms>)>) {
        self.state().metrics_view(recent, Instant::now())
    }

    /// The running test, or else the most recent one.
    pub fn current(&self) -> Option<TestView> {
        self.state().current(Instant::now())
    }

    /// Asks every Floodgate driver to register again (on the control topic).
    async fn ask_to_register(&self) {
        let ask = Control::Register {
            node_id: None,
            orchestrator_id: Some(self.inner.cfg.id.clone()),
        };
        let topic = &self.inner.cfg.topics.control;
        self.inner
            .bus
            .publish_nowait(topic, &self.inner.cfg.id, &protocol::emit(&ask));
    }

    /// Takes one message from the bus as an event; what it did is returned (a report that was
    /// not taken, a heartbeat that made no driver).
    async fn take(&self, event: Event) -> Option<Applied> {
        match self.apply(event).await {
            Ok(applied) => Some(applied),
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }
}
