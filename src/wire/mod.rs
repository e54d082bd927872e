//! What etherparse does not do: in-place rewrites and encapsulation, on
//! borrowed bytes, with no allocation beyond the caller's reusable buffer.
//!
//! - [`decrement_ttl`]: IPv4 TTL − 1 with the RFC 1624 incremental checksum
//!   update, or IPv6 hop limit − 1.
//! - [`vxlan_encap`] / [`vxlan_decap`]: RFC 7348 framing (outer Ethernet,
//!   IPv4, UDP with a zero checksum, the 8-byte VXLAN header with the I flag,
//!   then the inner Ethernet frame).
//! - [`esp_encap`] / [`esp_decap`]: RFC 4303 tunnel mode framing (SPI,
//!   sequence number, the inner IP datagram, padding to a 4-byte boundary, Pad
//!   Length, Next Header 4 or 41), raw (IP protocol 50) or inside UDP 4500
//!   (RFC 3948). There is no real cipher and no ICV: the payload travels in
//!   clear ("NULL encryption"), which is what a simulator needs to show.
//!
//! ```text
//! VXLAN (RFC 7348 §5)                       ESP (RFC 4303 §2)
//!  0                   1                   2                   3
//!  |R|R|R|R|I|R|R|R|   Reserved (24)   |    |   Security Parameters Index (32)  |
//!  |     VXLAN Network Identifier (24) | Rsv|   |       Sequence Number (32)        |
//!                                           |  payload … | padding | PadLen | NextHdr |
//! ```
//!
//! Outer headers are IPv4 only (tunnel endpoints in the topology are IPv4).

use std::fmt;
use std::net::Ipv4Addr;

/// The MAC address the Azure fabric uses on the SDN side (12:34:56:78:9a:bc).
pub const AZURE_ROUTER_MAC: [u8; 6] = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc];
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const VXLAN_PORT: u16 = 4789;
pub const NAT_T_PORT: u16 = 4500;
const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
const VXLAN_LEN: usize = 8;
const ESP_HDR_LEN: usize = 8;

/// Why bytes could not be read or rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    Truncated,
    NotIp,
    BadIpHeader,
    NotVxlan,
    NotEsp,
    BadPadding,
    TtlExpired,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated",
            WireError::NotIp => "not an IPv4 or IPv6 packet",
            WireError::BadIpHeader => "malformed IP header",
            WireError::NotVxlan => "not a VXLAN packet",
            WireError::NotEsp => "not an ESP packet",
            WireError::BadPadding => "malformed ESP trailer",
            WireError::TtlExpired => "TTL expired",
        })
    }
}

impl std::error::Error for WireError {}

