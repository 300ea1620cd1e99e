//! Every stock conf file in deploy/conf starts a broker (ports and store overridden through
//! `FERROCKET_<key>` environment variables), and `-p` / `--check` / bad values behave.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferrocket_testkit::{bin_path, wait_for_port, ProcessGuard, TempDir};

use crate::util::broker_port;

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
        eprintln!("deploy/conf has no broker conf files yet; nothing to check");
    }
    for f in files {
        let dir = TempDir::new("stock");
        let port = broker_port();
        let mut g = ProcessGuard::spawn(
            "mqbroker",
            Command::new(bin_path("mqbroker"))
                .arg("-c")
                .arg(&f)
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
            f.display()
        );
    }
}

#[test]
fn print_check_and_bad_values() {
    let dir = TempDir::new("cli");
    let conf = dir.path().join("b.conf");
    std::fs::write(&conf, "brokerName = x\nlistenPort = 12345\n").unwrap();
    let out = Command::new(bin_path("mqbroker"))
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("listenPort=12345"));
    let out = Command::new(bin_path("mqbroker"))
        .arg("-c")
        .arg(&conf)
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&conf, "flushDiskType = SOMETIMES\n").unwrap();
    let out = Command::new(bin_path("mqbroker"))
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("flushDiskType"));
}
