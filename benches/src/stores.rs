//! Constructors of our server-backed stores, as a user would write them.

use std::sync::Arc;

use session_core::SessionStore;

/// Our Redis store with keys under `prefix`, pool of 16.
pub async fn redis(_url: &str, _prefix: &str) -> Result<Arc<dyn SessionStore>, String> {
    Err("session-redis is not wired into the benchmarks yet".into())
}

/// Our PostgreSQL store on table `table`, pool of 16.
pub async fn postgres(_url: &str, _table: &str) -> Result<Arc<dyn SessionStore>, String> {
    Err("session-sql is not wired into the benchmarks yet".into())
}

/// Our SQLite store on a file.
pub async fn sqlite(_url: &str) -> Result<Arc<dyn SessionStore>, String> {
    Err("session-sql is not wired into the benchmarks yet".into())
}

/// Deletes every key under `prefix` (SCAN + DEL), so benchmark keys do not pile up.
pub async fn redis_cleanup(url: &str, prefix: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
