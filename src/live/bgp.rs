//! Real BGP between the modelled Route Servers (and VPN gateways) and NVAs
//! run by real software: one TCP listener per instance, in that
//! instance's namespace, and one session per connecting NVA, driven by
//! `rustbgpd-fsm` with messages coded by `rustbgpd-wire`.
//!
//! - What a peer announces enters the control plane as `advertise NVA
//!   PREFIX` live events (and `withdraw` when no session of that NVA
//!   holds the prefix any more); the reconverged tables reach the
//!   workers as any live update does.
//! - What a session sends is what the model's speaker instance
//!   advertises to that NVA (65515 paths, branch-to-branch as
//!   configured), recomputed at every table version: each change goes out
//!   as announcements and withdrawals.
//! - Azure's speakers are passive here: the NVA connects to them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::Sender;
use ipnet::IpNet;
use rustbgpd_fsm::{Action, Event, PeerConfig, Session, SessionState, TimerType};
use rustbgpd_wire::attribute::{AsPath, AsPathSegment, Origin};
use rustbgpd_wire::{
    Ipv4NlriEntry, Ipv4Prefix, Ipv4UnicastMode, Message, PathAttribute, UpdateMessage,
};

use super::netns;
use crate::control::bgp::Node;
use crate::control::events::Event as CpEvent;
use crate::pipeline::{LiveEvents, Snapshot};
use crate::topology::{NvaId, Speaker, Topology};

/// A session's state and what it learned, for the run's summary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionReport {
    /// The NVA (`nva1`).
    pub peer: String,
    pub peer_ip: IpAddr,
    /// Azure's speaker instance (`rs-hub1/IN_0`, `gw-vpn/IN_1`).
    pub azure_peer: String,
    /// The FSM's state when the run ended (or when the peer closed the
    /// connection).
    pub state: String,
    /// Whether it ever reached Established.
    pub established: bool,
    /// Prefixes the peer announced (and had not withdrawn).
    pub learned: Vec<String>,
    /// Prefixes the peer announced with Azure's own AS (65515) in the
    /// path: dropped, as Azure drops them (R27 at a Route Server, the AS
    /// loop check at a gateway).
    pub rejected: Vec<String>,
    /// Prefixes sent to the peer at the end.
    pub advertised: usize,
}

/// One report per (peer, instance): a peer that connected again has its
/// last connection's state and what it learned, established if any
/// connection was.
pub fn merge_reports(mut all: Vec<SessionReport>) -> Vec<SessionReport> {
    // Each connection's report was pushed as it ended: later ones last.
    let mut out: Vec<SessionReport> = Vec::new();
    for r in all.drain(..) {
        match out
            .iter_mut()
            .find(|o| (&o.peer, &o.azure_peer) == (&r.peer, &r.azure_peer))
        {
            Some(o) => {
                let was = o.established;
                *o = r;
                o.established |= was;
            }
            None => out.push(r),
        }
    }
    out.sort_by(|a, b| (&a.peer, &a.azure_peer).cmp(&(&b.peer, &b.azure_peer)));
    out
}

/// An instance of Azure's BGP speaker (a Route Server or a VPN gateway)
/// speaking real BGP.
#[derive(Clone, Debug)]
pub struct Instance {
    pub speaker: Speaker,
    /// Its ASN (65515 unless a gateway's is set otherwise).
    pub asn: u32,
    pub k: u8,
    pub ip: Ipv4Addr,
    pub ns: String,
}

/// An NVA allowed to peer with instances: its addresses and ASN.
#[derive(Clone, Debug)]
pub struct Peer {
    pub nva: NvaId,
    pub name: String,
    pub ips: Vec<IpAddr>,
    pub asn: u32,
}

/// What every session shares.
pub struct Hub {
    /// The latest tables (sessions compare versions to send changes).
    pub latest: RwLock<Arc<Snapshot>>,
    /// How many sessions hold each (NVA, prefix).
    held: Mutex<BTreeMap<(NvaId, IpNet), u32>>,
    events: Sender<LiveEvents>,
    pub reports: Mutex<Vec<SessionReport>>,
    pub stop: Arc<AtomicBool>,
}

