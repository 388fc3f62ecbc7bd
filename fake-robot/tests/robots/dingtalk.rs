//! DingTalk custom robot checks (spec §1).

use crate::common::*;
use base64::Engine as _;
use std::time::{Duration, UNIX_EPOCH};

const SECRET: &str = "secret";
const VECTOR_TS: u64 = 1_700_000_000_000;
const VECTOR_SIGN_ONCE: &str = "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D";

fn text(content: &str) -> Value {
    json!({"msgtype": "text", "text": {"content": content}})
}

fn spec_examples() -> Vec<Value> {
    vec![
        json!({"msgtype":"text",
               "text":{"content":"[gitee/demo] push to main by @13800000000: 3 commits"},
               "at":{"atMobiles":["13800000000"],"atUserIds":["user123"],"isAtAll":false}}),
        json!({"msgtype":"link",
               "link":{"title":"PR #42 opened","text":"Fix signature encoding",
                       "messageUrl":"https://gitee.com/o/r/pulls/42","picUrl":""}}),
        json!({"msgtype":"markdown",
               "markdown":{"title":"PR #42 opened",
                           "text":"### PR #42 opened\n> **Fix signature encoding**\n\n- author: alice\n@13800000000"},
               "at":{"atMobiles":["13800000000"],"isAtAll":false}}),
        json!({"msgtype":"actionCard",
               "actionCard":{"title":"Release v1.2.0","text":"### Release v1.2.0\nnotes",
                             "btnOrientation":"0","singleTitle":"Open release",
                             "singleURL":"https://gitee.com/o/r/releases/v1.2.0"}}),
        json!({"msgtype":"actionCard",
               "actionCard":{"title":"PR #42","text":"### PR #42\nFix signature encoding","btnOrientation":"1",
                             "btns":[{"title":"Diff","actionURL":"https://gitee.com/o/r/pulls/42/files"},
                                     {"title":"Discuss","actionURL":"https://gitee.com/o/r/pulls/42"}]}}),
        json!({"msgtype":"feedCard",
               "feedCard":{"links":[{"title":"Issue #7 closed","messageURL":"https://gitee.com/o/r/issues/7",
                                     "picURL":"https://example.invalid/p.png"}]}}),
    ]
}

#[tokio::test]
async fn accepts_every_spec_example() {
    let robot = start(Platform::Dingtalk, RobotOptions::new("tok").unthrottled()).await;
    assert_eq!(
        robot.url(),
        format!("http://{}/robot/send?access_token=tok", robot.addr())
    );
    for body in spec_examples() {
        let r = post(&robot.url(), &body).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text, r#"{"errcode":0,"errmsg":"ok"}"#, "{body}");
    }
    let accepted = robot.accepted();
    assert_eq!(accepted.len(), 6);
    assert_eq!(accepted[0].body["msgtype"], "text");
    assert_eq!(accepted[0].query, "access_token=tok");
    assert_eq!(accepted[5].raw, spec_examples()[5].to_string());
    assert_eq!(robot.requests(), 6);
    assert!(robot.rejected().is_empty());
}

#[tokio::test]
async fn wrong_or_missing_token() {
    let robot = start(Platform::Dingtalk, RobotOptions::new("tok").unthrottled()).await;
    let base = robot.base_url();
    let r = post(&format!("{base}/robot/send?access_token=nope"), &text("x")).await;
    assert_eq!(
        (r.errcode(), r.errmsg().as_str()),
        (400101, "access_token does not exist")
    );
    let r = post(&format!("{base}/robot/send"), &text("x")).await;
    assert_eq!(r.errcode(), 400101);
    let r = post(&format!("{base}/other?access_token=tok"), &text("x")).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        robot
            .rejected()
            .iter()
            .map(|r| r.code.as_str())
            .collect::<Vec<_>>(),
        ["400101", "400101", "404"]
    );
    assert_eq!(robot.accepted_count(), 0);
}

#[tokio::test]
async fn sign_mode_live_timestamp() {
    let robot = start(
        Platform::Dingtalk,
        RobotOptions::new("tok")
            .with_secret("SECabc+/=")
            .unthrottled(),
    )
    .await;
    let url = format!(
        "{}&{}",
        robot.url(),
        dingtalk_sign_query("SECabc+/=", now_ms())
    );
    assert_eq!(post(&url, &text("hi")).await.errcode(), 0);
    // Unsigned request in sign mode.
    let r = post(&robot.url(), &text("hi")).await;
    assert_eq!(
        (r.errcode(), r.errmsg().as_str()),
        (310000, "invalid timestamp")
    );
    // Wrong secret.
    let url = format!(
        "{}&{}",
        robot.url(),
        dingtalk_sign_query("SECother", now_ms())
    );
    let r = post(&url, &text("hi")).await;
    assert_eq!(
        (r.errcode(), r.errmsg().as_str()),
        (310000, "sign not match")
    );
    // Timestamp present, sign missing.
    let url = format!("{}&timestamp={}", robot.url(), now_ms());
    assert_eq!(post(&url, &text("hi")).await.errmsg(), "sign not match");
    assert_eq!(robot.accepted_count(), 1);
}

