//! A one-pass reader for the common shape of a JSON header: one flat object of the known keys
//! (`code`, `language`, `version`, `opaque`, `flag`, `remark`, `extFields` of string values,
//! `serializeTypeCurrentRPC`), keys quoted. It builds the command straight from the bytes,
//! without serde's intermediate map of `serde_json::Value`s.
//!
//! Anything else (an unknown or repeated key, fastjson's unquoted keys, a non-string extFields
//! value, a number that is not a plain `i32`, bad UTF-8, a syntax error) makes it answer `None`,
//! and the caller decodes with the general serde path, which either accepts the header as before
//! or reports the error. So this reader only ever agrees with the general one or defers to it;
//! `tests` checks that on generated and hand-made headers.

use std::borrow::Cow;

use crate::command::{ExtFields, RemotingCommand, SerializeType};
use crate::language::LanguageCode;

/// The command of a header in the common shape, or `None` to use the general decoder.
pub(crate) fn decode(bytes: &[u8]) -> Option<RemotingCommand> {
    let mut r = Reader { b: bytes, i: 0 };
    let mut cmd = RemotingCommand {
        language: LanguageCode::Other,
        serialize_type: SerializeType::Json,
        ..Default::default()
    };
    let mut seen = 0u8;
    r.expect(b'{')?;
    if !r.eat(b'}') {
        loop {
            let key = r.raw_key()?;
            r.expect(b':')?;
            let bit = match key {
                b"code" => {
                    cmd.code = r.int()?;
                    1
                }
                b"language" => {
                    if let Some(name) = r.string_or_null()? {
                        cmd.language = LanguageCode::from_name(&name);
                    }
                    2
                }
                b"version" => {
                    cmd.version = r.int()?;
                    4
                }
                b"opaque" => {
                    cmd.opaque = r.int()?;
                    8
                }
                b"flag" => {
                    cmd.flag = r.int()?;
                    16
                }
                b"remark" => {
                    cmd.remark = r.string_or_null()?;
                    32
                }
                b"extFields" => {
                    cmd.ext_fields = r.ext_fields()?;
                    64
                }
                b"serializeTypeCurrentRPC" => {
                    r.string_or_null()?;
                    128
                }
                _ => return None,
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            if r.eat(b',') {
                continue;
            }
            r.expect(b'}')?;
            break;
        }
    }
    r.skip_ws();
    (r.i == r.b.len()).then_some(cmd)
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// Skips whitespace, then consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// A key without escapes, as its raw bytes.
    fn raw_key(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' => return None,
                _ => self.i += 1,
            }
        }
        let key = &self.b[start..self.i];
        self.i += 1;
        Some(key)
    }

    /// A plain integer that fits an `i32`.
    fn int(&mut self) -> Option<i32> {
        self.skip_ws();
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let n = self.i - digits;
        // JSON allows no leading zeros; a fraction or exponent goes to the general decoder.
        if n == 0 || (n > 1 && self.b[digits] == b'0') {
            return None;
        }
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn string_or_null(&mut self) -> Option<Option<String>> {
        Some(self.text_or_null()?.map(Cow::into_owned))
    }

    fn text_or_null(&mut self) -> Option<Option<Cow<'a, str>>> {
        self.skip_ws();
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Some(None);
        }
        self.text().map(Some)
    }

    /// A quoted string with JSON escapes; borrowed from the input when it has none.
    fn text(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    let s = std::str::from_utf8(&self.b[start..self.i]).ok()?;
                    self.i += 1;
                    return Some(Cow::Borrowed(s));
                }
                b'\\' => break,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        let mut out = std::str::from_utf8(&self.b[start..self.i]).ok()?.to_owned();
        loop {
            let run = self.i;
            while let Some(&c) = self.b.get(self.i) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.b[run..self.i]).ok()?);
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    self.i += 1;
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` consumed), pairing surrogates.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.b.get(self.i..self.i + 2)? != b"\\u" {
                return None;
            }
            self.i += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        char::from_u32(hi)
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.b.get(self.i..self.i + 4)?).ok()?;
        let v = u32::from_str_radix(h, 16).ok()?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        self.i += 4;
        Some(v)
    }

    /// `{"key":"value",...}` or `null`; null values are left out (as the general decoder does).
    fn ext_fields(&mut self) -> Option<ExtFields> {
        let mut ext = ExtFields::with_capacity(16, self.b.len() - self.i);
        self.skip_ws();
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Some(ext);
        }
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(ext);
        }
        loop {
            self.skip_ws();
            let key = self.text()?;
            self.expect(b':')?;
            if let Some(v) = self.text_or_null()? {
                ext.insert(&key, &v);
            } else {
                ext.remove(&key);
            }
            if self.eat(b',') {
                continue;
            }
            self.expect(b'}')?;
            return Some(ext);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general(text: &str) -> Option<RemotingCommand> {
        crate::header_json::decode_general(text.as_bytes()).ok()
    }

    /// Whatever the fast reader accepts, the general decoder decodes the same way.
    fn agrees(text: &str) -> bool {
        match decode(text.as_bytes()) {
            Some(fast) => general(text).as_ref() == Some(&fast),
            None => true,
        }
    }

    #[test]
    fn reads_what_java_clients_send() {
        let text = r#"{"code":310,"extFields":{"a":"producerGroupA","b":"TopicTest","c":"TBW102","d":"4","e":"1","f":"0","g":"1700000000000","h":"0","i":"UNIQ_KEY\u00017F00000100002A9F0000000000000001\u0002WAIT\u0001true\u0002","j":"0","k":"false","m":"false"},"flag":0,"language":"JAVA","opaque":42,"serializeTypeCurrentRPC":"JSON","version":453}"#;
        let fast = decode(text.as_bytes()).expect("common shape");
        assert_eq!(fast.code, 310);
        assert_eq!(fast.opaque, 42);
        assert_eq!(fast.language, LanguageCode::Java);
        assert_eq!(fast.ext("b"), Some("TopicTest"));
        assert_eq!(
            fast.ext("i"),
            Some("UNIQ_KEY\u{1}7F00000100002A9F0000000000000001\u{2}WAIT\u{1}true\u{2}")
        );
        assert_eq!(general(text), Some(fast));
    }

    #[test]
    fn defers_what_it_does_not_cover() {
        for text in [
            r#"{code:310,"flag":0}"#,
            r#"{"code":310,"extFields":{12:"x"}}"#,
            r#"{"code":310,"extFields":{"a":5}}"#,
            r#"{"code":310,"unknown":[1,2]}"#,
            r#"{"code":1,"code":2}"#,
            r#"{"code":1.5}"#,
            r#"{"code":01}"#,
            r#"{"code":3000000000}"#,
            r#"{"code":1"#,
            r#"{"code":1} x"#,
            r#"{"remark":"\ud800"}"#,
            r#"{"remark":"a\qb"}"#,
        ] {
            assert!(decode(text.as_bytes()).is_none(), "{text}");
        }
    }

    #[test]
    fn escapes_and_nulls_agree_with_the_general_decoder() {
        for text in [
            r#"{}"#,
            r#" { "code" : -7 , "remark" : null , "extFields" : null } "#,
            r#"{"remark":"tab\there \"quoted\" \\ \/ \b\f\n\r \u00e9 \ud83d\ude00","flag":1}"#,
            r#"{"extFields":{"a":"1","a":"2","b":null,"c":""},"language":"GO"}"#,
            r#"{"language":null,"version":0,"opaque":-2147483648}"#,
            "{\"remark\":\"caf\u{e9} \u{1F600}\"}",
        ] {
            assert!(decode(text.as_bytes()).is_some(), "{text}");
            assert!(agrees(text), "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_disagrees_on_arbitrary_text(text in ".{0,80}") {
            proptest::prop_assert!(agrees(&text));
        }

        #[test]
        fn never_disagrees_on_json_like_text(
            text in r#"[{}":,a-z0-9\\ \-.null]{0,60}"#
        ) {
            let wrapped = format!("{{\"extFields\":{{{text}}}}}");
            proptest::prop_assert!(agrees(&wrapped));
            proptest::prop_assert!(agrees(&text));
        }
    }
}
