//! `gen`: reproducible traffic for a topology. Each flow is a packet from a
//! NIC's VM to a destination (TCP SYN, UDP datagram or ICMP echo), as an
//! Ethernet frame (the VM's MAC toward Azure's router MAC) with fixed
//! timestamps, so the same inputs give the same capture byte for byte.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

use super::frame::nic_mac;
use super::{PROTO_ICMP, PROTO_TCP, PROTO_UDP, Start};
use crate::io::{CaptureError, Frame, Link};
use crate::rng::Rng;
use crate::topology::Topology;
use crate::wire::AZURE_ROUTER_MAC;

/// One generated flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub from: Start,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// Destinations worth sending to from a topology: every VM NIC's first
/// address of each family, each site's hosts, and the Internet test addresses
/// (198.51.100.10, 2001:db8::10).
pub fn default_destinations(t: &Topology) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = Vec::new();
    for n in &t.nics {
        for fam in [true, false] {
            if let Some(ip) = n.ips.iter().find(|ip| ip.is_ipv4() == fam) {
                v.push(*ip);
            }
        }
    }
    for s in &t.sites {
        v.extend(s.hosts.iter().copied());
    }
    v.push("198.51.100.10".parse().expect("const"));
    if t.vnets
        .iter()
        .any(|vn| vn.address_space.iter().any(|p| p.network().is_ipv6()))
    {
        v.push("2001:db8::10".parse().expect("const"));
    }
    v
}

/// The addresses a sender may use: a NIC's IPs, a site's hosts and CPE,
/// an NVA's NIC addresses and loopbacks.
pub fn sources(t: &Topology, from: Start) -> Vec<IpAddr> {
    match from {
        Start::Nic(n) => t.nic(n).ips.clone(),
        Start::Site(s) => {
            let site = &t.sites[s.idx()];
            site.hosts.iter().copied().chain(site.cpe).collect()
        }
        Start::Nva(n) => {
            let nva = &t.nvas[n.idx()];
            nva.nics
                .iter()
                .flat_map(|&x| t.nic(x).ips.iter().copied())
                .chain(nva.loopbacks.iter().copied())
                .collect()
        }
    }
}

/// Every NIC not owned by an NVA, then every site with hosts.
pub fn default_senders(t: &Topology) -> Vec<Start> {
    let nva_nics: std::collections::HashSet<_> =
        t.nvas.iter().flat_map(|n| n.nics.iter().copied()).collect();
    let mut v: Vec<Start> = (0..t.nics.len())
        .map(|i| crate::topology::NicId(i as u32))
        .filter(|n| !nva_nics.contains(n))
        .map(Start::Nic)
        .collect();
    v.extend(
        (0..t.sites.len())
            .filter(|&i| !t.sites[i].hosts.is_empty())
            .map(|i| Start::Site(crate::topology::SiteId(i as u32))),
    );
    v
}

/// Flows from each of `from` to each destination of its family, `per_pair`
/// flows each with seeded source ports, TCP to 443 unless `proto` says otherwise.
pub fn flows(
    t: &Topology,
    from: &[Start],
    dsts: &[IpAddr],
    per_pair: usize,
    proto: u8,
    seed: u64,
) -> Vec<Flow> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for &n in from {
        let own = sources(t, n);
        for &dst in dsts {
            if own.contains(&dst) || !own.iter().any(|ip| ip.is_ipv4() == dst.is_ipv4()) {
                continue;
            }
            if let Start::Site(s) = n
                && t.sites[s.idx()].prefixes.iter().any(|p| p.contains(&dst))
            {
                continue; // on-premises to on-premises never touches Azure
            }
            for _ in 0..per_pair {
                let sport = 49152 + (rng.next_u32() % 16384) as u16;
                let (sport, dport) = match proto {
                    PROTO_ICMP => (0, 0),
                    PROTO_UDP => (sport, 53),
                    _ => (sport, 443),
                };
                out.push(Flow {
                    from: n,
                    dst,
                    proto,
                    sport,
                    dport,
                });
            }
        }
    }
    out
}

