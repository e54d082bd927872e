//! A worker: batches of frame indices in, each packet forwarded with the
//! snapshot the batch may use, its outputs kept with the batch for the
//! writer. A worker owns what it mutates (walk buffers, flow cache,
//! counters) and switches snapshot only between batches.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;
use crossbeam_channel::{Receiver, Select, Sender};

use super::flowcache::{self, Deltas, FlowCache, FlowKey};
use super::report::WorkerStats;
use super::stream::Pooled;
use super::walkcache::WalkCache;
use super::{Options, PipelineError, Snapshot};
use crate::dataplane::frame::nic_mac;
use crate::dataplane::frame::{self as replay, Counters, Hops, Only, RenderBufs};
use crate::dataplane::{At, DropReason, Header, Outcome, Place, Start, WalkBuf, World};
use crate::io::{Frame, FrameRef};
use crate::topology::NicId;
use crate::wire::{self, AZURE_ROUTER_MAC, ParseError};

/// A batch of frame indices for one worker, with its outputs.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) worker: usize,
    /// Scheduled steps the batch's snapshot must include.
    pub(super) step: usize,
    /// Positions of the frames: in the chunk, for a streamed input; in
    /// the receive queues' frames otherwise.
    pub(super) idx: Vec<u32>,
    /// The streamed chunk the frames are in.
    pub(super) chunk: Option<Arc<Pooled>>,
    pub(super) out: BatchOut,
}

impl Batch {
    /// Empties the batch for reuse, letting go of its chunk (the pool's
    /// chunks come back only once no batch holds them).
    pub(super) fn recycle(&mut self) {
        self.idx.clear();
        self.out.clear();
        self.chunk = None;
    }
}

/// Outputs of a batch: per packet, where its JSONL line and frames end.
#[derive(Default)]
pub(super) struct BatchOut {
    pub(super) ends: Vec<(usize, usize)>,
    /// Per packet traced: what its trace line says (the writer writes
    /// the line: text made beside the forwarding, not in it).
    pub(super) traced: Vec<Traced>,
    /// The places of the traced packets' hops.
    pub(super) ats: Vec<At>,
    pub(super) recs: Vec<Rec>,
    pub(super) bytes: Vec<u8>,
}

impl BatchOut {
    pub(super) fn clear(&mut self) {
        self.ends.clear();
        self.traced.clear();
        self.ats.clear();
        self.recs.clear();
        self.bytes.clear();
    }
}

/// A traced packet: its number, outcome, table version, and its hops'
/// places (a range of the batch's `ats`).
pub(super) struct Traced {
    pub(super) number: usize,
    pub(super) outcome: Outcome,
    pub(super) version: u32,
    pub(super) ats: Range<usize>,
}

/// One captured frame: its capture point, and its enhanced packet block
/// (encoded by the worker) as a range of the batch's bytes.
pub(super) struct Rec {
    pub(super) point: u32,
    pub(super) block: Range<usize>,
}

/// Places other than a NIC a worker counts deliveries to without a map.
pub(super) const PLACES: usize = 8;

/// A worker's counters: arrays and small maps keyed by value, no strings.
/// Deliveries to a VM (the common place) are counted by NIC index.
#[derive(Default)]
pub(super) struct FastCounters {
    pub(super) to_nic: Vec<usize>,
    /// Deliveries elsewhere (the internet, a site, ...): the first few
    /// places in the worker's own memory, searched in order; the rest in a
    /// map.
    pub(super) places: ArrayVec<(Place, usize), PLACES>,
    pub(super) delivered: BTreeMap<Place, usize>,
    pub(super) drops: [usize; 32],
    pub(super) looped: usize,
}

impl FastCounters {
    #[inline]
    pub(super) fn count(&mut self, o: Outcome) {
        match o {
            Outcome::Delivered(Place::At(At::NicIn(n))) => {
                if n.idx() >= self.to_nic.len() {
                    self.to_nic.resize(n.idx() + 1, 0);
                }
                self.to_nic[n.idx()] += 1;
            }
            Outcome::Delivered(p) => {
                if let Some((_, n)) = self.places.iter_mut().find(|(q, _)| *q == p) {
                    *n += 1;
                } else if self.places.is_full() {
                    self.count_elsewhere(p);
                } else {
                    self.places.push((p, 1));
                }
            }
            Outcome::Dropped(_, r) => self.drops[r as usize] += 1,
            Outcome::Loop { .. } => self.looped += 1,
        }
    }

    /// A delivery to a place past the inline list.
    #[cold]
    #[inline(never)]
    pub(super) fn count_elsewhere(&mut self, p: Place) {
        *self.delivered.entry(p).or_default() += 1;
    }

