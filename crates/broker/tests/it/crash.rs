//! SIGKILL under load with SYNC_FLUSH: after a restart every acknowledged message is pullable
//! exactly once, at the queue offset its send response named.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ferrocket_protocol::SerializeType;

use crate::util::{create_topic, decode_all, pull_req, send_req, Broker};

const SENDERS: usize = 4;
const PER_SENDER: usize = 500;

#[test]
fn sync_flush_acknowledged_messages_survive_sigkill() {
    let mut b = Broker::start("flushDiskType = SYNC_FLUSH");
    {
        let mut c = b.client();
        create_topic(&mut c, "CR", 4);
    }
    let acked: Arc<Mutex<HashMap<String, (i32, i64)>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for s in 0..SENDERS {
        let addr = b.addr();
        let acked = Arc::clone(&acked);
        threads.push(std::thread::spawn(move || {
            let Ok(mut c) = ferrocket_testkit::RawClient::connect(&addr) else {
                return;
            };
            for i in 0..PER_SENDER {
                let body = format!("s{s}-{i}");
                let Ok(r) = c.call(send_req(
                    "CR",
                    s as i32,
                    body.as_bytes(),
                    None,
                    true,
                    SerializeType::Json,
                )) else {
                    return;
                };
                if r.code == 0 {
                    let q: i32 = r.ext("queueId").unwrap().parse().unwrap();
                    let o: i64 = r.ext("queueOffset").unwrap().parse().unwrap();
                    acked.lock().unwrap().insert(body, (q, o));
                }
            }
        }));
    }
    // Kill once a good share has been acknowledged (bounded wait).
    crate::util::eventually(std::time::Duration::from_secs(120), || {
        (acked.lock().unwrap().len() >= SENDERS * PER_SENDER / 2).then_some(())
    });
    b.guard.kill();
    killed.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    b.restart();
    let mut c = b.client();
    let mut seen: HashMap<String, (i32, i64)> = HashMap::new();
    for q in 0..4 {
        let mut off = 0;
        loop {
            let r = c
                .call(pull_req("G", "CR", q, off, "*", 0, SerializeType::Json))
                .unwrap();
            if r.code != 0 {
                eprintln!(
                    "queue {q} at {off}: code {} {:?} next {:?}",
                    r.code,
                    r.remark,
                    r.ext("nextBeginOffset")
                );
                break;
            }
            for m in decode_all(&r.body) {
                let body = String::from_utf8(m.body.to_vec()).unwrap();
                assert!(
                    seen.insert(body, (q, m.queue_offset)).is_none(),
                    "duplicate"
                );
            }
            off = r.ext("nextBeginOffset").unwrap().parse().unwrap();
        }
    }
    let mut missing: Vec<_> = acked
        .iter()
        .filter(|(b, at)| seen.get(*b) != Some(at))
        .collect();
    missing.sort_by_key(|(_, at)| **at);
    if !missing.is_empty() {
        for q in 0..4 {
            let r = c
                .call(
                    ferrocket_protocol::RemotingCommand::request(
                        ferrocket_protocol::RequestCode::GET_MAX_OFFSET,
                    )
                    .with_ext("topic", "CR")
                    .with_ext("queueId", q),
                )
                .unwrap();
            let acked_max = acked
                .values()
                .filter(|(qq, _)| *qq == q)
                .map(|(_, o)| *o)
                .max();
            eprintln!(
                "queue {q}: max offset after restart {:?}, highest acked {acked_max:?}",
                r.ext("offset")
            );
        }
        eprintln!(
            "{} of {} missing, first {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)]
        );
    }
    for (body, at) in &acked {
        assert_eq!(
            seen.get(body),
            Some(at),
            "acknowledged {body} lost or moved"
        );
    }
}
