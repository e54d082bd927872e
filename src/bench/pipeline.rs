//! `vnetplane bench`: generated traffic through the pipeline.
//!
//! Without `--topology`, the standard cases run: **one-hop** (VM → VM in one
//! VNet: one SDN decision), **vxlan** (`multi-region-vxlan` spoke11 →
//! spoke21: nine hops, VXLAN encap and decap) and **mixed** (the default
//! topology, every sender to every destination). Each case runs on 1 worker
//! and on every core: `forward` (counters only, with the per-worker flow
//! cache: a flow's first packet walks, the others reuse its outcome while
//! the tables stay the same), `walk` (the same without the cache: every
//! packet walks every hop), `traces+pcapng` (every hop recorded and
//! written), then `churn` (forward with route updates streaming in; each
//! churn run is paired with a run without churn just before it, and the
//! ratio reported is the median of the pairs'). Rates are medians of
//! `--repeat` runs; the machine is recorded in the output.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use crate::control::{self, events::Event};
use crate::dataplane::{Start, World};
use crate::io::{Frame, PcapNgOut};
use crate::pipeline::{
    self, Control, ControlPriority, Options, Outputs, ReaderMode, Report, Run, Steering,
};
use crate::topology::{self, Topology};

pub use super::absorb::{ABSORB_RUNS, Absorb, absorb, absorb_case};
pub use super::machine::{Machine, Speed, Stalls, core_probe, memory_probe, pair_probe};
pub use crate::dataplane::traffic::FRAME_LEN;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Topology to send traffic through [default: the standard cases].
    #[arg(long, short)]
    pub topology: Option<String>,
    /// Sending NIC [default: every sender of the topology].
    #[arg(long)]
    pub from: Option<String>,
    /// Destination address [default: every destination of the topology].
    #[arg(long)]
    pub dst: Option<IpAddr>,
    /// Workers to measure, comma-separated [default: 1 and every core].
    #[arg(long, value_delimiter = ',')]
    pub workers: Vec<usize>,
    /// Packets per run [default: 2,000,000; 300,000 with --quick].
    #[arg(long)]
    pub packets: Option<usize>,
    /// Distinct flows in the generated traffic.
    #[arg(long, default_value_t = 4096)]
    pub flows: usize,
    /// Route updates per second streamed to the control plane during the
    /// churn run [default: 100,000].
    #[arg(long, value_name = "UPDATES/S")]
    pub churn: Option<u64>,
    /// Entries in each worker's flow cache for the `forward` and `churn`
    /// rows (the `walk` rows run without: every packet walks every hop).
    #[arg(long, default_value_t = pipeline::flowcache::DEFAULT_ENTRIES, value_name = "ENTRIES")]
    pub flow_cache: usize,
    /// Churn rows: the least time between two table publications (live
    /// events arriving meanwhile are applied together).
    #[arg(long, default_value_t = pipeline::DEFAULT_COALESCE.as_secs_f64() * 1e3, value_name = "MS")]
    pub coalesce_ms: f64,
    /// Churn rows: the control-plane thread's scheduling.
    #[arg(long, value_enum, default_value_t = ControlPriority::Realtime)]
    pub control_priority: ControlPriority,
    /// How flows are steered to workers: `adaptive` (hash buckets move
    /// from a worker that falls behind to one that runs dry) or `fixed`.
    #[arg(long, value_enum, default_value_t = Steering::Adaptive)]
    pub steering: Steering,
    /// Runs per measurement (the median is reported) [default: 5; 2 with --quick].
    #[arg(long)]
    pub repeat: Option<usize>,
    #[arg(long)]
    pub json: bool,
    /// A short run (well under a minute).
    #[arg(long)]
    pub quick: bool,
}

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub case: String,
    /// `forward`, `traces+pcapng` or `churn`.
    pub mode: &'static str,
    pub workers: usize,
    pub packets: usize,
    pub mpps: f64,
    pub gbps: f64,
    pub ns_per_packet: f64,
    pub hops_per_packet: f64,
    /// Per worker: packets / its busy time.
    pub mpps_per_worker: Vec<f64>,
    /// Hash buckets the reader moved between workers in the median run
    /// (see [`Steering`]).
    pub bucket_moves: u64,
    /// Time the median run spent before its clock placing the frames in
    /// its workers' receive queues (the NIC's part: hashing each frame and,
    /// with more than one worker, copying each queue's frames together;
    /// `pipeline::ingest`), per frame.
    pub ingest_ns_per_frame: f64,
    /// Rate relative to 1 worker × workers (scaling), forward and walk
    /// modes: the worker counts run in turn, and this is the median over
    /// the rounds of each round's ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<f64>,
    /// The rate over `workers` times that of one core: one thread that
    /// reads and forwards every frame (the 1-worker run gives the reader a
    /// thread of its own, on a second core when there is one; with as many
    /// workers as cores the reader shares theirs). Same rounds, median.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling_per_core: Option<f64>,
    /// The same ratio for the forwarding code alone (`pipeline::kernel`:
    /// the frames split by flow hash, each share on a thread of its own,
    /// no reader, queues or writer), timed in the same rounds: what the
    /// machine gives the work itself on that many cores, the ceiling to
    /// read `scaling` against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_scaling: Option<f64>,
    /// Share of packets answered by the flow cache (0 when it is off).
    pub flow_cache_hits: f64,
    /// Churn: updates offered per second, control-plane versions published,
    /// the rate relative to a run without churn (each churn run paired with
    /// one just before it; the median ratio), the versions' update
    /// latencies (arrival → adoption by the last worker) pooled over the
    /// runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnFigures>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChurnFigures {
    pub updates_per_s: u64,
    pub updates_sent: u64,
    pub versions: usize,
    pub rate_vs_forward: f64,
    /// The longest of the pooled versions' latencies.
    pub max_update_latency_ms: f64,
    /// Every version's latency (arrival of its first change → adoption by
    /// the last worker), pooled over the row's runs: median, 95th
    /// percentile and the number of versions.
    pub update_latency_p50_ms: f64,
    pub update_latency_p95_ms: f64,
    pub latency_versions: usize,
    /// How the control-plane thread was scheduled.
    pub control_scheduling: String,
    /// The control-plane thread's time on a CPU in a run, and that over
    /// the run's wall time × the machine's cores: the share of the cores
    /// it takes from forwarding when no core is idle (medians over the
    /// row's runs; absent where the OS does not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_cpu_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_cpu_share: Option<f64>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn absorbed_advertisements_reach_the_tables() {
        let a = super::absorb(1000, 300).unwrap();
        assert!(a.largest_table_routes >= 300, "{a:?}");
    }

    #[test]
    fn stalls_count_only_gaps_over_a_millisecond() {
        let mut s = super::Stalls::default();
        for gap in [0.02, 0.9, 1.5, 6.0, 0.03] {
            s.see(gap);
        }
        assert_eq!((s.gaps, s.gaps_over_5ms), (2, 1));
        assert_eq!(s.longest_ms, 6.0);
        assert_eq!(s.lost, 7.5);
        let p = super::Stalls::probe(std::time::Duration::from_millis(20), 2);
        assert_eq!(p.threads, 2);
        assert!(
            (0.0..=1.0).contains(&p.lost) && p.gaps_over_5ms <= p.gaps,
            "{p:?}"
        );
        let (core, memory, pair) = super::Speed::probe();
        assert!(core > 0.0 && core.is_finite() && memory > 0.0 && memory.is_finite());
        // Two threads can at best double one's work in the same time (with
        // room for a single-thread measurement slowed by other load).
        assert!(pair > 0.0 && pair < 2.5, "{pair}");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(super::percentile(&v, 0.5), 3.0);
        assert_eq!(super::percentile(&v, 0.95), 5.0);
        assert_eq!(super::percentile(&v, 0.2), 1.0);
        assert_eq!(super::percentile(&[], 0.5), 0.0);
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    /// The machine's stalls, measured before the runs.
    pub stalls: Stalls,
    /// The machine's speed before and after the runs.
    pub speed: Speed,
    pub command: String,
    /// How flows were steered to workers in every row.
    pub steering: Steering,
    pub rows: Vec<Row>,
    pub absorb: Option<Absorb>,
    /// The first row's figures, for scripts: workers, packets, mpps,
    /// ns_per_packet, hops_per_packet.
    pub workers: usize,
    pub packets: usize,
    pub mpps: f64,
    pub ns_per_packet: f64,
    pub hops_per_packet: f64,
}

