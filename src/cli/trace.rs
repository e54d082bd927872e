//! `trace`: one packet hop by hop, each hop with the route that decided it.

use std::fmt::Write as _;
use std::net::IpAddr;

use anyhow::{Result, anyhow, bail};
use serde::Serialize;

use super::args::{EventArgs, TopologyArg, control_plane, ip, load, start};
use super::{EXIT_FAILED, Ended};
use vnetplane::dataplane::{
    Header, Hop, PROTO_ICMP, PROTO_TCP, PROTO_UDP, Packet, Trace, Verdict, World,
};

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    /// The sending NIC, an on-premises site (its first host is the
    /// source), or `nva:NAME` for a packet an NVA's own OS sends (routed
    /// by its OS table first).
    #[arg(long)]
    pub from: String,
    /// Destination IP address.
    #[arg(long)]
    pub dst: String,
    /// Source IP address [default: the NIC's first address of the destination's family].
    #[arg(long)]
    pub src: Option<String>,
    #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp", "icmp"])]
    pub proto: String,
    #[arg(long, default_value_t = 49152)]
    pub sport: u16,
    #[arg(long, default_value_t = 443)]
    pub dport: u16,
    #[arg(long)]
    pub json: bool,
    /// The verdict expected: the exit status is 1 when the packet ends
    /// otherwise (0 when it ends so).
    #[arg(long, value_parser = ["delivered", "dropped", "loop"])]
    pub expect: Option<String>,
    #[command(flatten)]
    pub events: EventArgs,
}

pub fn run(a: TraceArgs) -> Result<String> {
    let cp = control_plane(&load(&a.topology.topology)?, &a.events.events)?;
    let t = &cp.topology;
    let from = start(t, &a.from)?;
    let dst = ip("dst", &a.dst)?;
    let src: IpAddr = match &a.src {
        Some(s) => ip("src", s)?,
        None => {
            let own = vnetplane::dataplane::traffic::sources(t, from);
            own.into_iter()
                .find(|ip| ip.is_ipv4() == dst.is_ipv4())
                .ok_or_else(|| {
                    anyhow!(
                        "{} has no {} address; give --src",
                        a.from,
                        if dst.is_ipv4() { "IPv4" } else { "IPv6" }
                    )
                })?
        }
    };
    if src.is_ipv4() != dst.is_ipv4() {
        bail!("--src {src} and --dst {dst} are of different address families");
    }
    let (proto, sport, dport) = match a.proto.as_str() {
        "udp" => (PROTO_UDP, a.sport, a.dport),
        "icmp" => (PROTO_ICMP, 0, 0),
        _ => (PROTO_TCP, a.sport, a.dport),
    };
    let header = Header {
        src,
        dst,
        proto,
        sport,
        dport,
    };
    let world = World::new(&cp);
    let trace = world.walk_from(from, Packet::new(header));
    let out = if a.json {
        serde_json::to_string_pretty(&TraceReport::new(&trace))? + "\n"
    } else {
        text(&a.from, &header, &trace)
    };
    match &a.expect {
        Some(want) if want != trace.verdict.kind() => Err(anyhow::Error::new(Ended {
            report: out,
            message: Some(format!(
                "expected {want}, the packet ended {} at {}",
                trace.verdict.kind(),
                trace.verdict.at()
            )),
            code: EXIT_FAILED,
        })),
        _ => Ok(out),
    }
}

/// `trace --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TraceReport<'t> {
    verdict: &'static str,
    at: &'t str,
    hops: &'t [Hop],
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle: Option<&'t [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loop_route: Option<&'t str>,
}

impl<'t> TraceReport<'t> {
    fn new(tr: &'t Trace) -> Self {
        let (reason, cycle, loop_route) = match &tr.verdict {
            Verdict::Dropped { reason, .. } => (Some(reason.code()), None, None),
            Verdict::Loop { cycle, route, .. } => {
                (Some("loop"), Some(&cycle[..]), Some(route.as_str()))
            }
            Verdict::Delivered { .. } => (None, None, None),
        };
        TraceReport {
            verdict: tr.verdict.kind(),
            at: tr.verdict.at(),
            hops: &tr.hops,
            reason,
            cycle,
            loop_route,
        }
    }
}

fn text(from: &str, h: &Header, tr: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{from}: {h}");
    for (i, hop) in tr.hops.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3}. {} ({}) [{} ttl {}]",
            i + 1,
            hop.node,
            hop.kind,
            hop.packet,
            hop.ttl
        );
        if let Some(r) = &hop.route {
            let ips = if r.next_hop_ips.is_empty() {
                String::new()
            } else {
                format!(" {}", r.next_hop_ips.join(", "))
            };
            let _ = writeln!(
                out,
                "       route: {} {} → {}{ips}",
                r.source, r.prefix, r.next_hop_type
            );
        }
        let _ = writeln!(out, "       {}", hop.decision);
        if let Some(e) = &hop.encap {
            let _ = writeln!(out, "       encap: {e}");
        }
        if let Some(d) = &hop.decap {
            let _ = writeln!(out, "       decap: {d}");
        }
    }
    match &tr.verdict {
        Verdict::Delivered { at } => {
            let _ = writeln!(out, "verdict: delivered at {at}");
        }
        Verdict::Dropped { at, reason } => {
            let _ = writeln!(out, "verdict: dropped at {at}: {}", reason.code());
        }
        Verdict::Loop { at, cycle, route } => {
            let _ = writeln!(out, "verdict: loop at {at}: {}", cycle.join(" → "));
            let _ = writeln!(out, "         the route that sends it back: {route}");
        }
    }
    out
}
