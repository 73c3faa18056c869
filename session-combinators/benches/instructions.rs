//! A fixed amount of work per store, for instruction counts under callgrind (which the
//! noise of a shared machine does not move, unlike wall-clock figures):
//!
//! ```text
//! cargo bench -p session-combinators --bench instructions --no-run
//! scripts/instructions.sh     # runs each case under valgrind --tool=callgrind
//! ```
//!
//! `instructions <case> <n>` seeds 100 sessions (loading each once, to warm a front), then
//! runs `n` operations; the count per operation is the difference between two `n`, divided.
//! Cases: `load_memory`, `load_cached_memory` (the encoded format in a MemoryStore front),
//! `load_cached_local` (the typed in-process front), `update_sqlite`, `update_cached_local`,
//! `update_cached_memory`.

use std::hint::black_box;

use session_combinators::{CachedStore, LocalFront};
use session_core::chrono::{TimeDelta, Utc};
use session_core::{Record, SessionKey, SessionStore};
use session_memory::MemoryStore;
use session_sql::SqlStore;

const KEYS: usize = 100;

fn data() -> String {
    let items: Vec<String> = (0..12)
        .map(|i| format!("{{\"sku\":\"item-{i:04}\",\"qty\":{i}}}"))
        .collect();
    format!(
        "j1:{{\"_auth_user_id\":\"42\",\"csrf\":\"{}\",\"cart\":[{}]}}",
        SessionKey::generate().as_str(),
        items.join(",")
    )
}

async fn sqlite(case: &str) -> SqlStore {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp");
    std::fs::create_dir_all(&dir).expect("target/tmp");
    let path = dir.join(format!(
        "session-combinators-instr-{}-{case}.db",
        std::process::id()
    ));
    let store = SqlStore::builder()
        .table("instr")
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open SQLite");
    store.migrate().await.expect("migrate");
    store
}

async fn run(store: &dyn SessionStore, update: bool, n: usize) {
    let data = data();
    let mut records = Vec::with_capacity(KEYS);
    for _ in 0..KEYS {
        let r = Record::new(
            SessionKey::generate(),
            data.clone(),
            Utc::now() + TimeDelta::hours(2),
        )
        .with_user(Some("42"));
        store.create(&r).await.expect("create");
        store.load(&r.key).await.expect("load");
        records.push(r);
    }
    for i in 0..n {
        let r = &mut records[i % KEYS];
        if update {
            r.version = store.update(black_box(r)).await.expect("update");
        } else {
            black_box(store.load(black_box(&r.key)).await.expect("load"));
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let case = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store: Box<dyn SessionStore> = match case.as_str() {
            "load_memory" | "update_memory" => Box::new(MemoryStore::new()),
            "load_cached_memory" | "update_cached_memory" => Box::new(CachedStore::per_process(
                MemoryStore::new(),
                sqlite(&case).await,
            )),
            "load_cached_local" | "update_cached_local" => Box::new(CachedStore::per_process(
                LocalFront::new(),
                sqlite(&case).await,
            )),
            "update_sqlite" => Box::new(sqlite(&case).await),
            // No case: nothing to measure (`cargo bench` runs every bench target).
            _ => return,
        };
        run(&*store, case.starts_with("update"), n).await;
    });
}
