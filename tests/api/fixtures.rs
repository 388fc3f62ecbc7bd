//! Every payload we have — our own samples and quirky fixtures, and the real captured Gitee
//! deliveries in ../shared when present — is verified, accepted, routed, rendered for all
//! four platforms and accepted by the fake robots.

use crate::helpers::*;
use gitee_relay::gitee::EventKind;
use serde_json::Value;
use std::time::Duration;

/// The `X-Gitee-Event` header Gitee would send for a body.
fn header_for(body: &[u8]) -> &'static str {
    let v: Value = serde_json::from_slice(body).unwrap();
    match v["hook_name"]
        .as_str()
        .and_then(EventKind::parse)
        .expect("fixture has a hook_name")
    {
        EventKind::Push => "Push Hook",
        EventKind::TagPush => "Tag Push Hook",
        EventKind::Issue => "Issue Hook",
        EventKind::MergeRequest => "Merge Request Hook",
        EventKind::Note => "Note Hook",
    }
}

async fn assert_all_delivered(app: &TestRelay, n: usize) {
    for robot in app.robots.all() {
        let ok = robot.wait_accepted(n, Duration::from_secs(30)).await;
        let rejected: Vec<String> = robot
            .rejected()
            .iter()
            .map(|r| format!("{}: {}", r.code, r.reason))
            .collect();
        assert!(
            ok,
            "{:?} accepted {} of {n}; rejected: {rejected:?}",
            robot.platform(),
            robot.accepted_count()
        );
        assert!(
            rejected.is_empty(),
            "{:?} rejected: {rejected:?}",
            robot.platform()
        );
    }
}

#[tokio::test]
async fn own_samples_and_fixtures_reach_every_robot() {
    let app = TestRelay::spawn().await;
    let payloads = own_payloads();
    assert!(
        payloads.len() >= 20,
        "expected our samples and fixtures, found {}",
        payloads.len()
    );
    for (name, body) in &payloads {
        let resp = app.send(header_for(body), body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "{name}: {text}");
    }
    assert_all_delivered(&app, payloads.len()).await;
    // Every message is valid for its platform (the robots checked), and carries a link.
    for robot in app.robots.all() {
        robot.with_accepted(|msgs| {
            for m in msgs {
                assert!(
                    m.raw.contains("http"),
                    "{:?} message without a link: {}",
                    robot.platform(),
                    m.raw
                );
            }
        });
    }
}

#[tokio::test]
async fn shared_real_deliveries_verify_and_reach_every_robot() {
    let Some(dir) = shared_fixtures_dir() else {
        eprintln!("SKIPPED: ../shared/fixtures/gitee is not present");
        return;
    };
    let app = TestRelay::spawn().await;
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    let mut sent = 0;
    for path in &files {
        let body = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let headers_file = path.with_extension("headers.txt");
        let resp = if headers_file.exists() {
            // A byte-exact capture: replay its own headers, signature included.
            let text = std::fs::read_to_string(&headers_file).unwrap();
            let headers: Vec<(String, String)> = text
                .lines()
                .filter_map(|l| l.split_once(": "))
                .filter(|(k, _)| k.starts_with("X-") || *k == "Content-Type")
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            app.post("rothub", &refs, body.clone()).await
        } else if v["sign"].as_str().is_some_and(|s| !s.is_empty()) {
            // Signed in Gitee's key mode: the body keeps the signature and its timestamp.
            let ts = v["timestamp"].as_str().unwrap().to_owned();
            let sign = v["sign"].as_str().unwrap().to_owned();
            app.post(
                "goscm",
                &[
                    ("X-Gitee-Event", header_for(&body)),
                    ("X-Gitee-Timestamp", &ts),
                    ("X-Gitee-Token", &sign),
                    ("Content-Type", "application/json"),
                ],
                body.clone(),
            )
            .await
        } else {
            // No signature in these captures: deliver them through the password source.
            let ping = if name.contains("ping") {
                "true"
            } else {
                "false"
            };
            app.post(
                "pw",
                &[
                    ("X-Gitee-Event", header_for(&body)),
                    ("X-Gitee-Token", GITEE_SECRET),
                    ("X-Gitee-Ping", ping),
                    ("Content-Type", "application/json"),
                ],
                body.clone(),
            )
            .await
        };
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "{name}: {text}");
        sent += 1;
    }
    eprintln!("sent {sent} shared fixtures from {}", dir.display());
    assert!(sent > 0, "{} exists but holds no fixtures", dir.display());
    assert_all_delivered(&app, sent).await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out
}
