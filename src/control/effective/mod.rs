//! Effective routes: what Azure programs into each NIC (SPEC R1–R20).
//!
//! A NIC's table depends only on its subnet, so tables are computed per subnet
//! and NICs share them. [`subnet_table`] follows SPEC §5's reference
//! algorithm:
//!
//! ```text
//! VnetLocal per VNet range                                   R1, R2
//! VNetPeering / VNetGlobalPeering per Connected peer range   R6, R7
//! gateway / Route Server routes (own VNet, or the hub's via  R8, R9, R10
//!   use-remote-gateways), unless propagation is off
//! 0/0 (and ::/0) Internet                                     R1
//! reserved None routes, with the R2 rewrite, R3 and R4/R5    R1–R5
//! service endpoint routes                                     R11
//! UDRs                                                        R12
//! same-prefix losers marked Invalid                           R15, R16, R39
//! ```
//!
//! [`lookup`] then selects for one destination (R14, R16, R19) and explains
//! why every other candidate lost. Everything here is pure: same topology and
//! injections, same output, byte for byte.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::topology::*;

/// `source` of an effective route, as Azure spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Default,
    User,
    VirtualNetworkGateway,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "Default",
            Source::User => "User",
            Source::VirtualNetworkGateway => "VirtualNetworkGateway",
        }
    }
}

/// `nextHopType` of an effective route, as Azure spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHopType {
    VnetLocal,
    VNetPeering,
    VNetGlobalPeering,
    VirtualNetworkGateway,
    Internet,
    VirtualAppliance,
    None,
    VirtualNetworkServiceEndpoint,
}

impl NextHopType {
    pub fn as_str(self) -> &'static str {
        match self {
            NextHopType::VnetLocal => "VnetLocal",
            NextHopType::VNetPeering => "VNetPeering",
            NextHopType::VNetGlobalPeering => "VNetGlobalPeering",
            NextHopType::VirtualNetworkGateway => "VirtualNetworkGateway",
            NextHopType::Internet => "Internet",
            NextHopType::VirtualAppliance => "VirtualAppliance",
            NextHopType::None => "None",
            NextHopType::VirtualNetworkServiceEndpoint => "VirtualNetworkServiceEndpoint",
        }
    }

    /// The spelling Network Watcher's next hop uses (S19): `VnetPeering` for both
    /// peering kinds.
    pub fn network_watcher_str(self) -> &'static str {
        match self {
            NextHopType::VNetPeering | NextHopType::VNetGlobalPeering => "VnetPeering",
            other => other.as_str(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Invalid,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "Active",
            State::Invalid => "Invalid",
        }
    }
}

/// What put a route in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// One address range of the subnet's own VNet (R1; R2 when it equals a reserved prefix).
    VnetRange { vnet: VnetId },
    /// A range of a peered VNet (R6).
    Peering { peering: PeeringId },
    /// Learned by a gateway or Route Server and injected (R8, R9, R23).
    Injected {
        by: Injector,
        kind: InjectKind,
        /// Length of the BGP AS path (0 for static prefixes), for R31.
        as_path_len: u32,
        detail: Arc<str>,
        transit: Option<PeeringId>,
    },
    /// The default route to the Internet (R1).
    Internet,
    /// A reserved private range dropped by default (R1).
    Reserved,
    /// An extra `None` route from `options.extra_none_prefixes` (R4).
    ExtraNone,
    /// A service endpoint on the subnet (R11).
    ServiceEndpoint { service: String },
    /// A user-defined route (R12).
    Udr { table: RouteTableId, index: usize },
}

/// Who injected a `VirtualNetworkGateway`-source route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Injector {
    Gateway(GatewayId),
    RouteServer(RouteServerId),
}

