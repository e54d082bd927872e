//! `replay`: every frame of a capture through the hop machine, the frames
//! rewritten as they would be on the wire at each NIC they cross (MACs, TTL
//! with incremental checksum, outer headers on encapsulation), written to
//! pcapng with one interface per NIC and the path as each packet's comment.
//! Every frame read ends in exactly one counter.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use super::{DropReason, Encap, Header, Packet, Start, Trace, Verdict, World};
use crate::io::{Frame, PcapNgOut};
use crate::topology::NicId;
use crate::wire::{self, AZURE_ROUTER_MAC, Outer, ParseError};

/// A NIC's (locally administered) MAC address.
pub fn nic_mac(n: NicId) -> [u8; 6] {
    let b = n.0.to_be_bytes();
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

/// Per-verdict counters; they add up to the frames read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub read: usize,
    pub delivered: usize,
    pub dropped: usize,
    pub looped: usize,
    /// Drops by reason code.
    pub drop_reasons: BTreeMap<String, usize>,
    /// Deliveries by place (`internet`, `site onprem`, `nic x`, ...).
    pub delivered_at: BTreeMap<String, usize>,
}

impl Counters {
    fn count(&mut self, v: &Verdict) {
        match v {
            Verdict::Delivered { at } => {
                self.delivered += 1;
                *self.delivered_at.entry(at.clone()).or_default() += 1;
            }
            Verdict::Dropped { reason, .. } => {
                self.dropped += 1;
                *self
                    .drop_reasons
                    .entry(reason.code().to_string())
                    .or_default() += 1;
            }
            Verdict::Loop { .. } => self.looped += 1,
        }
    }

    /// Every frame read is delivered, dropped or looped.
    pub fn balanced(&self) -> bool {
        self.read == self.delivered + self.dropped + self.looped
    }
}

/// One line of the `--traces` JSONL file.
#[derive(Clone, Debug, Serialize)]
pub struct TraceLine<'a> {
    pub packet: usize,
    pub verdict: &'static str,
    pub at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub path: Vec<&'a str>,
}

/// Options of a replay.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Send every packet from this NIC instead of the one owning its source.
    pub from: Option<NicId>,
}

/// Where a captured packet enters: the given NIC, else the NIC holding its
/// source, else the site holding it.
fn start_of(world: &World, opts: Options, src: std::net::IpAddr) -> Option<Start> {
    opts.from
        .or_else(|| world.nic_for_source(src))
        .map(Start::Nic)
        .or_else(|| world.site_for_source(src).map(Start::Site))
}

/// Replays `frames`; writes captures to `pcapng` and traces to `traces`
/// when given. Returns the counters.
pub fn replay<W: Write, T: Write>(
    world: &World,
    frames: &[Frame],
    opts: Options,
    mut pcapng: Option<&mut PcapNgOut<W>>,
    mut traces: Option<&mut T>,
) -> Result<Counters, String> {
    let mut c = Counters::default();
    let mut seq: HashMap<u32, u32> = HashMap::new();
    let mut buf = Vec::with_capacity(2048);
    let mut tmp = Vec::with_capacity(2048);
    for f in frames {
        c.read += 1;
        let verdict_and_trace: (Verdict, Option<Trace>) = match wire::parse(f.link, &f.data) {
            Err(e) => {
                let reason = match e {
                    ParseError::NotIp(_) => DropReason::NotIp,
                    ParseError::Malformed(_) => DropReason::Malformed,
                    ParseError::UnsupportedLink(_) => DropReason::UnsupportedLink,
                };
                (
                    Verdict::Dropped {
                        at: "capture".into(),
                        reason,
                    },
                    None,
                )
            }
            Ok(p) => match start_of(world, opts, p.src) {
                None => (
                    Verdict::Dropped {
                        at: "capture".into(),
                        reason: DropReason::NoIngressNic,
                    },
                    None,
                ),
                Some(start) => {
                    let h = Header {
                        src: p.src,
                        dst: p.dst,
                        proto: p.proto,
                        sport: p.sport,
                        dport: p.dport,
                    };
                    let src_mac = match start {
                        Start::Nic(nic) => nic_mac(nic),
                        Start::Site(_) => AZURE_ROUTER_MAC,
                    };
                    wire::normalize(&f.data, p.ip_offset, AZURE_ROUTER_MAC, src_mac, &mut buf);
                    let packet = packet_of(&buf, h, p.ttl);
                    let tr = world.walk_from(start, packet);
                    if let Some(out) = pcapng.as_deref_mut() {
                        render(world, &tr, f, &mut buf, &mut tmp, &mut seq, out)?;
                    }
                    (tr.verdict.clone(), Some(tr))
                }
            },
        };
        let (v, tr) = verdict_and_trace;
        c.count(&v);
        if let Some(t) = traces.as_deref_mut() {
            let line = TraceLine {
                packet: f.number,
                verdict: v.kind(),
                at: v.at(),
                reason: match &v {
                    Verdict::Dropped { reason, .. } => Some(reason.code()),
                    Verdict::Loop { .. } => Some("loop"),
                    Verdict::Delivered { .. } => None,
                },
                path: tr
                    .as_ref()
                    .map(|t| t.hops.iter().map(|h| h.node.as_str()).collect())
                    .unwrap_or_default(),
            };
            serde_json::to_writer(&mut *t, &line).map_err(|e| e.to_string())?;
            t.write_all(b"\n").map_err(|e| e.to_string())?;
        }
    }
    Ok(c)
}

