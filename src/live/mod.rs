//! `live`: real endpoints around the emulated fabric, on one Linux machine.
//!
//! ```text
//!  vnp-spoke11-vm ─veth─┐                    ┌─veth─ vnp-spoke12-vm
//!  vnp-nva1 (FRR) ─veth─┤  vnp-fabric: ports ├─veth─ vnp-site-onprem
//!  vnp-rs-hub1-0 ──veth─┤  read by workers   ├─veth─ vnp-internet
//!                       └── hop machine ─────┘
//!        BGP (TCP) ◀──── Route Server speakers ──live events──▶ control
//! ```
//!
//! - [`lab`]: the namespaces and veth pairs (`netns` runs iproute2).
//! - [`fabric`]: AF_PACKET readers per port, the walk, ARP, ICMP.
//! - [`bgp`]: the Route Servers' real BGP sessions; [`frr`]: FRR's bgpd.
//! - The control plane is the pipeline's ([`crate::pipeline::serve_control`]):
//!   what a real peer announces arrives as live events, and each version
//!   reaches the port workers as a snapshot.

pub mod bgp;
pub mod fabric;
pub mod frr;
pub mod lab;
pub mod netns;
pub mod ring;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::dataplane::World;
use crate::io::PcapNgOut;
use crate::pipeline::{self, Control, LiveEvents, Snapshot};
use crate::topology::{NicId, NvaId, Speaker, Topology};
use lab::{Lab, Plan, PortKind};

/// What a live run is asked to do.
pub struct Options {
    /// Readers per port (each a thread in the port's fanout group).
    pub workers: usize,
    /// NVAs run by FRR, each with the user's configuration file or none
    /// (written from the topology).
    pub frr: Vec<(String, Option<PathBuf>)>,
    /// A NIC whose namespace runs a command while the fabric runs.
    pub exec: Option<(String, Vec<String>)>,
    /// Where to write what the fabric saw (pcapng).
    pub pcapng: Option<PathBuf>,
    /// Control-plane events arriving while running (failures, UDR
    /// changes, advertisements), as `replay` takes them from standard
    /// input; the command of `--exec` then reads nothing.
    pub events: Option<Receiver<LiveEvents>>,
    /// Set to stop (Ctrl-C).
    pub stop: Arc<AtomicBool>,
}

/// What a run did, printed at exit.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    /// What the fabric read, forwarded and dropped.
    #[serde(flatten)]
    pub counts: fabric::Counts,
    /// Every frame read is in exactly one count (forwarded, send errors,
    /// absorbed, dropped, looped, ARP and ND replies, link-local).
    pub accounted: bool,
    pub sessions: Vec<bgp::SessionReport>,
    /// Table versions published while running.
    pub table_versions: usize,
    /// Live events that did not apply.
    pub rejected_events: Vec<String>,
    /// The command's exit status (`--exec`).
    pub exec_status: Option<i32>,
    /// Writing the effective-routes files failed (the first failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes_error: Option<String>,
    /// Whether the capture file was written whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcapng: Option<String>,
}

/// What is running, given to the caller once the lab is up.
pub struct Ready<'r> {
    /// (what, namespace) for every endpoint.
    pub spaces: Vec<(String, String)>,
    /// (NVA, vtysh command) per FRR daemon.
    pub frr: Vec<(String, String)>,
    /// Where each NIC's effective routes are kept up to date.
    pub routes_dir: &'r Path,
}

