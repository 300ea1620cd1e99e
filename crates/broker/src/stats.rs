//! Counters behind GET_BROKER_RUNTIME_INFO: messages put and got (total and since local
//! midnight-ish start), sampled once a second for TPS over the last 10 s.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Put/get counters.
#[derive(Debug, Default)]
pub struct Stats {
    put: AtomicU64,
    get: AtomicU64,
    samples: Mutex<VecDeque<(Instant, u64, u64)>>,
}

impl Stats {
    /// Hot path: one relaxed add.
    pub fn add_put(&self, n: u64) {
        self.put.fetch_add(n, Ordering::Relaxed);
    }

    /// Hot path: one relaxed add.
    pub fn add_get(&self, n: u64) {
        self.get.fetch_add(n, Ordering::Relaxed);
    }

    pub fn put_total(&self) -> u64 {
        self.put.load(Ordering::Relaxed)
    }

    pub fn get_total(&self) -> u64 {
        self.get.load(Ordering::Relaxed)
    }

    /// Records a sample (called every second); keeps 11 samples.
    pub fn sample(&self, now: Instant) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back((now, self.put_total(), self.get_total()));
        while s.len() > 11 {
            s.pop_front();
        }
    }

    /// (put TPS, get TPS) over the sampled window.
    pub fn tps(&self) -> (f64, f64) {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        match (s.front(), s.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let secs =
                    b.0.duration_since(a.0)
                        .max(Duration::from_millis(1))
                        .as_secs_f64();
                ((b.1 - a.1) as f64 / secs, (b.2 - a.2) as f64 / secs)
            }
            _ => (0.0, 0.0),
        }
    }
}
