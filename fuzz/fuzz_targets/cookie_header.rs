//! The `Cookie` header parsing shared by the axum (session-tower) and actix layers
//! (`session_http::CookieSettings::find`, reached through `Rules::start` as the layers do):
//! a header that yields no well-formed key causes no store call at all, a well-formed key
//! exactly one `load`, and the key found is text the request sent.
#![no_main]
use std::net::IpAddr;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use session_fuzz::{runtime, CountingStore};
use session_http::{CookieSettings, RequestHead, Rules};

struct Req<'a> {
    cookies: Vec<&'a str>,
}

impl RequestHead for Req<'_> {
    fn header_values(&self, name: &str) -> Vec<&str> {
        if name == "cookie" {
            self.cookies.clone()
        } else {
            Vec::new()
        }
    }
    fn peer_ip(&self) -> Option<IpAddr> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let cookies: Vec<&str> = s.splitn(4, '\n').collect();
    let sent = CookieSettings::default().find(cookies.iter().copied());
    if let Some(key) = &sent.key {
        assert!(sent.sent);
        assert!(cookies.iter().any(|c| c.contains(key.as_str())));
    }
    if !cookies.iter().any(|c| c.contains("id")) {
        assert!(!sent.sent, "a cookie named id found in {cookies:?}");
    }

    let store = CountingStore::shared();
    let rules = Rules::from_shared_store(store.clone() as Arc<dyn session_core::SessionStore>);
    let rt = runtime();
    rt.block_on(async {
        let session = rules
            .start(&Req {
                cookies: cookies.clone(),
            })
            .await;
        assert_eq!(session.cookie_sent(), sent.sent);
        assert_eq!(session.key().await, sent.key);
        let value = session.get_value("user").await.expect("memory store");
        assert!(value.is_none());
    });
    let expected = usize::from(sent.key.is_some());
    assert_eq!(store.loads(), expected, "loads for {cookies:?}");
    assert_eq!(store.calls(), expected, "store calls for {cookies:?}");
});
