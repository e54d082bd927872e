//! Instruction counts of the walk: one uncached run (every packet walks
//! every hop) of one standard bench case on one worker, for callgrind,
//! whose counts repeat where wall time on a shared VM does not.
//!
//! `valgrind --tool=callgrind target/release/examples/walkcount vxlan 400000`
//! (CASE one-hop, vxlan or mixed; N frames, default 200,000). Subtract a
//! run of half the frames to remove the setup: per-packet instructions =
//! (I(400k) − I(200k)) / 200k.

use vnetplane::bench::pipeline as bench;
use vnetplane::pipeline::{self, Options, Outputs, Run};

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "vxlan".into());
    let n: usize = match args.next() {
        Some(s) => s.parse().map_err(|e| format!("{s}: {e}"))?,
        None => 200_000,
    };
    let (case, world) = bench::standard_case(&which, 4096, n).map_err(|e| e.to_string())?;
    let run = Run {
        world,
        control: None,
        scheduled: Vec::new(),
        live: None,
        stop: None,
        opts: Options {
            workers: 1,
            flow_cache: 0,
            ..Options::default()
        },
    };
    let r = pipeline::run(&case.frames, run, Outputs::none())?;
    println!(
        "{which}: {n} frames, {:.1} ns/packet wall, {} delivered",
        r.elapsed.as_nanos() as f64 / n as f64,
        r.counters.delivered
    );
    Ok(())
}
