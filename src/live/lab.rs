//! The lab: which namespaces and veth pairs a topology gets, made and
//! removed as one.
//!
//! - A VM NIC: namespace `vnp-NIC` with `eth0` holding the NIC's
//!   addresses and MAC, a default route through its subnet's gateway
//!   address (the subnet's first host, as in Azure).
//! - An NVA run by real software (`--frr`): namespace `vnp-NVA`, one
//!   `ethK` per NIC, IP forwarding on. Other NVAs are the fabric's own
//!   (their OS is modelled, as in `replay`).
//! - A site: `vnp-site-NAME` with its hosts (or its first prefix's first
//!   address); the Internet: `vnp-internet`, which answers for every
//!   address it is sent (a local route for 0.0.0.0/0).
//! - A Route Server instance: `vnp-rs-NAME-K`, where its BGP speaker runs;
//!   a VPN gateway's instance alike (`vnp-gw-NAME-K`) when an NVA run by
//!   real software peers with it.
//!
//! The fabric's ends (`pK`) live in `vnp-fabric`, with offloads off on
//! both ends, so every frame the fabric reads is a whole, checksummed frame.

use std::net::IpAddr;

use ipnet::IpNet;

use super::netns::{self, FABRIC, NetnsError};
use crate::dataplane::frame::nic_mac;
use crate::topology::{GatewayId, NicId, NvaId, RouteServerId, SiteId, Speaker, Topology};

/// What a fabric port leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortKind {
    /// A VM's NIC, or a NIC of an NVA run by real software.
    Nic(NicId),
    Site(SiteId),
    Internet,
    /// An instance (0 or 1) of an Azure BGP speaker: a Route Server, or a
    /// VPN gateway an NVA run by real software peers with.
    Speaker(Speaker, u8),
}

/// One veth pair: the fabric's end and the endpoint's.
#[derive(Clone, Debug)]
pub struct Port {
    pub kind: PortKind,
    /// The namespace of the endpoint's end.
    pub ns: String,
    /// The endpoint's interface name (`eth0`, `eth1` …).
    pub dev: String,
    /// The fabric's interface name (`pK`).
    pub fabric_dev: String,
    /// The endpoint's MAC.
    pub mac: [u8; 6],
    /// Its addresses with prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
    /// Its default gateway per family (none: the default route is on-link).
    pub gateways: Vec<IpAddr>,
}

/// A namespace of the lab and what runs there.
#[derive(Clone, Debug)]
pub struct Space {
    pub ns: String,
    /// Whose it is, in words (`nic spoke11-vm`, `nva nva1`, …).
    pub what: String,
    /// Its kernel forwards (an NVA run by real software).
    pub forwarding: bool,
    /// Answers for every address (the Internet).
    pub any_ip: bool,
    /// Routes sent on-link instead of to the local table (the Internet's
    /// way back to private and modelled public addresses).
    pub back_routes: Vec<IpNet>,
}

/// Every namespace and port of a topology's lab.
#[derive(Clone, Debug)]
pub struct Plan {
    pub spaces: Vec<Space>,
    pub ports: Vec<Port>,
}

/// The first host of a subnet prefix: Azure's gateway address (.1).
fn gateway_of(p: &IpNet) -> IpAddr {
    match p {
        IpNet::V4(n) => IpAddr::V4((u32::from(n.network()) + 1).into()),
        IpNet::V6(n) => IpAddr::V6((u128::from(n.network()) + 1).into()),
    }
}

/// A locally administered MAC for a port that is not a NIC.
fn other_mac(k: usize) -> [u8; 6] {
    let b = (k as u32).to_be_bytes();
    [0x02, 0x01, b[0], b[1], b[2], b[3]]
}

