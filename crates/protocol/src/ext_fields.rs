//! `ExtFields`: a command's `extFields`, string keys to string values.
//!
//! Every request and response carries one, so it is built for few allocations: all keys and
//! values live in one text buffer and the entries are offsets into it, kept sorted by key (the
//! order fastjson writes and our encoders emit). A map of a dozen entries costs two allocations
//! instead of a String per key and per value plus tree nodes.

use std::fmt::{self, Write as _};

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: (u32, u32),
    value: (u32, u32),
}

/// String keys to string values, unique keys, iterated in key order.
#[derive(Clone, Default)]
pub struct ExtFields {
    text: String,
    entries: Vec<Entry>,
}

impl ExtFields {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `entries` entries of `bytes` bytes of keys and values in all.
    pub fn with_capacity(entries: usize, bytes: usize) -> Self {
        ExtFields {
            text: String::with_capacity(bytes),
            entries: Vec::with_capacity(entries),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn at(&self, (start, end): (u32, u32)) -> &str {
        &self.text[start as usize..end as usize]
    }

    fn key_bytes(&self, e: &Entry) -> &[u8] {
        &self.text.as_bytes()[e.key.0 as usize..e.key.1 as usize]
    }

    /// Byte order is code point order in UTF-8, so keys compare as bytes.
    fn find(&self, key: &str) -> Result<usize, usize> {
        let key = key.as_bytes();
        // Decoders mostly see keys in order (fastjson and our encoders sort them).
        match self.entries.last() {
            None => return Err(0),
            Some(last) if short_cmp(self.key_bytes(last), key).is_lt() => {
                return Err(self.entries.len())
            }
            _ => {}
        }
        self.entries
            .binary_search_by(|e| short_cmp(self.key_bytes(e), key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| self.at(self.entries[i].value))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        let value = self.push(|t| t.push_str(value.as_ref()));
        self.set(key.as_ref(), value);
    }

    /// Sets `key` to `value`'s text (numbers and the like, without a String of their own).
    pub fn insert_display(&mut self, key: &str, value: &dyn fmt::Display) {
        let value = self.push(|t| {
            let _ = write!(t, "{value}");
        });
        self.set(key, value);
    }

    /// Removes `key`; true if it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.find(key) {
            Ok(i) => {
                self.entries.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Entries in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            ext: self,
            entries: self.entries.iter(),
        }
    }

    /// Appends text written by `f` and returns its range. Ranges are u32: a header is at most
    /// a frame's size, which the codec keeps far below 4 GiB.
    fn push(&mut self, f: impl FnOnce(&mut String)) -> (u32, u32) {
        let start = self.text.len();
        f(&mut self.text);
        (start as u32, self.text.len() as u32)
    }

    fn set(&mut self, key: &str, value: (u32, u32)) {
        match self.find(key) {
            Ok(i) => self.entries[i].value = value,
            Err(i) => {
                let key = self.push(|t| t.push_str(key));
                self.entries.insert(i, Entry { key, value });
            }
        }
    }
}

/// Byte-wise order without a `memcmp` call: header keys are a few bytes long (SEND_MESSAGE_V2's
/// are one letter), where the call costs more than the comparison.
fn short_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

impl PartialEq for ExtFields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for ExtFields {}

impl fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut ext = ExtFields::new();
        for (k, v) in iter {
            ext.insert(k, v);
        }
        ext
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for ExtFields {
    fn from(entries: [(K, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> From<std::collections::BTreeMap<K, V>> for ExtFields {
    fn from(map: std::collections::BTreeMap<K, V>) -> Self {
        map.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a ExtFields {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Entries of an [`ExtFields`] in key order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    ext: &'a ExtFields,
    entries: std::slice::Iter<'a, Entry>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        let e = self.entries.next()?;
        Some((self.ext.at(e.key), self.ext.at(e.value)))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl serde::Serialize for ExtFields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    proptest::proptest! {
        /// Behaves as a BTreeMap<String, String> under any sequence of inserts and removes.
        #[test]
        fn behaves_like_a_btreemap(
            ops in proptest::collection::vec(
                (proptest::bool::weighted(0.8), "[a-e]{0,2}", "[ -~é]{0,6}"), 0..40)
        ) {
            let mut ours = ExtFields::new();
            let mut model = BTreeMap::new();
            for (insert, k, v) in ops {
                if insert {
                    ours.insert(&k, &v);
                    model.insert(k, v);
                } else {
                    proptest::prop_assert_eq!(ours.remove(&k), model.remove(&k).is_some());
                }
                proptest::prop_assert_eq!(ours.len(), model.len());
                let got: Vec<(&str, &str)> = ours.iter().collect();
                let want: Vec<(&str, &str)> =
                    model.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                proptest::prop_assert_eq!(got, want);
                for k in ["", "a", "ab", "e", "zz"] {
                    proptest::prop_assert_eq!(ours.get(k), model.get(k).map(String::as_str));
                }
            }
            let rebuilt: ExtFields = model.clone().into();
            proptest::prop_assert_eq!(&rebuilt, &ours);
        }
    }

    #[test]
    fn display_values_and_json() {
        let mut ext = ExtFields::with_capacity(3, 32);
        ext.insert_display("queueOffset", &-12i64);
        ext.insert_display("flag", &true);
        ext.insert("b", "x\"y");
        assert_eq!(ext.get("queueOffset"), Some("-12"));
        assert_eq!(
            serde_json::to_string(&ext).unwrap(),
            r#"{"b":"x\"y","flag":"true","queueOffset":"-12"}"#
        );
        assert_eq!(
            format!("{ext:?}"),
            r#"{"b": "x\"y", "flag": "true", "queueOffset": "-12"}"#
        );
    }
}
