//! Wrong files get an error naming the file, line, object and field; hostile
//! files never make the loader panic.

use proptest::prelude::*;
use vnetplane::topology::{self, LoadError, Severity};

const BASE: &str = include_str!("../../topologies/hub-spoke-vng.toml");

fn errors(src: &str) -> LoadError {
    match topology::load_str("bad.toml", src) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e,
    }
}

/// Asserts some error mentions every `needle` and sits on `line` of the file.
fn assert_error(src: &str, line: u32, needles: &[&str]) {
    let e = errors(src);
    let hit = e
        .errors()
        .find(|d| needles.iter().all(|n| d.to_string().contains(n)));
    match hit {
        Some(d) => {
            assert_eq!(d.loc.line, line, "wrong line for {d}");
            assert_eq!(d.file, "bad.toml");
            assert!(
                d.to_string().starts_with(&format!("bad.toml:{line}:")),
                "{d}"
            );
        }
        None => panic!("no error mentioning {needles:?}; got:\n{e}"),
    }
}

fn line_of(src: &str, needle: &str) -> u32 {
    src.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in source")) as u32
        + 1
}

/// Replaces the first occurrence and returns the new text with the 1-based
/// line where the replacement starts.
fn edit(from: &str, to: &str) -> (String, u32) {
    assert!(BASE.contains(from), "{from}");
    let line = line_of(BASE, from.lines().next().unwrap());
    (BASE.replacen(from, to, 1), line)
}

#[test]
fn syntax_and_type_errors_have_positions() {
    assert_error("[[vnet]\nname = \"x\"\n", 1, &["error"]);
    let (src, line) = edit("ips = [\"10.11.1.4\"]", "ips = \"10.11.1.4\"");
    assert_error(&src, line, &["invalid type"]);
    let (src, line) = edit(
        "allow_gateway_transit = true",
        "allow_gateway_transt = true",
    );
    assert_error(&src, line, &["unknown field `allow_gateway_transt`"]);
    let (src, line) = edit("[[gateway]]", "[[gateways]]");
    assert_error(&src, line, &["unknown field `gateways`", "expected one of"]);
}

#[test]
fn dangling_references_and_duplicates() {
    let (src, line) = edit("  gateway = \"gw-hub1\"", "  gateway = \"gw-hub9\"");
    assert_error(
        &src,
        line,
        &[
            "site onprem/connection gw-hub9",
            "`gateway`",
            "unknown gateway `gw-hub9`",
            "known: gw-hub1",
        ],
    );
    let (src, line) = edit("remote = \"spoke11\"", "remote = \"spoke99\"");
    assert_error(&src, line, &["unknown vnet `spoke99`"]);
    let (src, line) = edit("name = \"hub1-vm\"", "name = \"spoke11-vm\"");
    let _ = line;
    let second = src
        .match_indices("name = \"spoke11-vm\"")
        .nth(1)
        .map(|(i, _)| src[..i].lines().count() as u32 + 1)
        .unwrap();
    assert_error(&src, second, &["duplicate nic name `spoke11-vm`"]);
    let (src, _) = edit(
        "vnet = \"hub1\"\nkind = \"vpn\"",
        "vnet = \"hubX\"\nkind = \"vpn\"",
    );
    assert_error(
        &src,
        line_of(&src, "hubX"),
        &["gateway gw-hub1", "unknown vnet `hubX`"],
    );
}

#[test]
fn addresses_outside_subnets_and_reserved_r46() {
    for (ip, why) in [
        ("10.11.2.4", "outside subnet spoke11/vm"),
        ("10.11.1.0", "network address"),
        ("10.11.1.1", "default gateway"),
        ("10.11.1.2", "Azure DNS"),
        ("10.11.1.3", "Azure DNS"),
        ("10.11.1.255", "broadcast"),
    ] {
        let (src, _) = edit("ips = [\"10.11.1.4\"]", &format!("ips = [\"{ip}\"]"));
        let line = line_of(BASE, "ips = [\"10.11.1.4\"]"); // the offending value
        assert_error(&src, line, &["nic spoke11-vm", "`ips`", why]);
    }
    let (src, line) = edit("ips = [\"10.11.1.4\"]", "ips = [\"10.11.1.4/24\"]");
    assert_error(&src, line, &["not an IPv4 or IPv6 address", "not a prefix"]);
    let (src, line) = edit("prefix = \"10.11.1.0/24\"", "prefix = \"10.11.1.7/24\"");
    assert_error(&src, line, &["host bits set", "10.11.1.0/24"]);
    let (src, line) = edit("prefix = \"10.11.1.0/24\"", "prefix = \"10.12.1.0/24\"");
    assert_error(&src, line, &["not inside the VNet's address space"]);
    let (src, line) = edit("prefix = \"10.11.1.0/24\"", "prefix = \"10.11.1.0/30\"");
    assert_error(&src, line, &["/8 to /29"]);
    // Two NICs on one address.
    let src = BASE.replace("ips = [\"10.1.3.4\"]", "ips = [\"10.1.3.4\"]\n\n[[nic]]\nname = \"dup\"\nvnet = \"hub1\"\nsubnet = \"vm\"\nips = [\"10.1.3.4\"]");
    let line = line_of(&src, "name = \"dup\"") - 1;
    assert_error(&src, line, &["already used by nic hub1-vm"]);
}