/// One row of a NIC's effective route table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub source: Source,
    pub state: State,
    pub prefix: IpNet,
    pub next_hop_type: NextHopType,
    pub next_hop_ips: Arc<[IpAddr]>,
    /// The UDR's name (user routes only).
    pub name: Option<Arc<str>>,
    pub origin: Origin,
    /// Why the route is Invalid, when it is.
    pub invalid_because: Option<Arc<str>>,
}

impl Route {
    /// System routes that beat BGP routes regardless of prefix length (R16).
    pub fn is_vnet_system(&self) -> bool {
        self.source == Source::Default
            && matches!(
                self.next_hop_type,
                NextHopType::VnetLocal
                    | NextHopType::VNetPeering
                    | NextHopType::VNetGlobalPeering
                    | NextHopType::VirtualNetworkServiceEndpoint
            )
    }
}

/// Which kind of speaker a gateway-source route came from (R31, R39).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InjectKind {
    ExpressRoute,
    Vpn,
    RouteServer,
}

/// A route a gateway or Route Server holds and programs into NICs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected {
    pub prefix: IpNet,
    pub next_hop_ips: Arc<[IpAddr]>,
    pub by: Injector,
    pub kind: InjectKind,
    pub as_path: Arc<[u32]>,
    /// Human-readable provenance, e.g. `static prefix of site onprem`
    /// (shared by the routes that have the same).
    pub detail: Arc<str>,
}

/// The routes each VNet's gateways and Route Server inject, keyed by the VNet
/// they are deployed in; built from the converged BGP state by
/// [`super::bgp_injections`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Injections {
    pub by_vnet: BTreeMap<VnetId, Vec<Injected>>,
}

impl Injections {
    /// Of a subnet's sources, the VNets that inject routes, in table order:
    /// subnets with the same share an [`InjectedLayer`].
    pub fn injecting(&self, sources: &Sources) -> Vec<VnetId> {
        sources
            .iter()
            .map(|s| s.0)
            .filter(|v| self.by_vnet.get(v).is_some_and(|r| !r.is_empty()))
            .collect()
    }
}

/// The next-hop IPs a gateway's routes show (R8, Observed): an active-active
/// VPN gateway lists each instance; a single-instance VPN gateway its public
/// IP when declared; ExpressRoute its (opaque) instance IPs.
pub fn gateway_next_hops(g: &Gateway) -> Vec<IpAddr> {
    match g.kind {
        GatewayKind::Vpn if !g.active_active => match g.public_ip {
            Some(ip) => vec![ip],
            None => g.ips.iter().take(1).copied().collect(),
        },
        _ => g.ips.clone(),
    }
}

const fn v4(a: u8, b: u8, len: u8) -> IpNet {
    IpNet::V4(ipnet::Ipv4Net::new_assert(
        std::net::Ipv4Addr::new(a, b, 0, 0),
        len,
    ))
}

/// R2: the reserved private ranges a VNet's table routes to None.
const RESERVED: [IpNet; 4] = [
    v4(10, 0, 8),
    v4(172, 16, 12),
    v4(192, 168, 16),
    v4(100, 64, 10),
];
/// 172.16.0.0/12: a user 0/0 removes it only optionally (R3).
const P172: IpNet = RESERVED[1];
const DEFAULT_V4: IpNet = v4(0, 0, 0);
const DEFAULT_V6: IpNet = IpNet::V6(ipnet::Ipv6Net::new_assert(
    std::net::Ipv6Addr::UNSPECIFIED,
    0,
));

/// A NIC's (or a subnet's) effective route table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub subnet: SubnetId,
    /// Shared by subnets whose routes are necessarily the same
    /// ([`crate::control::ControlPlane::subnet_twins`]).
    pub routes: Arc<Vec<Route>>,
}

fn range_route(prefix: IpNet, next_hop_type: NextHopType, origin: Origin) -> Route {
    Route {
        source: Source::Default,
        state: State::Active,
        prefix,
        next_hop_type,
        next_hop_ips: Arc::from([]),
        name: None,
        origin,
        invalid_because: None,
    }
}

