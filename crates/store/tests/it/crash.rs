//! Crash test: a child process appends with SYNC_FLUSH and prints each durable-acked append; it
//! is killed with SIGKILL at seeded random points; recovery must keep every acked append byte for
//! byte, show nothing half-written and keep queue offsets gapless. Five rounds on one directory.
//!
//! The child is this test binary re-executed on `crash::crash_child` with `FERROCKET_CRASH_DIR`.
//! Reproduce a run with `FERROCKET_CRASH_SEED=<seed printed on failure>`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use ferrocket_protocol::message::decode;
use ferrocket_store::{MessageStore, PutStatus};

use crate::common::{body, msg, read_all, sync_config};

const ROUNDS: u64 = 5;
const WRITERS: u64 = 4;

fn topic(round: u64, i: u64) -> (String, i32) {
    (format!("Crash{round}T{}", i % 3), (i % 2) as i32)
}

/// The child: append forever, printing `ACK <i> <phys> <queue offset>` after each durable ack.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(round), Ok(seed)) = (
        std::env::var("FERROCKET_CRASH_DIR"),
        std::env::var("FERROCKET_CRASH_ROUND"),
        std::env::var("FERROCKET_CRASH_SEED"),
    ) else {
        return; // only meaningful when re-executed by the parent test
    };
    let round: u64 = round.parse().unwrap();
    let seed: u64 = seed.parse().unwrap();
    let store =
        std::sync::Arc::new(MessageStore::open(sync_config(std::path::Path::new(&dir))).unwrap());
    // Four appenders so that kills land amid concurrent writes and shared fsyncs.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for i in (w..).step_by(WRITERS as usize) {
                    let (t, q) = topic(round, i);
                    let r = store
                        .put_message(msg(&t, q, &body(seed + round, i), None, &[]))
                        .wait();
                    if r.status == PutStatus::PutOk {
                        let a = r.append.unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {i} {} {}", a.wrote_offset, a.logics_offset).unwrap();
                        out.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn sigkill_at_random_points_loses_no_acked_append() {
    let seed: u64 = std::env::var("FERROCKET_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash test seed: {seed} (set FERROCKET_CRASH_SEED to reproduce)");
    let mut rng = seed;
    let dir = tempfile::tempdir().unwrap();
    // (round, i) -> (phys, queue offset) of every acked append.
    let mut acked: HashMap<(u64, u64), (i64, i64)> = HashMap::new();
    for round in 0..ROUNDS {
        let kill_after = 20 + xorshift(&mut rng) % 400;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FERROCKET_CRASH_DIR", dir.path())
            .env("FERROCKET_CRASH_ROUND", round.to_string())
            .env("FERROCKET_CRASH_SEED", seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut n = 0;
        while n < kill_after {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("seed {seed}: child ended before {kill_after} acks"))
                .unwrap();
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.first() != Some(&"ACK") {
                continue;
            }
            let i: u64 = f[1].parse().unwrap();
            acked.insert((round, i), (f[2].parse().unwrap(), f[3].parse().unwrap()));
            n += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Acks the child printed before dying also count.
        for line in lines.map_while(Result::ok) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 4 && f[0] == "ACK" {
                let i: u64 = f[1].parse().unwrap();
                acked.insert((round, i), (f[2].parse().unwrap(), f[3].parse().unwrap()));
            }
        }
        verify(dir.path(), seed, &acked);
    }
}

fn verify(dir: &std::path::Path, seed: u64, acked: &HashMap<(u64, u64), (i64, i64)>) {
    let store = MessageStore::open(sync_config(dir))
        .unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"));
    // Every acked append reads back byte for byte, at its physical and its queue offset.
    for (&(round, i), &(phys, qo)) in acked {
        let (t, q) = topic(round, i);
        let raw = store
            .message_at(phys)
            .unwrap_or_else(|| panic!("seed {seed}: acked append {round}/{i} at {phys} lost"));
        let m = decode(&raw).unwrap_or_else(|e| panic!("seed {seed}: {round}/{i}: {e}"));
        assert_eq!(
            (m.topic.as_str(), m.queue_id, m.queue_offset),
            (t.as_str(), q, qo),
            "seed {seed}"
        );
        assert_eq!(&m.body[..], &body(seed + round, i)[..], "seed {seed}");
        let r = store.get_message(&t, q, qo, 1, 1 << 20, None);
        assert_eq!(&r.messages[0][..], &raw[..], "seed {seed}");
    }
    // Nothing half-written: the whole commitlog parses up to its end.
    let mut off = store.min_phy_offset();
    while off < store.max_phy_offset() {
        let data = store.commitlog_data(off, 1 << 30).unwrap();
        let mut pos = 0;
        while pos + 8 <= data.len() {
            let size = i32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            if data[pos + 4..pos + 8] == [0xCB, 0xD4, 0x31, 0x94] {
                break;
            }
            decode(&data[pos..])
                .unwrap_or_else(|e| panic!("seed {seed}: bad record at {}: {e}", off + pos as i64));
            pos += size;
        }
        off += data.len() as i64;
    }
    // Queue offsets have no gaps (read_all asserts it).
    for round in 0..ROUNDS {
        for k in 0..6u64 {
            let (t, q) = topic(round, k);
            let n = read_all(&store, &t, q).len() as i64;
            let acked_max = acked
                .iter()
                .filter(|((r, i), _)| *r == round && topic(*r, *i) == (t.clone(), q))
                .map(|(_, &(_, qo))| qo + 1)
                .max()
                .unwrap_or(0);
            assert!(n >= acked_max, "seed {seed}: {t}/{q} has {n} < {acked_max}");
        }
    }
    store.shutdown().unwrap();
}
