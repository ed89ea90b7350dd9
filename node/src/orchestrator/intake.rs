//! The runtime controller's intake: registrations, heartbeats and metrics reports off the bus
//! become events for the state, and a tick lets time pass (tests end on lost drivers and quiet
//! periods, stopped tests settle). Messages that cannot be used are counted and skipped; a
//! heartbeat from a node that has not registered is one of them.

use super::run::Rejected;
use super::state::{Event, Unheard};
use super::Orchestrator;
use crate::bus::Inbox;
use crate::protocol::{self, limits, Heartbeat, MetricsReport, Register, Role};
use std::time::{Duration, Instant};

/// `register` and `heartbeat`.
pub(super) async fn presence(o: Orchestrator, mut inbox: Box<dyn Inbox>) {
    let topics = o.inner.cfg.topics.clone();
    let stats = o.inner.bus.stats().clone();
    let mut last_ask = None;
    loop {
        let msg = inbox.recv().await;
        // A beat's receipt, stamped before anything else is done with it: the fourth instant
        // of a clock exchange (see `clock`).
        let received_us = protocol::now_unix_us();
        let event = if msg.topic == topics.register {
            match protocol::parse::<Register>(&msg.payload) {
                Ok(r) => {
                    if r.is_driver() {
                        tracing::info!(driver = %r.node_id, address = %r.node_ip, agent = r.agent.as_deref().unwrap_or("other"), "driver registered");
                    }
                    Event::Registered(r)
                }
                Err(e) => {
                    stats.malformed(&msg.topic, &e);
                    continue;
                }
            }
        } else if msg.topic == topics.heartbeat {
            match protocol::parse::<Heartbeat>(&msg.payload) {
                Ok(h) if h.node_id == o.inner.cfg.id => Event::Echo,
                Ok(h) => Event::Heartbeat {
                    clock: super::clock::Exchange::of_beat(&h, &o.inner.cfg.id, received_us),
                    beat: h,
                },
                Err(e) => {
                    stats.malformed(&msg.topic, &e);
                    continue;
                }
            }
        } else {
            continue;
        };
        match o.take(event).await.and_then(|a| a.presence) {
            Some(Unheard::Unregistered { node_id, floodgate }) => {
                stats.malformed(
                    &msg.topic,
                    &format!("heartbeat from {node_id}, which has not registered: skipped"),
                );
                // A Floodgate driver that registered before this orchestrator's registrations
                // were read back (or was forgotten) is asked to register again, at a bounded rate.
                let due = last_ask.is_none_or(|at: Instant| at.elapsed() >= ASK_EVERY);
                if floodgate && due {
                    last_ask = Some(Instant::now());
                    o.ask_to_register().await;
                }
            }
            Some(Unheard::Full { node_id }) => stats.malformed(
                &msg.topic,
                &format!(
                    "registration of {node_id} refused: {} drivers are known and alive",
                    limits::MAX_KNOWN_DRIVERS
                ),
            ),
            None => {}
        }
    }
}

/// The shortest gap between two requests to register again.
const ASK_EVERY: Duration = Duration::from_secs(1);

/// `register` from its first retained message: the registrations sent before this
/// orchestrator started. What cannot be read was counted by whoever read it live.
pub(super) async fn replay(o: Orchestrator, mut inbox: Box<dyn Inbox>) {
    loop {
        let msg = inbox.recv().await;
        if let Ok(r) = protocol::parse::<Register>(&msg.payload) {
            o.take(Event::Replayed(r)).await;
        }
    }
}

/// `metrics`, from the position stored after each message: replaying a report is harmless,
/// skipping one is not. Once the read reaches where the log ended at start-up (`catch_up`),
/// the tests held until then are judged.
pub(super) async fn metrics(
    o: Orchestrator,
    mut inbox: Box<dyn Inbox>,
    mut catch_up: super::takeover::CatchUp,
) {
    let stats = o.inner.bus.stats().clone();
    loop {
        let msg = inbox.recv().await;
        let caught_up = catch_up.read(msg.partition, msg.offset);
        match protocol::parse::<MetricsReport>(&msg.payload) {
            Ok(report) => {
                let (test, node) = (report.test_id.clone(), report.node_id.clone());
                match o
                    .take(Event::Report(Box::new(report)))
                    .await
                    .and_then(|a| a.rejected)
                {
                    Some(Rejected::Malformed(why)) => stats.malformed(&msg.topic, &why),
                    Some(Rejected::NotParticipant) => stats.malformed(
                        &msg.topic,
                        &format!("report for unknown test {test} or node {node}"),
                    ),
                    Some(Rejected::Stale | Rejected::Finished) | None => {}
                }
            }
            Err(e) => stats.malformed(&msg.topic, &e),
        }
        if let Err(e) = o
            .inner
            .store
            .save_position(&msg.topic, msg.partition, msg.offset + 1)
            .await
        {
            tracing::error!("metrics store: {e}");
        }
        if caught_up {
            tracing::info!("metrics read caught up with the log as it was at start-up");
            o.take(Event::CaughtUp).await;
        }
    }
}

/// How often running tests are evaluated (and chart points taken).
const TICK: Duration = Duration::from_millis(200);

/// Lets time pass for every running or settling test.
pub(super) async fn ticks(o: Orchestrator) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        o.take(Event::Evaluate { only: None }).await;
    }
}

/// This orchestrator's own heartbeat, on the `heartbeat` topic it reads: when its beats stop
/// coming back, it is the bus that is down (or this node's connection to it), not the drivers
/// (see `Registry::echo`). Drivers of other implementations read no heartbeats; the role says
/// it is no driver.
pub(super) async fn heartbeats(o: Orchestrator) {
    let cfg = &o.inner.cfg;
    let every =
        (cfg.heartbeat_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let running = o.state().running().map(str::to_string);
        let beat = Heartbeat {
            node_id: cfg.id.clone(),
            heartbeat: "YES".to_string(),
            timestamp: protocol::now_rfc3339(),
            node_ip: Some(cfg.advertise.clone()),
            role: Role::Orchestrator,
            test_id: running,
            agent: Some(protocol::AGENT.to_string()),
            heartbeat_ms: Some(every.as_millis() as u64),
            capacity: None,
            sent_us: Some(protocol::now_unix_us()),
            clock: None,
        };
        o.inner
            .bus
            .publish_nowait(&cfg.topics.heartbeat, &cfg.id, &protocol::emit(&beat));
    }
}
