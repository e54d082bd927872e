//! The part of a run a multi-queue NIC does before any core sees a packet
//! (receive-side scaling): each frame's flow hash is computed once and
//! written into its descriptor, and the frame is placed in the receive
//! queue of the worker its hash maps to, so that each worker's frames lie
//! together in memory.
//!
//! Why: two cores forwarding from one capture, laid out in input order,
//! each touch every cache line of it (their frames interleave, and the
//! prefetchers fetch the neighbours), so two workers move twice the bytes
//! one does; on our 2-core VM that held the forwarding code itself to
//! 0.49-0.80 of linear, against ~1.00 with each thread's frames together
//! (README, "Scaling"). A NIC's queues give the dataplanes we compare with
//! (VPP, DPDK) exactly that layout, and the hash in the descriptor, for
//! free; here the run pays for it before its clock starts, and says how
//! long it took ([`Queues::took`]).
//!
//! The reader then reads only descriptors (8 bytes a frame, in input
//! order): the bucket of the hash gives the worker (the steering table may
//! still move buckets), the position gives the frame. Input order is kept
//! by the position's input index ([`Queues::input_index`]), which the
//! writer restores, so outputs are the same as without queues.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::steer::Split;
use crate::io::{Frame, Link};
use crate::wire;

/// One frame's receive descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Desc {
    /// The flow hash's low 32 bits (all the steering reads).
    pub hash: u32,
    /// Where the frame is in [`Queues::frames`].
    pub pos: u32,
}

/// A capture placed in receive queues: [`Queues::new`] for a run's
/// options, then [`super::run_queued`] (or [`super::run`], which does
/// both).
pub struct Queues<'f> {
    /// The frames, queue by queue (queue 0's first), each queue in input
    /// order; the input itself when there is one queue.
    pub(super) frames: Cow<'f, [Frame]>,
    /// Per input frame, in input order.
    pub(super) desc: Vec<Desc>,
    /// Per position in `frames`: the input index (empty when positions are
    /// input indices).
    seq: Vec<u32>,
    /// Frames in each queue.
    pub(super) queued: Vec<usize>,
    /// Time taken to build all this.
    pub(super) took: Duration,
    /// The first split of the flows the queues follow.
    pub(super) split: Split,
}

impl<'f> Queues<'f> {
    /// The queues of a run with `opts`, with live events or not, writing
    /// traces or pcapng or not (these decide the reader's first split).
    pub fn new(
        frames: &'f [Frame],
        opts: &super::Options,
        live: bool,
        writing: bool,
    ) -> Result<Self, super::PipelineError> {
        let (_, split) = super::steer::first_split(opts, live, writing);
        Self::place(frames, split, opts.workers)
    }

    /// Frames in each queue.
    pub fn queued(&self) -> &[usize] {
        &self.queued
    }

    /// Time taken to place the frames.
    pub fn took(&self) -> Duration {
        self.took
    }

    /// Places `frames` in the queues of `split`'s `workers` workers (one
    /// queue: no copy). Frames are numbered by `u32`: at most 2^32 - 1 of
    /// them.
    pub(super) fn place(
        frames: &'f [Frame],
        split: Split,
        workers: usize,
    ) -> Result<Self, super::PipelineError> {
        let t = Instant::now();
        let n = frames.len();
        if u32::try_from(n).is_err() {
            return Err(super::PipelineError::TooManyFrames { frames: n });
        }
        let nw = workers.max(1);
        let hashes: Vec<u32> = frames.iter().map(|f| dispatch_hash(f) as u32).collect();
        let queue: Vec<usize> = hashes
            .iter()
            .map(|&h| split.worker_of(u64::from(h)).min(nw - 1))
            .collect();
        let mut queued = vec![0usize; nw];
        for &q in &queue {
            queued[q] += 1;
        }
        // Each queue's first position, then each frame's.
        let mut next: Vec<u32> = queued
            .iter()
            .scan(0u32, |at, &k| {
                let first = *at;
                *at += k as u32;
                Some(first)
            })
            .collect();
        let mut desc = Vec::with_capacity(n);
        let mut seq = vec![0u32; n];
        for (i, (&hash, &q)) in hashes.iter().zip(&queue).enumerate() {
            let pos = next[q];
            next[q] += 1;
            seq[pos as usize] = i as u32;
            desc.push(Desc { hash, pos });
        }
        // One queue is the input itself. Otherwise the frames are copied
        // queue by queue, so that each queue's frames (and their bytes,
        // allocated one after the other) lie together.
        let frames = if nw == 1 {
            seq = Vec::new();
            Cow::Borrowed(frames)
        } else {
            Cow::Owned(seq.iter().map(|&i| frames[i as usize].clone()).collect())
        };
        Ok(Queues {
            frames,
            desc,
            seq,
            queued,
            took: t.elapsed(),
            split,
        })
    }

