//! `verify`: every destination from every sender, through the same hop
//! machine the dataplane uses, with findings graded violations and warnings.
//!
//! 1. Destinations are split into equivalence classes at every prefix
//!    boundary of every table (NIC tables, NVA OS tables, gateways' sites,
//!    tunnel endpoints and owned addresses), so one representative address
//!    per class stands for all of it; the Internet test addresses are added.
//! 2. Senders are grouped: NICs of one subnet with the same forwarding setting
//!    behave alike, so one representative walks for the group; every site with
//!    hosts sends too.
//! 3. Findings. Violations: loops (cycle and route), drops between declared
//!    endpoints (NIC ↔ NIC, NIC ↔ site, NIC → Internet) unless an assertion
//!    expects them, failed assertions (reachability, waypoint, isolation) with
//!    a counterexample packet. Warnings: asymmetric paths through NVAs (R50),
//!    drops toward undeclared destinations, control-plane warnings.
//! 4. Failures re-run everything after BGP reconverges without an NVA, a
//!    session, or named speakers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::control::bgp::Node;
use crate::control::events::{Event, EventError};
use crate::control::{self, ControlPlane};
use crate::dataplane::{Header, PROTO_TCP, Packet, Start, Trace, Verdict, World};
use crate::topology::*;

/// The public test addresses standing for "the Internet" (SCENARIOS.md).
pub const INTERNET_V4: &str = "198.51.100.10";
pub const INTERNET_V6: &str = "2001:db8::10";
/// ECMP / load-balancer branches walked per (sender, destination) at most.
pub const MAX_BRANCHES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    Violation,
    Warning,
}

/// A concrete packet that shows a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counterexample {
    pub from: Start,
    pub header: Header,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub grade: Grade,
    /// `loop`, `black-hole`, `assertion`, `waypoint`, `isolation`,
    /// `asymmetric`, `undeclared-drop`, `control-plane`.
    pub kind: &'static str,
    pub from: String,
    pub dst: String,
    pub path: Vec<String>,
    pub detail: String,
    /// The failure under which it happens (`--fail`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The assertion it breaks (its index in the topology's), if any.
    #[serde(skip)]
    pub intent: Option<usize>,
    #[serde(skip)]
    pub counterexample: Option<Counterexample>,
}

/// One assertion's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Intent {
    pub name: String,
    /// Where it is declared.
    pub line: u32,
    pub holds: bool,
    /// Destination classes its target was decided over, and the walks
    /// (every ECMP and load-balancer branch of each), over every failure
    /// checked.
    pub classes: usize,
    pub walks: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub classes: usize,
    pub senders: usize,
    pub walks: usize,
    pub findings: Vec<Finding>,
    /// Every assertion, in the topology's order.
    pub intents: Vec<Intent>,
}

impl Report {
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.grade == Grade::Violation)
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.grade == Grade::Warning)
    }
}

/// A failure to check besides the intact topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub name: String,
    pub events: Vec<Event>,
}

/// Why `verify` could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("--fail: no BGP speaker named `{0}` (or use each-nva, each-session)")]
    UnknownSpeaker(String),
    #[error(transparent)]
    Event(#[from] EventError),
}

/// `each-nva`, `each-session`, or a comma-separated list of speaker names.
pub fn parse_failures(t: &Topology, spec: &str) -> Result<Vec<Failure>, VerifyError> {
    let cp = control::converge(t, &[])?;
    match spec {
        "each-nva" => Ok(t
            .nvas
            .iter()
            .map(|n| Failure {
                name: format!("nva {} down", n.name),
                events: vec![Event::SpeakerDown(n.name.clone())],
            })
            .collect()),
        "each-session" => Ok(cp
            .bgp
            .sessions
            .iter()
            .map(|s| {
                let (a, b) = (s.a.name(t), s.b.name(t));
                Failure {
                    name: format!("session {a}–{b} down"),
                    events: vec![Event::SessionDown(a, b)],
                }
            })
            .collect()),
        list => list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                if Node::by_name(t, n).is_none() {
                    return Err(VerifyError::UnknownSpeaker(n.to_string()));
                }
                Ok(Failure {
                    name: format!("{n} down"),
                    events: vec![Event::SpeakerDown(n.to_string())],
                })
            })
            .collect(),
    }
}

