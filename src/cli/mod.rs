//! The command line: one module per command, the shared arguments in
//! [`args`], tables and lists in [`render`]. Catch-all errors (`anyhow`)
//! live here only; the library returns typed errors.

mod args;
#[cfg(feature = "bench")]
mod bench;
mod bgp;
mod compare;
mod diff;
mod fib;
mod generate;
mod import;
#[cfg(target_os = "linux")]
mod live;
mod progress;
mod render;
mod replay;
mod routes;
mod show;
mod trace;
mod verify;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "vnetplane",
    version,
    about = "Models how Azure virtual networks forward traffic: effective routes per NIC, BGP, and packets hop by hop",
    long_about = "Models how Azure virtual networks forward traffic.\n\n\
        With no command, loads the embedded default topology (hub-spoke-vng) and shows\n\
        every NIC's effective routes, a few next-hop decisions, and generated traffic\n\
        (every sender to every destination) replayed through it.\n\n\
        --topology takes a TOML file, or the name of a built-in topology (see `vnetplane topologies`)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Summary of a topology: objects, warnings, every NIC's effective routes,
    /// and generated traffic replayed through it.
    Show(show::ShowArgs),
    /// Load and validate a topology; print warnings. Exit 2 on errors.
    Check(args::TopologyArg),
    /// A NIC's effective routes, like `az network nic show-effective-route-table`.
    Routes(routes::RoutesArgs),
    /// Which route a NIC uses for a destination, like Network Watcher's next hop,
    /// with the route that matched and why it won over the others.
    NextHop(routes::NextHopArgs),
    /// BGP state: per speaker and peer, routes received (AS path, next hop,
    /// accepted or rejected and why) and advertised; what Route Servers and
    /// gateways program; NVA OS tables; warnings.
    Bgp(bgp::BgpArgs),
    /// The hop-by-hop path of one packet sent by a NIC's VM: each hop names
    /// the route that decided it and any encapsulation; ends delivered,
    /// dropped (with the reason) or in a loop (with the cycle).
    Trace(trace::TraceArgs),
    /// Replays a capture (pcap or pcapng) through the topology: each packet
    /// enters at the NIC owning its source IP; counters per verdict and reason
    /// add up to the packets read.
    Replay(replay::ReplayArgs),
    /// Real endpoints around the emulated fabric: a network namespace per VM
    /// NIC, site and the Internet, frames forwarded hop by hop between them;
    /// `--frr NVA` runs FRR's bgpd peering with the Route Server over real
    /// BGP. Needs root. `--exec NIC -- COMMAND` runs a command there.
    #[cfg(target_os = "linux")]
    Live(live::LiveArgs),
    /// Writes reproducible traffic for a topology as a pcap: flows from NICs to
    /// destinations (default: from every non-NVA NIC to every VM, site host and
    /// the Internet test addresses).
    Gen(generate::GenArgs),
    /// Every destination class from every sender: loops, black holes between
    /// declared endpoints, failed assertions (violations; exit status 1) and
    /// warnings (asymmetry, undeclared drops, control-plane). Exit 2 when
    /// the topology cannot be used.
    Verify(verify::VerifyArgs),
    /// Two versions of a topology (two files, or one and `--event`s): the
    /// effective routes, flow verdicts and paths, and intents that change.
    /// Exit 1 when something `--fail-on` names changes, 2 on unusable input.
    Diff(diff::DiffArgs),
    /// A topology file from what Azure exports (`az ... -o json`, Resource
    /// Graph results): objects named as in Azure, each with its resource id;
    /// prints what was skipped and the stubs to complete (NVA routes).
    Import(import::ImportArgs),
    /// A topology's Azure resources as `az ... -o json` prints them
    /// (`--az`): what `import` reads back.
    Export(import::ExportArgs),
    /// What Azure programmed against the model: NIC effective routes and
    /// Route Server peerings' learned and advertised routes, as Azure's CLI
    /// prints them. Exit 1 on any difference, 2 on unusable input.
    Compare(compare::CompareArgs),
    /// Compiled forwarding tables: NICs, subnets, distinct tables and bytes.
    Fib(fib::FibArgs),
    /// Benchmarks: `bench lpm` (lookups against the treebitmap fork), or the
    /// forwarding pipeline with generated traffic through a topology.
    #[cfg(feature = "bench")]
    #[command(args_conflicts_with_subcommands = true)]
    Bench(bench::BenchArgs),
    /// List the built-in topologies (one per scenario).
    Topologies,
}

