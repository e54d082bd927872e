//! `live`: real namespaces, real ping and real FRR around the fabric.
//! These need root, iproute2, ethtool and Debian's `frr` (CI installs
//! them). They share the machine's `vnp-` namespaces, so they run one at
//! a time.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Live runs hold machine-wide names: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Whether this machine can run `live` (root, ip, ethtool, FRR, ping,
/// tshark, setpriv). Where it cannot, the test is skipped with a note,
/// unless `VNETPLANE_REQUIRE_LIVE` is set (CI sets it): then it fails.
fn live_machine() -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for tool in ["ip", "ethtool", "vtysh", "ping", "tshark", "setpriv"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            missing.push(tool.to_string());
        }
    }
    if !std::path::Path::new("/usr/lib/frr/bgpd").exists() {
        missing.push("/usr/lib/frr/bgpd".into());
    }
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("VNETPLANE_REQUIRE_LIVE").is_none(),
        "live tests required here (VNETPLANE_REQUIRE_LIVE) but missing: {}",
        missing.join(", ")
    );
    eprintln!("live test skipped: missing {}", missing.join(", "));
    false
}

/// The machine's live lab, held for one test at a time; `None` (skip)
/// where the machine cannot run `live`.
fn lab_machine() -> Option<std::sync::MutexGuard<'static, ()>> {
    live_machine().then(|| ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner()))
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vnetplane"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The `vnp-` namespaces that exist.
fn ours() -> Vec<String> {
    let o = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("vnp-"))
        .map(str::to_string)
        .collect()
}

/// Running processes named `name` (zombies, dead but not yet reaped by
/// their parent, are not running).
fn processes(name: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
                let (comm, rest) = s.split_once(") ").unwrap_or_default();
                comm.ends_with(&format!("({name}")) && !rest.starts_with('Z')
            })
        })
        .count()
}

/// Nothing a run made is left: no namespace, no bgpd.
fn nothing_left() {
    assert_eq!(ours(), Vec::<String>::new(), "namespaces left behind");
    assert_eq!(processes("bgpd"), 0, "bgpd left running");
}

