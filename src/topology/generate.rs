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

[[nva]]
name = "nva"
nics = ["nva"]
  [[nva.route]]
  prefix = "0.0.0.0/0"
  via = "10.0.2.1"

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

/// The BGP scale case of the control-plane issue: one hub Route Server with
/// `nvas` NVA peers each originating `routes_per_nva` distinct /24s, and
/// `spokes` spoke VNets peered with the hub that use its Route Server.
pub fn route_server_scale(nvas: usize, routes_per_nva: usize, spokes: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "description = \"generated: Route Server with {nvas} NVA peers x {routes_per_nva} routes, {spokes} spokes\""
    );
    s.push_str(
        r#"
[[vnet]]
name = "hub"
region = "westeurope"
address_space = ["10.0.0.0/16"]
  [[vnet.subnet]]
  name = "RouteServerSubnet"
  prefix = "10.0.1.0/27"
  [[vnet.subnet]]
  name = "nva"
  prefix = "10.0.2.0/24"

[[route_server]]
name = "rs"
vnet = "hub"
ips = ["10.0.1.4", "10.0.1.5"]
"#,
    );
    for k in 0..nvas.min(250) {
        let _ = write!(
            s,
            "\n[[nic]]\nname = \"nva{k}\"\nvnet = \"hub\"\nsubnet = \"nva\"\nips = [\"10.0.2.{}\"]\nip_forwarding = true\n\n[[nva]]\nname = \"nva{k}\"\nnics = [\"nva{k}\"]\nasn = {}\n  [[nva.route]]\n  prefix = \"10.0.1.0/27\"\n  via = \"10.0.2.1\"\n  [[nva.bgp]]\n  peer = \"rs\"\n  originate = [",
            k + 4,
            65001 + k
        );
        for j in 0..routes_per_nva.min(65536) {
            if j > 0 {
                s.push_str(", ");
            }
            // 30.0.0.0/8 onward, a distinct /24 per (NVA, route).
            let n = (k * routes_per_nva + j) as u32;
            let _ = write!(
                s,
                "\"{}.{}.{}.0/24\"",
                30 + (n >> 16),
                (n >> 8) & 0xff,
                n & 0xff
            );
        }
        s.push_str("]\n");
    }
    for i in 0..spokes {
        let base = (100u32 << 24) | (64 << 16) | ((i as u32) << 10);
        let [a, b, c, _] = base.to_be_bytes();
        let _ = write!(
            s,
            "\n[[vnet]]\nname = \"spoke{i}\"\nregion = \"westeurope\"\naddress_space = [\"{a}.{b}.{c}.0/22\"]\n  [[vnet.subnet]]\n  name = \"vm\"\n  prefix = \"{a}.{b}.{c}.0/24\"\n\n[[nic]]\nname = \"spoke{i}-vm\"\nvnet = \"spoke{i}\"\nsubnet = \"vm\"\nips = [\"{a}.{b}.{c}.4\"]\n\n[[peering]]\nvnet = \"hub\"\nremote = \"spoke{i}\"\nallow_gateway_transit = true\n\n[[peering]]\nvnet = \"spoke{i}\"\nremote = \"hub\"\nuse_remote_gateways = true\n"
        );
    }
    s
}

#[cfg(test)]
mod scale_tests {
    #[test]
    fn route_server_scale_loads_and_converges() {
        let src = super::route_server_scale(8, 1000, 500);
        let t = crate::topology::load_str("scale.toml", &src).unwrap_or_else(|e| panic!("{e}"));
        let cp = crate::control::converge(&t, &[]).unwrap();
        assert!(cp.bgp.converged);
        // Every NVA route is programmed (under the 1,000-per-peer limit) into a spoke NIC.
        let nic = t.nic_by_name("spoke499-vm").unwrap();
        let table = cp.nic_table(nic);
        let bgp = table
            .routes
            .iter()
            .filter(|r| r.source == crate::control::effective::Source::VirtualNetworkGateway)
            .count();
        assert_eq!(bgp, 8000);
        assert!(cp.warnings.is_empty(), "{:?}", cp.warnings);
    }
}
