//! A worker's flow cache: what Azure's Virtual Filtering Platform calls the
//! Unified Flow Table (Firestone, NSDI 2017). The first packet of a flow
//! walks every hop; its outcome is cached under the packet's flow fields,
//! and later packets of the flow take the cached outcome with one exact-match
//! lookup. Each entry is tagged with the snapshot version it was walked
//! under (VFP tags flows with the port's generation number) and lists the
//! addresses its walk looked up in a table. An entry of an older version is
//! revalidated lazily (VFP's "lazy reconciliation"): when every version
//! since has a known delta (the prefixes whose routes changed, in any table
//! a walk reads) and no changed prefix covers one of its addresses, every
//! lookup of its walk answers as before, so the outcome stands and the entry
//! is re-tagged; otherwise it is a miss and the flow walks again. A table
//! update thus reaches the flows it concerns at once, with no flush, and
//! route churn elsewhere leaves the cache warm.
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

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use arrayvec::ArrayVec;
use rustc_hash::FxHashMap;

use crate::dataplane::{Header, MAX_LOOKED, Outcome};
use ipnet::IpNet;

/// Entries in a worker's flow cache unless told otherwise (96 bytes each:
/// 6 MiB, and the looked-up address sets).
pub const DEFAULT_ENTRIES: usize = 65_536;
const WAYS: usize = 4;

/// A flow as the cache keys it: its 5-tuple, TTL and IP length, as
/// integers (an address in a `u128`, IPv4 in the low 32 bits, the families
/// in `v6`): integers stay in registers, and hash and compare as a few
/// words (a key of `IpAddr`s goes through the stack and is read back wider
/// than it was written, a store-forwarding stall).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    src: u128,
    dst: u128,
    sport: u16,
    dport: u16,
    proto: u8,
    /// Bit 0: the source is IPv6; bit 1: the destination is.
    v6: u8,
    pub ttl: u8,
    pub len: u32,
}

impl FlowKey {
    #[inline(always)]
    pub fn new(h: &Header, ttl: u8, len: u32) -> FlowKey {
        let int = |a: IpAddr| match a {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 0),
            IpAddr::V6(a) => (u128::from(a), 1),
        };
        let (src, s6) = int(h.src);
        let (dst, d6) = int(h.dst);
        FlowKey {
            src,
            dst,
            sport: h.sport,
            dport: h.dport,
            proto: h.proto,
            v6: s6 | d6 << 1,
            ttl,
            len,
        }
    }

    /// The header the key was made from.
    pub fn header(&self) -> Header {
        let addr = |a: u128, v6: bool| -> IpAddr {
            if v6 {
                IpAddr::V6(a.into())
            } else {
                IpAddr::V4((a as u32).into())
            }
        };
        Header {
            src: addr(self.src, self.v6 & 1 != 0),
            dst: addr(self.dst, self.v6 & 2 != 0),
            proto: self.proto,
            sport: self.sport,
            dport: self.dport,
        }
    }
}

#[derive(Clone)]
struct Entry {
    /// The snapshot version it was walked under (or last found standing).
    version: u32,
    /// Hops the walk took.
    hops: u32,
    key: FlowKey,
    outcome: Outcome,
    /// The addresses the walk looked up, an index in `FlowCache::sets`;
    /// [`NO_SET`]: more than fit (or no room for another set), so the entry
    /// holds for its own version only.
    looked: u32,
}

