//! Login required and the session auth hash through the real HTTP stack: axum + hyper on
//! a 127.0.0.1 socket, requests sent with reqwest (redirects not followed).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use session_core::{SessionConfig, SessionKey, SessionStore};
use session_http_testkit::{fetch, key_of, serve, Source, TestStore, Users};
use session_tower::{AuthUser, HttpSession, SessionError, SessionLayer, LOGIN_REQUIRED};

// ---------------------------------------------------------------- helpers

struct App {
    url: String,
    store: Arc<TestStore>,
    users: Arc<Users>,
}

// ---------------------------------------------------------------- handlers

async fn login(
    State(users): State<Arc<Users>>,
    Path(user): Path<String>,
    session: HttpSession,
) -> Result<&'static str, SessionError> {
    // (the password was checked here)
    let stamp = users.stamp(&user).unwrap_or_default();
    session.login_with_auth_hash(user, stamp).await?;
    Ok("welcome")
}

async fn plain_login(
    Path(user): Path<String>,
    session: HttpSession,
) -> Result<&'static str, SessionError> {
    session.login(user).await?;
    Ok("welcome")
}

async fn account(user: AuthUser) -> String {
    format!("hello {}", user.user_id())
}

async fn maybe(user: Option<AuthUser>) -> String {
    user.map_or_else(|| "anonymous".to_owned(), |u| u.into_user_id())
}

/// The user changes their own password: the stamp moves, this session keeps up.
async fn change_password(
    State(users): State<Arc<Users>>,
    Path(new): Path<String>,
    user: AuthUser,
) -> Result<&'static str, SessionError> {
    users.set(user.user_id(), &new);
    user.session().update_auth_hash(new).await?;
    Ok("password changed")
}

async fn app(login_url: Option<&str>) -> App {
    let store = session_http_testkit::store();
    let users = Users::alice_and_bob();
    let mut config = SessionConfig::default()
        .with_auth_hash_source(Source(users.clone()))
        .with_touch_interval(None);
    if let Some(url) = login_url {
        config = config.with_login_url(url);
    }
    let shared: Arc<dyn SessionStore> = store.clone();
    let layer = SessionLayer::from_shared_store(shared).with_config(config);
    let shop = Router::new().route("/orders", get(account));
    let router = Router::new()
        .route("/login/{user}", get(login))
        .route("/plain-login/{user}", get(plain_login))
        .route("/account", get(account))
        .route("/maybe", get(maybe))
        .route("/password/{new}", get(change_password))
        .nest("/shop", shop)
        .with_state(users.clone())
        .layer(layer);
    App {
        url: serve(router).await,
        store,
        users,
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn login_required_answers_401_without_a_login_url() {
    let app = app(None).await;
    let r = fetch(&format!("{}/account", app.url), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, LOGIN_REQUIRED);
    assert_eq!(r.location(), None);
    assert_eq!(r.set_cookie(), None);
    assert_eq!(app.store.counts(), (0, 0, 0), "no cookie: no store call");

    // A cookie naming no session: 401, and the stale cookie is removed.
    let stale = format!("id={}", SessionKey::generate().as_str());
    let r = fetch(&format!("{}/account", app.url), Some(&stale)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.removes_cookie(), "{:?}", r.set_cookie());
}

#[tokio::test]
async fn login_required_redirects_to_the_login_url_with_next() {
    let app = app(Some("/accounts/login/")).await;
    let r = fetch(&format!("{}/account?tab=2&x=/y", app.url), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.location(),
        Some("/accounts/login/?next=/account%3Ftab%3D2%26x%3D/y")
    );
    assert_eq!(r.set_cookie(), None);

    // Behind `nest`, `next` is the original path, prefix included.
    let r = fetch(&format!("{}/shop/orders", app.url), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/accounts/login/?next=/shop/orders"));
}

#[tokio::test]
async fn a_logged_in_user_passes_and_option_never_rejects() {
    let app = app(Some("/accounts/login/")).await;
    let r = fetch(&format!("{}/maybe", app.url), None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "anonymous"));

    let r = fetch(&format!("{}/login/alice", app.url), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = r.cookie();
    let r = fetch(&format!("{}/account", app.url), Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
    assert_eq!(r.set_cookie(), None, "a read sets no cookie");
    let r = fetch(&format!("{}/shop/orders", app.url), Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
    let r = fetch(&format!("{}/maybe", app.url), Some(&cookie)).await;
    assert_eq!(r.body, "alice");
}

#[tokio::test]
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
        assert_eq!(
            fetch(&format!("{}/account", app.url), Some(c)).await.status,
            StatusCode::OK
        );
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

    // The phone is logged out: 401, its cookie removed, its record gone.
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

#[tokio::test]
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
}

#[tokio::test]
async fn sessions_without_a_hash_cost_no_extra_store_call_or_source_call() {
    let app = app(None).await;
    let cookie = fetch(&format!("{}/plain-login/alice", app.url), None)
        .await
        .cookie();
    let before = app.store.counts();
    let r = fetch(&format!("{}/account", app.url), Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
    let after = app.store.counts();
    assert_eq!(
        after,
        (before.0 + 1, before.1, before.2),
        "exactly one load"
    );
    assert_eq!(app.users.asked.load(Ordering::SeqCst), 0);

    // With a hash: one source call per request, still one load and nothing written.
    let cookie = fetch(&format!("{}/login/alice", app.url), None)
        .await
        .cookie();
    let before = app.store.counts();
    let r = fetch(&format!("{}/account", app.url), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.store.counts(), (before.0 + 1, before.1, before.2));
    assert_eq!(app.users.asked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_outage_of_the_user_table_is_a_503_and_keeps_the_session() {
    let app = app(None).await;
    let cookie = fetch(&format!("{}/login/alice", app.url), None)
        .await
        .cookie();
    app.users.down.store(true, Ordering::SeqCst);
    let r = fetch(&format!("{}/account", app.url), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.set_cookie(), None);
    app.users.down.store(false, Ordering::SeqCst);
    let r = fetch(&format!("{}/account", app.url), Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
}
