//! The ROCKETMQ binary header serialization (type 1): fixed fields, then a length-prefixed remark
//! and a length-prefixed extFields area of (int16 key length, key, int32 value length, value).

use crate::command::{ExtFields, RemotingCommand, SerializeType};
use crate::error::FrameError;
use crate::language::LanguageCode;

/// Appends the binary header of `cmd` to `out`.
pub(crate) fn encode(cmd: &RemotingCommand, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let code = i16::try_from(cmd.code).map_err(|_| FrameError::CodeOutOfRange(cmd.code))?;
    out.extend_from_slice(&code.to_be_bytes());
    out.push(cmd.language.code());
    out.extend_from_slice(&(cmd.version as i16).to_be_bytes());
    out.extend_from_slice(&cmd.opaque.to_be_bytes());
    out.extend_from_slice(&cmd.flag.to_be_bytes());
    match &cmd.remark {
        Some(r) if !r.is_empty() => {
            out.extend_from_slice(&(r.len() as i32).to_be_bytes());
            out.extend_from_slice(r.as_bytes());
        }
        _ => out.extend_from_slice(&0i32.to_be_bytes()),
    }
    let len_at = out.len();
    out.extend_from_slice(&0i32.to_be_bytes());
    for (k, v) in &cmd.ext_fields {
        out.extend_from_slice(&(k.len() as i16).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    let map_len = (out.len() - len_at - 4) as i32;
    out[len_at..len_at + 4].copy_from_slice(&map_len.to_be_bytes());
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(FrameError::Binary(what))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i16(&mut self, what: &'static str) -> Result<i16, FrameError> {
        Ok(i16::from_be_bytes(
            self.take(2, what)?.try_into().expect("2 bytes"),
        ))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, FrameError> {
        Ok(i32::from_be_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn str(&mut self, len: i32, what: &'static str) -> Result<&'a str, FrameError> {
        let len = usize::try_from(len).map_err(|_| FrameError::Binary(what))?;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map_err(|_| FrameError::Utf8)
    }
}

/// Decodes a binary header; every length is checked against the bytes present first.
pub(crate) fn decode(bytes: &[u8]) -> Result<RemotingCommand, FrameError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let code = r.i16("code")? as i32;
    let language = LanguageCode::from_code(r.take(1, "language")?[0]);
    let version = r.i16("version")? as i32;
    let opaque = r.i32("opaque")?;
    let flag = r.i32("flag")?;
    let remark_len = r.i32("remark length")?;
    let remark = if remark_len == 0 {
        None
    } else {
        Some(r.str(remark_len, "remark")?.to_owned())
    };
    let map_len = r.i32("extFields length")?;
    let map_len = usize::try_from(map_len).map_err(|_| FrameError::Binary("extFields length"))?;
    let map = r.take(map_len, "extFields")?;
    let mut m = Reader { buf: map, pos: 0 };
    let mut ext_fields = ExtFields::with_capacity(16, map_len);
    while m.pos < map.len() {
        let klen = m.i16("key length")?;
        let key = m.str(klen as i32, "key")?;
        let vlen = m.i32("value length")?;
        let value = m.str(vlen, "value")?;
        if !key.is_empty() {
            ext_fields.insert(key, value);
        }
    }
    Ok(RemotingCommand {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        body: Default::default(),
        serialize_type: SerializeType::RocketMq,
    })
}
