//! Helpers shared by the fuzz targets: a store that counts every call, a runtime, and the
//! Redis value format compiled from the library's own source file (it is `pub(crate)` in
//! session-redis, so the fuzz crate includes `session-redis/src/format.rs` as a module).
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use session_core::chrono::{DateTime, Utc};
use session_core::{async_trait, Record, SessionKey, SessionStore, StoreResult};
use session_memory::MemoryStore;

/// `session-redis/src/format.rs`, verbatim.
#[allow(dead_code, clippy::all)]
#[path = "../../session-redis/src/format.rs"]
mod format;

/// The Redis value format's entry points (`pub(crate)` in session-redis).
pub mod redis_format {
    use session_core::chrono::{DateTime, Utc};
    use session_core::{Record, SessionKey, StoreError};

    /// `format::encode`: the value stored for `record` at `version`.
    pub fn encode(record: &Record, version: u64) -> String {
        super::format::encode(record, version)
    }
    /// `format::decode`: the record stored under `key`.
    pub fn decode(key: &SessionKey, value: Vec<u8>) -> Result<Record, StoreError> {
        super::format::decode(key, value)
    }
    /// `format::decode_expiry`: the expiry at its fixed offset.
    pub fn decode_expiry(value: &[u8]) -> Result<DateTime<Utc>, StoreError> {
        super::format::decode_expiry(value)
    }
}

/// One current-thread runtime per fuzz process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// A memory store that counts every call made to it.
#[derive(Default)]
pub struct CountingStore {
    inner: MemoryStore,
    calls: AtomicUsize,
    loads: AtomicUsize,
}

impl CountingStore {
    /// A shared empty store.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            calls: AtomicUsize::new(0),
            loads: AtomicUsize::new(0),
        })
    }
    /// Every call so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    /// `load` calls so far.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl SessionStore for CountingStore {
    async fn create(&self, record: &Record) -> StoreResult<()> {
        self.count();
        self.inner.create(record).await
    }
    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        self.count();
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key).await
    }
    async fn update(&self, record: &Record) -> StoreResult<u64> {
        self.count();
        self.inner.update(record).await
    }
    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        self.count();
        self.inner.touch(key, expires_at).await
    }
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.count();
        self.inner.delete(key).await
    }
    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        self.count();
        self.inner.delete_at_version(key, version).await
    }
    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        self.count();
        self.inner.exists(key).await
    }
}

/// Splits fuzz input into parts at `sep` (at most `max` parts).
pub fn split(data: &[u8], sep: u8, max: usize) -> Vec<&[u8]> {
    data.splitn(max, |&b| b == sep).collect()
}

/// Reads a little-endian integer from the first 8 bytes (zero-padded).
pub fn le_i64(data: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    let n = data.len().min(8);
    buf[..n].copy_from_slice(&data[..n]);
    i64::from_le_bytes(buf)
}
