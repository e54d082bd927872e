//! Control-plane cost of the foundation: loading + validating a topology file
//! and computing every subnet's effective routes, on generated hub-and-spoke
//! topologies (50 and 500 spokes, 1,000 on-premises prefixes through the
//! gateway, so every spoke table carries ~1,010 routes).
//!
//! Run: `cargo bench --bench effective`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vnetplane::control::effective::{self, Injections};
use vnetplane::topology::{self, SubnetId, generate};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("effective");
    g.sample_size(10);
    for spokes in [50usize, 500] {
        let src = generate::hub_spoke(spokes, 2, 1000);
        g.bench_with_input(BenchmarkId::new("load+validate", spokes), &src, |b, src| {
            b.iter(|| topology::load_str("gen.toml", black_box(src)).expect("loads"))
        });
        let t = topology::load_str("gen.toml", &src).expect("loads");
        g.bench_with_input(BenchmarkId::new("all-subnet-tables", spokes), &t, |b, t| {
            b.iter(|| {
                let inj = Injections::static_gateways(t);
                let mut n = 0usize;
                for i in 0..t.subnets.len() {
                    n += effective::subnet_table(t, &inj, SubnetId(i as u32))
                        .routes
                        .len();
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
