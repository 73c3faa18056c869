//! PostgreSQL: the conformance suite, concurrent migrations, racing creates, an outage,
//! and `delete_expired` on 200,000 rows. Compiled only with the `postgres-tests` feature; needs
//! `SESSION_TEST_POSTGRES_URL` (and the `SESSION_TEST_POSTGRES_OUTAGE_*` variables for
//! the outage test) and fails without them.
#![cfg(feature = "postgres-tests")]

mod common;

use common::runtime;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::chrono::TimeDelta;
use session_core::{ExpiredCleanup, SessionKey, SessionStore};
use session_sql::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use session_sql::sqlx::{self, AssertSqlSafe};
use session_sql::{Dialect, SqlStore};

fn url() -> String {
    common::env_url("SESSION_TEST_POSTGRES_URL")
}

async fn store(prefix: &str) -> SqlStore {
    let store = common::connect(&url(), common::unique_table(prefix), 8).await;
    assert_eq!(store.dialect(), Dialect::Postgres);
    store.migrate().await.expect("migrate");
    store
}

mod conformance {
    async fn make_store() -> session_sql::SqlStore {
        super::store("pgconf").await
    }
    session_conformance::store_suite!(make_store);
}

#[test]
fn migrate_from_eight_tasks_on_a_fresh_database() {
    runtime().block_on(async {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url())
            .await
            .expect("admin connection");
        let db = common::unique_table("session_sql_mig");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
            .execute(&admin)
            .await
            .expect("create a fresh database");
        let options: PgConnectOptions = url().parse().expect("URL");
        let options = options.database(&db);

        let mut tasks = Vec::new();
        for _ in 0..8 {
            let options = options.clone();
            tasks.push(tokio::spawn(async move {
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .connect_with(options)
                    .await
                    .expect("connect to the fresh database");
                let store = SqlStore::builder().build(pool).expect("build");
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
        stores[2].migrate().await.expect("migrate again");
        assert!(stores[4]
            .exists(&r.key)
            .await
            .expect("data survives re-migrate"));
        for store in &stores {
            store.close().await;
        }
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE \"{db}\" WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .expect("drop the database");
    });
}

#[test]
fn delete_at_version_outcomes() {
    runtime().block_on(async {
        common::delete_at_version_outcomes(&store("pgdav").await).await;
    });
}

#[test]
fn thirty_two_racing_creates_one_wins() {
    runtime().block_on(async {
        let store = common::migrated_store(&url(), common::unique_table("pgrace"), 32).await;
        let store = Arc::new(store);
        for _ in 0..3 {
            common::create_race(store.clone()).await;
        }
    });
}

#[test]
fn delete_expired_removes_200k_rows_in_batches_and_keeps_live_ones() {
    const EXPIRED: i64 = 200_000;
    const LIVE: i64 = 1_000;
    runtime().block_on(async {
        let store = store("pgbulk").await;
        let table = store.table().as_str().to_owned();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url())
            .await
            .expect("connect");
        // Bulk-load with generate_series; md5() gives valid 32-character keys.
        let started = Instant::now();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO \"{table}\" (session_key, data, expires_at, version, user_id, created_at) \
             SELECT md5('expired' || g), 'j1:{{\"n\":' || g || '}}', now() - interval '1 hour', 1, \
                    CASE WHEN g % 10 = 0 THEN 'user-' || (g % 100) END, now() - interval '2 hours' \
             FROM generate_series(1, {EXPIRED}) AS g"
        )))
        .execute(&pool)
        .await
        .expect("insert expired rows");
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO \"{table}\" (session_key, data, expires_at, version, created_at) \
             SELECT md5('live' || g), 'j1:{{}}', now() + interval '1 hour', 1, now() \
             FROM generate_series(1, {LIVE}) AS g"
        )))
        .execute(&pool)
        .await
        .expect("insert live rows");
        sqlx::query(AssertSqlSafe(format!("ANALYZE \"{table}\"")))
            .execute(&pool)
            .await
            .expect("analyze");
        eprintln!("bulk insert of {} rows took {:?}", EXPIRED + LIVE, started.elapsed());

        let started = Instant::now();
        let removed = store.delete_expired().await.expect("delete_expired");
        let elapsed = started.elapsed();
        eprintln!(
            "delete_expired removed {removed} expired rows in {elapsed:?} (batch size {}, {} batches)",
            session_sql::DEFAULT_DELETE_BATCH_SIZE,
            (removed as u32).div_ceil(session_sql::DEFAULT_DELETE_BATCH_SIZE)
        );
        assert_eq!(removed, EXPIRED as u64);

        let left: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{table}\""
        )))
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(left, LIVE, "every live row survives, nothing expired is left");
        let live_keys: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT session_key FROM \"{table}\" ORDER BY session_key LIMIT 20"
        )))
        .fetch_all(&pool)
        .await
        .expect("keys");
        for key in live_keys {
            let key = SessionKey::parse(&key).expect("md5 keys are valid session keys");
            assert!(store.exists(&key).await.expect("exists"));
        }
        assert_eq!(store.delete_expired().await.expect("again"), 0);
        sqlx::query(AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
            .execute(&pool)
            .await
            .expect("drop");
    });
}

