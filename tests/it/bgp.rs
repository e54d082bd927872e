//! BGP and what it programs, scenario by scenario (SCENARIOS.md 2–13, 16, 17)
//! and SPEC T4–T9, T11, T12, T15. Expected values are written from the docs.

use super::util::*;

fn vng(state: &str, prefix: &str, hops: &[&str]) -> (String, String, Vec<String>) {
    (state.to_string(), prefix.to_string(), s(hops))
}

#[test]
fn s2_nva_default_lands_on_every_nic_including_its_own() {
    // Scenario 2 / SPEC T5 / R22–R24: Route Server programs 0/0 -> 10.1.2.4
    // into every NIC of hub1 and of spoke11 (use remote), nva1's own included.
    let t = builtin("nva-default-loop");
    for nic in ["hub1-vm", "nva1", "spoke11-vm"] {
        assert_eq!(
            vng_rows(&t, nic, &[]),
            vec![vng("Active", "0.0.0.0/0", &["10.1.2.4"])],
            "{nic}"
        );
        assert_eq!(
            next_hop(&t, nic, "198.51.100.10"),
            hop(
                "VirtualNetworkGateway",
                "0.0.0.0/0",
                "VirtualNetworkGateway",
                &["10.1.2.4"]
            )
        );
        // R3 revised (published dumps): a BGP 0/0 leaves no Default 0/0
        // Internet row at all, and no reserved None routes.
        assert!(
            rows(&t, nic)
                .iter()
                .all(|r| r.0 != "Default" || (r.2 != "0.0.0.0/0" && r.3 != "None")),
            "{nic}: {:?}",
            rows(&t, nic)
        );
    }
    // R26: what the Route Server tells nva1: its VNet and the spoke using it, AS path 65515.
    let cp = converge(&t, &[]);
    assert_eq!(
        advertised(&cp, "rs-hub1", "nva1"),
        [
            ("10.1.0.0/16".to_string(), vec![65515]),
            ("10.11.0.0/16".to_string(), vec![65515])
        ]
        .into()
    );
    assert_eq!(
        received(&cp, "rs-hub1", "nva1")["0.0.0.0/0"],
        (vec![65001], "best".into(), String::new())
    );
}

#[test]
fn s3_udr_internet_on_the_nva_subnet_wins() {
    let t = builtin("nva-default-loop-fixed");
    let r = rows(&t, "nva1");
    assert!(r.contains(&(
        "User".into(),
        "Active".into(),
        "0.0.0.0/0".into(),
        "Internet".into(),
        vec![]
    )));
    assert!(r.contains(&(
        "VirtualNetworkGateway".into(),
        "Invalid".into(),
        "0.0.0.0/0".into(),
        "VirtualNetworkGateway".into(),
        s(&["10.1.2.4"])
    )));
    assert_eq!(
        next_hop(&t, "nva1", "198.51.100.10"),
        hop("User", "0.0.0.0/0", "Internet", &[])
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "198.51.100.10"),
        hop(
            "VirtualNetworkGateway",
            "0.0.0.0/0",
            "VirtualNetworkGateway",
            &["10.1.2.4"]
        )
    );
}

#[test]
fn s4_t4_onprem_prefix_beats_the_nva_default() {
    let t = builtin("onprem-bypasses-nva");
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &[]),
        vec![
            vng("Active", "0.0.0.0/0", &["10.1.2.4"]),
            vng("Active", "192.168.0.0/16", &["10.1.0.4", "10.1.0.5"])
        ]
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "192.168.1.10").unwrap().3,
        s(&["10.1.0.4", "10.1.0.5"])
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "198.51.100.10").unwrap().3,
        s(&["10.1.2.4"])
    );
    // Branch-to-branch off (R30): the NVA never hears of 192.168/16.
    let cp = converge(&t, &[]);
    assert!(!received(&cp, "nva1", "rs-hub1").contains_key("192.168.0.0/16"));
}