/// A few address ranges, asked many times whether they cover a prefix
/// (equal to or inside one) or an address: as masked integers, not
/// `IpNet::contains`.
#[derive(Clone, Debug, Default)]
pub struct Ranges {
    v4: Vec<(u32, u32, u8)>,
    v6: Vec<(u128, u128, u8)>,
    /// The lowest and highest IPv4 address any range holds: most prefixes
    /// asked about (a gateway's or Route Server's) are outside all ranges.
    v4_span: (u32, u32),
}

impl Ranges {
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Ranges {
        let mut r = Ranges {
            v4: Vec::new(),
            v6: Vec::new(),
            v4_span: (u32::MAX, 0),
        };
        for n in nets {
            match n {
                IpNet::V4(n) => {
                    let mask = u32::from(n.netmask());
                    let net = u32::from(n.network()) & mask;
                    r.v4.push((net, mask, n.prefix_len()));
                    r.v4_span = (r.v4_span.0.min(net), r.v4_span.1.max(net | !mask));
                }
                IpNet::V6(n) => {
                    let mask = u128::from(n.netmask());
                    r.v6.push((u128::from(n.network()) & mask, mask, n.prefix_len()));
                }
            }
        }
        r
    }

    /// Whether one of the ranges contains `p` (the same answer as
    /// `IpNet::contains`).
    #[inline]
    pub fn covers(&self, p: &IpNet) -> bool {
        match p {
            IpNet::V4(p) => {
                let a = u32::from(p.addr());
                if a < self.v4_span.0 || a > self.v4_span.1 {
                    return false;
                }
                let len = p.prefix_len();
                self.v4
                    .iter()
                    .any(|&(net, mask, l)| len >= l && a & mask == net)
            }
            IpNet::V6(p) => {
                let a = u128::from(p.addr());
                let len = p.prefix_len();
                self.v6
                    .iter()
                    .any(|&(net, mask, l)| len >= l && a & mask == net)
            }
        }
    }

    /// Whether one of the ranges contains the address `a` (as its host
    /// prefix).
    #[inline]
    pub fn contains_addr(&self, a: IpAddr) -> bool {
        self.covers(&IpNet::from(a))
    }
}

/// Computes the effective routes of every NIC in `subnet`.
pub fn subnet_table(t: &Topology, inj: &Injections, subnet: SubnetId) -> Table {
    let (mut routes, sources) = own_head(t, subnet, |v| inj.by_vnet.get(&v).map_or(0, Vec::len));
    // R25 (per NIC): no Route Server route equal to or inside this NIC's VNet
    // or peering ranges.
    let system_ranges = Ranges::new(routes.iter().map(|r| r.prefix));
    for &(hub, transit) in &sources {
        for r in inj.by_vnet.get(&hub).into_iter().flatten() {
            if r.kind == InjectKind::RouteServer && system_ranges.covers(&r.prefix) {
                continue;
            }
            routes.push(injected_route(t, t.subnet(subnet).vnet, r, transit));
        }
    }
    let bgp_default = routes.iter().any(|r| {
        r.source == Source::VirtualNetworkGateway
            && r.prefix.prefix_len() == 0
            && r.prefix.network().is_ipv4()
    });
    let has_gateway_routes = routes
        .iter()
        .any(|r| r.source == Source::VirtualNetworkGateway);
    routes.extend(own_tail(t, subnet, bgp_default, has_gateway_routes));
    mark_states(t, &mut routes);
    Table {
        subnet,
        routes: Arc::new(routes),
    }
}

/// Where a subnet's injected routes come from, in table order: its own
/// VNet's gateways and Route Server, then its hub's through gateway
/// transit (R8–R10), each with the peering it is learned over; none when
/// its route table turns propagation off.
pub type Sources = Vec<(VnetId, Option<PeeringId>)>;