/// The prefixes whose routes changed from one version to the next, in
/// any table a walk reads: sorted, each once, and as merged address
/// ranges per family for [`Delta::covers`] (a binary search). A version's
/// delta is built once by the control plane (a few hundred prefixes under
/// churn; a trie's build cost more than every check of it) and read once
/// per distinct looked-up address set by each worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    prefixes: Vec<IpNet>,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Delta {
    pub fn new(prefixes: impl IntoIterator<Item = IpNet>) -> Delta {
        // Sorted by integer keys (family, network, length): IpNet's own
        // comparison is several times dearer, and a delta gathers a few
        // thousand entries (one sorted run per table compared, repeats:
        // the stable sort merges runs).
        let mut keyed: Vec<((bool, u128, u8), IpNet)> = prefixes
            .into_iter()
            .map(|p| {
                let p = p.trunc();
                let key = match p {
                    IpNet::V4(n) => (false, u128::from(u32::from(n.network())), n.prefix_len()),
                    IpNet::V6(n) => (true, u128::from(n.network()), n.prefix_len()),
                };
                (key, p)
            })
            .collect();
        keyed.sort_by_key(|k| k.0);
        keyed.dedup_by_key(|k| k.0);
        let mut v4: Vec<(u32, u32)> = Vec::new();
        let mut v6: Vec<(u128, u128)> = Vec::new();
        // In order of network within each family: merged in one pass.
        for (_, p) in &keyed {
            match p {
                IpNet::V4(n) => push_merged(&mut v4, n.network().into(), n.broadcast().into()),
                IpNet::V6(n) => push_merged(&mut v6, n.network().into(), n.broadcast().into()),
            }
        }
        Delta {
            prefixes: keyed.into_iter().map(|k| k.1).collect(),
            v4,
            v6,
        }
    }

    /// The changed prefixes, sorted.
    pub fn prefixes(&self) -> &[IpNet] {
        &self.prefixes
    }

    /// Whether a changed prefix covers `a`.
    #[inline]
    pub fn covers(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => in_ranges(&self.v4, u32::from(a)),
            IpAddr::V6(a) => in_ranges(&self.v6, u128::from(a)),
        }
    }
}

/// Appends the inclusive range `[a, b]` to ranges sorted by start (`a` not
/// below the last start), merging it with the last when they overlap or
/// touch.
fn push_merged<T: Ord + Copy + From<u8> + std::ops::Add<Output = T>>(
    r: &mut Vec<(T, T)>,
    a: T,
    b: T,
) {
    match r.last_mut() {
        // `a <= end + 1` without overflow: `end + 1` only when `a > end`.
        Some(last) if a <= last.1 || a == last.1 + T::from(1) => last.1 = last.1.max(b),
        _ => r.push((a, b)),
    }
}

fn in_ranges<T: Ord + Copy>(r: &[(T, T)], a: T) -> bool {
    let i = r.partition_point(|x| x.0 <= a);
    i > 0 && a <= r[i - 1].1
}

/// The prefixes whose routes changed from one version to the next (`None`:
/// anything may have changed: failures, topology), for the versions a worker
/// adopted lately.
#[derive(Default)]
pub struct Deltas {
    ring: VecDeque<(u32, Option<Arc<Delta>>)>,
}

/// Versions of deltas kept: an entry older than that walks again.
const DELTAS_KEPT: usize = 64;

impl Deltas {
    /// Records the change that made `version`.
    pub fn push(&mut self, version: u32, delta: Option<Arc<Delta>>) {
        if self.ring.len() == DELTAS_KEPT {
            self.ring.pop_front();
        }
        self.ring.push_back((version, delta));
    }

    /// What changed in `version`: `Some(Some(delta))` the prefixes,
    /// `Some(None)` anything may have (a failure), `None` not kept (or never
    /// seen).
    fn get(&self, version: u32) -> Option<Option<&Delta>> {
        let &(first, _) = self.ring.front()?;
        match self.ring.get(version.checked_sub(first)? as usize) {
            Some((got, d)) if *got == version => Some(d.as_deref()),
            _ => None,
        }
    }

    /// The oldest version kept.
    fn first(&self) -> Option<u32> {
        self.ring.front().map(|&(v, _)| v)
    }
}

/// The addresses some walks looked up, kept once for every entry whose walk
/// looked up the same ones (flows to one destination share them), with what
/// the deltas said of them: revalidating after an update costs one check per
/// distinct set, not one per flow.
struct LookedSet {
    addrs: ArrayVec<IpAddr, MAX_LOOKED>,
    /// The deltas of versions up to this one were read…
    checked: u32,
    /// …and the latest of them that covered one of the addresses (or was
    /// unknown, or not kept): an entry walked under this version or a later
    /// one stands.
    changed: u32,
}

