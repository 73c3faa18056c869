//! The server-backed suites: CachedStore with a Redis front over PostgreSQL (shared and per
//! process), HashedKeys over PostgreSQL and Redis, and two app processes sharing a Redis
//! front. Compiled with the `server-tests` feature; they need SESSION_TEST_REDIS_URL and
//! SESSION_TEST_POSTGRES_URL and panic (never skip) without them.
#![cfg(feature = "server-tests")]

mod common;

use common::DeviceIdsAsKeys;
use session_combinators::CachedStore;
use session_core::chrono::{TimeDelta, Utc};
use session_core::{Record, SessionKey, SessionStore};

mod cached_redis_over_postgres {
    async fn make_store() -> impl session_core::SessionStore {
        session_combinators::CachedStore::shared(
            super::common::redis("front"),
            super::common::postgres("cpg").await,
        )
    }
    session_conformance::store_suite!(make_store);
}

mod cached_memory_over_postgres {
    async fn make_store() -> impl session_core::SessionStore {
        session_combinators::CachedStore::per_process(
            session_memory::MemoryStore::new(),
            super::common::postgres("cmpg").await,
        )
    }
    session_conformance::store_suite!(make_store);
}

mod hashed_over_postgres {
    async fn make_store() -> impl session_core::SessionStore {
        super::DeviceIdsAsKeys::new(super::common::postgres("hpg").await)
    }
    session_conformance::store_suite!(make_store);
}

mod hashed_over_redis {
    async fn make_store() -> impl session_core::SessionStore {
        super::DeviceIdsAsKeys::new(super::common::redis("hashed"))
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

/// Two app processes: each its own Redis connection pool on one key prefix (one shared
/// front) and its own PostgreSQL pool on one table.
async fn two_processes() -> (
    CachedStore<session_redis::RedisStore, session_sql::SqlStore>,
    CachedStore<session_redis::RedisStore, session_sql::SqlStore>,
) {
    let table = common::unique("two");
    let prefix = format!("test:comb:{}:", common::unique("two"));
    (
        CachedStore::shared(
            common::redis_prefix(&prefix),
            common::postgres_table(&table).await,
        ),
        CachedStore::shared(
            common::redis_prefix(&prefix),
            common::postgres_table(&table).await,
        ),
    )
}

#[test]
fn redis_front_a_revoke_or_logout_in_one_process_is_seen_by_the_other_at_once() {
    rt().block_on(async {
        let (a, b) = two_processes().await;
        let (phone, laptop, tablet) = (record("alice"), record("alice"), record("alice"));
        for r in [&phone, &laptop, &tablet] {
            a.create(r).await.expect("create");
            assert!(a.load(&r.key).await.expect("load").is_some());
            assert!(b.load(&r.key).await.expect("load").is_some());
        }
        let revoker: &dyn SessionStore = &b;
        assert_eq!(
            revoker
                .delete_for_user("alice", Some(&laptop.key))
                .await
                .expect("revoke others"),
            2
        );
        assert!(a.load(&phone.key).await.expect("load").is_none());
        assert!(a.load(&tablet.key).await.expect("load").is_none());
        assert!(a.load(&laptop.key).await.expect("load").is_some());
        assert!(a.delete(&laptop.key).await.expect("logout"));
        assert!(b.load(&laptop.key).await.expect("load").is_none());
        assert!(!b.exists(&laptop.key).await.expect("exists"));
        assert_eq!(a.front_failures() + b.front_failures(), 0);
    });
}

#[test]
fn redis_front_a_write_in_one_process_is_read_by_the_other() {
    rt().block_on(async {
        let (a, b) = two_processes().await;
        let r = record("alice");
        a.create(&r).await.expect("create");
        let mut loaded = b.load(&r.key).await.expect("load").expect("live");
        assert!(a.load(&r.key).await.expect("load").is_some());
        loaded.data = "j1:{\"n\":1}".to_owned();
        let v = b.update(&loaded).await.expect("update");
        let seen = a.load(&r.key).await.expect("load").expect("live");
        assert_eq!((seen.version, seen.data.as_str()), (v, "j1:{\"n\":1}"));
        // A write from A's view before B's write is a conflict, not a lost update.
        let mut stale = loaded.clone();
        stale.data = "j1:{\"n\":2}".to_owned();
        assert!(matches!(
            a.update(&stale).await,
            Err(session_core::StoreError::Conflict)
        ));
    });
}

#[test]
fn hashed_keys_over_redis_a_dump_of_the_stored_keys_loads_nothing() {
    rt().block_on(async {
        let store = session_combinators::HashedKeys::new(common::redis("dump"), common::SECRET)
            .expect("secret");
        let r = record("alice");
        store.create(&r).await.expect("create");
        let index = store.inner().user_index().expect("index");
        let dump = index.list_for_user("alice").await.expect("list");
        assert_eq!(dump.len(), 1);
        assert_ne!(dump[0].key, r.key);
        assert!(store.load(&dump[0].key).await.expect("load").is_none());
        assert!(store.inner().load(&r.key).await.expect("inner").is_none());
        assert!(store.load(&r.key).await.expect("load").is_some());
    });
}
