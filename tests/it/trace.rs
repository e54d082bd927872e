//! Packet walks through the hop machine, scenario by scenario, against the
//! expected outcomes of SCENARIOS.md and SPEC.md.

use vnetplane::dataplane::{Header, PROTO_TCP, Packet, Start, Trace, Verdict, World};
use vnetplane::topology::{SiteId, Topology};

use super::util::*;

#[derive(Debug)]
struct Walked {
    verdict: String,
    at: String,
    reason: String,
    nodes: Vec<String>,
    encaps: Vec<String>,
    decaps: Vec<String>,
    loop_route: String,
}

fn walk_flow(t: &Topology, events: &[&str], from: &str, dst: &str, sport: u16) -> Trace {
    let nic = t.nic_by_name(from).unwrap();
    let dst: std::net::IpAddr = dst.parse().unwrap();
    let src = *t
        .nic(nic)
        .ips
        .iter()
        .find(|ip| ip.is_ipv4() == dst.is_ipv4())
        .unwrap();
    walk_start(
        t,
        events,
        Start::Nic(nic),
        Header {
            src,
            dst,
            proto: PROTO_TCP,
            sport,
            dport: 443,
        },
    )
}

/// One walk after `events`.
fn walk_start(t: &Topology, events: &[&str], start: Start, header: Header) -> Trace {
    let cp = converge(t, events);
    World::new(&cp).walk_from(start, Packet::new(header))
}

fn walk_flow_summary(t: &Topology, events: &[&str], from: &str, dst: &str, sport: u16) -> Walked {
    walked(&walk_flow(t, events, from, dst, sport), |h| h.node.clone())
}

/// The facts tests compare about a walk; `label` names each hop.
fn walked(tr: &Trace, label: impl Fn(&vnetplane::dataplane::Hop) -> String) -> Walked {
    let (reason, loop_route) = match &tr.verdict {
        Verdict::Dropped { reason, .. } => (reason.code().to_string(), String::new()),
        Verdict::Loop { route, .. } => ("loop".to_string(), route.clone()),
        Verdict::Delivered { .. } => (String::new(), String::new()),
    };
    Walked {
        verdict: tr.verdict.kind().to_string(),
        at: tr.verdict.at().to_string(),
        reason,
        nodes: tr.hops.iter().map(label).collect(),
        encaps: tr.hops.iter().filter_map(|h| h.encap.clone()).collect(),
        decaps: tr.hops.iter().filter_map(|h| h.decap.clone()).collect(),
        loop_route,
    }
}

fn walk(t: &Topology, from: &str, dst: &str) -> Walked {
    walk_flow_summary(t, &[], from, dst, 49152)
}

/// spoke11-vm's packet to spoke21 through the VXLAN tunnel of
/// multi-region-vxlan, up to nva2's NIC sending it on: nva1 encapsulates,
/// nva2 decapsulates (one hop) and routes the inner packet (another).
const THROUGH_THE_TUNNEL: [&str; 8] = [
    "nic spoke11-vm",
    "nic nva1",
    "nva nva1",
    "nic nva1",
    "nic nva2",
    "nva nva2",
    "nva nva2",
    "nic nva2",
];

fn through(w: &Walked, node: &str) -> bool {
    w.nodes.iter().any(|n| n == node)
}

#[test]
fn s1_hub_spoke_vng_traces() {
    let t = builtin("hub-spoke-vng");
    let w = walk(&t, "spoke11-vm", "192.168.1.10");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "site onprem")
    );
    assert_eq!(
        w.nodes,
        ["nic spoke11-vm", "gateway gw-hub1", "site onprem"]
    );
    let w = walk(&t, "spoke11-vm", "198.51.100.10");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "internet")
    );
    let w = walk(&t, "spoke11-vm", "10.1.3.4");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "nic hub1-vm")
    );
    let w = walk(&t, "spoke11-vm", "10.50.0.1");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str(), w.reason.as_str()),
        ("dropped", "nic spoke11-vm", "route-none")
    );
    // An address in the hub that nobody owns (R51).
    let w = walk(&t, "spoke11-vm", "10.1.3.99");
    assert_eq!(
        (w.verdict.as_str(), w.reason.as_str()),
        ("dropped", "no-owner")
    );
}

