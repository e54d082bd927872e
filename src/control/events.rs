//! Control-plane events: failures, advertisements and route-table changes,
//! applied in order on top of a topology. Reconvergence is a pure function of
//! (topology, events so far): [`super::converge`] starts from scratch each time.
//!
//! Text form, one event per line (used by `--event` and events files):
//!
//! ```text
//! speaker-down NAME            speaker-up NAME
//! session-down A B             session-up A B
//! tunnel-down OWNER TUNNEL      tunnel-up OWNER TUNNEL
//! advertise SPEAKER PREFIX     withdraw SPEAKER PREFIX
//! udr-add TABLE ROUTE PREFIX NEXT_HOP_TYPE [NEXT_HOP_IP]
//! udr-remove TABLE ROUTE
//! vm-start VM                  vm-stop VM         vm-deallocate VM
//! probe-down LB NIC            probe-up LB NIC
//! instance-down NAME 0|1       instance-up NAME 0|1   (Route Server, active-active gateway)
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::topology::{GatewayId, LoadBalancerId, NicId, PowerState, RouteServerId};

use super::bgp::{Conditions, Node};
use crate::topology::{Topology, Udr, UdrNextHop};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    SpeakerDown(String),
    SpeakerUp(String),
    SessionDown(String, String),
    SessionUp(String, String),
    /// An overlay tunnel of an NVA or site (and its far end) goes down.
    TunnelDown(String, String),
    TunnelUp(String, String),
    Advertise {
        speaker: String,
        prefix: IpNet,
    },
    Withdraw {
        speaker: String,
        prefix: IpNet,
    },
    UdrAdd {
        table: String,
        route: String,
        prefix: IpNet,
        next_hop: UdrNextHop,
    },
    UdrRemove {
        table: String,
        route: String,
    },
    /// A load balancer's health probe finds a backend down or up again
    /// (`probe-down LB NIC`, `probe-up LB NIC`).
    Probe {
        lb: String,
        backend: String,
        up: bool,
    },
    /// A VM starts, stops or is deallocated (`vm-start`, `vm-stop`,
    /// `vm-deallocate`): every NIC of it.
    VmPower(String, PowerState),
    /// One instance of a Route Server (`RouteServiceRole_IN_0` or `_IN_1`)
    /// or of an active-active VPN gateway goes down or comes back
    /// (`instance-down NAME K`, `instance-up NAME K`).
    Instance {
        owner: String,
        instance: u8,
        up: bool,
    },
}

/// An event that cannot be parsed or applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventError {
    pub event: String,
    pub message: String,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event `{}`: {}", self.event, self.message)
    }
}

impl std::error::Error for EventError {}

impl Event {
    /// Events that change routes only (advertisements, UDRs), not what
    /// forwards or fails: their effect on forwarding is confined to the
    /// prefixes whose routes change.
    pub fn changes_routes_only(&self) -> bool {
        matches!(
            self,
            Event::Advertise { .. }
                | Event::Withdraw { .. }
                | Event::UdrAdd { .. }
                | Event::UdrRemove { .. }
        )
    }

