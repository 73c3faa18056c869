//! Store behaviour beyond the conformance suite, on the standalone Redis of
//! `SESSION_TEST_REDIS_URL`: foreign values at session keys, Redis-side expiry, the user
//! index's stale entries and their pruning. Compiled only with the `redis-tests` feature.
#![cfg(feature = "redis-tests")]

mod common;

use std::time::Duration;

use session_core::chrono::{TimeDelta, Utc};
use session_core::{ExpiredCleanup, Record, SessionKey, SessionStore, StoreError, UserIndex};
use session_redis::redis::{self, AsyncCommands};
use session_redis::RedisStore;

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(common::env("SESSION_TEST_REDIS_URL"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

fn record(user: Option<&str>, expires_in: TimeDelta) -> Record {
    let mut r = Record::new(
        SessionKey::generate(),
        "j1:{}".into(),
        Utc::now() + expires_in,
    );
    r.user_id = user.map(str::to_owned);
    r
}

/// Writes a foreign value at a key.
type Writer = Box<dyn Fn(&mut redis::Pipeline, &str)>;

fn corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::CorruptRecord { .. }) => {}
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_values_are_corrupt_records_never_panics() {
    let store = common::standalone("foreign");
    let mut conn = raw().await;
    // A value whose head looks like a live record but which stops short.
    let truncated = format!("s1|{:017}|--", Utc::now().timestamp_millis() + 3_600_000);
    let cases: Vec<(&str, Writer)> = vec![
        (
            "plain string",
            Box::new(|p, k| {
                p.set(k, "hello");
            }),
        ),
        (
            "truncated record",
            Box::new(move |p, k| {
                p.set(k, truncated.as_str());
            }),
        ),
        (
            "bad utf-8",
            Box::new(|p, k| {
                p.set(k, b"s1|\xff\xfe".to_vec());
            }),
        ),
        (
            "hash",
            Box::new(|p, k| {
                p.hset(k, "data", "x");
            }),
        ),
        (
            "list",
            Box::new(|p, k| {
                p.rpush(k, "x");
            }),
        ),
    ];
    for (what, write) in cases {
        let key = SessionKey::generate();
        let redis_key = store.session_key(&key);
        let mut pipe = redis::pipe();
        write(&mut pipe, &redis_key);
        let _: () = pipe.query_async(&mut conn).await.expect(what);
        corrupt(store.load(&key).await);
        let mut r = record(None, TimeDelta::hours(1));
        r.key = key.clone();
        corrupt(store.update(&r).await);
        corrupt(store.create(&r).await);
        corrupt(store.touch(&key, Utc::now() + TimeDelta::hours(1)).await);
        corrupt(store.delete_at_version(&key, 1).await);
        let still: bool = conn.exists(&redis_key).await.expect("EXISTS");
        assert!(
            still,
            "{what}: delete_at_version leaves a foreign value alone"
        );
        if what == "truncated record" {
            // exists reads the expiry field only.
            assert!(store.exists(&key).await.expect(what));
        } else {
            corrupt(store.exists(&key).await);
        }
        // delete removes anything at the key, and reports it.
        assert!(store.delete(&key).await.expect(what), "{what}");
        assert!(!store.exists(&key).await.expect(what));
        store.create(&r).await.expect("the key is usable again");
        assert!(store.delete(&key).await.expect("delete"));
    }
}

/// A value in this crate's format, written behind the store's back (no Redis expiry).
fn raw_value(expires_ms: i64, version: u64) -> String {
    format!("s1|{expires_ms:017}|-----------------|{version}|0|-|-|-|j1:{{}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_at_version_is_one_atomic_compare_and_delete() {
    let store = common::standalone("cad");
    let mut conn = raw().await;

    // Expired by the caller's clock but still in Redis (no TTL): absent, and left alone.
    let key = SessionKey::generate();
    let redis_key = store.session_key(&key);
    let past = Utc::now().timestamp_millis() - 1;
    let _: () = conn.set(&redis_key, raw_value(past, 3)).await.expect("SET");
    assert!(matches!(
        store.delete_at_version(&key, 3).await,
        Err(StoreError::NotFound)
    ));
    let still: bool = conn.exists(&redis_key).await.expect("EXISTS");
    assert!(still, "an expired record is reported absent, not removed");

    // A live record at another version: Conflict, record untouched.
    let user = "hal";
    let mut r = record(Some(user), TimeDelta::hours(1));
    store.create(&r).await.expect("create");
    r.data = "j1:{\"n\":2}".into();
    r.version = store.update(&r).await.expect("update");
    assert!(matches!(
        store.delete_at_version(&r.key, r.version - 1).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store.delete_at_version(&r.key, r.version + 1).await,
        Err(StoreError::Conflict)
    ));
    let kept = store.load(&r.key).await.expect("load").expect("live");
    assert_eq!(
        (kept.version, kept.data.as_str()),
        (r.version, r.data.as_str())
    );

    // At its version: removed; the index entry goes stale like after `delete`, and is
    // neither listed nor counted.
    store
        .delete_at_version(&r.key, r.version)
        .await
        .expect("delete_at_version");
    let gone: bool = conn
        .exists(store.session_key(&r.key))
        .await
        .expect("EXISTS");
    assert!(!gone);
    assert!(matches!(
        store.delete_at_version(&r.key, r.version).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_for_user(user).await.expect("list").is_empty());

    // Versions of every width up to u64::MAX (the script reads only the value's head).
    for version in [u64::MAX - 1, u64::MAX, 10_000_000_000_000_000_000] {
        let mut big = record(None, TimeDelta::hours(1));
        big.version = version;
        big.data = format!("j1:{{\"pad\":\"{}\"}}", "x".repeat(100));
        store.create(&big).await.expect("create");
        assert!(matches!(
            store.delete_at_version(&big.key, version / 10).await,
            Err(StoreError::Conflict)
        ));
        store
            .delete_at_version(&big.key, version)
            .await
            .expect("delete at a 20-digit version");
        assert!(!store.exists(&big.key).await.expect("exists"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_expiry_follows_expires_at_to_the_millisecond() {
    let store = common::standalone("ttl");
    let mut conn = raw().await;
    let r = record(None, TimeDelta::seconds(30));
    store.create(&r).await.expect("create");
    let at: i64 = conn
        .pexpire_time(store.session_key(&r.key))
        .await
        .expect("PEXPIRETIME");
    assert_eq!(at, r.expires_at.timestamp_millis());
    let later = Utc::now() + TimeDelta::minutes(10);
    assert!(store.touch(&r.key, later).await.expect("touch"));
    let at: i64 = conn
        .pexpire_time(store.session_key(&r.key))
        .await
        .expect("PEXPIRETIME");
    assert_eq!(at, later.timestamp_millis());
    let loaded = store.load(&r.key).await.expect("load").expect("live");
    assert_eq!(loaded.version, 1, "touch keeps the version");
    assert!(loaded.last_active_at.is_some(), "touch sets last_active_at");
    // A record created already expired is not stored at all.
    let dead = record(Some("zed"), -TimeDelta::seconds(1));
    store.create(&dead).await.expect("create expired");
    let exists: bool = conn
        .exists(store.session_key(&dead.key))
        .await
        .expect("EXISTS");
    assert!(!exists);
    let indexed: bool = conn
        .exists(store.user_index_key("zed"))
        .await
        .expect("EXISTS");
    assert!(
        !indexed,
        "no index entry for a record that was never stored"
    );
    // Touching into the past ends the session.
    assert!(store
        .touch(&r.key, Utc::now() - TimeDelta::seconds(1))
        .await
        .expect("touch"));
    assert!(!store.exists(&r.key).await.expect("exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_index_entries_are_filtered_and_pruned() {
    let store = common::standalone("index");
    let mut conn = raw().await;
    let user = "dora";
    let index = store.user_index_key(user);
    let mut live = Vec::new();
    for _ in 0..3 {
        let r = record(Some(user), TimeDelta::hours(1));
        store.create(&r).await.expect("create");
        live.push(r);
    }
    let short = record(Some(user), TimeDelta::milliseconds(200));
    store.create(&short).await.expect("create short");
    // delete leaves an index entry behind (it never touches the index).
    store.delete(&live[0].key).await.expect("delete");
    // An entry for a key that never existed, and garbage.
    let _: () = conn
        .zadd(&index, SessionKey::generate().as_str(), 1)
        .await
        .expect("ZADD");
    let _: () = conn.zadd(&index, "not-a-key", 2).await.expect("ZADD");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let entries: Vec<String> = conn.zrange(&index, 0, -1).await.expect("ZRANGE");
    assert_eq!(entries.len(), 6, "{entries:?}");

    let listed = store.list_for_user(user).await.expect("list");
    let mut got: Vec<_> = listed.iter().map(|r| r.key.clone()).collect();
    let mut want: Vec<_> = live[1..].iter().map(|r| r.key.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "only live sessions of the user are listed");
    let entries: Vec<String> = conn.zrange(&index, 0, -1).await.expect("ZRANGE");
    assert_eq!(
        entries.len(),
        2,
        "the read pruned the stale entries: {entries:?}"
    );

    // delete_expired prunes every index and counts what it removed.
    let _: () = conn
        .zadd(&index, SessionKey::generate().as_str(), 3)
        .await
        .expect("ZADD");
    let other = store.user_index_key("erin");
    let _: () = conn
        .zadd(&other, SessionKey::generate().as_str(), 3)
        .await
        .expect("ZADD");
    assert_eq!(store.delete_expired().await.expect("delete_expired"), 2);
    assert_eq!(store.delete_expired().await.expect("again"), 0);
    let gone: bool = conn.exists(&other).await.expect("EXISTS");
    assert!(!gone, "an index left empty disappears");

    // A session moved to another user is neither listed nor deleted for the old one.
    let mut moved = store.load(&live[1].key).await.expect("load").expect("live");
    moved.user_id = Some("frank".into());
    store.update(&moved).await.expect("update");
    assert_eq!(store.list_for_user(user).await.expect("list").len(), 1);
    assert_eq!(
        store
            .delete_for_user(user, None)
            .await
            .expect("delete_for_user"),
        1
    );
    assert!(
        store.exists(&live[1].key).await.expect("exists"),
        "frank's session survives"
    );
    assert_eq!(store.list_for_user("frank").await.expect("list").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_with_other_prefixes_do_not_see_each_other() {
    let a = common::standalone("iso");
    let b = common::standalone("iso");
    let r = record(Some("gus"), TimeDelta::hours(1));
    a.create(&r).await.expect("create");
    assert!(b.load(&r.key).await.expect("load").is_none());
    assert!(b.list_for_user("gus").await.expect("list").is_empty());
    assert_eq!(b.delete_for_user("gus", None).await.expect("delete"), 0);
    assert!(a.exists(&r.key).await.expect("exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_from_a_caller_pool_and_ping() {
    let pool =
        session_redis::deadpool_redis::Config::from_url(common::env("SESSION_TEST_REDIS_URL"))
            .create_pool(Some(session_redis::deadpool_redis::Runtime::Tokio1))
            .expect("pool");
    let store = RedisStore::builder()
        .pool(pool.clone())
        .key_prefix(common::prefix("pool"))
        .pool_size(3)
        .build()
        .expect("build");
    store.ping().await.expect("ping");
    let r = record(None, TimeDelta::hours(1));
    store.create(&r).await.expect("create");
    for _ in 0..10 {
        assert!(store.load(&r.key).await.expect("load").is_some());
    }
    // The store took its connections out of the pool: the pool is free for the caller.
    let mut c = pool.get().await.expect("the caller can still use its pool");
    let pong: String = redis::cmd("PING").query_async(&mut *c).await.expect("PING");
    assert_eq!(pong, "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reaches_the_server_or_says_why_not() {
    // The defaults: reached and usable at once.
    let store = RedisStore::connect(&common::env("SESSION_TEST_REDIS_URL"))
        .await
        .expect("connect");
    assert_eq!(store.key_prefix(), session_redis::DEFAULT_PREFIX);
    assert!(store
        .load(&SessionKey::generate())
        .await
        .expect("load")
        .is_none());
    // The builder's settings apply.
    let prefix = common::prefix("connect");
    let store = RedisStore::builder()
        .key_prefix(prefix.as_str())
        .connect(&common::env("SESSION_TEST_REDIS_URL"))
        .await
        .expect("connect with the builder");
    assert_eq!(store.key_prefix(), prefix);
    let r = record(None, TimeDelta::hours(1));
    store.create(&r).await.expect("create");
    assert!(store.exists(&r.key).await.expect("exists"));
    // A server that does not answer: Unavailable, before any operation.
    let err = RedisStore::builder()
        .connect_timeout(Duration::from_millis(300))
        .wait_timeout(Duration::from_millis(300))
        .connect("redis://127.0.0.1:1/")
        .await
        .expect_err("nothing listens there");
    assert!(err.is_unavailable(), "{err}");
    // Configuration mistakes: Config, with this crate's ConfigError as the source.
    for (builder, url) in [
        (RedisStore::builder(), "http://not-redis/"),
        (RedisStore::builder().pool_size(0), "redis://127.0.0.1:1/"),
    ] {
        let err = builder.connect(url).await.expect_err("bad configuration");
        let StoreError::Config(config) = &err else {
            panic!("expected Config, got {err:?}")
        };
        let source = std::error::Error::source(config).expect("a source");
        assert!(
            source
                .downcast_ref::<session_redis::ConfigError>()
                .is_some(),
            "{source:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_unavailable_with_source() {
    // A port nothing listens on (the dedicated range's neighbour is not used by anyone).
    let store = RedisStore::builder()
        .url("redis://127.0.0.1:1/")
        .key_prefix(common::prefix("refused"))
        .connect_timeout(Duration::from_millis(300))
        .wait_timeout(Duration::from_millis(300))
        .build()
        .expect("build");
    let started = std::time::Instant::now();
    let err = store
        .load(&SessionKey::generate())
        .await
        .expect_err("nothing listens there");
    assert!(err.is_unavailable(), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A value in the previous format (`s1`, written by session-redis before the fixed-width
/// header), with a user and device metadata, as that version wrote it.
fn v1_value(expires_ms: i64, version: u64, user: &str, data: &str) -> String {
    let ua = "Mozilla|5";
    let ip = "10.0.0.1";
    format!(
        "s1|{expires_ms:017}|-----------------|{version}|1700000000000|{}|{}|{}|{user}{ua}{ip}{data}",
        user.len(),
        ua.len(),
        ip.len()
    )
}

/// Sessions written by the previous value format survive the upgrade: every operation
/// reads them, and the first update rewrites them in the current format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_of_the_previous_format_survive_the_upgrade() {
    let store = common::standalone("upgrade");
    let mut conn = raw().await;
    let exp = Utc::now().timestamp_millis() + 3_600_000;
    let user = "old|user";
    let write_v1 = |key: &SessionKey, version: u64| {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(store.session_key(key))
            .arg(v1_value(exp, version, user, "j1:{\"n\":1}"))
            .arg("PXAT")
            .arg(exp)
            .ignore();
        pipe.zadd(store.user_index_key(user), key.as_str(), 0)
            .ignore();
        pipe
    };

    // load, exists, update (conflict, then success rewriting it as s2).
    let key = SessionKey::generate();
    let _: () = write_v1(&key, 41)
        .query_async(&mut conn)
        .await
        .expect("SET");
    let loaded = store.load(&key).await.expect("load").expect("live");
    assert_eq!(loaded.version, 41);
    assert_eq!(loaded.data, "j1:{\"n\":1}");
    assert_eq!(loaded.user_id.as_deref(), Some(user));
    assert_eq!(loaded.user_agent.as_deref(), Some("Mozilla|5"));
    assert_eq!(loaded.ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(loaded.created_at.timestamp_millis(), 1_700_000_000_000);
    assert_eq!(loaded.expires_at.timestamp_millis(), exp);
    assert!(store.exists(&key).await.expect("exists"));
    let mut stale = loaded.clone();
    stale.version = 40;
    assert!(matches!(
        store.update(&stale).await,
        Err(StoreError::Conflict)
    ));
    let mut next = loaded.clone();
    next.data = "j1:{\"n\":2}".into();
    next.version = store.update(&next).await.expect("update of an s1 value");
    assert_eq!(next.version, 42);
    let raw_value: String = conn.get(store.session_key(&key)).await.expect("GET");
    assert!(
        raw_value.starts_with("s2|"),
        "rewritten in the current format"
    );
    let again = store.load(&key).await.expect("load").expect("live");
    assert_eq!(again.version, 42);
    assert_eq!(again.data, "j1:{\"n\":2}");
    assert_eq!(again.user_id.as_deref(), Some(user));
    assert_eq!(again.created_at.timestamp_millis(), 1_700_000_000_000);
    next.data = "j1:{\"n\":3}".into();
    assert_eq!(store.update(&next).await.expect("update of s2"), 43);

    // touch keeps the format and moves the expiry.
    let key2 = SessionKey::generate();
    let _: () = write_v1(&key2, 7)
        .query_async(&mut conn)
        .await
        .expect("SET");
    let later = Utc::now() + TimeDelta::hours(3);
    assert!(store.touch(&key2, later).await.expect("touch"));
    let touched = store.load(&key2).await.expect("load").expect("live");
    assert_eq!(touched.version, 7);
    assert_eq!(
        touched.expires_at.timestamp_millis(),
        later.timestamp_millis()
    );
    assert!(touched.last_active_at.is_some());

    // compare-and-delete reads the s1 version.
    assert!(matches!(
        store.delete_at_version(&key2, 6).await,
        Err(StoreError::Conflict)
    ));
    store
        .delete_at_version(&key2, 7)
        .await
        .expect("delete_at_version of an s1 value");
    assert!(store.load(&key2).await.expect("load").is_none());

    // The user index lists and revokes s1 values.
    let key3 = SessionKey::generate();
    let _: () = write_v1(&key3, 1)
        .query_async(&mut conn)
        .await
        .expect("SET");
    let listed = store.list_for_user(user).await.expect("list");
    let keys: Vec<_> = listed.iter().map(|r| r.key.clone()).collect();
    assert!(keys.contains(&key) && keys.contains(&key3), "{keys:?}");
    assert_eq!(
        store
            .delete_for_user(user, Some(&key))
            .await
            .expect("revoke"),
        1
    );
    assert!(store.load(&key3).await.expect("load").is_none());
    assert!(store.load(&key).await.expect("load").is_some());

    // create: refused over a live s1 record, replaces an expired one.
    let key4 = SessionKey::generate();
    let _: () = write_v1(&key4, 1)
        .query_async(&mut conn)
        .await
        .expect("SET");
    let mut fresh = record(None, TimeDelta::hours(1));
    fresh.key = key4.clone();
    assert!(matches!(
        store.create(&fresh).await,
        Err(StoreError::KeyExists)
    ));
    let past = Utc::now().timestamp_millis() - 1;
    let _: () = conn
        .set(store.session_key(&key4), v1_value(past, 1, user, "j1:{}"))
        .await
        .expect("SET");
    store
        .create(&fresh)
        .await
        .expect("create over an expired s1 value");
    assert_eq!(
        store
            .load(&key4)
            .await
            .expect("load")
            .expect("live")
            .version,
        fresh.version
    );
    assert!(store.delete(&key4).await.expect("delete"));
    assert!(store.delete(&key).await.expect("delete"));
}

/// `wait_for_replicas` without Sentinel: the test server has no replica, so a write runs
/// but is never acknowledged (`Unavailable`); reads are unaffected; `0` turns it off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_without_enough_replicas_are_not_acknowledged() {
    let mut conn = raw().await;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .expect("INFO");
    assert!(
        info.contains("connected_slaves:0"),
        "the standalone test server has no replica"
    );
    let build = |replicas| {
        RedisStore::builder()
            .url(common::env("SESSION_TEST_REDIS_URL"))
            .key_prefix(common::prefix("acks"))
            .response_timeout(Duration::from_secs(2))
            .wait_for_replicas(replicas, Duration::from_millis(50))
            .build()
            .expect("build")
    };
    let strict = build(1);
    let r = record(None, TimeDelta::hours(1));
    let err = strict
        .create(&r)
        .await
        .expect_err("no replica acknowledged");
    assert!(err.is_unavailable(), "{err:?}");
    // The write ran on the server (it was just not acknowledged); reads still work.
    assert!(strict.load(&r.key).await.expect("load").is_some());
    let err = strict.delete(&r.key).await.expect_err("not acknowledged");
    assert!(err.is_unavailable(), "{err:?}");
    let off = build(0);
    let r = record(None, TimeDelta::hours(1));
    off.create(&r).await.expect("create without waiting");
    assert!(off.delete(&r.key).await.expect("delete"));
    // A timeout not below the response timeout is a configuration mistake.
    let err = RedisStore::builder()
        .url(common::env("SESSION_TEST_REDIS_URL"))
        .response_timeout(Duration::from_millis(100))
        .wait_for_replicas(1, Duration::from_millis(100))
        .build()
        .expect_err("timeout too long");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
}