#[test]
fn s2_s3_default_route_loop_and_fix() {
    let w = walk(&builtin("nva-default-loop"), "spoke11-vm", "198.51.100.10");
    assert_eq!(w.verdict, "loop");
    assert_eq!(w.at, "nic nva1");
    assert!(
        w.loop_route.contains("0.0.0.0/0") && w.loop_route.contains("10.1.2.4"),
        "{}",
        w.loop_route
    );
    let w = walk(
        &builtin("nva-default-loop-fixed"),
        "spoke11-vm",
        "198.51.100.10",
    );
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "internet")
    );
    assert!(through(&w, "nva nva1"));
}

#[test]
fn s4_s5_s16_onprem_path_and_the_waypoint() {
    // Scenario 4: the /16 beats the NVA's 0/0: nva1 is bypassed.
    let w = walk(
        &builtin("onprem-bypasses-nva"),
        "spoke11-vm",
        "192.168.1.10",
    );
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "site onprem")
    );
    assert!(!through(&w, "nva nva1"));
    // Scenario 5 and 16: through nva1, then the gateway.
    for name in ["onprem-via-nva-udr", "gateway-propagation-off"] {
        let w = walk(&builtin(name), "spoke11-vm", "192.168.1.10");
        assert_eq!(
            (w.verdict.as_str(), w.at.as_str()),
            ("delivered", "site onprem"),
            "{name}"
        );
        assert_eq!(
            w.nodes,
            [
                "nic spoke11-vm",
                "nic nva1",
                "nva nva1",
                "nic nva1",
                "gateway gw-hub1",
                "site onprem"
            ],
            "{name}"
        );
    }
}

#[test]
fn s6_overlay_to_the_cpe_bypasses_the_looped_route() {
    let w = walk(&builtin("onprem-overlay"), "spoke11-vm", "192.168.1.10");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "site onprem")
    );
    assert_eq!(w.encaps.len(), 1);
    assert!(
        w.encaps[0].contains("vni 10001")
            && w.encaps[0].contains("10.1.2.4")
            && w.encaps[0].contains("192.168.255.1"),
        "{:?}",
        w.encaps
    );
    assert_eq!(w.decaps.len(), 1);
    assert!(through(&w, "gateway gw-hub1"));
}

#[test]
fn s7_multi_region_loop_at_nva1() {
    let w = walk(&builtin("multi-region-loop"), "spoke11-vm", "10.21.1.4");
    assert_eq!((w.verdict.as_str(), w.at.as_str()), ("loop", "nic nva1"));
    assert!(
        w.loop_route.contains("10.21.0.0/16") && w.loop_route.contains("10.1.2.4"),
        "{}",
        w.loop_route
    );
    // Found by the repeated state, long before TTL would run out.
    assert!(w.nodes.len() < 8, "{:?}", w.nodes);
}

#[test]
fn s8_s9_overlays_deliver_both_ways() {
    for (name, enc, back) in [
        ("multi-region-vxlan", "VXLAN vni 10021", "VXLAN vni 10021"),
        (
            "multi-region-ipsec",
            "ESP spi 0x1001 in UDP 4500",
            "ESP spi 0x2001 in UDP 4500",
        ),
    ] {
        let t = builtin(name);
        let w = walk(&t, "spoke11-vm", "10.21.1.4");
        assert_eq!(
            (w.verdict.as_str(), w.at.as_str()),
            ("delivered", "nic spoke21-vm"),
            "{name}"
        );
        assert_eq!(
            w.nodes,
            [&THROUGH_THE_TUNNEL[..], &["nic spoke21-vm"]].concat(),
            "{name}"
        );
        assert!(
            w.encaps[0].starts_with(enc)
                && w.encaps[0].contains("10.1.2.4")
                && w.encaps[0].contains("10.2.2.4"),
            "{:?}",
            w.encaps
        );
        assert_eq!(w.decaps.len(), 1);
        let w = walk(&t, "spoke21-vm", "10.11.1.4");
        assert_eq!(
            (w.verdict.as_str(), w.at.as_str()),
            ("delivered", "nic spoke11-vm"),
            "{name}"
        );
        assert!(w.encaps[0].starts_with(back), "{:?}", w.encaps);
    }
}

