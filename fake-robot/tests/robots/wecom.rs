//! WeCom group robot checks (spec §2).

use crate::common::*;

fn text(content: &str) -> Value {
    json!({"msgtype":"text","text":{"content":content}})
}

fn md(kind: &str, content: &str) -> Value {
    json!({"msgtype":kind, kind:{"content":content}})
}

fn card() -> Value {
    json!({"msgtype":"template_card",
        "template_card":{"card_type":"text_notice",
            "source":{"desc":"Gitee","desc_color":0},
            "main_title":{"title":"PR #42 merged","desc":"o/r"},
            "emphasis_content":{"title":"3","desc":"commits"},
            "horizontal_content_list":[{"keyname":"author","value":"alice"},
                {"keyname":"link","value":"open","type":1,"url":"https://gitee.com/o/r/pulls/42"}],
            "jump_list":[{"type":1,"title":"View PR","url":"https://gitee.com/o/r/pulls/42"}],
            "card_action":{"type":1,"url":"https://gitee.com/o/r/pulls/42"}}})
}

fn article(i: usize) -> Value {
    json!({"title":format!("Issue #{i}"),"description":"by bob","url":"https://gitee.com/o/r/issues/7",
           "picurl":"https://example.invalid/p.png"})
}

fn news(n: usize) -> Value {
    json!({"msgtype":"news","news":{"articles":(0..n).map(article).collect::<Vec<_>>()}})
}

