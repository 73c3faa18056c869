//! The custom example store passes the whole conformance suite (it implements the five
//! required methods, the user index and expired cleanup; the suite prints NOT EXERCISED for
//! any capability a store lacks).

async fn make_store() -> session_examples::FileStore {
    let dir = std::env::temp_dir().join(format!(
        "session-file-store-{}",
        session_kit::SessionKey::generate().as_str()
    ));
    session_examples::FileStore::open(dir)
        .await
        .expect("temporary directory")
}

session_conformance::store_suite!(make_store);

#[tokio::test]
async fn a_corrupt_file_is_a_clear_error_not_a_panic() {
    use session_kit::SessionStore;
    let dir = std::env::temp_dir().join(format!(
        "session-file-store-{}",
        session_kit::SessionKey::generate().as_str()
    ));
    let store = session_examples::FileStore::open(&dir).await.expect("dir");
    let key = session_kit::SessionKey::generate();
    tokio::fs::write(dir.join(format!("{}.json", key.as_str())), b"{not json")
        .await
        .expect("write");
    let err = store
        .load(&key)
        .await
        .expect_err("corrupt file must be an error");
    assert!(
        matches!(err, session_kit::StoreError::CorruptRecord { .. }),
        "{err}"
    );
    tokio::fs::remove_dir_all(&dir).await.ok();
}
