//! SYNC_MASTER acknowledgements: which slaves are connected, how far each has confirmed, and the
//! sends waiting for enough of them. Logic only; the HA server feeds it events.
//!
//! Waiters sit in a map ordered by offset, so one ack releases every send it covers with a
//! single `split_off`; there is no task or thread per waiting send.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// How a SYNC_MASTER send fared with its replicas (RocketMQ `PutMessageStatus` subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaOutcome {
    /// Enough slaves confirmed the bytes.
    Ok,
    /// Slaves were in sync but did not confirm within `slaveTimeout` (FLUSH_SLAVE_TIMEOUT, 12).
    FlushSlaveTimeout,
    /// Not enough slaves connected and within `haMaxGapNotInSync` (SLAVE_NOT_AVAILABLE, 11).
    SlaveNotAvailable,
}

/// Settings of the ack rule.
#[derive(Debug, Clone)]
pub struct AckConfig {
    /// `haMaxGapNotInSync` / `haSlaveFallbehindMax`: a slave further behind is not in sync.
    pub max_gap_not_in_sync: i64,
    /// `slaveTimeout`: longest wait for acks.
    pub slave_timeout: Duration,
    /// `inSyncReplicas` (counting the master). Slaves needed = `inSyncReplicas − 1`, at least 1:
    /// SYNC_MASTER keeps its 4.x meaning ("one slave") when this is left at 1.
    pub in_sync_replicas: u32,
    /// `totalReplicas` (counting the master), 0 = unset: caps the slaves needed at
    /// `totalReplicas − 1`.
    pub total_replicas: u32,
}

impl Default for AckConfig {
    fn default() -> Self {
        Self {
            max_gap_not_in_sync: 256 * 1024 * 1024,
            slave_timeout: Duration::from_millis(3000),
            in_sync_replicas: 1,
            total_replicas: 0,
        }
    }
}

impl AckConfig {
    /// Slaves whose ack a send needs.
    pub fn needed_slaves(&self) -> usize {
        let mut n = self.in_sync_replicas.saturating_sub(1).max(1);
        if self.total_replicas > 1 {
            n = n.min(self.total_replicas - 1);
        }
        n as usize
    }
}

/// Identifies one slave connection.
pub type SlaveId = u64;

#[derive(Debug, Clone)]
struct Slave {
    addr: SocketAddr,
    /// Last reported offset; `None` until the first report.
    acked: Option<i64>,
}

/// A slave as shown to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaveStatus {
    pub addr: SocketAddr,
    /// Last offset the slave reported (0 before its first report).
    pub acked_offset: i64,
    /// Master max offset − acked offset.
    pub lag_bytes: i64,
}

#[derive(Default)]
struct State {
    next_id: SlaveId,
    slaves: BTreeMap<SlaveId, Slave>,
    waiters: BTreeMap<i64, Vec<oneshot::Sender<ReplicaOutcome>>>,
    /// Waiter count at which closed (timed-out) senders are swept next.
    sweep_at: usize,
}

/// What [`AckTracker::begin_wait`] decided.
#[derive(Debug)]
pub enum Wait {
    /// Decided at once.
    Done(ReplicaOutcome),
    /// Resolved by an ack (`Ok`) or a disconnect (`SlaveNotAvailable`); the caller applies the
    /// timeout.
    Pending(oneshot::Receiver<ReplicaOutcome>),
}

/// Slaves' acknowledged offsets and the sends waiting on them.
pub struct AckTracker {
    config: AckConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for AckTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("AckTracker")
            .field("slaves", &st.slaves.len())
            .field("waiting_offsets", &st.waiters.len())
            .finish()
    }
}

const SWEEP_MIN: usize = 1024;

