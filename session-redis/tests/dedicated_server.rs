//! Tests on the dedicated Redis instance of `SESSION_TEST_REDIS_OUTAGE_URL` (nobody else's
//! traffic, so server-side counters are exact; and it may be stopped and started with
//! `SESSION_TEST_REDIS_OUTAGE_STOP` / `_START`):
//!
//! - the commands each operation sends (`INFO commandstats` deltas): one per `load`, one
//!   `EVALSHA` per `update` and per `delete_at_version`;
//! - killing the server while operations run: errors within the configured timeout, no
//!   panic or hang, and success again after the restart with the same store;
//! - a server that stops answering (`CLIENT PAUSE`): `Unavailable` within the timeout.
//!
//! The tests share the instance, so they run one at a time (a lock).
//! Compiled only with the `redis-tests` feature.
#![cfg(feature = "redis-tests")]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::chrono::{TimeDelta, Utc};
use session_core::{Record, SessionKey, SessionStore, StoreError, UserIndex};
use session_redis::redis;
use session_redis::RedisStore;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

const TIMEOUT: Duration = Duration::from_millis(400);

fn store(url: &str) -> RedisStore {
    RedisStore::builder()
        .url(url)
        .key_prefix(common::prefix("dedicated"))
        .pool_size(2)
        .connect_timeout(TIMEOUT)
        .wait_timeout(TIMEOUT)
        .response_timeout(TIMEOUT)
        .build()
        .expect("build store")
}

fn record(user: Option<&str>) -> Record {
    let mut r = Record::new(
        SessionKey::generate(),
        r#"j1:{"cart":["apple","pear"],"csrf":"k3y"}"#.to_owned(),
        Utc::now() + TimeDelta::hours(1),
    );
    r.user_id = user.map(str::to_owned);
    r.user_agent = Some("Mozilla/5.0".into());
    r.ip = Some("127.0.0.1".into());
    r
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection to the dedicated redis")
}

/// `calls` and `usec` (server time) per command from `INFO commandstats`.
async fn command_stats(
    conn: &mut redis::aio::MultiplexedConnection,
) -> BTreeMap<String, (u64, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let field = |f: &str| -> Option<u64> {
                stats
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(f))?
                    .parse()
                    .ok()
            };
            Some((name.to_owned(), (field("calls=")?, field("usec=")?)))
        })
        .collect()
}

/// `calls` per command from `INFO commandstats`.
async fn command_calls(conn: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    command_stats(conn)
        .await
        .into_iter()
        .map(|(name, (calls, _))| (name, calls))
        .collect()
}

/// Runs `op` `n` times; returns the per-command call deltas and the server time per
/// operation of the commands the client sent (`top`: a script's time includes the
/// commands it runs), in microseconds.
async fn cpu_delta<F, Fut>(
    conn: &mut redis::aio::MultiplexedConnection,
    n: usize,
    top: &[&str],
    mut op: F,
) -> (BTreeMap<String, u64>, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = command_stats(conn).await;
    for i in 0..n {
        op(i).await;
    }
    let after = command_stats(conn).await;
    let mut calls = BTreeMap::new();
    let mut usec = 0u64;
    for (name, (c, u)) in after {
        let (c0, u0) = before.get(&name).copied().unwrap_or((0, 0));
        if name == "info" || c == c0 {
            continue;
        }
        if top.contains(&name.as_str()) {
            usec += u - u0;
        }
        calls.insert(name, c - c0);
    }
    (calls, usec as f64 / n as f64)
}

/// Runs `op` `n` times and returns the per-command call deltas, without our own `INFO`.
async fn delta<F, Fut>(
    conn: &mut redis::aio::MultiplexedConnection,
    n: usize,
    mut op: F,
) -> BTreeMap<String, u64>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = command_calls(conn).await;
    for i in 0..n {
        op(i).await;
    }
    let after = command_calls(conn).await;
    after
        .into_iter()
        .filter(|(name, _)| name != "info")
        .filter_map(|(name, calls)| {
            let d = calls - before.get(&name).copied().unwrap_or(0);
            (d > 0).then_some((name, d))
        })
        .collect()
}