const OUTAGE: common::outage::Outage = common::outage::Outage {
    stop: "SESSION_TEST_POSTGRES_OUTAGE_STOP",
    start: "SESSION_TEST_POSTGRES_OUTAGE_START",
};

/// The outage tests share one server: they take turns.
static OUTAGE_SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn outage_server() -> std::sync::MutexGuard<'static, ()> {
    OUTAGE_SERVER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes everything committed so far to disk (`CHECKPOINT`, as the superuser the tests
/// connect as).
async fn checkpoint(url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect for CHECKPOINT");
    sqlx::query("CHECKPOINT")
        .execute(&mut conn)
        .await
        .expect("CHECKPOINT");
    conn.close().await.expect("close");
}

#[test]
fn outage_gives_errors_within_the_timeout_and_the_same_store_recovers() {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let _server = outage_server();
    runtime().block_on(async {
        let url = common::env_url("SESSION_TEST_POSTGRES_OUTAGE_URL");
        let store = SqlStore::builder()
            .table(common::unique_table("pgoutage"))
            .acquire_timeout(TIMEOUT)
            .max_connections(4)
            .connect(&url)
            .await
            .expect("connect to the outage server");
        store.migrate().await.expect("migrate");
        let mut before = common::record(TimeDelta::hours(1));
        before.user_id = Some("outage-user".into());
        store
            .create(&before)
            .await
            .expect("create before the outage");
        // Warm several pool connections so stale ones exist after the restart.
        let warm: Vec<_> = (0..4).map(|_| store.exists(&before.key)).collect();
        for ok in futures_util::future::join_all(warm).await {
            assert!(ok.expect("exists before the outage"));
        }

        // The test servers run with synchronous_commit=off, and the stop is immediate: make
        // what was committed durable first, or the restarted server may not have the table.
        checkpoint(&url).await;
        common::outage::stopped_server(store, before, TIMEOUT, OUTAGE).await;
    });
}

/// The outage server's postmaster and its children, from its data directory (the `-D`
/// argument of `SESSION_TEST_POSTGRES_OUTAGE_STOP`).
fn outage_server_pids() -> Vec<String> {
    let stop = common::env_url("SESSION_TEST_POSTGRES_OUTAGE_STOP");
    let mut words = stop.split_whitespace();
    let dir = loop {
        match words.next() {
            Some("-D") => break words.next().expect("a directory after -D").to_owned(),
            Some(_) => {}
            None => panic!("no -D <data dir> in SESSION_TEST_POSTGRES_OUTAGE_STOP"),
        }
    };
    let pid_file = std::fs::read_to_string(format!("{dir}/postmaster.pid"))
        .unwrap_or_else(|e| panic!("read {dir}/postmaster.pid: {e}"));
    let postmaster = pid_file
        .lines()
        .next()
        .expect("postmaster pid")
        .trim()
        .to_owned();
    let children = std::process::Command::new("pgrep")
        .args(["-P", &postmaster])
        .output()
        .expect("run pgrep");
    let mut pids = vec![postmaster];
    pids.extend(
        String::from_utf8_lossy(&children.stdout)
            .split_whitespace()
            .map(str::to_owned),
    );
    pids
}

#[test]
fn frozen_server_answers_every_operation_within_the_timeout() {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let _server = outage_server();
    runtime().block_on(async {
        let url = common::env_url("SESSION_TEST_POSTGRES_OUTAGE_URL");
        let store = SqlStore::builder()
            .table(common::unique_table("pgfrozen"))
            .operation_timeout(TIMEOUT)
            .max_connections(8)
            .connect(&url)
            .await
            .expect("connect to the outage server");
        store.migrate().await.expect("migrate");
        let before = common::record(TimeDelta::hours(1));
        store.create(&before).await.expect("create before freezing");
        let warm: Vec<_> = (0..8).map(|_| store.exists(&before.key)).collect();
        for ok in futures_util::future::join_all(warm).await {
            assert!(ok.expect("exists before freezing"));
        }

        let pids = outage_server_pids();
        assert!(pids.len() > 1, "postmaster and backends: {pids:?}");
        common::outage::frozen_server(store, before, TIMEOUT, pids).await;
    });
}

async fn admin_pool() -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(&url())
        .await
        .expect("admin connection")
}

