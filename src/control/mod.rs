//! The control plane: pure, deterministic functions of (topology, events).
//! No clock, no threads, no I/O.
//!
//! - [`bgp`]: Route Servers, NVAs, gateways, the Microsoft edge and sites
//!   converged to a fixpoint with Azure's rules (R21–R41).
//! - [`effective`]: every NIC's effective routes (R1–R20), with what gateways
//!   and Route Servers inject, and lookups that explain their choice.
//! - [`nva`]: each NVA's own OS routing table.
//! - [`events`]: failures, advertisements and route-table changes.
//!
//! [`converge`] ties them together: `ControlPlane` is everything later stages
//! (FIB, dataplane, verify) read.

pub mod bgp;
pub mod effective;
pub mod events;
pub mod nva;
pub mod sorted;

use std::collections::BTreeMap;
use std::sync::Arc;

use ipnet::IpNet;

use crate::topology::*;
use bgp::{BgpState, Conditions, Node, Path};
use effective::{InjectKind, Injected, Injections, Injector, Table, gateway_next_hops};
use events::{Event, EventError};

/// The converged control plane of a topology under a list of events.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    /// The topology with route-table events applied.
    pub topology: Topology,
    pub conditions: Conditions,
    pub bgp: BgpState,
    pub injections: Injections,
    /// NVA OS tables, by NVA.
    pub nva_tables: Vec<nva::OsTable>,
    /// BGP and NVA warnings.
    pub warnings: Vec<String>,
}

/// Converges `t` after `events` (in order). Pure: same inputs, same output.
pub fn converge(t: &Topology, events: &[Event]) -> Result<ControlPlane, EventError> {
    let (topology, conditions) = events::apply(t, events)?;
    Ok(converge_state(topology, conditions))
}

/// Converges a topology (route-table events applied) under conditions.
pub fn converge_state(topology: Topology, mut conditions: Conditions) -> ControlPlane {
    // An NVA whose VM is not running speaks no BGP and forwards nothing.
    for (i, n) in topology.nvas.iter().enumerate() {
        if n.nics
            .iter()
            .any(|&c| topology.nic(c).power != PowerState::Running)
        {
            conditions.down_speakers.insert(Node::Nva(NvaId(i as u32)));
        }
    }
    let bgp = bgp::converge(&topology, &conditions);
    let injections = bgp_injections(&topology, &bgp, &conditions);
    let nva_tables: Vec<nva::OsTable> = (0..topology.nvas.len())
        .map(|i| nva::nva_table(&topology, &bgp, NvaId(i as u32)))
        .collect();
    let mut warnings = bgp.warnings.clone();
    warnings.extend(nva_tables.iter().flat_map(|n| n.warnings.iter().cloned()));
    ControlPlane {
        topology,
        conditions,
        bgp,
        injections,
        nva_tables,
        warnings,
    }
}

/// Control-plane work of at least this many routes (injected routes to
/// place in subnet tables, routes to compile) is spread over every core
/// (rayon); less stays on the calling thread. A version in a stream of
/// updates is far below: the control plane must not take the forwarding
/// workers' cores for it. A large batch (a full table learned at once) is
/// absorbed on all of them.
pub const PARALLEL_ROUTES: usize = 32_768;

impl ControlPlane {
    pub fn subnet_table(&self, s: SubnetId) -> Table {
        effective::subnet_table(&self.topology, &self.injections, s)
    }
    /// Every subnet's effective routes, by subnet id. Subnets with the same
    /// inputs ([`ControlPlane::subnet_twins`]) share one computation.
    /// Large sets (at least [`PARALLEL_ROUTES`] injected routes to place
    /// in all) are computed on every core.
    pub fn subnet_tables(&self) -> Vec<Table> {
        use rayon::prelude::*;
        let twins = self.subnet_twins();
        let t = &self.topology;
        let firsts: Vec<usize> = (0..twins.len()).filter(|&i| twins[i] == i).collect();
        let work: usize = firsts
            .iter()
            .map(|&i| {
                let vid = t.subnets[i].vnet;
                std::iter::once(vid)
                    .chain(t.remote_gateway_vnet(vid).map(|(_, hub)| hub))
                    .map(|v| self.injections.by_vnet.get(&v).map_or(0, Vec::len))
                    .sum::<usize>()
            })
            .sum();
        let one = |&i: &usize| self.subnet_table(SubnetId(i as u32));
        let computed: Vec<Table> = if work >= PARALLEL_ROUTES {
            firsts.par_iter().map(one).collect()
        } else {
            firsts.iter().map(one).collect()
        };
        let mut computed = computed.into_iter();
        let mut out: Vec<Table> = Vec::with_capacity(twins.len());
        for (i, &first) in twins.iter().enumerate() {
            let table = if first < i {
                Table {
                    subnet: SubnetId(i as u32),
                    routes: out[first].routes.clone(),
                }
            } else {
                computed.next().expect("one computed table a first subnet")
            };
            out.push(table);
        }
        out
    }