#[tokio::test]
async fn accepts_spec_examples() {
    let robot = start(Platform::Wecom, RobotOptions::new("k-123").unthrottled()).await;
    assert_eq!(
        robot.url(),
        format!("http://{}/cgi-bin/webhook/send?key=k-123", robot.addr())
    );
    let bodies = [
        json!({"msgtype":"text","text":{"content":"gitee/demo: build failed on main",
              "mentioned_list":["zhangsan","@all"],"mentioned_mobile_list":["13800001111"]}}),
        md(
            "markdown",
            "## PR #42 <font color=\"warning\">needs review</font>\n<@zhangsan>",
        ),
        md(
            "markdown_v2",
            "# Release v1.2.0\n- fix A\n\n| file | +/- |\n|:--|--:|\n| a.rs | +3 |",
        ),
        news(1),
        news(8),
        card(),
        json!({"msgtype":"template_card","template_card":{"card_type":"news_notice",
              "card_action":{"type":1,"url":"https://gitee.com"},"card_image":{"url":"https://a.b/p.png"}}}),
        json!({"msgtype":"file","file":{"media_id":"3a8asd892asd8asd"}}),
        json!({"msgtype":"image","image":{"base64":"aGVsbG8=","md5":"5d41402abc4b2a76b9719d911017c592"}}),
    ];
    for b in &bodies {
        let r = post(&robot.url(), b).await;
        assert_eq!(r.text, r#"{"errcode":0,"errmsg":"ok"}"#, "{b}");
    }
    assert_eq!(robot.accepted_count(), bodies.len());
}

#[tokio::test]
async fn wrong_key_and_empty_body() {
    let robot = start(Platform::Wecom, RobotOptions::new("k").unthrottled()).await;
    let base = robot.base_url();
    assert_eq!(
        post(&format!("{base}/cgi-bin/webhook/send?key=x"), &text("a"))
            .await
            .errcode(),
        93000
    );
    assert_eq!(
        post(&format!("{base}/cgi-bin/webhook/send"), &text("a"))
            .await
            .errcode(),
        93000
    );
    assert_eq!(post_raw(&robot.url(), "").await.errcode(), 93017);
    assert_eq!(post_raw(&robot.url(), "{oops").await.errcode(), 40058);
    assert_eq!(
        post_ct(&robot.url(), "text/plain", text("a").to_string())
            .await
            .errcode(),
        40058
    );
    assert_eq!(
        post(&format!("{base}/cgi-bin/webhook/upload?key=k"), &text("a"))
            .await
            .status,
        404
    );
    assert_eq!(robot.accepted_count(), 0);
}

#[tokio::test]
async fn text_limit_is_2048_bytes_not_chars() {
    let robot = start(Platform::Wecom, RobotOptions::new("k").unthrottled()).await;
    // 682 × 3 bytes + 2 = 2048 bytes (684 chars).
    let ok = format!("{}ab", "中".repeat(682));
    assert_eq!(ok.len(), 2048);
    assert_eq!(post(&robot.url(), &text(&ok)).await.errcode(), 0);
    // 683 chars but 2049 bytes.
    let too_long = "中".repeat(683);
    assert_eq!(too_long.chars().count(), 683);
    assert_eq!(post(&robot.url(), &text(&too_long)).await.errcode(), 40058);
    assert_eq!(
        post(&robot.url(), &text(&"a".repeat(2049))).await.errcode(),
        40058
    );
    assert_eq!(post(&robot.url(), &text("")).await.errcode(), 44004);
    assert_eq!(
        post(&robot.url(), &json!({"msgtype":"text","text":{}}))
            .await
            .errcode(),
        44004
    );
}

#[tokio::test]
async fn markdown_limit_is_4096_bytes() {
    let robot = start(Platform::Wecom, RobotOptions::new("k").unthrottled()).await;
    for kind in ["markdown", "markdown_v2"] {
        let ok = format!("{}a", "é".repeat(2047)); // 4095 bytes; + "b" below = 4096
        assert_eq!(ok.len(), 4095);
        assert_eq!(
            post(&robot.url(), &md(kind, &format!("{ok}b")))
                .await
                .errcode(),
            0
        );
        let r = post(&robot.url(), &md(kind, &"é".repeat(2049))).await; // 2049 chars, 4098 bytes
        assert_eq!(r.errcode(), 40058);
        assert!(
            r.errmsg()
                .starts_with(&format!("{kind}.content exceed max length 4096")),
            "{}",
            r.errmsg()
        );
        assert_eq!(post(&robot.url(), &md(kind, "")).await.errcode(), 44004);
    }
    assert_eq!(limits::WECOM_MAX_MARKDOWN_BYTES, 4096);
}

#[tokio::test]
async fn schema_errors() {
    let robot = start(Platform::Wecom, RobotOptions::new("k").unthrottled()).await;
    let mut no_action = card();
    no_action["template_card"]
        .as_object_mut()
        .unwrap()
        .remove("card_action");
    let mut bad_type = card();
    bad_type["template_card"]["card_type"] = json!("button_interaction");
    let mut no_title = card();
    no_title["template_card"]
        .as_object_mut()
        .unwrap()
        .remove("main_title");
    let mut many_jumps = card();
    many_jumps["template_card"]["jump_list"] = json!([{}, {}, {}, {}]);
    let cases: Vec<(Value, i64)> = vec![
        (json!({"msgtype":"textcard","textcard":{}}), 40008),
        (json!({"text":{"content":"x"}}), 40008),
        (
            json!({"msgtype":"text","text":{"content":"x","mentioned_list":"zhangsan"}}),
            40058,
        ),
        (
            json!({"msgtype":"text","text":{"content":"x","mentioned_mobile_list":[138]}}),
            40058,
        ),
        (json!({"msgtype":"text","text":"x"}), 40058),
        (news(0), 40058),
        (news(9), 40058),
        (
            json!({"msgtype":"news","news":{"articles":[{"title":"t"}]}}),
            40058,
        ),
        (no_action, 40058),
        (bad_type, 40058),
        (no_title, 40058),
        (many_jumps, 40058),
        (
            json!({"msgtype":"image","image":{"base64":"!!","md5":"5d41402abc4b2a76b9719d911017c592"}}),
            40058,
        ),
        (json!({"msgtype":"file","file":{}}), 40058),
    ];
    for (body, code) in &cases {
        assert_eq!(post(&robot.url(), body).await.errcode(), *code, "{body}");
    }
    assert_eq!(robot.accepted_count(), 0);
    assert_eq!(robot.rejected_count(), cases.len());
}

#[tokio::test]
async fn long_news_title_is_accepted_with_a_note() {
    let robot = start(Platform::Wecom, RobotOptions::new("k").unthrottled()).await;
    let mut n = news(1);
    n["news"]["articles"][0]["title"] = json!("标".repeat(43)); // 129 bytes
    assert_eq!(post(&robot.url(), &n).await.errcode(), 0);
    assert_eq!(
        robot.accepted()[0].notes,
        ["news.articles[0].title truncated to 128 bytes"]
    );
}

#[tokio::test]
async fn quota_gives_45009() {
    let robot = start(Platform::Wecom, RobotOptions::new("k")).await;
    assert_eq!(robot.quotas(), &[Quota::new(20, MIN)]);
    for _ in 0..20 {
        assert_eq!(post(&robot.url(), &text("x")).await.errcode(), 0);
    }
    assert_eq!(post(&robot.url(), &text("x")).await.errcode(), 45009);
    assert_eq!(robot.max_in_any_window(MIN), 20);
}
