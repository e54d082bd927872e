//! `bench live`: traffic between two namespaces through the live fabric
//! (one SDN hop: `spoke11-vm` to `hub1-vm` over the peering of the
//! built-in `hub-rs-two-nvas`), beside the kernel forwarding the same
//! traffic between the same kind of veth pairs (a router namespace with
//! IP forwarding on), measured the same way:
//!
//! - iperf3 TCP throughput (one stream, `--seconds`);
//! - 64-byte frames (UDP, 18 bytes of payload) sent as fast as an
//!   AF_PACKET socket sends them from the source namespace, one sender per
//!   flow; the rate is what the destination's `eth0` received (its kernel
//!   counter) over the sending time.
//!
//! The lab of the kernel's run is three namespaces (`vnp-bench-a`, `-r`,
//! `-b`) made and removed here.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use pnet_datalink as datalink;

use crate::dataplane::frame::nic_mac;
use crate::live::{self, netns};
use crate::wire::AZURE_ROUTER_MAC;

/// One measured path.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    /// `vnetplane live, 1 worker`, `kernel veth forwarding`.
    pub path: String,
    /// iperf3 TCP, Gbit/s (median of runs).
    pub tcp_gbps: Option<f64>,
    /// 64-byte frames received per second at the far end, millions, per
    /// number of flows (one sender; median of runs).
    pub small_mpps: Vec<(usize, f64)>,
    /// Frames sent per second by the senders, millions (the offered load).
    pub offered_mpps: Vec<(usize, f64)>,
}

/// Where the traffic goes.
struct Ends {
    src_ns: String,
    dst_ns: String,
    src_mac: [u8; 6],
    /// The next hop's MAC (the fabric's router MAC, or the kernel router's).
    gw_mac: [u8; 6],
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A 60-byte frame (64 on the wire): Ethernet, IPv4, UDP, 18 bytes.
fn small_frame(e: &Ends, sport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(e.src_mac, e.gw_mac)
        .ipv4(e.src_ip.octets(), e.dst_ip.octets(), 64)
        .udp(sport, 9);
    let payload = [0u8; 18];
    let mut out = Vec::with_capacity(b.size(payload.len()));
    let _ = b.write(&mut out, &payload);
    out
}

/// `eth0`'s received packets in namespace `ns`.
fn rx_packets(ns: &str) -> Result<u64> {
    let out = netns::run("ip", &["-n", ns, "-s", "-j", "link", "show", "eth0"])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    v[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .ok_or_else(|| anyhow!("no rx counter for eth0 in {ns}"))
}

/// Sends 64-byte frames from `e.src_ns` for `secs` seconds with `senders`
/// threads, each taking `flows` flows in turn; (received, sent) per second.
fn blast(e: &Ends, senders: usize, flows: usize, secs: f64) -> Result<(f64, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut joins = Vec::new();
    let before = rx_packets(&e.dst_ns)?;
    for k in 0..senders {
        let frames: Vec<Vec<u8>> = (0..flows)
            .map(|f| small_frame(e, 10_000 + (k * flows + f) as u16 * 7919))
            .collect();
        let (stop, sent, ns) = (stop.clone(), sent.clone(), e.src_ns.clone());
        let mut tx = netns::within(&ns, || -> Result<Box<dyn datalink::DataLinkSender>> {
            let iface = datalink::interfaces()
                .into_iter()
                .find(|i| i.name == "eth0")
                .ok_or_else(|| anyhow!("no eth0 in {ns}"))?;
            match datalink::channel(&iface, datalink::Config::default())? {
                datalink::Channel::Ethernet(tx, _) => Ok(tx),
                _ => bail!("not an Ethernet channel"),
            }
        })??;
        joins.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for frame in frames.iter().cycle().take(256) {
                    if let Some(Ok(())) = tx.send_to(frame, None) {
                        n += 1;
                    }
                }
            }
            sent.fetch_add(n, Ordering::Relaxed);
        }));
    }
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for j in joins {
        let _ = j.join();
    }
    let dt = t0.elapsed().as_secs_f64();
    // Frames still queued arrive within a moment.
    std::thread::sleep(Duration::from_millis(300));
    let after = rx_packets(&e.dst_ns)?;
    Ok((
        (after - before) as f64 / dt,
        sent.load(Ordering::Relaxed) as f64 / dt,
    ))
}

