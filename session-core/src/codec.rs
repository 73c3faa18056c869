//! Codecs: how the session map becomes a record's `data` string and back.

use serde_json::{Map, Value};

/// The session map: JSON values by string key, in insertion order.
pub type SessionMap = Map<String, Value>;

/// Why a codec could not encode or decode a session.
///
/// The payload itself is never kept in the error, so it can be logged safely.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The data does not start with a format tag this codec knows.
    #[error("unknown session data format")]
    UnknownFormat,
    /// The data carries a signature that matches none of the configured secrets
    /// (tampered, truncated, or signed with another secret or salt). Suspicious.
    #[error("session data signature does not verify")]
    BadSignature,
    /// The data is framed correctly but its content is not a session map.
    #[error("malformed session data: {0}")]
    Malformed(&'static str),
    /// JSON (de)serialization failed.
    #[error("session data is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CodecError {
    /// Whether the failure suggests tampering (logged as a security warning) rather than
    /// a format mismatch.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::CodecError;
    /// assert!(CodecError::BadSignature.is_suspicious());
    /// assert!(!CodecError::UnknownFormat.is_suspicious());
    /// ```
    pub fn is_suspicious(&self) -> bool {
        matches!(self, Self::BadSignature)
    }
}

/// Turns the session map into a record's `data` and back.
///
/// The handle turns a decode failure into an empty session (the key is kept, as in Django)
/// and logs a warning without the payload; a codec must never panic on foreign input.
///
/// # Examples
///
/// ```
/// use session_kit::{Codec, JsonCodec, SessionMap};
///
/// let mut map = SessionMap::new();
/// map.insert("user_id".into(), 42.into());
/// let data = JsonCodec.encode(&map).unwrap();
/// assert_eq!(JsonCodec.decode(&data).unwrap(), map);
/// assert!(JsonCodec.decode("garbage").is_err());
/// ```
pub trait Codec: Send + Sync + 'static {
    /// Encodes the session map.
    fn encode(&self, map: &SessionMap) -> Result<String, CodecError>;
    /// Decodes a record's data. Must reject, never panic on, foreign or corrupt input.
    fn decode(&self, data: &str) -> Result<SessionMap, CodecError>;

    /// The JSON object text inside `data`, for a codec that stores the map as plain JSON
    /// behind a prefix at most (`data` ends with the returned text, and `encode` writes that
    /// same prefix then the map as JSON), or `None` (the default) for any other format. When it
    /// answers, a session reads single values straight from that text instead of
    /// [`decode`](Self::decode)-ing the whole map on every load; the text must then be
    /// what `decode` would parse.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{Codec, JsonCodec};
    ///
    /// assert_eq!(JsonCodec.json_object("j1:{\"a\":1}"), Some("{\"a\":1}"));
    /// assert_eq!(JsonCodec.json_object("x:{}"), None);
    /// ```
    fn json_object<'a>(&self, data: &'a str) -> Option<&'a str> {
        let _ = data;
        None
    }
}

/// The default codec: compact JSON behind a format tag (`j1:`), so the format can evolve
/// without misreading old rows.
///
/// Keys keep insertion order. Output for `{"a":1}` is `j1:{"a":1}`.
///
/// # Examples
///
/// ```
/// use session_kit::{Codec, JsonCodec, SessionMap};
/// let mut map = SessionMap::new();
/// map.insert("a".into(), 1.into());
/// assert_eq!(JsonCodec.encode(&map).unwrap(), r#"j1:{"a":1}"#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonCodec;

impl JsonCodec {
    /// The tag of the current format.
    pub const TAG: &'static str = "j1:";
}

impl Codec for JsonCodec {
    fn encode(&self, map: &SessionMap) -> Result<String, CodecError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(Self::TAG.as_bytes());
        serde_json::to_writer(&mut out, map)?;
        // serde_json writes valid UTF-8; a failure here would be a serde_json bug, which we
        // still report instead of panicking.
        String::from_utf8(out).map_err(|_| CodecError::Malformed("encoder produced invalid UTF-8"))
    }

    fn json_object<'a>(&self, data: &'a str) -> Option<&'a str> {
        data.strip_prefix(Self::TAG)
    }

    fn decode(&self, data: &str) -> Result<SessionMap, CodecError> {
        let json = data
            .strip_prefix(Self::TAG)
            .ok_or(CodecError::UnknownFormat)?;
        match serde_json::from_str::<Value>(json)? {
            Value::Object(map) => Ok(map),
            _ => Err(CodecError::Malformed("not a JSON object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_unicode() {
        let mut map = SessionMap::new();
        map.insert("z".into(), Value::from("ünïcødé 🎉"));
        map.insert(
            "a".into(),
            serde_json::json!({"nested": [1, 2, {"x": null}]}),
        );
        let data = JsonCodec.encode(&map).expect("encode");
        assert!(data.starts_with("j1:{\"z\""));
        let back = JsonCodec.decode(&data).expect("decode");
        assert_eq!(back, map);
        assert_eq!(back.keys().collect::<Vec<_>>(), vec!["z", "a"]);
    }

    #[test]
    fn foreign_and_corrupt_input_is_an_error() {
        for bad in [
            "", "j1:", "j1:[1,2]", "j1:{", "j2:{}", "{}", "\0\0\0", "j1:\"x\"",
        ] {
            assert!(JsonCodec.decode(bad).is_err(), "{bad:?} should not decode");
        }
        let huge = format!("j1:{}", "[".repeat(100_000));
        assert!(JsonCodec.decode(&huge).is_err());
    }
}
