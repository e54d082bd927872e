//! `replay`: a capture through the topology on the worker pipeline, with
//! scheduled or live control-plane events.

use std::fmt::Write as _;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use super::args::{EventArgs, TopologyArg, load, parse_events};
use super::{EXIT_UNUSABLE, Ended, output_failed};
use vnetplane::control;
use vnetplane::dataplane::World;
use vnetplane::dataplane::frame::{Counters, Hops, Only, Verdict};
use vnetplane::io::PcapNgOut;
use vnetplane::io::read::CaptureReader;
use vnetplane::pipeline::stream::{InputEnd, Progress, Shard, Source};
use vnetplane::pipeline::{
    self, Control, ControlPriority, Outputs, PipelineError, Report, Run, Steering, VersionInfo,
    schedule, schedule::LineNote,
};

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    /// The capture (pcap or pcapng), or `-` for standard input; read as a
    /// stream, in bounded memory.
    #[arg(long)]
    pub pcap: PathBuf,
    /// Write pcapng: one interface per NIC, gateway and site crossed, the
    /// packet's number, verdict and path as each frame's comment; `-` for
    /// standard output (the report then goes to standard error).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write one JSON line per packet (verdict, place, reason, path); `-`
    /// for standard output.
    #[arg(long)]
    pub traces: Option<PathBuf>,
    /// Which crossings of a packet `--out` writes: every one, those leaving
    /// a NIC, gateway or site (egress), or the first and the last (ends).
    #[arg(long, value_enum, default_value_t = Hops::All)]
    pub hops: Hops,
    /// Write only packets with this verdict to `--out` and `--traces`
    /// (repeatable); counters still count every packet.
    #[arg(long, value_enum, value_name = "VERDICT")]
    pub only: Vec<Verdict>,
    /// Replay only shard I of N (I from 0): the flows whose hash falls in
    /// it, so that N processes cover a capture between them.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// No progress display (it shows only on a terminal).
    #[arg(long, short)]
    pub quiet: bool,
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
    /// until the tables change; runs that write reuse the recorded walk,
    /// 8,192 flows); 0 walks every packet.
    #[arg(long, default_value_t = pipeline::flowcache::DEFAULT_ENTRIES, value_name = "ENTRIES")]
    pub flow_cache: usize,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// `I/N`, with I below N.
fn parse_shard(s: &str) -> Result<Shard, String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected I/N, e.g. 0/3"))?;
    let index: u32 = i
        .parse()
        .map_err(|_| format!("`{s}`: shard `{i}` is not a number"))?;
    let count: u32 = n
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("`{s}`: `{n}` shards: expected a number of at least 1"))?;
    if index >= count {
        return Err(format!(
            "`{s}`: shards are numbered from 0 to {}",
            count - 1
        ));
    }
    Ok(Shard { index, count })
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

/// Standard input or output, as a path names it.
fn is_std(p: &Path) -> bool {
    p == Path::new("-")
}

/// Refuses an output that would overwrite an input (the capture, an events
/// file, the topology file): compared as canonical paths when the output
/// exists, else by the path given; and two uses of one standard stream.
fn refuse_overwrite(a: &ReplayArgs) -> Result<()> {
    let same = |x: &Path, y: &Path| match (x.canonicalize(), y.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => x == y,
    };
    if is_std(&a.pcap) && a.events_file.as_deref() == Some("-") {
        bail!("--pcap - and --events - both read standard input: give one of them a file");
    }
    let mut inputs = vec![PathBuf::from(&a.topology.topology)];
    if !is_std(&a.pcap) {
        inputs.push(a.pcap.clone());
    }
    if let Some(f) = a.events_file.as_deref().filter(|f| *f != "-") {
        inputs.push(PathBuf::from(f));
    }
    for (flag, out) in [("--out", &a.out), ("--traces", &a.traces)] {
        let Some(out) = out.as_deref().filter(|o| !is_std(o)) else {
            continue;
        };
        if let Some(i) = inputs.iter().find(|i| same(out, i)) {
            bail!(
                "{flag} {} is an input of this run ({}); choose another path",
                out.display(),
                i.display()
            );
        }
    }
    if let (Some(o), Some(t)) = (&a.out, &a.traces)
        && (same(o, t) || (is_std(o) && is_std(t)))
    {
        bail!("--out and --traces name the same file {}", o.display());
    }
    Ok(())
}

/// How long standard input may stay quiet, once the capture is replayed,
/// before the lines still to come are not waited for.
const LATE_LINES_QUIET: Duration = Duration::from_millis(200);

