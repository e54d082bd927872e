//! The file format as serde sees it: plain strings and numbers with their
//! spans. Nothing here is interpreted; [`super::build`] resolves names, parses
//! addresses with precise errors, and validates.

use serde::Deserialize;
use toml::Spanned;

pub(crate) type S<T> = Spanned<T>;

fn yes() -> bool {
    true
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub options: Option<S<RawOptions>>,
    #[serde(default)]
    pub vnet: Vec<S<RawVnet>>,
    #[serde(default)]
    pub nic: Vec<S<RawNic>>,
    #[serde(default)]
    pub route_table: Vec<S<RawRouteTable>>,
    #[serde(default)]
    pub peering: Vec<S<RawPeering>>,
    #[serde(default)]
    pub gateway: Vec<S<RawGateway>>,
    #[serde(default)]
    pub route_server: Vec<S<RawRouteServer>>,
    #[serde(default)]
    pub nva: Vec<S<RawNva>>,
    #[serde(default)]
    pub site: Vec<S<RawSite>>,
    #[serde(default)]
    pub load_balancer: Vec<S<RawLoadBalancer>>,
    #[serde(default)]
    pub vnet_connection: Vec<S<RawVnetConnection>>,
    #[serde(default)]
    pub assertion: Vec<S<RawAssertion>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVnetConnection {
    #[serde(default)]
    pub name: Option<S<String>>,
    pub gateway1: S<String>,
    pub gateway2: S<String>,
    #[serde(default)]
    pub bgp: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOptions {
    #[serde(default)]
    pub extra_none_prefixes: Vec<S<String>>,
    #[serde(default)]
    pub hide_reserved_none_with_gateway_routes: bool,
    #[serde(default = "yes")]
    pub udr_default_removes_172_16: bool,
    #[serde(default = "yes")]
    pub bgp_default_removes_reserved: bool,
    #[serde(default)]
    pub reserved_172_16_outside: bool,
    #[serde(default = "yes")]
    pub enforce_allow_forwarded_traffic: bool,
    #[serde(default)]
    pub route_server_max_routes_per_peer: Option<S<i64>>,
    #[serde(default)]
    pub vpn_gateway_max_prefixes: Option<S<i64>>,
    #[serde(default)]
    pub expressroute_max_prefixes: Option<S<i64>>,
    #[serde(default)]
    pub expressroute_max_vnet_prefixes: Option<S<i64>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVnet {
    pub name: S<String>,
    pub region: S<String>,
    pub address_space: Vec<S<String>>,
    #[serde(default)]
    pub subnet: Vec<S<RawSubnet>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubnet {
    pub name: S<String>,
    #[serde(default)]
    pub prefix: Option<S<String>>,
    #[serde(default)]
    pub prefixes: Vec<S<String>>,
    #[serde(default)]
    pub route_table: Option<S<String>>,
    #[serde(default)]
    pub service_endpoint: Vec<S<RawServiceEndpoint>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServiceEndpoint {
    pub service: S<String>,
    pub prefixes: Vec<S<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNic {
    pub name: S<String>,
    #[serde(default)]
    pub vm: Option<S<String>>,
    pub vnet: S<String>,
    pub subnet: S<String>,
    pub ips: Vec<S<String>>,
    #[serde(default)]
    pub ip_forwarding: bool,
    #[serde(default)]
    pub public_ip: Option<S<String>>,
    #[serde(default)]
    pub power: Option<S<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteTable {
    pub name: S<String>,
    #[serde(default)]
    pub propagate_gateway_routes: Option<S<bool>>,
    /// ARM's spelling, the inverse of `propagate_gateway_routes`.
    #[serde(default)]
    pub disable_bgp_route_propagation: Option<S<bool>>,
    #[serde(default)]
    pub route: Vec<S<RawRoute>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub name: S<String>,
    pub prefix: S<String>,
    pub next_hop_type: S<String>,
    #[serde(default)]
    pub next_hop_ip: Option<S<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeering {
    #[serde(default)]
    pub name: Option<S<String>>,
    pub vnet: S<String>,
    pub remote: S<String>,
    #[serde(default = "yes")]
    pub allow_virtual_network_access: bool,
    #[serde(default)]
    pub allow_forwarded_traffic: bool,
    #[serde(default)]
    pub allow_gateway_transit: bool,
    #[serde(default)]
    pub use_remote_gateways: bool,
    /// Subnet peering: the subnets of `vnet` that are peered.
    #[serde(default)]
    pub local_subnets: Option<Vec<S<String>>>,
    /// Subnet peering: the subnets of `remote` that are peered.
    #[serde(default)]
    pub remote_subnets: Option<Vec<S<String>>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    pub name: S<String>,
    pub vnet: S<String>,
    pub kind: S<String>,
    #[serde(default)]
    pub vpn_type: Option<S<String>>,
    #[serde(default)]
    pub active_active: bool,
    #[serde(default)]
    pub ips: Vec<S<String>>,
    #[serde(default)]
    pub public_ip: Option<S<String>>,
    #[serde(default)]
    pub asn: Option<S<i64>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteServer {
    pub name: S<String>,
    pub vnet: S<String>,
    pub ips: S<Vec<S<String>>>,
    #[serde(default)]
    pub asn: Option<S<i64>>,
    #[serde(default)]
    pub branch_to_branch: bool,
    #[serde(default)]
    pub routing_preference: Option<S<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOsRoute {
    pub prefix: S<String>,
    #[serde(default)]
    pub via: Option<S<String>>,
    #[serde(default)]
    pub tunnel: Option<S<String>>,
    #[serde(default)]
    pub nic: Option<S<String>>,
    #[serde(default)]
    pub blackhole: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBgpSession {
    pub peer: S<String>,
    #[serde(default)]
    pub peer_ips: Vec<S<String>>,
    #[serde(default)]
    pub over: Option<S<String>>,
    #[serde(default)]
    pub as_override: bool,
    #[serde(default)]
    pub prepend: Option<S<i64>>,
    #[serde(default)]
    pub originate: Vec<S<String>>,
    #[serde(default)]
    pub redistribute_static: bool,
    #[serde(default)]
    pub source: Option<S<String>>,
    #[serde(default)]
    pub next_hop: Option<S<String>>,
    #[serde(default)]
    pub import_allow: Vec<S<String>>,
    #[serde(default)]
    pub import_deny: Vec<S<String>>,
    #[serde(default)]
    pub export_allow: Vec<S<String>>,
    #[serde(default)]
    pub export_deny: Vec<S<String>>,
    #[serde(default)]
    pub no_advertise: bool,
    #[serde(default)]
    pub policy: Vec<S<RawExportRule>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExportRule {
    #[serde(default)]
    pub prefixes: Vec<S<String>>,
    #[serde(default)]
    pub or_longer: bool,
    #[serde(default)]
    pub deny: bool,
    #[serde(default)]
    pub prepend: Option<S<i64>>,
    #[serde(default)]
    pub remove_private_as: bool,
    #[serde(default)]
    pub delete_as: Vec<S<i64>>,
    #[serde(default)]
    pub replace_as: Vec<S<i64>>,
    #[serde(default)]
    pub communities: Vec<S<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTunnel {
    pub name: S<String>,
    pub kind: S<String>,
    pub local: S<String>,
    pub remote: S<String>,
    #[serde(default)]
    pub vni: Option<S<i64>>,
    #[serde(default)]
    pub port: Option<S<i64>>,
    #[serde(default)]
    pub spi_out: Option<S<i64>>,
    #[serde(default)]
    pub spi_in: Option<S<i64>>,
    #[serde(default)]
    pub encap: Option<S<String>>,
    #[serde(default)]
    pub mtu: Option<S<i64>>,
    #[serde(default)]
    pub fragment: Option<S<bool>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNva {
    pub name: S<String>,
    pub nics: Vec<S<String>>,
    #[serde(default)]
    pub asn: Option<S<i64>>,
    #[serde(default)]
    pub loopbacks: Vec<S<String>>,
    /// Prefixes originated on every session.
    #[serde(default)]
    pub originate: Vec<S<String>>,
    #[serde(default)]
    pub route: Vec<S<RawOsRoute>>,
    #[serde(default)]
    pub bgp: Vec<S<RawBgpSession>>,
    #[serde(default)]
    pub tunnel: Vec<S<RawTunnel>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnection {
    pub gateway: S<String>,
    #[serde(default)]
    pub bgp: bool,
    #[serde(default)]
    pub advertise: Option<Vec<S<String>>>,
    #[serde(default)]
    pub weight: Option<S<i64>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSite {
    pub name: S<String>,
    #[serde(default)]
    pub asn: Option<S<i64>>,
    pub prefixes: Vec<S<String>>,
    #[serde(default)]
    pub cpe: Option<S<String>>,
    #[serde(default)]
    pub hosts: Vec<S<String>>,
    #[serde(default)]
    pub connection: Vec<S<RawConnection>>,
    #[serde(default)]
    pub route: Vec<S<RawOsRoute>>,
    #[serde(default)]
    pub bgp: Vec<S<RawBgpSession>>,
    #[serde(default)]
    pub tunnel: Vec<S<RawTunnel>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoadBalancer {
    pub name: S<String>,
    pub vnet: S<String>,
    pub subnet: S<String>,
    pub frontend_ip: S<String>,
    #[serde(default)]
    pub backends: Vec<S<String>>,
    #[serde(default)]
    pub rule: Vec<S<RawLbRule>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLbRule {
    /// true: HA ports (protocol All, port 0).
    #[serde(default)]
    pub ha_ports: bool,
    #[serde(default)]
    pub protocol: Option<S<String>>,
    #[serde(default)]
    pub port: Option<S<i64>>,
    #[serde(default)]
    pub floating_ip: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAssertion {
    pub name: S<String>,
    pub from: S<String>,
    pub to: S<String>,
    #[serde(default)]
    pub expect: Option<S<String>>,
    #[serde(default)]
    pub via: Option<S<OneOrMany>>,
    #[serde(default)]
    pub not_via: Option<S<OneOrMany>>,
    #[serde(default)]
    pub protocol: Option<S<String>>,
    #[serde(default)]
    pub ports: Option<S<Ports>>,
    #[serde(default)]
    pub symmetric: Option<bool>,
}

/// A name or a list of names.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn names(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A port (`443`) or a range (`"1024-65535"`, `"443"`).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(crate) enum Ports {
    One(i64),
    Text(String),
}