    /// Parses the text form.
    pub fn parse(line: &str) -> Result<Event, EventError> {
        let err = |m: &str| EventError {
            event: line.trim().escape_debug().to_string(),
            message: m.to_string(),
        };
        if let Some(c) = line.chars().find(|&c| is_hidden(c)) {
            return Err(err(&format!(
                "control character U+{:04X} in the event",
                u32::from(c)
            )));
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let net = |s: &str| -> Result<IpNet, EventError> {
            let n: IpNet = s
                .parse()
                .map_err(|_| err(&format!("{s:?} is not a CIDR prefix")))?;
            if n.trunc() != n {
                return Err(err(&format!("{s} has host bits set")));
            }
            Ok(n)
        };
        Ok(match w.as_slice() {
            ["speaker-down", n] => Event::SpeakerDown(n.to_string()),
            ["speaker-up", n] => Event::SpeakerUp(n.to_string()),
            ["session-down", a, b] => Event::SessionDown(a.to_string(), b.to_string()),
            ["session-up", a, b] => Event::SessionUp(a.to_string(), b.to_string()),
            ["tunnel-down", a, b] => Event::TunnelDown(a.to_string(), b.to_string()),
            ["tunnel-up", a, b] => Event::TunnelUp(a.to_string(), b.to_string()),
            ["advertise", s, p] => Event::Advertise {
                speaker: s.to_string(),
                prefix: net(p)?,
            },
            ["withdraw", s, p] => Event::Withdraw {
                speaker: s.to_string(),
                prefix: net(p)?,
            },
            ["udr-add", table, route, prefix, ty, rest @ ..] => {
                let ip = match rest {
                    [] => None,
                    [ip] => Some(
                        ip.parse::<IpAddr>()
                            .map_err(|_| err(&format!("{ip:?} is not an IP address")))?,
                    ),
                    _ => return Err(err("too many words")),
                };
                let next_hop = match (ty.to_ascii_lowercase().as_str(), ip) {
                    ("virtualappliance", Some(ip)) => UdrNextHop::VirtualAppliance(ip),
                    ("virtualappliance", None) => {
                        return Err(err("VirtualAppliance needs a next hop IP"));
                    }
                    (_, Some(_)) => {
                        return Err(err(
                            "a next hop IP is only allowed with VirtualAppliance (R12)",
                        ));
                    }
                    ("virtualnetworkgateway", None) => UdrNextHop::VirtualNetworkGateway,
                    ("vnetlocal", None) => UdrNextHop::VnetLocal,
                    ("internet", None) => UdrNextHop::Internet,
                    ("none", None) => UdrNextHop::None,
                    _ => {
                        return Err(err(&format!(
                            "unknown or refused next hop type `{ty}` (R12)"
                        )));
                    }
                };
                Event::UdrAdd {
                    table: table.to_string(),
                    route: route.to_string(),
                    prefix: net(prefix)?,
                    next_hop,
                }
            }
            ["udr-remove", table, route] => Event::UdrRemove {
                table: table.to_string(),
                route: route.to_string(),
            },
            ["probe-down", lb, nic] | ["probe-up", lb, nic] => Event::Probe {
                lb: lb.to_string(),
                backend: nic.to_string(),
                up: w[0] == "probe-up",
            },
            ["vm-start", vm] => Event::VmPower(vm.to_string(), PowerState::Running),
            ["vm-stop", vm] => Event::VmPower(vm.to_string(), PowerState::Stopped),
            ["vm-deallocate", vm] => Event::VmPower(vm.to_string(), PowerState::Deallocated),
            ["instance-down", rs, k] | ["instance-up", rs, k] => Event::Instance {
                owner: rs.to_string(),
                instance: match k.trim_start_matches("IN_") {
                    "0" => 0,
                    "1" => 1,
                    _ => {
                        return Err(err(&format!(
                            "{k:?} is not a Route Server instance (0, 1, IN_0 or IN_1)"
                        )));
                    }
                },
                up: w[0] == "instance-up",
            },
            _ => {
                return Err(err(
                    "expected speaker-down|speaker-up NAME, session-down|session-up A B, tunnel-down|tunnel-up OWNER TUNNEL, advertise|withdraw SPEAKER PREFIX, udr-add TABLE ROUTE PREFIX TYPE [IP], udr-remove TABLE ROUTE, vm-start|vm-stop|vm-deallocate VM, probe-down|probe-up LB NIC, instance-down|instance-up NAME 0|1",
                ));
            }
        })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::SpeakerDown(n) => write!(f, "speaker-down {n}"),
            Event::SpeakerUp(n) => write!(f, "speaker-up {n}"),
            Event::SessionDown(a, b) => write!(f, "session-down {a} {b}"),
            Event::SessionUp(a, b) => write!(f, "session-up {a} {b}"),
            Event::TunnelDown(a, b) => write!(f, "tunnel-down {a} {b}"),
            Event::TunnelUp(a, b) => write!(f, "tunnel-up {a} {b}"),
            Event::Advertise { speaker, prefix } => write!(f, "advertise {speaker} {prefix}"),
            Event::Withdraw { speaker, prefix } => write!(f, "withdraw {speaker} {prefix}"),
            Event::UdrAdd {
                table,
                route,
                prefix,
                next_hop,
            } => {
                let (ty, ip) = match next_hop {
                    UdrNextHop::VirtualAppliance(ip) => ("VirtualAppliance", format!(" {ip}")),
                    UdrNextHop::VirtualNetworkGateway => ("VirtualNetworkGateway", String::new()),
                    UdrNextHop::None => ("None", String::new()),
                    UdrNextHop::VnetLocal => ("VnetLocal", String::new()),
                    UdrNextHop::Internet => ("Internet", String::new()),
                };
                write!(f, "udr-add {table} {route} {prefix} {ty}{ip}")
            }
            Event::UdrRemove { table, route } => write!(f, "udr-remove {table} {route}"),
            Event::Probe { lb, backend, up } => {
                let verb = if *up { "probe-up" } else { "probe-down" };
                write!(f, "{verb} {lb} {backend}")
            }
            Event::VmPower(vm, p) => {
                let verb = match p {
                    PowerState::Running => "vm-start",
                    PowerState::Stopped => "vm-stop",
                    PowerState::Deallocated => "vm-deallocate",
                };
                write!(f, "{verb} {vm}")
            }
            Event::Instance {
                owner,
                instance,
                up,
            } => {
                let verb = if *up { "instance-up" } else { "instance-down" };
                write!(f, "{verb} {owner} {instance}")
            }
        }
    }
}