/// Set by Ctrl-C (or SIGTERM): reading stops, what was read is forwarded
/// and written, and the outputs are closed whole. A second one ends the
/// process at once.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The exit status of a run that Ctrl-C ended (128 + SIGINT, as shells
/// report it).
const EXIT_INTERRUPTED: u8 = 130;

fn on_interrupt() {
    // Installed once per process; a later run in the same process (tests)
    // finds it there.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    });
}

/// A writer behind a buffer: a file, or standard output for `-`. Writes
/// larger than the buffer (a batch's frames, written in one piece) go
/// straight to the file.
fn sink(p: &Path) -> Result<BufWriter<Box<dyn Write + Send>>> {
    let w: Box<dyn Write + Send> = if is_std(p) {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(p)
                .with_context(|| format!("{}", p.display()))
                .map_err(output_failed)?,
        )
    };
    Ok(BufWriter::with_capacity(256 << 10, w))
}

/// The capture read as a stream: a file, or standard input for `-`.
fn capture(p: &Path) -> Result<CaptureReader<BufReader<Box<dyn Read + Send>>>> {
    let (r, name): (Box<dyn Read + Send>, String) = if is_std(p) {
        (Box::new(std::io::stdin()), "standard input".into())
    } else {
        let name = p.display().to_string();
        let f = std::fs::File::open(p).with_context(|| name.clone())?;
        (Box::new(f), name)
    };
    Ok(CaptureReader::new(
        BufReader::with_capacity(1 << 20, r),
        &name,
    )?)
}

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
    let cap = capture(&a.pcap)?;
    let pcap_name = cap.name().to_string();
    // Scheduled events are checked against the topology before anything
    // runs or is written, in the order the run applies them (a file's
    // timestamps read first when events wait for a time): a wrong one is
    // an error naming its line.
    let (scheduled, events_path) = match a.events_file.as_deref() {
        Some(path) if path != "-" => {
            let text = super::args::read_bounded(path, schedule::MAX_FILE)?;
            let s = schedule::parse(&text, path)?;
            let stamps = if is_std(&a.pcap) {
                None
            } else {
                Some(capture(&a.pcap)?)
            };
            let order = schedule::streamed_positions(stamps, &s);
            schedule::check_order(&base, &parsed, &s, &order, path)?;
            (s, Some(path.to_string()))
        }
        _ => (Vec::new(), None),
    };
    let world = Arc::new(World::from_arc(Arc::new(cp)));
    let to_stdout = [&a.out, &a.traces]
        .iter()
        .any(|o| o.as_deref().is_some_and(is_std));
    let mut pcapng = match &a.out {
        Some(p) => Some(
            PcapNgOut::new(sink(p)?)
                .map_err(|e| output_failed(anyhow!(e).context(p.display().to_string())))?,
        ),
        None => None,
    };
    let mut traces = match &a.traces {
        Some(p) => Some(sink(p)?),
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
        hops: a.hops,
        only: Only::of(&a.only),
        ..Default::default()
    };
    let live_stdin = a.events_file.as_deref() == Some("-");
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
    // Events the control plane has not taken when the run ends (sent just
    // as it finished) are read back here and reported, not lost.
    let unread = live.clone();
    let size = (!is_std(&a.pcap))
        .then(|| std::fs::metadata(&a.pcap).ok().map(|m| m.len()))
        .flatten();
    let progress =
        (!a.quiet && std::io::stderr().is_terminal()).then(|| Arc::new(Progress::default()));
    on_interrupt();
    INTERRUPTED.store(false, Ordering::SeqCst);
    let run = Run {
        world: world.clone(),
        control: Some(Control {
            base,
            events: parsed,
        }),
        scheduled: Vec::new(),
        live,
        stop: Some(&INTERRUPTED),
        opts,
    };
    let source = Source {
        capture: cap,
        shard: a.shard,
        scheduled,
        progress: progress.clone(),
    };
    let display = progress.map(|p| super::progress::Display::start(p, size));
    let ran = pipeline::run_stream(
        source,
        run,
        Outputs {
            pcapng: pcapng.as_mut(),
            traces: traces.as_mut(),
        },
    );
    if let Some(d) = display {
        d.finish();
    }
    // An output that fails is named (a standard stream as such).
    let named = |p: &Option<PathBuf>| match p.as_deref() {
        Some(p) if is_std(p) => "standard output".to_string(),
        Some(p) => p.display().to_string(),
        None => String::new(),
    };
    let (report, input) = ran.map_err(|e| match e {
        // The input's own faults; anything else is the run's or an output's.
        PipelineError::Event(_) => anyhow!(e),
        e @ (PipelineError::Capture(_) | PipelineError::Render(_)) => {
            output_failed(anyhow!(e).context(named(&a.out)))
        }
        e @ PipelineError::Traces(_) => output_failed(anyhow!(e).context(named(&a.traces))),
        e => output_failed(e),
    })?;
    for e in &report.rejected_events {
        eprintln!("error: {e}");
    }
    if let Some(path) = &events_path {
        for line in &input.late {
            eprintln!(
                "warning: {path}:{line}: the event is due after the last packet ({} packets): it applies to none",
                input.frames
            );
        }
    }
    // Lines still arriving when the capture ends (a pipe, a file) are read
    // to the end of the input, or until it has been quiet for a moment (a
    // terminal, a stream that stays open): checked and reported, not applied.
    if let Some(lines) = lines {
        while let Ok(()) = lines.recv_timeout(LATE_LINES_QUIET) {}
    }
    for burst in unread.iter().flat_map(|rx| rx.try_iter()) {
        for (k, e) in burst.lines.iter().zip(&burst.events) {
            eprintln!("warning: stdin:{k}: event `{e}` arrived after the last packet: not applied");
        }
    }
    // Lines sent from now on find no one: their reader reports them.
    drop(unread);
    let rejected = rejected_lines.load(Ordering::Relaxed) + report.rejected_events.len();
    // Nothing is reported as written before it is.
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
    let interrupted = report.stopped_early;
    let mut out = if a.json {
        serde_json::to_string_pretty(&ReplayReport::new(&report, &input, a.shard, interrupted))?
            + "\n"
    } else {
        text(&pcap_name, &report, &input, a.shard)
    };
    if to_stdout {
        // Standard output carries the capture or traces: the report goes
        // beside it.
        eprint!("{out}");
        out.clear();
    }
    let failed = |message: String, code: u8| {
        Err(anyhow::Error::new(Ended {
            report: out.clone(),
            message: Some(message),
            code,
        }))
    };
    match &input.stopped {
        _ if interrupted => failed(
            format!(
                "interrupted: {} packets replayed, and the outputs hold every one of them; \
                 reading stopped at packet {} of the input",
                report.read, input.frames
            ),
            EXIT_INTERRUPTED,
        ),
        Some(why) if !a.allow_partial => failed(
            format!(
                "reading stopped early, {} packets read: {why} (--allow-partial accepts a partial read)",
                input.frames
            ),
            EXIT_UNUSABLE,
        ),
        _ if rejected > 0 => failed(
            format!(
                "{rejected} live event{} rejected (see above); the others applied",
                if rejected == 1 { " was" } else { "s were" }
            ),
            EXIT_UNUSABLE,
        ),
        _ => Ok(out),
    }
}