/// A subnet's [`Sources`].
pub fn subnet_sources(t: &Topology, subnet: SubnetId) -> Sources {
    let s = t.subnet(subnet);
    let vid = s.vnet;
    // R8–R10: gateway and Route Server routes, own VNet first, then the hub's
    // through gateway transit; not at all when propagation is off.
    let mut sources: Sources = Vec::new();
    if s.route_table
        .is_none_or(|r| t.route_table(r).propagate_gateway_routes)
    {
        sources.push((vid, None));
        if let Some((pid, hub)) = t.remote_gateway_vnet(vid) {
            sources.push((hub, Some(pid)));
        }
    }
    sources
}

/// The routes of a subnet's table before the injected ones (R1's VnetLocal
/// routes, R6–R7's peering routes), with room for `injected(vnet)` more
/// from each source, and the sources.
fn own_head(
    t: &Topology,
    subnet: SubnetId,
    injected: impl Fn(VnetId) -> usize,
) -> (Vec<Route>, Sources) {
    let vid = t.subnet(subnet).vnet;
    let vnet = t.vnet(vid);
    let sources = subnet_sources(t, subnet);
    // Sized for what the sources inject: tables of many BGP routes are
    // built without regrowing.
    let room: usize = sources.iter().map(|&(v, _)| injected(v)).sum();
    let mut routes: Vec<Route> = Vec::with_capacity(room + 16);
    // R1: one VnetLocal route per VNet range.
    for &p in &vnet.address_space {
        routes.push(range_route(
            p,
            NextHopType::VnetLocal,
            Origin::VnetRange { vnet: vid },
        ));
    }
    // R6, R7: peering routes, Connected links only, not transitive.
    // Subnet peering: only the listed local subnets get the routes, and
    // they cover only the listed remote subnets' prefixes.
    for pid in t.connected_peerings(vid) {
        let p = &t.peerings[pid.idx()];
        if p.local_subnets
            .as_ref()
            .is_some_and(|l| !l.contains(&subnet))
        {
            continue;
        }
        let ty = if t.is_global(vid, p.remote) {
            NextHopType::VNetGlobalPeering
        } else {
            NextHopType::VNetPeering
        };
        let ranges: Vec<IpNet> = match &p.remote_subnets {
            Some(l) => l
                .iter()
                .flat_map(|&s| t.subnet(s).prefixes.iter().copied())
                .collect(),
            None => t.vnet(p.remote).address_space.clone(),
        };
        for r in ranges {
            routes.push(range_route(r, ty, Origin::Peering { peering: pid }));
        }
    }
    (routes, sources)
}

/// A gateway's or Route Server's route as a NIC's table shows it (R8).
impl Route {
    /// The next-hop addresses of each row Azure prints for this route: a
    /// gateway's route through several instances is one row per instance,
    /// each with that instance's address (R8: published tables of
    /// active-active and ExpressRoute gateways); any other route, NVA ECMP
    /// from a Route Server included, is one row with all its addresses.
    pub fn printed_next_hops(&self) -> Vec<&[IpAddr]> {
        match self.origin {
            Origin::Injected {
                by: Injector::Gateway(_),
                ..
            } if self.next_hop_ips.len() > 1 => {
                self.next_hop_ips.iter().map(std::slice::from_ref).collect()
            }
            _ => vec![&self.next_hop_ips[..]],
        }
    }
}

/// Whether a Route Server route's next hops can all not be reached from
/// `vnet`: none lies in the VNet or in one Connected to it (R51 revised:
/// Azure shows such a route with next-hop type None there).
pub fn next_hops_unreachable(t: &Topology, vnet: VnetId, ips: &[IpAddr]) -> bool {
    let inside = |v: VnetId, ip: &IpAddr| t.vnet(v).address_space.iter().any(|p| p.contains(ip));
    // No next hop left (a load balancer of another region removed, R22):
    // unusable as well.
    ips.is_empty()
        || !ips.iter().any(|ip| {
            inside(vnet, ip)
                || t.connected_peerings(vnet)
                    .any(|p| inside(t.peerings[p.idx()].remote, ip))
        })
}

