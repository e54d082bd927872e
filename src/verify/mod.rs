//! `verify`: every destination from every sender, through the same hop
//! machine the dataplane uses, with findings graded violations and warnings.
//!
//! 1. Destinations are split into equivalence classes at every prefix
//!    boundary of every table (NIC tables, NVA OS tables, sites, address
//!    spaces), then by the kind of owner of each address (a subnet's VMs,
//!    a gateway, a load balancer's frontend, nobody), so one representative
//!    address per class stands for all of it; the Internet test addresses
//!    are added (`classes.rs`).
//! 2. Senders are grouped: NICs of one subnet with the same forwarding setting
//!    behave alike, so one representative walks for the group; every site with
//!    hosts sends too.
//! 3. Findings. Violations: loops (cycle and route), drops between declared
//!    endpoints (NIC ↔ NIC, NIC ↔ site, NIC → Internet) unless an assertion
//!    expects them, failed intents (reachability, waypoints, isolation,
//!    symmetry) with a counterexample packet (`intent.rs`). Warnings:
//!    asymmetric paths through NVAs (R50), drops toward undeclared
//!    destinations, control-plane warnings (`check.rs`).
//! 4. Failures re-run everything after BGP reconverges without an NVA, a
//!    session, or named speakers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::control::bgp::Node;
use crate::control::events::{Event, EventError};
use crate::control::{self, ControlPlane};
use crate::dataplane::{
    At, BranchBuf, Header, Hop, Outcome, PROTO_TCP, PROTO_UDP, Packet, Place, Start, Trace,
    Verdict, WalkBuf, World,
};
use crate::topology::*;

mod check;
mod classes;
pub mod diff;
mod intent;

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
    /// The counterexample flow (5-tuple), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// The last route the path used (the one that decided its end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
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
    /// (Sender, destination class) pairs it was decided over, the sender
    /// groups it names, and the walks (every ECMP and load-balancer branch
    /// of each pair), over every failure checked.
    pub classes: usize,
    pub senders: usize,
    pub walks: usize,
    /// Its first violation (with its counterexample flow), when it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<Finding>,
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

/// A group of NICs (or a site) that sends alike, with up to two members:
/// the second stands in when the first is the destination itself.
#[derive(Clone, Debug)]
pub(crate) struct Sender {
    pub name: String,
    pub members: Vec<(Start, Vec<IpAddr>)>,
}

impl Sender {
    /// The NICs whose VMs run (a stopped VM sends nothing), two at most.
    fn nics(t: &Topology, name: String, nics: &[NicId]) -> Sender {
        Sender {
            name,
            members: nics
                .iter()
                .filter(|&&n| t.nic(n).power == PowerState::Running)
                .take(2)
                .map(|&n| (Start::Nic(n), t.nic(n).ips.clone()))
                .collect(),
        }
    }

    /// The member and source address that send to `dst` (not itself).
    pub fn toward(&self, dst: IpAddr) -> Option<(Start, IpAddr)> {
        self.members.iter().find_map(|(s, ips)| {
            let src = ips
                .iter()
                .copied()
                .find(|ip| ip.is_ipv4() == dst.is_ipv4())?;
            (src != dst && !ips.contains(&dst)).then_some((*s, src))
        })
    }
}

/// One sender per group of NICs that behave alike, plus every site with hosts.
fn senders(t: &Topology, groups: &classes::Groups) -> Vec<Sender> {
    let mut v: Vec<Sender> = groups
        .members
        .iter()
        .map(|m| Sender::nics(t, format!("nic {}", t.nic(m[0]).name), m))
        .collect();
    for (i, s) in t.sites.iter().enumerate() {
        if !s.hosts.is_empty() {
            v.push(site_sender(t, SiteId(i as u32), None));
        }
    }
    v
}

/// A site as a sender: from its hosts, else its VPN device, else an
/// address of its prefixes (inside `within` when given).
fn site_sender(t: &Topology, s: SiteId, within: Option<&IpNet>) -> Sender {
    let site = &t.sites[s.idx()];
    let inside = |ip: &IpAddr| within.is_none_or(|p| p.contains(ip));
    let mut ips: Vec<IpAddr> = site
        .hosts
        .iter()
        .chain(site.cpe.iter())
        .copied()
        .filter(inside)
        .collect();
    for q in &site.prefixes {
        let a = match within {
            Some(p) if p.contains(q) => q.network(),
            Some(p) if q.contains(p) => p.network(),
            Some(_) => continue,
            None => q.network(),
        };
        if !ips.iter().any(|ip| ip.is_ipv4() == a.is_ipv4()) {
            ips.push(a);
        }
    }
    Sender {
        name: format!("site {}", site.name),
        members: vec![(Start::Site(s), ips)],
    }
}

