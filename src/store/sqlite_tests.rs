use super::*;
use crate::store::{AttemptRecord, Completion, DeliveryState, NewEvent, Store};

fn event(channels: &[&str]) -> NewEvent {
    NewEvent {
        source: "gitee".into(),
        kind: EventKind::Push,
        action: "push".into(),
        repo: "acme/app".into(),
        is_test: false,
        received_ms: 1_000,
        payload: br#"{"hook_name":"push_hooks"}"#.to_vec(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
    }
}

async fn store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("sub/relay.db"))
        .await
        .unwrap();
    (s, dir)
}

fn attempt(at: i64) -> AttemptRecord {
    AttemptRecord {
        started_ms: at,
        duration_ms: 5,
        http_status: Some(200),
        ..Default::default()
    }
}

#[tokio::test]
async fn insert_claim_complete_roundtrip() {
    let (s, _dir) = store().await;
    let r = s
        .insert_events(&[event(&["a", "b"]), event(&[])])
        .await
        .unwrap();
    assert_eq!(r[0].deliveries, 2);
    assert_eq!(r[1].deliveries, 0);
    assert!(r[1].event_id > r[0].event_id);

    let c = s
        .claim_next("a", 2_000, 30_000, "w1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.event.payload, br#"{"hook_name":"push_hooks"}"#);
    assert_eq!(c.event.kind, EventKind::Push);
    assert_eq!(c.attempts, 0);
    // Leased: nobody else gets it, and channel b is independent.
    assert!(
        s.claim_next("a", 2_000, 30_000, "w2")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.claim_next("b", 2_000, 30_000, "w2")
            .await
            .unwrap()
            .is_some()
    );

    assert!(
        s.complete(c.id, "w1", &attempt(2_000), &Completion::Delivered)
            .await
            .unwrap()
    );
    let row = s.delivery(c.id).await.unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Delivered);
    assert_eq!(row.attempts, 1);
    assert_eq!(s.attempts(c.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_expired_lease_makes_the_delivery_due_again() {
    let (s, _dir) = store().await;
    s.insert_events(&[event(&["a"])]).await.unwrap();
    let c = s
        .claim_next("a", 2_000, 30_000, "dead-worker")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.next_due_ms("a").await.unwrap(), Some(32_000));
    assert!(
        s.claim_next("a", 31_999, 30_000, "w2")
            .await
            .unwrap()
            .is_none()
    );
    let again = s
        .claim_next("a", 32_000, 30_000, "w2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, c.id);
    // The first owner lost its lease: its completion does not move the row.
    assert!(
        !s.complete(
            c.id,
            "dead-worker",
            &attempt(33_000),
            &Completion::Delivered
        )
        .await
        .unwrap()
    );
    assert_eq!(
        s.delivery(c.id).await.unwrap().unwrap().state,
        DeliveryState::Sending
    );
}

#[tokio::test]
async fn retry_and_dead_are_recorded() {
    let (s, _dir) = store().await;
    s.insert_events(&[event(&["a"])]).await.unwrap();
    let c = s
        .claim_next("a", 2_000, 30_000, "w")
        .await
        .unwrap()
        .unwrap();
    let retry = Completion::Retry {
        at_ms: 9_000,
        class: "transient",
        error: "HTTP 500".into(),
    };
    assert!(
        s.complete(c.id, "w", &attempt(2_000), &retry)
            .await
            .unwrap()
    );
    assert!(
        s.claim_next("a", 8_999, 30_000, "w")
            .await
            .unwrap()
            .is_none()
    );
    let c = s
        .claim_next("a", 9_000, 30_000, "w")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attempts, 1);
    assert_eq!(c.last_retry_class.as_deref(), Some("transient"));
    let dead = Completion::Dead {
        error: "errcode 400101: access_token does not exist".into(),
    };
    s.complete(c.id, "w", &attempt(9_000), &dead).await.unwrap();
    let row = s.delivery(c.id).await.unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Dead);
    assert_eq!(
        row.last_error.as_deref(),
        Some("errcode 400101: access_token does not exist")
    );
    assert!(s.next_due_ms("a").await.unwrap().is_none());
}

#[tokio::test]
async fn release_makes_leased_work_due_now_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    {
        let s = SqliteStore::open(&path).await.unwrap();
        s.insert_events(&[event(&["a"]), event(&["a"])])
            .await
            .unwrap();
        s.claim_next("a", 2_000, 30_000, "crashed")
            .await
            .unwrap()
            .unwrap();
    }
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.release_leases(None, 3_000).await.unwrap(), 1);
    assert!(
        s.claim_next("a", 3_000, 30_000, "w")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.claim_next("a", 3_000, 30_000, "w")
            .await
            .unwrap()
            .is_some()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_s, dir) = store().await;
    let mode = std::fs::metadata(dir.path().join("sub/relay.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn group_commit_answers_every_writer() {
    let (s, _dir) = store().await;
    let s: std::sync::Arc<dyn Store> = std::sync::Arc::new(s);
    let writer = crate::store::IngestWriter::spawn(s.clone());
    let mut handles = Vec::new();
    for _ in 0..50 {
        let w = writer.clone();
        handles.push(tokio::spawn(async move {
            w.insert(event(&["a"])).await.unwrap()
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap().event_id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    let counts = s.count_by_state().await.unwrap();
    assert_eq!(counts, vec![(DeliveryState::Pending, 50)]);
}

#[tokio::test]
async fn batch_claim_takes_the_oldest_due_and_release_gives_them_back() {
    let (s, _dir) = store().await;
    for _ in 0..5 {
        s.insert_events(&[event(&["a"])]).await.unwrap();
    }
    assert_eq!(s.count_due("a", 2_000).await.unwrap(), 5);
    assert_eq!(s.count_due("a", 500).await.unwrap(), 0);
    let batch = s.claim_batch("a", 2_000, 30_000, "w", 3).await.unwrap();
    assert_eq!(batch.len(), 3);
    assert!(batch.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(s.count_due("a", 2_000).await.unwrap(), 2);
    s.release(&[batch[2].id], "w", 2_000).await.unwrap();
    assert_eq!(s.count_due("a", 2_000).await.unwrap(), 3);
    let ids: Vec<i64> = batch[..2].iter().map(|d| d.id).collect();
    assert_eq!(
        s.complete_many(&ids, "w", &attempt(2_000), &Completion::Delivered)
            .await
            .unwrap(),
        2
    );
    for id in ids {
        assert_eq!(
            s.delivery(id).await.unwrap().unwrap().state,
            DeliveryState::Delivered
        );
        assert_eq!(s.attempts(id).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn prune_removes_only_finished_events_past_retention() {
    let (s, _dir) = store().await;
    let r = s
        .insert_events(&[event(&["a"]), event(&["a"]), event(&["a"])])
        .await
        .unwrap();
    let d1 = s
        .claim_next("a", 2_000, 30_000, "w")
        .await
        .unwrap()
        .unwrap();
    s.complete(d1.id, "w", &attempt(2_000), &Completion::Delivered)
        .await
        .unwrap();
    let d2 = s
        .claim_next("a", 2_000, 30_000, "w")
        .await
        .unwrap()
        .unwrap();
    s.complete(
        d2.id,
        "w",
        &attempt(2_000),
        &Completion::Dead { error: "x".into() },
    )
    .await
    .unwrap();
    // Delivered retention passed, dead retention not yet; the third is still pending.
    assert_eq!(s.prune(10_000, 1_000, 100).await.unwrap(), 1);
    assert!(
        s.deliveries_of_event(r[0].event_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.deliveries_of_event(r[1].event_id).await.unwrap().len(), 1);
    assert_eq!(s.deliveries_of_event(r[2].event_id).await.unwrap().len(), 1);
    assert!(s.attempts(d1.id).await.unwrap().is_empty());
    assert_eq!(s.prune(10_000, 10_000, 100).await.unwrap(), 1);
    assert_eq!(s.deliveries_of_event(r[2].event_id).await.unwrap().len(), 1);
}
