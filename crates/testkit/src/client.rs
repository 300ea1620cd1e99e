//! A blocking remoting client for tests: real frames over a real TCP connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use ferrocket_protocol::frame;
use ferrocket_protocol::RemotingCommand;

/// One connection; requests get increasing opaques and responses are matched by opaque
/// (requests the server sends us meanwhile are collected in `server_requests`).
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    next_opaque: i32,
    /// Requests the server pushed to us (e.g. NOTIFY_CONSUMER_IDS_CHANGED).
    pub server_requests: Vec<RemotingCommand>,
}

impl RawClient {
    pub fn connect(addr: &str) -> std::io::Result<RawClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            buf: BytesMut::new(),
            next_opaque: 1,
            server_requests: Vec::new(),
        })
    }

    pub fn set_read_timeout(&self, t: Duration) {
        let _ = self.stream.set_read_timeout(Some(t));
    }

    /// Writes raw bytes (for malformed-frame tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends `cmd` with a fresh opaque and waits for its response.
    pub fn call(&mut self, mut cmd: RemotingCommand) -> std::io::Result<RemotingCommand> {
        cmd.opaque = self.next_opaque;
        self.next_opaque += 1;
        let bytes = frame::encode_to_bytes(&cmd).map_err(std::io::Error::other)?;
        self.stream.write_all(&bytes)?;
        loop {
            let got = self.read_one()?;
            if got.is_response() && got.opaque == cmd.opaque {
                return Ok(got);
            }
            if !got.is_response() {
                self.server_requests.push(got);
            }
        }
    }

    /// Sends a oneway request.
    pub fn oneway(&mut self, cmd: RemotingCommand) -> std::io::Result<()> {
        let mut cmd = cmd.into_oneway();
        cmd.opaque = self.next_opaque;
        self.next_opaque += 1;
        let bytes = frame::encode_to_bytes(&cmd).map_err(std::io::Error::other)?;
        self.stream.write_all(&bytes)
    }

    /// Reads the next whole command of any kind.
    pub fn read_one(&mut self) -> std::io::Result<RemotingCommand> {
        loop {
            if let Some(cmd) = frame::decode(&mut self.buf, frame::DEFAULT_MAX_FRAME)
                .map_err(std::io::Error::other)?
            {
                return Ok(cmd);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True when the server has closed the connection (EOF or reset) within `wait`; false on
    /// a timeout or when data arrives.
    pub fn is_closed_by_peer(&mut self, wait: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(wait));
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}
