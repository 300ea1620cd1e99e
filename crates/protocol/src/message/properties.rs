//! The properties string (`name \x01 value \x02 …`) and the well-known property names.

/// Separates a name from its value (char 1).
pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
/// Ends each name/value pair (char 2).
pub const PROPERTY_SEPARATOR: char = '\u{2}';

/// Well-known property names (RocketMQ `MessageConst`).
pub mod names {
    pub const KEYS: &str = "KEYS";
    pub const TAGS: &str = "TAGS";
    pub const WAIT_STORE_MSG_OK: &str = "WAIT";
    pub const DELAY_TIME_LEVEL: &str = "DELAY";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    pub const REAL_QUEUE_ID: &str = "REAL_QID";
    pub const TRANSACTION_PREPARED: &str = "TRAN_MSG";
    pub const PRODUCER_GROUP: &str = "PGROUP";
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    pub const BUYER_ID: &str = "BUYER_ID";
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    pub const TRANSFER_FLAG: &str = "TRANSFER_FLAG";
    pub const CORRECTION_FLAG: &str = "CORRECTION_FLAG";
    pub const MQ2_FLAG: &str = "MQ2_FLAG";
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    pub const MSG_REGION: &str = "MSG_REGION";
    pub const TRACE_SWITCH: &str = "TRACE_ON";
    pub const UNIQ_CLIENT_MESSAGE_ID_KEYIDX: &str = "UNIQ_KEY";
    pub const EXTEND_UNIQ_INFO: &str = "EXTEND_UNIQ_INFO";
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    pub const CONSUME_START_TIMESTAMP: &str = "CONSUME_START_TIME";
    pub const TRANSACTION_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    pub const INSTANCE_ID: &str = "INSTANCE_ID";
    pub const CORRELATION_ID: &str = "CORRELATION_ID";
    pub const MESSAGE_REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
    pub const MESSAGE_TTL: &str = "TTL";
    pub const REPLY_MESSAGE_ARRIVE_TIME: &str = "ARRIVE_TIME";
    pub const PUSH_REPLY_TIME: &str = "PUSH_REPLY_TIME";
    pub const CLUSTER: &str = "CLUSTER";
    pub const MESSAGE_TYPE: &str = "MSG_TYPE";
    pub const INNER_MULTI_DISPATCH: &str = "INNER_MULTI_DISPATCH";
    pub const INNER_MULTI_QUEUE_OFFSET: &str = "INNER_MULTI_QUEUE_OFFSET";
    pub const INNER_NUM: &str = "INNER_NUM";
    pub const INNER_BASE: &str = "INNER_BASE";
    pub const DUP_INFO: &str = "DUP_INFO";
    pub const POP_CK: &str = "POP_CK";
    pub const POP_CK_OFFSET: &str = "POP_CK_OFFSET";
    pub const FIRST_POP_TIME: &str = "1ST_POP_TIME";
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    pub const TIMER_ENQUEUE_MS: &str = "TIMER_ENQUEUE_MS";
    pub const TIMER_DEQUEUE_MS: &str = "TIMER_DEQUEUE_MS";
    pub const TIMER_ROLL_TIMES: &str = "TIMER_ROLL_TIMES";
    pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
    pub const TIMER_DEL_UNIQKEY: &str = "TIMER_DEL_UNIQKEY";
    pub const TIMER_DELAY_LEVEL: &str = "TIMER_DELAY_LEVEL";
    pub const TRANSACTION_ID: &str = "__transactionId__";
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    pub const BORN_HOST: &str = "__BORNHOST";
    pub const BORN_TIMESTAMP: &str = "BORN_TIMESTAMP";
    pub const TRACE_CONTEXT: &str = "TRACE_CONTEXT";
    pub const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
    pub const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
    pub const CRC32: &str = "__CRC32#";
    /// Prefix of properties that are never stored.
    pub const TRANSIENT_PREFIX: &str = "__RMQ.TRANSIENT.";
    /// Short aliases named after the wire keys.
    pub const UNIQ_KEY: &str = UNIQ_CLIENT_MESSAGE_ID_KEYIDX;
    pub const DELAY: &str = DELAY_TIME_LEVEL;
    pub const TRAN_MSG: &str = TRANSACTION_PREPARED;
    pub const WAIT: &str = WAIT_STORE_MSG_OK;
    pub const REAL_QID: &str = REAL_QUEUE_ID;
    pub const PGROUP: &str = PRODUCER_GROUP;
    /// Query flag: look the key up as a UNIQ_KEY.
    pub const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";
}

