//! An NVA's own operating-system routing table (invisible to Azure, R42):
//! connected subnets, static routes, BGP-learned routes (into a tunnel when
//! the session runs over one), with administrative distance and BGP next-hop
//! resolution. Warns when a BGP next hop resolves only through a route learned
//! from that same session (the recursion trap of scenario 17).

use std::net::IpAddr;

use ipnet::IpNet;

use super::bgp::{BgpState, Node};
use crate::topology::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OsSource {
    Connected,
    Static,
    /// Learned from a BGP session (index into `BgpState::sessions`).
    Bgp {
        session: usize,
        ibgp: bool,
    },
}

impl OsSource {
    /// Administrative distance: connected 0, static 1, eBGP 20, iBGP 200.
    pub fn distance(self) -> u8 {
        match self {
            OsSource::Connected => 0,
            OsSource::Static => 1,
            OsSource::Bgp { ibgp: false, .. } => 20,
            OsSource::Bgp { ibgp: true, .. } => 200,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsEntry {
    pub prefix: IpNet,
    pub source: OsSource,
    pub next_hop: OsNextHop,
    /// Installed (best distance for its prefix).
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsTable {
    pub nva: NvaId,
    pub entries: Vec<OsEntry>,
    pub warnings: Vec<String>,
}

impl OsTable {
    /// Longest-prefix match over the active entries that do not point into a
    /// tunnel: how the NVA routes a tunnel's outer packets (the underlay).
    pub fn lookup_underlay(&self, dst: IpAddr) -> Option<&OsEntry> {
        self.entries
            .iter()
            .filter(|e| {
                e.active && e.prefix.contains(&dst) && !matches!(e.next_hop, OsNextHop::Tunnel(_))
            })
            .max_by_key(|e| e.prefix.prefix_len())
    }

    /// Longest-prefix match over the active entries (entries are sorted by
    /// prefix, so each candidate length is one binary search).
    pub fn lookup(&self, dst: IpAddr) -> Option<&OsEntry> {
        let max = if dst.is_ipv4() { 32 } else { 128 };
        (0..=max).rev().find_map(|len| {
            let net = IpNet::new(dst, len).ok()?.trunc();
            let i = self.entries.partition_point(|e| e.prefix < net);
            self.entries.get(i).filter(|e| e.prefix == net && e.active)
        })
    }
}

/// Builds NVA `n`'s OS table from the topology and the converged BGP state.
pub fn nva_table(t: &Topology, bgp: &BgpState, n: NvaId) -> OsTable {
    let nva = &t.nvas[n.idx()];
    let mut entries: Vec<OsEntry> = Vec::new();
    for &nic in &nva.nics {
        for &p in &t.subnet(t.nic(nic).subnet).prefixes {
            entries.push(OsEntry {
                prefix: p,
                source: OsSource::Connected,
                next_hop: OsNextHop::Nic(nic),
                active: true,
            });
        }
    }
    for r in &nva.routes {
        entries.push(OsEntry {
            prefix: r.prefix,
            source: OsSource::Static,
            next_hop: r.next_hop.clone(),
            active: true,
        });
    }
    let me = Node::Nva(n);
    for (prefix, set) in bgp.best_of(me) {
        let Some(p) = set.first() else { continue };
        let Some(si) = p.session else { continue };
        let s = &bgp.sessions[si];
        let cfg_idx = if s.a == me { s.cfg_a } else { s.cfg_b };
        let over = cfg_idx.and_then(|i| nva.bgp.get(i)).and_then(|c| c.over);
        let next_hop = match over {
            Some(tunnel) => OsNextHop::Tunnel(tunnel),
            None => OsNextHop::Via(p.next_hop),
        };
        entries.push(OsEntry {
            prefix: *prefix,
            source: OsSource::Bgp {
                session: si,
                ibgp: s.ibgp,
            },
            next_hop,
            active: true,
        });
    }
    // Administrative distance decides between entries for one prefix: after a
    // stable sort, the first entry of each prefix is the one installed.
    entries.sort_by_key(|e| (e.prefix, e.source.distance()));
    for i in 0..entries.len() {
        entries[i].active = i == 0 || entries[i - 1].prefix != entries[i].prefix;
    }
    let mut table = OsTable {
        nva: n,
        entries,
        warnings: Vec::new(),
    };
    // BGP next-hop resolution, one warning per peer and next hop: every
    // route a Route Server instance relays with its own address (the next
    // hop the platform sets) shares one resolution.
    let mut warnings = Vec::new();
    let mut seen: Vec<(Node, IpAddr)> = Vec::new();
    for e in table.entries.iter().filter(|e| e.active) {
        let (OsSource::Bgp { session, .. }, OsNextHop::Via(nh)) = (e.source, &e.next_hop) else {
            continue;
        };
        let s = &bgp.sessions[session];
        let key = (s.other(me), *nh);
        // A VPN gateway's address is reached through the IPsec connection
        // the session runs in.
        if seen.contains(&key) || matches!(key.0, Node::Gateway(_)) {
            continue;
        }
        let peer = s.peer_label(t, me);
        let what = if s.platform_peer_ip(t, me) == Some(*nh) {
            format!(
                "{nh} (the address of {peer}, as the platform sets it) of {}",
                e.prefix
            )
        } else {
            format!("{nh} of {} (from {peer})", e.prefix)
        };
        match table.lookup(*nh) {
            None => {
                seen.push(key);
                warnings.push(format!(
                    "nva {}: BGP next hop {what} is unreachable: no route covers it",
                    nva.name
                ))
            }
            Some(r) if matches!(r.source, OsSource::Bgp { session: rs, .. } if bgp.sessions[rs].other(me) == key.0) =>
            {
                seen.push(key);
                warnings.push(format!(
                    "nva {}: BGP next hop {what} resolves through {}, a route learned from that same session: recursive routing; add a static route for the peer's subnet",
                    nva.name, r.prefix
                ))
            }
            Some(_) => {}
        }
    }
    table.warnings = warnings;
    table
}
