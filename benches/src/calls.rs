//! Store calls made by the `Session` handle, counted with
//! `session_conformance::CountingStore` (the handle logic is the same for every store, so
//! the memory store stands for all of them).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use session_conformance::{CountingStore, StoreCalls};
use session_core::{CookieAction, Session, SessionConfig, SessionStore};
use session_memory::MemoryStore;

/// One counted scenario.
#[derive(Debug, Clone)]
pub struct CallCount {
    pub scenario: String,
    pub requests: u64,
    pub loads: u64,
    pub touches: u64,
    pub writes: u64,
    pub total: u64,
    pub verdict: bool,
    pub target: String,
}

fn snapshot(c: &StoreCalls) -> (u64, u64, u64, u64) {
    let l = c.load.load(Ordering::SeqCst);
    let t = c.touch.load(Ordering::SeqCst);
    let w = c.create.load(Ordering::SeqCst)
        + c.update.load(Ordering::SeqCst)
        + c.delete.load(Ordering::SeqCst)
        + c.delete_at_version.load(Ordering::SeqCst);
    (l, t, w, c.total())
}

fn counted() -> (Arc<dyn SessionStore>, Arc<StoreCalls>) {
    let counting = CountingStore::new(Arc::new(MemoryStore::new()));
    let calls = counting.calls();
    (Arc::new(counting), calls)
}

/// Runs every scenario. Takes about 1.5 s (it waits for a touch interval to pass).
pub async fn run() -> Result<Vec<CallCount>, String> {
    let err = |e: session_core::Error| e.to_string();
    let mut out = Vec::new();
    let config = Arc::new(SessionConfig::default());

    // A live session to send as the cookie.
    let (store, calls) = counted();
    let s = Session::new(store.clone(), config.clone(), None);
    s.insert("user_id", "u1").await.map_err(err)?;
    let CookieAction::Set { key, .. } = s.save().await.map_err(err)? else {
        return Err("login did not set a cookie".into());
    };
    let base = snapshot(&calls);

    // 1. Requests that never touch their session: with a valid cookie, with a hostile
    //    cookie, and with none.
    let n = 1000u64;
    for i in 0..n {
        let cookie = match i % 3 {
            0 => Some(key.as_str()),
            1 => Some("../../etc/passwd"),
            _ => None,
        };
        let s = Session::new(store.clone(), config.clone(), cookie);
        s.save().await.map_err(err)?;
    }
    let after = snapshot(&calls);
    let total = after.3 - base.3;
    out.push(CallCount {
        scenario: "request that never touches its session (valid, hostile or no cookie)".into(),
        requests: n,
        loads: after.0 - base.0,
        touches: after.1 - base.1,
        writes: after.2 - base.2,
        total,
        verdict: total == 0,
        target: "0 store calls".into(),
    });

    // 2. Read-only requests on an idle-expiry session, default touch interval (60 s):
    //    one load each, no touch (the expiry moved less than the interval).
    let base = snapshot(&calls);
    for _ in 0..n {
        let s = Session::new(store.clone(), config.clone(), Some(key.as_str()));
        let _: Option<String> = s.get("user_id").await.map_err(err)?;
        s.save().await.map_err(err)?;
    }
    let after = snapshot(&calls);
    let (loads, touches, writes) = (after.0 - base.0, after.1 - base.1, after.2 - base.2);
    out.push(CallCount {
        scenario: "read-only request, idle expiry, default touch interval (60 s), back to back"
            .into(),
        requests: n,
        loads,
        touches,
        writes,
        total: after.3 - base.3,
        verdict: loads == n && touches <= 1 && writes == 0,
        target: "1 load per request, at most 1 touch overall".into(),
    });

    // 3. Read-only requests spread over time with a short touch interval (200 ms): a
    //    touch only when the expiry would move by at least the interval.
    let short =
        Arc::new(SessionConfig::default().with_touch_interval(Some(Duration::from_millis(200))));
    let base = snapshot(&calls);
    let m = 25u64;
    for _ in 0..m {
        let s = Session::new(store.clone(), short.clone(), Some(key.as_str()));
        let _: Option<String> = s.get("user_id").await.map_err(err)?;
        s.save().await.map_err(err)?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = snapshot(&calls);
    let (loads, touches, writes) = (after.0 - base.0, after.1 - base.1, after.2 - base.2);
    out.push(CallCount {
        scenario: "read-only request every 50 ms for 1.25 s, touch interval 200 ms".into(),
        requests: m,
        loads,
        touches,
        writes,
        total: after.3 - base.3,
        // At most one touch per request, and far fewer than one per request.
        verdict: loads == m && touches >= 1 && touches <= m / 3 && writes == 0,
        target: "1 load per request, at most 1 touch per request, about one per interval".into(),
    });
    Ok(out)
}
