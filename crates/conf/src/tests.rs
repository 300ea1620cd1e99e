//! Every bad-input rule, and the stock RocketMQ conf files.

use std::path::{Path, PathBuf};

use super::*;

/// Keys a broker acts on, for the "not implemented" warning (a small stand-in list).
const BROKER_IMPL: &[&str] = &[
    "brokerClusterName",
    "brokerName",
    "brokerId",
    "brokerRole",
    "flushDiskType",
    "deleteWhen",
    "fileReservedTime",
    "listenPort",
    "namesrvAddr",
    "storePathRootDir",
    "storePathCommitLog",
    "enableDLegerCommitLog",
    "dLegerGroup",
    "dLegerPeers",
    "dLegerSelfId",
    "sendMessageThreadPoolNums",
    "mappedFileSizeCommitLog",
];

/// A conf file in a directory of its own, removed when dropped (tests run in parallel).
struct ConfFile(PathBuf);

impl ConfFile {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ConfFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn write(name: &str, text: &str) -> ConfFile {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ferrocket-conf-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    ConfFile(p)
}

fn load_broker(name: &str, text: &str) -> Result<Loaded, ConfError> {
    load(
        Kind::Broker,
        Some(write(name, text).path()),
        None,
        BROKER_IMPL,
    )
}

fn err(name: &str, text: &str) -> String {
    load_broker(name, text).unwrap_err().to_string()
}

#[test]
fn unknown_key_names_file_line_and_closest_key() {
    let e = err("typo.conf", "brokerName=a\ndLegerPeer=n0-127.0.0.1:40911\n");
    assert!(
        e.ends_with("typo.conf:2: unknown key `dLegerPeer` (did you mean `dLegerPeers`?)"),
        "{e}"
    );
    let e = err("far.conf", "completelyUnrelatedThing=1\n");
    assert!(
        e.ends_with("far.conf:1: unknown key `completelyUnrelatedThing`"),
        "{e}"
    );
}

#[test]
fn known_but_unimplemented_keys_warn_once() {
    let l = load_broker("warn.conf", "brokerName=a\naclEnable=false\n").unwrap();
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(
        l.warnings[0].contains("warn.conf:2: `aclEnable`"),
        "{:?}",
        l.warnings
    );
}

#[test]
fn malformed_values_name_what_is_accepted() {
    let e = err("port.conf", "listenPort=abc\n");
    assert!(
        e.ends_with("port.conf:1: `listenPort=abc` is not valid: expected a port number 1-65535"),
        "{e}"
    );
    let e = err("num.conf", "defaultTopicQueueNums=eight\n");
    assert!(e.ends_with("expected a whole number"), "{e}");
    let e = err("port2.conf", "listenPort=70000\n");
    assert!(e.contains("expected a port number 1-65535"), "{e}");
    let e = err("role.conf", "brokerRole=MASTER\n");
    assert!(
        e.ends_with("role.conf:1: `brokerRole=MASTER` is not valid: expected one of ASYNC_MASTER, SYNC_MASTER, SLAVE"),
        "{e}"
    );
    let e = err("bool.conf", "autoCreateTopicEnable=yes\n");
    assert!(e.contains("expected true or false"), "{e}");
    // As Java reads them: any case of true and false.
    let l = load_broker(
        "bool2.conf",
        "autoCreateTopicEnable=FALSE\nslaveReadEnable=True\n",
    )
    .unwrap();
    assert_eq!(l.settings["autoCreateTopicEnable"].value, "false");
    assert_eq!(l.settings["slaveReadEnable"].value, "true");
}

#[test]
fn glued_lines_are_reported() {
    let e = err("glued.conf", "brokerName=broker-abrokerId=0\n");
    assert!(
        e.contains(
            "glued.conf:1: `brokerName=broker-abrokerId=0` looks like two lines run together"
        ),
        "{e}"
    );
    let e = err("glued2.conf", "brokerRole=ASYNC_MASTERflushDiskType\n");
    assert!(e.contains("looks like two lines run together"), "{e}");
    // A key name inside a path is fine.
    assert!(load_broker("path.conf", "storePathRootDir=/data/brokerName/store\n").is_ok());
}

#[test]
fn role_and_id_rules() {
    let e = err("slave.conf", "brokerRole=SLAVE\nbrokerId=0\n");
    assert!(
        e.contains("slave.conf:2: `brokerId` is 0, but a SLAVE needs brokerId > 0"),
        "{e}"
    );
    let l = load_broker("master.conf", "brokerRole=SYNC_MASTER\nbrokerId=3\n").unwrap();
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("masters run as brokerId 0")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn acl_asked_for_is_refused_not_ignored() {
    let e = err("acl.conf", "brokerName=b\naclEnable=true\n");
    assert!(
        e.contains("acl.conf:2: `aclEnable` is true, but Ferrocket does not implement ACL"),
        "{e}"
    );
    assert!(load_broker("open.conf", "aclEnable=false\n").is_ok());
}

#[test]
fn dledger_rules() {
    let base = "enableDLegerCommitLog=true\ndLegerGroup=g\n";
    let e = err("d1.conf", &format!("{base}dLegerSelfId=n0\n"));
    assert!(e.contains("`dLegerPeers` is not set"), "{e}");
    let e = err(
        "d2.conf",
        &format!("{base}dLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912\ndLegerSelfId=n2\n"),
    );
    assert!(
        e.contains("d2.conf:4: `dLegerSelfId` `n2` is not among the ids"),
        "{e}"
    );
    let e = err(
        "d3.conf",
        &format!("{base}dLegerPeers=n0-127.0.0.1:40911;n0-127.0.0.1:40912\ndLegerSelfId=n0\n"),
    );
    assert!(e.contains("id `n0` appears twice"), "{e}");
    let e = err(
        "d4.conf",
        &format!("{base}dLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40911\ndLegerSelfId=n0\n"),
    );
    assert!(e.contains("address `127.0.0.1:40911` appears twice"), "{e}");
    let e = err(
        "d5.conf",
        &format!("{base}dLegerPeers=n0@127.0.0.1:40911\ndLegerSelfId=n0\n"),
    );
    assert!(e.contains("is not `id-host:port`"), "{e}");
}

#[test]
fn aliases_and_provenance_and_overrides() {
    let p = write(
        "alias.conf",
        "mapedFileSizeCommitLog=1048576\nnamesrvAddr=10.0.0.1:9876\n",
    );
    let l = load(
        Kind::Broker,
        Some(p.path()),
        Some("127.0.0.1:9876"),
        BROKER_IMPL,
    )
    .unwrap();
    assert_eq!(l.settings["mappedFileSizeCommitLog"].value, "1048576");
    assert!(l.warnings.iter().any(|w| w.contains("old spelling")));
    assert_eq!(
        l.settings["namesrvAddr"].value, "127.0.0.1:9876",
        "-n wins over the file"
    );
    assert_eq!(l.settings["namesrvAddr"].origin, Origin::CommandLine);
    assert_eq!(
        l.settings["mappedFileSizeCommitLog"].origin.to_string(),
        format!("{}:1", p.path().display())
    );
    let rendered = l.render([
        ("namesrvAddr", "127.0.0.1:9876".to_string()),
        ("listenPort", "10911".to_string()),
    ]);
    assert!(
        rendered.contains("namesrvAddr=127.0.0.1:9876    # command line -n"),
        "{rendered}"
    );
    assert!(
        rendered.contains("listenPort=10911    # default"),
        "{rendered}"
    );
}

#[test]
fn namesrv_knows_its_own_keys_only() {
    let p = write("ns.conf", "listenPort=9876\nkvConfigPath=/tmp/kv.json\n");
    assert!(load(
        Kind::Namesrv,
        Some(p.path()),
        None,
        &["listenPort", "kvConfigPath"]
    )
    .is_ok());
    let p = write("ns2.conf", "brokerName=a\n");
    assert!(matches!(
        load(Kind::Namesrv, Some(p.path()), None, &[]),
        Err(ConfError::UnknownKey { .. })
    ));
}

#[test]
fn every_stock_rocketmq_conf_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/conf");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 15, "{files:?}");
    for f in files {
        let l = load(Kind::Broker, Some(&f), None, BROKER_IMPL);
        assert!(l.is_ok(), "{}: {:?}", f.display(), l.err());
    }
    // The same keys as RocketMQ ships them, spacing included.
    let stock = "brokerClusterName = DefaultCluster\nbrokerName = broker-a\nbrokerId = 0\n\
                 deleteWhen = 04\nfileReservedTime = 48\nbrokerRole = ASYNC_MASTER\nflushDiskType = ASYNC_FLUSH\n";
    assert!(load_broker("stock.conf", stock).is_ok());
}

#[test]
fn launcher_variables_are_not_conf_keys() {
    // SAFETY (test): the variable is read back by this process only; no thread of this test
    // binary reads FERROCKET_LOG_DIR concurrently.
    unsafe { std::env::set_var("FERROCKET_LOG_DIR", "/tmp/logs") };
    let p = write("env.conf", "brokerName=a\n");
    let l = load(Kind::Broker, Some(p.path()), None, BROKER_IMPL).unwrap();
    assert!(!l.settings.contains_key("LOG_DIR"));
}
