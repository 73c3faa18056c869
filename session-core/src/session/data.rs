//! The session map, decoded lazily: a loaded record's JSON is indexed once (one pass that
//! validates it and notes where each top-level value is) and single values are
//! deserialized straight from their text. The map of `Value`s is built only when the
//! request changes the data (or asks for all of it).

use std::borrow::Cow;
use std::ops::Range;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::codec::SessionMap;
use crate::config::{Expiry, EXPIRY_KEY};

/// A record's data (the codec's prefix, then a JSON object) with the byte ranges of the
/// object's top-level keys and values.
#[derive(Debug)]
pub(crate) struct Indexed {
    /// The data as loaded: taken over from the record, not copied. What comes before
    /// `json_start` is the codec's prefix (written back as it is).
    text: String,
    json_start: usize,
    /// Ranges in `text`.
    entries: Vec<(Range<usize>, Range<usize>)>,
}

impl Indexed {
    /// Indexes `data` if what follows `json_start` is a JSON object whose keys have no
    /// escapes (what the JSON codec writes for ordinary keys); otherwise gives `data` back
    /// (the caller decodes it in full).
    pub(crate) fn parse(data: String, json_start: usize) -> Result<Self, String> {
        match data.get(json_start..).and_then(|json| index(&data, json)) {
            Some(entries) => Ok(Self {
                text: data,
                json_start,
                entries,
            }),
            None => Err(data),
        }
    }

    /// The text of the value under `key`.
    fn raw(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| &self.text[k.clone()] == key)
            .map(|(_, v)| &self.text[v.clone()])
    }

    fn to_map(&self) -> SessionMap {
        let mut map = SessionMap::with_capacity(self.entries.len());
        for (k, v) in &self.entries {
            // Indexing validated every value, so parsing one again cannot fail.
            let value = serde_json::from_str(&self.text[v.clone()]).unwrap_or(Value::Null);
            map.insert(self.text[k.clone()].to_owned(), value);
        }
        map
    }
}

/// The top-level entries of the JSON object `json` (a slice of `data`), as ranges in
/// `data`; `None` unless it is one object (nothing after it) with unescaped, distinct keys.
fn index(data: &str, json: &str) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    struct Entries<'a>(&'a str);
    impl<'de> Visitor<'de> for Entries<'_> {
        type Value = Vec<(Range<usize>, Range<usize>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let base = self.0.as_ptr() as usize;
            let span = |s: &str| {
                let start = s.as_ptr() as usize - base;
                start..start + s.len()
            };
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(4));
            while let Some(key) = map.next_key::<&'de str>()? {
                let value = map.next_value::<&'de RawValue>()?;
                entries.push((span(key), span(value.get())));
            }
            Ok(entries)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let entries = de.deserialize_map(Entries(data)).ok()?;
    de.end().ok()?;
    // A repeated key (never written by the codec) is left to the full decode.
    for (i, (k, _)) in entries.iter().enumerate() {
        if entries[..i]
            .iter()
            .any(|(j, _)| data[j.clone()] == data[k.clone()])
        {
            return None;
        }
    }
    Some(entries)
}

/// The session data: parsed, or as loaded and indexed plus the values inserted since.
#[derive(Debug, Default)]
pub(crate) struct Data {
    map: SessionMap,
    /// While `Some`, the data is this with `inserted` on top (and `map` is empty).
    indexed: Option<Indexed>,
    /// Values inserted while indexed, in insertion order, one per key.
    inserted: Vec<(String, Value)>,
}

impl Data {
    pub(crate) fn from_map(map: SessionMap) -> Self {
        Self {
            map,
            indexed: None,
            inserted: Vec::new(),
        }
    }

    pub(crate) fn from_indexed(indexed: Indexed) -> Self {
        Self {
            map: SessionMap::new(),
            indexed: Some(indexed),
            inserted: Vec::new(),
        }
    }

