//! The conformance cases. Each is an `async fn(Suite)` that panics when the store breaks the
//! contract named in its documentation.
//!
//! Cases never assume they are alone in the process, but the factory must give each case its
//! own table or key prefix (cases count rows in `delete_expired`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use session_core::chrono::{DateTime, TimeDelta, Utc};
use session_core::{
    Codec, CookieAction, Error, Expiry, Record, Session, SessionConfig, SessionKey, SessionMap,
    SessionStore, StoreError,
};

use crate::CountingStore;

/// What every case gets: the store under test and the codec whose output it stores.
#[derive(Clone)]
pub struct Suite {
    /// The store under test.
    pub store: Arc<dyn SessionStore>,
    /// The codec used to produce record data (and by the handle cases).
    pub codec: Arc<dyn Codec>,
}

impl std::fmt::Debug for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite").finish_non_exhaustive()
    }
}

impl Suite {
    /// A suite over `store`, giving it `codec`'s output.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let suite = session_conformance::Suite::new(
    ///     Arc::new(session_memory::MemoryStore::new()),
    ///     session_conformance::default_codec(),
    /// );
    /// # let _ = suite;
    /// ```
    pub fn new(store: Arc<dyn SessionStore>, codec: Arc<dyn Codec>) -> Self {
        Self { store, codec }
    }

    /// Encodes a JSON object with the suite's codec.
    ///
    /// # Panics
    ///
    /// If `value` is not an object or the codec fails.
    pub fn data(&self, value: Value) -> String {
        let Value::Object(map) = value else {
            panic!("conformance: test data must be a JSON object")
        };
        self.codec
            .encode(&map)
            .expect("conformance: the codec must encode test data")
    }

    /// A fresh record with `value` as data, expiring `expires_in` from now.
    pub fn record(&self, value: Value, expires_in: TimeDelta) -> Record {
        Record::new(
            SessionKey::generate(),
            self.data(value),
            Utc::now() + expires_in,
        )
    }

    fn decoded(&self, data: &str) -> SessionMap {
        self.codec
            .decode(data)
            .expect("conformance: stored data must decode with the suite's codec")
    }

    /// Asserts that `loaded` holds the same session data as `expected` (the same map once
    /// decoded; stores with a JSON column may normalise the text).
    pub fn assert_same_data(&self, loaded: &str, expected: &str) {
        if loaded != expected {
            assert_eq!(
                self.decoded(loaded),
                self.decoded(expected),
                "stored data must come back unchanged"
            );
        }
    }

    fn config(&self) -> SessionConfig {
        SessionConfig::default().with_shared_codec(self.codec.clone())
    }

    fn session(&self, config: &Arc<SessionConfig>, cookie: Option<&str>) -> Session {
        Session::new(self.store.clone(), config.clone(), cookie)
    }
}

const HOUR: TimeDelta = TimeDelta::hours(1);

/// `len` characters that no codec can compress much (a xorshift stream over 64 symbols), so
/// size limits and large-payload cases mean the same with a compressing codec.
fn incompressible(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state >> 58) as usize] as char
        })
        .collect()
}

fn user() -> String {
    format!("user-{}", SessionKey::generate().as_str())
}

fn close(a: DateTime<Utc>, b: DateTime<Utc>, tolerance: TimeDelta) -> bool {
    (a - b).abs() <= tolerance
}

#[track_caller]
fn assert_close(a: DateTime<Utc>, b: DateTime<Utc>, tolerance: TimeDelta, what: &str) {
    assert!(
        close(a, b, tolerance),
        "{what}: {a} vs {b} (tolerance {tolerance})"
    );
}

/// A millisecond plus rounding: every store keeps at least millisecond precision.
const MS: TimeDelta = TimeDelta::milliseconds(1);

async fn must_load(suite: &Suite, key: &SessionKey) -> Record {
    suite
        .store
        .load(key)
        .await
        .expect("load must not fail")
        .expect("record must be live")
}

/// Reports (and checks) that a store declared no user index.
async fn user_index_unsupported(suite: &Suite, case: &str) -> bool {
    if suite.store.user_index().is_some() {
        return false;
    }
    let err = suite.store.list_for_user("someone").await;
    assert!(
        matches!(err, Err(StoreError::Unsupported { .. })),
        "a store without a user index must answer Unsupported, got {err:?}"
    );
    let err = suite.store.delete_for_user("someone", None).await;
    assert!(matches!(err, Err(StoreError::Unsupported { .. })));
    eprintln!("conformance: {case}: NOT EXERCISED, the store declares no user index (checked that it answers Unsupported)");
    true
}

// ---------------------------------------------------------------------------------------
// Store contract
// ---------------------------------------------------------------------------------------

/// `create` then `load` returns the record: key, data, expiry (to the millisecond),
/// version, user, and device metadata where supported.
pub async fn create_then_load_round_trips(suite: Suite) {
    let mut record = suite.record(json!({"user_id": 42, "cart": ["apple", "pear"]}), HOUR);
    if suite.store.user_index().is_some() {
        record.user_id = Some(user());
    }
    if suite.store.capabilities().device_metadata {
        record.user_agent = Some("Mozilla/5.0 (conformance)".into());
        record.ip = Some("203.0.113.9".into());
        record.last_active_at = Some(Utc::now());
    }
    suite.store.create(&record).await.expect("create");
    let loaded = must_load(&suite, &record.key).await;
    assert_eq!(loaded.key, record.key);
    suite.assert_same_data(&loaded.data, &record.data);
    assert_close(loaded.expires_at, record.expires_at, MS, "expires_at");
    if suite.store.capabilities().exact_versions {
        assert_eq!(loaded.version, record.version);
    }
    assert_eq!(loaded.user_id, record.user_id);
    if suite.store.capabilities().device_metadata {
        assert_close(loaded.created_at, record.created_at, MS, "created_at");
        assert_eq!(loaded.user_agent, record.user_agent);
        assert_eq!(loaded.ip, record.ip);
        let (Some(a), Some(b)) = (loaded.last_active_at, record.last_active_at) else {
            panic!("last_active_at must round-trip")
        };
        assert_close(a, b, MS, "last_active_at");
    }
}

/// `load` of a key that was never stored is `None`.
pub async fn load_missing_is_none(suite: Suite) {
    assert!(suite
        .store
        .load(&SessionKey::generate())
        .await
        .expect("load")
        .is_none());
}

/// `create` over a live record with the same key fails with `KeyExists`.
pub async fn create_live_key_is_key_exists(suite: Suite) {
    let record = suite.record(json!({"a": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    let err = suite.store.create(&record).await;
    assert!(matches!(err, Err(StoreError::KeyExists)), "got {err:?}");
}

/// A failed `create` (collision) leaves the original record untouched.
pub async fn create_collision_keeps_original(suite: Suite) {
    let first = suite.record(json!({"owner": "first"}), HOUR);
    suite.store.create(&first).await.expect("create");
    let mut second = suite.record(json!({"owner": "second"}), HOUR * 2);
    second.key = first.key.clone();
    assert!(matches!(
        suite.store.create(&second).await,
        Err(StoreError::KeyExists)
    ));
    let loaded = must_load(&suite, &first.key).await;
    suite.assert_same_data(&loaded.data, &first.data);
    assert_close(loaded.expires_at, first.expires_at, MS, "expires_at");
}

/// An expired record counts as absent for `create`: it is replaced.
pub async fn create_over_expired_row_succeeds(suite: Suite) {
    let old = suite.record(json!({"gen": "old"}), -TimeDelta::seconds(5));
    suite.store.create(&old).await.expect("create expired");
    let mut new = suite.record(json!({"gen": "new"}), HOUR);
    new.key = old.key.clone();
    suite
        .store
        .create(&new)
        .await
        .expect("create over an expired row must succeed");
    let loaded = must_load(&suite, &new.key).await;
    suite.assert_same_data(&loaded.data, &new.data);
}

/// 32 tasks race `create` on one key: exactly one wins, the rest get `KeyExists`.
pub async fn concurrent_creates_exactly_one_wins(suite: Suite) {
    let key = SessionKey::generate();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = suite.store.clone();
        let mut record = suite.record(json!({ "writer": i }), HOUR);
        record.key = key.clone();
        tasks.push(tokio::spawn(async move { store.create(&record).await }));
    }
    let (mut won, mut lost) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => won += 1,
            Err(StoreError::KeyExists) => lost += 1,
            Err(err) => panic!("unexpected error in racing create: {err}"),
        }
    }
    assert_eq!((won, lost), (1, 31));
    assert!(suite.store.exists(&key).await.expect("exists"));
}

