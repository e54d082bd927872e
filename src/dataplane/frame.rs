//! Frames and packets: a captured frame's packet (`packet_of`), the frame
//! rewritten as it would be on the wire at each NIC it crosses (`render`:
//! MACs, TTL with incremental checksum, outer headers on encapsulation),
//! where a frame enters the topology, the per-verdict counters and the
//! JSONL trace line.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{Encap, Header, Outcome, Packet, Start, World};
use crate::io::{CaptureError, FrameRef};
use crate::topology::NicId;
use crate::wire::{self, AZURE_ROUTER_MAC, Outer};

/// A NIC's (locally administered) MAC address.
pub fn nic_mac(n: NicId) -> [u8; 6] {
    let b = n.0.to_be_bytes();
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

/// Which of a packet's crossings a replay writes as frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Hops {
    /// Every crossing of a NIC, gateway or site.
    #[default]
    All,
    /// Crossings out of a NIC, gateway or site (what each sends).
    Egress,
    /// The first crossing and the last.
    Ends,
}

/// A packet's verdict, as `--only` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Verdict {
    Delivered,
    Dropped,
    Looped,
}

/// The verdicts whose packets a replay writes (a set of [`Verdict`]s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Only(u8);

impl Default for Only {
    fn default() -> Self {
        Only(0b111)
    }
}

impl Only {
    /// The verdicts given; every verdict when none is.
    pub fn of(v: &[Verdict]) -> Self {
        if v.is_empty() {
            return Only::default();
        }
        Only(v.iter().fold(0, |m, v| m | Self::bit(*v)))
    }

    fn bit(v: Verdict) -> u8 {
        match v {
            Verdict::Delivered => 1,
            Verdict::Dropped => 2,
            Verdict::Looped => 4,
        }
    }

    /// Whether a packet with this outcome is written.
    #[inline]
    pub fn wants(self, o: Outcome) -> bool {
        let v = match o {
            Outcome::Delivered(_) => Verdict::Delivered,
            Outcome::Dropped(..) => Verdict::Dropped,
            Outcome::Loop { .. } => Verdict::Looped,
        };
        self.0 & Self::bit(v) != 0
    }
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
    /// Every frame read is delivered, dropped or looped.
    pub fn balanced(&self) -> bool {
        self.read == self.delivered + self.dropped + self.looped
    }
}

/// One line of the `--traces` JSONL file.
#[derive(Clone, Serialize)]
pub struct TraceLine<'a> {
    pub packet: usize,
    pub verdict: &'static str,
    pub at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The version of the tables the packet's walk used (0: the starting
    /// tables; each control-plane publication adds one).
    pub table_version: u32,
    pub path: Path<'a>,
}

/// A walk's node names, serialized as a list without building one.
#[derive(Clone, Copy)]
pub struct Path<'a> {
    world: &'a World,
    hops: &'a [super::Hop],
}

impl Serialize for Path<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.hops.iter().map(|h| self.world.name(h.at)))
    }
}

/// Appends one JSONL trace line: [`TraceLine`] as serde would write it,
/// written by hand (at every packet of a replay, serde's general path
/// costs more than the walk).
pub fn write_trace_line(
    out: &mut Vec<u8>,
    world: &World,
    number: usize,
    o: Outcome,
    hops: &[super::Hop],
    version: Option<u32>,
) {
    write_trace_line_at(out, world, number, o, hops.iter().map(|h| h.at), version);
}

/// [`write_trace_line`] from the places of the hops.
pub fn write_trace_line_at(
    out: &mut Vec<u8>,
    world: &World,
    number: usize,
    o: Outcome,
    path: impl Iterator<Item = super::At>,
    version: Option<u32>,
) {
    out.extend_from_slice(b"{\"packet\":");
    push_decimal(out, number as u64);
    out.extend_from_slice(b",\"verdict\":\"");
    out.extend_from_slice(o.kind().as_bytes());
    out.extend_from_slice(b"\",\"at\":");
    push_json_str(out, &world.place_name(o.place()));
    let reason = match o {
        Outcome::Dropped(_, r) => Some(r.code()),
        Outcome::Loop { .. } => Some("loop"),
        Outcome::Delivered(_) => None,
    };
    if let Some(r) = reason {
        out.extend_from_slice(b",\"reason\":");
        push_json_str(out, r);
    }
    out.extend_from_slice(b",\"table_version\":");
    push_decimal(out, u64::from(version.unwrap_or(0)));
    out.extend_from_slice(b",\"path\":[");
    for (i, at) in path.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(out, world.name(at));
    }
    out.extend_from_slice(b"]}\n");
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(decimal(n, &mut buf));
}

