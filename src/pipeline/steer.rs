//! Which worker forwards a flow: the reader's indirection table.
//!
//! The reader hashes each frame's 5-tuple and looks the hash's bucket up in
//! a table of [`BUCKETS`] entries (a NIC's RSS indirection table, in
//! software). Every packet of a flow goes to its bucket's worker, so a
//! worker's flow cache and counters see the whole flow. With
//! [`Steering::Adaptive`] the reader moves one bucket at a time from a
//! worker whose queue backs up to one whose queue runs dry, judged at each
//! batch it hands out: a worker that loses its core for a while (the
//! control plane's rebuilds, another process, the hypervisor) hands part of
//! its share to the others instead of making everyone wait for its tail.
//! Moving a bucket is safe at any batch boundary: the writer restores input
//! order from the batches' indices whatever worker forwarded them, a flow
//! cache entry on the new worker is just a miss (and one left on the old
//! worker is checked against the table versions when it is hit again), and
//! every counter is the same for any split.

/// How the reader assigns flows to workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Steering {
    /// Buckets of the hash space start in fixed shares and move, one at a
    /// time, from a worker whose queue backs up to one that runs dry (a
    /// flow stays on one worker until its bucket moves).
    #[default]
    Adaptive,
    /// Every worker keeps its share of the hash space for the whole run:
    /// a flow never changes worker.
    Fixed,
}

/// How flow hashes are first shared out: each worker a fixed range of the
/// hash space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Split {
    /// The hash space scaled to this many units…
    units: u64,
    /// …of which every worker but the last owns `UNIT`; the last owns the rest.
    last: usize,
}

/// Units of hash space per worker.
pub(super) const UNIT: u64 = 16;

impl Split {
    /// `inline`: the last worker's weight, in sixteenths of a worker, when
    /// the reader runs it itself.
    pub(super) fn new(workers: usize, inline: Option<u64>) -> Split {
        let last = workers.max(1) - 1;
        let w = inline.unwrap_or(UNIT).clamp(1, UNIT);
        Split {
            units: last as u64 * UNIT + w,
            last,
        }
    }

    /// The worker of a flow hash: multiply and shift, not a division.
    #[inline]
    pub(super) fn worker_of(self, hash: u64) -> usize {
        let u = ((hash & 0xffff_ffff) * self.units) >> 32;
        ((u / UNIT) as usize).min(self.last)
    }
}

/// Buckets in the table (at least four per worker when there are more
/// than 256 workers). 1,024 buckets of 4 bytes: 4 KiB, in L1 beside the
/// reader's other state; one bucket is ~0.1 % of the traffic.
pub(super) const BUCKETS: usize = 1024;

/// Queue depth, in batches, at which a worker is behind: the reader moves
/// one of its buckets to the worker whose queue is shortest. Deeper than
/// the few batches a worker falls back while off its core for one
/// control-plane rebuild: such a pause is not a worker that cannot keep
/// pace, and moving its buckets to the reader's own worker (the run's
/// critical path) would only have them move back.
pub(super) const BEHIND: usize = 8;

/// At this depth or less, once a batch has just been queued, a worker has
/// run dry (it had nothing else queued): it takes a bucket from the worker
/// whose queue is longest, when that one holds at least [`LENDS`].
pub(super) const DRY: usize = 1;

/// Least depth of the worker that gives a dry one a bucket.
pub(super) const LENDS: usize = 2;

/// The depth the reader's own worker counts as (it forwards as it reads:
/// never behind, never dry), between [`DRY`] and [`BEHIND`]: a threaded
/// worker that runs dry takes from it, one that backs up gives to it.
pub(super) const INLINE_DEPTH: usize = 2;

/// The indirection table: each bucket's worker.
#[derive(Clone, Debug)]
pub(super) struct Table {
    owner: Vec<u32>,
    /// Buckets each worker holds (never fewer than one).
    held: Vec<u32>,
    /// Buckets moved so far.
    pub(super) moves: u64,
}

impl Table {
    /// The table that gives each worker its share of `split`.
    pub(super) fn new(split: Split, workers: usize) -> Table {
        let workers = workers.max(1);
        let n = BUCKETS.max(4 * workers);
        let mut held = vec![0u32; workers];
        let owner = (0..n)
            .map(|b| {
                // The bucket's first hash (rounded up, as `bucket_of` reads).
                let start = ((b as u64) << 32).div_ceil(n as u64);
                let w = split.worker_of(start).min(workers - 1);
                held[w] += 1;
                w as u32
            })
            .collect();
        Table {
            owner,
            held,
            moves: 0,
        }
    }

