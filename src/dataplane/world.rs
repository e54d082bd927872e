//! What a walk reads, built once per table version: the compiled subnet
//! tables, each NVA's OS table and each site's BGP routes compiled, the
//! owner of every address, next hops resolved once per table, and peering
//! rules. The part the topology's objects decide (not the routes) is shared
//! between the worlds of route-only updates.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap as HashMap;

use super::verdict::{At, DropReason, Place, RouteUsed};
use crate::control::ControlPlane;
use crate::control::bgp::{self, Node};
use crate::control::effective::{self, NextHopType, Table};
use crate::fib::{Fib, FibSet};
use crate::topology::*;

#[derive(Clone, Copy, Debug)]
pub(super) enum Owner {
    Nic(NicId),
    LoadBalancer(LoadBalancerId),
    Gateway(GatewayId),
    RouteServer(RouteServerId),
}

/// What the walker needs, built once per control-plane snapshot. It owns
/// (shares) its control plane, so a snapshot can be handed to other threads.
pub struct World {
    pub cp: Arc<ControlPlane>,
    pub fibs: FibSet,
    /// Each NVA's OS table compiled: (all routes, underlay routes without
    /// tunnel routes), values index its entries.
    pub(super) nva_fibs: Vec<Arc<(Fib<u32>, Fib<u32>)>>,
    /// Each site's best BGP routes compiled: values are positions in its
    /// best list (`bgp.best`), the longest match a site's routers use.
    pub(super) site_fibs: Vec<Arc<Fib<u32>>>,
    /// Per load balancer, the backends its health probes find up (a
    /// running VM, not an NVA that is down after reconvergence, no
    /// `probe-down`): what new flows are spread over.
    pub(super) healthy_backends: Vec<Box<[NicId]>>,
    /// Per gateway, its best routes as a longest-prefix-match table valued
    /// with where they lead ([`GatewayTarget`]): the site (or circuit) or
    /// NVA whose route won.
    pub(super) gateway_targets: Vec<Fib<u32>>,
    /// VPN connections with BGP whose every tunnel (instance session) is
    /// down: (site, gateway). Usually empty.
    pub(super) dead_connections: Vec<(SiteId, GatewayId)>,
    /// Each subnet's effective routes, once an explained walk needs them.
    pub(super) tables: Box<[OnceLock<Table>]>,
    /// Per subnet, per action of its compiled table, per next-hop address
    /// of a virtual-appliance or gateway action: where the address leads
    /// from the subnet's VNet (empty for other actions). Resolved once per
    /// world, not per packet (two owner lookups a hop saved).
    pub(super) next_hops: Vec<Box<[Box<[NextHopAt]>]>>,
    /// What depends only on the topology's objects (not on routes): shared
    /// by the worlds of route-only updates.
    pub(super) fixed: Arc<Fixed>,
    /// NVAs whose operating system runs outside the walk (real software
    /// in `live`): a packet reaching one of their NICs ends there, handed
    /// to that software. Carried from world to world.
    pub(super) outside: Arc<[NvaId]>,
}

/// The part of a world the topology's objects decide.
pub(super) struct Fixed {
    /// Per site, its static connections' reach: the served VNets' address
    /// spaces (a gateway's VNet and the spokes using it as remote
    /// gateway), each prefix valued with the first connection (in the
    /// site's order) whose reach contains it (see [`site_static`]).
    pub(super) site_static: Vec<Fib<u32>>,
    /// Per site, what it holds: its prefixes and its VPN device's address.
    site_holds: Vec<Fib<u32>>,
    /// Node names ("nic x", "nva y", ...), by kind and index.
    pub(super) names: Names,
    /// Each gateway's VNet's GatewaySubnet (R40).
    pub(super) gateway_subnet: Vec<Option<SubnetId>>,
    /// Each NVA's own addresses (its NICs' private and public IPs).
    pub(super) nva_ips: Vec<Vec<IpAddr>>,
    pub(super) owners: HashMap<AddrKey, Owner>,
    pub(super) nic_nva: Vec<Option<NvaId>>,
    /// First NIC (in declaration order) holding each address.
    pub(super) by_ip: HashMap<AddrKey, NicId>,
    /// (vnet, address) → the owner of the address in a VNet Connected to
    /// `vnet` (the lowest such VNet), and the peering stored on `vnet`.
    pub(super) peered: HashMap<AddrKey, (VnetId, Owner, PeeringId)>,
    /// Per peering: what its crossing checks (R45, R49), from its own
    /// settings and those of the peering back.
    pub(super) peering_rule: Vec<PeeringRule>,
    /// Per VNet: its address space, for the per-packet "is this source
    /// from the VNet" test of peerings (R45).
    pub(super) vnet_ranges: Vec<effective::Ranges>,
    /// Per subnet: its prefixes (an NVA's egress NIC for a next hop).
    pub(super) subnet_ranges: Vec<effective::Ranges>,
    /// Public addresses modelled objects own, reached over the Internet:
    /// NICs' public IPs, gateways' public IPs, sites' public VPN devices.
    pub(super) public: HashMap<AddrKey, PublicOwner>,
}

