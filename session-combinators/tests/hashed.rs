//! HashedKeys without servers: the conformance suite over the memory store and SQLite, and
//! the property it exists for: a dump of the stored keys used as cookies loads nothing.

mod common;

use common::{DeviceIdsAsKeys, SECRET};
use session_combinators::HashedKeys;
use session_core::chrono::{TimeDelta, Utc};
use session_core::{Record, SessionKey, SessionStore, UserIndex};
use session_memory::MemoryStore;

mod over_memory {
    async fn make_store() -> impl session_core::SessionStore {
        super::DeviceIdsAsKeys::new(session_memory::MemoryStore::new())
    }
    session_conformance::store_suite!(make_store);
}

mod over_sqlite {
    async fn make_store() -> impl session_core::SessionStore {
        super::DeviceIdsAsKeys::new(super::common::sqlite("hsq").await)
    }
    session_conformance::store_suite!(make_store);
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn record(user: &str) -> Record {
    Record::new(
        SessionKey::generate(),
        "j1:{}".to_owned(),
        Utc::now() + TimeDelta::hours(1),
    )
    .with_user(Some(user))
}

#[test]
fn stored_keys_differ_from_cookies_and_a_dump_replayed_as_cookies_loads_nothing() {
    rt().block_on(async {
        let store = HashedKeys::new(common::sqlite("dump").await, SECRET).expect("secret");
        let mut cookies = Vec::new();
        for _ in 0..20 {
            let r = record("alice");
            store.create(&r).await.expect("create");
            cookies.push(r.key);
        }
        // The "dump": every key the inner store holds.
        let dump: Vec<SessionKey> = store
            .inner()
            .user_index()
            .expect("index")
            .list_for_user("alice")
            .await
            .expect("list")
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(dump.len(), cookies.len());
        for stolen in &dump {
            assert!(!cookies.contains(stolen), "a stored key is a cookie value");
            // Replayed as a cookie through the application's store: nothing.
            assert!(store.load(stolen).await.expect("load").is_none());
            assert!(!store.exists(stolen).await.expect("exists"));
        }
        for cookie in &cookies {
            assert!(store.inner().load(cookie).await.expect("inner").is_none());
            assert!(store.load(cookie).await.expect("load").is_some());
        }
    });
}

#[test]
fn devices_are_listed_by_identifier_and_revoked_one_by_one() {
    rt().block_on(async {
        let store = HashedKeys::new(MemoryStore::new(), SECRET).expect("secret");
        let (phone, laptop, bobs) = (record("alice"), record("alice"), record("bob"));
        for r in [&phone, &laptop, &bobs] {
            store.create(r).await.expect("create");
        }
        let dynamic: &dyn SessionStore = &store;
        let devices = dynamic.list_for_user("alice").await.expect("list");
        let mut ids: Vec<_> = devices.iter().map(|r| r.key.clone()).collect();
        ids.sort();
        let mut expected = vec![store.device_id(&phone.key), store.device_id(&laptop.key)];
        expected.sort();
        assert_eq!(ids, expected, "listed keys are the device identifiers");
        assert!(!ids.contains(&phone.key) && !ids.contains(&laptop.key));

        // Another user's device id is not alice's to revoke.
        assert!(!store
            .revoke_device("alice", &store.device_id(&bobs.key))
            .await
            .expect("revoke"));
        assert!(store.load(&bobs.key).await.expect("load").is_some());
        // Revoke the phone by its identifier.
        assert!(store
            .revoke_device("alice", &store.device_id(&phone.key))
            .await
            .expect("revoke"));
        assert!(store.load(&phone.key).await.expect("load").is_none());
        assert!(store.load(&laptop.key).await.expect("load").is_some());
        // "Log out everywhere else" takes the cookie key.
        let other = record("alice");
        store.create(&other).await.expect("create");
        assert_eq!(
            store
                .delete_for_user("alice", Some(&laptop.key))
                .await
                .expect("revoke others"),
            1
        );
        assert!(store.load(&laptop.key).await.expect("load").is_some());
        assert!(store.load(&other.key).await.expect("load").is_none());
    });
}

#[test]
fn the_hash_depends_on_the_secret_and_short_secrets_are_refused() {
    let key = SessionKey::generate();
    let a = HashedKeys::new(MemoryStore::new(), SECRET).expect("secret");
    let b = HashedKeys::new(MemoryStore::new(), [1u8; 32]).expect("secret");
    assert_eq!(a.device_id(&key), a.device_id(&key));
    assert_ne!(a.device_id(&key), b.device_id(&key));
    assert_ne!(a.device_id(&key), key);
    let err = HashedKeys::new(MemoryStore::new(), [1u8; 31]).expect_err("too short");
    assert!(err.to_string().contains("32"), "{err}");
    let shown = format!("{a:?}");
    assert!(shown.contains("redacted"), "{shown}");
    assert!(
        !shown.contains("test secret"),
        "Debug printed the secret: {shown}"
    );
}