/// Applies events in order: route-table changes edit a copy of the topology,
/// the rest become BGP [`Conditions`].
pub fn apply(t: &Topology, events: &[Event]) -> Result<(Topology, Conditions), EventError> {
    let mut topo = t.clone();
    let mut c = Conditions::default();
    apply_onto(&mut topo, &mut c, events)?;
    Ok((topo, c))
}

/// Applies more events on top of a state [`apply`] returned (the running
/// control plane keeps this state instead of a growing event list); stops
/// at the first event that does not apply (the ones before it stay
/// applied).
pub fn apply_onto(
    topo: &mut Topology,
    c: &mut Conditions,
    events: &[Event],
) -> Result<(), EventError> {
    let mut routes = RouteEvents::with_capacity(events.len());
    let mut udrs = UdrEdits::default();
    for e in events {
        if let Err(err) = apply_one(topo, c, e, (&mut routes, &mut udrs)) {
            routes.flush(c);
            udrs.flush(topo);
            return Err(err);
        }
    }
    routes.flush(c);
    udrs.flush(topo);
    Ok(())
}

/// Applies every event that applies, in order; the others (an unknown
/// name, a route that exists already, ...) are skipped and returned with
/// their index. What a live event stream needs: one bad line does not
/// cost the events around it.
pub fn apply_each(
    topo: &mut Topology,
    c: &mut Conditions,
    events: &[Event],
) -> Vec<(usize, EventError)> {
    let mut routes = RouteEvents::with_capacity(events.len());
    let mut udrs = UdrEdits::default();
    let mut errors = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if let Err(err) = apply_one(topo, c, e, (&mut routes, &mut udrs)) {
            errors.push((i, err));
        }
    }
    routes.flush(c);
    udrs.flush(topo);
    errors
}

