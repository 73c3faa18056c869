//! Logins, logouts and revocations racing each other, atomic read-modify-write, Django's
//! login rules, the 413 for an oversized session and the `Cache-Control` rules, through
//! actix-web on a 127.0.0.1 socket. Mirrors session-tower's tests/races_and_statuses.rs.
//!
//! Concurrency is staged, not left to timing: a "slow" handler loads the session, signals
//! the test ([`Gate::arrived`]) and waits for it ([`Gate::go`]) before it goes on, so the
//! other request runs exactly in between.

#![allow(clippy::unwrap_used)]

use session_http_testkit as support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::http::StatusCode as ActixStatus;
use actix_web::{web, HttpResponse};
use reqwest::StatusCode;
use session_actix::{ActixSession, SessionError, SessionMiddleware};
use session_core::{SessionConfig, SessionStore, UserIndex};
use session_memory::MemoryStore;
use support::{assert_interrupted, finish_slow, get_, key_of, post_, start_slow, Gate};

// ---------------------------------------------------------------- the app

async fn login(
    session: ActixSession,
    user: web::Path<String>,
) -> Result<&'static str, SessionError> {
    session.login(user.into_inner()).await?;
    Ok("logged in")
}

async fn login_slow(
    gate: web::Data<Gate>,
    session: ActixSession,
    user: web::Path<String>,
) -> Result<&'static str, SessionError> {
    session.load().await?;
    gate.pass().await;
    session.login(user.into_inner()).await?;
    Ok("logged in")
}

async fn cycle_slow(
    gate: web::Data<Gate>,
    session: ActixSession,
) -> Result<&'static str, SessionError> {
    session.load().await?;
    gate.pass().await;
    session.cycle_key().await?;
    Ok("rotated")
}

async fn logout(session: ActixSession) -> Result<&'static str, SessionError> {
    session.logout().await?;
    Ok("bye")
}

async fn revoke_others(session: ActixSession) -> Result<String, SessionError> {
    let user = session.user_id().await?.unwrap_or_default();
    let current = session.key().await;
    let ended = session
        .store()
        .delete_for_user(&user, current.as_ref())
        .await?;
    Ok(ended.to_string())
}

async fn whoami(session: ActixSession) -> Result<String, SessionError> {
    Ok(session.user_id().await?.unwrap_or_default())
}

async fn write_note(
    session: ActixSession,
    text: web::Path<String>,
) -> Result<&'static str, SessionError> {
    session.insert("note", text.into_inner()).await?;
    Ok("noted")
}

async fn read_note(session: ActixSession) -> Result<String, SessionError> {
    Ok(session.get::<String>("note").await?.unwrap_or_default())
}

async fn count(session: ActixSession) -> Result<String, SessionError> {
    let n = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

async fn read_count(session: ActixSession) -> Result<String, SessionError> {
    Ok(session
        .get::<u64>("counter")
        .await?
        .unwrap_or(0)
        .to_string())
}

async fn add_to_cart(
    session: ActixSession,
    item: web::Path<String>,
) -> Result<&'static str, SessionError> {
    let item = item.into_inner();
    session
        .update("cart", move |cart: Option<Vec<String>>| {
            let mut cart = cart.unwrap_or_default();
            cart.push(item.clone());
            cart
        })
        .await?;
    Ok("added")
}

async fn read_cart(session: ActixSession) -> Result<String, SessionError> {
    let cart: Vec<String> = session.get("cart").await?.unwrap_or_default();
    Ok(cart.join(","))
}

fn mw_over(store: &Arc<MemoryStore>) -> SessionMiddleware {
    let shared: Arc<dyn SessionStore> = store.clone();
    SessionMiddleware::from_shared_store(shared)
}

/// A middleware over the same records, seen as *another process* (a second store object).
fn mw_in_another_process(store: &Arc<MemoryStore>) -> SessionMiddleware {
    let other: Arc<dyn SessionStore> = Arc::new(store.clone());
    SessionMiddleware::from_shared_store(other)
}

