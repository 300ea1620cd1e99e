//! Every stock conf file in deploy/conf starts a broker (ports and store overridden through
//! `FERROCKET_<key>` environment variables), and `-p` / `--check` / bad values behave.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ferrocket_testkit::{bin_path, wait_for_port, ProcessGuard, TempDir};

use crate::util::broker_port;

/// `mqbroker -c CONF FLAGS...`, run to its end.
fn mqbroker_conf(conf: &Path, flags: &[&str]) -> Output {
    Command::new(bin_path("mqbroker"))
        .arg("-c")
        .arg(conf)
        .args(flags)
        .output()
        .unwrap()
}

/// `mqbroker --check-layout DIR`, run to its end.
fn check_layout(dir: &Path) -> Output {
    Command::new(bin_path("mqbroker"))
        .arg("--check-layout")
        .arg(dir)
        .output()
        .unwrap()
}

fn stock_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/conf");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("broker") && (n.ends_with(".conf") || n.ends_with(".properties"))
            }) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_stock_conf_starts() {
    let files = stock_files();
    if files.is_empty() {
        eprintln!("deploy/conf has no broker conf files yet; the inline copies below still run");
    }
    for f in files {
        start_and_stop(&f);
    }
}

/// The key/value content of RocketMQ's stock broker conf files (same in 4.9.8 and 5.3.3), so the
/// check runs even before deploy/conf is populated.
const STOCK: &[&str] = &[
    "brokerClusterName = DefaultCluster\nbrokerName = broker-a\nbrokerId = 0\ndeleteWhen = 04\nfileReservedTime = 48\nbrokerRole = ASYNC_MASTER\nflushDiskType = ASYNC_FLUSH\n",
    "brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId=1\ndeleteWhen=04\nfileReservedTime=48\nbrokerRole=SLAVE\nflushDiskType=ASYNC_FLUSH\n",
    "brokerClusterName=DefaultCluster\nbrokerName=broker-b\nbrokerId=0\ndeleteWhen=04\nfileReservedTime=48\nbrokerRole=SYNC_MASTER\nflushDiskType=ASYNC_FLUSH\n",
    "brokerClusterName = RaftCluster\nbrokerName=RaftNode00\nlistenPort=30911\nnamesrvAddr=127.0.0.1:9876\nstorePathRootDir=/tmp/rmqstore/node00\nstorePathCommitLog=/tmp/rmqstore/node00/commitlog\nenableDLegerCommitLog=true\ndLegerGroup=RaftNode00\ndLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913\n## must be unique\ndLegerSelfId=n0\nsendMessageThreadPoolNums=16\n",
];

#[test]
fn stock_conf_contents_start() {
    let dir = TempDir::new("stock-inline");
    for (i, text) in STOCK.iter().enumerate() {
        let f = dir.path().join(format!("broker-{i}.properties"));
        std::fs::write(&f, text).unwrap();
        start_and_stop(&f);
    }
}

fn start_and_stop(conf: &Path) {
    let dir = TempDir::new("stock");
    let port = broker_port();
    let mut cmd = Command::new(bin_path("mqbroker"));
    // The DLedger files name fixed Raft ports (40911-40913), inside the range the kernel hands
    // out as ephemeral ports to other tests' sockets: give their peers free ports instead.
    let text = std::fs::read_to_string(conf).unwrap();
    if text.replace(' ', "").contains("enableDLegerCommitLog=true") {
        let peers: Vec<String> = (0..3)
            .map(|i| format!("n{i}-127.0.0.1:{}", ferrocket_testkit::free_port()))
            .collect();
        cmd.env("FERROCKET_dLegerPeers", peers.join(";"));
    }
    let mut g = ProcessGuard::spawn(
        "mqbroker",
        cmd.arg("-c")
            .arg(conf)
            .env("FERROCKET_listenPort", port.to_string())
            .env("FERROCKET_brokerIP1", "127.0.0.1")
            .env("FERROCKET_storePathRootDir", dir.path().join("store"))
            .env(
                "FERROCKET_storePathCommitLog",
                dir.path().join("store/commitlog"),
            )
            .env("FERROCKET_mappedFileSizeCommitLog", "16777216")
            .env("FERROCKET_namesrvAddr", "")
            .env("RUST_LOG", "warn"),
    );
    wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(30));
    g.signal(libc::SIGTERM);
    assert_eq!(
        g.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        conf.display()
    );
}

#[test]
fn print_check_and_bad_values() {
    let dir = TempDir::new("cli");
    let conf = dir.path().join("b.conf");
    std::fs::write(&conf, "brokerName = x\nlistenPort = 12345\n").unwrap();
    let out = mqbroker_conf(&conf, &["-p"]);
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("listenPort=12345"), "{printed}");
    assert!(printed.contains("flushDiskType=ASYNC_FLUSH"), "{printed}");
    let out = mqbroker_conf(&conf, &["--check"]);
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&conf, "flushDiskType = SOMETIMES\n").unwrap();
    let out = mqbroker_conf(&conf, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("flushDiskType"));
}