/// The packet a captured frame carries: a VXLAN packet (UDP 4789) or an ESP
/// packet whose payload is readable (vnetplane's own NULL-cipher tunnels)
/// becomes two layers, so the tunnel's far end can decapsulate it; anything
/// else (including really encrypted ESP) is one layer, forwarded by its IP
/// header. `frame` is the normalized (Ethernet + IP) frame.
pub fn packet_of(frame: &[u8], outer: Header, ttl: u8) -> Packet {
    let outer_len = frame.len().saturating_sub(14);
    let one = Packet::sized(outer, ttl.max(1), outer_len);
    let inner = if outer.proto == super::PROTO_UDP && outer.dport == wire::VXLAN_PORT {
        wire::vxlan_decap(frame, wire::VXLAN_PORT)
            .ok()
            .and_then(|(vni, inner)| {
                wire::parse(crate::io::Link::Ethernet, inner)
                    .ok()
                    .map(|p| (Encap::Vxlan { vni }, p, inner.len().saturating_sub(14)))
            })
    } else if outer.proto == super::PROTO_ESP
        || (outer.proto == super::PROTO_UDP && outer.dport == wire::NAT_T_PORT)
    {
        wire::esp_decap(frame).ok().and_then(|(spi, _, inner)| {
            wire::parse(crate::io::Link::Raw, inner).ok().map(|p| {
                (
                    Encap::Esp {
                        spi,
                        udp: outer.proto == super::PROTO_UDP,
                    },
                    p,
                    inner.len(),
                )
            })
        })
    } else {
        None
    };
    match inner {
        None => one,
        Some((encap, p, inner_len)) => {
            let ih = Header {
                src: p.src,
                dst: p.dst,
                proto: p.proto,
                sport: p.sport,
                dport: p.dport,
            };
            let mut packet = Packet::sized(ih, p.ttl.max(1), inner_len);
            packet.layers.push(super::Layer {
                header: outer,
                ttl: ttl.max(1),
                encap: Some(encap),
                len: outer_len,
            });
            packet
        }
    }
}

