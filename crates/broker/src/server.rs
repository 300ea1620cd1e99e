//! The remoting server: an accept loop per port and, per connection, a read loop that decodes
//! frames and hands each request to its own task, plus a writer task that batches responses.
//!
//! A frame that cannot be decoded closes that connection only. Responses read from the peer
//! (answers to the broker's own requests) go to the connection's waiters.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use ferrocket_protocol::frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::connection::{ConnHandle, Outgoing};
use crate::processor::{self, RequestCtx};
use crate::Broker;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Frames queued per connection before request tasks wait for the writer.
const WRITE_QUEUE: usize = 1024;
/// Room the read buffer is given when less than `READ_MIN` is left.
const READ_CHUNK: usize = 32 * 1024;
const READ_MIN: usize = 4 * 1024;
/// Bytes gathered before a write syscall.
const WRITE_BATCH: usize = 64 * 1024;

/// Accepts connections until shutdown. `fast` marks the VIP port (no PULL_MESSAGE).
pub async fn accept_loop(b: Arc<Broker>, listener: TcpListener, fast: bool) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = b.shutdown.cancelled() => return,
        };
        let b2 = Arc::clone(&b);
        b.tasks.spawn(connection(b2, stream, peer, fast));
    }
}

async fn connection(b: Arc<Broker>, stream: TcpStream, peer: SocketAddr, fast: bool) {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(ConnHandle::new(id, peer, tx));
    b.conns.add(Arc::clone(&conn));
    let writer = tokio::spawn(write_loop(rx, wr));
    tracing::debug!(conn = id, %peer, fast, "connection opened");

    let mut buf = BytesMut::with_capacity(8 * 1024);
    let idle = std::time::Duration::from_secs(b.conf.server_channel_max_idle_time_seconds.max(1));
    'read: loop {
        loop {
            match frame::decode(&mut buf, b.conf.max_frame) {
                Ok(Some(cmd)) => {
                    if cmd.is_response() {
                        conn.complete(cmd);
                        continue;
                    }
                    let ctx = RequestCtx {
                        conn: Arc::clone(&conn),
                        fast,
                    };
                    if processor::may_wait(cmd.code) {
                        // Sends may wait for the disk, a slave or the Raft group, and pulls
                        // may be held: run the request here until it first has to wait (an
                        // ASYNC_FLUSH send usually never does), then give it its own task so
                        // the connection keeps reading (and SYNC_FLUSH sends group-commit).
                        let b2 = Arc::clone(&b);
                        let mut fut = Box::pin(async move { answer(&b2, &ctx, cmd).await });
                        let done = std::future::poll_fn(|cx| {
                            std::task::Poll::Ready(fut.as_mut().poll(cx).is_ready())
                        })
                        .await;
                        if !done {
                            b.tasks.spawn(fut);
                        }
                    } else {
                        // Everything else is quick and handled in arrival order.
                        answer(&b, &ctx, cmd).await;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(conn = id, %peer, error = %e, "malformed frame, closing connection");
                    break 'read;
                }
            }
        }
        if buf.capacity() - buf.len() < READ_MIN {
            // Frames split off the front still back in-flight requests, so this usually takes
            // fresh room: enough for a window of sends in one read instead of 64-byte reads.
            buf.reserve(READ_CHUNK);
        }
        let n = tokio::select! {
            r = rd.read_buf(&mut buf) => r,
            _ = tokio::time::sleep(idle) => {
                tracing::info!(conn = id, %peer, "closing idle connection");
                break;
            }
            _ = b.shutdown.cancelled() => break,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    b.conns.remove(id);
    let changed = b.clients.connection_closed(id);
    processor::client::notify_groups_changed(&b, &changed);
    drop(conn);
    // The writer ends once every in-flight request of this connection has answered.
    let _ = writer.await;
    tracing::debug!(conn = id, %peer, "connection closed");
}

async fn answer(b: &Arc<Broker>, ctx: &RequestCtx, cmd: ferrocket_protocol::RemotingCommand) {
    let oneway = cmd.is_oneway();
    let reply = processor::process(b, ctx, cmd).await;
    if let (false, Some(out)) = (oneway, reply) {
        ctx.conn.send_wait(out).await;
    }
}

fn encode_into(out: &Outgoing, dst: &mut BytesMut) -> bool {
    let start = dst.len();
    if let Err(e) = frame::encode(&out.cmd, dst) {
        tracing::error!(error = %e, code = out.cmd.code, "cannot encode a response");
        dst.truncate(start);
        return false;
    }
    if !out.parts.is_empty() {
        let extra: usize = out.parts.iter().map(|p| p.len()).sum();
        let len = i32::from_be_bytes(dst[start..start + 4].try_into().expect("4 bytes"));
        let Ok(new_len) = i32::try_from(len as usize + extra) else {
            dst.truncate(start);
            return false;
        };
        dst[start..start + 4].copy_from_slice(&new_len.to_be_bytes());
    }
    true
}

async fn write_loop(mut rx: mpsc::Receiver<Outgoing>, mut wr: OwnedWriteHalf) {
    let mut buf = BytesMut::with_capacity(WRITE_BATCH);
    while let Some(first) = rx.recv().await {
        if rx.is_empty() {
            // Answers often become ready together (one fsync, one Raft commit completes many
            // sends); let the tasks already woken queue theirs so one write carries them all.
            tokio::task::yield_now().await;
        }
        let mut next = Some(first);
        while let Some(out) = next.take() {
            if encode_into(&out, &mut buf) {
                for part in &out.parts {
                    if buf.len() + part.len() <= WRITE_BATCH {
                        buf.put_slice(part);
                    } else {
                        if !buf.is_empty() && wr.write_all(&buf).await.is_err() {
                            return;
                        }
                        buf.clear();
                        if wr.write_all(part).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if buf.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !buf.is_empty() && wr.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
    let _ = wr.shutdown().await;
}
