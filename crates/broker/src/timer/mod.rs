//! Arbitrary delivery times (RocketMQ 5.x `TIMER_DELIVER_MS`, `TIMER_DELAY_SEC`,
//! `TIMER_DELAY_MS`; `timerWheelEnable`, up to `timerMaxDelaySec`).
//!
//! A timer message is stored in `rmq_sys_wheel_timer` queue 0 with its destination in
//! `REAL_TOPIC`/`REAL_QID` and its due time in `TIMER_OUT_MS`, which the store's dispatch makes
//! the consume-queue entry's tags code. The commitlog is the only copy of the message; this
//! service keeps just (due time, queue offset) pairs in a [`wheel::Wheel`], loads them from the
//! consume queue as they arrive, and on expiry stores the message again in its real topic.
//!
//! Progress survives restarts in the metadata KV: `low`, the first queue offset not yet
//! delivered, and a marker per delivered offset above it (messages are not due in arrival
//! order). A restart reloads `[low, max)` minus the markers, so a message due during downtime
//! is delivered at start, and each message is delivered once (a crash between a delivery and
//! its marker delivers that one again: at least once).

pub mod wheel;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferrocket_protocol::message::{decode, names, sysflag, StoredMessage};
use ferrocket_store::dispatch::TIMER_TOPIC;
use ferrocket_store::kv::{MetaKv, Namespace};
use futures::StreamExt;

use crate::config::BrokerConfig;
use crate::{Broker, BrokerError};

/// Width of a wheel tick; delivery is on time to this (well under the 1 s precision promised).
const TICK_MS: i64 = 100;
/// Ticks in the ring (about 6.8 minutes); later due times wait in the overflow level.
const SLOTS: usize = 4096;
/// Consume-queue entries loaded per round, so a huge backlog does not delay expiry.
const LOAD_BATCH: i64 = 65_536;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 64;

/// The due time a message asks for, if any: `Ok(None)` for a plain message.
pub fn due_time(msg: &StoredMessage, now_ms: i64) -> Result<Option<i64>, String> {
    let p = &msg.properties;
    let parse = |name: &str| -> Result<Option<i64>, String> {
        match p.get(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("timer property {name}={v:?} is not a number")),
        }
    };
    if let Some(at) = parse(names::TIMER_DELIVER_MS)? {
        return Ok(Some(at));
    }
    if let Some(s) = parse(names::TIMER_DELAY_SEC)? {
        return Ok(Some(now_ms.saturating_add(s.saturating_mul(1000))));
    }
    if let Some(ms) = parse(names::TIMER_DELAY_MS)? {
        return Ok(Some(now_ms.saturating_add(ms)));
    }
    Ok(None)
}

/// Redirects a timer message to the timer topic; `Ok(true)` when it did. `Err` is the
/// MESSAGE_ILLEGAL remark (a delay beyond `timerMaxDelaySec`, a malformed property).
pub fn redirect(msg: &mut StoredMessage, conf: &BrokerConfig, now_ms: i64) -> Result<bool, String> {
    if !conf.timer_wheel_enable {
        return Ok(false);
    }
    let tx = sysflag::transaction_type(msg.sys_flag);
    if tx != sysflag::TRANSACTION_NOT_TYPE && tx != sysflag::TRANSACTION_COMMIT_TYPE {
        return Ok(false);
    }
    let Some(due) = due_time(msg, now_ms)? else {
        return Ok(false);
    };
    let max_ms = conf.timer_max_delay_sec.saturating_mul(1000);
    if due.saturating_sub(now_ms) > max_ms {
        return Err(format!(
            "timer message delivery time {due} is more than timerMaxDelaySec ({}) away",
            conf.timer_max_delay_sec
        ));
    }
    if due <= now_ms {
        return Ok(false);
    }
    msg.properties.insert(names::TIMER_OUT_MS, due.to_string());
    msg.properties
        .insert(names::TIMER_ENQUEUE_MS, now_ms.to_string());
    msg.properties.insert(names::REAL_TOPIC, msg.topic.clone());
    msg.properties
        .insert(names::REAL_QUEUE_ID, msg.queue_id.to_string());
    msg.topic = TIMER_TOPIC.to_string();
    msg.queue_id = 0;
    Ok(true)
}

