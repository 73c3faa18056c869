//! What the HTTP tests of `session-tower` and `session-actix` share, written once: a
//! store that counts its calls and can be switched into an outage, a user table that is
//! an [`AuthHashSource`], the gate a slow handler waits at, and a reqwest client whose
//! [`Reply`] reads `Set-Cookie`, `Vary`, `Cache-Control` and `Location`, and a server on
//! 127.0.0.1:0 for each framework (`serve` with feature `axum`, `serve_actix` with
//! feature `actix`).
//!
//! Not published (`publish = false`); a dev-dependency only.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use session_core::{
    async_trait, AuthHashSource, Record, SessionKey, SessionStore, StoreError, StoreResult,
    UserIndex,
};
use session_memory::MemoryStore;
use tokio::sync::Notify;

// ---------------------------------------------------------------- the store

/// A [`MemoryStore`] that counts calls and can be switched into an outage (every call
/// then fails with an "unavailable" store error).
#[derive(Default)]
pub struct TestStore {
    /// The store behind.
    pub inner: MemoryStore,
    /// Whether every call fails as an outage.
    pub down: AtomicBool,
    /// `load` calls.
    pub loads: AtomicUsize,
    /// `create`, `update`, `touch` and `delete_at_version` calls.
    pub writes: AtomicUsize,
    /// `delete` calls.
    pub deletes: AtomicUsize,
    /// Every call, of any kind.
    pub calls: AtomicUsize,
}

impl TestStore {
    fn check(&self) -> StoreResult<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::unavailable(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "test outage",
            )))
        } else {
            Ok(())
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// `load` calls so far.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    /// Writes so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// (loads, writes, deletes) so far.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.loads(),
            self.writes(),
            self.deletes.load(Ordering::SeqCst),
        )
    }

    /// Starts or ends the outage.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The stored record of `key`, read past the counters.
    pub async fn record(&self, key: &str) -> Option<Record> {
        self.inner
            .load(&SessionKey::parse(key).unwrap())
            .await
            .unwrap()
    }
}

#[async_trait]
impl SessionStore for TestStore {
    async fn create(&self, r: &Record) -> StoreResult<()> {
        self.check()?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.create(r).await
    }
    async fn load(&self, k: &SessionKey) -> StoreResult<Option<Record>> {
        self.check()?;
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(k).await
    }
    async fn update(&self, r: &Record) -> StoreResult<u64> {
        self.check()?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.update(r).await
    }
    async fn touch(&self, k: &SessionKey, at: DateTime<Utc>) -> StoreResult<bool> {
        self.check()?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.touch(k, at).await
    }
    async fn delete(&self, k: &SessionKey) -> StoreResult<bool> {
        self.check()?;
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(k).await
    }
    async fn delete_at_version(&self, k: &SessionKey, version: u64) -> StoreResult<()> {
        self.check()?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_at_version(k, version).await
    }
    async fn exists(&self, k: &SessionKey) -> StoreResult<bool> {
        self.check()?;
        self.inner.exists(k).await
    }
    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

#[async_trait]
impl UserIndex for TestStore {
    async fn list_for_user(&self, u: &str) -> StoreResult<Vec<Record>> {
        self.check()?;
        self.inner.list_for_user(u).await
    }
    async fn delete_for_user(&self, u: &str, e: Option<&SessionKey>) -> StoreResult<u64> {
        self.check()?;
        self.inner.delete_for_user(u, e).await
    }
}

/// A fresh [`TestStore`].
pub fn store() -> Arc<TestStore> {
    Arc::new(TestStore::default())
}

/// The store as a layer or middleware takes it.
pub fn shared(store: &Arc<TestStore>) -> Arc<dyn SessionStore> {
    store.clone()
}

// ---------------------------------------------------------------- the user table

/// The application's user table: a stamp per user that changes with the password.
#[derive(Default)]
pub struct Users {
    stamps: Mutex<Vec<(String, String)>>,
    /// How often [`Source`] was asked.
    pub asked: AtomicUsize,
    /// Whether the table is down ([`Source`] fails as an outage).
    pub down: AtomicBool,
}

impl Users {
    /// The current stamp of `user`.
    pub fn stamp(&self, user: &str) -> Option<String> {
        let stamps = self.stamps.lock().unwrap();
        stamps
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, s)| s.clone())
    }

    /// Sets the stamp of `user` (a password change).
    pub fn set(&self, user: &str, stamp: &str) {
        let mut stamps = self.stamps.lock().unwrap();
        stamps.retain(|(u, _)| u != user);
        stamps.push((user.to_owned(), stamp.to_owned()));
    }

    /// A table with alice (`v1`) and bob (`b1`).
    pub fn alice_and_bob() -> Arc<Self> {
        let users = Arc::new(Self::default());
        users.set("alice", "v1");
        users.set("bob", "b1");
        users
    }
}