fn injected_route(t: &Topology, vnet: VnetId, r: &Injected, transit: Option<PeeringId>) -> Route {
    let unusable =
        r.kind == InjectKind::RouteServer && next_hops_unreachable(t, vnet, &r.next_hop_ips);
    Route {
        source: Source::VirtualNetworkGateway,
        state: State::Active,
        prefix: r.prefix,
        next_hop_type: if unusable {
            NextHopType::None
        } else {
            NextHopType::VirtualNetworkGateway
        },
        next_hop_ips: if unusable {
            Arc::from([])
        } else {
            r.next_hop_ips.clone()
        },
        name: None,
        origin: Origin::Injected {
            by: r.by,
            kind: r.kind,
            as_path_len: u32::try_from(r.as_path.len()).unwrap_or(u32::MAX),
            detail: r.detail.clone(),
            transit,
        },
        invalid_because: None,
    }
}

/// The routes of a subnet's table after the injected ones: the Internet
/// defaults, the reserved None routes, service endpoints and UDRs. Which
/// reserved routes remain depends on whether the injected routes (those
/// R25 keeps) hold an IPv4 0/0 (`bgp_default`) and any route at all
/// (`has_gateway_routes`).
fn own_tail(
    t: &Topology,
    subnet: SubnetId,
    bgp_default: bool,
    has_gateway_routes: bool,
) -> Vec<Route> {
    let s = t.subnet(subnet);
    let vid = s.vnet;
    let vnet = t.vnet(vid);
    let rt = s.route_table.map(|r| t.route_table(r));
    let mut routes: Vec<Route> = Vec::new();
    // R1: default routes to the Internet. R3 revised: a BGP-learned 0/0
    // leaves no IPv4 Internet row at all (published dumps).
    let bgp_clears = bgp_default && t.options.bgp_default_removes_reserved;
    let has_v4 = vnet.address_space.iter().any(|p| p.network().is_ipv4());
    let has_v6 = vnet.address_space.iter().any(|p| p.network().is_ipv6());
    if has_v4 && !bgp_clears {
        routes.push(range_route(
            DEFAULT_V4,
            NextHopType::Internet,
            Origin::Internet,
        ));
    }
    if has_v6 {
        routes.push(range_route(
            DEFAULT_V6,
            NextHopType::Internet,
            Origin::Internet,
        ));
    }
    // R1–R5: reserved None routes. R3: a user 0/0 removes them, unless its
    // next hop is None (published dumps keep them then).
    let user_default = rt.is_some_and(|r| {
        r.routes.iter().any(|u| {
            u.prefix.prefix_len() == 0
                && u.prefix.network().is_ipv4()
                && u.next_hop != UdrNextHop::None
        })
    });
    // R3 revised: a BGP 0/0 removes them too, extra ones included; R5
    // (optional): NICs holding gateway routes show none of them.
    let hide_reserved = has_gateway_routes && t.options.hide_reserved_none_with_gateway_routes;
    let mut none_routes: Vec<(IpNet, Origin)> = Vec::new();
    for p in RESERVED {
        // Published dumps of VNets outside 172.16/12 have no row for it.
        let outside = p == P172
            && !t.options.reserved_172_16_outside
            && !vnet.address_space.iter().any(|r| p.contains(r));
        let removed = outside
            || hide_reserved
            || bgp_clears
            || (user_default && (p != P172 || t.options.udr_default_removes_172_16));
        if !removed {
            none_routes.push((p, Origin::Reserved));
        }
    }
    if !bgp_clears {
        for &p in &t.options.extra_none_prefixes {
            none_routes.push((p, Origin::ExtraNone));
        }
    }
    none_routes.sort_by_key(|(p, _)| *p);
    for (p, origin) in none_routes {
        // R2: equal to a VNet range -> that range's VnetLocal route stands in
        // for it; strictly containing one -> removed; strictly inside -> kept.
        if vnet.address_space.iter().any(|r| r.contains(&p)) {
            continue;
        }
        routes.push(range_route(p, NextHopType::None, origin));
    }
    // R11: service endpoints, on this subnet only.
    for se in &s.service_endpoints {
        for &p in &se.prefixes {
            routes.push(range_route(
                p,
                NextHopType::VirtualNetworkServiceEndpoint,
                Origin::ServiceEndpoint {
                    service: se.service.clone(),
                },
            ));
        }
    }
    // R12: user-defined routes.
    if let (Some(rtid), Some(rt)) = (s.route_table, rt) {
        for (i, u) in rt.routes.iter().enumerate() {
            let (ty, ips) = match u.next_hop {
                // R51 revised: a next hop no NIC or load balancer holds, or
                // on a VM that is not running, shows as None (and drops).
                UdrNextHop::VirtualAppliance(ip) if !appliance_usable(t, vid, ip) => {
                    (NextHopType::None, Vec::new())
                }
                UdrNextHop::VirtualAppliance(ip) => (NextHopType::VirtualAppliance, vec![ip]),
                UdrNextHop::VirtualNetworkGateway => {
                    let hub = t.remote_gateway_vnet(vid).map_or(vid, |(_, h)| h);
                    let ips = t
                        .gateways_in(hub)
                        .map(|g| t.gateway(g))
                        .find(|g| g.kind == GatewayKind::Vpn)
                        .map(gateway_next_hops)
                        .unwrap_or_default();
                    (NextHopType::VirtualNetworkGateway, ips)
                }
                UdrNextHop::None => (NextHopType::None, Vec::new()),
                UdrNextHop::VnetLocal => (NextHopType::VnetLocal, Vec::new()),
                UdrNextHop::Internet => (NextHopType::Internet, Vec::new()),
            };
            routes.push(Route {
                source: Source::User,
                state: State::Active,
                prefix: u.prefix,
                next_hop_type: ty,
                next_hop_ips: Arc::from(ips),
                name: Some(Arc::from(u.name.as_str())),
                origin: Origin::Udr {
                    table: rtid,
                    index: i,
                },
                invalid_because: None,
            });
        }
    }
    routes
}

