//! Encode and decode one stored message record.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes};

use super::sysflag::{BORNHOST_V6, STOREHOSTADDRESS_V6};
use super::{
    DecodeError, EncodeError, Properties, BLANK_MAGIC_CODE, BORN_HOST_POS, MAX_PROPERTIES_LEN,
    MAX_V1_TOPIC_LEN, MESSAGE_MAGIC_CODE, MESSAGE_MAGIC_CODE_V2,
};

/// One stored message, owning its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    /// SYSFLAG. On encode the host bits (`BORNHOST_V6`, `STOREHOSTADDRESS_V6`) are taken from the
    /// address families of `born_host` and `store_host`, whatever this field says.
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Bytes,
    pub topic: String,
    pub properties: Properties,
}

/// One stored message borrowed from a buffer (no copy). Strings are checked UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageView<'a> {
    pub total_size: i32,
    pub magic: i32,
    pub body_crc: u32,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub topic: &'a str,
    /// The raw properties string; parse with [`Properties::parse`] or probe with
    /// [`Properties::lookup`].
    pub properties: &'a str,
}

/// RocketMQ's body CRC: CRC32 (IEEE) of the body masked with `0x7FFF_FFFF`.
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

/// Length of BORNHOST for a SYSFLAG: 8 (IPv4 + port) or 20 (IPv6 + port).
pub fn born_host_len(sys_flag: i32) -> usize {
    if sys_flag & BORNHOST_V6 != 0 {
        20
    } else {
        8
    }
}

/// Length of STOREHOST for a SYSFLAG: 8 or 20.
pub fn store_host_len(sys_flag: i32) -> usize {
    if sys_flag & STOREHOSTADDRESS_V6 != 0 {
        20
    } else {
        8
    }
}

/// Byte position of STORETIMESTAMP for a SYSFLAG (56 with an IPv4 born host).
pub fn store_timestamp_pos(sys_flag: i32) -> usize {
    BORN_HOST_POS + born_host_len(sys_flag)
}

/// Byte position of STOREHOST for a SYSFLAG (64 with an IPv4 born host).
pub fn store_host_pos(sys_flag: i32) -> usize {
    store_timestamp_pos(sys_flag) + 8
}

/// TOTALSIZE and MAGICCODE of the record at the start of `buf`, or `None` if fewer than 8 bytes.
pub fn peek_total_size(buf: &[u8]) -> Option<(i32, i32)> {
    let mut r = Reader { buf, pos: 0 };
    Some((r.i32("TOTALSIZE").ok()?, r.i32("MAGICCODE").ok()?))
}

fn host_flags(born: &SocketAddr, store: &SocketAddr) -> i32 {
    let mut f = 0;
    if born.is_ipv6() {
        f |= BORNHOST_V6;
    }
    if store.is_ipv6() {
        f |= STOREHOSTADDRESS_V6;
    }
    f
}

fn put_host(out: &mut impl BufMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.put_slice(&ip.octets()),
        IpAddr::V6(ip) => out.put_slice(&ip.octets()),
    }
    out.put_i32(i32::from(addr.port()));
}

impl StoredMessage {
    /// A message with the given destination and body; every other field zero, hosts 0.0.0.0:0
    /// (the store fills in offsets, store time and store host when it appends).
    pub fn new(topic: impl Into<String>, queue_id: i32, body: impl Into<Bytes>) -> Self {
        let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        Self {
            queue_id,
            flag: 0,
            queue_offset: 0,
            physical_offset: 0,
            sys_flag: 0,
            born_timestamp: 0,
            born_host: unspecified,
            store_timestamp: 0,
            store_host: unspecified,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: body.into(),
            topic: topic.into(),
            properties: Properties::new(),
        }
    }

    /// True when this message is written with the v2 magic (topic longer than 127 bytes).
    pub fn is_v2(&self) -> bool {
        self.topic.len() > MAX_V1_TOPIC_LEN
    }