#[test]
fn s10_without_as_override_the_spoke_drops() {
    let w = walk(
        &builtin("multi-region-no-as-override"),
        "spoke11-vm",
        "10.21.1.4",
    );
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str(), w.reason.as_str()),
        ("dropped", "nic spoke11-vm", "route-none")
    );
}

#[test]
fn s11_ecmp_splits_flows_and_keeps_each_flow_on_one_nva() {
    let t = builtin("dual-homed-active-active");
    let cp = converge(&t, &[]);
    let world = World::new(&cp);
    let nic = t.nic_by_name("spoke11-vm").unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for sport in 1000..2000u16 {
        let h = Header {
            src: "10.11.1.4".parse().unwrap(),
            dst: "198.51.100.10".parse().unwrap(),
            proto: PROTO_TCP,
            sport,
            dport: 443,
        };
        let a = world.walk(nic, Packet::new(h));
        let b = world.walk(nic, Packet::new(h));
        assert_eq!(a.hops, b.hops, "a flow always takes the same path");
        assert_eq!(a.verdict.kind(), "delivered");
        *counts.entry(a.hops[1].node.clone()).or_insert(0) += 1;
    }
    assert_eq!(
        counts.keys().cloned().collect::<Vec<_>>(),
        s(&["nic nva1", "nic nva2"])
    );
    assert!(counts.values().all(|&c| c > 350), "{counts:?}");
}

#[test]
fn s12_failover_moves_traffic_to_the_standby() {
    let t = builtin("dual-homed-active-passive");
    for sport in [1000u16, 2000, 3000] {
        let w = walk_flow_summary(&t, &[], "spoke11-vm", "198.51.100.10", sport);
        assert!(through(&w, "nva nva1") && !through(&w, "nva nva2"));
        let w = walk_flow_summary(
            &t,
            &["speaker-down nva1"],
            "spoke11-vm",
            "198.51.100.10",
            sport,
        );
        assert!(through(&w, "nva nva2") && !through(&w, "nva nva1"));
        assert_eq!(w.verdict, "delivered");
    }
}

#[test]
fn s13_dual_homed_expressroute() {
    let w = walk(
        &builtin("dual-homed-expressroute"),
        "spoke11-vm",
        "192.168.1.10",
    );
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "site onprem")
    );
    assert!(through(&w, "nva nva1") || through(&w, "nva nva2"));
    assert!(w.nodes.iter().any(|n| n.starts_with("gateway ")));
    let w = walk(
        &builtin("dual-homed-expressroute-no-override"),
        "spoke11-vm",
        "192.168.1.10",
    );
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str(), w.reason.as_str()),
        ("dropped", "nic spoke11-vm", "route-none")
    );
}

