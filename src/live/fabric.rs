//! The fabric: frames read from the lab's veth ends through AF_PACKET
//! receive rings ([`super::ring`]; the ports found with pnet), walked by
//! the hop machine under the control plane's latest snapshot, and written
//! out of the port where the walk ends.
//!
//! - Each port is read by `workers` rings in a `PACKET_FANOUT_HASH`
//!   group, each on its own thread: the kernel spreads a port's flows over
//!   them as a NIC's RSS spreads them over queues. A thread forwards what
//!   it reads itself (walk, rewrite, send), adopting new snapshots between
//!   frames; it sends out of another port through its own socket bound to
//!   that port, opened on first use.
//! - ARP is answered for every address with Azure's router MAC
//!   (`12:34:56:78:9a:bc`), as Azure's hosts answer it; IPv6 neighbour
//!   solicitations alike.
//! - A packet whose TTL runs out at an NVA the fabric models (a drop, or
//!   a loop through NVA OSes) comes back to its sender as ICMP Time
//!   Exceeded from the NVA's address; an echo request to such an NVA is
//!   answered by it. Both go back through the walk.
//! - A reader's ring does not read back the frames going out of its
//!   port; a send-only socket per port a reader sends to receives nothing.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use pnet_datalink::{self as datalink, NetworkInterface};

use super::ring::{RxRing, Tx};

use super::lab::{Plan, PortKind};
use crate::dataplane::frame::Hops;
use crate::dataplane::frame::{self as replay, RenderBufs};
use crate::dataplane::{At, DropReason, Effects, Outcome, Place, Start, WalkBuf};
use crate::io::{FrameRef, Link};
use crate::pipeline::Snapshot;
use crate::topology::{NicId, NvaId};
use crate::wire::{self, AZURE_ROUTER_MAC};

/// What the fabric counted (in a run's summary as they are, drops as a
/// map of reason codes).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counts {
    /// Frames read from the ports.
    #[serde(rename = "frames_read")]
    pub read: u64,
    /// IP packets read and handed to an endpoint.
    pub forwarded: u64,
    /// Packets delivered to something the fabric models (an NVA it runs,
    /// a gateway): answered or absorbed there.
    pub absorbed: u64,
    #[serde(serialize_with = "drops_by_reason")]
    pub dropped: [u64; DropReason::ALL.len()],
    pub looped: u64,
    pub arp_replies: u64,
    pub nd_replies: u64,
    /// Link-local or multicast packets, which end at the host (VNets carry
    /// neither).
    pub link_local: u64,
    /// ICMP the fabric sent (time exceeded, echo replies of modelled NVAs).
    pub icmp_sent: u64,
    /// Packets read whose port refused to send them (too big for its
    /// MTU, full queue).
    pub send_errors: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.read += o.read;
        self.forwarded += o.forwarded;
        self.absorbed += o.absorbed;
        for (a, b) in self.dropped.iter_mut().zip(o.dropped) {
            *a += b;
        }
        self.looped += o.looped;
        self.arp_replies += o.arp_replies;
        self.nd_replies += o.nd_replies;
        self.link_local += o.link_local;
        self.icmp_sent += o.icmp_sent;
        self.send_errors += o.send_errors;
    }

    /// Every frame read ended in exactly one count.
    pub fn balanced(&self) -> bool {
        let dropped: u64 = self.dropped.iter().sum();
        self.read
            == self.forwarded
                + self.send_errors
                + self.absorbed
                + dropped
                + self.looped
                + self.arp_replies
                + self.nd_replies
                + self.link_local
    }

    /// Drops by reason code, the reasons met only.
    pub fn drops(&self) -> Vec<(&'static str, u64)> {
        met(&self.dropped).collect()
    }

    fn drop(&mut self, r: DropReason) {
        if let Some(i) = DropReason::ALL.iter().position(|x| *x == r) {
            self.dropped[i] += 1;
        }
    }
}

/// A frame the fabric captured: (capture point, encoded pcapng block).
pub type Captured = (u32, Vec<u8>);

