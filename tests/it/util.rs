use std::net::IpAddr;

use vnetplane::control::effective::{self, Table};
use vnetplane::control::{self, ControlPlane};
use vnetplane::topology::{self, Topology};

/// A route row as (source, state, prefix, nextHopType, next hop IPs).
pub type Row = (String, String, String, String, Vec<String>);

pub fn builtin(name: &str) -> Topology {
    match topology::load_builtin(name) {
        Some(Ok(t)) => t,
        Some(Err(e)) => panic!("built-in {name} does not load:\n{e}"),
        None => panic!("no built-in topology {name}"),
    }
}

pub fn load(src: &str) -> Topology {
    match topology::load_str("test.toml", src) {
        Ok(t) => t,
        Err(e) => panic!("test topology does not load:\n{e}"),
    }
}

/// The converged control plane after `events` (text form).
pub fn converge(t: &Topology, events: &[&str]) -> ControlPlane {
    let ev: Vec<control::events::Event> = events
        .iter()
        .map(|e| control::events::Event::parse(e).unwrap())
        .collect();
    control::converge(t, &ev).unwrap()
}

pub fn table(t: &Topology, nic: &str) -> Table {
    table_after(t, nic, &[])
}

pub fn table_after(t: &Topology, nic: &str, events: &[&str]) -> Table {
    let id = t.nic_by_name(nic).unwrap_or_else(|| panic!("no nic {nic}"));
    converge(t, events).nic_table(id)
}

pub fn rows(t: &Topology, nic: &str) -> Vec<Row> {
    rows_after(t, nic, &[])
}

