//! A lock-free latency histogram: buckets 5% wide from 1 µs to about an hour.

use std::sync::atomic::{AtomicU64, Ordering};

/// Latency histogram: buckets 5% wide from 1 µs to ~1 h.
pub struct Hist {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

const GROWTH: f64 = 1.05;

impl Hist {
    pub fn new() -> Self {
        Hist {
            buckets: (0..460).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
    pub fn record(&self, us: u64) {
        let i = ((us.max(1) as f64).ln() / GROWTH.ln()) as usize;
        self.buckets[i.min(self.buckets.len() - 1)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(us, Ordering::Relaxed);
    }
    /// (p50, p99, p999, max) in µs, and resets.
    pub fn take(&self) -> [u64; 4] {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .collect();
        let max = self.max.swap(0, Ordering::Relaxed);
        let total: u64 = counts.iter().sum();
        let q = |p: f64| {
            let want = (total as f64 * p).ceil() as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= want.max(1) {
                    return GROWTH.powi(i as i32 + 1) as u64;
                }
            }
            0
        };
        if total == 0 {
            return [0; 4];
        }
        [q(0.5), q(0.99), q(0.999), max]
    }
}