/// `n`'s decimal digits, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(s.as_bytes());
    } else {
        // Rare (names come from the topology): serde's own escaping.
        if let Ok(q) = serde_json::to_string(s) {
            out.extend_from_slice(&q.as_bytes()[1..q.len() - 1]);
        }
    }
    out.push(b'"');
}

/// Where a captured packet enters: the given NIC, else the NIC holding its
/// source, else the site holding it.
pub fn start_of(world: &World, from: Option<NicId>, src: std::net::IpAddr) -> Option<Start> {
    from.or_else(|| world.nic_for_source(src))
        .map(Start::Nic)
        .or_else(|| world.site_for_source(src).map(Start::Site))
}

/// Whether a packet may carry a tunnel vnetplane reads (VXLAN, ESP).
pub fn may_be_tunnel(h: &Header) -> bool {
    (h.proto == super::PROTO_UDP && (h.dport == wire::VXLAN_PORT || h.dport == wire::NAT_T_PORT))
        || h.proto == super::PROTO_ESP
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

/// Why a packet's frames could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("packet {packet}: tunnels with IPv6 endpoints are not rendered")]
    Ipv6Tunnel { packet: usize },
    #[error("packet {packet}: {source}")]
    Wire {
        packet: usize,
        source: wire::WireError,
    },
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("writing traces: {0}")]
    Trace(#[from] serde_json::Error),
}

/// Where a frame is captured: (capture point of [`World::capture_point`],
/// timestamp, Ethernet frame, comment, outbound).
pub type CaptureSink<'s> =
    dyn FnMut(u32, Duration, &[u8], &str, bool) -> Result<(), RenderError> + 's;

/// Buffers [`render`] reuses from packet to packet: once grown, a packet
/// allocates nothing.
#[derive(Default)]
pub struct RenderBufs {
    pub cur: Vec<u8>,
    pub tmp: Vec<u8>,
    pub pieces: Vec<Vec<u8>>,
    /// The packet's part of every comment (number, verdict, place).
    summary: String,
    comment: String,
}

/// Appends `n` in decimal.
fn push_number(s: &mut String, n: usize) {
    let mut buf = [0u8; 20];
    for &d in decimal(n as u64, &mut buf) {
        s.push(char::from(d));
    }
}