impl LookedSet {
    /// Reads the deltas of the versions after `checked`, up to `version`.
    fn catch_up(&mut self, version: u32, deltas: &Deltas) {
        if self.checked >= version {
            return;
        }
        // Versions older than the oldest delta kept: unknown.
        if let Some(first) = deltas.first()
            && self.checked + 1 < first
        {
            self.changed = first - 1;
            self.checked = first - 1;
        }
        while self.checked < version {
            let v = self.checked + 1;
            let stands = match deltas.get(v) {
                Some(Some(d)) => !self.addrs.iter().any(|a| d.covers(*a)),
                _ => false,
            };
            if !stands {
                self.changed = v;
            }
            self.checked = v;
        }
    }
}

/// No looked-up set: the entry holds for its own version only.
const NO_SET: u32 = u32::MAX;

/// The cached walk of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cached {
    pub outcome: Outcome,
    pub hops: u32,
}

/// Counters of a cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    /// Hits on an entry of an older version that the deltas showed to
    /// stand (included in `hits`).
    pub revalidated: u64,
}

pub struct FlowCache {
    slots: Vec<Option<Entry>>,
    /// Buckets − 1 (buckets are a power of two).
    mask: usize,
    /// The most buckets it may grow to.
    max_buckets: usize,
    /// The distinct looked-up address sets of the entries…
    sets: Vec<LookedSet>,
    /// …found by their addresses.
    set_of: FxHashMap<ArrayVec<IpAddr, MAX_LOOKED>, u32>,
    pub stats: Stats,
}

/// Buckets a cache starts with (a short replay allocates little).
const START_BUCKETS: usize = 1024;

impl FlowCache {
    /// A cache of at least `entries` entries (rounded up to a power of two
    /// buckets of four); `None` for 0 (no cache).
    pub fn new(entries: usize) -> Option<FlowCache> {
        if entries == 0 {
            return None;
        }
        let max_buckets = entries.div_ceil(WAYS).next_power_of_two();
        let buckets = max_buckets.min(START_BUCKETS);
        Some(FlowCache {
            slots: vec![None; buckets * WAYS],
            mask: buckets - 1,
            max_buckets,
            sets: Vec::new(),
            set_of: FxHashMap::default(),
            stats: Stats::default(),
        })
    }

    /// Entries the cache holds room for now (it doubles, up to its size,
    /// when a bucket overflows).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Doubles the buckets and moves every entry to its new bucket.
    fn grow(&mut self) {
        let buckets = (self.mask + 1) * 2;
        let old = std::mem::replace(&mut self.slots, vec![None; buckets * WAYS]);
        self.mask = buckets - 1;
        for e in old.into_iter().flatten() {
            let b = (FlowCache::hash(&e.key) as usize & self.mask) * WAYS;
            if let Some(slot) = self.slots[b..b + WAYS].iter_mut().find(|x| x.is_none()) {
                *slot = Some(e);
            }
        }
    }

    pub fn hash(key: &FlowKey) -> u64 {
        let mut h = rustc_hash::FxHasher::default();
        key.hash(&mut h);
        h.finish()
    }

    /// The flow's outcome under snapshot `version`: walked under it, or
    /// under an older one whose walk the `deltas` since leave standing.
    #[inline]
    pub fn get(
        &mut self,
        key: &FlowKey,
        hash: u64,
        version: u32,
        deltas: &Deltas,
    ) -> Option<Cached> {
        let b = (hash as usize & self.mask) * WAYS;
        for e in self.slots[b..b + WAYS].iter_mut().flatten() {
            if e.key != *key {
                continue;
            }
            if e.version != version {
                let stands = self.sets.get_mut(e.looked as usize).is_some_and(|s| {
                    s.catch_up(version, deltas);
                    s.changed <= e.version
                });
                if !stands {
                    break;
                }
                e.version = version;
                self.stats.revalidated += 1;
            }
            self.stats.hits += 1;
            return Some(Cached {
                outcome: e.outcome,
                hops: e.hops,
            });
        }
        self.stats.misses += 1;
        None
    }