impl Hub {
    pub fn new(first: Arc<Snapshot>, events: Sender<LiveEvents>, stop: Arc<AtomicBool>) -> Hub {
        Hub {
            latest: RwLock::new(first),
            held: Mutex::new(BTreeMap::new()),
            events,
            reports: Mutex::new(Vec::new()),
            stop,
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.latest
            .read()
            .map_or_else(|e| e.into_inner().clone(), |s| s.clone())
    }

    /// A session now holds `add` and no longer `remove`: the control
    /// plane hears of prefixes whose holders went from 0 to 1 or 1 to 0.
    fn hold(&self, nva: NvaId, name: &str, add: &[IpNet], remove: &[IpNet]) {
        let mut events = Vec::new();
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            for p in add {
                let n = held.entry((nva, *p)).or_insert(0);
                *n += 1;
                if *n == 1 {
                    events.push(CpEvent::Advertise {
                        speaker: name.to_string(),
                        prefix: *p,
                    });
                }
            }
            for p in remove {
                if let Some(n) = held.get_mut(&(nva, *p)) {
                    *n -= 1;
                    if *n == 0 {
                        held.remove(&(nva, *p));
                        events.push(CpEvent::Withdraw {
                            speaker: name.to_string(),
                            prefix: *p,
                        });
                    }
                }
            }
        }
        if !events.is_empty() {
            let _ = self.events.send(LiveEvents::now(events));
        }
    }
}

/// Why a speaker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    #[error("listening on {ip}:179 in {ns}: {source}")]
    Listen {
        ip: Ipv4Addr,
        ns: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
}

/// Opens instance `inst`'s listener (in its namespace) and serves peers
/// on threads of their own until the hub's stop flag is set.
pub fn serve(
    hub: Arc<Hub>,
    inst: Instance,
    peers: Vec<Peer>,
) -> Result<std::thread::JoinHandle<()>, BgpError> {
    let listener =
        netns::within(&inst.ns, || TcpListener::bind((inst.ip, 179)))?.map_err(|source| {
            BgpError::Listen {
                ip: inst.ip,
                ns: inst.ns.clone(),
                source,
            }
        })?;
    let _ = listener.set_nonblocking(true);
    Ok(std::thread::spawn(move || {
        let mut sessions = Vec::new();
        while !hub.stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, from)) => {
                    let Some(peer) = peers.iter().find(|p| p.ips.contains(&from.ip())).cloned()
                    else {
                        // Not a configured peer: refused, as Azure does.
                        drop(stream);
                        continue;
                    };
                    let (hub, inst) = (hub.clone(), inst.clone());
                    sessions.push(std::thread::spawn(move || {
                        let report = run_session(&hub, &inst, &peer, stream, from.ip());
                        hub.reports
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(report);
                    }));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        for s in sessions {
            let _ = s.join();
        }
    }))
}

/// The routes instance `inst` advertises to NVA `nva` under `snap`:
/// (prefix → (next hop, AS path)), IPv4 only (Route Server's).
fn adj_out(snap: &Snapshot, inst: &Instance, nva: NvaId) -> BTreeMap<IpNet, (Ipv4Addr, Vec<u32>)> {
    let cp = &snap.world.cp;
    let label = format!("RouteServiceRole_IN_{}", inst.k);
    let node = match inst.speaker {
        Speaker::RouteServer(r) => Node::RouteServer(r),
        Speaker::Gateway(g) => Node::Gateway(g),
        Speaker::Nva(v) => Node::Nva(v),
        Speaker::Site(s) => Node::Site(s),
    };
    crate::io::azure::model_peer_routes(cp, node, Node::Nva(nva), false)
        .into_iter()
        .filter(|(l, _)| *l == label)
        .flat_map(|(_, routes)| routes)
        .filter_map(|r| match (r.network, r.next_hop) {
            (IpNet::V4(_), IpAddr::V4(nh)) => Some((r.network, (nh, r.as_path))),
            _ => None,
        })
        .collect()
}

fn prefix_entry(p: &IpNet) -> Option<Ipv4NlriEntry> {
    match p {
        IpNet::V4(n) => Some(Ipv4NlriEntry {
            path_id: 0,
            prefix: Ipv4Prefix::new(n.addr(), n.prefix_len()),
        }),
        IpNet::V6(_) => None,
    }
}

