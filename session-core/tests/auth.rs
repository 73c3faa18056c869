//! The session auth hash (Django's `_auth_user_hash` / `update_session_auth_hash`) and
//! "login required", on the memory store.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use session_core::chrono::{DateTime, Utc};
use session_core::{
    async_trait, auth_hash_fn, login_redirect_url, AuthHashSource, CookieAction, Error, Record,
    RequireUserError, Session, SessionConfig, SessionKey, SessionStore, StoreError, StoreResult,
    AUTH_HASH_KEY, AUTH_USER_KEY,
};
use session_memory::MemoryStore;

/// The application's user table: the current stamp per user, and how often it was asked.
#[derive(Default)]
struct Users {
    stamps: Mutex<Vec<(String, String)>>,
    asked: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

impl Users {
    fn set(&self, user: &str, stamp: &str) {
        let mut stamps = self.stamps.lock().unwrap();
        stamps.retain(|(u, _)| u != user);
        stamps.push((user.to_owned(), stamp.to_owned()));
    }
    fn remove(&self, user: &str) {
        self.stamps.lock().unwrap().retain(|(u, _)| u != user);
    }
    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

struct Source(Arc<Users>);

#[async_trait]
impl AuthHashSource for Source {
    async fn current_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
        self.0.asked.fetch_add(1, Ordering::SeqCst);
        if self.0.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other(
                "users db down",
            )));
        }
        let stamps = self.0.stamps.lock().unwrap();
        Ok(stamps
            .iter()
            .find(|(u, _)| u == user_id)
            .map(|(_, s)| s.clone()))
    }
}

/// Counts the store calls.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    loads: AtomicUsize,
    writes: AtomicUsize,
    deletes: AtomicUsize,
}

#[async_trait]
impl SessionStore for Counting {
    async fn create(&self, r: &Record) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.create(r).await
    }
    async fn load(&self, k: &SessionKey) -> StoreResult<Option<Record>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(k).await
    }
    async fn update(&self, r: &Record) -> StoreResult<u64> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.update(r).await
    }
    async fn touch(&self, k: &SessionKey, at: DateTime<Utc>) -> StoreResult<bool> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.touch(k, at).await
    }
    async fn delete(&self, k: &SessionKey) -> StoreResult<bool> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(k).await
    }
    async fn delete_at_version(&self, k: &SessionKey, v: u64) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_at_version(k, v).await
    }
}

struct World {
    store: Arc<Counting>,
    users: Arc<Users>,
    config: Arc<SessionConfig>,
}

impl World {
    fn new() -> Self {
        let users = Arc::new(Users::default());
        let config = SessionConfig::default()
            .with_auth_hash_source(Source(users.clone()))
            .with_touch_interval(None);
        Self {
            store: Arc::new(Counting::default()),
            users,
            config: Arc::new(config),
        }
    }
    fn dyn_store(&self) -> Arc<dyn SessionStore> {
        self.store.clone()
    }
    fn session(&self, key: Option<&SessionKey>) -> Session {
        Session::with_key(
            self.dyn_store(),
            self.config.clone(),
            key.cloned(),
            key.is_some(),
        )
    }
    /// A device that logs `user` in with the current stamp and saves: its cookie key.
    async fn device(&self, user: &str) -> SessionKey {
        let stamp = self.stamp(user);
        let s = self.session(None);
        s.insert("theme", "dark").await.unwrap();
        s.login_with_auth_hash(user, stamp).await.unwrap();
        cookie_key(s.save().await.unwrap())
    }
    fn stamp(&self, user: &str) -> String {
        let stamps = self.users.stamps.lock().unwrap();
        stamps.iter().find(|(u, _)| u == user).unwrap().1.clone()
    }
}

fn cookie_key(action: CookieAction) -> SessionKey {
    match action {
        CookieAction::Set { key, .. } => key,
        other => panic!("expected a cookie, got {other:?}"),
    }
}