/// iperf3 TCP from `e.src_ns` to `e.dst_ns`, Gbit/s.
fn iperf(e: &Ends, secs: u32) -> Result<f64> {
    let mut server = std::process::Command::new("ip")
        .args(["netns", "exec", &e.dst_ns, "iperf3", "-s", "-1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("iperf3 (install Debian's iperf3)")?;
    std::thread::sleep(Duration::from_millis(300));
    let out = netns::run(
        "ip",
        &[
            "netns",
            "exec",
            &e.src_ns,
            "iperf3",
            "-c",
            &e.dst_ip.to_string(),
            "-t",
            &secs.to_string(),
            "-J",
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_str(&out?)?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e9)
        .ok_or_else(|| anyhow!("iperf3 gave no received rate"))
}

/// Every measurement on one path: TCP Gbit/s, and per (senders, flows
/// each) the received and offered Mpps; medians of `runs`.
fn measure(e: &Ends, runs: usize, secs: f64, senders: &[(usize, usize)]) -> Result<Row> {
    let tcp = (0..runs)
        .map(|_| iperf(e, secs.ceil() as u32))
        .collect::<Result<Vec<_>>>()?;
    let mut small = Vec::new();
    let mut offered = Vec::new();
    for &(s, flows) in senders {
        let mut rx = Vec::new();
        let mut tx = Vec::new();
        for _ in 0..runs {
            let (r, t) = blast(e, s, flows, secs)?;
            rx.push(r / 1e6);
            tx.push(t / 1e6);
        }
        small.push((s * flows, median(rx)));
        offered.push((s * flows, median(tx)));
    }
    Ok(Row {
        path: String::new(),
        tcp_gbps: Some(median(tcp)),
        small_mpps: small,
        offered_mpps: offered,
    })
}

/// The fabric with `workers` readers per port, measured with as many
/// senders.
fn fabric(workers: usize, runs: usize, secs: f64) -> Result<Row> {
    let t = crate::topology::load_path_or_builtin("hub-rs-two-nvas")?;
    let src = t
        .nic_by_name("spoke11-vm")
        .ok_or_else(|| anyhow!("spoke11-vm"))?;
    let dst = t.nic_by_name("hub1-vm").ok_or_else(|| anyhow!("hub1-vm"))?;
    let ip = |n: crate::topology::NicId| match t.nic(n).ips[0] {
        std::net::IpAddr::V4(a) => a,
        std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    let e = Ends {
        src_ns: "vnp-spoke11-vm".into(),
        dst_ns: "vnp-hub1-vm".into(),
        src_mac: nic_mac(src),
        gw_mac: AZURE_ROUTER_MAC,
        src_ip: ip(src),
        dst_ip: ip(dst),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let opts = live::Options {
        workers,
        frr: Vec::new(),
        exec: None,
        pcapng: None,
        events: None,
        stop: stop.clone(),
    };
    let run = std::thread::spawn(move || {
        live::run(&t, opts, |_| {
            let _ = ready_tx.send(());
        })
    });
    let measured = match ready_rx.recv() {
        // One sender (a core of its own on two cores), one flow per
        // worker: the kernel's hash spreads them over the workers.
        Ok(()) => measure(&e, runs, secs, &[(1, workers)]),
        Err(_) => Err(anyhow!("the lab did not start")),
    };
    stop.store(true, Ordering::Relaxed);
    let ended = run.join().map_err(|_| anyhow!("live panicked"))?;
    ended?;
    let mut row = measured?;
    row.path = format!(
        "vnetplane live, {workers} worker{}",
        if workers == 1 { "" } else { "s" }
    );
    Ok(row)
}

/// The kernel forwarding between veth pairs: `vnp-bench-a` → router
/// `vnp-bench-r` → `vnp-bench-b`.
fn kernel(runs: usize, secs: f64, senders: &[(usize, usize)]) -> Result<Row> {
    let (a, r, b) = ("vnp-bench-a", "vnp-bench-r", "vnp-bench-b");
    for ns in [a, r, b] {
        netns::remove(ns);
        netns::run("ip", &["netns", "add", ns])?;
    }
    let setup = || -> Result<Ends> {
        netns::ip_in(
            r,
            &[
                "link", "add", "ra", "type", "veth", "peer", "name", "eth0", "netns", a,
            ],
        )?;
        netns::ip_in(
            r,
            &[
                "link", "add", "rb", "type", "veth", "peer", "name", "eth0", "netns", b,
            ],
        )?;
        netns::exec_in(r, "sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
        for (ns, dev) in [(a, "eth0"), (b, "eth0"), (r, "ra"), (r, "rb")] {
            netns::exec_in(
                ns,
                "ethtool",
                &[
                    "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                ],
            )?;
            netns::ip_in(ns, &["link", "set", dev, "up"])?;
        }
        netns::ip_in(a, &["addr", "add", "10.0.1.2/24", "dev", "eth0"])?;
        netns::ip_in(r, &["addr", "add", "10.0.1.1/24", "dev", "ra"])?;
        netns::ip_in(r, &["addr", "add", "10.0.2.1/24", "dev", "rb"])?;
        netns::ip_in(b, &["addr", "add", "10.0.2.2/24", "dev", "eth0"])?;
        netns::ip_in(a, &["route", "add", "default", "via", "10.0.1.1"])?;
        netns::ip_in(b, &["route", "add", "default", "via", "10.0.2.1"])?;
        for ns in [a, r, b] {
            netns::ip_in(ns, &["link", "set", "lo", "up"])?;
        }
        // Neighbours resolved before the frames come.
        netns::exec_in(a, "ping", &["-c", "1", "-W", "2", "10.0.2.2"])?;
        let mac = |ns: &str, dev: &str| -> Result<[u8; 6]> {
            let out = netns::run("ip", &["-n", ns, "-j", "link", "show", dev])?;
            let v: serde_json::Value = serde_json::from_str(&out)?;
            let s = v[0]["address"].as_str().unwrap_or_default();
            let mut m = [0u8; 6];
            for (i, p) in s.split(':').enumerate().take(6) {
                m[i] = u8::from_str_radix(p, 16)?;
            }
            Ok(m)
        };
        Ok(Ends {
            src_ns: a.into(),
            dst_ns: b.into(),
            src_mac: mac(a, "eth0")?,
            gw_mac: mac(r, "ra")?,
            src_ip: Ipv4Addr::new(10, 0, 1, 2),
            dst_ip: Ipv4Addr::new(10, 0, 2, 2),
        })
    };
    let out = setup().and_then(|e| measure(&e, runs, secs, senders));
    for ns in [a, r, b] {
        netns::remove(ns);
    }
    let mut row = out?;
    row.path = "kernel veth forwarding (router namespace)".into();
    Ok(row)
}

/// Every path: the fabric with 1 and 2 workers, the kernel with the same
/// traffic (one sender, one or two flows).
pub fn run(runs: usize, secs: f64) -> Result<Vec<Row>> {
    if !nix::unistd::geteuid().is_root() {
        bail!("bench live needs root (network namespaces)");
    }
    Ok(vec![
        fabric(1, runs, secs)?,
        fabric(2, runs, secs)?,
        kernel(runs, secs, &[(1, 1), (1, 2)])?,
    ])
}

/// The rows as a table.
pub fn text(rows: &[Row]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<44} {:>10} {:>28}",
        "path", "TCP Gbit/s", "64-byte Mpps (flows: rx/offered)"
    );
    for r in rows {
        let small: Vec<String> = r
            .small_mpps
            .iter()
            .zip(&r.offered_mpps)
            .map(|((s, rx), (_, tx))| format!("{s}: {rx:.3}/{tx:.3}"))
            .collect();
        let _ = writeln!(
            o,
            "{:<44} {:>10} {:>28}",
            r.path,
            r.tcp_gbps.map_or("-".into(), |g| format!("{g:.2}")),
            small.join("  ")
        );
    }
    o
}
