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

/// Used fraction of the file system holding `path`, counted as RocketMQ and `df` count it: blocks
/// in use over blocks in use plus blocks available to unprivileged users, rounded up to a whole
/// percent. Blocks reserved for root count as neither, so a file system with many reserved blocks
/// is not taken for full (which would remove unexpired commitlog files "forcibly").
pub fn disk_used_ratio(path: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 || st.f_blocks == 0 {
        return None;
    }
    Some(used_ratio(
        st.f_blocks as u64,
        st.f_bfree as u64,
        st.f_bavail as u64,
    ))
}

/// `used / (used + available)` in whole percents rounded up, from statvfs block counts.
fn used_ratio(blocks: u64, free: u64, available: u64) -> f64 {
    let used = blocks.saturating_sub(free);
    let entire = used.saturating_add(available);
    if entire == 0 {
        return 0.0;
    }
    let percent = (u128::from(used) * 100).div_ceil(u128::from(entire));
    (percent as f64 / 100.0).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_blocks_count_as_neither_used_nor_available() {
        // 1000 blocks, 380 free of which 150 are usable (230 reserved for root): df says
        // 620 / (620 + 150) = 80.5% -> 81%; counting reserved blocks as used gave 85%.
        assert_eq!(used_ratio(1000, 380, 150), 0.81);
        assert_eq!(used_ratio(1000, 1000, 950), 0.0);
        assert_eq!(used_ratio(1000, 0, 0), 1.0);
        assert_eq!(used_ratio(0, 0, 0), 0.0);
        // Exact percents are not rounded up.
        assert_eq!(used_ratio(200, 100, 100), 0.5);
    }

    #[test]
    fn agrees_with_df_on_this_machine() {
        let dir = std::env::temp_dir();
        let out = std::process::Command::new("df")
            .arg("--output=pcent")
            .arg(&dir)
            .output()
            .expect("df runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let df: f64 = text
            .lines()
            .nth(1)
            .and_then(|l| l.trim().trim_end_matches('%').parse().ok())
            .unwrap_or_else(|| panic!("df printed {text:?}"));
        let ours = disk_used_ratio(&dir).expect("statvfs works") * 100.0;
        // Other processes write meanwhile: allow one percent either way.
        assert!((ours - df).abs() <= 1.0, "ours {ours}% vs df {df}%");
    }
}
