//! One test (at least) per Azure BGP rule of SPEC R21–R41, and the events.

use super::util::*;
use vnetplane::dataplane::{Header, PROTO_TCP, Packet, Start, Verdict, World};
use vnetplane::topology::SiteId;

const S2: &str = include_str!("../../topologies/nva-default-loop.toml");
const S4: &str = include_str!("../../topologies/onprem-bypasses-nva.toml");
const S11: &str = include_str!("../../topologies/dual-homed-active-active.toml");

fn vng(state: &str, prefix: &str, hops: &[&str]) -> (String, String, Vec<String>) {
    (state.to_string(), prefix.to_string(), s(hops))
}

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

/// The next hop of `prefix` as `receiver` got it from `peer` (a Route
/// Server instance `RS/IN_k`, or a speaker).
fn received_next_hop(
    cp: &vnetplane::control::ControlPlane,
    receiver: &str,
    peer: &str,
    prefix: &str,
) -> Option<String> {
    use vnetplane::control::bgp::Node;
    let t = &cp.topology;
    let me = Node::by_name(t, receiver)?;
    let (name, k) = peer
        .split_once("/IN_")
        .map_or((peer, None), |(n, k)| (n, k.parse::<u8>().ok()));
    let them = Node::by_name(t, name)?;
    let (si, _) = cp
        .bgp
        .sessions_of(me)
        .find(|(_, s)| s.other(me) == them && (k.is_none() || s.instance == k))?;
    cp.bgp
        .received
        .get(&(me, si))?
        .values()
        .find(|r| r.path.prefix.to_string() == prefix)
        .map(|r| r.path.next_hop.to_string())
}

/// R21/R26 (added from published NVA BGP tables): a Route Server is two
/// instances; an NVA has one session with each, so each prefix is in its
/// table twice, once per instance, the Route Server's own ranges with that
/// instance's IP as next hop.
#[test]
fn r26_an_nva_has_one_session_per_route_server_instance() {
    let cp = converge(&builtin("hub-rs-two-nvas"), &[]);
    let t = &cp.topology;
    let nva1 = vnetplane::control::bgp::Node::by_name(t, "nva1").unwrap();
    let to_rs: Vec<_> = cp
        .bgp
        .sessions_of(nva1)
        .filter(|(_, s)| s.peer_label(t, nva1).starts_with("rs-hub1"))
        .map(|(_, s)| (s.peer_label(t, nva1), s.instance))
        .collect();
    assert_eq!(
        to_rs,
        vec![
            ("rs-hub1/IN_0".to_string(), Some(0)),
            ("rs-hub1/IN_1".to_string(), Some(1))
        ]
    );
    // The hub's range from each instance, with that instance's IP.
    assert_eq!(
        received_next_hop(&cp, "nva1", "rs-hub1/IN_0", "10.1.0.0/16").as_deref(),
        Some("10.1.1.4")
    );
    assert_eq!(
        received_next_hop(&cp, "nva1", "rs-hub1/IN_1", "10.1.0.0/16").as_deref(),
        Some("10.1.1.5")
    );
    // The Route Server does not send an NVA's own routes back to it on
    // the other instance.
    assert!(!received(&cp, "nva1", "rs-hub1/IN_1").contains_key("0.0.0.0/0"));
    // An NVA that peers with one instance only has one session (and R21's
    // warning, tested above).
    let one = load(&S2.replace(
        "  peer = \"rs-hub1\"\n",
        "  peer = \"rs-hub1\"\n  peer_ips = [\"10.1.1.5\"]\n",
    ));
    let cp = converge(&one, &[]);
    let nva1 = vnetplane::control::bgp::Node::by_name(&cp.topology, "nva1").unwrap();
    let instances: Vec<_> = cp.bgp.sessions_of(nva1).map(|(_, s)| s.instance).collect();
    assert_eq!(instances, vec![Some(1)]);
}

