//! The native layout ([`TableLayout::Native`](crate::TableLayout::Native)): the crate's own
//! table, with a version column, the user index and device metadata. Its statements are
//! built once per dialect from one text; `update` and `delete_at_version` are one-statement
//! compare-and-swaps on the version, told apart on a miss by the shared liveness check.
//!
//! Per dialect: times are `timestamptz` on PostgreSQL, `DATETIME(6)` holding UTC on MySQL,
//! and integer microseconds since the Unix epoch on SQLite (exact, compact, compared as
//! plain integers). On PostgreSQL the index is on an hourly expiry bucket
//! (`expires_bucket`) rather than on `expires_at`, and pages keep free space, so that
//! almost every update is HOT (heap-only: no index entry written). The MySQL table is
//! `utf8mb4` with a binary collation (any Unicode round-trips and user ids compare
//! exactly), and values its columns cannot hold whole are refused before they are sent.

use session_core::{Record, SessionKey, StoreError, StoreResult};
use sqlx::SqlStr;

use crate::common::{now, sql};
use crate::engine::{Arg, Clock, Col, Engine, Shape, Stmt, Value, Want};
use crate::error::{corrupt, version_from_db, version_to_db};
use crate::ops::{self, key, Common, Texts};
use crate::table::Table;
use crate::Dialect;

/// Width of the indexed expiry bucket (`expires_bucket`, seconds since the epoch divided
/// by this) on PostgreSQL: an update changes an indexed value only when the expiry crosses
/// into another hour, so almost every update is HOT.
pub(crate) const EXPIRY_BUCKET_SECONDS: i64 = 3_600;

/// Free space left in each PostgreSQL heap page for HOT updates of its rows.
const FILLFACTOR: u32 = 70;

/// The record columns in the order [`record`] reads them ([`RECORD`]); `session_key`
/// comes last so `load` can leave it out.
const COLUMNS: &str =
    "data, expires_at, version, user_id, created_at, last_active_at, user_agent, ip";

/// [`RECORD`] and `session_key`.
const KEYED_RECORD: [Col; 9] = [
    Col::Text,
    Col::Time,
    Col::Int,
    Col::OptText,
    Col::Time,
    Col::OptTime,
    Col::OptText,
    Col::OptText,
    Col::Text,
];

const RECORD: &[Col] = KEYED_RECORD.split_at(8).0;

/// Every statement of the native table on one dialect.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) common: Common,
    /// MySQL: refuse values longer than the columns hold.
    limits: bool,
    load: Stmt,
    update: Stmt,
    delete_at_version: Stmt,
    list_for_user: Stmt,
    delete_for_user: Stmt,
    delete_for_user_except: Stmt,
    pub(crate) migrate: Vec<SqlStr>,
}

impl Statements {
    pub(crate) fn new(dialect: Dialect, table: &Table, batch: u32) -> Self {
        let d = Shape::of(dialect);
        let t = table.quoted(d.quote_char());
        let s = |text: String| Stmt::new(dialect, Clock::Native, text);
        // PostgreSQL: every write of the expiry writes its bucket too.
        let pg = dialect == Dialect::Postgres;
        let bucket = |param: &str| {
            format!(
                "floor(extract(epoch FROM {param}::timestamptz) / {EXPIRY_BUCKET_SECONDS})::bigint"
            )
        };
        let set_bucket = |param: &str| {
            if pg {
                format!(", expires_bucket = {}", bucket(param))
            } else {
                String::new()
            }
        };
        let (bucket_col, bucket_val, bucket_replace) = if pg {
            (
                ", expires_bucket",
                format!(", {}", bucket("$3")),
                ", expires_bucket = excluded.expires_bucket",
            )
        } else {
            ("", String::new(), "")
        };
        let find_expired = format!("expires_bucket <= {} AND expires_at <= $1", bucket("$1"));
        let common = Common::new(
            &d,
            Clock::Native,
            &Texts {
                table: &t,
                key: "session_key",
                expiry: "expires_at",
                columns: &format!("session_key, {COLUMNS}{bucket_col}"),
                values: &format!("$1, $2, $3, $4, $5, $6, $7, $8, $9{bucket_val}"),
                replace: &format!(
                    "data = excluded.data, expires_at = excluded.expires_at{bucket_replace}, \
                     version = excluded.version, user_id = excluded.user_id, \
                     created_at = excluded.created_at, last_active_at = excluded.last_active_at, \
                     user_agent = excluded.user_agent, ip = excluded.ip"
                ),
                create_now: "$10",
                touch: &format!("expires_at = $1{}, last_active_at = $3", set_bucket("$1")),
                // Through the bucket index: every expired row is in a bucket at or before
                // now's.
                find_expired: pg.then_some(find_expired.as_str()),
            },
            batch,
        );
        Self {
            common,
            limits: dialect == Dialect::MySql,
            load: s(format!(
                "SELECT {COLUMNS} FROM {t} WHERE session_key = $1 AND expires_at > $2"
            )),
            // Compare-and-swap on (key, version), refusing expired rows. On PostgreSQL no
            // indexed value changes unless the expiry moves to another bucket, so the
            // update is HOT.
            update: s(format!(
                "UPDATE {t} SET data = $1, expires_at = $2{}, version = version + 1, \
                 user_id = $3, last_active_at = $4, user_agent = $5, ip = $6 \
                 WHERE session_key = $7 AND version = $8 AND expires_at > $9",
                set_bucket("$2")
            )),
            // Compare-and-delete of a live row (key rotation).
            delete_at_version: s(format!(
                "DELETE FROM {t} WHERE session_key = $1 AND version = $2 AND expires_at > $3"
            )),
            list_for_user: s(format!(
                "SELECT {COLUMNS}, session_key FROM {t} \
                 WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, session_key"
            )),
            delete_for_user: s(format!(
                "DELETE FROM {t} WHERE user_id = $1 AND expires_at > $2"
            )),
            delete_for_user_except: s(format!(
                "DELETE FROM {t} WHERE user_id = $1 AND expires_at > $2 AND session_key <> $3"
            )),
            migrate: migration(dialect, table, &t).into_iter().map(sql).collect(),
        }
    }
}

