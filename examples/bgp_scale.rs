//! Times one convergence of the control-plane scale case (a Route Server with
//! 8 NVA peers × 1,000 routes and 500 peered VNets), for profiling:
//! `cargo run --release --example bgp_scale`.

use std::time::Instant;
use vnetplane::{control, topology};

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let src = topology::generate::route_server_scale(8, 1000, 500);
    let t = topology::load_str("scale.toml", &src).expect("generated topology loads");
    let start = Instant::now();
    let cp = control::converge(&t, &[]).expect("no events");
    println!(
        "converged in {} rounds, {:.1} ms, {} sessions",
        cp.bgp.rounds,
        start.elapsed().as_secs_f64() * 1e3,
        cp.bgp.sessions.len()
    );
}