fn summary(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// ping between two spokes through the hub's NVA (the fabric's, modelled
/// as in `replay`): every echo answered, TTL spent once (by the NVA's OS;
/// Azure's SDN hops do not decrement it), and the capture has a frame at
/// every NIC crossed.
#[test]
fn ping_between_spokes_crosses_the_hub_nva() {
    let Some(_one) = lab_machine() else {
        return;
    };
    let pcap = std::env::temp_dir().join(format!("vnetplane-live-{}.pcapng", std::process::id()));
    let o = bin()
        .args(["live", "-t", "hub-rs-two-nvas", "--json", "--pcapng"])
        .arg(&pcap)
        .args([
            "--exec",
            "spoke11-vm",
            "--",
            "ping",
            "-c",
            "3",
            "-W",
            "2",
            "10.12.1.4",
        ])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let json_at = out.find("\n{").map_or(0, |i| i + 1);
    let (ping, s) = out.split_at(json_at);
    assert!(ping.contains("3 received"), "{ping}");
    assert_eq!(ping.matches("ttl=63").count(), 3, "{ping}");
    let s = summary(s);
    // 3 requests and 3 replies forwarded, nothing dropped.
    assert!(s["forwarded"].as_u64().unwrap() >= 6, "{s}");
    assert_eq!(s["dropped"], serde_json::json!({}), "{s}");
    assert!(s["arp_replies"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(s["exec_status"], 0);
    assert_eq!(s["accounted"], true, "{s}");
    // The capture: a request crosses spoke11-vm, an NVA NIC (in and out)
    // and spoke12-vm; interfaces are named after them.
    let c = vnetplane::io::read::read(std::fs::File::open(&pcap).unwrap(), "live.pcapng").unwrap();
    assert!(c.frames.len() >= 6 * 3, "{} frames", c.frames.len());
    let t = Command::new("tshark")
        .args(["-r"])
        .arg(&pcap)
        .args(["-T", "fields", "-e", "frame.interface_name"])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&t.stdout);
    for n in ["spoke11-vm", "spoke12-vm"] {
        assert!(names.lines().any(|l| l == n), "{n} not in {names}");
    }
    assert!(names.lines().any(|l| l == "nva1" || l == "nva2"), "{names}");
    let _ = std::fs::remove_file(&pcap);
    nothing_left();
}

/// Scenario 7: NVAs in two regions peer over the global peering; the
/// route each Route Server programs sends spoke11's traffic for spoke21
/// back to nva1, its own next hop: a real ping sees its TTL run out,
/// reported by nva1 (10.1.2.4). With the NVAs tunnelling VXLAN (scenario
/// 8), the outer packet rides the peering and the ping is answered, its
/// TTL spent at both NVAs.
#[test]
fn multi_region_loop_is_ttl_exceeded_and_vxlan_fixes_it() {
    let Some(_one) = lab_machine() else {
        return;
    };
    let ping = ["--", "ping", "-c", "2", "-W", "2", "10.21.1.4"];
    let o = bin()
        .args([
            "live",
            "-t",
            "topologies/multi-region-loop.toml",
            "--json",
            "--exec",
            "spoke11-vm",
        ])
        .args(ping)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "ping fails: {out}\n{err}");
    assert_eq!(out.matches("From 10.1.2.4 icmp_seq=").count(), 2, "{out}");
    assert!(out.contains("Time to live exceeded"), "{out}");
    let json_at = out.find("\n{").map_or(0, |i| i + 1);
    let s = summary(&out[json_at..]);
    assert_eq!(s["looped"], 2, "{s}");
    assert_eq!(s["accounted"], true, "{s}");
    assert_eq!(s["icmp_sent"], 2, "{s}");
    nothing_left();

    let o = bin()
        .args([
            "live",
            "-t",
            "topologies/multi-region-vxlan.toml",
            "--exec",
            "spoke11-vm",
        ])
        .args(ping)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(out.matches("ttl=62").count(), 2, "{out}");
    nothing_left();
}

/// TCP (iperf3) and IPv6 through the fabric, VM to VM over a peering:
/// checksums arrive intact (offloads are off on every veth end), the
/// fabric answers neighbour solicitations as it answers ARP, and every
/// frame read is counted once.
#[test]
fn tcp_and_ipv6_cross_the_fabric() {
    if !tool("iperf3") {
        return;
    }
    let Some(_one) = lab_machine() else {
        return;
    };
    let report = std::env::temp_dir().join(format!("vnetplane-iperf-{}.json", std::process::id()));
    let script = format!(
        "ip netns exec vnp-hub1-vm iperf3 -s -1 -D && sleep 0.5 && \
         iperf3 -c 10.1.3.4 -t 1 -J > {} && ping -6 -c 2 -W 2 fd00:1:0:3::4",
        report.display()
    );
    let o = bin()
        .args([
            "live",
            "-t",
            "topologies/dualstack-ipv6.toml",
            "--exec",
            "spoke11-vm",
        ])
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("2 received"), "{out}");
    let iperf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let bps = iperf["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap();
    assert!(bps > 1e6, "{bps} bit/s");
    let _ = std::fs::remove_file(&report);
    let nd: u64 = out
        .split("ND replies ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(nd >= 1, "{out}");
    nothing_left();
}

/// A `live` run in the background, stopped with Ctrl-C (SIGINT) when
/// asked or when the test ends early: its namespaces go with it.
struct Running(Option<std::process::Child>);

impl Running {
    /// Sends SIGINT and waits for the run's end.
    fn interrupt(&mut self) -> Option<Output> {
        let child = self.0.take()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        child.wait_with_output().ok()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.interrupt();
    }
}

/// Whether `tool` is on the PATH; required where live tests are.
fn tool(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    assert!(
        found || std::env::var_os("VNETPLANE_REQUIRE_LIVE").is_none(),
        "{name} is required here (VNETPLANE_REQUIRE_LIVE) but not installed"
    );
    found
}

/// Events typed while the lab runs reach the fabric as they reach a
/// replay: with both hub NVAs down, spoke11-vm's route to spoke12 is gone
/// and the system route for 10.0.0.0/8 (next hop None) drops the pings.
/// A line naming no speaker is reported with its number; the others apply.
#[test]
fn events_on_standard_input_change_the_running_fabric() {
    let Some(_one) = lab_machine() else {
        return;
    };
    let mut child = bin()
        .args(["live", "-t", "hub-rs-two-nvas", "--json", "--events", "-"])
        .args(["--exec", "spoke11-vm", "--", "sh", "-c"])
        // The pings wait for the tables without the NVAs' routes.
        .arg(
            "while grep -q 10.1.2.4 /run/vnetplane/live/routes/spoke11-vm.json; do sleep 0.05; done; \
             ping -c 2 -W 1 10.12.1.4",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"speaker-down nva1\nspeaker-down nosuch\nspeaker-down nva2\n")
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "the pings fail: {out}\n{err}");
    assert!(
        err.contains("stdin:2: event `speaker-down nosuch`"),
        "{err}"
    );
    let json_at = out.find("\n{").map_or(0, |i| i + 1);
    let s = summary(&out[json_at..]);
    assert_eq!(s["dropped"], serde_json::json!({"route-none": 2}), "{s}");
    assert!(s["table_versions"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["accounted"], true, "{s}");
    nothing_left();
}

/// Polls `f` every 10 ms for up to `limit`; how long it took to hold.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if f() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn vtysh(args: &[&str]) -> String {
    let mut c = Command::new("vtysh");
    c.args(["--vty_socket", "/run/vnetplane/frr-vnp-nva1"]);
    for a in args {
        c.args(["-c", a]);
    }
    let o = c.output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether spoke11-vm's effective routes (the file `live` keeps) hold
/// `prefix` with next hop `nh`.
fn spoke_route(prefix: &str, nh: &str) -> bool {
    let p = PathBuf::from("/run/vnetplane/live/routes/spoke11-vm.json");
    let Ok(text) = std::fs::read_to_string(p) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    v["value"].as_array().is_some_and(|rows| {
        rows.iter().any(|r| {
            r["addressPrefix"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == prefix))
                && r["nextHopIpAddress"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == nh))
        })
    })
}

