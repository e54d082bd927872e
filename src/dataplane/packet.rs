//! A packet as the walk sees it: a stack of IP headers, the outermost last.

use std::fmt;
use std::net::IpAddr;

use arrayvec::ArrayVec;
use serde::Serialize;

use super::{DEFAULT_LEN, DEFAULT_TTL, MAX_LAYERS, PROTO_ESP, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// One IP header's worth of flow fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// A protocol number's name as headers print it.
pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        PROTO_ICMP => "icmp",
        PROTO_ESP => "esp",
        _ => "ip",
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = proto_name(self.proto);
        if matches!(self.proto, PROTO_TCP | PROTO_UDP) {
            write!(
                f,
                "{p} {}:{} → {}:{}",
                self.src, self.sport, self.dst, self.dport
            )
        } else {
            write!(f, "{p} {} → {}", self.src, self.dst)
        }
    }
}

/// How an outer header wraps the one below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Encap {
    /// RFC 7348: UDP to the tunnel's port (4789), VNI.
    Vxlan { vni: u32 },
    /// RFC 4303 tunnel mode, in UDP 4500 (NAT-T) or raw (IP protocol 50).
    Esp { spi: u32, udp: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layer {
    pub header: Header,
    pub ttl: u8,
    /// Set on outer layers: how this layer wraps the one below.
    pub encap: Option<Encap>,
    /// Length of this layer's IP datagram in bytes (for MTU checks, R55).
    pub len: usize,
}

/// A packet: `layers[0]` is the original, the last is the outermost.
/// Held inline (no allocation): at most [`MAX_LAYERS`] headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub layers: ArrayVec<Layer, MAX_LAYERS>,
}

impl Packet {
    pub fn new(header: Header) -> Self {
        Packet::with_ttl(header, DEFAULT_TTL)
    }
    pub fn with_ttl(header: Header, ttl: u8) -> Self {
        Packet::sized(header, ttl, DEFAULT_LEN)
    }
    /// A packet whose IP datagram is `len` bytes long.
    pub fn sized(header: Header, ttl: u8, len: usize) -> Self {
        let mut layers = ArrayVec::new();
        layers.push(Layer {
            header,
            ttl,
            encap: None,
            len,
        });
        Packet { layers }
    }
    /// Makes this packet a new one of one layer, in place (the fast path's
    /// way to reuse a walk buffer without moving the whole inline array).
    #[inline]
    pub fn reset(&mut self, header: Header, ttl: u8, len: usize) {
        self.layers.clear();
        self.layers.push(Layer {
            header,
            ttl,
            encap: None,
            len,
        });
    }
    pub fn outer(&self) -> &Layer {
        self.layers.last().expect("a packet has at least one layer")
    }
    pub(super) fn outer_mut(&mut self) -> &mut Layer {
        self.layers
            .last_mut()
            .expect("a packet has at least one layer")
    }
}

/// A per-flow hash (R18: the fields are UNCONFIRMED; a 5-tuple is modelled).
pub fn flow_hash(h: &Header) -> u64 {
    // FNV-1a over the addresses as 16-byte little-endian integers, then
    // proto/ports as a 16-byte integer. Zero bytes only multiply by the
    // prime, so an IPv4 address's 12 high zero bytes are one multiplication
    // by PRIME^12 (the same value, a third of the steps).
    const PRIME: u64 = 0x0100_0000_01b3;
    const fn power(n: u32) -> u64 {
        let (mut x, mut i) = (1u64, 0);
        while i < n {
            x = x.wrapping_mul(PRIME);
            i += 1;
        }
        x
    }
    fn eat(mut x: u64, bytes: &[u8]) -> u64 {
        for &b in bytes {
            x ^= u64::from(b);
            x = x.wrapping_mul(PRIME);
        }
        x
    }
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for a in [h.src, h.dst] {
        x = match a {
            IpAddr::V4(v) => eat(x, &u32::from(v).to_le_bytes()).wrapping_mul(power(12)),
            IpAddr::V6(v) => eat(x, &u128::from(v).to_le_bytes()),
        };
    }
    let ports = u64::from(h.proto) << 32 | u64::from(h.sport) << 16 | u64::from(h.dport);
    eat(x, &ports.to_le_bytes()[..5]).wrapping_mul(power(11))
}