/// [`Users`] as the session's auth hash source.
pub struct Source(pub Arc<Users>);

#[async_trait]
impl AuthHashSource for Source {
    async fn current_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
        self.0.asked.fetch_add(1, Ordering::SeqCst);
        if self.0.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other(
                "users db down",
            )));
        }
        Ok(self.0.stamp(user_id))
    }
}

// ---------------------------------------------------------------- the gate

/// The rendezvous between a slow handler and the test.
#[derive(Default)]
pub struct Gate {
    /// Notified by the slow handler once it has loaded the session.
    pub arrived: Notify,
    /// Notified by the test when the slow handler may go on.
    pub go: Notify,
}

impl Gate {
    /// Called by the slow handler: says it arrived, waits for the test (bounded, so that
    /// a broken test fails instead of hanging).
    pub async fn pass(&self) {
        self.arrived.notify_one();
        tokio::time::timeout(Duration::from_secs(10), self.go.notified())
            .await
            .expect("the test never opened the gate");
    }
}

/// Sends `POST url` (cookie `id=key`) whose handler stops at the gate, and returns once it
/// stands there.
pub async fn start_slow(gate: &Gate, url: String, key: &str) -> tokio::task::JoinHandle<Reply> {
    let key = key.to_owned();
    let task = tokio::spawn(async move { post_(&url, Some(&key)).await });
    tokio::time::timeout(Duration::from_secs(10), gate.arrived.notified())
        .await
        .expect("the slow request never reached the gate");
    task
}

/// Opens the gate and waits for the slow request's reply.
pub async fn finish_slow(gate: &Gate, task: tokio::task::JoinHandle<Reply>) -> Reply {
    gate.go.notify_one();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the slow request did not finish")
        .unwrap()
}

// ---------------------------------------------------------------- the servers

/// Serves an axum app on 127.0.0.1:0 (with `ConnectInfo<SocketAddr>`, for the client
/// IP) and returns its base URL. The server lives as long as the test's runtime.
#[cfg(feature = "axum")]
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// Starts an actix-web server on 127.0.0.1:0 (two workers) with the routes `routes`
/// configures, and returns its base URL. The server lives as long as the test's runtime.
#[cfg(feature = "actix")]
pub async fn serve_actix<F>(routes: F) -> String
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
{
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
            .workers(2)
            .disable_signals()
            .shutdown_timeout(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    format!("http://{addr}")
}

// ---------------------------------------------------------------- the client

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, as text.
    pub body: String,
}

impl Reply {
    /// The `Set-Cookie` lines for cookie `name`.
    pub fn set_cookies(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .filter(|v| v.starts_with(&format!("{name}=")))
            .collect()
    }

    /// The single `Set-Cookie: id=...`, if any.
    pub fn set_cookie(&self) -> Option<String> {
        let all = self.set_cookies("id");
        assert!(all.len() <= 1, "more than one Set-Cookie: {all:?}");
        all.into_iter().next()
    }

    /// The key the response sets (panics without a `Set-Cookie`, or for a removal).
    pub fn key(&self) -> String {
        let value = cookie_value(&self.set_cookie().expect("a Set-Cookie"));
        assert!(SessionKey::parse(&value).is_ok(), "not a key: {value:?}");
        value
    }

    /// The `id=<key>` pair to send back.
    pub fn cookie(&self) -> String {
        format!("id={}", self.key())
    }