#[test]
fn s14_s15_spoke_to_spoke() {
    let w = walk(&builtin("spoke-to-spoke-udr"), "spoke11-vm", "10.12.1.4");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "nic spoke12-vm")
    );
    assert_eq!(
        w.nodes,
        [
            "nic spoke11-vm",
            "nic nva1",
            "nva nva1",
            "nic nva1",
            "nic spoke12-vm"
        ]
    );
    let w = walk(&builtin("spoke-to-spoke-no-udr"), "spoke11-vm", "10.12.1.4");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str(), w.reason.as_str()),
        ("dropped", "nic spoke11-vm", "route-none")
    );
    let w = walk(&builtin("ip-forwarding-off"), "spoke11-vm", "10.12.1.4");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str(), w.reason.as_str()),
        ("dropped", "nic nva1", "ip-forwarding-disabled")
    );
    // R49: without allow-forwarded-traffic on the spoke12 side, nva1's forwarded packet is refused.
    let src = include_str!("../../topologies/spoke-to-spoke-udr.toml").replace(
        "vnet = \"spoke12\"\nremote = \"hub1\"\nallow_forwarded_traffic = true",
        "vnet = \"spoke12\"\nremote = \"hub1\"\nallow_forwarded_traffic = false",
    );
    let t = load(&src);
    let w = walk(&t, "spoke11-vm", "10.12.1.4");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str(), w.reason.as_str()),
        ("dropped", "nic nva1", "peering-forwarded-not-allowed")
    );
    // ... while what hub1's own addresses send crosses it (not forwarded).
    for from in ["nva1", "hub1-vm"] {
        let w = walk(&t, from, "10.12.1.4");
        assert_eq!(
            (w.verdict.as_str(), w.at.as_str()),
            ("delivered", "nic spoke12-vm"),
            "{from}"
        );
    }
    // Access disabled on the far side: nothing crosses, forwarded or not.
    let src = include_str!("../../topologies/spoke-to-spoke-udr.toml").replace(
        "vnet = \"spoke12\"\nremote = \"hub1\"\n",
        "vnet = \"spoke12\"\nremote = \"hub1\"\nallow_virtual_network_access = false\n",
    );
    let t = load(&src);
    for from in ["spoke11-vm", "nva1", "hub1-vm"] {
        let w = walk(&t, from, "10.12.1.4");
        assert_eq!(
            (w.verdict.as_str(), w.reason.as_str()),
            ("dropped", "peering-access-disabled"),
            "{from}"
        );
    }
}

#[test]
fn s18_ipv6_through_the_nva_and_t16() {
    let t = builtin("dualstack-ipv6");
    let w = walk(&t, "spoke11-vm", "2001:db8::10");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "internet")
    );
    assert_eq!(
        w.nodes,
        ["nic spoke11-vm", "nic nva1", "nva nva1", "nic nva1"]
    );
    let w = walk(&t, "spoke11-vm", "192.168.1.10");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "site onprem")
    );
    // SPEC T16: the app VM's default goes to an NVA whose NIC does not forward.
    let w = walk(&builtin("spec-t16-ip-forwarding"), "app-vm", "8.8.8.8");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str(), w.reason.as_str()),
        ("dropped", "nic nva1", "ip-forwarding-disabled")
    );
    // ... while the NVA itself can still originate traffic.
    let w = walk(&builtin("spec-t16-ip-forwarding"), "nva1", "8.8.8.8");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "internet")
    );
}

fn walk_site(t: &Topology, site: &str, dst: &str) -> Walked {
    let si = SiteId(t.sites.iter().position(|s| s.name == site).unwrap() as u32);
    let header = Header {
        src: t.sites[si.idx()].hosts[0],
        dst: dst.parse().unwrap(),
        proto: PROTO_TCP,
        sport: 40000,
        dport: 22,
    };
    walked(&walk_start(t, &[], Start::Site(si), header), |h| {
        format!("{} {}", h.node, h.kind)
    })
}

#[test]
fn r40_traffic_from_on_premises_uses_the_gateway_subnet_routes() {
    // Scenario 1: straight over the peering to the spoke.
    let w = walk_site(&builtin("hub-spoke-vng"), "onprem", "10.11.1.4");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "nic spoke11-vm")
    );
    assert_eq!(
        w.nodes,
        [
            "site onprem site-out",
            "gateway gw-hub1 gateway-in",
            "nic spoke11-vm nic-ingress"
        ]
    );
    // Scenario 4 (no GatewaySubnet UDR): the return path bypasses nva1 (R40, R50: asymmetric).
    let w = walk_site(&builtin("onprem-bypasses-nva"), "onprem", "10.11.1.4");
    assert!(
        !w.nodes.iter().any(|n| n.starts_with("nva ")),
        "{:?}",
        w.nodes
    );
    // Scenario 5: the GatewaySubnet UDR sends it through nva1: symmetric.
    let w = walk_site(&builtin("onprem-via-nva-udr"), "onprem", "10.11.1.4");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "nic spoke11-vm")
    );
    assert!(
        w.nodes.contains(&"nva nva1 nva".to_string()),
        "{:?}",
        w.nodes
    );
    // Scenario 6 / SPEC T12 return: the CPE encapsulates toward nva1, the ER
    // gateway delivers the outer packet locally, nva1 decapsulates.
    let w = walk_site(&builtin("onprem-overlay"), "onprem", "10.11.1.4");
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "nic spoke11-vm")
    );
    assert_eq!(w.encaps.len(), 1);
    assert!(
        w.encaps[0].contains("192.168.255.1") && w.encaps[0].contains("10.1.2.4"),
        "{:?}",
        w.encaps
    );
    assert_eq!(w.decaps.len(), 1);
    assert!(w.nodes.contains(&"gateway gw-hub1 gateway-in".to_string()));
    // Nothing for an address Azure does not hold.
    let w = walk_site(&builtin("hub-spoke-vng"), "onprem", "10.99.0.1");
    assert_eq!(
        (w.verdict.as_str(), w.reason.as_str()),
        ("dropped", "site-no-route")
    );
}

