//! Constructors of our server-backed stores, as a user would write them.

use std::sync::Arc;

use session_core::SessionStore;
use session_redis::RedisStore;
use session_sql::SqlStore;

/// Our Redis store with keys under `prefix`, with the store's default number of
/// multiplexed connections ([`session_redis::DEFAULT_POOL_SIZE`]);
/// `SESSION_BENCH_REDIS_POOL` overrides it (see `benches/FINDINGS.md` for why 16 is not
/// used: the raw floor is one multiplexed connection, and more connections cost).
pub async fn redis(url: &str, prefix: &str) -> Result<Arc<dyn SessionStore>, String> {
    let pool = std::env::var("SESSION_BENCH_REDIS_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(session_redis::DEFAULT_POOL_SIZE);
    let store = RedisStore::builder()
        .key_prefix(prefix)
        .pool_size(pool)
        .connect(url)
        .await
        .map_err(|e| format!("redis store: {e}"))?;
    Ok(Arc::new(store))
}

/// Our PostgreSQL store on table `table` (created), pool of 16.
pub async fn postgres(url: &str, table: &str) -> Result<Arc<dyn SessionStore>, String> {
    let store = SqlStore::builder()
        .table(table)
        .max_connections(16)
        .connect(url)
        .await
        .map_err(|e| format!("postgres store: {e}"))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("postgres migrate: {e}"))?;
    Ok(Arc::new(store))
}

/// Our SQLite store on a file: 16 reader connections and the store's single writer.
pub async fn sqlite(url: &str) -> Result<Arc<dyn SessionStore>, String> {
    let store = SqlStore::builder()
        .table("bench_ours")
        .max_connections(16)
        .connect(url)
        .await
        .map_err(|e| format!("sqlite store: {e}"))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("sqlite migrate: {e}"))?;
    Ok(Arc::new(store))
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