    fn inserted(&self, key: &str) -> Option<&Value> {
        self.inserted.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value under `key` as a `T`, deserialized from the stored text or the map.
    pub(crate) fn get_as<T: DeserializeOwned>(&self, key: &str) -> Option<serde_json::Result<T>> {
        match &self.indexed {
            Some(ix) => match self.inserted(key) {
                Some(value) => Some(T::deserialize(value)),
                None => ix.raw(key).map(serde_json::from_str),
            },
            None => self.map.get(key).map(T::deserialize),
        }
    }

    /// The JSON value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<Cow<'_, Value>> {
        match &self.indexed {
            Some(ix) => match self.inserted(key) {
                Some(value) => Some(Cow::Borrowed(value)),
                None => ix
                    .raw(key)
                    .map(|raw| Cow::Owned(serde_json::from_str(raw).unwrap_or(Value::Null))),
            },
            None => self.map.get(key).map(Cow::Borrowed),
        }
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        match &self.indexed {
            Some(ix) => self.inserted(key).is_some() || ix.raw(key).is_some(),
            None => self.map.contains_key(key),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match &self.indexed {
            Some(ix) => ix.entries.is_empty() && self.inserted.is_empty(),
            None => self.map.is_empty(),
        }
    }

    /// Sets `key` (a stored key keeps its place, a new one goes last), without parsing
    /// the stored values.
    pub(crate) fn insert(&mut self, key: &str, value: Value) {
        if self.indexed.is_none() {
            self.map.insert(key.to_owned(), value);
        } else if let Some(slot) = self.inserted.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.inserted.push((key.to_owned(), value));
        }
    }

    /// The parsed map, built from the stored text (and the inserted values) on first use.
    pub(crate) fn map_mut(&mut self) -> &mut SessionMap {
        if self.indexed.is_some() {
            self.map = self.to_map();
            self.indexed = None;
            self.inserted.clear();
        }
        &mut self.map
    }

    /// A copy of the whole map.
    pub(crate) fn to_map(&self) -> SessionMap {
        match &self.indexed {
            Some(ix) => {
                let mut map = ix.to_map();
                for (k, v) in &self.inserted {
                    map.insert(k.clone(), v.clone());
                }
                map
            }
            None => self.map.clone(),
        }
    }

