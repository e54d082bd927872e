//! `verify`: every destination class from every sender; violations make
//! the exit status 1.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::args::{TopologyArg, load};
use super::{EXIT_FAILED, Ended, output_failed};
use vnetplane::dataplane::traffic::{self, Flow};
use vnetplane::verify::{self, Finding, Grade};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[arg(long)]
    pub json: bool,
    /// Write one packet per violation as a pcap that `replay` reproduces.
    #[arg(long, value_name = "OUT.pcap")]
    pub counterexamples: Option<PathBuf>,
    /// Also check under failures: each-nva, each-session, or NAME,NAME,...
    #[arg(long, value_name = "SPEC")]
    pub fail: Option<String>,
    /// Warnings fail the run too.
    #[arg(long)]
    pub strict: bool,
}

/// `verify --json`.
#[derive(Serialize)]
struct VerifyReport<'r> {
    classes: usize,
    senders: usize,
    walks: usize,
    seconds: f64,
    violations: Vec<&'r Finding>,
    warnings: Vec<&'r Finding>,
}

pub fn run(a: VerifyArgs) -> Result<String> {
    let t = load(&a.topology.topology)?;
    let failures = match &a.fail {
        Some(spec) => verify::parse_failures(&t, spec)?,
        None => Vec::new(),
    };
    let t0 = std::time::Instant::now();
    let report = verify::verify(&t, &failures)?;
    let secs = t0.elapsed().as_secs_f64();
    if let Some(path) = &a.counterexamples {
        let flows: Vec<Flow> = report
            .violations()
            .filter_map(|f| f.counterexample)
            .map(|c| Flow {
                from: c.from,
                dst: c.header.dst,
                proto: c.header.proto,
                sport: c.header.sport,
                dport: c.header.dport,
            })
            .collect();
        let frames = traffic::frames(&t, &flows);
        traffic::write_pcap(path, &frames).map_err(output_failed)?;
    }
    let violations = report.violations().count();
    let warnings = report.warnings().count();
    let out = if a.json {
        let v = VerifyReport {
            classes: report.classes,
            senders: report.senders,
            walks: report.walks,
            seconds: secs,
            violations: report.violations().collect(),
            warnings: report.warnings().collect(),
        };
        serde_json::to_string_pretty(&v)? + "\n"
    } else {
        let mut s = format!(
            "{}: {} destination classes × {} senders: {} walks in {:.2} s\n",
            t.file, report.classes, report.senders, report.walks, secs
        );
        for (title, grade) in [
            ("violations", Grade::Violation),
            ("warnings", Grade::Warning),
        ] {
            let list: Vec<_> = report
                .findings
                .iter()
                .filter(|f| f.grade == grade)
                .collect();
            let _ = writeln!(s, "{} {title}", list.len());
            for f in list {
                let under = f
                    .failure
                    .as_ref()
                    .map(|x| format!(" [under: {x}]"))
                    .unwrap_or_default();
                let what = if f.dst.is_empty() {
                    f.from.clone()
                } else {
                    format!("{} → {}", f.from, f.dst)
                };
                let _ = writeln!(s, "  {} {what}{under}: {}", f.kind, f.detail);
                if !f.path.is_empty() {
                    let _ = writeln!(s, "      path: {}", f.path.join(" → "));
                }
            }
        }
        s
    };
    if violations > 0 || (a.strict && warnings > 0) {
        return Err(anyhow::Error::new(Ended {
            report: out,
            message: None,
            code: EXIT_FAILED,
        }));
    }
    Ok(out)
}
