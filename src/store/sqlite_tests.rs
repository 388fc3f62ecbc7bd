//! SQLite-only tests. The behaviour both stores share is tested once for both in `suite.rs`.

use super::*;

#[cfg(unix)]
#[tokio::test]
async fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let _s = SqliteStore::open(&dir.path().join("sub/relay.db"))
        .await
        .unwrap();
    let mode = std::fs::metadata(dir.path().join("sub/relay.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
