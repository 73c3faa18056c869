//! The cookie rules through the real HTTP stack: actix-web on a 127.0.0.1 socket, requests
//! sent with reqwest. Mirrors session-tower's tests/http.rs.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode as ActixStatus;
use actix_web::{web, HttpResponse};
use reqwest::StatusCode;
use session_actix::{
    ActixSession, CookieConfigError, DeviceMetadata, IpSource, SameSite, SessionError,
    SessionMiddleware,
};
use session_core::{Expiry, SessionConfig, SessionKey, SessionStore, UserIndex};
use session_http_testkit::*;

// ---------------------------------------------------------------- handlers

async fn incr(session: ActixSession) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.insert("n", n).await?;
    Ok(n.to_string())
}

async fn read(session: ActixSession) -> Result<String, SessionError> {
    Ok(session.get::<u64>("n").await?.unwrap_or(0).to_string())
}

async fn untouched() -> &'static str {
    "hello"
}

async fn flush(session: ActixSession) -> Result<&'static str, SessionError> {
    session.flush().await?;
    Ok("bye")
}

fn mw(store: &Arc<TestStore>) -> SessionMiddleware {
    SessionMiddleware::from_shared_store(shared(store))
}

/// `/incr`, `/read`, `/plain`, `/flush` under `prefix`, wrapped by `mw`.
fn basic(prefix: &'static str, mw: SessionMiddleware) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope(prefix)
                .wrap(mw.clone())
                .route("/incr", web::get().to(incr))
                .route("/read", web::get().to(read))
                .route("/plain", web::get().to(untouched))
                .route("/flush", web::get().to(flush)),
        );
    }
}

// ---------------------------------------------------------------- tests

#[actix_web::test]
async fn new_session_sets_a_cookie_with_the_default_attributes() {
    let store = store();
    let url = serve_actix(basic("", mw(&store))).await;
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
    assert_eq!(r.cache_control(), ["private, no-store"]);

    // The next request carries it and sees the data; a read sets no cookie.
    let r2 = fetch(&format!("{url}/read"), Some(&format!("id={key}"))).await;
    assert_eq!(r2.body, "1");
    assert_eq!(r2.set_cookie(), None);
    assert!(
        r2.varies_on_cookie(),
        "reading the session varies on Cookie"
    );
    assert!(r2.cache_control().is_empty());
}

#[actix_web::test]
async fn untouched_session_costs_no_store_call_and_sends_no_headers() {
    let store = store();
    let url = serve_actix(basic("", mw(&store))).await;
    let key = fetch(&format!("{url}/incr"), None).await.key();
    let calls = store.calls();
    let r = fetch(&format!("{url}/plain"), Some(&format!("id={key}"))).await;
    assert_eq!(r.body, "hello");
    assert_eq!(r.set_cookie(), None);
    assert!(r.vary().is_empty(), "{:?}", r.vary());
    assert_eq!(store.calls(), calls, "lazy: not a single store call");
    // No cookie at all: nothing either.
    let r = fetch(&format!("{url}/plain"), None).await;
    assert_eq!(r.set_cookie(), None);
    assert!(r.vary().is_empty());
    assert_eq!(store.calls(), calls);
}

#[actix_web::test]
async fn read_only_new_visitor_gets_vary_but_no_cookie_and_nothing_stored() {
    let store = store();
    let url = serve_actix(basic("", mw(&store))).await;
    let r = fetch(&format!("{url}/read"), None).await;
    assert_eq!(r.body, "0");
    assert_eq!(r.set_cookie(), None);
    assert!(r.varies_on_cookie());
    assert_eq!(store.calls(), 0, "a new visitor has nothing to load");
}

#[actix_web::test]
async fn vary_is_merged_with_the_handlers_vary() {
    async fn with_vary(session: ActixSession) -> Result<HttpResponse, SessionError> {
        session.insert("x", 1).await?;
        Ok(HttpResponse::Ok()
            .insert_header(("vary", "Accept-Encoding"))
            .body("ok"))
    }
    let store = store();
    let m = mw(&store);
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(m.clone())
                .route("/", web::get().to(with_vary)),
        );
    })
    .await;
    let r = fetch(&format!("{url}/"), None).await;
    assert_eq!(r.vary(), vec!["Accept-Encoding, Cookie".to_owned()]);
}

