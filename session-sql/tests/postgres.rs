//! PostgreSQL: the conformance suite, concurrent migrations, racing creates, an outage,
//! and `delete_expired` on 200,000 rows. Compiled only with the `postgres-tests` feature; needs
//! `SESSION_TEST_POSTGRES_URL` (and the `SESSION_TEST_POSTGRES_OUTAGE_*` variables for
//! the outage test) and fails without them.
#![cfg(feature = "postgres-tests")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::chrono::TimeDelta;
use session_core::{ExpiredCleanup, SessionKey, SessionStore, UserIndex};
use session_sql::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use session_sql::sqlx::{self, AssertSqlSafe};
use session_sql::{Dialect, SqlStore};

fn url() -> String {
    common::env_url("SESSION_TEST_POSTGRES_URL")
}

async fn store(prefix: &str) -> SqlStore {
    let store = SqlStore::builder()
        .table(common::unique_table(prefix))
        .max_connections(8)
        .connect(&url())
        .await
        .expect("connect to PostgreSQL");
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
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
        let store = SqlStore::builder()
            .table(common::unique_table("pgrace"))
            .max_connections(32)
            .connect(&url())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
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

/// Runs one of the `SESSION_TEST_POSTGRES_OUTAGE_{STOP,START}` shell commands.
fn run_outage_command(var: &str) {
    let command = common::env_url(var);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("could not run {var}: {e}"));
    assert!(status.success(), "{var} failed: {status}");
}

/// Starts the outage server again if the test fails while it is stopped.
struct RestartOnDrop {
    stopped: bool,
}

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if self.stopped {
            run_outage_command("SESSION_TEST_POSTGRES_OUTAGE_START");
        }
    }
}

/// The outage tests share one server: they take turns.
static OUTAGE_SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn outage_server() -> std::sync::MutexGuard<'static, ()> {
    OUTAGE_SERVER.lock().unwrap_or_else(|e| e.into_inner())
}

/// The 99th percentile of some latencies.
fn p99(latencies: &mut [Duration]) -> Duration {
    assert!(!latencies.is_empty(), "no latencies measured");
    latencies.sort_unstable();
    latencies[(latencies.len() * 99).div_ceil(100).saturating_sub(1)]
}

