//! A custom store in action: sessions as JSON files in a directory.
//!
//! Run it with `cargo run --example custom_store`. The store is
//! `session_examples::FileStore` (examples/src/file_store.rs); `examples/tests/file_store.rs`
//! runs the whole conformance suite against it with one macro call.

use std::sync::Arc;

use session::{CookieAction, Session, SessionConfig, SessionStore};
use session_examples::FileStore;

#[tokio::main]
async fn main() -> Result<(), session::Error> {
    let dir = std::env::temp_dir().join("session-custom-store-example");
    let store: Arc<dyn SessionStore> = Arc::new(FileStore::open(&dir).await?);
    let config = Arc::new(SessionConfig::default());

    let session = Session::new(store.clone(), config.clone(), None);
    session.insert("greeting", "hello from a file").await?;
    let CookieAction::Set { key, .. } = session.save().await? else {
        unreachable!("a new session with data is always created")
    };
    // `key` displays as a short prefix only: never log a whole session key.
    println!("saved session {key} as a JSON file in {}", dir.display());

    let again = Session::new(store.clone(), config, Some(key.as_str()));
    println!("read back: {:?}", again.get::<String>("greeting").await?);
    again.flush().await?;
    println!("flushed; file still there? {}", store.exists(&key).await?);
    Ok(())
}
