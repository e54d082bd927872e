//! BGP sessions past one rule each: Route Server instances (R21, R26),
//! route policy on NVA sessions, NVAs peering with VPN gateways, sessions
//! from loopbacks.

use super::util::*;
use vnetplane::dataplane::{Header, PROTO_TCP, Packet, Start, Verdict, World};
use vnetplane::topology::SiteId;

const S2: &str = include_str!("../../topologies/nva-default-loop.toml");

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