/// Whether a VirtualAppliance next hop can be used from `vnet`: a load
/// balancer's frontend, or a NIC's address whose VM is running, in the VNet
/// or one Connected to it.
fn appliance_usable(t: &Topology, vnet: VnetId, ip: IpAddr) -> bool {
    let near = |v: VnetId| {
        v == vnet
            || t.connected_peerings(vnet)
                .any(|p| t.peerings[p.idx()].remote == v)
    };
    t.load_balancers
        .iter()
        .any(|l| l.frontend_ip == ip && near(l.vnet))
        || t.nics
            .iter()
            .find(|n| n.ips.contains(&ip) && near(n.vnet))
            .is_some_and(|n| n.power == PowerState::Running)
}

/// Same-prefix precedence (R15 with the R16 exception; among gateway routes
/// R31 and R39): lower ranks first.
fn rank(t: &Topology, r: &Route) -> (u8, u8, usize) {
    match r.source {
        Source::User => (0, 0, 0),
        Source::Default if r.is_vnet_system() => (1, 0, 0),
        Source::VirtualNetworkGateway => match &r.origin {
            Origin::Injected {
                by,
                kind,
                as_path_len,
                ..
            } => injected_rank(t, *by, *kind, *as_path_len),
            _ => (2, 9, 0),
        },
        Source::Default => (3, 0, 0),
    }
}

