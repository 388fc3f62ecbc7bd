//! Issue 4: the messages themselves, through the endpoint to the fake robots. Huge payloads fit
//! every platform and keep their links; @mentions land in the right fields; `mention: false`
//! turns them off; editing a template changes the next message and a broken edit does not.

use crate::helpers::*;
use fake_robot::{Accepted, FakeRobot};
use gitee_relay::config::Config;
use gitee_relay::startup::Relay;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const PUSH: &str = include_str!("../../samples/push.json");
const NOTE: &str = include_str!("../../samples/note_pull_request.json");
const PR: &str = include_str!("../../samples/merge_request_assign.json");

const WAIT: Duration = Duration::from_secs(20);

/// `people:` for the mention tests: alice by mobile number on DingTalk, carol by userId.
const PEOPLE: &str = r#"
people:
  alice: { dingtalk: "13800000001", wecom: alice, feishu: ou_alice, slack: U01ALICE }
  carol: { dingtalk: carol.li, wecom: carol, feishu: ou_carol, slack: U02CAROL }
"#;

/// A relay on fresh fake robots whose `routes:` and extra top-level keys are given.
async fn spawn(routes: &str, extra: &str) -> TestRelay {
    let robots = Robots::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&robots, &dir.path().join("relay.db"), extra).replace(
        "routes:\n  - to: [ding, wecom, lark, slack]\n",
        &format!("routes:\n{routes}"),
    );
    let config = Config::from_yaml(&dir.path().join("config.yaml"), &yaml, &|_| None)
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
    let relay = Relay::start(config.clone()).await.unwrap();
    TestRelay {
        base: format!("http://127.0.0.1:{}", relay.port()),
        relay: Some(relay),
        client: reqwest::Client::new(),
        robots,
        dir,
        config,
    }
}

const ALL_ROUTE: &str = "  - to: [ding, wecom, lark, slack]\n";

/// Sends `body` and waits until every robot accepted `n` messages in all; the last ones.
async fn send_and_collect(app: &TestRelay, event: &str, body: &[u8], n: usize) -> Vec<Accepted> {
    let resp = app.send(event, body).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let mut out = Vec::new();
    for robot in app.robots.all() {
        assert!(
            robot.wait_accepted(n, WAIT).await,
            "{:?} accepted {} of {n}; refused: {:?}",
            robot.platform(),
            robot.accepted_count(),
            robot.rejected()
        );
        out.push(robot.last_accepted().unwrap());
    }
    out
}

/// The text fields of a body, joined (markup included).
fn texts(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s}\n"),
        Value::Array(a) => a.iter().map(texts).collect(),
        Value::Object(o) => o.values().map(texts).collect(),
        _ => String::new(),
    }
}

