//! SQLite: the conformance suite on a file and in memory, plus SQLite-specific checks.
//! Runs in a plain `cargo test` (no server needed).
#![cfg(feature = "sqlite")]

mod common;

use common::runtime;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use session_core::chrono::{TimeDelta, Utc};
use session_core::{ExpiredCleanup, SessionKey, SessionStore, StoreError, UserIndex};
use session_sql::{sqlx, ConfigError, Dialect, SqlStore};

/// One database file per test process (under `target/tmp`); every store (and conformance case) gets its own
/// table in it, so stores also contend for the file as separate processes would.
fn shared_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "session-sql-test-{}-{}.db",
            std::process::id(),
            &SessionKey::generate().as_str()[..8]
        ));
        path
    })
}

fn file_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn file_store(prefix: &str) -> SqlStore {
    let store = SqlStore::builder()
        .table(common::unique_table(prefix))
        .connect(&file_url(shared_file()))
        .await
        .expect("open the SQLite file");
    store.migrate().await.expect("migrate");
    store
}

async fn memory_store() -> SqlStore {
    let store = SqlStore::builder()
        .table(common::unique_table("mem"))
        .connect("sqlite::memory:")
        .await
        .expect("open an in-memory SQLite database");
    store.migrate().await.expect("migrate");
    store
}

mod file_conformance {
    async fn make_store() -> session_sql::SqlStore {
        super::file_store("conf").await
    }
    session_conformance::store_suite!(make_store);
}

mod memory_conformance {
    async fn make_store() -> session_sql::SqlStore {
        super::memory_store().await
    }
    session_conformance::store_suite!(make_store);
}

#[test]
fn migrate_from_eight_tasks_on_a_fresh_file() {
    runtime().block_on(async {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "session-sql-migrate-{}.db",
            &SessionKey::generate().as_str()[..12]
        ));
        // Eight separate stores (own connections, like eight processes) on a file that
        // does not exist yet.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let url = file_url(&path);
            tasks.push(tokio::spawn(async move {
                let store = SqlStore::builder()
                    .table("sessions")
                    .connect(&url)
                    .await
                    .expect("connect");
                store.migrate().await.expect("concurrent migrate");
                store
            }));
        }
        let mut stores = Vec::new();
        for task in tasks {
            stores.push(task.await.expect("task"));
        }
        let r = common::record(TimeDelta::hours(1));
        stores[0].create(&r).await.expect("create after migrate");
        assert!(stores[7].exists(&r.key).await.expect("exists"));
        stores[3].migrate().await.expect("migrate again is a no-op");
        assert!(stores[5]
            .exists(&r.key)
            .await
            .expect("data survives re-migrate"));
        for store in &stores {
            store.close().await;
        }
        remove_db(&path);
    });
}

#[test]
fn thirty_two_racing_creates_one_wins_file() {
    runtime().block_on(async {
        common::create_race(Arc::new(file_store("race").await)).await;
    });
}

#[test]
fn thirty_two_racing_creates_one_wins_memory() {
    runtime().block_on(async {
        common::create_race(Arc::new(memory_store().await)).await;
    });
}

#[test]
fn racing_creates_through_a_callers_shared_pool() {
    runtime().block_on(async {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(shared_file())
                    .create_if_missing(true)
                    .busy_timeout(Duration::from_secs(5)),
            )
            .await
            .expect("pool");
        let store = SqlStore::builder()
            .table(common::unique_table("pool"))
            .build(pool)
            .expect("build");
        store.migrate().await.expect("migrate");
        common::create_race(Arc::new(store)).await;
    });
}

