//! The worker pipeline (issue "Pipeline"): identical output for any number of
//! workers, failover replays with exact counts (SCENARIOS 12 and 8), every
//! packet consistent with one table version under live updates, and a stop
//! with packets in flight that loses none.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::util::{builtin, converge};
use vnetplane::control::events::Event;
use vnetplane::dataplane::{Start, World, traffic};
use vnetplane::io::{self, Frame, PcapNgOut};
use vnetplane::pipeline::{
    self, Control, Options, Outputs, ReaderMode, Report, Run, Steering, schedule,
};
use vnetplane::topology::Topology;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `frames` with `workers` workers and scheduled events; returns the
/// report, the JSONL traces and the pcapng bytes.
fn run(
    t: &Topology,
    frames: &[Frame],
    workers: usize,
    scheduled: Vec<(usize, Event)>,
    delay: usize,
) -> (Report, Vec<Value>, Vec<u8>) {
    let how = (ReaderMode::Auto, Steering::default());
    run_mode(t, frames, workers, scheduled, delay, how)
}

/// [`run`] with the reader forwarding a share itself or not, and flows
/// steered as given.
fn run_mode(
    t: &Topology,
    frames: &[Frame],
    workers: usize,
    scheduled: Vec<(usize, Event)>,
    delay: usize,
    (reader, steering): (ReaderMode, Steering),
) -> (Report, Vec<Value>, Vec<u8>) {
    let world = Arc::new(World::new(&converge(t, &[])));
    let mut pcap = PcapNgOut::new(Vec::new()).unwrap();
    let mut traces: Vec<u8> = Vec::new();
    let r = pipeline::run(
        frames,
        Run {
            world,
            control: Some(Control {
                base: t.clone(),
                events: Vec::new(),
            }),
            scheduled,
            live: None,
            stop: None,
            opts: Options {
                workers,
                batch: Some(7), // small batches: many switches between workers
                from: None,
                convergence_delay: delay,
                reader,
                steering,
                ..Options::default()
            },
        },
        Outputs {
            pcapng: Some(&mut pcap),
            traces: Some(&mut traces),
        },
    )
    .unwrap();
    let lines = String::from_utf8(traces)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (r, lines, pcap.finish().unwrap())
}

/// Every scenario pcap: its name, its topology and its frames.
fn scenario_captures() -> Vec<(String, Topology, Vec<Frame>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("pcaps")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) != Some("pcap") {
            continue;
        }
        let name = p.file_stem().unwrap().to_str().unwrap().to_string();
        let t = builtin(&name);
        out.push((name, t, io::read_capture(&p).unwrap().frames));
    }
    assert!(!out.is_empty(), "no scenario pcaps");
    out
}

