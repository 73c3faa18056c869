//! # session-web-example
//!
//! A small axum application showing the session crates in a browser: log in (Django's
//! rules: a new session key, and an empty session when another user was logged in on the
//! cookie), a counter and a cart kept in the session (atomic `update`s, so concurrent
//! clicks lose nothing), a "your devices" page listing the user's sessions with User-Agent,
//! IP and last activity, "log out other devices", and log out; a password change that logs
//! the user's *other* sessions out on their next request (the session auth hash, as
//! Django's `update_session_auth_hash`) while this one stays logged in; and `/metrics`,
//! the store's `session_store_*` metrics in the Prometheus text format.
//!
//! Run it with `cargo run -p session-web-example` and open <http://127.0.0.1:3000>. The
//! store is chosen by `SESSION_STORE_URL` and opened with [`session_kit::connect`] (default
//! `sqlite:web-sessions.sqlite`; `memory:`, `postgres://...` with feature `postgres`,
//! `mysql://...` with `mysql`, `redis://...` with `redis`).
//!
//! ## Session age
//!
//! `SESSION_AGE_SECONDS` (whole seconds, 1 to 400 days; default two weeks) sets
//! [`AppOptions::session_age`], which the app hands to
//! [`SessionConfig::with_idle_timeout`]: Django's `SESSION_COOKIE_AGE`, an idle timeout
//! counted from the last save. Every request that saves the session (a login, a counter or
//! cart write, a password change) sets its expiry to that moment plus the age, and the
//! cookie's `Max-Age` to the age; a request that only reads it (the home page, the devices
//! page) does not move it, as in Django without `SESSION_SAVE_EVERY_REQUEST`. (On top of
//! Django, the library lets a read push the expiry with a cheap touch once it would move by
//! the touch interval, one minute; with an age of a minute or less a live session never
//! gets there, so reads never extend it.) After the age, the session reads as anonymous and
//! empty, its cookie is removed, and a write with the old cookie starts a new, empty
//! session under a new key. `SESSION_AGE_SECONDS=4 cargo run -p session-web-example` shows
//! it in a browser; the soak (`scripts/soak`) runs the app so. A value that is not a whole
//! number of seconds in that range stops the app at startup with a message
//! ([`parse_session_age`]).
//!
//! ## Tests
//!
//! - `cargo test -p session-web-example`: the app over HTTP, no browser needed.
//! - `sh scripts/install-browser.sh && cargo test -p session-web-example --features e2e --test e2e`:
//!   two real headless Chromium browsers driven through chromedriver (W3C WebDriver)
//!   check that login persists across reloads, the cookie value changes at login, both
//!   browsers show on the devices page, "log out other devices" ends the other browser's
//!   session, and logout removes the cookie. It writes a screenshot of the devices page to
//!   `target/e2e/devices.png`. Set `CHROME_BIN` / `CHROMEDRIVER` to use other binaries. A
//!   missing browser fails the test.
//!
//! Passwords are optional: a user name seen for the first time logs in without one, and
//! once its user sets a password (on the home page) that password is needed. The user
//! table lives in memory ([`Users`]); it is a demo of the session model, not of
//! authentication. Forms are protected from cross-site posts by the `SameSite=Lax` cookie.
//!
//! ## Password change and the auth hash
//!
//! Login stores the user's auth hash with the session
//! ([`Session::login_with_auth_hash`](session_kit::Session::login_with_auth_hash)), and the
//! session config asks [`Source`] (the user table) for the current hash on every session
//! load. `POST /password` sets the new password and calls
//! [`update_auth_hash`](session_kit::Session::update_auth_hash) on the current session: it
//! keeps up (its key is rotated too), while every other session of the user still carries
//! the old hash and is logged out by its next request (its cookie removed).
//!
//! ## Metrics
//!
//! With [`AppOptions::metrics`] set ([`metrics_handle`] installs the Prometheus recorder
//! once per process), `GET /metrics` renders what session-core records under its `metrics`
//! feature: `session_store_operations_total{operation,backend,outcome}`,
//! `session_store_operation_duration_seconds`, `session_auth_hash_logouts_total`, ... Keep
//! that route away from the public internet in a real deployment.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use session_kit::{
    AuthUser, DeviceMetadata, HttpSession, IpSource, SessionConfig, SessionError, SessionLayer,
    SessionStore,
};

