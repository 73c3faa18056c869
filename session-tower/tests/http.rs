//! The cookie rules through the real HTTP stack: axum + hyper on a 127.0.0.1 socket,
//! requests sent with reqwest. The store and the client are `session-http-testkit`'s,
//! shared with session-actix's tests.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use session_core::{Expiry, SessionConfig, SessionKey, SessionStore};
use session_http_testkit::*;
use session_memory::MemoryStore;
use session_tower::{DeviceMetadata, HttpSession, IpSource, SameSite, SessionError, SessionLayer};

// ---------------------------------------------------------------- helpers

fn layer(store: &Arc<TestStore>) -> SessionLayer {
    let shared: Arc<dyn SessionStore> = store.clone();
    SessionLayer::from_shared_store(shared)
}

// ---------------------------------------------------------------- handlers

async fn incr(session: HttpSession) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.insert("n", n).await?;
    Ok(n.to_string())
}

async fn read(session: HttpSession) -> Result<String, SessionError> {
    Ok(session.get::<u64>("n").await?.unwrap_or(0).to_string())
}

async fn untouched() -> &'static str {
    "hello"
}

async fn flush(session: HttpSession) -> Result<&'static str, SessionError> {
    session.flush().await?;
    Ok("bye")
}

fn basic_app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/incr", get(incr))
        .route("/read", get(read))
        .route("/plain", get(untouched))
        .route("/flush", get(flush))
        .layer(layer)
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_session_sets_a_cookie_with_the_default_attributes() {
    let store = store();
    let url = serve(basic_app(layer(&store))).await;
    let r = fetch(&format!("{url}/incr"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let sc = r.set_cookie().expect("Set-Cookie on a new session");
    let key = cookie_value(&sc);
    assert!(SessionKey::parse(&key).is_ok(), "{sc}");
    assert!(has_attr(&sc, "HttpOnly"), "{sc}");
    assert!(has_attr(&sc, "Secure"), "{sc}");
    assert_eq!(attr_value(&sc, "SameSite").as_deref(), Some("Lax"));
    assert_eq!(attr_value(&sc, "Path").as_deref(), Some("/"));
    assert_eq!(attr_value(&sc, "Domain"), None);
    assert!(!has_attr(&sc, "Partitioned"));
    let max_age: u64 = attr_value(&sc, "Max-Age").unwrap().parse().unwrap();
    assert!((1_209_590..=1_209_600).contains(&max_age), "{max_age}");
    assert!(attr_value(&sc, "Expires").is_some(), "{sc}");
    assert!(r.varies_on_cookie());

    // The next request carries it and sees the data; a read sets no cookie.
    let r2 = fetch(&format!("{url}/read"), Some(&format!("id={key}"))).await;
    assert_eq!(r2.body, "1");
    assert_eq!(r2.set_cookie(), None);
    assert!(
        r2.varies_on_cookie(),
        "reading the session varies on Cookie"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untouched_session_costs_no_store_call_and_sends_no_headers() {
    let store = store();
    let url = serve(basic_app(layer(&store))).await;
    let key = fetch(&format!("{url}/incr"), None).await.key();
    let loads = store.loads.load(Ordering::SeqCst);
    let writes = store.writes.load(Ordering::SeqCst);
    let r = fetch(&format!("{url}/plain"), Some(&format!("id={key}"))).await;
    assert_eq!(r.body, "hello");
    assert_eq!(r.set_cookie(), None);
    assert!(r.vary().is_empty(), "{:?}", r.vary());
    assert_eq!(store.loads.load(Ordering::SeqCst), loads, "lazy: no load");
    assert_eq!(
        store.writes.load(Ordering::SeqCst),
        writes,
        "lazy: no write"
    );
    // No cookie at all: nothing either.
    let r = fetch(&format!("{url}/plain"), None).await;
    assert_eq!(r.set_cookie(), None);
    assert!(r.vary().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_new_visitor_gets_vary_but_no_cookie_and_nothing_stored() {
    let store = store();
    let url = serve(basic_app(layer(&store))).await;
    let r = fetch(&format!("{url}/read"), None).await;
    assert_eq!(r.body, "0");
    assert_eq!(r.set_cookie(), None);
    assert!(r.varies_on_cookie());
    assert_eq!(store.writes.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_is_merged_with_the_handlers_vary() {
    async fn with_vary(session: HttpSession) -> Result<impl IntoResponse, SessionError> {
        session.insert("x", 1).await?;
        Ok(([("vary", "Accept-Encoding")], "ok"))
    }
    let store = store();
    let app = Router::new()
        .route("/", get(with_vary))
        .layer(layer(&store));
    let url = serve(app).await;
    let r = fetch(&url, None).await;
    assert_eq!(r.vary(), vec!["Accept-Encoding, Cookie".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_saves_nothing_and_sets_no_cookie_but_varies() {
    async fn boom(session: HttpSession) -> Result<StatusCode, SessionError> {
        session.insert("n", 99).await?;
        Ok(StatusCode::INTERNAL_SERVER_ERROR)
    }
    async fn boom_existing(session: HttpSession) -> Result<StatusCode, SessionError> {
        session.insert("n", 42).await?;
        Ok(StatusCode::BAD_GATEWAY)
    }
    let store = store();
    let app = basic_app(layer(&store)).merge(
        Router::new()
            .route("/boom", get(boom))
            .route("/boom2", get(boom_existing))
            .layer(layer(&store)),
    );
    let url = serve(app).await;
    let r = fetch(&format!("{url}/boom"), None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.headers.get("set-cookie").is_none());
    assert!(r.varies_on_cookie());
    assert_eq!(
        store.writes.load(Ordering::SeqCst),
        0,
        "nothing saved on 5xx"
    );

    // An existing session is not updated by a 5xx request either.
    let key = fetch(&format!("{url}/incr"), None).await.key();
    let cookie = format!("id={key}");
    let r = fetch(&format!("{url}/boom2"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.headers.get("set-cookie").is_none());
    assert_eq!(fetch(&format!("{url}/read"), Some(&cookie)).await.body, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_sends_a_removal_cookie_with_the_same_path_domain_and_flags() {
    let store = store();
    let l = layer(&store)
        .with_path("/app")
        .unwrap()
        .with_domain(Some("example.test"))
        .unwrap()
        .with_same_site(Some(SameSite::Strict));
    let app = Router::new().nest("/app", basic_app(l));
    let url = serve(app).await;
    let r = fetch(&format!("{url}/app/incr"), None).await;
    let set = r.set_cookie().unwrap();
    assert_eq!(attr_value(&set, "Path").as_deref(), Some("/app"));
    assert_eq!(attr_value(&set, "Domain").as_deref(), Some("example.test"));
    let key = cookie_value(&set);

    let r = fetch(&format!("{url}/app/flush"), Some(&format!("id={key}"))).await;
    let rm = r.set_cookie().expect("removal cookie");
    assert_eq!(cookie_value(&rm), "");
    assert_eq!(attr_value(&rm, "Max-Age").as_deref(), Some("0"));
    assert!(attr_value(&rm, "Expires").unwrap().contains("1970"), "{rm}");
    assert_eq!(attr_value(&rm, "Path").as_deref(), Some("/app"));
    assert_eq!(attr_value(&rm, "Domain").as_deref(), Some("example.test"));
    assert_eq!(attr_value(&rm, "SameSite").as_deref(), Some("Strict"));
    assert!(has_attr(&rm, "Secure"));
    assert!(r.varies_on_cookie());
    // The row is gone.
    assert!(!store
        .inner
        .exists(&SessionKey::parse(&key).unwrap())
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_malformed_cookie_is_removed_when_the_session_leaves_empty() {
    let store = store();
    let url = serve(basic_app(layer(&store))).await;
    // A well-formed key naming no session, read by the handler: removed.
    let ghost = SessionKey::generate();
    let r = fetch(
        &format!("{url}/read"),
        Some(&format!("id={}", ghost.as_str())),
    )
    .await;
    let rm = r.set_cookie().expect("removal");
    assert_eq!(cookie_value(&rm), "");
    assert!(r.varies_on_cookie());
    // The same key, untouched: left alone (an unloaded keyed session is not empty).
    let r = fetch(
        &format!("{url}/plain"),
        Some(&format!("id={}", ghost.as_str())),
    )
    .await;
    assert_eq!(r.set_cookie(), None);
    // A malformed value is dropped at once, so the session is empty: removed.
    let r = fetch(&format!("{url}/plain"), Some("id=short")).await;
    assert_eq!(cookie_value(&r.set_cookie().expect("removal")), "");
    assert!(r.varies_on_cookie());
    // A new session from a ghost cookie never adopts the client's key.
    let r = fetch(
        &format!("{url}/incr"),
        Some(&format!("id={}", ghost.as_str())),
    )
    .await;
    assert_ne!(r.key(), ghost.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_follows_the_sessions_expiry() {
    async fn short(session: HttpSession) -> Result<(), SessionError> {
        session
            .set_expiry(Expiry::Idle(Duration::from_secs(3600)))
            .await?;
        Ok(())
    }
    async fn at_close(session: HttpSession) -> Result<(), SessionError> {
        session.set_expiry(Expiry::BrowserClose).await?;
        Ok(())
    }
    let store = store();
    let app = Router::new()
        .route("/short", get(short))
        .route("/close", get(at_close))
        .layer(layer(&store));
    let url = serve(app).await;
    let r = fetch(&format!("{url}/short"), None).await;
    let sc = r.set_cookie().unwrap();
    let age: u64 = attr_value(&sc, "Max-Age").unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&age), "{sc}");

    let r = fetch(&format!("{url}/close"), None).await;
    let sc = r.set_cookie().unwrap();
    assert_eq!(attr_value(&sc, "Max-Age"), None, "{sc}");
    assert_eq!(attr_value(&sc, "Expires"), None, "{sc}");
    // The store row still expires (server-side idle limit).
    let record = store
        .inner
        .load(&SessionKey::parse(&cookie_value(&sc)).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(record.expires_at > Utc::now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_every_request_refreshes_the_cookie_but_never_stores_empty_sessions() {
    let store = store();
    let l = layer(&store).with_config(SessionConfig::default().with_save_every_request(true));
    let url = serve(basic_app(l)).await;
    // Empty session: nothing saved, no cookie.
    let r = fetch(&format!("{url}/read"), None).await;
    assert_eq!(r.set_cookie(), None);
    assert_eq!(store.writes.load(Ordering::SeqCst), 0);

    let key = fetch(&format!("{url}/incr"), None).await.key();
    let writes = store.writes.load(Ordering::SeqCst);
    // A read-only request (even an untouched one) refreshes the cookie with a touch.
    for path in ["read", "plain"] {
        let r = fetch(&format!("{url}/{path}"), Some(&format!("id={key}"))).await;
        let sc = r.set_cookie().expect("always-save refreshes the cookie");
        assert_eq!(cookie_value(&sc), key);
        assert!(attr_value(&sc, "Max-Age").is_some());
        assert!(r.varies_on_cookie());
    }
    assert_eq!(store.writes.load(Ordering::SeqCst), writes + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_deleted_meanwhile_answers_400_and_is_not_resurrected() {
    #[derive(Clone)]
    struct AppState(Arc<TestStore>);
    async fn race(
        State(AppState(store)): State<AppState>,
        session: HttpSession,
    ) -> Result<&'static str, SessionError> {
        // Load, then a concurrent logout deletes the row, then this request writes.
        let n: u64 = session.get("n").await?.unwrap_or(0);
        let key = session.key().await.expect("loaded session has a key");
        assert!(store.inner.delete(&key).await?);
        session.insert("n", n + 1).await?;
        Ok("handler finished")
    }
    let store = store();
    let app = Router::new()
        .route("/race", get(race))
        .with_state(AppState(store.clone()))
        .merge(basic_app(layer(&store)))
        .layer(layer(&store));
    let url = serve(app).await;
    let key = fetch(&format!("{url}/incr"), None).await.key();
    let r = fetch(&format!("{url}/race"), Some(&format!("id={key}"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("session was deleted"), "{}", r.body);
    assert!(r.headers.get("set-cookie").is_none());
    assert!(r.varies_on_cookie());
    assert!(!store
        .inner
        .exists(&SessionKey::parse(&key).unwrap())
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_answers_503_by_default_and_is_configurable() {
    async fn write_only(session: HttpSession) -> Result<(), SessionError> {
        // A brand-new session: no load, the outage shows on save.
        session.insert("x", 1).await?;
        Ok(())
    }
    let store = store();
    let default_app = Router::new()
        .route("/incr", get(incr))
        .route("/write", get(write_only))
        .layer(layer(&store));
    let custom_status = Router::new()
        .route("/incr", get(incr))
        .route("/write", get(write_only))
        .layer(layer(&store).with_unavailable_status(StatusCode::INTERNAL_SERVER_ERROR));
    let custom_handler =
        Router::new()
            .route("/write", get(write_only))
            .layer(layer(&store).with_error_handler(|err| {
                let mut res =
                    axum::http::Response::new(format!("custom: {}", err.is_unavailable()));
                *res.status_mut() = StatusCode::IM_A_TEAPOT;
                res
            }));
    let url = serve(
        Router::new()
            .nest("/default", default_app)
            .nest("/status", custom_status)
            .nest("/handler", custom_handler),
    )
    .await;
    let key = fetch(&format!("{url}/default/incr"), None).await.key();
    store.down.store(true, Ordering::SeqCst);

    // On save.
    let r = fetch(&format!("{url}/default/write"), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.get("set-cookie").is_none());
    assert!(r.headers.get("retry-after").is_some());
    // Surfaced by the handler (the load fails) through SessionError.
    let r = fetch(&format!("{url}/default/incr"), Some(&format!("id={key}"))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("unavailable"), "{}", r.body);
    assert!(r.headers.get("set-cookie").is_none());
    // Configured status, on save and from the handler.
    let r = fetch(&format!("{url}/status/write"), None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let r = fetch(&format!("{url}/status/incr"), Some(&format!("id={key}"))).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    // Custom handler.
    let r = fetch(&format!("{url}/handler/write"), None).await;
    assert_eq!(r.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(r.body, "custom: true");

    // Back up: the session survived.
    store.down.store(false, Ordering::SeqCst);
    let r = fetch(&format!("{url}/default/incr"), Some(&format!("id={key}"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_saves_itself_still_gets_its_cookie() {
    async fn save_new(session: HttpSession) -> Result<String, SessionError> {
        session.insert("n", 1).await?;
        let action = session.save().await?;
        Ok(format!("{action:?}")
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned())
    }
    async fn save_existing(session: HttpSession) -> Result<(), SessionError> {
        session
            .set_expiry(Expiry::Idle(Duration::from_secs(7200)))
            .await?;
        session.save().await?;
        Ok(())
    }
    let store = store();
    let app = Router::new()
        .route("/save-new", get(save_new))
        .route("/save-existing", get(save_existing))
        .merge(basic_app(layer(&store)))
        .layer(layer(&store));
    let url = serve(app).await;
    let r = fetch(&format!("{url}/save-new"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let key = r.key();
    assert_eq!(
        fetch(&format!("{url}/read"), Some(&format!("id={key}")))
            .await
            .body,
        "1"
    );
    // An existing session saved by the handler: the cookie is re-sent with the new expiry.
    let r = fetch(&format!("{url}/save-existing"), Some(&format!("id={key}"))).await;
    let sc = r.set_cookie().expect("cookie after the handler's own save");
    assert_eq!(cookie_value(&sc), key);
    let age: u64 = attr_value(&sc, "Max-Age").unwrap().parse().unwrap();
    assert!((7190..=7200).contains(&age), "{sc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_cycles_the_key() {
    async fn login(session: HttpSession) -> Result<(), SessionError> {
        session.cycle_key().await?;
        session.set_user(Some("alice")).await?;
        Ok(())
    }
    async fn whoami(session: HttpSession) -> Result<String, SessionError> {
        Ok(session.user_id().await?.unwrap_or_default())
    }
    let store = store();
    let app = Router::new()
        .route("/login", get(login))
        .route("/whoami", get(whoami))
        .merge(basic_app(layer(&store)))
        .layer(layer(&store));
    let url = serve(app).await;
    let before = fetch(&format!("{url}/incr"), None).await.key();
    let after = fetch(&format!("{url}/login"), Some(&format!("id={before}")))
        .await
        .key();
    assert_ne!(before, after);
    assert_eq!(
        fetch(&format!("{url}/whoami"), Some(&format!("id={after}")))
            .await
            .body,
        "alice"
    );
    assert_eq!(
        fetch(&format!("{url}/read"), Some(&format!("id={after}")))
            .await
            .body,
        "1"
    );
    assert_eq!(
        fetch(&format!("{url}/whoami"), Some(&format!("id={before}")))
            .await
            .body,
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_under_nested_routers() {
    let store = store();
    // Layer on the outer router, handlers two levels down.
    let inner = Router::new().nest(
        "/v1",
        Router::new()
            .route("/incr", get(incr))
            .route("/read", get(read)),
    );
    let outer = Router::new().nest("/api", inner).layer(layer(&store));
    // Layer on a nested router only, with a cookie path matching the nest.
    let scoped = Router::new().nest(
        "/scoped",
        Router::new().route("/incr", get(incr)).layer(
            layer(&store)
                .with_cookie_name("scoped")
                .unwrap()
                .with_path("/scoped")
                .unwrap(),
        ),
    );
    let url = serve(outer.merge(scoped)).await;
    let key = fetch(&format!("{url}/api/v1/incr"), None).await.key();
    let r = fetch(&format!("{url}/api/v1/incr"), Some(&format!("id={key}"))).await;
    assert_eq!(r.body, "2");
    let r = fetch(&format!("{url}/scoped/incr"), None).await;
    let sc = r.set_cookies("scoped");
    assert_eq!(sc.len(), 1, "{:?}", r.headers);
    assert_eq!(attr_value(&sc[0], "Path").as_deref(), Some("/scoped"));
    let scoped_key = cookie_value(&sc[0]);
    let r = fetch(
        &format!("{url}/scoped/incr"),
        Some(&format!("scoped={scoped_key}")),
    )
    .await;
    assert_eq!(r.body, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_layers_with_different_names_and_paths_coexist() {
    struct Admin;
    async fn both(shop: HttpSession, admin: HttpSession<Admin>) -> Result<String, SessionError> {
        let s: u64 = shop.get("n").await?.unwrap_or(0) + 1;
        shop.insert("n", s).await?;
        let a: u64 = admin.get("n").await?.unwrap_or(0) + 10;
        admin.insert("n", a).await?;
        Ok(format!("{s} {a}"))
    }
    let store = store();
    let admin_layer = layer(&store)
        .with_cookie_name("admin")
        .unwrap()
        .with_path("/admin")
        .unwrap()
        .with_tag::<Admin>();
    let app = Router::new()
        .nest(
            "/admin",
            Router::new().route("/both", get(both)).layer(admin_layer),
        )
        .route("/incr", get(incr))
        .layer(layer(&store));
    let url = serve(app).await;
    let r = fetch(&format!("{url}/admin/both"), None).await;
    assert_eq!(r.body, "1 10");
    let shop = r.set_cookies("id");
    let admin = r.set_cookies("admin");
    assert_eq!((shop.len(), admin.len()), (1, 1), "{:?}", r.headers);
    assert_eq!(attr_value(&shop[0], "Path").as_deref(), Some("/"));
    assert_eq!(attr_value(&admin[0], "Path").as_deref(), Some("/admin"));
    let (shop_key, admin_key) = (cookie_value(&shop[0]), cookie_value(&admin[0]));
    assert_ne!(shop_key, admin_key, "two distinct sessions");
    assert_eq!(r.vary(), vec!["Cookie".to_owned()], "Vary not duplicated");

    let cookies = format!("admin={admin_key}; id={shop_key}");
    let r = fetch(&format!("{url}/admin/both"), Some(&cookies)).await;
    assert_eq!(r.body, "2 20");
    // The shop layer alone sees only its own session.
    let r = fetch(&format!("{url}/incr"), Some(&format!("id={shop_key}"))).await;
    assert_eq!(r.body, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_layer_is_a_clear_500() {
    struct Other;
    async fn wants_other(_: HttpSession<Other>) {}
    let store = store();
    let app = Router::new()
        .route("/", get(wants_other))
        .layer(layer(&store));
    let url = serve(app).await;
    let r = fetch(&url, None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.body.contains("session layer missing"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_and_same_site_none_force_secure() {
    let store = store();
    let l = layer(&store)
        .with_secure(false)
        .with_partitioned(true)
        .with_same_site(Some(SameSite::None));
    let url = serve(basic_app(l)).await;
    let sc = fetch(&format!("{url}/incr"), None)
        .await
        .set_cookie()
        .unwrap();
    assert!(has_attr(&sc, "Partitioned"), "{sc}");
    assert!(has_attr(&sc, "Secure"), "{sc}");
    assert_eq!(attr_value(&sc, "SameSite").as_deref(), Some("None"));

    let plain = layer(&store)
        .with_secure(false)
        .with_same_site(None)
        .with_http_only(false);
    let url = serve(basic_app(plain)).await;
    let sc = fetch(&format!("{url}/incr"), None)
        .await
        .set_cookie()
        .unwrap();
    assert!(
        !has_attr(&sc, "Secure") && !has_attr(&sc, "HttpOnly"),
        "{sc}"
    );
    assert_eq!(attr_value(&sc, "SameSite"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_metadata_is_stored_from_the_connection_or_a_trusted_header() {
    let store = store();
    let from_conn = layer(&store).with_device_metadata(DeviceMetadata::all());
    let from_header = layer(&store)
        .with_device_metadata(DeviceMetadata::all().with_ip(IpSource::header("x-real-ip")));
    let app = Router::new()
        .nest("/conn", basic_app(from_conn))
        .nest("/proxy", basic_app(from_header));
    let url = serve(app).await;

    let r = get_with(
        &format!("{url}/conn/incr"),
        None,
        &[("user-agent", "TestBrowser/1.0")],
    )
    .await;
    let record = store
        .inner
        .load(&SessionKey::parse(&r.key()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.user_agent.as_deref(), Some("TestBrowser/1.0"));
    assert_eq!(record.ip.as_deref(), Some("127.0.0.1"));
    let first_active = record.last_active_at.unwrap();

    let r = get_with(
        &format!("{url}/proxy/incr"),
        None,
        &[("user-agent", "Other/2"), ("x-real-ip", "203.0.113.9")],
    )
    .await;
    let key = SessionKey::parse(&r.key()).unwrap();
    let record = store.inner.load(&key).await.unwrap().unwrap();
    assert_eq!(record.ip.as_deref(), Some("203.0.113.9"));
    assert!(record.last_active_at.unwrap() >= first_active);

    // A later write from another address updates the stored IP.
    get_with(
        &format!("{url}/proxy/incr"),
        Some(&format!("id={}", key.as_str())),
        &[("x-real-ip", "198.51.100.1")],
    )
    .await;
    let record = store.inner.load(&key).await.unwrap().unwrap();
    assert_eq!(record.ip.as_deref(), Some("198.51.100.1"));
    assert_eq!(
        record.user_agent.as_deref(),
        Some("Other/2"),
        "kept from the earlier write"
    );

    // Without metadata configured nothing is recorded.
    let _ = HeaderValue::from_static("unused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_still_save_and_set_the_cookie() {
    async fn not_found(session: HttpSession) -> Result<StatusCode, SessionError> {
        session.insert("n", 5).await?;
        Ok(StatusCode::NOT_FOUND)
    }
    let store = store();
    let app = Router::new()
        .route("/404", get(not_found))
        .merge(basic_app(layer(&store)))
        .layer(layer(&store));
    let url = serve(app).await;
    let r = fetch(&format!("{url}/404"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let key = r.key();
    assert_eq!(
        fetch(&format!("{url}/read"), Some(&format!("id={key}")))
            .await
            .body,
        "5"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_prefixes_are_checked_when_the_layer_is_built() {
    use session_tower::CookieConfigError;
    let base = || SessionLayer::new(MemoryStore::new());
    // __Host-: Secure, Path=/ and no Domain, whichever is set first.
    let host_errors = [
        base()
            .with_cookie_name("__Host-id")
            .unwrap()
            .with_path("/app")
            .unwrap_err(),
        base()
            .with_cookie_name("__Host-id")
            .unwrap()
            .with_domain(Some("example.com"))
            .unwrap_err(),
        base()
            .with_path("/app")
            .unwrap()
            .with_cookie_name("__Host-id")
            .unwrap_err(),
        base()
            .with_domain(Some("example.com"))
            .unwrap()
            .with_cookie_name("__host-id")
            .unwrap_err(),
        base()
            .with_secure(false)
            .with_cookie_name("__Host-id")
            .unwrap_err(),
    ];
    for err in host_errors {
        assert!(matches!(err, CookieConfigError::HostPrefix { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("__Host- prefix needs Secure, Path=/ and no Domain"),
            "{err}"
        );
    }
    let err = base()
        .with_secure(false)
        .with_cookie_name("__Secure-id")
        .unwrap_err();
    assert!(
        matches!(err, CookieConfigError::SecurePrefix { .. }),
        "{err}"
    );
    assert!(base()
        .with_path("/app")
        .unwrap()
        .with_domain(Some("example.com"))
        .unwrap()
        .with_cookie_name("__Secure-id")
        .is_ok());

    // Secure turned off after a prefixed name: the cookie still carries Secure (as the
    // prefix requires), like SameSite=None and Partitioned.
    let store = store();
    let l = layer(&store)
        .with_cookie_name("__Host-id")
        .unwrap()
        .with_secure(false);
    let url = serve(basic_app(l)).await;
    let r = fetch(&format!("{url}/incr"), None).await;
    let sc = &r.set_cookies("__Host-id")[0];
    assert!(has_attr(sc, "Secure"), "{sc}");
    assert_eq!(attr_value(sc, "Path").as_deref(), Some("/"));
    assert_eq!(attr_value(sc, "Domain"), None);
    let key = cookie_value(sc);
    let r = fetch(&format!("{url}/incr"), Some(&format!("__Host-id={key}"))).await;
    assert_eq!(r.body, "2");
}
