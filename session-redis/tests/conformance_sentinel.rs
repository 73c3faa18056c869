//! The conformance suite through Redis Sentinel (`SESSION_TEST_REDIS_SENTINEL_URLS`,
//! comma-separated sentinel URLs, and `SESSION_TEST_REDIS_SENTINEL_SERVICE`).
//! Compiled only with the `sentinel` and `redis-tests` features.
#![cfg(all(feature = "sentinel", feature = "redis-tests"))]

mod common;

async fn make_store() -> session_redis::RedisStore {
    common::sentinel("conf-sentinel")
}

session_conformance::store_suite!(make_store);
