//! `verify`: every destination class from every sender; violations make
//! the exit status 1.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
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
    /// Write a JUnit XML report: a test case per assertion, and one each
    /// for loops and black holes (CI test tabs show them).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a SARIF 2.1.0 report: each finding located at its assertion's
    /// line in the topology file (code-scanning UIs show them).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
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
    intents: &'r [verify::Intent],
}

/// Text for XML element content and attribute values.
pub(super) fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// A finding as one line of text, with its path.
fn finding_text(f: &Finding) -> String {
    let what = if f.dst.is_empty() {
        f.from.clone()
    } else {
        format!("{} → {}", f.from, f.dst)
    };
    let under = f
        .failure
        .as_ref()
        .map(|x| format!(" [under: {x}]"))
        .unwrap_or_default();
    let mut s = format!("{} {what}{under}: {}", f.kind, f.detail);
    if let Some(flow) = &f.flow {
        s.push_str(&format!("\n  flow: {flow}"));
    }
    if !f.path.is_empty() {
        s.push_str(&format!("\n  path: {}", f.path.join(" → ")));
    }
    if let Some(r) = &f.route {
        s.push_str(&format!("\n  route: {r}"));
    }
    s
}

/// The JUnit XML report: a test case per assertion, then one for loops
/// and one for the other violations (drops between declared endpoints).
fn junit(file: &str, report: &verify::Report) -> String {
    let mut cases: Vec<(String, Vec<&Finding>)> = report
        .intents
        .iter()
        .enumerate()
        .map(|(k, i)| {
            (
                format!("assertion {} (line {})", i.name, i.line),
                report
                    .violations()
                    .filter(|f| f.intent == Some(k))
                    .collect(),
            )
        })
        .collect();
    cases.push((
        "no loops".into(),
        report.violations().filter(|f| f.kind == "loop").collect(),
    ));
    cases.push((
        "no other violations".into(),
        report
            .violations()
            .filter(|f| f.intent.is_none() && f.kind != "loop")
            .collect(),
    ));
    let failures = cases.iter().filter(|(_, f)| !f.is_empty()).count();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{n}\" failures=\"{failures}\">\n  <testsuite name=\"vnetplane verify {f}\" tests=\"{n}\" failures=\"{failures}\">\n",
        n = cases.len(),
        f = xml(file)
    );
    for (name, found) in &cases {
        x.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(file),
            xml(name)
        ));
        match found.first() {
            None => x.push_str("/>\n"),
            Some(first) => {
                let body: Vec<String> = found.iter().map(|f| finding_text(f)).collect();
                x.push_str(&format!(
                    ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                    first.kind,
                    xml(&first.detail),
                    xml(&body.join("\n"))
                ));
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// The SARIF 2.1.0 report (the parts code-scanning UIs read).
#[derive(Serialize)]
struct Sarif<'r> {
    version: &'static str,
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: [SarifRun<'r>; 1],
}

#[derive(Serialize)]
struct SarifRun<'r> {
    tool: SarifTool<'r>,
    results: Vec<SarifResult<'r>>,
}

#[derive(Serialize)]
struct SarifTool<'r> {
    driver: SarifDriver<'r>,
}

#[derive(Serialize)]
struct SarifDriver<'r> {
    name: &'static str,
    version: &'static str,
    rules: Vec<SarifRule<'r>>,
}

#[derive(Serialize)]
struct SarifRule<'r> {
    id: &'r str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'r> {
    rule_id: &'r str,
    level: &'static str,
    message: SarifText,
    locations: [SarifLocation<'r>; 1],
}

#[derive(Serialize)]
struct SarifText {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation<'r> {
    physical_location: SarifPhysical<'r>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifPhysical<'r> {
    artifact_location: SarifArtifact<'r>,
    region: SarifRegion,
}

#[derive(Serialize)]
struct SarifArtifact<'r> {
    uri: &'r str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: u32,
}

/// Every finding, at its assertion's line (or the file's first line),
/// violations as errors and warnings as warnings.
fn sarif<'r>(
    file: &'r str,
    t: &vnetplane::topology::Topology,
    report: &'r verify::Report,
) -> Sarif<'r> {
    let rules: std::collections::BTreeSet<&str> = report.findings.iter().map(|f| f.kind).collect();
    let results = report
        .findings
        .iter()
        .map(|f| SarifResult {
            rule_id: f.kind,
            level: if f.grade == Grade::Violation {
                "error"
            } else {
                "warning"
            },
            message: SarifText {
                text: finding_text(f),
            },
            locations: [SarifLocation {
                physical_location: SarifPhysical {
                    artifact_location: SarifArtifact { uri: file },
                    region: SarifRegion {
                        start_line: f
                            .intent
                            .and_then(|k| t.assertions.get(k))
                            .map_or(1, |a| a.loc.line.max(1)),
                    },
                },
            }],
        })
        .collect();
    Sarif {
        version: "2.1.0",
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        runs: [SarifRun {
            tool: SarifTool {
                driver: SarifDriver {
                    name: "vnetplane",
                    version: env!("CARGO_PKG_VERSION"),
                    rules: rules.into_iter().map(|id| SarifRule { id }).collect(),
                },
            },
            results,
        }],
    }
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
    if let Some(p) = &a.junit {
        std::fs::write(p, junit(&t.file, &report))
            .with_context(|| p.display().to_string())
            .map_err(output_failed)?;
    }
    if let Some(p) = &a.sarif {
        let s = serde_json::to_string_pretty(&sarif(&t.file, &t, &report))? + "\n";
        std::fs::write(p, s)
            .with_context(|| p.display().to_string())
            .map_err(output_failed)?;
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
            intents: &report.intents,
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
                if let Some(flow) = &f.flow
                    && f.grade == Grade::Violation
                {
                    let _ = writeln!(s, "      flow: {flow}");
                }
                if !f.path.is_empty() {
                    let _ = writeln!(s, "      path: {}", f.path.join(" → "));
                }
                if let Some(r) = &f.route {
                    let _ = writeln!(s, "      route: {r}");
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
