//! Load balancers: health probes, rules (HA ports, floating IP), and the
//! region limit of a load-balancer next hop set by an NVA (R22).

use super::util::*;

/// Load balancers as Azure runs them (health probes): new flows through an
/// internal load balancer in front of two NVAs spread over both; with one
/// NVA down, its VM stopped, or its probe failing, they all go to the other.
#[test]
fn load_balancer_backends_that_are_down_get_no_new_flows() {
    let t = ilb_topology("");
    let nvas_used = |events: &[&str]| {
        let world = vnetplane::dataplane::World::new(&converge(&t, events));
        let mut used = std::collections::BTreeSet::new();
        for sport in 0..64u16 {
            let tr = world.walk(
                t.nic_by_name("spoke11-vm").unwrap(),
                vnetplane::dataplane::Packet::new(vnetplane::dataplane::Header {
                    src: "10.11.1.4".parse().unwrap(),
                    dst: "198.51.100.10".parse().unwrap(),
                    proto: vnetplane::dataplane::PROTO_TCP,
                    sport: 40000 + sport,
                    dport: 443,
                }),
            );
            assert_eq!(tr.verdict.kind(), "delivered", "{events:?}");
            used.extend(
                tr.hops
                    .iter()
                    .filter(|h| h.kind == "nva")
                    .map(|h| h.node.clone()),
            );
        }
        used
    };
    assert_eq!(
        nvas_used(&[]),
        ["nva nva1".to_string(), "nva nva2".to_string()].into()
    );
    assert_eq!(
        nvas_used(&["speaker-down nva1"]),
        ["nva nva2".to_string()].into()
    );
    assert_eq!(
        nvas_used(&["vm-stop nva2"]),
        ["nva nva1".to_string()].into()
    );
    // A failed health probe alone (the VM and its BGP are up), and back.
    assert_eq!(
        nvas_used(&["probe-down ilb nva2"]),
        ["nva nva1".to_string()].into()
    );
    assert_eq!(
        nvas_used(&["probe-down ilb nva2", "probe-up ilb nva2"]),
        ["nva nva1".to_string(), "nva nva2".to_string()].into()
    );
    assert!(
        vnetplane::control::events::Event::parse("probe-down ilb nva9")
            .unwrap()
            .check(&t)
            .is_err()
    );
}

/// The load balancer of `load_balancer_backends_that_are_down_get_no_new_flows`
/// with `rules` (TOML lines after its `backends`).
fn ilb_topology(rules: &str) -> vnetplane::topology::Topology {
    let src = include_str!("../../topologies/hub-rs-two-nvas.toml").replace(
        "  [[vnet.subnet]]\n  name = \"vm\"\n  prefix = \"10.11.1.0/24\"",
        "  [[vnet.subnet]]\n  name = \"vm\"\n  prefix = \"10.11.1.0/24\"\n  route_table = \"rt-spoke\"",
    ) + "\n[[load_balancer]]\nname = \"ilb\"\nvnet = \"hub1\"\nsubnet = \"nva\"\nfrontend_ip = \"10.1.2.10\"\nbackends = [\"nva1\", \"nva2\"]\n"
        + rules
        + "\n[[route_table]]\nname = \"rt-spoke\"\n  [[route_table.route]]\n  name = \"default-to-ilb\"\n  prefix = \"0.0.0.0/0\"\n  next_hop_type = \"VirtualAppliance\"\n  next_hop_ip = \"10.1.2.10\"\n";
    load(&src)
}

fn walk_proto(
    t: &vnetplane::topology::Topology,
    dst: &str,
    proto: u8,
    dport: u16,
) -> vnetplane::dataplane::Trace {
    let world = vnetplane::dataplane::World::new(&converge(t, &[]));
    world.walk(
        t.nic_by_name("spoke11-vm").unwrap(),
        vnetplane::dataplane::Packet::new(vnetplane::dataplane::Header {
            src: "10.11.1.4".parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            sport: 40000,
            dport,
        }),
    )
}

