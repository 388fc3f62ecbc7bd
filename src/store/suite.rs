//! One test suite, two stores: every test here runs against SQLite (a temporary file) and
//! against PostgreSQL (a fresh database on `GITEE_RELAY_TEST_PG`; skipped with a message when
//! that is unset, a failure when `CI` is set). Test bodies take a [`Backend`], which opens
//! handles on the test's one database: opening twice is a restart, or a second replica.

use async_trait::async_trait;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::test_db::TestDb;
use super::{
    AttemptRecord, Completion, DeliveryState, IngestWriter, NewEvent, PostgresStore, SqliteStore,
    Store,
};
use crate::gitee::EventKind;

#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// A new store handle on this test's database (migrating it as a relay start does).
    async fn open(&self) -> Arc<dyn Store>;
}

struct SqliteBackend {
    dir: tempfile::TempDir,
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(
            SqliteStore::open(&self.dir.path().join("sub/relay.db"))
                .await
                .unwrap(),
        )
    }
}

struct PostgresBackend {
    url: String,
    pools: Mutex<Vec<sqlx::PgPool>>,
}

#[async_trait]
impl Backend for PostgresBackend {
    async fn open(&self) -> Arc<dyn Store> {
        let store = PostgresStore::connect(&self.url).await.unwrap();
        self.pools.lock().unwrap().push(store.pool.clone());
        Arc::new(store)
    }
}

pub(crate) async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Backend>) -> Fut,
    Fut: Future<Output = ()>,
{
    let backend = SqliteBackend {
        dir: tempfile::tempdir().unwrap(),
    };
    body(Arc::new(backend)).await;
}

pub(crate) async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Backend>) -> Fut,
    Fut: Future<Output = ()>,
{
    TestDb::with(|url| async move {
        let backend = Arc::new(PostgresBackend {
            url,
            pools: Mutex::new(Vec::new()),
        });
        body(backend.clone()).await;
        let pools = std::mem::take(&mut *backend.pools.lock().unwrap());
        for pool in pools {
            pool.close().await;
        }
    })
    .await;
}

/// Declares each suite test once per store, as `store::suite::sqlite::<name>` and
/// `store::suite::postgres::<name>`; the `postgres_only` ones only for PostgreSQL.
macro_rules! suite {
    (both: [$($name:ident),* $(,)?], postgres_only: [$($pg_name:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::on_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::on_postgres(super::$name).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $pg_name() {
                    super::on_postgres(super::$pg_name).await;
                }
            )*
        }
    };
}

suite!(
    both: [
        insert_claim_complete_roundtrip,
        an_expired_lease_makes_the_delivery_due_again,
        retry_and_dead_are_recorded,
        release_makes_leased_work_due_now_and_survives_reopen,
        group_commit_answers_every_writer,
        batch_claim_takes_the_oldest_due_and_release_gives_them_back,
        prune_removes_only_finished_events_past_retention,
        concurrent_claims_from_two_replicas_never_share_a_delivery,
        an_event_keeps_its_fields_and_deliveries_their_order,
        // A SQLite file belongs to one relay process, but a restart can overlap the old one.
        replicas_starting_together_share_one_schema,
        a_large_batch_gives_every_delivery_its_own_event,
    ],
    postgres_only: [],
);

