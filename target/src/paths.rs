//! Bounded per-path request counts: at most [`MAX_PATHS`] distinct paths, the rest under
//! [`OTHER`].
//!
//! The table is a fixed open-addressing array of slots, each a write-once name and an atomic
//! count. Counting a known path is a hash, a probe of a few acquire loads and one `fetch_add`;
//! the insertion lock is taken only the first time a path is seen, and never once the table is
//! full. GET /ping, the plain load, does not touch the table at all: its count is the existing
//! `requests_received` counter, added in when the counts are read, so the hot path pays nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Most distinct paths counted apart, `/ping` included (it is always one of them).
pub const MAX_PATHS: usize = 64;
/// Key under which requests to paths beyond the first [`MAX_PATHS`] are counted.
pub const OTHER: &str = "(other)";
/// Longer paths are counted under [`OTHER`], so the table's memory stays small whatever the
/// clients send (hyper accepts request lines of many kilobytes).
pub const MAX_PATH_LEN: usize = 256;

/// Paths tracked in the table; `/ping` lives outside it.
const CAPACITY: usize = MAX_PATHS - 1;
/// Twice the capacity (a power of two), so probe runs stay short.
const SLOTS: usize = 128;

/// One cache line per slot: a path under load must not false-share with its neighbours.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Slot {
    name: OnceLock<Box<str>>,
    count: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct PathCounts {
    slots: Box<[Slot]>,
    /// Names are only ever set with this held; the value is how many are set.
    insert: Mutex<usize>,
    /// Set once `CAPACITY` names are in: new paths then skip the lock.
    full: AtomicBool,
    /// Requests to /ping other than GET (the GETs are `requests_received`).
    ping_other_methods: AtomicU64,
    other: AtomicU64,
}

enum Probe<'a> {
    Found(&'a Slot),
    /// The first empty slot of the path's probe run: where it would go.
    Empty(&'a Slot),
    /// Cannot happen (`CAPACITY < SLOTS`); counted under [`OTHER`] rather than panic.
    Exhausted,
}

impl Default for PathCounts {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            insert: Mutex::new(0),
            full: AtomicBool::new(false),
            ping_other_methods: AtomicU64::new(0),
            other: AtomicU64::new(0),
        }
    }
}

/// FNV-1a: short paths, no need for DoS resistance (at most 63 entries, bounded probes).
fn hash(path: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Only the low bits are used, so the truncation is what is wanted.
    h as usize
}

