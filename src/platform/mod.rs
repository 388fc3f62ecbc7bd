//! One module per group-chat platform behind the [`Platform`] trait: add what the platform
//! needs to a rendered body at send time (keyword, signature with a fresh timestamp) and
//! classify the robot's reply into delivered / retry / dead.

mod dingtalk;
mod feishu;
mod kind;
mod mask;
mod slack;
mod wecom;

pub use dingtalk::{DingTalk, dingtalk_sign};
pub use feishu::{Feishu, feishu_sign};
pub use kind::PlatformKind;
pub use mask::mask_url;
pub use slack::Slack;
pub use wecom::WeCom;

use serde_json::Value;
use std::time::{Duration, SystemTime};

/// What the dispatcher sends: the final URL (signed where the platform signs in the query)
/// and the JSON body.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    pub url: url::Url,
    pub body: Value,
}

/// The per-channel settings a platform needs to finish a request.
pub struct SendTarget<'a> {
    pub url: &'a str,
    pub secret: Option<&'a str>,
    pub keyword: Option<&'a str>,
}

/// The robot's reply, as the dispatcher saw it.
pub struct Reply<'a> {
    pub status: u16,
    /// `Retry-After` (or Feishu's `x-ogw-ratelimit-reset`) in seconds, when present.
    pub retry_after: Option<Duration>,
    pub body: &'a str,
}

/// Why a failed send may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Network trouble, 5xx, "system busy": back off exponentially.
    Transient,
    /// The robot's quota was exceeded: pause the whole channel.
    RateLimited,
    /// Signature or timestamp refused: worth exactly one more try with a fresh timestamp.
    Signature,
    /// Body over the platform's size limit: worth one more try with a shortened body.
    TooLarge,
    /// An ambiguous code the platform may use for overload (Feishu 9499): one delayed retry.
    Ambiguous,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Delivered,
    Retry {
        class: RetryClass,
        /// The platform's own words.
        reason: String,
        /// The delay the platform asked for, if any.
        after: Option<Duration>,
    },
    /// Will never succeed as configured: bad token, keyword missing, robot removed...
    Dead {
        reason: String,
    },
}

impl Verdict {
    pub fn retry(class: RetryClass, reason: impl Into<String>) -> Verdict {
        Verdict::Retry {
            class,
            reason: reason.into(),
            after: None,
        }
    }

    pub fn dead(reason: impl Into<String>) -> Verdict {
        Verdict::Dead {
            reason: reason.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("the channel URL is not a valid URL")]
    BadUrl,
    #[error("the rendered body is not a JSON object")]
    NotAnObject,
}

pub trait Platform: Send + Sync {
    fn kind(&self) -> PlatformKind;

    /// Turns a rendered body into the request to send now: appends the keyword when the body
    /// lacks it, and signs with a timestamp taken from `now` (so every retry is fresh).
    fn prepare(
        &self,
        target: &SendTarget<'_>,
        body: Value,
        now: SystemTime,
    ) -> Result<OutgoingRequest, PrepareError>;

    /// Reads the robot's reply. A 200 carrying an error code is a failure.
    fn classify(&self, reply: &Reply<'_>) -> Verdict;
}

pub fn platform(kind: PlatformKind) -> &'static dyn Platform {
    match kind {
        PlatformKind::Dingtalk => &DingTalk,
        PlatformKind::Wecom => &WeCom,
        PlatformKind::Feishu => &Feishu,
        PlatformKind::Slack => &Slack,
    }
}

/// HTTP-level verdicts shared by every platform, for replies whose body the platform-specific
/// code could not interpret.
fn classify_http(reply: &Reply<'_>) -> Option<Verdict> {
    match reply.status {
        429 => Some(Verdict::Retry {
            class: RetryClass::RateLimited,
            reason: format!("HTTP 429 {}", excerpt(reply.body)),
            after: reply.retry_after,
        }),
        500..=599 => Some(Verdict::retry(
            RetryClass::Transient,
            format!("HTTP {} {}", reply.status, excerpt(reply.body)),
        )),
        _ => None,
    }
}

/// The platform's `(code, message)` from a JSON reply, taking the first of `code_keys` and of
/// `message_keys` present. A reply without a code is judged by its HTTP status instead: the
/// `Err` holds that verdict.
fn coded_reply(
    reply: &Reply<'_>,
    code_keys: &[&str],
    message_keys: &[&str],
) -> Result<(i64, String), Verdict> {
    let parsed: Option<Value> = serde_json::from_str(reply.body).ok();
    let field = |keys: &[&str]| {
        parsed
            .as_ref()
            .and_then(|v| keys.iter().find_map(|k| v.get(*k)))
            .cloned()
    };
    match field(code_keys).and_then(|c| c.as_i64()) {
        Some(code) => {
            let message = field(message_keys)
                .and_then(|m| m.as_str().map(excerpt))
                .unwrap_or_default();
            Ok((code, message))
        }
        None => Err(classify_http(reply).unwrap_or_else(|| {
            Verdict::dead(format!(
                "unexpected reply (HTTP {}): {}",
                reply.status,
                excerpt(reply.body)
            ))
        })),
    }
}

/// The request for platforms whose URL is the whole credential (WeCom, Slack).
fn unsigned_request(target: &SendTarget<'_>, body: Value) -> Result<OutgoingRequest, PrepareError> {
    if !body.is_object() {
        return Err(PrepareError::NotAnObject);
    }
    let url = url::Url::parse(target.url).map_err(|_| PrepareError::BadUrl)?;
    Ok(OutgoingRequest { url, body })
}

/// The first 200 characters of a reply, for messages and the attempt log.
pub fn excerpt(body: &str) -> String {
    const MAX: usize = 200;
    let trimmed = body.trim();
    match trimmed.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

/// Unix time of `now` in milliseconds.
pub(crate) fn unix_ms(now: SystemTime) -> u128 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

fn hmac_sha256_base64(key: &[u8], message: &[u8]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether any text value inside `body` contains `needle`. Keyword checks look at text only:
/// a keyword that appears only in a link (`url`, `href`, `messageUrl`…) does not count.
fn body_contains_text(body: &Value, needle: &str) -> bool {
    match body {
        Value::String(s) => s.contains(needle),
        Value::Array(items) => items.iter().any(|v| body_contains_text(v, needle)),
        Value::Object(map) => map.iter().any(|(k, v)| {
            let key = k.to_ascii_lowercase();
            !(key.contains("url") || key == "href") && body_contains_text(v, needle)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_keyword_only_in_a_link_does_not_count() {
        let body = json!({"card": {"elements": [{"tag": "button", "url": "https://x/gitee", "text": {"content": "Open"}}]}});
        assert!(!body_contains_text(&body, "gitee"));
        let body = json!({"markdown": {"text": "gitee push", "messageUrl": "https://y"}});
        assert!(body_contains_text(&body, "gitee"));
    }
}
