//! Helpers shared by the session-combinators integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
#[cfg(feature = "server-tests")]
use std::time::Duration;

use session_combinators::HashedKeys;
use session_core::chrono::{DateTime, Utc};
use session_core::{
    async_trait, Capabilities, ExpiredCleanup, Record, SessionKey, SessionStore, StoreError,
    StoreResult, UserIndex,
};
use session_sql::SqlStore;

/// The secret the HashedKeys tests use.
pub const SECRET: &[u8] = b"session-combinators test secret, 32+ bytes long";

/// A name unique to this call: `prefix_` plus 12 random characters.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &SessionKey::generate().as_str()[..12])
}

/// The SQLite file of one table under `target/tmp`: one file per table, so that the many
/// cases running at once never contend for one database's write lock (stores opened on the
/// same table, the "two app processes" of some tests, share its file).
fn file_for(table: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "session-combinators-{}-{table}.db",
        std::process::id()
    ))
}

/// A SQLite store in a table (and file) of its own.
pub async fn sqlite(prefix: &str) -> SqlStore {
    sqlite_table(&unique(prefix)).await
}

/// A SQLite store over `table` in that table's file (two stores on one table are two app
/// processes sharing one database).
pub async fn sqlite_table(table: &str) -> SqlStore {
    let store = SqlStore::builder()
        .table(table)
        .connect(&format!("sqlite://{}", file_for(table).display()))
        .await
        .expect("open the SQLite file");
    store.migrate().await.expect("migrate");
    store
}

/// Reads an environment variable a server test needs, failing loudly without it.
pub fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: this test needs its server (see scripts/services.sh); it is never skipped")
    })
}

/// A PostgreSQL store over `table`.
pub async fn postgres_table(table: &str) -> SqlStore {
    let store = SqlStore::builder()
        .table(table)
        .max_connections(4)
        .connect(&env_url("SESSION_TEST_POSTGRES_URL"))
        .await
        .expect("connect to PostgreSQL");
    store.migrate().await.expect("migrate");
    store
}

/// A PostgreSQL store in a table of its own.
pub async fn postgres(prefix: &str) -> SqlStore {
    postgres_table(&unique(prefix)).await
}

#[cfg(feature = "server-tests")]
/// A Redis store under `prefix` (two stores on one prefix share one front).
pub fn redis_prefix(prefix: &str) -> session_redis::RedisStore {
    session_redis::RedisStore::builder()
        .url(env_url("SESSION_TEST_REDIS_URL"))
        .key_prefix(prefix)
        .response_timeout(Duration::from_secs(5))
        .build()
        .expect("build the Redis store")
}

#[cfg(feature = "server-tests")]
/// A Redis store with a key prefix of its own.
pub fn redis(tag: &str) -> session_redis::RedisStore {
    redis_prefix(&format!("test:comb:{}:", unique(tag)))
}

/// A store that fails every call with `Unavailable` while `down` is set, and otherwise
/// forwards to a memory store: a front that goes away.
#[derive(Default)]
pub struct Flaky {
    inner: session_memory::MemoryStore,
    down: AtomicBool,
}

impl Flaky {
    /// A flaky store that starts down.
    pub fn down() -> Self {
        let store = Self::default();
        store.set_down(true);
        store
    }

    /// Takes the store down or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> StoreResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::unavailable(std::io::Error::other(
                "front is down",
            )))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl SessionStore for Flaky {
    async fn create(&self, record: &Record) -> StoreResult<()> {
        self.check()?;
        self.inner.create(record).await
    }
    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        self.check()?;
        self.inner.load(key).await
    }
    async fn update(&self, record: &Record) -> StoreResult<u64> {
        self.check()?;
        self.inner.update(record).await
    }
    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        self.check()?;
        self.inner.touch(key, expires_at).await
    }
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.check()?;
        self.inner.delete(key).await
    }
    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        self.check()?;
        self.inner.delete_at_version(key, version).await
    }
}

/// The conformance suite compares the keys `list_for_user` returns with the cookie keys it
/// created; over [`HashedKeys`] those are device identifiers by design. This test adapter
/// remembers which cookie key each identifier belongs to (for the keys the suite wrote) and
/// maps listed identifiers back, so the suite checks that listing returns exactly
/// `device_id(k)` for each of the user's sessions `k`. Every other call goes to the
/// HashedKeys store unchanged.
pub struct DeviceIdsAsKeys<S> {
    store: HashedKeys<S>,
    book: Mutex<HashMap<SessionKey, SessionKey>>,
}

impl<S: SessionStore> DeviceIdsAsKeys<S> {
    /// Wraps a HashedKeys store over `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            store: HashedKeys::new(inner, SECRET).expect("secret"),
            book: Mutex::new(HashMap::new()),
        }
    }

    fn remember(&self, key: &SessionKey) {
        let id = self.store.device_id(key);
        self.book.lock().expect("book lock").insert(id, key.clone());
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for DeviceIdsAsKeys<S> {
    async fn create(&self, record: &Record) -> StoreResult<()> {
        self.remember(&record.key);
        self.store.create(record).await
    }
    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        self.store.load(key).await
    }
    async fn update(&self, record: &Record) -> StoreResult<u64> {
        self.remember(&record.key);
        self.store.update(record).await
    }
    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        self.store.touch(key, expires_at).await
    }
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.store.delete(key).await
    }
    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        self.store.delete_at_version(key, version).await
    }
    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        self.store.exists(key).await
    }
    fn user_index(&self) -> Option<&dyn UserIndex> {
        self.store.user_index().map(|_| self as &dyn UserIndex)
    }
    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        self.store.expired_cleanup()
    }
    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }
}

#[async_trait]
impl<S: SessionStore> UserIndex for DeviceIdsAsKeys<S> {
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        let index = self.store.user_index().ok_or(StoreError::Unsupported {
            operation: "list_for_user",
        })?;
        let mut listed = index.list_for_user(user_id).await?;
        let book = self.book.lock().expect("book lock");
        for record in &mut listed {
            let cookie = book.get(&record.key).unwrap_or_else(|| {
                panic!(
                    "listed key {} is no device id of a written session",
                    record.key
                )
            });
            record.key = cookie.clone();
        }
        Ok(listed)
    }
    async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        let index = self.store.user_index().ok_or(StoreError::Unsupported {
            operation: "delete_for_user",
        })?;
        index.delete_for_user(user_id, except).await
    }
}

/// Shares one store between several owners (for the "two processes" tests).
pub fn shared<S>(store: S) -> Arc<S> {
    Arc::new(store)
}
