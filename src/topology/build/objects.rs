//! The objects with nested parts: route tables and their routes, gateways,
//! Route Servers, NVAs (OS routes, BGP sessions, tunnels), sites and
//! assertions.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Builder;
use crate::topology::model::*;
use crate::topology::raw::{self, S};

impl Builder<'_, '_> {
    pub(super) fn route_table(&mut self, x: &S<raw::RawRouteTable>) -> RouteTable {
        let r = x.get_ref();
        let obj = format!("route_table {}", r.name.get_ref());
        // `propagate_gateway_routes = false` is ARM's
        // `disableBgpRoutePropagation = true`; either spelling, not both
        // disagreeing.
        let propagate = match (
            &r.propagate_gateway_routes,
            &r.disable_bgp_route_propagation,
        ) {
            (Some(p), Some(d)) if *p.get_ref() == *d.get_ref() => {
                self.err(
                    &d.span(),
                    &obj,
                    Some("disable_bgp_route_propagation"),
                    "disagrees with propagate_gateway_routes (one is the other's inverse)",
                );
                *p.get_ref()
            }
            (Some(p), _) => *p.get_ref(),
            (None, Some(d)) => !*d.get_ref(),
            (None, None) => true,
        };
        let mut routes = Vec::new();
        for u in &r.route {
            let ru = u.get_ref();
            let uobj = format!("{obj}/route {}", ru.name.get_ref());
            let name = self.name(&ru.name, &uobj);
            let prefix = self.net(&ru.prefix, &uobj, "prefix");
            let ty = ru.next_hop_type.get_ref().as_str();
            let ip = ru
                .next_hop_ip
                .as_ref()
                .and_then(|v| self.ip(v, &uobj, "next_hop_ip"));
            let span = ru.next_hop_type.span();
            let next_hop = match ty.to_ascii_lowercase().as_str() {
                "virtualappliance" => match (ip, &ru.next_hop_ip) {
                    (Some(ip), _) => Some(UdrNextHop::VirtualAppliance(ip)),
                    (None, None) => {
                        self.err(
                            &u.span(),
                            &uobj,
                            Some("next_hop_ip"),
                            "next hop type VirtualAppliance needs `next_hop_ip` (R12)",
                        );
                        None
                    }
                    (None, Some(_)) => None,
                },
                "virtualnetworkgateway" => Some(UdrNextHop::VirtualNetworkGateway),
                "none" => Some(UdrNextHop::None),
                "vnetlocal" | "virtualnetwork" => Some(UdrNextHop::VnetLocal),
                "internet" => Some(UdrNextHop::Internet),
                "vnetpeering"
                | "vnetglobalpeering"
                | "virtualnetworkpeering"
                | "virtualnetworkserviceendpoint" => {
                    self.err(
                        &span,
                        &uobj,
                        Some("next_hop_type"),
                        format!("Azure does not let users set next hop type `{ty}`: it is created by the system only (R12)"),
                    );
                    None
                }
                _ => {
                    self.err(
                        &span,
                        &uobj,
                        Some("next_hop_type"),
                        format!("unknown next hop type `{ty}` (one of VirtualAppliance, VirtualNetworkGateway, VnetLocal, Internet, None)"),
                    );
                    None
                }
            };
            if let Some(nh) = next_hop
                && !matches!(nh, UdrNextHop::VirtualAppliance(_))
                && let Some(v) = &ru.next_hop_ip
            {
                self.err(
                    &v.span(),
                    &uobj,
                    Some("next_hop_ip"),
                    format!("`next_hop_ip` is only allowed with VirtualAppliance, not {ty} (R12)"),
                );
            }
            if let (Some(prefix), Some(next_hop)) = (prefix, next_hop) {
                routes.push(Udr {
                    name,
                    prefix,
                    next_hop,
                    loc: self.loc(&u.span()),
                });
            }
        }
        RouteTable {
            name: r.name.get_ref().clone(),
            propagate_gateway_routes: propagate,
            routes,
            loc: self.loc(&x.span()),
        }
    }

