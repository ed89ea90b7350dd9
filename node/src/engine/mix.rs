//! Which request each request index sends (issue 12, item 3). A mix's entries are laid out by
//! weight in one cycle of `W = sum of weights` slots, by smooth weighted round-robin, and
//! request `i` sends entry `cycle[i % W]`. The counts per entry are then exact and reproducible
//! for any count ([`counts`]): every `W` consecutive requests hold exactly `weight` of each
//! entry, interleaved rather than in runs, whichever worker claims which index.

use super::check::Checker;
use super::request::PreparedRequest;

/// One request of a mix, as the engine sends it.
#[derive(Clone, Debug)]
pub struct MixRequest {
    pub request: PreparedRequest,
    pub weight: u32,
    /// Its own checks; `None` takes the test's.
    pub checker: Option<Checker>,
}

/// A test's requests: one, or a mix; and the checks of each.
#[derive(Debug)]
pub(crate) struct Requests {
    entries: Box<[(PreparedRequest, Checker)]>,
    cycle: Box<[u8]>,
    /// A mix (figures kept per entry), rather than the one request of a seed test.
    named: bool,
}

impl Requests {
    pub fn new(one: PreparedRequest, checker: Checker, mix: Vec<MixRequest>) -> Requests {
        if mix.is_empty() {
            return Requests {
                entries: vec![(one, checker)].into_boxed_slice(),
                cycle: vec![0].into_boxed_slice(),
                named: false,
            };
        }
        let weights: Vec<u32> = mix.iter().map(|m| m.weight).collect();
        Requests {
            cycle: cycle(&weights).into_boxed_slice(),
            entries: mix
                .into_iter()
                .map(|m| (m.request, m.checker.unwrap_or_else(|| checker.clone())))
                .collect(),
            named: true,
        }
    }

    /// The entry request `index` sends, and its position in the mix.
    #[inline]
    pub fn pick(&self, index: u64) -> (usize, &PreparedRequest, &Checker) {
        // `cycle` is never empty and its values index `entries`. One request (the seed's test)
        // skips the division: this runs once per request.
        let k = match self.cycle.len() {
            1 => 0,
            w => usize::from(self.cycle[(index % w as u64) as usize]),
        };
        let (r, c) = &self.entries[k];
        (k, r, c)
    }

    /// Entries whose figures are kept apart: the mix's, none for a single request.
    pub fn named(&self) -> usize {
        if self.named {
            self.entries.len()
        } else {
            0
        }
    }
}

/// One cycle of entry indices for `weights` (each at least 1, at most 256 entries): smooth
/// weighted round-robin, so each entry's requests are spread evenly over the cycle.
pub fn cycle(weights: &[u32]) -> Vec<u8> {
    let total: i64 = weights.iter().map(|&w| i64::from(w.max(1))).sum();
    let mut current = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (c, &w) in current.iter_mut().zip(weights) {
                *c += i64::from(w.max(1));
            }
            // The largest, the first of equals: deterministic.
            let mut best = 0;
            for (i, &c) in current.iter().enumerate() {
                if c > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            u8::try_from(best).unwrap_or(u8::MAX)
        })
        .collect()
}

/// How many of `n` requests (indices `0..n`) each entry of a mix of `weights` sends.
pub fn counts(weights: &[u32], n: u64) -> Vec<u64> {
    let cycle = cycle(weights);
    let w = cycle.len() as u64;
    let mut out: Vec<u64> = weights
        .iter()
        .map(|&x| u64::from(x.max(1)) * (n / w))
        .collect();
    for &k in &cycle[..(n % w) as usize] {
        out[usize::from(k)] += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_holds_each_entry_by_weight_interleaved() {
        assert_eq!(cycle(&[1]), vec![0]);
        assert_eq!(cycle(&[3, 1]), vec![0, 0, 1, 0]);
        assert_eq!(cycle(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        for weights in [vec![1, 1], vec![7, 3, 2], vec![1000, 1], vec![2; 32]] {
            let c = cycle(&weights);
            assert_eq!(c.len() as u32, weights.iter().sum::<u32>());
            for (i, &w) in weights.iter().enumerate() {
                assert_eq!(c.iter().filter(|&&k| usize::from(k) == i).count() as u32, w);
            }
        }
    }

    #[test]
    fn counts_are_exact_for_any_count() {
        let w = [7, 3, 2];
        let c = cycle(&w);
        for n in [0u64, 1, 5, 12, 13, 1000, 1001] {
            let by_walk: Vec<u64> = (0..3)
                .map(|k| {
                    (0..n)
                        .filter(|i| usize::from(c[(*i % 12) as usize]) == k)
                        .count() as u64
                })
                .collect();
            assert_eq!(counts(&w, n), by_walk, "n = {n}");
            assert_eq!(counts(&w, n).iter().sum::<u64>(), n);
        }
        assert_eq!(counts(&[3, 1], 1000), vec![750, 250]);
    }
}
