//! Compiled forwarding tables: route sets compiled into immutable,
//! index-based longest-prefix-match tries (a [`poptrie::Poptrie`] for IPv4 and
//! one for IPv6) behind one interface, with the actions interned in a side
//! table so leaves are small integers.
//!
//! - [`Fib`]: one compiled route set; `lookup`, `lookup_v4_batch`, and `apply`
//!   (a batch of route changes → a new table, by a full rebuild, which is fast
//!   enough: see `vnetplane bench lpm`).
//! - [`FibSet`]: every subnet's effective table compiled once per *distinct*
//!   route set and shared by `Arc`: NICs of one subnet share a table, and
//!   subnets with identical route sets share one too.
//!
//! NIC tables are compiled with SPEC R16 built in: a gateway route equal to or
//! inside an active VNet, peering or service-endpoint system route is dropped,
//! so the trie's plain LPM gives the same answer as
//! [`crate::control::effective::lookup`] (a test checks every built-in).

pub mod poptrie;

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::control::ControlPlane;
use crate::control::effective::{self, NextHopType, Source, State, Table};
use crate::control::sorted::sorted_mostly_in_order_by;
use crate::topology::NicId;
use poptrie::{BuildRoute, Poptrie};

/// A change to a compiled route set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change<A> {
    /// Add or replace the route for a prefix.
    Upsert(IpNet, A),
    Remove(IpNet),
}

/// One compiled route set.
#[derive(Clone, Debug)]
pub struct Fib<A> {
    v4: Poptrie<u32>,
    v6: Poptrie<u128>,
    /// Interned actions; a trie value `i` (≥ 1) is `actions[i - 1]`.
    actions: Vec<A>,
    /// The canonical input (sorted by prefix, one entry per prefix).
    routes: Vec<(IpNet, A)>,
    /// Each route's trie value (its action's index + 1).
    values: Vec<u32>,
}

/// A prefix as the trie builder takes it: network (right-aligned), length.
#[inline]
fn prefix_key(p: &IpNet) -> (u128, u8) {
    match p {
        IpNet::V4(n) => (u32::from(n.network()) as u128, n.prefix_len()),
        IpNet::V6(n) => (u128::from(n.network()), n.prefix_len()),
    }
}

/// Route `i` of a sorted set as the trie builder takes it.
#[inline]
fn build_route<A>(routes: &[(IpNet, A)], values: &[u32], i: usize) -> BuildRoute {
    let (net, len) = prefix_key(&routes[i].0);
    BuildRoute {
        net,
        len,
        value: values[i],
    }
}

/// Routes `range` of a sorted set (one family's) as the trie builder takes
/// them.
fn build_routes<A>(
    routes: &[(IpNet, A)],
    values: &[u32],
    range: std::ops::Range<usize>,
) -> Vec<BuildRoute> {
    range.map(|i| build_route(routes, values, i)).collect()
}

/// How many routes of a sorted set are IPv4 (they sort before IPv6 ones).
fn v4_count<A>(routes: &[(IpNet, A)]) -> usize {
    routes.partition_point(|(p, _)| matches!(p, IpNet::V4(_)))
}

/// One family's trie for routes `range` of a sorted set: `trie` patched
/// at the `changed` prefixes of that family, else built anew.
fn patched_or_built<K: poptrie::Key, A>(
    trie: &Poptrie<K>,
    routes: &[(IpNet, A)],
    values: &[u32],
    range: std::ops::Range<usize>,
    changed: &[IpNet],
) -> Poptrie<K> {
    let v4 = K::BITS == 32;
    let start = range.start;
    let family = changed
        .iter()
        .filter(|p| matches!(p, IpNet::V4(_)) == v4)
        .map(prefix_key);
    trie.patched(
        range.len(),
        |k| build_route(routes, values, start + k),
        family,
    )
    .unwrap_or_else(|| Poptrie::build(&build_routes(routes, values, range)))
}

