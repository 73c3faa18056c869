//! Behaviour of the `Session` handle and the cleanup task beyond the conformance suite.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use session_core::chrono::{DateTime, TimeDelta, Utc};
use session_core::{
    async_trait, spawn_cleanup, CookieAction, Error, ExpiredCleanup, Record, Session,
    SessionConfig, SessionKey, SessionStore, StoreError, StoreResult,
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
    async fn create(&self, r: &Record) -> StoreResult<()> {
        self.0.create(r).await
    }
    async fn load(&self, k: &SessionKey) -> StoreResult<Option<Record>> {
        self.0.load(k).await
    }
    async fn update(&self, _: &Record) -> StoreResult<u64> {
        Err(StoreError::Conflict)
    }
    async fn touch(&self, k: &SessionKey, e: DateTime<Utc>) -> StoreResult<bool> {
        self.0.touch(k, e).await
    }
    async fn delete(&self, k: &SessionKey) -> StoreResult<bool> {
        self.0.delete(k).await
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

fn down() -> StoreError {
    StoreError::unavailable(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
}

#[async_trait]
impl SessionStore for Down {
    async fn create(&self, _: &Record) -> StoreResult<()> {
        Err(down())
    }
    async fn load(&self, _: &SessionKey) -> StoreResult<Option<Record>> {
        Err(down())
    }
    async fn update(&self, _: &Record) -> StoreResult<u64> {
        Err(down())
    }
    async fn touch(&self, _: &SessionKey, _: DateTime<Utc>) -> StoreResult<bool> {
        Err(down())
    }
    async fn delete(&self, _: &SessionKey) -> StoreResult<bool> {
        Err(down())
    }
    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        Some(self)
    }
}

#[async_trait]
impl ExpiredCleanup for Down {
    async fn delete_expired(&self) -> StoreResult<u64> {
        self.0.fetch_add(1, Ordering::SeqCst);
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
async fn cycle_key_takes_effect_at_save_and_sets_the_cookie_once() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let key = new_session(&store).await;
    let s = Session::new(store.clone(), config(), Some(key.as_str()));
    s.cycle_key().await.expect("cycle");
    assert_eq!(
        s.key().await,
        Some(key.clone()),
        "nothing rotates before the save"
    );
    assert!(store.exists(&key).await.expect("exists"));
    let new_key = match s.save().await.expect("save") {
        CookieAction::Set { key, .. } => key,
        other => panic!("{other:?}"),
    };
    assert_ne!(new_key, key);
    assert_eq!(s.key().await, Some(new_key.clone()));
    assert!(!store.exists(&key).await.expect("exists"));
    assert!(store.exists(&new_key).await.expect("exists"));
    assert_eq!(s.save().await.expect("save"), CookieAction::Unchanged);
    assert_eq!(
        s.finish().await.expect("finish"),
        CookieAction::Set {
            key: new_key,
            max_age: Some(Duration::from_secs(14 * 24 * 3600))
        }
    );
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

/// Counts calls per operation; `id` makes two wrappers over one store look like two
/// processes to the handle (in-process save turns are per store object).
#[derive(Default)]
struct Calls {
    create: AtomicU32,
    load: AtomicU32,
    update: AtomicU32,
    delete: AtomicU32,
    delete_at_version: AtomicU32,
}

struct Counted(Arc<MemoryStore>, Arc<Calls>);

#[async_trait]
impl SessionStore for Counted {
    async fn create(&self, r: &Record) -> StoreResult<()> {
        self.1.create.fetch_add(1, Ordering::SeqCst);
        self.0.create(r).await
    }
    async fn load(&self, k: &SessionKey) -> StoreResult<Option<Record>> {
        self.1.load.fetch_add(1, Ordering::SeqCst);
        self.0.load(k).await
    }
    async fn update(&self, r: &Record) -> StoreResult<u64> {
        self.1.update.fetch_add(1, Ordering::SeqCst);
        self.0.update(r).await
    }
    async fn touch(&self, k: &SessionKey, e: DateTime<Utc>) -> StoreResult<bool> {
        self.0.touch(k, e).await
    }
    async fn delete(&self, k: &SessionKey) -> StoreResult<bool> {
        self.1.delete.fetch_add(1, Ordering::SeqCst);
        self.0.delete(k).await
    }
    async fn delete_at_version(&self, k: &SessionKey, v: u64) -> StoreResult<()> {
        self.1.delete_at_version.fetch_add(1, Ordering::SeqCst);
        self.0.delete_at_version(k, v).await
    }
}

fn counted(memory: &Arc<MemoryStore>) -> (Arc<dyn SessionStore>, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    (Arc::new(Counted(memory.clone(), calls.clone())), calls)
}

fn writes(calls: &Calls) -> u32 {
    calls.create.load(Ordering::SeqCst)
        + calls.update.load(Ordering::SeqCst)
        + calls.delete.load(Ordering::SeqCst)
        + calls.delete_at_version.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_login_costs_two_store_writes_whatever_the_call_order() {
    let memory = Arc::new(MemoryStore::new());
    for order in 0..3 {
        let (store, calls) = counted(&memory);
        let key = new_session(&store).await;
        let before = writes(&calls);
        let s = Session::new(store.clone(), config(), Some(key.as_str()));
        match order {
            0 => {
                s.login("alice").await.expect("login");
                s.insert("csrf", "t").await.expect("insert");
            }
            1 => {
                s.insert("csrf", "t").await.expect("insert");
                s.login("alice").await.expect("login");
            }
            _ => {
                s.set_user(Some("alice")).await.expect("set_user");
                s.cycle_key().await.expect("cycle");
                s.update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
                    .await
                    .expect("update");
            }
        }
        s.save().await.expect("save");
        assert_eq!(writes(&calls) - before, 2, "order {order}");
        assert_eq!(calls.delete_at_version.load(Ordering::SeqCst), 1);
        assert!(!store.exists(&key).await.expect("exists"));
    }
}

#[tokio::test]
async fn login_on_another_users_session_flushes_it() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let s = Session::new(store.clone(), config(), None);
    s.login("alice").await.expect("login");
    s.insert("cart", ["apple"]).await.expect("insert");
    let CookieAction::Set { key: alice, .. } = s.save().await.expect("save") else {
        panic!("cookie")
    };
    let s = Session::new(store.clone(), config(), Some(alice.as_str()));
    s.login("bob").await.expect("login");
    let CookieAction::Set { key: bob, .. } = s.save().await.expect("save") else {
        panic!("cookie")
    };
    assert_ne!(bob, alice);
    assert!(!store.exists(&alice).await.expect("exists"));
    let bob = Session::new(store.clone(), config(), Some(bob.as_str()));
    assert_eq!(bob.get::<Vec<String>>("cart").await.expect("get"), None);
    assert_eq!(bob.user_id().await.expect("user").as_deref(), Some("bob"));
    // The same user logging in again keeps the data (key rotated).
    bob.insert("cart", ["pear"]).await.expect("insert");
    bob.login("bob").await.expect("login");
    bob.save().await.expect("save");
    assert_eq!(
        bob.get::<Vec<String>>("cart").await.expect("get"),
        Some(vec!["pear".to_owned()])
    );
}

/// In one process, 32 requests on one session that all loaded the same version save one
/// after the other without a single failed compare-and-swap: 32 updates, no reloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_session_saves_in_one_process_never_conflict() {
    let memory = Arc::new(MemoryStore::new());
    let (store, calls) = counted(&memory);
    let key = new_session(&store).await;
    let handles: Vec<Session> = (0..32)
        .map(|_| Session::new(store.clone(), config(), Some(key.as_str())))
        .collect();
    for s in &handles {
        s.update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .expect("update");
    }
    let loads_before = calls.load.load(Ordering::SeqCst);
    let tasks: Vec<_> = handles
        .into_iter()
        .map(|s| tokio::spawn(async move { s.save().await }))
        .collect();
    for task in tasks {
        task.await.expect("task").expect("save");
    }
    assert_eq!(
        calls.update.load(Ordering::SeqCst),
        32,
        "one write per save"
    );
    assert_eq!(
        calls.load.load(Ordering::SeqCst),
        loads_before,
        "no reload after a conflict"
    );
    let s = Session::new(store, config(), Some(key.as_str()));
    assert_eq!(s.get::<u64>("counter").await.expect("get"), Some(32));
}

/// Two "processes" (two store objects over one store) updating one counter: every
/// increment survives; conflicts between them are replayed, not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_closures_compose_across_processes() {
    let memory = Arc::new(MemoryStore::new());
    let (a, calls_a) = counted(&memory);
    let (b, _) = counted(&memory);
    let key = new_session(&a).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let cookie = key.as_str().to_owned();
        tasks.push(tokio::spawn(async move {
            let s = Session::new(store, config(), Some(&cookie));
            s.update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
                .await?;
            s.save().await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("save");
    }
    let s = Session::new(a, config(), Some(key.as_str()));
    assert_eq!(s.get::<u64>("counter").await.expect("get"), Some(64));
    assert!(calls_a.update.load(Ordering::SeqCst) >= 32);
}

/// A rotation whose data is over the size limit fails before anything is deleted.
#[tokio::test]
async fn oversized_rotation_deletes_nothing() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let key = new_session(&store).await;
    let small = Arc::new(SessionConfig::default().with_max_data_len(64));
    let s = Session::new(store.clone(), small, Some(key.as_str()));
    s.login("alice").await.expect("login");
    s.insert("big", "x".repeat(100)).await.expect("insert");
    let err = s.save().await.expect_err("too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(store.exists(&key).await.expect("the old session is intact"));
}

/// The default `delete_at_version` (for stores that only implement the five required
/// methods) is a compare-and-delete.
#[tokio::test]
async fn default_delete_at_version_is_compare_and_delete() {
    struct Minimal(MemoryStore);
    #[async_trait]
    impl SessionStore for Minimal {
        async fn create(&self, r: &Record) -> StoreResult<()> {
            self.0.create(r).await
        }
        async fn load(&self, k: &SessionKey) -> StoreResult<Option<Record>> {
            self.0.load(k).await
        }
        async fn update(&self, r: &Record) -> StoreResult<u64> {
            self.0.update(r).await
        }
        async fn touch(&self, k: &SessionKey, e: DateTime<Utc>) -> StoreResult<bool> {
            self.0.touch(k, e).await
        }
        async fn delete(&self, k: &SessionKey) -> StoreResult<bool> {
            self.0.delete(k).await
        }
    }
    let store = Minimal(MemoryStore::new());
    let record = Record::new(
        SessionKey::generate(),
        "j1:{}".into(),
        Utc::now() + TimeDelta::hours(1),
    );
    store.create(&record).await.expect("create");
    assert!(matches!(
        store.delete_at_version(&record.key, 7).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.exists(&record.key).await.expect("exists"));
    store
        .delete_at_version(&record.key, 1)
        .await
        .expect("delete");
    assert!(!store.exists(&record.key).await.expect("exists"));
    assert_eq!(store.0.len(), 0, "the retired row is freed");
    assert!(matches!(
        store.delete_at_version(&record.key, 1).await,
        Err(StoreError::NotFound)
    ));
}
