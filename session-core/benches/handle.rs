//! Handle-level latency on the memory store: what one request's session costs, including
//! the per-store-operation tracing span (and metrics, with `--features metrics`).
//!
//! `cargo bench -p session-core --bench handle`. Run it with no subscriber (the default:
//! spans are disabled) and compare with `SESSION_BENCH_SUBSCRIBER=info` (a subscriber that
//! filters the DEBUG spans out) or `=debug` (spans enabled, written to a sink).

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use session_core::{CookieAction, Session, SessionConfig, SessionKey, SessionStore};
use session_memory::MemoryStore;

fn subscriber() -> Option<tracing::Dispatch> {
    let level = match std::env::var("SESSION_BENCH_SUBSCRIBER").ok()?.as_str() {
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => return None,
    };
    let sub = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::sink)
        .finish();
    Some(tracing::Dispatch::new(sub))
}

fn handle(c: &mut Criterion) {
    let dispatch = subscriber();
    let _guard = dispatch.as_ref().map(tracing::dispatcher::set_default);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let config = Arc::new(SessionConfig::default().with_touch_interval(None));
    let key: SessionKey = rt.block_on(async {
        let s = Session::new(store.clone(), config.clone(), None);
        s.insert("user", "alice").await.expect("insert");
        s.insert("cart", vec!["apple", "pear"])
            .await
            .expect("insert");
        match s.save().await.expect("save") {
            CookieAction::Set { key, .. } => key,
            other => panic!("{other:?}"),
        }
    });

    let mut g = c.benchmark_group("handle");
    // One load.
    g.bench_function("read", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = Session::with_key(store.clone(), config.clone(), Some(key.clone()), true);
                let v: Option<String> = s.get("user").await.expect("get");
                s.finish().await.expect("finish");
                black_box(v)
            })
        })
    });
    // One load and one compare-and-swap update.
    g.bench_function("read_modify_write", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = Session::with_key(store.clone(), config.clone(), Some(key.clone()), true);
                let n = s
                    .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                    .await
                    .expect("update");
                s.finish().await.expect("finish");
                black_box(n)
            })
        })
    });
    // One create (then the row is deleted, so the store does not grow).
    g.bench_function("create_then_delete", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = Session::new(store.clone(), config.clone(), None);
                s.insert("k", 1).await.expect("insert");
                s.finish().await.expect("finish");
                s.flush().await.expect("flush");
            })
        })
    });
    g.finish();
}

criterion_group!(benches, handle);
criterion_main!(benches);
