//! Cross-object rules on a fully resolved topology: addressing (R46), peering
//! (R6, R9, overlap), gateways and Route Servers (R10, R21, R32), UDRs (R12,
//! R13); NVAs, sites, their tunnels and sessions, and VNet-to-VNet
//! connections in `speakers.rs`. Runs only when building found no error,
//! so every id here is valid.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::diag::{Loc, Sink};
use super::model::*;

mod speakers;
use speakers::{nvas_and_sites, vnet_connections};

/// R21: ASNs an NVA peering with Route Server may not use.
pub const RESERVED_ASNS: &[u32] = &[65515, 65517, 65518, 65519, 65520, 8074, 8075, 12076];

/// Routes a route table holds in Azure ([Azure subscription limits,
/// networking](https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#azure-networking-limits)):
/// more is a warning, so that larger synthetic tables still load.
pub const MAX_ROUTES_PER_TABLE: usize = 400;

/// The `n`-th address of `net` (0 = network address), if inside it.
pub fn nth_addr(net: IpNet, n: u128) -> Option<IpAddr> {
    match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network()) as u128;
            let size = 1u128 << (32 - v4.prefix_len());
            (n < size).then(|| IpAddr::V4(((base + n) as u32).into()))
        }
        IpNet::V6(v6) => {
            let base = u128::from(v6.network());
            let bits = 128 - v6.prefix_len() as u32;
            let fits = bits >= 128 || n < (1u128 << bits);
            fits.then(|| IpAddr::V6(base.wrapping_add(n).into()))
        }
    }
}

/// Why `ip` is one of the addresses Azure reserves in a subnet (R46): the
/// first four (.0 network, .1 gateway, .2/.3 DNS) and, in IPv4, the last
/// (broadcast). For IPv6 the first four are reserved; the last is not
/// (UNCONFIRMED, documented in README).
pub fn reserved_reason(subnet: IpNet, ip: IpAddr) -> Option<&'static str> {
    if !subnet.contains(&ip) {
        return None;
    }
    for (n, why) in [
        (0u128, "the network address"),
        (1, "the default gateway (.1)"),
        (2, "reserved for Azure DNS (.2)"),
        (3, "reserved for Azure DNS (.3)"),
    ] {
        if nth_addr(subnet, n) == Some(ip) {
            return Some(why);
        }
    }
    if let (IpNet::V4(n), IpAddr::V4(a)) = (subnet, ip)
        && n.broadcast() == a
    {
        return Some("the broadcast (last) address");
    }
    None
}

fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

struct V<'t, 's, 'a> {
    t: &'t Topology,
    sink: &'s mut Sink<'a>,
}

impl V<'_, '_, '_> {
    fn err(&mut self, loc: Loc, object: &str, field: Option<&str>, msg: impl Into<String>) {
        self.sink.error(loc, object, field, msg);
    }
    fn warn(&mut self, loc: Loc, object: &str, field: Option<&str>, msg: impl Into<String>) {
        self.sink.warn(loc, object, field, msg);
    }
}

pub(crate) fn validate(t: &Topology, sink: &mut Sink<'_>) {
    let mut v = V { t, sink };
    vnets_and_subnets(&mut v);
    addresses(&mut v);
    peerings(&mut v);
    gateways_and_route_servers(&mut v);
    route_tables(&mut v);
    nvas_and_sites(&mut v);
    vnet_connections(&mut v);
}

/// Address ranges Azure refuses in a VNet's address space
/// ([Virtual Network FAQ](https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq#what-address-ranges-can-i-use-in-my-virtual-networks)).
pub const REFUSED_RANGES: [(&str, &str); 5] = [
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("168.63.129.16/32", "Azure's internal DNS and health probes"),
];

/// ASNs no speaker may have: reserved by Azure (its public and private
/// ASNs) or by IANA ([VPN Gateway BGP FAQ](https://learn.microsoft.com/azure/vpn-gateway/vpn-gateway-vpn-faq#bgp)):
/// why, or `None`.
pub fn refused_asn(asn: u32) -> Option<&'static str> {
    match asn {
        8074 | 8075 | 12076 => Some("reserved by Azure (public)"),
        65515..=65520 => Some("reserved by Azure (private)"),
        0 | 23456 | 64496..=64511 | 65535..=65551 | u32::MAX => Some("reserved by IANA"),
        _ => None,
    }
}

