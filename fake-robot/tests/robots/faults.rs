//! Scripted faults.

use crate::common::*;
use std::time::{Duration, Instant};

fn dt_text() -> Value {
    json!({"msgtype":"text","text":{"content":"x"}})
}

#[tokio::test]
async fn faults_are_consumed_fifo_then_normal_checks_resume() {
    let robot = start(Platform::Dingtalk, RobotOptions::new("t").unthrottled()).await;
    robot.push_fault(Fault::HttpStatus(502, "bad gateway".into()));
    robot.push_fault(Fault::PlatformError(-1, "system busy".into()));
    robot.push_fault(Fault::RateLimited {
        retry_after: Some(60),
    });
    assert_eq!(robot.pending_faults(), 3);

    let r = post(&robot.url(), &dt_text()).await;
    assert_eq!((r.status, r.text.as_str()), (502, "bad gateway"));
    let r = post(&robot.url(), &dt_text()).await;
    assert_eq!((r.errcode(), r.errmsg().as_str()), (-1, "system busy"));
    let r = post(&robot.url(), &dt_text()).await;
    assert_eq!(r.errcode(), 130101);
    assert_eq!(robot.pending_faults(), 0);
    assert_eq!(post(&robot.url(), &dt_text()).await.errcode(), 0);

    let codes: Vec<String> = robot.rejected().into_iter().map(|r| r.code).collect();
    assert_eq!(codes, ["502", "-1", "130101"]);
    assert_eq!(robot.accepted_count(), 1);
    assert_eq!(robot.requests(), 4);
}

#[tokio::test]
async fn faults_apply_even_to_invalid_requests() {
    let robot = start(Platform::Wecom, RobotOptions::new("k").unthrottled()).await;
    robot.push_fault(Fault::PlatformError(93000, "invalid webhook url".into()));
    // Wrong path, but the fault is consumed first.
    let r = post(&format!("{}/whatever", robot.base_url()), &json!({})).await;
    assert_eq!(r.errcode(), 93000);
    robot.push_fault(Fault::RateLimited { retry_after: None });
    assert_eq!(
        post(
            &robot.url(),
            &json!({"msgtype":"text","text":{"content":"x"}})
        )
        .await
        .errcode(),
        45009
    );
}

#[tokio::test]
async fn platform_shapes_of_faults() {
    let feishu = start(Platform::Feishu, RobotOptions::new("h").unthrottled()).await;
    feishu.push_fault(Fault::PlatformError(9499, "Bad Request".into()));
    feishu.push_fault(Fault::RateLimited {
        retry_after: Some(2),
    });
    let body = json!({"msg_type":"text","content":{"text":"x"}});
    let r = post(&feishu.url(), &body).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"code":9499,"msg":"Bad Request","data":{}}))
    );
    let r = post(&feishu.url(), &body).await;
    assert_eq!(r.code(), 11232);

    let slack = start(Platform::Slack, RobotOptions::new("s").unthrottled()).await;
    slack.push_fault(Fault::PlatformError(410, "channel_is_archived".into()));
    slack.push_fault(Fault::PlatformError(0, "invalid_token".into()));
    slack.push_fault(Fault::RateLimited {
        retry_after: Some(7),
    });
    slack.push_fault(Fault::RateLimited { retry_after: None });
    let body = json!({"text":"x"});
    let r = post(&slack.url(), &body).await;
    assert_eq!((r.status, r.text.as_str()), (410, "channel_is_archived"));
    let r = post(&slack.url(), &body).await;
    assert_eq!((r.status, r.text.as_str()), (400, "invalid_token"));
    let r = post(&slack.url(), &body).await;
    assert_eq!(
        (r.status, r.text.as_str(), r.retry_after.as_deref()),
        (429, "rate_limited", Some("7"))
    );
    let r = post(&slack.url(), &body).await;
    assert_eq!((r.status, r.retry_after), (429, None));
    assert_eq!(slack.rejected()[0].code, "channel_is_archived");
}

#[tokio::test]
async fn reset_drops_the_connection() {
    let robot = start(Platform::Slack, RobotOptions::new("s").unthrottled()).await;
    robot.push_fault(Fault::Reset);
    let client = client();
    let err = try_post(
        &client,
        &robot.url(),
        "application/json",
        b"{\"text\":\"x\"}".to_vec(),
    )
    .await;
    let err = err.unwrap_err();
    assert!(!err.is_timeout() && !err.is_status(), "{err:?}");
    eprintln!("reset seen by client as: {err:?}");
    assert_eq!(robot.rejected()[0].code, "reset");
    // The next request (new connection) is served normally.
    let r = try_post(
        &client,
        &robot.url(),
        "application/json",
        b"{\"text\":\"x\"}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.text, "ok");
    assert_eq!(robot.requests(), 2);
}

#[tokio::test]
async fn hang_exceeds_client_timeout_but_message_is_still_delivered() {
    let robot = start(Platform::Dingtalk, RobotOptions::new("t").unthrottled()).await;
    robot.push_fault(Fault::Hang(Duration::from_millis(600)));
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = try_post(
        &impatient,
        &robot.url(),
        "application/json",
        dt_text().to_string().into_bytes(),
    )
    .await;
    assert!(err.unwrap_err().is_timeout());
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(robot.accepted_count(), 0);
    assert!(robot.wait_accepted(1, Duration::from_secs(3)).await);
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn hang_then_reply_normally() {
    let robot = start(Platform::Wecom, RobotOptions::new("k").unthrottled()).await;
    robot.push_fault(Fault::Hang(Duration::from_millis(200)));
    let started = Instant::now();
    let r = post(
        &robot.url(),
        &json!({"msgtype":"text","text":{"content":"x"}}),
    )
    .await;
    assert_eq!(r.errcode(), 0);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(robot.rejected().is_empty());
}
