//! One request to the demo app, and what its response told the client.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};

/// The session cookie's name in the demo app.
pub const COOKIE_NAME: &str = "id";

/// What a `Set-Cookie` for the session cookie said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieChange {
    /// The client must send this key from now on.
    Set(String),
    /// The client must forget the cookie.
    Remove,
}

/// Reads the session cookie's `Set-Cookie` (the last one wins, as in a browser).
///
/// # Examples
///
/// ```
/// use session_reliability::http::{cookie_change, CookieChange};
/// let v = ["id=abc; Path=/; HttpOnly".to_string()];
/// assert_eq!(cookie_change(v.iter().map(String::as_str)), Some(CookieChange::Set("abc".into())));
/// let v = ["id=; Max-Age=0; Path=/".to_string()];
/// assert_eq!(cookie_change(v.iter().map(String::as_str)), Some(CookieChange::Remove));
/// assert_eq!(cookie_change(["other=1"].into_iter()), None);
/// ```
pub fn cookie_change<'a>(set_cookies: impl Iterator<Item = &'a str>) -> Option<CookieChange> {
    let mut change = None;
    for line in set_cookies {
        let mut attrs = line.split(';');
        let Some((name, value)) = attrs.next().and_then(|nv| nv.split_once('=')) else {
            continue;
        };
        if name.trim() != COOKIE_NAME {
            continue;
        }
        let value = value.trim();
        let max_age_zero = attrs.any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a == "max-age=0" || a.starts_with("expires=thu, 01 jan 1970")
        });
        change = Some(if value.is_empty() || max_age_zero {
            CookieChange::Remove
        } else {
            CookieChange::Set(value.to_owned())
        });
    }
    change
}

/// A response, as far as the drivers care.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status (0 when the request failed without a response).
    pub status: u16,
    /// The session cookie's change, if any.
    pub cookie: Option<CookieChange>,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// `Retry-After`, if sent.
    pub retry_after: Option<String>,
    /// The body (HTML pages).
    pub body: String,
    /// Time to the whole response (or to the failure).
    pub elapsed: Duration,
    /// The transport error, when there was no response.
    pub error: Option<String>,
}

impl Reply {
    /// A response arrived with a 3xx status.
    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status)
    }
    /// A server error or no response at all.
    pub fn is_failure(&self) -> bool {
        self.status == 0 || self.status >= 500
    }
}

/// An HTTP client that neither follows redirects nor keeps cookies (the model does).
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .pool_max_idle_per_host(64)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        for (j, s) in [k, v].iter().enumerate() {
            if j == 1 {
                out.push('=');
            }
            for b in s.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// Sends one request: `GET` when `form` is `None`, else a form `POST`.
pub async fn send(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> Reply {
    let started = Instant::now();
    let url = format!("{base}{path}");
    let mut req = match form {
        None => client.get(&url),
        Some(pairs) => client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(pairs)),
    };
    req = req.header("user-agent", "session-reliability/soak");
    if let Some(key) = cookie {
        req = req.header(COOKIE, format!("{COOKIE_NAME}={key}"));
    }
    match req.send().await {
        Err(e) => Reply {
            status: 0,
            cookie: None,
            location: None,
            retry_after: None,
            body: String::new(),
            elapsed: started.elapsed(),
            error: Some(e.to_string()),
        },
        Ok(res) => {
            let status = res.status().as_u16();
            let headers: HeaderMap = res.headers().clone();
            let body = res.text().await.unwrap_or_default();
            let text = |name| {
                headers
                    .get(name)
                    .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            Reply {
                status,
                cookie: cookie_change(
                    headers
                        .get_all(SET_COOKIE)
                        .iter()
                        .filter_map(|v| v.to_str().ok()),
                ),
                location: text(LOCATION),
                retry_after: text(RETRY_AFTER),
                body,
                elapsed: started.elapsed(),
                error: None,
            }
        }
    }
}

/// What the home page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// The signed-in user, if any.
    pub user: Option<String>,
    /// The counter.
    pub counter: u64,
    /// The cart items.
    pub cart: Vec<String>,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// Parses the home page (`GET /`).
///
/// # Examples
///
/// ```
/// let page = r#"<p id="who">Signed in as <strong id="user">u1</strong>.</p>
/// <strong id="counter">3</strong> <ul id="cart"><li>a</li><li>b</li></ul>"#;
/// let home = session_reliability::http::parse_home(page).unwrap();
/// assert_eq!(home.user.as_deref(), Some("u1"));
/// assert_eq!(home.counter, 3);
/// assert_eq!(home.cart, vec!["a", "b"]);
/// ```
pub fn parse_home(body: &str) -> Option<Home> {
    let user = between(body, r#"<strong id="user">"#, "</strong>").map(str::to_owned);
    let counter = between(body, r#"<strong id="counter">"#, "</strong>")?
        .parse()
        .ok()?;
    let cart = between(body, r#"<ul id="cart">"#, "</ul>")?
        .split("</li>")
        .filter_map(|s| s.strip_prefix("<li>"))
        .map(str::to_owned)
        .collect();
    Some(Home {
        user,
        counter,
        cart,
    })
}

/// The session count on the devices page (`GET /devices`).
///
/// # Examples
///
/// ```
/// let page = r#"<p>Sessions of <strong id="user">u</strong>: <span id="count">2</span></p>"#;
/// assert_eq!(session_reliability::http::parse_device_count(page), Some(2));
/// ```
pub fn parse_device_count(body: &str) -> Option<usize> {
    between(body, r#"<span id="count">"#, "</span>")?
        .parse()
        .ok()
}

/// `N` in the `Location: /devices?ended=N` of "log out other devices".
///
/// # Examples
///
/// ```
/// assert_eq!(session_reliability::http::parse_ended("/devices?ended=3"), Some(3));
/// ```
pub fn parse_ended(location: &str) -> Option<usize> {
    location.split_once("ended=")?.1.parse().ok()
}
