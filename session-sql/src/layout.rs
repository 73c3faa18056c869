//! The tables shared with Django and Plain ([`TableLayout::Django`],
//! [`TableLayout::PlainSigned`], [`TableLayout::PlainJson`]): their statements, built once
//! per dialect from one text, and their operations, written once over [`Engine`].
//!
//! Django's `django_session` (`session_key varchar(40)` primary key, `session_data text`,
//! `expire_date`), Plain ≤ 0.22's signed `plainsessions_session` (the same with
//! `expires_at`) and current Plain's `plainsessions_session` (bigint `id`, unique
//! `session_key`, unsigned `jsonb` `session_data`, `created_at`, nullable `expires_at`)
//! have no version, user or device columns. So on them:
//!
//! - a record's version is a 64-bit fingerprint of `session_data`, and `update` is a
//!   compare-and-swap inside a transaction that locks the row (`SELECT … FOR UPDATE`;
//!   SQLite: `BEGIN IMMEDIATE` on the store's writer): the write succeeds only if the row
//!   is still live and still holds the data this request loaded. A concurrent change
//!   (from Rust or from Django) is a `Conflict`, a row deleted meanwhile `NotFound` (never
//!   re-created). `delete_at_version` is the same compare, then a `DELETE`;
//! - there is no user index and no device metadata; `created_at` is stored only by
//!   `PlainJson`. A row whose `expires_at` is NULL (`PlainJson`) is never live, and
//!   `delete_expired` leaves it;
//! - times are written as Django writes them: `timestamp with time zone` on PostgreSQL,
//!   `datetime(6)` in UTC on MySQL, and on SQLite the text `YYYY-MM-DD HH:MM:SS[.ffffff]`
//!   in UTC.
//!
//! What differs between dialects is stated once, in [`Shape`]: quoting, whether `INSERT
//! .. ON CONFLICT` and `RETURNING` exist (not on MySQL: an insert that meets an expired row
//! deletes it and inserts again; an update reads the stored data back), the row lock and
//! the batch-delete statement.

use session_core::{Record, SessionKey, StoreError, StoreResult};
use sqlx::SqlStr;

use crate::common::{now, sql};
use crate::engine::{Arg, Clock, Engine, Shape, Stmt, Tx, Want};
use crate::ops::{self, key, Common, Texts};
use crate::table::{TableLayout, TableName};
use crate::Dialect;

/// The 64-bit FNV-1a fingerprint of the stored data: the version of a row in a table that
/// has no version column.
pub(crate) fn fingerprint(data: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Every statement of one interop table on one dialect.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) common: Common,
    /// `PlainJson`: `created_at` is stored (bound as `$4` of `create`, loaded third).
    created_at: bool,
    load: Stmt,
    lock: Stmt,
    /// With `RETURNING` the stored data (PostgreSQL, SQLite); otherwise (MySQL) followed
    /// by `reselect`.
    update: Stmt,
    reselect: Stmt,
    pub(crate) migrate: Vec<SqlStr>,
}

impl Statements {
    /// The statement set of `layout` (not `Native`) for `table` on `dialect`.
    pub(crate) fn new(
        dialect: Dialect,
        layout: TableLayout,
        table: &TableName,
        batch: u32,
    ) -> Self {
        let d = Shape::of(dialect);
        let t = table.quoted(d.quote_char());
        let e = d.quote(layout.expiry_column());
        let (k, v, c) = (
            d.quote("session_key"),
            d.quote("session_data"),
            d.quote("created_at"),
        );
        let json = layout == TableLayout::PlainJson;
        // jsonb needs casts on PostgreSQL; text (and MySQL's json) columns do not.
        let (data_in, data_out) = if json && dialect == Dialect::Postgres {
            ("$2::jsonb", format!("{v}::text"))
        } else {
            ("$2", v.clone())
        };
        let (created_col, created_val, created_set, created_out) = if json {
            (
                format!(", {c}"),
                ", $4",
                format!(", {c} = excluded.{c}"),
                format!(", {c}"),
            )
        } else {
            Default::default()
        };
        let create_now = if json { "$5" } else { "$4" };
        let s = |text: String| Stmt::new(dialect, Clock::Interop, text);
        let returning = |text: String, ret: &str| {
            s(if d.upsert {
                format!("{text} RETURNING {ret}")
            } else {
                text
            })
        };
        let live = format!("{k} = $1 AND {e} > $2");
        let common = Common::new(
            &d,
            Clock::Interop,
            &Texts {
                table: &t,
                key: &k,
                expiry: &e,
                columns: &format!("{k}, {v}, {e}{created_col}"),
                values: &format!("$1, {data_in}, $3{created_val}"),
                replace: &format!("{v} = excluded.{v}, {e} = excluded.{e}{created_set}"),
                create_now,
                touch: &format!("{e} = $1"),
                find_expired: None,
            },
            batch,
        );
        Self {
            common,
            created_at: json,
            load: s(format!(
                "SELECT {data_out}, {e}{created_out} FROM {t} WHERE {live}"
            )),
            lock: s(format!("SELECT {data_out} FROM {t} WHERE {live}{}", d.lock)),
            update: returning(
                format!(
                    "UPDATE {t} SET {v} = {}, {e} = $2 WHERE {k} = $3",
                    data_in.replace("$2", "$1")
                ),
                &data_out,
            ),
            reselect: s(format!("SELECT {data_out} FROM {t} WHERE {k} = $1")),
            migrate: migration(&d, layout, table, &t, &e),
        }
    }
}

