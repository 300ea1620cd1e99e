//! The SEND_BATCH_MESSAGE body: concatenated short records, one per inner message.
//!
//! Each record: `TOTALSIZE i32 | MAGIC i32 (0) | BODYCRC i32 (0) | FLAG i32 | BODYLEN i32 | BODY |
//! PROPLEN i16 | PROPERTIES`.

use bytes::{BufMut, Bytes};

use super::stored::Reader;
use super::{DecodeError, EncodeError, Properties, MAX_PROPERTIES_LEN};

/// Fixed bytes of a batch record besides body and properties.
const FIXED: usize = 4 + 4 + 4 + 4 + 4 + 2;

/// One message of a batch body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEntry {
    pub flag: i32,
    pub body: Bytes,
    pub properties: Properties,
}

/// Splits a batch body into its messages. Bodies are zero-copy slices of `buf`.
pub fn decode_batch(buf: &Bytes) -> Result<Vec<BatchEntry>, DecodeError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let mut r = Reader {
            buf: &buf[pos..],
            pos: 0,
        };
        let total = r.i32("TOTALSIZE")?;
        let _magic = r.i32("MAGICCODE")?;
        let _crc = r.i32("BODYCRC")?;
        let flag = r.i32("FLAG")?;
        let body_len = r.i32("BODYLENGTH")?;
        let body_len = usize::try_from(body_len).map_err(|_| DecodeError::NegativeLength {
            field: "BODY",
            len: body_len,
        })?;
        let body_start = pos + r.pos;
        r.bytes("BODY", body_len)?;
        let props_len = r.i16("PROPERTIESLENGTH")?;
        let props_len = usize::try_from(props_len).map_err(|_| DecodeError::NegativeLength {
            field: "PROPERTIES",
            len: i32::from(props_len),
        })?;
        let props = r.bytes("PROPERTIES", props_len)?;
        if i64::from(total) != r.pos as i64 {
            return Err(DecodeError::SizeMismatch {
                declared: i64::from(total),
                actual: r.pos as i64,
            });
        }
        let props = std::str::from_utf8(props).map_err(|_| DecodeError::Utf8("properties"))?;
        out.push(BatchEntry {
            flag,
            body: buf.slice(body_start..body_start + body_len),
            properties: Properties::parse(props),
        });
        pos += r.pos;
    }
    Ok(out)
}

/// Encodes messages as a batch body (what a producer sends).
pub fn encode_batch(entries: &[BatchEntry], out: &mut impl BufMut) -> Result<(), EncodeError> {
    for e in entries {
        let props = e.properties.encode();
        if props.len() > MAX_PROPERTIES_LEN {
            return Err(EncodeError::PropertiesTooLong(props.len()));
        }
        let total = FIXED + e.body.len() + props.len();
        if total > i32::MAX as usize {
            return Err(EncodeError::BodyTooLong(e.body.len()));
        }
        out.put_i32(total as i32);
        out.put_i32(0);
        out.put_i32(0);
        out.put_i32(e.flag);
        out.put_i32(e.body.len() as i32);
        out.put_slice(&e.body);
        out.put_i16(props.len() as i16);
        out.put_slice(props.as_bytes());
    }
    Ok(())
}
