//! Azure's REST shapes of what the model computes: a NIC's effective route
//! table as `az network nic show-effective-route-table -o json` and the
//! REST `effectiveRouteTable` operation return it.

use serde::Serialize;

use crate::control::effective::{Route, Table};

/// One effective route (`EffectiveRoute` in the REST API).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveRoute {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub source: &'static str,
    pub state: &'static str,
    pub address_prefix: Vec<String>,
    pub next_hop_type: &'static str,
    pub next_hop_ip_address: Vec<String>,
}

/// One route with all its next hops (a decision's matched route).
impl From<&Route> for EffectiveRoute {
    fn from(r: &Route) -> Self {
        EffectiveRoute {
            name: r.name.as_deref().map(str::to_string),
            source: r.source.as_str(),
            state: r.state.as_str(),
            address_prefix: vec![r.prefix.to_string()],
            next_hop_type: r.next_hop_type.as_str(),
            next_hop_ip_address: r.next_hop_ips.iter().map(ToString::to_string).collect(),
        }
    }
}

impl EffectiveRoute {
    /// The rows Azure prints for a route (one per gateway instance, see
    /// [`Route::printed_next_hops`]).
    pub fn rows(r: &Route) -> impl Iterator<Item = EffectiveRoute> + '_ {
        r.printed_next_hops()
            .into_iter()
            .map(move |ips| EffectiveRoute {
                name: r.name.as_deref().map(str::to_string),
                source: r.source.as_str(),
                state: r.state.as_str(),
                address_prefix: vec![r.prefix.to_string()],
                next_hop_type: r.next_hop_type.as_str(),
                next_hop_ip_address: ips.iter().map(ToString::to_string).collect(),
            })
    }
}

/// A NIC's effective route table: `{"value": [EffectiveRoute, ...]}`.
#[derive(Clone, Debug, Serialize)]
pub struct EffectiveRouteList {
    pub value: Vec<EffectiveRoute>,
}

/// The REST shape of a table's routes, in the table's order.
pub fn effective_routes(table: &Table) -> EffectiveRouteList {
    EffectiveRouteList {
        value: table.routes.iter().flat_map(EffectiveRoute::rows).collect(),
    }
}

// ---------------------------------------------------------------------------
// Reading what Azure's tools print.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

/// A JSON document from Azure that cannot be used: the file, the JSON path
/// of the offending value, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct AzureJsonError {
    pub file: String,
    pub path: String,
    pub message: String,
}

fn err(file: &str, path: &str, message: impl Into<String>) -> AzureJsonError {
    AzureJsonError {
        file: file.to_string(),
        path: path.to_string(),
        message: message.into(),
    }
}

/// Reads a JSON file (at most 256 MiB).
pub fn read_json(file: &str) -> Result<Value, AzureJsonError> {
    use std::io::Read as _;
    let f = std::fs::File::open(file).map_err(|e| err(file, "$", e.to_string()))?;
    let mut text = String::new();
    f.take(256 << 20)
        .read_to_string(&mut text)
        .map_err(|e| err(file, "$", e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| {
        err(
            file,
            "$",
            format!("not JSON: {e} (line {}, column {})", e.line(), e.column()),
        )
    })
}

/// A key of an object, case-insensitively (the az CLI and REST differ in
/// case for a few keys), looked up at the top level and under `properties`
/// (the az CLI flattens what REST nests there).
pub fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let o = v.as_object()?;
    let direct = o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    });
    match direct {
        Some(Value::Null) | None => o.get("properties").and_then(|p| field(p, key)),
        some => some,
    }
}

/// The document itself, or the body of a REST API example file
/// (`responses."200".body`).
pub fn body(v: &Value) -> (&Value, String) {
    match v.pointer("/responses/200/body") {
        Some(b) => (b, "$.responses.200.body".to_string()),
        None => (v, "$".to_string()),
    }
}

/// One row of a NIC's effective route table as Azure prints it, one
/// prefix per row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteRow {
    pub source: String,
    pub state: String,
    pub prefix: IpNet,
    pub next_hop_type: String,
    /// Sorted.
    pub next_hops: Vec<IpAddr>,
}

impl RouteRow {
    /// The rows of a model route, as Azure prints them.
    pub fn of(r: &Route) -> Vec<RouteRow> {
        r.printed_next_hops()
            .into_iter()
            .map(|ips| {
                let mut next_hops = ips.to_vec();
                next_hops.sort();
                RouteRow {
                    source: r.source.as_str().to_string(),
                    state: r.state.as_str().to_string(),
                    prefix: r.prefix,
                    next_hop_type: r.next_hop_type.as_str().to_string(),
                    next_hops,
                }
            })
            .collect()
    }