/// Load-balancing rules (Azure Load Balancer's HA ports and floating IP
/// pages): a load balancer as next hop forwards only the flows a rule
/// takes, so NVAs behind it need an HA-ports rule; traffic addressed to
/// the frontend reaches a backend VM translated to the backend's address
/// (floating IP off) or still addressed to the frontend (floating IP on).
#[test]
fn load_balancer_rules_ha_ports_and_floating_ip() {
    use vnetplane::dataplane::{DropReason, PROTO_TCP, PROTO_UDP, Verdict};
    let ha = ilb_topology("");
    assert_eq!(
        ha.load_balancers[0].rules,
        vec![vnetplane::topology::LbRule::HA_PORTS]
    );
    for (proto, port) in [(PROTO_TCP, 443), (PROTO_UDP, 53)] {
        assert_eq!(
            walk_proto(&ha, "198.51.100.10", proto, port).verdict.kind(),
            "delivered"
        );
    }
    // One TCP 443 rule: the UDP flow through the load balancer is dropped.
    let web = ilb_topology("  [[load_balancer.rule]]\n  protocol = \"tcp\"\n  port = 443\n");
    assert_eq!(
        walk_proto(&web, "198.51.100.10", PROTO_TCP, 443)
            .verdict
            .kind(),
        "delivered"
    );
    assert_eq!(
        walk_proto(&web, "198.51.100.10", PROTO_UDP, 53).verdict,
        Verdict::Dropped {
            at: "nic spoke11-vm".into(),
            reason: DropReason::NoLbRule
        }
    );
    // To the frontend itself, floating IP off: the backend's own address.
    let tr = walk_proto(&web, "10.1.2.10", PROTO_TCP, 443);
    let nat = tr
        .hops
        .iter()
        .find_map(|h| h.effects.nat)
        .expect("translated");
    assert!(
        ["10.1.2.4", "10.1.2.5"].contains(&nat.1.to_string().as_str()),
        "{nat:?}"
    );
    assert_eq!(tr.verdict.kind(), "delivered");
    // Floating IP on: the destination stays the frontend.
    let dsr = ilb_topology(
        "  [[load_balancer.rule]]\n  protocol = \"tcp\"\n  port = 443\n  floating_ip = true\n",
    );
    let tr = walk_proto(&dsr, "10.1.2.10", PROTO_TCP, 443);
    assert!(tr.hops.iter().all(|h| h.effects.nat.is_none()));
    assert!(
        tr.hops.last().unwrap().decision.contains("floating IP"),
        "{tr:?}"
    );
    // A rule with a protocol but no port is refused, naming the field.
    let err = vnetplane::topology::load_str(
        "t.toml",
        &format!(
            "{}\n[[load_balancer]]\nname = \"x\"\nvnet = \"hub1\"\nsubnet = \"nva\"\nfrontend_ip = \"10.1.2.11\"\n  [[load_balancer.rule]]\n  protocol = \"tcp\"\n",
            include_str!("../../topologies/hub-rs-two-nvas.toml")
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("rule.port"), "{err}");
}

/// R22: a load-balancer next hop set by an NVA works only in the Route
/// Server's region; one in another region is not programmed (the route
/// shows None and drops), with a warning at load.
#[test]
fn r22_a_load_balancer_next_hop_in_another_region_fails() {
    let src = r#"
[[vnet]]
name = "hub1"
region = "westeurope"
address_space = ["10.1.0.0/16"]
  [[vnet.subnet]]
  name = "RouteServerSubnet"
  prefix = "10.1.1.0/27"
  [[vnet.subnet]]
  name = "nva"
  prefix = "10.1.2.0/24"
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.1.3.0/24"
[[vnet]]
name = "hub2"
region = "REGION"
address_space = ["10.2.0.0/16"]
  [[vnet.subnet]]
  name = "lb"
  prefix = "10.2.1.0/24"
[[peering]]
vnet = "hub1"
remote = "hub2"
[[peering]]
vnet = "hub2"
remote = "hub1"
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
[[load_balancer]]
name = "ilb"
vnet = "hub2"
subnet = "lb"
frontend_ip = "10.2.1.10"
backends = ["nva1"]
[[route_server]]
name = "rs-hub1"
vnet = "hub1"
ips = ["10.1.1.4", "10.1.1.5"]
[[nva]]
name = "nva1"
nics = ["nva1"]
asn = 65001
  [[nva.bgp]]
  peer = "rs-hub1"
  originate = ["0.0.0.0/0"]
  next_hop = "10.2.1.10"
"#;
    let same = load(&src.replace("REGION", "westeurope"));
    assert_eq!(
        next_hop(&same, "hub1-vm", "198.51.100.10"),
        hop(
            "VirtualNetworkGateway",
            "0.0.0.0/0",
            "VirtualNetworkGateway",
            &["10.2.1.10"]
        )
    );
    assert!(!same.warnings.iter().any(|w| w.message.contains("R22")));
    let far = load(&src.replace("REGION", "northeurope"));
    assert!(
        far.warnings
            .iter()
            .any(|w| w.message.contains("R22") && w.message.contains("northeurope")),
        "{:?}",
        far.warnings
    );
    assert_eq!(
        next_hop(&far, "hub1-vm", "198.51.100.10"),
        hop("VirtualNetworkGateway", "0.0.0.0/0", "None", &[])
    );
    assert_eq!(
        walk_tcp(&far, &[], "hub1-vm", "198.51.100.10").verdict,
        vnetplane::dataplane::Verdict::Dropped {
            at: "nic hub1-vm".into(),
            reason: vnetplane::dataplane::DropReason::RouteNone
        }
    );
}