#[test]
fn t4_expressroute_variant_and_branch_to_branch() {
    let src = include_str!("../../topologies/onprem-bypasses-nva.toml")
        .replace(
            "kind = \"vpn\"\nactive_active = true",
            "kind = \"expressroute\"",
        )
        .replace(
            "prefixes = [\"192.168.0.0/16\"]",
            "prefixes = [\"172.16.0.0/16\"]",
        )
        .replace("hosts = [\"192.168.1.10\"]", "hosts = [\"172.16.5.5\"]")
        .replace("to = \"192.168.1.10\"", "to = \"172.16.5.5\"");
    let t = load(&src);
    // eff(spoke VM): 172.16/16 via the ExpressRoute gateway, 0/0 via the NVA.
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &[]),
        vec![
            vng("Active", "0.0.0.0/0", &["10.1.2.4"]),
            vng("Active", "172.16.0.0/16", &["10.1.0.4", "10.1.0.5"])
        ]
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "172.16.5.5").unwrap().3,
        s(&["10.1.0.4", "10.1.0.5"])
    );
    let cp = converge(&t, &[]);
    assert!(!received(&cp, "nva1", "rs-hub1").contains_key("172.16.0.0/16"));
    // With branch-to-branch the NVA learns it, 65515 prepended to the ER path (R26).
    let t = load(&src.replace("branch_to_branch = false", "branch_to_branch = true"));
    let cp = converge(&t, &[]);
    assert_eq!(
        received(&cp, "nva1", "rs-hub1")["172.16.0.0/16"].0,
        vec![65515, 12076, 65100]
    );
    // ... and on-premises learns the spoke and hub, but never 0/0 from ER? ER may
    // carry 0/0; the NVA's 0/0 reaches on-premises with private ASNs stripped (R38).
    let onprem = received(&cp, "onprem", "msee-onprem");
    assert_eq!(onprem["10.11.0.0/16"].0, vec![12076]);
    assert_eq!(onprem["0.0.0.0/0"].0, vec![12076]);
}

#[test]
fn s5_udrs_steer_both_directions_through_nva1() {
    let t = builtin("onprem-via-nva-udr");
    assert_eq!(
        next_hop(&t, "spoke11-vm", "192.168.1.10"),
        hop("User", "192.168.0.0/16", "VirtualAppliance", &["10.1.2.4"])
    );
    let tab = super::util::converge(&t, &[])
        .subnet_table(t.subnet_by_path("hub1/GatewaySubnet").unwrap());
    let d = vnetplane::control::effective::lookup(&tab, "10.11.1.4".parse().unwrap());
    assert_eq!(
        tab.routes[d.selected.unwrap()].name.as_deref(),
        Some("spoke11-via-nva1")
    );
    // nva1 itself forwards onprem traffic to the gateway.
    assert_eq!(
        next_hop(&t, "nva1", "192.168.1.10").unwrap().3,
        s(&["10.1.0.4", "10.1.0.5"])
    );
}

#[test]
fn s6_t12_overlay_prefixes_come_from_the_nva_and_the_cpe_32_from_expressroute() {
    let t = builtin("onprem-overlay");
    for nic in ["spoke11-vm", "nva1", "hub1-vm"] {
        assert_eq!(
            vng_rows(&t, nic, &[]),
            vec![
                vng("Active", "192.168.0.0/16", &["10.1.2.4"]),
                vng("Active", "192.168.255.1/32", &["10.1.0.4", "10.1.0.5"])
            ],
            "{nic}"
        );
    }
    // The outer packet (to the CPE) takes the /32, not the /16 that points at nva1.
    assert_eq!(
        next_hop(&t, "nva1", "192.168.255.1").unwrap().3,
        s(&["10.1.0.4", "10.1.0.5"])
    );
    assert_eq!(
        next_hop(&t, "nva1", "192.168.1.10").unwrap().3,
        s(&["10.1.2.4"])
    );
    // nva1's OS routes 192.168/16 into the tunnel.
    let cp = converge(&t, &[]);
    let os = &cp.nva_tables[0];
    let e = os
        .entries
        .iter()
        .find(|e| e.prefix.to_string() == "192.168.0.0/16" && e.active)
        .unwrap();
    assert_eq!(e.next_hop, vnetplane::topology::OsNextHop::Tunnel(0));
    // The path the Route Server holds: 65001 65100 (learned from the CPE in the tunnel).
    assert_eq!(
        received(&cp, "rs-hub1", "nva1")["192.168.0.0/16"].0,
        vec![65001, 65100]
    );
}