/// The DDL of the native table.
fn migration(dialect: Dialect, table: &Table, t: &str) -> Vec<String> {
    match dialect {
        Dialect::Postgres => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 session_key VARCHAR(64) PRIMARY KEY, \
                 data TEXT NOT NULL, \
                 expires_at TIMESTAMPTZ NOT NULL, \
                 version BIGINT NOT NULL, \
                 user_id TEXT, \
                 created_at TIMESTAMPTZ NOT NULL, \
                 last_active_at TIMESTAMPTZ, \
                 user_agent TEXT, \
                 ip TEXT, \
                 expires_bucket BIGINT NOT NULL DEFAULT 0) \
                 WITH (fillfactor = {FILLFACTOR})"
            ),
            // Tables created before the bucket: the column is added without a rewrite;
            // their rows are in bucket 0 (always scanned by the cleanup, which checks the
            // exact expiry) until their next write.
            format!(
                "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS \
                 expires_bucket BIGINT NOT NULL DEFAULT 0"
            ),
            format!("ALTER TABLE {t} SET (fillfactor = {FILLFACTOR})"),
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {t} (expires_bucket)",
                table.index("exp_bucket_idx", '"')
            ),
            // The exact-expiry index made every update non-HOT.
            format!(
                "DROP INDEX IF EXISTS {}",
                table.qualified_index("expires_at_idx", '"')
            ),
            // Partial: most sessions are anonymous, and `user_id = $1` implies NOT NULL.
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {t} (user_id) WHERE user_id IS NOT NULL",
                table.index("user_id_idx", '"')
            ),
        ],
        // One statement, indexes included: MySQL has no CREATE INDEX IF NOT EXISTS.
        Dialect::MySql => vec![format!(
            "CREATE TABLE IF NOT EXISTS {t} (\
             session_key VARCHAR(64) NOT NULL, \
             data LONGTEXT NOT NULL, \
             expires_at DATETIME(6) NOT NULL, \
             version BIGINT NOT NULL, \
             user_id VARCHAR(255) NULL, \
             created_at DATETIME(6) NOT NULL, \
             last_active_at DATETIME(6) NULL, \
             user_agent TEXT NULL, \
             ip VARCHAR(255) NULL, \
             PRIMARY KEY (session_key), \
             INDEX {} (expires_at), \
             INDEX {} (user_id)\
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            table.index("expires_at_idx", '`'),
            table.index("user_id_idx", '`'),
        )],
        Dialect::Sqlite => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 session_key TEXT PRIMARY KEY NOT NULL, \
                 data TEXT NOT NULL, \
                 expires_at INTEGER NOT NULL, \
                 version INTEGER NOT NULL, \
                 user_id TEXT, \
                 created_at INTEGER NOT NULL, \
                 last_active_at INTEGER, \
                 user_agent TEXT, \
                 ip TEXT)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {t} (expires_at)",
                table.index("expires_at_idx", '"')
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {t} (user_id) WHERE user_id IS NOT NULL",
                table.index("user_id_idx", '"')
            ),
        ],
    }
}

/// Refuses values the MySQL columns cannot hold whole (a server not in strict mode would
/// silently truncate them, which would break the user index).
fn check_lengths(s: &Statements, r: &Record) -> StoreResult<()> {
    fn too_long(what: &str, limit: &str) -> StoreError {
        StoreError::backend(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} is longer than the MySQL column allows ({limit})"),
        ))
    }
    if !s.limits {
        return Ok(());
    }
    if r.user_id.as_ref().is_some_and(|u| u.chars().count() > 255) {
        return Err(too_long("user_id", "255 characters"));
    }
    if r.ip.as_ref().is_some_and(|ip| ip.chars().count() > 255) {
        return Err(too_long("ip", "255 characters"));
    }
    if r.user_agent.as_ref().is_some_and(|ua| ua.len() > 65_535) {
        return Err(too_long("user_agent", "65,535 bytes"));
    }
    Ok(())
}

