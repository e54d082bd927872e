//! Expected values come from SPEC.md (T2, T3, T16) and SCENARIOS.md (1, 14).

use super::util::*;

/// The reserved `None` routes of a VNet outside 172.16.0.0/12: published
/// dumps show no 172.16/12 row there (SPEC R3 revised).
const NONE3: [&str; 3] = ["10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16"];

#[test]
fn t2a_range_inside_reserved_prefix_matches_the_rest_example() {
    // SPEC T2(a) / S18: the REST example for a VNet of 172.20.2.0/24, value for value.
    let t = builtin("spec-t2a-reserved-inside");
    let tab = table(&t, "nic1");
    let ours: serde_json::Value =
        serde_json::to_value(vnetplane::io::azure::effective_routes(&tab)).unwrap();
    let example: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/NetworkInterfaceEffectiveRouteTableList.2023-09-01.json"
    ))
    .unwrap();
    assert_eq!(ours, example["responses"]["200"]["body"]);
    // 172.20.3.9 -> drop (172.16/12 None); 172.20.2.9 -> local.
    assert_eq!(
        next_hop(&t, "nic1", "172.20.3.9"),
        hop("Default", "172.16.0.0/12", "None", &[])
    );
    assert_eq!(
        next_hop(&t, "nic1", "172.20.2.9"),
        hop("Default", "172.20.2.0/24", "VnetLocal", &[])
    );
}

#[test]
fn t2b_range_equal_to_reserved_prefix_becomes_virtual_network() {
    let t = builtin("spec-t2b-reserved-equal");
    assert_eq!(
        rows(&t, "nic1"),
        expect(&[
            ("Default", "Active", "10.0.0.0/8", "VnetLocal", &[]),
            ("Default", "Active", "0.0.0.0/0", "Internet", &[]),
            ("Default", "Active", "100.64.0.0/10", "None", &[]),
            ("Default", "Active", "192.168.0.0/16", "None", &[]),
        ])
    );
    assert_eq!(
        next_hop(&t, "nic1", "10.200.0.1"),
        hop("Default", "10.0.0.0/8", "VnetLocal", &[])
    );
}

#[test]
fn t2c_range_containing_reserved_prefix_removes_it() {
    let t = builtin("spec-t2c-reserved-contains");
    assert_eq!(
        rows(&t, "nic1"),
        expect(&[
            ("Default", "Active", "192.0.0.0/3", "VnetLocal", &[]),
            ("Default", "Active", "0.0.0.0/0", "Internet", &[]),
            ("Default", "Active", "10.0.0.0/8", "None", &[]),
            ("Default", "Active", "100.64.0.0/10", "None", &[]),
        ])
    );
    assert_eq!(
        next_hop(&t, "nic1", "192.168.1.1"),
        hop("Default", "192.0.0.0/3", "VnetLocal", &[])
    );
}

#[test]
fn t3_transit_propagation_and_non_transitivity() {
    let t = builtin("spec-t3-hub-spoke-er");
    let er = ["10.0.0.4", "10.0.0.5"];
    let mut s1a = vec![
        ("Default", "Active", "10.1.0.0/16", "VnetLocal", &[][..]),
        ("Default", "Active", "10.0.0.0/16", "VNetPeering", &[][..]),
        (
            "VirtualNetworkGateway",
            "Active",
            "192.168.0.0/16",
            "VirtualNetworkGateway",
            &er[..],
        ),
        ("Default", "Active", "0.0.0.0/0", "Internet", &[][..]),
        ("Default", "Invalid", "192.168.0.0/16", "None", &[][..]),
    ];
    for p in &NONE3[..2] {
        s1a.push(("Default", "Active", p, "None", &[][..]));
    }
    assert_eq!(rows(&t, "s1a-vm"), expect(&s1a));
    // subnet2: propagation off, so no 192.168/16 VNG and the None route is Active.
    let mut s1b = vec![
        ("Default", "Active", "10.1.0.0/16", "VnetLocal", &[][..]),
        ("Default", "Active", "10.0.0.0/16", "VNetPeering", &[][..]),
        ("Default", "Active", "0.0.0.0/0", "Internet", &[][..]),
    ];
    for p in &NONE3 {
        s1b.push(("Default", "Active", p, "None", &[][..]));
    }
    assert_eq!(rows(&t, "s1b-vm"), expect(&s1b));
    // spoke2: peered without transit: no gateway routes, no spoke1 routes.
    let mut s2 = vec![
        ("Default", "Active", "10.2.0.0/16", "VnetLocal", &[][..]),
        ("Default", "Active", "10.0.0.0/16", "VNetPeering", &[][..]),
        ("Default", "Active", "0.0.0.0/0", "Internet", &[][..]),
    ];
    for p in &NONE3 {
        s2.push(("Default", "Active", p, "None", &[][..]));
    }
    assert_eq!(rows(&t, "s2-vm"), expect(&s2));

    assert_eq!(
        next_hop(&t, "s1a-vm", "192.168.10.1"),
        hop(
            "VirtualNetworkGateway",
            "192.168.0.0/16",
            "VirtualNetworkGateway",
            &er
        )
    );
    assert_eq!(
        next_hop(&t, "s1b-vm", "192.168.10.1"),
        hop("Default", "192.168.0.0/16", "None", &[])
    );
    // Spoke1 -> spoke2 is dropped: peering is not transitive.
    assert_eq!(
        next_hop(&t, "s1a-vm", "10.2.1.4"),
        hop("Default", "10.0.0.0/8", "None", &[])
    );
}

