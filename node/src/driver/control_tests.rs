//! The driver's control loop on the in-memory bus: which configs and triggers start a test, and
//! which are held, dropped, refused or ignored. The target is a closed local port, so a run's
//! requests end at once (as connect errors) and the tests are about control, not load.

use super::*;
use crate::bus::{Bus, MemoryBus};
use crate::driver::store::DriverStore;
use crate::driver::{Ctx, DriverConfig};
use crate::protocol::{self, MetricsReport, Register, RunState, SeedStyle, Topics};
use serde_json::json;
use std::sync::Mutex;
use tokio::sync::Notify;

const CLOSED: &str = "http://127.0.0.1:1/ping";

pub(super) struct Rig {
    pub(super) control: Control,
    pub(super) bus: MemoryBus,
    _dir: tempfile::TempDir,
}

pub(super) fn rig(default_target: Option<&str>) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = Topics::with_prefix("");
    let bus = MemoryBus::new(topics.clone());
    let cfg = DriverConfig {
        id: "me".into(),
        kafka: String::new(),
        orchestrator: String::new(),
        advertise: "127.0.0.1:1".into(),
        topics,
        store: dir.path().join("d.sqlite"),
        heartbeat_interval: Duration::from_secs(1),
        report_interval: Duration::from_millis(100),
        default_target: default_target.map(str::to_string),
        default_count: 7,
        capacity: None,
        seed: SeedStyle::default(),
        kafka_wait: Duration::from_secs(1),
        kafka_security: Default::default(),
    };
    let ctx = Arc::new(Ctx {
        store: DriverStore::open(&cfg.store).expect("store"),
        metrics: crate::metrics::driver::DriverMetrics::new("me", bus.stats().clone()),
        bus: Arc::new(bus.handle()),
        current: Mutex::new(None),
        outbox: Notify::new(),
        echo: Mutex::new(None),
        cfg,
    });
    Rig {
        control: Control::new(ctx),
        bus,
        _dir: dir,
    }
}

impl Rig {
    pub(super) async fn config(&mut self, c: serde_json::Value) {
        let t = self.control.ctx.cfg.topics.test_config.clone();
        self.control.handle(&t, c.to_string().as_bytes()).await;
    }

    pub(super) async fn trigger(&mut self, id: &str, start_at_ms: Option<u64>) {
        let t = self.control.ctx.cfg.topics.trigger.clone();
        let mut msg = json!({"test_id": id, "trigger": "YES"});
        if let Some(at) = start_at_ms {
            msg["start_at_ms"] = json!(at);
        }
        self.control.handle(&t, msg.to_string().as_bytes()).await;
    }

    pub(super) async fn control_msg(&mut self, raw: &str) {
        let t = self.control.ctx.cfg.topics.control.clone();
        self.control.handle(&t, raw.as_bytes()).await;
    }

    /// Waits for the running test (if any) to end, then returns the final reports owed.
    pub(super) async fn finals(&mut self) -> Vec<MetricsReport> {
        if let Some(a) = self.control.active.take() {
            tokio::time::timeout(Duration::from_secs(20), a.task)
                .await
                .expect("the run ends")
                .expect("the report loop does not panic");
        }
        self.control
            .ctx
            .store
            .undelivered()
            .await
            .expect("outbox")
            .iter()
            .map(|(_, p)| protocol::parse(p).expect("a report"))
            .collect()
    }

    /// Starts test `long`: a Tsunami of 100,000 requests 10 ms apart (it runs until stopped).
    pub(super) async fn run_long(&mut self) {
        let mut long = avalanche("long", 100_000);
        long["test_type"] = json!("TSUNAMI");
        long["delay_us"] = json!(10_000);
        self.config(long).await;
        self.trigger("long", None).await;
    }

