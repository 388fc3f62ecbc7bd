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

/// A new file is switched to WAL and given its schema before the pools open their
/// connections, so opening never fails with "database is locked" — not even when several
/// stores open the same new file at once (a restart overlapping the old process, say), where
/// the switch to WAL finds the file busy and SQLite does not wait. (Five rounds were not
/// enough to catch it every time; forty fail reliably on code without the retry.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_new_file_many_times_at_once_never_finds_it_locked() {
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteStore::open(&path).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            let result = open.await.unwrap();
            assert!(result.is_ok(), "round {round}: {result:?}");
        }
        let store = SqliteStore::open(&path).await.unwrap();
        store.ping().await.unwrap();
        // Every connection of both pools sees the file in WAL mode, though none asks for it.
        for pool in [&store.pool, &store.light] {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal", "round {round}");
        }
    }
}

/// `complete_each` (multi-row statements) leaves exactly what `complete` one by one leaves,
/// for every kind of outcome, and records attempts whose lease was lost without moving them:
/// on a file, where it and `claim_batch` run on the ingest thread, and in memory, where they
/// run on the pool.
#[tokio::test]
async fn complete_each_writes_what_complete_writes_one_by_one() {
    use crate::gitee::EventKind;

    let outcomes = |i: usize| -> (AttemptRecord, Completion) {
        let attempt = AttemptRecord {
            started_ms: 2_000 + i as i64,
            duration_ms: 7,
            http_status: (i % 4 != 3).then_some(200 + i as u16),
            reply_excerpt: format!("reply {i}"),
            request_url: format!("https://robot/{i}?key=***"),
            error: i.is_multiple_of(5).then(|| format!("transport {i}")),
        };
        let completion = match i % 3 {
            0 => Completion::Delivered,
            1 => Completion::Retry {
                at_ms: 9_000 + i as i64,
                class: "transient",
                error: format!("HTTP 50{i}"),
            },
            _ => Completion::Dead {
                error: format!("errcode {i}"),
            },
        };
        (attempt, completion)
    };
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (name, batched) in [
        ("one-by-one.db", false),
        ("batched.db", true),
        (":memory:", true),
    ] {
        let path = match name {
            ":memory:" => std::path::PathBuf::from(name),
            file => dir.path().join(file),
        };
        let s = SqliteStore::open(&path).await.unwrap();
        assert_eq!(s.ingest.is_some(), name != ":memory:");
        let events: Vec<NewEvent> = (0..90)
            .map(|_| NewEvent {
                source: "gitee".into(),
                kind: EventKind::Push,
                action: "push".into(),
                repo: "acme/app".into(),
                is_test: false,
                received_ms: 1_000,
                payload: br#"{"hook_name":"push_hooks"}"#.to_vec(),
                channels: vec!["a".into()],
            })
            .collect();
        s.insert_events(&events).await.unwrap();
        let claimed = s.claim_batch("a", 1_500, 60_000, "w", 85).await.unwrap();
        assert_eq!(claimed.len(), 85);
        // Two deliveries not leased by "w" (one never claimed, one reclaimed by "x").
        let mut done: Vec<(i64, AttemptRecord, Completion)> = claimed
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let (a, c) = outcomes(i);
                (d.id, a, c)
            })
            .collect();
        let unclaimed = s.claim_batch("a", 1_500, 60_000, "x", 5).await.unwrap();
        let (a, c) = outcomes(85);
        done.push((unclaimed[0].id, a, c));
        let moved = if batched {
            s.complete_each("w", &done).await.unwrap()
        } else {
            let mut moved = 0;
            for (id, a, c) in &done {
                moved += u64::from(s.complete(*id, "w", a, c).await.unwrap());
            }
            moved
        };
        assert_eq!(moved, 85);
        let mut rows = Vec::new();
        for id in 1..=90 {
            let d = s.delivery(id).await.unwrap().unwrap();
            let attempts = s.attempts(id).await.unwrap();
            rows.push(format!("{d:?} {attempts:?}"));
        }
        let leases: Vec<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT lease_owner, last_retry_class FROM deliveries ORDER BY id")
                .fetch_all(&s.pool)
                .await
                .unwrap();
        results.push((rows, leases));
    }
    assert_eq!(results[0], results[1], "on the ingest thread");
    assert_eq!(results[0], results[2], "on the pool");
}

/// Under continuous ingest the WAL is still checkpointed completely and started over, so its
/// file stays small instead of growing with everything ever written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_small_under_continuous_ingest() {
    use crate::gitee::EventKind;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    let s = SqliteStore::open(&path).await.unwrap();
    let batch: Vec<NewEvent> = (0..50)
        .map(|_| NewEvent {
            source: "gitee".into(),
            kind: EventKind::Push,
            action: "push".into(),
            repo: "acme/app".into(),
            is_test: false,
            received_ms: 1_000,
            payload: vec![b'x'; 8 * 1024],
            channels: vec!["a".into()],
        })
        .collect();
    let started = std::time::Instant::now();
    let mut written = 0;
    let mut largest = 0;
    while started.elapsed() < Duration::from_millis(1_200) {
        s.insert_events(&batch).await.unwrap();
        written += batch.len() * 8 * 1024;
        let wal = std::fs::metadata(dir.path().join("relay.db-wal")).map_or(0, |m| m.len());
        largest = largest.max(wal);
    }
    eprintln!("{written} bytes written; largest WAL {largest} bytes");
    assert!(written > 10 << 20, "only {written} bytes written");
    assert!(
        largest < (written as u64) / 3,
        "the WAL grew to {largest} bytes for {written} written"
    );
}

