//! Session keys: the random value a cookie carries.

use std::fmt;
use std::str::FromStr;

/// Number of characters in a session key.
pub const KEY_LEN: usize = 32;

/// The alphabet of a session key (Django's: lower-case ASCII letters and digits).
pub const KEY_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// How many leading characters of a key [`fmt::Debug`] and [`fmt::Display`] show.
const SHOWN_PREFIX: usize = 4;

/// A session key: 32 characters of `[a-z0-9]` drawn from the operating system's CSPRNG
/// (about 165 bits of entropy, the same format as Django's and Plain's keys).
///
/// A key is only ever built by [`SessionKey::generate`] or by parsing a value that has exactly
/// that format, so a hostile cookie never reaches a store. [`Debug`](fmt::Debug) and
/// [`Display`](fmt::Display) print a short prefix only, so a key can be logged without
/// handing out a live session; use [`SessionKey::as_str`] where the whole key is needed
/// (the cookie value, the store's primary key).
///
/// # Examples
///
/// ```
/// use session_kit::SessionKey;
///
/// let key = SessionKey::generate();
/// assert_eq!(key.as_str().len(), 32);
///
/// // A cookie value is parsed, never trusted.
/// let parsed: SessionKey = key.as_str().parse().unwrap();
/// assert_eq!(parsed, key);
/// assert!(SessionKey::parse("../../etc/passwd").is_err());
///
/// // Logs show a prefix only.
/// assert_eq!(format!("{key}").len(), 4 + "…".len());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct SessionKey(String);

/// Why a string is not a [`SessionKey`].
///
/// The rejected value itself is never kept: it may be a live key of someone else, or
/// megabytes of junk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidKey {
    /// The value was not exactly 32 bytes long.
    #[error("session key must be {KEY_LEN} characters, got {0} bytes")]
    Length(usize),
    /// The value had a byte outside `[a-z0-9]`.
    #[error("session key may only contain [a-z0-9]; found a byte outside it at position {0}")]
    Alphabet(usize),
}

impl SessionKey {
    /// Draws a new random key from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Panics only if the operating system has no source of randomness at all, in which case
    /// no secure session can be made; this mirrors the behaviour of `rand::rngs::OsRng`.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionKey;
    /// assert_ne!(SessionKey::generate(), SessionKey::generate());
    /// ```
    pub fn generate() -> Self {
        match Self::try_generate() {
            Ok(key) => key,
            // Without an entropy source no session can be secure; refusing loudly is the
            // only correct behaviour.
            Err(err) => panic!("the operating system's random number generator failed: {err}"),
        }
    }

    /// Draws a new random key, returning an error if the OS random source fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionKey;
    /// let key = SessionKey::try_generate().expect("OS randomness");
    /// assert!(key.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    /// ```
    pub fn try_generate() -> Result<Self, getrandom::Error> {
        let mut out = String::with_capacity(KEY_LEN);
        // Rejection sampling: 252 = 7 * 36 is the largest multiple of 36 below 256, so every
        // accepted byte maps to the alphabet without bias.
        let mut buf = [0u8; 48];
        while out.len() < KEY_LEN {
            getrandom::fill(&mut buf)?;
            for &b in buf.iter().filter(|&&b| b < 252) {
                if out.len() == KEY_LEN {
                    break;
                }
                out.push(KEY_ALPHABET[(b % 36) as usize] as char);
            }
        }
        Ok(Self(out))
    }

    /// Parses a value (for example a cookie) that must be exactly 32 characters of `[a-z0-9]`.
    ///
    /// The check looks at the length first, so a 10 MB value is rejected without being read.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{InvalidKey, SessionKey};
    /// assert!(SessionKey::parse("abcdefghijklmnopqrstuvwxyz012345").is_ok());
    /// assert_eq!(SessionKey::parse(""), Err(InvalidKey::Length(0)));
    /// assert_eq!(
    ///     SessionKey::parse("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
    ///     Err(InvalidKey::Alphabet(0))
    /// );
    /// ```
    pub fn parse(value: &str) -> Result<Self, InvalidKey> {
        if value.len() != KEY_LEN {
            return Err(InvalidKey::Length(value.len()));
        }
        if let Some(pos) = value
            .bytes()
            .position(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit()))
        {
            return Err(InvalidKey::Alphabet(pos));
        }
        Ok(Self(value.to_owned()))
    }

    /// The whole key, for the cookie value and the store's primary key. Never log it.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionKey;
    /// let key = SessionKey::generate();
    /// assert_eq!(key.as_str().len(), 32);
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short prefix of the key, safe to log.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionKey;
    /// let key = SessionKey::generate();
    /// assert!(key.as_str().starts_with(key.log_prefix()));
    /// ```
    pub fn log_prefix(&self) -> &str {
        &self.0[..SHOWN_PREFIX]
    }
}

impl FromStr for SessionKey {
    type Err = InvalidKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SessionKey {
    type Error = InvalidKey;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)?;
        Ok(Self(value))
    }
}

impl From<SessionKey> for String {
    fn from(key: SessionKey) -> Self {
        key.0
    }
}

impl AsRef<str> for SessionKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}…)", self.log_prefix())
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.log_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_format_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let k = SessionKey::generate();
            assert_eq!(k.as_str().len(), KEY_LEN);
            assert!(SessionKey::parse(k.as_str()).is_ok());
            assert!(seen.insert(k));
        }
    }

    #[test]
    fn every_alphabet_character_appears() {
        let mut counts = [0usize; 36];
        for _ in 0..500 {
            for b in SessionKey::generate().as_str().bytes() {
                let idx = KEY_ALPHABET
                    .iter()
                    .position(|&a| a == b)
                    .expect("in alphabet");
                counts[idx] += 1;
            }
        }
        // 16,000 draws over 36 symbols: each expected ~444; a biased or broken mapping
        // would leave some symbol far below.
        assert!(counts.iter().all(|&c| c > 300), "{counts:?}");
    }

    #[test]
    fn hostile_values_are_rejected() {
        let ok = "abcdefghijklmnopqrstuvwxyz012345";
        assert!(SessionKey::parse(ok).is_ok());
        assert_eq!(SessionKey::parse(""), Err(InvalidKey::Length(0)));
        assert_eq!(SessionKey::parse(&ok[..31]), Err(InvalidKey::Length(31)));
        assert_eq!(
            SessionKey::parse(&format!("{ok}a")),
            Err(InvalidKey::Length(33))
        );
        assert_eq!(
            SessionKey::parse(&ok.to_uppercase()),
            Err(InvalidKey::Alphabet(0))
        );
        assert_eq!(
            SessionKey::parse("../abcdefghijklmnopqrstuvwxyz0123"[..32].as_ref()),
            Err(InvalidKey::Alphabet(0))
        );
        let with_nul = format!("{}\0", &ok[..31]);
        assert_eq!(SessionKey::parse(&with_nul), Err(InvalidKey::Alphabet(31)));
        let huge = "a".repeat(1 << 20);
        assert_eq!(SessionKey::parse(&huge), Err(InvalidKey::Length(1 << 20)));
        // Multi-byte characters: 32 bytes but not 32 ASCII letters.
        let multi = "é".repeat(16);
        assert_eq!(SessionKey::parse(&multi), Err(InvalidKey::Alphabet(0)));
    }

    #[test]
    fn debug_and_display_hide_the_key() {
        let k = SessionKey::generate();
        let shown = format!("{k} {k:?}");
        assert!(!shown.contains(k.as_str()));
        assert!(shown.contains(k.log_prefix()));
    }
}