fn pinned(ts_ms: u64) -> RobotOptions {
    RobotOptions::new("TOKEN")
        .with_secret(SECRET)
        .with_fixed_clock(UNIX_EPOCH + Duration::from_millis(ts_ms))
        .unthrottled()
}

#[tokio::test]
async fn spec_vector_end_to_end_with_pinned_clock() {
    let robot = start(Platform::Dingtalk, pinned(VECTOR_TS)).await;
    // The spec's full example URL, on loopback.
    let url = format!(
        "{}&timestamp={VECTOR_TS}&sign={VECTOR_SIGN_ONCE}",
        robot.url()
    );
    assert_eq!(post(&url, &text("vector")).await.errcode(), 0);
    assert_eq!(
        robot.accepted()[0].query,
        format!("access_token=TOKEN&timestamp={VECTOR_TS}&sign={VECTOR_SIGN_ONCE}")
    );
}

#[tokio::test]
async fn sign_encoding_mistakes_fail() {
    let robot = start(Platform::Dingtalk, pinned(VECTOR_TS)).await;
    let with = |ts: &str, sign: &str| format!("{}&timestamp={ts}&sign={sign}", robot.url());
    let ts = VECTOR_TS.to_string();
    let mac = base64::engine::general_purpose::STANDARD
        .decode(dingtalk_sign(SECRET, VECTOR_TS))
        .unwrap();
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    let swapped: String =
        url::form_urlencoded::byte_serialize(feishu_sign(SECRET, VECTOR_TS).as_bytes()).collect();
    let cases = [
        // Double-encoded, as Apprise / KubeSphere do.
        with(
            &ts,
            "OuzzJR5%252BxZ4%252FEYwqtNt6sMYZQMTa%252FHEGvc9miJe7XzY%253D",
        ),
        // Not encoded at all: `+` decodes to a space.
        with(&ts, "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="),
        // Hex digest instead of base64.
        with(&ts, &hex),
        // URL-safe base64 alphabet.
        with(&ts, "OuzzJR5-xZ4_EYwqtNt6sMYZQMTa_HEGvc9miJe7XzY%3D"),
        // Key/message roles swapped (Feishu's construction).
        with(&ts, &swapped),
        // Right sign, but for another timestamp.
        with(&(VECTOR_TS + 1).to_string(), VECTOR_SIGN_ONCE),
    ];
    for url in &cases {
        let r = post(url, &text("x")).await;
        assert_eq!(
            (r.errcode(), r.errmsg().as_str()),
            (310000, "sign not match"),
            "{url}"
        );
    }
    assert_eq!(robot.accepted_count(), 0);
    assert_eq!(robot.rejected_count(), cases.len());
}

#[tokio::test]
async fn timestamp_unit_and_skew() {
    let robot = start(
        Platform::Dingtalk,
        RobotOptions::new("tok").with_secret(SECRET).unthrottled(),
    )
    .await;
    let signed = |ts: u64| format!("{}&{}", robot.url(), dingtalk_sign_query(SECRET, ts));
    let now = now_ms();
    // Seconds instead of milliseconds (correctly signed over the seconds value).
    let r = post(&signed(now / 1000), &text("x")).await;
    assert_eq!(
        (r.errcode(), r.errmsg().as_str()),
        (310000, "invalid timestamp")
    );
    // Two hours stale / two hours ahead.
    assert_eq!(
        post(&signed(now - 7_200_000), &text("x")).await.errmsg(),
        "invalid timestamp"
    );
    assert_eq!(
        post(&signed(now + 7_200_000), &text("x")).await.errmsg(),
        "invalid timestamp"
    );
    // Within the hour either way.
    assert_eq!(
        post(&signed(now - 1_800_000), &text("x")).await.errcode(),
        0
    );
    assert_eq!(
        post(&signed(now + 1_800_000), &text("x")).await.errcode(),
        0
    );
    // Not a decimal.
    let url = format!("{}&timestamp=1.7e12&sign=x", robot.url());
    assert_eq!(post(&url, &text("x")).await.errmsg(), "invalid timestamp");
    assert_eq!(robot.accepted_count(), 2);
}