/// A batch's advertise and withdraw events, the last one per (speaker,
/// prefix): only they touch the advertised and withdrawn sets, so they
/// commute with every other event, and a prefix that flips several times
/// in a batch costs one set update.
#[derive(Default)]
struct RouteEvents {
    /// ((speaker, prefix), advertised), in order of first arrival.
    events: Vec<((Node, IpNet), bool)>,
    /// Where each (speaker, prefix) is in `events`. Left empty while the
    /// events of a large batch come in (speaker, prefix) order, each after
    /// the one before (`ordered`): a table learned at once then fills no
    /// map of its whole size.
    at: rustc_hash::FxHashMap<(Node, IpNet), usize>,
    ordered: bool,
    /// The last speaker named and its node: a batch's route events mostly
    /// come from one speaker (a name lookup scans every speaker's name).
    last: Option<(String, Node)>,
}

impl RouteEvents {
    /// Room for `n` route events (a batch's events, at most).
    fn with_capacity(n: usize) -> RouteEvents {
        let ordered = n >= ORDERED_BATCH;
        RouteEvents {
            events: Vec::with_capacity(n),
            at: rustc_hash::FxHashMap::with_capacity_and_hasher(
                if ordered { 0 } else { n },
                Default::default(),
            ),
            ordered,
            last: None,
        }
    }

    /// The node of speaker `name` (`None`: no such speaker).
    fn speaker(&mut self, t: &Topology, name: &str) -> Option<Node> {
        if let Some((s, n)) = &self.last
            && s == name
        {
            return Some(*n);
        }
        let n = Node::by_name(t, name)?;
        self.last = Some((name.to_string(), n));
        Some(n)
    }

    fn set(&mut self, n: Node, prefix: IpNet, advertised: bool) {
        if self.ordered {
            if self.events.last().is_none_or(|e| e.0 < (n, prefix)) {
                self.events.push(((n, prefix), advertised));
                return;
            }
            // Out of order: the map from here on, with what came before.
            self.ordered = false;
            self.at.reserve(self.events.capacity());
            self.at
                .extend(self.events.iter().enumerate().map(|(i, e)| (e.0, i)));
        }
        let next = self.events.len();
        let i = *self.at.entry((n, prefix)).or_insert(next);
        if i == next {
            self.events.push(((n, prefix), advertised));
        } else {
            self.events[i].1 = advertised;
        }
    }

    fn flush(&mut self, c: &mut Conditions) {
        self.at.clear();
        self.ordered = false;
        let events = &mut self.events;
        // Speaker by speaker (a stable sort by speaker only: each (speaker,
        // prefix) is here once).
        if !events.is_sorted_by_key(|e| e.0.0) {
            events.sort_by_key(|e| e.0.0);
        }
        for group in events.chunk_by(|a, b| a.0.0 == b.0.0) {
            let n = group[0].0.0;
            let adv = c.advertised.entry(n).or_default();
            let wd = c.withdrawn.entry(n).or_default();
            if group.len() * MERGE_RATIO < adv.len() + wd.len() {
                // A few changes to large sets: one search each.
                for &((_, prefix), advertised) in group {
                    let (to, from) = if advertised {
                        (&mut *adv, &mut *wd)
                    } else {
                        (&mut *wd, &mut *adv)
                    };
                    from.remove(&prefix);
                    to.insert(prefix);
                }
            } else {
                // Many beside the sets (a table learned at once; churn
                // flipping a speaker's prefixes): both sets rebuilt, each
                // in one merge of sorted lists.
                let mut on: Vec<IpNet> = group.iter().filter(|e| e.1).map(|e| e.0.1).collect();
                let mut off: Vec<IpNet> = group.iter().filter(|e| !e.1).map(|e| e.0.1).collect();
                on.sort_unstable();
                off.sort_unstable();
                *adv = merged(adv, &off, &on);
                *wd = merged(wd, &on, &off);
            }
        }
        events.clear();
    }
}

/// From this many events a batch is taken to come in (speaker, prefix)
/// order until an event does not (see `RouteEvents::at`).
const ORDERED_BATCH: usize = 4096;

/// A speaker's changes are merged into its sets rather than searched one
/// by one from this many changes per member of the sets (a search costs
/// about log2 of the set's size in comparisons, a merge about one per
/// member).
const MERGE_RATIO: usize = 8;

