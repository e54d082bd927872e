use super::util::*;
use vnetplane::topology;

/// Scenario names of SCENARIOS.md, in order, plus the variants it names.
const SCENARIOS: &[&str] = &[
    "hub-spoke-vng",
    "nva-default-loop",
    "nva-default-loop-fixed",
    "onprem-bypasses-nva",
    "onprem-via-nva-udr",
    "onprem-overlay",
    "multi-region-loop",
    "multi-region-vxlan",
    "multi-region-ipsec",
    "multi-region-no-as-override",
    "dual-homed-active-active",
    "dual-homed-active-passive",
    "dual-homed-expressroute",
    "dual-homed-expressroute-no-override",
    "spoke-to-spoke-udr",
    "spoke-to-spoke-no-udr",
    "ip-forwarding-off",
    "gateway-propagation-off",
    "nva-nexthop-recursion",
    "nva-nexthop-recursion-static",
    "dualstack-ipv6",
];

#[test]
fn every_scenario_ships_a_file_with_a_drawing_and_loads() {
    for name in SCENARIOS {
        let path = format!("{}/topologies/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let comment_lines = src.lines().take_while(|l| l.starts_with('#')).count();
        assert!(
            comment_lines >= 6,
            "{path} should open with a comment drawing"
        );
        let t = builtin(name);
        assert!(!t.nics.is_empty(), "{name} has NICs");
        // Every NIC gets a table; the shared addressing plan holds.
        for n in &t.nics {
            assert!(!table(&t, &n.name).routes.is_empty());
        }
    }
}

#[test]
fn builtins_are_exactly_the_files_in_topologies() {
    let dir = format!("{}/topologies", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .map(|n| n.trim_end_matches(".toml").to_string())
        .collect();
    files.sort();
    let mut builtins: Vec<String> = topology::BUILTIN
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    builtins.sort();
    assert_eq!(files, builtins);
    for (name, src) in topology::BUILTIN {
        let on_disk = std::fs::read_to_string(format!("{dir}/{name}.toml")).unwrap();
        assert_eq!(&on_disk, src);
    }
}

#[test]
fn shared_addressing_plan_is_respected() {
    // SCENARIOS.md addressing plan: NIC names and addresses tools refer to.
    let plan = [
        ("hub1-vm", "10.1.3.4"),
        ("nva1", "10.1.2.4"),
        ("nva2", "10.2.2.4"),
        ("spoke11-vm", "10.11.1.4"),
        ("spoke12-vm", "10.12.1.4"),
        ("spoke21-vm", "10.21.1.4"),
    ];
    for name in SCENARIOS {
        let t = builtin(name);
        for (nic, ip) in plan {
            if let Some(id) = t.nic_by_name(nic) {
                assert!(
                    t.nic(id).ips.contains(&ip.parse().unwrap()),
                    "{name}: {nic} should have {ip}"
                );
            }
        }
        for (i, rs) in t.route_servers.iter().enumerate() {
            let expect = match rs.name.as_str() {
                "rs-hub1" => ["10.1.1.4", "10.1.1.5"],
                "rs-hub2" => ["10.2.1.4", "10.2.1.5"],
                "rs-spoke11" => ["10.11.0.4", "10.11.0.5"],
                other => panic!("{name}: unexpected route server {other} ({i})"),
            };
            let got: Vec<String> = rs.ips.iter().map(ToString::to_string).collect();
            assert_eq!(got, expect, "{name}");
        }
        for s in &t.sites {
            assert_eq!(s.name, "onprem");
            assert_eq!(s.asn, Some(65100));
        }
    }
}

#[test]
fn example_documents_every_section() {
    let src = include_str!("../../topologies/example.toml");
    for section in [
        "[options]",
        "[[vnet]]",
        "[[vnet.subnet]]",
        "[[vnet.subnet.service_endpoint]]",
        "[[nic]]",
        "[[route_table]]",
        "[[route_table.route]]",
        "[[peering]]",
        "[[gateway]]",
        "[[route_server]]",
        "[[load_balancer]]",
        "[[nva]]",
        "[[nva.route]]",
        "[[nva.tunnel]]",
        "[[nva.bgp]]",
        "[[site]]",
        "[[site.connection]]",
        "[[site.tunnel]]",
        "[[site.bgp]]",
        "[[assertion]]",
    ] {
        assert!(src.contains(section), "example.toml lacks {section}");
    }
    let t = builtin("example");
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    // R4's extra None route goes with the reserved ones where a BGP 0/0
    // is programmed (R3 revised: nva1 advertises 0/0 here), and the service
    // endpoint (R11) shows up where it should.
    assert_eq!(
        next_hop(&t, "hub1-vm", "127.0.0.1"),
        hop(
            "VirtualNetworkGateway",
            "0.0.0.0/0",
            "VirtualNetworkGateway",
            &["10.1.2.10"]
        )
    );
    assert_eq!(
        next_hop(&t, "hub1-vm", "20.38.1.1"),
        hop(
            "Default",
            "20.38.0.0/16",
            "VirtualNetworkServiceEndpoint",
            &[]
        )
    );
    assert_eq!(
        next_hop(&t, "nva1", "20.38.1.1"),
        hop("User", "0.0.0.0/0", "Internet", &[])
    );
    // The load balancer frontend is a valid VirtualAppliance next hop (R13).
    assert_eq!(
        next_hop(&t, "spoke11-vm", "8.8.8.8"),
        hop("User", "0.0.0.0/0", "VirtualAppliance", &["10.1.2.10"])
    );
}
