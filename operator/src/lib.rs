//! Floodgate's Kubernetes operator: watches `LoadTest` resources, scales a driver Deployment per
//! LoadTest, and runs the test through the same orchestrator as `floodgate orchestrator` (the
//! `floodgate` library), writing progress and results into the LoadTest's status.

pub mod configmaps;
pub mod controller;
pub mod counters;
pub mod crd;
pub mod hand_over;
pub mod input;
pub mod plan;
pub mod rate;
pub mod resources;
pub mod secrets;
pub mod takeover;