/// A file of schema 1 (before bodies could be stored compressed) is brought up to 2 when
/// opened, so that a relay of schema 1 then refuses it rather than misread its bodies; a file
/// of a newer schema is refused with a message naming both versions.
#[tokio::test]
async fn an_older_schema_is_brought_up_to_date_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    let set_version = |v: i64| {
        let path = path.clone();
        async move {
            let s = SqliteStore::open(&path).await.unwrap();
            sqlx::query("UPDATE schema_version SET version = ?")
                .bind(v)
                .execute(&s.pool)
                .await
                .unwrap();
            s.pool.close().await;
            s.light.close().await;
        }
    };
    set_version(1).await;
    let s = SqliteStore::open(&path).await.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_version")
        .fetch_all(&s.pool)
        .await
        .unwrap();
    assert_eq!(versions, vec![2]);
    drop(s);
    set_version(99).await;
    match SqliteStore::open(&path).await {
        Err(StoreError::Corrupt(m)) => {
            assert!(m.contains("99") && m.contains("upgrade the relay"), "{m}")
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

/// The checkpointer looks again soon while writers add to the WAL and backs off, doubling up
/// to a second, while they do not.
#[test]
fn the_checkpointer_backs_off_while_idle_and_returns_when_written() {
    use super::{CHECKPOINT_BUSY, CHECKPOINT_IDLE, next_checkpoint_wait};

    let mut wait = CHECKPOINT_BUSY;
    let mut idle_waits = Vec::new();
    for _ in 0..10 {
        wait = next_checkpoint_wait(wait, false);
        idle_waits.push(wait.as_millis());
    }
    assert_eq!(
        idle_waits,
        vec![20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]
    );
    assert_eq!(wait, CHECKPOINT_IDLE);
    assert_eq!(next_checkpoint_wait(wait, true), CHECKPOINT_BUSY);
}

/// A batch is cut into statement sizes that add up to it, largest first, one statement per
/// set bit below 64 rows.
#[test]
fn batches_are_cut_into_few_statements() {
    for n in 0..300 {
        let sizes: Vec<usize> = chunks(n).collect();
        assert_eq!(sizes.iter().sum::<usize>(), n, "{n}");
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{n}: {sizes:?}");
        assert!(sizes.iter().all(|s| CHUNKS.contains(s)), "{n}: {sizes:?}");
        let expected = n / 64 + (n % 64).count_ones() as usize;
        assert_eq!(sizes.len(), expected, "{n}: {sizes:?}");
    }
    assert_eq!(chunks(7).collect::<Vec<_>>(), vec![4, 2, 1]);
}

use super::super::suite::event as push_event;

/// The file store's ingest thread takes single webhooks and whole batches from one queue:
/// each webhook gets its own event id and deliveries, a batch stays one run of consecutive
/// ids, and every row is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_thread_commits_single_webhooks_and_batches_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(
        SqliteStore::open(&dir.path().join("relay.db"))
            .await
            .unwrap(),
    );
    let queue = s
        .ingest_queue()
        .expect("a file store commits on its own thread");
    let singles: Vec<_> = (0..40)
        .map(|i| {
            let queue = queue.clone();
            let channels: &[&str] = if i % 2 == 0 { &["a", "b"] } else { &["a"] };
            tokio::spawn(async move { queue.insert(push_event(channels)).await })
        })
        .collect();
    let batch = s
        .insert_events(&[push_event(&["a"]), push_event(&[]), push_event(&["b"])])
        .await
        .unwrap();
    let batch_ids: Vec<i64> = batch.iter().map(|r| r.event_id).collect();
    assert_eq!(batch_ids[1], batch_ids[0] + 1);
    assert_eq!(batch_ids[2], batch_ids[0] + 2);
    assert_eq!(
        batch.iter().map(|r| r.deliveries).collect::<Vec<_>>(),
        [1, 0, 1]
    );
    let mut ids = batch_ids.clone();
    for (i, single) in singles.into_iter().enumerate() {
        let receipt = single.await.unwrap().unwrap();
        assert_eq!(receipt.deliveries, if i % 2 == 0 { 2 } else { 1 });
        let rows = s.deliveries_of_event(receipt.event_id).await.unwrap();
        assert_eq!(rows.len(), receipt.deliveries, "event {}", receipt.event_id);
        ids.push(receipt.event_id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 43, "an event id was given twice");
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(events, 43);
}

/// `:memory:` has no file another connection could open: its webhooks are group-committed
/// by the writer task on the pool's one connection, and stored all the same.
#[tokio::test]
async fn an_in_memory_store_commits_through_the_writer_task() {
    let s: Arc<dyn Store> = Arc::new(SqliteStore::open(Path::new(":memory:")).await.unwrap());
    assert!(s.ingest_queue().is_none());
    let writer = super::super::IngestWriter::spawn(s.clone());
    let receipts =
        futures_util::future::join_all((0..5).map(|_| writer.insert(push_event(&["a", "b"]))))
            .await;
    for receipt in receipts {
        let receipt = receipt.unwrap();
        assert_eq!(receipt.deliveries, 2);
        assert_eq!(
            s.deliveries_of_event(receipt.event_id).await.unwrap().len(),
            2
        );
    }
}
