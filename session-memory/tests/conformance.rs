//! The full conformance suite against `MemoryStore`.

async fn make_store() -> session_memory::MemoryStore {
    session_memory::MemoryStore::new()
}

session_conformance::store_suite!(make_store);

mod one_shard {
    //! The same suite with a single shard: every record contends on one lock.
    async fn make_store() -> session_memory::MemoryStore {
        session_memory::MemoryStore::with_shards(1)
    }
    session_conformance::store_suite!(make_store);
}
