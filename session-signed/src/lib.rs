//! # session-signed
//!
//! **Most users add `session-kit` with feature `django`**
//! (`session-kit = { version = "0.1", features = ["django", "postgres"] }`, with the SQL
//! feature of the shared database) **and reach this crate as `session_kit::django`**:
//! [`SignedCodec`] is `session_kit::SignedCodec` (also `session_kit::django::SignedCodec`),
//! [`Salt`] `session_kit::Salt`, and the rest ([`PlainJsonCodec`], [`SecretError`],
//! [`NonFinite`], the salts, ...) `session_kit::django::X`. The examples on these pages use
//! those paths and are compiled against `session-kit`, so they can be pasted into such an
//! application.
//!
//! A [`Codec`] that stores session data exactly as **Django** (and **Plain ≤ 0.22**) do, so a
//! Rust service and a Python one can share the same session rows while an application moves
//! from one to the other, one endpoint at a time: a user logged in on either side stays
//! logged in on both.
//!
//! [`SignedCodec`] is byte-compatible with
//! `django.core.signing.dumps(session_dict, salt=..., serializer=JSONSerializer, compress=True)`
//! (what `SessionStore.encode` writes into `django_session.session_data`) and accepts what
//! `signing.loads(..., max_age=None)` accepts (what `SessionStore.decode` reads back):
//!
//! ```text
//! session_data = [ "." ] B64URL(payload) ":" B62(unix_seconds) ":" B64URL(HMAC-SHA256)
//! payload      = zlib(json) if that is shorter than json by 2 bytes or more, else json
//! HMAC key     = SHA256(salt + "signer" + secret);  HMAC message = "[.]payload:timestamp"
//! ```
//!
//! - JSON is compact, ASCII-only (`\uXXXX`, surrogate pairs for astral characters), keys in
//!   insertion order, floats written like Python's `repr` (`1e+16`, `1.5e-07`, `3.0`).
//! - Base64 is URL-safe without padding; the timestamp is base62 (`0-9A-Za-z`). The age of
//!   the signature is never checked: the store's expiry column decides, as in Django.
//! - Signatures are compared in constant time, under the current secret and then every
//!   fallback secret (Django's `SECRET_KEY_FALLBACKS`); new data is always signed with the
//!   current secret, so rows signed with an old one are re-signed on their next save.
//!
//! ## Failures
//!
//! [`Codec::decode`] never panics, whatever the input:
//!
//! | input | error | what the `Session` handle does |
//! | --- | --- | --- |
//! | no `:`, signature mismatch under every secret, truncated, wrong salt or secret, tampered payload or timestamp | [`CodecError::BadSignature`] | empty session, key kept, logged as suspicious |
//! | valid signature but no timestamp, bad base62, bad base64, bad zlib, too large | [`CodecError::Malformed`] | empty session, key kept, logged |
//! | valid signature but invalid JSON | [`CodecError::Json`] | same |
//! | valid JSON that is not an object (a list, a string…) | [`CodecError::Malformed`] | same |
//!
//! Neither the payload nor any secret appears in an error, a log line or `Debug` output.
//!
//! ## `NaN` and `Infinity`
//!
//! Python's `json.dumps` writes non-finite floats as the bare tokens `NaN`, `Infinity` and
//! `-Infinity`, which are not JSON. By default ([`NonFinite::Null`]) the decoder replaces
//! those tokens (outside strings) with `null` and keeps the rest of the session; the next
//! save writes `null` there, which Django reads back as `None`. With [`NonFinite::Reject`]
//! such data is undecodable and the session is empty, like any other corrupt payload. The
//! encoder never writes them: a `serde_json::Value` cannot hold a non-finite number.
//!
//! ## Integers beyond 64 bits
//!
//! Python integers have no size limit; a `serde_json::Number` (without serde_json's
//! `arbitrary_precision` feature, which would change number handling for every crate of a
//! build) holds 64 bits. An integer outside that range is decoded as the one-entry object
//! `{"$python_int": "<digits>"}` ([`PYTHON_INT_KEY`]) and encoded back as the bare integer,
//! so it round-trips exactly (tested against the real Django). A handler can write such an
//! object to store a big integer.
//!
//! ## Compression
//!
//! As Django, the payload is compressed when that saves at least two bytes. No Rust zlib
//! reproduces zlib's bytes, so payloads up to 8 KiB are compressed by zlib-rs and miniz at
//! levels 6 and 9 and the smallest stream is kept: over 2,000 session-like documents the
//! stored payloads were 0.4% smaller than Django's in total, and every document Django
//! compresses is compressed (miniz alone left some near the threshold uncompressed, e.g.
//! 82 bytes that zlib makes 78 and miniz 83).
//!
//! ## Known differences from Python
//!
//! - JSON nested deeper than 128 levels is rejected (serde_json's recursion limit); Python
//!   accepts up to its own recursion limit.
//! - Lone UTF-16 surrogates (`"\ud800"`), which Python accepts, are rejected as invalid JSON.
//! - Base64 with characters outside the URL-safe alphabet is rejected; Python silently skips
//!   them. Only a holder of the secret can produce such a signed value.
//! - Compressed output is checked by decoding, not byte for byte: zlib implementations may
//!   pick different (equally valid) encodings. Uncompressed output is byte-identical.
//!
//! ## Example
//!
//! ```
//! use session_kit::{Codec, Salt, SessionMap, SignedCodec};
//!
//! let codec = SignedCodec::new(Salt::Django, "example-secret-key")?
//!     .with_fallback("old-secret-key")?;
//!
//! let mut map = SessionMap::new();
//! map.insert("user_id".into(), 42.into());
//! let data = codec.encode_at(&map, 1_767_225_600)?;
//! assert!(data.starts_with("eyJ1c2VyX2lkIjo0Mn0:1vb66i:"));
//! assert_eq!(codec.decode(&data)?, map);
//!
//! // A tampered value is a bad signature: the handle logs it and uses an empty session.
//! let tampered = data.replacen("eyJ1", "eyJ2", 1);
//! assert!(codec.decode(&tampered).unwrap_err().is_suspicious());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Use it with any store through
//! [`SessionConfig::with_codec`](session_core::SessionConfig::with_codec):
//!
//! ```
//! use session_kit::{Salt, SessionConfig, SignedCodec};
//!
//! let config = SessionConfig::default()
//!     .with_codec(SignedCodec::new(Salt::Django, "django-insecure-...")?);
//! # let _ = config;
//! # Ok::<(), session_kit::django::SecretError>(())
//! ```
//!
//! ## Sharing Django's table
//!
//! `session_kit::sql::InteropStore` (feature `sqlite`, `postgres` or `mysql`) stores
//! sessions in Django's `django_session` (or Plain ≤ 0.22's `plainsessions_session`) table,
//! on SQLite, PostgreSQL and MySQL/MariaDB. With this codec, Django's `SECRET_KEY` and its
//! fallbacks, both applications read and write the same rows:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use session_kit::sql::{InteropLayout, InteropStore};
//! use session_kit::{Session, SessionConfig, SessionStore, SignedCodec};
//!
//! let store = InteropStore::connect("sqlite::memory:", InteropLayout::Django).await?;
//! store.migrate().await?; // a real Django project's migrations create the table instead
//! let store: Arc<dyn SessionStore> = Arc::new(store);
//! let config = Arc::new(
//!     SessionConfig::default()
//!         .with_codec(SignedCodec::django("django-insecure-...")?.with_fallback("old-key")?),
//! );
//!
//! let session = Session::new(store, config, None); // or Some(sessionid cookie)
//! session.insert("cart", vec!["apple"]).await?;
//! session.save().await?; // Django's SessionStore now reads {"cart": ["apple"]}
//! # Ok(()) }
//! ```
//!
//! The workspace's `examples/django_interop.rs` (in the repository, not in this crate: run it
//! with `cargo run -p session-examples --example django_interop`) does the same against a
//! real Django database.
//!
//! ## Tested against the real Django
//!
//! - `tests/fixtures/django_vectors.json` holds values produced by Django's own
//!   `django.core.signing` and db `SessionStore` (the Django version is recorded in the
//!   file). Regenerate it with
//!   `$(scripts/django-venv.sh) session-signed/tests/fixtures/gen_vectors.py >
//!   session-signed/tests/fixtures/django_vectors.json` (fixed clock and secrets, so the
//!   output is reproducible).
//! - `tests/fixtures/plain_vectors.json` holds values from the real Plain 0.22
//!   (`plain.sessions` 0.22.0), regenerated by `tests/fixtures/gen_plain_vectors.py` (see its
//!   docstring for the virtualenv it needs).
//! - With the `django-tests` feature (CI's `--all-features`), `tests/django_live.rs` and
//!   `tests/django_e2e.rs` run Django itself through `tests/interop/django_side.py`, sharing
//!   `django_session` in a SQLite file and in PostgreSQL. They need
//!   `SESSION_TEST_DJANGO_PYTHON=$(scripts/django-venv.sh)` and `SESSION_TEST_POSTGRES_URL`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod json;
mod plain_json;