#[test]
fn retention_keys_are_read_not_ignored() {
    let dir = TempDir::new("ratios");
    let conf = dir.path().join("b.conf");
    std::fs::write(
        &conf,
        "diskMaxUsedSpaceRatio=99\ndiskSpaceCleanForciblyRatio=92\ndiskSpaceWarningLevelRatio=96\n\
         cleanResourceInterval=5000\ndeleteFileBatchMax=3\n",
    )
    .unwrap();
    let out = mqbroker_conf(&conf, &["-p"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    let warned = String::from_utf8_lossy(&out.stderr);
    // RocketMQ holds diskMaxUsedSpaceRatio to 10..=95.
    assert!(printed.contains("diskMaxUsedSpaceRatio=95"), "{printed}");
    assert!(
        printed.contains("diskSpaceCleanForciblyRatio=92"),
        "{printed}"
    );
    assert!(
        printed.contains("diskSpaceWarningLevelRatio=96"),
        "{printed}"
    );
    assert!(printed.contains("cleanResourceInterval=5000"), "{printed}");
    assert!(printed.contains("deleteFileBatchMax=3"), "{printed}");
    assert!(!warned.contains("ignored"), "{warned}");
}

#[test]
fn keys_the_broker_reads_are_not_called_unimplemented() {
    // Read by the parser but not printed by -p: these were warned about as "ignored".
    let dir = TempDir::new("readkeys");
    let conf = dir.path().join("b.conf");
    std::fs::write(
        &conf,
        "inSyncReplicas=2\ntotalReplicas=2\nflushIntervalConsumeQueue=2000\nmaxHashSlotNum=1000\n\
         cleanFileForciblyEnable=false\nslaveTimeout=5000\n",
    )
    .unwrap();
    let out = mqbroker_conf(&conf, &["--check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(!warned.contains("not implement"), "{warned}");
    // A key Ferrocket does not act on is still reported.
    std::fs::write(&conf, "highSpeedMode=true\n").unwrap();
    let out = mqbroker_conf(&conf, &["--check"]);
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(
        warned.contains("`highSpeedMode` is a RocketMQ key Ferrocket does not implement yet"),
        "{warned}"
    );
}

#[test]
fn check_layout_accepts_stock_layouts_and_names_mistakes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/conf");
    for layout in ["2m-noslave", "2m-2s-async", "2m-2s-sync", "dledger"] {
        let out = check_layout(&root.join(layout));
        assert_eq!(out.status.code(), Some(0), "{layout}: {out:?}");
    }
    // Two masters of one name on one host, sharing a port.
    let dir = TempDir::new("layout");
    let conf = "brokerClusterName=C\nbrokerName=a\nbrokerIP1=127.0.0.41\nbrokerRole=ASYNC_MASTER\n";
    std::fs::write(dir.path().join("a.properties"), conf).unwrap();
    std::fs::write(dir.path().join("b.properties"), conf).unwrap();
    let out = check_layout(dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("b.properties: `listenPort` uses port 10911 on 127.0.0.41"),
        "{err}"
    );
    assert!(
        err.contains("b.properties: `brokerId` 0 of brokerName `a` is also taken by"),
        "{err}"
    );
}

#[test]
fn unknown_keys_and_bad_values_stop_startup_with_file_and_line() {
    let dir = TempDir::new("badconf");
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "brokerName=a\ndLegerPeer=n0-127.0.0.1:1\n").unwrap();
    let out = mqbroker_conf(&conf, &["--check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2: unknown key `dLegerPeer` (did you mean `dLegerPeers`?)",
            conf.display()
        )),
        "{err}"
    );
    std::fs::write(&conf, "brokerRole=MASTER\n").unwrap();
    let out = mqbroker_conf(&conf, &["--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("expected one of ASYNC_MASTER, SYNC_MASTER, SLAVE"));
}

/// A conf that turns on ACL (not implemented) stops startup instead of running a broker open to
/// every client; `--check` says so with file, line and key.
#[test]
fn acl_enabled_fails_closed() {
    let dir = TempDir::new("aclconf");
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "brokerName=a\naclEnable=true\n").unwrap();
    for flags in [&["--check"][..], &[][..]] {
        let out = mqbroker_conf(&conf, flags);
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "{}:2: `aclEnable` is true, but Ferrocket does not implement ACL yet",
                conf.display()
            )),
            "{err}"
        );
    }
}

/// Booleans in any case, as Java's `Boolean.parseBoolean` reads them: a conf with `TRUE`
/// starts and takes effect.
#[test]
fn booleans_in_upper_case_are_read_as_java_reads_them() {
    let dir = TempDir::new("boolconf");
    let conf = dir.path().join("broker.conf");
    std::fs::write(
        &conf,
        "brokerName=a\nautoCreateTopicEnable=FALSE\nslaveReadEnable=True\n",
    )
    .unwrap();
    let out = mqbroker_conf(&conf, &["-p"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    for line in ["autoCreateTopicEnable=false", "slaveReadEnable=true"] {
        assert!(
            printed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(line)),
            "{line} not in:\n{printed}"
        );
    }
}