    /// The input index of the frame at `pos`.
    #[inline]
    pub(super) fn input_index(&self, pos: u32) -> u32 {
        if self.seq.is_empty() {
            pos
        } else {
            self.seq[pos as usize]
        }
    }
}

/// The 5-tuple hash a frame's descriptor carries (a light header peek;
/// frames it cannot read go to the first queue).
#[inline]
fn dispatch_hash(f: &Frame) -> u64 {
    dispatch_hash_of(f.link, &f.data)
}

/// [`dispatch_hash`] of a frame's link and bytes.
#[inline]
pub(super) fn dispatch_hash_of(link: Link, d: &[u8]) -> u64 {
    // The common frame (Ethernet, IPv4 without options, TCP or UDP) read at
    // fixed offsets; the same value as the general reading below.
    if link == Link::Ethernet
        && d.len() >= 38
        && d[12..15] == [0x08, 0x00, 0x45]
        && matches!(d[23], 6 | 17)
    {
        let w = |o: usize| u64::from(u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]));
        let x = w(26) ^ w(30) ^ (u64::from(d[23]) << 32 | w(34));
        return x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
    }
    dispatch_hash_read(link, d)
}

/// [`dispatch_hash`] by reading the link and IP headers.
fn dispatch_hash_read(link: Link, data: &[u8]) -> u64 {
    let Ok(off) = wire::ip_offset(link, data) else {
        return 0;
    };
    let ip = &data[off..];
    let (src, dst, proto, l4): (u128, u128, u8, usize) = match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 20 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let s = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
            let d = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
            (u128::from(s), u128::from(d), ip[9], ihl)
        }
        Some(6) if ip.len() >= 40 => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            d.copy_from_slice(&ip[24..40]);
            (u128::from_be_bytes(s), u128::from_be_bytes(d), ip[6], 40)
        }
        _ => return 0,
    };
    let ports = match (proto, ip.get(l4..l4 + 4)) {
        (6 | 17, Some(p)) => u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
        _ => 0,
    };
    let mut x = src ^ dst.rotate_left(64) ^ (u128::from(proto) << 32 | u128::from(ports));
    x ^= x >> 64;
    (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(number: usize, src: [u8; 4]) -> Frame {
        let mut d = vec![0u8; 64];
        d[12] = 0x08;
        d[14] = 0x45;
        d[23] = 17;
        d[26..30].copy_from_slice(&src);
        d[30..34].copy_from_slice(&[10, 0, 0, 9]);
        Frame {
            number,
            timestamp: Duration::ZERO,
            link: Link::Ethernet,
            data: d,
        }
    }

    #[test]
    fn queues_hold_each_workers_frames_together_in_input_order() {
        let frames: Vec<Frame> = (0..500)
            .map(|i| frame(i + 1, [10, 0, (i / 200) as u8, (i % 200) as u8]))
            .collect();
        let split = Split::new(2, None);
        let ing = Queues::place(&frames, split, 2).unwrap();
        assert_eq!(ing.queued.iter().sum::<usize>(), 500);
        assert!(ing.queued.iter().all(|&k| k > 100), "{:?}", ing.queued);
        let mut seen = vec![false; 500];
        for (i, d) in ing.desc.iter().enumerate() {
            let w = split.worker_of(u64::from(d.hash));
            // The frame sits in its worker's queue…
            let (lo, hi) = if w == 0 {
                (0, ing.queued[0])
            } else {
                (ing.queued[0], 500)
            };
            assert!(
                (lo..hi).contains(&(d.pos as usize)),
                "frame {i} at {}",
                d.pos
            );
            // …is the input's frame, and maps back to its input index.
            assert_eq!(ing.frames[d.pos as usize], frames[i]);
            assert_eq!(ing.input_index(d.pos), i as u32);
            assert_eq!(d.hash, dispatch_hash(&frames[i]) as u32);
            seen[d.pos as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "every position holds one frame");
        // Within a queue, input order.
        for q in [0..ing.queued[0], ing.queued[0]..500] {
            let idx: Vec<u32> = q.map(|p| ing.input_index(p as u32)).collect();
            assert!(idx.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn every_frame_lies_in_its_own_workers_queue_past_256_workers() {
        let frames: Vec<Frame> = (0..3000)
            .map(|i| frame(i + 1, [10, (i / 65536) as u8, (i / 256) as u8, i as u8]))
            .collect();
        let nw = 300;
        let split = Split::new(nw, None);
        let ing = Queues::place(&frames, split, nw).unwrap();
        assert_eq!(ing.queued.len(), nw);
        let firsts: Vec<usize> = ing
            .queued
            .iter()
            .scan(0, |at, &k| {
                let first = *at;
                *at += k;
                Some(first)
            })
            .collect();
        let mut past_256 = 0;
        for d in &ing.desc {
            let w = split.worker_of(u64::from(d.hash));
            let p = d.pos as usize;
            assert!(
                (firsts[w]..firsts[w] + ing.queued[w]).contains(&p),
                "worker {w}'s frame at {p}"
            );
            past_256 += usize::from(w >= 256);
        }
        assert!(past_256 > 0, "no frame for a worker past 255");
    }

    #[test]
    fn one_queue_is_the_input_itself() {
        let frames: Vec<Frame> = (0..10).map(|i| frame(i + 1, [10, 0, 0, i as u8])).collect();
        let ing = Queues::place(&frames, Split::new(1, None), 1).unwrap();
        assert!(matches!(ing.frames, Cow::Borrowed(_)));
        assert_eq!(ing.queued, vec![10]);
        for (i, d) in ing.desc.iter().enumerate() {
            assert_eq!((d.pos, ing.input_index(d.pos)), (i as u32, i as u32));
        }
    }

    #[test]
    fn dispatch_reads_the_common_frame_as_the_general_reading_does() {
        for (proto, sport) in [(17u8, 1000u16), (6, 40000)] {
            let mut data = Vec::new();
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            let ip = b.ipv4([10, 1, 2, 3], [10, 4, 5, 6], 64);
            if proto == 17 {
                ip.udp(sport, 53).write(&mut data, &[0; 18]).unwrap();
            } else {
                ip.tcp(sport, 443, 1, 1000).write(&mut data, &[]).unwrap();
            }
            let f = Frame {
                number: 1,
                timestamp: Duration::ZERO,
                link: Link::Ethernet,
                data,
            };
            assert_eq!(
                dispatch_hash(&f),
                dispatch_hash_read(f.link, &f.data),
                "proto {proto}"
            );
            // The same flow in a cooked capture hashes the same way.
            let mut sll = vec![0u8; 16];
            sll[14..16].copy_from_slice(&[0x08, 0x00]);
            sll.extend_from_slice(&f.data[14..]);
            let g = Frame {
                link: Link::LinuxSll,
                data: sll,
                ..f
            };
            assert_eq!(dispatch_hash(&g), dispatch_hash_read(f.link, &f.data));
        }
    }
}