/// The counting walk (no hop recorded) reaches the outcome the recording
/// walk reaches, in as many hops, for every default flow of every topology
/// in the repository (the forwarding path of `replay` without outputs and
/// of the flow cache's first packets).
#[test]
fn counting_walk_equals_recording_walk() {
    use vnetplane::dataplane::{Pending, WalkBuf, traffic};
    let files = topology_files();
    let (mut flows, mut hops) = (0, 0);
    for f in files {
        let t = vnetplane::topology::load_file(&f).unwrap();
        let world = World::new(&converge(&t, &[]));
        let (mut rec, mut cnt) = (WalkBuf::default(), WalkBuf::default());
        for start in traffic::default_senders(&t) {
            let Start::Nic(nic) = start else { continue };
            for dst in traffic::default_destinations(&t) {
                let Some(&src) = t
                    .nic(nic)
                    .ips
                    .iter()
                    .find(|ip| ip.is_ipv4() == dst.is_ipv4())
                else {
                    continue;
                };
                let h = Header {
                    src,
                    dst,
                    proto: PROTO_TCP,
                    sport: 40000,
                    dport: 443,
                };
                rec.packet = Packet::new(h);
                cnt.packet = Packet::new(h);
                let a = world.forward(start, &mut rec);
                let b = world.forward_counting(start, &mut cnt, &Pending::default());
                assert_eq!(a, b, "{}: {h}", f.display());
                assert_eq!(rec.hops.len(), cnt.steps, "{}: {h}", f.display());
                assert!(cnt.hops.is_empty());
                flows += 1;
                hops += cnt.steps;
            }
        }
    }
    assert!(
        flows > 300 && hops > 2 * flows,
        "{flows} flows, {hops} hops"
    );
}