#[test]
fn output_is_identical_for_1_2_and_4_workers_on_every_scenario_pcap() {
    let mut n = 0;
    // Scenarios whose adaptive 2-worker run moved buckets.
    let mut moved = 0;
    // Scenarios whose frames were placed in more than one receive queue
    // (so the writer put frames from different queues back in input order).
    let mut spread = 0;
    for (name, t, frames) in scenario_captures() {
        // Repeat the capture so that every worker gets many batches.
        let many: Vec<Frame> = (0..40)
            .flat_map(|_| frames.iter().cloned())
            .enumerate()
            .map(|(i, mut f)| {
                f.number = i + 1;
                f
            })
            .collect();
        let (r1, t1, p1) = run(&t, &many, 1, Vec::new(), 0);
        assert!(r1.counters.balanced(), "{name}");
        assert_eq!(r1.read, many.len());
        assert_eq!(t1.len(), many.len(), "{name}: one trace line per packet");
        // The reader forwarding a share itself (as when the workers take
        // every core) or only reading, flows moving between workers or
        // not: the same output.
        let (adaptive, fixed) = (Steering::Adaptive, Steering::Fixed);
        let modes = [
            (1, ReaderMode::Inline, adaptive),
            (2, ReaderMode::Thread, adaptive),
            (2, ReaderMode::Inline, adaptive),
            (2, ReaderMode::Inline, fixed),
            (4, ReaderMode::Thread, adaptive),
            (4, ReaderMode::Inline, adaptive),
            (4, ReaderMode::Thread, fixed),
        ];
        for (w, mode, steering) in modes {
            let (rw, tw, pw) = run_mode(&t, &many, w, Vec::new(), 0, (mode, steering));
            let how = format!("{w} workers, reader {mode:?}, steering {steering:?}");
            assert_eq!(rw.counters, r1.counters, "{name}: counters, {how}");
            assert_eq!(tw, t1, "{name}: traces, {how}");
            assert!(pw == p1, "{name}: pcapng bytes differ with {how}");
            assert_eq!(rw.workers.len(), w);
            let queued = &rw.reader.queued;
            assert_eq!(queued.len(), w, "{name}: {how}: a receive queue per worker");
            assert_eq!(queued.iter().sum::<usize>(), many.len(), "{name}: {how}");
            if w == 4 && steering == fixed && queued.iter().filter(|&&k| k > 0).count() > 1 {
                spread += 1;
            }
            let buckets = &rw.reader.buckets;
            assert!(buckets.iter().all(|&b| b > 0), "{name}: {how}: {buckets:?}");
            assert!(buckets.iter().sum::<u32>() >= 1024, "{name}: {how}");
            if steering == fixed || w == 1 {
                assert_eq!(rw.reader.moves, 0, "{name}: {how}");
            } else if mode == ReaderMode::Inline && w == 2 && rw.workers[0].packets >= 7 {
                // The threaded worker (the first) had a full batch queued
                // while the reader read: the first one found its queue
                // empty (it was dry), so it took a bucket from the
                // reader's own share. Flows did move, and the output above
                // is still the same.
                assert!(rw.reader.moves > 0, "{name}: {how}");
                moved += 1;
            }
        }
        n += 1;
    }
    assert!(n >= 20, "only {n} scenario pcaps");
    assert!(
        spread >= n / 2,
        "frames in more than one queue in only {spread} of {n} scenarios"
    );
    assert!(
        moved >= n / 2,
        "buckets moved in only {moved} of {n} scenarios"
    );
}

/// A counters-only run (the path the flow cache serves) with `cache`
/// entries per worker.
fn run_counters(
    t: &Topology,
    frames: &[Frame],
    workers: usize,
    scheduled: Vec<(usize, Event)>,
    delay: usize,
    cache: usize,
) -> Report {
    run_counters_steered(
        t,
        frames,
        workers,
        (scheduled, delay),
        cache,
        Steering::default(),
    )
}

/// [`run_counters`] with flows steered as given.
fn run_counters_steered(
    t: &Topology,
    frames: &[Frame],
    workers: usize,
    (scheduled, delay): (Vec<(usize, Event)>, usize),
    cache: usize,
    steering: Steering,
) -> Report {
    pipeline::run(
        frames,
        Run {
            world: Arc::new(World::new(&converge(t, &[]))),
            control: Some(Control {
                base: t.clone(),
                events: Vec::new(),
            }),
            scheduled,
            live: None,
            stop: None,
            opts: Options {
                workers,
                batch: Some(7),
                from: None,
                convergence_delay: delay,
                flow_cache: cache,
                steering,
                ..Options::default()
            },
        },
        Outputs::none(),
    )
    .unwrap()
}

/// The flow cache (VFP's unified flow table) answers exactly what walking
/// every packet answers: same counters, same hops, on every scenario pcap,
/// with a roomy cache and with one that evicts all the time.
#[test]
fn flow_cache_counts_as_walking_every_packet_on_every_scenario_pcap() {
    let mut hits = 0;
    for (name, t, frames) in scenario_captures() {
        let many: Vec<Frame> = (0..20).flat_map(|_| frames.iter().cloned()).collect();
        let walked = run_counters(&t, &many, 1, Vec::new(), 0, 0);
        assert_eq!(walked.flow_cache(), (0, 0), "{name}: no cache, no hits");
        let (adaptive, fixed) = (Steering::Adaptive, Steering::Fixed);
        for (workers, entries, steering) in [
            (1, 65_536, fixed),
            (2, 65_536, fixed),
            (2, 65_536, adaptive),
            (2, 4, adaptive),
        ] {
            let r = run_counters_steered(&t, &many, workers, (Vec::new(), 0), entries, steering);
            let how = format!("{name} {workers}/{entries}/{steering:?}");
            assert_eq!(r.counters, walked.counters, "{how}");
            assert_eq!(r.hops(), walked.hops(), "{how}");
            let (h, m) = r.flow_cache();
            assert!(h + m <= many.len() as u64, "{how}");
            if entries > 4 && steering == fixed {
                // 20 rounds of the same flows: all but the first round hit
                // (less the tunnel packets a capture may hold, never cached).
                // A flow whose bucket moves walks once more on its new
                // worker: that bound is for flows that stay.
                assert!(h >= m * 19 - 19, "{how}: {h} hits, {m} walks");
                hits += h;
            }
        }
    }
    assert!(hits > 0);
}

