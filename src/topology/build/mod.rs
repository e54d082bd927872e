//! Raw file → typed [`Topology`]: resolves every name to an id, parses every
//! address and number with an error that names the file, line, object and
//! field. Cross-object rules live in [`super::validate`]. The objects with
//! nested parts (route tables, gateways, Route Servers, NVAs, sites,
//! assertions) are built in `objects`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;

use super::diag::{Loc, Sink};
use super::model::*;
use super::raw::{self, S};

mod objects;

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
        } else if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            Some(
                "holds characters Azure does not allow in names (letters, digits, `_`, `.` and `-` only)",
            )
        } else if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            Some("must start with a letter or a digit, as Azure's names do")
        } else if !s.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            Some("must end with a letter, a digit or `_`, as Azure's names do")
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
            let power = match &r.power {
                None => PowerState::Running,
                Some(p) => PowerState::parse(p.get_ref().trim()).unwrap_or_else(|| {
                    self.err(
                        &p.span(),
                        &obj,
                        Some("power"),
                        format!(
                            "unknown power state `{}` (running, stopped or deallocated)",
                            p.get_ref()
                        ),
                    );
                    PowerState::Running
                }),
            };
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
                    power,
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
                    power,
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
            let subnets_of =
                |b: &mut Self, v: Option<VnetId>, list: &Option<Vec<S<String>>>, field: &str| {
                    let (Some(vid), Some(list)) = (v, list) else {
                        return None;
                    };
                    let mut out = Vec::new();
                    for n in list {
                        match b.names.subnets.get(&(vid, n.get_ref().clone())) {
                            Some(&s) => out.push(s),
                            None => b.err(
                                &n.span(),
                                &obj,
                                Some(field),
                                format!(
                                    "unknown subnet `{}` in vnet `{}`",
                                    n.get_ref(),
                                    vnets[vid.idx()].name
                                ),
                            ),
                        }
                    }
                    Some(out)
                };
            let local_subnets = subnets_of(self, vnet, &r.local_subnets, "local_subnets");
            let remote_subnets = subnets_of(self, remote, &r.remote_subnets, "remote_subnets");
            if let (Some(vnet), Some(remote)) = (vnet, remote) {
                peerings.push(Peering {
                    local_subnets,
                    remote_subnets,
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
            let mut rules = Vec::new();
            for x in &r.rule {
                let rr = x.get_ref();
                let protocol = match rr
                    .protocol
                    .as_ref()
                    .map(|p| p.get_ref().to_ascii_lowercase())
                {
                    None if rr.ha_ports => None,
                    Some(p) if p == "all" => None,
                    Some(p) if p == "tcp" => Some(6),
                    Some(p) if p == "udp" => Some(17),
                    other => {
                        self.err(
                            &x.span(),
                            &obj,
                            Some("rule.protocol"),
                            match other {
                                Some(p) => format!("unknown protocol `{p}` (tcp, udp or all)"),
                                None => "a rule needs `protocol` and `port`, or `ha_ports = true`"
                                    .to_string(),
                            },
                        );
                        continue;
                    }
                };
                let port = match &rr.port {
                    Some(p) => self.int(p, 0, 65535, &obj, "rule.port").unwrap_or(0) as u16,
                    None => 0,
                };
                if !rr.ha_ports && protocol.is_some() && port == 0 {
                    self.err(
                        &x.span(),
                        &obj,
                        Some("rule.port"),
                        "a TCP or UDP rule needs a `port` (1-65535); HA ports is `ha_ports = true`",
                    );
                }
                rules.push(LbRule {
                    protocol,
                    port,
                    floating_ip: rr.floating_ip,
                });
            }
            if r.rule.is_empty() {
                rules.push(LbRule::HA_PORTS);
            }
            if let (Some(vnet), Some(subnet), Some(frontend_ip)) = (vnet, subnet, ip) {
                load_balancers.push(LoadBalancer {
                    rules,
                    name,
                    vnet,
                    subnet,
                    frontend_ip,
                    backends,
                    loc: self.loc(&x.span()),
                });
            }
        }

        let mut vnet_connections = Vec::new();
        for x in &f.vnet_connection {
            let r = x.get_ref();
            let label = r
                .name
                .as_ref()
                .map(|n| n.get_ref().clone())
                .unwrap_or_else(|| format!("{}-to-{}", r.gateway1.get_ref(), r.gateway2.get_ref()));
            let obj = format!("vnet_connection {label}");
            let a = self.resolve(|n| &n.gateways, &r.gateway1, "gateway", &obj, "gateway1");
            let b = self.resolve(|n| &n.gateways, &r.gateway2, "gateway", &obj, "gateway2");
            if let (Some(a), Some(b)) = (a, b) {
                vnet_connections.push(VnetConnection {
                    name: label,
                    gateways: [a, b],
                    bgp: r.bgp,
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
            vnet_connections,
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
            reserved_172_16_outside: r.reserved_172_16_outside,
            enforce_allow_forwarded_traffic: r.enforce_allow_forwarded_traffic,
            route_server_max_routes_per_peer,
            vpn_gateway_max_prefixes,
            expressroute_max_prefixes,
            expressroute_max_vnet_prefixes,
        }
    }
}
