//! LPM lookups under criterion: our FIB (single and batch) against the
//! treebitmap fork and prefix-trie, on the same destinations, for the
//! Azure-like 1k table and the real IPv4 and IPv6 tables. Throughput is in
//! lookups (elements) per second. `vnetplane bench lpm` runs the full matrix
//! (four tables, random and in-table destinations, bytes and build times) in
//! one process and prints ratios.
//!
//! Run: `cargo bench --features bench --bench lpm`

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use vnetplane::bench::tables;
use vnetplane::fib::Fib;

const KEYS: usize = 100_000;

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn v4(c: &mut Criterion, name: &str, routes: &[(Ipv4Net, u32)]) {
    let fib = Fib::build(routes.iter().map(|(n, v)| (IpNet::V4(*n), *v)));
    let mut tb = ip_network_table_deps_treebitmap::IpLookupTable::<Ipv4Addr, u32>::new();
    let mut pt = prefix_trie::PrefixMap::<Ipv4Net, u32>::new();
    for (n, v) in routes {
        tb.insert(n.network(), u32::from(n.prefix_len()), *v);
        pt.insert(*n, *v);
    }
    let keys = tables::in_table_v4(routes, KEYS, 1);
    let mut g = c.benchmark_group(format!("lpm/{name}"));
    g.throughput(Throughput::Elements(KEYS as u64));
    g.sample_size(20);
    g.bench_function("vnetplane-single", |b| {
        b.iter(|| {
            keys.iter()
                .map(|&k| u64::from(fib.lookup_v4(k)))
                .sum::<u64>()
        })
    });
    let mut out = vec![0u32; KEYS];
    g.bench_function("vnetplane-batch", |b| {
        b.iter(|| {
            fib.lookup_v4_batch(&keys, &mut out);
            black_box(out[KEYS - 1])
        })
    });
    g.bench_function("treebitmap", |b| {
        b.iter(|| {
            keys.iter()
                .map(|&k| {
                    tb.longest_match(Ipv4Addr::from(k))
                        .map_or(0, |(_, _, v)| u64::from(*v))
                })
                .sum::<u64>()
        })
    });
    g.bench_function("prefix-trie", |b| {
        b.iter(|| {
            keys.iter()
                .map(|&k| {
                    pt.get_lpm(&Ipv4Net::new(Ipv4Addr::from(k), 32).expect("/32"))
                        .map_or(0, |(_, v)| u64::from(*v))
                })
                .sum::<u64>()
        })
    });
    g.finish();
}

fn v6(c: &mut Criterion, routes: &[(Ipv6Net, u32)]) {
    let fib = Fib::build(routes.iter().map(|(n, v)| (IpNet::V6(*n), *v)));
    let mut tb = ip_network_table_deps_treebitmap::IpLookupTable::<Ipv6Addr, u32>::new();
    for (n, v) in routes {
        tb.insert(n.network(), u32::from(n.prefix_len()), *v);
    }
    let keys = tables::in_table_v6(routes, KEYS, 2);
    let mut g = c.benchmark_group("lpm/ipv6-real");
    g.throughput(Throughput::Elements(KEYS as u64));
    g.sample_size(20);
    g.bench_function("vnetplane-single", |b| {
        b.iter(|| {
            keys.iter()
                .map(|&k| u64::from(fib.lookup_v6(k)))
                .sum::<u64>()
        })
    });
    g.bench_function("treebitmap", |b| {
        b.iter(|| {
            keys.iter()
                .map(|&k| {
                    tb.longest_match(Ipv6Addr::from(k))
                        .map_or(0, |(_, _, v)| u64::from(*v))
                })
                .sum::<u64>()
        })
    });
    g.finish();
}

fn lpm(c: &mut Criterion) {
    v4(c, "azure-1k", &tables::azure_1k());
    let real =
        tables::read_lpm_file(&tables::default_bgp_table()).expect("benches/data/bgpas.lpm.xz");
    v4(c, "ipv4-real", &real.v4);
    v6(c, &real.v6);
    let mut g = c.benchmark_group("fib-build");
    g.sample_size(10);
    g.bench_function("ipv4-real", |b| {
        b.iter(|| Fib::build(real.v4.iter().map(|(n, v)| (IpNet::V4(*n), *v))))
    });
    g.finish();
}

criterion_group!(benches, lpm);
criterion_main!(benches);