/// A traffic case: a topology and its frames.
pub struct Case {
    pub name: String,
    pub topology: Topology,
    pub frames: Vec<Frame>,
}

pub use crate::dataplane::traffic::udp_flows as frames;

/// The standard cases.
/// One standard case by name (one-hop, vxlan, mixed), with the world its
/// traffic starts in.
pub fn standard_case(name: &str, flows: usize, packets: usize) -> Result<(Case, Arc<World>)> {
    let case = standard_cases(flows, packets)?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow!("{name}: not a standard case (one-hop, vxlan, mixed)"))?;
    let cp = control::converge(&case.topology, &[]).map_err(|e| anyhow!(e.to_string()))?;
    let world = Arc::new(World::new(&cp));
    Ok((case, world))
}

pub fn standard_cases(flows: usize, packets: usize) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    // One SDN hop: two VMs in one VNet (a generated spoke with two NICs).
    let t = topology::load_str(
        "generated:hub-spoke-1x2",
        &topology::generate::hub_spoke(1, 2, 0),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let a = t.nics.iter().position(|n| n.name == "spoke0-vm0");
    let b = t.nics.iter().position(|n| n.name == "spoke0-vm1");
    let (Some(a), Some(b)) = (a, b) else {
        bail!("internal: the generated spoke lacks spoke0-vm0/spoke0-vm1");
    };
    let dst = t.nics[b].ips[0];
    let f = frames(
        &t,
        &[Start::Nic(crate::topology::NicId(a as u32))],
        &[dst],
        flows,
        packets,
    );
    out.push(Case {
        name: "one-hop".into(),
        topology: t,
        frames: f,
    });
    let t = topology::load_builtin("multi-region-vxlan")
        .ok_or_else(|| anyhow!("no built-in multi-region-vxlan"))?
        .map_err(|e| anyhow!("{e}"))?;
    let from = t
        .nic_by_name("spoke11-vm")
        .ok_or_else(|| anyhow!("no spoke11-vm"))?;
    let f = frames(
        &t,
        &[Start::Nic(from)],
        &["10.21.1.4".parse()?],
        flows,
        packets,
    );
    out.push(Case {
        name: "vxlan".into(),
        topology: t,
        frames: f,
    });
    let t = topology::load_builtin(topology::DEFAULT_TOPOLOGY)
        .ok_or_else(|| anyhow!("no default topology"))?
        .map_err(|e| anyhow!("{e}"))?;
    let f = all_pairs(&t, flows, packets);
    out.push(Case {
        name: "mixed".into(),
        topology: t,
        frames: f,
    });
    Ok(out)
}