/// What every port thread shares.
pub struct Shared {
    pub plan: Plan,
    /// The fabric's interfaces, by port.
    pub ifaces: Vec<NetworkInterface>,
    /// Port of each NIC that has one.
    pub nic_port: Vec<Option<usize>>,
    pub site_port: Vec<Option<usize>>,
    /// Addresses of Azure's BGP speakers' instances (Route Servers,
    /// gateways) and their ports.
    pub speaker_ports: Vec<(IpAddr, usize)>,
    pub internet: usize,
    pub stop: Arc<AtomicBool>,
    /// Blocks of captured frames, to the pcapng writer; used buffers come
    /// back on the second channel.
    pub capture: Option<(Sender<Captured>, Receiver<Vec<u8>>)>,
}

/// Why the fabric could not start.
#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    #[error("fabric port {0} not found in the fabric's namespace")]
    NoPort(String),
    #[error("opening an AF_PACKET socket on {port}: {source}")]
    Socket {
        port: String,
        source: std::io::Error,
    },
    #[error("port {0}: not an Ethernet channel")]
    NotEthernet(String),
}

impl Shared {
    /// Finds the fabric's ports (the caller's thread is in the fabric's
    /// namespace).
    pub fn new(
        plan: Plan,
        nics: usize,
        sites: usize,
        stop: Arc<AtomicBool>,
        capture: Option<(Sender<Captured>, Receiver<Vec<u8>>)>,
    ) -> Result<Shared, FabricError> {
        let all = datalink::interfaces();
        let mut ifaces = Vec::new();
        for p in &plan.ports {
            let i = all
                .iter()
                .find(|i| i.name == p.fabric_dev)
                .ok_or_else(|| FabricError::NoPort(p.fabric_dev.clone()))?;
            ifaces.push(i.clone());
        }
        let mut nic_port = vec![None; nics];
        let mut site_port = vec![None; sites];
        let mut speaker_ports = Vec::new();
        let mut internet = 0;
        for (k, p) in plan.ports.iter().enumerate() {
            match p.kind {
                PortKind::Nic(n) => nic_port[n.idx()] = Some(k),
                PortKind::Site(s) => site_port[s.idx()] = Some(k),
                PortKind::Speaker(..) => {
                    speaker_ports.extend(p.addrs.iter().map(|(a, _)| (*a, k)));
                }
                PortKind::Internet => internet = k,
            }
        }
        Ok(Shared {
            plan,
            ifaces,
            nic_port,
            site_port,
            speaker_ports,
            internet,
            stop,
            capture,
        })
    }

    /// The port of the speaker instance that owns `ip`, if one does.
    fn speaker_port(&self, ip: IpAddr) -> Option<usize> {
        self.speaker_ports
            .iter()
            .find(|(a, _)| *a == ip)
            .map(|(_, k)| *k)
    }

    fn socket_error(&self, port: usize, source: std::io::Error) -> FabricError {
        FabricError::Socket {
            port: self.plan.ports[port].fabric_dev.clone(),
            source,
        }
    }
}

/// One reader of one port.
pub struct PortWorker {
    sh: Arc<Shared>,
    port: usize,
    rx: RxRing,
    /// Senders per port, opened on first use.
    tx: Vec<Option<Tx>>,
    snap: Arc<Snapshot>,
    updates: Receiver<Arc<Snapshot>>,
    buf: WalkBuf,
    render: RenderBufs,
    /// A frame being built (replies, ICMP).
    scratch: Vec<u8>,
    /// Frames walked, for ESP sequence numbers and IP ids.
    number: usize,
    pub counts: Counts,
}

impl PortWorker {
    /// Opens port `port`'s reader `k` (the caller's thread is in the
    /// fabric's namespace).
    pub fn new(
        sh: Arc<Shared>,
        port: usize,
        workers: usize,
        snap: Arc<Snapshot>,
        updates: Receiver<Arc<Snapshot>>,
    ) -> Result<PortWorker, FabricError> {
        let fanout = (workers > 1).then_some(port as u16);
        let index = sh.ifaces[port].index;
        let rx = RxRing::open(index, fanout).map_err(|e| sh.socket_error(port, e))?;
        let mut tx: Vec<Option<Tx>> = (0..sh.plan.ports.len()).map(|_| None).collect();
        tx[port] = Some(Tx::open(index).map_err(|e| sh.socket_error(port, e))?);
        Ok(PortWorker {
            sh,
            port,
            rx,
            tx,
            snap,
            updates,
            buf: WalkBuf::default(),
            render: RenderBufs::default(),
            scratch: Vec::new(),
            number: 0,
            counts: Counts::default(),
        })
    }

