//! Starting brokers from conf files in a temp dir, and building send/pull requests.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferrocket_protocol::message::{decode, peek_total_size, StoredMessage};
use ferrocket_protocol::{RemotingCommand, RequestCode, SerializeType};
use ferrocket_testkit::{bin_path, free_port, wait_for_port, ProcessGuard, RawClient, TempDir};

/// A listen port whose fast port (port - 2) and HA port (port + 1) are free too.
pub fn broker_port() -> u16 {
    for _ in 0..200 {
        let p = free_port();
        if p > 1026
            && p < 65534
            && TcpListener::bind(("127.0.0.1", p - 2)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port pair");
}

/// A broker process with its conf and store in a temp dir.
pub struct Broker {
    pub guard: ProcessGuard,
    pub port: u16,
    pub conf: PathBuf,
    /// Kept alive for the broker's lifetime (removed on drop).
    _dir: TempDir,
}

impl Broker {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn fast_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port - 2)
    }

    pub fn client(&self) -> RawClient {
        RawClient::connect(&self.addr()).expect("connect to broker")
    }

    /// Starts a broker with the test defaults plus `extra` lines.
    pub fn start(extra: &str) -> Broker {
        Self::start_on(broker_port(), extra)
    }

    /// Starts a broker on a chosen listen port.
    pub fn start_on(port: u16, extra: &str) -> Broker {
        let dir = TempDir::new("broker");
        let conf = write_conf(dir.path(), port, extra);
        let guard = spawn(&conf);
        wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(30));
        Broker {
            guard,
            port,
            conf,
            _dir: dir,
        }
    }

    /// Starts the broker again on the same conf and store.
    pub fn restart(&mut self) {
        self.guard = spawn(&self.conf);
        wait_for_port(&self.addr(), Duration::from_secs(60));
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.guard.signal(libc::SIGTERM);
        self.guard.wait_exit(Duration::from_secs(30))
    }
}

pub fn write_conf(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let path = dir.join("broker.conf");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        "brokerClusterName = TestCluster\nbrokerName = broker-t\nbrokerId = 0\nbrokerIP1 = 127.0.0.1\n\
         listenPort = {port}\nstorePathRootDir = {}\nmappedFileSizeCommitLog = 16777216\n\
         mappedFileSizeConsumeQueue = 60000\nbrokerRole = ASYNC_MASTER\n{extra}\n",
        dir.join("store").display()
    )
    .unwrap();
    path
}

pub fn spawn(conf: &Path) -> ProcessGuard {
    ProcessGuard::spawn(
        "mqbroker",
        Command::new(bin_path("mqbroker"))
            .arg("-c")
            .arg(conf)
            .env("RUST_LOG", "warn"),
    )
}

/// Properties string with TAGS (optional) and anything else.
pub fn props(tags: Option<&str>, extra: &[(&str, &str)]) -> String {
    let mut s = String::new();
    if let Some(t) = tags {
        s.push_str(&format!("TAGS\u{1}{t}\u{2}"));
    }
    for (k, v) in extra {
        s.push_str(&format!("{k}\u{1}{v}\u{2}"));
    }
    s
}

/// A SEND_MESSAGE_V2 (short keys) or SEND_MESSAGE (long keys) request.
pub fn send_req(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    tags: Option<&str>,
    v2: bool,
    ser: SerializeType,
) -> RemotingCommand {
    let p = props(tags, &[("UNIQ_KEY", "AAAA")]);
    let fields: [(&str, &str, String); 9] = [
        ("a", "producerGroup", "PG".into()),
        ("b", "topic", topic.into()),
        ("c", "defaultTopic", "TBW102".into()),
        ("d", "defaultTopicQueueNums", "4".into()),
        ("e", "queueId", queue_id.to_string()),
        ("f", "sysFlag", "0".into()),
        ("g", "bornTimestamp", "1700000000000".into()),
        ("h", "flag", "0".into()),
        ("i", "properties", p),
    ];
    let code = if v2 {
        RequestCode::SEND_MESSAGE_V2
    } else {
        RequestCode::SEND_MESSAGE
    };
    let mut cmd = RemotingCommand::request(code)
        .with_serialize_type(ser)
        .with_body(body.to_vec());
    for (short, long, v) in fields {
        cmd = cmd.with_ext(if v2 { short } else { long }, v);
    }
    cmd
}

/// A PULL_MESSAGE request with an explicit subscription.
pub fn pull_req(
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    sub: &str,
    suspend_ms: i64,
    ser: SerializeType,
) -> RemotingCommand {
    let mut sys_flag = 0x4; // SUBSCRIPTION
    if suspend_ms > 0 {
        sys_flag |= 0x2;
    }
    RemotingCommand::request(RequestCode::PULL_MESSAGE)
        .with_serialize_type(ser)
        .with_ext("consumerGroup", group)
        .with_ext("topic", topic)
        .with_ext("queueId", queue_id)
        .with_ext("queueOffset", offset)
        .with_ext("maxMsgNums", 32)
        .with_ext("sysFlag", sys_flag)
        .with_ext("commitOffset", 0)
        .with_ext("suspendTimeoutMillis", suspend_ms)
        .with_ext("subscription", sub)
        .with_ext("subVersion", 0)
        .with_ext("expressionType", "TAG")
}

/// Splits a pull body into its records.
pub fn decode_all(body: &[u8]) -> Vec<StoredMessage> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let (size, _) = peek_total_size(&body[pos..]).expect("record header");
        let size = size as usize;
        out.push(decode(&body[pos..pos + size]).expect("record"));
        pos += size;
    }
    out
}

/// Creates a topic with `queues` queues through UPDATE_AND_CREATE_TOPIC.
pub fn create_topic(c: &mut RawClient, topic: &str, queues: i32) {
    let r = c
        .call(
            RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_TOPIC)
                .with_ext("topic", topic)
                .with_ext("defaultTopic", "TBW102")
                .with_ext("readQueueNums", queues)
                .with_ext("writeQueueNums", queues)
                .with_ext("perm", 6)
                .with_ext("topicFilterType", "SINGLE_TAG")
                .with_ext("topicSysFlag", 0)
                .with_ext("order", false),
        )
        .unwrap();
    assert_eq!(r.code, 0, "create topic: {:?}", r.remark);
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
