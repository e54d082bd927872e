//! Packets from an on-premises site while its routers hold many BGP routes:
//! the first BGP NVA of TOPOLOGY advertises N /24s (which Route Server and
//! the gateway pass on to the site where branch-to-branch allows), then
//! 200,000 frames from the first site to DST walk every hop
//! (`pipeline::kernel`, one thread, no flow cache); best of 5, ns a packet.
//!
//! `cargo run --release --features bench --example sitebench -- onprem-overlay 20000 10.11.1.4`

use std::sync::Arc;
use vnetplane::bench::pipeline as bench;
use vnetplane::control::{self, events::Event};
use vnetplane::dataplane::{Start, World};
use vnetplane::pipeline::kernel;
/// The binary's allocator, so that figures match `vnetplane bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: sitebench TOPOLOGY ROUTES DST";
    let name = args.next().ok_or(usage)?;
    let n: usize = args
        .next()
        .ok_or(usage)?
        .parse()
        .map_err(|e| format!("ROUTES: {e}"))?;
    let dst: std::net::IpAddr = args
        .next()
        .ok_or(usage)?
        .parse()
        .map_err(|e| format!("DST: {e}"))?;
    let t = vnetplane::topology::load_path_or_builtin(&name).map_err(|e| e.to_string())?;
    if t.sites.is_empty() {
        return Err(format!("{name}: no site").into());
    }
    let nva = t
        .nvas
        .iter()
        .find(|n| !n.bgp.is_empty())
        .ok_or(format!("{name}: no NVA speaking BGP"))?
        .name
        .clone();
    let evs: Vec<Event> = (0..n)
        .map(|i| Event::Advertise {
            speaker: nva.clone(),
            prefix: format!("{}.{}.{}.0/24", 100 + (i >> 16), (i >> 8) & 255, i & 255)
                .parse()
                .unwrap(),
        })
        .collect();
    let cp = control::converge(&t, &evs).map_err(|e| e.to_string())?;
    let site_best: usize = cp
        .bgp
        .best
        .iter()
        .filter(|(k, _)| matches!(k, control::bgp::Node::Site(_)))
        .map(|(_, v)| v.len())
        .sum();
    let w = Arc::new(World::new(&cp));
    let frames = bench::frames(
        &t,
        &[Start::Site(vnetplane::topology::SiteId(0))],
        &[dst],
        256,
        200_000,
    );
    if frames.is_empty() {
        return Err(format!("{name}: no frames from the first site to {dst}").into());
    }
    let mut best = f64::MAX;
    let mut counters = None;
    for _ in 0..5 {
        let (d, c) = kernel(&w, &frames, 1, 0)?;
        best = best.min(d.as_secs_f64() * 1e9 / frames.len() as f64);
        counters = Some(c);
    }
    let c = counters.ok_or("no run")?;
    println!(
        "{name}: site best routes {site_best}, {} frames: {best:.0} ns a packet walked; delivered {:?}, dropped {:?}",
        frames.len(),
        c.delivered_at,
        c.drop_reasons
    );
    Ok(())
}