/// The owner of a public address reached over the Internet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicOwner {
    /// A NIC's public IP: Azure translates it to the NIC's private address.
    Nic(NicId),
    Gateway(GatewayId),
    /// A site's VPN device (its `cpe`, when public).
    Site(SiteId),
}

/// A (scope, address) map key as integers: the scope (a VNet's index, or
/// 0) shifted left once with the family in the low bit, and the address.
/// The integers are read from where the address lies (an `IpAddr` in a
/// tuple key is copied to the stack and read back across two stores: a
/// store-forwarding stall at every lookup).
pub(super) type AddrKey = (u32, u128);

#[inline]
pub(super) fn addr_key(scope: u32, ip: &IpAddr) -> AddrKey {
    match ip {
        IpAddr::V4(a) => (scope << 1, u128::from(u32::from(*a))),
        IpAddr::V6(a) => (scope << 1 | 1, u128::from(*a)),
    }
}

/// The scope and address of a key.
pub(super) fn key_addr((s, a): AddrKey) -> (u32, IpAddr) {
    let ip = if s & 1 == 0 {
        IpAddr::V4(std::net::Ipv4Addr::from(a as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(a))
    };
    (s >> 1, ip)
}

/// Where a route's next-hop address leads from a VNet (see
/// `World::next_hops`); the checks that depend on the packet (a peering's
/// rule) stay per packet.
#[derive(Clone, Copy, Debug)]
pub(super) enum NextHopAt {
    /// An owner in the VNet (R43: delivered unchanged).
    Local(Owner),
    /// An owner in a Connected peer, over this peering (stored on the VNet).
    Peered(Owner, PeeringId),
    /// A gateway among whose next-hop addresses it is.
    Gateway(GatewayId),
    /// Nobody (R51).
    Nowhere,
}

/// Every subnet's next-hop resolutions (see `World::next_hops`): a few
/// lookups per distinct action of its table.
pub(super) fn resolve_next_hops(
    t: &Topology,
    fibs: &FibSet,
    fixed: &Fixed,
) -> Vec<Box<[Box<[NextHopAt]>]>> {
    let resolve = |vnet: VnetId, ip: &IpAddr| {
        if let Some(o) = fixed.owner_in(vnet, ip) {
            NextHopAt::Local(o)
        } else if let Some((o, pid)) = fixed.owner_peered(vnet, ip) {
            NextHopAt::Peered(o, pid)
        } else if let Some(g) = t
            .gateways
            .iter()
            .position(|g| effective::gateway_next_hops(g).contains(ip))
        {
            NextHopAt::Gateway(GatewayId(g as u32))
        } else {
            NextHopAt::Nowhere
        }
    };
    (t.subnets.iter().zip(&fibs.by_subnet))
        .map(|(sub, fib)| {
            fib.actions()
                .iter()
                .map(|a| match a.next_hop_type {
                    NextHopType::VirtualAppliance | NextHopType::VirtualNetworkGateway => {
                        a.ips.iter().map(|ip| resolve(sub.vnet, ip)).collect()
                    }
                    _ => Box::default(),
                })
                .collect()
        })
        .collect()
}

/// What crossing a peering checks, decided once per topology from the
/// peering and the one back (a peering without one back checks nothing:
/// the validator warns of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PeeringRule {
    /// Both allow access and forwarded traffic (or there is no peering back).
    Open,
    /// One side disallows virtual network access: every packet dropped.
    AccessDisabled,
    /// Access allowed, forwarded traffic not on both sides (R49): a packet
    /// from outside the sending VNet, not forwarded by a gateway, dropped.
    NoForwarded,
}

