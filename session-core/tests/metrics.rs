//! The `metrics` feature: counters and histograms are emitted with the documented names
//! and labels, and no label ever carries a session key or session data.
//!
//! `cargo test -p session-core --features metrics --test metrics`

#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use session_core::chrono::{DateTime, Duration, Utc};
use session_core::{
    async_trait, auth_hash_fn, CookieAction, JsonCodec, Record, Session, SessionConfig, SessionKey,
    SessionManager, SessionMap, SessionStore, StoreError, StoreResult,
};
use session_memory::MemoryStore;

const SECRET_DATA: &str = "card-4111-1111-1111-1111";

/// A store whose `update` always conflicts and whose first `create` collides.
struct Hostile {
    inner: MemoryStore,
    collided: AtomicBool,
}

#[async_trait]
impl SessionStore for Hostile {
    async fn create(&self, r: &Record) -> StoreResult<()> {
        if !self.collided.swap(true, Ordering::SeqCst) {
            return Err(StoreError::KeyExists);
        }
        self.inner.create(r).await
    }
    async fn load(&self, k: &SessionKey) -> StoreResult<Option<Record>> {
        self.inner.load(k).await
    }
    async fn update(&self, _: &Record) -> StoreResult<u64> {
        Err(StoreError::Conflict)
    }
    async fn touch(&self, k: &SessionKey, at: DateTime<Utc>) -> StoreResult<bool> {
        self.inner.touch(k, at).await
    }
    async fn delete(&self, k: &SessionKey) -> StoreResult<bool> {
        self.inner.delete(k).await
    }
    fn backend_name(&self) -> &'static str {
        "hostile"
    }
}

fn key_of(action: CookieAction) -> SessionKey {
    match action {
        CookieAction::Set { key, .. } => key,
        other => panic!("{other:?}"),
    }
}

async fn workload() -> Vec<SessionKey> {
    let mut keys = Vec::new();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let stamp = Arc::new(Mutex::new("v1".to_owned()));
    let users = stamp.clone();
    let config = Arc::new(SessionConfig::default().with_auth_hash_source(auth_hash_fn(
        move |_user: String| {
            let current = users.lock().unwrap().clone();
            async move { Ok(Some(current)) }
        },
    )));
    let s = Session::new(store.clone(), config.clone(), None);
    s.insert("card", SECRET_DATA).await.unwrap();
    s.login_with_auth_hash("alice", "v1").await.unwrap();
    let key = key_of(s.save().await.unwrap()); // create
    keys.push(key.clone());
    let s = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    s.insert("more", SECRET_DATA).await.unwrap(); // load
    s.save().await.unwrap(); // update
    *stamp.lock().unwrap() = "v2".into();
    let s = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    assert_eq!(s.user_id().await.unwrap(), None); // load + delete (auth hash logout)
    let missing = SessionKey::generate();
    keys.push(missing.clone());
    let s = Session::new(store.clone(), config, Some(missing.as_str()));
    s.load().await.unwrap(); // load miss

    let hostile: Arc<dyn SessionStore> = Arc::new(Hostile {
        inner: MemoryStore::new(),
        collided: AtomicBool::new(false),
    });
    let config = Arc::new(SessionConfig::default().with_max_conflict_retries(2));
    let s = Session::new(hostile.clone(), config.clone(), None);
    s.insert("card", SECRET_DATA).await.unwrap();
    let k = key_of(s.save().await.unwrap()); // collision, then create
    keys.push(k.clone());
    let s = Session::new(hostile, config, Some(k.as_str()));
    s.insert("card", "x").await.unwrap();
    assert!(s.save().await.is_err()); // 3 conflicts, 2 retries

    let manager = SessionManager::new(store, Arc::new(JsonCodec));
    let k = SessionKey::generate();
    keys.push(k.clone());
    let mut map = SessionMap::new();
    map.insert("card".into(), SECRET_DATA.into());
    manager
        .save(&k, &map, Utc::now() + Duration::hours(1))
        .await
        .unwrap(); // load miss + create
    keys
}

type Labels = BTreeMap<String, String>;

#[test]
fn metrics_have_the_documented_names_labels_and_counts() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let keys = metrics::with_local_recorder(&recorder, || rt.block_on(workload()));

    let mut counters: BTreeMap<(String, Labels), u64> = BTreeMap::new();
    let mut histograms: BTreeMap<(String, Labels), usize> = BTreeMap::new();
    for (key, _unit, _desc, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Labels = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        // No label carries a key or data.
        for value in labels
            .values()
            .chain(std::iter::once(&key.name().to_owned()))
        {
            assert!(
                !value.contains(SECRET_DATA) && !value.contains("4111"),
                "{value}"
            );
            for k in &keys {
                assert!(
                    !value.contains(k.as_str()),
                    "a session key in a metric: {value}"
                );
            }
            assert!(
                value.len() <= 48,
                "label too long for a fixed word: {value}"
            );
        }
        match value {
            DebugValue::Counter(n) => {
                counters.insert((key.name().to_owned(), labels), n);
            }
            DebugValue::Histogram(samples) => {
                assert!(samples.iter().all(|s| s.into_inner() >= 0.0));
                histograms.insert((key.name().to_owned(), labels), samples.len());
            }
            DebugValue::Gauge(_) => panic!("no gauges are documented"),
        }
    }
    let ops = |operation: &str, backend: &str, outcome: &str| {
        let labels: Labels = [
            ("backend", backend),
            ("operation", operation),
            ("outcome", outcome),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        counters
            .get(&("session_store_operations_total".to_owned(), labels))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(ops("create", "memory", "ok"), 2, "{counters:#?}"); // handle + manager
    assert_eq!(ops("load", "memory", "ok"), 2, "{counters:#?}");
    assert_eq!(ops("load", "memory", "miss"), 2, "{counters:#?}"); // handle + manager
    assert_eq!(ops("update", "memory", "ok"), 1);
    assert_eq!(ops("delete", "memory", "ok"), 1);
    assert_eq!(ops("create", "hostile", "key_exists"), 1);
    assert_eq!(ops("create", "hostile", "ok"), 1);
    assert_eq!(ops("update", "hostile", "conflict"), 3);

    let single = |name: &str, labels: &[(&str, &str)]| {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        counters
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        single("session_save_conflicts_total", &[("backend", "hostile")]),
        3
    );
    assert_eq!(
        single("session_save_retries_total", &[("backend", "hostile")]),
        2
    );
    assert_eq!(
        single("session_create_collisions_total", &[("backend", "hostile")]),
        1
    );
    assert_eq!(single("session_auth_hash_logouts_total", &[]), 1);

    let latency: Labels = [("backend", "memory"), ("operation", "load")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        histograms.get(&(
            "session_store_operation_duration_seconds".to_owned(),
            latency
        )),
        Some(&4),
        "{histograms:#?}"
    );
}
