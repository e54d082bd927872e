//! `fib`: the compiled forwarding tables of a topology.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use super::args::{TopologyArg, control_plane, load};
use vnetplane::fib::FibSet;

#[derive(clap::Args, Debug)]
pub struct FibArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[arg(long)]
    pub json: bool,
}

/// `fib --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FibReport {
    nics: usize,
    subnets: usize,
    distinct_tables: usize,
    routes: usize,
    bytes: usize,
    compile_ms: f64,
}

pub fn run(a: FibArgs) -> Result<String> {
    let cp = control_plane(&load(&a.topology.topology)?, &[])?;
    let t0 = std::time::Instant::now();
    let set = FibSet::compile(&cp);
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let t = &cp.topology;
    let mut seen = HashSet::new();
    let routes: usize = set
        .by_subnet
        .iter()
        .filter(|f| seen.insert(Arc::as_ptr(f)))
        .map(|f| f.len())
        .sum();
    let r = FibReport {
        nics: t.nics.len(),
        subnets: t.subnets.len(),
        distinct_tables: set.distinct,
        routes,
        bytes: set.bytes,
        compile_ms: ms,
    };
    if a.json {
        Ok(serde_json::to_string_pretty(&r)? + "\n")
    } else {
        Ok(format!(
            "{}: {} NICs in {} subnets share {} distinct compiled tables ({} routes, {} bytes of tries), compiled in {:.1} ms\n",
            t.file, r.nics, r.subnets, r.distinct_tables, r.routes, r.bytes, ms
        ))
    }
}