/// R26 (added): routes a Route Server relays to NVAs from its gateways
/// (branch-to-branch) carry the instance's IP as next hop (next-hop-self);
/// routes it programs into NICs keep the NVA's next hop (R22).
#[test]
fn r26_gateway_routes_relayed_to_nvas_carry_the_instance_ip() {
    let t = builtin("branch-to-branch-nva");
    let cp = converge(&t, &[]);
    // onprem's 192.168.0.0/16 arrives at the VPN gateway, then at nva1 from
    // each instance with that instance as next hop, 65515 prepended.
    for (peer, ip) in [("rs-hub1/IN_0", "10.1.1.4"), ("rs-hub1/IN_1", "10.1.1.5")] {
        assert_eq!(
            received_next_hop(&cp, "nva1", peer, "192.168.0.0/16").as_deref(),
            Some(ip),
            "{peer}"
        );
        assert_eq!(
            received(&cp, "nva1", peer)["192.168.0.0/16"].0,
            vec![65515, 65100],
            "{peer}"
        );
    }
    // What nva1 advertises is programmed with nva1's own IP.
    assert!(
        vng_rows(&t, "hub1-vm", &[]).contains(&vng("Active", "172.16.10.0/24", &["10.1.2.4"])),
        "{:?}",
        vng_rows(&t, "hub1-vm", &[])
    );
    // The platform's own next hops raise no recursive-routing warning.
    assert!(
        !cp.warnings.iter().any(|w| w.contains("recursive")),
        "{:?}",
        cp.warnings
    );
    // Without the static route to RouteServerSubnet, the instance address
    // resolves through the hub range learned from the Route Server itself
    // (scenario 17): one warning for that session's address, not one per
    // route relayed with it.
    let bare = load(
        &include_str!("../../topologies/branch-to-branch-nva.toml").replace(
            "  [[nva.route]]\n  prefix = \"10.1.1.0/27\"\n  via = \"10.1.2.1\"\n",
            "",
        ),
    );
    let cp = converge(&bare, &[]);
    let recursive: Vec<_> = cp
        .warnings
        .iter()
        .filter(|w| w.contains("recursive"))
        .collect();
    assert_eq!(recursive.len(), 1, "{recursive:?}");
    assert!(recursive[0].contains("10.1.1.4"), "{recursive:?}");
}

/// R21: one instance down leaves the other. The NVA keeps a session and
/// its routes stay programmed; both down, they are gone.
#[test]
fn r21_one_route_server_instance_down_leaves_the_other() {
    let t = builtin("hub-rs-two-nvas");
    let before = vng_rows(&t, "spoke11-vm", &[]);
    assert!(before.iter().any(|r| r.1 == "0.0.0.0/0"), "{before:?}");
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &["instance-down rs-hub1 0"]),
        before
    );
    let cp = converge(&t, &["instance-down rs-hub1 IN_0"]);
    let nva1 = vnetplane::control::bgp::Node::by_name(&cp.topology, "nva1").unwrap();
    let states: Vec<_> = cp
        .bgp
        .sessions_of(nva1)
        .filter(|(_, s)| s.instance.is_some())
        .map(|(_, s)| {
            (
                s.instance,
                s.state == vnetplane::control::bgp::SessionState::Up,
            )
        })
        .collect();
    assert_eq!(states, vec![(Some(0), false), (Some(1), true)]);
    assert!(
        vng_rows(
            &t,
            "spoke11-vm",
            &["instance-down rs-hub1 0", "instance-down rs-hub1 1"]
        )
        .is_empty()
    );
    // And back.
    assert_eq!(
        vng_rows(
            &t,
            "spoke11-vm",
            &["instance-down rs-hub1 0", "instance-up rs-hub1 0"]
        ),
        before
    );
}

/// Route policy on NVA sessions, per prefix: AS-path prepend makes a
/// standby for one prefix only (R28: the shorter path wins, equal paths
/// share); the other prefixes stay in ECMP.
#[test]
fn route_policy_prepends_per_prefix() {
    let src = include_str!("../../topologies/hub-rs-two-nvas.toml");
    // nva2's session: prepend twice, 0/0 only.
    let at = src
        .rfind("  originate = [\"0.0.0.0/0\", \"10.0.0.0/8\"]\n")
        .unwrap();
    let mut t = src.to_string();
    t.insert_str(
        at + "  originate = [\"0.0.0.0/0\", \"10.0.0.0/8\"]\n".len(),
        "  [[nva.bgp.policy]]\n  prefixes = [\"0.0.0.0/0\"]\n  prepend = 2\n",
    );
    let t = load(&t);
    let rows = vng_rows(&t, "spoke11-vm", &[]);
    let of = |p: &str| rows.iter().find(|r| r.1 == p).map(|r| r.2.clone());
    assert_eq!(of("0.0.0.0/0"), Some(s(&["10.1.2.4"])), "{rows:?}");
    assert_eq!(
        of("10.0.0.0/8"),
        Some(s(&["10.1.2.4", "10.1.2.5"])),
        "{rows:?}"
    );
    let cp = converge(&t, &[]);
    assert_eq!(
        received(&cp, "rs-hub1", "nva2")["0.0.0.0/0"].0,
        vec![65001, 65001, 65001]
    );
    assert_eq!(
        received(&cp, "rs-hub1", "nva2")["10.0.0.0/8"].0,
        vec![65001]
    );
    // A rule that denies drops the prefix from the session.
    let denied = load(&src.replacen(
        "  originate = [\"0.0.0.0/0\", \"10.0.0.0/8\"]\n",
        "  originate = [\"0.0.0.0/0\", \"10.0.0.0/8\"]\n  [[nva.bgp.policy]]\n  prefixes = [\"10.0.0.0/8\"]\n  deny = true\n",
        1,
    ));
    let rows = vng_rows(&denied, "spoke11-vm", &[]);
    assert_eq!(
        rows.iter()
            .find(|r| r.1 == "10.0.0.0/8")
            .map(|r| r.2.clone()),
        Some(s(&["10.1.2.5"]))
    );
}

