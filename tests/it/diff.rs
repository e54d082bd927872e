//! `diff OLD NEW`: effective routes, verdicts, paths and intents that
//! change, expected from SPEC's rules for the two versions; exit status
//! from `--fail-on`.

use vnetplane::control::events::Event;
use vnetplane::verify::diff::{Version, diff};

use super::cli::run;
use super::util::builtin;

/// Removing the spokes' UDR 10/8 → nva1 (scenario 14 and its variant):
/// the User route disappears and the default 10/8 None route it had
/// invalidated becomes Active (R4: a user route replaces the system route
/// of the same prefix); spoke-to-spoke traffic goes from delivered through
/// nva1 to dropped at the sender (peering is not transitive, R45).
#[test]
fn removing_a_udr_changes_routes_and_verdicts() {
    let (old, new) = (
        builtin("spoke-to-spoke-udr"),
        builtin("spoke-to-spoke-no-udr"),
    );
    let d = diff(
        Version {
            topology: &old,
            events: &[],
        },
        Version {
            topology: &new,
            events: &[],
        },
    )
    .unwrap();
    for subnet in ["spoke11/vm", "spoke12/vm"] {
        let here: Vec<_> = d.routes.iter().filter(|r| r.subnet == subnet).collect();
        assert!(
            here.iter().any(|r| r.change == "removed"
                && r.prefix == "10.0.0.0/8"
                && r.source == "User"
                && r.old.as_ref().unwrap().next_hop_type == "VirtualAppliance"),
            "{here:?}"
        );
        assert!(
            here.iter().any(|r| r.change == "changed"
                && r.prefix == "10.0.0.0/8"
                && r.source == "Default"
                && r.old.as_ref().unwrap().state == "Invalid"
                && r.new.as_ref().unwrap().state == "Active"),
            "{here:?}"
        );
    }
    // The hub's own tables do not change.
    assert!(
        d.routes.iter().all(|r| r.subnet.starts_with("spoke")),
        "{:?}",
        d.routes
    );
    let f = d
        .flows
        .iter()
        .find(|f| f.from == "nic spoke11-vm" && f.dst == "10.12.1.4")
        .expect("spoke11 → spoke12 changes");
    assert_eq!(f.change, "verdict");
    assert_eq!(f.old.len(), 1);
    assert!(
        f.old[0].verdict.starts_with("delivered at nic spoke12-vm"),
        "{:?}",
        f.old
    );
    assert!(f.old[0].path.iter().any(|n| n == "nva nva1"), "{:?}", f.old);
    assert!(
        f.new[0].verdict.starts_with("dropped at nic spoke11-vm"),
        "{:?}",
        f.new
    );
    // The hub VM's traffic to the spokes is untouched (direct peerings).
    assert!(
        !d.flows
            .iter()
            .any(|f| f.from == "nic hub1-vm" && f.dst == "10.12.1.4")
    );
}

/// One file and an event: nva1's BGP session lost, the Route Server stops
/// programming its next hop (R23), ECMP rows keep nva2 alone, and the
/// flows that hashed to nva1 change path, not verdict.
#[test]
fn an_event_is_a_new_version() {
    let t = builtin("hub-rs-two-nvas");
    let events = [Event::parse("session-down nva1 rs-hub1").unwrap()];
    let d = diff(
        Version {
            topology: &t,
            events: &[],
        },
        Version {
            topology: &t,
            events: &events,
        },
    )
    .unwrap();
    let r = d
        .routes
        .iter()
        .find(|r| r.subnet == "spoke11/vm" && r.prefix == "10.0.0.0/8")
        .unwrap_or_else(|| panic!("{:?}", d.routes));
    assert_eq!(r.change, "changed");
    assert_eq!(
        r.old.as_ref().unwrap().next_hop_ips,
        ["10.1.2.4", "10.1.2.5"]
    );
    assert_eq!(r.new.as_ref().unwrap().next_hop_ips, ["10.1.2.5"]);
    let f = d
        .flows
        .iter()
        .find(|f| f.from == "nic spoke11-vm" && f.dst == "10.12.1.4")
        .expect("spoke11 → spoke12 loses a branch");
    assert_eq!(f.change, "path");
    assert_eq!(f.old.len(), 2);
    assert_eq!(f.new.len(), 1);
    assert!(f.new[0].path.iter().any(|n| n == "nva nva2"));
    // Nothing is reported that did not change.
    let same = diff(
        Version {
            topology: &t,
            events: &[],
        },
        Version {
            topology: &t,
            events: &[],
        },
    )
    .unwrap();
    assert!(same.routes.is_empty() && same.flows.is_empty() && same.intents.is_empty());
}

/// Exit status: 0 unless what `--fail-on` names changed (1); 2 for input
/// that cannot be used. JUnit: one failing case for the changed kind.
#[test]
fn diff_exit_status_and_reports() {
    let (old, new) = ("spoke-to-spoke-udr", "spoke-to-spoke-no-udr");
    let (code, out, err) = run(&["diff", old, new, "--fail-on", "none"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("spoke11/vm") && out.contains("- 10.0.0.0/8 User"),
        "{out}"
    );
    let (code, _, err) = run(&["diff", old, new, "--fail-on", "verdict"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("verdict"), "{err}");
    let (code, _, _) = run(&["diff", old, old, "--fail-on", "verdict,path,routes,intents"]);
    assert_eq!(code, 0);
    let junit = std::env::temp_dir().join(format!("vnetplane-diff-{}.xml", std::process::id()));
    let (code, _, _) = run(&[
        "diff",
        old,
        new,
        "--fail-on",
        "routes",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let x = std::fs::read_to_string(&junit).unwrap();
    let _ = std::fs::remove_file(&junit);
    assert!(x.contains("failures=\"1\""), "{x}");
    assert!(
        x.contains("name=\"effective routes unchanged\">\n      <failure"),
        "{x}"
    );
    let (code, out, _) = run(&["diff", old, new, "--json", "--fail-on", "none"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["flows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["change"] == "verdict")
    );
    // An intent that held and fails now is a failure by default.
    let dir = std::env::temp_dir().join(format!("vnetplane-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = "\n[[assertion]]\nname = \"s2s\"\nfrom = \"spoke11\"\nto = \"spoke12\"\n";
    for (n, src) in [("old", old), ("new", new)] {
        let text = std::fs::read_to_string(format!("topologies/{src}.toml")).unwrap();
        std::fs::write(dir.join(format!("{n}.toml")), text + a).unwrap();
    }
    let (o, n) = (dir.join("old.toml"), dir.join("new.toml"));
    let (code, out, _) = run(&["diff", o.to_str().unwrap(), n.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("assertion s2s") && out.contains("holds ⇒ fails"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Unusable input.
    assert_eq!(run(&["diff", "/nonexistent.toml", new]).0, 2);
    assert_eq!(run(&["diff", old, "--event", "speaker-down nosuch"]).0, 2);
    assert_eq!(run(&["diff", old, new, "--fail-on", "colour"]).0, 2);
}