/// The bench's scaling ceiling (`pipeline::kernel`: the forwarding code
/// alone, the frames split by flow hash, a thread a share) does the same
/// work as the pipeline: on every scenario pcap, walking and through the
/// flow cache, on 1, 2 and 3 threads, the same counters (every frame read
/// delivered, dropped with its reason, or looped).
#[cfg(feature = "bench")]
#[test]
fn the_kernel_alone_counts_as_the_pipeline_on_every_scenario_pcap() {
    let mut pcaps = 0;
    for (name, t, frames) in scenario_captures() {
        let many: Vec<Frame> = (0..5).flat_map(|_| frames.iter().cloned()).collect();
        let world = Arc::new(World::new(&converge(&t, &[])));
        for cache in [0, 65_536] {
            let piped = run_counters(&t, &many, 1, Vec::new(), 0, cache);
            assert!(piped.counters.balanced());
            for threads in [1, 2, 3] {
                let (_, counters) = pipeline::kernel(&world, &many, threads, cache).unwrap();
                assert_eq!(
                    counters, piped.counters,
                    "{name}: {threads} threads, cache {cache}"
                );
            }
        }
        pcaps += 1;
    }
    assert!(pcaps > 5, "{pcaps} scenario pcaps");
}

/// A cached flow follows the tables: the tunnel goes down (its flows drop
/// `route-none`), comes back (delivered again), with and without the
/// convergence delay, on 1 and 2 workers — exact counts, as when walking.
/// (Also a step whose announcement changes nothing, the tunnel coming up
/// with a delay, once stalled the pipeline: it must still publish.)
#[test]
fn flow_cache_follows_table_versions() {
    let t = builtin("multi-region-vxlan");
    let frames = bench_frames(&t, "spoke11-vm", "10.21.1.4", 16, 1000);
    let ts: Vec<_> = frames.iter().map(|f| f.timestamp).collect();
    let sched = schedule::resolve(
        &schedule::parse(
            "at packet 401 tunnel-down nva1 vx-nva2\nat packet 701 tunnel-up nva1 vx-nva2\n",
            "ev",
        )
        .unwrap(),
        &ts,
    );
    for (workers, delay) in [(1, 0), (2, 0), (2, 50)] {
        let walked = run_counters(&t, &frames, workers, sched.clone(), delay, 0);
        let r = run_counters(&t, &frames, workers, sched.clone(), delay, 65_536);
        let c = &r.counters;
        assert_eq!(c, &walked.counters, "{workers}/{delay}");
        // Down from packet 401: `delay` packets are caught converging, the
        // rest find the route-none tables; up from 701: the tables still
        // show the tunnel down for `delay` more packets.
        assert_eq!(c.delivered, 700 - delay, "{workers}/{delay}: {c:?}");
        assert_eq!(
            c.drop_reasons.get("converging").copied().unwrap_or(0),
            delay
        );
        assert_eq!(c.drop_reasons.get("route-none").copied().unwrap_or(0), 300);
        let (h, m) = r.flow_cache();
        assert_eq!(h + m, 1000);
        // 16 flows walk once per table version they meet.
        assert!(m <= 16 * r.versions.len() as u64 + 16, "{m} walks");
        assert!(h > 900, "{h} hits");
    }
}