pub use json::PYTHON_INT_KEY;
pub use plain_json::PlainJsonCodec;

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use flate2::write::ZlibEncoder;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use session_core::{Codec, CodecError, SessionMap};

/// Django's session salt: `"django.contrib.sessions." + "SessionStore"`, shared by the db,
/// cache, cached_db and file backends.
pub const DJANGO_SALT: &str = "django.contrib.sessions.SessionStore";

/// The session salt of Plain up to `plain.sessions` 0.22 (the last release that signed
/// session data).
pub const PLAIN_SALT: &str = "plain.sessions.SessionStore";

/// Default limit on the decoded (decompressed) payload: 16 MiB.
pub const DEFAULT_MAX_DECODED_LEN: usize = 16 << 20;

/// URL-safe base64; padding optional on input and never written; trailing bits tolerated on
/// input, like Python's `base64.urlsafe_b64decode`.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

type HmacSha256 = Hmac<Sha256>;

/// The salt that separates session signatures from other uses of the same secret.
///
/// # Examples
///
/// ```
/// use session_kit::Salt;
/// assert_eq!(Salt::Django.as_str(), "django.contrib.sessions.SessionStore");
/// assert_eq!(Salt::Plain.as_str(), "plain.sessions.SessionStore");
/// // A Django project whose session store class is named `MyStore`:
/// assert_eq!(
///     Salt::Custom("django.contrib.sessions.MyStore".into()).as_str(),
///     "django.contrib.sessions.MyStore"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Salt {
    /// [`DJANGO_SALT`]: every built-in Django backend (db, cache, cached_db, file).
    Django,
    /// [`PLAIN_SALT`]: Plain ≤ 0.22.
    Plain,
    /// Any other salt, for example `"django.contrib.sessions." + YourStoreClassName` for a
    /// Django session store subclass with another class name.
    Custom(String),
}

