//! Every answer of `POST /hooks/{source}`: 200 only after commit, and each refusal with its
//! precise status and a JSON message that never carries a secret.

use crate::helpers::*;
use gitee_relay::gitee::auth::gitee_signature;
use serde_json::Value;

const PUSH: &[u8] = include_bytes!("../../samples/push.json");

async fn error_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    for secret in SECRETS {
        assert!(!text.contains(secret), "secret leaked in {text}");
    }
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (
        status,
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {text}"))
            .to_owned(),
    )
}

#[tokio::test]
async fn a_signed_push_is_accepted_after_commit() {
    let app = TestRelay::spawn().await;
    let resp = app.send("Push Hook", PUSH).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["deliveries"], 4);
    let id = v["event_id"].as_i64().unwrap();
    // Committed before the answer: the deliveries exist now.
    let rows = app
        .relay
        .as_ref()
        .unwrap()
        .store
        .deliveries_of_event(id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    // Stored compressed (the row on disk starts with the codec's mark and is far smaller),
    // and read back byte for byte as received.
    let side = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.db_path().display()))
        .await
        .unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT payload FROM events WHERE id = ?")
        .bind(id)
        .fetch_one(&side)
        .await
        .unwrap();
    side.close().await;
    assert!(stored.starts_with(b"\0lz4"), "{:?}", &stored[..8]);
    assert!(
        stored.len() * 2 < PUSH.len(),
        "{} of {}",
        stored.len(),
        PUSH.len()
    );
    assert_eq!(
        gitee_relay::store::payload_codec::decode(stored).unwrap(),
        PUSH
    );
}

#[tokio::test]
async fn hook_name_spelling_and_body_fallback_are_accepted() {
    let app = TestRelay::spawn().await;
    assert_eq!(app.send("push_hooks", PUSH).await.status(), 200);
    // No usable header: the body's hook_name decides.
    assert_eq!(app.send("Something Else", PUSH).await.status(), 200);
}

#[tokio::test]
async fn password_mode_compares_the_token() {
    let app = TestRelay::spawn().await;
    let ok = app
        .post(
            "pw",
            &[
                ("X-Gitee-Event", "Push Hook"),
                ("X-Gitee-Token", GITEE_SECRET),
                ("Content-Type", "application/json"),
            ],
            PUSH.to_vec(),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let bad = app
        .post(
            "pw",
            &[
                ("X-Gitee-Event", "Push Hook"),
                ("X-Gitee-Token", "nope"),
                ("Content-Type", "application/json"),
            ],
            PUSH.to_vec(),
        )
        .await;
    assert_eq!(bad.status(), 401);
}

#[tokio::test]
async fn wrong_missing_and_stale_tokens_get_one_401() {
    let app = TestRelay::spawn().await;
    let now = now_ms().to_string();
    let stale = (now_ms() - 2 * 3600 * 1000).to_string();
    let wrong_sig = gitee_signature("not-the-secret", &now);
    let seconds = (now_ms() / 1000).to_string();
    let stale_sig = gitee_signature(GITEE_SECRET, &stale);
    let seconds_sig = gitee_signature(GITEE_SECRET, &seconds);
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("X-Gitee-Timestamp", &now), ("X-Gitee-Token", &wrong_sig)],
        vec![("X-Gitee-Timestamp", &now)],
        vec![("X-Gitee-Token", &wrong_sig)],
        vec![("X-Gitee-Timestamp", &stale), ("X-Gitee-Token", &stale_sig)],
        // Seconds instead of milliseconds.
        vec![
            ("X-Gitee-Timestamp", &seconds),
            ("X-Gitee-Token", &seconds_sig),
        ],
        vec![("X-Gitee-Timestamp", "abc"), ("X-Gitee-Token", &wrong_sig)],
    ];
    let mut messages = Vec::new();
    for mut headers in cases {
        headers.push(("X-Gitee-Event", "Push Hook"));
        headers.push(("Content-Type", "application/json"));
        let (status, message) = error_of(app.post("gitee", &headers, PUSH.to_vec()).await).await;
        assert_eq!(status, 401, "{headers:?}");
        messages.push(message);
    }
    messages.dedup();
    assert_eq!(
        messages.len(),
        1,
        "one message for every auth failure: {messages:?}"
    );
}

