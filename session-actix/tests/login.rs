//! Login required and the session auth hash through actix-web on a 127.0.0.1 socket:
//! the `AuthUser` extractor (401, or a redirect to the configured login URL with `next=`)
//! and a password change logging out the user's other sessions. Mirrors session-tower's
//! tests/login.rs.

#![allow(clippy::unwrap_used)]

use session_http_testkit as support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::web;
use reqwest::StatusCode;
use session_actix::{
    ActixSession, AuthUser, OptionalAuthUser, SessionError, SessionMiddleware, LOGIN_REQUIRED,
};
use session_core::{SessionConfig, SessionKey, SessionStore};
use support::{fetch, key_of, Source, TestStore, Users};

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
    let users = Users::alice_and_bob();
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
    let url = support::serve_actix(move |cfg: &mut web::ServiceConfig| {
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

// ---------------------------------------------------------------- tests

#[actix_web::test]
async fn login_required_answers_401_without_a_login_url() {
    let app = app(None).await;
    let r = fetch(&format!("{}/account", app.url), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, LOGIN_REQUIRED);
    assert_eq!(r.location(), None);
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
        r.location(),
        Some("/accounts/login/?next=/account%3Ftab%3D2%26x%3D/y")
    );
    assert_eq!(r.set_cookie(), None);

    // Inside a scope, `next` is the whole path, prefix included.
    let r = fetch(&format!("{}/shop/orders", app.url), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/accounts/login/?next=/shop/orders"));
}

#[actix_web::test]
async fn a_logged_in_user_passes_and_the_optional_extractor_never_rejects() {
    let app = app(Some("/accounts/login/")).await;
    let r = fetch(&format!("{}/maybe", app.url), None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "anonymous"));

    let r = fetch(&format!("{}/login/alice", app.url), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let c = r.cookie();
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
    let laptop = fetch(&format!("{}/login/alice", app.url), None)
        .await
        .cookie();
    let phone = fetch(&format!("{}/login/alice", app.url), None)
        .await
        .cookie();
    let bob = fetch(&format!("{}/login/bob", app.url), None)
        .await
        .cookie();
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
    let laptop_new = r.cookie();
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
    let phone = fetch(&format!("{}/login/alice", app.url), None)
        .await
        .cookie();
    app.users.set("alice", "changed-by-an-admin");
    let r = fetch(&format!("{}/account", app.url), Some(&phone)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login?next=/account"));
    assert!(r.removes_cookie(), "{:?}", r.set_cookie());
    assert!(!app.store.inner.exists(&key_of(&phone)).await.unwrap());
}

#[actix_web::test]
async fn sessions_without_a_hash_cost_no_source_call() {
    let app = app(None).await;
    let c = fetch(&format!("{}/plain-login/alice", app.url), None)
        .await
        .cookie();
    let r = fetch(&format!("{}/account", app.url), Some(&c)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
    assert_eq!(app.users.asked.load(Ordering::SeqCst), 0);

    // With a hash: one source call per request, nothing written.
    let c = fetch(&format!("{}/login/alice", app.url), None)
        .await
        .cookie();
    let writes = app.store.writes();
    let r = fetch(&format!("{}/account", app.url), Some(&c)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.users.asked.load(Ordering::SeqCst), 1);
    assert_eq!(app.store.writes(), writes);
}

#[actix_web::test]
async fn an_outage_is_a_503_and_keeps_the_session() {
    let app = app(Some("/login")).await;
    let c = fetch(&format!("{}/login/alice", app.url), None)
        .await
        .cookie();
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