/// The frames of `flows`, one per flow, timestamps 1 ms apart from t = 0.
pub fn frames(t: &Topology, flows: &[Flow]) -> Vec<Frame> {
    let mut out = Vec::with_capacity(flows.len());
    for (i, f) in flows.iter().enumerate() {
        let Some(src) = sources(t, f.from)
            .into_iter()
            .find(|ip| ip.is_ipv4() == f.dst.is_ipv4())
        else {
            continue;
        };
        let mac = match f.from {
            Start::Nic(n) => nic_mac(n),
            Start::Site(_) => AZURE_ROUTER_MAC,
            Start::Nva(n) => t.nvas[n.idx()]
                .nics
                .first()
                .map_or(AZURE_ROUTER_MAC, |&x| nic_mac(x)),
        };
        let eth = PacketBuilder::ethernet2(mac, AZURE_ROUTER_MAC);
        let payload = b"vnetplane";
        let mut data = Vec::with_capacity(128);
        let res = match (src, f.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let ip = eth.ipv4(s.octets(), d.octets(), 64);
                match f.proto {
                    PROTO_UDP => ip
                        .udp(f.sport, f.dport)
                        .write(&mut data, payload)
                        .map_err(|e| e.to_string()),
                    PROTO_ICMP => ip
                        .icmpv4_echo_request(1, i as u16)
                        .write(&mut data, payload)
                        .map_err(|e| e.to_string()),
                    _ => ip
                        .tcp(f.sport, f.dport, 1, 64240)
                        .syn()
                        .write(&mut data, &[])
                        .map_err(|e| e.to_string()),
                }
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip = eth.ipv6(s.octets(), d.octets(), 64);
                match f.proto {
                    PROTO_UDP => ip
                        .udp(f.sport, f.dport)
                        .write(&mut data, payload)
                        .map_err(|e| e.to_string()),
                    PROTO_ICMP => ip
                        .icmpv6_echo_request(1, i as u16)
                        .write(&mut data, payload)
                        .map_err(|e| e.to_string()),
                    _ => ip
                        .tcp(f.sport, f.dport, 1, 64240)
                        .syn()
                        .write(&mut data, &[])
                        .map_err(|e| e.to_string()),
                }
            }
            _ => continue,
        };
        if res.is_ok() {
            out.push(Frame {
                number: out.len() + 1,
                timestamp: Duration::from_millis(i as u64),
                link: Link::Ethernet,
                data,
            });
        }
    }
    out
}

/// Writes frames as a little-endian, microsecond, Ethernet pcap.
pub fn write_pcap(path: &Path, frames: &[Frame]) -> Result<(), CaptureError> {
    let file_error = |cause| CaptureError::Io {
        file: path.display().to_string(),
        cause,
    };
    let file = std::fs::File::create(path).map_err(file_error)?;
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(std::io::BufWriter::new(file), header)
        .map_err(CaptureError::Write)?;
    for f in frames {
        w.write_packet(&PcapPacket::new(f.timestamp, f.data.len() as u32, &f.data))
            .map_err(CaptureError::Write)?;
    }
    w.into_writer().flush().map_err(CaptureError::Flush)
}

/// The protocol number for `tcp`, `udp` or `icmp`.
pub fn proto_number(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(PROTO_TCP),
        "udp" => Some(PROTO_UDP),
        "icmp" => Some(PROTO_ICMP),
        _ => None,
    }
}

/// Frame size of generated packets without FCS (64 bytes on the wire).
pub const FRAME_LEN: usize = 60;

/// 64-byte UDP frames (60 without FCS) for `flows` flows from `senders`
/// to `dsts`, cycled to `packets`.
pub fn udp_flows(
    t: &Topology,
    senders: &[Start],
    dsts: &[IpAddr],
    flows: usize,
    packets: usize,
) -> Vec<Frame> {
    let mut pairs: Vec<(IpAddr, IpAddr)> = Vec::new();
    for s in senders {
        let Some(src) = source_ip(t, *s) else {
            continue;
        };
        for &d in dsts {
            if d.is_ipv4() == src.is_ipv4() && d != src {
                pairs.push((src, d));
            }
        }
    }
    if pairs.is_empty() {
        return Vec::new();
    }
    let mut proto: Vec<Vec<u8>> = Vec::new();
    for k in 0..flows.max(pairs.len()) {
        let (s, d) = pairs[k % pairs.len()];
        let sport = 1024 + (k / pairs.len()) as u16 % 60000;
        proto.push(udp_frame(s, d, sport, 4000));
    }
    (0..packets)
        .map(|i| Frame {
            number: i + 1,
            timestamp: Duration::from_nanos(i as u64 * 100),
            link: Link::Ethernet,
            data: proto[i % proto.len()].clone(),
        })
        .collect()
}

fn source_ip(t: &Topology, s: Start) -> Option<IpAddr> {
    match s {
        Start::Site(x) => {
            let site = &t.sites[x.idx()];
            site.hosts.first().copied().or(site.cpe)
        }
        _ => sources(t, s).into_iter().find(|ip| ip.is_ipv4()),
    }
}

fn udp_frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut out = Vec::with_capacity(FRAME_LEN);
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
            return out;
        };
        let b = b.ipv6(s.octets(), d.octets(), 64).udp(sport, dport);
        let _ = b.write(&mut out, &[0u8; 8]);
        return out;
    };
    let b = b.ipv4(s.octets(), d.octets(), 64).udp(sport, dport);
    let payload = [0u8; FRAME_LEN - 14 - 20 - 8];
    let _ = b.write(&mut out, &payload);
    out
}
