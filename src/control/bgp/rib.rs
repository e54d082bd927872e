//! What speakers hold: routes received per session and prefix ([`Rib`],
//! [`ByPrefix`]), one prefix's state through its rounds, and the
//! converged result gathered from every prefix.

use super::*;

/// What each receiver got on each session: `(receiver, session)` → prefix → path.
pub type Rib = BTreeMap<(Node, usize), ByPrefix<Received>>;

/// Entries keyed by prefix, in prefix order, one a prefix: a sorted list.
/// Convergence produces each table in prefix order already, so it becomes
/// one of these as it is, with no map built per table and version;
/// lookups are binary searches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByPrefix<V>(Vec<(IpNet, V)>);

impl<V> Default for ByPrefix<V> {
    fn default() -> Self {
        ByPrefix(Vec::new())
    }
}

impl<V> ByPrefix<V> {
    /// From `(prefix, value)` pairs; pairs out of order are sorted and, as
    /// a map's `collect` does, the last of equal prefixes kept.
    pub fn from_pairs(mut v: Vec<(IpNet, V)>) -> Self {
        if !v.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable: equal prefixes keep their order, and the last stays.
            v.sort_by_key(|e| e.0);
            v.reverse();
            v.dedup_by(|a, b| a.0 == b.0);
            v.reverse();
        }
        ByPrefix(v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&IpNet, &V)> + '_ {
        self.0.iter().map(|(p, v)| (p, v))
    }

    /// The `k`-th entry in prefix order.
    pub fn nth(&self, k: usize) -> Option<(&IpNet, &V)> {
        self.0.get(k).map(|(p, v)| (p, v))
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        let i = self.0.binary_search_by(|(p, _)| p.cmp(prefix)).ok()?;
        Some(&self.0[i].1)
    }

    /// Sets `prefix`'s value, in its place; the value it replaces.
    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        match self.0.binary_search_by(|(p, _)| p.cmp(&prefix)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (prefix, value));
                None
            }
        }
    }
}

/// One prefix's state: per slot, what was received and what was sent; per
/// node, the best paths.
#[derive(Clone)]
pub(super) struct PrefixState {
    pub(super) rx: Vec<Option<Received>>,
    pub(super) adv: Vec<Option<Path>>,
    pub(super) best: Vec<Vec<Path>>,
}

impl PrefixState {
    pub(super) fn new(ctx: &Ctx) -> Self {
        PrefixState {
            rx: vec![None; ctx.dirs.len()],
            adv: vec![None; ctx.dirs.len()],
            best: vec![Vec::new(); ctx.nodes.len()],
        }
    }

    /// One round: select on what was received, export, import into `next`.
    pub(super) fn round(&mut self, ctx: &Ctx, prefix: IpNet, next: &mut [Option<Received>]) {
        for n in 0..ctx.nodes.len() {
            self.best[n] = select_prefix(ctx, n, &mut self.rx);
        }
        for (d, dir) in ctx.dirs.iter().enumerate() {
            self.adv[d] = export_prefix(ctx, d, prefix, &self.best[dir.from_i]);
            next[d] = self.adv[d].as_ref().map(|p| import_path(ctx, d, p));
        }
    }

    /// The same round, skipping what cannot have changed: a speaker none of
    /// whose sessions brought anything new keeps its best paths (select
    /// reads only what it received), and a sender whose best paths did not
    /// move sends what it sent last round (export reads only those and
    /// constants). `changed` (per slot): what differed in the previous
    /// round, updated for this one; `first` does everything. The marks on
    /// received paths may lag (never their rejection, which import sets);
    /// [`PrefixState::finish`] marks everything.
    pub(super) fn round_changed(
        &mut self,
        ctx: &Ctx,
        prefix: IpNet,
        next: &mut [Option<Received>],
        first: bool,
        (changed, moved): (&mut [bool], &mut [bool]),
    ) {
        for (n, m) in moved.iter_mut().enumerate() {
            *m = false;
            if first || ctx.inbox[n].iter().any(|&d| changed[d]) {
                let best = select_prefix(ctx, n, &mut self.rx);
                *m = best != self.best[n];
                self.best[n] = best;
            }
        }
        for (d, dir) in ctx.dirs.iter().enumerate() {
            if first || moved[dir.from_i] {
                self.adv[d] = export_prefix(ctx, d, prefix, &self.best[dir.from_i]);
                next[d] = self.adv[d].as_ref().map(|p| import_path(ctx, d, p));
            } else {
                next[d] = self.rx[d].clone();
            }
            changed[d] = !same_received(
                std::slice::from_ref(&self.rx[d]),
                std::slice::from_ref(&next[d]),
            );
        }
    }

