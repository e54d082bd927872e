//! `compare`: what Azure programmed against what the model computes. NIC
//! effective routes (`az network nic show-effective-route-table -o json`,
//! one file per NIC named after it) and Route Server peerings' learned and
//! advertised routes (`az network routeserver peering list-learned-routes`
//! / `list-advertised-routes`, files `RS.PEER.learned.json` and
//! `RS.PEER.advertised.json`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use serde::Serialize;

use super::args::{EventArgs, TopologyArg, control_plane, load};
use super::render;
use super::{EXIT_FAILED, Ended};
use vnetplane::control::ControlPlane;
use vnetplane::control::bgp::Node;
use vnetplane::io::azure::{
    PeerRoute, RouteRow, RowComparison, compare_rows, is_peer_routes, model_peer_routes,
    parse_effective_routes, parse_peer_routes, read_json,
};

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    /// Azure's output: files, or folders of `.json` files. A NIC's effective
    /// routes are named after the NIC (`NIC.json`); a Route Server
    /// peering's routes `RS.PEER.learned.json` / `RS.PEER.advertised.json`.
    #[arg(long, required = true, num_args = 1..)]
    pub azure: Vec<PathBuf>,
    /// Say where each of the model's rows comes from (and why it is Invalid).
    #[arg(long)]
    pub explain: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub events: EventArgs,
}

/// Every `.json` file named, and those in the folders named, in name order.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| anyhow!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            inside.sort();
            if inside.is_empty() {
                bail!("{}: no .json file in the folder", p.display());
            }
            out.extend(inside);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// A file's name without `.json` and the suffixes az users give such files.
fn stem(f: &Path) -> String {
    let name = f
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".json").unwrap_or(&name).to_string();
    for suffix in [".effective-routes", ".effective", ".routes"] {
        if let Some(s) = name.strip_suffix(suffix) {
            return s.to_string();
        }
    }
    name
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NicReport {
    nic: String,
    file: String,
    matching: usize,
    only_azure: Vec<Row>,
    only_model: Vec<Row>,
    differ: Vec<Differ>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    source: String,
    state: String,
    address_prefix: String,
    next_hop_type: String,
    next_hop_ip_address: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<String>,
}

