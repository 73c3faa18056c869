//! What every layout does the same way, written once over [`Engine`]: creating a row
//! (an upsert that replaces only a dead row, or on MySQL an insert that clears a dead row
//! and tries again), touching, deleting, the liveness check that tells a `Conflict` from a
//! `NotFound`, and the batched cleanup. A layout ([`crate::native`], [`crate::layout`])
//! supplies the statement texts (through [`Common::new`]) and its own `load`, `update`
//! and `delete_at_version`.

use session_core::chrono::{DateTime, Utc};
use session_core::{SessionKey, StoreError, StoreResult};

use crate::common::now;
use crate::engine::{Arg, Clock, Engine, Shape, Stmt, Want};
use crate::error::{retry_deadlock_victims, stale};
use crate::Dialect;

impl Common {
    pub(crate) fn delete_any(&self) -> &Stmt {
        &self.delete_any
    }

    #[cfg(test)]
    pub(crate) fn touch(&self) -> &Stmt {
        &self.touch
    }

    #[cfg(test)]
    pub(crate) fn create(&self) -> &Stmt {
        &self.create
    }
}

/// The statement texts [`Common::new`] builds the shared statements from (quoted names).
pub(crate) struct Texts<'a> {
    pub(crate) table: &'a str,
    pub(crate) key: &'a str,
    pub(crate) expiry: &'a str,
    /// The inserted columns, and their values (`$n` placeholders or expressions).
    pub(crate) columns: &'a str,
    pub(crate) values: &'a str,
    /// The `SET` list an upsert replaces a dead row with.
    pub(crate) replace: &'a str,
    /// The placeholder of "now" in `create`.
    pub(crate) create_now: &'a str,
    /// The `SET` list of `touch` (`$1` the new expiry, `$3` now).
    pub(crate) touch: &'a str,
    /// What the cleanup looks expired rows up by (`$1` now), if not the expiry itself.
    pub(crate) find_expired: Option<&'a str>,
}

/// The statements every layout shares.
#[derive(Debug)]
pub(crate) struct Common {
    /// `create` is an upsert and `delete` returns whether the row was live (PostgreSQL,
    /// SQLite); otherwise (MySQL) `create` is a plain insert followed, on a duplicate, by
    /// `delete_dead` and a second insert, and `delete` removes the live row before
    /// `delete_any` clears a dead one.
    pub(crate) upsert: bool,
    /// Binds the layout's values, then now.
    create: Stmt,
    /// `$1` key, `$2` now.
    delete_dead: Stmt,
    /// `$1` expiry, `$2` key, `$3` now.
    touch: Stmt,
    /// `$1` key, `$2` now.
    delete: Stmt,
    /// `$1` key.
    delete_any: Stmt,
    /// `$1` key, `$2` now.
    exists: Stmt,
    /// `$1` now, `$2` batch size.
    delete_expired: Stmt,
    batch: u32,
}

impl Common {
    pub(crate) fn new(d: &Shape, clock: Clock, x: &Texts<'_>, batch: u32) -> Self {
        let (t, k, e) = (x.table, x.key, x.expiry);
        let s = |text: String| Stmt::new(d.dialect, clock, text);
        let dead =
            |now: &str, prefix: &str| format!("({prefix}{e} IS NULL OR {prefix}{e} <= {now})");
        let live = format!("{k} = $1 AND {e} > $2");
        Self {
            upsert: d.upsert,
            // Insert, or replace a dead row; a live row is left alone (0 rows).
            // Concurrent inserts of one key serialise on the key's unique index.
            create: s(if d.upsert {
                format!(
                    "INSERT INTO {t} AS s ({}) VALUES ({}) ON CONFLICT ({k}) DO UPDATE SET {} \
                     WHERE {}",
                    x.columns,
                    x.values,
                    x.replace,
                    dead(x.create_now, "s.")
                )
            } else {
                format!("INSERT INTO {t} ({}) VALUES ({})", x.columns, x.values)
            }),
            delete_dead: s(format!(
                "DELETE FROM {t} WHERE {k} = $1 AND {}",
                dead("$2", "")
            )),
            touch: s(format!(
                "UPDATE {t} SET {} WHERE {k} = $2 AND {e} > $3",
                x.touch
            )),
            // Removes the row live or expired, and says which it was.
            delete: s(if d.upsert {
                format!("DELETE FROM {t} WHERE {k} = $1 RETURNING COALESCE({e} > $2, false)")
            } else {
                format!("DELETE FROM {t} WHERE {live}")
            }),
            delete_any: s(format!("DELETE FROM {t} WHERE {k} = $1")),
            exists: s(format!("SELECT 1 FROM {t} WHERE {live}")),
            delete_expired: {
                let batch = s(d.batch_delete(t, e, &format!("{e} <= $1"), x.find_expired));
                // PostgreSQL: planned for its values on every batch. Kept prepared, the
                // statement gets a generic plan after five runs on a connection, and with
                // `expiry <= $1 .. LIMIT $2` unknown that plan is a sequential scan (the
                // default estimate has a third of the table expired). Measured on a
                // million rows: 11 of 21 batches scanned the table (tests/postgres_hot.rs);
                // with 1% expired, the last batch of every cleanup read the whole table
                // (160 ms, against 15 ms through the index).
                if d.dialect == Dialect::Postgres {
                    batch.one_shot()
                } else {
                    batch
                }
            },
            batch: batch.max(1),
        }
    }
}

