//! A deterministic BGP simulation of Route Servers, NVAs, VPN and ExpressRoute
//! gateways, the Microsoft edge (MSEE) and on-premises sites, with Azure's
//! rules (SPEC R21–R41).
//!
//! The whole topology is converged to a fixpoint: every round, each speaker
//! picks its best paths from what it received, exports to every Up session
//! (export policy), and each receiver applies its import rules. Rounds repeat
//! until nothing received changes. No clock, no randomness: maps are ordered,
//! ties are broken by session order, so the same input gives the same output.
//!
//! Every decision is per prefix, so each prefix runs its own rounds (round
//! `k` of a prefix is round `k` of the whole table): a prefix's few paths
//! stay in cache and a settled prefix costs nothing more. The per-session
//! route limits (R32, R37, R38) are the one coupling between prefixes: if a
//! limited session's count passes its limit in any round, the table is
//! converged again in lockstep with the limit applied round by round.
//!
//! Speakers and what they do (stage contract):
//!
//! | speaker | ASN | originates | exports | import rules |
//! |---|---|---|---|---|
//! | Route Server | 65515 | its VNet's ranges and those of VNets using it remotely (R26) | to NVAs: everything it holds (gateway routes only with branch-to-branch, R30), 65515 prepended, next hop kept; to its gateways (iBGP, b2b only): NVA routes minus its own and remote-using VNets' ranges (R25) | drop paths containing 65515 (R27), IPv6 (R32), session torn down past the per-peer limit (R32) |
//! | NVA | own | per session `originate`, `redistribute_static` | best paths, own ASN prepended (+`prepend`), `as_override`, next hop self or `next_hop` (R22), prefix filters, NO_ADVERTISE (R29) | own ASN in path, prefix filters |
//! | VPN gateway | 65515 default | VNet + transit spokes' ranges | to sites: all but 0/0 and VNet-overlapping prefixes (R36) | identical to a VNet prefix (R37), limit (R37) |
//! | ExpressRoute gateway | 65515 | as VPN | to the MSEE, as VPN | as VPN, and paths containing 65515 from the edge (R34) |
//! | MSEE (one per site with ExpressRoute) | 12076 | — | to the site: private ASNs stripped (R38); to gateways: as received | own ASN, limit from the VNet side (R38) |
//! | site | own | per connection `advertise`, per session `originate` | its own prefixes only (no transit through on-premises) | own ASN |
//!
//! Best path: NVAs, sites, MSEE and gateways prefer locally originated or
//! static routes, then higher connection weight (ExpressRoute, R39), then the
//! shorter AS path, then the earlier session. Route Servers apply R28 (shorter
//! AS path; equal length → ECMP across next hops) and, between gateway and NVA
//! routes, the routing preference (R31).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;

use super::effective::gateway_next_hops;
use crate::topology::*;

pub const ROUTE_SERVER_ASN: u32 = 65515;
pub const MSEE_ASN: u32 = 12076;
/// Rounds after which a non-converging topology is reported.
pub const MAX_ROUNDS: usize = 64;
/// Longest AS path kept (longer paths are rejected: a guard against runaway
/// loops hidden by as-override).
pub const MAX_AS_PATH: usize = 64;

/// A BGP speaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    RouteServer(RouteServerId),
    Nva(NvaId),
    Gateway(GatewayId),
    Site(SiteId),
    /// The Microsoft edge of a site's ExpressRoute circuit.
    Msee(SiteId),
}

impl Node {
    pub fn name(self, t: &Topology) -> String {
        match self {
            Node::RouteServer(r) => t.route_servers[r.idx()].name.clone(),
            Node::Nva(n) => t.nvas[n.idx()].name.clone(),
            Node::Gateway(g) => t.gateway(g).name.clone(),
            Node::Site(s) => t.sites[s.idx()].name.clone(),
            Node::Msee(s) => format!("msee-{}", t.sites[s.idx()].name),
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Node::RouteServer(_) => "route_server",
            Node::Nva(_) => "nva",
            Node::Gateway(_) => "gateway",
            Node::Site(_) => "site",
            Node::Msee(_) => "msee",
        }
    }

    pub fn asn(self, t: &Topology) -> u32 {
        match self {
            Node::RouteServer(r) => t.route_servers[r.idx()].asn,
            Node::Nva(n) => t.nvas[n.idx()].asn.unwrap_or(0),
            Node::Gateway(g) => t.gateway(g).asn,
            Node::Site(s) => t.sites[s.idx()].asn.unwrap_or(0),
            Node::Msee(_) => MSEE_ASN,
        }
    }

    /// Finds a speaker by name (MSEEs are `msee-<site>`).
    pub fn by_name(t: &Topology, name: &str) -> Option<Node> {
        // The order of `all_nodes`, without writing a name per speaker.
        if let Some(i) = t.route_servers.iter().position(|x| x.name == name) {
            return Some(Node::RouteServer(RouteServerId(i as u32)));
        }
        if let Some(i) = t.nvas.iter().position(|x| x.name == name) {
            return Some(Node::Nva(NvaId(i as u32)));
        }
        if let Some(i) = t.gateways.iter().position(|x| x.name == name) {
            return Some(Node::Gateway(GatewayId(i as u32)));
        }
        if let Some(i) = t.sites.iter().position(|x| x.name == name) {
            return Some(Node::Site(SiteId(i as u32)));
        }
        let site = name.strip_prefix("msee-")?;
        all_nodes(t)
            .into_iter()
            .find(|n| matches!(n, Node::Msee(s) if t.sites[s.idx()].name == site))
    }
}

/// Every speaker of a topology, in a fixed order.
pub fn all_nodes(t: &Topology) -> Vec<Node> {
    let mut v = Vec::new();
    v.extend((0..t.route_servers.len()).map(|i| Node::RouteServer(RouteServerId(i as u32))));
    v.extend((0..t.nvas.len()).map(|i| Node::Nva(NvaId(i as u32))));
    v.extend((0..t.gateways.len()).map(|i| Node::Gateway(GatewayId(i as u32))));
    v.extend((0..t.sites.len()).map(|i| Node::Site(SiteId(i as u32))));
    for (i, s) in t.sites.iter().enumerate() {
        if s.connections
            .iter()
            .any(|c| t.gateway(c.gateway).kind == GatewayKind::ExpressRoute)
        {
            v.push(Node::Msee(SiteId(i as u32)));
        }
    }
    v
}

/// One BGP path as a speaker holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub prefix: IpNet,
    /// Shared: paths are cloned far more often than rewritten.
    pub as_path: Arc<[u32]>,
    pub next_hop: IpAddr,
    /// NO_ADVERTISE (65535:65282): use it, never pass it on (R29).
    pub no_advertise: bool,
    /// The speaker where the route entered BGP.
    pub origin: Node,
    /// A gateway's static (local network gateway) prefix, not BGP.
    pub is_static: bool,
    /// Set by the receiver: the session it arrived on.
    pub session: Option<usize>,
}

/// Why a received path is not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    /// The receiver's own ASN is in the path (standard eBGP loop prevention).
    AsLoop(u32),
    /// R27: Route Server drops paths containing 65515.
    RouteServerAsn,
    /// R34: an ExpressRoute gateway drops paths from the edge that already
    /// crossed an Azure gateway (65515); the exact reason is UNCONFIRMED.
    AzureAsnFromEdge,
    /// R32: Route Server does not support IPv6.
    Ipv6Unsupported,
    /// An import prefix filter.
    ImportFilter,
    /// R37: identical to a VNet prefix the gateway knows.
    VnetPrefix,
    /// R32/R37/R38: too many routes; the session is torn down.
    LimitExceeded { limit: usize, received: usize },
    /// The AS path is longer than [`MAX_AS_PATH`].
    PathTooLong,
}

impl Reject {
    pub fn text(&self) -> String {
        match self {
            Reject::AsLoop(a) => format!("AS loop: own AS {a} in the path"),
            Reject::RouteServerAsn => "AS path contains 65515 (R27)".into(),
            Reject::AzureAsnFromEdge => {
                "AS path from the ExpressRoute edge contains 65515 (R34)".into()
            }
            Reject::Ipv6Unsupported => "IPv6 is not supported by Route Server (R32)".into(),
            Reject::ImportFilter => "import prefix filter".into(),
            Reject::VnetPrefix => "identical to a VNet prefix (R37)".into(),
            Reject::LimitExceeded { limit, received } => format!(
                "limit exceeded: {received} routes > {limit}; session torn down (R32/R37/R38)"
            ),
            Reject::PathTooLong => format!("AS path longer than {MAX_AS_PATH}"),
        }
    }
}

