//! `export --az`: a topology's Azure resources as `az ... -o json` prints
//! them (the CLI's flattened shape), one list: what `import` reads back.
//! What Azure does not hold (NVAs' OS routes and BGP, sites' routers,
//! assertions, options) is not exported; `import --with` takes it from
//! the topology file.

use serde_json::{Value, json};

use crate::topology::*;

const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/vnetplane/providers/Microsoft.Network";

fn id(kind: &str, name: &str) -> String {
    format!("{SUB}/{kind}/{name}")
}

fn subnet_id(t: &Topology, s: SubnetId) -> String {
    let sub = t.subnet(s);
    format!(
        "{}/subnets/{}",
        id("virtualNetworks", &t.vnet(sub.vnet).name),
        sub.name
    )
}

fn strs<T: ToString>(v: &[T]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// The topology's Azure resources, az CLI shape.
pub fn export_az(t: &Topology) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for (vi, v) in t.vnets.iter().enumerate() {
        let vid = VnetId(vi as u32);
        let subnets: Vec<Value> = v
            .subnets
            .iter()
            .map(|&s| {
                let sub = t.subnet(s);
                let mut o = json!({
                    "id": subnet_id(t, s),
                    "name": sub.name,
                    "addressPrefixes": strs(&sub.prefixes),
                });
                if let Some(rt) = sub.route_table {
                    o["routeTable"] = json!({"id": id("routeTables", &t.route_table(rt).name)});
                }
                if !sub.service_endpoints.is_empty() {
                    o["serviceEndpoints"] = json!(
                        sub.service_endpoints
                            .iter()
                            .map(|e| json!({"service": e.service, "locations": [v.region]}))
                            .collect::<Vec<_>>()
                    );
                }
                o
            })
            .collect();
        let peerings: Vec<Value> = v
            .peerings
            .iter()
            .map(|&p| {
                let p = &t.peerings[p.idx()];
                let mut o = json!({
                    "id": format!("{}/virtualNetworkPeerings/{}", id("virtualNetworks", &v.name), p.name),
                    "name": p.name,
                    "remoteVirtualNetwork": {"id": id("virtualNetworks", &t.vnet(p.remote).name)},
                    "allowVirtualNetworkAccess": p.allow_virtual_network_access,
                    "allowForwardedTraffic": p.allow_forwarded_traffic,
                    "allowGatewayTransit": p.allow_gateway_transit,
                    "useRemoteGateways": p.use_remote_gateways,
                    "peeringState": if t.connected_peerings(vid).any(|q| t.peerings[q.idx()].name == p.name) { "Connected" } else { "Initiated" },
                });
                if p.local_subnets.is_some() || p.remote_subnets.is_some() {
                    o["peerCompleteVnets"] = json!(false);
                    let names = |l: &Option<Vec<SubnetId>>, of: VnetId| -> Vec<String> {
                        match l {
                            Some(l) => l.iter().map(|&s| t.subnet(s).name.clone()).collect(),
                            None => t.vnet(of).subnets.iter().map(|&s| t.subnet(s).name.clone()).collect(),
                        }
                    };
                    o["localSubnetNames"] = json!(names(&p.local_subnets, p.vnet));
                    o["remoteSubnetNames"] = json!(names(&p.remote_subnets, p.remote));
                }
                o
            })
            .collect();
        out.push(json!({
            "id": id("virtualNetworks", &v.name),
            "name": v.name,
            "type": "Microsoft.Network/virtualNetworks",
            "location": v.region,
            "addressSpace": {"addressPrefixes": strs(&v.address_space)},
            "subnets": subnets,
            "virtualNetworkPeerings": peerings,
        }));
    }
    for rt in &t.route_tables {
        let routes: Vec<Value> = rt
            .routes
            .iter()
            .map(|u| {
                let (ty, ip) = match u.next_hop {
                    UdrNextHop::VirtualAppliance(ip) => ("VirtualAppliance", Some(ip.to_string())),
                    UdrNextHop::VirtualNetworkGateway => ("VirtualNetworkGateway", None),
                    UdrNextHop::None => ("None", None),
                    UdrNextHop::VnetLocal => ("VnetLocal", None),
                    UdrNextHop::Internet => ("Internet", None),
                };
                json!({
                    "id": format!("{}/routes/{}", id("routeTables", &rt.name), u.name),
                    "name": u.name,
                    "addressPrefix": u.prefix.to_string(),
                    "nextHopType": ty,
                    "nextHopIpAddress": ip,
                })
            })
            .collect();
        out.push(json!({
            "id": id("routeTables", &rt.name),
            "name": rt.name,
            "type": "Microsoft.Network/routeTables",
            "disableBgpRoutePropagation": !rt.propagate_gateway_routes,
            "routes": routes,
        }));
    }
    // Load-balancer backend pools, one per load balancer.
    let pool_of = |n: NicId| -> Vec<Value> {
        t.load_balancers
            .iter()
            .filter(|l| l.backends.contains(&n))
            .map(|l| json!({"id": format!("{}/backendAddressPools/pool", id("loadBalancers", &l.name))}))
            .collect()
    };
    for (ni, n) in t.nics.iter().enumerate() {
        let nid = NicId(ni as u32);
        let configs: Vec<Value> = n
            .ips
            .iter()
            .enumerate()
            .map(|(k, ip)| {
                let mut c = json!({
                    "name": format!("ipconfig{}", k + 1),
                    "primary": k == 0,
                    "privateIPAddress": ip.to_string(),
                    "subnet": {"id": subnet_id(t, n.subnet)},
                    "loadBalancerBackendAddressPools": if k == 0 { pool_of(nid) } else { Vec::new() },
                });
                if k == 0 && n.public_ip.is_some() {
                    c["publicIPAddress"] = json!({"id": id("publicIPAddresses", &format!("{}-pip", n.name))});
                }
                c
            })
            .collect();
        out.push(json!({
            "id": id("networkInterfaces", &n.name),
            "name": n.name,
            "type": "Microsoft.Network/networkInterfaces",
            "enableIPForwarding": n.ip_forwarding,
            "ipConfigurations": configs,
            "virtualMachine": {"id": format!("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/vnetplane/providers/Microsoft.Compute/virtualMachines/{}", n.vm)},
        }));
        if let Some(ip) = n.public_ip {
            out.push(json!({
                "id": id("publicIPAddresses", &format!("{}-pip", n.name)),
                "name": format!("{}-pip", n.name),
                "type": "Microsoft.Network/publicIPAddresses",
                "ipAddress": ip.to_string(),
                "ipConfiguration": {"id": format!("{}/ipConfigurations/ipconfig1", id("networkInterfaces", &n.name))},
            }));
        }
    }
    for g in &t.gateways {
        let gw_subnet = t
            .vnet(g.vnet)
            .subnets
            .iter()
            .copied()
            .find(|&s| t.subnet(s).is_gateway_subnet())
            .map(|s| subnet_id(t, s));
        let mut o = json!({
            "id": id("virtualNetworkGateways", &g.name),
            "name": g.name,
            "type": "Microsoft.Network/virtualNetworkGateways",
            "gatewayType": match g.kind { GatewayKind::Vpn => "Vpn", GatewayKind::ExpressRoute => "ExpressRoute" },
            "vpnType": match g.vpn_type { VpnType::RouteBased => "RouteBased", VpnType::PolicyBased => "PolicyBased" },
            "activeActive": g.active_active,
            "ipConfigurations": [{"name": "default", "subnet": {"id": gw_subnet}}],
            "bgpSettings": {
                "asn": g.asn,
                "bgpPeeringAddress": strs(&g.ips).join(","),
                "bgpPeeringAddresses": g.ips.iter().map(|ip| json!({"defaultBgpIpAddresses": [ip.to_string()]})).collect::<Vec<_>>(),
            },
        });
        if let Some(ip) = g.public_ip {
            o["ipConfigurations"][0]["publicIPAddress"] =
                json!({"id": id("publicIPAddresses", &format!("{}-pip", g.name))});
            out.push(json!({
                "id": id("publicIPAddresses", &format!("{}-pip", g.name)),
                "name": format!("{}-pip", g.name),
                "type": "Microsoft.Network/publicIPAddresses",
                "ipAddress": ip.to_string(),
                "ipConfiguration": {"id": format!("{}/ipConfigurations/default", id("virtualNetworkGateways", &g.name))},
            }));
        }
        out.push(o);
    }
    // A site is a local network gateway (VPN) and/or an ExpressRoute
    // circuit, with one connection per gateway.
    for s in &t.sites {
        let er = |c: &Connection| t.gateway(c.gateway).kind == GatewayKind::ExpressRoute;
        if s.connections.iter().any(|c| !er(c)) || s.connections.is_empty() {
            out.push(json!({
                "id": id("localNetworkGateways", &s.name),
                "name": s.name,
                "type": "Microsoft.Network/localNetworkGateways",
                "localNetworkAddressSpace": {"addressPrefixes": strs(&s.prefixes)},
                "gatewayIpAddress": s.cpe.map(|c| c.to_string()),
                "bgpSettings": s.asn.map(|a| json!({"asn": a})),
            }));
        }
        if s.connections.iter().any(er) {
            out.push(json!({
                "id": id("expressRouteCircuits", &s.name),
                "name": s.name,
                "type": "Microsoft.Network/expressRouteCircuits",
            }));
        }
        for c in &s.connections {
            let g = t.gateway(c.gateway);
            let mut o = json!({
                "id": id("connections", &format!("{}-{}", s.name, g.name)),
                "name": format!("{}-{}", s.name, g.name),
                "type": "Microsoft.Network/connections",
                "connectionType": if er(c) { "ExpressRoute" } else { "IPsec" },
                "virtualNetworkGateway1": {"id": id("virtualNetworkGateways", &g.name)},
                "enableBgp": c.bgp,
                "routingWeight": c.weight,
            });
            if er(c) {
                o["peer"] = json!({"id": id("expressRouteCircuits", &s.name)});
            } else {
                o["localNetworkGateway2"] = json!({"id": id("localNetworkGateways", &s.name)});
            }
            out.push(o);
        }
    }
    for c in &t.vnet_connections {
        let [a, b] = c.gateways.map(|g| t.gateway(g).name.clone());
        out.push(json!({
            "id": id("connections", &c.name),
            "name": c.name,
            "type": "Microsoft.Network/connections",
            "connectionType": "Vnet2Vnet",
            "virtualNetworkGateway1": {"id": id("virtualNetworkGateways", &a)},
            "virtualNetworkGateway2": {"id": id("virtualNetworkGateways", &b)},
            "enableBgp": c.bgp,
        }));
    }
    for rs in &t.route_servers {
        out.push(json!({
            "id": id("virtualHubs", &rs.name),
            "name": rs.name,
            "type": "Microsoft.Network/virtualHubs",
            "virtualRouterAsn": rs.asn,
            "virtualRouterIps": strs(&rs.ips),
            "allowBranchToBranchTraffic": rs.branch_to_branch,
            "hubRoutingPreference": match rs.routing_preference {
                RoutingPreference::ExpressRoute => "ExpressRoute",
                RoutingPreference::VpnNva => "VpnGateway",
                RoutingPreference::AsPath => "ASPath",
            },
        }));
    }
    for n in &t.nvas {
        for s in &n.bgp {
            let Speaker::RouteServer(r) = s.peer else {
                continue;
            };
            let rs = &t.route_servers[r.idx()];
            let ip = n.nics.first().and_then(|&x| t.nic(x).ips.first().copied());
            out.push(json!({
                "id": format!("{}/bgpConnections/{}", id("virtualHubs", &rs.name), n.name),
                "name": n.name,
                "type": "Microsoft.Network/virtualHubs/bgpConnections",
                "peerIp": ip.map(|i| i.to_string()),
                "peerAsn": n.asn,
            }));
        }
    }
    for l in &t.load_balancers {
        let rules: Vec<Value> = l
            .rules
            .iter()
            .enumerate()
            .map(|(k, r)| {
                json!({
                    "name": format!("rule{}", k + 1),
                    "protocol": match r.protocol { None => "All", Some(6) => "Tcp", Some(_) => "Udp" },
                    "frontendPort": r.port,
                    "backendPort": r.port,
                    "enableFloatingIP": r.floating_ip,
                })
            })
            .collect();
        out.push(json!({
            "id": id("loadBalancers", &l.name),
            "name": l.name,
            "type": "Microsoft.Network/loadBalancers",
            "frontendIPConfigurations": [{"name": "frontend", "privateIPAddress": l.frontend_ip.to_string(), "subnet": {"id": subnet_id(t, l.subnet)}}],
            "backendAddressPools": [{"id": format!("{}/backendAddressPools/pool", id("loadBalancers", &l.name)), "name": "pool"}],
            "loadBalancingRules": rules,
        }));
    }
    Value::Array(out)
}
