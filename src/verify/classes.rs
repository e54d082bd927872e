//! Destination classes: the address space cut at every prefix boundary of
//! every table, then each piece split by who owns its addresses. Two
//! addresses of one piece with the same kind of owner meet the same
//! tables and the same end, so one stands for all: a subnet of 200 VMs is
//! two classes (a VM's address and an address nobody holds), not 201.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::control::ControlPlane;
use crate::topology::*;

/// What a packet to an address can tell of its owner: the NICs of one
/// subnet with the same forwarding setting (not an NVA's) are one kind;
/// everything else that owns an address is a kind of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Owner {
    Vms(u32),
    Unique(u32),
}

/// The VM NICs that behave alike, as senders and as destinations.
#[derive(Clone, Debug)]
pub(super) struct Groups {
    /// Per NIC: its group.
    pub of: Vec<u32>,
    /// Per group: its NICs, in declaration order.
    pub members: Vec<Vec<NicId>>,
}

impl Groups {
    /// NICs of one subnet, with the same IP-forwarding setting and power
    /// state and not an NVA's, are one group; an NVA's NIC is a group of its
    /// own.
    pub fn new(t: &Topology) -> Groups {
        let nva_of: HashMap<NicId, NvaId> = t
            .nvas
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.nics.iter().map(move |&c| (c, NvaId(i as u32))))
            .collect();
        let mut key: HashMap<(SubnetId, bool, Option<NicId>, PowerState), u32> = HashMap::new();
        let mut of = Vec::with_capacity(t.nics.len());
        let mut members: Vec<Vec<NicId>> = Vec::new();
        for (i, n) in t.nics.iter().enumerate() {
            let id = NicId(i as u32);
            let own = nva_of.contains_key(&id).then_some(id);
            let g = *key
                .entry((n.subnet, n.ip_forwarding, own, n.power))
                .or_insert_with(|| {
                    members.push(Vec::new());
                    (members.len() - 1) as u32
                });
            members[g as usize].push(id);
            of.push(g);
        }
        Groups { of, members }
    }
}

/// One address family's classes.
#[derive(Clone, Debug, Default)]
struct Space {
    /// Where each piece starts, sorted, from 0.
    bounds: Vec<u128>,
    max: u128,
    /// Owned addresses, sorted, one owner each (the first declared).
    owned: Vec<(u128, Owner)>,
}

impl Space {
    fn new(nets: &[(u128, u128)], owned: Vec<(u128, Owner)>, max: u128) -> Space {
        let mut b: BTreeSet<u128> = BTreeSet::from([0]);
        for &(lo, hi) in nets {
            b.insert(lo);
            if let Some(next) = hi.checked_add(1) {
                b.insert(next);
            }
        }
        let mut owned = owned;
        owned.sort_by_key(|o| o.0);
        owned.dedup_by_key(|o| o.0);
        Space {
            bounds: b.into_iter().collect(),
            max,
            owned,
        }
    }

    /// The classes' representatives inside `[lo, hi]`: per piece, the
    /// first and last address of each kind of owner it holds and one
    /// address nobody holds (if any).
    fn reps(&self, lo: u128, hi: u128, out: &mut Vec<u128>) {
        let mut i = self.bounds.partition_point(|&b| b <= lo).saturating_sub(1);
        while let Some(&start) = self.bounds.get(i) {
            if start > hi {
                break;
            }
            let end = self
                .bounds
                .get(i + 1)
                .map(|n| n - 1)
                .unwrap_or(self.max)
                .min(hi);
            let s = start.max(lo);
            let j0 = self.owned.partition_point(|o| o.0 < s);
            let j1 = self.owned.partition_point(|o| o.0 <= end);
            let here = &self.owned[j0..j1];
            // The first and the last of each kind: a sender that is one
            // of them still has another of its own kind to send to.
            let mut kinds: BTreeMap<Owner, (u128, u128)> = BTreeMap::new();
            for &(a, o) in here {
                kinds.entry(o).or_insert((a, a)).1 = a;
            }
            for (first, last) in kinds.into_values() {
                out.push(last);
                if first != last {
                    out.push(first);
                }
            }
            // An address nobody holds: the second of a wide piece (0.0.0.1
            // rather than 0.0.0.0), else the first, past owned ones.
            let free = |from: u128| {
                let mut a = from;
                let mut k = here.partition_point(|o| o.0 < a);
                while k < here.len() && here[k].0 == a {
                    if a == end {
                        return None;
                    }
                    a += 1;
                    k += 1;
                }
                Some(a)
            };
            let pref = if end - s >= 2 { s + 1 } else { s };
            if let Some(a) = free(pref).or_else(|| free(s).filter(|&a| a < pref)) {
                out.push(a);
            }
            i += 1;
        }
    }
}