/// Why a live run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("live needs root (network namespaces, AF_PACKET sockets): run it with sudo")]
    NotRoot,
    #[error("--frr {0}: no NVA of that name in the topology")]
    UnknownNva(String),
    #[error(
        "--exec {0}: no NIC of that name with a namespace (VM NICs and NICs of --frr NVAs have one)"
    )]
    UnknownNic(String),
    #[error("--frr {nva} {path}: {source}")]
    FrrConfig {
        nva: String,
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error(transparent)]
    Fabric(#[from] fabric::FabricError),
    #[error(transparent)]
    Bgp(#[from] bgp::BgpError),
    #[error(transparent)]
    Frr(#[from] frr::FrrError),
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    #[error("the control plane: {0}")]
    Control(#[from] crate::control::events::EventError),
    #[error("--pcapng {path}: {source}")]
    Capture {
        path: String,
        source: crate::io::CaptureError,
    },
    #[error("running `{command}`: {source}")]
    Exec {
        command: String,
        source: std::io::Error,
    },
    #[error("a port worker panicked")]
    Panicked,
}

/// Where live runs keep each NIC's effective routes.
pub fn routes_dir() -> PathBuf {
    Path::new(netns::RUN_DIR).join("live").join("routes")
}

/// The topology the control plane starts from: what an NVA run by real
/// software originates comes from its BGP sessions, not the file.
fn without_originations(t: &Topology, real: &[NvaId]) -> Topology {
    let mut t = t.clone();
    for v in real {
        for s in &mut t.nvas[v.idx()].bgp {
            s.originate.clear();
            s.redistribute_static = false;
        }
    }
    t
}

/// Writes every NIC's effective routes (Azure's REST shape) to `dir`,
/// each file replaced whole.
fn write_routes(dir: &Path, world: &World) -> std::io::Result<()> {
    let t = &world.cp.topology;
    for (i, nic) in t.nics.iter().enumerate() {
        let table = world.cp.nic_table(NicId(i as u32));
        let list = crate::io::azure::effective_routes(&table);
        let text = serde_json::to_string_pretty(&list)?;
        let tmp = dir.join(format!(".{}.json", nic.name));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, dir.join(format!("{}.json", nic.name)))?;
    }
    Ok(())
}

/// Runs the lab: makes it, forwards, speaks BGP, runs the command (or
/// waits for the stop flag), then removes everything it made.
pub fn run(
    topology: &Topology,
    opts: Options,
    ready: impl FnOnce(&Ready<'_>),
) -> Result<Summary, LiveError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(LiveError::NotRoot);
    }
    let _lock = netns::Lock::take()?;
    let mut real = Vec::new();
    let mut confs = Vec::new();
    for (name, conf) in &opts.frr {
        let v = topology
            .nvas
            .iter()
            .position(|n| n.name == *name)
            .ok_or_else(|| LiveError::UnknownNva(name.clone()))?;
        real.push(NvaId(v as u32));
        let text = match conf {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|source| LiveError::FrrConfig {
                    nva: name.clone(),
                    path: p.display().to_string(),
                    source,
                })?,
            ),
            None => None,
        };
        confs.push(text);
    }
    let base = without_originations(topology, &real);
    let cp = crate::control::converge(&base, &[])?;
    let world = Arc::new(World::from_arc(Arc::new(cp)).with_outside(&real));
    let plan = Plan::new(&base, &real);
    let exec_ns = match &opts.exec {
        Some((nic, _)) => Some(
            base.nics
                .iter()
                .position(|n| n.name == *nic)
                .and_then(|i| plan.ns_of_nic(NicId(i as u32)))
                .map(str::to_string)
                .ok_or_else(|| LiveError::UnknownNic(nic.clone()))?,
        ),
        None => None,
    };
    let lab = Lab::make(plan)?;
    let stop = opts.stop.clone();
    // The daemons' configuration comes from the file's topology, with the
    // originations the control plane starts without.
    let confs = confs
        .into_iter()
        .zip(&real)
        .map(|(c, v)| {
            c.unwrap_or_else(|| {
                let dir = Path::new(netns::RUN_DIR)
                    .join(format!("frr-{}", frr_ns(&lab.plan, topology, *v)));
                frr::config(topology, *v, &dir.join("bgpd.log"))
            })
        })
        .collect();
    let result = run_lab(&lab, &base, world, &real, confs, &opts, exec_ns, ready);
    stop.store(true, Ordering::Relaxed);
    drop(lab);
    result
}

/// The namespace of an NVA run by real software.
fn frr_ns(plan: &Plan, t: &Topology, v: NvaId) -> String {
    let what = format!("nva {}", t.nvas[v.idx()].name);
    plan.spaces
        .iter()
        .find(|s| s.what == what)
        .map(|s| s.ns.clone())
        .unwrap_or_default()
}

/// A started capture writer.
type CaptureJoin = std::thread::JoinHandle<Result<(), crate::io::CaptureError>>;

/// The port workers' ends of the capture writer: blocks out, buffers back.
type CaptureEnds = (Sender<fabric::Captured>, Receiver<Vec<u8>>);

fn start_capture(path: &Path, world: Arc<World>) -> Result<(CaptureEnds, CaptureJoin), LiveError> {
    let mut out = PcapNgOut::create(path).map_err(|source| LiveError::Capture {
        path: path.display().to_string(),
        source,
    })?;
    let (tx, rx) = bounded::<fabric::Captured>(65_536);
    let (back_tx, back_rx) = bounded::<Vec<u8>>(65_536);
    let join = std::thread::spawn(move || {
        for (point, mut block) in rx {
            let id = out.interface_of(point, || world.capture_point_name(point))?;
            crate::io::set_epb_interface(&mut block, id);
            out.write_encoded(&block)?;
            let _ = back_tx.try_send(block);
        }
        out.finish().map(drop)
    });
    Ok(((tx, back_rx), join))
}

