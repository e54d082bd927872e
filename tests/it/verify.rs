//! `verify` on the scenarios whose outcome SCENARIOS.md and the issue name.

use vnetplane::dataplane::{World, traffic};
use vnetplane::replay;
use vnetplane::verify::{self, Grade};

use super::util::*;

fn run(name: &str, fail: Option<&str>) -> verify::Report {
    let t = builtin(name);
    let failures = fail
        .map(|f| verify::parse_failures(&t, f).unwrap())
        .unwrap_or_default();
    verify::verify(&t, &failures).unwrap()
}

fn kinds(r: &verify::Report) -> Vec<&'static str> {
    r.violations().map(|f| f.kind).collect()
}

#[test]
fn loops_are_found_with_their_place_and_route() {
    let r = run("multi-region-loop", None);
    let l = r
        .violations()
        .find(|f| f.kind == "loop" && f.detail.contains("loop at nic nva1"))
        .expect("loop at nva1");
    assert!(
        l.detail.contains("10.21.0.0/16") && l.detail.contains("10.1.2.4"),
        "{}",
        l.detail
    );
    let r = run("nva-default-loop", None);
    assert!(
        r.violations()
            .any(|f| f.kind == "loop" && f.detail.contains("0.0.0.0/0")),
        "{:?}",
        kinds(&r)
    );
    assert_eq!(run("nva-default-loop-fixed", None).violations().count(), 0);
}

#[test]
fn overlays_verify_clean() {
    for name in ["multi-region-vxlan", "multi-region-ipsec"] {
        let r = run(name, None);
        assert_eq!(
            r.violations().count(),
            0,
            "{name}: {:?}",
            r.violations().map(|f| &f.detail).collect::<Vec<_>>()
        );
        assert!(r.classes > 10 && r.walks > r.classes);
    }
}

#[test]
fn waypoint_assertions() {
    let r = run("onprem-bypasses-nva", None);
    let w = r
        .violations()
        .find(|f| f.kind == "waypoint")
        .expect("the waypoint fails");
    assert!(w.dst.starts_with("192.168."), "{}", w.dst);
    assert!(w.counterexample.is_some());
    assert_eq!(run("onprem-via-nva-udr", None).violations().count(), 0);
}

#[test]
fn failures_reconverge_and_black_holes_are_reported() {
    // Under nva1's failure, Internet traffic from the spoke still leaves via nva2.
    let r = run("dual-homed-active-passive", Some("nva1"));
    assert!(
        !r.violations().any(|f| f.failure.is_some()
            && f.from == "nic spoke11-vm"
            && f.dst == verify::INTERNET_V4),
        "{:?}",
        r.violations()
            .map(|f| (&f.from, &f.dst, &f.failure))
            .collect::<Vec<_>>()
    );
    let t = builtin("dual-homed-active-passive");
    assert!(vnetplane::verify::parse_failures(&t, "nva7").is_err());
    assert_eq!(
        vnetplane::verify::parse_failures(&t, "each-nva")
            .unwrap()
            .len(),
        2
    );
    // Without as-override the spoke cannot reach on-premises: a black hole.
    let r = run("dual-homed-expressroute-no-override", None);
    assert!(
        r.violations().any(|f| f.kind == "black-hole"
            && f.from == "nic spoke11-vm"
            && f.dst == "192.168.1.10"),
        "{:?}",
        kinds(&r)
    );
    // Scenario 17's control-plane warning reaches the report.
    let r = run("nva-nexthop-recursion", None);
    assert!(
        r.warnings()
            .any(|f| f.kind == "control-plane" && f.detail.contains("same session"))
    );
    assert!(
        r.findings
            .iter()
            .all(|f| f.grade == Grade::Warning || f.kind != "control-plane")
    );
}

