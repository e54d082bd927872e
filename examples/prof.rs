//! A profiling harness for the forwarding pipeline: one standard bench case,
//! best of 7 runs (for `perf record`; `vnetplane bench` reports medians).
//!
//! `cargo run --release --features bench --example prof -- CASE [WORKERS] [FLOWS]` with CASE
//! one of one-hop, vxlan, mixed. Environment: `FC=0` walks every packet (no
//! flow cache), `INLINE=1` makes the reader forward a share itself,
//! `BATCH=N` sets the frames per batch, `STEERING=fixed` keeps every flow
//! on the worker its hash gives.

mod common;

use vnetplane::bench::pipeline as bench;
use vnetplane::pipeline::{self, Options, Outputs, ReaderMode, Run};

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "one-hop".into());
    let num = |a: Option<String>, d: usize| {
        a.map_or(Ok(d), |s| s.parse().map_err(|e| format!("{s}: {e}")))
    };
    let workers = num(args.next(), 1)?;
    let flows = num(args.next(), 4096)?;
    let flow_cache = num(
        std::env::var("FC").ok(),
        pipeline::flowcache::DEFAULT_ENTRIES,
    )?;
    let batch = match std::env::var("BATCH") {
        Ok(s) => Some(s.parse().map_err(|e| format!("BATCH {s}: {e}"))?),
        Err(_) => None,
    };
    let reader = if std::env::var("INLINE").is_ok() {
        ReaderMode::Inline
    } else {
        ReaderMode::Auto
    };
    let (case, world) =
        bench::standard_case(&which, flows, 2_000_000).map_err(|e| e.to_string())?;
    let mut best = f64::MAX;
    for _ in 0..7 {
        let run = Run {
            world: world.clone(),
            control: None,
            scheduled: Vec::new(),
            live: None,
            stop: None,
            opts: Options {
                workers,
                flow_cache,
                reader,
                batch,
                steering: common::steering_from_env()?,
                ..Options::default()
            },
        };
        let r = pipeline::run(&case.frames, run, Outputs::none())?;
        let ns = r.elapsed.as_nanos() as f64 / case.frames.len() as f64;
        let busy: f64 = r
            .workers
            .iter()
            .map(|w| w.busy.as_nanos() as f64)
            .sum::<f64>()
            / case.frames.len() as f64;
        let each: Vec<String> = r
            .workers
            .iter()
            .map(|w| {
                format!(
                    "{:.0}% ({:.1} ns x {:.0}k)",
                    100.0 * w.busy.as_secs_f64() / r.elapsed.as_secs_f64(),
                    w.busy.as_nanos() as f64 / w.packets.max(1) as f64,
                    w.packets as f64 / 1e3
                )
            })
            .collect();
        // The reader's own work: its time less the waits on full queues
        // and (when it runs the last worker) that worker's batches.
        let inline_busy = if workers >= 2 || reader == ReaderMode::Inline {
            r.workers.last().map_or(0.0, |w| w.busy.as_secs_f64())
        } else {
            0.0
        };
        let own = r.reader.total.as_secs_f64() - r.reader.blocked.as_secs_f64() - inline_busy;
        println!(
            "{which}: {ns:.1} ns/packet wall ({:.2} Mpps), worker busy {busy:.1} ns/packet ({} of the wall time), reader {:.1} ns/frame own, blocked {:.0}%",
            1e3 / ns,
            each.join(" / "),
            own.max(0.0) * 1e9 / case.frames.len() as f64,
            100.0 * r.reader.blocked.as_secs_f64() / r.elapsed.as_secs_f64()
        );
        best = best.min(ns);
    }
    println!("best {best:.1} ns ({:.2} Mpps)", 1e3 / best);
    Ok(())
}