/// A record created already expired is absent at once (load, exists, touch, update).
pub async fn created_already_expired_is_absent(suite: Suite) {
    let record = suite.record(json!({"a": 1}), -TimeDelta::seconds(1));
    suite.store.create(&record).await.expect("create");
    assert!(suite.store.load(&record.key).await.expect("load").is_none());
    assert!(!suite.store.exists(&record.key).await.expect("exists"));
}

/// `load` never returns an expired record.
pub async fn load_expired_is_none(suite: Suite) {
    let record = suite.record(json!({"a": 1}), TimeDelta::milliseconds(300));
    suite.store.create(&record).await.expect("create");
    assert!(suite.store.load(&record.key).await.expect("load").is_some());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(suite.store.load(&record.key).await.expect("load").is_none());
}

/// `exists` is true for a live record and false for a missing one.
pub async fn exists_live_and_missing(suite: Suite) {
    let record = suite.record(json!({"a": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    assert!(suite.store.exists(&record.key).await.expect("exists"));
    assert!(!suite
        .store
        .exists(&SessionKey::generate())
        .await
        .expect("exists"));
}

/// `exists` is false for an expired record.
pub async fn exists_expired_is_false(suite: Suite) {
    let record = suite.record(json!({"a": 1}), TimeDelta::milliseconds(300));
    suite.store.create(&record).await.expect("create");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!suite.store.exists(&record.key).await.expect("exists"));
}

/// "Expired counts as absent" holds to the second: live just before `expires_at`, absent
/// just after, in load, exists, update and touch.
pub async fn expiry_boundary_to_the_second(suite: Suite) {
    let record = suite.record(json!({"a": 1}), TimeDelta::milliseconds(1200));
    suite.store.create(&record).await.expect("create");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        suite.store.exists(&record.key).await.expect("exists"),
        "live 0.8 s before expiry"
    );
    let loaded = must_load(&suite, &record.key).await;
    let wait = (record.expires_at - Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(1000)).await;
    assert!(suite.store.load(&record.key).await.expect("load").is_none());
    assert!(!suite.store.exists(&record.key).await.expect("exists"));
    assert!(!suite
        .store
        .touch(&record.key, Utc::now() + HOUR)
        .await
        .expect("touch"));
    let mut update = loaded.clone();
    update.expires_at = Utc::now() + HOUR;
    assert!(matches!(
        suite.store.update(&update).await,
        Err(StoreError::NotFound)
    ));
}

/// `update` at the stored version succeeds and stores `version + 1` (or, for stores
/// without exact versions, a version that `load` then reports).
pub async fn update_bumps_version(suite: Suite) {
    let record = suite.record(json!({"n": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    let mut loaded = must_load(&suite, &record.key).await;
    loaded.data = suite.data(json!({"n": 2}));
    let version = suite.store.update(&loaded).await.expect("update");
    let again = must_load(&suite, &record.key).await;
    suite.assert_same_data(&again.data, &loaded.data);
    assert_eq!(
        again.version, version,
        "load must report the version update returned"
    );
    if suite.store.capabilities().exact_versions {
        assert_eq!(version, loaded.version + 1);
    } else {
        eprintln!("conformance: update_bumps_version: store keeps no exact version; checked the fingerprint version only");
    }
}

/// `update` with a stale version fails with `Conflict`.
pub async fn update_stale_version_is_conflict(suite: Suite) {
    let record = suite.record(json!({"n": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    let loaded = must_load(&suite, &record.key).await;
    let mut first = loaded.clone();
    first.data = suite.data(json!({"n": 2}));
    suite.store.update(&first).await.expect("first update");
    let mut stale = loaded;
    stale.data = suite.data(json!({"n": 3}));
    let err = suite.store.update(&stale).await;
    assert!(matches!(err, Err(StoreError::Conflict)), "got {err:?}");
}

/// A conflicting `update` changes nothing.
pub async fn update_conflict_leaves_record_unchanged(suite: Suite) {
    let record = suite.record(json!({"n": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    let loaded = must_load(&suite, &record.key).await;
    let mut first = loaded.clone();
    first.data = suite.data(json!({"n": 2}));
    suite.store.update(&first).await.expect("update");
    let mut stale = loaded;
    stale.data = suite.data(json!({"n": 3}));
    stale.expires_at = Utc::now() + HOUR * 5;
    assert!(suite.store.update(&stale).await.is_err());
    let now = must_load(&suite, &record.key).await;
    suite.assert_same_data(&now.data, &first.data);
    assert_close(now.expires_at, first.expires_at, MS, "expires_at");
}

/// `update` of a key that never existed is `NotFound` and creates nothing.
pub async fn update_missing_is_not_found(suite: Suite) {
    let record = suite.record(json!({"a": 1}), HOUR);
    let err = suite.store.update(&record).await;
    assert!(matches!(err, Err(StoreError::NotFound)), "got {err:?}");
    assert!(!suite.store.exists(&record.key).await.expect("exists"));
}

/// `update` after `delete` is `NotFound` and never resurrects the session (the
/// save-after-logout bug of the peers).
pub async fn update_after_delete_is_not_found_and_no_resurrection(suite: Suite) {
    let record = suite.record(json!({"a": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    let loaded = must_load(&suite, &record.key).await;
    assert!(suite.store.delete(&record.key).await.expect("delete"));
    let err = suite.store.update(&loaded).await;
    assert!(matches!(err, Err(StoreError::NotFound)), "got {err:?}");
    assert!(suite.store.load(&record.key).await.expect("load").is_none());
}

/// `update` of an expired record is `NotFound` and does not bring it back.
pub async fn update_expired_is_not_found_and_no_resurrection(suite: Suite) {
    let record = suite.record(json!({"a": 1}), TimeDelta::milliseconds(300));
    suite.store.create(&record).await.expect("create");
    let mut loaded = must_load(&suite, &record.key).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    loaded.expires_at = Utc::now() + HOUR;
    let err = suite.store.update(&loaded).await;
    assert!(matches!(err, Err(StoreError::NotFound)), "got {err:?}");
    assert!(suite.store.load(&record.key).await.expect("load").is_none());
}

/// `update` moves the expiry, both later and earlier.
pub async fn update_can_move_expiry(suite: Suite) {
    let record = suite.record(json!({"a": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    let mut loaded = must_load(&suite, &record.key).await;
    loaded.expires_at = Utc::now() + HOUR * 48;
    loaded.version = suite.store.update(&loaded).await.expect("update later");
    assert_close(
        must_load(&suite, &record.key).await.expires_at,
        loaded.expires_at,
        MS,
        "later",
    );
    loaded.expires_at = Utc::now() + TimeDelta::minutes(5);
    suite.store.update(&loaded).await.expect("update earlier");
    assert_close(
        must_load(&suite, &record.key).await.expires_at,
        loaded.expires_at,
        MS,
        "earlier",
    );
}

/// `update` stores every field it is given (user, device metadata) but keeps `created_at`.
pub async fn update_stores_every_field(suite: Suite) {
    let caps = suite.store.capabilities();
    let record = suite.record(json!({"a": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    let mut loaded = must_load(&suite, &record.key).await;
    if suite.store.user_index().is_some() {
        loaded.user_id = Some(user());
    }
    loaded.user_agent = Some("agent/2".into());
    loaded.ip = Some("2001:db8::1".into());
    loaded.last_active_at = Some(Utc::now());
    suite.store.update(&loaded).await.expect("update");
    let again = must_load(&suite, &record.key).await;
    assert_eq!(again.user_id, loaded.user_id);
    if caps.device_metadata {
        assert_eq!(again.user_agent.as_deref(), Some("agent/2"));
        assert_eq!(again.ip.as_deref(), Some("2001:db8::1"));
        assert_close(
            again.created_at,
            record.created_at,
            MS,
            "created_at is kept",
        );
    } else {
        eprintln!("conformance: update_stores_every_field: device metadata NOT EXERCISED (store declares none)");
    }
}

/// 16 tasks `update` the same version at once: exactly one succeeds, the rest `Conflict`.
pub async fn concurrent_updates_same_version_one_wins(suite: Suite) {
    let record = suite.record(json!({"n": 0}), HOUR);
    suite.store.create(&record).await.expect("create");
    let loaded = must_load(&suite, &record.key).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = suite.store.clone();
        let mut update = loaded.clone();
        update.data = suite.data(json!({ "n": i + 1 }));
        tasks.push(tokio::spawn(async move { store.update(&update).await }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(StoreError::Conflict) => {}
            Err(err) => panic!("unexpected error in racing update: {err}"),
        }
    }
    assert_eq!(won, 1, "exactly one compare-and-swap may win");
}

/// `touch` moves the expiry of a live record without changing data or version.
pub async fn touch_extends_expiry_keeps_data_and_version(suite: Suite) {
    let record = suite.record(json!({"a": 1}), TimeDelta::minutes(5));
    suite.store.create(&record).await.expect("create");
    let before = must_load(&suite, &record.key).await;
    let target = Utc::now() + HOUR * 3;
    assert!(suite.store.touch(&record.key, target).await.expect("touch"));
    let after = must_load(&suite, &record.key).await;
    assert_close(after.expires_at, target, MS, "touched expiry");
    suite.assert_same_data(&after.data, &before.data);
    assert_eq!(
        after.version, before.version,
        "touch must not change the version"
    );
    // The old version still updates: touch is not a write of the data.
    let mut update = before;
    update.expires_at = target;
    suite
        .store
        .update(&update)
        .await
        .expect("update after touch");
}

/// `touch` of a missing key is `false` and creates nothing.
pub async fn touch_missing_is_false(suite: Suite) {
    let key = SessionKey::generate();
    assert!(!suite
        .store
        .touch(&key, Utc::now() + HOUR)
        .await
        .expect("touch"));
    assert!(!suite.store.exists(&key).await.expect("exists"));
}

/// `touch` of an expired record is `false` and does not revive it.
pub async fn touch_expired_is_false_and_no_resurrection(suite: Suite) {
    let record = suite.record(json!({"a": 1}), TimeDelta::milliseconds(300));
    suite.store.create(&record).await.expect("create");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!suite
        .store
        .touch(&record.key, Utc::now() + HOUR)
        .await
        .expect("touch"));
    assert!(suite.store.load(&record.key).await.expect("load").is_none());
}

/// `delete` removes the record and reports it.
pub async fn delete_reports_removal(suite: Suite) {
    let record = suite.record(json!({"a": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    assert!(suite.store.delete(&record.key).await.expect("delete"));
    assert!(suite.store.load(&record.key).await.expect("load").is_none());
}

/// `delete` is idempotent: a missing key, or a second delete, is `Ok(false)`.
pub async fn delete_missing_is_idempotent(suite: Suite) {
    assert!(!suite
        .store
        .delete(&SessionKey::generate())
        .await
        .expect("delete missing"));
    let record = suite.record(json!({"a": 1}), HOUR);
    suite.store.create(&record).await.expect("create");
    assert!(suite.store.delete(&record.key).await.expect("delete"));
    assert!(!suite
        .store
        .delete(&record.key)
        .await
        .expect("second delete"));
}

/// `delete_expired` removes expired rows and counts them (TTL stores may count 0).
pub async fn delete_expired_counts_expired_rows(suite: Suite) {
    let mut expired = Vec::new();
    for _ in 0..4 {
        let r = suite.record(json!({"old": true}), -TimeDelta::seconds(10));
        suite.store.create(&r).await.expect("create expired");
        expired.push(r);
    }
    for _ in 0..3 {
        suite
            .store
            .create(&suite.record(json!({"live": true}), HOUR))
            .await
            .expect("create live");
    }
    let removed = suite.store.delete_expired().await.expect("delete_expired");
    assert!(
        removed == 4 || removed == 0,
        "4 expired rows (or 0 for a TTL store), got {removed}"
    );
    if removed == 0 {
        eprintln!(
            "conformance: delete_expired_counts_expired_rows: store counted 0 (expiry by TTL)"
        );
    }
    assert_eq!(
        suite.store.delete_expired().await.expect("again"),
        0,
        "nothing left to remove"
    );
    for r in expired {
        assert!(!suite.store.exists(&r.key).await.expect("exists"));
    }
}

/// `delete_expired` never removes a live record.
pub async fn delete_expired_keeps_live_rows(suite: Suite) {
    let mut live = Vec::new();
    for i in 0..5 {
        let r = suite.record(json!({ "i": i }), HOUR);
        suite.store.create(&r).await.expect("create");
        live.push(r);
    }
    suite
        .store
        .create(&suite.record(json!({"old": 1}), -TimeDelta::seconds(1)))
        .await
        .expect("create expired");
    suite.store.delete_expired().await.expect("delete_expired");
    for r in live {
        let loaded = must_load(&suite, &r.key).await;
        suite.assert_same_data(&loaded.data, &r.data);
    }
}

/// `delete_expired` on a store with nothing expired returns 0.
pub async fn delete_expired_on_empty_store_is_zero(suite: Suite) {
    assert_eq!(
        suite.store.delete_expired().await.expect("delete_expired"),
        0
    );
}

async fn user_sessions(suite: &Suite, user_id: &str, n: usize) -> Vec<Record> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut r = suite.record(json!({ "device": i }), HOUR);
        r.user_id = Some(user_id.to_owned());
        suite.store.create(&r).await.expect("create");
        out.push(r);
    }
    out
}

fn sorted_keys(records: &[Record]) -> Vec<String> {
    let mut keys: Vec<String> = records.iter().map(|r| r.key.as_str().to_owned()).collect();
    keys.sort();
    keys
}

/// `list_for_user` returns exactly the live sessions of that user.
pub async fn list_for_user_returns_that_users_live_sessions(suite: Suite) {
    if user_index_unsupported(&suite, "list_for_user_returns_that_users_live_sessions").await {
        return;
    }
    let (alice, bob) = (user(), user());
    let mine = user_sessions(&suite, &alice, 3).await;
    user_sessions(&suite, &bob, 2).await;
    suite
        .store
        .create(&suite.record(json!({"anon": true}), HOUR))
        .await
        .expect("create anonymous");
    let listed = suite.store.list_for_user(&alice).await.expect("list");
    assert_eq!(sorted_keys(&listed), sorted_keys(&mine));
    for r in &listed {
        assert_eq!(r.user_id.as_deref(), Some(alice.as_str()));
        let original = mine
            .iter()
            .find(|m| m.key == r.key)
            .expect("listed key is alice's");
        suite.assert_same_data(&r.data, &original.data);
    }
}

/// `list_for_user` leaves out expired sessions.
pub async fn list_for_user_excludes_expired(suite: Suite) {
    if user_index_unsupported(&suite, "list_for_user_excludes_expired").await {
        return;
    }
    let alice = user();
    let live = user_sessions(&suite, &alice, 2).await;
    let mut short = suite.record(json!({"short": true}), TimeDelta::milliseconds(300));
    short.user_id = Some(alice.clone());
    suite.store.create(&short).await.expect("create");
    let mut dead = suite.record(json!({"dead": true}), -TimeDelta::seconds(3));
    dead.user_id = Some(alice.clone());
    suite.store.create(&dead).await.expect("create expired");
    assert_eq!(
        suite.store.list_for_user(&alice).await.expect("list").len(),
        3
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let listed = suite.store.list_for_user(&alice).await.expect("list");
    assert_eq!(sorted_keys(&listed), sorted_keys(&live));
}

/// `list_for_user` of a user with no sessions is empty.
pub async fn list_for_user_unknown_user_is_empty(suite: Suite) {
    if user_index_unsupported(&suite, "list_for_user_unknown_user_is_empty").await {
        return;
    }
    assert!(suite
        .store
        .list_for_user(&user())
        .await
        .expect("list")
        .is_empty());
}

/// `delete_for_user` without `except` removes every session of the user and counts them.
pub async fn delete_for_user_removes_all(suite: Suite) {
    if user_index_unsupported(&suite, "delete_for_user_removes_all").await {
        return;
    }
    let alice = user();
    let sessions = user_sessions(&suite, &alice, 4).await;
    assert_eq!(
        suite
            .store
            .delete_for_user(&alice, None)
            .await
            .expect("delete_for_user"),
        4
    );
    for r in sessions {
        assert!(!suite.store.exists(&r.key).await.expect("exists"));
    }
    assert!(suite
        .store
        .list_for_user(&alice)
        .await
        .expect("list")
        .is_empty());
}

/// `delete_for_user` with `except` keeps that one session ("log out other devices").
pub async fn delete_for_user_except_keeps_one(suite: Suite) {
    if user_index_unsupported(&suite, "delete_for_user_except_keeps_one").await {
        return;
    }
    let alice = user();
    let sessions = user_sessions(&suite, &alice, 3).await;
    let current = &sessions[1].key;
    assert_eq!(
        suite
            .store
            .delete_for_user(&alice, Some(current))
            .await
            .expect("delete"),
        2
    );
    assert!(suite.store.exists(current).await.expect("exists"));
    assert!(!suite.store.exists(&sessions[0].key).await.expect("exists"));
    assert!(!suite.store.exists(&sessions[2].key).await.expect("exists"));
    let listed = suite.store.list_for_user(&alice).await.expect("list");
    assert_eq!(sorted_keys(&listed), vec![current.as_str().to_owned()]);
}

/// `delete_for_user` never touches another user's sessions.
pub async fn delete_for_user_leaves_other_users(suite: Suite) {
    if user_index_unsupported(&suite, "delete_for_user_leaves_other_users").await {
        return;
    }
    let (alice, bob) = (user(), user());
    user_sessions(&suite, &alice, 2).await;
    let bobs = user_sessions(&suite, &bob, 2).await;
    suite
        .store
        .delete_for_user(&alice, None)
        .await
        .expect("delete");
    for r in &bobs {
        assert!(suite.store.exists(&r.key).await.expect("exists"));
    }
    assert_eq!(
        suite.store.list_for_user(&bob).await.expect("list").len(),
        2
    );
}

/// A deleted session disappears from its user's list.
pub async fn user_index_follows_delete(suite: Suite) {
    if user_index_unsupported(&suite, "user_index_follows_delete").await {
        return;
    }
    let alice = user();
    let sessions = user_sessions(&suite, &alice, 2).await;
    suite.store.delete(&sessions[0].key).await.expect("delete");
    let listed = suite.store.list_for_user(&alice).await.expect("list");
    assert_eq!(sorted_keys(&listed), sorted_keys(&sessions[1..]));
    assert_eq!(
        suite
            .store
            .delete_for_user(&alice, None)
            .await
            .expect("delete_for_user"),
        1
    );
}

/// An `update` that changes `user_id` moves the session between users' lists.
pub async fn user_index_follows_user_change(suite: Suite) {
    if user_index_unsupported(&suite, "user_index_follows_user_change").await {
        return;
    }
    let (alice, bob) = (user(), user());
    let sessions = user_sessions(&suite, &alice, 1).await;
    let mut loaded = must_load(&suite, &sessions[0].key).await;
    loaded.user_id = Some(bob.clone());
    suite.store.update(&loaded).await.expect("update");
    assert!(suite
        .store
        .list_for_user(&alice)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        suite.store.list_for_user(&bob).await.expect("list").len(),
        1
    );
    let mut again = must_load(&suite, &sessions[0].key).await;
    again.user_id = None;
    suite.store.update(&again).await.expect("update");
    assert!(suite
        .store
        .list_for_user(&bob)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        suite
            .store
            .delete_for_user(&alice, None)
            .await
            .expect("delete"),
        0
    );
}

/// Unicode (multi-byte, astral, right-to-left, combining) survives the round trip, in
/// the data and in the user id and device metadata.
pub async fn unicode_payload_round_trips(suite: Suite) {
    let text = "Grüße, 東京, مرحبا, 🎉👩‍👩‍👧, e\u{301}, \u{10FFFF}";
    let mut record = suite.record(json!({ "text": text, text: [text] }), HOUR);
    if suite.store.user_index().is_some() {
        record.user_id = Some(format!("ユーザー-{}", SessionKey::generate().as_str()));
    }
    if suite.store.capabilities().device_metadata {
        record.user_agent = Some("Navigateur/1.0 (café; ☕)".into());
    }
    suite.store.create(&record).await.expect("create");
    let loaded = must_load(&suite, &record.key).await;
    suite.assert_same_data(&loaded.data, &record.data);
    assert_eq!(loaded.user_id, record.user_id);
    if let Some(user_id) = &record.user_id {
        let listed = suite.store.list_for_user(user_id).await.expect("list");
        assert_eq!(listed.len(), 1);
    }
    if suite.store.capabilities().device_metadata {
        assert_eq!(loaded.user_agent, record.user_agent);
    }
}

/// A session of about 1 MB round-trips through create, load and update.
pub async fn one_megabyte_payload_round_trips(suite: Suite) {
    // A little over 1 MiB, so that it stays over 1 MiB even through a compressing codec.
    let blob = incompressible((1 << 20) + (1 << 17));
    let record = suite.record(json!({ "blob": blob }), HOUR);
    assert!(record.data.len() >= 1 << 20);
    suite.store.create(&record).await.expect("create 1 MB");
    let mut loaded = must_load(&suite, &record.key).await;
    suite.assert_same_data(&loaded.data, &record.data);
    loaded.data = suite.data(json!({ "blob": blob, "more": blob.len() }));
    suite.store.update(&loaded).await.expect("update 1 MB");
    let again = must_load(&suite, &record.key).await;
    suite.assert_same_data(&again.data, &loaded.data);
}

/// Quotes, backslashes, newlines and SQL-looking text are data, not syntax.
pub async fn special_characters_round_trip(suite: Suite) {
    let nasty =
        "it's \"quoted\" \\ back\\slash\n\ttab '; DROP TABLE sessions; -- %s $1 ? :name {{}}";
    let record = suite.record(
        json!({ "nasty": nasty, "empty": "", "nested": {"a": [null, true, 1.5]} }),
        HOUR,
    );
    suite.store.create(&record).await.expect("create");
    let loaded = must_load(&suite, &record.key).await;
    suite.assert_same_data(&loaded.data, &record.data);
}

/// Device metadata (`created_at`, `last_active_at`, user agent, IP) round-trips; `touch`
/// moves `last_active_at` forward.
pub async fn device_metadata_round_trips(suite: Suite) {
    if !suite.store.capabilities().device_metadata {
        eprintln!("conformance: device_metadata_round_trips: NOT EXERCISED, the store declares no device metadata");
        return;
    }
    let mut record = suite.record(json!({"a": 1}), HOUR);
    record.created_at = Utc::now() - TimeDelta::days(3);
    record.last_active_at = Some(Utc::now() - TimeDelta::hours(1));
    record.user_agent = Some("curl/8.0".into());
    record.ip = Some("198.51.100.23".into());
    suite.store.create(&record).await.expect("create");
    let loaded = must_load(&suite, &record.key).await;
    assert_close(loaded.created_at, record.created_at, MS, "created_at");
    assert_eq!(loaded.user_agent, record.user_agent);
    assert_eq!(loaded.ip, record.ip);
    let before = loaded.last_active_at.expect("last_active_at stored");
    assert!(suite
        .store
        .touch(&record.key, Utc::now() + HOUR)
        .await
        .expect("touch"));
    let after = must_load(&suite, &record.key)
        .await
        .last_active_at
        .expect("last_active_at");
    assert!(
        after > before + TimeDelta::minutes(30),
        "touch must move last_active_at to now"
    );
}

/// 200 sessions created concurrently are all independent and intact.
pub async fn many_sessions_are_independent(suite: Suite) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = suite.store.clone();
        let record = suite.record(json!({ "i": i }), HOUR);
        tasks.push(tokio::spawn(async move {
            store.create(&record).await.map(|()| record)
        }));
    }
    let mut records = Vec::new();
    for task in tasks {
        records.push(task.await.expect("task").expect("create"));
    }
    for r in &records {
        let loaded = must_load(&suite, &r.key).await;
        suite.assert_same_data(&loaded.data, &r.data);
    }
}

// ---------------------------------------------------------------------------------------
// The Session handle over the store
// ---------------------------------------------------------------------------------------

fn set_key(action: CookieAction) -> (SessionKey, Option<Duration>) {
    match action {
        CookieAction::Set { key, max_age } => (key, max_age),
        other => panic!("expected the cookie to be set, got {other:?}"),
    }
}

async fn saved_session(suite: &Suite, config: &Arc<SessionConfig>, value: Value) -> SessionKey {
    let s = suite.session(config, None);
    let Value::Object(map) = value else {
        panic!("object")
    };
    for (k, v) in map {
        s.insert_value(&k, v).await.expect("insert");
    }
    set_key(s.save().await.expect("save")).0
}

/// An untouched session without a cookie stores nothing and sets no cookie.
pub async fn handle_untouched_new_session_is_not_stored(suite: Suite) {
    let config = Arc::new(suite.config());
    let s = suite.session(&config, None);
    assert_eq!(s.save().await.expect("save"), CookieAction::Unchanged);
    assert!(s.key().await.is_none());
}

/// A new session with data is created under a fresh key and loads in the next request.
pub async fn handle_new_session_saved_and_loaded(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"cart": [1, 2, 3], "name": "Zoë"})).await;
    let next = suite.session(&config, Some(key.as_str()));
    assert_eq!(
        next.get::<Vec<u32>>("cart").await.expect("get"),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        next.get::<String>("name").await.expect("get").as_deref(),
        Some("Zoë")
    );
    assert_eq!(next.key().await, Some(key));
}

/// A well-formed but unknown key from a cookie is never adopted: writing creates a new key,
/// and nothing is stored under the client's key (session fixation).
pub async fn handle_never_adopts_client_key(suite: Suite) {
    let config = Arc::new(suite.config());
    let planted = SessionKey::generate();
    let s = suite.session(&config, Some(planted.as_str()));
    s.insert("user", "victim").await.expect("insert");
    let (key, _) = set_key(s.save().await.expect("save"));
    assert_ne!(key, planted);
    assert!(!suite.store.exists(&planted).await.expect("exists"));
    assert!(suite.store.exists(&key).await.expect("exists"));
}

/// Modifying a loaded session updates it under the same key.
pub async fn handle_update_keeps_key(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"n": 1})).await;
    let s = suite.session(&config, Some(key.as_str()));
    s.insert("n", 2).await.expect("insert");
    let (same, _) = set_key(s.save().await.expect("save"));
    assert_eq!(same, key);
    let again = suite.session(&config, Some(key.as_str()));
    assert_eq!(again.get::<u32>("n").await.expect("get"), Some(2));
}

/// `cycle_key` gives a new key with the same data and deletes the old record.
pub async fn handle_cycle_key_keeps_data_and_kills_old_key(suite: Suite) {
    let config = Arc::new(suite.config());
    let old = saved_session(&suite, &config, json!({"cart": ["apple"]})).await;
    let s = suite.session(&config, Some(old.as_str()));
    s.cycle_key().await.expect("cycle_key");
    s.insert("user", "alice").await.expect("insert");
    let (new, _) = set_key(s.save().await.expect("save"));
    assert_ne!(new, old);
    assert!(
        !suite.store.exists(&old).await.expect("exists"),
        "old key must be dead"
    );
    let next = suite.session(&config, Some(new.as_str()));
    assert_eq!(
        next.get::<Vec<String>>("cart").await.expect("get"),
        Some(vec!["apple".into()])
    );
    assert_eq!(
        next.get::<String>("user").await.expect("get").as_deref(),
        Some("alice")
    );
    let stale = suite.session(&config, Some(old.as_str()));
    assert!(stale.get::<Value>("cart").await.expect("get").is_none());
}

/// `flush` deletes the record, empties the session and removes the cookie.
pub async fn handle_flush_deletes_and_removes_cookie(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"user": "bob"})).await;
    let s = suite.session(&config, Some(key.as_str()));
    s.flush().await.expect("flush");
    assert_eq!(s.save().await.expect("save"), CookieAction::Remove);
    assert!(!suite.store.exists(&key).await.expect("exists"));
    assert!(s.data().await.expect("data").is_empty());
}

/// A session that ends up empty and keyless is not stored.
pub async fn handle_empty_session_is_not_stored(suite: Suite) {
    let config = Arc::new(suite.config());
    let counting = Arc::new(CountingStore::new(suite.store.clone()));
    let calls = counting.calls();
    let s = Session::new(counting, config, None);
    s.insert("tmp", 1).await.expect("insert");
    s.remove::<u32>("tmp").await.expect("remove");
    assert_eq!(s.save().await.expect("save"), CookieAction::Unchanged);
    assert!(s.key().await.is_none());
    assert_eq!(
        calls.total(),
        0,
        "an empty keyless session costs no store call"
    );
}

/// `clear` keeps the key and saves an empty map under it (Django's `clear`).
pub async fn handle_clear_keeps_key_and_saves_empty_map(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"a": 1, "b": 2})).await;
    let s = suite.session(&config, Some(key.as_str()));
    s.clear().await.expect("clear");
    let (same, _) = set_key(s.save().await.expect("save"));
    assert_eq!(same, key);
    let loaded = must_load(&suite, &key).await;
    assert!(suite.decoded(&loaded.data).is_empty());
}

/// Saving a session deleted meanwhile (a concurrent logout) fails with `Interrupted` and does
/// not resurrect it.
pub async fn handle_save_after_concurrent_delete_is_not_found(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"user": "carol"})).await;
    let s = suite.session(&config, Some(key.as_str()));
    s.insert("cart", 5).await.expect("insert");
    suite.store.delete(&key).await.expect("concurrent logout");
    let err = s.save().await;
    assert!(matches!(err, Err(Error::Interrupted)), "got {err:?}");
    assert!(!suite.store.exists(&key).await.expect("exists"));
    // Nothing lost in the handle: the change is still there.
    assert_eq!(s.get::<u32>("cart").await.expect("get"), Some(5));
}

/// Undecodable data loads as an empty session but keeps the key (Django's rule), and the
/// next save overwrites the same row.
pub async fn handle_corrupt_data_loads_empty_and_keeps_key(suite: Suite) {
    let config = Arc::new(suite.config());
    let record = Record::new(
        SessionKey::generate(),
        "\u{1}garbage{".into(),
        Utc::now() + HOUR,
    );
    if let Err(err) = suite.store.create(&record).await {
        eprintln!("conformance: handle_corrupt_data_loads_empty_and_keeps_key: the store refuses undecodable data at write ({err}); corrupt rows cannot occur");
        return;
    }
    let s = suite.session(&config, Some(record.key.as_str()));
    assert!(s
        .data()
        .await
        .expect("a corrupt row is not an error")
        .is_empty());
    assert_eq!(s.key().await, Some(record.key.clone()));
    s.insert("fresh", true).await.expect("insert");
    let (key, _) = set_key(s.save().await.expect("save"));
    assert_eq!(key, record.key);
    let loaded = must_load(&suite, &key).await;
    assert_eq!(suite.decoded(&loaded.data).get("fresh"), Some(&json!(true)));
}

/// An expired session loads empty, loses its key, and a write creates a new key.
pub async fn handle_expired_session_gets_new_key(suite: Suite) {
    let config = Arc::new(suite.config());
    let record = suite.record(json!({"old": 1}), TimeDelta::milliseconds(300));
    suite.store.create(&record).await.expect("create");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let s = suite.session(&config, Some(record.key.as_str()));
    assert!(s.get::<u32>("old").await.expect("get").is_none());
    s.insert("new", 1).await.expect("insert");
    let (key, _) = set_key(s.save().await.expect("save"));
    assert_ne!(key, record.key);
}

/// The configured idle timeout becomes the store expiry and the cookie Max-Age.
pub async fn handle_idle_expiry_reaches_store(suite: Suite) {
    let config = Arc::new(suite.config().with_idle_timeout(Duration::from_secs(3600)));
    let s = suite.session(&config, None);
    s.insert("a", 1).await.expect("insert");
    let (key, max_age) = set_key(s.save().await.expect("save"));
    assert_eq!(max_age.map(|d| d.as_secs() / 10), Some(360));
    let loaded = must_load(&suite, &key).await;
    assert_close(
        loaded.expires_at,
        Utc::now() + HOUR,
        TimeDelta::seconds(5),
        "idle expiry",
    );
}

/// With idle and absolute limits, the earlier one wins (in the store and the cookie).
pub async fn handle_absolute_expiry_caps_idle(suite: Suite) {
    let config = Arc::new(
        suite
            .config()
            .with_idle_timeout(Duration::from_secs(3600))
            .with_absolute_timeout(Some(Duration::from_secs(1))),
    );
    let s = suite.session(&config, None);
    s.insert("a", 1).await.expect("insert");
    let (key, max_age) = set_key(s.save().await.expect("save"));
    assert!(
        max_age.is_some_and(|d| d <= Duration::from_secs(1)),
        "{max_age:?}"
    );
    let loaded = must_load(&suite, &key).await;
    assert!(loaded.expires_at <= Utc::now() + TimeDelta::seconds(1));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let s = suite.session(&config, Some(key.as_str()));
    assert!(
        s.get::<u32>("a").await.expect("get").is_none(),
        "absolute limit reached"
    );
}

/// A browser-close session gets a cookie without Max-Age, but its row still expires after
/// the idle timeout.
pub async fn handle_browser_close_cookie_still_expires_row(suite: Suite) {
    let config = Arc::new(suite.config().with_idle_timeout(Duration::from_secs(600)));
    let s = suite.session(&config, None);
    s.set_expiry(Expiry::BrowserClose)
        .await
        .expect("set_expiry");
    let (key, max_age) = set_key(s.save().await.expect("save"));
    assert_eq!(max_age, None);
    let loaded = must_load(&suite, &key).await;
    assert_close(
        loaded.expires_at,
        Utc::now() + TimeDelta::seconds(600),
        TimeDelta::seconds(5),
        "server-side expiry of a browser-close session",
    );
}

/// `set_expiry` in seconds (sliding) and at a date (absolute) reach the store and cookie.
pub async fn handle_set_expiry_seconds_and_date(suite: Suite) {
    let config = Arc::new(suite.config());
    let s = suite.session(&config, None);
    s.set_expiry(Expiry::Idle(Duration::from_secs(600)))
        .await
        .expect("set_expiry");
    let (key, max_age) = set_key(s.save().await.expect("save"));
    assert!(
        max_age.is_some_and(|d| d.as_secs().abs_diff(600) <= 2),
        "{max_age:?}"
    );
    assert_close(
        must_load(&suite, &key).await.expires_at,
        Utc::now() + TimeDelta::seconds(600),
        TimeDelta::seconds(5),
        "idle override",
    );
    let at = Utc::now() + TimeDelta::hours(5);
    let s = suite.session(&config, Some(key.as_str()));
    s.set_expiry(Expiry::At(at)).await.expect("set_expiry");
    s.save().await.expect("save");
    assert_close(
        must_load(&suite, &key).await.expires_at,
        at,
        TimeDelta::milliseconds(2),
        "absolute override",
    );
    let s = suite.session(&config, Some(key.as_str()));
    match s.expiry().await.expect("expiry") {
        Expiry::At(got) => assert_close(got, at, MS, "expiry read back from the data"),
        other => panic!("expected an absolute expiry, got {other:?}"),
    }
}

/// A read-only request extends an idle session with `touch` (no data rewrite, same version).
pub async fn handle_read_touches_idle_session(suite: Suite) {
    let config = Arc::new(
        suite
            .config()
            .with_idle_timeout(Duration::from_secs(3600))
            .with_touch_interval(Some(Duration::from_secs(1))),
    );
    let key = saved_session(&suite, &config, json!({"a": 1})).await;
    let pulled_back = Utc::now() + TimeDelta::minutes(10);
    assert!(suite.store.touch(&key, pulled_back).await.expect("touch"));
    let before = must_load(&suite, &key).await;
    let counting = Arc::new(CountingStore::new(suite.store.clone()));
    let calls = counting.calls();
    let s = Session::new(counting, config, Some(key.as_str()));
    assert_eq!(s.get::<u32>("a").await.expect("get"), Some(1));
    let (same, max_age) = set_key(s.save().await.expect("save"));
    assert_eq!(same, key);
    assert!(max_age.is_some_and(|d| d.as_secs() > 3500));
    let after = must_load(&suite, &key).await;
    assert_close(
        after.expires_at,
        Utc::now() + HOUR,
        TimeDelta::seconds(5),
        "touched expiry",
    );
    assert_eq!(
        after.version, before.version,
        "a read must not rewrite the data"
    );
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(
        (
            calls.load.load(SeqCst),
            calls.touch.load(SeqCst),
            calls.update.load(SeqCst)
        ),
        (1, 1, 0)
    );
}

/// A read soon after a write costs exactly one load and no write.
pub async fn handle_read_within_touch_interval_does_not_write(suite: Suite) {
    let config = Arc::new(
        suite
            .config()
            .with_touch_interval(Some(Duration::from_secs(600))),
    );
    let key = saved_session(&suite, &config, json!({"a": 1})).await;
    let counting = Arc::new(CountingStore::new(suite.store.clone()));
    let calls = counting.calls();
    let s = Session::new(counting, config, Some(key.as_str()));
    assert_eq!(s.get::<u32>("a").await.expect("get"), Some(1));
    assert_eq!(s.save().await.expect("save"), CookieAction::Unchanged);
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(calls.load.load(SeqCst), 1);
    assert_eq!(calls.total(), 1, "one load, no touch, no update");
}

/// 64 concurrent requests on one session, each setting its own key: all 64 survive (no
/// lost updates).
pub async fn handle_64_concurrent_handles_different_keys_all_survive(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"base": true})).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = suite.session(&config, Some(key.as_str()));
        tasks.push(tokio::spawn(async move {
            s.insert(&format!("k{i}"), i).await?;
            s.save().await
        }));
    }
    for task in tasks {
        task.await
            .expect("task")
            .expect("every concurrent save succeeds");
    }
    let s = suite.session(&config, Some(key.as_str()));
    let data = s.data().await.expect("data");
    for i in 0..64 {
        assert_eq!(data.get(&format!("k{i}")), Some(&json!(i)), "k{i} was lost");
    }
    assert_eq!(data.get("base"), Some(&json!(true)));
}

