//! The forwarding pipeline: a reader, N workers, a control plane and a
//! writer, connected by crossbeam channels.
//!
//! ```text
//!  frames ─▶ reader ──flow hash──▶ worker 0 ─┐            (batches of indices)
//!              │                 ▶ worker 1 ─┼─▶ writer ─▶ pcapng, JSONL (input order)
//!              │                 ▶ …        ─┘
//!              └─ scheduled events ─▶ control ──snapshots──▶ every worker
//!                   stdin events ───▶ (reconverge, recompile changed tables)
//! ```
//!
//! - The reader hashes each frame's 5-tuple, finds the worker of its hash
//!   bucket (a flow stays on one worker until `steer` moves its bucket to
//!   a worker that keeps pace) and hands index batches out; batch buffers
//!   come back through a free list, so a steady run allocates nothing per
//!   packet.
//! - A worker owns its walk buffers, counters and output buffers; it walks
//!   packets with [`World::forward_with`] (no text, no allocation, no lock)
//!   unless pcapng output wants the decisions as comments.
//! - The control plane reconverges on events and publishes an
//!   `Arc<Snapshot>` to every worker's channel. A worker switches snapshot
//!   only between batches, so a packet's whole walk sees one snapshot, whose
//!   version its trace names. A scheduled event cuts the batches: packets
//!   before it use the old snapshot, packets from it on the new one, on any
//!   number of workers.
//! - An event's immediate effect (a failed NVA or tunnel stops forwarding)
//!   can be published before reconvergence ([`Options::convergence_delay`]):
//!   packets caught between the two are dropped as `converging`.
//! - The writer restores input order: each worker's batches arrive in order,
//!   so the next packet is always at the head of one worker's queue.

pub mod bench;
pub mod events;
pub mod flowcache;
mod ingest;
mod steer;

pub use ingest::Queues;
pub use steer::Steering;
use steer::{Split, Table, UNIT};

use arrayvec::ArrayVec;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, TrySendError, bounded, unbounded};
use serde::Serialize;

use crate::control::bgp::Node;
use crate::control::events::{self as cevents, Event};
use crate::control::{self, ControlPlane};
use crate::dataplane::replay::{self, Counters, nic_mac};
use crate::dataplane::{At, DropReason, Header, Outcome, Pending, Place, Start, WalkBuf, World};
use crate::fib::Fib;
use crate::io::{Frame, PcapNgOut};
use crate::topology::{NicId, Topology};
use crate::wire::{self, AZURE_ROUTER_MAC, ParseError};
use flowcache::{Delta, Deltas, FlowCache, FlowKey};
use ipnet::IpNet;

/// Pipeline settings.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Frames per batch handed to a worker (`None`: [`COUNTING_BATCH`]
    /// when only counting, [`WRITING_BATCH`] when traces or pcapng are
    /// written).
    pub batch: Option<usize>,
    /// Send every packet from this NIC instead of the one owning its source.
    pub from: Option<NicId>,
    /// Packets between a scheduled event's immediate effect (failed NVAs
    /// and tunnels stop forwarding) and the reconverged tables; 0 applies
    /// both at once.
    pub convergence_delay: usize,
    /// Entries in each worker's flow cache ([`flowcache`]); 0: every
    /// packet walks every hop.
    pub flow_cache: usize,
    /// Live events: the least time between two publications; events that
    /// arrive meanwhile are applied together (a debounce, so a stream of
    /// updates costs one reconvergence per window, not one per update).
    pub coalesce: Duration,
    /// Whether the reader forwards a worker's share itself.
    pub reader: ReaderMode,
    /// Whether flows' hash buckets may move between workers during the run.
    pub steering: Steering,
    /// How the control-plane thread is scheduled.
    pub control_priority: ControlPriority,
}

/// The control-plane thread's scheduling. With every core forwarding, a
/// control thread at normal priority waits for a worker's time slice to
/// end each time it wakes (the debounce timer, the first update of a
/// window), which adds milliseconds to every update's way to the workers;
/// dataplanes (VPP, DPDK applications) give their control threads real-time
/// priority for the same reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ControlPriority {
    /// `SCHED_FIFO` at the lowest real-time priority (it preempts the
    /// workers when it wakes, runs its bounded rebuild, sleeps again); the
    /// normal policy where that is refused (no `CAP_SYS_NICE`), as the run's
    /// report says.
    #[default]
    Realtime,
    /// The normal time-sharing policy.
    Normal,
}

/// Asks for the control thread's scheduling; what it got, as text.
fn set_control_priority(p: ControlPriority) -> String {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    match p {
        ControlPriority::Normal => "normal".into(),
        ControlPriority::Realtime => match set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
        ) {
            Ok(()) => "SCHED_FIFO (lowest real-time priority)".into(),
            Err(e) => format!("normal (SCHED_FIFO refused: {e:?})"),
        },
    }
}

/// The reader's part in forwarding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReaderMode {
    /// Inline when the workers (and, with live events, the control plane)
    /// take every core (2 workers on 2 cores: two threads, not three), a
    /// thread of its own otherwise.
    #[default]
    Auto,
    /// The reader only reads and hands batches out.
    Thread,
    /// The reader forwards the last worker's batches itself.
    Inline,
}

impl ReaderMode {
    /// Whether the reader forwards a share itself, for `workers` workers
    /// with or without a live control plane beside them.
    pub fn inline(self, workers: usize, live: bool) -> bool {
        match self {
            ReaderMode::Auto => workers + usize::from(live) >= default_workers().max(2),
            ReaderMode::Thread => false,
            ReaderMode::Inline => true,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: default_workers(),
            batch: None,
            from: None,
            convergence_delay: 0,
            flow_cache: flowcache::DEFAULT_ENTRIES,
            coalesce: DEFAULT_COALESCE,
            reader: ReaderMode::Auto,
            steering: Steering::default(),
            control_priority: ControlPriority::default(),
        }
    }
}

/// Frames per batch when nothing is written. A batch's hand-off costs
/// the reader a wake-up of the worker (a futex call) and the worker one of
/// the reader waiting on its full queue: with 256 frames a batch a VXLAN
/// walk's worker was busy 87 % of the wall time, with 4,096 98 %, and two
/// workers forwarding from the flow cache went from 26 to 39 Mpps
/// (`BATCH=N cargo run --release --example prof -- vxlan 1`, `... 2`). A
/// worker adopts a new table version between batches: 4,096 frames are
/// 0.2–2 ms of work.
pub const COUNTING_BATCH: usize = 4096;

/// Frames per batch when traces or pcapng are written: a batch carries its
/// outputs (a trace line and frames a packet) until the writer takes them.
pub const WRITING_BATCH: usize = 256;

/// The debounce of live events, sized from the 10 ms an update may take to
/// reach every worker: the window, then the rebuild (0.3–1 ms a churn
/// version), then the adoption (within a batch, 2–3 ms when a worker is off
/// its core mid-batch) leave 6 ms for the window. A version's control-plane
/// cost is mostly fixed (the same for 1 or 900 updates), so the window sets
/// the control thread's CPU under a stream of updates: 6 ms rather than 4
/// keeps 91–93 % of the 2-worker rate at 100k updates/s against 87–93 %
/// (`COALESCE_MS=4|6 cargo run --release --example churn -- vxlan 2`,
/// session 12), update latency median 6.1–6.3 ms, p99 6.8–7.2 ms.
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(6);

/// Frames a worker's queue holds when nothing is written (32 batches of
/// [`COUNTING_BATCH`]; the depth was measured in batches of 256). Paired churn runs (`examples/churn vxlan 2`, three
/// rounds of seven pairs, alternated): 16 batches 74–78 %, 128 batches
/// 74–78 %, 512 batches 81–85 % of the rate without churn.
pub const WORKER_QUEUE_FRAMES: usize = 131_072;

/// One worker per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What every worker reads: a converged control plane, compiled.
pub struct Snapshot {
    /// 0 for the starting tables, +1 per publication.
    pub version: u32,
    pub world: Arc<World>,
    /// Failures in effect that the tables do not show yet.
    pub pending: Pending,
    /// Scheduled steps included (workers wait for the step a batch needs).
    step: usize,
    /// The prefixes whose routes changed since the previous version, in any
    /// table a walk reads (`None`: anything may have changed). Flow-cache
    /// entries whose looked-up addresses it does not cover stay valid.
    pub delta: Option<Arc<Delta>>,
    /// When the oldest change it carries arrived (a live event) or was due
    /// (a scheduled step): update latency is measured from here.
    since: Instant,
}

