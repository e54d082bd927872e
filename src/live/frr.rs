//! FRR's `bgpd` in an NVA's namespace: its configuration written from the
//! topology's `[[nva.bgp]]` sessions with Route Servers and VPN gateways
//! (or taken from the
//! user's file), the daemon started alone (no zebra: `-Z`, no kernel
//! routes: `-n`) as the `frr` user, and stopped by the pid it wrote.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::netns::{self, NetnsError, RUN_DIR};
use crate::topology::{NvaId, Speaker, Topology};

/// Where Debian's FRR keeps its daemons.
pub const BGPD: &str = "/usr/lib/frr/bgpd";

/// `frr.conf` for NVA `v`: its ASN, a session with each instance of each
/// Route Server and VPN gateway it peers with (eBGP multihop: they are
/// not on the NVA's subnet), and its originated prefixes as `network`
/// statements.
pub fn config(t: &Topology, v: NvaId, log: &Path) -> String {
    let nva = &t.nvas[v.idx()];
    let asn = nva.asn.unwrap_or(65001);
    let router_id = nva
        .nics
        .first()
        .and_then(|n| t.nic(*n).ips.iter().find(|a| a.is_ipv4()))
        .map_or_else(|| "10.255.255.1".to_string(), ToString::to_string);
    let mut c = String::new();
    let _ = writeln!(c, "frr defaults traditional");
    let _ = writeln!(c, "hostname {}", nva.name);
    let _ = writeln!(c, "log file {}", log.display());
    let _ = writeln!(c, "!");
    let _ = writeln!(c, "router bgp {asn}");
    let _ = writeln!(c, " bgp router-id {router_id}");
    let _ = writeln!(c, " no bgp ebgp-requires-policy");
    let _ = writeln!(c, " no bgp network import-check");
    let mut originate: Vec<String> = Vec::new();
    for s in &nva.bgp {
        let (ips, asn) = match s.peer {
            Speaker::RouteServer(r) => (&t.route_servers[r.idx()].ips, 65515),
            Speaker::Gateway(g) => (&t.gateway(g).ips, t.gateway(g).asn),
            _ => continue,
        };
        for ip in ips {
            let _ = writeln!(c, " neighbor {ip} remote-as {asn}");
            let _ = writeln!(c, " neighbor {ip} ebgp-multihop 2");
            let _ = writeln!(c, " neighbor {ip} timers 3 9");
            let _ = writeln!(c, " neighbor {ip} timers connect 1");
            let _ = writeln!(c, " neighbor {ip} advertisement-interval 0");
        }
        originate.extend(s.originate.iter().map(ToString::to_string));
    }
    originate.sort();
    originate.dedup();
    let _ = writeln!(c, " address-family ipv4 unicast");
    for p in originate.iter().filter(|p| !p.contains(':')) {
        let _ = writeln!(c, "  network {p}");
    }
    let _ = writeln!(c, " exit-address-family");
    let _ = writeln!(c, "!");
    c
}

/// A running `bgpd`.
pub struct Bgpd {
    pub nva: String,
    pub ns: String,
    /// Its directory: configuration, pid file, log, vty socket.
    pub dir: PathBuf,
}

/// Why `bgpd` could not start.
#[derive(Debug, thiserror::Error)]
pub enum FrrError {
    #[error("FRR's bgpd is not installed ({BGPD}): install Debian's `frr` package")]
    Missing,
    #[error("the `frr` user does not exist: install Debian's `frr` package")]
    NoUser,
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("starting bgpd for {nva}: {source}")]
    Start { nva: String, source: NetnsError },
}

impl Bgpd {
    /// Starts `bgpd` for `nva` in namespace `ns` with configuration text
    /// `conf`.
    pub fn start(nva: &str, ns: &str, conf: &str) -> Result<Bgpd, FrrError> {
        if !Path::new(BGPD).exists() {
            return Err(FrrError::Missing);
        }
        let user = nix::unistd::User::from_name("frr")
            .ok()
            .flatten()
            .ok_or(FrrError::NoUser)?;
        let dir = Path::new(RUN_DIR).join(format!("frr-{ns}"));
        let file = |path: &Path, source| FrrError::File {
            path: path.display().to_string(),
            source,
        };
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| file(&dir, e))?;
        let conf_path = dir.join("frr.conf");
        std::fs::write(&conf_path, conf).map_err(|e| file(&conf_path, e))?;
        for p in [&dir, &conf_path] {
            nix::unistd::chown(p.as_path(), Some(user.uid), Some(user.gid))
                .map_err(|e| file(p, std::io::Error::from(e)))?;
        }
        let d = dir.display().to_string();
        netns::exec_in(
            ns,
            BGPD,
            &[
                "-f",
                &conf_path.display().to_string(),
                "-i",
                &format!("{d}/bgpd.pid"),
                "-Z",
                "-n",
                "--vty_socket",
                &d,
                "-d",
            ],
        )
        .map_err(|source| FrrError::Start {
            nva: nva.to_string(),
            source,
        })?;
        Ok(Bgpd {
            nva: nva.to_string(),
            ns: ns.to_string(),
            dir,
        })
    }

    /// `vtysh` arguments that reach this daemon.
    pub fn vtysh_hint(&self) -> String {
        format!("vtysh --vty_socket {}", self.dir.display())
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("bgpd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Bgpd {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            for _ in 0..50 {
                if nix::sys::signal::kill(pid, None).is_err() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The addresses of an NVA's NICs (where its sessions come from).
pub fn nva_ips(t: &Topology, v: NvaId) -> Vec<IpAddr> {
    t.nvas[v.idx()]
        .nics
        .iter()
        .flat_map(|n| t.nic(*n).ips.iter().copied())
        .collect()
}
