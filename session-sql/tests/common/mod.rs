//! Helpers shared by the session-sql integration tests.
#![allow(dead_code)]

pub mod outage;

use std::sync::Arc;
use std::time::Duration;

use session_core::chrono::{TimeDelta, Utc};
use session_core::{Record, SessionKey, SessionStore, StoreError};

/// The runtime of the server tests: multi-threaded, 4 workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A store on `url` with the table `table` and at most `max_connections` connections (the
/// table is not created: see [`migrated_store`]).
pub async fn connect(
    url: &str,
    table: impl Into<String>,
    max_connections: u32,
) -> session_sql::SqlStore {
    session_sql::SqlStore::builder()
        .table(table)
        .max_connections(max_connections)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to the test database: {e}"))
}

/// [`connect`], then `migrate`.
pub async fn migrated_store(
    url: &str,
    table: impl Into<String>,
    max_connections: u32,
) -> session_sql::SqlStore {
    let store = connect(url, table, max_connections).await;
    store.migrate().await.expect("migrate");
    store
}

/// A table name unique to this call: `prefix_` plus 12 random characters.
pub fn unique_table(prefix: &str) -> String {
    format!("{prefix}_{}", &SessionKey::generate().as_str()[..12])
}

/// A record that expires `expires_in` from now.
pub fn record(expires_in: TimeDelta) -> Record {
    Record::new(
        SessionKey::generate(),
        "j1:{}".to_owned(),
        Utc::now() + expires_in,
    )
}

/// Reads an environment variable a server test needs, failing loudly without it.
pub fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: this test needs its database server (see scripts/services.sh); it is never skipped")
    })
}

/// 32 tasks race `create` on one key (each with its own data): exactly one wins, every
/// other gets `KeyExists`, and the stored data is the winner's.
pub async fn create_race(store: Arc<dyn SessionStore>) {
    let key = SessionKey::generate();
    let expires = Utc::now() + TimeDelta::hours(1);
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        let barrier = barrier.clone();
        let record = Record::new(key.clone(), format!("j1:{{\"writer\":{i}}}"), expires);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (i, store.create(&record).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, result) = task.await.expect("task panicked");
        match result {
            Ok(()) => winners.push(i),
            Err(StoreError::KeyExists) => {}
            Err(other) => panic!("create #{i} failed with {other:?}, expected Ok or KeyExists"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one create must win, winners: {winners:?}"
    );
    let stored = store
        .load(&key)
        .await
        .expect("load")
        .expect("winner's record is live");
    assert_eq!(stored.data, format!("j1:{{\"writer\":{}}}", winners[0]));
}

/// Creates `expired` expired and `live` live records; `delete_expired` must remove exactly
/// the expired ones and keep every live one.
pub async fn delete_expired_in_batches(store: &dyn SessionStore, expired: usize, live: usize) {
    let mut live_keys = Vec::new();
    for _ in 0..expired {
        store
            .create(&record(-TimeDelta::seconds(5)))
            .await
            .expect("create expired");
    }
    for _ in 0..live {
        let r = record(TimeDelta::hours(1));
        store.create(&r).await.expect("create live");
        live_keys.push(r.key);
    }
    assert_eq!(
        store.delete_expired().await.expect("delete_expired"),
        expired as u64
    );
    assert_eq!(store.delete_expired().await.expect("again"), 0);
    for key in &live_keys {
        assert!(
            store.exists(key).await.expect("exists"),
            "a live row was deleted"
        );
    }
}

/// `delete_at_version` (native layout): a stale version is a `Conflict` that leaves the row
/// as it was, the current version removes it (and its user-index entry), and a missing or
/// expired row is `NotFound`.
pub async fn delete_at_version_outcomes(store: &dyn SessionStore) {
    let r = record(TimeDelta::hours(1)).with_user(Some("rotating-user"));
    store.create(&r).await.expect("create");
    let v2 = store.update(&r).await.expect("update");
    assert!(matches!(
        store.delete_at_version(&r.key, 1).await,
        Err(StoreError::Conflict)
    ));
    let kept = store.load(&r.key).await.expect("load").expect("still live");
    assert_eq!(kept.version, v2);
    assert_eq!(
        store
            .list_for_user("rotating-user")
            .await
            .expect("list")
            .len(),
        1
    );
    store
        .delete_at_version(&r.key, v2)
        .await
        .expect("delete at the current version");
    assert!(!store.exists(&r.key).await.expect("exists"));
    assert!(store
        .list_for_user("rotating-user")
        .await
        .expect("list")
        .is_empty());
    assert!(matches!(
        store.delete_at_version(&r.key, v2).await,
        Err(StoreError::NotFound)
    ));
    let expired = record(-TimeDelta::seconds(5));
    store.create(&expired).await.expect("create expired");
    assert!(matches!(
        store.delete_at_version(&expired.key, expired.version).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_at_version(&SessionKey::generate(), 1).await,
        Err(StoreError::NotFound)
    ));
}

/// Runs `ops` with a deadline, failing the test if it hangs.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}