fn all_pairs(t: &Topology, flows: usize, packets: usize) -> Vec<Frame> {
    let senders = crate::dataplane::traffic::default_senders(t);
    let dsts = crate::dataplane::traffic::default_destinations(t);
    frames(t, &senders, &dsts, flows, packets)
}

/// Route updates for churn: advertise/withdraw of /24s in 100.127.0.0/16 by
/// the first NVA with a BGP session, else UDR adds/removes on the first
/// route table.
pub fn churn_events(t: &Topology, n: usize) -> Result<Vec<Event>> {
    let prefix = |i: usize| -> ipnet::IpNet {
        format!("100.127.{}.0/24", i % 256)
            .parse()
            .expect("valid prefix")
    };
    if let Some(nva) = t.nvas.iter().find(|n| !n.bgp.is_empty()) {
        return Ok((0..n)
            .map(|i| {
                if (i / 256) % 2 == 0 {
                    Event::Advertise {
                        speaker: nva.name.clone(),
                        prefix: prefix(i),
                    }
                } else {
                    Event::Withdraw {
                        speaker: nva.name.clone(),
                        prefix: prefix(i),
                    }
                }
            })
            .collect());
    }
    if let Some(rt) = t.route_tables.first() {
        return Ok((0..n)
            .map(|i| {
                if (i / 256) % 2 == 0 {
                    Event::UdrAdd {
                        table: rt.name.clone(),
                        route: format!("churn-{}", i % 256),
                        prefix: prefix(i),
                        next_hop: crate::topology::UdrNextHop::None,
                    }
                } else {
                    Event::UdrRemove {
                        table: rt.name.clone(),
                        route: format!("churn-{}", i % 256),
                    }
                }
            })
            .collect());
    }
    bail!(
        "{}: no NVA with BGP and no route table: nothing to churn",
        t.file
    )
}