/// Why an accepted path is not the best.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loser {
    /// Not selected yet (only seen mid-convergence).
    Pending,
    SameNextHop,
    /// R31: the Route Server's routing preference.
    RoutingPreference,
    /// R39: lower connection weight.
    Weight,
    LongerAsPath {
        len: usize,
        best: usize,
    },
    /// Equal in every respect: the earlier session wins.
    EarlierSession,
}

impl Loser {
    pub fn text(self) -> String {
        match self {
            Loser::Pending => "not yet selected".into(),
            Loser::SameNextHop => "same next hop as the best path".into(),
            Loser::RoutingPreference => {
                "routing preference (R31; at a site: routes learned inside its tunnels first)"
                    .into()
            }
            Loser::Weight => "lower connection weight (R39)".into(),
            Loser::LongerAsPath { len, best } => format!("longer AS path ({len} > {best}, R28)"),
            Loser::EarlierSession => "equal path from an earlier session preferred".into(),
        }
    }
}

/// What became of a received path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The best path (or one of an ECMP set).
    Best,
    /// Accepted, but another path won.
    NotBest(Loser),
    Rejected(Reject),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub path: Path,
    pub status: Status,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionState {
    Up,
    Down(String),
}

/// A BGP session between two speakers.
#[derive(Clone, Debug)]
pub struct Session {
    pub a: Node,
    pub b: Node,
    /// Index of `a`'s (an NVA's or site's) session configuration, if any.
    pub cfg_a: Option<usize>,
    pub cfg_b: Option<usize>,
    pub ibgp: bool,
    /// ExpressRoute connection weight (R39), on gateway↔MSEE sessions.
    pub weight: u32,
    pub state: SessionState,
}

impl Session {
    pub fn other(&self, me: Node) -> Node {
        if self.a == me { self.b } else { self.a }
    }
    fn cfg<'t>(&self, t: &'t Topology, me: Node) -> Option<&'t BgpSession> {
        let idx = if self.a == me { self.cfg_a } else { self.cfg_b }?;
        match me {
            Node::Nva(n) => t.nvas[n.idx()].bgp.get(idx),
            Node::Site(s) => t.sites[s.idx()].bgp.get(idx),
            _ => None,
        }
    }
}

/// Changes applied on top of the topology (see [`super::events`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    pub down_speakers: BTreeSet<Node>,
    pub down_sessions: BTreeSet<(Node, Node)>,
    /// Overlay tunnels that are down: (owner NVA or site, index into its
    /// `tunnels`), both ends. BGP sessions over them are down too.
    pub down_tunnels: BTreeSet<(Node, usize)>,
    /// Prefixes a speaker advertises on all its sessions in addition to its configuration.
    pub advertised: BTreeMap<Node, BTreeSet<IpNet>>,
    /// Prefixes a speaker no longer originates.
    pub withdrawn: BTreeMap<Node, BTreeSet<IpNet>>,
}

impl Conditions {
    pub fn session_down(&self, a: Node, b: Node) -> bool {
        self.down_sessions.contains(&(a, b)) || self.down_sessions.contains(&(b, a))
    }
}

/// The converged BGP state of a topology.
#[derive(Clone, Debug)]
pub struct BgpState {
    pub sessions: Vec<Session>,
    /// What each receiver got on each session: `(receiver, session)` → prefix → path.
    pub received: Rib,
    /// What each sender sent on each session (after its export policy).
    pub advertised: BTreeMap<(Node, usize), Vec<Path>>,
    /// Best paths per speaker (a Route Server's NVA routes may be an ECMP set).
    pub best: BTreeMap<Node, ByPrefix<Vec<Path>>>,
    pub warnings: Vec<String>,
    pub rounds: usize,
    pub converged: bool,
}

fn is_private_asn(a: u32) -> bool {
    (64512..=65534).contains(&a) || (4_200_000_000..=4_294_967_294).contains(&a)
}

fn covered_by(p: IpNet, list: &[IpNet]) -> bool {
    list.iter().any(|f| f.contains(&p))
}

/// The VNets whose ranges a gateway or Route Server in `vnet` speaks for: its
/// own and those of Connected peers that use it remotely (R9, R26, R35).
pub fn served_vnets(t: &Topology, vnet: VnetId) -> Vec<VnetId> {
    let mut v = vec![vnet];
    for (i, _) in t.vnets.iter().enumerate() {
        let other = VnetId(i as u32);
        if other != vnet
            && t.remote_gateway_vnet(other)
                .is_some_and(|(_, hub)| hub == vnet)
        {
            v.push(other);
        }
    }
    v
}

fn served_ranges(t: &Topology, vnet: VnetId, v4_only: bool) -> Vec<IpNet> {
    served_vnets(t, vnet)
        .into_iter()
        .flat_map(|v| t.vnet(v).address_space.iter().copied())
        .filter(|p| !v4_only || p.network().is_ipv4())
        .collect()
}

/// The address a speaker uses as next hop toward a peer.
fn self_address(t: &Topology, me: Node, cfg: Option<&BgpSession>, family_v4: bool) -> IpAddr {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    match me {
        Node::RouteServer(r) => t.route_servers[r.idx()].ips.first().copied().unwrap_or(any),
        Node::Nva(n) => {
            let nva = &t.nvas[n.idx()];
            if let Some(over) = cfg.and_then(|c| c.over)
                && let Some(tun) = nva.tunnels.get(over)
            {
                return tun.local;
            }
            let ips: Vec<IpAddr> = nva
                .nics
                .iter()
                .flat_map(|&nic| t.nic(nic).ips.iter().copied())
                .collect();
            ips.iter()
                .copied()
                .find(|ip| ip.is_ipv4() == family_v4)
                .or(ips.first().copied())
                .unwrap_or(any)
        }
        Node::Gateway(g) => gateway_next_hops(t.gateway(g))
            .first()
            .copied()
            .unwrap_or(any),
        Node::Site(s) => {
            let site = &t.sites[s.idx()];
            if let Some(over) = cfg.and_then(|c| c.over)
                && let Some(tun) = site.tunnels.get(over)
            {
                return tun.local;
            }
            site.cpe.or(site.hosts.first().copied()).unwrap_or(any)
        }
        Node::Msee(s) => t.sites[s.idx()].cpe.unwrap_or(any),
    }
}