/// 32 tasks run loads and creates for `duration`; every answer's latency and error.
async fn load_phase(
    store: &Arc<SqlStore>,
    key: &SessionKey,
    duration: Duration,
) -> Vec<(Duration, Result<(), session_core::StoreError>)> {
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let started = Instant::now();
            while started.elapsed() < duration {
                let t = Instant::now();
                let result = if i % 4 == 0 {
                    store.create(&common::record(TimeDelta::hours(1))).await
                } else {
                    store.load(&key).await.map(|_| ())
                };
                out.push((t.elapsed(), result));
                // A failing-fast store answers without awaiting anything: pace the
                // tasks like request traffic so they do not starve the runtime's timers.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            out
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load task panicked"));
    }
    all
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

/// Polls `load` until it succeeds; how long that took after the server came back.
async fn recovery_time(store: &SqlStore, key: &SessionKey) -> Duration {
    let back = Instant::now();
    loop {
        match store.load(key).await {
            Ok(found) => {
                assert!(
                    found.is_some(),
                    "the record committed before the outage is back"
                );
                return back.elapsed();
            }
            Err(e) if back.elapsed() < Duration::from_secs(30) => {
                assert!(e.is_unavailable(), "while recovering: {e:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("store did not recover within 30 s: {e:?}"),
        }
    }
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
        let mut guard = RestartOnDrop { stopped: false };
        tokio::task::spawn_blocking(|| run_outage_command("SESSION_TEST_POSTGRES_OUTAGE_STOP"))
            .await
            .expect("stop");
        guard.stopped = true;

        // Every operation fails, with Unavailable, within the timeout (plus slack).
        let limit = TIMEOUT + Duration::from_secs(3);
        let started = Instant::now();
        let fresh = common::record(TimeDelta::hours(1));
        let results = [
            (
                "load",
                common::within(limit, "load", store.load(&before.key))
                    .await
                    .err(),
            ),
            (
                "exists",
                common::within(limit, "exists", store.exists(&before.key))
                    .await
                    .err(),
            ),
            (
                "create",
                common::within(limit, "create", store.create(&fresh))
                    .await
                    .err(),
            ),
            (
                "update",
                common::within(limit, "update", store.update(&before))
                    .await
                    .err(),
            ),
            (
                "touch",
                common::within(limit, "touch", store.touch(&before.key, fresh.expires_at))
                    .await
                    .err(),
            ),
            (
                "delete",
                common::within(limit, "delete", store.delete(&fresh.key))
                    .await
                    .err(),
            ),
            (
                "delete_expired",
                common::within(limit, "delete_expired", store.delete_expired())
                    .await
                    .err(),
            ),
            (
                "list_for_user",
                common::within(limit, "list_for_user", store.list_for_user("outage-user"))
                    .await
                    .err(),
            ),
        ];
        for (op, err) in results {
            let err = err.unwrap_or_else(|| panic!("{op} succeeded with the database down"));
            assert!(
                err.is_unavailable(),
                "{op}: expected Unavailable, got {err:?}"
            );
            let source = std::error::Error::source(&err).expect("source kept");
            assert!(
                source.downcast_ref::<sqlx::Error>().is_some(),
                "{op}: {source}"
            );
        }
        eprintln!(
            "8 operations failed as Unavailable in {:?} while the server was down",
            started.elapsed()
        );

        // Under load (32 tasks, 2 s), every answer is Unavailable and fast: the store
        // knows the server is down and does not wait for the acquire timeout.
        let store = Arc::new(store);
        let mut answers = load_phase(&store, &before.key, Duration::from_secs(2)).await;
        let mut latencies = Vec::new();
        for (latency, result) in answers.drain(..) {
            let err = result.expect_err("an operation succeeded with the server stopped");
            assert!(err.is_unavailable(), "expected Unavailable, got {err:?}");
            latencies.push(latency);
        }
        let n = latencies.len();
        let p99 = p99(&mut latencies);
        let max = latencies[n - 1];
        eprintln!("server stopped: {n} answers under load, p99 {p99:?}, max {max:?}");
        assert!(
            p99 < Duration::from_millis(250),
            "p99 of the Unavailable answers {p99:?} (goal < 250 ms)"
        );

        tokio::task::spawn_blocking(|| run_outage_command("SESSION_TEST_POSTGRES_OUTAGE_START"))
            .await
            .expect("start");
        guard.stopped = false;

        // The same store instance works again within a second, without a restart.
        let took = recovery_time(&store, &before.key).await;
        eprintln!("store answered again {took:?} after the server was back");
        assert!(took < Duration::from_secs(1), "recovery took {took:?}");
        let loaded = store
            .load(&before.key)
            .await
            .expect("load after recovery")
            .expect("the record committed before the outage is back");
        assert_eq!(loaded.data, before.data);
        for _ in 0..20 {
            assert!(store
                .exists(&before.key)
                .await
                .expect("exists after recovery"));
        }
        store.create(&fresh).await.expect("create after recovery");
        assert_eq!(
            store.update(&loaded).await.expect("update after recovery"),
            2
        );
        assert!(store
            .touch(&fresh.key, fresh.expires_at)
            .await
            .expect("touch"));
        assert_eq!(
            store
                .list_for_user("outage-user")
                .await
                .expect("list")
                .len(),
            1
        );
        assert!(store.delete(&fresh.key).await.expect("delete"));
        store.delete_expired().await.expect("delete_expired");
        drop(guard);
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

fn signal(sig: &str, pids: &[String]) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids)
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pids:?} failed");
}

/// Sends SIGCONT to the frozen server however the test ends.
struct ThawOnDrop(Vec<String>);

impl Drop for ThawOnDrop {
    fn drop(&mut self) {
        signal("CONT", &self.0);
    }
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
        signal("STOP", &pids);
        let thaw = ThawOnDrop(pids);

        let store = Arc::new(store);
        let answers = load_phase(&store, &before.key, Duration::from_secs(3)).await;
        let bound = TIMEOUT + TIMEOUT / 10;
        let mut latencies = Vec::new();
        for (latency, result) in answers {
            let err = result.expect_err("an operation succeeded on a frozen server");
            assert!(err.is_unavailable(), "expected Unavailable, got {err:?}");
            assert!(
                latency <= bound,
                "an operation waited {latency:?}, past the timeout + 10% ({bound:?})"
            );
            latencies.push(latency);
        }
        let n = latencies.len();
        let p99 = p99(&mut latencies);
        eprintln!(
            "server frozen: {n} answers, p99 {p99:?}, max {:?} (bound {bound:?})",
            latencies[n - 1]
        );

        drop(thaw);
        let took = recovery_time(&store, &before.key).await;
        eprintln!("store answered again {took:?} after SIGCONT");
        assert!(took < Duration::from_secs(1), "recovery took {took:?}");
        for _ in 0..20 {
            assert!(store
                .exists(&before.key)
                .await
                .expect("exists after thawing"));
        }
    });
}