fn vnets_and_subnets(v: &mut V) {
    let t = v.t;
    let refused: Vec<(IpNet, &str)> = REFUSED_RANGES
        .iter()
        .filter_map(|(p, why)| p.parse().ok().map(|p| (p, *why)))
        .collect();
    for vn in &t.vnets {
        let obj = format!("vnet {}", vn.name);
        for a in &vn.address_space {
            if let Some((r, why)) = refused.iter().find(|(r, _)| overlaps(*a, *r)) {
                v.err(
                    vn.loc,
                    &obj,
                    Some("address_space"),
                    format!("{a} overlaps {r} ({why}), which Azure refuses in a virtual network"),
                );
            }
        }
        for (i, a) in vn.address_space.iter().enumerate() {
            for b in &vn.address_space[i + 1..] {
                if overlaps(*a, *b) {
                    v.err(
                        vn.loc,
                        &obj,
                        Some("address_space"),
                        format!("address ranges {a} and {b} overlap"),
                    );
                }
            }
        }
        let sids = &vn.subnets;
        for (i, &sid) in sids.iter().enumerate() {
            let s = t.subnet(sid);
            let sobj = format!("subnet {}/{}", vn.name, s.name);
            for &other in &sids[i + 1..] {
                let o = t.subnet(other);
                for p in &s.prefixes {
                    for q in &o.prefixes {
                        if overlaps(*p, *q) {
                            v.err(
                                o.loc,
                                &format!("subnet {}/{}", vn.name, o.name),
                                Some("prefix"),
                                format!("{q} overlaps subnet {} ({p})", s.name),
                            );
                        }
                    }
                }
            }
            if let Some(rt) = s.route_table {
                let rtab = t.route_table(rt);
                if s.is_route_server_subnet() {
                    v.err(
                        s.loc,
                        &sobj,
                        Some("route_table"),
                        "a route table on RouteServerSubnet is not allowed (R32)",
                    );
                }
                if s.is_gateway_subnet() && !rtab.propagate_gateway_routes {
                    v.warn(s.loc, &sobj, Some("route_table"), format!("route table {} disables gateway route propagation on GatewaySubnet: the gateway stops working (R10)", rtab.name));
                }
                let has_vpn = t
                    .gateways_in(s.vnet)
                    .any(|g| t.gateway(g).kind == GatewayKind::Vpn);
                if s.is_gateway_subnet()
                    && has_vpn
                    && rtab.routes.iter().any(|u| u.prefix.prefix_len() == 0)
                {
                    v.warn(
                        s.loc,
                        &sobj,
                        Some("route_table"),
                        "a 0/0 route on the GatewaySubnet of a VPN gateway is not supported (R40)",
                    );
                }
            }
        }
    }
}