#[tokio::test]
async fn skew_boundary_is_inclusive() {
    let now = 1_700_000_000_000;
    let opts = pinned(now).with_max_skew(Duration::from_secs(10));
    let robot = start(Platform::Dingtalk, opts).await;
    let signed = |ts: u64| format!("{}&{}", robot.url(), dingtalk_sign_query(SECRET, ts));
    assert_eq!(post(&signed(now - 10_000), &text("x")).await.errcode(), 0);
    assert_eq!(post(&signed(now + 10_000), &text("x")).await.errcode(), 0);
    assert_eq!(
        post(&signed(now - 10_001), &text("x")).await.errmsg(),
        "invalid timestamp"
    );
    assert_eq!(
        post(&signed(now + 10_001), &text("x")).await.errmsg(),
        "invalid timestamp"
    );
}

#[tokio::test]
async fn keywords() {
    let robot = start(
        Platform::Dingtalk,
        RobotOptions::new("tok")
            .with_keywords(["gitee", "CI"])
            .unthrottled(),
    )
    .await;
    let url = robot.url();
    assert_eq!(post(&url, &text("push to gitee")).await.errcode(), 0);
    let r = post(&url, &text("push to github")).await;
    assert_eq!(
        (r.errcode(), r.errmsg().as_str()),
        (310000, "keywords not in content")
    );
    // Keyword only in markdown title counts.
    let md = json!({"msgtype":"markdown","markdown":{"title":"CI passed","text":"all green"}});
    assert_eq!(post(&url, &md).await.errcode(), 0);
    // Keyword only in a URL does not.
    let link =
        json!({"msgtype":"link","link":{"title":"t","text":"x","messageUrl":"https://gitee.com/"}});
    assert_eq!(post(&url, &link).await.errcode(), 310000);
    // feedCard titles count.
    let feed = json!({"msgtype":"feedCard","feedCard":{"links":[
        {"title":"nothing","messageURL":"https://a.b/"},{"title":"gitee issue","messageURL":"https://a.b/"}]}});
    assert_eq!(post(&url, &feed).await.errcode(), 0);
    // actionCard text counts.
    let card = json!({"msgtype":"actionCard","actionCard":{"title":"t","text":"via gitee",
        "singleTitle":"o","singleURL":"https://a.b/"}});
    assert_eq!(post(&url, &card).await.errcode(), 0);
    // Case-sensitive, like a substring match.
    assert_eq!(post(&url, &text("GITEE")).await.errcode(), 310000);
    assert_eq!(robot.accepted_count(), 4);
}

#[tokio::test]
async fn schema_errors() {
    let robot = start(Platform::Dingtalk, RobotOptions::new("tok").unthrottled()).await;
    let url = robot.url();
    let cases: Vec<(Value, i64)> = vec![
        (json!({"msgtype":"image","image":{"picURL":"x"}}), 400105),
        (json!({"msgtype":"Text","text":{"content":"x"}}), 400105),
        (json!({"text":{"content":"x"}}), 40035),
        (json!({"msgtype":"text"}), 40035),
        (json!({"msgtype":"text","text":{"content":""}}), 40035),
        (json!({"msgtype":"text","text":{"content":5}}), 40035),
        (json!({"msgtype":"text","text":"x"}), 40035),
        (
            json!({"msgtype":"markdown","markdown":{"text":"no title"}}),
            40035,
        ),
        (
            json!({"msgtype":"link","link":{"title":"t","text":"x"}}),
            40035,
        ),
        (
            json!({"msgtype":"link","link":{"title":"t","text":"x","messageURL":"https://a.b"}}),
            40035,
        ),
        (
            json!({"msgtype":"actionCard","actionCard":{"title":"t","text":"x"}}),
            40035,
        ),
        (
            json!({"msgtype":"actionCard","actionCard":{"title":"t","text":"x","btns":[]}}),
            40035,
        ),
        (
            json!({"msgtype":"actionCard","actionCard":{"title":"t","text":"x","singleTitle":"o"}}),
            40035,
        ),
        (
            json!({"msgtype":"actionCard","actionCard":{"title":"t","text":"x","btns":[{"title":"a","actionUrl":"u"}]}}),
            40035,
        ),
        (json!({"msgtype":"feedCard","feedCard":{"links":[]}}), 40035),
        (
            json!({"msgtype":"feedCard","feedCard":{"links":[{"title":"t","messageUrl":"u"}]}}),
            40035,
        ),
        (
            json!({"msgtype":"text","text":{"content":"x"},"at":["13800000000"]}),
            40035,
        ),
        (
            json!({"msgtype":"text","text":{"content":"x"},"at":{"atMobiles":[13800000000i64]}}),
            40035,
        ),
        (
            json!({"msgtype":"text","text":{"content":"x"},"at":{"atUserIds":"u1"}}),
            40035,
        ),
        (
            json!({"msgtype":"text","text":{"content":"x"},"at":{"isAtAll":"false"}}),
            40035,
        ),
    ];
    for (body, code) in &cases {
        assert_eq!(post(&url, body).await.errcode(), *code, "{body}");
    }
    for raw in ["", "{", "[1]", "\"text\"", "null"] {
        let r = post_raw(&url, raw).await;
        assert_eq!(
            (r.errcode(), r.errmsg().as_str()),
            (40035, "missing json body"),
            "{raw:?}"
        );
    }
    let r = post_ct(
        &url,
        "application/json",
        b"{\"msgtype\":\"text\",\"text\":{\"content\":\"\xff\"}}".to_vec(),
    )
    .await;
    assert_eq!(r.errcode(), 40035);
    let r = post_ct(&url, "text/plain", text("x").to_string()).await;
    assert_eq!(r.errcode(), 43004);
    let r = post_ct(
        &url,
        "application/json; charset=utf-8",
        text("x").to_string(),
    )
    .await;
    assert_eq!(r.errcode(), 0);
    assert_eq!(robot.accepted_count(), 1);
}