#[test]
fn s7_t8_multi_region_loop_routes() {
    let t = builtin("multi-region-loop");
    // nva1's own NIC holds 10.21/16 -> itself (the loop); hub1 NICs do not get
    // hub2's range, which their peering route covers (R25 per NIC).
    assert_eq!(
        vng_rows(&t, "nva1", &[]),
        vec![vng("Active", "10.21.0.0/16", &["10.1.2.4"])]
    );
    assert_eq!(
        vng_rows(&t, "hub1-vm", &[]),
        vec![vng("Active", "10.21.0.0/16", &["10.1.2.4"])]
    );
    // The spoke does get hub2's range through the NVA (T8's published table).
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &[]),
        vec![
            vng("Active", "10.2.0.0/16", &["10.1.2.4"]),
            vng("Active", "10.21.0.0/16", &["10.1.2.4"])
        ]
    );
    assert_eq!(
        vng_rows(&t, "spoke21-vm", &[]),
        vec![
            vng("Active", "10.1.0.0/16", &["10.2.2.4"]),
            vng("Active", "10.11.0.0/16", &["10.2.2.4"])
        ]
    );
    // nva1's OS sends 10.21/16 to nva2 directly (no tunnel).
    let cp = converge(&t, &[]);
    let e = cp.nva_tables[0]
        .entries
        .iter()
        .find(|e| e.prefix.to_string() == "10.21.0.0/16")
        .unwrap();
    assert_eq!(
        e.next_hop,
        vnetplane::topology::OsNextHop::Via("10.2.2.4".parse().unwrap())
    );
}

#[test]
fn s8_s9_t7b_overlay_with_as_override() {
    for name in ["multi-region-vxlan", "multi-region-ipsec"] {
        let t = builtin(name);
        // Done-when: spoke11-vm's routes hold 10.21.0.0/16 via 10.1.2.4.
        assert_eq!(
            next_hop(&t, "spoke11-vm", "10.21.1.4"),
            hop(
                "VirtualNetworkGateway",
                "10.21.0.0/16",
                "VirtualNetworkGateway",
                &["10.1.2.4"]
            )
        );
        assert_eq!(
            next_hop(&t, "spoke21-vm", "10.11.1.4"),
            hop(
                "VirtualNetworkGateway",
                "10.11.0.0/16",
                "VirtualNetworkGateway",
                &["10.2.2.4"]
            )
        );
        let cp = converge(&t, &[]);
        // as-override on nva1 rewrote 65515: rs-hub1 learns 10.21/16 as 65001 65002 65001.
        assert_eq!(
            received(&cp, "rs-hub1", "nva1")["10.21.0.0/16"],
            (vec![65001, 65002, 65001], "best".into(), String::new())
        );
        // It re-learns its own ranges with the rewritten path but does not program them (R16, R25).
        assert_eq!(
            received(&cp, "rs-hub1", "nva1")["10.1.0.0/16"].0,
            vec![65001, 65001]
        );
        assert!(
            vng_rows(&t, "hub1-vm", &[])
                .iter()
                .all(|r| r.1 != "10.1.0.0/16" && r.1 != "10.11.0.0/16")
        );
        // The remote spoke is reached through the tunnel in nva1's OS.
        let e = cp.nva_tables[0]
            .entries
            .iter()
            .find(|e| e.prefix.to_string() == "10.21.0.0/16" && e.active)
            .unwrap();
        assert_eq!(
            e.next_hop,
            vnetplane::topology::OsNextHop::Tunnel(0),
            "{name}"
        );
        // The outer packet to nva2 rides the global peering on nva1's NIC.
        assert_eq!(
            next_hop(&t, "nva1", "10.2.2.4"),
            hop("Default", "10.2.0.0/16", "VNetGlobalPeering", &[])
        );
    }
}

#[test]
fn s10_t7a_route_servers_reject_paths_with_65515() {
    let t = builtin("multi-region-no-as-override");
    let cp = converge(&t, &[]);
    let got = received(&cp, "rs-hub1", "nva1");
    assert_eq!(got["10.21.0.0/16"].0, vec![65001, 65002, 65515]);
    assert_eq!(got["10.21.0.0/16"].1, "rejected");
    assert!(got["10.21.0.0/16"].2.contains("65515") && got["10.21.0.0/16"].2.contains("R27"));
    assert!(vng_rows(&t, "spoke11-vm", &[]).is_empty());
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.21.1.4"),
        hop("Default", "10.0.0.0/8", "None", &[])
    );
    assert_eq!(
        next_hop(&t, "spoke21-vm", "10.11.1.4"),
        hop("Default", "10.0.0.0/8", "None", &[])
    );
}

