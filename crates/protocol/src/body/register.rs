//! `RegisterBrokerBody`: what a broker sends with REGISTER_BROKER, as JSON or in the compressed
//! (zlib) form selected by the header's `compressed=true`.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::body::topic_config::{DataVersion, TopicConfig, TopicConfigSerializeWrapper};

/// Largest decompressed register body accepted (a bound against zip bombs).
pub const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBrokerBody {
    #[serde(default)]
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    #[serde(default)]
    pub filter_server_list: Vec<String>,
}

/// Why a register body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegisterBodyError {
    #[error("register body JSON: {0}")]
    Json(String),
    #[error("compressed register body: {0}")]
    Compressed(&'static str),
}

impl RegisterBrokerBody {
    /// Reads the body in the form the header says.
    pub fn decode(bytes: &[u8], compressed: bool) -> Result<Self, RegisterBodyError> {
        if compressed {
            Self::decode_compressed(bytes)
        } else {
            crate::fastjson::from_slice(bytes).map_err(|e| RegisterBodyError::Json(e.to_string()))
        }
    }

    /// The compressed form: zlib of (int32-len + DataVersion JSON, int32 topic count, per topic
    /// int32-len + text form, int32-len + filter list JSON[, 5.x mapping data, ignored]).
    pub fn decode_compressed(bytes: &[u8]) -> Result<Self, RegisterBodyError> {
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(bytes)
            .take(MAX_DECOMPRESSED as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|_| RegisterBodyError::Compressed("not a zlib stream"))?;
        if raw.len() > MAX_DECOMPRESSED {
            return Err(RegisterBodyError::Compressed("decompresses past 64 MiB"));
        }
        let (dv, pos) = read_chunk(&raw, 0, "data version")?;
        let data_version: DataVersion =
            crate::fastjson::from_slice(dv).map_err(|e| RegisterBodyError::Json(e.to_string()))?;
        // The topic count is a bare int32, not a length-prefixed chunk.
        let count = i32::from_be_bytes(raw_slice(&raw, pos)?);
        let mut pos = pos + 4;
        let mut wrapper = TopicConfigSerializeWrapper {
            data_version,
            ..Default::default()
        };
        for _ in 0..count.max(0) {
            let (text, next) = read_chunk(&raw, pos, "topic config")?;
            pos = next;
            let text = std::str::from_utf8(text)
                .map_err(|_| RegisterBodyError::Compressed("topic config text"))?;
            let tc = TopicConfig::from_text(text)
                .ok_or(RegisterBodyError::Compressed("topic config text"))?;
            wrapper.topic_config_table.insert(tc.topic_name.clone(), tc);
        }
        let (filters, _) = read_chunk(&raw, pos, "filter server list")?;
        let filter_server_list = crate::fastjson::from_slice(filters)
            .map_err(|e| RegisterBodyError::Json(e.to_string()))?;
        Ok(RegisterBrokerBody {
            topic_config_serialize_wrapper: wrapper,
            filter_server_list,
        })
    }

    /// Encodes the compressed form.
    pub fn encode_compressed(&self) -> Vec<u8> {
        let mut raw = Vec::new();
        let put = |raw: &mut Vec<u8>, data: &[u8]| {
            raw.extend_from_slice(&(data.len() as i32).to_be_bytes());
            raw.extend_from_slice(data);
        };
        let w = &self.topic_config_serialize_wrapper;
        put(
            &mut raw,
            &serde_json::to_vec(&w.data_version).expect("data version JSON"),
        );
        raw.extend_from_slice(&(w.topic_config_table.len() as i32).to_be_bytes());
        for tc in w.topic_config_table.values() {
            put(&mut raw, tc.to_text().as_bytes());
        }
        put(
            &mut raw,
            &serde_json::to_vec(&self.filter_server_list).expect("filter list JSON"),
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&raw).expect("in-memory write");
        z.finish().expect("in-memory finish")
    }
}

fn read_chunk<'a>(
    raw: &'a [u8],
    pos: usize,
    what: &'static str,
) -> Result<(&'a [u8], usize), RegisterBodyError> {
    let len_bytes: [u8; 4] = raw_slice(raw, pos)?;
    let len = usize::try_from(i32::from_be_bytes(len_bytes))
        .map_err(|_| RegisterBodyError::Compressed(what))?;
    let start = pos + 4;
    let end = start
        .checked_add(len)
        .ok_or(RegisterBodyError::Compressed(what))?;
    let data = raw
        .get(start..end)
        .ok_or(RegisterBodyError::Compressed(what))?;
    Ok((data, end))
}

fn raw_slice(raw: &[u8], pos: usize) -> Result<[u8; 4], RegisterBodyError> {
    raw.get(pos..pos + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or(RegisterBodyError::Compressed("truncated"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RegisterBrokerBody {
        let mut w = TopicConfigSerializeWrapper {
            data_version: DataVersion {
                counter: 7,
                timestamp: 1_700_000_000_000,
                state_version: None,
            },
            ..Default::default()
        };
        for (n, q) in [("A", 4), ("B", 8)] {
            w.topic_config_table
                .insert(n.into(), TopicConfig::new(n, q, q, 6));
        }
        RegisterBrokerBody {
            topic_config_serialize_wrapper: w,
            filter_server_list: vec![],
        }
    }

    #[test]
    fn compressed_round_trip() {
        let b = sample();
        let bytes = b.encode_compressed();
        assert_eq!(RegisterBrokerBody::decode(&bytes, true).unwrap(), b);
    }

    #[test]
    fn json_form() {
        let b = sample();
        let json = serde_json::to_vec(&b).unwrap();
        assert_eq!(RegisterBrokerBody::decode(&json, false).unwrap(), b);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(RegisterBrokerBody::decode(b"\x78\x9c\x00", true).is_err());
        assert!(RegisterBrokerBody::decode(b"{", false).is_err());
        // A valid zlib stream of a truncated layout.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&[0, 0, 0, 50, b'{']).unwrap();
        assert!(RegisterBrokerBody::decode(&z.finish().unwrap(), true).is_err());
    }
}