/// Concurrent requests setting the same key: no error, and the value is one of theirs.
pub async fn handle_concurrent_handles_same_key_one_value_wins(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"n": -1})).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = suite.session(&config, Some(key.as_str()));
        tasks.push(tokio::spawn(async move {
            s.insert("n", i).await?;
            s.save().await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("save");
    }
    let s = suite.session(&config, Some(key.as_str()));
    let n = s.get::<i64>("n").await.expect("get").expect("present");
    assert!((0..16).contains(&n), "n = {n}");
}

/// `set_user` puts the session in the user index; the user's sessions can be revoked.
pub async fn handle_set_user_indexes_session(suite: Suite) {
    if user_index_unsupported(&suite, "handle_set_user_indexes_session").await {
        return;
    }
    let config = Arc::new(suite.config());
    let alice = user();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let s = suite.session(&config, None);
        s.set_user(Some(alice.clone())).await.expect("set_user");
        keys.push(set_key(s.save().await.expect("save")).0);
    }
    let listed = suite.store.list_for_user(&alice).await.expect("list");
    assert_eq!(listed.len(), 2);
    let s = suite.session(&config, Some(keys[0].as_str()));
    assert_eq!(
        s.user_id().await.expect("user_id").as_deref(),
        Some(alice.as_str())
    );
    assert_eq!(
        suite
            .store
            .delete_for_user(&alice, Some(&keys[0]))
            .await
            .expect("revoke"),
        1
    );
    assert!(suite.store.exists(&keys[0]).await.expect("exists"));
    assert!(!suite.store.exists(&keys[1]).await.expect("exists"));
}

