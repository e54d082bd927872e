//! `vnetplane live`: the topology's NICs, sites and the Internet as Linux
//! network namespaces around the emulated fabric.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow};

use super::Ended;
use super::args::load;
use vnetplane::live::{self, LiveError};
use vnetplane::pipeline::schedule::LineNote;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    sudo vnetplane live -t hub-rs-two-nvas --exec spoke11-vm -- ping -c 3 10.12.1.4\n  \
    sudo vnetplane live -t hub-rs-two-nvas --frr nva1 --json\n  \
    echo 'speaker-down nva1' | sudo vnetplane live --events - --exec spoke11-vm -- ping -c 3 10.12.1.4\n\n\
    Every VM NIC gets a namespace `vnp-NIC` (sites `vnp-site-NAME`, the Internet\n\
    `vnp-internet`); enter one with `ip netns exec vnp-NIC bash`. NVAs are the\n\
    fabric's (modelled as in `replay`) unless --frr runs FRR's bgpd in their\n\
    own namespace, peering with the Route Server over real BGP.")]
pub struct LiveArgs {
    /// Topology file or built-in name (see `vnetplane topologies`).
    #[arg(long, short, default_value = "hub-rs-two-nvas")]
    pub topology: String,
    /// Readers per fabric port (each a thread; the kernel spreads a port's
    /// flows over them).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Run this NVA with FRR's bgpd, configured from the topology's
    /// `[[nva.bgp]]` sessions, or from a file: `--frr NVA=frr.conf`
    /// (repeatable).
    #[arg(long, value_name = "NVA[=FILE]")]
    pub frr: Vec<String>,
    /// Run a command in this NIC's namespace while the fabric runs; exit
    /// with its status.
    #[arg(long, value_name = "NIC")]
    pub exec: Option<String>,
    /// Write what the fabric saw (one interface per NIC, gateway, site).
    #[arg(long, value_name = "FILE")]
    pub pcapng: Option<PathBuf>,
    /// Print the summary at exit as JSON.
    #[arg(long)]
    pub json: bool,
    /// Read control-plane events from standard input while running, one a
    /// line (`speaker-down nva2`, `udr-add …`; see `replay --events`),
    /// and apply them to the running fabric. Only `-` is taken.
    #[arg(long, value_name = "-")]
    pub events: Option<String>,
    /// The command for --exec.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

static STOP: AtomicBool = AtomicBool::new(false);

pub fn run(a: LiveArgs) -> Result<String> {
    if a.exec.is_some() && a.command.is_empty() {
        return Err(anyhow!(
            "--exec {}: give the command after `--`",
            a.exec.as_deref().unwrap_or("")
        ));
    }
    if a.exec.is_none() && !a.command.is_empty() {
        return Err(anyhow!("a command after `--` needs --exec NIC"));
    }
    if a.workers == 0 || a.workers > 64 {
        return Err(anyhow!("--workers: {} is not between 1 and 64", a.workers));
    }
    if a.events.as_deref().is_some_and(|e| e != "-") {
        return Err(anyhow!("--events: only `-` (standard input) is taken"));
    }
    let t = load(&a.topology)?;
    // Each line checked as it is read: a wrong one is reported with its
    // number and skipped; the others apply.
    let events = a.events.as_ref().map(|_| {
        let topo = Arc::new(t.clone());
        vnetplane::pipeline::read_events(
            std::io::stdin(),
            "stdin",
            move |e| e.check(&topo),
            |n| match n {
                LineNote::Rejected(m) => eprintln!("error: {m}"),
                LineNote::Late(m) => eprintln!("warning: {m}"),
            },
        )
        .events
    });
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            STOP.store(true, Ordering::SeqCst);
            stop.store(true, Ordering::SeqCst);
        });
    }
    let frr = a
        .frr
        .iter()
        .map(|s| match s.split_once('=') {
            Some((n, f)) => (n.to_string(), Some(PathBuf::from(f))),
            None => (s.clone(), None),
        })
        .collect();
    let opts = live::Options {
        workers: a.workers,
        frr,
        exec: a.exec.clone().map(|n| (n, a.command.clone())),
        pcapng: a.pcapng.clone(),
        events,
        stop,
    };
    let interactive = a.exec.is_none();
    let ready = |r: &live::Ready<'_>| {
        if !interactive {
            return;
        }
        eprintln!(
            "vnetplane live: {} namespaces up; Ctrl-C stops and removes them.",
            r.spaces.len()
        );
        for (what, ns) in &r.spaces {
            eprintln!("  {what:<36} ip netns exec {ns} bash");
        }
        for (nva, vtysh) in &r.frr {
            eprintln!("  FRR on {nva}: {vtysh} -c 'show bgp summary'");
        }
        eprintln!(
            "  effective routes, kept current: {}/NIC.json",
            r.routes_dir.display()
        );
    };
    let summary = match live::run(&t, opts, ready) {
        Ok(s) => s,
        // Unusable input or machine: exit 2.
        Err(
            e @ (LiveError::NotRoot
            | LiveError::UnknownNva(_)
            | LiveError::UnknownNic(_)
            | LiveError::FrrConfig { .. }
            | LiveError::Netns(live::netns::NetnsError::Busy(_))),
        ) => return Err(anyhow!(e)),
        Err(e) => {
            return Err(Ended {
                report: String::new(),
                message: Some(format!("{e:#}")),
                code: 1,
            }
            .into());
        }
    };
    if let Some(e) = &summary.routes_error {
        eprintln!("warning: effective routes not kept current: {e}");
    }
    let report = if a.json {
        serde_json::to_string_pretty(&summary)? + "\n"
    } else {
        text(&summary)
    };
    match summary.exec_status {
        Some(code) if code != 0 => Err(Ended {
            report,
            message: None,
            code: u8::try_from(code).unwrap_or(1),
        }
        .into()),
        _ => Ok(report),
    }
}

fn text(s: &live::Summary) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "frames read {}, forwarded {}, to modelled nodes {}, looped {}, ARP replies {}, ND replies {}, link-local or multicast (ended at the host) {}, ICMP sent {}",
        s.counts.read,
        s.counts.forwarded,
        s.counts.absorbed,
        s.counts.looped,
        s.counts.arp_replies,
        s.counts.nd_replies,
        s.counts.link_local,
        s.counts.icmp_sent
    );
    for (r, n) in s.counts.drops() {
        let _ = writeln!(o, "  dropped {r}: {n}");
    }
    if s.counts.send_errors > 0 {
        let _ = writeln!(o, "  frames a port refused: {}", s.counts.send_errors);
    }
    for b in &s.sessions {
        let _ = writeln!(
            o,
            "BGP {} ({}) ↔ {}: {}{}, learned [{}], dropped for Azure's AS in the path [{}], advertised {}",
            b.peer,
            b.peer_ip,
            b.azure_peer,
            b.state,
            if b.established {
                ""
            } else {
                " (never established)"
            },
            b.learned.join(", "),
            b.rejected.join(", "),
            b.advertised
        );
    }
    let _ = writeln!(o, "table versions published: {}", s.table_versions);
    for r in &s.rejected_events {
        let _ = writeln!(o, "  event not applied: {r}");
    }
    o
}
