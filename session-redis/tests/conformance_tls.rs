//! The conformance suite over TLS: a standalone Redis that speaks TLS only
//! (`SESSION_TEST_REDIS_TLS_URL`, a `rediss://` URL), its certificate checked against the
//! CA of `SESSION_TEST_REDIS_TLS_CA` (`RedisStoreBuilder::tls_root_certificate`).
//! Compiled only with the `redis-tests` feature and a TLS feature.
#![cfg(all(
    feature = "redis-tests",
    any(feature = "tls-rustls", feature = "tls-native-tls")
))]

mod common;

use std::time::Duration;

use session_core::{SessionKey, SessionStore};
use session_redis::RedisStore;

fn tls_store(tag: &str) -> RedisStore {
    let ca_path = common::env("SESSION_TEST_REDIS_TLS_CA");
    let ca = std::fs::read(&ca_path).unwrap_or_else(|e| panic!("reading {ca_path}: {e}"));
    let url = common::env("SESSION_TEST_REDIS_TLS_URL");
    assert!(url.starts_with("rediss://"), "a TLS URL: {url}");
    RedisStore::builder()
        .url(url)
        .tls_root_certificate(ca)
        .key_prefix(common::prefix(tag))
        .response_timeout(Duration::from_secs(5))
        .build()
        .expect("build TLS store")
}

async fn make_store() -> RedisStore {
    tls_store("tls")
}

session_conformance::store_suite!(make_store);

/// A plain-text client cannot talk to the TLS-only server (the store really uses TLS), and
/// without the test CA the server's certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_server_refuses_plain_text() {
    let store = tls_store("tls-ping");
    store.ping().await.expect("ping over TLS");
    let plain = common::env("SESSION_TEST_REDIS_TLS_URL").replacen("rediss://", "redis://", 1);
    let plain = RedisStore::builder()
        .url(plain)
        .key_prefix(common::prefix("plain"))
        .connect_timeout(Duration::from_millis(500))
        .wait_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .build()
        .expect("build plain store");
    let err = plain
        .load(&SessionKey::generate())
        .await
        .expect_err("plain text to a TLS port");
    assert!(err.is_unavailable(), "{err:?}");
    let untrusted = RedisStore::builder()
        .url(common::env("SESSION_TEST_REDIS_TLS_URL"))
        .key_prefix(common::prefix("untrusted"))
        .build()
        .expect("build store without the CA");
    let err = untrusted
        .load(&SessionKey::generate())
        .await
        .expect_err("a certificate of an unknown CA");
    // rustls answers Unavailable (an I/O error), native-tls Backend: either way the
    // cause is the certificate.
    println!("without the CA: {err:?}");
    assert!(
        format!("{err:?}").to_lowercase().contains("certificate"),
        "{err:?}"
    );
}
