//! The admin API, `/metrics`, request ids and the CLI that drives the API: each endpoint and
//! filter, the bearer token, redelivery and test sends reaching the fake robots, and no
//! configured secret in any response.

use crate::helpers::*;
use fake_robot::Fault;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const PUSH: &[u8] = include_bytes!("../../samples/push.json");
const ISSUE: &[u8] = include_bytes!("../../samples/issue_open.json");

pub const ADMIN_TOKEN: &str = "admin-token-Vb6-0123456789abcdef";

pub fn admin_yaml() -> String {
    format!("admin:\n  token: {ADMIN_TOKEN}\n")
}

/// Fails if any configured secret (or the admin token) is in `text`.
#[track_caller]
pub fn assert_no_secrets(what: &str, text: &str) {
    for secret in SECRETS.iter().chain([&ADMIN_TOKEN]) {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}:\n{text}"
        );
    }
}

/// An admin API client that checks every response for secrets.
struct Api<'a> {
    app: &'a TestRelay,
    token: Option<&'a str>,
}

impl Api<'_> {
    fn new(app: &TestRelay) -> Api<'_> {
        Api {
            app,
            token: Some(ADMIN_TOKEN),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .app
            .client
            .request(method.clone(), format!("{}{path}", self.app.base));
        if let Some(t) = self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("the relay answers");
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_no_secrets(&format!("{method} {path}"), &text);
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, v) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }
}

async fn spawn_admin() -> TestRelay {
    TestRelay::spawn_with(&admin_yaml()).await
}

async fn event_id(resp: reqwest::Response) -> i64 {
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["event_id"].as_i64().unwrap()
}

/// Waits until the delivery of `event` to `channel` is in `state`; returns its id.
async fn wait_delivery(api: &Api<'_>, event: i64, channel: &str, state: &str) -> i64 {
    let mut last = Value::Null;
    for _ in 0..400 {
        let v = api
            .ok(&format!("/api/deliveries?event={event}&channel={channel}"))
            .await;
        if let Some(d) = v["items"].as_array().and_then(|i| i.first()) {
            if d["state"] == state {
                return d["id"].as_i64().unwrap();
            }
            last = d.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the {channel} delivery of event {event} never became {state}: {last}");
}

async fn wait_delivery_id(api: &Api<'_>, id: i64, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let v = api.ok(&format!("/api/deliveries/{id}")).await;
        if v["delivery"]["state"] == state {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("delivery {id} never became {state}: {last}");
}

fn ids(v: &Value) -> Vec<i64> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn without_a_token_the_api_and_console_are_off_and_say_so() {
    let app = TestRelay::spawn().await;
    let api = Api::new(&app);
    for path in ["/api/channels", "/api/deliveries", "/api/events/1"] {
        let (status, v) = api.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(v["error"].as_str().unwrap().contains("admin.token"), "{v}");
    }
    let page = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("console are off") && text.contains("admin.token"),
        "{text}"
    );
}

#[tokio::test]
async fn every_endpoint_needs_the_bearer_token() {
    let app = spawn_admin().await;
    let endpoints: [(reqwest::Method, &str); 11] = [
        (reqwest::Method::GET, "/api/channels"),
        (reqwest::Method::GET, "/api/events"),
        (reqwest::Method::GET, "/api/events/1"),
        (reqwest::Method::GET, "/api/deliveries"),
        (reqwest::Method::GET, "/api/deliveries/1"),
        (reqwest::Method::POST, "/api/deliveries/1/redeliver"),
        (reqwest::Method::POST, "/api/channels/ding/test"),
        (reqwest::Method::POST, "/api/preview"),
        (reqwest::Method::GET, "/api/samples"),
        (reqwest::Method::GET, "/api/templates/push?platform=slack"),
        (reqwest::Method::GET, "/api/nothing-here"),
    ];
    let wrong = format!("{ADMIN_TOKEN}x");
    for token in [
        None,
        Some("wrong"),
        Some(wrong.as_str()),
        Some(&ADMIN_TOKEN[..20]),
    ] {
        let api = Api { app: &app, token };
        for (method, path) in &endpoints {
            let (status, v) = api.call(method.clone(), path, Some(json!({}))).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}: {v}"
            );
            assert!(v["error"].as_str().unwrap().contains("token"), "{v}");
        }
    }
    let res = app
        .client
        .get(format!("{}/api/channels", app.base))
        .header("Authorization", format!("Basic {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    // Nothing was queued by the refused POSTs.
    assert!(app.robots.all().iter().all(|r| r.requests() == 0));
    // The right token opens every read endpoint.
    let api = Api::new(&app);
    let (status, v) = api.get("/api/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    for path in [
        "/api/channels",
        "/api/events",
        "/api/deliveries",
        "/api/samples",
    ] {
        api.ok(path).await;
    }
}

#[tokio::test]
async fn channels_show_counts_last_success_and_last_error() {
    let app = spawn_admin().await;
    let api = Api::new(&app);
    let v = api.ok("/api/channels").await;
    let names: Vec<&str> = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ding", "lark", "slack", "wecom"]);
    assert_eq!(v["dispatcher"], "ok");

    app.robots
        .wecom
        .push_fault(Fault::PlatformError(93000, "invalid webhook url".into()));
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    wait_delivery(&api, id, "wecom", "dead").await;
    wait_delivery(&api, id, "ding", "delivered").await;
    let v = api.ok("/api/channels").await;
    let by_name: BTreeMap<&str, &Value> = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c))
        .collect();
    let wecom = by_name["wecom"];
    assert_eq!(wecom["platform"], "wecom");
    assert_eq!(wecom["counts"]["dead"], 1);
    assert_eq!(wecom["queued"], 0);
    assert!(
        wecom["url"].as_str().unwrap().contains("key=***"),
        "{wecom}"
    );
    assert!(
        wecom["last_error"]["error"]
            .as_str()
            .unwrap()
            .contains("invalid webhook url")
    );
    assert!(wecom["last_delivered_ms"].is_null());
    let ding = by_name["ding"];
    assert_eq!(ding["counts"]["delivered"], 1);
    assert!(ding["last_delivered_ms"].as_i64().unwrap() > 0);
    assert!(ding["last_error"].is_null());
}

