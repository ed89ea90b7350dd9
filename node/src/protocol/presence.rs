//! `register` and `heartbeat`: who is there, and who is still alive.

use super::lenient::{any_as_id, any_as_text, lenient_number, lenient_opt_u64, opt_id, opt_text};
use super::limits::{MAX_CAPACITY, MIN_CAPACITY};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// Seed value of `register.message_type` for drivers.
pub const DRIVER_REGISTER: &str = "DRIVER_NODE_REGISTER";
/// Floodgate's value of `register.message_type` for the orchestrator's own registration.
pub const ORCHESTRATOR_REGISTER: &str = "ORCHESTRATOR_NODE_REGISTER";
/// The `agent` extension Floodgate's nodes put in `register` and `heartbeat`: it tells an
/// orchestrator which nodes speak the extensions (final reports, test IDs in heartbeats).
pub const AGENT: &str = "floodgate";

/// Which kind of node sent a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Driver,
    Orchestrator,
}

/// `register` topic. A registration names its node and carries `node_IP` or `message_type`
/// (older implementations left one of them out, never both), so other JSON that merely has a
/// `node_id` is not mistaken for a new driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RegisterWire")]
pub struct Register {
    pub node_id: String,
    #[serde(rename = "node_IP")]
    pub node_ip: String,
    pub message_type: String,
    // --- Floodgate extensions ---
    pub role: Role,
    /// The orchestrator address the node was told on its command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `floodgate` on Floodgate's nodes; absent on other implementations'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The node's heartbeat interval, so that liveness is judged against it from the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_ms: Option<u64>,
    /// The driver's declared capacity (issue 13: cores, or its pod's CPU), by which a test given
    /// in totals is shared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<f64>,
}

#[derive(Deserialize)]
struct RegisterWire {
    #[serde(
        alias = "node_ID",
        alias = "nodeId",
        alias = "id",
        deserialize_with = "any_as_id"
    )]
    node_id: String,
    #[serde(
        rename = "node_IP",
        alias = "node_ip",
        alias = "node_Ip",
        alias = "nodeIp",
        default,
        deserialize_with = "opt_text"
    )]
    node_ip: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    message_type: Option<String>,
    #[serde(default)]
    role: Role,
    #[serde(default, deserialize_with = "opt_text")]
    orchestrator: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    version: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    agent: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    heartbeat_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_capacity")]
    capacity: Option<f64>,
}

impl TryFrom<RegisterWire> for Register {
    type Error = String;

    fn try_from(w: RegisterWire) -> Result<Self, String> {
        if w.node_ip.is_none() && w.message_type.is_none() {
            return Err("a registration needs node_IP or message_type".into());
        }
        if w.node_id.trim().is_empty() {
            return Err("node_id is empty".into());
        }
        Ok(Register {
            node_id: w.node_id,
            node_ip: w.node_ip.unwrap_or_default(),
            message_type: w
                .message_type
                .unwrap_or_else(|| DRIVER_REGISTER.to_string()),
            role: w.role,
            orchestrator: w.orchestrator,
            version: w.version,
            agent: w.agent,
            heartbeat_ms: w.heartbeat_ms,
            capacity: w.capacity,
        })
    }
}

impl Register {
    /// A registration is a driver's unless it says otherwise in either field.
    pub fn is_driver(&self) -> bool {
        self.role == Role::Driver
            && !self
                .message_type
                .eq_ignore_ascii_case(ORCHESTRATOR_REGISTER)
    }
}

/// `heartbeat` topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    #[serde(alias = "node_ID", alias = "nodeId", deserialize_with = "any_as_id")]
    pub node_id: String,
    /// Required: JSON without it is not a heartbeat, whatever else it holds.
    #[serde(deserialize_with = "lenient_yes")]
    pub heartbeat: String,
    /// Sender's clock, informational only: liveness is judged by the time of receipt.
    #[serde(default, deserialize_with = "any_as_text")]
    pub timestamp: String,
    // --- Floodgate extensions, so that a restarted orchestrator learns of running drivers ---
    #[serde(
        rename = "node_IP",
        alias = "node_ip",
        default,
        deserialize_with = "opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub node_ip: Option<String>,
    #[serde(default)]
    pub role: Role,
    /// The test the node is running, if any.
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub test_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub agent: Option<String>,
    /// The interval at which this node beats.
    #[serde(
        default,
        deserialize_with = "lenient_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub heartbeat_ms: Option<u64>,
    /// As in `register`, so that a restarted orchestrator learns it before the registration.
    #[serde(
        default,
        deserialize_with = "lenient_capacity",
        skip_serializing_if = "Option::is_none"
    )]
    pub capacity: Option<f64>,
    /// The sender's clock when it emitted the beat, in µs since the Unix epoch (issue 13): with
    /// [`ClockEcho`] it is how the orchestrator estimates each driver's clock offset.
    #[serde(
        default,
        deserialize_with = "lenient_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub sent_us: Option<u64>,
    /// A driver's echo of the latest orchestrator beat it heard.
    #[serde(
        default,
        deserialize_with = "lenient_echo",
        skip_serializing_if = "Option::is_none"
    )]
    pub clock: Option<ClockEcho>,
}

/// The orchestrator beat a driver heard last, echoed in the driver's own beat: the orchestrator
/// then holds the four instants of an NTP exchange (its send, the driver's receipt, the driver's
/// send, its receipt) and so bounds the driver's clock offset (see `orchestrator::clock`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEcho {
    /// Whose beat it was, so an orchestrator uses only echoes of its own.
    pub orchestrator: String,
    /// That beat's `sent_us` (the orchestrator's clock).
    pub orchestrator_sent_us: u64,
    /// When the driver received it (the driver's clock).
    pub received_us: u64,
}

/// An echo as any node may send it; one that is incomplete or not numbers counts as absent
/// rather than spoiling the beat.
fn lenient_echo<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ClockEcho>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    Ok(
        match (
            v.get("orchestrator").and_then(|o| o.as_str()),
            n("orchestrator_sent_us"),
            n("received_us"),
        ) {
            (Some(o), Some(t1), Some(t2)) if !o.is_empty() => Some(ClockEcho {
                orchestrator: o.to_string(),
                orchestrator_sent_us: t1,
                received_us: t2,
            }),
            _ => None,
        },
    )
}

impl Heartbeat {
    /// Whether the sender is a Floodgate node (it speaks the extensions).
    pub fn is_floodgate(&self) -> bool {
        self.agent.as_deref() == Some(AGENT)
    }
}

fn lenient_yes<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(true) => Ok("YES".to_string()),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("yes") || s == "true" => {
            Ok("YES".to_string())
        }
        other => Err(de::Error::custom(format!(
            "heartbeat must be \"YES\" or true, got {other}"
        ))),
    }
}

/// A capacity as any node may send it (a number or a numeric string); one out of range or not
/// a number counts as undeclared rather than spoiling the registration.
fn lenient_capacity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(lenient_number(d)
        .ok()
        .flatten()
        .filter(|c| (MIN_CAPACITY..=MAX_CAPACITY).contains(c)))
}