/// Exit status: a judgement that did not hold (`verify` found violations),
/// or a run that could not finish its work but has something to report.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the input could not be used (a file, topology, event or
/// capture that is wrong, missing or only partly readable).
pub const EXIT_UNUSABLE: u8 = 2;

/// A command that ended without success but with a report: `report` goes
/// to standard output, `message` (if any) to standard error, and the exit
/// status is `code`.
#[derive(Debug)]
pub struct Ended {
    pub report: String,
    pub message: Option<String>,
    pub code: u8,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message.as_deref().unwrap_or("the command failed"))
    }
}

impl std::error::Error for Ended {}

/// Writing an output failed (a full disk, a closed pipe, a read-only path):
/// not the input's fault, so the exit status is [`EXIT_FAILED`].
#[derive(Debug)]
pub struct OutputFailed(pub anyhow::Error);

impl std::fmt::Display for OutputFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for OutputFailed {}

/// Marks an error as an output's.
pub fn output_failed(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(OutputFailed(e.into()))
}

/// Writes a command's report to standard output; a failed write or flush
/// (a full disk, a closed pipe) is reported, never ignored.
fn emit(out: &str) -> Result<(), ExitCode> {
    use std::io::Write;
    let mut so = std::io::stdout().lock();
    so.write_all(out.as_bytes())
        .and_then(|_| so.flush())
        .map_err(|e| {
            eprintln!("error: standard output: {e}");
            ExitCode::from(EXIT_FAILED)
        })
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(out) => match emit(&out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Err(e) => {
            if let Some(end) = e.downcast_ref::<Ended>() {
                if let Err(code) = emit(&end.report) {
                    return code;
                }
                if let Some(m) = &end.message {
                    eprintln!("error: {m}");
                }
                return ExitCode::from(end.code);
            }
            if let Some(o) = e.downcast_ref::<OutputFailed>() {
                eprintln!("error: {o}");
                return ExitCode::from(EXIT_FAILED);
            }
            // Topology diagnostics already say `file:line:col: error: ...`.
            match e.downcast_ref::<vnetplane::topology::LoadError>() {
                Some(le) => eprintln!("{le}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

/// Runs a command and returns what it prints on success.
pub fn run(cli: Cli) -> Result<String> {
    match cli.command {
        None => show::run(show::ShowArgs { topology: None }),
        Some(Command::Show(a)) => show::run(a),
        Some(Command::Check(a)) => show::check(a),
        Some(Command::Routes(a)) => routes::routes(a),
        Some(Command::NextHop(a)) => routes::next_hop(a),
        Some(Command::Bgp(a)) => bgp::run(a),
        Some(Command::Trace(a)) => trace::run(a),
        Some(Command::Replay(a)) => replay::run(a),
        #[cfg(target_os = "linux")]
        Some(Command::Live(a)) => live::run(a),
        Some(Command::Gen(a)) => generate::run(a),
        Some(Command::Verify(a)) => verify::run(a),
        Some(Command::Diff(a)) => diff::run(a),
        Some(Command::Compare(a)) => compare::run(a),
        Some(Command::Import(a)) => import::run(a),
        Some(Command::Export(a)) => import::export(a),
        Some(Command::Fib(a)) => fib::run(a),
        #[cfg(feature = "bench")]
        Some(Command::Bench(a)) => bench::run(a),
        Some(Command::Topologies) => Ok(show::topologies()),
    }
}
