#![allow(clippy::unwrap_used)]
//! `session_kit::connect` without servers: memory, SQLite (file and in memory), migration
//! on and off, and the typed errors for an unknown scheme and a disabled feature. Also run
//! by scripts/test-all with `--no-default-features`, where every backend is disabled.

use std::sync::Arc;

use session_kit::{ConnectError, CookieAction, Session, SessionConfig, SessionStore};

/// Writes a session through the store and reads it back under the new key.
#[allow(dead_code)]
async fn round_trip(store: Arc<dyn SessionStore>) {
    let config = Arc::new(SessionConfig::default());
    let session = Session::new(store.clone(), config.clone(), None);
    session.login("alice").await.unwrap();
    session.insert("cart", vec!["apple"]).await.unwrap();
    let CookieAction::Set { key, .. } = session.save().await.unwrap() else {
        panic!("a new session sets the cookie");
    };
    let again = Session::new(store.clone(), config, Some(key.as_str()));
    assert_eq!(
        again.get::<Vec<String>>("cart").await.unwrap(),
        Some(vec!["apple".to_owned()])
    );
    assert_eq!(again.user_id().await.unwrap().as_deref(), Some("alice"));
    assert!(store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn an_unknown_scheme_is_a_typed_error_naming_the_scheme() {
    for (url, scheme) in [
        ("ftp://example.com/x", "ftp"),
        ("nosuchstore:", "nosuchstore"),
        ("", ""),
    ] {
        match session_kit::connect(url).await {
            Err(ConnectError::UnknownScheme { scheme: s }) => assert_eq!(s, scheme, "{url}"),
            other => panic!("{url}: expected UnknownScheme, got {:?}", other.map(|_| ())),
        }
    }
    let err = session_kit::connect("ftp://user:secret@host")
        .await
        .err()
        .unwrap();
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(!err.is_unavailable());
    let folded = session_kit::StoreError::from(err);
    assert!(
        matches!(folded, session_kit::StoreError::Config(_)),
        "{folded:?}"
    );
}

/// Every backend whose feature is off answers `FeatureDisabled` with the feature to enable,
/// and never shows the URL's password.
#[tokio::test]
async fn a_disabled_backend_names_its_feature() {
    let cases: &[(&str, &str, bool)] = &[
        ("memory:", "memory", cfg!(feature = "memory")),
        ("sqlite::memory:", "sqlite", cfg!(feature = "sqlite")),
        (
            "postgres://u:secret@127.0.0.1:1/db",
            "postgres",
            cfg!(feature = "postgres"),
        ),
        (
            "postgresql://u:secret@127.0.0.1:1/db",
            "postgres",
            cfg!(feature = "postgres"),
        ),
        (
            "mysql://u:secret@127.0.0.1:1/db",
            "mysql",
            cfg!(feature = "mysql"),
        ),
        (
            "mariadb://u:secret@127.0.0.1:1/db",
            "mysql",
            cfg!(feature = "mysql"),
        ),
        (
            "redis://:secret@127.0.0.1:1",
            "redis",
            cfg!(feature = "redis"),
        ),
        (
            "rediss://:secret@127.0.0.1:1",
            if cfg!(feature = "redis") {
                "redis-tls-rustls"
            } else {
                "redis"
            },
            cfg!(any(
                feature = "redis-tls-rustls",
                feature = "redis-tls-native-tls"
            )),
        ),
        (
            "redis+cluster://:secret@127.0.0.1:1,127.0.0.1:2",
            "redis-cluster",
            cfg!(feature = "redis-cluster"),
        ),
        (
            "redis+sentinel://127.0.0.1:1/svc",
            "redis-sentinel",
            cfg!(feature = "redis-sentinel"),
        ),
    ];
    let mut checked = 0;
    for &(url, feature, enabled) in cases {
        if enabled {
            continue;
        }
        match session_kit::connect(url).await {
            Err(err @ ConnectError::FeatureDisabled { .. }) => {
                let ConnectError::FeatureDisabled { feature: f, .. } = &err else {
                    unreachable!()
                };
                assert_eq!(*f, feature, "{url}");
                assert!(err.to_string().contains(feature), "{err}");
                assert!(!err.to_string().contains("secret"), "{err}");
                let folded = session_kit::StoreError::from(err);
                let session_kit::StoreError::Config(config) = &folded else {
                    panic!("{folded:?}")
                };
                assert_eq!(config.feature(), Some(feature));
            }
            other => panic!(
                "{url}: expected FeatureDisabled, got {:?}",
                other.map(|_| ())
            ),
        }
        checked += 1;
    }
    // With every feature on there is nothing to check here (scripts/test-all also runs this
    // file with --no-default-features, where every case is checked).
    if cfg!(not(feature = "memory")) {
        assert_eq!(checked, cases.len());
    }
}

#[cfg(feature = "memory")]
#[tokio::test]
async fn memory_urls_open_a_memory_store() {
    round_trip(session_kit::connect("memory:").await.unwrap()).await;
    round_trip(session_kit::connect("MEMORY:").await.unwrap()).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_in_memory_is_migrated() {
    round_trip(session_kit::connect("sqlite::memory:").await.unwrap()).await;
}

#[cfg(feature = "sqlite")]
fn temp_file(tag: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("kit-connect-{tag}-{}.sqlite", std::process::id()));
    remove(&file);
    file
}

#[cfg(feature = "sqlite")]
fn remove(file: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

/// A file URL creates the file and the table; a second connect (a restart) keeps the
/// sessions.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_file_is_created_migrated_and_kept() {
    let file = temp_file("file");
    let url = format!("sqlite:{}", file.display());
    let store = session_kit::connect(&url).await.unwrap();
    assert!(file.exists());
    let session = Session::new(store.clone(), Arc::new(SessionConfig::default()), None);
    session.insert("n", 1).await.unwrap();
    let CookieAction::Set { key, .. } = session.save().await.unwrap() else {
        panic!()
    };
    drop((session, store));
    let reopened = session_kit::connect(&url).await.unwrap();
    assert!(reopened.load(&key).await.unwrap().is_some());
    round_trip(reopened).await;
    remove(&file);
}

/// `migrate(false)` leaves the database alone: on a fresh file, the first write fails
/// because there is no table; after a migrating connect it works.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn migrate_false_creates_no_table() {
    let file = temp_file("nomigrate");
    let url = format!("sqlite:{}", file.display());
    let store = session_kit::ConnectOptions::new()
        .migrate(false)
        .connect(&url)
        .await
        .unwrap();
    let session = Session::new(store, Arc::new(SessionConfig::default()), None);
    session.insert("n", 1).await.unwrap();
    assert!(session.save().await.is_err(), "no table without migration");
    round_trip(session_kit::connect(&url).await.unwrap()).await;
    remove(&file);
}

/// A SQLite file in a directory that does not exist is the store's own error.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_store_error_is_kept_as_the_source() {
    let err = session_kit::connect("sqlite:/nonexistent-dir-for-session-kit/x.db")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ConnectError::Store(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}
