//! The soak's finding on the demo app: two app instances sharing one store (as two
//! processes do) must see each other's logins. Each instance here has its own `AppOptions`
//! (its own user table), as each process has.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use session_core::SessionStore;
use session_memory::MemoryStore;
use session_reliability::http::{self, CookieChange};
use session_web_example::{app, AppOptions};

async fn serve(store: Arc<dyn SessionStore>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(store, &AppOptions::default());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// Found by `scripts/soak` (two processes, any backend): a user logged in through one
/// process was logged out, and the session's data flushed, by the first request the other
/// process served (examples/web/src/users.rs: the auth hash comes from a per-process
/// random secret and salt, and a user the process has not seen has no hash).
#[tokio::test]
async fn a_login_on_one_process_holds_on_the_other() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let a = serve(store.clone()).await;
    let b = serve(store).await;
    let client = http::client(Duration::from_secs(10));

    let counted = http::send(&client, &a, "/counter", None, Some(&[])).await;
    let Some(CookieChange::Set(anon)) = counted.cookie else {
        panic!("no session cookie: {counted:?}")
    };
    let login = http::send(
        &client,
        &a,
        "/login",
        Some(&anon),
        Some(&[("username", "ann")]),
    )
    .await;
    assert_eq!(login.status, 303);
    let Some(CookieChange::Set(key)) = login.cookie else {
        panic!("no session cookie at login: {login:?}")
    };

    let on_a =
        http::parse_home(&http::send(&client, &a, "/", Some(&key), None).await.body).unwrap();
    assert_eq!(on_a.user.as_deref(), Some("ann"));
    let on_b = http::send(&client, &b, "/", Some(&key), None).await;
    let home = http::parse_home(&on_b.body).unwrap();
    assert_eq!(
        home.user.as_deref(),
        Some("ann"),
        "the other process logged the user out"
    );
    assert_eq!(home.counter, 1, "the other process flushed the session");
    assert_ne!(on_b.cookie, Some(CookieChange::Remove));
}