mod users;

pub use users::{LoginRefused, Source, Users, DEMO_SECRET};

/// The default store URL: a SQLite file in the working directory.
pub const DEFAULT_STORE_URL: &str = "sqlite:web-sessions.sqlite";

/// The environment variable `main` reads the session age from ([`parse_session_age`]).
pub const SESSION_AGE_ENV: &str = "SESSION_AGE_SECONDS";

/// The longest session age [`parse_session_age`] accepts: 400 days, where browsers cap a
/// cookie's `Max-Age` (RFC 6265bis).
pub const MAX_SESSION_AGE: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// Parses a session age given in whole seconds (the value of `SESSION_AGE_SECONDS`): 1 to
/// [`MAX_SESSION_AGE`].
///
/// # Errors
///
/// A message saying what is wrong with the value (not a whole number, zero, too long).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_web_example::parse_session_age;
///
/// assert_eq!(parse_session_age("4"), Ok(Duration::from_secs(4)));
/// assert_eq!(parse_session_age(" 1209600 "), Ok(Duration::from_secs(14 * 24 * 3600)));
/// assert!(parse_session_age("0").is_err());
/// assert!(parse_session_age("4s").is_err());
/// assert!(parse_session_age("-1").is_err());
/// ```
pub fn parse_session_age(value: &str) -> Result<Duration, String> {
    parse_whole_seconds(
        value,
        "the session age",
        MAX_SESSION_AGE,
        "400 days, the longest cookie Max-Age browsers keep",
    )
}

/// Whole seconds from 1 to `max` (`max_is` says what the bound is), or a message naming
/// `what` is wrong with `value`.
fn parse_whole_seconds(
    value: &str,
    what: &str,
    max: Duration,
    max_is: &str,
) -> Result<Duration, String> {
    let secs: u64 = value.trim().parse().map_err(|_| {
        format!(
            "{value:?} is not a whole number of seconds (1 to {})",
            max.as_secs()
        )
    })?;
    if secs == 0 {
        return Err(format!("{what} must be at least 1 second"));
    }
    if secs > max.as_secs() {
        return Err(format!(
            "{secs} s is longer than {} s ({max_is})",
            max.as_secs()
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// The environment variable that sets how often the binary removes expired sessions from
/// its store ([`parse_cleanup_interval`]; default [`DEFAULT_CLEANUP_EVERY`]).
pub const CLEANUP_EVERY_ENV: &str = "SESSION_CLEANUP_SECONDS";

/// How often the binary removes expired sessions by default: every 10 minutes.
pub const DEFAULT_CLEANUP_EVERY: Duration = Duration::from_secs(600);

/// The longest interval [`parse_cleanup_interval`] accepts: a day.
pub const MAX_CLEANUP_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses the interval of the expired-session cleanup, in whole seconds (the value of
/// `SESSION_CLEANUP_SECONDS`): 1 to [`MAX_CLEANUP_EVERY`]. An in-memory store holds every
/// expired session until the cleanup runs, so a short session age wants a short interval.
///
/// # Errors
///
/// A message saying what is wrong with the value (not a whole number, zero, too long).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_web_example::parse_cleanup_interval;
///
/// assert_eq!(parse_cleanup_interval("30"), Ok(Duration::from_secs(30)));
/// assert!(parse_cleanup_interval("0").is_err());
/// assert!(parse_cleanup_interval("86401").is_err());
/// assert!(parse_cleanup_interval("1m").is_err());
/// ```
pub fn parse_cleanup_interval(value: &str) -> Result<Duration, String> {
    parse_whole_seconds(value, "the cleanup interval", MAX_CLEANUP_EVERY, "a day")
}

/// Options of the app.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Send the cookie with `Secure` (default on; browsers accept it on `http://127.0.0.1`
    /// and `http://localhost`).
    pub secure_cookie: bool,
    /// Take the client IP from this header, set by a reverse proxy you trust (such as
    /// `x-real-ip`), instead of the connection's peer address.
    pub trusted_ip_header: Option<axum::http::HeaderName>,
    /// The user table (passwords and auth hashes).
    pub users: Arc<Users>,
    /// Serve `GET /metrics` from this Prometheus recorder ([`metrics_handle`]).
    pub metrics: Option<PrometheusHandle>,
    /// The session age (`SESSION_AGE_SECONDS`): Django's `SESSION_COOKIE_AGE`, an idle
    /// timeout that every save of the session restarts
    /// ([`SessionConfig::with_idle_timeout`]). `None`: the library's default, two weeks.
    pub session_age: Option<Duration>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            secure_cookie: true,
            trusted_ip_header: None,
            users: Arc::new(Users::new()),
            metrics: None,
            session_age: None,
        }
    }
}

/// The process's Prometheus recorder, installed as the `metrics` recorder on the first
/// call (later calls, from any thread, get the same handle).
///
/// # Errors
///
/// The recorder could not be installed (another `metrics` recorder was installed first).
pub fn metrics_handle() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))
        })
        .clone()
}

