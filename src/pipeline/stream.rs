//! A capture streamed through the pipeline in bounded memory.
//!
//! A thread of its own reads the input chunk by chunk (what a NIC does
//! before any core sees a packet: frames into memory, each with its flow
//! hash), keeps the frames of its shard, resolves scheduled events as the
//! packet or capture time they wait for goes by, and hands each chunk to
//! the reader. A chunk goes back to a small pool once every batch cut from
//! it is forwarded and written, so a run holds at most [`POOL`] chunks
//! whatever the capture's length: memory is flat, and the first packets are
//! written while the last are still being read.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::ingest::dispatch_hash_of;
use super::schedule::{Scheduled, Trigger};
use crate::control::events::Event;
use crate::io::read::CaptureReader;
use crate::io::{FrameRef, Link};

/// Frames in a chunk at most, when only counting.
pub const CHUNK_FRAMES: usize = 8192;

/// Frames in a chunk at most, when traces or pcapng are written (each
/// frame in flight carries its outputs until the writer takes them: a few
/// kilobytes for a packet of many hops).
pub const WRITING_CHUNK_FRAMES: usize = 1024;

/// Bytes of frames in a chunk at most (a chunk holds at least one frame,
/// however large).
pub const CHUNK_BYTES: usize = 4 << 20;

/// Chunks a run holds at most: those being read, forwarded and written.
pub const POOL: usize = 4;

/// One frame of a chunk: its bytes are `start..end` of the chunk's.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChunkFrame {
    /// 1-based position in the input.
    pub(super) number: usize,
    /// Position among the frames this run forwards (its shard's), from 0:
    /// the order the writer restores.
    pub(super) seq: u64,
    pub(super) timestamp: Duration,
    pub(super) link: Link,
    pub(super) hash: u32,
    start: u32,
    end: u32,
}

/// Frames read together, and the scheduled events due among them.
#[derive(Default)]
pub(super) struct Chunk {
    bytes: Vec<u8>,
    pub(super) frames: Vec<ChunkFrame>,
    /// Events due before the input frame of this 0-based index, in the
    /// order they apply.
    pub(super) due: Vec<(usize, Event)>,
}

impl Chunk {
    /// Frame `pos` of the chunk.
    #[inline]
    pub(super) fn frame(&self, pos: u32) -> FrameRef<'_> {
        let f = &self.frames[pos as usize];
        FrameRef {
            number: f.number,
            timestamp: f.timestamp,
            link: f.link,
            data: &self.bytes[f.start as usize..f.end as usize],
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
        self.due.clear();
    }
}

/// A chunk on loan from the pool: it goes back when the last batch holding
/// it lets go.
pub(super) struct Pooled {
    chunk: Chunk,
    home: Sender<Chunk>,
}

impl std::ops::Deref for Pooled {
    type Target = Chunk;
    fn deref(&self) -> &Chunk {
        &self.chunk
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // The pool holds every chunk there is: there is room.
        let _ = self.home.try_send(std::mem::take(&mut self.chunk));
    }
}

/// Which part of the flows a run forwards: shard `index` of `count`
/// (0-based), by the flow hash the workers are steered by (read from other
/// bits of it, so that a shard's flows still spread over every worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether a frame of this flow hash is this shard's.
    #[inline]
    pub fn holds(self, hash: u32) -> bool {
        ((u64::from(hash.rotate_left(16)) * u64::from(self.count)) >> 32) == u64::from(self.index)
    }
}

/// What the input thread counts as it goes (read by a progress display).
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of the input read.
    pub bytes: AtomicU64,
    /// Frames read (all shards).
    pub frames: AtomicU64,
}

/// A capture to stream: the reader, the shard kept, the scheduled events
/// (resolved as the input goes by).
pub struct Source<R> {
    pub capture: CaptureReader<R>,
    pub shard: Option<Shard>,
    pub scheduled: Vec<Scheduled>,
    pub progress: Option<Arc<Progress>>,
}

/// How the input ended.
#[derive(Debug, Default)]
pub struct InputEnd {
    /// Why reading stopped before the input's end (a damaged record, an
    /// input that failed), naming the packet.
    pub stopped: Option<String>,
    /// Frames read, in every shard.
    pub frames: u64,
    /// Frames of other shards, read and not forwarded.
    pub other_shards: u64,
    /// Scheduled events whose packet or time never came (their lines).
    pub late: Vec<usize>,
}

/// Triggers not yet reached, in the order they fire.
struct Pending {
    /// (0-based input index, file order, event).
    packets: VecDeque<(usize, usize, Event)>,
    /// (offset from the first packet's time, file order, event).
    times: VecDeque<(Duration, usize, Event)>,
    lines: Vec<usize>,
}

impl Pending {
    fn new(sched: Vec<Scheduled>) -> Self {
        let lines = sched.iter().map(|s| s.line).collect();
        let mut packets = Vec::new();
        let mut times = Vec::new();
        for (k, s) in sched.into_iter().enumerate() {
            match s.trigger {
                Trigger::Packet(n) => packets.push((n - 1, k, s.event)),
                Trigger::Time(d) => times.push((d, k, s.event)),
            }
        }
        // Stable: events due together keep file order.
        packets.sort_by_key(|p| p.0);
        times.sort_by_key(|t| t.0);
        Pending {
            packets: packets.into(),
            times: times.into(),
            lines,
        }
    }