    /// Records a flow's walk under snapshot `version`: in an empty or stale
    /// way of its bucket, else in the way the hash picks.
    #[inline]
    pub fn put(
        &mut self,
        key: FlowKey,
        hash: u64,
        version: u32,
        c: Cached,
        looked: Option<&ArrayVec<IpAddr, MAX_LOOKED>>,
    ) {
        let free = |slots: &[Option<Entry>], b: usize| {
            slots[b..b + WAYS]
                .iter()
                .position(|e| e.as_ref().is_none_or(|e| e.key == key))
        };
        let mut b = (hash as usize & self.mask) * WAYS;
        let mut way = free(&self.slots, b);
        // A full bucket: grow while allowed (entries of older versions may
        // still stand, so they are kept too).
        while way.is_none() && self.mask + 1 < self.max_buckets {
            self.grow();
            b = (hash as usize & self.mask) * WAYS;
            way = free(&self.slots, b);
        }
        // Else evict an entry of an older version, or the way the hash picks.
        let way = way
            .or_else(|| {
                self.slots[b..b + WAYS]
                    .iter()
                    .position(|e| e.as_ref().is_some_and(|e| e.version != version))
            })
            .unwrap_or((hash >> 60) as usize % WAYS);
        let looked = looked.map_or(NO_SET, |a| self.set(a, version));
        let bucket = &mut self.slots[b..b + WAYS];
        bucket[way] = Some(Entry {
            version,
            hops: c.hops,
            key,
            outcome: c.outcome,
            looked,
        });
    }

