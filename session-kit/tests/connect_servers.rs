//! `session_kit::connect` against the servers of scripts/services.sh: PostgreSQL,
//! MySQL/MariaDB, Redis (plain, TLS, Cluster, Sentinel). Compiled with the `server-tests`
//! feature (CI's --all-features); each test fails when its SESSION_TEST_* variable is
//! missing.
#![cfg(feature = "server-tests")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use session_kit::{ConnectError, CookieAction, Session, SessionConfig, SessionStore};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set (scripts/services.sh start)"))
}

async fn round_trip(store: Arc<dyn SessionStore>) {
    let config = Arc::new(SessionConfig::default());
    let user = format!(
        "kit-connect-{}",
        session_kit::SessionKey::generate().as_str()
    );
    let session = Session::new(store.clone(), config.clone(), None);
    session.login(user.clone()).await.unwrap();
    session.insert("cart", vec!["apple"]).await.unwrap();
    let CookieAction::Set { key, .. } = session.save().await.unwrap() else {
        panic!("a new session sets the cookie");
    };
    let again = Session::new(store.clone(), config, Some(key.as_str()));
    assert_eq!(
        again.get::<Vec<String>>("cart").await.unwrap(),
        Some(vec!["apple".to_owned()])
    );
    assert_eq!(store.list_for_user(&user).await.unwrap().len(), 1);
    store.delete(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_urls_connect_and_migrate() {
    let url = env("SESSION_TEST_POSTGRES_URL");
    round_trip(session_kit::connect(&url).await.unwrap()).await;
    let alias = url.replacen("postgres://", "postgresql://", 1);
    round_trip(session_kit::connect(&alias).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_and_mariadb_urls_connect_and_migrate() {
    let url = env("SESSION_TEST_MYSQL_URL");
    round_trip(session_kit::connect(&url).await.unwrap()).await;
    let alias = url.replacen("mysql://", "mariadb://", 1);
    round_trip(session_kit::connect(&alias).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_url_connects() {
    round_trip(
        session_kit::connect(&env("SESSION_TEST_REDIS_URL"))
            .await
            .unwrap(),
    )
    .await;
}

/// A closed port fails at connect (a PING), as an unavailable store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_at_connect() {
    let err = session_kit::connect("redis://127.0.0.1:1")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ConnectError::Store(_)), "{err:?}");
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_url_connects_over_tls() {
    // The test server's certificate is signed by its own CA.
    let ca = std::fs::read(env("SESSION_TEST_REDIS_TLS_CA")).unwrap();
    let url = env("SESSION_TEST_REDIS_TLS_URL");
    assert!(url.starts_with("rediss://"), "{url}");
    let store = session_kit::ConnectOptions::new()
        .tls_root_certificate(ca)
        .connect(&url)
        .await
        .unwrap();
    round_trip(store).await;
    // Without the CA, the certificate is refused: at connect, not at the first request.
    let err = session_kit::connect(&url).await.err().unwrap();
    assert!(matches!(err, ConnectError::Store(_)), "{err:?}");
}

/// `redis+cluster://h1:p1,h2:p2`: the seed nodes of SESSION_TEST_REDIS_CLUSTER_URLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_url_connects() {
    let nodes: Vec<String> = env("SESSION_TEST_REDIS_CLUSTER_URLS")
        .split(',')
        .map(|u| {
            u.trim()
                .trim_start_matches("redis://")
                .trim_end_matches('/')
                .to_owned()
        })
        .collect();
    let url = format!("redis+cluster://{}", nodes.join(","));
    let store = session_kit::connect(&url).await.unwrap();
    // Many keys, so that several hash slots (and so several nodes) are used.
    for _ in 0..8 {
        round_trip(store.clone()).await;
    }
}

/// `redis+sentinel://s1:p1,s2:p2/service`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_url_connects() {
    let sentinels: Vec<String> = env("SESSION_TEST_REDIS_SENTINEL_URLS")
        .split(',')
        .map(|u| {
            u.trim()
                .trim_start_matches("redis://")
                .trim_end_matches('/')
                .to_owned()
        })
        .collect();
    let service = env("SESSION_TEST_REDIS_SENTINEL_SERVICE");
    let url = format!("redis+sentinel://{}/{service}", sentinels.join(","));
    round_trip(session_kit::connect(&url).await.unwrap()).await;
    let err = session_kit::connect(&format!("redis+sentinel://{}", sentinels.join(",")))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ConnectError::Store(session_kit::StoreError::Config(_))),
        "{err:?}"
    );
}
