//! The user's model of a network and its loader.
//!
//! A topology file is TOML (the format is documented, with every field, in
//! `topologies/example.toml`). Loading is three steps:
//!
//! 1. serde reads the file into `raw` structs whose values keep their byte
//!    spans (syntax and type errors come back from `toml` with line/column);
//! 2. `build` resolves names into typed ids and parses every address;
//! 3. [`validate`] checks the rules Azure enforces across objects.
//!
//! Every error is a [`Diagnostic`] naming file, line, column, object and field.
//! Serde stays at this edge: the rest of the crate sees only [`Topology`].

mod build;
pub mod diag;
pub mod generate;
pub mod model;
mod raw;
pub mod validate;

use std::path::Path;

pub use diag::{Diagnostic, LoadError, Loc, Severity};
pub use model::*;

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// Loads a topology from TOML text. `file` names it in diagnostics.
pub fn load_str(file: &str, src: &str) -> Result<Topology, LoadError> {
    let mut sink = diag::Sink::new(file, src);
    if src.len() > MAX_FILE_BYTES {
        sink.error(
            Loc { line: 1, col: 1 },
            "",
            None,
            format!("file is {} bytes; the limit is {MAX_FILE_BYTES}", src.len()),
        );
        return Err(LoadError {
            diagnostics: sink.out,
        });
    }
    let parsed: raw::File = match toml::from_str(src) {
        Ok(f) => f,
        Err(e) => {
            let loc = e
                .span()
                .map_or(Loc { line: 1, col: 1 }, |s| Loc::from_offset(src, s.start));
            sink.error(loc, "", None, e.message().trim().to_string());
            return Err(LoadError {
                diagnostics: sink.out,
            });
        }
    };
    let topo = build::Builder::new(&mut sink).build(&parsed);
    if !sink.has_errors() {
        validate::validate(&topo, &mut sink);
    }
    if sink.has_errors() {
        sink.out.sort_by_key(|d| (d.loc, d.severity));
        return Err(LoadError {
            diagnostics: sink.out,
        });
    }
    let mut topo = topo;
    topo.warnings = sink.out;
    Ok(topo)
}

/// Loads a topology file from disk.
pub fn load_file(path: &Path) -> Result<Topology, LoadError> {
    let name = path.display().to_string();
    let fail = |msg: String| LoadError {
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            file: name.clone(),
            loc: Loc { line: 0, col: 0 },
            object: String::new(),
            field: None,
            message: msg,
        }],
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return Err(fail("is a directory, not a topology file".into()));
    }
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(fail(format!(
            "file is {} bytes; the limit is {MAX_FILE_BYTES}",
            meta.len()
        )));
    }
    // Bounded while reading too: a device or a pipe says nothing of its size.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?,
            MAX_FILE_BYTES as u64 + 1,
        ),
        &mut bytes,
    )
    .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(fail(format!(
            "larger than {MAX_FILE_BYTES} bytes, the limit"
        )));
    }
    let src = String::from_utf8(bytes).map_err(|e| {
        let off = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.into_bytes()[..off]).into_owned();
        let loc = Loc::from_offset(&text, off);
        fail(format!(
            "not UTF-8 text: invalid byte at line {}, column {}",
            loc.line, loc.col
        ))
    })?;
    load_str(&name, &src)
}