/// An oversized session is an error; nothing is written and the stored session is intact.
pub async fn handle_too_large_is_an_error_and_writes_nothing(suite: Suite) {
    let config = Arc::new(suite.config().with_max_data_len(4096));
    let key = saved_session(&suite, &config, json!({"small": 1})).await;
    let before = must_load(&suite, &key).await;
    let s = suite.session(&config, Some(key.as_str()));
    s.insert("big", incompressible(10_000))
        .await
        .expect("insert");
    let err = s.save().await;
    assert!(matches!(err, Err(Error::TooLarge { .. })), "got {err:?}");
    let after = must_load(&suite, &key).await;
    assert_eq!(after.version, before.version);
    suite.assert_same_data(&after.data, &before.data);
    let fresh = suite.session(&config, None);
    fresh
        .insert("big", incompressible(10_000))
        .await
        .expect("insert");
    assert!(matches!(fresh.save().await, Err(Error::TooLarge { .. })));
    assert!(fresh.key().await.is_none());
}

/// A request that never touches its session costs zero store calls, with or without a
/// cookie.
pub async fn handle_untouched_session_makes_no_store_calls(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"a": 1})).await;
    let counting = Arc::new(CountingStore::new(suite.store.clone()));
    let calls = counting.calls();
    for cookie in [None, Some(key.as_str())] {
        let s = Session::new(counting.clone(), config.clone(), cookie);
        assert_eq!(s.save().await.expect("save"), CookieAction::Unchanged);
        assert!(!s.is_accessed());
    }
    assert_eq!(calls.total(), 0);
}