/// Every address owner: NICs, load balancers, gateway and Route Server instances.
fn addresses(v: &mut V) {
    let t = v.t;
    // One power state per VM, whichever NIC says it.
    let mut power: HashMap<&str, (PowerState, &str)> = HashMap::new();
    for n in &t.nics {
        match power.get(n.vm.as_str()) {
            Some(&(p, first)) if p != n.power => v.err(
                n.loc,
                &format!("nic {}", n.name),
                Some("power"),
                format!(
                    "VM {} is {} on nic {first}: a VM has one power state",
                    n.vm,
                    p.as_str()
                ),
            ),
            Some(_) => {}
            None => {
                power.insert(&n.vm, (n.power, &n.name));
            }
        }
    }
    // (vnet, ip) -> first owner, to find duplicates.
    let mut owners: HashMap<(VnetId, IpAddr), String> = HashMap::new();
    let mut claim = |v: &mut V, vnet: VnetId, ip: IpAddr, who: String, loc: Loc, field: &str| {
        if let Some(first) = owners.get(&(vnet, ip)) {
            v.err(
                loc,
                &who,
                Some(field),
                format!(
                    "{ip} is already used by {first} in vnet {}",
                    t.vnet(vnet).name
                ),
            );
        } else {
            owners.insert((vnet, ip), who);
        }
    };
    for n in &t.nics {
        let obj = format!("nic {}", n.name);
        let s = t.subnet(n.subnet);
        if s.is_gateway_subnet() || s.is_route_server_subnet() {
            v.err(
                n.loc,
                &obj,
                Some("subnet"),
                format!(
                    "NICs cannot be placed in {}: Azure reserves it for its own instances",
                    s.name
                ),
            );
        }
        // Membership and reserved addresses were checked with their spans while building.
        for &ip in &n.ips {
            claim(v, n.vnet, ip, obj.clone(), n.loc, "ips");
        }
    }
    for l in &t.load_balancers {
        let obj = format!("load_balancer {}", l.name);
        if t.subnet(l.subnet).vnet != l.vnet {
            v.err(
                l.loc,
                &obj,
                Some("subnet"),
                "the subnet is not in this VNet",
            );
            continue;
        }
        check_in_subnet(
            v,
            t.subnet(l.subnet),
            l.frontend_ip,
            &obj,
            l.loc,
            "frontend_ip",
        );
        claim(v, l.vnet, l.frontend_ip, obj.clone(), l.loc, "frontend_ip");
    }
    for g in &t.gateways {
        let obj = format!("gateway {}", g.name);
        let Some(sid) = t.subnet_by_path(&format!("{}/GatewaySubnet", t.vnet(g.vnet).name)) else {
            continue; // reported by gateways_and_route_servers
        };
        for &ip in &g.ips {
            check_in_subnet(v, t.subnet(sid), ip, &obj, g.loc, "ips");
            claim(v, g.vnet, ip, obj.clone(), g.loc, "ips");
        }
    }
    for r in &t.route_servers {
        let obj = format!("route_server {}", r.name);
        let Some(sid) = t.subnet_by_path(&format!("{}/RouteServerSubnet", t.vnet(r.vnet).name))
        else {
            continue;
        };
        for &ip in &r.ips {
            check_in_subnet(v, t.subnet(sid), ip, &obj, r.loc, "ips");
            claim(v, r.vnet, ip, obj.clone(), r.loc, "ips");
        }
    }
}

fn check_in_subnet(v: &mut V, s: &Subnet, ip: IpAddr, obj: &str, loc: Loc, field: &str) {
    let t = v.t;
    match s.prefixes.iter().find(|p| p.contains(&ip)) {
        None => v.err(
            loc,
            obj,
            Some(field),
            format!(
                "{ip} is outside subnet {}/{} ({})",
                t.vnet(s.vnet).name,
                s.name,
                join(&s.prefixes)
            ),
        ),
        Some(p) => {
            if let Some(why) = reserved_reason(*p, ip) {
                v.err(
                    loc,
                    obj,
                    Some(field),
                    format!("{ip} is {why} of subnet {p}; Azure reserves it (R46)"),
                );
            }
        }
    }
}