/// Multi-region without as-override: an AS-path rewrite that deletes 65515
/// (the Route Server's multiregion page names it as the alternative) lets
/// each hub's ranges reach the other hub's Route Server, as as-override
/// does (R27).
#[test]
fn route_policy_deleting_65515_replaces_as_override() {
    let src = include_str!("../../topologies/multi-region-no-as-override.toml");
    let broken = load(src);
    let hub2_range = |t: &vnetplane::topology::Topology| {
        vng_rows(t, "spoke11-vm", &[])
            .into_iter()
            .find(|r| r.1 == "10.2.0.0/16")
            .map(|r| r.2)
    };
    assert_eq!(hub2_range(&broken), None);
    let fixed = load(&src.replace(
        "  as_override = false\n",
        "  as_override = false\n  [[nva.bgp.policy]]\n  delete_as = [65515]\n",
    ));
    let with_override = builtin("multi-region-vxlan");
    assert_eq!(hub2_range(&fixed), Some(s(&["10.1.2.4"])));
    assert_eq!(hub2_range(&fixed), hub2_range(&with_override));
    let cp = converge(&fixed, &[]);
    assert_eq!(
        received(&cp, "rs-hub1", "nva1")["10.2.0.0/16"].0,
        vec![65001, 65002]
    );
    // Replacing 65515 by the NVA's own ASN works too.
    let replaced = load(&src.replace(
        "  as_override = false\n",
        "  as_override = false\n  [[nva.bgp.policy]]\n  replace_as = [65515]\n",
    ));
    assert_eq!(hub2_range(&replaced), Some(s(&["10.1.2.4"])));
    let cp = converge(&replaced, &[]);
    assert_eq!(
        received(&cp, "rs-hub1", "nva1")["10.2.0.0/16"].0,
        vec![65001, 65002, 65001]
    );
}

