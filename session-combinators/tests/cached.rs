//! CachedStore without servers: the conformance suite on a memory front over SQLite (both
//! arrangements) and the behaviour that makes it a cache: staleness bounded by the TTL in a
//! per-process front, no lost write, two processes sharing a front, a failing front.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Flaky;
use session_combinators::CachedStore;
use session_core::chrono::{TimeDelta, Utc};
use session_core::{Record, SessionKey, SessionStore, StoreError};
use session_memory::MemoryStore;
use session_sql::SqlStore;

mod per_process_memory_over_sqlite {
    async fn make_store() -> impl session_core::SessionStore {
        session_combinators::CachedStore::per_process(
            session_memory::MemoryStore::new(),
            super::common::sqlite("cpp").await,
        )
    }
    session_conformance::store_suite!(make_store);
}

mod per_process_local_front_over_sqlite {
    async fn make_store() -> impl session_core::SessionStore {
        session_combinators::CachedStore::per_process(
            session_combinators::LocalFront::new(),
            super::common::sqlite("clf").await,
        )
    }
    session_conformance::store_suite!(make_store);
}

mod shared_memory_over_sqlite {
    async fn make_store() -> impl session_core::SessionStore {
        session_combinators::CachedStore::shared(
            session_memory::MemoryStore::new(),
            super::common::sqlite("csh").await,
        )
    }
    session_conformance::store_suite!(make_store);
}

mod failing_front_over_sqlite {
    // A front that is down for the whole case: every operation must still meet the contract.
    async fn make_store() -> impl session_core::SessionStore {
        session_combinators::CachedStore::shared(
            super::common::Flaky::down(),
            super::common::sqlite("cdown").await,
        )
    }
    session_conformance::store_suite!(make_store);
}