    #[inline]
    fn bucket_of(&self, hash: u64) -> usize {
        (((hash & 0xffff_ffff) * self.owner.len() as u64) >> 32) as usize
    }

    /// The worker of a flow hash.
    #[inline]
    pub(super) fn worker_of(&self, hash: u64) -> usize {
        self.owner[self.bucket_of(hash)] as usize
    }

    /// Buckets each worker holds.
    pub(super) fn held(&self) -> &[u32] {
        &self.held
    }

    /// Judges worker `w`'s queue right after a batch was queued for it;
    /// `depth[k]`: batches waiting in worker `k`'s queue ([`INLINE_DEPTH`]
    /// for the reader's own). Moves one bucket when `w` is behind (to the
    /// shortest queue, if it is at least two batches shorter) or has run
    /// dry (from the longest, if it holds [`LENDS`] or more). Returns the
    /// move made, as (from, to).
    pub(super) fn rebalance(&mut self, w: usize, depth: &[usize]) -> Option<(usize, usize)> {
        let others = || (0..depth.len()).filter(move |&k| k != w);
        let (from, to) = if depth[w] >= BEHIND {
            let to = others().min_by_key(|&k| depth[k])?;
            (depth[to] + 2 <= depth[w]).then_some((w, to))?
        } else if depth[w] <= DRY {
            let from = others().max_by_key(|&k| depth[k])?;
            (depth[from] >= LENDS).then_some((from, w))?
        } else {
            return None;
        };
        self.give(from, to).then_some((from, to))
    }

    /// Moves one of `from`'s buckets to `to`: one next to a bucket `to`
    /// holds when there is one (with two workers, the boundary between
    /// their ranges, so a move back returns the same flows, whose entries
    /// may still stand in that worker's flow cache), else `from`'s last.
    /// A worker keeps at least one bucket.
    fn give(&mut self, from: usize, to: usize) -> bool {
        if from == to || self.held[from] <= 1 {
            return false;
        }
        let (f, t) = (from as u32, to as u32);
        let o = &self.owner;
        let beside = |b: usize| (b > 0 && o[b - 1] == t) || o.get(b + 1) == Some(&t);
        let Some(b) = (0..o.len())
            .find(|&b| o[b] == f && beside(b))
            .or_else(|| o.iter().rposition(|&x| x == f))
        else {
            return false;
        };
        self.owner[b] = t;
        self.held[from] -= 1;
        self.held[to] += 1;
        self.moves += 1;
        true
    }
}

