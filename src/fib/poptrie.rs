//! A Poptrie (Asai & Ohara, SIGCOMM 2015): direct pointing on the top bits,
//! then 64-ary nodes compressed with two bitmaps and popcount.
//!
//! ```text
//! key:  | D bits: dir index | 6 | 6 | 6 | ... (last stride = what is left)
//!
//! dir[2^D]: u32    bit 31 set  → leaf, bits 0..31 = value
//!                  bit 31 clear → index of a node in `nodes`
//! Node (24 B):  vector: u64   bit v set → slot v is an internal node
//!               leafvec: u64  bit v set → a run of equal leaves starts at v
//!               base1: u32    index of the node's first child in `nodes`
//!               base0: u32    index of the node's first leaf in `leaves`
//! child(v) = nodes[base1 + popcnt(vector  & mask(v)) - 1]
//! leaf(v)  = leaves[base0 + popcnt(leafvec & mask(v)) - 1]   (mask(v) = bits 0..=v)
//! ```
//!
//! | family | table size | strides (bits) | direct table | dependent loads for a /24 (v4) or /48 (v6) |
//! |---|---|---|---|---|
//! | IPv4 | ≥ 8,192 routes | 18, 6, 6, 2 | 1 MiB | dir + 1 node + leaf = 3 |
//! | IPv4 | smaller (per-subnet tables) | 12, 6, 6, 6, 2 | 16 KiB | dir + 2 nodes + leaf = 4 |
//! | IPv6 | ≥ 8,192 routes | 12, 6 × 19, 2 | 16 KiB | dir + 6 nodes + leaf = 8 |
//! | IPv6 | smaller | 8, 6 × 20 | 1 KiB | dir + 7 nodes + leaf = 9 |
//!
//! Small tables keep small direct tables, so thousands of distinct
//! per-subnet tables stay small (17 KiB of direct tables each).
//!
//! Children of a node are contiguous, so one base index and a popcount find
//! any of them; equal neighbouring leaves are stored once (leaf compression).
//! Values are `u32` (0 is reserved for "no route"). The structure is built once
//! from a sorted route list and never mutated: updates rebuild (see `Fib`).

/// An address family's key: the address as an unsigned integer.
pub trait Key: Copy + Send + Sync + 'static {
    const BITS: u32;
    /// Direct-table bits for large tables of this family.
    const DIR_BITS: u32;
    /// Direct-table bits for small tables (fewer than [`SMALL_TABLE`]
    /// routes): thousands of per-subnet tables stay small.
    const SMALL_DIR_BITS: u32;
    /// `len` bits of the key starting `off` bits from the most significant end.
    fn bits(self, off: u32, len: u32) -> usize;
    fn to_u128(self) -> u128;
}

impl Key for u32 {
    const BITS: u32 = 32;
    // 18 + 6 = 24: a /24, the most common IPv4 prefix, is one leaf slot.
    const DIR_BITS: u32 = 18;
    // 12 + 6 = 18 + 6 = 24: a VNet's /16 is painted in one node and a /24
    // is a leaf two nodes down (with 8 bits, three), for a 16 KiB direct
    // table: one dependent read fewer per lookup on per-subnet tables.
    const SMALL_DIR_BITS: u32 = 12;
    #[inline(always)]
    fn bits(self, off: u32, len: u32) -> usize {
        ((self << off) >> (32 - len)) as usize
    }
    fn to_u128(self) -> u128 {
        self as u128
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    // 12 + 6 × 6 = 48: a /48, the most common IPv6 prefix, is one leaf slot,
    // with a 16 KiB direct table.
    const DIR_BITS: u32 = 12;
    // IPv6 tables are mostly empty or few routes: a 1 KiB direct table.
    const SMALL_DIR_BITS: u32 = 8;
    #[inline(always)]
    fn bits(self, off: u32, len: u32) -> usize {
        ((self << off) >> (128 - len)) as usize
    }
    fn to_u128(self) -> u128 {
        self
    }
}

/// Tables with fewer routes than this use their family's
/// `Key::SMALL_DIR_BITS`; larger ones its `Key::DIR_BITS`.
pub const SMALL_TABLE: usize = 8192;
const STRIDE: u32 = 6;
const LEAF: u32 = 1 << 31;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct Node {
    vector: u64,
    leafvec: u64,
    base1: u32,
    base0: u32,
}

/// One route as the builder sees it: network (right-aligned), length, value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BuildRoute {
    pub net: u128,
    pub len: u8,
    pub value: u32,
}

