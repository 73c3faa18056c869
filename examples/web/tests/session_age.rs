//! `SESSION_AGE_SECONDS` / `AppOptions::session_age`: Django's `SESSION_COOKIE_AGE`, an idle
//! timeout restarted by every save (reads do not move it), and the startup error for a value
//! that cannot be used.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use session_kit::{MemoryStore, SessionStore};
use session_web_example::{app, AppOptions};

/// The age the tests run the app with: short, but far above a request's time on a busy
/// machine.
const AGE: Duration = Duration::from_secs(2);

async fn serve(age: Duration) -> String {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let options = AppOptions {
        session_age: Some(age),
        ..AppOptions::default()
    };
    session_http_testkit::serve(app(store, &options)).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The session cookie's `Set-Cookie` line, if any.
fn set_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("id="))
}

fn key_of(line: &str) -> String {
    line.split(';').next().unwrap()["id=".len()..].to_owned()
}

async fn post(c: &reqwest::Client, url: &str, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = c.post(format!("{url}{path}")).form(&[("username", "ann")]);
    if let Some(key) = key {
        req = req.header("cookie", format!("id={key}"));
    }
    req.send().await.unwrap()
}

async fn home(c: &reqwest::Client, url: &str, key: &str) -> (Option<String>, String) {
    let res = c
        .get(url)
        .header("cookie", format!("id={key}"))
        .send()
        .await
        .unwrap();
    (set_cookie(&res), res.text().await.unwrap())
}

fn counter(page: &str) -> u64 {
    let from = page.find(r#"<strong id="counter">"#).unwrap() + r#"<strong id="counter">"#.len();
    page[from..from + page[from..].find('<').unwrap()]
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_keep_a_session_alive_and_it_expires_after_the_age_without_them() {
    let url = serve(AGE).await;
    let c = client();
    let res = post(&c, &url, "/login", None).await;
    let line = set_cookie(&res).unwrap();
    assert!(line.contains("Max-Age=2"), "{line}");
    let key = key_of(&line);

    // Writes spaced 60% of the age apart keep it past twice the age.
    for n in 1..=3 {
        tokio::time::sleep(AGE.mul_f64(0.6)).await;
        let res = post(&c, &url, "/counter", Some(&key)).await;
        assert_eq!(res.status(), 303);
        let line = set_cookie(&res).unwrap();
        assert_eq!(key_of(&line), key, "write {n} kept the key");
        assert!(
            line.contains("Max-Age=2"),
            "each save restarts the age: {line}"
        );
    }
    let (cookie, page) = home(&c, &url, &key).await;
    assert_eq!(cookie, None, "a read sets no cookie");
    assert!(page.contains(r#"<strong id="user">ann</strong>"#), "{page}");
    assert_eq!(counter(&page), 3);

    // Idle past the age: anonymous, empty, the cookie removed.
    tokio::time::sleep(AGE + Duration::from_millis(300)).await;
    let (cookie, page) = home(&c, &url, &key).await;
    assert!(page.contains("Not signed in"), "{page}");
    assert_eq!(counter(&page), 0);
    assert!(cookie.unwrap().contains("Max-Age=0"));

    // A write with the old cookie starts a new, empty session under a new key.
    let res = post(&c, &url, "/counter", Some(&key)).await;
    assert_eq!(res.status(), 303);
    let new = key_of(&set_cookie(&res).unwrap());
    assert_ne!(new, key, "the expired key is not brought back");
    let (_, page) = home(&c, &url, &new).await;
    assert!(page.contains("Not signed in"), "{page}");
    assert_eq!(counter(&page), 1);
    let (_, page) = home(&c, &url, &key).await;
    assert_eq!(counter(&page), 0, "the old key stays dead");
}

/// Django's rule: only a save moves the expiry; reads spaced closer than the age do not keep
/// the session alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_do_not_extend_a_session() {
    let url = serve(AGE).await;
    let c = client();
    let res = post(&c, &url, "/counter", None).await;
    let key = key_of(&set_cookie(&res).unwrap());
    tokio::time::sleep(AGE.mul_f64(0.6)).await;
    let (cookie, page) = home(&c, &url, &key).await;
    assert_eq!(cookie, None);
    assert_eq!(counter(&page), 1, "still live within the age");
    tokio::time::sleep(AGE.mul_f64(0.6)).await;
    let (cookie, page) = home(&c, &url, &key).await;
    assert_eq!(counter(&page), 0, "expired the age after its save: {page}");
    assert!(cookie.unwrap().contains("Max-Age=0"));
}

/// Runs the binary with `var=value` and checks it stops before listening, with exit status 2
/// and a message naming the variable and saying `says`.
fn refused(var: &str, value: &str, says: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_web"))
        .env(var, value)
        .env("SESSION_STORE_URL", "memory:")
        // Never reached: the settings are read before the store is opened or a port bound.
        .env("PORT", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
    assert!(stderr.contains(var), "{value}: {stderr}");
    assert!(stderr.contains(says), "{value}: {stderr}");
    assert!(!stderr.contains("panicked"), "{value}: {stderr}");
}

#[test]
fn an_unusable_session_age_stops_the_binary_with_a_message() {
    for (value, says) in [
        ("abc", "is not a whole number of seconds"),
        ("0", "at least 1 second"),
        ("-3", "is not a whole number of seconds"),
        ("99999999999", "400 days"),
    ] {
        refused("SESSION_AGE_SECONDS", value, says);
    }
}

#[test]
fn an_unusable_cleanup_interval_stops_the_binary_with_a_message() {
    for (value, says) in [
        ("abc", "is not a whole number of seconds"),
        ("0", "at least 1 second"),
        ("86401", "a day"),
    ] {
        refused("SESSION_CLEANUP_SECONDS", value, says);
    }
}