#[test]
fn in_memory_database_is_shared_by_every_operation() {
    runtime().block_on(async {
        let store = Arc::new(memory_store().await);
        // Many concurrent writers and readers: all must see one database.
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let r = common::record(TimeDelta::hours(1));
                store.create(&r).await.expect("create");
                assert!(store.exists(&r.key).await.expect("exists"));
                r.key
            }));
        }
        for task in tasks {
            let key = task.await.expect("task");
            assert!(store.load(&key).await.expect("load").is_some());
        }
        // Two in-memory stores are separate databases.
        let other = memory_store().await;
        assert_eq!(other.dialect(), Dialect::Sqlite);
        assert_eq!(other.delete_expired().await.expect("delete_expired"), 0);
    });
}

#[test]
fn delete_expired_runs_in_batches_and_keeps_live_rows() {
    runtime().block_on(async {
        let store = SqlStore::builder()
            .table(common::unique_table("batch"))
            .delete_batch_size(7)
            .connect(&file_url(shared_file()))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        common::delete_expired_in_batches(&store, 100, 15).await;
        // An exact multiple of the batch size ends with an empty batch, not a miss.
        common::delete_expired_in_batches(&store, 21, 3).await;
    });
}

#[test]
fn invalid_table_names_are_rejected_before_any_sql() {
    runtime().block_on(async {
        for bad in ["", "s; DROP TABLE t", "a.b", "\"x\"", "x y", "é", "1abc"] {
            let err = SqlStore::builder()
                .table(bad)
                .connect("sqlite::memory:")
                .await
                .expect_err("must reject");
            assert!(matches!(err, StoreError::Config(_)), "{bad:?}: {err:?}");
            let source = std::error::Error::source(&err).expect("source");
            assert!(
                matches!(
                    source.downcast_ref::<ConfigError>(),
                    Some(ConfigError::TableName(_))
                ),
                "{bad:?}: {source}"
            );
        }
        let pool = sqlx::SqlitePool::connect("sqlite::memory:")
            .await
            .expect("pool");
        assert!(matches!(
            SqlStore::builder().table("x-y").build(pool),
            Err(StoreError::Config(_))
        ));
    });
}

#[test]
fn a_closed_store_is_unavailable_with_the_sqlx_error_as_source() {
    runtime().block_on(async {
        let store = memory_store().await;
        store.close().await;
        let err = store
            .load(&SessionKey::generate())
            .await
            .expect_err("closed");
        assert!(err.is_unavailable(), "{err:?}");
        let source = std::error::Error::source(&err).expect("source");
        assert!(source.downcast_ref::<sqlx::Error>().is_some());
    });
}

#[test]
fn unknown_url_schemes_and_bad_files_are_errors() {
    runtime().block_on(async {
        let err = SqlStore::connect("redis://127.0.0.1")
            .await
            .expect_err("scheme");
        assert!(matches!(err, StoreError::Config(_)), "{err:?}");
        let source = std::error::Error::source(&err).expect("source");
        assert!(matches!(
            source.downcast_ref::<ConfigError>(),
            Some(ConfigError::UnsupportedScheme { .. })
        ));
        // A URL that does not parse is a configuration mistake too, not a backend failure.
        let err = SqlStore::connect("sqlite://x.db?mode=nonsense")
            .await
            .expect_err("bad SQLite URL");
        assert!(matches!(err, StoreError::Config(_)), "{err:?}");
        #[cfg(feature = "postgres")]
        {
            let err = SqlStore::connect("postgres://u@127.0.0.1:notaport/db")
                .await
                .expect_err("bad PostgreSQL URL");
            assert!(matches!(err, StoreError::Config(_)), "{err:?}");
        }
        let err = SqlStore::connect("sqlite:///nonexistent-dir-for-session-sql/x.db")
            .await
            .expect_err("cannot create a file in a missing directory");
        assert!(std::error::Error::source(&err).is_some());
        assert!(!matches!(err, StoreError::Config(_)), "{err:?}");
    });
}

#[test]
fn delete_at_version_file_and_memory() {
    runtime().block_on(async {
        common::delete_at_version_outcomes(&file_store("dav").await).await;
        common::delete_at_version_outcomes(&memory_store().await).await;
    });
}