#[actix_web::test]
async fn server_error_saves_nothing_and_sets_no_cookie_but_varies() {
    async fn boom(session: ActixSession) -> Result<HttpResponse, SessionError> {
        session.insert("n", 99).await?;
        Ok(HttpResponse::InternalServerError().finish())
    }
    async fn boom_existing(session: ActixSession) -> Result<HttpResponse, SessionError> {
        session.insert("n", 42).await?;
        Ok(HttpResponse::BadGateway().finish())
    }
    /// A handler error that is not a session error, with a 5xx status.
    async fn failing(session: ActixSession) -> Result<&'static str, actix_web::Error> {
        session
            .insert("n", 7)
            .await
            .map_err(actix_web::error::ErrorInternalServerError)?;
        Err(actix_web::error::ErrorServiceUnavailable("upstream down"))
    }
    let store = store();
    let m = mw(&store);
    let basic_routes = basic("/b", mw(&store));
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        basic_routes(cfg);
        cfg.service(
            web::scope("")
                .wrap(m.clone())
                .route("/boom", web::get().to(boom))
                .route("/boom2", web::get().to(boom_existing))
                .route("/failing", web::get().to(failing)),
        );
    })
    .await;
    for path in ["boom", "failing"] {
        let r = fetch(&format!("{url}/{path}"), None).await;
        assert!(r.status.is_server_error(), "{path}: {r:?}");
        assert!(r.headers.get("set-cookie").is_none(), "{path}");
        assert!(r.varies_on_cookie(), "{path}");
        assert_eq!(store.writes(), 0, "{path}: nothing saved on 5xx");
    }

    // An existing session is not updated by a 5xx request either.
    let key = fetch(&format!("{url}/b/incr"), None).await.key();
    let cookie = format!("id={key}");
    let r = fetch(&format!("{url}/boom2"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.headers.get("set-cookie").is_none());
    assert_eq!(
        fetch(&format!("{url}/b/read"), Some(&cookie)).await.body,
        "1"
    );
}

#[actix_web::test]
async fn flush_sends_a_removal_cookie_with_the_same_path_domain_and_flags() {
    let store = store();
    let m = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_path("/app")
        .with_domain(Some("example.test"))
        .with_same_site(Some(SameSite::Strict))
        .build()
        .unwrap();
    let url = serve_actix(basic("/app", m)).await;
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
    assert!(has_attr(&rm, "Secure") && has_attr(&rm, "HttpOnly"));
    assert!(r.varies_on_cookie());
    assert_eq!(r.cache_control(), ["private, no-store"]);
    assert!(store.record(&key).await.is_none(), "the row is gone");
}

#[actix_web::test]
async fn unknown_or_malformed_cookie_is_removed_when_the_session_leaves_empty() {
    let store = store();
    let url = serve_actix(basic("", mw(&store))).await;
    // A well-formed key naming no session, read by the handler: removed.
    let ghost = SessionKey::generate();
    let ghost_cookie = format!("id={}", ghost.as_str());
    let r = fetch(&format!("{url}/read"), Some(&ghost_cookie)).await;
    assert_eq!(cookie_value(&r.set_cookie().expect("removal")), "");
    assert!(r.varies_on_cookie());
    // The same key, untouched: left alone (an unloaded keyed session is not empty).
    let r = fetch(&format!("{url}/plain"), Some(&ghost_cookie)).await;
    assert_eq!(r.set_cookie(), None);
    // A malformed value is dropped at once, so the session is empty: removed.
    let r = fetch(&format!("{url}/plain"), Some("id=short")).await;
    assert_eq!(cookie_value(&r.set_cookie().expect("removal")), "");
    assert!(r.varies_on_cookie());
    // A new session from a ghost cookie never adopts the client's key.
    let r = fetch(&format!("{url}/incr"), Some(&ghost_cookie)).await;
    assert_ne!(r.key(), ghost.as_str());
}