/// Builds every session the topology declares, with its state.
pub fn sessions(t: &Topology, cond: &Conditions) -> (Vec<Session>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut push = |a: Node,
                    b: Node,
                    cfg_a: Option<usize>,
                    cfg_b: Option<usize>,
                    weight: u32,
                    down: Option<String>| {
        let ibgp = a.asn(t) == b.asn(t);
        let state = if let Some(why) = down {
            SessionState::Down(why)
        } else if cond.down_speakers.contains(&a) {
            SessionState::Down(format!("speaker {} is down", a.name(t)))
        } else if cond.down_speakers.contains(&b) {
            SessionState::Down(format!("speaker {} is down", b.name(t)))
        } else if cond.session_down(a, b) {
            SessionState::Down("session down (event)".to_string())
        } else {
            SessionState::Up
        };
        out.push(Session {
            a,
            b,
            cfg_a,
            cfg_b,
            ibgp,
            weight,
            state,
        });
    };
    for (ni, nva) in t.nvas.iter().enumerate() {
        let me = Node::Nva(NvaId(ni as u32));
        for (ci, cfg) in nva.bgp.iter().enumerate() {
            match cfg.peer {
                Speaker::RouteServer(r) => push(me, Node::RouteServer(r), Some(ci), None, 0, None),
                Speaker::Nva(other) => {
                    let back = t.nvas[other.idx()]
                        .bgp
                        .iter()
                        .position(|c| c.peer == Speaker::Nva(NvaId(ni as u32)));
                    match back {
                        Some(bi) if (ni as u32) < other.0 => {
                            push(me, Node::Nva(other), Some(ci), Some(bi), 0, None)
                        }
                        Some(_) => {} // created from the other side
                        None => {
                            let w = format!(
                                "nva {} peers with nva {}, which does not peer back: session not established",
                                nva.name,
                                t.nvas[other.idx()].name
                            );
                            warnings.push(w.clone());
                            push(
                                me,
                                Node::Nva(other),
                                Some(ci),
                                None,
                                0,
                                Some("declared on one side only".into()),
                            );
                        }
                    }
                }
                Speaker::Site(s) => {
                    let back = t.sites[s.idx()]
                        .bgp
                        .iter()
                        .position(|c| c.peer == Speaker::Nva(NvaId(ni as u32)));
                    if back.is_none() {
                        warnings.push(format!("nva {} peers with site {}, which does not peer back: session not established", nva.name, t.sites[s.idx()].name));
                    }
                    let down = back
                        .is_none()
                        .then(|| "declared on one side only".to_string());
                    push(me, Node::Site(s), Some(ci), back, 0, down);
                }
                Speaker::Gateway(g) => {
                    warnings.push(format!("nva {}: BGP sessions with gateway {} are not modelled (Azure gateways peer with Route Server and sites)", nva.name, t.gateway(g).name));
                    push(
                        me,
                        Node::Gateway(g),
                        Some(ci),
                        None,
                        0,
                        Some("not modelled".into()),
                    );
                }
            }
        }
    }
    for (si, site) in t.sites.iter().enumerate() {
        let me = Node::Site(SiteId(si as u32));
        for cfg in &site.bgp {
            match cfg.peer {
                Speaker::Nva(n) => {
                    if !t.nvas[n.idx()]
                        .bgp
                        .iter()
                        .any(|c| c.peer == Speaker::Site(SiteId(si as u32)))
                    {
                        warnings.push(format!("site {} peers with nva {}, which does not peer back: session not established", site.name, t.nvas[n.idx()].name));
                    }
                }
                Speaker::RouteServer(_) | Speaker::Gateway(_) | Speaker::Site(_) => {
                    warnings.push(format!("site {}: a [[site.bgp]] session with {} is not modelled; sites reach gateways through [[site.connection]]", site.name, speaker_name(t, cfg.peer)));
                }
            }
        }
        let mut msee_linked = false;
        for c in &site.connections {
            let g = t.gateway(c.gateway);
            match g.kind {
                GatewayKind::Vpn if c.bgp => {
                    push(me, Node::Gateway(c.gateway), None, None, c.weight, None)
                }
                GatewayKind::Vpn => {}
                GatewayKind::ExpressRoute => {
                    let msee = Node::Msee(SiteId(si as u32));
                    if !msee_linked {
                        push(me, msee, None, None, 0, None);
                        msee_linked = true;
                    }
                    push(msee, Node::Gateway(c.gateway), None, None, c.weight, None);
                }
            }
        }
    }
    for (ri, rs) in t.route_servers.iter().enumerate() {
        if !rs.branch_to_branch {
            continue;
        }
        for gid in t.gateways_in(rs.vnet) {
            let g = t.gateway(gid);
            let down = (g.kind == GatewayKind::Vpn && !g.active_active).then(|| {
                warnings.push(format!("route_server {}: branch-to-branch needs an active-active VPN gateway; {} is not (R30)", rs.name, g.name));
                "VPN gateway is not active-active (R30)".to_string()
            });
            push(
                Node::Gateway(gid),
                Node::RouteServer(RouteServerId(ri as u32)),
                None,
                None,
                0,
                down,
            );
        }
    }
    // R21: an NVA should peer with both instances.
    for nva in &t.nvas {
        for cfg in &nva.bgp {
            if let Speaker::RouteServer(r) = cfg.peer {
                let rs = &t.route_servers[r.idx()];
                if !cfg.peer_ips.is_empty() && rs.ips.iter().any(|ip| !cfg.peer_ips.contains(ip)) {
                    warnings.push(format!("nva {} peers with only one instance of route_server {}; each NVA must peer with both (R21)", nva.name, rs.name));
                }
            }
        }
    }
    // A session over a tunnel that is down is down.
    for s in &mut out {
        if s.state != SessionState::Up {
            continue;
        }
        for (me, cfg) in [(s.a, s.cfg_a), (s.b, s.cfg_b)] {
            let over = cfg.and_then(|i| match me {
                Node::Nva(n) => t.nvas[n.idx()].bgp.get(i).and_then(|c| c.over),
                Node::Site(x) => t.sites[x.idx()].bgp.get(i).and_then(|c| c.over),
                _ => None,
            });
            if let Some(k) = over
                && cond.down_tunnels.contains(&(me, k))
            {
                s.state = SessionState::Down(format!(
                    "tunnel {} of {} is down",
                    tunnel_name(t, me, k),
                    me.name(t)
                ));
                break;
            }
        }
    }
    (out, warnings)
}

/// The tunnels of an NVA or a site.
pub fn tunnels_of(t: &Topology, n: Node) -> &[Tunnel] {
    match n {
        Node::Nva(x) => &t.nvas[x.idx()].tunnels,
        Node::Site(x) => &t.sites[x.idx()].tunnels,
        _ => &[],
    }
}

fn tunnel_name(t: &Topology, n: Node, k: usize) -> &str {
    tunnels_of(t, n).get(k).map_or("?", |x| x.name.as_str())
}

fn speaker_name(t: &Topology, s: Speaker) -> String {
    match s {
        Speaker::RouteServer(r) => t.route_servers[r.idx()].name.clone(),
        Speaker::Nva(n) => t.nvas[n.idx()].name.clone(),
        Speaker::Gateway(g) => t.gateway(g).name.clone(),
        Speaker::Site(s) => t.sites[s.idx()].name.clone(),
    }
}

/// Converges the topology's BGP under `cond`.
///
/// BGP decisions are per prefix, so each prefix is converged on its own
/// (synchronous rounds over every Up session, as if the whole table moved
/// together: round `k` of a prefix is round `k` of the whole table). The
/// only coupling between prefixes is the per-session route limits (R32, R37,
/// R38); when a limited session's count passes its limit in any round, the
/// whole table is converged again in lockstep, where the limit applies
/// round by round as the receiver would apply it.
pub fn converge(t: &Topology, cond: &Conditions) -> BgpState {
    let (sessions, warnings) = sessions(t, cond);
    let ctx = Ctx::new(t, cond, &sessions);
    let prefixes = ctx.prefixes();
    let out = converge_each(&ctx, &prefixes).unwrap_or_else(|| converge_lockstep(&ctx, &prefixes));
    out.into_state(&ctx, warnings)
}

/// The same convergence computed the direct way: the whole table in
/// synchronous rounds, limits applied every round. [`converge`] must give
/// the same state (tests hold it to this on every topology); slower.
pub fn converge_whole_table(t: &Topology, cond: &Conditions) -> BgpState {
    let (sessions, warnings) = sessions(t, cond);
    let ctx = Ctx::new(t, cond, &sessions);
    let prefixes = ctx.prefixes();
    converge_lockstep(&ctx, &prefixes).into_state(&ctx, warnings)
}

/// What each receiver got on each session: `(receiver, session)` → prefix → path.
pub type Rib = BTreeMap<(Node, usize), ByPrefix<Received>>;

/// Entries keyed by prefix, in prefix order, one a prefix: a sorted list.
/// Convergence produces each table in prefix order already, so it becomes
/// one of these as it is (a map built per table and version cost the churn
/// loop 9 % of its instructions); lookups are binary searches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByPrefix<V>(Vec<(IpNet, V)>);

impl<V> Default for ByPrefix<V> {
    fn default() -> Self {
        ByPrefix(Vec::new())
    }
}

impl<V> ByPrefix<V> {
    /// From `(prefix, value)` pairs; pairs out of order are sorted and, as
    /// a map's `collect` does, the last of equal prefixes kept.
    pub fn from_pairs(mut v: Vec<(IpNet, V)>) -> Self {
        if !v.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable: equal prefixes keep their order, and the last stays.
            v.sort_by_key(|e| e.0);
            v.reverse();
            v.dedup_by(|a, b| a.0 == b.0);
            v.reverse();
        }
        ByPrefix(v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&IpNet, &V)> + '_ {
        self.0.iter().map(|(p, v)| (p, v))
    }

    /// The `k`-th entry in prefix order.
    pub fn nth(&self, k: usize) -> Option<(&IpNet, &V)> {
        self.0.get(k).map(|(p, v)| (p, v))
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        let i = self.0.binary_search_by(|(p, _)| p.cmp(prefix)).ok()?;
        Some(&self.0[i].1)
    }

    /// Sets `prefix`'s value, in its place; the value it replaces.
    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        match self.0.binary_search_by(|(p, _)| p.cmp(&prefix)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (prefix, value));
                None
            }
        }
    }
}

/// One direction of an Up session — what `from` sends `to` on session `si` —
/// with everything the per-path decisions need computed once.
struct Dir<'t> {
    si: usize,
    from: Node,
    to: Node,
    from_i: usize,
    cfg_from: Option<&'t BgpSession>,
    cfg_to: Option<&'t BgpSession>,
    ibgp: bool,
    /// `from`'s originations on this session, sorted by prefix.
    own: Vec<Path>,
    /// A gateway sender's static prefixes, sorted by prefix (stable).
    statics: Vec<Path>,
    /// Route Server → gateway: the ranges it does not send (R25); gateway →
    /// site or edge: its VNet ranges (R36).
    ranges: Vec<IpNet>,
    self_v4: IpAddr,
    self_v6: IpAddr,
    from_asn: u32,
    to_asn: u32,
    /// Receiver side: a gateway's own VNet prefixes (R37).
    to_vnet_prefixes: Vec<IpNet>,
    /// Receiver side: routes accepted at most (R32, R37, R38).
    limit: Option<usize>,
}

