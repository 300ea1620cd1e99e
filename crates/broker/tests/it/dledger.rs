//! DLedger mode: three `mqbroker` processes of one `dLegerGroup`, each on its own loopback
//! address (127.0.N.11-13), with a name server. Election, replication, SIGKILL and SIGSTOP of
//! the leader under load (bounded in count and time), a restarted and a wiped follower
//! catching up, and the conf mistakes that must never split the group silently.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use ferrocket_client::{ClientConfig, Message, Producer};
use ferrocket_protocol::{RemotingCommand, RequestCode};
use ferrocket_testkit::dledger::{all_bodies, caught_up, conf_text, Group, Node, Ports, TOPIC};
use ferrocket_testkit::{bin_path, RawClient, TempDir};

fn producer(ns: &str) -> Producer {
    Producer::builder()
        .config(ClientConfig::new(ns.to_string()))
        .group("raft_producer")
        .retries(4)
        .build()
        .unwrap()
}

/// Sends `count` messages one at a time for at most `limit`; returns the bodies acknowledged
/// (SEND_OK) and the longest stretch without a successful send.
async fn send_load(
    p: &Producer,
    prefix: &str,
    count: usize,
    limit: Duration,
    mut on_sent: impl FnMut(usize),
) -> (Vec<String>, Duration) {
    let t = Instant::now();
    let mut acked = Vec::new();
    let mut last_ok = Instant::now();
    let mut longest = Duration::ZERO;
    let mut i = 0;
    while acked.len() < count && t.elapsed() < limit {
        let body = format!("{prefix}-{i}");
        i += 1;
        match p.send(Message::new(TOPIC, body.clone().into_bytes())).await {
            Ok(r) if r.status == ferrocket_client::SendStatus::SendOk => {
                longest = longest.max(last_ok.elapsed());
                last_ok = Instant::now();
                acked.push(body);
                on_sent(acked.len());
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    (acked, longest)
}

fn create_topic(g: &Group, leader: usize) {
    let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
    let r = c
        .call(
            RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_TOPIC)
                .with_ext("topic", TOPIC)
                .with_ext("readQueueNums", 4)
                .with_ext("writeQueueNums", 4)
                .with_ext("perm", 6),
        )
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_or_hung_under_load_loses_no_acknowledged_message() {
    let mut g = Group::start();
    let leader = g.leader(Duration::from_secs(30));
    create_topic(&g, leader);
    // Every follower serves as a slave, the leader as master.
    let rt = g.nodes[leader].runtime();
    assert_eq!(
        rt.get("dledgerLeader").map(String::as_str),
        Some(&*format!("n{leader}"))
    );
    tokio::time::sleep(Duration::from_secs(4)).await; // the topic reaches the followers

    let p = producer(&g.namesrv);
    let (mut acked, _) = send_load(&p, "a", 100, Duration::from_secs(60), |_| {}).await;
    assert_eq!(acked.len(), 100);

    // SIGKILL the leader mid-load.
    let old = leader;
    let pid = g.nodes[old].guard.as_ref().unwrap().pid();
    let mut killed = false;
    let (more, gap) = send_load(&p, "b", 200, Duration::from_secs(60), |n| {
        if n == 50 && !killed {
            // SAFETY: our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            killed = true;
        }
    })
    .await;
    assert_eq!(more.len(), 200, "sends resumed after the leader was killed");
    g.nodes[old].kill();
    acked.extend(more);
    let new = g.leader(Duration::from_secs(10));
    assert_ne!(new, old);
    eprintln!("SIGKILL: longest stretch without a successful send {gap:?}");

    // Every acknowledged message is on the new leader, once, in order per queue.
    let on_leader = g.messages_on(new);
    let bodies = all_bodies(&on_leader);
    let unique: HashSet<&String> = bodies.iter().collect();
    for a in &acked {
        assert!(unique.contains(a), "acknowledged {a} lost");
    }
    for msgs in on_leader.values() {
        let mut last: BTreeMap<&str, usize> = BTreeMap::new();
        for m in msgs {
            let (prefix, n) = m.split_once('-').unwrap();
            let n: usize = n.parse().unwrap();
            if let Some(prev) = last.insert(prefix, n) {
                assert!(
                    n > prev,
                    "out of order in a queue: {m} after {prefix}-{prev}"
                );
            }
        }
    }

    // The killed node comes back as a follower and catches up.
    g.nodes[old].start();
    caught_up(&g, old, new, Duration::from_secs(30));
    assert_eq!(
        all_bodies(&g.messages_on(old)),
        bodies,
        "restarted follower holds the same log"
    );

    // A hung leader (SIGSTOP) is replaced too; it steps down when it wakes up.
    let hung = new;
    g.nodes[hung].guard.as_ref().unwrap().signal(libc::SIGSTOP);
    let (after, gap) = send_load(&p, "c", 50, Duration::from_secs(60), |_| {}).await;
    assert_eq!(after.len(), 50, "sends resumed after the leader hung");
    eprintln!("SIGSTOP: longest stretch without a successful send {gap:?}");
    acked.extend(after);
    let third = g.leader(Duration::from_secs(10));
    assert_ne!(third, hung);
    g.nodes[hung].guard.as_ref().unwrap().signal(libc::SIGCONT);
    caught_up(&g, hung, third, Duration::from_secs(30));
    let final_bodies = all_bodies(&g.messages_on(third));
    let unique: HashSet<&String> = final_bodies.iter().collect();
    for a in &acked {
        assert!(unique.contains(a), "acknowledged {a} lost after the hang");
    }

    // A follower whose disk is wiped rejoins from the others' logs.
    let wiped = (0..3).find(|i| *i != third).unwrap();
    g.nodes[wiped].kill();
    std::fs::remove_dir_all(&g.nodes[wiped].store).unwrap();
    g.nodes[wiped].start();
    caught_up(&g, wiped, third, Duration::from_secs(30));
    p.shutdown().await;

    // Every node holds the leader's bytes (store host and store time included), whichever way
    // it got them: applied live, after a restart, after a hang, or from an empty disk.
    // (A follower may still be applying the last entries: give it a moment.)
    let leaders = g.commitlog_of(third);
    assert!(leaders.len() > 350 * 100, "{} bytes", leaders.len());
    for i in (0..3).filter(|i| *i != third) {
        same_commitlog(&g, i, third, Duration::from_secs(10));
    }
}

/// Waits up to `within` until node `i`'s commitlog equals node `j`'s byte for byte.
fn same_commitlog(g: &Group, i: usize, j: usize, within: Duration) {
    let same = crate::util::eventually(within, || {
        (g.commitlog_of(i) == g.commitlog_of(j)).then_some(())
    });
    assert!(
        same.is_some(),
        "n{i}'s commitlog ({} bytes) differs from n{j}'s ({} bytes)",
        g.commitlog_of(i).len(),
        g.commitlog_of(j).len()
    );
}

/// Starts node `i` of a group from `text`, its conf, in `dir`.
fn start_node(dir: &TempDir, ip: &str, port: u16, i: usize, text: String) -> Node {
    let conf = dir.path().join(format!("n{i}.conf"));
    std::fs::write(&conf, text).unwrap();
    let mut n = Node {
        ip: ip.into(),
        port,
        conf,
        log: dir.path().join(format!("n{i}.log")),
        store: dir.path().join(format!("n{i}")),
        guard: None,
    };
    n.start();
    n
}

/// The first log line of any of `nodes` containing `needle`, waiting up to 20 s for one.
fn first_logged(nodes: &[Node], needle: &str) -> String {
    let logs = || -> Vec<String> {
        nodes
            .iter()
            .map(|n| std::fs::read_to_string(&n.log).unwrap_or_default())
            .collect()
    };
    crate::util::eventually(Duration::from_secs(20), || {
        logs()
            .iter()
            .flat_map(|l| l.lines())
            .find(|l| l.contains(needle))
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no {needle:?} logged:\n{}", logs().join("\n")))
}

#[test]
fn conf_mistakes_are_refused_loudly() {
    let dir = TempDir::new("dledger-conf");
    let ns = "127.0.0.1:9"; // nothing listens: registration is not what is tested
    let ip = "127.0.0.21";
    let mut ports = Ports::default();
    let raft: Vec<u16> = (0..3).map(|_| ports.any(ip)).collect();
    let peers = |third: u16| format!("n0-{ip}:{};n1-{ip}:{};n2-{ip}:{third}", raft[0], raft[1]);
    let good = peers(raft[2]);
    let other = peers(raft[2] + 1);
    let mut nodes = Vec::new();
    for (i, p) in [(0, &good), (1, &other)] {
        let port = ports.broker(ip);
        let store = dir.path().join(format!("n{i}"));
        nodes.push(start_node(
            &dir,
            ip,
            port,
            i,
            conf_text(ip, port, ns, &store, p, i),
        ));
    }
    // The two nodes' dLegerPeers differ for n2: their first exchange fails naming both values.
    let logged = first_logged(&nodes, "dLegerPeers mismatch");
    assert!(
        logged.contains(&good) && logged.contains(&other),
        "{logged}"
    );
    // Neither became leader: two of three votes are needed and the pair disagrees.
    assert!(nodes
        .iter()
        .all(|n| n.runtime().get("dledgerRole").map(String::as_str) != Some("LEADER")));

    // A second node with the same dLegerSelfId cannot take the first one's Raft address.
    let port = ports.broker(ip);
    let conf = dir.path().join("dup.conf");
    std::fs::write(
        &conf,
        conf_text(ip, port, ns, &dir.path().join("dup"), &good, 0),
    )
    .unwrap();
    let out = Command::new(bin_path("mqbroker"))
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("same dLegerSelfId"), "{text}");
}

/// Nodes whose `mappedFileSizeCommitLog` differs would put one message at different physical
/// offsets: their exchanges are refused, naming both sizes, and no leader forms.
#[test]
fn nodes_with_different_segment_sizes_are_refused() {
    let dir = TempDir::new("dledger-segments");
    let ns = "127.0.0.1:9";
    let ip = "127.0.0.22";
    let mut ports = Ports::default();
    let raft: Vec<u16> = (0..3).map(|_| ports.any(ip)).collect();
    let peers = format!(
        "n0-{ip}:{};n1-{ip}:{};n2-{ip}:{}",
        raft[0], raft[1], raft[2]
    );
    let mut nodes = Vec::new();
    for (i, size) in [(0, "16777216"), (1, "33554432")] {
        let port = ports.broker(ip);
        let store = dir.path().join(format!("n{i}"));
        let text = conf_text(ip, port, ns, &store, &peers, i).replace(
            "mappedFileSizeCommitLog=16777216",
            &format!("mappedFileSizeCommitLog={size}"),
        );
        nodes.push(start_node(&dir, ip, port, i, text));
    }
    let logged = first_logged(&nodes, "mappedFileSizeCommitLog mismatch");
    assert!(
        logged.contains("=16777216") && logged.contains("=33554432"),
        "{logged}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(nodes
        .iter()
        .all(|n| n.runtime().get("dledgerRole").map(String::as_str) != Some("LEADER")));
}

#[test]
fn a_send_without_a_quorum_is_flush_slave_timeout_not_busy() {
    let mut g = Group::start();
    let leader = g.leader(Duration::from_secs(30));
    create_topic(&g, leader);
    for i in (0..3).filter(|i| *i != leader) {
        g.nodes[i].kill();
    }
    let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
    c.set_read_timeout(Duration::from_secs(20));
    let req = crate::util::send_req(
        TOPIC,
        0,
        b"alone",
        None,
        true,
        ferrocket_protocol::SerializeType::Json,
    );
    let t = Instant::now();
    let r = c.call(req).unwrap();
    // Stored on the leader, not confirmed by a majority: RocketMQ's FLUSH_SLAVE_TIMEOUT, which
    // clients report without retrying (a retry could duplicate it once the quorum is back).
    assert_eq!(
        r.code,
        ferrocket_protocol::ResponseCode::FLUSH_SLAVE_TIMEOUT as i32,
        "{:?}",
        r.remark
    );
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "waited for slaveTimeout"
    );
}

#[test]
fn the_whole_group_restarted_elects_again_and_keeps_its_messages() {
    let mut g = Group::start();
    let leader = g.leader(Duration::from_secs(30));
    create_topic(&g, leader);
    let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
    for i in 0..10 {
        let req = crate::util::send_req(
            TOPIC,
            i % 4,
            format!("before-{i}").as_bytes(),
            None,
            true,
            ferrocket_protocol::SerializeType::Json,
        );
        assert_eq!(c.call(req).unwrap().code, 0);
    }
    drop(c);
    for n in &mut g.nodes {
        n.kill();
    }
    for n in &mut g.nodes {
        n.start();
    }
    // The old leader comes back with its own vote; whoever leads, it must become ready. Right
    // after three nodes start together, leadership may still move once (a node whose election
    // timer fired before the first heartbeat reached it wins a later term): follow it.
    let t = Instant::now();
    let leader = loop {
        let leader = g.leader(Duration::from_secs(30));
        let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
        let req = crate::util::send_req(
            TOPIC,
            0,
            b"after",
            None,
            true,
            ferrocket_protocol::SerializeType::Json,
        );
        let r = c.call(req).unwrap();
        if r.code == 0 {
            break leader;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{:?}", r.remark);
        std::thread::sleep(Duration::from_millis(100));
    };
    let bodies = all_bodies(&g.messages_on(leader));
    assert_eq!(bodies.len(), 11, "{bodies:?}");
    assert!(bodies.contains(&"after".to_string()));
}

/// Messages near `maxMessageSize` (4 MiB by default) make Raft RPCs larger than gRPC's usual
/// 4 MiB limit, and a follower that was away needs several of them at once: it must still catch
/// up (the replication once stalled for good on "decoded message length too large").
#[test]
fn a_follower_catches_up_on_messages_near_the_size_limit() {
    let mut g = Group::start();
    let leader = g.leader(Duration::from_secs(30));
    create_topic(&g, leader);
    let away = (leader + 1) % 3;
    g.nodes[away].kill();
    let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
    c.set_read_timeout(Duration::from_secs(20));
    let mut sent = Vec::new();
    for i in 0..6 {
        let mut body = format!("big-{i}-").into_bytes();
        body.resize(3_500_000, b'a' + i as u8);
        let req = crate::util::send_req(
            TOPIC,
            i % 4,
            &body,
            None,
            true,
            ferrocket_protocol::SerializeType::Json,
        );
        let r = c.call(req).unwrap();
        assert_eq!(r.code, 0, "{:?}", r.remark);
        sent.push(String::from_utf8(body).unwrap());
    }
    g.nodes[away].start();
    caught_up(&g, away, leader, Duration::from_secs(60));
    let mut got = all_bodies(&g.messages_on(away));
    got.sort();
    sent.sort();
    assert!(
        got == sent,
        "the follower holds {} of the 6 messages",
        got.len()
    );
}

/// Bytes of a node's Raft log segments.
fn raft_log_bytes(n: &Node) -> u64 {
    std::fs::read_dir(n.store.join("dledger"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("raft-"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Sends one message to queue `q` through `c`, retrying for up to `within` while the node is
/// not (yet) the ready leader.
fn send_until_ok(c: &mut RawClient, q: i32, body: &[u8], within: Duration) {
    let req = crate::util::send_req(
        TOPIC,
        q,
        body,
        None,
        true,
        ferrocket_protocol::SerializeType::Json,
    );
    let t = Instant::now();
    loop {
        let r = c.call(req.clone()).unwrap();
        if r.code == 0 {
            return;
        }
        assert!(t.elapsed() < within, "{:?}", r.remark);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `n` messages of 20 KB through `c`.
fn send_big(c: &mut RawClient, prefix: &str, n: usize) {
    for i in 0..n {
        let mut body = format!("{prefix}-{i}-").into_bytes();
        body.resize(20_000, b'z');
        send_until_ok(c, (i % 4) as i32, &body, Duration::from_secs(10));
    }
}

/// Waits until node `i`'s Raft log is under 4 MiB (compaction looks every second).
fn log_compacted(g: &Group, i: usize) {
    let t = Instant::now();
    while raft_log_bytes(&g.nodes[i]) > 4 << 20 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "n{i}'s Raft log stays at {} bytes",
            raft_log_bytes(&g.nodes[i])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// With `dLegerRaftLogMaxMb=1` the Raft log is compacted while 14 MiB of messages flow: every
/// node's log stays a few MiB; a follower that was away while the log it needed was purged
/// catches up by copying the commitlog it lacks from a peer, and so does a wiped one; then the
/// leader is killed, its successor (with a compacted log of its own) serves, and the old leader
/// catches up from it.
#[test]
fn the_raft_log_stays_bounded_and_nodes_behind_it_catch_up() {
    let mut g = Group::start_with("dLegerRaftLogMaxMb=1\n");
    let leader = g.leader(Duration::from_secs(30));
    create_topic(&g, leader);
    let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
    c.set_read_timeout(Duration::from_secs(20));
    send_big(&mut c, "before", 20);
    let away = (leader + 1) % 3;
    caught_up(&g, away, leader, Duration::from_secs(30));
    g.nodes[away].kill();
    send_big(&mut c, "while-away", 600);
    log_compacted(&g, leader);
    g.nodes[away].start();
    caught_up(&g, away, leader, Duration::from_secs(60));
    assert_eq!(all_bodies(&g.messages_on(away)).len(), 620);

    let wiped = (leader + 2) % 3;
    g.nodes[wiped].kill();
    std::fs::remove_dir_all(&g.nodes[wiped].store).unwrap();
    g.nodes[wiped].start();
    caught_up(&g, wiped, leader, Duration::from_secs(60));
    send_big(&mut c, "after", 10);
    caught_up(&g, wiped, leader, Duration::from_secs(30));
    for i in 0..3 {
        log_compacted(&g, i);
    }

    g.nodes[leader].kill();
    let new = g.leader(Duration::from_secs(10));
    let mut c = RawClient::connect(&g.nodes[new].addr()).unwrap();
    c.set_read_timeout(Duration::from_secs(20));
    send_big(&mut c, "new-leader", 100);
    log_compacted(&g, new);
    g.nodes[leader].start();
    caught_up(&g, leader, new, Duration::from_secs(60));
    assert_eq!(all_bodies(&g.messages_on(leader)).len(), 730);
}

/// Makes node `i` count its disk as full (any use past 1%, looked at every 200 ms) from its
/// next start.
fn disk_full_from_next_start(g: &Group, i: usize) {
    let mut conf = std::fs::read_to_string(&g.nodes[i].conf).unwrap();
    conf.push_str("diskSpaceWarningLevelRatio=1\ncleanResourceInterval=200\n");
    std::fs::write(&g.nodes[i].conf, conf).unwrap();
}

/// A node whose disk is past `diskSpaceWarningLevelRatio` still applies every entry the group
/// committed (a follower that skipped them would hold a commitlog that differs from the
/// others' from then on); a leader in that state refuses new sends before proposing them.
#[test]
fn a_full_disk_refuses_new_sends_but_never_skips_committed_ones() {
    let mut g = Group::start();
    let leader = g.leader(Duration::from_secs(30));
    create_topic(&g, leader);
    let full = (leader + 1) % 3;
    g.nodes[full].kill();
    disk_full_from_next_start(&g, full);
    g.nodes[full].start();
    first_logged(&g.nodes[full..=full], "disk full");

    let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
    c.set_read_timeout(Duration::from_secs(20));
    for i in 0..20 {
        let body = format!("while-full-{i}");
        send_until_ok(&mut c, i % 4, body.as_bytes(), Duration::from_secs(10));
    }
    drop(c);
    same_commitlog(&g, full, leader, Duration::from_secs(10));
    assert!(!g.commitlog_of(leader).is_empty());

    // Every disk full: whoever leads refuses, and nothing reaches any commitlog.
    for i in 0..3 {
        g.nodes[i].kill();
        if i != full {
            disk_full_from_next_start(&g, i);
        }
    }
    for n in &mut g.nodes {
        n.start();
    }
    let leader = g.leader(Duration::from_secs(30));
    first_logged(&g.nodes[leader..=leader], "disk full");
    let before: Vec<Vec<u8>> = (0..3).map(|i| g.commitlog_of(i)).collect();
    let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
    let req = crate::util::send_req(
        TOPIC,
        0,
        b"refused",
        None,
        true,
        ferrocket_protocol::SerializeType::Json,
    );
    let r = c.call(req).unwrap();
    assert_eq!(
        r.code,
        ferrocket_protocol::ResponseCode::SERVICE_NOT_AVAILABLE as i32,
        "{:?}",
        r.remark
    );
    assert!(r
        .remark
        .unwrap_or_default()
        .contains("broker's disk is full"));
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<Vec<u8>> = (0..3).map(|i| g.commitlog_of(i)).collect();
    assert!(before == after, "a refused send reached a commitlog");
}

/// A hung follower (SIGSTOP): the leader's AppendEntries stream to it times out while the other
/// follower keeps the quorum, so sends go on; when it wakes, the leader opens a new stream, the
/// late answers on the old one are dropped, and it catches up to a byte-identical commitlog.
#[test]
fn a_hung_follower_does_not_stop_sends_and_catches_up_when_it_wakes() {
    let g = Group::start();
    let leader = g.leader(Duration::from_secs(30));
    create_topic(&g, leader);
    let hung = (leader + 1) % 3;
    let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
    c.set_read_timeout(Duration::from_secs(20));
    send_until_ok(&mut c, 0, b"before", Duration::from_secs(10));
    g.nodes[hung].guard.as_ref().unwrap().signal(libc::SIGSTOP);
    for i in 0..40 {
        let req = crate::util::send_req(
            TOPIC,
            i % 4,
            format!("while-hung-{i}").as_bytes(),
            None,
            true,
            ferrocket_protocol::SerializeType::Json,
        );
        let r = c.call(req).unwrap();
        assert_eq!(r.code, 0, "send {i} while a follower hung: {:?}", r.remark);
        if i == 20 {
            // Long enough for the leader's call to the hung node to time out.
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    g.nodes[hung].guard.as_ref().unwrap().signal(libc::SIGCONT);
    send_until_ok(&mut c, 1, b"after", Duration::from_secs(10));
    same_commitlog(&g, hung, leader, Duration::from_secs(20));
    let bodies = all_bodies(&g.messages_on(hung));
    assert_eq!(bodies.len(), 42, "{bodies:?}");
}
