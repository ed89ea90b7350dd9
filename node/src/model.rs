//! The vocabulary of a test's life, shared by every stage that shows or acts on it (the
//! orchestrator, the REST API and its clients, reports, the operator): typed states with one
//! name each on the wire, so no stage matches on strings.

use serde::{Deserialize, Serialize};

/// A test's status; it only moves forward (created → running → completed | failed | stopped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Created,
    Running,
    Completed,
    Failed,
    Stopped,
}

impl TestStatus {
    pub const ALL: [TestStatus; 5] = [
        TestStatus::Created,
        TestStatus::Running,
        TestStatus::Completed,
        TestStatus::Failed,
        TestStatus::Stopped,
    ];

    /// Its name on the wire and in the store (`running`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Created => "created",
            TestStatus::Running => "running",
            TestStatus::Completed => "completed",
            TestStatus::Failed => "failed",
            TestStatus::Stopped => "stopped",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TestStatus::Completed | TestStatus::Failed | TestStatus::Stopped
        )
    }
}

/// Where one participant is in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverState {
    Waiting,
    Running,
    Done,
    Lost,
    Refused,
}

impl DriverState {
    pub fn as_str(self) -> &'static str {
        match self {
            DriverState::Waiting => "waiting",
            DriverState::Running => "running",
            DriverState::Done => "done",
            DriverState::Lost => "lost",
            DriverState::Refused => "refused",
        }
    }
}

/// How a driver's part of a test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ended {
    /// A report marked `final` (Floodgate's drivers).
    Final,
    /// A `test_status` saying it is over (`complete`, `done`, …).
    Status,
    /// A reported request count that reached the configured count.
    Count,
    /// No completion signal: its reports stopped changing for the quiet period.
    Quiet,
}

impl Ended {
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Final => "final",
            Ended::Status => "status",
            Ended::Count => "count",
            Ended::Quiet => "quiet",
        }
    }
}

/// How a driver reports: Floodgate's sequenced, cumulative reports, or the seed's summaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Floodgate,
    Seed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_serialized_form() {
        for s in TestStatus::ALL {
            assert_eq!(serde_json::to_value(s).ok(), Some(s.as_str().into()));
        }
        for d in [
            DriverState::Waiting,
            DriverState::Running,
            DriverState::Done,
            DriverState::Lost,
            DriverState::Refused,
        ] {
            assert_eq!(serde_json::to_value(d).ok(), Some(d.as_str().into()));
        }
        for e in [Ended::Final, Ended::Status, Ended::Count, Ended::Quiet] {
            assert_eq!(serde_json::to_value(e).ok(), Some(e.as_str().into()));
        }
    }
}
