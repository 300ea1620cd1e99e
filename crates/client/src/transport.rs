//! Connections: one TCP connection per address, requests matched to responses by opaque,
//! oneway sends, requests from the server (NOTIFY_CONSUMER_IDS_CHANGED,
//! CHECK_TRANSACTION_STATE) handed to a handler, and a pool that reconnects on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use ferrocket_protocol::{frame, RemotingCommand, SerializeType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, Result};

/// Handles a request the server sent us; the returned command (if any) is the answer.
pub type ServerRequestHandler =
    Arc<dyn Fn(&str, RemotingCommand) -> Option<RemotingCommand> + Send + Sync>;

type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<RemotingCommand>>>>;

/// Largest frame accepted from a server.
const MAX_FRAME: usize = 16 << 20;

static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(1);

/// One connection to a name server or broker.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrocket_client::ClientError> {
/// use ferrocket_client::transport::Connection;
/// use ferrocket_protocol::{RemotingCommand, RequestCode};
/// use std::time::Duration;
/// let c = Connection::connect("127.0.0.1:9876", Duration::from_secs(3), None).await?;
/// let r = c.invoke(RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO), Duration::from_secs(3)).await?;
/// println!("code {}", r.code);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Connection {
    addr: String,
    out: mpsc::UnboundedSender<BytesMut>,
    pending: Pending,
    closed: Arc<AtomicBool>,
    tasks: Vec<tokio::task::AbortHandle>,
    /// How the headers of our requests are serialized.
    serialize: SerializeType,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Connection {
    /// Connects to `addr` within `timeout`; requests go with JSON headers.
    pub async fn connect(
        addr: &str,
        timeout: Duration,
        handler: Option<ServerRequestHandler>,
    ) -> Result<Arc<Connection>> {
        Self::connect_with(addr, timeout, handler, SerializeType::Json).await
    }

    /// Like [`Connection::connect`], with the headers of our requests serialized as
    /// `serialize` (answers are read in whatever serialization they come in).
    pub async fn connect_with(
        addr: &str,
        timeout: Duration,
        handler: Option<ServerRequestHandler>,
        serialize: SerializeType,
    ) -> Result<Arc<Connection>> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                addr: addr.to_string(),
                timeout_ms: timeout.as_millis() as u64,
            })?
            .map_err(|source| ClientError::Io {
                addr: addr.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<BytesMut>();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let out = tx.clone();
        let pending_c = Arc::clone(&pending);
        let closed_c = Arc::clone(&closed);

        let closed_w = Arc::clone(&closed);
        let writer = tokio::spawn(async move {
            while let Some(mut buf) = rx.recv().await {
                if rx.is_empty() {
                    // Requests often become ready together (one batch of answers wakes many
                    // senders): let those already woken queue theirs first.
                    tokio::task::yield_now().await;
                }
                // Coalesce whatever else is queued into one write.
                while let Ok(more) = rx.try_recv() {
                    buf.extend_from_slice(&more);
                }
                if wr.write_all(&buf).await.is_err() {
                    break;
                }
            }
            closed_w.store(true, Ordering::Release);
        });

        let peer = addr.to_string();
        let reader = tokio::spawn(async move {
            let mut inbuf = BytesMut::with_capacity(64 * 1024);
            'read: loop {
                match rd.read_buf(&mut inbuf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                loop {
                    match frame::decode(&mut inbuf, MAX_FRAME) {
                        Ok(Some(cmd)) => dispatch(&peer, cmd, &pending, &tx, handler.as_ref()),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(addr = %peer, error = %e, "malformed frame; closing");
                            break 'read;
                        }
                    }
                }
            }
            closed.store(true, Ordering::Release);
            // Dropping the senders wakes every waiter with "closed".
            pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(Arc::new(Connection {
            addr: addr.to_string(),
            out,
            pending: pending_c,
            closed: closed_c,
            tasks: vec![writer.abort_handle(), reader.abort_handle()],
            serialize,
        }))
    }

    /// The peer address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection has failed or been closed by the peer.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.out.is_closed()
    }

    /// Sends a request and waits for its response.
    pub async fn invoke(
        &self,
        mut cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let opaque = NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        cmd.opaque = opaque;
        cmd.serialize_type = self.serialize;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(opaque, tx);
        if let Err(e) = self.send(&cmd) {
            self.forget(opaque);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(ClientError::Closed {
                addr: self.addr.clone(),
            }),
            Err(_) => {
                self.forget(opaque);
                Err(ClientError::Timeout {
                    addr: self.addr.clone(),
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    /// Sends a request without waiting for (or expecting) an answer.
    pub fn oneway(&self, cmd: RemotingCommand) -> Result<()> {
        let mut cmd = cmd.into_oneway();
        cmd.opaque = NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        cmd.serialize_type = self.serialize;
        self.send(&cmd)
    }

    fn send(&self, cmd: &RemotingCommand) -> Result<()> {
        let mut buf = BytesMut::new();
        frame::encode(cmd, &mut buf).map_err(|e| ClientError::Invalid(e.to_string()))?;
        if self.is_closed() || self.out.send(buf).is_err() {
            return Err(ClientError::Closed {
                addr: self.addr.clone(),
            });
        }
        Ok(())
    }

    fn forget(&self, opaque: i32) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&opaque);
    }
}

fn dispatch(
    peer: &str,
    cmd: RemotingCommand,
    pending: &Pending,
    out: &mpsc::UnboundedSender<BytesMut>,
    handler: Option<&ServerRequestHandler>,
) {
    if cmd.is_response() {
        let waiter = pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&cmd.opaque);
        if let Some(w) = waiter {
            let _ = w.send(cmd);
        }
        return;
    }
    let Some(h) = handler else { return };
    let oneway = cmd.is_oneway();
    if let Some(resp) = h(peer, cmd) {
        if !oneway {
            let mut buf = BytesMut::new();
            if frame::encode(&resp, &mut buf).is_ok() {
                let _ = out.send(buf);
            }
        }
    }
}

/// Connections by address, opened on first use and replaced when they fail.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrocket_client::ClientError> {
/// use ferrocket_client::transport::Pool;
/// use ferrocket_protocol::{RemotingCommand, RequestCode};
/// use std::time::Duration;
/// let pool = Pool::new(Duration::from_secs(3), None);
/// let req = RemotingCommand::request(RequestCode::GET_BROKER_RUNTIME_INFO);
/// let r = pool.call("127.0.0.1:10911", req, Duration::from_secs(3)).await?;
/// println!("{} bytes", r.body.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    conns: Arc<tokio::sync::Mutex<HashMap<String, Arc<Connection>>>>,
    connect_timeout: Duration,
    handler: Option<ServerRequestHandler>,
    serialize: SerializeType,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool whose connections hand server requests to `handler`.
    pub fn new(connect_timeout: Duration, handler: Option<ServerRequestHandler>) -> Self {
        Pool {
            conns: Arc::default(),
            connect_timeout,
            handler,
            serialize: SerializeType::Json,
        }
    }

    /// Serializes the headers of requests on connections opened from now on as `t`
    /// (RocketMQ's `JSON`, the default, or its binary `ROCKETMQ`, which every RocketMQ server
    /// since 4.0 reads and which costs both ends less to write and parse).
    pub fn serialize_type(mut self, t: SerializeType) -> Self {
        self.serialize = t;
        self
    }

    /// The live connection to `addr`, connecting if needed.
    pub async fn get(&self, addr: &str) -> Result<Arc<Connection>> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(addr) {
            if !c.is_closed() {
                return Ok(Arc::clone(c));
            }
        }
        let c = Connection::connect_with(
            addr,
            self.connect_timeout,
            self.handler.clone(),
            self.serialize,
        )
        .await?;
        conns.insert(addr.to_string(), Arc::clone(&c));
        Ok(c)
    }

    /// Sends a request to `addr` and waits for its response.
    pub async fn invoke(
        &self,
        addr: &str,
        cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        self.get(addr).await?.invoke(cmd, timeout).await
    }

    /// Like [`Pool::invoke`], but an error answer becomes [`ClientError::Broker`].
    pub async fn call(
        &self,
        addr: &str,
        cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let r = self.invoke(addr, cmd, timeout).await?;
        if r.code != 0 {
            return Err(ClientError::broker(addr, r.code, r.remark.as_deref()));
        }
        Ok(r)
    }

    /// Sends a oneway request to `addr`.
    pub async fn oneway(&self, addr: &str, cmd: RemotingCommand) -> Result<()> {
        self.get(addr).await?.oneway(cmd)
    }

    /// Addresses with an open connection.
    pub async fn addrs(&self) -> Vec<String> {
        let conns = self.conns.lock().await;
        conns
            .iter()
            .filter(|(_, c)| !c.is_closed())
            .map(|(a, _)| a.clone())
            .collect()
    }
}
