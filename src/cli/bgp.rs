//! `bgp`: per speaker and peer, the routes received (with why each was
//! accepted or rejected) and advertised, what Route Servers and gateways
//! program into NICs, and each NVA's operating-system routing table.

use std::fmt::Write as _;

use anyhow::{Result, anyhow};
use serde::Serialize;

use super::args::{EventArgs, TopologyArg, control_plane, load};
use super::render::{self, ips};
use vnetplane::control::ControlPlane;
use vnetplane::control::bgp::{self, Node, SessionState, Status};
use vnetplane::control::effective::{Injected, Injector};
use vnetplane::control::nva::OsSource;
use vnetplane::topology::{NvaId, OsNextHop, Topology, community_text};

#[derive(clap::Args, Debug)]
pub struct BgpArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    /// Only this speaker (a route_server, nva, gateway, site, or msee-<site>).
    #[arg(long)]
    pub speaker: Option<String>,
    #[arg(long)]
    pub json: bool,
    /// With --json: each Route Server peering's learned and advertised
    /// routes as `az network routeserver peering list-learned-routes` /
    /// `list-advertised-routes` print them (per RouteServiceRole_IN_k).
    #[arg(long, requires = "json")]
    pub azure: bool,
    #[command(flatten)]
    pub events: EventArgs,
}

pub fn run(a: BgpArgs) -> Result<String> {
    let cp = control_plane(&load(&a.topology.topology)?, &a.events.events)?;
    let only = match &a.speaker {
        None => None,
        Some(n) => Some(Node::by_name(&cp.topology, n).ok_or_else(|| {
            let names: Vec<String> = bgp::all_nodes(&cp.topology)
                .iter()
                .map(|n| n.name(&cp.topology))
                .collect();
            anyhow!(
                "{}: no BGP speaker named `{n}` (speakers: {})",
                cp.topology.file,
                names.join(", ")
            )
        })?),
    };
    if a.azure {
        Ok(serde_json::to_string_pretty(&azure_peerings(&cp, only))? + "\n")
    } else if a.json {
        Ok(serde_json::to_string_pretty(&BgpReport::new(&cp, only))? + "\n")
    } else {
        Ok(text(&cp, only))
    }
}

fn status_text(s: &Status) -> (&'static str, String) {
    match s {
        Status::Best => ("best", String::new()),
        Status::NotBest(why) => ("accepted", why.text()),
        Status::Rejected(r) => ("rejected", r.text()),
    }
}

