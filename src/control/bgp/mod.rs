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

mod classes;
mod converge;
mod decision;
mod originate;
mod policy;
mod rib;
mod session;

use classes::*;
use converge::*;
use decision::*;
use policy::*;
use rib::*;

pub use originate::gateway_statics;
use originate::*;
pub use rib::{ByPrefix, Rib};
use session::*;
pub use session::{Session, SessionState, served_vnets, sessions, tunnels_of};

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
    /// Communities, carried unchanged (R26: a Route Server keeps them),
    /// `high:low` as one number.
    pub communities: Arc<[u32]>,
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
    /// Load-balancer backends their health probe finds down: (load
    /// balancer, backend NIC).
    pub down_backends: BTreeSet<(LoadBalancerId, NicId)>,
    /// Instances of a Route Server (`RouteServiceRole_IN_k`) or of an
    /// active-active VPN gateway that are down: their sessions are down,
    /// the other instance's stay up.
    pub down_instances: BTreeSet<(Node, u8)>,
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