impl<A: Clone + Eq + Hash> Fib<A> {
    /// Compiles a route set. For a prefix given twice, the last one wins.
    pub fn build(routes: impl IntoIterator<Item = (IpNet, A)>) -> Self {
        let mut rs: Vec<(IpNet, A)> = routes.into_iter().map(|(p, a)| (truncated(p), a)).collect();
        // Already in order, one route a prefix (compiled tables arrive
        // sorted): nothing to do. Else a stable sort keeps input order
        // within a prefix; keep the last.
        if !rs.windows(2).all(|w| w[0].0 < w[1].0) {
            rs.reverse();
            rs.sort_by_key(|(p, _)| *p);
            rs.dedup_by(|a, b| a.0 == b.0);
        }
        let mut index: rustc_hash::FxHashMap<A, u32> = Default::default();
        let mut actions: Vec<A> = Vec::new();
        let mut values: Vec<u32> = Vec::with_capacity(rs.len());
        // Neighbouring routes mostly share their action (a BGP peer's
        // prefixes): the last one is checked before the index.
        let mut last: Option<(&A, u32)> = None;
        for (_, a) in &rs {
            let value = match last {
                Some((l, v)) if l == a => v,
                _ => {
                    let v = *index.entry(a.clone()).or_insert_with(|| {
                        actions.push(a.clone());
                        actions.len() as u32
                    });
                    last = Some((a, v));
                    v
                }
            };
            values.push(value);
        }
        let n4 = v4_count(&rs);
        Fib {
            v4: Poptrie::build(&build_routes(&rs, &values, 0..n4)),
            v6: Poptrie::build(&build_routes(&rs, &values, n4..rs.len())),
            actions,
            routes: rs,
            values,
        }
    }

    /// [`Fib::build`] of `routes` (the same answers), made from `self` when
    /// they differ from its routes at few prefixes: the tries are patched
    /// where those prefixes are ([`Poptrie::patched`]), unchanged routes
    /// keep their action index, new actions are appended (the list may keep
    /// some no route uses any more). Routes in order, one a prefix, as
    /// [`nic_routes`] gives them; anything else, or a large change, is
    /// built in full.
    pub fn rebuilt_from(&self, routes: Vec<(IpNet, A)>) -> Self {
        let max_changed = 64usize.max(routes.len() / 16);
        let old = &self.routes;
        let mut changed: Vec<IpNet> = Vec::new();
        let mut values: Vec<u32> = Vec::with_capacity(routes.len());
        let mut actions: Option<(Vec<A>, rustc_hash::FxHashMap<A, u32>)> = None;
        let mut i = 0;
        // Whether route k - 1 was the unchanged old route i - 1.
        let mut after_same = false;
        for (k, (p, a)) in routes.iter().enumerate() {
            // Out of order, twice, or with host bits: the general build.
            // (Two unchanged routes in a row are in order, as the old ones.)
            let unchanged = i < old.len() && old[i].0 == *p && old[i].1 == *a;
            if !(unchanged && after_same) && (k > 0 && routes[k - 1].0 >= *p || truncated(*p) != *p)
            {
                return Fib::build(routes);
            }
            after_same = unchanged;
            if unchanged {
                values.push(self.values[i]);
                i += 1;
                continue;
            }
            while i < old.len() && old[i].0 < *p {
                changed.push(old[i].0);
                i += 1;
            }
            i += usize::from(i < old.len() && old[i].0 == *p);
            changed.push(*p);
            if changed.len() > max_changed {
                return Fib::build(routes);
            }
            let (list, index) = actions.get_or_insert_with(|| {
                let index = self
                    .actions
                    .iter()
                    .enumerate()
                    .map(|(k, a)| (a.clone(), k as u32 + 1))
                    .collect();
                (self.actions.clone(), index)
            });
            values.push(*index.entry(a.clone()).or_insert_with(|| {
                list.push(a.clone());
                list.len() as u32
            }));
        }
        changed.extend(old[i..].iter().map(|r| r.0));
        if changed.len() > max_changed {
            return Fib::build(routes);
        }
        let n4 = v4_count(&routes);
        let v4 = patched_or_built(&self.v4, &routes, &values, 0..n4, &changed);
        let v6 = patched_or_built(&self.v6, &routes, &values, n4..routes.len(), &changed);
        Fib {
            v4,
            v6,
            actions: actions.map_or_else(|| self.actions.clone(), |(list, _)| list),
            routes,
            values,
        }
    }

