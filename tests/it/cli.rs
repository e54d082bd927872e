//! The binary itself: `routes` (table and JSON), `next-hop`, `check`, errors.

use std::process::Command;

/// Runs the binary from the crate root: (exit status, stdout, stderr).
pub(super) fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vnetplane"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run vnetplane");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn routes_json_matches_scenario1() {
    // The done-when: this exact command matches scenario 1 of SCENARIOS.md.
    let (code, out, err) = run(&[
        "routes",
        "--topology",
        "topologies/hub-spoke-vng.toml",
        "--nic",
        "spoke11-vm",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v["value"].as_array().unwrap();
    let find = |prefix: &str, ty: &str| {
        rows.iter()
            .find(|r| r["addressPrefix"][0] == prefix && r["nextHopType"] == ty)
            .unwrap_or_else(|| panic!("no {prefix} {ty} in {out}"))
    };
    let vnet = find("10.11.0.0/16", "VnetLocal");
    assert_eq!(
        (vnet["source"].as_str(), vnet["state"].as_str()),
        (Some("Default"), Some("Active"))
    );
    assert_eq!(find("10.1.0.0/16", "VNetPeering")["state"], "Active");
    // R8 revised (published tables): an active-active gateway's routes are
    // one row per instance, each with that instance's private IP.
    let gw: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| {
            r["addressPrefix"][0] == "192.168.0.0/16" && r["nextHopType"] == "VirtualNetworkGateway"
        })
        .collect();
    assert_eq!(gw.len(), 2, "{out}");
    for (r, ip) in gw.iter().zip(["10.1.0.4", "10.1.0.5"]) {
        assert_eq!(r["source"], "VirtualNetworkGateway");
        assert_eq!(r["state"], "Active");
        assert_eq!(r["nextHopIpAddress"], serde_json::json!([ip]));
    }
    let none = find("192.168.0.0/16", "None");
    assert_eq!(
        (none["source"].as_str(), none["state"].as_str()),
        (Some("Default"), Some("Invalid"))
    );
    assert_eq!(find("0.0.0.0/0", "Internet")["state"], "Active");
    // R3 revised: no 172.16.0.0/12 row in a VNet outside it; two rows for
    // the gateway's two instances.
    assert_eq!(rows.len(), 8);
    // Every entry has exactly Azure's REST fields.
    for r in rows {
        let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "addressPrefix",
                "nextHopIpAddress",
                "nextHopType",
                "source",
                "state"
            ]
        );
    }
}