/// Every platform's own limits, checked on what the robot received.
fn assert_within_limits(robot: &FakeRobot, got: &Accepted) {
    let b = &got.body;
    match robot.platform() {
        fake_robot::Platform::Dingtalk => assert!(got.raw.len() <= 20_000, "{}", got.raw.len()),
        fake_robot::Platform::Feishu => assert!(got.raw.len() <= 20 * 1024, "{}", got.raw.len()),
        fake_robot::Platform::Wecom => {
            let c = b["markdown"]["content"].as_str().unwrap();
            assert!(c.len() <= 4096, "{}", c.len());
        }
        fake_robot::Platform::Slack => {
            assert!(b["text"].as_str().unwrap().chars().count() <= 40_000);
            let blocks = b["blocks"].as_array().unwrap();
            assert!(blocks.len() <= 50);
            for block in blocks {
                if block["type"] == "section" {
                    let n = block["text"]["text"].as_str().unwrap().chars().count();
                    assert!(n <= 3000, "{n}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_push_of_300_commits_of_10_kb_fits_every_platform_and_keeps_the_links() {
    let app = TestRelay::spawn().await;
    let mut push: Value = serde_json::from_str(PUSH).unwrap();
    let template = push["commits"][0].clone();
    let message = format!(
        "feat: 第 N 个提交 [x](http://e.vil) <!channel> @all\n\n{}",
        "很长的提交说明 with some ASCII text, ".repeat(300)
    );
    assert!(message.len() >= 10_000);
    let commits: Vec<Value> = (0..300)
        .map(|i| {
            let mut c = template.clone();
            let sha = format!("{i:08x}{}", "c".repeat(32));
            c["id"] = json!(sha);
            c["url"] = json!(format!("https://gitee.com/acme/app/commit/{sha}"));
            c["message"] = json!(message.replace('N', &i.to_string()));
            c
        })
        .collect();
    push["head_commit"] = commits[299].clone();
    push["commits"] = json!(commits);
    push["total_commits_count"] = json!(300);
    push["commits_more_than_ten"] = json!(true);
    let body = serde_json::to_vec(&push).unwrap();
    assert!(
        body.len() > 3_000_000 && body.len() < 5 * 1024 * 1024,
        "{}",
        body.len()
    );

    let got = send_and_collect(&app, "Push Hook", &body, 1).await;
    let compare = push["compare"].as_str().unwrap();
    for (robot, got) in app.robots.all().into_iter().zip(&got) {
        assert_within_limits(robot, got);
        let all = texts(&got.body);
        let who = robot.platform();
        assert!(all.contains(compare), "{who:?}: no compare link");
        assert!(
            all.contains("https://gitee.com/acme/app/commit/00000000"),
            "{who:?}: no link to the first commit"
        );
        assert!(all.contains("more"), "{who:?}: no \"…and N more\"");
        assert!(all.contains("300"), "{who:?}: the count is missing");
        assert!(!all.contains("<!channel>"), "{who:?}");
    }
}

#[tokio::test]
async fn a_100_kb_comment_fits_every_platform_and_keeps_its_link() {
    let app = TestRelay::spawn().await;
    let mut note: Value = serde_json::from_str(NOTE).unwrap();
    let text = "这条评论非常长 <@U01ALICE> [x](http://e.vil) 🎉 some English too. ".repeat(1600);
    assert!(text.len() >= 100_000);
    note["comment"]["body"] = json!(text);
    note["note"] = json!(text);
    let url = note["comment"]["html_url"].as_str().unwrap().to_owned();
    let got = send_and_collect(&app, "Note Hook", &serde_json::to_vec(&note).unwrap(), 1).await;
    for (robot, got) in app.robots.all().into_iter().zip(&got) {
        assert_within_limits(robot, got);
        let all = texts(&got.body);
        assert!(
            all.contains(&url),
            "{:?}: no link to the comment",
            robot.platform()
        );
        assert!(all.contains("这条评论非常长"), "{:?}", robot.platform());
        assert!(
            all.contains('…'),
            "{:?}: not marked as cut",
            robot.platform()
        );
    }
}

/// A pull request whose reviewers are alice and carol (mapped) and dave (not), assigned by
/// bob-wang.
fn pr_with_three_reviewers() -> Vec<u8> {
    let mut pr: Value = serde_json::from_str(PR).unwrap();
    let mut dave = pr["pull_request"]["assignees"][0].clone();
    dave["login"] = json!("dave");
    dave["username"] = json!("dave");
    dave["name"] = json!("Dave Zhou");
    dave["html_url"] = json!("https://gitee.com/dave");
    pr["pull_request"]["assignees"]
        .as_array_mut()
        .unwrap()
        .push(dave);
    pr["pull_request"]["testers"] = json!([]);
    serde_json::to_vec(&pr).unwrap()
}

/// Every match of `prefix…suffix` in `s`: the part between.
fn between(s: &str, prefix: &str, suffix: char) -> BTreeSet<String> {
    s.match_indices(prefix)
        .filter_map(|(i, _)| {
            let rest = &s[i + prefix.len()..];
            rest.find(suffix).map(|j| rest[..j].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn two_mapped_reviewers_are_mentioned_in_the_right_fields_and_the_third_stays_a_name() {
    let app = spawn(ALL_ROUTE, PEOPLE).await;
    let got = send_and_collect(&app, "Merge Request Hook", &pr_with_three_reviewers(), 1).await;
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();

    // DingTalk: the mobile number in atMobiles, the userId in atUserIds, both in the text.
    let ding = &got[0].body;
    assert_eq!(ding["at"]["atMobiles"], json!(["13800000001"]));
    assert_eq!(ding["at"]["atUserIds"], json!(["carol.li"]));
    assert_eq!(ding["at"]["isAtAll"], json!(false));
    let text = ding["markdown"]["text"].as_str().unwrap();
    assert!(
        text.contains("@13800000001") && text.contains("@carol.li"),
        "{text}"
    );
    assert!(
        text.contains("[Dave Zhou](https://gitee.com/dave)"),
        "{text}"
    );
    // WeCom markdown: <@userid>.
    let wecom = got[1].body["markdown"]["content"].as_str().unwrap();
    assert_eq!(
        between(wecom, "<@", '>'),
        set(&["alice", "carol"]),
        "{wecom}"
    );
    assert!(wecom.contains("Dave Zhou"));
    // Feishu card lark_md: <at id=…></at>.
    let feishu = texts(&got[2].body);
    assert_eq!(
        between(&feishu, "<at id=", '>'),
        set(&["ou_alice", "ou_carol"]),
        "{feishu}"
    );
    assert!(feishu.contains("Dave Zhou"));
    // Slack: <@U…>.
    let slack = texts(&got[3].body);
    assert_eq!(
        between(&slack, "<@", '>'),
        set(&["U01ALICE", "U02CAROL"]),
        "{slack}"
    );
    assert!(
        slack.contains("<https://gitee.com/dave|Dave Zhou>"),
        "{slack}"
    );
}

#[tokio::test]
async fn a_route_with_mention_false_pings_nobody_on_its_channels() {
    // Pull requests to ding and slack go through a route without mentions.
    let routes = "  - events: [merge_request]\n    to: [ding, slack]\n    mention: false\n  - to: [wecom, lark]\n";
    let app = spawn(routes, PEOPLE).await;
    let got = send_and_collect(&app, "Merge Request Hook", &pr_with_three_reviewers(), 1).await;
    let ding = &got[0].body;
    assert_eq!(ding["at"]["atMobiles"], json!([]));
    assert_eq!(ding["at"]["atUserIds"], json!([]));
    assert!(!ding["markdown"]["text"].as_str().unwrap().contains("@1380"));
    assert!(!texts(&got[3].body).contains("<@U"));
    // The other route still mentions.
    assert!(texts(&got[1].body).contains("<@alice>"));
    assert!(texts(&got[2].body).contains("<at id=ou_alice>"));
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Write then rename, like editors do, so the watcher never reads half a file.
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

const SLACK_PUSH_V1: &str = r#"{"text": "v1 {{summary}}"}"#;
const SLACK_PUSH_V2: &str = r#"{"text": "v2 {{summary}}"}"#;

#[tokio::test]
async fn editing_a_template_changes_the_next_message_and_a_broken_edit_keeps_the_old_one() {
    let templates = tempfile::tempdir().unwrap();
    write(templates.path(), "slack/push.hbs", SLACK_PUSH_V1);
    let extra = format!("templates: {}\n", templates.path().display());
    let app = spawn(ALL_ROUTE, &extra).await;
    let slack_text = |a: &Accepted| a.body["text"].as_str().unwrap_or("").to_owned();

    let got = send_and_collect(&app, "Push Hook", PUSH.as_bytes(), 1).await;
    assert!(slack_text(&got[3]).starts_with("v1 "), "{:?}", got[3].body);
    // The other platforms keep their built-ins.
    assert_eq!(got[0].body["msgtype"], "markdown");

    // A valid edit is picked up (debounced file watch) by the next message.
    write(templates.path(), "slack/push.hbs", SLACK_PUSH_V2);
    let mut sent = 1;
    let mut changed = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        sent += 1;
        let got = send_and_collect(&app, "Push Hook", PUSH.as_bytes(), sent).await;
        if slack_text(&got[3]).starts_with("v2 ") {
            changed = true;
            break;
        }
    }
    assert!(changed, "the edited template was never used");

    // A broken edit (unclosed block on line 2) is rejected: the v2 template keeps serving.
    write(
        templates.path(),
        "slack/push.hbs",
        "{\"text\":\n \"{{#if summary}}v3 {{summary}}\"}",
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sent += 1;
    let got = send_and_collect(&app, "Push Hook", PUSH.as_bytes(), sent).await;
    assert!(slack_text(&got[3]).starts_with("v2 "), "{:?}", got[3].body);

    // Fixed again: served again.
    write(
        templates.path(),
        "slack/push.hbs",
        r#"{"text": "v4 {{summary}}"}"#,
    );
    let mut changed = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        sent += 1;
        let got = send_and_collect(&app, "Push Hook", PUSH.as_bytes(), sent).await;
        if slack_text(&got[3]).starts_with("v4 ") {
            changed = true;
            break;
        }
    }
    assert!(changed, "the fixed template was never used");
}

#[tokio::test]
async fn keyword_mode_and_lark_accept_every_sample_on_the_first_try() {
    use fake_robot::{Platform, RobotOptions};
    const KEYWORD: &str = "Gitee 通知";
    let robots = Robots {
        dingtalk: FakeRobot::start(
            Platform::Dingtalk,
            RobotOptions::new(DING_TOKEN)
                .with_secret(DING_SECRET)
                .with_keywords([KEYWORD])
                .unthrottled(),
        )
        .await,
        wecom: FakeRobot::start(Platform::Wecom, RobotOptions::new(WECOM_KEY).unthrottled()).await,
        feishu: FakeRobot::start(
            Platform::Feishu,
            RobotOptions::new(FEISHU_HOOK)
                .with_secret(FEISHU_SECRET)
                .with_keywords([KEYWORD])
                .unthrottled(),
        )
        .await,
        slack: FakeRobot::start(
            Platform::Slack,
            RobotOptions::new(SLACK_TOKEN).unthrottled(),
        )
        .await,
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&robots, &dir.path().join("relay.db"), PEOPLE)
        .replace(
            &format!("    secret: {DING_SECRET}\n"),
            &format!("    secret: {DING_SECRET}\n    keyword: {KEYWORD}\n"),
        )
        .replace(
            "    platform: feishu\n",
            &format!("    platform: lark\n    keyword: {KEYWORD}\n"),
        );
    assert!(yaml.contains("platform: lark") && yaml.matches(KEYWORD).count() == 2);
    let config = Config::from_yaml(&dir.path().join("config.yaml"), &yaml, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let relay = Relay::start(config.clone()).await.unwrap();
    let app = TestRelay {
        base: format!("http://127.0.0.1:{}", relay.port()),
        relay: Some(relay),
        client: reqwest::Client::new(),
        robots,
        dir,
        config,
    };
    let samples = gitee_relay::samples::all();
    for (i, s) in samples.iter().enumerate() {
        let resp = app.send(s.event_header(), s.body.as_bytes()).await;
        assert_eq!(resp.status(), 200, "{}", s.name);
        // One at a time, so a refusal names its sample.
        for robot in [&app.robots.dingtalk, &app.robots.feishu] {
            assert!(
                robot.wait_accepted(i + 1, WAIT).await,
                "{:?} refused {}: {:?}",
                robot.platform(),
                s.name,
                robot.rejected()
            );
        }
    }
    assert_eq!(app.robots.dingtalk.rejected_count(), 0);
    assert_eq!(app.robots.feishu.rejected_count(), 0);
}

#[tokio::test]
async fn a_channel_template_folder_applies_to_that_channel_only() {
    let templates = tempfile::tempdir().unwrap();
    write(templates.path(), "slack/push.hbs", SLACK_PUSH_V1);
    let robots = Robots::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    // Two Slack channels on the same robot; only `slack` has its own folder.
    let slack_url = robots.slack.url();
    let yaml = config_yaml(&robots, &dir.path().join("relay.db"), "")
        .replace(
            "  slack:\n    platform: slack\n",
            &format!(
                "  plain-slack:\n    platform: slack\n    url: {slack_url}\n    rate: {{ per_second: 1000 }}\n  slack:\n    platform: slack\n    templates: {}\n",
                templates.path().display()
            ),
        )
        .replace(
            "  - to: [ding, wecom, lark, slack]",
            "  - to: [ding, wecom, lark, slack, plain-slack]",
        );
    let config = Config::from_yaml(&dir.path().join("config.yaml"), &yaml, &|_| None)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let relay = Relay::start(config).await.unwrap();
    let resp = crate::process::send_signed(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{}/hooks/gitee", relay.port()),
        GITEE_SECRET,
        "Push Hook",
        PUSH.as_bytes(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        robots.slack.wait_accepted(2, WAIT).await,
        "{:?}",
        robots.slack.rejected()
    );
    let texts: BTreeSet<String> = robots
        .slack
        .accepted()
        .iter()
        .map(|a| a.body["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(texts.iter().any(|t| t.starts_with("v1 ")), "{texts:?}");
    assert!(
        texts.iter().any(|t| t == "acme/app: 3 new commits on main"),
        "{texts:?}"
    );
    relay.stop(Duration::from_secs(5)).await;
}
