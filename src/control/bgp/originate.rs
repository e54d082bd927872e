//! What each speaker originates on a session: VNet ranges (Route Servers
//! and gateways, R26, R36), NVA `originate` and redistributed statics,
//! site prefixes, and a gateway's static local-network prefixes.

use super::*;

/// Locally originated paths of a speaker on one session.
pub(super) fn originations(t: &Topology, cond: &Conditions, me: Node, s: &Session) -> Vec<Path> {
    let peer = s.other(me);
    let cfg = s.cfg(t, me);
    let (self_v4, self_v6) = (
        self_address(t, me, cfg, s.instance, true),
        self_address(t, me, cfg, s.instance, false),
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
        communities: Arc::from([]),
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
            if matches!(
                peer,
                Node::Site(_) | Node::Msee(_) | Node::Nva(_) | Node::Gateway(_)
            ) {
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
                    communities: Arc::from([]),
                    origin: site,
                    is_static: true,
                    session: None,
                });
            }
        }
    }
    // VNet-to-VNet connections without BGP: the other side's ranges.
    for c in t.vnet_connections.iter().filter(|c| !c.bgp) {
        let Some(other) = c.other(g) else { continue };
        let them = Node::Gateway(other);
        if cond.down_speakers.contains(&them) || cond.session_down(them, Node::Gateway(g)) {
            continue;
        }
        let next_hop = super::gateway_next_hops(t.gateway(other))
            .first()
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        for p in served_ranges(t, t.gateway(other).vnet, false) {
            v.push(Path {
                prefix: p,
                as_path: Arc::from([]),
                next_hop,
                no_advertise: false,
                communities: Arc::from([]),
                origin: them,
                is_static: true,
                session: None,
            });
        }
    }
    v
}