    /// The parsed map: borrowed, or built when the data is still indexed.
    pub(crate) fn as_map(&self) -> Cow<'_, SessionMap> {
        match &self.indexed {
            Some(_) => Cow::Owned(self.to_map()),
            None => Cow::Borrowed(&self.map),
        }
    }

    /// The encoded data (the codec's prefix, then JSON) when it is still indexed: the stored text of every value
    /// not inserted since, copied as it is (no value parsed or serialized again), with the
    /// inserted values serialized in place. `None` when the data is a parsed map.
    pub(crate) fn spliced_json(&self) -> Option<serde_json::Result<String>> {
        let ix = self.indexed.as_ref()?;
        Some((|| {
            let mut out = String::with_capacity(ix.text.len() + 16 * self.inserted.len());
            out.push_str(&ix.text[..ix.json_start]);
            out.push('{');
            for (i, (k, v)) in ix.entries.iter().enumerate() {
                let key = &ix.text[k.clone()];
                if i > 0 {
                    out.push(',');
                }
                // A stored key has no escapes (it was read unescaped, and JSON text has no
                // raw quote, backslash or control character in a string): it is written
                // back as it is, the quotes around it.
                out.push('"');
                out.push_str(key);
                out.push_str("\":");
                match self.inserted(key) {
                    Some(value) => out.push_str(&serde_json::to_string(value)?),
                    None => out.push_str(&ix.text[v.clone()]),
                }
            }
            for (key, value) in &self.inserted {
                if ix.raw(key).is_none() {
                    if out.len() > ix.json_start + 1 {
                        out.push(',');
                    }
                    // A new key may need escapes: serde_json writes it.
                    out.push_str(&serde_json::to_string(key)?);
                    out.push(':');
                    out.push_str(&serde_json::to_string(value)?);
                }
            }
            out.push('}');
            Ok(out)
        })())
    }

    /// The expiry policy stored under [`EXPIRY_KEY`].
    pub(crate) fn expiry(&self) -> Expiry {
        match &self.indexed {
            None => Expiry::from_map(&self.map),
            Some(_) => match self.get(EXPIRY_KEY) {
                None => Expiry::Default,
                Some(value) => {
                    let mut one = SessionMap::with_capacity(1);
                    one.insert(EXPIRY_KEY.to_owned(), value.into_owned());
                    Expiry::from_map(&one)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn indexed(json: &str) -> Option<Indexed> {
        Indexed::parse(json.to_owned(), 0).ok()
    }

    #[test]
    fn the_prefix_is_kept_and_refused_data_is_given_back() {
        let ix = Indexed::parse(r#"j1:{"a":1}"#.to_owned(), 3).expect("indexes");
        let mut data = Data::from_indexed(ix);
        assert_eq!(data.get_as::<u64>("a").map(Result::ok), Some(Some(1)));
        data.insert("b", json!("x"));
        assert_eq!(
            data.spliced_json().expect("indexed").expect("encodes"),
            r#"j1:{"a":1,"b":"x"}"#
        );
        let empty = Data::from_indexed(Indexed::parse("j1:{}".to_owned(), 3).expect("indexes"));
        let mut empty = empty;
        empty.insert("k", json!(1));
        assert_eq!(
            empty.spliced_json().expect("indexed").expect("encodes"),
            r#"j1:{"k":1}"#
        );
        assert_eq!(
            Indexed::parse("j1:[1]".to_owned(), 3).err().as_deref(),
            Some("j1:[1]")
        );
        assert!(Indexed::parse("j1".to_owned(), 3).is_err());
    }

    #[test]
    fn indexed_reads_match_the_parsed_map() {
        let text = r#" {"a": 2, "b" : {"x": [1, "}"]}, "s": "q\"uo\u00e9"} "#;
        let ix = indexed(text).expect("indexes");
        let data = Data::from_indexed(ix);
        assert_eq!(data.get_as::<u64>("a").map(Result::ok), Some(Some(2)));
        assert_eq!(data.get("b").as_deref(), Some(&json!({"x": [1, "}"]})));
        assert_eq!(
            data.get_as::<String>("s").map(Result::ok),
            Some(Some("q\"uoé".into()))
        );
        assert!(data.contains_key("s") && !data.contains_key("zz"));
        assert!(data.get_as::<u64>("s").is_some_and(|r| r.is_err()));
        let parsed: SessionMap = serde_json::from_str(text).expect("parses");
        assert_eq!(data.to_map(), parsed);
        let mut data = data;
        assert_eq!(*data.map_mut(), parsed);
        assert_eq!(data.get_as::<u64>("a").map(Result::ok), Some(Some(2)));
    }

    #[test]
    fn inserts_on_indexed_data_splice_like_the_map() {
        let text = r#"{"a":1,"p":"long \"text\"","b":[true,null]}"#;
        let mut data = Data::from_indexed(indexed(text).expect("indexes"));
        let mut map: SessionMap = serde_json::from_str(text).expect("parses");
        for (k, v) in [
            ("b", json!({"n": 2})),
            ("new\n", json!("x")),
            ("a", json!(5)),
            ("b", json!(3)),
        ] {
            data.insert(k, v.clone());
            map.insert(k.to_owned(), v);
        }
        assert_eq!(data.get_as::<u64>("a").map(Result::ok), Some(Some(5)));
        assert!(data.contains_key("new\n") && !data.is_empty());
        let spliced = data.spliced_json().expect("indexed").expect("encodes");
        let back: SessionMap = serde_json::from_str(&spliced).expect("valid JSON");
        assert_eq!(back, map);
        assert_eq!(
            back.keys().collect::<Vec<_>>(),
            map.keys().collect::<Vec<_>>()
        );
        assert_eq!(spliced, serde_json::to_string(&map).expect("encodes"));
        assert_eq!(data.to_map(), map);
        assert_eq!(*data.map_mut(), map);
        assert!(data.spliced_json().is_none());
    }

    #[test]
    fn what_cannot_be_indexed_is_refused() {
        for bad in [
            "",
            "[1]",
            "{",
            "{\"a\":}",
            "{} x",
            "{\"e\\u0073c\": 1}",
            "\"s\"",
            "{\"a\":1,\"a\":2}",
        ] {
            assert!(indexed(bad).is_none(), "{bad:?}");
        }
        let empty = Data::from_indexed(indexed("{}").expect("indexes"));
        assert!(empty.is_empty());
        assert_eq!(empty.expiry(), Expiry::Default);
        let ix = indexed(r#"{"_session_expiry": 0}"#).expect("indexes");
        let mut data = Data::from_indexed(ix);
        assert_eq!(data.expiry(), Expiry::BrowserClose);
        data.insert(EXPIRY_KEY, serde_json::json!(60));
        assert_eq!(
            data.expiry(),
            Expiry::Idle(std::time::Duration::from_secs(60))
        );
    }
}