    pub(super) fn merge_into(&self, c: &mut Counters, world: &World) {
        let nics = self
            .to_nic
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (Place::At(At::NicIn(NicId(i as u32))), n));
        let others = self.places.iter().map(|(p, n)| (*p, *n));
        let others = others.chain(self.delivered.iter().map(|(p, n)| (*p, *n)));
        for (p, n) in nics.map(|(p, n)| (p, *n)).chain(others) {
            c.delivered += n;
            *c.delivered_at
                .entry(world.place_name(p).into_owned())
                .or_default() += n;
        }
        for r in DropReason::ALL {
            let n = self.drops[r as usize];
            if n > 0 {
                c.dropped += n;
                *c.drop_reasons.entry(r.code().to_string()).or_default() += n;
            }
        }
        c.looped += self.looped;
    }
}

/// A worker's reusable state. Aligned to 128 bytes (a pair of cache
/// lines, what the adjacent-line prefetcher fetches), so that it starts a
/// line pair of its own: a cached packet is faster so (docs/performance.md).
#[repr(align(128))]
pub(super) struct Lane {
    pub(super) buf: WalkBuf,
    pub(super) render: RenderBufs,
    /// Walks recorded for output, by flow (runs that write).
    pub(super) walks: Option<WalkCache>,
    /// Which crossings are written, and which packets.
    pub(super) hops: Hops,
    pub(super) only: Only,
    pub(super) counters: FastCounters,
    pub(super) stats: WorkerStats,
    pub(super) cache: Option<FlowCache>,
    pub(super) deltas: Deltas,
}

/// A worker: its lane and the snapshot it forwards with.
pub(super) struct Worker<'f> {
    pub(super) frames: &'f [Frame],
    pub(super) snap: Arc<Snapshot>,
    pub(super) updates: Receiver<Arc<Snapshot>>,
    /// Where snapshots this worker is done with go (the control plane).
    pub(super) retired: Option<Sender<Arc<Snapshot>>>,
    /// Snapshots received for a later scheduled step than the batch's.
    pub(super) later: VecDeque<Arc<Snapshot>>,
    pub(super) lane: Lane,
    pub(super) from: Option<NicId>,
    pub(super) traces: bool,
    pub(super) pcapng: bool,
}

impl<'f> Worker<'f> {
    pub(super) fn new(
        frames: &'f [Frame],
        snap: Arc<Snapshot>,
        updates: Receiver<Arc<Snapshot>>,
        opts: &Options,
        traces: bool,
        pcapng: bool,
    ) -> Self {
        Worker {
            frames,
            snap,
            updates,
            retired: None,
            later: VecDeque::new(),
            lane: Lane {
                deltas: Deltas::default(),
                // Walks that record every hop never use the cache.
                cache: if traces || pcapng {
                    None
                } else {
                    FlowCache::new(opts.flow_cache)
                },
                buf: WalkBuf::default(),
                render: RenderBufs::default(),
                // `--flow-cache 0` walks every packet, writing or not.
                walks: ((traces || pcapng) && opts.flow_cache > 0).then(WalkCache::new),
                hops: opts.hops,
                only: opts.only,
                counters: FastCounters::default(),
                stats: WorkerStats::default(),
            },
            from: opts.from,
            traces,
            pcapng,
        }
    }

    /// A snapshot that arrives while the worker has no batch: adopted at
    /// once when it is for a step the worker has reached (an idle worker,
    /// or a reader waiting on a full queue, holds the newest tables as soon
    /// as they are published, and the old ones go back to be freed); one
    /// for a later scheduled step waits for the batch that needs it.
    pub(super) fn idle_update(&mut self, s: Arc<Snapshot>) {
        self.later.push_back(s);
        self.adopt_through(self.snap.step);
    }

    /// Adopts, in order, the waiting snapshots for scheduled steps up to
    /// `step`.
    pub(super) fn adopt_through(&mut self, step: usize) {
        while self.later.front().is_some_and(|s| s.step <= step) {
            if let Some(s) = self.later.pop_front() {
                self.adopt(s);
            }
        }
    }

    pub(super) fn adopt(&mut self, s: Arc<Snapshot>) {
        let stats = &mut self.lane.stats;
        let latency = s.since.elapsed();
        stats.max_update_latency = stats.max_update_latency.max(latency);
        stats.adoptions.push((s.version, latency));
        stats.snapshots += 1;
        if s.version != self.snap.version {
            self.lane.deltas.push(s.version, s.delta.clone());
        }
        let old = std::mem::replace(&mut self.snap, s);
        if let Some(r) = &self.retired {
            // A control plane that has finished drops nothing more: then
            // the worker does.
            let _ = r.send(old);
        }
    }

