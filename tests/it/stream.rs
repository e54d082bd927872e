//! `replay` at the scale of real captures, through the binary: standard
//! input and output, shards, Ctrl-C, what is written (issue: replay at
//! scale), bounded memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use vnetplane::io;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vnetplane"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vnetplane-stream-{}-{name}", std::process::id()))
}

/// `gen` traffic for a built-in topology into a pcap (`tag`: the test's,
/// so that tests running together write different files).
fn generated(topology: &str, flows: usize, tag: &str) -> PathBuf {
    let p = tmp(&format!("{tag}-{topology}-{flows}.pcap"));
    let st = bin()
        .args([
            "gen",
            "-t",
            topology,
            "--flows",
            &flows.to_string(),
            "--out",
        ])
        .arg(&p)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    p
}

/// `src`'s frames `times` times over (timestamps moved on, so the copies
/// follow each other in time) into a pcap.
fn repeated(src: &Path, times: usize, name: &str) -> PathBuf {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let frames = io::read_capture(src).unwrap().frames;
    let span = frames.last().unwrap().timestamp - frames[0].timestamp + Duration::from_millis(1);
    let p = tmp(name);
    let f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let mut w = PcapWriter::with_header(f, PcapHeader::default()).unwrap();
    for k in 0..times {
        for fr in &frames {
            let ts = fr.timestamp + span * k as u32;
            w.write_packet(&PcapPacket::new(ts, fr.data.len() as u32, &fr.data))
                .unwrap();
        }
    }
    w.into_writer().flush().unwrap();
    p
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

/// tshark's fields of every frame of a file, one line each (None without
/// tshark).
fn fields(file: &Path, prefs: &[&str], fields: &[&str], filter: &str) -> Option<Vec<String>> {
    let mut c = Command::new("tshark");
    for p in prefs {
        c.arg("-o").arg(p);
    }
    c.arg("-r").arg(file).args(["-T", "fields"]);
    if !filter.is_empty() {
        c.args(["-Y", filter]);
    }
    for f in fields {
        c.arg("-e").arg(f);
    }
    let out = c.stderr(Stdio::null()).output().ok()?;
    assert!(out.status.success(), "tshark failed on {}", file.display());
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect(),
    )
}

