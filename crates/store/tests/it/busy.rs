//! `osPageCacheBusyTimeOutMills`: while an append holds the commitlog lock too long, puts are
//! refused with `OsPageCacheBusy` instead of queueing behind it.

use std::sync::Arc;

use ferrocket_store::{MessageStore, PutStatus, StallEnv};

use crate::common::{msg, read_all, small_config};

#[test]
fn puts_are_refused_while_an_append_holds_the_lock_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let env = Arc::new(StallEnv::default());
    let config = small_config(dir.path());
    assert_eq!(config.os_page_cache_busy_timeout_ms, 1000);
    let store = Arc::new(MessageStore::open_with_env(config, env.clone()).unwrap());
    let put = |body: &[u8]| {
        store
            .put_message(msg("T", 0, body, None, &[]))
            .wait()
            .status
    };
    assert_eq!(put(b"before"), PutStatus::PutOk);

    env.hold_next();
    let stalled = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            store
                .put_message(msg("T", 0, b"stalled", None, &[]))
                .wait()
                .status
        })
    };
    env.wait_held();
    // Held, but not yet for longer than the timeout.
    env.set_ahead_ms(900);
    assert!(!store.is_os_page_cache_busy());
    // Held for 1.5 s by the store's clock: refused at once, without waiting for the lock.
    env.set_ahead_ms(1500);
    assert!(store.is_os_page_cache_busy());
    assert_eq!(put(b"refused"), PutStatus::OsPageCacheBusy);

    env.release();
    assert_eq!(stalled.join().unwrap(), PutStatus::PutOk);
    assert!(!store.is_os_page_cache_busy());
    assert_eq!(put(b"after"), PutStatus::PutOk);
    let bodies: Vec<_> = read_all(&store, "T", 0)
        .into_iter()
        .map(|m| m.body.to_vec())
        .collect();
    assert_eq!(
        bodies,
        [&b"before"[..], b"stalled", b"after"].map(|b| b.to_vec())
    );
    store.shutdown().unwrap();
}