fn peerings(v: &mut V) {
    let t = v.t;
    let mut use_remote: HashMap<VnetId, &str> = HashMap::new();
    for (i, p) in t.peerings.iter().enumerate() {
        let obj = format!("peering {}", p.name);
        let (a, b) = (t.vnet(p.vnet), t.vnet(p.remote));
        if p.vnet == p.remote {
            v.err(
                p.loc,
                &obj,
                Some("remote"),
                "a VNet cannot peer with itself",
            );
            continue;
        }
        if t.peerings[..i]
            .iter()
            .any(|q| q.vnet == p.vnet && q.remote == p.remote)
        {
            v.err(
                p.loc,
                &obj,
                None,
                format!(
                    "a peering from {} to {} is already declared",
                    a.name, b.name
                ),
            );
        }
        for x in &a.address_space {
            for y in &b.address_space {
                if overlaps(*x, *y) {
                    v.err(
                        p.loc,
                        &obj,
                        Some("remote"),
                        format!(
                            "peered VNets cannot overlap: {} has {x}, {} has {y}",
                            a.name, b.name
                        ),
                    );
                }
            }
        }
        let back = t
            .peerings
            .iter()
            .find(|q| q.vnet == p.remote && q.remote == p.vnet);
        if back.is_none() {
            v.warn(p.loc, &obj, None, format!("only one side exists: the peering is Initiated, not Connected, so it adds no routes until {} peers back with {} (R6)", b.name, a.name));
        }
        if p.allow_gateway_transit
            && t.gateways_in(p.vnet).next().is_none()
            && t.route_server_in(p.vnet).is_none()
        {
            v.warn(
                p.loc,
                &obj,
                Some("allow_gateway_transit"),
                format!("{} has no gateway or Route Server to share", a.name),
            );
        }
        if p.use_remote_gateways {
            if let Some(first) = use_remote.insert(p.vnet, p.name.as_str()) {
                v.err(p.loc, &obj, Some("use_remote_gateways"), format!("only one peering per VNet may use remote gateways; {first} already does (R9)"));
            }
            if let Some(g) = t.gateways_in(p.vnet).next() {
                v.err(p.loc, &obj, Some("use_remote_gateways"), format!("{} has its own gateway {}; a VNet that uses a remote gateway cannot have one (R9)", a.name, t.gateway(g).name));
            }
            if t.gateways_in(p.remote).next().is_none() && t.route_server_in(p.remote).is_none() {
                v.err(
                    p.loc,
                    &obj,
                    Some("use_remote_gateways"),
                    format!("{} has no gateway or Route Server to use (R9)", b.name),
                );
            }
            if let Some(q) = back
                && !q.allow_gateway_transit
            {
                v.err(
                    p.loc,
                    &obj,
                    Some("use_remote_gateways"),
                    format!(
                        "the peering from {} back to {} does not allow gateway transit (R9)",
                        b.name, a.name
                    ),
                );
            }
        }
    }
}

fn gateways_and_route_servers(v: &mut V) {
    let t = v.t;
    for (i, g) in t.gateways.iter().enumerate() {
        let obj = format!("gateway {}", g.name);
        let vn = t.vnet(g.vnet);
        if t.subnet_by_path(&format!("{}/GatewaySubnet", vn.name))
            .is_none()
        {
            v.err(
                g.loc,
                &obj,
                Some("vnet"),
                format!("vnet {} has no subnet named GatewaySubnet", vn.name),
            );
        }
        if t.gateways[..i]
            .iter()
            .any(|o| o.vnet == g.vnet && o.kind == g.kind)
        {
            v.err(
                g.loc,
                &obj,
                Some("kind"),
                format!("vnet {} already has a {} gateway", vn.name, g.kind.as_str()),
            );
        }
        if g.ips.is_empty() {
            v.err(g.loc, &obj, Some("ips"), "give the gateway's instance IPs in the GatewaySubnet (ExpressRoute: the next-hop IPs its routes show)");
        }
        if g.kind == GatewayKind::Vpn && g.active_active && g.ips.len() < 2 {
            v.err(
                g.loc,
                &obj,
                Some("ips"),
                "an active-active VPN gateway has two instances: give two IPs",
            );
        }
    }
    for (i, r) in t.route_servers.iter().enumerate() {
        let obj = format!("route_server {}", r.name);
        let vn = t.vnet(r.vnet);
        if t.subnet_by_path(&format!("{}/RouteServerSubnet", vn.name))
            .is_none()
        {
            v.err(
                r.loc,
                &obj,
                Some("vnet"),
                format!(
                    "vnet {} has no subnet named RouteServerSubnet (R21)",
                    vn.name
                ),
            );
        }
        if t.route_servers[..i].iter().any(|o| o.vnet == r.vnet) {
            v.err(
                r.loc,
                &obj,
                Some("vnet"),
                format!(
                    "vnet {} already has a Route Server; one per VNet (R21)",
                    vn.name
                ),
            );
        }
        if r.ips.iter().any(|ip| ip.is_ipv6()) {
            v.err(
                r.loc,
                &obj,
                Some("ips"),
                "Route Server does not support IPv6 (R32)",
            );
        }
    }
}

/// Where a VirtualAppliance next hop IP lands, seen from `vnet` (R13).
enum ApplianceTarget {
    Nic(NicId),
    LoadBalancer,
    /// Only through a gateway (ExpressRoute or VPN) toward a site.
    ViaGateway(GatewayKind, String),
    Nobody,
}