#[test]
fn file_store_survives_reopening() {
    runtime().block_on(async {
        let table = common::unique_table("reopen");
        let open = || async {
            let store = SqlStore::builder()
                .table(table.clone())
                .connect(&file_url(shared_file()))
                .await
                .expect("connect");
            store.migrate().await.expect("migrate");
            store
        };
        let first = open().await;
        let r = common::record(TimeDelta::hours(1));
        first.create(&r).await.expect("create");
        first.close().await;
        let second = open().await;
        let loaded = second.load(&r.key).await.expect("load").expect("persisted");
        assert_eq!(loaded.data, r.data);
        assert_eq!(loaded.version, 1);
    });
}

/// A database file of its own, for tests that lock the whole file.
fn private_file(prefix: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "session-sql-{prefix}-{}.db",
        &SessionKey::generate().as_str()[..12]
    ))
}

fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Holds SQLite's write lock from another connection (as another process would).
async fn hold_write_lock(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&file_url(path))
        .await
        .expect("second connection");
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .expect("take the write lock");
    conn
}

#[test]
fn a_write_lock_held_elsewhere_gives_unavailable_within_the_busy_timeout() {
    runtime().block_on(async {
        let file = private_file("busy");
        let store = SqlStore::builder()
            .table(common::unique_table("busy"))
            .acquire_timeout(Duration::from_millis(400))
            .connect(&file_url(&file))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let lock = hold_write_lock(&file).await;
        let started = std::time::Instant::now();
        let err = common::within(
            Duration::from_secs(5),
            "create",
            store.create(&common::record(TimeDelta::hours(1))),
        )
        .await
        .expect_err("the database is locked");
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "waited for the busy timeout"
        );
        // Reads are not blocked by a writer in WAL mode.
        assert!(!store
            .exists(&SessionKey::generate())
            .await
            .expect("read while locked"));
        drop(lock);
        store
            .create(&common::record(TimeDelta::hours(1)))
            .await
            .expect("writes work again once the lock is gone");
        store.close().await;
        remove_db(&file);
    });
}