/// Destination classes: one representative address per range between
/// consecutive prefix boundaries of every table.
pub fn classes(cp: &ControlPlane) -> Vec<IpAddr> {
    let t = &cp.topology;
    let mut nets: Vec<IpNet> = Vec::new();
    for i in 0..t.subnets.len() {
        nets.extend(
            cp.subnet_table(SubnetId(i as u32))
                .routes
                .iter()
                .map(|r| r.prefix),
        );
    }
    for os in &cp.nva_tables {
        nets.extend(os.entries.iter().map(|e| e.prefix));
    }
    for s in &t.sites {
        nets.extend(s.prefixes.iter().copied());
        nets.extend(
            s.hosts
                .iter()
                .chain(s.cpe.iter())
                .map(|ip| IpNet::from(*ip)),
        );
        nets.extend(
            s.tunnels
                .iter()
                .flat_map(|k| [IpNet::from(k.local), IpNet::from(k.remote)]),
        );
    }
    for n in &t.nvas {
        nets.extend(
            n.tunnels
                .iter()
                .flat_map(|k| [IpNet::from(k.local), IpNet::from(k.remote)]),
        );
    }
    // Every address something owns is a class of its own: what a packet
    // to it meets (a VM, a gateway, a load balancer's backends, a Route
    // Server) differs from its neighbours'.
    for n in &t.nics {
        nets.extend(n.ips.iter().map(|ip| IpNet::from(*ip)));
    }
    for g in &t.gateways {
        nets.extend(g.ips.iter().map(|ip| IpNet::from(*ip)));
    }
    for l in &t.load_balancers {
        nets.push(IpNet::from(l.frontend_ip));
    }
    for r in &t.route_servers {
        nets.extend(r.ips.iter().map(|ip| IpNet::from(*ip)));
    }
    let mut b4: BTreeSet<u32> = BTreeSet::from([0]);
    let mut b6: BTreeSet<u128> = BTreeSet::from([0]);
    for n in nets {
        match n {
            IpNet::V4(v) => {
                b4.insert(u32::from(v.network()));
                if let Some(next) = u32::from(v.broadcast()).checked_add(1) {
                    b4.insert(next);
                }
            }
            IpNet::V6(v) => {
                b6.insert(u128::from(v.network()));
                if let Some(next) = u128::from(v.broadcast()).checked_add(1) {
                    b6.insert(next);
                }
            }
        }
    }
    // A class's representative: its first address, or the second when the
    // class is wider than two addresses (0.0.0.1 rather than 0.0.0.0).
    fn reps<T: Copy + Ord + std::ops::Add<Output = T> + std::ops::Sub<Output = T> + From<u8>>(
        b: &BTreeSet<T>,
        max: T,
    ) -> Vec<T> {
        let v: Vec<T> = b.iter().copied().collect();
        v.iter()
            .enumerate()
            .map(|(i, &start)| {
                let end = v.get(i + 1).copied().unwrap_or(max);
                if end - start > T::from(2) {
                    start + T::from(1)
                } else {
                    start
                }
            })
            .collect()
    }
    let has_v6 = t.nics.iter().any(|n| n.ips.iter().any(IpAddr::is_ipv6));
    let mut v: Vec<IpAddr> = reps(&b4, u32::MAX)
        .into_iter()
        .map(|a| IpAddr::V4(a.into()))
        .collect();
    if has_v6 {
        v.extend(
            reps(&b6, u128::MAX)
                .into_iter()
                .map(|a| IpAddr::V6(a.into())),
        );
    }
    v
}

/// One representative sender per group of NICs that behave alike, plus sites.
fn senders(t: &Topology) -> Vec<(Start, String)> {
    let nva_nic: BTreeSet<NicId> = t.nvas.iter().flat_map(|n| n.nics.iter().copied()).collect();
    let mut seen: BTreeSet<(SubnetId, bool, bool)> = BTreeSet::new();
    let mut v = Vec::new();
    for (i, n) in t.nics.iter().enumerate() {
        let id = NicId(i as u32);
        if seen.insert((n.subnet, n.ip_forwarding, nva_nic.contains(&id))) || nva_nic.contains(&id)
        {
            v.push((Start::Nic(id), format!("nic {}", n.name)));
        }
    }
    for (i, s) in t.sites.iter().enumerate() {
        if !s.hosts.is_empty() {
            v.push((Start::Site(SiteId(i as u32)), format!("site {}", s.name)));
        }
    }
    v
}