/// Delivery progress, persisted.
struct Progress {
    kv: MetaKv,
    /// First queue offset not delivered.
    low: i64,
    /// Delivered offsets at or above `low`.
    done: BTreeSet<i64>,
}

const LOW_KEY: &str = "low";

fn marker(off: i64) -> String {
    format!("d{off:020}")
}

impl Progress {
    fn load(kv: MetaKv, min: i64) -> Result<Self, BrokerError> {
        let low = kv
            .get_json::<i64>(Namespace::Timer, LOW_KEY)?
            .unwrap_or(0)
            .max(min);
        let mut done = BTreeSet::new();
        for (k, _) in kv.entries(Namespace::Timer)? {
            if let Some(off) = k.strip_prefix('d').and_then(|o| o.parse::<i64>().ok()) {
                if off >= low {
                    done.insert(off);
                } else {
                    kv.remove(Namespace::Timer, &k)?;
                }
            }
        }
        Ok(Progress { kv, low, done })
    }

    fn delivered(&mut self, off: i64) -> Result<(), BrokerError> {
        if off < self.low {
            return Ok(());
        }
        self.kv.put(Namespace::Timer, &marker(off), b"")?;
        self.done.insert(off);
        let start = self.low;
        while self.done.remove(&self.low) {
            self.low += 1;
        }
        if self.low != start {
            for off in start..self.low {
                self.kv.remove(Namespace::Timer, &marker(off))?;
            }
            self.kv.put_json(Namespace::Timer, LOW_KEY, &self.low)?;
        }
        Ok(())
    }

    /// Offsets at or past `low` that are not holes of the queue and not delivered yet are
    /// loaded; holes (blank entries) count as delivered.
    fn skip(&mut self, off: i64) -> Result<(), BrokerError> {
        self.delivered(off)
    }
}

/// Runs the timer until shutdown (masters only).
pub async fn run(b: Arc<Broker>) {
    if b.conf.is_slave() || !b.conf.timer_wheel_enable {
        return;
    }
    // A DLedger node serves the wheel while it leads, reloading progress each time it does.
    while !b.shutdown.is_cancelled() {
        if b.is_slave() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = b.shutdown.cancelled() => return,
            }
            continue;
        }
        if let Err(e) = serve(&b).await {
            tracing::error!(error = %e, "timer wheel stopped");
            return;
        }
    }
}