#[test]
fn overlapping_peered_vnets() {
    let (src, _) = edit(
        "address_space = [\"10.11.0.0/16\"]",
        "address_space = [\"10.1.128.0/17\"]",
    );
    let src = src
        .replace("prefix = \"10.11.1.0/24\"", "prefix = \"10.1.129.0/24\"")
        .replace("10.11.1.4", "10.1.129.4");
    let line = line_of(&src, "remote = \"spoke11\"") - 2;
    assert_error(
        &src,
        line,
        &[
            "peered VNets cannot overlap",
            "10.1.0.0/16",
            "10.1.128.0/17",
        ],
    );
}

fn with_route_table(route: &str) -> (String, u32) {
    let src = BASE.replace(
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"",
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"\n  route_table = \"rt\"",
    ) + "\n[[route_table]]\nname = \"rt\"\n  [[route_table.route]]\n  name = \"r\"\n"
        + route;
    let line = line_of(&src, "  [[route_table.route]]");
    (src, line)
}

#[test]
fn user_next_hop_types_azure_refuses_r12() {
    let (src, line) =
        with_route_table("  prefix = \"10.20.0.0/16\"\n  next_hop_type = \"VNetPeering\"\n");
    assert_error(
        &src,
        line + 3,
        &[
            "route_table rt/route r",
            "`next_hop_type`",
            "system only",
            "R12",
        ],
    );
    let (src, line) = with_route_table(
        "  prefix = \"10.20.0.0/16\"\n  next_hop_type = \"VirtualNetworkServiceEndpoint\"\n",
    );
    assert_error(&src, line + 3, &["R12"]);
    let (src, line) = with_route_table(
        "  prefix = \"10.20.0.0/16\"\n  next_hop_type = \"Internet\"\n  next_hop_ip = \"10.1.3.4\"\n",
    );
    assert_error(
        &src,
        line + 4,
        &["only allowed with VirtualAppliance", "R12"],
    );
    let (src, line) =
        with_route_table("  prefix = \"10.20.0.0/16\"\n  next_hop_type = \"VirtualAppliance\"\n");
    assert_error(&src, line, &["needs `next_hop_ip`"]);
    let (src, line) =
        with_route_table("  prefix = \"10.20.0.0/16\"\n  next_hop_type = \"Router\"\n");
    assert_error(&src, line + 3, &["unknown next hop type `Router`"]);
    let (src, line) =
        with_route_table("  prefix = \"AzureCloud\"\n  next_hop_type = \"Internet\"\n");
    assert_error(&src, line + 2, &["service tags are not supported"]);
    // VirtualNetworkGateway next hop with an ExpressRoute gateway.
    let er = BASE.replace(
        "kind = \"vpn\"\nactive_active = true",
        "kind = \"expressroute\"",
    );
    let src = er.replace(
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"",
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"\n  route_table = \"rt\"",
    ) + "\n[[route_table]]\nname = \"rt\"\n  [[route_table.route]]\n  name = \"r\"\n  prefix = \"0.0.0.0/0\"\n  next_hop_type = \"VirtualNetworkGateway\"\n";
    assert_error(
        &src,
        line_of(&src, "  [[route_table.route]]"),
        &["route-based VPN gateway", "R12"],
    );
    // Duplicate prefix in one table.
    let (src, _) = with_route_table(
        "  prefix = \"10.20.0.0/16\"\n  next_hop_type = \"None\"\n  [[route_table.route]]\n  name = \"r2\"\n  prefix = \"10.20.0.0/16\"\n  next_hop_type = \"Internet\"\n",
    );
    assert_error(
        &src,
        line_of(&src, "name = \"r2\"") - 1,
        &["already has prefix 10.20.0.0/16"],
    );
}