fn appliance_target(t: &Topology, vnet: VnetId, ip: IpAddr) -> ApplianceTarget {
    let mut vnets = vec![vnet];
    vnets.extend(
        t.connected_peerings(vnet)
            .map(|p| t.peerings[p.idx()].remote),
    );
    for &vn in &vnets {
        if let Some(n) = t.nic_owning(vn, ip) {
            return ApplianceTarget::Nic(n);
        }
        if t.load_balancer_owning(vn, ip).is_some() {
            return ApplianceTarget::LoadBalancer;
        }
    }
    for s in &t.sites {
        if (s.prefixes.iter().any(|p| p.contains(&ip)) || s.cpe == Some(ip))
            && let Some(c) = s.connections.first()
        {
            let g = t.gateway(c.gateway);
            return ApplianceTarget::ViaGateway(g.kind, g.name.clone());
        }
    }
    ApplianceTarget::Nobody
}

fn route_tables(v: &mut V) {
    let t = v.t;
    for (ri, rt) in t.route_tables.iter().enumerate() {
        let rid = RouteTableId(ri as u32);
        let obj = format!("route_table {}", rt.name);
        let attached: Vec<SubnetId> = t.subnets_using(rid).collect();
        // The first route of each prefix and name: one pass, not a scan of
        // the routes before each route.
        let mut by_prefix: HashMap<IpNet, usize> = HashMap::with_capacity(rt.routes.len());
        let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(rt.routes.len());
        if rt.routes.len() > MAX_ROUTES_PER_TABLE {
            v.warn(
                rt.loc,
                &obj,
                Some("route"),
                format!(
                    "{} routes: Azure allows at most {MAX_ROUTES_PER_TABLE} routes in a route table",
                    rt.routes.len()
                ),
            );
        }
        for (i, u) in rt.routes.iter().enumerate() {
            let uobj = format!("{obj}/route {}", u.name);
            let first_prefix = *by_prefix.entry(u.prefix).or_insert(i);
            let first_name = *by_name.entry(u.name.as_str()).or_insert(i);
            if let Some(first) = (first_prefix < i).then(|| &rt.routes[first_prefix]) {
                v.err(
                    u.loc,
                    &uobj,
                    Some("prefix"),
                    format!(
                        "route {} already has prefix {}; one next hop per prefix in a table (R18)",
                        first.name, u.prefix
                    ),
                );
            }
            if let Some(first) = (first_name < i).then(|| &rt.routes[first_name]) {
                v.err(
                    u.loc,
                    &uobj,
                    Some("name"),
                    format!("duplicate route name (first at line {})", first.loc.line),
                );
            }
            match u.next_hop {
                UdrNextHop::VirtualAppliance(ip) => {
                    let vnets: Vec<VnetId> = if attached.is_empty() {
                        // Not attached: checked from the owner's own VNet.
                        t.nics
                            .iter()
                            .filter(|n| n.ips.contains(&ip))
                            .map(|n| n.vnet)
                            .chain(
                                t.load_balancers
                                    .iter()
                                    .filter(|l| l.frontend_ip == ip)
                                    .map(|l| l.vnet),
                            )
                            .take(1)
                            .collect()
                    } else {
                        attached.iter().map(|&s| t.subnet(s).vnet).collect()
                    };
                    if vnets.is_empty() {
                        // Azure accepts it and shows next-hop type None.
                        v.warn(
                            u.loc,
                            &uobj,
                            Some("next_hop_ip"),
                            format!(
                                "no NIC or load balancer owns VirtualAppliance next hop {ip}: \
                                 effective routes show next-hop type None and traffic is \
                                 dropped (R13, R51)"
                            ),
                        );
                    } else if let Some(n) = t
                        .nics
                        .iter()
                        .find(|n| n.ips.contains(&ip) && n.power != PowerState::Running)
                    {
                        v.warn(
                            u.loc,
                            &uobj,
                            Some("next_hop_ip"),
                            format!(
                                "VirtualAppliance next hop {ip} is on VM {} which is {}: \
                                 effective routes show next-hop type None (R51)",
                                n.vm,
                                n.power.as_str()
                            ),
                        );
                    }
                    let mut warned_forwarding = false;
                    for vn in vnets {
                        match appliance_target(t, vn, ip) {
                            ApplianceTarget::Nic(n) => {
                                let nic = t.nic(n);
                                if !nic.ip_forwarding
                                    && !std::mem::replace(&mut warned_forwarding, true)
                                {
                                    v.warn(u.loc, &uobj, Some("next_hop_ip"), format!("{ip} is nic {} which has IP forwarding disabled: forwarded packets will be dropped there (R44)", nic.name));
                                }
                                for &s in &attached {
                                    if nic.subnet == s && u.prefix.contains(&ip) {
                                        v.warn(u.loc, &uobj, Some("next_hop_ip"), format!("the appliance {ip} sits in subnet {} that this route table steers to it: packets it forwards will come back to it (R13)", t.subnet_path(s)));
                                    }
                                }
                            }
                            ApplianceTarget::LoadBalancer => {}
                            ApplianceTarget::ViaGateway(kind, gw) => {
                                v.err(u.loc, &uobj, Some("next_hop_ip"), format!("{ip} is reachable only through {} gateway {gw}; a VirtualAppliance next hop must be directly reachable (R13)", kind.as_str()));
                            }
                            ApplianceTarget::Nobody => {
                                // Azure accepts it and shows next-hop type None.
                                v.warn(u.loc, &uobj, Some("next_hop_ip"), format!("no NIC or load balancer in vnet {} or a VNet peered with it owns VirtualAppliance next hop {ip}: effective routes show next-hop type None and traffic is dropped (R13, R51)", t.vnet(vn).name));
                            }
                        }
                    }
                }
                UdrNextHop::VirtualNetworkGateway => {
                    for &s in &attached {
                        let vn = t.subnet(s).vnet;
                        let hub = t.remote_gateway_vnet(vn).map_or(vn, |(_, h)| h);
                        let kinds: Vec<&Gateway> =
                            t.gateways_in(hub).map(|g| t.gateway(g)).collect();
                        let vpn = kinds.iter().find(|g| g.kind == GatewayKind::Vpn);
                        let er = kinds.iter().any(|g| g.kind == GatewayKind::ExpressRoute);
                        let why = match (vpn, er) {
                            (_, true) => Some("the gateway is ExpressRoute (or coexists with one); Azure allows this next hop only for a route-based VPN gateway (R12)".to_string()),
                            (None, false) => Some(format!("subnet {} has no VPN gateway, own or through gateway transit (R12)", t.subnet_path(s))),
                            (Some(g), false) if g.vpn_type == VpnType::PolicyBased => Some(format!("gateway {} is policy-based; Azure needs a route-based VPN gateway (R12)", g.name)),
                            _ => None,
                        };
                        if let Some(why) = why {
                            v.err(
                                u.loc,
                                &uobj,
                                Some("next_hop_type"),
                                format!(
                                    "VirtualNetworkGateway next hop for subnet {}: {why}",
                                    t.subnet_path(s)
                                ),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn join(v: &[IpNet]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reserved_addresses_follow_r46() {
        let s = n("10.1.3.0/24");
        assert!(reserved_reason(s, a("10.1.3.0")).is_some());
        assert!(reserved_reason(s, a("10.1.3.1")).is_some());
        assert!(reserved_reason(s, a("10.1.3.2")).is_some());
        assert!(reserved_reason(s, a("10.1.3.3")).is_some());
        assert!(reserved_reason(s, a("10.1.3.255")).is_some());
        assert!(reserved_reason(s, a("10.1.3.4")).is_none());
        assert!(reserved_reason(s, a("10.1.3.254")).is_none());
        let s6 = n("fd00:1:0:2::/64");
        assert!(reserved_reason(s6, a("fd00:1:0:2::1")).is_some());
        assert!(reserved_reason(s6, a("fd00:1:0:2::4")).is_none());
    }

    #[test]
    fn nth_addr_handles_edges() {
        assert_eq!(nth_addr(n("0.0.0.0/0"), 1), Some(a("0.0.0.1")));
        assert_eq!(nth_addr(n("10.0.0.4/32"), 1), None);
        assert_eq!(nth_addr(n("::/0"), 3), Some(a("::3")));
        assert_eq!(nth_addr(n("fd00::1/128"), 0), Some(a("fd00::1")));
    }
}