#[test]
fn s11_t9a_equal_paths_give_ecmp() {
    let t = builtin("dual-homed-active-active");
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &[]),
        vec![vng("Active", "0.0.0.0/0", &["10.1.2.4", "10.2.2.4"])]
    );
    // The hubs do not use the spoke's Route Server: no 0/0 from it on the NVAs.
    for nic in ["nva1", "nva2"] {
        assert!(vng_rows(&t, nic, &[]).is_empty(), "{nic}");
        assert_eq!(
            next_hop(&t, nic, "198.51.100.10"),
            hop("Default", "0.0.0.0/0", "Internet", &[])
        );
    }
}

#[test]
fn s12_t9bc_prepend_makes_active_passive_and_failover_switches() {
    let t = builtin("dual-homed-active-passive");
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &[]),
        vec![vng("Active", "0.0.0.0/0", &["10.1.2.4"])]
    );
    let cp = converge(&t, &[]);
    let got = received(&cp, "rs-spoke11", "nva2");
    assert_eq!(got["0.0.0.0/0"].0, vec![65002, 65002, 65002]);
    assert_eq!(got["0.0.0.0/0"].1, "accepted");
    assert!(got["0.0.0.0/0"].2.contains("longer AS path"));
    // nva1 fails: the standby takes over.
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &["speaker-down nva1"]),
        vec![vng("Active", "0.0.0.0/0", &["10.2.2.4"])]
    );
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &["session-down nva1 rs-spoke11"]),
        vec![vng("Active", "0.0.0.0/0", &["10.2.2.4"])]
    );
    // ... and back when it returns.
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &["speaker-down nva1", "speaker-up nva1"]),
        vec![vng("Active", "0.0.0.0/0", &["10.1.2.4"])]
    );
    // Both gone: no route left, back to the Internet default.
    assert_eq!(
        next_hop_after(
            &t,
            "spoke11-vm",
            "198.51.100.10",
            &["speaker-down nva1", "speaker-down nva2"]
        ),
        hop("Default", "0.0.0.0/0", "Internet", &[])
    );
}

#[test]
fn s13_dual_homed_expressroute_needs_as_override() {
    let t = builtin("dual-homed-expressroute");
    assert_eq!(
        next_hop(&t, "spoke11-vm", "192.168.1.10").unwrap().3,
        s(&["10.1.2.4", "10.2.2.4"])
    );
    let cp = converge(&t, &[]);
    // The onprem route reached the NVAs through the hub Route Servers (branch-to-branch).
    assert_eq!(
        received(&cp, "nva1", "rs-hub1")["192.168.0.0/16"].0,
        vec![65515, 12076, 65100]
    );
    // On-premises learns the spoke through the NVAs, private ASNs stripped (R38).
    assert_eq!(
        received(&cp, "onprem", "msee-onprem")["10.11.0.0/16"].0,
        vec![12076]
    );
    // R25: rs-hub1 relays the spoke (not using it remotely) but not its own VNet to the gateway.
    let to_gw = advertised(&cp, "rs-hub1", "gw-hub1");
    assert!(
        to_gw.contains_key("10.11.0.0/16") && !to_gw.contains_key("10.1.0.0/16"),
        "{to_gw:?}"
    );

    let v = builtin("dual-homed-expressroute-no-override");
    let cp = converge(&v, &[]);
    let got = received(&cp, "rs-spoke11", "nva1");
    assert_eq!(got["192.168.0.0/16"].1, "rejected");
    assert!(got["192.168.0.0/16"].2.contains("R27"));
    assert_eq!(
        next_hop(&v, "spoke11-vm", "192.168.1.10"),
        hop("Default", "192.168.0.0/16", "None", &[])
    );
}

#[test]
fn s16_propagation_off_spoke_goes_through_the_nva() {
    let t = builtin("gateway-propagation-off");
    assert!(vng_rows(&t, "spoke11-vm", &[]).is_empty());
    assert_eq!(
        next_hop(&t, "spoke11-vm", "192.168.1.10"),
        hop("User", "0.0.0.0/0", "VirtualAppliance", &["10.1.2.4"])
    );
    assert_eq!(
        next_hop(&t, "nva1", "192.168.1.10").unwrap().3,
        s(&["10.1.0.4", "10.1.0.5"])
    );
}