#[test]
fn virtual_appliance_nobody_can_reach_r13() {
    // R51 revised: an address nobody holds is accepted (Azure shows the
    // route with next-hop type None), with a warning at its line.
    let warned = |src: &str, line: u32, needles: &[&str]| {
        let t = vnetplane::topology::load_str("t.toml", src).unwrap();
        assert!(
            t.warnings
                .iter()
                .any(|w| w.loc.line == line && needles.iter().all(|n| w.message.contains(n))),
            "{needles:?} at line {line}: {:?}",
            t.warnings
        );
        let none = super::util::rows(&t, "spoke11-vm")
            .into_iter()
            .any(|r| r.0 == "User" && r.3 == "None");
        assert!(none, "{:?}", super::util::rows(&t, "spoke11-vm"));
    };
    let (src, line) = with_route_table(
        "  prefix = \"0.0.0.0/0\"\n  next_hop_type = \"VirtualAppliance\"\n  next_hop_ip = \"10.1.9.9\"\n",
    );
    warned(&src, line, &["no NIC or load balancer", "10.1.9.9", "None"]);
    // An IP behind the gateway (on-premises) is refused.
    let (src, line) = with_route_table(
        "  prefix = \"0.0.0.0/0\"\n  next_hop_type = \"VirtualAppliance\"\n  next_hop_ip = \"192.168.1.10\"\n",
    );
    assert_error(
        &src,
        line,
        &["reachable only through vpn gateway gw-hub1", "R13"],
    );
    // A NIC in a VNet that is not peered is not reachable either: None.
    let src = BASE.to_string()
        + "\n[[vnet]]\nname = \"far\"\nregion = \"westeurope\"\naddress_space = [\"10.40.0.0/16\"]\n  [[vnet.subnet]]\n  name = \"s\"\n  prefix = \"10.40.1.0/24\"\n[[nic]]\nname = \"far-nva\"\nvnet = \"far\"\nsubnet = \"s\"\nips = [\"10.40.1.4\"]\nip_forwarding = true\n";
    let src = src.replace(
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"",
        "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"\n  route_table = \"rt\"",
    ) + "\n[[route_table]]\nname = \"rt\"\n  [[route_table.route]]\n  name = \"r\"\n  prefix = \"0.0.0.0/0\"\n  next_hop_type = \"VirtualAppliance\"\n  next_hop_ip = \"10.40.1.4\"\n";
    warned(
        &src,
        line_of(&src, "  [[route_table.route]]"),
        &["vnet spoke11 or a VNet peered with it", "None"],
    );
}

#[test]
fn gateway_transit_and_route_server_rules() {
    // R9: the hub must allow gateway transit.
    let (src, _) = edit(
        "allow_gateway_transit = true\n",
        "allow_gateway_transit = false\n",
    );
    let line = line_of(&src, "use_remote_gateways = true") - 4;
    assert_error(&src, line, &["does not allow gateway transit", "R9"]);
    // R21: a Route Server has exactly two instances, ASN 65515, in RouteServerSubnet.
    let rs = "\n[[route_server]]\nname = \"rs\"\nvnet = \"hub1\"\nips = [\"10.1.1.4\"]\n";
    let src = format!("{BASE}{rs}");
    assert_error(
        &src,
        line_of(&src, "ips = [\"10.1.1.4\"]"),
        &["exactly two instance IPs", "R21"],
    );
    let src = format!(
        "{BASE}\n[[route_server]]\nname = \"rs\"\nvnet = \"hub1\"\nips = [\"10.1.1.4\", \"10.1.1.5\"]\n"
    );
    assert_error(
        &src,
        line_of(&src, "[[route_server]]"),
        &["no subnet named RouteServerSubnet"],
    );
    // R21: reserved NVA ASN toward a Route Server.
    let src = include_str!("../../topologies/nva-default-loop.toml")
        .replace("asn = 65001", "asn = 65515");
    assert_error(
        &src,
        line_of(&src, "[[nva]]"),
        &["ASN 65515 is reserved", "R21"],
    );
    // R32: no route table on RouteServerSubnet.
    let src = include_str!("../../topologies/nva-default-loop-fixed.toml").replace(
        "  name = \"RouteServerSubnet\"\n  prefix = \"10.1.1.0/27\"",
        "  name = \"RouteServerSubnet\"\n  prefix = \"10.1.1.0/27\"\n  route_table = \"rt-nva\"",
    );
    assert_error(
        &src,
        line_of(&src, "name = \"RouteServerSubnet\"") - 1,
        &["RouteServerSubnet is not allowed", "R32"],
    );
    // A VNet using a remote gateway cannot have its own.
    let src = BASE.replace("  name = \"vm\"\n  prefix = \"10.11.1.0/24\"", "  name = \"vm\"\n  prefix = \"10.11.1.0/24\"\n  [[vnet.subnet]]\n  name = \"GatewaySubnet\"\n  prefix = \"10.11.0.0/27\"")
        + "\n[[gateway]]\nname = \"gw-spoke\"\nvnet = \"spoke11\"\nkind = \"vpn\"\nips = [\"10.11.0.4\"]\n";
    assert_error(
        &src,
        line_of(&src, "use_remote_gateways = true") - 4,
        &["has its own gateway gw-spoke", "R9"],
    );
}

