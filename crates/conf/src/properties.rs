//! Java `.properties` syntax: `#`/`!` comments, `key=value`, `key: value` or `key value`,
//! blanks around separators, backslash line continuations, `\uXXXX` and the usual escapes.
//! Values are trimmed (RocketMQ trims strings but not numbers, so `brokerId=0 ` is silently
//! ignored there; here it means 0).

/// One `key=value` of a file, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Whether `line` ends with an odd number of backslashes (a continuation).
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Resolves escapes of a key or value.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = (0..4).filter_map(|_| it.next()).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => out.push(ch),
                    _ => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Splits a logical line into its raw key and raw value: the key ends at the first unescaped
/// `=`, `:` or blank; blanks, then at most one `=` or `:`, then blanks separate it from the value.
fn split(logical: &str) -> (&str, &str) {
    let bytes = logical.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => i += 1,
        }
    }
    let i = i.min(bytes.len());
    let key = &logical[..i];
    let mut rest = logical[i..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

/// Parses `.properties` text. A repeated key keeps every occurrence (the caller decides; the
/// last one wins when loading, as in Java).
pub fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start_matches([' ', '\t', '\x0c']);
        if logical.is_empty() {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            start = i + 1;
        }
        if continues(line) {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let (k, v) = split(&logical);
        let key = unescape(k);
        if !key.is_empty() {
            out.push(Entry {
                key,
                value: unescape(v).trim().to_string(),
                line: start,
            });
        }
        logical.clear();
    }
    if !logical.is_empty() {
        let (k, v) = split(&logical);
        let key = unescape(k);
        if !key.is_empty() {
            out.push(Entry {
                key,
                value: unescape(v).trim().to_string(),
                line: start,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    #[test]
    fn separators_comments_and_blanks() {
        let text = "# comment\n! also\n\nbrokerName=broker-a\nbrokerId = 0\n  listenPort: 10911\n\
                    deleteWhen 04\nflag\nempty=\n";
        assert_eq!(
            kv(text),
            vec![
                ("brokerName".into(), "broker-a".into(), 4),
                ("brokerId".into(), "0".into(), 5),
                ("listenPort".into(), "10911".into(), 6),
                ("deleteWhen".into(), "04".into(), 7),
                ("flag".into(), "".into(), 8),
                ("empty".into(), "".into(), 9),
            ]
        );
    }

    #[test]
    fn continuations_and_escapes() {
        let text =
            "dLegerPeers=n0-127.0.0.1:40911;\\\n    n1-127.0.0.1:40912\nname=caf\\u00e9\\tx\n\
                    path=C\\:\\\\data\nodd=ends with \\\\\nnext=1\n";
        assert_eq!(
            kv(text),
            vec![
                (
                    "dLegerPeers".into(),
                    "n0-127.0.0.1:40911;n1-127.0.0.1:40912".into(),
                    1
                ),
                ("name".into(), "café\tx".into(), 3),
                ("path".into(), "C:\\data".into(), 4),
                ("odd".into(), "ends with \\".into(), 5),
                ("next".into(), "1".into(), 6),
            ]
        );
    }

    #[test]
    fn values_are_trimmed_and_keys_may_be_escaped() {
        assert_eq!(
            kv("brokerId=0 \t\nmy\\ key = v \n"),
            vec![
                ("brokerId".into(), "0".into(), 1),
                ("my key".into(), "v".into(), 2)
            ]
        );
    }
}
