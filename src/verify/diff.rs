//! `diff`: two versions of a topology (two files, or one file and events)
//! compared as an engineer reviews a change: the effective routes that
//! appear, disappear or change (per subnet, for its NICs); per sender and
//! destination class, the verdicts and paths that change; the intents that
//! start (or stop) failing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use super::*;
use crate::io::azure::{EffectiveRoute, effective_routes};

/// One version: a topology and the events applied to it.
pub struct Version<'a> {
    pub topology: &'a Topology,
    pub events: &'a [Event],
}

/// An effective route as compared: state, next-hop type and addresses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RouteRow {
    pub state: &'static str,
    pub next_hop_type: &'static str,
    pub next_hop_ips: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RouteChange {
    /// `VNET/SUBNET`: every NIC of the subnet has these routes.
    pub subnet: String,
    /// The subnet's NICs (in the new version), by name.
    pub nics: Vec<String>,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    pub prefix: String,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<RouteRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<RouteRow>,
}

/// What a flow meets on one branch: its verdict and the nodes it crosses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Branch {
    pub verdict: String,
    pub path: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FlowChange {
    pub from: String,
    pub dst: String,
    /// `verdict` (delivered, dropped, looped or where) or `path` (the same
    /// verdicts through other nodes).
    pub change: &'static str,
    /// Every ECMP / load-balancer branch, before and after.
    pub old: Vec<Branch>,
    pub new: Vec<Branch>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IntentChange {
    pub name: String,
    pub line: u32,
    /// Whether it held before and after (absent: not in that version).
    pub old: Option<bool>,
    pub new: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Diff {
    pub routes: Vec<RouteChange>,
    pub flows: Vec<FlowChange>,
    pub intents: Vec<IntentChange>,
    /// Senders and subnets found in one version only.
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
    /// Sender × destination class pairs compared.
    pub pairs: usize,
}

impl Diff {
    /// Intents that held before and fail now (or are new and fail).
    pub fn intents_broken(&self) -> impl Iterator<Item = &IntentChange> {
        self.intents
            .iter()
            .filter(|i| i.new == Some(false) && i.old != Some(false))
    }
    pub fn verdicts_changed(&self) -> impl Iterator<Item = &FlowChange> {
        self.flows.iter().filter(|f| f.change == "verdict")
    }
}

fn subnet_name(t: &Topology, s: SubnetId) -> String {
    let sub = t.subnet(s);
    format!("{}/{}", t.vnet(sub.vnet).name, sub.name)
}

/// Each subnet's routes, keyed by (prefix, source).
fn routes(
    t: &Topology,
    cp: &ControlPlane,
) -> BTreeMap<String, BTreeMap<(String, &'static str), Vec<RouteRow>>> {
    let tables = cp.subnet_tables();
    let mut out = BTreeMap::new();
    for (i, table) in tables.iter().enumerate() {
        let mut rows: BTreeMap<(String, &'static str), Vec<RouteRow>> = BTreeMap::new();
        for r in effective_routes(table).value {
            let EffectiveRoute {
                source,
                state,
                address_prefix,
                next_hop_type,
                next_hop_ip_address,
                ..
            } = r;
            for p in address_prefix {
                rows.entry((p, source)).or_default().push(RouteRow {
                    state,
                    next_hop_type,
                    next_hop_ips: next_hop_ip_address.clone(),
                });
            }
        }
        for v in rows.values_mut() {
            v.sort();
        }
        out.insert(subnet_name(t, SubnetId(i as u32)), rows);
    }
    out
}

/// A sender by name (`nic X` or `site S`) in a version.
fn sender_in(t: &Topology, name: &str) -> Option<Sender> {
    if let Some(n) = name.strip_prefix("nic ") {
        return Some(Sender::nics(t, name.to_string(), &[t.nic_by_name(n)?]));
    }
    let s = name.strip_prefix("site ")?;
    let i = t.sites.iter().position(|x| x.name == s)?;
    Some(site_sender(t, SiteId(i as u32), None))
}

/// Every branch of a flow, as names, sorted.
fn branches(world: &World, from: Start, header: Header, bb: &mut BranchBuf) -> Vec<Branch> {
    let mut v = Vec::new();
    world.for_each_branch(from, &Packet::new(header), bb, MAX_BRANCHES, |wb, o| {
        let verdict = match o {
            Outcome::Delivered(p) => format!("delivered at {}", world.place_name(p)),
            Outcome::Dropped(p, r) => format!("dropped at {} ({})", world.place_name(p), r.code()),
            Outcome::Loop { at, .. } => format!("loop at {}", world.name(at)),
        };
        let mut path: Vec<String> = Vec::new();
        for h in &wb.hops {
            let n = world.name(h.at);
            if path.last().map(String::as_str) != Some(n) {
                path.push(n.to_string());
            }
        }
        v.push(Branch { verdict, path });
    });
    v.sort();
    v.dedup();
    v
}

/// Compares two versions.
pub fn diff(old: Version, new: Version) -> Result<Diff, VerifyError> {
    let (to, tn) = (old.topology, new.topology);
    let cpo = control::converge(to, old.events)?;
    let cpn = control::converge(tn, new.events)?;
    let mut d = Diff::default();

    // Effective routes, per subnet.
    let (ro, rn) = (routes(to, &cpo), routes(tn, &cpn));
    let nics_of: BTreeMap<String, Vec<String>> = {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in &tn.nics {
            m.entry(subnet_name(tn, n.subnet))
                .or_default()
                .push(n.name.clone());
        }
        m
    };
    for (subnet, new_rows) in &rn {
        let Some(old_rows) = ro.get(subnet) else {
            d.only_new.push(format!("subnet {subnet}"));
            continue;
        };
        let nics = nics_of.get(subnet).cloned().unwrap_or_default();
        let keys: BTreeSet<&(String, &'static str)> =
            old_rows.keys().chain(new_rows.keys()).collect();
        for key in keys {
            let (a, b) = (old_rows.get(key), new_rows.get(key));
            if a == b {
                continue;
            }
            let change = |change, old: Option<&RouteRow>, new: Option<&RouteRow>| RouteChange {
                subnet: subnet.clone(),
                nics: nics.clone(),
                change,
                prefix: key.0.clone(),
                source: key.1,
                old: old.cloned(),
                new: new.cloned(),
            };
            let (a, b) = (
                a.map_or(&[][..], Vec::as_slice),
                b.map_or(&[][..], Vec::as_slice),
            );
            if let ([x], [y]) = (a, b) {
                d.routes.push(change("changed", Some(x), Some(y)));
                continue;
            }
            for x in a.iter().filter(|x| !b.contains(x)) {
                d.routes.push(change("removed", Some(x), None));
            }
            for y in b.iter().filter(|y| !a.contains(y)) {
                d.routes.push(change("added", None, Some(y)));
            }
        }
    }
    d.only_old.extend(
        ro.keys()
            .filter(|s| !rn.contains_key(*s))
            .map(|s| format!("subnet {s}")),
    );

    // Flows: every sender of either version to every class of either.
    let (wo, wn) = (World::new(&cpo), World::new(&cpn));
    let (go, gn) = (classes::Groups::new(to), classes::Groups::new(tn));
    let mut dsts: BTreeSet<IpAddr> = classes::Classes::new(&cpo, &go).all().into_iter().collect();
    dsts.extend(classes::Classes::new(&cpn, &gn).all());
    dsts.insert(INTERNET_V4.parse().expect("const"));
    if dsts.iter().any(IpAddr::is_ipv6) {
        dsts.insert(INTERNET_V6.parse().expect("const"));
    }
    let names: BTreeSet<String> = senders(to, &go)
        .into_iter()
        .chain(senders(tn, &gn))
        .map(|s| s.name)
        .collect();
    let (mut bo, mut bn) = (BranchBuf::default(), BranchBuf::default());
    for name in names {
        let (Some(so), Some(sn)) = (sender_in(to, &name), sender_in(tn, &name)) else {
            if sender_in(to, &name).is_none() {
                d.only_new.push(name);
            } else {
                d.only_old.push(name);
            }
            continue;
        };
        for &dst in &dsts {
            let (Some((fo, src_o)), Some((fn_, src_n))) = (so.toward(dst), sn.toward(dst)) else {
                continue;
            };
            d.pairs += 1;
            let h = |src| Header {
                src,
                dst,
                proto: PROTO_TCP,
                sport: 49152,
                dport: 443,
            };
            let a = branches(&wo, fo, h(src_o), &mut bo);
            let b = branches(&wn, fn_, h(src_n), &mut bn);
            if a == b {
                continue;
            }
            let verdicts =
                |v: &[Branch]| v.iter().map(|x| x.verdict.clone()).collect::<BTreeSet<_>>();
            let change = if verdicts(&a) != verdicts(&b) {
                "verdict"
            } else {
                "path"
            };
            d.flows.push(FlowChange {
                from: name.clone(),
                dst: dst.to_string(),
                change,
                old: a,
                new: b,
            });
        }
    }

    // Intents, by name.
    let vo = verify_after(to, old.events, &[])?;
    let vn = verify_after(tn, new.events, &[])?;
    let held = |r: &Report, name: &str| r.intents.iter().find(|i| i.name == name).map(|i| i.holds);
    let mut seen = BTreeSet::new();
    for i in vn.intents.iter().chain(vo.intents.iter()) {
        if !seen.insert(i.name.clone()) {
            continue;
        }
        let (a, b) = (held(&vo, &i.name), held(&vn, &i.name));
        if a != b {
            d.intents.push(IntentChange {
                name: i.name.clone(),
                line: i.line,
                old: a,
                new: b,
            });
        }
    }
    Ok(d)
}