/// Applies each hop's effects to the frame and captures it where `hops`
/// says (every NIC, gateway and site crossed, or some of them). Each
/// frame's comment gives the input packet's number, its verdict (with the
/// drop reason), the hop, the decision there, and the whole path. ESP
/// sequence numbers are the packet's number in the capture: increasing per
/// SA, and the same however packets are spread over workers.
pub fn render(
    world: &World,
    hops: &[super::Hop],
    outcome: Outcome,
    f: FrameRef<'_>,
    which: Hops,
    b: &mut RenderBufs,
    out: &mut CaptureSink<'_>,
) -> Result<(), RenderError> {
    use std::fmt::Write as _;
    let RenderBufs {
        cur,
        tmp,
        pieces,
        summary,
        comment,
    } = b;
    summary.clear();
    summary.push_str("packet ");
    push_number(summary, f.number);
    summary.push_str(": ");
    summary.push_str(outcome.kind());
    match outcome {
        Outcome::Dropped(_, r) => {
            summary.push_str(" (");
            summary.push_str(r.code());
            summary.push(')');
        }
        Outcome::Loop { .. } => summary.push_str(" (loop)"),
        Outcome::Delivered(_) => {}
    }
    // Every frame gives the number and the verdict; the first also where
    // the packet ended, and its path.
    let verdict_end = summary.len();
    summary.push_str(" at ");
    summary.push_str(&world.place_name(outcome.place()));
    // The path goes on the packet's first frame written (the others give
    // their own hop).
    let mut path_said = false;
    // The crossings written: with `ends`, the first and the last.
    let points = || {
        hops.iter()
            .enumerate()
            .filter(|(_, h)| world.capture_point(h.at).is_some())
            .map(|(i, _)| i)
    };
    let (first, last) = match which {
        Hops::Ends => (points().next(), points().next_back()),
        _ => (None, None),
    };
    // Set while the outer packet travels fragmented (R55), until decapsulation.
    let mut fragment: Option<u16> = None;
    // Address translation at the Internet edge, decided at one hop (the
    // sender's egress, captured untranslated) and seen from the next.
    let mut nat: Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)> = None;
    for (i, hop) in hops.iter().enumerate() {
        let e = &hop.effects;
        if let Some((src, dst)) = nat.take()
            && cur.len() > 14
        {
            let _ = wire::rewrite_addresses(&mut cur[14..], src, dst);
        }
        nat = e.nat;
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
                return Err(RenderError::Ipv6Tunnel { packet: f.number });
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
                    let seq = (f.number as u32).max(1);
                    wire::esp_encap(&cur[14..], &o, spi, seq, udp, tmp).map_err(|source| {
                        RenderError::Wire {
                            packet: f.number,
                            source,
                        }
                    })?;
                }
            }
            std::mem::swap(cur, tmp);
        }
        let Some((point, outbound)) = world.capture_point(hop.at) else {
            continue;
        };
        let wanted = match which {
            Hops::All => true,
            Hops::Egress => outbound,
            Hops::Ends => Some(i) == first || Some(i) == last,
        };
        if !wanted {
            continue;
        }
        match hop.at {
            super::At::NicOut(n) => wire::set_macs(cur, AZURE_ROUTER_MAC, nic_mac(n)),
            super::At::NicIn(n) => wire::set_macs(cur, nic_mac(n), AZURE_ROUTER_MAC),
            _ => wire::set_macs(cur, AZURE_ROUTER_MAC, AZURE_ROUTER_MAC),
        }
        // Pieces pushed one by one: `write!` costs several times more, at
        // every frame of every packet.
        comment.clear();
        comment.push_str(if path_said {
            &summary[..verdict_end]
        } else {
            summary
        });
        comment.push_str(" | hop ");
        push_number(comment, i + 1);
        comment.push('/');
        push_number(comment, hops.len());
        comment.push(' ');
        comment.push_str(world.name(hop.at));
        comment.push_str(" (");
        comment.push_str(hop.kind);
        comment.push(')');
        if !hop.decision.is_empty() {
            comment.push_str(": ");
            comment.push_str(&hop.decision);
        }
        if !path_said {
            path_said = true;
            comment.push_str(" | path ");
            for (k, h) in hops.iter().enumerate() {
                if k > 0 {
                    comment.push_str(" → ");
                }
                comment.push_str(world.name(h.at));
            }
        }
        let ts = f.timestamp + Duration::from_nanos(i as u64);
        match fragment {
            // The far end reassembles before decapsulating; on the wire in
            // between, the outer packet travels as fragments.
            Some(mtu) => {
                pieces.clear();
                wire::fragment_ipv4(cur, usize::from(mtu), pieces).map_err(|source| {
                    RenderError::Wire {
                        packet: f.number,
                        source,
                    }
                })?;
                let whole = comment.len();
                for (k, p) in pieces.iter().enumerate() {
                    comment.truncate(whole);
                    let _ = write!(comment, " [fragment {}/{}]", k + 1, pieces.len());
                    out(point, ts, p, comment, outbound)?;
                }
            }
            _ => out(point, ts, cur, comment, outbound)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{DropReason, Header, Pending, Place, WalkBuf};
    use super::*;

    /// The hand-written trace line is the line serde writes from
    /// [`TraceLine`], byte for byte; strings needing escapes (names cannot
    /// hold them; the writer escapes them all the same) as serde escapes.
    #[test]
    fn the_trace_line_is_serdes() {
        for tricky in ["plain", "q\"uote", "back\\slash", "tab\tnl\n\u{1}", "é → ü"] {
            let mut ours = Vec::new();
            push_json_str(&mut ours, tricky);
            assert_eq!(ours, serde_json::to_vec(tricky).unwrap(), "{tricky:?}");
        }
        let text = crate::topology::generate::hub_spoke(1, 2, 0);
        let t = crate::topology::load_str("t.toml", &text).expect("loads");
        let cp = crate::control::converge(&t, &[]).expect("converges");
        let world = World::new(&cp);
        let a = t.nics.iter().position(|n| n.name == "spoke0-vm0").unwrap();
        let b = t.nics.iter().find(|n| n.name == "spoke0-vm1").unwrap();
        let mut buf = WalkBuf::default();
        let h = Header {
            src: t.nics[a].ips[0],
            dst: b.ips[0],
            proto: 17,
            sport: 1,
            dport: 2,
        };
        buf.packet.reset(h, 64, 100);
        let o = world.forward_with(
            Start::Nic(NicId(a as u32)),
            &mut buf,
            &Pending::default(),
            false,
        );
        let dropped = Outcome::Dropped(Place::Capture, DropReason::Malformed);
        for (o, version) in [(o, Some(3)), (dropped, None)] {
            let mut ours = Vec::new();
            write_trace_line(&mut ours, &world, 7, o, &buf.hops, version);
            let at = world.place_name(o.place());
            let line = TraceLine {
                packet: 7,
                verdict: o.kind(),
                at: &at,
                reason: match o {
                    Outcome::Dropped(_, r) => Some(r.code()),
                    Outcome::Loop { .. } => Some("loop"),
                    Outcome::Delivered(_) => None,
                },
                table_version: version.unwrap_or(0),
                path: Path {
                    world: &world,
                    hops: &buf.hops,
                },
            };
            let mut theirs = serde_json::to_vec(&line).unwrap();
            theirs.push(b'\n');
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