    /// Same route, and the same state and next hop.
    pub fn same(&self, o: &RouteRow) -> bool {
        self.source.eq_ignore_ascii_case(&o.source)
            && self.prefix == o.prefix
            && self.state.eq_ignore_ascii_case(&o.state)
            && self.next_hop_type.eq_ignore_ascii_case(&o.next_hop_type)
            && self.next_hops == o.next_hops
    }

    /// Same route (source and prefix): a row that may differ in state or
    /// next hop.
    pub fn same_route(&self, o: &RouteRow) -> bool {
        self.source.eq_ignore_ascii_case(&o.source) && self.prefix == o.prefix
    }
}

fn strings<'v>(
    file: &str,
    path: &str,
    v: Option<&'v Value>,
) -> Result<Vec<&'v str>, AzureJsonError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_str()
                    .ok_or_else(|| err(file, &format!("{path}[{i}]"), "expected a string"))
            })
            .collect(),
        Some(_) => Err(err(file, path, "expected a string or a list of strings")),
    }
}

/// A NIC's effective routes as `az network nic show-effective-route-table
/// -o json` prints them (`{"value": [...]}`), as the REST operation
/// returns them, a bare list, or a REST API example file.
pub fn parse_effective_routes(file: &str, v: &Value) -> Result<Vec<RouteRow>, AzureJsonError> {
    let (b, at) = body(v);
    let (list, at) = match b {
        Value::Array(a) => (a, at),
        _ => match field(b, "value") {
            Some(Value::Array(a)) => (a, format!("{at}.value")),
            _ => {
                return Err(err(
                    file,
                    &at,
                    "expected a NIC's effective routes: {\"value\": [...]} or a list",
                ));
            }
        },
    };
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let p = format!("{at}[{i}]");
        let text = |key: &str| -> Result<String, AzureJsonError> {
            field(r, key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| err(file, &format!("{p}.{key}"), "missing, or not a string"))
        };
        let (source, state, next_hop_type) =
            (text("source")?, text("state")?, text("nextHopType")?);
        let mut next_hops = Vec::new();
        let hops_path = format!("{p}.nextHopIpAddress");
        for (k, s) in strings(file, &hops_path, field(r, "nextHopIpAddress"))?
            .into_iter()
            .enumerate()
        {
            next_hops.push(s.trim().parse::<IpAddr>().map_err(|_| {
                err(
                    file,
                    &format!("{hops_path}[{k}]"),
                    format!("{s:?} is not an IP address"),
                )
            })?);
        }
        next_hops.sort();
        let prefixes_path = format!("{p}.addressPrefix");
        let prefixes = strings(file, &prefixes_path, field(r, "addressPrefix"))?;
        if prefixes.is_empty() {
            return Err(err(file, &prefixes_path, "no address prefix"));
        }
        for (k, s) in prefixes.into_iter().enumerate() {
            let prefix = s.trim().parse::<IpNet>().map_err(|_| {
                err(
                    file,
                    &format!("{prefixes_path}[{k}]"),
                    format!("{s:?} is not a CIDR prefix"),
                )
            })?;
            out.push(RouteRow {
                source: source.clone(),
                state: state.clone(),
                prefix,
                next_hop_type: next_hop_type.clone(),
                next_hops: next_hops.clone(),
            });
        }
    }
    Ok(out)
}

/// One route a Route Server learned from, or advertised to, a peer, as
/// `az network routeserver peering list-learned-routes` /
/// `list-advertised-routes` print them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerRoute {
    pub network: IpNet,
    pub next_hop: IpAddr,
    /// From the hyphen-joined `asPath` ("65002-65001").
    pub as_path: Vec<u32>,
}