fn source_ip(t: &Topology, from: Start, v4: bool) -> Option<IpAddr> {
    match from {
        Start::Nic(n) => t.nic(n).ips.iter().copied().find(|ip| ip.is_ipv4() == v4),
        Start::Site(s) => t.sites[s.idx()]
            .hosts
            .iter()
            .chain(t.sites[s.idx()].cpe.iter())
            .copied()
            .find(|ip| ip.is_ipv4() == v4),
    }
}

fn path(tr: &Trace) -> Vec<String> {
    tr.hops
        .iter()
        .map(|h| format!("{} ({})", h.node, h.kind))
        .collect()
}

fn nvas_on(tr: &Trace) -> BTreeSet<String> {
    tr.hops
        .iter()
        .filter(|h| h.kind == "nva")
        .map(|h| h.node.clone())
        .collect()
}

/// What a destination address is, for grading drops.
#[derive(Clone, Copy)]
enum Declared {
    Nic(NicId),
    Site,
    Internet,
    Undeclared,
}

fn classify(t: &Topology, ip: IpAddr) -> Declared {
    if let Some(i) = t.nics.iter().position(|n| n.ips.contains(&ip)) {
        return Declared::Nic(NicId(i as u32));
    }
    if t.sites.iter().any(|s| s.hosts.contains(&ip)) {
        return Declared::Site;
    }
    if ip.to_string() == INTERNET_V4 || ip.to_string() == INTERNET_V6 {
        return Declared::Internet;
    }
    Declared::Undeclared
}

/// Verifies the topology intact and under each failure.
pub fn verify(t: &Topology, failures: &[Failure]) -> Result<Report, VerifyError> {
    let mut report = Report::default();
    let mut runs: Vec<(Option<String>, Vec<Event>)> = vec![(None, Vec::new())];
    runs.extend(
        failures
            .iter()
            .map(|f| (Some(f.name.clone()), f.events.clone())),
    );
    for (failure, events) in runs {
        let cp = control::converge(t, &events)?;
        check(&cp, failure, &mut report);
    }
    // The same problem under several failures: keep the intact one first.
    Ok(report)
}

