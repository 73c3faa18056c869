//! Single-operation latency: our `MemoryStore` against the raw map floor, and the codec.
//!
//! `cargo bench -p session-benches`. Throughput at 32 tasks and the SQL/Redis backends are
//! in the `session-bench` harness (`scripts/bench.sh`), which criterion is not built for.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, Criterion};
use session_benches::ours::encoded;
use session_benches::runner::{key, session_map, TTL_SECS};
use session_core::chrono::{Duration, Utc};
use session_core::{Codec, JsonCodec, Record, SessionKey, SessionStore};
use session_memory::MemoryStore;

const N: u64 = 10_000;

fn keys() -> Vec<SessionKey> {
    (0..N)
        .map(|n| SessionKey::try_from(key(b'p', n)).expect("valid key"))
        .collect()
}

fn memory(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let data = encoded(0);
    let keys = keys();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let raw: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    let expires = Utc::now() + Duration::seconds(TTL_SECS as i64);
    rt.block_on(async {
        for k in &keys {
            let rec = Record::new(k.clone(), data.clone(), expires);
            store.create(&rec).await.expect("create");
            raw.lock()
                .expect("lock")
                .insert(k.as_str().to_owned(), data.clone());
        }
    });
    let mut g = c.benchmark_group("load_hit");
    let mut i = 0usize;
    g.bench_function("ours_memory_store", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            rt.block_on(store.load(black_box(&keys[i])))
                .expect("load")
                .expect("hit")
        })
    });
    g.bench_function("raw_mutex_hashmap", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            // Inside block_on too, so both sides pay the same runtime entry.
            rt.block_on(async {
                raw.lock()
                    .expect("lock")
                    .get(black_box(keys[i].as_str()))
                    .cloned()
                    .expect("hit")
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("update");
    let mut rec = Record::new(keys[0].clone(), data.clone(), expires);
    let mut versions = vec![1u64; keys.len()];
    g.bench_function("ours_memory_store", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            rec.key = keys[i].clone();
            rec.version = versions[i];
            versions[i] = rt.block_on(store.update(black_box(&rec))).expect("update");
        })
    });
    g.bench_function("raw_mutex_hashmap", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            rt.block_on(async {
                if let Some(v) = raw.lock().expect("lock").get_mut(keys[i].as_str()) {
                    v.clone_from(black_box(&data));
                }
            })
        })
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let map = session_map(0);
    let data = JsonCodec.encode(&map).expect("encode");
    let mut g = c.benchmark_group("codec_1kb");
    g.bench_function("json_encode", |b| {
        b.iter(|| JsonCodec.encode(black_box(&map)).expect("encode"))
    });
    g.bench_function("json_decode", |b| {
        b.iter(|| JsonCodec.decode(black_box(&data)).expect("decode"))
    });
    g.finish();
}

criterion_group!(benches, memory, codec);
criterion_main!(benches);