impl Salt {
    /// The salt string.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::Salt::Plain.as_str(), session_kit::django::PLAIN_SALT);
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Self::Django => DJANGO_SALT,
            Self::Plain => PLAIN_SALT,
            Self::Custom(s) => s,
        }
    }
}

/// How the decoder treats the bare `NaN`, `Infinity` and `-Infinity` tokens that Python's
/// `json.dumps` writes for non-finite floats.
///
/// # Examples
///
/// ```
/// use session_kit::django::{NonFinite, Salt, SignedCodec};
/// let strict = SignedCodec::new(Salt::Django, "secret")?.with_non_finite(NonFinite::Reject);
/// # let _ = strict;
/// # Ok::<(), session_kit::django::SecretError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NonFinite {
    /// Replace them with `null` and keep the rest of the session (default).
    #[default]
    Null,
    /// Treat the payload as undecodable ([`CodecError::Json`]): the session is empty.
    Reject,
}

/// A secret that cannot sign anything.
///
/// # Examples
///
/// ```
/// use session_kit::django::{Salt, SecretError, SignedCodec};
/// assert!(matches!(SignedCodec::new(Salt::Django, ""), Err(SecretError::Empty)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret was empty (Django refuses an empty `SECRET_KEY` as well).
    #[error("the signing secret must not be empty")]
    Empty,
}

/// Django's signed session-data codec (see the [crate documentation](crate)).
///
/// Holds only the HMAC keys derived from the salt and the secrets
/// (`SHA256(salt + "signer" + secret)`), never the secrets themselves; `Debug` shows the salt
/// and the number of keys.
///
/// # Examples
///
/// ```
/// use session_kit::{Codec, Salt, SessionMap, SignedCodec};
///
/// let old = SignedCodec::new(Salt::Django, "old-secret")?;
/// let rotated = SignedCodec::new(Salt::Django, "new-secret")?.with_fallback("old-secret")?;
///
/// let mut map = SessionMap::new();
/// map.insert("cart".into(), session_kit::serde_json::json!(["apple", "pear"]));
/// let signed_with_old = old.encode(&map)?;
/// assert_eq!(rotated.decode(&signed_with_old)?, map);
/// assert!(format!("{rotated:?}").contains("keys: 2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SignedCodec {
    salt: Salt,
    /// Derived HMAC keys: the current secret's first, then the fallbacks in order.
    keys: Vec<[u8; 32]>,
    non_finite: NonFinite,
    max_decoded_len: usize,
    compress: bool,
}