/// A topology's speakers and Up session directions ("slots"); a slot's index
/// is both what its sender advertised and what its receiver got.
struct Ctx<'t> {
    t: &'t Topology,
    sessions: &'t [Session],
    nodes: Vec<Node>,
    dirs: Vec<Dir<'t>>,
    /// Per node: the slots it receives on, in session order.
    inbox: Vec<Vec<usize>>,
    /// Per slot: the last AS path exported and what the sender made of it
    /// (the rewrite is a function of the path and the slot, and successive
    /// prefixes mostly carry the same path: one allocation per distinct
    /// path, not per prefix and round).
    exported: Vec<RefCell<Option<Rewrite>>>,
    /// Scratch lists of best-path selection (reused: no allocation per
    /// speaker, prefix and round).
    scratch: RefCell<(Vec<Cand>, Vec<Hop>)>,
}

/// A best path's next hop: (next hop, session, slot).
type Hop = (IpAddr, usize, usize);

/// A candidate of best-path selection: (slot, session, key, next hop).
type Cand = (usize, usize, (u32, u32, usize), IpAddr);

/// An AS path as received and as exported.
type Rewrite = (Arc<[u32]>, Arc<[u32]>);

impl<'t> Ctx<'t> {
    fn new(t: &'t Topology, cond: &Conditions, sessions: &'t [Session]) -> Self {
        let nodes = all_nodes(t);
        let index = |n: Node| nodes.iter().position(|&x| x == n).unwrap_or(0);
        let mut dirs = Vec::new();
        let mut inbox = vec![Vec::new(); nodes.len()];
        for (si, s) in sessions.iter().enumerate() {
            if s.state != SessionState::Up {
                continue;
            }
            for (from, to) in [(s.a, s.b), (s.b, s.a)] {
                let cfg_from = s.cfg(t, from);
                let mut statics = match from {
                    Node::Gateway(g) => gateway_statics(t, cond, g),
                    _ => Vec::new(),
                };
                statics.sort_by_key(|p| p.prefix);
                let ranges = match (from, to) {
                    (Node::RouteServer(r), Node::Gateway(_)) => {
                        served_ranges(t, t.route_servers[r.idx()].vnet, false)
                    }
                    (Node::Gateway(g), Node::Site(_) | Node::Msee(_)) => {
                        served_ranges(t, t.gateway(g).vnet, false)
                    }
                    _ => Vec::new(),
                };
                let limit = match (to, from) {
                    (Node::RouteServer(_), _) if !s.ibgp => {
                        Some(t.options.route_server_max_routes_per_peer)
                    }
                    (Node::Gateway(g), Node::Site(_)) if t.gateway(g).kind == GatewayKind::Vpn => {
                        Some(t.options.vpn_gateway_max_prefixes)
                    }
                    (Node::Gateway(_), Node::Msee(_)) => Some(t.options.expressroute_max_prefixes),
                    (Node::Msee(_), Node::Gateway(_)) => {
                        Some(t.options.expressroute_max_vnet_prefixes)
                    }
                    _ => None,
                };
                inbox[index(to)].push(dirs.len());
                dirs.push(Dir {
                    si,
                    from,
                    to,
                    from_i: index(from),
                    cfg_from,
                    cfg_to: s.cfg(t, to),
                    ibgp: s.ibgp,
                    own: originations(t, cond, from, s),
                    statics,
                    ranges,
                    self_v4: self_address(t, from, cfg_from, true),
                    self_v6: self_address(t, from, cfg_from, false),
                    from_asn: from.asn(t),
                    to_asn: to.asn(t),
                    to_vnet_prefixes: match to {
                        Node::Gateway(g) => served_ranges(t, t.gateway(g).vnet, false),
                        _ => Vec::new(),
                    },
                    limit,
                });
            }
        }
        Ctx {
            t,
            sessions,
            nodes,
            exported: dirs.iter().map(|_| RefCell::new(None)).collect(),
            scratch: RefCell::default(),
            dirs,
            inbox,
        }
    }

    /// Every prefix a path can exist for: what some speaker originates on an
    /// Up session, and gateways' static prefixes.
    fn prefixes(&self) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = self
            .dirs
            .iter()
            .flat_map(|d| d.own.iter().chain(&d.statics).map(|p| p.prefix))
            .collect();
        // Sorted runs (each direction's originations, its statics): the
        // stable sort merges runs instead of sorting from scratch.
        v.sort();
        v.dedup();
        v
    }
}

/// One prefix's state: per slot, what was received and what was sent; per
/// node, the best paths.
#[derive(Clone)]
struct PrefixState {
    rx: Vec<Option<Received>>,
    adv: Vec<Option<Path>>,
    best: Vec<Vec<Path>>,
}

impl PrefixState {
    fn new(ctx: &Ctx) -> Self {
        PrefixState {
            rx: vec![None; ctx.dirs.len()],
            adv: vec![None; ctx.dirs.len()],
            best: vec![Vec::new(); ctx.nodes.len()],
        }
    }

    /// One round: select on what was received, export, import into `next`.
    fn round(&mut self, ctx: &Ctx, prefix: IpNet, next: &mut [Option<Received>]) {
        for n in 0..ctx.nodes.len() {
            self.best[n] = select_prefix(ctx, n, &mut self.rx);
        }
        for (d, dir) in ctx.dirs.iter().enumerate() {
            self.adv[d] = export_prefix(ctx, d, prefix, &self.best[dir.from_i]);
            next[d] = self.adv[d].as_ref().map(|p| import_path(ctx, d, p));
        }
    }

    /// The same round, skipping what cannot have changed: a speaker none of
    /// whose sessions brought anything new keeps its best paths (select
    /// reads only what it received), and a sender whose best paths did not
    /// move sends what it sent last round (export reads only those and
    /// constants). `changed` (per slot): what differed in the previous
    /// round, updated for this one; `first` does everything. The marks on
    /// received paths may lag (never their rejection, which import sets);
    /// [`PrefixState::finish`] marks everything.
    fn round_changed(
        &mut self,
        ctx: &Ctx,
        prefix: IpNet,
        next: &mut [Option<Received>],
        first: bool,
        (changed, moved): (&mut [bool], &mut [bool]),
    ) {
        for (n, m) in moved.iter_mut().enumerate() {
            *m = false;
            if first || ctx.inbox[n].iter().any(|&d| changed[d]) {
                let best = select_prefix(ctx, n, &mut self.rx);
                *m = best != self.best[n];
                self.best[n] = best;
            }
        }
        for (d, dir) in ctx.dirs.iter().enumerate() {
            if first || moved[dir.from_i] {
                self.adv[d] = export_prefix(ctx, d, prefix, &self.best[dir.from_i]);
                next[d] = self.adv[d].as_ref().map(|p| import_path(ctx, d, p));
            } else {
                next[d] = self.rx[d].clone();
            }
            changed[d] = !same_received(
                std::slice::from_ref(&self.rx[d]),
                std::slice::from_ref(&next[d]),
            );
        }
    }

    fn finish(&mut self, ctx: &Ctx) {
        for n in 0..ctx.nodes.len() {
            self.best[n] = select_prefix(ctx, n, &mut self.rx);
        }
    }
}

/// Same paths with the same accept/reject split (what ends the rounds).
fn same_received(a: &[Option<Received>], b: &[Option<Received>]) -> bool {
    a.iter().zip(b).all(|(x, y)| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            x.path == y.path
                && matches!(x.status, Status::Rejected(_))
                    == matches!(y.status, Status::Rejected(_))
        }
        _ => false,
    })
}

fn accepted(r: &Option<Received>) -> bool {
    r.as_ref()
        .is_some_and(|r| !matches!(r.status, Status::Rejected(_)))
}

/// The converged table, slot by slot, before it becomes a [`BgpState`].
struct Converged {
    /// Per slot: (prefix, received) and the paths sent, in prefix order.
    rx: Vec<Vec<(IpNet, Received)>>,
    adv: Vec<Vec<Path>>,
    /// Per node: (prefix, best paths), in prefix order.
    best: Vec<Vec<(IpNet, Vec<Path>)>>,
    rounds: usize,
    converged: bool,
}

impl Converged {
    fn new(ctx: &Ctx) -> Self {
        Converged {
            rx: vec![Vec::new(); ctx.dirs.len()],
            adv: vec![Vec::new(); ctx.dirs.len()],
            best: vec![Vec::new(); ctx.nodes.len()],
            rounds: 1,
            converged: true,
        }
    }

    fn push(&mut self, prefix: IpNet, st: &mut PrefixState) {
        for (d, r) in st.rx.iter_mut().enumerate() {
            if let Some(r) = r.take() {
                self.rx[d].push((prefix, r));
            }
        }
        for (d, p) in st.adv.iter_mut().enumerate() {
            if let Some(p) = p.take() {
                self.adv[d].push(p);
            }
        }
        for (n, b) in st.best.iter_mut().enumerate() {
            if !b.is_empty() {
                self.best[n].push((prefix, std::mem::take(b)));
            }
        }
    }

