//! One HTTP POST to a robot, with the channel's timeouts, turned into a [`Reply`] or a
//! transport error.

use std::time::Duration;

use crate::platform::OutgoingRequest;

/// Robots answer with a few bytes; anything longer is cut before it is stored.
const MAX_REPLY_BYTES: usize = 64 * 1024;

pub struct HttpReply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

pub fn client(connect_timeout: Duration, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("gitee-relay/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is static and valid")
}

/// Sends the request. The error text never contains the URL (it holds the robot's token).
pub async fn post(
    client: &reqwest::Client,
    request: &OutgoingRequest,
) -> Result<HttpReply, String> {
    let body = serde_json::to_vec(&request.body).map_err(|e| format!("cannot encode body: {e}"))?;
    let response = client
        .post(request.url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    let status = response.status().as_u16();
    let headers = response.headers();
    let retry_after = ["retry-after", "x-ogw-ratelimit-reset"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = response.bytes().await.map_err(describe)?;
    let cut = &bytes[..bytes.len().min(MAX_REPLY_BYTES)];
    Ok(HttpReply {
        status,
        retry_after,
        body: String::from_utf8_lossy(cut).into_owned(),
    })
}

/// A transport error in words, without the URL that reqwest would otherwise include.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reply body could not be read"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(&e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}
