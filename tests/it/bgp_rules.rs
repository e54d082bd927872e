//! One test (at least) per Azure BGP rule of SPEC R21–R41, and the events.

use super::util::*;
use vnetplane::dataplane::{Header, PROTO_TCP, Packet, Start, Verdict, World};
use vnetplane::topology::SiteId;

const S2: &str = include_str!("../../topologies/nva-default-loop.toml");
const S4: &str = include_str!("../../topologies/onprem-bypasses-nva.toml");
const S11: &str = include_str!("../../topologies/dual-homed-active-active.toml");

#[test]
fn r21_peering_with_one_instance_is_flagged() {
    let t = load(&S2.replace(
        "  peer = \"rs-hub1\"\n",
        "  peer = \"rs-hub1\"\n  peer_ips = [\"10.1.1.4\"]\n",
    ));
    let cp = converge(&t, &[]);
    assert!(
        cp.warnings
            .iter()
            .any(|w| w.contains("only one instance") && w.contains("R21")),
        "{:?}",
        cp.warnings
    );
    assert!(t.warnings.iter().any(|w| w.message.contains("R21")));
}

/// R21 revised: a published lab peered AS 65555 with a Route Server; the
/// session came up and the NVA's routes were programmed. A 32-bit ASN is
/// accepted (with a warning naming the documented limit).
#[test]
fn r21_a_32_bit_asn_peers_with_route_server() {
    let t = load(&S2.replace("asn = 65001", "asn = 65555"));
    assert!(
        t.warnings
            .iter()
            .any(|w| w.message.contains("65555") && w.message.contains("R21")),
        "{:?}",
        t.warnings
    );
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &[])
            .iter()
            .find(|r| r.1 == "0.0.0.0/0")
            .map(|r| r.2.clone()),
        Some(s(&["10.1.2.4"]))
    );
    let t = load(&S2.replace("asn = 65001", "asn = 4200000001"));
    assert!(t.warnings.iter().any(|w| w.message.contains("4200000001")));
}

#[test]
fn r22_next_hop_can_be_a_load_balancer() {
    // example.toml: nva1 advertises 0/0 with next hop 10.1.2.10 (an ILB frontend).
    let t = builtin("example");
    assert_eq!(
        vng_rows(&t, "hub1-vm", &[])
            .iter()
            .find(|r| r.1 == "0.0.0.0/0")
            .map(|r| r.2.clone()),
        Some(s(&["10.1.2.10"]))
    );
}

#[test]
fn r23_r24_source_type_and_reach_of_route_server_routes() {
    // Source and next-hop type VirtualNetworkGateway, next hop the NVA (R23);
    // in every subnet of the VNet and of use-remote spokes (R24) ...
    let t = builtin("nva-default-loop");
    for nic in ["hub1-vm", "nva1", "spoke11-vm"] {
        let r = rows(&t, nic);
        assert!(r.contains(&(
            "VirtualNetworkGateway".into(),
            "Active".into(),
            "0.0.0.0/0".into(),
            "VirtualNetworkGateway".into(),
            s(&["10.1.2.4"])
        )));
    }
    // ... but not in a spoke peered without use-remote (R35), whose range is not sent to the NVA either.
    let src = S2.replace("use_remote_gateways = true\n", "");
    let t = load(&src);
    assert!(vng_rows(&t, "spoke11-vm", &[]).is_empty());
    let cp = converge(&t, &[]);
    assert_eq!(
        advertised(&cp, "rs-hub1", "nva1")
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        s(&["10.1.0.0/16"])
    );
}

#[test]
fn r25_vnet_ranges_learned_from_nvas_are_not_programmed() {
    // nva1 advertises a /24 inside hub1 and a supernet of it.
    let src = S2.replace(
        "originate = [\"0.0.0.0/0\"]",
        "originate = [\"10.1.3.0/24\", \"10.11.0.0/16\", \"10.0.0.0/8\"]",
    );
    let t = load(&src);
    let cp = converge(&t, &[]);
    // The Route Server accepts them ...
    assert_eq!(received(&cp, "rs-hub1", "nva1")["10.1.3.0/24"].1, "best");
    // ... but programs neither the /24 in hub1 nor the spoke range; the supernet goes everywhere.
    for nic in ["hub1-vm", "spoke11-vm"] {
        assert_eq!(
            vng_rows(&t, nic, &[]),
            vec![vng("Active", "10.0.0.0/8", &["10.1.2.4"])],
            "{nic}"
        );
    }
}