    /// Events due before input frame `i` (its time `since` the first
    /// frame's), in file order among themselves.
    fn due(&mut self, i: usize, since: Duration, out: &mut Vec<(usize, Event)>) {
        let mut now: Vec<(usize, Event)> = Vec::new();
        while self.packets.front().is_some_and(|p| p.0 <= i) {
            if let Some((_, k, e)) = self.packets.pop_front() {
                now.push((k, e));
            }
        }
        while self.times.front().is_some_and(|t| t.0 <= since) {
            if let Some((_, k, e)) = self.times.pop_front() {
                now.push((k, e));
            }
        }
        now.sort_by_key(|n| n.0);
        out.extend(now.into_iter().map(|(_, e)| (i, e)));
    }

    fn late(self) -> Vec<usize> {
        let mut late: Vec<usize> = (self.packets.iter().map(|p| p.1))
            .chain(self.times.iter().map(|t| t.1))
            .map(|k| self.lines[k])
            .collect();
        late.sort_unstable();
        late
    }
}

/// The input thread: reads `src` into chunks from the pool and sends them
/// to the reader, until the input ends, `stop` is set or the reader is gone.
pub(super) fn read_input<R: Read>(
    mut src: Source<R>,
    chunks: Sender<Pooled>,
    stop: Option<&AtomicBool>,
    chunk_frames: usize,
) -> InputEnd {
    let (home, pool) = bounded::<Chunk>(POOL);
    for _ in 0..POOL {
        let _ = home.send(Chunk::default());
    }
    let mut pending = Pending::new(std::mem::take(&mut src.scheduled));
    let mut end = InputEnd::default();
    let mut seq = 0u64;
    let mut first_ts: Option<Duration> = None;
    let mut index = 0usize;
    'chunks: loop {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        let Ok(mut c) = pool.recv() else { break };
        c.clear();
        let mut more = true;
        while c.frames.len() < chunk_frames && c.bytes.len() < CHUNK_BYTES {
            let start = c.bytes.len();
            let Some(m) = src.capture.next_into(&mut c.bytes) else {
                more = false;
                break;
            };
            let t0 = *first_ts.get_or_insert(m.timestamp);
            pending.due(index, m.timestamp.saturating_sub(t0), &mut c.due);
            index += 1;
            end.frames += 1;
            let data = &c.bytes[start..];
            let hash = dispatch_hash_of(m.link, data) as u32;
            if src.shard.is_some_and(|s| !s.holds(hash)) {
                end.other_shards += 1;
                c.bytes.truncate(start);
                continue;
            }
            // A chunk's bytes stay under 4 GiB: CHUNK_BYTES plus one record.
            let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(c.bytes.len())) else {
                break 'chunks;
            };
            c.frames.push(ChunkFrame {
                number: m.number,
                seq,
                timestamp: m.timestamp,
                link: m.link,
                hash,
                start: s,
                end: e,
            });
            seq += 1;
        }
        if let Some(p) = &src.progress {
            p.bytes.store(src.capture.consumed(), Ordering::Relaxed);
            p.frames.store(end.frames, Ordering::Relaxed);
        }
        let empty = c.frames.is_empty() && c.due.is_empty();
        if !empty {
            let lent = Pooled {
                chunk: c,
                home: home.clone(),
            };
            if chunks.send(lent).is_err() {
                break;
            }
        }
        if !more {
            break;
        }
    }
    end.stopped = src.capture.take_stopped();
    end.late = pending.late();
    end
}

/// The input thread's chunks, as the reader takes them.
pub(super) type Chunks = Receiver<Pooled>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_hash_once_and_spread_over_the_hash_range() {
        let count = 3;
        let mut per = [0usize; 3];
        // Hashes spread over the range the steering reads (high bits).
        let mut high = [[0usize; 2]; 3];
        for k in 0..30_000u32 {
            let h = k.wrapping_mul(0x9e37_79b9);
            let owners: Vec<u32> = (0..count)
                .filter(|&index| Shard { index, count }.holds(h))
                .collect();
            assert_eq!(owners.len(), 1, "hash {h:#x}: {owners:?}");
            per[owners[0] as usize] += 1;
            high[owners[0] as usize][(h >> 31) as usize] += 1;
        }
        assert!(per.iter().all(|&n| n > 9_000), "{per:?}");
        // Each shard's flows still fall on both halves of the hash range
        // (two workers each get some).
        assert!(high.iter().flatten().all(|&n| n > 4_000), "{high:?}");
    }

    #[test]
    fn events_come_due_by_packet_and_by_time_in_file_order_when_together() {
        let ev = |s: &str| Event::parse(s).unwrap();
        let sched = vec![
            Scheduled {
                trigger: Trigger::Time(Duration::from_millis(10)),
                event: ev("speaker-down a"),
                line: 1,
            },
            Scheduled {
                trigger: Trigger::Packet(3),
                event: ev("speaker-down b"),
                line: 2,
            },
            Scheduled {
                trigger: Trigger::Packet(99),
                event: ev("speaker-up b"),
                line: 3,
            },
        ];
        let mut p = Pending::new(sched);
        let mut out = Vec::new();
        p.due(0, Duration::ZERO, &mut out);
        p.due(1, Duration::from_millis(5), &mut out);
        assert!(out.is_empty());
        // Packet 3 (index 2) is also the first 10 ms after the first.
        p.due(2, Duration::from_millis(12), &mut out);
        let names: Vec<(usize, String)> = out.iter().map(|(i, e)| (*i, e.to_string())).collect();
        assert_eq!(
            names,
            [(2, "speaker-down a".into()), (2, "speaker-down b".into())]
        );
        assert_eq!(p.late(), [3]);
    }
}
