//! How a walk ends: delivered (where), dropped (one [`DropReason`], where)
//! or a loop; the hops it recorded on the way.

use std::net::IpAddr;

use serde::Serialize;

use super::packet::{Encap, Header};
use crate::topology::*;

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
    /// The NIC's VM is stopped or deallocated.
    VmNotRunning,
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
    /// A load balancer has no rule for the flow (no HA-ports rule, and no
    /// rule of its protocol and port).
    NoLbRule,
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
    pub const ALL: [DropReason; 25] = [
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
        DropReason::VmNotRunning,
        DropReason::GatewayDown,
        DropReason::GatewayNoRoute,
        DropReason::UnknownTunnel,
        DropReason::SiteNoRoute,
        DropReason::MtuExceeded,
        DropReason::TunnelDown,
        DropReason::NoLbRule,
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
            DropReason::VmNotRunning => "vm-not-running",
            DropReason::GatewayDown => "gateway-down",
            DropReason::GatewayNoRoute => "gateway-no-route",
            DropReason::UnknownTunnel => "unknown-tunnel",
            DropReason::SiteNoRoute => "site-no-route",
            DropReason::MtuExceeded => "mtu-exceeded",
            DropReason::TunnelDown => "tunnel-down",
            DropReason::NoLbRule => "no-lb-rule",
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

impl std::fmt::Display for RouteUsed {
    /// `SOURCE PREFIX → TYPE IPS`, as findings and loop verdicts name it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} → {}",
            self.source, self.prefix, self.next_hop_type
        )?;
        if !self.next_hop_ips.is_empty() {
            write!(f, " {}", self.next_hop_ips.join(", "))?;
        }
        Ok(())
    }
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
    /// Address translation (at the Internet edge, or to a load balancer's
    /// backend): the outer IPv4 header's new (source, destination). Kept
    /// small: every recorded hop carries it.
    pub nat: Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)>,
}

/// One step of a walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// Where the hop happened (the node's name is [`World::name`](super::World::name)).
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
