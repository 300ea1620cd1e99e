//! Load and size figures of a real `mqnamesrv` process (docs/performance.md):
//! start-to-listening time, idle resident memory, memory with many topics registered, and
//! GET_ROUTEINFO_BY_TOPIC throughput from several pipelined connections.
//!
//! ```sh
//! cargo build --release -p ferrocket-namesrv --bins --examples
//! target/release/examples/route_load target/release/mqnamesrv [connections] [window] [seconds]
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ferrocket_protocol::body::{RegisterBrokerBody, TopicConfig};
use ferrocket_protocol::header::namesrv::{GetRouteInfoRequestHeader, RegisterBrokerRequestHeader};
use ferrocket_protocol::{frame, RemotingCommand, RequestCode, ResponseCode};
use ferrocket_testkit::{free_port, ProcessGuard, RawClient, TempDir};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Registers `brokers` brokers each serving `topics` topics; the registrations last as long as
/// the returned connection (the name server drops brokers whose connection closes).
fn register(addr: &str, brokers: usize, topics: usize) -> RawClient {
    let mut c = RawClient::connect(addr).expect("connect");
    for b in 0..brokers {
        let mut body = RegisterBrokerBody::default();
        for t in 0..topics {
            let name = format!("topic-{t}");
            body.topic_config_serialize_wrapper
                .topic_config_table
                .insert(name.clone(), TopicConfig::new(&name, 8, 8, 6));
        }
        body.topic_config_serialize_wrapper.data_version.counter = 1;
        let broker_addr = format!("127.0.0.{}:10911", b + 11);
        let h = RegisterBrokerRequestHeader {
            broker_name: format!("broker-{b}"),
            broker_addr: broker_addr.clone(),
            cluster_name: "DefaultCluster".into(),
            ha_server_addr: broker_addr,
            broker_id: 0,
            compressed: Some(false),
            ..Default::default()
        };
        let r = c
            .call(
                RemotingCommand::request(RequestCode::REGISTER_BROKER)
                    .with_header(&h)
                    .with_body(serde_json::to_vec(&body).expect("json")),
            )
            .expect("register");
        assert_eq!(r.code, i32::from(ResponseCode::SUCCESS), "{:?}", r.remark);
    }
    c
}

/// One connection keeping `window` lookups in flight until `stop`; counts answers.
fn worker(addr: String, window: usize, topics: usize, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.set_nodelay(true).ok();
    let mut out = BytesMut::new();
    let mut inbuf = BytesMut::with_capacity(1 << 20);
    let mut opaque = 0i32;
    let mut next = |out: &mut BytesMut| {
        opaque += 1;
        let h = GetRouteInfoRequestHeader {
            topic: format!("topic-{}", opaque as usize % topics),
            ..Default::default()
        };
        let cmd = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC)
            .with_header(&h)
            .with_opaque(opaque);
        frame::encode(&cmd, out).expect("encode");
    };
    for _ in 0..window {
        next(&mut out);
    }
    s.write_all(&out).expect("write");
    out.clear();
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "name server closed the connection");
        inbuf.extend_from_slice(&buf[..n]);
        let mut answered = 0;
        while let Some(r) = frame::decode(&mut inbuf, 16 << 20).expect("decode") {
            assert_eq!(r.code, i32::from(ResponseCode::SUCCESS), "{:?}", r.remark);
            answered += 1;
        }
        for _ in 0..answered {
            next(&mut out);
        }
        s.write_all(&out).expect("write");
        out.clear();
        done.fetch_add(answered, Ordering::Relaxed);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .expect("usage: route_load MQNAMESRV [conns] [window] [secs]");
    let conns: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(8);
    let window: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(16);
    let secs: u64 = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(5);

    let dir = TempDir::new("route-load");
    let port = free_port();
    let conf = dir.path().join("namesrv.properties");
    std::fs::write(
        &conf,
        format!(
            "listenPort={port}\nbindAddress=127.0.0.1\nkvConfigPath={}\n",
            dir.path().join("kv.json").display()
        ),
    )
    .expect("conf");
    let addr = format!("127.0.0.1:{port}");
    let t0 = Instant::now();
    let ns = ProcessGuard::spawn(
        "mqnamesrv",
        Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    while TcpStream::connect(&addr).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "never listened");
        std::thread::sleep(Duration::from_micros(200));
    }
    let started = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    println!("start to listening: {:.1} ms", started.as_secs_f64() * 1e3);
    println!("idle RSS: {:.1} MiB", rss_kib(ns.pid()) as f64 / 1024.0);

    let _small = register(&addr, 4, 1000);
    println!(
        "RSS with 1,000 topics on 4 brokers: {:.1} MiB",
        rss_kib(ns.pid()) as f64 / 1024.0
    );

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (a, s, d) = (addr.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || worker(a, window, 1000, s, d))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let mut per_sec = Vec::new();
    for _ in 0..secs {
        let before = done.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_secs(1));
        per_sec.push(done.load(Ordering::Relaxed) - before);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    per_sec.sort_unstable();
    println!(
        "GET_ROUTEINFO_BY_TOPIC, {conns} connections x {window} in flight, 1,000 topics: \
         median {} req/s (min {}, max {})",
        per_sec[per_sec.len() / 2],
        per_sec[0],
        per_sec[per_sec.len() - 1]
    );

    let _large = register(&addr, 4, 10_000);
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "RSS with 10,000 topics on 4 brokers: {:.1} MiB",
        rss_kib(ns.pid()) as f64 / 1024.0
    );
}