#[test]
fn r28_shorter_path_wins_equal_paths_share() {
    let t = load(&S11.replacen(
        "  originate = [\"0.0.0.0/0\"]\n",
        "  originate = [\"0.0.0.0/0\"]\n  prepend = 1\n",
        1,
    ));
    // nva1 now prepends: nva2's shorter path wins alone.
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &[]),
        vec![vng("Active", "0.0.0.0/0", &["10.2.2.4"])]
    );
}

#[test]
fn r29_no_advertise_routes_are_programmed_but_not_passed_on() {
    let src = S11.replacen(
        "  originate = [\"0.0.0.0/0\"]\n",
        "  originate = [\"0.0.0.0/0\", \"10.60.0.0/16\"]\n  no_advertise = true\n",
        1,
    );
    let t = load(&src);
    assert!(vng_rows(&t, "spoke11-vm", &[]).contains(&vng(
        "Active",
        "10.60.0.0/16",
        &["10.1.2.4"]
    )));
    let cp = converge(&t, &[]);
    assert!(!advertised(&cp, "rs-spoke11", "nva2").contains_key("10.60.0.0/16"));
    // Without the community, nva2 hears about it (65515 65001).
    let cp = converge(&load(&src.replace("  no_advertise = true\n", "")), &[]);
    assert_eq!(
        advertised(&cp, "rs-spoke11", "nva2")["10.60.0.0/16"],
        vec![65515, 65001]
    );
}

#[test]
fn r30_branch_to_branch_needs_the_flag_and_an_active_active_vpn_gateway() {
    let on = S4.replace("branch_to_branch = false", "branch_to_branch = true");
    let cp = converge(&load(&on), &[]);
    assert_eq!(
        received(&cp, "nva1", "rs-hub1")["192.168.0.0/16"].0,
        vec![65515]
    );
    // The static local network gateway prefix reaches the NVA with 65515 only.
    let passive = on.replace(
        "active_active = true\nips = [\"10.1.0.4\", \"10.1.0.5\"]",
        "ips = [\"10.1.0.4\"]",
    );
    let cp = converge(&load(&passive), &[]);
    assert!(!received(&cp, "nva1", "rs-hub1").contains_key("192.168.0.0/16"));
    assert!(
        cp.warnings.iter().any(|w| w.contains("R30")),
        "{:?}",
        cp.warnings
    );
}

const ER_AND_NVA: &str = r#"
[[vnet]]
name = "hub1"
region = "westeurope"
address_space = ["10.1.0.0/16"]
  [[vnet.subnet]]
  name = "GatewaySubnet"
  prefix = "10.1.0.0/27"
  [[vnet.subnet]]
  name = "RouteServerSubnet"
  prefix = "10.1.1.0/27"
  [[vnet.subnet]]
  name = "nva"
  prefix = "10.1.2.0/24"
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.1.3.0/24"
[[nic]]
name = "nva1"
vnet = "hub1"
subnet = "nva"
ips = ["10.1.2.4"]
ip_forwarding = true
[[nic]]
name = "hub1-vm"
vnet = "hub1"
subnet = "vm"
ips = ["10.1.3.4"]
[[gateway]]
name = "gw-hub1"
vnet = "hub1"
kind = "expressroute"
ips = ["10.1.0.4", "10.1.0.5"]
[[route_server]]
name = "rs-hub1"
vnet = "hub1"
ips = ["10.1.1.4", "10.1.1.5"]
PREF
[[nva]]
name = "nva1"
nics = ["nva1"]
asn = 65001
  [[nva.route]]
  prefix = "10.1.1.0/27"
  via = "10.1.2.1"
  [[nva.bgp]]
  peer = "rs-hub1"
  originate = ["192.168.0.0/16"]
[[site]]
name = "onprem"
asn = 65100
prefixes = ["192.168.0.0/16"]
  [[site.connection]]
  gateway = "gw-hub1"
"#;