    /// Whether the response removes the `id` cookie.
    pub fn removes_cookie(&self) -> bool {
        self.set_cookie()
            .is_some_and(|sc| sc.starts_with("id=;") && sc.contains("Max-Age=0"))
    }

    /// Every value of header `name`.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `Vary` values.
    pub fn vary(&self) -> Vec<String> {
        self.header_values("vary")
    }

    /// Whether `Vary` names `Cookie`.
    pub fn varies_on_cookie(&self) -> bool {
        self.vary().iter().any(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("cookie"))
        })
    }

    /// The `Cache-Control` values.
    pub fn cache_control(&self) -> Vec<String> {
        self.header_values("cache-control")
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").map(|v| v.to_str().unwrap())
    }
}

/// The value of a `Set-Cookie` (or `name=value`) line.
pub fn cookie_value(set_cookie: &str) -> String {
    let first = set_cookie.split(';').next().unwrap();
    first.split_once('=').unwrap().1.to_owned()
}

/// The attributes of a `Set-Cookie` line.
pub fn attrs(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|s| s.trim().to_owned())
        .collect()
}

/// Whether a `Set-Cookie` line has attribute `attr` (case-insensitive).
pub fn has_attr(set_cookie: &str, attr: &str) -> bool {
    attrs(set_cookie)
        .iter()
        .any(|a| a.eq_ignore_ascii_case(attr))
}

/// The value of attribute `name` of a `Set-Cookie` line.
pub fn attr_value(set_cookie: &str, name: &str) -> Option<String> {
    attrs(set_cookie).iter().find_map(|a| {
        let (k, v) = a.split_once('=')?;
        k.eq_ignore_ascii_case(name).then(|| v.to_owned())
    })
}

/// The session key in a raw key, an `id=<key>` pair or a `Set-Cookie` line.
pub fn key_of(value: &str) -> SessionKey {
    let value = value.split(';').next().unwrap();
    let value = value.strip_prefix("id=").unwrap_or(value);
    SessionKey::parse(value).unwrap()
}

/// Sends a request with an optional raw `Cookie` header and extra headers. Redirects are
/// not followed: the tests look at the 303 itself.
pub async fn send(
    method: reqwest::Method,
    url: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    send_body(method, url, cookie, extra, String::new()).await
}

/// [`send`] with a request body.
pub async fn send_body(
    method: reqwest::Method,
    url: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
    body: String,
) -> Reply {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client
        .request(method, url)
        .timeout(Duration::from_secs(20))
        .body(body);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    Reply {
        status: res.status(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

/// `POST url` with an `application/x-www-form-urlencoded` body (already encoded) and an
/// optional raw `Cookie` header.
pub async fn post_form(url: &str, cookie: Option<&str>, form: &str) -> Reply {
    let extra = [("content-type", "application/x-www-form-urlencoded")];
    send_body(reqwest::Method::POST, url, cookie, &extra, form.to_owned()).await
}

/// `GET url` with an optional raw `Cookie` header.
pub async fn fetch(url: &str, cookie: Option<&str>) -> Reply {
    send(reqwest::Method::GET, url, cookie, &[]).await
}

/// `GET url` with an optional raw `Cookie` header and extra headers.
pub async fn get_with(url: &str, cookie: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    send(reqwest::Method::GET, url, cookie, extra).await
}

/// `GET url` with the session cookie `id=key`.
pub async fn get_(url: &str, key: Option<&str>) -> Reply {
    let cookie = key.map(|k| format!("id={k}"));
    send(reqwest::Method::GET, url, cookie.as_deref(), &[]).await
}

/// `POST url` with the session cookie `id=key`.
pub async fn post_(url: &str, key: Option<&str>) -> Reply {
    let cookie = key.map(|k| format!("id={k}"));
    send(reqwest::Method::POST, url, cookie.as_deref(), &[]).await
}

/// Asserts a 400 "session interrupted" with no cookie.
pub fn assert_interrupted(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(reply.body, session_http::SESSION_INTERRUPTED);
    assert_eq!(
        reply.set_cookie(),
        None,
        "no cookie with the 400: {reply:?}"
    );
}
