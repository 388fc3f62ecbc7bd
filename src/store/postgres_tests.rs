//! PostgreSQL-only tests: schema creation races, row locks, and what errors reveal. The
//! behaviour both stores share is tested once for both in `suite.rs`.

use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;

use super::test_db::TestDb;
use super::{NewEvent, PostgresStore, Store, StoreError};
use crate::gitee::EventKind;

fn event(channels: &[&str]) -> NewEvent {
    NewEvent {
        source: "gitee".into(),
        kind: EventKind::Push,
        action: "push".into(),
        repo: "acme/app".into(),
        is_test: false,
        received_ms: 1_000,
        payload: b"{}".to_vec(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
    }
}

/// Replicas whose pools are already connected run `migrate` at the same instant on an empty
/// database, several times over: all succeed and leave one version row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_migrations_on_an_empty_database_all_succeed() {
    for _ in 0..3 {
        TestDb::with(|url| async move {
            const REPLICAS: usize = 4;
            let mut stores = Vec::new();
            for _ in 0..REPLICAS {
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .connect(&url)
                    .await
                    .unwrap();
                // Hold a live connection so nothing but `migrate` stands between the barrier
                // and the first statement.
                let _ = sqlx::query("SELECT 1").execute(&pool).await.unwrap();
                stores.push(Arc::new(PostgresStore { pool }));
            }
            let start = Arc::new(tokio::sync::Barrier::new(REPLICAS));
            let tasks: Vec<_> = stores
                .iter()
                .map(|s| {
                    let (s, start) = (s.clone(), start.clone());
                    tokio::spawn(async move {
                        start.wait().await;
                        s.migrate().await
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
            let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM schema_version")
                .fetch_all(&stores[0].pool)
                .await
                .unwrap();
            assert_eq!(versions, vec![2]);
            stores[0].insert_events(&[event(&["a"])]).await.unwrap();
            for s in &stores {
                s.pool.close().await;
            }
        })
        .await;
    }
}

/// A claim passes over a row another transaction has locked instead of waiting for it.
#[tokio::test]
async fn a_claim_skips_rows_locked_by_another_replica() {
    TestDb::with(|url| async move {
        let s = PostgresStore::connect(&url).await.unwrap();
        let r = s
            .insert_events(&[event(&["a"]), event(&["a"])])
            .await
            .unwrap();
        let oldest: i64 = sqlx::query_scalar("SELECT id FROM deliveries WHERE event_id = $1")
            .bind(r[0].event_id)
            .fetch_one(&s.pool)
            .await
            .unwrap();
        let mut other = s.pool.begin().await.unwrap();
        sqlx::query("SELECT id FROM deliveries WHERE id = $1 FOR UPDATE")
            .bind(oldest)
            .execute(&mut *other)
            .await
            .unwrap();
        let claimed = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            s.claim_next("a", 2_000, 30_000, "w"),
        )
        .await
        .expect("the claim waited for a locked row")
        .unwrap()
        .unwrap();
        assert_eq!(claimed.event_id, r[1].event_id);
        assert!(
            s.claim_next("a", 2_000, 30_000, "w")
                .await
                .unwrap()
                .is_none()
        );
        other.rollback().await.unwrap();
        let claimed = s
            .claim_next("a", 2_000, 30_000, "w")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, oldest);
        s.pool.close().await;
    })
    .await;
}

/// Migrates the database, then marks it as written by a relay of schema `version`.
async fn set_schema_version(url: &str, version: i32) {
    let s = PostgresStore::connect(url).await.unwrap();
    sqlx::query("UPDATE schema_version SET version = $1")
        .bind(version)
        .execute(&s.pool)
        .await
        .unwrap();
    s.pool.close().await;
}

/// A database of schema 1 (before bodies could be stored compressed) is brought up to 2 on
/// connect, so that a relay of schema 1 then refuses it rather than misread its bodies.
#[tokio::test]
async fn an_older_schema_is_brought_up_to_date() {
    TestDb::with(|url| async move {
        set_schema_version(&url, 1).await;
        let s = PostgresStore::connect(&url).await.unwrap();
        let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM schema_version")
            .fetch_all(&s.pool)
            .await
            .unwrap();
        assert_eq!(versions, vec![2]);
        s.pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_schema_newer_than_this_relay_is_refused() {
    TestDb::with(|url| async move {
        set_schema_version(&url, 99).await;
        match PostgresStore::connect(&url).await {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("99"), "{m}"),
            Err(e) => panic!("expected Corrupt, got {e}"),
            Ok(_) => panic!("a newer schema was accepted"),
        }
    })
    .await;
}

/// Connection errors name the server, never the password (neither as written in the URL nor
/// decoded), whatever goes wrong. Needs no server.
#[tokio::test]
async fn connection_errors_do_not_reveal_the_password() {
    let bad = [
        // Nothing listens on port 1.
        "postgres://relay:Pa55%3Aword-xyz@127.0.0.1:1/relay",
        "postgres://relay:Pa55%3Aword-xyz@127.0.0.1:99999/relay",
        "postgres://relay:Pa55%3Aword-xyz@127.0.0.1:1/relay?sslmode=sometimes",
        "postgres://relay:Pa55%3Aword-xyz@no-such-host.invalid/relay",
    ];
    for url in bad {
        let e = match PostgresStore::connect_within(url, Duration::ZERO).await {
            Err(e) => e,
            Ok(_) => panic!("connected with {url}"),
        };
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(
                !shown.contains("Pa55") && !shown.contains("word-xyz"),
                "{shown}"
            );
        }
    }
    let refused = PostgresStore::connect_within(
        "postgres://relay:Pa55word@127.0.0.1:1/relay",
        Duration::from_millis(500),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(refused.contains("127.0.0.1:1 database relay"), "{refused}");
    assert!(refused.to_lowercase().contains("refused"), "{refused}");
}

/// The server's own refusal (here: a database that does not exist) does not quote the URL.
#[tokio::test]
async fn server_errors_do_not_reveal_the_password() {
    TestDb::with(|url| async move {
        let mut url = url::Url::parse(&url).unwrap();
        url.set_password(Some("Pa55word-xyz")).unwrap();
        url.set_path("/no_such_database_here");
        let e = match PostgresStore::connect(url.as_str()).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("connected to a missing database"),
        };
        assert!(e.contains("no_such_database_here"), "{e}");
        assert!(!e.contains("Pa55word"), "{e}");
    })
    .await;
}
