//! Walks recorded for output, by flow: what the flow cache is to counting
//! runs ([`super::flowcache`]), for runs that write traces or pcapng. A
//! flow's first packet walks with its decisions as text; the flow's next
//! packets under the same table version take that walk's outcome and hops
//! (decisions, effects), and only their frames are rendered anew. The key
//! holds everything a walk reads of a packet (addresses, ports, protocol,
//! TTL, length), and an entry serves only the table version it was walked
//! with: a cached walk is the walk the packet would take.

use super::flowcache::{FlowCache, FlowKey};
use crate::dataplane::{Hop, Outcome};

/// Entries: direct-mapped, a power of two.
pub const ENTRIES: usize = 8192;

struct Slot {
    key: FlowKey,
    version: u32,
    outcome: Outcome,
    steps: usize,
    hops: Vec<Hop>,
}

/// A worker's recorded walks.
pub(super) struct WalkCache {
    slots: Vec<Option<Slot>>,
    /// The slot of the last hit.
    last: usize,
    pub(super) hits: u64,
    pub(super) misses: u64,
}

impl WalkCache {
    pub(super) fn new() -> Self {
        WalkCache {
            slots: (0..ENTRIES).map(|_| None).collect(),
            last: 0,
            hits: 0,
            misses: 0,
        }
    }

    fn index(key: &FlowKey) -> usize {
        (FlowCache::hash(key) >> 7) as usize & (ENTRIES - 1)
    }

    /// The walk of `key` under table `version`, if recorded: its outcome,
    /// its number of steps and its hops ([`WalkCache::last_hops`] gives
    /// them again).
    #[inline]
    pub(super) fn get(&mut self, key: &FlowKey, version: u32) -> Option<(Outcome, usize, &[Hop])> {
        let i = Self::index(key);
        match &self.slots[i] {
            Some(s) if s.key == *key && s.version == version => {
                self.hits += 1;
                self.last = i;
                Some((s.outcome, s.steps, &s.hops))
            }
            _ => {
                self.misses += 1;
                None
            }
        }
    }

    /// The hops of the last hit.
    pub(super) fn last_hops(&self) -> &[Hop] {
        self.slots[self.last].as_ref().map_or(&[], |s| &s.hops)
    }

    /// Records a walk (its hops copied into the slot's buffers).
    pub(super) fn put(
        &mut self,
        key: FlowKey,
        version: u32,
        outcome: Outcome,
        steps: usize,
        hops: &[Hop],
    ) {
        let slot = &mut self.slots[Self::index(&key)];
        match slot {
            Some(s) => {
                s.key = key;
                s.version = version;
                s.outcome = outcome;
                s.steps = steps;
                s.hops.clone_from_slice_or_vec(hops);
            }
            None => {
                *slot = Some(Slot {
                    key,
                    version,
                    outcome,
                    steps,
                    hops: hops.to_vec(),
                });
            }
        }
    }
}

/// `clone_from` for a vector from a slice (reusing its hops' buffers).
trait CloneFromSlice<T> {
    fn clone_from_slice_or_vec(&mut self, from: &[T]);
}

impl<T: Clone> CloneFromSlice<T> for Vec<T> {
    fn clone_from_slice_or_vec(&mut self, from: &[T]) {
        self.truncate(from.len());
        let (init, tail) = from.split_at(self.len());
        self.clone_from_slice(init);
        self.extend_from_slice(tail);
    }
}
