//! Rules on BGP speakers: NVAs and sites (ASNs, OS routes, tunnels and
//! their far ends, sessions and their peers) and VNet-to-VNet connections.

use super::*;

/// VNet-to-VNet connections join two VPN gateways of different VNets;
/// with BGP their ASNs must differ ([VPN Gateway BGP
/// FAQ](https://learn.microsoft.com/azure/vpn-gateway/vpn-gateway-vpn-faq#bgp)).
pub(super) fn vnet_connections(v: &mut V) {
    let t = v.t;
    for c in &t.vnet_connections {
        let obj = format!("vnet_connection {}", c.name);
        let [a, b] = c.gateways.map(|g| t.gateway(g));
        for (g, field) in [(a, "gateway1"), (b, "gateway2")] {
            if g.kind != GatewayKind::Vpn {
                v.err(
                    c.loc,
                    &obj,
                    Some(field),
                    format!(
                        "{} is an ExpressRoute gateway; VNet-to-VNet connections join VPN gateways",
                        g.name
                    ),
                );
            }
        }
        if a.vnet == b.vnet {
            v.err(
                c.loc,
                &obj,
                Some("gateway2"),
                "both gateways are in the same VNet",
            );
        }
        if c.bgp && a.asn == b.asn {
            v.err(
                c.loc,
                &obj,
                Some("bgp"),
                format!(
                    "BGP between {} and {} needs different ASNs (both {}); give one gateway `asn`",
                    a.name, b.name, a.asn
                ),
            );
        }
    }
}

pub(super) fn nvas_and_sites(v: &mut V) {
    let t = v.t;
    let mut nic_owner: HashMap<NicId, &str> = HashMap::new();
    for (ni, nva) in t.nvas.iter().enumerate() {
        let obj = format!("nva {}", nva.name);
        for &n in &nva.nics {
            if let Some(first) = nic_owner.insert(n, nva.name.as_str()) {
                v.err(
                    nva.loc,
                    &obj,
                    Some("nics"),
                    format!("nic {} already belongs to nva {first}", t.nic(n).name),
                );
            }
        }
        let own_ips: Vec<IpAddr> = nva
            .nics
            .iter()
            .flat_map(|&n| {
                let nic = t.nic(n);
                nic.ips.iter().copied().chain(nic.public_ip)
            })
            .collect();
        for tun in &nva.tunnels {
            if !own_ips.contains(&tun.local) {
                v.err(
                    tun.loc,
                    &format!("{obj}/tunnel {}", tun.name),
                    Some("local"),
                    format!("{} is not an address of {}'s NICs", tun.local, nva.name),
                );
            }
            check_tunnel_peer(v, tun, &obj);
        }
        let peers_rs = nva
            .bgp
            .iter()
            .any(|s| matches!(s.peer, Speaker::RouteServer(_)));
        if let Some(asn) = nva.asn
            && let Some(why) = refused_asn(asn).filter(|_| !RESERVED_ASNS.contains(&asn))
        {
            v.err(nva.loc, &obj, Some("asn"), format!("ASN {asn} is {why}"));
        }
        if let Some(asn) = nva.asn
            && peers_rs
        {
            if RESERVED_ASNS.contains(&asn) {
                v.err(
                    nva.loc,
                    &obj,
                    Some("asn"),
                    format!(
                        "ASN {asn} is reserved by Azure and cannot peer with Route Server (R21)"
                    ),
                );
            } else if asn > 65535 {
                // Documented, not enforced: a published lab peered AS 65555.
                v.warn(
                    nva.loc,
                    &obj,
                    Some("asn"),
                    format!(
                        "ASN {asn}: Route Server's documentation supports only 16-bit ASNs, \
                         but Route Servers accept 32-bit ones in practice (R21)"
                    ),
                );
            }
        }
        for s in &nva.bgp {
            check_session(v, s, &obj, Speaker::Nva(NvaId(ni as u32)));
        }
        for r in &nva.routes {
            if let OsNextHop::Via(ip) = r.next_hop
                && ip.is_ipv4() != r.prefix.network().is_ipv4()
            {
                v.err(
                    r.loc,
                    &format!("{obj}/route {}", r.prefix),
                    Some("via"),
                    "next hop and prefix are of different address families",
                );
            }
        }
    }
    for (si, site) in t.sites.iter().enumerate() {
        let obj = format!("site {}", site.name);
        if let Some(asn) = site.asn.filter(|&a| a != 65515)
            && let Some(why) = refused_asn(asn)
        {
            v.err(site.loc, &obj, Some("asn"), format!("ASN {asn} is {why}"));
        }
        if site.asn == Some(65515) {
            v.err(
                site.loc,
                &obj,
                Some("asn"),
                "65515 is Azure's own ASN; a site cannot use it",
            );
        }
        for h in &site.hosts {
            if !site.prefixes.iter().any(|p| p.contains(h)) {
                v.err(
                    site.loc,
                    &obj,
                    Some("hosts"),
                    format!("host {h} is outside the site's prefixes"),
                );
            }
        }
        for tun in &site.tunnels {
            if site.cpe != Some(tun.local) && !site.prefixes.iter().any(|p| p.contains(&tun.local))
            {
                v.err(
                    tun.loc,
                    &format!("{obj}/tunnel {}", tun.name),
                    Some("local"),
                    format!(
                        "{} is neither the site's CPE nor inside its prefixes",
                        tun.local
                    ),
                );
            }
            check_tunnel_peer(v, tun, &obj);
        }
        for (i, c) in site.connections.iter().enumerate() {
            if site.connections[..i].iter().any(|o| o.gateway == c.gateway) {
                v.err(
                    c.loc,
                    &obj,
                    Some("connection"),
                    format!("two connections to gateway {}", t.gateway(c.gateway).name),
                );
            }
            if c.bgp && t.gateway(c.gateway).kind == GatewayKind::Vpn && site.cpe.is_none() {
                v.err(c.loc, &obj, Some("cpe"), "a BGP connection to a VPN gateway needs the site's `cpe` (its BGP peer address)");
            }
        }
        for s in &site.bgp {
            check_session(v, s, &obj, Speaker::Site(SiteId(si as u32)));
        }
    }
}

