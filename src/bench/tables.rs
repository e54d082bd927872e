//! Route tables for benchmarks and tests: the real global BGP table
//! (`benches/data/bgpas.lpm.xz`), a synthetic table with the same prefix-length
//! histogram but random placement, and an Azure-like ~1k-route NIC table.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub use crate::rng::Rng;

/// Where the real table lives in the repository.
pub fn default_bgp_table() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/data/bgpas.lpm.xz")
}

/// A table: IPv4 and IPv6 prefixes with a `u32` next hop each.
#[derive(Clone, Debug, Default)]
pub struct RouteList {
    pub v4: Vec<(Ipv4Net, u32)>,
    pub v6: Vec<(Ipv6Net, u32)>,
}

/// Reads `prefix value` lines (the `bgpas.lpm` format), plain or xz-compressed.
/// Errors name the file and line.
pub fn read_lpm_file(path: &Path) -> Result<RouteList, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "xz") {
        Box::new(xz2::read::XzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut out = RouteList::default();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut w = line.split_whitespace();
        let (Some(p), Some(v)) = (w.next(), w.next()) else {
            return Err(format!(
                "{}:{}: expected `prefix value`, got {line:?}",
                path.display(),
                i + 1
            ));
        };
        let value: u32 = v
            .parse()
            .map_err(|_| format!("{}:{}: {v:?} is not a number", path.display(), i + 1))?;
        match p.parse::<IpNet>() {
            Ok(IpNet::V4(n)) => out.v4.push((n.trunc(), value)),
            Ok(IpNet::V6(n)) => out.v6.push((n.trunc(), value)),
            Err(_) => {
                return Err(format!(
                    "{}:{}: {p:?} is not a prefix",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    Ok(out)
}

/// The same prefix-length histogram (and next hops) as `v4`, placed at random.
pub fn synthetic_v4(v4: &[(Ipv4Net, u32)], seed: u64) -> Vec<(Ipv4Net, u32)> {
    let mut rng = Rng(seed);
    v4.iter()
        .map(|(n, v)| {
            let len = n.prefix_len();
            let net = Ipv4Net::new(Ipv4Addr::from(rng.next_u32()), len)
                .expect("len from a valid prefix")
                .trunc();
            (net, *v)
        })
        .collect()
}

/// Destinations inside the table's prefixes (a random address in a random prefix).
pub fn in_table_v4(v4: &[(Ipv4Net, u32)], n: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let (p, _) = v4[(rng.next_u64() % v4.len().max(1) as u64) as usize];
            let host = if p.prefix_len() == 32 {
                0
            } else {
                rng.next_u32() >> p.prefix_len()
            };
            u32::from(p.network()) | host
        })
        .collect()
}

pub fn in_table_v6(v6: &[(Ipv6Net, u32)], n: usize, seed: u64) -> Vec<u128> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let (p, _) = v6[(rng.next_u64() % v6.len().max(1) as u64) as usize];
            let r = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
            let host = if p.prefix_len() == 128 {
                0
            } else {
                r >> p.prefix_len()
            };
            u128::from(p.network()) | host
        })
        .collect()
}

pub fn random_v4(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng(seed);
    (0..n).map(|_| rng.next_u32()).collect()
}

/// Random IPv6 destinations inside 2000::/3 (where the real table lives).
pub fn random_v6(n: usize, seed: u64) -> Vec<u128> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let r = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
            (r >> 3) | (1u128 << 125)
        })
        .collect()
}

/// An Azure-like NIC table of about 1,000 routes: the NVA NIC of a generated
/// hub with 200 peered spokes and 800 on-premises /24s through a VPN gateway,
/// as the control plane computes it. Next hops are the interned actions.
pub fn azure_1k() -> Vec<(Ipv4Net, u32)> {
    use crate::control;
    use crate::topology::{generate, load_str};
    let t = load_str("azure-1k.toml", &generate::hub_spoke(200, 1, 800))
        .expect("generated topology loads");
    let cp = control::converge(&t, &[]).expect("no events");
    let nic = t.nic_by_name("nva").expect("generated hub has an nva NIC");
    let routes = crate::fib::nic_routes(&cp.nic_table(nic));
    let mut actions: Vec<crate::fib::NicAction> = Vec::new();
    routes
        .into_iter()
        .filter_map(|(p, a)| {
            let i = actions.iter().position(|x| *x == a).unwrap_or_else(|| {
                actions.push(a.clone());
                actions.len() - 1
            });
            match p {
                IpNet::V4(n) => Some((n, i as u32 + 1)),
                IpNet::V6(_) => None,
            }
        })
        .collect()
}