/// Applies each hop's effects to the frame and captures it at every NIC.
fn render<W: Write>(
    world: &World,
    tr: &Trace,
    f: &Frame,
    cur: &mut Vec<u8>,
    tmp: &mut Vec<u8>,
    seq: &mut HashMap<u32, u32>,
    out: &mut PcapNgOut<W>,
) -> Result<(), String> {
    let t = &world.cp.topology;
    let path: Vec<&str> = tr.hops.iter().map(|h| h.node.as_str()).collect();
    let summary = format!(
        "{} → {}: {}",
        path.join(" → "),
        tr.verdict.kind(),
        tr.verdict.at()
    );
    // Set while the outer packet travels fragmented (R55), until decapsulation.
    let mut fragment: Option<u16> = None;
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    for (i, hop) in tr.hops.iter().enumerate() {
        let e = &hop.effects;
        if e.decap.is_some() {
            fragment = None;
        }
        if let Some(mtu) = e.fragment {
            fragment = Some(mtu);
        }
        if let Some(enc) = e.decap {
            match enc {
                Encap::Vxlan { .. } => {
                    let port = match (cur.get(36), cur.get(37)) {
                        (Some(a), Some(b)) => u16::from_be_bytes([*a, *b]),
                        _ => wire::VXLAN_PORT,
                    };
                    if let Ok((_, inner)) = wire::vxlan_decap(cur, port) {
                        tmp.clear();
                        tmp.extend_from_slice(inner);
                        std::mem::swap(cur, tmp);
                    }
                }
                Encap::Esp { .. } => {
                    if let Ok((_, _, inner)) = wire::esp_decap(cur) {
                        wire::normalize(inner, 0, AZURE_ROUTER_MAC, AZURE_ROUTER_MAC, tmp);
                        std::mem::swap(cur, tmp);
                    }
                }
            }
        }
        if e.ttl_decrement && cur.len() > 14 {
            let _ = wire::decrement_ttl(&mut cur[14..]);
        }
        if let Some((enc, outer)) = e.encap {
            let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (outer.src, outer.dst)
            else {
                return Err(format!(
                    "packet {}: tunnels with IPv6 endpoints are not rendered",
                    f.number
                ));
            };
            let o = Outer {
                src_mac: AZURE_ROUTER_MAC,
                dst_mac: AZURE_ROUTER_MAC,
                src,
                dst,
                ttl: super::DEFAULT_TTL,
                ip_id: f.number as u16,
            };
            match enc {
                Encap::Vxlan { vni } => {
                    wire::vxlan_encap(cur, &o, outer.sport, outer.dport, vni, tmp)
                }
                Encap::Esp { spi, udp } => {
                    let s = seq.entry(spi).or_insert(0);
                    *s = s.wrapping_add(1).max(1);
                    wire::esp_encap(&cur[14..], &o, spi, *s, udp, tmp)
                        .map_err(|e| format!("packet {}: {e}", f.number))?;
                }
            }
            std::mem::swap(cur, tmp);
        }
        let nic = match hop.kind {
            "nic-egress" | "nic-ingress" => t
                .nics
                .iter()
                .position(|n| format!("nic {}", n.name) == hop.node)
                .map(|i| NicId(i as u32)),
            _ => None,
        };
        if let Some(n) = nic {
            let outbound = hop.kind == "nic-egress";
            if outbound {
                wire::set_macs(cur, AZURE_ROUTER_MAC, nic_mac(n));
            } else {
                wire::set_macs(cur, nic_mac(n), AZURE_ROUTER_MAC);
            }
            let comment = format!(
                "hop {}/{} {} ({}): {} | {summary}",
                i + 1,
                tr.hops.len(),
                hop.node,
                hop.kind,
                hop.decision
            );
            let ts = f.timestamp + Duration::from_nanos(i as u64);
            match fragment {
                // The far end reassembles before decapsulating; on the wire in
                // between, the outer packet travels as fragments.
                Some(mtu) => {
                    pieces.clear();
                    wire::fragment_ipv4(cur, usize::from(mtu), &mut pieces)
                        .map_err(|e| format!("packet {}: {e}", f.number))?;
                    for (k, p) in pieces.iter().enumerate() {
                        out.write(
                            &t.nic(n).name,
                            ts,
                            p,
                            &format!("{comment} [fragment {}/{}]", k + 1, pieces.len()),
                            outbound,
                        )?;
                    }
                }
                _ => out.write(&t.nic(n).name, ts, cur, &comment, outbound)?,
            }
        }
    }
    Ok(())
}