#[test]
fn r31_routing_preference_between_expressroute_and_nva() {
    let er = s(&["10.1.0.4", "10.1.0.5"]);
    // Default ExpressRoute: the ER route is the one used, the NVA's is Invalid.
    let t = load(&ER_AND_NVA.replace("PREF", ""));
    let v = vng_rows(&t, "hub1-vm", &[]);
    assert!(
        v.contains(&("Active".into(), "192.168.0.0/16".into(), er.clone())),
        "{v:?}"
    );
    assert!(
        v.contains(&vng("Invalid", "192.168.0.0/16", &["10.1.2.4"])),
        "{v:?}"
    );
    // VPN/NVA preference: the NVA's route wins.
    let t = load(&ER_AND_NVA.replace("PREF", "routing_preference = \"VpnNva\""));
    assert_eq!(
        next_hop(&t, "hub1-vm", "192.168.1.1").unwrap().3,
        s(&["10.1.2.4"])
    );
    // AS-Path: the NVA's path (65001) is shorter than ExpressRoute's (12076 65100).
    let t = load(&ER_AND_NVA.replace("PREF", "routing_preference = \"AsPath\""));
    assert_eq!(
        next_hop(&t, "hub1-vm", "192.168.1.1").unwrap().3,
        s(&["10.1.2.4"])
    );
    // ... unless the NVA prepends past it.
    let t = load(
        &ER_AND_NVA
            .replace("PREF", "routing_preference = \"AsPath\"")
            .replace(
                "originate = [\"192.168.0.0/16\"]",
                "originate = [\"192.168.0.0/16\"]\n  prepend = 2",
            ),
    );
    assert_eq!(next_hop(&t, "hub1-vm", "192.168.1.1").unwrap().3, er);
}

#[test]
fn r32_route_limit_tears_the_session_down_and_ipv6_is_refused() {
    let src = format!(
        "{}\n[options]\nroute_server_max_routes_per_peer = 2\n",
        S2.replace(
            "originate = [\"0.0.0.0/0\"]",
            "originate = [\"0.0.0.0/0\", \"10.60.0.0/16\", \"10.61.0.0/16\"]"
        )
    );
    let t = load(&src);
    let cp = converge(&t, &[]);
    let got = received(&cp, "rs-hub1", "nva1");
    assert!(
        got.values()
            .all(|r| r.1 == "rejected" && r.2.contains("limit exceeded")),
        "{got:?}"
    );
    assert!(vng_rows(&t, "spoke11-vm", &[]).is_empty());
    assert!(
        cp.warnings.iter().any(|w| w.contains("torn down")),
        "{:?}",
        cp.warnings
    );
    // At the limit exactly, all is well.
    let t = load(&format!(
        "{}\n[options]\nroute_server_max_routes_per_peer = 3\n",
        S2.replace(
            "originate = [\"0.0.0.0/0\"]",
            "originate = [\"0.0.0.0/0\", \"10.60.0.0/16\", \"10.61.0.0/16\"]"
        )
    ));
    assert_eq!(vng_rows(&t, "spoke11-vm", &[]).len(), 3);
    // IPv6 is not supported by Route Server.
    let t = load(&S2.replace(
        "originate = [\"0.0.0.0/0\"]",
        "originate = [\"0.0.0.0/0\", \"fd00:99::/48\"]",
    ));
    let cp = converge(&t, &[]);
    assert!(
        received(&cp, "rs-hub1", "nva1")["fd00:99::/48"]
            .2
            .contains("IPv6")
    );
}

#[test]
fn r36_r37_what_a_vpn_gateway_sends_and_accepts() {
    // A BGP site advertising its range, a supernet, the hub's exact range and an
    // overlapping more specific prefix.
    let src = S4.replace("  [[site.connection]]\n  gateway = \"gw-hub1\"", "  [[site.connection]]\n  gateway = \"gw-hub1\"\n  bgp = true\n  advertise = [\"192.168.0.0/16\", \"10.0.0.0/8\", \"10.1.0.0/16\", \"10.11.0.0/16\"]");
    let t = load(&src);
    let cp = converge(&t, &[]);
    let got = received(&cp, "gw-hub1", "onprem");
    assert_eq!(got["192.168.0.0/16"].1, "best");
    assert_eq!(got["10.0.0.0/8"].1, "best", "supernets are accepted");
    for p in ["10.1.0.0/16", "10.11.0.0/16"] {
        assert_eq!(got[p].1, "rejected", "{p}");
        assert!(got[p].2.contains("R37"));
    }
    // R37 limit: past it the session drops.
    let t = load(&format!("{src}\n[options]\nvpn_gateway_max_prefixes = 1\n"));
    let cp = converge(&t, &[]);
    assert!(
        received(&cp, "gw-hub1", "onprem")
            .values()
            .all(|r| r.2.contains("limit exceeded"))
    );
    assert!(
        vng_rows(&t, "spoke11-vm", &[])
            .iter()
            .all(|r| r.1 != "192.168.0.0/16")
    );
}