    /// The action of the longest prefix containing `ip`.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<&A> {
        let v = match ip {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        };
        self.action(v)
    }

    /// The action of the longest prefix containing `ip`, with its index in
    /// [`Fib::actions`] (for tables kept beside the FIB, per action).
    #[inline]
    pub fn lookup_indexed(&self, ip: IpAddr) -> Option<(usize, &A)> {
        let v = match ip {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        };
        let i = (v as usize).checked_sub(1)?;
        self.actions.get(i).map(|a| (i, a))
    }

    /// The raw value (action index + 1, or 0) for an IPv4 address.
    #[inline]
    pub fn lookup_v4(&self, a: u32) -> u32 {
        self.v4.lookup(a)
    }

    /// Raw values for many IPv4 addresses at once (overlapping memory accesses).
    pub fn lookup_v4_batch(&self, keys: &[u32], out: &mut [u32]) {
        self.v4.lookup_batch(keys, out)
    }

    #[inline]
    pub fn lookup_v6(&self, a: u128) -> u32 {
        self.v6.lookup(a)
    }

    pub fn lookup_v6_batch(&self, keys: &[u128], out: &mut [u32]) {
        self.v6.lookup_batch(keys, out)
    }

    /// The action for a raw value.
    #[inline]
    pub fn action(&self, v: u32) -> Option<&A> {
        (v as usize)
            .checked_sub(1)
            .and_then(|i| self.actions.get(i))
    }

    /// A new table with `changes` applied (full rebuild from the canonical routes).
    pub fn apply(&self, changes: &[Change<A>]) -> Self {
        let mut map: std::collections::BTreeMap<IpNet, A> = self.routes.iter().cloned().collect();
        for c in changes {
            match c {
                Change::Upsert(p, a) => {
                    map.insert(p.trunc(), a.clone());
                }
                Change::Remove(p) => {
                    map.remove(&p.trunc());
                }
            }
        }
        Fib::build(map)
    }

    /// Routes in the table.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn routes(&self) -> &[(IpNet, A)] {
        &self.routes
    }

    pub fn actions(&self) -> &[A] {
        &self.actions
    }

    /// Bytes of the compiled lookup structures (both families).
    pub fn trie_bytes(&self) -> usize {
        self.v4.bytes() + self.v6.bytes()
    }

    pub fn v4_trie(&self) -> &Poptrie<u32> {
        &self.v4
    }

    pub fn v6_trie(&self) -> &Poptrie<u128> {
        &self.v6
    }
}

/// `p` without host bits (`IpNet::trunc`, which rebuilds the prefix, only
/// when some are set: routes mostly come without).
#[inline]
fn truncated(p: IpNet) -> IpNet {
    let host_bits = match p {
        IpNet::V4(n) => u32::from(n.addr()) & !u32::from(n.netmask()) != 0,
        IpNet::V6(n) => u128::from(n.addr()) & !u128::from(n.netmask()) != 0,
    };
    if host_bits { p.trunc() } else { p }
}

/// What a NIC does with a packet: the effective route's next hop.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NicAction {
    pub next_hop_type: NextHopType,
    /// Next-hop IPs; several for an ECMP group.
    pub ips: Arc<[IpAddr]>,
}

