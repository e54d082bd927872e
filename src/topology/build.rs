//! Raw file → typed [`Topology`]: resolves every name to an id, parses every
//! address and number with an error that names the file, line, object and
//! field. Cross-object rules live in [`super::validate`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;

use super::diag::{Loc, Sink};
use super::model::*;
use super::raw::{self, S};

/// Name tables, filled before any reference is resolved.
#[derive(Default)]
struct Names {
    vnets: HashMap<String, VnetId>,
    subnets: HashMap<(VnetId, String), SubnetId>,
    nics: HashMap<String, NicId>,
    route_tables: HashMap<String, RouteTableId>,
    gateways: HashMap<String, GatewayId>,
    route_servers: HashMap<String, RouteServerId>,
    nvas: HashMap<String, NvaId>,
    sites: HashMap<String, SiteId>,
}

pub(crate) struct Builder<'a, 'b> {
    pub sink: &'b mut Sink<'a>,
    names: Names,
}

fn known<T>(map: &HashMap<String, T>) -> String {
    let mut v: Vec<&str> = map.keys().map(String::as_str).collect();
    v.sort_unstable();
    if v.is_empty() {
        return "none are declared".to_string();
    }
    let more = v.len().saturating_sub(8);
    v.truncate(8);
    let mut s = format!("known: {}", v.join(", "));
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

impl<'a, 'b> Builder<'a, 'b> {
    pub fn new(sink: &'b mut Sink<'a>) -> Self {
        Builder {
            sink,
            names: Names::default(),
        }
    }

    fn loc(&self, span: &Range<usize>) -> Loc {
        self.sink.loc(span)
    }

    fn err(
        &mut self,
        span: &Range<usize>,
        object: &str,
        field: Option<&str>,
        msg: impl Into<String>,
    ) {
        let loc = self.loc(span);
        self.sink.error(loc, object, field, msg);
    }

    /// A name: non-empty, at most 80 characters, printable, no `/`.
    fn name(&mut self, n: &S<String>, kind: &str) -> String {
        let s = n.get_ref();
        let bad = if s.is_empty() {
            Some("is empty")
        } else if s.chars().count() > 80 {
            Some("is longer than 80 characters")
        } else if s.contains('/') {
            Some("contains `/`, which vnetplane uses to join VNet and subnet names")
        } else if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            Some("contains whitespace or control characters")
        } else {
            None
        };
        if let Some(why) = bad {
            self.err(
                &n.span(),
                kind,
                Some("name"),
                format!("the name {s:?} {why}"),
            );
        }
        s.clone()
    }

    pub fn ip(&mut self, v: &S<String>, object: &str, field: &str) -> Option<IpAddr> {
        match v.get_ref().trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let hint = if v.get_ref().contains('/') {
                    " (a single address is expected here, not a prefix)"
                } else {
                    ""
                };
                self.err(
                    &v.span(),
                    object,
                    Some(field),
                    format!("{:?} is not an IPv4 or IPv6 address{hint}", v.get_ref()),
                );
                None
            }
        }
    }

    /// A CIDR prefix with no host bits set.
    pub fn net(&mut self, v: &S<String>, object: &str, field: &str) -> Option<IpNet> {
        let text = v.get_ref().trim();
        let net = match text.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => {
                let hint = if text.parse::<IpAddr>().is_ok() {
                    " (a prefix length is missing, e.g. /32)"
                } else if text.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                    " (service tags are not supported yet: give the tag's CIDR prefixes)"
                } else {
                    ""
                };
                self.err(
                    &v.span(),
                    object,
                    Some(field),
                    format!("{text:?} is not a CIDR prefix{hint}"),
                );
                return None;
            }
        };
        if net.trunc() != net {
            self.err(
                &v.span(),
                object,
                Some(field),
                format!("{text} has host bits set; the prefix is {}", net.trunc()),
            );
            return None;
        }
        Some(net)
    }

    fn nets(&mut self, v: &[S<String>], object: &str, field: &str) -> Vec<IpNet> {
        v.iter()
            .filter_map(|n| self.net(n, object, field))
            .collect()
    }

    fn ips(&mut self, v: &[S<String>], object: &str, field: &str) -> Vec<IpAddr> {
        v.iter().filter_map(|n| self.ip(n, object, field)).collect()
    }

    fn int(&mut self, v: &S<i64>, min: i64, max: i64, object: &str, field: &str) -> Option<i64> {
        let x = *v.get_ref();
        if x < min || x > max {
            self.err(
                &v.span(),
                object,
                Some(field),
                format!("{x} is out of range ({min}..={max})"),
            );
            None
        } else {
            Some(x)
        }
    }

    fn asn(&mut self, v: &Option<S<i64>>, object: &str) -> Option<u32> {
        let v = v.as_ref()?;
        self.int(v, 1, u32::MAX as i64, object, "asn")
            .map(|x| x as u32)
    }

    fn declare<T: Copy>(
        &mut self,
        map_sel: fn(&mut Names) -> &mut HashMap<String, T>,
        name: &S<String>,
        kind: &str,
        id: T,
    ) {
        let n = self.name(name, kind);
        let map = map_sel(&mut self.names);
        if let std::collections::hash_map::Entry::Vacant(e) = map.entry(n.clone()) {
            e.insert(id);
        } else {
            self.err(
                &name.span(),
                &format!("{kind} {n}"),
                Some("name"),
                format!("duplicate {kind} name `{n}`"),
            );
        }
    }

    fn resolve<T: Copy>(
        &mut self,
        map_sel: fn(&Names) -> &HashMap<String, T>,
        r: &S<String>,
        kind: &str,
        object: &str,
        field: &str,
    ) -> Option<T> {
        let map = map_sel(&self.names);
        if let Some(id) = map.get(r.get_ref()) {
            return Some(*id);
        }
        let k = known(map);
        self.err(
            &r.span(),
            object,
            Some(field),
            format!("unknown {kind} `{}` ({k})", r.get_ref()),
        );
        None
    }

    fn speaker(&mut self, r: &S<String>, object: &str) -> Option<Speaker> {
        let n = r.get_ref();
        let mut found = Vec::new();
        if let Some(&id) = self.names.route_servers.get(n) {
            found.push(Speaker::RouteServer(id));
        }
        if let Some(&id) = self.names.nvas.get(n) {
            found.push(Speaker::Nva(id));
        }
        if let Some(&id) = self.names.gateways.get(n) {
            found.push(Speaker::Gateway(id));
        }
        if let Some(&id) = self.names.sites.get(n) {
            found.push(Speaker::Site(id));
        }
        match found.len() {
            1 => Some(found[0]),
            0 => {
                self.err(
                    &r.span(),
                    object,
                    Some("peer"),
                    format!(
                        "unknown BGP peer `{n}`: no route_server, nva, gateway or site has that name"
                    ),
                );
                None
            }
            _ => {
                self.err(
                    &r.span(),
                    object,
                    Some("peer"),
                    format!("BGP peer `{n}` is ambiguous: several kinds of object share that name; rename one"),
                );
                None
            }
        }
    }

    /// Builds the typed topology; errors and warnings go to the sink.
    pub fn build(&mut self, f: &raw::File) -> Topology {
        // Pass 1: declare every name.
        let mut subnet_count = 0u32;
        for (i, v) in f.vnet.iter().enumerate() {
            let vid = VnetId(i as u32);
            self.declare(|n| &mut n.vnets, &v.get_ref().name, "vnet", vid);
            for s in &v.get_ref().subnet {
                let sname = self.name(&s.get_ref().name, "subnet");
                let key = (vid, sname.clone());
                if let std::collections::hash_map::Entry::Vacant(e) = self.names.subnets.entry(key)
                {
                    e.insert(SubnetId(subnet_count));
                } else {
                    let obj = format!("vnet {}/subnet {sname}", v.get_ref().name.get_ref());
                    self.err(
                        &s.get_ref().name.span(),
                        &obj,
                        Some("name"),
                        "duplicate subnet name in this VNet",
                    );
                }
                subnet_count += 1;
            }
        }
        for (i, x) in f.nic.iter().enumerate() {
            self.declare(|n| &mut n.nics, &x.get_ref().name, "nic", NicId(i as u32));
        }
        for (i, x) in f.route_table.iter().enumerate() {
            self.declare(
                |n| &mut n.route_tables,
                &x.get_ref().name,
                "route_table",
                RouteTableId(i as u32),
            );
        }
        for (i, x) in f.gateway.iter().enumerate() {
            self.declare(
                |n| &mut n.gateways,
                &x.get_ref().name,
                "gateway",
                GatewayId(i as u32),
            );
        }
        for (i, x) in f.route_server.iter().enumerate() {
            self.declare(
                |n| &mut n.route_servers,
                &x.get_ref().name,
                "route_server",
                RouteServerId(i as u32),
            );
        }
        for (i, x) in f.nva.iter().enumerate() {
            self.declare(|n| &mut n.nvas, &x.get_ref().name, "nva", NvaId(i as u32));
        }
        for (i, x) in f.site.iter().enumerate() {
            self.declare(
                |n| &mut n.sites,
                &x.get_ref().name,
                "site",
                SiteId(i as u32),
            );
        }

        let options = self.options(f.options.as_ref());

        // Pass 2: objects.
        let mut vnets = Vec::new();
        let mut subnets = Vec::new();
        for (i, v) in f.vnet.iter().enumerate() {
            let vid = VnetId(i as u32);
            let rv = v.get_ref();
            let obj = format!("vnet {}", rv.name.get_ref());
            if rv.address_space.is_empty() {
                self.err(
                    &v.span(),
                    &obj,
                    Some("address_space"),
                    "a VNet needs at least one address range",
                );
            }
            let address_space = self.nets(&rv.address_space, &obj, "address_space");
            let region = rv.region.get_ref().trim().to_string();
            if region.is_empty() {
                self.err(
                    &rv.region.span(),
                    &obj,
                    Some("region"),
                    "the region is empty",
                );
            }
            let mut ids = Vec::new();
            for s in &rv.subnet {
                let rs = s.get_ref();
                let sid = SubnetId(subnets.len() as u32);
                ids.push(sid);
                let sobj = format!("subnet {}/{}", rv.name.get_ref(), rs.name.get_ref());
                let mut prefixes = Vec::new();
                for (p, field) in rs
                    .prefix
                    .iter()
                    .map(|p| (p, "prefix"))
                    .chain(rs.prefixes.iter().map(|p| (p, "prefixes")))
                {
                    if let Some(net) = self.net(p, &sobj, field) {
                        self.check_subnet_prefix(
                            p,
                            net,
                            &address_space,
                            &sobj,
                            field,
                            rs.name.get_ref(),
                        );
                        prefixes.push(net);
                    }
                }
                if rs.prefix.is_none() && rs.prefixes.is_empty() {
                    self.err(
                        &s.span(),
                        &sobj,
                        Some("prefix"),
                        "a subnet needs `prefix` (or `prefixes` for dual stack)",
                    );
                }
                let route_table = rs.route_table.as_ref().and_then(|r| {
                    self.resolve(|n| &n.route_tables, r, "route_table", &sobj, "route_table")
                });
                let mut service_endpoints = Vec::new();
                for se in &rs.service_endpoint {
                    let se = se.get_ref();
                    let service = se.service.get_ref().clone();
                    let prefixes = self.nets(&se.prefixes, &sobj, "service_endpoint.prefixes");
                    service_endpoints.push(ServiceEndpoint { service, prefixes });
                }
                subnets.push(Subnet {
                    name: rs.name.get_ref().clone(),
                    vnet: vid,
                    prefixes,
                    route_table,
                    service_endpoints,
                    nics: Vec::new(),
                    loc: self.loc(&s.span()),
                });
            }
            vnets.push(Vnet {
                name: rv.name.get_ref().clone(),
                region,
                address_space,
                subnets: ids,
                peerings: Vec::new(),
                loc: self.loc(&v.span()),
            });
        }

        let mut nics = Vec::new();
        for x in &f.nic {
            let r = x.get_ref();
            let obj = format!("nic {}", r.name.get_ref());
            let vnet = self.resolve(|n| &n.vnets, &r.vnet, "vnet", &obj, "vnet");
            let subnet = vnet.and_then(|vid| {
                let key = (vid, r.subnet.get_ref().clone());
                match self.names.subnets.get(&key) {
                    Some(&s) => Some(s),
                    None => {
                        let mut known: Vec<&str> = self
                            .names
                            .subnets
                            .keys()
                            .filter(|(v, _)| *v == vid)
                            .map(|(_, s)| s.as_str())
                            .collect();
                        known.sort_unstable();
                        let msg = format!(
                            "unknown subnet `{}` in vnet `{}` (known: {})",
                            r.subnet.get_ref(),
                            r.vnet.get_ref(),
                            known.join(", ")
                        );
                        self.err(&r.subnet.span(), &obj, Some("subnet"), msg);
                        None
                    }
                }
            });
            if r.ips.is_empty() {
                self.err(
                    &x.span(),
                    &obj,
                    Some("ips"),
                    "a NIC needs at least one IP address",
                );
            }
            let mut ips = Vec::new();
            for v in &r.ips {
                if let Some(ip) = self.ip(v, &obj, "ips") {
                    if let Some(sid) = subnet {
                        let s = &subnets[sid.idx()];
                        let path = format!("{}/{}", r.vnet.get_ref(), s.name);
                        self.check_ip_in_subnet(v, ip, &s.prefixes, &path, &obj, "ips");
                    }
                    ips.push(ip);
                }
            }
            let public_ip = r
                .public_ip
                .as_ref()
                .and_then(|p| self.ip(p, &obj, "public_ip"));
            let vm =
                r.vm.as_ref()
                    .map(|v| self.name(v, &obj))
                    .unwrap_or_else(|| r.name.get_ref().clone());
            if let (Some(vnet), Some(subnet)) = (vnet, subnet) {
                let id = NicId(nics.len() as u32);
                subnets[subnet.idx()].nics.push(id);
                nics.push(Nic {
                    name: r.name.get_ref().clone(),
                    vm,
                    vnet,
                    subnet,
                    ips,
                    ip_forwarding: r.ip_forwarding,
                    public_ip,
                    loc: self.loc(&x.span()),
                });
            } else {
                // Keep ids aligned with declaration order: placeholder that
                // is never returned (errors were reported).
                nics.push(Nic {
                    name: r.name.get_ref().clone(),
                    vm,
                    vnet: VnetId(u32::MAX),
                    subnet: SubnetId(u32::MAX),
                    ips,
                    ip_forwarding: r.ip_forwarding,
                    public_ip,
                    loc: self.loc(&x.span()),
                });
            }
        }

        let route_tables = f.route_table.iter().map(|x| self.route_table(x)).collect();

        let mut peerings = Vec::new();
        for x in &f.peering {
            let r = x.get_ref();
            let label = r
                .name
                .as_ref()
                .map(|n| n.get_ref().clone())
                .unwrap_or_else(|| format!("{}-to-{}", r.vnet.get_ref(), r.remote.get_ref()));
            let obj = format!("peering {label}");
            let vnet = self.resolve(|n| &n.vnets, &r.vnet, "vnet", &obj, "vnet");
            let remote = self.resolve(|n| &n.vnets, &r.remote, "vnet", &obj, "remote");
            if let (Some(vnet), Some(remote)) = (vnet, remote) {
                peerings.push(Peering {
                    name: label,
                    vnet,
                    remote,
                    allow_virtual_network_access: r.allow_virtual_network_access,
                    allow_forwarded_traffic: r.allow_forwarded_traffic,
                    allow_gateway_transit: r.allow_gateway_transit,
                    use_remote_gateways: r.use_remote_gateways,
                    loc: self.loc(&x.span()),
                });
            }
        }

        for (i, p) in peerings.iter().enumerate() {
            if let Some(v) = vnets.get_mut(p.vnet.idx()) {
                v.peerings.push(PeeringId(i as u32));
            }
        }
        let gateways = f.gateway.iter().map(|x| self.gateway(x)).collect();
        let route_servers = f
            .route_server
            .iter()
            .map(|x| self.route_server(x))
            .collect();
        let nvas = f.nva.iter().map(|x| self.nva(x)).collect();
        let sites = f.site.iter().map(|x| self.site(x)).collect();

        let mut load_balancers = Vec::new();
        for x in &f.load_balancer {
            let r = x.get_ref();
            let obj = format!("load_balancer {}", r.name.get_ref());
            let name = self.name(&r.name, "load_balancer");
            let vnet = self.resolve(|n| &n.vnets, &r.vnet, "vnet", &obj, "vnet");
            let subnet = vnet.and_then(|v| {
                let s = self
                    .names
                    .subnets
                    .get(&(v, r.subnet.get_ref().clone()))
                    .copied();
                if s.is_none() {
                    self.err(
                        &r.subnet.span(),
                        &obj,
                        Some("subnet"),
                        format!("unknown subnet `{}`", r.subnet.get_ref()),
                    );
                }
                s
            });
            let ip = self.ip(&r.frontend_ip, &obj, "frontend_ip");
            let backends = r
                .backends
                .iter()
                .filter_map(|b| self.resolve(|n| &n.nics, b, "nic", &obj, "backends"))
                .collect();
            if let (Some(vnet), Some(subnet), Some(frontend_ip)) = (vnet, subnet, ip) {
                load_balancers.push(LoadBalancer {
                    name,
                    vnet,
                    subnet,
                    frontend_ip,
                    backends,
                    loc: self.loc(&x.span()),
                });
            }
        }

        let assertions = f
            .assertion
            .iter()
            .filter_map(|x| self.assertion(x))
            .collect();

        Topology {
            file: self.sink.file.to_string(),
            description: f.description.clone(),
            options,
            vnets,
            subnets,
            nics,
            route_tables,
            peerings,
            gateways,
            route_servers,
            nvas,
            sites,
            load_balancers,
            assertions,
            warnings: Vec::new(),
        }
    }

    /// A subnet prefix lies inside its VNet's space and has an Azure size (R46).
    fn check_subnet_prefix(
        &mut self,
        v: &S<String>,
        p: IpNet,
        space: &[IpNet],
        object: &str,
        field: &str,
        name: &str,
    ) {
        if !space.is_empty() && !space.iter().any(|r| r.contains(&p)) {
            let list: Vec<String> = space.iter().map(ToString::to_string).collect();
            self.err(
                &v.span(),
                object,
                Some(field),
                format!(
                    "{p} is not inside the VNet's address space ({})",
                    list.join(", ")
                ),
            );
        }
        match p {
            IpNet::V4(n) if !(8..=29).contains(&n.prefix_len()) => {
                self.err(
                    &v.span(),
                    object,
                    Some(field),
                    format!("{p}: IPv4 subnets are /8 to /29 (R46)"),
                );
            }
            IpNet::V6(n) if n.prefix_len() != 64 => {
                self.err(
                    &v.span(),
                    object,
                    Some(field),
                    format!("{p}: IPv6 subnets are /64 in Azure"),
                );
            }
            IpNet::V4(n) if name == "RouteServerSubnet" && n.prefix_len() > 27 => {
                self.err(
                    &v.span(),
                    object,
                    Some(field),
                    format!("{p}: RouteServerSubnet must be /27 or larger"),
                );
            }
            _ => {}
        }
    }

    /// An address lies in one of the subnet's prefixes and is not reserved (R46).
    fn check_ip_in_subnet(
        &mut self,
        v: &S<String>,
        ip: IpAddr,
        prefixes: &[IpNet],
        path: &str,
        object: &str,
        field: &str,
    ) {
        match prefixes.iter().find(|p| p.contains(&ip)) {
            None => {
                let list: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
                self.err(
                    &v.span(),
                    object,
                    Some(field),
                    format!("{ip} is outside subnet {path} ({})", list.join(", ")),
                );
            }
            Some(p) => {
                if let Some(why) = super::validate::reserved_reason(*p, ip) {
                    self.err(
                        &v.span(),
                        object,
                        Some(field),
                        format!("{ip} is {why} of subnet {p}; Azure reserves it (R46)"),
                    );
                }
            }
        }
    }

    fn options(&mut self, o: Option<&S<raw::RawOptions>>) -> Options {
        let Some(o) = o else {
            return Options::default();
        };
        let r = o.get_ref();
        let d = Options::default();
        let mut limit = |v: &Option<S<i64>>, field: &str, default: usize| match v {
            Some(x) => self
                .int(x, 1, 1_000_000, "options", field)
                .map_or(default, |n| n as usize),
            None => default,
        };
        let route_server_max_routes_per_peer = limit(
            &r.route_server_max_routes_per_peer,
            "route_server_max_routes_per_peer",
            d.route_server_max_routes_per_peer,
        );
        let vpn_gateway_max_prefixes = limit(
            &r.vpn_gateway_max_prefixes,
            "vpn_gateway_max_prefixes",
            d.vpn_gateway_max_prefixes,
        );
        let expressroute_max_prefixes = limit(
            &r.expressroute_max_prefixes,
            "expressroute_max_prefixes",
            d.expressroute_max_prefixes,
        );
        let expressroute_max_vnet_prefixes = limit(
            &r.expressroute_max_vnet_prefixes,
            "expressroute_max_vnet_prefixes",
            d.expressroute_max_vnet_prefixes,
        );
        Options {
            extra_none_prefixes: self.nets(
                &r.extra_none_prefixes,
                "options",
                "extra_none_prefixes",
            ),
            hide_reserved_none_with_gateway_routes: r.hide_reserved_none_with_gateway_routes,
            udr_default_removes_172_16: r.udr_default_removes_172_16,
            bgp_default_removes_reserved: r.bgp_default_removes_reserved,
            route_server_max_routes_per_peer,
            vpn_gateway_max_prefixes,
            expressroute_max_prefixes,
            expressroute_max_vnet_prefixes,
        }
    }

    fn route_table(&mut self, x: &S<raw::RawRouteTable>) -> RouteTable {
        let r = x.get_ref();
        let obj = format!("route_table {}", r.name.get_ref());
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
            propagate_gateway_routes: r.propagate_gateway_routes,
            routes,
            loc: self.loc(&x.span()),
        }
    }

    fn gateway(&mut self, x: &S<raw::RawGateway>) -> Gateway {
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

    fn route_server(&mut self, x: &S<raw::RawRouteServer>) -> RouteServer {
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
                "vpnnva" | "vpn" => RoutingPreference::VpnNva,
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

    fn tunnels(&mut self, v: &[S<raw::RawTunnel>], owner: &str) -> Vec<Tunnel> {
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

    fn os_routes(
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

    fn sessions(
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
            let s = BgpSession {
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
                loc: self.loc(&x.span()),
            };
            if peer.is_some() {
                out.push(s);
            }
        }
        out
    }

    fn nva(&mut self, x: &S<raw::RawNva>) -> Nva {
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
        let bgp = self.sessions(&r.bgp, &obj, &tunnels);
        if !bgp.is_empty() && asn.is_none() {
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
            routes,
            bgp,
            tunnels,
            loc: self.loc(&x.span()),
        }
    }

    fn site(&mut self, x: &S<raw::RawSite>) -> Site {
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
        if (!bgp.is_empty() || connections.iter().any(|c| c.bgp)) && asn.is_none() {
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

    fn endpoint(&mut self, v: &S<String>, object: &str, field: &str) -> Option<Endpoint> {
        let s = v.get_ref().trim();
        if s.eq_ignore_ascii_case("internet") {
            return Some(Endpoint::Internet);
        }
        if let Some(&id) = self.names.nics.get(s) {
            return Some(Endpoint::Nic(id));
        }
        if let Some(&id) = self.names.sites.get(s) {
            return Some(Endpoint::Site(id));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(Endpoint::Prefix(IpNet::from(ip)));
        }
        if s.contains('/') {
            return self.net(v, object, field).map(Endpoint::Prefix);
        }
        self.err(
            &v.span(),
            object,
            Some(field),
            format!("`{s}` is not a NIC, a site, `internet`, an IP address or a prefix"),
        );
        None
    }

    fn assertion(&mut self, x: &S<raw::RawAssertion>) -> Option<Assertion> {
        let r = x.get_ref();
        let obj = format!("assertion {}", r.name.get_ref());
        let name = self.name(&r.name, &obj);
        let from = self.endpoint(&r.from, &obj, "from");
        if let Some(Endpoint::Prefix(_) | Endpoint::Internet) = from {
            self.err(
                &r.from.span(),
                &obj,
                Some("from"),
                "`from` must be a NIC or a site",
            );
        }
        let to = self.endpoint(&r.to, &obj, "to");
        let expect = match r
            .expect
            .as_ref()
            .map(|e| (e.get_ref().to_ascii_lowercase(), e.span()))
        {
            None => Expect::Delivered,
            Some((e, _)) if e == "delivered" => Expect::Delivered,
            Some((e, _)) if e == "dropped" => Expect::Dropped,
            Some((e, span)) => {
                self.err(
                    &span,
                    &obj,
                    Some("expect"),
                    format!("unknown expectation `{e}` (delivered or dropped)"),
                );
                Expect::Delivered
            }
        };
        let via = r
            .via
            .as_ref()
            .and_then(|v| self.resolve(|n| &n.nvas, v, "nva", &obj, "via"));
        Some(Assertion {
            name,
            from: from?,
            to: to?,
            expect,
            via,
            loc: self.loc(&x.span()),
        })
    }
}