#[test]
fn operation_timeout_bounds_a_stuck_operation() {
    runtime().block_on(async {
        let file = private_file("optimeout");
        let store = SqlStore::builder()
            .table(common::unique_table("optimeout"))
            .acquire_timeout(Duration::from_secs(3))
            .operation_timeout(Duration::from_millis(300))
            .connect(&file_url(&file))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let lock = hold_write_lock(&file).await;
        let started = std::time::Instant::now();
        let err = store
            .create(&common::record(TimeDelta::hours(1)))
            .await
            .expect_err("stuck behind the lock");
        let elapsed = started.elapsed();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            elapsed < Duration::from_secs(2),
            "bounded by the operation timeout: {elapsed:?}"
        );
        let source = std::error::Error::source(&err).expect("source");
        assert_eq!(
            source
                .downcast_ref::<std::io::Error>()
                .map(std::io::Error::kind),
            Some(std::io::ErrorKind::TimedOut)
        );
        drop(lock);
        // The writer recovers once the lock holder is gone.
        let r = common::record(TimeDelta::hours(1));
        common::within(Duration::from_secs(10), "create after the lock", async {
            loop {
                match store.create(&r).await {
                    Ok(()) => break,
                    Err(e) if e.is_unavailable() => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
        })
        .await;
        assert!(store.exists(&r.key).await.expect("exists"));
        store.close().await;
        remove_db(&file);
    });
}

#[test]
fn sql_keywords_work_as_table_names_because_names_are_quoted() {
    runtime().block_on(async {
        for name in ["order", "select", "User"] {
            let store = SqlStore::builder()
                .table(name)
                .connect("sqlite::memory:")
                .await
                .expect("connect");
            store.migrate().await.expect("migrate");
            let mut r = common::record(TimeDelta::hours(1));
            r.user_id = Some("u".into());
            store.create(&r).await.expect("create");
            assert_eq!(store.list_for_user("u").await.expect("list").len(), 1);
            assert!(store.delete(&r.key).await.expect("delete"));
        }
    });
}

#[test]
fn the_wal_stays_bounded_under_a_steady_stream_of_writes() {
    runtime().block_on(async {
        let file = private_file("wal");
        let store = Arc::new(
            SqlStore::builder()
                .table("sessions")
                .connect(&file_url(&file))
                .await
                .expect("connect"),
        );
        store.migrate().await.expect("migrate");
        let payload = format!("j1:{{\"blob\":\"{}\"}}", "x".repeat(2000));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            let payload = payload.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..750 {
                    let mut r = common::record(TimeDelta::hours(1));
                    r.data.clone_from(&payload);
                    store.create(&r).await.expect("create");
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        let wal = std::fs::metadata(format!("{}-wal", file.display()))
            .map(|m| m.len())
            .unwrap_or(0);
        let db = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        eprintln!("12,000 writes of 2 KB: database {db} bytes, WAL {wal} bytes");
        // Without WAL restarts the WAL holds every page written (about 270 MB here). With
        // them it restarts past 16 MiB; the file keeps its high-water mark, truncated to
        // 64 MiB at a restart, plus what arrives while a checkpoint runs.
        assert!(wal < 128 << 20, "WAL grew to {wal} bytes");
        store.close().await;
        remove_db(&file);
    });
}

/// A database file the store creates, and its `-wal` and `-shm` files, are private to
/// their owner (0600), whatever the process umask allows.
#[cfg(unix)]
#[test]
fn created_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    runtime().block_on(async {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "session-sql-private-{}-{}.db",
            std::process::id(),
            &SessionKey::generate().as_str()[..8]
        ));
        let store = SqlStore::connect(&file_url(&path))
            .await
            .expect("open a new SQLite file");
        store.migrate().await.expect("migrate");
        store
            .create(&common::record(TimeDelta::hours(1)))
            .await
            .expect("create (writes the WAL)");
        let mut checked = 0;
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file)
                .unwrap_or_else(|e| panic!("{file} should exist while the store is open: {e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
            checked += 1;
        }
        assert_eq!(checked, 3);
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    });
}

/// Group commit: 96 concurrent writes of mixed outcomes on one file store (creates racing
/// on one key, updates at current and stale versions, touches and deletes of missing
/// keys) each get their own answer, as if run alone.
#[test]
fn concurrent_writes_keep_their_own_outcomes() {
    runtime().block_on(async {
        let store = Arc::new(file_store("group").await);
        let shared = common::record(TimeDelta::hours(1));
        let mut stale = Vec::new();
        for _ in 0..16 {
            let r = common::record(TimeDelta::hours(1));
            store.create(&r).await.expect("create");
            stale.push(r);
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(96));
        let mut tasks = Vec::new();
        for i in 0..96usize {
            let store = store.clone();
            let barrier = barrier.clone();
            let shared = shared.clone();
            let mine = stale[i % 16].clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                match i % 6 {
                    0 => match store.create(&shared).await {
                        Ok(()) => "created",
                        Err(StoreError::KeyExists) => "exists",
                        Err(e) => panic!("create: {e:?}"),
                    },
                    1 => {
                        let mut old = mine.clone();
                        old.version = 0;
                        match store.update(&old).await {
                            Err(StoreError::Conflict) => "conflict",
                            other => panic!("stale update: {other:?}"),
                        }
                    }
                    2 => match store.update(&common::record(TimeDelta::hours(1))).await {
                        Err(StoreError::NotFound) => "notfound",
                        other => panic!("update of a missing key: {other:?}"),
                    },
                    3 => match store
                        .touch(&SessionKey::generate(), Utc::now() + TimeDelta::hours(1))
                        .await
                    {
                        Ok(false) => "untouched",
                        other => panic!("touch of a missing key: {other:?}"),
                    },
                    4 => match store.delete(&SessionKey::generate()).await {
                        Ok(false) => "nothing",
                        other => panic!("delete of a missing key: {other:?}"),
                    },
                    _ => {
                        let fresh = common::record(TimeDelta::hours(1));
                        store.create(&fresh).await.expect("create a fresh key");
                        assert_eq!(store.update(&fresh).await.expect("update"), 2);
                        "fresh"
                    }
                }
            }));
        }
        let mut counts = std::collections::BTreeMap::new();
        for task in tasks {
            *counts.entry(task.await.expect("task")).or_insert(0) += 1;
        }
        assert_eq!(counts.get("created"), Some(&1), "{counts:?}");
        assert_eq!(counts.get("exists"), Some(&15), "{counts:?}");
        for outcome in ["conflict", "notfound", "untouched", "nothing", "fresh"] {
            assert_eq!(counts.get(outcome), Some(&16), "{outcome}: {counts:?}");
        }
        for r in &stale {
            let loaded = store.load(&r.key).await.expect("load").expect("live");
            assert_eq!(loaded.version, 1, "a stale update changed a row");
        }
    });
}

