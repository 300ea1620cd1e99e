//! `cargo xtask up` / `down`: a layout's processes on this machine, each "host" a 127.0.0.x address.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::{cargo, root};

/// One broker of a layout: the stock conf file it starts from and the host it stands for.
struct Node {
    name: &'static str,
    conf: &'static str,
    ip: &'static str,
}

struct Layout {
    name: &'static str,
    namesrvs: &'static [&'static str],
    nodes: &'static [Node],
}

const LAYOUTS: &[Layout] = &[
    Layout {
        name: "single",
        namesrvs: &["127.0.0.1"],
        nodes: &[Node {
            name: "broker-a",
            conf: "broker.conf",
            ip: "127.0.0.1",
        }],
    },
    Layout {
        name: "2m-2s-async",
        namesrvs: &["127.0.0.2", "127.0.0.3"],
        nodes: &[
            Node {
                name: "broker-a",
                conf: "2m-2s-async/broker-a.properties",
                ip: "127.0.0.11",
            },
            Node {
                name: "broker-a-s",
                conf: "2m-2s-async/broker-a-s.properties",
                ip: "127.0.0.12",
            },
            Node {
                name: "broker-b",
                conf: "2m-2s-async/broker-b.properties",
                ip: "127.0.0.13",
            },
            Node {
                name: "broker-b-s",
                conf: "2m-2s-async/broker-b-s.properties",
                ip: "127.0.0.14",
            },
        ],
    },
    Layout {
        name: "2m-2s-sync",
        namesrvs: &["127.0.0.2", "127.0.0.3"],
        nodes: &[
            Node {
                name: "broker-a",
                conf: "2m-2s-sync/broker-a.properties",
                ip: "127.0.0.11",
            },
            Node {
                name: "broker-a-s",
                conf: "2m-2s-sync/broker-a-s.properties",
                ip: "127.0.0.12",
            },
            Node {
                name: "broker-b",
                conf: "2m-2s-sync/broker-b.properties",
                ip: "127.0.0.13",
            },
            Node {
                name: "broker-b-s",
                conf: "2m-2s-sync/broker-b-s.properties",
                ip: "127.0.0.14",
            },
        ],
    },
    Layout {
        name: "dledger",
        namesrvs: &["127.0.0.2"],
        nodes: &[
            Node {
                name: "n0",
                conf: "dledger/broker-n0.conf",
                ip: "127.0.0.21",
            },
            Node {
                name: "n1",
                conf: "dledger/broker-n1.conf",
                ip: "127.0.0.22",
            },
            Node {
                name: "n2",
                conf: "dledger/broker-n2.conf",
                ip: "127.0.0.23",
            },
        ],
    },
];

const NAMESRV_PORT: u16 = 9876;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn layout(name: &str) -> Result<&'static Layout> {
    LAYOUTS.iter().find(|l| l.name == name).with_context(|| {
        let names: Vec<_> = LAYOUTS.iter().map(|l| l.name).collect();
        format!("unknown layout `{name}`; layouts: {}", names.join(", "))
    })
}

fn cluster_dir(layout: &str) -> PathBuf {
    root().join("target/cluster").join(layout)
}

