//! A per-request store wrapper that remembers what the request wrote, so a handler that
//! called [`Session::save`](session_core::Session::save) itself still gets its cookie.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use session_core::{Capabilities, Record, Result, SessionKey, SessionStore};

/// Forwards every call to the application's store and records the last successful write
/// (create, update or touch) of this request: the key and the expiry it stored.
pub(crate) struct TrackingStore {
    inner: Arc<dyn SessionStore>,
    last_write: Mutex<Option<(SessionKey, DateTime<Utc>)>>,
}

impl TrackingStore {
    pub(crate) fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self {
            inner,
            last_write: Mutex::new(None),
        }
    }

    fn record(&self, key: &SessionKey, expires_at: DateTime<Utc>) {
        *self
            .last_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((key.clone(), expires_at));
    }

    /// Whether the request wrote anything (cheap check before looking at the key).
    pub(crate) fn wrote_anything(&self) -> bool {
        self.last_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// The expiry the request last stored for `key`, if it wrote that key.
    pub(crate) fn written(&self, key: &SessionKey) -> Option<DateTime<Utc>> {
        match &*self
            .last_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some((k, at)) if k == key => Some(*at),
            _ => None,
        }
    }
}

#[async_trait]
impl SessionStore for TrackingStore {
    async fn create(&self, record: &Record) -> Result<()> {
        self.inner.create(record).await?;
        self.record(&record.key, record.expires_at);
        Ok(())
    }
    async fn load(&self, key: &SessionKey) -> Result<Option<Record>> {
        self.inner.load(key).await
    }
    async fn update(&self, record: &Record) -> Result<u64> {
        let version = self.inner.update(record).await?;
        self.record(&record.key, record.expires_at);
        Ok(version)
    }
    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> Result<bool> {
        let touched = self.inner.touch(key, expires_at).await?;
        if touched {
            self.record(key, expires_at);
        }
        Ok(touched)
    }
    async fn delete(&self, key: &SessionKey) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn delete_expired(&self) -> Result<u64> {
        self.inner.delete_expired().await
    }
    async fn list_for_user(&self, user_id: &str) -> Result<Vec<Record>> {
        self.inner.list_for_user(user_id).await
    }
    async fn delete_for_user(&self, user_id: &str, except: Option<&SessionKey>) -> Result<u64> {
        self.inner.delete_for_user(user_id, except).await
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}
