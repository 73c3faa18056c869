//! End to end with the REAL Django (feature `django-tests`): Django's own db `SessionStore`
//! and this library's `InteropStore` + `SignedCodec` share one `django_session` table, in a
//! SQLite file, in PostgreSQL (`SESSION_TEST_POSTGRES_URL`, a fresh schema per run) and in
//! MySQL/MariaDB (`SESSION_TEST_MYSQL_URL`, a fresh database per run; Django talks to it
//! through PyMySQL).
//!
//! - Django writes sessions (simple, unicode, nested, compressed, each `_session_expiry`
//!   kind, signed with a fallback key, tampered, wrong salt); Rust reads each with equal data
//!   and expiry; tampered and wrong-salt rows are empty on both sides (key kept here).
//! - Rust updates Django's sessions and creates its own; Django reads them back equal, with
//!   the same expiry; Django then changes one and Rust sees the change.
//! - A row Django deletes makes the Rust update fail with `NotFound` (no resurrection).
//!
//! Needs `SESSION_TEST_DJANGO_PYTHON` (from `scripts/django-venv.sh`),
//! `SESSION_TEST_POSTGRES_URL` and `SESSION_TEST_MYSQL_URL`; panics if one is missing.
#![cfg(feature = "django-tests")]

use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use session_core::{Error, Expiry, Session, SessionConfig, SessionKey, SessionStore};
use session_signed::SignedCodec;
use session_sql::{sqlx, InteropLayout, InteropStore};

const SECRET: &str = "django-insecure-interop-secret-key";
const FALLBACK: &str = "interop-old-secret-key";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the django-tests feature runs against the real Django and the \
             test PostgreSQL (SESSION_TEST_DJANGO_PYTHON=$(scripts/django-venv.sh); \
             source the services' env file)"
        )
    })
}

fn django(db_url: &str, args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/django_side.py");
    let out = Command::new(env("SESSION_TEST_DJANGO_PYTHON"))
        .arg(script)
        .arg(args[0])
        .arg(db_url)
        .args(&args[1..])
        .env("DJANGO_SECRET_KEY", SECRET)
        .env("DJANGO_SECRET_KEY_FALLBACKS", FALLBACK)
        .output()
        .expect("run django_side.py");
    assert!(
        out.status.success(),
        "django_side.py {} failed: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).expect("JSON from django_side.py")
    }
}

fn config() -> Arc<SessionConfig> {
    let codec = SignedCodec::django(SECRET)
        .and_then(|c| c.with_fallback(FALLBACK))
        .expect("codec");
    Arc::new(
        SessionConfig::default()
            .with_codec(codec)
            .with_touch_interval(None),
    )
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).expect("json")
}

fn date(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("date")
        .with_timezone(&Utc)
}

fn expiry_of(raw: &Value) -> Expiry {
    match raw {
        Value::Null => Expiry::Default,
        Value::Number(n) if n.as_u64() == Some(0) => Expiry::BrowserClose,
        Value::Number(n) => Expiry::Idle(Duration::from_secs(n.as_u64().expect("secs"))),
        Value::String(s) => Expiry::At(date(s)),
        other => panic!("unexpected _session_expiry {other}"),
    }
}

fn tmp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "session-signed-e2e-{}-{}",
        std::process::id(),
        &SessionKey::generate().as_str()[..8]
    ));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

