//! The conformance suite through Redis Sentinel (`SESSION_TEST_REDIS_SENTINEL_URLS`,
//! comma-separated sentinel URLs, and `SESSION_TEST_REDIS_SENTINEL_SERVICE`).
//! Compiled only with the `sentinel` and `redis-tests` features.
#![cfg(all(feature = "sentinel", feature = "redis-tests"))]

mod common;

async fn make_store() -> session_redis::RedisStore {
    common::sentinel("conf-sentinel")
}

session_conformance::store_suite!(make_store);

/// With Sentinel the store waits for a replica (`wait_for_replicas`, on by default): a
/// write it acknowledged is already on the replica, so a failover cannot lose it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_are_on_the_replica() {
    use session_core::chrono::{TimeDelta, Utc};
    use session_core::{Record, SessionKey, SessionStore};
    use session_redis::redis;

    let mut sentinel = redis::Client::open(common::sentinel_urls()[0].as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("sentinel");
    let replicas: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
        .arg("REPLICAS")
        .arg(common::env("SESSION_TEST_REDIS_SENTINEL_SERVICE"))
        .query_async(&mut sentinel)
        .await
        .expect("SENTINEL REPLICAS");
    let replica = replicas
        .iter()
        .find(|r| r.get("flags").is_some_and(|f| !f.contains("down")))
        .expect("a replica up");
    let mut replica = redis::Client::open(format!("redis://{}:{}", replica["ip"], replica["port"]))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("replica");
    let store = common::sentinel("acked-on-replica");
    for _ in 0..50 {
        let mut r = Record::new(
            SessionKey::generate(),
            "j1:{}".into(),
            Utc::now() + TimeDelta::hours(1),
        );
        store.create(&r).await.expect("create");
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(store.session_key(&r.key))
            .query_async(&mut replica)
            .await
            .expect("GET on the replica");
        assert!(v.is_some(), "an acknowledged create is on the replica");
        r.data = "j1:{\"n\":1}".into();
        r.version = store.update(&r).await.expect("update");
        let v: Vec<u8> = redis::cmd("GET")
            .arg(store.session_key(&r.key))
            .query_async(&mut replica)
            .await
            .expect("GET on the replica");
        assert!(
            String::from_utf8_lossy(&v).ends_with("{\"n\":1}"),
            "an acknowledged update is on the replica"
        );
        assert!(store.delete(&r.key).await.expect("delete"));
        let n: i64 = redis::cmd("EXISTS")
            .arg(store.session_key(&r.key))
            .query_async(&mut replica)
            .await
            .expect("EXISTS on the replica");
        assert_eq!(n, 0, "an acknowledged delete is on the replica");
    }
}
