//! The user index on a Redis Cluster (`SESSION_TEST_REDIS_CLUSTER_URLS`), where a session
//! and its user's index live in different hash slots and are written by separate
//! commands. What the store promises (crate docs, "The user index"):
//!
//! 1. a session is never listed (nor deleted by `delete_for_user`) once it is gone or
//!    belongs to another user;
//! 2. every live session of a user is in the index once the write that gave it that user
//!    returned;
//! 3. stale entries are filtered, pruned by reads and counted by `delete_expired`; an
//!    entry pointing at a missing session or another user's is pruned only once it is
//!    older than a grace period (its session write may still be on its way).
//!
//! Compiled only with the `cluster` and `redis-tests` features.
#![cfg(all(feature = "cluster", feature = "redis-tests"))]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use session_core::chrono::{TimeDelta, Utc};
use session_core::{ExpiredCleanup, Record, SessionKey, SessionStore, UserIndex};
use session_redis::redis::{self, AsyncCommands};

async fn raw() -> redis::cluster_async::ClusterConnection {
    redis::cluster::ClusterClient::new(common::cluster_urls())
        .expect("cluster urls")
        .get_async_connection()
        .await
        .expect("raw cluster connection")
}

fn record(user: &str) -> Record {
    let mut r = Record::new(
        SessionKey::generate(),
        "j1:{}".into(),
        Utc::now() + TimeDelta::hours(1),
    );
    r.user_id = Some(user.to_owned());
    r
}

async fn slot(conn: &mut redis::cluster_async::ClusterConnection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(conn)
        .await
        .expect("CLUSTER KEYSLOT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_index_span_slots_and_stay_consistent() {
    let store = common::cluster("xslot");
    assert!(store.is_cluster());
    let mut conn = raw().await;
    let user = "hanna";
    let index = store.user_index_key(user);
    let sessions: Vec<Record> = (0..6).map(|_| record(user)).collect();
    for r in &sessions {
        store.create(r).await.expect("create");
    }
    // The keys really are spread over slots (else this test would prove nothing).
    let index_slot = slot(&mut conn, &index).await;
    let mut slots = HashSet::new();
    for r in &sessions {
        slots.insert(slot(&mut conn, &store.session_key(&r.key)).await);
    }
    assert!(
        slots.len() > 1 && !slots.contains(&index_slot),
        "{slots:?} vs {index_slot}"
    );
    assert_eq!(store.list_for_user(user).await.expect("list").len(), 6);

    // A session removed behind the index's back (as by Redis expiry): not listed, then pruned.
    let _: () = conn
        .del(store.session_key(&sessions[0].key))
        .await
        .expect("DEL");
    // An entry left by a create whose session write then failed.
    let _: () = conn
        .zadd(&index, SessionKey::generate().as_str(), 1)
        .await
        .expect("ZADD");
    // delete() does not touch the index either.
    assert!(store.delete(&sessions[1].key).await.expect("delete"));
    let n: usize = conn.zcard(&index).await.expect("ZCARD");
    assert_eq!(n, 7, "stale entries are still indexed");
    let listed: HashSet<_> = store
        .list_for_user(user)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.key)
        .collect();
    let want: HashSet<_> = sessions[2..].iter().map(|r| r.key.clone()).collect();
    assert_eq!(listed, want, "never listed once gone");
    let n: usize = conn.zcard(&index).await.expect("ZCARD");
    assert_eq!(
        n, 6,
        "the read pruned the old stale entry, and kept the two young ones (their session \
         write could still be on its way: cluster mode writes the index entry first)"
    );

    // Moving a session to another user: the new index is written before the session
    // (cluster update: ZADD, then the compare-and-swap), the old entry goes stale.
    let mut moved = store
        .load(&sessions[2].key)
        .await
        .expect("load")
        .expect("live");
    moved.user_id = Some("ivan".into());
    assert_eq!(store.update(&moved).await.expect("update"), 2);
    let ivan: Vec<String> = conn
        .zrange(store.user_index_key("ivan"), 0, -1)
        .await
        .expect("ZRANGE");
    assert_eq!(ivan, vec![sessions[2].key.as_str().to_owned()]);
    assert_eq!(store.list_for_user(user).await.expect("list").len(), 3);
    assert_eq!(store.list_for_user("ivan").await.expect("list").len(), 1);
    // "Log out everywhere" for hanna never touches ivan's session.
    assert_eq!(
        store
            .delete_for_user(user, Some(&sessions[3].key))
            .await
            .expect("delete_for_user"),
        2
    );
    assert!(store.exists(&sessions[2].key).await.expect("exists"));
    assert!(store.exists(&sessions[3].key).await.expect("exists"));
    let listed = store.list_for_user(user).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, sessions[3].key);

    // delete_expired scans every master and prunes what is left stale.
    let _: () = conn
        .zadd(
            store.user_index_key("judy"),
            SessionKey::generate().as_str(),
            1,
        )
        .await
        .expect("ZADD");
    let _: () = conn
        .zadd(&index, SessionKey::generate().as_str(), 1)
        .await
        .expect("ZADD");
    assert_eq!(store.delete_expired().await.expect("delete_expired"), 2);
    assert_eq!(store.delete_expired().await.expect("again"), 0);
}

/// While sessions are created and deleted concurrently, every list only ever shows live
/// sessions of the user, and once the writers are done the index is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_never_list_a_gone_session() {
    let store = common::cluster("xslot-conc");
    let user = "kim";
    let done = Arc::new(AtomicBool::new(false));
    let deleted: Arc<parking_lot::Mutex<HashSet<SessionKey>>> = Arc::default();

    let mut writers = Vec::new();
    for _ in 0..4 {
        let (store, deleted) = (store.clone(), deleted.clone());
        writers.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for i in 0..40 {
                let r = record(user);
                store.create(&r).await.expect("create");
                if i % 2 == 0 {
                    assert!(store.delete(&r.key).await.expect("delete"));
                    deleted.lock().insert(r.key);
                } else {
                    kept.push(r.key);
                }
            }
            kept
        }));
    }
    let reader = {
        let (store, done, deleted) = (store.clone(), done.clone(), deleted.clone());
        tokio::spawn(async move {
            let mut lists = 0;
            while !done.load(Ordering::Relaxed) {
                // Snapshot the deletions that completed before the list started.
                let gone: HashSet<SessionKey> = deleted.lock().clone();
                for r in store.list_for_user(user).await.expect("list") {
                    assert!(!gone.contains(&r.key), "a deleted session was listed");
                    assert_eq!(r.user_id.as_deref(), Some(user));
                }
                lists += 1;
            }
            lists
        })
    };
    let mut kept = HashSet::new();
    for w in writers {
        kept.extend(w.await.expect("writer"));
    }
    done.store(true, Ordering::Relaxed);
    let lists = reader.await.expect("reader");
    assert!(lists > 0);
    let listed: HashSet<_> = store
        .list_for_user(user)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(
        listed, kept,
        "every live session is indexed once its create returned"
    );
    assert_eq!(
        store
            .delete_for_user(user, None)
            .await
            .expect("delete_for_user"),
        80
    );
    assert!(store.list_for_user(user).await.expect("list").is_empty());
    println!("cluster concurrency: {lists} concurrent lists, 160 creates, 80 deletes");
}
