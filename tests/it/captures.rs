//! Reading captures as Wireshark does: every fixture and mutated copies of
//! a few read to the packet counts `tshark` gives (where tshark is
//! installed; CI requires it), and what tshark refuses refused or stopped.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use vnetplane::io;
use vnetplane::rng::Rng;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How tshark read a file.
#[derive(Debug)]
enum Tshark {
    /// Not a capture it reads (another file type, or a header it refuses).
    Refused,
    /// Link-layer data it does not support: not compared.
    Unsupported,
    /// Its packets (records on an interface), and whether it stopped early.
    Read { packets: usize, stopped: bool },
}

/// tshark's reading of `file`; `None` when tshark is not installed.
fn tshark(file: &Path) -> Option<Tshark> {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-e", "_ws.col.Protocol"])
        .output();
    let out = match out {
        Ok(o) => o,
        Err(_) => {
            assert!(
                std::env::var_os("VNETPLANE_REQUIRE_TSHARK").is_none(),
                "tshark is required here (VNETPLANE_REQUIRE_TSHARK) but not installed"
            );
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("record data that TShark doesn't support") {
        return Some(Tshark::Unsupported);
    }
    // pcapng's own blocks (statistics, names, custom) are listed as
    // records of protocol PCAPNG; a file of another type as MIME_FILE.
    let protos: Vec<&str> = stdout.lines().collect();
    if protos.contains(&"MIME_FILE")
        || stderr.contains("isn't a capture file")
        || (protos.is_empty() && stderr.contains("tshark: The file"))
    {
        return Some(Tshark::Refused);
    }
    Some(Tshark::Read {
        packets: protos.iter().filter(|p| **p != "PCAPNG").count(),
        stopped: stderr.contains("tshark: The file"),
    })
}

/// Our reading against tshark's; `None` when they agree.
fn disagreement(file: &Path) -> Option<String> {
    let theirs = tshark(file)?;
    let ours = io::read_capture(file);
    let name = file.display();
    match (&theirs, &ours) {
        (Tshark::Unsupported, _) => None,
        (Tshark::Refused, Err(_)) => None,
        (Tshark::Refused, Ok(c)) if c.frames.is_empty() && c.stopped.is_some() => None,
        (Tshark::Read { packets, stopped }, Ok(c))
            if c.frames.len() == *packets && c.stopped.is_some() == *stopped =>
        {
            None
        }
        _ => Some(format!(
            "{name}: tshark {theirs:?}, vnetplane {:?}",
            ours.map(|c| (c.frames.len(), c.stopped))
        )),
    }
}

#[test]
fn every_fixture_reads_as_tshark_reads_it() {
    let dir = root().join("tests/fixtures/external-pcaps");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        files.len() >= 40,
        "the third-party captures: {}",
        files.len()
    );
    let bad: Vec<String> = files.par_iter().filter_map(|f| disagreement(f)).collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Copies of a pcap and a pcapng with their lengths, timestamps and
/// resolutions changed as capture tools produce them, cut, and with random
/// bytes flipped.
fn mutations(dir: &Path) -> Vec<PathBuf> {
    let pcap = std::fs::read(root().join("pcaps/multi-region-vxlan.pcap")).unwrap();
    let pcapng = std::fs::read(root().join(
        "tests/fixtures/external-pcaps/pcap-file--pcapng_little_endian_basic_test001.pcapng",
    ))
    .unwrap();
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let le = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    // pcap: snap lengths 0 and below the packets, a fraction past a second,
    // a captured length above the original one.
    for snap in [0, 40] {
        let mut b = pcap.clone();
        le(&mut b, 16, snap);
        out.push((format!("snap{snap}.pcap"), b));
    }
    let mut b = pcap.clone();
    le(&mut b, 28, 1_500_000);
    out.push(("fraction.pcap".into(), b));
    let mut b = pcap.clone();
    let orig = u32::from_le_bytes(b[36..40].try_into().unwrap());
    le(&mut b, 36, orig - 10);
    out.push(("caplen-above-orig.pcap".into(), b));
    // Cuts and flipped bytes in both.
    let mut rng = Rng(27);
    for (name, seed) in [("pcap", &pcap), ("pcapng", &pcapng)] {
        for k in 0..5 {
            let cut = 24 + rng.next_u32() as usize % (seed.len() - 24);
            out.push((format!("cut{k}.{name}"), seed[..cut].to_vec()));
        }
        for k in 0..5 {
            let mut b = seed.clone();
            for _ in 0..1 + rng.next_u32() % 3 {
                let i = rng.next_u32() as usize % b.len();
                b[i] = rng.next_u32() as u8;
            }
            out.push((format!("flip{k}.{name}"), b));
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    out.into_iter()
        .map(|(n, b)| {
            let p = dir.join(n);
            std::fs::write(&p, b).unwrap();
            p
        })
        .collect()
}

#[test]
fn mutated_captures_read_as_tshark_reads_them() {
    let dir = std::env::temp_dir().join(format!("vnetplane-captures-{}", std::process::id()));
    let files = mutations(&dir);
    let bad: Vec<String> = files.par_iter().filter_map(|f| disagreement(f)).collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
