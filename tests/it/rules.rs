//! Single rules of SPEC.md on small variations of scenario 1.

use super::util::*;
use vnetplane::control::effective::{self, Verdict};

const BASE: &str = include_str!("../../topologies/hub-spoke-vng.toml");

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn r16_peering_system_route_beats_more_specific_and_equal_gateway_routes() {
    // onprem (wrongly) also advertises a /24 inside spoke11 and spoke11's exact
    // range: the hub VM keeps using the peering route (R16), the same-prefix
    // gateway route is Invalid, the more specific one is ignored.
    let src = BASE.replace(
        "prefixes = [\"192.168.0.0/16\"]",
        "prefixes = [\"192.168.0.0/16\", \"10.11.5.0/24\", \"10.11.0.0/16\"]",
    );
    let t = load(&src);
    assert_eq!(
        next_hop(&t, "hub1-vm", "10.11.5.9"),
        hop("Default", "10.11.0.0/16", "VNetPeering", &[])
    );
    assert_eq!(
        next_hop(&t, "hub1-vm", "10.11.1.4"),
        hop("Default", "10.11.0.0/16", "VNetPeering", &[])
    );
    let r = rows(&t, "hub1-vm");
    assert!(r.contains(&(
        "VirtualNetworkGateway".into(),
        "Invalid".into(),
        "10.11.0.0/16".into(),
        "VirtualNetworkGateway".into(),
        vec!["10.1.0.4".into(), "10.1.0.5".into()]
    )));
    assert!(r.contains(&(
        "Default".into(),
        "Active".into(),
        "10.11.0.0/16".into(),
        "VNetPeering".into(),
        vec![]
    )));
    // The lookup explains why the /24 lost.
    let tab = table(&t, "hub1-vm");
    let d = effective::lookup(&tab, "10.11.5.9".parse().unwrap());
    let lost = d
        .candidates
        .iter()
        .find(|c| tab.routes[c.index].prefix.to_string() == "10.11.5.0/24")
        .unwrap();
    assert!(
        matches!(lost.verdict, Verdict::IgnoredForSystemRoute { .. }),
        "{:?}",
        lost.verdict
    );
    // A UDR still overrides the system route (R16: UDRs take part in LPM).
    let src2 = src.replace(
        "  name = \"vm\"\n  prefix = \"10.1.3.0/24\"",
        "  name = \"vm\"\n  prefix = \"10.1.3.0/24\"\n  route_table = \"rt\"",
    ) + "\n[[route_table]]\nname = \"rt\"\n  [[route_table.route]]\n  name = \"x\"\n  prefix = \"10.11.5.0/24\"\n  next_hop_type = \"None\"\n";
    let t2 = load(&src2);
    assert_eq!(
        next_hop(&t2, "hub1-vm", "10.11.5.9"),
        hop("User", "10.11.5.0/24", "None", &[])
    );
}

#[test]
fn r10_propagation_off_removes_gateway_routes_only() {
    let src = BASE.replace(
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"",
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"\n  route_table = \"rt\"",
    ) + "\n[[route_table]]\nname = \"rt\"\npropagate_gateway_routes = false\n";
    let t = load(&src);
    assert!(
        rows(&t, "spoke11-vm")
            .iter()
            .all(|r| r.0 != "VirtualNetworkGateway")
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "192.168.1.10"),
        hop("Default", "192.168.0.0/16", "None", &[])
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.1.3.4"),
        hop("Default", "10.1.0.0/16", "VNetPeering", &[])
    );
    // The hub still has them.
    assert!(next_hop(&t, "hub1-vm", "192.168.1.10").unwrap().0 == "VirtualNetworkGateway");
}