/// One session, from the accepted connection to its end.
fn run_session(
    hub: &Hub,
    inst: &Instance,
    peer: &Peer,
    mut stream: TcpStream,
    from: IpAddr,
) -> SessionReport {
    let t_name = |t: &Topology| match inst.speaker {
        Speaker::RouteServer(r) => t.route_servers[r.idx()].name.clone(),
        Speaker::Gateway(g) => t.gateway(g).name.clone(),
        Speaker::Nva(v) => t.nvas[v.idx()].name.clone(),
        Speaker::Site(s) => t.sites[s.idx()].name.clone(),
    };
    let snap0 = hub.snapshot();
    let mut report = SessionReport {
        peer: peer.name.clone(),
        peer_ip: from,
        azure_peer: format!("{}/IN_{}", t_name(&snap0.world.cp.topology), inst.k),
        state: String::new(),
        established: false,
        learned: Vec::new(),
        rejected: Vec::new(),
        advertised: 0,
    };
    let mut cfg = PeerConfig::new(inst.asn, peer.asn, inst.ip);
    cfg.hold_time = 90;
    cfg.families = vec![(rustbgpd_wire::Afi::Ipv4, rustbgpd_wire::Safi::Unicast)];
    let mut fsm = Session::new(cfg);
    let mut timers: BTreeMap<u8, Instant> = BTreeMap::new();
    let timer_id = |t: TimerType| match t {
        TimerType::ConnectRetry => 0u8,
        TimerType::Hold => 1,
        TimerType::Keepalive => 2,
        _ => 3,
    };
    let mut inbuf = BytesMut::new();
    let mut learned: BTreeSet<IpNet> = BTreeSet::new();
    // Announced with the speaker's own AS in the path: dropped.
    let mut rejected: BTreeSet<IpNet> = BTreeSet::new();
    let mut sent: BTreeMap<IpNet, (Ipv4Addr, Vec<u32>)> = BTreeMap::new();
    let mut sent_version: Option<u32> = None;
    let mut four_octet = true;
    let mut open = true;
    let mut pending: Vec<Event> = vec![Event::ManualStart, Event::TcpConnectionAcknowledged];
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = stream.set_nodelay(true);
    let mut chunk = [0u8; 4096];
    while open {
        // Feed pending events; carry out the actions.
        while let Some(ev) = (!pending.is_empty()).then(|| pending.remove(0)) {
            for a in fsm.handle_event(ev) {
                match a {
                    Action::SendOpen(o) => open &= send(&mut stream, &Message::Open(o)),
                    Action::SendKeepalive => open &= send(&mut stream, &Message::Keepalive),
                    Action::SendNotification(n) => {
                        let _ = send(&mut stream, &Message::Notification(n));
                    }
                    Action::StartTimer(t, secs) => {
                        timers.insert(
                            timer_id(t),
                            Instant::now() + Duration::from_secs(secs.into()),
                        );
                    }
                    Action::StopTimer(t) => {
                        timers.remove(&timer_id(t));
                    }
                    Action::CloseTcpConnection => open = false,
                    Action::SessionEstablished(n) => {
                        report.established = true;
                        four_octet = n.four_octet_as;
                        sent_version = None;
                    }
                    Action::SessionDown => {
                        report.learned = learned.iter().map(ToString::to_string).collect();
                        let gone: Vec<IpNet> = std::mem::take(&mut learned).into_iter().collect();
                        hub.hold(peer.nva, &peer.name, &[], &gone);
                    }
                    _ => {}
                }
            }
        }
        if !open {
            break;
        }
        if hub.stop.load(Ordering::Relaxed) {
            // The state the run leaves it in, before the stop closes it.
            report.state = fsm.state().as_str().to_string();
            pending.push(Event::ManualStop { reason: None });
            continue;
        }
        // Changes of the tables go out once established.
        if fsm.state() == SessionState::Established {
            let snap = hub.snapshot();
            if sent_version != Some(snap.version) {
                sent_version = Some(snap.version);
                let now = adj_out(&snap, inst, peer.nva);
                open &= send_changes(&mut stream, &sent, &now, four_octet);
                sent = now;
            }
        }
        // Timers due.
        let now = Instant::now();
        let due: Vec<u8> = timers
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            timers.remove(&k);
            pending.push(match k {
                0 => Event::ConnectRetryTimerExpires,
                1 => Event::HoldTimerExpires,
                _ => Event::KeepaliveTimerExpires,
            });
        }
        if !pending.is_empty() {
            continue;
        }
        match stream.read(&mut chunk) {
            Ok(0) => pending.push(Event::TcpConnectionFails),
            Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => pending.push(Event::TcpConnectionFails),
        }
        // Whole messages read.
        while let Ok(Some(len)) = rustbgpd_wire::peek_message_length(&inbuf, 4096) {
            let len = usize::from(len);
            if inbuf.len() < len {
                break;
            }
            let mut msg: Bytes = inbuf.split_to(len).freeze();
            match rustbgpd_wire::decode_message(&mut msg, 4096) {
                Ok(Message::Open(o)) => pending.push(Event::OpenReceived(o)),
                Ok(Message::Keepalive) => pending.push(Event::KeepaliveReceived),
                Ok(Message::Notification(n)) => pending.push(Event::NotificationReceived(n)),
                Ok(Message::Update(u)) => {
                    if let Ok(p) = u.parse(four_octet, false, &[]) {
                        let to_net = |e: &Ipv4NlriEntry| {
                            ipnet::Ipv4Net::new(e.prefix.addr, e.prefix.len)
                                .ok()
                                .map(IpNet::V4)
                        };
                        // A path through the speaker's own AS (65515: R27
                        // for a Route Server, the AS loop check for a
                        // gateway) is dropped, and withdraws what it
                        // replaces.
                        let azure = p.attributes.iter().any(
                            |a| matches!(a, PathAttribute::AsPath(ap) if ap.contains_asn(inst.asn)),
                        );
                        let announced: Vec<IpNet> = p.announced.iter().filter_map(to_net).collect();
                        let mut gone: Vec<IpNet> = Vec::new();
                        if azure {
                            for n in &announced {
                                rejected.insert(*n);
                                if learned.remove(n) {
                                    gone.push(*n);
                                }
                            }
                        }
                        let add: Vec<IpNet> = announced
                            .iter()
                            .filter(|_| !azure)
                            .filter(|n| {
                                rejected.remove(n);
                                learned.insert(**n)
                            })
                            .copied()
                            .collect();
                        for n in p.withdrawn.iter().filter_map(to_net) {
                            rejected.remove(&n);
                            if learned.remove(&n) {
                                gone.push(n);
                            }
                        }
                        hub.hold(peer.nva, &peer.name, &add, &gone);
                    }
                    pending.push(Event::UpdateReceived);
                }
                Ok(_) => pending.push(Event::KeepaliveReceived),
                Err(e) => pending.push(Event::DecodeError(e)),
            }
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    if !learned.is_empty() {
        let gone: Vec<IpNet> = learned.iter().copied().collect();
        report.learned = gone.iter().map(ToString::to_string).collect();
        hub.hold(peer.nva, &peer.name, &[], &gone);
    }
    report.rejected = rejected.iter().map(ToString::to_string).collect();
    if report.state.is_empty() {
        report.state = fsm.state().as_str().to_string();
    }
    report.advertised = sent.len();
    report
}

/// Writes one message; whether the connection took it.
fn send(stream: &mut TcpStream, m: &Message) -> bool {
    match rustbgpd_wire::encode_message(m) {
        Ok(b) => stream.write_all(&b).is_ok(),
        Err(_) => false,
    }
}

/// Sends what changed from `old` to `new`: withdrawals, then
/// announcements grouped by (next hop, AS path).
fn send_changes(
    stream: &mut TcpStream,
    old: &BTreeMap<IpNet, (Ipv4Addr, Vec<u32>)>,
    new: &BTreeMap<IpNet, (Ipv4Addr, Vec<u32>)>,
    four_octet: bool,
) -> bool {
    let gone: Vec<Ipv4NlriEntry> = old
        .keys()
        .filter(|p| !new.contains_key(p))
        .filter_map(prefix_entry)
        .collect();
    for part in gone.chunks(400) {
        let u = UpdateMessage::build(&[], part, &[], four_octet, false, Ipv4UnicastMode::Body);
        if !send(stream, &Message::Update(u)) {
            return false;
        }
    }
    let mut groups: BTreeMap<(Ipv4Addr, Vec<u32>), Vec<Ipv4NlriEntry>> = BTreeMap::new();
    for (p, attrs) in new {
        if old.get(p) != Some(attrs)
            && let Some(e) = prefix_entry(p)
        {
            groups.entry(attrs.clone()).or_default().push(e);
        }
    }
    for ((nh, path), prefixes) in groups {
        let attrs = [
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath {
                segments: if path.is_empty() {
                    Vec::new()
                } else {
                    vec![AsPathSegment::AsSequence(path)]
                },
            }),
            PathAttribute::NextHop(nh),
        ];
        for part in prefixes.chunks(300) {
            let Ok(u) = UpdateMessage::try_build(
                part,
                &[],
                &attrs,
                four_octet,
                false,
                Ipv4UnicastMode::Body,
            ) else {
                continue;
            };
            if !send(stream, &Message::Update(u)) {
                return false;
            }
        }
    }
    true
}
