//! Child processes that are killed on drop, ports, and temp dirs.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of a workspace binary (`mqnamesrv`, `mqbroker`, ...) next to the running test's
/// target directory. `cargo test --workspace` builds every package's binaries first.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let p = profile_dir.join(name);
    assert!(
        p.exists(),
        "binary {} not built; run `cargo build --workspace --bins` or `cargo test --workspace`",
        p.display()
    );
    p
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A free TCP port on the given loopback address (e.g. 127.0.0.11).
pub fn free_port_on(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("bind for a free port")
        .port()
}

/// Waits until something accepts connections at `addr`; panics after `timeout`.
pub fn wait_for_port(addr: &str, timeout: Duration) {
    let sock: SocketAddr = addr.parse().expect("socket address");
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listening on {addr} after {timeout:?}");
}

/// Starts `mqnamesrv` on `ip` at a free port, its conf and KV file in `dir` (one name server per
/// directory), and waits until it accepts connections. Returns its guard and `ip:port`.
pub fn start_namesrv(dir: &Path, ip: &str) -> (ProcessGuard, String) {
    let port = free_port_on(ip);
    let conf = dir.join("namesrv.properties");
    std::fs::write(
        &conf,
        format!(
            "listenPort={port}\nbindAddress={ip}\nkvConfigPath={}\n",
            dir.join("kv.json").display()
        ),
    )
    .expect("write the name server's conf");
    let guard = ProcessGuard::spawn(
        "mqnamesrv",
        Command::new(bin_path("mqnamesrv"))
            .arg("-c")
            .arg(&conf)
            .env("RUST_LOG", "warn"),
    );
    let addr = format!("{ip}:{port}");
    wait_for_port(&addr, Duration::from_secs(20));
    (guard, addr)
}

/// A child process that is SIGKILLed (and reaped) when dropped, so a failing test never leaves a
/// server behind.
pub struct ProcessGuard {
    child: Option<Child>,
    name: String,
}

impl ProcessGuard {
    /// Spawns `cmd` with stdin closed; stdout/stderr are inherited so test output shows logs.
    pub fn spawn(name: &str, cmd: &mut Command) -> ProcessGuard {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        ProcessGuard {
            child: Some(child),
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (e.g. `libc::SIGTERM`, `libc::SIGSTOP`).
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself, at most `timeout`; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    return Some(status.code().unwrap_or(-1));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("ferrocket-{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
