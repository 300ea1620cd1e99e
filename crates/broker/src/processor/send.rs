//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320). Hot path.
//!
//! Checks (broker and topic permissions, topic name, auto-creation through the template topic,
//! queue id, sizes), then hands the message to the store, which encodes it straight into the
//! commitlog; the body is the request's own buffer (no copy). A bounded number of sends may wait
//! for or hold the store; one that cannot get in within `waitTimeMillsInSendQueue` is refused
//! with SYSTEM_BUSY instead of queueing without bound (at once with `brokerFastFailureEnable`
//! false), and so is one waiting while the page cache is busy (`osPageCacheBusyTimeOutMills`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocket_protocol::message::{
    decode_batch, names, Properties, StoredMessage, MAX_PROPERTIES_LEN,
};
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};
use ferrocket_store::PutStatus;

use super::{HandlerResult, RequestCtx};
use crate::body::perm;
use crate::headers::SendMessageRequestHeader;
use crate::topic::{self, DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};
use crate::Broker;

/// RocketMQ's `MQVersion.V3_4_9`: from this client version on the header's maxReconsumeTimes counts.
const V3_4_9: i32 = 121;

static QUEUE_PICK: AtomicU32 = AtomicU32::new(0);

fn refuse(req: &RemotingCommand, code: ResponseCode, remark: impl Into<String>) -> HandlerResult {
    Ok(RemotingCommand::error_to(req, code, remark).into())
}

/// How often a send waiting in the queue looks at the page cache (RocketMQ's fast-failure sweep
/// runs every 10 ms).
const SWEEP: Duration = Duration::from_millis(10);

/// Waits up to `wait` for room in the send queue, keeping its place. As RocketMQ's fast-failure
/// sweep does, a waiting send is let go at once while the page cache is busy (an append is
/// stalled in the commitlog lock): it would only wait behind it. The error is the remark's tag.
async fn wait_in_queue(
    b: &Broker,
    wait: Duration,
) -> Result<tokio::sync::SemaphorePermit<'_>, &'static str> {
    let deadline = tokio::time::Instant::now() + wait;
    let acquire = b.send_permits.acquire();
    tokio::pin!(acquire);
    loop {
        let tick = (tokio::time::Instant::now() + SWEEP).min(deadline);
        tokio::select! {
            p = &mut acquire => return p.map_err(|_| "TIMEOUT_CLEAN_QUEUE"),
            _ = tokio::time::sleep_until(tick) => {
                if b.store.is_os_page_cache_busy() {
                    return Err("PCBUSY_CLEAN_QUEUE");
                }
                if tick >= deadline {
                    return Err("TIMEOUT_CLEAN_QUEUE");
                }
            }
        }
    }
}

/// The message a send (or reply) request asks to store in `topic` / `queue_id`, with its
/// properties parsed; offsets and the store timestamp are the store's to fill in.
pub(super) fn to_store(
    b: &Broker,
    ctx: &RequestCtx,
    h: &SendMessageRequestHeader,
    req: &RemotingCommand,
    topic: String,
    queue_id: i32,
    properties: Properties,
) -> StoredMessage {
    StoredMessage {
        queue_id,
        flag: h.flag,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: h.sys_flag,
        born_timestamp: h.born_timestamp,
        born_host: ctx.conn.peer,
        store_timestamp: 0,
        store_host: b.store.config().store_host,
        reconsume_times: h.reconsume_times.unwrap_or(0),
        prepared_transaction_offset: 0,
        body: req.body.clone(),
        topic,
        properties,
    }
}