fn check_session(v: &mut V, s: &BgpSession, owner: &str, me: Speaker) {
    let t = v.t;
    let obj = format!("{owner}/bgp");
    if s.peer == me {
        v.err(
            s.loc,
            &obj,
            Some("peer"),
            "a speaker cannot peer with itself",
        );
    }
    if let (Speaker::Nva(n), Some(src)) = (me, s.source) {
        let nva = &t.nvas[n.idx()];
        let owned =
            nva.loopbacks.contains(&src) || nva.nics.iter().any(|&x| t.nic(x).ips.contains(&src));
        if !owned {
            v.err(
                s.loc,
                &obj,
                Some("source"),
                format!(
                    "{src} is not an address of nva {} (its NICs' addresses or `loopbacks`)",
                    nva.name
                ),
            );
        }
    }
    if let Speaker::RouteServer(r) = s.peer {
        let rs = &t.route_servers[r.idx()];
        let region = &t.vnet(rs.vnet).region;
        if let Some(lb) = s.next_hop.and_then(|ip| {
            t.load_balancers.iter().find(|l| {
                l.frontend_ip == ip && !t.vnet(l.vnet).region.eq_ignore_ascii_case(region)
            })
        }) {
            v.warn(
                s.loc,
                &obj,
                Some("next_hop"),
                format!(
                    "load balancer {} is in region {}, not route_server {}'s ({region}): a load-balancer next hop works only in the Route Server's region, so these routes are not programmed (R22)",
                    lb.name,
                    t.vnet(lb.vnet).region,
                    rs.name
                ),
            );
        }
        for ip in &s.peer_ips {
            if !rs.ips.contains(ip) {
                v.err(
                    s.loc,
                    &obj,
                    Some("peer_ips"),
                    format!(
                        "{ip} is not an instance of route_server {} ({})",
                        rs.name,
                        rs.ips
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if !s.peer_ips.is_empty() && rs.ips.iter().any(|ip| !s.peer_ips.contains(ip)) {
            v.warn(s.loc, &obj, Some("peer_ips"), format!("peers with only one instance of route_server {}; each NVA must peer with both (R21)", rs.name));
        }
    }
}

fn check_tunnel_peer(v: &mut V, tun: &Tunnel, owner: &str) {
    let t = v.t;
    if tun.local.is_ipv4() != tun.remote.is_ipv4() {
        v.err(
            tun.loc,
            &format!("{owner}/tunnel {}", tun.name),
            Some("remote"),
            "local and remote are of different address families",
        );
        return;
    }
    if tun.local == tun.remote {
        v.err(
            tun.loc,
            &format!("{owner}/tunnel {}", tun.name),
            Some("remote"),
            format!("the tunnel's remote end is its own address {}", tun.local),
        );
        return;
    }
    let mirrored = t
        .nvas
        .iter()
        .flat_map(|n| n.tunnels.iter())
        .chain(t.sites.iter().flat_map(|s| s.tunnels.iter()))
        .any(|o| t.same_tunnel_end(o.local, tun.remote) && t.same_tunnel_end(o.remote, tun.local));
    if !mirrored {
        v.warn(tun.loc, &format!("{owner}/tunnel {}", tun.name), Some("remote"), format!("no NVA or site declares the other end of this tunnel ({} → {}); packets sent into it cannot be decapsulated", tun.remote, tun.local));
    }
}
