//! A churn harness: one standard bench case forwarded while route updates
//! stream in, each run printed with what `vnetplane bench` folds into a row
//! (wall and busy time, versions, updates sent, flow-cache hits, total
//! rebuild time, update latency), each paired with a run without churn
//! just before it, the reader placed alike (`bench::run_pair`); the
//! versions' update latencies pooled over the runs (median, 95th and 99th
//! percentiles, max) and the median ratio end the output.
//!
//! `cargo run --release --features bench --example churn -- [CASE] [WORKERS] [UPDATES/S]`
//! (defaults: vxlan, 1, 100000; 0: a control plane beside the workers
//! with no updates; `N=10000000` frames instead of 4M; `PAIRS=5`
//! pairs of runs without and with churn, 3 by default; `NORMAL=1` runs the
//! control thread at normal priority; `COALESCE_MS=6` the debounce (the
//! pipeline's default unless given);
//! `STEERING=fixed` keeps every flow on its first worker).

mod common;

use std::time::Duration;
use vnetplane::bench::pipeline as bench;
use vnetplane::pipeline::{ControlPriority, flowcache};

/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "vxlan".into());
    let num =
        |a: Option<String>, d: u64| a.map_or(Ok(d), |s| s.parse().map_err(|e| format!("{s}: {e}")));
    let workers = num(args.next(), 1)? as usize;
    let rate = num(args.next(), 100_000)?;
    let n = num(std::env::var("N").ok(), 4_000_000)? as usize;
    let (case, world) = bench::standard_case(&which, 4096, n).map_err(|e| e.to_string())?;
    // Each churn run paired with a run without churn just before it (the
    // VM's speed drifts between runs; a pair shares its phase).
    let default_ms = vnetplane::pipeline::DEFAULT_COALESCE.as_secs_f64() * 1e3;
    let coalesce_ms: f64 = std::env::var("COALESCE_MS")
        .ok()
        .map_or(Ok(default_ms), |s| {
            s.parse().map_err(|e| format!("COALESCE_MS={s}: {e}"))
        })?;
    let pairs = num(std::env::var("PAIRS").ok(), 3)? as usize;
    let steering = common::steering_from_env()?;
    let mut ratios = Vec::new();
    let mut latencies: Vec<f64> = Vec::new();
    for _ in 0..pairs {
        let mut rates = [0.0; 2];
        let churn = bench::Churn {
            rate,
            coalesce: Duration::from_secs_f64(coalesce_ms / 1e3),
            priority: if std::env::var("NORMAL").is_ok() {
                ControlPriority::Normal
            } else {
                ControlPriority::Realtime
            },
        };
        let (plain, churned) = bench::run_pair(
            &world,
            &case.topology,
            &case.frames,
            bench::Setup {
                steering,
                ..bench::Setup::new(workers, flowcache::DEFAULT_ENTRIES)
            },
            churn,
        )
        .map_err(|e| e.to_string())?;
        for (k, (r, sent)) in [plain, churned].into_iter().enumerate() {
            latencies.extend(r.update_latencies());
            let ns = r.elapsed.as_nanos() as f64 / case.frames.len() as f64;
            rates[k] = 1e3 / ns;
            let busy: Vec<String> = r
                .workers
                .iter()
                .map(|w| format!("{:.0}", w.busy.as_secs_f64() * 1e3))
                .collect();
            let (hits, walks) = r.flow_cache();
            if std::env::var("SLOW").is_ok() {
                for (i, v) in r
                    .versions
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.build_ms > 3.0)
                {
                    eprintln!(
                        "  slow version #{i} of {}: {:.2} ms, {} events, {} tables compiled",
                        r.versions.len(),
                        v.build_ms,
                        v.events.len(),
                        v.tables_compiled
                    );
                }
            }
            println!(
                "{which}: {:.2} Mpps ({ns:.1} ns/packet), wall {:.0} ms, busy [{}] ms, {} versions, {sent} updates sent, flow cache {hits} hits / {walks} walks, rebuilds {:.1} ms in all (longest {:.2}), update latency median {:.2} / max {:.2} ms, control {} (on a CPU {}), {} bucket moves",
                1e3 / ns,
                r.elapsed.as_secs_f64() * 1e3,
                busy.join(", "),
                r.versions.len(),
                r.versions.iter().map(|v| v.build_ms).sum::<f64>(),
                r.versions.iter().map(|v| v.build_ms).fold(0.0, f64::max),
                bench::percentile(&r.update_latencies(), 0.5),
                r.max_update_latency().as_secs_f64() * 1e3,
                r.control_scheduling.as_deref().unwrap_or("-"),
                r.control_cpu.map_or("-".to_string(), |c| format!(
                    "{:.1} ms, {:.1}% of the cores' wall time",
                    c.as_secs_f64() * 1e3,
                    100.0 * c.as_secs_f64()
                        / (r.elapsed.as_secs_f64() * vnetplane::pipeline::default_workers() as f64)
                )),
                r.reader.moves,
            );
        }
        ratios.push(rates[1] / rates[0]);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "update latency over {} versions: median {:.2}, p95 {:.2}, p99 {:.2}, max {:.2} ms",
        latencies.len(),
        bench::percentile(&latencies, 0.5),
        bench::percentile(&latencies, 0.95),
        bench::percentile(&latencies, 0.99),
        bench::percentile(&latencies, 1.0)
    );
    println!(
        "with churn / without, median of {pairs} pairs: {:.0} % (all: {})",
        100.0 * ratios[ratios.len() / 2],
        ratios
            .iter()
            .map(|r| format!("{:.0} %", 100.0 * r))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