#[tokio::test]
async fn login_with_auth_hash_stores_django_keys_and_survives_matching_loads() {
    let w = World::new();
    w.users.set("alice", "v1");
    let key = w.device("alice").await;
    assert_eq!(w.users.asked(), 0, "a login does not ask the source");

    let s = w.session(Some(&key));
    assert_eq!(s.user_id().await.unwrap().as_deref(), Some("alice"));
    assert_eq!(
        s.get::<String>(AUTH_HASH_KEY).await.unwrap().as_deref(),
        Some("v1")
    );
    assert_eq!(
        s.get::<String>(AUTH_USER_KEY).await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(
        s.get::<String>("theme").await.unwrap().as_deref(),
        Some("dark")
    );
    assert_eq!(w.users.asked(), 1, "one check per load, not per access");
    assert_eq!(s.save().await.unwrap(), CookieAction::Unchanged);
}

#[tokio::test]
async fn a_mismatch_on_load_logs_the_session_out() {
    let w = World::new();
    w.users.set("alice", "v1");
    let key = w.device("alice").await;
    w.users.set("alice", "v2");

    let s = w.session(Some(&key));
    assert_eq!(s.user_id().await.unwrap(), None);
    assert_eq!(
        s.get::<String>("theme").await.unwrap(),
        None,
        "data flushed"
    );
    assert!(!w.store.exists(&key).await.unwrap(), "record deleted");
    assert!(matches!(
        s.require_user().await,
        Err(RequireUserError::NotLoggedIn(_))
    ));
    assert_eq!(s.save().await.unwrap(), CookieAction::Remove);
}

#[tokio::test]
async fn password_change_ends_other_devices_but_not_the_one_that_updated_the_hash() {
    let w = World::new();
    w.users.set("alice", "v1");
    let laptop = w.device("alice").await;
    let phone = w.device("alice").await;
    let tablet = w.device("alice").await;

    // The laptop changes the password: the session is loaded (login required) first.
    let s = w.session(Some(&laptop));
    assert_eq!(s.require_user().await.unwrap(), "alice");
    w.users.set("alice", "v2"); // the new password's hash
    assert!(s.update_auth_hash("v2").await.unwrap());
    let laptop_new = cookie_key(s.save().await.unwrap());
    assert_ne!(laptop_new, laptop, "the key is rotated, as Django does");
    assert!(!w.store.exists(&laptop).await.unwrap());

    // The laptop stays logged in, with its data.
    let s = w.session(Some(&laptop_new));
    assert_eq!(s.require_user().await.unwrap(), "alice");
    assert_eq!(
        s.get::<String>("theme").await.unwrap().as_deref(),
        Some("dark")
    );
    assert_eq!(s.save().await.unwrap(), CookieAction::Unchanged);

    // Every other device is logged out at its next request.
    for device in [phone, tablet] {
        let s = w.session(Some(&device));
        assert!(matches!(
            s.require_user().await,
            Err(RequireUserError::NotLoggedIn(_))
        ));
        assert_eq!(s.save().await.unwrap(), CookieAction::Remove);
        assert!(!w.store.exists(&device).await.unwrap());
    }
}

#[tokio::test]
async fn sessions_without_a_hash_never_ask_the_source_and_cost_no_extra_store_call() {
    let w = World::new();
    w.users.set("alice", "v1");
    let s = w.session(None);
    s.login("alice").await.unwrap();
    let key = cookie_key(s.save().await.unwrap());
    let (loads, writes, deletes) = (
        w.store.loads.load(Ordering::SeqCst),
        w.store.writes.load(Ordering::SeqCst),
        w.store.deletes.load(Ordering::SeqCst),
    );

    let s = w.session(Some(&key));
    assert_eq!(s.require_user().await.unwrap(), "alice");
    assert_eq!(s.save().await.unwrap(), CookieAction::Unchanged);
    assert_eq!(w.users.asked(), 0);
    assert_eq!(w.store.loads.load(Ordering::SeqCst), loads + 1);
    assert_eq!(w.store.writes.load(Ordering::SeqCst), writes);
    assert_eq!(w.store.deletes.load(Ordering::SeqCst), deletes);
}

#[tokio::test]
async fn a_matching_hash_costs_one_source_call_and_no_extra_store_call() {
    let w = World::new();
    w.users.set("alice", "v1");
    let key = w.device("alice").await;
    let loads = w.store.loads.load(Ordering::SeqCst);
    let writes = w.store.writes.load(Ordering::SeqCst);
    let s = w.session(Some(&key));
    assert_eq!(s.require_user().await.unwrap(), "alice");
    s.save().await.unwrap();
    assert_eq!(w.store.loads.load(Ordering::SeqCst), loads + 1);
    assert_eq!(w.store.writes.load(Ordering::SeqCst), writes);
    assert_eq!(w.store.deletes.load(Ordering::SeqCst), 0);
    assert_eq!(w.users.asked(), 1);
}

#[tokio::test]
async fn a_deleted_user_is_logged_out() {
    let w = World::new();
    w.users.set("alice", "v1");
    let key = w.device("alice").await;
    w.users.remove("alice");
    let s = w.session(Some(&key));
    assert_eq!(s.user_id().await.unwrap(), None);
    assert!(!w.store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn a_source_error_fails_the_access_and_the_next_access_checks_again() {
    let w = World::new();
    w.users.set("alice", "v1");
    let key = w.device("alice").await;
    w.users.set("alice", "v2");
    w.users.down.store(true, Ordering::SeqCst);

    let s = w.session(Some(&key));
    let err = s.user_id().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    // Still failing: never served unchecked.
    assert!(s.get::<String>("theme").await.is_err());
    assert!(matches!(
        s.require_user().await,
        Err(RequireUserError::Session(ref e)) if e.is_unavailable()
    ));
    w.users.down.store(false, Ordering::SeqCst);
    assert_eq!(
        s.user_id().await.unwrap(),
        None,
        "checked once the source is back"
    );
    assert!(!w.store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn without_a_source_the_hash_is_not_checked() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let config = Arc::new(SessionConfig::default());
    let s = Session::new(store.clone(), config.clone(), None);
    s.login_with_auth_hash("alice", "v1").await.unwrap();
    let key = cookie_key(s.save().await.unwrap());
    let s = Session::new(store, config, Some(key.as_str()));
    assert_eq!(s.user_id().await.unwrap().as_deref(), Some("alice"));
}

#[tokio::test]
async fn relogin_follows_djangos_flush_rules() {
    let w = World::new();
    w.users.set("alice", "v1");
    let key = w.device("alice").await;

    // Same user, same hash: rotated, data kept.
    let s = w.session(Some(&key));
    s.login_with_auth_hash("alice", "v1").await.unwrap();
    let key2 = cookie_key(s.save().await.unwrap());
    assert_ne!(key2, key);
    assert_eq!(
        s.get::<String>("theme").await.unwrap().as_deref(),
        Some("dark")
    );

    // Same user, another hash (the password changed and they log in again): flushed.
    w.users.set("alice", "v2");
    let s = Session::with_key(
        w.dyn_store(),
        Arc::new(SessionConfig::default()), // loaded without the check
        Some(key2.clone()),
        true,
    );
    s.login_with_auth_hash("alice", "v2").await.unwrap();
    let key3 = cookie_key(s.save().await.unwrap());
    assert_eq!(s.get::<String>("theme").await.unwrap(), None);
    assert_eq!(
        s.get::<String>(AUTH_HASH_KEY).await.unwrap().as_deref(),
        Some("v2")
    );
    assert!(!w.store.exists(&key2).await.unwrap());

    // Another user: flushed.
    w.users.set("bob", "b1");
    let s = w.session(Some(&key3));
    s.login_with_auth_hash("bob", "b1").await.unwrap();
    s.save().await.unwrap();
    assert_eq!(s.user_id().await.unwrap().as_deref(), Some("bob"));
    assert_eq!(
        s.get::<String>(AUTH_USER_KEY).await.unwrap().as_deref(),
        Some("bob")
    );
}

#[tokio::test]
async fn a_plain_login_leaves_no_stale_hash() {
    let w = World::new();
    w.users.set("alice", "v1");
    let key = w.device("alice").await;
    let s = w.session(Some(&key));
    s.login("alice").await.unwrap();
    s.save().await.unwrap();
    assert!(!s.contains_key(AUTH_HASH_KEY).await.unwrap());
    assert!(!s.contains_key(AUTH_USER_KEY).await.unwrap());
    assert_eq!(
        s.get::<String>("theme").await.unwrap().as_deref(),
        Some("dark")
    );
}

#[tokio::test]
async fn update_auth_hash_needs_a_logged_in_user() {
    let w = World::new();
    let s = w.session(None);
    s.insert("a", 1).await.unwrap();
    assert!(!s.update_auth_hash("v9").await.unwrap());
    assert!(!s.contains_key(AUTH_HASH_KEY).await.unwrap());
}

#[tokio::test]
async fn a_non_string_or_userless_hash_is_a_mismatch() {
    let w = World::new();
    w.users.set("alice", "v1");
    // A session whose hash is not a string (hand-written data): logged out on load.
    let s = w.session(None);
    s.login("alice").await.unwrap();
    s.insert(AUTH_HASH_KEY, 42).await.unwrap();
    let key = cookie_key(s.save().await.unwrap());
    let s = w.session(Some(&key));
    assert_eq!(s.user_id().await.unwrap(), None);

    // A hash with no user at all: logged out too.
    let s = w.session(None);
    s.insert(AUTH_HASH_KEY, "v1").await.unwrap();
    let key = cookie_key(s.save().await.unwrap());
    let s = w.session(Some(&key));
    assert_eq!(s.get::<String>(AUTH_HASH_KEY).await.unwrap(), None);
    assert!(!w.store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn the_closure_source_works() {
    let stamp = Arc::new(Mutex::new("v1".to_owned()));
    let users = stamp.clone();
    let config = Arc::new(SessionConfig::default().with_auth_hash_source(auth_hash_fn(
        move |user: String| {
            let current = (user == "alice").then(|| users.lock().unwrap().clone());
            async move { Ok(current) }
        },
    )));
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let s = Session::new(store.clone(), config.clone(), None);
    s.login_with_auth_hash("alice", "v1").await.unwrap();
    let key = cookie_key(s.save().await.unwrap());
    let s = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    assert_eq!(s.user_id().await.unwrap().as_deref(), Some("alice"));
    *stamp.lock().unwrap() = "v2".to_owned();
    let s = Session::new(store, config, Some(key.as_str()));
    assert_eq!(s.user_id().await.unwrap(), None);
}

#[tokio::test]
async fn save_every_request_checks_the_hash_too() {
    let users = Arc::new(Users::default());
    users.set("alice", "v1");
    let config = Arc::new(
        SessionConfig::default()
            .with_auth_hash_source(Source(users.clone()))
            .with_save_every_request(true),
    );
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let s = Session::new(store.clone(), config.clone(), None);
    s.login_with_auth_hash("alice", "v1").await.unwrap();
    let key = cookie_key(s.save().await.unwrap());
    users.set("alice", "v2");
    // The handler never touched the session; the always-save load still checks.
    let s = Session::new(store.clone(), config, Some(key.as_str()));
    assert_eq!(s.save().await.unwrap(), CookieAction::Remove);
    assert!(!store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn require_user_carries_the_login_url() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let s = Session::new(
        store.clone(),
        Arc::new(SessionConfig::default().with_login_url("/accounts/login/")),
        None,
    );
    match s.require_user().await {
        Err(RequireUserError::NotLoggedIn(n)) => {
            assert_eq!(n.login_url(), Some("/accounts/login/"));
            assert_eq!(
                n.redirect_location("/private/?a=1&b=x y").as_deref(),
                Some("/accounts/login/?next=/private/%3Fa%3D1%26b%3Dx%20y")
            );
        }
        other => panic!("{other:?}"),
    }
    let s = Session::new(store, Arc::new(SessionConfig::default()), None);
    match s.require_user().await {
        Err(RequireUserError::NotLoggedIn(n)) => assert_eq!(n.redirect_location("/x"), None),
        other => panic!("{other:?}"),
    }
    // A session error is not "not logged in".
    let e: RequireUserError = Error::Interrupted.into();
    assert!(matches!(e, RequireUserError::Session(Error::Interrupted)));
}

#[test]
fn redirect_urls_encode_next_like_django() {
    // Python: quote(next, safe="/") — unreserved characters and "/" stay.
    assert_eq!(
        login_redirect_url("/login/", "/a-b_c.d~e/"),
        "/login/?next=/a-b_c.d~e/"
    );
    assert_eq!(
        login_redirect_url("/login/", "/ünï?q=#x"),
        "/login/?next=/%C3%BCn%C3%AF%3Fq%3D%23x"
    );
    assert_eq!(login_redirect_url("/login?", "/"), "/login?next=/");
    assert_eq!(
        login_redirect_url("https://sso.example/login?app=1", "/x"),
        "https://sso.example/login?app=1&next=/x"
    );
}