#[test]
fn counterexamples_replay_to_the_same_verdicts() {
    for name in [
        "onprem-bypasses-nva",
        "multi-region-loop",
        "dual-homed-expressroute-no-override",
    ] {
        let t = builtin(name);
        let r = verify::verify(&t, &[]).unwrap();
        let ces: Vec<_> = r
            .violations()
            .filter_map(|f| f.counterexample.map(|c| (f.kind, c)))
            .collect();
        assert!(!ces.is_empty(), "{name}");
        let flows: Vec<traffic::Flow> = ces
            .iter()
            .map(|(_, c)| traffic::Flow {
                from: c.from,
                dst: c.header.dst,
                proto: c.header.proto,
                sport: c.header.sport,
                dport: c.header.dport,
            })
            .collect();
        let frames = traffic::frames(&t, &flows);
        assert_eq!(frames.len(), ces.len());
        let cp = converge(&t, &[]);
        let world = std::sync::Arc::new(World::new(&cp));
        let mut traces: Vec<u8> = Vec::new();
        let c = replay::replay::<Vec<u8>, Vec<u8>>(
            &world,
            &frames,
            replay::Options::default(),
            None,
            Some(&mut traces),
        )
        .unwrap();
        assert!(c.balanced());
        for ((kind, _), line) in ces.iter().zip(String::from_utf8(traces).unwrap().lines()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let want = match *kind {
                "loop" => "loop",
                "black-hole" => "dropped",
                _ => "delivered", // a waypoint counterexample is delivered, the wrong way
            };
            assert_eq!(v["verdict"], want, "{name} {kind}: {line}");
        }
    }
}

#[test]
fn every_ecmp_branch_is_walked() {
    let t = builtin("dual-homed-active-active");
    let cp = converge(&t, &[]);
    let world = World::new(&cp);
    let nic = t.nic_by_name("spoke11-vm").unwrap();
    let h = vnetplane::dataplane::Header {
        src: "10.11.1.4".parse().unwrap(),
        dst: "198.51.100.10".parse().unwrap(),
        proto: 6,
        sport: 1,
        dport: 443,
    };
    let branches = world.walk_branches(
        vnetplane::dataplane::Start::Nic(nic),
        &vnetplane::dataplane::Packet::new(h),
        false,
        16,
    );
    let nvas: std::collections::BTreeSet<String> =
        branches.iter().map(|tr| tr.hops[1].node.clone()).collect();
    assert_eq!(
        nvas.into_iter().collect::<Vec<_>>(),
        ["nic nva1", "nic nva2"]
    );
    assert!(branches.iter().all(|tr| tr.verdict.kind() == "delivered"));
    // A single-path walk has one branch.
    let t = builtin("hub-spoke-vng");
    let cp = converge(&t, &[]);
    let world = World::new(&cp);
    let nic = t.nic_by_name("hub1-vm").unwrap();
    let h = vnetplane::dataplane::Header {
        src: "10.1.3.4".parse().unwrap(),
        dst: "10.11.1.4".parse().unwrap(),
        proto: 6,
        sport: 1,
        dport: 443,
    };
    assert_eq!(
        world
            .walk_branches(
                vnetplane::dataplane::Start::Nic(nic),
                &vnetplane::dataplane::Packet::new(h),
                false,
                16
            )
            .len(),
        1
    );
}

/// Verifies `name`'s topology with `assertion` (TOML) appended.
fn run_with(name: &str, assertion: &str) -> (vnetplane::topology::Topology, verify::Report) {
    let src = vnetplane::topology::BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .expect("builtin")
        .1;
    let t = load(&format!("{src}\n{assertion}"));
    let r = verify::verify(&t, &[]).unwrap();
    (t, r)
}

/// An intent holds only if every flow it names holds it (the issue's
/// first hole): with nva1 and nva2 in ECMP, `via = "nva1"` fails, and the
/// counterexample is a flow whose own hash takes nva2.
#[test]
fn a_waypoint_is_checked_on_every_ecmp_branch() {
    let (t, r) = run_with(
        "dual-homed-active-active",
        "[[assertion]]\nname = \"internet-via-nva1\"\nfrom = \"spoke11-vm\"\nto = \"internet\"\nvia = \"nva1\"\n",
    );
    let w = r
        .violations()
        .find(|f| f.kind == "waypoint")
        .unwrap_or_else(|| panic!("{:?}", kinds(&r)));
    assert!(
        w.path.iter().any(|n| n.starts_with("nva nva2")),
        "{:?}",
        w.path
    );
    let ce = w.counterexample.expect("a counterexample flow");
    let world = World::new(&converge(&t, &[]));
    let tr = world.walk_from(ce.from, vnetplane::dataplane::Packet::new(ce.header));
    assert!(
        !tr.hops.iter().any(|h| h.node == "nva nva1"),
        "the counterexample's own flow misses nva1: {:?}",
        tr.hops.iter().map(|h| &h.node).collect::<Vec<_>>()
    );
}