impl fmt::Debug for SignedCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedCodec")
            .field("salt", &self.salt.as_str())
            .field("keys", &self.keys.len())
            .field("non_finite", &self.non_finite)
            .field("max_decoded_len", &self.max_decoded_len)
            .field("compress", &self.compress)
            .finish()
    }
}

impl SignedCodec {
    /// A codec signing with `secret` (Django's `SECRET_KEY`, as UTF-8 or raw bytes) under
    /// `salt`.
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] for an empty secret.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{Salt, SignedCodec};
    /// let django = SignedCodec::new(Salt::Django, "django-insecure-abc")?;
    /// let plain = SignedCodec::new(Salt::Plain, b"raw bytes work too")?;
    /// # let _ = (django, plain);
    /// # Ok::<(), session_kit::django::SecretError>(())
    /// ```
    pub fn new(salt: Salt, secret: impl AsRef<[u8]>) -> Result<Self, SecretError> {
        let key = derive_key(&salt, secret.as_ref())?;
        Ok(Self {
            salt,
            keys: vec![key],
            non_finite: NonFinite::default(),
            max_decoded_len: DEFAULT_MAX_DECODED_LEN,
            compress: true,
        })
    }

    /// Shorthand for [`SignedCodec::new`] with [`Salt::Django`].
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] for an empty secret.
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = session_kit::SignedCodec::django("django-insecure-abc")?;
    /// # let _ = codec;
    /// # Ok::<(), session_kit::django::SecretError>(())
    /// ```
    pub fn django(secret: impl AsRef<[u8]>) -> Result<Self, SecretError> {
        Self::new(Salt::Django, secret)
    }

    /// Shorthand for [`SignedCodec::new`] with [`Salt::Plain`].
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] for an empty secret.
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = session_kit::SignedCodec::plain("plain-secret")?;
    /// # let _ = codec;
    /// # Ok::<(), session_kit::django::SecretError>(())
    /// ```
    pub fn plain(secret: impl AsRef<[u8]>) -> Result<Self, SecretError> {
        Self::new(Salt::Plain, secret)
    }

    /// Adds a fallback secret (Django's `SECRET_KEY_FALLBACKS`, in the same order): accepted
    /// when verifying, never used to sign.
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] for an empty secret.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SignedCodec;
    /// let codec = SignedCodec::django("current")?.with_fallback("previous")?.with_fallback("older")?;
    /// # let _ = codec;
    /// # Ok::<(), session_kit::django::SecretError>(())
    /// ```
    pub fn with_fallback(mut self, secret: impl AsRef<[u8]>) -> Result<Self, SecretError> {
        self.keys.push(derive_key(&self.salt, secret.as_ref())?);
        Ok(self)
    }

    /// Adds several fallback secrets, in order.
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] if any of them is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SignedCodec;
    /// let codec = SignedCodec::django("current")?.with_fallbacks(["previous", "older"])?;
    /// # let _ = codec;
    /// # Ok::<(), session_kit::django::SecretError>(())
    /// ```
    pub fn with_fallbacks<S: AsRef<[u8]>>(
        self,
        secrets: impl IntoIterator<Item = S>,
    ) -> Result<Self, SecretError> {
        secrets.into_iter().try_fold(self, Self::with_fallback)
    }

    /// How `NaN` / `Infinity` in foreign data are treated (default [`NonFinite::Null`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::django::{NonFinite, SignedCodec};
    /// use session_kit::Codec;
    /// let codec = SignedCodec::django("s")?;
    /// let strict = codec.clone().with_non_finite(NonFinite::Reject);
    /// let data = codec.sign_json(br#"{"score":NaN}"#, 0);
    /// assert_eq!(codec.decode(&data)?["score"], session_kit::serde_json::Value::Null);
    /// assert!(strict.decode(&data).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_non_finite(mut self, non_finite: NonFinite) -> Self {
        self.non_finite = non_finite;
        self
    }

    /// The largest payload, after base64 decoding and decompression, that `decode` accepts
    /// (default [`DEFAULT_MAX_DECODED_LEN`]); larger ones are [`CodecError::Malformed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = session_kit::SignedCodec::django("s")?.with_max_decoded_len(1 << 20);
    /// # let _ = codec;
    /// # Ok::<(), session_kit::django::SecretError>(())
    /// ```
    pub fn with_max_decoded_len(mut self, max: usize) -> Self {
        self.max_decoded_len = max;
        self
    }

    /// Whether `encode` may compress (default `true`, as Django's session store always
    /// asks for). Without compression the output is what `signing.dumps(..., compress=False)`
    /// writes, which Django reads as well; decoding accepts both forms either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{Codec, SessionMap};
    /// let codec = session_kit::SignedCodec::django("s")?.with_compression(false);
    /// let mut map = SessionMap::new();
    /// map.insert("blob".into(), "x".repeat(1000).into());
    /// let data = codec.encode(&map)?;
    /// assert!(!data.starts_with('.') && data.len() > 1000);
    /// assert_eq!(codec.decode(&data)?, map);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_compression(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// The salt in use.
    ///
    /// # Examples
    ///
    /// ```
    /// let codec = session_kit::SignedCodec::plain("s")?;
    /// assert_eq!(codec.salt(), &session_kit::Salt::Plain);
    /// # Ok::<(), session_kit::django::SecretError>(())
    /// ```
    pub fn salt(&self) -> &Salt {
        &self.salt
    }

    /// Encodes with an explicit signing time (Unix seconds), for reproducible output;
    /// [`Codec::encode`] uses the current time.
    ///
    /// # Errors
    ///
    /// [`CodecError::Json`] if serialization fails (it does not for a `SessionMap`).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionMap;
    /// let codec = session_kit::SignedCodec::django("s")?;
    /// let data = codec.encode_at(&SessionMap::new(), 0)?;
    /// assert!(data.starts_with("e30:0:"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode_at(&self, map: &SessionMap, unix_seconds: i64) -> Result<String, CodecError> {
        let json = json::to_python_json(map)?;
        Ok(self.sign_json(&json, unix_seconds))
    }

    /// Signs raw JSON bytes as Django's `signing.dumps(..., compress=True)` does with the
    /// serialized value, at `unix_seconds`. Meant for tools and tests that need a value the
    /// encoder would never write (a list, Python's `NaN`…); sessions use
    /// [`encode`](Codec::encode).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::Codec;
    /// let codec = session_kit::SignedCodec::django("s")?;
    /// let data = codec.sign_json(b"[1,2]", 0);
    /// assert!(!codec.decode(&data).unwrap_err().is_suspicious()); // signed, but not an object
    /// # Ok::<(), session_kit::django::SecretError>(())
    /// ```
    pub fn sign_json(&self, json: &[u8], unix_seconds: i64) -> String {
        let compressed = if self.compress {
            zlib_compress(json).filter(|z| z.len() + 1 < json.len())
        } else {
            None
        };
        let mut value = String::with_capacity(json.len() * 4 / 3 + 64);
        match &compressed {
            Some(z) => {
                value.push('.');
                B64.encode_string(z, &mut value);
            }
            None => B64.encode_string(json, &mut value),
        }
        value.push(':');
        value.push_str(&b62_encode(unix_seconds));
        let signature = self.signature(&self.keys[0], value.as_bytes());
        value.push(':');
        value.push_str(&signature);
        value
    }

    /// The signing time (Unix seconds) of a value whose signature verifies. Django ignores it
    /// for sessions; it is offered for tools.
    ///
    /// # Errors
    ///
    /// [`CodecError::BadSignature`] or [`CodecError::Malformed`], as for `decode`.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionMap;
    /// let codec = session_kit::SignedCodec::django("s")?;
    /// let data = codec.encode_at(&SessionMap::new(), 1_767_225_600)?;
    /// assert_eq!(codec.signed_at(&data)?, 1_767_225_600);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn signed_at(&self, data: &str) -> Result<i64, CodecError> {
        let value = self.verify(data)?;
        let (_, timestamp) = value
            .rsplit_once(':')
            .ok_or(CodecError::Malformed("signed value has no timestamp"))?;
        b62_decode(timestamp).ok_or(CodecError::Malformed("invalid base62 timestamp"))
    }

    fn signature(&self, key: &[u8; 32], value: &[u8]) -> String {
        // HMAC accepts keys of any length, so this cannot fail; stay panic-free anyway.
        match HmacSha256::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(value);
                B64.encode(mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }

    /// `Signer.unsign`: the signed value (`[.]payload:timestamp`) if the signature matches
    /// under any key.
    fn verify<'a>(&self, data: &'a str) -> Result<&'a str, CodecError> {
        let (value, signature) = data.rsplit_once(':').ok_or(CodecError::BadSignature)?;
        let mut ok = subtle::Choice::from(0u8);
        for key in &self.keys {
            let expected = self.signature(key, value.as_bytes());
            // Lengths are public (always 43 for a genuine signature); the content is compared
            // in constant time, and every key is tried so timing does not tell which matched.
            if expected.len() == signature.len() {
                ok |= expected.as_bytes().ct_eq(signature.as_bytes());
            }
        }
        if bool::from(ok) {
            Ok(value)
        } else {
            Err(CodecError::BadSignature)
        }
    }

    fn decode_value(&self, data: &str) -> Result<Value, CodecError> {
        let value = self.verify(data)?;
        // TimestampSigner.unsign: the timestamp must be valid base62 even without max_age.
        let (payload, timestamp) = value
            .rsplit_once(':')
            .ok_or(CodecError::Malformed("signed value has no timestamp"))?;
        if b62_decode(timestamp).is_none() {
            return Err(CodecError::Malformed("invalid base62 timestamp"));
        }
        let (compressed, b64) = match payload.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, payload),
        };
        if b64.len() / 4 * 3 > self.max_decoded_len {
            return Err(CodecError::Malformed("payload too large"));
        }
        let raw = B64
            .decode(b64)
            .map_err(|_| CodecError::Malformed("invalid base64 payload"))?;
        let bytes = if compressed {
            zlib_decompress(&raw, self.max_decoded_len)?
        } else {
            raw
        };
        let text = json::latin1(&bytes);
        let replaced = match self.non_finite {
            NonFinite::Null => json::replace_non_finite(&text),
            NonFinite::Reject => None,
        };
        if replaced.is_some() {
            tracing::debug!("NaN/Infinity in signed session data replaced by null");
        }
        Ok(json::parse(replaced.as_deref().unwrap_or(&text))?)
    }
}

