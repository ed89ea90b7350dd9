//! Floodgate's node library: the wire protocol, the load engine, the Kafka bus, and the driver
//! and orchestrator roles that the `floodgate` binary (and the Kubernetes operator) run.

pub mod api;
pub mod app;
pub mod bus;
pub mod cli;
pub mod client;
pub mod driver;
pub mod engine;
pub mod http;
pub mod load_mix;
pub mod metrics;
pub mod model;
pub mod orchestrator;
pub mod protocol;
pub mod report;
pub mod schedule;
pub mod secrets;
pub mod sqlite;
pub mod stats;
pub mod telemetry;
pub mod thresholds;

#[cfg(test)]
#[path = "architecture_tests.rs"]
mod architecture_tests;