/// The whole scenario against one database. `django_url` is what django_side.py takes.
async fn scenario(store: InteropStore, django_url: &str, dir: &std::path::Path) {
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let config = config();
    let out = dir.join("written.json");
    django(django_url, &["write", out.to_str().expect("path")]);
    let written: Value = serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("json");
    let written = written.as_object().expect("object");
    assert_eq!(written.len(), 11);

    // 1. Rust reads every session Django wrote: equal data, equal expiry.
    for (name, row) in written {
        let key = row["key"].as_str().expect("key");
        let session = Session::new(store.clone(), config.clone(), Some(key));
        let ours = Value::Object(session.data().await.expect("load"));
        assert_eq!(
            text(&ours),
            text(&row["data"]),
            "{name}: same data on both sides"
        );
        assert_eq!(
            session.key().await.as_ref().map(SessionKey::as_str),
            Some(key),
            "{name}: key kept"
        );
        assert_eq!(
            session.expiry().await.expect("expiry"),
            expiry_of(&row["expiry_raw"]),
            "{name}"
        );
        assert_eq!(
            session.expire_at_browser_close().await.expect("bc"),
            row["browser_close"].as_bool().expect("bool"),
            "{name}"
        );
        let record = store
            .load(&SessionKey::parse(key).expect("django key"))
            .await
            .expect("load")
            .expect("live row");
        assert_eq!(
            record.expires_at,
            date(row["expire_date"].as_str().expect("date")),
            "{name}"
        );
        match name.as_str() {
            "tampered" | "wrong_salt" => assert_eq!(ours, json!({}), "{name}: empty here too"),
            "fallback_key" => assert_eq!(ours["via"], "fallback"),
            "large" => assert!(row["session_data"].as_str().expect("data").starts_with('.')),
            _ => {}
        }
    }

    // 2. Rust updates Django's sessions; Django reads them back equal.
    let simple = written["simple"]["key"].as_str().expect("key");
    let s = Session::new(store.clone(), config.clone(), Some(simple));
    s.insert("rust", json!({"saw": "caf\u{e9} \u{1f980}", "n": 1.5e-7}))
        .await
        .expect("insert");
    s.remove_value("theme").await.expect("remove");
    s.save().await.expect("save");
    let expected = Value::Object(s.data().await.expect("data"));
    let seen = django(django_url, &["read", simple]);
    assert_eq!(
        text(&seen[simple]["data"]),
        text(&expected),
        "Django sees Rust's update"
    );

    // The fallback-signed session is re-signed with the current key on save.
    let fb = written["fallback_key"]["key"].as_str().expect("key");
    let s = Session::new(store.clone(), config.clone(), Some(fb));
    s.insert("resigned", true).await.expect("insert");
    s.save().await.expect("save");
    let seen = django(django_url, &["read", fb]);
    assert_eq!(seen[fb]["data"]["resigned"], true);
    assert_eq!(seen[fb]["data"]["via"], "fallback");

    // A tampered row saved here gets good data under the same key, and Django reads it.
    let tampered = written["tampered"]["key"].as_str().expect("key");
    let s = Session::new(store.clone(), config.clone(), Some(tampered));
    s.insert("fixed", 1).await.expect("insert");
    s.save().await.expect("save");
    let seen = django(django_url, &["read", tampered]);
    assert_eq!(seen[tampered]["data"], json!({"fixed": 1}));

    // 3. Rust creates sessions of every kind; Django reads each equal, same expiry.
    let absolute = Utc::now() + TimeDelta::days(400);
    let absolute =
        absolute - TimeDelta::nanoseconds(i64::from(absolute.timestamp_subsec_nanos() % 1000));
    let cases: Vec<(Value, Expiry)> = vec![
        (
            json!({"user_id": 7, "name": "Zo\u{eb}", "emoji": "\u{1f389}", "ctl": "\t\u{7f}\"\\"}),
            Expiry::Default,
        ),
        (
            json!({"blob": "lorem ipsum ".repeat(400), "items": (0..300).collect::<Vec<_>>()}),
            Expiry::Default,
        ),
        (
            json!({"nested": {"a": [1, {"b": null}], "f": [0.1, 1e16, -0.0]}}),
            Expiry::Default,
        ),
        (
            json!({"user_id": 1}),
            Expiry::Idle(Duration::from_secs(3600)),
        ),
        (json!({"user_id": 2}), Expiry::BrowserClose),
        (json!({"user_id": 3}), Expiry::At(absolute)),
    ];
    let mut keys = Vec::new();
    for (data, expiry) in &cases {
        let s = Session::new(store.clone(), config.clone(), None);
        for (k, v) in data.as_object().expect("object") {
            s.insert_value(k, v.clone()).await.expect("insert");
        }
        s.set_expiry(*expiry).await.expect("set_expiry");
        s.save().await.expect("save");
        let key = s.key().await.expect("key");
        let record = store.load(&key).await.expect("load").expect("row");
        keys.push((
            key,
            Value::Object(s.data().await.expect("data")),
            *expiry,
            record.expires_at,
        ));
    }
    let key_strs: Vec<&str> = keys.iter().map(|(k, ..)| k.as_str()).collect();
    let mut args = vec!["read"];
    args.extend(key_strs.iter().copied());
    let seen = django(django_url, &args);
    for (key, data, expiry, expires_at) in &keys {
        let theirs = &seen[key.as_str()];
        assert_eq!(theirs["exists"], true, "Django finds the row Rust created");
        assert_eq!(text(&theirs["data"]), text(data));
        assert_eq!(expiry_of(&theirs["expiry_raw"]), *expiry);
        assert_eq!(theirs["browser_close"], *expiry == Expiry::BrowserClose);
        assert_eq!(
            date(theirs["row_expire_date"].as_str().expect("date")),
            *expires_at
        );
    }

    // 4. Django changes a Rust-written session; Rust sees the change.
    let (key0, ..) = &keys[0];
    django(
        django_url,
        &[
            "update",
            key0.as_str(),
            r#"{"django": "was here", "user_id": null}"#,
        ],
    );
    let s = Session::new(store.clone(), config.clone(), Some(key0.as_str()));
    assert_eq!(
        s.get::<String>("django").await.expect("get").as_deref(),
        Some("was here")
    );
    assert_eq!(s.get::<i64>("user_id").await.expect("get"), None);

    // 5. A concurrent change from Django is not lost: the Rust save re-applies on top.
    let (key1, ..) = &keys[1];
    let s = Session::new(store.clone(), config.clone(), Some(key1.as_str()));
    s.load().await.expect("load");
    django(
        django_url,
        &["update", key1.as_str(), r#"{"from_django": 1}"#],
    );
    s.insert("from_rust", 2).await.expect("insert");
    s.save()
        .await
        .expect("save after a concurrent Django write");
    let seen = django(django_url, &["read", key1.as_str()]);
    assert_eq!(seen[key1.as_str()]["data"]["from_django"], 1);
    assert_eq!(seen[key1.as_str()]["data"]["from_rust"], 2);

    // 6. Django deletes a session while Rust holds it: the Rust update fails, nothing returns.
    let (key2, ..) = &keys[2];
    let s = Session::new(store.clone(), config.clone(), Some(key2.as_str()));
    s.load().await.expect("load");
    django(django_url, &["delete", key2.as_str()]);
    s.insert("late", true).await.expect("insert");
    let err = s.save().await.expect_err("row deleted by Django");
    assert!(matches!(err, Error::Interrupted), "{err:?}");
    assert!(
        store.load(key2).await.expect("load").is_none(),
        "not resurrected"
    );
    let seen = django(django_url, &["read", key2.as_str()]);
    assert_eq!(seen[key2.as_str()]["exists"], false);

    // 7. A row Rust writes with the wrong salt is empty for Django too.
    let plain = SignedCodec::plain(SECRET).expect("codec");
    let wrong = session_core::Codec::encode(
        &plain,
        &json!({"user_id": 1}).as_object().cloned().expect("map"),
    )
    .expect("encode");
    let key = SessionKey::generate();
    store
        .create(&session_core::Record::new(
            key.clone(),
            wrong,
            Utc::now() + TimeDelta::hours(1),
        ))
        .await
        .expect("create");
    let seen = django(django_url, &["read", key.as_str()]);
    assert_eq!(seen[key.as_str()]["data"], json!({}));
    let s = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    assert_eq!(Value::Object(s.data().await.expect("data")), json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_and_rust_share_a_sqlite_table() {
    let dir = tmp_dir();
    let db = dir.join("django.sqlite3");
    let url = format!("sqlite://{}", db.display());
    django(&url, &["migrate"]);
    let store = InteropStore::connect(&url, InteropLayout::Django)
        .await
        .expect("connect");
    scenario(store, &url, &dir).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_and_rust_share_a_postgres_table() {
    let base = env("SESSION_TEST_POSTGRES_URL");
    let schema = format!("django_e2e_{}", &SessionKey::generate().as_str()[..10]);
    let sep = if base.contains('?') { '&' } else { '?' };
    let django_url = format!("{base}{sep}schema={schema}");
    django(&django_url, &["migrate"]);
    let options = sqlx::postgres::PgConnectOptions::from_str(&base)
        .expect("postgres URL")
        .options([("search_path", schema.as_str())]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("connect to the test PostgreSQL");
    let store = InteropStore::postgres(pool.clone(), InteropLayout::Django);
    let dir = tmp_dir();
    scenario(store, &django_url, &dir).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await
    .expect("drop the test schema");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_and_rust_share_a_mysql_table() {
    let base = env("SESSION_TEST_MYSQL_URL");
    let name = format!("django_e2e_{}", &SessionKey::generate().as_str()[..10]);
    let sep = if base.contains('?') { '&' } else { '?' };
    let django_url = format!("{base}{sep}database={name}");
    django(&django_url, &["migrate"]);
    let (server, _db) = base
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .expect("mysql URL with a database path");
    let rust_url = format!("{server}/{name}");
    let store = InteropStore::connect(&rust_url, InteropLayout::Django)
        .await
        .expect("connect to the test MySQL");
    let dir = tmp_dir();
    scenario(store, &django_url, &dir).await;
    let pool = sqlx::MySqlPool::connect(&rust_url).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{name}`")))
        .execute(&pool)
        .await
        .expect("drop the test database");
    std::fs::remove_dir_all(&dir).ok();
}