/// Route churn elsewhere leaves cached flows standing (their looked-up
/// addresses are outside every changed prefix), and a route change that
/// covers them reaches them at once: in `multi-region-vxlan` nva1 advertises
/// 10.21.1.0/24 (the classic trap: Route Server programs it onto nva1's own
/// NIC too, and the flows loop from then on); in the one-hop case a UDR
/// sends the flows' destination to None (dropped `route-none`).
#[cfg(feature = "bench")]
#[test]
fn flow_cache_keeps_flows_through_unrelated_churn_and_drops_them_on_a_covering_change() {
    let one_hop = vnetplane::bench::pipeline::standard_cases(16, 1000)
        .unwrap()
        .into_iter()
        .find(|c| c.name == "one-hop")
        .unwrap();
    let vx = builtin("multi-region-vxlan");
    let vx_frames = bench_frames(&vx, "spoke11-vm", "10.21.1.4", 16, 1000);
    let dst = one_hop.topology.nic_by_name("spoke0-vm1").unwrap();
    let dst = one_hop.topology.nics[dst.0 as usize].ips[0];
    let setups = [
        (
            &vx,
            &vx_frames,
            "advertise nva2 100.127.K.0/24",
            "withdraw nva2 100.127.K.0/24",
            "advertise nva1 10.21.1.0/24".to_string(),
            700,
        ),
        (
            &one_hop.topology,
            &one_hop.frames,
            "udr-add rt-spokes churn-K 100.127.K.0/24 None",
            "udr-remove rt-spokes churn-K",
            format!("udr-add rt-spokes cut {dst}/32 None"),
            700,
        ),
    ];
    for (t, frames, add, remove, covering, delivered) in setups {
        let ts: Vec<_> = frames.iter().map(|f| f.timestamp).collect();
        let mut text = String::new();
        for k in 0..100 {
            let e = if k % 2 == 0 { add } else { remove };
            let e = e.replace('K', &(k / 2).to_string());
            text += &format!("at packet {} {e}\n", 101 + 5 * k);
        }
        text += &format!("at packet 701 {covering}\n");
        let sched = schedule::resolve(&schedule::parse(&text, "ev").unwrap(), &ts);
        for workers in [1, 2] {
            let walked = run_counters(t, frames, workers, sched.clone(), 0, 0);
            let r = run_counters(t, frames, workers, sched.clone(), 0, 65_536);
            let name = format!("{} on {workers} workers", t.file);
            assert_eq!(r.counters, walked.counters, "{name}");
            assert_eq!(r.hops(), walked.hops(), "{name}");
            assert_eq!(r.counters.delivered, delivered, "{name}: {:?}", r.counters);
            assert_eq!(r.versions.len(), 101);
            // 101 reconvergences take the control thread some CPU time,
            // and it says so where the OS does.
            if cfg!(unix) {
                let cpu = r.control_cpu.expect("control-plane CPU time");
                assert!(cpu > std::time::Duration::ZERO, "{name}");
            }
            let revalidated: u64 = r.workers.iter().map(|w| w.flow_revalidated).sum();
            let (hits, walks) = r.flow_cache();
            assert_eq!(hits + walks, 1000);
            // 16 flows walk first, and again after the covering change;
            // the 100 unrelated versions cost no walk.
            assert_eq!(walks, 32, "{name}: {hits} hits, {revalidated} revalidated");
            assert!(revalidated >= 100, "{name}: {revalidated}");
        }
    }
}

/// With fixed steering, packets of one flow always reach the same worker;
/// and the work spreads.
#[test]
fn flows_are_pinned_and_spread() {
    let t = builtin("hub-spoke-vng");
    let frames = bench_frames(&t, "spoke11-vm", "10.1.3.4", 64, 6400);
    // Fixed steering: a flow never changes worker.
    let how = (ReaderMode::Auto, Steering::Fixed);
    let (r, _, _) = run_mode(&t, &frames, 2, Vec::new(), 0, how);
    let per: Vec<u64> = r.workers.iter().map(|w| w.packets).collect();
    assert_eq!(per.iter().sum::<u64>(), 6400);
    assert!(per.iter().all(|&p| p > 1000), "spread: {per:?}");
    // 64 flows of 100 packets each: a worker's count is a multiple of 100.
    assert!(per.iter().all(|p| p % 100 == 0), "pinned: {per:?}");
    assert_eq!(r.reader.moves, 0);
}

fn bench_frames(t: &Topology, from: &str, dst: &str, flows: usize, packets: usize) -> Vec<Frame> {
    let n = t.nic_by_name(from).unwrap();
    traffic::udp_flows(t, &[Start::Nic(n)], &[dst.parse().unwrap()], flows, packets)
}

/// A run of `t` fed live events from `rx`.
fn live_run(
    t: &Topology,
    world: Arc<World>,
    rx: crossbeam_channel::Receiver<pipeline::LiveEvents>,
    opts: Options,
) -> Run<'static> {
    Run {
        world,
        control: Some(Control {
            base: t.clone(),
            events: Vec::new(),
        }),
        scheduled: Vec::new(),
        live: Some(rx),
        stop: None,
        opts,
    }
}