/// Each NVA's OS lookups (see below); an NVA whose OS table equals its
/// table in `prev` keeps `prev`'s compiled lookups.
pub(super) fn nva_fibs(cp: &ControlPlane, prev: Option<&World>) -> Vec<Arc<(Fib<u32>, Fib<u32>)>> {
    cp.nva_tables
        .iter()
        .enumerate()
        .map(|(k, os)| {
            if let Some(w) = prev
                && let (Some(before), Some(fibs)) = (w.cp.nva_tables.get(k), w.nva_fibs.get(k))
                && before.entries == os.entries
            {
                return fibs.clone();
            }
            // The OS lookup: per prefix the first entry, if active; the
            // underlay lookup: the last active non-tunnel entry.
            let mut all = Vec::new();
            let mut prev = None;
            for (i, e) in os.entries.iter().enumerate() {
                if prev != Some(e.prefix) && e.active {
                    all.push((e.prefix, i as u32));
                }
                prev = Some(e.prefix);
            }
            let under = os
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.active && !matches!(e.next_hop, OsNextHop::Tunnel(_)))
                .map(|(i, e)| (e.prefix, i as u32));
            Arc::new((Fib::build(all), Fib::build(under)))
        })
        .collect()
}

/// VPN connections with BGP none of whose sessions is up: the tunnels
/// are down, the site cannot use the connection at all.
fn dead_connections(cp: &ControlPlane) -> Vec<(SiteId, GatewayId)> {
    let t = &cp.topology;
    let mut out = Vec::new();
    for (i, site) in t.sites.iter().enumerate() {
        let me = Node::Site(SiteId(i as u32));
        for c in site
            .connections
            .iter()
            .filter(|c| c.bgp && t.gateway(c.gateway).kind == GatewayKind::Vpn)
        {
            let up = cp.bgp.sessions_of(me).any(|(_, s)| {
                s.other(me) == Node::Gateway(c.gateway) && s.state == bgp::SessionState::Up
            });
            if !up {
                out.push((SiteId(i as u32), c.gateway));
            }
        }
    }
    out
}

/// Bits set in a [`World::gateway_targets`] value for an NVA or another
/// gateway (neither: a site).
const TARGET_NVA: u32 = 1 << 31;
const TARGET_GATEWAY: u32 = 1 << 30;

/// Where a gateway's best route leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayTarget {
    /// A site: its VPN connection or its ExpressRoute circuit.
    Site(SiteId),
    /// An NVA with BGP over an IPsec connection.
    Nva(NvaId),
    /// The gateway at the other end of a VNet-to-VNet connection.
    Gateway(GatewayId),
}

/// Per gateway, its best routes (BGP-learned and static) as a
/// longest-prefix-match table valued with where each leads.
fn gateway_targets(cp: &ControlPlane) -> Vec<Fib<u32>> {
    (0..cp.topology.gateways.len())
        .map(|i| {
            let me = Node::Gateway(GatewayId(i as u32));
            let value = |from: Node| match from {
                Node::Site(s) | Node::Msee(s) => Some(s.0),
                Node::Nva(n) => Some(n.0 | TARGET_NVA),
                Node::Gateway(g) => Some(g.0 | TARGET_GATEWAY),
                _ => None,
            };
            let mut routes: BTreeMap<ipnet::IpNet, u32> = cp
                .bgp
                .best_of(me)
                .filter_map(|(p, set)| {
                    let path = set.first()?;
                    let from = match path.session {
                        Some(si) => cp.bgp.sessions[si].other(me),
                        None => path.origin,
                    };
                    Some((*p, value(from)?))
                })
                .collect();
            // Static prefixes win over BGP for the same prefix, as the
            // gateway programs them (R8).
            for p in bgp::gateway_statics(&cp.topology, &cp.conditions, GatewayId(i as u32)) {
                if let Some(v) = value(p.origin) {
                    routes.insert(p.prefix, v);
                }
            }
            Fib::build(routes)
        })
        .collect()
}

