//! Hostile inputs: the corpus in `tests/fuzz/` (each file's name says what
//! it must give) and random mutations of captures and events files. Never
//! a panic; errors name the file (and line); every packet read is counted;
//! 1 and 2 workers give identical outputs. `VNETPLANE_FUZZ_CASES` sets the
//! number of random cases (CI runs a longer pass).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use vnetplane::dataplane::World;
use vnetplane::io::{self, Frame, PcapNgOut};
use vnetplane::pipeline::{self, Options, Outputs, ReaderMode, Run, schedule};
use vnetplane::topology::{self, Topology};

use super::util::{builtin, converge};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(kind: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fuzz").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn expects(p: &Path) -> &'static str {
    let n = p.file_name().unwrap().to_string_lossy();
    ["ok-", "partial-", "err-"]
        .into_iter()
        .find(|k| n.starts_with(k))
        .unwrap_or_else(|| panic!("{n}: name it ok-, partial- or err-"))
}

/// Replays `frames` on `workers` workers writing traces and pcapng; the
/// counters, traces and pcapng bytes.
fn replay(t: &Topology, frames: &[Frame], workers: usize) -> (usize, Vec<u8>, Vec<u8>) {
    let world = Arc::new(World::new(&converge(t, &[])));
    let mut pcap = PcapNgOut::new(Vec::new()).unwrap();
    let mut traces = Vec::new();
    let r = pipeline::run(
        frames,
        Run {
            world,
            control: None,
            scheduled: Vec::new(),
            live: None,
            stop: None,
            opts: Options {
                workers,
                batch: Some(3),
                from: t.nic_by_name("spoke11-vm"),
                reader: ReaderMode::Thread,
                ..Options::default()
            },
        },
        Outputs {
            pcapng: Some(&mut pcap),
            traces: Some(&mut traces),
        },
    )
    .unwrap();
    assert!(r.counters.balanced(), "{:?}", r.counters);
    assert_eq!(r.counters.read, frames.len());
    (r.counters.read, traces, pcap.finish().unwrap())
}

/// A capture read (whole, in part, or refused as the file's name says)
/// replays alike on 1 and 2 workers.
fn check_capture(t: &Topology, path: &Path, expect: Option<&str>) {
    let name = path.display().to_string();
    match io::read_capture(path) {
        Err(e) => {
            assert!(expect.is_none_or(|x| x == "err-"), "{name}: {e}");
            assert!(e.to_string().starts_with(&name), "{e}");
        }
        Ok(cap) => {
            match expect {
                Some("ok-") => assert!(cap.stopped.is_none(), "{name}: {:?}", cap.stopped),
                Some("partial-") => {
                    let why = cap
                        .stopped
                        .as_deref()
                        .unwrap_or_else(|| panic!("{name} read whole"));
                    assert!(why.starts_with(&format!("{name}: packet ")), "{why}");
                }
                Some(_) => panic!("{name} was read"),
                None => {}
            }
            assert_eq!(
                replay(t, &cap.frames, 1),
                replay(t, &cap.frames, 2),
                "{name}"
            );
        }
    }
}

#[test]
fn corpus_captures_read_as_named_and_replay_alike() {
    let t = builtin("multi-region-vxlan");
    for p in corpus("captures") {
        check_capture(&t, &p, Some(expects(&p)));
    }
}

#[test]
fn corpus_events_and_topologies_fail_located() {
    let t = builtin("multi-region-vxlan");
    let ts: Vec<Duration> = io::read_capture(&root().join("pcaps/multi-region-vxlan.pcap"))
        .unwrap()
        .frames
        .iter()
        .map(|f| f.timestamp)
        .collect();
    for p in corpus("events") {
        let name = p.display().to_string();
        let text = String::from_utf8(std::fs::read(&p).unwrap()).unwrap();
        let r =
            schedule::parse(&text, &name).and_then(|s| schedule::check(&t, &[], &s, &ts, &name));
        match (expects(&p), r) {
            ("ok-", Ok(_)) => {}
            ("err-", Err(e)) => {
                assert_eq!(e.file, name);
                assert!(e.line >= 1, "{e}");
            }
            (x, r) => panic!("{name}: expected {x}, got {r:?}"),
        }
    }
    for p in corpus("topologies") {
        let name = p.display().to_string();
        match (expects(&p), topology::load_file(&p)) {
            ("ok-", Ok(_)) => {}
            ("err-", Err(e)) => {
                for d in e.errors() {
                    assert_eq!(d.file, name, "{d}");
                }
            }
            (x, r) => panic!(
                "{name}: expected {x}, got {:?}",
                r.map(|t| t.warnings.len())
            ),
        }
    }
}

fn cases() -> u32 {
    std::env::var("VNETPLANE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// Applies `ops` (kind, position, byte) to `seed`: overwrite, insert,
/// delete, or cut.
fn mutate_bytes(seed: &[u8], ops: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for &(kind, at, byte) in ops {
        if b.is_empty() {
            break;
        }
        let i = at % b.len();
        match kind % 4 {
            0 => b[i] = byte,
            1 => b.insert(i, byte),
            2 => {
                b.remove(i);
            }
            _ => b.truncate(i.max(24)),
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Mutated captures (from the corpus and a shipped pcap): refused,
    /// read in part or whole, never a panic; what is read replays alike on
    /// 1 and 2 workers with every packet counted.
    #[test]
    fn mutated_captures_replay_alike(which in 0usize..64, ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let mut seeds = corpus("captures");
        seeds.push(root().join("pcaps/multi-region-vxlan.pcap"));
        let seed = std::fs::read(&seeds[which % seeds.len()]).unwrap();
        let dir = std::env::temp_dir().join(format!("vnetplane-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("m{which}-{}.cap", ops.len()));
        std::fs::write(&p, mutate_bytes(&seed, &ops)).unwrap();
        check_capture(&builtin("multi-region-vxlan"), &p, None);
        let _ = std::fs::remove_file(&p);
    }

    /// Mutated events files: parsed and checked, or an error naming the
    /// file and a line inside it; never a panic.
    #[test]
    fn mutated_events_fail_located(which in 0usize..64, ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let seeds = corpus("events");
        let seed = std::fs::read(&seeds[which % seeds.len()]).unwrap();
        let text = String::from_utf8_lossy(&mutate_bytes(&seed, &ops)).into_owned();
        let t = builtin("multi-region-vxlan");
        let ts: Vec<Duration> = (0..24).map(|i| Duration::from_millis(i * 100)).collect();
        let lines = text.lines().count().max(1);
        match schedule::parse(&text, "m.txt").and_then(|s| schedule::check(&t, &[], &s, &ts, "m.txt")) {
            Ok(_) => {}
            Err(e) => {
                prop_assert_eq!(&e.file, "m.txt");
                prop_assert!(e.line >= 1 && e.line <= lines, "{}", e);
            }
        }
    }
}
