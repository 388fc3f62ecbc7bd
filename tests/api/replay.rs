//! Replay protection in signature mode. Gitee signs only the timestamp, so a captured
//! (X-Gitee-Timestamp, X-Gitee-Token) pair could be replayed with a forged body until the
//! skew window closes: the relay accepts each pair once. The identical delivery sent again
//! (Gitee's retry / redelivery) is answered 200 with the original event id and stored once.

use crate::helpers::*;
use gitee_relay::config::Config;
use gitee_relay::gitee::auth::gitee_signature;
use gitee_relay::startup::Relay;
use serde_json::Value;
use std::time::Duration;

const PUSH: &[u8] = include_bytes!("../../samples/push.json");
const ISSUE: &[u8] = include_bytes!("../../samples/issue_open.json");

/// A pair to reuse: a timestamp (distinct per call, so tests never collide) and its token.
pub fn pair() -> (String, String) {
    let ts = crate::bad_input::fresh_ts();
    let token = gitee_signature(GITEE_SECRET, &ts);
    (ts, token)
}

pub async fn post(
    app: &TestRelay,
    source: &str,
    (ts, token): &(String, String),
    event: &str,
    body: &[u8],
) -> (u16, Value) {
    let resp = app
        .post(
            source,
            &[
                ("X-Gitee-Event", event),
                ("X-Gitee-Timestamp", ts),
                ("X-Gitee-Token", token),
                ("Content-Type", "application/json"),
            ],
            body.to_vec(),
        )
        .await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    for secret in SECRETS.iter().chain([&token.as_str()]) {
        assert!(!text.contains(secret), "{secret} in the answer {text}");
    }
    (status, serde_json::from_str(&text).unwrap())
}

pub async fn events_stored(app: &TestRelay, id: i64) -> usize {
    app.relay
        .as_ref()
        .unwrap()
        .store
        .deliveries_of_event(id)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn the_same_delivery_again_gets_the_original_event_id_and_is_sent_once() {
    let app = TestRelay::spawn().await;
    let pair = pair();
    let (status, first) = post(&app, "gitee", &pair, "Push Hook", PUSH).await;
    assert_eq!(status, 200, "{first}");
    let id = first["event_id"].as_i64().unwrap();
    assert!(first.get("duplicate").is_none());
    for _ in 0..3 {
        let (status, again) = post(&app, "gitee", &pair, "Push Hook", PUSH).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["event_id"], id);
        assert_eq!(again["deliveries"], first["deliveries"]);
        assert_eq!(again["duplicate"], true);
    }
    // One event, one message per robot.
    assert_eq!(events_stored(&app, id).await, 4);
    assert_eq!(
        events_stored(&app, id + 1).await,
        0,
        "a second event was stored"
    );
    for robot in app.robots.all() {
        assert!(robot.wait_accepted(1, Duration::from_secs(10)).await);
    }
    // A later, genuinely new delivery still gets through (and is the next event).
    let (status, next) = post(&app, "gitee", &self::pair(), "Push Hook", PUSH).await;
    assert_eq!(status, 200);
    assert_eq!(next["event_id"], id + 1);
    for robot in app.robots.all() {
        assert!(robot.wait_accepted(2, Duration::from_secs(10)).await);
        assert_eq!(robot.accepted_count(), 2, "{:?}", robot.platform());
    }
}

