//! Where 2-worker scaling goes, round by round: in each round, two threads
//! sharing nothing (`bench::pair_probe`), the forwarding code alone on 1
//! and N threads (`pipeline::kernel`), and the pipeline with 1 and N
//! workers (`bench::run_once`), each ratio printed beside the others of
//! its round (a shared VM's speed drifts between rounds; within one the
//! three move together when the machine is what limits them).
//!
//! `cargo run --release --features bench --example scaling -- [CASE] [WORKERS] [ROUNDS]`
//! (defaults: vxlan, 2, 7; CASE one of one-hop, vxlan, mixed; `FC=0`
//! walks every packet).

mod common;

use vnetplane::bench::pipeline as bench;
use vnetplane::pipeline::{flowcache, kernel};

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "vxlan".into());
    let num = |a: Option<String>, d: usize| {
        a.map_or(Ok(d), |s| s.parse().map_err(|e| format!("{s}: {e}")))
    };
    let workers = num(args.next(), 2)?.max(2);
    let rounds = num(args.next(), 7)?.max(1);
    let cache = num(std::env::var("FC").ok(), flowcache::DEFAULT_ENTRIES)?;
    let (case, world) = bench::standard_case(&which, 4096, 2_000_000).map_err(|e| e.to_string())?;
    let frames = &case.frames;
    let n = frames.len() as f64;
    let steering = common::steering_from_env()?;
    let setup = |w| bench::Setup {
        steering,
        ..bench::Setup::new(w, cache)
    };
    let mut rows = Vec::new();
    for round in 0..rounds {
        let pair = bench::pair_probe();
        let k1 = n / kernel(&world, frames, 1, cache)?.0.as_secs_f64();
        let kn = n / kernel(&world, frames, workers, cache)?.0.as_secs_f64();
        let rate = |w: usize| -> Result<f64, String> {
            let (r, _) = bench::run_once(&world, &case.topology, frames, setup(w), false, None)
                .map_err(|e| e.to_string())?;
            Ok(r.read as f64 / r.elapsed.as_secs_f64())
        };
        let (p1, pn) = (rate(1)?, rate(workers)?);
        let w = workers as f64;
        let row = [pair, kn / (k1 * w), pn / (p1 * w)];
        println!(
            "round {round}: pair {:.2}; kernel {:.2} Mpps on 1, {:.2} on {workers}: {:.2}; pipeline {:.2} on 1, {:.2} on {workers}: {:.2}",
            row[0],
            k1 / 1e6,
            kn / 1e6,
            row[1],
            p1 / 1e6,
            pn / 1e6,
            row[2]
        );
        rows.push(row);
    }
    let med = |i: usize| {
        let mut v: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "medians over {rounds} rounds: pair {:.2}, kernel {:.2}, pipeline {:.2}",
        med(0),
        med(1),
        med(2)
    );
    Ok(())
}
