//! The forwarding pipeline on generated 64-byte frames: one SDN hop (two VMs
//! in one VNet) and the multi-region VXLAN path (nine hops, encap + decap),
//! on 1 worker and on every core, with the flow cache and walking every
//! packet. `cargo bench --features bench --bench pipeline`; the
//! `vnetplane bench` command reports the same cases with traces, pcapng and
//! churn, and the machine. The frames are placed in receive queues once per
//! case and worker count, outside the timed iteration (as `run`'s own clock
//! leaves them out; the bench reports their cost beside each row).

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vnetplane::bench::pipeline as bench;
use vnetplane::control;
use vnetplane::dataplane::World;
use vnetplane::pipeline::{self, Options, Outputs, Run};

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pipeline(c: &mut Criterion) {
    let cases = bench::standard_cases(1024, 200_000).expect("standard cases");
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    for case in cases.iter().filter(|c| c.name != "mixed") {
        let cp = control::converge(&case.topology, &[]).expect("converge");
        let world = Arc::new(World::new(&cp));
        g.throughput(Throughput::Elements(case.frames.len() as u64));
        let mut workers = vec![1];
        if pipeline::default_workers() > 1 {
            workers.push(pipeline::default_workers());
        }
        // `forward`: with the flow cache (the default); `walk`: every packet
        // walks every hop.
        for (mode, cache) in [("forward", Options::default().flow_cache), ("walk", 0)] {
            for &w in &workers {
                let opts = Options {
                    workers: w,
                    flow_cache: cache,
                    ..Options::default()
                };
                let queues =
                    pipeline::Queues::new(&case.frames, &opts, false, false).expect("queues");
                g.bench_function(format!("{}/{mode}/{w}-workers", case.name), |b| {
                    b.iter(|| {
                        let run = Run {
                            world: world.clone(),
                            control: None,
                            scheduled: Vec::new(),
                            live: None,
                            stop: None,
                            opts,
                        };
                        pipeline::run_queued(&queues, run, Outputs::none()).expect("run")
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
