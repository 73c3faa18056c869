//! [`PlainJsonCodec`]: the unsigned JSON of current Plain's `session_data` column.

use serde_json::Value;
use session_core::{Codec, CodecError, SessionMap};

/// Untagged, unsigned compact JSON objects: what current Plain (`plain.sessions` ≥ 0.23)
/// stores in its `jsonb` `session_data` column, for `session_kit::sql::InteropStore` with
/// `InteropLayout::PlainJson`.
///
/// Unlike [`JsonCodec`](session_core::JsonCodec) it writes no format tag, because the
/// column must hold the JSON object itself. Strings containing a NUL character are refused
/// at encode time ([`CodecError::Malformed`]): PostgreSQL's `jsonb` cannot store `\u0000`.
/// Key order is not kept by `jsonb`; values are.
///
/// # Examples
///
/// ```
/// use session_kit::django::PlainJsonCodec;
/// use session_kit::{Codec, SessionMap};
///
/// let mut map = SessionMap::new();
/// map.insert("user_id".into(), 42.into());
/// assert_eq!(PlainJsonCodec.encode(&map)?, r#"{"user_id":42}"#);
/// assert_eq!(PlainJsonCodec.decode(r#"{"user_id": 42}"#)?, map);
/// assert!(PlainJsonCodec.decode("[1]").is_err());
///
/// map.insert("bad".into(), "a\0b".into());
/// assert!(PlainJsonCodec.encode(&map).is_err());
/// # Ok::<(), session_kit::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlainJsonCodec;

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

impl Codec for PlainJsonCodec {
    fn encode(&self, map: &SessionMap) -> Result<String, CodecError> {
        if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
            return Err(CodecError::Malformed(
                "a NUL character cannot be stored in a jsonb column",
            ));
        }
        Ok(crate::json::to_compact_json(map)?)
    }

    fn decode(&self, data: &str) -> Result<SessionMap, CodecError> {
        match crate::json::parse(data)? {
            Value::Object(map) => Ok(map),
            _ => Err(CodecError::Malformed("session data is not a JSON object")),
        }
    }
}
