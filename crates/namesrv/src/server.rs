//! The remoting server: accept loop, one task per connection reading frames and answering them
//! in order, the broker-expiry scan, and shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use ferrocket_protocol::frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::route::ConnId;
use crate::{processor, State};

/// A running name server.
#[derive(Debug)]
pub struct NamesrvHandle {
    addr: SocketAddr,
    cancel: CancellationToken,
    tasks: TaskTracker,
    state: Arc<State>,
}

impl NamesrvHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (for in-process tests and benches).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Stops accepting, closes connections and waits for every task to end.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Binds and starts serving in the current tokio runtime.
pub async fn start(state: Arc<State>) -> std::io::Result<NamesrvHandle> {
    let bind = SocketAddr::new(state.config.bind_address, state.config.listen_port);
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(accept_loop(
        listener,
        Arc::clone(&state),
        cancel.clone(),
        tasks.clone(),
    ));
    tasks.spawn(expiry_loop(Arc::clone(&state), cancel.clone()));
    Ok(NamesrvHandle {
        addr,
        cancel,
        tasks,
        state,
    })
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
                    tasks.spawn(connection(stream, peer, conn, Arc::clone(&state), cancel.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    state: Arc<State>,
    cancel: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let idle = state.config.server_channel_max_idle_time;
    let mut inbuf = BytesMut::with_capacity(4096);
    let mut outbuf = BytesMut::with_capacity(4096);
    'conn: loop {
        let read = tokio::select! {
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(idle, stream.read_buf(&mut inbuf)) => r,
        };
        match read {
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection");
                break;
            }
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
        }
        loop {
            match frame::decode(&mut inbuf, frame::DEFAULT_MAX_FRAME) {
                Ok(Some(req)) => {
                    if req.is_response() {
                        continue;
                    }
                    if let Some(resp) = processor::handle(&state, &req, conn) {
                        if let Err(e) = frame::encode(&resp, &mut outbuf) {
                            tracing::warn!(%peer, "cannot encode response: {e}");
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, "closing connection after a malformed frame: {e}");
                    break 'conn;
                }
            }
        }
        if !outbuf.is_empty() {
            if stream.write_all(&outbuf).await.is_err() {
                break;
            }
            outbuf.clear();
        }
    }
    let removed = state
        .routes
        .write()
        .expect("route lock")
        .connection_closed(conn);
    for r in removed {
        tracing::info!(broker = %r.broker_addr, name = %r.broker_name, id = r.broker_id, "broker removed: {}", r.reason);
    }
}

async fn expiry_loop(state: Arc<State>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(state.config.scan_not_active_broker_interval);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                let removed = state.routes.write().expect("route lock").expire(Instant::now());
                for r in removed {
                    tracing::warn!(broker = %r.broker_addr, name = %r.broker_name, id = r.broker_id, "broker removed: {}", r.reason);
                }
            }
        }
    }
}
