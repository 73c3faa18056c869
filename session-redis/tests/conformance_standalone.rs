//! The conformance suite against a standalone Redis (`SESSION_TEST_REDIS_URL`).
//! Compiled only with the `redis-tests` feature.
#![cfg(feature = "redis-tests")]

mod common;

async fn make_store() -> session_redis::RedisStore {
    common::standalone("conf")
}

session_conformance::store_suite!(make_store);