/// NO_ADVERTISE set by policy (R29): the Route Server programs the route
/// into VMs but passes it on to nobody, so it does not reach the gateways
/// or on-premises; a plain community travels with the route.
#[test]
fn route_policy_communities_and_no_advertise() {
    let src = include_str!("../../topologies/branch-to-branch-nva.toml");
    let session = "  [[nva.bgp]]\n  peer = \"rs-hub1\"\n";
    let tagged = load(&src.replace(
        session,
        &format!("{session}  [[nva.bgp.policy]]\n  prefixes = [\"172.16.0.0/12\"]\n  or_longer = true\n  communities = [\"65001:100\", \"no-advertise\"]\n  [[nva.bgp.policy]]\n  communities = [\"65001:200\"]\n"),
    ));
    assert!(vng_rows(&tagged, "hub1-vm", &[]).contains(&vng(
        "Active",
        "172.16.10.0/24",
        &["10.1.2.4"]
    )));
    let cp = converge(&tagged, &[]);
    assert!(!received(&cp, "onprem", "gw-vpn").contains_key("172.16.10.0/24"));
    assert!(!received(&cp, "gw-vpn", "rs-hub1").contains_key("172.16.10.0/24"));
    // Without the community it goes on premises (branch-to-branch).
    let cp0 = converge(&builtin("branch-to-branch-nva"), &[]);
    assert!(received(&cp0, "onprem", "gw-vpn").contains_key("172.16.10.0/24"));
    // Communities as received by the Route Server, per rule.
    let rs = vnetplane::control::bgp::Node::by_name(&cp.topology, "rs-hub1").unwrap();
    let comms = |prefix: &str| -> Vec<String> {
        cp.bgp
            .accepted(rs)
            .find(|(_, _, r)| r.path.prefix.to_string() == prefix)
            .map(|(_, _, r)| {
                r.path
                    .communities
                    .iter()
                    .map(|&c| vnetplane::topology::community_text(c))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(comms("172.16.10.0/24"), s(&["65001:100", "no-advertise"]));
    // A community that is not one is refused, naming the field.
    let err = vnetplane::topology::load_str(
        "t.toml",
        &src.replace(
            session,
            &format!("{session}  [[nva.bgp.policy]]\n  communities = [\"65001:70000\"]\n"),
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("communities") && err.contains("65001:70000"),
        "{err}"
    );
}

/// An NVA as a VPN gateway's local network gateway, with BGP over the
/// IPsec connection (Azure's "About BGP with VPN Gateway"): the gateway
/// learns the NVA's prefixes and programs them into its VNet with the
/// gateway's instances as next hops; the NVA learns the VNet's range.
/// Traffic to them crosses the gateway and the connection to the NVA. An
/// NVA's loopback is an address its OS owns; its `originate` goes to every
/// session.
#[test]
fn nva_peers_with_a_vpn_gateway_over_ipsec() {
    let src = r#"
[[vnet]]
name = "hub1"
region = "westeurope"
address_space = ["10.1.0.0/16"]
  [[vnet.subnet]]
  name = "GatewaySubnet"
  prefix = "10.1.0.0/27"
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
name = "gw-vpn"
vnet = "hub1"
kind = "vpn"
active_active = true
ips = ["10.1.0.4", "10.1.0.5"]
[[nva]]
name = "nva1"
nics = ["nva1"]
asn = 65010
loopbacks = ["172.20.255.1"]
originate = ["172.20.255.1/32"]
  [[nva.bgp]]
  peer = "gw-vpn"
"#;
    let t = load(src);
    let cp = converge(&t, &[]);
    assert!(cp.warnings.is_empty(), "{:?}", cp.warnings);
    assert_eq!(
        received(&cp, "gw-vpn", "nva1")["172.20.255.1/32"],
        (vec![65010], "best".to_string(), String::new())
    );
    assert_eq!(
        received(&cp, "nva1", "gw-vpn")["10.1.0.0/16"].0,
        vec![65515]
    );
    assert!(
        vng_rows(&t, "hub1-vm", &[]).contains(&vng(
            "Active",
            "172.20.255.1/32",
            &["10.1.0.4", "10.1.0.5"]
        )),
        "{:?}",
        vng_rows(&t, "hub1-vm", &[])
    );
    let tr = walk_tcp(&t, &[], "hub1-vm", "172.20.255.1");
    assert_eq!(
        tr.verdict,
        Verdict::Delivered {
            at: "nva nva1".into()
        },
        "{tr:?}"
    );
    // The gateway down, the route goes with it.
    assert!(
        !vng_rows(&t, "hub1-vm", &["speaker-down gw-vpn"])
            .iter()
            .any(|r| r.1 == "172.20.255.1/32")
    );
    // An ExpressRoute gateway does not peer with NVAs.
    let er = load(&src.replace(
        "kind = \"vpn\"\nactive_active = true",
        "kind = \"expressroute\"",
    ));
    let cp = converge(&er, &[]);
    assert!(
        cp.warnings.iter().any(|w| w.contains("ExpressRoute")),
        "{:?}",
        cp.warnings
    );
}

/// A session sourced from a loopback sets the loopback as next hop. The
/// Route Server programs it as received (R22), and since no VNet reaches
/// the loopback, NICs show it as None (R51) — the trap of peering from a
/// loopback without a load balancer or a NIC address as next hop.
#[test]
fn a_session_sourced_from_a_loopback_sets_its_next_hop() {
    let src = include_str!("../../topologies/nva-default-loop.toml");
    let t = load(
        &src.replace(
            "asn = 65001\n",
            "asn = 65001\nloopbacks = [\"192.0.2.1\"]\n",
        )
        .replace(
            "  peer = \"rs-hub1\"\n",
            "  peer = \"rs-hub1\"\n  source = \"192.0.2.1\"\n",
        ),
    );
    let cp = converge(&t, &[]);
    assert_eq!(received(&cp, "rs-hub1", "nva1")["0.0.0.0/0"].0, vec![65001]);
    assert_eq!(
        next_hop(&t, "spoke11-vm", "8.8.8.8"),
        hop("VirtualNetworkGateway", "0.0.0.0/0", "None", &[])
    );
    // A source the NVA does not have is refused, naming the field.
    let err = vnetplane::topology::load_str(
        "t.toml",
        &src.replace(
            "  peer = \"rs-hub1\"\n",
            "  peer = \"rs-hub1\"\n  source = \"192.0.2.9\"\n",
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("source") && err.contains("192.0.2.9"), "{err}");
}

/// Several ExpressRoute circuits on one gateway (two sites, each its own
/// circuit, advertising the same prefix): the gateway's best path decides
/// where traffic goes, connection weight first (R39), and a circuit that
/// goes down leaves the other.
#[test]
fn r39_several_circuits_on_one_gateway_follow_the_best_path() {
    let src = r#"
[[vnet]]
name = "hub1"
region = "westeurope"
address_space = ["10.1.0.0/16"]
  [[vnet.subnet]]
  name = "GatewaySubnet"
  prefix = "10.1.0.0/27"
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.1.3.0/24"
[[nic]]
name = "hub1-vm"
vnet = "hub1"
subnet = "vm"
ips = ["10.1.3.4"]
[[gateway]]
name = "gw-er"
vnet = "hub1"
kind = "expressroute"
ips = ["10.1.0.6", "10.1.0.7"]
[[site]]
name = "circuit-a"
asn = 65100
prefixes = ["192.168.0.0/16"]
hosts = ["192.168.1.10"]
  [[site.connection]]
  gateway = "gw-er"
  bgp = true
[[site]]
name = "circuit-b"
asn = 65200
prefixes = ["192.168.0.0/16"]
hosts = ["192.168.1.10"]
  [[site.connection]]
  gateway = "gw-er"
  bgp = true
  weight = WEIGHT
"#;
    let at = |t: &vnetplane::topology::Topology, events: &[&str]| {
        walk_tcp(t, events, "hub1-vm", "192.168.1.10")
            .verdict
            .at()
            .to_string()
    };
    // Equal weights and paths: the earlier circuit.
    let even = load(&src.replace("WEIGHT", "0"));
    assert_eq!(at(&even, &[]), "site circuit-a");
    // The heavier connection wins.
    let heavy = load(&src.replace("WEIGHT", "100"));
    assert_eq!(at(&heavy, &[]), "site circuit-b");
    let cp = converge(&heavy, &[]);
    let er = received(&cp, "gw-er", "msee-circuit-b");
    assert_eq!(er["192.168.0.0/16"].1, "best");
    // That circuit down: the other one.
    assert_eq!(
        at(&heavy, &["speaker-down msee-circuit-b"]),
        "site circuit-a"
    );
    assert!(
        vng_rows(&heavy, "hub1-vm", &[])
            .iter()
            .any(|r| r.1 == "192.168.0.0/16")
    );
}

/// VNet-to-VNet connections (ARM `connectionType: Vnet2Vnet`; VPN Gateway
/// docs): with BGP each gateway learns the other VNet's range (AS path of
/// the other gateway) and programs it with itself as next hop; without BGP
/// each holds the other's range as a static prefix. Either way traffic
/// crosses both gateways and the "on-premises" side keeps its own NICs and
/// effective routes. Same ASNs with BGP are refused.
#[test]
fn vnet_to_vnet_connections_join_two_vnets_through_their_gateways() {
    let src = r#"
[[vnet]]
name = "vnet-a"
region = "westeurope"
address_space = ["10.10.0.0/16"]
  [[vnet.subnet]]
  name = "GatewaySubnet"
  prefix = "10.10.0.0/27"
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.10.1.0/24"
[[vnet]]
name = "vnet-b"
region = "northeurope"
address_space = ["10.20.0.0/16"]
  [[vnet.subnet]]
  name = "GatewaySubnet"
  prefix = "10.20.0.0/27"
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.20.1.0/24"
[[nic]]
name = "vm-a"
vnet = "vnet-a"
subnet = "vm"
ips = ["10.10.1.4"]
[[nic]]
name = "vm-b"
vnet = "vnet-b"
subnet = "vm"
ips = ["10.20.1.4"]
[[gateway]]
name = "gw-a"
vnet = "vnet-a"
kind = "vpn"
ips = ["10.10.0.4"]
public_ip = "203.0.113.10"
asn = 65010
[[gateway]]
name = "gw-b"
vnet = "vnet-b"
kind = "vpn"
ips = ["10.20.0.4"]
public_ip = "203.0.113.20"
asn = 65020
[[vnet_connection]]
gateway1 = "gw-a"
gateway2 = "gw-b"
bgp = BGP
"#;
    for bgp in ["true", "false"] {
        let t = load(&src.replace("BGP", bgp));
        assert!(
            vng_rows(&t, "vm-a", &[]).contains(&vng("Active", "10.20.0.0/16", &["203.0.113.10"])),
            "bgp {bgp}: {:?}",
            vng_rows(&t, "vm-a", &[])
        );
        assert!(
            vng_rows(&t, "vm-b", &[]).contains(&vng("Active", "10.10.0.0/16", &["203.0.113.20"])),
            "bgp {bgp}"
        );
        for (from, dst, to) in [
            ("vm-a", "10.20.1.4", "nic vm-b"),
            ("vm-b", "10.10.1.4", "nic vm-a"),
        ] {
            let tr = walk_tcp(&t, &[], from, dst);
            assert_eq!(
                tr.verdict,
                Verdict::Delivered { at: to.into() },
                "bgp {bgp}: {tr:?}"
            );
            assert!(
                tr.hops.iter().any(|h| h.node == "gateway gw-a"),
                "bgp {bgp}"
            );
            assert!(
                tr.hops.iter().any(|h| h.node == "gateway gw-b"),
                "bgp {bgp}"
            );
        }
        // The connection down: no route, the packet stays home.
        let down = &["session-down gw-a gw-b"];
        assert!(
            !vng_rows(&t, "vm-a", down)
                .iter()
                .any(|r| r.1 == "10.20.0.0/16"),
            "bgp {bgp}"
        );
    }
    let t = load(&src.replace("BGP", "true"));
    let cp = converge(&t, &[]);
    assert_eq!(received(&cp, "gw-a", "gw-b")["10.20.0.0/16"].0, vec![65020]);
    // BGP between equal ASNs is refused.
    let err = vnetplane::topology::load_str(
        "t.toml",
        &src.replace("BGP", "true")
            .replace("asn = 65020", "asn = 65010"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("different ASNs"), "{err}");
}

/// An active-active VPN gateway has one tunnel, and BGP session, per
/// instance with each BGP site (VPN Gateway's active-active docs): the
/// site learns each prefix from both instances, each with its instance's
/// IP; one instance down leaves the other.
#[test]
fn active_active_gateways_have_a_session_per_instance() {
    let t = builtin("branch-to-branch-nva");
    let cp = converge(&t, &[]);
    let next_hop_from = |cp: &vnetplane::control::ControlPlane, peer: &str| {
        let me = vnetplane::control::bgp::Node::by_name(&cp.topology, "onprem").unwrap();
        let k: u8 = peer.rsplit("IN_").next().unwrap().parse().unwrap();
        cp.bgp
            .sessions_of(me)
            .find(|(_, s)| s.instance == Some(k))
            .and_then(|(si, _)| cp.bgp.received.get(&(me, si)))
            .and_then(|m| {
                m.values()
                    .find(|r| r.path.prefix.to_string() == "10.1.0.0/16")
            })
            .map(|r| r.path.next_hop.to_string())
    };
    assert_eq!(
        next_hop_from(&cp, "gw-vpn/IN_0").as_deref(),
        Some("10.1.0.4")
    );
    assert_eq!(
        next_hop_from(&cp, "gw-vpn/IN_1").as_deref(),
        Some("10.1.0.5")
    );
    // The site's own prefix does not come back on the other instance.
    assert!(!received(&cp, "onprem", "gw-vpn/IN_1").contains_key("192.168.0.0/16"));
    let reach = |events: &[&str]| {
        let world = World::new(&converge(&t, events));
        let header = Header {
            src: "192.168.1.10".parse().unwrap(),
            dst: "10.1.3.4".parse().unwrap(),
            proto: PROTO_TCP,
            sport: 49152,
            dport: 443,
        };
        world
            .walk_from(Start::Site(SiteId(0)), Packet::new(header))
            .verdict
    };
    let delivered = Verdict::Delivered {
        at: "nic hub1-vm".into(),
    };
    assert_eq!(reach(&[]), delivered);
    assert_eq!(reach(&["instance-down gw-vpn 0"]), delivered);
    assert_ne!(
        reach(&["instance-down gw-vpn 0", "instance-down gw-vpn 1"]),
        delivered
    );
    // An ExpressRoute gateway (not active-active) has no instance to take down.
    let err = vnetplane::control::events::Event::parse("instance-down gw-er 0")
        .unwrap()
        .check(&t)
        .unwrap_err();
    assert!(err.message.contains("not active-active"), "{err}");
}
