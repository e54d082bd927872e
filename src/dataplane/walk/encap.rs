//! Tunnels: the outer header a tunnel puts around a packet (VXLAN, ESP),
//! its length, and how its far end recognises it.

use super::{Step, Walk};
use crate::control::bgp::Node;
use crate::dataplane::DEFAULT_TTL;
use crate::dataplane::packet::{Encap, Header, Layer, flow_hash};
use crate::dataplane::verdict::{At, DropReason};
use crate::dataplane::{PROTO_ESP, PROTO_UDP};
use crate::topology::*;

impl<const REC: bool> Walk<'_, REC> {
    /// Pushes a tunnel's outer header, as the tunnel's owner originates it
    /// (a fresh TTL); false when the packet already has as many headers as
    /// it can hold.
    pub(super) fn push_outer(&mut self, enc: Encap, header: Header, len: usize) -> bool {
        self.push_layer(Layer {
            header,
            ttl: DEFAULT_TTL,
            encap: Some(enc),
            len,
        })
    }

    /// Tunnel traffic that reached the tunnel's far end (`owner`: an NVA,
    /// or a site's CPE, `who` in the decision): the tunnel it came on is
    /// found by its endpoints and encapsulation, decapsulated, and the
    /// inner packet goes on at `at`. A tunnel that is down, or none that
    /// matches, drops it.
    pub(super) fn tunnel_arrival(
        &mut self,
        at: At,
        kind: &'static str,
        owner: Node,
        tunnels: &[Tunnel],
        enc: Encap,
        who: &str,
    ) -> Step {
        let o = *self.b.packet.outer();
        let k = tunnels.iter().position(|k| {
            k.local == o.header.dst && k.remote == o.header.src && tunnel_matches(k, enc)
        });
        if let Some(r) = k.and_then(|k| self.tunnel_fails(owner, k)) {
            self.hop(
                at,
                kind,
                say!(self, "tunnel traffic on a tunnel that is down"),
            );
            return self.drop_at(at, r);
        }
        let Some(tun) = k.map(|k| &tunnels[k]) else {
            self.hop(
                at,
                kind,
                say!(
                    self,
                    "tunnel traffic from {} matches no tunnel of {}",
                    o.header.src,
                    self.world.name(at)
                ),
            );
            return self.drop_at(at, DropReason::UnknownTunnel);
        };
        let i = self.hop(
            at,
            kind,
            say!(self, "{who}decapsulates tunnel {}", tun.name),
        );
        let v = self.text().then(|| describe_encap(enc, &o.header));
        self.set_hop(i, |h| h.decap = v);
        self.set_hop(i, |h| h.effects.decap = Some(enc));
        self.pop_layer();
        Step::Go(at)
    }
}

pub(super) fn tunnel_matches(t: &Tunnel, e: Encap) -> bool {
    match (t.kind, e) {
        (TunnelKind::Vxlan { vni, .. }, Encap::Vxlan { vni: got }) => vni == got,
        (TunnelKind::Esp { spi_in, udp, .. }, Encap::Esp { spi, udp: got }) => {
            spi_in == spi && udp == got
        }
        _ => false,
    }
}

/// The outer header a tunnel puts around `inner` (RFC 7348: UDP source port
/// from the inner flow hash, in 49152–65535; RFC 3948: UDP 4500 for NAT-T).
pub fn encapsulate(t: &Tunnel, inner: &Header) -> (Encap, Header) {
    let sport = 49152 + (flow_hash(inner) % 16384) as u16;
    match t.kind {
        TunnelKind::Vxlan { vni, port } => (
            Encap::Vxlan { vni },
            Header {
                src: t.local,
                dst: t.remote,
                proto: PROTO_UDP,
                sport,
                dport: port,
            },
        ),
        TunnelKind::Esp {
            spi_out, udp: true, ..
        } => (
            Encap::Esp {
                spi: spi_out,
                udp: true,
            },
            Header {
                src: t.local,
                dst: t.remote,
                proto: PROTO_UDP,
                sport: 4500,
                dport: 4500,
            },
        ),
        TunnelKind::Esp {
            spi_out,
            udp: false,
            ..
        } => (
            Encap::Esp {
                spi: spi_out,
                udp: false,
            },
            Header {
                src: t.local,
                dst: t.remote,
                proto: PROTO_ESP,
                sport: 0,
                dport: 0,
            },
        ),
    }
}

/// The outer IP datagram's length around an inner one of `inner` bytes:
/// VXLAN adds 50 bytes in all (R53: inner Ethernet 14 + VXLAN 8 + UDP 8 + IP
/// 20); ESP adds IP 20 (+ UDP 8) + SPI/sequence 8 + padding to 4 bytes + 2.
pub fn encapsulated_len(e: Encap, inner: usize) -> usize {
    match e {
        Encap::Vxlan { .. } => inner + 14 + 8 + 8 + 20,
        Encap::Esp { udp, .. } => {
            let pad = (4 - (inner + 2) % 4) % 4;
            20 + if udp { 8 } else { 0 } + 8 + inner + pad + 2
        }
    }
}

pub(super) fn describe_encap(e: Encap, outer: &Header) -> String {
    match e {
        Encap::Vxlan { vni } => format!("VXLAN vni {vni}, outer {outer}"),
        Encap::Esp { spi, udp: true } => format!(
            "ESP spi {spi:#x} in UDP 4500, outer {} → {}",
            outer.src, outer.dst
        ),
        Encap::Esp { spi, udp: false } => {
            format!("ESP spi {spi:#x}, outer {} → {}", outer.src, outer.dst)
        }
    }
}
