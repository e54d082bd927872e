//! Best-path selection for one speaker and prefix: a labelled chain of
//! tie-breakers, each loser marked with the step it lost on.

use super::*;

/// What a path is ranked by, one field per tie-breaker in decision order:
/// the first field that differs decides, lower wins. Paths equal on every
/// field are ECMP at a Route Server (R28), else the earlier session wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Rank {
    /// 1. Preference class: a site prefers what it learns inside its own
    ///    tunnels over what Azure's edge tells it; a Route Server applies
    ///    its routing preference between gateway and NVA paths (R31).
    preference: u32,
    /// 2. Connection weight, higher wins (R39), stored as `u32::MAX - weight`.
    weight: u32,
    /// 3. AS-path length, shorter wins (R28).
    as_path: usize,
}

impl Rank {
    /// The tie-breaker on which this path lost to `best` (the least rank),
    /// `None` when it ties with it on every one.
    fn lost_on(&self, best: &Rank) -> Option<Loser> {
        if self.preference != best.preference {
            Some(Loser::RoutingPreference)
        } else if self.weight != best.weight {
            Some(Loser::Weight)
        } else if self.as_path != best.as_path {
            Some(Loser::LongerAsPath {
                len: self.as_path,
                best: best.as_path,
            })
        } else {
            None
        }
    }
}

/// Best-path selection of one speaker for one prefix; marks the status of
/// every path it received for it.
pub(super) fn select_prefix(ctx: &Ctx, n: usize, rx: &mut [Option<Received>]) -> Vec<Path> {
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
        let rank = Rank {
            preference: class,
            weight: u32::MAX - weight,
            as_path: p.as_path.len(),
        };
        cands.push((d, dir.si, rank, p.next_hop));
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
        } else {
            Status::NotBest(k.lost_on(&min_key).unwrap_or(Loser::EarlierSession))
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

pub(super) fn gateway_is_er(n: Node, t: &Topology) -> bool {
    matches!(n, Node::Gateway(g) if t.gateway(g).kind == GatewayKind::ExpressRoute)
}
