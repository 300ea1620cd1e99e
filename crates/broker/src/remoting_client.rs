//! A small request/response remoting client for the broker's own calls (name server
//! registration). One persistent connection per peer: the name server drops a broker whose
//! registration channel closes, so the connection is kept open between registrations.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use ferrocket_protocol::{frame, RemotingCommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client of one remote address.
#[derive(Debug)]
pub struct RemotingClient {
    pub addr: String,
    conn: tokio::sync::Mutex<Option<(TcpStream, BytesMut)>>,
    opaque: AtomicI32,
}

fn io_err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}

impl RemotingClient {
    pub fn new(addr: impl Into<String>) -> Self {
        RemotingClient {
            addr: addr.into(),
            conn: tokio::sync::Mutex::new(None),
            opaque: AtomicI32::new(1),
        }
    }

    /// Sends `cmd` and waits up to `timeout` for its response; reconnects as needed.
    pub async fn call(
        &self,
        cmd: RemotingCommand,
        timeout: Duration,
    ) -> std::io::Result<RemotingCommand> {
        let opaque = self.opaque.fetch_add(1, Ordering::Relaxed);
        let cmd = cmd.with_opaque(opaque);
        let mut guard = self.conn.lock().await;
        let r = tokio::time::timeout(timeout, async {
            if guard.is_none() {
                let s = TcpStream::connect(&self.addr).await?;
                s.set_nodelay(true)?;
                *guard = Some((s, BytesMut::with_capacity(4096)));
            }
            let (stream, buf) = guard.as_mut().expect("connected above");
            let bytes = frame::encode_to_bytes(&cmd).map_err(|e| io_err(e.to_string()))?;
            stream.write_all(&bytes).await?;
            loop {
                while let Some(resp) = frame::decode(buf, frame::DEFAULT_MAX_FRAME)
                    .map_err(|e| io_err(e.to_string()))?
                {
                    if resp.is_response() && resp.opaque == opaque {
                        return Ok(resp);
                    }
                }
                if stream.read_buf(buf).await? == 0 {
                    return Err(io_err("connection closed by peer"));
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(io_err(format!("timed out after {timeout:?}"))));
        if r.is_err() {
            *guard = None;
        }
        r
    }

    /// Closes the connection.
    pub async fn close(&self) {
        *self.conn.lock().await = None;
    }
}