    /// [`Converged::push`] of a copy of `st` (another prefix's state, the
    /// same class) with `prefix` set in every path: only the entries are
    /// cloned, never the state's own lists.
    fn push_copy(&mut self, prefix: IpNet, st: &PrefixState) {
        let with = |p: &Path| Path {
            prefix,
            ..p.clone()
        };
        for (d, r) in st.rx.iter().enumerate() {
            if let Some(r) = r {
                self.rx[d].push((
                    prefix,
                    Received {
                        path: with(&r.path),
                        status: r.status.clone(),
                    },
                ));
            }
        }
        for (d, p) in st.adv.iter().enumerate() {
            if let Some(p) = p {
                self.adv[d].push(with(p));
            }
        }
        for (n, b) in st.best.iter().enumerate() {
            if !b.is_empty() {
                self.best[n].push((prefix, b.iter().map(with).collect()));
            }
        }
    }

    fn into_state(self, ctx: &Ctx, mut warnings: Vec<String>) -> BgpState {
        let t = ctx.t;
        // Rounds as a speaker counts them: the first round with an Up
        // session always brings news (the session's table appears).
        let rounds = self.rounds.max(if ctx.dirs.is_empty() { 1 } else { 2 });
        let mut sessions = ctx.sessions.to_vec();
        let received: Rib = ctx
            .dirs
            .iter()
            .zip(self.rx)
            .map(|(d, v)| ((d.to, d.si), ByPrefix::from_pairs(v)))
            .collect();
        let advertised = ctx
            .dirs
            .iter()
            .zip(self.adv)
            .map(|(d, v)| ((d.from, d.si), v))
            .collect();
        let best = ctx
            .nodes
            .iter()
            .zip(self.best)
            .map(|(&n, v)| (n, ByPrefix::from_pairs(v)))
            .collect();
        for ((node, si), got) in &received {
            if let Some(Received {
                status: Status::Rejected(r @ Reject::LimitExceeded { .. }),
                ..
            }) = got.values().next()
            {
                let who = node.name(t);
                warnings.push(format!(
                    "{who}: session with {} torn down: {}",
                    sessions[*si].other(*node).name(t),
                    r.text()
                ));
                sessions[*si].state =
                    SessionState::Down(format!("torn down by {who}: {}", r.text()));
            }
        }
        if !self.converged {
            warnings.push(format!("BGP did not converge within {MAX_ROUNDS} rounds (oscillation); the state shown is the last round's"));
        }
        BgpState {
            sessions,
            received,
            advertised,
            best,
            warnings,
            rounds,
            converged: self.converged,
        }
    }
}

/// Prefixes grouped by everything their convergence reads of them. A
/// prefix enters BGP decisions only through who originates it (and a
/// gateway's statics for it), its address family, whether it is the default
/// route, and per session direction the prefix tests of export and import
/// (VNet ranges, R25/R36/R37, prefix filters). Prefixes equal in all of
/// these converge to the same state with only the prefix differing: one
/// convergence per class, copied to its other members.
struct Classes {
    /// Per prefix (in the order given): its class.
    of: Vec<u32>,
    /// Per class: its first prefix's index and how many prefixes it has.
    rep: Vec<usize>,
    size: Vec<usize>,
}

impl Classes {
    fn new(ctx: &Ctx, prefixes: &[IpNet]) -> Classes {
        // What each direction tests of a prefix (the others add nothing).
        let own: Vec<usize> = (0..ctx.dirs.len())
            .filter(|&d| !ctx.dirs[d].own.is_empty())
            .collect();
        let statics: Vec<usize> = (0..ctx.dirs.len())
            .filter(|&d| !ctx.dirs[d].statics.is_empty())
            .collect();
        // Export tests a prefix inside a range (R25, R36); import tests a
        // prefix equal to a VNet prefix (R37).
        let lists = |list: for<'a> fn(&'a Dir<'a>) -> &'a [IpNet]| -> Vec<&[IpNet]> {
            ctx.dirs
                .iter()
                .map(list)
                .filter(|r| !r.is_empty())
                .collect()
        };
        let inside = lists(|d| &d.ranges);
        let equal = lists(|d| &d.to_vnet_prefixes);
        let filters: Vec<(&[IpNet], &[IpNet])> = ctx
            .dirs
            .iter()
            .flat_map(|d| {
                d.cfg_from
                    .map(|c| (&c.export_allow[..], &c.export_deny[..]))
                    .into_iter()
                    .chain(d.cfg_to.map(|c| (&c.import_allow[..], &c.import_deny[..])))
            })
            .filter(|(a, d)| !a.is_empty() || !d.is_empty())
            .collect();
        // Cursors into the sorted originations and statics (the prefixes
        // come sorted: one merge walk each).
        let mut at_own = vec![0usize; own.len()];
        let mut at_static = vec![0usize; statics.len()];
        let mut known: rustc_hash::FxHashMap<Vec<u64>, u32> = Default::default();
        let mut sig: Vec<u64> = Vec::new();
        let mut out = Classes {
            of: Vec::with_capacity(prefixes.len()),
            rep: Vec::new(),
            size: Vec::new(),
        };
        debug_assert!(
            prefixes.windows(2).all(|w| w[0] < w[1]),
            "prefixes sorted and distinct (Ctx::prefixes)"
        );
        for (i, &prefix) in prefixes.iter().enumerate() {
            sig.clear();
            let mut word = 0u64;
            let mut bits = 0u32;
            let mut bit = |b: bool, sig: &mut Vec<u64>| {
                word |= u64::from(b) << bits;
                bits += 1;
                if bits == 64 {
                    sig.push(word);
                    (word, bits) = (0, 0);
                }
            };
            bit(prefix.network().is_ipv4(), &mut sig);
            bit(prefix.prefix_len() == 0, &mut sig);
            let has = |list: &[Path], at: &mut usize| {
                while list.get(*at).is_some_and(|p| p.prefix < prefix) {
                    *at += 1;
                }
                list.get(*at).is_some_and(|p| p.prefix == prefix)
            };
            for (k, &d) in own.iter().enumerate() {
                let b = has(&ctx.dirs[d].own, &mut at_own[k]);
                bit(b, &mut sig);
            }
            // A gateway's statics carry their site and address: a prefix
            // with any is a class of its own (they are few).
            let single = statics
                .iter()
                .zip(&mut at_static)
                .fold(false, |any, (&d, at)| has(&ctx.dirs[d].statics, at) | any);
            for r in &inside {
                bit(covered_by(prefix, r), &mut sig);
            }
            for r in &equal {
                bit(r.contains(&prefix), &mut sig);
            }
            for (allow, deny) in &filters {
                bit(allow.is_empty() || covered_by(prefix, allow), &mut sig);
                bit(covered_by(prefix, deny), &mut sig);
            }
            sig.push(word);
            let class = if single {
                None
            } else {
                known.get(&sig[..]).copied()
            };
            let c = match class {
                Some(c) => {
                    out.size[c as usize] += 1;
                    c
                }
                None => {
                    let c = out.rep.len() as u32;
                    out.rep.push(i);
                    out.size.push(1);
                    if !single {
                        known.insert(sig.clone(), c);
                    }
                    c
                }
            };
            out.of.push(c);
        }
        out
    }
}

impl PrefixState {
    /// The same state for another prefix of the same class.
    fn set_prefix(&mut self, prefix: IpNet) {
        let paths = self
            .rx
            .iter_mut()
            .flatten()
            .map(|r| &mut r.path)
            .chain(self.adv.iter_mut().flatten())
            .chain(self.best.iter_mut().flatten());
        for p in paths {
            p.prefix = prefix;
        }
    }
}

