//! Captures through the topology: every packet accounted for, on generated
//! scenario traffic and on every third-party capture; the written pcapng read
//! back (and dissected by tshark where it is installed).

use std::path::{Path, PathBuf};

use vnetplane::dataplane::{World, traffic};
use vnetplane::io::{self, PcapNgOut};
use vnetplane::replay;

use super::util::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vnetplane-replay-{}-{name}", std::process::id()))
}

#[test]
fn scenario_pcaps_are_reproducible_and_balanced() {
    for (name, _) in vnetplane::topology::BUILTIN {
        if *name == "example" {
            continue;
        }
        let t = builtin(name);
        let from = traffic::default_senders(&t);
        let frames = traffic::frames(
            &t,
            &traffic::flows(
                &t,
                &from,
                &traffic::default_destinations(&t),
                1,
                vnetplane::dataplane::PROTO_TCP,
                1,
            ),
        );
        let p = tmp(&format!("{name}.pcap"));
        traffic::write_pcap(&p, &frames).unwrap();
        let shipped = root().join(format!("pcaps/{name}.pcap"));
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(&shipped).unwrap(),
            "{name}: pcaps/{name}.pcap is stale; regenerate with `vnetplane gen`"
        );
        let cap = io::read_capture(&shipped).unwrap();
        assert!(cap.stopped.is_none());
        let cp = converge(&t, &[]);
        let world = std::sync::Arc::new(World::new(&cp));
        let c = replay::replay::<Vec<u8>, Vec<u8>>(
            &world,
            &cap.frames,
            replay::Options::default(),
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.read, frames.len());
        assert!(c.balanced(), "{name}: {c:?}");
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn scenario_outcomes_in_replay() {
    // Scenario 7 loops, scenario 8 delivers everything, scenario 15 drops at nva1.
    let run = |name: &str| {
        let t = builtin(name);
        let cp = converge(&t, &[]);
        let world = std::sync::Arc::new(World::new(&cp));
        let cap = io::read_capture(&root().join(format!("pcaps/{name}.pcap"))).unwrap();
        replay::replay::<Vec<u8>, Vec<u8>>(
            &world,
            &cap.frames,
            replay::Options::default(),
            None,
            None,
        )
        .unwrap()
    };
    assert!(run("multi-region-loop").looped > 0);
    let c = run("multi-region-vxlan");
    assert_eq!((c.dropped, c.looped), (0, 0), "{c:?}");
    assert_eq!(c.delivered_at.get("nic spoke21-vm"), Some(&3));
    let c = run("ip-forwarding-off");
    assert!(
        c.drop_reasons
            .get("ip-forwarding-disabled")
            .is_some_and(|&n| n > 0),
        "{c:?}"
    );
}

#[test]
fn every_external_capture_is_accounted_for() {
    let dir = root().join("tests/fixtures/external-pcaps");
    let t = builtin("multi-region-vxlan");
    let cp = converge(&t, &[]);
    let world = std::sync::Arc::new(World::new(&cp));
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        files += 1;
        match io::read_capture(&p) {
            Err(msg) => assert!(msg.to_string().contains(&p.display().to_string()), "{msg}"),
            Ok(cap) => {
                // Send everything from a NIC so foreign addresses still walk.
                let from = t.nic_by_name("spoke11-vm");
                let mut out = PcapNgOut::new(Vec::new()).unwrap();
                let mut traces: Vec<u8> = Vec::new();
                let c = replay::replay(
                    &world,
                    &cap.frames,
                    replay::Options { from },
                    Some(&mut out),
                    Some(&mut traces),
                )
                .unwrap();
                assert_eq!(c.read, cap.frames.len(), "{}", p.display());
                assert!(c.balanced(), "{}: {c:?}", p.display());
                assert_eq!(String::from_utf8(traces).unwrap().lines().count(), c.read);
                out.finish().unwrap();
            }
        }
    }
    assert!(
        files >= 40,
        "expected the third-party captures, found {files}"
    );
    // The files libpcap's suite rejects are refused or stop early with a message.
    for bad in [
        "libpcap--pcap-invalid-version-1.pcap",
        "libpcap--pcapng-truncated-shb.pcapng",
        "libpcap--pcapng-block-len-not-mult4.pcapng",
        "libpcap--pcapng-packet-before-idb.pcapng",
    ] {
        match io::read_capture(&dir.join(bad)) {
            Err(msg) => assert!(msg.to_string().contains(bad), "{msg}"),
            Ok(cap) => assert!(
                cap.stopped.is_some() && cap.frames.is_empty(),
                "{bad}: {:?}",
                cap.stopped
            ),
        }
    }
}

