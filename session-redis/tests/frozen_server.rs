//! A server that accepts connections and never answers (what a Redis stopped by SIGSTOP
//! looks like: the kernel completes the TCP handshake, nothing replies). Every store call
//! must answer `Unavailable` within the operation timeout, whichever step it was at, and
//! however many calls queue behind one connection being opened. Needs no Redis server.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use session_core::{SessionKey, SessionStore, StoreError};
use session_redis::RedisStore;

/// Accepts connections on a loopback port and holds them open, silent, for as long as the
/// test runs (the thread ends with the process).
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
    });
    format!("redis://{addr}/")
}

/// Runs `n` concurrent loads; returns each one's error and the time it took.
async fn concurrent_loads(store: &RedisStore, n: usize) -> Vec<(StoreError, Duration)> {
    let calls = (0..n).map(|_| async {
        let started = Instant::now();
        let result = store.load(&SessionKey::generate()).await;
        (result, started.elapsed())
    });
    // Polled together in this task, so they share one connection slot as requests do.
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|(r, took)| (r.expect_err("a silent server cannot answer"), took))
        .collect()
}

/// The step timeouts are long (5 s each, 10 s to get a connection); the operation timeout
/// (300 ms) bounds every call, including the ones waiting behind another call's connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_answers_within_the_operation_timeout() {
    let store = RedisStore::builder()
        .url(silent_server())
        .pool_size(1)
        .connect_timeout(Duration::from_secs(5))
        .wait_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_millis(300))
        .build()
        .expect("build");
    // Twice: the second wave finds the slot empty again (nothing connected).
    for wave in 0..2 {
        let results = concurrent_loads(&store, 8).await;
        assert_eq!(results.len(), 8);
        for (err, took) in results {
            assert!(err.is_unavailable(), "wave {wave}: {err}");
            let source = std::error::Error::source(&err).map(ToString::to_string);
            assert!(
                source
                    .as_deref()
                    .is_some_and(|s| s.contains("load") && s.contains("operation timeout")),
                "wave {wave}: the error names the call and the timeout: {err} / {source:?}"
            );
            // 300 ms plus scheduling slack; without the bound each call waited for the
            // 5 s connect (and the later ones for the connects queued before them).
            assert!(took < Duration::from_secs(2), "wave {wave}: took {took:?}");
        }
    }
}

/// Without an explicit operation timeout, the response timeout bounds the whole call, the
/// wait for a connection included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_operation_timeout_is_the_response_timeout() {
    let store = RedisStore::builder()
        .url(silent_server())
        .connect_timeout(Duration::from_secs(5))
        .wait_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_millis(300))
        .build()
        .expect("build");
    for (err, took) in concurrent_loads(&store, 4).await {
        assert!(err.is_unavailable(), "{err}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }
}

#[test]
fn a_zero_operation_timeout_is_a_configuration_error() {
    let err = RedisStore::builder()
        .url("redis://127.0.0.1/")
        .operation_timeout(Duration::ZERO)
        .build()
        .expect_err("zero timeout");
    assert!(matches!(err, StoreError::Config(_)), "{err}");
}
