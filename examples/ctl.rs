//! Control-plane rebuild profiling: the churn bench's route updates applied
//! BATCH at a time (as the debounce window gathers them), each stage of the
//! control loop timed; best and median of ROUNDS versions.
//!
//! `cargo run --release --features bench --example ctl -- [TOPOLOGY] [ROUNDS] [BATCH]`
//! (defaults: multi-region-vxlan, 200, 1; the churn bench gathers ~900).

use std::sync::Arc;
use std::time::Instant;
use vnetplane::bench::pipeline as bench;
use vnetplane::control::{self, events};
use vnetplane::dataplane::World;

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .unwrap_or_else(|| "topologies/multi-region-vxlan.toml".into());
    let rounds: usize = args.next().map_or(200, |s| s.parse().unwrap());
    let batch: usize = args.next().map_or(1, |s| s.parse().unwrap());
    let t = vnetplane::topology::load_path_or_builtin(&file).map_err(|e| e.to_string())?;
    let evs = bench::churn_events(&t, 4096).map_err(|e| e.to_string())?;
    let cp = control::converge(&t, &[]).map_err(|e| e.to_string())?;
    let mut world = Arc::new(World::new(&cp));
    let (mut topo, mut cond) = (cp.topology.clone(), cp.conditions.clone());
    let mut all: Vec<[f64; 6]> = Vec::new();
    for i in 0..rounds {
        let ev: Vec<_> = (0..batch)
            .map(|k| evs[(i * batch + k) % evs.len()].clone())
            .collect();
        let t0 = Instant::now();
        events::apply_onto(&mut topo, &mut cond, &ev).unwrap();
        let t1 = Instant::now();
        let (tc, cc) = (topo.clone(), cond.clone());
        let t2 = Instant::now();
        let cp = control::converge_state(tc, cc);
        let t3 = Instant::now();
        let (next, _) = World::rebuilt(Arc::new(cp), &world, true);
        let t4 = Instant::now();
        let d = vnetplane::pipeline::table_delta(&world, &next);
        let t5 = Instant::now();
        let old = std::mem::replace(&mut world, Arc::new(next));
        drop(old);
        let t6 = Instant::now();
        std::hint::black_box(d);
        let ts = [t0, t1, t2, t3, t4, t5, t6];
        let mut row = [0.0; 6];
        for k in 0..6 {
            row[k] = (ts[k + 1] - ts[k]).as_secs_f64() * 1e6;
        }
        all.push(row);
    }
    let names = [
        "apply",
        "clone",
        "converge_state",
        "rebuilt",
        "table_delta",
        "drop",
    ];
    for (k, n) in names.iter().enumerate() {
        let mut v: Vec<f64> = all.iter().map(|r| r[k]).collect();
        v.sort_by(f64::total_cmp);
        println!(
            "{n:>15}: best {:8.1} us, median {:8.1} us",
            v[0],
            v[v.len() / 2]
        );
    }
    let mut tot: Vec<f64> = all.iter().map(|r| r.iter().sum()).collect();
    tot.sort_by(f64::total_cmp);
    println!(
        "{:>15}: best {:8.1} us, median {:8.1} us",
        "total",
        tot[0],
        tot[tot.len() / 2]
    );
    Ok(())
}