#[actix_web::test]
async fn duplicate_cookie_names_take_the_first_well_formed_value() {
    let store = store();
    let url = serve_actix(basic("", mw(&store))).await;
    let key = fetch(&format!("{url}/incr"), None).await.key();
    let other = fetch(&format!("{url}/incr"), None).await.key();
    fetch(&format!("{url}/incr"), Some(&format!("id={other}"))).await;
    // A stale malformed value first, then the good key, then another good key.
    let cookie = format!("a=1; id=junk; id={key}; id={other}");
    assert_eq!(fetch(&format!("{url}/read"), Some(&cookie)).await.body, "1");
    let cookie = format!("id={other}; id={key}");
    assert_eq!(fetch(&format!("{url}/read"), Some(&cookie)).await.body, "2");
    // A name that only starts like ours is not ours.
    let r = fetch(&format!("{url}/read"), Some(&format!("idx={key}"))).await;
    assert_eq!(r.body, "0");
}

#[actix_web::test]
async fn max_age_follows_the_sessions_expiry() {
    async fn short(session: ActixSession) -> Result<&'static str, SessionError> {
        session
            .set_expiry(Expiry::Idle(Duration::from_secs(3600)))
            .await?;
        Ok("")
    }
    async fn at_close(session: ActixSession) -> Result<&'static str, SessionError> {
        session.set_expiry(Expiry::BrowserClose).await?;
        Ok("")
    }
    let store = store();
    let m = mw(&store);
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(m.clone())
                .route("/short", web::get().to(short))
                .route("/close", web::get().to(at_close)),
        );
    })
    .await;
    let sc = fetch(&format!("{url}/short"), None)
        .await
        .set_cookie()
        .unwrap();
    let age: u64 = attr_value(&sc, "Max-Age").unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&age), "{sc}");

    let sc = fetch(&format!("{url}/close"), None)
        .await
        .set_cookie()
        .unwrap();
    assert_eq!(attr_value(&sc, "Max-Age"), None, "{sc}");
    assert_eq!(attr_value(&sc, "Expires"), None, "{sc}");
    // The store row still expires (server-side idle limit).
    let record = store.record(&cookie_value(&sc)).await.unwrap();
    assert!(record.expires_at > chrono::Utc::now());
}

#[actix_web::test]
async fn save_every_request_refreshes_the_cookie_but_never_stores_empty_sessions() {
    let store = store();
    let m = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_config(SessionConfig::default().with_save_every_request(true))
        .build()
        .unwrap();
    let url = serve_actix(basic("", m)).await;
    // Empty session: nothing saved, no cookie.
    let r = fetch(&format!("{url}/read"), None).await;
    assert_eq!(r.set_cookie(), None);
    assert_eq!(store.writes(), 0);

    let key = fetch(&format!("{url}/incr"), None).await.key();
    let writes = store.writes();
    // A read-only request (even an untouched one) refreshes the cookie with a touch.
    for path in ["read", "plain"] {
        let r = fetch(&format!("{url}/{path}"), Some(&format!("id={key}"))).await;
        let sc = r.set_cookie().expect("always-save refreshes the cookie");
        assert_eq!(cookie_value(&sc), key);
        assert!(attr_value(&sc, "Max-Age").is_some());
        assert!(r.varies_on_cookie());
    }
    assert_eq!(store.writes(), writes + 2);
}

