//! The typed topology: arenas of objects addressed by small typed ids. Built
//! from a file by [`super::load_file`]; every object keeps the [`Loc`] it was
//! declared at so later stages (BGP warnings, verify findings) can point back
//! into the user's file.

use std::net::IpAddr;

use ipnet::IpNet;

use super::diag::{Diagnostic, Loc};

macro_rules! ids {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {$(
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);
        impl $name {
            pub fn idx(self) -> usize { self.0 as usize }
        }
    )*};
}

ids!(
    /// A VNet.
    VnetId,
    /// A subnet (of one VNet).
    SubnetId,
    /// A network interface.
    NicId,
    /// A route table (a set of UDRs attachable to subnets).
    RouteTableId,
    /// One direction of a VNet peering.
    PeeringId,
    /// A VPN or ExpressRoute virtual network gateway.
    GatewayId,
    /// An Azure Route Server.
    RouteServerId,
    /// A network virtual appliance (a VM whose guest OS routes).
    NvaId,
    /// An on-premises site.
    SiteId,
    /// An internal load balancer frontend.
    LoadBalancerId,
);

/// Modelling choices that SPEC.md marks Observed or UNCONFIRMED (`[options]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// R4 (Observed): extra `Default`/`None` routes added to every subnet.
    pub extra_none_prefixes: Vec<IpNet>,
    /// R5 (Observed, UNCONFIRMED): hide the reserved `None` routes on NICs that
    /// also hold gateway or Route Server routes. Default: keep them.
    pub hide_reserved_none_with_gateway_routes: bool,
    /// R3 (UNCONFIRMED for 172.16/12): a user 0/0 removes 172.16.0.0/12 as well
    /// as the other three reserved prefixes. Default: true.
    pub udr_default_removes_172_16: bool,
    /// R3 revised (published dumps): a BGP-learned 0/0 removes the reserved
    /// (and extra) `None` routes and the `Default 0/0 Internet` row.
    /// Default: true; false keeps both, as the documentation's tables do.
    pub bgp_default_removes_reserved: bool,
    /// R49: forwarded traffic crosses a peering only if both directions
    /// allow it (documented; default true). False follows a published lab
    /// that delivered NVA-forwarded traffic into a spoke without the setting.
    pub enforce_allow_forwarded_traffic: bool,
    /// R3 revised: the 172.16.0.0/12 `None` route in VNets outside it.
    /// Published dumps show none (default false); the documentation lists
    /// it for every VNet (true).
    pub reserved_172_16_outside: bool,
    /// R32: routes a Route Server accepts from one peer before it tears the
    /// session down (1,000; Azure can raise it to 4,000).
    pub route_server_max_routes_per_peer: usize,
    /// R37: prefixes a VPN gateway accepts from one BGP peer (4,000).
    pub vpn_gateway_max_prefixes: usize,
    /// R38: IPv4 prefixes an ExpressRoute gateway accepts from on-premises
    /// (4,000 Standard; 10,000 Premium).
    pub expressroute_max_prefixes: usize,
    /// R38 / R32: prefixes the Microsoft edge accepts from the VNet side (1,000).
    pub expressroute_max_vnet_prefixes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            extra_none_prefixes: Vec::new(),
            hide_reserved_none_with_gateway_routes: false,
            udr_default_removes_172_16: true,
            bgp_default_removes_reserved: true,
            reserved_172_16_outside: false,
            enforce_allow_forwarded_traffic: true,
            route_server_max_routes_per_peer: 1000,
            vpn_gateway_max_prefixes: 4000,
            expressroute_max_prefixes: 4000,
            expressroute_max_vnet_prefixes: 1000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Vnet {
    pub name: String,
    pub region: String,
    pub address_space: Vec<IpNet>,
    pub subnets: Vec<SubnetId>,
    /// The peering directions stored on this VNet (`Peering::vnet == this`).
    pub peerings: Vec<PeeringId>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct ServiceEndpoint {
    pub service: String,
    pub prefixes: Vec<IpNet>,
}

#[derive(Clone, Debug)]
pub struct Subnet {
    pub name: String,
    pub vnet: VnetId,
    pub prefixes: Vec<IpNet>,
    pub route_table: Option<RouteTableId>,
    pub service_endpoints: Vec<ServiceEndpoint>,
    pub nics: Vec<NicId>,
    pub loc: Loc,
}

impl Subnet {
    pub fn is_gateway_subnet(&self) -> bool {
        self.name == "GatewaySubnet"
    }
    pub fn is_route_server_subnet(&self) -> bool {
        self.name == "RouteServerSubnet"
    }
}

#[derive(Clone, Debug)]
pub struct Nic {
    pub name: String,
    /// The VM this NIC belongs to (defaults to the NIC's name).
    pub vm: String,
    pub vnet: VnetId,
    pub subnet: SubnetId,
    pub ips: Vec<IpAddr>,
    pub ip_forwarding: bool,
    pub public_ip: Option<IpAddr>,
    /// Its VM's power state.
    pub power: PowerState,
    pub loc: Loc,
}

/// A VM's power state. Only a running VM sends, receives or forwards; a
/// VirtualAppliance next hop on a VM that is not running shows next-hop
/// type `None` in effective routes (R51).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PowerState {
    #[default]
    Running,
    Stopped,
    Deallocated,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::Running => "running",
            PowerState::Stopped => "stopped",
            PowerState::Deallocated => "deallocated",
        }
    }
    pub fn parse(s: &str) -> Option<PowerState> {
        match s.to_ascii_lowercase().as_str() {
            "running" => Some(PowerState::Running),
            "stopped" => Some(PowerState::Stopped),
            "deallocated" => Some(PowerState::Deallocated),
            _ => None,
        }
    }
}