/// An isolation of a prefix covers every address in it (the second
/// hole): 10.1.0.0/16 holds hub1-vm and the gateway, which spoke11-vm
/// reaches; its first address (what the check once tried alone) is dropped.
#[test]
fn an_isolation_covers_every_class_of_its_prefix() {
    let (_, r) = run_with(
        "hub-spoke-vng",
        "[[assertion]]\nname = \"hub-isolated\"\nfrom = \"spoke11-vm\"\nto = \"10.1.0.0/16\"\nexpect = \"dropped\"\n",
    );
    let iso = r
        .violations()
        .find(|f| f.kind == "isolation")
        .unwrap_or_else(|| panic!("{:?}", kinds(&r)));
    assert!(
        iso.detail.contains("expected dropped, delivered at"),
        "{}",
        iso.detail
    );
    let dst: std::net::IpAddr = iso.dst.parse().unwrap();
    let hub: ipnet::IpNet = "10.1.0.0/16".parse().unwrap();
    assert!(hub.contains(&dst) && dst != hub.network(), "{dst}");
}

/// Every address something owns is a destination class of its own (the
/// issue's third hole): traffic addressed to a load balancer's frontend is
/// delivered to a healthy backend's VM, so an isolation of a range that
/// holds only the frontend (10.1.2.8/29 around 10.1.2.10, no NIC in it)
/// fails with the frontend as its counterexample.
#[test]
fn a_load_balancer_frontend_is_a_destination_class() {
    let t = builtin("example");
    assert_eq!(
        walk_tcp(&t, &[], "spoke11-vm", "10.1.2.10").verdict,
        vnetplane::dataplane::Verdict::Delivered {
            at: "nic nva1".into()
        }
    );
    let (_, r) = run_with(
        "example",
        "[[assertion]]\nname = \"lb-range-isolated\"\nfrom = \"spoke11-vm\"\nto = \"10.1.2.8/29\"\nexpect = \"isolated\"\n",
    );
    let v = r
        .violations()
        .find(|f| f.kind == "isolation")
        .unwrap_or_else(|| panic!("{:?}", kinds(&r)));
    assert_eq!(v.dst, "10.1.2.10");
    // A backend that is down takes no new flows: with nva1 (the only
    // backend) stopped, the frontend answers nobody.
    let tr = walk_tcp(&t, &["vm-stop nva1"], "spoke11-vm", "10.1.2.10");
    assert_eq!(tr.verdict.kind(), "dropped");
}

/// The intents of a report that failed, by name, with their findings' kinds.
fn failed(r: &verify::Report) -> Vec<(String, &'static str)> {
    r.violations()
        .filter_map(|f| f.intent.map(|k| (r.intents[k].name.clone(), f.kind)))
        .collect()
}

/// Subnets as senders and destinations; waypoints and exclusions over
/// ECMP (R18): both NVAs carry spoke-to-spoke flows, so reachability holds,
/// `via = "nva1"` and `not_via = "nva2"` fail, and so do both NVAs in a row.
#[test]
fn subnet_intents_over_ecmp_next_hops() {
    let (_, r) = run_with(
        "hub-rs-two-nvas",
        "[[assertion]]\nname = \"reach\"\nfrom = \"spoke11/vm\"\nto = \"spoke12/vm\"\nexpect = \"reachable\"\n\
         [[assertion]]\nname = \"via1\"\nfrom = \"spoke11/vm\"\nto = \"spoke12/vm\"\nvia = \"nva1\"\n\
         [[assertion]]\nname = \"not2\"\nfrom = \"spoke11/vm\"\nto = \"spoke12/vm\"\nnot_via = [\"nva2\"]\n\
         [[assertion]]\nname = \"both\"\nfrom = \"spoke11/vm\"\nto = \"spoke12/vm\"\nvia = [\"nva1\", \"nva2\"]\n",
    );
    let f = failed(&r);
    let holds = |n: &str| r.intents.iter().find(|i| i.name == n).unwrap().holds;
    assert!(holds("reach"), "{f:?}");
    assert!(f.contains(&("via1".into(), "waypoint")), "{f:?}");
    assert!(f.contains(&("not2".into(), "not-via")), "{f:?}");
    assert!(f.contains(&("both".into(), "waypoint")), "{f:?}");
    let reach = r.intents.iter().find(|i| i.name == "reach").unwrap();
    assert!(reach.walks >= 2, "both ECMP branches walked: {reach:?}");
}

