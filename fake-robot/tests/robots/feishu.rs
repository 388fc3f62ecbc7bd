//! Feishu / Lark custom bot checks (spec §3).

use crate::common::*;
use std::time::{Duration, UNIX_EPOCH};

const SUCCESS: &str =
    r#"{"code":0,"msg":"success","data":{},"StatusCode":0,"StatusMessage":"success"}"#;

fn text(t: &str) -> Value {
    json!({"msg_type":"text","content":{"text":t}})
}

fn signed(mut body: Value, secret: &str, ts: u64) -> Value {
    body["timestamp"] = json!(ts.to_string());
    body["sign"] = json!(feishu_sign(secret, ts));
    body
}

fn post_msg() -> Value {
    json!({"msg_type":"post","content":{"post":{
        "zh_cn":{"title":"PR #42 已创建","content":[[{"tag":"text","text":"作者: alice "},
            {"tag":"a","text":"查看","href":"https://gitee.com/o/r/pulls/42"},
            {"tag":"at","user_id":"ou_xxx","user_name":"Tom"}],
            [{"tag":"text","text":"通知: "},{"tag":"at","user_id":"all","user_name":"所有人"}]]},
        "en_us":{"title":"PR #42 opened","content":[[{"tag":"text","text":"by alice "},
            {"tag":"a","text":"open","href":"https://gitee.com/o/r/pulls/42"}]]}}}})
}

fn card_v1() -> Value {
    json!({"msg_type":"interactive","card":{"config":{"wide_screen_mode":true},
        "header":{"template":"green","title":{"tag":"plain_text","content":"PR #42 merged"}},
        "elements":[{"tag":"div","text":{"tag":"lark_md","content":"**o/r** by alice"}},{"tag":"hr"},
            {"tag":"action","actions":[{"tag":"button","type":"primary",
                "text":{"tag":"plain_text","content":"Open"},"url":"https://gitee.com/o/r/pulls/42"}]},
            {"tag":"note","elements":[{"tag":"plain_text","content":"Gitee relay"}]}]}})
}

fn card_v2() -> Value {
    json!({"msg_type":"interactive","card":{"schema":"2.0","config":{"update_multi":true},
        "header":{"template":"blue","title":{"tag":"plain_text","content":"Release v1.2.0"}},
        "body":{"direction":"vertical","elements":[
            {"tag":"markdown","content":"## Changes\n- fix A"},
            {"tag":"button","type":"primary","text":{"tag":"plain_text","content":"Open"},
             "behaviors":[{"type":"open_url","default_url":"https://gitee.com/o/r/releases"}]}]}}})
}

#[tokio::test]
async fn accepts_spec_examples() {
    let robot = start(Platform::Feishu, RobotOptions::new("hook-1").unthrottled()).await;
    assert_eq!(
        robot.url(),
        format!("http://{}/open-apis/bot/v2/hook/hook-1", robot.addr())
    );
    let bodies = [
        text("<at user_id=\"ou_xxx\">Tom</at> PR #42 needs review"),
        post_msg(),
        card_v1(),
        card_v2(),
        json!({"msg_type":"interactive","card":{"type":"template","data":{"template_id":"AAq1",
              "template_version_name":"1.0.0","template_variable":{}}}}),
        json!({"msg_type":"image","content":{"image_key":"img_ecffc3b9"}}),
        json!({"msg_type":"share_chat","content":{"share_chat_id":"oc_f5b1a7eb"}}),
    ];
    for b in &bodies {
        let r = post(&robot.url(), b).await;
        assert_eq!((r.status, r.text.as_str()), (200, SUCCESS), "{b}");
    }
    assert_eq!(robot.accepted_count(), bodies.len());
}

