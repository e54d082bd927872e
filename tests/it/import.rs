//! `import` from what Azure exports: an az CLI bundle written for a small
//! hub and spoke with a Route Server, Resource Graph rows, and REST API
//! examples; the effective routes of the imported estate are those
//! Azure's rules give (SPEC R1, R3, R6, R12).

use super::cli::run;
use super::util::*;

fn out(tag: &str) -> String {
    std::env::temp_dir()
        .join(format!(
            "vnetplane-import-{tag}-{}.toml",
            std::process::id()
        ))
        .display()
        .to_string()
}

/// The az bundle (flattened `az ... list -o json` shape): VNets with
/// inline subnets and peerings, NICs, a route table, a Route Server with
/// one BGP peer, and an NSG (not modelled: listed as skipped).
#[test]
fn an_az_cli_bundle_imports_to_a_topology_that_loads() {
    let o = out("az");
    let (code, report, err) = run(&["import", "tests/fixtures/az-hub-spoke", "-o", &o]);
    assert_eq!(code, 0, "{report}{err}");
    assert!(report.contains("skipped: tests/fixtures/az-hub-spoke/other.json: $[0]: resource type microsoft.network/networksecuritygroups"), "{report}");
    assert!(report.contains("\"AzureCloud\""), "{report}");
    assert!(
        report.contains("to complete: nva nva1: its OS routes"),
        "{report}"
    );
    let text = std::fs::read_to_string(&o).unwrap();
    // Every object carries its resource id; ARM names are kept.
    assert!(text.contains("# id: /subscriptions/sub1/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/hub1\n[[vnet]]\nname = \"hub1\""), "{text}");
    assert!(text.contains("name = \"hub1-to-spoke11\""), "{text}");
    assert!(text.contains("# STUB"), "{text}");
    let t = vnetplane::topology::load_str(&o, &text).unwrap();
    // spoke11's VM: its VNet (R1), the peering (R6), the UDR (R12), the
    // default and reserved routes (R3; no 172.16/12 row outside it).
    assert_eq!(
        rows(&t, "spoke11-vm-nic"),
        expect(&[
            ("Default", "Active", "10.11.0.0/16", "VnetLocal", &[]),
            ("Default", "Active", "10.1.0.0/16", "VNetPeering", &[]),
            ("Default", "Active", "0.0.0.0/0", "Internet", &[]),
            ("Default", "Active", "10.0.0.0/8", "None", &[]),
            ("Default", "Active", "100.64.0.0/10", "None", &[]),
            ("Default", "Active", "192.168.0.0/16", "None", &[]),
            (
                "User",
                "Active",
                "10.1.3.0/24",
                "VirtualAppliance",
                &["10.1.2.4"]
            ),
        ])
    );
    // The Route Server and its peer: two sessions (one per instance) once
    // the stub says what the NVA advertises.
    let completed =
        load(&text.replace("  originate = []   # STUB", "  originate = [\"0.0.0.0/0\"]"));
    assert!(
        vng_rows(&completed, "spoke11-vm-nic", &[]).contains(&(
            "Active".to_string(),
            "0.0.0.0/0".to_string(),
            s(&["10.1.2.4"])
        )),
        "{:?}",
        vng_rows(&completed, "spoke11-vm-nic", &[])
    );
}

