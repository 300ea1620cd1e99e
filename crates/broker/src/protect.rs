//! RocketMQ's broker protection (`disableConsumeIfConsumerReadSlowly`): a consumer group that
//! reads further behind the commitlog's end than `consumerFallbehindThreshold` bytes is stopped
//! (its subscription group's `consumeEnable` turns false, persisted), so that one slow reader
//! paging in old data cannot starve the rest. Every pull records how far behind its reader is
//! (with `diskFallRecorded`, only when the protection is on); a sweep every three minutes, as in
//! RocketMQ, stops the groups past the threshold with a `[PROTECT_BROKER]` log line. An admin
//! turns a group back on with `updateSubGroup` (consumeEnable=true).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Broker;

/// How often the sweep runs (RocketMQ's `protectBroker` schedule).
const SWEEP: Duration = Duration::from_secs(180);

/// The latest fall-behind, in bytes, of each (group, topic, queue id) that pulled.
#[derive(Default)]
pub(crate) struct FallBehind {
    table: Mutex<HashMap<(String, String, i32), i64>>,
}

impl FallBehind {
    /// Notes what a pull of `group` on (topic, queue) found, if the protection wants it.
    pub(crate) fn record(&self, b: &Broker, group: &str, topic: &str, queue: i32, bytes: i64) {
        if !b.conf.disable_consume_if_consumer_read_slowly || !b.conf.disk_fall_recorded {
            return;
        }
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        match t.get_mut(&(group.to_string(), topic.to_string(), queue)) {
            Some(v) => *v = bytes,
            None => {
                t.insert((group.to_string(), topic.to_string(), queue), bytes);
            }
        }
    }
}

/// Stops every group a queue of which is further behind than the threshold; returns them.
pub(crate) fn sweep(b: &Broker) -> Vec<String> {
    if !b.conf.disable_consume_if_consumer_read_slowly {
        return Vec::new();
    }
    let threshold = b.conf.consumer_fallbehind_threshold;
    let slow: HashMap<String, i64> = {
        let mut t = b
            .fall_behind
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut slow = HashMap::new();
        for ((group, _, _), &bytes) in t.iter() {
            if bytes > threshold {
                let worst = slow.entry(group.clone()).or_insert(bytes);
                *worst = (*worst).max(bytes);
            }
        }
        // A stopped group pulls no more, so its figures would stay and stop it again after an
        // admin turns it back on: forget them.
        t.retain(|(group, _, _), _| !slow.contains_key(group));
        slow
    };
    let mut stopped = Vec::new();
    for (group, bytes) in slow {
        match b.groups.disable_consume(&group) {
            Ok(true) => {
                tracing::info!(
                    "[PROTECT_BROKER] the consumer[{group}] consume slowly, {bytes} bytes, disable it"
                );
                stopped.push(group);
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(%group, error = %e, "could not stop a slow consumer group"),
        }
    }
    stopped
}

/// Runs the sweep every three minutes until shutdown.
pub(crate) async fn run(b: Arc<Broker>) {
    if !b.conf.disable_consume_if_consumer_read_slowly {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWEEP) => {}
            _ = b.shutdown.cancelled() => return,
        }
        sweep(&b);
    }
}

#[cfg(test)]
mod tests {
    use ferrocket_protocol::message::StoredMessage;
    use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};

    use super::*;
    use crate::connection::ConnHandle;
    use crate::processor::{pull, RequestCtx};
    use crate::BrokerConfig;

    fn pull_req(group: &str, offset: i64) -> RemotingCommand {
        RemotingCommand::request(RequestCode::PULL_MESSAGE)
            .with_ext("consumerGroup", group)
            .with_ext("topic", "SlowTopic")
            .with_ext("queueId", 0)
            .with_ext("queueOffset", offset)
            .with_ext("maxMsgNums", 1)
            // The subscription comes with the request (FLAG_SUBSCRIPTION).
            .with_ext("sysFlag", 0x4)
            .with_ext("commitOffset", 0)
            .with_ext("suspendTimeoutMillis", 0)
            .with_ext("subscription", "*")
            .with_ext("subVersion", 1)
    }

    async fn pull_code(b: &Arc<Broker>, group: &str, offset: i64) -> (i32, Option<String>) {
        let (tx, _rx) = tokio::sync::mpsc::channel(4);
        let ctx = RequestCtx {
            conn: Arc::new(ConnHandle::new(1, "127.0.0.1:1".parse().unwrap(), tx)),
            fast: false,
        };
        let out = pull::handle(b, &ctx, &pull_req(group, offset))
            .await
            .unwrap();
        (out.cmd.code, out.cmd.remark)
    }

    /// A group reading 4 KiB behind the end is stopped by the sweep (pulls then answer
    /// NO_PERMISSION) while a group at the end goes on; turned back on by an admin, the stopped
    /// group is not stopped again by what it read before.
    #[tokio::test]
    async fn a_group_reading_too_far_behind_is_stopped() {
        let dir = std::env::temp_dir().join(format!("ferrocket-protect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut conf = BrokerConfig {
            disable_consume_if_consumer_read_slowly: true,
            consumer_fallbehind_threshold: 4096,
            ..BrokerConfig::default()
        };
        conf.store.store_path_root_dir = dir.clone();
        conf.store.mapped_file_size_commit_log = 1 << 20;
        let b = Broker::open(conf).unwrap();
        b.topics
            .upsert(crate::body::TopicConfig::new("SlowTopic", 1, 1, 6))
            .unwrap();
        for _ in 0..20 {
            let m = StoredMessage::new("SlowTopic", 0, vec![b'm'; 1024]);
            assert_eq!(
                b.store.put_message(m).await.status,
                ferrocket_store::PutStatus::PutOk
            );
        }
        assert_eq!(
            pull_code(&b, "slow", 0).await.0,
            ResponseCode::SUCCESS as i32
        );
        assert_eq!(
            pull_code(&b, "current", 20).await.0,
            ResponseCode::PULL_NOT_FOUND as i32
        );
        assert_eq!(sweep(&b), ["slow"]);
        let (code, remark) = pull_code(&b, "slow", 1).await;
        assert_eq!(code, ResponseCode::NO_PERMISSION as i32);
        assert!(remark.unwrap().contains("subscription group no permission"));
        assert!(!b.groups.get("slow").unwrap().consume_enable);
        assert_eq!(
            pull_code(&b, "current", 20).await.0,
            ResponseCode::PULL_NOT_FOUND as i32
        );

        let mut g = (*b.groups.get("slow").unwrap()).clone();
        g.consume_enable = true;
        b.groups.upsert(g).unwrap();
        assert!(sweep(&b).is_empty(), "stopped again on old figures");
        assert_eq!(
            pull_code(&b, "slow", 19).await.0,
            ResponseCode::SUCCESS as i32
        );
        assert!(sweep(&b).is_empty(), "1 KiB behind is under the threshold");
        b.store.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
