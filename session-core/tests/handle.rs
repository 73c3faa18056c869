//! Behaviour of the `Session` handle and the cleanup task beyond the conformance suite.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use session_core::chrono::{DateTime, TimeDelta, Utc};
use session_core::{
    async_trait, spawn_cleanup, CookieAction, Error, Record, Result, Session, SessionConfig,
    SessionKey, SessionStore,
};
use session_memory::MemoryStore;

fn config() -> Arc<SessionConfig> {
    Arc::new(SessionConfig::default())
}

async fn new_session(store: &Arc<dyn SessionStore>) -> SessionKey {
    let s = Session::new(store.clone(), config(), None);
    s.insert("a", 1).await.expect("insert");
    match s.save().await.expect("save") {
        CookieAction::Set { key, .. } => key,
        other => panic!("{other:?}"),
    }
}

/// A store whose `update` always reports a concurrent write.
struct AlwaysConflict(MemoryStore);

#[async_trait]
impl SessionStore for AlwaysConflict {
    async fn create(&self, r: &Record) -> Result<()> {
        self.0.create(r).await
    }
    async fn load(&self, k: &SessionKey) -> Result<Option<Record>> {
        self.0.load(k).await
    }
    async fn update(&self, _: &Record) -> Result<u64> {
        Err(Error::Conflict)
    }
    async fn touch(&self, k: &SessionKey, e: DateTime<Utc>) -> Result<bool> {
        self.0.touch(k, e).await
    }
    async fn delete(&self, k: &SessionKey) -> Result<bool> {
        self.0.delete(k).await
    }
    async fn exists(&self, k: &SessionKey) -> Result<bool> {
        self.0.exists(k).await
    }
    async fn delete_expired(&self) -> Result<u64> {
        self.0.delete_expired().await
    }
    async fn list_for_user(&self, u: &str) -> Result<Vec<Record>> {
        self.0.list_for_user(u).await
    }
    async fn delete_for_user(&self, u: &str, e: Option<&SessionKey>) -> Result<u64> {
        self.0.delete_for_user(u, e).await
    }
}

#[tokio::test]
async fn conflict_retries_are_bounded() {
    let store: Arc<dyn SessionStore> = Arc::new(AlwaysConflict(MemoryStore::new()));
    let key = new_session(&store).await;
    let config = Arc::new(SessionConfig::default().with_max_conflict_retries(3));
    let s = Session::new(store, config, Some(key.as_str()));
    s.insert("b", 2).await.expect("insert");
    let err = s.save().await.expect_err("must give up");
    assert!(
        matches!(err, Error::ConflictRetriesExhausted { attempts: 4 }),
        "{err}"
    );
    // Nothing lost: the change is still in the handle.
    assert_eq!(s.get::<u32>("b").await.expect("get"), Some(2));
}

/// A store that is down for every call and counts them.
struct Down(AtomicU32);

fn down() -> Error {
    Error::unavailable(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
}

#[async_trait]
impl SessionStore for Down {
    async fn create(&self, _: &Record) -> Result<()> {
        Err(down())
    }
    async fn load(&self, _: &SessionKey) -> Result<Option<Record>> {
        Err(down())
    }
    async fn update(&self, _: &Record) -> Result<u64> {
        Err(down())
    }
    async fn touch(&self, _: &SessionKey, _: DateTime<Utc>) -> Result<bool> {
        Err(down())
    }
    async fn delete(&self, _: &SessionKey) -> Result<bool> {
        Err(down())
    }
    async fn exists(&self, _: &SessionKey) -> Result<bool> {
        Err(down())
    }
    async fn delete_expired(&self) -> Result<u64> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(down())
    }
    async fn list_for_user(&self, _: &str) -> Result<Vec<Record>> {
        Err(down())
    }
    async fn delete_for_user(&self, _: &str, _: Option<&SessionKey>) -> Result<u64> {
        Err(down())
    }
}

