//! The cost of the combinators, each against what it wraps, in one run:
//!
//! - `load`: `CachedStore` (a `LocalFront`, and a memory store as front, over SQLite, every load a front hit) against the
//!   memory store alone (goal: ≥ 0.9x its throughput);
//! - `update`: `CachedStore` against SQLite alone (goal: ≥ 0.9x);
//! - `hashed_load` / `hashed_update`: `HashedKeys` over the memory store against the memory
//!   store alone (the cost per operation of hashing keys).
//!
//! `cargo bench -p session-combinators`; `scripts/ratios.sh` (in this crate) prints the ratios
//! from criterion's estimates.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use session_combinators::{CachedStore, HashedKeys, LocalFront};
use session_core::chrono::{TimeDelta, Utc};
use session_core::{Record, SessionKey, SessionStore};
use session_memory::MemoryStore;
use session_sql::SqlStore;

const KEYS: usize = 1_000;

fn data() -> String {
    // About 400 bytes of JSON, like a logged-in session with a cart.
    let items: Vec<String> = (0..12)
        .map(|i| format!("{{\"sku\":\"item-{i:04}\",\"qty\":{i}}}"))
        .collect();
    format!(
        "j1:{{\"_auth_user_id\":\"42\",\"csrf\":\"{}\",\"cart\":[{}]}}",
        SessionKey::generate().as_str(),
        items.join(",")
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A SQLite file of its own per store, so that one store's writes (WAL growth, checkpoints)
/// do not slow the next one down.
async fn sqlite(table: &str) -> SqlStore {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp");
    std::fs::create_dir_all(&dir).expect("target/tmp");
    let path = dir.join(format!(
        "session-combinators-bench-{}-{table}.db",
        std::process::id()
    ));
    let store = SqlStore::builder()
        .table(table)
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open SQLite");
    store.migrate().await.expect("migrate");
    store
}

async fn seeded(store: &dyn SessionStore, data: &str) -> Vec<Record> {
    let mut out = Vec::with_capacity(KEYS);
    for _ in 0..KEYS {
        let r = Record::new(
            SessionKey::generate(),
            data.to_owned(),
            Utc::now() + TimeDelta::hours(2),
        );
        store.create(&r).await.expect("create");
        // Warm the front (a load through the store under test).
        store.load(&r.key).await.expect("load");
        out.push(r);
    }
    out
}

fn bench_load(c: &mut Criterion, group: &str, stores: Vec<(&str, Arc<dyn SessionStore>)>) {
    let rt = runtime();
    let data = data();
    let mut g = c.benchmark_group(group);
    for (name, store) in stores {
        let records = rt.block_on(seeded(&*store, &data));
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % records.len();
                rt.block_on(store.load(black_box(&records[i].key)))
                    .expect("load")
                    .expect("live")
            })
        });
    }
    g.finish();
}

fn bench_update(c: &mut Criterion, group: &str, stores: Vec<(&str, Arc<dyn SessionStore>)>) {
    let rt = runtime();
    let data = data();
    let mut g = c.benchmark_group(group);
    for (name, store) in stores {
        let mut records = rt.block_on(seeded(&*store, &data));
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % records.len();
                let r = &mut records[i];
                r.version = rt.block_on(store.update(black_box(r))).expect("update");
            })
        });
    }
    g.finish();
}

const SECRET: &[u8] = b"benchmark secret, at least 32 bytes long";

fn combinators(c: &mut Criterion) {
    let rt = runtime();
    let (durable_a, durable_b, durable_c, durable_d, durable_e, durable_f) = rt.block_on(async {
        (
            sqlite("bench_load").await,
            sqlite("bench_update_alone").await,
            sqlite("bench_update_cached").await,
            sqlite("bench_load_alone").await,
            sqlite("bench_load_local").await,
            sqlite("bench_update_local").await,
        )
    });
    drop(rt);
    bench_load(
        c,
        "load",
        vec![
            ("memory_alone", Arc::new(MemoryStore::new())),
            (
                "cached_memory_over_sqlite",
                Arc::new(CachedStore::per_process(MemoryStore::new(), durable_a)),
            ),
            (
                "cached_local_over_sqlite",
                Arc::new(CachedStore::per_process(LocalFront::new(), durable_e)),
            ),
            ("sqlite_alone", Arc::new(durable_d)),
        ],
    );
    bench_update(
        c,
        "update",
        vec![
            ("sqlite_alone", Arc::new(durable_b)),
            (
                "cached_memory_over_sqlite",
                Arc::new(CachedStore::per_process(MemoryStore::new(), durable_c)),
            ),
            (
                "cached_local_over_sqlite",
                Arc::new(CachedStore::per_process(LocalFront::new(), durable_f)),
            ),
        ],
    );
    let hashed = || -> Arc<dyn SessionStore> {
        Arc::new(HashedKeys::new(MemoryStore::new(), SECRET).expect("secret"))
    };
    bench_load(
        c,
        "hashed_load",
        vec![
            ("memory_alone", Arc::new(MemoryStore::new())),
            ("hashed_over_memory", hashed()),
        ],
    );
    bench_update(
        c,
        "hashed_update",
        vec![
            ("memory_alone", Arc::new(MemoryStore::new())),
            ("hashed_over_memory", hashed()),
        ],
    );
}

criterion_group!(benches, combinators);
criterion_main!(benches);