/// Each site's best BGP routes as a longest-prefix-match table (values:
/// positions in the site's best list), reused from `prev` for a site whose
/// best routes did not change.
pub(super) fn site_fibs(cp: &ControlPlane, prev: Option<&World>) -> Vec<Arc<Fib<u32>>> {
    (0..cp.topology.sites.len())
        .map(|i| {
            let me = Node::Site(SiteId(i as u32));
            let best = cp.bgp.best.get(&me);
            if let Some(w) = prev
                && let Some(fib) = w.site_fibs.get(i)
                && w.cp.bgp.best.get(&me) == best
            {
                return fib.clone();
            }
            let routes = best.into_iter().flat_map(|b| b.iter());
            Arc::new(Fib::build(
                routes.enumerate().map(|(k, (p, _))| (*p, k as u32)),
            ))
        })
        .collect()
}

/// A site's static connections as a longest-prefix-match table: every
/// address-space prefix of the VNets a connection's gateway serves, valued
/// with the first connection (in the site's order) whose reach contains
/// it. The prefixes that contain an address are nested, the longest of
/// them inside all the others, so the longest match's value is the first
/// connection reaching the address at all — what a scan of the
/// connections in order finds.
pub(super) fn site_static(t: &Topology, site: &Site) -> Fib<u32> {
    let reach: Vec<(ipnet::IpNet, u32)> = site
        .connections
        .iter()
        .enumerate()
        .flat_map(|(k, c)| {
            bgp::served_vnets(t, t.gateway(c.gateway).vnet)
                .into_iter()
                .flat_map(|v| t.vnet(v).address_space.clone())
                .map(move |p| (p, k as u32))
        })
        .collect();
    let first = |p: &ipnet::IpNet| {
        reach
            .iter()
            .filter(|(q, _)| q.contains(p))
            .map(|&(_, k)| k)
            .min()
    };
    let mut prefixes: Vec<ipnet::IpNet> = reach.iter().map(|(p, _)| *p).collect();
    prefixes.sort();
    prefixes.dedup();
    Fib::build(
        prefixes
            .into_iter()
            .filter_map(|p| first(&p).map(|k| (p, k))),
    )
}

/// Per load balancer, the backends its health probe finds up: the VM
/// runs, it is not an NVA that is down (after reconvergence: probes take as
/// long to notice), and no `probe-down` event holds for it.
fn healthy_backends(cp: &ControlPlane, fixed: &Fixed) -> Vec<Box<[NicId]>> {
    let t = &cp.topology;
    let c = &cp.conditions;
    t.load_balancers
        .iter()
        .enumerate()
        .map(|(i, lb)| {
            lb.backends
                .iter()
                .copied()
                .filter(|&n| {
                    t.nic(n).power == PowerState::Running
                        && !c.down_backends.contains(&(LoadBalancerId(i as u32), n))
                        && fixed.nic_nva[n.idx()]
                            .is_none_or(|v| !c.down_speakers.contains(&Node::Nva(v)))
                })
                .collect()
        })
        .collect()
}

impl Fixed {
    /// The owner of `ip` in `vnet`.
    #[inline]
    pub(super) fn owner_in(&self, vnet: VnetId, ip: &IpAddr) -> Option<Owner> {
        self.owners.get(&addr_key(vnet.0, ip)).copied()
    }

    /// The owner of `ip` in a VNet Connected to `vnet`, and the peering
    /// stored on `vnet` that reaches it.
    #[inline]
    pub(super) fn owner_peered(&self, vnet: VnetId, ip: &IpAddr) -> Option<(Owner, PeeringId)> {
        self.peered
            .get(&addr_key(vnet.0, ip))
            .map(|&(_, o, pid)| (o, pid))
    }

