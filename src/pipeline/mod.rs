//! The forwarding pipeline: a reader, N workers, a control plane and a
//! writer, connected by crossbeam channels.
//!
//! ```text
//!  capture ─▶ input ─▶ reader ──flow hash──▶ worker 0 ─┐  (batches of indices)
//!   (chunks)          │            ▶ worker 1 ─┼─▶ writer ─▶ pcapng, JSONL (input order)
//!                     │            ▶ …        ─┘
//!                     └─ scheduled events ─▶ control ──snapshots──▶ every worker
//!                          stdin events ───▶ (reconverge, recompile changed tables)
//! ```
//!
//! - A streamed capture ([`run_stream`]) is read by an input thread chunk
//!   by chunk ([`stream`]): a chunk goes back to a pool of four once every
//!   packet in it is written, so memory stays flat. Frames in memory
//!   ([`run`]) are placed in receive queues first ([`Queues`]).
//! - The reader hashes each frame's 5-tuple, finds the worker of its hash
//!   bucket (a flow stays on one worker until `steer` moves its bucket to
//!   a worker that keeps pace) and hands index batches out; batch buffers
//!   come back through a free list, so a steady run allocates nothing per
//!   packet.
//! - A worker owns its walk buffers, counters and output buffers; it walks
//!   packets with [`World::forward_with`] (no text, no allocation, no lock)
//!   unless pcapng output wants the decisions as comments; runs that write
//!   reuse a flow's recorded walk under the same table version
//!   (`walkcache`) and encode whole pcapng blocks.
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

mod control;
pub mod flowcache;
mod ingest;
#[cfg(feature = "bench")]
mod kernel;
mod reader;
mod report;
pub mod schedule;
mod steer;
pub mod stream;
mod walkcache;
mod worker;
mod writer;

pub use control::{ControlService, ServiceEnd, serve_control, table_delta};
pub use ingest::Queues;
#[cfg(feature = "bench")]
pub use kernel::kernel;
pub use report::{ReaderStats, Report, VersionInfo, WorkerStats, thread_cpu};
pub use schedule::read_events;
pub use steer::Steering;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::control::events::Event;
use crate::dataplane::frame::{Counters, Hops, Only, RenderError};
use crate::dataplane::{Pending, World};
use crate::io::{Frame, PcapNgOut};
use crate::topology::{NicId, Topology};
use control::Ctl;
use reader::{Input, Reader};
use worker::{Batch, Worker};

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
    /// Which crossings of a packet pcapng output writes.
    pub hops: Hops,
    /// The verdicts whose packets are written (traces and pcapng).
    pub only: Only,
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
            hops: Hops::default(),
            only: Only::default(),
        }
    }
}

/// Frames per batch when nothing is written: large, because each hand-off
/// costs a wake-up on both sides; small enough that a worker adopts a new
/// table version (between batches) within a couple of milliseconds.
pub const COUNTING_BATCH: usize = 4096;

/// Frames per batch when traces or pcapng are written: a batch carries its
/// outputs (a trace line and frames a packet) until the writer takes them.
pub const WRITING_BATCH: usize = 256;

/// The debounce of live events: of the 10 ms an update may take to reach
/// every worker, what the rebuild and the adoption leave. A version costs
/// about the same for one update or hundreds, so the window also bounds the
/// control thread's share of a core under a stream of updates.
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(6);

/// Frames a worker's queue holds when nothing is written (32 batches of
/// [`COUNTING_BATCH`]): deep enough for the reader to go on while a worker
/// is off its core during a control-plane rebuild.
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
    pub delta: Option<Arc<flowcache::Delta>>,
    /// When the oldest change it carries arrived (a live event) or was due
    /// (a scheduled step): update latency is measured from here.
    since: Instant,
}

impl Snapshot {
    /// Version 0: the tables a run starts with.
    pub(crate) fn initial(world: Arc<World>) -> Arc<Snapshot> {
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
    /// The line of each event, when they were read from lines (empty
    /// otherwise): a burst left unread when the run ends is reported by
    /// them.
    pub lines: Vec<usize>,
}

impl LiveEvents {
    /// `events`, stamped now.
    pub fn now(events: Vec<Event>) -> Self {
        LiveEvents {
            at: Instant::now(),
            events,
            lines: Vec::new(),
        }
    }