    /// The index of a looked-up set, interned under `version` if new. When
    /// the cache holds as many sets as it holds entries (sets of evicted
    /// entries stay), it forgets them all: the entries keep their outcome
    /// for their own version.
    fn set(&mut self, addrs: &ArrayVec<IpAddr, MAX_LOOKED>, version: u32) -> u32 {
        if let Some(&i) = self.set_of.get(addrs) {
            return i;
        }
        if self.sets.len() >= self.max_buckets * WAYS {
            self.sets.clear();
            self.set_of.clear();
            for e in self.slots.iter_mut().flatten() {
                e.looked = NO_SET;
            }
        }
        let i = self.sets.len() as u32;
        self.sets.push(LookedSet {
            addrs: addrs.clone(),
            checked: version,
            changed: version,
        });
        self.set_of.insert(addrs.clone(), i);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{DropReason, Place};
    use std::net::{IpAddr, Ipv4Addr};

    fn key(i: u16) -> FlowKey {
        let h = Header {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 4)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 1, 4)),
            proto: 17,
            sport: i,
            dport: 53,
        };
        FlowKey::new(&h, 64, 46)
    }

    #[test]
    fn a_key_gives_back_its_header_and_tells_families_apart() {
        let v4 = key(7).header();
        assert_eq!(v4.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!((v4.sport, v4.dport, v4.proto), (7, 53, 17));
        let h = Header {
            src: "fd00::4".parse().unwrap(),
            dst: "fd00:1::4".parse().unwrap(),
            proto: 6,
            sport: 1,
            dport: 443,
        };
        let k = FlowKey::new(&h, 9, 60);
        assert_eq!(k.header(), h);
        assert_eq!((k.ttl, k.len), (9, 60));
        // ::10.0.0.4 and 10.0.0.4 are the same integer, not the same key.
        let mapped = Header {
            src: "::10.0.0.4".parse().unwrap(),
            dst: "::10.0.1.4".parse().unwrap(),
            ..key(7).header()
        };
        assert!(FlowKey::new(&mapped, 64, 46) != key(7));
    }

    const DROP: Cached = Cached {
        outcome: Outcome::Dropped(Place::Capture, DropReason::NoRoute),
        hops: 3,
    };

    /// A delta covers exactly the addresses inside one of its prefixes,
    /// nested, adjacent or overlapping ones included, in both families.
    #[test]
    fn a_delta_covers_the_addresses_of_its_prefixes() {
        let p = |s: &str| -> IpNet { s.parse().unwrap() };
        let d = Delta::new([
            p("10.0.0.0/16"),
            p("10.0.3.0/24"),
            p("10.1.0.0/16"),
            p("192.168.7.9/24"),
            p("255.255.255.255/32"),
            p("2001:db8::/48"),
            p("10.0.3.0/24"),
        ]);
        assert_eq!(
            d.prefixes().len(),
            6,
            "sorted, once each, host bits cleared"
        );
        assert!(d.prefixes().contains(&p("192.168.7.0/24")));
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        for yes in [
            "10.0.0.0",
            "10.0.3.7",
            "10.0.255.255",
            "10.1.200.1",
            "192.168.7.255",
            "255.255.255.255",
            "2001:db8:0:ffff::1",
        ] {
            assert!(d.covers(a(yes)), "{yes}");
        }
        for no in [
            "9.255.255.255",
            "10.2.0.0",
            "192.168.8.0",
            "255.255.255.254",
            "2001:db8:1::",
            "::",
        ] {
            assert!(!d.covers(a(no)), "{no}");
        }
        // Checked against the prefixes one by one, over a sweep of addresses.
        for x in (0u32..=u32::MAX).step_by(65_521) {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(x));
            let want = d.prefixes().iter().any(|q| q.contains(&addr));
            assert_eq!(d.covers(addr), want, "{addr}");
        }
        assert!(!Delta::new([]).covers(a("10.0.0.1")));
    }

    #[test]
    fn hits_only_the_same_key_under_the_same_version() {
        let mut c = FlowCache::new(64).unwrap();
        let none = Deltas::default();
        let k = key(1);
        let h = FlowCache::hash(&k);
        assert_eq!(c.get(&k, h, 0, &none), None);
        c.put(k, h, 0, DROP, None);
        assert_eq!(c.get(&k, h, 0, &none), Some(DROP));
        // Another version: stale, a miss.
        assert_eq!(c.get(&k, h, 1, &none), None);
        // Another TTL, length or port: another flow.
        for other in [FlowKey { ttl: 1, ..k }, FlowKey { len: 1400, ..k }, key(2)] {
            assert_eq!(c.get(&other, h, 0, &none), None);
        }
        assert_eq!((c.stats.hits, c.stats.misses), (1, 5));
    }

    #[test]
    fn a_full_bucket_keeps_working() {
        // 4 entries: one bucket; 100 flows through it never answer wrongly.
        let mut c = FlowCache::new(4).unwrap();
        let none = Deltas::default();
        for i in 0..100u16 {
            let k = key(i);
            let h = FlowCache::hash(&k);
            let v = Cached {
                hops: u32::from(i),
                ..DROP
            };
            c.put(k, h, 7, v, None);
            assert_eq!(c.get(&k, h, 7, &none), Some(v));
        }
        let mut found = 0;
        for i in 0..100u16 {
            let k = key(i);
            if let Some(v) = c.get(&k, FlowCache::hash(&k), 7, &none) {
                assert_eq!(v.hops, u32::from(i));
                found += 1;
            }
        }
        assert!((1..=4).contains(&found), "{found} flows kept in 4 ways");
    }

    #[test]
    fn an_entry_stands_across_versions_whose_changes_miss_its_addresses() {
        let mut c = FlowCache::new(64).unwrap();
        let k = key(1);
        let h = FlowCache::hash(&k);
        let looked: ArrayVec<IpAddr, MAX_LOOKED> = [IpAddr::V4(Ipv4Addr::new(10, 0, 1, 4))]
            .into_iter()
            .collect();
        c.put(k, h, 3, DROP, Some(&looked));
        let delta = |p: &str| Some(Arc::new(Delta::new([p.parse().unwrap()])));
        let mut d = Deltas::default();
        d.push(3, None);
        d.push(4, delta("100.127.0.0/24"));
        d.push(5, delta("192.168.0.0/16"));
        // Versions 4 and 5 changed prefixes elsewhere: the entry stands.
        assert_eq!(c.get(&k, h, 5, &d), Some(DROP));
        assert_eq!(c.stats.revalidated, 1);
        // Version 6 changed 10.0.0.0/16, which covers the address: a miss.
        d.push(6, delta("10.0.0.0/16"));
        assert_eq!(c.get(&k, h, 6, &d), None);
        // An unknown change (a failure) is a miss too.
        c.put(k, h, 6, DROP, Some(&looked));
        d.push(7, None);
        assert_eq!(c.get(&k, h, 7, &d), None);
        // An entry that looked up more than it could list holds for its
        // own version only.
        c.put(k, h, 7, DROP, None);
        d.push(8, delta("100.127.0.0/24"));
        assert_eq!(c.get(&k, h, 7, &d), Some(DROP));
        assert_eq!(c.get(&k, h, 8, &d), None);
    }

    #[test]
    fn grows_to_hold_its_flows_up_to_its_size() {
        let mut c = FlowCache::new(1 << 16).unwrap();
        let none = Deltas::default();
        assert_eq!(c.capacity(), START_BUCKETS * WAYS);
        for i in 0..20_000u16 {
            let k = key(i);
            c.put(k, FlowCache::hash(&k), 0, DROP, None);
        }
        assert!(c.capacity() > 20_000 && c.capacity() <= 1 << 16);
        let kept = (0..20_000u16)
            .filter(|&i| c.get(&key(i), FlowCache::hash(&key(i)), 0, &none).is_some())
            .count();
        assert_eq!(kept, 20_000, "every flow kept after growing");
    }

    #[test]
    fn new_flows_grow_the_cache_rather_than_evict_older_entries_that_may_stand() {
        let mut c = FlowCache::new(1 << 16).unwrap();
        let looked: ArrayVec<IpAddr, MAX_LOOKED> = [IpAddr::V4(Ipv4Addr::new(10, 0, 1, 4))]
            .into_iter()
            .collect();
        // Version 0 fills the cache as it starts; version 1 changed nothing
        // these flows looked up; new flows arrive under version 1.
        for i in 0..4000u16 {
            let k = key(i);
            c.put(k, FlowCache::hash(&k), 0, DROP, Some(&looked));
        }
        for i in 4000..8000u16 {
            let k = key(i);
            c.put(k, FlowCache::hash(&k), 1, DROP, Some(&looked));
        }
        let mut d = Deltas::default();
        d.push(
            1,
            Some(Arc::new(Delta::new(["100.127.0.0/24".parse().unwrap()]))),
        );
        let standing = (0..4000u16)
            .filter(|&i| c.get(&key(i), FlowCache::hash(&key(i)), 1, &d).is_some())
            .count();
        assert_eq!(standing, 4000);
    }

    #[test]
    fn flows_sharing_looked_up_addresses_share_one_check_and_sets_are_bounded() {
        let addr = |i: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 1, i));
        let set = |i: u8| -> ArrayVec<IpAddr, MAX_LOOKED> { [addr(i)].into_iter().collect() };
        let delta = |p: &str| Some(Arc::new(Delta::new([p.parse().unwrap()])));
        // 8 entries (2 buckets of 4), so at most 8 sets.
        let mut c = FlowCache::new(8).unwrap();
        c.put(key(0), FlowCache::hash(&key(0)), 0, DROP, Some(&set(4)));
        c.put(key(1), FlowCache::hash(&key(1)), 0, DROP, Some(&set(4)));
        assert_eq!(c.sets.len(), 1, "one set for two flows to one address");
        let mut d = Deltas::default();
        d.push(1, delta("10.0.1.5/32"));
        // Both stand; the deltas were read once, for the set.
        for k in [key(0), key(1)] {
            assert_eq!(c.get(&k, FlowCache::hash(&k), 1, &d), Some(DROP));
        }
        assert_eq!((c.sets[0].checked, c.sets[0].changed), (1, 0));
        // A change covering the address: both walk again.
        d.push(2, delta("10.0.1.4/32"));
        for k in [key(0), key(1)] {
            assert_eq!(c.get(&k, FlowCache::hash(&k), 2, &d), None);
        }
        // Flows with a set each, more sets than entries: the sets are
        // forgotten when full, never more than the entries.
        for i in 2..40u16 {
            let k = key(i);
            c.put(k, FlowCache::hash(&k), 2, DROP, Some(&set(i as u8)));
            assert!(c.sets.len() <= 8);
            assert_eq!(c.get(&k, FlowCache::hash(&k), 2, &d), Some(DROP));
        }
        // The flows put after the last reset still stand across a change
        // elsewhere; those before it hold for their own version only.
        d.push(3, delta("192.168.0.0/16"));
        let held: Vec<(FlowKey, bool)> = c
            .slots
            .iter()
            .flatten()
            .map(|e| (e.key, e.looked != NO_SET))
            .collect();
        let mut stand = 0;
        for (k, had_set) in &held {
            let got = c.get(k, FlowCache::hash(k), 3, &d);
            assert_eq!(got.is_some(), *had_set, "port {}", k.header().sport);
            stand += usize::from(got.is_some());
        }
        assert!(!held.is_empty() && stand > 0, "{stand} of {}", held.len());
    }
}
