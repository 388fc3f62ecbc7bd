//! From a committed event to the robots: signed bodies the fakes accept, retries of
//! transient failures, dead letters for permanent ones, test deliveries.

use crate::helpers::*;
use fake_robot::Fault;
use gitee_relay::store::DeliveryState;
use serde_json::Value;
use std::time::Duration;

const PUSH: &[u8] = include_bytes!("../../samples/push.json");

async fn event_id(resp: reqwest::Response) -> i64 {
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["event_id"].as_i64().unwrap()
}

async fn state_of(
    app: &TestRelay,
    event: i64,
    channel: &str,
) -> (DeliveryState, u32, Option<String>) {
    let store = &app.relay.as_ref().unwrap().store;
    let rows = store.deliveries_of_event(event).await.unwrap();
    let row = rows.into_iter().find(|r| r.channel == channel).unwrap();
    (row.state, row.attempts, row.last_error)
}

async fn wait_state(
    app: &TestRelay,
    event: i64,
    channel: &str,
    want: DeliveryState,
) -> (DeliveryState, u32, Option<String>) {
    let mut last = None;
    for _ in 0..500 {
        let s = state_of(app, event, channel).await;
        if s.0 == want {
            return s;
        }
        last = Some(s);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{channel} never reached {want:?}: {last:?}");
}

#[tokio::test]
async fn a_push_reaches_all_four_robots_signed_and_valid() {
    let app = TestRelay::spawn().await;
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    for robot in app.robots.all() {
        assert!(
            robot.wait_accepted(1, Duration::from_secs(10)).await,
            "{:?}: {:?}",
            robot.platform(),
            robot.rejected()
        );
    }
    // DingTalk: signed in the query; Feishu: signed in the body.
    let ding = app.robots.dingtalk.last_accepted().unwrap();
    assert!(
        ding.query.contains("timestamp=") && ding.query.contains("sign="),
        "{}",
        ding.query
    );
    let lark = app.robots.feishu.last_accepted().unwrap();
    assert!(lark.body["sign"].is_string() && lark.body["timestamp"].is_string());
    assert!(app.robots.slack.last_accepted().unwrap().body["text"].is_string());
    for channel in ["ding", "wecom", "lark", "slack"] {
        let (state, attempts, _) = wait_state(&app, id, channel, DeliveryState::Delivered).await;
        assert_eq!((state, attempts), (DeliveryState::Delivered, 1));
    }
    // Each attempt records the URL it posted to, its secrets masked: the channel's own URL
    // (masked once per channel), or DingTalk's signed one (masked per message).
    let store = &app.relay.as_ref().unwrap().store;
    for row in store.deliveries_of_event(id).await.unwrap() {
        let attempts = store.attempts(row.id).await.unwrap();
        let url = &attempts[0].request_url;
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "{}: {url}",
            row.channel
        );
        for secret in SECRETS {
            assert!(!url.contains(secret), "{}: {url}", row.channel);
        }
        let masked = match row.channel.as_str() {
            "ding" => "access_token=***&timestamp=***&sign=***",
            "wecom" => "key=***",
            "lark" => "/hook/***",
            "slack" => "/B000/***",
            other => panic!("unexpected channel {other}"),
        };
        assert!(url.contains(masked), "{}: {url}", row.channel);
    }
}

#[tokio::test]
async fn transient_failures_are_retried_until_delivered() {
    let app = TestRelay::spawn().await;
    app.robots
        .dingtalk
        .push_fault(Fault::HttpStatus(500, "oops".into()));
    app.robots
        .dingtalk
        .push_fault(Fault::PlatformError(-1, "系统繁忙".into()));
    app.robots.wecom.push_fault(Fault::Reset);
    app.robots
        .feishu
        .push_fault(Fault::PlatformError(1500, "internal error".into()));
    app.robots
        .slack
        .push_fault(Fault::HttpStatus(503, "unavailable".into()));
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    let (_, attempts, _) = wait_state(&app, id, "ding", DeliveryState::Delivered).await;
    assert_eq!(attempts, 3);
    for channel in ["wecom", "lark", "slack"] {
        let (_, attempts, _) = wait_state(&app, id, channel, DeliveryState::Delivered).await;
        assert_eq!(attempts, 2, "{channel}");
    }
    let delivery = app
        .relay
        .as_ref()
        .unwrap()
        .store
        .deliveries_of_event(id)
        .await
        .unwrap()[0]
        .id;
    let attempts = app
        .relay
        .as_ref()
        .unwrap()
        .store
        .attempts(delivery)
        .await
        .unwrap();
    assert_eq!(attempts[0].http_status, Some(500));
    assert_eq!(attempts[0].outcome, "retry");
    assert_eq!(attempts[2].outcome, "delivered");
    for a in &attempts {
        assert!(
            !a.request_url.contains(DING_TOKEN),
            "token in stored URL: {}",
            a.request_url
        );
    }
}

