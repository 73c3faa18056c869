//! PostgreSQL at the speed of its engine (issue 11, item 4), measured by the server:
//!
//! - updates and touches of the native table are HOT (heap-only: no index entry written),
//!   from `pg_stat_user_tables` (`n_tup_hot_upd / n_tup_upd >= 0.7`) after a mixed
//!   workload through the store;
//! - the cleanup finds expired rows through the expiry-bucket index on a million-row
//!   table: the plan of the statement the store issues, and the table's scan counters
//!   while the store's `delete_expired` runs.
//!
//! Compiled only with the `postgres-tests` feature; needs `SESSION_TEST_POSTGRES_URL` (as a
//! superuser: the test resets statistics counters) and fails without it.
#![cfg(feature = "postgres-tests")]

mod common;

use common::runtime;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::chrono::{TimeDelta, Utc};
use session_core::{ExpiredCleanup, Record, SessionKey, SessionStore};
use session_sql::sqlx::postgres::PgConnection;
use session_sql::sqlx::{self, AssertSqlSafe, Connection, Row};

fn url() -> String {
    common::env_url("SESSION_TEST_POSTGRES_URL")
}

/// The URL with an `application_name`, to find the store's connections in
/// `pg_stat_activity`.
fn url_named(name: &str) -> String {
    let url = url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={name}")
}

/// The two tests take turns: a long transaction anywhere in the database (the
/// million-row `INSERT`) holds back the horizon below which PostgreSQL may prune old row
/// versions, so pages fill up and updates stop being HOT while it runs (measured on a
/// 300,000-row insert: 0.41 instead of 0.99).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

async fn admin() -> PgConnection {
    PgConnection::connect(&url())
        .await
        .expect("admin connection")
}

async fn exec(conn: &mut PgConnection, statement: &str) {
    sqlx::raw_sql(AssertSqlSafe(statement.to_owned()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Waits (bounded) until no backend runs under any of `names` (`application_name`): a
/// backend flushes the statistics it has pending when it exits (an idle one only every
/// 10 s), so after this they are all counted.
async fn wait_gone(names: &[&str]) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut check = admin().await;
    for _ in 0..100 {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = ANY($1)",
        )
        .bind(&names)
        .fetch_one(&mut check)
        .await
        .expect("pg_stat_activity");
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("backends of {names:?} still running 5 s after their connections closed");
}

/// Reads a row of statistics in a fresh snapshot until `done` accepts it, for at most
/// 10 s (backends flush pending statistics at most once a second, and at exit); gives
/// the last row read.
async fn stats_until<T>(
    conn: &mut PgConnection,
    query: &'static str,
    relation: &str,
    done: impl Fn(&T) -> bool,
) -> T
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut *conn)
            .await
            .expect("pg_stat_clear_snapshot");
        let row: T = sqlx::query_as(query)
            .bind(relation)
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        if done(&row) || Instant::now() >= deadline {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const SESSIONS: usize = 1_000;
const TASKS: usize = 4;
/// Rounds over every session: a load and an update each, and a touch every other round.
const ROUNDS: usize = 4;
const TTL: TimeDelta = TimeDelta::days(14);

/// Session data of about 1 KB, as the benchmark's.
fn data(n: usize) -> String {
    format!("j1:{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(1_000))
}

/// Updates and touches through the store are HOT: the index is on an hourly expiry bucket
/// that a moving expiry rarely leaves, and pages keep room (fillfactor 70). With an index
/// on `expires_at` itself every one of them would write index entries (ratio 0).
#[test]
fn mixed_updates_and_touches_are_hot() {
    let _serial = serial();
    runtime().block_on(async {
        let store = common::migrated_store(&url(), common::unique_table("pghot"), 8).await;
        let table = store.table().as_str().to_owned();
        let store = Arc::new(store);

        let mut keys = Vec::new();
        for i in 0..SESSIONS {
            let record = Record::new(SessionKey::generate(), data(0), Utc::now() + TTL)
                .with_user(Some(format!("user-{}", i % 100)));
            store.create(&record).await.expect("create");
            keys.push(record.key);
        }
        let keys = Arc::new(keys);

        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let (store, keys) = (store.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                let mut writes = 0u64;
                for round in 0..ROUNDS {
                    // Each task owns every TASKS-th session: no conflicts.
                    for key in keys.iter().skip(t).step_by(TASKS) {
                        let mut r = store.load(key).await.expect("load").expect("live");
                        r.data = data(round + 1);
                        r.expires_at = Utc::now() + TTL;
                        r.last_active_at = Some(Utc::now());
                        store.update(&r).await.expect("update");
                        writes += 1;
                        if round % 2 == 1 {
                            assert!(store.touch(key, Utc::now() + TTL).await.expect("touch"));
                            writes += 1;
                        }
                    }
                }
                writes
            }));
        }
        let mut writes = 0;
        for task in tasks {
            writes += task.await.expect("task");
        }
        let elapsed = started.elapsed();
        let expected = i64::try_from(writes).expect("count");

        // The store's backends flush their statistics when they exit.
        store.close().await;
        let mut conn = admin().await;
        let (upd, hot): (i64, i64) = stats_until(
            &mut conn,
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = $1",
            &table,
            |&(upd, _): &(i64, i64)| upd >= expected,
        )
        .await;
        let ratio = hot as f64 / upd.max(1) as f64;
        eprintln!(
            "{writes} updates and touches in {elapsed:?} ({TASKS} tasks, {SESSIONS} sessions): \
             n_tup_upd {upd}, n_tup_hot_upd {hot}, HOT ratio {ratio:.3}"
        );
        assert_eq!(upd, expected, "statistics incomplete or extra updates");
        assert!(ratio >= 0.7, "HOT ratio {ratio:.3} below 0.7");
        exec(&mut conn, &format!("DROP TABLE \"{table}\"")).await;
    });
}