/// Handles one send request.
pub async fn handle(b: &Arc<Broker>, ctx: &RequestCtx, req: &RemotingCommand) -> HandlerResult {
    let arrived = Instant::now();
    if b.store.is_os_page_cache_busy() {
        // RocketMQ's processor rejectRequest: refused before it queues behind the stalled append.
        return refuse(
            req,
            ResponseCode::SYSTEM_BUSY,
            "[REJECTREQUEST]system busy, start flow control for a while",
        );
    }
    let wait = Duration::from_millis(b.conf.wait_time_mills_in_send_queue);
    // Fast path: a free slot without arming a timer.
    let permit = match b.send_permits.try_acquire() {
        Ok(p) => Ok(p),
        Err(_) if !b.conf.broker_fast_failure_enable => {
            return refuse(
                req,
                ResponseCode::SYSTEM_BUSY,
                "[OVERLOAD]system busy, start flow control for a while",
            )
        }
        Err(_) => wait_in_queue(b, wait).await,
    };
    let _permit = match permit {
        Ok(p) => p,
        Err(why) => {
            return refuse(
                req,
                ResponseCode::SYSTEM_BUSY,
                format!(
                    "[{why}]broker busy, start flow control for a while, period in queue: {}ms, size of queue: {}",
                    arrived.elapsed().as_millis(),
                    b.conf.send_thread_pool_queue_capacity
                ),
            )
        }
    };
    if b.is_slave() {
        return refuse(
            req,
            ResponseCode::SERVICE_NOT_AVAILABLE,
            "broker is a slave, it does not accept messages",
        );
    }
    let v2 = req.code != RequestCode::SEND_MESSAGE as i32;
    let h = SendMessageRequestHeader::from_request(req, v2)?;
    let batch = req.code == RequestCode::SEND_BATCH_MESSAGE as i32;

    if !perm::writeable(b.conf.broker_permission) {
        return refuse(
            req,
            ResponseCode::NO_PERMISSION,
            format!(
                "the broker[{}] sending message is forbidden",
                b.conf.broker_ip1
            ),
        );
    }
    if let Err(why) = topic::validate_topic(&h.topic) {
        return refuse(req, ResponseCode::MESSAGE_ILLEGAL, why);
    }
    if topic::is_not_allowed_send(&h.topic) {
        return refuse(
            req,
            ResponseCode::NO_PERMISSION,
            format!("Sending message to topic[{}] is forbidden.", h.topic),
        );
    }
    let tc = match b.topics.get(&h.topic) {
        Some(tc) => tc,
        None => {
            let created = if h.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                Some(b.topics.get_or_create(&h.topic, 1)?)
            } else {
                b.topics
                    .create_in_send(&h.topic, &h.default_topic, h.default_topic_queue_nums)?
            };
            match created {
                Some(tc) => tc,
                None => return super::topic_not_exist(req, &h.topic),
            }
        }
    };
    if !perm::writeable(tc.perm) {
        return refuse(
            req,
            ResponseCode::NO_PERMISSION,
            format!("the topic[{}] sending message is forbidden", h.topic),
        );
    }
    let valid_queues = tc.write_queue_nums.max(tc.read_queue_nums);
    if h.queue_id >= valid_queues {
        return refuse(
            req,
            ResponseCode::SYSTEM_ERROR,
            format!(
                "request queueId[{}] is illegal, topic {} has {} queues, producer: {}",
                h.queue_id, h.topic, valid_queues, ctx.conn.peer
            ),
        );
    }
    let mut queue_id = h.queue_id;
    if queue_id < 0 {
        let n = tc.write_queue_nums.max(1) as u32;
        queue_id = (QUEUE_PICK.fetch_add(1, Ordering::Relaxed) % n) as i32;
    }
    let props_str = h.properties.as_deref().unwrap_or("");
    if props_str.len() > MAX_PROPERTIES_LEN {
        return refuse(
            req,
            ResponseCode::MESSAGE_ILLEGAL,
            format!(
                "the message properties of {} bytes exceed {MAX_PROPERTIES_LEN}",
                props_str.len()
            ),
        );
    }
    let max = b.store.config().max_message_size;
    if req.body.len() > max && !batch {
        return refuse(
            req,
            ResponseCode::MESSAGE_ILLEGAL,
            format!(
                "the message body size {} exceeds maxMessageSize {max}",
                req.body.len()
            ),
        );
    }
    let mut topic_name = h.topic.clone();
    let mut props = Properties::parse(props_str);
    // As RocketMQ (4.6 on) does for every message: a request's consumer reads it to address
    // its reply to `<cluster>_REPLY_TOPIC`.
    props.insert(names::CLUSTER, b.conf.broker_cluster_name.as_str());
    let reconsume = h.reconsume_times.unwrap_or(0);
    if !batch && topic_name.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
        let group = &topic_name[RETRY_GROUP_TOPIC_PREFIX.len()..];
        let mut max_times = b.groups.get(group).map(|g| g.retry_max_times).unwrap_or(16);
        if req.version >= V3_4_9 {
            if let Some(m) = h.max_reconsume_times {
                max_times = m;
            }
        }
        if reconsume >= max_times {
            let dlq = format!("{DLQ_GROUP_TOPIC_PREFIX}{group}");
            b.topics.get_or_create(&dlq, 1)?;
            topic_name = dlq;
            queue_id = 0;
        }
    }
    let base = to_store(b, ctx, &h, req, topic_name.clone(), queue_id, props);
    let mut base = base;
    if !batch && crate::transaction::is_half(&base) {
        if b.conf.reject_transaction_message {
            return refuse(
                req,
                ResponseCode::NO_PERMISSION,
                format!(
                    "the broker[{}] sending transaction message is forbidden",
                    b.conf.broker_name
                ),
            );
        }
        b.topics.get_or_create(crate::transaction::HALF_TOPIC, 1)?;
        crate::transaction::to_half(&mut base);
        topic_name = base.topic.clone();
        queue_id = base.queue_id;
    } else if !batch {
        match crate::timer::redirect(&mut base, &b.conf, crate::now_ms()) {
            Ok(true) => {}
            Ok(false) => crate::delay::redirect(&mut base, b.delay_levels),
            Err(remark) => return refuse(req, ResponseCode::MESSAGE_ILLEGAL, remark),
        }
    }
    let msgs = if batch {
        let entries = match decode_batch(&req.body) {
            Ok(e) if !e.is_empty() => e,
            Ok(_) => return refuse(req, ResponseCode::MESSAGE_ILLEGAL, "empty batch"),
            Err(e) => {
                return refuse(
                    req,
                    ResponseCode::MESSAGE_ILLEGAL,
                    format!("bad batch body: {e}"),
                )
            }
        };
        let mut msgs = Vec::with_capacity(entries.len());
        for e in entries {
            if e.body.len() > max {
                return refuse(
                    req,
                    ResponseCode::MESSAGE_ILLEGAL,
                    format!(
                        "a batch message body of {} bytes exceeds maxMessageSize {max}",
                        e.body.len()
                    ),
                );
            }
            let mut p = e.properties;
            for (k, v) in base.properties.iter() {
                if p.get(k).is_none() {
                    p.insert(k, v);
                }
            }
            if p.encoded_len() > MAX_PROPERTIES_LEN {
                return refuse(
                    req,
                    ResponseCode::MESSAGE_ILLEGAL,
                    "batch message properties too long",
                );
            }
            msgs.push(StoredMessage {
                flag: e.flag,
                body: e.body,
                properties: p,
                ..base.clone()
            });
        }
        msgs
    } else {
        vec![base]
    };
    let count = msgs.len() as u64;
    let wait_store = msgs[0].properties.get(names::WAIT_STORE_MSG_OK) != Some("false");
    let mut result = b.put_messages(msgs).await;
    if let (Some(a), Some(ha)) = (&result.append, b.ha.get()) {
        let end = a.wrote_offset + i64::from(a.wrote_bytes);
        result.status = ha
            .after_put(b.conf.broker_role, end, wait_store, result.status)
            .await;
    }
    // Dispatch to the consume queue happened inside the append: wake held pulls now.
    if result.append.is_some() {
        b.notifier.notify(&topic_name, queue_id);
        b.stats.add_put(count);
    }
    let (code, remark) = match result.status {
        PutStatus::PutOk => (ResponseCode::SUCCESS, None),
        PutStatus::FlushDiskTimeout => (ResponseCode::FLUSH_DISK_TIMEOUT, None),
        PutStatus::FlushSlaveTimeout => (ResponseCode::FLUSH_SLAVE_TIMEOUT, None),
        PutStatus::SlaveNotAvailable => (ResponseCode::SLAVE_NOT_AVAILABLE, None),
        PutStatus::CreateMappedFileFailed => (
            ResponseCode::SYSTEM_ERROR,
            Some("create mapped file failed, server is busy or broken.".to_string()),
        ),
        PutStatus::MessageIllegal | PutStatus::PropertiesSizeExceeded => (
            ResponseCode::MESSAGE_ILLEGAL,
            Some("the message is illegal, maybe msg body or properties length not matched.".into()),
        ),
        PutStatus::ServiceNotAvailable => (
            ResponseCode::SERVICE_NOT_AVAILABLE,
            Some(
                "service not available now, maybe disk full or the broker is shutting down".into(),
            ),
        ),
        PutStatus::DiskFull => (
            ResponseCode::SERVICE_NOT_AVAILABLE,
            Some("service not available now. It may be caused by the broker's disk is full".into()),
        ),
        PutStatus::OsPageCacheBusy => (
            ResponseCode::SYSTEM_ERROR,
            Some("[PC_SYNCHRONIZED]broker busy, start flow control for a while".into()),
        ),
        PutStatus::UnknownError => (ResponseCode::SYSTEM_ERROR, Some("UNKNOWN_ERROR".into())),
    };
    let mut resp = RemotingCommand::response_to(req, code);
    resp.remark = remark;
    if let Some(a) = &result.append {
        resp = resp
            .with_ext("msgId", &a.msg_id)
            .with_ext("queueId", queue_id)
            .with_ext("queueOffset", a.logics_offset)
            .with_ext(names::MSG_REGION, &b.conf.region_id)
            .with_ext(names::TRACE_SWITCH, b.conf.trace_on);
    }
    Ok(resp.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ConnHandle;
    use crate::BrokerConfig;

    /// A broker whose send queue holds 2 (plus 1 executing), a connection and a send request.
    fn small_queue(
        name: &str,
        conf: BrokerConfig,
    ) -> (Arc<Broker>, RequestCtx, RemotingCommand, std::path::PathBuf) {
        small_queue_with_env(name, conf, Arc::new(ferrocket_store::SystemEnv))
    }

    fn small_queue_with_env(
        name: &str,
        conf: BrokerConfig,
        env: Arc<dyn ferrocket_store::StoreEnv>,
    ) -> (Arc<Broker>, RequestCtx, RemotingCommand, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("ferrocket-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut conf = BrokerConfig {
            send_thread_pool_queue_capacity: 2,
            send_message_thread_pool_nums: 1,
            ..conf
        };
        conf.store.store_path_root_dir = dir.clone();
        conf.store.mapped_file_size_commit_log = 1 << 20;
        let b = Broker::open_with_store_env(conf, env).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(4);
        let ctx = RequestCtx {
            conn: Arc::new(ConnHandle::new(1, "127.0.0.1:1".parse().unwrap(), tx)),
            fast: false,
        };
        let req = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2)
            .with_ext("a", "PG")
            .with_ext("b", "BusyTopic")
            .with_ext("c", "TBW102")
            .with_ext("d", 4)
            .with_ext("e", 0)
            .with_ext("f", 0)
            .with_ext("g", 0)
            .with_ext("h", 0)
            .with_body(&b"x"[..]);
        (b, ctx, req, dir)
    }

    /// With the queue full, a send is refused with `remark_start`; with room, it goes through.
    async fn refused_while_full(
        b: &Arc<Broker>,
        ctx: &RequestCtx,
        req: &RemotingCommand,
        remark_start: &str,
    ) {
        let held = b.send_permits.acquire_many(3).await.unwrap();
        let out = handle(b, ctx, req).await.unwrap();
        assert_eq!(out.cmd.code, ResponseCode::SYSTEM_BUSY as i32);
        let remark = out.cmd.remark.unwrap();
        assert!(remark.starts_with(remark_start), "{remark}");
        drop(held);
        let out = handle(b, ctx, req).await.unwrap();
        assert_eq!(out.cmd.code, 0, "{:?}", out.cmd.remark);
    }

    #[tokio::test]
    async fn saturated_send_queue_answers_system_busy() {
        let conf = BrokerConfig {
            wait_time_mills_in_send_queue: 50,
            ..BrokerConfig::default()
        };
        let (b, ctx, req, dir) = small_queue("busy", conf);
        refused_while_full(&b, &ctx, &req, "[TIMEOUT_CLEAN_QUEUE]broker busy").await;
        b.store.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `brokerFastFailureEnable=false`: a full send queue refuses at once, without waiting
    /// `waitTimeMillsInSendQueue` for room.
    #[tokio::test]
    async fn without_fast_failure_a_full_queue_refuses_at_once() {
        let conf = BrokerConfig {
            wait_time_mills_in_send_queue: 10_000,
            broker_fast_failure_enable: false,
            ..BrokerConfig::default()
        };
        let (b, ctx, req, dir) = small_queue("overload", conf);
        let t = Instant::now();
        refused_while_full(&b, &ctx, &req, "[OVERLOAD]").await;
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "did not wait for room"
        );
        b.store.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Starts an append that stops inside the commitlog lock, and makes the store's clock say it
    /// has been there 1.5 s (past `osPageCacheBusyTimeOutMills`); `env.release()` lets it go.
    fn stall_an_append(
        b: &Arc<Broker>,
        env: &ferrocket_store::StallEnv,
    ) -> std::thread::JoinHandle<PutStatus> {
        env.hold_next();
        let stalled = {
            let b = Arc::clone(b);
            std::thread::spawn(move || {
                let m = StoredMessage::new("BusyTopic", 0, &b"stalled"[..]);
                b.store.put_message(m).wait().status
            })
        };
        env.wait_held();
        env.set_ahead_ms(1500);
        stalled
    }

    /// `osPageCacheBusyTimeOutMills`: while an append has held the commitlog lock longer than
    /// that, a send is refused with SYSTEM_BUSY before it queues behind it; after, sends go on.
    #[tokio::test]
    async fn sends_are_refused_while_an_append_is_stalled_in_the_lock() {
        let env = Arc::new(ferrocket_store::StallEnv::default());
        let (b, ctx, req, dir) =
            small_queue_with_env("pcbusy", BrokerConfig::default(), env.clone());
        let stalled = stall_an_append(&b, &env);
        let out = handle(&b, &ctx, &req).await.unwrap();
        assert_eq!(out.cmd.code, ResponseCode::SYSTEM_BUSY as i32);
        let remark = out.cmd.remark.unwrap();
        assert!(remark.starts_with("[REJECTREQUEST]system busy"), "{remark}");
        env.release();
        assert_eq!(stalled.join().unwrap(), ferrocket_store::PutStatus::PutOk);
        let out = handle(&b, &ctx, &req).await.unwrap();
        assert_eq!(out.cmd.code, 0, "{:?}", out.cmd.remark);
        b.store.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A send already waiting in a full queue when the page cache turns busy is let go with
    /// `[PCBUSY_CLEAN_QUEUE]` within the sweep, not after `waitTimeMillsInSendQueue` (60 s here).
    #[tokio::test]
    async fn a_busy_page_cache_empties_the_send_queue() {
        let env = Arc::new(ferrocket_store::StallEnv::default());
        let conf = BrokerConfig {
            wait_time_mills_in_send_queue: 60_000,
            ..BrokerConfig::default()
        };
        let (b, ctx, req, dir) = small_queue_with_env("pcclean", conf, env.clone());
        let held = b.send_permits.acquire_many(3).await.unwrap();
        let waiting = {
            let (b, req) = (Arc::clone(&b), req.clone());
            let ctx = RequestCtx {
                conn: Arc::clone(&ctx.conn),
                fast: false,
            };
            tokio::spawn(async move { handle(&b, &ctx, &req).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "waits while the queue is full");
        let stalled = stall_an_append(&b, &env);
        let t = Instant::now();
        let out = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("let go while the page cache is busy")
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(out.cmd.code, ResponseCode::SYSTEM_BUSY as i32);
        let remark = out.cmd.remark.unwrap();
        assert!(
            remark.starts_with("[PCBUSY_CLEAN_QUEUE]broker busy"),
            "{remark}"
        );
        env.release();
        assert_eq!(stalled.join().unwrap(), ferrocket_store::PutStatus::PutOk);
        drop(held);
        let out = handle(&b, &ctx, &req).await.unwrap();
        assert_eq!(out.cmd.code, 0, "{:?}", out.cmd.remark);
        b.store.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
