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
/// issue's third hole): traffic to a load balancer's frontend, which
/// `trace` shows looping through its backend NVA, is reported by `verify`.
#[test]
fn a_loop_through_a_load_balancer_frontend_is_reported() {
    let t = builtin("example");
    let world = World::new(&converge(&t, &[]));
    let nic = t.nic_by_name("spoke11-vm").unwrap();
    let tr = world.walk(
        nic,
        vnetplane::dataplane::Packet::new(vnetplane::dataplane::Header {
            src: "10.11.1.4".parse().unwrap(),
            dst: "10.1.2.10".parse().unwrap(),
            proto: vnetplane::dataplane::PROTO_TCP,
            sport: 49152,
            dport: 443,
        }),
    );
    assert_eq!(tr.verdict.kind(), "loop");
    let r = verify::verify(&t, &[]).unwrap();
    assert!(
        r.violations()
            .any(|f| f.kind == "loop" && f.dst == "10.1.2.10"),
        "{:?}",
        r.violations()
            .map(|f| (&f.kind, &f.dst))
            .collect::<Vec<_>>()
    );
}
