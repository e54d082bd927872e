//! Byte-level encapsulation against a real capture nobody here wrote.

use vnetplane::wire::{self, VXLAN_PORT};

/// The frames of a little-endian, microsecond, Ethernet pcap (enough for the fixture).
fn frames(pcap: &[u8]) -> Vec<&[u8]> {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut v = Vec::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        v.push(&pcap[off + 16..off + 16 + caplen]);
        off += 16 + caplen;
    }
    v
}

#[test]
fn decapsulates_tcpdumps_vxlan_capture() {
    let pcap = include_bytes!("../fixtures/vxlan.pcap");
    let fs = frames(pcap);
    assert_eq!(fs.len(), 10);
    let mut icmp = 0;
    for f in fs {
        let (vni, inner) = wire::vxlan_decap(f, VXLAN_PORT).expect("every frame is VXLAN");
        assert_eq!(vni, 100);
        let ethertype = u16::from_be_bytes([inner[12], inner[13]]);
        if ethertype == wire::ETHERTYPE_IPV4 {
            let ip = &inner[14..];
            assert_eq!(wire::checksum(&ip[..20]), 0, "inner IPv4 header checksum");
            assert_eq!(ip[9], 1, "ICMP");
            icmp += 1;
            // Re-encapsulating the inner frame gives back the same VXLAN payload.
            let mut out = Vec::new();
            let outer = wire::Outer {
                src_mac: f[6..12].try_into().unwrap(),
                dst_mac: f[0..6].try_into().unwrap(),
                src: std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&f[26..30]).unwrap()),
                dst: std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&f[30..34]).unwrap()),
                ttl: f[22],
                ip_id: 0,
            };
            let sport = u16::from_be_bytes([f[34], f[35]]);
            wire::vxlan_encap(inner, &outer, sport, VXLAN_PORT, vni, &mut out);
            assert_eq!(wire::vxlan_decap(&out, VXLAN_PORT).unwrap(), (100, inner));
            assert_eq!(&out[34..38], &f[34..38], "same UDP ports");
            assert_eq!(&out[42..], &f[42..], "same VXLAN header and inner frame");
        }
    }
    assert!(icmp >= 4, "the capture holds ICMP echoes");
}