#[actix_web::test]
async fn session_deleted_meanwhile_answers_400_and_is_not_resurrected() {
    async fn race(
        store: web::Data<Arc<TestStore>>,
        session: ActixSession,
    ) -> Result<&'static str, SessionError> {
        // Load, then a concurrent logout deletes the row, then this request writes.
        let n: u64 = session.get("n").await?.unwrap_or(0);
        let key = session.key().await.expect("loaded session has a key");
        assert!(store.inner.delete(&key).await?);
        session.insert("n", n + 1).await?;
        Ok("handler finished")
    }
    let store = store();
    let m = mw(&store);
    let data = web::Data::new(store.clone());
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(data.clone()).service(
            web::scope("")
                .wrap(m.clone())
                .route("/race", web::get().to(race))
                .route("/incr", web::get().to(incr)),
        );
    })
    .await;
    let key = fetch(&format!("{url}/incr"), None).await.key();
    let r = fetch(&format!("{url}/race"), Some(&format!("id={key}"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, session_actix::SESSION_INTERRUPTED);
    assert!(r.headers.get("set-cookie").is_none());
    assert!(r.varies_on_cookie());
    assert!(store.record(&key).await.is_none(), "not resurrected");
}

#[actix_web::test]
async fn store_outage_answers_503_by_default_and_is_configurable() {
    async fn write_only(session: ActixSession) -> Result<&'static str, SessionError> {
        // A brand-new session: no load, the outage shows on save.
        session.insert("x", 1).await?;
        Ok("")
    }
    let store = store();
    let default = mw(&store);
    let status = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_unavailable_status(ActixStatus::INTERNAL_SERVER_ERROR)
        .build()
        .unwrap();
    let handler = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_error_handler(|err| {
            HttpResponse::ImATeapot().body(format!("custom: {}", err.is_unavailable()))
        })
        .build()
        .unwrap();
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        for (prefix, m) in [
            ("/default", default.clone()),
            ("/status", status.clone()),
            ("/handler", handler.clone()),
        ] {
            cfg.service(
                web::scope(prefix)
                    .wrap(m)
                    .route("/incr", web::get().to(incr))
                    .route("/write", web::get().to(write_only)),
            );
        }
    })
    .await;
    let key = fetch(&format!("{url}/default/incr"), None).await.key();
    let cookie = format!("id={key}");
    store.set_down(true);

    // On save.
    let r = fetch(&format!("{url}/default/write"), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.get("set-cookie").is_none());
    assert_eq!(r.header_values("retry-after"), ["5"]);
    // Surfaced by the handler (the load fails) through SessionError.
    let r = fetch(&format!("{url}/default/incr"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("unavailable"), "{}", r.body);
    assert!(r.headers.get("retry-after").is_some());
    assert!(r.headers.get("set-cookie").is_none());
    // Configured status, on save and from the handler.
    let r = fetch(&format!("{url}/status/write"), None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let r = fetch(&format!("{url}/status/incr"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    // Custom handler, on save and from the handler.
    let r = fetch(&format!("{url}/handler/write"), None).await;
    assert_eq!(r.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(r.body, "custom: true");
    let r = fetch(&format!("{url}/handler/incr"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::IM_A_TEAPOT);

    // Back up: the session survived.
    store.set_down(false);
    let r = fetch(&format!("{url}/default/incr"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "2");
}

#[actix_web::test]
async fn a_handler_that_saves_itself_still_gets_its_cookie() {
    async fn save_new(session: ActixSession) -> Result<&'static str, SessionError> {
        session.insert("n", 1).await?;
        session.save().await?;
        Ok("saved")
    }
    async fn save_existing(session: ActixSession) -> Result<&'static str, SessionError> {
        session
            .set_expiry(Expiry::Idle(Duration::from_secs(7200)))
            .await?;
        session.save().await?;
        Ok("")
    }
    let store = store();
    let m = mw(&store);
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(m.clone())
                .route("/save-new", web::get().to(save_new))
                .route("/save-existing", web::get().to(save_existing))
                .route("/read", web::get().to(read)),
        );
    })
    .await;
    let r = fetch(&format!("{url}/save-new"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let key = r.key();
    let cookie = format!("id={key}");
    assert_eq!(fetch(&format!("{url}/read"), Some(&cookie)).await.body, "1");
    // An existing session saved by the handler: the cookie is re-sent with the new expiry.
    let r = fetch(&format!("{url}/save-existing"), Some(&cookie)).await;
    let sc = r.set_cookie().expect("cookie after the handler's own save");
    assert_eq!(cookie_value(&sc), key);
    let age: u64 = attr_value(&sc, "Max-Age").unwrap().parse().unwrap();
    assert!((7190..=7200).contains(&age), "{sc}");
}

#[actix_web::test]
async fn login_cycle_key_and_logout() {
    async fn login(
        session: ActixSession,
        user: web::Path<String>,
    ) -> Result<&'static str, SessionError> {
        session.login(user.into_inner()).await?;
        Ok("welcome")
    }
    async fn cycle(session: ActixSession) -> Result<&'static str, SessionError> {
        session.cycle_key().await?;
        Ok("rotated")
    }
    async fn logout(session: ActixSession) -> Result<&'static str, SessionError> {
        session.logout().await?;
        Ok("bye")
    }
    async fn whoami(session: ActixSession) -> Result<String, SessionError> {
        Ok(session.user_id().await?.unwrap_or_default())
    }
    let store = store();
    let m = mw(&store);
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(m.clone())
                .route("/login/{user}", web::post().to(login))
                .route("/cycle", web::post().to(cycle))
                .route("/logout", web::post().to(logout))
                .route("/whoami", web::get().to(whoami))
                .route("/incr", web::get().to(incr))
                .route("/read", web::get().to(read)),
        );
    })
    .await;
    let before = fetch(&format!("{url}/incr"), None).await.key();
    let after = post_(&format!("{url}/login/alice"), Some(&before))
        .await
        .key();
    assert_ne!(before, after, "login cycles the key");
    assert_eq!(
        get_(&format!("{url}/whoami"), Some(&after)).await.body,
        "alice"
    );
    assert_eq!(
        get_(&format!("{url}/read"), Some(&after)).await.body,
        "1",
        "data kept"
    );
    assert_eq!(get_(&format!("{url}/whoami"), Some(&before)).await.body, "");
    assert!(store.record(&before).await.is_none());

    // cycle_key: a new key, same user and data.
    let cycled = post_(&format!("{url}/cycle"), Some(&after)).await.key();
    assert_ne!(cycled, after);
    assert_eq!(
        get_(&format!("{url}/whoami"), Some(&cycled)).await.body,
        "alice"
    );

    // Another user on this cookie: Django flushes the session first.
    let bob = post_(&format!("{url}/login/bob"), Some(&cycled))
        .await
        .key();
    assert_eq!(get_(&format!("{url}/whoami"), Some(&bob)).await.body, "bob");
    assert_eq!(
        get_(&format!("{url}/read"), Some(&bob)).await.body,
        "0",
        "flushed"
    );

    // Logout: the row is deleted and the cookie removed.
    let r = post_(&format!("{url}/logout"), Some(&bob)).await;
    assert_eq!(r.body, "bye");
    assert!(r.removes_cookie(), "{r:?}");
    assert_eq!(r.cache_control(), ["private, no-store"]);
    assert!(store.record(&bob).await.is_none());
    assert!(store.inner.list_for_user("bob").await.unwrap().is_empty());
}

