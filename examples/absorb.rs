//! The BGP absorption benchmark's stages timed: N advertisements from one
//! NVA through a Route Server (`bench::absorb_case`, as `vnetplane bench`),
//! then event apply, BGP, injections, the whole control plane and the
//! compilation of every subnet's routes from the shared injected layers
//! (as a world compiles them); beside it, for comparison, every subnet's
//! full table and its compilation (the path before the layers); three
//! runs (or RUNS).
//!
//! `cargo run --release --features bench --example absorb -- [N [RUNS]]` (default 20000 3).

use std::time::Instant;
use vnetplane::control;

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(s) => s.parse().map_err(|e| format!("{s}: {e}"))?,
        None => 20_000,
    };
    let runs: usize = match std::env::args().nth(2) {
        Some(s) => s.parse().map_err(|e| format!("{s}: {e}"))?,
        None => 3,
    };
    let (t, evs) = vnetplane::bench::pipeline::absorb_case(n).map_err(|e| e.to_string())?;
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    for _ in 0..runs {
        let t0 = Instant::now();
        let (topo, cond) = control::events::apply(&t, &evs).map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let bgp = control::bgp::converge(&topo, &cond);
        let t2 = Instant::now();
        let inj = control::bgp_injections(&topo, &bgp, &cond);
        let t3 = Instant::now();
        let cp = control::converge_state(topo.clone(), cond.clone());
        let t4 = Instant::now();
        // What a world compiles (`World::rebuilt`): layered, no full tables.
        let (set, _) = vnetplane::fib::FibSet::compile_reusing(&cp, None);
        let t5 = Instant::now();
        // For comparison: every subnet's full table, then its compilation
        // (the path before the injected layers).
        let tables = cp.subnet_tables();
        let t6 = Instant::now();
        let (full, _) = vnetplane::fib::FibSet::compile_tables(&tables, &cp.subnet_twins(), None);
        let t7 = Instant::now();
        println!(
            "{n} routes, {} subnets, {} distinct tables | apply {:.1} ms, BGP {:.1}, injections {:.1}, control plane {:.1}, layered compile {:.1}; absorbed (apply + control plane + compile) in {:.1} ms | full tables {:.1} + their compile {:.1}",
            tables.len(),
            set.distinct,
            ms(t0, t1),
            ms(t1, t2),
            ms(t2, t3),
            ms(t3, t4),
            ms(t4, t5),
            ms(t0, t1) + ms(t3, t5),
            ms(t5, t6),
            ms(t6, t7),
        );
        std::hint::black_box(full);
        std::hint::black_box((bgp, inj));
    }
    Ok(())
}