/// The sorted set `old` without the members of `remove`, with those of
/// `add` (both sorted, each prefix once), in one pass.
fn merged(old: &BTreeSet<IpNet>, remove: &[IpNet], add: &[IpNet]) -> BTreeSet<IpNet> {
    let mut out: Vec<IpNet> = Vec::with_capacity(old.len() + add.len());
    let (mut r, mut a) = (0, 0);
    for &p in old {
        while r < remove.len() && remove[r] < p {
            r += 1;
        }
        if remove.get(r) == Some(&p) {
            continue;
        }
        while a < add.len() && add[a] < p {
            out.push(add[a]);
            a += 1;
        }
        if add.get(a) == Some(&p) {
            a += 1;
        }
        out.push(p);
    }
    out.extend_from_slice(&add[a..]);
    // In order and once each: the set is built in bulk.
    out.into_iter().collect()
}

/// A batch's route-table edits. Each table a batch touches is indexed
/// once, by route name and prefix, so that an add or remove costs a hash
/// lookup instead of a scan of the table's routes (a stream of UDR edits
/// to a table of a few hundred routes spent most of the control plane's
/// time comparing names); a removed route is marked and the table is
/// compacted once, when the batch is flushed. The result is the same as
/// applying the edits one by one: the surviving routes in their order,
/// the added ones after them in the order they came.
#[derive(Default)]
struct UdrEdits {
    tables: Vec<TableEdit>,
}

struct TableEdit {
    /// The table's index in the topology.
    table: usize,
    /// Live routes (not removed in this batch) by name: their position.
    by_name: rustc_hash::FxHashMap<String, usize>,
    /// Live routes per prefix.
    prefixes: rustc_hash::FxHashMap<IpNet, u32>,
    /// Per position: removed in this batch.
    dead: Vec<bool>,
    removed: usize,
}

impl UdrEdits {
    /// The route table named `name` and its index (built on first use).
    fn table<'t>(
        &mut self,
        topo: &'t mut Topology,
        name: &str,
    ) -> Option<(&'t mut crate::topology::RouteTable, &mut TableEdit)> {
        let k = match self
            .tables
            .iter()
            .position(|e| topo.route_tables[e.table].name == name)
        {
            Some(k) => k,
            None => {
                let table = topo.route_tables.iter().position(|r| r.name == name)?;
                let routes = &topo.route_tables[table].routes;
                let mut prefixes = rustc_hash::FxHashMap::default();
                for u in routes {
                    *prefixes.entry(u.prefix).or_default() += 1;
                }
                self.tables.push(TableEdit {
                    table,
                    // Names are unique in a table (validation refuses a
                    // duplicate; an add is refused if the name is taken).
                    by_name: routes
                        .iter()
                        .enumerate()
                        .map(|(i, u)| (u.name.clone(), i))
                        .collect(),
                    prefixes,
                    dead: vec![false; routes.len()],
                    removed: 0,
                });
                self.tables.len() - 1
            }
        };
        let e = &mut self.tables[k];
        Some((&mut topo.route_tables[e.table], e))
    }

    /// Drops the removed routes from their tables.
    fn flush(&mut self, topo: &mut Topology) {
        for e in self.tables.drain(..) {
            if e.removed > 0 {
                let mut dead = e.dead.iter();
                topo.route_tables[e.table]
                    .routes
                    .retain(|_| !dead.next().copied().unwrap_or(false));
            }
        }
    }
}