impl Codec for SignedCodec {
    fn encode(&self, map: &SessionMap) -> Result<String, CodecError> {
        self.encode_at(map, unix_now())
    }

    fn decode(&self, data: &str) -> Result<SessionMap, CodecError> {
        match self.decode_value(data)? {
            Value::Object(map) => Ok(map),
            _ => Err(CodecError::Malformed("signed payload is not a JSON object")),
        }
    }
}

/// `SHA256(salt + "signer" + secret)`: Django's `salted_hmac` key for `Signer.signature`.
fn derive_key(salt: &Salt, secret: &[u8]) -> Result<[u8; 32], SecretError> {
    if secret.is_empty() {
        return Err(SecretError::Empty);
    }
    let mut hasher = Sha256::new();
    hasher.update(salt.as_str().as_bytes());
    hasher.update(b"signer");
    hasher.update(secret);
    Ok(hasher.finalize().into())
}

/// `int(time.time())`.
fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Django's `b62_encode`.
fn b62_encode(n: i64) -> String {
    if n == 0 {
        return "0".to_owned();
    }
    let mut rest = n.unsigned_abs();
    let mut digits = Vec::with_capacity(12);
    while rest > 0 {
        digits.push(BASE62[(rest % 62) as usize]);
        rest /= 62;
    }
    if n < 0 {
        digits.push(b'-');
    }
    digits.iter().rev().map(|&b| char::from(b)).collect()
}