fn count(lines: &[Value], range: std::ops::Range<usize>, f: impl Fn(&Value) -> bool) -> usize {
    lines[range].iter().filter(|l| f(l)).count()
}

fn via(l: &Value, node: &str) -> bool {
    l["path"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x.as_str() == Some(node))
}

/// Scenario 12: all traffic via nva1 until it fails; then via nva2.
#[test]
fn failover_dual_homed_active_passive() {
    let t = builtin("dual-homed-active-passive");
    let frames = bench_frames(&t, "spoke11-vm", "198.51.100.10", 16, 1000);
    let sched = schedule::parse("at packet 501 speaker-down nva1\n", "ev").unwrap();
    let ts: Vec<_> = frames.iter().map(|f| f.timestamp).collect();
    let sched = schedule::resolve(&sched, &ts);
    for workers in [1, 2, 4] {
        let (r, lines, _) = run(&t, &frames, workers, sched.clone(), 0);
        assert_eq!(r.counters.delivered, 1000, "{workers}: {:?}", r.counters);
        assert_eq!(count(&lines, 0..500, |l| via(l, "nva nva1")), 500);
        assert_eq!(count(&lines, 500..1000, |l| via(l, "nva nva2")), 500);
        assert_eq!(count(&lines, 500..1000, |l| via(l, "nva nva1")), 0);
        assert!(lines[..500].iter().all(|l| l["table_version"] == 0));
        assert!(lines[500..].iter().all(|l| l["table_version"] == 1));
        assert_eq!(r.versions.len(), 1);
        assert_eq!(r.versions[0].from_packet, Some(500));
    }
    // With 100 packets between the failure and the new tables: those 100
    // still go to nva1 and are dropped as `converging`; none vanish.
    let (r, lines, _) = run(&t, &frames, 2, sched, 100);
    assert_eq!(r.counters.read, 1000);
    assert_eq!(r.counters.delivered, 900);
    assert_eq!(r.counters.drop_reasons.get("converging"), Some(&100));
    assert!(r.counters.balanced());
    assert_eq!(count(&lines, 0..500, |l| via(l, "nva nva1")), 500);
    assert_eq!(
        count(&lines, 500..600, |l| l["reason"] == "converging"
            && l["at"] == "nva nva1"
            && l["table_version"] == 1),
        100
    );
    assert_eq!(
        count(&lines, 600..1000, |l| via(l, "nva nva2")
            && l["table_version"] == 2),
        400
    );
    let kinds: Vec<&str> = r.versions.iter().map(|v| v.kind).collect();
    assert_eq!(kinds, ["pending", "converged"]);
}

/// Scenario 8: the VXLAN overlay carries spoke11 → spoke21 until the tunnel
/// goes down; then the BGP routes learned over it vanish and spoke11's own
/// table drops the traffic (10.0.0.0/8 → None).
#[test]
fn failover_multi_region_vxlan_tunnel_down() {
    let t = builtin("multi-region-vxlan");
    let frames = bench_frames(&t, "spoke11-vm", "10.21.1.4", 16, 1000);
    let ts: Vec<_> = frames.iter().map(|f| f.timestamp).collect();
    let sched = schedule::resolve(
        &schedule::parse("at packet 401 tunnel-down nva1 vx-nva2\n", "ev").unwrap(),
        &ts,
    );
    for (workers, delay) in [(1, 0), (2, 0), (4, 0), (2, 50)] {
        let (r, lines, _) = run(&t, &frames, workers, sched.clone(), delay);
        let c = &r.counters;
        assert!(c.balanced());
        assert_eq!(
            count(&lines, 0..400, |l| l["verdict"] == "delivered"
                && l["at"] == "nic spoke21-vm"
                && via(l, "nva nva2")),
            400
        );
        assert_eq!(c.delivered, 400, "{workers}/{delay}: {c:?}");
        assert_eq!(
            c.drop_reasons.get("converging").copied().unwrap_or(0),
            delay,
            "{workers}/{delay}: {c:?}"
        );
        assert_eq!(
            c.drop_reasons.get("route-none").copied().unwrap_or(0),
            600 - delay
        );
        assert!(
            lines[400 + delay..]
                .iter()
                .all(|l| l["reason"] == "route-none" && l["at"] == "nic spoke11-vm")
        );
    }
}

