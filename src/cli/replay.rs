//! `replay`: a capture through the topology on the worker pipeline, with
//! scheduled or live control-plane events.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use super::args::{EventArgs, TopologyArg, load, parse_events};
use super::{EXIT_UNUSABLE, Ended, output_failed};
use vnetplane::control;
use vnetplane::dataplane::World;
use vnetplane::dataplane::frame::Counters;
use vnetplane::io::{self, PcapNgOut};
use vnetplane::pipeline::{
    self, Control, ControlPriority, Outputs, PipelineError, Queues, Report, Run, Steering,
    VersionInfo, schedule, schedule::LineNote,
};

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[arg(long)]
    pub pcap: PathBuf,
    /// Write pcapng: one interface per NIC crossed, the path as each packet's comment.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write one JSON line per packet (verdict, place, reason, path).
    #[arg(long)]
    pub traces: Option<PathBuf>,
    /// Send every packet from this NIC instead of the one owning its source.
    #[arg(long)]
    pub from: Option<String>,
    #[arg(long)]
    pub json: bool,
    /// Accept a capture that could be read only in part (a truncated or
    /// damaged record ends the read): replay what was read, warn, exit 0.
    #[arg(long)]
    pub allow_partial: bool,
    #[command(flatten)]
    pub events: EventArgs,
    /// Events during the replay: a file of `at packet N EVENT` / `at 2.5s
    /// EVENT` lines, or `-` to read events from standard input while
    /// running (one per line, applied as they arrive).
    #[arg(long = "events", value_name = "FILE|-")]
    pub events_file: Option<String>,
    /// Packets between an event's immediate effect (a failed NVA or
    /// tunnel stops forwarding) and the reconverged tables; packets
    /// caught in between are dropped as `converging`.
    #[arg(long, default_value_t = 0, value_name = "PACKETS")]
    pub convergence_delay: usize,
    /// Worker threads [default: one per core].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Entries in each worker's flow cache (Azure VFP's unified flow
    /// table: a flow's first packet walks, the rest reuse its outcome
    /// until the tables change); 0 walks every packet. Runs that write
    /// traces or pcapng always walk.
    #[arg(long, default_value_t = pipeline::flowcache::DEFAULT_ENTRIES, value_name = "ENTRIES")]
    pub flow_cache: usize,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// Knobs for benchmarking the pipeline (`vnetplane bench` documents
/// them); accepted by `replay`, not shown in its help.
#[derive(clap::Args, Debug, Clone)]
pub struct Tuning {
    /// Frames per batch handed to a worker [default: 4,096 when only
    /// counting, 256 when writing traces or pcapng].
    #[arg(long, hide = true)]
    pub batch: Option<usize>,
    /// Live events: the least time between two table publications.
    #[arg(long, hide = true, default_value_t = pipeline::DEFAULT_COALESCE.as_secs_f64() * 1e3, value_name = "MS")]
    pub coalesce_ms: f64,
    /// The control-plane thread's scheduling: `realtime` or `normal`.
    #[arg(long, hide = true, value_enum, default_value_t = ControlPriority::Realtime)]
    pub control_priority: ControlPriority,
    /// How flows are steered to workers: `adaptive` or `fixed`.
    #[arg(long, hide = true, value_enum, default_value_t = Steering::Adaptive)]
    pub steering: Steering,
}

/// Refuses an output that would overwrite an input (the capture, an events
/// file, the topology file): compared as canonical paths when the output
/// exists, else by the path given.
fn refuse_overwrite(a: &ReplayArgs) -> Result<()> {
    let same = |x: &std::path::Path, y: &std::path::Path| match (x.canonicalize(), y.canonicalize())
    {
        (Ok(x), Ok(y)) => x == y,
        _ => x == y,
    };
    let mut inputs = vec![a.pcap.clone(), PathBuf::from(&a.topology.topology)];
    if let Some(f) = a.events_file.as_deref().filter(|f| *f != "-") {
        inputs.push(PathBuf::from(f));
    }
    for (flag, out) in [("--out", &a.out), ("--traces", &a.traces)] {
        let Some(out) = out else { continue };
        if let Some(i) = inputs.iter().find(|i| same(out, i)) {
            bail!(
                "{flag} {} is an input of this run ({}); choose another path",
                out.display(),
                i.display()
            );
        }
    }
    if let (Some(o), Some(t)) = (&a.out, &a.traces)
        && same(o, t)
    {
        bail!("--out and --traces name the same file {}", o.display());
    }
    Ok(())
}

