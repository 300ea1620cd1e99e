//! The layout rules against the stock layouts and one mistake of each class.

use std::path::{Path, PathBuf};

use super::*;

fn parse(text: &str) -> Vec<(String, String, usize)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|(i, l)| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string(), i + 1))
        })
        .collect()
}

fn file(name: &str, text: &str) -> ConfFile {
    ConfFile {
        path: PathBuf::from(name),
        entries: parse(text),
    }
}

fn run(files: &[ConfFile]) -> Vec<String> {
    check(files, |_| Ok(()))
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn stock(layout: &str) -> Vec<ConfFile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/conf")
        .join(layout);
    read_dir(&dir, parse).expect("stock layout")
}

#[test]
fn stock_layouts_pass() {
    for layout in ["2m-noslave", "2m-2s-async", "2m-2s-sync", "dledger"] {
        let files = stock(layout);
        assert!(files.len() >= 3, "{layout}: {files:?}");
        assert_eq!(run(&files), Vec::<String>::new(), "{layout}");
    }
}

#[test]
fn same_port_or_store_on_one_host() {
    let a = "brokerClusterName=C\nbrokerName=a\nbrokerIP1=10.0.0.1\nlistenPort=10911\n\
             storePathRootDir=/data/a\n";
    let b = "brokerClusterName=C\nbrokerName=b\nbrokerIP1=10.0.0.1\nlistenPort=10912\n\
             storePathRootDir=/data/a\n";
    let out = run(&[file("a.properties", a), file("b.properties", b)]);
    assert!(
        out.iter().any(|m| m
            .starts_with("b.properties:4: `listenPort` uses port 10912 on 10.0.0.1")
            && m.contains("`haListenPort` of a.properties")),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|m| m.starts_with("b.properties:5: `storePathRootDir` is /data/a on 10.0.0.1")),
        "{out:?}"
    );
    // The same files on two hosts are fine.
    let b2 = b.replace("10.0.0.1", "10.0.0.2");
    assert_eq!(
        run(&[file("a.properties", a), file("b.properties", &b2)]),
        Vec::<String>::new()
    );
}

#[test]
fn one_cluster_name() {
    let out = run(&[
        file("a.properties", "brokerClusterName=C1\nbrokerName=a\n"),
        file("b.properties", "brokerName=b\nbrokerClusterName=C2\n"),
    ]);
    assert_eq!(
        out,
        vec!["b.properties:2: `brokerClusterName` is `C2` but a.properties says `C1`: a layout is one cluster"]
    );
}

#[test]
fn slaves_need_their_master_and_ids_are_unique() {
    let slave = "brokerName=a\nbrokerId=1\nbrokerRole=SLAVE\n";
    let out = run(&[file("a-s.properties", slave)]);
    assert_eq!(
        out,
        vec!["a-s.properties:1: `brokerName` `a` has a slave but no master (brokerId 0) in this layout"]
    );
    let out = run(&[
        file("a.properties", "brokerName=a\nbrokerRole=SYNC_MASTER\n"),
        file("a-s.properties", slave),
        file("a-s2.properties", slave),
    ]);
    assert_eq!(
        out,
        vec!["a-s2.properties:2: `brokerId` 1 of brokerName `a` is also taken by a-s.properties"]
    );
}

#[test]
fn dledger_peers_agree_and_ids_are_their_own() {
    let node = |id: &str, peers: &str| {
        format!(
            "brokerName=R\nenableDLegerCommitLog=true\ndLegerGroup=R\ndLegerPeers={peers}\n\
             dLegerSelfId={id}\nlistenPort=30911\n"
        )
    };
    let peers = "n0-10.0.0.1:40911;n1-10.0.0.2:40911;n2-10.0.0.3:40911";
    let other = "n0-10.0.0.1:40911;n1-10.0.0.9:40911;n2-10.0.0.3:40911";
    let ok = [
        file("n0.conf", &node("n0", peers)),
        file("n1.conf", &node("n1", peers)),
        file("n2.conf", &node("n2", peers)),
    ];
    assert_eq!(run(&ok), Vec::<String>::new());

    let out = run(&[
        file("n0.conf", &node("n0", peers)),
        file("n1.conf", &node("n1", other)),
        file("n2.conf", &node("n0", peers)),
    ]);
    assert!(
        out.iter()
            .any(|m| m.starts_with("n1.conf:4: `dLegerPeers` is `")
                && m.contains(&format!("but n0.conf of group `R` has `{peers}`"))),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|m| m
                == "n2.conf:5: `dLegerSelfId` `n0` is also the self id of n0.conf in group `R`"),
        "{out:?}"
    );

    let missing = run(&[file("n3.conf", &node("n3", peers))]);
    assert_eq!(
        missing,
        vec![format!(
            "n3.conf:5: `dLegerSelfId` `n3` is not among dLegerPeers `{peers}`"
        )]
    );
    let wrong_host = format!("{}brokerIP1=10.0.0.7\n", node("n0", peers));
    let out = run(&[file("n0.conf", &wrong_host)]);
    assert_eq!(
        out,
        vec!["n0.conf:7: `brokerIP1` is 10.0.0.7 but this node's dLegerPeers entry `n0` is on 10.0.0.1"]
    );
}

#[test]
fn a_file_that_does_not_load_is_named() {
    let files = [file("bad.properties", "listenPort=abc\n")];
    let out = check(&files, |_| Err("listenPort=abc is not a port".into()));
    assert_eq!(
        out[0].to_string(),
        "bad.properties: `*` does not load: listenPort=abc is not a port"
    );
}