#[test]
fn s17_next_hop_recursion_is_warned_only_without_the_static_route() {
    let cp = converge(&builtin("nva-nexthop-recursion"), &[]);
    assert_eq!(cp.warnings.len(), 1, "{:?}", cp.warnings);
    let w = &cp.warnings[0];
    assert!(
        w.contains("nva1") && w.contains("10.1.1.4") && w.contains("same session"),
        "{w}"
    );
    let cp = converge(&builtin("nva-nexthop-recursion-static"), &[]);
    assert!(cp.warnings.is_empty(), "{:?}", cp.warnings);
}

#[test]
fn t6_chained_nvas_program_the_firewall_everywhere() {
    // FW 10.0.0.5 learns 192.168/16 from the concentrator 10.0.10.4 and tells
    // the Route Server; every NIC, both NVAs' included, gets 192.168/16 -> 10.0.0.5.
    let t = load(
        r#"
[[vnet]]
name = "hub"
region = "westeurope"
address_space = ["10.0.0.0/16"]
  [[vnet.subnet]]
  name = "fw"
  prefix = "10.0.0.0/24"
  [[vnet.subnet]]
  name = "nva"
  prefix = "10.0.10.0/24"
  [[vnet.subnet]]
  name = "RouteServerSubnet"
  prefix = "10.0.255.0/27"
[[vnet]]
name = "spoke1"
region = "westeurope"
address_space = ["10.1.0.0/16"]
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.1.1.0/24"
[[nic]]
name = "fw"
vnet = "hub"
subnet = "fw"
ips = ["10.0.0.5"]
ip_forwarding = true
[[nic]]
name = "conc"
vnet = "hub"
subnet = "nva"
ips = ["10.0.10.4"]
ip_forwarding = true
[[nic]]
name = "vm1"
vnet = "spoke1"
subnet = "vm"
ips = ["10.1.1.4"]
[[peering]]
vnet = "hub"
remote = "spoke1"
allow_gateway_transit = true
allow_forwarded_traffic = true
[[peering]]
vnet = "spoke1"
remote = "hub"
use_remote_gateways = true
allow_forwarded_traffic = true
[[route_server]]
name = "ars"
vnet = "hub"
ips = ["10.0.255.4", "10.0.255.5"]
[[nva]]
name = "fw"
nics = ["fw"]
asn = 65010
  [[nva.route]]
  prefix = "10.0.0.0/8"
  via = "10.0.0.1"
  [[nva.bgp]]
  peer = "ars"
  [[nva.bgp]]
  peer = "conc"
[[nva]]
name = "conc"
nics = ["conc"]
asn = 65020
  [[nva.route]]
  prefix = "10.0.0.0/8"
  via = "10.0.10.1"
  [[nva.bgp]]
  peer = "fw"
  originate = ["192.168.0.0/16"]
"#,
    );
    for nic in ["vm1", "fw", "conc"] {
        assert_eq!(
            vng_rows(&t, nic, &[]),
            vec![vng("Active", "192.168.0.0/16", &["10.0.0.5"])],
            "{nic}"
        );
    }
}