#[tokio::test]
async fn unknown_source_is_404() {
    let app = TestRelay::spawn().await;
    let (status, message) = error_of(
        app.post("nope", &[("X-Gitee-Event", "Push Hook")], PUSH.to_vec())
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert!(message.contains("nope"), "{message}");
}

#[tokio::test]
async fn malformed_json_and_unknown_events_are_400() {
    let app = TestRelay::spawn().await;
    let (status, message) = error_of(app.send("Push Hook", b"{\"hook_name\": ").await).await;
    assert_eq!(status, 400);
    assert!(message.to_lowercase().contains("json"), "{message}");

    let (status, message) = error_of(
        app.send("Pipeline Hook", br#"{"hook_name":"pipeline_hooks"}"#)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.contains("Pipeline Hook"), "{message}");

    // A structurally wrong payload names the path.
    let (status, message) = error_of(
        app.send("Push Hook", br#"{"hook_name":"push_hooks","commits":"x"}"#)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.contains("commits"), "{message}");
}

#[tokio::test]
async fn body_over_max_body_is_413() {
    let app = TestRelay::spawn_with("max_body: 64KiB").await;
    let mut big = br#"{"hook_name":"push_hooks","pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 70 * 1024));
    big.extend(b"\"}");
    let (status, message) = error_of(app.send("Push Hook", &big).await).await;
    assert_eq!(status, 413);
    assert!(message.contains("max_body"), "{message}");
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestRelay::spawn().await;
    let resp = app
        .client
        .get(format!("{}/hooks/gitee", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn non_json_content_type_is_415() {
    let app = TestRelay::spawn().await;
    let ts = now_ms().to_string();
    let sig = gitee_signature(GITEE_SECRET, &ts);
    let (status, _) = error_of(
        app.post(
            "gitee",
            &[
                ("X-Gitee-Event", "Push Hook"),
                ("X-Gitee-Timestamp", &ts),
                ("X-Gitee-Token", &sig),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            b"hook=%7B%7D".to_vec(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn store_that_cannot_commit_is_503_and_recovers() {
    let app = TestRelay::spawn().await;
    let side = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.db_path().display()))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE events RENAME TO events_away")
        .execute(&side)
        .await
        .unwrap();
    let (status, message) = error_of(app.send("Push Hook", PUSH).await).await;
    assert_eq!(status, 503);
    assert!(message.contains("not accepted"), "{message}");
    sqlx::query("ALTER TABLE events_away RENAME TO events")
        .execute(&side)
        .await
        .unwrap();
    assert_eq!(app.send("Push Hook", PUSH).await.status(), 200);
}

#[tokio::test]
async fn an_event_no_route_matches_is_accepted_with_zero_deliveries() {
    let robots = Robots::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&robots, &dir.path().join("r.db"), "").replace(
        "routes:\n  - to: [ding, wecom, lark, slack]",
        "routes:\n  - repos: [\"nobody/*\"]\n    to: [ding]",
    );
    let config =
        gitee_relay::config::Config::from_yaml(&dir.path().join("c.yaml"), &yaml, &|_| None)
            .unwrap();
    let relay = gitee_relay::startup::Relay::start(config).await.unwrap();
    let ts = now_ms().to_string();
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/hooks/gitee", relay.port()))
        .header("X-Gitee-Event", "Push Hook")
        .header("X-Gitee-Timestamp", &ts)
        .header("X-Gitee-Token", gitee_signature(GITEE_SECRET, &ts))
        .header("Content-Type", "application/json")
        .body(PUSH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["deliveries"], 0);
    relay.stop(std::time::Duration::from_secs(1)).await;
}