    /// The SYSFLAG as it will be written (host bits from the address families).
    pub fn effective_sys_flag(&self) -> i32 {
        (self.sys_flag & !(BORNHOST_V6 | STOREHOSTADDRESS_V6))
            | host_flags(&self.born_host, &self.store_host)
    }

    /// Size in bytes of the encoded record (its TOTALSIZE).
    pub fn encoded_len(&self) -> usize {
        let sys = self.effective_sys_flag();
        let topic_prefix = if self.is_v2() { 2 } else { 1 };
        BORN_HOST_POS
            + born_host_len(sys)
            + 8
            + store_host_len(sys)
            + 4
            + 8
            + 4
            + self.body.len()
            + topic_prefix
            + self.topic.len()
            + 2
            + self.properties.encoded_len()
    }

    /// Appends the encoded record to `out`. BODYCRC is computed from the body.
    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), EncodeError> {
        let props = self.properties.encode();
        self.encode_with_properties(&props, out)
    }

    /// Like [`StoredMessage::encode`] but with an already encoded properties string (which
    /// replaces `self.properties`): the broker's path, which forwards the client's string.
    pub fn encode_with_properties(
        &self,
        props: &str,
        out: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        if props.len() > MAX_PROPERTIES_LEN {
            return Err(EncodeError::PropertiesTooLong(props.len()));
        }
        if self.topic.len() > i16::MAX as usize {
            return Err(EncodeError::TopicTooLong(self.topic.len()));
        }
        if self.body.len() > i32::MAX as usize / 2 {
            return Err(EncodeError::BodyTooLong(self.body.len()));
        }
        let sys = self.effective_sys_flag();
        let v2 = self.is_v2();
        let total = self.encoded_len() - self.properties.encoded_len() + props.len();
        out.put_i32(total as i32);
        out.put_i32(if v2 {
            MESSAGE_MAGIC_CODE_V2
        } else {
            MESSAGE_MAGIC_CODE
        });
        out.put_u32(body_crc(&self.body));
        out.put_i32(self.queue_id);
        out.put_i32(self.flag);
        out.put_i64(self.queue_offset);
        out.put_i64(self.physical_offset);
        out.put_i32(sys);
        out.put_i64(self.born_timestamp);
        put_host(out, &self.born_host);
        out.put_i64(self.store_timestamp);
        put_host(out, &self.store_host);
        out.put_i32(self.reconsume_times);
        out.put_i64(self.prepared_transaction_offset);
        out.put_i32(self.body.len() as i32);
        out.put_slice(&self.body);
        if v2 {
            out.put_i16(self.topic.len() as i16);
        } else {
            out.put_u8(self.topic.len() as u8);
        }
        out.put_slice(self.topic.as_bytes());
        out.put_i16(props.len() as i16);
        out.put_slice(props.as_bytes());
        Ok(())
    }

    /// The encoded record as a new buffer.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode(&mut v)?;
        Ok(v.into())
    }
}

impl MessageView<'_> {
    /// An owned copy.
    pub fn to_owned_message(&self) -> StoredMessage {
        StoredMessage {
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: self.queue_offset,
            physical_offset: self.physical_offset,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp: self.store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: Bytes::copy_from_slice(self.body),
            topic: self.topic.to_owned(),
            properties: Properties::parse(self.properties),
        }
    }

    /// A property looked up in the raw string.
    pub fn property(&self, name: &str) -> Option<&str> {
        Properties::lookup(self.properties, name)
    }
}

/// Decodes the record at the start of `buf` into an owned message, checking the body CRC.
pub fn decode(buf: &[u8]) -> Result<StoredMessage, DecodeError> {
    decode_view(buf, true).map(|v| v.to_owned_message())
}

