//! Slack incoming-webhook checks (spec §4).

use crate::common::*;

fn spec_blocks() -> Value {
    json!({"text":"PR #42 opened in o/r (fallback for notifications)",
        "blocks":[
            {"type":"header","text":{"type":"plain_text","text":"PR #42 opened"}},
            {"type":"section","text":{"type":"mrkdwn","text":"*<https://gitee.com/o/r/pulls/42|Fix>*\nby alice"},
             "fields":[{"type":"mrkdwn","text":"*Repo*\no/r"},{"type":"mrkdwn","text":"*Branch*\nmain"}]},
            {"type":"context","elements":[{"type":"mrkdwn","text":"Gitee"}]},
            {"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Open PR"},
                                           "url":"https://gitee.com/o/r/pulls/42"}]},
            {"type":"divider"},
            {"type":"markdown","text":"**bold** [x](https://gitee.com)"},
            {"type":"image","image_url":"https://example.invalid/p.png","alt_text":"p"},
            {"type":"rich_text","elements":[{"type":"rich_text_section","elements":[{"type":"text","text":"hi"}]}]}]})
}

fn with_blocks(blocks: Value) -> Value {
    json!({"text":"fallback","blocks":blocks})
}

fn header(t: &str) -> Value {
    json!({"type":"header","text":{"type":"plain_text","text":t}})
}

fn section(t: &str) -> Value {
    json!({"type":"section","text":{"type":"mrkdwn","text":t}})
}

fn field(t: &str) -> Value {
    json!({"type":"mrkdwn","text":t})
}

fn button(url: Option<&str>) -> Value {
    let mut b = json!({"type":"button","text":{"type":"plain_text","text":"Open"}});
    if let Some(u) = url {
        b["url"] = json!(u);
    }
    b
}

#[tokio::test]
async fn accepts_spec_payloads() {
    let robot = start(Platform::Slack, RobotOptions::new("XXXX").unthrottled()).await;
    assert_eq!(
        robot.url(),
        format!("http://{}/services/T000/B000/XXXX", robot.addr())
    );
    let bodies = [
        json!({"text":"PR #42 opened in o/r by alice"}),
        spec_blocks(),
        json!({"attachments":[{"color":"#36a64f","fallback":"Build passed","title":"Build #17 passed",
               "fields":[{"title":"Branch","value":"main","short":true}]}]}),
        json!({"blocks":[section("blocks only, no text")]}),
    ];
    for b in &bodies {
        let r = post(&robot.url(), b).await;
        assert_eq!((r.status, r.text.as_str()), (200, "ok"), "{b}");
        assert!(
            r.content_type.starts_with("text/html"),
            "{}",
            r.content_type
        );
    }
    assert_eq!(robot.accepted_count(), bodies.len());
    assert!(robot.accepted().iter().all(|a| a.notes.is_empty()));
}

#[tokio::test]
async fn wrong_path_invalid_payload_no_text() {
    let robot = start(Platform::Slack, RobotOptions::new("XXXX").unthrottled()).await;
    let base = robot.base_url();
    for path in [
        "/services/T000/B000/YYYY",
        "/services/T001/B000/XXXX",
        "/services/T000/B000/XXXX/",
        "/",
    ] {
        let r = post(&format!("{base}{path}"), &json!({"text":"x"})).await;
        assert_eq!((r.status, r.text.as_str()), (404, "no_service"), "{path}");
    }
    let r = post_raw(&robot.url(), "text=hello").await;
    assert_eq!((r.status, r.text.as_str()), (400, "invalid_payload"));
    let r = post_ct(
        &robot.url(),
        "application/x-www-form-urlencoded",
        "payload=%7B%7D",
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (400, "invalid_payload"));
    let r = post(&robot.url(), &json!({"text": 5})).await;
    assert_eq!((r.status, r.text.as_str()), (400, "invalid_payload"));
    for empty in [
        json!({}),
        json!({"text":""}),
        json!({"blocks":[]}),
        json!({"attachments":[]}),
    ] {
        let r = post(&robot.url(), &empty).await;
        assert_eq!((r.status, r.text.as_str()), (400, "no_text"), "{empty}");
    }
    let many: Vec<Value> = (0..101).map(|_| json!({"text":"a"})).collect();
    let r = post(&robot.url(), &json!({"attachments": many})).await;
    assert_eq!((r.status, r.text.as_str()), (400, "too_many_attachments"));
    assert_eq!(robot.accepted_count(), 0);
    assert_eq!(robot.rejected()[0].code, "no_service");
}