/// The interop layouts are the same store as the native one: built with the builder's
/// settings (table, pool size, operation timeout) on a file, their compare-and-swap runs
/// on the single writer, so 32 concurrent read-modify-write loops lose no increment and
/// never see "database is locked".
#[test]
fn django_layout_through_the_builder_loses_no_increment() {
    runtime().block_on(async {
        let path = private_file("django-layout");
        let store = SqlStore::builder()
            .layout(session_sql::TableLayout::Django)
            .table("legacy_sessions")
            .max_connections(2)
            .operation_timeout(Duration::from_secs(3))
            .connect(&file_url(&path))
            .await
            .expect("open the SQLite file");
        store.migrate().await.expect("migrate");
        assert_eq!(store.table().as_str(), "legacy_sessions");
        assert!(store.user_index().is_none());
        let err = store
            .list_for_user("alice")
            .await
            .expect_err("no user column");
        assert!(matches!(err, StoreError::Unsupported { .. }), "{err:?}");
        let key = SessionKey::generate();
        let record =
            session_core::Record::new(key.clone(), "n=0".into(), Utc::now() + TimeDelta::hours(1));
        store.create(&record).await.expect("create");
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let mut conflicts = 0u32;
                loop {
                    let mut r = store.load(&key).await.expect("load").expect("live");
                    let n: u32 = r.data[2..].parse().expect("counter");
                    r.data = format!("n={}", n + 1);
                    match store.update(&r).await {
                        Ok(_) => return conflicts,
                        Err(StoreError::Conflict) => conflicts += 1,
                        Err(e) => panic!("update failed: {e:?}"),
                    }
                }
            }));
        }
        let mut conflicts = 0;
        for task in tasks {
            conflicts += task.await.expect("task");
        }
        let last = store.load(&key).await.expect("load").expect("live");
        assert_eq!(last.data, "n=32", "after {conflicts} conflicts");
        store.close().await;
        remove_db(&path);
    });
}

/// Schema-qualified names are PostgreSQL's: SQLite refuses them before touching a file.
#[test]
fn schema_qualified_names_are_refused_on_sqlite() {
    runtime().block_on(async {
        let err = SqlStore::builder()
            .table("app.sessions")
            .connect("sqlite::memory:")
            .await
            .expect_err("qualified name on SQLite");
        let StoreError::Config(config) = &err else {
            panic!("expected a configuration error: {err:?}")
        };
        let source = std::error::Error::source(config).expect("source");
        assert!(matches!(
            source.downcast_ref::<ConfigError>(),
            Some(ConfigError::TableName(
                session_sql::InvalidTableName::Qualified
            ))
        ));
    });
}