impl Snapshot {
    /// Version 0: the tables a run starts with.
    fn initial(world: Arc<World>) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            version: 0,
            world,
            pending: Pending::default(),
            step: 0,
            delta: None,
            since: Instant::now(),
        })
    }
}

/// One publication of the control plane.
#[derive(Clone, Debug, Serialize)]
pub struct VersionInfo {
    pub version: u32,
    /// Events applied since the previous version (written as text: the
    /// events-file syntax).
    #[serde(serialize_with = "as_texts")]
    pub events: Vec<Event>,
    /// `pending` (immediate effect only) or `converged`.
    pub kind: &'static str,
    /// 0-based index of the first packet it applies to, for scheduled events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_packet: Option<usize>,
    /// Tables compiled for this version (the rest were reused).
    pub tables_compiled: usize,
    pub tables: usize,
    /// Reconvergence + compilation time.
    pub build_ms: f64,
    /// From the arrival of its first change (a live event) or its step's
    /// cut (a scheduled one) to its adoption by the last worker; `None`
    /// when some worker never adopted it (it had finished, or got no batch
    /// from that scheduled step on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

fn as_texts<S: serde::Serializer>(evs: &[Event], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(evs.iter().map(ToString::to_string))
}

/// Per-worker figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerStats {
    pub packets: u64,
    /// Hops walked (decisions).
    pub hops: u64,
    /// IP bytes forwarded in (the frames' lengths).
    pub bytes: u64,
    /// Time spent on batches.
    pub busy: Duration,
    /// Packets answered by the flow cache, and packets that walked because
    /// their flow was not cached under the current tables.
    pub flow_hits: u64,
    pub flow_misses: u64,
    /// Hits on entries of an older table version whose walk the changes
    /// since leave standing (see [`flowcache`]).
    pub flow_revalidated: u64,
    /// Snapshots adopted.
    pub snapshots: u32,
    /// Longest time from a change's arrival (or a scheduled step's cut) to
    /// this worker's adoption of the snapshot carrying it.
    pub max_update_latency: Duration,
    /// Each adoption: the version and its delay (as above). One entry a
    /// snapshot, not a packet; folded into [`VersionInfo::latency_ms`].
    #[serde(skip)]
    pub adoptions: Vec<(u32, Duration)>,
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub counters: Counters,
    pub workers: Vec<WorkerStats>,
    pub versions: Vec<VersionInfo>,
    /// Frames read; equals `counters.read` (also when stopped early).
    pub read: usize,
    /// Wall time of forwarding (reader start to the last worker's end).
    pub elapsed: Duration,
    pub stopped_early: bool,
    /// How the control-plane thread was scheduled (see
    /// [`ControlPriority`]); `None` without a control plane.
    pub control_scheduling: Option<String>,
    /// The control-plane thread's time on a CPU, from its start to its end
    /// (it may finish a version after the last packet); `None` without a
    /// control plane or where the OS does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_cpu: Option<Duration>,
    pub reader: ReaderStats,
}

/// The reader's time: from its first frame to its last batch handed out,
/// and the part of it spent waiting on a full worker queue (with an inline
/// worker, its batches' busy time is in that worker's stats; the rest is
/// reading and dispatching).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReaderStats {
    pub total: Duration,
    pub blocked: Duration,
    /// How flows were steered, and the hash buckets moved between workers
    /// (always 0 with [`Steering::Fixed`]).
    pub steering: Steering,
    pub moves: u64,
    /// Buckets each worker held at the end (1,024 in all; four a worker
    /// past 256 workers).
    pub buckets: Vec<u32>,
    /// Time spent before the clock placing the frames in receive queues
    /// (a NIC's receive-side scaling, [`ingest`]), and the frames each
    /// queue got.
    pub ingest: Duration,
    pub queued: Vec<usize>,
}

impl Report {
    pub fn hops(&self) -> u64 {
        self.workers.iter().map(|w| w.hops).sum()
    }
    /// (flow-cache hits, walks of uncached flows), over all workers.
    pub fn flow_cache(&self) -> (u64, u64) {
        self.workers
            .iter()
            .fold((0, 0), |(h, m), w| (h + w.flow_hits, m + w.flow_misses))
    }
    /// The update latency of each version every worker adopted, in
    /// milliseconds (see [`VersionInfo::latency_ms`]).
    pub fn update_latencies(&self) -> Vec<f64> {
        self.versions.iter().filter_map(|v| v.latency_ms).collect()
    }
    pub fn max_update_latency(&self) -> Duration {
        self.workers
            .iter()
            .map(|w| w.max_update_latency)
            .max()
            .unwrap_or_default()
    }
}

/// The control plane the pipeline starts from and reconverges.
pub struct Control {
    /// The topology before any event.
    pub base: Topology,
    /// Events already applied to the starting tables.
    pub events: Vec<Event>,
}

/// Outputs wanted; the writers get frames and lines in input order.
pub struct Outputs<'o, W: Write, T: Write> {
    pub pcapng: Option<&'o mut PcapNgOut<W>>,
    pub traces: Option<&'o mut T>,
}

impl Outputs<'_, Vec<u8>, Vec<u8>> {
    /// No output: counters only.
    pub fn none() -> Self {
        Outputs {
            pcapng: None,
            traces: None,
        }
    }
}

/// Events arriving together while running (the lines of standard input
/// that came in one read, a feed's burst), stamped when they arrived (where
/// an update's latency to the workers is measured from). A burst travels as
/// one message: the sender stamps and sends it once, and the control
/// thread takes a window's updates in a few receipts instead of one per
/// event (at 100,000 updates/s, ~600 a version).
#[derive(Clone, Debug)]
pub struct LiveEvents {
    pub at: Instant,
    pub events: Vec<Event>,
}

impl LiveEvents {
    /// `events`, stamped now.
    pub fn now(events: Vec<Event>) -> Self {
        LiveEvents {
            at: Instant::now(),
            events,
        }
    }
}

impl From<Event> for LiveEvents {
    /// One event, stamped now.
    fn from(event: Event) -> Self {
        LiveEvents::now(vec![event])
    }
}

/// Everything a run needs besides the frames.
pub struct Run<'r> {
    pub world: Arc<World>,
    /// Needed when events come (scheduled or live).
    pub control: Option<Control>,
    /// Scheduled events (0-based frame index, event), sorted by index.
    pub scheduled: Vec<(usize, Event)>,
    /// Events arriving while running (e.g. read from standard input).
    pub live: Option<Receiver<LiveEvents>>,
    /// Set to stop reading: frames already handed out are still forwarded
    /// and written, the rest are not read.
    pub stop: Option<&'r AtomicBool>,
    pub opts: Options,
}

/// A batch of frame indices for one worker, with its outputs.
#[derive(Default)]
struct Batch {
    worker: usize,
    /// Scheduled steps the batch's snapshot must include.
    step: usize,
    idx: Vec<u32>,
    out: BatchOut,
}

/// Outputs of a batch: per packet, where its JSONL line and frames end.
#[derive(Default)]
struct BatchOut {
    ends: Vec<(usize, usize)>,
    jsonl: Vec<u8>,
    recs: Vec<Rec>,
    bytes: Vec<u8>,
}

impl BatchOut {
    fn clear(&mut self) {
        self.ends.clear();
        self.jsonl.clear();
        self.recs.clear();
        self.bytes.clear();
    }
}

/// One captured frame: data and comment are ranges of the batch's bytes.
struct Rec {
    nic: NicId,
    ts: Duration,
    data: Range<usize>,
    comment: Range<usize>,
    outbound: bool,
}

/// Which part of a scheduled step's events the control plane applies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Half {
    /// Their immediate effect and the reconverged tables at once.
    Whole,
    /// Only their immediate effect (failed speakers and tunnels stop
    /// forwarding); the tables come later, as a `Converge` step.
    Announce,
    /// The reconverged tables of events announced before.
    Converge,
}

enum Ctl {
    /// A scheduled step: its events, and which half of them.
    Step {
        step: usize,
        events: Vec<Event>,
        half: Half,
        from_packet: usize,
    },
}

