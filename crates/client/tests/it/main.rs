//! The client against real `mqnamesrv` and `mqbroker` processes on loopback; each test has its
//! own 127.0.0.x address. Every wait is bounded.

mod cluster;
mod faults;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::Cluster;
use ferrocket_client::{
    Admin, ClientConfig, ConsumeFrom, ConsumeResult, Message, Producer, PullConsumer, PushConsumer,
    SendStatus, SerializeType,
};

/// Queues of `topic` a consumer owns (it also owns a share of its retry topic).
fn owned(c: &PushConsumer, topic: &str) -> usize {
    c.assignment().iter().filter(|q| q.topic == topic).count()
}

/// A producer of `group` on the cluster's name server.
fn producer(c: &Cluster, group: &str) -> Producer {
    Producer::builder()
        .config(c.config())
        .group(group)
        .build()
        .unwrap()
}

/// How many times each body was consumed.
type Counts = Arc<Mutex<BTreeMap<String, usize>>>;

/// Starts a push consumer (instance `instance`) of `topic` in `group` from the first offset,
/// rebalancing every second and committing every `commit_ms`, that counts each body in `got`.
async fn counting_consumer(
    c: &Cluster,
    instance: &str,
    group: &str,
    topic: &str,
    commit_ms: u64,
    got: &Counts,
) -> ferrocket_client::Result<PushConsumer> {
    let g = Arc::clone(got);
    PushConsumer::builder()
        .config(c.config().instance_name(instance))
        .group(group)
        .subscribe(topic, "*")
        .consume_from(ConsumeFrom::First)
        .rebalance_interval(Duration::from_secs(1))
        .commit_interval(Duration::from_millis(commit_ms))
        .listener(move |m| {
            let g = Arc::clone(&g);
            async move {
                *g.lock()
                    .unwrap()
                    .entry(String::from_utf8_lossy(&m.body).to_string())
                    .or_default() += 1;
                ConsumeResult::Success
            }
        })
        .start()
        .await
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Before a new topic has a route, sends go through TBW102's route (8 queues) but the broker
/// creates the topic with the 4 queues the request asks for: every first send, plain or
/// ordered, must pick one of those 4 (a send to queue 4-7 was refused with SYSTEM_ERROR).
#[test]
fn first_sends_to_a_new_topic_use_its_four_queues() {
    let c = Cluster::start("127.0.0.73");
    rt().block_on(async {
        let p = Producer::builder()
            .config(c.config())
            .group("pg_fresh")
            .retries(0)
            .build()
            .unwrap();
        let mut queues = BTreeSet::new();
        for i in 0..16 {
            let r = p
                .send(Message::new("FreshTopic", format!("m-{i}")))
                .await
                .unwrap_or_else(|e| panic!("send {i} to a new topic: {e}"));
            assert_eq!(r.status, SendStatus::SendOk);
            queues.insert(r.queue.queue_id);
        }
        assert!(
            queues.iter().all(|&q| q < 4),
            "queues used before and after the route appeared: {queues:?}"
        );
        for key in 0..16 {
            let r = p
                .send_ordered(
                    Message::new("FreshOrdered", format!("o-{key}")),
                    &format!("key-{key}"),
                )
                .await
                .unwrap_or_else(|e| panic!("ordered send {key} to a new topic: {e}"));
            assert!(r.queue.queue_id < 4, "ordered send went to {:?}", r.queue);
        }
    });
}

#[test]
fn produce_pull_seek_commit_and_admin() {
    let c = Cluster::start("127.0.0.61");
    produce_pull_seek_commit_and_admin_with(c.config());
}

/// The same with every request header in RocketMQ's binary serialization: the name server and
/// the broker answer in kind and every client path reads those answers.
#[test]
fn produce_pull_seek_commit_and_admin_in_binary_headers() {
    let c = Cluster::start("127.0.0.76");
    produce_pull_seek_commit_and_admin_with(c.config().serialize_type(SerializeType::RocketMq));
}

fn produce_pull_seek_commit_and_admin_with(config: ClientConfig) {
    rt().block_on(async {
        let admin = Admin::new(config.clone()).unwrap();
        admin
            .create_topic("DefaultCluster", "Orders", 4)
            .await
            .unwrap();
        let p = Producer::builder()
            .config(config.clone())
            .group("pg")
            .build()
            .unwrap();

        // Plain, keyed, tagged, big (compressed), ordered, batch and oneway sends.
        let r = p
            .send(
                Message::new("Orders", "first")
                    .with_tags("TagA")
                    .with_keys(["k-1"]),
            )
            .await
            .unwrap();
        assert_eq!(r.status, SendStatus::SendOk);
        let big = vec![b'z'; 64 * 1024];
        p.send(Message::new("Orders", big.clone()).with_tags("Big"))
            .await
            .unwrap();
        let mut ordered = Vec::new();
        for i in 0..5 {
            let r = p
                .send_ordered(
                    Message::new("Orders", format!("o-{i}")).with_tags("Ord"),
                    "customer-7",
                )
                .await
                .unwrap();
            ordered.push(r.queue.clone());
        }
        assert!(
            ordered.windows(2).all(|w| w[0] == w[1]),
            "one key, one queue"
        );
        let batch: Vec<Message> = (0..3)
            .map(|i| Message::new("Orders", format!("b-{i}")).with_tags("Batch"))
            .collect();
        let br = p.send_batch(batch).await.unwrap();
        assert_eq!(br.msg_id.split(',').count(), 3);
        p.send_oneway(Message::new("Orders", "oneway").with_tags("One"))
            .await
            .unwrap();

        // Pull everything back from the beginning.
        let consumer = PullConsumer::builder()
            .config(config.clone())
            .group("pull-g")
            .consume_from(ConsumeFrom::First)
            .build()
            .unwrap();
        consumer.subscribe("Orders", "*").await.unwrap();
        let mut got: Vec<ferrocket_client::MessageExt> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < 11 && Instant::now() < deadline {
            got.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
        }
        assert_eq!(got.len(), 11, "every message sent");
        let bodies: BTreeSet<Vec<u8>> = got.iter().map(|m| m.body.to_vec()).collect();
        assert!(bodies.contains(&big), "compressed body comes back inflated");
        let in_order: Vec<&str> = got
            .iter()
            .filter(|m| m.tags() == Some("Ord"))
            .map(|m| std::str::from_utf8(&m.body).unwrap())
            .collect();
        assert_eq!(in_order, ["o-0", "o-1", "o-2", "o-3", "o-4"]);

        // Seek back, commit, and see the committed offset.
        let q = ordered[0].clone();
        consumer.seek(&q, 2).await.unwrap();
        let again = consumer.poll(Duration::from_secs(2)).await.unwrap();
        assert!(
            again.iter().any(|m| m.queue == q && m.queue_offset == 2),
            "{again:?}"
        );
        consumer.commit().await.unwrap();
        let committed = consumer.committed(&q).await.unwrap();
        assert_eq!(committed, consumer.position(&q).await);

        // Admin views.
        let by_key = admin.query_msg_by_key("Orders", "k-1", 10).await.unwrap();
        assert_eq!(by_key.len(), 1);
        assert_eq!(&by_key[0].body[..], b"first");
        // The client-generated unique id (UNIQ_KEY) is indexed too.
        let by_uniq = admin
            .query_msg_by_key("Orders", &r.msg_id, 10)
            .await
            .unwrap();
        assert_eq!(by_uniq.len(), 1, "{}", r.msg_id);
        assert_eq!(&by_uniq[0].body[..], b"first");
        let by_id = admin.query_msg_by_id(&r.offset_msg_id).await.unwrap();
        assert_eq!(&by_id.body[..], b"first");
        let stats = admin.topic_stats("Orders").await.unwrap();
        assert_eq!(stats.len(), 4);
        assert_eq!(stats.iter().map(|s| s.max_offset).sum::<i64>(), 11);
        let progress = admin
            .consumer_progress("pull-g", Some("Orders"))
            .await
            .unwrap();
        assert!(
            progress.iter().any(|q| q.consumer_offset > 0),
            "{progress:?}"
        );
        let reset = admin
            .reset_offset_by_time("pull-g", "Orders", 0)
            .await
            .unwrap();
        assert!(reset.iter().all(|(_, o)| *o == 0));
        assert!(admin
            .topic_list()
            .await
            .unwrap()
            .contains(&"Orders".to_string()));
        assert_eq!(
            admin.topic_route("Orders").await.unwrap().queue_datas[0].write_queue_nums,
            4
        );
        let ci = admin.cluster_info().await.unwrap();
        assert!(ci.cluster_addr_table.contains_key("DefaultCluster"));
        p.shutdown().await;
    });
}

/// A push consumer with a tag filter gets exactly its tags; a message the listener refuses
/// comes back through the retry topic; delay levels hold messages back.
#[test]
fn push_consumer_filters_retries_and_delays() {
    let c = Cluster::start("127.0.0.62");
    rt().block_on(async {
        let admin = Admin::new(c.config()).unwrap();
        admin
            .create_topic("DefaultCluster", "Push", 2)
            .await
            .unwrap();
        let seen: Arc<Mutex<Vec<(String, i32, Instant)>>> = Arc::default();
        let s = Arc::clone(&seen);
        let consumer = PushConsumer::builder()
            .config(c.config())
            .group("push-g")
            .subscribe("Push", "TagA || TagD")
            .consume_from(ConsumeFrom::First)
            .listener(move |m| {
                let s = Arc::clone(&s);
                async move {
                    let body = String::from_utf8_lossy(&m.body).to_string();
                    s.lock()
                        .unwrap()
                        .push((body.clone(), m.reconsume_times, Instant::now()));
                    if body == "refuse-once" && m.reconsume_times == 0 {
                        ConsumeResult::Retry
                    } else {
                        ConsumeResult::Success
                    }
                }
            })
            .start()
            .await
            .unwrap();
        let p = producer(&c, "pg");
        for i in 0..10 {
            let tag = if i % 2 == 0 { "TagA" } else { "TagB" };
            p.send(Message::new("Push", format!("m-{i}")).with_tags(tag))
                .await
                .unwrap();
        }
        p.send(Message::new("Push", "refuse-once").with_tags("TagA"))
            .await
            .unwrap();
        let sent_delayed = Instant::now();
        p.send(
            Message::new("Push", "delayed")
                .with_tags("TagD")
                .with_delay_level(2),
        )
        .await
        .unwrap();

        wait_for(
            "filtered, retried and delayed messages",
            Duration::from_secs(30),
            || {
                let s = seen.lock().unwrap();
                s.iter().any(|(b, r, _)| b == "refuse-once" && *r == 1)
                    && s.iter().any(|(b, _, _)| b == "delayed")
                    && s.iter().filter(|(b, _, _)| b.starts_with("m-")).count() >= 5
            },
        )
        .await;
        let s = seen.lock().unwrap().clone();
        let plain: BTreeSet<&str> = s
            .iter()
            .filter(|(b, _, _)| b.starts_with("m-"))
            .map(|(b, _, _)| b.as_str())
            .collect();
        assert_eq!(
            plain,
            BTreeSet::from(["m-0", "m-2", "m-4", "m-6", "m-8"]),
            "TagB filtered out"
        );
        let delayed = s.iter().find(|(b, _, _)| b == "delayed").unwrap();
        assert!(
            delayed.2 - sent_delayed >= Duration::from_millis(900),
            "delay level held it back"
        );
        consumer.shutdown().await;
    });
}

/// Three consumers of one group share six queues; when one stops, the other two take its
/// queues and nothing sent meanwhile is lost (duplicates allowed, counted).
#[test]
fn three_consumers_rebalance_and_nothing_is_lost() {
    let c = Cluster::start("127.0.0.63");
    rt().block_on(async {
        let admin = Admin::new(c.config()).unwrap();
        admin
            .create_topic("DefaultCluster", "Shared", 6)
            .await
            .unwrap();
        let got = Counts::default();
        let mut consumers = Vec::new();
        for i in 0..3 {
            let consumer = counting_consumer(&c, &format!("c{i}"), "shared-g", "Shared", 500, &got)
                .await
                .unwrap();
            consumers.push(consumer);
        }
        wait_for("6 queues over 3 consumers", Duration::from_secs(20), || {
            consumers.iter().all(|c| owned(c, "Shared") == 2)
        })
        .await;
        let p = producer(&c, "pg");
        for i in 0..60 {
            p.send(Message::new("Shared", format!("s-{i}")))
                .await
                .unwrap();
        }
        wait_for("first 60", Duration::from_secs(20), || {
            got.lock().unwrap().len() == 60
        })
        .await;

        let leaving = consumers.pop().unwrap();
        leaving.shutdown().await;
        wait_for("6 queues over 2 consumers", Duration::from_secs(20), || {
            consumers.iter().all(|c| owned(c, "Shared") == 3)
        })
        .await;
        for i in 60..120 {
            p.send(Message::new("Shared", format!("s-{i}")))
                .await
                .unwrap();
        }
        wait_for("all 120", Duration::from_secs(30), || {
            got.lock().unwrap().len() == 120
        })
        .await;
        let dups: usize = got.lock().unwrap().values().map(|n| n - 1).sum();
        assert!(dups <= 60, "duplicates bounded by one rebalance: {dups}");
        for c in consumers {
            c.shutdown().await;
        }
    });
}

/// A producer keeps sending while the broker restarts; after it, sends succeed again and
/// every acknowledged message is readable.
#[test]
fn producer_survives_a_broker_restart() {
    let mut c = Cluster::start("127.0.0.64");
    let rt = rt();
    let p = rt.block_on(async {
        Admin::new(c.config())
            .unwrap()
            .create_topic("DefaultCluster", "Restart", 2)
            .await
            .unwrap();
        Producer::builder()
            .config(c.config())
            .group("pg")
            .retries(2)
            .build()
            .unwrap()
    });
    let mut acked = 0;
    for i in 0..20 {
        if rt
            .block_on(p.send(Message::new("Restart", format!("before-{i}"))))
            .is_ok()
        {
            acked += 1;
        }
    }
    assert_eq!(acked, 20);
    c.restart_broker();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = 0;
    while after < 20 {
        match rt.block_on(p.send(Message::new("Restart", format!("after-{after}")))) {
            Ok(_) => after += 1,
            Err(e) => {
                assert!(e.is_retryable() || e.is_routing(), "unexpected error {e}");
                assert!(Instant::now() < deadline, "sends never resumed: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    let total = rt.block_on(async {
        let admin = Admin::new(c.config()).unwrap();
        admin
            .topic_stats("Restart")
            .await
            .unwrap()
            .iter()
            .map(|s| s.max_offset)
            .sum::<i64>()
    });
    assert_eq!(total, 40, "every acknowledged send is stored once");
}

/// At-least-once through consumer restarts: a consumer stops (committing) and a new one of the
/// same group takes over while messages keep coming; nothing is missing, duplicates are few.
#[test]
fn at_least_once_through_consumer_restarts() {
    let c = Cluster::start("127.0.0.66");
    rt().block_on(async {
        let admin = Admin::new(c.config()).unwrap();
        admin
            .create_topic("DefaultCluster", "Restarts", 4)
            .await
            .unwrap();
        let p = producer(&c, "pg");
        let got = Counts::default();
        let mut sent = 0;
        for round in 0..3 {
            let name = format!("r{round}");
            let consumer = counting_consumer(&c, &name, "restart-g", "Restarts", 300, &got)
                .await
                .unwrap();
            for _ in 0..40 {
                p.send(Message::new("Restarts", format!("r-{sent}")))
                    .await
                    .unwrap();
                sent += 1;
            }
            wait_for("the round's messages", Duration::from_secs(20), || {
                got.lock().unwrap().len() == sent
            })
            .await;
            consumer.shutdown().await;
        }
        let g = got.lock().unwrap();
        assert_eq!(g.len(), 120, "nothing missing");
        let dups: usize = g.values().map(|n| n - 1).sum();
        assert!(
            dups <= 20,
            "shutdown commits offsets, so restarts re-read little: {dups}"
        );
    });
}

/// Broadcasting: every consumer of the group gets every message, offsets kept in a local file.
#[test]
fn broadcasting_delivers_to_every_consumer() {
    let c = Cluster::start("127.0.0.67");
    let dir = ferrocket_testkit::TempDir::new("bcast");
    rt().block_on(async {
        let admin = Admin::new(c.config()).unwrap();
        admin
            .create_topic("DefaultCluster", "Bcast", 2)
            .await
            .unwrap();
        let counts: Vec<Arc<Mutex<BTreeSet<String>>>> = (0..2).map(|_| Arc::default()).collect();
        let mut consumers = Vec::new();
        for (i, seen) in counts.iter().enumerate() {
            let s = Arc::clone(seen);
            consumers.push(
                PushConsumer::builder()
                    .config(c.config().instance_name(format!("b{i}")))
                    .group("bcast-g")
                    .subscribe("Bcast", "*")
                    .message_model(ferrocket_client::MessageModel::Broadcasting)
                    .consume_from(ConsumeFrom::First)
                    .offset_dir(dir.path().join(format!("c{i}")))
                    .commit_interval(Duration::from_millis(200))
                    .listener(move |m| {
                        let s = Arc::clone(&s);
                        async move {
                            s.lock()
                                .unwrap()
                                .insert(String::from_utf8_lossy(&m.body).to_string());
                            ConsumeResult::Success
                        }
                    })
                    .start()
                    .await
                    .unwrap(),
            );
        }
        let p = producer(&c, "pg");
        for i in 0..20 {
            p.send(Message::new("Bcast", format!("b-{i}")))
                .await
                .unwrap();
        }
        wait_for("both consumers see all 20", Duration::from_secs(20), || {
            counts.iter().all(|s| s.lock().unwrap().len() == 20)
        })
        .await;
        for c in consumers {
            c.shutdown().await;
        }
        assert!(
            dir.path().join("c0").join("bcast-g.json").exists(),
            "local offset file"
        );
    });
}

/// Name-server failover: with the first name server of the list dead, routes come from the next.
#[test]
fn dead_first_name_server_is_skipped() {
    let c = Cluster::start("127.0.0.68");
    let dead = std::net::TcpListener::bind("127.0.0.68:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    rt().block_on(async {
        let config = ferrocket_client::ClientConfig::new(format!("{dead};{}", c.namesrv))
            .timeout(Duration::from_secs(2));
        let p = Producer::builder()
            .config(config.clone())
            .group("pg")
            .build()
            .unwrap();
        let r = p.send(Message::new("Failover", "x")).await.unwrap();
        assert_eq!(r.status, SendStatus::SendOk);
        let admin = Admin::new(config).unwrap();
        // The topic was created by the send; the broker registers it with the name servers
        // right after (not before answering the send, as in RocketMQ), so allow that moment.
        let t = std::time::Instant::now();
        loop {
            let topics = admin.topic_list().await.unwrap();
            if topics.contains(&"Failover".to_string()) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "Failover not routed: {topics:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Transactions: commit shows the message once, rollback never, and an unknown outcome is
/// checked back and resolved by the checker, exactly once.
#[test]
fn transactions_commit_rollback_and_check_back() {
    let c = Cluster::start_with(
        "127.0.0.69",
        "transactionTimeOut=500\ntransactionCheckInterval=300\ntransactionCheckMax=3",
    );
    rt().block_on(async {
        let admin = Admin::new(c.config()).unwrap();
        admin.create_topic("DefaultCluster", "Tx", 2).await.unwrap();
        let p = producer(&c, "tx-pg");
        let checks = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&checks);
        p.set_transaction_checker(move |m| {
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&m.body).to_string());
            if &m.body[..] == b"unknown-then-commit" {
                ferrocket_client::LocalTransactionState::Commit
            } else {
                ferrocket_client::LocalTransactionState::Rollback
            }
        });
        use ferrocket_client::LocalTransactionState as S;
        for (body, state) in [
            ("committed", S::Commit),
            ("rolled-back", S::Rollback),
            ("unknown-then-commit", S::Unknown),
        ] {
            let (_, s) = p
                .send_in_transaction(Message::new("Tx", body), |_| async move { state })
                .await
                .unwrap();
            assert_eq!(s, state);
        }
        let consumer = PullConsumer::builder()
            .config(c.config())
            .group("tx-cg")
            .consume_from(ConsumeFrom::First)
            .build()
            .unwrap();
        consumer.subscribe("Tx", "*").await.unwrap();
        let mut got: Vec<String> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < 2 && Instant::now() < deadline {
            for m in consumer.poll(Duration::from_millis(300)).await.unwrap() {
                got.push(String::from_utf8_lossy(&m.body).to_string());
            }
        }
        got.sort();
        assert_eq!(got, ["committed", "unknown-then-commit"]);
        // Nothing more arrives, and the unknown one was checked exactly once.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(consumer
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(*checks.lock().unwrap(), ["unknown-then-commit"]);
        // Half messages never reach consumers of the real topic.
        let stats = admin.topic_stats("Tx").await.unwrap();
        assert_eq!(stats.iter().map(|s| s.max_offset).sum::<i64>(), 2);
    });
}

/// A half message pending when the broker restarts is still checked back after it.
#[test]
fn pending_transaction_survives_a_broker_restart() {
    let mut c = Cluster::start_with(
        "127.0.0.70",
        "transactionTimeOut=1500\ntransactionCheckInterval=300",
    );
    let rt = rt();
    let p = rt.block_on(async {
        Admin::new(c.config())
            .unwrap()
            .create_topic("DefaultCluster", "TxR", 1)
            .await
            .unwrap();
        let p = producer(&c, "txr-pg");
        p.set_transaction_checker(|_| ferrocket_client::LocalTransactionState::Commit);
        p.send_in_transaction(Message::new("TxR", "pending"), |_| async {
            ferrocket_client::LocalTransactionState::Unknown
        })
        .await
        .unwrap();
        p
    });
    c.restart_broker();
    rt.block_on(async {
        // The producer keeps working (and so reconnects and announces itself again).
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.send(Message::new("TxR", "plain")).await.is_err() {
            assert!(Instant::now() < deadline, "sends never resumed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let consumer = PullConsumer::builder()
            .config(c.config())
            .group("txr-cg")
            .consume_from(ConsumeFrom::First)
            .build()
            .unwrap();
        consumer.subscribe("TxR", "*").await.unwrap();
        let mut got = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !got.contains("pending") && Instant::now() < deadline {
            for m in consumer.poll(Duration::from_millis(300)).await.unwrap() {
                got.insert(String::from_utf8_lossy(&m.body).to_string());
            }
        }
        assert!(
            got.contains("pending"),
            "checked back and committed after the restart: {got:?}"
        );
    });
}

/// The orderly listener sees one queue's messages strictly in order, one at a time, and a
/// refused message is retried in place before the next one.
#[test]
fn orderly_listener_keeps_queue_order() {
    let c = Cluster::start("127.0.0.71");
    rt().block_on(async {
        let admin = Admin::new(c.config()).unwrap();
        admin
            .create_topic("DefaultCluster", "Ordered", 2)
            .await
            .unwrap();
        let p = producer(&c, "pg");
        for i in 0..20 {
            p.send_ordered(Message::new("Ordered", format!("{i}")), "one-key")
                .await
                .unwrap();
        }
        let seen: Arc<Mutex<Vec<u32>>> = Arc::default();
        let s = Arc::clone(&seen);
        let refused_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let consumer = PushConsumer::builder()
            .config(c.config())
            .group("ordered-g")
            .subscribe("Ordered", "*")
            .consume_from(ConsumeFrom::First)
            .orderly_listener(move |m| {
                let s = Arc::clone(&s);
                let refused = Arc::clone(&refused_once);
                async move {
                    let n: u32 = String::from_utf8_lossy(&m.body).parse().unwrap();
                    if n == 7 && !refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        return ConsumeResult::Retry;
                    }
                    s.lock().unwrap().push(n);
                    ConsumeResult::Success
                }
            })
            .start()
            .await
            .unwrap();
        wait_for("20 in order", Duration::from_secs(20), || {
            seen.lock().unwrap().len() >= 20
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), (0..20).collect::<Vec<u32>>());
        consumer.shutdown().await;
    });
}

/// A new group starting from a timestamp skips what was stored before it.
#[test]
fn consume_from_timestamp() {
    let c = Cluster::start("127.0.0.72");
    rt().block_on(async {
        let admin = Admin::new(c.config()).unwrap();
        admin
            .create_topic("DefaultCluster", "Since", 1)
            .await
            .unwrap();
        let p = producer(&c, "pg");
        for i in 0..5 {
            p.send(Message::new("Since", format!("old-{i}")))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        tokio::time::sleep(Duration::from_millis(50)).await;
        for i in 0..5 {
            p.send(Message::new("Since", format!("new-{i}")))
                .await
                .unwrap();
        }
        let consumer = PullConsumer::builder()
            .config(c.config())
            .group("since-g")
            .consume_from(ConsumeFrom::Timestamp(since))
            .build()
            .unwrap();
        consumer.subscribe("Since", "*").await.unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 5 && Instant::now() < deadline {
            for m in consumer.poll(Duration::from_millis(300)).await.unwrap() {
                got.push(String::from_utf8_lossy(&m.body).to_string());
            }
        }
        assert_eq!(got, ["new-0", "new-1", "new-2", "new-3", "new-4"]);
    });
}

/// Request-reply: a consumer answers each request with `Message::reply_to`, sent by its own
/// producer with SEND_REPLY_MESSAGE_V2; the broker pushes the reply back to the requesting
/// client by its id and stores it in `DefaultCluster_REPLY_TOPIC`; a request nobody answers
/// times out.
#[test]
fn request_reply_round_trips_through_the_broker() {
    let c = Cluster::start("127.0.0.78");
    rt().block_on(async {
        let admin = Admin::new(c.config()).unwrap();
        admin
            .create_topic("DefaultCluster", "PriceQuery", 2)
            .await
            .unwrap();
        admin
            .create_topic("DefaultCluster", "Unanswered", 1)
            .await
            .unwrap();
        let replier = Arc::new(producer(&c, "replier-pg"));
        let r = Arc::clone(&replier);
        let consumer = PushConsumer::builder()
            .config(c.config().instance_name("replier"))
            .group("replier-cg")
            .subscribe("PriceQuery", "*")
            .consume_from(ConsumeFrom::First)
            .listener(move |m| {
                let r = Arc::clone(&r);
                async move {
                    let body = String::from_utf8_lossy(&m.body).replace("ping", "pong");
                    match Message::reply_to(&m, body) {
                        Ok(reply) => match r.send(reply).await {
                            Ok(_) => ConsumeResult::Success,
                            Err(_) => ConsumeResult::Retry,
                        },
                        Err(e) => panic!("a request without what a reply needs: {e}"),
                    }
                }
            })
            .start()
            .await
            .unwrap();
        let requester = producer(&c, "requester-pg");
        for i in 0..5 {
            let reply = requester
                .request(
                    Message::new("PriceQuery", format!("ping-{i}")),
                    Duration::from_secs(15),
                )
                .await
                .unwrap_or_else(|e| panic!("request {i}: {e}"));
            assert_eq!(&reply.body[..], format!("pong-{i}").as_bytes());
            assert!(reply.is_reply());
            assert_eq!(
                reply.property("REPLY_TO_CLIENT"),
                Some(requester.client_id())
            );
            assert!(reply.property("CORRELATION_ID").is_some());
        }
        let stored = admin
            .topic_stats("DefaultCluster_REPLY_TOPIC")
            .await
            .unwrap();
        assert_eq!(stored.iter().map(|s| s.max_offset).sum::<i64>(), 5);

        let t = Instant::now();
        let e = requester
            .request(
                Message::new("Unanswered", "hello?"),
                Duration::from_millis(800),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, ferrocket_client::ClientError::Timeout { .. }),
            "{e}"
        );
        assert!(t.elapsed() < Duration::from_secs(10));
        consumer.shutdown().await;
        requester.shutdown().await;
    });
}

/// `mqadmin updateSubGroup -s false` stops a group's pulls (the broker answers NO_PERMISSION)
/// and `-s true` turns it back on, as the operations guide says for a group stopped by broker
/// protection.
#[test]
fn mqadmin_update_sub_group_turns_consumption_off_and_on() {
    let c = Cluster::start("127.0.0.79");
    let mqadmin_with = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_mqadmin"))
            .args(["updateSubGroup", "-n", &c.namesrv, "-g", "switch-g"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let mqadmin = |enable: &str| mqadmin_with(&["-c", "DefaultCluster", "-s", enable]);
    rt().block_on(async {
        let p = producer(&c, "switch-pg");
        p.send(Message::new("Switched", "m")).await.unwrap();
        let consumer = PullConsumer::builder()
            .config(c.config())
            .group("switch-g")
            .consume_from(ConsumeFrom::First)
            .build()
            .unwrap();
        consumer.subscribe("Switched", "*").await.unwrap();
        mqadmin("false");
        // The message is there from the start; a stopped group's pulls are refused.
        let mut refused = Vec::new();
        for _ in 0..4 {
            refused.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
        }
        assert!(refused.is_empty(), "a stopped group got {refused:?}");
        mqadmin("true");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.is_empty() && Instant::now() < deadline {
            got.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
        }
        assert_eq!(got.len(), 1);

        // The other settings, to one broker by address, as Java's options spell them.
        mqadmin_with(&[
            "-b", &c.broker, "-r", "5", "-w", "0", "-m", "true", "-q", "2",
        ]);
        let pool = ferrocket_client::transport::Pool::new(Duration::from_secs(3), None);
        let r = pool
            .call(
                &c.broker,
                ferrocket_protocol::RemotingCommand::request(
                    ferrocket_protocol::RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
                ),
                Duration::from_secs(3),
            )
            .await
            .unwrap();
        let all: serde_json::Value = ferrocket_protocol::fastjson::from_slice(&r.body).unwrap();
        let g = &all["subscriptionGroupTable"]["switch-g"];
        assert_eq!(g["retryMaxTimes"], 5, "{g}");
        assert_eq!(g["whichBrokerWhenConsumeSlowly"], 0, "{g}");
        assert_eq!(g["consumeFromMinEnable"], true, "{g}");
        assert_eq!(g["retryQueueNums"], 2, "{g}");
        assert_eq!(g["consumeEnable"], true, "{g}");
        p.shutdown().await;
    });
}