impl Plan {
    /// The lab of `t`, with the NVAs in `real` run by real software.
    pub fn new(t: &Topology, real: &[NvaId]) -> Plan {
        let mut spaces: Vec<Space> = Vec::new();
        let mut ports: Vec<Port> = Vec::new();
        let mut taken = std::collections::BTreeSet::new();
        let mut unique = |kind: char, i: usize, name: &str| {
            let mut ns = netns::name_for(kind, i, name);
            if ns == FABRIC || !taken.insert(ns.clone()) {
                ns = format!("{}{kind}{i}", netns::PREFIX);
                taken.insert(ns.clone());
            }
            ns
        };
        let space = |ns: &str, what: String| Space {
            ns: ns.to_string(),
            what,
            forwarding: false,
            any_ip: false,
            back_routes: Vec::new(),
        };
        let nic_port = |n: NicId, ns: &str, dev: String| {
            let nic = t.nic(n);
            let subnet = t.subnet(nic.subnet);
            let mut addrs = Vec::new();
            let mut gateways = Vec::new();
            for ip in &nic.ips {
                if let Some(p) = subnet.prefixes.iter().find(|p| p.contains(ip)) {
                    addrs.push((*ip, p.prefix_len()));
                    let g = gateway_of(p);
                    if !gateways.iter().any(|x: &IpAddr| x.is_ipv4() == g.is_ipv4()) {
                        gateways.push(g);
                    }
                }
            }
            Port {
                kind: PortKind::Nic(n),
                ns: ns.to_string(),
                dev,
                fabric_dev: String::new(),
                mac: nic_mac(n),
                addrs,
                gateways,
            }
        };
        let nva_nics: Vec<Option<NvaId>> = (0..t.nics.len())
            .map(|i| {
                t.nvas
                    .iter()
                    .position(|v| v.nics.contains(&NicId(i as u32)))
                    .map(|v| NvaId(v as u32))
            })
            .collect();
        for (i, nic) in t.nics.iter().enumerate() {
            if nva_nics[i].is_some() {
                continue;
            }
            let ns = unique('n', i, &nic.name);
            spaces.push(space(&ns, format!("nic {}", nic.name)));
            ports.push(nic_port(NicId(i as u32), &ns, "eth0".into()));
        }
        for &v in real {
            let nva = &t.nvas[v.idx()];
            let ns = unique('v', v.idx(), &nva.name);
            let mut s = space(&ns, format!("nva {}", nva.name));
            s.forwarding = true;
            spaces.push(s);
            for (k, &n) in nva.nics.iter().enumerate() {
                let mut p = nic_port(n, &ns, format!("eth{k}"));
                if k > 0 {
                    // One default route: through the first NIC.
                    p.gateways.clear();
                }
                ports.push(p);
            }
        }
        for (i, site) in t.sites.iter().enumerate() {
            let ns = unique('s', i, &format!("site-{}", site.name));
            spaces.push(space(&ns, format!("site {}", site.name)));
            let mut addrs: Vec<(IpAddr, u8)> = site
                .hosts
                .iter()
                .map(|h| (*h, if h.is_ipv4() { 32 } else { 128 }))
                .collect();
            if addrs.is_empty()
                && let Some(p) = site.prefixes.first()
            {
                addrs.push((gateway_of(p), if p.addr().is_ipv4() { 32 } else { 128 }));
            }
            ports.push(Port {
                kind: PortKind::Site(SiteId(i as u32)),
                ns,
                dev: "eth0".into(),
                fabric_dev: String::new(),
                mac: other_mac(ports.len()),
                addrs,
                gateways: Vec::new(),
            });
        }
        // Azure's BGP speakers: every Route Server's instances, and the
        // instances of VPN gateways that an NVA run by real software peers
        // with.
        let mut speakers: Vec<(Speaker, String, &[IpAddr], &'static str)> = t
            .route_servers
            .iter()
            .enumerate()
            .map(|(i, rs)| {
                (
                    Speaker::RouteServer(RouteServerId(i as u32)),
                    format!("rs-{}", rs.name),
                    rs.ips.as_slice(),
                    "route server",
                )
            })
            .collect();
        for (i, g) in t.gateways.iter().enumerate() {
            let id = Speaker::Gateway(GatewayId(i as u32));
            let peered = real
                .iter()
                .any(|v| t.nvas[v.idx()].bgp.iter().any(|s| s.peer == id));
            if peered {
                speakers.push((id, format!("gw-{}", g.name), g.ips.as_slice(), "gateway"));
            }
        }
        for (k0, (id, name, ips, what)) in speakers.into_iter().enumerate() {
            for (k, ip) in ips.iter().enumerate().take(2) {
                let ns = unique('r', k0 * 2 + k, &format!("{name}-{k}"));
                spaces.push(space(&ns, format!("{what} {} instance {k}", &name[3..])));
                let p = t.subnets.iter().flat_map(|s| s.prefixes.iter()).find(|p| {
                    p.contains(ip) && p.prefix_len() < if ip.is_ipv4() { 32 } else { 128 }
                });
                ports.push(Port {
                    kind: PortKind::Speaker(id, k as u8),
                    ns,
                    dev: "eth0".into(),
                    fabric_dev: String::new(),
                    mac: other_mac(ports.len()),
                    addrs: vec![(*ip, p.map_or(32, IpNet::prefix_len))],
                    gateways: p.map(gateway_of).into_iter().collect(),
                });
            }
        }
        let mut inet = space("vnp-internet", "the Internet".into());
        inet.any_ip = true;
        inet.back_routes = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
        ]
        .iter()
        .filter_map(|s| s.parse().ok())
        .chain(t.nics.iter().filter_map(|n| n.public_ip).map(IpNet::from))
        .collect();
        spaces.push(inet);
        ports.push(Port {
            kind: PortKind::Internet,
            ns: "vnp-internet".into(),
            dev: "eth0".into(),
            fabric_dev: String::new(),
            mac: other_mac(ports.len()),
            addrs: Vec::new(),
            gateways: Vec::new(),
        });
        for (k, p) in ports.iter_mut().enumerate() {
            p.fabric_dev = format!("p{k}");
        }
        Plan { spaces, ports }
    }