/// Waypoints in order (scenario 8): spoke11 → spoke21 crosses nva1, then
/// the VXLAN tunnel, then nva2; the reverse order does not hold.
#[test]
fn waypoints_are_checked_in_their_order() {
    let (_, r) = run_with(
        "multi-region-vxlan",
        "[[assertion]]\nname = \"in-order\"\nfrom = \"spoke11-vm\"\nto = \"spoke21\"\nvia = [\"nva1\", \"nva2\"]\n\
         [[assertion]]\nname = \"reversed\"\nfrom = \"spoke11-vm\"\nto = \"spoke21\"\nvia = [\"nva2\", \"nva1\"]\n",
    );
    let f = failed(&r);
    assert!(r.intents[r.intents.len() - 2].holds, "{f:?}");
    let rev = r
        .violations()
        .find(|x| x.intent == Some(r.intents.len() - 1))
        .unwrap_or_else(|| panic!("{f:?}"));
    assert!(rev.detail.contains("in this order"), "{}", rev.detail);
}

/// VNets as senders and destinations (scenario 14): spokes peered only
/// with the hub cannot reach each other (peering is not transitive, R45);
/// with the UDRs through nva1 they can, and the isolation fails with a
/// counterexample from spoke11's range delivered in spoke12's.
#[test]
fn vnet_isolation_follows_the_udrs() {
    let iso = "[[assertion]]\nname = \"iso\"\nfrom = \"spoke11\"\nto = \"spoke12\"\nexpect = \"isolated\"\n";
    let (_, r) = run_with("spoke-to-spoke-no-udr", iso);
    assert!(r.intents.last().unwrap().holds, "{:?}", failed(&r));
    let (_, r) = run_with("spoke-to-spoke-udr", iso);
    let v = r
        .violations()
        .find(|f| f.kind == "isolation")
        .unwrap_or_else(|| panic!("{:?}", failed(&r)));
    let ce = v.counterexample.unwrap();
    let (s11, s12): (ipnet::IpNet, ipnet::IpNet) = (
        "10.11.0.0/16".parse().unwrap(),
        "10.12.0.0/16".parse().unwrap(),
    );
    assert!(
        s11.contains(&ce.header.src) && s12.contains(&ce.header.dst),
        "{}",
        ce.header
    );
}

/// A prefix as sender: the NICs inside it send, from addresses inside it.
#[test]
fn a_prefix_names_the_senders_inside_it() {
    let a = "[[assertion]]\nname = \"p\"\nfrom = \"10.11.0.0/16\"\nto = \"spoke12-vm\"\n";
    let (_, r) = run_with("spoke-to-spoke-udr", a);
    assert!(r.intents[0..].last().unwrap().holds, "{:?}", failed(&r));
    assert_eq!(r.intents.last().unwrap().senders, 1);
    let (_, r) = run_with("spoke-to-spoke-no-udr", a);
    let v = r
        .violations()
        .find(|f| f.intent.is_some())
        .unwrap_or_else(|| panic!("{:?}", failed(&r)));
    assert_eq!(
        v.counterexample.unwrap().header.src.to_string(),
        "10.11.1.4"
    );
}

/// Protocol and ports reach the counterexample, which replays to the
/// same verdict.
#[test]
fn protocol_and_ports_are_the_counterexamples() {
    let (t, r) = run_with(
        "spoke-to-spoke-no-udr",
        "[[assertion]]\nname = \"dns\"\nfrom = \"spoke11-vm\"\nto = \"spoke12-vm\"\nprotocol = \"udp\"\nports = \"53-60\"\n",
    );
    let v = r
        .violations()
        .find(|f| f.intent.is_some())
        .unwrap_or_else(|| panic!("{:?}", failed(&r)));
    let ce = v.counterexample.unwrap();
    assert_eq!((ce.header.proto, ce.header.dport), (17, 53));
    let world = World::new(&converge(&t, &[]));
    let tr = world.walk_from(ce.from, vnetplane::dataplane::Packet::new(ce.header));
    assert_eq!(tr.verdict.kind(), "dropped");
}