/// The one's-complement checksum of `data` (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Updates a checksum for one 16-bit word changed from `m` to `m2`
/// (RFC 1624: HC' = ~(~HC + ~m + m')).
fn checksum_update(hc: u16, m: u16, m2: u16) -> u16 {
    let mut sum = u32::from(!hc) + u32::from(!m) + u32::from(m2);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Rewrites the source and destination of the IPv4 packet at the start of
/// `ip` (address translation), updating the header checksum and, in an
/// unfragmented or first-fragment TCP or UDP packet, the transport
/// checksum over the pseudo-header (a UDP checksum of 0, none, stays 0).
pub fn rewrite_addresses(ip: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), WireError> {
    if ip.len() < IPV4_LEN || ip[0] >> 4 != 4 {
        return Err(WireError::Truncated);
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl < IPV4_LEN || ip.len() < ihl {
        return Err(WireError::Truncated);
    }
    let first_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff == 0;
    let l4 = match ip[9] {
        6 if first_fragment && ip.len() >= ihl + 18 => Some(ihl + 16),
        17 if first_fragment && ip.len() >= ihl + 8 => Some(ihl + 6),
        _ => None,
    };
    let mut words = [(0u16, 0u16); 4];
    for (j, (at, k, new)) in [
        (12, 0, src.octets()),
        (12, 2, src.octets()),
        (16, 0, dst.octets()),
        (16, 2, dst.octets()),
    ]
    .into_iter()
    .enumerate()
    {
        let m = u16::from_be_bytes([ip[at + k], ip[at + k + 1]]);
        let m2 = u16::from_be_bytes([new[k], new[k + 1]]);
        words[j] = (m, m2);
        ip[at + k..at + k + 2].copy_from_slice(&new[k..k + 2]);
    }
    let mut hc = u16::from_be_bytes([ip[10], ip[11]]);
    for &(m, m2) in &words {
        hc = checksum_update(hc, m, m2);
    }
    ip[10..12].copy_from_slice(&hc.to_be_bytes());
    if let Some(c) = l4 {
        let mut sum = u16::from_be_bytes([ip[c], ip[c + 1]]);
        if !(ip[9] == 17 && sum == 0) {
            for &(m, m2) in &words {
                sum = checksum_update(sum, m, m2);
            }
            ip[c..c + 2].copy_from_slice(&sum.to_be_bytes());
        }
    }
    Ok(())
}

/// Decrements the TTL (IPv4, updating the header checksum incrementally per
/// RFC 1624: HC' = ~(~HC + ~m + m')) or the hop limit (IPv6) of the IP packet
/// at the start of `ip`. Returns the new value; a packet whose TTL would reach
/// zero is left unchanged and reported as expired.
pub fn decrement_ttl(ip: &mut [u8]) -> Result<u8, WireError> {
    let version = ip.first().ok_or(WireError::Truncated)? >> 4;
    match version {
        4 => {
            if ip.len() < IPV4_LEN {
                return Err(WireError::Truncated);
            }
            let ttl = ip[8];
            if ttl <= 1 {
                return Err(WireError::TtlExpired);
            }
            // The 16-bit word holding TTL and protocol changes from m to m'.
            let m = u16::from_be_bytes([ip[8], ip[9]]);
            ip[8] = ttl - 1;
            let m2 = u16::from_be_bytes([ip[8], ip[9]]);
            let hc = u16::from_be_bytes([ip[10], ip[11]]);
            let mut sum = u32::from(!hc) + u32::from(!m) + u32::from(m2);
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            Ok(ttl - 1)
        }
        6 => {
            if ip.len() < 40 {
                return Err(WireError::Truncated);
            }
            let hl = ip[7];
            if hl <= 1 {
                return Err(WireError::TtlExpired);
            }
            ip[7] = hl - 1;
            Ok(hl - 1)
        }
        _ => Err(WireError::NotIp),
    }
}

fn push_eth(out: &mut Vec<u8>, dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    out.extend_from_slice(&ethertype.to_be_bytes());
}

/// Appends a 20-byte IPv4 header (no options, DF set, checksum computed).
fn push_ipv4(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ttl: u8,
    payload_len: usize,
    id: u16,
) {
    let start = out.len();
    let total = (IPV4_LEN + payload_len) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x40, 0, ttl, proto, 0, 0]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    let c = checksum(&out[start..start + IPV4_LEN]);
    out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
}

fn push_udp(out: &mut Vec<u8>, sport: u16, dport: u16, payload_len: usize) {
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&((UDP_LEN + payload_len) as u16).to_be_bytes());
    // RFC 7348 §5 and RFC 3948 §2.1: the UDP checksum SHOULD be zero.
    out.extend_from_slice(&[0, 0]);
}

/// Outer header parameters shared by both tunnel kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub ip_id: u16,
}

/// Writes `inner_frame` (an Ethernet frame without FCS) wrapped in VXLAN into
/// `out` (cleared first): outer Ethernet + IPv4 + UDP (`sport` → `dport`,
/// checksum 0) + VXLAN (I flag, `vni`).
pub fn vxlan_encap(
    inner_frame: &[u8],
    o: &Outer,
    sport: u16,
    dport: u16,
    vni: u32,
    out: &mut Vec<u8>,
) {
    out.clear();
    let udp_payload = VXLAN_LEN + inner_frame.len();
    push_eth(out, o.dst_mac, o.src_mac, ETHERTYPE_IPV4);
    push_ipv4(out, o.src, o.dst, 17, o.ttl, UDP_LEN + udp_payload, o.ip_id);
    push_udp(out, sport, dport, udp_payload);
    out.extend_from_slice(&[0x08, 0, 0, 0]);
    let v = (vni & 0x00ff_ffff) << 8;
    out.extend_from_slice(&v.to_be_bytes());
    out.extend_from_slice(inner_frame);
}