#[test]
fn t11_r34_second_route_server_on_the_circuit_drops_nva_routes() {
    let t = load(
        r#"
[[vnet]]
name = "vnet1"
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
[[vnet]]
name = "vnet2"
region = "westeurope"
address_space = ["10.2.0.0/16"]
  [[vnet.subnet]]
  name = "GatewaySubnet"
  prefix = "10.2.0.0/27"
  [[vnet.subnet]]
  name = "RouteServerSubnet"
  prefix = "10.2.1.0/27"
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.2.3.0/24"
[[nic]]
name = "sdwan"
vnet = "vnet1"
subnet = "nva"
ips = ["10.1.2.4"]
ip_forwarding = true
[[nic]]
name = "vm2"
vnet = "vnet2"
subnet = "vm"
ips = ["10.2.3.4"]
[[gateway]]
name = "er1"
vnet = "vnet1"
kind = "expressroute"
ips = ["10.1.0.4", "10.1.0.5"]
[[gateway]]
name = "er2"
vnet = "vnet2"
kind = "expressroute"
ips = ["10.2.0.4", "10.2.0.5"]
[[route_server]]
name = "rs1"
vnet = "vnet1"
ips = ["10.1.1.4", "10.1.1.5"]
branch_to_branch = true
[[route_server]]
name = "rs2"
vnet = "vnet2"
ips = ["10.2.1.4", "10.2.1.5"]
branch_to_branch = true
[[nva]]
name = "sdwan"
nics = ["sdwan"]
asn = 65030
  [[nva.route]]
  prefix = "10.1.1.0/27"
  via = "10.1.2.1"
  [[nva.bgp]]
  peer = "rs1"
  originate = ["10.3.0.0/16"]
[[site]]
name = "onprem"
asn = 65100
prefixes = ["192.168.0.0/16"]
  [[site.connection]]
  gateway = "er1"
  [[site.connection]]
  gateway = "er2"
"#,
    );
    let cp = converge(&t, &[]);
    // On-premises learns 10.3/16 over ExpressRoute.
    assert_eq!(
        received(&cp, "onprem", "msee-onprem")["10.3.0.0/16"].0,
        vec![12076]
    );
    // The second VNet's gateway drops it (the path carries 65515), so vm2 has no route.
    let got = received(&cp, "er2", "msee-onprem");
    assert_eq!(got["10.3.0.0/16"].1, "rejected");
    assert!(got["10.3.0.0/16"].2.contains("R34"));
    assert!(
        vng_rows(&t, "vm2", &[])
            .iter()
            .all(|r| r.1 != "10.3.0.0/16")
    );
    assert_eq!(
        next_hop(&t, "vm2", "10.3.1.1"),
        hop("Default", "10.0.0.0/8", "None", &[])
    );
    // vm2 still reaches on-premises through its own gateway.
    assert_eq!(
        next_hop(&t, "vm2", "192.168.1.1").unwrap().3,
        s(&["10.2.0.4", "10.2.0.5"])
    );
}

#[test]
fn t15_r36_vpn_gateway_never_sends_the_default_route() {
    let base = include_str!("../../topologies/onprem-bypasses-nva.toml")
        .replace("branch_to_branch = false", "branch_to_branch = true")
        .replace(
            "  [[site.connection]]\n  gateway = \"gw-hub1\"",
            "  [[site.connection]]\n  gateway = \"gw-hub1\"\n  bgp = true",
        );
    let cp = converge(&load(&base), &[]);
    let onprem = received(&cp, "onprem", "gw-hub1");
    assert!(!onprem.contains_key("0.0.0.0/0"), "{onprem:?}");
    // R36: its VNet and the transit spoke are advertised.
    assert!(onprem.contains_key("10.1.0.0/16") && onprem.contains_key("10.11.0.0/16"));
    assert_eq!(onprem["10.11.0.0/16"].0, vec![65515]);
    // The workaround: 0/1 + 128/1 go through, with the NVA's AS in the path.
    let w = base.replace(
        "originate = [\"0.0.0.0/0\"]",
        "originate = [\"0.0.0.0/1\", \"128.0.0.0/1\"]",
    );
    let cp = converge(&load(&w), &[]);
    let onprem = received(&cp, "onprem", "gw-hub1");
    assert_eq!(onprem["0.0.0.0/1"].0, vec![65515, 65001]);
    assert_eq!(onprem["128.0.0.0/1"].0, vec![65515, 65001]);
}