/// Hostile cookie values (empty, 31/33 characters, upper case, `../`, NUL, 1 MB) are
/// rejected before any store call; reading gives an empty session and the cookie is removed.
pub async fn handle_hostile_cookies_never_reach_the_store(suite: Suite) {
    let config = Arc::new(suite.config());
    let counting = Arc::new(CountingStore::new(suite.store.clone()));
    let calls = counting.calls();
    let good = SessionKey::generate();
    let hostile = [
        String::new(),
        good.as_str()[..31].to_owned(),
        format!("{}a", good.as_str()),
        good.as_str().to_uppercase(),
        format!("../../{}", &good.as_str()[6..]),
        format!("{}\0", &good.as_str()[..31]),
        "a".repeat(1 << 20),
        "é".repeat(16),
    ];
    for value in &hostile {
        let s = Session::new(counting.clone(), config.clone(), Some(value));
        assert!(s.get::<Value>("user").await.expect("get").is_none());
        assert!(s.key().await.is_none());
        assert_eq!(s.save().await.expect("save"), CookieAction::Remove);
    }
    assert_eq!(calls.total(), 0, "no hostile cookie may reach the store");
}

// ---------------------------------------------------------------------------------------
// Compare-and-delete (the base of key rotation)
// ---------------------------------------------------------------------------------------