    fn new(t: &Topology) -> Fixed {
        let mut owners = HashMap::default();
        for (i, n) in t.nics.iter().enumerate() {
            for &ip in &n.ips {
                owners.insert(addr_key(n.vnet.0, &ip), Owner::Nic(NicId(i as u32)));
            }
        }
        for (i, l) in t.load_balancers.iter().enumerate() {
            owners.insert(
                addr_key(l.vnet.0, &l.frontend_ip),
                Owner::LoadBalancer(LoadBalancerId(i as u32)),
            );
        }
        for (i, g) in t.gateways.iter().enumerate() {
            for &ip in &g.ips {
                owners.insert(addr_key(g.vnet.0, &ip), Owner::Gateway(GatewayId(i as u32)));
            }
        }
        for (i, r) in t.route_servers.iter().enumerate() {
            for &ip in &r.ips {
                owners.insert(
                    addr_key(r.vnet.0, &ip),
                    Owner::RouteServer(RouteServerId(i as u32)),
                );
            }
        }
        let mut nic_nva = vec![None; t.nics.len()];
        for (i, nva) in t.nvas.iter().enumerate() {
            for &n in &nva.nics {
                nic_nva[n.idx()] = Some(NvaId(i as u32));
            }
        }
        let mut by_ip = HashMap::default();
        for (i, n) in t.nics.iter().enumerate() {
            for &ip in &n.ips {
                by_ip.entry(addr_key(0, &ip)).or_insert(NicId(i as u32));
            }
        }
        // Who reaches each VNet over a Connected peering: remote → [(vnet,
        // the peering stored on vnet)].
        let mut reached_from: HashMap<VnetId, Vec<(VnetId, PeeringId)>> = HashMap::default();
        for (i, _) in t.vnets.iter().enumerate() {
            let v = VnetId(i as u32);
            for pid in t.connected_peerings(v) {
                reached_from
                    .entry(t.peerings[pid.idx()].remote)
                    .or_default()
                    .push((v, pid));
            }
        }
        let mut peered: HashMap<AddrKey, (VnetId, Owner, PeeringId)> = HashMap::default();
        for (&k, &o) in &owners {
            let (remote, ip) = key_addr(k);
            let remote = VnetId(remote);
            for &(v, pid) in reached_from.get(&remote).into_iter().flatten() {
                let e = peered.entry(addr_key(v.0, &ip)).or_insert((remote, o, pid));
                // The lowest remote VNet; between two peerings to the
                // same one, the later.
                if remote <= e.0 {
                    *e = (remote, o, pid);
                }
            }
        }
        let peering_rule = t
            .peerings
            .iter()
            .map(|p| {
                let back = t
                    .vnet(p.remote)
                    .peerings
                    .iter()
                    .map(|q| &t.peerings[q.idx()])
                    .find(|q| q.remote == p.vnet);
                match back {
                    None => PeeringRule::Open,
                    Some(b)
                        if !p.allow_virtual_network_access || !b.allow_virtual_network_access =>
                    {
                        PeeringRule::AccessDisabled
                    }
                    Some(b)
                        if t.options.enforce_allow_forwarded_traffic
                            && !(p.allow_forwarded_traffic && b.allow_forwarded_traffic) =>
                    {
                        PeeringRule::NoForwarded
                    }
                    Some(_) => PeeringRule::Open,
                }
            })
            .collect();
        let names = Names {
            nic: t.nics.iter().map(|n| format!("nic {}", n.name)).collect(),
            nva: t.nvas.iter().map(|n| format!("nva {}", n.name)).collect(),
            gateway: t
                .gateways
                .iter()
                .map(|g| format!("gateway {}", g.name))
                .collect(),
            site: t.sites.iter().map(|s| format!("site {}", s.name)).collect(),
            route_server: t
                .route_servers
                .iter()
                .map(|r| format!("route_server {}", r.name))
                .collect(),
        };
        let gateway_subnet = t
            .gateways
            .iter()
            .map(|g| t.subnet_by_path(&format!("{}/GatewaySubnet", t.vnet(g.vnet).name)))
            .collect();
        let nva_ips = t
            .nvas
            .iter()
            .map(|nva| {
                nva.nics
                    .iter()
                    .flat_map(|&x| t.nic(x).ips.iter().copied().chain(t.nic(x).public_ip))
                    .chain(nva.loopbacks.iter().copied())
                    .collect()
            })
            .collect();
        let mut public: HashMap<AddrKey, PublicOwner> = HashMap::default();
        for (i, n) in t.nics.iter().enumerate() {
            if let Some(ip) = n.public_ip {
                public
                    .entry(addr_key(0, &ip))
                    .or_insert(PublicOwner::Nic(NicId(i as u32)));
            }
        }
        for (i, g) in t.gateways.iter().enumerate() {
            if let Some(ip) = g.public_ip {
                public
                    .entry(addr_key(0, &ip))
                    .or_insert(PublicOwner::Gateway(GatewayId(i as u32)));
            }
        }
        for (i, s) in t.sites.iter().enumerate() {
            if let Some(ip) = s.cpe.filter(|&ip| is_public(ip)) {
                public
                    .entry(addr_key(0, &ip))
                    .or_insert(PublicOwner::Site(SiteId(i as u32)));
            }
        }
        Fixed {
            public,
            site_static: t.sites.iter().map(|site| site_static(t, site)).collect(),
            site_holds: t
                .sites
                .iter()
                .map(|s| {
                    Fib::build(
                        s.prefixes
                            .iter()
                            .copied()
                            .chain(s.cpe.map(ipnet::IpNet::from))
                            .map(|p| (p, 0)),
                    )
                })
                .collect(),
            names,
            gateway_subnet,
            nva_ips,
            owners,
            nic_nva,
            by_ip,
            peered,
            peering_rule,
            vnet_ranges: t
                .vnets
                .iter()
                .map(|v| effective::Ranges::new(v.address_space.iter().copied()))
                .collect(),
            subnet_ranges: t
                .subnets
                .iter()
                .map(|s| effective::Ranges::new(s.prefixes.iter().copied()))
                .collect(),
        }
    }
}

