//! `bench replay`: a capture file replayed to files, beside the tools that
//! copy the same file to pcapng (`editcap -F pcapng`, `tshark -w`), in one
//! run. The capture is each standard case's traffic ([`super::pipeline`]),
//! written as a pcap; the replays run the streaming pipeline in this
//! process (input read as a stream, pcapng and traces written to files),
//! the peers run as child processes (their start-up, a few milliseconds,
//! included).

use std::fmt::Write as _;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::dataplane::World;
use crate::dataplane::frame::Hops;
use crate::io::PcapNgOut;
use crate::io::read::CaptureReader;
use crate::pipeline::stream::Source;
use crate::pipeline::{self, Control, Options, Outputs, Run};

/// One row: a case, a tool, its median time.
pub struct Row {
    pub case: String,
    pub tool: &'static str,
    pub seconds: f64,
    pub packets: usize,
}

/// What the replay writes in a row.
#[derive(Clone, Copy)]
enum Writes {
    Nothing,
    All,
    Ends,
}

/// Runs every row `runs` times on `packets` packets of each case (one
/// worker); the median of each.
pub fn run(packets: usize, runs: usize, dir: &Path) -> Result<Vec<Row>> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let mut rows = Vec::new();
    for name in ["one-hop", "vxlan"] {
        let (case, world) = super::pipeline::standard_case(name, 4096, packets)?;
        let input = dir.join(format!("{name}.pcap"));
        write_pcap(&input, &case.frames)?;
        let out = dir.join("out.pcapng");
        let traces = dir.join("out.jsonl");
        // Each run writes a new file: the previous run's output is removed
        // first, out of the timing (truncating a gigabyte of page cache is
        // the kernel's work, and no tool's).
        let fresh = || {
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_file(&traces);
        };
        let median = |f: &mut dyn FnMut() -> Result<Duration>| -> Result<f64> {
            let mut t: Vec<f64> = (0..runs.max(1))
                .map(|_| {
                    fresh();
                    f().map(|d| d.as_secs_f64())
                })
                .collect::<Result<_>>()?;
            t.sort_by(f64::total_cmp);
            Ok(t[t.len() / 2])
        };
        let mut push = |tool: &'static str, seconds: f64| {
            rows.push(Row {
                case: name.into(),
                tool,
                seconds,
                packets: case.frames.len(),
            })
        };
        let editcap = median(&mut || {
            child(
                Command::new("editcap")
                    .args(["-F", "pcapng"])
                    .arg(&input)
                    .arg(&out),
            )
        });
        if let Ok(s) = editcap {
            push("editcap -F pcapng", s);
        }
        let tshark = median(&mut || {
            child(
                Command::new("tshark")
                    .args(["-F", "pcapng", "-r"])
                    .arg(&input)
                    .arg("-w")
                    .arg(&out),
            )
        });
        if let Ok(s) = tshark {
            push("tshark -r -w", s);
        }
        for (tool, w) in [
            ("replay (counters)", Writes::Nothing),
            ("replay --out --traces", Writes::All),
            ("replay --out --hops ends", Writes::Ends),
        ] {
            let s = median(&mut || replay(&world, &case.topology, &input, &out, &traces, w))?;
            push(tool, s);
        }
    }
    Ok(rows)
}

/// The rows as a table: time, rate, and time against `editcap`'s.
pub fn text(rows: &[Row]) -> String {
    let mut s =
        String::from("| case | tool | seconds | Mpps | × editcap |\n|---|---|---|---|---|\n");
    for r in rows {
        let editcap = rows
            .iter()
            .find(|e| e.case == r.case && e.tool.starts_with("editcap"))
            .map(|e| format!("{:.2}", r.seconds / e.seconds))
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.2} | {editcap} |",
            r.case,
            r.tool,
            r.seconds,
            r.packets as f64 / r.seconds / 1e6
        );
    }
    s
}

/// The time a child process takes; an error when it cannot run or fails.
fn child(c: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    let st = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow!("{c:?}: {e}"))?;
    if !st.success() {
        bail!("{c:?}: {st}");
    }
    Ok(t.elapsed())
}

/// One streamed replay of `input` on one worker, as `vnetplane replay`
/// runs it.
fn replay(
    world: &Arc<World>,
    t: &crate::topology::Topology,
    input: &Path,
    out: &Path,
    traces: &Path,
    w: Writes,
) -> Result<Duration> {
    let start = Instant::now();
    let file = std::fs::File::open(input)?;
    let capture = CaptureReader::new(BufReader::with_capacity(1 << 20, file), "bench")?;
    let hops = match w {
        Writes::Ends => Hops::Ends,
        _ => Hops::All,
    };
    let run = Run {
        world: world.clone(),
        control: Some(Control {
            base: t.clone(),
            events: Vec::new(),
        }),
        scheduled: Vec::new(),
        live: None,
        stop: None,
        opts: Options {
            workers: 1,
            hops,
            ..Options::default()
        },
    };
    let src = Source {
        capture,
        shard: None,
        scheduled: Vec::new(),
        progress: None,
    };
    let file = |p: &Path| -> Result<BufWriter<std::fs::File>> {
        Ok(BufWriter::with_capacity(
            256 << 10,
            std::fs::File::create(p)?,
        ))
    };
    match w {
        Writes::Nothing => {
            pipeline::run_stream(src, run, Outputs::none())?;
        }
        Writes::All | Writes::Ends => {
            let mut pcapng = PcapNgOut::new(file(out)?)?;
            let mut tr = file(traces)?;
            let want_traces = matches!(w, Writes::All);
            pipeline::run_stream(
                src,
                run,
                Outputs {
                    pcapng: Some(&mut pcapng),
                    traces: want_traces.then_some(&mut tr),
                },
            )?;
            pcapng.finish()?;
            tr.flush()?;
        }
    }
    Ok(start.elapsed())
}

/// Writes frames as a microsecond pcap (Ethernet).
fn write_pcap(p: &Path, frames: &[crate::io::Frame]) -> Result<()> {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let f = BufWriter::new(std::fs::File::create(p).with_context(|| p.display().to_string())?);
    let mut w = PcapWriter::with_header(
        f,
        PcapHeader {
            datalink: pcap_file::DataLink::ETHERNET,
            ..PcapHeader::default()
        },
    )?;
    for fr in frames {
        w.write_packet(&PcapPacket::new(
            fr.timestamp,
            fr.data.len() as u32,
            &fr.data,
        ))?;
    }
    w.into_writer().flush()?;
    Ok(())
}