#[derive(Serialize)]
struct Differ {
    azure: Row,
    model: Row,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeeringReport {
    route_server: String,
    peer: String,
    kind: &'static str,
    file: String,
    instances: Vec<InstanceReport>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceReport {
    instance: String,
    matching: usize,
    only_azure: Vec<String>,
    only_model: Vec<String>,
}

#[derive(Serialize, Default)]
struct Report {
    nics: Vec<NicReport>,
    peerings: Vec<PeeringReport>,
}

impl Report {
    fn agrees(&self) -> bool {
        self.nics
            .iter()
            .all(|n| n.only_azure.is_empty() && n.only_model.is_empty() && n.differ.is_empty())
            && self
                .peerings
                .iter()
                .flat_map(|p| &p.instances)
                .all(|i| i.only_azure.is_empty() && i.only_model.is_empty())
    }
}

pub fn run(a: CompareArgs) -> Result<String> {
    let cp = control_plane(&load(&a.topology.topology)?, &a.events.events)?;
    let mut report = Report::default();
    for f in files(&a.azure)? {
        let name = f.display().to_string();
        let doc = read_json(&name)?;
        if is_peer_routes(&doc) {
            report.peerings.push(peering(&cp, &f, &doc)?);
        } else {
            report.nics.push(nic(&cp, &f, &doc, a.explain)?);
        }
    }
    let out = if a.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        text(&report)
    };
    if report.agrees() {
        Ok(out)
    } else {
        Err(anyhow::Error::new(Ended {
            report: out,
            message: Some("the model and Azure disagree".to_string()),
            code: EXIT_FAILED,
        }))
    }
}

fn row(r: &RouteRow, explanation: Option<String>) -> Row {
    Row {
        source: r.source.clone(),
        state: r.state.clone(),
        address_prefix: r.prefix.to_string(),
        next_hop_type: r.next_hop_type.clone(),
        next_hop_ip_address: r.next_hops.iter().map(ToString::to_string).collect(),
        explanation,
    }
}

fn nic(cp: &ControlPlane, f: &Path, doc: &serde_json::Value, explain: bool) -> Result<NicReport> {
    let t = &cp.topology;
    let file = f.display().to_string();
    let name = stem(f);
    let n = t.nic_by_name(&name).ok_or_else(|| {
        anyhow!(
            "{file}: no NIC named `{name}` in {} (a NIC's effective routes are named NIC.json)",
            t.file
        )
    })?;
    let azure_rows = parse_effective_routes(&file, doc)?;
    let table = cp.subnet_table(t.nic(n).subnet);
    // Each model row with the route it comes from, for --explain.
    let mut model: Vec<(RouteRow, String)> = Vec::new();
    for r in table.routes.iter() {
        let mut why = render::origin(t, r);
        if let Some(inv) = &r.invalid_because {
            why.push_str("; Invalid: ");
            why.push_str(inv);
        }
        model.extend(RouteRow::of(r).into_iter().map(|x| (x, why.clone())));
    }
    let rows: Vec<RouteRow> = model.iter().map(|(r, _)| r.clone()).collect();
    let c: RowComparison = compare_rows(&azure_rows, &rows);
    let why = |r: &RouteRow| {
        explain
            .then(|| model.iter().find(|(m, _)| m == r).map(|(_, w)| w.clone()))
            .flatten()
    };
    Ok(NicReport {
        nic: name,
        file,
        matching: c.matching.len(),
        only_azure: c.only_azure.iter().map(|r| row(r, None)).collect(),
        only_model: c.only_model.iter().map(|r| row(r, why(r))).collect(),
        differ: c
            .differ
            .iter()
            .map(|(a, m)| Differ {
                azure: row(a, None),
                model: row(m, why(m)),
            })
            .collect(),
    })
}

fn peering(cp: &ControlPlane, f: &Path, doc: &serde_json::Value) -> Result<PeeringReport> {
    let t = &cp.topology;
    let file = f.display().to_string();
    let name = stem(f);
    let (rest, kind) = if let Some(r) = name.strip_suffix(".learned") {
        (r, "learned")
    } else if let Some(r) = name.strip_suffix(".advertised") {
        (r, "advertised")
    } else {
        bail!(
            "{file}: a Route Server peering's routes are named RS.PEER.learned.json or RS.PEER.advertised.json"
        );
    };
    let (rs_name, peer_name) = match rest.split_once('.') {
        Some((r, p)) => (r.to_string(), p.to_string()),
        None if t.route_servers.len() == 1 => (t.route_servers[0].name.clone(), rest.to_string()),
        None => bail!("{file}: name the Route Server: RS.PEER.{kind}.json"),
    };
    let rs = match Node::by_name(t, &rs_name) {
        Some(n @ Node::RouteServer(_)) => n,
        _ => bail!("{file}: no route_server named `{rs_name}` in {}", t.file),
    };
    let peer = match Node::by_name(t, &peer_name) {
        Some(n @ Node::Nva(_)) => n,
        _ => bail!("{file}: no nva named `{peer_name}` in {}", t.file),
    };
    let azure_routes = parse_peer_routes(&file, doc)?;
    let model = model_peer_routes(cp, rs, peer, kind == "learned");
    let mut instances: Vec<String> = azure_routes.iter().map(|(k, _)| k.clone()).collect();
    instances.extend(model.iter().map(|(k, _)| k.clone()));
    instances.sort();
    instances.dedup();
    let get = |v: &[(String, Vec<PeerRoute>)], k: &str| -> Vec<PeerRoute> {
        v.iter()
            .find(|(x, _)| x == k)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    let show = |r: &PeerRoute| {
        let path: Vec<String> = r.as_path.iter().map(ToString::to_string).collect();
        format!(
            "{} via {} AS path {}",
            r.network,
            r.next_hop,
            if path.is_empty() {
                "(local)".to_string()
            } else {
                path.join("-")
            }
        )
    };
    let instances = instances
        .into_iter()
        .map(|k| {
            let (a, m) = (get(&azure_routes, &k), get(&model, &k));
            InstanceReport {
                matching: a.iter().filter(|r| m.contains(r)).count(),
                only_azure: a.iter().filter(|r| !m.contains(r)).map(show).collect(),
                only_model: m.iter().filter(|r| !a.contains(r)).map(show).collect(),
                instance: k,
            }
        })
        .collect();
    Ok(PeeringReport {
        route_server: rs_name,
        peer: peer_name,
        kind,
        file,
        instances,
    })
}

fn table_of(rows: &[&Row], explain: bool) -> String {
    let mut head = vec![
        "Source",
        "State",
        "Address Prefix",
        "Next Hop Type",
        "Next Hop IP",
    ];
    if explain {
        head.push("Model's origin");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![
                r.source.clone(),
                r.state.clone(),
                r.address_prefix.clone(),
                r.next_hop_type.clone(),
                r.next_hop_ip_address.join(", "),
            ];
            if explain {
                v.push(r.explanation.clone().unwrap_or_default());
            }
            v
        })
        .collect();
    render::table(&head, &cells)
}

fn indent(out: &mut String, s: &str) {
    for l in s.lines() {
        let _ = writeln!(out, "    {l}");
    }
}

fn text(r: &Report) -> String {
    let mut out = String::new();
    for n in &r.nics {
        let _ = writeln!(
            out,
            "nic {} ({}): {} rows match, {} only in Azure, {} only in the model, {} differ",
            n.nic,
            n.file,
            n.matching,
            n.only_azure.len(),
            n.only_model.len(),
            n.differ.len()
        );
        let explain = n
            .only_model
            .iter()
            .chain(n.differ.iter().map(|d| &d.model))
            .any(|r| r.explanation.is_some());
        if !n.only_azure.is_empty() {
            let _ = writeln!(out, "  only in Azure:");
            indent(
                &mut out,
                &table_of(&n.only_azure.iter().collect::<Vec<_>>(), false),
            );
        }
        if !n.only_model.is_empty() {
            let _ = writeln!(out, "  only in the model:");
            indent(
                &mut out,
                &table_of(&n.only_model.iter().collect::<Vec<_>>(), explain),
            );
        }
        for d in &n.differ {
            let _ = writeln!(
                out,
                "  differ ({} {}):",
                d.azure.source, d.azure.address_prefix
            );
            let _ = writeln!(
                out,
                "    Azure: {} {} {}",
                d.azure.state,
                d.azure.next_hop_type,
                ips_text(&d.azure.next_hop_ip_address)
            );
            let _ = writeln!(
                out,
                "    model: {} {} {}{}",
                d.model.state,
                d.model.next_hop_type,
                ips_text(&d.model.next_hop_ip_address),
                d.model
                    .explanation
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
    }
    for p in &r.peerings {
        let _ = writeln!(
            out,
            "route_server {} peer {} {} routes ({}):",
            p.route_server, p.peer, p.kind, p.file
        );
        for i in &p.instances {
            let _ = writeln!(
                out,
                "  {}: {} match, {} only in Azure, {} only in the model",
                i.instance,
                i.matching,
                i.only_azure.len(),
                i.only_model.len()
            );
            for x in &i.only_azure {
                let _ = writeln!(out, "    only in Azure: {x}");
            }
            for x in &i.only_model {
                let _ = writeln!(out, "    only in the model: {x}");
            }
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if r.agrees() {
            "the model agrees with Azure"
        } else {
            "the model and Azure disagree"
        }
    );
    out
}

fn ips_text(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join(", ")
    }
}