/// Decodes the record at the start of `buf` without copying. Bytes past TOTALSIZE are ignored.
/// With `check_crc`, a body whose CRC differs from BODYCRC is an error.
pub fn decode_view(buf: &[u8], check_crc: bool) -> Result<MessageView<'_>, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let total_size = r.i32("TOTALSIZE")?;
    let magic = r.i32("MAGICCODE")?;
    let v2 = match magic {
        MESSAGE_MAGIC_CODE => false,
        MESSAGE_MAGIC_CODE_V2 => true,
        BLANK_MAGIC_CODE => return Err(DecodeError::Blank(total_size)),
        other => return Err(DecodeError::BadMagic(other as u32)),
    };
    // Shorter than its own TOTALSIZE and MAGICCODE fields, or longer than the bytes present.
    if total_size < 8 || total_size as usize > buf.len() {
        return Err(DecodeError::Truncated {
            field: "record",
            at: 0,
            need: total_size.max(0) as usize,
            have: buf.len(),
        });
    }
    let mut r = Reader {
        buf: &buf[..total_size as usize],
        pos: 8,
    };
    let body_crc = r.i32("BODYCRC")? as u32;
    let queue_id = r.i32("QUEUEID")?;
    let flag = r.i32("FLAG")?;
    let queue_offset = r.i64("QUEUEOFFSET")?;
    let physical_offset = r.i64("PHYSICALOFFSET")?;
    let sys_flag = r.i32("SYSFLAG")?;
    let born_timestamp = r.i64("BORNTIMESTAMP")?;
    let born_host = r.host("BORNHOST", sys_flag & BORNHOST_V6 != 0)?;
    let store_timestamp = r.i64("STORETIMESTAMP")?;
    let store_host = r.host("STOREHOST", sys_flag & STOREHOSTADDRESS_V6 != 0)?;
    let reconsume_times = r.i32("RECONSUMETIMES")?;
    let prepared_transaction_offset = r.i64("PREPAREDTRANSACTIONOFFSET")?;
    let body_len = r.i32("BODYLENGTH")?;
    let body = r.bytes("BODY", len_of("BODY", body_len)?)?;
    let topic_len = if v2 {
        len_of("TOPIC", i32::from(r.i16("TOPICLENGTH")?))?
    } else {
        usize::from(r.u8("TOPICLENGTH")?)
    };
    let topic = r.bytes("TOPIC", topic_len)?;
    let props_len = len_of("PROPERTIES", i32::from(r.i16("PROPERTIESLENGTH")?))?;
    let properties = r.bytes("PROPERTIES", props_len)?;
    if r.pos != total_size as usize {
        return Err(DecodeError::SizeMismatch {
            declared: i64::from(total_size),
            actual: r.pos as i64,
        });
    }
    if check_crc {
        let computed = body_crc_of(body);
        if computed != body_crc {
            return Err(DecodeError::BodyCrc {
                stored: body_crc,
                computed,
            });
        }
    }
    Ok(MessageView {
        total_size,
        magic,
        body_crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        topic: std::str::from_utf8(topic).map_err(|_| DecodeError::Utf8("topic"))?,
        properties: std::str::from_utf8(properties).map_err(|_| DecodeError::Utf8("properties"))?,
    })
}

/// Decodes consecutive records (a pull or query response body) without copying.
pub fn decode_all(buf: &[u8], check_crc: bool) -> Result<Vec<MessageView<'_>>, DecodeError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let v = decode_view(&buf[pos..], check_crc)?;
        pos += v.total_size as usize;
        out.push(v);
    }
    Ok(out)
}

fn body_crc_of(body: &[u8]) -> u32 {
    body_crc(body)
}

fn len_of(field: &'static str, len: i32) -> Result<usize, DecodeError> {
    usize::try_from(len).map_err(|_| DecodeError::NegativeLength { field, len })
}

/// A bounds-checked big-endian cursor.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn bytes(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        let have = self.buf.len().saturating_sub(self.pos);
        if n > have {
            return Err(DecodeError::Truncated {
                field,
                at: self.pos,
                need: n,
                have,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.bytes(field, N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(super) fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    pub(super) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    pub(super) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn host(&mut self, field: &'static str, v6: bool) -> Result<SocketAddr, DecodeError> {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>(field)?))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>(field)?))
        };
        // The port is an int32 on the wire; Java writes a 16-bit port, keep the low 16 bits.
        let port = self.i32(field)? as u16;
        Ok(SocketAddr::new(ip, port))
    }
}