fn check(cp: &ControlPlane, failure: Option<String>, report: &mut Report) {
    let t = &cp.topology;
    let world = World::new(cp);
    let mut dsts = classes(cp);
    dsts.push(INTERNET_V4.parse().expect("const"));
    if dsts.iter().any(IpAddr::is_ipv6) {
        dsts.push(INTERNET_V6.parse().expect("const"));
    }
    let senders = senders(t);
    if failure.is_none() {
        report.classes = dsts.len();
        report.senders = senders.len();
        for w in &cp.warnings {
            report.findings.push(Finding {
                grade: Grade::Warning,
                kind: "control-plane",
                from: String::new(),
                dst: String::new(),
                path: Vec::new(),
                detail: w.clone(),
                failure: None,
                intent: None,
                counterexample: None,
            });
        }
    }
    let expected_drops: BTreeSet<(String, IpAddr)> = t
        .assertions
        .iter()
        .filter(|a| a.expect == Expect::Dropped)
        .flat_map(|a| {
            assertion_classes(t, &a.to, &dsts)
                .into_iter()
                .map(move |ip| (endpoint_name(t, &a.from), ip))
        })
        .collect();
    // What each destination is, looked up once.
    let kinds: std::collections::HashMap<IpAddr, Declared> =
        dsts.iter().map(|&d| (d, classify(t, d))).collect();
    let declared = |ip: IpAddr| kinds.get(&ip).copied().unwrap_or(Declared::Undeclared);
    let mut loops: BTreeMap<(String, String), Finding> = BTreeMap::new();
    let mut undeclared: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut paths: BTreeMap<(String, IpAddr), (IpAddr, BTreeSet<String>)> = BTreeMap::new();
    for (from, name) in &senders {
        for &dst in &dsts {
            let Some(src) = source_ip(t, *from, dst.is_ipv4()) else {
                continue;
            };
            if src == dst {
                continue;
            }
            let header = Header {
                src,
                dst,
                proto: PROTO_TCP,
                sport: 49152,
                dport: 443,
            };
            // Every ECMP / load-balancer branch (R18), up to MAX_BRANCHES.
            let packet = Packet::new(header);
            let mut branches = world.walk_branches(*from, &packet, false, MAX_BRANCHES);
            if branches
                .iter()
                .any(|tr| matches!(tr.verdict, Verdict::Loop { .. }))
            {
                // Name the route that closes the loop.
                branches = world.walk_branches(*from, &packet, true, MAX_BRANCHES);
            }
            let ce = Some(Counterexample {
                from: *from,
                header,
            });
            for (b, tr) in branches.iter().enumerate() {
                report.walks += 1;
                match &tr.verdict {
                    Verdict::Loop { at, cycle, route } => {
                        loops
                            .entry((at.clone(), route.clone()))
                            .or_insert_with(|| Finding {
                                grade: Grade::Violation,
                                kind: "loop",
                                from: name.clone(),
                                dst: dst.to_string(),
                                path: path(tr),
                                detail: format!(
                                    "loop at {at}: {}; the route that sends it back: {route}",
                                    cycle.join(" → ")
                                ),
                                failure: failure.clone(),
                                intent: None,
                                counterexample: ce,
                            });
                    }
                    Verdict::Dropped { at, reason } => {
                        let decl = declared(dst);
                        let between = matches!(
                            (from, &decl),
                            (
                                Start::Nic(_),
                                Declared::Nic(_) | Declared::Site | Declared::Internet
                            ) | (Start::Site(_), Declared::Nic(_))
                        );
                        if between && !expected_drops.contains(&(name.clone(), dst)) {
                            report.findings.push(Finding {
                                grade: Grade::Violation,
                                kind: "black-hole",
                                from: name.clone(),
                                dst: dst.to_string(),
                                path: path(tr),
                                detail: format!("dropped at {at}: {}", reason.code()),
                                failure: failure.clone(),
                                intent: None,
                                counterexample: ce,
                            });
                        } else if !between {
                            *undeclared
                                .entry((name.clone(), reason.code().to_string()))
                                .or_default() += 1;
                        }
                    }
                    Verdict::Delivered { .. } => {
                        // R50 is about VMs talking through NVAs, not to them.
                        let vm = |n: NicId| !t.nvas.iter().any(|v| v.nics.contains(&n));
                        if let (Declared::Nic(d), Start::Nic(s)) = (declared(dst), from)
                            && vm(d)
                            && vm(*s)
                            && b == 0
                        {
                            paths.insert((name.clone(), dst), (src, nvas_on(tr)));
                        }
                    }
                }
            }
        }
    }
    report.findings.extend(loops.into_values());
    if failure.is_none() {
        for ((from, reason), n) in undeclared {
            report.findings.push(Finding {
                grade: Grade::Warning,
                kind: "undeclared-drop",
                from,
                dst: String::new(),
                path: Vec::new(),
                detail: format!("{n} destination classes nobody declared are dropped ({reason})"),
                failure: None,
                intent: None,
                counterexample: None,
            });
        }
        // R50: asymmetric paths through NVAs between NIC pairs.
        for ((from, dst), (src, there)) in &paths {
            let back_from = match declared(*dst) {
                Declared::Nic(n) => format!("nic {}", t.nic(n).name),
                _ => continue,
            };
            if let Some((_, back)) = paths.get(&(back_from.clone(), *src))
                && back != there
                && from < &back_from
            {
                report.findings.push(Finding {
                    grade: Grade::Warning,
                    kind: "asymmetric",
                    from: from.clone(),
                    dst: dst.to_string(),
                    path: Vec::new(),
                    detail: format!(
                        "through {:?} one way and {:?} back (R50: stateful NVAs need SNAT)",
                        there, back
                    ),
                    failure: None,
                    intent: None,
                    counterexample: None,
                });
            }
        }
    }
    // Assertions: every destination class the target holds, every ECMP
    // and load-balancer branch of each.
    let reps = &dsts;
    if report.intents.is_empty() {
        report.intents = t
            .assertions
            .iter()
            .map(|a| Intent {
                name: a.name.clone(),
                line: a.loc.line,
                holds: true,
                classes: 0,
                walks: 0,
            })
            .collect();
    }
    for (k, a) in t.assertions.iter().enumerate() {
        let from = match a.from {
            Endpoint::Nic(n) => Start::Nic(n),
            Endpoint::Site(s) => Start::Site(s),
            _ => continue,
        };
        for dst in assertion_classes(t, &a.to, reps) {
            let Some(src) = source_ip(t, from, dst.is_ipv4()) else {
                continue;
            };
            let header = Header {
                src,
                dst,
                proto: PROTO_TCP,
                sport: 49152,
                dport: 443,
            };
            let branches = world.walk_branches(from, &Packet::new(header), true, MAX_BRANCHES);
            report.walks += branches.len();
            report.intents[k].classes += 1;
            report.intents[k].walks += branches.len();
            let Some((tr, kind, detail)) = branches
                .into_iter()
                .find_map(|tr| assertion_fails(t, a, &tr).map(|(k, d)| (tr, k, d)))
            else {
                continue;
            };
            let header = flow_taking(&world, from, header, &tr);
            report.intents[k].holds = false;
            report.findings.push(Finding {
                grade: Grade::Violation,
                kind,
                from: endpoint_name(t, &a.from),
                dst: dst.to_string(),
                path: path(&tr),
                detail: format!("assertion {} (line {}): {detail}", a.name, a.loc.line),
                failure: failure.clone(),
                intent: Some(k),
                counterexample: Some(Counterexample { from, header }),
            });
            // The first counterexample of an assertion is enough.
            break;
        }
    }
}

