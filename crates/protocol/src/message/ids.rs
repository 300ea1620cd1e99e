//! Message ids: the broker's offset id (store host + physical offset) and the client's UNIQ_KEY.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::DecodeError;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_hex(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The offset message id: upper-case hex of store IP ‖ port (int32) ‖ physical offset (int64);
/// 32 characters for IPv4, 56 for IPv6.
pub fn encode_offset_msg_id(store_host: SocketAddr, physical_offset: i64) -> String {
    let mut s = String::with_capacity(56);
    match store_host.ip() {
        IpAddr::V4(ip) => push_hex(&mut s, &ip.octets()),
        IpAddr::V6(ip) => push_hex(&mut s, &ip.octets()),
    }
    push_hex(&mut s, &i32::from(store_host.port()).to_be_bytes());
    push_hex(&mut s, &physical_offset.to_be_bytes());
    s
}

/// Reads an offset message id back into (store host, physical offset).
pub fn decode_offset_msg_id(id: &str) -> Result<(SocketAddr, i64), DecodeError> {
    let bad = || DecodeError::BadMessageId(id.chars().take(64).collect());
    let ip_len = match id.len() {
        32 => 4,
        56 => 16,
        _ => return Err(bad()),
    };
    let b = parse_hex(id).ok_or_else(bad)?;
    let ip = if ip_len == 4 {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let port = i32::from_be_bytes(b[ip_len..ip_len + 4].try_into().map_err(|_| bad())?);
    let port = u16::try_from(port).map_err(|_| bad())?;
    let off = i64::from_be_bytes(b[ip_len + 4..ip_len + 12].try_into().map_err(|_| bad())?);
    Ok((SocketAddr::new(ip, port), off))
}

/// Generates UNIQ_KEY ids like the Java client's `MessageClientIDSetter`: upper-case hex of
/// IP ‖ pid (int16) ‖ a per-process int32 ‖ ms since the start of the current month (int32) ‖
/// counter (int16, wrapping). 32 characters with an IPv4 address.
///
/// The month starts at 00:00 UTC here (Java uses the JVM's local time zone; the field is opaque to
/// every reader, which only needs ids to be unique).
#[derive(Debug)]
pub struct UniqIdGenerator {
    prefix: String,
    counter: AtomicU16,
}

impl UniqIdGenerator {
    /// A generator for this host. `salt` stands in for Java's class-loader hash code.
    pub fn new(ip: IpAddr, pid: u32, salt: i32) -> Self {
        let mut prefix = String::with_capacity(44);
        match ip {
            IpAddr::V4(ip) => push_hex(&mut prefix, &ip.octets()),
            IpAddr::V6(ip) => push_hex(&mut prefix, &ip.octets()),
        }
        push_hex(&mut prefix, &(pid as u16).to_be_bytes());
        push_hex(&mut prefix, &salt.to_be_bytes());
        Self {
            prefix,
            counter: AtomicU16::new(0),
        }
    }

    /// The next id at the current wall-clock time.
    pub fn next_id(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        self.next_id_at(now)
    }

    /// The next id as of `now_ms` (Unix ms).
    pub fn next_id_at(&self, now_ms: i64) -> String {
        let diff = (now_ms - month_start_ms(now_ms)) as i32;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut s = String::with_capacity(self.prefix.len() + 12);
        s.push_str(&self.prefix);
        push_hex(&mut s, &diff.to_be_bytes());
        push_hex(&mut s, &n.to_be_bytes());
        s
    }
}

/// 00:00 UTC of the first day of the month containing `ms` (Unix ms).
fn month_start_ms(ms: i64) -> i64 {
    let days = ms.div_euclid(86_400_000);
    let (_, _, d) = civil_from_days(days);
    (days - (d as i64 - 1)) * 86_400_000
}

/// Howard Hinnant's days-to-civil conversion: (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_id_golden() {
        // 10.0.0.1:10911, offset 0x1234: 0A000001 00002A9F 0000000000001234
        let host: SocketAddr = "10.0.0.1:10911".parse().unwrap();
        let id = encode_offset_msg_id(host, 0x1234);
        assert_eq!(id, "0A00000100002A9F0000000000001234");
        assert_eq!(decode_offset_msg_id(&id).unwrap(), (host, 0x1234));
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        let id6 = encode_offset_msg_id(v6, 7);
        assert_eq!(id6.len(), 56);
        assert_eq!(decode_offset_msg_id(&id6).unwrap(), (v6, 7));
        assert!(decode_offset_msg_id("XYZ").is_err());
        assert!(decode_offset_msg_id("ZZ00000100002A9F0000000000001234").is_err());
        assert!(decode_offset_msg_id("0A000001FFFFFFFF0000000000001234").is_err());
    }

    #[test]
    fn month_start() {
        // 2026-11-24T18:00:00Z = 1795543200000; month start 2026-11-01 = 1793491200000.
        assert_eq!(month_start_ms(1_795_543_200_000), 1_793_491_200_000);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn uniq_ids() {
        let g = UniqIdGenerator::new("192.168.1.2".parse().unwrap(), 0x12345, 0x0BADBEEF);
        let a = g.next_id_at(1_793_491_200_000 + 0x10);
        let b = g.next_id_at(1_793_491_200_000 + 0x10);
        assert_eq!(
            a,
            "C0A801022345".to_owned() + "0BADBEEF" + "00000010" + "0000"
        );
        assert_eq!(&b[28..], "0001");
        assert_eq!(a.len(), 32);
    }
}