/// The compiled trie for one address family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poptrie<K: Key> {
    dir_bits: u32,
    dir: Vec<u32>,
    nodes: Vec<Node>,
    leaves: Vec<u32>,
    /// Nodes and leaves no longer reachable (left by `patched`).
    stale: usize,
    _k: std::marker::PhantomData<K>,
}

#[inline(always)]
fn mask(v: usize) -> u64 {
    let bit = 1u64 << v;
    bit | (bit - 1)
}

#[inline(always)]
fn stride_at(bits: u32, off: u32) -> u32 {
    STRIDE.min(bits - off)
}

impl<K: Key> Poptrie<K> {
    /// Builds from routes with values in `1..2^31`. Routes must have no host
    /// bits set; duplicates of one prefix keep the last value given.
    pub fn build(routes: &[BuildRoute]) -> Self {
        let bits = K::BITS;
        // Sort by (network, length); for duplicates keep the last one given
        // (nothing to do, not even a copy, when they arrive in order, each
        // once).
        let rs: std::borrow::Cow<[BuildRoute]> = if routes
            .windows(2)
            .all(|w| (w[0].net, w[0].len) < (w[1].net, w[1].len))
        {
            std::borrow::Cow::Borrowed(routes)
        } else {
            let mut rs = routes.to_vec();
            rs.reverse();
            rs.sort_by_key(|r| (r.net, r.len));
            rs.dedup_by_key(|r| (r.net, r.len));
            std::borrow::Cow::Owned(rs)
        };
        let dir_bits = Self::dir_bits_for(rs.len());
        // Sized for what tables of /24s and longer need (a node per 64 routes
        // at most levels, a leaf run or two per route): few regrowths.
        let mut b = Builder {
            bits,
            nodes: Vec::with_capacity(rs.len() / 8 + 16),
            leaves: Vec::with_capacity(rs.len() * 2 + 64),
        };
        // Direct table: short routes painted as leaves; chunks with longer
        // routes become nodes.
        let mut dir = vec![LEAF; 1 << dir_bits];
        let n_short = rs.iter().filter(|r| u32::from(r.len) <= dir_bits).count();
        let mut short: Vec<BuildRoute> = Vec::with_capacity(n_short);
        short.extend(rs.iter().filter(|r| u32::from(r.len) <= dir_bits));
        b.paint(&mut dir, dir_bits, &mut short);
        let mut long: Vec<BuildRoute> = Vec::with_capacity(rs.len() - n_short);
        long.extend(rs.iter().copied().filter(|r| u32::from(r.len) > dir_bits));
        b.nodes_under(&mut dir, dir_bits, &long);
        Poptrie {
            dir_bits,
            dir,
            nodes: b.nodes,
            leaves: b.leaves,
            stale: 0,
            _k: std::marker::PhantomData,
        }
    }

    /// The direct table's bits for a table of `n` routes.
    fn dir_bits_for(n: usize) -> u32 {
        if n < SMALL_TABLE {
            K::SMALL_DIR_BITS
        } else {
            K::DIR_BITS
        }
    }