/// Route updates streamed while forwarding.
#[derive(Clone, Copy, Debug)]
pub struct Churn {
    /// Updates per second offered.
    pub rate: u64,
    /// The control plane's debounce ([`Options::coalesce`]).
    pub coalesce: Duration,
    pub priority: ControlPriority,
}

/// The workers of a run: how many, their flow caches' entries (0: every
/// packet walks), and how flows are steered to them.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub workers: usize,
    pub flow_cache: usize,
    pub steering: Steering,
}

impl Setup {
    /// `workers` workers with `flow_cache` entries each, flows steered as
    /// by default.
    pub fn new(workers: usize, flow_cache: usize) -> Setup {
        Setup {
            workers,
            flow_cache,
            steering: Steering::default(),
        }
    }
}

/// One run of `frames`; `outputs`: write traces and pcapng (to memory);
/// `churn`: updates streamed meanwhile.
pub fn run_once(
    world: &Arc<World>,
    t: &Topology,
    frames: &[Frame],
    setup: Setup,
    outputs: bool,
    churn: Option<Churn>,
) -> Result<(Report, u64)> {
    run_with(world, t, frames, (setup, ReaderMode::Auto), outputs, churn)
}

/// A run with `churn` and, just before it, the same run without: the same
/// workers and the same reader placement. With a control plane beside
/// them the reader forwards a share itself once the workers and the
/// control plane fill the cores (1 worker on 2 cores: one thread reads and
/// forwards); the run without churn is made to do the same, so that the
/// ratio of their rates is the updates' cost alone, not also a different
/// placement of the reader.
pub fn run_pair(
    world: &Arc<World>,
    t: &Topology,
    frames: &[Frame],
    setup: Setup,
    churn: Churn,
) -> Result<((Report, u64), (Report, u64))> {
    let reader = if ReaderMode::Auto.inline(setup.workers, true) {
        ReaderMode::Inline
    } else {
        ReaderMode::Thread
    };
    let plain = run_with(world, t, frames, (setup, reader), false, None)?;
    let churned = run_with(
        world,
        t,
        frames,
        (setup, ReaderMode::Auto),
        false,
        Some(churn),
    )?;
    Ok((plain, churned))
}