fn tshark(file: &Path, fields: &[&str], filter: &str) -> Option<String> {
    tshark_with(file, &[], fields, filter)
}

/// [`tshark`] with preferences (`-o` values).
fn tshark_with(file: &Path, prefs: &[&str], fields: &[&str], filter: &str) -> Option<String> {
    let mut cmd = std::process::Command::new("tshark");
    for p in prefs {
        cmd.arg("-o").arg(p);
    }
    cmd.arg("-r")
        .arg(file)
        .arg("-Y")
        .arg(filter)
        .arg("-T")
        .arg("fields");
    for f in fields {
        cmd.arg("-e").arg(f);
    }
    match cmd.output() {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => panic!("tshark failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => {
            assert!(
                std::env::var_os("VNETPLANE_REQUIRE_TSHARK").is_none(),
                "tshark is required here (VNETPLANE_REQUIRE_TSHARK) but not installed"
            );
            eprintln!(
                "\n*** SKIPPED: tshark is not installed; the Wireshark dissection checks did not run ***\n"
            );
            None
        }
    }
}

fn replay_to_pcapng(name: &str, from: &str, dst: &str) -> PathBuf {
    let t = builtin(name);
    let cp = converge(&t, &[]);
    let world = std::sync::Arc::new(World::new(&cp));
    let nic = t.nic_by_name(from).unwrap();
    let frames = traffic::frames(
        &t,
        &traffic::flows(
            &t,
            &[vnetplane::dataplane::Start::Nic(nic)],
            &[dst.parse().unwrap()],
            2,
            vnetplane::dataplane::PROTO_TCP,
            3,
        ),
    );
    let out_path = tmp(&format!("{name}.pcapng"));
    let mut out = PcapNgOut::create(&out_path).unwrap();
    let c = replay::replay::<_, Vec<u8>>(
        &world,
        &frames,
        replay::Options::default(),
        Some(&mut out),
        None,
    )
    .unwrap();
    assert_eq!(c.delivered, 2);
    out.finish().unwrap();
    // Our own reader agrees on the frames written: one per NIC crossing.
    assert_eq!(io::read_capture(&out_path).unwrap().frames.len(), 2 * 6);
    out_path
}

#[test]
fn wireshark_sees_vxlan_and_esp_at_nva1() {
    let p = replay_to_pcapng("multi-region-vxlan", "spoke11-vm", "10.21.1.4");
    if let Some(out) = tshark(
        &p,
        &["frame.interface_name", "vxlan.vni", "ip.src", "ip.dst"],
        "vxlan",
    ) {
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("nva1\t")).collect();
        assert!(!lines.is_empty(), "no VXLAN at nva1: {out}");
        for l in lines {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f[1], "10021", "{l}");
            assert_eq!(f[2], "10.1.2.4,10.11.1.4", "outer then inner source: {l}");
            assert_eq!(
                f[3], "10.2.2.4,10.21.1.4",
                "outer then inner destination: {l}"
            );
        }
    }
    let p = replay_to_pcapng("multi-region-ipsec", "spoke11-vm", "10.21.1.4");
    if let Some(out) = tshark(
        &p,
        &[
            "frame.interface_name",
            "esp.spi",
            "esp.sequence",
            "udp.dstport",
        ],
        "esp",
    ) {
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("nva1\t")).collect();
        assert!(!lines.is_empty(), "no ESP at nva1: {out}");
        let seqs: Vec<&str> = lines
            .iter()
            .map(|l| l.split('\t').nth(2).unwrap())
            .collect();
        assert_eq!(seqs, ["1", "2"], "sequence numbers per tunnel: {out}");
        for l in lines {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f[1], "0x00001001", "{l}");
            assert_eq!(f[3], "4500", "ESP in UDP 4500: {l}");
        }
    }
    // The README's recipe: a NULL/NULL security association makes the
    // inner packet readable (vnetplane's ESP carries it in clear).
    if let Some(out) = tshark_with(
        &p,
        &[
            "esp.enable_encryption_decode:TRUE",
            r#"uat:esp_sa:"IPv4","*","*","*","NULL","","NULL","""#,
        ],
        &["frame.interface_name", "ip.src", "ip.dst", "tcp.dstport"],
        "esp",
    ) {
        let at_nva1: Vec<&str> = out.lines().filter(|l| l.starts_with("nva1\t")).collect();
        assert!(!at_nva1.is_empty(), "no ESP at nva1: {out}");
        for l in at_nva1 {
            assert_eq!(
                l, "nva1\t10.1.2.4,10.11.1.4\t10.2.2.4,10.21.1.4\t443",
                "outer then inner addresses, the inner TCP port: {out}"
            );
        }
    }
}

