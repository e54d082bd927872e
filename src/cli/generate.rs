//! `gen`: reproducible traffic for a topology, written as a pcap.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Result, anyhow};

use super::args::{TopologyArg, ip, load, start};
use vnetplane::dataplane::{Start, traffic};

#[derive(clap::Args, Debug)]
pub struct GenArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[arg(long)]
    pub out: PathBuf,
    /// Sending NIC or site (repeatable) [default: every NIC not owned by an NVA, and every site with hosts].
    #[arg(long)]
    pub from: Vec<String>,
    /// Destination (repeatable) [default: see above].
    #[arg(long)]
    pub dst: Vec<String>,
    /// Flows per (NIC, destination) pair.
    #[arg(long, default_value_t = 1)]
    pub flows: usize,
    #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp", "icmp"])]
    pub proto: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(a: GenArgs) -> Result<String> {
    let t = load(&a.topology.topology)?;
    let from: Vec<Start> = if a.from.is_empty() {
        traffic::default_senders(&t)
    } else {
        a.from.iter().map(|n| start(&t, n)).collect::<Result<_>>()?
    };
    let dsts: Vec<IpAddr> = if a.dst.is_empty() {
        traffic::default_destinations(&t)
    } else {
        a.dst.iter().map(|d| ip("dst", d)).collect::<Result<_>>()?
    };
    let p = traffic::proto_number(&a.proto).ok_or_else(|| anyhow!("--proto {}", a.proto))?;
    let fl = traffic::flows(&t, &from, &dsts, a.flows, p, a.seed);
    let frames = traffic::frames(&t, &fl);
    traffic::write_pcap(&a.out, &frames).map_err(|e| match e {
        // It names the file already.
        e @ vnetplane::io::CaptureError::Io { .. } => super::output_failed(e),
        e => super::output_failed(anyhow::Error::from(e).context(a.out.display().to_string())),
    })?;
    Ok(format!("{}: {} packets\n", a.out.display(), frames.len()))
}