    /// Reads and forwards until the stop flag is set.
    pub fn run(mut self) -> Result<Counts, FabricError> {
        let mut frame = Vec::with_capacity(2048);
        while !self.sh.stop.load(Ordering::Relaxed) {
            let got = self.rx.next(100, |f| {
                frame.clear();
                frame.extend_from_slice(f);
            });
            match got {
                Ok(true) => {}
                Ok(false) => continue,
                Err(source) => {
                    return Err(FabricError::Socket {
                        port: self.sh.plan.ports[self.port].fabric_dev.clone(),
                        source,
                    });
                }
            }
            if frame.len() < 14 {
                self.counts.read += 1;
                self.counts.drop(DropReason::Malformed);
                continue;
            }
            while let Ok(s) = self.updates.try_recv() {
                self.snap = s;
            }
            self.counts.read += 1;
            self.frame(&frame);
        }
        Ok(self.counts)
    }

    fn frame(&mut self, frame: &[u8]) {
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        if ethertype == 0x0806 {
            self.arp(frame);
            return;
        }
        let p = match wire::parse(Link::Ethernet, frame) {
            Ok(p) => p,
            Err(wire::ParseError::NotIp(_)) => return self.counts.drop(DropReason::NotIp),
            Err(_) => return self.counts.drop(DropReason::Malformed),
        };
        if p.proto == 58 && self.neighbour(frame, &p) {
            return;
        }
        // Link-local and multicast traffic (MLD reports, mDNS, IGMP) ends
        // at the host: Azure's fabric forwards neither.
        if link_scoped(&p) {
            self.counts.link_local += 1;
            return;
        }
        let kind = self.sh.plan.ports[self.port].kind;
        let start = match kind {
            PortKind::Nic(n) => Start::Nic(n),
            PortKind::Site(s) => Start::Site(s),
            PortKind::Internet | PortKind::Speaker(..) => {
                return self.arrive_direct(frame, &p, kind);
            }
        };
        let src_mac = self.sh.plan.ports[self.port].mac;
        wire::normalize(
            frame,
            p.ip_offset,
            AZURE_ROUTER_MAC,
            src_mac,
            &mut self.render.cur,
        );
        self.walk(start, &p, Some(&frame[p.ip_offset..]));
    }

    /// Traffic from the Internet or a speaker's instance: to the NIC
    /// that owns its destination (a public IP translated to the private
    /// one). The Internet's own routing and a Route Server's replies to
    /// its peers are not modelled hop by hop.
    fn arrive_direct(&mut self, frame: &[u8], p: &wire::Parsed, kind: PortKind) {
        let world = &self.snap.world;
        let mut dst = p.dst;
        if kind == PortKind::Internet
            && let Some(crate::dataplane::PublicOwner::Nic(n)) = world.public_owner(p.dst)
            && let Some(private) = world.cp.topology.nic(n).ips.iter().find(|a| a.is_ipv4())
        {
            dst = *private;
        }
        let Some(port) = world
            .nic_for_source(dst)
            .and_then(|n| self.sh.nic_port[n.idx()])
        else {
            return self.counts.drop(DropReason::NoOwner);
        };
        wire::normalize(
            frame,
            p.ip_offset,
            AZURE_ROUTER_MAC,
            AZURE_ROUTER_MAC,
            &mut self.render.cur,
        );
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (p.src, dst)
            && dst != p.dst
        {
            let _ = wire::rewrite_addresses(&mut self.render.cur[14..], s, d);
        }
        let out = std::mem::take(&mut self.render.cur);
        if self.send(port, &out) {
            self.counts.forwarded += 1;
        } else {
            self.counts.send_errors += 1;
        }
        self.render.cur = out;
    }