async fn serve(b: &Arc<Broker>) -> Result<(), BrokerError> {
    let min = b.store.min_offset_in_queue(TIMER_TOPIC, 0);
    let mut progress = Progress::load(b.kv.clone(), min)?;
    let mut wheel = wheel::Wheel::new(TICK_MS, SLOTS, crate::now_ms());
    let mut next = progress.low;
    let mut due = Vec::new();
    loop {
        // Load what arrived (bounded per round).
        let max = b.store.max_offset_in_queue(TIMER_TOPIC, 0);
        let until = max.min(next + LOAD_BATCH);
        if next < until {
            tracing::debug!(
                from = next,
                to = until,
                pending = wheel.len(),
                "loading timer messages"
            );
        }
        while next < until {
            match b.store.queue_entry(TIMER_TOPIC, 0, next) {
                Some(e) if e.size != i32::MAX => {
                    if !progress.done.contains(&next) {
                        wheel.insert(e.tags_code, next);
                    }
                }
                _ => progress.skip(next)?,
            }
            next += 1;
        }
        wheel.advance(crate::now_ms(), &mut due);
        if !due.is_empty() {
            deliver(b, &mut progress, std::mem::take(&mut due)).await?;
        }
        if b.is_slave() {
            return Ok(());
        }
        if next < max {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(TICK_MS as u64)) => {}
            _ = b.shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Stores each due message in its real topic, [`IN_FLIGHT`] at a time.
async fn deliver(
    b: &Arc<Broker>,
    progress: &mut Progress,
    due: Vec<i64>,
) -> Result<(), BrokerError> {
    let mut puts = futures::stream::iter(due.into_iter().map(|off| {
        let b = Arc::clone(b);
        async move { (off, deliver_one(&b, off).await) }
    }))
    .buffer_unordered(IN_FLIGHT);
    while let Some((off, ok)) = puts.next().await {
        if ok {
            progress.delivered(off)?;
        } else {
            tracing::warn!(
                offset = off,
                "timer message not delivered; retrying after restart"
            );
        }
    }
    Ok(())
}

/// Delivers one message; `false` if the store refused it (it is left for a later start).
async fn deliver_one(b: &Broker, off: i64) -> bool {
    let Some(e) = b.store.queue_entry(TIMER_TOPIC, 0, off) else {
        return true;
    };
    let Some(raw) = b.store.message_at(e.phys) else {
        return true; // removed by retention
    };
    let Ok(mut m) = decode(&raw) else {
        tracing::warn!(offset = off, "undecodable timer message skipped");
        return true;
    };
    let topic = m.properties.remove(names::REAL_TOPIC);
    let qid = m
        .properties
        .remove(names::REAL_QUEUE_ID)
        .and_then(|q| q.parse::<i32>().ok());
    let (Some(topic), Some(qid)) = (topic, qid) else {
        tracing::warn!(offset = off, "timer message without a destination skipped");
        return true;
    };
    m.properties
        .insert(names::TIMER_DEQUEUE_MS, crate::now_ms().to_string());
    m.properties.insert(names::WAIT_STORE_MSG_OK, "false");
    m.topic = topic.clone();
    m.queue_id = qid;
    m.queue_offset = 0;
    m.physical_offset = 0;
    let r = b.put_message(m).await;
    crate::delay::notify_ha(b, &r);
    if !r.status.is_stored() {
        return false;
    }
    b.notifier.notify(&topic, qid);
    b.stats.add_put(1);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(props: &[(&str, &str)]) -> StoredMessage {
        let mut m = StoredMessage::new("T", 2, &b"x"[..]);
        for (k, v) in props {
            m.properties.insert(*k, *v);
        }
        m
    }

    #[test]
    fn due_time_from_each_property() {
        assert_eq!(due_time(&msg(&[]), 1000), Ok(None));
        assert_eq!(
            due_time(&msg(&[("TIMER_DELIVER_MS", "5000")]), 1000),
            Ok(Some(5000))
        );
        assert_eq!(
            due_time(&msg(&[("TIMER_DELAY_SEC", "3")]), 1000),
            Ok(Some(4000))
        );
        assert_eq!(
            due_time(&msg(&[("TIMER_DELAY_MS", "250")]), 1000),
            Ok(Some(1250))
        );
        assert!(due_time(&msg(&[("TIMER_DELAY_SEC", "soon")]), 0).is_err());
    }

    #[test]
    fn redirect_bounds_and_destination() {
        let conf = BrokerConfig::default();
        let mut m = msg(&[("TIMER_DELAY_SEC", "10")]);
        assert_eq!(redirect(&mut m, &conf, 1000), Ok(true));
        assert_eq!(m.topic, TIMER_TOPIC);
        assert_eq!(m.properties.get("REAL_TOPIC"), Some("T"));
        assert_eq!(m.properties.get("REAL_QID"), Some("2"));
        assert_eq!(m.properties.get("TIMER_OUT_MS"), Some("11000"));
        let mut far = msg(&[("TIMER_DELAY_SEC", "259201")]);
        assert!(redirect(&mut far, &conf, 0)
            .unwrap_err()
            .contains("timerMaxDelaySec"));
        let mut past = msg(&[("TIMER_DELIVER_MS", "10")]);
        assert_eq!(redirect(&mut past, &conf, 1000), Ok(false));
        assert_eq!(past.topic, "T");
    }
}
