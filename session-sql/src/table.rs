//! Table names and layouts: what the store's SQL is built from.

use std::fmt;

/// The longest table name accepted. Index names are derived from it
/// (`<table>_expires_at_idx`), and PostgreSQL cuts identifiers at 63 bytes.
pub const MAX_TABLE_NAME_LEN: usize = 48;

/// The table name used when none is configured.
pub const DEFAULT_TABLE_NAME: &str = "sessions";

/// A validated SQL table name: a plain identifier, `[A-Za-z_][A-Za-z0-9_]*`, at most
/// [`MAX_TABLE_NAME_LEN`] characters.
///
/// Names are checked, never escaped: anything else (a schema-qualified name, quotes,
/// spaces, a semicolon) is rejected, so configuration can never splice SQL into a query.
/// The store quotes the name in every statement, so SQL keywords such as `user` or `order`
/// work, and the name is used with exactly the case given (case-sensitive on PostgreSQL).
///
/// # Examples
///
/// ```
/// use session_sql::TableName;
///
/// let name = TableName::new("app_sessions")?;
/// assert_eq!(name.as_str(), "app_sessions");
///
/// assert!(TableName::new("sessions; DROP TABLE users").is_err());
/// assert!(TableName::new("public.sessions").is_err());
/// assert!(TableName::new("").is_err());
/// # Ok::<(), session_sql::InvalidTableName>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TableName(String);

/// Why a string is not a usable [`TableName`].
///
/// # Examples
///
/// ```
/// use session_sql::{InvalidTableName, TableName};
///
/// assert_eq!(TableName::new("9lives"), Err(InvalidTableName::BadStart));
/// assert_eq!(TableName::new("a-b"), Err(InvalidTableName::BadCharacter { position: 1 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidTableName {
    /// The name was empty.
    #[error("table name is empty")]
    Empty,
    /// The name was longer than [`MAX_TABLE_NAME_LEN`] bytes.
    #[error("table name is {len} bytes long; at most {MAX_TABLE_NAME_LEN} are allowed")]
    TooLong {
        /// The rejected name's length in bytes.
        len: usize,
    },
    /// The name did not start with an ASCII letter or `_`.
    #[error("table name must start with an ASCII letter or '_'")]
    BadStart,
    /// The name had a character outside `[A-Za-z0-9_]`.
    #[error("table name may only contain ASCII letters, digits and '_'; found another character at byte {position}")]
    BadCharacter {
        /// Byte offset of the first rejected character.
        position: usize,
    },
}

impl TableName {
    /// Validates `name` as a plain SQL identifier.
    ///
    /// # Errors
    ///
    /// [`InvalidTableName`] when the name is empty, too long, or not `[A-Za-z_][A-Za-z0-9_]*`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(session_sql::TableName::new("Sessions_2").is_ok());
    /// assert!(session_sql::TableName::new("séance").is_err());
    /// ```
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidTableName> {
        let name = name.into();
        let bytes = name.as_bytes();
        let Some(&first) = bytes.first() else {
            return Err(InvalidTableName::Empty);
        };
        if bytes.len() > MAX_TABLE_NAME_LEN {
            return Err(InvalidTableName::TooLong { len: bytes.len() });
        }
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return Err(InvalidTableName::BadStart);
        }
        if let Some(position) = bytes
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(InvalidTableName::BadCharacter { position });
        }
        Ok(Self(name))
    }

    /// The name as given.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = session_sql::TableName::new("sessions").unwrap();
    /// assert_eq!(name.as_str(), "sessions");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stable 64-bit FNV-1a hash of the name, for advisory-lock keys that must agree
    /// between processes and builds.
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) fn lock_id(&self) -> i64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in b"session-sql:migrate:".iter().chain(self.0.as_bytes()) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        i64::from_ne_bytes(hash.to_ne_bytes())
    }
}

impl Default for TableName {
    fn default() -> Self {
        Self(DEFAULT_TABLE_NAME.to_owned())
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TableName({})", self.0)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TableName {
    type Err = InvalidTableName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for TableName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The shape of the session table: which columns exist and how they are typed.
///
/// The layout is chosen once, at construction; the store builds every statement for it
/// then, so no SQL is assembled per call.
///
/// Only the native layout exists here. Tables shared with Django (`django_session`) and
/// Plain lack the `version`, `user_id` and device columns; they are served by
/// [`InteropStore`](crate::InteropStore).
///
/// # Examples
///
/// ```
/// use session_sql::TableLayout;
/// assert_eq!(TableLayout::default(), TableLayout::Native);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TableLayout {
    /// This crate's own table: key, data, `expires_at` (indexed, microsecond precision),
    /// `version`, `user_id` (indexed), and device metadata (`created_at`,
    /// `last_active_at`, `user_agent`, `ip`). Created by
    /// [`SqlStore::migrate`](crate::SqlStore::migrate).
    #[default]
    Native,
}

impl TableLayout {
    /// What a store over this layout keeps.
    pub(crate) fn capabilities(self) -> session_core::Capabilities {
        match self {
            Self::Native => session_core::Capabilities::all(),
        }
    }

    /// Whether the layout has a `user_id` column, so the store offers a
    /// [`UserIndex`](session_core::UserIndex).
    pub(crate) fn has_user_index(self) -> bool {
        match self {
            Self::Native => true,
        }
    }
}

/// The table a store works on: its validated name and layout. The dialect modules build
/// their statement sets from it.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) name: TableName,
    pub(crate) layout: TableLayout,
}

impl Table {
    /// The name quoted with `quote` (`"` for PostgreSQL and SQLite, `` ` `` for MySQL).
    /// Safe because the name is a validated plain identifier.
    pub(crate) fn quoted(&self, quote: char) -> String {
        format!("{quote}{}{quote}", self.name.as_str())
    }

    /// An index name derived from the table name, quoted.
    pub(crate) fn index(&self, suffix: &str, quote: char) -> String {
        format!("{quote}{}_{suffix}{quote}", self.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_identifiers() {
        for ok in [
            "sessions",
            "_s",
            "S1",
            "django_session",
            "user",
            &"a".repeat(48),
        ] {
            assert_eq!(TableName::new(ok).map(|t| t.0), Ok(ok.to_owned()), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(TableName::new(""), Err(InvalidTableName::Empty));
        assert_eq!(TableName::new("1a"), Err(InvalidTableName::BadStart));
        assert_eq!(TableName::new("\"s\""), Err(InvalidTableName::BadStart));
        assert_eq!(
            TableName::new("a".repeat(49)),
            Err(InvalidTableName::TooLong { len: 49 })
        );
        for (bad, pos) in [
            ("s;drop", 1),
            ("s s", 1),
            ("public.sessions", 6),
            ("s`", 1),
            ("s\"", 1),
            ("s\0", 1),
            ("sé", 1),
            ("s-1", 1),
        ] {
            assert_eq!(
                TableName::new(bad),
                Err(InvalidTableName::BadCharacter { position: pos }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lock_ids_are_stable_and_distinct() {
        let a = TableName::new("sessions").unwrap_or_default();
        let b = TableName::new("sessions2").unwrap_or_default();
        assert_eq!(a.lock_id(), a.clone().lock_id());
        assert_ne!(a.lock_id(), b.lock_id());
    }
}