fn apply_one(
    topo: &mut Topology,
    c: &mut Conditions,
    e: &Event,
    (routes, udrs): (&mut RouteEvents, &mut UdrEdits),
) -> Result<(), EventError> {
    let t = &*topo;
    let err = |m: String| EventError {
        event: e.to_string(),
        message: m,
    };
    let node =
        |n: &str| Node::by_name(t, n).ok_or_else(|| err(format!("no BGP speaker named `{n}`")));
    match e {
        Event::Probe { lb, backend, up } => {
            let key = probe_target(t, lb, backend).map_err(err)?;
            if *up {
                c.down_backends.remove(&key);
            } else {
                c.down_backends.insert(key);
            }
        }
        Event::VmPower(vm, p) => {
            if !topo.nics.iter().any(|n| &n.vm == vm) {
                return Err(err(format!(
                    "no VM named `{vm}` (a NIC's `vm`, or its name)"
                )));
            }
            for n in topo.nics.iter_mut().filter(|n| &n.vm == vm) {
                n.power = *p;
            }
        }
        Event::Instance {
            owner,
            instance,
            up,
        } => {
            let key = (instance_owner(t, owner).map_err(err)?, *instance);
            if *up {
                c.down_instances.remove(&key);
            } else {
                c.down_instances.insert(key);
            }
        }
        Event::SpeakerDown(n) => {
            c.down_speakers.insert(node(n)?);
        }
        Event::SpeakerUp(n) => {
            c.down_speakers.remove(&node(n)?);
        }
        Event::SessionDown(a, b) => {
            c.down_sessions.insert((node(a)?, node(b)?));
        }
        Event::SessionUp(a, b) => {
            let (a, b) = (node(a)?, node(b)?);
            c.down_sessions.remove(&(a, b));
            c.down_sessions.remove(&(b, a));
        }
        Event::TunnelDown(owner, name) | Event::TunnelUp(owner, name) => {
            let owner = node(owner)?;
            let ends = tunnel_ends(t, owner, name)
                .ok_or_else(|| err(format!("{} has no tunnel named `{name}`", owner.name(t))))?;
            for end in ends {
                if matches!(e, Event::TunnelDown(..)) {
                    c.down_tunnels.insert(end);
                } else {
                    c.down_tunnels.remove(&end);
                }
            }
        }
        Event::Advertise { speaker, prefix } | Event::Withdraw { speaker, prefix } => {
            let n = match routes.speaker(t, speaker) {
                Some(n) => n,
                None => node(speaker)?,
            };
            routes.set(n, *prefix, matches!(e, Event::Advertise { .. }));
        }
        Event::UdrAdd {
            table,
            route,
            prefix,
            next_hop,
        } => {
            let (rt, edit) = udrs
                .table(topo, table)
                .ok_or_else(|| err(format!("no route table named `{table}`")))?;
            if edit.by_name.contains_key(route.as_str())
                || edit.prefixes.get(prefix).is_some_and(|&n| n > 0)
            {
                return Err(err(format!(
                    "route table {table} already has a route named {route} or for {prefix}"
                )));
            }
            edit.by_name.insert(route.clone(), rt.routes.len());
            *edit.prefixes.entry(*prefix).or_default() += 1;
            edit.dead.push(false);
            rt.routes.push(Udr {
                name: route.clone(),
                prefix: *prefix,
                next_hop: *next_hop,
                loc: Default::default(),
            });
        }
        Event::UdrRemove { table, route } => {
            let (rt, edit) = udrs
                .table(topo, table)
                .ok_or_else(|| err(format!("no route table named `{table}`")))?;
            let Some(i) = edit.by_name.remove(route.as_str()) else {
                return Err(err(format!(
                    "route table {table} has no route named {route}"
                )));
            };
            edit.dead[i] = true;
            edit.removed += 1;
            if let Some(n) = edit.prefixes.get_mut(&rt.routes[i].prefix) {
                *n -= 1;
            }
        }
    }
    Ok(())
}

/// A Route Server or active-active VPN gateway by name: what has
/// instances.
fn instance_owner(t: &Topology, name: &str) -> Result<Node, String> {
    if let Some(i) = t.route_servers.iter().position(|r| r.name == name) {
        return Ok(Node::RouteServer(RouteServerId(i as u32)));
    }
    match t.gateways.iter().position(|g| g.name == name) {
        Some(i) if t.gateways[i].active_active => Ok(Node::Gateway(GatewayId(i as u32))),
        Some(_) => Err(format!(
            "gateway {name} is not active-active: it has one instance"
        )),
        None => Err(format!(
            "no route server or active-active gateway named `{name}`"
        )),
    }
}

