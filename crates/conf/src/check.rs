//! Value checks: types inferred from RocketMQ's defaults, enums, glued lines, and the cross-key
//! rules of brokers (roles and ids, DLedger peers).

use std::collections::{BTreeMap, BTreeSet};

use crate::registry::{self, Kind, ENUMS};
use crate::{ConfError, Setting};

/// Levenshtein distance, case-insensitive.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known key closest to `key`, if it is close enough to be a typo.
pub fn closest(kind: Kind, key: &str) -> Option<&'static str> {
    registry::known(kind)
        .map(|(k, _)| (edit_distance(key, k), k))
        .min()
        .filter(|(d, _)| *d <= 3.max(key.len() / 3))
        .map(|(_, k)| k)
}

fn bad(s: &Setting, key: &str, expected: String) -> ConfError {
    ConfError::BadValue {
        at: s.origin.to_string(),
        key: key.to_string(),
        value: s.value.clone(),
        expected,
    }
}

/// Whether `key` sits inside `value` where a line break went missing: after other text, not in
/// a path, and followed by the end or a separator.
fn glued(value: &str, key: &str) -> bool {
    value.match_indices(key).any(|(i, _)| {
        let before = value[..i].chars().next_back();
        let after = value[i + key.len()..].chars().next();
        i > 0
            && !matches!(before, Some('/' | '\\' | '.' | '-' | '_'))
            && matches!(after, None | Some(' ' | '\t' | '=' | ':'))
    })
}

/// Checks one value against its key's type.
pub fn value(kind: Kind, key: &str, s: &Setting) -> Result<(), ConfError> {
    let v = s.value.as_str();
    // A missing line break glues the next `key=value` onto this value.
    if v.contains('=') || registry::known(kind).any(|(k, _)| k.len() > 6 && glued(v, k)) {
        return Err(ConfError::Glued {
            at: s.origin.to_string(),
            key: key.to_string(),
            value: v.to_string(),
        });
    }
    if let Some((_, allowed)) = ENUMS.iter().find(|(k, _)| *k == key) {
        if !allowed.contains(&v) {
            return Err(bad(s, key, format!("one of {}", allowed.join(", "))));
        }
        return Ok(());
    }
    let Some(default) = registry::default_of(kind, key) else {
        return Ok(());
    };
    if default == "true" || default == "false" {
        if v != "true" && v != "false" {
            return Err(bad(s, key, "true or false".into()));
        }
    } else if !default.is_empty() && default.parse::<i64>().is_ok() {
        if key.ends_with("Port") && !v.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(bad(s, key, "a port number 1-65535".into()));
        }
        if v.parse::<i64>().is_err() {
            return Err(bad(s, key, "a whole number".into()));
        }
    } else if !default.is_empty() && default.parse::<f64>().is_ok() && v.parse::<f64>().is_err() {
        return Err(bad(s, key, "a number".into()));
    }
    Ok(())
}

fn rule(settings: &BTreeMap<String, Setting>, key: &str, message: String) -> ConfError {
    ConfError::Rule {
        at: settings
            .get(key)
            .map_or_else(|| "conf".to_string(), |s| s.origin.to_string()),
        key: key.to_string(),
        message,
    }
}

/// A broker's cross-key rules. Returns warnings for what RocketMQ silently fixes up.
pub fn broker_rules(settings: &BTreeMap<String, Setting>) -> Result<Vec<String>, ConfError> {
    let get = |k: &str| settings.get(k).map(|s| s.value.as_str());
    let mut warnings = Vec::new();
    // Fail closed: a conf that asks for access control must not get a broker open to all.
    if get("aclEnable").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Err(rule(
            settings,
            "aclEnable",
            "is true, but Ferrocket does not implement ACL yet: refusing to start a broker that \
             would accept every client; set aclEnable=false (or remove it) to run without access \
             control"
                .to_string(),
        ));
    }
    let dledger = get("enableDLegerCommitLog") == Some("true");
    let role = get("brokerRole").unwrap_or("ASYNC_MASTER");
    let id: i64 = get("brokerId").and_then(|v| v.parse().ok()).unwrap_or(0);
    if !dledger {
        if role == "SLAVE" && id <= 0 {
            return Err(rule(
                settings,
                "brokerId",
                format!("is {id}, but a SLAVE needs brokerId > 0"),
            ));
        }
        if role != "SLAVE" && id != 0 {
            warnings.push(format!(
                "{}: `brokerId={id}` on a {role}: masters run as brokerId 0",
                settings["brokerId"].origin
            ));
        }
        return Ok(warnings);
    }
    for k in ["dLegerGroup", "dLegerPeers", "dLegerSelfId"] {
        if get(k).is_none_or(str::is_empty) {
            return Err(rule(
                settings,
                "enableDLegerCommitLog",
                format!("is true, but `{k}` is not set (DLedger mode needs dLegerGroup, dLegerPeers and dLegerSelfId)"),
            ));
        }
    }
    let peers = get("dLegerPeers").unwrap_or_default();
    let mut ids = BTreeSet::new();
    let mut addrs = BTreeSet::new();
    for p in peers.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((pid, addr)) = p.split_once('-') else {
            return Err(rule(
                settings,
                "dLegerPeers",
                format!("entry `{p}` is not `id-host:port`"),
            ));
        };
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if pid.is_empty() || !port_ok {
            return Err(rule(
                settings,
                "dLegerPeers",
                format!("entry `{p}` is not `id-host:port`"),
            ));
        }
        if !ids.insert(pid.to_string()) {
            return Err(rule(
                settings,
                "dLegerPeers",
                format!("id `{pid}` appears twice in `{peers}`"),
            ));
        }
        if !addrs.insert(addr.to_string()) {
            return Err(rule(
                settings,
                "dLegerPeers",
                format!("address `{addr}` appears twice in `{peers}`"),
            ));
        }
    }
    let me = get("dLegerSelfId").unwrap_or_default();
    if !ids.contains(me) {
        return Err(rule(
            settings,
            "dLegerSelfId",
            format!("`{me}` is not among the ids of dLegerPeers `{peers}`"),
        ));
    }
    Ok(warnings)
}