#[test]
fn r38_expressroute_strips_private_asns_and_nva_prepends_do_not_survive() {
    let src = include_str!("../../topologies/dual-homed-expressroute.toml").replace(
        "  peer = \"rs-hub1\"\n  as_override = true\n",
        "  peer = \"rs-hub1\"\n  as_override = true\n  prepend = 3\n",
    );
    let cp = converge(&load(&src), &[]);
    // The spoke's range reaches on-premises as 12076 alone.
    assert_eq!(
        received(&cp, "onprem", "msee-onprem")["10.11.0.0/16"].0,
        vec![12076]
    );
    // Toward the gateways the edge keeps the path (and prepends 12076).
    assert_eq!(
        received(&cp, "gw-hub1", "msee-onprem")["192.168.0.0/16"].0,
        vec![12076, 65100]
    );
}

#[test]
fn r39_connection_weight_before_as_path() {
    // Two circuits (sites) advertise the same prefix to one ExpressRoute gateway.
    let src = r#"
[[vnet]]
name = "hub"
region = "westeurope"
address_space = ["10.0.0.0/16"]
  [[vnet.subnet]]
  name = "GatewaySubnet"
  prefix = "10.0.0.0/27"
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.0.1.0/24"
[[nic]]
name = "vm"
vnet = "hub"
subnet = "vm"
ips = ["10.0.1.4"]
[[gateway]]
name = "er"
vnet = "hub"
kind = "expressroute"
ips = ["10.0.0.4", "10.0.0.5"]
[[site]]
name = "dc1"
asn = 65100
prefixes = ["192.168.0.0/16"]
  [[site.connection]]
  gateway = "er"
  weight = W1
[[site]]
name = "dc2"
asn = 65200
prefixes = ["192.168.0.0/16"]
  [[site.connection]]
  gateway = "er"
  weight = W2
"#;
    let detail = |w1: &str, w2: &str| {
        let t = load(&src.replace("W1", w1).replace("W2", w2));
        let cp = converge(&t, &[]);
        cp.injections
            .by_vnet
            .values()
            .flatten()
            .find(|i| i.prefix.to_string() == "192.168.0.0/16")
            .unwrap()
            .detail
            .clone()
    };
    assert!(
        detail("0", "100").contains("msee-dc2"),
        "{}",
        detail("0", "100")
    );
    assert!(detail("100", "0").contains("msee-dc1"));
}

#[test]
fn events_change_routes_and_reconverge_purely() {
    let t = builtin("nva-default-loop");
    // A UDR added on the fly fixes the loop (scenario 3), removing it restores it.
    let src2 = S2.replace(
        "  name = \"nva\"\n  prefix = \"10.1.2.0/24\"",
        "  name = \"nva\"\n  prefix = \"10.1.2.0/24\"\n  route_table = \"rt-nva\"",
    ) + "\n[[route_table]]\nname = \"rt-nva\"\n";
    let t2 = load(&src2);
    assert_eq!(
        next_hop_after(
            &t2,
            "nva1",
            "198.51.100.10",
            &["udr-add rt-nva inet 0.0.0.0/0 Internet"]
        ),
        hop("User", "0.0.0.0/0", "Internet", &[])
    );
    assert_eq!(
        next_hop_after(
            &t2,
            "nva1",
            "198.51.100.10",
            &[
                "udr-add rt-nva inet 0.0.0.0/0 Internet",
                "udr-remove rt-nva inet"
            ]
        )
        .unwrap()
        .3,
        s(&["10.1.2.4"])
    );
    // Advertise and withdraw.
    assert!(
        vng_rows(&t, "spoke11-vm", &["advertise nva1 10.70.0.0/16"]).contains(&vng(
            "Active",
            "10.70.0.0/16",
            &["10.1.2.4"]
        ))
    );
    assert!(vng_rows(&t, "spoke11-vm", &["withdraw nva1 0.0.0.0/0"]).is_empty());
    assert_eq!(
        vng_rows(
            &t,
            "spoke11-vm",
            &["withdraw nva1 0.0.0.0/0", "advertise nva1 0.0.0.0/0"]
        )
        .len(),
        1
    );
    // A Route Server that is down programs nothing (R51).
    assert!(vng_rows(&t, "spoke11-vm", &["speaker-down rs-hub1"]).is_empty());
    // Bad events are clear errors.
    let e = vnetplane::control::converge(
        &t,
        &[vnetplane::control::events::Event::parse("speaker-down nva9").unwrap()],
    )
    .unwrap_err();
    assert!(e.to_string().contains("no BGP speaker named `nva9`"), "{e}");
}