/// Live updates while packets flow: every packet's walk equals the walk
/// under exactly the table version its trace names (no half-applied table).
#[test]
fn every_packet_sees_one_whole_table_version() {
    let t = builtin("dual-homed-active-passive");
    let frames = bench_frames(&t, "spoke11-vm", "198.51.100.10", 32, 60_000);
    let (tx, rx) = crossbeam_channel::unbounded();
    let world = Arc::new(World::new(&converge(&t, &[])));
    let feeder = std::thread::spawn(move || {
        for i in 0..40 {
            let e = if i % 2 == 0 {
                "speaker-down nva1"
            } else {
                "speaker-up nva1"
            };
            tx.send(Event::parse(e).unwrap().into()).unwrap();
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
    });
    let mut traces = Vec::new();
    let r = pipeline::run(
        &frames,
        live_run(
            &t,
            world,
            rx,
            Options {
                workers: 2,
                batch: Some(16),
                from: None,
                convergence_delay: 0,
                ..Options::default()
            },
        ),
        Outputs::<Vec<u8>, Vec<u8>> {
            pcapng: None,
            traces: Some(&mut traces),
        },
    )
    .unwrap();
    feeder.join().unwrap();
    assert!(r.counters.balanced());
    // The events in effect at each version, and (for a `pending` version:
    // the failure in effect before the tables show it) the events pending.
    let mut in_effect: Vec<(Vec<String>, Vec<String>)> = vec![(Vec::new(), Vec::new())];
    for v in &r.versions {
        let mut e = in_effect.last().unwrap().0.clone();
        if v.kind == "converged" {
            e.extend(v.events.iter().map(ToString::to_string));
            in_effect.push((e, Vec::new()));
        } else {
            in_effect.push((e, v.events.iter().map(ToString::to_string).collect()));
        }
    }
    // Reference: one packet through a fresh one-worker run under exactly
    // those tables (a pending failure as a scheduled event whose
    // reconvergence comes one packet later).
    let expect: Vec<Value> = in_effect
        .iter()
        .map(|(evs, pending)| {
            let evs: Vec<Event> = evs.iter().map(|e| Event::parse(e).unwrap()).collect();
            let w = Arc::new(World::new(&vnetplane::control::converge(&t, &evs).unwrap()));
            let mut out = Vec::new();
            pipeline::run(
                &frames[..1],
                Run {
                    world: w,
                    control: Some(Control {
                        base: t.clone(),
                        events: evs,
                    }),
                    scheduled: pending
                        .iter()
                        .map(|e| (0, Event::parse(e).unwrap()))
                        .collect(),
                    live: None,
                    stop: None,
                    opts: Options {
                        workers: 1,
                        convergence_delay: 1,
                        ..Options::default()
                    },
                },
                Outputs::<Vec<u8>, Vec<u8>> {
                    pcapng: None,
                    traces: Some(&mut out),
                },
            )
            .unwrap();
            let mut v: Value = serde_json::from_slice(&out).unwrap();
            v["table_version"] = Value::Null;
            v
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for l in String::from_utf8(traces).unwrap().lines() {
        let mut v: Value = serde_json::from_str(l).unwrap();
        let version = v["table_version"].as_u64().unwrap() as usize;
        seen.insert(version);
        v["table_version"] = Value::Null;
        v["packet"] = Value::from(1);
        assert_eq!(v, expect[version], "a packet under version {version}");
    }
    // Live events were applied while running (how many is timing).
    assert!(!r.versions.is_empty(), "no live update was applied");
    assert!(
        seen.len() >= 2 || r.versions.len() == 1,
        "versions seen: {seen:?}"
    );
}

/// Stopping with batches queued: every packet handed out is forwarded and
/// written, in order; nothing after the stop is read.
#[test]
fn stop_with_packets_in_flight_loses_none() {
    let t = builtin("multi-region-vxlan");
    let frames = bench_frames(&t, "spoke11-vm", "10.21.1.4", 64, 200_000);
    let stop = AtomicBool::new(false);
    let world = Arc::new(World::new(&converge(&t, &[])));
    let mut traces = Vec::new();
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            stop.store(true, Ordering::Relaxed);
        });
        pipeline::run(
            &frames,
            Run {
                world,
                control: None,
                scheduled: Vec::new(),
                live: None,
                stop: Some(&stop),
                opts: Options {
                    workers: 2,
                    batch: Some(64),
                    from: None,
                    convergence_delay: 0,
                    ..Options::default()
                },
            },
            Outputs::<Vec<u8>, Vec<u8>> {
                pcapng: None,
                traces: Some(&mut traces),
            },
        )
        .unwrap()
    });
    assert!(r.stopped_early, "the run ended before the stop");
    assert!(r.read < frames.len());
    assert!(r.counters.balanced());
    assert_eq!(r.counters.read, r.read);
    let numbers: Vec<u64> = String::from_utf8(traces)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["packet"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers.len(), r.read);
    assert!(numbers.iter().enumerate().all(|(i, &n)| n == i as u64 + 1));
}

