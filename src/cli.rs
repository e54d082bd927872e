//! The command line: clap commands over the library. Catch-all errors
//! (`anyhow`) live here only.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::control::bgp::{self, Node, SessionState, Status};
use crate::control::effective::{self, Decision, Origin, Route, Source, Table, Verdict};
use crate::control::events::Event;
use crate::control::{self, ControlPlane};
use crate::topology::{self, Severity, SubnetId, Topology};

#[derive(Parser, Debug)]
#[command(
    name = "vnetplane",
    version,
    about = "Models how Azure virtual networks forward traffic: effective routes per NIC, next hops, and (soon) packets",
    long_about = "Models how Azure virtual networks forward traffic.\n\n\
        With no command, loads the embedded default topology (hub-spoke-vng) and shows\n\
        every NIC's effective routes, a few next-hop decisions, and generated traffic\n\
        (every sender to every destination) replayed through it.\n\n\
        --topology takes a TOML file, or the name of a built-in topology (see `vnetplane topologies`)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Summary of a topology: objects, warnings, every NIC's effective routes,
    /// and generated traffic replayed through it.
    Show {
        /// Topology file or built-in name [default: hub-spoke-vng].
        #[arg(long, short)]
        topology: Option<String>,
    },
    /// Load and validate a topology; print warnings. Exit 1 on errors.
    Check {
        #[arg(long, short)]
        topology: String,
    },
    /// A NIC's effective routes, like `az network nic show-effective-route-table`.
    Routes {
        #[arg(long, short)]
        topology: String,
        /// The NIC's name.
        #[arg(long, required_unless_present = "subnet", conflicts_with = "subnet")]
        nic: Option<String>,
        /// A subnet as VNET/SUBNET instead of a NIC (e.g. hub1/GatewaySubnet).
        #[arg(long)]
        subnet: Option<String>,
        /// Print the Azure REST API shape: {"value":[{source,state,addressPrefix,...}]}.
        #[arg(long)]
        json: bool,
        /// Add a column saying where each route comes from and why it is Invalid.
        #[arg(long)]
        explain: bool,
        /// Apply a control-plane event first (repeatable), e.g. "speaker-down nva1".
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
    },
    /// Which route a NIC uses for a destination, like Network Watcher's next hop,
    /// with the route that matched and why it won over the others.
    NextHop {
        #[arg(long, short)]
        topology: String,
        #[arg(long, required_unless_present = "subnet", conflicts_with = "subnet")]
        nic: Option<String>,
        /// A subnet as VNET/SUBNET instead of a NIC.
        #[arg(long)]
        subnet: Option<String>,
        /// Destination IP address.
        #[arg(long)]
        dst: String,
        #[arg(long)]
        json: bool,
        /// Apply a control-plane event first (repeatable).
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
    },
    /// BGP state: per speaker and peer, routes received (AS path, next hop,
    /// accepted or rejected and why) and advertised; what Route Servers and
    /// gateways program; NVA OS tables; warnings.
    Bgp {
        #[arg(long, short)]
        topology: String,
        /// Only this speaker (a route_server, nva, gateway, site, or msee-<site>).
        #[arg(long)]
        speaker: Option<String>,
        #[arg(long)]
        json: bool,
        /// Apply a control-plane event first (repeatable): speaker-down NAME,
        /// speaker-up NAME, session-down A B, session-up A B, advertise SPEAKER
        /// PREFIX, withdraw SPEAKER PREFIX, udr-add TABLE ROUTE PREFIX TYPE [IP],
        /// udr-remove TABLE ROUTE.
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
    },
    /// The hop-by-hop path of one packet sent by a NIC's VM: each hop names
    /// the route that decided it and any encapsulation; ends delivered,
    /// dropped (with the reason) or in a loop (with the cycle).
    Trace {
        #[arg(long, short)]
        topology: String,
        /// The sending NIC, or an on-premises site (its first host is the source).
        #[arg(long)]
        from: String,
        /// Destination IP address.
        #[arg(long)]
        dst: String,
        /// Source IP address [default: the NIC's first address of the destination's family].
        #[arg(long)]
        src: Option<String>,
        #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp", "icmp"])]
        proto: String,
        #[arg(long, default_value_t = 49152)]
        sport: u16,
        #[arg(long, default_value_t = 443)]
        dport: u16,
        #[arg(long)]
        json: bool,
        /// Apply a control-plane event first (repeatable).
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
    },
    /// Replays a capture (pcap or pcapng) through the topology: each packet
    /// enters at the NIC owning its source IP; counters per verdict and reason
    /// add up to the packets read.
    Replay {
        #[arg(long, short)]
        topology: String,
        #[arg(long)]
        pcap: std::path::PathBuf,
        /// Write pcapng: one interface per NIC crossed, the path as each packet's comment.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Write one JSON line per packet (verdict, place, reason, path).
        #[arg(long)]
        traces: Option<std::path::PathBuf>,
        /// Send every packet from this NIC instead of the one owning its source.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        json: bool,
        /// Apply a control-plane event first (repeatable).
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
        /// Events during the replay: a file of `at packet N EVENT` / `at 2.5s
        /// EVENT` lines, or `-` to read events from standard input while
        /// running (one per line, applied as they arrive).
        #[arg(long = "events", value_name = "FILE|-")]
        events_file: Option<String>,
        /// Packets between an event's immediate effect (a failed NVA or
        /// tunnel stops forwarding) and the reconverged tables; packets
        /// caught in between are dropped as `converging`.
        #[arg(long, default_value_t = 0, value_name = "PACKETS")]
        convergence_delay: usize,
        /// Worker threads [default: one per core].
        #[arg(long)]
        workers: Option<usize>,
        /// Frames per batch handed to a worker [default: 4,096 when only
        /// counting, 256 when writing traces or pcapng].
        #[arg(long)]
        batch: Option<usize>,
        /// Entries in each worker's flow cache (Azure VFP's unified flow
        /// table: a flow's first packet walks, the rest reuse its outcome
        /// until the tables change); 0 walks every packet. Runs that write
        /// traces or pcapng always walk.
        #[arg(long, default_value_t = crate::pipeline::flowcache::DEFAULT_ENTRIES, value_name = "ENTRIES")]
        flow_cache: usize,
        /// Live events (`--events -`): the least time between two table
        /// publications; events arriving meanwhile are applied together.
        #[arg(long, default_value_t = crate::pipeline::DEFAULT_COALESCE.as_secs_f64() * 1e3, value_name = "MS")]
        coalesce_ms: f64,
        /// The control-plane thread's scheduling while events arrive:
        /// `realtime` (SCHED_FIFO at the lowest priority, where allowed:
        /// an update reaches the workers without waiting for a time slice)
        /// or `normal`.
        #[arg(long, value_enum, default_value_t = crate::pipeline::ControlPriority::Realtime)]
        control_priority: crate::pipeline::ControlPriority,
        /// How flows are steered to workers: `adaptive` (the reader moves
        /// hash buckets from a worker that falls behind to one that runs
        /// dry; a flow stays on one worker until its bucket moves) or
        /// `fixed` (a flow never changes worker). The output is the same.
        #[arg(long, value_enum, default_value_t = crate::pipeline::Steering::Adaptive)]
        steering: crate::pipeline::Steering,
    },
    /// Writes reproducible traffic for a topology as a pcap: flows from NICs to
    /// destinations (default: from every non-NVA NIC to every VM, site host and
    /// the Internet test addresses).
    Gen {
        #[arg(long, short)]
        topology: String,
        #[arg(long)]
        out: std::path::PathBuf,
        /// Sending NIC or site (repeatable) [default: every NIC not owned by an NVA, and every site with hosts].
        #[arg(long)]
        from: Vec<String>,
        /// Destination (repeatable) [default: see above].
        #[arg(long)]
        dst: Vec<String>,
        /// Flows per (NIC, destination) pair.
        #[arg(long, default_value_t = 1)]
        flows: usize,
        #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp", "icmp"])]
        proto: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Every destination class from every sender: loops, black holes between
    /// declared endpoints, failed assertions (violations; exit status 1) and
    /// warnings (asymmetry, undeclared drops, control-plane).
    Verify {
        #[arg(long, short)]
        topology: String,
        #[arg(long)]
        json: bool,
        /// Write one packet per violation as a pcap that `replay` reproduces.
        #[arg(long, value_name = "OUT.pcap")]
        counterexamples: Option<std::path::PathBuf>,
        /// Also check under failures: each-nva, each-session, or NAME,NAME,...
        #[arg(long, value_name = "SPEC")]
        fail: Option<String>,
        /// Warnings fail the run too.
        #[arg(long)]
        strict: bool,
    },
    /// Compiled forwarding tables: NICs, subnets, distinct tables and bytes.
    Fib {
        #[arg(long, short)]
        topology: String,
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks: `bench lpm` (lookups against the treebitmap fork), or the
    /// forwarding pipeline with generated traffic through a topology.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        what: Option<BenchCommand>,
        #[command(flatten)]
        pipeline: crate::pipeline::bench::Args,
    },
    /// List the built-in topologies (one per scenario).
    Topologies,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// LPM lookups: our FIB (single and batch) against the treebitmap fork and
    /// prefix-trie, same process, same destinations, four tables.
    Lpm {
        #[arg(long)]
        json: bool,
        /// A short run (well under a minute) for smoke checks.
        #[arg(long)]
        quick: bool,
        /// The real global table (`prefix value` lines, plain or .xz).
        #[arg(long, value_name = "PATH")]
        table: Option<std::path::PathBuf>,
    },
}

