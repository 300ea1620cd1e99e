//! Broker metadata on sled: consumer offsets, topic configs, subscription groups and delay
//! offsets as opaque keyed bytes (JSON by convention). Never used on the append path.

use std::path::Path;

use crate::error::StoreError;

/// Which kind of metadata a key belongs to (one sled tree each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    ConsumerOffsets,
    Topics,
    SubscriptionGroups,
    DelayOffsets,
    /// Timer wheel progress (checkpoint and delivered markers).
    Timer,
    /// POP consumption (5.x receive/ack): cursors and messages in flight.
    Pop,
}

impl Namespace {
    fn tree_name(self) -> &'static str {
        match self {
            Namespace::ConsumerOffsets => "consumerOffset",
            Namespace::Topics => "topics",
            Namespace::SubscriptionGroups => "subscriptionGroup",
            Namespace::DelayOffsets => "delayOffset",
            Namespace::Timer => "timer",
            Namespace::Pop => "pop",
        }
    }
}

/// The metadata database.
#[derive(Debug, Clone)]
pub struct MetaKv {
    db: sled::Db,
}

impl MetaKv {
    /// Opens (creating) the database in `dir` (e.g. `<root>/config/kv`).
    ///
    /// A database still locked is waited for up to the store's `LOCK_WAIT`, as the store's
    /// directory lock is: a lock just released can look taken for a moment (a fork holds a
    /// copy of the descriptor until it execs; a reopen in the same process can race the old
    /// handle's teardown).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let deadline = std::time::Instant::now() + crate::store::LOCK_WAIT;
        loop {
            match sled::open(dir) {
                Ok(db) => return Ok(Self { db }),
                Err(e) if is_locked(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn tree(&self, ns: Namespace) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(ns.tree_name())?)
    }

    /// Stores `value` under `key`.
    pub fn put(&self, ns: Namespace, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tree(ns)?.insert(key.as_bytes(), value)?;
        Ok(())
    }

    /// Serializes `value` as JSON under `key`.
    pub fn put_json<T: serde::Serialize>(
        &self,
        ns: Namespace,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| StoreError::Config(format!("cannot serialize {key}: {e}")))?;
        self.put(ns, key, &bytes)
    }

    /// The value under `key`.
    pub fn get(&self, ns: Namespace, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree(ns)?.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    /// The JSON value under `key`; `None` if absent or not of type `T`.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        ns: Namespace,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        Ok(self
            .get(ns, key)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Removes `key`.
    pub fn remove(&self, ns: Namespace, key: &str) -> Result<(), StoreError> {
        self.tree(ns)?.remove(key.as_bytes())?;
        Ok(())
    }

    /// Every (key, value) of a namespace, in key order.
    pub fn entries(&self, ns: Namespace) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree(ns)?.iter() {
            let (k, v) = kv?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Whether sled could not open a database because another descriptor holds its file lock
/// (sled 0.34 says so only in the error's text).
fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = MetaKv::open(dir.path()).unwrap();
            kv.put(Namespace::ConsumerOffsets, "TopicA@group1", b"{\"0\":5}")
                .unwrap();
            kv.put_json(Namespace::DelayOffsets, "3", &42i64).unwrap();
            kv.put(Namespace::Topics, "gone", b"x").unwrap();
            kv.remove(Namespace::Topics, "gone").unwrap();
            kv.flush().unwrap();
        }
        let kv = MetaKv::open(dir.path()).unwrap();
        assert_eq!(
            kv.get(Namespace::ConsumerOffsets, "TopicA@group1")
                .unwrap()
                .as_deref(),
            Some(&b"{\"0\":5}"[..])
        );
        assert_eq!(
            kv.get_json::<i64>(Namespace::DelayOffsets, "3").unwrap(),
            Some(42)
        );
        assert!(kv.entries(Namespace::Topics).unwrap().is_empty());
        assert_eq!(kv.get(Namespace::SubscriptionGroups, "x").unwrap(), None);
    }

    /// A database whose previous handle is still going away opens once the lock is free,
    /// instead of failing at once.
    #[test]
    fn open_waits_for_a_lock_let_go_of_moments_later() {
        let dir = tempfile::tempdir().unwrap();
        let first = MetaKv::open(dir.path()).unwrap();
        first.put(Namespace::ConsumerOffsets, "k", b"v").unwrap();
        first.db.flush().unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(first);
        });
        let second = MetaKv::open(dir.path()).unwrap();
        holder.join().unwrap();
        assert_eq!(
            second
                .get(Namespace::ConsumerOffsets, "k")
                .unwrap()
                .as_deref(),
            Some(&b"v"[..])
        );
    }
}
