//! ARM templates as `az group export` writes them: template expressions
//! evaluated (`[parameters('x')]`, `[variables('x')]`, `[resourceId(...)]`,
//! `[concat(...)]`, `[format(...)]`), resource ids given to each resource,
//! and child resources written as resources of their own
//! (`virtualNetworks/subnets`, `.../virtualNetworkPeerings`,
//! `routeTables/routes`) merged into their parents.

use serde_json::{Map, Value};

use crate::io::azure::AzureJsonError;

const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/exported";

/// Whether a document is an ARM template.
pub fn is_template(v: &Value) -> bool {
    v.get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|s| s.contains("deploymentTemplate"))
        || (v.get("resources").is_some_and(Value::is_array) && v.get("parameters").is_some())
}

struct Ctx<'a> {
    file: &'a str,
    params: &'a Map<String, Value>,
    vars: &'a Map<String, Value>,
}

fn err(file: &str, path: &str, message: impl Into<String>) -> AzureJsonError {
    AzureJsonError {
        file: file.to_string(),
        path: path.to_string(),
        message: message.into(),
    }
}

/// The resource id of `type` (`A/B/C`) and its names, one per segment after
/// the provider's namespace.
fn resource_id(ty: &str, names: &[String]) -> String {
    let mut parts = ty.split('/');
    let ns = parts.next().unwrap_or("");
    let mut id = format!("{SUB}/providers/{ns}");
    for (seg, name) in parts.zip(names) {
        id.push('/');
        id.push_str(seg);
        id.push('/');
        id.push_str(name);
    }
    id
}

/// A tiny parser of template expressions: function calls, 'strings',
/// numbers.
struct P<'s> {
    s: &'s [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn expr(&mut self, cx: &Ctx, at: &str) -> Result<Value, AzureJsonError> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'\'') => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    match self.s.get(self.i) {
                        None => {
                            return Err(err(
                                cx.file,
                                at,
                                "unterminated string in a template expression",
                            ));
                        }
                        Some(b'\'') if self.s.get(self.i + 1) == Some(&b'\'') => {
                            out.push('\'');
                            self.i += 2;
                        }
                        Some(b'\'') => {
                            self.i += 1;
                            break;
                        }
                        Some(&c) => {
                            out.push(c as char);
                            self.i += 1;
                        }
                    }
                }
                Ok(Value::String(out))
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                let n: i64 = std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|x| x.parse().ok())
                    .ok_or_else(|| err(cx.file, at, "bad number in a template expression"))?;
                Ok(Value::from(n))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.i += 1;
                }
                let name = std::str::from_utf8(&self.s[start..self.i])
                    .unwrap_or("")
                    .to_ascii_lowercase();
                self.ws();
                let mut args = Vec::new();
                if self.s.get(self.i) == Some(&b'(') {
                    self.i += 1;
                    loop {
                        self.ws();
                        if self.s.get(self.i) == Some(&b')') {
                            self.i += 1;
                            break;
                        }
                        args.push(self.expr(cx, at)?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b')') => {
                                self.i += 1;
                                break;
                            }
                            _ => {
                                return Err(err(
                                    cx.file,
                                    at,
                                    "expected , or ) in a template expression",
                                ));
                            }
                        }
                    }
                }
                let mut v = call(cx, at, &name, &args)?;
                // Property access: .name or ['name'].
                loop {
                    if self.s.get(self.i) == Some(&b'.') {
                        self.i += 1;
                        let start = self.i;
                        while self
                            .s
                            .get(self.i)
                            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                        {
                            self.i += 1;
                        }
                        let key = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                        v = v.get(key).cloned().unwrap_or(Value::Null);
                    } else {
                        break;
                    }
                }
                Ok(v)
            }
            _ => Err(err(cx.file, at, "cannot read this template expression")),
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn call(cx: &Ctx, at: &str, name: &str, args: &[Value]) -> Result<Value, AzureJsonError> {
    let arg = |k: usize| args.get(k).map(text).unwrap_or_default();
    Ok(match name {
        "parameters" => {
            let p = cx.params.get(&arg(0)).ok_or_else(|| {
                err(
                    cx.file,
                    at,
                    format!("parameter {:?} is not declared", arg(0)),
                )
            })?;
            let v = p
                .get("defaultValue")
                .or_else(|| p.get("value"))
                .cloned()
                .unwrap_or(Value::Null);
            if v.is_null() {
                return Err(err(
                    cx.file,
                    at,
                    format!("parameter {:?} has no defaultValue", arg(0)),
                ));
            }
            v
        }
        "variables" => cx.vars.get(&arg(0)).cloned().ok_or_else(|| {
            err(
                cx.file,
                at,
                format!("variable {:?} is not declared", arg(0)),
            )
        })?,
        "resourceid" => {
            // Optional leading subscription / resource group arguments are
            // ids' parts the importer does not need: the type is the first
            // argument with a '/'.
            let k = args.iter().position(|a| text(a).contains('/')).unwrap_or(0);
            let names: Vec<String> = args[k + 1..].iter().map(text).collect();
            Value::String(resource_id(&arg(k), &names))
        }
        "concat" => Value::String(args.iter().map(text).collect()),
        "format" => {
            let mut s = arg(0);
            for (k, a) in args.iter().enumerate().skip(1) {
                s = s.replace(&format!("{{{}}}", k - 1), &text(a));
            }
            Value::String(s)
        }
        "resourcegroup" => serde_json::json!({"location": "unknown", "name": "exported"}),
        "tolower" => Value::String(arg(0).to_ascii_lowercase()),
        "toupper" => Value::String(arg(0).to_ascii_uppercase()),
        other => {
            return Err(err(
                cx.file,
                at,
                format!("template function {other}() is not evaluated"),
            ));
        }
    })
}