#[tokio::test]
async fn events_are_listed_filtered_paged_and_shown_with_credentials_masked() {
    let app = spawn_admin().await;
    let api = Api::new(&app);
    let push = event_id(app.send("Push Hook", PUSH).await).await;
    let issue = event_id(app.send("Issue Hook", ISSUE).await).await;
    // Password mode: Gitee puts the password in the body too.
    let mut body: Value = serde_json::from_slice(PUSH).unwrap();
    body["password"] = json!(GITEE_SECRET);
    for part in ["repository", "project"] {
        body[part]["full_name"] = json!("zeta/tools");
        body[part]["path_with_namespace"] = json!("zeta/tools");
    }
    let ts = now_ms().to_string();
    let res = app
        .post(
            "pw",
            &[
                ("X-Gitee-Event", "Push Hook"),
                ("X-Gitee-Token", GITEE_SECRET),
                ("X-Gitee-Timestamp", &ts),
                ("Content-Type", "application/json"),
            ],
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    let pw = event_id(res).await;

    let all = api.ok("/api/events").await;
    assert_eq!(ids(&all), [pw, issue, push], "newest first");
    assert_eq!(all["items"][1]["kind"], "issue");
    assert_eq!(ids(&api.ok("/api/events?source=pw").await), [pw]);
    assert_eq!(ids(&api.ok("/api/events?kind=push").await), [pw, push]);
    assert_eq!(ids(&api.ok("/api/events?kind=Issue%20Hook").await), [issue]);
    assert_eq!(
        ids(&api.ok("/api/events?repo=acme/app").await),
        [issue, push]
    );
    assert_eq!(ids(&api.ok("/api/events?repo=zeta/*").await), [pw]);
    assert_eq!(
        ids(&api
            .ok("/api/events?source=gitee&kind=push&repo=acme/*")
            .await),
        [push]
    );
    assert!(ids(&api.ok("/api/events?repo=nobody/*").await).is_empty());
    assert_eq!(
        ids(&api.ok("/api/events?source=&kind=").await).len(),
        3,
        "empty filters are no filters"
    );

    let first = api.ok("/api/events?limit=2").await;
    assert_eq!(ids(&first), [pw, issue]);
    let before = first["next_before"].as_i64().unwrap();
    let second = api
        .ok(&format!("/api/events?limit=2&before={before}"))
        .await;
    assert_eq!(ids(&second), [push]);
    assert!(second["next_before"].is_null());

    let (status, v) = api.get("/api/events?kind=pipeline").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = api.get("/api/events?limit=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _) = api.get("/api/events/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let shown = api.ok(&format!("/api/events/{pw}")).await;
    assert_eq!(shown["payload"]["password"], "***");
    assert_eq!(shown["repo"], "zeta/tools");
    assert_eq!(
        shown["payload"]["repository"]["path_with_namespace"],
        "zeta/tools"
    );
    assert_eq!(shown["deliveries"].as_array().unwrap().len(), 4);
    let signed = api.ok(&format!("/api/events/{push}")).await;
    assert_eq!(signed["payload"]["sign"], "***");
    assert!(signed["payload"]["timestamp"].is_string());
}

#[tokio::test]
async fn deliveries_are_filtered_by_channel_state_and_event_and_shown_with_attempts() {
    let app = spawn_admin().await;
    let api = Api::new(&app);
    app.robots
        .dingtalk
        .push_fault(Fault::HttpStatus(502, "bad gateway".into()));
    app.robots
        .slack
        .push_fault(Fault::PlatformError(404, "no_service".into()));
    let first = event_id(app.send("Push Hook", PUSH).await).await;
    let ding = wait_delivery(&api, first, "ding", "delivered").await;
    let slack = wait_delivery(&api, first, "slack", "dead").await;
    wait_delivery(&api, first, "lark", "delivered").await;
    wait_delivery(&api, first, "wecom", "delivered").await;
    let second = event_id(app.send("Issue Hook", ISSUE).await).await;
    for channel in ["ding", "lark", "slack", "wecom"] {
        wait_delivery(&api, second, channel, "delivered").await;
    }

    let all = api.ok("/api/deliveries").await;
    assert_eq!(ids(&all).len(), 8);
    assert!(ids(&all).windows(2).all(|w| w[0] > w[1]), "newest first");
    let of_ding = api.ok("/api/deliveries?channel=ding").await;
    assert_eq!(of_ding["items"].as_array().unwrap().len(), 2);
    assert!(
        of_ding["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["channel"] == "ding" && d["platform"] == "dingtalk")
    );
    assert_eq!(ids(&api.ok("/api/deliveries?state=dead").await), [slack]);
    assert_eq!(
        ids(&api
            .ok("/api/deliveries?channel=slack&state=delivered")
            .await)
        .len(),
        1
    );
    assert_eq!(
        ids(&api.ok(&format!("/api/deliveries?event={first}")).await).len(),
        4
    );
    assert!(ids(&api.ok("/api/deliveries?state=pending").await).is_empty());
    let page = api.ok("/api/deliveries?limit=3").await;
    assert_eq!(ids(&page).len(), 3);
    let rest = api
        .ok(&format!(
            "/api/deliveries?limit=10&before={}",
            page["next_before"]
        ))
        .await;
    assert_eq!(ids(&rest).len(), 5);
    let (status, v) = api.get("/api/deliveries?state=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("retrying"), "{v}");

    let shown = api.ok(&format!("/api/deliveries/{ding}")).await;
    let d = &shown["delivery"];
    assert_eq!(
        (
            d["id"].as_i64(),
            d["state"].as_str(),
            d["attempts"].as_i64()
        ),
        (Some(ding), Some("delivered"), Some(2))
    );
    assert_eq!(d["kind"], "push");
    assert_eq!(d["repo"], "acme/app");
    assert!(d["url"].as_str().unwrap().contains("access_token=***"));
    let attempts = shown["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["outcome"], "retry");
    assert_eq!(attempts[0]["reply"]["status"], 502);
    assert!(
        attempts[0]["reply"]["excerpt"]
            .as_str()
            .unwrap()
            .contains("bad gateway")
    );
    assert!(attempts[0]["error"].as_str().unwrap().contains("502"));
    assert_eq!(attempts[1]["outcome"], "delivered");
    assert_eq!(attempts[1]["reply"]["status"], 200);
    assert!(attempts[1]["duration_ms"].as_i64().unwrap() >= 0);
    assert!(
        attempts[1]["started_ms"].as_i64().unwrap() >= attempts[0]["started_ms"].as_i64().unwrap()
    );
    let url = attempts[1]["request"]["url"].as_str().unwrap();
    assert_eq!(attempts[1]["request"]["method"], "POST");
    assert!(
        url.contains("access_token=***") && url.contains("sign=***"),
        "{url}"
    );
    assert_eq!(shown["message"]["body"]["msgtype"], "markdown");
    assert!(shown["message"]["body"].to_string().contains("acme/app"));
    assert_eq!(shown["can_redeliver"], true);

    let dead = api.ok(&format!("/api/deliveries/{slack}")).await;
    assert_eq!(dead["attempts"][0]["outcome"], "dead");
    assert!(
        dead["delivery"]["last_error"]
            .as_str()
            .unwrap()
            .contains("no_service")
    );
    let (status, _) = api.get("/api/deliveries/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.get("/api/deliveries/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_dead_delivery_is_redelivered_with_todays_templates_and_reaches_the_robot() {
    let app = spawn_admin().await;
    let api = Api::new(&app);
    app.robots
        .dingtalk
        .push_fault(Fault::PlatformError(300001, "token is not exist".into()));
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    let dead = wait_delivery(&api, id, "ding", "dead").await;
    assert_eq!(app.robots.dingtalk.accepted_count(), 0);

    let (status, v) = api
        .post(&format!("/api/deliveries/{dead}/redeliver"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["redelivery_of"], dead);
    let new = v["delivery"]["id"].as_i64().unwrap();
    assert!(new > dead);
    assert_eq!(v["delivery"]["event_id"], id);
    assert_eq!(v["delivery"]["channel"], "ding");
    assert!(
        app.robots
            .dingtalk
            .wait_accepted(1, Duration::from_secs(10))
            .await,
        "{:?}",
        app.robots.dingtalk.rejected()
    );
    let shown = wait_delivery_id(&api, new, "delivered").await;
    assert_eq!(shown["attempts"][0]["outcome"], "delivered");
    let sent = app.robots.dingtalk.last_accepted().unwrap();
    assert!(sent.raw.contains("acme/app"));
    // The original keeps its history; the event now has two ding deliveries.
    assert_eq!(
        api.ok(&format!("/api/deliveries/{dead}")).await["delivery"]["state"],
        "dead"
    );
    assert_eq!(
        ids(&api
            .ok(&format!("/api/deliveries?event={id}&channel=ding"))
            .await),
        [new, dead]
    );

    // A delivered one may be sent again too; an unknown one is 404.
    let (status, _) = api
        .post(&format!("/api/deliveries/{new}/redeliver"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(
        app.robots
            .dingtalk
            .wait_accepted(2, Duration::from_secs(10))
            .await
    );
    let (status, _) = api
        .post("/api/deliveries/999999/redeliver", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_queued_delivery_is_not_redelivered() {
    // A robot that never answers in time keeps the delivery in flight or retrying.
    let app = spawn_admin().await;
    let api = Api::new(&app);
    for _ in 0..3 {
        app.robots
            .slack
            .push_fault(Fault::Hang(Duration::from_secs(3)));
    }
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    let list = api
        .ok(&format!("/api/deliveries?event={id}&channel=slack"))
        .await;
    let d = list["items"][0]["id"].as_i64().unwrap();
    let (status, v) = api
        .post(&format!("/api/deliveries/{d}/redeliver"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("will be sent on its own"),
        "{v}"
    );
}

#[tokio::test]
async fn a_test_message_goes_through_the_queue_to_the_robot_marked_as_a_test() {
    let app = spawn_admin().await;
    let api = Api::new(&app);
    let (status, v) = api.post("/api/channels/slack/test", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["channel"], "slack");
    assert_eq!(v["sample"], "push");
    let delivery = v["delivery_id"].as_i64().unwrap();
    assert!(
        app.robots
            .slack
            .wait_accepted(1, Duration::from_secs(10))
            .await,
        "{:?}",
        app.robots.slack.rejected()
    );
    let sent = app.robots.slack.last_accepted().unwrap();
    assert!(
        sent.body["text"].as_str().unwrap().contains("[Test]"),
        "{}",
        sent.raw
    );
    // Only the named channel.
    assert_eq!(app.robots.dingtalk.requests(), 0);
    let shown = wait_delivery_id(&api, delivery, "delivered").await;
    assert_eq!(shown["delivery"]["is_test"], true);
    assert_eq!(shown["delivery"]["source"], "console");

    let (status, _) = api
        .post("/api/channels/ding/test", json!({ "sample": "issue_open" }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(
        app.robots
            .dingtalk
            .wait_accepted(1, Duration::from_secs(10))
            .await
    );
    let (status, v) = api.post("/api/channels/nope/test", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = api
        .post("/api/channels/ding/test", json!({ "sample": "nope" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"].as_str().unwrap().contains("push_new_branch"),
        "lists the samples: {v}"
    );
    // No body at all is the default sample.
    let res = app
        .client
        .post(format!("{}/api/channels/wecom/test", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert!(
        app.robots
            .wecom
            .wait_accepted(1, Duration::from_secs(10))
            .await
    );
}

#[tokio::test]
async fn preview_renders_samples_payloads_and_edited_templates_or_says_why_not() {
    let app = spawn_admin().await;
    let api = Api::new(&app);
    let (status, v) = api
        .post(
            "/api/preview",
            json!({ "channel": "slack", "sample": "push" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["platform"].as_str(), v["event"].as_str()),
        (Some("slack"), Some("push"))
    );
    assert!(v["body"]["text"].as_str().unwrap().contains("acme/app"));
    assert_eq!(v["template"], "built-in slack/push.hbs");

    // A pasted payload (object or text) for a platform; the event from its hook_name.
    let payload: Value = serde_json::from_slice(ISSUE).unwrap();
    let (status, v) = api
        .post(
            "/api/preview",
            json!({ "platform": "dingtalk", "payload": payload }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["event"], "issue");
    assert_eq!(v["body"]["msgtype"], "markdown");
    let (status, v) = api.post("/api/preview", json!({ "platform": "lark", "payload": String::from_utf8_lossy(PUSH), "event": "Push Hook" })).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["platform"], "feishu");

    // An edited template renders instead of the channel's.
    let (status, v) = api
        .post("/api/preview", json!({ "channel": "slack", "sample": "push", "template": "{ \"text\": \"hello {{repo.full_name}}\" }" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["body"], json!({ "text": "hello acme/app" }));
    assert_eq!(v["template"], "edited");

    // The template's errors, with where and why.
    let (status, v) = api
        .post("/api/preview", json!({ "channel": "slack", "sample": "push", "template": "{ \"text\": \"{{repo.nme}}\" }" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["stage"], "template");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("nme") && e.contains("slack/push.hbs"), "{e}");
    assert!(!e.contains("/tmp"), "no temporary paths: {e}");
    let (status, v) = api
        .post(
            "/api/preview",
            json!({ "platform": "slack", "sample": "push", "template": "{ \"text\": {{#if}} }" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = api
        .post(
            "/api/preview",
            json!({ "platform": "slack", "sample": "push", "template": "not json" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("JSON"), "{v}");
    let (status, v) = api.post("/api/preview", json!({ "platform": "slack", "payload": { "hook_name": "push_hooks", "commits": "x" } })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["stage"], "payload");

    // Bad requests.
    for (body, want) in [
        (json!({ "sample": "push" }), StatusCode::BAD_REQUEST),
        (
            json!({ "platform": "telegram", "sample": "push" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "channel": "nope", "sample": "push" }),
            StatusCode::NOT_FOUND,
        ),
        (json!({ "platform": "slack" }), StatusCode::BAD_REQUEST),
        (
            json!({ "platform": "slack", "sample": "push", "payload": {} }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "platform": "slack", "payload": { "a": 1 } }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "platform": "slack", "sample": "push", "colour": 1 }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, v) = api.post("/api/preview", body.clone()).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }

    let samples = api.ok("/api/samples").await;
    let names: Vec<&str> = samples["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"push") && names.contains(&"note_issue"),
        "{names:?}"
    );
    assert_eq!(
        samples["samples"][0]["body"]["sign"], "***",
        "sample payloads are masked too"
    );

    let t = api.ok("/api/templates/push?channel=ding").await;
    assert_eq!(
        (t["platform"].as_str(), t["source"].as_str()),
        (Some("dingtalk"), Some("built-in dingtalk/push.hbs"))
    );
    assert!(t["text"].as_str().unwrap().contains("msgtype"));
    let t = api
        .ok("/api/templates/Merge%20Request%20Hook?platform=feishu")
        .await;
    assert_eq!(t["name"], "merge_request");
    let (status, _) = api.get("/api/templates/pipeline?platform=slack").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    let app = spawn_admin().await;
    let page = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/console/app.js") && html.contains("/console/style.css"));
    assert_no_secrets("console", &html);
    for (path, kind) in [
        ("/console/app.js", "javascript"),
        ("/console/style.css", "css"),
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains(kind)
        );
        assert!(res.text().await.unwrap().len() > 1000, "{path}");
    }
}

/// Parses the Prometheus text format: every sample line is `name{labels} value` with a float
/// value and a `# TYPE` for its family. Returns `series → value`.
pub fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (what, name, value) = (
                parts.next().unwrap(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            match what {
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&value),
                        "{line}"
                    );
                    types.insert(name.to_owned(), value.to_owned());
                }
                "HELP" => assert!(!value.is_empty(), "{line}"),
                _ => {}
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|e| panic!("{line}: {e}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
        }
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(
            types.contains_key(family) || types.contains_key(name),
            "no # TYPE for {line}"
        );
        out.insert(series.to_owned(), value);
    }
    out
}

async fn scrape(app: &TestRelay) -> BTreeMap<String, f64> {
    let res = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();
    assert_no_secrets("/metrics", &text);
    parse_prometheus(&text)
}

fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_parse_and_move_as_events_arrive_and_deliveries_complete() {
    let app = TestRelay::spawn().await;
    let accepted =
        r#"gitee_relay_events_received_total{source="gitee",kind="push",result="accepted"}"#;
    let refused =
        r#"gitee_relay_events_received_total{source="gitee",kind="push",result="unauthorized"}"#;
    let unknown = r#"gitee_relay_events_received_total{source="unknown",kind="unknown",result="unknown_source"}"#;
    let delivered =
        r#"gitee_relay_deliveries_total{channel="ding",platform="dingtalk",outcome="delivered"}"#;
    let retried =
        r#"gitee_relay_deliveries_total{channel="ding",platform="dingtalk",outcome="retry"}"#;
    let pauses = r#"gitee_relay_rate_limit_pauses_total{channel="ding",platform="dingtalk"}"#;
    let durations =
        r#"gitee_relay_attempt_duration_seconds_count{channel="ding",platform="dingtalk"}"#;
    let before = scrape(&app).await;
    assert_eq!(value(&before, accepted), 0.0);
    assert_eq!(
        value(
            &before,
            r#"gitee_relay_queue_deliveries{channel="ding",state="pending"}"#
        ),
        0.0
    );
    assert!(before.contains_key(r#"gitee_relay_queue_deliveries{channel="slack",state="dead"}"#));
    let waiting = r#"gitee_relay_queue_oldest_waiting_seconds{channel="ding"}"#;
    assert!(before.contains_key(waiting), "{before:?}");
    assert_eq!(value(&before, waiting), 0.0);
    assert!(
        before.contains_key(r#"gitee_relay_build_info{version="0.1.0"}"#)
            || before
                .keys()
                .any(|k| k.starts_with("gitee_relay_build_info"))
    );

    app.robots.dingtalk.push_fault(Fault::RateLimited {
        retry_after: Some(1),
    });
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    let id2 = event_id(app.send("Push Hook", PUSH).await).await;
    let bad = app
        .post(
            "gitee",
            &[
                ("X-Gitee-Event", "Push Hook"),
                ("X-Gitee-Token", "nope"),
                ("X-Gitee-Timestamp", "1"),
            ],
            PUSH.to_vec(),
        )
        .await;
    assert_eq!(bad.status(), 401);
    app.post("nowhere", &[("X-Gitee-Event", "Whatever")], b"{}".to_vec())
        .await;
    // The robot's rate limit holds ding's first message back for a second: meanwhile the
    // oldest waiting delivery has an age.
    assert!(
        eventually(Duration::from_secs(5), || async {
            value(&scrape(&app).await, waiting) > 0.0
        })
        .await,
        "no age while a delivery waited"
    );
    let store = app.relay.as_ref().unwrap().store.clone();
    assert!(
        eventually(Duration::from_secs(15), || {
            let store = store.clone();
            async move {
                let mut done = true;
                for event in [id, id2] {
                    done &= store
                        .deliveries_of_event(event)
                        .await
                        .unwrap()
                        .iter()
                        .all(|d| d.state == gitee_relay::store::DeliveryState::Delivered);
                }
                done
            }
        })
        .await
    );
    let after = scrape(&app).await;
    assert_eq!(value(&after, accepted), 2.0);
    assert_eq!(value(&after, refused), 1.0);
    assert_eq!(value(&after, unknown), 1.0);
    // The dispatcher's families are process-wide (other tests run alongside): at least.
    assert!(value(&after, delivered) >= value(&before, delivered) + 2.0);
    assert!(value(&after, retried) >= value(&before, retried) + 1.0);
    assert!(value(&after, pauses) >= value(&before, pauses) + 1.0);
    assert!(value(&after, durations) >= value(&before, durations) + 3.0);
    // Each accepted webhook was made durable by a group commit (process-wide too).
    let commits = "gitee_relay_ingest_commit_seconds_count";
    let committed = "gitee_relay_ingest_commit_events_sum";
    assert!(value(&after, commits) >= value(&before, commits) + 1.0);
    assert!(value(&after, committed) >= value(&before, committed) + 2.0);
    assert!(value(&after, "gitee_relay_ingest_commit_seconds_sum") > 0.0);
    assert_eq!(
        value(
            &after,
            r#"gitee_relay_queue_deliveries{channel="ding",state="delivered"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            r#"gitee_relay_queue_deliveries{channel="slack",state="delivered"}"#
        ),
        2.0
    );
    // Everything sent: nothing waits.
    assert_eq!(value(&after, waiting), 0.0);

    // OpenMetrics for scrapers that ask for it.
    let res = app
        .client
        .get(format!("{}/metrics", app.base))
        .header("Accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(res.text().await.unwrap().trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn every_webhook_answer_carries_a_request_id() {
    let app = TestRelay::spawn().await;
    let res = app.send("Push Hook", PUSH).await;
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let again = app.send("Push Hook", PUSH).await;
    assert_ne!(again.headers()["x-request-id"].to_str().unwrap(), id);
    let refused = app
        .post(
            "gitee",
            &[("X-Request-Id", "proxy-abc.123")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-request-id"], "proxy-abc.123");
    let hostile = app
        .post("gitee", &[("X-Request-Id", "a b\tc")], b"{}".to_vec())
        .await;
    assert_ne!(hostile.headers()["x-request-id"], "a b\tc");
}

/// The CLI talks to the running relay's admin API.
fn cli(app: &TestRelay, args: &[&str], token: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitee-relay"))
        .args(args)
        .env_remove("GITEE_RELAY_CONFIG")
        .env("GITEE_RELAY_URL", &app.base)
        .env("GITEE_RELAY_ADMIN_TOKEN", token)
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secrets(&format!("gitee-relay {args:?}"), &text);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_shows_and_redelivers_deliveries_and_sends_tests() {
    let app = spawn_admin().await;
    let api = Api::new(&app);
    app.robots
        .wecom
        .push_fault(Fault::PlatformError(93000, "invalid webhook url".into()));
    let id = event_id(app.send("Push Hook", PUSH).await).await;
    let dead = wait_delivery(&api, id, "wecom", "dead").await;
    let run = |args: Vec<String>, token: &'static str| {
        let app = &app;
        async move {
            tokio::task::block_in_place(|| {
                cli(
                    app,
                    &args.iter().map(String::as_str).collect::<Vec<_>>(),
                    token,
                )
            })
        }
    };
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();

    let (ok, out) = run(args("deliveries list --state dead"), ADMIN_TOKEN).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&dead.to_string())
            && out.contains("wecom")
            && out.contains("invalid webhook url"),
        "{out}"
    );
    let (ok, out) = run(args("deliveries list --channel wecom --json"), ADMIN_TOKEN).await;
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["items"][0]["id"], dead);

    let (ok, out) = run(args(&format!("deliveries show {dead}")), ADMIN_TOKEN).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("dead") && out.contains("93000") && out.contains("key=***"),
        "{out}"
    );

    let (ok, out) = run(args(&format!("deliveries redeliver {dead}")), ADMIN_TOKEN).await;
    assert!(ok, "{out}");
    assert!(out.contains("queued"), "{out}");
    assert!(
        app.robots
            .wecom
            .wait_accepted(1, Duration::from_secs(10))
            .await
    );

    let (ok, out) = run(args("send-test slack"), ADMIN_TOKEN).await;
    assert!(ok, "{out}");
    assert!(
        app.robots
            .slack
            .wait_accepted(2, Duration::from_secs(10))
            .await,
        "{:?}",
        app.robots.slack.accepted_count()
    );

    let (ok, out) = run(args("deliveries list"), "wrong-token-0123456789").await;
    assert!(!ok);
    assert!(out.contains("401") || out.contains("token"), "{out}");
    let (ok, out) = run(args("deliveries show 999999"), ADMIN_TOKEN).await;
    assert!(!ok);
    assert!(out.contains("no delivery 999999"), "{out}");
}

#[test]
fn the_admin_token_comes_from_the_config_and_must_be_long() {
    let parse = |admin: &str, env: Option<&str>| {
        let yaml = format!("sources: {{ gitee: {{ secret: s3cret-value }} }}\n{admin}\n");
        gitee_relay::config::Config::from_yaml(
            std::path::Path::new("config.yaml"),
            &yaml,
            &|name| (name == "TOKEN").then(|| env.map(str::to_owned)).flatten(),
        )
    };
    let on = parse("admin: { token: \"${TOKEN:-}\" }", Some(ADMIN_TOKEN)).unwrap();
    assert_eq!(on.admin.token.as_ref().unwrap().expose(), ADMIN_TOKEN);
    for off in ["admin:\n  token: ${TOKEN:-}", "admin: {}", ""] {
        assert!(parse(off, None).unwrap().admin.token.is_none(), "{off}");
    }
    let err = parse("admin: { token: short-Tok3n }", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("admin.token") && err.contains("16"), "{err}");
    assert!(
        !err.contains("short-Tok3n"),
        "the value is not echoed: {err}"
    );
    assert!(
        parse("admin: { tokn: x }", None).is_err(),
        "unknown keys are refused"
    );
}