#[allow(clippy::too_many_arguments)]
fn run_lab(
    lab: &Lab,
    base: &Topology,
    world: Arc<World>,
    real: &[NvaId],
    confs: Vec<String>,
    opts: &Options,
    exec_ns: Option<String>,
    ready: impl FnOnce(&Ready<'_>),
) -> Result<Summary, LiveError> {
    let stop = opts.stop.clone();
    let plan = lab.plan.clone();
    let workers = opts.workers.max(1);
    // Snapshots: one channel per port worker, one for the BGP hub.
    let nthreads = plan.ports.len() * workers;
    let (subs_tx, subs_rx): (Vec<_>, Vec<_>) = (0..=nthreads).map(|_| unbounded()).unzip();
    let mut subs_rx = subs_rx.into_iter();
    let hub_rx: Receiver<Arc<Snapshot>> = subs_rx.next().unwrap_or_else(|| unbounded().1);
    let (live_tx, live_rx) = unbounded::<LiveEvents>();
    let popts = pipeline::Options {
        coalesce: Duration::from_millis(2),
        control_priority: pipeline::ControlPriority::Normal,
        ..pipeline::Options::default()
    };
    let control = pipeline::serve_control(
        Control {
            base: base.clone(),
            events: Vec::new(),
        },
        world.clone(),
        live_rx,
        subs_tx,
        &popts,
    );
    let first = pipeline::first_snapshot(world.clone());
    let routes = routes_dir();
    let _ = std::fs::remove_dir_all(&routes);
    std::fs::create_dir_all(&routes).map_err(|source| netns::NetnsError::File {
        path: routes.display().to_string(),
        source,
    })?;
    let routes_err = |source| netns::NetnsError::File {
        path: routes.display().to_string(),
        source,
    };
    write_routes(&routes, &world).map_err(routes_err)?;

    // Events from the user go the way real BGP's do.
    if let Some(rx) = opts.events.clone() {
        let tx = live_tx.clone();
        std::thread::spawn(move || {
            for e in rx {
                if tx.send(e).is_err() {
                    break;
                }
            }
        });
    }

    // The BGP hub follows the versions and keeps the routes files.
    let hub = Arc::new(bgp::Hub::new(first.clone(), live_tx.clone(), stop.clone()));
    let hub_thread = {
        let (hub, routes) = (hub.clone(), routes.clone());
        std::thread::spawn(move || {
            // The first failure to keep the files current, reported at
            // the end.
            let mut failed = None;
            for s in hub_rx {
                if let Err(e) = write_routes(&routes, &s.world) {
                    failed.get_or_insert_with(|| {
                        format!("{} (table version {}): {e}", routes.display(), s.version)
                    });
                }
                if let Ok(mut l) = hub.latest.write() {
                    *l = s;
                }
            }
            failed
        })
    };

    let (capture, capture_join) = match &opts.pcapng {
        Some(p) => {
            let (c, j) = start_capture(p, world.clone())?;
            (Some(c), Some(j))
        }
        None => (None, None),
    };

    // The fabric: a thread in its namespace opens every port's readers.
    let (opened_tx, opened_rx) = bounded::<Result<(), LiveError>>(1);
    let fabric_thread = {
        let (plan, stop, first) = (plan.clone(), stop.clone(), first.clone());
        let nics = base.nics.len();
        let sites = base.sites.len();
        let mut subs: Vec<Receiver<Arc<Snapshot>>> = subs_rx.collect();
        std::thread::spawn(move || -> Result<Vec<fabric::Counts>, LiveError> {
            let start = || -> Result<Vec<fabric::PortWorker>, LiveError> {
                netns::enter(netns::FABRIC)?;
                let sh = Arc::new(fabric::Shared::new(plan, nics, sites, stop, capture)?);
                let mut ws = Vec::new();
                for port in 0..sh.plan.ports.len() {
                    for _ in 0..workers {
                        let rx = subs.remove(0);
                        ws.push(fabric::PortWorker::new(
                            sh.clone(),
                            port,
                            workers,
                            first.clone(),
                            rx,
                        )?);
                    }
                }
                Ok(ws)
            };
            let ws = match start() {
                Ok(ws) => {
                    let _ = opened_tx.send(Ok(()));
                    ws
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return Ok(Vec::new());
                }
            };
            let joins: Vec<_> = ws
                .into_iter()
                .map(|w| std::thread::spawn(move || w.run()))
                .collect();
            let mut counts = Vec::new();
            for j in joins {
                counts.push(j.join().map_err(|_| LiveError::Panicked)??);
            }
            Ok(counts)
        })
    };
    let opened = opened_rx.recv().unwrap_or(Err(LiveError::Panicked));

    // Route Server speakers, then the daemons that connect to them.
    let mut speakers = Vec::new();
    let mut daemons = Vec::new();
    let started = opened.and_then(|()| {
        for p in &plan.ports {
            let PortKind::Speaker(speaker, k) = p.kind else {
                continue;
            };
            let Some((IpAddr::V4(ip), _)) = p.addrs.first().copied() else {
                continue;
            };
            let peers: Vec<bgp::Peer> = real
                .iter()
                .filter(|v| base.nvas[v.idx()].bgp.iter().any(|s| s.peer == speaker))
                .map(|v| bgp::Peer {
                    nva: *v,
                    name: base.nvas[v.idx()].name.clone(),
                    ips: frr::nva_ips(base, *v),
                    asn: base.nvas[v.idx()].asn.unwrap_or(65001),
                })
                .collect();
            if peers.is_empty() {
                continue;
            }
            let asn = match speaker {
                Speaker::Gateway(g) => base.gateway(g).asn,
                _ => 65515,
            };
            let inst = bgp::Instance {
                speaker,
                asn,
                k,
                ip,
                ns: p.ns.clone(),
            };
            speakers.push(bgp::serve(hub.clone(), inst, peers)?);
        }
        for (v, text) in real.iter().zip(confs) {
            let name = &base.nvas[v.idx()].name;
            let ns = frr_ns(&plan, base, *v);
            daemons.push(frr::Bgpd::start(name, &ns, &text)?);
        }
        Ok(())
    });

    let mut exec_status = None;
    let outcome = started.and_then(|()| {
        let spaces = plan
            .spaces
            .iter()
            .map(|s| (s.what.clone(), s.ns.clone()))
            .collect();
        let frr = daemons
            .iter()
            .map(|d| (d.nva.clone(), d.vtysh_hint()))
            .collect();
        ready(&Ready {
            spaces,
            frr,
            routes_dir: &routes,
        });
        match (&opts.exec, &exec_ns) {
            (Some((_, cmd)), Some(ns)) => {
                exec_status = Some(run_command(ns, cmd, &stop, opts.events.is_none())?);
            }
            _ => {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Ok(())
    });

    // Shut down: the sessions first (each notes its state and sends a
    // Cease), then the daemons, then the fabric.
    stop.store(true, Ordering::Relaxed);
    for s in speakers {
        let _ = s.join();
    }
    drop(daemons);
    let counts = fabric_thread.join().map_err(|_| LiveError::Panicked)?;
    let sessions = std::mem::take(&mut *hub.reports.lock().unwrap_or_else(|e| e.into_inner()));
    let sessions = bgp::merge_reports(sessions);
    drop(live_tx);
    drop(hub);
    let end = control.finish();
    let routes_error = hub_thread.join().map_err(|_| LiveError::Panicked)?;
    let capture_result = capture_join.map(|j| j.join());
    outcome?;
    let counts = counts?;
    let end = end?;
    let total = fabric::total(&counts);
    let pcapng = match (capture_result, &opts.pcapng) {
        (Some(Ok(Ok(()))), Some(p)) => Some(p.display().to_string()),
        (Some(Ok(Err(source))), Some(p)) => {
            return Err(LiveError::Capture {
                path: p.display().to_string(),
                source,
            });
        }
        (Some(Err(_)), _) => return Err(LiveError::Panicked),
        _ => None,
    };
    Ok(Summary {
        accounted: total.balanced(),
        counts: total,
        sessions,
        table_versions: end.versions.len(),
        rejected_events: end.rejected,
        exec_status,
        routes_error,
        pcapng,
    })
}

/// Runs `cmd` in namespace `ns` with this process's standard output and
/// error, and its standard input when `stdin` (else none); its exit status
/// (128 + signal when killed). The stop flag kills it.
fn run_command(ns: &str, cmd: &[String], stop: &AtomicBool, stdin: bool) -> Result<i32, LiveError> {
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", ns]).args(cmd);
    if !stdin {
        c.stdin(std::process::Stdio::null());
    }
    let mut child = c.spawn().map_err(|source| LiveError::Exec {
        command: cmd.join(" "),
        source,
    })?;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            use std::os::unix::process::ExitStatusExt;
            return Ok(status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)));
        }
        if stop.load(Ordering::Relaxed) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