fn record(user: Option<&str>) -> Record {
    Record::new(
        SessionKey::generate(),
        "j1:{\"n\":0}".to_owned(),
        Utc::now() + TimeDelta::hours(1),
    )
    .with_user(user)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn reads_are_served_from_the_front_after_the_first_miss() {
    rt().block_on(async {
        let store = CachedStore::per_process(MemoryStore::new(), common::sqlite("hit").await);
        let r = record(None);
        store.create(&r).await.expect("create");
        assert!(store.front().is_empty(), "a create does not fill the front");
        assert!(store.load(&r.key).await.expect("load").is_some());
        assert_eq!(store.front().len(), 1, "the miss filled the front");
        // Remove the row behind the cache's back: the front still answers (a hit).
        store.durable().delete(&r.key).await.expect("delete");
        let hit = store
            .load(&r.key)
            .await
            .expect("load")
            .expect("served from the front");
        assert_eq!(hit.version, r.version);
        assert_eq!(hit.data, r.data);
    });
}

#[test]
fn per_process_front_staleness_is_bounded_by_its_ttl_and_no_write_is_lost() {
    rt().block_on(async {
        let table = common::unique("ttl");
        let ttl = Duration::from_millis(400);
        // Two app processes, each with its own memory front, over one SQLite table.
        let a = CachedStore::per_process(MemoryStore::new(), common::sqlite_table(&table).await)
            .with_front_ttl(ttl);
        let b = CachedStore::per_process(MemoryStore::new(), common::sqlite_table(&table).await)
            .with_front_ttl(ttl);
        let r = record(Some("alice"));
        a.create(&r).await.expect("create");
        let seen_by_a = a.load(&r.key).await.expect("load").expect("live");

        // B writes and then deletes; A may serve its entry, but only within the TTL.
        let mut next = b.load(&r.key).await.expect("load").expect("live");
        next.data = "j1:{\"n\":1}".to_owned();
        let v2 = b.update(&next).await.expect("update");
        let stale = a.load(&r.key).await.expect("load").expect("within the TTL");
        assert_eq!(stale.version, seen_by_a.version, "served from A's front");

        // A write based on A's stale entry is a conflict at the durable store: not lost.
        let mut from_stale = stale.clone();
        from_stale.data = "j1:{\"n\":99}".to_owned();
        assert!(matches!(
            a.update(&from_stale).await,
            Err(StoreError::Conflict)
        ));
        let fresh = a.load(&r.key).await.expect("load").expect("live");
        assert_eq!(fresh.version, v2, "the conflict dropped the stale entry");
        assert_eq!(fresh.data, "j1:{\"n\":1}");

        // A logout in B: A's entry (filled just now) lives at most the TTL.
        assert!(b.delete(&r.key).await.expect("delete"));
        tokio::time::sleep(ttl + Duration::from_millis(150)).await;
        assert!(
            a.load(&r.key).await.expect("load").is_none(),
            "stale past the TTL"
        );
        assert!(!a.exists(&r.key).await.expect("exists"));
    });
}

#[test]
fn a_touch_never_extends_a_per_process_entry_past_its_ttl() {
    rt().block_on(async {
        let table = common::unique("touch");
        let ttl = Duration::from_millis(400);
        let a = CachedStore::per_process(MemoryStore::new(), common::sqlite_table(&table).await)
            .with_front_ttl(ttl);
        let b = CachedStore::per_process(MemoryStore::new(), common::sqlite_table(&table).await)
            .with_front_ttl(ttl);
        let r = record(None);
        a.create(&r).await.expect("create");
        a.load(&r.key).await.expect("load");
        let mut next = b.load(&r.key).await.expect("load").expect("live");
        next.data = "j1:{\"n\":7}".to_owned();
        b.update(&next).await.expect("update");
        // A keeps touching its (stale) entry; after the TTL it must read B's write.
        let deadline = tokio::time::Instant::now() + ttl + Duration::from_millis(150);
        while tokio::time::Instant::now() < deadline {
            assert!(a
                .touch(&r.key, Utc::now() + TimeDelta::hours(2))
                .await
                .expect("touch"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let now = a.load(&r.key).await.expect("load").expect("live");
        assert_eq!(now.data, "j1:{\"n\":7}");
    });
}

#[test]
fn a_front_entry_never_outlives_the_record() {
    rt().block_on(async {
        let store = CachedStore::shared(MemoryStore::new(), common::sqlite("short").await);
        let mut r = record(None);
        r.expires_at = Utc::now() + TimeDelta::milliseconds(300);
        store.create(&r).await.expect("create");
        assert!(store.load(&r.key).await.expect("load").is_some());
        let front = store
            .front()
            .load(&r.key)
            .await
            .expect("front load")
            .expect("filled");
        assert!(
            front.expires_at <= r.expires_at,
            "front TTL past the record's expiry"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(store.front().load(&r.key).await.expect("front").is_none());
        assert!(store.load(&r.key).await.expect("load").is_none());
    });
}

/// Two app processes: two CachedStores over one shared front and one durable store.
async fn two_processes_shared() -> (
    CachedStore<Arc<MemoryStore>, SqlStore>,
    CachedStore<Arc<MemoryStore>, SqlStore>,
) {
    let table = common::unique("two");
    let front = Arc::new(MemoryStore::new());
    (
        CachedStore::shared(front.clone(), common::sqlite_table(&table).await),
        CachedStore::shared(front, common::sqlite_table(&table).await),
    )
}

#[test]
fn shared_front_a_logout_or_revoke_in_one_process_is_seen_by_the_other_at_once() {
    rt().block_on(async {
        let (a, b) = two_processes_shared().await;
        let (phone, laptop) = (record(Some("alice")), record(Some("alice")));
        a.create(&phone).await.expect("create");
        a.create(&laptop).await.expect("create");
        for key in [&phone.key, &laptop.key] {
            assert!(a.load(key).await.expect("load").is_some());
            assert!(b.load(key).await.expect("load").is_some());
        }
        // Revoke everything but the laptop in B: A sees it at once.
        let store: &dyn SessionStore = &b;
        assert_eq!(
            store
                .delete_for_user("alice", Some(&laptop.key))
                .await
                .expect("revoke"),
            1
        );
        assert!(a.load(&phone.key).await.expect("load").is_none());
        assert!(!a.exists(&phone.key).await.expect("exists"));
        // Logout in A: B sees it at once.
        assert!(a.delete(&laptop.key).await.expect("logout"));
        assert!(b.load(&laptop.key).await.expect("load").is_none());
        assert!(a.front().is_empty());
    });
}

#[test]
fn shared_front_a_rotation_in_one_process_is_seen_by_the_other_at_once() {
    rt().block_on(async {
        let (a, b) = two_processes_shared().await;
        let r = record(Some("alice"));
        a.create(&r).await.expect("create");
        let loaded = b.load(&r.key).await.expect("load").expect("live");
        assert!(a.load(&r.key).await.expect("load").is_some());
        b.delete_at_version(&r.key, loaded.version)
            .await
            .expect("rotate away");
        assert!(a.load(&r.key).await.expect("load").is_none());
    });
}

#[test]
fn shared_front_a_write_in_one_process_is_read_by_the_other() {
    rt().block_on(async {
        let (a, b) = two_processes_shared().await;
        let r = record(None);
        a.create(&r).await.expect("create");
        let mut loaded = a.load(&r.key).await.expect("load").expect("live");
        loaded.data = "j1:{\"n\":5}".to_owned();
        let v = a.update(&loaded).await.expect("update");
        let seen = b.load(&r.key).await.expect("load").expect("live");
        assert_eq!((seen.version, seen.data.as_str()), (v, "j1:{\"n\":5}"));
    });
}

#[test]
fn shared_front_concurrent_readers_and_deleters_leave_no_deleted_session_readable() {
    rt().block_on(async {
        let (a, b) = two_processes_shared().await;
        let a = Arc::new(a);
        let b = Arc::new(b);
        for round in 0..40 {
            let r = record(Some("alice"));
            a.create(&r).await.expect("create");
            // Readers hammer the key in A while B deletes it.
            let mut readers = Vec::new();
            for _ in 0..4 {
                let a = a.clone();
                let key = r.key.clone();
                readers.push(tokio::spawn(async move {
                    for _ in 0..10 {
                        a.load(&key).await.expect("load");
                    }
                }));
            }
            tokio::task::yield_now().await;
            if round % 2 == 0 {
                b.delete(&r.key).await.expect("delete");
            } else {
                let store: &dyn SessionStore = &*b;
                store.delete_for_user("alice", None).await.expect("revoke");
            }
            // From here on, nobody may read it, whatever the readers still do.
            for _ in 0..5 {
                assert!(
                    a.load(&r.key).await.expect("load").is_none(),
                    "round {round}"
                );
                assert!(
                    b.load(&r.key).await.expect("load").is_none(),
                    "round {round}"
                );
                tokio::task::yield_now().await;
            }
            for reader in readers {
                reader.await.expect("reader");
            }
            assert!(
                a.load(&r.key).await.expect("load").is_none(),
                "round {round}"
            );
        }
    });
}

#[test]
fn a_failing_front_degrades_to_the_durable_store_and_counts() {
    rt().block_on(async {
        let store = CachedStore::shared(Flaky::default(), common::sqlite("flaky").await);
        let r = record(Some("alice"));
        store.create(&r).await.expect("create");
        assert!(store.load(&r.key).await.expect("load").is_some());
        assert_eq!(store.front_failures(), 0);

        store.front().set_down(true);
        let mut loaded = store
            .load(&r.key)
            .await
            .expect("load with the front down")
            .expect("live");
        loaded.data = "j1:{\"n\":3}".to_owned();
        let v = store
            .update(&loaded)
            .await
            .expect("update with the front down");
        assert!(store
            .touch(&r.key, Utc::now() + TimeDelta::hours(2))
            .await
            .expect("touch"));
        assert!(store.exists(&r.key).await.expect("exists"));
        let failures = store.front_failures();
        assert!(
            failures >= 4,
            "every front call failed and was counted, got {failures}"
        );

        // The front comes back: its old entry was not updated, but the write reached the
        // durable store; the first write or read after recovery sees the current version.
        store.front().set_down(false);
        let mut now = store.load(&r.key).await.expect("load").expect("live");
        if now.version != v {
            // A stale entry from before the outage: the next write conflicts (not lost) and
            // drops it.
            assert!(matches!(
                store.update(&now).await,
                Err(StoreError::Conflict)
            ));
            now = store.load(&r.key).await.expect("load").expect("live");
        }
        assert_eq!((now.version, now.data.as_str()), (v, "j1:{\"n\":3}"));
        assert!(store.delete(&r.key).await.expect("delete"));
        assert!(store.load(&r.key).await.expect("load").is_none());
    });
}