async fn exec(pool: &sqlx::PgPool, statement: String) {
    sqlx::query(AssertSqlSafe(statement.clone()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

// The HOT updates and the cleanup's use of the bucket index are measured in
// tests/postgres_hot.rs.

/// A table created by an earlier version (exact-expiry index, no bucket column) is
/// migrated in place: its rows stay live, expired ones are still cleaned up, and
/// updates work and are HOT-capable (the exact-expiry index is gone).
#[test]
fn tables_from_before_the_bucket_are_migrated() {
    runtime().block_on(async {
        let admin = admin_pool().await;
        let table = common::unique_table("pgold");
        exec(
            &admin,
            format!(
                "CREATE TABLE \"{table}\" (session_key VARCHAR(64) PRIMARY KEY, data TEXT NOT NULL, \
                 expires_at TIMESTAMPTZ NOT NULL, version BIGINT NOT NULL, user_id TEXT, \
                 created_at TIMESTAMPTZ NOT NULL, last_active_at TIMESTAMPTZ, user_agent TEXT, ip TEXT)"
            ),
        )
        .await;
        exec(&admin, format!("CREATE INDEX \"{table}_expires_at_idx\" ON \"{table}\" (expires_at)")).await;
        let live = SessionKey::generate();
        let dead = SessionKey::generate();
        exec(
            &admin,
            format!(
                "INSERT INTO \"{table}\" (session_key, data, expires_at, version, created_at) VALUES \
                 ('{}', 'j1:{{}}', now() + interval '1 hour', 3, now()), \
                 ('{}', 'j1:{{}}', now() - interval '1 hour', 1, now())",
                live.as_str(),
                dead.as_str()
            ),
        )
        .await;
        let store = SqlStore::builder()
            .table(table.clone())
            .connect(&url())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate the old table");
        store.migrate().await.expect("migrate again");
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
        )
        .bind(&table)
        .fetch_all(&admin)
        .await
        .expect("indexes");
        assert_eq!(
            indexes,
            vec![
                format!("{table}_exp_bucket_idx"),
                format!("{table}_pkey"),
                format!("{table}_user_id_idx")
            ]
        );
        let options: Option<Vec<String>> =
            sqlx::query_scalar("SELECT reloptions FROM pg_class WHERE relname = $1")
                .bind(&table)
                .fetch_one(&admin)
                .await
                .expect("reloptions");
        assert_eq!(options, Some(vec!["fillfactor=70".to_owned()]));
        let mut r = store.load(&live).await.expect("load").expect("still live");
        assert_eq!(r.version, 3);
        r.data = "j1:{\"after\":1}".into();
        assert_eq!(store.update(&r).await.expect("update"), 4);
        assert_eq!(store.delete_expired().await.expect("cleanup"), 1);
        assert!(store.exists(&live).await.expect("exists"));
        exec(&admin, format!("DROP TABLE \"{table}\"")).await;
    });
}

/// `schema.table` names work on PostgreSQL for the native and the interop layouts: both
/// parts quoted, the indexes in the table's schema, every operation on that table.
#[test]
fn schema_qualified_tables() {
    runtime().block_on(async {
        let admin = admin_pool().await;
        let schema = common::unique_table("App");
        exec(&admin, format!("CREATE SCHEMA \"{schema}\"")).await;
        for layout in [
            session_sql::TableLayout::Native,
            session_sql::TableLayout::Django,
            session_sql::TableLayout::PlainJson,
        ] {
            let name = format!("{schema}.{}", layout.default_table());
            let store = SqlStore::builder()
                .layout(layout)
                .table(name.clone())
                .connect(&url())
                .await
                .expect("connect");
            assert_eq!(store.table().as_str(), name);
            store.migrate().await.expect("migrate");
            store.migrate().await.expect("migrate again");
            let data = if layout == session_sql::TableLayout::PlainJson {
                "{\"a\": 1}"
            } else {
                "j1:{}"
            };
            let record = session_core::Record::new(
                SessionKey::generate(),
                data.into(),
                session_core::chrono::Utc::now() + TimeDelta::hours(1),
            );
            store.create(&record).await.expect("create");
            let mut loaded = store.load(&record.key).await.expect("load").expect("live");
            loaded.data = data.replace('1', "2");
            let version = store.update(&loaded).await.expect("update");
            let expires = session_core::chrono::Utc::now() + TimeDelta::hours(2);
            assert!(store.touch(&record.key, expires).await.expect("touch"));
            assert_eq!(store.delete_expired().await.expect("cleanup"), 0);
            store
                .delete_at_version(&record.key, version)
                .await
                .expect("delete at version");
            let indexes: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
            )
            .bind(&schema)
            .bind(layout.default_table())
            .fetch_one(&admin)
            .await
            .expect("indexes");
            assert!(indexes >= 2, "{layout:?}: {indexes} indexes in {schema}");
            store.close().await;
        }
        exec(&admin, format!("DROP SCHEMA \"{schema}\" CASCADE")).await;
    });
}
