//! Reading a broker conf file: Java `.properties` text into key/value pairs, with `FERROCKET_<key>`
//! environment overrides and `-n` applied on top.
//!
//! A stop-gap until the conf crate's loader (provenance, validation with file:line) is wired in;
//! it follows the `.properties` rules the stock RocketMQ files use: `#`/`!` comments, `key=value`,
//! `key: value` or `key value`, surrounding blanks trimmed, `\` line continuations.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A key/value pair and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub source: String,
}

/// Parses `.properties` text.
pub fn parse_properties(text: &str, source: &str) -> BTreeMap<String, Setting> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    let mut start_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if pending.is_empty() {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            start_line = i + 1;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let entry = entry.trim();
        let split = entry.find(['=', ':', ' ', '\t']);
        let (k, v) = match split {
            Some(p) => (&entry[..p], &entry[p + 1..]),
            None => (entry, ""),
        };
        let k = k.trim();
        let v = v.trim_start_matches([' ', '\t']);
        let v = v.strip_prefix(['=', ':']).unwrap_or(v).trim();
        if !k.is_empty() {
            out.insert(
                k.to_string(),
                Setting {
                    value: v.to_string(),
                    source: format!("{source}:{start_line}"),
                },
            );
        }
    }
    out
}

/// Reads a conf file, then applies `FERROCKET_<key>` environment variables and `-n`.
pub fn load(
    path: Option<&Path>,
    namesrv: Option<&str>,
) -> std::io::Result<BTreeMap<String, Setting>> {
    let mut map = match path {
        Some(p) => parse_properties(&std::fs::read_to_string(p)?, &p.display().to_string()),
        None => BTreeMap::new(),
    };
    for (k, v) in std::env::vars() {
        if let Some(key) = k.strip_prefix("FERROCKET_") {
            if !key.is_empty() {
                map.insert(
                    key.to_string(),
                    Setting {
                        value: v,
                        source: format!("env {k}"),
                    },
                );
            }
        }
    }
    if !map.contains_key("namesrvAddr") {
        if let Ok(v) = std::env::var("NAMESRV_ADDR") {
            map.insert(
                "namesrvAddr".into(),
                Setting {
                    value: v,
                    source: "env NAMESRV_ADDR".into(),
                },
            );
        }
    }
    if let Some(n) = namesrv {
        map.insert(
            "namesrvAddr".into(),
            Setting {
                value: n.to_string(),
                source: "command line -n".into(),
            },
        );
    }
    Ok(map)
}

/// The plain key/value view.
pub fn values(map: &BTreeMap<String, Setting>) -> HashMap<String, String> {
    map.iter()
        .map(|(k, s)| (k.clone(), s.value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_forms() {
        let m = parse_properties(
            "# c\nbrokerClusterName = DefaultCluster\nbrokerName=broker-a\n! x\nk: v\nspaced value here\nlong=a\\\n  b\n",
            "f",
        );
        assert_eq!(m["brokerClusterName"].value, "DefaultCluster");
        assert_eq!(m["brokerName"].value, "broker-a");
        assert_eq!(m["brokerName"].source, "f:3");
        assert_eq!(m["k"].value, "v");
        assert_eq!(m["spaced"].value, "value here");
        assert_eq!(m["long"].value, "ab");
    }
}