#[test]
fn t16_udr_default_to_nva_without_forwarding() {
    let t = builtin("spec-t16-ip-forwarding");
    // R3: the user 0/0 removes the reserved None routes; R15: User beats Default.
    assert_eq!(
        rows(&t, "app-vm"),
        expect(&[
            ("Default", "Active", "10.0.0.0/16", "VnetLocal", &[]),
            ("Default", "Invalid", "0.0.0.0/0", "Internet", &[]),
            (
                "User",
                "Active",
                "0.0.0.0/0",
                "VirtualAppliance",
                &["10.0.1.4"]
            ),
        ])
    );
    assert_eq!(
        next_hop(&t, "app-vm", "8.8.8.8"),
        hop("User", "0.0.0.0/0", "VirtualAppliance", &["10.0.1.4"])
    );
    // The NVA's own subnet has no route table: plain system routes.
    assert_eq!(
        next_hop(&t, "nva1", "8.8.8.8"),
        hop("Default", "0.0.0.0/0", "Internet", &[])
    );
    // Loading says the appliance will drop forwarded packets (R44).
    assert!(
        t.warnings
            .iter()
            .any(|w| w.message.contains("IP forwarding disabled") && w.message.contains("R44")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn scenario1_hub_spoke_vng_spoke11_vm() {
    let t = builtin("hub-spoke-vng");
    let gw = ["10.1.0.4", "10.1.0.5"];
    assert_eq!(
        rows(&t, "spoke11-vm"),
        expect(&[
            ("Default", "Active", "10.11.0.0/16", "VnetLocal", &[]),
            ("Default", "Active", "10.1.0.0/16", "VNetPeering", &[]),
            (
                "VirtualNetworkGateway",
                "Active",
                "192.168.0.0/16",
                "VirtualNetworkGateway",
                &gw
            ),
            ("Default", "Invalid", "192.168.0.0/16", "None", &[]),
            ("Default", "Active", "0.0.0.0/0", "Internet", &[]),
            ("Default", "Active", "10.0.0.0/8", "None", &[]),
            ("Default", "Active", "100.64.0.0/10", "None", &[]),
        ])
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "192.168.1.10"),
        hop(
            "VirtualNetworkGateway",
            "192.168.0.0/16",
            "VirtualNetworkGateway",
            &gw
        )
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "198.51.100.10"),
        hop("Default", "0.0.0.0/0", "Internet", &[])
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.1.3.4"),
        hop("Default", "10.1.0.0/16", "VNetPeering", &[])
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.50.0.1"),
        hop("Default", "10.0.0.0/8", "None", &[])
    );
    // The hub VM and the GatewaySubnet hold the same gateway route (R8).
    assert_eq!(
        next_hop(&t, "hub1-vm", "192.168.1.10"),
        hop(
            "VirtualNetworkGateway",
            "192.168.0.0/16",
            "VirtualNetworkGateway",
            &gw
        )
    );
}

#[test]
fn scenario14_spoke_to_spoke_udr_both_variants() {
    let t = builtin("spoke-to-spoke-udr");
    let nva = ["10.1.2.4"];
    assert_eq!(
        rows(&t, "spoke11-vm"),
        expect(&[
            ("Default", "Active", "10.11.0.0/16", "VnetLocal", &[]),
            ("Default", "Active", "10.1.0.0/16", "VNetPeering", &[]),
            ("Default", "Active", "0.0.0.0/0", "Internet", &[]),
            ("Default", "Invalid", "10.0.0.0/8", "None", &[]),
            ("User", "Active", "10.0.0.0/8", "VirtualAppliance", &nva),
            ("Default", "Active", "100.64.0.0/10", "None", &[]),
            ("Default", "Active", "192.168.0.0/16", "None", &[]),
        ])
    );
    // spoke11-vm -> spoke12-vm: to nva1 by the UDR, then nva1's NIC reaches
    // spoke12 over the hub's peering.
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.12.1.4"),
        hop("User", "10.0.0.0/8", "VirtualAppliance", &nva)
    );
    assert_eq!(
        next_hop(&t, "nva1", "10.12.1.4"),
        hop("Default", "10.12.0.0/16", "VNetPeering", &[])
    );
    // The hub itself is still reached directly (more specific peering route).
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.1.3.4"),
        hop("Default", "10.1.0.0/16", "VNetPeering", &[])
    );
    // Reverse direction symmetric.
    assert_eq!(
        next_hop(&t, "spoke12-vm", "10.11.1.4"),
        hop("User", "10.0.0.0/8", "VirtualAppliance", &nva)
    );

    // Variant without the UDR: not transitive, dropped at spoke11-vm.
    let v = builtin("spoke-to-spoke-no-udr");
    assert_eq!(
        next_hop(&v, "spoke11-vm", "10.12.1.4"),
        hop("Default", "10.0.0.0/8", "None", &[])
    );
    assert!(!rows(&v, "spoke11-vm").iter().any(|r| r.2 == "10.12.0.0/16"));
}