fn frame(src: &str, dst: &str, payload: usize) -> Vec<u8> {
    let (s, d): (std::net::Ipv4Addr, std::net::Ipv4Addr) =
        (src.parse().unwrap(), dst.parse().unwrap());
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], vnetplane::wire::AZURE_ROUTER_MAC)
        .ipv4(s.octets(), d.octets(), 64)
        .tcp(40000, 443, 1, 1000)
        .write(&mut v, &vec![0u8; payload])
        .unwrap();
    v
}

fn replay_frames(name: &str, frames: Vec<Vec<u8>>) -> (replay::Counters, Vec<String>) {
    let t = builtin(name);
    let cp = converge(&t, &[]);
    let world = std::sync::Arc::new(World::new(&cp));
    let fs: Vec<io::Frame> = frames
        .into_iter()
        .enumerate()
        .map(|(i, data)| io::Frame {
            number: i + 1,
            timestamp: std::time::Duration::ZERO,
            link: io::Link::Ethernet,
            data,
        })
        .collect();
    let mut traces: Vec<u8> = Vec::new();
    let c = replay::replay::<Vec<u8>, Vec<u8>>(
        &world,
        &fs,
        replay::Options::default(),
        None,
        Some(&mut traces),
    )
    .unwrap();
    (
        c,
        String::from_utf8(traces)
            .unwrap()
            .lines()
            .map(String::from)
            .collect(),
    )
}

#[test]
fn r55_packets_too_big_for_the_tunnel_are_dropped() {
    // 1,480-byte IP datagrams + 50 bytes of VXLAN exceed the 1,500-byte MTU.
    let (c, lines) = replay_frames(
        "multi-region-vxlan",
        vec![
            frame("10.11.1.4", "10.21.1.4", 1440),
            frame("10.11.1.4", "10.21.1.4", 1400),
        ],
    );
    assert_eq!(c.drop_reasons.get("mtu-exceeded"), Some(&1), "{lines:?}");
    assert_eq!(c.delivered, 1);
    assert!(lines[0].contains("\"at\":\"nva nva1\""), "{}", lines[0]);
}

#[test]
fn captured_tunnel_packets_are_decapsulated_by_their_far_end() {
    // A VXLAN packet from nva2 to nva1 carrying spoke21-vm → spoke11-vm.
    let inner = frame("10.21.1.4", "10.11.1.4", 10);
    let outer = vnetplane::wire::Outer {
        src_mac: [2, 0, 0, 0, 0, 2],
        dst_mac: vnetplane::wire::AZURE_ROUTER_MAC,
        src: "10.2.2.4".parse().unwrap(),
        dst: "10.1.2.4".parse().unwrap(),
        ttl: 64,
        ip_id: 1,
    };
    let mut vx = Vec::new();
    vnetplane::wire::vxlan_encap(&inner, &outer, 50001, 4789, 10021, &mut vx);
    let (c, lines) = replay_frames("multi-region-vxlan", vec![vx]);
    assert_eq!(c.delivered_at.get("nic spoke11-vm"), Some(&1), "{lines:?}");
    assert!(lines[0].contains("nva nva1"));
    // The wrong VNI matches no tunnel.
    let mut bad = Vec::new();
    vnetplane::wire::vxlan_encap(&inner, &outer, 50001, 4789, 999, &mut bad);
    let (c, _) = replay_frames("multi-region-vxlan", vec![bad]);
    assert_eq!(c.drop_reasons.get("unknown-tunnel"), Some(&1));
}

