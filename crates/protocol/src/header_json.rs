//! The JSON header serialization (type 0), as fastjson writes it: sorted keys, language by name,
//! null fields omitted. Reading ignores unknown keys and tolerates non-string extFields values.

use std::collections::BTreeMap;

use bytes::BufMut;
use serde::Deserialize;

use crate::command::{RemotingCommand, SerializeType};
use crate::error::FrameError;
use crate::language::LanguageCode;

#[derive(Deserialize)]
struct In {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default)]
    remark: Option<String>,
    #[serde(rename = "extFields", default)]
    ext_fields: Option<BTreeMap<String, serde_json::Value>>,
}

/// Appends the JSON header of `cmd` to `out`, byte for byte what serde_json writes for the
/// fields in fastjson's order (the tests hold it to that). Written by hand: every request and
/// response pays for it, and serde's string serializer was a tenth of a client's CPU.
pub(crate) fn encode<B: BufMut>(cmd: &RemotingCommand, out: &mut B) {
    out.put_slice(b"{\"code\":");
    push_i32(out, cmd.code);
    if !cmd.ext_fields.is_empty() {
        out.put_slice(b",\"extFields\":{");
        for (i, (k, v)) in cmd.ext_fields.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            push_str(out, k);
            out.put_u8(b':');
            push_str(out, v);
        }
        out.put_u8(b'}');
    }
    out.put_slice(b",\"flag\":");
    push_i32(out, cmd.flag);
    out.put_slice(b",\"language\":");
    push_str(out, cmd.language.name());
    out.put_slice(b",\"opaque\":");
    push_i32(out, cmd.opaque);
    if let Some(remark) = &cmd.remark {
        out.put_slice(b",\"remark\":");
        push_str(out, remark);
    }
    out.put_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    push_i32(out, cmd.version);
    out.put_u8(b'}');
}

fn push_i32<B: BufMut>(out: &mut B, v: i32) {
    let mut buf = [0u8; 11];
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    out.put_slice(&buf[i..]);
}

/// A JSON string with serde_json's escapes: `"` and `\`, the short forms of backspace, form
/// feed, newline, carriage return and tab, `\u00xx` for other control characters; everything
/// else (non-ASCII included) as is.
fn push_str<B: BufMut>(out: &mut B, s: &str) {
    out.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    loop {
        let i = next_escape(bytes, run);
        out.put_slice(&bytes[run..i]);
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => out.put_slice(b"\\\""),
            b'\\' => out.put_slice(b"\\\\"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            0x08 => out.put_slice(b"\\b"),
            0x0c => out.put_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.put_slice(b"\\u00");
                out.put_u8(HEX[usize::from(b >> 4)]);
                out.put_u8(HEX[usize::from(b & 0xf)]);
            }
        }
        run = i + 1;
    }
    out.put_u8(b'"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The index of the first byte at or after `i` that needs an escape (`bytes.len()` if none),
/// looking at eight bytes at a time: header text rarely has any.
fn next_escape(bytes: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        // A high bit is set for some byte below 0x20 (exact as to whether there is one), and
        // for some byte equal to '"' or '\\' (zero after the XOR).
        let control = x.wrapping_sub(LO * 0x20) & !x;
        let quote = x ^ (LO * u64::from(b'"'));
        let quote = quote.wrapping_sub(LO) & !quote;
        let slash = x ^ (LO * u64::from(b'\\'));
        let slash = slash.wrapping_sub(LO) & !slash;
        if (control | quote | slash) & HI != 0 {
            break;
        }
        i += 8;
    }
    while i < bytes.len() && !needs_escape(bytes[i]) {
        i += 1;
    }
    i
}

/// Decodes a JSON header; the body is filled in by the frame decoder. The common shape is read in
/// one pass (`header_json_fast`); everything else goes through serde.
pub(crate) fn decode(bytes: &[u8]) -> Result<RemotingCommand, FrameError> {
    match crate::header_json_fast::decode(bytes) {
        Some(cmd) => Ok(cmd),
        None => decode_general(bytes),
    }
}

/// The general decoder: fastjson's unquoted keys, unknown keys, non-string extFields values.
pub(crate) fn decode_general(bytes: &[u8]) -> Result<RemotingCommand, FrameError> {
    let text = std::str::from_utf8(bytes).map_err(|_| FrameError::Utf8)?;
    let parsed: In =
        crate::fastjson::from_str(text).map_err(|e| FrameError::Json(e.to_string()))?;
    let ext_fields = parsed
        .ext_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some((k, s)),
            other => Some((k, other.to_string())),
        })
        .collect();
    Ok(RemotingCommand {
        code: parsed.code,
        language: parsed
            .language
            .as_deref()
            .map_or(LanguageCode::Other, LanguageCode::from_name),
        version: parsed.version,
        opaque: parsed.opaque,
        flag: parsed.flag,
        remark: parsed.remark,
        ext_fields,
        body: Default::default(),
        serialize_type: SerializeType::Json,
    })
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::command::ExtFields;

    /// The header as serde_json writes it: the oracle for the hand-written encoder.
    #[derive(Serialize)]
    struct Oracle<'a> {
        code: i32,
        #[serde(rename = "extFields", skip_serializing_if = "ExtFields::is_empty")]
        ext_fields: &'a ExtFields,
        flag: i32,
        language: &'static str,
        opaque: i32,
        #[serde(skip_serializing_if = "Option::is_none")]
        remark: Option<&'a str>,
        #[serde(rename = "serializeTypeCurrentRPC")]
        serialize_type: &'static str,
        version: i32,
    }

    fn oracle(cmd: &RemotingCommand) -> Vec<u8> {
        serde_json::to_vec(&Oracle {
            code: cmd.code,
            ext_fields: &cmd.ext_fields,
            flag: cmd.flag,
            language: cmd.language.name(),
            opaque: cmd.opaque,
            remark: cmd.remark.as_deref(),
            serialize_type: "JSON",
            version: cmd.version,
        })
        .unwrap()
    }

    proptest::proptest! {
        /// Byte for byte serde_json's output, for any numbers and any text (control characters,
        /// quotes, backslashes, non-ASCII), and it decodes back to the same command.
        #[test]
        fn encodes_as_serde_json_does(
            code: i32, flag: i32, opaque: i32, version: i32,
            lang in 0u8..20,
            remark in proptest::option::of("(?s).{0,40}"),
            ext in proptest::collection::btree_map("(?s).{0,6}", "([ -~]{0,9}(?s).?){0,4}", 0..6),
        ) {
            let cmd = RemotingCommand {
                code,
                language: LanguageCode::from_code(lang),
                version,
                opaque,
                flag,
                remark,
                ext_fields: ext.into(),
                ..Default::default()
            };
            let mut ours = Vec::new();
            encode(&cmd, &mut ours);
            let want = oracle(&cmd);
            proptest::prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&want));
            let back = decode(&ours).unwrap();
            proptest::prop_assert_eq!(back, cmd);
        }
    }

    #[test]
    fn every_control_character_and_the_extremes() {
        let all: String = (0u8..0x80)
            .map(char::from)
            .chain("é\u{7f}\u{2028}𝄞".chars())
            .collect();
        let cmd = RemotingCommand {
            code: i32::MIN,
            opaque: i32::MAX,
            flag: -1,
            remark: Some(all.clone()),
            ext_fields: [(all.as_str(), all.as_str())].into(),
            ..Default::default()
        };
        let mut ours = Vec::new();
        encode(&cmd, &mut ours);
        assert_eq!(ours, oracle(&cmd));
    }
}
