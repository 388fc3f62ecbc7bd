//! Bursts: an unthrottled channel claims, sends and records deliveries in batches.

use std::sync::Arc;
use std::time::Duration;

use fake_robot::{FakeRobot, Fault, Platform, RobotOptions};
use serde_json::Value;

use crate::config::Config;
use crate::dispatch::{Dispatcher, channel_templates};
use crate::gitee::EventKind;
use crate::store::{DeliveryState, NewEvent, SqliteStore, Store};

fn config(dir: &std::path::Path, robot: &FakeRobot, per_second: u32) -> Config {
    let yaml = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://{}\nsources:\n  gitee:\n    secret: s\n\
         channels:\n  fast:\n    platform: wecom\n    url: {}\n    rate: {{ per_second: {per_second} }}\n    digest: false\n\
         routes:\n  - to: [fast]\ndelivery:\n  retry_first: 50ms\n  retry_cap: 100ms\n  timeout: 2s\n",
        dir.join("relay.db").display(),
        robot.url(),
    );
    Config::from_yaml(&dir.join("config.yaml"), &yaml, &|_| None).expect("valid config")
}

/// `n` pushes, each with its own marker in the head commit's message.
fn events(n: usize) -> (Vec<NewEvent>, Vec<String>) {
    let sample = crate::samples::find("push").expect("push sample");
    let mut out = Vec::new();
    let mut markers = Vec::new();
    for i in 0..n {
        let marker = format!("burst-marker-{i:04}");
        let mut body: Value = serde_json::from_str(sample.body).unwrap();
        for commit in body["commits"].as_array_mut().unwrap() {
            commit["message"] = Value::String(marker.clone());
        }
        body["head_commit"]["message"] = Value::String(marker.clone());
        out.push(NewEvent {
            source: "gitee".into(),
            kind: EventKind::Push,
            action: "push".into(),
            repo: "acme/app".into(),
            is_test: false,
            received_ms: crate::time_util::now_ms(),
            payload: serde_json::to_vec(&body).unwrap(),
            channels: vec!["fast".into()],
        });
        markers.push(marker);
    }
    (out, markers)
}

async fn states(store: &dyn Store) -> Vec<(DeliveryState, i64)> {
    let mut s = store.count_by_state().await.unwrap();
    s.sort_by_key(|(state, _)| state.as_str());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unthrottled_channel_delivers_a_backlog_in_bursts_each_event_once() {
    let robot = FakeRobot::start(Platform::Wecom, RobotOptions::new("tok").unthrottled()).await;
    // Three failures to retry, inside the first burst.
    for _ in 0..3 {
        robot.push_fault(Fault::HttpStatus(502, "bad gateway".into()));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &robot, 100_000);
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("relay.db"))
            .await
            .unwrap(),
    );
    let (evs, markers) = events(300);
    store.insert_events(&evs).await.unwrap();
    let templates = channel_templates(&config).unwrap();
    let dispatcher = Dispatcher::start(&config, store.clone(), &templates);
    assert!(
        robot.wait_accepted(300, Duration::from_secs(30)).await,
        "only {} accepted",
        robot.accepted_count()
    );
    // Every attempt is recorded: 300 delivered (the last burst's record may trail the robot).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while states(store.as_ref()).await != vec![(DeliveryState::Delivered, 300)] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            states(store.as_ref()).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dispatcher.shutdown(Duration::from_secs(5)).await;
    let texts: Vec<String> = robot.with_accepted(|a| a.iter().map(|m| m.raw.clone()).collect());
    for marker in &markers {
        let n = texts.iter().filter(|t| t.contains(marker.as_str())).count();
        assert_eq!(n, 1, "{marker} delivered {n} times");
    }
    assert_eq!(robot.rejected_count(), 3);
    let mut attempts = 0;
    for id in 1..=300 {
        attempts += store.attempts(id).await.unwrap().len();
    }
    assert_eq!(attempts, 303, "one attempt per send, three of them failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_stops_starting_sends_at_shutdown_and_hands_the_rest_back() {
    let robot = FakeRobot::start(Platform::Wecom, RobotOptions::new("tok").unthrottled()).await;
    // Every send hangs for a while: the first burst is in flight when the shutdown comes.
    for _ in 0..100 {
        robot.push_fault(Fault::Hang(Duration::from_millis(300)));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &robot, 100_000);
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("relay.db"))
            .await
            .unwrap(),
    );
    let (evs, _) = events(100);
    store.insert_events(&evs).await.unwrap();
    let templates = channel_templates(&config).unwrap();
    let dispatcher = Dispatcher::start(&config, store.clone(), &templates);
    tokio::time::sleep(Duration::from_millis(100)).await;
    dispatcher.shutdown(Duration::from_secs(10)).await;
    // Nothing is left leased: whatever was not sent is due again for the next start.
    let s = states(store.as_ref()).await;
    let delivered: i64 = s
        .iter()
        .filter(|(state, _)| *state == DeliveryState::Delivered)
        .map(|(_, n)| n)
        .sum();
    assert!(delivered < 64, "the whole first burst was sent: {s:?}");
    assert!(
        s.iter().all(|(state, _)| *state != DeliveryState::Sending),
        "{s:?}"
    );
    assert_eq!(s.iter().map(|(_, n)| n).sum::<i64>(), 100);
}
