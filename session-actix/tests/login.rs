//! Login required and the session auth hash through actix-web on a 127.0.0.1 socket:
//! the `AuthUser` extractor (401, or a redirect to the configured login URL with `next=`)
//! and a password change logging out the user's other sessions. Mirrors session-tower's
//! tests/login.rs.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::web;
use reqwest::StatusCode;
use session_actix::{
    ActixSession, AuthUser, OptionalAuthUser, SessionError, SessionMiddleware, LOGIN_REQUIRED,
};
use session_core::{
    async_trait, AuthHashSource, SessionConfig, SessionKey, SessionStore, StoreError, StoreResult,
};
use support::{cookie_value, fetch, TestStore};

/// The application's user table: a stamp per user that changes with the password.
#[derive(Default)]
struct Users {
    stamps: Mutex<Vec<(String, String)>>,
    asked: AtomicUsize,
    down: AtomicBool,
}

impl Users {
    fn stamp(&self, user: &str) -> Option<String> {
        let stamps = self.stamps.lock().unwrap();
        stamps
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, s)| s.clone())
    }
    fn set(&self, user: &str, stamp: &str) {
        let mut stamps = self.stamps.lock().unwrap();
        stamps.retain(|(u, _)| u != user);
        stamps.push((user.to_owned(), stamp.to_owned()));
    }
}

struct Source(Arc<Users>);

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

// ---------------------------------------------------------------- handlers

async fn login(
    users: web::Data<Arc<Users>>,
    user: web::Path<String>,
    session: ActixSession,
) -> Result<&'static str, SessionError> {
    // (the password was checked here)
    let user = user.into_inner();
    let stamp = users.stamp(&user).unwrap_or_default();
    session.login_with_auth_hash(user, stamp).await?;
    Ok("welcome")
}

async fn plain_login(
    user: web::Path<String>,
    session: ActixSession,
) -> Result<&'static str, SessionError> {
    session.login(user.into_inner()).await?;
    Ok("welcome")
}

async fn account(user: AuthUser) -> String {
    format!("hello {}", user.user_id())
}

async fn maybe(OptionalAuthUser(user): OptionalAuthUser) -> String {
    user.map_or_else(|| "anonymous".to_owned(), AuthUser::into_user_id)
}

/// The user changes their own password: the stamp moves, this session keeps up.
async fn change_password(
    users: web::Data<Arc<Users>>,
    new: web::Path<String>,
    user: AuthUser,
) -> Result<&'static str, SessionError> {
    let new = new.into_inner();
    users.set(user.user_id(), &new);
    user.session().update_auth_hash(new).await?;
    Ok("password changed")
}

struct App {
    url: String,
    store: Arc<TestStore>,
    users: Arc<Users>,
}

async fn app(login_url: Option<&str>) -> App {
    let store = support::store();
    let users = Arc::new(Users::default());
    users.set("alice", "v1");
    users.set("bob", "b1");
    let mut config = SessionConfig::default()
        .with_auth_hash_source(Source(users.clone()))
        .with_touch_interval(None);
    if let Some(url) = login_url {
        config = config.with_login_url(url);
    }
    let mw = SessionMiddleware::builder_from_shared_store(support::shared(&store))
        .with_config(config)
        .build()
        .unwrap();
    let data = web::Data::new(users.clone());
    let url = support::serve(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(data.clone()).service(
            web::scope("")
                .wrap(mw.clone())
                .route("/login/{user}", web::get().to(login))
                .route("/plain-login/{user}", web::get().to(plain_login))
                .route("/account", web::get().to(account))
                .route("/maybe", web::get().to(maybe))
                .route("/password/{new}", web::get().to(change_password))
                .service(web::scope("/shop").route("/orders", web::get().to(account))),
        );
    })
    .await;
    App { url, store, users }
}

fn cookie(r: &support::Reply) -> String {
    format!("id={}", r.key())
}

fn location(r: &support::Reply) -> Option<String> {
    r.header_values("location").into_iter().next()
}

fn key_of(cookie: &str) -> SessionKey {
    SessionKey::parse(&cookie_value(cookie)).unwrap()
}

// ---------------------------------------------------------------- tests

#[actix_web::test]
async fn login_required_answers_401_without_a_login_url() {
    let app = app(None).await;
    let r = fetch(&format!("{}/account", app.url), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, LOGIN_REQUIRED);
    assert_eq!(location(&r), None);
    assert_eq!(r.set_cookie(), None);
    assert_eq!(app.store.calls(), 0, "no cookie: no store call");

    // A cookie naming no session: 401, and the stale cookie is removed.
    let stale = format!("id={}", SessionKey::generate().as_str());
    let r = fetch(&format!("{}/account", app.url), Some(&stale)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.removes_cookie(), "{:?}", r.set_cookie());
}

