//! The soak's expiry model end to end, against two instances of the demo app sharing one
//! `MemoryStore` (as two processes share a store): with the age the app runs with it finds
//! nothing wrong and sees sessions expire; told a shorter age than the app's (the app then
//! serves sessions the model knows have expired, as a store returning expired data would),
//! it reports them.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::SessionStore;
use session_memory::MemoryStore;
use session_reliability::http;
use session_reliability::model::{run_group_with, Global, GroupOptions, Traffic};
use session_web_example::{app, AppOptions};

async fn serve(store: Arc<dyn SessionStore>, age: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = AppOptions {
        session_age: Some(age),
        ..AppOptions::default()
    };
    let router = app(store, &options);
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

/// Runs `groups` users × 2 clients for `seconds` against two app instances with session
/// age `app_age`, the model told `model_age`.
async fn run(app_age: Duration, model_age: Duration, seconds: u64, groups: u64) -> Global {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let urls = vec![
        serve(store.clone(), app_age).await,
        serve(store, app_age).await,
    ];
    let global = Global::new(false);
    let traffic = Traffic {
        http: http::client(Duration::from_secs(10)),
        urls: Arc::new(urls),
        global: global.clone(),
        deadline: Instant::now() + Duration::from_secs(seconds),
        // Less load than the soak's closed loop: the test shares the machine.
        think: Duration::from_millis(2),
    };
    let options = GroupOptions {
        session_age: Some(model_age),
    };
    let tasks: Vec<_> = (0..groups)
        .map(|g| {
            tokio::spawn(run_group_with(
                traffic.clone(),
                options,
                format!("user{g}"),
                2,
                100 + g,
            ))
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut g = global.lock().unwrap();
    eprintln!(
        "app age {app_age:?}, model age {model_age:?}: {} requests, {} acked writes, {} expired, {} kept alive, {} ended, {} dead-key probes, {} violations",
        g.requests, g.acked_writes, g.expired, g.kept_alive, g.keys_dead, g.dead_probes, g.violation_count
    );
    std::mem::take(&mut *g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_sees_sessions_expire_and_finds_nothing_wrong() {
    let age = Duration::from_secs(2);
    let g = run(age, age, 9, 6).await;
    assert_eq!(g.violation_count, 0, "{:#?}", g.violations);
    assert_eq!(g.failures(), 0, "{:?}", g.statuses);
    assert!(g.expired > 0, "no session expired in 9 s with a 2 s age");
    assert!(g.acked_writes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_serving_sessions_past_their_age_is_caught() {
    // The app keeps sessions 6 s; the model expects them gone after 2 s.
    let g = run(Duration::from_secs(6), Duration::from_secs(2), 7, 4).await;
    assert!(g.violation_count > 0, "expired data was accepted");
    assert!(
        g.violations
            .iter()
            .any(|v| v.starts_with("expired data returned")
                || v.starts_with("an expired session")
                || v.contains("resurrected")),
        "{:#?}",
        g.violations
    );
}
