//! Who takes part in a test: the participants picked among the alive drivers for a new test,
//! and the check of a participant list given from outside (an adopted test's). Pure.

use super::spec::TestSpec;
use super::OrchestratorError;
use crate::protocol::limits::{MAX_DRIVERS, MIN_DRIVERS};

/// Picks a test's participants among the alive drivers (in the order they were first seen):
/// exactly `driver_ids` if given (all alive), else the first `drivers`, else every alive one up
/// to the maximum; never fewer than the minimum.
pub fn participants(spec: &TestSpec, alive: &[String]) -> Result<Vec<String>, OrchestratorError> {
    if let Some(ids) = &spec.driver_ids {
        let missing: Vec<&str> = ids
            .iter()
            .filter(|i| !alive.contains(i))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(OrchestratorError::Conflict(format!(
                "driver(s) not alive: {}",
                missing.join(", ")
            )));
        }
        return Ok(ids.clone());
    }
    let want = spec
        .drivers
        .map(|n| n as usize)
        .unwrap_or(alive.len().min(MAX_DRIVERS))
        .max(MIN_DRIVERS);
    if alive.len() < want {
        return Err(OrchestratorError::Conflict(format!(
            "a test needs {want} to {MAX_DRIVERS} alive drivers; {} alive",
            alive.len()
        )));
    }
    Ok(alive.iter().take(want).cloned().collect())
}

/// A participant list from outside (an adopted test's): 2–8 distinct, non-empty IDs.
pub(super) fn check_participants(drivers: &[String]) -> Result<(), OrchestratorError> {
    let distinct: std::collections::BTreeSet<&String> = drivers.iter().collect();
    let fine = (MIN_DRIVERS..=MAX_DRIVERS).contains(&drivers.len())
        && distinct.len() == drivers.len()
        && drivers.iter().all(|d| !d.is_empty());
    if fine {
        return Ok(());
    }
    Err(OrchestratorError::Conflict(format!(
        "a test needs {MIN_DRIVERS} to {MAX_DRIVERS} distinct, non-empty driver IDs; got {} ({} distinct)",
        drivers.len(),
        distinct.len()
    )))
}
