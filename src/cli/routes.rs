//! `routes` (a NIC's effective routes) and `next-hop` (the route a
//! destination takes, and why the others lost).

use std::fmt::Write as _;
use std::net::IpAddr;

use anyhow::Result;
use serde::Serialize;

use super::args::{EventArgs, TableArgs, control_plane, ip, load, pick_subnet};
use super::render::{self, ips};
use vnetplane::control::effective::{self, Decision, Origin, Route, Source, Table, Verdict};
use vnetplane::io::azure::{EffectiveRoute, effective_routes};
use vnetplane::topology::Topology;

#[derive(clap::Args, Debug)]
pub struct RoutesArgs {
    #[command(flatten)]
    pub topology: super::args::TopologyArg,
    #[command(flatten)]
    pub table: TableArgs,
    /// Print the Azure REST API shape: {"value":[{source,state,addressPrefix,...}]}.
    #[arg(long)]
    pub json: bool,
    /// Add a column saying where each route comes from and why it is Invalid.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub events: EventArgs,
}

#[derive(clap::Args, Debug)]
pub struct NextHopArgs {
    #[command(flatten)]
    pub topology: super::args::TopologyArg,
    #[command(flatten)]
    pub table: TableArgs,
    /// Destination IP address.
    #[arg(long)]
    pub dst: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub events: EventArgs,
}

pub fn routes(a: RoutesArgs) -> Result<String> {
    let cp = control_plane(&load(&a.topology.topology)?, &a.events.events)?;
    let t = &cp.topology;
    let table = cp.subnet_table(pick_subnet(t, &a.table)?);
    if a.json {
        Ok(serde_json::to_string_pretty(&effective_routes(&table))? + "\n")
    } else {
        Ok(render::routes(t, &table, a.explain))
    }
}

pub fn next_hop(a: NextHopArgs) -> Result<String> {
    let cp = control_plane(&load(&a.topology.topology)?, &a.events.events)?;
    let t = &cp.topology;
    let table = cp.subnet_table(pick_subnet(t, &a.table)?);
    let dst = ip("dst", &a.dst)?;
    let d = effective::lookup(&table, dst);
    if a.json {
        Ok(serde_json::to_string_pretty(&NextHop::new(t, &table, &d))? + "\n")
    } else {
        Ok(next_hop_text(t, &table, dst, &d))
    }
}

/// Network Watcher's `routeTableId`: the route table of a UDR, or the
/// kind of system route.
fn route_table_id(t: &Topology, r: &Route) -> String {
    match (&r.origin, r.source) {
        (Origin::Udr { table, .. }, _) => format!("routeTables/{}", t.route_table(*table).name),
        (_, Source::VirtualNetworkGateway) => "Gateway Route".to_string(),
        _ => "System Route".to_string(),
    }
}

/// A candidate's verdict as a word and why.
fn verdict_text(table: &Table, v: &Verdict) -> (&'static str, String) {
    match v {
        Verdict::Selected => (
            "selected",
            "longest matching prefix among the active routes".to_string(),
        ),
        Verdict::LessSpecific { winner_len } => (
            "less-specific",
            format!("a longer prefix (/{winner_len}) matched (R14)"),
        ),
        Verdict::Invalid(why) => ("invalid", why.clone()),
        Verdict::IgnoredForSystemRoute { system } => {
            let s = &table.routes[*system];
            (
                "ignored",
                format!(
                    "the destination is inside system route {} → {}, which beats gateway routes of any length (R16)",
                    s.prefix,
                    s.next_hop_type.as_str()
                ),
            )
        }
    }
}

/// `next-hop --json`: Network Watcher's fields, the route that matched
/// and every other route containing the destination with its verdict.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NextHop {
    next_hop_type: &'static str,
    next_hop_ip_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_hop_ip_addresses: Option<Vec<String>>,
    route_table_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched_route: Option<EffectiveRoute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    candidates: Vec<Candidate>,
}

#[derive(Serialize)]
struct Candidate {
    route: EffectiveRoute,
    origin: String,
    verdict: &'static str,
    reason: String,
}

impl NextHop {
    fn new(t: &Topology, table: &Table, d: &Decision) -> Self {
        let candidates = d
            .candidates
            .iter()
            .map(|c| {
                let r = &table.routes[c.index];
                let (verdict, reason) = verdict_text(table, &c.verdict);
                Candidate {
                    route: r.into(),
                    origin: render::origin(t, r),
                    verdict,
                    reason,
                }
            })
            .collect();
        let selected = d.selected.filter(|_| !d.platform).map(|i| &table.routes[i]);
        let Some(r) = selected else {
            let (next_hop_type, reason) = if d.platform {
                (
                    "Platform",
                    "platform address (168.63.129.16 / 169.254.169.254): routes cannot override it (R19)",
                )
            } else {
                ("None", "no route matches this destination")
            };
            return NextHop {
                next_hop_type,
                next_hop_ip_address: String::new(),
                next_hop_ip_addresses: None,
                route_table_id: String::new(),
                matched_route: None,
                origin: None,
                reason: Some(reason),
                candidates,
            };
        };
        let addresses: Vec<String> = r.next_hop_ips.iter().map(ToString::to_string).collect();
        NextHop {
            next_hop_type: r.next_hop_type.network_watcher_str(),
            next_hop_ip_address: addresses.first().cloned().unwrap_or_default(),
            next_hop_ip_addresses: Some(addresses),
            route_table_id: route_table_id(t, r),
            matched_route: Some(r.into()),
            origin: Some(render::origin(t, r)),
            reason: None,
            candidates,
        }
    }
}

fn next_hop_text(t: &Topology, table: &Table, dst: IpAddr, d: &Decision) -> String {
    let mut out = String::new();
    let who = t.subnet_path(table.subnet);
    if d.platform {
        let _ = writeln!(
            out,
            "{dst} is a platform address (R19): routes cannot override it; the host answers it directly."
        );
        return out;
    }
    match d.selected {
        None => {
            let _ = writeln!(out, "nextHopType       None");
            let _ = writeln!(
                out,
                "reason            no route in subnet {who}'s table matches {dst}: dropped"
            );
        }
        Some(i) => {
            let r = &table.routes[i];
            let _ = writeln!(
                out,
                "nextHopType       {}",
                r.next_hop_type.network_watcher_str()
            );
            let _ = writeln!(out, "nextHopIpAddress  {}", ips(&r.next_hop_ips));
            let _ = writeln!(out, "routeTableId      {}", route_table_id(t, r));
            let ecmp = if r.next_hop_ips.len() > 1 {
                " (ECMP: a flow hash picks one)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "matched route     {} {} {} → {} {}{ecmp}",
                r.source.as_str(),
                r.state.as_str(),
                r.prefix,
                r.next_hop_type.as_str(),
                ips(&r.next_hop_ips)
            );
            let _ = writeln!(out, "origin            {}", render::origin(t, r));
        }
    }
    let others: Vec<_> = d
        .candidates
        .iter()
        .filter(|c| c.verdict != Verdict::Selected)
        .collect();
    if !others.is_empty() {
        let _ = writeln!(out, "other routes containing {dst}:");
        for c in others {
            let r = &table.routes[c.index];
            let (v, why) = verdict_text(table, &c.verdict);
            let _ = writeln!(
                out,
                "  {} {} → {} {} ({v}: {why})",
                r.source.as_str(),
                r.prefix,
                r.next_hop_type.as_str(),
                ips(&r.next_hop_ips)
            );
        }
    }
    out
}