/// A Route Server peering's learned or advertised routes per instance
/// (`RouteServiceRole_IN_0`, `RouteServiceRole_IN_1`), each sorted and
/// without repeats.
pub fn parse_peer_routes(
    file: &str,
    v: &Value,
) -> Result<Vec<(String, Vec<PeerRoute>)>, AzureJsonError> {
    let (b, at) = body(v);
    let Some(o) = b.as_object() else {
        return Err(err(
            file,
            &at,
            "expected {\"RouteServiceRole_IN_0\": [...], ...}",
        ));
    };
    let mut out = Vec::new();
    for (k, list) in o {
        if !k.starts_with("RouteServiceRole_IN_") {
            continue; // the CLI adds "value": null
        }
        let p = format!("{at}.{k}");
        let Some(list) = list.as_array() else {
            return Err(err(file, &p, "expected a list of routes"));
        };
        let mut routes = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let q = format!("{p}[{i}]");
            let text = |key: &str| -> Result<&str, AzureJsonError> {
                field(r, key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(file, &format!("{q}.{key}"), "missing, or not a string"))
            };
            let network = text("network")?;
            let network = network.parse::<IpNet>().map_err(|_| {
                err(
                    file,
                    &format!("{q}.network"),
                    format!("{network:?} is not a CIDR prefix"),
                )
            })?;
            let hop = text("nextHop")?;
            let next_hop = hop.parse::<IpAddr>().map_err(|_| {
                err(
                    file,
                    &format!("{q}.nextHop"),
                    format!("{hop:?} is not an IP address"),
                )
            })?;
            let path = field(r, "asPath").and_then(Value::as_str).unwrap_or("");
            let as_path = path
                .split(['-', ' '])
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<u32>().map_err(|_| {
                        err(
                            file,
                            &format!("{q}.asPath"),
                            format!("{path:?} is not an AS path"),
                        )
                    })
                })
                .collect::<Result<Vec<u32>, _>>()?;
            routes.push(PeerRoute {
                network,
                next_hop,
                as_path,
            });
        }
        routes.sort();
        routes.dedup();
        out.push((k.clone(), routes));
    }
    if out.is_empty() {
        return Err(err(
            file,
            &at,
            "no RouteServiceRole_IN_0 / RouteServiceRole_IN_1 key: not a Route Server peering's routes",
        ));
    }
    out.sort();
    Ok(out)
}

/// Whether a document holds a Route Server peering's routes (keys
/// `RouteServiceRole_IN_*`) rather than a NIC's effective routes.
pub fn is_peer_routes(v: &Value) -> bool {
    body(v)
        .0
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k.starts_with("RouteServiceRole_IN_")))
}

/// The rows only one side has, and those both have with another state or
/// next hop, after the rows both have alike are taken out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowComparison {
    pub matching: Vec<RouteRow>,
    pub only_azure: Vec<RouteRow>,
    pub only_model: Vec<RouteRow>,
    /// (Azure's row, the model's).
    pub differ: Vec<(RouteRow, RouteRow)>,
}

impl RowComparison {
    pub fn agrees(&self) -> bool {
        self.only_azure.is_empty() && self.only_model.is_empty() && self.differ.is_empty()
    }
}

/// Compares Azure's rows with the model's: first the rows alike, then rows
/// of the same route (source and prefix) in order, then what is left.
pub fn compare_rows(azure: &[RouteRow], model: &[RouteRow]) -> RowComparison {
    let mut left: Vec<Option<&RouteRow>> = model.iter().map(Some).collect();
    let mut c = RowComparison::default();
    let mut unmatched = Vec::new();
    for a in azure {
        match left.iter_mut().find(|m| m.is_some_and(|m| m.same(a))) {
            Some(slot) => {
                c.matching.push(a.clone());
                *slot = None;
            }
            None => unmatched.push(a),
        }
    }
    for a in unmatched {
        match left.iter_mut().find(|m| m.is_some_and(|m| m.same_route(a))) {
            Some(slot) => {
                let m = slot.take().expect("found a row");
                c.differ.push((a.clone(), m.clone()));
            }
            None => c.only_azure.push(a.clone()),
        }
    }
    c.only_model = left.into_iter().flatten().cloned().collect();
    c
}

/// What the model's Route Server `rs` learned from (`learned`) or
/// advertised to peer `peer`, per instance, in the shape of
/// [`parse_peer_routes`]: what `list-learned-routes` and
/// `list-advertised-routes` print. Learned routes are those accepted.
pub fn model_peer_routes(
    cp: &crate::control::ControlPlane,
    rs: crate::control::bgp::Node,
    peer: crate::control::bgp::Node,
    learned: bool,
) -> Vec<(String, Vec<PeerRoute>)> {
    use crate::control::bgp::{SessionState, Status};
    let mut out = Vec::new();
    for (si, s) in cp.bgp.sessions_of(rs) {
        if s.other(rs) != peer || s.state != SessionState::Up {
            continue;
        }
        let paths: Vec<&crate::control::bgp::Path> = if learned {
            cp.bgp
                .received
                .get(&(rs, si))
                .into_iter()
                .flat_map(|m| m.values())
                .filter(|r| !matches!(r.status, Status::Rejected(_)))
                .map(|r| &r.path)
                .collect()
        } else {
            cp.bgp
                .advertised
                .get(&(rs, si))
                .into_iter()
                .flatten()
                .collect()
        };
        let mut routes: Vec<PeerRoute> = paths
            .into_iter()
            .map(|p| PeerRoute {
                network: p.prefix,
                next_hop: p.next_hop,
                as_path: p.as_path.to_vec(),
            })
            .collect();
        routes.sort();
        routes.dedup();
        let k = s.instance.unwrap_or(0);
        out.push((format!("RouteServiceRole_IN_{k}"), routes));
    }
    out.sort();
    out
}
