//! The demo's password change (the session auth hash: the other sessions of the user are
//! logged out on their next request, this one stays logged in) and its `/metrics`
//! endpoint, over HTTP.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use session_http_testkit::{post_form, send, serve, Reply};
use session_kit::{MemoryStore, SessionStore};
use session_web_example::{app, metrics_handle, AppOptions};

async fn start(options: &AppOptions) -> (String, Arc<dyn SessionStore>) {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    (serve(app(store.clone(), options)).await, store)
}

async fn home(url: &str, cookie: &str) -> Reply {
    send(reqwest::Method::GET, &format!("{url}/"), Some(cookie), &[]).await
}

/// Logs `user` in from a new browser (tab) and returns its `id=...` cookie.
async fn login(url: &str, user: &str, password: &str) -> String {
    let r = post_form(
        &format!("{url}/login"),
        None,
        &format!("username={user}&password={password}"),
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    r.cookie()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_in_tab_a_logs_out_tab_b_and_keeps_tab_a() {
    let options = AppOptions {
        secure_cookie: false,
        ..AppOptions::default()
    };
    let (url, store) = start(&options).await;
    let a = login(&url, "alice", "").await;
    let b = login(&url, "alice", "").await;
    let bob = login(&url, "bob", "").await;
    for c in [&a, &b] {
        assert!(home(&url, c)
            .await
            .body
            .contains("Signed in as <strong id=\"user\">alice"));
    }
    assert_eq!(store.list_for_user("alice").await.unwrap().len(), 2);

    // Tab A changes the password: it stays logged in, on a new key.
    let r = post_form(&format!("{url}/password"), Some(&a), "password=s3cret").await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.location(), Some("/?password=changed"));
    let a2 = r.cookie();
    assert_ne!(a2, a, "update_auth_hash rotates the key");
    let r = home(&url, &a2).await;
    assert!(
        r.body.contains("Signed in as <strong id=\"user\">alice"),
        "{}",
        r.body
    );
    assert_eq!(r.set_cookie(), None, "tab A keeps its cookie");

    // Tab B's next request: logged out, cookie removed, its session gone.
    let r = home(&url, &b).await;
    assert!(r.body.contains("Not signed in."), "{}", r.body);
    assert!(r.removes_cookie(), "{:?}", r.set_cookie());
    let r = send(
        reqwest::Method::GET,
        &format!("{url}/devices"),
        Some(&b),
        &[],
    )
    .await;
    assert_eq!(
        r.location(),
        Some("/"),
        "the devices page sends it to the login form"
    );
    let left = store.list_for_user("alice").await.unwrap();
    assert_eq!(left.len(), 1, "only tab A's session is left");

    // Tab A stays logged in on later requests; another user is untouched.
    let r = home(&url, &a2).await;
    assert!(r.body.contains("Signed in as <strong id=\"user\">alice"));
    assert!(home(&url, &bob)
        .await
        .body
        .contains("Signed in as <strong id=\"user\">bob"));

    // The new password is needed from now on.
    let r = post_form(
        &format!("{url}/login"),
        None,
        "username=alice&password=nope",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.set_cookie(), None);
    let c = login(&url, "alice", "s3cret").await;
    assert!(home(&url, &c).await.body.contains("alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_who_is_not_logged_in_cannot_change_a_password() {
    let options = AppOptions {
        secure_cookie: false,
        ..AppOptions::default()
    };
    let (url, _store) = start(&options).await;
    let r = post_form(&format!("{url}/password"), None, "password=x").await;
    assert_eq!(r.status, 303, "login required: {r:?}");
    assert_eq!(r.location(), Some("/?next=/password"));
}

/// The value of the sample `name{labels}` in a Prometheus text body (labels in any order).
fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let Some(rest) = l.strip_prefix(name) else {
                return false;
            };
            (rest.starts_with('{') || rest.starts_with(' '))
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_store_operations_after_a_few_requests() {
    let options = AppOptions {
        secure_cookie: false,
        metrics: Some(metrics_handle().unwrap()),
        ..AppOptions::default()
    };
    let (url, _store) = start(&options).await;
    let metrics = || async {
        let r = send(reqwest::Method::GET, &format!("{url}/metrics"), None, &[]).await;
        assert_eq!(r.status, 200);
        assert!(r.header_values("content-type")[0].starts_with("text/plain"));
        assert_eq!(r.set_cookie(), None, "a scrape gets no session");
        r.body
    };
    let ok = |op| [("operation", op), ("backend", "memory"), ("outcome", "ok")];
    let before = metrics().await;
    let created = sample(&before, "session_store_operations_total", &ok("create")).unwrap_or(0.0);

    // A few requests: a counter (create), a login (load, create of the new key, delete of
    // the old one), a page view (load), a second counter (load, update).
    let r = post_form(&format!("{url}/counter"), None, "").await;
    let anon = r.cookie();
    let r = post_form(&format!("{url}/login"), Some(&anon), "username=carol").await;
    let c = r.cookie();
    assert!(home(&url, &c).await.body.contains("carol"));
    post_form(&format!("{url}/counter"), Some(&c), "").await;

    let body = metrics().await;
    let now = sample(&body, "session_store_operations_total", &ok("create")).unwrap();
    assert!(
        now >= created + 2.0,
        "two creates: {created} -> {now}\n{body}"
    );
    for op in ["load", "update"] {
        let n = sample(&body, "session_store_operations_total", &ok(op));
        assert!(n.is_some_and(|n| n >= 1.0), "{op}: {n:?}\n{body}");
    }
    assert!(
        body.contains("session_store_operation_duration_seconds"),
        "the latency histogram: {body}"
    );
    // Labels are fixed strings: no session key (or data) in the body.
    for key in [&anon, &c] {
        let key = &key["id=".len()..];
        assert!(!body.contains(key));
        assert!(!body.contains(&key[..8]));
    }
    assert!(!body.contains("carol"));
}
