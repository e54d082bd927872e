//! `verify` is sound on random intents: for random assertions on the
//! built-in topologies (some with an NVA down), random flows the assertion
//! names are traced hop by hop; a flow that breaks an assertion `verify`
//! declared holding fails the test, and so does a reported violation whose
//! counterexample flow does not break it.

use std::net::IpAddr;

use proptest::prelude::*;
use vnetplane::dataplane::{Header, PROTO_TCP, PROTO_UDP, Packet, Start, Trace, Verdict, World};
use vnetplane::topology::{self, Endpoint, Expect, Topology};
use vnetplane::verify;

use super::util::converge;

/// Whether a walk keeps the assertion (as SPEC words it: delivered or
/// dropped as expected, crossing the waypoint when one is named).
fn keeps(t: &Topology, a: &topology::Assertion, tr: &Trace) -> bool {
    let delivered = matches!(tr.verdict, Verdict::Delivered { .. });
    match (a.expect, delivered) {
        (Expect::Delivered, false) | (Expect::Dropped, true) => false,
        (Expect::Dropped, false) => true,
        (Expect::Delivered, true) => {
            // The waypoints, in order, among the NVAs the path crosses.
            let crossed: Vec<&str> = tr
                .hops
                .iter()
                .filter(|h| h.kind == "nva")
                .map(|h| h.node.as_str())
                .collect();
            let mut rest = crossed.iter();
            a.via.iter().all(|v| {
                let nva = format!("nva {}", t.nvas[v.idx()].name);
                rest.any(|c| *c == nva)
            })
        }
    }
}

/// An address of the assertion's target, picked by `r`.
fn address_in(t: &Topology, e: &Endpoint, r: u64) -> Option<IpAddr> {
    match e {
        Endpoint::Nic(n) => t.nic(*n).ips.first().copied(),
        Endpoint::Internet => Some("198.51.100.10".parse().unwrap()),
        Endpoint::Prefix(ipnet::IpNet::V4(p)) => {
            let host = 32 - u32::from(p.prefix_len());
            let off = if host == 0 {
                0
            } else {
                (r as u32) & (u32::MAX >> (32 - host))
            };
            Some(IpAddr::V4((u32::from(p.network()) | off).into()))
        }
        _ => None,
    }
}

/// The prefixes an assertion on `t` may name.
fn prefixes(t: &Topology) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    v.extend(
        t.vnets
            .iter()
            .flat_map(|x| x.address_space.iter())
            .filter(|p| p.addr().is_ipv4())
            .map(ToString::to_string),
    );
    v.extend(
        t.subnets
            .iter()
            .flat_map(|s| s.prefixes.iter())
            .filter(|p| p.addr().is_ipv4())
            .map(ToString::to_string),
    );
    v.extend(["10.0.0.0/8", "192.168.0.0/16", "0.0.0.0/0", "172.16.0.0/12"].map(String::from));
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn verify_agrees_with_the_flows_it_judges(
        which in 0usize..64,
        from in 0usize..64,
        to in 0usize..256,
        kind in 0u8..4,
        via in 0usize..8,
        down in prop::option::of(0usize..8),
        flows in prop::collection::vec((any::<u64>(), any::<u16>(), any::<u16>(), any::<bool>()), 24),
    ) {
        // The designs with several NVAs (ECMP, failover) twice as often:
        // their intents are the ones a single flow can misjudge.
        let builtins: Vec<(&str, &str)> = topology::BUILTIN
            .iter()
            .copied()
            .filter(|(n, _)| *n != "example")
            .flat_map(|b| {
                let several = b.1.matches("[[nva]]").count() > 1;
                std::iter::repeat_n(b, if several { 2 } else { 1 })
            })
            .collect();
        let (name, src) = builtins[which % builtins.len()];
        let base = topology::load_str(name, src).unwrap();
        if base.nics.len() < 2 {
            return Ok(());
        }
        let sender = &base.nics[from % base.nics.len()].name;
        // Four kinds of intent: reach a VM; reach it through an NVA;
        // isolation of a prefix; reach the Internet (through an NVA).
        let nic = &base.nics[to % base.nics.len()].name;
        let ps = prefixes(&base);
        let nva = (!base.nvas.is_empty()).then(|| &base.nvas[via % base.nvas.len()].name);
        let (target, expect, through) = match kind {
            0 => (nic.clone(), "delivered", None),
            1 => (nic.clone(), "delivered", nva),
            2 => (ps[to % ps.len()].clone(), "dropped", None),
            _ => ("internet".to_string(), "delivered", nva),
        };
        if &target == sender {
            return Ok(());
        }
        let mut a = format!(
            "\n[[assertion]]\nname = \"random\"\nfrom = \"{sender}\"\nto = \"{target}\"\nexpect = \"{expect}\"\n"
        );
        if let Some(n) = through {
            a.push_str(&format!("via = \"{n}\"\n"));
        }
        let Ok(t) = topology::load_str(name, &format!("{src}{a}")) else {
            return Ok(());
        };
        let assertion = t.assertions.last().unwrap().clone();
        // Some runs with an NVA down (the control plane reconverged).
        let failures = match (down, t.nvas.is_empty()) {
            (Some(k), false) => verify::parse_failures(&t, &t.nvas[k % t.nvas.len()].name).unwrap(),
            _ => Vec::new(),
        };
        let report = verify::verify(&t, &failures).unwrap();
        let k = t.assertions.len() - 1;
        let broken: Vec<&verify::Finding> = report.violations().filter(|f| f.intent == Some(k)).collect();
        let Endpoint::Nic(nic) = assertion.from else { return Ok(()); };
        let start = Start::Nic(nic);
        // Every run verify judged: intact, and under the failure if any.
        let mut runs = vec![(None, Vec::new())];
        runs.extend(failures.iter().map(|f| (Some(f.name.clone()), f.events.clone())));
        for (failure, events) in runs {
            let cp = vnetplane::control::converge(&t, &events).unwrap();
            let world = World::new(&cp);
            let here: Vec<&&verify::Finding> = broken.iter().filter(|f| f.failure == failure).collect();
            if here.is_empty() {
                // Held: no flow it names may break it.
                for &(r, sport, dport, udp) in &flows {
                    let Some(dst) = address_in(&t, &assertion.to, r) else { continue };
                    let Some(&src) = t.nic(nic).ips.iter().find(|ip| ip.is_ipv4() == dst.is_ipv4()) else { continue };
                    if src == dst {
                        continue;
                    }
                    let h = Header { src, dst, proto: if udp { PROTO_UDP } else { PROTO_TCP }, sport, dport };
                    let tr = world.walk_from(start, Packet::new(h));
                    prop_assert!(
                        keeps(&t, &assertion, &tr),
                        "{name} {a}: verify says it holds{}, but {h} ends {} at {}",
                        failure.as_deref().map(|f| format!(" under {f}")).unwrap_or_default(),
                        tr.verdict.kind(),
                        tr.verdict.at()
                    );
                }
            } else {
                // Violated: its counterexample flow breaks it.
                for f in here {
                    let ce = f.counterexample.expect("a counterexample");
                    let tr = world.walk_from(ce.from, Packet::new(ce.header));
                    prop_assert!(!keeps(&t, &assertion, &tr), "{name} {a}: the counterexample {} keeps it", ce.header);
                }
            }
        }
        let _ = converge;
    }
}