    /// Walks the packet in `render.cur` from `start` and hands it to the
    /// port where it ends. `original`: the IP packet as read from a port
    /// (`None` for packets the fabric generated: no errors about those).
    fn walk(&mut self, start: Start, p: &wire::Parsed, original: Option<&[u8]>) {
        let snap = self.snap.clone();
        let world = &snap.world;
        let h = crate::dataplane::Header {
            src: p.src,
            dst: p.dst,
            proto: p.proto,
            sport: p.sport,
            dport: p.dport,
        };
        if replay::may_be_tunnel(&h) {
            self.buf.packet = replay::packet_of(&self.render.cur, h, p.ttl);
        } else {
            self.buf
                .packet
                .reset(h, p.ttl.max(1), self.render.cur.len().saturating_sub(14));
        }
        let o = world.forward_with(start, &mut self.buf, &snap.pending, false);
        self.number += 1;
        let f = FrameRef {
            number: self.number,
            timestamp: Duration::ZERO,
            link: Link::Ethernet,
            data: &[],
        };
        let hops = std::mem::take(&mut self.buf.hops);
        // The bytes change only where a hop has effects (TTL, tunnels,
        // translation); without them and without a capture the frame
        // leaves as it came, its MACs set when it is sent.
        let capture = &self.sh.capture;
        if capture.is_some() || hops.iter().any(|h| h.effects != Effects::default()) {
            let mut sink = |point: u32, _: Duration, data: &[u8], comment: &str, outbound: bool| {
                if let Some((tx, back)) = capture {
                    let mut b = back.try_recv().unwrap_or_default();
                    b.clear();
                    let ts = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    crate::io::encode_epb(&mut b, ts, data, comment, outbound);
                    // Waits for the writer when it is behind: a capture
                    // holds every frame.
                    let _ = tx.send((point, b));
                }
                Ok(())
            };
            let _ = replay::render(world, &hops, o, f, Hops::All, &mut self.render, &mut sink);
        }
        if let Some(last) = hops.last()
            && let Some((s, d)) = last.effects.nat
            && self.render.cur.len() > 14
        {
            let _ = wire::rewrite_addresses(&mut self.render.cur[14..], s, d);
        }
        match o {
            Outcome::Delivered(place) => {
                let speaker = self.sh.speaker_port(self.buf.packet.outer().header.dst);
                let port = match place {
                    Place::At(At::NicIn(n)) => self.sh.nic_port[n.idx()],
                    Place::At(At::Site(s)) => self.sh.site_port[s.idx()],
                    Place::Internet => Some(self.sh.internet),
                    // A Route Server's or a gateway's own address: its
                    // speaker, when it has one here.
                    Place::RouteServer(_) | Place::At(At::Gateway(_) | At::GatewayIn(_))
                        if speaker.is_some() =>
                    {
                        speaker
                    }
                    Place::At(At::Nva(v)) => {
                        if let Some(ip) = original {
                            self.counts.absorbed += 1;
                            self.echo_reply(v, ip);
                        }
                        None
                    }
                    _ => {
                        if original.is_some() {
                            self.counts.absorbed += 1;
                        }
                        None
                    }
                };
                if let Some(port) = port {
                    let out = std::mem::take(&mut self.render.cur);
                    let sent = self.send(port, &out);
                    self.render.cur = out;
                    match (original.is_some(), sent) {
                        (true, true) => self.counts.forwarded += 1,
                        (true, false) => self.counts.send_errors += 1,
                        (false, true) => self.counts.icmp_sent += 1,
                        (false, false) => {}
                    }
                }
            }
            // What becomes of the fabric's own packets is not counted:
            // only those it delivers (`icmp_sent`).
            Outcome::Dropped(..) | Outcome::Loop { .. } if original.is_none() => {}
            Outcome::Dropped(place, reason) => {
                self.counts.drop(reason);
                if let Some(ip) = original
                    && reason == DropReason::TtlExceeded
                    && let Place::At(At::Nva(v)) = place
                {
                    self.time_exceeded(v, &hops, hops.len().saturating_sub(1), ip);
                }
            }
            Outcome::Loop { first, .. } => {
                self.counts.looped += 1;
                if let Some(ip) = original
                    && let Some(first) = first
                {
                    self.loop_expiry(&hops, first, ip);
                }
            }
        }
        self.buf.hops = hops;
    }

