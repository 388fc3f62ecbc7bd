//! Server behaviour: parallel robots, waiting, windows, shutdown, throughput, concurrency
//! against quotas.

use crate::common::*;
use std::sync::Arc;
use std::time::Duration;

fn body_for(p: Platform) -> Value {
    match p {
        Platform::Dingtalk | Platform::Wecom => json!({"msgtype":"text","text":{"content":"x"}}),
        Platform::Feishu => json!({"msg_type":"text","content":{"text":"x"}}),
        Platform::Slack => json!({"text":"x"}),
    }
}

fn is_success(p: Platform, r: &Resp) -> bool {
    match p {
        Platform::Dingtalk | Platform::Wecom => r.errcode() == 0,
        Platform::Feishu => r.status == 200 && r.code() == 0,
        Platform::Slack => r.status == 200 && r.text == "ok",
    }
}

#[tokio::test]
async fn many_robots_side_by_side() {
    let mut robots = Vec::new();
    for i in 0..3 {
        for p in Platform::ALL {
            robots.push(start(p, RobotOptions::new(&format!("tok{i}")).unthrottled()).await);
        }
    }
    for r in &robots {
        let resp = post(&r.url(), &body_for(r.platform())).await;
        assert!(is_success(r.platform(), &resp), "{} {resp:?}", r.platform());
    }
    for r in &robots {
        assert_eq!((r.accepted_count(), r.requests()), (1, 1));
    }
}

#[tokio::test]
async fn wait_accepted_times_out_and_wakes() {
    let robot = Arc::new(start(Platform::Slack, RobotOptions::new("s").unthrottled()).await);
    assert!(!robot.wait_accepted(1, Duration::from_millis(50)).await);
    let url = robot.url();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        post(&url, &json!({"text":"late"})).await
    });
    assert!(robot.wait_accepted(1, Duration::from_secs(5)).await);
    assert_eq!(sender.await.unwrap().text, "ok");
    assert!(robot.wait_accepted(0, Duration::ZERO).await);
    assert!(!robot.wait_rejected(1, Duration::from_millis(20)).await);
    post(&robot.url(), &json!({})).await;
    assert!(robot.wait_rejected(1, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn max_in_any_window_measures_bursts() {
    let robot = start(Platform::Slack, RobotOptions::new("s").unthrottled()).await;
    for _ in 0..3 {
        post(&robot.url(), &json!({"text":"a"})).await;
    }
    // Far apart compared with the window, so a loaded machine cannot blur the two bursts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..2 {
        post(&robot.url(), &json!({"text":"b"})).await;
    }
    assert_eq!(robot.max_in_any_window(Duration::from_millis(1500)), 3);
    assert_eq!(robot.max_in_any_window(Duration::from_secs(10)), 5);
    assert_eq!(robot.max_in_any_window(Duration::ZERO), 0);
    robot.clear();
    assert_eq!(
        (
            robot.accepted_count(),
            robot.requests(),
            robot.max_in_any_window(SEC)
        ),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let robot = start(Platform::Wecom, RobotOptions::new("k").unthrottled()).await;
    let url = robot.url();
    assert_eq!(post(&url, &body_for(Platform::Wecom)).await.errcode(), 0);
    drop(robot);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = client();
    let r = try_post(&fresh, &url, "application/json", b"{}".to_vec()).await;
    assert!(r.is_err(), "{r:?}");
}

/// Concurrent senders against a real quota: exactly `max` get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_burst_respects_quota_exactly() {
    for p in Platform::ALL {
        // The platform's first quota count, but over a minute so a slow machine cannot
        // spread the burst over two windows.
        let max = p.default_quotas()[0].max;
        let robot = start(
            p,
            RobotOptions::new("t").with_quotas(vec![Quota::new(max, MIN)]),
        )
        .await;
        let client = client();
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (client, url, body) = (client.clone(), robot.url(), body_for(p).to_string());
            tasks.push(tokio::spawn(async move {
                try_post(&client, &url, "application/json", body.into_bytes())
                    .await
                    .unwrap()
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if is_success(p, &t.await.unwrap()) {
                ok += 1;
            }
        }
        assert_eq!(ok, max, "{p}");
        assert_eq!(robot.accepted_count(), max, "{p}");
        assert_eq!(robot.rejected_count(), 40 - max, "{p}");
        assert!(robot.max_in_any_window(robot.quotas()[0].per) <= max);
    }
}

/// A small throughput smoke test of an unthrottled robot (the benchmark does more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unthrottled_throughput_smoke() {
    let robot = start(Platform::Feishu, RobotOptions::new("h").unthrottled()).await;
    let client = client();
    let n_tasks = 16;
    let per_task = 250;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for t in 0..n_tasks {
        let (client, url) = (client.clone(), robot.url());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let body =
                    json!({"msg_type":"text","content":{"text":format!("{t}-{i}")}}).to_string();
                let r = try_post(&client, &url, "application/json", body.into_bytes())
                    .await
                    .unwrap();
                assert_eq!(r.code(), 0);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = n_tasks * per_task;
    assert!(robot.wait_accepted(total, Duration::from_secs(1)).await);
    assert_eq!(robot.requests(), total);
    let elapsed = started.elapsed();
    eprintln!(
        "{total} messages in {elapsed:?} ({:.0}/s, debug build)",
        total as f64 / elapsed.as_secs_f64()
    );
}
