//! Several relay processes sharing one PostgreSQL store: they start together on an empty
//! database, share the work, keep every robot's quota cluster-wide, and survive a SIGKILL.
//! Skipped (with a message) without GITEE_RELAY_TEST_PG; required in CI.

use crate::helpers::*;
use crate::process::{Proc, try_send_signed};
use fake_robot::{FakeRobot, Platform, Quota, RobotOptions};
use gitee_relay::store::test_db::TestDb;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PUSH: &str = include_str!("../../samples/push.json");
const COMPARE: &str = "https://gitee.com/acme/app/compare/5da16f820a6ee7d49ad271272b50d3596b02f8c2...a625406f6977d45c1391b078f4d3656e0b75bfcb";

/// Each channel is paced at 20 per second with digests off, so every event is its own
/// message: three replicas pacing only locally would send up to 60 per second and be
/// throttled; the shared pacing keeps the cluster at 20.
fn write_config(dir: &Path, db_url: &str, robots: &[(&str, &FakeRobot, Option<&str>)]) -> PathBuf {
    let mut channels = String::new();
    for (name, robot, secret) in robots {
        let platform = match robot.platform() {
            Platform::Dingtalk => "dingtalk",
            Platform::Wecom => "wecom",
            Platform::Feishu => "feishu",
            Platform::Slack => "slack",
        };
        channels.push_str(&format!(
            "  {name}:\n    platform: {platform}\n    url: {}\n{}    rate: {{ max: 20, per: 1s }}\n    digest: false\n",
            robot.url(),
            secret.map(|s| format!("    secret: {s}\n")).unwrap_or_default()
        ));
    }
    let names: Vec<&str> = robots.iter().map(|(n, _, _)| *n).collect();
    let yaml = format!(
        "listen: 127.0.0.1:0\nstore: {db_url}\nsources: {{ gitee: {{ secret: {GITEE_SECRET} }} }}\nchannels:\n{channels}routes: [ {{ to: [{}] }} ]\ndelivery: {{ retry_first: 100ms, retry_cap: 1s, timeout: 5s, rate_limit_pause: 2s }}\n",
        names.join(", ")
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn start_replicas(config: &Path, n: usize) -> Vec<Proc> {
    // All at the same moment, on purpose: schema creation must be safe under a race.
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| Proc::start(config, &[("RUST_LOG", "warn,gitee_relay::startup=info")]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[tokio::test]
async fn three_replicas_start_at_the_same_moment_on_an_empty_database() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let robot = FakeRobot::start(
        Platform::Slack,
        RobotOptions::new(SLACK_TOKEN).unthrottled(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), db.url(), &[("slack", &robot, None)]);
    let replicas = tokio::task::spawn_blocking(move || start_replicas(&config, 3))
        .await
        .unwrap();
    assert_eq!(replicas.len(), 3);
    let client = reqwest::Client::new();
    for r in &replicas {
        let ready = client
            .get(format!("http://{}/readyz", r.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{}", r.log());
    }
    drop(replicas);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_300_events_keep_quotas_and_survive_a_sigkill() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    // Every robot enforces 20 per second over all the replicas together.
    let quota = Quota {
        max: 20,
        per: Duration::from_secs(1),
    };
    let opts = |token: &str| RobotOptions::new(token).with_quotas(vec![quota]);
    let ding = FakeRobot::start(
        Platform::Dingtalk,
        opts(DING_TOKEN).with_secret(DING_SECRET),
    )
    .await;
    let wecom = FakeRobot::start(Platform::Wecom, opts(WECOM_KEY)).await;
    let lark = FakeRobot::start(
        Platform::Feishu,
        opts(FEISHU_HOOK).with_secret(FEISHU_SECRET),
    )
    .await;
    let slack = FakeRobot::start(Platform::Slack, opts(SLACK_TOKEN)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        db.url(),
        &[
            ("ding", &ding, Some(DING_SECRET)),
            ("wecom", &wecom, None),
            ("lark", &lark, Some(FEISHU_SECRET)),
            ("slack", &slack, None),
        ],
    );
    let cfg = config.clone();
    let mut replicas = tokio::task::spawn_blocking(move || start_replicas(&cfg, 3))
        .await
        .unwrap();
    let urls: Vec<String> = replicas.iter().map(|r| r.url("gitee")).collect();
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let marker = format!("https://gitee.com/acme/app/compare/cluster-{i:04}");
        let body = PUSH.replace(COMPARE, &marker);
        let url = urls[i % 3].clone();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let resp =
                try_send_signed(&client, &url, GITEE_SECRET, "Push Hook", body.as_bytes()).await;
            (marker, resp.is_ok_and(|r| r.status() == 200))
        }));
        // Half-way through, replica 0 dies; the rest keep going to the other two.
        if i == 150 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            replicas[0].kill();
        }
    }
    for t in tasks {
        let (marker, ok) = t.await.unwrap();
        if ok {
            acked.push(marker);
        }
    }
    assert!(
        acked.len() >= 200,
        "only {} of 300 acknowledged",
        acked.len()
    );
    for robot in [&ding, &wecom, &lark, &slack] {
        let counts = || {
            let mut counts: HashMap<&str, usize> = acked.iter().map(|m| (m.as_str(), 0)).collect();
            robot.with_accepted(|msgs| {
                for m in msgs {
                    for (marker, n) in counts.iter_mut() {
                        if m.raw.contains(marker) {
                            *n += 1;
                        }
                    }
                }
            });
            counts
        };
        let all = eventually(Duration::from_secs(90), || async {
            counts().values().all(|n| *n >= 1)
        })
        .await;
        let c = counts();
        let lost = c.values().filter(|n| **n == 0).count();
        assert!(
            all,
            "{:?} lost {lost} acknowledged events",
            robot.platform()
        );
        let duplicates: usize = c.values().map(|n| n - 1).sum();
        let throttled = robot
            .rejected()
            .iter()
            .filter(|r| {
                matches!(
                    r.code.as_str(),
                    "130101" | "45009" | "11232" | "rate_limited"
                )
            })
            .count();
        eprintln!(
            "{:?}: {} events in {} messages; duplicates {duplicates}; busiest {:?} window {}; throttled {throttled}",
            robot.platform(),
            acked.len(),
            robot.accepted_count(),
            quota.per,
            robot.max_in_any_window(quota.per)
        );
        assert_eq!(throttled, 0, "{:?} was throttled", robot.platform());
        assert!(robot.max_in_any_window(quota.per) <= quota.max);
        // Only what the killed replica had in flight can arrive twice: one message per channel.
        assert!(duplicates <= 1, "{duplicates} duplicates");
    }
    drop(replicas);
    db.drop_db().await;
}
