//! The per-operation tracing spans: emitted with the right fields, and never carrying a
//! session key or session data (captured at TRACE level, every span event included).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use session_core::chrono::{Duration, Utc};
use session_core::{
    async_trait, auth_hash_fn, CookieAction, JsonCodec, Record, Session, SessionConfig, SessionKey,
    SessionManager, SessionMap, SessionStore, StoreError, StoreResult,
};
use session_memory::MemoryStore;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::Subscriber;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

const SECRET_DATA: &str = "card-4111-1111-1111-1111";
const SECRET_HASH: &str = "stamp-3f9a0c7d2e";

/// Everything the fmt layer wrote.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// The closed spans named `session.store`, with all their fields.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        attrs.record(&mut fields);
        fields
            .0
            .insert("name".into(), attrs.metadata().name().to_owned());
        fields
            .0
            .insert("level".into(), attrs.metadata().level().to_string());
        fields
            .0
            .insert("target".into(), attrs.metadata().target().to_owned());
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }
    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut ext = span.extensions_mut();
        values.record(ext.get_mut::<Fields>().unwrap());
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let ext = span.extensions();
        let fields = ext.get::<Fields>().unwrap();
        if fields.0.get("name").map(String::as_str) == Some("session.store") {
            self.0.lock().unwrap().push(fields.0.clone());
        }
    }
}

impl Spans {
    fn all(&self) -> Vec<BTreeMap<String, String>> {
        self.0.lock().unwrap().clone()
    }
    fn find(&self, operation: &str, outcome: &str) -> Option<BTreeMap<String, String>> {
        self.all().into_iter().find(|f| {
            f.get("operation").map(String::as_str) == Some(operation)
                && f.get("outcome").map(String::as_str) == Some(outcome)
        })
    }
}

fn capture() -> (Buffer, Spans, tracing::subscriber::DefaultGuard) {
    let buffer = Buffer::default();
    let spans = Spans::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::registry().with(spans.clone()).with(
        tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_span_events(FmtSpan::FULL)
            .with_ansi(false)
            .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
    );
    let guard = tracing::subscriber::set_default(subscriber);
    (buffer, spans, guard)
}

/// A store whose `update` always conflicts and whose first `create` collides.
struct Hostile {
    inner: MemoryStore,
    collided: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl SessionStore for Hostile {
    async fn create(&self, r: &Record) -> StoreResult<()> {
        if !self
            .collided
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::KeyExists);
        }
        self.inner.create(r).await
    }
    async fn load(&self, k: &SessionKey) -> StoreResult<Option<Record>> {
        self.inner.load(k).await
    }
    async fn update(&self, _: &Record) -> StoreResult<u64> {
        Err(StoreError::Conflict)
    }
    async fn touch(
        &self,
        k: &SessionKey,
        at: session_core::chrono::DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.inner.touch(k, at).await
    }
    async fn delete(&self, k: &SessionKey) -> StoreResult<bool> {
        self.inner.delete(k).await
    }
}

fn key_of(action: CookieAction) -> SessionKey {
    match action {
        CookieAction::Set { key, .. } => key,
        other => panic!("{other:?}"),
    }
}

/// Runs every kind of store operation through the handle and the manager; returns every
/// session key that existed.
async fn workload() -> Vec<SessionKey> {
    let mut keys = Vec::new();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let stamp = Arc::new(Mutex::new(SECRET_HASH.to_owned()));
    let users = stamp.clone();
    let config = Arc::new(
        SessionConfig::default()
            .with_touch_interval(Some(std::time::Duration::ZERO))
            .with_auth_hash_source(auth_hash_fn(move |_user: String| {
                let current = users.lock().unwrap().clone();
                async move { Ok(Some(current)) }
            })),
    );

    // create
    let s = Session::new(store.clone(), config.clone(), None);
    s.insert("card", SECRET_DATA).await.unwrap();
    let key = key_of(s.save().await.unwrap());
    keys.push(key.clone());
    // load (hit) + update
    let s = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    s.insert("note", format!("{SECRET_DATA}-2")).await.unwrap();
    s.save().await.unwrap();
    // load + touch
    let s = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    let _: Option<String> = s.get("card").await.unwrap();
    s.save().await.unwrap();
    // login with a hash: delete_at_version + create
    let s = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    s.login_with_auth_hash("alice", SECRET_HASH).await.unwrap();
    let key2 = key_of(s.save().await.unwrap());
    keys.push(key2.clone());
    // auth hash mismatch: load + delete
    *stamp.lock().unwrap() = "another".into();
    let s = Session::new(store.clone(), config.clone(), Some(key2.as_str()));
    assert_eq!(s.user_id().await.unwrap(), None);
    // load miss
    let gone = SessionKey::generate();
    keys.push(gone.clone());
    let s = Session::new(store.clone(), config.clone(), Some(gone.as_str()));
    assert_eq!(s.get::<String>("card").await.unwrap(), None);

    // conflicts and a create collision on a hostile store
    let hostile: Arc<dyn SessionStore> = Arc::new(Hostile {
        inner: MemoryStore::new(),
        collided: false.into(),
    });
    let config = Arc::new(SessionConfig::default().with_max_conflict_retries(2));
    let s = Session::new(hostile.clone(), config.clone(), None);
    s.insert("card", SECRET_DATA).await.unwrap();
    let key3 = key_of(s.save().await.unwrap());
    keys.push(key3.clone());
    let s = Session::new(hostile, config, Some(key3.as_str()));
    s.insert("card", "x").await.unwrap();
    assert!(s.save().await.is_err());

    // the manager
    let manager = SessionManager::new(store.clone(), Arc::new(JsonCodec));
    let key4 = SessionKey::generate();
    keys.push(key4.clone());
    let mut map = SessionMap::new();
    map.insert("card".into(), SECRET_DATA.into());
    manager
        .save(&key4, &map, Utc::now() + Duration::hours(1))
        .await
        .unwrap();
    assert!(manager.load(&key4).await.unwrap().is_some());
    keys
}