/// The app under `prefix`, wrapped by `mw`.
fn scope(
    prefix: &str,
    mw: SessionMiddleware,
) -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope(prefix)
        .wrap(mw)
        .route("/login/{user}", web::post().to(login))
        .route("/login-slow/{user}", web::post().to(login_slow))
        .route("/cycle-slow", web::post().to(cycle_slow))
        .route("/logout", web::post().to(logout))
        .route("/revoke-others", web::post().to(revoke_others))
        .route("/whoami", web::get().to(whoami))
        .route("/note/{text}", web::post().to(write_note))
        .route("/note", web::get().to(read_note))
        .route("/counter", web::post().to(count))
        .route("/counter", web::get().to(read_count))
        .route("/cart/{item}", web::post().to(add_to_cart))
        .route("/cart", web::get().to(read_cart))
}

/// One process (`/..`), or two over one store (`/p1/..`, `/p2/..`), one gate.
async fn serve_app(store: &Arc<MemoryStore>, two: bool) -> (String, web::Data<Gate>) {
    let gate = web::Data::new(Gate::default());
    let g = gate.clone();
    let (one, other) = (mw_over(store), mw_in_another_process(store));
    let url = support::serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(g.clone());
        if two {
            cfg.service(scope("/p1", one.clone()))
                .service(scope("/p2", other.clone()));
        } else {
            cfg.service(scope("", one.clone()));
        }
    })
    .await;
    (url, gate)
}

// ---------------------------------------------------------------- races

/// A logout while a login (or a `cycle_key`) on the same cookie is between its load and
/// its key rotation: the logout wins, the login answers 400 and no session is left.
#[actix_web::test]
async fn logout_during_a_login_in_flight_answers_400_and_leaves_no_session() {
    for slow in ["login-slow/alice", "cycle-slow"] {
        let store = Arc::new(MemoryStore::new());
        let (url, gate) = serve_app(&store, false).await;
        let key = post_(&format!("{url}/login/alice"), None).await.key();
        post_(&format!("{url}/note/secret"), Some(&key)).await;
        assert_eq!(store.len(), 1);

        let a = start_slow(&gate, format!("{url}/{slow}"), &key).await;
        let b = post_(&format!("{url}/logout"), Some(&key)).await;
        assert_eq!(b.status, StatusCode::OK, "{slow}: {b:?}");
        assert!(b.removes_cookie(), "{slow}: logout removes the cookie");
        let a = finish_slow(&gate, a).await;

        assert_interrupted(&a);
        assert_eq!(store.len(), 0, "{slow}: no record under any key");
        assert!(store.list_for_user("alice").await.unwrap().is_empty());
        let r = get_(&format!("{url}/whoami"), Some(&key)).await;
        assert_eq!(r.body, "", "{slow}");
        assert!(r.removes_cookie());
    }
}

/// "Log out other devices" while another device of the user is inside a login rotation:
/// that device answers 400 and only the revoking one is left.
#[actix_web::test]
async fn revoke_others_during_a_rotation_ends_the_rotating_device() {
    let store = Arc::new(MemoryStore::new());
    let (url, gate) = serve_app(&store, false).await;
    let d = post_(&format!("{url}/login/alice"), None).await.key();
    let e = post_(&format!("{url}/login/alice"), None).await.key();
    assert_eq!(store.list_for_user("alice").await.unwrap().len(), 2);

    let rotating = start_slow(&gate, format!("{url}/login-slow/alice"), &d).await;
    let revoke = post_(&format!("{url}/revoke-others"), Some(&e)).await;
    assert_eq!(revoke.body, "1", "one other device ended");
    let rotating = finish_slow(&gate, rotating).await;

    assert_interrupted(&rotating);
    let left = store.list_for_user("alice").await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].key.as_str(), e);
    assert!(!store.exists(&key_of(&d)).await.unwrap());
    assert_eq!(get_(&format!("{url}/whoami"), Some(&e)).await.body, "alice");
}

/// 64 concurrent `update`s on one cookie, in one process and across two: none lost.
#[actix_web::test]
async fn concurrent_updates_lose_nothing() {
    for two in [false, true] {
        let store = Arc::new(MemoryStore::new());
        let (url, _) = serve_app(&store, two).await;
        let (a, b) = if two {
            (format!("{url}/p1"), format!("{url}/p2"))
        } else {
            (url.clone(), url.clone())
        };
        let key = post_(&format!("{a}/note/start"), None).await.key();
        let client = reqwest::Client::new();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let base = if i % 2 == 0 { &a } else { &b };
            let req = client
                .post(format!("{base}/counter"))
                .header("cookie", format!("id={key}"));
            tasks.spawn(async move { req.send().await.unwrap().status() });
        }
        let mut statuses = Vec::new();
        while let Some(status) = tasks.join_next().await {
            statuses.push(status.unwrap());
        }
        assert_eq!(statuses.len(), 64);
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
        assert_eq!(
            get_(&format!("{b}/counter"), Some(&key)).await.body,
            "64",
            "two: {two}"
        );
        assert_eq!(get_(&format!("{a}/note"), Some(&key)).await.body, "start");
        assert_eq!(store.len(), 1);
    }
}