fn path(tr: &Trace) -> Vec<String> {
    tr.hops
        .iter()
        .map(|h| format!("{} ({})", h.node, h.kind))
        .collect()
}

/// The NVAs a walk crosses, in order.
fn nvas_crossed(hops: &[Hop]) -> Vec<NvaId> {
    let mut v: Vec<NvaId> = Vec::new();
    for h in hops {
        if let At::Nva(n) = h.at
            && v.last() != Some(&n)
        {
            v.push(n);
        }
    }
    v
}

/// What a destination address is, for grading drops.
#[derive(Clone, Copy)]
enum Declared {
    Nic(NicId),
    Site,
    Internet,
    Undeclared,
}

fn classify(world: &World, hosts: &BTreeSet<IpAddr>, ip: IpAddr) -> Declared {
    if let Some(n) = world.nic_for_source(ip) {
        // A VM that is not running is expected to be unreachable.
        return match world.cp.topology.nic(n).power {
            PowerState::Running => Declared::Nic(n),
            _ => Declared::Undeclared,
        };
    }
    if hosts.contains(&ip) {
        return Declared::Site;
    }
    if ip.to_string() == INTERNET_V4 || ip.to_string() == INTERNET_V6 {
        return Declared::Internet;
    }
    Declared::Undeclared
}

/// Verifies the topology intact and under each failure.
pub fn verify(t: &Topology, failures: &[Failure]) -> Result<Report, VerifyError> {
    verify_after(t, &[], failures)
}

/// Verifies the topology after `events` (a changed version of it), and
/// under each failure on top of them.
pub fn verify_after(
    t: &Topology,
    events: &[Event],
    failures: &[Failure],
) -> Result<Report, VerifyError> {
    let mut report = Report {
        intents: t
            .assertions
            .iter()
            .map(|a| Intent {
                name: a.name.clone(),
                line: a.loc.line,
                holds: true,
                classes: 0,
                senders: 0,
                walks: 0,
                violation: None,
            })
            .collect(),
        ..Report::default()
    };
    let mut runs: Vec<(Option<String>, Vec<Event>)> = vec![(None, events.to_vec())];
    runs.extend(failures.iter().map(|f| {
        let mut e = events.to_vec();
        e.extend(f.events.iter().cloned());
        (Some(f.name.clone()), e)
    }));
    let groups = classes::Groups::new(t);
    for (failure, events) in runs {
        let cp = control::converge(t, &events)?;
        let world = World::new(&cp);
        let classes = classes::Classes::new(&cp, &groups);
        let mut dsts = classes.all();
        dsts.push(INTERNET_V4.parse().expect("const"));
        if dsts.iter().any(IpAddr::is_ipv6) {
            dsts.push(INTERNET_V6.parse().expect("const"));
        }
        let run = Run {
            t,
            cp: &cp,
            world: &world,
            groups: &groups,
            classes: &classes,
            failure,
        };
        run.all_pairs(&dsts, &mut report);
        for (k, a) in t.assertions.iter().enumerate() {
            run.intent(k, a, &mut report);
        }
    }
    // Every finding's flow, as text.
    for f in &mut report.findings {
        f.flow = f.counterexample.map(|c| c.header.to_string());
    }
    for f in &report.findings {
        if let Some(k) = f.intent
            && report.intents[k].violation.is_none()
        {
            report.intents[k].violation = Some(f.clone());
        }
    }
    Ok(report)
}

/// One converged state under check.
struct Run<'a> {
    t: &'a Topology,
    cp: &'a ControlPlane,
    world: &'a World,
    groups: &'a classes::Groups,
    classes: &'a classes::Classes,
    failure: Option<String>,
}

impl Run<'_> {
    fn finding(&self, kind: &'static str, from: &str, dst: IpAddr, tr: &Trace) -> Finding {
        let route = tr
            .hops
            .iter()
            .rev()
            .find_map(|h| h.route.as_ref())
            .map(ToString::to_string);
        Finding {
            grade: Grade::Violation,
            kind,
            from: from.to_string(),
            dst: dst.to_string(),
            path: path(tr),
            detail: String::new(),
            flow: None,
            route,
            failure: self.failure.clone(),
            intent: None,
            counterexample: None,
        }
    }
}