/// The outer IPv4 header of an Ethernet frame: (header offset, protocol, payload).
fn outer_ipv4(frame: &[u8]) -> Result<(u8, &[u8]), WireError> {
    if frame.len() < ETH_LEN + IPV4_LEN {
        return Err(WireError::Truncated);
    }
    if u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
        return Err(WireError::NotIp);
    }
    let ip = &frame[ETH_LEN..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[0] >> 4 != 4 || ihl < IPV4_LEN || total < ihl {
        return Err(WireError::BadIpHeader);
    }
    if ip.len() < total {
        return Err(WireError::Truncated);
    }
    Ok((ip[9], &ip[ihl..total]))
}

/// The VNI and inner Ethernet frame of a VXLAN packet (Ethernet + IPv4 + UDP
/// to `port` + VXLAN). The I flag must be set; reserved bits are ignored
/// (RFC 7348: "MUST be ignored on receipt").
pub fn vxlan_decap(frame: &[u8], port: u16) -> Result<(u32, &[u8]), WireError> {
    let (proto, udp) = outer_ipv4(frame)?;
    if proto != 17 {
        return Err(WireError::NotVxlan);
    }
    if udp.len() < UDP_LEN + VXLAN_LEN {
        return Err(WireError::Truncated);
    }
    if u16::from_be_bytes([udp[2], udp[3]]) != port {
        return Err(WireError::NotVxlan);
    }
    let vx = &udp[UDP_LEN..];
    if vx[0] & 0x08 == 0 {
        return Err(WireError::NotVxlan);
    }
    let vni = u32::from_be_bytes([vx[4], vx[5], vx[6], vx[7]]) >> 8;
    Ok((vni, &vx[VXLAN_LEN..]))
}