/// Logging in again as the same user rotates the key and keeps the cart; logging in as
/// another user on that cookie flushes it.
#[actix_web::test]
async fn login_as_another_user_flushes_the_session() {
    let store = Arc::new(MemoryStore::new());
    let (url, _) = serve_app(&store, false).await;
    let alice = post_(&format!("{url}/login/alice"), None).await.key();
    post_(&format!("{url}/cart/apple"), Some(&alice)).await;
    let again = post_(&format!("{url}/login/alice"), Some(&alice))
        .await
        .key();
    assert_ne!(again, alice);
    assert_eq!(
        get_(&format!("{url}/cart"), Some(&again)).await.body,
        "apple"
    );

    let bob = post_(&format!("{url}/login/bob"), Some(&again)).await.key();
    assert_ne!(bob, again);
    assert_eq!(get_(&format!("{url}/cart"), Some(&bob)).await.body, "");
    assert_eq!(get_(&format!("{url}/whoami"), Some(&bob)).await.body, "bob");
    assert!(store.list_for_user("alice").await.unwrap().is_empty());
    let record = store.load(&key_of(&bob)).await.unwrap().unwrap();
    assert!(!record.data.contains("apple"), "{}", record.data);
    assert_eq!(store.len(), 1);
}

// ---------------------------------------------------------------- statuses

const LIMIT: usize = 256;

async fn big(session: ActixSession) -> Result<&'static str, SessionError> {
    session.insert("blob", "x".repeat(4 * LIMIT)).await?;
    Ok("handler says ok")
}

async fn big_saved_by_handler(session: ActixSession) -> Result<&'static str, SessionError> {
    session.insert("blob", "x".repeat(4 * LIMIT)).await?;
    session.save().await?;
    Ok("handler says ok")
}

/// A session over `with_max_data_len` answers 413 with a short body (never the handler's
/// 200 or a 500), sets no cookie and stores nothing; the status is configurable.
#[actix_web::test]
async fn an_oversized_session_answers_413_and_stores_nothing() {
    let store = Arc::new(MemoryStore::new());
    let shared: Arc<dyn SessionStore> = store.clone();
    let config = || SessionConfig::default().with_max_data_len(LIMIT);
    let default = SessionMiddleware::builder_from_shared_store(shared.clone())
        .with_config(config())
        .build()
        .unwrap();
    let custom = SessionMiddleware::builder_from_shared_store(shared)
        .with_config(config())
        .with_too_large_status(ActixStatus::UNPROCESSABLE_ENTITY)
        .build()
        .unwrap();
    let url = support::serve_actix(move |cfg: &mut web::ServiceConfig| {
        for (prefix, m) in [("/d", default.clone()), ("/c", custom.clone())] {
            cfg.service(
                web::scope(prefix)
                    .wrap(m)
                    .route("/big", web::post().to(big))
                    .route("/big-saved", web::post().to(big_saved_by_handler))
                    .route("/note/{text}", web::post().to(write_note))
                    .route("/note", web::get().to(read_note)),
            );
        }
    })
    .await;

    for path in ["big", "big-saved"] {
        let r = post_(&format!("{url}/d/{path}"), None).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {r:?}");
        assert!(
            r.body.len() < 64 && r.body.contains("too large"),
            "{path}: {}",
            r.body
        );
        assert!(r.headers.get("set-cookie").is_none(), "{path}");
        assert_eq!(store.len(), 0, "{path}: nothing stored");
    }
    let key = post_(&format!("{url}/d/note/small"), None).await.key();
    for path in ["big", "big-saved"] {
        let r = post_(&format!("{url}/d/{path}"), Some(&key)).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(r.set_cookie(), None, "{path}");
    }
    assert_eq!(
        get_(&format!("{url}/d/note"), Some(&key)).await.body,
        "small"
    );
    for path in ["big", "big-saved"] {
        let r = post_(&format!("{url}/c/{path}"), None).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(r.body.contains("too large"));
    }
}