/// `replay --json`: the counters, then how the run went.
#[derive(Serialize)]
struct ReplayReport<'r> {
    #[serde(flatten)]
    counters: &'r Counters,
    stopped: &'r Option<String>,
    /// Ctrl-C ended the read.
    interrupted: bool,
    /// Frames in the input read (all shards).
    input_frames: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<ShardReport>,
    workers: usize,
    versions: &'r [VersionInfo],
    control_scheduling: &'r Option<String>,
    steering: SteeringReport<'r>,
    receive_queues: QueuesReport<'r>,
    flow_cache: FlowCacheReport,
}

#[derive(Serialize)]
struct ShardReport {
    index: u32,
    count: u32,
    /// Frames of the other shards, read and left to them.
    other_shards: u64,
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
    fn new(r: &'r Report, input: &'r InputEnd, shard: Option<Shard>, interrupted: bool) -> Self {
        let (hits, walks) = r.flow_cache();
        ReplayReport {
            counters: &r.counters,
            stopped: &input.stopped,
            interrupted,
            input_frames: input.frames,
            shard: shard.map(|s| ShardReport {
                index: s.index,
                count: s.count,
                other_shards: input.other_shards,
            }),
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

fn text(pcap: &str, report: &Report, input: &InputEnd, shard: Option<Shard>) -> String {
    let counters = &report.counters;
    let mut s = match shard {
        Some(sh) => format!(
            "{pcap}: {} packets read, {} of them in shard {}/{} (the other {} left to the other shards)\n",
            input.frames, counters.read, sh.index, sh.count, input.other_shards
        ),
        None => format!("{pcap}: {} packets read\n", counters.read),
    };
    let _ = writeln!(s, "  delivered {}", counters.delivered);
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
    if let Some(why) = &input.stopped {
        let _ = writeln!(s, "warning: reading stopped early: {why}");
    }
    s
}