#[tokio::test]
async fn store_outage_surfaces_as_unavailable_and_keeps_changes() {
    let store: Arc<dyn SessionStore> = Arc::new(Down(AtomicU32::new(0)));
    let s = Session::new(
        store.clone(),
        config(),
        Some(SessionKey::generate().as_str()),
    );
    let err = s.get::<u32>("a").await.expect_err("load fails");
    assert!(err.is_unavailable());
    let fresh = Session::new(store, config(), None);
    fresh
        .insert("cart", 3)
        .await
        .expect("no load needed for a keyless session");
    assert!(fresh
        .save()
        .await
        .expect_err("create fails")
        .is_unavailable());
    assert_eq!(
        fresh.get::<u32>("cart").await.expect("still there"),
        Some(3)
    );
}

#[tokio::test]
async fn cleanup_task_keeps_going_after_errors_and_stops_on_shutdown() {
    let store = Arc::new(Down(AtomicU32::new(0)));
    let task = spawn_cleanup(store.clone(), Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.shutdown().await;
    let calls = store.0.load(Ordering::SeqCst);
    assert!(
        calls >= 3,
        "the task must retry after failures, ran {calls} times"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        store.0.load(Ordering::SeqCst),
        calls,
        "no runs after shutdown"
    );
}

#[tokio::test]
async fn cleanup_task_removes_expired_sessions() {
    let memory = Arc::new(MemoryStore::new());
    let expired = Record::new(
        SessionKey::generate(),
        "j1:{}".into(),
        Utc::now() - TimeDelta::seconds(1),
    );
    memory.create(&expired).await.expect("create");
    assert_eq!(memory.len(), 1);
    let task = spawn_cleanup(memory.clone(), Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(100)).await;
    task.shutdown().await;
    assert_eq!(memory.len(), 0);
}

#[tokio::test]
async fn save_every_request_touches_and_resends_cookie() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let key = new_session(&store).await;
    let before = store.load(&key).await.expect("load").expect("live");
    let config = Arc::new(SessionConfig::default().with_save_every_request(true));
    let s = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    // Untouched by the handler, but always-save refreshes it.
    assert!(matches!(
        s.save().await.expect("save"),
        CookieAction::Set { .. }
    ));
    let after = store.load(&key).await.expect("load").expect("live");
    assert_eq!(after.version, before.version, "a touch, not a rewrite");
    assert!(after.expires_at >= before.expires_at);
    // An empty session is still not stored.
    let empty = Session::new(store, config, None);
    assert_eq!(empty.save().await.expect("save"), CookieAction::Unchanged);
}

#[tokio::test]
async fn cycle_key_without_further_changes_still_sets_the_cookie_once() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let key = new_session(&store).await;
    let s = Session::new(store.clone(), config(), Some(key.as_str()));
    s.cycle_key().await.expect("cycle");
    let new_key = s.key().await.expect("key");
    let version = store
        .load(&new_key)
        .await
        .expect("load")
        .expect("live")
        .version;
    match s.save().await.expect("save") {
        CookieAction::Set { key, .. } => assert_eq!(key, new_key),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .load(&new_key)
            .await
            .expect("load")
            .expect("live")
            .version,
        version,
        "cycle_key already wrote the data; save must not write it again"
    );
    assert_eq!(s.save().await.expect("save"), CookieAction::Unchanged);
}

#[tokio::test]
async fn removing_a_missing_key_does_not_modify() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let key = new_session(&store).await;
    let s = Session::new(store, config(), Some(key.as_str()));
    assert_eq!(s.remove_value("nope").await.expect("remove"), None);
    assert!(s.is_accessed());
    assert!(!s.is_modified());
}

#[tokio::test]
async fn past_absolute_expiry_makes_the_session_vanish() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let key = new_session(&store).await;
    let s = Session::new(store.clone(), config(), Some(key.as_str()));
    s.set_expiry(session_core::Expiry::At(Utc::now() - TimeDelta::seconds(5)))
        .await
        .expect("set_expiry");
    assert!(
        s.expiry_age().await.expect("age").num_seconds() < 0,
        "Django allows negative ages"
    );
    s.save().await.expect("saving a past expiry is allowed");
    assert!(!store.exists(&key).await.expect("exists"));
}