#[derive(Default)]
pub(super) struct Names {
    nic: Vec<String>,
    nva: Vec<String>,
    gateway: Vec<String>,
    site: Vec<String>,
    route_server: Vec<String>,
}

impl World {
    /// Builds the world of a control plane (cloned; see [`World::from_arc`]).
    pub fn new(cp: &ControlPlane) -> Self {
        World::from_arc(Arc::new(cp.clone()))
    }

    /// Builds the world of a shared control plane, compiling every table.
    pub fn from_arc(cp: Arc<ControlPlane>) -> Self {
        let fibs = FibSet::compile(&cp);
        World::assemble(cp, fibs, None, None)
    }

    /// Builds the world after a change: every subnet's routes compiled
    /// reusing `prev`'s identical route sets; with `same_objects`
    /// (route-only events: the topology's objects are unchanged) the
    /// object-derived part is shared with `prev` too. Also returns how many
    /// tables were compiled.
    pub fn rebuilt(cp: Arc<ControlPlane>, prev: &World, same_objects: bool) -> (World, usize) {
        let (fibs, compiled) = FibSet::compile_reusing(&cp, Some(&prev.fibs));
        let fixed = same_objects.then(|| prev.fixed.clone());
        (World::assemble(cp, fibs, fixed, Some(prev)), compiled)
    }

    fn assemble(
        cp: Arc<ControlPlane>,
        fibs: FibSet,
        fixed: Option<Arc<Fixed>>,
        prev: Option<&World>,
    ) -> Self {
        let nva_fibs = nva_fibs(&cp, prev);
        let site_fibs = site_fibs(&cp, prev);
        let fixed = fixed.unwrap_or_else(|| Arc::new(Fixed::new(&cp.topology)));
        let next_hops = resolve_next_hops(&cp.topology, &fibs, &fixed);
        let healthy_backends = healthy_backends(&cp, &fixed);
        let gateway_targets = gateway_targets(&cp);
        let dead_connections = dead_connections(&cp);
        World {
            outside: prev.map_or_else(|| Arc::from([]), |p| p.outside.clone()),
            dead_connections,
            healthy_backends,
            gateway_targets,
            tables: (0..fibs.by_subnet.len()).map(|_| OnceLock::new()).collect(),
            fibs,
            nva_fibs,
            site_fibs,
            next_hops,
            fixed,
            cp,
        }
    }