/// The name of the expiry index the Python framework's migration creates.
fn index_name(layout: TableLayout, table: &TableName) -> String {
    match (layout, table.table()) {
        (TableLayout::Django, "django_session") => "django_session_expire_date_a5c62663".to_owned(),
        (TableLayout::PlainJson, "plainsessions_session") => {
            "plainsessions_session_expires_at_idx".to_owned()
        }
        _ => format!("{}_{}_idx", table.table(), layout.expiry_column()),
    }
}

/// The DDL of the Python framework's own migration (see the reference tables).
fn migration(d: &Shape, layout: TableLayout, table: &TableName, t: &str, e: &str) -> Vec<SqlStr> {
    let idx = d.quote(&index_name(layout, table));
    let json = layout == TableLayout::PlainJson;
    let create_index = format!("CREATE INDEX IF NOT EXISTS {idx} ON {t} ({e})");
    let statements = match (d.dialect, json) {
        (Dialect::MySql, true) => vec![format!(
            "CREATE TABLE IF NOT EXISTS {t} (\
             `id` bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, \
             `session_key` varchar(40) NOT NULL UNIQUE, \
             `session_data` json NOT NULL, \
             `created_at` datetime(6) NOT NULL, \
             {e} datetime(6) NULL, \
             INDEX {idx} ({e}))"
        )],
        // MySQL has no CREATE INDEX IF NOT EXISTS: the index is part of the table.
        (Dialect::MySql, false) => vec![format!(
            "CREATE TABLE IF NOT EXISTS {t} (\
             `session_key` varchar(40) NOT NULL PRIMARY KEY, \
             `session_data` longtext NOT NULL, \
             {e} datetime(6) NOT NULL, \
             INDEX {idx} ({e}))"
        )],
        (Dialect::Postgres, true) => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 \"id\" bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
                 \"session_key\" text NOT NULL CONSTRAINT \"{name}_unique_session_key\" UNIQUE, \
                 \"session_data\" jsonb NOT NULL DEFAULT '{{}}', \
                 \"created_at\" timestamp with time zone NOT NULL DEFAULT STATEMENT_TIMESTAMP(), \
                 {e} timestamp with time zone NULL)",
                name = table.table()
            ),
            create_index,
        ],
        (Dialect::Sqlite, true) => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 \"id\" integer NOT NULL PRIMARY KEY AUTOINCREMENT, \
                 \"session_key\" varchar(40) NOT NULL UNIQUE, \
                 \"session_data\" text NOT NULL CHECK (JSON_VALID(\"session_data\")), \
                 \"created_at\" datetime NOT NULL, \
                 {e} datetime NULL)"
            ),
            create_index,
        ],
        (dialect, false) => {
            let time = if dialect == Dialect::Postgres {
                "timestamp with time zone"
            } else {
                "datetime"
            };
            vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     \"session_key\" varchar(40) NOT NULL PRIMARY KEY, \
                     \"session_data\" text NOT NULL, \
                     {e} {time} NOT NULL)"
                ),
                create_index,
            ]
        }
    };
    statements.into_iter().map(sql).collect()
}

fn record(key: SessionKey, found: crate::engine::Found) -> Record {
    let version = fingerprint(&found.data);
    let mut record = Record::new(key, found.data, found.expires_at);
    record.version = version;
    // Without a created_at column the creation time is unknown: "now" keeps the handle's
    // absolute-timeout arithmetic neutral.
    record.created_at = found.created_at.unwrap_or_else(now);
    record
}