#[test]
fn tunnels_and_sessions_are_checked() {
    let src = include_str!("../../topologies/multi-region-vxlan.toml");
    let bad = src.replacen("vni = 10021", "vni = 16777216", 1);
    assert_error(
        &bad,
        line_of(&bad, "vni = 16777216"),
        &["vni", "out of range"],
    );
    let bad = src.replacen("  over = \"vx-nva2\"", "  over = \"vx-nope\"", 1);
    assert_error(
        &bad,
        line_of(&bad, "vx-nope"),
        &["unknown tunnel `vx-nope`"],
    );
    let bad = src.replacen("kind = \"vxlan\"", "kind = \"gre\"", 1);
    assert_error(&bad, line_of(&bad, "kind = \"gre\""), &["GRE", "R47"]);
    let ipsec = include_str!("../../topologies/multi-region-ipsec.toml");
    let bad = ipsec.replacen("spi_out = 0x1001", "spi_out = 255", 1);
    assert_error(&bad, line_of(&bad, "spi_out = 255"), &["spi_out", "256"]);
    let bad = src.replacen("  peer = \"nva2\"", "  peer = \"nva7\"", 1);
    assert_error(&bad, line_of(&bad, "nva7"), &["unknown BGP peer `nva7`"]);
}

#[test]
fn every_error_names_file_line_and_object() {
    // All diagnostics of a file with many mistakes carry a position and object.
    let src = BASE
        .replace(
            "ips = [\"10.11.1.4\"]",
            "ips = [\"10.11.9.4\", \"nonsense\"]",
        )
        .replace("gateway = \"gw-hub1\"", "gateway = \"nope\"");
    let e = errors(&src);
    assert!(e.errors().count() >= 2, "{e}");
    for d in e.errors() {
        assert_eq!(d.severity, Severity::Error);
        assert!(d.loc.line >= 1, "{d}");
        assert!(!d.object.is_empty(), "{d}");
    }
}

