//! Queue allocation among a group's consumers.

use std::sync::Arc;

use crate::route::MessageQueue;

/// Picks the queues of `me` among `consumers` (both sorted the same way by every consumer).
pub type Allocate =
    Arc<dyn Fn(&str, &[String], &[MessageQueue]) -> Vec<MessageQueue> + Send + Sync>;

/// RocketMQ's default (AllocateMessageQueueAveragely): contiguous ranges, the first
/// `queues % consumers` consumers taking one more.
///
/// ```
/// use ferrocket_client::consumer::allocate_average;
/// use ferrocket_client::MessageQueue;
/// let qs: Vec<MessageQueue> = (0..5)
///     .map(|i| MessageQueue { topic: "T".into(), broker_name: "b".into(), queue_id: i })
///     .collect();
/// let cs = vec!["c1".to_string(), "c2".to_string()];
/// assert_eq!(allocate_average("c1", &cs, &qs).len(), 3);
/// assert_eq!(allocate_average("c2", &cs, &qs).len(), 2);
/// ```
pub fn allocate_average(
    me: &str,
    consumers: &[String],
    queues: &[MessageQueue],
) -> Vec<MessageQueue> {
    let Some(index) = consumers.iter().position(|c| c == me) else {
        return Vec::new();
    };
    let (n, m) = (queues.len(), consumers.len());
    if n == 0 {
        return Vec::new();
    }
    let rem = n % m;
    let size = if n <= m {
        1
    } else if rem > 0 && index < rem {
        n / m + 1
    } else {
        n / m
    };
    let start = if rem > 0 && index < rem {
        index * size
    } else {
        index * size + rem
    };
    (0..size.min(n.saturating_sub(start)))
        .map(|i| queues[(start + i) % n].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_exactly_once() {
        for n in 0..12 {
            for m in 1..6 {
                let qs: Vec<MessageQueue> = (0..n)
                    .map(|i| MessageQueue {
                        topic: "T".into(),
                        broker_name: "b".into(),
                        queue_id: i,
                    })
                    .collect();
                let cs: Vec<String> = (0..m).map(|i| format!("c{i}")).collect();
                let mut all: Vec<MessageQueue> = cs
                    .iter()
                    .flat_map(|c| allocate_average(c, &cs, &qs))
                    .collect();
                all.sort();
                assert_eq!(all, qs, "{n} queues, {m} consumers");
            }
        }
    }
}