/// Writes the IP datagram `inner_ip` in ESP tunnel mode into `out` (cleared
/// first): outer Ethernet + IPv4 (+ UDP 4500 → 4500 when `udp`) + SPI +
/// sequence + `inner_ip` + padding (1, 2, 3, … per RFC 4303 §2.4) so that Pad
/// Length and Next Header end on a 4-byte boundary + Pad Length + Next Header
/// (4 for IPv4, 41 for IPv6).
pub fn esp_encap(
    inner_ip: &[u8],
    o: &Outer,
    spi: u32,
    seq: u32,
    udp: bool,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let next_header = match inner_ip.first().map(|b| b >> 4) {
        Some(4) => 4u8,
        Some(6) => 41u8,
        _ => return Err(WireError::NotIp),
    };
    out.clear();
    let pad = (4 - (inner_ip.len() + 2) % 4) % 4;
    let esp_len = ESP_HDR_LEN + inner_ip.len() + pad + 2;
    push_eth(out, o.dst_mac, o.src_mac, ETHERTYPE_IPV4);
    if udp {
        push_ipv4(out, o.src, o.dst, 17, o.ttl, UDP_LEN + esp_len, o.ip_id);
        push_udp(out, NAT_T_PORT, NAT_T_PORT, esp_len);
    } else {
        push_ipv4(out, o.src, o.dst, 50, o.ttl, esp_len, o.ip_id);
    }
    out.extend_from_slice(&spi.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(inner_ip);
    out.extend((1..=pad as u8).take(pad));
    out.push(pad as u8);
    out.push(next_header);
    Ok(())
}

/// An ESP packet's SPI, sequence number and inner IP datagram (raw ESP or
/// ESP in UDP 4500). Padding is checked (1, 2, 3, …) and removed.
pub fn esp_decap(frame: &[u8]) -> Result<(u32, u32, &[u8]), WireError> {
    let (proto, payload) = outer_ipv4(frame)?;
    let esp = match proto {
        50 => payload,
        17 => {
            if payload.len() < UDP_LEN || u16::from_be_bytes([payload[2], payload[3]]) != NAT_T_PORT
            {
                return Err(WireError::NotEsp);
            }
            &payload[UDP_LEN..]
        }
        _ => return Err(WireError::NotEsp),
    };
    if esp.len() < ESP_HDR_LEN + 2 {
        return Err(WireError::Truncated);
    }
    let spi = u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]);
    if spi == 0 {
        // RFC 3948: a zero "SPI" is the non-ESP marker (IKE), not ESP.
        return Err(WireError::NotEsp);
    }
    let seq = u32::from_be_bytes([esp[4], esp[5], esp[6], esp[7]]);
    let n = esp.len();
    let pad = usize::from(esp[n - 2]);
    let next = esp[n - 1];
    if !matches!(next, 4 | 41) || ESP_HDR_LEN + pad + 2 > n {
        return Err(WireError::BadPadding);
    }
    let pad_start = n - 2 - pad;
    if esp[pad_start..n - 2]
        .iter()
        .enumerate()
        .any(|(i, &b)| usize::from(b) != i + 1)
    {
        return Err(WireError::BadPadding);
    }
    Ok((spi, seq, &esp[ESP_HDR_LEN..pad_start]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built IPv4/UDP packet 10.11.1.4:49152 → 10.21.1.4:53, TTL 64.
    fn inner_ip() -> Vec<u8> {
        let mut p = vec![
            0x45, 0x00, 0x00, 0x20, // version/IHL, TOS, total length 32
            0x12, 0x34, 0x40, 0x00, // id, DF
            0x40, 0x11, 0x00, 0x00, // TTL 64, UDP, checksum (filled below)
            10, 11, 1, 4, // src
            10, 21, 1, 4, // dst
            0xc0, 0x00, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, // UDP 49152 → 53, len 12
            b'p', b'i', b'n', b'g',
        ];
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// Hand-built IPv6/TCP: 2001:db8::1:1234 → 2001:db8::2:80, hop limit 9.
    fn ipv6_tcp() -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 24, 6, 9];
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(&[0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02]);
        p.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn direct_reading_takes_the_common_cases() {
        let p = inner_ip();
        let got = parse_common(&p).expect("IPv4/UDP is read directly");
        assert_eq!(got.3, 49152);
        assert_eq!(got.4, 53);
        assert_eq!(got.5, 64);
        let v6 = ipv6_tcp();
        let got = parse_common(&v6).expect("IPv6/TCP is read directly");
        assert_eq!((got.2, got.3, got.4, got.5), (6, 1234, 80, 9));
        // A fragment, options, an extension header: etherparse's.
        let mut frag = inner_ip();
        frag[6] = 0x20;
        assert!(parse_common(&frag).is_none());
        let mut opts = inner_ip();
        opts[0] = 0x46;
        assert!(parse_common(&opts).is_none());
        let mut ext = ipv6_tcp();
        ext[6] = 0;
        assert!(parse_common(&ext).is_none());
    }

    /// Both readings of one packet: the same answer wherever the direct one
    /// answers.
    fn agree(p: &[u8]) -> bool {
        match parse_common(p) {
            None => true,
            Some((src, dst, proto, sport, dport, ttl)) => parse_sliced(p, 0).is_ok_and(|e| {
                (e.src, e.dst, e.proto, e.sport, e.dport, e.ttl)
                    == (src, dst, proto, sport, dport, ttl)
            }),
        }
    }

    #[test]
    fn direct_reading_agrees_on_every_single_byte_change_and_cut() {
        for base in [inner_ip(), ipv6_tcp()] {
            for at in 0..base.len() {
                for b in 0..=255u8 {
                    let mut p = base.clone();
                    p[at] = b;
                    assert!(agree(&p), "byte {at} = {b:#04x} of {base:02x?}");
                }
            }
            for len in 0..base.len() {
                assert!(agree(&base[..len]), "cut to {len} bytes");
            }
        }
    }

    proptest::proptest! {
        /// Wherever the direct reading answers, etherparse answers the same,
        /// on valid packets with any bytes changed and any length cut.
        #[test]
        fn direct_reading_agrees_with_etherparse(
            v6 in proptest::bool::ANY,
            edits in proptest::collection::vec((0usize..64, proptest::num::u8::ANY), 0..4),
            cut in 0usize..80,
        ) {
            let mut p = if v6 { ipv6_tcp() } else { inner_ip() };
            for (at, b) in edits {
                if at < p.len() {
                    p[at] = b;
                }
            }
            p.truncate(p.len().saturating_sub(cut % 8 * (cut / 8)));
            proptest::prop_assert!(agree(&p));
        }
    }

    fn outer() -> Outer {
        Outer {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: AZURE_ROUTER_MAC,
            src: Ipv4Addr::new(10, 1, 2, 4),
            dst: Ipv4Addr::new(10, 2, 2, 4),
            ttl: 64,
            ip_id: 7,
        }
    }

    #[test]
    fn checksum_of_a_known_header() {
        // RFC 1071's example words sum; a header with a valid checksum sums to 0.
        let p = inner_ip();
        assert_eq!(checksum(&p[..20]), 0);
    }

    #[test]
    fn ttl_decrement_keeps_the_checksum_valid() {
        let mut p = inner_ip();
        for expect in (1..64).rev() {
            assert_eq!(decrement_ttl(&mut p), Ok(expect));
            assert_eq!(checksum(&p[..20]), 0, "ttl {expect}");
        }
        assert_eq!(decrement_ttl(&mut p), Err(WireError::TtlExpired));
        assert_eq!(p[8], 1);
        let mut v6 = vec![0x60, 0, 0, 0, 0, 0, 17, 2];
        v6.resize(40, 0);
        assert_eq!(decrement_ttl(&mut v6), Ok(1));
        assert_eq!(decrement_ttl(&mut v6), Err(WireError::TtlExpired));
        assert_eq!(decrement_ttl(&mut [0x45, 0]), Err(WireError::Truncated));
        assert_eq!(decrement_ttl(&mut []), Err(WireError::Truncated));
    }

    /// Address translation leaves the IPv4 header and the TCP and UDP
    /// checksums as a fresh computation (etherparse's) would write them.
    #[test]
    fn rewritten_addresses_keep_checksums_valid() {
        let (a, b) = ([10, 1, 2, 4], [198, 51, 100, 1]);
        let (na, nb) = (Ipv4Addr::new(20, 1, 1, 1), Ipv4Addr::new(10, 9, 8, 7));
        for proto in [6u8, 17] {
            let build = |src: [u8; 4], dst: [u8; 4]| {
                let b = etherparse::PacketBuilder::ipv4(src, dst, 64);
                let mut out = Vec::new();
                let payload = b"translated";
                if proto == 6 {
                    b.tcp(49152, 443, 7, 1024).write(&mut out, payload).unwrap();
                } else {
                    b.udp(49152, 4500).write(&mut out, payload).unwrap();
                }
                out
            };
            let mut p = build(a, b);
            rewrite_addresses(&mut p, na, nb).unwrap();
            assert_eq!(p, build(na.octets(), nb.octets()), "proto {proto}");
        }
        assert_eq!(
            rewrite_addresses(&mut [0x45, 0], na, nb),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn vxlan_frame_is_rfc7348() {
        let mut inner = vec![0u8; 14];
        inner[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        inner.extend(inner_ip());
        let mut out = Vec::new();
        vxlan_encap(&inner, &outer(), 50000, VXLAN_PORT, 10021, &mut out);
        assert_eq!(out.len(), 14 + 20 + 8 + 8 + inner.len());
        assert_eq!(&out[0..6], &AZURE_ROUTER_MAC);
        assert_eq!(&out[12..14], &[0x08, 0x00]);
        let ip = &out[14..34];
        assert_eq!(checksum(ip), 0);
        assert_eq!(ip[9], 17);
        assert_eq!(&ip[12..16], &[10, 1, 2, 4]);
        assert_eq!(&ip[16..20], &[10, 2, 2, 4]);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, out.len() - 14);
        let udp = &out[34..42];
        assert_eq!(
            udp,
            &[
                0xc3,
                0x50,
                0x12,
                0xb5,
                0x00,
                (8 + 8 + inner.len()) as u8,
                0,
                0
            ]
        );
        assert_eq!(&out[42..50], &[0x08, 0, 0, 0, 0x00, 0x27, 0x25, 0x00]);
        assert_eq!(&out[50..], &inner[..]);
        let (vni, got) = vxlan_decap(&out, VXLAN_PORT).unwrap();
        assert_eq!((vni, got), (10021, &inner[..]));
        assert_eq!(vxlan_decap(&out, 8472), Err(WireError::NotVxlan));
        assert_eq!(
            vxlan_decap(&out[..40], VXLAN_PORT),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn esp_frame_is_rfc4303_tunnel_mode() {
        let inner = inner_ip(); // 32 bytes: 32 + 2 = 34 → 2 bytes of padding
        let mut out = Vec::new();
        esp_encap(&inner, &outer(), 0x1001, 1, true, &mut out).unwrap();
        assert_eq!(out.len(), 14 + 20 + 8 + 8 + 32 + 2 + 2);
        assert_eq!(out[14 + 9], 17);
        assert_eq!(&out[34..38], &[0x11, 0x94, 0x11, 0x94]);
        let esp = &out[42..];
        assert_eq!(&esp[..8], &[0, 0, 0x10, 0x01, 0, 0, 0, 1]);
        assert_eq!(&esp[8..40], &inner[..]);
        assert_eq!(&esp[40..], &[1, 2, 2, 4]);
        assert_eq!((esp.len() - 8) % 4, 0);
        assert_eq!(esp_decap(&out).unwrap(), (0x1001, 1, &inner[..]));
        // Raw ESP: IP protocol 50, no UDP.
        esp_encap(&inner, &outer(), 0x2001, 9, false, &mut out).unwrap();
        assert_eq!(out[14 + 9], 50);
        assert_eq!(esp_decap(&out).unwrap(), (0x2001, 9, &inner[..]));
        // Every inner length pads to a 4-byte boundary with 1, 2, 3.
        for extra in 0..4usize {
            let mut p = inner.clone();
            p.extend(std::iter::repeat_n(0u8, extra));
            esp_encap(&p, &outer(), 0x3001, 2, false, &mut out).unwrap();
            let esp_len = out.len() - 34;
            assert_eq!(esp_len % 4, 0);
            assert_eq!(esp_decap(&out).unwrap().2, &p[..]);
        }
        // A corrupted pad byte is refused.
        let n = out.len();
        out[n - 3] ^= 0xff;
        assert!(esp_decap(&out).is_err());
    }
}

/// The flow fields of a captured frame and where its IP header starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub ttl: u8,
    /// Offset of the IP header in the frame.
    pub ip_offset: usize,
}

/// Why a frame could not be forwarded by its IP header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp(u16),
    /// Truncated or inconsistent headers (etherparse's words).
    Malformed(String),
    /// A link type vnetplane does not read.
    UnsupportedLink(u32),
}

/// Where the IP header starts in a frame of link type `link` (Ethernet with
/// 802.1Q/802.1ad tags, Linux cooked v1/v2, raw IP).
#[inline]
pub fn ip_offset(link: crate::io::Link, data: &[u8]) -> Result<usize, ParseError> {
    use crate::io::Link;
    let short = || ParseError::Malformed("frame shorter than its link-layer header".into());
    let (mut off, mut ethertype) = match link {
        Link::Raw => return Ok(0),
        Link::Ethernet => {
            if data.len() < ETH_LEN {
                return Err(short());
            }
            (ETH_LEN, u16::from_be_bytes([data[12], data[13]]))
        }
        Link::LinuxSll => {
            if data.len() < 16 {
                return Err(short());
            }
            (16, u16::from_be_bytes([data[14], data[15]]))
        }
        Link::LinuxSll2 => {
            if data.len() < 20 {
                return Err(short());
            }
            (20, u16::from_be_bytes([data[0], data[1]]))
        }
        Link::Other(n) => return Err(ParseError::UnsupportedLink(n)),
    };
    // VLAN tags (802.1Q, 802.1ad, old QinQ): 4 bytes each.
    while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
        if data.len() < off + 4 {
            return Err(short());
        }
        ethertype = u16::from_be_bytes([data[off + 2], data[off + 3]]);
        off += 4;
    }
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(off),
        other => Err(ParseError::NotIp(other)),
    }
}

/// Parses a frame down to its (outermost) IP flow fields with etherparse.
/// Unknown transport protocols are values, not errors: ports are 0.
/// Inlined: on the forwarding path its result is then taken apart in
/// registers instead of going through memory.
#[inline(always)]
pub fn parse(link: crate::io::Link, data: &[u8]) -> Result<Parsed, ParseError> {
    let ip_offset = ip_offset(link, data)?;
    match parse_common(&data[ip_offset..]) {
        Some((src, dst, proto, sport, dport, ttl)) => Ok(Parsed {
            src,
            dst,
            proto,
            sport,
            dport,
            ttl,
            ip_offset,
        }),
        None => parse_sliced(data, ip_offset),
    }
}

/// The common case read directly (the forwarding hot path): IPv4 without
/// options and not fragmented, or IPv6 without extension headers, carrying
/// TCP or UDP whose header is whole. Anything else is `None` and goes to
/// etherparse; where this answers, it answers as etherparse does (a property
/// test holds the two together). Inlined into [`parse`] for the same
/// reason as it: returned through memory, its addresses, written a few
/// bytes at a time, would be read back 16 at a time (a store-forwarding
/// stall).
#[inline(always)]
fn parse_common(ip: &[u8]) -> Option<(std::net::IpAddr, std::net::IpAddr, u8, u16, u16, u8)> {
    use std::net::{IpAddr, Ipv6Addr};
    let (src, dst, proto, ttl, l4) = match *ip.first()? >> 4 {
        4 => {
            let h: &[u8; 20] = ip.get(..20)?.try_into().ok()?;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            // No options, whole datagram, not a fragment (MF clear, offset 0).
            if h[0] != 0x45 || total < 20 || total > ip.len() || h[6] & 0x3f != 0 || h[7] != 0 {
                return None;
            }
            let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
            let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
            (src, dst, h[9], h[8], &ip[20..total])
        }
        6 => {
            let h: &[u8; 40] = ip.get(..40)?.try_into().ok()?;
            let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
            if payload == 0 || 40 + payload > ip.len() {
                return None;
            }
            let a = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&h[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            (a(8), a(24), h[6], h[7], &ip[40..40 + payload])
        }
        _ => return None,
    };
    let ports = |l4: &[u8]| {
        (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        )
    };
    match proto {
        6 => {
            let off = usize::from(*l4.get(12)? >> 4) * 4;
            (off >= 20 && off <= l4.len()).then(|| {
                let (s, d) = ports(l4);
                (src, dst, proto, s, d, ttl)
            })
        }
        17 => {
            let len = usize::from(u16::from_be_bytes([*l4.get(4)?, *l4.get(5)?]));
            (len >= 8 && len <= l4.len()).then(|| {
                let (s, d) = ports(l4);
                (src, dst, proto, s, d, ttl)
            })
        }
        _ => None,
    }
}

/// [`parse`] by etherparse: every case the direct reading leaves out.
#[cold]
#[inline(never)]
fn parse_sliced(data: &[u8], ip_offset: usize) -> Result<Parsed, ParseError> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let sliced = SlicedPacket::from_ip(&data[ip_offset..])
        .map_err(|e| ParseError::Malformed(e.to_string()))?;
    let (src, dst, proto, ttl) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (
                std::net::IpAddr::V4(h.source_addr()),
                std::net::IpAddr::V4(h.destination_addr()),
                ip.payload().ip_number.0,
                h.ttl(),
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (
                std::net::IpAddr::V6(h.source_addr()),
                std::net::IpAddr::V6(h.destination_addr()),
                ip.payload().ip_number.0,
                h.hop_limit(),
            )
        }
        _ => return Err(ParseError::NotIp(0)),
    };
    let (sport, dport) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        _ => (0, 0),
    };
    Ok(Parsed {
        src,
        dst,
        proto,
        sport,
        dport,
        ttl,
        ip_offset,
    })
}