#[test]
fn files_that_are_not_topologies() {
    let dir = std::env::temp_dir().join(format!("vnetplane-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("bin.toml");
    std::fs::write(&bin, b"description = \"ok\"\n\xff\xfe\x00garbage").unwrap();
    let e = topology::load_file(&bin).unwrap_err();
    assert!(
        e.to_string()
            .contains("not UTF-8 text: invalid byte at line 2, column 1"),
        "{e}"
    );
    let e = topology::load_file(&dir).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    let e = topology::load_file(&dir.join("missing.toml")).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
    // Deep nesting is refused by the parser, not by a stack overflow.
    let deep = format!("description = {}", "[".repeat(100_000));
    assert!(topology::load_str("deep.toml", &deep).is_err());
    // Absurd numbers are range errors, not wraps.
    let src = BASE.replace("asn = 65100", "asn = 99999999999999");
    assert_error(&src, line_of(&src, "99999999999999"), &["out of range"]);
    // An empty file is a valid, empty topology.
    let t = topology::load_str("empty.toml", "").unwrap();
    assert!(t.nics.is_empty());
}

fn mutate(src: &str, ops: &[(u8, usize, u8)]) -> String {
    let mut b: Vec<u8> = src.as_bytes().to_vec();
    for &(op, pos, byte) in ops {
        if b.is_empty() {
            break;
        }
        let i = pos % b.len();
        match op % 5 {
            0 => b[i] = byte,
            1 => {
                b.remove(i);
            }
            2 => b.insert(i, byte),
            3 => b.truncate(i),
            _ => {
                // Duplicate a line (repeats tables and keys).
                let start = b[..i]
                    .iter()
                    .rposition(|&c| c == b'\n')
                    .map_or(0, |p| p + 1);
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
                let line = b[start..end].to_vec();
                b.splice(end..end, line);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random edits of every shipped topology: an error or a topology, never a panic;
    /// every error has a line inside the file.
    #[test]
    fn mutated_topologies_never_panic(which in 0usize..topology::BUILTIN.len(), ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let (_, src) = topology::BUILTIN[which];
        let text = mutate(src, &ops);
        let lines = text.lines().count() as u32 + 1;
        match topology::load_str("m.toml", &text) {
            Ok(t) => {
                // Anything that loads can be computed on.
                let cp = vnetplane::control::converge(&t, &[]).unwrap();
                for i in 0..t.subnets.len() {
                    let tab = cp.subnet_table(vnetplane::topology::SubnetId(i as u32));
                    let _ = vnetplane::control::effective::lookup(&tab, "10.1.2.3".parse().unwrap());
                }
            }
            Err(e) => {
                for d in e.errors() {
                    prop_assert!(d.loc.line >= 1 && d.loc.line <= lines, "{}", d);
                }
            }
        }
    }
}

/// What Azure refuses, refused with the field located: address spaces in
/// the ranges a VNet may not use (Virtual Network FAQ: multicast,
/// broadcast, loopback, link-local, 168.63.129.16), names with characters
/// Azure's names may not hold (resource name rules for Microsoft.Network:
/// letters, digits, `_`, `.`, `-`; a letter or digit first; not `.` or `-`
/// last), ASNs Azure or IANA reserve (VPN Gateway FAQ), a tunnel to itself.
#[test]
fn what_azure_refuses_is_refused() {
    for space in [
        "224.0.0.0/4",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "0.0.0.0/0",
        "168.63.0.0/16",
    ] {
        let (src, line) = edit(
            "address_space = [\"10.11.0.0/16\"]",
            &format!("address_space = [\"10.11.0.0/16\", \"{space}\"]"),
        );
        assert_error(&src, line - 3, &["address_space", space, "Azure refuses"]);
    }
    for name in [
        "on\u{202e}prem",
        "-onprem",
        "onprem.",
        "on prem",
        "on@prem",
        "onprém",
    ] {
        let (src, line) = edit("name = \"onprem\"", &format!("name = \"{name}\""));
        assert_error(&src, line, &["name"]);
    }
    for asn in ["12076", "8075", "65517", "23456", "65535", "4294967295"] {
        let (src, line) = edit("asn = 65100", &format!("asn = {asn}"));
        assert_error(&src, line - 2, &["asn", &format!("ASN {asn} is reserved")]);
    }
    // An ASN out of range says so, and not that the ASN is missing.
    for asn in ["0", "4294967296"] {
        let (src, line) = edit("asn = 65100", &format!("asn = {asn}"));
        assert_error(&src, line, &["asn", "out of range"]);
        let e = errors(&src).to_string();
        assert!(!e.contains("needs `asn`"), "{e}");
    }
}

/// A route table past Azure's 400 routes loads with a warning on it.
#[test]
fn a_route_table_past_azures_limit_warns() {
    let mut src = String::from(BASE);
    src.push_str("\n[[route_table]]\nname = \"big\"\n");
    for i in 0..401 {
        src.push_str(&format!(
            "  [[route_table.route]]\n  name = \"r{i}\"\n  prefix = \"100.{}.{}.0/24\"\n  next_hop_type = \"None\"\n",
            i / 256,
            i % 256
        ));
    }
    let t = topology::load_str("big.toml", &src).expect("loads");
    let w = t
        .warnings
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        w.contains("route_table big") && w.contains("at most 400 routes"),
        "{w}"
    );
}

/// A tunnel whose remote end is its own address is refused.
#[test]
fn a_tunnel_to_itself_is_refused() {
    let src = include_str!("../../topologies/multi-region-vxlan.toml");
    let from = "remote = \"10.2.2.4\"";
    assert!(src.contains(from));
    let line = line_of(src, from);
    let bad = src.replacen(from, "remote = \"10.1.2.4\"", 1);
    let e = match topology::load_str("bad.toml", &bad) {
        Ok(_) => panic!("a tunnel to itself loaded"),
        Err(e) => e,
    };
    let d = e
        .errors()
        .find(|d| d.to_string().contains("its own address"))
        .unwrap_or_else(|| panic!("{e}"));
    assert!(d.loc.line <= line, "{d}");
}
