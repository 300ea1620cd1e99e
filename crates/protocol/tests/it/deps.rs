//! The dependency direction of docs/ARCHITECTURE.md, checked over `cargo metadata`: the normal
//! (non-dev, non-build) dependency closure of each crate must not reach what it must not.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Package name -> names of its normal dependencies, for every package in the resolve graph.
fn graph() -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut g = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let me = name_of[node["id"].as_str().unwrap()].to_string();
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| name_of[d["pkg"].as_str().unwrap()].to_string())
            .collect();
        g.insert(me, deps);
    }
    g
}

fn closure(g: &BTreeMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_string()];
    while let Some(p) = stack.pop() {
        for d in g.get(&p).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

fn assert_free_of(g: &BTreeMap<String, Vec<String>>, krate: &str, banned: &[&str]) {
    let deps = closure(g, krate);
    for b in banned {
        assert!(
            !deps.contains(*b),
            "{krate} must not depend on {b} (architecture invariant), but its dependency tree holds it"
        );
    }
}

#[test]
fn dependency_direction() {
    let g = graph();
    let workspace: Vec<&str> = g
        .keys()
        .map(String::as_str)
        .filter(|n| n.starts_with("ferrocket-"))
        .collect();
    assert!(workspace.contains(&"ferrocket-protocol"), "{workspace:?}");

    let mut protocol_banned: Vec<&str> = workspace
        .iter()
        .copied()
        .filter(|n| *n != "ferrocket-protocol")
        .collect();
    protocol_banned.extend(["sled", "openraft", "tonic", "tokio"]);
    assert_free_of(&g, "ferrocket-protocol", &protocol_banned);
    assert_free_of(
        &g,
        "ferrocket-store",
        &["tonic", "openraft", "ferrocket-replication"],
    );
    for k in ["ferrocket-namesrv", "ferrocket-client"] {
        assert_free_of(
            &g,
            k,
            &[
                "ferrocket-store",
                "ferrocket-replication",
                "sled",
                "openraft",
            ],
        );
    }
    assert_free_of(&g, "ferrocket-replication", &["ferrocket-broker"]);

    // The graph is real: the broker does reach the store, the runtime and replication.
    let broker = closure(&g, "ferrocket-broker");
    for d in ["ferrocket-store", "ferrocket-replication", "tokio", "sled"] {
        assert!(
            broker.contains(d),
            "broker's tree lacks {d}: the metadata walk is broken"
        );
    }
}
