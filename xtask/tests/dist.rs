//! The release tarball as an operator meets it: built twice (identical bytes), unpacked, every
//! conf file checked, then a name server and a broker started from another directory through the
//! `bin/` scripts, a message sent and consumed with `sh bin/mqadmin`, and `sh bin/mqshutdown`.
//!
//! The tarball packages the debug binaries (`--debug`) so that the test does not need a release
//! build; the scripts and layout are the same.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ferrocket_testkit::{free_port_on, wait_for_port, ProcessGuard, TempDir};

const HOST: &str = "127.0.0.31";

fn xtask(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask");
    assert!(
        out.status.success(),
        "xtask {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn only_tarball(dir: &Path) -> PathBuf {
    let tars: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read out dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(tars.len(), 1, "one tarball in {}", dir.display());
    tars[0].clone()
}

/// Runs `sh <install>/bin/<script> args` from `cwd`, with `env`.
fn sh(install: &Path, cwd: &Path, script: &str, args: &[&str], env: &[(&str, String)]) -> Command {
    let mut c = Command::new("sh");
    c.arg(install.join("bin").join(script))
        .args(args)
        .current_dir(cwd);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn conf_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).expect("read conf dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            conf_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn tarball_is_reproducible_and_runs_from_anywhere() {
    let tmp = TempDir::new("dist");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let out = xtask(&["dist", "--debug", "--out", a.to_str().unwrap()]);
    let progress = String::from_utf8_lossy(&out.stdout);
    assert!(
        progress.contains("[1/4]") && progress.contains("[4/4]"),
        "{progress}"
    );
    xtask(&["dist", "--debug", "--out", b.to_str().unwrap()]);
    let (ta, tb) = (only_tarball(&a), only_tarball(&b));
    assert_eq!(ta.file_name(), tb.file_name());
    assert!(
        fs::read(&ta).unwrap() == fs::read(&tb).unwrap(),
        "two dist runs gave different bytes"
    );
    let sha = fs::read_to_string(format!("{}.sha256", ta.display())).expect("checksum file");
    assert!(sha.ends_with(&format!(
        "  {}\n",
        ta.file_name().unwrap().to_string_lossy()
    )));

    // Unpack as an operator would.
    let hosts = tmp.path().join("host");
    fs::create_dir_all(&hosts).unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&ta)
        .current_dir(&hosts)
        .status()
        .expect("tar");
    assert!(st.success());
    let install = fs::read_dir(&hosts)
        .unwrap()
        .next()
        .expect("unpacked dir")
        .unwrap()
        .path();
    for f in [
        "bin/mqnamesrv",
        "bin/mqbroker",
        "bin/mqadmin",
        "bin/mqconsole",
        "bin/mqshutdown",
        "LICENSE",
        "CHANGELOG.md",
        "docs/operations.md",
        "conf/broker.conf",
        "conf/2m-2s-async/broker-a-s.properties",
        "conf/2m-2s-sync/broker-b.properties",
        "conf/2m-noslave/broker-trace.properties",
        "conf/dledger/broker-n2.conf",
    ] {
        assert!(install.join(f).exists(), "{f} missing from the tarball");
    }

    // Scripts run from an unrelated directory.
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let logs = tmp.path().join("logs");
    let log_env = ("FERROCKET_LOG_DIR", logs.display().to_string());

    // Every conf file of the tarball passes --check.
    let mut confs = Vec::new();
    conf_files(&install.join("conf"), &mut confs);
    assert!(confs.len() >= 15, "{confs:?}");
    for conf in &confs {
        let o = sh(
            &install,
            &elsewhere,
            "mqbroker",
            &["-c", conf.to_str().unwrap(), "--check"],
            std::slice::from_ref(&log_env),
        )
        .output()
        .unwrap();
        assert!(
            o.status.success(),
            "{} fails --check: {}",
            conf.display(),
            text(&o)
        );
    }

    // A name server and a broker through the scripts.
    let ns_port = free_port_on(HOST);
    let ns_conf = tmp.path().join("namesrv.properties");
    fs::write(
        &ns_conf,
        format!("listenPort={ns_port}\nbindAddress={HOST}\n"),
    )
    .unwrap();
    let ns_addr = format!("{HOST}:{ns_port}");
    let _ns = ProcessGuard::spawn(
        "mqnamesrv (tarball)",
        &mut sh(
            &install,
            &elsewhere,
            "mqnamesrv",
            &["-c", ns_conf.to_str().unwrap()],
            std::slice::from_ref(&log_env),
        ),
    );
    wait_for_port(&ns_addr, Duration::from_secs(20));

    let broker_port = free_port_on(HOST);
    let store = tmp.path().join("store");
    let env = [
        log_env.clone(),
        ("FERROCKET_listenPort", broker_port.to_string()),
        ("FERROCKET_brokerIP1", HOST.to_string()),
        ("FERROCKET_storePathRootDir", store.display().to_string()),
    ];
    let conf = install.join("conf/broker.conf");
    let mut broker = ProcessGuard::spawn(
        "mqbroker (tarball)",
        &mut sh(
            &install,
            &elsewhere,
            "mqbroker",
            &["-c", conf.to_str().unwrap(), "-n", &ns_addr],
            &env,
        ),
    );
    let broker_addr = format!("{HOST}:{broker_port}");
    wait_for_port(&broker_addr, Duration::from_secs(20));
    assert!(
        logs.join("broker.log").exists(),
        "the script logs to FERROCKET_LOG_DIR"
    );

    // Send and consume with mqadmin, once the broker's registration reached the name server.
    let admin_env = [log_env.clone(), ("NAMESRV_ADDR", ns_addr.clone())];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = sh(
            &install,
            &elsewhere,
            "mqadmin",
            &[
                "sendMessage",
                "-t",
                "DistTopic",
                "-p",
                "hello from the tarball",
            ],
            &admin_env,
        )
        .output()
        .unwrap();
        if o.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "sendMessage: {}", text(&o));
        std::thread::sleep(Duration::from_millis(300));
    }
    // The send auto-created the topic; the broker registers it with the name server right
    // after, without the send waiting for that (as RocketMQ's): a consumer started at once may
    // find no route yet.
    let deadline = Instant::now() + Duration::from_secs(20);
    let o = loop {
        let o = sh(
            &install,
            &elsewhere,
            "mqadmin",
            &["consumeMessage", "-t", "DistTopic", "-g", "dist", "-c", "1"],
            &admin_env,
        )
        .output()
        .unwrap();
        if o.status.success() || !text(&o).contains("no route") || Instant::now() >= deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(o.status.success(), "consumeMessage: {}", text(&o));
    assert!(
        text(&o).contains("hello from the tarball"),
        "consumeMessage printed: {}",
        text(&o)
    );

    // mqshutdown stops the broker cleanly.
    let o = sh(&install, &elsewhere, "mqshutdown", &["broker"], &[])
        .output()
        .unwrap();
    assert!(o.status.success(), "mqshutdown: {}", text(&o));
    assert_eq!(broker.wait_exit(Duration::from_secs(20)), Some(0));
}
