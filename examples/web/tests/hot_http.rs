//! One hot session over HTTP: 32 keep-alive connections click the demo's counter (an
//! `update` closure) on ONE session cookie for a few seconds, on every backend this build
//! has. Checked: no 5xx (no error at all: every click answers 303) and no acknowledged
//! increment lost (the final counter equals the number of 303s). Latency is reported
//! (p50/p99), never asserted.
//!
//! `SESSION_HOT_SECONDS` sets the length of each run (default 2). Postgres and Redis runs
//! need `SESSION_TEST_POSTGRES_URL` / `SESSION_TEST_REDIS_URL` when their features are on
//! (`scripts/services.sh` starts the servers): a missing URL fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_kit::{Session, SessionConfig, SessionStore};
use session_web_example::{app, AppOptions};

const CONNECTIONS: usize = 32;

async fn serve(store: Arc<dyn SessionStore>) -> String {
    session_http_testkit::serve(app(store, &AppOptions::default())).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
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

fn seconds() -> Duration {
    let secs = std::env::var("SESSION_HOT_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs.clamp(0.2, 60.0))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn hot_session(backend: &str, store_url: &str) {
    let store = session_kit::connect(store_url).await.expect("store");
    let url = serve(store.clone()).await;
    let first = client()
        .post(format!("{url}/counter"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 303);
    let cookie = session_cookie(&first).expect("a session cookie");

    let deadline = Instant::now() + seconds();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (url, cookie) = (url.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut latencies = Vec::new();
            let mut other_status = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let res = c
                    .post(format!("{url}/counter"))
                    .header("cookie", format!("id={cookie}"))
                    .send()
                    .await;
                match res {
                    Ok(res) if res.status() == 303 => latencies.push(started.elapsed()),
                    Ok(res) => other_status.push(res.status().as_u16()),
                    Err(err) => panic!("request failed: {err}"),
                }
            }
            (latencies, other_status)
        }));
    }
    let mut latencies = Vec::new();
    let mut other = Vec::new();
    for task in tasks {
        let (l, o) = task.await.unwrap();
        latencies.extend(l);
        other.extend(o);
    }
    latencies.sort();
    let acknowledged = latencies.len() as u64 + 1; // and the first click
    let key = session_kit::SessionKey::parse(&cookie).unwrap();
    let check = Session::with_key(store, Arc::new(SessionConfig::default()), Some(key), true);
    let counter = check.get::<u64>("counter").await.unwrap().unwrap_or(0);
    let secs = seconds().as_secs_f64();
    eprintln!(
        "hot session over HTTP [{backend}]: {CONNECTIONS} connections, {secs:.1} s: {} clicks acknowledged ({:.0}/s), \
         other statuses {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, final counter {counter}, lost {}",
        acknowledged,
        acknowledged as f64 / secs,
        other.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        acknowledged as i64 - counter as i64,
    );
    assert!(other.is_empty(), "[{backend}] non-303 answers: {other:?}");
    assert_eq!(
        counter, acknowledged,
        "[{backend}] every acknowledged click must be counted, none more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_session_memory() {
    hot_session("memory", "memory:").await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_session_sqlite() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("hot-{}.sqlite", std::process::id()));
    let url = format!("sqlite:{}", file.display());
    hot_session("sqlite", &url).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_session_postgres() {
    let url = std::env::var("SESSION_TEST_POSTGRES_URL")
        .expect("SESSION_TEST_POSTGRES_URL must be set (scripts/services.sh start)");
    hot_session("postgres", &url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_session_redis() {
    let url = std::env::var("SESSION_TEST_REDIS_URL")
        .expect("SESSION_TEST_REDIS_URL must be set (scripts/services.sh start)");
    hot_session("redis", &url).await;
}