/// Runs `frames` through the pipeline. Every frame read ends in exactly
/// one counter; with outputs, they are written in input order, identical
/// for any number of workers. The frames are first placed in receive
/// queues ([`Queues`]); [`run_queued`] takes queues built beforehand.
pub fn run<W: Write + Send, T: Write + Send>(
    frames: &[Frame],
    r: Run<'_>,
    outputs: Outputs<'_, W, T>,
) -> Result<Report, String> {
    let writing = outputs.traces.is_some() || outputs.pcapng.is_some();
    let q = Queues::new(frames, &r.opts, r.live.is_some(), writing)?;
    run_queued(&q, r, outputs)
}

/// Whether the reader forwards the last worker's share itself, and how the
/// flows are first shared out: for `opts`, with or without live events and
/// outputs.
fn first_split(opts: &Options, live: bool, writing: bool) -> (bool, Split) {
    let nw = opts.workers.max(1);
    // No core to spare for the reader: it forwards a share itself. A live
    // event stream keeps the control plane busy: it takes a core too.
    let inline_last = opts.reader.inline(nw, live);
    // The reader's own work per frame (a descriptor read and an index
    // pushed, the hash having come with the frame's queue) is a fraction
    // of a packet served from the flow cache (~25 ns) and nothing beside a
    // walk (60–160 ns): with the cache, the worker the reader runs starts
    // with 13/16 of a share (10, 12, 13, 14, 16 tried: 13 best or tied in
    // each case, `SHARE`-patched `examples/prof CASE 2`, two rounds;
    // adaptive steering moves buckets from there).
    let cached = !writing && opts.flow_cache > 0;
    let inline = inline_last.then_some(if cached { 13 } else { UNIT });
    (inline_last, Split::new(nw, inline))
}

/// [`run`] on frames already placed in receive queues, built with the
/// same options (and live events or not, outputs or not) as this run.
pub fn run_queued<W: Write + Send, T: Write + Send>(
    ingest: &Queues<'_>,
    mut r: Run<'_>,
    outputs: Outputs<'_, W, T>,
) -> Result<Report, String> {
    let opts = r.opts;
    let nw = opts.workers.max(1);
    let batch = opts
        .batch
        .unwrap_or(if outputs.traces.is_some() || outputs.pcapng.is_some() {
            WRITING_BATCH
        } else {
            COUNTING_BATCH
        })
        .max(1);
    if (!r.scheduled.is_empty() || r.live.is_some()) && r.control.is_none() {
        return Err("events need the topology to reconverge (internal: no control)".into());
    }
    let want_traces = outputs.traces.is_some();
    let want_pcapng = outputs.pcapng.is_some();
    let want_out = want_traces || want_pcapng;
    let (inline_last, split) = first_split(&opts, r.live.is_some(), want_out);
    // A split names its worker count: equal splits, equal queues.
    if ingest.split != split {
        return Err(format!(
            "receive queues built for other options: {} queues for {nw} workers, or another \
             first split (build them with this run's options, live events and outputs)",
            ingest.queued.len()
        ));
    }
    let mut table = Table::new(split, nw);
    let placed: &[Frame] = &ingest.frames;
    let adaptive = opts.steering == Steering::Adaptive && nw > 1;
    // Each worker's queue depth, in batches, when the reader judges it.
    let mut depth = vec![steer::INLINE_DEPTH; nw];
    let first = Snapshot::initial(r.world.clone());
    // Each worker's queue: deep enough, when nothing is written, for the
    // reader to go on with its own share while a worker is off its core
    // (the control plane's rebuilds take a core for ~0.5-1 ms: ~100k
    // frames at this rate); with outputs the writer sets the pace and a
    // batch carries its traces and frames, so the queue stays short.
    let queue = if want_out {
        16
    } else {
        (WORKER_QUEUE_FRAMES / batch).clamp(16, 4096)
    };
    let (free_tx, free_rx) = unbounded::<Batch>();
    let (done_tx, done_rx) = unbounded::<Batch>();
    let (ctl_tx, ctl_rx) = unbounded::<Ctl>();
    // Snapshots workers are done with go back to the control plane, which
    // frees them: a worker never pays for dropping a world.
    let (retire_tx, retire_rx) = unbounded::<Arc<Snapshot>>();
    let retire_tx = r.control.is_some().then_some(retire_tx);
    // Disconnected once every packet is forwarded (nothing is sent on it).
    let (forwarded_tx, forwarded_rx) = bounded::<()>(0);
    let mut work_txs = Vec::new();
    let mut work_rxs = Vec::new();
    let mut upd_txs = Vec::new();
    let mut upd_rxs = Vec::new();
    for _ in 0..nw {
        let (t, rx) = bounded::<Batch>(queue);
        work_txs.push(t);
        work_rxs.push(rx);
        let (t, rx) = unbounded::<Arc<Snapshot>>();
        upd_txs.push(t);
        upd_rxs.push(rx);
    }
    let live = r.live.take();
    let control = r.control.take();
    let stop = r.stop;
    if control.is_some() {
        // The control plane spreads a large version over rayon's pool: the
        // pool's threads start here, at normal priority, not from the
        // control thread (threads inherit a real-time policy).
        rayon::current_num_threads();
    }
    let start = Instant::now();
    let (stats, (versions, control_scheduling, control_cpu), read, stopped, elapsed, reader) =
        std::thread::scope(|sc| -> Result<_, String> {
            // Control plane.
            let ctl_handle = control.map(|c| {
                let upd = upd_txs.clone();
                let prev = r.world.clone();
                sc.spawn(move || {
                    let sched = set_control_priority(opts.control_priority);
                    let cpu = thread_cpu();
                    control_loop(
                        c,
                        prev,
                        (ctl_rx, retire_rx, forwarded_rx),
                        live,
                        upd,
                        opts.coalesce,
                    )
                    .map(|v| {
                        let cpu = cpu.zip(thread_cpu()).map(|(a, b)| b.saturating_sub(a));
                        (v, sched, cpu)
                    })
                })
            });
            drop(upd_txs);
            // Workers: one thread each; when there is no core to spare for the
            // reader, the reader forwards the last worker's batches itself.
            let mut handles = Vec::new();
            let mut inline: Option<Worker<'_>> = None;
            for (k, (rx, upd)) in work_rxs.into_iter().zip(upd_rxs).enumerate() {
                let mut w =
                    Worker::new(placed, first.clone(), upd, &opts, want_traces, want_pcapng);
                w.retired = retire_tx.clone();
                if k == nw - 1 && inline_last {
                    inline = Some(w);
                    continue;
                }
                let done = want_out.then(|| done_tx.clone());
                let free = free_tx.clone();
                handles.push(sc.spawn(move || worker(w, rx, done, free)));
            }
            let inline_done = want_out.then(|| done_tx.clone());
            drop(done_tx);
            // Writer.
            let writer = want_out.then(|| {
                let free = free_tx.clone();
                let world = r.world.clone();
                let Outputs { pcapng, traces } = outputs;
                sc.spawn(move || write_loop(nw, done_rx, free, &world, ingest, pcapng, traces))
            });
            drop(free_tx);
            // Reader.
            let mut cur: Vec<Batch> = (0..nw).map(|_| Batch::default()).collect();
            for (i, b) in cur.iter_mut().enumerate() {
                b.worker = i;
            }
            let mut step = 0;
            let mut sched = r.scheduled.iter().peekable();
            let mut delayed: VecDeque<(usize, Vec<Event>)> = VecDeque::new();
            let mut read = 0;
            let mut stopped = false;
            // Time the reader waited on a full worker queue.
            let mut blocked = Duration::ZERO;
            let reading = Instant::now();
            let mut send = |b: &mut Batch, step: usize| -> Result<(), String> {
                if b.idx.is_empty() {
                    return Ok(());
                }
                let w = b.worker;
                b.step = step;
                // Swaps the full batch for an empty one (from the free list).
                let take = |b: &mut Batch| {
                    let mut next = free_rx.try_recv().unwrap_or_default();
                    next.worker = w;
                    next.idx.clear();
                    next.out.clear();
                    std::mem::replace(b, next)
                };
                if let Some(me) = inline.as_mut().filter(|_| w == nw - 1) {
                    me.batch(b)?;
                    match &inline_done {
                        Some(d) => d
                            .send(take(b))
                            .map_err(|_| "the writer stopped early".to_string())?,
                        None => {
                            b.idx.clear();
                            b.out.clear();
                        }
                    }
                    return Ok(());
                }
                let next = take(b);
                let t = Instant::now();
                let sent = match work_txs[w].try_send(next) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(next)) => {
                        send_waiting(&work_txs[w], next, inline.as_mut())
                    }
                    Err(TrySendError::Disconnected(_)) => Err(()),
                };
                blocked += t.elapsed();
                sent.map_err(|()| "a worker stopped early".to_string())
            };
            // The next frame index at which a scheduled step is due.
            let mut next_due = sched.peek().map_or(usize::MAX, |(at, _)| *at);
            // Frames until the next look at the stop flag (a countdown: no
            // division per frame).
            let mut until_stop_check = 0;
            for (i, d) in ingest.desc.iter().enumerate() {
                if until_stop_check == 0 {
                    until_stop_check = batch;
                    if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                        stopped = true;
                        break;
                    }
                }
                until_stop_check -= 1;
                // Scheduled steps due before this frame: cut every batch, then
                // every later batch needs the new snapshot.
                if i >= next_due {
                    for b in cur.iter_mut() {
                        send(b, step)?;
                    }
                    while delayed.front().is_some_and(|(at, _)| *at <= i) {
                        let (_, evs) = delayed.pop_front().unwrap_or_default();
                        step += 1;
                        send_ctl(&ctl_tx, step, evs, Half::Converge, i)?;
                    }
                    let mut evs = Vec::new();
                    while let Some((_, e)) = sched.next_if(|(at, _)| *at <= i) {
                        evs.push(e.clone());
                    }
                    if !evs.is_empty() {
                        step += 1;
                        if opts.convergence_delay > 0 {
                            send_ctl(&ctl_tx, step, evs.clone(), Half::Announce, i)?;
                            delayed.push_back((i + opts.convergence_delay, evs));
                        } else {
                            send_ctl(&ctl_tx, step, evs, Half::Whole, i)?;
                        }
                    }
                    next_due = sched
                        .peek()
                        .map(|(at, _)| *at)
                        .into_iter()
                        .chain(delayed.front().map(|(at, _)| *at))
                        .min()
                        .unwrap_or(usize::MAX);
                }
                let w = table.worker_of(u64::from(d.hash));
                cur[w].idx.push(d.pos);
                if cur[w].idx.len() >= batch {
                    let threaded = !(inline_last && w == nw - 1);
                    // A reader that forwards a share itself does that
                    // rather than wait on a worker's full queue (an idle
                    // core until the worker takes a whole batch).
                    if inline_last && threaded && work_txs[w].is_full() {
                        send(&mut cur[nw - 1], step)?;
                    }
                    send(&mut cur[w], step)?;
                    // The queue this batch joined tells whether its worker
                    // keeps pace: one bucket moves when it does not.
                    if adaptive && threaded {
                        for (k, d) in depth.iter_mut().enumerate() {
                            if !(inline_last && k == nw - 1) {
                                *d = work_txs[k].len();
                            }
                        }
                        table.rebalance(w, &depth);
                    }
                }
                read += 1;
            }
            for b in cur.iter_mut() {
                send(b, step)?;
            }
            let reader = ReaderStats {
                total: reading.elapsed(),
                blocked,
                steering: opts.steering,
                moves: table.moves,
                buckets: table.held().to_vec(),
                ingest: ingest.took,
                queued: ingest.queued.clone(),
            };
            drop(inline_done);
            drop(work_txs);
            drop(ctl_tx);
            let mut stats = Vec::new();
            for h in handles {
                stats.push(h.join().map_err(|_| "a worker panicked".to_string())??);
            }
            if let Some(w) = inline {
                stats.push(w.finish());
            }
            if let Some(wr) = writer {
                wr.join().map_err(|_| "the writer panicked".to_string())??;
            }
            // Forwarding is over; the control plane may still finish a
            // version (not part of the forwarding time).
            let elapsed = start.elapsed();
            drop(forwarded_tx);
            let (versions, sched, cpu) = match ctl_handle {
                Some(h) => {
                    let (v, s, cpu) = h
                        .join()
                        .map_err(|_| "the control plane panicked".to_string())??;
                    (v, Some(s), cpu)
                }
                None => (Vec::new(), None, None),
            };
            Ok((
                stats,
                (versions, sched, cpu),
                read,
                stopped,
                elapsed,
                reader,
            ))
        })?;
    let mut counters = Counters::default();
    let mut workers = Vec::new();
    for (c, s) in stats {
        c.merge_into(&mut counters, &r.world);
        workers.push(s);
    }
    let mut versions = versions;
    version_latencies(&mut versions, &workers);
    counters.read = read;
    Ok(Report {
        counters,
        workers,
        versions,
        read,
        elapsed,
        stopped_early: stopped,
        control_scheduling,
        control_cpu,
        reader,
    })
}