/// `frame` reduced to Ethernet + IP (tags and cooked headers removed), with the
/// given MACs: the form vnetplane forwards and captures (VNets are layer 3).
pub fn normalize(
    frame: &[u8],
    ip_offset: usize,
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    out: &mut Vec<u8>,
) {
    out.clear();
    let ip = &frame[ip_offset..];
    let et = if ip.first().is_some_and(|b| b >> 4 == 6) {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_IPV4
    };
    push_eth(out, dst_mac, src_mac, et);
    out.extend_from_slice(ip);
}

/// Rewrites the MAC addresses of an Ethernet frame in place.
pub fn set_macs(frame: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    if frame.len() >= 12 {
        frame[0..6].copy_from_slice(&dst);
        frame[6..12].copy_from_slice(&src);
    }
}

/// Splits the IPv4 packet of an Ethernet frame into fragments whose IP
/// datagrams fit `mtu` (RFC 791: payload in multiples of 8 bytes, MF on all but
/// the last, DF cleared, checksums recomputed). A packet that fits is returned
/// whole. Appends frames to `out`.
pub fn fragment_ipv4(frame: &[u8], mtu: usize, out: &mut Vec<Vec<u8>>) -> Result<(), WireError> {
    if frame.len() < ETH_LEN + IPV4_LEN {
        return Err(WireError::Truncated);
    }
    let ip = &frame[ETH_LEN..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < IPV4_LEN || ip.len() < ihl {
        return Err(WireError::BadIpHeader);
    }
    if ip.len() <= mtu {
        out.push(frame.to_vec());
        return Ok(());
    }
    let chunk = (mtu.saturating_sub(ihl) / 8) * 8;
    if chunk == 0 {
        return Err(WireError::BadIpHeader);
    }
    let payload = &ip[ihl..];
    let base_off = usize::from(u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff) * 8;
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let last = end == payload.len();
        let mut f = Vec::with_capacity(ETH_LEN + ihl + (end - off));
        f.extend_from_slice(&frame[..ETH_LEN]);
        f.extend_from_slice(&ip[..ihl]);
        f.extend_from_slice(&payload[off..end]);
        let h = &mut f[ETH_LEN..];
        h[2..4].copy_from_slice(&((ihl + end - off) as u16).to_be_bytes());
        let frag = ((base_off + off) / 8) as u16 | if last { 0 } else { 0x2000 };
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&h[..ihl]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        out.push(f);
        off = end;
    }
    Ok(())
}

