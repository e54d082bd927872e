//! Reading Azure resources for `import`: where each was found, its
//! fields in either JSON shape, ids taken apart, TOML quoting, and what a
//! `--with` topology supplies.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::io::azure::{AzureJsonError, field};

/// One resource with where it was found.
pub(super) struct Res<'v> {
    pub(super) file: String,
    pub(super) path: String,
    pub(super) v: &'v Value,
}

impl Res<'_> {
    pub(super) fn s(&self, key: &str) -> Option<&str> {
        field(self.v, key).and_then(Value::as_str)
    }
    pub(super) fn name(&self) -> String {
        self.s("name")
            .map(str::to_string)
            .unwrap_or_else(|| self.s("id").map(last_segment).unwrap_or_default())
    }
    pub(super) fn id(&self) -> String {
        self.s("id").unwrap_or("").to_string()
    }
}

pub(super) fn last_segment(id: &str) -> String {
    id.rsplit('/').next().unwrap_or("").to_string()
}

/// The resources of a document: a list, a Resource Graph result, an ARM
/// template's `resources`, a REST example's body, or one resource.
pub(super) fn resources<'v>(file: &str, v: &'v Value) -> Vec<Res<'v>> {
    let (v, at) = crate::io::azure::body(v);
    let list = match v {
        Value::Array(a) => Some((a, at.clone())),
        Value::Object(o) => ["data", "value", "resources"].iter().find_map(|k| {
            o.get(*k)
                .and_then(Value::as_array)
                .map(|a| (a, format!("{at}.{k}")))
        }),
        _ => None,
    };
    match list {
        Some((a, at)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| Res {
                file: file.to_string(),
                path: format!("{at}[{i}]"),
                v,
            })
            .collect(),
        None => vec![Res {
            file: file.to_string(),
            path: at,
            v,
        }],
    }
}

pub(super) fn kind(r: &Res) -> String {
    r.s("type").unwrap_or("").to_ascii_lowercase()
}

/// A boolean property; `false` when absent or not a boolean.
pub(super) fn flag(v: &Value, key: &str) -> bool {
    field(v, key).and_then(Value::as_bool).unwrap_or(false)
}

pub(super) fn list<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    field(v, key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(super) fn strs(v: &Value, key: &str) -> Vec<String> {
    match field(v, key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

pub(super) fn id_of(v: &Value, key: &str) -> Option<String> {
    field(v, key)
        .and_then(|x| field(x, "id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

pub(super) fn q(s: &str) -> String {
    format!("{s:?}")
}

pub(super) fn qlist(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

pub(super) fn bad(r: &Res, key: &str, message: impl Into<String>) -> AzureJsonError {
    AzureJsonError {
        file: r.file.clone(),
        path: format!("{}.{key}", r.path),
        message: message.into(),
    }
}

/// A subnet id's (VNet name, subnet name).
pub(super) fn subnet_of(id: &str) -> Option<(String, String)> {
    let p: Vec<&str> = id.split('/').collect();
    let i = p
        .iter()
        .position(|s| s.eq_ignore_ascii_case("virtualNetworks"))?;
    let j = p.iter().position(|s| s.eq_ignore_ascii_case("subnets"))?;
    Some((p.get(i + 1)?.to_string(), p.get(j + 1)?.to_string()))
}

/// A `--with` topology's prefixes for a subnet's service endpoint.
pub(super) fn with_service_prefixes(
    with: Option<&toml::Table>,
    vnet: &str,
    subnet: &str,
    service: &str,
) -> Vec<String> {
    let named = |a: Option<&toml::Value>, n: &str| -> Option<toml::Value> {
        a?.as_array()?
            .iter()
            .find(|o| o.get("name").and_then(toml::Value::as_str) == Some(n))
            .cloned()
    };
    let Some(v) = named(with.and_then(|w| w.get("vnet")), vnet) else {
        return Vec::new();
    };
    let Some(s) = named(v.get("subnet"), subnet) else {
        return Vec::new();
    };
    s.get("service_endpoint")
        .and_then(toml::Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|e| e.get("service").and_then(toml::Value::as_str) == Some(service))
        })
        .and_then(|e| e.get("prefixes"))
        .and_then(toml::Value::as_array)
        .map(|p| {
            p.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The names of a `--with` topology's objects of one kind.
pub(super) fn with_names(with: Option<&toml::Table>, key: &str) -> Vec<String> {
    with.and_then(|w| w.get(key))
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| {
                    o.get("name")
                        .and_then(toml::Value::as_str)
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn emit_subnet(
    t: &mut String,
    s: &Res,
    vnet: &str,
    subnet_rt: &mut BTreeMap<(String, String), String>,
    subnet_prefixes: &mut BTreeMap<(String, String), Vec<String>>,
    with: Option<&toml::Table>,
    stubs: &mut Vec<String>,
) -> Result<(), AzureJsonError> {
    let name = s.name();
    let mut prefixes = strs(s.v, "addressPrefixes");
    if prefixes.is_empty() {
        prefixes = strs(s.v, "addressPrefix");
    }
    if prefixes.is_empty() {
        return Err(bad(
            s,
            "properties.addressPrefix",
            "a subnet without address prefix",
        ));
    }
    let _ = writeln!(
        t,
        "  # id: {}\n  [[vnet.subnet]]\n  name = {}\n  prefixes = {}",
        s.id(),
        q(&name),
        qlist(&prefixes)
    );
    if let Some(rt) = id_of(s.v, "routeTable").map(|i| last_segment(&i)) {
        let _ = writeln!(t, "  route_table = {}", q(&rt));
        subnet_rt.insert((vnet.to_string(), name.clone()), rt);
    }
    // Service endpoints: Azure names the service, not its prefixes (those
    // come from the --with topology, or are a stub).
    for e in list(s.v, "serviceEndpoints") {
        let Some(service) = field(e, "service").and_then(Value::as_str) else {
            continue;
        };
        let known = with_service_prefixes(with, vnet, &name, service);
        if known.is_empty() {
            stubs.push(format!(
                "subnet {vnet}/{name}: the public prefixes of service endpoint {service}"
            ));
        }
        let _ = writeln!(
            t,
            "    [[vnet.subnet.service_endpoint]]\n    service = {}\n    prefixes = {}",
            q(service),
            qlist(&known)
        );
    }
    subnet_prefixes.insert((vnet.to_string(), name), prefixes);
    Ok(())
}