#[tokio::test]
async fn block_limits_count_chars() {
    let robot = start(Platform::Slack, RobotOptions::new("s").unthrottled()).await;
    let ok_cases = vec![
        with_blocks(Value::Array(
            (0..50).map(|_| json!({"type":"divider"})).collect(),
        )),
        with_blocks(json!([header(&"é".repeat(150))])), // 150 chars, 300 bytes
        with_blocks(json!([section(&"中".repeat(3000))])), // 3000 chars, 9000 bytes
        with_blocks(
            json!([{"type":"section","fields":(0..10).map(|_| field(&"é".repeat(2000))).collect::<Vec<_>>()}]),
        ),
        with_blocks(
            json!([{"type":"context","elements":(0..10).map(|_| field("c")).collect::<Vec<_>>()}]),
        ),
        with_blocks(
            json!([{"type":"actions","elements":(0..25).map(|_| button(Some("https://a.b"))).collect::<Vec<_>>()}]),
        ),
    ];
    for b in &ok_cases {
        let r = post(&robot.url(), b).await;
        assert_eq!((r.status, r.text.as_str()), (200, "ok"));
    }
    let bad_cases = vec![
        with_blocks(Value::Array(
            (0..51).map(|_| json!({"type":"divider"})).collect(),
        )),
        with_blocks(json!([header(&"é".repeat(151))])),
        with_blocks(json!([{"type":"header","text":{"type":"mrkdwn","text":"x"}}])),
        with_blocks(json!([section(&"中".repeat(3001))])),
        with_blocks(json!([section("")])),
        with_blocks(json!([{"type":"section"}])),
        with_blocks(
            json!([{"type":"section","fields":(0..11).map(|_| field("f")).collect::<Vec<_>>()}]),
        ),
        with_blocks(json!([{"type":"section","fields":[field(&"é".repeat(2001))]}])),
        with_blocks(
            json!([{"type":"context","elements":(0..11).map(|_| field("c")).collect::<Vec<_>>()}]),
        ),
        with_blocks(json!([{"type":"context","elements":[button(Some("https://a.b"))]}])),
        with_blocks(
            json!([{"type":"actions","elements":(0..26).map(|_| button(Some("https://a.b"))).collect::<Vec<_>>()}]),
        ),
        with_blocks(json!([{"type":"actions","elements":[button(None)]}])),
        with_blocks(json!([{"type":"actions","elements":[{"type":"button","url":"https://a.b"}]}])),
        with_blocks(json!([{"type":"table"}])),
        with_blocks(json!([{"text":"no type"}])),
        with_blocks(json!(["divider"])),
        with_blocks(json!({"type":"divider"})),
        with_blocks(json!([{"type":"image","image_url":"https://a.b/p.png"}])),
        with_blocks(
            json!([{"type":"markdown","text":"a".repeat(6000)},{"type":"markdown","text":"b".repeat(6001)}]),
        ),
        with_blocks(json!([{"type":"divider","block_id":"x".repeat(256)}])),
    ];
    for b in &bad_cases {
        let r = post(&robot.url(), b).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (400, "invalid_blocks"),
            "{}",
            &b.to_string()[..100.min(b.to_string().len())]
        );
    }
    assert_eq!(robot.accepted_count(), ok_cases.len());
}

#[tokio::test]
async fn long_text_is_accepted_but_noted() {
    let robot = start(Platform::Slack, RobotOptions::new("s").unthrottled()).await;
    // 40 000 chars (120 000 bytes) is fine.
    assert_eq!(
        post(&robot.url(), &json!({"text":"中".repeat(40_000)}))
            .await
            .text,
        "ok"
    );
    assert_eq!(
        post(&robot.url(), &json!({"text":"x".repeat(40_001)}))
            .await
            .text,
        "ok"
    );
    let a = robot.accepted();
    assert!(a[0].notes.is_empty());
    assert_eq!(a[1].notes, ["text truncated: 40001 chars > 40000"]);
}

#[tokio::test]
async fn rate_limit_is_429_with_retry_after() {
    let robot = start(Platform::Slack, RobotOptions::new("s")).await;
    assert_eq!(robot.quotas(), &[Quota::new(1, SEC)]);
    assert_eq!(post(&robot.url(), &json!({"text":"1"})).await.text, "ok");
    let r = post(&robot.url(), &json!({"text":"2"})).await;
    assert_eq!((r.status, r.text.as_str()), (429, "rate_limited"));
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    // Retry-After reports the seconds until the window frees, rounded up.
    let robot = start(
        Platform::Slack,
        RobotOptions::new("s").with_quotas(vec![Quota::new(1, 3 * SEC)]),
    )
    .await;
    assert_eq!(post(&robot.url(), &json!({"text":"1"})).await.text, "ok");
    let r = post(&robot.url(), &json!({"text":"2"})).await;
    assert_eq!((r.status, r.retry_after.as_deref()), (429, Some("3")));
    assert_eq!(robot.rejected()[0].code, "rate_limited");

    // A zero quota refuses everything and advertises the whole window.
    let robot = start(
        Platform::Slack,
        RobotOptions::new("s").with_quotas(vec![Quota::new(0, 2 * SEC)]),
    )
    .await;
    let r = post(&robot.url(), &json!({"text":"1"})).await;
    assert_eq!((r.status, r.retry_after.as_deref()), (429, Some("2")));
    assert_eq!(robot.with_accepted(|a| a.len()), 0);
    assert!(robot.last_accepted().is_none());
}
