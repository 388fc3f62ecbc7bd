//! Issue 3's guarantees, with fake robots that enforce the real quotas and error codes:
//! no robot is ever throttled, every accepted event lands in exactly one delivered message,
//! faults are retried, a stuck robot delays nobody else, and crashes lose nothing.

use crate::helpers::*;
use crate::process::{Proc, send_signed, try_send_signed};
use fake_robot::{FakeRobot, Fault, Platform, Quota, RobotOptions};
use gitee_relay::config::Config;
use gitee_relay::startup::Relay;
use gitee_relay::store::DeliveryState;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

const PUSH: &str = include_str!("../../samples/push.json");
const COMPARE: &str = "https://gitee.com/acme/app/compare/5da16f820a6ee7d49ad271272b50d3596b02f8c2...a625406f6977d45c1391b078f4d3656e0b75bfcb";

/// A push whose compare link (the message's main link) names event `i` uniquely.
fn marked_push(i: usize) -> (String, Vec<u8>) {
    let marker = format!("https://gitee.com/acme/app/compare/event-{i:04}");
    (marker.clone(), PUSH.replace(COMPARE, &marker).into_bytes())
}

/// How many times each marker appears across the robot's accepted messages.
fn marker_counts(robot: &FakeRobot, markers: &[String]) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = markers.iter().map(|m| (m.clone(), 0)).collect();
    robot.with_accepted(|msgs| {
        for m in msgs {
            for (marker, n) in counts.iter_mut() {
                *n += m.raw.matches(marker.as_str()).count().min(1);
            }
        }
    });
    counts
}

async fn start_relay(yaml: &str, dir: &Path) -> Relay {
    let config = Config::from_yaml(&dir.join("config.yaml"), yaml, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    Relay::start(config).await.unwrap()
}

async fn post_signed(port: u16, body: &[u8]) -> reqwest::StatusCode {
    send_signed(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}/hooks/gitee"),
        GITEE_SECRET,
        "Push Hook",
        body,
    )
    .await
    .status()
}

#[tokio::test]
async fn a_burst_of_200_pushes_never_throttles_dingtalk_and_names_every_event_once() {
    // DingTalk's 20-per-minute quota, scaled to 20 per 3 s so the test stays short; the
    // relay runs its production pacing and digest code with the same scaled quota.
    let quota = Quota {
        max: 20,
        per: Duration::from_secs(3),
    };
    let robot = FakeRobot::start(
        Platform::Dingtalk,
        RobotOptions::new(DING_TOKEN)
            .with_secret(DING_SECRET)
            .with_quotas(vec![quota]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
listen: 127.0.0.1:0
store: sqlite://{db}
sources: {{ gitee: {{ secret: {GITEE_SECRET} }} }}
channels:
  ding:
    platform: dingtalk
    url: {url}
    secret: {DING_SECRET}
    rate: {{ max: 20, per: 3s }}
    digest_after: 3s
routes: [ {{ to: [ding] }} ]
delivery: {{ retry_first: 100ms, retry_cap: 1s, rate_limit_pause: 3s }}
"#,
        db = dir.path().join("relay.db").display(),
        url = robot.url(),
    );
    let relay = start_relay(&yaml, dir.path()).await;
    let port = relay.port();
    let mut markers = Vec::new();
    let mut sends = Vec::new();
    for i in 0..200 {
        let (marker, body) = marked_push(i);
        markers.push(marker);
        sends.push(tokio::spawn(async move { post_signed(port, &body).await }));
    }
    for s in sends {
        assert_eq!(s.await.unwrap(), 200);
    }
    let all_delivered = eventually(Duration::from_secs(60), || async {
        relay.store.count_by_state().await.unwrap() == vec![(DeliveryState::Delivered, 200)]
    })
    .await;
    assert!(
        all_delivered,
        "{:?}",
        relay.store.count_by_state().await.unwrap()
    );
    let throttled: Vec<_> = robot
        .rejected()
        .into_iter()
        .filter(|r| r.code == "130101")
        .collect();
    assert!(
        throttled.is_empty(),
        "the robot throttled us {} times",
        throttled.len()
    );
    assert!(robot.rejected().is_empty(), "{:?}", robot.rejected());
    assert!(robot.max_in_any_window(quota.per) <= quota.max);
    let counts = marker_counts(&robot, &markers);
    let missing: Vec<_> = counts
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(m, _)| m.clone())
        .collect();
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "{} events never named: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(repeated.is_empty(), "events named twice: {repeated:?}");
    eprintln!(
        "200 events arrived in {} messages; busiest {:?} window held {}",
        robot.accepted_count(),
        quota.per,
        robot.max_in_any_window(quota.per)
    );
    assert!(robot.accepted_count() < 200, "digests merged the backlog");
    relay.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn rate_limit_replies_pause_and_are_retried_until_delivered() {
    let app = TestRelay::spawn_with("").await;
    app.robots
        .dingtalk
        .push_fault(Fault::RateLimited { retry_after: None });
    app.robots
        .wecom
        .push_fault(Fault::RateLimited { retry_after: None });
    app.robots.feishu.push_fault(Fault::RateLimited {
        retry_after: Some(1),
    });
    app.robots.slack.push_fault(Fault::RateLimited {
        retry_after: Some(1),
    });
    let started = Instant::now();
    let resp = app.send("Push Hook", PUSH.as_bytes()).await;
    assert_eq!(resp.status(), 200);
    for robot in app.robots.all() {
        assert!(
            robot.wait_accepted(1, Duration::from_secs(15)).await,
            "{:?}: {:?}",
            robot.platform(),
            robot.rejected()
        );
        assert_eq!(robot.rejected().len(), 1);
    }
    // Slack's Retry-After: 1 was honoured (not retried at once).
    let slack = app.robots.slack.last_accepted().unwrap();
    let refused = app.robots.slack.rejected()[0].at;
    assert!(
        slack.at.duration_since(refused) >= Duration::from_millis(900),
        "{:?}",
        slack.at.duration_since(refused)
    );
    eprintln!("all four rate limits cleared in {:?}", started.elapsed());
}

#[tokio::test]
async fn a_hanging_robot_does_not_delay_another_channel() {
    let app = TestRelay::spawn().await;
    for _ in 0..20 {
        app.robots
            .dingtalk
            .push_fault(Fault::Hang(Duration::from_secs(10)));
    }
    let started = Instant::now();
    for i in 0..5 {
        let (_, body) = marked_push(i);
        assert_eq!(app.send("Push Hook", &body).await.status(), 200);
    }
    assert!(
        app.robots
            .slack
            .wait_accepted(5, Duration::from_secs(5))
            .await
    );
    assert!(
        app.robots
            .wecom
            .wait_accepted(5, Duration::from_secs(5))
            .await
    );
    let latency = started.elapsed();
    eprintln!("5 events reached Slack and WeCom in {latency:?} while DingTalk hung");
    assert!(latency < Duration::from_secs(3), "{latency:?}");
    assert_eq!(app.robots.dingtalk.accepted_count(), 0);
}

/// Writes a config for a child relay with two unthrottled channels.
fn child_config(dir: &Path, robots: &Robots) -> std::path::PathBuf {
    let yaml = config_yaml(robots, &dir.join("relay.db"), "").replace(
        "routes:\n  - to: [ding, wecom, lark, slack]",
        "routes:\n  - to: [slack, wecom]",
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

async fn send_batch(relay: &Proc, range: std::ops::Range<usize>, acked: &mut Vec<String>) {
    acked.extend(send_to(relay.url("gitee"), range).await);
}

/// Sends the marked pushes concurrently; returns the markers of those answered 200.
async fn send_to(url: String, range: std::ops::Range<usize>) -> Vec<String> {
    let mut acked = Vec::new();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in range {
        let (marker, body) = marked_push(i);
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let result = try_send_signed(&client, &url, GITEE_SECRET, "Push Hook", &body).await;
            let ok = match result {
                Ok(r) if r.status() == 200 => true,
                Ok(r) => {
                    eprintln!("not acked: HTTP {}", r.status());
                    false
                }
                Err(e) => {
                    eprintln!("not acked: {e}");
                    false
                }
            };
            (marker, ok)
        }));
    }
    for t in tasks {
        let (marker, ok) = t.await.unwrap();
        if ok {
            acked.push(marker);
        }
    }
    acked
}