/// Each prefix converged on its own (one per [`Classes`] class); `None`
/// when a limited session passes its limit in some round (then only
/// lockstep rounds are faithful).
fn converge_each(ctx: &Ctx, prefixes: &[IpNet]) -> Option<Converged> {
    let mut out = Converged::new(ctx);
    let classes = Classes::new(ctx, prefixes);
    let mut done: Vec<Option<PrefixState>> = Vec::with_capacity(classes.rep.len());
    let mut st = PrefixState::new(ctx);
    let mut next: Vec<Option<Received>> = vec![None; ctx.dirs.len()];
    let limited: Vec<usize> = (0..ctx.dirs.len())
        .filter(|&d| ctx.dirs[d].limit.is_some())
        .collect();
    // Per limited slot: accepted routes in each round, and from each round
    // on (prefixes that have converged keep their count).
    let mut in_round = vec![vec![0usize; limited.len()]; MAX_ROUNDS + 2];
    let mut from_round = vec![vec![0usize; limited.len()]; MAX_ROUNDS + 2];
    let mut changed = vec![true; ctx.dirs.len()];
    let mut moved = vec![false; ctx.nodes.len()];
    for (&rep, &size) in classes.rep.iter().zip(&classes.size) {
        let prefix = prefixes[rep];
        st.rx.iter_mut().for_each(|r| *r = None);
        let mut rounds = MAX_ROUNDS;
        let mut converged = false;
        for (round, counts) in in_round.iter_mut().enumerate().take(MAX_ROUNDS + 1).skip(1) {
            st.round_changed(
                ctx,
                prefix,
                &mut next,
                round == 1,
                (&mut changed, &mut moved),
            );
            for (c, &d) in counts.iter_mut().zip(&limited) {
                *c += size * usize::from(accepted(&next[d]));
            }
            let same = same_received(&st.rx, &next);
            std::mem::swap(&mut st.rx, &mut next);
            if same {
                rounds = round;
                converged = true;
                break;
            }
        }
        for (c, &d) in from_round[rounds + 1].iter_mut().zip(&limited) {
            *c += size * usize::from(accepted(&st.rx[d]));
        }
        out.rounds = out.rounds.max(rounds);
        out.converged &= converged;
        st.finish(ctx);
        done.push(Some(std::mem::replace(&mut st, PrefixState::new(ctx))));
    }
    for (k, &d) in limited.iter().enumerate() {
        let limit = ctx.dirs[d].limit.unwrap_or(usize::MAX);
        let mut carried = 0;
        for (now, from) in in_round.iter().zip(&from_round).take(out.rounds + 1) {
            carried += from[k];
            if now[k] + carried > limit {
                return None;
            }
        }
    }
    // Every prefix in order, from its class's state (the last member takes
    // it, the others copy it), into lists sized exactly beforehand.
    let mut rx = vec![0usize; ctx.dirs.len()];
    let mut adv = vec![0usize; ctx.dirs.len()];
    let mut best = vec![0usize; ctx.nodes.len()];
    for (st, &size) in done.iter().flatten().zip(&classes.size) {
        for (n, r) in rx.iter_mut().zip(&st.rx) {
            *n += size * usize::from(r.is_some());
        }
        for (n, p) in adv.iter_mut().zip(&st.adv) {
            *n += size * usize::from(p.is_some());
        }
        for (n, b) in best.iter_mut().zip(&st.best) {
            *n += size * usize::from(!b.is_empty());
        }
    }
    for (v, n) in out.rx.iter_mut().zip(rx) {
        v.reserve_exact(n);
    }
    for (v, n) in out.adv.iter_mut().zip(adv) {
        v.reserve_exact(n);
    }
    for (v, n) in out.best.iter_mut().zip(best) {
        v.reserve_exact(n);
    }
    let mut left = classes.size;
    for (&prefix, &c) in prefixes.iter().zip(&classes.of) {
        let c = c as usize;
        left[c] -= 1;
        if left[c] > 0 {
            if let Some(st) = &done[c] {
                out.push_copy(prefix, st);
                continue;
            }
        }
        let mut st = done[c].take().unwrap_or_else(|| PrefixState::new(ctx));
        if prefix != prefixes[classes.rep[c]] {
            st.set_prefix(prefix);
        }
        out.push(prefix, &mut st);
    }
    Some(out)
}

/// The whole table in synchronous rounds, limits applied each round.
fn converge_lockstep(ctx: &Ctx, prefixes: &[IpNet]) -> Converged {
    let mut states: Vec<PrefixState> = prefixes.iter().map(|_| PrefixState::new(ctx)).collect();
    let mut nexts: Vec<Vec<Option<Received>>> = prefixes
        .iter()
        .map(|_| vec![None; ctx.dirs.len()])
        .collect();
    let mut out = Converged::new(ctx);
    out.converged = false;
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        rounds += 1;
        for ((st, next), &prefix) in states.iter_mut().zip(&mut nexts).zip(prefixes) {
            st.round(ctx, prefix, next);
        }
        for (d, dir) in ctx.dirs.iter().enumerate() {
            let Some(limit) = dir.limit else { continue };
            let got = nexts.iter().filter(|n| accepted(&n[d])).count();
            if got > limit {
                for r in nexts.iter_mut().filter_map(|n| n[d].as_mut()) {
                    r.status = Status::Rejected(Reject::LimitExceeded {
                        limit,
                        received: got,
                    });
                }
            }
        }
        let same = states
            .iter()
            .zip(&nexts)
            .all(|(st, next)| same_received(&st.rx, next));
        for (st, next) in states.iter_mut().zip(&mut nexts) {
            std::mem::swap(&mut st.rx, next);
        }
        if same {
            out.converged = true;
            break;
        }
    }
    out.rounds = rounds;
    for (mut st, &prefix) in states.into_iter().zip(prefixes) {
        st.finish(ctx);
        out.push(prefix, &mut st);
    }
    out
}

/// Locally originated paths of a speaker on one session.
fn originations(t: &Topology, cond: &Conditions, me: Node, s: &Session) -> Vec<Path> {
    let peer = s.other(me);
    let cfg = s.cfg(t, me);
    let (self_v4, self_v6) = (
        self_address(t, me, cfg, true),
        self_address(t, me, cfg, false),
    );
    let no_path: Arc<[u32]> = Arc::from([]);
    let mk = |prefix: IpNet, is_static: bool| Path {
        prefix,
        as_path: no_path.clone(),
        next_hop: if prefix.network().is_ipv4() {
            self_v4
        } else {
            self_v6
        },
        no_advertise: false,
        origin: me,
        is_static,
        session: None,
    };
    let mut v: Vec<Path> = Vec::new();
    match me {
        Node::RouteServer(r) => {
            if matches!(peer, Node::Nva(_)) {
                v.extend(
                    served_ranges(t, t.route_servers[r.idx()].vnet, true)
                        .into_iter()
                        .map(|p| mk(p, false)),
                );
            }
        }
        Node::Nva(n) => {
            if let Some(c) = cfg {
                v.extend(c.originate.iter().map(|&p| mk(p, false)));
                if c.redistribute_static {
                    v.extend(t.nvas[n.idx()].routes.iter().map(|r| mk(r.prefix, false)));
                }
            }
        }
        Node::Gateway(g) => {
            let gw = t.gateway(g);
            if matches!(peer, Node::Site(_) | Node::Msee(_)) {
                v.extend(
                    served_ranges(t, gw.vnet, true)
                        .into_iter()
                        .map(|p| mk(p, false)),
                );
            }
        }
        Node::Site(si) => {
            let site = &t.sites[si.idx()];
            match peer {
                Node::Gateway(g) => {
                    for c in site.connections.iter().filter(|c| c.gateway == g) {
                        v.extend(c.advertise.iter().map(|&p| mk(p, false)));
                    }
                }
                Node::Msee(_) => {
                    for c in site
                        .connections
                        .iter()
                        .filter(|c| t.gateway(c.gateway).kind == GatewayKind::ExpressRoute)
                    {
                        v.extend(c.advertise.iter().map(|&p| mk(p, false)));
                    }
                }
                _ => {
                    if let Some(c) = cfg {
                        v.extend(c.originate.iter().map(|&p| mk(p, false)));
                    }
                }
            }
        }
        Node::Msee(_) => {}
    }
    if let Some(extra) = cond.advertised.get(&me) {
        v.extend(extra.iter().map(|&p| mk(p, false)));
    }
    if let Some(gone) = cond.withdrawn.get(&me) {
        v.retain(|p| !gone.contains(&p.prefix));
    }
    v.sort_by_key(|p| p.prefix);
    v.dedup_by(|a, b| a.prefix == b.prefix);
    v
}

/// The static (local network gateway) prefixes a gateway holds.
pub fn gateway_statics(t: &Topology, cond: &Conditions, g: GatewayId) -> Vec<Path> {
    let mut v = Vec::new();
    for (si, s) in t.sites.iter().enumerate() {
        let site = Node::Site(SiteId(si as u32));
        if cond.down_speakers.contains(&site) || cond.session_down(site, Node::Gateway(g)) {
            continue;
        }
        for c in s
            .connections
            .iter()
            .filter(|c| c.gateway == g && !c.bgp && t.gateway(g).kind == GatewayKind::Vpn)
        {
            for &p in &c.advertise {
                v.push(Path {
                    prefix: p,
                    as_path: Arc::from([]),
                    next_hop: s.cpe.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    no_advertise: false,
                    origin: site,
                    is_static: true,
                    session: None,
                });
            }
        }
    }
    v
}