/// Evaluates every expression string in `v`.
fn eval(cx: &Ctx, v: &mut Value, at: &str) -> Result<(), AzureJsonError> {
    match v {
        Value::String(s) if s.starts_with('[') && s.ends_with(']') && !s.starts_with("[[") => {
            let inner = s[1..s.len() - 1].to_string();
            let mut p = P {
                s: inner.as_bytes(),
                i: 0,
            };
            *v = p.expr(cx, at)?;
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                eval(cx, x, &format!("{at}[{i}]"))?;
            }
        }
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                eval(cx, x, &format!("{at}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A template's resources in REST nesting, expressions evaluated, each with
/// its id, children merged into their parents.
pub fn expand(file: &str, v: &Value) -> Result<Value, AzureJsonError> {
    let empty = Map::new();
    let params = v
        .get("parameters")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let vars = v
        .get("variables")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let cx = Ctx { file, params, vars };
    let list = v
        .get("resources")
        .and_then(Value::as_array)
        .ok_or_else(|| err(file, "$.resources", "a template without resources"))?;
    let mut flat: Vec<Value> = Vec::new();
    for (i, r) in list.iter().enumerate() {
        if !r.is_object() {
            return Err(err(
                file,
                &format!("$.resources[{i}]"),
                "a resource is a JSON object",
            ));
        }
        let mut r = r.clone();
        eval(&cx, &mut r, &format!("$.resources[{i}]"))?;
        // Nested child resources become resources of their own.
        if let Some(children) = r.as_object_mut().and_then(|o| o.remove("resources")) {
            let parent_ty = r
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let parent_name = r
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            for (k, mut c) in children
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let at = format!("$.resources[{i}].resources[{k}]");
                if !c.is_object() {
                    return Err(err(file, &at, "a resource is a JSON object"));
                }
                eval(&cx, &mut c, &at)?;
                let ty = c
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if !ty.contains('/') || !ty.starts_with("Microsoft.") {
                    c["type"] = Value::String(format!("{parent_ty}/{ty}"));
                }
                if !name.contains('/') {
                    c["name"] = Value::String(format!("{parent_name}/{name}"));
                }
                flat.push(c);
            }
        }
        flat.push(r);
    }
    // Ids, and the child's own name (the last segment).
    for r in &mut flat {
        let ty = r
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let names: Vec<String> = r
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split('/')
            .map(str::to_string)
            .collect();
        if r.get("id").is_none() {
            r["id"] = Value::String(resource_id(&ty, &names));
        }
        if let Some(last) = names.last() {
            r["name"] = Value::String(last.clone());
        }
    }
    // Children into their parents.
    let children: [(&str, &str, &str); 3] = [
        (
            "microsoft.network/virtualnetworks/subnets",
            "microsoft.network/virtualnetworks",
            "subnets",
        ),
        (
            "microsoft.network/virtualnetworks/virtualnetworkpeerings",
            "microsoft.network/virtualnetworks",
            "virtualNetworkPeerings",
        ),
        (
            "microsoft.network/routetables/routes",
            "microsoft.network/routetables",
            "routes",
        ),
    ];
    let ty_of = |r: &Value| {
        r.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let mut out: Vec<Value> = Vec::new();
    let mut pending: Vec<(usize, Value)> = Vec::new(); // (child kind, child)
    for r in flat {
        match children.iter().position(|(c, _, _)| *c == ty_of(&r)) {
            Some(k) => pending.push((k, r)),
            None => out.push(r),
        }
    }
    for (k, c) in pending {
        let (_, parent_ty, key) = children[k];
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let parent_id = id.rsplitn(3, '/').nth(2).unwrap_or("").to_ascii_lowercase();
        let Some(parent) = out.iter_mut().find(|p| {
            ty_of(p) == parent_ty
                && p.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|i| i.eq_ignore_ascii_case(&parent_id))
        }) else {
            out.push(c);
            continue;
        };
        let props = parent
            .as_object_mut()
            .expect("a resource is an object")
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        let list = props
            .as_object_mut()
            .map(|o| o.entry(key).or_insert_with(|| Value::Array(Vec::new())));
        if let Some(Value::Array(list)) = list {
            let name = c.get("name").cloned();
            // Merged: the child resource wins over an inline copy.
            list.retain(|x| x.get("name") != name.as_ref());
            list.push(c);
        } else {
            // The parent's `properties` or its list is not what ARM writes:
            // keep the child as a resource of its own (import then says
            // what it makes of it), never drop it.
            out.push(c);
        }
    }
    Ok(Value::Array(out))
}