/// How often [`spawn_metrics_upkeep`] drains the histograms.
pub const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Drains the recorder's histograms into their buckets every `every`, for as long as the
/// returned task runs (abort it to stop).
///
/// `metrics-exporter-prometheus` keeps every histogram sample (one per store operation)
/// until an upkeep drains it; `install_recorder` starts no task of its own. Without this, a
/// process that nobody scrapes grows by about 8 bytes per store operation: the soak saw the
/// demo's RSS climb 14-16 MiB in 10 minutes on every backend, with `/metrics` never read.
/// Call it from within a Tokio runtime.
pub fn spawn_metrics_upkeep(
    handle: PrometheusHandle,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            handle.run_upkeep();
        }
    })
}

#[derive(Clone)]
struct AppState {
    users: Arc<Users>,
}

/// The application's router, with the session layer (User-Agent and client IP recorded).
pub fn app(store: Arc<dyn SessionStore>, options: &AppOptions) -> Router {
    let config = SessionConfig::default()
        // Every session load checks the user's auth hash (a password change elsewhere
        // logs this session out).
        .with_auth_hash_source(Source(options.users.clone()))
        // `AuthUser` sends visitors who are not logged in to the login form.
        .with_login_url("/");
    // `SESSION_AGE_SECONDS`: the idle timeout, restarted by every save.
    let config = match options.session_age {
        Some(age) => config.with_idle_timeout(age),
        None => config,
    };
    let layer = SessionLayer::from_shared_store(store)
        .with_config(config)
        .with_secure(options.secure_cookie)
        .with_device_metadata(match &options.trusted_ip_header {
            Some(header) => DeviceMetadata::all().with_ip(IpSource::header(header)),
            None => DeviceMetadata::all(),
        });
    let router = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/password", post(change_password))
        .route("/counter", post(counter))
        .route("/cart", post(add_to_cart))
        .route("/devices", get(devices))
        .route("/devices/logout-others", post(logout_others))
        .route("/logout", post(logout))
        .layer(layer)
        .with_state(AppState {
            users: options.users.clone(),
        });
    match &options.metrics {
        // Outside the session layer: a scrape neither has nor needs a session.
        Some(handle) => {
            let handle = handle.clone();
            router.route("/metrics", get(move || metrics(handle.clone())))
        }
        None => router,
    }
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(handle: PrometheusHandle) -> Response {
    // Drained here too, so a scrape sees every sample (`spawn_metrics_upkeep` drains the
    // rest of the time).
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        handle.render(),
    )
        .into_response()
}

