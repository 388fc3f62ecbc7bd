//! The admin queries, run against SQLite (a temporary file) and PostgreSQL (a fresh database on
//! `GITEE_RELAY_TEST_PG`; skipped with a message when unset, a failure when `CI` is set).

use std::sync::Arc;

use super::*;
use crate::store::test_db::TestDb;
use crate::store::{AttemptRecord, Completion, NewEvent};

trait Both: Store + AdminStore {}
impl<T: Store + AdminStore> Both for T {}

async fn each_backend<F, Fut>(body: F)
where
    F: Fn(Arc<dyn Both>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("relay.db"))
        .await
        .unwrap();
    body(Arc::new(sqlite)).await;
    TestDb::with(|url| async move {
        let pg = PostgresStore::connect(&url).await.unwrap();
        let pool = pg.pool.clone();
        body(Arc::new(pg)).await;
        pool.close().await;
    })
    .await;
}

fn event(source: &str, kind: EventKind, repo: &str, at: i64, channels: &[&str]) -> NewEvent {
    NewEvent {
        source: source.into(),
        kind,
        action: "push".into(),
        repo: repo.into(),
        is_test: false,
        received_ms: at,
        payload: format!(r#"{{"repo":"{repo}","password":"pw"}}"#).into_bytes(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
    }
}

/// Sends the channel's oldest due delivery with the given outcome.
async fn finish(store: &dyn Both, channel: &str, at: i64, completion: Completion) -> i64 {
    let claimed = store
        .claim_next(channel, at, 60_000, "t")
        .await
        .unwrap()
        .expect("a due delivery");
    let attempt = AttemptRecord {
        started_ms: at,
        duration_ms: 12,
        http_status: Some(200),
        reply_excerpt: "{}".into(),
        request_url: "https://robot/send?access_token=***".into(),
        error: None,
    };
    assert!(
        store
            .complete(claimed.id, "t", &attempt, &completion)
            .await
            .unwrap()
    );
    claimed.id
}

#[tokio::test]
async fn events_are_listed_newest_first_with_filters_and_pages() {
    each_backend(|store| async move {
        let mut ids = Vec::new();
        for (i, (source, kind, repo)) in [
            ("gitee", EventKind::Push, "acme/app"),
            ("gitee", EventKind::Issue, "acme/app"),
            ("other", EventKind::Push, "acme/web"),
            ("gitee", EventKind::Push, "zeta/a_b"),
            ("gitee", EventKind::Note, "acme/app"),
        ]
        .into_iter()
        .enumerate()
        {
            let r = store
                .insert_events(&[event(source, kind, repo, 1_000 + i as i64, &["ding"])])
                .await
                .unwrap();
            ids.push(r[0].event_id);
        }
        let all = store
            .list_events(&EventFilter::default(), Page::new(None, 50))
            .await
            .unwrap();
        let got: Vec<i64> = all.items.iter().map(|e| e.id).collect();
        let mut want = ids.clone();
        want.reverse();
        assert_eq!(got, want);
        assert_eq!(all.next_before, None);
        assert!(all.items[0].payload_bytes > 10);

        let filter =
            |source: Option<&str>, kind: Option<EventKind>, repo: Option<&str>| EventFilter {
                source: source.map(str::to_owned),
                kind,
                repo: repo.map(str::to_owned),
            };
        let ids_of = |p: Paged<EventSummary>| p.items.iter().map(|e| e.id).collect::<Vec<_>>();
        let s = store.clone();
        let list = |f: EventFilter| {
            let s = s.clone();
            async move { s.list_events(&f, Page::new(None, 50)).await.unwrap() }
        };
        assert_eq!(
            ids_of(list(filter(Some("other"), None, None)).await),
            vec![ids[2]]
        );
        assert_eq!(
            ids_of(list(filter(None, Some(EventKind::Push), None)).await),
            vec![ids[3], ids[2], ids[0]]
        );
        assert_eq!(
            ids_of(
                list(filter(
                    Some("gitee"),
                    Some(EventKind::Push),
                    Some("acme/app")
                ))
                .await
            ),
            vec![ids[0]]
        );
        assert_eq!(
            ids_of(list(filter(None, None, Some("acme/*"))).await),
            vec![ids[4], ids[2], ids[1], ids[0]]
        );
        // `_` is literal in a repository pattern, not LIKE's one-character wildcard.
        assert_eq!(
            ids_of(list(filter(None, None, Some("zeta/a_*"))).await),
            vec![ids[3]]
        );
        assert!(
            list(filter(None, None, Some("zeta/aXb")))
                .await
                .items
                .is_empty()
        );
        assert!(
            list(filter(None, None, Some("zeta/a%")))
                .await
                .items
                .is_empty()
        );

        // Pages of two, following the cursor to the end.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .list_events(&EventFilter::default(), Page::new(before, 2))
                .await
                .unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(|e| e.id));
            match page.next_before {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        assert_eq!(seen, want);

        let record = store.event(ids[2]).await.unwrap().unwrap();
        assert_eq!(record.summary.source, "other");
        assert_eq!(record.summary.repo, "acme/web");
        assert!(
            String::from_utf8(record.payload)
                .unwrap()
                .contains("acme/web")
        );
        assert!(store.event(i64::MAX).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn deliveries_are_filtered_by_channel_state_and_event() {
    each_backend(|store| async move {
        let a = store
            .insert_events(&[event(
                "gitee",
                EventKind::Push,
                "acme/app",
                1_000,
                &["ding", "slack"],
            )])
            .await
            .unwrap()[0]
            .event_id;
        let b = store
            .insert_events(&[event(
                "gitee",
                EventKind::Issue,
                "acme/web",
                2_000,
                &["ding"],
            )])
            .await
            .unwrap()[0]
            .event_id;
        // The oldest ding delivery is delivered, the slack one dead.
        let delivered = finish(&*store, "ding", 5_000, Completion::Delivered).await;
        let dead = finish(
            &*store,
            "slack",
            6_000,
            Completion::Dead {
                error: "errcode 310000: keywords not in content".into(),
            },
        )
        .await;

        let list = |f: DeliveryFilter| {
            let s = store.clone();
            async move { s.list_deliveries(&f, Page::new(None, 50)).await.unwrap() }
        };
        let all = list(DeliveryFilter::default()).await;
        assert_eq!(all.items.len(), 3);
        assert!(
            all.items.windows(2).all(|w| w[0].id > w[1].id),
            "newest first"
        );

        let ding = list(DeliveryFilter {
            channel: Some("ding".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(ding.items.len(), 2);
        assert!(ding.items.iter().all(|d| d.channel == "ding"));

        let dead_rows = list(DeliveryFilter {
            state: Some(DeliveryState::Dead),
            ..Default::default()
        })
        .await;
        assert_eq!(dead_rows.items.len(), 1);
        let d = &dead_rows.items[0];
        assert_eq!((d.id, d.event_id, d.channel.as_str()), (dead, a, "slack"));
        assert_eq!(d.attempts, 1);
        assert_eq!(d.kind, EventKind::Push);
        assert_eq!(d.repo, "acme/app");
        assert!(d.last_error.as_deref().unwrap().contains("310000"));

        let of_b = list(DeliveryFilter {
            event_id: Some(b),
            ..Default::default()
        })
        .await;
        assert_eq!(of_b.items.len(), 1);
        assert_eq!(of_b.items[0].state, DeliveryState::Pending);
        assert_eq!(of_b.items[0].kind, EventKind::Issue);

        let one = store.delivery_summary(delivered).await.unwrap().unwrap();
        assert_eq!(one.state, DeliveryState::Delivered);
        assert_eq!(one.event_id, a);
        assert!(store.delivery_summary(i64::MAX).await.unwrap().is_none());

        let page = store
            .list_deliveries(&DeliveryFilter::default(), Page::new(None, 2))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        let rest = store
            .list_deliveries(&DeliveryFilter::default(), Page::new(page.next_before, 2))
            .await
            .unwrap();
        assert_eq!(rest.items.len(), 1);
        assert_eq!(rest.next_before, None);
    })
    .await;
}

#[tokio::test]
async fn a_finished_delivery_is_redelivered_as_a_new_pending_one() {
    each_backend(|store| async move {
        store
            .insert_events(&[event(
                "gitee",
                EventKind::Push,
                "acme/app",
                1_000,
                &["ding"],
            )])
            .await
            .unwrap();
        let queued = store
            .list_deliveries(&DeliveryFilter::default(), Page::new(None, 1))
            .await
            .unwrap()
            .items[0]
            .id;
        match store.redeliver(queued, 2_000).await {
            Err(RedeliverError::StillQueued { id, state }) => {
                assert_eq!((id, state), (queued, "pending"))
            }
            other => panic!("{other:?}"),
        }
        let dead = finish(
            &*store,
            "ding",
            3_000,
            Completion::Dead {
                error: "bad token".into(),
            },
        )
        .await;
        assert_eq!(dead, queued);
        let again = store.redeliver(dead, 4_000).await.unwrap();
        assert!(again.id > dead);
        assert_eq!(again.state, DeliveryState::Pending);
        assert_eq!(again.attempts, 0);
        assert_eq!(again.channel, "ding");
        assert_eq!(again.next_attempt_ms, 4_000);
        assert_eq!(again.last_error, None);
        // The dispatcher sees it as due work.
        let claimed = store
            .claim_next("ding", 4_000, 1_000, "t")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, again.id);
        assert_eq!(
            claimed.event.payload,
            store.event(again.event_id).await.unwrap().unwrap().payload
        );
        // The original keeps its history.
        assert_eq!(store.attempts(dead).await.unwrap().len(), 1);
        assert!(matches!(
            store.redeliver(i64::MAX, 5_000).await,
            Err(RedeliverError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn queue_counts_and_channel_activity() {
    each_backend(|store| async move {
        for at in [1_000, 2_000, 3_000] {
            store
                .insert_events(&[event(
                    "gitee",
                    EventKind::Push,
                    "acme/app",
                    at,
                    &["ding", "lark"],
                )])
                .await
                .unwrap();
        }
        assert!(store.channel_activity().await.unwrap().is_empty());
        finish(&*store, "ding", 10_000, Completion::Delivered).await;
        let failed = finish(
            &*store,
            "ding",
            11_000,
            Completion::Retry {
                at_ms: 99_000,
                class: "transient",
                error: "HTTP 502 bad gateway".into(),
            },
        )
        .await;
        finish(
            &*store,
            "lark",
            12_000,
            Completion::Dead {
                error: "code 19021: sign match fail".into(),
            },
        )
        .await;

        let counts = store.queue_counts().await.unwrap();
        let count = |channel: &str, state: DeliveryState| {
            counts
                .iter()
                .find(|c| c.channel == channel && c.state == state)
                .map_or(0, |c| c.count)
        };
        assert_eq!(count("ding", DeliveryState::Delivered), 1);
        assert_eq!(count("ding", DeliveryState::Retrying), 1);
        assert_eq!(count("ding", DeliveryState::Pending), 1);
        assert_eq!(count("lark", DeliveryState::Dead), 1);
        assert_eq!(count("lark", DeliveryState::Pending), 2);
        assert_eq!(counts.iter().map(|c| c.count).sum::<i64>(), 6);
        // Each group's oldest delivery, by when its webhook came: the oldest are sent first.
        let oldest = |channel: &str, state: DeliveryState| {
            counts
                .iter()
                .find(|c| c.channel == channel && c.state == state)
                .map(|c| c.oldest_created_ms)
        };
        assert_eq!(oldest("ding", DeliveryState::Delivered), Some(1_000));
        assert_eq!(oldest("ding", DeliveryState::Retrying), Some(2_000));
        assert_eq!(oldest("ding", DeliveryState::Pending), Some(3_000));
        assert_eq!(oldest("lark", DeliveryState::Dead), Some(1_000));
        assert_eq!(oldest("lark", DeliveryState::Pending), Some(2_000));

        let activity = store.channel_activity().await.unwrap();
        assert_eq!(activity.len(), 2);
        let ding = activity.iter().find(|a| a.channel == "ding").unwrap();
        assert_eq!(ding.last_delivered_ms, Some(10_000));
        let err = ding.last_error.as_ref().unwrap();
        assert_eq!((err.delivery_id, err.at_ms), (failed, 11_000));
        assert_eq!(err.error, "HTTP 502 bad gateway");
        let lark = activity.iter().find(|a| a.channel == "lark").unwrap();
        assert_eq!(lark.last_delivered_ms, None);
        assert!(lark.last_error.as_ref().unwrap().error.contains("19021"));
    })
    .await;
}

#[test]
fn repository_globs_become_escaped_like_patterns() {
    assert_eq!(like_pattern("acme/*"), "acme/%");
    assert_eq!(like_pattern("a_b%c\\d*"), "a\\_b\\%c\\\\d%");
    assert_eq!(Page::new(None, 0).limit, 1);
    assert_eq!(Page::new(None, 10_000).limit, MAX_PAGE);
}

/// A body stored compressed (as the ingress stores it) reads back exactly as received through
/// claims and the admin API, which reports the body's length, not the stored one; a row written
/// uncompressed (before compression existed) reads back as it is; a damaged compressed row is
/// reported as damage, never panicked on.
#[tokio::test]
async fn compressed_payloads_read_back_as_received_and_damage_is_reported() {
    each_backend(|store| async move {
        let body = crate::samples::find("push")
            .unwrap()
            .body
            .as_bytes()
            .to_vec();
        let stored = crate::store::payload_codec::encode(&body);
        assert!(stored.len() < body.len() / 2);
        let with = |payload: Vec<u8>, channel: &str| NewEvent {
            payload,
            ..event("gitee", EventKind::Push, "acme/app", 1_000, &[channel])
        };
        let ids: Vec<i64> = store
            .insert_events(&[with(stored.clone(), "new"), with(body.clone(), "old")])
            .await
            .unwrap()
            .iter()
            .map(|r| r.event_id)
            .collect();

        for (id, channel) in ids.iter().zip(["new", "old"]) {
            let record = store.event(*id).await.unwrap().unwrap();
            assert_eq!(record.payload, body, "{channel}");
            assert_eq!(record.summary.payload_bytes, body.len() as i64, "{channel}");
            let claimed = store
                .claim_next(channel, 2_000, 60_000, "t")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(claimed.event.payload, body, "{channel}");
        }
        let listed = store
            .list_events(&EventFilter::default(), Page::new(None, 50))
            .await
            .unwrap();
        assert!(
            listed
                .items
                .iter()
                .all(|e| e.payload_bytes == body.len() as i64)
        );

        let mut damaged = stored.clone();
        let end = damaged.len();
        damaged.truncate(end / 2);
        let id = store
            .insert_events(&[with(damaged, "damaged")])
            .await
            .unwrap()[0]
            .event_id;
        for error in [
            store.event(id).await.err(),
            store.claim_next("damaged", 2_000, 60_000, "t").await.err(),
            store
                .claim_batch("damaged", 120_000, 60_000, "t", 8)
                .await
                .err(),
        ] {
            match error {
                Some(StoreError::Corrupt(m)) => assert!(m.contains("damaged"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        // The listing still works: it reads only the head of each payload.
        let listed = store
            .list_events(&EventFilter::default(), Page::new(None, 50))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 3);
    })
    .await;
}