    pub(super) fn malformed(&self) -> u64 {
        self.control
            .ctx
            .bus
            .stats()
            .malformed
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub(super) fn avalanche(id: &str, n: u64) -> serde_json::Value {
    json!({"test_id": id, "test_type": "AVALANCHE", "test_message_delay": 0, "message_count_per_driver": n, "target_url": CLOSED})
}

#[tokio::test]
async fn a_config_and_its_trigger_run_the_test_once() {
    let mut r = rig(None);
    r.config(avalanche("t1", 5)).await;
    r.trigger("t1", None).await;
    let finals = r.finals().await;
    assert_eq!(finals.len(), 1);
    let f = &finals[0];
    assert_eq!(
        (f.test_id.as_str(), f.requests_sent, f.is_final),
        ("t1", 5, true)
    );
    assert_eq!(f.errors.connect, 5, "nothing listens on the target");
    // The same test again (a replay, or a second trigger) never runs twice.
    r.config(avalanche("t1", 5)).await;
    r.trigger("t1", None).await;
    assert!(r.control.active.is_none(), "not started again");
}

#[tokio::test]
async fn an_early_trigger_is_held_for_its_config_and_dropped_after_the_grace() {
    let mut r = rig(None);
    r.trigger("early", None).await;
    assert!(r.control.active.is_none());
    r.config(avalanche("early", 2)).await;
    assert_eq!(
        r.finals().await.len(),
        1,
        "the held trigger ran once the config came"
    );

    r.trigger("late", None).await;
    r.control.prune(Instant::now() + TRIGGER_GRACE);
    r.config(avalanche("late", 2)).await;
    assert!(
        r.control.active.is_none(),
        "the trigger was dropped after the grace"
    );
}

#[tokio::test]
async fn a_stale_trigger_is_never_run() {
    let mut r = rig(None);
    r.config(avalanche("old", 2)).await;
    let long_ago = protocol::now_unix_ms() - STALE_START.as_millis() as u64 - 1_000;
    r.trigger("old", Some(long_ago)).await;
    assert!(r.control.active.is_none());
    assert!(!r.control.ctx.store.has_run("old").await.expect("store"));
}

#[tokio::test]
async fn pending_configs_are_capped_by_evicting_the_oldest() {
    let mut r = rig(None);
    for i in 0..=MAX_PENDING_CONFIGS {
        r.config(avalanche(&format!("c{i}"), 1)).await;
    }
    assert_eq!(r.control.configs.len(), MAX_PENDING_CONFIGS);
    assert!(!r.control.configs.contains_key("c0"), "the oldest went");
    assert!(r
        .control
        .configs
        .contains_key(&format!("c{MAX_PENDING_CONFIGS}")));
}

#[tokio::test]
async fn a_config_for_other_drivers_is_ignored() {
    let mut r = rig(None);
    let mut c = avalanche("theirs", 2);
    c["drivers"] = json!(["someone-else"]);
    r.config(c).await;
    r.trigger("theirs", None).await;
    assert!(r.control.active.is_none());
    assert!(r.finals().await.is_empty());
}

#[tokio::test]
async fn a_config_that_cannot_run_is_refused_once_with_a_report() {
    let mut r = rig(None);
    let no_target = json!({"test_id": "nt", "test_type": "AVALANCHE", "test_message_delay": 0});
    r.config(no_target.clone()).await;
    r.config(no_target).await;
    r.trigger("nt", None).await;
    let finals = r.finals().await;
    assert_eq!(
        finals.len(),
        1,
        "one report, however often the config comes"
    );
    let f = &finals[0];
    assert_eq!(f.test_status, Some(RunState::Refused));
    assert!(f.reason.as_deref().unwrap_or("").contains("no target URL"));
    assert_eq!((f.requests_sent, f.errors.total(), f.requests), (0, 0, 7));
    assert!(r.control.ctx.store.has_run("nt").await.expect("store"));

    let bad_rate = json!({"test_id": "br", "test_type": "AVALANCHE", "message_count_per_driver": 1,
                          "throughput_per_driver": 1e-300, "target_url": CLOSED});
    r.config(bad_rate).await;
    let f = r.finals().await;
    let f = f.iter().find(|f| f.test_id == "br").expect("refused");
    assert!(f
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("throughput_per_driver"));
}

/// Issue 10, items 5 and 7: a `test_config` from Kafka (a peer's orchestrator, or a hand-made
/// message) with figures that would panic a conversion, or with headers that would reframe the
/// request, is refused with a reason; the driver sends nothing and goes on working.
#[tokio::test]
async fn a_kafka_config_out_of_range_or_with_framing_headers_is_refused_without_panicking() {
    let mut r = rig(None);
    let smuggle = json!({"test_id": "sm", "test_type": "AVALANCHE", "message_count_per_driver": 3,
        "target": {"url": CLOSED, "method": "POST",
                   "headers": [["Content-Length", "0"]],
                   "body": "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"}});
    let cases = [
        (
            json!({"test_id": "dl", "test_type": "TSUNAMI", "test_message_delay": 1e300,
                "message_count_per_driver": 1, "target_url": CLOSED}),
            "test_message_delay",
        ),
        (
            json!({"test_id": "du", "test_type": "TSUNAMI", "delay_us": 1e300,
                "message_count_per_driver": 1, "target_url": CLOSED}),
            "delay_us",
        ),
        (smuggle, "Content-Length"),
        (
            json!({"test_id": "te", "test_type": "AVALANCHE", "message_count_per_driver": 3,
                "target": {"url": CLOSED, "headers": [["Transfer-Encoding", "chunked"]]}}),
            "Transfer-Encoding",
        ),
        (
            json!({"test_id": "crlf", "test_type": "AVALANCHE", "message_count_per_driver": 3,
                "target": {"url": CLOSED, "headers": [["X-A", "1\r\nX-B: 2"]]}}),
            "X-A",
        ),
    ];
    for (config, why) in cases {
        let id = config["test_id"].as_str().expect("id").to_string();
        r.config(config).await;
        r.trigger(&id, None).await;
        let finals = r.finals().await;
        let f = finals
            .iter()
            .find(|f| f.test_id == id)
            .expect("refused with a report");
        assert_eq!(
            (f.test_status, f.requests_sent),
            (Some(RunState::Refused), 0),
            "{id}"
        );
        let reason = f.reason.as_deref().unwrap_or("");
        assert!(reason.contains(why), "{id}: {reason}");
        assert!(r.control.active.is_none(), "{id} did not run");
    }
    // Still working.
    r.config(avalanche("ok", 2)).await;
    r.trigger("ok", None).await;
    let finals = r.finals().await;
    assert!(finals
        .iter()
        .any(|f| f.test_id == "ok" && f.requests_sent == 2));
}

/// Issue 10, item 8: an orchestrator that hears a heartbeat from a driver it has no
/// registration of asks it to register again; the driver does, at most once a second.
#[tokio::test]
async fn a_driver_registers_again_when_asked_and_only_when_meant() {
    let mut r = rig(None);
    let registrations = |r: &Rig| r.bus.messages(&r.control.ctx.cfg.topics.register).len();
    r.control_msg(r#"{"type":"register","node_id":"someone-else"}"#)
        .await;
    assert_eq!(registrations(&r), 0);
    r.control_msg(r#"{"type":"register"}"#).await;
    r.control_msg(r#"{"type":"register","node_id":"me"}"#).await;
    assert_eq!(
        registrations(&r),
        1,
        "once, however often asked within a second"
    );
    let sent: Register = protocol::parse(&r.bus.messages(&r.control.ctx.cfg.topics.register)[0])
        .expect("a registration");
    assert_eq!((sent.node_id.as_str(), sent.is_driver()), ("me", true));
    assert_eq!(r.malformed(), 0);
}

#[tokio::test]
async fn a_missing_count_uses_the_default_and_the_report_says_so() {
    let mut r = rig(Some(CLOSED));
    r.config(json!({"test_id": "d", "test_type": "TSUNAMI", "test_message_delay": 0}))
        .await;
    r.trigger("d", None).await;
    let f = r.finals().await;
    assert_eq!(f[0].requests_sent, 7);
    assert_eq!(
        f[0].defaults.get("message_count_per_driver"),
        Some(&json!(7))
    );
}

#[tokio::test]
async fn a_stop_on_the_control_topic_ends_the_run_early_and_unknown_commands_are_ignored() {
    let mut r = rig(None);
    r.run_long().await;
    assert!(r.control.active.is_some());
    r.control_msg(r#"{"type":"pause","test_id":"long"}"#).await;
    assert_eq!(r.malformed(), 0, "a newer command is not malformed");
    assert!(r.control.active.as_ref().is_some_and(|a| !a.stopping));
    r.control_msg(r#"{"type":"stop","test_id":"long"}"#).await;
    let f = r.finals().await;
    assert_eq!(f[0].test_status, Some(RunState::Stopped));
    assert!(f[0].requests_sent < 100_000);
    r.control_msg("EOT").await;
    assert_eq!(r.malformed(), 1);
    // Nothing of this went out on the seed's trigger topic.
    assert!(r.bus.messages(&r.control.ctx.cfg.topics.trigger).is_empty());
}

#[tokio::test]
async fn a_start_too_far_ahead_is_refused_and_a_waiting_test_gives_way_to_a_new_one() {
    let mut r = rig(None);
    let max = protocol::limits::MAX_START_AHEAD_MS;
    r.config(avalanche("far", 5)).await;
    r.trigger("far", Some(protocol::now_unix_ms() + 3_600_000))
        .await;
    assert!(
        r.control.active.is_none(),
        "an hour ahead is never waited for"
    );
    let f = r.finals().await;
    assert_eq!(f[0].test_status, Some(RunState::Refused));
    assert!(
        f[0].reason
            .as_deref()
            .unwrap_or("")
            .contains("at most 300 s ahead"),
        "{:?}",
        f[0].reason
    );

    // Within the bound, a test waits for its start; a newer trigger releases the driver.
    r.config(avalanche("waiting", 5)).await;
    r.trigger("waiting", Some(protocol::now_unix_ms() + max - 1_000))
        .await;
    assert!(r
        .control
        .active
        .as_ref()
        .is_some_and(|a| a.test_id == "waiting"));
    r.config(avalanche("next", 5)).await;
    r.trigger("next", None).await;
    assert!(
        r.control
            .active
            .as_ref()
            .is_some_and(|a| a.test_id == "next"),
        "the new test runs"
    );
    let finals = r.finals().await;
    let by_id = |id: &str| finals.iter().find(|f| f.test_id == id).expect(id).clone();
    let waiting = by_id("waiting");
    assert_eq!(
        (waiting.test_status, waiting.requests_sent),
        (Some(RunState::Stopped), 0)
    );
    assert_eq!(by_id("next").requests_sent, 5);
}

#[tokio::test]
async fn a_stop_releases_a_driver_waiting_for_a_start() {
    let mut r = rig(None);
    r.config(avalanche("waiting", 5)).await;
    r.trigger("waiting", Some(protocol::now_unix_ms() + 200_000))
        .await;
    r.control_msg(r#"{"type":"stop","test_id":"waiting"}"#)
        .await;
    let f = r.finals().await;
    assert_eq!(
        (f[0].test_status, f[0].requests_sent),
        (Some(RunState::Stopped), 0)
    );
}

#[tokio::test]
async fn only_a_floodgate_orchestrator_s_beat_is_kept_for_the_echo() {
    let mut r = rig(None);
    let t = r.control.ctx.cfg.topics.heartbeat.clone();
    let echo = |r: &Rig| r.control.ctx.echo.lock().expect("lock").clone();
    // A driver's beat, a seed orchestrator's (no agent), one without `sent_us`, and garbage:
    // nothing to echo, and the garbage is counted.
    for beat in [
        json!({"node_id": "d2", "heartbeat": "YES", "role": "driver", "agent": "floodgate", "sent_us": 5}),
        json!({"node_id": "o", "heartbeat": "YES", "role": "orchestrator", "sent_us": 5}),
        json!({"node_id": "o", "heartbeat": "YES", "role": "orchestrator", "agent": "floodgate"}),
    ] {
        r.control.handle(&t, beat.to_string().as_bytes()).await;
    }
    r.control.handle(&t, b"{not json").await;
    assert_eq!(echo(&r), None);
    assert_eq!(r.malformed(), 1);
    let before = protocol::now_unix_us();
    let beat = json!({"node_id": "o", "heartbeat": "YES", "role": "orchestrator", "agent": "floodgate", "sent_us": "17"});
    r.control.handle(&t, beat.to_string().as_bytes()).await;
    let e = echo(&r).expect("kept");
    assert_eq!((e.orchestrator.as_str(), e.orchestrator_sent_us), ("o", 17));
    assert!(e.received_us >= before, "stamped on receipt");
}

#[tokio::test]
async fn a_rate_change_is_applied_once_and_only_to_this_driver_s_running_test() {
    let mut r = rig(None);
    r.run_long().await;
    let at = protocol::now_unix_ms() + 200;
    let set = |test: &str, seq: u64, rates: &str| {
        format!(
            r#"{{"type":"set_rate","test_id":"{test}","seq":{seq},"at_ms":{at},"rates":{rates}}}"#
        )
    };
    let applied = |r: &Rig| -> Vec<(u64, u64)> {
        let a = r.control.active.as_ref().expect("running");
        (a.running.snapshot().retimes.iter())
            .map(|t| (t.tag, t.gap.as_micros() as u64))
            .collect()
    };
    r.control_msg(&set("long", 1, r#"{"me": 1000, "other": 5}"#))
        .await;
    assert_eq!(applied(&r), [(1, 1_000)]);
    // Read twice, another test's, or naming only other drivers: nothing more.
    r.control_msg(&set("long", 1, r#"{"me": 50}"#)).await;
    r.control_msg(&set("elsewhere", 2, r#"{"me": 50}"#)).await;
    r.control_msg(&set("long", 2, r#"{"other": 50}"#)).await;
    assert_eq!(applied(&r), [(1, 1_000)]);
    assert_eq!(r.malformed(), 0);
    // Out of range, or not a set_rate at all: counted and skipped.
    r.control_msg(&set("long", 3, r#"{"me": 0}"#)).await;
    r.control_msg(r#"{"type":"set_rate","test_id":"long","rate":5}"#)
        .await;
    assert_eq!(r.malformed(), 2);
    r.control_msg(&set("long", 4, r#"{"me": true}"#)).await;
    assert_eq!(r.malformed(), 3, "a rate is a number");
    // A numeric string is a number, as everywhere on the wire.
    r.control_msg(&set("long", 5, r#"{"me": "250"}"#)).await;
    assert_eq!(applied(&r), [(1, 1_000), (5, 4_000)]);
    r.control_msg(r#"{"type":"stop","test_id":"long"}"#).await;
    let f = r.finals().await;
    assert_eq!(
        f[0].rate_changes
            .iter()
            .map(|c| (c.seq, c.rate))
            .collect::<Vec<_>>(),
        [(1, 1000.0), (5, 250.0)]
    );
}