#[tokio::test]
async fn unknown_hook_and_bad_json() {
    let robot = start(Platform::Feishu, RobotOptions::new("hook-1").unthrottled()).await;
    let r = post(
        &format!("{}/open-apis/bot/v2/hook/other", robot.base_url()),
        &text("x"),
    )
    .await;
    assert_eq!(r.code(), 19001);
    let r = post(
        &format!("{}/open-apis/bot/v2/hooks/hook-1", robot.base_url()),
        &text("x"),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post_raw(&robot.url(), "{nope").await;
    assert_eq!((r.status, r.code()), (400, 9499));
    let r = post_ct(&robot.url(), "text/plain", text("x").to_string()).await;
    assert_eq!(r.code(), 9499);
    assert_eq!(robot.accepted_count(), 0);
}

#[tokio::test]
async fn spec_vector_with_pinned_clock() {
    let opts = RobotOptions::new("h")
        .with_secret("demo")
        .with_fixed_clock(UNIX_EPOCH + Duration::from_secs(1_599_360_473))
        .unthrottled();
    let robot = start(Platform::Feishu, opts).await;
    let mut body = text("vector");
    body["timestamp"] = json!("1599360473");
    body["sign"] = json!("l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8=");
    assert_eq!(post(&robot.url(), &body).await.code(), 0);
    // A JSON number timestamp is tolerated (KubeSphere sends one).
    body["timestamp"] = json!(1_599_360_473u64);
    assert_eq!(post(&robot.url(), &body).await.code(), 0);
    // DingTalk's key/message roles (spec vector row 3) must fail.
    body["timestamp"] = json!("1599360473");
    body["sign"] = json!("DkEDUyVoOOJ539qBvUgMyzkzIdRWlf4e/V3Rq+ONJnQ=");
    let r = post(&robot.url(), &body).await;
    assert_eq!(r.code(), 19021);
    assert_eq!(
        r.json()["msg"],
        "sign match fail or timestamp is not within one hour from current time"
    );
    assert_eq!(robot.accepted_count(), 2);
}

#[tokio::test]
async fn sign_mode_live() {
    let robot = start(
        Platform::Feishu,
        RobotOptions::new("h").with_secret("s3cr3t").unthrottled(),
    )
    .await;
    let now = now_s();
    assert_eq!(
        post(&robot.url(), &signed(text("ok"), "s3cr3t", now))
            .await
            .code(),
        0
    );
    assert_eq!(
        post(&robot.url(), &signed(text("ok"), "s3cr3t", now - 1800))
            .await
            .code(),
        0
    );
    let bad = [
        text("unsigned"),
        signed(text("wrong secret"), "other", now),
        signed(text("stale"), "s3cr3t", now - 7200),
        signed(text("future"), "s3cr3t", now + 7200),
        signed(text("milliseconds"), "s3cr3t", now * 1000),
        {
            let mut b = signed(text("ts not decimal"), "s3cr3t", now);
            b["timestamp"] = json!(format!("{now}.0"));
            b
        },
        {
            let mut b = signed(text("sign missing"), "s3cr3t", now);
            b.as_object_mut().unwrap().remove("sign");
            b
        },
        {
            let mut b = text("sign in query instead of body");
            b["timestamp"] = json!(now.to_string());
            b
        },
    ];
    for b in &bad {
        assert_eq!(post(&robot.url(), b).await.code(), 19021, "{b}");
    }
    assert_eq!(robot.accepted_count(), 2);
}

#[tokio::test]
async fn keywords_only_in_text_values() {
    let robot = start(
        Platform::Feishu,
        RobotOptions::new("h")
            .with_keywords(["gitee"])
            .unthrottled(),
    )
    .await;
    assert_eq!(post(&robot.url(), &text("from gitee")).await.code(), 0);
    let r = post(&robot.url(), &text("from github")).await;
    assert_eq!(
        (r.code(), r.json()["msg"].as_str().unwrap()),
        (19024, "Key Words Not Found")
    );
    // Only in an href → not found.
    let href_only = json!({"msg_type":"post","content":{"post":{"en_us":{"title":"PR","content":[[
        {"tag":"a","text":"open","href":"https://gitee.com/o/r"}]]}}}});
    assert_eq!(post(&robot.url(), &href_only).await.code(), 19024);
    // In a post title → found; in a card's content → found; in a card URL only → not.
    assert_eq!(post(&robot.url(), &post_msg()).await.code(), 19024);
    let mut titled = post_msg();
    titled["content"]["post"]["en_us"]["title"] = json!("gitee PR");
    assert_eq!(post(&robot.url(), &titled).await.code(), 0);
    let mut card = card_v1();
    card["card"]["header"]["title"]["content"] = json!("gitee merged");
    assert_eq!(post(&robot.url(), &card).await.code(), 0);
    assert_eq!(post(&robot.url(), &card_v1()).await.code(), 19024);
    assert_eq!(robot.accepted_count(), 3);
}

#[tokio::test]
async fn schema_errors() {
    let robot = start(Platform::Feishu, RobotOptions::new("h").unthrottled()).await;
    let mut bad_href = post_msg();
    bad_href["content"]["post"]["zh_cn"]["content"][0][1]["href"] = json!("gitee.com/o/r");
    let mut js_href = post_msg();
    js_href["content"]["post"]["zh_cn"]["content"][0][1]["href"] = json!("javascript:alert(1)");
    let mut bad_tag = post_msg();
    bad_tag["content"]["post"]["en_us"]["content"][0][0]["tag"] = json!("bold");
    let mut flat = post_msg();
    flat["content"]["post"]["en_us"]["content"] = json!([{"tag":"text","text":"x"}]);
    let mut v2_no_body = card_v2();
    v2_no_body["card"].as_object_mut().unwrap().remove("body");
    let mut v2_flat = card_v2();
    v2_flat["card"]["elements"] = v2_flat["card"]["body"]["elements"].take();
    v2_flat["card"].as_object_mut().unwrap().remove("body");
    let mut header_no_title = card_v1();
    header_no_title["card"]["header"] = json!({"template":"green"});
    let mut element_no_tag = card_v1();
    element_no_tag["card"]["elements"][1] = json!({"text":"x"});
    let cases: Vec<(Value, i64)> = vec![
        (json!({"content":{"text":"x"}}), 19002),
        (json!({"msg_type":"text"}), 19002),
        (
            json!({"msg_type":"interactive","content":{"card":{}}}),
            19002,
        ),
        (json!({"msg_type":"markdown","content":{"text":"x"}}), 19001),
        (json!({"msg_type":"text","content":{"text":""}}), 19001),
        (json!({"msg_type":"text","content":"x"}), 19001),
        (
            json!({"msg_type":"post","content":{"post":{"fr_fr":{"content":[]}}}}),
            19001,
        ),
        (
            json!({"msg_type":"interactive","card":"{\"elements\":[]}"}),
            19001,
        ),
        (
            json!({"msg_type":"interactive","card":{"schema":"3.0","body":{"elements":[]}}}),
            19001,
        ),
        (json!({"msg_type":"image","content":{}}), 19001),
        (bad_href, 19001),
        (js_href, 19001),
        (bad_tag, 19001),
        (flat, 19001),
        (v2_no_body, 19001),
        (v2_flat, 19001),
        (header_no_title, 19001),
        (element_no_tag, 19001),
    ];
    for (body, code) in &cases {
        assert_eq!(post(&robot.url(), body).await.code(), *code, "{body}");
    }
    assert_eq!(robot.accepted_count(), 0);
}

fn text_of_len(len: usize) -> String {
    let shell = text("").to_string();
    let pad = len - shell.len();
    let body = text(&format!("{}{}", "飞".repeat(pad / 3), "a".repeat(pad % 3))).to_string();
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn body_limit_is_20_kib() {
    let robot = start(Platform::Feishu, RobotOptions::new("h").unthrottled()).await;
    assert_eq!(
        post_raw(&robot.url(), &text_of_len(20 * 1024)).await.code(),
        0
    );
    assert_eq!(
        post_raw(&robot.url(), &text_of_len(20 * 1024 + 1))
            .await
            .code(),
        19036
    );
}

#[tokio::test]
async fn quotas_5_per_second_and_100_per_minute() {
    let robot = start(Platform::Feishu, RobotOptions::new("h")).await;
    assert_eq!(robot.quotas(), &[Quota::new(5, SEC), Quota::new(100, MIN)]);
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(post(&robot.url(), &text("x")).await.code());
    }
    assert_eq!(codes, [0, 0, 0, 0, 0, 11232]);
    let r = robot.rejected();
    assert!(
        r[0].reason.starts_with("frequency limited psm["),
        "{}",
        r[0].reason
    );
    assert!(robot.max_in_any_window(SEC) <= 5);

    // The per-minute quota on its own (scaled down so the test is fast).
    let quotas = vec![
        Quota::new(5, Duration::from_millis(100)),
        Quota::new(7, MIN),
    ];
    let robot = start(Platform::Feishu, RobotOptions::new("h").with_quotas(quotas)).await;
    let mut accepted = 0;
    for _ in 0..12 {
        if post(&robot.url(), &text("x")).await.code() == 0 {
            accepted += 1;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(accepted, 7);
    assert!(robot.max_in_any_window(Duration::from_millis(100)) <= 5);
}

#[tokio::test]
async fn without_bodies_still_checks_everything_and_keeps_times_for_quotas() {
    let robot = start(
        Platform::Feishu,
        RobotOptions::new("h")
            .with_secret("s3cr3t")
            .with_quotas(vec![Quota::new(2, MIN)])
            .without_bodies(),
    )
    .await;
    let now = now_s();
    let bad = signed(text("wrong secret"), "other", now);
    assert_eq!(post(&robot.url(), &bad).await.code(), 19021);
    let schema = signed(json!({"msg_type":"text","content":{}}), "s3cr3t", now);
    assert_ne!(post(&robot.url(), &schema).await.code(), 0);
    let good = signed(text("ok"), "s3cr3t", now);
    let codes = [
        post(&robot.url(), &good).await.code(),
        post(&robot.url(), &good).await.code(),
        post(&robot.url(), &good).await.code(),
    ];
    assert_eq!(codes, [0, 0, 11232], "the quota still counts kept times");
    assert_eq!(robot.accepted_count(), 2);
    assert_eq!(robot.rejected_count(), 3);
    // Counted, timed, but no body kept.
    robot.with_accepted(|accepted| {
        assert_eq!(accepted.len(), 2);
        assert!(
            accepted
                .iter()
                .all(|a| a.body.is_null() && a.raw.is_empty())
        );
    });
    // The default keeps them.
    let keeping = start(Platform::Feishu, RobotOptions::new("k").unthrottled()).await;
    assert_eq!(post(&keeping.url(), &text("kept")).await.code(), 0);
    assert_eq!(keeping.accepted()[0].body["content"]["text"], "kept");
}