    /// Events read from lines, (line, event), stamped now.
    pub fn from_lines(burst: &[(usize, Event)]) -> Self {
        LiveEvents {
            at: Instant::now(),
            events: burst.iter().map(|(_, e)| e.clone()).collect(),
            lines: burst.iter().map(|(k, _)| *k).collect(),
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

/// Why a run could not go on. A packet that cannot be forwarded is not an
/// error (it is dropped with a reason); these end the run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("events need the topology to reconverge: give the run a `control`")]
    NoControl,
    #[error(
        "receive queues built for other options: {queues} queues for {workers} workers, or \
         another first split (build them with this run's options, live events and outputs)"
    )]
    QueuesMismatch { queues: usize, workers: usize },
    #[error(
        "{frames} frames: a run takes at most {} (split the capture)",
        u32::MAX
    )]
    TooManyFrames { frames: usize },
    #[error(transparent)]
    Event(Box<crate::control::events::EventError>),
    #[error(transparent)]
    Render(Box<RenderError>),
    #[error(transparent)]
    Capture(Box<crate::io::CaptureError>),
    /// Writing the traces failed (the cause is the source, printed once
    /// after this).
    #[error("writing traces")]
    Traces(#[source] std::io::Error),
    #[error("{0} stopped early")]
    Stopped(&'static str),
    #[error("{0} panicked")]
    Panicked(&'static str),
    #[error("packets left unwritten after packet index {0}")]
    Unwritten(u64),
}

// The error's large variants are boxed: a packet's walk returns a
// `Result<(), PipelineError>`, which stays two words wide.
impl From<crate::control::events::EventError> for PipelineError {
    fn from(e: crate::control::events::EventError) -> Self {
        PipelineError::Event(Box::new(e))
    }
}

impl From<RenderError> for PipelineError {
    fn from(e: RenderError) -> Self {
        PipelineError::Render(Box::new(e))
    }
}

impl From<crate::io::CaptureError> for PipelineError {
    fn from(e: crate::io::CaptureError) -> Self {
        PipelineError::Capture(Box::new(e))
    }
}

/// The first snapshot: the tables a run starts with.
pub fn first_snapshot(world: Arc<World>) -> Arc<Snapshot> {
    Snapshot::initial(world)
}

/// Runs `frames` through the pipeline. Every frame read ends in exactly
/// one counter; with outputs, they are written in input order, identical
/// for any number of workers. The frames are first placed in receive
/// queues ([`Queues`]); [`run_queued`] takes queues built beforehand.
pub fn run<W: Write + Send, T: Write + Send>(
    frames: &[Frame],
    r: Run<'_>,
    outputs: Outputs<'_, W, T>,
) -> Result<Report, PipelineError> {
    let writing = outputs.traces.is_some() || outputs.pcapng.is_some();
    let q = Queues::new(frames, &r.opts, r.live.is_some(), writing)?;
    run_queued(&q, r, outputs)
}

/// Both ends of a channel.
type Pair<T> = (Sender<T>, Receiver<T>);

/// The channels between the pipeline's threads.
struct Channels {
    free: Pair<Batch>,
    done: Pair<Batch>,
    ctl: Pair<Ctl>,
    /// Snapshots workers are done with go back to the control plane, which
    /// frees them: a worker never pays for dropping a world.
    retire: Pair<Arc<Snapshot>>,
    /// Disconnected once every packet is forwarded (nothing is sent on it).
    forwarded: Pair<()>,
    work: Vec<Pair<Batch>>,
    updates: Vec<Pair<Arc<Snapshot>>>,
}

impl Channels {
    /// Channels for `nw` workers whose queues hold `queue` batches.
    fn new(nw: usize, queue: usize) -> Self {
        Channels {
            free: unbounded(),
            // Forwarded batches wait for the writer: a worker runs at most
            // a queue ahead of it (a batch carries its outputs, so this
            // bounds the memory they take).
            done: bounded(queue * nw),
            ctl: unbounded(),
            retire: unbounded(),
            forwarded: bounded(0),
            work: (0..nw).map(|_| bounded(queue)).collect(),
            updates: (0..nw).map(|_| unbounded()).collect(),
        }
    }
}

/// [`run`] on frames already placed in receive queues, built with the
/// same options (and live events or not, outputs or not) as this run.
pub fn run_queued<W: Write + Send, T: Write + Send>(
    ingest: &Queues<'_>,
    r: Run<'_>,
    outputs: Outputs<'_, W, T>,
) -> Result<Report, PipelineError> {
    let want_out = outputs.traces.is_some() || outputs.pcapng.is_some();
    let (_, split) = steer::first_split(&r.opts, r.live.is_some(), want_out);
    // A split names its worker count: equal splits, equal queues.
    if ingest.split != split {
        return Err(PipelineError::QueuesMismatch {
            queues: ingest.queued.len(),
            workers: r.opts.workers.max(1),
        });
    }
    run_input(Input::Queued(ingest), r, outputs)
}

/// Streams a capture through the pipeline in bounded memory
/// ([`stream`]): a thread reads it chunk by chunk while the first packets
/// are forwarded and written. `r.scheduled` is not read: the source's
/// events are resolved as their packet or time goes by. Also returns how
/// the input ended.
pub fn run_stream<R: std::io::Read + Send, W: Write + Send, T: Write + Send>(
    src: stream::Source<R>,
    r: Run<'_>,
    outputs: Outputs<'_, W, T>,
) -> Result<(Report, stream::InputEnd), PipelineError> {
    if !src.scheduled.is_empty() && r.control.is_none() {
        return Err(PipelineError::NoControl);
    }
    let stop = r.stop;
    let chunk = if outputs.pcapng.is_some() || outputs.traces.is_some() {
        stream::WRITING_CHUNK_FRAMES
    } else {
        stream::CHUNK_FRAMES
    };
    std::thread::scope(|sc| {
        let (tx, rx) = bounded(1);
        let input = sc.spawn(move || stream::read_input(src, tx, stop, chunk));
        let report = run_input(Input::Stream(rx), r, outputs);
        let end = input
            .join()
            .map_err(|_| PipelineError::Panicked("the input reader"))?;
        Ok((report?, end))
    })
}

/// The run itself, on either input.
fn run_input<W: Write + Send, T: Write + Send>(
    input: Input<'_, '_>,
    mut r: Run<'_>,
    outputs: Outputs<'_, W, T>,
) -> Result<Report, PipelineError> {
    let opts = r.opts;
    let nw = opts.workers.max(1);
    let want_traces = outputs.traces.is_some();
    let want_pcapng = outputs.pcapng.is_some();
    let want_out = want_traces || want_pcapng;
    let batch = opts
        .batch
        .unwrap_or(if want_out {
            WRITING_BATCH
        } else {
            COUNTING_BATCH
        })
        .max(1);
    if (!r.scheduled.is_empty() || r.live.is_some()) && r.control.is_none() {
        return Err(PipelineError::NoControl);
    }
    let (inline_last, split) = steer::first_split(&opts, r.live.is_some(), want_out);
    let ingest = match &input {
        Input::Queued(q) => Some(*q),
        Input::Stream(_) => None,
    };
    let placed: &[Frame] = ingest.map_or(&[], |q| &q.frames);
    let first = Snapshot::initial(r.world.clone());
    // Each worker's queue: deep enough, when nothing is written, for the
    // reader to go on with its own share while a worker is off its core
    // during a rebuild; with outputs the writer sets the pace and a batch
    // carries its traces and frames, so the queue stays short.
    let queue = if want_out {
        16
    } else {
        (WORKER_QUEUE_FRAMES / batch).clamp(16, 4096)
    };
    let ch = Channels::new(nw, queue);
    let retire_tx = r.control.is_some().then(|| ch.retire.0.clone());
    let live = r.live.take();
    let control = r.control.take();
    if control.is_some() {
        // The control plane spreads a large version over rayon's pool: the
        // pool's threads start here, at normal priority, not from the
        // control thread (threads inherit a real-time policy).
        rayon::current_num_threads();
    }
    let start = Instant::now();
    let Channels {
        free: (free_tx, free_rx),
        done: (done_tx, done_rx),
        ctl: (ctl_tx, ctl_rx),
        retire: (_, retire_rx),
        forwarded: (forwarded_tx, forwarded_rx),
        work,
        updates,
    } = ch;
    let (upd_txs, upd_rxs): (Vec<_>, Vec<_>) = updates.into_iter().unzip();
    let (work_txs, work_rxs): (Vec<_>, Vec<_>) = work.into_iter().unzip();
    let joined = std::thread::scope(|sc| -> Result<_, PipelineError> {
        // Control plane.
        let ctl_handle = control.map(|c| {
            let inputs = control::Inputs {
                steps: ctl_rx,
                retired: retire_rx,
                forwarded: forwarded_rx,
                live,
            };
            let world = r.world.clone();
            sc.spawn(move || control::run(c, world, inputs, upd_txs, &opts))
        });
        // Workers: one thread each; when there is no core to spare for the
        // reader, the reader forwards the last worker's batches itself.
        let mut handles = Vec::new();
        let mut inline: Option<Worker<'_>> = None;
        for (k, (rx, upd)) in work_rxs.into_iter().zip(upd_rxs).enumerate() {
            let mut w = Worker::new(placed, first.clone(), upd, &opts, want_traces, want_pcapng);
            w.retired = retire_tx.clone();
            if k == nw - 1 && inline_last {
                inline = Some(w);
                continue;
            }
            let done = want_out.then(|| done_tx.clone());
            let free = free_tx.clone();
            handles.push(sc.spawn(move || worker::run(w, rx, done, free)));
        }
        let inline_done = want_out.then(|| done_tx.clone());
        drop(done_tx);
        // Writer.
        let writer = want_out.then(|| {
            let free = free_tx.clone();
            let world = r.world.clone();
            let Outputs { pcapng, traces } = outputs;
            sc.spawn(move || writer::run(nw, done_rx, free, &world, ingest, pcapng, traces))
        });
        drop(free_tx);
        let mut reader = Reader::new(
            split,
            opts,
            batch,
            work_txs,
            free_rx,
            inline,
            inline_done,
            ctl_tx,
        );
        let end = reader.run(input, &r.scheduled, r.stop);
        // The reader's channels close here: workers and control plane see
        // the end of input. Every thread is joined whatever happened, and
        // the error reported is the cause: a writer that failed (a full
        // disk, a closed pipe) stops the workers and the reader too, whose
        // "stopped early" only follows from it.
        let inline = reader.finish();
        let mut failed: Option<PipelineError> = None;
        let mut note = |e: PipelineError| {
            if failed
                .as_ref()
                .is_none_or(|f| matches!(f, PipelineError::Stopped(_)))
            {
                failed = Some(e);
            }
        };
        let end = end.map_err(&mut note).ok();
        let mut stats = Vec::new();
        for h in handles {
            match h.join() {
                Ok(Ok(s)) => stats.push(s),
                Ok(Err(e)) => note(e),
                Err(_) => note(PipelineError::Panicked("a worker")),
            }
        }
        if let Some(w) = inline {
            stats.push(w.finish());
        }
        if let Some(wr) = writer {
            match wr.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => note(e),
                Err(_) => note(PipelineError::Panicked("the writer")),
            }
        }
        // Forwarding is over; the control plane may still finish a
        // version (not part of the forwarding time).
        let elapsed = start.elapsed();
        drop(forwarded_tx);
        let control = match ctl_handle {
            Some(h) => match h.join() {
                Ok(Ok(c)) => Some(c),
                Ok(Err(e)) => {
                    note(e);
                    None
                }
                Err(_) => {
                    note(PipelineError::Panicked("the control plane"));
                    None
                }
            },
            None => None,
        };
        if let Some(e) = failed {
            return Err(e);
        }
        let end = end.ok_or(PipelineError::Stopped("the reader"))?;
        Ok((stats, control, end, elapsed))
    });
    let (stats, control, end, elapsed) = joined?;
    let mut counters = Counters::default();
    let mut workers = Vec::new();
    for (c, s) in stats {
        c.merge_into(&mut counters, &r.world);
        workers.push(s);
    }
    let (mut versions, control_scheduling, control_cpu, rejected_events) = match control {
        Some(c) => (c.versions, Some(c.scheduling), c.cpu, c.rejected),
        None => (Vec::new(), None, None, Vec::new()),
    };
    report::version_latencies(&mut versions, &workers);
    counters.read = end.read;
    Ok(Report {
        counters,
        workers,
        versions,
        read: end.read,
        elapsed,
        stopped_early: end.stopped,
        control_scheduling,
        control_cpu,
        rejected_events,
        reader: end.stats,
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use crossbeam_channel::Receiver;
    use ipnet::IpNet;

    use super::control::table_delta;
    use super::report::version_latencies;
    use super::worker::{FastCounters, PLACES, send_waiting};
    use super::*;
    use crate::control::bgp::Node;
    use crate::control::converge;
    use crate::dataplane::{At, DropReason, Outcome, Place};

    /// The delta names a prefix whose best route changed at a site (a
    /// site's routers forward by it), and not one that changed only in
    /// another speaker's BGP table (walks read those through the subnet
    /// and NVA tables, compared on their own).
    #[test]
    fn table_delta_reads_the_sites_best_routes_and_no_other_speakers() {
        let t = crate::topology::load_builtin("onprem-overlay")
            .expect("builtin")
            .expect("loads");
        let cp = converge(&t, &[]).expect("converges");
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
        let world = Arc::new(World::new(&converge(&t, &[]).expect("converges")));
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
        let place = |k: usize| Place::Platform(IpAddr::from([168, 63, 129, k as u8]));
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
            let h = sc.spawn(move || worker::run(w, batch_rx, None, free_tx));
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
        let all: Vec<Vec<String>> = read_events(
            std::io::Cursor::new(text.to_string()),
            "test",
            |_| Ok(()),
            |_| {},
        )
        .events
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
        let sizes: Vec<usize> = read_events(ByLine(lines.into_iter()), "test", |_| Ok(()), |_| {})
            .events
            .iter()
            .map(|b| b.events.len())
            .collect();
        assert_eq!(sizes, [1, 1]);
    }
}