impl AckTracker {
    pub fn new(config: AckConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                sweep_at: SWEEP_MIN,
                ..State::default()
            }),
        }
    }

    pub fn config(&self) -> &AckConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slave connected (it is not in sync before its first report).
    pub fn slave_connected(&self, addr: SocketAddr) -> SlaveId {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.slaves.insert(id, Slave { addr, acked: None });
        id
    }

    /// A slave reported `offset`; releases every waiter now covered.
    pub fn slave_acked(&self, id: SlaveId, offset: i64) {
        let released = {
            let mut st = self.lock();
            match st.slaves.get_mut(&id) {
                Some(s) => s.acked = Some(s.acked.map_or(offset, |a| a.max(offset))),
                None => return,
            }
            match self.quorum_offset(&st) {
                Some(q) => {
                    let rest = st.waiters.split_off(&(q.saturating_add(1)));
                    std::mem::replace(&mut st.waiters, rest)
                }
                None => BTreeMap::new(),
            }
        };
        for tx in released.into_values().flatten() {
            let _ = tx.send(ReplicaOutcome::Ok);
        }
    }

    /// A slave connection closed. When the rest cannot satisfy the rule any more, every waiter
    /// is answered SLAVE_NOT_AVAILABLE now rather than at its timeout.
    pub fn slave_disconnected(&self, id: SlaveId) {
        let failed = {
            let mut st = self.lock();
            st.slaves.remove(&id);
            let reporting = st.slaves.values().filter(|s| s.acked.is_some()).count();
            if reporting < self.config.needed_slaves() {
                std::mem::take(&mut st.waiters)
            } else {
                BTreeMap::new()
            }
        };
        for tx in failed.into_values().flatten() {
            let _ = tx.send(ReplicaOutcome::SlaveNotAvailable);
        }
    }

    /// The highest offset confirmed by the needed number of slaves.
    fn quorum_offset(&self, st: &State) -> Option<i64> {
        let mut acks: Vec<i64> = st.slaves.values().filter_map(|s| s.acked).collect();
        let k = self.config.needed_slaves();
        if acks.len() < k {
            return None;
        }
        acks.sort_unstable_by(|a, b| b.cmp(a));
        Some(acks[k - 1])
    }

    /// Decides about a send whose bytes end at `offset` (also the master's max offset then):
    /// answered now when already covered or when too few slaves are in sync, else pending.
    pub fn begin_wait(&self, offset: i64) -> Wait {
        let mut st = self.lock();
        let in_sync = st
            .slaves
            .values()
            .filter_map(|s| s.acked)
            .filter(|a| offset - a <= self.config.max_gap_not_in_sync)
            .count();
        if in_sync < self.config.needed_slaves() {
            return Wait::Done(ReplicaOutcome::SlaveNotAvailable);
        }
        if self.quorum_offset(&st).is_some_and(|q| q >= offset) {
            return Wait::Done(ReplicaOutcome::Ok);
        }
        let (tx, rx) = oneshot::channel();
        st.waiters.entry(offset).or_default().push(tx);
        if st.waiters.len() >= st.sweep_at {
            // Waiters that timed out dropped their receivers; forget them.
            st.waiters.retain(|_, v| {
                v.retain(|tx| !tx.is_closed());
                !v.is_empty()
            });
            st.sweep_at = (st.waiters.len() * 2).max(SWEEP_MIN);
        }
        Wait::Pending(rx)
    }

    /// Waits until the needed slaves confirmed `offset`, at most `slaveTimeout`.
    pub async fn wait_for(&self, offset: i64) -> ReplicaOutcome {
        self.wait_for_within(offset, self.config.slave_timeout)
            .await
    }

    /// Like [`AckTracker::wait_for`] with an explicit timeout.
    pub async fn wait_for_within(&self, offset: i64, timeout: Duration) -> ReplicaOutcome {
        match self.begin_wait(offset) {
            Wait::Done(o) => o,
            Wait::Pending(rx) => match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(o)) => o,
                Ok(Err(_)) => ReplicaOutcome::SlaveNotAvailable,
                Err(_) => ReplicaOutcome::FlushSlaveTimeout,
            },
        }
    }

    /// Connected slaves with their acks and lag behind `master_max`.
    pub fn status(&self, master_max: i64) -> Vec<SlaveStatus> {
        self.lock()
            .slaves
            .values()
            .map(|s| {
                let acked = s.acked.unwrap_or(0);
                SlaveStatus {
                    addr: s.addr,
                    acked_offset: acked,
                    lag_bytes: (master_max - acked).max(0),
                }
            })
            .collect()
    }

    /// The best offset any slave confirmed (RocketMQ `push2SlaveMaxOffset`), 0 if none.
    pub fn max_acked(&self) -> i64 {
        self.lock()
            .slaves
            .values()
            .filter_map(|s| s.acked)
            .max()
            .unwrap_or(0)
    }

    /// Sends currently waiting (including timed-out ones not yet swept).
    pub fn waiting(&self) -> usize {
        self.lock().waiters.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, n], 10000))
    }

    fn tracker(in_sync: u32) -> AckTracker {
        AckTracker::new(AckConfig {
            max_gap_not_in_sync: 1000,
            in_sync_replicas: in_sync,
            ..AckConfig::default()
        })
    }

    fn pending(w: Wait) -> oneshot::Receiver<ReplicaOutcome> {
        match w {
            Wait::Pending(rx) => rx,
            Wait::Done(o) => panic!("expected pending, got {o:?}"),
        }
    }

    fn done(w: Wait) -> ReplicaOutcome {
        match w {
            Wait::Done(o) => o,
            Wait::Pending(_) => panic!("expected a decision"),
        }
    }

    #[test]
    fn no_slave_means_not_available() {
        let t = tracker(1);
        assert_eq!(done(t.begin_wait(10)), ReplicaOutcome::SlaveNotAvailable);
        // Connected but never reported: not in sync either.
        let _s = t.slave_connected(addr(2));
        assert_eq!(done(t.begin_wait(10)), ReplicaOutcome::SlaveNotAvailable);
    }

    #[test]
    fn a_slave_too_far_behind_is_not_in_sync() {
        let t = tracker(1);
        let s = t.slave_connected(addr(2));
        t.slave_acked(s, 0);
        assert!(matches!(t.begin_wait(1000), Wait::Pending(_)));
        assert_eq!(done(t.begin_wait(1001)), ReplicaOutcome::SlaveNotAvailable);
    }

    #[test]
    fn one_ack_releases_every_covered_waiter_and_only_those() {
        let t = tracker(1);
        let s = t.slave_connected(addr(2));
        t.slave_acked(s, 0);
        let mut a = pending(t.begin_wait(100));
        let mut b = pending(t.begin_wait(200));
        let mut b2 = pending(t.begin_wait(200));
        let mut c = pending(t.begin_wait(300));
        t.slave_acked(s, 200);
        assert_eq!(a.try_recv(), Ok(ReplicaOutcome::Ok));
        assert_eq!(b.try_recv(), Ok(ReplicaOutcome::Ok));
        assert_eq!(b2.try_recv(), Ok(ReplicaOutcome::Ok));
        assert!(c.try_recv().is_err());
        assert_eq!(t.waiting(), 1);
        // Already covered: answered at once.
        assert_eq!(done(t.begin_wait(150)), ReplicaOutcome::Ok);
        // Acks never move back.
        t.slave_acked(s, 50);
        assert_eq!(done(t.begin_wait(200)), ReplicaOutcome::Ok);
        t.slave_acked(s, 300);
        assert_eq!(c.try_recv(), Ok(ReplicaOutcome::Ok));
        assert_eq!(t.waiting(), 0);
    }

    #[test]
    fn best_slave_counts_with_one_needed() {
        let t = tracker(1);
        let s1 = t.slave_connected(addr(2));
        let s2 = t.slave_connected(addr(3));
        t.slave_acked(s1, 0);
        t.slave_acked(s2, 0);
        let mut w = pending(t.begin_wait(100));
        t.slave_acked(s2, 100);
        assert_eq!(w.try_recv(), Ok(ReplicaOutcome::Ok));
        assert_eq!(t.max_acked(), 100);
    }

    #[test]
    fn in_sync_replicas_three_needs_two_slaves() {
        let t = tracker(3);
        let s1 = t.slave_connected(addr(2));
        t.slave_acked(s1, 0);
        assert_eq!(done(t.begin_wait(10)), ReplicaOutcome::SlaveNotAvailable);
        let s2 = t.slave_connected(addr(3));
        t.slave_acked(s2, 0);
        let mut w = pending(t.begin_wait(100));
        t.slave_acked(s1, 100);
        assert!(w.try_recv().is_err());
        t.slave_acked(s2, 100);
        assert_eq!(w.try_recv(), Ok(ReplicaOutcome::Ok));
    }

    #[test]
    fn total_replicas_caps_the_need() {
        let cfg = AckConfig {
            in_sync_replicas: 3,
            total_replicas: 2,
            ..AckConfig::default()
        };
        assert_eq!(cfg.needed_slaves(), 1);
        assert_eq!(AckConfig::default().needed_slaves(), 1);
        let cfg = AckConfig {
            in_sync_replicas: 0,
            ..AckConfig::default()
        };
        assert_eq!(cfg.needed_slaves(), 1);
    }

    #[test]
    fn disconnect_fails_waiters_when_too_few_remain() {
        let t = tracker(1);
        let s1 = t.slave_connected(addr(2));
        let s2 = t.slave_connected(addr(3));
        t.slave_acked(s1, 0);
        t.slave_acked(s2, 0);
        let mut w = pending(t.begin_wait(100));
        t.slave_disconnected(s1);
        assert!(w.try_recv().is_err(), "one slave is still there");
        t.slave_disconnected(s2);
        assert_eq!(w.try_recv(), Ok(ReplicaOutcome::SlaveNotAvailable));
        assert_eq!(done(t.begin_wait(100)), ReplicaOutcome::SlaveNotAvailable);
        // Acks from a forgotten connection are ignored.
        t.slave_acked(s1, 500);
        assert_eq!(t.max_acked(), 0);
    }

    #[test]
    fn timed_out_waiters_are_swept() {
        let t = AckTracker::new(AckConfig::default());
        let s = t.slave_connected(addr(2));
        t.slave_acked(s, 0);
        for i in 1..=(SWEEP_MIN as i64 * 3) {
            drop(pending(t.begin_wait(i)));
        }
        assert!(t.waiting() < SWEEP_MIN * 2, "{} left", t.waiting());
    }

    #[test]
    fn status_shows_lag() {
        let t = tracker(1);
        let s = t.slave_connected(addr(2));
        t.slave_acked(s, 40);
        let st = t.status(100);
        assert_eq!(
            st,
            vec![SlaveStatus {
                addr: addr(2),
                acked_offset: 40,
                lag_bytes: 60
            }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wait_times_out_as_flush_slave_timeout() {
        let t = tracker(1);
        let s = t.slave_connected(addr(2));
        t.slave_acked(s, 0);
        let o = t.wait_for_within(10, Duration::from_millis(50)).await;
        assert_eq!(o, ReplicaOutcome::FlushSlaveTimeout);
    }
}