pub(super) fn event(channels: &[&str]) -> NewEvent {
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

fn attempt(at: i64) -> AttemptRecord {
    AttemptRecord {
        started_ms: at,
        duration_ms: 5,
        http_status: Some(200),
        ..Default::default()
    }
}

async fn insert_claim_complete_roundtrip(b: Arc<dyn Backend>) {
    let s = b.open().await;
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

async fn an_expired_lease_makes_the_delivery_due_again(b: Arc<dyn Backend>) {
    let s = b.open().await;
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

async fn retry_and_dead_are_recorded(b: Arc<dyn Backend>) {
    let s = b.open().await;
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

async fn release_makes_leased_work_due_now_and_survives_reopen(b: Arc<dyn Backend>) {
    {
        let s = b.open().await;
        s.insert_events(&[event(&["a"]), event(&["a"])])
            .await
            .unwrap();
        s.claim_next("a", 2_000, 30_000, "crashed")
            .await
            .unwrap()
            .unwrap();
    }
    let s = b.open().await;
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

async fn group_commit_answers_every_writer(b: Arc<dyn Backend>) {
    let s = b.open().await;
    let writer = IngestWriter::spawn(s.clone());
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

async fn batch_claim_takes_the_oldest_due_and_release_gives_them_back(b: Arc<dyn Backend>) {
    let s = b.open().await;
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

async fn prune_removes_only_finished_events_past_retention(b: Arc<dyn Backend>) {
    let s = b.open().await;
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

/// Eight senders on two store handles (two replicas) drain one channel at the same time,
/// by single and batch claims: every delivery is claimed exactly once.
async fn concurrent_claims_from_two_replicas_never_share_a_delivery(b: Arc<dyn Backend>) {
    const DELIVERIES: usize = 60;
    let replicas = [b.open().await, b.open().await];
    let events: Vec<NewEvent> = (0..DELIVERIES).map(|_| event(&["a"])).collect();
    replicas[0].insert_events(&events).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let s = replicas[worker % 2].clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{worker}");
            let mut mine = Vec::new();
            start.wait().await;
            loop {
                let claimed = if worker % 4 == 3 {
                    s.claim_batch("a", 2_000, 60_000, &owner, 3).await.unwrap()
                } else {
                    s.claim_next("a", 2_000, 60_000, &owner)
                        .await
                        .unwrap()
                        .into_iter()
                        .collect()
                };
                if claimed.is_empty() {
                    break;
                }
                for d in claimed {
                    assert!(
                        s.complete(d.id, &owner, &attempt(2_000), &Completion::Delivered)
                            .await
                            .unwrap(),
                        "{owner} lost the lease on delivery {}",
                        d.id
                    );
                    mine.push(d.id);
                }
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for id in task.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "delivery {id} was claimed twice");
        }
    }
    assert_eq!(total, DELIVERIES);
    assert_eq!(
        replicas[1].count_by_state().await.unwrap(),
        vec![(DeliveryState::Delivered, DELIVERIES as i64)]
    );
    for id in seen {
        assert_eq!(replicas[1].attempts(id).await.unwrap().len(), 1);
    }
}

/// Three relays starting at the same moment on an empty database all come up, on one schema.
async fn replicas_starting_together_share_one_schema(b: Arc<dyn Backend>) {
    let (r1, r2, r3) = tokio::join!(b.open(), b.open(), b.open());
    let receipts = r1.insert_events(&[event(&["a"])]).await.unwrap();
    let claimed = r2
        .claim_next("a", 2_000, 30_000, "r2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.event_id, receipts[0].event_id);
    assert!(
        r3.complete(claimed.id, "r2", &attempt(2_000), &Completion::Delivered)
            .await
            .unwrap()
    );
    // A later start finds the schema in place.
    let r4 = b.open().await;
    assert_eq!(
        r4.delivery(claimed.id).await.unwrap().unwrap().state,
        DeliveryState::Delivered
    );
}

/// What goes in comes out: every event field, binary payloads, and deliveries in the order
/// of their channels, with ids growing across a batch.
async fn an_event_keeps_its_fields_and_deliveries_their_order(b: Arc<dyn Backend>) {
    let s = b.open().await;
    let mut first = event(&["x", "y", "z"]);
    first.kind = EventKind::MergeRequest;
    first.is_test = true;
    first.source = "enterprise".into();
    first.received_ms = 1_500;
    first.payload = (0..=255u8).collect();
    let r = s
        .insert_events(&[first.clone(), event(&["y"]), event(&["x"])])
        .await
        .unwrap();
    assert!(r.windows(2).all(|w| w[0].event_id < w[1].event_id));
    assert_eq!(
        r.iter().map(|r| r.deliveries).collect::<Vec<_>>(),
        vec![3, 1, 1]
    );
    let rows = s.deliveries_of_event(r[0].event_id).await.unwrap();
    assert_eq!(
        rows.iter().map(|d| d.channel.as_str()).collect::<Vec<_>>(),
        vec!["x", "y", "z"]
    );
    assert!(rows.iter().all(|d| d.state == DeliveryState::Pending
        && d.attempts == 0
        && d.next_attempt_ms == 1_500
        && d.last_error.is_none()));
    let c = s
        .claim_next("y", 2_000, 30_000, "w")
        .await
        .unwrap()
        .unwrap();
    // The oldest due goes first: the event received at 1_000 before the one at 1_500.
    assert_eq!(c.event_id, r[1].event_id);
    let c = s
        .claim_next("z", 2_000, 30_000, "w")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.channel, "z");
    assert_eq!(c.created_ms, 1_500);
    assert_eq!(c.event.id, r[0].event_id);
    assert_eq!(c.event.source, "enterprise");
    assert_eq!(c.event.kind, EventKind::MergeRequest);
    assert!(c.event.is_test);
    assert_eq!(c.event.received_ms, 1_500);
    assert_eq!(c.event.payload, first.payload);
    let failed = AttemptRecord {
        started_ms: 2_000,
        duration_ms: 7,
        http_status: None,
        reply_excerpt: String::new(),
        request_url: "https://robot.example/send?key=***".into(),
        error: Some("connection refused".into()),
    };
    let retry = Completion::Retry {
        at_ms: 5_000,
        class: "transient",
        error: "connection refused".into(),
    };
    assert!(s.complete(c.id, "w", &failed, &retry).await.unwrap());
    let attempts = s.attempts(c.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].delivery_id, c.id);
    assert_eq!(attempts[0].started_ms, 2_000);
    assert_eq!(attempts[0].duration_ms, 7);
    assert_eq!(attempts[0].http_status, None);
    assert_eq!(attempts[0].outcome, "retry");
    assert_eq!(
        attempts[0].request_url,
        "https://robot.example/send?key=***"
    );
    assert_eq!(attempts[0].error.as_deref(), Some("connection refused"));
    let row = s.delivery(c.id).await.unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Retrying);
    assert_eq!(row.next_attempt_ms, 5_000);
    assert_eq!(row.last_error.as_deref(), Some("connection refused"));
    assert!(s.delivery(i64::MAX).await.unwrap().is_none());
    let mut counts = s.count_by_state().await.unwrap();
    counts.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(
        counts,
        vec![
            (DeliveryState::Pending, 3),
            (DeliveryState::Retrying, 1),
            (DeliveryState::Sending, 1),
        ]
    );
    s.ping().await.unwrap();
}

/// A batch across several statement chunks (150 events: 64 + 64 + 16 + 4 + 1 + 1), each event
/// with its own number of channels: every event gets its own id, in order, and every delivery
/// points at its own event; a second batch continues after the first.
async fn a_large_batch_gives_every_delivery_its_own_event(b: Arc<dyn Backend>) {
    let s = b.open().await;
    let names = ["a", "b", "c"];
    let events: Vec<NewEvent> = (0..150)
        .map(|i| NewEvent {
            payload: format!(r#"{{"n":{i}}}"#).into_bytes(),
            ..event(&names[..i % 3 + 1])
        })
        .collect();
    for round in 0..2 {
        let receipts = s.insert_events(&events).await.unwrap();
        assert_eq!(receipts.len(), events.len());
        assert!(
            receipts
                .windows(2)
                .all(|w| w[1].event_id == w[0].event_id + 1)
        );
        for (i, receipt) in receipts.iter().enumerate() {
            assert_eq!(receipt.deliveries, i % 3 + 1, "round {round}, event {i}");
            let rows = s.deliveries_of_event(receipt.event_id).await.unwrap();
            let channels: Vec<&str> = rows.iter().map(|d| d.channel.as_str()).collect();
            assert_eq!(channels, names[..i % 3 + 1], "round {round}, event {i}");
        }
        // Every "c" delivery carries the payload of an event with 3 channels.
        let claimed = s.claim_batch("c", 2_000, 30_000, "w", 100).await.unwrap();
        assert_eq!(claimed.len(), 50);
        for c in &claimed {
            let body: serde_json::Value = serde_json::from_slice(&c.event.payload).unwrap();
            let n = body["n"].as_u64().unwrap() as usize;
            assert_eq!(n % 3, 2, "round {round}");
            assert_eq!(c.event.id, receipts[n].event_id, "round {round}");
            assert!(
                s.complete(c.id, "w", &attempt(2_000), &Completion::Delivered)
                    .await
                    .unwrap()
            );
        }
    }
}
