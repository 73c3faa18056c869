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

/// A JSON object's text with the byte ranges of its top-level keys and values.
#[derive(Debug)]
pub(crate) struct Indexed {
    /// What the codec writes before the JSON (kept to write it back).
    prefix: String,
    text: String,
    entries: Vec<(Range<usize>, Range<usize>)>,
}

impl Indexed {
    /// Indexes `text` if it is a JSON object whose keys have no escapes (what the JSON
    /// codec writes for ordinary keys); `None` otherwise (the caller decodes in full).
    pub(crate) fn parse(prefix: &str, text: &str) -> Option<Self> {
        struct Entries<'a>(&'a str);
        impl<'de> Visitor<'de> for Entries<'de> {
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
        let mut de = serde_json::Deserializer::from_str(text);
        let entries = de.deserialize_map(Entries(text)).ok()?;
        de.end().ok()?;
        // A repeated key (never written by the codec) is left to the full decode.
        for (i, (k, _)) in entries.iter().enumerate() {
            if entries[..i]
                .iter()
                .any(|(j, _)| text[j.clone()] == text[k.clone()])
            {
                return None;
            }
        }
        Some(Self {
            prefix: prefix.to_owned(),
            text: text.to_owned(),
            entries,
        })
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
            let mut out =
                String::with_capacity(ix.prefix.len() + ix.text.len() + 16 * self.inserted.len());
            out.push_str(&ix.prefix);
            out.push('{');
            let mut first = true;
            let mut entry = |out: &mut String, key: &str| {
                if !std::mem::take(&mut first) {
                    out.push(',');
                }
                // Stored keys have no escapes; inserted ones are escaped by serde_json.
                out.push_str(&serde_json::to_string(key)?);
                out.push(':');
                Ok::<_, serde_json::Error>(())
            };
            for (k, v) in &ix.entries {
                let key = &ix.text[k.clone()];
                entry(&mut out, key)?;
                match self.inserted(key) {
                    Some(value) => out.push_str(&serde_json::to_string(value)?),
                    None => out.push_str(&ix.text[v.clone()]),
                }
            }
            for (key, value) in &self.inserted {
                if ix.raw(key).is_none() {
                    entry(&mut out, key)?;
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

    #[test]
    fn indexed_reads_match_the_parsed_map() {
        let text = r#" {"a": 2, "b" : {"x": [1, "}"]}, "s": "q\"uo\u00e9"} "#;
        let ix = Indexed::parse("", text).expect("indexes");
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
        let mut data = Data::from_indexed(Indexed::parse("", text).expect("indexes"));
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
            assert!(Indexed::parse("", bad).is_none(), "{bad:?}");
        }
        let empty = Data::from_indexed(Indexed::parse("", "{}").expect("indexes"));
        assert!(empty.is_empty());
        assert_eq!(empty.expiry(), Expiry::Default);
        let ix = Indexed::parse("", r#"{"_session_expiry": 0}"#).expect("indexes");
        let mut data = Data::from_indexed(ix);
        assert_eq!(data.expiry(), Expiry::BrowserClose);
        data.insert(EXPIRY_KEY, serde_json::json!(60));
        assert_eq!(
            data.expiry(),
            Expiry::Idle(std::time::Duration::from_secs(60))
        );
    }
}