/// The calling thread's time on a CPU so far (`CLOCK_THREAD_CPUTIME_ID`);
/// `None` where there is no such clock.
#[cfg(unix)]
pub fn thread_cpu() -> Option<Duration> {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .ok()
        .map(Duration::from)
}

/// The calling thread's time on a CPU: not known here.
#[cfg(not(unix))]
pub fn thread_cpu() -> Option<Duration> {
    None
}

/// The forwarding work alone, to read [`run`]'s scaling against: the
/// frames split among `workers` by the same flow hash as the reader's
/// (equal shares), placed in receive queues as [`run`] places them, in
/// batches of [`COUNTING_BATCH`] built before the clock starts, each share
/// forwarded by a worker on a thread of its own with nothing beside it: no
/// reader, no queues, no writer, no control plane.
/// Its rate on N threads over N times its rate on one is what the machine
/// gives the forwarding code itself on N cores. Counters only (the bench's
/// forward and walk rows); the wall time from the moment every thread is
/// ready, and the counters, which account for every frame.
pub fn kernel(
    world: &Arc<World>,
    frames: &[Frame],
    workers: usize,
    flow_cache: usize,
) -> Result<(Duration, Counters), String> {
    let nw = workers.max(1);
    let split = Split::new(nw, None);
    let ingest = Queues::place(frames, split, nw)?;
    let mut shares: Vec<Vec<Batch>> = (0..nw).map(|_| Vec::new()).collect();
    for d in &ingest.desc {
        let w = split.worker_of(u64::from(d.hash));
        let share = &mut shares[w];
        match share.last_mut() {
            Some(b) if b.idx.len() < COUNTING_BATCH => b.idx.push(d.pos),
            _ => share.push(Batch {
                worker: w,
                idx: vec![d.pos],
                ..Batch::default()
            }),
        }
    }
    let opts = Options {
        workers: nw,
        flow_cache,
        ..Options::default()
    };
    let first = Snapshot::initial(world.clone());
    let ready = std::sync::Barrier::new(nw + 1);
    let (stats, elapsed) = std::thread::scope(|sc| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|mut share| {
                // No control plane: the update channel's sender is gone.
                let (_, updates) = unbounded();
                let mut w =
                    Worker::new(&ingest.frames, first.clone(), updates, &opts, false, false);
                let ready = &ready;
                sc.spawn(move || -> Result<_, String> {
                    ready.wait();
                    for b in &mut share {
                        w.batch(b)?;
                    }
                    Ok(w.finish())
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let stats: Result<Vec<_>, String> = handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a worker panicked".to_string())?)
            .collect();
        (stats, start.elapsed())
    });
    let mut counters = Counters::default();
    for (c, _) in stats? {
        c.merge_into(&mut counters, world);
    }
    counters.read = frames.len();
    Ok((elapsed, counters))
}

fn send_ctl(
    tx: &Sender<Ctl>,
    step: usize,
    events: Vec<Event>,
    half: Half,
    from_packet: usize,
) -> Result<(), String> {
    tx.send(Ctl::Step {
        step,
        events,
        half,
        from_packet,
    })
    .map_err(|_| "the control plane stopped early".to_string())
}

/// The control plane beside the workers: reconverges on each step or live
/// event and publishes the new snapshot to every worker.
fn control_loop(
    c: Control,
    mut world: Arc<World>,
    (steps, retired, forwarded): (Receiver<Ctl>, Receiver<Arc<Snapshot>>, Receiver<()>),
    live: Option<Receiver<LiveEvents>>,
    workers: Vec<Sender<Arc<Snapshot>>>,
    coalesce: Duration,
) -> Result<Vec<VersionInfo>, String> {
    // Two states events build on: `announced` has every event seen so far,
    // the converged one those the tables show. What is failed in the first
    // but not in the tables is pending. The converged state is the
    // announced one unless an announced step waits for its tables
    // (`lagging`: `Some` while `unconverged` > 0), so a version under a
    // stream of updates clones the state once (for convergence), not three
    // times.
    let mut announced = cevents::apply(&c.base, &c.events).map_err(|e| e.to_string())?;
    let mut lagging: Option<(Topology, control::bgp::Conditions)> = None;
    let mut versions = Vec::new();
    let mut version = 0u32;
    let mut pending = Pending::default();
    // Announced steps whose converged half has not come yet.
    let mut unconverged = 0usize;
    let mut step = 0usize;
    let mut live = live;
    let mut last_publish: Option<Instant> = None;
    // A step that arrived during a debounce window, and whether the reader
    // has finished (no step will come).
    let mut deferred: Option<Ctl> = None;
    let mut steps_closed = false;
    let publish = |s: Snapshot| {
        let s = Arc::new(s);
        for w in &workers {
            // A worker that finished no longer listens: nothing to do.
            let _ = w.send(s.clone());
        }
    };
    loop {
        // Free the snapshots every worker has left.
        retired.try_iter().for_each(drop);
        // Under a stream of live events the rest of the window is slept
        // out first and what came meanwhile is then taken at once: one
        // wake-up a version, where waiting for the window's first event
        // woke the thread only to sleep again (a sleep and its wake-up
        // cost this thread ~20 us of CPU on this VM, by its CPU clock
        // around them, and each wake-up preempts a worker). A scheduled
        // step ends the sleep; so does the end of the run (handled below).
        if live.is_some()
            && deferred.is_none()
            && !steps_closed
            && let Some(t) = last_publish
        {
            let open = (t + coalesce).saturating_duration_since(Instant::now());
            if !open.is_zero() {
                crossbeam_channel::select! {
                    recv(steps) -> m => if let Ok(c) = m { deferred = Some(c) },
                    default(open) => {}
                }
            }
        }
        // Next input: a scheduled step or live events (coalesced). `since`:
        // when it arrived (a live event's stamp; a step's receipt).
        let since;
        let (mut evs, half, from_packet, new_step) = {
            let msg = match &live {
                _ if deferred.is_some() => deferred.take().map(Ok),
                // The run ended during the last batch: nothing more to do.
                _ if steps_closed => None,
                Some(l) => crossbeam_channel::select! {
                    recv(steps) -> m => match m {
                        Ok(c) => Some(Ok(c)),
                        // The run is over: the live events that arrived
                        // before still make a version (one last batch; no
                        // worker adopts it).
                        Err(_) => {
                            steps_closed = true;
                            l.try_recv().ok().map(Err)
                        }
                    },
                    recv(l) -> e => match e {
                        Ok(e) => Some(Err(e)),
                        Err(_) => { live = None; continue; }
                    },
                },
                None => steps.recv().ok().map(Ok),
            };
            match msg {
                None => break,
                Some(Ok(Ctl::Step {
                    step: s,
                    events,
                    half,
                    from_packet,
                })) => {
                    since = Instant::now();
                    (events, half, Some(from_packet), s)
                }
                Some(Err(e)) => {
                    since = e.at;
                    let mut evs = e.events;
                    // Debounce: gather what arrives until the window since
                    // the last publication closes.
                    // A scheduled step arriving meanwhile ends the window (it
                    // is handled next), and so does the end of the run.
                    if let Some(t) = last_publish {
                        let open = (t + coalesce).saturating_duration_since(Instant::now());
                        if !open.is_zero() && !steps_closed {
                            crossbeam_channel::select! {
                                recv(steps) -> m => match m {
                                    Ok(c) => deferred = Some(c),
                                    Err(_) => steps_closed = true,
                                },
                                default(open) => {}
                            }
                        }
                    }
                    if let Some(l) = &live {
                        loop {
                            match l.try_recv() {
                                Ok(e) => evs.extend(e.events),
                                Err(TryRecvError::Empty) => break,
                                Err(TryRecvError::Disconnected) => {
                                    live = None;
                                    break;
                                }
                            }
                        }
                    }
                    // The reader has finished: no worker will adopt this
                    // last version, so it waits for the forwarding to end
                    // rather than take a core from the workers' last
                    // batches (the channel disconnects then).
                    if steps_closed {
                        let _ = forwarded.recv();
                    }
                    (evs, Half::Whole, None, step)
                }
            }
        };
        let t0 = Instant::now();
        let is_live = from_packet.is_none();
        if !is_live {
            step = new_step;
        }
        // Announce: the events' immediate effect.
        if half != Half::Converge {
            if half == Half::Announce && lagging.is_none() {
                // The tables stay where they are until the converged half.
                lagging = Some(announced.clone());
            }
            let next = &mut announced;
            if is_live {
                // A live event that does not apply (unknown name, ...) is
                // reported and skipped; the rest of its batch applies.
                let skipped = cevents::apply_each(&mut next.0, &mut next.1, &evs);
                for (_, e) in &skipped {
                    eprintln!("{e}");
                }
                for (i, _) in skipped.into_iter().rev() {
                    evs.remove(i);
                }
                if evs.is_empty() {
                    continue;
                }
            } else {
                cevents::apply_onto(&mut next.0, &mut next.1, &evs).map_err(|e| e.to_string())?;
            }
            if half == Half::Announce {
                unconverged += 1;
            }
            let now = newly_failed(&world.cp, &announced.1);
            let changed = now != pending;
            pending = now;
            // Live events show their immediate effect before reconverging;
            // scheduled ones when a convergence delay asks for it. A step
            // whose announcement changes nothing still gets its snapshot
            // (the same version: the same tables and failures).
            if half == Half::Announce || (is_live && changed) {
                if changed {
                    version += 1;
                    versions.push(VersionInfo {
                        version,
                        events: evs.clone(),
                        kind: "pending",
                        from_packet,
                        tables_compiled: 0,
                        tables: world.fibs.distinct,
                        build_ms: 0.0,
                        latency_ms: None,
                    });
                }
                publish(Snapshot {
                    version,
                    world: world.clone(),
                    pending: pending.clone(),
                    step,
                    delta: None,
                    since,
                });
            }
            if half == Half::Announce {
                // The reconverged half comes as its own step.
                continue;
            }
        }
        // Converge: the tables with the events, and what stays pending.
        if let Some((topo, cond)) = &mut lagging
            && let Err(e) = cevents::apply_onto(topo, cond, &evs)
        {
            if !is_live {
                return Err(e.to_string());
            }
            eprintln!("{e}");
            continue;
        }
        if half == Half::Converge {
            unconverged = unconverged.saturating_sub(1);
            if unconverged == 0 {
                // Every announced step has its tables: the states meet.
                lagging = None;
            }
        }
        // Nothing announced waits for its tables: the converged state is
        // the announced one (applied once, not twice).
        let (topo, cond) = lagging.as_ref().unwrap_or(&announced);
        let cp = control::converge_state(topo.clone(), cond.clone());
        // Route events change routes only: the topology's objects stay, and
        // the delta says which prefixes changed.
        let routes_only = evs.iter().all(Event::changes_routes_only);
        let (next, compiled) = World::rebuilt(Arc::new(cp), &world, routes_only);
        let before = std::mem::replace(&mut world, Arc::new(next));
        let was_pending = std::mem::replace(&mut pending, newly_failed(&world.cp, &announced.1));
        let delta = (routes_only && was_pending == pending)
            .then(|| table_delta(&before, &world))
            .flatten()
            .map(Arc::new);
        version += 1;
        versions.push(VersionInfo {
            version,
            events: evs,
            kind: "converged",
            from_packet,
            tables_compiled: compiled,
            tables: world.fibs.distinct,
            build_ms: t0.elapsed().as_secs_f64() * 1e3,
            latency_ms: None,
        });
        publish(Snapshot {
            version,
            world: world.clone(),
            pending: pending.clone(),
            step,
            delta,
            since,
        });
        // The debounce window runs from the end of a rebuild, so that the
        // control plane takes at most rebuild / (rebuild + window) of a core.
        last_publish = Some(Instant::now());
    }
    Ok(versions)
}

/// Each version's update latency: its longest adoption delay over the
/// workers, when every worker adopted it.
fn version_latencies(versions: &mut [VersionInfo], workers: &[WorkerStats]) {
    let mut by_version: BTreeMap<u32, (usize, Duration)> = BTreeMap::new();
    for w in workers {
        let mut mine: Vec<(u32, Duration)> = w.adoptions.clone();
        mine.sort_unstable();
        // A version published twice (an announcement that changed nothing)
        // counts once per worker, at its longest.
        mine.reverse();
        mine.dedup_by_key(|a| a.0);
        for (v, d) in mine {
            let e = by_version.entry(v).or_default();
            e.0 += 1;
            e.1 = e.1.max(d);
        }
    }
    for v in versions {
        v.latency_ms = by_version
            .get(&v.version)
            .filter(|(n, _)| *n == workers.len())
            .map(|(_, d)| d.as_secs_f64() * 1e3);
    }
}

/// The prefixes whose routes differ between two worlds of the same
/// topology objects, in every table a walk reads: the compiled subnet
/// tables (what a lookup returns), NVA OS tables, and the sites' BGP best
/// routes (a site's routers forward by them; no other speaker's best
/// routes are read by a walk). `None` when the objects differ
/// (then anything may have changed).
///
/// Every list compared is sorted by prefix, so each is one merge walk;
/// subnets sharing a compiled table (or keeping theirs) are compared once.
pub fn table_delta(before: &World, after: &World) -> Option<Delta> {
    let (a, b) = (&before.cp, &after.cp);
    let (fa, fb) = (&before.fibs.by_subnet, &after.fibs.by_subnet);
    if fa.len() != fb.len() || a.nva_tables.len() != b.nva_tables.len() {
        return None;
    }
    // One sorted run of changed prefixes per list compared; a run equal to
    // one kept already (tables that changed alike: under churn, every
    // table that learns the same routes) is dropped at once.
    let mut changed: Vec<IpNet> = Vec::new();
    let mut runs: Vec<Range<usize>> = Vec::new();
    let mut run: Vec<IpNet> = Vec::new();
    let mut keep = |run: &mut Vec<IpNet>| {
        if !run.is_empty() && !runs.iter().any(|r| changed[r.clone()] == run[..]) {
            runs.push(changed.len()..changed.len() + run.len());
            changed.append(run);
        }
        run.clear();
    };
    let mut compared: Vec<(
        *const Fib<crate::fib::NicAction>,
        *const Fib<crate::fib::NicAction>,
    )> = Vec::new();
    for (x, y) in fa.iter().zip(fb) {
        let pair = (Arc::as_ptr(x), Arc::as_ptr(y));
        if pair.0 == pair.1 || compared.contains(&pair) {
            continue;
        }
        compared.push(pair);
        diff_sorted(x.routes(), y.routes(), |r| r.0, &mut run);
        keep(&mut run);
    }
    for (x, y) in a.nva_tables.iter().zip(&b.nva_tables) {
        diff_sorted(&x.entries, &y.entries, |e| e.prefix, &mut run);
        keep(&mut run);
    }
    // Of the BGP speakers, walks read only the sites' best routes (a site's
    // routers forward by them); the others reach the data path through the
    // tables compared above.
    let nodes: std::collections::BTreeSet<_> = a
        .bgp
        .best
        .keys()
        .chain(b.bgp.best.keys())
        .filter(|n| matches!(n, Node::Site(_)))
        .collect();
    for n in nodes {
        let x: Vec<_> = a.bgp.best_of(*n).collect();
        let y: Vec<_> = b.bgp.best_of(*n).collect();
        diff_sorted(&x, &y, |e| *e.0, &mut run);
        keep(&mut run);
    }
    Some(Delta::new(changed))
}

/// Adds to `out` every prefix whose entries differ between two lists
/// grouped by prefix in ascending order.
fn diff_sorted<T: PartialEq>(a: &[T], b: &[T], key: impl Fn(&T) -> IpNet, out: &mut Vec<IpNet>) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let p = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => key(x).min(key(y)),
            (Some(x), None) => key(x),
            (None, Some(y)) => key(y),
            (None, None) => break,
        };
        let i2 = i + a[i..].iter().take_while(|x| key(x) == p).count();
        let j2 = j + b[j..].iter().take_while(|y| key(y) == p).count();
        if a[i..i2] != b[j..j2] {
            out.push(p);
        }
        (i, j) = (i2, j2);
    }
}