#[test]
fn convergence_is_deterministic() {
    for (name, _) in vnetplane::topology::BUILTIN {
        let t = builtin(name);
        let a = converge(&t, &[]);
        let b = converge(&t, &[]);
        assert!(a.bgp.converged, "{name}");
        assert_eq!(
            format!("{:?}", a.bgp.received),
            format!("{:?}", b.bgp.received),
            "{name}"
        );
        assert_eq!(
            format!("{:?}", a.bgp.advertised),
            format!("{:?}", b.bgp.advertised),
            "{name}"
        );
        assert_eq!(a.injections, b.injections, "{name}");
        assert_eq!(a.warnings, b.warnings, "{name}");
    }
}

#[test]
fn r37_r41_default_route_from_on_premises_forces_tunnelling() {
    let src = S4.replace("  [[site.connection]]\n  gateway = \"gw-hub1\"", "  [[site.connection]]\n  gateway = \"gw-hub1\"\n  bgp = true\n  advertise = [\"0.0.0.0/0\", \"192.168.0.0/16\"]")
        .replace("originate = [\"0.0.0.0/0\"]", "originate = [\"10.80.0.0/16\"]");
    let t = load(&src);
    // Every NIC's 0/0 now points at the gateway; the Internet default row
    // is gone (R3 revised: published dumps of NICs with a BGP 0/0).
    for nic in ["hub1-vm", "spoke11-vm"] {
        assert_eq!(
            next_hop(&t, nic, "198.51.100.10").unwrap().3,
            s(&["10.1.0.4", "10.1.0.5"]),
            "{nic}"
        );
        assert!(
            !rows(&t, nic)
                .iter()
                .any(|r| r.0 == "Default" && r.2 == "0.0.0.0/0"),
            "{nic}"
        );
    }
}

#[test]
fn nva_prefix_filters_apply_on_import_and_export() {
    // nva1 refuses the spoke range from the Route Server and exports only 10.60/16.
    let src = S2
        .replace("originate = [\"0.0.0.0/0\"]", "originate = [\"0.0.0.0/0\", \"10.60.0.0/16\"]\n  import_deny = [\"10.11.0.0/16\"]\n  export_allow = [\"10.60.0.0/16\"]");
    let t = load(&src);
    let cp = converge(&t, &[]);
    let got = received(&cp, "nva1", "rs-hub1");
    assert_eq!(got["10.11.0.0/16"].1, "rejected");
    assert!(got["10.11.0.0/16"].2.contains("import prefix filter"));
    assert_eq!(got["10.1.0.0/16"].1, "best");
    assert_eq!(
        advertised(&cp, "nva1", "rs-hub1")
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        s(&["10.60.0.0/16"])
    );
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &[]),
        vec![vng("Active", "10.60.0.0/16", &["10.1.2.4"])]
    );
    // The OS table holds the accepted route, not the filtered one.
    let os = &cp.nva_tables[0];
    assert!(
        os.entries
            .iter()
            .any(|e| e.prefix.to_string() == "10.1.0.0/16")
    );
    assert!(
        !os.entries
            .iter()
            .any(|e| e.prefix.to_string() == "10.11.0.0/16")
    );
}