/// A record from the columns of [`RECORD`] (and, when `key` is `None`, `session_key`).
fn record(row: Vec<Value>, key: Option<&SessionKey>) -> StoreResult<Record> {
    let mut cols = row.into_iter();
    let mut next = || cols.next().ok_or_else(|| corrupt("missing column"));
    let data = next()?.text().unwrap_or_default();
    let expires_at = next()?.time().unwrap_or_default();
    let version = version_from_db(next()?.int())?;
    let user_id = next()?.text();
    let created_at = next()?.time().unwrap_or_default();
    let last_active_at = next()?.time();
    let user_agent = next()?.text();
    let ip = next()?.text();
    let key = match key {
        Some(key) => key.clone(),
        None => SessionKey::try_from(next()?.text().unwrap_or_default())
            .map_err(|e| corrupt(format!("session_key: {e}")))?,
    };
    let mut record = Record::new(key, data, expires_at);
    record.version = version;
    record.user_id = user_id;
    record.created_at = created_at;
    record.last_active_at = last_active_at;
    record.user_agent = user_agent;
    record.ip = ip;
    Ok(record)
}

pub(crate) async fn create<E: Engine>(e: &E, s: &Statements, r: &Record) -> StoreResult<()> {
    check_lengths(s, r)?;
    let now = now();
    let args = vec![
        key(&r.key),
        Arg::Text(r.data.clone()),
        Arg::Time(r.expires_at),
        Arg::Int(version_to_db(r.version)?),
        Arg::OptText(r.user_id.clone()),
        Arg::Time(r.created_at),
        Arg::OptTime(r.last_active_at),
        Arg::OptText(r.user_agent.clone()),
        Arg::OptText(r.ip.clone()),
        Arg::Time(now),
    ];
    ops::create(e, &s.common, &r.key, args, now).await
}

pub(crate) async fn load<E: Engine>(
    e: &E,
    s: &Statements,
    k: &SessionKey,
) -> StoreResult<Option<Record>> {
    let args = vec![key(k), Arg::Time(now())];
    let row = e.read(&s.load, args, Want::Row(RECORD)).await?.row();
    row.map(|row| record(row, Some(k))).transpose()
}

pub(crate) async fn update<E: Engine>(e: &E, s: &Statements, r: &Record) -> StoreResult<u64> {
    check_lengths(s, r)?;
    let now = now();
    let args = vec![
        Arg::Text(r.data.clone()),
        Arg::Time(r.expires_at),
        Arg::OptText(r.user_id.clone()),
        Arg::OptTime(r.last_active_at),
        Arg::OptText(r.user_agent.clone()),
        Arg::OptText(r.ip.clone()),
        key(&r.key),
        Arg::Int(version_to_db(r.version)?),
        Arg::Time(now),
    ];
    // MySQL: sqlx sets CLIENT_FOUND_ROWS, so a matched row counts even if nothing changed.
    if e.write(&s.update, args, Want::Rows).await?.rows() == 1 {
        return Ok(r.version + 1);
    }
    Err(ops::missed(e, &s.common, &r.key, now).await)
}

pub(crate) async fn delete_at_version<E: Engine>(
    e: &E,
    s: &Statements,
    k: &SessionKey,
    version: u64,
) -> StoreResult<()> {
    let now = now();
    let args = vec![key(k), Arg::Int(version_to_db(version)?), Arg::Time(now)];
    if e.write(&s.delete_at_version, args, Want::Rows)
        .await?
        .rows()
        > 0
    {
        return Ok(());
    }
    Err(ops::missed(e, &s.common, k, now).await)
}

pub(crate) async fn list_for_user<E: Engine>(
    e: &E,
    s: &Statements,
    user_id: &str,
) -> StoreResult<Vec<Record>> {
    let args = vec![Arg::Text(user_id.to_owned()), Arg::Time(now())];
    let rows = e
        .read(&s.list_for_user, args, Want::All(&KEYED_RECORD))
        .await?
        .all();
    rows.into_iter().map(|row| record(row, None)).collect()
}

pub(crate) async fn delete_for_user<E: Engine>(
    e: &E,
    s: &Statements,
    user_id: &str,
    except: Option<&SessionKey>,
) -> StoreResult<u64> {
    let mut args = vec![Arg::Text(user_id.to_owned()), Arg::Time(now())];
    let stmt = match except {
        None => &s.delete_for_user,
        Some(keep) => {
            args.push(key(keep));
            &s.delete_for_user_except
        }
    };
    Ok(e.write(stmt, args, Want::Rows).await?.rows())
}