/// The routes a NIC's FIB holds, in order: the Active routes, minus gateway
/// routes that R16 hides (equal to or inside an active VNet/peering/
/// service-endpoint route), sorted by prefix (then action).
pub fn nic_routes(table: &Table) -> Vec<(IpNet, NicAction)> {
    let system = crate::control::effective::Ranges::new(
        table
            .routes
            .iter()
            .filter(|r| r.state == State::Active && r.is_vnet_system())
            .map(|r| r.prefix),
    );
    let held: Vec<&crate::control::effective::Route> = table
        .routes
        .iter()
        .filter(|r| r.state == State::Active)
        .filter(|r| !(r.source == Source::VirtualNetworkGateway && system.covers(&r.prefix)))
        .collect();
    // Sorted as references (cheap to move), then written out once.
    let held = sorted_mostly_in_order_by(held, |a, b| {
        (a.prefix, a.next_hop_type, &a.next_hop_ips).cmp(&(
            b.prefix,
            b.next_hop_type,
            &b.next_hop_ips,
        ))
    });
    held.into_iter()
        .map(|r| {
            (
                r.prefix,
                NicAction {
                    next_hop_type: r.next_hop_type,
                    ips: r.next_hop_ips.clone(),
                },
            )
        })
        .collect()
}

/// [`nic_routes`] of the subnet's full table, computed from the injected
/// layer its sources share ([`effective::split_table`]): the routes its
/// own ones meet from its split table, every other prefix of the layer
/// with its group's winner. A hub and its spokes copy the shared
/// routes' actions, not the full table's rows.
pub fn layered_nic_routes(
    t: &crate::topology::Topology,
    layer: &effective::InjectedLayer,
    subnet: crate::topology::SubnetId,
) -> Vec<(IpNet, NicAction)> {
    let (own, held) = effective::split_table(t, layer, subnet);
    let own = nic_routes(&own);
    // The layer's next-hop lists copied for this subnet: its routes count
    // references on lists of their own, not every core on the few shared
    // ones (contended reference counts).
    let actions: Vec<NicAction> = layer
        .next_hops()
        .iter()
        .map(|ips| NicAction {
            next_hop_type: NextHopType::VirtualNetworkGateway,
            ips: Arc::from(&ips[..]),
        })
        .collect();
    let n = layer.prefixes();
    let mut out = Vec::with_capacity(own.len() + n - held.len());
    // The layer's prefixes from `from` to `to`, but the held ones.
    let mut held = held.into_iter().peekable();
    let mut copy = |out: &mut Vec<(IpNet, NicAction)>, from: usize, to: usize| {
        for g in from..to {
            if held.next_if_eq(&(g as u32)).is_none() {
                let (p, a) = layer.winner_hops(g);
                out.push((p, actions[a].clone()));
            }
        }
    };
    // Each own route where the layer's order puts it (no prefix in
    // common: the held ones are the own routes' prefixes and those they
    // cover), found by a binary search, not a comparison a prefix.
    let mut at = 0;
    for route in own {
        let to = layer.first_from(at, route.0);
        copy(&mut out, at, to);
        out.push(route);
        at = to;
    }
    copy(&mut out, at, n);
    out
}

/// Tables of at least this many routes are made from a close one
/// ([`Fib::rebuilt_from`]) when [`FibSet::compile_tables`] has one.
pub const DERIVE_MIN: usize = 4096;

/// Every subnet's compiled table, one per distinct route set.
#[derive(Clone, Debug)]
pub struct FibSet {
    /// Indexed by subnet id.
    pub by_subnet: Vec<Arc<Fib<NicAction>>>,
    /// Number of distinct compiled tables.
    pub distinct: usize,
    /// Bytes of the distinct tables' tries.
    pub bytes: usize,
}

impl FibSet {
    /// Compiles every subnet's effective routes; identical route sets compile once.
    pub fn compile(cp: &ControlPlane) -> FibSet {
        FibSet::compile_reusing(cp, None).0
    }

