//! Export and import policy per sender and receiver kind: what a speaker
//! sends on a session (AS path, next hop, filters, NO_ADVERTISE, as-override)
//! and what a receiver accepts (loop checks, R27, R34, R37, filters).

use super::*;

pub(super) fn is_private_asn(a: u32) -> bool {
    (64512..=65534).contains(&a) || (4_200_000_000..=4_294_967_294).contains(&a)
}

pub(super) fn covered_by(p: IpNet, list: &[IpNet]) -> bool {
    list.iter().any(|f| f.contains(&p))
}

/// Whether a path `from` holds came from a gateway: by the session it
/// arrived on (R30), or, held without one, by where it entered BGP.
fn arrived_from_gateway(ctx: &Ctx, from: Node, p: &Path) -> bool {
    match p.session {
        Some(ls) => matches!(ctx.sessions[ls].other(from), Node::Gateway(_)),
        None => matches!(p.origin, Node::Gateway(_) | Node::Site(_) | Node::Msee(_)),
    }
}

/// What slot `d`'s sender sends for `prefix`, given its best paths for it.
pub(super) fn export_prefix(ctx: &Ctx, d: usize, prefix: IpNet, best: &[Path]) -> Option<Path> {
    let t = ctx.t;
    let dir = &ctx.dirs[d];
    let (from, to, si) = (dir.from, dir.to, dir.si);
    let own = dir
        .own
        .binary_search_by_key(&prefix, |p| p.prefix)
        .ok()
        .map(|i| &dir.own[i]);
    // Originated first; else the best path, when the sender passes it on.
    // NO_ADVERTISE: to nobody; NO_EXPORT: to no eBGP peer (RFC 1997).
    let first = best.first().filter(|p| {
        !p.no_advertise && (dir.ibgp || !p.communities.contains(&crate::topology::NO_EXPORT))
    });
    let cand = match (own, from) {
        (Some(o), _) => Some(o),
        (None, Node::Site(_)) => None, // sites do not re-advertise learned routes
        (None, Node::RouteServer(r)) => first.filter(|p| {
            let rs = &t.route_servers[r.idx()];
            // Decided by the session the route arrived on, not where it
            // originated: a branch's route an NVA learned over its own
            // tunnel is an NVA route (R30).
            let from_gateway = arrived_from_gateway(ctx, from, p);
            // Like a route reflector, never back to the peer it came from;
            // gateway routes to NVAs only with branch-to-branch; R30: NVA
            // routes, and one gateway's routes to the other (ExpressRoute ↔
            // VPN), go to the gateways (which peer only with
            // branch-to-branch); R25: not the ranges the gateway advertises
            // itself.
            let back = match p.session {
                // Not on any session with the speaker it came from (an NVA
                // has one with each instance).
                Some(ls) => ls == si || ctx.sessions[ls].other(from) == to,
                None => false,
            };
            !back
                && match to {
                    Node::Nva(_) => !from_gateway || rs.branch_to_branch,
                    Node::Gateway(_) => !dir.ranges.iter().any(|r| r.contains(&prefix)),
                    _ => true,
                }
        }),
        (None, Node::Gateway(g)) => {
            let gw = t.gateway(g);
            let lo = dir.statics.partition_point(|p| p.prefix < prefix);
            let statics = dir.statics[lo..].iter().take_while(|p| p.prefix == prefix);
            // Sites, the edge, and NVAs connected over IPsec with BGP.
            let to_edge = !matches!(to, Node::RouteServer(_));
            first.into_iter().chain(statics).find(|p| {
                if to_edge {
                    // R36: never 0/0 (VPN), nothing overlapping a VNet prefix,
                    // nothing back to where it came from. "Overlaps a VNet
                    // prefix": equal to or inside one; supernets such as
                    // 0.0.0.0/1 pass (R37, and the 0/1 + 128/1 workaround).
                    let default = prefix.prefix_len() == 0;
                    let overlaps = dir.ranges.iter().any(|r| r.contains(&prefix));
                    // Not back to the peer it came from, on any instance.
                    let back = p
                        .session
                        .is_some_and(|ls| ls == si || ctx.sessions[ls].other(from) == to)
                        || (p.is_static && p.origin == to);
                    !(overlaps || back || (default && gw.kind == GatewayKind::Vpn))
                } else {
                    // To the Route Server (iBGP, branch-to-branch): what the
                    // gateway learned from sites.
                    let from_edge = match p.session {
                        Some(ls) => !matches!(ctx.sessions[ls].other(from), Node::RouteServer(_)),
                        None => {
                            matches!(p.origin, Node::Site(_) | Node::Msee(_) | Node::Gateway(_))
                        }
                    };
                    from_edge && p.session != Some(si)
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
    // The first export rule that holds the prefix (a route map).
    let rule = cfg.and_then(|c| c.policy.iter().find(|r| r.matches(&prefix)));
    if rule.is_some_and(|r| r.deny) {
        return None;
    }
    let mut p = cand.clone();
    if let Some(r) = rule
        && (r.remove_private_as || !r.delete_as.is_empty() || !r.replace_as.is_empty())
    {
        p.as_path = Arc::from(rewrite_as_path(r, dir.from_asn, &p.as_path));
    }
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
    // Next hop: Route Servers keep an NVA's (R22: they are not in the data
    // path) but set their own instance IP on what they relay from gateways
    // (R26); the edge keeps it; everyone else sets itself, or the
    // configured address (R22).
    match from {
        Node::RouteServer(_)
            if p.origin != from
                && !(matches!(to, Node::Nva(_)) && arrived_from_gateway(ctx, from, cand)) => {}
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
    if let Some(r) = rule {
        if r.prepend > 0 && !dir.ibgp {
            let mut path = vec![dir.from_asn; usize::from(r.prepend)];
            path.extend_from_slice(&p.as_path);
            p.as_path = Arc::from(path);
        }
        if !r.communities.is_empty() {
            let mut c = p.communities.to_vec();
            for &x in &r.communities {
                if !c.contains(&x) {
                    c.push(x);
                }
            }
            p.communities = Arc::from(c);
        }
        p.no_advertise |= r.no_advertise;
    }
    if cfg.is_some_and(|c| c.no_advertise) {
        p.no_advertise = true;
    }
    p.session = None;
    p.is_static = false;
    Some(p)
}

/// An export rule's rewrite of the received AS path, before the sender
/// adds its own ASN: private ASNs removed, listed ASNs deleted, others
/// replaced by the sender's ASN (`set as-path exclude`, `replace`).
fn rewrite_as_path(r: &ExportRule, my_asn: u32, as_path: &[u32]) -> Vec<u32> {
    as_path
        .iter()
        .filter(|&&a| !(r.delete_as.contains(&a) || (r.remove_private_as && is_private_asn(a))))
        .map(|&a| if r.replace_as.contains(&a) { my_asn } else { a })
        .collect()
}

/// The AS path a sender exports on an eBGP slot: its ASN (prepended as
/// configured), AS override, and the edge's private-ASN stripping (R38).
pub(super) fn export_as_path(dir: &Dir, as_path: &[u32]) -> Arc<[u32]> {
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
pub(super) fn import_path(ctx: &Ctx, d: usize, path: &Path) -> Received {
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
        && !matches!(from, Node::RouteServer(_))
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