const LIVE: i64 = 900_000;
const EXPIRED: i64 = 100_000;

/// The cleanup on a million-row table, 10% of it expired (a day's backlog): the statement
/// the store issues finds the expired rows through the expiry-bucket index, in its plan
/// and in fact (no sequential scan of the table while `delete_expired` runs), and removes
/// exactly them.
#[test]
fn cleanup_of_a_million_rows_uses_the_bucket_index() {
    let _serial = serial();
    runtime().block_on(async {
        let table = common::unique_table("pgmillion");
        let app = format!("session_sql_{table}");
        let store = common::migrated_store(&url_named(&app), table.clone(), 2).await;
        let quoted = format!("\"{table}\"");
        let index = format!("\"{table}_exp_bucket_idx\"");

        // The exact statement the store's cleanup issues, as the server received it: one
        // batch on the empty table.
        assert_eq!(store.delete_expired().await.expect("cleanup"), 0);
        let issued: Vec<String> = sqlx::query_scalar(
            "SELECT query FROM pg_stat_activity WHERE application_name = $1 \
             AND query LIKE 'DELETE%'",
        )
        .bind(&app)
        .fetch_all(&mut admin().await)
        .await
        .expect("pg_stat_activity");
        assert_eq!(issued.len(), 1, "one cleanup statement: {issued:?}");
        let cleanup = issued[0].clone();
        assert!(cleanup.contains(&quoted), "{cleanup}");
        eprintln!("the store's cleanup statement: {cleanup}");

        // Two rows through the store (one expired, one live), to check that the rows
        // written below in SQL have the store's bucket.
        let now = Utc::now();
        let expired = Record::new(SessionKey::generate(), data(0), now - TimeDelta::hours(3));
        let live = Record::new(SessionKey::generate(), data(0), now + TTL);
        store.create(&expired).await.expect("create expired");
        store.create(&live).await.expect("create live");

        let admin_app = format!("{app}_admin");
        let mut conn = PgConnection::connect(&url_named(&admin_app))
            .await
            .expect("admin connection");
        // Live rows expire over the next two weeks, from 10 minutes on (so none expires
        // while the test runs); expired ones over the last day. One row in ten is
        // expired, spread through the table (expiry has nothing to do with where a row
        // was written).
        let at = "CASE WHEN g % 10 = 0 \
                  THEN now() - (g % 1440) * interval '1 minute' - interval '1 second' \
                  ELSE now() + interval '10 minutes' + (g % 20160) * interval '1 minute' END";
        let bucket = |at: &str| format!("floor(extract(epoch FROM {at}) / 3600)::bigint");
        let started = Instant::now();
        let insert = format!(
            "INSERT INTO {quoted} (session_key, data, expires_at, expires_bucket, version, \
             user_id, created_at, last_active_at) \
             SELECT lpad(to_hex(g), 32, '0'), \
                    'j1:{{\"user_id\":\"u' || g || '\",\"csrf_token\":\"' || md5(g::text) || '\"}}', \
                    e, {}, 1, CASE WHEN g % 10 = 1 THEN 'user-' || (g % 5000) END, \
                    now() - interval '1 day', now() \
             FROM (SELECT g, {at} AS e FROM generate_series(1, {}) AS g) AS s",
            bucket("e"),
            LIVE + EXPIRED
        );
        let inserted = sqlx::raw_sql(AssertSqlSafe(insert))
            .execute(&mut conn)
            .await
            .expect("insert a million rows")
            .rows_affected();
        assert_eq!(inserted, (LIVE + EXPIRED) as u64);
        exec(&mut conn, &format!("ANALYZE {quoted}")).await;
        eprintln!(
            "{} rows written and analyzed in {:?}",
            inserted + 2,
            started.elapsed()
        );
        // (Through the primary key: no sequential scan of the table before the cleanup
        // is measured.)
        let same_bucket: Vec<bool> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT expires_bucket = {} FROM {quoted} WHERE session_key IN ($1, $2)",
            bucket("expires_at")
        )))
        .bind(expired.key.as_str())
        .bind(live.key.as_str())
        .fetch_all(&mut conn)
        .await
        .expect("buckets");
        assert_eq!(
            same_bucket,
            vec![true, true],
            "the store's bucket is the one the rows above were written with"
        );

        // The plan of that statement for its values (the store has each batch planned
        // for its values: see `Stmt::one_shot`).
        exec(
            &mut conn,
            &format!("PREPARE cleanup(timestamptz, bigint) AS {cleanup}"),
        )
        .await;
        let explain = format!(
            "EXPLAIN EXECUTE cleanup(now(), {})",
            session_sql::DEFAULT_DELETE_BATCH_SIZE
        );
        let plan: Vec<String> = sqlx::raw_sql(AssertSqlSafe(explain))
            .fetch_all(&mut conn)
            .await
            .expect("explain")
            .iter()
            .map(|row| row.get(0))
            .collect();
        let plan = plan.join("\n");
        eprintln!("{plan}");
        let on_index = [
            format!("Bitmap Index Scan on {}", index.trim_matches('"')),
            format!("Index Scan using {}", index.trim_matches('"')),
        ];
        assert!(
            on_index.iter().any(|scan| plan.contains(scan.as_str())),
            "the cleanup does not scan the bucket index:\n{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "the cleanup scans the table:\n{plan}");
        exec(&mut conn, "DEALLOCATE cleanup").await;

        // In fact: the table's and the index's scan counters over the store's whole
        // cleanup (every batch, each planned as the store's connection plans it), on a
        // fresh store: every backend that worked on the table before has exited (and
        // flushed its statistics) when the counters are reset.
        conn.close().await.expect("close");
        store.close().await;
        wait_gone(&[&app, &admin_app]).await;
        let mut conn = admin().await;
        for relation in [&quoted, &index] {
            sqlx::query("SELECT pg_stat_reset_single_table_counters($1::regclass)")
                .bind(relation)
                .execute(&mut conn)
                .await
                .expect("reset counters");
        }
        let store = common::connect(&url_named(&app), table.clone(), 2).await;
        let started = Instant::now();
        let removed = store.delete_expired().await.expect("delete_expired");
        let took = started.elapsed();
        let batches = removed / u64::from(session_sql::DEFAULT_DELETE_BATCH_SIZE) + 1;
        eprintln!(
            "delete_expired removed {removed} of {} rows in {took:?} ({batches} batches of \
             up to {})",
            inserted + 2,
            session_sql::DEFAULT_DELETE_BATCH_SIZE
        );
        assert_eq!(removed, (EXPIRED + 1) as u64, "exactly the expired rows");
        store.close().await;
        let (seq_scans, deleted, index_scans): (i64, i64, i64) = stats_until(
            &mut conn,
            "SELECT t.seq_scan, t.n_tup_del, i.idx_scan \
             FROM pg_stat_user_tables t JOIN pg_stat_user_indexes i USING (relid) \
             WHERE t.relname = $1 AND i.indexrelname = t.relname || '_exp_bucket_idx'",
            &table,
            |&(_, deleted, _): &(i64, i64, i64)| deleted > EXPIRED,
        )
        .await;
        eprintln!(
            "during delete_expired: {seq_scans} sequential scans of the table, {index_scans} \
             scans of the bucket index, {deleted} rows deleted"
        );
        assert_eq!(deleted, EXPIRED + 1, "statistics incomplete");
        assert_eq!(
            seq_scans, 0,
            "a cleanup batch scanned the whole table (a generic plan?)"
        );
        assert!(
            index_scans >= batches as i64,
            "{index_scans} bucket-index scans for {batches} batches"
        );

        let (left, left_expired): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT count(*), count(*) FILTER (WHERE expires_at <= now()) FROM {quoted}"
        )))
        .fetch_one(&mut conn)
        .await
        .expect("count");
        assert_eq!((left, left_expired), (LIVE + 1, 0), "every live row stays");
        exec(&mut conn, &format!("DROP TABLE {quoted}")).await;
    });
}