/// How a walk breaks an assertion, if it does: the finding's kind and why.
fn assertion_fails(t: &Topology, a: &Assertion, tr: &Trace) -> Option<(&'static str, String)> {
    let delivered = matches!(tr.verdict, Verdict::Delivered { .. });
    match (a.expect, delivered) {
        (Expect::Delivered, false) => Some((
            "assertion",
            format!(
                "expected delivered, got {} at {}",
                tr.verdict.kind(),
                tr.verdict.at()
            ),
        )),
        (Expect::Dropped, true) => Some((
            "isolation",
            format!("expected dropped, delivered at {}", tr.verdict.at()),
        )),
        (Expect::Delivered, true) => a.via.and_then(|v| {
            let nva = format!("nva {}", t.nvas[v.idx()].name);
            (!tr.hops.iter().any(|h| h.node == nva))
                .then(|| ("waypoint", format!("delivered without crossing {nva}")))
        }),
        (Expect::Dropped, false) => None,
    }
}

/// A flow (the header with another source port) whose own hash takes the
/// branch `tr` walked, so that its packet replays to the same verdict; the
/// header as given when no port of the first thousand does.
fn flow_taking(world: &World, from: Start, header: Header, tr: &Trace) -> Header {
    let want = path(tr);
    (0..1024u16)
        .map(|k| Header {
            sport: header.sport.wrapping_add(k),
            ..header
        })
        .find(|h| {
            let t = world.walk_from(from, Packet::new(*h));
            t.verdict == tr.verdict && path(&t) == want
        })
        .unwrap_or(header)
}

fn endpoint_name(t: &Topology, e: &Endpoint) -> String {
    match e {
        Endpoint::Nic(n) => format!("nic {}", t.nic(*n).name),
        Endpoint::Site(s) => format!("site {}", t.sites[s.idx()].name),
        Endpoint::Prefix(p) => p.to_string(),
        Endpoint::Internet => "internet".into(),
    }
}

/// The destinations an assertion is decided over: for a prefix, its first
/// address and every destination class's representative inside it (the
/// class holding the first address may start before it); otherwise the
/// addresses [`assertion_targets`] gives.
fn assertion_classes(t: &Topology, e: &Endpoint, reps: &[IpAddr]) -> Vec<IpAddr> {
    match e {
        Endpoint::Prefix(p) => std::iter::once(p.network())
            .chain(reps.iter().copied().filter(|r| p.contains(r)))
            .collect::<BTreeSet<IpAddr>>()
            .into_iter()
            .collect(),
        _ => assertion_targets(t, e),
    }
}

/// The addresses an assertion's `to` stands for.
fn assertion_targets(t: &Topology, e: &Endpoint) -> Vec<IpAddr> {
    match e {
        Endpoint::Nic(n) => t.nic(*n).ips.clone(),
        Endpoint::Site(s) => {
            let site = &t.sites[s.idx()];
            let mut v = site.hosts.clone();
            if v.is_empty() {
                v.extend(site.prefixes.iter().map(|p| p.network()));
            }
            v
        }
        Endpoint::Prefix(p) => vec![p.network()],
        Endpoint::Internet => vec![INTERNET_V4.parse().expect("const")],
    }
}