#[tokio::test]
async fn a_reply_slower_than_the_timeout_is_retried() {
    let app = TestRelay::spawn().await;
    app.robots
        .slack
        .push_fault(Fault::Hang(Duration::from_secs(4)));
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    let (_, attempts, _) = wait_state(&app, id, "slack", DeliveryState::Delivered).await;
    assert!(attempts >= 2);
}

#[tokio::test]
async fn permanent_errors_are_dead_after_one_attempt_with_the_platforms_words() {
    let app = TestRelay::spawn().await;
    app.robots.dingtalk.push_fault(Fault::PlatformError(
        310000,
        "keywords not in content".into(),
    ));
    app.robots
        .wecom
        .push_fault(Fault::PlatformError(93000, "invalid webhook url".into()));
    app.robots
        .feishu
        .push_fault(Fault::PlatformError(19024, "Key Words Not Found".into()));
    app.robots
        .slack
        .push_fault(Fault::PlatformError(404, "no_service".into()));
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    for (channel, words) in [
        ("ding", "keywords not in content"),
        ("wecom", "invalid webhook url"),
        ("lark", "Key Words Not Found"),
        ("slack", "no_service"),
    ] {
        let (_, attempts, error) = wait_state(&app, id, channel, DeliveryState::Dead).await;
        assert_eq!(attempts, 1, "{channel}");
        assert!(
            error.as_deref().unwrap_or("").contains(words),
            "{channel}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_test_delivery_is_relayed_and_marked_as_a_test() {
    let app = TestRelay::spawn().await;
    let ts = unique_ts();
    let sig = gitee_relay::gitee::auth::gitee_signature(GITEE_SECRET, &ts);
    let resp = app
        .post(
            "gitee",
            &[
                ("X-Gitee-Event", "Push Hook"),
                ("X-Gitee-Ping", "true"),
                ("X-Gitee-Timestamp", &ts),
                ("X-Gitee-Token", &sig),
                ("Content-Type", "application/json"),
            ],
            PUSH.to_vec(),
        )
        .await;
    event_id(resp).await;
    for robot in app.robots.all() {
        assert!(robot.wait_accepted(1, Duration::from_secs(10)).await);
        let raw = robot.last_accepted().unwrap().raw;
        assert!(
            raw.to_lowercase().contains("test"),
            "{:?} not marked as a test: {raw}",
            robot.platform()
        );
    }
}

#[tokio::test]
async fn stopping_with_work_pending_and_starting_again_delivers_it() {
    let robots = Robots::start(false).await;
    // The first DingTalk send hangs past the timeout: it is in flight when the relay stops.
    robots
        .dingtalk
        .push_fault(Fault::Hang(Duration::from_secs(3)));
    let mut app = TestRelay::spawn_with_robots(robots, "").await;
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.robots.dingtalk.requests() >= 1
        })
        .await
    );
    let db = app.db_path();
    let config = app.config.clone();
    app.stop().await;
    let relay = gitee_relay::startup::Relay::start(config).await.unwrap();
    let delivered = eventually(Duration::from_secs(15), || async {
        relay
            .store
            .deliveries_of_event(id)
            .await
            .unwrap()
            .iter()
            .all(|r| r.state == DeliveryState::Delivered)
    })
    .await;
    assert!(
        delivered,
        "{:?}",
        relay.store.deliveries_of_event(id).await.unwrap()
    );
    assert!(app.robots.dingtalk.accepted_count() >= 1);
    relay.stop(Duration::from_secs(1)).await;
    drop(db);
}
