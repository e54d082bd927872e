//! `import`: a topology file from Azure's exports (az CLI JSON, Resource
//! Graph results); prints what it skipped and the stubs to complete.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};

use super::OutputFailed;
use vnetplane::io::azure::read_json;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// `az ... -o json` outputs or Resource Graph results: files, or
    /// folders of `.json` files.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// The topology file to write.
    #[arg(short, long)]
    pub out: PathBuf,
    /// A topology file to take what Azure does not hold from: its NVAs,
    /// sites, assertions, options and description (instead of stubs).
    #[arg(long)]
    pub with: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub topology: super::args::TopologyArg,
    /// The az CLI shape (`az ... -o json`), one list of resources.
    #[arg(long, required = true)]
    pub az: bool,
}

/// `export --az`: the topology's Azure resources as az prints them.
pub fn export(a: ExportArgs) -> Result<String> {
    let t = super::args::load(&a.topology.topology)?;
    debug_assert!(a.az);
    Ok(serde_json::to_string_pretty(&vnetplane::import::export_az(&t))? + "\n")
}

pub fn run(a: ImportArgs) -> Result<String> {
    let mut docs = Vec::new();
    for p in &a.inputs {
        let files: Vec<PathBuf> = if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| anyhow!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            v.sort();
            v
        } else {
            vec![p.clone()]
        };
        for f in files {
            let name = f.display().to_string();
            if a.out == f {
                bail!("{name}: the output would overwrite an input");
            }
            docs.push((name.clone(), read_json(&name)?));
        }
    }
    let with = match &a.with {
        None => None,
        Some(p) => {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| anyhow!("{name}: {e}"))?;
            // The file must be a usable topology, then its tables are taken.
            vnetplane::topology::load_str(&name, &text)?;
            Some(
                text.parse::<toml::Table>()
                    .map_err(|e| anyhow!("{name}: {e}"))?,
            )
        }
    };
    let imported = vnetplane::import::import(&docs, with.as_ref())?;
    let out_name = a.out.display().to_string();
    std::fs::write(&a.out, &imported.toml).map_err(|e| OutputFailed(anyhow!("{out_name}: {e}")))?;
    let mut report = String::new();
    let _ = writeln!(report, "wrote {out_name}");
    for (file, path, ty) in &imported.skipped {
        let _ = writeln!(
            report,
            "skipped: {file}: {path}: resource type {ty} is not modelled"
        );
    }
    for w in &imported.warnings {
        let _ = writeln!(report, "warning: {w}");
    }
    for s in &imported.stubs {
        let _ = writeln!(report, "to complete: {s}");
    }
    // The file must load as it is written.
    vnetplane::topology::load_str(&out_name, &imported.toml)?;
    let _ = writeln!(report, "{out_name} loads: `vnetplane check -t {out_name}`");
    Ok(report)
}