/// Next hops a user may give a UDR (R12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdrNextHop {
    VirtualAppliance(IpAddr),
    VirtualNetworkGateway,
    None,
    VnetLocal,
    Internet,
}

#[derive(Clone, Debug)]
pub struct Udr {
    pub name: String,
    pub prefix: IpNet,
    pub next_hop: UdrNextHop,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct RouteTable {
    pub name: String,
    /// `false` is Azure's `disableBgpRoutePropagation = true` (R10).
    pub propagate_gateway_routes: bool,
    pub routes: Vec<Udr>,
    pub loc: Loc,
}

/// One direction of a peering, as Azure stores it on `vnet`.
#[derive(Clone, Debug)]
pub struct Peering {
    pub name: String,
    pub vnet: VnetId,
    pub remote: VnetId,
    pub allow_virtual_network_access: bool,
    pub allow_forwarded_traffic: bool,
    pub allow_gateway_transit: bool,
    pub use_remote_gateways: bool,
    /// Subnet peering (ARM `peerCompleteVnets: false`): only these subnets
    /// of `vnet` get the peering's routes ...
    pub local_subnets: Option<Vec<SubnetId>>,
    /// ... and only these subnets of `remote` are reached through it.
    pub remote_subnets: Option<Vec<SubnetId>>,
    pub loc: Loc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GatewayKind {
    Vpn,
    ExpressRoute,
}

impl GatewayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Vpn => "vpn",
            GatewayKind::ExpressRoute => "expressroute",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VpnType {
    RouteBased,
    PolicyBased,
}

#[derive(Clone, Debug)]
pub struct Gateway {
    pub name: String,
    pub vnet: VnetId,
    pub kind: GatewayKind,
    pub vpn_type: VpnType,
    pub active_active: bool,
    /// Instance private IPs in the GatewaySubnet (ExpressRoute: the next-hop
    /// IPs its routes show, which Azure presents as opaque infrastructure IPs).
    pub ips: Vec<IpAddr>,
    pub public_ip: Option<IpAddr>,
    pub asn: u32,
    pub loc: Loc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingPreference {
    ExpressRoute,
    VpnNva,
    AsPath,
}

#[derive(Clone, Debug)]
pub struct RouteServer {
    pub name: String,
    pub vnet: VnetId,
    /// The two instance IPs (`virtualRouterIps`).
    pub ips: Vec<IpAddr>,
    pub asn: u32,
    pub branch_to_branch: bool,
    pub routing_preference: RoutingPreference,
    pub loc: Loc,
}

/// Where a route in an NVA's or a site's own routing table sends packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OsNextHop {
    /// A gateway IP (for an NVA: normally the subnet's first address).
    Via(IpAddr),
    /// Into a tunnel of this device (index into its `tunnels`).
    Tunnel(usize),
    /// Out of one of the NVA's NICs, directly.
    Nic(NicId),
    /// Discard.
    Blackhole,
}

#[derive(Clone, Debug)]
pub struct OsRoute {
    pub prefix: IpNet,
    pub next_hop: OsNextHop,
    pub loc: Loc,
}

/// A BGP speaker, named by a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Speaker {
    RouteServer(RouteServerId),
    Nva(NvaId),
    Gateway(GatewayId),
    Site(SiteId),
}

#[derive(Clone, Debug)]
pub struct BgpSession {
    pub peer: Speaker,
    /// For a Route Server peer: the instance IPs this side peers with (R21 wants both).
    pub peer_ips: Vec<IpAddr>,
    /// The tunnel (index into the owner's `tunnels`) the session runs over.
    pub over: Option<usize>,
    pub as_override: bool,
    /// How many extra times the local ASN is prepended on export.
    pub prepend: u8,
    /// Prefixes originated on this session (with the NVA's own
    /// `originate`, which goes to every session).
    pub originate: Vec<IpNet>,
    /// The session's source address (update-source): one of the NVA's
    /// NIC addresses or loopbacks. It is the next hop the NVA sets.
    pub source: Option<IpAddr>,
    pub redistribute_static: bool,
    /// Next hop set on export (R22: e.g. an internal load balancer frontend).
    pub next_hop: Option<IpAddr>,
    pub import_allow: Vec<IpNet>,
    pub import_deny: Vec<IpNet>,
    pub export_allow: Vec<IpNet>,
    pub export_deny: Vec<IpNet>,
    /// Tag exported routes with NO_ADVERTISE (65535:65282, R29).
    pub no_advertise: bool,
    /// Export policy rules (`[[nva.bgp.policy]]`), in order: the first
    /// whose prefixes hold a route decides what is done to it.
    pub policy: Vec<ExportRule>,
    pub loc: Loc,
}

/// One export rule of a BGP session, as a route map would write it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportRule {
    /// Routes equal to one of these, or also inside one with
    /// `or_longer` (every route when empty), as a prefix list matches.
    pub prefixes: Vec<IpNet>,
    pub or_longer: bool,
    /// Do not send the route.
    pub deny: bool,
    /// Extra copies of the local ASN prepended.
    pub prepend: u8,
    /// Remove private ASNs from the received path (before prepending).
    pub remove_private_as: bool,
    /// ASNs removed from the received path (e.g. 65515).
    pub delete_as: Vec<u32>,
    /// ASNs replaced by the local ASN in the received path.
    pub replace_as: Vec<u32>,
    /// Communities added (`high:low` as one number).
    pub communities: Vec<u32>,
    /// NO_ADVERTISE among them: receivers use the route but pass it on to
    /// nobody (R29).
    pub no_advertise: bool,
}