/// `verify` found violations: print the report, exit 1.
#[derive(Debug)]
pub struct VerifyFailed(pub String);

impl std::fmt::Display for VerifyFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("verification failed")
    }
}

impl std::error::Error for VerifyFailed {}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(out: &str) {
    use std::io::Write;
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(out.as_bytes()).and_then(|_| so.flush());
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(out) => {
            emit(&out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Topology diagnostics already say `file:line:col: error: ...`.
            if let Some(VerifyFailed(out)) = e.downcast_ref::<VerifyFailed>() {
                emit(out);
                return ExitCode::FAILURE;
            }
            match e.downcast_ref::<topology::LoadError>() {
                Some(le) => eprintln!("{le}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn load(arg: &str) -> Result<Topology> {
    Ok(topology::load_path_or_builtin(arg)?)
}

fn warnings(t: &Topology) -> String {
    let mut s = String::new();
    for w in &t.warnings {
        let _ = writeln!(s, "{w}");
    }
    s
}

/// Runs a command and returns what it prints on success.
pub fn run(cli: Cli) -> Result<String> {
    match cli.command {
        None => show(&load(topology::DEFAULT_TOPOLOGY)?),
        Some(Command::Show { topology }) => show(&load(
            topology.as_deref().unwrap_or(topology::DEFAULT_TOPOLOGY),
        )?),
        Some(Command::Check { topology }) => {
            let t = load(&topology)?;
            let mut out = String::new();
            for w in &t.warnings {
                debug_assert_eq!(w.severity, Severity::Warning);
                let _ = writeln!(out, "{w}");
            }
            let _ = writeln!(out, "ok: {}: {}", t.file, summary(&t));
            Ok(out)
        }
        Some(Command::Routes {
            topology,
            nic,
            subnet,
            json,
            explain,
            events,
        }) => {
            let cp = control_plane(&load(&topology)?, &events)?;
            let t = &cp.topology;
            let sid = pick_subnet(t, nic.as_deref(), subnet.as_deref())?;
            let table = cp.subnet_table(sid);
            if json {
                Ok(routes_json(&table)? + "\n")
            } else {
                Ok(routes_text(t, &table, explain))
            }
        }
        Some(Command::NextHop {
            topology,
            nic,
            subnet,
            dst,
            json,
            events,
        }) => {
            let cp = control_plane(&load(&topology)?, &events)?;
            let t = &cp.topology;
            let sid = pick_subnet(t, nic.as_deref(), subnet.as_deref())?;
            let dst: IpAddr = dst
                .trim()
                .parse()
                .with_context(|| format!("--dst {dst:?} is not an IP address"))?;
            let table = cp.subnet_table(sid);
            let d = effective::lookup(&table, dst);
            if json {
                Ok(serde_json::to_string_pretty(&next_hop_json(t, &table, &d))? + "\n")
            } else {
                Ok(next_hop_text(t, &table, dst, &d))
            }
        }
        Some(Command::Bgp {
            topology,
            speaker,
            json,
            events,
        }) => {
            let cp = control_plane(&load(&topology)?, &events)?;
            let only = match &speaker {
                None => None,
                Some(n) => Some(Node::by_name(&cp.topology, n).ok_or_else(|| {
                    let names: Vec<String> = bgp::all_nodes(&cp.topology)
                        .iter()
                        .map(|n| n.name(&cp.topology))
                        .collect();
                    anyhow!(
                        "{}: no BGP speaker named `{n}` (speakers: {})",
                        cp.topology.file,
                        names.join(", ")
                    )
                })?),
            };
            if json {
                Ok(serde_json::to_string_pretty(&bgp_json(&cp, only))? + "\n")
            } else {
                Ok(bgp_text(&cp, only))
            }
        }
        Some(Command::Trace {
            topology,
            from,
            dst,
            src,
            proto,
            sport,
            dport,
            json,
            events,
        }) => {
            let cp = control_plane(&load(&topology)?, &events)?;
            let t = &cp.topology;
            let start = match (
                t.nic_by_name(&from),
                t.sites.iter().position(|s| s.name == from),
            ) {
                (Some(n), _) => crate::dataplane::Start::Nic(n),
                (None, Some(si)) => {
                    crate::dataplane::Start::Site(crate::topology::SiteId(si as u32))
                }
                (None, None) => {
                    let mut names: Vec<&str> = t.nics.iter().map(|n| n.name.as_str()).collect();
                    names.extend(t.sites.iter().map(|s| s.name.as_str()));
                    bail!(
                        "{}: no NIC or site named `{from}` (known: {})",
                        t.file,
                        names.join(", ")
                    );
                }
            };
            let dst: IpAddr = dst
                .trim()
                .parse()
                .with_context(|| format!("--dst {dst:?} is not an IP address"))?;
            let src: IpAddr = match src {
                Some(s) => s
                    .trim()
                    .parse()
                    .with_context(|| format!("--src {s:?} is not an IP address"))?,
                None => {
                    let own: Vec<IpAddr> = match start {
                        crate::dataplane::Start::Nic(n) => t.nic(n).ips.clone(),
                        crate::dataplane::Start::Site(si) => {
                            let s = &t.sites[si.idx()];
                            s.hosts.iter().copied().chain(s.cpe).collect()
                        }
                    };
                    own.into_iter()
                        .find(|ip| ip.is_ipv4() == dst.is_ipv4())
                        .ok_or_else(|| {
                            anyhow!(
                                "{from} has no {} address; give --src",
                                if dst.is_ipv4() { "IPv4" } else { "IPv6" }
                            )
                        })?
                }
            };
            if src.is_ipv4() != dst.is_ipv4() {
                bail!("--src {src} and --dst {dst} are of different address families");
            }
            let (p, sport, dport) = match proto.as_str() {
                "udp" => (crate::dataplane::PROTO_UDP, sport, dport),
                "icmp" => (crate::dataplane::PROTO_ICMP, 0, 0),
                _ => (crate::dataplane::PROTO_TCP, sport, dport),
            };
            let header = crate::dataplane::Header {
                src,
                dst,
                proto: p,
                sport,
                dport,
            };
            let world = crate::dataplane::World::new(&cp);
            let trace = world.walk_from(start, crate::dataplane::Packet::new(header));
            if json {
                Ok(serde_json::to_string_pretty(&trace_json(&trace))? + "\n")
            } else {
                Ok(trace_text(&from, &header, &trace))
            }
        }
        Some(Command::Replay {
            topology,
            pcap,
            out,
            traces,
            from,
            json,
            events,
            events_file,
            convergence_delay,
            workers,
            batch,
            flow_cache,
            coalesce_ms,
            control_priority,
            steering,
        }) => {
            if !(0.0..=60_000.0).contains(&coalesce_ms) {
                bail!("--coalesce-ms: {coalesce_ms} is not between 0 and 60000");
            }
            let base = load(&topology)?;
            let parsed = parse_events(&events)?;
            let cp =
                control::converge(&base, &parsed).map_err(|e| anyhow!("{}: {e}", base.file))?;
            let t = &cp.topology;
            let from = match from {
                Some(n) => Some(
                    t.nic_by_name(&n)
                        .ok_or_else(|| anyhow!("{}: no NIC named `{n}`", t.file))?,
                ),
                None => None,
            };
            let cap = crate::io::read_capture(&pcap).map_err(|e| anyhow!(e))?;
            let world =
                std::sync::Arc::new(crate::dataplane::World::from_arc(std::sync::Arc::new(cp)));
            let mut pcapng = match &out {
                Some(p) => Some(crate::io::PcapNgOut::create(p).map_err(|e| anyhow!(e))?),
                None => None,
            };
            let mut tr = match &traces {
                Some(p) => Some(std::io::BufWriter::new(
                    std::fs::File::create(p).with_context(|| format!("{}", p.display()))?,
                )),
                None => None,
            };
            let opts = crate::pipeline::Options {
                workers: workers.unwrap_or_else(crate::pipeline::default_workers),
                batch,
                from,
                convergence_delay,
                flow_cache,
                coalesce: std::time::Duration::from_secs_f64(coalesce_ms / 1e3),
                control_priority,
                steering,
                ..Default::default()
            };
            // The frames into their receive queues before standard input is
            // read: an event typed meanwhile would count that as latency.
            let queues = crate::pipeline::Queues::new(
                &cap.frames,
                &opts,
                events_file.as_deref() == Some("-"),
                pcapng.is_some() || tr.is_some(),
            )
            .map_err(|e| anyhow!(e))?;
            let (scheduled, live) = match events_file.as_deref() {
                None => (Vec::new(), None),
                Some("-") => (Vec::new(), Some(crate::pipeline::stdin_events())),
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| path.to_string())?;
                    let s = crate::pipeline::events::parse(&text, path).map_err(|e| anyhow!(e))?;
                    let ts: Vec<_> = cap.frames.iter().map(|f| f.timestamp).collect();
                    (crate::pipeline::events::resolve(&s, &ts), None)
                }
            };
            let run = crate::pipeline::Run {
                world: world.clone(),
                control: Some(crate::pipeline::Control {
                    base,
                    events: parsed,
                }),
                scheduled,
                live,
                stop: None,
                opts,
            };
            let report = crate::pipeline::run_queued(
                &queues,
                run,
                crate::pipeline::Outputs {
                    pcapng: pcapng.as_mut(),
                    traces: tr.as_mut(),
                },
            )
            .map_err(|e| anyhow!(e))?;
            let counters = &report.counters;
            if let Some(w) = pcapng {
                w.finish().map_err(|e| anyhow!(e))?;
            }
            if let Some(mut w) = tr {
                std::io::Write::flush(&mut w)?;
            }
            if json {
                let mut v = serde_json::to_value(counters)?;
                v["stopped"] = serde_json::json!(cap.stopped);
                v["workers"] = serde_json::json!(report.workers.len());
                v["versions"] = serde_json::to_value(&report.versions)?;
                v["control_scheduling"] = serde_json::json!(report.control_scheduling);
                v["steering"] = serde_json::json!({
                    "mode": report.reader.steering,
                    "bucket_moves": report.reader.moves,
                    "buckets": report.reader.buckets,
                });
                v["receive_queues"] = serde_json::json!({
                    "frames": report.reader.queued,
                    "ms": report.reader.ingest.as_secs_f64() * 1e3,
                });
                let (hits, walks) = report.flow_cache();
                v["flow_cache"] = serde_json::json!({ "hits": hits, "walks": walks });
                Ok(serde_json::to_string_pretty(&v)? + "\n")
            } else {
                let mut s = format!(
                    "{}: {} packets read\n  delivered {}\n",
                    pcap.display(),
                    counters.read,
                    counters.delivered
                );
                for (at, n) in &counters.delivered_at {
                    let _ = writeln!(s, "    {at}: {n}");
                }
                let _ = writeln!(s, "  dropped {}", counters.dropped);
                for (r, n) in &counters.drop_reasons {
                    let _ = writeln!(s, "    {r}: {n}");
                }
                let _ = writeln!(s, "  looped {}", counters.looped);
                let (hits, walks) = report.flow_cache();
                if hits + walks > 0 {
                    let _ = writeln!(
                        s,
                        "  flow cache: {hits} packets took their flow's cached outcome, {walks} walked"
                    );
                }
                if let (false, Some(c)) = (report.versions.is_empty(), &report.control_scheduling) {
                    let _ = writeln!(s, "  control plane scheduled {c}");
                }
                for v in &report.versions {
                    let from = v
                        .from_packet
                        .map(|i| format!("from packet {}", i + 1))
                        .unwrap_or_else(|| "live".into());
                    // Scheduled steps wait for their snapshot: their
                    // latency is the rebuild's; live ones' includes the
                    // debounce window.
                    let reached = v
                        .latency_ms
                        .map(|l| format!(", in every worker {l:.1} ms after it was due"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        s,
                        "  table version {} ({}, {from}): {}; {} of {} tables compiled in {:.1} ms{reached}",
                        v.version,
                        v.kind,
                        v.events
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        v.tables_compiled,
                        v.tables,
                        v.build_ms
                    );
                }
                if let Some(why) = &cap.stopped {
                    let _ = writeln!(s, "warning: reading stopped early: {why}");
                }
                Ok(s)
            }
        }
        Some(Command::Gen {
            topology,
            out,
            from,
            dst,
            flows,
            proto,
            seed,
        }) => {
            use crate::dataplane::traffic;
            let t = load(&topology)?;
            let from: Vec<crate::dataplane::Start> = if from.is_empty() {
                traffic::default_senders(&t)
            } else {
                from.iter()
                    .map(
                        |n| match (t.nic_by_name(n), t.sites.iter().position(|s| &s.name == n)) {
                            (Some(nic), _) => Ok(crate::dataplane::Start::Nic(nic)),
                            (None, Some(si)) => Ok(crate::dataplane::Start::Site(
                                crate::topology::SiteId(si as u32),
                            )),
                            (None, None) => Err(anyhow!("{}: no NIC or site named `{n}`", t.file)),
                        },
                    )
                    .collect::<Result<_>>()?
            };
            let dsts: Vec<IpAddr> = if dst.is_empty() {
                traffic::default_destinations(&t)
            } else {
                dst.iter()
                    .map(|d| {
                        d.trim()
                            .parse()
                            .with_context(|| format!("--dst {d:?} is not an IP address"))
                    })
                    .collect::<Result<_>>()?
            };
            let p = traffic::proto_number(&proto).ok_or_else(|| anyhow!("--proto {proto}"))?;
            let fl = traffic::flows(&t, &from, &dsts, flows, p, seed);
            let frames = traffic::frames(&t, &fl);
            traffic::write_pcap(&out, &frames).map_err(|e| anyhow!(e))?;
            Ok(format!("{}: {} packets\n", out.display(), frames.len()))
        }
        Some(Command::Verify {
            topology,
            json,
            counterexamples,
            fail,
            strict,
        }) => {
            let t = load(&topology)?;
            let failures = match &fail {
                Some(spec) => crate::verify::parse_failures(&t, spec).map_err(|e| anyhow!(e))?,
                None => Vec::new(),
            };
            let t0 = std::time::Instant::now();
            let report = crate::verify::verify(&t, &failures).map_err(|e| anyhow!(e))?;
            let secs = t0.elapsed().as_secs_f64();
            if let Some(path) = &counterexamples {
                let flows: Vec<crate::dataplane::traffic::Flow> = report
                    .violations()
                    .filter_map(|f| f.counterexample)
                    .map(|c| crate::dataplane::traffic::Flow {
                        from: c.from,
                        dst: c.header.dst,
                        proto: c.header.proto,
                        sport: c.header.sport,
                        dport: c.header.dport,
                    })
                    .collect();
                let frames = crate::dataplane::traffic::frames(&t, &flows);
                crate::dataplane::traffic::write_pcap(path, &frames).map_err(|e| anyhow!(e))?;
            }
            let violations = report.violations().count();
            let warnings = report.warnings().count();
            let out = if json {
                let v = serde_json::json!({
                    "classes": report.classes,
                    "senders": report.senders,
                    "walks": report.walks,
                    "seconds": secs,
                    "violations": report.violations().collect::<Vec<_>>(),
                    "warnings": report.warnings().collect::<Vec<_>>(),
                });
                serde_json::to_string_pretty(&v)? + "\n"
            } else {
                let mut s = format!(
                    "{}: {} destination classes × {} senders: {} walks in {:.2} s\n",
                    t.file, report.classes, report.senders, report.walks, secs
                );
                for (title, grade) in [
                    ("violations", crate::verify::Grade::Violation),
                    ("warnings", crate::verify::Grade::Warning),
                ] {
                    let list: Vec<_> = report
                        .findings
                        .iter()
                        .filter(|f| f.grade == grade)
                        .collect();
                    let _ = writeln!(s, "{} {title}", list.len());
                    for f in list {
                        let under = f
                            .failure
                            .as_ref()
                            .map(|x| format!(" [under: {x}]"))
                            .unwrap_or_default();
                        let what = if f.dst.is_empty() {
                            f.from.clone()
                        } else {
                            format!("{} → {}", f.from, f.dst)
                        };
                        let _ = writeln!(s, "  {} {what}{under}: {}", f.kind, f.detail);
                        if !f.path.is_empty() {
                            let _ = writeln!(s, "      path: {}", f.path.join(" → "));
                        }
                    }
                }
                s
            };
            if violations > 0 || (strict && warnings > 0) {
                return Err(anyhow::Error::new(VerifyFailed(out)));
            }
            Ok(out)
        }
        Some(Command::Fib { topology, json }) => {
            let cp = control_plane(&load(&topology)?, &[])?;
            let t0 = std::time::Instant::now();
            let set = crate::fib::FibSet::compile(&cp);
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            let t = &cp.topology;
            let routes: usize = {
                let mut seen = std::collections::HashSet::new();
                set.by_subnet
                    .iter()
                    .filter(|f| seen.insert(std::sync::Arc::as_ptr(f)))
                    .map(|f| f.len())
                    .sum()
            };
            if json {
                let v = serde_json::json!({
                    "nics": t.nics.len(),
                    "subnets": t.subnets.len(),
                    "distinctTables": set.distinct,
                    "routes": routes,
                    "bytes": set.bytes,
                    "compileMs": ms,
                });
                Ok(serde_json::to_string_pretty(&v)? + "\n")
            } else {
                Ok(format!(
                    "{}: {} NICs in {} subnets share {} distinct compiled tables ({} routes, {} bytes of tries), compiled in {:.1} ms\n",
                    t.file,
                    t.nics.len(),
                    t.subnets.len(),
                    set.distinct,
                    routes,
                    set.bytes,
                    ms
                ))
            }
        }
        Some(Command::Bench {
            what: None,
            pipeline,
        }) => crate::pipeline::bench::command(pipeline),
        Some(Command::Bench {
            what: Some(BenchCommand::Lpm { json, quick, table }),
            ..
        }) => {
            let opts = if quick {
                crate::fib::bench::Options::quick()
            } else {
                crate::fib::bench::Options::full()
            };
            let path = table.unwrap_or_else(crate::fib::tables::default_bgp_table);
            let report = crate::fib::bench::run(opts, &path);
            if json {
                Ok(serde_json::to_string_pretty(&report)? + "\n")
            } else {
                Ok(crate::fib::bench::text(&report))
            }
        }
        Some(Command::Topologies) => {
            let mut out = String::new();
            for (name, src) in topology::BUILTIN {
                let desc = src
                    .lines()
                    .find_map(|l| l.strip_prefix("description = "))
                    .map(|d| d.trim_matches('"').to_string())
                    .unwrap_or_default();
                let _ = writeln!(out, "{name:<38} {desc}");
            }
            Ok(out)
        }
    }
}

fn control_plane(t: &Topology, events: &[String]) -> Result<ControlPlane> {
    Ok(control::converge(t, &parse_events(events)?)?)
}

fn parse_events(events: &[String]) -> Result<Vec<Event>> {
    Ok(events
        .iter()
        .map(|e| Event::parse(e))
        .collect::<Result<_, _>>()?)
}

fn pick_subnet(t: &Topology, nic: Option<&str>, subnet: Option<&str>) -> Result<SubnetId> {
    if let Some(n) = nic {
        let id = t.nic_by_name(n).ok_or_else(|| {
            let names: Vec<&str> = t.nics.iter().map(|n| n.name.as_str()).collect();
            anyhow!(
                "{}: no NIC named `{n}` (NICs: {})",
                t.file,
                names.join(", ")
            )
        })?;
        return Ok(t.nic(id).subnet);
    }
    let path = subnet.ok_or_else(|| anyhow!("give --nic NAME or --subnet VNET/SUBNET"))?;
    t.subnet_by_path(path).ok_or_else(|| {
        let names: Vec<String> = (0..t.subnets.len())
            .map(|i| t.subnet_path(SubnetId(i as u32)))
            .collect();
        anyhow!(
            "{}: no subnet `{path}` (subnets: {})",
            t.file,
            names.join(", ")
        )
    })
}

fn summary(t: &Topology) -> String {
    format!(
        "{} vnets, {} subnets, {} nics, {} route tables, {} peerings, {} gateways, {} route servers, {} nvas, {} sites, {} warnings",
        t.vnets.len(),
        t.subnets.len(),
        t.nics.len(),
        t.route_tables.len(),
        t.peerings.len(),
        t.gateways.len(),
        t.route_servers.len(),
        t.nvas.len(),
        t.sites.len(),
        t.warnings.len()
    )
}

fn ips(v: &[IpAddr]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a route comes from, in words.
pub fn origin_text(t: &Topology, r: &Route) -> String {
    match &r.origin {
        Origin::VnetRange { vnet } => format!("address range of vnet {}", t.vnet(*vnet).name),
        Origin::Peering { peering } => {
            let p = &t.peerings[peering.idx()];
            format!(
                "range of peered vnet {} (peering {})",
                t.vnet(p.remote).name,
                p.name
            )
        }
        Origin::Injected {
            by,
            detail,
            transit,
            ..
        } => {
            let who = match by {
                effective::Injector::Gateway(g) => format!("gateway {}", t.gateway(*g).name),
                effective::Injector::RouteServer(r) => {
                    format!("route server {}", t.route_servers[r.idx()].name)
                }
            };
            match transit {
                Some(p) => format!(
                    "{detail}, via {who} (gateway transit over peering {})",
                    t.peerings[p.idx()].name
                ),
                None => format!("{detail}, via {who}"),
            }
        }
        Origin::Internet => "system default route".to_string(),
        Origin::Reserved => "reserved private range (R1)".to_string(),
        Origin::ExtraNone => "extra None route (options.extra_none_prefixes, R4)".to_string(),
        Origin::ServiceEndpoint { service } => format!("service endpoint {service}"),
        Origin::Udr { table, .. } => format!("route table {}", t.route_table(*table).name),
    }
}

fn routes_text(t: &Topology, table: &Table, explain: bool) -> String {
    let mut rows: Vec<Vec<String>> = vec![];
    let mut head = vec![
        "Source",
        "State",
        "Address Prefix",
        "Next Hop Type",
        "Next Hop IP",
    ];
    if explain {
        head.push("Origin");
    }
    for r in table.routes.iter() {
        let mut row = vec![
            r.source.as_str().to_string(),
            r.state.as_str().to_string(),
            r.prefix.to_string(),
            r.next_hop_type.as_str().to_string(),
            ips(&r.next_hop_ips),
        ];
        if explain {
            let mut o = origin_text(t, r);
            if let Some(why) = &r.invalid_because {
                o.push_str("; Invalid: ");
                o.push_str(why);
            }
            row.push(o);
        }
        rows.push(row);
    }
    table_text(&head, &rows)
}

/// az-style table: header, dashes, left-aligned columns, two spaces apart.
fn table_text(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let _ = write!(l, "{c:<width$}", width = w[i]);
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head.iter().map(|h| h.to_string()).collect(), &mut out);
    line(w.iter().map(|n| "-".repeat(*n)).collect(), &mut out);
    for r in rows {
        line(r.clone(), &mut out);
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRoute {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    source: &'static str,
    state: &'static str,
    address_prefix: Vec<String>,
    next_hop_type: &'static str,
    next_hop_ip_address: Vec<String>,
}

fn json_route(r: &Route) -> JsonRoute {
    JsonRoute {
        name: r.name.as_deref().map(str::to_string),
        source: r.source.as_str(),
        state: r.state.as_str(),
        address_prefix: vec![r.prefix.to_string()],
        next_hop_type: r.next_hop_type.as_str(),
        next_hop_ip_address: r.next_hop_ips.iter().map(ToString::to_string).collect(),
    }
}

/// The Azure REST shape of `effectiveRouteTable` (S18).
pub fn routes_json(table: &Table) -> Result<String> {
    #[derive(Serialize)]
    struct Out {
        value: Vec<JsonRoute>,
    }
    let out = Out {
        value: table.routes.iter().map(json_route).collect(),
    };
    Ok(serde_json::to_string_pretty(&out)?)
}

fn route_table_id(t: &Topology, r: &Route) -> String {
    match (&r.origin, r.source) {
        (Origin::Udr { table, .. }, _) => format!("routeTables/{}", t.route_table(*table).name),
        (_, Source::VirtualNetworkGateway) => "Gateway Route".to_string(),
        _ => "System Route".to_string(),
    }
}

fn verdict_text(table: &Table, v: &Verdict) -> (&'static str, String) {
    match v {
        Verdict::Selected => (
            "selected",
            "longest matching prefix among the active routes".to_string(),
        ),
        Verdict::LessSpecific { winner_len } => (
            "less-specific",
            format!("a longer prefix (/{winner_len}) matched (R14)"),
        ),
        Verdict::Invalid(why) => ("invalid", why.clone()),
        Verdict::IgnoredForSystemRoute { system } => {
            let s = &table.routes[*system];
            (
                "ignored",
                format!(
                    "the destination is inside system route {} → {}, which beats gateway routes of any length (R16)",
                    s.prefix,
                    s.next_hop_type.as_str()
                ),
            )
        }
    }
}

fn next_hop_json(t: &Topology, table: &Table, d: &Decision) -> serde_json::Value {
    let candidates: Vec<serde_json::Value> = d
        .candidates
        .iter()
        .map(|c| {
            let r = &table.routes[c.index];
            let (verdict, reason) = verdict_text(table, &c.verdict);
            serde_json::json!({
                "route": json_route(r),
                "origin": origin_text(t, r),
                "verdict": verdict,
                "reason": reason,
            })
        })
        .collect();
    if d.platform {
        return serde_json::json!({
            "nextHopType": "Platform",
            "nextHopIpAddress": "",
            "routeTableId": "",
            "reason": "platform address (168.63.129.16 / 169.254.169.254): routes cannot override it (R19)",
            "candidates": candidates,
        });
    }
    match d.selected {
        None => serde_json::json!({
            "nextHopType": "None",
            "nextHopIpAddress": "",
            "routeTableId": "",
            "reason": "no route matches this destination",
            "candidates": candidates,
        }),
        Some(i) => {
            let r = &table.routes[i];
            serde_json::json!({
                "nextHopType": r.next_hop_type.network_watcher_str(),
                "nextHopIpAddress": r.next_hop_ips.first().map(ToString::to_string).unwrap_or_default(),
                "nextHopIpAddresses": r.next_hop_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "routeTableId": route_table_id(t, r),
                "matchedRoute": json_route(r),
                "origin": origin_text(t, r),
                "candidates": candidates,
            })
        }
    }
}

fn next_hop_text(t: &Topology, table: &Table, dst: IpAddr, d: &Decision) -> String {
    let mut out = String::new();
    let who = t.subnet_path(table.subnet);
    if d.platform {
        let _ = writeln!(
            out,
            "{dst} is a platform address (R19): routes cannot override it; the host answers it directly."
        );
        return out;
    }
    match d.selected {
        None => {
            let _ = writeln!(out, "nextHopType       None");
            let _ = writeln!(
                out,
                "reason            no route in subnet {who}'s table matches {dst}: dropped"
            );
        }
        Some(i) => {
            let r = &table.routes[i];
            let _ = writeln!(
                out,
                "nextHopType       {}",
                r.next_hop_type.network_watcher_str()
            );
            let _ = writeln!(out, "nextHopIpAddress  {}", ips(&r.next_hop_ips));
            let _ = writeln!(out, "routeTableId      {}", route_table_id(t, r));
            let ecmp = if r.next_hop_ips.len() > 1 {
                " (ECMP: a flow hash picks one)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "matched route     {} {} {} → {} {}{ecmp}",
                r.source.as_str(),
                r.state.as_str(),
                r.prefix,
                r.next_hop_type.as_str(),
                ips(&r.next_hop_ips)
            );
            let _ = writeln!(out, "origin            {}", origin_text(t, r));
        }
    }
    let others: Vec<_> = d
        .candidates
        .iter()
        .filter(|c| c.verdict != Verdict::Selected)
        .collect();
    if !others.is_empty() {
        let _ = writeln!(out, "other routes containing {dst}:");
        for c in others {
            let r = &table.routes[c.index];
            let (v, why) = verdict_text(table, &c.verdict);
            let _ = writeln!(
                out,
                "  {} {} → {} {} ({v}: {why})",
                r.source.as_str(),
                r.prefix,
                r.next_hop_type.as_str(),
                ips(&r.next_hop_ips)
            );
        }
    }
    out
}

fn show(t: &Topology) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "topology {}", t.file);
    if let Some(d) = &t.description {
        let _ = writeln!(out, "  {d}");
    }
    let _ = writeln!(out, "  {}", summary(t));
    out.push_str(&warnings(t));
    let cp = control::converge(t, &[])?;
    for w in &cp.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for (i, s) in t.subnets.iter().enumerate() {
        let sid = SubnetId(i as u32);
        let nics: Vec<&str> = s.nics.iter().map(|&n| t.nic(n).name.as_str()).collect();
        if nics.is_empty() && !s.is_gateway_subnet() {
            continue;
        }
        let label = if nics.is_empty() {
            format!("subnet {}", t.subnet_path(sid))
        } else {
            format!("nic {} (subnet {})", nics.join(", "), t.subnet_path(sid))
        };
        let _ = writeln!(out, "\neffective routes of {label}");
        out.push_str(&routes_text(t, &cp.subnet_table(sid), false));
    }
    if t.file
        .ends_with(&format!("{}.toml", topology::DEFAULT_TOPOLOGY))
        && t.nic_by_name("spoke11-vm").is_some()
    {
        let nic = t
            .nic_by_name("spoke11-vm")
            .ok_or_else(|| anyhow!("spoke11-vm"))?;
        let table = cp.nic_table(nic);
        let _ = writeln!(out, "\nnext hops from spoke11-vm");
        for dst in ["192.168.1.10", "198.51.100.10", "10.1.3.4", "10.50.0.1"] {
            let ip: IpAddr = dst.parse()?;
            let d = effective::lookup(&table, ip);
            let line = match d.selected {
                Some(i) => {
                    let r = &table.routes[i];
                    format!(
                        "{} {} via {} {}",
                        r.next_hop_type.as_str(),
                        ips(&r.next_hop_ips),
                        r.prefix,
                        r.source.as_str()
                    )
                }
                None => "no route".to_string(),
            };
            let _ = writeln!(out, "  {dst:<15} → {line}");
        }
    }
    if t.nics.is_empty() {
        bail!("{}: the topology has no NICs", t.file);
    }
    // Generated traffic (every sender to every destination) through the hop machine.
    let world = std::sync::Arc::new(crate::dataplane::World::new(&cp));
    let senders = crate::dataplane::traffic::default_senders(t);
    let dsts = crate::dataplane::traffic::default_destinations(t);
    let flows =
        crate::dataplane::traffic::flows(t, &senders, &dsts, 1, crate::dataplane::PROTO_TCP, 1);
    let frames = crate::dataplane::traffic::frames(t, &flows);
    let mut traces: Vec<u8> = Vec::new();
    let c = crate::dataplane::replay::replay::<Vec<u8>, Vec<u8>>(
        &world,
        &frames,
        Default::default(),
        None,
        Some(&mut traces),
    )
    .map_err(|e| anyhow!(e))?;
    let _ = writeln!(
        out,
        "\ngenerated traffic: {} packets (every sender to every destination): {} delivered, {} dropped, {} looped",
        c.read, c.delivered, c.dropped, c.looped
    );
    for line in String::from_utf8_lossy(&traces).lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            let path: Vec<&str> = v["path"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
                .collect();
            let reason = v["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  #{:<3} {} at {}{reason}: {}",
                v["packet"],
                v["verdict"].as_str().unwrap_or("?"),
                v["at"].as_str().unwrap_or("?"),
                path.join(" → ")
            );
        }
    }
    Ok(out)
}

fn status_text(s: &Status) -> (&'static str, String) {
    match s {
        Status::Best => ("best", String::new()),
        Status::NotBest(why) => ("accepted", why.text()),
        Status::Rejected(r) => ("rejected", r.text()),
    }
}

fn as_path_text(p: &[u32]) -> String {
    if p.is_empty() {
        "(local)".to_string()
    } else {
        p.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn os_next_hop_text(
    t: &Topology,
    n: crate::topology::NvaId,
    nh: &crate::topology::OsNextHop,
) -> String {
    use crate::topology::OsNextHop;
    match nh {
        OsNextHop::Via(ip) => format!("via {ip}"),
        OsNextHop::Tunnel(i) => format!(
            "tunnel {}",
            t.nvas[n.idx()]
                .tunnels
                .get(*i)
                .map_or("?", |x| x.name.as_str())
        ),
        OsNextHop::Nic(nic) => format!("connected, nic {}", t.nic(*nic).name),
        OsNextHop::Blackhole => "blackhole".to_string(),
    }
}

fn os_source_text(cp: &ControlPlane, s: control::nva::OsSource) -> String {
    use control::nva::OsSource;
    match s {
        OsSource::Connected => "connected".into(),
        OsSource::Static => "static".into(),
        OsSource::Bgp { session, ibgp } => {
            let sess = &cp.bgp.sessions[session];
            let me = |n: Node| matches!(n, Node::Nva(_));
            let peer = if me(sess.a) && !me(sess.b) {
                sess.b
            } else {
                sess.a
            };
            format!(
                "{} from {}",
                if ibgp { "ibgp" } else { "bgp" },
                peer.name(&cp.topology)
            )
        }
    }
}

fn bgp_text(cp: &ControlPlane, only: Option<Node>) -> String {
    let t = &cp.topology;
    let mut out = String::new();
    for node in bgp::all_nodes(t) {
        if only.is_some_and(|o| o != node) {
            continue;
        }
        let down = if cp.conditions.down_speakers.contains(&node) {
            " — DOWN"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{} {} (AS {}){down}",
            node.kind(),
            node.name(t),
            node.asn(t)
        );
        for (si, s) in cp.bgp.sessions_of(node) {
            let peer = s.other(node);
            let state = match &s.state {
                SessionState::Up => "Up".to_string(),
                SessionState::Down(why) => format!("Down: {why}"),
            };
            let kind = if s.ibgp { "iBGP" } else { "eBGP" };
            let _ = writeln!(
                out,
                "  peer {} {} (AS {}), {kind}: {state}",
                peer.kind(),
                peer.name(t),
                peer.asn(t)
            );
            let got = cp.bgp.received.get(&(node, si));
            let mut rows: Vec<Vec<String>> = Vec::new();
            for r in got.into_iter().flat_map(|m| m.values()) {
                let (st, why) = status_text(&r.status);
                rows.push(vec![
                    r.path.prefix.to_string(),
                    as_path_text(&r.path.as_path),
                    r.path.next_hop.to_string(),
                    st.to_string(),
                    why,
                ]);
            }
            if !rows.is_empty() {
                let _ = writeln!(out, "    received:");
                for l in
                    table_text(&["Prefix", "AS path", "Next hop", "Status", "Why"], &rows).lines()
                {
                    let _ = writeln!(out, "      {l}");
                }
            }
            let sent = cp.bgp.advertised.get(&(node, si));
            let rows: Vec<Vec<String>> = sent
                .into_iter()
                .flatten()
                .map(|p| {
                    vec![
                        p.prefix.to_string(),
                        as_path_text(&p.as_path),
                        p.next_hop.to_string(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                let _ = writeln!(out, "    advertised:");
                for l in table_text(&["Prefix", "AS path", "Next hop"], &rows).lines() {
                    let _ = writeln!(out, "      {l}");
                }
            }
        }
        let injected: Vec<&effective::Injected> = cp
            .injections
            .by_vnet
            .values()
            .flatten()
            .filter(|i| match (i.by, node) {
                (effective::Injector::Gateway(g), Node::Gateway(h)) => g == h,
                (effective::Injector::RouteServer(r), Node::RouteServer(q)) => r == q,
                _ => false,
            })
            .collect();
        if !injected.is_empty() {
            let _ = writeln!(
                out,
                "  programs into NICs (before per-NIC rules R10, R15, R25):"
            );
            for i in injected {
                let _ = writeln!(
                    out,
                    "    {} → {} ({})",
                    i.prefix,
                    ips(&i.next_hop_ips),
                    i.detail
                );
            }
        }
        if let Node::Nva(n) = node {
            let tab = &cp.nva_tables[n.idx()];
            let rows: Vec<Vec<String>> = tab
                .entries
                .iter()
                .map(|e| {
                    vec![
                        e.prefix.to_string(),
                        os_source_text(cp, e.source),
                        os_next_hop_text(t, n, &e.next_hop),
                        if e.active {
                            "active".into()
                        } else {
                            "inactive".into()
                        },
                    ]
                })
                .collect();
            let _ = writeln!(out, "  operating-system routing table:");
            for l in table_text(&["Prefix", "Source", "Next hop", "State"], &rows).lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "converged in {} rounds{}",
        cp.bgp.rounds,
        if cp.bgp.converged {
            ""
        } else {
            " (NOT converged)"
        }
    );
    for w in &cp.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

fn bgp_json(cp: &ControlPlane, only: Option<Node>) -> serde_json::Value {
    let t = &cp.topology;
    let mut speakers = Vec::new();
    for node in bgp::all_nodes(t) {
        if only.is_some_and(|o| o != node) {
            continue;
        }
        let mut sessions = Vec::new();
        for (si, s) in cp.bgp.sessions_of(node) {
            let peer = s.other(node);
            let received: Vec<serde_json::Value> = cp
                .bgp
                .received
                .get(&(node, si))
                .into_iter()
                .flat_map(|m| m.values())
                .map(|r| {
                    let (st, why) = status_text(&r.status);
                    serde_json::json!({
                        "prefix": r.path.prefix.to_string(),
                        "asPath": &*r.path.as_path,
                        "nextHop": r.path.next_hop.to_string(),
                        "status": st,
                        "reason": why,
                        "noAdvertise": r.path.no_advertise,
                    })
                })
                .collect();
            let advertised: Vec<serde_json::Value> = cp
                .bgp
                .advertised
                .get(&(node, si))
                .into_iter()
                .flatten()
                .map(|p| serde_json::json!({"prefix": p.prefix.to_string(), "asPath": &*p.as_path, "nextHop": p.next_hop.to_string()}))
                .collect();
            let (state, reason) = match &s.state {
                SessionState::Up => ("up", String::new()),
                SessionState::Down(w) => ("down", w.clone()),
            };
            sessions.push(serde_json::json!({
                "peer": peer.name(t),
                "peerKind": peer.kind(),
                "peerAsn": peer.asn(t),
                "type": if s.ibgp { "ibgp" } else { "ebgp" },
                "state": state,
                "reason": reason,
                "received": received,
                "advertised": advertised,
            }));
        }
        let programmed: Vec<serde_json::Value> = cp
            .injections
            .by_vnet
            .values()
            .flatten()
            .filter(|i| match (i.by, node) {
                (effective::Injector::Gateway(g), Node::Gateway(h)) => g == h,
                (effective::Injector::RouteServer(r), Node::RouteServer(q)) => r == q,
                _ => false,
            })
            .map(|i| serde_json::json!({"prefix": i.prefix.to_string(), "nextHopIpAddress": i.next_hop_ips.iter().map(ToString::to_string).collect::<Vec<_>>(), "asPath": &*i.as_path, "detail": &*i.detail}))
            .collect();
        let mut v = serde_json::json!({
            "name": node.name(t),
            "kind": node.kind(),
            "asn": node.asn(t),
            "down": cp.conditions.down_speakers.contains(&node),
            "sessions": sessions,
            "programmed": programmed,
        });
        if let Node::Nva(n) = node {
            let os: Vec<serde_json::Value> = cp.nva_tables[n.idx()]
                .entries
                .iter()
                .map(|e| serde_json::json!({"prefix": e.prefix.to_string(), "source": os_source_text(cp, e.source), "nextHop": os_next_hop_text(t, n, &e.next_hop), "active": e.active}))
                .collect();
            v["osTable"] = serde_json::Value::Array(os);
        }
        speakers.push(v);
    }
    serde_json::json!({
        "speakers": speakers,
        "rounds": cp.bgp.rounds,
        "converged": cp.bgp.converged,
        "warnings": cp.warnings,
    })
}

fn trace_json(tr: &crate::dataplane::Trace) -> serde_json::Value {
    use crate::dataplane::Verdict;
    let mut v = serde_json::json!({
        "verdict": tr.verdict.kind(),
        "at": tr.verdict.at(),
        "hops": tr.hops,
    });
    match &tr.verdict {
        Verdict::Dropped { reason, .. } => v["reason"] = serde_json::json!(reason.code()),
        Verdict::Loop { cycle, route, .. } => {
            v["reason"] = serde_json::json!("loop");
            v["cycle"] = serde_json::json!(cycle);
            v["loopRoute"] = serde_json::json!(route);
        }
        Verdict::Delivered { .. } => v["reason"] = serde_json::Value::Null,
    }
    v
}

fn trace_text(from: &str, h: &crate::dataplane::Header, tr: &crate::dataplane::Trace) -> String {
    use crate::dataplane::Verdict;
    let mut out = String::new();
    let _ = writeln!(out, "{from}: {h}");
    for (i, hop) in tr.hops.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3}. {} ({}) [{} ttl {}]",
            i + 1,
            hop.node,
            hop.kind,
            hop.packet,
            hop.ttl
        );
        if let Some(r) = &hop.route {
            let ips = if r.next_hop_ips.is_empty() {
                String::new()
            } else {
                format!(" {}", r.next_hop_ips.join(", "))
            };
            let _ = writeln!(
                out,
                "       route: {} {} → {}{ips}",
                r.source, r.prefix, r.next_hop_type
            );
        }
        let _ = writeln!(out, "       {}", hop.decision);
        if let Some(e) = &hop.encap {
            let _ = writeln!(out, "       encap: {e}");
        }
        if let Some(d) = &hop.decap {
            let _ = writeln!(out, "       decap: {d}");
        }
    }
    match &tr.verdict {
        Verdict::Delivered { at } => {
            let _ = writeln!(out, "verdict: delivered at {at}");
        }
        Verdict::Dropped { at, reason } => {
            let _ = writeln!(out, "verdict: dropped at {at}: {}", reason.code());
        }
        Verdict::Loop { at, cycle, route } => {
            let _ = writeln!(out, "verdict: loop at {at}: {}", cycle.join(" → "));
            let _ = writeln!(out, "         the route that sends it back: {route}");
        }
    }
    out
}