#[tokio::test]
async fn sigkill_midway_through_500_events_loses_nothing_that_got_a_200() {
    let robots = Robots::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let config = child_config(dir.path(), &robots);
    let mut relay = Proc::start(&config, &[("RUST_LOG", "warn,gitee_relay::startup=info")]);
    let mut acked = Vec::new();
    // Half the events, then SIGKILL while the rest are still being sent.
    send_batch(&relay, 0..250, &mut acked).await;
    let killer = {
        let pid = relay.pid();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
        })
    };
    send_batch(&relay, 250..350, &mut acked).await;
    killer.await.unwrap();
    relay.kill();
    let relay = Proc::start(&config, &[("RUST_LOG", "warn,gitee_relay::startup=info")]);
    send_batch(&relay, 350..500, &mut acked).await;
    assert!(acked.len() >= 400, "only {} acked", acked.len());
    for robot in [&robots.slack, &robots.wecom] {
        let ok = eventually(Duration::from_secs(60), || async {
            marker_counts(robot, &acked).values().all(|n| *n >= 1)
        })
        .await;
        let counts = marker_counts(robot, &acked);
        let lost = counts.values().filter(|n| **n == 0).count();
        assert!(ok, "{:?} lost {lost} acknowledged events", robot.platform());
        let duplicates: usize = counts.values().map(|n| n.saturating_sub(1)).sum();
        // Each channel sends one message at a time: at most one was in flight at the kill.
        eprintln!(
            "{:?}: {} acknowledged events delivered, {duplicates} delivered twice (bound: 1 in flight)",
            robot.platform(),
            acked.len()
        );
        assert!(duplicates <= 1, "{duplicates} duplicates");
    }
    drop(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_exits_in_time_and_loses_nothing() {
    let robots = Robots::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let config = child_config(dir.path(), &robots);
    let mut relay = Proc::start(&config, &[("RUST_LOG", "info")]);
    // SIGTERM lands while webhooks are arriving and deliveries are being sent.
    let burst = tokio::spawn(send_to(relay.url("gitee"), 0..300));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (took, status) = tokio::task::block_in_place(|| relay.terminate());
    let acked = burst.await.unwrap();
    assert!(!acked.is_empty());
    assert!(status.success(), "{status}: {}", relay.log());
    assert!(took < Duration::from_secs(12), "took {took:?}");
    // Whatever was not sent before the stop is sent after the next start.
    let _relay = Proc::start(&config, &[("RUST_LOG", "warn,gitee_relay::startup=info")]);
    for robot in [&robots.slack, &robots.wecom] {
        let ok = eventually(Duration::from_secs(30), || async {
            marker_counts(robot, &acked).values().all(|n| *n >= 1)
        })
        .await;
        assert!(ok, "{:?} lost events after SIGTERM", robot.platform());
    }
    eprintln!(
        "SIGTERM: exited in {took:?}, {} acknowledged events all delivered",
        acked.len()
    );
}