    pub(super) fn finish(&mut self, ctx: &Ctx) {
        for n in 0..ctx.nodes.len() {
            self.best[n] = select_prefix(ctx, n, &mut self.rx);
        }
    }
}

/// Same paths with the same accept/reject split (what ends the rounds).
pub(super) fn same_received(a: &[Option<Received>], b: &[Option<Received>]) -> bool {
    a.iter().zip(b).all(|(x, y)| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            x.path == y.path
                && matches!(x.status, Status::Rejected(_))
                    == matches!(y.status, Status::Rejected(_))
        }
        _ => false,
    })
}

pub(super) fn accepted(r: &Option<Received>) -> bool {
    r.as_ref()
        .is_some_and(|r| !matches!(r.status, Status::Rejected(_)))
}

/// The converged table, slot by slot, before it becomes a [`BgpState`].
pub(super) struct Converged {
    /// Per slot: (prefix, received) and the paths sent, in prefix order.
    pub(super) rx: Vec<Vec<(IpNet, Received)>>,
    pub(super) adv: Vec<Vec<Path>>,
    /// Per node: (prefix, best paths), in prefix order.
    pub(super) best: Vec<Vec<(IpNet, Vec<Path>)>>,
    pub(super) rounds: usize,
    pub(super) converged: bool,
}

impl Converged {
    pub(super) fn new(ctx: &Ctx) -> Self {
        Converged {
            rx: vec![Vec::new(); ctx.dirs.len()],
            adv: vec![Vec::new(); ctx.dirs.len()],
            best: vec![Vec::new(); ctx.nodes.len()],
            rounds: 1,
            converged: true,
        }
    }

    pub(super) fn push(&mut self, prefix: IpNet, st: &mut PrefixState) {
        for (d, r) in st.rx.iter_mut().enumerate() {
            if let Some(r) = r.take() {
                self.rx[d].push((prefix, r));
            }
        }
        for (d, p) in st.adv.iter_mut().enumerate() {
            if let Some(p) = p.take() {
                self.adv[d].push(p);
            }
        }
        for (n, b) in st.best.iter_mut().enumerate() {
            if !b.is_empty() {
                self.best[n].push((prefix, std::mem::take(b)));
            }
        }
    }

    /// [`Converged::push`] of a copy of `st` (another prefix's state, the
    /// same class) with `prefix` set in every path: only the entries are
    /// cloned, never the state's own lists.
    pub(super) fn push_copy(&mut self, prefix: IpNet, st: &PrefixState) {
        let with = |p: &Path| Path {
            prefix,
            ..p.clone()
        };
        for (d, r) in st.rx.iter().enumerate() {
            if let Some(r) = r {
                self.rx[d].push((
                    prefix,
                    Received {
                        path: with(&r.path),
                        status: r.status.clone(),
                    },
                ));
            }
        }
        for (d, p) in st.adv.iter().enumerate() {
            if let Some(p) = p {
                self.adv[d].push(with(p));
            }
        }
        for (n, b) in st.best.iter().enumerate() {
            if !b.is_empty() {
                self.best[n].push((prefix, b.iter().map(with).collect()));
            }
        }
    }

    pub(super) fn into_state(self, ctx: &Ctx, mut warnings: Vec<String>) -> BgpState {
        let t = ctx.t;
        // Rounds as a speaker counts them: the first round with an Up
        // session always brings news (the session's table appears).
        let rounds = self.rounds.max(if ctx.dirs.is_empty() { 1 } else { 2 });
        let mut sessions = ctx.sessions.to_vec();
        let received: Rib = ctx
            .dirs
            .iter()
            .zip(self.rx)
            .map(|(d, v)| ((d.to, d.si), ByPrefix::from_pairs(v)))
            .collect();
        let advertised = ctx
            .dirs
            .iter()
            .zip(self.adv)
            .map(|(d, v)| ((d.from, d.si), v))
            .collect();
        let best = ctx
            .nodes
            .iter()
            .zip(self.best)
            .map(|(&n, v)| (n, ByPrefix::from_pairs(v)))
            .collect();
        for ((node, si), got) in &received {
            if let Some(Received {
                status: Status::Rejected(r @ Reject::LimitExceeded { .. }),
                ..
            }) = got.values().next()
            {
                let who = node.name(t);
                warnings.push(format!(
                    "{who}: session with {} torn down: {}",
                    sessions[*si].other(*node).name(t),
                    r.text()
                ));
                sessions[*si].state =
                    SessionState::Down(format!("torn down by {who}: {}", r.text()));
            }
        }
        if !self.converged {
            warnings.push(format!("BGP did not converge within {MAX_ROUNDS} rounds (oscillation); the state shown is the last round's"));
        }
        BgpState {
            sessions,
            received,
            advertised,
            best,
            warnings,
            rounds,
            converged: self.converged,
        }
    }
}