/// `delete_at_version` removes a live record only at the version it names: another version
/// is `Conflict` and leaves the record as it was; the right one removes it (and its user
/// index entry).
pub async fn delete_at_version_removes_only_that_version(suite: Suite) {
    let mut record = suite.record(json!({"a": 1}), HOUR);
    let alice = user();
    if suite.store.user_index().is_some() {
        record.user_id = Some(alice.clone());
    }
    suite.store.create(&record).await.expect("create");
    let mut loaded = must_load(&suite, &record.key).await;
    loaded.data = suite.data(json!({"a": 2}));
    suite.store.update(&loaded).await.expect("update");
    let current = must_load(&suite, &record.key).await;
    let err = suite
        .store
        .delete_at_version(&record.key, loaded.version)
        .await;
    assert!(
        matches!(err, Err(StoreError::Conflict)),
        "an outdated version must be Conflict, got {err:?}"
    );
    let still = must_load(&suite, &record.key).await;
    assert_eq!(still.version, current.version, "a conflict changes nothing");
    suite.assert_same_data(&still.data, &current.data);
    suite
        .store
        .delete_at_version(&record.key, current.version)
        .await
        .expect("the current version deletes");
    assert!(!suite.store.exists(&record.key).await.expect("exists"));
    if suite.store.user_index().is_some() {
        assert!(
            suite
                .store
                .list_for_user(&alice)
                .await
                .expect("list")
                .is_empty(),
            "the user index must follow a compare-and-delete"
        );
    }
}

