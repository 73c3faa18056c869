//! Table names and layouts: what the store's SQL is built from.

use std::fmt;

/// The longest table name accepted. Index names are derived from it
/// (`<table>_expires_at_idx`), and PostgreSQL cuts identifiers at 63 bytes.
pub const MAX_TABLE_NAME_LEN: usize = 48;

/// The table name used when none is configured.
pub const DEFAULT_TABLE_NAME: &str = "sessions";

/// A validated SQL table name: a plain identifier, `[A-Za-z_][A-Za-z0-9_]*`, at most
/// [`MAX_TABLE_NAME_LEN`] characters, optionally qualified by a schema of the same form
/// (`app.sessions`; PostgreSQL only: the SQLite and MySQL stores refuse a qualified name
/// with [`StoreError::Config`](session_core::StoreError::Config)).
///
/// Names are checked, never escaped: anything else (quotes, spaces, a semicolon, more than
/// one dot) is rejected, so configuration can never splice SQL into a query. The store
/// quotes each part in every statement (`"app"."sessions"`), so SQL keywords such as
/// `user` or `order` work, and the name is used with exactly the case given
/// (case-sensitive on PostgreSQL). Indexes are named after the table part and live in the
/// table's schema.
///
/// # Examples
///
/// ```
/// use session_kit::TableName;
///
/// let name = TableName::new("app_sessions")?;
/// assert_eq!(name.as_str(), "app_sessions");
///
/// let qualified = TableName::new("app.sessions")?;
/// assert_eq!(qualified.schema(), Some("app"));
/// assert_eq!(qualified.table(), "sessions");
///
/// assert!(TableName::new("sessions; DROP TABLE users").is_err());
/// assert!(TableName::new("a.b.c").is_err());
/// assert!(TableName::new("").is_err());
/// # Ok::<(), session_kit::sql::InvalidTableName>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TableName(String);

/// Why a string is not a usable [`TableName`].
///
/// # Examples
///
/// ```
/// use session_kit::sql::{InvalidTableName, TableName};
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
    /// A schema-qualified name (`schema.table`) for a database other than PostgreSQL.
    #[error("schema-qualified table names are supported on PostgreSQL only")]
    Qualified,
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
    /// assert!(session_kit::TableName::new("Sessions_2").is_ok());
    /// assert!(session_kit::TableName::new("séance").is_err());
    /// ```
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidTableName> {
        let name = name.into();
        match name.split_once('.') {
            None => check_identifier(&name, 0)?,
            Some((schema, table)) => {
                check_identifier(schema, 0)?;
                check_identifier(table, schema.len() + 1)?;
            }
        }
        Ok(Self(name))
    }

    /// The schema of a qualified name (`app` in `app.sessions`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::TableName::new("sessions").unwrap().schema(), None);
    /// ```
    pub fn schema(&self) -> Option<&str> {
        self.0.split_once('.').map(|(schema, _)| schema)
    }

    /// The table part of the name, without its schema.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::TableName::new("app.s").unwrap().table(), "s");
    /// ```
    pub fn table(&self) -> &str {
        self.0.split_once('.').map_or(&self.0, |(_, table)| table)
    }

    /// Each part quoted with `quote` and joined by `.`. Safe because each part is a
    /// validated plain identifier.
    pub(crate) fn quoted(&self, quote: char) -> String {
        match self.schema() {
            None => format!("{quote}{}{quote}", self.0),
            Some(schema) => format!("{quote}{schema}{quote}.{quote}{}{quote}", self.table()),
        }
    }
}

/// Checks one part of a table name; `offset` is its byte offset in the whole name.
fn check_identifier(name: &str, offset: usize) -> Result<(), InvalidTableName> {
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
        return Err(InvalidTableName::BadCharacter {
            position: offset + position,
        });
    }
    Ok(())
}