/// The topologies shipped in `topologies/`, embedded in the binary: one per
/// scenario of SCENARIOS.md (and variants), plus the SPEC test cases.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "hub-spoke-vng",
        include_str!("../../topologies/hub-spoke-vng.toml"),
    ),
    (
        "nva-default-loop",
        include_str!("../../topologies/nva-default-loop.toml"),
    ),
    (
        "nva-default-loop-fixed",
        include_str!("../../topologies/nva-default-loop-fixed.toml"),
    ),
    (
        "onprem-bypasses-nva",
        include_str!("../../topologies/onprem-bypasses-nva.toml"),
    ),
    (
        "onprem-via-nva-udr",
        include_str!("../../topologies/onprem-via-nva-udr.toml"),
    ),
    (
        "onprem-overlay",
        include_str!("../../topologies/onprem-overlay.toml"),
    ),
    (
        "multi-region-loop",
        include_str!("../../topologies/multi-region-loop.toml"),
    ),
    (
        "multi-region-vxlan",
        include_str!("../../topologies/multi-region-vxlan.toml"),
    ),
    (
        "multi-region-ipsec",
        include_str!("../../topologies/multi-region-ipsec.toml"),
    ),
    (
        "multi-region-no-as-override",
        include_str!("../../topologies/multi-region-no-as-override.toml"),
    ),
    (
        "dual-homed-active-active",
        include_str!("../../topologies/dual-homed-active-active.toml"),
    ),
    (
        "dual-homed-active-passive",
        include_str!("../../topologies/dual-homed-active-passive.toml"),
    ),
    (
        "dual-homed-expressroute",
        include_str!("../../topologies/dual-homed-expressroute.toml"),
    ),
    (
        "dual-homed-expressroute-no-override",
        include_str!("../../topologies/dual-homed-expressroute-no-override.toml"),
    ),
    (
        "spoke-to-spoke-udr",
        include_str!("../../topologies/spoke-to-spoke-udr.toml"),
    ),
    (
        "spoke-to-spoke-no-udr",
        include_str!("../../topologies/spoke-to-spoke-no-udr.toml"),
    ),
    (
        "ip-forwarding-off",
        include_str!("../../topologies/ip-forwarding-off.toml"),
    ),
    (
        "gateway-propagation-off",
        include_str!("../../topologies/gateway-propagation-off.toml"),
    ),
    (
        "nva-nexthop-recursion",
        include_str!("../../topologies/nva-nexthop-recursion.toml"),
    ),
    (
        "nva-nexthop-recursion-static",
        include_str!("../../topologies/nva-nexthop-recursion-static.toml"),
    ),
    (
        "dualstack-ipv6",
        include_str!("../../topologies/dualstack-ipv6.toml"),
    ),
    (
        "spec-t2a-reserved-inside",
        include_str!("../../topologies/spec-t2a-reserved-inside.toml"),
    ),
    (
        "spec-t2b-reserved-equal",
        include_str!("../../topologies/spec-t2b-reserved-equal.toml"),
    ),
    (
        "spec-t2c-reserved-contains",
        include_str!("../../topologies/spec-t2c-reserved-contains.toml"),
    ),
    (
        "spec-t3-hub-spoke-er",
        include_str!("../../topologies/spec-t3-hub-spoke-er.toml"),
    ),
    (
        "spec-t16-ip-forwarding",
        include_str!("../../topologies/spec-t16-ip-forwarding.toml"),
    ),
    (
        "branch-to-branch-nva",
        include_str!("../../topologies/branch-to-branch-nva.toml"),
    ),
    (
        "hub-rs-two-nvas",
        include_str!("../../topologies/hub-rs-two-nvas.toml"),
    ),
    ("example", include_str!("../../topologies/example.toml")),
];

/// The topology the tool uses when no file is given.
pub const DEFAULT_TOPOLOGY: &str = "hub-spoke-vng";

/// Loads a built-in topology by name.
pub fn load_builtin(name: &str) -> Option<Result<Topology, LoadError>> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, src)| load_str(&format!("topologies/{n}.toml"), src))
}

/// Loads `arg` as a path if such a file exists, else as a built-in name.
pub fn load_path_or_builtin(arg: &str) -> Result<Topology, LoadError> {
    let p = Path::new(arg);
    if p.exists() {
        return load_file(p);
    }
    if let Some(r) = load_builtin(arg) {
        return r;
    }
    let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    Err(LoadError {
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            file: arg.to_string(),
            loc: Loc { line: 0, col: 0 },
            object: String::new(),
            field: None,
            message: format!(
                "no such file, and not a built-in topology (built-ins: {})",
                names.join(", ")
            ),
        }],
    })
}
