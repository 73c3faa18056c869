//! Shared by the session-actix HTTP tests: a counting store that can be switched into an
//! outage, a real actix-web server on 127.0.0.1:0, and a reqwest client with `Set-Cookie`
//! parsing helpers.

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use session_core::{
    async_trait, Record, SessionKey, SessionStore, StoreError, StoreResult, UserIndex,
};
use session_memory::MemoryStore;

// ---------------------------------------------------------------- the store

/// A store wrapper that counts calls and can be switched into an outage.
#[derive(Default)]
pub struct TestStore {
    pub inner: MemoryStore,
    pub down: AtomicBool,
    pub loads: AtomicUsize,
    pub writes: AtomicUsize,
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

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

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

pub fn store() -> Arc<TestStore> {
    Arc::new(TestStore::default())
}

/// The store as the middleware takes it.
pub fn shared(store: &Arc<TestStore>) -> Arc<dyn SessionStore> {
    store.clone()
}

// ---------------------------------------------------------------- the server

/// Starts an actix-web server on 127.0.0.1:0 (two workers) with the routes `routes`
/// configures, and returns its base URL. The server lives as long as the test's runtime.
pub async fn serve<F>(routes: F) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let server = HttpServer::new(move || App::new().configure(routes.clone()))
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

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
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

    pub fn removes_cookie(&self) -> bool {
        self.set_cookie()
            .is_some_and(|sc| sc.starts_with("id=;") && sc.contains("Max-Age=0"))
    }

    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    pub fn vary(&self) -> Vec<String> {
        self.header_values("vary")
    }

    pub fn varies_on_cookie(&self) -> bool {
        self.vary().iter().any(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("cookie"))
        })
    }

    pub fn cache_control(&self) -> Vec<String> {
        self.header_values("cache-control")
    }
}

pub fn cookie_value(set_cookie: &str) -> String {
    let first = set_cookie.split(';').next().unwrap();
    first.split_once('=').unwrap().1.to_owned()
}

pub fn attrs(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|s| s.trim().to_owned())
        .collect()
}

pub fn has_attr(set_cookie: &str, attr: &str) -> bool {
    attrs(set_cookie)
        .iter()
        .any(|a| a.eq_ignore_ascii_case(attr))
}

pub fn attr_value(set_cookie: &str, name: &str) -> Option<String> {
    attrs(set_cookie).iter().find_map(|a| {
        let (k, v) = a.split_once('=')?;
        k.eq_ignore_ascii_case(name).then(|| v.to_owned())
    })
}

/// Sends a request with an optional raw `Cookie` header and extra headers.
pub async fn send(
    method: reqwest::Method,
    url: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    // Redirects are not followed: the tests look at the 303 itself.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.request(method, url).timeout(Duration::from_secs(20));
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

/// `GET url` with an optional raw `Cookie` header.
pub async fn fetch(url: &str, cookie: Option<&str>) -> Reply {
    send(reqwest::Method::GET, url, cookie, &[]).await
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
