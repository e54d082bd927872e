//! The compiled FIB against oracles: a naive longest-prefix match on random
//! tables, the control plane's own lookup on every built-in topology, and the
//! `ip_network_table-deps-treebitmap` crate on the real global table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
#[cfg(feature = "bench")]
use vnetplane::bench::tables;
use vnetplane::control::effective;
use vnetplane::fib::{Change, Fib, FibSet};

use super::util::*;

fn naive<A: Clone>(routes: &[(IpNet, A)], ip: IpAddr) -> Option<A> {
    // Last given wins for duplicates, like Fib::build.
    let mut best: Option<(u8, usize)> = None;
    for (i, (p, _)) in routes.iter().enumerate() {
        if p.trunc().contains(&ip)
            && best.is_none_or(|(l, j)| p.prefix_len() > l || (p.prefix_len() == l && i > j))
        {
            best = Some((p.prefix_len(), i));
        }
    }
    best.map(|(_, i)| routes[i].1.clone())
}

/// Addresses worth probing for a table: each prefix's first and last address
/// and their neighbours.
fn probes(routes: &[(IpNet, u32)]) -> Vec<IpAddr> {
    let mut v = Vec::new();
    for (p, _) in routes {
        let p = p.trunc();
        match p {
            IpNet::V4(n) => {
                let lo = u32::from(n.network());
                let hi = u32::from(n.broadcast());
                for a in [
                    lo,
                    hi,
                    lo.wrapping_sub(1),
                    hi.wrapping_add(1),
                    lo / 2 + hi / 2,
                ] {
                    v.push(IpAddr::V4(Ipv4Addr::from(a)));
                }
            }
            IpNet::V6(n) => {
                let lo = u128::from(n.network());
                let hi = u128::from(n.broadcast());
                for a in [
                    lo,
                    hi,
                    lo.wrapping_sub(1),
                    hi.wrapping_add(1),
                    lo / 2 + hi / 2,
                ] {
                    v.push(IpAddr::V6(Ipv6Addr::from(a)));
                }
            }
        }
    }
    v
}

fn v4_route() -> impl Strategy<Value = (IpNet, u32)> {
    // Few top bits vary so prefixes nest, touch and repeat; lengths cover /0../32.
    (0u32..16, any::<u32>(), 0u8..=32, 1u32..6).prop_map(|(top, low, len, v)| {
        let addr = (top << 28) | (low >> 4);
        (
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc()),
            v,
        )
    })
}

