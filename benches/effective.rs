//! Control-plane costs: loading + validating a topology file, converging BGP,
//! and computing every subnet's effective routes.
//!
//! - `effective/*`: generated hub-and-spoke topologies (50 and 500 spokes,
//!   1,000 on-premises prefixes through the gateway, so every spoke table
//!   carries ~1,010 routes).
//! - `bgp/converge/8x1000+500`: the control-plane issue's scale case: a Route
//!   Server with 8 NVA peers × 1,000 routes and 500 peered VNets using it.
//!
//! - `verify/hub-spoke-50`: `verify` on 50 spokes (every sender × every
//!   destination class); `vnetplane verify -t <500-spoke file>` times the
//!   large case (`cargo run --release --example gen_topology -- 500`).
//!
//! Run: `cargo bench --features bench --bench effective`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vnetplane::control;
use vnetplane::topology::{self, SubnetId, generate};

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn effective(c: &mut Criterion) {
    let mut g = c.benchmark_group("effective");
    g.sample_size(10);
    for spokes in [50usize, 500] {
        let src = generate::hub_spoke(spokes, 2, 1000);
        g.bench_with_input(BenchmarkId::new("load+validate", spokes), &src, |b, src| {
            b.iter(|| topology::load_str("gen.toml", black_box(src)).expect("loads"))
        });
        let t = topology::load_str("gen.toml", &src).expect("loads");
        g.bench_with_input(
            BenchmarkId::new("converge+all-subnet-tables", spokes),
            &t,
            |b, t| {
                b.iter(|| {
                    let cp = control::converge(t, &[]).expect("no events");
                    let mut n = 0usize;
                    for i in 0..t.subnets.len() {
                        n += cp.subnet_table(SubnetId(i as u32)).routes.len();
                    }
                    black_box(n)
                })
            },
        );
    }
    g.finish();
}

fn bgp(c: &mut Criterion) {
    let mut g = c.benchmark_group("bgp");
    g.sample_size(10);
    let src = generate::route_server_scale(8, 1000, 500);
    let t = topology::load_str("scale.toml", &src).expect("loads");
    g.bench_function("converge/8x1000+500", |b| {
        b.iter(|| {
            let cp = control::converge(black_box(&t), &[]).expect("no events");
            black_box(cp.bgp.rounds)
        })
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    g.sample_size(10);
    let t = topology::load_str("gen.toml", &generate::hub_spoke(50, 2, 100)).expect("loads");
    g.bench_function("hub-spoke-50", |b| {
        b.iter(|| black_box(vnetplane::verify::verify(&t, &[]).expect("verifies").walks))
    });
    g.finish();
}

criterion_group!(benches, effective, bgp, verify);
criterion_main!(benches);