#[actix_web::test]
async fn two_middlewares_with_different_names_and_paths_coexist() {
    struct Admin;
    async fn both(shop: ActixSession, admin: ActixSession<Admin>) -> Result<String, SessionError> {
        let s: u64 = shop.get("n").await?.unwrap_or(0) + 1;
        shop.insert("n", s).await?;
        let a: u64 = admin.get("n").await?.unwrap_or(0) + 10;
        admin.insert("n", a).await?;
        Ok(format!("{s} {a}"))
    }
    let store = store();
    let shop = mw(&store);
    let admin = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_cookie_name("admin")
        .with_path("/admin")
        .with_tag::<Admin>()
        .build()
        .unwrap();
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(shop.clone())
                .service(
                    web::scope("/admin")
                        .wrap(admin.clone())
                        .route("/both", web::get().to(both)),
                )
                .route("/incr", web::get().to(incr)),
        );
    })
    .await;
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
    // The shop middleware alone sees only its own session.
    let r = fetch(&format!("{url}/incr"), Some(&format!("id={shop_key}"))).await;
    assert_eq!(r.body, "3");
}

#[actix_web::test]
async fn a_missing_middleware_is_a_clear_500() {
    struct Other;
    async fn wants_other(_: ActixSession<Other>) -> &'static str {
        "unreachable"
    }
    async fn maybe(s: Option<ActixSession<Other>>) -> String {
        format!("{}", s.is_some())
    }
    let store = store();
    let m = mw(&store);
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(m.clone())
                .route("/", web::get().to(wants_other))
                .route("/maybe", web::get().to(maybe)),
        );
    })
    .await;
    let r = fetch(&format!("{url}/"), None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.body.contains("session middleware missing"), "{}", r.body);
    assert_eq!(fetch(&format!("{url}/maybe"), None).await.body, "false");
}

