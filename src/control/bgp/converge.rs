//! Convergence: the per-session-direction context computed once
//! ([`Ctx`]), each prefix class's own rounds (`converge_each`), and the
//! whole table in lockstep when a session route limit couples prefixes
//! (`converge_lockstep`).

use super::*;

/// One direction of an Up session — what `from` sends `to` on session `si` —
/// with everything the per-path decisions need computed once.
pub(super) struct Dir<'t> {
    pub(super) si: usize,
    pub(super) from: Node,
    pub(super) to: Node,
    pub(super) from_i: usize,
    pub(super) cfg_from: Option<&'t BgpSession>,
    pub(super) cfg_to: Option<&'t BgpSession>,
    pub(super) ibgp: bool,
    /// `from`'s originations on this session, sorted by prefix.
    pub(super) own: Vec<Path>,
    /// A gateway sender's static prefixes, sorted by prefix (stable).
    pub(super) statics: Vec<Path>,
    /// Route Server → gateway: the ranges it does not send (R25); gateway →
    /// site or edge: its VNet ranges (R36).
    pub(super) ranges: Vec<IpNet>,
    pub(super) self_v4: IpAddr,
    pub(super) self_v6: IpAddr,
    pub(super) from_asn: u32,
    pub(super) to_asn: u32,
    /// Receiver side: a gateway's own VNet prefixes (R37).
    pub(super) to_vnet_prefixes: Vec<IpNet>,
    /// Receiver side: routes accepted at most (R32, R37, R38).
    pub(super) limit: Option<usize>,
}

/// A topology's speakers and Up session directions ("slots"); a slot's index
/// is both what its sender advertised and what its receiver got.
pub(super) struct Ctx<'t> {
    pub(super) t: &'t Topology,
    pub(super) sessions: &'t [Session],
    pub(super) nodes: Vec<Node>,
    pub(super) dirs: Vec<Dir<'t>>,
    /// Per node: the slots it receives on, in session order.
    pub(super) inbox: Vec<Vec<usize>>,
    /// Per slot: the last AS path exported and what the sender made of it
    /// (the rewrite is a function of the path and the slot, and successive
    /// prefixes mostly carry the same path: one allocation per distinct
    /// path, not per prefix and round).
    pub(super) exported: Vec<RefCell<Option<Rewrite>>>,
    /// Scratch lists of best-path selection (reused: no allocation per
    /// speaker, prefix and round).
    pub(super) scratch: RefCell<(Vec<Cand>, Vec<Hop>)>,
}

/// A best path's next hop: (next hop, session, slot).
pub(super) type Hop = (IpAddr, usize, usize);

/// A candidate of best-path selection: (slot, session, key, next hop).
pub(super) type Cand = (usize, usize, super::decision::Rank, IpAddr);

/// An AS path as received and as exported.
pub(super) type Rewrite = (Arc<[u32]>, Arc<[u32]>);

