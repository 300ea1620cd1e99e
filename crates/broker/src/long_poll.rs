//! Long-polling wake-ups: one `Notify` per (topic, queueId), woken whenever a message lands in
//! that queue, so a held PULL_MESSAGE is answered as soon as there is something to read.
//!
//! A waiter registers (`Notified::enable`) *before* re-checking the store, so an arrival between
//! the check and the wait is never missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Wake-ups keyed by topic and queue.
#[derive(Debug, Default)]
pub struct PullNotifier {
    map: Mutex<HashMap<String, HashMap<i32, Arc<Notify>>>>,
}

impl PullNotifier {
    /// The notifier of (topic, queue), created on first use.
    pub fn notifier(&self, topic: &str, queue_id: i32) -> Arc<Notify> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get(topic).and_then(|q| q.get(&queue_id)) {
            return Arc::clone(n);
        }
        let n = Arc::new(Notify::new());
        m.entry(topic.to_string())
            .or_default()
            .insert(queue_id, Arc::clone(&n));
        n
    }

    /// Wakes every pull waiting on (topic, queue). Hot path (every send): no allocation.
    pub fn notify(&self, topic: &str, queue_id: i32) {
        let n = {
            let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
            m.get(topic).and_then(|q| q.get(&queue_id)).cloned()
        };
        if let Some(n) = n {
            n.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_registered_waiter() {
        let p = Arc::new(PullNotifier::default());
        let n = p.notifier("T", 0);
        let fut = n.notified();
        tokio::pin!(fut);
        fut.as_mut().enable();
        // A notification after enable() but before await is not lost.
        p.notify("T", 0);
        p.notify("T", 1);
        tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .expect("woken");
    }
}
