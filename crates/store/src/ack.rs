//! Waiting for an offset to become durable (or confirmed): a watermark with waiters, and the
//! future a put returns.
//!
//! No async runtime is needed: a waiter is a slot completed by whichever thread moves the
//! watermark (or by the deadline reaper). [`PutFuture`] implements `Future` (await it from async
//! code without blocking the runtime) and has a blocking [`PutFuture::wait`] for threads.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::status::{PutResult, PutStatus};

/// What a slot holds: the outcome once known, the task to wake, and whether a thread sleeps on
/// the condvar (only then does completing it pay for a notify, a syscall even with nobody
/// waiting; async callers, the broker's case, never do).
#[derive(Debug, Default)]
struct SlotState {
    outcome: Option<bool>,
    waker: Option<Waker>,
    thread_waits: bool,
}

/// A one-shot completion slot.
#[derive(Debug, Default)]
pub struct AckSlot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

impl AckSlot {
    /// Completes the slot (`true` = reached, `false` = timed out); later calls are ignored.
    fn complete(&self, reached: bool) {
        let (waker, thread_waits) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.outcome.is_some() {
                return;
            }
            st.outcome = Some(reached);
            (st.waker.take(), st.thread_waits)
        };
        if thread_waits {
            self.cv.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match st.outcome {
            Some(r) => Poll::Ready(r),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn wait(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = st.outcome {
                return r;
            }
            st.thread_waits = true;
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct Waiter {
    target: i64,
    deadline: Instant,
    slot: Arc<AckSlot>,
}

/// A monotonically advancing offset (flushed, confirmed) that callers can wait on.
pub struct Watermark {
    value: AtomicI64,
    waiters: Mutex<VecDeque<Waiter>>,
    reaper_cv: Condvar,
}

impl std::fmt::Debug for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watermark")
            .field("value", &self.get())
            .finish()
    }
}

impl Watermark {
    pub fn new(value: i64) -> Self {
        Self {
            value: AtomicI64::new(value),
            waiters: Mutex::new(VecDeque::new()),
            reaper_cv: Condvar::new(),
        }
    }

    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Acquire)
    }

    /// Sets the value (it may move back, e.g. after a truncation) and completes every waiter whose
    /// target it reaches.
    pub fn set(&self, v: i64) {
        self.value.store(v, Ordering::Release);
        let done: Vec<Arc<AckSlot>> = {
            let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            let mut done = Vec::new();
            w.retain(|x| {
                if x.target <= v {
                    done.push(Arc::clone(&x.slot));
                    false
                } else {
                    true
                }
            });
            done
        };
        for s in done {
            s.complete(true);
        }
    }

    /// A slot completed when the value reaches `target`, or with `false` after `timeout`.
    pub fn wait_for(&self, target: i64, timeout: Duration) -> Arc<AckSlot> {
        let slot = Arc::new(AckSlot::default());
        {
            let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            if self.get() < target {
                let deadline = Instant::now() + timeout;
                // The reaper sleeps until the earliest deadline it knows; wake it only when this
                // one comes sooner (not once per put: that would cost a context switch each).
                let sooner = w.front().is_none_or(|f| deadline < f.deadline);
                w.push_back(Waiter {
                    target,
                    deadline,
                    slot: Arc::clone(&slot),
                });
                if sooner {
                    self.reaper_cv.notify_one();
                }
                return slot;
            }
        }
        slot.complete(true);
        slot
    }

    /// Number of waiters not yet completed.
    pub fn pending(&self) -> usize {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Completes expired waiters with `false` until `stop()` says so. Run on its own thread.
    pub fn run_reaper(&self, stop: &dyn Fn() -> bool) {
        let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        while !stop() {
            let now = Instant::now();
            let mut expired = Vec::new();
            w.retain(|x| {
                if x.deadline <= now {
                    expired.push(Arc::clone(&x.slot));
                    false
                } else {
                    true
                }
            });
            if !expired.is_empty() {
                drop(w);
                for s in expired {
                    s.complete(false);
                }
                w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let next = w
                .iter()
                .map(|x| x.deadline)
                .min()
                .map(|d| d.saturating_duration_since(now))
                .unwrap_or(Duration::from_millis(100))
                .min(Duration::from_millis(100));
            w = self
                .reaper_cv
                .wait_timeout(w, next)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Wakes the reaper (shutdown).
    pub fn wake_reaper(&self) {
        self.reaper_cv.notify_all();
    }

    /// Completes every waiter with `false` (shutdown).
    pub fn fail_all(&self) {
        let all: Vec<_> = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for x in all {
            x.slot.complete(false);
        }
    }
}

/// Resolves to `true` when a watermark reached its target, `false` on timeout.
#[derive(Debug, Clone)]
pub struct OffsetFuture {
    slot: Arc<AckSlot>,
}

impl OffsetFuture {
    pub(crate) fn new(slot: Arc<AckSlot>) -> Self {
        Self { slot }
    }

    /// Blocks the calling thread until resolved.
    pub fn wait(self) -> bool {
        self.slot.wait()
    }
}

impl Future for OffsetFuture {
    type Output = bool;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        self.slot.poll(cx)
    }
}

/// The result of a put: ready at once (async flush, refusals) or when an fsync covers the append.
#[derive(Debug)]
pub struct PutFuture {
    result: Option<PutResult>,
    slot: Option<Arc<AckSlot>>,
    on_timeout: PutStatus,
}

impl PutFuture {
    pub(crate) fn ready(result: PutResult) -> Self {
        Self {
            result: Some(result),
            slot: None,
            on_timeout: PutStatus::FlushDiskTimeout,
        }
    }

    pub(crate) fn pending(result: PutResult, slot: Arc<AckSlot>, on_timeout: PutStatus) -> Self {
        Self {
            result: Some(result),
            slot: Some(slot),
            on_timeout,
        }
    }

    /// Blocks the calling thread until resolved (for non-async callers and tests).
    pub fn wait(mut self) -> PutResult {
        let mut r = self.result.take().expect("polled after completion");
        if let Some(slot) = self.slot.take() {
            if !slot.wait() {
                r.status = self.on_timeout;
            }
        }
        r
    }
}

impl Future for PutFuture {
    type Output = PutResult;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PutResult> {
        let reached = match &self.slot {
            None => true,
            Some(slot) => match slot.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r,
            },
        };
        let mut r = self.result.take().expect("polled after completion");
        if !reached {
            r.status = self.on_timeout;
        }
        Poll::Ready(r)
    }
}
