//! fastjson compatibility: Java processes write maps keyed by numbers with *unquoted* keys
//! (`{"brokerAddrs":{0:"10.0.0.1:10911"}}`), which is not JSON. We read both forms by quoting such
//! keys before handing the text to serde_json, and can write either form.

/// Returns `text` with every unquoted object key quoted. Text that is already standard JSON comes
/// back unchanged (borrowed). Never panics; malformed input stays malformed for the JSON parser to
/// report.
pub fn quote_bare_keys(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    if !needs_quoting(bytes) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    let mut in_string = false;
    let mut expect_key = false;
    let mut stack: Vec<u8> = Vec::new();
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if c == b'\\' && i + 1 < bytes.len() {
                // The backslash and the whole character it escapes (which may be multi-byte).
                let next = next_boundary(text, i + 1);
                out.push_str(&text[i..next]);
                i = next;
                continue;
            }
            if c == b'"' {
                in_string = false;
            }
            // Push whole UTF-8 sequences: find the next char boundary.
            let next = next_boundary(text, i);
            out.push_str(&text[i..next]);
            i = next;
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                expect_key = false;
                out.push('"');
                i += 1;
            }
            b'{' | b'[' => {
                stack.push(c);
                expect_key = c == b'{';
                out.push(c as char);
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
                out.push(c as char);
                i += 1;
            }
            b',' => {
                expect_key = stack.last() == Some(&b'{');
                out.push(',');
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {
                out.push(c as char);
                i += 1;
            }
            _ if expect_key && c != b'}' => {
                let start = i;
                while i < bytes.len()
                    && !matches!(bytes[i], b':' | b' ' | b'\t' | b'\r' | b'\n' | b'}' | b',')
                {
                    i += 1;
                }
                out.push('"');
                out.push_str(&text[start..i]);
                out.push('"');
                expect_key = false;
            }
            _ => {
                expect_key = false;
                let next = next_boundary(text, i);
                out.push_str(&text[i..next]);
                i = next;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

fn next_boundary(text: &str, i: usize) -> usize {
    let mut j = i + 1;
    while j < text.len() && !text.is_char_boundary(j) {
        j += 1;
    }
    j
}

/// Cheap pre-check: does any `{` or `,` inside an object, outside strings, precede something
/// other than `"`, `}` or whitespace? Linear in the input.
fn needs_quoting(bytes: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut stack: Vec<u8> = Vec::new();
    let mut after_sep = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        let was_after_sep = after_sep;
        after_sep = false;
        match b {
            b'"' => in_string = true,
            b'{' => {
                stack.push(b);
                after_sep = true;
            }
            b'[' => stack.push(b),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => after_sep = stack.last() == Some(&b'{'),
            _ if was_after_sep => return true,
            _ => {}
        }
    }
    false
}

/// Parses JSON that may carry fastjson's unquoted keys.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(&quote_bare_keys(text))
}

/// Parses JSON bytes that may carry fastjson's unquoted keys.
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => from_str(text),
        // Let serde_json report the encoding problem with its own position.
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Rewrites standard JSON into fastjson's form: object keys that are integers lose their quotes.
/// Used for clients older than 4.9.4 that asked for no standard JSON.
pub fn unquote_numeric_keys(json: &str) -> String {
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let mut i = 0;
    let mut prev_sig: u8 = 0; // last non-whitespace byte outside strings
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            // Find the end of this string.
            let mut j = i + 1;
            while j < bytes.len() {
                match bytes[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            if j >= bytes.len() {
                // Unterminated string: copy the rest as is.
                out.push_str(&json[i..]);
                break;
            }
            let end = j;
            let inner = &json[i + 1..end];
            let is_key = matches!(prev_sig, b'{' | b',') && bytes.get(end + 1) == Some(&b':');
            let numeric = !inner.is_empty()
                && inner
                    .bytes()
                    .enumerate()
                    .all(|(k, b)| b.is_ascii_digit() || (k == 0 && b == b'-'))
                && inner != "-";
            if is_key && numeric {
                out.push_str(inner);
            } else {
                out.push_str(&json[i..=end]);
            }
            prev_sig = b'"';
            i = end + 1;
            continue;
        }
        if !c.is_ascii_whitespace() {
            prev_sig = c;
        }
        let next = next_boundary(json, i);
        out.push_str(&json[i..next]);
        i = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn quotes_bare_numeric_keys() {
        let text = r#"{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"x":[{"a":1}]}"#;
        let fixed = quote_bare_keys(text);
        assert_eq!(
            fixed,
            r#"{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"x":[{"a":1}]}"#
        );
        #[derive(serde::Deserialize)]
        struct B {
            #[serde(rename = "brokerAddrs")]
            broker_addrs: BTreeMap<i64, String>,
        }
        let b: B = from_str(text).unwrap();
        assert_eq!(b.broker_addrs[&1], "10.0.0.2:10911");
    }

    #[test]
    fn standard_json_is_left_alone() {
        let text = r#"{"a":{"0":"x, {y: z}"},"b":[1,2,{"c":"\"q"}]}"#;
        assert!(matches!(
            quote_bare_keys(text),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn nested_offset_tables() {
        let text = r#"{"offsetTable":{"t@g":{0:12,1:7}}}"#;
        let v: serde_json::Value = from_str(text).unwrap();
        assert_eq!(v["offsetTable"]["t@g"]["1"], 7);
    }

    #[test]
    fn unquote_round_trips() {
        let std = r#"{"brokerAddrs":{"0":"a:1","-1":"b:2"},"name":"0","list":["1"]}"#;
        let fj = unquote_numeric_keys(std);
        assert_eq!(
            fj,
            r#"{"brokerAddrs":{0:"a:1",-1:"b:2"},"name":"0","list":["1"]}"#
        );
        assert_eq!(quote_bare_keys(&fj), std);
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "{", "{,", "{:", "{\"", "{a", "}{", "{\"a\\", "{é:1}", ",,,{{{", "{1:{2:",
        ] {
            let _ = quote_bare_keys(s);
            let _ = unquote_numeric_keys(s);
            let _ = from_str::<serde_json::Value>(s);
        }
    }

    /// Found by the fuzzer: an escape before a multi-byte character.
    #[test]
    fn escaped_multibyte_characters() {
        let text = "{0:\"x\\\u{8968d}y\", 1:\"\u{e9}\"}";
        let quoted = quote_bare_keys(text);
        assert!(quoted.contains("\"0\":"), "{quoted}");
        assert!(quoted.contains("\\\u{8968d}y"), "{quoted}");
    }
}