    pub(super) fn gateway(&mut self, x: &S<raw::RawGateway>) -> Gateway {
        let r = x.get_ref();
        let obj = format!("gateway {}", r.name.get_ref());
        let vnet = self
            .resolve(|n| &n.vnets, &r.vnet, "vnet", &obj, "vnet")
            .unwrap_or(VnetId(u32::MAX));
        let kind = match r.kind.get_ref().to_ascii_lowercase().as_str() {
            "vpn" => GatewayKind::Vpn,
            "expressroute" | "er" => GatewayKind::ExpressRoute,
            other => {
                self.err(
                    &r.kind.span(),
                    &obj,
                    Some("kind"),
                    format!("unknown gateway kind `{other}` (vpn or expressroute)"),
                );
                GatewayKind::Vpn
            }
        };
        let vpn_type = match r
            .vpn_type
            .as_ref()
            .map(|t| (t.get_ref().to_ascii_lowercase(), t.span()))
        {
            None => VpnType::RouteBased,
            Some((t, _)) if t == "route-based" || t == "routebased" => VpnType::RouteBased,
            Some((t, _)) if t == "policy-based" || t == "policybased" => VpnType::PolicyBased,
            Some((t, span)) => {
                self.err(
                    &span,
                    &obj,
                    Some("vpn_type"),
                    format!("unknown VPN type `{t}` (route-based or policy-based)"),
                );
                VpnType::RouteBased
            }
        };
        if kind == GatewayKind::ExpressRoute
            && let Some(t) = &r.vpn_type
        {
            self.err(
                &t.span(),
                &obj,
                Some("vpn_type"),
                "`vpn_type` applies to VPN gateways only",
            );
        }
        let ips = self.ips(&r.ips, &obj, "ips");
        let public_ip = r
            .public_ip
            .as_ref()
            .and_then(|p| self.ip(p, &obj, "public_ip"));
        let asn = self.asn(&r.asn, &obj).unwrap_or(65515);
        if kind == GatewayKind::ExpressRoute && asn != 65515 {
            self.err(
                &x.span(),
                &obj,
                Some("asn"),
                "an ExpressRoute gateway's ASN is always 65515",
            );
        }
        Gateway {
            name: r.name.get_ref().clone(),
            vnet,
            kind,
            vpn_type,
            active_active: r.active_active,
            ips,
            public_ip,
            asn,
            loc: self.loc(&x.span()),
        }
    }

    pub(super) fn route_server(&mut self, x: &S<raw::RawRouteServer>) -> RouteServer {
        let r = x.get_ref();
        let obj = format!("route_server {}", r.name.get_ref());
        let vnet = self
            .resolve(|n| &n.vnets, &r.vnet, "vnet", &obj, "vnet")
            .unwrap_or(VnetId(u32::MAX));
        let ips = self.ips(r.ips.get_ref(), &obj, "ips");
        if r.ips.get_ref().len() != 2 {
            self.err(
                &r.ips.span(),
                &obj,
                Some("ips"),
                format!(
                    "a Route Server has exactly two instance IPs, {} given (R21)",
                    r.ips.get_ref().len()
                ),
            );
        }
        let asn = self.asn(&r.asn, &obj).unwrap_or(65515);
        if asn != 65515 {
            self.err(
                &x.span(),
                &obj,
                Some("asn"),
                "a Route Server's ASN is always 65515 (R21)",
            );
        }
        let routing_preference = match r.routing_preference.as_ref() {
            None => RoutingPreference::ExpressRoute,
            Some(p) => match p
                .get_ref()
                .to_ascii_lowercase()
                .replace(['-', '_', '/'], "")
                .as_str()
            {
                "expressroute" => RoutingPreference::ExpressRoute,
                // ARM's hubRoutingPreference spells it `VpnGateway`.
                "vpnnva" | "vpn" | "vpngateway" => RoutingPreference::VpnNva,
                "aspath" => RoutingPreference::AsPath,
                _ => {
                    self.err(&p.span(), &obj, Some("routing_preference"), format!("unknown routing preference `{}` (ExpressRoute, VPN/NVA or AS-Path, R31)", p.get_ref()));
                    RoutingPreference::ExpressRoute
                }
            },
        };
        RouteServer {
            name: r.name.get_ref().clone(),
            vnet,
            ips,
            asn,
            branch_to_branch: r.branch_to_branch,
            routing_preference,
            loc: self.loc(&x.span()),
        }
    }