/// R30 (branch-to-branch), decided by the session a route arrived on
/// (Route Server's ExpressRoute/VPN interoperability docs; the Route Server
/// MicroHack's branch-to-branch scenario): a branch prefix the SD-WAN NVA
/// learned over its own tunnel is an NVA route, so it reaches the VPN
/// gateway and on-premises, and on-premises prefixes reach the NVA and the
/// branch; traffic crosses the NVA both ways. The ExpressRoute gateway's
/// routes (the branch's underlay /32) reach the VPN gateway too. With
/// branch-to-branch off, none of it.
#[test]
fn r30_branch_to_branch_carries_routes_an_nva_learned_from_its_branches() {
    let t = builtin("branch-to-branch-nva");
    let cp = converge(&t, &[]);
    let onprem = received(&cp, "onprem", "gw-vpn");
    assert_eq!(
        onprem.get("172.16.10.0/24").map(|r| r.0.clone()),
        Some(vec![65515, 65001, 65200]),
        "{onprem:?}"
    );
    assert!(
        onprem.contains_key("172.31.255.1/32"),
        "ExpressRoute ↔ VPN: {onprem:?}"
    );
    let nva = received(&cp, "nva1", "rs-hub1");
    assert_eq!(
        nva.get("192.168.0.0/16").map(|r| r.0.clone()),
        Some(vec![65515, 65100]),
        "{nva:?}"
    );
    let branch = received(&cp, "branch", "nva1");
    assert!(branch.contains_key("192.168.0.0/16"), "{branch:?}");
    let world = World::new(&cp);
    for (from, dst, at) in [
        ("onprem", "172.16.10.10", "site branch"),
        ("branch", "192.168.1.10", "site onprem"),
    ] {
        let s = t.sites.iter().position(|x| x.name == from).unwrap();
        let src: std::net::IpAddr = t.sites[s].hosts[0];
        let tr = world.walk_from(
            Start::Site(SiteId(s as u32)),
            Packet::new(Header {
                src,
                dst: dst.parse().unwrap(),
                proto: PROTO_TCP,
                sport: 49152,
                dport: 443,
            }),
        );
        assert_eq!(
            tr.verdict,
            Verdict::Delivered { at: at.into() },
            "{from} → {dst}: {:?}",
            tr.hops.iter().map(|h| &h.node).collect::<Vec<_>>()
        );
        assert!(
            tr.hops.iter().any(|h| h.node == "nva nva1"),
            "{from} → {dst} crosses nva1"
        );
    }
    // Branch-to-branch off: the gateways and the NVAs exchange nothing.
    let off = load(
        &include_str!("../../topologies/branch-to-branch-nva.toml")
            .replace("branch_to_branch = true", "branch_to_branch = false"),
    );
    let cp = converge(&off, &[]);
    let onprem = received(&cp, "onprem", "gw-vpn");
    assert!(
        !onprem.contains_key("172.16.10.0/24") && !onprem.contains_key("172.31.255.1/32"),
        "{onprem:?}"
    );
    assert!(!received(&cp, "nva1", "rs-hub1").contains_key("192.168.0.0/16"));
}

/// R25 at the Route Server (Microsoft's route-injection-in-spokes page): an
/// NVA advertising one spoke's range does not steer spoke-to-spoke traffic,
/// because the Route Server programs NVA routes equal to or inside the
/// ranges of its own VNet and of the VNets using it remotely nowhere. It
/// still accepts the route (its learned routes list it).
#[test]
fn r25_route_server_programs_no_route_inside_the_vnets_it_serves() {
    let src = include_str!("../../topologies/hub-rs-two-nvas.toml").replacen(
        "originate = [\"0.0.0.0/0\", \"10.0.0.0/8\"]",
        "originate = [\"0.0.0.0/0\", \"10.0.0.0/8\", \"10.12.0.0/16\", \"10.12.1.0/24\", \"10.1.3.0/24\"]",
        1,
    );
    let t = load(&src);
    let cp = converge(&t, &[]);
    let learned = received(&cp, "rs-hub1", "nva1");
    for p in ["10.12.0.0/16", "10.12.1.0/24", "10.1.3.0/24"] {
        assert_eq!(
            learned.get(p).map(|r| r.1.as_str()),
            Some("best"),
            "{p}: {learned:?}"
        );
        for nic in ["spoke11-vm", "spoke12-vm", "hub1-vm", "nva1"] {
            assert!(
                !vng_rows(&t, nic, &[]).iter().any(|r| r.1 == p),
                "{p} programmed on {nic}"
            );
        }
    }
    // spoke11 → spoke12 keeps taking the 10/8 supernet through both NVAs.
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.12.1.4"),
        hop(
            "VirtualNetworkGateway",
            "10.0.0.0/8",
            "VirtualNetworkGateway",
            &["10.1.2.4", "10.1.2.5"]
        )
    );
}
