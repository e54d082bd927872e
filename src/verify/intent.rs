//! Intents (`[[assertion]]`): decided over every sender they name, every
//! destination class of their target and every ECMP / load-balancer branch;
//! the first breaking flow is the counterexample.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::*;

/// How a walk breaks an intent, if it does: the finding's kind and why.
fn judge(world: &World, a: &Assertion, o: Outcome, hops: &[Hop]) -> Option<(&'static str, String)> {
    let t = &world.cp.topology;
    let crossed = nvas_crossed(hops);
    if let Some(n) = a.not_via.iter().find(|n| crossed.contains(n)) {
        return Some(("not-via", format!("crosses nva {}", t.nvas[n.idx()].name)));
    }
    let names = |v: &[NvaId]| {
        v.iter()
            .map(|n| t.nvas[n.idx()].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (a.expect, o) {
        (Expect::Delivered, Outcome::Delivered(_)) => {
            let mut rest = a.via.iter().peekable();
            for n in &crossed {
                if rest.peek() == Some(&n) {
                    rest.next();
                }
            }
            match (rest.peek(), a.via.len()) {
                (None, _) => None,
                (Some(_), 1) => Some((
                    "waypoint",
                    format!("delivered without crossing nva {}", names(&a.via)),
                )),
                (Some(_), _) => Some((
                    "waypoint",
                    format!(
                        "delivered through [{}], not through [{}] in this order",
                        names(&crossed),
                        names(&a.via)
                    ),
                )),
            }
        }
        (Expect::Delivered, Outcome::Dropped(p, r)) => Some((
            "assertion",
            format!(
                "expected delivered, got dropped at {} ({})",
                world.place_name(p),
                r.code()
            ),
        )),
        (Expect::Delivered, Outcome::Loop { at, .. }) => Some((
            "assertion",
            format!("expected delivered, got loop at {}", world.name(at)),
        )),
        (Expect::Dropped, Outcome::Delivered(p)) => Some((
            "isolation",
            format!("expected dropped, delivered at {}", world.place_name(p)),
        )),
        (Expect::Dropped, _) => None,
    }
}

/// Where the answer to a delivered packet starts from.
fn answerer(o: Outcome) -> Option<Start> {
    match o {
        Outcome::Delivered(Place::At(At::NicIn(n))) => Some(Start::Nic(n)),
        Outcome::Delivered(Place::At(At::Site(s))) => Some(Start::Site(s)),
        _ => None,
    }
}

fn reversed(h: Header) -> Header {
    Header {
        src: h.dst,
        dst: h.src,
        proto: h.proto,
        sport: h.dport,
        dport: h.sport,
    }
}

impl Run<'_> {
    /// The senders an intent's `from` names, grouped.
    pub(super) fn intent_senders(&self, from: &Endpoint) -> Vec<Sender> {
        let t = self.t;
        let groups = &self.groups.members;
        let by_subnet = |keep: &dyn Fn(SubnetId) -> bool| -> Vec<Sender> {
            groups
                .iter()
                .filter(|m| keep(t.nic(m[0]).subnet))
                .map(|m| Sender::nics(t, format!("nic {}", t.nic(m[0]).name), m))
                .collect()
        };
        match from {
            Endpoint::Nic(n) => vec![Sender::nics(t, format!("nic {}", t.nic(*n).name), &[*n])],
            Endpoint::Subnet(s) => by_subnet(&|x| x == *s),
            Endpoint::Vnet(v) => by_subnet(&|x| t.subnet(x).vnet == *v),
            Endpoint::Site(s) => vec![site_sender(t, *s, None)],
            Endpoint::Prefix(p) => {
                let mut v: Vec<Sender> = groups
                    .iter()
                    .filter_map(|m| {
                        let inside: Vec<NicId> = m
                            .iter()
                            .copied()
                            .filter(|&n| t.nic(n).ips.iter().any(|ip| p.contains(ip)))
                            .collect();
                        let first = *inside.first()?;
                        let mut s = Sender::nics(t, format!("nic {}", t.nic(first).name), &inside);
                        // Send from the addresses inside the prefix.
                        for (_, ips) in &mut s.members {
                            ips.retain(|ip| p.contains(ip));
                        }
                        Some(s)
                    })
                    .collect();
                for (i, s) in t.sites.iter().enumerate() {
                    if s.prefixes.iter().any(|q| q.contains(p) || p.contains(q))
                        || s.hosts.iter().chain(s.cpe.iter()).any(|ip| p.contains(ip))
                    {
                        v.push(site_sender(t, SiteId(i as u32), Some(p)));
                    }
                }
                v
            }
            Endpoint::Internet => Vec::new(),
        }
    }

    /// The destination classes an intent's `to` stands for: a NIC's
    /// addresses; every class of a prefix; the owned addresses of a subnet,
    /// VNet or site (every class of it for an isolation); the Internet's
    /// test addresses.
    pub(super) fn intent_targets(&self, a: &Assertion) -> Vec<IpAddr> {
        let t = self.t;
        let isolation = a.expect == Expect::Dropped;
        let within = |nets: &[IpNet], owned_only: bool| -> Vec<IpAddr> {
            nets.iter()
                .flat_map(|n| self.classes.within(n, owned_only))
                .collect::<BTreeSet<IpAddr>>()
                .into_iter()
                .collect()
        };
        match &a.to {
            Endpoint::Nic(n) => t.nic(*n).ips.clone(),
            Endpoint::Prefix(p) if p.prefix_len() == p.max_prefix_len() => vec![p.addr()],
            Endpoint::Prefix(p) => within(&[*p], false),
            Endpoint::Subnet(s) => within(&t.subnet(*s).prefixes, !isolation),
            Endpoint::Vnet(v) => within(&t.vnet(*v).address_space, !isolation),
            Endpoint::Site(s) => {
                let site = &t.sites[s.idx()];
                let mut v: BTreeSet<IpAddr> = site.hosts.iter().copied().collect();
                if isolation || v.is_empty() {
                    v.extend(within(&site.prefixes, false));
                }
                v.into_iter().collect()
            }
            Endpoint::Internet => {
                let mut v = vec![INTERNET_V4.parse().expect("const")];
                if t.nics.iter().any(|n| n.ips.iter().any(IpAddr::is_ipv6)) {
                    v.push(INTERNET_V6.parse().expect("const"));
                }
                v
            }
        }
    }

    /// Decides assertion `k` in this run.
    pub(super) fn intent(&self, k: usize, a: &Assertion, report: &mut Report) {
        let world = self.world;
        let senders = self.intent_senders(&a.from);
        let targets = self.intent_targets(a);
        let proto = a.protocol.unwrap_or(PROTO_TCP);
        let (sport, dport) = match proto {
            PROTO_TCP | PROTO_UDP => (49152, a.ports.map_or(443, |p| p.0)),
            _ => (0, 0),
        };
        report.intents[k].senders = report.intents[k].senders.max(senders.len());
        let mut bb = BranchBuf::default();
        let mut pairs = 0usize;
        for s in &senders {
            for &dst in &targets {
                let Some((from, src)) = s.toward(dst) else {
                    continue;
                };
                pairs += 1;
                report.intents[k].classes += 1;
                let header = Header {
                    src,
                    dst,
                    proto,
                    sport,
                    dport,
                };
                let mut failed: Vec<(Vec<usize>, &'static str, String)> = Vec::new();
                let mut delivered: Vec<(Start, BTreeSet<NvaId>)> = Vec::new();
                let n = world.for_each_branch(
                    from,
                    &Packet::new(header),
                    &mut bb,
                    MAX_BRANCHES,
                    |wb, o| {
                        if let Some((kind, why)) = judge(world, a, o, &wb.hops) {
                            failed.push((wb.choices(), kind, why));
                        } else if let Some(back) = answerer(o).filter(|_| a.symmetric) {
                            delivered.push((back, nvas_crossed(&wb.hops).into_iter().collect()));
                        }
                    },
                );
                report.walks += n;
                report.intents[k].walks += n;
                // The first breaking branch a flow takes (hashes at two
                // decisions of one walk can agree, so some branches no flow
                // takes).
                for (choices, kind, why) in failed {
                    if let Some(header) = flow_taking(world, from, header, &choices) {
                        let tr = world.walk_opts(from, Packet::new(header), true);
                        self.fail(k, a, report, kind, &s.name, dst, &tr, why, from, header);
                        return;
                    }
                }
                if a.symmetric && self.asymmetric(k, a, report, &s.name, from, header, &delivered) {
                    return;
                }
            }
        }
        if pairs == 0 && self.failure.is_none() {
            report.intents[k].holds = false;
            report.findings.push(Finding {
                grade: Grade::Violation,
                kind: "vacuous",
                from: endpoint_name(self.t, &a.from),
                dst: endpoint_name(self.t, &a.to),
                path: Vec::new(),
                detail: format!(
                    "assertion {} (line {}): names no flow (nothing in `from` can send to \
                     anything in `to`), so it checks nothing",
                    a.name, a.loc.line
                ),
                failure: None,
                flow: None,
                route: None,
                intent: Some(k),
                counterexample: None,
            });
        }
    }

    /// `symmetric`: the way back crosses the same NVAs as the way out.
    /// When some branch out and some branch back differ (or a way back is
    /// not delivered), flows decide: the ECMP and load-balancer hashes of
    /// the two directions are not independent (with two next hops each way
    /// they always agree), so the pair counts only if a flow takes it. The
    /// first flow of 4,096 source ports that does is the counterexample;
    /// true if one did.
    #[allow(clippy::too_many_arguments)]
    fn asymmetric(
        &self,
        k: usize,
        a: &Assertion,
        report: &mut Report,
        name: &str,
        from: Start,
        header: Header,
        out: &[(Start, BTreeSet<NvaId>)],
    ) -> bool {
        let world = self.world;
        let mut starts: Vec<Start> = out.iter().map(|o| o.0).collect();
        starts.dedup();
        let mut bb = BranchBuf::default();
        let mut suspect = false;
        for &back_from in &starts {
            let n = world.for_each_branch(
                back_from,
                &Packet::new(reversed(header)),
                &mut bb,
                MAX_BRANCHES,
                |wb, o| {
                    let there: BTreeSet<NvaId> = nvas_crossed(&wb.hops).into_iter().collect();
                    suspect |=
                        !matches!(o, Outcome::Delivered(_)) || out.iter().any(|(_, s)| *s != there);
                },
            );
            report.walks += n;
            report.intents[k].walks += n;
        }
        if !suspect {
            return false;
        }
        // A flow whose two directions differ.
        let mut buf = WalkBuf::default();
        let mut walk = |start: Start, h: Header| {
            buf.packet = Packet::new(h);
            let o = world.forward(start, &mut buf);
            let set: BTreeSet<NvaId> = nvas_crossed(&buf.hops).into_iter().collect();
            (o, set)
        };
        let found = (0..4096u16)
            .map(|i| Header {
                sport: header.sport.wrapping_add(i),
                ..header
            })
            .find_map(|h| {
                let (o, there) = walk(from, h);
                let back_from = answerer(o)?;
                let (b, back) = walk(back_from, reversed(h));
                (!matches!(b, Outcome::Delivered(_)) || back != there)
                    .then_some((h, back_from, there, back, b))
            });
        report.walks += 2 * 4096;
        report.intents[k].walks += 2 * 4096;
        let Some((h, back_from, there, back, b)) = found else {
            return false;
        };
        let t = self.t;
        let names = |v: &BTreeSet<NvaId>| {
            v.iter()
                .map(|n| t.nvas[n.idx()].name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let why = if matches!(b, Outcome::Delivered(_)) {
            format!(
                "out through [{}], back through [{}]",
                names(&there),
                names(&back)
            )
        } else {
            format!("the answer is {} on its way back", b.kind())
        };
        let fwd = world.walk_from(from, Packet::new(h));
        let mut p = path(&fwd);
        p.push("— back —".to_string());
        p.extend(path(&world.walk_from(back_from, Packet::new(reversed(h)))));
        report.intents[k].holds = false;
        report.findings.push(Finding {
            grade: Grade::Violation,
            kind: "asymmetric",
            from: name.to_string(),
            dst: h.dst.to_string(),
            path: p,
            detail: format!("assertion {} (line {}): {why}", a.name, a.loc.line),
            failure: self.failure.clone(),
            flow: None,
            route: None,
            intent: Some(k),
            counterexample: Some(Counterexample { from, header: h }),
        });
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        k: usize,
        a: &Assertion,
        report: &mut Report,
        kind: &'static str,
        name: &str,
        dst: IpAddr,
        tr: &Trace,
        why: String,
        from: Start,
        header: Header,
    ) {
        report.intents[k].holds = false;
        report.findings.push(Finding {
            detail: format!("assertion {} (line {}): {why}", a.name, a.loc.line),
            intent: Some(k),
            counterexample: Some(Counterexample { from, header }),
            ..self.finding(kind, name, dst, tr)
        });
    }
}

/// A flow (the header with another source port, of the first 4,096) whose
/// own hash makes the multi-way `choices` of a branch, so that its packet
/// walks that branch; none when no such flow is found (the branch's
/// decisions disagree with how one hash decides them).
pub(super) fn flow_taking(
    world: &World,
    from: Start,
    header: Header,
    choices: &[usize],
) -> Option<Header> {
    let mut buf = WalkBuf::default();
    (0..4096u16)
        .map(|k| Header {
            sport: header.sport.wrapping_add(k),
            ..header
        })
        .find(|h| {
            buf.packet = Packet::new(*h);
            world.forward(from, &mut buf);
            buf.choices() == choices
        })
}

pub(super) fn endpoint_name(t: &Topology, e: &Endpoint) -> String {
    match e {
        Endpoint::Nic(n) => format!("nic {}", t.nic(*n).name),
        Endpoint::Subnet(s) => {
            let sub = t.subnet(*s);
            format!("subnet {}/{}", t.vnet(sub.vnet).name, sub.name)
        }
        Endpoint::Vnet(v) => format!("vnet {}", t.vnet(*v).name),
        Endpoint::Site(s) => format!("site {}", t.sites[s.idx()].name),
        Endpoint::Prefix(p) => p.to_string(),
        Endpoint::Internet => "internet".into(),
    }
}
