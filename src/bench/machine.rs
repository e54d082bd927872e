//! What the machine gives a benchmark: its description, the stalls a
//! busy thread sees, and fixed probes of core, memory and two-thread speed
//! read before and after the runs.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::pipeline::median;
use crate::pipeline;
use crate::rng::Rng;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub os: String,
}

impl Machine {
    pub fn here() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            cores: pipeline::default_workers(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// What the machine takes from a busy thread: one thread a core spins on
/// the clock for a while, and every gap longer than 1 ms between two
/// readings is time another task, an interrupt or the hypervisor held the
/// core (a VM-wide pause shows on every core at once). Update latencies
/// and the rates of short runs carry these gaps; the bench measures them
/// before its runs so that a row can be read beside them.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Stalls {
    pub seconds: f64,
    pub threads: usize,
    /// Gaps longer than 1 ms, over all threads.
    pub gaps: usize,
    /// Gaps longer than 5 ms.
    pub gaps_over_5ms: usize,
    pub longest_ms: f64,
    /// Share of the spinning threads' time lost in gaps.
    pub lost: f64,
}

impl Stalls {
    pub fn probe(d: Duration, threads: usize) -> Stalls {
        let per: Vec<Stalls> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads.max(1))
                .map(|_| {
                    sc.spawn(move || {
                        let start = Instant::now();
                        let mut last = start;
                        let mut s = Stalls::default();
                        while last - start < d {
                            let now = Instant::now();
                            s.see((now - last).as_secs_f64() * 1e3);
                            last = now;
                        }
                        s
                    })
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut all = Stalls::default();
        for p in &per {
            all.gaps += p.gaps;
            all.gaps_over_5ms += p.gaps_over_5ms;
            all.longest_ms = all.longest_ms.max(p.longest_ms);
            all.lost += p.lost;
        }
        all.seconds = d.as_secs_f64();
        all.threads = per.len();
        // Lost milliseconds over the threads' spinning time.
        all.lost /= (all.seconds * 1e3 * all.threads.max(1) as f64).max(1e-9);
        all
    }

    /// One interval between two clock readings (`lost` in milliseconds).
    pub fn see(&mut self, gap_ms: f64) {
        if gap_ms > 1.0 {
            self.gaps += 1;
            self.gaps_over_5ms += usize::from(gap_ms > 5.0);
            self.longest_ms = self.longest_ms.max(gap_ms);
            self.lost += gap_ms;
        }
    }
}

/// The machine's speed before and after the runs, on two fixed
/// single-thread workloads: the core (a chain of dependent shifts and
/// xors, no memory: nanoseconds a step) and memory (a pointer chase
/// through one random cycle over 32 MiB, larger than the last-level cache
/// share a VM sees: nanoseconds a hop). Each is the fastest of a few
/// tries. A shared VM has phases of minutes in which it runs slower
/// without pausing, and memory is where neighbours show first.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Speed {
    pub core_ns_before: f64,
    pub core_ns_after: f64,
    pub memory_ns_before: f64,
    pub memory_ns_after: f64,
    /// [`pair_probe`]: what two threads that share nothing get of two
    /// cores, before and after the runs.
    pub pair_scaling_before: f64,
    pub pair_scaling_after: f64,
}

impl Speed {
    pub fn probe() -> (f64, f64, f64) {
        (core_probe(), memory_probe(), pair_probe())
    }
}

/// Four independent xorshift chains (different shifts, so that they are
/// not folded into vector lanes): enough independent work a step to keep
/// a core's integer units busy, unlike [`core_probe`]'s single chain.
fn wide_steps(steps: u64) -> u64 {
    let mut x = std::hint::black_box([
        0x9e37_79b9_7f4a_7c15u64,
        0x6a09_e667_f3bc_c909,
        0xbb67_ae85_84ca_a73b,
        0x3c6e_f372_fe94_f82b,
    ]);
    const SHIFTS: [(u32, u32, u32); 4] = [(13, 7, 17), (5, 15, 27), (23, 17, 26), (11, 29, 14)];
    for _ in 0..steps {
        for (x, (a, b, c)) in x.iter_mut().zip(SHIFTS) {
            *x ^= *x << a;
            *x ^= *x >> b;
            *x ^= *x << c;
        }
    }
    std::hint::black_box(x[0] ^ x[1] ^ x[2] ^ x[3])
}

/// What two cores give two threads that share nothing (no memory, no
/// locks: `wide_steps` in registers): the time of one thread's steps
/// over the time of two threads doing as many each, at once (1.0: the
/// cores are independent; 0.5: one core's worth). Median of five tries.
/// On a VM whose two vCPUs are hyperthreads of one physical core, or
/// share theirs with a neighbour's, this reads below 1 — a ceiling for
/// any forwarding code's 2-worker scaling at that moment. 1.0 on a
/// machine with one core.
pub fn pair_probe() -> f64 {
    const STEPS: u64 = 10_000_000;
    if pipeline::default_workers() < 2 {
        return 1.0;
    }
    let ratios = (0..5)
        .map(|_| {
            let t = Instant::now();
            wide_steps(STEPS);
            let one = t.elapsed();
            let t = Instant::now();
            std::thread::scope(|sc| {
                let other = sc.spawn(|| wide_steps(STEPS));
                wide_steps(STEPS);
                let _ = other.join();
            });
            one.as_secs_f64() / t.elapsed().as_secs_f64().max(1e-9)
        })
        .collect();
    median(ratios)
}

/// Nanoseconds per step of the core workload (fastest of five tries of 20
/// million steps).
pub fn core_probe() -> f64 {
    const STEPS: u64 = 20_000_000;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let mut x = std::hint::black_box(0x9e37_79b9_7f4a_7c15u64);
        for _ in 0..STEPS {
            // xorshift64: each step depends on the last, and no algebra
            // folds several into one (an LCG's multiply-adds do fold).
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / STEPS as f64);
    }
    best
}

/// Nanoseconds per hop of a pointer chase through one random cycle over
/// 32 MiB (Sattolo's shuffle: every slot on the one cycle), fastest of
/// three tries of a million hops.
pub fn memory_probe() -> f64 {
    const SLOTS: usize = 8 << 20;
    const HOPS: usize = 1_000_000;
    let mut next: Vec<u32> = (0..SLOTS as u32).collect();
    let mut rng = Rng(0x5eed);
    for i in (1..SLOTS).rev() {
        let j = (rng.next_u64() % i as u64) as usize;
        next.swap(i, j);
    }
    let mut best = f64::INFINITY;
    let mut at = 0u32;
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..HOPS {
            at = next[at as usize];
        }
        std::hint::black_box(at);
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / HOPS as f64);
    }
    best
}
