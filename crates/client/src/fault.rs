//! Latency-based fault avoidance, as RocketMQ's producer does it: a broker whose send failed or
//! was slow is avoided for a while, the longer the slower it was.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Send latency thresholds (ms) and how long a broker is avoided after reaching each.
const LATENCY_MS: [u64; 7] = [50, 100, 550, 1_000, 2_000, 3_000, 15_000];
const AVOID_MS: [u64; 7] = [0, 0, 30_000, 60_000, 120_000, 180_000, 600_000];

/// Which brokers to avoid until when.
#[derive(Debug, Default)]
pub struct FaultTracker {
    until: Mutex<HashMap<String, Instant>>,
}

impl FaultTracker {
    /// Records a send to `broker` that took `latency`; `failed` counts as the worst latency.
    pub fn record(&self, broker: &str, latency: Duration, failed: bool) {
        let ms = if failed {
            30_000
        } else {
            latency.as_millis() as u64
        };
        let avoid = LATENCY_MS
            .iter()
            .zip(AVOID_MS)
            .rev()
            .find(|(l, _)| ms >= **l)
            .map_or(0, |(_, a)| a);
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if avoid == 0 {
            until.remove(broker);
        } else {
            until.insert(
                broker.to_string(),
                Instant::now() + Duration::from_millis(avoid),
            );
        }
    }

    /// Whether `broker` may be used now.
    pub fn available(&self, broker: &str) -> bool {
        self.until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(broker)
            .is_none_or(|t| Instant::now() >= *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_and_failed_brokers_are_avoided() {
        let f = FaultTracker::default();
        f.record("a", Duration::from_millis(10), false);
        assert!(f.available("a"));
        f.record("b", Duration::from_millis(600), false);
        assert!(!f.available("b"));
        f.record("c", Duration::ZERO, true);
        assert!(!f.available("c"));
        // A fast send clears the penalty.
        f.record("c", Duration::from_millis(5), false);
        assert!(f.available("c"));
    }
}