#[test]
fn scenario18_ipv6_default_through_nva_and_ipv4_as_scenario1() {
    let t = builtin("dualstack-ipv6");
    assert_eq!(
        next_hop(&t, "spoke11-vm", "2001:db8::10"),
        hop("User", "::/0", "VirtualAppliance", &["fd00:1:0:2::4"])
    );
    assert_eq!(
        next_hop(&t, "nva1", "2001:db8::10"),
        hop("User", "::/0", "Internet", &[])
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "fd00:1:0:3::4"),
        hop("Default", "fd00:1::/48", "VNetPeering", &[])
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "192.168.1.10"),
        hop(
            "VirtualNetworkGateway",
            "192.168.0.0/16",
            "VirtualNetworkGateway",
            &["10.1.0.4", "10.1.0.5"]
        )
    );
    // An IPv6 UDR does not remove the IPv4 reserved routes (R3 is about 0.0.0.0/0).
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.50.0.1"),
        hop("Default", "10.0.0.0/8", "None", &[])
    );
}

#[test]
fn multi_nic_vm_routes_per_nic() {
    // SPEC T18 / R45: each NIC has the routes of its own subnet.
    let t = load(
        r#"
[[vnet]]
name = "v"
region = "westeurope"
address_space = ["10.1.0.0/16"]
  [[vnet.subnet]]
  name = "External"
  prefix = "10.1.0.0/24"
  route_table = "rt-ext"
  [[vnet.subnet]]
  name = "Internal"
  prefix = "10.1.1.0/24"
[[nic]]
name = "csr-out"
vm = "csr"
vnet = "v"
subnet = "External"
ips = ["10.1.0.4"]
ip_forwarding = true
[[nic]]
name = "csr-in"
vm = "csr"
vnet = "v"
subnet = "Internal"
ips = ["10.1.1.4"]
ip_forwarding = true
[[route_table]]
name = "rt-ext"
  [[route_table.route]]
  name = "peer"
  prefix = "203.0.113.9/32"
  next_hop_type = "Internet"
  [[route_table.route]]
  name = "lab"
  prefix = "10.99.0.0/16"
  next_hop_type = "None"
"#,
    );
    assert_eq!(
        next_hop(&t, "csr-out", "10.99.1.1"),
        hop("User", "10.99.0.0/16", "None", &[])
    );
    assert_eq!(
        next_hop(&t, "csr-in", "10.99.1.1"),
        hop("Default", "10.0.0.0/8", "None", &[])
    );
    assert_eq!(
        next_hop(&t, "csr-out", "203.0.113.9"),
        hop("User", "203.0.113.9/32", "Internet", &[])
    );
    assert_eq!(
        next_hop(&t, "csr-in", "203.0.113.9"),
        hop("Default", "0.0.0.0/0", "Internet", &[])
    );
}

