//! The checks every topology gets: every sender to every destination
//! class, every ECMP and load-balancer branch. Loops and drops between
//! declared endpoints are violations; drops toward undeclared
//! destinations and asymmetric NVA paths (R50) are warnings.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use super::intent::flow_taking;
use super::*;
use crate::dataplane::DropReason;

impl Run<'_> {
    pub(super) fn all_pairs(&self, dsts: &[IpAddr], report: &mut Report) {
        let t = self.t;
        let world = self.world;
        let senders = senders(t, self.groups);
        let intact = self.failure.is_none();
        if intact {
            report.classes = dsts.len();
            report.senders = senders.len();
            for w in &self.cp.warnings {
                report.findings.push(Finding {
                    grade: Grade::Warning,
                    kind: "control-plane",
                    from: String::new(),
                    dst: String::new(),
                    path: Vec::new(),
                    detail: w.clone(),
                    failure: None,
                    flow: None,
                    route: None,
                    intent: None,
                    counterexample: None,
                });
            }
        }
        let hosts: BTreeSet<IpAddr> = t
            .sites
            .iter()
            .flat_map(|s| s.hosts.iter().copied())
            .collect();
        let kinds: HashMap<IpAddr, Declared> = dsts
            .iter()
            .map(|&d| (d, classify(world, &hosts, d)))
            .collect();
        let declared = |ip: IpAddr| kinds.get(&ip).copied().unwrap_or(Declared::Undeclared);
        // Expected drops: (sender name, destination) pairs of isolations.
        let mut expected: BTreeSet<(String, IpAddr)> = BTreeSet::new();
        for a in t.assertions.iter().filter(|a| a.expect == Expect::Dropped) {
            let to = self.intent_targets(a);
            for s in self.intent_senders(&a.from) {
                expected.extend(to.iter().map(|&d| (s.name.clone(), d)));
            }
        }
        let is_vm = |n: NicId| self.world.nva_of(n).is_none();
        let mut loops: BTreeMap<(String, String), Finding> = BTreeMap::new();
        let mut loop_seen: BTreeSet<Vec<At>> = BTreeSet::new();
        let mut undeclared: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
        // R49: what the allow-forwarded-traffic check drops, per sender.
        let mut forwarded: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        // R50: (sender's group, destination) → the NVAs of its first branch.
        let mut paths: HashMap<(u32, IpAddr), Vec<NvaId>> = HashMap::new();
        let mut bb = BranchBuf::default();
        for s in &senders {
            for &dst in dsts {
                let Some((from, src)) = s.toward(dst) else {
                    continue;
                };
                let header = Header {
                    src,
                    dst,
                    proto: PROTO_TCP,
                    sport: 49152,
                    dport: 443,
                };
                let packet = Packet::new(header);
                let mut first = true;
                report.walks += world.for_each_branch(from, &packet, &mut bb, MAX_BRANCHES, |wb, o| {
                    let is_first = std::mem::replace(&mut first, false);
                    match o {
                        Outcome::Loop { first: start, .. } => {
                            // One explained walk per distinct cycle.
                            let cycle: Vec<At> = wb.hops[start.unwrap_or(0)..]
                                .iter()
                                .map(|h| h.at)
                                .collect();
                            if !loop_seen.insert(cycle) {
                                return;
                            }
                            let Some(header) = flow_taking(world, from, header, &wb.choices()) else {
                                return;
                            };
                            let tr = world.walk_opts(from, Packet::new(header), true);
                            if let Verdict::Loop { at, cycle, route } = &tr.verdict {
                                loops.entry((at.clone(), route.clone())).or_insert_with(|| Finding {
                                    detail: format!(
                                        "loop at {at}: {}; the route that sends it back: {route}",
                                        cycle.join(" → ")
                                    ),
                                    counterexample: Some(Counterexample { from, header }),
                                    ..self.finding("loop", &s.name, dst, &tr)
                                });
                            }
                        }
                        Outcome::Dropped(_, reason) => {
                            if reason == DropReason::PeeringForwardedNotAllowed {
                                forwarded.entry(s.name.clone()).or_default().push(dst);
                            }
                            let decl = declared(dst);
                            let between = matches!(
                                (from, &decl),
                                (
                                    Start::Nic(_),
                                    Declared::Nic(_) | Declared::Site | Declared::Internet
                                ) | (Start::Site(_), Declared::Nic(_))
                            );
                            if between && !expected.contains(&(s.name.clone(), dst)) {
                                let Some(header) = flow_taking(world, from, header, &wb.choices())
                                else {
                                    return;
                                };
                                let tr = world.walk_opts(from, Packet::new(header), true);
                                report.findings.push(Finding {
                                    detail: format!("dropped at {}: {}", tr.verdict.at(), reason.code()),
                                    counterexample: Some(Counterexample { from, header }),
                                    ..self.finding("black-hole", &s.name, dst, &tr)
                                });
                            } else if !between {
                                *undeclared.entry((s.name.clone(), reason.code())).or_default() += 1;
                            }
                        }
                        Outcome::Delivered(_) => {
                            // R50 is about VMs talking through NVAs, not to them.
                            if let (Declared::Nic(d), Start::Nic(n)) = (declared(dst), from)
                                && is_first
                                && is_vm(d)
                                && is_vm(n)
                            {
                                paths.insert((self.groups.of[n.idx()], dst), nvas_crossed(&wb.hops));
                            }
                        }
                    }
                });
            }
        }
        report.findings.extend(loops.into_values());
        if !intact {
            return;
        }
        // R49: sources disagree (the docs drop, a published lab delivered);
        // name the flows whose verdict depends on it.
        for (from, mut dsts) in forwarded {
            dsts.dedup();
            let shown: Vec<String> = dsts.iter().take(5).map(ToString::to_string).collect();
            report.findings.push(Finding {
                grade: Grade::Warning,
                kind: "forwarded-traffic",
                from,
                dst: String::new(),
                path: Vec::new(),
                detail: format!(
                    "{} destination classes ({}{}) are dropped only by the allow-forwarded-traffic \
                     check (R49): documented, but a published lab delivered such traffic \
                     (option enforce_allow_forwarded_traffic = false)",
                    dsts.len(),
                    shown.join(", "),
                    if dsts.len() > 5 { ", …" } else { "" }
                ),
                failure: None,
                flow: None,
                route: None,
                intent: None,
                counterexample: None,
            });
        }
        for ((from, reason), n) in undeclared {
            report.findings.push(Finding {
                grade: Grade::Warning,
                kind: "undeclared-drop",
                from,
                dst: String::new(),
                path: Vec::new(),
                detail: format!("{n} destination classes nobody declared are dropped ({reason})"),
                failure: None,
                flow: None,
                route: None,
                intent: None,
                counterexample: None,
            });
        }
        // R50: the way back, from the destination's group to the class
        // standing for the sender's group.
        let rep_of = |g: u32| -> Option<IpAddr> {
            let last = *self.groups.members[g as usize].last()?;
            t.nic(last).ips.first().copied()
        };
        let mut warned: BTreeSet<(u32, u32)> = BTreeSet::new();
        let mut keys: Vec<&(u32, IpAddr)> = paths.keys().collect();
        keys.sort();
        for &(g, dst) in keys {
            let Declared::Nic(d) = declared(dst) else {
                continue;
            };
            let h = self.groups.of[d.idx()];
            let (Some(back_dst), Some(there)) = (rep_of(g), paths.get(&(g, dst))) else {
                continue;
            };
            let Some(back) = paths.get(&(h, back_dst)) else {
                continue;
            };
            let set = |v: &Vec<NvaId>| v.iter().copied().collect::<BTreeSet<NvaId>>();
            if set(back) != set(there) && g != h && warned.insert((g.min(h), g.max(h))) {
                let names = |v: &Vec<NvaId>| {
                    v.iter()
                        .map(|n| t.nvas[n.idx()].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                report.findings.push(Finding {
                    grade: Grade::Warning,
                    kind: "asymmetric",
                    from: format!("nic {}", t.nic(self.groups.members[g as usize][0]).name),
                    dst: dst.to_string(),
                    path: Vec::new(),
                    detail: format!(
                        "through [{}] one way and [{}] back (R50: stateful NVAs need SNAT)",
                        names(there),
                        names(back)
                    ),
                    failure: None,
                    flow: None,
                    route: None,
                    intent: None,
                    counterexample: None,
                });
            }
        }
    }
}