/// Resource Graph rows keep REST's `properties` nesting and lower-case
/// types, wrapped in `{"count", "data": [...]}`; REST API example files
/// read too (the VNet example: 10.0.0.0/16 in westus, subnet1 10.0.1.0/24).
#[test]
fn resource_graph_rows_and_rest_examples_import() {
    let rest = include_str!("../fixtures/VirtualNetworkGet.2025-07-01.json");
    let v: serde_json::Value = serde_json::from_str(rest).unwrap();
    let mut row = v["responses"]["200"]["body"].clone();
    row["type"] = "microsoft.network/virtualnetworks".into();
    row["resourceGroup"] = "rg1".into();
    let graph =
        serde_json::json!({"count": 1, "data": [row], "skip_token": null, "total_records": 1});
    let dir = std::env::temp_dir().join(format!("vnetplane-import-graph-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("graph.json"), graph.to_string()).unwrap();
    let o = out("graph");
    let (code, report, err) = run(&["import", &dir.display().to_string(), "-o", &o]);
    assert_eq!(code, 0, "{report}{err}");
    let t = vnetplane::topology::load_str(&o, &std::fs::read_to_string(&o).unwrap()).unwrap();
    assert_eq!(t.vnets[0].name, "test-vnet");
    assert_eq!(t.vnets[0].region, "westus");
    assert_eq!(t.subnets[0].prefixes[0].to_string(), "10.0.1.0/24");
    // The example file itself (REST nesting under responses.200.body).
    let (code, report, err) = run(&[
        "import",
        "tests/fixtures/VirtualNetworkGet.2025-07-01.json",
        "-o",
        &o,
    ]);
    assert_eq!(code, 0, "{report}{err}");
}

/// Unusable exports: not JSON (exit 2 naming the file), a VNet without an
/// address space (naming the JSON path).
#[test]
fn unusable_exports_name_file_and_json_path() {
    let dir = std::env::temp_dir().join(format!("vnetplane-import-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.json"), "[{\"name\": ").unwrap();
    let (code, _, err) = run(&[
        "import",
        &dir.join("broken.json").display().to_string(),
        "-o",
        &out("bad"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("broken.json") && err.contains("not JSON"),
        "{err}"
    );
    std::fs::write(
        dir.join("vnet.json"),
        r#"[{"name": "v", "type": "Microsoft.Network/virtualNetworks", "location": "westeurope", "subnets": []}]"#,
    )
    .unwrap();
    let (code, _, err) = run(&[
        "import",
        &dir.join("vnet.json").display().to_string(),
        "-o",
        &out("bad2"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("$[0].properties.addressSpace.addressPrefixes"),
        "{err}"
    );
}

/// Every built-in topology through `export --az` and `import --with` (the
/// original file supplying what Azure does not hold: NVAs, sites,
/// assertions, options) gives the same effective routes on every NIC.
#[test]
fn every_builtin_round_trips_through_export_and_import() {
    let mut nics = 0;
    for f in topology_files() {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        let (code, json, err) = run(&["export", "--az", "-t", &f.display().to_string()]);
        assert_eq!(code, 0, "{name}: {err}");
        let az =
            std::env::temp_dir().join(format!("vnetplane-rt-{name}-{}.json", std::process::id()));
        std::fs::write(&az, &json).unwrap();
        let o = out(&format!("rt-{name}"));
        let (code, report, err) = run(&[
            "import",
            &az.display().to_string(),
            "-o",
            &o,
            "--with",
            &f.display().to_string(),
        ]);
        assert_eq!(code, 0, "{name}: {report}{err}");
        let original =
            vnetplane::topology::load_str(&name, &std::fs::read_to_string(&f).unwrap()).unwrap();
        let back =
            vnetplane::topology::load_str(&o, &std::fs::read_to_string(&o).unwrap()).unwrap();
        assert_eq!(original.nics.len(), back.nics.len(), "{name}");
        for n in &original.nics {
            assert_eq!(
                rows(&back, &n.name),
                rows(&original, &n.name),
                "{name}: nic {}",
                n.name
            );
            nics += 1;
        }
    }
    assert!(nics > 80, "{nics} NICs compared");
}

/// An ARM template as `az group export` writes it (ours, in its
/// conventions): names and ids as `[parameters(...)]`, `[concat(...)]` and
/// `[resourceId(...)]` expressions, an `_externalid` parameter, subnets,
/// peerings and routes also written as child resources. The spoke VM's
/// routes follow R3 (a user 0/0 to an appliance: the reserved routes gone,
/// the Internet default Invalid) and R10 (propagation off).
#[test]
fn arm_template_exports_are_evaluated_and_merged() {
    let o = out("arm");
    let (code, report, err) = run(&["import", "tests/fixtures/arm/template.json", "-o", &o]);
    assert_eq!(code, 0, "{report}{err}");
    let text = std::fs::read_to_string(&o).unwrap();
    assert!(!text.contains("[parameters("), "{text}");
    let t = vnetplane::topology::load_str(&o, &text).unwrap();
    // The subnet written twice (inline and as a child) is one subnet.
    assert_eq!(t.subnets.iter().filter(|s| s.name == "fw").count(), 1);
    assert_eq!(
        rows(&t, "vm-spoke-nic"),
        expect(&[
            ("Default", "Active", "10.1.0.0/16", "VnetLocal", &[]),
            ("Default", "Active", "10.0.0.0/16", "VNetPeering", &[]),
            ("Default", "Invalid", "0.0.0.0/0", "Internet", &[]),
            (
                "User",
                "Active",
                "0.0.0.0/0",
                "VirtualAppliance",
                &["10.0.1.4"]
            ),
        ])
    );
    assert!(!t.route_tables[0].propagate_gateway_routes);
    // A parameter without a value is unusable, naming the JSON path.
    let src = std::fs::read_to_string("tests/fixtures/arm/template.json").unwrap();
    let broken = src.replacen(
        "\"virtualNetworks_hub_name\": {\"defaultValue\": \"hub\", \"type\": \"String\"}",
        "\"virtualNetworks_hub_name\": {\"type\": \"String\"}",
        1,
    );
    assert_ne!(broken, src);
    let f = std::env::temp_dir().join(format!("vnetplane-arm-{}.json", std::process::id()));
    std::fs::write(&f, broken).unwrap();
    let (code, _, err) = run(&["import", &f.display().to_string(), "-o", &out("arm-bad")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("$.resources[") && err.contains("virtualNetworks_hub_name"),
        "{err}"
    );
}

/// Microsoft's REST examples that reference what they do not contain (a
/// gateway and a load balancer in VNets not given, a Virtual WAN hub): each
/// is listed as skipped with its reason and the rest still loads. The load
/// balancer example has its `sku` key twice: the last value is taken.
#[test]
fn rest_examples_referencing_missing_resources_are_listed() {
    let o = out("rest");
    let (code, report, err) = run(&[
        "import",
        "tests/fixtures/VirtualNetworkGet.2025-07-01.json",
        "tests/fixtures/VirtualNetworkGatewayGet.2025-07-01.json",
        "tests/fixtures/LoadBalancerGet.2025-07-01.json",
        "tests/fixtures/VirtualHubGet.2025-07-01.json",
        "-o",
        &o,
    ]);
    assert_eq!(code, 0, "{report}{err}");
    for what in [
        "gateway vpngw: its VNet was not imported",
        "virtualHub1 is a Virtual WAN hub",
        "load balancer lb: its subnet vnetlb/subnetlb was not imported",
    ] {
        assert!(report.contains(what), "{what}: {report}");
    }
}

/// The README's walkthrough, as it prints: import the az bundle, compare
/// with Azure's table of spoke11-vm-nic (a BGP 0/0 from nva1, and so no
/// reserved or Internet rows, R3): the stub disagrees; completed, it agrees.
#[test]
fn the_readme_import_and_compare_walkthrough_holds() {
    let o = out("walk");
    let (code, _, err) = run(&["import", "tests/fixtures/az-hub-spoke", "-o", &o]);
    assert_eq!(code, 0, "{err}");
    let (code, report, _) = run(&[
        "compare",
        "-t",
        &o,
        "--azure",
        "tests/fixtures/az-hub-spoke-azure",
    ]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("3 rows match, 1 only in Azure, 4 only in the model, 0 differ"),
        "{report}"
    );
    let readme = include_str!("../../README.md");
    assert!(readme.contains("3 rows match, 1 only in Azure, 4 only in the model, 0 differ"));
    let text = std::fs::read_to_string(&o).unwrap();
    let completed = out("walk-done");
    std::fs::write(
        &completed,
        text.replace("  originate = []   # STUB", "  originate = [\"0.0.0.0/0\"]"),
    )
    .unwrap();
    let (code, report, _) = run(&[
        "compare",
        "-t",
        &completed,
        "--azure",
        "tests/fixtures/az-hub-spoke-azure",
    ]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("the model agrees with Azure"), "{report}");
}

/// An ExpressRoute gateway (Microsoft's example: `bgpSettings: null`, so
/// no instance addresses): imported with the GatewaySubnet's .4 and .5,
/// named as assumed among the things to complete.
#[test]
fn an_expressroute_gateway_without_addresses_gets_assumed_ones() {
    let dir = std::env::temp_dir().join(format!("vnetplane-import-er-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("vnet1.json"),
        r#"[{"name": "vnet1", "type": "Microsoft.Network/virtualNetworks", "location": "centralus",
            "id": "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet1",
            "addressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
            "subnets": [{"name": "GatewaySubnet", "addressPrefix": "10.9.0.0/27",
                         "id": "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/GatewaySubnet"}]}]"#,
    )
    .unwrap();
    std::fs::copy(
        "tests/fixtures/VirtualNetworkScalableGatewayGet.2025-07-01.json",
        dir.join("ergw.json"),
    )
    .unwrap();
    let o = out("er");
    let (code, report, err) = run(&["import", &dir.display().to_string(), "-o", &o]);
    assert_eq!(code, 0, "{report}{err}");
    assert!(report.contains("gateway ergw: its instance IPs (Azure does not expose them; assumed 10.9.0.4, 10.9.0.5)"), "{report}");
    let t = vnetplane::topology::load_str(&o, &std::fs::read_to_string(&o).unwrap()).unwrap();
    assert_eq!(
        t.gateways[0].kind,
        vnetplane::topology::GatewayKind::ExpressRoute
    );
    assert_eq!(t.gateways[0].ips.len(), 2);
}

/// az bundles of two built-in scenarios (scenario 1, hub and spoke with a
/// VPN gateway; scenario 14, spoke to spoke through an NVA by UDRs),
/// imported without `--with`: nothing of theirs lies outside Azure, so
/// every NIC gets the scenario's routes; scenario 1's spoke VM as
/// SCENARIOS.md gives it (the gateway's route per instance, R8).
#[test]
fn az_bundles_of_builtin_scenarios_import_to_their_routes() {
    for name in ["hub-spoke-vng", "spoke-to-spoke-udr"] {
        let o = out(&format!("bundle-{name}"));
        let (code, report, err) = run(&[
            "import",
            &format!("tests/fixtures/az-builtin/{name}.json"),
            "-o",
            &o,
        ]);
        assert_eq!(code, 0, "{name}: {report}{err}");
        let back =
            vnetplane::topology::load_str(&o, &std::fs::read_to_string(&o).unwrap()).unwrap();
        let original = builtin(name);
        for n in &original.nics {
            assert_eq!(
                rows(&back, &n.name),
                rows(&original, &n.name),
                "{name}: nic {}",
                n.name
            );
        }
    }
    let o = out("bundle-hub-spoke-vng");
    let t = vnetplane::topology::load_str(&o, &std::fs::read_to_string(&o).unwrap()).unwrap();
    let gw = ["10.1.0.4", "10.1.0.5"];
    assert_eq!(
        rows(&t, "spoke11-vm"),
        expect(&[
            ("Default", "Active", "10.11.0.0/16", "VnetLocal", &[]),
            ("Default", "Active", "10.1.0.0/16", "VNetPeering", &[]),
            (
                "VirtualNetworkGateway",
                "Active",
                "192.168.0.0/16",
                "VirtualNetworkGateway",
                &gw
            ),
            ("Default", "Invalid", "192.168.0.0/16", "None", &[]),
            ("Default", "Active", "0.0.0.0/0", "Internet", &[]),
            ("Default", "Active", "10.0.0.0/8", "None", &[]),
            ("Default", "Active", "100.64.0.0/10", "None", &[]),
        ])
    );
}

/// Hostile templates: a resource that is not an object is an error naming
/// it; a child whose parent's `properties` is not an object is kept and
/// listed, never dropped, and nothing panics.
#[test]
fn hostile_templates_are_errors_or_listed() {
    let dir = std::env::temp_dir().join(format!("vnetplane-arm-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "parameters": {}, "resources": ["x"]}"#).unwrap();
    let (code, _, err) = run(&["import", &bad.display().to_string(), "-o", &out("hostile")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("$.resources[0]") && err.contains("JSON object"),
        "{err}"
    );
    let odd = dir.join("odd.json");
    std::fs::write(&odd, r#"{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "parameters": {}, "resources": [
        {"type": "Microsoft.Network/routeTables", "name": "rt", "properties": "not an object"},
        {"type": "Microsoft.Network/routeTables/routes", "name": "rt/r1", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet"}}]}"#).unwrap();
    let (code, report, err) = run(&["import", &odd.display().to_string(), "-o", &out("odd")]);
    assert_eq!(code, 0, "{report}{err}");
    assert!(
        report.contains("microsoft.network/routetables/routes"),
        "{report}"
    );
}