    pub(super) fn tunnels(&mut self, v: &[S<raw::RawTunnel>], owner: &str) -> Vec<Tunnel> {
        let mut out: Vec<Tunnel> = Vec::new();
        for t in v {
            let r = t.get_ref();
            let obj = format!("{owner}/tunnel {}", r.name.get_ref());
            let name = self.name(&r.name, &obj);
            if out.iter().any(|o| o.name == name) {
                self.err(&r.name.span(), &obj, Some("name"), "duplicate tunnel name");
            }
            let local = self.ip(&r.local, &obj, "local");
            let remote = self.ip(&r.remote, &obj, "remote");
            let fragment = r.fragment.as_ref().is_some_and(|f| *f.get_ref());
            if let Some(f) = &r.fragment
                && *f.get_ref()
                && r.kind.get_ref().eq_ignore_ascii_case("vxlan")
            {
                let loc = self.sink.loc(&f.span());
                self.sink.warn(loc, &obj, Some("fragment"), "RFC 7348: VXLAN tunnel endpoints MUST NOT fragment; the outer packets will be fragmented anyway (R53, R55)");
            }
            let mtu = match &r.mtu {
                Some(m) => self
                    .int(m, 576, 9000, &obj, "mtu")
                    .map_or(1500, |x| x as u16),
                None => 1500,
            };
            let kind = match r.kind.get_ref().to_ascii_lowercase().as_str() {
                "vxlan" => {
                    let vni = match &r.vni {
                        Some(v) => self.int(v, 0, 0xFF_FFFF, &obj, "vni").unwrap_or(0) as u32,
                        None => {
                            self.err(
                                &t.span(),
                                &obj,
                                Some("vni"),
                                "a VXLAN tunnel needs `vni` (24 bits, RFC 7348)",
                            );
                            0
                        }
                    };
                    let port = match &r.port {
                        Some(p) => self.int(p, 1, 65535, &obj, "port").unwrap_or(4789) as u16,
                        None => 4789,
                    };
                    for (f, present) in [
                        ("spi_out", r.spi_out.is_some()),
                        ("spi_in", r.spi_in.is_some()),
                        ("encap", r.encap.is_some()),
                    ] {
                        if present {
                            self.err(
                                &t.span(),
                                &obj,
                                Some(f),
                                format!("`{f}` applies to ESP tunnels, not VXLAN"),
                            );
                        }
                    }
                    Some(TunnelKind::Vxlan { vni, port })
                }
                "esp" | "ipsec" => {
                    let mut spi = |v: &Option<S<i64>>, field: &str| -> u32 {
                        match v {
                            // SPI 0 is never sent; 1–255 are reserved (RFC 4303, R54).
                            Some(s) => self
                                .int(s, 256, u32::MAX as i64, &obj, field)
                                .unwrap_or(256) as u32,
                            None => {
                                self.err(
                                    &t.span(),
                                    &obj,
                                    Some(field),
                                    format!(
                                        "an ESP tunnel needs `{field}` (256..=4294967295, RFC 4303)"
                                    ),
                                );
                                256
                            }
                        }
                    };
                    let spi_out = spi(&r.spi_out, "spi_out");
                    let spi_in = spi(&r.spi_in, "spi_in");
                    let udp = match r
                        .encap
                        .as_ref()
                        .map(|e| (e.get_ref().to_ascii_lowercase(), e.span()))
                    {
                        None => true,
                        Some((e, _)) if e == "udp" || e == "nat-t" => true,
                        Some((e, _)) if e == "raw" || e == "esp" => false,
                        Some((e, span)) => {
                            self.err(&span, &obj, Some("encap"), format!("unknown ESP encapsulation `{e}` (udp: ESP in UDP 4500, or raw: IP protocol 50)"));
                            true
                        }
                    };
                    if r.vni.is_some() {
                        self.err(
                            &t.span(),
                            &obj,
                            Some("vni"),
                            "`vni` applies to VXLAN tunnels, not ESP",
                        );
                    }
                    Some(TunnelKind::Esp {
                        spi_out,
                        spi_in,
                        udp,
                    })
                }
                other => {
                    self.err(&r.kind.span(), &obj, Some("kind"), format!("unknown tunnel kind `{other}` (vxlan or esp; GRE and IP-in-IP are blocked in Azure, R47)"));
                    None
                }
            };
            if let (Some(kind), Some(local), Some(remote)) = (kind, local, remote) {
                out.push(Tunnel {
                    name,
                    kind,
                    local,
                    remote,
                    mtu,
                    fragment,
                    loc: self.loc(&t.span()),
                });
            }
        }
        out
    }

