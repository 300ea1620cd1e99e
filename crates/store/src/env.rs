//! The store's view of the outside world (clock, disk usage, flush hook), injectable for tests.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Clock and disk probes. The default [`SystemEnv`] uses the real ones; tests substitute theirs to
/// trigger retention, disk-full refusal or slow flushes deterministically.
pub trait StoreEnv: Send + Sync + 'static {
    /// Wall-clock time in Unix ms (store timestamps, file ages).
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// Offset of the local time zone from UTC at `now_ms`, in ms: `deleteWhen` hours are local
    /// hours, as in RocketMQ (its `isItTimeToDo` reads the JVM's default time zone), so "04" means
    /// 4 a.m. where the broker runs, not 4 a.m. UTC.
    fn utc_offset_ms(&self, now_ms: i64) -> i64 {
        local_utc_offset_ms(now_ms)
    }

    /// Fraction (0.0..=1.0) of the file system holding `path` that is used.
    fn disk_used_ratio(&self, path: &Path) -> f64 {
        disk_used_ratio(path).unwrap_or(0.0)
    }

    /// Called by the flusher right before it syncs the commitlog.
    fn before_commitlog_flush(&self) {}

    /// Called by an append right after it takes the commitlog lock (tests hold it there).
    fn in_append(&self) {}
}

/// For tests: holds one append inside the commitlog lock until released (a stalled page fault
/// stand-in), with a clock that can be moved ahead of the real one.
#[derive(Debug, Default)]
pub struct StallEnv {
    ahead_ms: std::sync::atomic::AtomicI64,
    /// (hold the next append, an append is held, release it)
    state: std::sync::Mutex<(bool, bool, bool)>,
    cv: std::sync::Condvar,
}

impl StallEnv {
    /// The next append waits in the lock until [`StallEnv::release`].
    pub fn hold_next(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 = true;
    }

    /// Blocks until an append is held.
    pub fn wait_held(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !s.1 {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Lets the held append (and any later one) go on.
    pub fn release(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).2 = true;
        self.cv.notify_all();
    }

    /// Moves the clock `ms` ahead of the real one.
    pub fn set_ahead_ms(&self, ms: i64) {
        self.ahead_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl StoreEnv for StallEnv {
    fn now_ms(&self) -> i64 {
        SystemEnv.now_ms() + self.ahead_ms.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn in_append(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.0 {
            return;
        }
        s.0 = false;
        s.1 = true;
        self.cv.notify_all();
        while !s.2 {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.1 = false;
    }
}

/// The real clock and disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEnv;

impl StoreEnv for SystemEnv {}

/// The local time zone's offset from UTC at `now_ms` (the `TZ` variable, else /etc/localtime),
/// in ms; 0 when it cannot be told.
pub fn local_utc_offset_ms(now_ms: i64) -> i64 {
    let t = now_ms.div_euclid(1000) as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe variant.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return 0;
    }
    tm.tm_gmtoff as i64 * 1000
}

/// Hour of the day (0-23) at `now_ms` shifted by `offset_ms`.
pub(crate) fn hour_of_day(now_ms: i64, offset_ms: i64) -> u32 {
    (now_ms + offset_ms).div_euclid(3_600_000).rem_euclid(24) as u32
}

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
    fn delete_hours_are_local_hours() {
        // 20:30 UTC is 04:30 in UTC+8 and 15:30 in UTC-5.
        let t = 1_700_000_000_000 / 86_400_000 * 86_400_000 + 20 * 3_600_000 + 1_800_000;
        assert_eq!(hour_of_day(t, 0), 20);
        assert_eq!(hour_of_day(t, 8 * 3_600_000), 4);
        assert_eq!(hour_of_day(t, -5 * 3_600_000), 15);
    }

    #[test]
    fn local_offset_agrees_with_date() {
        let now = SystemEnv.now_ms();
        let out = std::process::Command::new("date")
            .arg("+%z")
            .output()
            .expect("date runs");
        let z = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let (sign, digits) = z.split_at(1);
        let hh: i64 = digits[..2].parse().unwrap();
        let mm: i64 = digits[2..4].parse().unwrap();
        let expect = (hh * 60 + mm) * 60_000 * if sign == "-" { -1 } else { 1 };
        assert_eq!(local_utc_offset_ms(now), expect, "date +%z said {z}");
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