pub(crate) async fn create<E: Engine>(e: &E, s: &Statements, r: &Record) -> StoreResult<()> {
    let now = now();
    let mut args = vec![
        key(&r.key),
        Arg::Text(r.data.clone()),
        Arg::Time(r.expires_at),
    ];
    if s.created_at {
        args.push(Arg::Time(r.created_at));
    }
    args.push(Arg::Time(now));
    ops::create(e, &s.common, &r.key, args, now).await
}

pub(crate) async fn load<E: Engine>(
    e: &E,
    s: &Statements,
    k: &SessionKey,
) -> StoreResult<Option<Record>> {
    let want = Want::Found {
        created: s.created_at,
    };
    let found = e
        .read(&s.load, vec![key(k), Arg::Time(now())], want)
        .await?;
    Ok(found.found().map(|f| record(k.clone(), f)))
}

/// Locks the live row and checks that its data is at `version`: `Conflict` if the row is
/// live at another version, `NotFound` if it is gone or expired.
async fn lock_at<T: Tx>(
    tx: &mut T,
    s: &Statements,
    k: &SessionKey,
    version: u64,
) -> StoreResult<()> {
    let current = tx
        .run(&s.lock, vec![key(k), Arg::Time(now())], Want::Text)
        .await?
        .text();
    if current.as_deref().map(fingerprint) == Some(version) {
        Ok(())
    } else {
        Err(crate::error::stale(current.is_some()))
    }
}

/// Commits after `result` succeeded, rolls back otherwise.
async fn finish<T: Tx, V>(tx: T, result: StoreResult<V>) -> StoreResult<V> {
    match result {
        Ok(v) => tx.commit().await.map(|()| v),
        Err(err) => {
            tx.rollback().await;
            Err(err)
        }
    }
}

pub(crate) async fn update<E: Engine>(e: &E, s: &Statements, r: &Record) -> StoreResult<u64> {
    let mut tx = e.begin().await?;
    let result = async {
        lock_at(&mut tx, s, &r.key, r.version).await?;
        let args = vec![
            Arg::Text(r.data.clone()),
            Arg::Time(r.expires_at),
            key(&r.key),
        ];
        let stored = if s.common.upsert {
            tx.run(&s.update, args, Want::Text).await?
        } else {
            tx.run(&s.update, args, Want::Rows).await?;
            tx.run(&s.reselect, vec![key(&r.key)], Want::Text).await?
        };
        // The version `load` will report: the fingerprint of the data as the database
        // stores it (a jsonb column normalises it).
        stored
            .text()
            .map(|data| fingerprint(&data))
            .ok_or(StoreError::NotFound)
    }
    .await;
    finish(tx, result).await
}

pub(crate) async fn delete_at_version<E: Engine>(
    e: &E,
    s: &Statements,
    k: &SessionKey,
    version: u64,
) -> StoreResult<()> {
    let mut tx = e.begin().await?;
    let result = async {
        lock_at(&mut tx, s, k, version).await?;
        tx.run(s.common.delete_any(), vec![key(k)], Want::Rows)
            .await
            .map(drop)
    }
    .await;
    finish(tx, result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_and_are_stable() {
        assert_eq!(fingerprint("e30"), fingerprint("e30"));
        assert_ne!(fingerprint("e30"), fingerprint("e31"));
    }

    #[test]
    fn one_text_per_statement_for_every_dialect() {
        let table = TableName::new("django_session").unwrap_or_default();
        let pg = Statements::new(Dialect::Postgres, TableLayout::Django, &table, 10);
        let my = Statements::new(Dialect::MySql, TableLayout::Django, &table, 10);
        assert_eq!(
            pg.common.touch().sql.as_str(),
            "UPDATE \"django_session\" SET \"expire_date\" = $1 WHERE \"session_key\" = $2 AND \"expire_date\" > $3"
        );
        assert_eq!(
            my.common.touch().sql.as_str(),
            "UPDATE `django_session` SET `expire_date` = ? WHERE `session_key` = ? AND `expire_date` > ?"
        );
        assert!(my
            .common
            .create()
            .sql
            .as_str()
            .starts_with("INSERT INTO `django_session`"));
        assert!(!my.common.create().sql.as_str().contains("ON CONFLICT"));
    }
}
