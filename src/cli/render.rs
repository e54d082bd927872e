//! Text rendering shared by the commands: az-style tables, address lists,
//! a route's origin in words.

use std::fmt::Write as _;
use std::net::IpAddr;

use vnetplane::control::effective::{self, Origin, Route, Table};
use vnetplane::topology::Topology;

/// az-style table: header, dashes, left-aligned columns, two spaces apart.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let _ = write!(l, "{c:<width$}", width = w[i]);
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    let head: Vec<String> = head.iter().map(|h| h.to_string()).collect();
    line(&head, &mut out);
    let dashes: Vec<String> = w.iter().map(|n| "-".repeat(*n)).collect();
    line(&dashes, &mut out);
    for r in rows {
        line(r, &mut out);
    }
    out
}

/// `a, b, c`.
pub fn ips(v: &[IpAddr]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each of the topology's warnings on a line.
pub fn warnings(t: &Topology) -> String {
    let mut s = String::new();
    for w in &t.warnings {
        let _ = writeln!(s, "{w}");
    }
    s
}

/// Counts of a topology's objects, on one line.
pub fn summary(t: &Topology) -> String {
    format!(
        "{} vnets, {} subnets, {} nics, {} route tables, {} peerings, {} gateways, {} route servers, {} nvas, {} sites, {} warnings",
        t.vnets.len(),
        t.subnets.len(),
        t.nics.len(),
        t.route_tables.len(),
        t.peerings.len(),
        t.gateways.len(),
        t.route_servers.len(),
        t.nvas.len(),
        t.sites.len(),
        t.warnings.len()
    )
}

/// Where a route comes from, in words.
pub fn origin(t: &Topology, r: &Route) -> String {
    match &r.origin {
        Origin::VnetRange { vnet } => format!("address range of vnet {}", t.vnet(*vnet).name),
        Origin::Peering { peering } => {
            let p = &t.peerings[peering.idx()];
            format!(
                "range of peered vnet {} (peering {})",
                t.vnet(p.remote).name,
                p.name
            )
        }
        Origin::Injected {
            by,
            detail,
            transit,
            ..
        } => {
            let who = match by {
                effective::Injector::Gateway(g) => format!("gateway {}", t.gateway(*g).name),
                effective::Injector::RouteServer(r) => {
                    format!("route server {}", t.route_servers[r.idx()].name)
                }
            };
            match transit {
                Some(p) => format!(
                    "{detail}, via {who} (gateway transit over peering {})",
                    t.peerings[p.idx()].name
                ),
                None => format!("{detail}, via {who}"),
            }
        }
        Origin::Internet => "system default route".to_string(),
        Origin::Reserved => "reserved private range (R1)".to_string(),
        Origin::ExtraNone => "extra None route (options.extra_none_prefixes, R4)".to_string(),
        Origin::ServiceEndpoint { service } => format!("service endpoint {service}"),
        Origin::Udr { table, .. } => format!("route table {}", t.route_table(*table).name),
    }
}

/// A table's routes as `az network nic show-effective-route-table -o
/// table` prints them; with `explain`, a column saying where each comes
/// from and why it is Invalid.
pub fn routes(t: &Topology, table: &Table, explain: bool) -> String {
    let mut rows: Vec<Vec<String>> = vec![];
    let mut head = vec![
        "Source",
        "State",
        "Address Prefix",
        "Next Hop Type",
        "Next Hop IP",
    ];
    if explain {
        head.push("Origin");
    }
    for r in table.routes.iter() {
        // One row per gateway instance, as Azure prints them (R8).
        for hops in r.printed_next_hops() {
            let mut row = vec![
                r.source.as_str().to_string(),
                r.state.as_str().to_string(),
                r.prefix.to_string(),
                r.next_hop_type.as_str().to_string(),
                ips(hops),
            ];
            if explain {
                let mut o = origin(t, r);
                if let Some(why) = &r.invalid_because {
                    o.push_str("; Invalid: ");
                    o.push_str(why);
                }
                row.push(o);
            }
            rows.push(row);
        }
    }
    self::table(&head, &rows)
}
