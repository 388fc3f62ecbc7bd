//! Throwaway PostgreSQL databases for tests (unit and integration): each test gets its own
//! database on the server named by `GITEE_RELAY_TEST_PG`, so tests run in parallel, and drops
//! it at the end. `.ci/postgres.sh` starts such a server. Not used by the relay itself.

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use futures_util::FutureExt;

/// A superuser URL such as `postgres://postgres@127.0.0.1:5432/postgres`.
pub const ENV: &str = "GITEE_RELAY_TEST_PG";

/// The server URL from [`ENV`]. When it is unset: panics if `CI` is set (the PostgreSQL tests
/// must run there), otherwise says once that they are skipped and returns None.
pub fn server_url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!("PostgreSQL tests must run in CI: {ENV} is not set");
            }
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                // Straight to stderr: the test harness captures `eprintln!` of passing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: PostgreSQL tests need {ENV} (see .ci/run)"
                );
            });
            None
        }
    }
}

/// One test's database, created empty.
pub struct TestDb {
    server: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Creates `t_<random>` on the server; None when PostgreSQL tests are skipped.
    pub async fn create() -> Option<TestDb> {
        let server = server_url()?;
        let name = format!("t_{:016x}", fastrand::u64(..));
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {ENV}: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = admin.close().await;
        let mut url =
            url::Url::parse(&server).unwrap_or_else(|e| panic!("{ENV} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));
        Some(TestDb {
            server,
            name,
            url: url.into(),
        })
    }

    /// A URL for this database, with the server's user and options.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, ending any connection still open on it.
    pub async fn drop_db(self) {
        let mut admin = PgConnection::connect(&self.server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {ENV}: {e}"));
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot drop the test database {}: {e}", self.name));
        let _ = admin.close().await;
    }

    /// Runs `body` with a fresh database and drops it afterwards, also when `body` panics
    /// (the panic goes on). Does nothing when PostgreSQL tests are skipped.
    pub async fn with<F, Fut>(body: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let outcome = AssertUnwindSafe(body(db.url.clone())).catch_unwind().await;
        db.drop_db().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}
