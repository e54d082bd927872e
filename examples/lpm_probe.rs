//! Single against batch lookups on the real IPv4 table, alternating, for
//! tuning the batch path: `cargo run --release --features bench --example lpm_probe`.

use std::time::Instant;

use ipnet::IpNet;
use vnetplane::bench::tables;
use vnetplane::fib::Fib;

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let real =
        tables::read_lpm_file(&tables::default_bgp_table()).expect("benches/data/bgpas.lpm.xz");
    let fib = Fib::build(real.v4.iter().map(|(n, v)| (IpNet::V4(*n), *v)));
    for (dest, keys) in [
        ("in-table", tables::in_table_v4(&real.v4, 2_000_000, 8)),
        ("random", tables::random_v4(2_000_000, 7)),
    ] {
        let mut out = vec![0u32; keys.len()];
        for round in 0..3 {
            let t = Instant::now();
            let s: u64 = keys.iter().map(|&k| u64::from(fib.lookup_v4(k))).sum();
            let single = keys.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
            let t = Instant::now();
            fib.lookup_v4_batch(&keys, &mut out);
            let batch = keys.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
            let s2: u64 = out.iter().map(|&v| u64::from(v)).sum();
            assert_eq!(s, s2);
            println!("{dest} round {round}: single {single:.1} M/s, batch {batch:.1} M/s");
        }
    }
}
