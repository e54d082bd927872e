//! The hop machine: one step = one decision = one trace record.
//!
//! A packet is a stack of IP headers (the outermost last; VXLAN or ESP
//! encapsulation adds one). It walks the topology through these locations:
//!
//! | location | reads | decides |
//! |---|---|---|
//! | NIC egress | the NIC's compiled FIB (its subnet's effective routes, R16 built in) | anti-spoofing (R44), then per next-hop type (SPEC §2): local/peered owner, appliance, gateway, Internet, drop; ECMP by a per-flow hash (R18); no recursion (R43); TTL untouched (R48) |
//! | NIC ingress | the NIC's IPs and IP forwarding | deliver to the VM, hand to an NVA's OS, or drop (R44) |
//! | NVA OS | the NVA's own routing table | decapsulate tunnel traffic addressed to it; TTL − 1; next hop → egress NIC (R42); encapsulate into a tunnel |
//! | gateway | the connected sites' prefixes | hand to the site (VPN or ExpressRoute) |
//! | site | its prefixes, hosts, CPE and tunnels | decapsulate, deliver |
//!
//! Every walk ends in exactly one [`Verdict`]: delivered (where), dropped
//! (one [`DropReason`], where) or a loop, detected when a location sees the
//! same packet headers again (TTL aside), not only when TTL runs out.
//!
//! This is the symbolic (header-level) walk used by `trace` and, later, by
//! `verify` and the frame pipeline.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use arrayvec::ArrayVec;
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;

use crate::control::ControlPlane;
use crate::control::bgp::{self, Node};
use crate::control::effective::{self, NextHopType, Table};
use crate::fib::{Fib, FibSet};
use crate::topology::*;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ESP: u8 = 50;
/// Walks longer than this many steps are reported as a loop by hop limit.
pub const MAX_STEPS: usize = 512;
/// Most IP headers a packet carries (the original plus nested tunnels).
pub const MAX_LAYERS: usize = 8;
/// TTL of packets the tool originates, and of outer headers added on encap.
pub const DEFAULT_TTL: u8 = 64;
/// IP datagram length of packets the tool originates (a TCP SYN with options).
pub const DEFAULT_LEN: usize = 60;

pub mod frame;
pub mod traffic;

/// One IP header's worth of flow fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.proto {
            PROTO_TCP => "tcp",
            PROTO_UDP => "udp",
            PROTO_ICMP => "icmp",
            PROTO_ESP => "esp",
            _ => "ip",
        };
        if matches!(self.proto, PROTO_TCP | PROTO_UDP) {
            write!(
                f,
                "{p} {}:{} → {}:{}",
                self.src, self.sport, self.dst, self.dport
            )
        } else {
            write!(f, "{p} {} → {}", self.src, self.dst)
        }
    }
}

/// How an outer header wraps the one below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Encap {
    /// RFC 7348: UDP to the tunnel's port (4789), VNI.
    Vxlan { vni: u32 },
    /// RFC 4303 tunnel mode, in UDP 4500 (NAT-T) or raw (IP protocol 50).
    Esp { spi: u32, udp: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layer {
    pub header: Header,
    pub ttl: u8,
    /// Set on outer layers: how this layer wraps the one below.
    pub encap: Option<Encap>,
    /// Length of this layer's IP datagram in bytes (for MTU checks, R55).
    pub len: usize,
}

/// How a walk's header stack (loop detection's "state", TTLs aside) came
/// from an earlier one: a walk's states form a tree rooted at the stack it
/// started with (state 0); state `s` ≥ 1 is `WalkBuf::states[s - 1]`.
/// Headers change only by pushes and pops, so a push compares its layer
/// with the pushes already made on the same state, and a pop of a pushed
/// layer is its parent, compared with nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StateEdge {
    /// State `.0` with this outer header and encapsulation pushed.
    Push(u16, Header, Option<Encap>),
    /// State `.0`, the starting stack or a state popped from it, with its
    /// outer header popped (a packet that entered encapsulated). A stack
    /// rebuilt by pushing what was popped below the start is a new state
    /// the first time round (the loop is found at the next turn).
    Pop(u16),
}

/// A packet: `layers[0]` is the original, the last is the outermost.
/// Held inline (no allocation): at most [`MAX_LAYERS`] headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub layers: ArrayVec<Layer, MAX_LAYERS>,
}

impl Packet {
    pub fn new(header: Header) -> Self {
        Packet::with_ttl(header, DEFAULT_TTL)
    }
    pub fn with_ttl(header: Header, ttl: u8) -> Self {
        Packet::sized(header, ttl, DEFAULT_LEN)
    }
    /// A packet whose IP datagram is `len` bytes long.
    pub fn sized(header: Header, ttl: u8, len: usize) -> Self {
        let mut layers = ArrayVec::new();
        layers.push(Layer {
            header,
            ttl,
            encap: None,
            len,
        });
        Packet { layers }
    }
    /// Makes this packet a new one of one layer, in place (the fast path's
    /// way to reuse a walk buffer without moving the whole inline array).
    #[inline]
    pub fn reset(&mut self, header: Header, ttl: u8, len: usize) {
        self.layers.clear();
        self.layers.push(Layer {
            header,
            ttl,
            encap: None,
            len,
        });
    }
    pub fn outer(&self) -> &Layer {
        self.layers.last().expect("a packet has at least one layer")
    }
    fn outer_mut(&mut self) -> &mut Layer {
        self.layers
            .last_mut()
            .expect("a packet has at least one layer")
    }
}

/// Why a packet was dropped: the one documented list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// No effective route matches the destination.
    NoRoute,
    /// The matching route's next hop type is `None` (reserved ranges, UDR None).
    RouteNone,
    /// No NIC or load balancer owns the destination (or next hop) where the route points (R51).
    NoOwner,
    /// A NIC without IP forwarding got a packet not addressed to it (R44).
    IpForwardingDisabled,
    /// A NIC without IP forwarding sent a packet with a foreign source (R44).
    SpoofedSource,
    /// A VM (not an NVA) received traffic to forward: its guest does not route.
    NotARouter,
    /// TTL ran out in an NVA's OS (it would send Time Exceeded).
    TtlExceeded,
    /// Forwarded traffic over a peering without allow-forwarded-traffic (R49).
    PeeringForwardedNotAllowed,
    /// The peering does not allow virtual network access.
    PeeringAccessDisabled,
    /// The NVA's OS has no route for the destination.
    NvaNoRoute,
    /// The NVA's OS route is a blackhole.
    NvaBlackhole,
    /// The NVA is down (speaker-down event).
    NvaDown,
    /// The gateway is down (speaker-down event).
    GatewayDown,
    /// No connected site holds the destination.
    GatewayNoRoute,
    /// Tunnel traffic that matches no tunnel of the receiver.
    UnknownTunnel,
    /// A site got a packet for an address it does not hold.
    SiteNoRoute,
    /// The packet no longer fits the tunnel's MTU after encapsulation (R55).
    MtuExceeded,
    /// The overlay tunnel is down (tunnel-down event).
    TunnelDown,
    /// Caught by a change: the node or tunnel failed and the tables do not
    /// show it yet (between a failure and the reconverged snapshot).
    Converging,
    /// Replay: truncated or inconsistent headers.
    Malformed,
    /// Replay: not an IP packet (ARP, LLDP, ...).
    NotIp,
    /// Replay: a link type vnetplane does not read.
    UnsupportedLink,
    /// Replay: no NIC or site holds the packet's source address (and no NIC was given).
    NoIngressNic,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: [DropReason; 23] = [
        DropReason::NoRoute,
        DropReason::RouteNone,
        DropReason::NoOwner,
        DropReason::IpForwardingDisabled,
        DropReason::SpoofedSource,
        DropReason::NotARouter,
        DropReason::TtlExceeded,
        DropReason::PeeringForwardedNotAllowed,
        DropReason::PeeringAccessDisabled,
        DropReason::NvaNoRoute,
        DropReason::NvaBlackhole,
        DropReason::NvaDown,
        DropReason::GatewayDown,
        DropReason::GatewayNoRoute,
        DropReason::UnknownTunnel,
        DropReason::SiteNoRoute,
        DropReason::MtuExceeded,
        DropReason::TunnelDown,
        DropReason::Converging,
        DropReason::Malformed,
        DropReason::NotIp,
        DropReason::UnsupportedLink,
        DropReason::NoIngressNic,
    ];

    pub fn code(self) -> &'static str {
        match self {
            DropReason::NoRoute => "no-route",
            DropReason::RouteNone => "route-none",
            DropReason::NoOwner => "no-owner",
            DropReason::IpForwardingDisabled => "ip-forwarding-disabled",
            DropReason::SpoofedSource => "spoofed-source",
            DropReason::NotARouter => "not-a-router",
            DropReason::TtlExceeded => "ttl-exceeded",
            DropReason::PeeringForwardedNotAllowed => "peering-forwarded-not-allowed",
            DropReason::PeeringAccessDisabled => "peering-access-disabled",
            DropReason::NvaNoRoute => "nva-no-route",
            DropReason::NvaBlackhole => "nva-blackhole",
            DropReason::NvaDown => "nva-down",
            DropReason::GatewayDown => "gateway-down",
            DropReason::GatewayNoRoute => "gateway-no-route",
            DropReason::UnknownTunnel => "unknown-tunnel",
            DropReason::SiteNoRoute => "site-no-route",
            DropReason::MtuExceeded => "mtu-exceeded",
            DropReason::TunnelDown => "tunnel-down",
            DropReason::Converging => "converging",
            DropReason::Malformed => "malformed",
            DropReason::NotIp => "not-ip",
            DropReason::UnsupportedLink => "unsupported-link",
            DropReason::NoIngressNic => "no-ingress-nic",
        }
    }
}

