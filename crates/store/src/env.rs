//! The store's view of the outside world (clock, disk usage, flush hook), injectable for tests.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Clock and disk probes. The default [`SystemEnv`] uses the real ones; tests substitute theirs to
/// trigger retention, disk-full refusal or slow flushes deterministically.
pub trait StoreEnv: Send + Sync + 'static {
    /// Wall-clock time in Unix ms (store timestamps, file ages, delete hours; UTC).
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// Fraction (0.0..=1.0) of the file system holding `path` that is used.
    fn disk_used_ratio(&self, path: &Path) -> f64 {
        disk_used_ratio(path).unwrap_or(0.0)
    }

    /// Called by the flusher right before it syncs the commitlog.
    fn before_commitlog_flush(&self) {}
}

/// The real clock and disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEnv;

impl StoreEnv for SystemEnv {}

/// statvfs-based used ratio of the file system holding `path`.
pub fn disk_used_ratio(path: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 || st.f_blocks == 0 {
        return None;
    }
    let total = st.f_blocks as f64;
    let free = st.f_bavail as f64;
    Some(((total - free) / total).clamp(0.0, 1.0))
}