    /// Per subnet: the first subnet whose effective routes are necessarily
    /// the same (itself when none is). A subnet's routes read only its VNet
    /// (ranges, peerings, what its and its hub's gateways and Route Servers
    /// inject), its route table and its service endpoints (R1–R12): subnets
    /// of one VNet with the same route table and no service endpoints are
    /// twins.
    pub fn subnet_twins(&self) -> Vec<usize> {
        let t = &self.topology;
        let mut first: rustc_hash::FxHashMap<(VnetId, Option<RouteTableId>), usize> =
            Default::default();
        t.subnets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // Service endpoints and subnet peerings make a subnet's
                // table its own.
                let subnet_peered = t
                    .vnet(s.vnet)
                    .peerings
                    .iter()
                    .any(|p| t.peerings[p.idx()].local_subnets.is_some());
                if s.service_endpoints.is_empty() && !subnet_peered {
                    *first.entry((s.vnet, s.route_table)).or_insert(i)
                } else {
                    i
                }
            })
            .collect()
    }
    pub fn nic_table(&self, n: NicId) -> Table {
        effective::nic_table(&self.topology, &self.injections, n)
    }
}

fn path_text(p: &[u32]) -> String {
    if p.is_empty() {
        "local".to_string()
    } else {
        p.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What gateways and Route Servers program into NICs, from the converged BGP
/// state (R8, R22–R24, R28): a gateway its static and site-learned prefixes
/// (plus the host route of a VPN BGP peer); a Route Server the best NVA paths,
/// ECMP across next hops of equal AS-path length. A speaker that is down
/// programs nothing (R51).
pub fn bgp_injections(t: &Topology, bgp: &BgpState, cond: &Conditions) -> Injections {
    let mut out = Injections::default();
    // Provenance texts repeat across prefixes: written once per distinct
    // (sessions, AS path), shared by every route that has them.
    // (kind of text, sessions or site, AS path) -> text.
    type TextKey = (u8, Vec<usize>, Arc<[u32]>);
    let mut texts: rustc_hash::FxHashMap<TextKey, Arc<str>> = Default::default();
    let mut text = |kind: u8, sessions: Vec<usize>, path: &Arc<[u32]>, f: &dyn Fn() -> String| {
        texts
            .entry((kind, sessions, path.clone()))
            .or_insert_with(|| Arc::from(f()))
            .clone()
    };
    for (gi, g) in t.gateways.iter().enumerate() {
        let gid = GatewayId(gi as u32);
        let me = Node::Gateway(gid);
        if cond.down_speakers.contains(&me) {
            continue;
        }
        let kind = match g.kind {
            GatewayKind::Vpn => InjectKind::Vpn,
            GatewayKind::ExpressRoute => InjectKind::ExpressRoute,
        };
        let hops: Arc<[std::net::IpAddr]> = gateway_next_hops(g).into();
        // prefix -> (rank: static first, weight, AS path length, session; path; provenance)
        type Rank = (u8, u32, usize, usize);
        let mut chosen: BTreeMap<IpNet, (Rank, Path, Arc<str>)> = BTreeMap::new();
        let mut offer = |rank: Rank, p: Path, detail: &dyn Fn() -> Arc<str>| {
            if chosen.get(&p.prefix).is_none_or(|(r, _, _)| rank < *r) {
                chosen.insert(p.prefix, (rank, p, detail()));
            }
        };
        for p in bgp::gateway_statics(t, cond, gid) {
            let d = match p.origin {
                Node::Site(site) => text(0, vec![site.idx()], &p.as_path, &|| {
                    format!("static prefix of site {}", p.origin.name(t))
                }),
                Node::Gateway(other) => text(2, vec![other.idx()], &p.as_path, &|| {
                    format!(
                        "range of gateway {}'s VNet over a VNet-to-VNet connection",
                        p.origin.name(t)
                    )
                }),
                _ => continue,
            };
            offer((0, 0, 0, 0), p, &|| d.clone());
        }
        for (si, s, r) in bgp.accepted(me) {
            let peer = s.other(me);
            if !matches!(peer, Node::RouteServer(_)) {
                let d = text(1, vec![si], &r.path.as_path, &|| {
                    format!(
                        "learned over BGP from {} (AS path {})",
                        peer.name(t),
                        path_text(&r.path.as_path)
                    )
                });
                offer(
                    (1, u32::MAX - s.weight, r.path.as_path.len(), si),
                    r.path.clone(),
                    &|| d.clone(),
                );
            }
        }
        for (_, s) in bgp
            .sessions_of(me)
            .filter(|(_, s)| s.state == bgp::SessionState::Up)
        {
            let peer = s.other(me);
            // R8: the internal host route for a VPN BGP peer.
            if let (GatewayKind::Vpn, Node::Site(site)) = (g.kind, peer)
                && let Some(cpe) = t.sites[site.idx()].cpe
            {
                let p = Path {
                    prefix: IpNet::from(cpe),
                    as_path: Arc::from([]),
                    next_hop: cpe,
                    no_advertise: true,
                    communities: Arc::from([]),
                    origin: peer,
                    is_static: true,
                    session: None,
                };
                offer((0, 0, 0, 0), p, &|| {
                    Arc::from(format!(
                        "BGP peer address of site {}",
                        t.sites[site.idx()].name
                    ))
                });
            }
        }
        let list = out.by_vnet.entry(g.vnet).or_default();
        for (_, (_, p, detail)) in chosen {
            list.push(Injected {
                prefix: p.prefix,
                next_hop_ips: hops.clone(),
                by: Injector::Gateway(gid),
                kind,
                as_path: p.as_path,
                detail,
            });
        }
    }
    for (ri, rs) in t.route_servers.iter().enumerate() {
        let me = Node::RouteServer(RouteServerId(ri as u32));
        if cond.down_speakers.contains(&me) {
            continue;
        }
        // prefix -> paths from NVAs (accepted, with their session), for R28.
        // One list, grouped by prefix by a stable sort (each session's
        // paths come in prefix order: a merge of sorted runs), sessions in
        // order within a prefix.
        // R25 at the Route Server (Microsoft's route-injection-in-spokes
        // page): NVA routes equal to or inside its own VNet's ranges or
        // those of VNets using it remotely are programmed nowhere.
        let served = effective::Ranges::new(
            (0..t.vnets.len())
                .map(|i| VnetId(i as u32))
                .filter(|&v| {
                    v == rs.vnet || t.remote_gateway_vnet(v).is_some_and(|(_, h)| h == rs.vnet)
                })
                .flat_map(|v| t.vnet(v).address_space.iter().copied()),
        );
        let region = &t.vnet(rs.vnet).region;
        let foreign_lb = |ip: std::net::IpAddr| {
            t.load_balancers
                .iter()
                .any(|l| l.frontend_ip == ip && !t.vnet(l.vnet).region.eq_ignore_ascii_case(region))
        };
        let mut cands: Vec<(&Path, usize)> = Vec::new();
        for (si, s, r) in bgp.accepted(me) {
            let peer = s.other(me);
            if matches!(peer, Node::Nva(_))
                && r.path.prefix.network().is_ipv4()
                && !served.covers(&r.path.prefix)
            {
                cands.push((&r.path, si));
            }
        }
        cands.sort_by_key(|(p, _)| p.prefix);
        let list = out.by_vnet.entry(rs.vnet).or_default();
        list.reserve(cands.len());
        let mut hop_sets: rustc_hash::FxHashMap<Vec<std::net::IpAddr>, Arc<[std::net::IpAddr]>> =
            Default::default();
        let mut set: Vec<(&Path, usize)> = Vec::new();
        let mut key: Vec<std::net::IpAddr> = Vec::new();
        let mut sessions: Vec<usize> = Vec::new();
        // Neighbouring prefixes mostly have the same sessions and AS path:
        // the last text is checked before the table.
        type Last = (Vec<usize>, Arc<[u32]>, Arc<str>);
        let mut last: Option<Last> = None;
        for paths in cands.chunk_by(|a, b| a.0.prefix == b.0.prefix) {
            let prefix = paths[0].0.prefix;
            let min = paths
                .iter()
                .map(|(p, _)| p.as_path.len())
                .min()
                .unwrap_or(0);
            set.clear();
            set.extend(
                paths
                    .iter()
                    .copied()
                    .filter(|(p, _)| p.as_path.len() == min),
            );
            set.sort_by_key(|a| a.0.next_hop);
            set.dedup_by(|a, b| a.0.next_hop == b.0.next_hop);
            // ECMP sets repeat across prefixes: one shared list each.
            key.clear();
            // A load balancer next hop works only in the Route Server's
            // region (R22): one elsewhere is not programmed.
            key.extend(
                set.iter()
                    .map(|(p, _)| p.next_hop)
                    .filter(|&ip| !foreign_lb(ip)),
            );
            let hops = match hop_sets.get(&key[..]) {
                Some(h) => Arc::clone(h),
                None => {
                    let h: Arc<[std::net::IpAddr]> = Arc::from(&key[..]);
                    hop_sets.insert(key.clone(), h.clone());
                    h
                }
            };
            let as_path = set[0].0.as_path.clone();
            sessions.clear();
            sessions.extend(set.iter().map(|x| x.1));
            let detail = match &last {
                Some((s, p, d)) if *s == sessions && *p == as_path => d.clone(),
                _ => {
                    let d = text(2, sessions.clone(), &as_path, &|| {
                        let from: Vec<String> = set
                            .iter()
                            .map(|&(_, si)| bgp.sessions[si].other(me).name(t))
                            .collect();
                        let ecmp = if set.len() > 1 { "ECMP, " } else { "" };
                        format!(
                            "{ecmp}learned by {} from {} (AS path {})",
                            rs.name,
                            from.join(", "),
                            path_text(&as_path)
                        )
                    });
                    last = Some((sessions.clone(), as_path.clone(), d.clone()));
                    d
                }
            };
            list.push(Injected {
                prefix,
                next_hop_ips: hops,
                by: Injector::RouteServer(RouteServerId(ri as u32)),
                kind: InjectKind::RouteServer,
                as_path,
                detail,
            });
        }
    }
    out
}