    pub(super) fn os_routes(
        &mut self,
        v: &[S<raw::RawOsRoute>],
        owner: &str,
        tunnels: &[Tunnel],
        nics: Option<&[NicId]>,
    ) -> Vec<OsRoute> {
        let mut out = Vec::new();
        for x in v {
            let r = x.get_ref();
            let obj = format!("{owner}/route {}", r.prefix.get_ref());
            let prefix = self.net(&r.prefix, &obj, "prefix");
            let given = [
                r.via.is_some(),
                r.tunnel.is_some(),
                r.nic.is_some(),
                r.blackhole,
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if given != 1 {
                self.err(
                    &x.span(),
                    &obj,
                    None,
                    "give exactly one of `via`, `tunnel`, `nic` or `blackhole = true`",
                );
                continue;
            }
            let next_hop = if let Some(v) = &r.via {
                self.ip(v, &obj, "via").map(OsNextHop::Via)
            } else if let Some(t) = &r.tunnel {
                let i = tunnels.iter().position(|k| &k.name == t.get_ref());
                if i.is_none() {
                    self.err(
                        &t.span(),
                        &obj,
                        Some("tunnel"),
                        format!("unknown tunnel `{}` on {owner}", t.get_ref()),
                    );
                }
                i.map(OsNextHop::Tunnel)
            } else if let Some(n) = &r.nic {
                let id = self.resolve(|n| &n.nics, n, "nic", &obj, "nic");
                if let (Some(id), Some(own)) = (id, nics)
                    && !own.contains(&id)
                {
                    self.err(
                        &n.span(),
                        &obj,
                        Some("nic"),
                        format!("nic `{}` is not one of {owner}'s NICs", n.get_ref()),
                    );
                }
                if nics.is_none() {
                    self.err(
                        &n.span(),
                        &obj,
                        Some("nic"),
                        "a site has no Azure NICs; use `via` or `tunnel`",
                    );
                }
                id.map(OsNextHop::Nic)
            } else {
                Some(OsNextHop::Blackhole)
            };
            if let (Some(prefix), Some(next_hop)) = (prefix, next_hop) {
                out.push(OsRoute {
                    prefix,
                    next_hop,
                    loc: self.loc(&x.span()),
                });
            }
        }
        out
    }

    pub(super) fn sessions(
        &mut self,
        v: &[S<raw::RawBgpSession>],
        owner: &str,
        tunnels: &[Tunnel],
    ) -> Vec<BgpSession> {
        let mut out = Vec::new();
        for x in v {
            let r = x.get_ref();
            let obj = format!("{owner}/bgp {}", r.peer.get_ref());
            let peer = self.speaker(&r.peer, &obj);
            let peer_ips = self.ips(&r.peer_ips, &obj, "peer_ips");
            let over = r.over.as_ref().and_then(|t| {
                let i = tunnels.iter().position(|k| &k.name == t.get_ref());
                if i.is_none() {
                    self.err(
                        &t.span(),
                        &obj,
                        Some("over"),
                        format!("unknown tunnel `{}` on {owner}", t.get_ref()),
                    );
                }
                i
            });
            let prepend = match &r.prepend {
                Some(p) => self.int(p, 0, 32, &obj, "prepend").unwrap_or(0) as u8,
                None => 0,
            };
            let next_hop = r
                .next_hop
                .as_ref()
                .and_then(|n| self.ip(n, &obj, "next_hop"));
            let source = r.source.as_ref().and_then(|n| self.ip(n, &obj, "source"));
            let s = BgpSession {
                source,
                peer: peer.unwrap_or(Speaker::Site(SiteId(u32::MAX))),
                peer_ips,
                over,
                as_override: r.as_override,
                prepend,
                originate: self.nets(&r.originate, &obj, "originate"),
                redistribute_static: r.redistribute_static,
                next_hop,
                import_allow: self.nets(&r.import_allow, &obj, "import_allow"),
                import_deny: self.nets(&r.import_deny, &obj, "import_deny"),
                export_allow: self.nets(&r.export_allow, &obj, "export_allow"),
                export_deny: self.nets(&r.export_deny, &obj, "export_deny"),
                no_advertise: r.no_advertise,
                policy: r.policy.iter().map(|x| self.export_rule(x, &obj)).collect(),
                loc: self.loc(&x.span()),
            };
            if peer.is_some() {
                out.push(s);
            }
        }
        out
    }

    fn export_rule(&mut self, x: &S<raw::RawExportRule>, owner: &str) -> ExportRule {
        let r = x.get_ref();
        let obj = format!("{owner}/policy");
        let asns = |b: &mut Self, v: &[S<i64>], field: &str| -> Vec<u32> {
            v.iter()
                .filter_map(|a| b.int(a, 1, u32::MAX as i64, &obj, field))
                .map(|a| a as u32)
                .collect()
        };
        let delete_as = asns(self, &r.delete_as, "delete_as");
        let replace_as = asns(self, &r.replace_as, "replace_as");
        let mut communities = Vec::new();
        for c in &r.communities {
            let text = c.get_ref().trim();
            let value = match text.to_ascii_lowercase().as_str() {
                "no-advertise" | "no_advertise" => Some(NO_ADVERTISE),
                "no-export" | "no_export" => Some(NO_EXPORT),
                _ => text.split_once(':').and_then(|(h, l)| {
                    Some((h.parse::<u16>().ok()? as u32) << 16 | l.parse::<u16>().ok()? as u32)
                }),
            };
            match value {
                Some(v) => communities.push(v),
                None => self.err(
                    &c.span(),
                    &obj,
                    Some("communities"),
                    format!(
                        "`{text}` is not a community (HIGH:LOW with 16-bit numbers, no-advertise or no-export)"
                    ),
                ),
            }
        }
        ExportRule {
            prefixes: self.nets(&r.prefixes, &obj, "prefixes"),
            or_longer: r.or_longer,
            deny: r.deny,
            prepend: match &r.prepend {
                Some(p) => self.int(p, 0, 32, &obj, "prepend").unwrap_or(0) as u8,
                None => 0,
            },
            remove_private_as: r.remove_private_as,
            delete_as,
            replace_as,
            no_advertise: communities.contains(&NO_ADVERTISE),
            communities,
        }
    }

    pub(super) fn nva(&mut self, x: &S<raw::RawNva>) -> Nva {
        let r = x.get_ref();
        let obj = format!("nva {}", r.name.get_ref());
        if r.nics.is_empty() {
            self.err(
                &x.span(),
                &obj,
                Some("nics"),
                "an NVA needs at least one NIC",
            );
        }
        let nics: Vec<NicId> = r
            .nics
            .iter()
            .filter_map(|n| self.resolve(|n| &n.nics, n, "nic", &obj, "nics"))
            .collect();
        let asn = self.asn(&r.asn, &obj);
        let tunnels = self.tunnels(&r.tunnel, &obj);
        let routes = self.os_routes(&r.route, &obj, &tunnels, Some(&nics));
        let mut bgp = self.sessions(&r.bgp, &obj, &tunnels);
        // Prefixes the NVA originates to every peer.
        let everywhere = self.nets(&r.originate, &obj, "originate");
        for s in &mut bgp {
            for p in &everywhere {
                if !s.originate.contains(p) {
                    s.originate.push(*p);
                }
            }
        }
        let loopbacks = self.ips(&r.loopbacks, &obj, "loopbacks");
        if !bgp.is_empty() && r.asn.is_none() {
            self.err(
                &x.span(),
                &obj,
                Some("asn"),
                "an NVA with BGP sessions needs `asn`",
            );
        }
        Nva {
            name: r.name.get_ref().clone(),
            nics,
            asn,
            loopbacks,
            routes,
            bgp,
            tunnels,
            loc: self.loc(&x.span()),
        }
    }

    pub(super) fn site(&mut self, x: &S<raw::RawSite>) -> Site {
        let r = x.get_ref();
        let obj = format!("site {}", r.name.get_ref());
        let asn = self.asn(&r.asn, &obj);
        let prefixes = self.nets(&r.prefixes, &obj, "prefixes");
        let cpe = r.cpe.as_ref().and_then(|c| self.ip(c, &obj, "cpe"));
        let hosts = self.ips(&r.hosts, &obj, "hosts");
        let mut connections = Vec::new();
        for c in &r.connection {
            let rc = c.get_ref();
            let cobj = format!("{obj}/connection {}", rc.gateway.get_ref());
            let gateway = self.resolve(|n| &n.gateways, &rc.gateway, "gateway", &cobj, "gateway");
            let advertise = match &rc.advertise {
                Some(a) => self.nets(a, &cobj, "advertise"),
                None => prefixes.clone(),
            };
            let weight = match &rc.weight {
                Some(w) => self.int(w, 0, 32000, &cobj, "weight").unwrap_or(0) as u32,
                None => 0,
            };
            if let Some(gateway) = gateway {
                connections.push(Connection {
                    gateway,
                    bgp: rc.bgp,
                    advertise,
                    weight,
                    loc: self.loc(&c.span()),
                });
            }
        }
        let tunnels = self.tunnels(&r.tunnel, &obj);
        let routes = self.os_routes(&r.route, &obj, &tunnels, None);
        let bgp = self.sessions(&r.bgp, &obj, &tunnels);
        if (!bgp.is_empty() || connections.iter().any(|c| c.bgp)) && r.asn.is_none() {
            self.err(
                &x.span(),
                &obj,
                Some("asn"),
                "a site that speaks BGP needs `asn`",
            );
        }
        Site {
            name: r.name.get_ref().clone(),
            asn,
            prefixes,
            cpe,
            hosts,
            connections,
            routes,
            bgp,
            tunnels,
            loc: self.loc(&x.span()),
        }
    }

    /// An assertion's `from` or `to`: `internet`, a NIC, a site, a VNet
    /// (bare names, looked up in that order, or with a `nic:`, `site:`,
    /// `vnet:` kind before them), `VNET/SUBNET` (or `subnet:VNET/SUBNET`),
    /// an address or a prefix.
    pub(super) fn endpoint(
        &mut self,
        v: &S<String>,
        object: &str,
        field: &str,
    ) -> Option<Endpoint> {
        let s = v.get_ref().trim();
        if s.eq_ignore_ascii_case("internet") {
            return Some(Endpoint::Internet);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(Endpoint::Prefix(IpNet::from(ip)));
        }
        if let Ok(net) = s.parse::<IpNet>() {
            if net != net.trunc() {
                self.err(
                    &v.span(),
                    object,
                    Some(field),
                    format!("`{s}` has host bits set (did you mean {}?)", net.trunc()),
                );
                return None;
            }
            return Some(Endpoint::Prefix(net));
        }
        let (kind, name) = match s.split_once(':') {
            Some((k @ ("nic" | "site" | "vnet" | "subnet"), n)) => (Some(k), n.trim()),
            _ => (None, s),
        };
        if matches!(kind, None | Some("subnet"))
            && let Some((vn, sn)) = name.split_once('/')
        {
            let subnet = self
                .names
                .vnets
                .get(vn)
                .and_then(|&id| self.names.subnets.get(&(id, sn.to_string())));
            if let Some(&id) = subnet {
                return Some(Endpoint::Subnet(id));
            }
        } else {
            if matches!(kind, None | Some("nic"))
                && let Some(&id) = self.names.nics.get(name)
            {
                return Some(Endpoint::Nic(id));
            }
            if matches!(kind, None | Some("site"))
                && let Some(&id) = self.names.sites.get(name)
            {
                return Some(Endpoint::Site(id));
            }
            if matches!(kind, None | Some("vnet"))
                && let Some(&id) = self.names.vnets.get(name)
            {
                return Some(Endpoint::Vnet(id));
            }
        }
        self.err(
            &v.span(),
            object,
            Some(field),
            format!(
                "`{s}` is not a NIC, a site, a VNet, a VNET/SUBNET, `internet`, \
                 an IP address or a prefix"
            ),
        );
        None
    }

    /// A list of NVA names (`via`, `not_via`).
    fn nva_list(&mut self, v: &Option<S<raw::OneOrMany>>, obj: &str, field: &str) -> Vec<NvaId> {
        let Some(v) = v else {
            return Vec::new();
        };
        let names: Vec<String> = v.get_ref().names().into_iter().map(String::from).collect();
        names
            .into_iter()
            .filter_map(|n| {
                let r = S::new(v.span(), n);
                self.resolve(|n| &n.nvas, &r, "nva", obj, field)
            })
            .collect()
    }

    pub(super) fn assertion(&mut self, x: &S<raw::RawAssertion>) -> Option<Assertion> {
        let r = x.get_ref();
        let obj = format!("assertion {}", r.name.get_ref());
        let name = self.name(&r.name, &obj);
        let from = self.endpoint(&r.from, &obj, "from");
        if let Some(Endpoint::Internet) = from {
            self.err(
                &r.from.span(),
                &obj,
                Some("from"),
                "`from` must be a NIC, a subnet, a VNet, a site or a prefix",
            );
        }
        let to = self.endpoint(&r.to, &obj, "to");
        let expect = match r
            .expect
            .as_ref()
            .map(|e| (e.get_ref().to_ascii_lowercase(), e.span()))
        {
            None => Expect::Delivered,
            Some((e, _)) if e == "delivered" || e == "reachable" => Expect::Delivered,
            Some((e, _)) if e == "dropped" || e == "isolated" => Expect::Dropped,
            Some((e, span)) => {
                self.err(
                    &span,
                    &obj,
                    Some("expect"),
                    format!(
                        "unknown expectation `{e}` (reachable, isolated, or their synonyms \
                         delivered, dropped)"
                    ),
                );
                Expect::Delivered
            }
        };
        let via = self.nva_list(&r.via, &obj, "via");
        let not_via = self.nva_list(&r.not_via, &obj, "not_via");
        if via.iter().any(|n| not_via.contains(n)) {
            self.err(
                &x.span(),
                &obj,
                Some("not_via"),
                "an NVA is both in `via` and in `not_via`",
            );
        }
        let protocol = r.protocol.as_ref().and_then(|p| {
            match p.get_ref().trim().to_ascii_lowercase().as_str() {
                "tcp" => Some(6),
                "udp" => Some(17),
                "icmp" => Some(1),
                "any" | "*" => None,
                other => match other.parse::<u8>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.err(
                            &p.span(),
                            &obj,
                            Some("protocol"),
                            format!("unknown protocol `{other}` (tcp, udp, icmp, any or a number)"),
                        );
                        None
                    }
                },
            }
        });
        let ports = r.ports.as_ref().and_then(|p| {
            let parsed = match p.get_ref() {
                raw::Ports::One(n) => u16::try_from(*n).ok().map(|n| (n, n)),
                raw::Ports::Text(t) => {
                    let t = t.trim();
                    let (a, b) = t.split_once('-').unwrap_or((t, t));
                    match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                        (Ok(a), Ok(b)) if a <= b => Some((a, b)),
                        _ => None,
                    }
                }
            };
            if parsed.is_none() {
                self.err(
                    &p.span(),
                    &obj,
                    Some("ports"),
                    "ports are a number 0–65535 or a range `FIRST-LAST`",
                );
            }
            parsed
        });
        if ports.is_some() && matches!(protocol, Some(p) if p != 6 && p != 17) {
            self.err(
                &x.span(),
                &obj,
                Some("ports"),
                "ports need protocol tcp or udp",
            );
        }
        let symmetric = r.symmetric.unwrap_or(false);
        if symmetric && expect == Expect::Dropped {
            self.err(
                &x.span(),
                &obj,
                Some("symmetric"),
                "`symmetric` is about delivered flows; an isolation has no return path",
            );
        }
        if !via.is_empty() && expect == Expect::Dropped {
            self.err(
                &x.span(),
                &obj,
                Some("via"),
                "waypoints are about delivered flows; an isolation crosses none",
            );
        }
        Some(Assertion {
            name,
            from: from?,
            to: to?,
            expect,
            via,
            not_via,
            protocol,
            ports,
            symmetric,
            loc: self.loc(&x.span()),
        })
    }
}