#[actix_web::test]
async fn partitioned_and_same_site_none_force_secure() {
    let store = store();
    let forced = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_secure(false)
        .with_partitioned(true)
        .with_same_site(Some(SameSite::None))
        .build()
        .unwrap();
    let plain = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_secure(false)
        .with_same_site(None)
        .with_http_only(false)
        .build()
        .unwrap();
    let (a, b) = (basic("/forced", forced), basic("/plain", plain));
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        a(cfg);
        b(cfg);
    })
    .await;
    let sc = fetch(&format!("{url}/forced/incr"), None)
        .await
        .set_cookie()
        .unwrap();
    assert!(has_attr(&sc, "Partitioned"), "{sc}");
    assert!(has_attr(&sc, "Secure"), "{sc}");
    assert_eq!(attr_value(&sc, "SameSite").as_deref(), Some("None"));

    let sc = fetch(&format!("{url}/plain/incr"), None)
        .await
        .set_cookie()
        .unwrap();
    assert!(
        !has_attr(&sc, "Secure") && !has_attr(&sc, "HttpOnly"),
        "{sc}"
    );
    assert_eq!(attr_value(&sc, "SameSite"), None);
}

#[actix_web::test]
async fn cookie_prefixes_are_checked_when_the_middleware_is_built() {
    let build = |name: &str| {
        SessionMiddleware::builder(session_memory::MemoryStore::new()).with_cookie_name(name)
    };
    // __Host-: Secure, Path=/, no Domain; in any order of the builder calls.
    let cases = [
        build("__Host-id").with_secure(false).build(),
        build("__Host-id").with_path("/app").build(),
        build("__Host-id").with_domain(Some("example.com")).build(),
        SessionMiddleware::builder(session_memory::MemoryStore::new())
            .with_domain(Some("example.com"))
            .with_cookie_name("__host-id")
            .build(),
    ];
    for case in cases {
        let err = case.unwrap_err();
        assert!(matches!(err, CookieConfigError::HostPrefix { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("__Host- prefix needs Secure, Path=/ and no Domain"),
            "{err}"
        );
    }
    let err = build("__Secure-id").with_secure(false).build().unwrap_err();
    assert!(
        matches!(err, CookieConfigError::SecurePrefix { .. }),
        "{err}"
    );
    // The syntax rules.
    assert!(matches!(
        build("bad name;").build(),
        Err(CookieConfigError::Name(_))
    ));
    assert!(matches!(
        build("id").with_path("app").build(),
        Err(CookieConfigError::Path(_))
    ));
    assert!(matches!(
        build("id").with_domain(Some("exa mple.com")).build(),
        Err(CookieConfigError::Domain(_))
    ));
    // Fine: __Secure- with a path and domain, __Host- with the defaults.
    assert!(build("__Secure-id")
        .with_path("/app")
        .with_domain(Some("example.com"))
        .build()
        .is_ok());

    // A __Host- cookie over the wire: Secure, Path=/, no Domain.
    let store = store();
    let m = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_cookie_name("__Host-id")
        .build()
        .unwrap();
    let url = serve_actix(basic("", m)).await;
    let r = fetch(&format!("{url}/incr"), None).await;
    let sc = &r.set_cookies("__Host-id")[0];
    assert!(has_attr(sc, "Secure"), "{sc}");
    assert_eq!(attr_value(sc, "Path").as_deref(), Some("/"));
    assert_eq!(attr_value(sc, "Domain"), None);
    let key = cookie_value(sc);
    let r = fetch(&format!("{url}/incr"), Some(&format!("__Host-id={key}"))).await;
    assert_eq!(r.body, "2");
}

#[actix_web::test]
async fn device_metadata_is_stored_from_the_connection_or_a_trusted_header() {
    let store = store();
    let from_conn = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_device_metadata(DeviceMetadata::all())
        .build()
        .unwrap();
    let from_header = SessionMiddleware::builder_from_shared_store(shared(&store))
        .with_device_metadata(DeviceMetadata::all().with_ip(IpSource::header("X-Real-IP")))
        .build()
        .unwrap();
    let (a, b, c) = (
        basic("/conn", from_conn),
        basic("/proxy", from_header),
        basic("/none", mw(&store)),
    );
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        a(cfg);
        b(cfg);
        c(cfg);
    })
    .await;

    let long_ua = format!("TestBrowser/1.0 {}", "x".repeat(1000));
    let r = send(
        reqwest::Method::GET,
        &format!("{url}/conn/incr"),
        None,
        &[("user-agent", &long_ua)],
    )
    .await;
    let record = store.record(&r.key()).await.unwrap();
    let ua = record.user_agent.unwrap();
    assert!(ua.starts_with("TestBrowser/1.0 "));
    assert_eq!(ua.len(), session_actix::MAX_USER_AGENT_LEN, "truncated");
    assert_eq!(record.ip.as_deref(), Some("127.0.0.1"), "the peer address");
    let first_active = record.last_active_at.unwrap();

    let r = send(
        reqwest::Method::GET,
        &format!("{url}/proxy/incr"),
        None,
        &[
            ("user-agent", "Other/2"),
            ("x-real-ip", "6.6.6.6, 203.0.113.9"),
        ],
    )
    .await;
    let key = r.key();
    let record = store.record(&key).await.unwrap();
    assert_eq!(record.ip.as_deref(), Some("203.0.113.9"), "the last entry");
    assert!(record.last_active_at.unwrap() >= first_active);

    // A later write from another address updates the stored IP.
    send(
        reqwest::Method::GET,
        &format!("{url}/proxy/incr"),
        Some(&format!("id={key}")),
        &[("x-real-ip", "198.51.100.1")],
    )
    .await;
    let record = store.record(&key).await.unwrap();
    assert_eq!(record.ip.as_deref(), Some("198.51.100.1"));
    assert_eq!(
        record.user_agent.as_deref(),
        Some("Other/2"),
        "kept from the earlier write"
    );

    // Without metadata configured nothing is recorded.
    let r = send(
        reqwest::Method::GET,
        &format!("{url}/none/incr"),
        None,
        &[("user-agent", "UA")],
    )
    .await;
    let record = store.record(&r.key()).await.unwrap();
    assert_eq!((record.user_agent, record.ip), (None, None));
}

