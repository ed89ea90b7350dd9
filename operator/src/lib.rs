//! Floodgate's Kubernetes operator: a placeholder until the operator issue lands.
//!
//! The operator will watch `LoadTest` resources and run the orchestrator logic of the
//! `floodgate` node library; nothing here yet.