/// The flow hash (ECMP choices, VXLAN source ports) is FNV-1a over the
/// addresses as 16-byte little-endian integers, then proto << 32 |
/// sport << 16 | dport as one: the shortcut for IPv4's zero bytes gives
/// exactly that.
#[test]
fn flow_hash_is_fnv1a_over_the_header() {
    use std::net::IpAddr;
    use vnetplane::dataplane::flow_hash;
    fn reference(h: &Header) -> u64 {
        let mut x: u64 = 0xcbf2_9ce4_8422_2325;
        let ip = |a: IpAddr| match a {
            IpAddr::V4(v) => u128::from(u32::from(v)),
            IpAddr::V6(v) => u128::from(v),
        };
        let ports = u128::from(h.proto) << 32 | u128::from(h.sport) << 16 | u128::from(h.dport);
        for v in [ip(h.src), ip(h.dst), ports] {
            for b in v.to_le_bytes() {
                x ^= u64::from(b);
                x = x.wrapping_mul(0x0100_0000_01b3);
            }
        }
        x
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..20_000 {
        let (a, b) = (next(), next());
        let (src, dst): (IpAddr, IpAddr) = if i % 3 == 0 {
            (
                std::net::Ipv6Addr::from(u128::from(a) << 64 | u128::from(b)).into(),
                std::net::Ipv6Addr::from(u128::from(b) << 64 | u128::from(a)).into(),
            )
        } else {
            (
                std::net::Ipv4Addr::from(a as u32).into(),
                std::net::Ipv4Addr::from(b as u32).into(),
            )
        };
        let h = Header {
            src,
            dst,
            proto: (a >> 40) as u8,
            sport: (a >> 48) as u16,
            dport: (b >> 48) as u16,
        };
        assert_eq!(flow_hash(&h), reference(&h), "{h}");
    }
}

/// A tunnel ping-pong: nva2 sends what nva1's tunnel brings for
/// 10.21.1.0/24 back into the tunnel, nva1 into it again. Loop detection
/// knows the header stack after a decapsulation as the one before the
/// encapsulation, so the loop is found when nva1's NIC sends the same
/// encapsulated packet a second time (states are tracked at SDN hops, which
/// every cycle passes), not by TTL expiry ~30 rounds later; the counting
/// walk (the fast path's separate build) agrees.
#[test]
fn tunnel_ping_pong_is_found_by_the_header_state() {
    use vnetplane::dataplane::{Outcome, Pending, WalkBuf};
    let src = std::fs::read_to_string("topologies/multi-region-vxlan.toml").unwrap();
    let looped = src.replacen(
        "  [[nva.bgp]]\n  peer = \"rs-hub2\"",
        "  [[nva.route]]\n  prefix = \"10.21.1.0/24\"\n  tunnel = \"vx-nva1\"\n  [[nva.bgp]]\n  peer = \"rs-hub2\"",
        1,
    );
    assert_ne!(looped, src);
    let t = load(&looped);
    let tr = walk_flow(&t, &[], "spoke11-vm", "10.21.1.4", 49152);
    let w = walked(&tr, |h| h.node.clone());
    assert_eq!((w.verdict.as_str(), w.at.as_str()), ("loop", "nic nva1"));
    assert_eq!(
        w.nodes,
        [
            &THROUGH_THE_TUNNEL[..],
            &["nic nva1", "nva nva1", "nva nva1"]
        ]
        .concat(),
    );
    assert_eq!((w.encaps.len(), w.decaps.len()), (3, 2));
    // The same walk on the counting build.
    let nic = t.nic_by_name("spoke11-vm").unwrap();
    let mut buf = WalkBuf::default();
    buf.packet = Packet::new(Header {
        src: "10.11.1.4".parse().unwrap(),
        dst: "10.21.1.4".parse().unwrap(),
        proto: PROTO_TCP,
        sport: 49152,
        dport: 443,
    });
    let world = World::new(&converge(&t, &[]));
    let o = world.forward_counting(Start::Nic(nic), &mut buf, &Pending::default());
    assert!(matches!(o, Outcome::Loop { first: Some(3), .. }), "{o:?}");
    assert_eq!(buf.steps, tr.hops.len());
}

/// The README's walkthrough: two NVAs advertise 0/0 and 10.0.0.0/8 with
/// equal AS paths, so each route is one row with both next hops (R18,
/// R28); the supernet is accepted (R25: only prefixes equal to or inside a
/// VNet range are filtered) and carries spoke-to-spoke traffic through an
/// NVA; the Route Server also programs it onto the NVAs' own NICs (R24),
/// so unused 10.x space loops at an NVA until a UDR of the same prefix on
/// the NVA subnet takes precedence over the BGP route (R15).
#[test]
fn walkthrough_hub_with_a_route_server_and_two_nvas() {
    let t = builtin("hub-rs-two-nvas");
    let both = s(&["10.1.2.4", "10.1.2.5"]);
    assert_eq!(
        vng_rows(&t, "spoke11-vm", &[]),
        [
            ("Active".to_string(), "0.0.0.0/0".to_string(), both.clone()),
            ("Active".to_string(), "10.0.0.0/8".to_string(), both.clone()),
        ]
    );
    // Every flow reaches spoke12, whichever NVA its hash picks.
    let mut nvas = std::collections::BTreeSet::new();
    for sport in 49152..49152 + 64 {
        let w = walk_flow_summary(&t, &[], "spoke11-vm", "10.12.1.4", sport);
        assert_eq!(
            (w.verdict.as_str(), w.at.as_str()),
            ("delivered", "nic spoke12-vm")
        );
        let nva = w.nodes.iter().find(|n| n.starts_with("nva ")).cloned();
        nvas.insert(nva.expect("the path crosses an NVA"));
    }
    assert_eq!(nvas.len(), 2, "ECMP spreads flows over both NVAs: {nvas:?}");
    let w = walk(&t, "spoke11-vm", "10.0.0.1");
    assert_eq!(w.verdict, "loop");
    assert!(w.loop_route.contains("10.0.0.0/8"), "{}", w.loop_route);
    let fix = ["udr-add rt-nva unused-10 10.0.0.0/8 None"];
    let w = walk_flow_summary(&t, &fix, "spoke11-vm", "10.0.0.1", 49152);
    assert_eq!(
        (w.verdict.as_str(), w.reason.as_str()),
        ("dropped", "route-none")
    );
    assert!(w.at.starts_with("nic nva"), "{}", w.at);
}

/// A packet the NVA's own OS sends (a ping from the router itself) is
/// routed by its OS table first (R42): into the tunnel BGP taught it, or
/// out of its NIC, where the NIC's effective routes take over; no TTL is
/// spent at the NVA itself.
#[test]
fn a_walk_can_start_in_an_nvas_own_os() {
    let t = builtin("branch-to-branch-nva");
    let nva = Start::Nva(vnetplane::topology::NvaId(0));
    let ping = |dst: &str| Header {
        src: "10.1.2.4".parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto: vnetplane::dataplane::PROTO_ICMP,
        sport: 0,
        dport: 0,
    };
    // To the branch: the BGP route learned inside the VXLAN tunnel.
    let tr = walk_start(&t, &[], nva, ping("172.16.10.10"));
    let w = walked(&tr, |h| h.node.clone());
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "site branch"),
        "{w:?}"
    );
    assert_eq!(w.nodes.first().map(String::as_str), Some("nva nva1"));
    assert_eq!(w.encaps.len(), 1, "{w:?}");
    assert_eq!(tr.hops[0].ttl, 64);
    assert!(!tr.hops[0].effects.ttl_decrement);
    // To a VM of the hub: the static route out of its NIC, then VnetLocal.
    let tr = walk_start(&t, &[], nva, ping("10.1.3.4"));
    let w = walked(&tr, |h| h.node.clone());
    assert_eq!(
        w.nodes,
        ["nva nva1", "nic nva1", "nic hub1-vm"]
            .map(String::from)
            .to_vec(),
        "{w:?}"
    );
    assert_eq!(w.verdict, "delivered");
}