impl PathCounts {
    /// Counts one request to `path` (no query string). `/ping` must not come here.
    pub(crate) fn count(&self, path: &str) {
        match self.slot(path) {
            Some(slot) => slot.count.fetch_add(1, Ordering::Relaxed),
            None => self.other.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Counts a /ping that is not a GET (a GET is counted by `requests_received`).
    pub(crate) fn count_ping_other_method(&self) {
        self.ping_other_methods.fetch_add(1, Ordering::Relaxed);
    }

    fn slot(&self, path: &str) -> Option<&Slot> {
        if path.len() > MAX_PATH_LEN {
            return None;
        }
        match self.probe(path) {
            Probe::Found(slot) => Some(slot),
            Probe::Empty(_) => self.insert(path),
            Probe::Exhausted => None,
        }
    }

    /// Looks `path` up; names are never removed, so a path not met before the first empty
    /// slot is not in the table. At most `CAPACITY` of the `SLOTS` are ever set, so there
    /// always is an empty slot.
    fn probe(&self, path: &str) -> Probe<'_> {
        let start = hash(path);
        for i in 0..SLOTS {
            let slot = &self.slots[(start + i) % SLOTS];
            match slot.name.get() {
                Some(name) if **name == *path => return Probe::Found(slot),
                Some(_) => {}
                None => return Probe::Empty(slot),
            }
        }
        Probe::Exhausted
    }

    #[cold]
    fn insert(&self, path: &str) -> Option<&Slot> {
        if self.full.load(Ordering::Acquire) {
            // Every name is in (set before `full`), so this second look is final: it only
            // catches the path inserted as the table filled, between the probe and here.
            return match self.probe(path) {
                Probe::Found(slot) => Some(slot),
                Probe::Empty(_) | Probe::Exhausted => None,
            };
        }
        let mut used = self.insert.lock().unwrap_or_else(|p| p.into_inner());
        // Probe again under the lock: another request may have inserted this path, or taken
        // the empty slot seen a moment ago.
        match self.probe(path) {
            Probe::Found(slot) => Some(slot),
            Probe::Exhausted => None,
            Probe::Empty(_) if *used >= CAPACITY => None,
            Probe::Empty(slot) => {
                // Only the lock holder sets names, so `set` cannot fail.
                let _ = slot.name.set(path.into());
                *used += 1;
                if *used >= CAPACITY {
                    self.full.store(true, Ordering::Release);
                }
                Some(slot)
            }
        }
    }

    /// Counts by path, zeros left out; `pings` is the GET /ping count (`requests_received`).
    pub(crate) fn snapshot(&self, pings: u64) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let ping = pings + self.ping_other_methods.load(Ordering::Relaxed);
        if ping > 0 {
            out.insert("/ping".to_owned(), ping);
        }
        for slot in self.slots.iter() {
            if let Some(name) = slot.name.get() {
                let n = slot.count.load(Ordering::Relaxed);
                if n > 0 {
                    out.insert(name.to_string(), n);
                }
            }
        }
        let other = self.other.load(Ordering::Relaxed);
        if other > 0 {
            out.insert(OTHER.to_owned(), other);
        }
        out
    }

    /// Zeroes every count. The tracked paths stay tracked: names are write-once so that
    /// counting never needs a lock, hence the bound is over the life of the process.
    pub(crate) fn reset(&self) {
        for slot in self.slots.iter() {
            slot.count.store(0, Ordering::Relaxed);
        }
        self.ping_other_methods.store(0, Ordering::Relaxed);
        self.other.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_exactly_and_bounds_distinct_paths() {
        let p = PathCounts::default();
        for i in 0..CAPACITY {
            for _ in 0..=i {
                p.count(&format!("/p{i}"));
            }
        }
        p.count("/one-too-many");
        p.count("/one-too-many");
        p.count("/p0");
        p.count_ping_other_method();
        let s = p.snapshot(5);
        assert_eq!(s.len(), MAX_PATHS + 1, "{s:?}");
        assert_eq!(s["/p0"], 2);
        assert_eq!(s["/p62"], 63);
        assert_eq!(s["/ping"], 6);
        assert_eq!(s[OTHER], 2);
        assert!(!s.contains_key("/one-too-many"));
        assert_eq!(s.values().sum::<u64>(), (1..=63).sum::<u64>() + 1 + 6 + 2);
    }

    #[test]
    fn long_paths_go_to_other_and_reset_zeroes() {
        let p = PathCounts::default();
        p.count(&"/x".repeat(MAX_PATH_LEN));
        p.count("/a");
        assert_eq!(p.snapshot(0)[OTHER], 1);
        p.reset();
        assert!(p.snapshot(0).is_empty());
        p.count("/a");
        assert_eq!(
            p.snapshot(0).into_iter().collect::<Vec<_>>(),
            [("/a".to_owned(), 1)]
        );
    }

    #[test]
    fn concurrent_first_sightings_insert_a_path_once() {
        let p = PathCounts::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..1000 {
                        p.count(&format!("/c{}", i % 10));
                    }
                });
            }
        });
        let s = p.snapshot(0);
        assert_eq!(s.len(), 10);
        assert!(s.values().all(|&n| n == 400), "{s:?}");
        assert_eq!(*p.insert.lock().unwrap(), 10);
    }
}
