//! # session-actix-example
//!
//! A small actix-web application on the session crates: log in (Django's rules: a new
//! session key, and an empty session when another user was logged in on the cookie), a
//! counter kept in the session with an atomic `update` (concurrent clicks lose nothing),
//! a "your devices" list with User-Agent and IP, and log out.
//!
//! Run it with `cargo run -p session-actix-example` and open <http://127.0.0.1:3001>. The
//! store is in memory; any [`SessionStore`] works the same way
//! ([`SessionMiddleware::from_shared_store`]).
//!
//! There are no passwords: any user name logs in. It is a demo of the session model, not of
//! authentication. Forms are protected from cross-site posts by the `SameSite=Lax` cookie.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use session_actix::{
    ActixSession, CookieConfigError, DeviceMetadata, SessionError, SessionMiddleware,
};
use session_core::SessionStore;

/// The session middleware of the app: device metadata on, and `Secure` as asked (off only
/// for plain-HTTP development on localhost).
///
/// # Errors
///
/// A [`CookieConfigError`] from the cookie settings (none with these).
///
/// # Examples
///
/// ```
/// let store: std::sync::Arc<dyn session_core::SessionStore> = std::sync::Arc::new(session_memory::MemoryStore::new());
/// let mw = session_actix_example::sessions(store, false)?;
/// assert_eq!(mw.cookie_name(), "id");
/// # Ok::<(), session_actix::CookieConfigError>(())
/// ```
pub fn sessions(
    store: Arc<dyn SessionStore>,
    secure: bool,
) -> Result<SessionMiddleware, CookieConfigError> {
    SessionMiddleware::builder_from_shared_store(store)
        .with_secure(secure)
        .with_device_metadata(DeviceMetadata::all())
        .build()
}

/// The routes: `GET /`, `POST /login`, `POST /count`, `POST /logout`, wrapped in
/// `sessions`. Use it in `App::new().configure(..)`.
///
/// # Examples
///
/// ```
/// # actix_web::rt::System::new().block_on(async {
/// use actix_web::{test, App};
/// let store: std::sync::Arc<dyn session_core::SessionStore> = std::sync::Arc::new(session_memory::MemoryStore::new());
/// let mw = session_actix_example::sessions(store, false).unwrap();
/// let app = test::init_service(App::new().configure(session_actix_example::routes(mw))).await;
/// let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
/// assert!(res.status().is_success());
/// # });
/// ```
pub fn routes(sessions: SessionMiddleware) -> impl Fn(&mut web::ServiceConfig) + Clone + Send {
    move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(sessions.clone())
                .route("/", web::get().to(home))
                .route("/login", web::post().to(login))
                .route("/count", web::post().to(count))
                .route("/logout", web::post().to(logout)),
        );
    }
}

/// The login form.
#[derive(Debug, Deserialize)]
struct LoginForm {
    user: String,
}

async fn home(session: ActixSession) -> Result<HttpResponse, SessionError> {
    let mut page = String::from("<!doctype html><title>session-actix example</title>");
    match session.user_id().await? {
        None => page.push_str(
            "<p>Not logged in.</p>\
             <form method=post action=/login><input name=user placeholder=name>\
             <button>Log in</button></form>",
        ),
        Some(user) => {
            let n: u64 = session.get("count").await?.unwrap_or(0);
            let _ = write!(
                page,
                "<p>Hello <b id=user>{}</b>. Counter: <b id=count>{n}</b></p>\
                 <form method=post action=/count><button>+1</button></form>\
                 <form method=post action=/logout><button>Log out</button></form>\
                 <h2>Your devices</h2><ul>",
                escape(&user)
            );
            for record in session.store().list_for_user(&user).await? {
                let _ = write!(
                    page,
                    "<li class=device>{} from {}</li>",
                    escape(record.user_agent.as_deref().unwrap_or("?")),
                    escape(record.ip.as_deref().unwrap_or("?"))
                );
            }
            page.push_str("</ul>");
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page))
}

fn see_home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .finish()
}

async fn login(
    session: ActixSession,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, SessionError> {
    let user = form.into_inner().user;
    let user = user.trim();
    if user.is_empty() {
        return Ok(HttpResponse::BadRequest().body("a user name is needed"));
    }
    session.login(user).await?;
    Ok(see_home())
}

async fn count(session: ActixSession) -> Result<HttpResponse, SessionError> {
    if session.user_id().await?.is_none() {
        return Ok(HttpResponse::Unauthorized().body("log in first"));
    }
    session
        .update("count", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(see_home())
}

async fn logout(session: ActixSession) -> Result<HttpResponse, SessionError> {
    session.logout().await?;
    Ok(see_home())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