/// An ordered properties map. Insertion order is kept so that a decoded record re-encodes to the
/// same bytes; setting an existing name replaces its value in place (as Java's map would).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<(String, String)>,
}

impl Properties {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a properties string the way RocketMQ does: pairs end in \x02 (the last one may not),
    /// fragments shorter than 3 chars or without a non-empty name and value are skipped, and a
    /// repeated name keeps its last value.
    pub fn parse(s: &str) -> Self {
        let mut props = Properties::new();
        for fragment in s.split(PROPERTY_SEPARATOR) {
            if fragment.len() < 3 {
                continue;
            }
            if let Some((k, v)) = fragment.split_once(NAME_VALUE_SEPARATOR) {
                if !k.is_empty() && !v.is_empty() {
                    props.insert(k, v);
                }
            }
        }
        props
    }

    /// Looks `name` up in a properties string without building a map (hot path: TAGS, KEYS).
    pub fn lookup<'a>(s: &'a str, name: &str) -> Option<&'a str> {
        let mut found = None;
        for fragment in s.split(PROPERTY_SEPARATOR) {
            if let Some((k, v)) = fragment.split_once(NAME_VALUE_SEPARATOR) {
                if k == name && !v.is_empty() {
                    found = Some(v);
                }
            }
        }
        found
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value`, replacing an existing value in place.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.entries.iter().position(|(k, _)| k == name)?;
        Some(self.entries.remove(i).1)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no pair.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Byte length of [`Properties::encode`]'s output, without building it.
    pub fn encoded_len(&self) -> usize {
        self.entries
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum()
    }

    /// Appends the properties string (every pair ends in \x02, as the Java writer does) to `out`.
    pub fn encode_into(&self, out: &mut String) {
        for (k, v) in &self.entries {
            out.push_str(k);
            out.push(NAME_VALUE_SEPARATOR);
            out.push_str(v);
            out.push(PROPERTY_SEPARATOR);
        }
    }

    /// The properties string.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(self.encoded_len());
        self.encode_into(&mut s);
        s
    }

    /// KEYS split on spaces, empty pieces dropped.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.get(names::KEYS)
            .unwrap_or("")
            .split(' ')
            .filter(|k| !k.is_empty())
    }

    /// TAGS.
    pub fn tags(&self) -> Option<&str> {
        self.get(names::TAGS)
    }

    /// UNIQ_KEY.
    pub fn uniq_key(&self) -> Option<&str> {
        self.get(names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut p = Properties::new();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_like_java() {
        let p = Properties::parse(
            "TAGS\u{1}a\u{2}KEYS\u{1}k1 k2\u{2}x\u{2}\u{1}v\u{2}E\u{1}\u{2}LAST\u{1}z",
        );
        assert_eq!(p.get("TAGS"), Some("a"));
        assert_eq!(p.keys().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(p.get("LAST"), Some("z"));
        assert_eq!(p.len(), 3);
        assert_eq!(
            p.encode(),
            "TAGS\u{1}a\u{2}KEYS\u{1}k1 k2\u{2}LAST\u{1}z\u{2}"
        );
        assert_eq!(p.encoded_len(), p.encode().len());
        assert_eq!(
            Properties::lookup("A\u{1}1\u{2}TAGS\u{1}t\u{2}", "TAGS"),
            Some("t")
        );
        assert_eq!(Properties::lookup("A\u{1}1", "TAGS"), None);
    }

    #[test]
    fn insert_replaces_in_place() {
        let mut p: Properties = [("A", "1"), ("B", "2")].into_iter().collect();
        p.insert("A", "3");
        assert_eq!(p.encode(), "A\u{1}3\u{2}B\u{1}2\u{2}");
        assert_eq!(p.remove("A").as_deref(), Some("3"));
        assert_eq!(p.encode(), "B\u{1}2\u{2}");
    }
}