/// Each prefix converged on its own (the fast path) gives the state the
/// whole table gives in synchronous rounds, on every topology in the
/// repository, under random failures and advertisements, with and without
/// route limits small enough to tear sessions down (lockstep fallback).
#[test]
fn per_prefix_convergence_equals_whole_table_rounds() {
    use vnetplane::control::bgp;
    use vnetplane::control::events::{self, Event};
    let files = topology_files();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut cases, mut torn_down) = (0, 0);
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        for limit in [None, Some(1), Some(3)] {
            let text = match limit {
                None => src.clone(),
                Some(l) => {
                    let opts = format!(
                        "route_server_max_routes_per_peer = {l}\nvpn_gateway_max_prefixes = {l}\nexpressroute_max_prefixes = {l}\nexpressroute_max_vnet_prefixes = {l}\n"
                    );
                    if src.contains("[options]") {
                        src.replace("[options]\n", &format!("[options]\n{opts}"))
                    } else {
                        format!("{src}\n[options]\n{opts}")
                    }
                }
            };
            let t = vnetplane::topology::load_str(&f.display().to_string(), &text).unwrap();
            let names: Vec<String> = bgp::all_nodes(&t).iter().map(|n| n.name(&t)).collect();
            if names.is_empty() {
                continue;
            }
            for trial in 0..12 {
                let mut evs = Vec::new();
                for _ in 0..trial % 5 {
                    let a = names[rnd(names.len())].clone();
                    let b = names[rnd(names.len())].clone();
                    let prefix: ipnet::IpNet = match rnd(4) {
                        0 => "0.0.0.0/0".parse().unwrap(),
                        1 => format!("10.{}.0.0/16", rnd(40)).parse().unwrap(),
                        2 => format!("10.{}.{}.0/24", rnd(30), rnd(3)).parse().unwrap(),
                        _ => "fd00::/64".parse().unwrap(),
                    };
                    let e = match rnd(7) {
                        0 => Event::SpeakerDown(a),
                        1 => Event::SessionDown(a, b),
                        2 | 3 => Event::Advertise { speaker: a, prefix },
                        // A burst from one speaker: prefixes alike converge
                        // once and are copied (their class), so the copies
                        // meet the whole-table rounds here too.
                        4 => {
                            let x = rnd(30);
                            for k in 0..4 {
                                evs.push(Event::Advertise {
                                    speaker: a.clone(),
                                    prefix: format!("10.{x}.{k}.0/24").parse().unwrap(),
                                });
                            }
                            Event::Advertise {
                                speaker: a,
                                prefix: format!("172.16.{x}.0/24").parse().unwrap(),
                            }
                        }
                        _ => Event::Withdraw { speaker: a, prefix },
                    };
                    evs.push(e);
                }
                let (topo, cond) = events::apply(&t, &evs).unwrap();
                let fast = bgp::converge(&topo, &cond);
                let whole = bgp::converge_whole_table(&topo, &cond);
                let why = format!("{} limit {limit:?} events {evs:?}", f.display());
                assert_eq!(
                    format!("{:?}", fast.sessions),
                    format!("{:?}", whole.sessions),
                    "{why}"
                );
                assert_eq!(fast.received, whole.received, "{why}");
                assert_eq!(fast.advertised, whole.advertised, "{why}");
                assert_eq!(fast.best, whole.best, "{why}");
                assert_eq!(fast.warnings, whole.warnings, "{why}");
                assert_eq!(
                    (fast.rounds, fast.converged),
                    (whole.rounds, whole.converged),
                    "{why}"
                );
                cases += 1;
                torn_down += usize::from(fast.warnings.iter().any(|w| w.contains("torn down")));
            }
        }
    }
    // The fallback was exercised, not only the fast path.
    assert!(
        cases > 500 && torn_down > 20,
        "{cases} cases, {torn_down} with a limit passed"
    );
}

