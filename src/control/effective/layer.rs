//! The injected routes a hub and its spokes share, grouped by prefix once
//! ([`InjectedLayer`]), and a subnet's own routes split against them
//! ([`split_table`]): what compiling many subnets of one hub costs once.

use super::*;

/// The injected routes of one list of sources, shared by every subnet
/// with those sources (a hub and its spokes hold the same thousands of
/// gateway and Route Server routes around a few of their own): grouped by
/// prefix in prefix order, each group's members in table order, with the
/// member the same-prefix rules pick among them alone (R15, R31, R39).
/// [`split_table`] then computes, per subnet, only what its own routes
/// change.
#[derive(Debug)]
pub struct InjectedLayer<'a> {
    sources: Vec<VnetId>,
    /// (prefix, members, winner's index in `members`, winner's next hops
    /// in `next_hops`).
    groups: Vec<(IpNet, std::ops::Range<u32>, u32, u32)>,
    /// The winners' distinct next-hop lists.
    next_hops: Vec<Arc<[IpAddr]>>,
    /// Each route, with its source.
    members: Vec<(&'a Injected, VnetId)>,
    /// Whether a member is not a Route Server's (R25 removes no such one).
    any_not_route_server: bool,
}

impl<'a> InjectedLayer<'a> {
    /// The layer of the routes `sources` inject: the source VNets that
    /// inject any, in table order ([`Injections::injecting`]; a hub's
    /// spokes inject nothing of their own and share the hub's layer).
    pub fn new(t: &Topology, inj: &'a Injections, sources: &[VnetId]) -> Self {
        let mut members: Vec<(&'a Injected, VnetId)> = sources
            .iter()
            .flat_map(|&v| {
                inj.by_vnet
                    .get(&v)
                    .into_iter()
                    .flatten()
                    .map(move |r| (r, v))
            })
            .collect();
        // A stable sort keeps table order within a prefix; one source's
        // routes come sorted already.
        if !members.windows(2).all(|w| w[0].0.prefix <= w[1].0.prefix) {
            members.sort_by_key(|m| m.0.prefix);
        }
        let mut groups = Vec::new();
        let mut next_hops: Vec<Arc<[IpAddr]>> = Vec::new();
        let mut index: rustc_hash::FxHashMap<Arc<[IpAddr]>, u32> = Default::default();
        let mut start = 0;
        for group in members.chunk_by(|a, b| a.0.prefix == b.0.prefix) {
            let end = start + group.len();
            // The first of the best, as `mark_states` picks.
            let winner = (start..end)
                .min_by_key(|&i| {
                    let r = members[i].0;
                    let len = u32::try_from(r.as_path.len()).unwrap_or(u32::MAX);
                    injected_rank(t, r.by, r.kind, len)
                })
                .expect("groups are not empty");
            let ips = &members[winner].0.next_hop_ips;
            // A peer's routes mostly share their next hops: the last
            // list is checked before the index.
            let hops = match next_hops.last() {
                Some(l) if l == ips => next_hops.len() as u32 - 1,
                _ => *index.entry(ips.clone()).or_insert_with(|| {
                    next_hops.push(ips.clone());
                    next_hops.len() as u32 - 1
                }),
            };
            groups.push((
                group[0].0.prefix,
                start as u32..end as u32,
                winner as u32,
                hops,
            ));
            start = end;
        }
        InjectedLayer {
            sources: sources.to_vec(),
            any_not_route_server: members.iter().any(|m| m.0.kind != InjectKind::RouteServer),
            groups,
            next_hops,
            members,
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The source VNets, in table order.
    pub fn sources(&self) -> &[VnetId] {
        &self.sources
    }

    /// Whether a subnet with `sources` has this layer's: its sources that
    /// inject routes are the layer's.
    fn inj_sources_match(&self, sources: &Sources) -> bool {
        let members = |v: VnetId| self.members.iter().any(|m| m.1 == v);
        sources.iter().map(|s| s.0).filter(|&v| members(v)).eq(self
            .sources
            .iter()
            .copied()
            .filter(|&v| members(v)))
    }

    /// Number of prefixes.
    pub fn prefixes(&self) -> usize {
        self.groups.len()
    }

    /// Prefix `g` (in prefix order) and the route its group picks.
    pub fn winner(&self, g: usize) -> (IpNet, &'a Injected) {
        let (p, _, w, _) = &self.groups[g];
        (*p, self.members[*w as usize].0)
    }

    /// Prefix `g` and its winner's next hops, as an index in
    /// [`InjectedLayer::next_hops`].
    pub fn winner_hops(&self, g: usize) -> (IpNet, usize) {
        let (p, _, _, h) = &self.groups[g];
        (*p, *h as usize)
    }

    /// The winners' distinct next-hop lists.
    pub fn next_hops(&self) -> &[Arc<[IpAddr]>] {
        &self.next_hops
    }

    /// The first prefix index from `from` on whose prefix is not below `p`.
    pub fn first_from(&self, from: usize, p: IpNet) -> usize {
        from + self.groups[from..].partition_point(|g| g.0 < p)
    }
}

/// A subnet's table split against the injected layer of its sources:
/// its own routes and the injected routes they meet (same prefix as one of
/// them, or inside a VNet, peering or service-endpoint route's prefix),
/// marked as [`subnet_table`] marks them, and the indices (ascending) of
/// the layer's prefixes placed there. Every other prefix of the layer
/// meets none of the subnet's own routes: its group's winner is Active in
/// the full table and no R16 or R25 rule touches it. The subnet must have
/// the layer's sources.
pub fn split_table(t: &Topology, layer: &InjectedLayer, subnet: SubnetId) -> (Table, Vec<u32>) {
    let (mut routes, sources) = own_head(t, subnet, |_| 0);
    debug_assert!(
        layer.inj_sources_match(&sources),
        "subnet {subnet:?} has other sources than its layer"
    );
    // R25, as in `subnet_table`.
    let system_ranges = Ranges::new(routes.iter().map(|r| r.prefix));
    let kept =
        |r: &Injected| !(r.kind == InjectKind::RouteServer && system_ranges.covers(&r.prefix));
    let has_gateway_routes = layer.any_not_route_server || layer.members.iter().any(|m| kept(m.0));
    let bgp_default = layer
        .groups
        .binary_search_by(|g| g.0.cmp(&DEFAULT_V4))
        .is_ok_and(|g| {
            let range = &layer.groups[g].1;
            layer.members[range.start as usize..range.end as usize]
                .iter()
                .any(|m| kept(m.0))
        });
    let tail = own_tail(t, subnet, bgp_default, has_gateway_routes);
    // The layer's prefixes equal to an own route's, or inside a VNet,
    // peering or service-endpoint route's: each looked up in the layer
    // (a few own routes against thousands of prefixes).
    let groups = &layer.groups;
    let mut held: Vec<u32> = Vec::new();
    for r in routes.iter().chain(&tail) {
        let p = r.prefix;
        if r.is_vnet_system() {
            held.extend(
                prefixes_inside(groups, |g| g.0, p)
                    .filter(|&g| p.contains(&groups[g].0))
                    .map(|g| g as u32),
            );
        } else if let Ok(g) = groups.binary_search_by(|g| g.0.cmp(&p)) {
            held.push(g as u32);
        }
    }
    // Route Server routes whose next hops this VNet cannot reach show as
    // None here (R51): their prefixes are this subnet's own too.
    let vnet = t.subnet(subnet).vnet;
    let unreachable: Vec<usize> = (0..layer.next_hops.len())
        .filter(|&h| next_hops_unreachable(t, vnet, &layer.next_hops[h]))
        .collect();
    if !unreachable.is_empty() {
        held.extend(
            (0..groups.len())
                .filter(|&g| {
                    let (_, w) = layer.winner(g);
                    w.kind == InjectKind::RouteServer
                        && unreachable.contains(&(groups[g].3 as usize))
                })
                .map(|g| g as u32),
        );
    }
    held.sort_unstable();
    held.dedup();
    for &g in &held {
        let range = &groups[g as usize].1;
        for &(r, from) in &layer.members[range.start as usize..range.end as usize] {
            if kept(r) {
                let transit = sources.iter().find(|s| s.0 == from).and_then(|s| s.1);
                routes.push(injected_route(t, vnet, r, transit));
            }
        }
    }
    routes.extend(tail);
    mark_states(t, &mut routes);
    (
        Table {
            subnet,
            routes: Arc::new(routes),
        },
        held,
    )
}

/// Of `items` in prefix order (`key`), the indices of a run that holds
/// every one equal to or inside `p` (and maybe `p`'s supernets with its
/// address): `IpNet` orders by address, then length.
pub fn prefixes_inside<T>(
    items: &[T],
    key: impl Fn(&T) -> IpNet,
    p: IpNet,
) -> std::ops::Range<usize> {
    let (first, last) = match p {
        IpNet::V4(q) => (
            IpNet::V4(ipnet::Ipv4Net::new_assert(q.network(), 0)),
            IpNet::V4(ipnet::Ipv4Net::new_assert(q.broadcast(), 32)),
        ),
        IpNet::V6(q) => (
            IpNet::V6(ipnet::Ipv6Net::new_assert(q.network(), 0)),
            IpNet::V6(ipnet::Ipv6Net::new_assert(q.broadcast(), 128)),
        ),
    };
    items.partition_point(|x| key(x) < first)..items.partition_point(|x| key(x) <= last)
}