impl<'t> Ctx<'t> {
    pub(super) fn new(t: &'t Topology, cond: &Conditions, sessions: &'t [Session]) -> Self {
        let nodes = all_nodes(t);
        let index = |n: Node| nodes.iter().position(|&x| x == n).unwrap_or(0);
        let mut dirs = Vec::new();
        let mut inbox = vec![Vec::new(); nodes.len()];
        for (si, s) in sessions.iter().enumerate() {
            if s.state != SessionState::Up {
                continue;
            }
            for (from, to) in [(s.a, s.b), (s.b, s.a)] {
                let cfg_from = s.cfg(t, from);
                let mut statics = match from {
                    Node::Gateway(g) => gateway_statics(t, cond, g),
                    _ => Vec::new(),
                };
                statics.sort_by_key(|p| p.prefix);
                let ranges = match (from, to) {
                    (Node::RouteServer(r), Node::Gateway(_)) => {
                        served_ranges(t, t.route_servers[r.idx()].vnet, false)
                    }
                    (
                        Node::Gateway(g),
                        Node::Site(_) | Node::Msee(_) | Node::Nva(_) | Node::Gateway(_),
                    ) => served_ranges(t, t.gateway(g).vnet, false),
                    _ => Vec::new(),
                };
                let limit = match (to, from) {
                    (Node::RouteServer(_), _) if !s.ibgp => {
                        Some(t.options.route_server_max_routes_per_peer)
                    }
                    (Node::Gateway(g), Node::Site(_) | Node::Nva(_) | Node::Gateway(_))
                        if t.gateway(g).kind == GatewayKind::Vpn =>
                    {
                        Some(t.options.vpn_gateway_max_prefixes)
                    }
                    (Node::Gateway(_), Node::Msee(_)) => Some(t.options.expressroute_max_prefixes),
                    (Node::Msee(_), Node::Gateway(_)) => {
                        Some(t.options.expressroute_max_vnet_prefixes)
                    }
                    _ => None,
                };
                inbox[index(to)].push(dirs.len());
                dirs.push(Dir {
                    si,
                    from,
                    to,
                    from_i: index(from),
                    cfg_from,
                    cfg_to: s.cfg(t, to),
                    ibgp: s.ibgp,
                    own: originations(t, cond, from, s),
                    statics,
                    ranges,
                    self_v4: self_address(t, from, cfg_from, s.instance, true),
                    self_v6: self_address(t, from, cfg_from, s.instance, false),
                    from_asn: from.asn(t),
                    to_asn: to.asn(t),
                    to_vnet_prefixes: match to {
                        Node::Gateway(g) => served_ranges(t, t.gateway(g).vnet, false),
                        _ => Vec::new(),
                    },
                    limit,
                });
            }
        }
        Ctx {
            t,
            sessions,
            nodes,
            exported: dirs.iter().map(|_| RefCell::new(None)).collect(),
            scratch: RefCell::default(),
            dirs,
            inbox,
        }
    }

    /// Every prefix a path can exist for: what some speaker originates on an
    /// Up session, and gateways' static prefixes.
    pub(super) fn prefixes(&self) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = self
            .dirs
            .iter()
            .flat_map(|d| d.own.iter().chain(&d.statics).map(|p| p.prefix))
            .collect();
        // Sorted runs (each direction's originations, its statics): the
        // stable sort merges runs instead of sorting from scratch.
        v.sort();
        v.dedup();
        v
    }
}

impl PrefixState {
    /// The same state for another prefix of the same class.
    pub(super) fn set_prefix(&mut self, prefix: IpNet) {
        let paths = self
            .rx
            .iter_mut()
            .flatten()
            .map(|r| &mut r.path)
            .chain(self.adv.iter_mut().flatten())
            .chain(self.best.iter_mut().flatten());
        for p in paths {
            p.prefix = prefix;
        }
    }
}

