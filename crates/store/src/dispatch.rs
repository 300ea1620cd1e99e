//! What the dispatcher takes from a record to build consume-queue and index entries.

use ferrocket_protocol::message::{names, sysflag, tags_code, MessageView, Properties};

/// Topic of scheduled (delayed) messages; its tags code is the delivery time.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";

/// Topic of timer messages (RocketMQ 5.x `rmq_sys_wheel_timer`); its tags code is the
/// delivery time from `TIMER_OUT_MS`.
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";

/// The dispatch view of one record.
#[derive(Debug, Clone)]
pub struct DispatchRequest<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub phys: i64,
    pub size: i32,
    pub tags_code: i64,
    pub store_timestamp: i64,
    pub sys_flag: i32,
    pub properties: &'a str,
}

impl<'a> DispatchRequest<'a> {
    /// Builds the request from a decoded record; `delay_levels` are the `messageDelayLevel`
    /// durations in ms (level n = index n-1).
    pub fn from_view(v: &MessageView<'a>, delay_levels: &[i64]) -> Self {
        let mut tags = tags_code(Properties::lookup(v.properties, names::TAGS));
        if v.topic == SCHEDULE_TOPIC {
            if let Some(level) = Properties::lookup(v.properties, names::DELAY_TIME_LEVEL)
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0)
            {
                let level = level.min(delay_levels.len());
                if level > 0 {
                    tags = v.store_timestamp + delay_levels[level - 1];
                }
            }
        }
        if v.topic == TIMER_TOPIC {
            if let Some(due) = Properties::lookup(v.properties, names::TIMER_OUT_MS)
                .and_then(|d| d.parse::<i64>().ok())
            {
                tags = due;
            }
        }
        Self {
            topic: v.topic,
            queue_id: v.queue_id,
            queue_offset: v.queue_offset,
            phys: v.physical_offset,
            size: v.total_size,
            tags_code: tags,
            store_timestamp: v.store_timestamp,
            sys_flag: v.sys_flag,
            properties: v.properties,
        }
    }

    /// Whether the record gets a consume-queue entry (not prepared/rollback halves).
    pub fn goes_to_consume_queue(&self) -> bool {
        matches!(
            sysflag::transaction_type(self.sys_flag),
            sysflag::TRANSACTION_NOT_TYPE | sysflag::TRANSACTION_COMMIT_TYPE
        )
    }

    /// Whether the record is indexed (everything but rollback records).
    pub fn goes_to_index(&self) -> bool {
        sysflag::transaction_type(self.sys_flag) != sysflag::TRANSACTION_ROLLBACK_TYPE
    }

    /// Index keys: UNIQ_KEY, then each space-separated KEYS value.
    pub fn index_keys(&self) -> impl Iterator<Item = &'a str> {
        let uniq = Properties::lookup(self.properties, names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX);
        let keys = Properties::lookup(self.properties, names::KEYS).unwrap_or("");
        uniq.into_iter()
            .chain(keys.split(' ').filter(|k| !k.is_empty()))
    }
}

/// Parses `messageDelayLevel` ("1s 5s 10s 30s 1m …", units s m h d) into ms.
pub fn parse_delay_levels(s: &str) -> Vec<i64> {
    s.split_whitespace()
        .filter_map(|t| {
            let (num, unit) = t.split_at(t.len().saturating_sub(1));
            let n: i64 = num.parse().ok()?;
            let mul = match unit {
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return None,
            };
            Some(n * mul)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_levels() {
        let l = parse_delay_levels("1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h");
        assert_eq!(l.len(), 18);
        assert_eq!(l[0], 1000);
        assert_eq!(l[4], 60_000);
        assert_eq!(l[17], 7_200_000);
    }
}