#[cfg(test)]
mod fragment_tests {
    use super::*;

    #[test]
    fn fragments_rebuild_the_packet() {
        let o = Outer {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: AZURE_ROUTER_MAC,
            src: Ipv4Addr::new(10, 1, 2, 4),
            dst: Ipv4Addr::new(10, 2, 2, 4),
            ttl: 64,
            ip_id: 9,
        };
        let inner = vec![0x45u8; 1480];
        let mut frame = Vec::new();
        vxlan_encap(&inner, &o, 50000, VXLAN_PORT, 7, &mut frame);
        let mut out = Vec::new();
        fragment_ipv4(&frame, 1500, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let mut payload = Vec::new();
        for (i, f) in out.iter().enumerate() {
            let ip = &f[14..];
            assert!(ip.len() <= 1500);
            assert_eq!(checksum(&ip[..20]), 0);
            let fo = u16::from_be_bytes([ip[6], ip[7]]);
            assert_eq!(fo & 0x2000 != 0, i == 0, "MF on all but the last");
            assert_eq!(usize::from(fo & 0x1fff) * 8, payload.len());
            payload.extend_from_slice(&ip[20..]);
        }
        assert_eq!(&payload[..], &frame[34..]);
        let mut whole = Vec::new();
        fragment_ipv4(&frame[..200], 1500, &mut whole).unwrap_or(());
        let mut small = Vec::new();
        vxlan_encap(&inner[..100], &o, 50000, VXLAN_PORT, 7, &mut frame);
        fragment_ipv4(&frame, 1500, &mut small).unwrap();
        assert_eq!(small, vec![frame.clone()]);
    }
}