#[test]
fn r55_fragmentation_when_the_tunnel_asks_for_it() {
    let src = include_str!("../../topologies/multi-region-ipsec.toml").replacen(
        "  spi_out = 0x1001\n",
        "  spi_out = 0x1001\n  fragment = true\n",
        1,
    );
    let t = load(&src);
    let cp = converge(&t, &[]);
    let world = std::sync::Arc::new(World::new(&cp));
    let fs = vec![io::Frame {
        number: 1,
        timestamp: std::time::Duration::ZERO,
        link: io::Link::Ethernet,
        data: frame("10.11.1.4", "10.21.1.4", 1440),
    }];
    let mut out = PcapNgOut::new(Vec::new()).unwrap();
    let c = replay::replay::<Vec<u8>, Vec<u8>>(
        &world,
        &fs,
        replay::Options::default(),
        Some(&mut out),
        None,
    )
    .unwrap();
    assert_eq!(c.delivered_at.get("nic spoke21-vm"), Some(&1), "{c:?}");
    let bytes = out.finish().unwrap();
    let p = tmp("frag.pcapng");
    std::fs::write(&p, bytes).unwrap();
    let cap = io::read_capture(&p).unwrap();
    // spoke11 out, nva1 in, nva1 out ×2 fragments, nva2 in ×2, nva2 out, spoke21 in.
    assert_eq!(cap.frames.len(), 8);
    let frags: Vec<&io::Frame> = cap
        .frames
        .iter()
        .filter(|f| {
            f.data.len() > 34 && (u16::from_be_bytes([f.data[20], f.data[21]]) & 0x3fff) != 0
        })
        .collect();
    assert_eq!(
        frags.len(),
        4,
        "two fragments seen at each end of the tunnel"
    );
    for f in frags {
        assert!(f.data.len() - 14 <= 1500);
        assert_eq!(vnetplane::wire::checksum(&f.data[14..34]), 0);
    }
    let _ = std::fs::remove_file(p);
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Arbitrary bytes on every link type, and mutated real frames: never a
        /// panic, every frame counted once.
        #[test]
        fn random_frames_are_accounted_for(
            frames in prop::collection::vec((0u8..5, prop::collection::vec(any::<u8>(), 0..120)), 1..20),
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        ) {
            let t = builtin("multi-region-vxlan");
            let cp = converge(&t, &[]);
            let world = std::sync::Arc::new(World::new(&cp));
            let mut fs: Vec<io::Frame> = frames
                .into_iter()
                .enumerate()
                .map(|(i, (l, data))| {
                    let link = match l {
                        0 => io::Link::Ethernet,
                        1 => io::Link::Raw,
                        2 => io::Link::LinuxSll,
                        3 => io::Link::LinuxSll2,
                        _ => io::Link::Other(147),
                    };
                    io::Frame { number: i + 1, timestamp: std::time::Duration::ZERO, link, data }
                })
                .collect();
            // A valid VXLAN frame with a few bytes flipped.
            let mut vx = Vec::new();
            let inner = frame("10.21.1.4", "10.11.1.4", 10);
            let outer = vnetplane::wire::Outer { src_mac: [2, 0, 0, 0, 0, 2], dst_mac: vnetplane::wire::AZURE_ROUTER_MAC, src: "10.2.2.4".parse().unwrap(), dst: "10.1.2.4".parse().unwrap(), ttl: 64, ip_id: 1 };
            vnetplane::wire::vxlan_encap(&inner, &outer, 50001, 4789, 10021, &mut vx);
            for (pos, b) in flips {
                let n = vx.len();
                vx[pos % n] ^= b;
            }
            fs.push(io::Frame { number: fs.len() + 1, timestamp: std::time::Duration::ZERO, link: io::Link::Ethernet, data: vx });
            let mut out = PcapNgOut::new(Vec::new()).unwrap();
            let c = replay::replay::<Vec<u8>, Vec<u8>>(&world, &fs, replay::Options::default(), Some(&mut out), None);
            let c = c.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(c.read, fs.len());
            prop_assert!(c.balanced());
        }
    }
}