#[cfg(feature = "bench")]
#[test]
fn bench_quick_json_has_the_fields() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vnetplane"))
        .args([
            "bench",
            "--topology",
            "multi-region-vxlan",
            "--from",
            "spoke11-vm",
            "--dst",
            "10.21.1.4",
            "--packets",
            "20000",
            "--flows",
            "16",
            "--repeat",
            "1",
            "--workers",
            "1,2",
            "--churn",
            "20000",
            "--quick",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "workers",
        "packets",
        "mpps",
        "ns_per_packet",
        "hops_per_packet",
    ] {
        assert!(v[k].is_number(), "{k}: {v}");
    }
    assert_eq!(v["hops_per_packet"], 9.0, "the VXLAN path is nine hops");
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    let modes: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes,
        [
            "forward",
            "forward",
            "walk",
            "walk",
            "traces+pcapng",
            "traces+pcapng",
            "churn",
            "churn"
        ]
    );
    // The forward rows use the flow cache (16 flows: nearly every packet
    // hits); the walk rows do not.
    let rows = v["rows"].as_array().unwrap();
    assert!(rows[0]["flow_cache_hits"].as_f64().unwrap() > 0.9);
    assert_eq!(rows[2]["flow_cache_hits"].as_f64().unwrap(), 0.0);
    // Flows steered adaptively by default; one worker moves nothing.
    assert_eq!(v["steering"], "adaptive");
    assert_eq!(rows[0]["bucket_moves"], 0, "one worker");
    assert!(
        rows.iter()
            .all(|r| r["ingest_ns_per_frame"].as_f64().unwrap() > 0.0)
    );
    assert!(rows.iter().all(|r| r["bucket_moves"].is_u64()));
}

#[test]
fn replay_cli_with_events_file_and_workers() {
    let dir = std::env::temp_dir().join(format!("vnetplane-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ev = dir.join("events.txt");
    std::fs::write(&ev, "# nva1 fails\nat packet 2 speaker-down nva1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vnetplane"))
        .args(["replay", "-t", "dual-homed-active-passive", "--pcap"])
        .arg(root().join("pcaps/dual-homed-active-passive.pcap"))
        .args(["--workers", "2", "--json", "--events"])
        .arg(&ev)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["workers"], 2);
    assert_eq!(v["steering"]["mode"], "adaptive");
    let held: Vec<u64> = (v["steering"]["buckets"].as_array().unwrap().iter())
        .map(|b| b.as_u64().unwrap())
        .collect();
    assert_eq!(
        (held.len(), held.iter().sum::<u64>()),
        (2, 1024),
        "{held:?}"
    );
    assert_eq!(v["versions"][0]["events"][0], "speaker-down nva1");
    assert_eq!(v["versions"][0]["from_packet"], 1);
    // Every frame read was placed in one of the two receive queues.
    let queued: Vec<u64> = (v["receive_queues"]["frames"].as_array().unwrap().iter())
        .map(|k| k.as_u64().unwrap())
        .collect();
    assert_eq!(queued.len(), 2);
    assert_eq!(Some(queued.iter().sum::<u64>()), v["read"].as_u64());
    assert!(v["receive_queues"]["ms"].as_f64().unwrap() >= 0.0);
    // The control thread asks for real-time scheduling; where that is
    // refused, the report says so and why.
    let sched = v["control_scheduling"].as_str().unwrap();
    assert!(
        sched.starts_with("SCHED_FIFO") || sched.starts_with("normal (SCHED_FIFO refused"),
        "{sched}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vnetplane"))
        .args(["replay", "-t", "dual-homed-active-passive", "--pcap"])
        .arg(root().join("pcaps/dual-homed-active-passive.pcap"))
        .args(["--control-priority", "normal", "--events"])
        .arg(&ev)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("control plane scheduled normal\n"), "{text}");
    assert!(text.contains("speaker-down nva1"), "{text}");
    // Fixed steering: the same counts, no bucket moved.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vnetplane"))
        .args(["replay", "-t", "dual-homed-active-passive", "--pcap"])
        .arg(root().join("pcaps/dual-homed-active-passive.pcap"))
        .args([
            "--workers",
            "2",
            "--steering",
            "fixed",
            "--json",
            "--events",
        ])
        .arg(&ev)
        .output()
        .unwrap();
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["steering"]["mode"], "fixed");
    assert_eq!(f["steering"]["bucket_moves"], 0);
    for k in [
        "delivered",
        "delivered_at",
        "dropped",
        "drop_reasons",
        "looped",
    ] {
        assert_eq!(f[k], v[k], "{k}");
    }
    // A steering that does not exist is refused by name.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vnetplane"))
        .args(["replay", "-t", "dual-homed-active-passive", "--pcap"])
        .arg(root().join("pcaps/dual-homed-active-passive.pcap"))
        .args(["--steering", "random"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--steering") && err.contains("adaptive"),
        "{err}"
    );
    // A wrong events file names the file and line.
    std::fs::write(&ev, "\nat soon speaker-down nva1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vnetplane"))
        .args(["replay", "-t", "dual-homed-active-passive", "--pcap"])
        .arg(root().join("pcaps/dual-homed-active-passive.pcap"))
        .arg("--events")
        .arg(&ev)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("events.txt:2:"), "{err}");
}