/// How long standard input may stay quiet, once the capture is replayed,
/// before the lines still to come are not waited for.
const LATE_LINES_QUIET: Duration = Duration::from_millis(200);

pub fn run(a: ReplayArgs) -> Result<String> {
    refuse_overwrite(&a)?;
    let coalesce_ms = a.tuning.coalesce_ms;
    if !(0.0..=60_000.0).contains(&coalesce_ms) {
        bail!("--coalesce-ms: {coalesce_ms} is not between 0 and 60000");
    }
    let base = load(&a.topology.topology)?;
    let parsed = parse_events(&a.events.events)?;
    let cp = control::converge(&base, &parsed).map_err(|e| anyhow!("{}: {e}", base.file))?;
    let t = &cp.topology;
    let from = match &a.from {
        Some(n) => Some(
            t.nic_by_name(n)
                .ok_or_else(|| anyhow!("{}: no NIC named `{n}`", t.file))?,
        ),
        None => None,
    };
    let cap = io::read_capture(&a.pcap)?;
    // Scheduled events are checked against the topology before anything
    // runs or is written: a wrong one is an error naming its line.
    let scheduled = match a.events_file.as_deref() {
        Some(path) if path != "-" => {
            let text = super::args::read_bounded(path, schedule::MAX_FILE)?;
            let s = schedule::parse(&text, path)?;
            let ts: Vec<_> = cap.frames.iter().map(|f| f.timestamp).collect();
            let (resolved, late) = schedule::check(&base, &parsed, &s, &ts, path)?;
            for line in late {
                eprintln!(
                    "warning: {path}:{line}: the event is due after the last packet ({} packets): it applies to none",
                    cap.frames.len()
                );
            }
            resolved
        }
        _ => Vec::new(),
    };
    let world = Arc::new(World::from_arc(Arc::new(cp)));
    let mut pcapng = match &a.out {
        Some(p) => Some(PcapNgOut::create(p).map_err(output_failed)?),
        None => None,
    };
    let mut traces = match &a.traces {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("{}", p.display()))
                .map_err(output_failed)?,
        )),
        None => None,
    };
    let opts = pipeline::Options {
        workers: a.workers.unwrap_or_else(pipeline::default_workers),
        batch: a.tuning.batch,
        from,
        convergence_delay: a.convergence_delay,
        flow_cache: a.flow_cache,
        coalesce: Duration::from_secs_f64(coalesce_ms / 1e3),
        control_priority: a.tuning.control_priority,
        steering: a.tuning.steering,
        ..Default::default()
    };
    let live_stdin = a.events_file.as_deref() == Some("-");
    // The frames into their receive queues before standard input is read:
    // an event typed meanwhile would count that as latency.
    let queues = Queues::new(
        &cap.frames,
        &opts,
        live_stdin,
        pcapng.is_some() || traces.is_some(),
    )?;
    // Live events: each line checked as it is read (names that do not
    // exist are rejected at once, with the line's number).
    let rejected_lines = Arc::new(AtomicUsize::new(0));
    let (live, lines) = match live_stdin.then(|| {
        let topo = Arc::new(base.clone());
        let count = rejected_lines.clone();
        pipeline::read_events(
            std::io::stdin(),
            "stdin",
            move |e| e.check(&topo),
            move |n| match n {
                LineNote::Rejected(m) => {
                    count.fetch_add(1, Ordering::Relaxed);
                    eprintln!("error: {m}");
                }
                LineNote::Late(m) => eprintln!("warning: {m}"),
            },
        )
    }) {
        Some(l) => (Some(l.events), Some(l.lines)),
        None => (None, None),
    };
    let run = Run {
        world: world.clone(),
        control: Some(Control {
            base,
            events: parsed,
        }),
        scheduled,
        live,
        stop: None,
        opts,
    };
    let report = pipeline::run_queued(
        &queues,
        run,
        Outputs {
            pcapng: pcapng.as_mut(),
            traces: traces.as_mut(),
        },
    )
    .map_err(|e| match e {
        // The input's own faults; anything else is the run's or an output's.
        PipelineError::Event(_) | PipelineError::TooManyFrames { .. } => anyhow!(e),
        e => output_failed(e),
    })?;
    for e in &report.rejected_events {
        eprintln!("error: {e}");
    }
    // Lines still arriving when the capture ends (a pipe, a file) are read
    // to the end of the input, or until it has been quiet for a moment (a
    // terminal, a stream that stays open): checked and reported, not applied.
    if let Some(lines) = lines {
        while let Ok(()) = lines.recv_timeout(LATE_LINES_QUIET) {}
    }
    let rejected = rejected_lines.load(Ordering::Relaxed) + report.rejected_events.len();
    if let (Some(w), Some(p)) = (pcapng, &a.out) {
        w.finish()
            .with_context(|| p.display().to_string())
            .map_err(output_failed)?;
    }
    if let (Some(mut w), Some(p)) = (traces, &a.traces) {
        w.flush()
            .with_context(|| p.display().to_string())
            .map_err(output_failed)?;
    }
    let out = if a.json {
        serde_json::to_string_pretty(&ReplayReport::new(&report, &cap.stopped))? + "\n"
    } else {
        text(&a.pcap, &report, &cap.stopped)
    };
    let failed = |message: String| {
        Err(anyhow::Error::new(Ended {
            report: out.clone(),
            message: Some(message),
            code: EXIT_UNUSABLE,
        }))
    };
    match &cap.stopped {
        Some(why) if !a.allow_partial => failed(format!(
            "reading stopped early, {} packets read: {why} (--allow-partial accepts a partial read)",
            cap.frames.len()
        )),
        _ if rejected > 0 => failed(format!(
            "{rejected} live event{} rejected (see above); the others applied",
            if rejected == 1 { " was" } else { "s were" }
        )),
        _ => Ok(out),
    }
}