impl TableName {
    /// The name as given.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = session_kit::TableName::new("sessions").unwrap();
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

/// The shape of the session table: which columns exist and how they are typed. It is
/// one axis of a [`SqlStore`](crate::SqlStore); the dialect is the other, and every
/// layout works on every dialect.
///
/// The layout is chosen once, at construction; the store builds every statement for it
/// then, so no SQL is assembled per call. Choose it with
/// [`SqlStoreBuilder::layout`](crate::SqlStoreBuilder::layout); the table name defaults to
/// the layout's [`default_table`](Self::default_table).
///
/// The interop layouts (`Django`, `PlainSigned`, `PlainJson`) have no version, user or
/// device columns: a record's version is a fingerprint of its data, `update` and
/// `delete_at_version` are a compare-and-swap on it in a short row-locking transaction,
/// and there is no [`UserIndex`](session_core::UserIndex). Store their data with
/// `session_kit::SignedCodec` (feature `django`; Django's salt and `SECRET_KEY`), or
/// `session_kit::django::PlainJsonCodec` for `PlainJson`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use session_kit::{SessionStore, SqlStore, TableLayout};
///
/// assert_eq!(TableLayout::default(), TableLayout::Native);
/// let store = SqlStore::builder().layout(TableLayout::Django).connect("sqlite::memory:").await?;
/// assert_eq!(store.table().as_str(), "django_session");
/// assert!(store.user_index().is_none());
/// # Ok(()) }
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
    /// Django's `django_session`: `session_key`, `session_data`, `expire_date`.
    Django,
    /// Plain ≤ 0.22's `plainsessions_session`: `session_key`, `session_data`, `expires_at`
    /// (signed data, salt `plain.sessions.SessionStore`).
    PlainSigned,
    /// Current Plain's (≥ 0.23) `plainsessions_session`: `id`, unique `session_key`,
    /// unsigned JSON `session_data` (`jsonb` on PostgreSQL, JSON text on SQLite),
    /// `created_at`, nullable `expires_at`. `created_at` is stored, so an absolute timeout
    /// works on this layout.
    PlainJson,
}

impl TableLayout {
    /// The table this layout uses unless told otherwise: `sessions` for the native layout,
    /// the Python framework's default for the others.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::TableLayout;
    /// assert_eq!(TableLayout::Django.default_table(), "django_session");
    /// assert_eq!(TableLayout::Native.default_table(), "sessions");
    /// ```
    pub fn default_table(self) -> &'static str {
        match self {
            Self::Native => DEFAULT_TABLE_NAME,
            Self::Django => "django_session",
            Self::PlainSigned | Self::PlainJson => "plainsessions_session",
        }
    }

    /// The name of the expiry column.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::TableLayout;
    /// assert_eq!(TableLayout::Django.expiry_column(), "expire_date");
    /// assert_eq!(TableLayout::PlainJson.expiry_column(), "expires_at");
    /// ```
    pub fn expiry_column(self) -> &'static str {
        match self {
            Self::Django => "expire_date",
            Self::Native | Self::PlainSigned | Self::PlainJson => "expires_at",
        }
    }

    /// What a store over this layout keeps.
    pub(crate) fn capabilities(self) -> session_core::Capabilities {
        match self {
            Self::Native => session_core::Capabilities::all(),
            Self::Django | Self::PlainSigned | Self::PlainJson => session_core::Capabilities::all()
                .with_device_metadata(false)
                .with_exact_versions(false),
        }
    }

    /// Whether the layout has a `user_id` column, so the store offers a
    /// [`UserIndex`](session_core::UserIndex).
    pub(crate) fn has_user_index(self) -> bool {
        self == Self::Native
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
    pub(crate) fn quoted(&self, quote: char) -> String {
        self.name.quoted(quote)
    }

    /// An index name derived from the table part of the name, quoted (indexes live in
    /// their table's schema).
    pub(crate) fn index(&self, suffix: &str, quote: char) -> String {
        format!("{quote}{}_{suffix}{quote}", self.name.table())
    }

    /// As [`index`](Self::index), qualified by the table's schema (for `DROP INDEX`).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn qualified_index(&self, suffix: &str, quote: char) -> String {
        match self.name.schema() {
            None => self.index(suffix, quote),
            Some(schema) => format!("{quote}{schema}{quote}.{}", self.index(suffix, quote)),
        }
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
            "public.sessions",
            "App.Sessions",
            &"a".repeat(48),
        ] {
            assert_eq!(TableName::new(ok).map(|t| t.0), Ok(ok.to_owned()), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(TableName::new(""), Err(InvalidTableName::Empty));
        assert_eq!(TableName::new("1a"), Err(InvalidTableName::BadStart));
        assert_eq!(TableName::new("public."), Err(InvalidTableName::Empty));
        assert_eq!(TableName::new(".s"), Err(InvalidTableName::Empty));
        assert_eq!(TableName::new("app.1s"), Err(InvalidTableName::BadStart));
        assert_eq!(TableName::new("\"s\""), Err(InvalidTableName::BadStart));
        assert_eq!(
            TableName::new("a".repeat(49)),
            Err(InvalidTableName::TooLong { len: 49 })
        );
        for (bad, pos) in [
            ("s;drop", 1),
            ("s s", 1),
            ("a.b.c", 3),
            ("app.s-1", 5),
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
