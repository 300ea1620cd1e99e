//! The console in a real browser: a name server, a master and its slave as processes, `mqconsole`
//! in front of them, and headless Chromium driven through chromedriver (WebDriver over HTTP).
//! Checks the cluster page lists both brokers with their roles, the topic and message pages
//! find what the test sent, and after the master is killed the cluster page drops it within
//! 10 s without a reload. Screenshots go to `target/console-screenshots/` (and to
//! `docs/console/` with `FERROCKET_UPDATE_SCREENSHOTS=1`).
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium` and `chromium-driver`; `.ci/run`
//! installs them).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use ferrocket_client::{ClientConfig, Message, Producer};
use ferrocket_testkit::{
    bin_path, free_port_on, start_namesrv, wait_for_port, ProcessGuard, TempDir,
};
use serde_json::{json, Value};

/// One HTTP/1.1 exchange with chromedriver (reads exactly the response's body: chromedriver
/// keeps the connection open).
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        let n = s.read(&mut buf).expect("chromedriver answer");
        assert!(n > 0, "chromedriver closed the connection");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &raw[head_end..];
        let done = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).expect("chromedriver body");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let rest = String::from_utf8_lossy(&raw[head_end..]).into_owned();
    let payload = if chunked {
        let mut out = String::new();
        let mut rest = rest.as_str();
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        rest
    };
    serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{e}: {payload}"))
}

/// chromedriver in its own process group, so that the browsers it starts die with it.
struct Driver(ProcessGuard);

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: signalling the process group we created for chromedriver.
        unsafe {
            libc::kill(-(self.0.pid() as i32), libc::SIGKILL);
        }
    }
}

struct Browser {
    port: u16,
    session: String,
    _driver: Driver,
    /// chromedriver's and Chromium's TMPDIR: Chromium, killed, cannot remove what it made
    /// there; this goes after the driver is killed.
    _tmp: TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = free_port_on("127.0.0.1");
        let tmp = TempDir::new("browser");
        let driver = Driver(ProcessGuard::spawn(
            "chromedriver",
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .env("TMPDIR", tmp.path())
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        ));
        wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(20));
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("chromium");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,800"],
            }
        }}});
        let r = http(port, "POST", "/session", Some(&caps));
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Browser {
            port,
            session,
            _driver: driver,
            _tmp: tmp,
        }
    }

    fn open(&self, url: &str) {
        http(
            self.port,
            "POST",
            &format!("/session/{}/url", self.session),
            Some(&json!({ "url": url })),
        );
    }

    fn text(&self) -> String {
        let r = http(
            self.port,
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            Some(&json!({ "script": "return document.body.innerText", "args": [] })),
        );
        r["value"].as_str().unwrap_or_default().to_string()
    }

    /// Waits until the page text satisfies `ok`; returns it.
    fn wait_for(&self, what: &str, within: Duration, ok: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let text = self.text();
            if ok(&text) {
                return text;
            }
            assert!(t.elapsed() < within, "page never showed {what}:\n{text}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn screenshot(&self, name: &str) {
        let r = http(
            self.port,
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["value"].as_str().unwrap_or_default())
            .expect("base64 screenshot");
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut dirs = vec![root.join("target/console-screenshots")];
        if std::env::var_os("FERROCKET_UPDATE_SCREENSHOTS").is_some() {
            dirs.push(root.join("docs/console"));
        }
        for d in dirs {
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("{name}.png")), &png).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            )
        });
    }
}

fn broker(dir: &Path, name: &str, ip: &str, ns: &str, extra: &str) -> (ProcessGuard, String) {
    let port = loop {
        let p = free_port_on(ip);
        if p > 1030
            && std::net::TcpListener::bind((ip, p - 2)).is_ok()
            && std::net::TcpListener::bind((ip, p + 1)).is_ok()
        {
            break p;
        }
    };
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "brokerClusterName=ConsoleCluster\nbrokerName=broker-a\nbrokerIP1={ip}\nlistenPort={port}\n\
             namesrvAddr={ns}\nstorePathRootDir={}\nmappedFileSizeCommitLog=16777216\n{extra}\n",
            dir.join(name).display()
        ),
    )
    .unwrap();
    let g = ProcessGuard::spawn(
        "mqbroker",
        Command::new(bin_path("mqbroker"))
            .arg("-c")
            .arg(&conf)
            .env("RUST_LOG", "warn"),
    );
    let addr = format!("{ip}:{port}");
    wait_for_port(&addr, Duration::from_secs(30));
    (g, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_the_cluster_topics_messages_and_a_failover() {
    let dir = TempDir::new("console");
    let (_ns, ns) = start_namesrv(dir.path(), "127.0.0.1");
    let (mut master, master_addr) = broker(
        dir.path(),
        "master",
        "127.0.0.31",
        &ns,
        "brokerRole=ASYNC_MASTER",
    );
    let (_slave, slave_addr) = broker(
        dir.path(),
        "slave",
        "127.0.0.32",
        &ns,
        "brokerRole=SLAVE\nbrokerId=1",
    );

    let p = Producer::builder()
        .config(ClientConfig::new(ns.clone()))
        .group("console_test")
        .build()
        .unwrap();
    let started = Instant::now();
    for i in 0..5 {
        let msg = Message::new("ConsoleTopic", format!("body-{i}").into_bytes())
            .with_tags("TagA")
            .with_keys([format!("order-{i}")]);
        // The brokers register within a moment of listening: until then there is no route.
        while let Err(e) = p.send(msg.clone()).await {
            assert!(started.elapsed() < Duration::from_secs(30), "send: {e}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    p.shutdown().await;
    // A group that has committed offset 0 on every queue: its lag is the 5 messages.
    let admin = ferrocket_client::Admin::new(ClientConfig::new(ns.clone())).unwrap();
    admin
        .update_sub_group("ConsoleCluster", "console_reader", 16, false, true)
        .await
        .unwrap();
    admin
        .reset_offset_by_time("console_reader", "ConsoleTopic", 0)
        .await
        .unwrap();

    let web_port = free_port_on("127.0.0.1");
    let web = format!("127.0.0.1:{web_port}");
    let _console = ProcessGuard::spawn(
        "mqconsole",
        Command::new(bin_path("mqconsole"))
            .args(["-n", &ns, "--listen", &web])
            .env("RUST_LOG", "warn"),
    );
    wait_for_port(&web, Duration::from_secs(10));

    let b = tokio::task::spawn_blocking(Browser::start).await.unwrap();
    let base = format!("http://{web}/");
    let gone = master_addr.clone();
    let slave = slave_addr.clone();
    let (b, ()) = tokio::task::spawn_blocking(move || {
        b.open(&format!("{base}#/cluster"));
        b.wait_for("both brokers with roles", Duration::from_secs(40), |t| {
            t.contains(&master_addr)
                && t.contains(&slave_addr)
                && t.contains("MASTER")
                && t.contains("SLAVE")
        });
        b.screenshot("cluster");

        b.open(&format!("{base}#/topics/ConsoleTopic"));
        b.wait_for("the topic's queues", Duration::from_secs(20), |t| {
            t.contains("Topic ConsoleTopic") && t.contains("broker-a") && t.contains("Max offset")
        });
        b.screenshot("topic");

        b.open(&format!("{base}#/messages?topic=ConsoleTopic&key=order-3"));
        b.wait_for("the message by key", Duration::from_secs(20), |t| {
            t.contains("body-3") && !t.contains("body-2")
        });
        b.open(&format!("{base}#/messages?topic=ConsoleTopic"));
        b.wait_for(
            "the topic's recent messages",
            Duration::from_secs(20),
            |t| (0..5).all(|i| t.contains(&format!("body-{i}"))),
        );
        b.screenshot("messages");

        b.open(&format!("{base}#/groups/console_reader"));
        b.wait_for("the group's lag", Duration::from_secs(20), |t| {
            t.contains("Consumer group console_reader") && t.contains("Total lag: 5")
        });
        b.screenshot("group");

        b.open(&format!("{base}#/cluster"));
        b.wait_for("the master again", Duration::from_secs(20), |t| {
            t.contains(&master_addr)
        });
        (b, ())
    })
    .await
    .unwrap();

    // Kill the master; the open page drops it by itself (it refreshes every 3 s).
    let killed = Instant::now();
    master.kill();
    tokio::task::spawn_blocking(move || {
        let text = b.wait_for("the master gone", Duration::from_secs(10), |t| {
            !t.contains(&gone) && t.contains(&slave)
        });
        assert!(text.contains("SLAVE"));
        b.screenshot("cluster-after-master-killed");
        eprintln!("master left the page {:?} after the kill", killed.elapsed());
    })
    .await
    .unwrap();
}

/// A plain HTTP request to the console; returns (status, body).
fn console_call(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let code = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn writes_need_the_flag_and_the_token() {
    let dir = TempDir::new("console-writes");
    let (_ns, ns) = start_namesrv(dir.path(), "127.0.0.1");
    let (_master, _) = broker(
        dir.path(),
        "m",
        "127.0.0.33",
        &ns,
        "brokerRole=ASYNC_MASTER",
    );
    let create = r#"{"cluster":"ConsoleCluster","topic":"MadeInConsole","queues":2}"#;

    let ro = format!("127.0.0.1:{}", free_port_on("127.0.0.1"));
    let _ro = ProcessGuard::spawn(
        "mqconsole",
        Command::new(bin_path("mqconsole")).args(["-n", &ns, "--listen", &ro]),
    );
    wait_for_port(&ro, Duration::from_secs(10));
    let (code, body) = console_call(&ro, "POST", "/api/topics", Some("anything"), create);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("read-only"), "{body}");

    let rw = format!("127.0.0.1:{}", free_port_on("127.0.0.1"));
    let _rw = ProcessGuard::spawn(
        "mqconsole",
        Command::new(bin_path("mqconsole")).args([
            "-n",
            &ns,
            "--listen",
            &rw,
            "--allow-writes",
            "--token",
            "s3cret",
        ]),
    );
    wait_for_port(&rw, Duration::from_secs(10));
    assert_eq!(
        console_call(&rw, "POST", "/api/topics", None, create).0,
        401
    );
    assert_eq!(
        console_call(&rw, "POST", "/api/topics", Some("wrong"), create).0,
        401
    );
    // The broker registers within a moment of starting; retry until the cluster is known.
    let t = Instant::now();
    loop {
        let (code, body) = console_call(&rw, "POST", "/api/topics", Some("s3cret"), create);
        if code == 200 {
            assert!(body.contains("MadeInConsole"), "{body}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{code} {body}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, body) = console_call(&rw, "GET", "/api/topics/MadeInConsole", None, "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"write\":2"), "{body}");
    let (code, body) = console_call(&rw, "GET", "/api/messages", None, "");
    assert_eq!(code, 400, "{body}");
}