/// What slot `d`'s sender sends for `prefix`, given its best paths for it.
fn export_prefix(ctx: &Ctx, d: usize, prefix: IpNet, best: &[Path]) -> Option<Path> {
    let t = ctx.t;
    let dir = &ctx.dirs[d];
    let (from, to, si) = (dir.from, dir.to, dir.si);
    let own = dir
        .own
        .binary_search_by_key(&prefix, |p| p.prefix)
        .ok()
        .map(|i| &dir.own[i]);
    // Originated first; else the best path, when the sender passes it on.
    let first = best.first().filter(|p| !p.no_advertise);
    let cand = match (own, from) {
        (Some(o), _) => Some(o),
        (None, Node::Site(_)) => None, // sites do not re-advertise learned routes
        (None, Node::RouteServer(r)) => first.filter(|p| {
            let rs = &t.route_servers[r.idx()];
            let from_gateway = matches!(p.origin, Node::Gateway(_) | Node::Site(_) | Node::Msee(_));
            // Like a route reflector, never back to the peer it came from;
            // gateway routes to NVAs only with branch-to-branch; R30: only NVA
            // routes go to the gateways; R25: not the ranges the gateway
            // advertises itself.
            p.session != Some(si)
                && match to {
                    Node::Nva(_) => !from_gateway || rs.branch_to_branch,
                    Node::Gateway(_) => {
                        !from_gateway && !dir.ranges.iter().any(|r| r.contains(&prefix))
                    }
                    _ => true,
                }
        }),
        (None, Node::Gateway(g)) => {
            let gw = t.gateway(g);
            let lo = dir.statics.partition_point(|p| p.prefix < prefix);
            let statics = dir.statics[lo..].iter().take_while(|p| p.prefix == prefix);
            let to_edge = matches!(to, Node::Site(_) | Node::Msee(_));
            first.into_iter().chain(statics).find(|p| {
                if to_edge {
                    // R36: never 0/0 (VPN), nothing overlapping a VNet prefix,
                    // nothing back to where it came from. "Overlaps a VNet
                    // prefix": equal to or inside one; supernets such as
                    // 0.0.0.0/1 pass (R37, and the 0/1 + 128/1 workaround).
                    let default = prefix.prefix_len() == 0;
                    let overlaps = dir.ranges.iter().any(|r| r.contains(&prefix));
                    let back = p.session == Some(si) || (p.is_static && p.origin == to);
                    !(overlaps || back || (default && gw.kind == GatewayKind::Vpn))
                } else {
                    // To the Route Server (iBGP, branch-to-branch): what the
                    // gateway learned from sites.
                    matches!(p.origin, Node::Site(_) | Node::Msee(_)) && p.session != Some(si)
                }
            })
        }
        (None, Node::Nva(_) | Node::Msee(_)) => first.filter(|p| {
            // The edge strips private ASNs toward the site, so loop
            // prevention cannot work there: never send a route back on the
            // session it came from. iBGP split horizon: no iBGP-learned
            // route to an iBGP peer.
            let back_to_edge_peer = matches!(from, Node::Msee(_)) && p.session == Some(si);
            let ibgp_to_ibgp = dir.ibgp && p.session.is_some_and(|ls| ctx.sessions[ls].ibgp);
            !back_to_edge_peer && !ibgp_to_ibgp
        }),
    }?;
    // Export policy and AS path handling.
    let cfg = dir.cfg_from;
    if let Some(c) = cfg
        && ((!c.export_allow.is_empty() && !covered_by(prefix, &c.export_allow))
            || covered_by(prefix, &c.export_deny))
    {
        return None;
    }
    let mut p = cand.clone();
    if !dir.ibgp {
        let memo = &ctx.exported[d];
        let known = memo
            .borrow()
            .as_ref()
            .filter(|(input, _)| **input == *p.as_path)
            .map(|(_, out)| out.clone());
        p.as_path = match known {
            Some(out) => out,
            None => {
                let out = export_as_path(dir, &p.as_path);
                *memo.borrow_mut() = Some((p.as_path.clone(), out.clone()));
                out
            }
        };
    }
    // Next hop: Route Servers and the edge keep it (not in the data path);
    // everyone else sets itself, or the configured address (R22).
    match from {
        Node::RouteServer(_) if p.origin != from => {}
        Node::Msee(_) => {}
        _ => {
            let own = if prefix.network().is_ipv4() {
                dir.self_v4
            } else {
                dir.self_v6
            };
            p.next_hop = cfg.and_then(|c| c.next_hop).unwrap_or(own);
        }
    }
    if cfg.is_some_and(|c| c.no_advertise) {
        p.no_advertise = true;
    }
    p.session = None;
    p.is_static = false;
    Some(p)
}

/// The AS path a sender exports on an eBGP slot: its ASN (prepended as
/// configured), AS override, and the edge's private-ASN stripping (R38).
fn export_as_path(dir: &Dir, as_path: &[u32]) -> Arc<[u32]> {
    let cfg = dir.cfg_from;
    let (from, to) = (dir.from, dir.to);
    let (my_asn, peer_asn) = (dir.from_asn, dir.to_asn);
    let mut path: Vec<u32> = Vec::with_capacity(as_path.len() + 4);
    let copies = 1 + cfg.map_or(0, |c| c.prepend as usize);
    path.extend(std::iter::repeat_n(my_asn, copies));
    let as_override = cfg.is_some_and(|c| c.as_override);
    path.extend(as_path.iter().map(|&a| {
        if as_override && a == peer_asn {
            my_asn
        } else {
            a
        }
    }));
    if let Node::Msee(_) = from
        && let Node::Site(_) = to
    {
        // R38: the edge strips private ASNs toward on-premises.
        path.retain(|&a| !is_private_asn(a));
        path.insert(0, MSEE_ASN);
        path.dedup_by(|a, b| *a == MSEE_ASN && *b == MSEE_ASN);
    }
    Arc::from(path)
}

/// What slot `d`'s receiver makes of a path (the limit is applied by the
/// caller, over the whole session).
fn import_path(ctx: &Ctx, d: usize, path: &Path) -> Received {
    let dir = &ctx.dirs[d];
    let (me, from) = (dir.to, dir.from);
    let mut p = path.clone();
    p.session = Some(dir.si);
    let reject = if p.as_path.len() > MAX_AS_PATH {
        Some(Reject::PathTooLong)
    } else if matches!(me, Node::RouteServer(_)) && p.as_path.contains(&ROUTE_SERVER_ASN) {
        Some(Reject::RouteServerAsn)
    } else if matches!(me, Node::Gateway(_))
        && matches!(from, Node::Msee(_))
        && p.as_path.contains(&ROUTE_SERVER_ASN)
    {
        Some(Reject::AzureAsnFromEdge)
    } else if !dir.ibgp && p.as_path.contains(&dir.to_asn) {
        Some(Reject::AsLoop(dir.to_asn))
    } else if matches!(me, Node::RouteServer(_)) && p.prefix.network().is_ipv6() {
        Some(Reject::Ipv6Unsupported)
    } else if matches!(me, Node::Gateway(_))
        && matches!(from, Node::Site(_) | Node::Msee(_))
        && dir.to_vnet_prefixes.contains(&p.prefix)
    {
        Some(Reject::VnetPrefix)
    } else if let Some(c) = dir.cfg_to
        && ((!c.import_allow.is_empty() && !covered_by(p.prefix, &c.import_allow))
            || covered_by(p.prefix, &c.import_deny))
    {
        Some(Reject::ImportFilter)
    } else {
        None
    };
    let status = match reject {
        Some(r) => Status::Rejected(r),
        None => Status::NotBest(Loser::Pending),
    };
    Received { path: p, status }
}