/// Django's `b62_decode`, or `None` where Python raises (empty string, a character outside
/// the alphabet). Out-of-range values saturate (Python integers are unbounded).
fn b62_decode(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None if s.is_empty() => return None,
        None => (false, s),
    };
    let mut value: i64 = 0;
    for b in digits.bytes() {
        let d = BASE62.iter().position(|&c| c == b)?;
        value = value.saturating_mul(62).saturating_add(d as i64);
    }
    Some(if negative { -value } else { value })
}

/// Payloads up to this size are compressed by several encoders and the smallest output
/// kept (see [`zlib_compress`]).
const TRY_ENCODERS_UP_TO: usize = 8 * 1024;

/// `zlib.compress(data)` (level 6, zlib wrapper), at most as large as Python's zlib makes
/// it. No Rust encoder reproduces zlib's output exactly, and near Django's threshold (store
/// compressed only if it saves two bytes) a few bytes decide: of 3,000 session-like
/// documents, zlib-rs alone came out larger than Python's zlib on 1,168 (miniz on 749),
/// changing the compress decision on 45 (miniz 91); the smallest of zlib-rs and miniz at
/// levels 6 and 9 was larger on 1 and took Django's decision on all but 3 (2 of them
/// compressed where Django would not, which Django reads the same). So small payloads
/// (where these microseconds are cheap and the decision matters) try all four; larger
/// ones use zlib-rs at level 6. Every output is a valid zlib stream.
fn zlib_compress(data: &[u8]) -> Option<Vec<u8>> {
    let deflate = |level: u32| -> Option<Vec<u8>> {
        let mut encoder = ZlibEncoder::new(
            Vec::with_capacity(data.len() / 2 + 16),
            Compression::new(level),
        );
        encoder.write_all(data).ok()?;
        encoder.finish().ok()
    };
    let mut best = deflate(6)?;
    if data.len() <= TRY_ENCODERS_UP_TO {
        let others = [
            deflate(9),
            Some(miniz_oxide::deflate::compress_to_vec_zlib(data, 6)),
            Some(miniz_oxide::deflate::compress_to_vec_zlib(data, 9)),
        ];
        for other in others.into_iter().flatten() {
            if other.len() < best.len() {
                best = other;
            }
        }
    }
    // The header's level bits are informational (no decoder reads them): write the
    // header `zlib.compress` writes at its default level, whichever level won.
    if let Some(header) = best.get_mut(..2) {
        header.copy_from_slice(&[0x78, 0x9c]);
    }
    Some(best)
}

