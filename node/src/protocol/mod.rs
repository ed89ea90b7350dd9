//! The wire protocol: the seed's five Kafka messages plus Floodgate's extensions and its own
//! control topic, as serde types. It knows no node role.
//!
//! Parsing is liberal, because the public implementations of the same spec put different JSON
//! on these topics (numbers or numeric strings, latencies with units, any case of `TSUNAMI`,
//! `node_IP`/`node_ip`, `heartbeat` as `"YES"` or `true`, a target named `target_url` or
//! `test_server`, no counts at all). Emitting is strict: the seed's field names in the
//! configured [`SeedStyle`], plus exact extension fields that Floodgate's own nodes prefer and
//! that seed parsers ignore. Floodgate's control messages (stop) travel on a topic of their own
//! that seed nodes never read. See `docs/protocol.md` for every field, with units.

mod config;
mod control;
pub mod hand_over;
pub mod lenient;
pub mod limits;
mod metrics;
pub mod mix;
mod pace;
mod presence;
pub mod rate;
pub mod share;
pub mod style;
mod timing;
pub mod transport;

pub use config::{ConfigError, HttpTarget, TestConfig, TestType};
pub use control::{Control, Trigger, TriggerAction};
pub use hand_over::{HandOverPart, TookOver};
pub use metrics::{
    ErrorCounts, HandshakeFields, LatencyFields, MetricsReport, RunState, StatusClasses,
};
pub use mix::{Checks, ChecksFailed, JsonCheck, MixEntry, RequestReport, StatusSet};
pub use pace::{GeneratorLoad, StageProgress};
pub use presence::{
    ClockEcho, Heartbeat, Register, Role, AGENT, DRIVER_REGISTER, ORCHESTRATOR_REGISTER,
};
pub use rate::AppliedRate;
pub use share::ConfigShare;
pub use style::{DelayUnit, NumberStyle, SeedStyle, TypeCase};
pub use timing::{RateStage, TimeBound};
pub use transport::{HttpVersion, TlsSettings, Transport};

use serde::{Deserialize, Serialize};

/// The topic names, each overridable (flag or environment) so that several clusters or test
/// runs can share one broker, or so that a peer using other names can be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    pub register: String,
    pub test_config: String,
    pub trigger: String,
    pub metrics: String,
    pub heartbeat: String,
    /// Floodgate's own control messages (stop): a topic no seed node reads.
    pub control: String,
}

impl Topics {
    /// The seed's names (and `floodgate.control`), each with `prefix` in front.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            register: format!("{prefix}register"),
            test_config: format!("{prefix}test_config"),
            trigger: format!("{prefix}trigger"),
            metrics: format!("{prefix}metrics"),
            heartbeat: format!("{prefix}heartbeat"),
            control: format!("{prefix}floodgate.control"),
        }
    }

    pub fn all(&self) -> [&str; 6] {
        [
            &self.register,
            &self.test_config,
            &self.trigger,
            &self.metrics,
            &self.heartbeat,
            &self.control,
        ]
    }
}

/// Why a message on a topic could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not valid UTF-8 JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    Invalid(String),
}

/// Parses one message, telling "not JSON at all" (stray `EOT` markers) from "JSON we cannot use".
pub fn parse<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, ParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| ParseError::NotJson(e.to_string()))?;
    parse_value(value)
}

/// [`parse`] for a message already read as JSON.
pub fn parse_value<T: for<'de> Deserialize<'de>>(
    value: serde_json::Value,
) -> Result<T, ParseError> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    T::deserialize(de).map_err(|e| {
        let path = track.path().to_string();
        if path == "." {
            ParseError::Invalid(e.to_string())
        } else {
            ParseError::Invalid(format!("{path}: {e}"))
        }
    })
}

/// Strict emission: the canonical JSON of a message.
pub fn emit<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (string keys, finite numbers), so an empty
    // payload would only ever signal a programming error.
    serde_json::to_vec(msg).unwrap_or_default()
}

/// The current wall-clock time as an RFC 3339 string, for `heartbeat.timestamp`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Microseconds since the Unix epoch.
pub fn now_unix_us() -> u64 {
    unix_us(std::time::SystemTime::now())
}

/// An instant as microseconds since the Unix epoch (0 before it).
pub fn unix_us(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