/// A site's routers look their routes up in compiled tables (the best BGP
/// routes; the static connections' reach); the answers are those of a scan
/// — the longest best route containing the address, the first connection
/// whose gateway serves a VNet holding it — on every built-in topology
/// (with nested prefixes advertised by each BGP NVA where there is one),
/// and on two static connections whose reaches nest, in both orders.
#[test]
fn a_sites_compiled_lookups_answer_as_a_scan_of_its_routes() {
    use vnetplane::control::bgp::{Node, served_vnets};
    use vnetplane::topology::{SiteId, Topology};

    let nested = |gw1: &str, gw2: &str| {
        let src = std::fs::read_to_string(root().join("topologies/hub-spoke-vng.toml")).unwrap();
        let src = src.replace(
            "  [[site.connection]]\n  gateway = \"gw-hub1\"\n  bgp = false",
            &format!(
                "  [[site.connection]]\n  gateway = \"{gw1}\"\n  bgp = false\n  \
                 [[site.connection]]\n  gateway = \"{gw2}\"\n  bgp = false"
            ),
        );
        assert!(src.contains("gw-hub2"));
        load(&format!(
            "{src}\n[[vnet]]\nname = \"wide\"\nregion = \"westeurope\"\n\
             address_space = [\"10.0.0.0/8\"]\n  [[vnet.subnet]]\n  name = \"GatewaySubnet\"\n  \
             prefix = \"10.200.0.0/27\"\n\n[[gateway]]\nname = \"gw-hub2\"\nvnet = \"wide\"\n\
             kind = \"vpn\"\nips = [\"10.200.0.4\"]\n"
        ))
    };
    let mut cases: Vec<(String, Topology, Vec<String>)> = Vec::new();
    for (name, _) in vnetplane::topology::BUILTIN {
        let t = builtin(name);
        let mut events = Vec::new();
        if let Some(nva) = t.nvas.iter().find(|n| !n.bgp.is_empty()) {
            for p in [
                "10.0.0.0/8",
                "10.1.0.0/16",
                "10.1.3.0/24",
                "10.1.3.128/25",
                "0.0.0.0/0",
            ] {
                events.push(format!("advertise {} {p}", nva.name));
            }
        }
        cases.push((name.to_string(), t, events));
    }
    cases.push((
        "nested, narrow first".into(),
        nested("gw-hub1", "gw-hub2"),
        Vec::new(),
    ));
    cases.push((
        "nested, wide first".into(),
        nested("gw-hub2", "gw-hub1"),
        Vec::new(),
    ));
    let (mut sites, mut bgp_hits, mut static_hits, mut second) = (0, 0, 0, 0);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (name, t, events) in &cases {
        let evs: Vec<&str> = events.iter().map(String::as_str).collect();
        let w = World::new(&converge(t, &evs));
        for (i, site) in t.sites.iter().enumerate() {
            sites += 1;
            let s = SiteId(i as u32);
            let me = Node::Site(s);
            // Addresses at and around every prefix the site might match.
            let mut prefixes: Vec<ipnet::IpNet> = w.cp.bgp.best_of(me).map(|(p, _)| *p).collect();
            prefixes.extend(t.vnets.iter().flat_map(|v| v.address_space.iter().copied()));
            prefixes.extend(site.prefixes.iter().copied());
            let mut dsts = Vec::new();
            for p in &prefixes {
                dsts.extend([p.network(), p.broadcast()]);
                if let ipnet::IpNet::V4(p4) = p {
                    let span = u64::from(!u32::from(p4.netmask()));
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let a = u32::from(p4.network()) + (x % (span + 1)) as u32;
                    dsts.push(std::net::IpAddr::V4(a.into()));
                }
            }
            dsts.push("8.8.8.8".parse().unwrap());
            for dst in dsts {
                let scan =
                    w.cp.bgp
                        .best_of(me)
                        .filter(|(p, _)| p.contains(&dst))
                        .max_by_key(|(p, _)| p.prefix_len())
                        .map(|(p, _)| *p);
                let got = w.site_best(s, dst).map(|(p, _)| *p);
                assert_eq!(got, scan, "{name}: site {} to {dst}", site.name);
                bgp_hits += usize::from(scan.is_some());
                let first = site.connections.iter().position(|c| {
                    served_vnets(t, t.gateway(c.gateway).vnet)
                        .iter()
                        .any(|v| t.vnet(*v).address_space.iter().any(|p| p.contains(&dst)))
                });
                assert_eq!(
                    w.site_connection(s, dst),
                    first,
                    "{name}: site {} to {dst}",
                    site.name
                );
                static_hits += usize::from(first.is_some());
                second += usize::from(first == Some(1));
            }
        }
    }
    assert!(sites >= 10 && bgp_hits > 50 && static_hits > 10 && second > 0);
}
