//! What only the SQLite backend promises: its ping notices a database file
//! removed or replaced under it.

#[tokio::test]
async fn a_sqlite_store_whose_file_was_removed_or_replaced_fails_its_ping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ping.db");
    let store = wasmq::store::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    store.store_ping().await.unwrap();
    // Open connections keep working on the removed file; the ping notices.
    std::fs::rename(&path, dir.path().join("moved.db")).unwrap();
    let err = store.store_ping().await.unwrap_err().to_string();
    assert!(err.contains("ping.db") && err.contains("no longer the one opened"), "{err}");
    std::fs::write(&path, b"").unwrap();
    let err = store.store_ping().await.unwrap_err().to_string();
    assert!(err.contains("another file is at its path"), "{err}");
    std::fs::rename(dir.path().join("moved.db"), &path).unwrap();
    store.store_ping().await.expect("the original file is back");
}