impl ExportRule {
    pub fn matches(&self, prefix: &IpNet) -> bool {
        self.prefixes.is_empty()
            || self
                .prefixes
                .iter()
                .any(|p| p == prefix || (self.or_longer && p.contains(prefix)))
    }
}

/// NO_ADVERTISE, 65535:65282 (RFC 1997).
pub const NO_ADVERTISE: u32 = 0xFFFF_FF02;
/// NO_EXPORT, 65535:65281 (RFC 1997).
pub const NO_EXPORT: u32 = 0xFFFF_FF01;

/// A community as `high:low`, the well-known ones by name.
pub fn community_text(c: u32) -> String {
    match c {
        NO_ADVERTISE => "no-advertise".into(),
        NO_EXPORT => "no-export".into(),
        _ => format!("{}:{}", c >> 16, c & 0xFFFF),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelKind {
    Vxlan {
        vni: u32,
        port: u16,
    },
    Esp {
        spi_out: u32,
        spi_in: u32,
        udp: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Tunnel {
    pub name: String,
    pub kind: TunnelKind,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub mtu: u16,
    /// Fragment the outer packet when it exceeds `mtu` instead of dropping it (R55).
    pub fragment: bool,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Nva {
    pub name: String,
    pub nics: Vec<NicId>,
    pub asn: Option<u32>,
    /// Addresses of the NVA's own loopback interfaces: the OS owns them,
    /// Azure knows nothing of them.
    pub loopbacks: Vec<IpAddr>,
    pub routes: Vec<OsRoute>,
    pub bgp: Vec<BgpSession>,
    pub tunnels: Vec<Tunnel>,
    pub loc: Loc,
}

/// A VNet-to-VNet connection: IPsec between two VPN gateways (ARM
/// `connectionType: Vnet2Vnet`), with BGP or with each side holding the
/// other's VNet ranges as static prefixes.
#[derive(Clone, Debug)]
pub struct VnetConnection {
    pub name: String,
    pub gateways: [GatewayId; 2],
    pub bgp: bool,
    pub loc: Loc,
}

impl VnetConnection {
    /// The gateway at the other end from `g`, if `g` is an end.
    pub fn other(&self, g: GatewayId) -> Option<GatewayId> {
        match self.gateways {
            [a, b] if a == g => Some(b),
            [a, b] if b == g => Some(a),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Connection {
    pub gateway: GatewayId,
    /// BGP over the connection (otherwise the gateway holds the site's
    /// prefixes as a static local network gateway).
    pub bgp: bool,
    /// What the site advertises over this connection (default: its prefixes).
    pub advertise: Vec<IpNet>,
    pub weight: u32,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Site {
    pub name: String,
    pub asn: Option<u32>,
    pub prefixes: Vec<IpNet>,
    pub cpe: Option<IpAddr>,
    pub hosts: Vec<IpAddr>,
    pub connections: Vec<Connection>,
    pub routes: Vec<OsRoute>,
    pub bgp: Vec<BgpSession>,
    pub tunnels: Vec<Tunnel>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct LoadBalancer {
    pub name: String,
    pub vnet: VnetId,
    pub subnet: SubnetId,
    pub frontend_ip: IpAddr,
    pub backends: Vec<NicId>,
    /// Load-balancing rules; one HA-ports rule when the file gives none.
    pub rules: Vec<LbRule>,
    pub loc: Loc,
}

/// A load-balancing rule: HA ports (every protocol and port) or one
/// protocol and frontend port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbRule {
    /// `None`: every protocol (HA ports).
    pub protocol: Option<u8>,
    /// 0: every port (HA ports).
    pub port: u16,
    /// Floating IP (direct server return): the backend receives the
    /// frontend address as destination; off, Azure translates it to the
    /// backend's own address.
    pub floating_ip: bool,
}

impl LbRule {
    pub const HA_PORTS: LbRule = LbRule {
        protocol: None,
        port: 0,
        floating_ip: false,
    };

    pub fn matches(&self, proto: u8, dport: u16) -> bool {
        self.protocol.is_none_or(|p| p == proto) && (self.port == 0 || self.port == dport)
    }
}

impl LoadBalancer {
    /// The first rule that takes a flow of `proto` to `dport`.
    pub fn rule_for(&self, proto: u8, dport: u16) -> Option<&LbRule> {
        self.rules.iter().find(|r| r.matches(proto, dport))
    }
}

/// What an assertion expects (checked by `verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Delivered,
    Dropped,
}

/// What an assertion's `from` or `to` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Nic(NicId),
    Subnet(SubnetId),
    Vnet(VnetId),
    Site(SiteId),
    /// An address (a /32 or /128) or a prefix.
    Prefix(IpNet),
    Internet,
}

/// An intent `verify` decides over every flow it names.
#[derive(Clone, Debug)]
pub struct Assertion {
    pub name: String,
    pub from: Endpoint,
    pub to: Endpoint,
    pub expect: Expect,
    /// Waypoints every delivered path crosses, in this order.
    pub via: Vec<NvaId>,
    /// NVAs no path may cross.
    pub not_via: Vec<NvaId>,
    /// The IP protocol of its flows (TCP when not given).
    pub protocol: Option<u8>,
    /// Destination ports, first and last (443 when not given).
    pub ports: Option<(u16, u16)>,
    /// The return path crosses the same NVAs as the way out.
    pub symmetric: bool,
    pub loc: Loc,
}

/// A loaded, validated topology. Construct with [`super::load_str`] or
/// [`super::load_file`].
#[derive(Clone, Debug)]
pub struct Topology {
    /// The file it came from, for diagnostics.
    pub file: String,
    pub description: Option<String>,
    pub options: Options,
    pub vnets: Vec<Vnet>,
    pub subnets: Vec<Subnet>,
    pub nics: Vec<Nic>,
    pub route_tables: Vec<RouteTable>,
    pub peerings: Vec<Peering>,
    pub gateways: Vec<Gateway>,
    pub route_servers: Vec<RouteServer>,
    pub nvas: Vec<Nva>,
    pub sites: Vec<Site>,
    pub load_balancers: Vec<LoadBalancer>,
    pub vnet_connections: Vec<VnetConnection>,
    pub assertions: Vec<Assertion>,
    /// Warnings found while loading (the file is usable despite them).
    pub warnings: Vec<Diagnostic>,
}

impl Topology {
    pub fn vnet(&self, id: VnetId) -> &Vnet {
        &self.vnets[id.idx()]
    }
    pub fn subnet(&self, id: SubnetId) -> &Subnet {
        &self.subnets[id.idx()]
    }
    pub fn nic(&self, id: NicId) -> &Nic {
        &self.nics[id.idx()]
    }
    pub fn route_table(&self, id: RouteTableId) -> &RouteTable {
        &self.route_tables[id.idx()]
    }
    pub fn gateway(&self, id: GatewayId) -> &Gateway {
        &self.gateways[id.idx()]
    }

    pub fn nic_by_name(&self, name: &str) -> Option<NicId> {
        self.nics
            .iter()
            .position(|n| n.name == name)
            .map(|i| NicId(i as u32))
    }

    pub fn vnet_by_name(&self, name: &str) -> Option<VnetId> {
        self.vnets
            .iter()
            .position(|v| v.name == name)
            .map(|i| VnetId(i as u32))
    }

    /// `vnet/subnet` → the subnet.
    pub fn subnet_by_path(&self, path: &str) -> Option<SubnetId> {
        let (v, s) = path.split_once('/')?;
        let vnet = self.vnet_by_name(v)?;
        self.vnet(vnet)
            .subnets
            .iter()
            .copied()
            .find(|&id| self.subnet(id).name == s)
    }

    pub fn subnet_path(&self, id: SubnetId) -> String {
        let s = self.subnet(id);
        format!("{}/{}", self.vnet(s.vnet).name, s.name)
    }

    /// Both directions of a peering exist: the link is Connected (R6). Returns
    /// the direction stored on `vnet`.
    pub fn connected_peering(&self, vnet: VnetId, remote: VnetId) -> Option<PeeringId> {
        let here = self
            .vnet(vnet)
            .peerings
            .iter()
            .copied()
            .find(|p| self.peerings[p.idx()].remote == remote)?;
        self.vnet(remote)
            .peerings
            .iter()
            .any(|p| self.peerings[p.idx()].remote == vnet)
            .then_some(here)
    }

    /// The peerings of `vnet` whose link is Connected, in declaration order.
    pub fn connected_peerings(&self, vnet: VnetId) -> impl Iterator<Item = PeeringId> + '_ {
        self.vnet(vnet).peerings.iter().copied().filter(move |&p| {
            let remote = self.peerings[p.idx()].remote;
            self.vnet(remote)
                .peerings
                .iter()
                .any(|q| self.peerings[q.idx()].remote == vnet)
        })
    }

    /// Whether two tunnel end addresses name the same end, seen from either
    /// side of Azure's address translation: equal, or a NIC's private
    /// address and its public IP.
    pub fn same_tunnel_end(&self, a: IpAddr, b: IpAddr) -> bool {
        a == b
            || (is_public(a) != is_public(b)
                && self.nics.iter().any(|n| {
                    n.public_ip.is_some_and(|p| {
                        (p == a && n.ips.contains(&b)) || (p == b && n.ips.contains(&a))
                    })
                }))
    }

    /// Whether the two VNets are in different regions (global peering).
    pub fn is_global(&self, a: VnetId, b: VnetId) -> bool {
        !self
            .vnet(a)
            .region
            .eq_ignore_ascii_case(&self.vnet(b).region)
    }

    /// The gateways deployed in `vnet`.
    pub fn gateways_in(&self, vnet: VnetId) -> impl Iterator<Item = GatewayId> + '_ {
        self.gateways
            .iter()
            .enumerate()
            .filter(move |(_, g)| g.vnet == vnet)
            .map(|(i, _)| GatewayId(i as u32))
    }

    /// The Route Server deployed in `vnet`, if any.
    pub fn route_server_in(&self, vnet: VnetId) -> Option<RouteServerId> {
        self.route_servers
            .iter()
            .position(|r| r.vnet == vnet)
            .map(|i| RouteServerId(i as u32))
    }

    /// The VNet whose gateways and Route Server inject routes into `vnet`'s
    /// subnets besides its own: the remote side of its Connected
    /// use-remote-gateways peering, when that side allows gateway transit (R9).
    pub fn remote_gateway_vnet(&self, vnet: VnetId) -> Option<(PeeringId, VnetId)> {
        self.connected_peerings(vnet).find_map(|pid| {
            let p = &self.peerings[pid.idx()];
            if !p.use_remote_gateways {
                return None;
            }
            let back = self
                .vnet(p.remote)
                .peerings
                .iter()
                .map(|q| &self.peerings[q.idx()])
                .find(|q| q.remote == vnet)?;
            back.allow_gateway_transit.then_some((pid, p.remote))
        })
    }

    /// The NIC that owns `ip`, within the given VNet.
    pub fn nic_owning(&self, vnet: VnetId, ip: IpAddr) -> Option<NicId> {
        self.nics
            .iter()
            .position(|n| n.vnet == vnet && n.ips.contains(&ip))
            .map(|i| NicId(i as u32))
    }

    /// The load balancer frontend `ip` in `vnet`, if any.
    pub fn load_balancer_owning(&self, vnet: VnetId, ip: IpAddr) -> Option<LoadBalancerId> {
        self.load_balancers
            .iter()
            .position(|l| l.vnet == vnet && l.frontend_ip == ip)
            .map(|i| LoadBalancerId(i as u32))
    }

    /// The subnets a route table is attached to.
    pub fn subnets_using(&self, rt: RouteTableId) -> impl Iterator<Item = SubnetId> + '_ {
        self.subnets
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.route_table == Some(rt))
            .map(|(i, _)| SubnetId(i as u32))
    }
}

/// Whether an address is public (not private, shared, loopback, link-local,
/// multicast or unspecified): what the Internet routes.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_multicast()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}
