//! The conformance suite against a Redis Cluster (`SESSION_TEST_REDIS_CLUSTER_URLS`,
//! comma-separated node URLs). Compiled only with the `cluster` and `redis-tests` features.
#![cfg(all(feature = "cluster", feature = "redis-tests"))]

mod common;

async fn make_store() -> session_redis::RedisStore {
    common::cluster("conf")
}

session_conformance::store_suite!(make_store);