fn run_with(
    world: &Arc<World>,
    t: &Topology,
    frames: &[Frame],
    (setup, reader): (Setup, ReaderMode),
    outputs: bool,
    churn: Option<Churn>,
) -> Result<(Report, u64)> {
    let opts = Options {
        workers: setup.workers,
        flow_cache: setup.flow_cache,
        steering: setup.steering,
        reader,
        coalesce: churn.map_or(pipeline::DEFAULT_COALESCE, |c| c.coalesce),
        control_priority: churn.map_or(ControlPriority::default(), |c| c.priority),
        ..Options::default()
    };
    // The frames go into their receive queues first: updates sent while
    // that takes place would wait in the channel and count its time as
    // their latency.
    let queues =
        pipeline::Queues::new(frames, &opts, churn.is_some(), outputs).map_err(|e| anyhow!(e))?;
    let (live_tx, live_rx) = crossbeam_channel::unbounded();
    let done = Arc::new(AtomicBool::new(false));
    let feeder = churn.map(|Churn { rate, .. }| {
        let evs = churn_events(t, 4096);
        let done = done.clone();
        let tx = live_tx.clone();
        std::thread::spawn(move || -> Result<u64> {
            let evs = evs?;
            let start = Instant::now();
            let mut sent = 0u64;
            while !done.load(Ordering::Relaxed) {
                // Send what is due at `rate`, in slices of 1 ms (one
                // message a slice, as a feed's burst arrives).
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                if sent < due {
                    let burst = (sent..due).map(|i| evs[i as usize % evs.len()].clone());
                    if tx.send(pipeline::LiveEvents::now(burst.collect())).is_err() {
                        return Ok(sent);
                    }
                    sent = due;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(sent)
        })
    });
    drop(live_tx);
    let run = Run {
        world: world.clone(),
        control: churn.map(|_| Control {
            base: t.clone(),
            events: Vec::new(),
        }),
        scheduled: Vec::new(),
        live: churn.map(|_| live_rx),
        stop: None,
        opts,
    };
    let report = if outputs {
        let mut pcap = PcapNgOut::new(Vec::with_capacity(64 << 20)).map_err(|e| anyhow!(e))?;
        let mut traces: Vec<u8> = Vec::with_capacity(64 << 20);
        let r = pipeline::run_queued(
            &queues,
            run,
            Outputs {
                pcapng: Some(&mut pcap),
                traces: Some(&mut traces),
            },
        );
        r.map_err(|e| anyhow!(e))?
    } else {
        pipeline::run_queued(&queues, run, Outputs::none()).map_err(|e| anyhow!(e))?
    };
    done.store(true, Ordering::Relaxed);
    let sent = match feeder {
        Some(h) => h.join().map_err(|_| anyhow!("churn feeder panicked"))??,
        None => 0,
    };
    if !report.counters.balanced() {
        bail!("internal: counters do not add up: {:?}", report.counters);
    }
    Ok((report, sent))
}

/// The `q` quantile of `v` (nearest rank; 0 when empty).
pub fn percentile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn row(case: &str, mode: &'static str, workers: usize, runs: &[(Report, u64)]) -> Row {
    // The median run by rate.
    let mut by: Vec<&(Report, u64)> = runs.iter().collect();
    by.sort_by_key(|a| a.0.elapsed);
    let (r, _) = by[by.len() / 2];
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let packets = r.read;
    let bytes: u64 = r.workers.iter().map(|w| w.bytes + 4 * w.packets).sum();
    Row {
        case: case.to_string(),
        mode,
        workers,
        packets,
        mpps: packets as f64 / secs / 1e6,
        gbps: bytes as f64 * 8.0 / secs / 1e9,
        ns_per_packet: secs * 1e9 / packets.max(1) as f64,
        hops_per_packet: r.hops() as f64 / packets.max(1) as f64,
        mpps_per_worker: r
            .workers
            .iter()
            .map(|w| w.packets as f64 / w.busy.as_secs_f64().max(1e-9) / 1e6)
            .collect(),
        bucket_moves: r.reader.moves,
        ingest_ns_per_frame: r.reader.ingest.as_secs_f64() * 1e9 / packets.max(1) as f64,
        scaling: None,
        scaling_per_core: None,
        kernel_scaling: None,
        flow_cache_hits: {
            let (h, m) = r.flow_cache();
            h as f64 / (h + m).max(1) as f64
        },
        churn: None,
    }
}

/// Runs the benchmark.
pub fn bench(a: &Args) -> Result<BenchReport> {
    let packets = a
        .packets
        .unwrap_or(if a.quick { 300_000 } else { 2_000_000 });
    let repeat = a.repeat.unwrap_or(if a.quick { 2 } else { 5 }).max(1);
    let cores = pipeline::default_workers();
    let mut workers = a.workers.clone();
    if workers.is_empty() {
        workers = vec![1];
        if cores > 1 {
            workers.push(cores);
        }
    }
    let churn = a.churn.unwrap_or(100_000);
    let speed_before = Speed::probe();
    let stalls = Stalls::probe(
        Duration::from_secs_f64(if a.quick { 0.25 } else { 1.0 }),
        cores,
    );
    let cases = match &a.topology {
        None => standard_cases(a.flows, packets)?,
        Some(name) => {
            let t = topology::load_path_or_builtin(name).map_err(|e| anyhow!("{e}"))?;
            let f = match (&a.from, a.dst) {
                (None, None) => all_pairs(&t, a.flows, packets),
                (from, dst) => {
                    let senders = match from {
                        Some(n) => vec![Start::Nic(
                            t.nic_by_name(n)
                                .ok_or_else(|| anyhow!("{}: no NIC named `{n}`", t.file))?,
                        )],
                        None => crate::dataplane::traffic::default_senders(&t),
                    };
                    let dsts = match dst {
                        Some(d) => vec![d],
                        None => crate::dataplane::traffic::default_destinations(&t),
                    };
                    frames(&t, &senders, &dsts, a.flows, packets)
                }
            };
            vec![Case {
                name: name.clone(),
                topology: t,
                frames: f,
            }]
        }
    };
    let setup = |workers, flow_cache| Setup {
        steering: a.steering,
        ..Setup::new(workers, flow_cache)
    };
    let mut rows = Vec::new();
    for c in &cases {
        if c.frames.is_empty() {
            bail!("{}: no traffic to generate", c.name);
        }
        let cp = control::converge(&c.topology, &[]).context("converge")?;
        let world = Arc::new(World::from_arc(Arc::new(cp)));
        // Warm-up.
        run_once(
            &world,
            &c.topology,
            &c.frames[..c.frames.len().min(50_000)],
            setup(1, a.flow_cache),
            false,
            None,
        )?;
        // Forwarding with the flow cache, then walking every packet.
        for (mode, cache) in [("forward", a.flow_cache), ("walk", 0)] {
            if mode == "forward" && cache == 0 {
                continue;
            }
            // The worker counts take turns (1, 2, 1, 2, ...): a machine
            // whose speed drifts (a shared VM's does, over seconds) moves
            // the runs of one round together, and the scaling kept is the
            // median of the rounds' ratios to the 1-worker run.
            // Each round also times the forwarding code alone on as many
            // threads (`pipeline::kernel`): the scaling the machine gives
            // the work itself, beside the pipeline's in the same round.
            let one = workers.iter().position(|&w| w == 1);
            let mut runs: Vec<Vec<(Report, u64)>> = workers.iter().map(|_| Vec::new()).collect();
            let mut kernel: Vec<Vec<f64>> = workers.iter().map(|_| Vec::new()).collect();
            // And one thread that reads and forwards everything: the rate
            // of one core, against which `scaling_per_core` reads.
            let mut one_core: Vec<f64> = Vec::new();
            for _ in 0..repeat {
                for (k, &w) in workers.iter().enumerate() {
                    runs[k].push(run_once(
                        &world,
                        &c.topology,
                        &c.frames,
                        setup(w, cache),
                        false,
                        None,
                    )?);
                }
                if one.is_some() && workers.len() > 1 {
                    let (r, _) = run_with(
                        &world,
                        &c.topology,
                        &c.frames,
                        (setup(1, cache), ReaderMode::Inline),
                        false,
                        None,
                    )?;
                    one_core.push(r.read as f64 / r.elapsed.as_secs_f64().max(1e-9));
                    for (k, &w) in workers.iter().enumerate() {
                        let (took, counters) = pipeline::kernel(&world, &c.frames, w, cache)
                            .map_err(|e| anyhow!(e))?;
                        if !counters.balanced() {
                            bail!("internal: kernel counters do not add up: {counters:?}");
                        }
                        kernel[k].push(c.frames.len() as f64 / took.as_secs_f64().max(1e-9));
                    }
                }
            }
            let rate = |r: &Report| r.read as f64 / r.elapsed.as_secs_f64().max(1e-9);
            for (k, &w) in workers.iter().enumerate() {
                let mut r = row(&c.name, mode, w, &runs[k]);
                r.scaling = one.map(|o| {
                    median(
                        runs[k]
                            .iter()
                            .zip(&runs[o])
                            .map(|(a, b)| rate(&a.0) / (rate(&b.0) * w as f64))
                            .collect(),
                    )
                });
                if w > 1 && !one_core.is_empty() {
                    r.scaling_per_core = Some(median(
                        runs[k]
                            .iter()
                            .zip(&one_core)
                            .map(|(a, b)| rate(&a.0) / (b * w as f64))
                            .collect(),
                    ));
                }
                r.kernel_scaling = one.filter(|_| !kernel[k].is_empty()).map(|o| {
                    median(
                        kernel[k]
                            .iter()
                            .zip(&kernel[o])
                            .map(|(a, b)| a / (b * w as f64))
                            .collect(),
                    )
                });
                rows.push(r);
            }
        }
        // Outputs: a tenth of the packets (pcapng holds every NIC crossing).
        let n = (c.frames.len() / 10).max(1);
        for &w in &workers {
            let runs: Vec<_> = (0..repeat.min(3))
                .map(|_| run_once(&world, &c.topology, &c.frames[..n], setup(w, 0), true, None))
                .collect::<Result<_>>()?;
            rows.push(row(&c.name, "traces+pcapng", w, &runs));
        }
        // Churn: on 1 worker (the control plane has a core of its own, as
        // VPP's main thread does) and on every core (it competes).
        let churn_workers = if churn > 0 && churn_events(&c.topology, 1).is_ok() {
            workers.clone()
        } else {
            Vec::new()
        };
        for w in churn_workers {
            // Each churn run is paired with a run without churn just before
            // it, and the rate kept is the median of the pairs' ratios: a
            // machine whose speed drifts between rows (a shared VM does)
            // then moves both sides of a ratio together.
            // As many pairs as the forward rows' runs: single pairs spread
            // by several points on a shared VM.
            let mut ratios = Vec::new();
            let runs: Vec<_> = (0..repeat)
                .map(|_| {
                    let ((plain, _), churned) = run_pair(
                        &world,
                        &c.topology,
                        &c.frames,
                        setup(w, a.flow_cache),
                        Churn {
                            rate: churn,
                            coalesce: Duration::from_secs_f64(a.coalesce_ms.max(0.0) / 1e3),
                            priority: a.control_priority,
                        },
                    )?;
                    ratios.push(
                        plain.elapsed.as_secs_f64() / churned.0.elapsed.as_secs_f64().max(1e-9),
                    );
                    Ok(churned)
                })
                .collect::<Result<_>>()?;
            let mut r = row(&c.name, "churn", w, &runs);
            let versions = runs
                .iter()
                .map(|(r, _)| r.versions.len())
                .max()
                .unwrap_or(0);
            let sent = runs.iter().map(|(_, s)| *s).max().unwrap_or(0);
            let pooled: Vec<f64> = runs
                .iter()
                .flat_map(|(r, _)| r.update_latencies())
                .collect();
            r.churn = Some(ChurnFigures {
                update_latency_p50_ms: percentile(&pooled, 0.5),
                update_latency_p95_ms: percentile(&pooled, 0.95),
                latency_versions: pooled.len(),
                updates_per_s: churn,
                updates_sent: sent,
                versions,
                rate_vs_forward: median(ratios),
                max_update_latency_ms: percentile(&pooled, 1.0),
                control_scheduling: runs
                    .first()
                    .and_then(|(r, _)| r.control_scheduling.clone())
                    .unwrap_or_default(),
                control_cpu_ms: runs
                    .iter()
                    .map(|(r, _)| r.control_cpu.map(|c| c.as_secs_f64() * 1e3))
                    .collect::<Option<Vec<_>>>()
                    .map(median),
                control_cpu_share: runs
                    .iter()
                    .map(|(r, _)| {
                        r.control_cpu.map(|c| {
                            c.as_secs_f64() / (r.elapsed.as_secs_f64() * cores as f64).max(1e-9)
                        })
                    })
                    .collect::<Option<Vec<_>>>()
                    .map(median),
            });
            rows.push(r);
        }
    }
    let absorb = Some(absorb(
        if a.quick { 200_000 } else { 1_000_000 },
        if a.quick { 2_000 } else { 20_000 },
    )?);
    let first = rows.first().cloned();
    Ok(BenchReport {
        machine: Machine::here(),
        stalls,
        speed: {
            let after = Speed::probe();
            Speed {
                core_ns_before: speed_before.0,
                core_ns_after: after.0,
                memory_ns_before: speed_before.1,
                pair_scaling_before: speed_before.2,
                pair_scaling_after: after.2,
                memory_ns_after: after.1,
            }
        },
        command: std::env::args().collect::<Vec<_>>().join(" "),
        steering: a.steering,
        workers: first.as_ref().map_or(0, |r| r.workers),
        packets: first.as_ref().map_or(0, |r| r.packets),
        mpps: first.as_ref().map_or(0.0, |r| r.mpps),
        ns_per_packet: first.as_ref().map_or(0.0, |r| r.ns_per_packet),
        hops_per_packet: first.as_ref().map_or(0.0, |r| r.hops_per_packet),
        rows,
        absorb,
    })
}

/// The text form.
pub fn text(r: &BenchReport) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "machine: {} ({} cores, {}); stalls before the runs ({} threads spinning {:.2} s): {} gaps > 1 ms ({} > 5 ms), longest {:.1} ms, {:.2}% of the time lost; speed before / after the runs: core {:.2} / {:.2} ns a step, memory {:.1} / {:.1} ns a hop, two threads sharing nothing {:.2} / {:.2} of linear; flows steered: {}\n\n| case | mode | workers | packets | Mpps | Gbps (64 B) | ns/packet | hops/packet | flow cache hits | Mpps per worker (busy) | bucket moves | receive queues (ns/frame, before the clock) | scaling | scaling per core | kernel scaling | churn |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        r.machine.cpu,
        r.machine.cores,
        r.machine.os,
        r.stalls.threads,
        r.stalls.seconds,
        r.stalls.gaps,
        r.stalls.gaps_over_5ms,
        r.stalls.longest_ms,
        r.stalls.lost * 100.0,
        r.speed.core_ns_before,
        r.speed.core_ns_after,
        r.speed.memory_ns_before,
        r.speed.memory_ns_after,
        r.speed.pair_scaling_before,
        r.speed.pair_scaling_after,
        match r.steering {
            Steering::Adaptive => "adaptive (hash buckets move to the worker that keeps pace)",
            Steering::Fixed => "fixed (a flow never changes worker)",
        }
    );
    for x in &r.rows {
        let per: Vec<String> = x
            .mpps_per_worker
            .iter()
            .map(|m| format!("{m:.2}"))
            .collect();
        let churn = x.churn.as_ref().map_or(String::new(), |c| {
            format!(
                "{} updates/s offered, {} sent, {} versions, {:.0}% of the rate without churn (paired runs), update latency median {:.2} / p95 {:.2} ms over {} versions, max {:.2} ms, control plane {}{}",
                c.updates_per_s,
                c.updates_sent,
                c.versions,
                c.rate_vs_forward * 100.0,
                c.update_latency_p50_ms,
                c.update_latency_p95_ms,
                c.latency_versions,
                c.max_update_latency_ms,
                c.control_scheduling,
                match (c.control_cpu_ms, c.control_cpu_share) {
                    (Some(ms), Some(share)) => format!(
                        ", on a CPU {ms:.1} ms a run ({:.1}% of the cores' time)",
                        share * 100.0
                    ),
                    _ => String::new(),
                }
            )
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.2} | {:.1}% | {} | {} | {:.1} | {} | {} | {} | {} |",
            x.case,
            x.mode,
            x.workers,
            x.packets,
            x.mpps,
            x.gbps,
            x.ns_per_packet,
            x.hops_per_packet,
            x.flow_cache_hits * 100.0,
            per.join(" / "),
            x.bucket_moves,
            x.ingest_ns_per_frame,
            x.scaling.map_or(String::new(), |v| format!("{v:.2}")),
            x.scaling_per_core
                .map_or(String::new(), |v| format!("{v:.2}")),
            x.kernel_scaling
                .map_or(String::new(), |v| format!("{v:.2}")),
            churn
        );
    }
    if let Some(a) = &r.absorb {
        let _ = writeln!(
            s,
            "\nroute changes absorbed (median of {} runs): FIB rebuild of {} routes in {:.0} ms ({:.2} M routes/s); {} BGP advertisements through a Route Server, reconverged and compiled, in {:.0} ms ({:.3} M routes/s; largest table after: {} routes)",
            ABSORB_RUNS,
            a.fib_routes,
            a.fib_ms,
            a.fib_routes_per_s / 1e6,
            a.bgp_routes,
            a.bgp_ms,
            a.bgp_routes_per_s / 1e6,
            a.largest_table_routes
        );
    }
    s
}

/// `vnetplane bench [pipeline options]`.
pub fn command(a: Args) -> Result<String> {
    let r = bench(&a)?;
    if a.json {
        Ok(serde_json::to_string_pretty(&r)? + "\n")
    } else {
        Ok(text(&r))
    }
}