/// A handler's `SessionError` is rendered once, by the middleware's policy, which then
/// neither saves nor sets a cookie.
#[actix_web::test]
async fn a_handlers_session_error_is_rendered_once_by_the_middleware() {
    async fn deleted_then_saved(session: ActixSession) -> Result<&'static str, SessionError> {
        session.load().await?;
        let key = session.key().await.unwrap();
        session.store().delete(&key).await?;
        session.insert("n", 1).await?;
        session.save().await?; // Interrupted
        Ok("unreachable")
    }
    let store = Arc::new(MemoryStore::new());
    let shared: Arc<dyn SessionStore> = store.clone();
    let rendered = Arc::new(AtomicUsize::new(0));
    let counter = rendered.clone();
    let m = SessionMiddleware::builder_from_shared_store(shared)
        .with_error_handler(move |err| {
            counter.fetch_add(1, Ordering::SeqCst);
            HttpResponse::Conflict().body(format!("custom: {err}"))
        })
        .build()
        .unwrap();
    let url = support::serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(m.clone())
                .route("/race", web::post().to(deleted_then_saved))
                .route("/note/{text}", web::post().to(write_note)),
        );
    })
    .await;
    let key = post_(&format!("{url}/note/x"), None).await.key();
    let r = post_(&format!("{url}/race"), Some(&key)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.starts_with("custom: "), "{}", r.body);
    assert_eq!(rendered.load(Ordering::SeqCst), 1, "rendered exactly once");
    assert_eq!(r.set_cookie(), None);
    assert!(r.varies_on_cookie());
    assert_eq!(store.len(), 0, "not resurrected");
}

/// A response that sets or removes the cookie carries `Cache-Control: private, no-store`;
/// the handler's own `Cache-Control` is kept exactly; no cookie, no `Cache-Control`.
#[actix_web::test]
async fn responses_that_set_the_cookie_are_not_cacheable_by_shared_caches() {
    async fn own(
        session: ActixSession,
        value: web::Path<String>,
    ) -> Result<HttpResponse, SessionError> {
        session.insert("n", 1).await?;
        let value = if value.as_str() == "public" {
            "public, max-age=60"
        } else {
            "max-age=60, private"
        };
        Ok(HttpResponse::Ok()
            .insert_header(("cache-control", value))
            .body("cached by the handler's rules"))
    }
    async fn own_without_cookie() -> HttpResponse {
        HttpResponse::Ok()
            .insert_header(("cache-control", "public, max-age=600"))
            .body("static")
    }
    let store = Arc::new(MemoryStore::new());
    let m = mw_over(&store);
    let url = support::serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(m.clone())
                .route("/own/{value}", web::post().to(own))
                .route("/static", web::get().to(own_without_cookie))
                .route("/note/{text}", web::post().to(write_note))
                .route("/note", web::get().to(read_note))
                .route("/logout", web::post().to(logout)),
        );
    })
    .await;

    let r = post_(&format!("{url}/note/a"), None).await;
    let key = r.key();
    assert_eq!(r.cache_control(), ["private, no-store"]);
    let r = post_(&format!("{url}/note/b"), Some(&key)).await;
    assert!(r.set_cookie().is_some());
    assert_eq!(r.cache_control(), ["private, no-store"]);
    let r = get_(&format!("{url}/note"), Some(&key)).await;
    assert_eq!(r.body, "b");
    assert_eq!(r.set_cookie(), None);
    assert!(r.cache_control().is_empty(), "{:?}", r.cache_control());
    let r = post_(&format!("{url}/own/private"), None).await;
    assert!(r.set_cookie().is_some());
    assert_eq!(r.cache_control(), ["max-age=60, private"]);
    let r = post_(&format!("{url}/own/public"), None).await;
    assert!(r.set_cookie().is_some());
    assert_eq!(r.cache_control(), ["public, max-age=60"]);
    let r = get_(&format!("{url}/static"), Some(&key)).await;
    assert_eq!(r.cache_control(), ["public, max-age=600"]);
    let r = post_(&format!("{url}/logout"), Some(&key)).await;
    assert!(r.removes_cookie());
    assert_eq!(r.cache_control(), ["private, no-store"]);
}
