//! `vnetplane bench lpm`: our FIB against `ip_network_table-deps-treebitmap`
//! (a fork of `treebitmap`) and `prefix-trie`, in one process, on the same
//! destination arrays, for four tables (Azure-like 1k, the real IPv4 and IPv6
//! global tables, and a synthetic IPv4 table with the real length histogram
//! but random placement). Each figure is the median of several timed passes.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Instant;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use super::tables::{self, RouteList};
use crate::fib::Fib;

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Lookups per timed pass.
    pub keys: usize,
    /// Timed passes (the median is reported).
    pub runs: usize,
}

impl Options {
    pub fn quick() -> Self {
        Options {
            keys: 200_000,
            runs: 3,
        }
    }
    pub fn full() -> Self {
        Options {
            keys: 2_000_000,
            runs: 7,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Result {
    pub table: String,
    #[serde(rename = "impl")]
    pub implementation: String,
    pub mode: String,
    /// `random` or `in-table`.
    pub dest: String,
    pub prefixes: usize,
    pub lookups_per_sec: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_prefix: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_ms: Option<f64>,
    /// Our rate over the peer's (ours only), same table and destinations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_treebitmap: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_prefix_trie: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub keys_per_pass: usize,
    pub passes: usize,
    pub results: Vec<Result>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub popcnt: bool,
}

pub fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        popcnt: cfg!(target_feature = "popcnt"),
    }
}

/// Median seconds of `runs` calls of `f`.
fn median_secs(runs: usize, mut f: impl FnMut() -> u64) -> f64 {
    let mut v: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Peers4 {
    tb: ip_network_table_deps_treebitmap::IpLookupTable<Ipv4Addr, u32>,
    pt: prefix_trie::PrefixMap<Ipv4Net, u32>,
}

fn peers4(routes: &[(Ipv4Net, u32)]) -> Peers4 {
    let mut tb = ip_network_table_deps_treebitmap::IpLookupTable::new();
    let mut pt = prefix_trie::PrefixMap::new();
    for (n, v) in routes {
        tb.insert(n.network(), u32::from(n.prefix_len()), *v);
        pt.insert(*n, *v);
    }
    Peers4 { tb, pt }
}

fn result(
    table: &str,
    imp: &str,
    mode: &str,
    dest: &str,
    prefixes: usize,
    keys: usize,
    secs: f64,
) -> Result {
    Result {
        table: table.into(),
        implementation: imp.into(),
        mode: mode.into(),
        dest: dest.into(),
        prefixes,
        lookups_per_sec: keys as f64 / secs,
        bytes_per_prefix: None,
        build_ms: None,
        ratio_vs_treebitmap: None,
        ratio_vs_prefix_trie: None,
    }
}

/// Timings of one (table, destinations) pair, in seconds per pass.
struct Timings {
    single: f64,
    batch: f64,
    treebitmap: f64,
    prefix_trie: f64,
}

/// Our fixed facts about a table: size, bytes per prefix, build time.
struct Built {
    prefixes: usize,
    bytes_per_prefix: f64,
    build_ms: f64,
}

fn record(out: &mut Vec<Result>, table: &str, dest: &str, keys: usize, b: &Built, t: &Timings) {
    for (mode, secs) in [("single", t.single), ("batch", t.batch)] {
        let mut r = result(table, "vnetplane", mode, dest, b.prefixes, keys, secs);
        r.bytes_per_prefix = Some(b.bytes_per_prefix);
        r.build_ms = Some(b.build_ms);
        r.ratio_vs_treebitmap = Some(t.treebitmap / secs);
        r.ratio_vs_prefix_trie = Some(t.prefix_trie / secs);
        out.push(r);
    }
    out.push(result(
        table,
        "treebitmap",
        "single",
        dest,
        b.prefixes,
        keys,
        t.treebitmap,
    ));
    out.push(result(
        table,
        "prefix-trie",
        "single",
        dest,
        b.prefixes,
        keys,
        t.prefix_trie,
    ));
}

fn layout<K: crate::fib::poptrie::Key>(
    name: &str,
    t: &crate::fib::poptrie::Poptrie<K>,
    prefixes: usize,
    distinct: usize,
) -> String {
    format!(
        "{name}: {prefixes} prefixes, {distinct} distinct next hops; {} B direct table, {} nodes x 24 B, {} leaves x 4 B = {} B",
        t.dir_bytes(),
        t.node_count(),
        t.leaf_count(),
        t.bytes()
    )
}

fn bench_v4(
    name: &str,
    routes: &[(Ipv4Net, u32)],
    opts: Options,
    out: &mut Vec<Result>,
    notes: &mut Vec<String>,
) {
    let t = Instant::now();
    let fib = Fib::build(routes.iter().map(|(n, v)| (IpNet::V4(*n), *v)));
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let bpp = fib.v4_trie().bytes() as f64 / routes.len().max(1) as f64;
    let built = Built {
        prefixes: routes.len(),
        bytes_per_prefix: bpp,
        build_ms,
    };
    notes.push(layout(
        name,
        fib.v4_trie(),
        routes.len(),
        fib.actions().len(),
    ));
    let peers = peers4(routes);
    for (dest, keys) in [
        ("random", tables::random_v4(opts.keys, 7)),
        ("in-table", tables::in_table_v4(routes, opts.keys, 8)),
    ] {
        let n = keys.len();
        let ours_single = median_secs(opts.runs, || {
            keys.iter().map(|&k| u64::from(fib.lookup_v4(k))).sum()
        });
        let mut buf = vec![0u32; n];
        let ours_batch = median_secs(opts.runs, || {
            fib.lookup_v4_batch(&keys, &mut buf);
            buf.iter().map(|&v| u64::from(v)).sum()
        });
        let tb = median_secs(opts.runs, || {
            keys.iter()
                .map(|&k| {
                    peers
                        .tb
                        .longest_match(Ipv4Addr::from(k))
                        .map_or(0, |(_, _, v)| u64::from(*v))
                })
                .sum()
        });
        let pt = median_secs(opts.runs, || {
            keys.iter()
                .map(|&k| {
                    let host = Ipv4Net::new(Ipv4Addr::from(k), 32).expect("/32");
                    peers.pt.get_lpm(&host).map_or(0, |(_, v)| u64::from(*v))
                })
                .sum()
        });
        let timings = Timings {
            single: ours_single,
            batch: ours_batch,
            treebitmap: tb,
            prefix_trie: pt,
        };
        record(out, name, dest, n, &built, &timings);
    }
}

fn bench_v6(
    name: &str,
    routes: &[(Ipv6Net, u32)],
    opts: Options,
    out: &mut Vec<Result>,
    notes: &mut Vec<String>,
) {
    let t = Instant::now();
    let fib = Fib::build(routes.iter().map(|(n, v)| (IpNet::V6(*n), *v)));
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let bpp = fib.v6_trie().bytes() as f64 / routes.len().max(1) as f64;
    let built = Built {
        prefixes: routes.len(),
        bytes_per_prefix: bpp,
        build_ms,
    };
    notes.push(layout(
        name,
        fib.v6_trie(),
        routes.len(),
        fib.actions().len(),
    ));
    let mut tb = ip_network_table_deps_treebitmap::IpLookupTable::<Ipv6Addr, u32>::new();
    let mut pt = prefix_trie::PrefixMap::<Ipv6Net, u32>::new();
    for (n, v) in routes {
        tb.insert(n.network(), u32::from(n.prefix_len()), *v);
        pt.insert(*n, *v);
    }
    for (dest, keys) in [
        ("random", tables::random_v6(opts.keys, 9)),
        ("in-table", tables::in_table_v6(routes, opts.keys, 10)),
    ] {
        let n = keys.len();
        let ours_single = median_secs(opts.runs, || {
            keys.iter().map(|&k| u64::from(fib.lookup_v6(k))).sum()
        });
        let mut buf = vec![0u32; n];
        let ours_batch = median_secs(opts.runs, || {
            fib.lookup_v6_batch(&keys, &mut buf);
            buf.iter().map(|&v| u64::from(v)).sum()
        });
        let tbs = median_secs(opts.runs, || {
            keys.iter()
                .map(|&k| {
                    tb.longest_match(Ipv6Addr::from(k))
                        .map_or(0, |(_, _, v)| u64::from(*v))
                })
                .sum()
        });
        let pts = median_secs(opts.runs, || {
            keys.iter()
                .map(|&k| {
                    let host = Ipv6Net::new(Ipv6Addr::from(k), 128).expect("/128");
                    pt.get_lpm(&host).map_or(0, |(_, v)| u64::from(*v))
                })
                .sum()
        });
        let timings = Timings {
            single: ours_single,
            batch: ours_batch,
            treebitmap: tbs,
            prefix_trie: pts,
        };
        record(out, name, dest, n, &built, &timings);
    }
}

/// Runs the whole comparison. `table` is the real global table (`bgpas.lpm`
/// format, plain or .xz); when it cannot be read, the real and synthetic
/// tables are skipped with a note.
pub fn run(opts: Options, table: &Path) -> Report {
    let mut results = Vec::new();
    let mut notes = Vec::new();
    bench_v4(
        "azure-1k",
        &tables::azure_1k(),
        opts,
        &mut results,
        &mut notes,
    );
    match tables::read_lpm_file(table) {
        Ok(RouteList { v4, v6 }) => {
            bench_v4("ipv4-real", &v4, opts, &mut results, &mut notes);
            bench_v6("ipv6-real", &v6, opts, &mut results, &mut notes);
            bench_v4(
                "ipv4-synthetic",
                &tables::synthetic_v4(&v4, 42),
                opts,
                &mut results,
                &mut notes,
            );
        }
        Err(e) => notes.push(format!("real and synthetic tables skipped: {e}")),
    }
    Report {
        machine: machine(),
        keys_per_pass: opts.keys,
        passes: opts.runs,
        results,
        notes,
    }
}

/// The report as a readable table.
pub fn text(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "machine: {} ({} cores, popcnt {}); {} lookups per pass, median of {}",
        r.machine.cpu, r.machine.cores, r.machine.popcnt, r.keys_per_pass, r.passes
    );
    let _ = writeln!(
        s,
        "{:<15} {:<12} {:<7} {:<9} {:>10} {:>9} {:>8} {:>8} {:>9}",
        "table", "impl", "mode", "dest", "Mlookups/s", "B/prefix", "build ms", "vs tbm", "vs ptrie"
    );
    for x in &r.results {
        let opt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
        let _ = writeln!(
            s,
            "{:<15} {:<12} {:<7} {:<9} {:>10.1} {:>9} {:>8} {:>8} {:>9}",
            x.table,
            x.implementation,
            x.mode,
            x.dest,
            x.lookups_per_sec / 1e6,
            opt(x.bytes_per_prefix, 2),
            opt(x.build_ms, 0),
            opt(x.ratio_vs_treebitmap, 1),
            opt(x.ratio_vs_prefix_trie, 1)
        );
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}
