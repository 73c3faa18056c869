//! A custom store in action: sessions as JSON files in a directory.
//!
//! Run it with `cargo run --example custom_store`. The store is
//! `session_examples::FileStore` (examples/src/file_store.rs); `examples/tests/file_store.rs`
//! runs the whole conformance suite against it with one macro call.

use std::sync::Arc;

use session_examples::FileStore;
use session_kit::{CookieAction, Session, SessionConfig, SessionStore};

#[tokio::main]
async fn main() -> Result<(), session_kit::Error> {
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

    let again = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    println!("read back: {:?}", again.get::<String>("greeting").await?);
    // Log in: the key changes at save (the old file is removed with a versioned delete).
    again.login("alice").await?;
    let visits = again
        .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    let CookieAction::Set { key: logged_in, .. } = again.save().await? else {
        unreachable!("a login always sets a new cookie")
    };
    println!(
        "logged in as alice (visit {visits}); old file still there? {}; sessions of alice: {}",
        store.exists(&key).await?,
        store.list_for_user("alice").await?.len()
    );

    let last = Session::new(store.clone(), config, Some(logged_in.as_str()));
    last.logout().await?;
    last.save().await?;
    println!(
        "logged out; file still there? {}",
        store.exists(&logged_in).await?
    );
    Ok(())
}
