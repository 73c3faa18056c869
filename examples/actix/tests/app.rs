//! The example app on a real socket (127.0.0.1:0), driven with reqwest: login, the
//! counter, the devices list and logout.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use actix_web::{App, HttpServer};
use session_core::SessionStore;

async fn start() -> String {
    let store: Arc<dyn SessionStore> = Arc::new(session_memory::MemoryStore::new());
    let routes =
        session_actix_example::routes(session_actix_example::sessions(store, false).unwrap());
    let server = HttpServer::new(move || App::new().configure(routes.clone()))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
    let url = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    url
}

/// A client that keeps cookies by hand (reqwest's cookie store is a feature we do not
/// need): the `id` cookie from each `Set-Cookie`.
struct Browser {
    client: reqwest::Client,
    cookie: Option<String>,
    user_agent: &'static str,
}

impl Browser {
    fn new(user_agent: &'static str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
            user_agent,
        }
    }

    async fn send(&mut self, method: reqwest::Method, url: &str, form: &str) -> (u16, String) {
        let mut req = self
            .client
            .request(method, url)
            .header("user-agent", self.user_agent)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("id={c}"));
        }
        let res = req.send().await.unwrap();
        for sc in res.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let value = sc.split(';').next().unwrap().strip_prefix("id=").unwrap();
            self.cookie = (!value.is_empty()).then(|| value.to_owned());
        }
        (res.status().as_u16(), res.text().await.unwrap())
    }
}

#[actix_web::test]
async fn login_counter_devices_and_logout() {
    let url = start().await;
    let mut a = Browser::new("BrowserA/1");
    let mut b = Browser::new("BrowserB/2");

    let (status, page) = a.send(reqwest::Method::GET, &format!("{url}/"), "").await;
    assert_eq!(status, 200);
    assert!(page.contains("Not logged in"), "{page}");
    assert_eq!(a.cookie, None, "a visit alone stores nothing");

    // Counting needs a login.
    let (status, _) = a
        .send(reqwest::Method::POST, &format!("{url}/count"), "")
        .await;
    assert_eq!(status, 401);

    let (status, _) = a
        .send(reqwest::Method::POST, &format!("{url}/login"), "user=alice")
        .await;
    assert_eq!(status, 303);
    let first = a.cookie.clone().expect("login sets the cookie");
    for _ in 0..3 {
        let (status, _) = a
            .send(reqwest::Method::POST, &format!("{url}/count"), "")
            .await;
        assert_eq!(status, 303);
    }
    let (_, page) = a.send(reqwest::Method::GET, &format!("{url}/"), "").await;
    assert!(page.contains("<b id=user>alice</b>"), "{page}");
    assert!(page.contains("<b id=count>3</b>"), "{page}");

    // A second device: both listed, with their User-Agent and the peer address.
    b.send(reqwest::Method::POST, &format!("{url}/login"), "user=alice")
        .await;
    let (_, page) = b.send(reqwest::Method::GET, &format!("{url}/"), "").await;
    assert_eq!(page.matches("class=device").count(), 2, "{page}");
    assert!(page.contains("BrowserA/1 from 127.0.0.1"), "{page}");
    assert!(page.contains("BrowserB/2 from 127.0.0.1"), "{page}");
    assert!(
        page.contains("<b id=count>0</b>"),
        "each device its own counter: {page}"
    );

    // Logging in again rotates the key.
    a.send(reqwest::Method::POST, &format!("{url}/login"), "user=alice")
        .await;
    assert_ne!(a.cookie.as_deref(), Some(first.as_str()));

    // Logout removes the cookie; the old key shows a logged-out page.
    let (status, _) = a
        .send(reqwest::Method::POST, &format!("{url}/logout"), "")
        .await;
    assert_eq!(status, 303);
    assert_eq!(a.cookie, None, "removal cookie");
    let (_, page) = b.send(reqwest::Method::GET, &format!("{url}/"), "").await;
    assert_eq!(page.matches("class=device").count(), 1, "{page}");
}
