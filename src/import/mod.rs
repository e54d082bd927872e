//! `import`: a topology file from what Azure exports. Reads `az ... -o
//! json` output (lists or single resources, the az CLI's flattened shape
//! or REST's `properties` nesting), Azure Resource Graph results
//! (`{"data": [...]}`) and REST API example files, and writes the TOML
//! topology: every object with its Azure resource id as a comment, ARM
//! names kept. What Azure does not expose (an NVA's OS routes, its BGP
//! advertisements and tunnels) becomes a marked stub to complete.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::io::azure::{AzureJsonError, field};

mod arm;
mod export;
mod json;
pub use export::export_az;
use json::*;

/// What an import produced.
#[derive(Clone, Debug, Default)]
pub struct Imported {
    /// The topology file.
    pub toml: String,
    /// What the user must complete (NVA routes, advertisements, tunnels).
    pub stubs: Vec<String>,
    /// Resources of types the importer does not read: (file, JSON path, type).
    pub skipped: Vec<(String, String, String)>,
    /// Resources read but not usable, and why.
    pub warnings: Vec<String>,
}

/// Builds the topology from the documents, `(file, JSON)` each.
/// `with`: a topology file whose NVAs, sites, assertions, options and
/// description (what Azure does not hold) are taken instead of stubs.
pub fn import(
    docs: &[(String, Value)],
    with: Option<&toml::Table>,
) -> Result<Imported, AzureJsonError> {
    let mut out = Imported::default();
    let mut by_kind: BTreeMap<String, Vec<Res>> = BTreeMap::new();
    // ARM templates: expressions evaluated, children merged first.
    let mut expanded: Vec<(String, Value)> = Vec::new();
    for (file, v) in docs {
        if arm::is_template(v) {
            expanded.push((file.clone(), arm::expand(file, v)?));
        }
    }
    let docs_in = docs
        .iter()
        .filter(|(_, v)| !arm::is_template(v))
        .chain(expanded.iter());
    for (file, v) in docs_in {
        for r in resources(file, v) {
            let k = kind(&r);
            let known = [
                "microsoft.network/virtualnetworks",
                "microsoft.network/virtualnetworks/subnets",
                "microsoft.network/virtualnetworks/virtualnetworkpeerings",
                "microsoft.network/routetables",
                "microsoft.network/networkinterfaces",
                "microsoft.network/virtualnetworkgateways",
                "microsoft.network/localnetworkgateways",
                "microsoft.network/connections",
                "microsoft.network/virtualhubs",
                "microsoft.network/virtualhubs/bgpconnections",
                "microsoft.network/loadbalancers",
                "microsoft.network/publicipaddresses",
                "microsoft.network/expressroutecircuits",
            ];
            if known.contains(&k.as_str()) {
                by_kind.entry(k).or_default().push(r);
            } else {
                let shown = if k.is_empty() {
                    "(no type)".to_string()
                } else {
                    k
                };
                out.skipped.push((r.file.clone(), r.path.clone(), shown));
            }
        }
    }
    let get = |k: &str| by_kind.get(k).map_or(&[][..], Vec::as_slice);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Imported from Azure by `vnetplane import`. Each object names its resource id."
    );
    let _ = writeln!(
        t,
        "# Look for STUB: what Azure does not expose, to complete by hand.\n"
    );

    // VNets, their subnets and peerings (inline or as their own resources).
    let mut vnets: BTreeMap<String, (String, &Res)> = BTreeMap::new(); // name -> (region, res)
    let mut subnet_rt: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut subnet_prefixes: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in get("microsoft.network/virtualnetworks") {
        let name = r.name();
        let region = r.s("location").unwrap_or("unknown").to_string();
        let space = field(r.v, "addressSpace")
            .map(|a| strs(a, "addressPrefixes"))
            .unwrap_or_default();
        if space.is_empty() {
            return Err(bad(
                r,
                "properties.addressSpace.addressPrefixes",
                "a VNet without address space",
            ));
        }
        let _ = writeln!(
            t,
            "# id: {}\n[[vnet]]\nname = {}\nregion = {}\naddress_space = {}",
            r.id(),
            q(&name),
            q(&region.to_ascii_lowercase().replace(' ', "")),
            qlist(&space)
        );
        for (i, s) in list(r.v, "subnets").iter().enumerate() {
            let sr = Res {
                file: r.file.clone(),
                path: format!("{}.subnets[{i}]", r.path),
                v: s,
            };
            emit_subnet(
                &mut t,
                &sr,
                &name,
                &mut subnet_rt,
                &mut subnet_prefixes,
                with,
                &mut out.stubs,
            )?;
        }
        let _ = writeln!(t);
        vnets.insert(name, (region, r));
    }
    for r in get("microsoft.network/virtualnetworks/subnets") {
        let Some((vnet, _)) = subnet_of(&r.id()) else {
            return Err(bad(r, "id", "a subnet id without its VNet"));
        };
        if subnet_prefixes
            .keys()
            .any(|(v, s)| *v == vnet && *s == r.name())
        {
            continue; // already inline in its VNet
        }
        out.warnings.push(format!(
            "{}: {}: subnet {} of VNet {} is not under an imported VNet; skipped",
            r.file,
            r.path,
            r.name(),
            vnet
        ));
    }
    let mut peerings: Vec<(String, &Value, String)> = Vec::new(); // (vnet, peering, file:path)
    for (vname, (_, r)) in &vnets {
        for (i, p) in list(r.v, "virtualNetworkPeerings").iter().enumerate() {
            peerings.push((
                vname.clone(),
                p,
                format!("{}: {}.virtualNetworkPeerings[{i}]", r.file, r.path),
            ));
        }
    }
    for r in get("microsoft.network/virtualnetworks/virtualnetworkpeerings") {
        let id = r.id();
        let p: Vec<&str> = id.split('/').collect();
        let vnet = p
            .iter()
            .position(|s| s.eq_ignore_ascii_case("virtualNetworks"))
            .and_then(|i| p.get(i + 1))
            .map(|s| s.to_string())
            .unwrap_or_default();
        if !peerings.iter().any(|(v, x, _)| {
            *v == vnet && field(x, "name").and_then(Value::as_str) == Some(&r.name())
        }) {
            peerings.push((vnet, r.v, format!("{}: {}", r.file, r.path)));
        }
    }
    let mut peering_names: BTreeMap<String, usize> = BTreeMap::new();
    for (_, p, _) in &peerings {
        if let Some(n) = field(p, "name").and_then(Value::as_str) {
            *peering_names.entry(n.to_string()).or_default() += 1;
        }
    }
    for (vnet, p, at) in &peerings {
        let Some(remote) = id_of(p, "remoteVirtualNetwork").map(|i| last_segment(&i)) else {
            out.warnings.push(format!(
                "{at}: a peering without remoteVirtualNetwork; skipped"
            ));
            continue;
        };
        if !vnets.contains_key(vnet) || !vnets.contains_key(&remote) {
            out.warnings.push(format!(
                "{at}: peering {vnet} → {remote}: a VNet it joins was not imported; skipped"
            ));
            continue;
        }
        let b = |k: &str, d: bool| field(p, k).and_then(Value::as_bool).unwrap_or(d);
        let name = field(p, "name").and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(
            t,
            "# id: {}\n[[peering]]\nname = {}\nvnet = {}\nremote = {}\nallow_virtual_network_access = {}\nallow_forwarded_traffic = {}\nallow_gateway_transit = {}\nuse_remote_gateways = {}",
            field(p, "id").and_then(Value::as_str).unwrap_or(""),
            // ARM's name, unless two VNets use it.
            q(&if peering_names.get(name) == Some(&1) {
                name.to_string()
            } else {
                format!("{vnet}-{name}")
            }),
            q(vnet),
            q(&remote),
            b("allowVirtualNetworkAccess", true),
            b("allowForwardedTraffic", false),
            b("allowGatewayTransit", false),
            b("useRemoteGateways", false)
        );
        if field(p, "peerCompleteVnets").and_then(Value::as_bool) == Some(false) {
            let _ = writeln!(
                t,
                "local_subnets = {}\nremote_subnets = {}",
                qlist(&strs(p, "localSubnetNames")),
                qlist(&strs(p, "remoteSubnetNames"))
            );
        }
        let _ = writeln!(t);
    }

    // Route tables.
    for r in get("microsoft.network/routetables") {
        let disable = flag(r.v, "disableBgpRoutePropagation");
        let _ = writeln!(
            t,
            "# id: {}\n[[route_table]]\nname = {}\ndisable_bgp_route_propagation = {disable}",
            r.id(),
            q(&r.name())
        );
        for (i, u) in list(r.v, "routes").iter().enumerate() {
            let ur = Res {
                file: r.file.clone(),
                path: format!("{}.routes[{i}]", r.path),
                v: u,
            };
            let prefix = ur
                .s("addressPrefix")
                .ok_or_else(|| bad(&ur, "addressPrefix", "missing"))?;
            if prefix.parse::<IpNet>().is_err() {
                out.warnings.push(format!(
                    "{}: {}: route {} is for {prefix:?} (a service tag?): not modelled; skipped",
                    ur.file,
                    ur.path,
                    ur.name()
                ));
                continue;
            }
            let hop = ur
                .s("nextHopType")
                .ok_or_else(|| bad(&ur, "nextHopType", "missing"))?;
            let _ = writeln!(
                t,
                "  [[route_table.route]]\n  name = {}\n  prefix = {}\n  next_hop_type = {}",
                q(&ur.name()),
                q(prefix),
                q(hop)
            );
            if let Some(ip) = ur.s("nextHopIpAddress").filter(|s| !s.is_empty()) {
                let _ = writeln!(t, "  next_hop_ip = {}", q(ip));
            }
        }
        let _ = writeln!(t);
    }

    // Public IP addresses, by the id of the ipConfiguration holding them.
    let mut public: BTreeMap<String, String> = BTreeMap::new();
    for r in get("microsoft.network/publicipaddresses") {
        if let (Some(ip), Some(cfg)) = (r.s("ipAddress"), id_of(r.v, "ipConfiguration")) {
            public.insert(cfg.to_ascii_lowercase(), ip.to_string());
        }
    }
    let public_of = |owner_id: &str, cfg: &Value| -> Option<String> {
        let name = field(cfg, "name").and_then(Value::as_str).unwrap_or("");
        let key = format!("{owner_id}/ipConfigurations/{name}").to_ascii_lowercase();
        public.get(&key).cloned()
    };
    // NICs.
    let mut nic_by_ip: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut nic_vm: BTreeMap<String, String> = BTreeMap::new();
    let mut pool_members: BTreeMap<String, Vec<String>> = BTreeMap::new(); // pool id (lower) -> NICs
    for r in get("microsoft.network/networkinterfaces") {
        let name = r.name();
        let mut ips = Vec::new();
        let mut pip: Option<String> = None;
        let mut place: Option<(String, String)> = None;
        for (i, c) in list(r.v, "ipConfigurations").iter().enumerate() {
            let cr = Res {
                file: r.file.clone(),
                path: format!("{}.ipConfigurations[{i}]", r.path),
                v: c,
            };
            if let Some(ip) = cr.s("privateIPAddress") {
                let ip = ip.split('/').next().unwrap_or(ip);
                let parsed: IpAddr = ip.parse().map_err(|_| {
                    bad(
                        &cr,
                        "privateIPAddress",
                        format!("{ip:?} is not an IP address"),
                    )
                })?;
                nic_by_ip.insert(parsed, name.clone());
                ips.push(ip.to_string());
            }
            if place.is_none() {
                place = id_of(c, "subnet").and_then(|s| subnet_of(&s));
            }
            if pip.is_none() {
                pip = public_of(&r.id(), c);
            }
            for p in list(c, "loadBalancerBackendAddressPools") {
                if let Some(id) = field(p, "id").and_then(Value::as_str) {
                    pool_members
                        .entry(id.to_ascii_lowercase())
                        .or_default()
                        .push(name.clone());
                }
            }
        }
        if ips.is_empty() {
            out.warnings.push(format!(
                "{}: {}: NIC {name} has no private IP address; skipped",
                r.file, r.path
            ));
            continue;
        }
        let Some((vnet, subnet)) = place else {
            out.warnings.push(format!(
                "{}: {}: NIC {name} has no subnet; skipped",
                r.file, r.path
            ));
            continue;
        };
        if !subnet_prefixes.contains_key(&(vnet.clone(), subnet.clone())) {
            out.warnings.push(format!(
                "{}: {}: NIC {name} is in subnet {vnet}/{subnet}, which was not imported; skipped",
                r.file, r.path
            ));
            continue;
        }
        let fwd = flag(r.v, "enableIPForwarding");
        let vm = id_of(r.v, "virtualMachine").map(|i| last_segment(&i));
        let _ = writeln!(
            t,
            "# id: {}\n[[nic]]\nname = {}\nvnet = {}\nsubnet = {}\nips = {}\nip_forwarding = {fwd}",
            r.id(),
            q(&name),
            q(&vnet),
            q(&subnet),
            qlist(&ips)
        );
        if let Some(p) = &pip {
            let _ = writeln!(t, "public_ip = {}", q(p));
        }
        if let Some(vm) = vm {
            let _ = writeln!(t, "vm = {}", q(&vm));
            nic_vm.insert(name.clone(), vm);
        }
        let _ = writeln!(t);
    }

    // Gateways.
    let mut gateway_names: BTreeMap<String, String> = BTreeMap::new(); // id lower -> name
    for r in get("microsoft.network/virtualnetworkgateways") {
        let name = r.name();
        let vnet = list(r.v, "ipConfigurations")
            .iter()
            .find_map(|c| id_of(c, "subnet"))
            .and_then(|s| subnet_of(&s))
            .map(|x| x.0);
        let Some(vnet) = vnet.filter(|v| vnets.contains_key(v)) else {
            out.warnings.push(format!(
                "{}: {}: gateway {name}: its VNet was not imported; skipped",
                r.file, r.path
            ));
            continue;
        };
        let kind = match r
            .s("gatewayType")
            .unwrap_or("Vpn")
            .to_ascii_lowercase()
            .as_str()
        {
            "expressroute" => "expressroute",
            _ => "vpn",
        };
        let aa = flag(r.v, "activeActive");
        let bgp = field(r.v, "bgpSettings").filter(|b| !b.is_null());
        let asn = bgp.and_then(|b| field(b, "asn")).and_then(Value::as_u64);
        let mut ips: Vec<String> = bgp
            .map(|b| {
                list(b, "bgpPeeringAddresses")
                    .iter()
                    .flat_map(|p| strs(p, "defaultBgpIpAddresses"))
                    .collect()
            })
            .unwrap_or_default();
        if ips.is_empty() {
            ips = bgp
                .and_then(|b| field(b, "bgpPeeringAddress"))
                .and_then(Value::as_str)
                .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
                .unwrap_or_default();
        }
        if ips.is_empty() {
            // Azure exposes no instance addresses (an ExpressRoute gateway's
            // bgpSettings is null): the GatewaySubnet's .4 and .5, where
            // Azure puts them, marked as assumed.
            let gw_subnet = subnet_prefixes
                .get(&(vnet.clone(), "GatewaySubnet".to_string()))
                .and_then(|p| p.iter().find_map(|x| x.parse::<ipnet::Ipv4Net>().ok()));
            if let Some(net) = gw_subnet {
                ips = net.hosts().skip(3).take(2).map(|a| a.to_string()).collect();
            }
            out.stubs.push(format!(
                "gateway {name}: its instance IPs (Azure does not expose them; assumed {})",
                if ips.is_empty() {
                    "nothing".to_string()
                } else {
                    ips.join(", ")
                }
            ));
        }
        let _ = writeln!(
            t,
            "# id: {}\n[[gateway]]\nname = {}\nvnet = {}\nkind = {}\nactive_active = {aa}\nips = {}",
            r.id(),
            q(&name),
            q(&vnet),
            q(kind),
            qlist(&ips)
        );
        if let (Some(a), "vpn") = (asn, kind) {
            let _ = writeln!(t, "asn = {a}");
        }
        if kind == "vpn"
            && r.s("vpnType")
                .is_some_and(|v| v.eq_ignore_ascii_case("PolicyBased"))
        {
            let _ = writeln!(t, "vpn_type = \"policy-based\"");
        }
        if let Some(p) = list(r.v, "ipConfigurations")
            .iter()
            .find_map(|c| public_of(&r.id(), c))
        {
            let _ = writeln!(t, "public_ip = {}", q(&p));
        }
        let _ = writeln!(t);
        gateway_names.insert(r.id().to_ascii_lowercase(), name);
    }

    // Local network gateways and connections: sites and VNet-to-VNet.
    let lngs: BTreeMap<String, &Res> = get("microsoft.network/localnetworkgateways")
        .iter()
        .map(|r| (r.id().to_ascii_lowercase(), r))
        .collect();
    let mut sites: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new(); // lng id -> (toml head, connection lines)
    for r in get("microsoft.network/connections") {
        let ctype = r.s("connectionType").unwrap_or("").to_ascii_lowercase();
        let gw1 = id_of(r.v, "virtualNetworkGateway1").map(|s| s.to_ascii_lowercase());
        let Some(g1) = gw1.as_ref().and_then(|g| gateway_names.get(g)) else {
            out.warnings.push(format!(
                "{}: {}: connection {}: its gateway was not imported; skipped",
                r.file,
                r.path,
                r.name()
            ));
            continue;
        };
        let bgp = flag(r.v, "enableBgp");
        match ctype.as_str() {
            "vnet2vnet" => {
                let Some(g2) = id_of(r.v, "virtualNetworkGateway2")
                    .and_then(|g| gateway_names.get(&g.to_ascii_lowercase()))
                else {
                    out.warnings.push(format!(
                        "{}: {}: connection {}: its second gateway was not imported; skipped",
                        r.file,
                        r.path,
                        r.name()
                    ));
                    continue;
                };
                let _ = writeln!(
                    t,
                    "# id: {}\n[[vnet_connection]]\nname = {}\ngateway1 = {}\ngateway2 = {}\nbgp = {bgp}\n",
                    r.id(),
                    q(&r.name()),
                    q(g1),
                    q(g2)
                );
            }
            _ => {
                let Some(lng) = id_of(r.v, "localNetworkGateway2")
                    .or_else(|| id_of(r.v, "peer"))
                    .map(|s| s.to_ascii_lowercase())
                else {
                    out.warnings.push(format!("{}: {}: connection {} ({ctype}) has no local network gateway: not modelled; skipped", r.file, r.path, r.name()));
                    continue;
                };
                let weight = field(r.v, "routingWeight")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let line = format!(
                    "  # connection id: {}\n  [[site.connection]]\n  gateway = {}\n  bgp = {bgp}\n  weight = {weight}\n",
                    r.id(),
                    q(g1)
                );
                sites.entry(lng).or_default().1.push(line);
            }
        }
    }
    let with_sites: Vec<String> = with_names(with, "site");
    let circuits: BTreeMap<String, &Res> = get("microsoft.network/expressroutecircuits")
        .iter()
        .map(|r| (r.id().to_ascii_lowercase(), r))
        .collect();
    for (id, (_, conns)) in &mut sites {
        let name = lngs
            .get(id)
            .or_else(|| circuits.get(id))
            .map(|r| r.name())
            .unwrap_or_else(|| last_segment(id));
        if with_sites.contains(&name) {
            continue; // taken whole from --with
        }
        if let Some(c) = circuits.get(id) {
            out.stubs.push(format!(
                "site {name}: the prefixes on-premises advertises over ExpressRoute circuit {name}"
            ));
            let _ = writeln!(
                t,
                "# id: {}\n# STUB: the prefixes advertised over this circuit.\n[[site]]\nname = {}\nprefixes = []",
                c.id(),
                q(&name)
            );
            for line in conns.iter() {
                t.push_str(line);
            }
            let _ = writeln!(t);
            continue;
        }
        let Some(r) = lngs.get(id) else {
            out.warnings.push(format!(
                "local network gateway {id} of a connection was not imported; its site is skipped"
            ));
            conns.clear();
            continue;
        };
        let space = field(r.v, "localNetworkAddressSpace")
            .map(|a| strs(a, "addressPrefixes"))
            .unwrap_or_default();
        let asn = field(r.v, "bgpSettings")
            .and_then(|b| field(b, "asn"))
            .and_then(Value::as_u64);
        let cpe = r
            .s("gatewayIpAddress")
            .filter(|s| s.parse::<IpAddr>().is_ok());
        let _ = writeln!(
            t,
            "# id: {}\n[[site]]\nname = {}\nprefixes = {}",
            r.id(),
            q(&r.name()),
            qlist(&space)
        );
        if let Some(a) = asn {
            let _ = writeln!(t, "asn = {a}");
        }
        if let Some(c) = cpe {
            let _ = writeln!(t, "cpe = {}", q(c));
        }
        for c in conns.iter() {
            t.push_str(c);
        }
        let _ = writeln!(t);
    }

    // Route Servers (virtual hubs without a virtual WAN) and their peers.
    let mut rs_names: BTreeMap<String, String> = BTreeMap::new();
    for r in get("microsoft.network/virtualhubs") {
        if id_of(r.v, "virtualWan").is_some() {
            out.warnings.push(format!(
                "{}: {}: {} is a Virtual WAN hub: not modelled; skipped",
                r.file,
                r.path,
                r.name()
            ));
            continue;
        }
        let ips = strs(r.v, "virtualRouterIps");
        let parsed: Vec<IpAddr> = ips.iter().filter_map(|s| s.parse().ok()).collect();
        let vnet = subnet_prefixes
            .iter()
            .find(|((_, s), p)| {
                s.eq_ignore_ascii_case("RouteServerSubnet")
                    && p.iter()
                        .filter_map(|x| x.parse::<IpNet>().ok())
                        .any(|n| parsed.iter().any(|ip| n.contains(ip)))
            })
            .map(|((v, _), _)| v.clone());
        let Some(vnet) = vnet else {
            out.warnings.push(format!(
                "{}: {}: route server {}: no imported RouteServerSubnet holds {}; skipped",
                r.file,
                r.path,
                r.name(),
                ips.join(", ")
            ));
            continue;
        };
        let b2b = flag(r.v, "allowBranchToBranchTraffic");
        let _ = writeln!(
            t,
            "# id: {}\n[[route_server]]\nname = {}\nvnet = {}\nips = {}\nbranch_to_branch = {b2b}",
            r.id(),
            q(&r.name()),
            q(&vnet),
            qlist(&ips)
        );
        if let Some(p) = r.s("hubRoutingPreference") {
            let _ = writeln!(t, "routing_preference = {}", q(p));
        }
        let _ = writeln!(t);
        rs_names.insert(r.id().to_ascii_lowercase(), r.name());
    }
    let mut nvas: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new(); // nic -> (asn, route servers)
    for r in get("microsoft.network/virtualhubs/bgpconnections") {
        let id = r.id().to_ascii_lowercase();
        let hub = id
            .split("/bgpconnections/")
            .next()
            .unwrap_or("")
            .to_string();
        let Some(rs) = rs_names.get(&hub) else {
            out.warnings.push(format!(
                "{}: {}: BGP connection {}: its Route Server was not imported; skipped",
                r.file,
                r.path,
                r.name()
            ));
            continue;
        };
        let ip = r.s("peerIp").and_then(|s| s.parse::<IpAddr>().ok());
        let Some(nic) = ip.and_then(|ip| nic_by_ip.get(&ip)) else {
            out.warnings.push(format!(
                "{}: {}: BGP connection {}: no imported NIC holds peer IP {}; skipped",
                r.file,
                r.path,
                r.name(),
                r.s("peerIp").unwrap_or("?")
            ));
            continue;
        };
        let asn = field(r.v, "peerAsn").and_then(Value::as_u64).unwrap_or(0);
        let e = nvas.entry(nic.clone()).or_insert((asn, Vec::new()));
        e.1.push(rs.clone());
    }
    let with_nvas = with_names(with, "nva");
    for (nic, (asn, rss)) in nvas.iter().filter(|_| with_nvas.is_empty()) {
        // Named after its VM (a NIC name when Azure gave none).
        let name = nic_vm.get(nic).unwrap_or(nic);
        out.stubs.push(format!(
            "nva {name}: its OS routes, the prefixes it advertises, its tunnels"
        ));
        let _ = writeln!(
            t,
            "# STUB: the NVA on NIC {nic}. Azure does not expose its OS routes (`[[nva.route]]`),\n# what it advertises (`originate`) or its tunnels: complete them.\n[[nva]]\nname = {}\nnics = [{}]\nasn = {asn}",
            q(name),
            q(nic)
        );
        for rs in rss {
            let _ = writeln!(
                t,
                "  [[nva.bgp]]\n  peer = {}\n  originate = []   # STUB",
                q(rs)
            );
        }
        let _ = writeln!(t);
    }

    // Load balancers (internal frontends).
    for r in get("microsoft.network/loadbalancers") {
        let fe = list(r.v, "frontendIPConfigurations")
            .iter()
            .find(|f| field(f, "privateIPAddress").is_some());
        let Some(fe) = fe else {
            out.warnings.push(format!(
                "{}: {}: load balancer {} has no internal frontend: not modelled; skipped",
                r.file,
                r.path,
                r.name()
            ));
            continue;
        };
        let ip = field(fe, "privateIPAddress")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some((vnet, subnet)) = id_of(fe, "subnet").and_then(|s| subnet_of(&s)) else {
            out.warnings.push(format!(
                "{}: {}: load balancer {}: its frontend has no subnet; skipped",
                r.file,
                r.path,
                r.name()
            ));
            continue;
        };
        if !subnet_prefixes.contains_key(&(vnet.clone(), subnet.clone())) {
            out.warnings.push(format!(
                "{}: {}: load balancer {}: its subnet {vnet}/{subnet} was not imported; skipped",
                r.file,
                r.path,
                r.name()
            ));
            continue;
        }
        let mut backends: Vec<String> = Vec::new();
        for p in list(r.v, "backendAddressPools") {
            if let Some(id) = field(p, "id").and_then(Value::as_str) {
                backends.extend(
                    pool_members
                        .get(&id.to_ascii_lowercase())
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
        backends.sort();
        backends.dedup();
        let _ = writeln!(
            t,
            "# id: {}\n[[load_balancer]]\nname = {}\nvnet = {}\nsubnet = {}\nfrontend_ip = {}\nbackends = {}",
            r.id(),
            q(&r.name()),
            q(&vnet),
            q(&subnet),
            q(ip),
            qlist(&backends)
        );
        for rule in list(r.v, "loadBalancingRules") {
            let proto = field(rule, "protocol")
                .and_then(Value::as_str)
                .unwrap_or("All");
            let port = field(rule, "frontendPort")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let floating = flag(rule, "enableFloatingIP");
            if proto.eq_ignore_ascii_case("all") && port == 0 {
                let _ = writeln!(
                    t,
                    "  [[load_balancer.rule]]\n  ha_ports = true\n  floating_ip = {floating}"
                );
            } else {
                let _ = writeln!(
                    t,
                    "  [[load_balancer.rule]]\n  protocol = {}\n  port = {port}\n  floating_ip = {floating}",
                    q(&proto.to_ascii_lowercase())
                );
            }
        }
        let _ = writeln!(t);
    }

    // A subnet's route table that was not imported: warn, and drop the key.
    let tables: Vec<String> = get("microsoft.network/routetables")
        .iter()
        .map(Res::name)
        .collect();
    for ((v, s), rt) in &subnet_rt {
        if !tables.contains(rt) {
            out.warnings.push(format!("subnet {v}/{s} uses route table {rt}, which was not imported: the subnet is imported without it"));
        }
    }
    // What Azure does not hold, from --with.
    if let Some(w) = with {
        let mut extra = toml::Table::new();
        for key in ["options", "nva", "site", "assertion"] {
            if let Some(v) = w.get(key) {
                extra.insert(key.to_string(), v.clone());
            }
        }
        let text = toml::to_string(&extra).map_err(|e| AzureJsonError {
            file: "--with".into(),
            path: "$".into(),
            message: e.to_string(),
        })?;
        let _ = writeln!(
            t,
            "# From the --with topology: what Azure does not hold.\n{text}"
        );
        if let Some(d) = w.get("description").and_then(toml::Value::as_str) {
            t = format!("description = {}\n{t}", q(d));
        }
    }
    out.toml = t;
    // Drop route_table keys naming tables that were not imported.
    for ((_, _), rt) in &subnet_rt {
        if !tables.contains(rt) {
            out.toml = out
                .toml
                .replace(&format!("  route_table = {}\n", q(rt)), "");
        }
    }
    Ok(out)
}