/// Speakers and tunnels down in `after` that the tables of `before` still use.
fn newly_failed(before: &ControlPlane, after: &control::bgp::Conditions) -> Pending {
    let was = &before.conditions;
    Pending {
        speakers: after
            .down_speakers
            .iter()
            .filter(|n| {
                !was.down_speakers.contains(n) && matches!(n, Node::Nva(_) | Node::Gateway(_))
            })
            .copied()
            .collect(),
        tunnels: after
            .down_tunnels
            .iter()
            .filter(|t| !was.down_tunnels.contains(t))
            .copied()
            .collect(),
    }
}

/// Places other than a NIC a worker counts deliveries to without a map.
const PLACES: usize = 8;

/// A worker's counters: arrays and small maps keyed by value, no strings.
/// Deliveries to a VM (the common place) are counted by NIC index.
#[derive(Default)]
struct FastCounters {
    to_nic: Vec<usize>,
    /// Deliveries elsewhere (the internet, a site, ...): the first few
    /// places in the worker's own memory, searched in order; the rest in a
    /// map.
    places: ArrayVec<(Place, usize), PLACES>,
    delivered: BTreeMap<Place, usize>,
    drops: [usize; 32],
    looped: usize,
}

impl FastCounters {
    #[inline]
    fn count(&mut self, o: Outcome) {
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
    fn count_elsewhere(&mut self, p: Place) {
        *self.delivered.entry(p).or_default() += 1;
    }

    fn merge_into(&self, c: &mut Counters, world: &World) {
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
/// line pair of its own. Measured, not derived: a cached packet with one
/// worker 10-15 % faster (`examples/prof`, alternated builds); which line
/// its hot fields shared or split before is not known.
#[repr(align(128))]
struct Lane {
    buf: WalkBuf,
    frame: Vec<u8>,
    tmp: Vec<u8>,
    pieces: Vec<Vec<u8>>,
    counters: FastCounters,
    stats: WorkerStats,
    cache: Option<FlowCache>,
    deltas: Deltas,
}

/// A worker: its lane and the snapshot it forwards with.
struct Worker<'f> {
    frames: &'f [Frame],
    snap: Arc<Snapshot>,
    updates: Receiver<Arc<Snapshot>>,
    /// Where snapshots this worker is done with go (the control plane).
    retired: Option<Sender<Arc<Snapshot>>>,
    /// Snapshots received for a later scheduled step than the batch's.
    later: VecDeque<Arc<Snapshot>>,
    lane: Lane,
    from: Option<NicId>,
    traces: bool,
    pcapng: bool,
}

impl<'f> Worker<'f> {
    fn new(
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
                frame: Vec::with_capacity(2048),
                tmp: Vec::with_capacity(2048),
                pieces: Vec::new(),
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
    fn idle_update(&mut self, s: Arc<Snapshot>) {
        self.later.push_back(s);
        self.adopt_through(self.snap.step);
    }

    /// Adopts, in order, the waiting snapshots for scheduled steps up to
    /// `step`.
    fn adopt_through(&mut self, step: usize) {
        while self.later.front().is_some_and(|s| s.step <= step) {
            if let Some(s) = self.later.pop_front() {
                self.adopt(s);
            }
        }
    }

    fn adopt(&mut self, s: Arc<Snapshot>) {
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
    fn batch(&mut self, b: &mut Batch) -> Result<(), String> {
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
                Err(_) => return Err("the control plane stopped before publishing".into()),
            }
        }
        let snap = &*self.snap;
        for k in 0..b.idx.len() {
            let f = &self.frames[b.idx[k] as usize];
            self.lane
                .one(snap, f, self.from, self.traces, self.pcapng, &mut b.out)?;
        }
        self.lane.stats.busy += t0.elapsed();
        Ok(())
    }

    fn finish(mut self) -> (FastCounters, WorkerStats) {
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
fn worker(
    mut w: Worker<'_>,
    rx: Receiver<Batch>,
    done: Option<Sender<Batch>>,
    free: Sender<Batch>,
) -> Result<(FastCounters, WorkerStats), String> {
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
                .map_err(|_| "the writer stopped early".to_string())?,
            None => {
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
fn send_waiting(tx: &Sender<Batch>, b: Batch, me: Option<&mut Worker<'_>>) -> Result<(), ()> {
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
fn through_cache(
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
    fn one(
        &mut self,
        snap: &Snapshot,
        f: &Frame,
        from: Option<NicId>,
        traces: bool,
        pcapng: bool,
        out: &mut BatchOut,
    ) -> Result<(), String> {
        let world = &*snap.world;
        self.stats.packets += 1;
        self.stats.bytes += f.data.len() as u64;
        let outcome = match wire::parse(f.link, &f.data) {
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
                                    Start::Site(_) => AZURE_ROUTER_MAC,
                                };
                                wire::normalize(
                                    &f.data,
                                    p.ip_offset,
                                    AZURE_ROUTER_MAC,
                                    src_mac,
                                    &mut self.frame,
                                );
                            }
                            if tunnel {
                                self.buf.packet = replay::packet_of(&self.frame, h, p.ttl);
                            } else {
                                self.buf
                                    .packet
                                    .reset(h, p.ttl.max(1), f.data.len() - p.ip_offset);
                            }
                            let o = if pcapng || traces {
                                world.forward_with(start, &mut self.buf, &snap.pending, pcapng)
                            } else {
                                world.forward_counting(start, &mut self.buf, &snap.pending)
                            };
                            self.stats.hops += self.buf.steps as u64;
                            o
                        }
                    }
                }
            }
        };
        self.counters.count(outcome);
        if traces {
            replay::write_trace_line(
                &mut out.jsonl,
                world,
                f.number,
                outcome,
                &self.buf.hops,
                Some(snap.version),
            )?;
        }
        if pcapng && !self.buf.hops.is_empty() {
            let BatchOut { recs, bytes, .. } = out;
            let mut sink =
                |nic: NicId, ts: Duration, data: &[u8], comment: &str, outbound: bool| {
                    let d0 = bytes.len();
                    bytes.extend_from_slice(data);
                    let c0 = bytes.len();
                    bytes.extend_from_slice(comment.as_bytes());
                    recs.push(Rec {
                        nic,
                        ts,
                        data: d0..c0,
                        comment: c0..bytes.len(),
                        outbound,
                    });
                    Ok(())
                };
            replay::render(
                world,
                &self.buf.hops,
                outcome,
                f,
                &mut self.frame,
                &mut self.tmp,
                &mut self.pieces,
                &mut sink,
            )?;
        }
        out.ends.push((out.jsonl.len(), out.recs.len()));
        Ok(())
    }
}

/// Restores input order: the next packet is at the head of one worker's
/// queue (each worker's batches arrive in order), or not arrived yet.
fn write_loop<W: Write, T: Write>(
    nw: usize,
    done: Receiver<Batch>,
    free: Sender<Batch>,
    world: &World,
    ingest: &Queues<'_>,
    mut pcapng: Option<&mut PcapNgOut<W>>,
    mut traces: Option<&mut T>,
) -> Result<(), String> {
    // Per worker: batches waiting, and the position in the front batch.
    let mut queues: Vec<VecDeque<Batch>> = (0..nw).map(|_| VecDeque::new()).collect();
    let mut pos = vec![0usize; nw];
    let mut next: u32 = 0;
    let t = &world.cp.topology;
    loop {
        let mut progressed = false;
        for w in 0..nw {
            while let Some(b) = queues[w].front() {
                let k = pos[w];
                if ingest.input_index(b.idx[k]) != next {
                    break;
                }
                let (j0, r0) = if k == 0 { (0, 0) } else { b.out.ends[k - 1] };
                let (j1, r1) = b.out.ends[k];
                if let Some(tr) = traces.as_deref_mut() {
                    tr.write_all(&b.out.jsonl[j0..j1])
                        .map_err(|e| e.to_string())?;
                }
                if let Some(out) = pcapng.as_deref_mut() {
                    for r in &b.out.recs[r0..r1] {
                        let comment = std::str::from_utf8(&b.out.bytes[r.comment.clone()])
                            .unwrap_or_default();
                        out.write(
                            &t.nic(r.nic).name,
                            r.ts,
                            &b.out.bytes[r.data.clone()],
                            comment,
                            r.outbound,
                        )?;
                    }
                }
                next += 1;
                progressed = true;
                pos[w] += 1;
                if pos[w] == b.idx.len() {
                    pos[w] = 0;
                    if let Some(b) = queues[w].pop_front() {
                        let _ = free.send(b);
                    }
                }
            }
        }
        if progressed {
            continue;
        }
        match done.recv() {
            Ok(b) => {
                let w = b.worker;
                queues[w].push_back(b);
            }
            Err(_) => break,
        }
    }
    if queues.iter().any(|q| !q.is_empty()) {
        return Err(format!(
            "internal: packets left unwritten after packet index {next}"
        ));
    }
    Ok(())
}

/// Live events read from standard input, one per line (`#` starts a
/// comment); a line that does not parse is reported with its number and
/// skipped.
pub fn stdin_events() -> Receiver<LiveEvents> {
    read_events(std::io::stdin(), "stdin")
}

/// Live events read from `input` on a thread of their own: the lines that
/// came in one read go as one [`LiveEvents`] (a burst piped in reaches the
/// control plane as one message, a line typed by hand at once).
pub fn read_events<R: std::io::Read + Send + 'static>(
    input: R,
    name: &'static str,
) -> Receiver<LiveEvents> {
    let (tx, rx) = unbounded();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut input = std::io::BufReader::new(input);
        let mut line = String::new();
        let mut batch = Vec::new();
        let mut n = 0usize;
        loop {
            line.clear();
            match input.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => n += 1,
                Err(e) => {
                    eprintln!("{name}:{}: {e}", n + 1);
                    break;
                }
            }
            let l = line.split('#').next().unwrap_or("").trim();
            if !l.is_empty() {
                match Event::parse(l) {
                    Ok(e) => batch.push(e),
                    Err(e) => eprintln!("{name}:{n}: {e}"),
                }
            }
            // The lines already read in are one burst: sent together once
            // no whole line is left in the buffer.
            if !input.buffer().contains(&b'\n')
                && !batch.is_empty()
                && tx
                    .send(LiveEvents::now(std::mem::take(&mut batch)))
                    .is_err()
            {
                return;
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(LiveEvents::now(batch));
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delta names a prefix whose best route changed at a site (a
    /// site's routers forward by it), and not one that changed only in
    /// another speaker's BGP table (walks read those through the subnet
    /// and NVA tables, compared on their own).
    #[test]
    fn table_delta_reads_the_sites_best_routes_and_no_other_speakers() {
        let t = crate::topology::load_builtin("onprem-overlay")
            .expect("builtin")
            .expect("loads");
        let cp = control::converge(&t, &[]).expect("converges");
        let before = World::new(&cp);
        let p: IpNet = "100.99.0.0/24".parse().unwrap();
        let delta_with = |n: Node| {
            let mut cp2 = cp.clone();
            let some = cp2
                .bgp
                .best
                .values()
                .flat_map(|m| m.values())
                .find_map(|v| v.first().cloned())
                .expect("a best path");
            let path = crate::control::bgp::Path { prefix: p, ..some };
            cp2.bgp.best.entry(n).or_default().insert(p, vec![path]);
            let after = World::rebuilt(Arc::new(cp2), &before, true).0;
            let d = table_delta(&before, &after).expect("same objects");
            d.prefixes().to_vec()
        };
        let site = Node::by_name(&t, "onprem").expect("site");
        let rs = Node::by_name(&t, "rs-hub1").expect("route server");
        assert_eq!(delta_with(site), vec![p]);
        assert_eq!(delta_with(rs), Vec::<IpNet>::new());
    }

    type Snap = Arc<Snapshot>;

    fn snap(world: &Arc<World>, version: u32, step: usize) -> Snap {
        Arc::new(Snapshot {
            version,
            world: world.clone(),
            pending: Pending::default(),
            step,
            delta: None,
            since: Instant::now(),
        })
    }

    /// A worker at version 0 with its update channel; its retired
    /// snapshots come back on the returned receiver.
    fn idle_worker(frames: &[Frame]) -> (Worker<'_>, Arc<World>, Sender<Snap>, Receiver<Snap>) {
        let t = crate::topology::load_builtin("spoke-to-spoke-udr")
            .expect("builtin")
            .expect("loads");
        let world = Arc::new(World::new(&control::converge(&t, &[]).expect("converges")));
        let (upd_tx, upd_rx) = unbounded();
        let (retire_tx, retire_rx) = unbounded();
        let mut w = Worker::new(
            frames,
            snap(&world, 0, 0),
            upd_rx,
            &Options::default(),
            false,
            false,
        );
        w.retired = Some(retire_tx);
        (w, world, upd_tx, retire_rx)
    }

    const SOON: Duration = Duration::from_secs(10);

    /// Deliveries to more places than the inline list holds: the first
    /// [`PLACES`] are counted inline, the rest in the map, and the merged
    /// counters name every place with its exact count.
    #[test]
    fn counters_keep_every_place_past_the_inline_list() {
        let (_, world, _, _) = idle_worker(&[]);
        let mut c = FastCounters::default();
        let places = PLACES + 3;
        let place = |k: usize| Place::Platform(std::net::IpAddr::from([168, 63, 129, k as u8]));
        // Place k delivered k + 1 times, interleaved, with a NIC delivery
        // and a drop between.
        for round in 0..places {
            for k in round..places {
                c.count(Outcome::Delivered(place(k)));
            }
            c.count(Outcome::Delivered(Place::At(At::NicIn(NicId(0)))));
            c.count(Outcome::Dropped(Place::Capture, DropReason::Malformed));
        }
        assert_eq!(c.places.len(), PLACES);
        assert_eq!(c.delivered.len(), places - PLACES);
        let mut merged = Counters::default();
        c.merge_into(&mut merged, &world);
        for k in 0..places {
            let name = world.place_name(place(k)).into_owned();
            assert_eq!(merged.delivered_at.get(&name), Some(&(k + 1)), "{name}");
        }
        let nic0 = world
            .place_name(Place::At(At::NicIn(NicId(0))))
            .into_owned();
        assert_eq!(merged.delivered_at.get(&nic0), Some(&places));
        assert_eq!(merged.delivered, places * (places + 1) / 2 + places);
        assert_eq!(merged.dropped, places);
        assert_eq!(merged.drop_reasons.get("malformed"), Some(&places));
    }

    /// A worker with no batch takes a snapshot when it is published (and
    /// hands the old one back to be freed), not when its next batch comes;
    /// one for a scheduled step it has not reached waits for that batch.
    #[test]
    fn an_idle_worker_adopts_a_published_snapshot_at_once() {
        let (w, world, upd, retired) = idle_worker(&[]);
        let (batch_tx, batch_rx) = bounded::<Batch>(1);
        let (free_tx, _free_rx) = unbounded();
        std::thread::scope(|sc| {
            let h = sc.spawn(move || worker(w, batch_rx, None, free_tx));
            upd.send(snap(&world, 1, 0)).expect("the worker listens");
            let old = retired.recv_timeout(SOON).expect("adopted while idle");
            assert_eq!(old.version, 0);
            upd.send(snap(&world, 2, 1)).expect("the worker listens");
            assert!(
                retired.recv_timeout(Duration::from_millis(300)).is_err(),
                "a snapshot for a step no batch has reached was adopted"
            );
            // The batch of step 1 takes it.
            batch_tx
                .send(Batch {
                    step: 1,
                    ..Batch::default()
                })
                .expect("the worker listens");
            let old = retired.recv_timeout(SOON).expect("adopted for the batch");
            assert_eq!(old.version, 1);
            drop((batch_tx, upd));
            let (_, stats) = h.join().expect("no panic").expect("no error");
            let versions: Vec<u32> = stats.adoptions.iter().map(|a| a.0).collect();
            assert_eq!(versions, [1, 2]);
        });
    }

    /// The reader's own worker, while the reader waits on another worker's
    /// full queue, takes the snapshots published meanwhile.
    #[test]
    fn a_reader_waiting_on_a_full_queue_adopts_for_its_own_share() {
        let (mut me, world, upd, retired) = idle_worker(&[]);
        let (tx, rx) = bounded::<Batch>(1);
        tx.send(Batch::default()).expect("room for one");
        std::thread::scope(|sc| {
            let h = sc.spawn(move || {
                let r = send_waiting(&tx, Batch::default(), Some(&mut me));
                (r, me.snap.version)
            });
            upd.send(snap(&world, 1, 0)).expect("the reader listens");
            let old = retired.recv_timeout(SOON);
            // Room in the queue: the batch goes (first, so that a failure
            // below leaves no thread blocked).
            rx.recv().expect("the first batch");
            let (sent, version) = h.join().expect("no panic");
            assert_eq!(old.expect("adopted while blocked").version, 0);
            assert_eq!(sent, Ok(()));
            assert_eq!(version, 1);
            assert!(rx.recv().is_ok(), "the waiting batch arrived");
        });
    }

    /// A thread's CPU time grows while it computes (where the OS says).
    #[test]
    fn a_threads_cpu_time_grows_while_it_spins() {
        let start = super::thread_cpu();
        if cfg!(not(unix)) {
            assert_eq!(start, None);
            return;
        }
        let start = start.expect("a thread CPU clock on Unix");
        let wall = Instant::now();
        let mut x = 1u64;
        while super::thread_cpu().unwrap() < start + Duration::from_millis(5) {
            x = std::hint::black_box(x.wrapping_mul(3));
            assert!(wall.elapsed() < Duration::from_secs(10), "CPU time stuck");
        }
    }

    /// A version's latency is its longest adoption over the workers, and
    /// none when a worker never adopted it.
    #[test]
    fn a_versions_latency_is_its_last_adoption() {
        let ms = Duration::from_millis;
        let info = |version| VersionInfo {
            version,
            events: Vec::new(),
            kind: "converged",
            from_packet: None,
            tables_compiled: 0,
            tables: 0,
            build_ms: 0.0,
            latency_ms: None,
        };
        let mut versions = vec![info(1), info(2)];
        let w = |adoptions: Vec<(u32, Duration)>| WorkerStats {
            adoptions,
            ..WorkerStats::default()
        };
        let workers = [
            w(vec![(1, ms(3)), (2, ms(4))]),
            w(vec![(1, ms(2)), (1, ms(7))]),
        ];
        version_latencies(&mut versions, &workers);
        assert_eq!(versions[0].latency_ms, Some(7.0));
        assert_eq!(versions[1].latency_ms, None);
    }

    /// The reader forwards a share itself once the workers, and a live
    /// control plane, take every core (the rule `bench::run_pair` also
    /// gives the run without churn).
    #[test]
    fn the_reader_forwards_a_share_once_workers_and_control_fill_the_cores() {
        let cores = default_workers().max(2);
        assert!(ReaderMode::Auto.inline(cores, false));
        assert!(!ReaderMode::Auto.inline(cores - 1, false));
        assert!(ReaderMode::Auto.inline(cores - 1, true));
        assert!(!ReaderMode::Thread.inline(cores, true));
        assert!(ReaderMode::Inline.inline(1, false));
    }

    /// Whole lines that come in one read go as one message; lines that
    /// come one read at a time go one by one; comments, blank and bad lines
    /// send nothing, and nothing is lost at the end.
    #[test]
    fn live_events_come_in_the_bursts_they_were_read_in() {
        let text = "speaker-down nva1\n\n# a comment\nreboot everything\nadvertise nva2 100.127.9.0/24 # why\nspeaker-up nva1";
        let all: Vec<Vec<String>> = read_events(std::io::Cursor::new(text.to_string()), "test")
            .iter()
            .map(|b| b.events.iter().map(ToString::to_string).collect())
            .collect();
        // The last line has no newline: it is whole only when the input
        // ends, after the burst before it went.
        assert_eq!(
            all,
            [
                vec![
                    "speaker-down nva1".to_string(),
                    "advertise nva2 100.127.9.0/24".into()
                ],
                vec!["speaker-up nva1".into()]
            ]
        );
        /// Hands out one line per read.
        struct ByLine(std::vec::IntoIter<&'static str>);
        impl std::io::Read for ByLine {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some(l) = self.0.next() else { return Ok(0) };
                buf[..l.len()].copy_from_slice(l.as_bytes());
                Ok(l.len())
            }
        }
        let lines = vec!["speaker-down nva1\n", "bad\n", "speaker-up nva1\n"];
        let sizes: Vec<usize> = read_events(ByLine(lines.into_iter()), "test")
            .iter()
            .map(|b| b.events.len())
            .collect();
        assert_eq!(sizes, [1, 1]);
    }
}