#[actix_web::test]
async fn login_required_redirects_to_the_login_url_with_next() {
    let app = app(Some("/accounts/login/")).await;
    let r = fetch(&format!("{}/account?tab=2&x=/y", app.url), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r).as_deref(),
        Some("/accounts/login/?next=/account%3Ftab%3D2%26x%3D/y")
    );
    assert_eq!(r.set_cookie(), None);

    // Inside a scope, `next` is the whole path, prefix included.
    let r = fetch(&format!("{}/shop/orders", app.url), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r).as_deref(),
        Some("/accounts/login/?next=/shop/orders")
    );
}

#[actix_web::test]
async fn a_logged_in_user_passes_and_the_optional_extractor_never_rejects() {
    let app = app(Some("/accounts/login/")).await;
    let r = fetch(&format!("{}/maybe", app.url), None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "anonymous"));

    let r = fetch(&format!("{}/login/alice", app.url), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let c = cookie(&r);
    let r = fetch(&format!("{}/account", app.url), Some(&c)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
    assert_eq!(r.set_cookie(), None, "a read sets no cookie");
    let r = fetch(&format!("{}/shop/orders", app.url), Some(&c)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
    let r = fetch(&format!("{}/maybe", app.url), Some(&c)).await;
    assert_eq!(r.body, "alice");
}

#[actix_web::test]
async fn a_password_change_logs_out_the_other_devices_but_not_this_one() {
    let app = app(None).await;
    let laptop = cookie(&fetch(&format!("{}/login/alice", app.url), None).await);
    let phone = cookie(&fetch(&format!("{}/login/alice", app.url), None).await);
    let bob = cookie(&fetch(&format!("{}/login/bob", app.url), None).await);
    for c in [&laptop, &phone, &bob] {
        let r = fetch(&format!("{}/account", app.url), Some(c)).await;
        assert_eq!(r.status, StatusCode::OK);
    }

    // The laptop changes the password.
    let r = fetch(&format!("{}/password/v2", app.url), Some(&laptop)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "password changed")
    );
    let laptop_new = cookie(&r);
    assert_ne!(laptop_new, laptop, "the key is rotated");
    assert!(!app.store.inner.exists(&key_of(&laptop)).await.unwrap());

    // The laptop stays logged in.
    let r = fetch(&format!("{}/account", app.url), Some(&laptop_new)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));

    // The phone is logged out: 401, its cookie removed, its record gone ...
    let r = fetch(&format!("{}/account", app.url), Some(&phone)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.removes_cookie(), "{:?}", r.set_cookie());
    assert!(!app.store.inner.exists(&key_of(&phone)).await.unwrap());
    // ... for good.
    let r = fetch(&format!("{}/maybe", app.url), Some(&phone)).await;
    assert_eq!(r.body, "anonymous");

    // Another user's session is untouched.
    let r = fetch(&format!("{}/account", app.url), Some(&bob)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello bob"));
}

#[actix_web::test]
async fn a_password_change_elsewhere_redirects_the_stale_device_to_login() {
    let app = app(Some("/login")).await;
    let phone = cookie(&fetch(&format!("{}/login/alice", app.url), None).await);
    app.users.set("alice", "changed-by-an-admin");
    let r = fetch(&format!("{}/account", app.url), Some(&phone)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&r).as_deref(), Some("/login?next=/account"));
    assert!(r.removes_cookie(), "{:?}", r.set_cookie());
    assert!(!app.store.inner.exists(&key_of(&phone)).await.unwrap());
}

#[actix_web::test]
async fn sessions_without_a_hash_cost_no_source_call() {
    let app = app(None).await;
    let c = cookie(&fetch(&format!("{}/plain-login/alice", app.url), None).await);
    let r = fetch(&format!("{}/account", app.url), Some(&c)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
    assert_eq!(app.users.asked.load(Ordering::SeqCst), 0);

    // With a hash: one source call per request, nothing written.
    let c = cookie(&fetch(&format!("{}/login/alice", app.url), None).await);
    let writes = app.store.writes();
    let r = fetch(&format!("{}/account", app.url), Some(&c)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.users.asked.load(Ordering::SeqCst), 1);
    assert_eq!(app.store.writes(), writes);
}

#[actix_web::test]
async fn an_outage_is_a_503_and_keeps_the_session() {
    let app = app(Some("/login")).await;
    let c = cookie(&fetch(&format!("{}/login/alice", app.url), None).await);
    // The user table is down.
    app.users.down.store(true, Ordering::SeqCst);
    for path in ["account", "maybe"] {
        let r = fetch(&format!("{}/{path}", app.url), Some(&c)).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {r:?}");
        assert!(r.headers.contains_key("retry-after"), "{path}");
        assert_eq!(r.set_cookie(), None, "{path}");
    }
    app.users.down.store(false, Ordering::SeqCst);
    // The session store is down.
    app.store.set_down(true);
    let r = fetch(&format!("{}/account", app.url), Some(&c)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.set_cookie(), None);
    app.store.set_down(false);
    let r = fetch(&format!("{}/account", app.url), Some(&c)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
}