#[test]
fn r10_warns_when_gateway_subnet_propagation_is_off() {
    let src = BASE.replace(
        "  name = \"GatewaySubnet\"\n  prefix = \"10.1.0.0/27\"",
        "  name = \"GatewaySubnet\"\n  prefix = \"10.1.0.0/27\"\n  route_table = \"rt\"",
    ) + "\n[[route_table]]\nname = \"rt\"\npropagate_gateway_routes = false\n";
    let t = load(&src);
    assert!(
        t.warnings
            .iter()
            .any(|w| w.message.contains("R10") && w.object.contains("GatewaySubnet")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn r6_one_sided_peering_adds_no_routes_and_warns() {
    // Drop the spoke's side: the hub's side stays Initiated.
    let src = BASE.replace(
        "[[peering]]\nvnet = \"spoke11\"\nremote = \"hub1\"\nallow_forwarded_traffic = true\nuse_remote_gateways = true\n",
        "",
    );
    assert_ne!(src, BASE);
    let t = load(&src);
    assert!(t.warnings.iter().any(|w| w.message.contains("Initiated")));
    assert!(rows(&t, "hub1-vm").iter().all(|r| r.2 != "10.11.0.0/16"));
    assert!(
        rows(&t, "spoke11-vm")
            .iter()
            .all(|r| r.2 != "10.1.0.0/16" && r.0 != "VirtualNetworkGateway")
    );
}

#[test]
fn r3_user_default_removes_reserved_routes_and_172_16_is_an_option() {
    let udr = "\n[[route_table]]\nname = \"rt\"\n  [[route_table.route]]\n  name = \"d\"\n  prefix = \"0.0.0.0/0\"\n  next_hop_type = \"Internet\"\n";
    let src = BASE.replace(
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"",
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"\n  route_table = \"rt\"",
    ) + udr;
    let t = load(&src);
    assert!(
        rows(&t, "spoke11-vm").iter().all(|r| r.3 != "None"),
        "{:?}",
        rows(&t, "spoke11-vm")
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.50.0.1"),
        hop("User", "0.0.0.0/0", "Internet", &[])
    );
    // The documented four (172.16/12 listed outside it too), with the doc
    // example's user 0/0 that leaves 172.16/12 alone.
    let keep = format!(
        "{src}\n[options]\nudr_default_removes_172_16 = false\nreserved_172_16_outside = true\n"
    );
    let t = load(&keep);
    let none: Vec<String> = rows(&t, "spoke11-vm")
        .into_iter()
        .filter(|r| r.3 == "None")
        .map(|r| r.2)
        .collect();
    assert_eq!(none, vec!["172.16.0.0/12".to_string()]);
    // R3 revised (published dumps): a user 0/0 → None keeps the reserved
    // None routes; a user 0/0 → VirtualAppliance removes them and leaves the
    // Internet default Invalid.
    let to_none = src.replace("next_hop_type = \"Internet\"", "next_hop_type = \"None\"");
    let t = load(&to_none);
    let none: Vec<String> = rows(&t, "spoke11-vm")
        .into_iter()
        .filter(|r| r.0 == "Default" && r.3 == "None")
        .map(|r| r.2)
        .collect();
    assert_eq!(none, s(&["10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16"]));
    let to_nva = src.replace(
        "next_hop_type = \"Internet\"",
        "next_hop_type = \"VirtualAppliance\"\n  next_hop_ip = \"10.1.3.4\"",
    );
    let t = load(&to_nva);
    let r = rows(&t, "spoke11-vm");
    assert!(r.iter().all(|x| x.3 != "None"), "{r:?}");
    assert!(
        r.contains(&(
            "Default".into(),
            "Invalid".into(),
            "0.0.0.0/0".into(),
            "Internet".into(),
            vec![]
        )),
        "{r:?}"
    );
}

#[test]
fn r4_extra_none_and_r5_hide_reserved_options() {
    let t = load(&with(
        "[options]\nextra_none_prefixes = [\"198.18.0.0/15\"]\n",
    ));
    assert_eq!(
        next_hop(&t, "spoke11-vm", "198.18.1.1"),
        hop("Default", "198.18.0.0/15", "None", &[])
    );
    let t = load(&with(
        "[options]\nhide_reserved_none_with_gateway_routes = true\n",
    ));
    // NICs with gateway routes show no reserved None routes: 10.50.0.1 goes to the Internet.
    assert!(rows(&t, "spoke11-vm").iter().all(|r| r.3 != "None"));
    assert_eq!(
        next_hop(&t, "spoke11-vm", "10.50.0.1"),
        hop("Default", "0.0.0.0/0", "Internet", &[])
    );
}

#[test]
fn r19_platform_addresses_are_not_routed() {
    let t = builtin("spec-t16-ip-forwarding");
    let tab = table(&t, "app-vm");
    for ip in ["168.63.129.16", "169.254.169.254"] {
        let d = effective::lookup(&tab, ip.parse().unwrap());
        assert!(d.platform && d.selected.is_none());
    }
}

#[test]
fn r39_expressroute_beats_vpn_for_the_same_prefix_but_lpm_first() {
    let src = with(
        r#"
[[gateway]]
name = "er-hub1"
vnet = "hub1"
kind = "expressroute"
ips = ["10.1.0.6", "10.1.0.7"]

[[site]]
name = "dc2"
asn = 65200
prefixes = ["192.168.0.0/16", "172.20.0.0/16"]
  [[site.connection]]
  gateway = "er-hub1"
  bgp = true
"#,
    );
    let t = load(&src);
    // Same /16 from both: ExpressRoute Active, VPN Invalid.
    assert_eq!(
        next_hop(&t, "hub1-vm", "192.168.1.10"),
        hop(
            "VirtualNetworkGateway",
            "192.168.0.0/16",
            "VirtualNetworkGateway",
            &["10.1.0.6", "10.1.0.7"]
        )
    );
    let r = rows(&t, "hub1-vm");
    assert!(r.contains(&(
        "VirtualNetworkGateway".into(),
        "Invalid".into(),
        "192.168.0.0/16".into(),
        "VirtualNetworkGateway".into(),
        vec!["10.1.0.4".into(), "10.1.0.5".into()]
    )));
    // Transit carries both gateways' routes to the spoke.
    assert_eq!(
        next_hop(&t, "spoke11-vm", "172.20.1.1"),
        hop(
            "VirtualNetworkGateway",
            "172.20.0.0/16",
            "VirtualNetworkGateway",
            &["10.1.0.6", "10.1.0.7"]
        )
    );
}

#[test]
fn vpn_gateway_next_hop_ip_follows_r8() {
    // Single-instance VPN gateway with a public IP: routes show the public IP.
    let src = BASE.replace(
        "active_active = true\nips = [\"10.1.0.4\", \"10.1.0.5\"]",
        "ips = [\"10.1.0.4\"]\npublic_ip = \"20.50.0.1\"",
    );
    let t = load(&src);
    assert_eq!(
        next_hop(&t, "spoke11-vm", "192.168.1.10"),
        hop(
            "VirtualNetworkGateway",
            "192.168.0.0/16",
            "VirtualNetworkGateway",
            &["20.50.0.1"]
        )
    );
    // A BGP connection adds the host route of the site's BGP peer address (R8).
    let t = load(&BASE.replace("bgp = false", "bgp = true"));
    assert!(
        rows(&t, "spoke11-vm")
            .iter()
            .any(|r| r.2 == "192.168.255.1/32" && r.0 == "VirtualNetworkGateway")
    );
}

#[test]
fn udr_virtual_network_gateway_points_at_the_vpn_gateway() {
    let src = BASE.replace(
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"",
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"\n  route_table = \"rt\"",
    ) + "\n[[route_table]]\nname = \"rt\"\n  [[route_table.route]]\n  name = \"d\"\n  prefix = \"0.0.0.0/0\"\n  next_hop_type = \"VirtualNetworkGateway\"\n";
    let t = load(&src);
    assert_eq!(
        next_hop(&t, "spoke11-vm", "8.8.8.8"),
        hop(
            "User",
            "0.0.0.0/0",
            "VirtualNetworkGateway",
            &["10.1.0.4", "10.1.0.5"]
        )
    );
}

#[test]
fn computation_is_deterministic() {
    for (name, _) in vnetplane::topology::BUILTIN {
        let a = builtin(name);
        let b = builtin(name);
        for n in &a.nics {
            assert_eq!(table(&a, &n.name), table(&b, &n.name));
        }
    }
}

/// R49: the documentation drops NVA-forwarded traffic over a peering that
/// does not allow forwarded traffic; a published lab delivered it. The
/// documented check is the default, `enforce_allow_forwarded_traffic =
/// false` relaxes it, and `verify` names the flows whose verdict depends on
/// it.
#[test]
fn r49_allow_forwarded_traffic_is_checked_by_default_and_can_be_relaxed() {
    let src = include_str!("../../topologies/spoke-to-spoke-udr.toml").replace(
        "vnet = \"spoke12\"\nremote = \"hub1\"\nallow_forwarded_traffic = true",
        "vnet = \"spoke12\"\nremote = \"hub1\"\nallow_forwarded_traffic = false",
    );
    assert!(src.contains("allow_forwarded_traffic = false"));
    let t = load(&src);
    assert_eq!(
        walk_tcp(&t, &[], "spoke11-vm", "10.12.1.4").verdict,
        vnetplane::dataplane::Verdict::Dropped {
            at: "nic nva1".into(),
            reason: vnetplane::dataplane::DropReason::PeeringForwardedNotAllowed
        }
    );
    let r = vnetplane::verify::verify(&t, &[]).unwrap();
    let w = r
        .warnings()
        .find(|f| f.kind == "forwarded-traffic" && f.from == "nic spoke11-vm")
        .unwrap_or_else(|| panic!("{:?}", r.findings));
    assert!(w.detail.contains("10.12.1.4"), "{}", w.detail);
    let relaxed = load(&format!(
        "{src}\n[options]\nenforce_allow_forwarded_traffic = false\n"
    ));
    assert_eq!(
        walk_tcp(&relaxed, &[], "spoke11-vm", "10.12.1.4").verdict,
        vnetplane::dataplane::Verdict::Delivered {
            at: "nic spoke12-vm".into()
        }
    );
}

/// R51 revised (published tables): a VirtualAppliance next hop whose VM is
/// stopped or deallocated, or whose IP no NIC holds, shows next-hop type
/// `None` in the effective routes of the NICs that hold the route, and
/// traffic drops there. A VM's power state is in the file and in events;
/// an NVA whose VM is not running speaks no BGP; a stopped VM receives
/// nothing.
#[test]
fn r51_unusable_appliance_next_hops_show_none() {
    let src = include_str!("../../topologies/spoke-to-spoke-udr.toml");
    let user = |t: &vnetplane::topology::Topology| {
        rows(t, "spoke11-vm")
            .into_iter()
            .find(|r| r.0 == "User")
            .map(|r| (r.3, r.4))
    };
    let running = load(src);
    assert_eq!(
        user(&running),
        Some(("VirtualAppliance".into(), s(&["10.1.2.4"])))
    );
    for state in ["stopped", "deallocated"] {
        let t = load(&src.replacen(
            "ip_forwarding = true",
            &format!("ip_forwarding = true\npower = \"{state}\""),
            1,
        ));
        assert_eq!(t.nic(t.nic_by_name("nva1").unwrap()).power.as_str(), state);
        assert_eq!(user(&t), Some(("None".into(), vec![])), "{state}");
        assert!(
            t.warnings
                .iter()
                .any(|w| w.message.contains(state) && w.message.contains("R51"))
        );
        assert_eq!(
            next_hop(&t, "spoke11-vm", "10.12.1.4"),
            hop("User", "10.0.0.0/8", "None", &[])
        );
    }
    // The same as events, and back.
    let stopped = table_after(&running, "spoke11-vm", &["vm-stop nva1"]);
    assert!(
        stopped
            .routes
            .iter()
            .any(|r| r.source.as_str() == "User" && r.next_hop_type.as_str() == "None")
    );
    let again = table_after(
        &running,
        "spoke11-vm",
        &["vm-deallocate nva1", "vm-start nva1"],
    );
    assert!(
        again
            .routes
            .iter()
            .any(|r| r.source.as_str() == "User" && r.next_hop_type.as_str() == "VirtualAppliance")
    );
    // A next hop nobody holds: accepted with a warning, shown as None.
    let t = load(&src.replace("next_hop_ip = \"10.1.2.4\"", "next_hop_ip = \"10.1.2.99\""));
    assert!(
        t.warnings
            .iter()
            .any(|w| w.message.contains("10.1.2.99") && w.message.contains("None"))
    );
    assert_eq!(user(&t), Some(("None".into(), vec![])));
    // A stopped VM receives nothing.
    let tr = walk_tcp(&running, &["vm-stop spoke12-vm"], "spoke11-vm", "10.12.1.4");
    assert_eq!(
        tr.verdict,
        vnetplane::dataplane::Verdict::Dropped {
            at: "nic spoke12-vm".into(),
            reason: vnetplane::dataplane::DropReason::VmNotRunning
        }
    );
    // An NVA whose VM is stopped speaks no BGP: the Route Server keeps nva2.
    let rs = builtin("hub-rs-two-nvas");
    assert_eq!(
        vng_rows(&rs, "spoke11-vm", &["vm-stop nva1"])
            .iter()
            .find(|r| r.1 == "0.0.0.0/0")
            .map(|r| r.2.clone()),
        Some(s(&["10.1.2.5"]))
    );
    // One power state per VM.
    let e = vnetplane::topology::load_str(
        "t.toml",
        &src.replacen(
            "ip_forwarding = true",
            "ip_forwarding = true\nvm = \"shared\"\npower = \"stopped\"",
            1,
        )
        .replacen(
            "name = \"hub1-vm\"",
            "name = \"hub1-vm\"\nvm = \"shared\"",
            1,
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("field `power`") && e.contains("one power state"),
        "{e}"
    );
}

/// An NVA with several NICs leaves through the NIC its OS routing resolves
/// the next hop to (the connected subnet holding it), and a static route
/// (administrative distance 1) beats the same prefix learned over eBGP
/// (20): hub1-vm's Internet traffic enters nva1 on its trusted NIC and
/// leaves on the untrusted one. Without the static, the BGP 0/0 from nva2
/// wins: its next hop (10.1.2.5) is in the trusted subnet, so the packet
/// leaves through the trusted NIC, whose subnet's routes (0/0 → Internet)
/// then decide: the OS picks the NIC, the SDN the path (R42).
#[test]
fn a_multi_nic_nva_leaves_through_the_nic_its_routing_picks() {
    let src = include_str!("../fixtures/nva-two-nics.toml");
    let t = load(src);
    let hops = |t: &vnetplane::topology::Topology| {
        let tr = walk_tcp(t, &[], "hub1-vm", "198.51.100.10");
        (
            tr.hops
                .iter()
                .map(|h| format!("{} ({})", h.node, h.kind))
                .collect::<Vec<_>>(),
            tr.verdict.kind(),
        )
    };
    let (path, verdict) = hops(&t);
    assert_eq!(
        path,
        s(&[
            "nic hub1-vm (nic-egress)",
            "nic nva1 (nic-ingress)",
            "nva nva1 (nva)",
            "nic nva1-out (nic-egress)"
        ])
    );
    assert_eq!(verdict, "delivered");
    // nva1 does hold the BGP 0/0 (from nva2 through the Route Server).
    let cp = converge(&t, &[]);
    assert_eq!(
        received(&cp, "nva1", "rs-hub1")
            .get("0.0.0.0/0")
            .map(|r| r.1.clone()),
        Some("best".to_string())
    );
    let no_static = load(&src.replacen(
        "  [[nva.route]]\n  prefix = \"0.0.0.0/0\"\n  via = \"10.1.4.1\"\n",
        "",
        1,
    ));
    let (path, verdict) = hops(&no_static);
    assert_eq!(verdict, "delivered");
    assert_eq!(
        path.last().map(String::as_str),
        Some("nic nva1 (nic-egress)"),
        "{path:?}"
    );
}

/// ARM's spellings: `disable_bgp_route_propagation = true` is
/// `propagate_gateway_routes = false` (R10), `VpnGateway` is the VPN/NVA
/// routing preference (R31); two spellings that disagree are an error.
#[test]
fn arm_spellings_are_accepted() {
    let ours = builtin("gateway-propagation-off");
    let src = include_str!("../../topologies/gateway-propagation-off.toml");
    assert!(src.contains("propagate_gateway_routes = false"));
    let arm = load(&src.replace(
        "propagate_gateway_routes = false",
        "disable_bgp_route_propagation = true",
    ));
    assert_eq!(rows(&arm, "spoke11-vm"), rows(&ours, "spoke11-vm"));
    let e = vnetplane::topology::load_str(
        "t.toml",
        &src.replace(
            "propagate_gateway_routes = false",
            "propagate_gateway_routes = false\ndisable_bgp_route_propagation = false",
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("field `disable_bgp_route_propagation`"), "{e}");
    let pref = load(&include_str!("../../topologies/example.toml").replace(
        "routing_preference = \"ExpressRoute\"",
        "routing_preference = \"VpnGateway\"",
    ));
    assert_eq!(
        pref.route_servers[0].routing_preference,
        vnetplane::topology::RoutingPreference::VpnNva
    );
}

/// R51 revised (published tables): a Route Server route whose next hop the
/// NIC's VNet cannot reach shows next-hop type None there, and drops. Here
/// nva2 sits in hub2, which is peered with hub1 but not with spoke11: hub1's
/// NICs reach 10.2.2.4 over the global peering, spoke11's cannot.
#[test]
fn r51_route_server_next_hop_unreachable_from_the_vnet_shows_none() {
    let src = r#"
[[vnet]]
name = "hub1"
region = "westeurope"
address_space = ["10.1.0.0/16"]
  [[vnet.subnet]]
  name = "RouteServerSubnet"
  prefix = "10.1.1.0/27"
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.1.3.0/24"
[[vnet]]
name = "hub2"
region = "northeurope"
address_space = ["10.2.0.0/16"]
  [[vnet.subnet]]
  name = "nva"
  prefix = "10.2.2.0/24"
[[vnet]]
name = "spoke11"
region = "westeurope"
address_space = ["10.11.0.0/16"]
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.11.1.0/24"
[[nic]]
name = "hub1-vm"
vnet = "hub1"
subnet = "vm"
ips = ["10.1.3.4"]
[[nic]]
name = "spoke11-vm"
vnet = "spoke11"
subnet = "vm"
ips = ["10.11.1.4"]
[[nic]]
name = "nva2"
vnet = "hub2"
subnet = "nva"
ips = ["10.2.2.4"]
ip_forwarding = true
[[peering]]
vnet = "hub1"
remote = "hub2"
allow_forwarded_traffic = true
[[peering]]
vnet = "hub2"
remote = "hub1"
allow_forwarded_traffic = true
[[peering]]
vnet = "hub1"
remote = "spoke11"
allow_gateway_transit = true
allow_forwarded_traffic = true
[[peering]]
vnet = "spoke11"
remote = "hub1"
use_remote_gateways = true
allow_forwarded_traffic = true
[[route_server]]
name = "rs-hub1"
vnet = "hub1"
ips = ["10.1.1.4", "10.1.1.5"]
[[nva]]
name = "nva2"
nics = ["nva2"]
asn = 65002
  [[nva.bgp]]
  peer = "rs-hub1"
  originate = ["172.20.0.0/16"]
"#;
    let t = load(src);
    assert!(
        vng_rows(&t, "hub1-vm", &[]).contains(&(
            "Active".into(),
            "172.20.0.0/16".into(),
            s(&["10.2.2.4"])
        )),
        "{:?}",
        vng_rows(&t, "hub1-vm", &[])
    );
    assert_eq!(
        next_hop(&t, "spoke11-vm", "172.20.1.10"),
        hop("VirtualNetworkGateway", "172.20.0.0/16", "None", &[])
    );
    let tr = walk_tcp(&t, &[], "spoke11-vm", "172.20.1.10");
    assert_eq!(
        tr.verdict,
        vnetplane::dataplane::Verdict::Dropped {
            at: "nic spoke11-vm".into(),
            reason: vnetplane::dataplane::DropReason::RouteNone
        }
    );
    // The same when spoke11's table is split against the hub's shared
    // layer (how large estates compile).
    let cp = converge(&t, &[]);
    let sub = t.nic(t.nic_by_name("spoke11-vm").unwrap()).subnet;
    let sources: Vec<_> = vnetplane::control::effective::subnet_sources(&t, sub)
        .into_iter()
        .map(|x| x.0)
        .collect();
    let layer = vnetplane::control::effective::InjectedLayer::new(&t, &cp.injections, &sources);
    let (own, _) = vnetplane::control::effective::split_table(&t, &layer, sub);
    assert!(
        own.routes
            .iter()
            .any(|r| r.prefix.to_string() == "172.20.0.0/16" && r.next_hop_type.as_str() == "None"),
        "{:?}",
        own.routes
    );
    // Peer spoke11 with hub2 as well: the next hop is reachable again.
    let peered = load(&format!(
        "{src}\n[[peering]]\nvnet = \"spoke11\"\nremote = \"hub2\"\n[[peering]]\nvnet = \"hub2\"\nremote = \"spoke11\"\n"
    ));
    assert_eq!(
        next_hop(&peered, "spoke11-vm", "172.20.1.10"),
        hop(
            "VirtualNetworkGateway",
            "172.20.0.0/16",
            "VirtualNetworkGateway",
            &["10.2.2.4"]
        )
    );
}

/// Subnet peering (ARM `peerCompleteVnets: false`, `localSubnetNames`,
/// `remoteSubnetNames`; Microsoft's subnet peering article and its
/// effective-route outputs): only the listed subnets of each side are
/// peered. A listed subnet's NICs get a peering route per listed remote
/// subnet (its prefix, not the remote VNet's range); other subnets get
/// none, and traffic outside the listed pairs finds no peering route.
#[test]
fn subnet_peering_peers_only_the_listed_subnets() {
    let src = r#"
[[vnet]]
name = "left"
region = "westeurope"
address_space = ["10.0.0.0/16"]
  [[vnet.subnet]]
  name = "front"
  prefix = "10.0.1.0/24"
  [[vnet.subnet]]
  name = "app"
  prefix = "10.0.2.0/24"
[[vnet]]
name = "right"
region = "westeurope"
address_space = ["10.1.0.0/16"]
  [[vnet.subnet]]
  name = "web"
  prefix = "10.1.1.0/24"
  [[vnet.subnet]]
  name = "db"
  prefix = "10.1.2.0/24"
[[nic]]
name = "front-vm"
vnet = "left"
subnet = "front"
ips = ["10.0.1.4"]
[[nic]]
name = "app-vm"
vnet = "left"
subnet = "app"
ips = ["10.0.2.4"]
[[nic]]
name = "web-vm"
vnet = "right"
subnet = "web"
ips = ["10.1.1.4"]
[[nic]]
name = "db-vm"
vnet = "right"
subnet = "db"
ips = ["10.1.2.4"]
[[peering]]
vnet = "left"
remote = "right"
local_subnets = ["front"]
remote_subnets = ["web"]
[[peering]]
vnet = "right"
remote = "left"
local_subnets = ["web"]
remote_subnets = ["front"]
"#;
    let t = load(src);
    let peering_rows = |nic: &str| -> Vec<String> {
        rows(&t, nic)
            .into_iter()
            .filter(|r| r.3 == "VNetPeering")
            .map(|r| r.2)
            .collect()
    };
    assert_eq!(peering_rows("front-vm"), s(&["10.1.1.0/24"]));
    assert_eq!(peering_rows("web-vm"), s(&["10.0.1.0/24"]));
    assert!(peering_rows("app-vm").is_empty());
    assert!(peering_rows("db-vm").is_empty());
    let delivered = |from: &str, dst: &str| {
        matches!(
            walk_tcp(&t, &[], from, dst).verdict,
            vnetplane::dataplane::Verdict::Delivered { .. }
        )
    };
    assert!(delivered("front-vm", "10.1.1.4"));
    assert!(delivered("web-vm", "10.0.1.4"));
    assert!(!delivered("front-vm", "10.1.2.4"));
    assert!(!delivered("app-vm", "10.1.1.4"));
    // The full peering, for contrast: the remote VNet's range everywhere.
    let full = load(
        &src.replace("local_subnets = [\"front\"]\n", "")
            .replace("remote_subnets = [\"web\"]\n", "")
            .replace("local_subnets = [\"web\"]\n", "")
            .replace("remote_subnets = [\"front\"]\n", ""),
    );
    let r: Vec<_> = rows(&full, "app-vm")
        .into_iter()
        .filter(|r| r.3 == "VNetPeering")
        .map(|r| r.2)
        .collect();
    assert_eq!(r, s(&["10.1.0.0/16"]));
    // A subnet the VNet does not have is an error naming the field.
    let err = vnetplane::topology::load_str(
        "t.toml",
        &src.replace("remote_subnets = [\"web\"]", "remote_subnets = [\"nope\"]"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("remote_subnets") && err.contains("nope"),
        "{err}"
    );
}