fn per_op(d: &BTreeMap<String, u64>, n: usize) -> String {
    d.iter()
        .map(|(k, v)| format!("{k}={}", *v as f64 / n as f64))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn one_round_trip_for_load_and_update() {
    let _serial = serial();
    let url = common::env("SESSION_TEST_REDIS_OUTAGE_URL");
    runtime().block_on(async {
        let store = store(&url);
        let mut conn = raw(&url).await;
        let rec = record(Some("alice"));
        store.create(&rec).await.expect("create");
        // Warm up: connections open and scripts cached.
        let mut current = store.load(&rec.key).await.expect("load").expect("live");
        current.version = store.update(&current).await.expect("update");
        assert!(store.touch(&rec.key, rec.expires_at).await.expect("touch"));
        assert!(!store.delete(&SessionKey::generate()).await.expect("delete"));
        assert!(matches!(
            store.delete_at_version(&SessionKey::generate(), 1).await,
            Err(StoreError::NotFound)
        ));
        let before = command_calls(&mut conn).await;
        let n = 50;

        let load = delta(&mut conn, n, |_| {
            let store = store.clone();
            let key = rec.key.clone();
            async move {
                assert!(store.load(&key).await.expect("load").is_some());
            }
        })
        .await;
        println!("commands per load: {}", per_op(&load, n));
        assert_eq!(
            load,
            BTreeMap::from([("get".to_owned(), n as u64)]),
            "load = one GET"
        );

        let shared = Arc::new(parking_lot::Mutex::new(current.clone()));
        let update = delta(&mut conn, n, |i| {
            let store = store.clone();
            let shared = shared.clone();
            async move {
                let mut r = shared.lock().clone();
                r.data = format!(r#"j1:{{"n":{i}}}"#);
                let v = store.update(&r).await.expect("update");
                shared.lock().version = v;
            }
        })
        .await;
        println!(
            "commands per update: {} (one EVALSHA round trip; GETRANGE of the header and SET \
             of the value the client built run inside the script)",
            per_op(&update, n)
        );
        assert_eq!(
            update,
            BTreeMap::from([
                ("evalsha".to_owned(), n as u64),
                ("getrange".to_owned(), n as u64),
                ("set".to_owned(), n as u64),
            ]),
            "update = one EVALSHA; the script never reads the whole value"
        );

        let both = delta(&mut conn, n, |i| {
            let store = store.clone();
            let key = rec.key.clone();
            async move {
                let mut r = store.load(&key).await.expect("load").expect("live");
                r.data = format!(r#"j1:{{"m":{i}}}"#);
                store.update(&r).await.expect("update");
            }
        })
        .await;
        println!("commands per load+update: {}", per_op(&both, n));
        assert_eq!(
            both,
            BTreeMap::from([
                ("evalsha".to_owned(), n as u64),
                ("get".to_owned(), n as u64),
                ("getrange".to_owned(), n as u64),
                ("set".to_owned(), n as u64),
            ]),
            "GET by load + GETRANGE and SET in the script"
        );

        let touch = delta(&mut conn, n, |_| {
            let store = store.clone();
            let key = rec.key.clone();
            async move {
                assert!(store
                    .touch(&key, Utc::now() + TimeDelta::hours(2))
                    .await
                    .expect("touch"));
            }
        })
        .await;
        println!("commands per touch: {}", per_op(&touch, n));
        assert_eq!(
            touch,
            BTreeMap::from([
                ("evalsha".to_owned(), n as u64),
                ("getrange".to_owned(), n as u64),
                ("pexpireat".to_owned(), n as u64),
                ("setrange".to_owned(), n as u64),
            ]),
            "touch never rewrites the value"
        );

        let exists = delta(&mut conn, n, |_| {
            let store = store.clone();
            let key = rec.key.clone();
            async move {
                assert!(store.exists(&key).await.expect("exists"));
            }
        })
        .await;
        println!("commands per exists: {}", per_op(&exists, n));
        assert_eq!(exists, BTreeMap::from([("getrange".to_owned(), n as u64)]));

        // Compare-and-delete: one EVALSHA, which reads the head (GETRANGE) and deletes.
        let doomed: Vec<Record> = (0..n).map(|_| record(Some("dan"))).collect();
        for r in &doomed {
            store.create(r).await.expect("create");
        }
        let cad = delta(&mut conn, n, |i| {
            let store = store.clone();
            let r = doomed[i].clone();
            async move {
                store
                    .delete_at_version(&r.key, r.version)
                    .await
                    .expect("delete_at_version");
            }
        })
        .await;
        println!("commands per delete_at_version: {}", per_op(&cad, n));
        assert_eq!(
            cad,
            BTreeMap::from([
                ("del".to_owned(), n as u64),
                ("evalsha".to_owned(), n as u64),
                ("getrange".to_owned(), n as u64),
            ]),
            "delete_at_version = one EVALSHA round trip"
        );

        let creates = delta(&mut conn, n, |_| {
            let store = store.clone();
            async move {
                store.create(&record(Some("bob"))).await.expect("create");
            }
        })
        .await;
        println!("commands per create (with a user): {}", per_op(&creates, n));
        assert_eq!(
            creates,
            BTreeMap::from([
                ("evalsha".to_owned(), n as u64),
                ("get".to_owned(), n as u64),
                ("set".to_owned(), n as u64),
                ("zadd".to_owned(), n as u64),
            ]),
            "create with a user = one EVALSHA writing the session and its index entry"
        );

        let anonymous: Vec<Record> = (0..n).map(|_| record(None)).collect();
        let creates = delta(&mut conn, n, |i| {
            let store = store.clone();
            let r = anonymous[i].clone();
            async move {
                store.create(&r).await.expect("create");
            }
        })
        .await;
        println!("commands per create (no user): {}", per_op(&creates, n));
        assert_eq!(
            creates,
            BTreeMap::from([("set".to_owned(), n as u64)]),
            "create without a user = one native SET NX PXAT"
        );
        // A live record at the key: SET NX is refused, the script tells why.
        let again = delta(&mut conn, 1, |_| {
            let store = store.clone();
            let r = anonymous[0].clone();
            async move {
                assert!(matches!(store.create(&r).await, Err(StoreError::KeyExists)));
            }
        })
        .await;
        assert_eq!(
            again,
            BTreeMap::from([
                ("evalsha".to_owned(), 1),
                ("get".to_owned(), 1),
                ("set".to_owned(), 1),
            ]),
            "a refused SET NX falls back to the script"
        );
        let deletes = delta(&mut conn, n, |i| {
            let store = store.clone();
            let r = anonymous[i].clone();
            async move {
                assert!(store.delete(&r.key).await.expect("delete"));
            }
        })
        .await;
        println!("commands per delete: {}", per_op(&deletes, n));
        assert_eq!(
            deletes,
            BTreeMap::from([("del".to_owned(), n as u64)]),
            "delete = one native DEL"
        );

        // An empty script cache (server restart, SCRIPT FLUSH): EVALSHA answers NOSCRIPT,
        // the script is loaded and the call retried, once.
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut conn)
            .await
            .expect("SCRIPT FLUSH");
        let flushed = delta(&mut conn, 1, |_| {
            let store = store.clone();
            let shared = shared.clone();
            let key = rec.key.clone();
            async move {
                let mut r = store.load(&key).await.expect("load").expect("live");
                r.data = "j1:{}".into();
                let v = store.update(&r).await.expect("update after SCRIPT FLUSH");
                shared.lock().version = v;
            }
        })
        .await;
        println!(
            "commands for load+update after SCRIPT FLUSH: {}",
            per_op(&flushed, 1)
        );
        assert_eq!(flushed.get("evalsha"), Some(&2), "{flushed:?}");
        assert_eq!(flushed.get("script|load"), Some(&1), "{flushed:?}");
        let _ = before;
    });
}

/// Server time per operation (`INFO commandstats` usec of the command the client sent: a
/// native command, or `EVALSHA`, whose time includes the commands the script runs) with a 1 KB value, printed for BENCHMARKS.md; the
/// assertions check that each operation sent exactly the commands counted.
#[test]
fn server_time_per_operation_with_a_1kb_value() {
    let _serial = serial();
    let url = common::env("SESSION_TEST_REDIS_OUTAGE_URL");
    runtime().block_on(async {
        let store = store(&url);
        let mut conn = raw(&url).await;
        let n = 2000;
        let data = format!("j1:{{\"blob\":\"{}\"}}", "x".repeat(1000));
        let records: Vec<Record> = (0..n)
            .map(|_| {
                let mut r = record(None);
                r.data = data.clone();
                r
            })
            .collect();
        // Warm up (connections, script cache).
        let warm = record(None);
        store.create(&warm).await.expect("create");
        store.update(&warm).await.expect("update");
        store
            .touch(&warm.key, warm.expires_at)
            .await
            .expect("touch");
        let (create, create_us) = cpu_delta(&mut conn, n, &["evalsha", "set"], |i| {
            let (store, r) = (store.clone(), records[i].clone());
            async move { store.create(&r).await.expect("create") }
        })
        .await;
        let (load, load_us) = cpu_delta(&mut conn, n, &["get"], |i| {
            let (store, key) = (store.clone(), records[i].key.clone());
            async move {
                assert!(store.load(&key).await.expect("load").is_some());
            }
        })
        .await;
        let (update, update_us) = cpu_delta(&mut conn, n, &["evalsha"], |i| {
            let (store, r) = (store.clone(), records[i].clone());
            async move {
                assert_eq!(store.update(&r).await.expect("update"), r.version + 1);
            }
        })
        .await;
        let (touch, touch_us) = cpu_delta(&mut conn, n, &["evalsha"], |i| {
            let (store, key) = (store.clone(), records[i].key.clone());
            async move {
                let at = Utc::now() + TimeDelta::hours(2);
                assert!(store.touch(&key, at).await.expect("touch"));
            }
        })
        .await;
        let (delete, delete_us) = cpu_delta(&mut conn, n, &["evalsha", "del"], |i| {
            let (store, key) = (store.clone(), records[i].key.clone());
            async move {
                assert!(store.delete(&key).await.expect("delete"));
            }
        })
        .await;
        println!(
            "server µs per op (1 KB value, {n} ops each): create {create_us:.2}, load \
             {load_us:.2}, update {update_us:.2}, touch {touch_us:.2}, delete {delete_us:.2}"
        );
        let n = n as u64;
        assert_eq!(create, BTreeMap::from([("set".to_owned(), n)]));
        assert_eq!(load, BTreeMap::from([("get".to_owned(), n)]));
        assert_eq!(
            update,
            BTreeMap::from([
                ("evalsha".to_owned(), n),
                ("getrange".to_owned(), n),
                ("set".to_owned(), n),
            ])
        );
        assert_eq!(touch.get("evalsha"), Some(&n), "{touch:?}");
        assert_eq!(delete, BTreeMap::from([("del".to_owned(), n)]));
    });
}

/// Restarts the dedicated server if a test stopped it and then failed.
struct Restart(&'static str);

impl Drop for Restart {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(self.0)
                .status();
        }
    }
}

fn shell(var: &str) {
    let cmd = common::env(var);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .status()
        .unwrap_or_else(|e| panic!("running {var}: {e}"));
    assert!(status.success(), "{var} failed: {status}");
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    unavailable: u64,
    other: Vec<String>,
    slowest: Duration,
}

#[test]
fn outage_errors_within_timeout_and_recovers_without_restart() {
    let _serial = serial();
    let url = common::env("SESSION_TEST_REDIS_OUTAGE_URL");
    let start_cmd: &'static str =
        Box::leak(common::env("SESSION_TEST_REDIS_OUTAGE_START").into_boxed_str());
    common::env("SESSION_TEST_REDIS_OUTAGE_STOP");
    runtime().block_on(async {
        let store = store(&url);
        let rec = record(Some("carol"));
        store.create(&rec).await.expect("create before the outage");

        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(parking_lot::Mutex::new(Tally::default()));
        let mut workers = Vec::new();
        for w in 0..4 {
            let (store, stop, tally) = (store.clone(), stop.clone(), tally.clone());
            let key = rec.key.clone();
            workers.push(tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let started = Instant::now();
                    let result = match (w + i) % 4 {
                        0 => store.load(&key).await.map(|_| ()),
                        1 => store.exists(&key).await.map(|_| ()),
                        2 => store.create(&record(None)).await,
                        _ => store
                            .touch(&key, Utc::now() + TimeDelta::hours(1))
                            .await
                            .map(|_| ()),
                    };
                    let took = started.elapsed();
                    {
                        let mut t = tally.lock();
                        t.slowest = t.slowest.max(took);
                        match result {
                            Ok(()) => t.ok += 1,
                            Err(StoreError::Unavailable { .. }) => t.unavailable += 1,
                            Err(e) => t.other.push(e.to_string()),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
        }

        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = std::mem::take(&mut *tally.lock());
        assert!(
            before.ok > 0 && before.unavailable == 0,
            "before the outage: {before:?}"
        );

        let guard = Restart(start_cmd);
        tokio::task::spawn_blocking(|| shell("SESSION_TEST_REDIS_OUTAGE_STOP"))
            .await
            .expect("stop");
        let stopped_at = Instant::now();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let during = std::mem::take(&mut *tally.lock());
        println!(
            "outage: {during:?} (slowest op while down: {:?})",
            during.slowest
        );
        assert!(
            during.unavailable > 0,
            "operations fail while the server is down: {during:?}"
        );
        assert!(
            during.other.is_empty(),
            "errors other than Unavailable: {:?}",
            during.other
        );
        // connect + wait + response timeouts bound one operation; allow scheduling slack.
        assert!(
            during.slowest < TIMEOUT * 3 + Duration::from_millis(300),
            "an operation took {:?} while the server was down",
            during.slowest
        );

        tokio::task::spawn_blocking(|| shell("SESSION_TEST_REDIS_OUTAGE_START"))
            .await
            .expect("start");
        drop(guard);
        let restarted_at = Instant::now();
        let deadline = restarted_at + Duration::from_secs(10);
        loop {
            let ok = tally.lock().ok;
            if ok >= 20 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no recovery within 10 s: {:?}",
                tally.lock()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.expect("a worker panicked");
        }
        let after = std::mem::take(&mut *tally.lock());
        println!(
            "after restart ({:?} down): {after:?}; recovered within {:?}",
            restarted_at - stopped_at,
            restarted_at.elapsed()
        );
        assert!(after.other.is_empty(), "{:?}", after.other);

        // Same store, fresh server (no persistence): the old session is gone, new ones work.
        assert!(store
            .load(&rec.key)
            .await
            .expect("load after restart")
            .is_none());
        let fresh = record(Some("carol"));
        store.create(&fresh).await.expect("create after restart");
        let mut loaded = store.load(&fresh.key).await.expect("load").expect("live");
        loaded.data = "j1:{\"after\":true}".into();
        assert_eq!(
            store.update(&loaded).await.expect("update after restart"),
            2
        );
        assert_eq!(store.list_for_user("carol").await.expect("list").len(), 1);
    });
}

#[test]
fn unresponsive_server_is_unavailable_within_the_response_timeout() {
    let _serial = serial();
    let url = common::env("SESSION_TEST_REDIS_OUTAGE_URL");
    runtime().block_on(async {
        let store = store(&url);
        let rec = record(None);
        store.create(&rec).await.expect("create");
        let mut conn = raw(&url).await;
        // The server stops answering every client for 1.5 s.
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(1500)
            .arg("ALL")
            .query_async(&mut conn)
            .await
            .expect("CLIENT PAUSE");
        let started = Instant::now();
        let err = store.load(&rec.key).await.expect_err("paused server");
        let took = started.elapsed();
        println!("load against a paused server failed after {took:?}: {err}");
        assert!(err.is_unavailable(), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        assert!(
            took >= TIMEOUT - Duration::from_millis(50) && took < TIMEOUT * 2,
            "{took:?}"
        );
        // Wait out the pause (an UNPAUSE would itself wait behind it).
        tokio::time::sleep(Duration::from_millis(1600).saturating_sub(started.elapsed())).await;
        // The timed-out connection was replaced; the store works again.
        let loaded = store.load(&rec.key).await.expect("load after unpause");
        assert_eq!(loaded.map(|r| r.key), Some(rec.key));
    });
}