#[tokio::test]
async fn spans_carry_operation_backend_outcome_and_duration() {
    let (_buffer, spans, _guard) = capture();
    workload().await;

    let create = spans.find("create", "ok").expect("a create span");
    assert_eq!(create["backend"], "memory");
    assert_eq!(create["target"], "session_core::store");
    assert_eq!(create["level"], "DEBUG");
    assert!(create["duration_us"].parse::<u64>().is_ok(), "{create:?}");
    for (op, outcome) in [
        ("load", "ok"),
        ("load", "miss"),
        ("update", "ok"),
        ("touch", "ok"),
        ("delete_at_version", "ok"),
        ("delete", "ok"),
    ] {
        let span = spans
            .find(op, outcome)
            .unwrap_or_else(|| panic!("no {op}/{outcome} span in {:#?}", spans.all()));
        assert_eq!(span["backend"], "memory", "{span:?}");
        assert!(span.contains_key("duration_us"), "{span:?}");
    }
    // A custom store is "custom"; its conflicts and collisions are outcomes.
    let conflict = spans.find("update", "conflict").expect("conflict span");
    assert_eq!(conflict["backend"], "custom");
    assert_eq!(
        spans
            .all()
            .iter()
            .filter(|s| s.get("outcome").map(String::as_str) == Some("conflict"))
            .count(),
        3,
        "first try + 2 retries"
    );
    assert!(spans.find("create", "key_exists").is_some());
    // Every span has all four fields and nothing else.
    for span in spans.all() {
        let names: Vec<&str> = span.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "backend",
                "duration_us",
                "level",
                "name",
                "operation",
                "outcome",
                "target"
            ],
            "{span:?}"
        );
    }
}

#[tokio::test]
async fn no_key_or_data_in_the_trace_output() {
    let (buffer, spans, _guard) = capture();
    let keys = workload().await;
    let text = buffer.text();
    if std::env::var("SHOW_TRACE").is_ok() {
        eprintln!("{text}");
    }
    assert!(text.contains("session.store"), "spans were written: {text}");
    assert!(!spans.all().is_empty());
    for key in &keys {
        assert!(
            !text.contains(key.as_str()),
            "a whole session key in the output:\n{text}"
        );
        // Not even half of one.
        assert!(
            !text.contains(&key.as_str()[..16]),
            "half a session key in the output:\n{text}"
        );
    }
    for secret in [SECRET_DATA, SECRET_HASH, "4111"] {
        assert!(
            !text.contains(secret),
            "session data ({secret}) in the output:\n{text}"
        );
    }
    // The spans themselves carry only fixed words and a number.
    let words = [
        "session.store",
        "session_core::store",
        "DEBUG",
        "memory",
        "custom",
        "create",
        "load",
        "update",
        "touch",
        "delete",
        "delete_at_version",
        "ok",
        "miss",
        "conflict",
        "key_exists",
        "not_found",
    ];
    for span in spans.all() {
        for (field, value) in &span {
            assert!(
                words.contains(&value.as_str())
                    || (field == "duration_us" && value.parse::<u64>().is_ok()),
                "unexpected span value {field}={value}"
            );
        }
    }
}

#[tokio::test]
async fn cleanup_runs_in_a_span() {
    let (_buffer, spans, _guard) = capture();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let task = session_core::spawn_cleanup(store, std::time::Duration::from_millis(1));
    for _ in 0..200 {
        if spans.find("delete_expired", "ok").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    task.shutdown().await;
    let span = spans
        .find("delete_expired", "ok")
        .expect("a delete_expired span");
    assert_eq!(span["backend"], "memory");
}