#[test]
fn ranges_cover_and_contain_what_ipnet_contains() {
    use ipnet::{IpNet, Ipv4Net, Ipv6Net};
    use vnetplane::control::effective::Ranges;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Addresses from a small pool of bits so that ranges and prefixes meet.
    let v4 = |x: u64, len: u64| {
        let a = 0x0a00_0000 | ((x as u32) & 0x00ff_ff00);
        IpNet::V4(Ipv4Net::new(a.into(), (8 + len % 25) as u8).unwrap())
    };
    let v6 = |x: u64, len: u64| {
        let a = (0xfd00u128 << 112) | (u128::from(x as u16) << 64);
        IpNet::V6(Ipv6Net::new(a.into(), (16 + len % 113) as u8).unwrap())
    };
    let mut hits = 0;
    for _ in 0..2000 {
        let ranges: Vec<IpNet> = (0..rnd() % 5)
            .map(|_| {
                let (x, l) = (rnd(), rnd());
                if rnd() % 4 == 0 { v6(x, l) } else { v4(x, l) }
            })
            .collect();
        let r = Ranges::new(ranges.iter().copied());
        for _ in 0..20 {
            let (x, l) = (rnd(), rnd());
            let p = if rnd() % 4 == 0 { v6(x, l) } else { v4(x, l) };
            let want = ranges.iter().any(|n| n.contains(&p));
            assert_eq!(r.covers(&p), want, "{p} in {ranges:?}");
            hits += usize::from(want);
            // An address: a random one inside the prefix.
            let a = match p {
                IpNet::V4(n) => {
                    let host = (rnd() as u32) & !u32::from(n.netmask());
                    std::net::IpAddr::V4((u32::from(n.network()) | host).into())
                }
                IpNet::V6(n) => {
                    let host = u128::from(rnd()) & !u128::from(n.netmask());
                    std::net::IpAddr::V6((u128::from(n.network()) | host).into())
                }
            };
            let want = ranges.iter().any(|n| n.contains(&a));
            assert_eq!(r.contains_addr(a), want, "{a} in {ranges:?}");
        }
    }
    assert!(
        hits > 1000,
        "{hits}: too few covered prefixes to test anything"
    );
}

/// Subnets sharing their inputs (VNet, route table, no service endpoints)
/// share one table computation and one compiled table: on every topology,
/// under a few events, the tables equal those computed subnet by subnet,
/// and the compiled set equals the one compiled without twins.
#[test]
fn twin_subnets_share_their_table_and_its_compilation() {
    use vnetplane::control::events::Event;
    use vnetplane::fib::FibSet;
    let mut shared = 0;
    for f in topology_files() {
        let t = vnetplane::topology::load_file(&f).unwrap();
        let mut evs = vec![Vec::new()];
        if let Some(rt) = t.route_tables.first() {
            evs.push(vec![Event::UdrAdd {
                table: rt.name.clone(),
                route: "twin-test".into(),
                prefix: "100.127.1.0/24".parse().unwrap(),
                next_hop: vnetplane::topology::UdrNextHop::None,
            }]);
        }
        for ev in evs {
            let cp = vnetplane::control::converge(&t, &ev).unwrap();
            let twins = cp.subnet_twins();
            let tables = cp.subnet_tables();
            for (i, table) in tables.iter().enumerate() {
                let alone = cp.subnet_table(vnetplane::topology::SubnetId(i as u32));
                assert_eq!(table, &alone, "{} subnet {i}", f.display());
                assert!(twins[i] <= i);
                shared += usize::from(twins[i] < i);
            }
            let identity: Vec<usize> = (0..tables.len()).collect();
            let (a, _) = FibSet::compile_tables(&tables, &twins, None);
            let (b, _) = FibSet::compile_tables(&tables, &identity, None);
            assert_eq!(a.distinct, b.distinct, "{}", f.display());
            for (x, y) in a.by_subnet.iter().zip(&b.by_subnet) {
                assert_eq!(x.routes(), y.routes(), "{}", f.display());
            }
        }
    }
    assert!(shared > 10, "{shared} twin subnets");
}