#[actix_web::test]
async fn client_errors_still_save_and_set_the_cookie() {
    async fn not_found(session: ActixSession) -> Result<HttpResponse, SessionError> {
        session.insert("n", 5).await?;
        Ok(HttpResponse::NotFound().finish())
    }
    /// A non-session handler error with a 4xx status.
    async fn bad(session: ActixSession) -> Result<&'static str, actix_web::Error> {
        session
            .insert("n", 6)
            .await
            .map_err(actix_web::error::ErrorInternalServerError)?;
        Err(actix_web::error::ErrorBadRequest("bad input"))
    }
    let store = store();
    let m = mw(&store);
    let url = serve_actix(move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(m.clone())
                .route("/404", web::get().to(not_found))
                .route("/bad", web::get().to(bad))
                .route("/read", web::get().to(read)),
        );
    })
    .await;
    let r = fetch(&format!("{url}/404"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let key = r.key();
    assert_eq!(get_(&format!("{url}/read"), Some(&key)).await.body, "5");
    let r = fetch(&format!("{url}/bad"), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(get_(&format!("{url}/read"), Some(&r.key())).await.body, "6");
}

#[actix_web::test]
async fn the_store_behind_the_middleware_is_the_one_given() {
    let store = store();
    let m = mw(&store);
    let dyn_store: Arc<dyn SessionStore> = store.clone();
    assert!(Arc::ptr_eq(m.store(), &dyn_store));
    assert_eq!(m.cookie_name(), "id");
}
