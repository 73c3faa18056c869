//! Regression tests for defects the fuzzers, the soak or the faults found.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use session_core::chrono::{DateTime, Utc};
use session_core::serde_json::json;
use session_core::{Expiry, Session, SessionConfig, EXPIRY_KEY};
use session_memory::MemoryStore;

fn session() -> Session {
    Session::new(
        Arc::new(MemoryStore::new()),
        Arc::new(SessionConfig::default()),
        None,
    )
}

/// fuzz target `session_expiry`, input `"2026-01-15T12:30:00.1234500950"` under
/// `_session_expiry`: it was read with nanoseconds, but `set_expiry` stores microseconds,
/// so re-encoding what was decoded gave another `Expiry` (session-core/src/config.rs,
/// `Expiry::from_map`).
#[tokio::test]
async fn an_expiry_read_with_nanoseconds_reencodes_to_the_same() {
    let s = session();
    s.insert_value(EXPIRY_KEY, json!("2026-01-15T12:30:00.1234500950"))
        .await
        .unwrap();
    let read = s.expiry().await.unwrap();
    let expected: DateTime<Utc> = "2026-01-15T12:30:00.123450Z".parse().unwrap();
    assert_eq!(read, Expiry::At(expected));
    s.set_expiry(read).await.unwrap();
    assert_eq!(s.expiry().await.unwrap(), read);
    assert_eq!(
        s.get_value(EXPIRY_KEY).await.unwrap(),
        Some(json!("2026-01-15T12:30:00.123450+00:00"))
    );
}
