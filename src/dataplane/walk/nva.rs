//! An NVA's operating system: tunnel traffic addressed to it is
//! decapsulated; anything else has its TTL decremented and is routed by
//! the NVA's own table, out of a NIC (which then routes by its own
//! effective routes, R42) or into a tunnel.

use super::encap::{describe_encap, encapsulate, encapsulated_len};
use super::{Step, Walk};
use crate::control::bgp::Node;
use crate::dataplane::verdict::{At, DropReason, Outcome, Place};
use crate::topology::*;

impl<const REC: bool> Walk<'_, REC> {
    pub(super) fn nva(&mut self, n: NvaId) -> Step {
        let w = self.world;
        let t = w.t();
        let nva = &t.nvas[n.idx()];
        let at = At::Nva(n);
        if let Some(r) = self.speaker_fails(Node::Nva(n)) {
            self.hop(at, "nva", say!(self, "the NVA is down"));
            return self.drop_at(at, r);
        }
        let o = *self.b.packet.outer();
        if w.fixed.nva_ips[n.idx()].contains(&o.header.dst) {
            if let Some(enc) = o.encap {
                return self.tunnel_arrival(at, "nva", Node::Nva(n), &nva.tunnels, enc, "");
            }
            self.hop(at, "nva", say!(self, "addressed to the NVA itself"));
            return Step::Done(Outcome::Delivered(Place::At(at)));
        }
        let sent_here = std::mem::take(&mut self.from_os);
        if !sent_here && o.ttl <= 1 {
            self.hop(
                at,
                "nva",
                say!(self, "TTL expired: the NVA sends Time Exceeded"),
            );
            return self.drop_at(at, DropReason::TtlExceeded);
        }
        let os = &w.cp.nva_tables[n.idx()];
        let i = self.hop(at, "nva", String::new());
        let mut note = String::new();
        if sent_here {
            note = say!(self, "sent by the NVA's OS; ");
        } else {
            self.b.packet.outer_mut().ttl -= 1;
            self.set_hop(i, |h| h.effects.ttl_decrement = true);
        }
        let mut encap_note = None;
        let mut dst = o.header.dst;
        for depth in 0..4 {
            // The first lookup routes the packet; after an encapsulation the
            // outer packet is routed by the underlay only.
            let (all, under) = &*w.nva_fibs[n.idx()];
            self.looked_up(dst);
            let found = if depth == 0 { all } else { under }
                .lookup(dst)
                .map(|&k| &os.entries[k as usize]);
            let Some(e) = found else {
                let v = say!(self, "{note}no OS route for {dst}");
                self.set_hop(i, |h| h.decision = v);
                return self.drop_at(at, DropReason::NvaNoRoute);
            };
            match &e.next_hop {
                OsNextHop::Blackhole => {
                    let v = say!(self, "{note}OS route {} is a blackhole", e.prefix);
                    self.set_hop(i, |h| h.decision = v);
                    return self.drop_at(at, DropReason::NvaBlackhole);
                }
                OsNextHop::Nic(x) => {
                    let v = say!(
                        self,
                        "{note}OS route {} out of nic {}",
                        e.prefix,
                        t.nic(*x).name
                    );
                    self.set_hop(i, |h| h.decision = v);
                    self.set_hop(i, |h| h.encap = encap_note);
                    return Step::Go(At::NicOut(*x));
                }
                OsNextHop::Via(ip) => {
                    let egress = nva
                        .nics
                        .iter()
                        .copied()
                        .find(|&x| w.fixed.subnet_ranges[t.nic(x).subnet.idx()].contains_addr(*ip))
                        .or(nva.nics.first().copied());
                    let Some(x) = egress else {
                        let v = say!(self, "the NVA has no NIC");
                        self.set_hop(i, |h| h.decision = v);
                        return self.drop_at(at, DropReason::NvaNoRoute);
                    };
                    let v = say!(
                        self,
                        "{note}OS route {} via {ip} out of nic {} (the NIC routes by its own table, R42)",
                        e.prefix,
                        t.nic(x).name
                    );
                    self.set_hop(i, |h| h.decision = v);
                    self.set_hop(i, |h| h.encap = encap_note);
                    return Step::Go(At::NicOut(x));
                }
                OsNextHop::Tunnel(k) => {
                    let Some(tun) = nva.tunnels.get(*k) else {
                        return self.drop_at(at, DropReason::NvaNoRoute);
                    };
                    if let Some(r) = self.tunnel_fails(Node::Nva(n), *k) {
                        let v = say!(
                            self,
                            "{note}OS route {} into tunnel {}, which is down",
                            e.prefix,
                            tun.name
                        );
                        self.set_hop(i, |h| h.decision = v);
                        return self.drop_at(at, r);
                    }
                    let inner = self.b.packet.outer().header;
                    let inner_len = self.b.packet.outer().len;
                    let (enc, header) = encapsulate(tun, &inner);
                    let len = encapsulated_len(enc, inner_len);
                    let mut frag_note = String::new();
                    if len > usize::from(tun.mtu) {
                        if !tun.fragment {
                            let v = say!(
                                self,
                                "{note}OS route {} into tunnel {}: {len} bytes after encapsulation exceed the tunnel MTU {} (R55)",
                                e.prefix,
                                tun.name,
                                tun.mtu
                            );
                            self.set_hop(i, |h| h.decision = v);
                            return self.drop_at(at, DropReason::MtuExceeded);
                        }
                        let per = ((usize::from(tun.mtu) - 20) / 8) * 8;
                        frag_note = say!(
                            self,
                            ", fragmented into {} outer packets (MTU {}, R55)",
                            (len - 20).div_ceil(per.max(8)),
                            tun.mtu
                        );
                        self.set_hop(i, |h| h.effects.fragment = Some(tun.mtu));
                    }
                    encap_note = self
                        .text()
                        .then(|| describe_encap(enc, &header) + &frag_note);
                    self.set_hop(i, |h| h.effects.encap = Some((enc, header)));
                    let was = std::mem::take(&mut note);
                    note = say!(
                        self,
                        "{was}OS route {} into tunnel {}: encapsulated; ",
                        e.prefix,
                        tun.name
                    );
                    if !self.push_outer(enc, header, len) {
                        break;
                    }
                    dst = header.dst;
                }
            }
        }
        let v = say!(self, "{note}tunnels nest too deep");
        self.set_hop(i, |h| h.decision = v);
        self.drop_at(at, DropReason::NvaNoRoute)
    }
}