#[tokio::test]
async fn a_replayed_pair_with_another_body_or_event_is_409() {
    let app = TestRelay::spawn().await;
    let pair = pair();
    let (status, first) = post(&app, "gitee", &pair, "Push Hook", PUSH).await;
    assert_eq!(status, 200);
    let id = first["event_id"].as_i64().unwrap();

    let forged = String::from_utf8(PUSH.to_vec())
        .unwrap()
        .replace("acme/app", "acme/evil");
    let (status, refused) = post(&app, "gitee", &pair, "Push Hook", forged.as_bytes()).await;
    assert_eq!(status, 409, "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(message.contains("already used"), "{message}");
    assert!(!message.contains(&pair.1) && !message.contains(&pair.0));

    // Same body, another event header; another kind of event altogether.
    let (status, _) = post(&app, "gitee", &pair, "Tag Push Hook", PUSH).await;
    assert_eq!(status, 409);
    let (status, _) = post(&app, "gitee", &pair, "Issue Hook", ISSUE).await;
    assert_eq!(status, 409);
    // Even a malformed body under a used pair is a replay first.
    let (status, _) = post(&app, "gitee", &pair, "Push Hook", b"{").await;
    assert_eq!(status, 409);

    // The refusals changed nothing: the original still answers as itself.
    let (status, again) = post(&app, "gitee", &pair, "Push Hook", PUSH).await;
    assert_eq!((status, &again["event_id"]), (200, &Value::from(id)));
    assert_eq!(events_stored(&app, id + 1).await, 0);
}

#[tokio::test]
async fn concurrent_copies_of_one_delivery_store_one_event() {
    let app = TestRelay::spawn().await;
    let pair = pair();
    let answers = futures_util::future::join_all(
        (0..16).map(|_| post(&app, "gitee", &pair, "Push Hook", PUSH)),
    )
    .await;
    let ids: std::collections::BTreeSet<i64> = answers
        .iter()
        .map(|(status, v)| {
            assert_eq!(*status, 200, "{v}");
            v["event_id"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let duplicates = answers
        .iter()
        .filter(|(_, v)| v["duplicate"] == true)
        .count();
    assert_eq!(duplicates, 15);
    let id = *ids.first().unwrap();
    assert_eq!(events_stored(&app, id + 1).await, 0);
}

#[tokio::test]
async fn a_pair_whose_delivery_was_refused_or_not_stored_can_be_sent_again() {
    let app = TestRelay::spawn().await;
    // Refused as malformed: not accepted, so the pair is not used up.
    let pair = self::pair();
    let (status, _) = post(&app, "gitee", &pair, "Push Hook", b"{\"commits\": 1}").await;
    assert_eq!(status, 400);
    let (status, ok) = post(&app, "gitee", &pair, "Push Hook", PUSH).await;
    assert_eq!(status, 200, "{ok}");
    assert!(ok.get("duplicate").is_none());

    // Not stored (503): Gitee's retry of the same delivery is accepted once the store is back.
    let side = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.db_path().display()))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE events RENAME TO events_away")
        .execute(&side)
        .await
        .unwrap();
    let pair = self::pair();
    let (status, _) = post(&app, "gitee", &pair, "Push Hook", PUSH).await;
    assert_eq!(status, 503);
    sqlx::query("ALTER TABLE events_away RENAME TO events")
        .execute(&side)
        .await
        .unwrap();
    let (status, retried) = post(&app, "gitee", &pair, "Push Hook", PUSH).await;
    assert_eq!(status, 200, "{retried}");
    assert!(retried.get("duplicate").is_none(), "{retried}");
    let (status, again) = post(&app, "gitee", &pair, "Push Hook", PUSH).await;
    assert_eq!((status, &again["duplicate"]), (200, &Value::Bool(true)));
}

#[tokio::test]
async fn password_mode_has_no_pairs_to_protect() {
    // The password is the same on every delivery and the timestamp is not signed: there is
    // nothing a replay cache could tell apart, so deliveries are never refused as replays.
    let app = TestRelay::spawn().await;
    let pair = (crate::bad_input::fresh_ts(), GITEE_SECRET.to_owned());
    let (status, a) = post(&app, "pw", &pair, "Push Hook", PUSH).await;
    assert_eq!(status, 200);
    let (status, b) = post(&app, "pw", &pair, "Issue Hook", ISSUE).await;
    assert_eq!(status, 200);
    assert_ne!(a["event_id"], b["event_id"]);
}

#[tokio::test]
async fn past_the_skew_window_a_replay_is_a_stale_401() {
    let robots = Robots::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&robots, &dir.path().join("relay.db"), "").replacen(
        "sources:\n",
        &format!("sources:\n  quick:\n    secret: {GITEE_SECRET}\n    max_skew: 1s\n"),
        1,
    );
    let config = Config::from_yaml(&dir.path().join("config.yaml"), &yaml, &|_| None).unwrap();
    let relay = Relay::start(config.clone()).await.unwrap();
    let app = TestRelay {
        base: format!("http://127.0.0.1:{}", relay.port()),
        relay: Some(relay),
        client: reqwest::Client::new(),
        robots,
        dir,
        config,
    };
    let ts = now_ms().to_string();
    let pair = (ts.clone(), gitee_signature(GITEE_SECRET, &ts));
    let (status, _) = post(&app, "quick", &pair, "Push Hook", PUSH).await;
    assert_eq!(status, 200);
    let (status, _) = post(&app, "quick", &pair, "Issue Hook", ISSUE).await;
    assert_eq!(status, 409);
    let until = ts.parse::<i64>().unwrap() + 1_300;
    while now_ms() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, v) = post(&app, "quick", &pair, "Issue Hook", ISSUE).await;
    assert_eq!(status, 401, "{v}");
}
