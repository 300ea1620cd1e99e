//! The JSON header serialization (type 0), as fastjson writes it: sorted keys, language by name,
//! null fields omitted. Reading ignores unknown keys and tolerates non-string extFields values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{ExtFields, RemotingCommand, SerializeType};
use crate::error::FrameError;
use crate::language::LanguageCode;

#[derive(Serialize)]
struct Out<'a> {
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

/// Appends the JSON header of `cmd` to `out`.
pub(crate) fn encode(cmd: &RemotingCommand, out: &mut Vec<u8>) {
    let header = Out {
        code: cmd.code,
        ext_fields: &cmd.ext_fields,
        flag: cmd.flag,
        language: cmd.language.name(),
        opaque: cmd.opaque,
        remark: cmd.remark.as_deref(),
        serialize_type: "JSON",
        version: cmd.version,
    };
    // Serializing plain strings and integers into a Vec cannot fail.
    serde_json::to_writer(out, &header).expect("JSON header serialization");
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