/// [`rank`] of a gateway's or Route Server's route.
fn injected_rank(
    t: &Topology,
    by: Injector,
    kind: InjectKind,
    as_path_len: u32,
) -> (u8, u8, usize) {
    // The hub's Route Server routing preference decides between
    // ExpressRoute and VPN/NVA routes; VPN against NVA is always
    // the shorter AS path (R31). Without a Route Server,
    // ExpressRoute wins (R39).
    let vnet = match by {
        Injector::Gateway(g) => t.gateway(g).vnet,
        Injector::RouteServer(rs) => t.route_servers[rs.idx()].vnet,
    };
    let pref = t
        .route_server_in(vnet)
        .map_or(RoutingPreference::ExpressRoute, |rs| {
            t.route_servers[rs.idx()].routing_preference
        });
    let er = kind == InjectKind::ExpressRoute;
    let class = match pref {
        RoutingPreference::ExpressRoute => u8::from(!er),
        RoutingPreference::VpnNva => u8::from(er),
        RoutingPreference::AsPath => 0,
    };
    (2, class, as_path_len as usize)
}

fn describe(t: &Topology, r: &Route) -> String {
    match (&r.origin, &r.name) {
        (Origin::Udr { table, .. }, Some(n)) => format!(
            "User route {n} of route table {}",
            t.route_table(*table).name
        ),
        _ => format!(
            "{} route {} → {}",
            r.source.as_str(),
            r.prefix,
            r.next_hop_type.as_str()
        ),
    }
}

/// Marks, for each prefix, the best route Active and the others Invalid:
/// the lowest rank wins, the earlier route a tie.
fn mark_states(t: &Topology, routes: &mut [Route]) {
    for group in same_prefix_groups(routes) {
        let b = group
            .iter()
            .copied()
            .min_by_key(|&i| (rank(t, &routes[i]), i))
            .expect("groups have two routes or more");
        for i in group.into_iter().filter(|&i| i != b) {
            mark_invalid(t, routes, i, b);
        }
    }
}

/// The routes that share their prefix with another, grouped by prefix,
/// each group in table order. A table is mostly the long sorted run of a
/// gateway's or Route Server's routes with a few others around it: those
/// few are looked up in the run (binary search) and among themselves; a
/// table without such a run is sorted whole.
fn same_prefix_groups(routes: &[Route]) -> Vec<Vec<usize>> {
    let n = routes.len();
    // The longest strictly ascending run [a, b): no two routes in it meet.
    let std::ops::Range { start: a, end: b } =
        crate::control::sorted::longest_run(n, |i| routes[i - 1].prefix < routes[i].prefix);
    let mut cands: Vec<(IpNet, usize)> = if b - a >= n / 2 {
        let run = &routes[a..b];
        let mut c: Vec<(IpNet, usize)> =
            (0..a).chain(b..n).map(|j| (routes[j].prefix, j)).collect();
        let met: Vec<(IpNet, usize)> = c
            .iter()
            .filter_map(|&(p, _)| {
                let k = run.partition_point(|r| r.prefix < p);
                (k < run.len() && run[k].prefix == p).then_some((p, a + k))
            })
            .collect();
        c.extend(met);
        c
    } else {
        routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.prefix, i))
            .collect()
    };
    cands.sort_unstable();
    cands.dedup();
    cands
        .chunk_by(|x, y| x.0 == y.0)
        .filter(|g| g.len() > 1)
        .map(|g| g.iter().map(|x| x.1).collect())
        .collect()
}

/// Route `i` loses to route `b` (same prefix): Invalid, and why.
fn mark_invalid(t: &Topology, routes: &mut [Route], i: usize, b: usize) {
    let (wr, lr) = (rank(t, &routes[b]), rank(t, &routes[i]));
    let rule = if wr.0 == lr.0 {
        if routes[i].source != Source::VirtualNetworkGateway || wr == lr {
            "same prefix, declared later"
        } else if wr.1 != lr.1 {
            "R31/R39: the routing preference puts ExpressRoute and VPN/NVA routes in this order"
        } else {
            "R31: the shorter AS path wins"
        }
    } else if wr.0 == 1 && lr.0 == 2 {
        "R16: VNet and peering system routes beat gateway routes"
    } else {
        "R15: User beats VirtualNetworkGateway beats Default for the same prefix"
    };
    let why = format!("{} has the same prefix ({rule})", describe(t, &routes[b]));
    routes[i].state = State::Invalid;
    routes[i].invalid_because = Some(Arc::from(why));
}

