//! Fake servers: garbage or silence gives typed errors within the timeout, never a panic or a
//! hang.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use ferrocket_client::transport::Pool;
use ferrocket_client::{Admin, ClientConfig, ClientError, Message, Producer};
use ferrocket_protocol::{RemotingCommand, RequestCode};

/// A server on 127.0.0.65 that answers every connection with `reply` (or nothing).
fn fake(reply: Option<&'static [u8]>) -> String {
    let l = TcpListener::bind("127.0.0.65:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().take(8) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                if let Ok(n) = s.read(&mut buf) {
                    if n > 0 {
                        if let Some(r) = reply {
                            let _ = s.write_all(r);
                        }
                    }
                }
                std::thread::sleep(Duration::from_secs(3));
            });
        }
    });
    addr
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn garbage_and_silence_give_typed_errors() {
    let rt = rt();
    rt.block_on(async {
        let pool = Pool::new(Duration::from_secs(1), None);
        let req = || RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO);

        // Garbage: a frame header claiming 2 GiB.
        let addr = fake(Some(b"\x7f\xff\xff\xff\x00\x00\x00\x10garbage"));
        let t = Instant::now();
        let e = pool
            .invoke(&addr, req(), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(
            matches!(e, ClientError::Closed { .. } | ClientError::Timeout { .. }),
            "{e}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));

        // Silence: a timeout, on time.
        let addr = fake(None);
        let t = Instant::now();
        let e = pool
            .invoke(&addr, req(), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));

        // Nothing listening: an I/O error.
        let closed = TcpListener::bind("127.0.0.65:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let e = pool
            .invoke(&closed, req(), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(e, ClientError::Io { .. } | ClientError::Timeout { .. }),
            "{e}"
        );

        // The high-level API over a silent "name server".
        let addr = fake(None);
        let config = ClientConfig::new(&addr).timeout(Duration::from_millis(300));
        let admin = Admin::new(config.clone()).unwrap();
        assert!(admin.cluster_info().await.is_err());
        let p = Producer::builder()
            .config(config)
            .group("pg")
            .build()
            .unwrap();
        let e = p.send(Message::new("T", "x")).await.unwrap_err();
        assert!(
            e.is_retryable() || matches!(e, ClientError::NoRoute(_)),
            "{e}"
        );

        // Bad arguments are errors, not panics.
        assert!(Producer::builder()
            .group("")
            .namesrv_addr("127.0.0.1:1")
            .build()
            .is_err());
        assert!(ClientConfig::new(";;").namesrv_addr.is_some());
        assert!(Admin::new(ClientConfig::new(";;")).is_err());
    });
}

/// The first 8 bytes (length, then serialization type and header length) of the first frame
/// that reaches a listener on 127.0.0.65.
fn first_frame_head() -> (String, std::sync::mpsc::Receiver<[u8; 8]>) {
    let l = TcpListener::bind("127.0.0.65:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(mut s)) = l.incoming().next() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut head = [0u8; 8];
            if s.read_exact(&mut head).is_ok() {
                let _ = tx.send(head);
            }
        }
    });
    (addr, rx)
}

#[test]
fn requests_carry_the_serialization_the_pool_was_given() {
    use ferrocket_client::SerializeType;
    let rt = rt();
    for (t, byte) in [(SerializeType::Json, 0u8), (SerializeType::RocketMq, 1)] {
        let (addr, rx) = first_frame_head();
        let pool = Pool::new(Duration::from_secs(1), None).serialize_type(t);
        let req = RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO);
        let _ = rt.block_on(pool.invoke(&addr, req, Duration::from_millis(200)));
        let head = rx.recv_timeout(Duration::from_secs(5)).expect("a frame");
        assert_eq!(head[4], byte, "{t:?}: serialization byte of {head:?}");
    }
}
