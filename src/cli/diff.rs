//! `diff OLD NEW`: what a change to a topology changes, and whether it
//! changes what the user said must not change (exit status 1).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::args::{load, parse_events};
use super::verify::xml;
use super::{EXIT_FAILED, Ended, output_failed};
use vnetplane::verify::diff::{self, Branch, Diff, Version};

/// What must not change.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// An intent ([[assertion]]) that held fails now.
    Intents,
    /// A flow's verdict: delivered, dropped, looped, or where.
    Verdict,
    /// A flow's path: the nodes it crosses (a verdict change counts too).
    Path,
    /// A NIC's effective routes.
    Routes,
    /// Nothing: report only.
    None,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The topology before the change (a file or a built-in name).
    pub old: String,
    /// The topology after it; without it, OLD after the `--event`s.
    pub new: Option<String>,
    /// An event applied to the new version (repeatable; see `routes --help`).
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Exit 1 when any of these changes (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "intents")]
    pub fail_on: Vec<FailOn>,
    #[arg(long)]
    pub json: bool,
    /// Write a JUnit XML report: a test case per kind of change and per intent.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Changes listed per section in text (all of them with --json).
    #[arg(long, default_value_t = 40)]
    pub limit: usize,
}

/// The verdicts of a flow's branches, each once with its count.
fn branches(v: &[Branch]) -> String {
    let mut n: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for b in v {
        *n.entry(b.verdict.as_str()).or_default() += 1;
    }
    n.into_iter()
        .map(|(k, c)| {
            if c > 1 {
                format!("{k} (×{c} branches)")
            } else {
                k.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn paths(v: &[Branch]) -> String {
    v.iter()
        .map(|b| b.path.join(" → "))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn row(r: &Option<diff::RouteRow>) -> String {
    r.as_ref().map_or_else(String::new, |r| {
        format!(
            "{} {} {}",
            r.state,
            r.next_hop_type,
            r.next_hop_ips.join(",")
        )
        .trim_end()
        .to_string()
    })
}

/// Which selected kinds of change happened.
fn failed(d: &Diff, on: &[FailOn]) -> Vec<&'static str> {
    let mut v = Vec::new();
    if on.contains(&FailOn::Intents) && d.intents_broken().next().is_some() {
        v.push("intents");
    }
    if on.contains(&FailOn::Verdict) && d.verdicts_changed().next().is_some() {
        v.push("verdict");
    }
    if on.contains(&FailOn::Path) && !d.flows.is_empty() {
        v.push("path");
    }
    if on.contains(&FailOn::Routes) && !d.routes.is_empty() {
        v.push("routes");
    }
    v
}

fn text(d: &Diff, old: &str, new: &str, limit: usize) -> String {
    let mut s = String::new();
    let subnets: std::collections::BTreeSet<&str> =
        d.routes.iter().map(|r| r.subnet.as_str()).collect();
    let _ = writeln!(
        s,
        "{old} → {new}: {} route changes in {} subnets; {} flows changed ({} verdicts, {} paths only) of {} sender × destination pairs; {} intents now failing",
        d.routes.len(),
        subnets.len(),
        d.flows.len(),
        d.verdicts_changed().count(),
        d.flows.len() - d.verdicts_changed().count(),
        d.pairs,
        d.intents_broken().count()
    );
    let more = |s: &mut String, n: usize| {
        if n > limit {
            let _ = writeln!(s, "  … and {} more (--json lists all)", n - limit);
        }
    };
    if !d.routes.is_empty() {
        let _ = writeln!(s, "effective routes");
        let mut last = "";
        for r in d.routes.iter().take(limit) {
            if r.subnet != last {
                last = &r.subnet;
                let shown: Vec<&str> = r.nics.iter().take(3).map(String::as_str).collect();
                let extra = r.nics.len().saturating_sub(3);
                let _ = writeln!(
                    s,
                    "  subnet {} (nics {}{})",
                    r.subnet,
                    if shown.is_empty() {
                        "none".to_string()
                    } else {
                        shown.join(", ")
                    },
                    if extra > 0 {
                        format!(" +{extra}")
                    } else {
                        String::new()
                    }
                );
            }
            let (mark, what) = match r.change {
                "added" => ("+", row(&r.new)),
                "removed" => ("-", row(&r.old)),
                _ => ("~", format!("{} ⇒ {}", row(&r.old), row(&r.new))),
            };
            let _ = writeln!(s, "    {mark} {} {}: {what}", r.prefix, r.source);
        }
        more(&mut s, d.routes.len());
    }
    if !d.flows.is_empty() {
        let _ = writeln!(s, "flows");
        let mut flows: Vec<&diff::FlowChange> = d.verdicts_changed().collect();
        flows.extend(d.flows.iter().filter(|f| f.change != "verdict"));
        for f in flows.iter().take(limit) {
            if f.change == "verdict" {
                let _ = writeln!(
                    s,
                    "  {} → {}: {} ⇒ {}",
                    f.from,
                    f.dst,
                    branches(&f.old),
                    branches(&f.new)
                );
            } else {
                let _ = writeln!(
                    s,
                    "  {} → {}: path changed ({})",
                    f.from,
                    f.dst,
                    branches(&f.new)
                );
            }
            let _ = writeln!(s, "      before: {}", paths(&f.old));
            let _ = writeln!(s, "      after:  {}", paths(&f.new));
        }
        more(&mut s, flows.len());
    }
    if !d.intents.is_empty() {
        let _ = writeln!(s, "intents");
        let word = |h: Option<bool>| match h {
            Some(true) => "holds",
            Some(false) => "fails",
            None => "absent",
        };
        for i in &d.intents {
            let _ = writeln!(
                s,
                "  assertion {} (line {}): {} ⇒ {}",
                i.name,
                i.line,
                word(i.old),
                word(i.new)
            );
        }
    }
    for (title, v) in [("only before", &d.only_old), ("only after", &d.only_new)] {
        if !v.is_empty() {
            let _ = writeln!(s, "{title}: {}", v.join(", "));
        }
    }
    s
}

fn junit(d: &Diff, file: &str, on: &[FailOn]) -> String {
    let mut cases: Vec<(String, bool, String)> = Vec::new();
    let flows = |only_verdicts: bool| {
        d.flows
            .iter()
            .filter(|f| !only_verdicts || f.change == "verdict")
            .map(|f| {
                format!(
                    "{} → {}: {} ⇒ {}",
                    f.from,
                    f.dst,
                    paths(&f.old),
                    paths(&f.new)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let routes = d
        .routes
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}: {} ⇒ {}",
                r.subnet,
                r.change,
                r.prefix,
                r.source,
                row(&r.old),
                row(&r.new)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    cases.push((
        "effective routes unchanged".into(),
        on.contains(&FailOn::Routes),
        routes,
    ));
    cases.push((
        "verdicts unchanged".into(),
        on.contains(&FailOn::Verdict),
        flows(true),
    ));
    cases.push((
        "paths unchanged".into(),
        on.contains(&FailOn::Path),
        flows(false),
    ));
    for i in &d.intents {
        let broke = i.new == Some(false) && i.old != Some(false);
        cases.push((
            format!("assertion {} (line {}) still holds", i.name, i.line),
            on.contains(&FailOn::Intents),
            if broke {
                "held before, fails now".to_string()
            } else {
                String::new()
            },
        ));
    }
    let failing = |(_, gate, body): &(String, bool, String)| *gate && !body.is_empty();
    let failures = cases.iter().filter(|c| failing(c)).count();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{n}\" failures=\"{failures}\">\n  <testsuite name=\"vnetplane diff {f}\" tests=\"{n}\" failures=\"{failures}\">\n",
        n = cases.len(),
        f = xml(file)
    );
    for c in &cases {
        let (name, _, body) = c;
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(file),
            xml(name)
        );
        if failing(c) {
            let _ = write!(
                x,
                ">\n      <failure type=\"changed\" message=\"{}\">{}</failure>\n    </testcase>\n",
                xml(name),
                xml(body)
            );
        } else if !body.is_empty() {
            let _ = write!(
                x,
                ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                xml(body)
            );
        } else {
            x.push_str("/>\n");
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

pub fn run(a: DiffArgs) -> Result<String> {
    let old = load(&a.old)?;
    let new = match &a.new {
        Some(n) => load(n)?,
        None => old.clone(),
    };
    let events = parse_events(&a.events)?;
    for e in &events {
        e.check(&new)?;
    }
    let d = diff::diff(
        Version {
            topology: &old,
            events: &[],
        },
        Version {
            topology: &new,
            events: &events,
        },
    )?;
    let new_name = match &a.new {
        Some(_) => new.file.clone(),
        None => format!("{} after {} events", old.file, events.len()),
    };
    if let Some(p) = &a.junit {
        std::fs::write(p, junit(&d, &new.file, &a.fail_on))
            .with_context(|| p.display().to_string())
            .map_err(output_failed)?;
    }
    let out = if a.json {
        serde_json::to_string_pretty(&d)? + "\n"
    } else {
        text(&d, &old.file, &new_name, a.limit)
    };
    let bad = failed(&d, &a.fail_on);
    if !bad.is_empty() {
        return Err(anyhow::Error::new(Ended {
            report: out,
            message: Some(format!("changed: {} (--fail-on)", bad.join(", "))),
            code: EXIT_FAILED,
        }));
    }
    Ok(out)
}