    /// The same after a change: a route set that `prev` already compiled is
    /// shared, not rebuilt. Also returns how many tables were compiled.
    /// Subnets whose sources inject routes take them from one
    /// [`effective::InjectedLayer`] per list of sources
    /// ([`layered_nic_routes`]) instead of each computing its full table.
    pub fn compile_reusing(cp: &ControlPlane, prev: Option<&FibSet>) -> (FibSet, usize) {
        use crate::topology::{SubnetId, VnetId};
        let t = &cp.topology;
        let twins = cp.subnet_twins();
        let mut layers: Vec<effective::InjectedLayer> = Vec::new();
        let mut layer_of: Vec<Option<usize>> = vec![None; twins.len()];
        for (i, _) in twins.iter().enumerate().filter(|&(i, &j)| i == j) {
            let sources: Vec<VnetId> = cp
                .injections
                .injecting(&effective::subnet_sources(t, SubnetId(i as u32)));
            if sources.is_empty() {
                continue;
            }
            layer_of[i] = match layers.iter().position(|l| l.sources() == sources) {
                Some(l) => Some(l),
                None => {
                    let layer = effective::InjectedLayer::new(t, &cp.injections, &sources);
                    (!layer.is_empty()).then(|| {
                        layers.push(layer);
                        layers.len() - 1
                    })
                }
            };
        }
        let work: usize = layer_of.iter().flatten().map(|&l| layers[l].len()).sum();
        FibSet::compile_with(
            twins.len(),
            &twins,
            prev,
            work >= crate::control::PARALLEL_ROUTES,
            |i| match layer_of[i] {
                Some(l) => layered_nic_routes(t, &layers[l], SubnetId(i as u32)),
                None => nic_routes(&cp.subnet_table(SubnetId(i as u32))),
            },
        )
    }

    /// [`FibSet::compile_reusing`] of tables already computed (one per
    /// subnet, by subnet id).
    /// `twins[i]`: a subnet before `i` whose table is known to be the same
    /// as `i`'s, or `i` ([`ControlPlane::subnet_twins`]); twins share the
    /// compiled table without comparing routes.
    pub fn compile_tables(
        tables: &[Table],
        twins: &[usize],
        prev: Option<&FibSet>,
    ) -> (FibSet, usize) {
        let is_twin = |i: usize| twins.get(i).is_some_and(|&j| j < i);
        let work = tables
            .iter()
            .enumerate()
            .filter(|&(i, _)| !is_twin(i))
            .map(|(_, t)| t.routes.len())
            .sum::<usize>();
        FibSet::compile_with(
            tables.len(),
            twins,
            prev,
            work >= crate::control::PARALLEL_ROUTES,
            |i| nic_routes(&tables[i]),
        )
    }