/// The effective routes of a NIC.
pub fn nic_table(t: &Topology, inj: &Injections, nic: NicId) -> Table {
    subnet_table(t, inj, t.nic(nic).subnet)
}

mod layer;
mod lookup;

pub use layer::{InjectedLayer, prefixes_inside, split_table};
pub use lookup::{Candidate, Decision, PLATFORM_IPS, Verdict, lookup};

#[cfg(test)]
mod tests {
    use super::*;

    /// The groups of routes sharing a prefix, whatever the table's layout
    /// (a long sorted run with a few routes around it; no run at all), are
    /// those a map from prefix to routes gives.
    #[test]
    fn prefixes_inside_a_prefix_are_in_the_run_it_gives() {
        let mut rng = crate::rng::Rng(9);
        for _ in 0..300 {
            let mut ps: Vec<IpNet> = (0..rng.next_u32() % 200)
                .map(|_| {
                    let len = (rng.next_u32() % 33) as u8;
                    let a = (rng.next_u32() & 0x0f0f_ff00)
                        & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                    IpNet::V4(ipnet::Ipv4Net::new(a.into(), len).expect("valid length"))
                })
                .collect();
            ps.push("fd00::/8".parse().unwrap());
            ps.sort();
            ps.dedup();
            let len = (rng.next_u32() % 33) as u8;
            let a = rng.next_u32()
                & 0x0f0f_ff00
                & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            let p = IpNet::V4(ipnet::Ipv4Net::new(a.into(), len).expect("valid length"));
            let run = prefixes_inside(&ps, |x| *x, p);
            let inside: Vec<usize> = (0..ps.len()).filter(|&i| p.contains(&ps[i])).collect();
            assert!(
                inside.iter().all(|i| run.contains(i)),
                "{p} in {ps:?}: {run:?}"
            );
            // Nothing else but supernets at p's address.
            assert!(run.clone().all(|i| p.contains(&ps[i])
                || (ps[i].addr() == p.addr() && ps[i].prefix_len() < p.prefix_len())));
        }
    }

    #[test]
    fn same_prefix_groups_are_the_prefix_map_ones() {
        let mut rng = crate::rng::Rng(5);
        let prefix = |rng: &mut crate::rng::Rng| {
            let len = 8 + (rng.next_u32() % 3) as u8 * 8;
            let a = (rng.next_u32() & 0x0303_0300) & (u32::MAX << (32 - u32::from(len)));
            IpNet::V4(ipnet::Ipv4Net::new(a.into(), len).expect("valid length"))
        };
        for case in 0..300 {
            let mut prefixes: Vec<IpNet> =
                (0..rng.next_u32() % 6).map(|_| prefix(&mut rng)).collect();
            let mut run: Vec<IpNet> = (0..rng.next_u32() % 60).map(|_| prefix(&mut rng)).collect();
            if case % 3 != 0 {
                run.sort();
                run.dedup();
            }
            prefixes.extend(run);
            prefixes.extend((0..rng.next_u32() % 6).map(|_| prefix(&mut rng)));
            let routes: Vec<Route> = prefixes
                .iter()
                .map(|&p| range_route(p, NextHopType::None, Origin::Reserved))
                .collect();
            let mut map: BTreeMap<IpNet, Vec<usize>> = BTreeMap::new();
            for (i, p) in prefixes.iter().enumerate() {
                map.entry(*p).or_default().push(i);
            }
            let want: Vec<Vec<usize>> = map.into_values().filter(|g| g.len() > 1).collect();
            assert_eq!(same_prefix_groups(&routes), want, "{prefixes:?}");
        }
    }
}
