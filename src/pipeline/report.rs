//! What a run reports: counters, per-worker figures, the table versions
//! the control plane published and what each cost.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::Steering;
use crate::control::events::Event;
use crate::dataplane::frame::Counters;

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
    /// since leave standing (see [`flowcache`](super::flowcache)).
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
    /// [`ControlPriority`](super::ControlPriority)); `None` without a control plane.
    pub control_scheduling: Option<String>,
    /// The control-plane thread's time on a CPU, from its start to its end
    /// (it may finish a version after the last packet); `None` without a
    /// control plane or where the OS does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_cpu: Option<Duration>,
    /// Live events that did not apply (an unknown name, ...), each with
    /// why; the rest of their burst applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected_events: Vec<String>,
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
    /// (a NIC's receive-side scaling, [`Queues`](super::Queues)), and the frames each
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

/// Each version's update latency: its longest adoption delay over the
/// workers, when every worker adopted it.
pub(super) fn version_latencies(versions: &mut [VersionInfo], workers: &[WorkerStats]) {
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