    /// What [`Poptrie::build`] of a route set gives (the same answers for
    /// every key), made from `self` — built from a set that differs from
    /// it only at the `changed` prefixes (network, length) — by repainting
    /// the direct-table slots those prefixes cover and rebuilding the
    /// subtrees under them; everything else is copied. The set is given as
    /// `n` routes, `route(i)` the i-th in (network, length) order, one a
    /// prefix, no host bits (as `build` leaves them). `None` when the
    /// change covers more than an eighth of the direct table, the set
    /// crossed [`SMALL_TABLE`], or the replaced subtrees would leave more
    /// dead entries than live ones: then a build costs about the same.
    pub fn patched(
        &self,
        n: usize,
        route: impl Fn(usize) -> BuildRoute,
        changed: impl IntoIterator<Item = (u128, u8)>,
    ) -> Option<Self> {
        let bits = K::BITS;
        let dir_bits = self.dir_bits;
        if dir_bits != Self::dir_bits_for(n) {
            return None;
        }
        // Direct-table blocks (first slot, slot count) the changes cover;
        // aligned, so two are nested or apart: keep the outermost.
        let mut blocks: Vec<(usize, usize)> = changed
            .into_iter()
            .map(|(net, len)| {
                let len = u32::from(len).min(dir_bits);
                let first = (net >> (bits - dir_bits)) as usize;
                let count = 1usize << (dir_bits - len);
                (first & !(count - 1), count)
            })
            .collect();
        blocks.sort_unstable_by_key(|&(first, count)| (first, std::cmp::Reverse(count)));
        blocks.dedup_by(|inner, outer| inner.0 + inner.1 <= outer.0 + outer.1);
        let slots: usize = blocks.iter().map(|b| b.1).sum();
        if slots > self.dir.len() / 8 {
            return None;
        }
        let full = u128::MAX >> (128 - bits);
        let mask = |len: u32| if len == 0 { 0 } else { full & !(full >> len) };
        // The first route at or after (net, len).
        let seek = |net: u128, len: u8| {
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let r = route(mid);
                if (r.net, r.len) < (net, len) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let mut dir = self.dir.clone();
        let mut b = Builder {
            bits,
            nodes: self.nodes.clone(),
            leaves: self.leaves.clone(),
        };
        let mut stale = self.stale;
        let mut short: Vec<BuildRoute> = Vec::new();
        let mut long: Vec<BuildRoute> = Vec::new();
        for (first, count) in blocks {
            let block_len = dir_bits - count.trailing_zeros();
            let lo = (first as u128) << (bits - dir_bits);
            // (The block's last address: its size less one first, so that
            // the last block of the IPv6 space does not overflow.)
            let hi = lo + (((count as u128) << (bits - dir_bits)) - 1);
            // The longest route covering the whole block.
            let default = (0..=block_len)
                .rev()
                .find_map(|len| {
                    let net = lo & mask(len);
                    let i = seek(net, len as u8);
                    (i < n)
                        .then(|| route(i))
                        .filter(|r| r.net == net && u32::from(r.len) == len)
                        .map(|r| r.value)
                })
                .unwrap_or(0);
            // Dead subtrees (counted before they are replaced).
            for &d in &dir[first..first + count] {
                if d & LEAF == 0 {
                    stale += self.subtree_entries(d as usize);
                }
            }
            dir[first..first + count].fill(default | LEAF);
            // Routes inside the block, longer than it: short ones painted
            // shortest first, long ones grouped by direct slot.
            short.clear();
            long.clear();
            let mut i = seek(lo, 0);
            while i < n {
                let r = route(i);
                if r.net > hi {
                    break;
                }
                let len = u32::from(r.len);
                if len > dir_bits {
                    long.push(r);
                } else if len > block_len {
                    short.push(r);
                }
                i += 1;
            }
            b.paint(&mut dir, dir_bits, &mut short);
            b.nodes_under(&mut dir, dir_bits, &long);
        }
        if stale * 2 > b.nodes.len() + b.leaves.len() {
            return None;
        }
        Some(Poptrie {
            dir_bits,
            dir,
            nodes: b.nodes,
            leaves: b.leaves,
            stale,
            _k: std::marker::PhantomData,
        })
    }

    /// Nodes and leaves of the subtree at node `idx`.
    fn subtree_entries(&self, idx: usize) -> usize {
        let n = self.nodes[idx];
        let children = n.vector.count_ones() as usize;
        1 + n.leafvec.count_ones() as usize
            + (0..children)
                .map(|c| self.subtree_entries(n.base1 as usize + c))
                .sum::<usize>()
    }

    /// Entries (nodes and leaves) left unreachable by [`Poptrie::patched`].
    pub fn stale_entries(&self) -> usize {
        self.stale
    }

    /// The value of the longest prefix containing `key` (0 when none).
    #[inline]
    pub fn lookup(&self, key: K) -> u32 {
        let d = self.dir[key.bits(0, self.dir_bits)];
        if d & LEAF != 0 {
            return d & !LEAF;
        }
        let mut n = self.nodes[d as usize];
        let mut off = self.dir_bits;
        loop {
            let s = stride_at(K::BITS, off);
            let v = key.bits(off, s);
            let m = mask(v);
            if n.vector & (1u64 << v) != 0 {
                n = self.nodes[(n.base1 + (n.vector & m).count_ones() - 1) as usize];
                off += s;
            } else {
                return self.leaves[(n.base0 + (n.leafvec & m).count_ones() - 1) as usize];
            }
        }
    }

    /// One step for a batch lane: `d` is a node index; returns the next node
    /// index, or `LEAF | value` when the walk ends.
    #[inline(always)]
    fn step(&self, key: K, d: u32, off: u32, s: u32) -> u32 {
        let n = &self.nodes[d as usize];
        let v = key.bits(off, s);
        let m = mask(v);
        if n.vector & (1u64 << v) != 0 {
            n.base1 + (n.vector & m).count_ones() - 1
        } else {
            LEAF | self.leaves[(n.base0 + (n.leafvec & m).count_ones() - 1) as usize]
        }
    }

    /// Looks up many keys at once, walking them level by level so that the
    /// memory accesses of independent lookups overlap (all lanes' node loads of
    /// one level are issued before any result of the next level is needed).
    pub fn lookup_batch(&self, keys: &[K], out: &mut [u32]) {
        const W: usize = 32;
        assert_eq!(
            keys.len(),
            out.len(),
            "keys and out must have the same length"
        );
        for (ks, os) in keys.chunks(W).zip(out.chunks_mut(W)) {
            let n = ks.len();
            let mut cur = [0u32; W];
            let mut live = 0usize;
            for i in 0..n {
                cur[i] = self.dir[ks[i].bits(0, self.dir_bits)];
                live += usize::from(cur[i] & LEAF == 0);
            }
            let mut off = self.dir_bits;
            while live > 0 {
                let s = stride_at(K::BITS, off);
                live = 0;
                for i in 0..n {
                    if cur[i] & LEAF == 0 {
                        cur[i] = self.step(ks[i], cur[i], off, s);
                        live += usize::from(cur[i] & LEAF == 0);
                    }
                }
                off += s;
            }
            for i in 0..n {
                os[i] = cur[i] & !LEAF;
            }
        }
    }

    /// Bytes used by the compiled structure.
    pub fn bytes(&self) -> usize {
        self.dir.len() * 4 + self.nodes.len() * std::mem::size_of::<Node>() + self.leaves.len() * 4
    }

    pub fn dir_bytes(&self) -> usize {
        self.dir.len() * 4
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn leaf_count(&self) -> usize {
        self.leaves.len()
    }
}

struct Builder {
    bits: u32,
    nodes: Vec<Node>,
    leaves: Vec<u32>,
}

impl Builder {
    /// Paints `short` routes (none longer than `dir_bits`) into the direct
    /// table as leaves, shortest first.
    fn paint(&self, dir: &mut [u32], dir_bits: u32, short: &mut [BuildRoute]) {
        short.sort_by_key(|r| r.len);
        for r in short.iter() {
            let start = (r.net >> (self.bits - dir_bits)) as usize;
            let count = 1usize << (dir_bits - u32::from(r.len));
            dir[start..start + count].fill(r.value | LEAF);
        }
    }

    /// Makes a node of each direct-table slot that `long` routes (longer
    /// than `dir_bits`, sorted by network) fall in; the leaf painted in
    /// the slot is the value they fall back to.
    fn nodes_under(&mut self, dir: &mut [u32], dir_bits: u32, long: &[BuildRoute]) {
        let shift = self.bits - dir_bits;
        let mut i = 0;
        while i < long.len() {
            let chunk = (long[i].net >> shift) as usize;
            let end = i + long[i..]
                .iter()
                .take_while(|r| (r.net >> shift) as usize == chunk)
                .count();
            let idx = self.nodes.len();
            self.nodes.push(Node::default());
            self.fill(
                idx,
                &long[i..end],
                (chunk as u128) << shift,
                dir_bits,
                dir[chunk] & !LEAF,
            );
            dir[chunk] = idx as u32;
            i = end;
        }
    }

    /// Fills node `idx` at depth `d` covering `[lo, lo + 2^(bits-d))` from
    /// `slice` (routes inside that range, sorted by network then length);
    /// `default` is the value of the longest route covering the whole range.
    fn fill(&mut self, idx: usize, slice: &[BuildRoute], lo: u128, d: u32, default: u32) {
        let s = stride_at(self.bits, d);
        let shift = self.bits - d - s;
        let slots = 1usize << s;
        let mut paint = [default; 64];
        let mut plen = [0u8; 64];
        let mut has_child = 0u64;
        for r in slice {
            let len = u32::from(r.len);
            if len <= d {
                continue; // covers the whole node: already in `default`
            }
            let slot = ((r.net - lo) >> shift) as usize;
            if len <= d + s {
                let count = 1usize << (d + s - len);
                for k in slot..slot + count {
                    if r.len > plen[k] {
                        plen[k] = r.len;
                        paint[k] = r.value;
                    }
                }
            } else {
                has_child |= 1 << slot;
            }
        }
        let base1 = self.nodes.len() as u32;
        let nchildren = has_child.count_ones() as usize;
        self.nodes
            .resize(self.nodes.len() + nchildren, Node::default());
        let base0 = self.leaves.len() as u32;
        let mut leafvec = 0u64;
        let mut last: Option<u32> = None;
        for (k, &value) in paint.iter().enumerate().take(slots) {
            if has_child & (1 << k) != 0 {
                continue;
            }
            if last != Some(value) {
                leafvec |= 1 << k;
                self.leaves.push(value);
                last = Some(value);
            }
        }
        self.nodes[idx] = Node {
            vector: has_child,
            leafvec,
            base1,
            base0,
        };
        // A child's slice is every route inside its slot (sorted by network,
        // so contiguous); the short ones among them are skipped by the child
        // as covering routes already painted into its default.
        let mut c = base1 as usize;
        let mut rest = has_child;
        let mut from = 0;
        while rest != 0 {
            let slot = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let slot_lo = lo + ((slot as u128) << shift);
            let start = from + slice[from..].partition_point(|r| r.net < slot_lo);
            // The last slot of the address space has no upper bound.
            let end = match slot_lo.checked_add(1u128 << shift) {
                Some(hi) => start + slice[start..].partition_point(|r| r.net < hi),
                None => slice.len(),
            };
            self.fill(c, &slice[start..end], slot_lo, d + s, paint[slot]);
            from = end;
            c += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(net: u32, len: u8, value: u32) -> BuildRoute {
        BuildRoute {
            net: net as u128,
            len,
            value,
        }
    }

    #[test]
    fn small_table() {
        let t = Poptrie::<u32>::build(&[
            r(0, 0, 1),
            r(0x0a00_0000, 8, 2),
            r(0x0a01_0000, 16, 3),
            r(0x0a01_0300, 24, 4),
            r(0x0a01_0304, 32, 5),
            r(0x0a01_0380, 25, 6),
        ]);
        assert_eq!(t.lookup(0x0808_0808), 1);
        assert_eq!(t.lookup(0x0a09_0000), 2);
        assert_eq!(t.lookup(0x0a01_0900), 3);
        assert_eq!(t.lookup(0x0a01_0301), 4);
        assert_eq!(t.lookup(0x0a01_0304), 5);
        assert_eq!(t.lookup(0x0a01_0305), 4);
        assert_eq!(t.lookup(0x0a01_03ff), 6);
        let keys = [
            0x0808_0808u32,
            0x0a09_0000,
            0x0a01_0900,
            0x0a01_0301,
            0x0a01_0304,
            0x0a01_0305,
            0x0a01_03ff,
        ];
        let mut out = [0u32; 7];
        t.lookup_batch(&keys, &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 4, 6]);
    }

    /// Random sets of nested IPv4 routes, then a few changes: the patched
    /// trie is made (the changes are small) and answers like a build, at
    /// every route's edges, for both direct-table sizes and for patches of
    /// patches.
    #[test]
    fn patched_answers_like_a_build() {
        let mut rng = crate::rng::Rng(11);
        let route = |rng: &mut crate::rng::Rng| {
            let len = [8u8, 12, 16, 18, 20, 22, 24, 26, 32][(rng.next_u32() % 9) as usize];
            let a = (rng.next_u32() & 0x0f3f_ffff) & (u32::MAX << (32 - u32::from(len)));
            r(a, len, 1 + rng.next_u32() % 7)
        };
        let canon = |mut v: Vec<BuildRoute>| {
            v.sort_by_key(|r| (r.net, r.len));
            v.dedup_by_key(|r| (r.net, r.len));
            v
        };
        for (case, size) in [(0, 40usize), (1, 300), (2, SMALL_TABLE + 500)]
            .into_iter()
            .cycle()
            .take(30)
        {
            let mut set = canon((0..size).map(|_| route(&mut rng)).collect());
            let mut trie = Poptrie::<u32>::build(&set);
            for _round in 0..3 {
                let mut next = set.clone();
                let mut changed = Vec::new();
                for _ in 0..1 + case * 3 {
                    match rng.next_u32() % 3 {
                        0 => {
                            let x = route(&mut rng);
                            changed.push((x.net, x.len));
                            next.retain(|y| (y.net, y.len) != (x.net, x.len));
                            next.push(x);
                        }
                        1 if !next.is_empty() => {
                            let x = next.swap_remove(rng.next_u32() as usize % next.len());
                            changed.push((x.net, x.len));
                        }
                        _ if !next.is_empty() => {
                            let k = rng.next_u32() as usize % next.len();
                            next[k].value = 100 + rng.next_u32() % 5;
                            changed.push((next[k].net, next[k].len));
                        }
                        _ => {}
                    }
                }
                let next = canon(next);
                let patched = trie
                    .patched(next.len(), |i| next[i], changed.iter().copied())
                    .expect("a few changes of /8 or longer patch");
                let built = Poptrie::<u32>::build(&next);
                for x in next.iter().chain(&set) {
                    let lo = x.net as u32;
                    let hi = lo | u32::MAX.checked_shr(u32::from(x.len)).unwrap_or(0);
                    for key in [
                        lo,
                        hi,
                        lo.wrapping_sub(1),
                        hi.wrapping_add(1),
                        lo / 2 + hi / 2,
                    ] {
                        assert_eq!(patched.lookup(key), built.lookup(key), "key {key:#x}");
                    }
                }
                set = next;
                trie = patched;
            }
        }
    }

    /// A change in the last block of the IPv6 space (its end is 2^128).
    #[test]
    fn patched_at_the_top_of_the_ipv6_space() {
        let r6 = |net: u128, len: u8, value: u32| BuildRoute { net, len, value };
        let base = vec![r6(0xfd00 << 112, 16, 1), r6(0xff00 << 112, 8, 2)];
        let trie = Poptrie::<u128>::build(&base);
        let next = vec![
            r6(0xfc00 << 112, 6, 3),
            r6(0xfd00 << 112, 16, 1),
            r6(0xff00 << 112, 8, 4),
        ];
        let patched = trie
            .patched(
                next.len(),
                |i| next[i],
                [(0xfc00 << 112, 6), (0xff00 << 112, 8)],
            )
            .expect("two blocks of a 256-slot table");
        let built = Poptrie::<u128>::build(&next);
        for key in [
            0xfc00u128 << 112,
            0xfd00 << 112,
            0xfe01 << 112,
            0xff00 << 112,
            u128::MAX,
        ] {
            assert_eq!(patched.lookup(key), built.lookup(key), "key {key:#x}");
        }
    }

    #[test]
    fn empty_and_host_routes_v6() {
        let t = Poptrie::<u128>::build(&[]);
        assert_eq!(t.lookup(12345), 0);
        let a: u128 = 0xfd00_0001_0000_0002_0000_0000_0000_0004;
        let t = Poptrie::<u128>::build(&[
            BuildRoute {
                net: a,
                len: 128,
                value: 7,
            },
            BuildRoute {
                net: a & !0xffff_ffff_ffff_ffff,
                len: 64,
                value: 3,
            },
        ]);
        assert_eq!(t.lookup(a), 7);
        assert_eq!(t.lookup(a + 1), 3);
        assert_eq!(t.lookup(a + 100), 3);
        assert_eq!(t.lookup(a - 5), 0); // the previous /64
        assert_eq!(t.lookup(0), 0);
    }
}
