//! `bench` (built with the `bench` feature): the pipeline with generated
//! traffic, or `bench lpm`.

use anyhow::Result;
use clap::Subcommand;

use vnetplane::bench::{lpm, pipeline, replay, tables};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: Option<BenchCommand>,
    #[command(flatten)]
    pub pipeline: pipeline::Args,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// LPM lookups: our FIB (single and batch) against the treebitmap fork and
    /// prefix-trie, same process, same destinations, four tables.
    Lpm {
        #[arg(long)]
        json: bool,
        /// A short run (well under a minute) for smoke checks.
        #[arg(long)]
        quick: bool,
        /// The real global table (`prefix value` lines, plain or .xz).
        #[arg(long, value_name = "PATH")]
        table: Option<std::path::PathBuf>,
    },
    /// `live`: iperf3 TCP and 64-byte frames through one SDN hop of the
    /// fabric (1 and 2 workers), beside the kernel's own veth forwarding
    /// measured the same way (needs root, iperf3).
    #[cfg(target_os = "linux")]
    Live {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long)]
        json: bool,
    },
    /// A capture file replayed to pcapng and traces, beside `editcap` and
    /// `tshark` copying the same file (one worker, median of `--runs`).
    Replay {
        #[arg(long, default_value_t = 600_000)]
        packets: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Where the captures and outputs are written.
        #[arg(long, default_value = "target/bench-replay")]
        dir: std::path::PathBuf,
    },
}

pub fn run(a: BenchArgs) -> Result<String> {
    match a.what {
        None => pipeline::command(a.pipeline),
        #[cfg(target_os = "linux")]
        Some(BenchCommand::Live {
            runs,
            seconds,
            json,
        }) => {
            let rows = vnetplane::bench::live::run(runs, seconds)?;
            if json {
                Ok(serde_json::to_string_pretty(&rows)? + "\n")
            } else {
                Ok(vnetplane::bench::live::text(&rows))
            }
        }
        Some(BenchCommand::Replay { packets, runs, dir }) => {
            Ok(replay::text(&replay::run(packets, runs, &dir)?))
        }
        Some(BenchCommand::Lpm { json, quick, table }) => {
            let opts = if quick {
                lpm::Options::quick()
            } else {
                lpm::Options::full()
            };
            let path = table.unwrap_or_else(tables::default_bgp_table);
            let report = lpm::run(opts, &path);
            if json {
                Ok(serde_json::to_string_pretty(&report)? + "\n")
            } else {
                Ok(lpm::text(&report))
            }
        }
    }
}