    /// A subnet's effective routes (what its compiled table holds),
    /// computed the first time they are asked for in this world: only
    /// explained walks name the route they used, and a world compiles its
    /// tables without them ([`FibSet::compile_reusing`]).
    pub fn subnet_table(&self, subnet: SubnetId) -> &Table {
        self.tables[subnet.idx()].get_or_init(|| self.cp.subnet_table(subnet))
    }

    /// A site's routers' BGP lookup: the longest of its best routes that
    /// contains `dst`, with its paths.
    pub fn site_best(&self, s: SiteId, dst: IpAddr) -> Option<(&ipnet::IpNet, &Vec<bgp::Path>)> {
        let k = *self.site_fibs.get(s.idx())?.lookup(dst)?;
        self.cp.bgp.best.get(&Node::Site(s))?.nth(k as usize)
    }

    /// The modelled owner of a public address, if any.
    pub fn public_owner(&self, ip: IpAddr) -> Option<PublicOwner> {
        self.fixed.public.get(&addr_key(0, &ip)).copied()
    }

    /// Where gateway `g` sends `dst`: the site, circuit or NVA whose route
    /// is its best for it (connection weight, AS path: R39).
    pub fn gateway_target(&self, g: GatewayId, dst: IpAddr) -> Option<GatewayTarget> {
        let &v = self.gateway_targets.get(g.idx())?.lookup(dst)?;
        Some(if v & TARGET_NVA != 0 {
            GatewayTarget::Nva(NvaId(v & !TARGET_NVA))
        } else if v & TARGET_GATEWAY != 0 {
            GatewayTarget::Gateway(GatewayId(v & !TARGET_GATEWAY))
        } else {
            GatewayTarget::Site(SiteId(v))
        })
    }

    /// A site's static connections: the first (its position in the site's
    /// list) whose gateway serves a VNet holding `dst` (the gateway's own
    /// VNet or a spoke using it as remote gateway).
    pub fn site_connection(&self, s: SiteId, dst: IpAddr) -> Option<usize> {
        let k = *self.fixed.site_static.get(s.idx())?.lookup(dst)?;
        let c = self.t().sites.get(s.idx())?.connections.get(k as usize)?;
        if self.dead_connections.contains(&(s, c.gateway)) {
            return None;
        }
        Some(k as usize)
    }

    /// The NIC a captured packet enters from: the one holding its source.
    /// This world with the OS of `nvas` outside the walk (see
    /// [`World::os_outside`]); worlds rebuilt from it keep them.
    pub fn with_outside(mut self, nvas: &[NvaId]) -> Self {
        self.outside = Arc::from(nvas);
        self
    }

    /// Whether NVA `n`'s OS runs outside the walk: packets reaching its
    /// NICs are delivered there, to the software that runs it.
    pub fn os_outside(&self, n: NvaId) -> bool {
        self.outside.contains(&n)
    }

    pub fn nic_for_source(&self, ip: IpAddr) -> Option<NicId> {
        self.fixed.by_ip.get(&addr_key(0, &ip)).copied()
    }

    pub(super) fn t(&self) -> &Topology {
        &self.cp.topology
    }

    /// A location's node name: `nic x`, `nva y`, `gateway z`, `site s`.
    pub fn name(&self, at: At) -> &str {
        let n = &self.fixed.names;
        match at {
            At::NicOut(x) | At::NicIn(x) => &n.nic[x.idx()],
            At::Nva(x) => &n.nva[x.idx()],
            At::Gateway(x) | At::GatewayIn(x) => &n.gateway[x.idx()],
            At::Site(x) | At::SiteOut(x) => &n.site[x.idx()],
        }
    }

