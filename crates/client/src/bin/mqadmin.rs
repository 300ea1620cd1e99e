//! `mqadmin`: RocketMQ's admin tool, same subcommand names and short options, over the client
//! crate's admin API. `-n` or `NAMESRV_ADDR` names the name servers; `--json` prints JSON.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ferrocket_client::{
    Admin, ClientConfig, ConsumeFrom, Message, MessageExt, MessageQueue, Producer, PullConsumer,
};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "mqadmin", version, about = "Ferrocket / RocketMQ admin tool")]
struct Cli {
    /// Name servers, `host:port;host:port` (default: NAMESRV_ADDR).
    #[arg(short = 'n', long = "namesrvAddr", global = true)]
    namesrv: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create or update a topic on a cluster's masters or one broker.
    #[command(name = "updateTopic")]
    UpdateTopic {
        #[arg(short = 't')]
        topic: String,
        #[arg(short = 'c')]
        cluster: Option<String>,
        #[arg(short = 'b')]
        broker: Option<String>,
        #[arg(short = 'r', default_value_t = 8)]
        read_queues: i32,
        #[arg(short = 'w', default_value_t = 8)]
        write_queues: i32,
        #[arg(short = 'p', default_value_t = 6)]
        perm: i32,
        #[arg(short = 'o', default_value_t = false)]
        order: bool,
    },
    /// Delete a topic from a cluster and the name servers.
    #[command(name = "deleteTopic")]
    DeleteTopic {
        #[arg(short = 't')]
        topic: String,
        #[arg(short = 'c')]
        cluster: String,
    },
    /// Every topic.
    #[command(name = "topicList")]
    TopicList,
    /// A topic's route.
    #[command(name = "topicRoute")]
    TopicRoute {
        #[arg(short = 't')]
        topic: String,
    },
    /// A topic's queues and offsets.
    #[command(name = "topicStatus")]
    TopicStatus {
        #[arg(short = 't')]
        topic: String,
    },
    /// Brokers, roles, addresses, throughput and replication.
    #[command(name = "clusterList")]
    ClusterList,
    /// A broker's runtime figures.
    #[command(name = "brokerStatus")]
    BrokerStatus {
        #[arg(short = 'b')]
        broker: String,
    },
    /// A consumer group's backlog per queue.
    #[command(name = "consumerProgress")]
    ConsumerProgress {
        #[arg(short = 'g')]
        group: String,
        #[arg(short = 't')]
        topic: Option<String>,
    },
    /// A consumer group's connections and subscriptions.
    #[command(name = "consumerConnection")]
    ConsumerConnection {
        #[arg(short = 'g')]
        group: String,
    },
    /// A message by its offset id.
    #[command(name = "queryMsgById")]
    QueryMsgById {
        #[arg(short = 'i')]
        id: String,
    },
    /// Messages by key.
    #[command(name = "queryMsgByKey")]
    QueryMsgByKey {
        #[arg(short = 't')]
        topic: String,
        #[arg(short = 'k')]
        key: String,
        #[arg(short = 'm', default_value_t = 64)]
        max: i32,
    },
    /// Create or update a subscription group (every setting is replaced; the defaults are
    /// Java's mqadmin's).
    #[command(name = "updateSubGroup")]
    UpdateSubGroup {
        #[arg(short = 'g')]
        group: String,
        /// On the masters of this cluster...
        #[arg(short = 'c', required_unless_present = "broker")]
        cluster: Option<String>,
        /// ...or on this broker (`host:port`).
        #[arg(short = 'b')]
        broker: Option<String>,
        /// consumeEnable (`-s false` stops the group's pulls; `-s true` turns a group stopped by
        /// broker protection back on).
        #[arg(short = 's', default_value_t = true, action = clap::ArgAction::Set)]
        consume_enable: bool,
        /// consumeFromMinEnable.
        #[arg(short = 'm', default_value_t = false, action = clap::ArgAction::Set)]
        from_min: bool,
        /// consumeBroadcastEnable.
        #[arg(short = 'd', default_value_t = false, action = clap::ArgAction::Set)]
        broadcast: bool,
        /// consumeMessageOrderly.
        #[arg(short = 'o', default_value_t = false, action = clap::ArgAction::Set)]
        orderly: bool,
        #[arg(short = 'q', default_value_t = 1)]
        retry_queue_nums: i32,
        #[arg(short = 'r', default_value_t = 16)]
        retry_max_times: i32,
        /// brokerId to consume from.
        #[arg(short = 'i', default_value_t = 0)]
        broker_id: i64,
        /// whichBrokerWhenConsumeSlowly (with slaveReadEnable on the brokers).
        #[arg(short = 'w', default_value_t = 1)]
        which_broker_when_slow: i64,
        /// notifyConsumerIdsChangedEnable.
        #[arg(short = 'a', default_value_t = true, action = clap::ArgAction::Set)]
        notify_ids_changed: bool,
    },
    /// Move a group's offsets to a time (ms since the epoch, or `now`).
    #[command(name = "resetOffsetByTime")]
    ResetOffsetByTime {
        #[arg(short = 'g')]
        group: String,
        #[arg(short = 't')]
        topic: String,
        #[arg(short = 's')]
        timestamp: String,
    },
    /// Send one message.
    #[command(name = "sendMessage")]
    SendMessage {
        #[arg(short = 't')]
        topic: String,
        #[arg(short = 'p')]
        body: String,
        #[arg(short = 'k')]
        keys: Option<String>,
        #[arg(short = 'c')]
        tags: Option<String>,
        #[arg(short = 'b')]
        broker: Option<String>,
        #[arg(short = 'i')]
        queue: Option<i32>,
    },
    /// Print messages of a topic (from the oldest, or from `-o`/`-s`), without committing.
    #[command(name = "consumeMessage")]
    ConsumeMessage {
        #[arg(short = 't')]
        topic: String,
        #[arg(short = 'g', default_value = "TOOLS_CONSUMER")]
        group: String,
        #[arg(short = 'c', default_value_t = 128)]
        count: usize,
        #[arg(short = 'b')]
        broker: Option<String>,
        #[arg(short = 'i')]
        queue: Option<i32>,
        #[arg(short = 'o')]
        offset: Option<i64>,
        #[arg(short = 's')]
        begin_timestamp: Option<i64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mqadmin: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqadmin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints rows as aligned columns.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = w[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn msg_json(m: &MessageExt) -> serde_json::Value {
    let props: BTreeMap<&str, &str> = m.properties.iter().collect();
    json!({
        "msgId": m.msg_id, "offsetMsgId": m.offset_msg_id, "topic": m.topic(),
        "brokerName": m.queue.broker_name, "queueId": m.queue.queue_id, "queueOffset": m.queue_offset,
        "bornTimestamp": m.born_timestamp, "storeTimestamp": m.store_timestamp,
        "reconsumeTimes": m.reconsume_times, "properties": props,
        "body": String::from_utf8_lossy(&m.body),
    })
}

fn print_msg(m: &MessageExt, as_json: bool) {
    if as_json {
        println!("{}", msg_json(m));
        return;
    }
    println!(
        "MSGID: {}  OFFSET_ID: {}  QUEUE: {}  OFFSET: {}  TAGS: {}  KEYS: {}  BODY: {}",
        m.msg_id,
        m.offset_msg_id,
        m.queue,
        m.queue_offset,
        m.tags().unwrap_or(""),
        m.keys().unwrap_or(""),
        String::from_utf8_lossy(&m.body)
    );
}

async fn run(cli: Cli) -> Result<()> {
    let config = ClientConfig {
        namesrv_addr: cli.namesrv.clone(),
        ..ClientConfig::default()
    }
    .instance_name(format!("mqadmin-{}", std::process::id()));
    let admin = Admin::new(config.clone())?;
    let js = cli.json;
    match cli.cmd {
        Cmd::UpdateTopic {
            topic,
            cluster,
            broker,
            read_queues,
            write_queues,
            perm,
            order,
        } => {
            let queues = read_queues.max(write_queues);
            match (broker, cluster) {
                (Some(b), _) => {
                    admin
                        .create_topic_on(&b, &topic, queues, perm, order)
                        .await?
                }
                (None, Some(c)) => {
                    for (_, addr) in admin.masters(&c).await? {
                        admin
                            .create_topic_on(&addr, &topic, queues, perm, order)
                            .await?;
                    }
                }
                (None, None) => bail!("updateTopic needs -c CLUSTER or -b BROKER_ADDR"),
            }
            println!("create topic to {topic} success.");
        }
        Cmd::DeleteTopic { topic, cluster } => {
            admin.delete_topic(&cluster, &topic).await?;
            println!("delete topic [{topic}] from cluster [{cluster}] success.");
        }
        Cmd::TopicList => {
            let topics = admin.topic_list().await?;
            if js {
                print_json(&json!(topics));
            } else {
                topics.iter().for_each(|t| println!("{t}"));
            }
        }
        Cmd::TopicRoute { topic } => {
            let r = admin.topic_route(&topic).await?;
            print_json(&serde_json::to_value(&r)?);
        }
        Cmd::TopicStatus { topic } => {
            let stats = admin.topic_stats(&topic).await?;
            if js {
                print_json(&serde_json::to_value(&stats)?);
            } else {
                let rows: Vec<Vec<String>> = stats
                    .iter()
                    .map(|s| {
                        vec![
                            s.queue.clone(),
                            s.min_offset.to_string(),
                            s.max_offset.to_string(),
                            s.last_update_timestamp.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &["#Queue", "#MinOffset", "#MaxOffset", "#LastUpdated"],
                    &rows,
                );
            }
        }
        Cmd::ClusterList => cluster_list(&admin, js).await?,
        Cmd::BrokerStatus { broker } => {
            let rt = admin.broker_runtime(&broker).await?;
            if js {
                print_json(&json!(rt));
            } else {
                for (k, v) in rt {
                    println!("{k:<40}: {v}");
                }
            }
        }
        Cmd::ConsumerProgress { group, topic } => {
            let p = admin.consumer_progress(&group, topic.as_deref()).await?;
            if js {
                print_json(&serde_json::to_value(&p)?);
            } else {
                let rows: Vec<Vec<String>> = p
                    .iter()
                    .map(|q| {
                        vec![
                            q.topic.clone(),
                            q.broker_name.clone(),
                            q.queue_id.to_string(),
                            q.broker_offset.to_string(),
                            q.consumer_offset.to_string(),
                            q.diff.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "#Topic",
                        "#Broker Name",
                        "#QID",
                        "#Broker Offset",
                        "#Consumer Offset",
                        "#Diff",
                    ],
                    &rows,
                );
                println!("\nDiff Total: {}", p.iter().map(|q| q.diff).sum::<i64>());
            }
        }
        Cmd::ConsumerConnection { group } => {
            let c = admin.consumer_connections(&group).await?;
            print_json(&c);
        }
        Cmd::QueryMsgById { id } => {
            let m = admin.query_msg_by_id(&id).await?;
            print_msg(&m, js);
        }
        Cmd::QueryMsgByKey { topic, key, max } => {
            for m in admin.query_msg_by_key(&topic, &key, max).await? {
                print_msg(&m, js);
            }
        }
        Cmd::UpdateSubGroup {
            group,
            cluster,
            broker,
            consume_enable,
            from_min,
            broadcast,
            orderly,
            retry_queue_nums,
            retry_max_times,
            broker_id,
            which_broker_when_slow,
            notify_ids_changed,
        } => {
            let mut g = ferrocket_client::SubscriptionGroupConfig::new(&group);
            g.consume_enable = consume_enable;
            g.consume_from_min_enable = from_min;
            g.consume_broadcast_enable = broadcast;
            g.consume_message_orderly = orderly;
            g.retry_queue_nums = retry_queue_nums;
            g.retry_max_times = retry_max_times;
            g.broker_id = broker_id;
            g.which_broker_when_consume_slowly = which_broker_when_slow;
            g.notify_consumer_ids_changed_enable = notify_ids_changed;
            admin
                .put_sub_group(cluster.as_deref(), broker.as_deref(), &g)
                .await?;
            println!("create subscription group to {group} success.");
        }
        Cmd::ResetOffsetByTime {
            group,
            topic,
            timestamp,
        } => {
            let ts = if timestamp == "now" {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis() as i64
            } else {
                timestamp
                    .parse()
                    .with_context(|| format!("`{timestamp}` is not ms since the epoch or `now`"))?
            };
            let moved = admin.reset_offset_by_time(&group, &topic, ts).await?;
            let rows: Vec<Vec<String>> = moved
                .iter()
                .map(|(q, o)| vec![q.to_string(), o.to_string()])
                .collect();
            table(&["#Queue", "#NewOffset"], &rows);
        }
        Cmd::SendMessage {
            topic,
            body,
            keys,
            tags,
            broker,
            queue,
        } => {
            let producer = Producer::builder()
                .config(config)
                .group(format!("TOOLS_PRODUCER_{}", std::process::id()))
                .build()?;
            let mut msg = Message::new(&topic, body.into_bytes());
            if let Some(t) = tags {
                msg = msg.with_tags(t);
            }
            if let Some(k) = keys {
                msg = msg.with_keys(k.split_whitespace());
            }
            let r = match (broker, queue) {
                (Some(b), Some(q)) => {
                    let mq = MessageQueue {
                        topic: topic.clone(),
                        broker_name: b,
                        queue_id: q,
                    };
                    producer.send_to_queue(msg, &mq).await?
                }
                _ => producer.send(msg).await?,
            };
            producer.shutdown().await;
            if js {
                print_json(
                    &json!({"status": format!("{:?}", r.status), "msgId": r.msg_id, "offsetMsgId": r.offset_msg_id, "brokerName": r.queue.broker_name, "queueId": r.queue.queue_id, "queueOffset": r.queue_offset}),
                );
            } else {
                table(
                    &[
                        "#Broker Name",
                        "#QID",
                        "#Send Result",
                        "#MsgId",
                        "#OffsetMsgId",
                    ],
                    &[vec![
                        r.queue.broker_name.clone(),
                        r.queue.queue_id.to_string(),
                        format!("{:?}", r.status),
                        r.msg_id.clone(),
                        r.offset_msg_id.clone(),
                    ]],
                );
            }
        }
        Cmd::ConsumeMessage {
            topic,
            group,
            count,
            broker,
            queue,
            offset,
            begin_timestamp,
        } => {
            let from = begin_timestamp.map_or(ConsumeFrom::First, ConsumeFrom::Timestamp);
            let c = PullConsumer::builder()
                .config(config)
                .group(group)
                .consume_from(from)
                .use_committed(false)
                .build()?;
            c.subscribe(&topic, "*").await?;
            let mine: Vec<MessageQueue> = c
                .assignment()
                .await
                .into_iter()
                .filter(|q| {
                    broker.as_ref().is_none_or(|b| &q.broker_name == b)
                        && queue.is_none_or(|i| q.queue_id == i)
                })
                .collect();
            c.assign(mine.clone()).await;
            if let Some(o) = offset {
                for q in &mine {
                    c.seek(q, o).await?;
                }
            }
            let mut printed = 0;
            while printed < count {
                let msgs = c.poll(Duration::from_secs(2)).await?;
                if msgs.is_empty() {
                    break;
                }
                for m in msgs.iter().take(count - printed) {
                    print_msg(m, js);
                    printed += 1;
                }
            }
            if printed == 0 {
                eprintln!("no message in {topic}");
            }
        }
    }
    Ok(())
}

async fn cluster_list(admin: &Admin, js: bool) -> Result<()> {
    let ci = admin.cluster_info().await?;
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for (cluster, names) in &ci.cluster_addr_table {
        for name in names {
            let Some(b) = ci.broker_addr_table.get(name) else {
                continue;
            };
            for (id, addr) in &b.broker_addrs {
                let rt = admin.broker_runtime(addr).await.unwrap_or_default();
                let get = |k: &str| rt.get(k).cloned().unwrap_or_default();
                let tps = |k: &str| get(k).split_whitespace().next().unwrap_or("0").to_string();
                let role = if get("dledgerRole").is_empty() {
                    if *id == 0 {
                        "MASTER".to_string()
                    } else {
                        "SLAVE".to_string()
                    }
                } else {
                    get("dledgerRole")
                };
                let ha = if !get("dledgerRole").is_empty() {
                    String::new()
                } else if *id == 0 {
                    let n: usize = get("haSlaveCount").parse().unwrap_or(0);
                    let slaves: Vec<String> = (0..n)
                        .map(|i| {
                            let s = get(&format!("haSlave.{i}"));
                            let p: Vec<&str> = s.split_whitespace().collect();
                            format!(
                                "{} ack {} lag {}B",
                                p.first().unwrap_or(&""),
                                p.get(1).unwrap_or(&""),
                                p.get(2).unwrap_or(&"")
                            )
                        })
                        .collect();
                    slaves.join(", ")
                } else {
                    format!(
                        "master {} connected {}",
                        get("haMasterAddress"),
                        get("haConnected")
                    )
                };
                let raft = if get("dledgerTerm").is_empty() {
                    String::new()
                } else {
                    format!(
                        "term {} commit {}",
                        get("dledgerTerm"),
                        get("dledgerCommitIndex")
                    )
                };
                out.push(json!({"cluster": cluster, "brokerName": name, "brokerId": id, "addr": addr, "role": role, "version": get("brokerVersionDesc"), "inTps": tps("putTps"), "outTps": tps("getTransferedTps"), "replication": ha, "raft": raft, "runtime": rt}));
                rows.push(vec![
                    cluster.clone(),
                    name.clone(),
                    id.to_string(),
                    addr.clone(),
                    role,
                    get("brokerVersionDesc"),
                    tps("putTps"),
                    tps("getTransferedTps"),
                    format!("{ha}{raft}"),
                ]);
            }
        }
    }
    if js {
        print_json(&json!(out));
    } else {
        table(
            &[
                "#Cluster Name",
                "#Broker Name",
                "#BID",
                "#Addr",
                "#Role",
                "#Version",
                "#InTPS",
                "#OutTPS",
                "#Replication",
            ],
            &rows,
        );
    }
    Ok(())
}