/// An intent that names no flow checks nothing, and says so (a subnet
/// without NICs as sender).
#[test]
fn an_intent_naming_no_flow_fails_as_vacuous() {
    let (_, r) = run_with(
        "hub-rs-two-nvas",
        "[[assertion]]\nname = \"empty\"\nfrom = \"hub1/RouteServerSubnet\"\nto = \"spoke12-vm\"\n",
    );
    assert_eq!(failed(&r), vec![("empty".to_string(), "vacuous")]);
}

/// `symmetric` (R50: a stateful NVA must see both directions): spokes
/// steered to one NVA each way are symmetric through nva1 alone, and not
/// when spoke12's UDR points at nva2; the counterexample flow's answer
/// crosses nva2.
#[test]
fn symmetric_intents_follow_both_directions() {
    let sym = "[[assertion]]\nname = \"sym\"\nfrom = \"spoke11-vm\"\nto = \"spoke12-vm\"\nsymmetric = true\n";
    let (_, r) = run_with("spoke-to-spoke-udr", sym);
    assert!(r.intents.last().unwrap().holds, "{:?}", failed(&r));
    let src = vnetplane::topology::BUILTIN
        .iter()
        .find(|(n, _)| *n == "spoke-to-spoke-udr")
        .unwrap()
        .1;
    // A second NVA, and spoke12's own table through it.
    let two = src.replace("[[route_table]]", "[[nic]]\nname = \"nva2\"\nvnet = \"hub1\"\nsubnet = \"nva\"\nips = [\"10.1.2.5\"]\nip_forwarding = true\n\n[[nva]]\nname = \"nva2\"\nnics = [\"nva2\"]\n  [[nva.route]]\n  prefix = \"0.0.0.0/0\"\n  via = \"10.1.2.1\"\n\n[[route_table]]\nname = \"rt-spoke12\"\n  [[route_table.route]]\n  name = \"to-nva2\"\n  prefix = \"10.0.0.0/8\"\n  next_hop_type = \"VirtualAppliance\"\n  next_hop_ip = \"10.1.2.5\"\n\n[[route_table]]");
    let two = two.replacen(
        "name = \"vm\"\n  prefix = \"10.12.1.0/24\"\n  route_table = \"rt-spokes\"",
        "name = \"vm\"\n  prefix = \"10.12.1.0/24\"\n  route_table = \"rt-spoke12\"",
        1,
    );
    assert!(
        two.contains("route_table = \"rt-spoke12\""),
        "the fixture changed: {two}"
    );
    let t = load(&format!("{two}\n{sym}"));
    let r = verify::verify(&t, &[]).unwrap();
    let v = r
        .violations()
        .find(|f| f.kind == "asymmetric" && f.intent.is_some())
        .unwrap_or_else(|| panic!("{:?}", failed(&r)));
    assert!(
        v.detail.contains("[nva1]") && v.detail.contains("[nva2]"),
        "{}",
        v.detail
    );
}

/// Intent fields are checked when the file is read.
#[test]
fn intent_fields_are_checked_on_load() {
    let src = vnetplane::topology::BUILTIN
        .iter()
        .find(|(n, _)| *n == "hub-rs-two-nvas")
        .unwrap()
        .1;
    for (bad, field) in [
        ("ports = \"70000\"", "ports"),
        ("ports = \"90-80\"", "ports"),
        ("protocol = \"gre\"", "protocol"),
        ("protocol = \"icmp\"\nports = \"53\"", "ports"),
        ("not_via = [\"nva9\"]", "not_via"),
        ("via = \"nva1\"\nnot_via = \"nva1\"", "not_via"),
        ("expect = \"isolated\"\nvia = \"nva1\"", "via"),
        ("expect = \"isolated\"\nsymmetric = true", "symmetric"),
        ("expect = \"maybe\"", "expect"),
    ] {
        let text = format!(
            "{src}\n[[assertion]]\nname = \"x\"\nfrom = \"spoke11-vm\"\nto = \"spoke12/vm\"\n{bad}\n"
        );
        let e = vnetplane::topology::load_str("t.toml", &text)
            .expect_err(bad)
            .to_string();
        assert!(e.contains(&format!("field `{field}`")), "{bad}: {e}");
    }
    let text = format!(
        "{src}\n[[assertion]]\nname = \"x\"\nfrom = \"spoke11-vm\"\nto = \"hub1/nosuch\"\n"
    );
    let e = vnetplane::topology::load_str("t.toml", &text)
        .unwrap_err()
        .to_string();
    assert!(e.contains("field `to`") && e.contains("hub1/nosuch"), "{e}");
}