/// Whether the reader forwards the last worker's share itself, and how the
/// flows are first shared out: for `opts`, with or without live events and
/// outputs.
pub(super) fn first_split(opts: &super::Options, live: bool, writing: bool) -> (bool, Split) {
    let nw = opts.workers.max(1);
    // No core to spare for the reader: it forwards a share itself. A live
    // event stream keeps the control plane busy: it takes a core too.
    let inline_last = opts.reader.inline(nw, live);
    // Reading costs the reader a fraction of a cached packet and nothing
    // beside a walk: with the flow cache its own worker starts with 13/16
    // of a share (adaptive steering moves buckets from there).
    let cached = !writing && opts.flow_cache > 0;
    let inline = inline_last.then_some(if cached { 13 } else { UNIT });
    (inline_last, Split::new(nw, inline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_each_worker_its_share_of_the_hash_space() {
        // Hashes are the top 48 bits of a multiplication: spread them evenly
        // over the low 32 bits the split reads.
        let shares = |split: Split, n: usize| {
            let mut c = vec![0u64; n];
            for i in 0..64_000u64 {
                c[split.worker_of(i * (1 << 32) / 64_000)] += 1;
            }
            c
        };
        assert_eq!(shares(Split::new(1, None), 1), [64_000]);
        assert_eq!(shares(Split::new(2, None), 2), [32_000, 32_000]);
        assert_eq!(shares(Split::new(4, Some(UNIT)), 4), [16_000; 4]);
        // The reader's worker at 3/4 of a share: 16 / 28 and 12 / 28.
        assert_eq!(shares(Split::new(2, Some(12)), 2), [36_572, 27_428]);
        let c = shares(Split::new(3, Some(8)), 3);
        for (got, want) in c.into_iter().zip([25_600, 25_600, 12_800]) {
            assert!(got.abs_diff(want) <= 1, "{got} for {want}");
        }
        // The largest hash still lands on a worker.
        assert_eq!(Split::new(3, Some(8)).worker_of(u64::MAX), 2);
    }

    /// Every hash, as the reader reads it, lands in its bucket's worker,
    /// and the table starts with the split's shares.
    #[test]
    fn the_table_starts_as_the_split_and_follows_its_owners() {
        for (workers, inline) in [(1, None), (2, None), (2, Some(12)), (3, Some(8)), (5, None)] {
            let split = Split::new(workers, inline);
            let t = Table::new(split, workers);
            assert_eq!(t.held().iter().sum::<u32>() as usize, BUCKETS);
            assert!(t.held().iter().all(|&h| h > 0), "{:?}", t.held());
            let mut agree = 0;
            for i in 0..64_000u64 {
                let h = i * (1 << 32) / 64_000;
                assert_eq!(t.worker_of(h), t.owner[t.bucket_of(h)] as usize);
                agree += usize::from(t.worker_of(h) == split.worker_of(h));
            }
            // Only hashes in a bucket that straddles two ranges may differ.
            assert!(64_000 - agree <= 64 * workers, "{workers}: {agree}");
            assert_eq!(t.worker_of(u64::MAX), t.owner[BUCKETS - 1] as usize);
        }
        // More workers than buckets: four buckets each at least.
        let t = Table::new(Split::new(600, None), 600);
        assert_eq!(t.owner.len(), 2400);
        assert!(t.held().iter().all(|&h| h >= 4));
    }

    #[test]
    fn a_worker_behind_gives_a_bucket_and_a_dry_one_takes_one() {
        let mut t = Table::new(Split::new(2, Some(12)), 2);
        let start = t.held().to_vec();
        // Worker 0 threaded, worker 1 the reader's own.
        assert_eq!(t.rebalance(0, &[2, INLINE_DEPTH]), None, "in the band");
        assert_eq!(t.rebalance(0, &[3, INLINE_DEPTH]), None, "in the band");
        assert_eq!(
            t.rebalance(0, &[BEHIND - 1, INLINE_DEPTH]),
            None,
            "a pause of a few batches is not behind"
        );
        assert_eq!(t.rebalance(0, &[BEHIND, INLINE_DEPTH]), Some((0, 1)));
        assert_eq!(t.held(), [start[0] - 1, start[1] + 1]);
        assert_eq!(t.rebalance(0, &[1, INLINE_DEPTH]), Some((1, 0)));
        assert_eq!(t.rebalance(0, &[0, INLINE_DEPTH]), Some((1, 0)));
        assert_eq!(t.held(), [start[0] + 1, start[1] - 1]);
        assert_eq!(t.moves, 3);
        // Threads only: a full queue gives to a short one, not to another
        // full one; a dry one takes only from a queue with some depth.
        let mut t = Table::new(Split::new(3, None), 3);
        assert_eq!(t.rebalance(0, &[32, 31, 32]), None);
        assert_eq!(t.rebalance(0, &[32, 31, 30]), Some((0, 2)));
        assert_eq!(t.rebalance(1, &[1, 1, 1]), None);
        assert_eq!(t.rebalance(1, &[1, 0, 3]), Some((2, 1)));
        // One worker: nothing to move.
        let mut t = Table::new(Split::new(1, None), 1);
        assert_eq!(t.rebalance(0, &[40]), None);
        assert_eq!(t.rebalance(0, &[0]), None);
    }

    /// Moves between two workers shift the boundary of their ranges: a move
    /// back returns the very bucket (the same flows), and a worker keeps one
    /// bucket at least.
    #[test]
    fn moves_shift_the_boundary_and_leave_every_worker_a_bucket() {
        let mut t = Table::new(Split::new(2, None), 2);
        let before = t.owner.clone();
        assert!(t.give(0, 1));
        let moved: Vec<usize> = (0..BUCKETS).filter(|&b| t.owner[b] != before[b]).collect();
        assert_eq!(
            moved,
            [BUCKETS / 2 - 1],
            "the last bucket of worker 0's range"
        );
        assert!(t.give(1, 0));
        assert_eq!(t.owner, before, "the same bucket back");
        while t.give(0, 1) {}
        assert_eq!(t.held(), [1, BUCKETS as u32 - 1]);
        assert_eq!(t.rebalance(0, &[BEHIND, INLINE_DEPTH]), None);
        // The owners and the counts agree after any moves.
        for w in 0..2 {
            let n = t.owner.iter().filter(|&&o| o as usize == w).count();
            assert_eq!(n, t.held()[w] as usize);
        }
    }
}