    /// Where a looping packet's TTL runs out: the NVA OS hops of the cycle
    /// each take one; it expires at the NVA that gets it with TTL 1.
    fn loop_expiry(&mut self, hops: &[crate::dataplane::Hop], first: usize, ip: &[u8]) {
        let cycle = &hops[first..];
        if !cycle.iter().any(|h| h.effects.ttl_decrement) {
            return;
        }
        // The TTL as the cycle starts, spent lap after lap.
        let mut ttl = cycle[0].ttl;
        for _ in 0..=255 {
            for (i, h) in cycle.iter().enumerate() {
                if let At::Nva(v) = h.at
                    && h.effects.ttl_decrement
                {
                    if ttl <= 1 {
                        return self.time_exceeded(v, hops, first + i, ip);
                    }
                    ttl -= 1;
                }
            }
        }
    }

    /// The NVA's address a packet reached it on (the NIC of the hop
    /// before `at`).
    fn nva_address(&self, v: NvaId, hops: &[crate::dataplane::Hop], at: usize) -> Option<IpAddr> {
        let t = &self.snap.world.cp.topology;
        let nic = hops[..at]
            .iter()
            .rev()
            .find_map(|h| match h.at {
                At::NicIn(n) => Some(n),
                _ => None,
            })
            .or_else(|| t.nvas[v.idx()].nics.first().copied())?;
        t.nic(nic).ips.iter().copied().find(IpAddr::is_ipv4)
    }

    /// Sends ICMP Time Exceeded from NVA `v` to the packet's sender.
    fn time_exceeded(&mut self, v: NvaId, hops: &[crate::dataplane::Hop], at: usize, ip: &[u8]) {
        let Some(IpAddr::V4(from)) = self.nva_address(v, hops, at) else {
            return;
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            return;
        }
        let to = [ip[12], ip[13], ip[14], ip[15]];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let quoted: Vec<u8> = ip[..(ihl + 8).min(ip.len())].to_vec();
        let b = etherparse::PacketBuilder::ethernet2(AZURE_ROUTER_MAC, AZURE_ROUTER_MAC)
            .ipv4(from.octets(), to, 64)
            .icmpv4(etherparse::Icmpv4Type::TimeExceeded(
                etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
            ));
        self.generated(v, b, &quoted);
    }

    /// An echo request addressed to a modelled NVA: its echo reply.
    fn echo_reply(&mut self, v: NvaId, ip: &[u8]) {
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            return;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip[9] != 1 || ip.len() < ihl + 8 || ip[ihl] != 8 {
            return;
        }
        let (src, dst) = (
            [ip[16], ip[17], ip[18], ip[19]],
            [ip[12], ip[13], ip[14], ip[15]],
        );
        let icmp = &ip[ihl..];
        let id = u16::from_be_bytes([icmp[4], icmp[5]]);
        let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
        let payload = icmp[8..].to_vec();
        let b = etherparse::PacketBuilder::ethernet2(AZURE_ROUTER_MAC, AZURE_ROUTER_MAC)
            .ipv4(src, dst, 64)
            .icmpv4_echo_reply(id, seq);
        self.generated(v, b, &payload);
    }

    /// Builds a packet an NVA sends and walks it from the NVA's OS.
    fn generated(
        &mut self,
        v: NvaId,
        b: etherparse::PacketBuilderStep<etherparse::Icmpv4Header>,
        payload: &[u8],
    ) {
        let mut out = Vec::with_capacity(b.size(payload.len()));
        if b.write(&mut out, payload).is_err() {
            return;
        }
        let Ok(p) = wire::parse(Link::Ethernet, &out) else {
            return;
        };
        self.render.cur.clear();
        self.render.cur.extend_from_slice(&out);
        self.walk(Start::Nva(v), &p, None);
    }

    /// Sends a frame out of port `port`, addressed to its endpoint;
    /// whether the port took it.
    fn send(&mut self, port: usize, frame: &[u8]) -> bool {
        let mac = self.sh.plan.ports[port].mac;
        if self.tx[port].is_none() {
            match Tx::open(self.sh.ifaces[port].index) {
                Ok(tx) => self.tx[port] = Some(tx),
                Err(_) => return false,
            }
        }
        let Some(tx) = self.tx[port].as_ref() else {
            return false;
        };
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.extend_from_slice(frame);
        wire::set_macs(&mut out, mac, AZURE_ROUTER_MAC);
        let sent = tx.send(&out).is_ok();
        self.scratch = out;
        sent
    }