/// `delete_at_version` of a missing, deleted or expired record is `NotFound`, and an expired
/// record does not come back.
pub async fn delete_at_version_of_missing_or_expired_is_not_found(suite: Suite) {
    let missing = SessionKey::generate();
    let err = suite.store.delete_at_version(&missing, 1).await;
    assert!(matches!(err, Err(StoreError::NotFound)), "got {err:?}");
    let expired = suite.record(json!({"a": 1}), TimeDelta::seconds(-5));
    suite.store.create(&expired).await.expect("create");
    let err = suite
        .store
        .delete_at_version(&expired.key, expired.version)
        .await;
    assert!(matches!(err, Err(StoreError::NotFound)), "got {err:?}");
    assert!(!suite.store.exists(&expired.key).await.expect("exists"));
    let live = suite.record(json!({"a": 1}), HOUR);
    suite.store.create(&live).await.expect("create");
    let version = must_load(&suite, &live.key).await.version;
    suite.store.delete(&live.key).await.expect("delete");
    let err = suite.store.delete_at_version(&live.key, version).await;
    assert!(matches!(err, Err(StoreError::NotFound)), "got {err:?}");
}

// ---------------------------------------------------------------------------------------
// Races at login, logout and revocation (the handle over the store)
// ---------------------------------------------------------------------------------------

/// Rotation cannot resurrect: request A loads a logged-in session and starts a login
/// (`login` rotates the key at save); request B logs out meanwhile. A's save fails with
/// `Interrupted`, and no live record remains under the old key or any new one.
pub async fn rotation_after_concurrent_logout_is_interrupted_and_leaves_nothing(suite: Suite) {
    let config = Arc::new(suite.config());
    let alice = user();
    let s = suite.session(&config, None);
    s.set_user(Some(alice.clone())).await.expect("set_user");
    s.insert("secret", "alice's").await.expect("insert");
    let (key, _) = set_key(s.save().await.expect("save"));

    let a = suite.session(&config, Some(key.as_str()));
    a.login(alice.clone()).await.expect("login starts (loads)");
    a.insert("step_up", true).await.expect("insert");

    let b = suite.session(&config, Some(key.as_str()));
    b.logout().await.expect("logout");
    assert_eq!(b.save().await.expect("save"), CookieAction::Remove);

    let err = a.save().await;
    assert!(matches!(err, Err(Error::Interrupted)), "got {err:?}");
    assert!(!suite.store.exists(&key).await.expect("exists"));
    if let Some(new) = a.key().await.filter(|k| *k != key) {
        assert!(
            !suite.store.exists(&new).await.expect("exists"),
            "a rotated key must not be live"
        );
    }
    if suite.store.user_index().is_some() {
        assert!(
            suite
                .store
                .list_for_user(&alice)
                .await
                .expect("list")
                .is_empty(),
            "the logged-out user must have no live session"
        );
    }
}