/// How a walk ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered {
        at: String,
    },
    Dropped {
        at: String,
        reason: DropReason,
    },
    /// `cycle` lists the nodes that repeat; `route` the route that sent it back.
    Loop {
        at: String,
        cycle: Vec<String>,
        route: String,
    },
}

/// The route an SDN hop used, as the effective table shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteUsed {
    pub source: &'static str,
    pub prefix: String,
    #[serde(rename = "nextHopType")]
    pub next_hop_type: &'static str,
    #[serde(rename = "nextHopIpAddress")]
    pub next_hop_ips: Vec<String>,
}

/// What a hop did to the packet's bytes (for rendering frames).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub ttl_decrement: bool,
    /// Pushed an outer header.
    pub encap: Option<(Encap, Header)>,
    /// Popped an outer header.
    pub decap: Option<Encap>,
    /// The outer packet is fragmented to this MTU from here on (R55).
    pub fragment: Option<u16>,
}

/// One step of a walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// Where the hop happened (the node's name is [`World::name`]).
    #[serde(skip)]
    pub at: At,
    /// The node's name; empty in walks that record no text.
    pub node: String,
    pub kind: &'static str,
    /// The outermost header as this hop saw it (text walks only).
    pub packet: String,
    pub ttl: u8,
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Box<RouteUsed>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encap: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decap: Option<String>,
    #[serde(skip)]
    pub effects: Effects,
}

#[derive(Clone, Debug)]
pub struct Trace {
    pub hops: Vec<Hop>,
    pub verdict: Verdict,
}

/// Where a walk ended, without text: what the forwarding pipeline counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    At(At),
    Internet,
    ServiceEndpoint,
    /// A platform address answered by the host (R19).
    Platform(IpAddr),
    RouteServer(RouteServerId),
    /// Before any walk: the frame could not be read or has no sender.
    Capture,
}

/// How a walk ended, without text (see [`Verdict`] for the explained form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Delivered(Place),
    Dropped(Place, DropReason),
    /// The location where the packet came back; `first`: the hop where the
    /// cycle starts (`None`: the hop limit ran out).
    Loop {
        at: At,
        first: Option<usize>,
    },
}

impl Outcome {
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Delivered(_) => "delivered",
            Outcome::Dropped(..) => "dropped",
            Outcome::Loop { .. } => "loop",
        }
    }
    pub fn place(&self) -> Place {
        match *self {
            Outcome::Delivered(p) | Outcome::Dropped(p, _) => p,
            Outcome::Loop { at, .. } => Place::At(at),
        }
    }
}

/// A location of the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum At {
    NicOut(NicId),
    NicIn(NicId),
    Nva(NvaId),
    /// A gateway sending toward its sites.
    Gateway(GatewayId),
    /// A site receiving.
    Site(SiteId),
    /// A site sending into Azure (its routers' choice of gateway or tunnel).
    SiteOut(SiteId),
    /// A gateway forwarding traffic from its sites with the GatewaySubnet's routes (R40).
    GatewayIn(GatewayId),
}

#[derive(Clone, Copy, Debug)]
enum Owner {
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
    nva_fibs: Vec<Arc<(Fib<u32>, Fib<u32>)>>,
    /// Each site's best BGP routes compiled: values are positions in its
    /// best list (`bgp.best`), the longest match a site's routers use.
    site_fibs: Vec<Arc<Fib<u32>>>,
    /// Each subnet's effective routes, once an explained walk needs them.
    tables: Box<[OnceLock<Table>]>,
    /// Per subnet, per action of its compiled table, per next-hop address
    /// of a virtual-appliance or gateway action: where the address leads
    /// from the subnet's VNet (empty for other actions). Resolved once per
    /// world, not per packet (two owner lookups a hop saved).
    next_hops: Vec<Box<[Box<[NextHopAt]>]>>,
    /// What depends only on the topology's objects (not on routes): shared
    /// by the worlds of route-only updates.
    fixed: Arc<Fixed>,
}

/// The part of a world the topology's objects decide.
struct Fixed {
    /// Per site, its static connections' reach: the served VNets' address
    /// spaces (a gateway's VNet and the spokes using it as remote
    /// gateway), each prefix valued with the first connection (in the
    /// site's order) whose reach contains it (see [`site_static`]).
    site_static: Vec<Fib<u32>>,
    /// Node names ("nic x", "nva y", ...), by kind and index.
    names: Names,
    /// Each gateway's VNet's GatewaySubnet (R40).
    gateway_subnet: Vec<Option<SubnetId>>,
    /// Each NVA's own addresses (its NICs' private and public IPs).
    nva_ips: Vec<Vec<IpAddr>>,
    owners: HashMap<AddrKey, Owner>,
    nic_nva: Vec<Option<NvaId>>,
    /// First NIC (in declaration order) holding each address.
    by_ip: HashMap<AddrKey, NicId>,
    /// (vnet, address) → the owner of the address in a VNet Connected to
    /// `vnet` (the lowest such VNet), and the peering stored on `vnet`.
    peered: HashMap<AddrKey, (VnetId, Owner, PeeringId)>,
    /// Per peering: what its crossing checks (R45, R49), from its own
    /// settings and those of the peering back.
    peering_rule: Vec<PeeringRule>,
    /// Per VNet: its address space, for the per-packet "is this source
    /// from the VNet" test of peerings (R45).
    vnet_ranges: Vec<effective::Ranges>,
    /// Per subnet: its prefixes (an NVA's egress NIC for a next hop).
    subnet_ranges: Vec<effective::Ranges>,
}

/// A (scope, address) map key as integers: the scope (a VNet's index, or
/// 0) shifted left once with the family in the low bit, and the address.
/// An `IpAddr` in a tuple key was copied to the stack and read back across
/// two stores at every lookup (a store-forwarding stall under perf); the
/// integers are read from where the address lies.
type AddrKey = (u32, u128);

#[inline]
fn addr_key(scope: u32, ip: &IpAddr) -> AddrKey {
    match ip {
        IpAddr::V4(a) => (scope << 1, u128::from(u32::from(*a))),
        IpAddr::V6(a) => (scope << 1 | 1, u128::from(*a)),
    }
}