/// `tcpdump -w - | vnetplane replay --pcap - --out - | wireshark -k -i -`:
/// the capture in on standard input, the pcapng out on standard output is
/// the one written to a file, and the report goes to standard error.
#[test]
fn a_capture_streams_from_standard_input_to_standard_output() {
    let pcap = generated("multi-region-vxlan", 10, "stdio");
    let file = tmp("stdout-ref.pcapng");
    let st = bin()
        .args(["replay", "-t", "multi-region-vxlan", "--quiet", "--pcap"])
        .arg(&pcap)
        .arg("--out")
        .arg(&file)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = bin()
        .args([
            "replay",
            "-t",
            "multi-region-vxlan",
            "--pcap",
            "-",
            "--out",
            "-",
        ])
        .stdin(std::fs::File::open(&pcap).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8(done.stderr).unwrap();
    assert!(done.status.success(), "{err}");
    assert_eq!(
        out,
        std::fs::read(&file).unwrap(),
        "stdout is the file's pcapng"
    );
    assert!(err.contains("standard input: 240 packets read"), "{err}");
    let c = io::read::read(&out[..], "stdout").unwrap();
    assert!(c.stopped.is_none());
    assert!(c.frames.len() > 240);
    // Not a terminal: no progress display.
    assert!(!err.contains("Mpps"), "{err}");
    for p in [pcap, file] {
        let _ = std::fs::remove_file(p);
    }
}

/// Three processes with `--shard i/3` cover the capture: their counters
/// add up to one process's, each gets a part, and their pcapng outputs
/// merged by time (`mergecap`) hold the single output's frames.
#[test]
fn three_shards_add_up_to_the_whole_run() {
    let pcap = generated("hub-spoke-vng", 20, "shards");
    let run = |extra: &[&str], out: &Path| {
        let o = bin()
            .args(["replay", "-t", "hub-spoke-vng", "--json", "--pcap"])
            .arg(&pcap)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        json(&o.stdout)
    };
    let whole_out = tmp("shard-whole.pcapng");
    let whole = run(&[], &whole_out);
    let mut sum = serde_json::Map::new();
    let mut outs = Vec::new();
    for i in 0..3 {
        let out = tmp(&format!("shard-{i}.pcapng"));
        let j = run(&["--shard", &format!("{i}/3")], &out);
        assert!(j["read"].as_u64().unwrap() > 0, "shard {i} got nothing");
        assert_eq!(j["input_frames"], whole["read"]);
        for key in ["read", "delivered", "dropped", "looped"] {
            let v = sum.entry(key).or_insert(0.into());
            *v = (v.as_u64().unwrap() + j[key].as_u64().unwrap()).into();
        }
        for map in ["drop_reasons", "delivered_at"] {
            let m = sum
                .entry(map)
                .or_insert(serde_json::Value::Object(Default::default()));
            for (k, n) in j[map].as_object().unwrap() {
                let e = m.as_object_mut().unwrap().entry(k).or_insert(0.into());
                *e = (e.as_u64().unwrap() + n.as_u64().unwrap()).into();
            }
        }
        outs.push(out);
    }
    for key in [
        "read",
        "delivered",
        "dropped",
        "looped",
        "drop_reasons",
        "delivered_at",
    ] {
        assert_eq!(sum[key], whole[key], "{key}");
    }
    let merged = tmp("shard-merged.pcapng");
    if Command::new("mergecap")
        .arg("-w")
        .arg(&merged)
        .args(&outs)
        .status()
        .is_ok_and(|s| s.success())
    {
        let f = ["frame.interface_name", "frame.comment"];
        if let (Some(mut a), Some(mut b)) = (
            fields(&whole_out, &[], &f, ""),
            fields(&merged, &[], &f, ""),
        ) {
            a.sort();
            b.sort();
            assert_eq!(a.len(), b.len());
            assert!(a == b, "the merged shards hold other frames");
        }
    }
    for p in outs.iter().chain([&pcap, &whole_out, &merged]) {
        let _ = std::fs::remove_file(p);
    }
}

/// Ctrl-C during `replay --out`: the run stops reading, writes what it
/// read, exits 130, and leaves a pcapng read to its end (no block cut).
#[test]
fn ctrl_c_leaves_a_whole_pcapng() {
    let one = generated("multi-region-vxlan", 50, "ctrl-c");
    let big = repeated(&one, 400, "ctrl-c.pcap");
    let out = tmp("ctrl-c.pcapng");
    let child = bin()
        .args([
            "replay",
            "-t",
            "multi-region-vxlan",
            "--workers",
            "1",
            "--pcap",
        ])
        .arg(&big)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once the output is being written.
    let t = std::time::Instant::now();
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(t.elapsed() < Duration::from_secs(60), "no output written");
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8(done.stderr).unwrap();
    assert_eq!(done.status.code(), Some(130), "{err}");
    assert!(err.contains("error: interrupted: "), "{err}");
    let c = io::read_capture(&out).unwrap();
    assert_eq!(c.stopped, None, "a block was cut");
    assert!(!c.frames.is_empty());
    assert!(
        c.frames.len() < 240 * 4 * 400,
        "the run was not interrupted"
    );
    if let Some(lines) = fields(&out, &[], &["frame.number"], "") {
        assert_eq!(lines.len(), c.frames.len(), "tshark reads every frame");
    }
    for p in [one, big, out] {
        let _ = std::fs::remove_file(p);
    }
}

/// Comments give the input packet's number, its verdict and the drop
/// reason; gateways and sites are interfaces of their own; `--hops` and
/// `--only` choose what is written.
#[test]
fn comments_interfaces_hops_and_only() {
    let pcap = generated("hub-spoke-vng", 1, "what");
    let replay = |extra: &[&str]| -> (PathBuf, serde_json::Value) {
        let out = tmp(&format!("what-{}.pcapng", extra.join("-")));
        let o = bin()
            .args(["replay", "-t", "hub-spoke-vng", "--json", "--pcap"])
            .arg(&pcap)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (out, json(&o.stdout))
    };
    let frames = |p: &Path| io::read_capture(p).unwrap().frames.len();
    let (all, counters) = replay(&[]);
    let (ends, _) = replay(&["--hops", "ends"]);
    let (egress, _) = replay(&["--hops", "egress"]);
    let delivered = counters["delivered"].as_u64().unwrap() as usize;
    let read = counters["read"].as_u64().unwrap() as usize;
    assert!(frames(&all) > frames(&ends));
    assert!(frames(&all) > frames(&egress));
    // At most two frames a packet with `ends`, at least one for each
    // packet that crossed anything.
    assert!(frames(&ends) <= 2 * read);
    assert!(frames(&ends) >= delivered);
    if let Some(lines) = fields(
        &all,
        &[],
        &[
            "frame.interface_name",
            "frame.comment",
            "frame.packet_flags",
        ],
        "",
    ) {
        let names: Vec<&str> = lines
            .iter()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        assert!(names.iter().any(|n| n.starts_with("gateway ")), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("site ")), "{names:?}");
        for l in &lines {
            let comment = l.split('\t').nth(1).unwrap();
            let n: usize = comment
                .strip_prefix("packet ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no packet number: {comment}"));
            assert!((1..=read).contains(&n), "{comment}");
            assert!(
                ["delivered", "dropped (", "loop"]
                    .iter()
                    .any(|v| comment.contains(&format!(": {v}"))),
                "no verdict: {comment}"
            );
        }
    }
    // Egress frames are all outbound (EPB flags direction 2).
    if let Some(lines) = fields(&egress, &[], &["frame.packet_flags"], "") {
        assert!(lines.iter().all(|f| f.trim() == "0x00000002"), "{lines:?}");
    }
    // Only the dropped: one trace line per drop.
    let traces = tmp("only-dropped.jsonl");
    let o = bin()
        .args([
            "replay",
            "-t",
            "hub-spoke-vng",
            "--json",
            "--only",
            "dropped",
            "--pcap",
        ])
        .arg(&pcap)
        .arg("--traces")
        .arg(&traces)
        .args(["--event", "speaker-down gw-hub1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = json(&o.stdout);
    let text = std::fs::read_to_string(&traces).unwrap();
    assert!(j["dropped"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(text.lines().count() as u64, j["dropped"].as_u64().unwrap());
    assert!(text.lines().all(|l| l.contains("\"verdict\":\"dropped\"")));
    for p in [pcap, all, ends, egress, traces] {
        let _ = std::fs::remove_file(p);
    }
}

/// Copies of one packet at successive hops are TCP retransmissions to
/// Wireshark's default analysis; the setting the README gives turns
/// that off.
#[test]
fn the_documented_setting_stops_retransmission_flags() {
    let pcap = generated("spoke-to-spoke-udr", 2, "retrans");
    let out = tmp("retrans.pcapng");
    let st = bin()
        .args(["replay", "-t", "spoke-to-spoke-udr", "--pcap"])
        .arg(&pcap)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let filter = "tcp.analysis.retransmission";
    if let Some(flagged) = fields(&out, &[], &["frame.number"], filter) {
        assert!(!flagged.is_empty(), "the default analysis flags nothing");
        let with = fields(
            &out,
            &["tcp.analyze_sequence_numbers:FALSE"],
            &["frame.number"],
            filter,
        )
        .unwrap();
        assert!(with.is_empty(), "{with:?}");
    }
    for p in [pcap, out] {
        let _ = std::fs::remove_file(p);
    }
}

/// Peak memory does not grow with the capture: 20 times the packets
/// counted, or 6 times with every hop written, and the peak RSS stays
/// within 10 % (each size run twice: the least peak of the large runs
/// against the greatest of the small, as thread scheduling moves a peak by
/// a few megabytes). GNU time measures it; skipped without.
#[test]
fn memory_stays_flat_as_the_capture_grows() {
    if !Path::new("/usr/bin/time").exists() {
        return;
    }
    let one = generated("multi-region-vxlan", 50, "rss");
    let rss = |p: &Path, extra: &[&str]| -> u64 {
        let o = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(env!("CARGO_BIN_EXE_vnetplane"))
            .args(["replay", "-t", "multi-region-vxlan", "--pcap"])
            .arg(p)
            .args(extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8(o.stderr).unwrap();
        err.lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("{err}"))
    };
    for (small, large, extra) in [
        // 120,000 and 2,400,000 packets, counted.
        (100, 2000, &[][..]),
        // 120,000 and 720,000 packets, every hop written.
        (100, 600, &["--out", "/dev/null"][..]),
    ] {
        let (ps, pl) = (
            repeated(&one, small, &format!("rss-{small}.pcap")),
            repeated(&one, large, &format!("rss-{large}.pcap")),
        );
        let a = rss(&ps, extra).max(rss(&ps, extra));
        let b = rss(&pl, extra).min(rss(&pl, extra));
        for p in [ps, pl] {
            let _ = std::fs::remove_file(p);
        }
        assert!(
            b as f64 <= a as f64 * 1.10,
            "{extra:?}: peak RSS {a} KB for {small} copies, {b} KB for {large}"
        );
    }
    let _ = std::fs::remove_file(one);
}

/// An event at a capture time and one at the packet that time falls on
/// apply before the same packet, from a file or from standard input (the
/// time is found as the stream goes by); an event past the capture is
/// reported after the run and applies to none.
#[test]
fn events_by_packet_and_by_time_keep_their_meaning_when_streamed() {
    // `gen` spaces packets 1 ms apart: 5 ms after the first is packet 6.
    let pcap = generated("hub-rs-two-nvas", 3, "events");
    let run = |events: &str, stdin: bool| -> (serde_json::Value, String) {
        let ev = tmp(&format!("events-{}.txt", events.len() + usize::from(stdin)));
        std::fs::write(&ev, events).unwrap();
        let mut c = bin();
        c.args(["replay", "-t", "hub-rs-two-nvas", "--json", "--events"])
            .arg(&ev)
            .arg("--pcap");
        if stdin {
            c.arg("-").stdin(std::fs::File::open(&pcap).unwrap());
        } else {
            c.arg(&pcap);
        }
        let o = c.output().unwrap();
        let _ = std::fs::remove_file(&ev);
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(o.status.success(), "{err}");
        (json(&o.stdout), err)
    };
    let (by_time, _) = run("at 5ms speaker-down nva1\n", false);
    let (by_packet, _) = run("at packet 6 speaker-down nva1\n", false);
    let (streamed, _) = run("at 5ms speaker-down nva1\n", true);
    for j in [&by_time, &by_packet, &streamed] {
        assert_eq!(j["versions"][0]["from_packet"], 5, "{j}");
        assert!(j["dropped"].as_u64().unwrap() > 0, "{j}");
        for k in ["delivered", "dropped", "drop_reasons", "delivered_at"] {
            assert_eq!(j[k], by_time[k], "{k}");
        }
    }
    let (late, err) = run("at 10s speaker-down nva1\n", true);
    assert_eq!(late["versions"], serde_json::json!([]));
    assert!(
        err.contains(":1: the event is due after the last packet (45 packets)"),
        "{err}"
    );
    let _ = std::fs::remove_file(pcap);
}

/// A failed write ends the run naming the output and its cause once, exit
/// 1: a full disk for the traces, a pipe closed by its reader for the
/// pcapng on standard output (the cause, not the workers' "stopped early"
/// that follows from it).
#[test]
fn a_failed_output_is_named_with_its_cause() {
    let pcap = generated("multi-region-vxlan", 200, "failed");
    let o = bin()
        .args([
            "replay",
            "-t",
            "multi-region-vxlan",
            "--traces",
            "/dev/full",
            "--pcap",
        ])
        .arg(&pcap)
        .output()
        .unwrap();
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: /dev/full: writing traces: No space left"),
        "{err}"
    );
    assert_eq!(err.matches("No space left").count(), 1, "{err}");
    // A big enough capture that the pipe is closed while it is written.
    let big = repeated(&pcap, 20, "failed-big.pcap");
    let mut child = bin()
        .args(["replay", "-t", "multi-region-vxlan", "--out", "-", "--pcap"])
        .arg(&big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(child.stdout.take());
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8(done.stderr).unwrap();
    assert_eq!(done.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: standard output: writing pcapng: Broken pipe"),
        "{err}"
    );
    assert!(!err.contains("stopped early"), "{err}");
    for p in [pcap, big] {
        let _ = std::fs::remove_file(p);
    }
}

/// On a terminal a long replay shows its progress (packets, rate, bytes of
/// the file); `--quiet` hides it (`script` gives the run a terminal;
/// skipped without it).
#[test]
fn progress_shows_on_a_terminal_unless_quiet() {
    if Command::new("script").arg("--version").output().is_err() {
        return;
    }
    let one = generated("multi-region-vxlan", 200, "progress");
    let big = repeated(&one, 200, "progress-big.pcap");
    let on_terminal = |quiet: bool| -> String {
        let cmd = format!(
            "{} replay -t multi-region-vxlan --out /dev/null {} --pcap {}",
            env!("CARGO_BIN_EXE_vnetplane"),
            if quiet { "--quiet" } else { "" },
            big.display()
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let shown = on_terminal(false);
    assert!(shown.contains(" Mpps") && shown.contains("MiB"), "{shown}");
    let quiet = on_terminal(true);
    assert!(!quiet.contains(" Mpps"), "{quiet}");
    assert!(quiet.contains("960000 packets read"), "{quiet}");
    for p in [one, big] {
        let _ = std::fs::remove_file(p);
    }
}
