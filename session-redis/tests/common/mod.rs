//! Shared helpers for the server-backed tests (included with `mod common;`).
#![allow(dead_code)]

use std::time::Duration;

use session_core::SessionKey;
use session_redis::RedisStore;

/// Reads a required environment variable, panicking with a clear message when it is
/// missing: these tests never skip.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the session-redis server tests need it (start the servers \
             with scripts/services.sh and source its env file)"
        )
    })
}

/// A fresh random key prefix, so that tests sharing a server never see each other's keys.
pub fn prefix(tag: &str) -> String {
    format!("test:{tag}:{}:", &SessionKey::generate().as_str()[..12])
}

/// A store on the standalone server of `SESSION_TEST_REDIS_URL` with its own prefix.
pub fn standalone(tag: &str) -> RedisStore {
    RedisStore::builder()
        .url(env("SESSION_TEST_REDIS_URL"))
        .key_prefix(prefix(tag))
        .response_timeout(Duration::from_secs(5))
        .build()
        .expect("build store")
}

/// The cluster node URLs of `SESSION_TEST_REDIS_CLUSTER_URLS` (comma-separated).
pub fn cluster_urls() -> Vec<String> {
    env("SESSION_TEST_REDIS_CLUSTER_URLS")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A store on the cluster with its own prefix.
#[cfg(feature = "cluster")]
pub fn cluster(tag: &str) -> RedisStore {
    RedisStore::builder()
        .cluster_urls(cluster_urls())
        .key_prefix(prefix(tag))
        .response_timeout(Duration::from_secs(5))
        .build()
        .expect("build cluster store")
}

/// The sentinel URLs of `SESSION_TEST_REDIS_SENTINEL_URLS` (comma-separated).
pub fn sentinel_urls() -> Vec<String> {
    env("SESSION_TEST_REDIS_SENTINEL_URLS")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A store on the master the sentinels name for `SESSION_TEST_REDIS_SENTINEL_SERVICE`.
#[cfg(feature = "sentinel")]
pub fn sentinel(tag: &str) -> RedisStore {
    sentinel_with(tag, Duration::from_secs(5))
}

/// As [`sentinel`], with `timeout` for connecting, waiting and each response.
#[cfg(feature = "sentinel")]
pub fn sentinel_with(tag: &str, timeout: Duration) -> RedisStore {
    RedisStore::builder()
        .sentinel(sentinel_urls(), env("SESSION_TEST_REDIS_SENTINEL_SERVICE"))
        .key_prefix(prefix(tag))
        .connect_timeout(timeout)
        .wait_timeout(timeout)
        .response_timeout(timeout)
        .build()
        .expect("build sentinel store")
}