/// Every destination class of a control plane's tables.
#[derive(Clone, Debug)]
pub(super) struct Classes {
    v4: Space,
    v6: Option<Space>,
}

fn range(n: &IpNet) -> (bool, u128, u128) {
    match n {
        IpNet::V4(v) => (
            false,
            u128::from(u32::from(v.network())),
            u128::from(u32::from(v.broadcast())),
        ),
        IpNet::V6(v) => (true, u128::from(v.network()), u128::from(v.broadcast())),
    }
}

fn key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn addr(v6: bool, a: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::from(a as u32))
    }
}

impl Classes {
    pub fn new(cp: &ControlPlane, groups: &Groups) -> Classes {
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
        }
        for v in &t.vnets {
            nets.extend(v.address_space.iter().copied());
        }
        for s in &t.subnets {
            nets.extend(s.prefixes.iter().copied());
        }
        // Owners: VMs by group, everything else one by one.
        let mut owned: Vec<(IpAddr, Owner)> = Vec::new();
        let mut unique = 0u32;
        let mut one = |ip: IpAddr, owned: &mut Vec<(IpAddr, Owner)>| {
            owned.push((ip, Owner::Unique(unique)));
            unique += 1;
        };
        for (i, n) in t.nics.iter().enumerate() {
            for &ip in &n.ips {
                owned.push((ip, Owner::Vms(groups.of[i])));
            }
        }
        for g in &t.gateways {
            g.ips.iter().for_each(|&ip| one(ip, &mut owned));
        }
        for l in &t.load_balancers {
            one(l.frontend_ip, &mut owned);
        }
        for r in &t.route_servers {
            r.ips.iter().for_each(|&ip| one(ip, &mut owned));
        }
        for s in &t.sites {
            s.hosts.iter().for_each(|&ip| one(ip, &mut owned));
            s.cpe.iter().for_each(|&ip| one(ip, &mut owned));
            for k in &s.tunnels {
                one(k.local, &mut owned);
                one(k.remote, &mut owned);
            }
        }
        for n in &t.nvas {
            for k in &n.tunnels {
                one(k.local, &mut owned);
                one(k.remote, &mut owned);
            }
        }
        let split = |v6: bool| {
            let ranges: Vec<(u128, u128)> = nets
                .iter()
                .map(range)
                .filter(|r| r.0 == v6)
                .map(|r| (r.1, r.2))
                .collect();
            let own: Vec<(u128, Owner)> = owned
                .iter()
                .map(|&(ip, o)| (key(ip), o))
                .filter(|(k, _)| k.0 == v6)
                .map(|(k, o)| (k.1, o))
                .collect();
            let max = if v6 { u128::MAX } else { u128::from(u32::MAX) };
            Space::new(&ranges, own, max)
        };
        let has_v6 = t.nics.iter().any(|n| n.ips.iter().any(IpAddr::is_ipv6));
        Classes {
            v4: split(false),
            v6: has_v6.then(|| split(true)),
        }
    }

    /// Every class's representative.
    pub fn all(&self) -> Vec<IpAddr> {
        let mut v = Vec::new();
        let mut out = Vec::new();
        self.v4.reps(0, self.v4.max, &mut out);
        v.extend(out.drain(..).map(|a| addr(false, a)));
        if let Some(s) = &self.v6 {
            s.reps(0, s.max, &mut out);
            v.extend(out.drain(..).map(|a| addr(true, a)));
        }
        v
    }

    /// The representatives of the classes inside `net`, or, with
    /// `owned_only`, of the classes of owned addresses inside it.
    pub fn within(&self, net: &IpNet, owned_only: bool) -> Vec<IpAddr> {
        let (v6, lo, hi) = range(net);
        let space = if v6 {
            match &self.v6 {
                Some(s) => s,
                // No IPv6 NIC: one class stands for the whole range.
                None => return vec![net.network()],
            }
        } else {
            &self.v4
        };
        let mut out = Vec::new();
        space.reps(lo, hi, &mut out);
        let mut v: Vec<IpAddr> = out.into_iter().map(|a| addr(v6, a)).collect();
        if owned_only {
            v.retain(|a| {
                let k = key(*a).1;
                space.owned.binary_search_by_key(&k, |o| o.0).is_ok()
            });
        }
        v
    }
}