/// The scope and address of a key.
fn key_addr((s, a): AddrKey) -> (u32, IpAddr) {
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
enum NextHopAt {
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
fn resolve_next_hops(t: &Topology, fibs: &FibSet, fixed: &Fixed) -> Vec<Box<[Box<[NextHopAt]>]>> {
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
enum PeeringRule {
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
fn nva_fibs(cp: &ControlPlane, prev: Option<&World>) -> Vec<Arc<(Fib<u32>, Fib<u32>)>> {
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

/// Each site's best BGP routes as a longest-prefix-match table (values:
/// positions in the site's best list), reused from `prev` for a site whose
/// best routes did not change.
fn site_fibs(cp: &ControlPlane, prev: Option<&World>) -> Vec<Arc<Fib<u32>>> {
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
fn site_static(t: &Topology, site: &Site) -> Fib<u32> {
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

impl Fixed {
    /// The owner of `ip` in `vnet`.
    #[inline]
    fn owner_in(&self, vnet: VnetId, ip: &IpAddr) -> Option<Owner> {
        self.owners.get(&addr_key(vnet.0, ip)).copied()
    }

    /// The owner of `ip` in a VNet Connected to `vnet`, and the peering
    /// stored on `vnet` that reaches it.
    #[inline]
    fn owner_peered(&self, vnet: VnetId, ip: &IpAddr) -> Option<(Owner, PeeringId)> {
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
                    Some(b) if !(p.allow_forwarded_traffic && b.allow_forwarded_traffic) => {
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
                    .collect()
            })
            .collect();
        Fixed {
            site_static: t.sites.iter().map(|site| site_static(t, site)).collect(),
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

/// A per-flow hash (R18: the fields are UNCONFIRMED; a 5-tuple is modelled).
pub fn flow_hash(h: &Header) -> u64 {
    // FNV-1a over the addresses as 16-byte little-endian integers, then
    // proto/ports as a 16-byte integer. Zero bytes only multiply by the
    // prime, so an IPv4 address's 12 high zero bytes are one multiplication
    // by PRIME^12 (the same value, a third of the steps).
    const PRIME: u64 = 0x0100_0000_01b3;
    const fn power(n: u32) -> u64 {
        let (mut x, mut i) = (1u64, 0);
        while i < n {
            x = x.wrapping_mul(PRIME);
            i += 1;
        }
        x
    }
    fn eat(mut x: u64, bytes: &[u8]) -> u64 {
        for &b in bytes {
            x ^= u64::from(b);
            x = x.wrapping_mul(PRIME);
        }
        x
    }
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for a in [h.src, h.dst] {
        x = match a {
            IpAddr::V4(v) => eat(x, &u32::from(v).to_le_bytes()).wrapping_mul(power(12)),
            IpAddr::V6(v) => eat(x, &u128::from(v).to_le_bytes()),
        };
    }
    let ports = u64::from(h.proto) << 32 | u64::from(h.sport) << 16 | u64::from(h.dport);
    eat(x, &ports.to_le_bytes()[..5]).wrapping_mul(power(11))
}

#[derive(Default)]
struct Names {
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
        World {
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

    /// A site's static connections: the first (its position in the site's
    /// list) whose gateway serves a VNet holding `dst` (the gateway's own
    /// VNet or a spoke using it as remote gateway).
    pub fn site_connection(&self, s: SiteId, dst: IpAddr) -> Option<usize> {
        let k = *self.fixed.site_static.get(s.idx())?.lookup(dst)?;
        Some(k as usize)
    }

    /// The NIC a captured packet enters from: the one holding its source.
    pub fn nic_for_source(&self, ip: IpAddr) -> Option<NicId> {
        self.fixed.by_ip.get(&addr_key(0, &ip)).copied()
    }

    fn t(&self) -> &Topology {
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
    fn peering_check(
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

    fn route_used(&self, subnet: SubnetId, dst: IpAddr) -> Option<RouteUsed> {
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

    /// Walks a packet sent by the VM of NIC `from`.
    pub fn walk(&self, from: NicId, packet: Packet) -> Trace {
        self.walk_from(Start::Nic(from), packet)
    }

    /// Walks a packet from a NIC's VM or from an on-premises site.
    pub fn walk_from(&self, start: Start, packet: Packet) -> Trace {
        self.walk_opts(start, packet, true)
    }

    /// The same, naming the route of each SDN hop only when `explain` (verify
    /// walks without, and re-walks a finding's packet with).
    pub fn walk_opts(&self, start: Start, packet: Packet, explain: bool) -> Trace {
        self.walk_forced(start, packet, explain, Vec::new()).0
    }

    /// A walk with the first multi-way (ECMP, load balancer) choices forced;
    /// returns the trace and the (options, chosen) of every such decision.
    pub fn walk_forced(
        &self,
        start: Start,
        packet: Packet,
        explain: bool,
        forced: Vec<usize>,
    ) -> (Trace, Vec<(usize, usize)>) {
        let mut buf = WalkBuf {
            packet,
            forced,
            ..WalkBuf::default()
        };
        let outcome = self.run::<true>(start, &mut buf, &NO_PENDING, true, explain);
        let verdict = self.verdict(outcome, &buf.hops);
        (
            Trace {
                hops: buf.hops,
                verdict,
            },
            buf.decisions,
        )
    }

    /// The forwarding fast path: walks `buf.packet` from `start` recording
    /// hops without text (node names, decisions and routes stay empty; `at`,
    /// `kind`, `ttl` and `effects` are set) in buffers reused from walk to
    /// walk: once they have grown, a walk allocates nothing.
    pub fn forward(&self, start: Start, buf: &mut WalkBuf) -> Outcome {
        self.forward_with(start, buf, &NO_PENDING, false)
    }

    /// The fast path with failures the tables do not show yet; with `text`,
    /// hops record text as [`World::walk_from`] does (for pcapng comments),
    /// still in reused buffers.
    pub fn forward_with(
        &self,
        start: Start,
        buf: &mut WalkBuf,
        pending: &Pending,
        text: bool,
    ) -> Outcome {
        buf.forced.clear();
        self.run::<true>(start, buf, pending, text, false)
    }

    /// The counting fast path: the outcome and the number of hops
    /// (`buf.steps`), with no hop recorded (`buf.hops` stays empty).
    pub fn forward_counting(&self, start: Start, buf: &mut WalkBuf, pending: &Pending) -> Outcome {
        buf.forced.clear();
        self.run::<false>(start, buf, pending, false, false)
    }

    /// A walk; `REC` false only counts hops (`buf.hops` stays empty, no
    /// text), a separate build of the walk with the recording compiled out.
    fn run<const REC: bool>(
        &self,
        start: Start,
        buf: &mut WalkBuf,
        pending: &Pending,
        text: bool,
        explain: bool,
    ) -> Outcome {
        buf.hops.clear();
        buf.steps = 0;
        buf.seen.clear();
        buf.seen_bits = 0;
        buf.states.clear();
        buf.state = 0;
        buf.decisions.clear();
        buf.looked.clear();
        buf.looked_all = true;
        let at = match start {
            Start::Nic(n) => At::NicOut(n),
            Start::Site(s) => At::SiteOut(s),
        };
        let mut w = Walk::<REC> {
            world: self,
            pending,
            b: buf,
            text,
            explain,
        };
        w.run(at)
    }

    /// The explained verdict of an outcome, given the walk's hops.
    pub fn verdict(&self, o: Outcome, hops: &[Hop]) -> Verdict {
        match o {
            Outcome::Delivered(p) => Verdict::Delivered {
                at: self.place_name(p).into_owned(),
            },
            Outcome::Dropped(p, reason) => Verdict::Dropped {
                at: self.place_name(p).into_owned(),
                reason,
            },
            Outcome::Loop { at, first: None } => Verdict::Loop {
                at: self.name(at).to_string(),
                cycle: Vec::new(),
                route: format!("hop limit ({MAX_STEPS} steps)"),
            },
            Outcome::Loop {
                at,
                first: Some(first),
            } => {
                let cyc = hops.get(first..).unwrap_or_default();
                let cycle = cyc
                    .iter()
                    .map(|h| format!("{} ({})", self.name(h.at), h.kind))
                    .collect();
                let route = cyc
                    .iter()
                    .rev()
                    .find_map(|h| h.route.as_ref())
                    .map(|r| {
                        format!(
                            "{} {} → {} {}",
                            r.source,
                            r.prefix,
                            r.next_hop_type,
                            r.next_hop_ips.join(", ")
                        )
                    })
                    .unwrap_or_default();
                Verdict::Loop {
                    at: self.name(at).to_string(),
                    cycle,
                    route,
                }
            }
        }
    }

    /// Every ECMP / load-balancer branch of a packet's walk (at most `limit`):
    /// a depth-first enumeration of the choices at each multi-way decision.
    pub fn walk_branches(
        &self,
        start: Start,
        packet: &Packet,
        explain: bool,
        limit: usize,
    ) -> Vec<Trace> {
        let mut out = Vec::new();
        let mut stack: Vec<Vec<usize>> = vec![Vec::new()];
        while let Some(forced) = stack.pop() {
            if out.len() >= limit {
                break;
            }
            let depth = forced.len();
            let (tr, decisions) = self.walk_forced(start, packet.clone(), explain, forced);
            // Branch on every decision not forced by this walk.
            for j in (depth..decisions.len()).rev() {
                let (n, chosen) = decisions[j];
                for alt in (0..n).filter(|&a| a != chosen) {
                    let mut f: Vec<usize> = decisions[..j].iter().map(|d| d.1).collect();
                    f.push(alt);
                    stack.push(f);
                }
            }
            out.push(tr);
        }
        out
    }

    /// The site a captured packet comes from: the one holding its source.
    pub fn site_for_source(&self, ip: IpAddr) -> Option<SiteId> {
        self.t()
            .sites
            .iter()
            .position(|s| s.cpe == Some(ip) || s.prefixes.iter().any(|p| p.contains(&ip)))
            .map(|i| SiteId(i as u32))
    }
}

/// Failures the dataplane already suffers while its tables still show the
/// state before them: what an event does at once, before reconvergence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Speakers (NVAs, gateways) that stopped forwarding.
    pub speakers: Vec<Node>,
    /// Tunnels that stopped: (owner NVA or site, index into its tunnels).
    pub tunnels: Vec<(Node, usize)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.speakers.is_empty() && self.tunnels.is_empty()
    }
}

static NO_PENDING: Pending = Pending {
    speakers: Vec::new(),
    tunnels: Vec::new(),
};

/// Where a walk starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Nic(NicId),
    Site(SiteId),
}

/// A walk's reusable buffers: the packet to walk (changed in place by
/// encapsulation, TTL), the hops recorded, and the walker's scratch space.
#[derive(Clone, Debug)]
pub struct WalkBuf {
    pub packet: Packet,
    pub hops: Vec<Hop>,
    /// (location, header state) and the index of the hop where first seen;
    /// walks are short, so a vector beats a hash map.
    seen: Vec<((At, u16), usize)>,
    /// A 64-bit filter of `seen`'s keys: a key whose bit is clear was not
    /// seen (most steps skip the list search).
    seen_bits: u64,
    /// The header stacks this walk has had besides the one it started
    /// with, each as the change from an earlier one (see [`StateEdge`]).
    states: Vec<StateEdge>,
    /// The current header stack: 0 the starting one, `s` `states[s - 1]`.
    state: u16,
    /// ECMP / load-balancer choices to force, in decision order (the rest
    /// follow the flow hash).
    forced: Vec<usize>,
    /// (options, chosen) at each multi-way decision met.
    decisions: Vec<(usize, usize)>,
    /// Every address the walk looked up in a table (subnet FIBs, NVA OS
    /// tables, a site's BGP routes), in lookup order, repeats included,
    /// while there is room: a walk whose looked-up addresses no changed
    /// prefix covers walks the same under the new tables (what lets the
    /// flow cache keep flows across updates). Only a walk whose outcome is
    /// cached reads them ([`WalkBuf::looked_set`]): the walk appends.
    looked: ArrayVec<IpAddr, MAX_LOOKUPS>,
    /// `looked` holds every address looked up (no overflow).
    looked_all: bool,
    /// Hops walked (recorded in `hops` or not).
    pub steps: usize,
}

/// Distinct addresses a walk's looked-up set holds (see
/// [`WalkBuf::looked_set`]).
pub const MAX_LOOKED: usize = 4;

/// Lookups a walk records (a VXLAN path makes six).
const MAX_LOOKUPS: usize = 16;

impl WalkBuf {
    /// The distinct addresses the last walk looked up in a table, when it
    /// recorded them all and they are at most [`MAX_LOOKED`].
    pub fn looked_set(&self) -> Option<ArrayVec<IpAddr, MAX_LOOKED>> {
        if !self.looked_all {
            return None;
        }
        let mut set = ArrayVec::new();
        for &a in &self.looked {
            if !set.contains(&a) {
                set.try_push(a).ok()?;
            }
        }
        Some(set)
    }

    /// The state an edge leads to: one met before, or a new one.
    fn state_after(&mut self, e: StateEdge) -> u16 {
        let i = match self.states.iter().position(|x| *x == e) {
            Some(i) => i,
            None => {
                self.states.push(e);
                self.states.len() - 1
            }
        };
        (i + 1) as u16
    }
}

impl Default for WalkBuf {
    fn default() -> Self {
        WalkBuf {
            packet: Packet {
                layers: ArrayVec::new(),
            },
            hops: Vec::with_capacity(16),
            seen: Vec::with_capacity(16),
            seen_bits: 0,
            states: Vec::with_capacity(4),
            state: 0,
            forced: Vec::new(),
            decisions: Vec::new(),
            looked: ArrayVec::new(),
            looked_all: true,
            steps: 0,
        }
    }
}

struct Walk<'w, const REC: bool> {
    world: &'w World,
    pending: &'w Pending,
    /// The packet, the hops, and scratch space.
    b: &'w mut WalkBuf,
    /// Record node names, packets and decisions as text.
    text: bool,
    /// Name the route of each SDN hop (costs a table walk per hop).
    explain: bool,
}

enum Step {
    Go(At),
    Done(Outcome),
}

/// A location and header state mixed into a few bits (for `seen_bits`).
#[inline]
fn seen_hash((at, state): (At, u16)) -> u32 {
    let (kind, i) = match at {
        At::NicOut(x) => (0, x.0),
        At::NicIn(x) => (1, x.0),
        At::Nva(x) => (2, x.0),
        At::Gateway(x) => (3, x.0),
        At::Site(x) => (4, x.0),
        At::SiteOut(x) => (5, x.0),
        At::GatewayIn(x) => (6, x.0),
    };
    (i.wrapping_mul(8) + kind + u32::from(state) * 0x9e37).wrapping_mul(0x9e37_79b9) >> 26
}

/// Text for the trace, built only when the walk records text: the fast path
/// never formats.
macro_rules! say {
    ($w:expr, $($arg:tt)*) => {
        if $w.text() { format!($($arg)*) } else { String::new() }
    };
}

impl<const REC: bool> Walk<'_, REC> {
    /// Whether hops record text (never on the counting walk, `REC` false,
    /// which the compiler then builds without any of it).
    #[inline(always)]
    fn text(&self) -> bool {
        REC && self.text
    }

    #[inline]
    fn hop(&mut self, at: At, kind: &'static str, decision: String) -> usize {
        let i = self.b.steps;
        self.b.steps += 1;
        if !REC {
            return i;
        }
        self.record_hop(at, kind, decision);
        i
    }

    /// The recording half of [`Walk::hop`] (out of line: the counting
    /// path never takes it).
    #[inline(never)]
    fn record_hop(&mut self, at: At, kind: &'static str, decision: String) {
        let o = self.b.packet.outer();
        let (node, packet) = if self.text() {
            (self.world.name(at).to_string(), o.header.to_string())
        } else {
            (String::new(), String::new())
        };
        self.b.hops.push(Hop {
            at,
            node,
            kind,
            packet,
            ttl: o.ttl,
            decision,
            route: None,
            encap: None,
            decap: None,
            effects: Effects::default(),
        });
    }

    /// Fills in hop `i` (nothing when the walk only counts hops).
    #[inline]
    fn set_hop(&mut self, i: usize, f: impl FnOnce(&mut Hop)) {
        if REC && let Some(h) = self.b.hops.get_mut(i) {
            f(h);
        }
    }

    /// Why a speaker does not forward: down in the tables, or failed and
    /// not reconverged yet.
    fn speaker_fails(&self, n: Node) -> Option<DropReason> {
        if self.world.cp.conditions.down_speakers.contains(&n) {
            Some(match n {
                Node::Gateway(_) => DropReason::GatewayDown,
                _ => DropReason::NvaDown,
            })
        } else if self.pending.speakers.contains(&n) {
            Some(DropReason::Converging)
        } else {
            None
        }
    }

    /// Why a tunnel carries nothing: down, or failed and not reconverged yet.
    fn tunnel_fails(&self, owner: Node, k: usize) -> Option<DropReason> {
        if self.world.cp.conditions.down_tunnels.contains(&(owner, k)) {
            Some(DropReason::TunnelDown)
        } else if self.pending.tunnels.contains(&(owner, k)) {
            Some(DropReason::Converging)
        } else {
            None
        }
    }

    /// Records an address about to be looked up in a table.
    #[inline]
    fn looked_up(&mut self, a: IpAddr) {
        let b = &mut *self.b;
        if b.looked.try_push(a).is_err() {
            b.looked_all = false;
        }
    }

    /// Pushes an outer header; false when the packet already has
    /// [`MAX_LAYERS`] headers.
    fn push_layer(&mut self, l: Layer) -> bool {
        if self.b.packet.layers.try_push(l).is_err() {
            return false;
        }
        self.b.state = self
            .b
            .state_after(StateEdge::Push(self.b.state, l.header, l.encap));
        true
    }

    /// Pops the outer header (decapsulation).
    fn pop_layer(&mut self) {
        self.b.packet.layers.pop();
        let b = &mut *self.b;
        b.state = match b.state.checked_sub(1).map(|i| b.states[usize::from(i)]) {
            Some(StateEdge::Push(parent, ..)) => parent,
            _ => b.state_after(StateEdge::Pop(b.state)),
        };
    }

    fn run(&mut self, mut at: At) -> Outcome {
        for _ in 0..MAX_STEPS {
            // Every cycle of hops passes an SDN decision (a NIC's egress or
            // a gateway forwarding from its sites): a NIC's ingress leads
            // only to its NVA, an NVA only to a NIC's egress or to itself
            // one header fewer, a site only to its own delivery. Tracking
            // states there alone finds every loop.
            if matches!(at, At::NicOut(_) | At::GatewayIn(_)) {
                let key = (at, self.b.state);
                let bit = 1u64 << (seen_hash(key) & 63);
                if self.b.seen_bits & bit != 0
                    && let Some(&(_, first)) = self.b.seen.iter().find(|(k, _)| *k == key)
                {
                    return Outcome::Loop {
                        at,
                        first: Some(first),
                    };
                }
                self.b.seen_bits |= bit;
                self.b.seen.push((key, self.b.steps));
            }
            let step = match at {
                At::NicOut(n) => self.nic_out(n),
                At::NicIn(n) => self.nic_in(n),
                At::Nva(n) => self.nva(n),
                At::Gateway(g) => self.gateway(g),
                At::Site(s) => self.site(s),
                At::SiteOut(s) => self.site_out(s),
                At::GatewayIn(g) => self.gateway_in(g),
            };
            match step {
                Step::Go(next) => at = next,
                Step::Done(v) => return v,
            }
        }
        Outcome::Loop { at, first: None }
    }

    fn drop_at(&self, at: At, reason: DropReason) -> Step {
        Step::Done(Outcome::Dropped(Place::At(at), reason))
    }

    fn nic_out(&mut self, n: NicId) -> Step {
        let nic = self.world.t().nic(n);
        self.sdn_out(At::NicOut(n), "nic-egress", nic.subnet, nic.vnet, Some(n))
    }

    /// A gateway forwards what its sites send with the GatewaySubnet's
    /// effective routes (R40); the allow-forwarded-traffic check does not
    /// apply to traffic a gateway forwards (R49).
    fn gateway_in(&mut self, g: GatewayId) -> Step {
        let w = self.world;
        let t = w.t();
        let at = At::GatewayIn(g);
        if let Some(r) = self.speaker_fails(Node::Gateway(g)) {
            self.hop(at, "gateway-in", say!(self, "the gateway is down"));
            return self.drop_at(at, r);
        }
        let vnet = t.gateway(g).vnet;
        let Some(subnet) = w.fixed.gateway_subnet[g.idx()] else {
            self.hop(
                at,
                "gateway-in",
                say!(self, "the gateway's VNet has no GatewaySubnet"),
            );
            return self.drop_at(at, DropReason::NoRoute);
        };
        self.sdn_out(at, "gateway-in", subnet, vnet, None)
    }

    /// A site's routers: into a tunnel when BGP inside it taught the route,
    /// else to the gateway that taught it (or whose VNet holds the
    /// destination, for static VPN connections).
    fn site_out(&mut self, s: SiteId) -> Step {
        let w = self.world;
        let t = w.t();
        let site = &t.sites[s.idx()];
        let at = At::SiteOut(s);
        let me = Node::Site(s);
        let bgp = &w.cp.bgp;
        for depth in 0..3 {
            let dst = self.b.packet.outer().header.dst;
            self.looked_up(dst);
            let best = w.site_best(s, dst);
            let mut choice: Option<(String, Step)> = None;
            if let Some((prefix, set)) = best
                && let Some(path) = set.first()
                && let Some(si) = path.session
            {
                let sess = &bgp.sessions[si];
                let peer = sess.other(me);
                let cfg = if sess.a == me { sess.cfg_a } else { sess.cfg_b };
                let over = cfg.and_then(|i| site.bgp.get(i)).and_then(|c| c.over);
                match (peer, over) {
                    (Node::Nva(_), Some(k)) if depth == 0 => {
                        let Some(tun) = site.tunnels.get(k) else {
                            break;
                        };
                        if let Some(r) = self.tunnel_fails(me, k) {
                            self.hop(
                                at,
                                "site-out",
                                say!(
                                    self,
                                    "BGP route {prefix} into tunnel {}, which is down",
                                    tun.name
                                ),
                            );
                            return self.drop_at(at, r);
                        }
                        let inner = self.b.packet.outer().header;
                        let (enc, header) = encapsulate(tun, &inner);
                        let len = encapsulated_len(enc, self.b.packet.outer().len);
                        let i = self.hop(
                            at,
                            "site-out",
                            say!(
                                self,
                                "BGP route {prefix} from {} into tunnel {}: encapsulated",
                                peer.name(t),
                                tun.name
                            ),
                        );
                        let v = self.text().then(|| describe_encap(enc, &header));
                        self.set_hop(i, |h| h.encap = v);
                        self.set_hop(i, |h| h.effects.encap = Some((enc, header)));
                        if !self.push_layer(Layer {
                            header,
                            ttl: DEFAULT_TTL,
                            encap: Some(enc),
                            len,
                        }) {
                            break;
                        }
                        continue;
                    }
                    (Node::Gateway(g), _) => {
                        choice = Some((
                            say!(
                                self,
                                "BGP route {prefix} from gateway {}",
                                t.gateway(g).name
                            ),
                            Step::Go(At::GatewayIn(g)),
                        ));
                    }
                    (Node::Msee(_), _) => {
                        if let Some(g) = t.gateways.iter().position(|g| {
                            effective::gateway_next_hops(g).contains(&path.next_hop)
                                || g.ips.contains(&path.next_hop)
                        }) {
                            choice = Some((
                                say!(
                                    self,
                                    "BGP route {prefix} over ExpressRoute to gateway {}",
                                    t.gateways[g].name
                                ),
                                Step::Go(At::GatewayIn(GatewayId(g as u32))),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            if choice.is_none() {
                // Static connections: the gateway whose VNet (or transit spokes) holds dst.
                let served = w
                    .site_connection(s, dst)
                    .and_then(|k| site.connections.get(k));
                if let Some(c) = served {
                    choice = Some((
                        say!(self, "connection to gateway {}", t.gateway(c.gateway).name),
                        Step::Go(At::GatewayIn(c.gateway)),
                    ));
                }
            }
            return match choice {
                Some((why, step)) => {
                    self.hop(at, "site-out", why);
                    step
                }
                None => {
                    self.hop(
                        at,
                        "site-out",
                        say!(self, "the site has no route toward {dst}"),
                    );
                    self.drop_at(at, DropReason::SiteNoRoute)
                }
            };
        }
        self.hop(at, "site-out", say!(self, "tunnels nest too deep"));
        self.drop_at(at, DropReason::SiteNoRoute)
    }

    /// One SDN decision with a subnet's compiled table: a NIC's egress (with
    /// the anti-spoofing check of `nic`) or a gateway's forwarding.
    // Inlined (two callers), and `deliver_to` too: their `(String, Step)`
    // results otherwise go through memory on every hop (~270 instructions
    // a packet on the VXLAN walk, `examples/walkcount`).
    #[inline(always)]
    fn sdn_out(
        &mut self,
        at: At,
        kind: &'static str,
        subnet: SubnetId,
        vnet: VnetId,
        nic: Option<NicId>,
    ) -> Step {
        let w = self.world;
        let t = w.t();
        // The two addresses, read from the packet: a copy of the whole
        // header here was read back across two stack stores at every hop
        // (a store-forwarding stall: ~10 % of the walk's time under perf).
        let (src, dst) = {
            let h = &self.b.packet.outer().header;
            (h.src, h.dst)
        };
        if let Some(n) = nic
            && !t.nic(n).ip_forwarding
            && !t.nic(n).ips.contains(&src)
        {
            self.hop(
                at,
                kind,
                say!(
                    self,
                    "source is not the NIC's own address and IP forwarding is off (R44)"
                ),
            );
            return self.drop_at(at, DropReason::SpoofedSource);
        }
        if effective::PLATFORM_IPS.contains(&dst) {
            self.hop(
                at,
                kind,
                say!(self, "platform address: answered by the host (R19)"),
            );
            return Step::Done(Outcome::Delivered(Place::Platform(dst)));
        }
        let fib = &w.fibs.by_subnet[subnet.idx()];
        self.looked_up(dst);
        let action = fib.lookup_indexed(dst);
        let i = self.hop(at, kind, String::new());
        if REC && self.explain {
            let v = w.route_used(subnet, dst).map(Box::new);
            self.set_hop(i, |h| h.route = v);
        }
        let Some((ai, action)) = action else {
            let v = say!(self, "no route matches");
            self.set_hop(i, |h| h.decision = v);
            return self.drop_at(at, DropReason::NoRoute);
        };
        let (decision, next): (String, Step) = match action.next_hop_type {
            NextHopType::VnetLocal => match w.fixed.owner_in(vnet, &dst) {
                Some(o) => self.deliver_to(at, o, "local delivery in the VNet"),
                None => (
                    say!(self, "no NIC owns the destination in the VNet (R51)"),
                    self.drop_at(at, DropReason::NoOwner),
                ),
            },
            NextHopType::VNetPeering | NextHopType::VNetGlobalPeering => {
                match w.fixed.owner_peered(vnet, &dst) {
                    Some((o, pid)) => match w.peering_check(vnet, pid, src, nic.is_none()) {
                        Some(r) => (
                            say!(self, "peering {} refuses it", t.peerings[pid.idx()].name),
                            self.drop_at(at, r),
                        ),
                        None => self.deliver_to(
                            at,
                            o,
                            &say!(self, "over peering {}", t.peerings[pid.idx()].name),
                        ),
                    },
                    None => (
                        say!(self, "no NIC owns the destination in the peered VNet (R51)"),
                        self.drop_at(at, DropReason::NoOwner),
                    ),
                }
            }
            NextHopType::VirtualAppliance | NextHopType::VirtualNetworkGateway => {
                let n = action.ips.len();
                if n == 0 {
                    return self.finish_drop(
                        i,
                        "the route has no next-hop address",
                        at,
                        DropReason::NoOwner,
                    );
                }
                let k = if n == 1 {
                    0
                } else {
                    let h = self.b.packet.outer().header;
                    self.choose(n, || flow_hash(&h))
                };
                // Read in place: an `Option<IpAddr>` built on the stack
                // and read back stalled on store forwarding (perf: ~10 % of
                // the VXLAN walk's samples).
                let ip = &action.ips[k];
                let ecmp = if action.ips.len() > 1 {
                    say!(
                        self,
                        " (ECMP: flow hash picks {ip} of {})",
                        action.ips.len()
                    )
                } else {
                    String::new()
                };
                match w.next_hops[subnet.idx()][ai][k] {
                    NextHopAt::Local(o) => self.deliver_to(
                        at,
                        o,
                        &say!(self, "next hop {ip}{ecmp}, delivered unchanged (R43)"),
                    ),
                    NextHopAt::Peered(o, pid) => {
                        match w.peering_check(vnet, pid, src, nic.is_none()) {
                            Some(r) => (
                                say!(
                                    self,
                                    "next hop {ip} across peering {}, refused",
                                    t.peerings[pid.idx()].name
                                ),
                                self.drop_at(at, r),
                            ),
                            None => self.deliver_to(
                                at,
                                o,
                                &say!(
                                    self,
                                    "next hop {ip}{ecmp} across peering {}",
                                    t.peerings[pid.idx()].name
                                ),
                            ),
                        }
                    }
                    NextHopAt::Gateway(g) => (
                        say!(self, "to gateway {}{ecmp}", t.gateway(g).name),
                        Step::Go(At::Gateway(g)),
                    ),
                    NextHopAt::Nowhere => (
                        say!(
                            self,
                            "no NIC, load balancer or gateway owns next hop {ip} (R51)"
                        ),
                        self.drop_at(at, DropReason::NoOwner),
                    ),
                }
            }
            NextHopType::Internet => (
                say!(self, "leaves for the Internet"),
                Step::Done(Outcome::Delivered(Place::Internet)),
            ),
            NextHopType::VirtualNetworkServiceEndpoint => (
                say!(self, "to the Azure service over its endpoint"),
                Step::Done(Outcome::Delivered(Place::ServiceEndpoint)),
            ),
            NextHopType::None => (
                say!(self, "next hop type None: dropped"),
                self.drop_at(at, DropReason::RouteNone),
            ),
        };
        self.set_hop(i, |h| h.decision = decision);
        next
    }

    /// A multi-way choice: forced while forced choices remain, else by hash.
    /// (The flow hash is computed only for a real choice.)
    fn choose(&mut self, n: usize, hash: impl FnOnce() -> u64) -> usize {
        if n <= 1 {
            return 0;
        }
        let k = self.b.decisions.len();
        let c = self
            .b
            .forced
            .get(k)
            .copied()
            .filter(|&c| c < n)
            .unwrap_or_else(|| (hash() % n as u64) as usize);
        self.b.decisions.push((n, c));
        c
    }

    fn finish_drop(&mut self, i: usize, why: &str, at: At, r: DropReason) -> Step {
        self.set_hop(i, |h| h.decision = why.to_string());
        self.drop_at(at, r)
    }

    #[inline(always)]
    fn deliver_to(&mut self, at: At, o: Owner, how: &str) -> (String, Step) {
        let t = self.world.t();
        match o {
            Owner::Nic(n) => (
                say!(self, "{how} → nic {}", t.nic(n).name),
                Step::Go(At::NicIn(n)),
            ),
            Owner::LoadBalancer(l) => {
                let lb = &t.load_balancers[l.idx()];
                if lb.backends.is_empty() {
                    return (
                        say!(self, "{how} → load balancer {} has no backends", lb.name),
                        self.drop_at(at, DropReason::NoOwner),
                    );
                }
                let b = lb.backends[{
                    let h = self.b.packet.outer().header;
                    self.choose(lb.backends.len(), || flow_hash(&h))
                }];
                (
                    say!(
                        self,
                        "{how} → load balancer {} → backend nic {}",
                        lb.name,
                        t.nic(b).name
                    ),
                    Step::Go(At::NicIn(b)),
                )
            }
            Owner::Gateway(g) => {
                let gw = t.gateway(g);
                if gw.ips.contains(&self.b.packet.outer().header.dst) {
                    (
                        say!(self, "{how} → gateway {} itself", gw.name),
                        Step::Done(Outcome::Delivered(Place::At(At::Gateway(g)))),
                    )
                } else {
                    (
                        say!(self, "{how} → gateway {}", gw.name),
                        Step::Go(At::Gateway(g)),
                    )
                }
            }
            Owner::RouteServer(r) => {
                let rs = &t.route_servers[r.idx()];
                if rs.ips.contains(&self.b.packet.outer().header.dst) {
                    (
                        say!(self, "{how} → route server {}", rs.name),
                        Step::Done(Outcome::Delivered(Place::RouteServer(r))),
                    )
                } else {
                    (
                        say!(
                            self,
                            "{how} → route server {}, which is not in the data path (R22)",
                            rs.name
                        ),
                        self.drop_at(at, DropReason::NoOwner),
                    )
                }
            }
        }
    }

    fn nic_in(&mut self, n: NicId) -> Step {
        let w = self.world;
        let nic = w.t().nic(n);
        let at = At::NicIn(n);
        let dst = self.b.packet.outer().header.dst;
        let nva = w.fixed.nic_nva[n.idx()];
        if nic.ips.contains(&dst) {
            return match nva {
                Some(v) => {
                    self.hop(
                        at,
                        "nic-ingress",
                        say!(self, "addressed to the NIC → NVA OS"),
                    );
                    Step::Go(At::Nva(v))
                }
                None => {
                    self.hop(
                        at,
                        "nic-ingress",
                        say!(self, "addressed to the NIC: delivered to the VM"),
                    );
                    Step::Done(Outcome::Delivered(Place::At(at)))
                }
            };
        }
        if !nic.ip_forwarding {
            self.hop(
                at,
                "nic-ingress",
                say!(
                    self,
                    "not addressed to the NIC and IP forwarding is off (R44)"
                ),
            );
            return self.drop_at(at, DropReason::IpForwardingDisabled);
        }
        match nva {
            Some(v) => {
                self.hop(
                    at,
                    "nic-ingress",
                    say!(self, "not addressed to the NIC, IP forwarding on → NVA OS"),
                );
                Step::Go(At::Nva(v))
            }
            None => {
                self.hop(
                    at,
                    "nic-ingress",
                    say!(self, "IP forwarding on, but the VM is not a router"),
                );
                self.drop_at(at, DropReason::NotARouter)
            }
        }
    }

    fn nva(&mut self, n: NvaId) -> Step {
        let w = self.world;
        let t = w.t();
        let nva = &t.nvas[n.idx()];
        let at = At::Nva(n);
        if let Some(r) = self.speaker_fails(Node::Nva(n)) {
            self.hop(at, "nva", say!(self, "the NVA is down"));
            return self.drop_at(at, r);
        }
        let o = *self.b.packet.outer();
        if w.fixed.nva_ips[n.idx()].contains(&o.header.dst) {
            if let Some(enc) = o.encap {
                let k = nva.tunnels.iter().position(|k| {
                    k.local == o.header.dst && k.remote == o.header.src && tunnel_matches(k, enc)
                });
                if let Some(r) = k.and_then(|k| self.tunnel_fails(Node::Nva(n), k)) {
                    self.hop(
                        at,
                        "nva",
                        say!(self, "tunnel traffic on a tunnel that is down"),
                    );
                    return self.drop_at(at, r);
                }
                let Some(tun) = k.map(|k| &nva.tunnels[k]) else {
                    self.hop(
                        at,
                        "nva",
                        say!(
                            self,
                            "tunnel traffic from {} matches no tunnel",
                            o.header.src
                        ),
                    );
                    return self.drop_at(at, DropReason::UnknownTunnel);
                };
                let i = self.hop(at, "nva", say!(self, "decapsulates tunnel {}", tun.name));
                let v = self.text().then(|| describe_encap(enc, &o.header));
                self.set_hop(i, |h| h.decap = v);
                self.set_hop(i, |h| h.effects.decap = Some(enc));
                self.pop_layer();
                return Step::Go(at);
            }
            self.hop(at, "nva", say!(self, "addressed to the NVA itself"));
            return Step::Done(Outcome::Delivered(Place::At(at)));
        }
        if o.ttl <= 1 {
            self.hop(
                at,
                "nva",
                say!(self, "TTL expired: the NVA sends Time Exceeded"),
            );
            return self.drop_at(at, DropReason::TtlExceeded);
        }
        self.b.packet.outer_mut().ttl -= 1;
        let os = &w.cp.nva_tables[n.idx()];
        let i = self.hop(at, "nva", String::new());
        self.set_hop(i, |h| h.effects.ttl_decrement = true);
        let mut note = String::new();
        let mut encap_note = None;
        let mut dst = o.header.dst;
        for depth in 0..4 {
            // The first lookup routes the packet; after an encapsulation the
            // outer packet is routed by the underlay only.
            let (all, under) = &*w.nva_fibs[n.idx()];
            self.looked_up(dst);
            let found = if depth == 0 { all } else { under }
                .lookup(dst)
                .map(|&k| &os.entries[k as usize]);
            let Some(e) = found else {
                let v = say!(self, "{note}no OS route for {dst}");
                self.set_hop(i, |h| h.decision = v);
                return self.drop_at(at, DropReason::NvaNoRoute);
            };
            match &e.next_hop {
                OsNextHop::Blackhole => {
                    let v = say!(self, "{note}OS route {} is a blackhole", e.prefix);
                    self.set_hop(i, |h| h.decision = v);
                    return self.drop_at(at, DropReason::NvaBlackhole);
                }
                OsNextHop::Nic(x) => {
                    let v = say!(
                        self,
                        "{note}OS route {} out of nic {}",
                        e.prefix,
                        t.nic(*x).name
                    );
                    self.set_hop(i, |h| h.decision = v);
                    self.set_hop(i, |h| h.encap = encap_note);
                    return Step::Go(At::NicOut(*x));
                }
                OsNextHop::Via(ip) => {
                    let egress = nva
                        .nics
                        .iter()
                        .copied()
                        .find(|&x| w.fixed.subnet_ranges[t.nic(x).subnet.idx()].contains_addr(*ip))
                        .or(nva.nics.first().copied());
                    let Some(x) = egress else {
                        let v = say!(self, "the NVA has no NIC");
                        self.set_hop(i, |h| h.decision = v);
                        return self.drop_at(at, DropReason::NvaNoRoute);
                    };
                    let v = say!(
                        self,
                        "{note}OS route {} via {ip} out of nic {} (the NIC routes by its own table, R42)",
                        e.prefix,
                        t.nic(x).name
                    );
                    self.set_hop(i, |h| h.decision = v);
                    self.set_hop(i, |h| h.encap = encap_note);
                    return Step::Go(At::NicOut(x));
                }
                OsNextHop::Tunnel(k) => {
                    let Some(tun) = nva.tunnels.get(*k) else {
                        return self.drop_at(at, DropReason::NvaNoRoute);
                    };
                    if let Some(r) = self.tunnel_fails(Node::Nva(n), *k) {
                        let v = say!(
                            self,
                            "{note}OS route {} into tunnel {}, which is down",
                            e.prefix,
                            tun.name
                        );
                        self.set_hop(i, |h| h.decision = v);
                        return self.drop_at(at, r);
                    }
                    let inner = self.b.packet.outer().header;
                    let inner_len = self.b.packet.outer().len;
                    let (enc, header) = encapsulate(tun, &inner);
                    let len = encapsulated_len(enc, inner_len);
                    let mut frag_note = String::new();
                    if len > usize::from(tun.mtu) {
                        if !tun.fragment {
                            let v = say!(
                                self,
                                "{note}OS route {} into tunnel {}: {len} bytes after encapsulation exceed the tunnel MTU {} (R55)",
                                e.prefix,
                                tun.name,
                                tun.mtu
                            );
                            self.set_hop(i, |h| h.decision = v);
                            return self.drop_at(at, DropReason::MtuExceeded);
                        }
                        let per = ((usize::from(tun.mtu) - 20) / 8) * 8;
                        frag_note = say!(
                            self,
                            ", fragmented into {} outer packets (MTU {}, R55)",
                            (len - 20).div_ceil(per.max(8)),
                            tun.mtu
                        );
                        self.set_hop(i, |h| h.effects.fragment = Some(tun.mtu));
                    }
                    encap_note = self
                        .text()
                        .then(|| describe_encap(enc, &header) + &frag_note);
                    self.set_hop(i, |h| h.effects.encap = Some((enc, header)));
                    note = say!(
                        self,
                        "OS route {} into tunnel {}: encapsulated; ",
                        e.prefix,
                        tun.name
                    );
                    if !self.push_layer(Layer {
                        header,
                        ttl: DEFAULT_TTL,
                        encap: Some(enc),
                        len,
                    }) {
                        break;
                    }
                    dst = header.dst;
                }
            }
        }
        let v = say!(self, "{note}tunnels nest too deep");
        self.set_hop(i, |h| h.decision = v);
        self.drop_at(at, DropReason::NvaNoRoute)
    }

    fn gateway(&mut self, g: GatewayId) -> Step {
        let w = self.world;
        let t = w.t();
        let at = At::Gateway(g);
        if let Some(r) = self.speaker_fails(Node::Gateway(g)) {
            self.hop(at, "gateway", say!(self, "the gateway is down"));
            return self.drop_at(at, r);
        }
        let dst = self.b.packet.outer().header.dst;
        let site = t.sites.iter().enumerate().find(|(_, s)| {
            s.connections.iter().any(|c| c.gateway == g)
                && (s.prefixes.iter().any(|p| p.contains(&dst)) || s.cpe == Some(dst))
        });
        match site {
            Some((si, s)) => {
                let kind = t.gateway(g).kind.as_str();
                self.hop(at, "gateway", say!(self, "to site {} over {kind}", s.name));
                Step::Go(At::Site(SiteId(si as u32)))
            }
            None => {
                self.hop(at, "gateway", say!(self, "no connected site holds {dst}"));
                self.drop_at(at, DropReason::GatewayNoRoute)
            }
        }
    }

    fn site(&mut self, s: SiteId) -> Step {
        let w = self.world;
        let site = &w.t().sites[s.idx()];
        let at = At::Site(s);
        let o = *self.b.packet.outer();
        if let Some(enc) = o.encap
            && site.cpe == Some(o.header.dst)
        {
            let k = site.tunnels.iter().position(|k| {
                k.local == o.header.dst && k.remote == o.header.src && tunnel_matches(k, enc)
            });
            if let Some(r) = k.and_then(|k| self.tunnel_fails(Node::Site(s), k)) {
                self.hop(
                    at,
                    "site",
                    say!(self, "tunnel traffic on a tunnel that is down"),
                );
                return self.drop_at(at, r);
            }
            let Some(tun) = k.map(|k| &site.tunnels[k]) else {
                self.hop(
                    at,
                    "site",
                    say!(self, "tunnel traffic matches no tunnel of the CPE"),
                );
                return self.drop_at(at, DropReason::UnknownTunnel);
            };
            let i = self.hop(
                at,
                "site",
                say!(self, "the CPE decapsulates tunnel {}", tun.name),
            );
            let v = self.text().then(|| describe_encap(enc, &o.header));
            self.set_hop(i, |h| h.decap = v);
            self.pop_layer();
            return Step::Go(at);
        }
        let dst = o.header.dst;
        if site.prefixes.iter().any(|p| p.contains(&dst)) || site.cpe == Some(dst) {
            self.hop(at, "site", say!(self, "delivered on premises to {dst}"));
            return Step::Done(Outcome::Delivered(Place::At(at)));
        }
        self.hop(at, "site", say!(self, "the site does not hold {dst}"));
        self.drop_at(at, DropReason::SiteNoRoute)
    }
}

fn tunnel_matches(t: &Tunnel, e: Encap) -> bool {
    match (t.kind, e) {
        (TunnelKind::Vxlan { vni, .. }, Encap::Vxlan { vni: got }) => vni == got,
        (TunnelKind::Esp { spi_in, udp, .. }, Encap::Esp { spi, udp: got }) => {
            spi_in == spi && udp == got
        }
        _ => false,
    }
}

/// The outer header a tunnel puts around `inner` (RFC 7348: UDP source port
/// from the inner flow hash, in 49152–65535; RFC 3948: UDP 4500 for NAT-T).
pub fn encapsulate(t: &Tunnel, inner: &Header) -> (Encap, Header) {
    let sport = 49152 + (flow_hash(inner) % 16384) as u16;
    match t.kind {
        TunnelKind::Vxlan { vni, port } => (
            Encap::Vxlan { vni },
            Header {
                src: t.local,
                dst: t.remote,
                proto: PROTO_UDP,
                sport,
                dport: port,
            },
        ),
        TunnelKind::Esp {
            spi_out, udp: true, ..
        } => (
            Encap::Esp {
                spi: spi_out,
                udp: true,
            },
            Header {
                src: t.local,
                dst: t.remote,
                proto: PROTO_UDP,
                sport: 4500,
                dport: 4500,
            },
        ),
        TunnelKind::Esp {
            spi_out,
            udp: false,
            ..
        } => (
            Encap::Esp {
                spi: spi_out,
                udp: false,
            },
            Header {
                src: t.local,
                dst: t.remote,
                proto: PROTO_ESP,
                sport: 0,
                dport: 0,
            },
        ),
    }
}

/// The outer IP datagram's length around an inner one of `inner` bytes:
/// VXLAN adds 50 bytes in all (R53: inner Ethernet 14 + VXLAN 8 + UDP 8 + IP
/// 20); ESP adds IP 20 (+ UDP 8) + SPI/sequence 8 + padding to 4 bytes + 2.
pub fn encapsulated_len(e: Encap, inner: usize) -> usize {
    match e {
        Encap::Vxlan { .. } => inner + 14 + 8 + 8 + 20,
        Encap::Esp { udp, .. } => {
            let pad = (4 - (inner + 2) % 4) % 4;
            20 + if udp { 8 } else { 0 } + 8 + inner + pad + 2
        }
    }
}

fn describe_encap(e: Encap, outer: &Header) -> String {
    match e {
        Encap::Vxlan { vni } => format!("VXLAN vni {vni}, outer {outer}"),
        Encap::Esp { spi, udp: true } => format!(
            "ESP spi {spi:#x} in UDP 4500, outer {} → {}",
            outer.src, outer.dst
        ),
        Encap::Esp { spi, udp: false } => {
            format!("ESP spi {spi:#x}, outer {} → {}", outer.src, outer.dst)
        }
    }
}

impl Verdict {
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Delivered { .. } => "delivered",
            Verdict::Dropped { .. } => "dropped",
            Verdict::Loop { .. } => "loop",
        }
    }
    pub fn at(&self) -> &str {
        match self {
            Verdict::Delivered { at } | Verdict::Dropped { at, .. } | Verdict::Loop { at, .. } => {
                at
            }
        }
    }
}
