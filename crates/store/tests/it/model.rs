//! Model-based test: random puts, batches, reads, truncations and (clean or crashed) reopens
//! against a plain in-memory model of what each queue holds.

use std::collections::{HashMap, HashSet};

use ferrocket_protocol::message::{decode, java_string_hash};
use ferrocket_store::{GetStatus, MessageStore, PutStatus};
use proptest::prelude::*;

use crate::common::{msg, small_config};

#[derive(Debug, Clone)]
enum Op {
    Put {
        t: u8,
        q: u8,
        len: usize,
        tag: u8,
    },
    Batch {
        t: u8,
        q: u8,
        n: u8,
    },
    Get {
        t: u8,
        q: u8,
        off: i64,
        max: usize,
        tag: Option<u8>,
    },
    Truncate {
        back: usize,
    },
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3u8, 0..2u8, 0..3000usize, 0..3u8).prop_map(|(t, q, len, tag)| Op::Put { t, q, len, tag }),
        2 => (0..3u8, 0..2u8, 1..5u8).prop_map(|(t, q, n)| Op::Batch { t, q, n }),
        4 => (0..3u8, 0..2u8, 0..40i64, 1..40usize, proptest::option::of(0..3u8))
            .prop_map(|(t, q, off, max, tag)| Op::Get { t, q, off, max, tag }),
        1 => (1..6usize).prop_map(|back| Op::Truncate { back }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

/// One stored message in the model.
#[derive(Debug, Clone)]
struct M {
    phys: i64,
    body: Vec<u8>,
    tag: u8,
}

fn tag_name(tag: u8) -> String {
    format!("Tag{tag}")
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Some(MessageStore::open(small_config(dir.path())).unwrap());
    let mut model: HashMap<(u8, u8), Vec<M>> = HashMap::new();
    let mut seq = 0u32;
    for op in ops {
        let s = store.as_ref().unwrap();
        match op {
            Op::Put { t, q, len, tag } => {
                seq += 1;
                let body: Vec<u8> = (0..len).map(|i| (i as u32 ^ seq) as u8).collect();
                let r = s
                    .put_message(msg(
                        &format!("M{t}"),
                        q.into(),
                        &body,
                        Some(&tag_name(tag)),
                        &[],
                    ))
                    .wait();
                assert_eq!(r.status, PutStatus::PutOk);
                let a = r.append.unwrap();
                let queue = model.entry((t, q)).or_default();
                assert_eq!(a.logics_offset, queue.len() as i64);
                queue.push(M {
                    phys: a.wrote_offset,
                    body,
                    tag,
                });
            }
            Op::Batch { t, q, n } => {
                let msgs: Vec<_> = (0..n)
                    .map(|i| {
                        seq += 1;
                        msg(
                            &format!("M{t}"),
                            q.into(),
                            &seq.to_be_bytes(),
                            Some(&tag_name(i % 3)),
                            &[],
                        )
                    })
                    .collect();
                let bodies: Vec<Vec<u8>> = msgs.iter().map(|m| m.body.to_vec()).collect();
                let r = s.put_messages(msgs).wait();
                let a = r.append.unwrap();
                let queue = model.entry((t, q)).or_default();
                assert_eq!(a.logics_offset, queue.len() as i64);
                let mut phys = a.wrote_offset;
                for (i, body) in bodies.into_iter().enumerate() {
                    let size = s.message_at(phys).unwrap().len() as i64;
                    queue.push(M {
                        phys,
                        body,
                        tag: (i % 3) as u8,
                    });
                    phys += size;
                }
            }
            Op::Get {
                t,
                q,
                off,
                max,
                tag,
            } => {
                let filter: Option<HashSet<i64>> =
                    tag.map(|g| [i64::from(java_string_hash(&tag_name(g)))].into());
                let r = s.get_message(
                    &format!("M{t}"),
                    q.into(),
                    off,
                    max,
                    1 << 30,
                    filter.as_ref(),
                );
                let queue = model.get(&(t, q)).cloned().unwrap_or_default();
                let n = queue.len() as i64;
                if queue.is_empty() {
                    assert!(matches!(
                        r.status,
                        GetStatus::NoMatchedLogicQueue | GetStatus::NoMessageInQueue
                    ));
                    continue;
                }
                assert_eq!(r.max_offset, n);
                if off >= n {
                    let want = if off == n {
                        GetStatus::OffsetOverflowOne
                    } else {
                        GetStatus::OffsetOverflowBadly
                    };
                    assert_eq!(r.status, want);
                    continue;
                }
                assert!(r.next_begin_offset > off);
                // Exactly the matching messages of [off, next_begin) come back, in order.
                let want: Vec<i64> = (off..r.next_begin_offset)
                    .filter(|&o| tag.is_none_or(|g| queue[o as usize].tag == g))
                    .collect();
                assert_eq!(r.queue_offsets, want);
                assert!(r.messages.len() <= max);
                assert_eq!(r.status == GetStatus::Found, !want.is_empty());
                for (b, &o) in r.messages.iter().zip(&r.queue_offsets) {
                    let m = decode(b).unwrap();
                    let e = &queue[o as usize];
                    assert_eq!((m.physical_offset, m.queue_offset), (e.phys, o));
                    assert_eq!(&m.body[..], &e.body[..]);
                }
            }
            Op::Truncate { back } => {
                let mut all: Vec<i64> = model.values().flatten().map(|m| m.phys).collect();
                all.sort_unstable();
                if all.len() < back {
                    continue;
                }
                let cut = all[all.len() - back];
                s.truncate(cut).unwrap();
                for queue in model.values_mut() {
                    queue.retain(|m| m.phys < cut);
                }
                assert_eq!(s.max_phy_offset(), cut);
            }
            Op::Reopen { clean } => {
                let s = store.take().unwrap();
                if clean {
                    s.shutdown().unwrap();
                    drop(s);
                } else {
                    s.abandon();
                }
                store = Some(MessageStore::open(small_config(dir.path())).unwrap());
            }
        }
    }
    // Finally every queue holds exactly the model's messages.
    let s = store.as_ref().unwrap();
    for ((t, q), queue) in &model {
        assert_eq!(
            s.max_offset_in_queue(&format!("M{t}"), (*q).into()),
            queue.len() as i64
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
