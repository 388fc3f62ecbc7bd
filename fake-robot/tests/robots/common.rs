//! Shared helpers for the fake-robot integration tests: a hand-built HTTP client.

use std::time::Duration;

pub use fake_robot::*;
pub use serde_json::{Value, json};

/// What came back.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("reply {:?} is not JSON: {e}", self.text))
    }
    /// DingTalk / WeCom errcode.
    pub fn errcode(&self) -> i64 {
        assert_eq!(self.status, 200, "{self:?}");
        self.json()["errcode"].as_i64().expect("errcode")
    }
    pub fn errmsg(&self) -> String {
        self.json()["errmsg"].as_str().expect("errmsg").to_owned()
    }
    /// Feishu code.
    pub fn code(&self) -> i64 {
        self.json()["code"].as_i64().expect("code")
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn post_ct(url: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Resp {
    try_post(&client(), url, content_type, body.into())
        .await
        .expect("request failed")
}

pub async fn try_post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Result<Resp> {
    let r = client
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let text = r.text().await?;
    Ok(Resp {
        status,
        content_type,
        retry_after,
        text,
    })
}

/// POST a raw JSON text with `Content-Type: application/json`.
pub async fn post_raw(url: &str, body: &str) -> Resp {
    post_ct(url, "application/json", body.as_bytes().to_vec()).await
}

/// POST a JSON value.
pub async fn post(url: &str, body: &Value) -> Resp {
    post_raw(url, &body.to_string()).await
}

pub async fn start(platform: Platform, options: RobotOptions) -> FakeRobot {
    FakeRobot::start(platform, options).await
}

pub const SEC: Duration = Duration::from_secs(1);
pub const MIN: Duration = Duration::from_secs(60);