#[test]
fn routes_table_has_az_columns() {
    let (code, out, err) = run(&[
        "routes",
        "--topology",
        "hub-spoke-vng",
        "--nic",
        "spoke11-vm",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let head = lines.next().unwrap();
    let cols: Vec<&str> = head
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        cols,
        [
            "Source",
            "State",
            "Address Prefix",
            "Next Hop Type",
            "Next Hop IP"
        ]
    );
    assert!(lines.next().unwrap().starts_with("-----"));
    // One row per gateway instance (R8 revised).
    let gw: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.contains("192.168.0.0/16") && l.starts_with("VirtualNetworkGateway"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        gw,
        [
            [
                "VirtualNetworkGateway",
                "Active",
                "192.168.0.0/16",
                "VirtualNetworkGateway",
                "10.1.0.4"
            ],
            [
                "VirtualNetworkGateway",
                "Active",
                "192.168.0.0/16",
                "VirtualNetworkGateway",
                "10.1.0.5"
            ]
        ]
    );
    let none = out
        .lines()
        .find(|l| l.contains("192.168.0.0/16") && l.contains("None"))
        .unwrap();
    assert_eq!(
        none.split_whitespace().collect::<Vec<_>>(),
        ["Default", "Invalid", "192.168.0.0/16", "None"]
    );
    // The GatewaySubnet has a table too.
    let (code, out, _) = run(&[
        "routes",
        "--topology",
        "hub-spoke-vng",
        "--subnet",
        "hub1/GatewaySubnet",
        "--explain",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Origin") && out.contains("static prefix of site onprem, via gateway gw-hub1"),
        "{out}"
    );
}

#[test]
fn next_hop_explains_the_choice() {
    let (code, out, err) = run(&[
        "next-hop",
        "-t",
        "hub-spoke-vng",
        "--nic",
        "spoke11-vm",
        "--dst",
        "192.168.1.10",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["nextHopType"], "VirtualNetworkGateway");
    assert_eq!(v["nextHopIpAddress"], "10.1.0.4");
    assert_eq!(
        v["nextHopIpAddresses"],
        serde_json::json!(["10.1.0.4", "10.1.0.5"])
    );
    assert_eq!(v["routeTableId"], "Gateway Route");
    assert_eq!(v["matchedRoute"]["addressPrefix"][0], "192.168.0.0/16");
    let c = v["candidates"].as_array().unwrap();
    assert_eq!(c.len(), 3, "{out}");
    assert_eq!(c[0]["verdict"], "selected");
    let none = c
        .iter()
        .find(|x| x["route"]["nextHopType"] == "None")
        .unwrap();
    assert_eq!(none["verdict"], "invalid");
    assert!(none["reason"].as_str().unwrap().contains("R15"));
    let inet = c
        .iter()
        .find(|x| x["route"]["nextHopType"] == "Internet")
        .unwrap();
    assert_eq!(inet["verdict"], "less-specific");

    // Network Watcher spells peering `VnetPeering`; system routes say `System Route`.
    let (_, out, _) = run(&[
        "next-hop",
        "-t",
        "hub-spoke-vng",
        "--nic",
        "spoke11-vm",
        "--dst",
        "10.1.3.4",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["nextHopType"], "VnetPeering");
    assert_eq!(v["routeTableId"], "System Route");

    // Dropped by the reserved range; text form names the route.
    let (code, out, _) = run(&[
        "next-hop",
        "-t",
        "hub-spoke-vng",
        "--nic",
        "spoke11-vm",
        "--dst",
        "10.50.0.1",
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("nextHopType       None\n"), "{out}");
    assert!(out.contains("10.0.0.0/8"), "{out}");

    // A UDR match names its route table.
    let (_, out, _) = run(&[
        "next-hop",
        "-t",
        "spoke-to-spoke-udr",
        "--nic",
        "spoke11-vm",
        "--dst",
        "10.12.1.4",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["nextHopType"], "VirtualAppliance");
    assert_eq!(v["nextHopIpAddress"], "10.1.2.4");
    assert_eq!(v["routeTableId"], "routeTables/rt-spokes");
}

#[test]
fn usage_and_lookup_errors_are_clear() {
    let (code, _, err) = run(&["routes", "-t", "hub-spoke-vng", "--nic", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no NIC named `nope`") && err.contains("spoke11-vm"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "next-hop",
        "-t",
        "hub-spoke-vng",
        "--nic",
        "spoke11-vm",
        "--dst",
        "10.1.2",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--dst") && err.contains("not an IP address"),
        "{err}"
    );
    let (code, _, err) = run(&["routes", "-t", "does/not/exist.toml", "--nic", "x"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("does/not/exist.toml: error: no such file"),
        "{err}"
    );
    let (code, _, _) = run(&["routes", "-t", "hub-spoke-vng"]);
    assert_eq!(code, 2, "missing --nic is a usage error");
}

#[test]
fn check_reports_located_errors_and_exit_status() {
    let dir = std::env::temp_dir().join(format!("vnetplane-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[vnet]]\nname = \"a\"\nregion = \"x\"\naddress_space = [\"10.0.0.0/16\"]\n\n[[nic]]\nname = \"n\"\nvnet = \"a\"\nsubnet = \"missing\"\nips = [\"10.0.0.4\"]\n").unwrap();
    let (code, out, err) = run(&["check", "-t", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("bad.toml:9:10: error: nic n, field `subnet`: unknown subnet `missing`"),
        "{err}"
    );
    let (code, out, _) = run(&["check", "-t", "ip-forwarding-off"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("warning") && out.contains("ok: topologies/ip-forwarding-off.toml"),
        "{out}"
    );
}

#[test]
fn default_run_uses_the_embedded_topology() {
    let (code, out, err) = run(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("topology topologies/hub-spoke-vng.toml"));
    assert!(out.contains("effective routes of nic spoke11-vm"));
    assert!(
        out.contains("192.168.1.10    → VirtualNetworkGateway"),
        "{out}"
    );
    let (code, out, _) = run(&["topologies"]);
    assert_eq!(code, 0);
    assert!(out.lines().count() >= 21 && out.contains("multi-region-vxlan"));
}

#[test]
fn bgp_command_shows_the_rejected_remote_spoke() {
    // Done-when of the control-plane issue.
    let (code, out, err) = run(&[
        "bgp",
        "--topology",
        "topologies/multi-region-no-as-override.toml",
        "--speaker",
        "rs-hub1",
    ]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("10.21.0.0/16"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("65001 65002 65515")
            && line.contains("rejected")
            && line.contains("65515 (R27)"),
        "{line}"
    );
    let (code, out, _) = run(&[
        "bgp",
        "-t",
        "multi-region-no-as-override",
        "--speaker",
        "rs-hub1",
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &v["speakers"][0];
    assert_eq!(s["name"], "rs-hub1");
    assert_eq!(s["asn"], 65515);
    let r = s["sessions"][0]["received"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["prefix"] == "10.21.0.0/16")
        .unwrap();
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["asPath"], serde_json::json!([65001, 65002, 65515]));
    // With as-override the route is in spoke11-vm's table via nva1.
    let (_, out, _) = run(&[
        "routes",
        "-t",
        "topologies/multi-region-vxlan.toml",
        "--nic",
        "spoke11-vm",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["addressPrefix"][0] == "10.21.0.0/16")
        .unwrap();
    assert_eq!(row["source"], "VirtualNetworkGateway");
    assert_eq!(row["nextHopIpAddress"], serde_json::json!(["10.1.2.4"]));
    // Events from the command line.
    let (_, out, _) = run(&[
        "routes",
        "-t",
        "dual-homed-active-passive",
        "--nic",
        "spoke11-vm",
        "--event",
        "speaker-down nva1",
    ]);
    assert!(
        out.lines()
            .any(|l| l.contains("0.0.0.0/0") && l.contains("10.2.2.4")),
        "{out}"
    );
    let (code, _, err) = run(&[
        "routes",
        "-t",
        "dual-homed-active-passive",
        "--nic",
        "spoke11-vm",
        "--event",
        "explode nva1",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("event `explode nva1`"), "{err}");
    let (code, _, err) = run(&["bgp", "-t", "hub-spoke-vng", "--speaker", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no BGP speaker named `nope`"), "{err}");
}

#[test]
fn fib_command() {
    let (code, out, err) = run(&["fib", "-t", "spoke-to-spoke-udr", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["nics"], 4);
    assert_eq!(v["subnets"], 4);
    assert_eq!(v["distinctTables"], 3);
    assert!(v["bytes"].as_u64().unwrap() > 0);
    let (code, out, _) = run(&["fib", "-t", "hub-spoke-vng"]);
    assert_eq!(code, 0);
    assert!(out.contains("2 NICs in 3 subnets share"), "{out}");
}

#[cfg(feature = "bench")]
#[test]
fn bench_lpm_command() {
    // The JSON shape the issue asks for; real tables skipped when the file is missing.
    let (code, out, err) = run(&[
        "bench",
        "lpm",
        "--quick",
        "--json",
        "--table",
        "/nonexistent/bgpas.lpm.xz",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results = v["results"].as_array().unwrap();
    for imp in ["vnetplane", "treebitmap", "prefix-trie"] {
        assert!(
            results
                .iter()
                .any(|r| r["table"] == "azure-1k" && r["impl"] == imp),
            "{imp}"
        );
    }
    let ours = results
        .iter()
        .find(|r| r["impl"] == "vnetplane" && r["mode"] == "batch")
        .unwrap();
    assert!(ours["lookups_per_sec"].as_f64().unwrap() > 0.0);
    assert!(ours["bytes_per_prefix"].as_f64().unwrap() > 0.0);
    assert!(ours["build_ms"].as_f64().is_some());
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("skipped"))
    );
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
}

#[test]
fn trace_command_text_and_json() {
    let (code, out, err) = run(&[
        "trace",
        "-t",
        "multi-region-loop",
        "--from",
        "spoke11-vm",
        "--dst",
        "10.21.1.4",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "loop");
    assert_eq!(v["at"], "nic nva1");
    assert_eq!(v["reason"], "loop");
    assert!(v["loopRoute"].as_str().unwrap().contains("10.21.0.0/16"));
    assert!(
        v["hops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["node"].is_string())
    );
    let (code, out, _) = run(&[
        "trace",
        "-t",
        "multi-region-vxlan",
        "--from",
        "spoke11-vm",
        "--dst",
        "10.21.1.4",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("encap: VXLAN vni 10021")
            && out.contains("verdict: delivered at nic spoke21-vm"),
        "{out}"
    );
    let (_, out, _) = run(&[
        "trace",
        "-t",
        "spoke-to-spoke-no-udr",
        "--from",
        "spoke11-vm",
        "--dst",
        "10.12.1.4",
        "--json",
        "--proto",
        "icmp",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("dropped"), Some("route-none"))
    );
    assert_eq!(v["hops"][0]["route"]["prefix"], "10.0.0.0/8");
    let (code, _, err) = run(&[
        "trace",
        "-t",
        "hub-spoke-vng",
        "--from",
        "spoke11-vm",
        "--dst",
        "fd00::1",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no IPv6 address"), "{err}");
}

#[test]
fn gen_and_replay_commands() {
    let dir = std::env::temp_dir().join(format!("vnetplane-cli-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("in.pcap");
    let (code, out, err) = run(&[
        "gen",
        "-t",
        "nva-default-loop",
        "--out",
        pcap.to_str().unwrap(),
        "--from",
        "spoke11-vm",
        "--dst",
        "198.51.100.10",
        "--flows",
        "5",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("5 packets"), "{out}");
    let jsonl = dir.join("t.jsonl");
    let (code, out, err) = run(&[
        "replay",
        "-t",
        "nva-default-loop",
        "--pcap",
        pcap.to_str().unwrap(),
        "--json",
        "--traces",
        jsonl.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["read"].as_u64(), v["looped"].as_u64()),
        (Some(5), Some(5)),
        "scenario 2 loops every packet: {out}"
    );
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(lines.lines().count(), 5);
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["verdict"], "loop");
    assert_eq!(first["path"][0], "nic spoke11-vm");
    // Text summary, and a clear error for a file that is not a capture.
    let (code, out, _) = run(&[
        "replay",
        "-t",
        "nva-default-loop-fixed",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("5 packets read") && out.contains("internet: 5"),
        "{out}"
    );
    let bogus = dir.join("bogus.pcap");
    std::fs::write(&bogus, b"hello, this is not a capture at all").unwrap();
    let (code, _, err) = run(&[
        "replay",
        "-t",
        "hub-spoke-vng",
        "--pcap",
        bogus.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bogus.pcap") && err.contains("bad pcap header"),
        "{err}"
    );
}

#[test]
fn verify_command_exit_status_json_and_counterexamples() {
    let (code, out, _) = run(&["verify", "-t", "multi-region-vxlan"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 violations"), "{out}");
    let pcap = std::env::temp_dir().join(format!("vnetplane-ce-{}.pcap", std::process::id()));
    let (code, out, _) = run(&[
        "verify",
        "-t",
        "onprem-bypasses-nva",
        "--json",
        "--counterexamples",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "violations fail the run");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let w = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "waypoint")
        .unwrap();
    for key in ["kind", "from", "dst", "path"] {
        assert!(!w[key].is_null(), "{key}");
    }
    assert!(v["warnings"].is_array());
    // The counterexample capture replays to the same story.
    let (code, out, _) = run(&[
        "replay",
        "-t",
        "onprem-bypasses-nva",
        "--pcap",
        pcap.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0);
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        c["read"].as_u64(),
        Some(v["violations"].as_array().unwrap().len() as u64)
    );
    let _ = std::fs::remove_file(pcap);
    // --strict fails on warnings too.
    let (code, _, _) = run(&["verify", "-t", "multi-region-vxlan", "--strict"]);
    assert_eq!(code, 1);
}

/// A capture read only in part (a truncated last record) is replayed as
/// far as it goes, its report printed, and the run exits 2 naming the
/// packet; `--allow-partial` accepts it (exit 0, a warning in the report).
#[test]
fn a_partial_read_exits_2_unless_allowed() {
    let dir = std::env::temp_dir().join(format!("vnetplane-partial-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let full = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/hub-spoke-vng.pcap"),
    )
    .unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 3]).unwrap();
    let args = [
        "replay",
        "-t",
        "hub-spoke-vng",
        "--pcap",
        cut.to_str().unwrap(),
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("packets read"), "the report is printed: {out}");
    assert!(
        err.contains("reading stopped early") && err.contains("cut.pcap: packet "),
        "{err}"
    );
    let (code, out, err) = run(&[&args[..], &["--allow-partial"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("warning: reading stopped early"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An output that would overwrite an input is refused before anything is
/// written (exit 2), the input left as it was.
#[test]
fn an_output_naming_an_input_is_refused() {
    let dir = std::env::temp_dir().join(format!("vnetplane-overwrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("in.pcap");
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/hub-spoke-vng.pcap"),
    )
    .unwrap();
    std::fs::write(&pcap, &bytes).unwrap();
    let p = pcap.to_str().unwrap();
    for flag in ["--out", "--traces"] {
        let (code, _, err) = run(&["replay", "-t", "hub-spoke-vng", "--pcap", p, flag, p]);
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(err.contains("is an input of this run"), "{err}");
        assert_eq!(
            std::fs::read(&pcap).unwrap(),
            bytes,
            "{flag} left the input alone"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Live events: a line naming nothing in the topology is rejected at once
/// with `stdin:N` (also when it arrives after the last packet), the others
/// apply, and the run exits 2; an events file is checked whole before the
/// run, each error naming its line.
#[test]
fn rejected_events_are_located_and_fail_the_run() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vnetplane"))
        .args([
            "replay",
            "-t",
            "dual-homed-active-passive",
            "--pcap",
            "pcaps/dual-homed-active-passive.pcap",
            "--events",
            "-",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"speaker-down nope\nspeaker-down nva1\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("stdin:1: event `speaker-down nope`: no BGP speaker named `nope`"),
        "{stderr}"
    );
    // The good line applies, or (the capture is short) is read after the
    // last packet and reported so; it is not lost either way.
    assert!(
        stdout.contains("speaker-down nva1")
            || stderr.contains("stdin:2: event `speaker-down nva1` arrived after the last packet"),
        "{stdout}{stderr}"
    );
    let dir = std::env::temp_dir().join(format!("vnetplane-events-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ev = dir.join("ev.txt");
    std::fs::write(
        &ev,
        "at packet 1 speaker-down nva1\nat packet 2 session-up nva1 nobody\n",
    )
    .unwrap();
    let (code, out, err) = run(&[
        "replay",
        "-t",
        "dual-homed-active-passive",
        "--pcap",
        "pcaps/dual-homed-active-passive.pcap",
        "--events",
        ev.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("ev.txt:2: event `session-up nva1 nobody`"),
        "{err}"
    );
    assert!(out.is_empty(), "nothing ran: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `verify --junit` gives a test case per assertion (failed with its
/// finding) and `--sarif` locates the finding at the assertion's line.
#[test]
fn verify_writes_junit_and_sarif() {
    let dir = std::env::temp_dir().join(format!("vnetplane-reports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (junit, sarif) = (dir.join("v.xml"), dir.join("v.sarif"));
    let (code, _, err) = run(&[
        "verify",
        "-t",
        "onprem-bypasses-nva",
        "--junit",
        junit.to_str().unwrap(),
        "--sarif",
        sarif.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "violations: {err}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(
        x.contains("<testcase classname=\"topologies/onprem-bypasses-nva.toml\" name=\"assertion spoke-to-onprem-via-nva1")
            && x.contains("<failure type=\"waypoint\""),
        "{x}"
    );
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("topologies/onprem-bypasses-nva.toml"),
    )
    .unwrap();
    let line = src
        .lines()
        .position(|l| l.starts_with("[[assertion]]"))
        .unwrap()
        + 1;
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().unwrap();
    let w = results
        .iter()
        .find(|r| r["ruleId"] == "waypoint")
        .expect("the waypoint finding");
    assert_eq!(w["level"], "error");
    let region = &w["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], line, "{w}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `trace --expect`: 0 when the packet ends as expected, 1 otherwise (the
/// trace still printed), 2 when the input cannot be used.
#[test]
fn trace_expect_sets_the_exit_status() {
    let base = [
        "trace",
        "-t",
        "multi-region-loop",
        "--from",
        "spoke11-vm",
        "--dst",
        "10.21.1.4",
    ];
    let (code, out, _) = run(&[&base[..], &["--expect", "loop"]].concat());
    assert_eq!(code, 0, "{out}");
    let (code, out, err) = run(&[&base[..], &["--expect", "delivered"]].concat());
    assert_eq!(code, 1);
    assert!(out.contains("verdict: loop"), "{out}");
    assert!(
        err.contains("expected delivered, the packet ended loop"),
        "{err}"
    );
    let (code, _, _) = run(&[
        "trace",
        "-t",
        "nope.toml",
        "--from",
        "x",
        "--dst",
        "10.0.0.1",
        "--expect",
        "loop",
    ]);
    assert_eq!(code, 2);
}

/// R8 revised: NVA ECMP from a Route Server stays one row with several next
/// hops, while a gateway's instances are one row each (above).
#[test]
fn route_server_ecmp_is_one_row() {
    let (code, out, err) = run(&[
        "routes",
        "-t",
        "hub-rs-two-nvas",
        "--nic",
        "spoke11-vm",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows: Vec<&serde_json::Value> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["addressPrefix"][0] == "0.0.0.0/0")
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(
        rows[0]["nextHopIpAddress"],
        serde_json::json!(["10.1.2.4", "10.1.2.5"])
    );
}

/// R8 revised: a single-instance VPN gateway's routes show its public IP.
#[test]
fn a_single_instance_vpn_gateway_shows_its_public_ip() {
    let src = include_str!("../../topologies/hub-spoke-vng.toml").replace(
        "active_active = true\nips = [\"10.1.0.4\", \"10.1.0.5\"]",
        "active_active = false\nips = [\"10.1.0.4\"]\npublic_ip = \"20.50.0.1\"",
    );
    assert!(src.contains("20.50.0.1"));
    let t = super::util::load(&src);
    let rows = vnetplane::io::azure::effective_routes(&super::util::table(&t, "spoke11-vm")).value;
    let gw: Vec<_> = rows
        .iter()
        .filter(|r| r.next_hop_type == "VirtualNetworkGateway")
        .collect();
    assert_eq!(gw.len(), 1);
    assert_eq!(gw[0].next_hop_ip_address, ["20.50.0.1"]);
}

/// A report that cannot be written (standard output on a full disk) is an
/// error naming standard output, exit 1, never a silent success.
#[test]
fn a_failed_write_to_standard_output_is_an_error() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_vnetplane"))
        .args(["routes", "-t", "hub-spoke-vng", "--nic", "spoke11-vm"])
        .stdout(full)
        .output()
        .expect("run vnetplane");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("standard output") && err.contains("No space left"),
        "{err}"
    );
}

/// A capture that cannot be written names its file and says why once:
/// `gen --out` and `replay --out` to a full disk, a missing folder; a
/// capture that cannot be read likewise (exit 2).
#[test]
fn failed_capture_writes_name_the_file_once() {
    for args in [
        &["gen", "-t", "hub-spoke-vng", "--out", "/dev/full"][..],
        &[
            "gen",
            "-t",
            "hub-spoke-vng",
            "--out",
            "/nonexistent-vnetplane/x.pcap",
        ][..],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        let file = args[4];
        assert!(err.contains(&format!("error: {file}: ")), "{err}");
        let cause = if file == "/dev/full" {
            "No space left"
        } else {
            "No such file"
        };
        assert_eq!(err.matches(cause).count(), 1, "{err}");
    }
    let pcap = std::env::temp_dir().join(format!("vnetplane-cli-gen-{}.pcap", std::process::id()));
    let pcap = pcap.display().to_string();
    assert_eq!(run(&["gen", "-t", "hub-spoke-vng", "--out", &pcap]).0, 0);
    let (code, _, err) = run(&[
        "replay",
        "-t",
        "hub-spoke-vng",
        "--pcap",
        &pcap,
        "--out",
        "/dev/full",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("/dev/full: writing pcapng: No space left"),
        "{err}"
    );
    assert_eq!(err.matches("No space left").count(), 1, "{err}");
    let (code, _, err) = run(&[
        "replay",
        "-t",
        "hub-spoke-vng",
        "--pcap",
        "/nonexistent-vnetplane.pcap",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}