type Page = Result<Response, SessionError>;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 56rem; margin: 2rem auto; padding: 0 1rem; color: #1d2330; }}
 header {{ display: flex; gap: 1rem; align-items: baseline; border-bottom: 1px solid #ccd; margin-bottom: 1rem; }}
 table {{ border-collapse: collapse; width: 100%; }}
 th, td {{ text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #e3e6ee; vertical-align: top; }}
 tr.current {{ background: #eef6ee; }}
 .ua {{ font-size: .85rem; color: #445; word-break: break-all; }}
 form.inline {{ display: inline; }}
 button {{ padding: .3rem .8rem; }}
 .note {{ color: #2a6f2a; }}
</style></head>
<body><header><h1>{title}</h1><nav><a href="/">Home</a> · <a href="/devices">Your devices</a></nav></header>
{body}
</body></html>"#
    );
    let mut res = Html(html).into_response();
    // Pages depend on the session: never cache them.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `?password=changed` after a password change.
#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    password: Option<String>,
}

async fn home(
    State(state): State<AppState>,
    session: HttpSession,
    Query(q): Query<HomeQuery>,
) -> Page {
    let user = session.user_id().await?;
    let count: u64 = session.get("counter").await?.unwrap_or(0);
    let cart: Vec<String> = session.get("cart").await?.unwrap_or_default();
    let mut body = String::new();
    match &user {
        Some(user) => {
            let _ = write!(
                body,
                r#"<p id="who">Signed in as <strong id="user">{}</strong>.</p>
<form class="inline" method="post" action="/logout"><button id="logout" type="submit">Log out</button></form>"#,
                escape(user)
            );
            if q.password.as_deref() == Some("changed") {
                body.push_str(
                    r#"<p class="note" id="password-changed">Password changed: your other devices are logged out.</p>"#,
                );
            }
            let _ = write!(
                body,
                r#"<h2>Password</h2><form method="post" action="/password"><label>{label} <input id="new-password" name="password" type="password" required maxlength="128"></label>
<button id="change-password" type="submit">Save</button></form>"#,
                label = if state.users.has_password(user) {
                    "New password"
                } else {
                    "Set a password"
                },
            );
        }
        None => body.push_str(
            r#"<p id="who">Not signed in.</p>
<form method="post" action="/login"><label>User name <input id="username" name="username" required maxlength="64"></label>
<label>Password <input id="password" name="password" type="password" maxlength="128" placeholder="if you set one"></label>
<button id="login" type="submit">Log in</button></form>"#,
        ),
    }
    let _ = write!(
        body,
        r#"<h2>Counter</h2><p>You pressed the button <strong id="counter">{count}</strong> times.</p>
<form method="post" action="/counter"><button id="increment" type="submit">+1</button></form>
<h2>Cart</h2><ul id="cart">{}</ul>
<form method="post" action="/cart"><input id="item" name="item" required maxlength="64" placeholder="an item">
<button id="add" type="submit">Add to cart</button></form>"#,
        cart.iter()
            .map(|i| format!("<li>{}</li>", escape(i)))
            .collect::<String>()
    );
    Ok(page("Session demo", &body))
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(state): State<AppState>,
    session: HttpSession,
    Form(form): Form<LoginForm>,
) -> Page {
    let name = form.username.trim();
    if name.is_empty() || name.len() > 64 {
        return Ok((
            StatusCode::BAD_REQUEST,
            "user name must be 1 to 64 characters",
        )
            .into_response());
    }
    // Django's `login()`: a fresh key (session fixation); a session another user was
    // logged in on is flushed first, so the new user sees nothing of theirs (the cart).
    let Ok(auth_hash) = state.users.login(name, &form.password) else {
        return Ok((StatusCode::FORBIDDEN, "wrong password").into_response());
    };
    // With the auth hash of the user's credentials: a later password change elsewhere
    // logs this session out.
    session.login_with_auth_hash(name, auth_hash).await?;
    tracing::info!("user logged in");
    Ok(see_other("/"))
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    password: String,
}

/// Django's `update_session_auth_hash`: the new password's hash goes into this session
/// (which also gets a new key), so it stays logged in; the user's other sessions still
/// carry the old hash and are logged out on their next request. `AuthUser` has loaded the
/// session (and checked its hash) before the password changes.
async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<PasswordForm>,
) -> Page {
    if form.password.is_empty() || form.password.len() > 128 {
        return Ok((
            StatusCode::BAD_REQUEST,
            "password must be 1 to 128 characters",
        )
            .into_response());
    }
    let Some(auth_hash) = state.users.set_password(user.user_id(), &form.password) else {
        // A user this process does not know: the session is stale.
        user.session().logout().await?;
        return Ok(see_other("/"));
    };
    user.session().update_auth_hash(auth_hash).await?;
    tracing::info!("password changed");
    Ok(see_other("/?password=changed"))
}

async fn counter(session: HttpSession) -> Page {
    // Atomic read-modify-write: re-run on fresh data if another request wrote meanwhile.
    session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(see_other("/"))
}

/// The most items a cart holds.
const MAX_CART_ITEMS: usize = 50;

/// The add-to-cart form.
#[derive(Debug, Deserialize)]
pub struct CartForm {
    item: String,
}

async fn add_to_cart(session: HttpSession, Form(form): Form<CartForm>) -> Page {
    let item = form.item.trim();
    if item.is_empty() || item.len() > 64 {
        return Ok((StatusCode::BAD_REQUEST, "item must be 1 to 64 characters").into_response());
    }
    let cart: Vec<String> = session.get("cart").await?.unwrap_or_default();
    if cart.len() >= MAX_CART_ITEMS {
        return Ok((StatusCode::BAD_REQUEST, "the cart is full").into_response());
    }
    // Atomic: if another tab added an item meanwhile, the closure runs again on the fresh
    // cart (so it only computes, and keeps the limit itself).
    let item = item.to_owned();
    session
        .update("cart", move |cart: Option<Vec<String>>| {
            let mut cart = cart.unwrap_or_default();
            if cart.len() < MAX_CART_ITEMS {
                cart.push(item.clone());
            }
            cart
        })
        .await?;
    Ok(see_other("/"))
}

fn ago(at: Option<DateTime<Utc>>) -> String {
    let Some(at) = at else {
        return "unknown".to_owned();
    };
    let secs = (Utc::now() - at).num_seconds().max(0);
    let rel = match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    };
    format!("{rel} ({})", at.format("%Y-%m-%d %H:%M:%S UTC"))
}

/// `?ended=N` after "log out other devices".
#[derive(Debug, Deserialize)]
pub struct DevicesQuery {
    ended: Option<u64>,
}

async fn devices(
    session: HttpSession,
    axum::extract::Query(q): axum::extract::Query<DevicesQuery>,
) -> Page {
    let Some(user) = session.user_id().await? else {
        return Ok(see_other("/"));
    };
    let current = session.key().await;
    let mut sessions = session.store().list_for_user(&user).await?;
    sessions.sort_by_key(|r| std::cmp::Reverse(r.last_active_at));
    let mut rows = String::new();
    for (i, record) in sessions.iter().enumerate() {
        let this = current.as_ref() == Some(&record.key);
        let _ = write!(
            rows,
            r#"<tr class="device{cls}" data-index="{i}"><td>{marker}</td><td class="ua">{ua}</td><td class="ip">{ip}</td><td>{active}</td><td>{created}</td></tr>"#,
            cls = if this { " current" } else { "" },
            marker = if this {
                "<strong>This device</strong>"
            } else {
                "Other device"
            },
            ua = escape(record.user_agent.as_deref().unwrap_or("unknown")),
            ip = escape(record.ip.as_deref().unwrap_or("unknown")),
            active = ago(record.last_active_at),
            created = record.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        );
    }
    let note = q
        .ended
        .map(|n| format!(r#"<p class="note" id="ended">Logged out {n} other device(s).</p>"#))
        .unwrap_or_default();
    let body = format!(
        r#"{note}<p>Sessions of <strong id="user">{user}</strong>: <span id="count">{count}</span></p>
<table id="devices"><thead><tr><th></th><th>Browser (User-Agent)</th><th>IP</th><th>Last active</th><th>Signed in</th></tr></thead>
<tbody>{rows}</tbody></table>
<p><form class="inline" method="post" action="/devices/logout-others"><button id="logout-others" type="submit">Log out other devices</button></form>
<form class="inline" method="post" action="/logout"><button id="logout" type="submit">Log out</button></form></p>"#,
        user = escape(&user),
        count = sessions.len(),
    );
    Ok(page("Your devices", &body))
}

async fn logout_others(session: HttpSession) -> Page {
    let Some(user) = session.user_id().await? else {
        return Ok(see_other("/"));
    };
    let current = session.key().await;
    let ended = session
        .store()
        .delete_for_user(&user, current.as_ref())
        .await?;
    tracing::info!(ended, "logged out other devices");
    Ok(see_other(&format!("/devices?ended={ended}")))
}

async fn logout(session: HttpSession) -> Page {
    session.logout().await?;
    Ok(see_other("/"))
}