/// "Log out other devices" during another device's login: the revoked device's rotation
/// fails with `Interrupted` and leaves no live record; the revoking device keeps its own.
pub async fn rotation_after_revoke_others_is_interrupted_and_leaves_nothing(suite: Suite) {
    if user_index_unsupported(
        &suite,
        "rotation_after_revoke_others_is_interrupted_and_leaves_nothing",
    )
    .await
    {
        return;
    }
    let config = Arc::new(suite.config());
    let alice = user();
    let mut keys = Vec::new();
    for device in ["phone", "laptop"] {
        let s = suite.session(&config, None);
        s.login(alice.clone()).await.expect("login");
        s.insert("device", device).await.expect("insert");
        keys.push(set_key(s.save().await.expect("save")).0);
    }
    let (phone, laptop) = (keys[0].clone(), keys[1].clone());

    let rotating = suite.session(&config, Some(phone.as_str()));
    rotating.cycle_key().await.expect("cycle_key (loads)");
    let ended = suite
        .store
        .delete_for_user(&alice, Some(&laptop))
        .await
        .expect("revoke others");
    assert_eq!(ended, 1);

    let err = rotating.save().await;
    assert!(matches!(err, Err(Error::Interrupted)), "got {err:?}");
    let live = suite.store.list_for_user(&alice).await.expect("list");
    assert_eq!(
        sorted_keys(&live),
        vec![laptop.as_str().to_owned()],
        "only the revoking device may stay logged in"
    );
    assert!(!suite.store.exists(&phone).await.expect("exists"));
}

/// A write acknowledged on the old key while a login is in flight is carried into the new
/// record (the rotation replays its own changes on the fresh record).
pub async fn rotation_carries_a_write_made_meanwhile(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"cart": ["apple"]})).await;
    let alice = user();

    let login = suite.session(&config, Some(key.as_str()));
    login.login(alice.clone()).await.expect("login (loads)");
    login.insert("greeting", "hi").await.expect("insert");

    let other_tab = suite.session(&config, Some(key.as_str()));
    other_tab
        .update("cart", |cart: Option<Vec<String>>| {
            let mut cart = cart.unwrap_or_default();
            cart.push("pear".into());
            cart
        })
        .await
        .expect("update");
    other_tab
        .save()
        .await
        .expect("the write before the rotation commits");

    let (new, _) = set_key(login.save().await.expect("rotation"));
    assert_ne!(new, key);
    let next = suite.session(&config, Some(new.as_str()));
    assert_eq!(
        next.get::<Vec<String>>("cart").await.expect("get"),
        Some(vec!["apple".into(), "pear".into()]),
        "the acknowledged write must survive the login"
    );
    assert_eq!(
        next.get::<String>("greeting")
            .await
            .expect("get")
            .as_deref(),
        Some("hi")
    );
    if suite.store.user_index().is_some() {
        assert_eq!(
            next.user_id().await.expect("user").as_deref(),
            Some(alice.as_str())
        );
    }
    assert!(!suite.store.exists(&key).await.expect("exists"));
}

/// Once a rotation committed, a save on the old key (from a request that loaded it before)
/// fails with `Interrupted` and re-creates nothing: no write is acknowledged and then lost.
pub async fn save_on_old_key_after_rotation_is_interrupted(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"n": 1})).await;
    let late = suite.session(&config, Some(key.as_str()));
    late.load().await.expect("load before the rotation");

    let rotating = suite.session(&config, Some(key.as_str()));
    rotating.cycle_key().await.expect("cycle_key");
    let (new, _) = set_key(rotating.save().await.expect("rotation"));

    late.insert("n", 2).await.expect("insert");
    let err = late.save().await;
    assert!(matches!(err, Err(Error::Interrupted)), "got {err:?}");
    assert!(!suite.store.exists(&key).await.expect("exists"));
    let next = suite.session(&config, Some(new.as_str()));
    assert_eq!(next.get::<u32>("n").await.expect("get"), Some(1));
}

/// 64 concurrent requests each run `update(counter, n + 1)` on one session, half of them
/// through a second store object (another "process" to the handle, so their writes really
/// conflict in the store): the counter ends exactly 64 higher and every save succeeds.
pub async fn concurrent_update_closures_lose_no_increment(suite: Suite) {
    let config = Arc::new(suite.config());
    let key = saved_session(&suite, &config, json!({"counter": 0})).await;
    let other_process: Arc<dyn SessionStore> = Arc::new(suite.store.clone());
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = if i % 2 == 0 {
            suite.store.clone()
        } else {
            other_process.clone()
        };
        let config = config.clone();
        let cookie = key.as_str().to_owned();
        tasks.push(tokio::spawn(async move {
            let s = Session::new(store, config, Some(&cookie));
            s.update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
                .await?;
            s.save().await
        }));
    }
    for task in tasks {
        task.await
            .expect("task")
            .expect("every update is acknowledged");
    }
    let s = suite.session(&config, Some(key.as_str()));
    assert_eq!(
        s.get::<u64>("counter").await.expect("get"),
        Some(64),
        "an acknowledged increment was lost"
    );
}

/// `login` as another user on a logged-in session flushes it (Django's rule): new key, no
/// data of the previous user, the old record gone. Needs a store that keeps the session's
/// user (one with a user index); on others the case says so and stops.
pub async fn login_as_another_user_flushes(suite: Suite) {
    if user_index_unsupported(&suite, "login_as_another_user_flushes").await {
        return;
    }
    let config = Arc::new(suite.config());
    let (alice, bob) = (user(), user());
    let s = suite.session(&config, None);
    s.login(alice.clone()).await.expect("login");
    s.insert("cart", ["alice's book"]).await.expect("insert");
    let (key, _) = set_key(s.save().await.expect("save"));

    let s = suite.session(&config, Some(key.as_str()));
    s.login(bob.clone()).await.expect("login as bob");
    let (new, _) = set_key(s.save().await.expect("save"));
    assert_ne!(new, key);
    assert!(!suite.store.exists(&key).await.expect("exists"));
    let next = suite.session(&config, Some(new.as_str()));
    assert_eq!(next.get::<Value>("cart").await.expect("get"), None);
    if suite.store.user_index().is_some() {
        assert_eq!(
            next.user_id().await.expect("user").as_deref(),
            Some(bob.as_str())
        );
        assert!(suite
            .store
            .list_for_user(&alice)
            .await
            .expect("list")
            .is_empty());
    }
}

/// `login` as the user already logged in (or on an anonymous session) rotates the key and
/// keeps the data.
pub async fn login_as_same_user_rotates_and_keeps_data(suite: Suite) {
    let config = Arc::new(suite.config());
    let alice = user();
    let key = saved_session(&suite, &config, json!({"cart": ["apple"]})).await;
    let s = suite.session(&config, Some(key.as_str()));
    s.login(alice.clone()).await.expect("anonymous -> alice");
    let (first, _) = set_key(s.save().await.expect("save"));
    let s = suite.session(&config, Some(first.as_str()));
    s.login(alice.clone()).await.expect("alice again");
    let (second, _) = set_key(s.save().await.expect("save"));
    assert!(first != key && second != first);
    for old in [&key, &first] {
        assert!(!suite.store.exists(old).await.expect("exists"));
    }
    let next = suite.session(&config, Some(second.as_str()));
    assert_eq!(
        next.get::<Vec<String>>("cart").await.expect("get"),
        Some(vec!["apple".into()])
    );
}
