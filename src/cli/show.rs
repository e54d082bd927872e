//! `show` (the default command), `check` and `topologies`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;

use super::args::{TopologyArg, load};
use super::render;
use vnetplane::control::{self, effective};
use vnetplane::dataplane::{PROTO_TCP, World, traffic};
use vnetplane::topology::{self, Severity, SubnetId, Topology};

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// Topology file or built-in name [default: hub-spoke-vng].
    #[arg(long, short)]
    pub topology: Option<String>,
}

pub fn check(a: TopologyArg) -> Result<String> {
    let t = load(&a.topology)?;
    let mut out = String::new();
    for w in &t.warnings {
        debug_assert_eq!(w.severity, Severity::Warning);
        let _ = writeln!(out, "{w}");
    }
    let _ = writeln!(out, "ok: {}: {}", t.file, render::summary(&t));
    Ok(out)
}

pub fn topologies() -> String {
    let mut out = String::new();
    for (name, src) in topology::BUILTIN {
        let desc = src
            .lines()
            .find_map(|l| l.strip_prefix("description = "))
            .map(|d| d.trim_matches('"').to_string())
            .unwrap_or_default();
        let _ = writeln!(out, "{name:<38} {desc}");
    }
    out
}

/// A line of the traces JSONL, as `show` prints it.
#[derive(Deserialize)]
struct TraceLine {
    packet: usize,
    verdict: String,
    at: String,
    reason: Option<String>,
    path: Vec<String>,
}

pub fn run(a: ShowArgs) -> Result<String> {
    let t = load(a.topology.as_deref().unwrap_or(topology::DEFAULT_TOPOLOGY))?;
    show(&t)
}

fn show(t: &Topology) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "topology {}", t.file);
    if let Some(d) = &t.description {
        let _ = writeln!(out, "  {d}");
    }
    let _ = writeln!(out, "  {}", render::summary(t));
    out.push_str(&render::warnings(t));
    let cp = control::converge(t, &[])?;
    for w in &cp.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for (i, s) in t.subnets.iter().enumerate() {
        let sid = SubnetId(i as u32);
        let nics: Vec<&str> = s.nics.iter().map(|&n| t.nic(n).name.as_str()).collect();
        if nics.is_empty() && !s.is_gateway_subnet() {
            continue;
        }
        let label = if nics.is_empty() {
            format!("subnet {}", t.subnet_path(sid))
        } else {
            format!("nic {} (subnet {})", nics.join(", "), t.subnet_path(sid))
        };
        let _ = writeln!(out, "\neffective routes of {label}");
        out.push_str(&render::routes(t, &cp.subnet_table(sid), false));
    }
    if t.file
        .ends_with(&format!("{}.toml", topology::DEFAULT_TOPOLOGY))
        && let Some(nic) = t.nic_by_name("spoke11-vm")
    {
        let table = cp.nic_table(nic);
        let _ = writeln!(out, "\nnext hops from spoke11-vm");
        for dst in ["192.168.1.10", "198.51.100.10", "10.1.3.4", "10.50.0.1"] {
            let ip: IpAddr = dst.parse()?;
            let d = effective::lookup(&table, ip);
            let line = match d.selected {
                Some(i) => {
                    let r = &table.routes[i];
                    format!(
                        "{} {} via {} {}",
                        r.next_hop_type.as_str(),
                        render::ips(&r.next_hop_ips),
                        r.prefix,
                        r.source.as_str()
                    )
                }
                None => "no route".to_string(),
            };
            let _ = writeln!(out, "  {dst:<15} → {line}");
        }
    }
    if t.nics.is_empty() {
        bail!("{}: the topology has no NICs", t.file);
    }
    // Generated traffic (every sender to every destination) through the hop machine.
    let world = Arc::new(World::new(&cp));
    let senders = traffic::default_senders(t);
    let dsts = traffic::default_destinations(t);
    let flows = traffic::flows(t, &senders, &dsts, 1, PROTO_TCP, 1);
    let frames = traffic::frames(t, &flows);
    let mut traces: Vec<u8> = Vec::new();
    let c = vnetplane::replay::replay::<Vec<u8>, Vec<u8>>(
        &world,
        &frames,
        Default::default(),
        None,
        Some(&mut traces),
    )?;
    let _ = writeln!(
        out,
        "\ngenerated traffic: {} packets (every sender to every destination): {} delivered, {} dropped, {} looped",
        c.read, c.delivered, c.dropped, c.looped
    );
    for line in String::from_utf8_lossy(&traces).lines() {
        let l: TraceLine = serde_json::from_str(line).map_err(|e| anyhow!("trace line: {e}"))?;
        let reason = l.reason.map(|r| format!(" ({r})")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  #{:<3} {} at {}{reason}: {}",
            l.packet,
            l.verdict,
            l.at,
            l.path.join(" → ")
        );
    }
    Ok(out)
}
