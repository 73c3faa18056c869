//! A custom store: one JSON file per session in a directory.
//!
//! It shows the minimal path for a custom backend: the five required methods of
//! [`SessionStore`], plus the two optional capabilities this store can offer cheaply
//! ([`UserIndex`], by scanning the directory, and [`ExpiredCleanup`], since files do not
//! expire by themselves). Records are written as they are, through the `serde` feature of
//! the `session` crate: no mirror struct.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use session_kit::chrono::{DateTime, Utc};
use session_kit::{
    async_trait, ExpiredCleanup, Record, SessionKey, SessionStore, StoreError, StoreResult,
    UserIndex,
};
use tokio::sync::Mutex;

/// A [`SessionStore`] that keeps each session in `<dir>/<key>.json`.
///
/// Every operation runs under one async mutex, which makes create and compare-and-swap
/// update atomic with respect to each other in this process (it is an example: use the SQL
/// store for several processes). Files are written to a temporary name and renamed into
/// place, so a crash never leaves a half-written session.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use session_kit::{chrono::{Duration, Utc}, Record, SessionKey, SessionStore};
/// use session_examples::FileStore;
///
/// let dir = std::env::temp_dir().join(format!("sessions-doc-{}", SessionKey::generate().as_str()));
/// let store = FileStore::open(&dir).await?;
/// let record = Record::new(SessionKey::generate(), "j1:{}".into(), Utc::now() + Duration::hours(1));
/// store.create(&record).await?;
/// assert!(store.exists(&record.key).await?);
/// # tokio::fs::remove_dir_all(&dir).await.ok();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    lock: Mutex<()>,
}

/// A file system error: the directory is there but an operation on it failed.
fn io(err: std::io::Error) -> StoreError {
    StoreError::backend(err)
}

impl FileStore {
    /// Opens (creating if needed) a directory of session files.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the directory cannot be created.
    ///
    /// # Examples
    ///
    /// See [`FileStore`].
    pub async fn open(dir: impl AsRef<Path>) -> StoreResult<Self> {
        let dir = dir.as_ref().to_path_buf();
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        Ok(Self {
            dir,
            lock: Mutex::new(()),
        })
    }

    fn path(&self, key: &SessionKey) -> PathBuf {
        // Keys are `[a-z0-9]{32}` by construction, so they are safe file names.
        self.dir.join(format!("{}.json", key.as_str()))
    }

    async fn read(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::corrupt(format!("session file is not a record: {e}"))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn write(&self, record: &Record) -> StoreResult<()> {
        let bytes = serde_json::to_vec(record).map_err(StoreError::backend)?;
        let tmp = self.dir.join(format!(".{}.tmp", record.key.as_str()));
        tokio::fs::write(&tmp, bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, self.path(&record.key))
            .await
            .map_err(io)
    }

    async fn remove(&self, key: &SessionKey) -> StoreResult<bool> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    async fn live(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        let now = Utc::now();
        Ok(self.read(key).await?.filter(|r| r.is_live_at(now)))
    }

    async fn all(&self) -> StoreResult<Vec<Record>> {
        let mut out = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await.map_err(io)?;
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let name = entry.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let Ok(key) = SessionKey::parse(key) else {
                continue;
            };
            if let Some(record) = self.read(&key).await? {
                out.push(record);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl SessionStore for FileStore {
    async fn create(&self, record: &Record) -> StoreResult<()> {
        let _guard = self.lock.lock().await;
        if self.live(&record.key).await?.is_some() {
            return Err(StoreError::KeyExists);
        }
        self.write(record).await
    }

    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        let _guard = self.lock.lock().await;
        self.live(key).await
    }

    async fn update(&self, record: &Record) -> StoreResult<u64> {
        let _guard = self.lock.lock().await;
        let Some(stored) = self.live(&record.key).await? else {
            return Err(StoreError::NotFound);
        };
        if stored.version != record.version {
            return Err(StoreError::Conflict);
        }
        let mut next = record.clone();
        next.version = record.version + 1;
        next.created_at = stored.created_at;
        self.write(&next).await?;
        Ok(next.version)
    }

    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        let _guard = self.lock.lock().await;
        let Some(mut stored) = self.live(key).await? else {
            return Ok(false);
        };
        stored.expires_at = expires_at;
        stored.last_active_at = Some(Utc::now());
        self.write(&stored).await?;
        Ok(true)
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        let _guard = self.lock.lock().await;
        let was_live = self.live(key).await?.is_some();
        Ok(self.remove(key).await? && was_live)
    }

    // `exists` and `delete_at_version` keep their default implementations (built on the
    // methods above), which are correct for any store.

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        Some(self)
    }
}

#[async_trait]
impl UserIndex for FileStore {
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        let _guard = self.lock.lock().await;
        let now = Utc::now();
        let mut out: Vec<Record> = self
            .all()
            .await?
            .into_iter()
            .filter(|r| r.is_live_at(now) && r.user_id.as_deref() == Some(user_id))
            .collect();
        out.sort_by_key(|r| r.created_at);
        Ok(out)
    }

    async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        let _guard = self.lock.lock().await;
        let now = Utc::now();
        let mut removed = 0;
        for record in self.all().await? {
            if record.user_id.as_deref() == Some(user_id)
                && Some(&record.key) != except
                && self.remove(&record.key).await?
                && record.is_live_at(now)
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl ExpiredCleanup for FileStore {
    async fn delete_expired(&self) -> StoreResult<u64> {
        let _guard = self.lock.lock().await;
        let now = Utc::now();
        let mut removed = 0;
        for record in self.all().await? {
            if !record.is_live_at(now) && self.remove(&record.key).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