/// A text message whose body is exactly `len` bytes, padded with a multi-byte character
/// where possible so bytes ≠ chars.
fn text_of_len(len: usize) -> String {
    let shell = text("").to_string();
    let pad = len - shell.len();
    let content = format!("{}{}", "中".repeat(pad / 3), "a".repeat(pad % 3));
    let body = text(&content).to_string();
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn body_size_limit_in_bytes() {
    let robot = start(Platform::Dingtalk, RobotOptions::new("tok").unthrottled()).await;
    assert_eq!(
        post_raw(&robot.url(), &text_of_len(20_000)).await.errcode(),
        0
    );
    let r = post_raw(&robot.url(), &text_of_len(20_001)).await;
    assert_eq!(r.errcode(), 460101);
    assert!(r.errmsg().contains("20000"));
    assert_eq!(limits::DINGTALK_MAX_BODY_BYTES, 20_000);
}

#[tokio::test]
async fn default_quota_is_20_per_minute() {
    let robot = start(Platform::Dingtalk, RobotOptions::new("tok")).await;
    assert_eq!(robot.quotas(), &[Quota::new(20, MIN)]);
    for i in 0..20 {
        assert_eq!(
            post(&robot.url(), &text(&format!("m{i}"))).await.errcode(),
            0
        );
    }
    let r = post(&robot.url(), &text("m20")).await;
    assert_eq!(
        (r.errcode(), r.errmsg().as_str()),
        (130101, "send too fast, exceed 20 times per minute")
    );
    assert_eq!(robot.accepted_count(), 20);
    assert_eq!(robot.max_in_any_window(MIN), 20);
    assert_eq!(robot.rejected()[0].code, "130101");
    assert!(robot.rejected()[0].raw_body.contains("m20"));
}

#[tokio::test]
async fn rejected_messages_do_not_count_toward_the_quota() {
    let robot = start(
        Platform::Dingtalk,
        RobotOptions::new("tok").with_quotas(vec![Quota::new(2, MIN)]),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(
            post(&robot.url(), &json!({"msgtype":"nope"}))
                .await
                .errcode(),
            400105
        );
    }
    assert_eq!(post(&robot.url(), &text("a")).await.errcode(), 0);
    assert_eq!(post(&robot.url(), &text("b")).await.errcode(), 0);
    assert_eq!(post(&robot.url(), &text("c")).await.errcode(), 130101);
    // The rate-limited one does not count either: still exactly 2 in the window.
    assert_eq!(post(&robot.url(), &text("d")).await.errcode(), 130101);
    assert_eq!(robot.accepted_count(), 2);
}

#[tokio::test]
async fn sliding_window_frees_up() {
    let per = Duration::from_millis(300);
    let robot = start(
        Platform::Dingtalk,
        RobotOptions::new("tok").with_quotas(vec![Quota::new(2, per)]),
    )
    .await;
    assert_eq!(post(&robot.url(), &text("a")).await.errcode(), 0);
    assert_eq!(post(&robot.url(), &text("b")).await.errcode(), 0);
    assert_eq!(post(&robot.url(), &text("c")).await.errcode(), 130101);
    tokio::time::sleep(per + Duration::from_millis(50)).await;
    assert_eq!(post(&robot.url(), &text("d")).await.errcode(), 0);
    assert!(robot.max_in_any_window(per) <= 2);
}