/// Compiling from the injected layers a hub and its spokes share
/// (`FibSet::compile_reusing`, `layered_nic_routes`) gives every subnet the
/// routes its full table gives (`nic_routes(subnet_table)`), also where
/// the injected routes meet the subnet's own: advertisements equal to,
/// inside and around VNet ranges (R16, R25), equal to UDRs and reserved
/// prefixes (R15, R3), a BGP 0/0 (R3, R5), beside the scenarios' own
/// ExpressRoute, VPN and Route Server routes of the same prefixes (R31, R39).
#[test]
fn layered_compilation_gives_each_subnet_its_full_tables_routes() {
    use ipnet::IpNet;
    use vnetplane::control::effective::{InjectedLayer, subnet_sources};
    use vnetplane::control::events::Event;
    use vnetplane::fib::{FibSet, layered_nic_routes, nic_routes};
    use vnetplane::topology::SubnetId;
    let mut rng = vnetplane::rng::Rng(11);
    let (mut cases, mut layered, mut met) = (0, 0, 0);
    for f in topology_files() {
        let base = vnetplane::topology::load_file(&f).unwrap();
        let t = &base;
        // Prefixes that meet a subnet's own routes, and some that do not.
        let mut pool: Vec<IpNet> = vec!["0.0.0.0/0".parse().unwrap()];
        for v in &t.vnets {
            for &p in &v.address_space {
                pool.push(p);
                if let IpNet::V4(n) = p {
                    pool.push(IpNet::V4(n.supernet().unwrap_or(n)));
                    pool.extend(
                        n.subnets(n.prefix_len().max(28))
                            .unwrap()
                            .take(2)
                            .map(IpNet::V4),
                    );
                }
            }
        }
        for rt in &t.route_tables {
            pool.extend(rt.routes.iter().map(|u| u.prefix));
        }
        pool.extend(NONE3.iter().map(|p| p.parse::<IpNet>().unwrap()));
        for s in &t.sites {
            pool.extend(s.prefixes.iter().copied());
        }
        for i in 0..8u32 {
            pool.push(format!("100.{}.{}.0/24", 100 + i, i).parse().unwrap());
        }
        let speakers: Vec<String> = t
            .nvas
            .iter()
            .filter(|n| !n.bgp.is_empty())
            .map(|n| n.name.clone())
            .collect();
        let mut variants: Vec<Vec<Event>> = vec![Vec::new()];
        for round in 0..4 {
            let mut evs = Vec::new();
            for sp in &speakers {
                for _ in 0..(4 + round * 3) {
                    let prefix = pool[rng.next_u32() as usize % pool.len()];
                    evs.push(Event::Advertise {
                        speaker: sp.clone(),
                        prefix,
                    });
                }
            }
            if let Some(rt) = t.route_tables.first() {
                evs.push(Event::UdrAdd {
                    table: rt.name.clone(),
                    route: "layer-test".into(),
                    prefix: pool[rng.next_u32() as usize % pool.len()],
                    next_hop: vnetplane::topology::UdrNextHop::None,
                });
            }
            variants.push(evs);
        }
        // R3's and R5's options on as well: which reserved routes stay
        // depends on the injected routes then.
        // (each alone: R5 hides what R3 would remove).
        let mut hiding = base.clone();
        hiding.options.hide_reserved_none_with_gateway_routes = true;
        let mut removing = base.clone();
        removing.options.bgp_default_removes_reserved = true;
        let runs = variants
            .iter()
            .flat_map(|evs| [(&base, evs), (&hiding, evs), (&removing, evs)]);
        for (topo, evs) in runs {
            let Ok(cp) = vnetplane::control::converge(topo, evs) else {
                continue;
            };
            cases += 1;
            // The topology after the events (UDRs added).
            let t = &cp.topology;
            let (set, _) = FibSet::compile_reusing(&cp, None);
            for (i, fib) in set.by_subnet.iter().enumerate() {
                let s = SubnetId(i as u32);
                let table = cp.subnet_table(s);
                let want = nic_routes(&table);
                assert_eq!(
                    fib.routes(),
                    want.as_slice(),
                    "{} subnet {i} after {evs:?}",
                    f.display()
                );
                let sources: Vec<_> = subnet_sources(t, s).into_iter().map(|x| x.0).collect();
                let layer = InjectedLayer::new(t, &cp.injections, &sources);
                if !sources.is_empty() && !layer.is_empty() {
                    layered += 1;
                    assert_eq!(
                        layered_nic_routes(t, &layer, s),
                        want,
                        "{} subnet {i}",
                        f.display()
                    );
                    let (own, held) = vnetplane::control::effective::split_table(t, &layer, s);
                    met += usize::from(!held.is_empty());
                    // Held prefixes are the layer's, ascending, and their
                    // routes are in the split table.
                    assert!(held.windows(2).all(|w| w[0] < w[1]));
                    for &g in &held {
                        let (p, _) = layer.winner(g as usize);
                        assert!(own.routes.iter().any(|r| r.prefix == p) || table.routes.iter().all(|r| r.prefix != p || r.state == vnetplane::control::effective::State::Invalid || r.source != vnetplane::control::effective::Source::VirtualNetworkGateway));
                    }
                }
            }
        }
    }
    assert!(cases > 240, "{cases} cases");
    assert!(layered > 300, "{layered} layered subnets");
    assert!(met > 30, "{met} subnets whose own routes met injected ones");
}
