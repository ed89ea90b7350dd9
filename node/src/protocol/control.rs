//! `trigger` (the seed's start signal) and Floodgate's own control topic.
//!
//! The seed's `trigger` topic carries only `"trigger": "YES"`: seed drivers start (or re-run, or
//! crash on) any other value, so Floodgate never writes one there. Stopping a test, and later
//! changing its rate (`set_rate`), goes on the control topic (`floodgate.control`), which seed nodes never read.

use super::lenient::{any_as_id, lenient_opt_u64, lenient_u64, opt_id};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

/// What a `trigger` message asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerAction {
    /// The seed's `"YES"`: start the configured test.
    Start,
    /// `"STOP"`, as Floodgate 0.1 orchestrators sent on `trigger`; still obeyed when read, never
    /// written (Floodgate now stops tests through [`Control::Stop`]).
    Stop,
}

impl Serialize for TriggerAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            TriggerAction::Start => "YES",
            TriggerAction::Stop => "STOP",
        })
    }
}

impl<'de> Deserialize<'de> for TriggerAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(TriggerAction::Start),
            serde_json::Value::Bool(false) => Ok(TriggerAction::Stop),
            serde_json::Value::String(s) => match s.trim().to_ascii_uppercase().as_str() {
                "YES" | "TRUE" | "START" => Ok(TriggerAction::Start),
                "STOP" | "NO" | "FALSE" => Ok(TriggerAction::Stop),
                _ => Err(de::Error::custom(format!("unknown trigger {s:?}"))),
            },
            other => Err(de::Error::custom(format!("unknown trigger {other}"))),
        }
    }
}

/// `trigger` topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(alias = "testId", alias = "test_ID", deserialize_with = "any_as_id")]
    pub test_id: String,
    pub trigger: TriggerAction,
    /// Unix time in milliseconds at which every driver starts, so that all begin together.
    #[serde(
        default,
        deserialize_with = "lenient_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_at_ms: Option<u64>,
}

impl Trigger {
    /// The seed's start signal, with Floodgate's common start instant.
    pub fn start(test_id: &str, start_at_ms: u64) -> Self {
        Self {
            test_id: test_id.to_string(),
            trigger: TriggerAction::Start,
            start_at_ms: Some(start_at_ms),
        }
    }
}

/// `floodgate.control` topic: Floodgate's own commands to its drivers. A message of a type a
/// driver does not know is ignored, so newer orchestrators can add commands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// Stop a running test early; the drivers still send their final reports.
    Stop {
        #[serde(deserialize_with = "any_as_id")]
        test_id: String,
        #[serde(
            default,
            deserialize_with = "opt_id",
            skip_serializing_if = "Option::is_none"
        )]
        orchestrator_id: Option<String>,
    },
    /// Change a running test's pace (issue 13): from `at_ms` on, each driver named in `rates`
    /// sends at its new rate, continuing its absolute schedule from there. `seq` numbers the
    /// test's changes from 1, so a command read twice is applied once. A driver not named, or
    /// not running the test, ignores it.
    SetRate {
        #[serde(deserialize_with = "any_as_id")]
        test_id: String,
        #[serde(
            default,
            deserialize_with = "opt_id",
            skip_serializing_if = "Option::is_none"
        )]
        orchestrator_id: Option<String>,
        #[serde(deserialize_with = "lenient_u64")]
        seq: u64,
        /// Unix time in milliseconds at which every driver switches.
        #[serde(deserialize_with = "lenient_u64")]
        at_ms: u64,
        /// The new pace of each driver, requests/s (see [`super::rate::checked_rates`]).
        #[serde(deserialize_with = "super::rate::lenient_rates")]
        rates: BTreeMap<String, f64>,
    },
    /// Hand a lost driver's unsent share to others (issue 13): each driver named in `parts`
    /// adds its `requests` to its count at once and, from `at_ms` on, sends at its `rate`. A
    /// named driver not running the test joins it with `config` (the test's `test_config`,
    /// giving it its share), starting at `at_ms`. The driver `from`, if it hears this, stops.
    /// `seq` is in the test's numbering of pace changes, so a command read twice is applied
    /// once and a later rate change is numbered after it.
    HandOver {
        #[serde(deserialize_with = "any_as_id")]
        test_id: String,
        #[serde(
            default,
            deserialize_with = "opt_id",
            skip_serializing_if = "Option::is_none"
        )]
        orchestrator_id: Option<String>,
        #[serde(deserialize_with = "lenient_u64")]
        seq: u64,
        #[serde(deserialize_with = "lenient_u64")]
        at_ms: u64,
        #[serde(deserialize_with = "any_as_id")]
        from: String,
        /// Checked by [`super::hand_over::checked_parts`].
        parts: BTreeMap<String, super::HandOverPart>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<serde_json::Value>,
    },
    /// Register again: the orchestrator hears heartbeats from a node it has no registration of
    /// (it started after the node registered, or forgot it), and only a registration makes a
    /// driver. `node_id` names the node; absent, every driver answers.
    Register {
        #[serde(
            default,
            deserialize_with = "opt_id",
            skip_serializing_if = "Option::is_none"
        )]
        node_id: Option<String>,
        #[serde(
            default,
            deserialize_with = "opt_id",
            skip_serializing_if = "Option::is_none"
        )]
        orchestrator_id: Option<String>,
    },
}