    /// Answers an ARP request for any address but the asker's own.
    fn arp(&mut self, frame: &[u8]) {
        let a = &frame[14..];
        // Ethernet/IPv4 requests are answered; the rest (replies,
        // announcements, probes) end here, at the host.
        if a.len() < 28 || a[0..2] != [0, 1] || a[2..4] != [8, 0] || a[6..8] != [0, 1] {
            self.counts.link_local += 1;
            return;
        }
        let (sha, spa, tpa) = (&a[8..14], &a[14..18], &a[24..28]);
        if spa == tpa || tpa == [0, 0, 0, 0] || spa == [0, 0, 0, 0] {
            self.counts.link_local += 1;
            return;
        }
        let mut r = std::mem::take(&mut self.scratch);
        r.clear();
        r.extend_from_slice(sha);
        r.extend_from_slice(&AZURE_ROUTER_MAC);
        r.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
        r.extend_from_slice(&AZURE_ROUTER_MAC);
        r.extend_from_slice(tpa);
        r.extend_from_slice(sha);
        r.extend_from_slice(spa);
        self.counts.arp_replies += 1;
        if let Some(tx) = self.tx[self.port].as_ref() {
            let _ = tx.send(&r);
        }
        self.scratch = r;
    }

    /// Answers an IPv6 neighbour solicitation with the router MAC; whether
    /// the frame was one (router solicitations and MLD are absorbed too).
    fn neighbour(&mut self, frame: &[u8], p: &wire::Parsed) -> bool {
        let ip = &frame[p.ip_offset..];
        if ip.len() < 40 + 24 || ip[6] != 58 {
            return false;
        }
        let icmp = &ip[40..];
        match icmp[0] {
            135 => {
                let target: [u8; 16] = icmp[8..24].try_into().unwrap_or_default();
                let IpAddr::V6(src) = p.src else {
                    self.counts.link_local += 1;
                    return true;
                };
                let dst_ip = if src.is_unspecified() {
                    "ff02::1".parse().unwrap_or(src)
                } else {
                    src
                };
                let mut opt = vec![2u8, 1];
                opt.extend_from_slice(&AZURE_ROUTER_MAC);
                let mut payload = target.to_vec();
                payload.extend_from_slice(&opt);
                let builder = etherparse::PacketBuilder::ethernet2(
                    AZURE_ROUTER_MAC,
                    frame[6..12].try_into().unwrap_or_default(),
                )
                .ipv6(target, dst_ip.octets(), 255)
                .icmpv6(etherparse::Icmpv6Type::Unknown {
                    type_u8: 136,
                    code_u8: 0,
                    bytes5to8: [0x60, 0, 0, 0],
                });
                let mut b = Vec::with_capacity(builder.size(payload.len()));
                if builder.write(&mut b, &payload).is_err() {
                    self.counts.link_local += 1;
                    return true;
                }
                self.counts.nd_replies += 1;
                if let Some(tx) = self.tx[self.port].as_ref() {
                    let _ = tx.send(&b);
                }
                true
            }
            133 | 143 | 130..=132 => {
                self.counts.link_local += 1;
                true
            }
            _ => false,
        }
    }
}

/// Drops as (reason code → count), the reasons met only.
fn drops_by_reason<S: serde::Serializer>(
    d: &[u64; DropReason::ALL.len()],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(met(d))
}

/// (reason code, count) of the reasons met.
fn met(d: &[u64; DropReason::ALL.len()]) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    DropReason::ALL
        .iter()
        .zip(d)
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| (r.code(), *n))
}

/// Whether a packet stays on its link: multicast or broadcast to, or
/// link-local from.
fn link_scoped(p: &wire::Parsed) -> bool {
    let src_link = match p.src {
        IpAddr::V6(a) => a.is_unicast_link_local(),
        IpAddr::V4(a) => a.is_link_local(),
    };
    let dst_group = match p.dst {
        IpAddr::V6(a) => a.is_multicast(),
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
    };
    src_link || dst_group
}

/// Sums the counts of every port thread.
pub fn total(all: &[Counts]) -> Counts {
    let mut t = Counts::default();
    for c in all {
        t.add(c);
    }
    t
}

/// The NIC of a port, if it is one.
pub fn port_nic(plan: &Plan, port: usize) -> Option<NicId> {
    match plan.ports[port].kind {
        PortKind::Nic(n) => Some(n),
        _ => None,
    }
}
