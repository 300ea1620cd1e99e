//! Headers of the broker's commands: send (long keys and SEND_MESSAGE_V2's `a`..`n`), pull,
//! offsets, clients, topics and stats. Key names are RocketMQ's.

use crate::command::RemotingCommand;
use crate::error::HeaderError;
use crate::header::CommandHeader;

crate::header! {
    /// SEND_MESSAGE (10) with long keys.
    pub struct SendMessageRequestHeader {
        required {
            producer_group: String = "producerGroup",
            topic: String = "topic",
            default_topic: String = "defaultTopic",
            default_topic_queue_nums: i32 = "defaultTopicQueueNums",
            queue_id: i32 = "queueId",
            sys_flag: i32 = "sysFlag",
            born_timestamp: i64 = "bornTimestamp",
            flag: i32 = "flag",
        }
        optional {
            properties: String = "properties",
            reconsume_times: i32 = "reconsumeTimes",
            unit_mode: bool = "unitMode",
            max_reconsume_times: i32 = "maxReconsumeTimes",
            batch: bool = "batch",
            broker_name: String = "brokerName",
        }
    }
}

crate::header! {
    /// SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320): the same fields under one-letter keys.
    pub struct SendMessageRequestHeaderV2 {
        required {
            a: String = "a",
            b: String = "b",
            c: String = "c",
            d: i32 = "d",
            e: i32 = "e",
            f: i32 = "f",
            g: i64 = "g",
            h: i32 = "h",
        }
        optional {
            i: String = "i",
            j: i32 = "j",
            k: bool = "k",
            l: i32 = "l",
            m: bool = "m",
            n: String = "n",
        }
    }
}

impl SendMessageRequestHeader {
    /// Reads the header in whichever key form the request code uses.
    pub fn from_request(cmd: &RemotingCommand, v2: bool) -> Result<Self, HeaderError> {
        if !v2 {
            return Self::from_command(cmd);
        }
        let h: SendMessageRequestHeaderV2 = cmd.header()?;
        Ok(SendMessageRequestHeader {
            producer_group: h.a,
            topic: h.b,
            default_topic: h.c,
            default_topic_queue_nums: h.d,
            queue_id: h.e,
            sys_flag: h.f,
            born_timestamp: h.g,
            flag: h.h,
            properties: h.i,
            reconsume_times: h.j,
            unit_mode: h.k,
            max_reconsume_times: h.l,
            batch: h.m,
            broker_name: h.n,
        })
    }
}

crate::header! {
    /// PULL_MESSAGE (11).
    pub struct PullMessageRequestHeader {
        required {
            consumer_group: String = "consumerGroup",
            topic: String = "topic",
            queue_id: i32 = "queueId",
            queue_offset: i64 = "queueOffset",
            max_msg_nums: i32 = "maxMsgNums",
            sys_flag: i32 = "sysFlag",
            commit_offset: i64 = "commitOffset",
            suspend_timeout_millis: i64 = "suspendTimeoutMillis",
        }
        optional {
            subscription: String = "subscription",
            sub_version: i64 = "subVersion",
            expression_type: String = "expressionType",
            max_msg_bytes: i32 = "maxMsgBytes",
        }
    }
}

crate::header! {
    /// QUERY_CONSUMER_OFFSET (14).
    pub struct QueryConsumerOffsetRequestHeader {
        required {
            consumer_group: String = "consumerGroup",
            topic: String = "topic",
            queue_id: i32 = "queueId",
        }
        optional { set_zero_if_not_found: bool = "setZeroIfNotFound", }
    }
}

crate::header! {
    /// UPDATE_CONSUMER_OFFSET (15).
    pub struct UpdateConsumerOffsetRequestHeader {
        required {
            consumer_group: String = "consumerGroup",
            topic: String = "topic",
            queue_id: i32 = "queueId",
            commit_offset: i64 = "commitOffset",
        }
        optional {}
    }
}

crate::header! {
    /// GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), GET_EARLIEST_MSG_STORETIME (32).
    pub struct TopicQueueHeader {
        required { topic: String = "topic", queue_id: i32 = "queueId", }
        optional {}
    }
}

crate::header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP (29).
    pub struct SearchOffsetRequestHeader {
        required { topic: String = "topic", queue_id: i32 = "queueId", timestamp: i64 = "timestamp", }
        optional {}
    }
}

crate::header! {
    /// UNREGISTER_CLIENT (35).
    pub struct UnregisterClientRequestHeader {
        required { client_id: String = "clientID", }
        optional { producer_group: String = "producerGroup", consumer_group: String = "consumerGroup", }
    }
}

crate::header! {
    /// GET_CONSUMER_LIST_BY_GROUP (38), GET_CONSUMER_CONNECTION_LIST (203), NOTIFY_CONSUMER_IDS_CHANGED (40).
    pub struct ConsumerGroupHeader {
        required { consumer_group: String = "consumerGroup", }
        optional {}
    }
}

crate::header! {
    /// UPDATE_AND_CREATE_TOPIC (17).
    pub struct CreateTopicRequestHeader {
        required {
            topic: String = "topic",
            read_queue_nums: i32 = "readQueueNums",
            write_queue_nums: i32 = "writeQueueNums",
            perm: i32 = "perm",
        }
        optional {
            default_topic: String = "defaultTopic",
            topic_filter_type: String = "topicFilterType",
            topic_sys_flag: i32 = "topicSysFlag",
            order: bool = "order",
        }
    }
}

crate::header! {
    /// DELETE_TOPIC_IN_BROKER (215), GET_TOPIC_STATS_INFO (202).
    pub struct TopicHeader {
        required { topic: String = "topic", }
        optional {}
    }
}

crate::header! {
    /// GET_CONSUME_STATS (208).
    pub struct GetConsumeStatsRequestHeader {
        required { consumer_group: String = "consumerGroup", }
        optional { topic: String = "topic", }
    }
}

crate::header! {
    /// POP_MESSAGE (200050, 5.x): pop up to `maxMsgNums` of a queue (-1: any), invisible for
    /// `invisibleTime` ms, held up to `pollTime` ms.
    pub struct PopMessageRequestHeader {
        required {
            consumer_group: String = "consumerGroup",
            topic: String = "topic",
            queue_id: i32 = "queueId",
            max_msg_nums: i32 = "maxMsgNums",
            invisible_time: i64 = "invisibleTime",
            poll_time: i64 = "pollTime",
            born_time: i64 = "bornTime",
            init_mode: i32 = "initMode",
        }
        optional {
            exp_type: String = "expType",
            exp: String = "exp",
            order: bool = "order",
            attempt_id: String = "attemptId",
        }
    }
}

crate::header! {
    /// ACK_MESSAGE (200051, 5.x); CHANGE_MESSAGE_INVISIBLETIME (200053) adds `invisibleTime`.
    pub struct AckMessageRequestHeader {
        required {
            consumer_group: String = "consumerGroup",
            topic: String = "topic",
            queue_id: i32 = "queueId",
            extra_info: String = "extraInfo",
            offset: i64 = "offset",
        }
        optional {
            invisible_time: i64 = "invisibleTime",
        }
    }
}