pub fn rows_after(t: &Topology, nic: &str, events: &[&str]) -> Vec<Row> {
    let mut v: Vec<Row> = table_after(t, nic, events)
        .routes
        .iter()
        .map(|r| {
            (
                r.source.as_str().to_string(),
                r.state.as_str().to_string(),
                r.prefix.to_string(),
                r.next_hop_type.as_str().to_string(),
                r.next_hop_ips.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Builds the expected rows from `(source, state, prefix, type, ips)` literals.
pub fn expect(rows: &[(&str, &str, &str, &str, &[&str])]) -> Vec<Row> {
    let mut v: Vec<Row> = rows
        .iter()
        .map(|(s, st, p, t, ips)| {
            (
                s.to_string(),
                st.to_string(),
                p.to_string(),
                t.to_string(),
                ips.iter().map(|x| x.to_string()).collect(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The route a NIC uses for `dst`: (source, prefix, nextHopType, IPs), or None.
pub fn next_hop(
    t: &Topology,
    nic: &str,
    dst: &str,
) -> Option<(String, String, String, Vec<String>)> {
    next_hop_after(t, nic, dst, &[])
}

/// The same after control-plane events.
pub fn next_hop_after(
    t: &Topology,
    nic: &str,
    dst: &str,
    events: &[&str],
) -> Option<(String, String, String, Vec<String>)> {
    let tab = table_after(t, nic, events);
    let dst: IpAddr = dst.parse().unwrap();
    let d = effective::lookup(&tab, dst);
    d.selected.map(|i| {
        let r = &tab.routes[i];
        (
            r.source.as_str().to_string(),
            r.prefix.to_string(),
            r.next_hop_type.as_str().to_string(),
            r.next_hop_ips.iter().map(ToString::to_string).collect(),
        )
    })
}

pub fn hop(
    source: &str,
    prefix: &str,
    ty: &str,
    ips: &[&str],
) -> Option<(String, String, String, Vec<String>)> {
    Some((
        source.into(),
        prefix.into(),
        ty.into(),
        ips.iter().map(|s| s.to_string()).collect(),
    ))
}

use vnetplane::control::bgp::{Node, Status};

/// The first session of `me` with `peer` (a speaker's name, or
/// `ROUTE_SERVER/IN_0` for one Route Server instance).
fn session_with(cp: &ControlPlane, me: Node, peer: &str) -> Option<usize> {
    let t = &cp.topology;
    let (name, instance) = match peer.split_once("/IN_") {
        Some((n, k)) => (n, Some(k.parse::<u8>().expect("instance 0 or 1"))),
        None => (peer, None),
    };
    let them = Node::by_name(t, name).unwrap_or_else(|| panic!("no speaker {name}"));
    cp.bgp
        .sessions_of(me)
        .find(|(_, s)| s.other(me) == them && (instance.is_none() || s.instance == instance))
        .map(|(si, _)| si)
}

/// What `receiver` got from `peer` (see [`session_with`]): prefix → (AS
/// path, status word, reason).
pub fn received(
    cp: &ControlPlane,
    receiver: &str,
    peer: &str,
) -> std::collections::BTreeMap<String, (Vec<u32>, String, String)> {
    let t = &cp.topology;
    let me = Node::by_name(t, receiver).unwrap_or_else(|| panic!("no speaker {receiver}"));
    let si = session_with(cp, me, peer).unwrap_or_else(|| panic!("no session {receiver}-{peer}"));
    cp.bgp
        .received
        .get(&(me, si))
        .into_iter()
        .flat_map(|m| m.values())
        .map(|r| {
            let (st, why) = match &r.status {
                Status::Best => ("best".to_string(), String::new()),
                Status::NotBest(l) => ("accepted".to_string(), l.text()),
                Status::Rejected(x) => ("rejected".to_string(), x.text()),
            };
            (
                r.path.prefix.to_string(),
                (r.path.as_path.to_vec(), st, why),
            )
        })
        .collect()
}

/// What `sender` sent `peer`: prefix → AS path.
pub fn advertised(
    cp: &ControlPlane,
    sender: &str,
    peer: &str,
) -> std::collections::BTreeMap<String, Vec<u32>> {
    let t = &cp.topology;
    let me = Node::by_name(t, sender).unwrap_or_else(|| panic!("no speaker {sender}"));
    let si = session_with(cp, me, peer).unwrap_or_else(|| panic!("no session {sender}-{peer}"));
    cp.bgp
        .advertised
        .get(&(me, si))
        .into_iter()
        .flatten()
        .map(|p| (p.prefix.to_string(), p.as_path.to_vec()))
        .collect()
}

/// The VirtualNetworkGateway-source rows of a NIC: (state, prefix, next hops).
pub fn vng_rows(t: &Topology, nic: &str, events: &[&str]) -> Vec<(String, String, Vec<String>)> {
    rows_after(t, nic, events)
        .into_iter()
        .filter(|r| r.0 == "VirtualNetworkGateway")
        .map(|r| (r.1, r.2, r.4))
        .collect()
}

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Every topology file shipped in `topologies/`, in name order.
pub fn topology_files() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// One TCP packet (49152 → 443) from NIC `from`'s first address to `dst`,
/// walked after `events`.
pub fn walk_tcp(
    t: &Topology,
    events: &[&str],
    from: &str,
    dst: &str,
) -> vnetplane::dataplane::Trace {
    let world = vnetplane::dataplane::World::new(&converge(t, events));
    let nic = t
        .nic_by_name(from)
        .unwrap_or_else(|| panic!("no nic {from}"));
    world.walk(
        nic,
        vnetplane::dataplane::Packet::new(vnetplane::dataplane::Header {
            src: t.nic(nic).ips[0],
            dst: dst.parse().unwrap(),
            proto: vnetplane::dataplane::PROTO_TCP,
            sport: 49152,
            dport: 443,
        }),
    )
}

/// A row of a gateway's BGP table as tests write it: (state, prefix, AS
/// path hops).
pub fn vng(state: &str, prefix: &str, hops: &[&str]) -> (String, String, Vec<String>) {
    (state.to_string(), prefix.to_string(), s(hops))
}