/// A load balancer and one of its backends, by name.
fn probe_target(t: &Topology, lb: &str, nic: &str) -> Result<(LoadBalancerId, NicId), String> {
    let l = t
        .load_balancers
        .iter()
        .position(|l| l.name == lb)
        .ok_or_else(|| format!("no load balancer named `{lb}`"))?;
    let n = t
        .nic_by_name(nic)
        .filter(|n| t.load_balancers[l].backends.contains(n))
        .ok_or_else(|| format!("load balancer {lb} has no backend nic named `{nic}`"))?;
    Ok((LoadBalancerId(l as u32), n))
}

/// Characters that do not show as themselves: control characters other
/// than whitespace, and the bidirectional controls that reorder what a
/// terminal shows (U+061C, U+200E–F, U+202A–E, U+2066–9).
pub fn is_hidden(c: char) -> bool {
    (c.is_control() && !c.is_whitespace())
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl Event {
    /// Whether the names the event refers to exist in `t` (speakers, route
    /// tables, tunnels): what can be known of an event before the run
    /// reaches it. A route an earlier event adds or removes is checked
    /// when the event applies.
    pub fn check(&self, t: &Topology) -> Result<(), EventError> {
        let err = |m: String| EventError {
            event: self.to_string(),
            message: m,
        };
        let node =
            |n: &str| Node::by_name(t, n).ok_or_else(|| err(format!("no BGP speaker named `{n}`")));
        let table = |n: &str| {
            t.route_tables
                .iter()
                .any(|r| r.name == n)
                .then_some(())
                .ok_or_else(|| err(format!("no route table named `{n}`")))
        };
        match self {
            Event::Probe { lb, backend, .. } => probe_target(t, lb, backend).map(drop).map_err(err),
            Event::VmPower(vm, _) => t
                .nics
                .iter()
                .any(|n| &n.vm == vm)
                .then_some(())
                .ok_or_else(|| err(format!("no VM named `{vm}` (a NIC's `vm`, or its name)"))),
            Event::Instance { owner, .. } => instance_owner(t, owner).map(drop).map_err(err),
            Event::SpeakerDown(n) | Event::SpeakerUp(n) => node(n).map(drop),
            Event::SessionDown(a, b) | Event::SessionUp(a, b) => node(a).and(node(b)).map(drop),
            Event::TunnelDown(owner, name) | Event::TunnelUp(owner, name) => {
                let owner = node(owner)?;
                tunnel_ends(t, owner, name)
                    .map(drop)
                    .ok_or_else(|| err(format!("{} has no tunnel named `{name}`", owner.name(t))))
            }
            Event::Advertise { speaker, .. } | Event::Withdraw { speaker, .. } => {
                node(speaker).map(drop)
            }
            Event::UdrAdd { table: n, .. } | Event::UdrRemove { table: n, .. } => table(n),
        }
    }
}

/// A tunnel of an NVA or site and its far end (the tunnel of another NVA or
/// site whose endpoints are the same, swapped), as (owner, index) pairs;
/// `None` when `owner` has no tunnel of that name.
pub fn tunnel_ends(t: &Topology, owner: Node, name: &str) -> Option<Vec<(Node, usize)>> {
    let own = super::bgp::tunnels_of(t, owner);
    let k = own.iter().position(|x| x.name == name)?;
    let (local, remote) = (own[k].local, own[k].remote);
    let mut ends = vec![(owner, k)];
    for n in super::bgp::all_nodes(t) {
        for (i, x) in super::bgp::tunnels_of(t, n).iter().enumerate() {
            if t.same_tunnel_end(x.local, remote) && t.same_tunnel_end(x.remote, local) {
                ends.push((n, i));
            }
        }
    }
    Some(ends)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for line in [
            "speaker-down nva1",
            "speaker-up nva1",
            "session-down nva1 rs-hub1",
            "session-up nva1 rs-hub1",
            "tunnel-down nva1 vx-nva2",
            "tunnel-up nva1 vx-nva2",
            "advertise nva1 10.50.0.0/16",
            "withdraw nva1 0.0.0.0/0",
            "udr-add rt-nva r1 0.0.0.0/0 Internet",
            "udr-add rt-nva r2 10.0.0.0/8 VirtualAppliance 10.1.2.4",
            "udr-remove rt-nva r1",
        ] {
            assert_eq!(Event::parse(line).unwrap().to_string(), line);
        }
        assert!(
            Event::parse("advertise nva1 10.50.0.1/16")
                .unwrap_err()
                .message
                .contains("host bits")
        );
        assert!(
            Event::parse("udr-add t r 0.0.0.0/0 VNetPeering")
                .unwrap_err()
                .message
                .contains("R12")
        );
        assert!(Event::parse("reboot everything").is_err());
    }

    /// UDR edits applied as one batch end as they do one by one: the same
    /// routes in the same order, the same edits refused (a name or prefix
    /// taken, a name not there, an unknown table), with names and prefixes
    /// reused within the batch after a removal.
    #[test]
    fn a_batch_of_udr_edits_ends_as_the_edits_one_by_one() {
        use proptest::prelude::*;
        let t = crate::topology::load_str(
            "generated:hub-spoke-2x1",
            &crate::topology::generate::hub_spoke(2, 1, 0),
        )
        .unwrap();
        let table = t.route_tables[0].name.clone();
        let existing = t.route_tables[0].routes[0].name.clone();
        let event = (0u8..4, 0usize..6, 0usize..4).prop_map(move |(kind, r, p)| {
            let route = if r == 5 {
                existing.clone()
            } else {
                format!("r{r}")
            };
            let prefix: IpNet = format!("100.127.{p}.0/24").parse().unwrap();
            match kind {
                0 | 1 => Event::UdrAdd {
                    table: table.clone(),
                    route,
                    prefix,
                    next_hop: UdrNextHop::None,
                },
                2 => Event::UdrRemove {
                    table: table.clone(),
                    route,
                },
                _ => Event::UdrRemove {
                    table: "no-such-table".into(),
                    route,
                },
            }
        });
        let shape = |t: &Topology| -> Vec<Vec<(String, IpNet)>> {
            t.route_tables
                .iter()
                .map(|rt| {
                    rt.routes
                        .iter()
                        .map(|u| (u.name.clone(), u.prefix))
                        .collect()
                })
                .collect()
        };
        proptest!(|(evs in proptest::collection::vec(event, 0..40))| {
            let (mut batch, mut bc) = (t.clone(), Conditions::default());
            let skipped: Vec<usize> = apply_each(&mut batch, &mut bc, &evs)
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            let (mut one, mut oc) = (t.clone(), Conditions::default());
            let mut refused = Vec::new();
            for (i, e) in evs.iter().enumerate() {
                if apply_onto(&mut one, &mut oc, std::slice::from_ref(e)).is_err() {
                    refused.push(i);
                }
            }
            // apply_onto stops at the first refused edit, the ones before
            // it applied.
            let n = refused.first().copied().unwrap_or(evs.len());
            prop_assert_eq!(skipped, refused);
            prop_assert_eq!(shape(&batch), shape(&one));
            let (mut upto, mut uc) = (t.clone(), Conditions::default());
            let stopped = apply_onto(&mut upto, &mut uc, &evs);
            prop_assert_eq!(stopped.is_err(), n < evs.len());
            let (mut prefix, mut pc) = (t.clone(), Conditions::default());
            apply_each(&mut prefix, &mut pc, &evs[..n]);
            prop_assert_eq!(shape(&upto), shape(&prefix));
        });
    }
}