/// `trace --from nva:NAME` starts in the NVA's OS; a plain name is still
/// the NIC of that name.
#[test]
fn trace_from_an_nva_names_it_with_a_prefix() {
    let out = super::cli::run(&[
        "trace",
        "-t",
        "topologies/branch-to-branch-nva.toml",
        "--from",
        "nva:nva1",
        "--dst",
        "172.16.10.10",
        "--proto",
        "icmp",
    ]);
    assert_eq!(out.0, 0, "{out:?}");
    assert!(out.1.contains("sent by the NVA's OS"), "{}", out.1);
    assert!(
        out.1.contains("verdict: delivered at site branch"),
        "{}",
        out.1
    );
    let out = super::cli::run(&[
        "trace",
        "-t",
        "topologies/branch-to-branch-nva.toml",
        "--from",
        "nva:nope",
        "--dst",
        "172.16.10.10",
    ]);
    assert_ne!(out.0, 0);
    assert!(out.2.contains("no NVA named `nope`"), "{}", out.2);
}

/// The Internet as a transit (Azure's outbound connectivity and public IP
/// docs): an SD-WAN NVA with a public IP runs IPsec over the Internet to a
/// branch's public VPN device. Outbound, Azure translates the NVA's private
/// source to its public IP; inbound, the public IP to its private address.
/// A public address nobody in the topology owns still ends at the Internet.
#[test]
fn the_internet_carries_tunnels_to_public_addresses_with_nat() {
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
  route_table = "to-branch"
[[route_table]]
name = "to-branch"
  [[route_table.route]]
  name = "branch"
  prefix = "172.16.10.0/24"
  next_hop_type = "VirtualAppliance"
  next_hop_ip = "10.1.2.4"
[[nic]]
name = "nva1"
vnet = "hub1"
subnet = "nva"
ips = ["10.1.2.4"]
public_ip = "20.1.1.1"
ip_forwarding = true
[[nic]]
name = "hub1-vm"
vnet = "hub1"
subnet = "vm"
ips = ["10.1.3.4"]
public_ip = "20.1.1.2"
[[gateway]]
name = "gw-vpn"
vnet = "hub1"
kind = "vpn"
ips = ["10.1.0.4"]
public_ip = "20.1.1.9"
[[nva]]
name = "nva1"
nics = ["nva1"]
asn = 65001
  [[nva.route]]
  prefix = "0.0.0.0/0"
  via = "10.1.2.1"
  [[nva.tunnel]]
  name = "ipsec-branch"
  kind = "esp"
  local = "10.1.2.4"
  remote = "198.51.100.1"
  spi_out = 4097
  spi_in = 4098
  [[nva.bgp]]
  peer = "branch"
  over = "ipsec-branch"
  originate = ["10.1.0.0/16"]
[[site]]
name = "branch"
asn = 65200
prefixes = ["172.16.10.0/24"]
cpe = "198.51.100.1"
hosts = ["172.16.10.10"]
  [[site.tunnel]]
  name = "ipsec-hub"
  kind = "esp"
  local = "198.51.100.1"
  remote = "20.1.1.1"
  spi_out = 4098
  spi_in = 4097
  [[site.bgp]]
  peer = "nva1"
  over = "ipsec-hub"
  originate = ["172.16.10.0/24"]
"#;
    let t = load(src);
    assert!(
        !t.warnings.iter().any(|w| w.message.contains("other end")),
        "{:?}",
        t.warnings
    );
    // The branch → a hub VM: into the tunnel, over the Internet to the
    // NVA's public IP (translated), decapsulated, then VnetLocal.
    let header = |src: &str, dst: &str| Header {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto: vnetplane::dataplane::PROTO_TCP,
        sport: 49152,
        dport: 443,
    };
    let tr = walk_start(
        &t,
        &[],
        Start::Site(SiteId(0)),
        header("172.16.10.10", "10.1.3.4"),
    );
    let w = walked(&tr, |h| h.node.clone());
    assert_eq!(
        (w.verdict.as_str(), w.at.as_str()),
        ("delivered", "nic hub1-vm"),
        "{w:?}"
    );
    assert_eq!((w.encaps.len(), w.decaps.len()), (1, 1), "{w:?}");
    let nat = tr
        .hops
        .iter()
        .find_map(|h| h.effects.nat)
        .expect("translated");
    assert_eq!(nat.1.to_string(), "10.1.2.4");
    // A hub VM → the branch (a UDR to the NVA): the NVA's BGP route into
    // the tunnel; the outer packet leaves with the NVA's public IP as
    // source.
    let tr = walk_tcp(&t, &[], "hub1-vm", "172.16.10.10");
    assert_eq!(
        tr.verdict,
        Verdict::Delivered {
            at: "site branch".into()
        },
        "{tr:?}"
    );
    let nat = tr
        .hops
        .iter()
        .find_map(|h| h.effects.nat)
        .expect("translated");
    assert_eq!(nat.0.to_string(), "20.1.1.1");
    // A VM with a public IP reaching a gateway's public IP, and an address
    // nobody owns.
    assert_eq!(
        walk_tcp(&t, &[], "hub1-vm", "20.1.1.9").verdict,
        Verdict::Delivered {
            at: "gateway gw-vpn".into()
        }
    );
    assert_eq!(
        walk_tcp(&t, &[], "hub1-vm", "8.8.8.8").verdict,
        Verdict::Delivered {
            at: "internet".into()
        }
    );
}