    /// Compiles `routes(i)` for every subnet `i < n` that is not a twin,
    /// on every core when `parallel`.
    fn compile_with(
        n: usize,
        twins: &[usize],
        prev: Option<&FibSet>,
        parallel: bool,
        routes: impl Fn(usize) -> Vec<(IpNet, NicAction)> + Sync,
    ) -> (FibSet, usize) {
        use rayon::prelude::*;
        use std::hash::BuildHasher;
        // Route sets are found by a hash of their routes (FxHash: hashing
        // is most of the reuse check) and compared in full on a hit; the
        // routes are kept once, in the compiled table.
        let hasher = rustc_hash::FxBuildHasher;
        let mut old: rustc_hash::FxHashMap<u64, Vec<&Arc<Fib<NicAction>>>> = Default::default();
        for f in prev.map(|p| p.by_subnet.as_slice()).unwrap_or_default() {
            let list = old.entry(hasher.hash_one(f.routes())).or_default();
            if !list.iter().any(|g| Arc::ptr_eq(g, f)) {
                list.push(f);
            }
        }
        let is_twin = |i: usize| twins.get(i).is_some_and(|&j| j < i);
        // Large sets: each table's routes (and then each new compiled
        // table) on every core; the reuse decisions stay in subnet order.
        let prepare = |i: usize| {
            (!is_twin(i)).then(|| {
                let routes = routes(i);
                let h = hasher.hash_one(routes.as_slice());
                (routes, h)
            })
        };
        type Prepared = Option<(Vec<(IpNet, NicAction)>, u64)>;
        let prepared: Vec<Prepared> = if parallel {
            (0..n).into_par_iter().map(prepare).collect()
        } else {
            (0..n).map(prepare).collect()
        };
        // Per subnet: a twin's subnet, a table compiled before (this set's
        // or `prev`'s), or a route set to compile.
        enum Slot {
            Twin(usize),
            Known(Arc<Fib<NicAction>>),
            New(usize),
        }
        let mut slots: Vec<Slot> = Vec::with_capacity(n);
        type ToBuild<'a> = (Vec<(IpNet, NicAction)>, Option<&'a Arc<Fib<NicAction>>>);
        let mut to_build: Vec<ToBuild> = Vec::new();
        // hash -> this set's distinct tables (Known, or New by build index).
        let mut by_hash: rustc_hash::FxHashMap<u64, Vec<usize>> = Default::default();
        let mut distinct_slots: Vec<usize> = Vec::new();
        for (i, p) in prepared.into_iter().enumerate() {
            let Some((routes, h)) = p else {
                slots.push(Slot::Twin(twins[i]));
                continue;
            };
            let same = |s: &usize| match &slots[*s] {
                Slot::Known(f) => f.routes() == routes.as_slice(),
                Slot::New(b) => to_build[*b].0 == routes,
                Slot::Twin(_) => false,
            };
            let seen = by_hash.get(&h).and_then(|v| v.iter().copied().find(same));
            let slot = match seen {
                Some(s) => Slot::Twin(s),
                None => {
                    let known = old
                        .get(&h)
                        .and_then(|v| v.iter().copied().find(|f| f.routes() == routes.as_slice()));
                    by_hash.entry(h).or_default().push(i);
                    distinct_slots.push(i);
                    match known {
                        Some(f) => Slot::Known(f.clone()),
                        None => {
                            let base = prev.and_then(|p| p.by_subnet.get(i));
                            to_build.push((routes, base));
                            Slot::New(to_build.len() - 1)
                        }
                    }
                }
            };
            slots.push(slot);
        }
        let compiled = to_build.len();
        // A large table is made from a close one when there is one
        // (`Fib::rebuilt_from`, which builds in full when it is not close):
        // the previous set's table of the same subnet, else the first table
        // built here (a hub and its spokes differ in a few system routes
        // around the same injected ones). Small ones build as fast.
        let mut to_build = to_build.into_iter();
        let make = |(routes, base): ToBuild, first: Option<&Arc<Fib<NicAction>>>| {
            Arc::new(match base.or(first) {
                Some(b) if routes.len() >= DERIVE_MIN => b.rebuilt_from(routes),
                _ => Fib::build(routes),
            })
        };
        let first = to_build.next().map(|r| make(r, None));
        let rest: Vec<Arc<Fib<NicAction>>> = if parallel {
            let rest: Vec<_> = to_build.collect();
            rest.into_par_iter()
                .map(|r| make(r, first.as_ref()))
                .collect()
        } else {
            to_build.map(|r| make(r, first.as_ref())).collect()
        };
        let built: Vec<Arc<Fib<NicAction>>> = first.into_iter().chain(rest).collect();
        let mut by_subnet: Vec<Arc<Fib<NicAction>>> = Vec::with_capacity(n);
        for slot in &slots {
            let fib = match slot {
                Slot::Twin(j) => by_subnet[*j].clone(),
                Slot::Known(f) => f.clone(),
                Slot::New(b) => built[*b].clone(),
            };
            by_subnet.push(fib);
        }
        let bytes = distinct_slots
            .iter()
            .map(|&i| by_subnet[i].trie_bytes())
            .sum();
        let set = FibSet {
            distinct: distinct_slots.len(),
            by_subnet,
            bytes,
        };
        (set, compiled)
    }

    pub fn for_nic(&self, cp: &ControlPlane, nic: NicId) -> &Arc<Fib<NicAction>> {
        &self.by_subnet[cp.topology.nic(nic).subnet.idx()]
    }
}