/// FRR on nva1 peers with both instances of the hub's Route Server over
/// real BGP. What it receives is Azure's (65515 paths); what it announces
/// reaches a spoke NIC's effective routes (the Route Server programs it,
/// next hop nva1) within 1 s, and its withdrawal removes it as fast.
/// Ctrl-C ends the run with every namespace and daemon gone.
#[test]
fn frr_peers_with_both_instances_and_its_routes_reach_a_spoke() {
    let Some(_one) = lab_machine() else {
        return;
    };
    let mut run = Running(Some(
        bin()
            .args(["live", "-t", "hub-rs-two-nvas", "--frr", "nva1", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let established = within(Duration::from_secs(30), || {
        let s = vtysh(&["show bgp summary"]);
        s.lines()
            .filter(|l| l.starts_with("10.1.1.4 ") || l.starts_with("10.1.1.5 "))
            .filter(|l| !l.contains("Idle") && !l.contains("Active") && !l.contains("Connect"))
            .count()
            == 2
    });
    assert!(established.is_some(), "{}", vtysh(&["show bgp summary"]));
    // Azure's routes, from both instances, through 65515.
    let table = vtysh(&["show bgp ipv4 unicast"]);
    for p in ["10.1.0.0/16", "10.11.0.0/16", "10.12.0.0/16"] {
        assert!(table.contains(p), "{p}: {table}");
    }
    assert!(table.contains("65515 i"), "{table}");
    // nva1's originations (from the topology) are programmed.
    assert!(
        within(Duration::from_secs(5), || spoke_route(
            "0.0.0.0/0",
            "10.1.2.4"
        ))
        .is_some()
    );
    // A new prefix, then its withdrawal.
    assert!(!spoke_route("10.99.0.0/16", "10.1.2.4"));
    let net = ["conf t", "router bgp 65001", "address-family ipv4 unicast"];
    vtysh(&[net[0], net[1], net[2], "network 10.99.0.0/16"]);
    let seen = within(Duration::from_secs(1), || {
        spoke_route("10.99.0.0/16", "10.1.2.4")
    });
    assert!(seen.is_some(), "not programmed within 1 s");
    vtysh(&[net[0], net[1], net[2], "no network 10.99.0.0/16"]);
    let gone = within(Duration::from_secs(1), || {
        !spoke_route("10.99.0.0/16", "10.1.2.4")
    });
    assert!(gone.is_some(), "not removed within 1 s");

    let o = run.interrupt().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let s = summary(&out);
    let sessions = s["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{s}");
    for (k, sess) in sessions.iter().enumerate() {
        assert_eq!(sess["peer"], "nva1");
        assert_eq!(sess["azure_peer"], format!("rs-hub1/IN_{k}"));
        assert_eq!(sess["established"], true);
        assert_eq!(sess["state"], "established", "{sess}");
        assert_eq!(
            sess["learned"],
            serde_json::json!(["0.0.0.0/0", "10.0.0.0/8"])
        );
        // FRR sends Azure's routes back with 65515 in the path: R27.
        assert_eq!(
            sess["rejected"],
            serde_json::json!(["10.1.0.0/16", "10.11.0.0/16", "10.12.0.0/16"])
        );
    }
    nothing_left();
}

/// FRR on an NVA peering with both instances of an active-active VPN
/// gateway (no Route Server): its loopback, announced over real BGP, is
/// programmed in the VNet with the gateway's instances as next hops, as
/// the model programs it from the topology file alone.
#[test]
fn frr_peers_with_a_vpn_gateway() {
    let Some(_one) = lab_machine() else {
        return;
    };
    let src = std::fs::read_to_string("tests/it/bgp_sessions.rs").unwrap();
    let start = src
        .find("fn nva_peers_with_a_vpn_gateway_over_ipsec")
        .unwrap();
    let body = &src[start..];
    let toml = &body[body.find("r#\"").unwrap() + 3..body.find("\"#;").unwrap()];
    let file = std::env::temp_dir().join(format!("vnetplane-live-gw-{}.toml", std::process::id()));
    std::fs::write(&file, toml).unwrap();
    let mut run = Running(Some(
        bin()
            .args(["live", "--frr", "nva1", "--json", "-t"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let routes = || {
        std::fs::read_to_string("/run/vnetplane/live/routes/hub1-vm.json")
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    };
    let programmed = within(Duration::from_secs(30), || {
        routes().is_some_and(|v| {
            v["value"].as_array().is_some_and(|rows| {
                rows.iter()
                    .filter(|r| r["addressPrefix"][0] == "172.20.255.1/32")
                    .filter(|r| r["nextHopType"] == "VirtualNetworkGateway")
                    .count()
                    == 2
            })
        })
    });
    assert!(programmed.is_some(), "{:?}", routes());
    let o = run.interrupt().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let s = summary(&out);
    let sessions = s["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{s}");
    for (k, sess) in sessions.iter().enumerate() {
        assert_eq!(sess["azure_peer"], format!("gw-vpn/IN_{k}"));
        assert_eq!(sess["state"], "established", "{sess}");
        assert_eq!(sess["learned"], serde_json::json!(["172.20.255.1/32"]));
        // The gateway's own routes, sent back by FRR: an AS loop.
        assert_eq!(sess["rejected"], serde_json::json!(["10.1.0.0/16"]));
    }
    let _ = std::fs::remove_file(&file);
    nothing_left();
}

/// A run that died leaves its namespaces and lock: the next run removes
/// them. Wrong names and files, and a run without root, are refused with
/// exit 2.
#[test]
fn leftovers_are_removed_and_non_root_is_refused() {
    let Some(_one) = lab_machine() else {
        return;
    };
    Command::new("ip")
        .args(["netns", "add", "vnp-stale"])
        .status()
        .unwrap();
    std::fs::create_dir_all("/run/vnetplane").unwrap();
    // A pid that is not running.
    std::fs::write("/run/vnetplane/live.pid", "4194303\n").unwrap();
    let o = bin()
        .args([
            "live",
            "-t",
            "hub-rs-two-nvas",
            "--exec",
            "hub1-vm",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    nothing_left();
    assert!(!std::path::Path::new("/run/vnetplane/live.pid").exists());

    // Wrong names and files: exit 2, naming them, before anything is made.
    for (args, says) in [
        (vec!["--frr", "nosuch"], "--frr nosuch: no NVA of that name"),
        (
            vec!["--frr", "nva1=/nonexistent/frr.conf"],
            "/nonexistent/frr.conf",
        ),
        (
            vec!["--exec", "nva1", "--", "true"],
            "--exec nva1: no NIC of that name with a namespace",
        ),
    ] {
        let o = bin()
            .args(["live", "-t", "hub-rs-two-nvas"])
            .args(&args)
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}\n{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        nothing_left();
    }

    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_vnetplane"))
        .args(["live", "-t", "hub-rs-two-nvas"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(err.contains("needs root"), "{err}");
    nothing_left();
}