/// `replay --json`: the counters, then how the run went.
#[derive(Serialize)]
struct ReplayReport<'r> {
    #[serde(flatten)]
    counters: &'r Counters,
    stopped: &'r Option<String>,
    workers: usize,
    versions: &'r [VersionInfo],
    control_scheduling: &'r Option<String>,
    steering: SteeringReport<'r>,
    receive_queues: QueuesReport<'r>,
    flow_cache: FlowCacheReport,
}

#[derive(Serialize)]
struct SteeringReport<'r> {
    mode: Steering,
    bucket_moves: u64,
    buckets: &'r [u32],
}

#[derive(Serialize)]
struct QueuesReport<'r> {
    frames: &'r [usize],
    ms: f64,
}

#[derive(Serialize)]
struct FlowCacheReport {
    hits: u64,
    walks: u64,
}

impl<'r> ReplayReport<'r> {
    fn new(r: &'r Report, stopped: &'r Option<String>) -> Self {
        let (hits, walks) = r.flow_cache();
        ReplayReport {
            counters: &r.counters,
            stopped,
            workers: r.workers.len(),
            versions: &r.versions,
            control_scheduling: &r.control_scheduling,
            steering: SteeringReport {
                mode: r.reader.steering,
                bucket_moves: r.reader.moves,
                buckets: &r.reader.buckets,
            },
            receive_queues: QueuesReport {
                frames: &r.reader.queued,
                ms: r.reader.ingest.as_secs_f64() * 1e3,
            },
            flow_cache: FlowCacheReport { hits, walks },
        }
    }
}

fn text(pcap: &std::path::Path, report: &Report, stopped: &Option<String>) -> String {
    let counters = &report.counters;
    let mut s = format!(
        "{}: {} packets read\n  delivered {}\n",
        pcap.display(),
        counters.read,
        counters.delivered
    );
    for (at, n) in &counters.delivered_at {
        let _ = writeln!(s, "    {at}: {n}");
    }
    let _ = writeln!(s, "  dropped {}", counters.dropped);
    for (r, n) in &counters.drop_reasons {
        let _ = writeln!(s, "    {r}: {n}");
    }
    let _ = writeln!(s, "  looped {}", counters.looped);
    let (hits, walks) = report.flow_cache();
    if hits + walks > 0 {
        let _ = writeln!(
            s,
            "  flow cache: {hits} packets took their flow's cached outcome, {walks} walked"
        );
    }
    if let (false, Some(c)) = (report.versions.is_empty(), &report.control_scheduling) {
        let _ = writeln!(s, "  control plane scheduled {c}");
    }
    for v in &report.versions {
        let from = v
            .from_packet
            .map(|i| format!("from packet {}", i + 1))
            .unwrap_or_else(|| "live".into());
        // Scheduled steps wait for their snapshot: their latency is the
        // rebuild's; live ones' includes the debounce window.
        let reached = v
            .latency_ms
            .map(|l| format!(", in every worker {l:.1} ms after it was due"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  table version {} ({}, {from}): {}; {} of {} tables compiled in {:.1} ms{reached}",
            v.version,
            v.kind,
            v.events
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            v.tables_compiled,
            v.tables,
            v.build_ms
        );
    }
    if let Some(why) = stopped {
        let _ = writeln!(s, "warning: reading stopped early: {why}");
    }
    s
}
