//! The example app over HTTP (no browser): login cycles the key, devices, log out others.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use session_kit::{MemoryStore, SessionStore};
use session_web_example::{app, AppOptions};

async fn serve(store: Arc<dyn SessionStore>) -> String {
    session_http_testkit::serve(app(store, &AppOptions::default())).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("id="))
        .map(|v| v.split(';').next().unwrap()["id=".len()..].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_devices_and_logout_others_over_http() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let url = serve(store.clone()).await;
    let c = client();

    // Anonymous counter, then login: the key changes, the counter survives.
    let res = c.post(format!("{url}/counter")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let anon = session_cookie(&res).unwrap();
    let res = c
        .post(format!("{url}/login"))
        .header("cookie", format!("id={anon}"))
        .header("user-agent", "Device-A")
        .form(&[("username", "alice")])
        .send()
        .await
        .unwrap();
    let a = session_cookie(&res).unwrap();
    assert_ne!(a, anon, "login cycles the key");
    let home = c
        .get(&url)
        .header("cookie", format!("id={a}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains(r#"<strong id="user">alice</strong>"#));
    assert!(home.contains(r#"<strong id="counter">1</strong>"#));

    // A second device.
    let res = c
        .post(format!("{url}/login"))
        .header("user-agent", "Device-B <script>")
        .form(&[("username", "alice")])
        .send()
        .await
        .unwrap();
    let b = session_cookie(&res).unwrap();
    let devices = c
        .get(format!("{url}/devices"))
        .header("cookie", format!("id={a}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        devices.contains(r#"<span id="count">2</span>"#),
        "{devices}"
    );
    assert!(devices.contains("Device-A") && devices.contains("Device-B &lt;script&gt;"));
    assert!(devices.contains("127.0.0.1"));
    assert_eq!(store.list_for_user("alice").await.unwrap().len(), 2);

    // Log out the others from A; B's next request finds no session and loses its cookie.
    let res = c
        .post(format!("{url}/devices/logout-others"))
        .header("cookie", format!("id={a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/devices?ended=1");
    let res = c
        .get(&url)
        .header("cookie", format!("id={b}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        session_cookie(&res).as_deref(),
        Some(""),
        "removal cookie for B"
    );
    assert!(res.text().await.unwrap().contains("Not signed in"));

    // Log out A: logout removes the row and the cookie.
    let res = c
        .post(format!("{url}/logout"))
        .header("cookie", format!("id={a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(session_cookie(&res).as_deref(), Some(""));
    assert!(store.list_for_user("alice").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_store_urls_are_clear_errors() {
    let err = session_kit::connect("ftp://x").await.err().unwrap();
    assert!(
        matches!(&err, session_kit::ConnectError::UnknownScheme { scheme } if scheme == "ftp"),
        "{err}"
    );
    #[cfg(not(feature = "redis"))]
    {
        let err = session_kit::connect("redis://127.0.0.1")
            .await
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                session_kit::ConnectError::FeatureDisabled {
                    feature: "redis",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert!(session_kit::connect("memory:").await.is_ok());
}

/// Issue 10 item 4 in the demo: log in as alice, add to the cart, log in as bob with
/// alice's cookie: bob gets a new key and an empty cart, and alice's session is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_as_another_user_does_not_show_the_previous_users_cart() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let url = serve(store.clone()).await;
    let c = client();
    let login = |cookie: Option<String>, user: &'static str| {
        let mut req = c.post(format!("{url}/login")).form(&[("username", user)]);
        if let Some(cookie) = cookie {
            req = req.header("cookie", format!("id={cookie}"));
        }
        async move { session_cookie(&req.send().await.unwrap()).unwrap() }
    };
    let home = |cookie: String| {
        let req = c.get(&url).header("cookie", format!("id={cookie}"));
        async move { req.send().await.unwrap().text().await.unwrap() }
    };

    let alice = login(None, "alice").await;
    let res = c
        .post(format!("{url}/cart"))
        .header("cookie", format!("id={alice}"))
        .form(&[("item", "alice's-secret-gift")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(home(alice.clone())
        .await
        .contains("<li>alice&#39;s-secret-gift</li>"));

    // The same user again (a step-up): a new key, the cart kept.
    let alice = login(Some(alice), "alice").await;
    assert!(home(alice.clone())
        .await
        .contains("alice&#39;s-secret-gift"));

    let bob = login(Some(alice.clone()), "bob").await;
    assert_ne!(bob, alice);
    let page = home(bob).await;
    assert!(page.contains(r#"<strong id="user">bob</strong>"#), "{page}");
    assert!(page.contains(r#"<ul id="cart"></ul>"#), "{page}");
    assert!(!page.contains("secret-gift"), "{page}");
    assert!(store.list_for_user("alice").await.unwrap().is_empty());
}

/// Issue 10 item 3 in the demo: 64 concurrent `POST /counter` with one cookie all succeed
/// and the counter shows exactly 64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_counter_clicks_are_all_counted() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let url = serve(store).await;
    let c = client();
    let res = c.post(format!("{url}/counter")).send().await.unwrap();
    let key = session_cookie(&res).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..63 {
        let req = c
            .post(format!("{url}/counter"))
            .header("cookie", format!("id={key}"));
        tasks.spawn(async move { req.send().await.unwrap().status() });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 303);
    }
    let home = c
        .get(&url)
        .header("cookie", format!("id={key}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains(r#"<strong id="counter">64</strong>"#),
        "{home}"
    );
}
