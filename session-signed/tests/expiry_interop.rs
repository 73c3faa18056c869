//! Django's `_session_expiry`, through the real `Session` handle with the signed codec:
//! data Django wrote gives the same expiry here, and what `set_expiry` writes here is exactly
//! what Django's own `set_expiry` writes (byte for byte, after re-signing at the same clock).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use session_core::{Codec, Expiry, Record, Session, SessionConfig, SessionKey, SessionStore};
use session_memory::MemoryStore;
use session_signed::{Salt, SignedCodec};

const FIXTURE: &str = include_str!("fixtures/django_vectors.json");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).expect("fixture")
}

fn vector<'a>(f: &'a Value, name: &str) -> &'a Value {
    f["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

fn codec(f: &Value) -> SignedCodec {
    SignedCodec::new(Salt::Django, f["secret_key"].as_str().expect("secret"))
        .and_then(|c| c.with_fallback(f["secret_key_fallbacks"][0].as_str().expect("fb")))
        .expect("codec")
}

fn setup(f: &Value) -> (Arc<MemoryStore>, Arc<SessionConfig>) {
    let age = f["cookie_age"].as_u64().expect("cookie age");
    let config = SessionConfig::default()
        .with_codec(codec(f))
        .with_idle_timeout(Duration::from_secs(age));
    (Arc::new(MemoryStore::new()), Arc::new(config))
}

/// Puts Django's `session_data` into the store as a live row and opens it with the handle.
async fn open(store: &Arc<MemoryStore>, config: &Arc<SessionConfig>, data: &str) -> Session {
    let key = SessionKey::generate();
    let record = Record::new(
        key.clone(),
        data.to_owned(),
        Utc::now() + TimeDelta::days(30),
    );
    store.create(&record).await.expect("create");
    let dyn_store: Arc<dyn SessionStore> = store.clone();
    Session::with_key(dyn_store, config.clone(), Some(key), true)
}

fn date(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("date")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn django_written_expiry_means_the_same_here() {
    let f = fixture();
    let (store, config) = setup(&f);
    let cookie_age = f["cookie_age"].as_i64().expect("age");
    for name in [
        "expiry_int",
        "expiry_zero",
        "expiry_iso",
        "expiry_iso_micros",
        "expiry_iso_past",
        "expiry_timedelta",
    ] {
        let v = vector(&f, name);
        let django = &v["expiry"];
        let session = open(&store, &config, v["data"].as_str().expect("data")).await;
        assert_eq!(
            session.get::<i64>("user_id").await.expect("get"),
            Some(1),
            "{name}"
        );
        let expiry = session.expiry().await.expect("expiry");
        let browser_close = session.expire_at_browser_close().await.expect("bc");
        assert_eq!(
            browser_close,
            django["browser_close"].as_bool().expect("bc"),
            "{name}"
        );
        match &django["raw"] {
            Value::Number(n) if n.as_i64() == Some(0) => {
                assert_eq!(expiry, Expiry::BrowserClose, "{name}");
                // Django: expiry age is SESSION_COOKIE_AGE, the row expires after it.
                assert_eq!(django["expiry_age"].as_i64(), Some(cookie_age));
                let age = session.expiry_age().await.expect("age").num_seconds();
                assert!(
                    (cookie_age - 1..=cookie_age).contains(&age),
                    "{name}: {age}"
                );
            }
            Value::Number(n) => {
                let secs = n.as_u64().expect("secs");
                assert_eq!(expiry, Expiry::Idle(Duration::from_secs(secs)), "{name}");
                assert_eq!(django["expiry_age"].as_u64(), Some(secs));
                let age = session.expiry_age().await.expect("age").num_seconds();
                assert!(
                    (secs as i64 - 1..=secs as i64).contains(&age),
                    "{name}: {age}"
                );
            }
            Value::String(iso) => {
                let at = date(django["expiry_date"].as_str().expect("date"));
                assert_eq!(expiry, Expiry::At(at), "{name}: {iso}");
                assert_eq!(session.expiry_date().await.expect("date"), at, "{name}");
            }
            other => panic!("{name}: unexpected raw expiry {other}"),
        }
    }
}

#[tokio::test]
async fn set_expiry_here_writes_what_django_writes() {
    let f = fixture();
    let clock = f["clock"].as_i64().expect("clock");
    let (store, config) = setup(&f);
    let codec = codec(&f);
    for (name, expiry) in [
        ("expiry_int", Expiry::Idle(Duration::from_secs(3600))),
        ("expiry_zero", Expiry::BrowserClose),
        ("expiry_iso", Expiry::At(date("2030-01-15T12:30:00+00:00"))),
        (
            "expiry_iso_micros",
            Expiry::At(date("2030-01-15T12:30:00.123456+00:00")),
        ),
        // (`expiry_timedelta` is Django's `now + timedelta` stored as an ISO string, the same
        // kind as these; its instant lies in the past for the store, which would not load it.)
    ] {
        let dyn_store: Arc<dyn SessionStore> = store.clone();
        let session = Session::new(dyn_store, config.clone(), None);
        session.insert("user_id", 1).await.expect("insert");
        session.set_expiry(expiry).await.expect("set_expiry");
        session.save().await.expect("save");
        let key = session.key().await.expect("key");
        let record = store.load(&key).await.expect("load").expect("live");
        // Re-sign what we stored at Django's clock: identical to Django's own bytes.
        let map = codec.decode(&record.data).expect("decode ours");
        let resigned = codec.encode_at(&map, clock).expect("encode");
        assert_eq!(
            resigned,
            vector(&f, name)["data"].as_str().expect("data"),
            "{name}"
        );
        // And the row's expiry follows the same rule Django's expire_date does.
        match expiry {
            Expiry::At(at) => assert_eq!(record.expires_at, at, "{name}"),
            Expiry::Idle(d) => {
                let left = (record.expires_at - Utc::now()).num_seconds();
                assert!((d.as_secs() as i64 - 2..=d.as_secs() as i64).contains(&left));
            }
            _ => {
                let left = (record.expires_at - Utc::now()).num_seconds();
                let age = f["cookie_age"].as_i64().expect("age");
                assert!((age - 2..=age).contains(&left), "{name}: {left}");
            }
        }
    }
}

#[tokio::test]
async fn undecodable_rows_give_an_empty_session_and_keep_the_key() {
    let f = fixture();
    let (store, config) = setup(&f);
    for name in [
        "tampered_payload",
        "wrong_salt",
        "wrong_secret",
        "truncated",
        "legacy_pre31_format",
        "bad_json_valid_signature",
        "bad_zlib_valid_signature",
        "non_object_payload",
        "plain_salt_read_as_django",
    ] {
        let v = vector(&f, name);
        let session = open(&store, &config, v["data"].as_str().expect("data")).await;
        let key = session.key().await.expect("key");
        assert_eq!(
            session.get::<i64>("user_id").await.expect("get"),
            None,
            "{name}"
        );
        assert_eq!(session.key().await, Some(key.clone()), "{name}: key kept");
        // The next save overwrites the same row with good data, as Django does.
        session.insert("fixed", true).await.expect("insert");
        session.save().await.expect("save");
        let record = store.load(&key).await.expect("load").expect("row");
        let map = codec(&f).decode(&record.data).expect("now decodes");
        assert_eq!(map.get("fixed"), Some(&Value::Bool(true)), "{name}");
    }
}

#[tokio::test]
async fn fallback_signed_rows_load_and_are_resigned_with_the_current_key() {
    let f = fixture();
    let (store, config) = setup(&f);
    let v = vector(&f, "fallback_key_compressed");
    let session = open(&store, &config, v["data"].as_str().expect("data")).await;
    assert_eq!(
        session.get::<String>("user").await.expect("get").as_deref(),
        Some("caf\u{e9}")
    );
    session.insert("seen", 1).await.expect("insert");
    session.save().await.expect("save");
    let key = session.key().await.expect("key");
    let record = store.load(&key).await.expect("load").expect("row");
    let current_only = SignedCodec::django(f["secret_key"].as_str().expect("secret")).expect("c");
    let map = current_only
        .decode(&record.data)
        .expect("signed with the current key");
    assert_eq!(map["items"].as_array().map(Vec::len), Some(300));
}