/// A live event that does not apply (an unknown speaker) is reported and
/// skipped; the events that arrived with it in the same debounce window
/// still apply, and the version lists only them.
#[test]
fn a_bad_live_event_costs_only_itself() {
    let t = builtin("dual-homed-active-passive");
    let frames = bench_frames(&t, "spoke11-vm", "198.51.100.10", 8, 2_000);
    let (tx, rx) = crossbeam_channel::unbounded();
    // Queued before the run starts: the control plane takes them as one batch.
    for e in [
        "speaker-down nva1",
        "speaker-down no-such-nva",
        "advertise nva2 100.127.9.0/24",
    ] {
        tx.send(Event::parse(e).unwrap().into()).unwrap();
    }
    drop(tx);
    let world = Arc::new(World::new(&converge(&t, &[])));
    let r = pipeline::run(
        &frames,
        live_run(
            &t,
            world,
            rx,
            Options {
                workers: 1,
                ..Options::default()
            },
        ),
        Outputs::none(),
    )
    .unwrap();
    assert!(r.counters.balanced());
    let applied: Vec<String> = r
        .versions
        .iter()
        .filter(|v| v.kind == "converged")
        .flat_map(|v| v.events.iter().map(ToString::to_string))
        .collect();
    assert_eq!(
        applied,
        ["speaker-down nva1", "advertise nva2 100.127.9.0/24"],
        "{:?}",
        r.versions
    );
}

#[test]
fn queues_built_for_other_options_are_refused_not_misread() {
    let t = builtin("spoke-to-spoke-udr");
    let frames = io::read_capture(&root().join("pcaps/spoke-to-spoke-udr.pcap"))
        .unwrap()
        .frames;
    let two = Options {
        workers: 2,
        ..Options::default()
    };
    let q = pipeline::Queues::new(&frames, &two, false, false).unwrap();
    assert_eq!(q.queued().len(), 2);
    assert_eq!(q.queued().iter().sum::<usize>(), frames.len());
    let run = |workers| Run {
        world: Arc::new(World::new(&converge(&t, &[]))),
        control: None,
        scheduled: Vec::new(),
        live: None,
        stop: None,
        opts: Options {
            workers,
            ..Options::default()
        },
    };
    let err = pipeline::run_queued(&q, run(1), Outputs::none()).unwrap_err();
    assert!(
        err.to_string()
            .contains("receive queues built for other options"),
        "{err}"
    );
    // The options they were built for: every frame accounted for.
    let r = pipeline::run_queued(&q, run(2), Outputs::none()).unwrap();
    assert_eq!(r.read, frames.len());
    assert!(r.counters.balanced());
    assert_eq!(r.reader.queued, q.queued());
}
