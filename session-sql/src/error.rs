//! Mapping sqlx errors onto [`session_core::StoreError`], keeping the sqlx error as the
//! source.

use session_core::{StoreError, StoreResult};

/// Whether `err` means the database cannot be reached right now (so a caller may answer
/// 503 and retry later) rather than a failing statement.
pub(crate) fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_code(&code)),
        _ => false,
    }
}

/// Server error codes that mean "not reachable now": SQLSTATE class 08 (connection
/// exceptions, PostgreSQL and MySQL), PostgreSQL's shutdown / starting-up / too many
/// connections, MySQL's too many connections, and SQLite's BUSY / LOCKED primary codes
/// (the busy timeout ran out).
fn unavailable_code(code: &str) -> bool {
    if code.starts_with("08") {
        return true;
    }
    if matches!(code, "57P01" | "57P02" | "57P03" | "53300") {
        return true;
    }
    // SQLite reports its (extended) result code as a decimal number.
    if let Ok(n) = code.parse::<i32>() {
        return matches!(n & 0xff, 5 | 6);
    }
    false
}

/// Maps a sqlx error to [`StoreError::Unavailable`] or [`StoreError::Backend`], keeping it
/// as source.
pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    if is_unavailable(&err) {
        tracing::warn!(error = %err, "session store database unavailable");
        StoreError::unavailable(err)
    } else {
        tracing::error!(error = %err, "session store query failed");
        StoreError::backend(err)
    }
}

/// Whether `err` is a statement the server rolled back as a deadlock victim (SQLSTATE
/// 40001: InnoDB error 1213, PostgreSQL's serialization failure); such a statement is safe
/// to run again.
pub(crate) fn is_deadlock(err: &StoreError) -> bool {
    let StoreError::Backend { source, .. } = err else {
        return false;
    };
    matches!(source.downcast_ref::<sqlx::Error>(),
        Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("40001"))
}

/// How many times an operation runs again after the server rolled it back as a deadlock
/// victim (InnoDB error 1213, SQLSTATE 40001). Such an operation changed nothing (InnoDB
/// rolls back the victim's whole statement or transaction), so running it again is safe.
/// On MySQL/MariaDB a write on an expired row can deadlock with `delete_expired`, which
/// locks its rows through the expiry index in the other order (seen in a 10-minute soak:
/// 5-6 requests answered 500 when the cleanup task ran).
pub(crate) const DEADLOCK_RETRIES: u32 = 8;

/// Runs `attempt` again, after a short pause growing with each try, while the server
/// rolls it back as a deadlock victim, at most [`DEADLOCK_RETRIES`] times. Every operation
/// goes through it (`op!`, `common_op!`, the user index), and each batch of
/// `delete_expired`: 10-minute MariaDB soaks found victims in each of them (`touch`,
/// `delete`, `delete_for_user`, a cleanup batch) as the retry grew.
pub(crate) async fn retry_deadlock_victims<T, F, Fut>(
    operation: &'static str,
    mut attempt: F,
) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut victim_of = 0;
    loop {
        match attempt().await {
            Err(err) if is_deadlock(&err) && victim_of < DEADLOCK_RETRIES => {
                victim_of += 1;
                tracing::debug!(
                    operation,
                    attempt = victim_of,
                    "deadlock victim; running it again"
                );
                let micros = 200u64 << victim_of.min(6);
                tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
            }
            other => return other,
        }
    }
}

/// The outcome of a compare-and-swap (or compare-and-delete) that changed nothing:
/// `Conflict` when the row is still live (its version moved), `NotFound` when it is gone or
/// expired. Every dialect and layout decides it here.
pub(crate) fn stale(row_is_live: bool) -> StoreError {
    if row_is_live {
        StoreError::Conflict
    } else {
        StoreError::NotFound
    }
}

/// A stored row whose contents cannot be turned back into a record.
pub(crate) fn corrupt(reason: impl Into<String>) -> StoreError {
    StoreError::corrupt(reason)
}

/// Reads one column, turning a decode failure into [`StoreError::CorruptRecord`].
pub(crate) fn column<'r, R, T>(row: &'r R, index: usize, name: &str) -> Result<T, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.try_get(index)
        .map_err(|e| corrupt(format!("column {name}: {e}")))
}

/// Converts a record version for a signed 64-bit column.
pub(crate) fn version_to_db(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| {
        StoreError::backend(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("session version {version} does not fit a signed 64-bit column"),
        ))
    })
}

/// Converts a stored version back.
pub(crate) fn version_from_db(version: i64) -> Result<u64, StoreError> {
    u64::try_from(version).map_err(|_| corrupt(format!("negative version {version}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errors() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::other(
            "reset"
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(!is_unavailable(&sqlx::Error::Protocol("bad".into())));
        for code in [
            "08006", "08S01", "57P01", "57P03", "53300", "5", "6", "517", "261",
        ] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["23505", "42P01", "1", "19", "2067", "HY000"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }

    #[test]
    fn keeps_the_source() {
        let err = map_err(sqlx::Error::PoolTimedOut);
        assert!(err.is_unavailable());
        let source = std::error::Error::source(&err).expect("source kept");
        assert!(source.downcast_ref::<sqlx::Error>().is_some());
        let err = map_err(sqlx::Error::RowNotFound);
        assert!(matches!(err, StoreError::Backend { .. }));
    }

    #[test]
    fn versions_convert() {
        assert_eq!(version_to_db(7).ok(), Some(7));
        assert!(version_to_db(u64::MAX).is_err());
        assert!(matches!(
            version_from_db(-1),
            Err(StoreError::CorruptRecord { .. })
        ));
    }
}
