//! The Internet as a transit: a packet whose route says Internet reaches
//! the modelled object that owns its destination (a NIC's public IP, a
//! gateway's, a site's VPN device), with Azure's address translation at
//! the edge; an address nobody in the topology owns ends at the Internet.

use super::{Step, Walk};
use crate::dataplane::verdict::{At, Outcome, Place};
use crate::dataplane::world::PublicOwner;
use crate::topology::*;

impl<const REC: bool> Walk<'_, REC> {
    /// Leaves for the Internet from hop `i` (`nic`: the sending NIC, whose
    /// public IP becomes the source: outbound SNAT). Called from the walk's
    /// loop ([`Step::Internet`]), out of line: within the SDN hop it slows
    /// the walks that never leave Azure.
    #[inline(never)]
    pub(super) fn over_internet(&mut self, i: usize, nic: Option<NicId>) -> (String, Step) {
        let w = self.world;
        let t = w.t();
        let h = self.b.packet.outer().header;
        let (mut src, mut dst) = (h.src, h.dst);
        let mut note = String::new();
        if let Some(n) = nic
            && let Some(public) = t.nic(n).public_ip
            && public.is_ipv4() == src.is_ipv4()
            && t.nic(n).ips.contains(&src)
        {
            src = public;
            note = say!(self, "source translated to public IP {public}; ");
        }
        let step = match w.public_owner(dst) {
            Some(PublicOwner::Nic(n)) => {
                let nic = t.nic(n);
                let private = nic
                    .ips
                    .iter()
                    .copied()
                    .find(|ip| ip.is_ipv4() == dst.is_ipv4())
                    .unwrap_or(dst);
                note = say!(
                    self,
                    "{note}over the Internet to nic {}'s public IP, translated to {private}",
                    nic.name
                );
                dst = private;
                Step::Go(At::NicIn(n))
            }
            Some(PublicOwner::Gateway(g)) => {
                note = say!(
                    self,
                    "{note}over the Internet to gateway {}'s public IP",
                    t.gateway(g).name
                );
                Step::Done(Outcome::Delivered(Place::At(At::Gateway(g))))
            }
            Some(PublicOwner::Site(s)) => {
                note = say!(
                    self,
                    "{note}over the Internet to site {}'s VPN device",
                    t.sites[s.idx()].name
                );
                Step::Go(At::Site(s))
            }
            None => {
                note = say!(self, "{note}leaves for the Internet");
                Step::Done(Outcome::Delivered(Place::Internet))
            }
        };
        if (src, dst) != (h.src, h.dst) {
            let o = self.b.packet.outer_mut();
            o.header.src = src;
            o.header.dst = dst;
            if let (std::net::IpAddr::V4(s4), std::net::IpAddr::V4(d4)) = (src, dst) {
                self.set_hop(i, |h| h.effects.nat = Some((s4, d4)));
            }
        }
        (note, step)
    }
}