    /// Forwards a batch. Between batches: takes the newest snapshot this
    /// batch may use (one for a later scheduled step waits), and waits for
    /// the one it needs (a scheduled event before its first packet).
    pub(super) fn batch(&mut self, b: &mut Batch) -> Result<(), PipelineError> {
        let t0 = Instant::now();
        while let Ok(s) = self.updates.try_recv() {
            self.later.push_back(s);
        }
        loop {
            self.adopt_through(b.step);
            if self.snap.step >= b.step {
                break;
            }
            match self.updates.recv() {
                Ok(s) => self.later.push_back(s),
                Err(_) => return Err(PipelineError::Stopped("the control plane")),
            }
        }
        let snap = &*self.snap;
        let Batch {
            idx, chunk, out, ..
        } = b;
        match chunk {
            Some(c) => {
                for &k in idx.iter() {
                    self.lane
                        .one(snap, c.frame(k), self.from, self.traces, self.pcapng, out)?;
                }
            }
            None => {
                for &k in idx.iter() {
                    let f = self.frames[k as usize].as_ref();
                    self.lane
                        .one(snap, f, self.from, self.traces, self.pcapng, out)?;
                }
            }
        }
        self.lane.stats.busy += t0.elapsed();
        Ok(())
    }

    pub(super) fn finish(mut self) -> (FastCounters, WorkerStats) {
        if let Some(c) = &self.lane.cache {
            self.lane.stats.flow_hits = c.stats.hits;
            self.lane.stats.flow_misses = c.stats.misses;
            self.lane.stats.flow_revalidated = c.stats.revalidated;
        }
        (self.lane.counters, self.lane.stats)
    }
}

/// A worker thread: batches in, forwarded batches out (to the writer, or
/// back to the reader's free list).
pub(super) fn run(
    mut w: Worker<'_>,
    rx: Receiver<Batch>,
    done: Option<Sender<Batch>>,
    free: Sender<Batch>,
) -> Result<(FastCounters, WorkerStats), PipelineError> {
    // Between batches the worker also takes the snapshots published.
    let updates = w.updates.clone();
    let mut listening = true;
    loop {
        let next = if listening {
            crossbeam_channel::select! {
                recv(rx) -> b => Some(b),
                recv(updates) -> s => {
                    match s {
                        Ok(s) => w.idle_update(s),
                        // The control plane has finished.
                        Err(_) => listening = false,
                    }
                    None
                }
            }
        } else {
            Some(rx.recv())
        };
        let Some(next) = next else { continue };
        let Ok(mut b) = next else { break };
        w.batch(&mut b)?;
        match &done {
            Some(d) => d
                .send(b)
                .map_err(|_| PipelineError::Stopped("the writer"))?,
            None => {
                b.recycle();
                let _ = free.send(b);
            }
        }
    }
    Ok(w.finish())
}

/// Sends a batch to a worker whose queue is full. Meanwhile the reader's
/// own worker, when it forwards a share, takes the snapshots published (it
/// would otherwise hold the old tables until the queue makes room).
/// `Err` when the worker has stopped.
pub(super) fn send_waiting(
    tx: &Sender<Batch>,
    b: Batch,
    me: Option<&mut Worker<'_>>,
) -> Result<(), ()> {
    let Some(me) = me else {
        return tx.send(b).map_err(|_| ());
    };
    let updates = me.updates.clone();
    loop {
        let mut sel = Select::new();
        let to_worker = sel.send(tx);
        sel.recv(&updates);
        let op = sel.select();
        if op.index() == to_worker {
            return op.send(tx, b).map_err(|_| ());
        }
        match op.recv(&updates) {
            Ok(s) => me.idle_update(s),
            // The control plane has finished: nothing more to take.
            Err(_) => return tx.send(b).map_err(|_| ()),
        }
    }
}

/// A counters-only packet through the flow cache: the cached outcome of its
/// flow under this snapshot, or a walk that fills it.
#[inline]
pub(super) fn through_cache(
    cache: &mut FlowCache,
    deltas: &Deltas,
    buf: &mut WalkBuf,
    stats: &mut WorkerStats,
    snap: &Snapshot,
    key: &FlowKey,
    from: Option<NicId>,
) -> Outcome {
    let hash = FlowCache::hash(key);
    if let Some(c) = cache.get(key, hash, snap.version, deltas) {
        stats.hops += u64::from(c.hops);
        return c.outcome;
    }
    let world = &*snap.world;
    let header = key.header();
    let outcome = match replay::start_of(world, from, header.src) {
        None => {
            buf.hops.clear();
            buf.steps = 0;
            Outcome::Dropped(Place::Capture, DropReason::NoIngressNic)
        }
        Some(start) => {
            buf.packet.reset(header, key.ttl, key.len as usize);
            world.forward_counting(start, buf, &snap.pending)
        }
    };
    let hops = buf.steps as u32;
    stats.hops += u64::from(hops);
    cache.put(
        *key,
        hash,
        snap.version,
        flowcache::Cached { outcome, hops },
        buf.looked_set().as_ref(),
    );
    outcome
}