pub(crate) fn key(k: &SessionKey) -> Arg {
    Arg::Text(k.as_str().to_owned())
}

/// Inserts a row with `args` (the layout's values then `now`), or replaces a dead row of
/// that key: `KeyExists` if a live row holds it.
pub(crate) async fn create<E: Engine>(
    e: &E,
    c: &Common,
    k: &SessionKey,
    args: Vec<Arg>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    // A deadlock victim (racing creates over one expired row can be one on MySQL) is run
    // again by the caller (`op!`, `retry_deadlock_victims`).
    let inserted = if c.upsert {
        e.write(&c.create, args, Want::Rows).await?.rows()
    } else {
        insert_or_replace_dead(e, c, k, &args, now).await?
    };
    if inserted == 0 {
        return Err(StoreError::KeyExists);
    }
    Ok(())
}

/// MySQL's `create`: one `INSERT`; on a duplicate key, removes the row only if it is dead
/// and inserts again. Each step is atomic (autocommit statements rather than a
/// transaction, so concurrent creates of one key cannot deadlock on gap locks), so a
/// racing create either wins the insert or makes this one fail with `KeyExists`.
async fn insert_or_replace_dead<E: Engine>(
    e: &E,
    c: &Common,
    k: &SessionKey,
    args: &[Arg],
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    match e.write(&c.create, args.to_vec(), Want::Insert).await {
        Err(StoreError::KeyExists) => {
            // A row holds the key: remove it if it is dead. Whether this statement removed
            // it or someone else did since the insert (the cleanup task, a delete), the key
            // may be free now, and only a second insert tells: counting on this delete's
            // row count answered `KeyExists` for a key the cleanup had just freed (found
            // racing `delete_expired` in `writes_on_expired_rows_racing_the_cleanup_never_fail`).
            let dead = vec![key(k), Arg::Time(now)];
            e.write(&c.delete_dead, dead, Want::Rows).await?;
            Ok(e.write(&c.create, args.to_vec(), Want::Insert)
                .await?
                .rows())
        }
        other => Ok(other?.rows()),
    }
}

pub(crate) async fn touch<E: Engine>(
    e: &E,
    c: &Common,
    k: &SessionKey,
    expires_at: DateTime<Utc>,
) -> StoreResult<bool> {
    let args = vec![Arg::Time(expires_at), key(k), Arg::Time(now())];
    Ok(e.write(&c.touch, args, Want::Rows).await?.rows() > 0)
}

pub(crate) async fn delete<E: Engine>(e: &E, c: &Common, k: &SessionKey) -> StoreResult<bool> {
    let args = vec![key(k), Arg::Time(now())];
    if c.upsert {
        return Ok(e.write(&c.delete, args, Want::Flag).await?.flag() == Some(true));
    }
    // No DELETE .. RETURNING: delete the live row (the usual logout, one statement); on a
    // miss, clear out a dead leftover.
    if e.write(&c.delete, args, Want::Rows).await?.rows() > 0 {
        return Ok(true);
    }
    e.write(&c.delete_any, vec![key(k)], Want::Rows).await?;
    Ok(false)
}

pub(crate) async fn exists_at<E: Engine>(
    e: &E,
    c: &Common,
    k: &SessionKey,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let args = vec![key(k), Arg::Time(now)];
    Ok(e.read(&c.exists, args, Want::Present).await?.rows() > 0)
}

pub(crate) async fn exists<E: Engine>(e: &E, c: &Common, k: &SessionKey) -> StoreResult<bool> {
    exists_at(e, c, k, now()).await
}

/// The error of a compare-and-swap that changed nothing: `Conflict` if the row is still
/// live (a statement of its own, which sees rows committed meanwhile), else `NotFound`.
pub(crate) async fn missed<E: Engine>(
    e: &E,
    c: &Common,
    k: &SessionKey,
    now: DateTime<Utc>,
) -> StoreError {
    match exists_at(e, c, k, now).await {
        Ok(live) => stale(live),
        Err(err) => err,
    }
}

/// Removes expired rows in batches (each its own statement, so other writes run in
/// between) until none is left; a row whose expiry is NULL stays. A batch the server rolls
/// back as a deadlock victim (MySQL: a write on an expired row locks it in the other
/// order) runs again: it removed nothing.
pub(crate) async fn delete_expired<E: Engine>(e: &E, c: &Common) -> StoreResult<u64> {
    let now = now();
    let mut total = 0;
    loop {
        let removed = retry_deadlock_victims("delete_expired", || async {
            let args = vec![Arg::Time(now), Arg::Int(i64::from(c.batch))];
            Ok(e.write(&c.delete_expired, args, Want::Rows).await?.rows())
        })
        .await?;
        total += removed;
        if removed < u64::from(c.batch) {
            return Ok(total);
        }
    }
}
