//! Generated topologies for benchmarks and scale tests: plain TOML text in the
//! same format users write, so the whole loader is exercised.

use std::fmt::Write as _;

/// A hub (VPN gateway, Route Server, NVA) with `spokes` spoke VNets using its
/// gateway, `nics_per_spoke` NICs in each spoke's one subnet, and an
/// on-premises site advertising `onprem_prefixes` /24s.
///
/// Spoke `i` is 10.(100 + i / 256).(i % 256).0/24-based: each spoke gets a /22
/// inside 100.64.0.0/10 so up to 65,536 spokes fit without overlap.
pub fn hub_spoke(spokes: usize, nics_per_spoke: usize, onprem_prefixes: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "description = \"generated hub-and-spoke: {spokes} spokes x {nics_per_spoke} NICs, {onprem_prefixes} onprem prefixes\""
    );
    s.push_str(
        r#"
[[vnet]]
name = "hub"
region = "westeurope"
address_space = ["10.0.0.0/16"]
  [[vnet.subnet]]
  name = "GatewaySubnet"
  prefix = "10.0.0.0/27"
  [[vnet.subnet]]
  name = "RouteServerSubnet"
  prefix = "10.0.1.0/27"
  [[vnet.subnet]]
  name = "nva"
  prefix = "10.0.2.0/24"

[[nic]]
name = "nva"
vnet = "hub"
subnet = "nva"
ips = ["10.0.2.4"]
ip_forwarding = true

[[gateway]]
name = "gw"
vnet = "hub"
kind = "vpn"
active_active = true
ips = ["10.0.0.4", "10.0.0.5"]

[[route_server]]
name = "rs"
vnet = "hub"
ips = ["10.0.1.4", "10.0.1.5"]

[[route_table]]
name = "rt-spokes"
  [[route_table.route]]
  name = "default-via-nva"
  prefix = "0.0.0.0/0"
  next_hop_type = "VirtualAppliance"
  next_hop_ip = "10.0.2.4"
"#,
    );
    for i in 0..spokes {
        // 100.64.0.0/10 carved into /22s.
        let base = (100u32 << 24) | (64 << 16) | ((i as u32) << 10);
        let [a, b, c, _] = base.to_be_bytes();
        let _ = write!(
            s,
            "\n[[vnet]]\nname = \"spoke{i}\"\nregion = \"westeurope\"\naddress_space = [\"{a}.{b}.{c}.0/22\"]\n  [[vnet.subnet]]\n  name = \"vm\"\n  prefix = \"{a}.{b}.{c}.0/24\"\n  route_table = \"rt-spokes\"\n"
        );
        for n in 0..nics_per_spoke.min(250) {
            let _ = write!(
                s,
                "\n[[nic]]\nname = \"spoke{i}-vm{n}\"\nvnet = \"spoke{i}\"\nsubnet = \"vm\"\nips = [\"{a}.{b}.{c}.{}\"]\n",
                n + 4
            );
        }
        let _ = write!(
            s,
            "\n[[peering]]\nvnet = \"hub\"\nremote = \"spoke{i}\"\nallow_forwarded_traffic = true\nallow_gateway_transit = true\n\n[[peering]]\nvnet = \"spoke{i}\"\nremote = \"hub\"\nallow_forwarded_traffic = true\nuse_remote_gateways = true\n"
        );
    }
    s.push_str("\n[[site]]\nname = \"onprem\"\nasn = 65100\nprefixes = [");
    for p in 0..onprem_prefixes {
        // 172.16.0.0/12 carved into /24s (4096 of them), then 192.168/16.
        let (a, b, c) = if p < 4096 {
            (172, 16 + (p / 256) as u8, (p % 256) as u8)
        } else {
            (192, 168, ((p - 4096) % 256) as u8)
        };
        if p > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "\"{a}.{b}.{c}.0/24\"");
    }
    s.push_str("]\n  [[site.connection]]\n  gateway = \"gw\"\n");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_topologies_load() {
        let src = super::hub_spoke(20, 3, 100);
        let t = crate::topology::load_str("gen.toml", &src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.vnets.len(), 21);
        assert_eq!(t.nics.len(), 61);
        assert_eq!(t.sites[0].prefixes.len(), 100);
    }
}
