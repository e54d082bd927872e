//! `compare` against Azure's own output: the REST API examples of a NIC's
//! effective routes and of a Route Server peering's learned and advertised
//! routes, with topologies built from what those examples contain.

use super::cli::run;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A folder of Azure files under a fresh temporary name: (name, contents).
fn folder(tag: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vnetplane-compare-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// The REST example of a NIC's effective routes (a VNet of 172.20.2.0/24,
/// SPEC T2(a)) agrees with the model row for row; a changed row is
/// reported as differing and the exit status is 1.
#[test]
fn nic_effective_routes_agree_with_the_rest_example() {
    let example = std::fs::read_to_string(fixture(
        "NetworkInterfaceEffectiveRouteTableList.2023-09-01.json",
    ))
    .unwrap();
    let dir = folder("nic", &[("nic1.json", &example)]);
    let dir_s = dir.display().to_string();
    let (code, out, err) = run(&[
        "compare",
        "-t",
        "spec-t2a-reserved-inside",
        "--azure",
        &dir_s,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("nic nic1")
            && out.contains("6 rows match, 0 only in Azure, 0 only in the model, 0 differ"),
        "{out}"
    );
    // Azure says 10/8 is Invalid, and has a route the model lacks.
    let v: serde_json::Value = serde_json::from_str(&example).unwrap();
    let mut body = v["responses"]["200"]["body"].clone();
    body["value"][2]["state"] = "Invalid".into();
    body["value"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "source": "User", "state": "Active", "addressPrefix": ["0.0.0.0/0"],
            "nextHopType": "VirtualAppliance", "nextHopIpAddress": ["172.20.2.4"]
        }));
    let dir = folder(
        "nic-differ",
        &[("nic1.effective-routes.json", &body.to_string())],
    );
    let dir_s = dir.display().to_string();
    let (code, out, _) = run(&[
        "compare",
        "-t",
        "spec-t2a-reserved-inside",
        "--azure",
        &dir_s,
        "--explain",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("5 rows match, 1 only in Azure, 0 only in the model, 1 differ"),
        "{out}"
    );
    assert!(out.contains("differ (Default 10.0.0.0/8)"), "{out}");
    assert!(
        out.contains("Azure: Invalid None") && out.contains("model: Active None"),
        "{out}"
    );
    assert!(out.contains("VirtualAppliance"), "{out}");
    // JSON names the same rows.
    let (_, json, _) = run(&[
        "compare",
        "-t",
        "spec-t2a-reserved-inside",
        "--azure",
        &dir_s,
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["nics"][0]["differ"][0]["azure"]["state"], "Invalid");
    assert_eq!(
        j["nics"][0]["onlyAzure"][0]["nextHopType"],
        "VirtualAppliance"
    );
}

/// Unusable input is exit 2 with the file and JSON path: a NIC the
/// topology does not have, a row without `nextHopType`, a bad prefix.
#[test]
fn unusable_azure_files_name_file_and_json_path() {
    // One file in a folder of its own: exit 2, and what stderr says.
    let unusable = |tag: &str, name: &str, text: &str| -> String {
        let dir = folder(tag, &[(name, text)]);
        let (code, _, err) = run(&[
            "compare",
            "-t",
            "spec-t2a-reserved-inside",
            "--azure",
            &dir.display().to_string(),
        ]);
        assert_eq!(code, 2, "{tag}: {err}");
        err
    };
    let err = unusable("bad-nic", "nope.json", "{\"value\": []}");
    assert!(err.contains("no NIC named `nope`"), "{err}");
    let err = unusable(
        "bad-row",
        "nic1.json",
        "{\"value\": [{\"source\": \"Default\", \"state\": \"Active\", \"addressPrefix\": [\"10.0.0.0/8\"]}]}",
    );
    assert!(err.contains("$.value[0].nextHopType"), "{err}");
    let err = unusable(
        "bad-prefix",
        "nic1.json",
        "{\"value\": [{\"source\": \"Default\", \"state\": \"Active\", \"addressPrefix\": [\"10.0.0.0/33\"], \"nextHopType\": \"None\"}]}",
    );
    assert!(
        err.contains("$.value[0].addressPrefix[0]") && err.contains("10.0.0.0/33"),
        "{err}"
    );
    let err = unusable("not-json", "nic1.json", "{\"value\": [");
    assert!(
        err.contains("nic1.json") && err.contains("not JSON"),
        "{err}"
    );
}

/// The estate behind the Route Server peering examples: Route Server
/// instances 10.85.3.4/.5 in a hub of 10.85.0.0/16, peer1 an NVA at
/// 10.85.4.4 (AS 65002) passing on 10.101.0.0/16 from AS 65001, and
/// spokes 10.45.0.0/16 and 10.100.0.0/16 using the hub's Route Server.
const PEERING_ESTATE: &str = r#"
[[vnet]]
name = "hub"
region = "westeurope"
address_space = ["10.85.0.0/16"]
  [[vnet.subnet]]
  name = "RouteServerSubnet"
  prefix = "10.85.3.0/27"
  [[vnet.subnet]]
  name = "nva"
  prefix = "10.85.4.0/24"
[[vnet]]
name = "spoke45"
region = "westeurope"
address_space = ["10.45.0.0/16"]
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.45.1.0/24"
[[vnet]]
name = "spoke100"
region = "westeurope"
address_space = ["10.100.0.0/16"]
  [[vnet.subnet]]
  name = "vm"
  prefix = "10.100.1.0/24"
[[peering]]
vnet = "hub"
remote = "spoke45"
allow_gateway_transit = true
[[peering]]
vnet = "spoke45"
remote = "hub"
use_remote_gateways = true
[[peering]]
vnet = "hub"
remote = "spoke100"
allow_gateway_transit = true
[[peering]]
vnet = "spoke100"
remote = "hub"
use_remote_gateways = true
[[nic]]
name = "peer1"
vnet = "hub"
subnet = "nva"
ips = ["10.85.4.4"]
ip_forwarding = true
[[nic]]
name = "upstream"
vnet = "hub"
subnet = "nva"
ips = ["10.85.4.5"]
ip_forwarding = true
[[route_server]]
name = "virtualRouter1"
vnet = "hub"
ips = ["10.85.3.4", "10.85.3.5"]
[[nva]]
name = "peer1"
nics = ["peer1"]
asn = 65002
  [[nva.bgp]]
  peer = "virtualRouter1"
  [[nva.bgp]]
  peer = "upstream"
[[nva]]
name = "upstream"
nics = ["upstream"]
asn = 65001
  [[nva.bgp]]
  peer = "peer1"
  originate = ["10.101.0.0/16"]
"#;

/// `list-learned-routes` (REST example): 10.101.0.0/16 via 10.85.4.4, AS
/// path 65002-65001, on both instances: the model agrees.
/// `list-advertised-routes`: the three VNet ranges with AS path 65515; the
/// example gives next hop 10.85.3.4 on both instances, where the model
/// (each instance its own next hop, as published NVA tables show) gives
/// 10.85.3.5 on IN_1: compare reports exactly that.
#[test]
fn route_server_peering_routes_compare_per_instance() {
    let topo = std::env::temp_dir().join(format!(
        "vnetplane-compare-estate-{}.toml",
        std::process::id()
    ));
    std::fs::write(&topo, PEERING_ESTATE).unwrap();
    let topo = topo.display().to_string();
    let learned =
        std::fs::read_to_string(fixture("VirtualRouterPeerListLearnedRoute.2023-09-01.json"))
            .unwrap();
    let dir = folder(
        "learned",
        &[("virtualRouter1.peer1.learned.json", &learned)],
    );
    let (code, out, err) = run(&[
        "compare",
        "-t",
        &topo,
        "--azure",
        &dir.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("RouteServiceRole_IN_0: 1 match, 0 only in Azure, 0 only in the model"),
        "{out}"
    );
    assert!(
        out.contains("RouteServiceRole_IN_1: 1 match, 0 only in Azure, 0 only in the model"),
        "{out}"
    );
    let advertised = std::fs::read_to_string(fixture(
        "VirtualRouterPeerListAdvertisedRoute.2023-09-01.json",
    ))
    .unwrap();
    let dir = folder(
        "advertised",
        &[("virtualRouter1.peer1.advertised.json", &advertised)],
    );
    let (code, out, _) = run(&[
        "compare",
        "-t",
        &topo,
        "--azure",
        &dir.display().to_string(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("RouteServiceRole_IN_0: 3 match, 0 only in Azure, 0 only in the model"),
        "{out}"
    );
    assert!(
        out.contains("RouteServiceRole_IN_1: 0 match, 3 only in Azure, 3 only in the model"),
        "{out}"
    );
    assert!(
        out.contains("only in the model: 10.85.0.0/16 via 10.85.3.5 AS path 65515"),
        "{out}"
    );
    // A file that names no known peer is unusable.
    let dir = folder(
        "bad-peer",
        &[("virtualRouter1.nobody.learned.json", &learned)],
    );
    let (code, _, err) = run(&[
        "compare",
        "-t",
        &topo,
        "--azure",
        &dir.display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no nva named `nobody`"), "{err}");
}

/// `bgp --json --azure` prints each peering in the API's shape (per
/// RouteServiceRole_IN_k, hyphen-joined AS paths): what it prints reads
/// back through `compare` as agreeing, learned and advertised.
#[test]
fn bgp_json_azure_is_the_route_server_api_shape() {
    let (code, out, err) = run(&["bgp", "-t", "hub-rs-two-nvas", "--json", "--azure"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let peerings = v.as_array().unwrap();
    assert_eq!(peerings.len(), 2, "{out}");
    let p = &peerings[0];
    assert_eq!(
        (p["routeServer"].as_str(), p["peer"].as_str()),
        (Some("rs-hub1"), Some("nva1"))
    );
    let learned = &p["learnedRoutes"]["RouteServiceRole_IN_1"];
    let default = learned
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["network"] == "0.0.0.0/0")
        .expect("nva1's 0/0");
    assert_eq!(default["asPath"], "65001");
    assert_eq!(default["nextHop"], "10.1.2.4");
    assert_eq!(default["localAddress"], "10.1.1.5");
    let files: Vec<(String, String)> = peerings
        .iter()
        .flat_map(|p| {
            let base = format!(
                "{}.{}",
                p["routeServer"].as_str().unwrap(),
                p["peer"].as_str().unwrap()
            );
            [
                (
                    format!("{base}.learned.json"),
                    p["learnedRoutes"].to_string(),
                ),
                (
                    format!("{base}.advertised.json"),
                    p["advertisedRoutes"].to_string(),
                ),
            ]
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dir = folder("roundtrip", &refs);
    let (code, out, err) = run(&[
        "compare",
        "-t",
        "hub-rs-two-nvas",
        "--azure",
        &dir.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.matches(" 0 only in Azure, 0 only in the model").count(),
        8,
        "{out}"
    );
}