/// `zlib.decompress(data)`, bounded: the stream must be complete and inflate to at most
/// `max` bytes.
fn zlib_decompress(data: &[u8], max: usize) -> Result<Vec<u8>, CodecError> {
    let mut inflater = Decompress::new(true);
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(max).max(64));
    loop {
        let consumed = inflater.total_in() as usize;
        let input = data.get(consumed..).unwrap_or_default();
        if out.len() == out.capacity() {
            if out.len() >= max {
                return Err(CodecError::Malformed("payload too large"));
            }
            let extra = out.len().max(64).min(max - out.len());
            out.reserve(extra);
        }
        let before = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|_| CodecError::Malformed("invalid zlib payload"))?;
        match status {
            Status::StreamEnd if out.len() > max => {
                return Err(CodecError::Malformed("payload too large"))
            }
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError => {
                let progressed = (inflater.total_in(), inflater.total_out()) != before;
                if !progressed && out.len() < out.capacity() {
                    // No progress with room left: the input ended before the stream did.
                    return Err(CodecError::Malformed("truncated zlib payload"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_matches_django() {
        assert_eq!(b62_encode(0), "0");
        assert_eq!(b62_encode(1_767_225_600), "1vb66i");
        assert_eq!(b62_encode(-62), "-10");
        assert_eq!(b62_decode("1vb66i"), Some(1_767_225_600));
        assert_eq!(b62_decode("-10"), Some(-62));
        assert_eq!(b62_decode("-"), Some(0));
        assert_eq!(b62_decode(""), None);
        assert_eq!(b62_decode("1v!"), None);
        assert_eq!(b62_decode(&"z".repeat(40)), Some(i64::MAX));
        assert_eq!(b62_encode(i64::MIN).len(), 12);
    }

    #[test]
    fn zlib_round_trip_limits_and_truncation() {
        let data = b"abc".repeat(1000);
        let z = zlib_compress(&data).expect("compress");
        assert_eq!(&z[..2], &[0x78, 0x9c]);
        assert_eq!(zlib_decompress(&z, 1 << 20).expect("inflate"), data);
        assert!(zlib_decompress(&z, 100).is_err());
        assert!(zlib_decompress(&z[..z.len() - 5], 1 << 20).is_err());
        assert!(zlib_decompress(b"not zlib", 1 << 20).is_err());
        assert!(zlib_decompress(b"", 1 << 20).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let codec = SignedCodec::django("top-secret-value").expect("codec");
        let shown = format!("{codec:?}");
        assert!(!shown.contains("top-secret"));
        assert!(shown.contains(DJANGO_SALT));
    }
}
