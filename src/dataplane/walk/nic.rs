//! A NIC: its egress (anti-spoofing, then one decision with its subnet's
//! compiled table, SPEC §2 per next-hop type) and its ingress (delivery to
//! the VM, hand-off to an NVA's OS, or a drop, R44).

use super::{Step, Walk};
use crate::control::effective::{self, NextHopType};
use crate::dataplane::packet::flow_hash;
use crate::dataplane::verdict::{At, DropReason, Outcome, Place};
use crate::dataplane::world::{NextHopAt, Owner};
use crate::topology::*;

impl<const REC: bool> Walk<'_, REC> {
    pub(super) fn nic_out(&mut self, n: NicId) -> Step {
        let nic = self.world.t().nic(n);
        self.sdn_out(At::NicOut(n), "nic-egress", nic.subnet, nic.vnet, Some(n))
    }

    /// One SDN decision with a subnet's compiled table: a NIC's egress (with
    /// the anti-spoofing check of `nic`) or a gateway's forwarding.
    // Inlined (two callers), and `deliver_to` too: their `(String, Step)`
    // results otherwise go through memory on every hop.
    #[inline(always)]
    pub(super) fn sdn_out(
        &mut self,
        at: At,
        kind: &'static str,
        subnet: SubnetId,
        vnet: VnetId,
        nic: Option<NicId>,
    ) -> Step {
        let w = self.world;
        let t = w.t();
        // The two addresses, read from the packet (a copy of the whole
        // header would be read back across two stack stores at every hop:
        // a store-forwarding stall).
        let (src, dst) = {
            let h = &self.b.packet.outer().header;
            (h.src, h.dst)
        };
        if let Some(n) = nic
            && !t.nic(n).ip_forwarding
            && !t.nic(n).ips.contains(&src)
        {
            self.hop(
                at,
                kind,
                say!(
                    self,
                    "source is not the NIC's own address and IP forwarding is off (R44)"
                ),
            );
            return self.drop_at(at, DropReason::SpoofedSource);
        }
        if effective::PLATFORM_IPS.contains(&dst) {
            self.hop(
                at,
                kind,
                say!(self, "platform address: answered by the host (R19)"),
            );
            return Step::Done(Outcome::Delivered(Place::Platform(dst)));
        }
        let fib = &w.fibs.by_subnet[subnet.idx()];
        self.looked_up(dst);
        let action = fib.lookup_indexed(dst);
        let i = self.hop(at, kind, String::new());
        if REC && self.explain {
            let v = w.route_used(subnet, dst).map(Box::new);
            self.set_hop(i, |h| h.route = v);
        }
        let Some((ai, action)) = action else {
            let v = say!(self, "no route matches");
            self.set_hop(i, |h| h.decision = v);
            return self.drop_at(at, DropReason::NoRoute);
        };
        let (decision, next): (String, Step) = match action.next_hop_type {
            NextHopType::VnetLocal => match w.fixed.owner_in(vnet, &dst) {
                Some(o) => self.deliver_to(at, o, "local delivery in the VNet"),
                None => (
                    say!(self, "no NIC owns the destination in the VNet (R51)"),
                    self.drop_at(at, DropReason::NoOwner),
                ),
            },
            NextHopType::VNetPeering | NextHopType::VNetGlobalPeering => {
                match w.fixed.owner_peered(vnet, &dst) {
                    Some((o, pid)) => match w.peering_check(vnet, pid, src, nic.is_none()) {
                        Some(r) => (
                            say!(self, "peering {} refuses it", t.peerings[pid.idx()].name),
                            self.drop_at(at, r),
                        ),
                        None => self.deliver_to(
                            at,
                            o,
                            &say!(self, "over peering {}", t.peerings[pid.idx()].name),
                        ),
                    },
                    None => (
                        say!(self, "no NIC owns the destination in the peered VNet (R51)"),
                        self.drop_at(at, DropReason::NoOwner),
                    ),
                }
            }
            NextHopType::VirtualAppliance | NextHopType::VirtualNetworkGateway => {
                let n = action.ips.len();
                if n == 0 {
                    return self.finish_drop(
                        i,
                        "the route has no next-hop address",
                        at,
                        DropReason::NoOwner,
                    );
                }
                let k = if n == 1 {
                    0
                } else {
                    let h = self.b.packet.outer().header;
                    self.choose(n, || flow_hash(&h))
                };
                // Read in place: an `Option<IpAddr>` built on the stack
                // and read back stalls on store forwarding.
                let ip = &action.ips[k];
                let ecmp = if action.ips.len() > 1 {
                    say!(
                        self,
                        " (ECMP: flow hash picks {ip} of {})",
                        action.ips.len()
                    )
                } else {
                    String::new()
                };
                match w.next_hops[subnet.idx()][ai][k] {
                    NextHopAt::Local(o) => self.deliver_to(
                        at,
                        o,
                        &say!(self, "next hop {ip}{ecmp}, delivered unchanged (R43)"),
                    ),
                    NextHopAt::Peered(o, pid) => {
                        match w.peering_check(vnet, pid, src, nic.is_none()) {
                            Some(r) => (
                                say!(
                                    self,
                                    "next hop {ip} across peering {}, refused",
                                    t.peerings[pid.idx()].name
                                ),
                                self.drop_at(at, r),
                            ),
                            None => self.deliver_to(
                                at,
                                o,
                                &say!(
                                    self,
                                    "next hop {ip}{ecmp} across peering {}",
                                    t.peerings[pid.idx()].name
                                ),
                            ),
                        }
                    }
                    NextHopAt::Gateway(g) => (
                        say!(self, "to gateway {}{ecmp}", t.gateway(g).name),
                        Step::Go(At::Gateway(g)),
                    ),
                    NextHopAt::Nowhere => (
                        say!(
                            self,
                            "no NIC, load balancer or gateway owns next hop {ip} (R51)"
                        ),
                        self.drop_at(at, DropReason::NoOwner),
                    ),
                }
            }
            NextHopType::Internet => (String::new(), Step::Internet { hop: i, nic }),
            NextHopType::VirtualNetworkServiceEndpoint => (
                say!(self, "to the Azure service over its endpoint"),
                Step::Done(Outcome::Delivered(Place::ServiceEndpoint)),
            ),
            NextHopType::None => (
                say!(self, "next hop type None: dropped"),
                self.drop_at(at, DropReason::RouteNone),
            ),
        };
        self.set_hop(i, |h| h.decision = decision);
        next
    }

    #[inline(always)]
    pub(super) fn deliver_to(&mut self, at: At, o: Owner, how: &str) -> (String, Step) {
        let t = self.world.t();
        match o {
            Owner::Nic(n) => (
                say!(self, "{how} → nic {}", t.nic(n).name),
                Step::Go(At::NicIn(n)),
            ),
            Owner::LoadBalancer(l) => {
                let lb = &t.load_balancers[l.idx()];
                // Health probes: new flows go to healthy backends only.
                let healthy = &self.world.healthy_backends[l.idx()];
                if healthy.is_empty() {
                    return (
                        say!(
                            self,
                            "{how} → load balancer {} has no healthy backend",
                            lb.name
                        ),
                        self.drop_at(at, DropReason::NoOwner),
                    );
                }
                let h = self.b.packet.outer().header;
                // Only flows a rule takes are balanced: HA ports takes all.
                let Some(rule) = lb.rule_for(h.proto, h.dport) else {
                    return (
                        say!(
                            self,
                            "{how} → load balancer {} has no rule for {} port {} (HA ports would take it)",
                            lb.name,
                            crate::dataplane::packet::proto_name(h.proto),
                            h.dport
                        ),
                        self.drop_at(at, DropReason::NoLbRule),
                    );
                };
                let floating = rule.floating_ip;
                let b = healthy[self.choose(healthy.len(), || flow_hash(&h))];
                if h.dst == lb.frontend_ip {
                    // Addressed to the frontend: the backend's VM gets it,
                    // translated to its own address with floating IP off;
                    // with floating IP on, to the frontend address (which
                    // the VM holds on a loopback).
                    let backend_ip = t
                        .nic(b)
                        .ips
                        .iter()
                        .copied()
                        .find(|ip| ip.is_ipv4() == h.dst.is_ipv4());
                    let what = match backend_ip {
                        Some(ip) if !floating => {
                            self.b.packet.outer_mut().header.dst = ip;
                            if let (std::net::IpAddr::V4(s4), std::net::IpAddr::V4(d4)) =
                                (h.src, ip)
                            {
                                self.set_last_hop(|x| x.effects.nat = Some((s4, d4)));
                            }
                            say!(self, ", destination translated to {ip}")
                        }
                        _ => say!(self, ", floating IP: destination kept"),
                    };
                    return (
                        say!(
                            self,
                            "{how} → load balancer {} frontend → backend nic {}{what}: delivered to its VM",
                            lb.name,
                            t.nic(b).name
                        ),
                        Step::Done(Outcome::Delivered(Place::At(At::NicIn(b)))),
                    );
                }
                (
                    say!(
                        self,
                        "{how} → load balancer {} → backend nic {}",
                        lb.name,
                        t.nic(b).name
                    ),
                    Step::Go(At::NicIn(b)),
                )
            }
            Owner::Gateway(g) => {
                let gw = t.gateway(g);
                if gw.ips.contains(&self.b.packet.outer().header.dst) {
                    (
                        say!(self, "{how} → gateway {} itself", gw.name),
                        Step::Done(Outcome::Delivered(Place::At(At::Gateway(g)))),
                    )
                } else {
                    (
                        say!(self, "{how} → gateway {}", gw.name),
                        Step::Go(At::Gateway(g)),
                    )
                }
            }
            Owner::RouteServer(r) => {
                let rs = &t.route_servers[r.idx()];
                if rs.ips.contains(&self.b.packet.outer().header.dst) {
                    (
                        say!(self, "{how} → route server {}", rs.name),
                        Step::Done(Outcome::Delivered(Place::RouteServer(r))),
                    )
                } else {
                    (
                        say!(
                            self,
                            "{how} → route server {}, which is not in the data path (R22)",
                            rs.name
                        ),
                        self.drop_at(at, DropReason::NoOwner),
                    )
                }
            }
        }
    }

    pub(super) fn nic_in(&mut self, n: NicId) -> Step {
        let w = self.world;
        let nic = w.t().nic(n);
        let at = At::NicIn(n);
        let dst = self.b.packet.outer().header.dst;
        let nva = w.fixed.nic_nva[n.idx()];
        if nic.power != PowerState::Running {
            self.hop(
                at,
                "nic-ingress",
                say!(self, "the VM is {} (R51)", nic.power.as_str()),
            );
            return self.drop_at(at, DropReason::VmNotRunning);
        }
        if let Some(v) = nva
            && w.os_outside(v)
        {
            self.hop(
                at,
                "nic-ingress",
                say!(self, "handed to the NVA's own software"),
            );
            return Step::Done(Outcome::Delivered(Place::At(at)));
        }
        if nic.ips.contains(&dst) {
            return match nva {
                Some(v) => {
                    self.hop(
                        at,
                        "nic-ingress",
                        say!(self, "addressed to the NIC → NVA OS"),
                    );
                    Step::Go(At::Nva(v))
                }
                None => {
                    self.hop(
                        at,
                        "nic-ingress",
                        say!(self, "addressed to the NIC: delivered to the VM"),
                    );
                    Step::Done(Outcome::Delivered(Place::At(at)))
                }
            };
        }
        if !nic.ip_forwarding {
            self.hop(
                at,
                "nic-ingress",
                say!(
                    self,
                    "not addressed to the NIC and IP forwarding is off (R44)"
                ),
            );
            return self.drop_at(at, DropReason::IpForwardingDisabled);
        }
        match nva {
            Some(v) => {
                self.hop(
                    at,
                    "nic-ingress",
                    say!(self, "not addressed to the NIC, IP forwarding on → NVA OS"),
                );
                Step::Go(At::Nva(v))
            }
            None => {
                self.hop(
                    at,
                    "nic-ingress",
                    say!(self, "IP forwarding on, but the VM is not a router"),
                );
                self.drop_at(at, DropReason::NotARouter)
            }
        }
    }
}