/// Best-path selection of one speaker for one prefix; marks the status of
/// every path it received for it.
fn select_prefix(ctx: &Ctx, n: usize, rx: &mut [Option<Received>]) -> Vec<Path> {
    let t = ctx.t;
    let me = ctx.nodes[n];
    let ecmp = matches!(me, Node::RouteServer(_));
    // (slot, session, key, next hop) of every accepted path, sessions in order.
    let mut scratch = ctx.scratch.borrow_mut();
    let (cands, hops) = &mut *scratch;
    cands.clear();
    hops.clear();
    for &d in &ctx.inbox[n] {
        let Some(r) = &rx[d] else { continue };
        if matches!(r.status, Status::Rejected(_)) {
            continue;
        }
        let dir = &ctx.dirs[d];
        let p = &r.path;
        // A site prefers what it learns inside its own tunnels (the overlay,
        // as operators configure with local-pref) over what Azure's edge
        // tells it; a Route Server applies its routing preference (R31)
        // between gateway and NVA paths.
        let class = match me {
            Node::Site(_) => u32::from(dir.cfg_to.is_none_or(|c| c.over.is_none())),
            Node::RouteServer(r) => {
                let er = matches!(p.origin, Node::Gateway(_) | Node::Site(_) | Node::Msee(_))
                    && gateway_is_er(dir.from, t);
                match t.route_servers[r.idx()].routing_preference {
                    RoutingPreference::ExpressRoute => u32::from(!er),
                    RoutingPreference::VpnNva => u32::from(er),
                    RoutingPreference::AsPath => 0,
                }
            }
            _ => 0,
        };
        let weight = ctx.sessions[dir.si].weight;
        cands.push((
            d,
            dir.si,
            (class, u32::MAX - weight, p.as_path.len()),
            p.next_hop,
        ));
    }
    let Some((min_key, min_si)) = cands.iter().map(|c| (c.2, c.1)).min() else {
        return Vec::new();
    };
    for &(d, si, k, nh) in cands.iter() {
        let winner = if ecmp {
            k == min_key
        } else {
            (k, si) == (min_key, min_si)
        };
        let status = if winner && !hops.iter().any(|h| h.0 == nh) {
            hops.push((nh, si, d));
            Status::Best
        } else if winner {
            Status::NotBest(Loser::SameNextHop)
        } else if k.0 > min_key.0 {
            Status::NotBest(Loser::RoutingPreference)
        } else if k.1 > min_key.1 {
            Status::NotBest(Loser::Weight)
        } else if k.2 > min_key.2 {
            Status::NotBest(Loser::LongerAsPath {
                len: k.2,
                best: min_key.2,
            })
        } else {
            Status::NotBest(Loser::EarlierSession)
        };
        if let Some(r) = rx[d].as_mut() {
            r.status = status;
        }
    }
    hops.sort();
    hops.iter()
        .filter_map(|&(_, _, d)| rx[d].as_ref().map(|r| r.path.clone()))
        .collect()
}

fn gateway_is_er(n: Node, t: &Topology) -> bool {
    matches!(n, Node::Gateway(g) if t.gateway(g).kind == GatewayKind::ExpressRoute)
}

impl BgpState {
    /// Sessions of a speaker, with their index.
    pub fn sessions_of(&self, n: Node) -> impl Iterator<Item = (usize, &Session)> + '_ {
        self.sessions
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.a == n || s.b == n)
    }

    /// The paths a speaker accepted (not rejected) on its Up sessions, with
    /// the session they came on.
    pub fn accepted(&self, me: Node) -> impl Iterator<Item = (usize, &Session, &Received)> + '_ {
        self.sessions_of(me)
            .filter(|(_, s)| s.state == SessionState::Up)
            .flat_map(move |(si, s)| {
                self.received
                    .get(&(me, si))
                    .into_iter()
                    .flat_map(|m| m.values())
                    .filter(|r| !matches!(r.status, Status::Rejected(_)))
                    .map(move |r| (si, s, r))
            })
    }

    /// A speaker's best paths.
    pub fn best_of(&self, n: Node) -> impl Iterator<Item = (&IpNet, &Vec<Path>)> + '_ {
        self.best.get(&n).into_iter().flat_map(ByPrefix::iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::events::{self, Event};

    /// A prefix-ordered list behaves as the map it replaces: pairs out of
    /// order are sorted, the last of equal prefixes kept; lookups and
    /// inserts find a prefix's place.
    #[test]
    fn by_prefix_is_the_map_it_replaces() {
        let p = |s: &str| s.parse::<IpNet>().unwrap();
        let pairs = vec![
            (p("10.1.0.0/16"), 1),
            (p("10.0.0.0/8"), 2),
            (p("10.1.0.0/16"), 3),
            (p("::/0"), 4),
            (p("0.0.0.0/0"), 5),
        ];
        let map: BTreeMap<IpNet, i32> = pairs.iter().cloned().collect();
        let mut list = ByPrefix::from_pairs(pairs);
        let want: Vec<_> = map.iter().collect();
        assert_eq!(list.iter().collect::<Vec<_>>(), want);
        assert_eq!(list.len(), 4);
        assert_eq!(list.get(&p("10.1.0.0/16")), Some(&3));
        assert_eq!(list.get(&p("10.2.0.0/16")), None);
        assert_eq!(list.insert(p("10.2.0.0/16"), 6), None);
        assert_eq!(list.insert(p("0.0.0.0/0"), 7), Some(5));
        let mut map = map;
        map.insert(p("10.2.0.0/16"), 6);
        map.insert(p("0.0.0.0/0"), 7);
        assert_eq!(
            list.values().collect::<Vec<_>>(),
            map.values().collect::<Vec<_>>()
        );
        // Already in order: kept as given.
        let sorted = ByPrefix::from_pairs(vec![(p("10.0.0.0/8"), 1), (p("10.0.0.0/16"), 2)]);
        assert_eq!(sorted.values().copied().collect::<Vec<_>>(), vec![1, 2]);
    }

    /// Every prefix converged alone (classes of one), in prefix order.
    fn one_by_one(ctx: &Ctx, prefixes: &[IpNet]) -> Converged {
        let mut all = Converged::new(ctx);
        for &p in prefixes {
            let one = converge_each(ctx, &[p]).expect("no limit passed");
            for (d, v) in one.rx.into_iter().enumerate() {
                all.rx[d].extend(v);
            }
            for (d, v) in one.adv.into_iter().enumerate() {
                all.adv[d].extend(v);
            }
            for (n, v) in one.best.into_iter().enumerate() {
                all.best[n].extend(v);
            }
        }
        all
    }

    /// On every built-in topology, with every BGP speaker advertising
    /// prefixes alike (100.64.k.0/24), prefixes inside, equal to and
    /// around the VNet ranges, the default routes and IPv6: prefixes alike
    /// share one class, and the states copied to a class's members are
    /// those each prefix converges to alone. (Gateways' R25/R36/R37 range
    /// tests, Route Server families and prefix filters all appear among the
    /// built-ins.)
    #[test]
    fn prefixes_alike_share_one_convergence() {
        let mut shared_classes = 0;
        // Each built-in as written, then with prefix filters on every NVA
        // session (none of the built-ins has any): 100.64.1 denied on
        // export, 100.64.2 on import, and on the first session only
        // 100.64.0.0/23 allowed out.
        let variants = crate::topology::BUILTIN.iter().flat_map(|&(name, src)| {
            let t = crate::topology::load_str(name, src).expect("loads");
            let mut f = t.clone();
            for (k, s) in f.nvas.iter_mut().flat_map(|n| &mut n.bgp).enumerate() {
                s.export_deny = vec!["100.64.1.0/24".parse().unwrap()];
                s.import_deny = vec!["100.64.2.0/24".parse().unwrap()];
                if k == 0 {
                    s.export_allow = vec!["100.64.0.0/23".parse().unwrap()];
                }
            }
            [(name, false, t), (name, true, f)]
        });
        for (name, filtered, t) in variants {
            let mut probes: Vec<IpNet> = (0..4)
                .map(|k| format!("100.64.{k}.0/24").parse().unwrap())
                .collect();
            for v in &t.vnets {
                for r in &v.address_space {
                    probes.push(*r);
                    if let Ok(mut subs) =
                        r.subnets(r.prefix_len().saturating_add(8).min(r.max_prefix_len()))
                    {
                        probes.extend(subs.next());
                    }
                    probes.extend(r.supernet());
                }
            }
            probes.extend(
                ["0.0.0.0/0", "::/0", "fd00::/64", "10.0.0.0/8"]
                    .map(|p| p.parse::<IpNet>().unwrap()),
            );
            let evs: Vec<Event> = all_nodes(&t)
                .into_iter()
                .filter(|n| matches!(n, Node::Nva(_) | Node::Site(_)))
                .flat_map(|n| {
                    let speaker = n.name(&t);
                    probes.iter().map(move |&prefix| Event::Advertise {
                        speaker: speaker.clone(),
                        prefix,
                    })
                })
                .collect();
            let (topo, cond) = events::apply(&t, &evs).unwrap();
            let (sessions, _) = sessions(&topo, &cond);
            let ctx = Ctx::new(&topo, &cond, &sessions);
            let prefixes = ctx.prefixes();
            let classes = Classes::new(&ctx, &prefixes);
            let class_of = |p: &str| {
                let p: IpNet = p.parse().unwrap();
                prefixes.iter().position(|&x| x == p).map(|i| classes.of[i])
            };
            if let Some(c) = class_of("100.64.0.0/24")
                && !filtered
            {
                for k in 1..4 {
                    assert_eq!(class_of(&format!("100.64.{k}.0/24")), Some(c), "{name}");
                }
                shared_classes += 1;
            }
            let Some(shared) = converge_each(&ctx, &prefixes) else {
                continue;
            };
            let alone = one_by_one(&ctx, &prefixes);
            assert_eq!(shared.rx, alone.rx, "{name}");
            assert_eq!(shared.adv, alone.adv, "{name}");
            assert_eq!(shared.best, alone.best, "{name}");
        }
        assert!(shared_classes > 10, "{shared_classes}");
    }
}
