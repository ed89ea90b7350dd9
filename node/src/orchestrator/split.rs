//! How a test given in totals (`total_requests`, `total_rate`) is shared among its
//! participants: in proportion to each driver's capacity, exact to the request. Pure.
//!
//! - **Weights.** A driver's declared capacity (`capacity` in its registration: cores, or a pod's
//!   CPU), or its measured one (`split: measured`: the capacity the caller found for it, see
//!   `measured`), or 1 for every driver when the test asks for an equal split. A driver that declared
//!   none (another implementation's, or an older Floodgate) weighs the mean of those that did,
//!   or 1 when none did: it is neither starved nor overloaded on a guess.
//! - **Drivers of other implementations read only the seed's per-driver fields**, so each runs
//!   the broadcast figures: the total count divided evenly (rounded down) and the mean rate
//!   (the total over the participants). Floodgate's drivers share the rest by weight, so the
//!   test still sends exactly the total and holds the total rate.
//! - **Counts** are split by largest remainder: each share is its exact proportion rounded down,
//!   and the requests left over go one each to the largest fractions (ties to the earlier
//!   participant), so the shares add up to the total and none is off its proportion by one.
//! - **Rates** follow the same weights as a scale on the test's per-driver rate (the total rate
//!   over the participants), so every driver needs about as long for its share.

use crate::protocol::ConfigShare;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One participant as the split sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub id: String,
    /// A Floodgate driver reads its share from `test_config.shares`; another one reads only the
    /// seed's per-driver fields.
    pub floodgate: bool,
    /// The capacity it declared, if any.
    pub capacity: Option<f64>,
}

/// How the weights are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitBy {
    /// By declared capacity (the default).
    #[default]
    Capacity,
    /// The same share for every participant.
    Equal,
    /// By measured capacity: each driver's unpaced rate against the same target in an earlier
    /// test (see `measured`), given to the split as its capacity.
    Measured,
}

impl SplitBy {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// One driver's part of a test given in totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub driver_id: String,
    /// Requests it is to send (the count-bound test's share of `total_requests`).
    pub requests: u64,
    /// Its rate over the test's per-driver rate: its weight times the participants over the sum
    /// of the weights (1 for an equal split).
    pub rate_scale: f64,
    /// The weight it was given, and whether it was declared (false: assumed).
    pub weight: f64,
    pub declared: bool,
    /// Whether it reads its share (a Floodgate driver) or runs the broadcast figures.
    pub floodgate: bool,
}

/// What a split comes to: the broadcast per-driver count (what drivers of other implementations
/// send) and every participant's share, in the participants' order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub by: SplitBy,
    pub per_driver: u64,
    pub shares: Vec<Share>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// No participant can take an uneven share, and the total does not divide evenly.
    Indivisible {
        total: u64,
        drivers: usize,
    },
    NoParticipants,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::Indivisible { total, drivers } => write!(
                f,
                "{total} is not a multiple of the {drivers} participating drivers, and none of \
                 them is a Floodgate driver (drivers of other implementations read only the \
                 seed's per-driver count)"
            ),
            SplitError::NoParticipants => write!(f, "there are no participants to share it"),
        }
    }
}

impl std::error::Error for SplitError {}

/// Shares `total` requests (0 for a test with no count, whose rate alone is shared) among
/// `members`.
pub fn split(total: u64, members: &[Member], by: SplitBy) -> Result<Split, SplitError> {
    let n = members.len();
    if n == 0 {
        return Err(SplitError::NoParticipants);
    }
    let weights = weights(members, by);
    let per_driver = total / n as u64;
    let others = members.iter().filter(|m| !m.floodgate).count();
    let ours: Vec<usize> = (0..n).filter(|&i| members[i].floodgate).collect();
    if ours.is_empty() && !total.is_multiple_of(n as u64) {
        return Err(SplitError::Indivisible { total, drivers: n });
    }
    // What Floodgate's drivers share: the total less the broadcast count of each other driver,
    // and the rate of the participants that are theirs.
    let rest = total - per_driver * others as u64;
    let our_weights: Vec<f64> = ours.iter().map(|&i| weights[i].0).collect();
    let counts = largest_remainder(rest, &our_weights);
    let sum: f64 = our_weights.iter().sum();
    let mut shares: Vec<Share> = members
        .iter()
        .zip(&weights)
        .map(|(m, &(weight, declared))| Share {
            driver_id: m.id.clone(),
            requests: per_driver,
            rate_scale: 1.0,
            weight,
            declared,
            floodgate: m.floodgate,
        })
        .collect();
    for (k, &i) in ours.iter().enumerate() {
        shares[i].requests = counts[k];
        shares[i].rate_scale = ours.len() as f64 * our_weights[k] / sum;
    }
    Ok(Split {
        by,
        per_driver,
        shares,
    })
}

impl Split {
    /// The shares as `test_config` carries them: Floodgate's drivers only (the others run the
    /// broadcast figures), with a count when the total was a count.
    pub fn wire(&self, with_count: bool) -> BTreeMap<String, ConfigShare> {
        self.shares
            .iter()
            .filter(|s| s.floodgate)
            .map(|s| {
                let share = ConfigShare {
                    request_count: with_count.then_some(s.requests),
                    rate_scale: s.rate_scale,
                };
                (s.driver_id.clone(), share)
            })
            .collect()
    }
}

/// Each member's weight, and whether it was declared.
fn weights(members: &[Member], by: SplitBy) -> Vec<(f64, bool)> {
    let usable = |c: Option<f64>| c.filter(|c| c.is_finite() && *c > 0.0);
    if by == SplitBy::Equal {
        return members.iter().map(|_| (1.0, false)).collect();
    }
    let known: Vec<f64> = members.iter().filter_map(|m| usable(m.capacity)).collect();
    let assumed = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    members
        .iter()
        .map(|m| match usable(m.capacity) {
            Some(c) => (c, true),
            None => (assumed, false),
        })
        .collect()
}

/// `total` in proportion to `weights` (all positive), adding up exactly.
pub(super) fn largest_remainder(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    // Exact shares as f64 are good to 2^53 requests; limits cap a total far below.
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut counts: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let given: u64 = counts.iter().sum();
    // Float rounding can leave the floors a request over the total; take it back first.
    let mut left = total.saturating_sub(given);
    let mut over = given.saturating_sub(total);
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let fa = exact[a] - exact[a].floor();
        let fb = exact[b] - exact[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order.iter().rev() {
        if over == 0 {
            break;
        }
        if counts[i] > 0 {
            counts[i] -= 1;
            over -= 1;
        }
    }
    for &i in order.iter().cycle().take(weights.len() * 2) {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    counts
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
