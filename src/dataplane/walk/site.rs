//! Gateways and on-premises sites: a site's routers choosing a tunnel or a
//! gateway, a gateway forwarding from its sites with the GatewaySubnet's
//! routes (R40), a gateway handing traffic to a site, a site delivering.

use super::encap::{describe_encap, encapsulate, encapsulated_len};
use super::{Step, Walk};
use crate::control::bgp::Node;
use crate::control::effective;
use crate::dataplane::verdict::{At, DropReason, Outcome, Place};
use crate::dataplane::world::GatewayTarget;
use crate::topology::*;

impl<const REC: bool> Walk<'_, REC> {
    /// A gateway forwards what its sites send with the GatewaySubnet's
    /// effective routes (R40); the allow-forwarded-traffic check does not
    /// apply to traffic a gateway forwards (R49).
    pub(super) fn gateway_in(&mut self, g: GatewayId) -> Step {
        let w = self.world;
        let t = w.t();
        let at = At::GatewayIn(g);
        if let Some(r) = self.speaker_fails(Node::Gateway(g)) {
            self.hop(at, "gateway-in", say!(self, "the gateway is down"));
            return self.drop_at(at, r);
        }
        let vnet = t.gateway(g).vnet;
        let Some(subnet) = w.fixed.gateway_subnet[g.idx()] else {
            self.hop(
                at,
                "gateway-in",
                say!(self, "the gateway's VNet has no GatewaySubnet"),
            );
            return self.drop_at(at, DropReason::NoRoute);
        };
        self.sdn_out(at, "gateway-in", subnet, vnet, None)
    }

    /// A site's routers: into a tunnel when BGP inside it taught the route,
    /// else to the gateway that taught it (or whose VNet holds the
    /// destination, for static VPN connections).
    pub(super) fn site_out(&mut self, s: SiteId) -> Step {
        let w = self.world;
        let t = w.t();
        let site = &t.sites[s.idx()];
        let at = At::SiteOut(s);
        let me = Node::Site(s);
        let bgp = &w.cp.bgp;
        for depth in 0..3 {
            let dst = self.b.packet.outer().header.dst;
            self.looked_up(dst);
            let best = w.site_best(s, dst);
            let mut choice: Option<(String, Step)> = None;
            if let Some((prefix, set)) = best
                && let Some(path) = set.first()
                && let Some(si) = path.session
            {
                let sess = &bgp.sessions[si];
                let peer = sess.other(me);
                let cfg = if sess.a == me { sess.cfg_a } else { sess.cfg_b };
                let over = cfg.and_then(|i| site.bgp.get(i)).and_then(|c| c.over);
                match (peer, over) {
                    (Node::Nva(_), Some(k)) if depth == 0 => {
                        let Some(tun) = site.tunnels.get(k) else {
                            break;
                        };
                        if let Some(r) = self.tunnel_fails(me, k) {
                            self.hop(
                                at,
                                "site-out",
                                say!(
                                    self,
                                    "BGP route {prefix} into tunnel {}, which is down",
                                    tun.name
                                ),
                            );
                            return self.drop_at(at, r);
                        }
                        let inner = self.b.packet.outer().header;
                        let (enc, header) = encapsulate(tun, &inner);
                        let len = encapsulated_len(enc, self.b.packet.outer().len);
                        let i = self.hop(
                            at,
                            "site-out",
                            say!(
                                self,
                                "BGP route {prefix} from {} into tunnel {}: encapsulated",
                                peer.name(t),
                                tun.name
                            ),
                        );
                        let v = self.text().then(|| describe_encap(enc, &header));
                        self.set_hop(i, |h| h.encap = v);
                        self.set_hop(i, |h| h.effects.encap = Some((enc, header)));
                        if !self.push_outer(enc, header, len) {
                            break;
                        }
                        continue;
                    }
                    (Node::Gateway(g), _) => {
                        choice = Some((
                            say!(
                                self,
                                "BGP route {prefix} from gateway {}",
                                t.gateway(g).name
                            ),
                            Step::Go(At::GatewayIn(g)),
                        ));
                    }
                    (Node::Msee(_), _) => {
                        if let Some(g) = t.gateways.iter().position(|g| {
                            effective::gateway_next_hops(g).contains(&path.next_hop)
                                || g.ips.contains(&path.next_hop)
                        }) {
                            choice = Some((
                                say!(
                                    self,
                                    "BGP route {prefix} over ExpressRoute to gateway {}",
                                    t.gateways[g].name
                                ),
                                Step::Go(At::GatewayIn(GatewayId(g as u32))),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            if choice.is_none() {
                // Static connections: the gateway whose VNet (or transit spokes) holds dst.
                let served = w
                    .site_connection(s, dst)
                    .and_then(|k| site.connections.get(k));
                if let Some(c) = served {
                    choice = Some((
                        say!(self, "connection to gateway {}", t.gateway(c.gateway).name),
                        Step::Go(At::GatewayIn(c.gateway)),
                    ));
                }
            }
            return match choice {
                Some((why, step)) => {
                    self.hop(at, "site-out", why);
                    step
                }
                // A public address: the site's Internet access.
                None if crate::topology::is_public(dst) => {
                    let i = self.hop(at, "site-out", String::new());
                    let (why, step) = self.over_internet(i, None);
                    self.set_hop(i, |h| h.decision = why);
                    step
                }
                None => {
                    self.hop(
                        at,
                        "site-out",
                        say!(self, "the site has no route toward {dst}"),
                    );
                    self.drop_at(at, DropReason::SiteNoRoute)
                }
            };
        }
        self.hop(at, "site-out", say!(self, "tunnels nest too deep"));
        self.drop_at(at, DropReason::SiteNoRoute)
    }

    pub(super) fn gateway(&mut self, g: GatewayId) -> Step {
        let w = self.world;
        let t = w.t();
        let at = At::Gateway(g);
        if let Some(r) = self.speaker_fails(Node::Gateway(g)) {
            self.hop(at, "gateway", say!(self, "the gateway is down"));
            return self.drop_at(at, r);
        }
        let dst = self.b.packet.outer().header.dst;
        // The site, circuit or NVA whose route the gateway chose; else the
        // first connected site holding the destination.
        let target = match w.gateway_target(g, dst) {
            Some(GatewayTarget::Site(s)) if w.site_holds(s, dst) => Some(GatewayTarget::Site(s)),
            Some(x @ (GatewayTarget::Nva(_) | GatewayTarget::Gateway(_))) => Some(x),
            _ => t
                .sites
                .iter()
                .enumerate()
                .find(|&(i, s)| {
                    s.connections.iter().any(|c| c.gateway == g)
                        && w.site_holds(SiteId(i as u32), dst)
                })
                .map(|(i, _)| GatewayTarget::Site(SiteId(i as u32))),
        };
        match target {
            Some(GatewayTarget::Site(si)) => {
                let kind = t.gateway(g).kind.as_str();
                self.hop(
                    at,
                    "gateway",
                    say!(self, "to site {} over {kind}", t.sites[si.idx()].name),
                );
                Step::Go(At::Site(si))
            }
            // BGP over an IPsec connection with an NVA: the inner packet
            // reaches the NVA's operating system.
            Some(GatewayTarget::Nva(n)) => {
                self.hop(
                    at,
                    "gateway",
                    say!(
                        self,
                        "BGP route from nva {}: over the IPsec connection to it",
                        t.nvas[n.idx()].name
                    ),
                );
                Step::Go(At::Nva(n))
            }
            Some(GatewayTarget::Gateway(other)) => {
                self.hop(
                    at,
                    "gateway",
                    say!(
                        self,
                        "over the VNet-to-VNet connection to gateway {}",
                        t.gateway(other).name
                    ),
                );
                Step::Go(At::GatewayIn(other))
            }
            None => {
                self.hop(at, "gateway", say!(self, "no connected site holds {dst}"));
                self.drop_at(at, DropReason::GatewayNoRoute)
            }
        }
    }

    pub(super) fn site(&mut self, s: SiteId) -> Step {
        let w = self.world;
        let site = &w.t().sites[s.idx()];
        let at = At::Site(s);
        let o = *self.b.packet.outer();
        if let Some(enc) = o.encap
            && site.cpe == Some(o.header.dst)
        {
            return self.tunnel_arrival(at, "site", Node::Site(s), &site.tunnels, enc, "the CPE ");
        }
        let dst = o.header.dst;
        if w.site_holds(s, dst) {
            self.hop(at, "site", say!(self, "delivered on premises to {dst}"));
            return Step::Done(Outcome::Delivered(Place::At(at)));
        }
        self.hop(at, "site", say!(self, "the site does not hold {dst}"));
        self.drop_at(at, DropReason::SiteNoRoute)
    }
}
