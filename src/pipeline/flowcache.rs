//! A worker's flow cache: what Azure's Virtual Filtering Platform calls the
//! Unified Flow Table (Firestone, NSDI 2017). The first packet of a flow
//! walks every hop; its outcome is cached under the packet's flow fields,
//! and later packets of the flow take the cached outcome with one exact-match
//! lookup. Each entry is tagged with the snapshot version it was walked
//! under (VFP tags flows with the port's generation number); an entry of an
//! older version is a miss, so a table update reaches cached flows at once,
//! with no flush.
//!
//! The key is everything a walk's outcome depends on besides the snapshot:
//! the 5-tuple and addresses (which also fix where the walk starts), the TTL
//! (a hop limit can run out on the way) and the datagram length (MTU
//! checks). A walk is deterministic given the key and the snapshot: ECMP and
//! load-balancer choices follow the flow hash. The cache serves the
//! counters-only path; walks that write traces or pcapng record every hop
//! and always walk. Tunnel packets read from a capture (VXLAN, ESP) are not
//! cached (their inner headers would belong in the key).
//!
//! Layout: `ways`-way buckets in one array, a victim chosen by the hash, no
//! allocation after construction.

use std::hash::{Hash, Hasher};

use crate::dataplane::{Header, Outcome};

/// Entries in a worker's flow cache unless told otherwise (about 5 MiB).
pub const DEFAULT_ENTRIES: usize = 65_536;
const WAYS: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub header: Header,
    pub ttl: u8,
    pub len: u32,
}

#[derive(Clone, Copy)]
struct Entry {
    /// Snapshot version + 1 (0: empty).
    tag: u32,
    /// Hops the walk took.
    hops: u32,
    key: FlowKey,
    outcome: Outcome,
}

/// The cached walk of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cached {
    pub outcome: Outcome,
    pub hops: u32,
}

pub struct FlowCache {
    slots: Vec<Option<Entry>>,
    /// Buckets − 1 (buckets are a power of two).
    mask: usize,
    pub hits: u64,
    pub misses: u64,
}

impl FlowCache {
    /// A cache of at least `entries` entries (rounded up to a power of two
    /// buckets of four); `None` for 0 (no cache).
    pub fn new(entries: usize) -> Option<FlowCache> {
        if entries == 0 {
            return None;
        }
        let buckets = entries.div_ceil(WAYS).next_power_of_two();
        Some(FlowCache {
            slots: vec![None; buckets * WAYS],
            mask: buckets - 1,
            hits: 0,
            misses: 0,
        })
    }

    pub fn hash(key: &FlowKey) -> u64 {
        let mut h = rustc_hash::FxHasher::default();
        key.hash(&mut h);
        h.finish()
    }

    /// The flow's outcome under snapshot `version`, if walked under it.
    #[inline]
    pub fn get(&mut self, key: &FlowKey, hash: u64, version: u32) -> Option<Cached> {
        let b = (hash as usize & self.mask) * WAYS;
        let tag = version.wrapping_add(1);
        for e in self.slots[b..b + WAYS].iter().flatten() {
            if e.tag == tag && e.key == *key {
                self.hits += 1;
                return Some(Cached {
                    outcome: e.outcome,
                    hops: e.hops,
                });
            }
        }
        self.misses += 1;
        None
    }

    /// Records a flow's walk under snapshot `version`: in an empty or stale
    /// way of its bucket, else in the way the hash picks.
    #[inline]
    pub fn put(&mut self, key: FlowKey, hash: u64, version: u32, c: Cached) {
        let b = (hash as usize & self.mask) * WAYS;
        let tag = version.wrapping_add(1);
        let bucket = &mut self.slots[b..b + WAYS];
        let way = bucket
            .iter()
            .position(|e| e.is_none_or(|e| e.tag != tag || e.key == key))
            .unwrap_or((hash >> 60) as usize % WAYS);
        bucket[way] = Some(Entry {
            tag,
            hops: c.hops,
            key,
            outcome: c.outcome,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{DropReason, Place};
    use std::net::{IpAddr, Ipv4Addr};

    fn key(i: u16) -> FlowKey {
        FlowKey {
            header: Header {
                src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 4)),
                dst: IpAddr::V4(Ipv4Addr::new(10, 0, 1, 4)),
                proto: 17,
                sport: i,
                dport: 53,
            },
            ttl: 64,
            len: 46,
        }
    }

    const DROP: Cached = Cached {
        outcome: Outcome::Dropped(Place::Capture, DropReason::NoRoute),
        hops: 3,
    };

    #[test]
    fn hits_only_the_same_key_under_the_same_version() {
        let mut c = FlowCache::new(64).unwrap();
        let k = key(1);
        let h = FlowCache::hash(&k);
        assert_eq!(c.get(&k, h, 0), None);
        c.put(k, h, 0, DROP);
        assert_eq!(c.get(&k, h, 0), Some(DROP));
        // Another version: stale, a miss.
        assert_eq!(c.get(&k, h, 1), None);
        // Another TTL, length or port: another flow.
        for other in [FlowKey { ttl: 1, ..k }, FlowKey { len: 1400, ..k }, key(2)] {
            assert_eq!(c.get(&other, h, 0), None);
        }
        assert_eq!((c.hits, c.misses), (1, 5));
    }

    #[test]
    fn a_full_bucket_keeps_working() {
        // 4 entries: one bucket; 100 flows through it never answer wrongly.
        let mut c = FlowCache::new(4).unwrap();
        for i in 0..100u16 {
            let k = key(i);
            let h = FlowCache::hash(&k);
            let v = Cached {
                hops: u32::from(i),
                ..DROP
            };
            c.put(k, h, 7, v);
            assert_eq!(c.get(&k, h, 7), Some(v));
        }
        let mut found = 0;
        for i in 0..100u16 {
            let k = key(i);
            if let Some(v) = c.get(&k, FlowCache::hash(&k), 7) {
                assert_eq!(v.hops, u32::from(i));
                found += 1;
            }
        }
        assert!((1..=4).contains(&found), "{found} flows kept in 4 ways");
    }
}
