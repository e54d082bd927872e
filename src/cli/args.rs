//! Arguments several commands share, and the lookups they lead to.

use std::net::IpAddr;

use anyhow::{Context, Result, anyhow, bail};

use vnetplane::control::events::Event;
use vnetplane::control::{self, ControlPlane};
use vnetplane::dataplane::Start;
use vnetplane::topology::{self, SiteId, SubnetId, Topology};

/// `--topology`: a TOML file or the name of a built-in topology.
#[derive(clap::Args, Debug)]
pub struct TopologyArg {
    /// Topology file or built-in name (see `vnetplane topologies`).
    #[arg(long, short)]
    pub topology: String,
}

/// `--event`: control-plane events applied before the command looks.
#[derive(clap::Args, Debug)]
pub struct EventArgs {
    /// Apply a control-plane event first (repeatable): speaker-down NAME,
    /// speaker-up NAME, session-down A B, session-up A B, tunnel-down OWNER
    /// TUNNEL, tunnel-up OWNER TUNNEL, advertise SPEAKER PREFIX, withdraw
    /// SPEAKER PREFIX, udr-add TABLE ROUTE PREFIX TYPE [IP], udr-remove
    /// TABLE ROUTE, vm-start VM, vm-stop VM, vm-deallocate VM, probe-down LB
    /// NIC, probe-up LB NIC.
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
}

/// `--nic NAME` or `--subnet VNET/SUBNET`: whose effective routes.
#[derive(clap::Args, Debug)]
pub struct TableArgs {
    /// The NIC's name.
    #[arg(long, required_unless_present = "subnet", conflicts_with = "subnet")]
    pub nic: Option<String>,
    /// A subnet as VNET/SUBNET instead of a NIC (e.g. hub1/GatewaySubnet).
    #[arg(long)]
    pub subnet: Option<String>,
}

/// A text file read whole, refused past `limit` bytes (however large the
/// file says it is: `/dev/zero` says 0) and when not UTF-8.
pub fn read_bounded(path: &str, limit: u64) -> Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| path.to_string())?;
    let mut bytes = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| path.to_string())?;
    if bytes.len() as u64 > limit {
        bail!("{path}: larger than {limit} bytes, the most read");
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{path}: not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

pub fn load(arg: &str) -> Result<Topology> {
    Ok(topology::load_path_or_builtin(arg)?)
}

pub fn parse_events(events: &[String]) -> Result<Vec<Event>> {
    Ok(events
        .iter()
        .map(|e| Event::parse(e))
        .collect::<Result<_, _>>()?)
}

/// The topology converged after `events`.
pub fn control_plane(t: &Topology, events: &[String]) -> Result<ControlPlane> {
    Ok(control::converge(t, &parse_events(events)?)?)
}

/// An IP address given as `--NAME VALUE`.
pub fn ip(flag: &str, value: &str) -> Result<IpAddr> {
    value
        .trim()
        .parse()
        .with_context(|| format!("--{flag} {value:?} is not an IP address"))
}

/// The subnet whose table `--nic` or `--subnet` names.
pub fn pick_subnet(t: &Topology, a: &TableArgs) -> Result<SubnetId> {
    if let Some(n) = &a.nic {
        let id = t.nic_by_name(n).ok_or_else(|| {
            let names: Vec<&str> = t.nics.iter().map(|n| n.name.as_str()).collect();
            anyhow!(
                "{}: no NIC named `{n}` (NICs: {})",
                t.file,
                names.join(", ")
            )
        })?;
        return Ok(t.nic(id).subnet);
    }
    let path = a
        .subnet
        .as_deref()
        .ok_or_else(|| anyhow!("give --nic NAME or --subnet VNET/SUBNET"))?;
    t.subnet_by_path(path).ok_or_else(|| {
        let names: Vec<String> = (0..t.subnets.len())
            .map(|i| t.subnet_path(SubnetId(i as u32)))
            .collect();
        anyhow!(
            "{}: no subnet `{path}` (subnets: {})",
            t.file,
            names.join(", ")
        )
    })
}

/// A NIC or a site by name, as the start of traffic; `nva:NAME` is an
/// NVA's own operating system (`nic:` and `site:` choose where names
/// are shared).
pub fn start(t: &Topology, name: &str) -> Result<Start> {
    if let Some(n) = name.strip_prefix("nva:") {
        return match t.nvas.iter().position(|x| x.name == n) {
            Some(i) => Ok(Start::Nva(vnetplane::topology::NvaId(i as u32))),
            None => bail!(
                "{}: no NVA named `{n}` (NVAs: {})",
                t.file,
                t.nvas
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    if let Some(n) = name.strip_prefix("nic:") {
        return t
            .nic_by_name(n)
            .map(Start::Nic)
            .ok_or_else(|| anyhow!("{}: no NIC named `{n}`", t.file));
    }
    if let Some(n) = name.strip_prefix("site:") {
        return t
            .sites
            .iter()
            .position(|s| s.name == n)
            .map(|i| Start::Site(SiteId(i as u32)))
            .ok_or_else(|| anyhow!("{}: no site named `{n}`", t.file));
    }
    match (
        t.nic_by_name(name),
        t.sites.iter().position(|s| s.name == name),
    ) {
        (Some(n), _) => Ok(Start::Nic(n)),
        (None, Some(si)) => Ok(Start::Site(SiteId(si as u32))),
        (None, None) => {
            let mut names: Vec<&str> = t.nics.iter().map(|n| n.name.as_str()).collect();
            names.extend(t.sites.iter().map(|s| s.name.as_str()));
            bail!(
                "{}: no NIC or site named `{name}` (known: {})",
                t.file,
                names.join(", ")
            )
        }
    }
}