fn v6_route() -> impl Strategy<Value = (IpNet, u32)> {
    (
        0u128..8,
        any::<u64>(),
        prop_oneof![0u8..=128, 40u8..=64, Just(128u8)],
        1u32..6,
    )
        .prop_map(|(top, low, len, v)| {
            let addr = (0xfd00u128 << 112) | (top << 100) | ((low as u128) << 36);
            (
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap().trunc()),
                v,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fib_matches_naive_lpm(routes in prop::collection::vec(prop_oneof![v4_route(), v6_route()], 0..80), extra in prop::collection::vec(any::<u32>(), 0..64)) {
        let fib = Fib::build(routes.clone());
        let mut addrs = probes(&routes);
        addrs.extend(extra.iter().map(|&a| IpAddr::V4(Ipv4Addr::from(a))));
        addrs.extend(extra.iter().map(|&a| IpAddr::V6(Ipv6Addr::from((0xfd00u128 << 112) | ((a as u128) << 90)))));
        for ip in &addrs {
            prop_assert_eq!(fib.lookup(*ip).copied(), naive(&routes, *ip), "ip {}", ip);
        }
        // The batch path agrees with the single path.
        let keys: Vec<u32> = addrs.iter().filter_map(|a| match a { IpAddr::V4(x) => Some(u32::from(*x)), _ => None }).collect();
        let mut out = vec![0; keys.len()];
        fib.lookup_v4_batch(&keys, &mut out);
        for (k, o) in keys.iter().zip(&out) {
            prop_assert_eq!(*o, fib.lookup_v4(*k));
        }
        let keys6: Vec<u128> = addrs.iter().filter_map(|a| match a { IpAddr::V6(x) => Some(u128::from(*x)), _ => None }).collect();
        let mut out6 = vec![0; keys6.len()];
        fib.lookup_v6_batch(&keys6, &mut out6);
        for (k, o) in keys6.iter().zip(&out6) {
            prop_assert_eq!(*o, fib.lookup_v6(*k));
        }
    }

    #[test]
    fn mostly_sorted_sort_equals_sort(run in prop::collection::vec(any::<u16>(), 0..200), around in prop::collection::vec((any::<bool>(), any::<u16>()), 0..20), shuffled in prop::collection::vec(any::<u16>(), 0..50)) {
        // A long sorted run with a few values before and after it (how NIC
        // tables come), and arbitrary vectors (the general fallback).
        let mut sorted_run = run.clone();
        sorted_run.sort();
        let mut v: Vec<u16> = around.iter().filter(|x| x.0).map(|x| x.1).collect();
        v.extend(&sorted_run);
        v.extend(around.iter().filter(|x| !x.0).map(|x| x.1));
        for input in [v, shuffled] {
            let mut expect = input.clone();
            expect.sort();
            prop_assert_eq!(vnetplane::control::sorted::sorted_mostly_in_order(input), expect);
        }
    }

    #[test]
    fn rebuilt_from_answers_like_a_build(routes in prop::collection::vec(prop_oneof![v4_route(), v6_route()], 0..80), adds in prop::collection::vec(prop_oneof![v4_route(), v6_route()], 0..12), removes in prop::collection::vec(0usize..80, 0..12), revalues in prop::collection::vec(0usize..80, 0..6)) {
        // A table, then another close to it (routes added, removed, given
        // other actions), compiled from the first and in full.
        let base = Fib::build(routes.clone());
        let mut map: std::collections::BTreeMap<IpNet, u32> = base.routes().iter().cloned().collect();
        for (p, v) in &adds {
            map.insert(*p, *v);
        }
        for &i in &removes {
            if let Some((p, _)) = base.routes().get(i) {
                map.remove(p);
            }
        }
        for &i in &revalues {
            if let Some((p, v)) = base.routes().get(i) {
                map.insert(*p, v + 100);
            }
        }
        let target: Vec<(IpNet, u32)> = map.into_iter().collect();
        let derived = base.rebuilt_from(target.clone());
        let full = Fib::build(target.clone());
        prop_assert_eq!(derived.routes(), full.routes());
        // Derived again from the derived one (patches on patches).
        let base_routes: Vec<(IpNet, u32)> = base.routes().to_vec();
        let again = derived.rebuilt_from(base_routes.clone());
        for ip in probes(&target).into_iter().chain(probes(&routes)) {
            prop_assert_eq!(derived.lookup(ip), full.lookup(ip), "ip {}", ip);
            prop_assert_eq!(derived.lookup(ip).copied(), naive(&target, ip), "ip {}", ip);
            prop_assert_eq!(again.lookup(ip).copied(), naive(&base_routes, ip), "ip {}", ip);
        }
    }

    #[test]
    fn apply_equals_rebuild(routes in prop::collection::vec(v4_route(), 0..40), adds in prop::collection::vec(v4_route(), 0..10), removes in prop::collection::vec(0usize..40, 0..10)) {
        let fib = Fib::build(routes.clone());
        let mut changes: Vec<Change<u32>> = adds.iter().map(|(p, v)| Change::Upsert(*p, *v)).collect();
        changes.extend(removes.iter().filter_map(|&i| routes.get(i)).map(|(p, _)| Change::Remove(*p)));
        let applied = fib.apply(&changes);
        // The oracle: the same edits on a map, then LPM.
        let mut map: std::collections::BTreeMap<IpNet, u32> = fib.routes().iter().cloned().collect();
        for c in &changes {
            match c {
                Change::Upsert(p, v) => { map.insert(*p, *v); }
                Change::Remove(p) => { map.remove(p); }
            }
        }
        let expect: Vec<(IpNet, u32)> = map.into_iter().collect();
        for ip in probes(&expect).into_iter().chain(probes(&routes)) {
            prop_assert_eq!(applied.lookup(ip).copied(), naive(&expect, ip), "ip {}", ip);
        }
    }
}

#[test]
fn edge_tables() {
    // Empty, default only, host routes at both ends of the space.
    let f: Fib<u32> = Fib::build(vec![]);
    assert_eq!(f.lookup("1.2.3.4".parse().unwrap()), None);
    let f = Fib::build(vec![
        ("0.0.0.0/0".parse().unwrap(), 1u32),
        ("::/0".parse().unwrap(), 2),
    ]);
    assert_eq!(f.lookup("255.255.255.255".parse().unwrap()), Some(&1));
    assert_eq!(f.lookup("::".parse().unwrap()), Some(&2));
    let f = Fib::build(vec![
        ("0.0.0.0/32".parse().unwrap(), 1u32),
        ("255.255.255.255/32".parse().unwrap(), 2),
        (
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
                .parse()
                .unwrap(),
            3,
        ),
        ("::/128".parse().unwrap(), 4),
    ]);
    assert_eq!(f.lookup("0.0.0.0".parse().unwrap()), Some(&1));
    assert_eq!(f.lookup("0.0.0.1".parse().unwrap()), None);
    assert_eq!(f.lookup("255.255.255.255".parse().unwrap()), Some(&2));
    assert_eq!(f.lookup("255.255.255.254".parse().unwrap()), None);
    assert_eq!(
        f.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()),
        Some(&3)
    );
    assert_eq!(f.lookup("::".parse().unwrap()), Some(&4));
    assert_eq!(f.lookup("::1".parse().unwrap()), None);
}

#[test]
fn nic_fibs_answer_like_the_control_plane() {
    // Every subnet of every built-in topology: the FIB's action equals the
    // next hop of the route `effective::lookup` selects (R14, R16 included).
    for (name, _) in vnetplane::topology::BUILTIN {
        let t = builtin(name);
        let cp = converge(&t, &[]);
        let set = FibSet::compile(&cp);
        for i in 0..t.subnets.len() {
            let sid = vnetplane::topology::SubnetId(i as u32);
            let table = cp.subnet_table(sid);
            let fib = &set.by_subnet[i];
            let routes: Vec<(IpNet, u32)> = table.routes.iter().map(|r| (r.prefix, 0)).collect();
            let mut addrs = probes(&routes);
            addrs.extend(
                [
                    "198.51.100.10",
                    "192.168.1.10",
                    "10.50.0.1",
                    "2001:db8::10",
                    "8.8.8.8",
                ]
                .map(|a| a.parse::<IpAddr>().unwrap()),
            );
            for ip in addrs {
                let d = effective::lookup(&table, ip);
                let want = d.selected.map(|k| {
                    (
                        table.routes[k].next_hop_type,
                        table.routes[k].next_hop_ips.clone(),
                    )
                });
                let got = fib.lookup(ip).map(|a| (a.next_hop_type, a.ips.clone()));
                assert_eq!(got, want, "{name} subnet {} ip {ip}", t.subnet_path(sid));
            }
        }
    }
}

#[cfg(feature = "bench")]
#[test]
fn large_tables_made_from_close_ones_answer_like_full_builds() {
    // A hub whose NVA advertises 5,000 /24s to its Route Server: 11
    // distinct tables of ~5,000 routes, compiled on every core, each after
    // the first made from the first (`Fib::rebuilt_from`); then the same
    // with 40 prefixes withdrawn, each made from the previous set's table
    // of its subnet. Every table answers like a full build of its routes.
    use vnetplane::control::events::Event;
    let n = 5000;
    let (t, mut evs) = vnetplane::bench::pipeline::absorb_case(n).unwrap();
    assert!(n >= vnetplane::fib::DERIVE_MIN);
    let check = |set: &FibSet, cp: &vnetplane::control::ControlPlane| {
        let tables = cp.subnet_tables();
        for (i, table) in tables.iter().enumerate() {
            let routes = vnetplane::fib::nic_routes(table);
            let full = Fib::build(routes.clone());
            assert_eq!(set.by_subnet[i].routes(), full.routes(), "subnet {i}");
            let keyed: Vec<(IpNet, u32)> = routes.iter().map(|(p, _)| (*p, 0)).collect();
            for ip in probes(&keyed) {
                assert_eq!(
                    set.by_subnet[i].lookup(ip),
                    full.lookup(ip),
                    "subnet {i} ip {ip}"
                );
            }
        }
        tables.len()
    };
    let cp = vnetplane::control::converge(&t, &evs).unwrap();
    let (set, compiled) = FibSet::compile_reusing(&cp, None);
    assert_eq!(set.distinct, 11);
    assert_eq!(compiled, 11);
    assert!(set.by_subnet.iter().all(|f| f.len() > n));
    check(&set, &cp);
    let Event::Advertise { speaker, .. } = evs[0].clone() else {
        panic!("absorb case advertises")
    };
    for e in evs.clone().iter().step_by(125) {
        if let Event::Advertise { prefix, .. } = e {
            evs.push(Event::Withdraw {
                speaker: speaker.clone(),
                prefix: *prefix,
            });
        }
    }
    let cp2 = vnetplane::control::converge(&t, &evs).unwrap();
    let (set2, compiled2) = FibSet::compile_reusing(&cp2, Some(&set));
    assert_eq!(compiled2, 11);
    assert!(
        set2.by_subnet
            .iter()
            .all(|f| f.len() > n - 40 && f.len() < n)
    );
    check(&set2, &cp2);
}

#[test]
fn identical_route_sets_compile_once() {
    // 100,000 NICs in 1,000 subnets: at most one table per subnet, and NICs of
    // a subnet share it.
    let src = vnetplane::topology::generate::hub_spoke(1000, 100, 10);
    let t = vnetplane::topology::load_str("big.toml", &src).unwrap();
    assert_eq!(t.nics.len(), 100_001);
    let cp = converge(&t, &[]);
    let set = FibSet::compile(&cp);
    assert!(
        set.distinct <= t.subnets.len(),
        "{} tables for {} subnets",
        set.distinct,
        t.subnets.len()
    );
    let a = t.nic_by_name("spoke7-vm3").unwrap();
    let b = t.nic_by_name("spoke7-vm99").unwrap();
    assert!(std::sync::Arc::ptr_eq(
        set.for_nic(&cp, a),
        set.for_nic(&cp, b)
    ));
    // Subnets with the same routes share one table even across VNets.
    let same = include_str!("../../topologies/spoke-to-spoke-udr.toml");
    let t = load(same);
    let cp = converge(&t, &[]);
    let set = FibSet::compile(&cp);
    // hub1's nva and vm subnets hold the same routes; each spoke's differ.
    assert_eq!((t.subnets.len(), set.distinct), (4, 3));
    let nva = t.nic_by_name("nva1").unwrap();
    let vm = t.nic_by_name("hub1-vm").unwrap();
    assert!(std::sync::Arc::ptr_eq(
        set.for_nic(&cp, nva),
        set.for_nic(&cp, vm)
    ));
}

#[cfg(feature = "bench")]
#[test]
fn real_table_matches_treebitmap() {
    let list =
        tables::read_lpm_file(&tables::default_bgp_table()).expect("benches/data/bgpas.lpm.xz");
    assert_eq!(list.v4.len(), 1_072_529);
    assert_eq!(list.v6.len(), 176_388);
    let fib = Fib::build(
        list.v4
            .iter()
            .map(|(n, v)| (IpNet::V4(*n), *v))
            .chain(list.v6.iter().map(|(n, v)| (IpNet::V6(*n), *v))),
    );
    let mut tb4 = ip_network_table_deps_treebitmap::IpLookupTable::<Ipv4Addr, u32>::new();
    for (n, v) in &list.v4 {
        tb4.insert(n.network(), u32::from(n.prefix_len()), *v);
    }
    let mut tb6 = ip_network_table_deps_treebitmap::IpLookupTable::<Ipv6Addr, u32>::new();
    for (n, v) in &list.v6 {
        tb6.insert(n.network(), u32::from(n.prefix_len()), *v);
    }
    let keys: Vec<u32> = tables::random_v4(200_000, 1)
        .into_iter()
        .chain(tables::in_table_v4(&list.v4, 200_000, 2))
        .collect();
    let mut out = vec![0u32; keys.len()];
    fib.lookup_v4_batch(&keys, &mut out);
    for (k, o) in keys.iter().zip(&out) {
        let want = tb4.longest_match(Ipv4Addr::from(*k)).map(|(_, _, v)| *v);
        assert_eq!(fib.action(*o).copied(), want, "{}", Ipv4Addr::from(*k));
        assert_eq!(fib.lookup_v4(*k), *o);
    }
    let keys6: Vec<u128> = tables::random_v6(100_000, 3)
        .into_iter()
        .chain(tables::in_table_v6(&list.v6, 100_000, 4))
        .collect();
    let mut out6 = vec![0u32; keys6.len()];
    fib.lookup_v6_batch(&keys6, &mut out6);
    for (k, o) in keys6.iter().zip(&out6) {
        let want = tb6.longest_match(Ipv6Addr::from(*k)).map(|(_, _, v)| *v);
        assert_eq!(fib.action(*o).copied(), want, "{}", Ipv6Addr::from(*k));
    }
}