#[test]
fn a_batch_of_events_applies_as_its_events_one_by_one() {
    // The control plane applies a debounced batch at once (advertise and
    // withdraw folded to the last one per speaker and prefix); the state
    // must be the one the events give applied one at a time, in order.
    use vnetplane::control::events::{self, Event};
    let t = builtin("multi-region-vxlan");
    let names = ["nva1", "nva2", "rs-hub1", "rs-hub2", "no-such-speaker"];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..200 {
        let evs: Vec<Event> = (0..40)
            .map(|_| {
                let a = names[rnd(names.len())].to_string();
                let b = names[rnd(4)].to_string();
                let prefix: ipnet::IpNet = format!("100.127.{}.0/24", rnd(4)).parse().unwrap();
                match rnd(8) {
                    0 => Event::SpeakerDown(a),
                    1 => Event::SpeakerUp(a),
                    2 => Event::SessionDown(a, b),
                    3 => Event::SessionUp(a, b),
                    4..=5 => Event::Advertise { speaker: a, prefix },
                    _ => Event::Withdraw { speaker: a, prefix },
                }
            })
            .collect();
        let (mut topo1, mut one) = events::apply(&t, &[]).unwrap();
        let mut failed = Vec::new();
        for (i, e) in evs.iter().enumerate() {
            if events::apply_onto(&mut topo1, &mut one, std::slice::from_ref(e)).is_err() {
                failed.push(i);
            }
        }
        let (mut topo2, mut batch) = events::apply(&t, &[]).unwrap();
        let skipped = events::apply_each(&mut topo2, &mut batch, &evs);
        assert_eq!(batch, one, "{evs:?}");
        let idx: Vec<usize> = skipped.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx, failed);
        for (i, e) in &skipped {
            assert!(e.to_string().contains("no-such-speaker"), "{i}: {e}");
        }
        // Without the bad events, the strict form gives the same.
        let good: Vec<Event> = evs
            .iter()
            .enumerate()
            .filter(|(i, _)| !failed.contains(i))
            .map(|(_, e)| e.clone())
            .collect();
        let (mut topo3, mut strict) = events::apply(&t, &[]).unwrap();
        events::apply_onto(&mut topo3, &mut strict, &good).unwrap();
        assert_eq!(strict, one);
    }
    // Large batches (a table learned at once) are merged into a speaker's
    // sets, in prefix order or not; the small batches of 100 beside sets of
    // thousands are applied change by change: the same state.
    for sorted in [true, false] {
        let mut evs: Vec<Event> = (0..6000)
            .map(|i| {
                let speaker = names[rnd(2)].to_string();
                let prefix: ipnet::IpNet = format!("100.{}.{}.0/24", 64 + i / 256, i % 256)
                    .parse()
                    .unwrap();
                if rnd(5) == 0 {
                    Event::Withdraw { speaker, prefix }
                } else {
                    Event::Advertise { speaker, prefix }
                }
            })
            .collect();
        if !sorted {
            evs.reverse();
        }
        // Flips of prefixes already in the batch, and of ones from before.
        evs.extend((0..300).map(|i| Event::Withdraw {
            speaker: names[i % 2].to_string(),
            prefix: format!("100.64.{}.0/24", i % 256).parse().unwrap(),
        }));
        let (mut topo1, mut small) = events::apply(&t, &evs[..500]).unwrap();
        for chunk in evs[500..].chunks(100) {
            events::apply_onto(&mut topo1, &mut small, chunk).unwrap();
        }
        let (mut topo2, mut bulk) = events::apply(&t, &evs[..500]).unwrap();
        events::apply_onto(&mut topo2, &mut bulk, &evs[500..]).unwrap();
        assert_eq!(bulk, small);
        assert!(bulk.advertised.values().map(|s| s.len()).sum::<usize>() > 4000);
    }
    // One speaker's table in order (a large batch is read as ordered until
    // an event is not), then flips of prefixes from the start of the same
    // batch: the last event of each prefix wins, as in small batches.
    let adv = |i: usize, advertise: bool| {
        let speaker = "nva1".to_string();
        let prefix: ipnet::IpNet = format!("100.{}.{}.0/24", 64 + i / 256, i % 256)
            .parse()
            .unwrap();
        if advertise {
            Event::Advertise { speaker, prefix }
        } else {
            Event::Withdraw { speaker, prefix }
        }
    };
    let mut evs: Vec<Event> = (0..5000).map(|i| adv(i, true)).collect();
    evs.extend((0..100).map(|i| adv(i * 7, false)));
    evs.extend((0..10).map(|i| adv(i * 7, true)));
    let (mut topo1, mut small) = events::apply(&t, &[]).unwrap();
    for chunk in evs.chunks(100) {
        events::apply_onto(&mut topo1, &mut small, chunk).unwrap();
    }
    let (_, bulk) = events::apply(&t, &evs).unwrap();
    assert_eq!(bulk, small);
    let nva1 = vnetplane::control::bgp::Node::by_name(&t, "nva1").unwrap();
    assert_eq!(bulk.advertised[&nva1].len(), 5000 - 90);
    assert_eq!(bulk.withdrawn[&nva1].len(), 90);
}

/// R3 revised: with a BGP 0/0, private destinations nobody holds follow it
/// (the reserved 10/8 `None` route is gone), and the documented tables come
/// back with `bgp_default_removes_reserved = false`.
#[test]
fn a_bgp_default_takes_private_destinations_too() {
    let t = builtin("nva-default-loop");
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.50.0.1"),
        hop(
            "VirtualNetworkGateway",
            "0.0.0.0/0",
            "VirtualNetworkGateway",
            &["10.1.2.4"]
        )
    );
    let documented = load(&format!(
        "{}\n[options]\nbgp_default_removes_reserved = false\n",
        include_str!("../../topologies/nva-default-loop.toml")
    ));
    assert_eq!(
        next_hop(&documented, "spoke11-vm", "10.50.0.1"),
        hop("Default", "10.0.0.0/8", "None", &[])
    );
    assert!(rows(&documented, "spoke11-vm").contains(&(
        "Default".into(),
        "Invalid".into(),
        "0.0.0.0/0".into(),
        "Internet".into(),
        vec![]
    )));
}
