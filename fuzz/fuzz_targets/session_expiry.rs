//! `_session_expiry` (Django's per-session expiry, in the session data): any JSON value
//! under the key, whether set by the application or read from a stored session, gives an
//! `Expiry` without panicking; the expiry date and age are computable and the session
//! saves; and the value it re-encodes to (`set_expiry`) decodes to the same `Expiry`.
//!
//! The first byte picks how the rest becomes the value: 0 a JSON string, 1 any JSON text,
//! 2 an integer of seconds; bit 2 stores it in a record and loads it (the decode path).
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use session_core::chrono::{Duration, Utc};
use session_core::serde_json::{json, Value};
use session_core::{
    Codec, JsonCodec, Record, Session, SessionConfig, SessionKey, SessionStore, EXPIRY_KEY,
};
use session_fuzz::{le_i64, runtime};
use session_memory::MemoryStore;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let value = match mode % 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => return,
        },
        1 => match serde_json::from_slice::<Value>(rest) {
            Ok(v) => v,
            Err(_) => return,
        },
        _ => json!(le_i64(rest)),
    };
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let config = Arc::new(SessionConfig::default());
    runtime().block_on(async {
        let session = if mode & 4 == 0 {
            let s = Session::new(store.clone(), config.clone(), None);
            s.insert_value("n", json!(1)).await.expect("insert");
            s.insert_value(EXPIRY_KEY, value.clone())
                .await
                .expect("insert");
            s
        } else {
            let key = SessionKey::generate();
            let mut map = session_core::SessionMap::new();
            map.insert("n".into(), json!(1));
            map.insert(EXPIRY_KEY.into(), value.clone());
            let data = JsonCodec.encode(&map).expect("encode");
            let record = Record::new(key.clone(), data, Utc::now() + Duration::hours(1));
            store.create(&record).await.expect("create");
            Session::with_key(store.clone(), config.clone(), Some(key), true)
        };
        let expiry = session.expiry().await.expect("expiry");
        let _ = session.expiry_date().await.expect("expiry date");
        let _ = session.expiry_age().await.expect("expiry age");
        let _ = session
            .expire_at_browser_close()
            .await
            .expect("browser close");
        // Re-encode what was decoded: it must decode the same.
        session.set_expiry(expiry).await.expect("set_expiry");
        assert_eq!(
            session.expiry().await.expect("expiry"),
            expiry,
            "from {value:?}"
        );
        // A save never panics (an expiry in the past may remove the session).
        let _ = session.save().await;
        // A fresh session given the same Expiry agrees.
        let fresh = Session::new(store.clone(), config.clone(), None);
        fresh.set_expiry(expiry).await.expect("set_expiry");
        assert_eq!(fresh.expiry().await.expect("expiry"), expiry);
    });
});