    /// The namespace of a NIC (a VM's, or an NVA's run by real software).
    pub fn ns_of_nic(&self, n: NicId) -> Option<&str> {
        self.ports
            .iter()
            .find(|p| p.kind == PortKind::Nic(n))
            .map(|p| p.ns.as_str())
    }
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The made lab: removed (processes killed, namespaces deleted) on drop.
pub struct Lab {
    pub plan: Plan,
    made: Vec<String>,
}

impl Lab {
    /// Makes every namespace and port of `plan` (removing leftovers of an
    /// earlier run first). On error, what was made is removed.
    pub fn make(plan: Plan) -> Result<Lab, NetnsError> {
        netns::remove_leftovers()?;
        let mut lab = Lab {
            plan,
            made: Vec::new(),
        };
        lab.build()?;
        Ok(lab)
    }

    fn add_ns(&mut self, ns: &str) -> Result<(), NetnsError> {
        netns::run("ip", &["netns", "add", ns])?;
        self.made.push(ns.to_string());
        netns::ip_in(ns, &["link", "set", "lo", "up"])
    }

    fn build(&mut self) -> Result<(), NetnsError> {
        self.add_ns(FABRIC)?;
        netns::exec_in(
            FABRIC,
            "sysctl",
            &["-qw", "net.ipv6.conf.all.disable_ipv6=1"],
        )?;
        netns::exec_in(
            FABRIC,
            "sysctl",
            &["-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        )?;
        let spaces = self.plan.spaces.clone();
        for s in &spaces {
            self.add_ns(&s.ns)?;
            let fwd = if s.forwarding { "1" } else { "0" };
            netns::exec_in(
                &s.ns,
                "sysctl",
                &["-qw", &format!("net.ipv4.ip_forward={fwd}")],
            )?;
            netns::exec_in(
                &s.ns,
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.all.forwarding={fwd}")],
            )?;
        }
        for p in &self.plan.ports.clone() {
            self.add_port(p)?;
        }
        for s in &spaces {
            if s.any_ip {
                netns::ip_in(
                    &s.ns,
                    &[
                        "route",
                        "add",
                        "local",
                        "0.0.0.0/0",
                        "dev",
                        "lo",
                        "table",
                        "local",
                    ],
                )?;
                for r in &s.back_routes {
                    let r = r.to_string();
                    netns::ip_in(
                        &s.ns,
                        &["route", "add", &r, "dev", "eth0", "table", "local"],
                    )?;
                }
            }
        }
        Ok(())
    }

    fn add_port(&mut self, p: &Port) -> Result<(), NetnsError> {
        let f = &p.fabric_dev;
        netns::ip_in(
            FABRIC,
            &[
                "link", "add", f, "type", "veth", "peer", "name", &p.dev, "netns", &p.ns,
            ],
        )?;
        let mac = mac_text(p.mac);
        netns::ip_in(&p.ns, &["link", "set", &p.dev, "address", &mac])?;
        let has_v6 = p.addrs.iter().any(|(a, _)| a.is_ipv6());
        if !has_v6 {
            netns::exec_in(
                &p.ns,
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.{}.disable_ipv6=1", p.dev)],
            )?;
        }
        for (a, len) in &p.addrs {
            let cidr = format!("{a}/{len}");
            if a.is_ipv6() {
                netns::ip_in(&p.ns, &["addr", "add", &cidr, "dev", &p.dev, "nodad"])?;
            } else {
                netns::ip_in(&p.ns, &["addr", "add", &cidr, "dev", &p.dev])?;
            }
        }
        // Whole frames with their checksums: no segmentation or checksum
        // offload on either end.
        for (ns, dev) in [(p.ns.as_str(), p.dev.as_str()), (FABRIC, f.as_str())] {
            netns::exec_in(
                ns,
                "ethtool",
                &[
                    "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                ],
            )?;
        }
        netns::ip_in(FABRIC, &["link", "set", f, "mtu", "9000", "up"])?;
        netns::ip_in(&p.ns, &["link", "set", &p.dev, "up"])?;
        for g in &p.gateways {
            let g = g.to_string();
            netns::ip_in(
                &p.ns,
                &["route", "add", "default", "via", &g, "dev", &p.dev],
            )?;
        }
        if p.gateways.is_empty() && !p.addrs.is_empty() && matches!(p.kind, PortKind::Site(_)) {
            netns::ip_in(&p.ns, &["route", "add", "default", "dev", &p.dev])?;
        }
        Ok(())
    }

    /// The namespaces made, fabric first.
    pub fn namespaces(&self) -> &[String] {
        &self.made
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            netns::remove(ns);
        }
    }
}