    /// Where a frame is captured at a hop: a dense number for every NIC,
    /// gateway and site (pcapng writes one interface each), and whether the
    /// frame leaves there. Hops inside an NVA are seen at its NICs.
    pub fn capture_point(&self, at: At) -> Option<(u32, bool)> {
        let n = &self.fixed.names;
        let (nics, gws) = (n.nic.len() as u32, n.gateway.len() as u32);
        Some(match at {
            At::NicOut(x) => (x.0, true),
            At::NicIn(x) => (x.0, false),
            At::Gateway(g) => (nics + g.0, true),
            At::GatewayIn(g) => (nics + g.0, false),
            At::SiteOut(s) => (nics + gws + s.0, true),
            At::Site(s) => (nics + gws + s.0, false),
            At::Nva(_) => return None,
        })
    }

    /// The name of a capture point ([`World::capture_point`]): a NIC's
    /// own name (what a capture on that VM would be called), `gateway NAME`
    /// or `site NAME`.
    pub fn capture_point_name(&self, point: u32) -> &str {
        let n = &self.fixed.names;
        let k = point as usize;
        if let Some(nic) = n.nic.get(k) {
            return nic.strip_prefix("nic ").unwrap_or(nic);
        }
        let k = k - n.nic.len();
        if let Some(g) = n.gateway.get(k) {
            return g;
        }
        n.site
            .get(k - n.gateway.len())
            .map_or("unknown", String::as_str)
    }

    /// Where a walk ended, as verdicts and counters name it.
    pub fn place_name(&self, p: Place) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match p {
            Place::At(at) => Cow::Borrowed(self.name(at)),
            Place::Internet => Cow::Borrowed("internet"),
            Place::ServiceEndpoint => Cow::Borrowed("service-endpoint"),
            Place::Platform(ip) => Cow::Owned(format!("platform {ip}")),
            Place::RouteServer(r) => Cow::Borrowed(&self.fixed.names.route_server[r.idx()]),
            Place::Capture => Cow::Borrowed("capture"),
        }
    }

    /// R49 and access checks on a peering crossing.
    /// `by_gateway`: the packet is forwarded by an Azure gateway, which needs
    /// no allow-forwarded-traffic (R49).
    pub(super) fn peering_check(
        &self,
        from: VnetId,
        pid: PeeringId,
        src: IpAddr,
        by_gateway: bool,
    ) -> Option<DropReason> {
        match self.fixed.peering_rule[pid.idx()] {
            PeeringRule::Open => None,
            PeeringRule::AccessDisabled => Some(DropReason::PeeringAccessDisabled),
            // Forwarded: from outside the sending VNet's address space.
            PeeringRule::NoForwarded => (!by_gateway
                && !self.fixed.vnet_ranges[from.idx()].contains_addr(src))
            .then_some(DropReason::PeeringForwardedNotAllowed),
        }
    }

    pub(super) fn route_used(&self, subnet: SubnetId, dst: IpAddr) -> Option<RouteUsed> {
        let table = self.subnet_table(subnet);
        let d = effective::lookup(table, dst);
        d.selected.map(|i| {
            let r = &table.routes[i];
            RouteUsed {
                source: r.source.as_str(),
                prefix: r.prefix.to_string(),
                next_hop_type: r.next_hop_type.as_str(),
                next_hop_ips: r.next_hop_ips.iter().map(ToString::to_string).collect(),
            }
        })
    }

    /// The site a captured packet comes from: the one holding its source.
    pub fn site_for_source(&self, ip: IpAddr) -> Option<SiteId> {
        (0..self.fixed.site_holds.len())
            .map(|i| SiteId(i as u32))
            .find(|&s| self.site_holds(s, ip))
    }

    /// The NVA a NIC belongs to, if any.
    pub fn nva_of(&self, n: NicId) -> Option<NvaId> {
        self.fixed.nic_nva[n.idx()]
    }

    /// Whether site `s` holds `ip` (one of its prefixes, or its VPN device).
    pub fn site_holds(&self, s: SiteId, ip: IpAddr) -> bool {
        self.fixed.site_holds[s.idx()].lookup(ip).is_some()
    }
}