impl Lane {
    /// Forwards one frame and records its outputs.
    pub(super) fn one(
        &mut self,
        snap: &Snapshot,
        f: FrameRef<'_>,
        from: Option<NicId>,
        traces: bool,
        pcapng: bool,
        out: &mut BatchOut,
    ) -> Result<(), PipelineError> {
        let world = &*snap.world;
        self.stats.packets += 1;
        self.stats.bytes += f.data.len() as u64;
        // Whether the outcome came from a recorded walk (its hops are in
        // `self.walks`, under the packet's key).
        let mut cached = false;
        let outcome = match wire::parse(f.link, f.data) {
            Err(e) => {
                self.buf.hops.clear();
                let reason = match e {
                    ParseError::NotIp(_) => DropReason::NotIp,
                    ParseError::Malformed(_) => DropReason::Malformed,
                    ParseError::UnsupportedLink(_) => DropReason::UnsupportedLink,
                };
                Outcome::Dropped(Place::Capture, reason)
            }
            Ok(p) => {
                let h = Header {
                    src: p.src,
                    dst: p.dst,
                    proto: p.proto,
                    sport: p.sport,
                    dport: p.dport,
                };
                let tunnel = replay::may_be_tunnel(&h);
                if !tunnel && let Some(cache) = self.cache.as_mut() {
                    let key = FlowKey::new(&h, p.ttl.max(1), (f.data.len() - p.ip_offset) as u32);
                    through_cache(
                        cache,
                        &self.deltas,
                        &mut self.buf,
                        &mut self.stats,
                        snap,
                        &key,
                        from,
                    )
                } else {
                    match replay::start_of(world, from, p.src) {
                        None => {
                            self.buf.hops.clear();
                            Outcome::Dropped(Place::Capture, DropReason::NoIngressNic)
                        }
                        Some(start) => {
                            if pcapng || tunnel {
                                let src_mac = match start {
                                    Start::Nic(nic) => nic_mac(nic),
                                    // Captured packets start at a NIC or a site.
                                    Start::Site(_) | Start::Nva(_) => AZURE_ROUTER_MAC,
                                };
                                wire::normalize(
                                    f.data,
                                    p.ip_offset,
                                    AZURE_ROUTER_MAC,
                                    src_mac,
                                    &mut self.render.cur,
                                );
                            }
                            let len = f.data.len() - p.ip_offset;
                            let key = FlowKey::new(&h, p.ttl.max(1), len as u32);
                            let recorded = match self.walks.as_mut().filter(|_| !tunnel) {
                                Some(w) => {
                                    w.get(&key, snap.version).map(|(o, steps, _)| (o, steps))
                                }
                                None => None,
                            };
                            if let Some((o, steps)) = recorded {
                                self.stats.hops += steps as u64;
                                cached = true;
                                o
                            } else {
                                if tunnel {
                                    self.buf.packet = replay::packet_of(&self.render.cur, h, p.ttl);
                                } else {
                                    self.buf.packet.reset(h, p.ttl.max(1), len);
                                }
                                let o = if pcapng || traces {
                                    world.forward_with(start, &mut self.buf, &snap.pending, pcapng)
                                } else {
                                    world.forward_counting(start, &mut self.buf, &snap.pending)
                                };
                                self.stats.hops += self.buf.steps as u64;
                                if let Some(w) = self.walks.as_mut().filter(|_| !tunnel) {
                                    w.put(key, snap.version, o, self.buf.steps, &self.buf.hops);
                                }
                                o
                            }
                        }
                    }
                }
            }
        };
        self.counters.count(outcome);
        let written = self.only.wants(outcome);
        let hops: &[crate::dataplane::Hop] = match (cached, self.walks.as_ref()) {
            (true, Some(w)) => w.last_hops(),
            _ => &self.buf.hops,
        };
        if traces && written {
            let a0 = out.ats.len();
            out.ats.extend(hops.iter().map(|h| h.at));
            out.traced.push(Traced {
                number: f.number,
                outcome,
                version: snap.version,
                ats: a0..out.ats.len(),
            });
        }
        if pcapng && written && !hops.is_empty() {
            let BatchOut { recs, bytes, .. } = out;
            let mut sink =
                |point: u32, ts: Duration, data: &[u8], comment: &str, outbound: bool| {
                    let b0 = bytes.len();
                    crate::io::encode_epb(bytes, ts, data, comment, outbound);
                    recs.push(Rec {
                        point,
                        block: b0..bytes.len(),
                    });
                    Ok(())
                };
            replay::render(
                world,
                hops,
                outcome,
                f,
                self.hops,
                &mut self.render,
                &mut sink,
            )?;
        }
        out.ends.push((out.traced.len(), out.recs.len()));
        Ok(())
    }
}