/// Each prefix converged on its own (one per [`Classes`] class); `None`
/// when a limited session passes its limit in some round (then only
/// lockstep rounds are faithful).
pub(super) fn converge_each(ctx: &Ctx, prefixes: &[IpNet]) -> Option<Converged> {
    let mut out = Converged::new(ctx);
    let classes = Classes::new(ctx, prefixes);
    let mut done: Vec<Option<PrefixState>> = Vec::with_capacity(classes.rep.len());
    let mut st = PrefixState::new(ctx);
    let mut next: Vec<Option<Received>> = vec![None; ctx.dirs.len()];
    let limited: Vec<usize> = (0..ctx.dirs.len())
        .filter(|&d| ctx.dirs[d].limit.is_some())
        .collect();
    // Per limited slot: accepted routes in each round, and from each round
    // on (prefixes that have converged keep their count).
    let mut in_round = vec![vec![0usize; limited.len()]; MAX_ROUNDS + 2];
    let mut from_round = vec![vec![0usize; limited.len()]; MAX_ROUNDS + 2];
    let mut changed = vec![true; ctx.dirs.len()];
    let mut moved = vec![false; ctx.nodes.len()];
    for (&rep, &size) in classes.rep.iter().zip(&classes.size) {
        let prefix = prefixes[rep];
        st.rx.iter_mut().for_each(|r| *r = None);
        let mut rounds = MAX_ROUNDS;
        let mut converged = false;
        for (round, counts) in in_round.iter_mut().enumerate().take(MAX_ROUNDS + 1).skip(1) {
            st.round_changed(
                ctx,
                prefix,
                &mut next,
                round == 1,
                (&mut changed, &mut moved),
            );
            for (c, &d) in counts.iter_mut().zip(&limited) {
                *c += size * usize::from(accepted(&next[d]));
            }
            let same = same_received(&st.rx, &next);
            std::mem::swap(&mut st.rx, &mut next);
            if same {
                rounds = round;
                converged = true;
                break;
            }
        }
        for (c, &d) in from_round[rounds + 1].iter_mut().zip(&limited) {
            *c += size * usize::from(accepted(&st.rx[d]));
        }
        out.rounds = out.rounds.max(rounds);
        out.converged &= converged;
        st.finish(ctx);
        done.push(Some(std::mem::replace(&mut st, PrefixState::new(ctx))));
    }
    for (k, &d) in limited.iter().enumerate() {
        let limit = ctx.dirs[d].limit.unwrap_or(usize::MAX);
        let mut carried = 0;
        for (now, from) in in_round.iter().zip(&from_round).take(out.rounds + 1) {
            carried += from[k];
            if now[k] + carried > limit {
                return None;
            }
        }
    }
    // Every prefix in order, from its class's state (the last member takes
    // it, the others copy it), into lists sized exactly beforehand.
    let mut rx = vec![0usize; ctx.dirs.len()];
    let mut adv = vec![0usize; ctx.dirs.len()];
    let mut best = vec![0usize; ctx.nodes.len()];
    for (st, &size) in done.iter().flatten().zip(&classes.size) {
        for (n, r) in rx.iter_mut().zip(&st.rx) {
            *n += size * usize::from(r.is_some());
        }
        for (n, p) in adv.iter_mut().zip(&st.adv) {
            *n += size * usize::from(p.is_some());
        }
        for (n, b) in best.iter_mut().zip(&st.best) {
            *n += size * usize::from(!b.is_empty());
        }
    }
    for (v, n) in out.rx.iter_mut().zip(rx) {
        v.reserve_exact(n);
    }
    for (v, n) in out.adv.iter_mut().zip(adv) {
        v.reserve_exact(n);
    }
    for (v, n) in out.best.iter_mut().zip(best) {
        v.reserve_exact(n);
    }
    let mut left = classes.size;
    for (&prefix, &c) in prefixes.iter().zip(&classes.of) {
        let c = c as usize;
        left[c] -= 1;
        if left[c] > 0
            && let Some(st) = &done[c]
        {
            out.push_copy(prefix, st);
            continue;
        }
        let mut st = done[c].take().unwrap_or_else(|| PrefixState::new(ctx));
        if prefix != prefixes[classes.rep[c]] {
            st.set_prefix(prefix);
        }
        out.push(prefix, &mut st);
    }
    Some(out)
}

/// The whole table in synchronous rounds, limits applied each round.
pub(super) fn converge_lockstep(ctx: &Ctx, prefixes: &[IpNet]) -> Converged {
    let mut states: Vec<PrefixState> = prefixes.iter().map(|_| PrefixState::new(ctx)).collect();
    let mut nexts: Vec<Vec<Option<Received>>> = prefixes
        .iter()
        .map(|_| vec![None; ctx.dirs.len()])
        .collect();
    let mut out = Converged::new(ctx);
    out.converged = false;
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        rounds += 1;
        for ((st, next), &prefix) in states.iter_mut().zip(&mut nexts).zip(prefixes) {
            st.round(ctx, prefix, next);
        }
        for (d, dir) in ctx.dirs.iter().enumerate() {
            let Some(limit) = dir.limit else { continue };
            let got = nexts.iter().filter(|n| accepted(&n[d])).count();
            if got > limit {
                for r in nexts.iter_mut().filter_map(|n| n[d].as_mut()) {
                    r.status = Status::Rejected(Reject::LimitExceeded {
                        limit,
                        received: got,
                    });
                }
            }
        }
        let same = states
            .iter()
            .zip(&nexts)
            .all(|(st, next)| same_received(&st.rx, next));
        for (st, next) in states.iter_mut().zip(&mut nexts) {
            std::mem::swap(&mut st.rx, next);
        }
        if same {
            out.converged = true;
            break;
        }
    }
    out.rounds = rounds;
    for (mut st, &prefix) in states.into_iter().zip(prefixes) {
        st.finish(ctx);
        out.push(prefix, &mut st);
    }
    out
}