fn as_path_text(p: &[u32]) -> String {
    if p.is_empty() {
        "(local)".to_string()
    } else {
        p.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn communities_text(c: &[u32]) -> String {
    c.iter()
        .map(|&x| community_text(x))
        .collect::<Vec<_>>()
        .join(" ")
}

fn os_next_hop_text(t: &Topology, n: NvaId, nh: &OsNextHop) -> String {
    match nh {
        OsNextHop::Via(ip) => format!("via {ip}"),
        OsNextHop::Tunnel(i) => format!(
            "tunnel {}",
            t.nvas[n.idx()]
                .tunnels
                .get(*i)
                .map_or("?", |x| x.name.as_str())
        ),
        OsNextHop::Nic(nic) => format!("connected, nic {}", t.nic(*nic).name),
        OsNextHop::Blackhole => "blackhole".to_string(),
    }
}

fn os_source_text(cp: &ControlPlane, s: OsSource) -> String {
    match s {
        OsSource::Connected => "connected".into(),
        OsSource::Static => "static".into(),
        OsSource::Bgp { session, ibgp } => {
            let sess = &cp.bgp.sessions[session];
            let me = |n: Node| matches!(n, Node::Nva(_));
            let owner = if me(sess.a) && !me(sess.b) {
                sess.a
            } else {
                sess.b
            };
            format!(
                "{} from {}",
                if ibgp { "ibgp" } else { "bgp" },
                sess.peer_label(&cp.topology, owner)
            )
        }
    }
}

/// The routes a gateway or Route Server programs into NICs.
fn programmed(cp: &ControlPlane, node: Node) -> Vec<&Injected> {
    cp.injections
        .by_vnet
        .values()
        .flatten()
        .filter(|i| match (i.by, node) {
            (Injector::Gateway(g), Node::Gateway(h)) => g == h,
            (Injector::RouteServer(r), Node::RouteServer(q)) => r == q,
            _ => false,
        })
        .collect()
}

fn text(cp: &ControlPlane, only: Option<Node>) -> String {
    let t = &cp.topology;
    let mut out = String::new();
    for node in bgp::all_nodes(t) {
        if only.is_some_and(|o| o != node) {
            continue;
        }
        let down = if cp.conditions.down_speakers.contains(&node) {
            " — DOWN"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{} {} (AS {}){down}",
            node.kind(),
            node.name(t),
            node.asn(t)
        );
        for (si, s) in cp.bgp.sessions_of(node) {
            let peer = s.other(node);
            let state = match &s.state {
                SessionState::Up => "Up".to_string(),
                SessionState::Down(why) => format!("Down: {why}"),
            };
            let kind = if s.ibgp { "iBGP" } else { "eBGP" };
            let _ = writeln!(
                out,
                "  peer {} {} (AS {}), {kind}: {state}",
                peer.kind(),
                s.peer_label(t, node),
                peer.asn(t)
            );
            let got = cp.bgp.received.get(&(node, si));
            let tagged = got
                .into_iter()
                .flat_map(|m| m.values())
                .any(|r| !r.path.communities.is_empty());
            let mut rows: Vec<Vec<String>> = Vec::new();
            for r in got.into_iter().flat_map(|m| m.values()) {
                let (st, why) = status_text(&r.status);
                let mut row = vec![
                    r.path.prefix.to_string(),
                    as_path_text(&r.path.as_path),
                    r.path.next_hop.to_string(),
                ];
                if tagged {
                    row.push(communities_text(&r.path.communities));
                }
                row.extend([st.to_string(), why]);
                rows.push(row);
            }
            if !rows.is_empty() {
                let _ = writeln!(out, "    received:");
                let head: &[&str] = if tagged {
                    &[
                        "Prefix",
                        "AS path",
                        "Next hop",
                        "Communities",
                        "Status",
                        "Why",
                    ]
                } else {
                    &["Prefix", "AS path", "Next hop", "Status", "Why"]
                };
                for l in render::table(head, &rows).lines() {
                    let _ = writeln!(out, "      {l}");
                }
            }
            let sent = cp.bgp.advertised.get(&(node, si));
            let rows: Vec<Vec<String>> = sent
                .into_iter()
                .flatten()
                .map(|p| {
                    vec![
                        p.prefix.to_string(),
                        as_path_text(&p.as_path),
                        p.next_hop.to_string(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                let _ = writeln!(out, "    advertised:");
                for l in render::table(&["Prefix", "AS path", "Next hop"], &rows).lines() {
                    let _ = writeln!(out, "      {l}");
                }
            }
        }
        let injected = programmed(cp, node);
        if !injected.is_empty() {
            let _ = writeln!(
                out,
                "  programs into NICs (before per-NIC rules R10, R15, R25):"
            );
            for i in injected {
                let _ = writeln!(
                    out,
                    "    {} → {} ({})",
                    i.prefix,
                    ips(&i.next_hop_ips),
                    i.detail
                );
            }
        }
        if let Node::Nva(n) = node {
            let tab = &cp.nva_tables[n.idx()];
            let rows: Vec<Vec<String>> = tab
                .entries
                .iter()
                .map(|e| {
                    vec![
                        e.prefix.to_string(),
                        os_source_text(cp, e.source),
                        os_next_hop_text(t, n, &e.next_hop),
                        if e.active {
                            "active".into()
                        } else {
                            "inactive".into()
                        },
                    ]
                })
                .collect();
            let _ = writeln!(out, "  operating-system routing table:");
            for l in render::table(&["Prefix", "Source", "Next hop", "State"], &rows).lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "converged in {} rounds{}",
        cp.bgp.rounds,
        if cp.bgp.converged {
            ""
        } else {
            " (NOT converged)"
        }
    );
    for w in &cp.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

/// `bgp --json`.
#[derive(Serialize)]
struct BgpReport<'c> {
    speakers: Vec<Speaker<'c>>,
    rounds: usize,
    converged: bool,
    warnings: &'c [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Speaker<'c> {
    name: String,
    kind: &'static str,
    asn: u32,
    down: bool,
    sessions: Vec<SessionReport<'c>>,
    programmed: Vec<Programmed<'c>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os_table: Option<Vec<OsRoute>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionReport<'c> {
    peer: String,
    /// The Route Server instance of the session, as Azure names it
    /// (`RouteServiceRole_IN_0`, `RouteServiceRole_IN_1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
    peer_kind: &'static str,
    peer_asn: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    state: &'static str,
    reason: String,
    received: Vec<ReceivedRoute<'c>>,
    advertised: Vec<AdvertisedRoute<'c>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReceivedRoute<'c> {
    prefix: String,
    as_path: &'c [u32],
    next_hop: String,
    status: &'static str,
    reason: String,
    no_advertise: bool,
    communities: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdvertisedRoute<'c> {
    prefix: String,
    as_path: &'c [u32],
    next_hop: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Programmed<'c> {
    prefix: String,
    next_hop_ip_address: Vec<String>,
    as_path: &'c [u32],
    detail: &'c str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OsRoute {
    prefix: String,
    source: String,
    next_hop: String,
    active: bool,
}

impl<'c> BgpReport<'c> {
    fn new(cp: &'c ControlPlane, only: Option<Node>) -> Self {
        let t = &cp.topology;
        let speakers = bgp::all_nodes(t)
            .into_iter()
            .filter(|node| only.is_none_or(|o| o == *node))
            .map(|node| Speaker {
                name: node.name(t),
                kind: node.kind(),
                asn: node.asn(t),
                down: cp.conditions.down_speakers.contains(&node),
                sessions: cp
                    .bgp
                    .sessions_of(node)
                    .map(|(si, s)| {
                        let peer = s.other(node);
                        let (state, reason) = match &s.state {
                            SessionState::Up => ("up", String::new()),
                            SessionState::Down(w) => ("down", w.clone()),
                        };
                        SessionReport {
                            peer: peer.name(t),
                            instance: s.instance.map(|k| match peer {
                                Node::RouteServer(_) => format!("RouteServiceRole_IN_{k}"),
                                _ => format!("Instance{k}"),
                            }),
                            peer_kind: peer.kind(),
                            peer_asn: peer.asn(t),
                            kind: if s.ibgp { "ibgp" } else { "ebgp" },
                            state,
                            reason,
                            received: cp
                                .bgp
                                .received
                                .get(&(node, si))
                                .into_iter()
                                .flat_map(|m| m.values())
                                .map(|r| {
                                    let (status, reason) = status_text(&r.status);
                                    ReceivedRoute {
                                        prefix: r.path.prefix.to_string(),
                                        as_path: &r.path.as_path,
                                        next_hop: r.path.next_hop.to_string(),
                                        status,
                                        reason,
                                        no_advertise: r.path.no_advertise,
                                        communities: r
                                            .path
                                            .communities
                                            .iter()
                                            .map(|&c| community_text(c))
                                            .collect(),
                                    }
                                })
                                .collect(),
                            advertised: cp
                                .bgp
                                .advertised
                                .get(&(node, si))
                                .into_iter()
                                .flatten()
                                .map(|p| AdvertisedRoute {
                                    prefix: p.prefix.to_string(),
                                    as_path: &p.as_path,
                                    next_hop: p.next_hop.to_string(),
                                })
                                .collect(),
                        }
                    })
                    .collect(),
                programmed: programmed(cp, node)
                    .into_iter()
                    .map(|i| Programmed {
                        prefix: i.prefix.to_string(),
                        next_hop_ip_address: i
                            .next_hop_ips
                            .iter()
                            .map(ToString::to_string)
                            .collect(),
                        as_path: &i.as_path,
                        detail: &i.detail,
                    })
                    .collect(),
                os_table: match node {
                    Node::Nva(n) => Some(
                        cp.nva_tables[n.idx()]
                            .entries
                            .iter()
                            .map(|e| OsRoute {
                                prefix: e.prefix.to_string(),
                                source: os_source_text(cp, e.source),
                                next_hop: os_next_hop_text(t, n, &e.next_hop),
                                active: e.active,
                            })
                            .collect(),
                    ),
                    _ => None,
                },
            })
            .collect();
        BgpReport {
            speakers,
            rounds: cp.bgp.rounds,
            converged: cp.bgp.converged,
            warnings: &cp.warnings,
        }
    }
}

/// `bgp --json --azure`: per Route Server and NVA peer, what Azure's CLI
/// prints for the peering's learned and advertised routes.
fn azure_peerings(cp: &ControlPlane, only: Option<Node>) -> serde_json::Value {
    use vnetplane::io::azure::model_peer_routes;
    let t = &cp.topology;
    let mut out = Vec::new();
    for (ri, rs) in t.route_servers.iter().enumerate() {
        let me = Node::RouteServer(vnetplane::topology::RouteServerId(ri as u32));
        let mut peers: Vec<Node> = cp
            .bgp
            .sessions_of(me)
            .map(|(_, s)| s.other(me))
            .filter(|n| matches!(n, Node::Nva(_)))
            .collect();
        peers.dedup();
        for peer in peers {
            if only.is_some_and(|o| o != me && o != peer) {
                continue;
            }
            let peer_ip = match peer {
                Node::Nva(x) => t.nvas[x.idx()]
                    .nics
                    .first()
                    .and_then(|&nic| t.nic(nic).ips.first().copied()),
                _ => None,
            };
            let shape = |learned: bool| {
                let mut o = serde_json::Map::new();
                for (instance, routes) in model_peer_routes(cp, me, peer, learned) {
                    let k: usize = instance
                        .rsplit('_')
                        .next()
                        .and_then(|k| k.parse().ok())
                        .unwrap_or(0);
                    let local = rs.ips.get(k).map(ToString::to_string);
                    let rows: Vec<serde_json::Value> = routes
                        .iter()
                        .map(|r| {
                            let path: Vec<String> =
                                r.as_path.iter().map(ToString::to_string).collect();
                            let from_rs = !learned && r.as_path == [vnetplane::control::bgp::ROUTE_SERVER_ASN];
                            serde_json::json!({
                                "localAddress": local,
                                "network": r.network.to_string(),
                                "nextHop": r.next_hop.to_string(),
                                "sourcePeer": if learned { peer_ip.map(|i| i.to_string()) } else { local.clone() },
                                "origin": if from_rs { "Igp" } else { "EBgp" },
                                "asPath": path.join("-"),
                                "weight": if learned { 32768 } else { 0 },
                            })
                        })
                        .collect();
                    o.insert(instance, serde_json::Value::Array(rows));
                }
                serde_json::Value::Object(o)
            };
            out.push(serde_json::json!({
                "routeServer": rs.name,
                "peer": peer.name(t),
                "learnedRoutes": shape(true),
                "advertisedRoutes": shape(false),
            }));
        }
    }
    serde_json::Value::Array(out)
}