/// Rewrites `key=value` lines of a properties text, appending keys that are not there.
fn set_keys(text: &str, keys: &[(&str, String)]) -> String {
    let mut out = String::new();
    let mut done = vec![false; keys.len()];
    for line in text.lines() {
        let key = line.split(['=', ':']).next().unwrap_or("").trim();
        match keys
            .iter()
            .position(|(k, _)| *k == key && !line.trim_start().starts_with('#'))
        {
            Some(i) => {
                out.push_str(&format!("{}={}\n", keys[i].0, keys[i].1));
                done[i] = true;
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (i, (k, v)) in keys.iter().enumerate() {
        if !done[i] {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

/// The conf of one node of `layout`, derived from its stock file with hosts mapped to loopback.
fn node_conf(layout: &Layout, node: &Node, dir: &Path) -> Result<String> {
    let stock = root().join("deploy/conf").join(node.conf);
    let text =
        fs::read_to_string(&stock).with_context(|| format!("reading {}", stock.display()))?;
    let store = dir.join(node.name).join("store");
    let namesrv: Vec<String> = layout
        .namesrvs
        .iter()
        .map(|ip| format!("{ip}:{NAMESRV_PORT}"))
        .collect();
    let mut keys = vec![
        ("brokerIP1", node.ip.to_string()),
        ("brokerIP2", node.ip.to_string()),
        ("namesrvAddr", namesrv.join(";")),
        ("storePathRootDir", store.display().to_string()),
        (
            "storePathCommitLog",
            store.join("commitlog").display().to_string(),
        ),
    ];
    if layout.name == "dledger" {
        let peers: Vec<String> = layout
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{}-{}:{}", n.name, n.ip, 40911 + i))
            .collect();
        keys.push(("dLegerPeers", peers.join(";")));
    }
    Ok(set_keys(&text, &keys))
}

fn bin_dir(release: bool) -> PathBuf {
    root()
        .join("target")
        .join(if release { "release" } else { "debug" })
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> Result<Child> {
    let out = fs::File::create(log)?;
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

pub fn up(args: &[String]) -> Result<()> {
    let release = args.iter().any(|a| a == "--release");
    let name = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("single", String::as_str);
    let layout = layout(name)?;
    let mut build = vec![
        "build",
        "--bins",
        "-p",
        "ferrocket-namesrv",
        "-p",
        "ferrocket-broker",
    ];
    if release {
        build.push("--release");
    }
    cargo(&build)?;
    let bins = bin_dir(release);
    let dir = cluster_dir(layout.name);
    fs::create_dir_all(&dir)?;

    // SAFETY: installing an async-signal-safe handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }

    let mut children: Vec<(String, Child)> = Vec::new();
    let mut pids = String::new();
    for ip in layout.namesrvs {
        let conf = dir.join(format!("namesrv-{ip}.properties"));
        let kv = dir.join(format!("kv-{ip}.json"));
        fs::write(
            &conf,
            format!(
                "listenPort={NAMESRV_PORT}\nbindAddress={ip}\nkvConfigPath={}\n",
                kv.display()
            ),
        )?;
        let log = dir.join(format!("namesrv-{ip}.log"));
        let child = spawn(
            &bins.join("mqnamesrv"),
            &["-c".into(), conf.display().to_string()],
            &log,
        )?;
        pids.push_str(&format!("{}\n", child.id()));
        println!("name server   {ip}:{NAMESRV_PORT}   log {}", log.display());
        children.push((format!("namesrv {ip}"), child));
    }
    for node in layout.nodes {
        let conf = dir.join(format!("{}.conf", node.name));
        fs::write(&conf, node_conf(layout, node, &dir)?)?;
        let log = dir.join(format!("{}.log", node.name));
        let child = spawn(
            &bins.join("mqbroker"),
            &["-c".into(), conf.display().to_string()],
            &log,
        )?;
        pids.push_str(&format!("{}\n", child.id()));
        println!(
            "broker {:<8} {}   conf {}   log {}",
            node.name,
            node.ip,
            conf.display(),
            log.display()
        );
        children.push((node.name.to_string(), child));
    }
    fs::write(dir.join("pids"), pids)?;
    let namesrv: Vec<String> = layout
        .namesrvs
        .iter()
        .map(|ip| format!("{ip}:{NAMESRV_PORT}"))
        .collect();
    println!(
        "\nlayout {} is up; data under {}",
        layout.name,
        dir.display()
    );
    println!(
        "export NAMESRV_ADDR='{}'   # for mqadmin and clients",
        namesrv.join(";")
    );
    if let Some(first) = layout.nodes.first() {
        println!(
            "RocketMQ 5.x gRPC clients: endpoints '{}:8081'   (docs/grpc.md)",
            first.ip
        );
    }
    println!("Ctrl-C stops everything");

    while !STOP.load(Ordering::SeqCst) {
        for (name, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("{name} exited ({status}); stopping the layout");
                STOP.store(true, Ordering::SeqCst);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_children(&mut children);
    let _ = fs::remove_file(dir.join("pids"));
    Ok(())
}

fn stop_children(children: &mut [(String, Child)]) {
    for (_, c) in children.iter() {
        // SAFETY: signalling our own children.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for (name, c) in children.iter_mut() {
        loop {
            if let Ok(Some(_)) = c.try_wait() {
                println!("stopped {name}");
                break;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                println!("killed {name} (did not stop within 15 s)");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn down(args: &[String]) -> Result<()> {
    let names: Vec<&str> = match args.first() {
        Some(n) => vec![layout(n)?.name],
        None => LAYOUTS.iter().map(|l| l.name).collect(),
    };
    let mut any = false;
    for name in names {
        let pid_file = cluster_dir(name).join("pids");
        let Ok(text) = fs::read_to_string(&pid_file) else {
            continue;
        };
        for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) with a pid we recorded; a stale pid is harmless to signal 0-check.
            unsafe {
                if libc::kill(pid, 0) == 0 {
                    libc::kill(pid, libc::SIGTERM);
                    any = true;
                }
            }
        }
        let _ = fs::remove_file(&pid_file);
        println!("stopped layout {name}");
    }
    if !any {
        println!("no running layout found");
    }
    Ok(())
}
