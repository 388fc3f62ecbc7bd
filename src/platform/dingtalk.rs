//! DingTalk custom robot: `timestamp` (ms) and `sign` query parameters, keyword mode, replies
//! that are HTTP 200 with an `errcode`.

use serde_json::Value;
use std::time::SystemTime;

use super::{
    OutgoingRequest, Platform, PlatformKind, PrepareError, Reply, RetryClass, SendTarget, Verdict,
    body_contains_text, coded_reply, hmac_sha256_base64, unix_ms,
};

pub struct DingTalk;

/// DingTalk's signature: base64(HMAC-SHA256(key = secret, message = timestamp + "\n" + secret)).
/// The result is raw base64; it is percent-encoded exactly once when put in the query.
pub fn dingtalk_sign(secret: &str, timestamp_ms: &str) -> String {
    hmac_sha256_base64(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    )
}

impl Platform for DingTalk {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Dingtalk
    }

    fn prepare(
        &self,
        target: &SendTarget<'_>,
        mut body: Value,
        now: SystemTime,
    ) -> Result<OutgoingRequest, PrepareError> {
        if !body.is_object() {
            return Err(PrepareError::NotAnObject);
        }
        if let Some(keyword) = target.keyword {
            append_keyword(&mut body, keyword);
        }
        let mut url = url::Url::parse(target.url).map_err(|_| PrepareError::BadUrl)?;
        if let Some(secret) = target.secret {
            let timestamp = unix_ms(now).to_string();
            let sign = dingtalk_sign(secret, &timestamp);
            // append_pair percent-encodes; passing the raw base64 encodes it exactly once.
            url.query_pairs_mut()
                .append_pair("timestamp", &timestamp)
                .append_pair("sign", &sign);
        }
        Ok(OutgoingRequest { url, body })
    }

    fn classify(&self, reply: &Reply<'_>) -> Verdict {
        let (errcode, errmsg) = match coded_reply(reply, &["errcode"], &["errmsg"]) {
            Ok(coded) => coded,
            Err(verdict) => return verdict,
        };
        let reason = format!("errcode {errcode}: {errmsg}");
        match errcode {
            0 => Verdict::Delivered,
            -1 => Verdict::retry(RetryClass::Transient, reason),
            130101 | 410100 => Verdict::Retry {
                class: RetryClass::RateLimited,
                reason,
                after: reply.retry_after,
            },
            310000 if errmsg.contains("timestamp") || errmsg.contains("sign") => {
                Verdict::retry(RetryClass::Signature, reason)
            }
            460101 | 101002 => Verdict::retry(RetryClass::TooLarge, reason),
            _ => Verdict::dead(reason),
        }
    }
}

/// DingTalk keyword mode: the message is accepted only if its text contains a keyword.
fn append_keyword(body: &mut Value, keyword: &str) {
    if body_contains_text(body, keyword) {
        return;
    }
    let msgtype = body
        .get("msgtype")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let field = match msgtype.as_str() {
        "text" => Some(("text", "content")),
        "markdown" => Some(("markdown", "text")),
        "actionCard" => Some(("actionCard", "text")),
        "link" => Some(("link", "text")),
        _ => None,
    };
    if let Some((object, key)) = field
        && let Some(Value::String(text)) = body.get_mut(object).and_then(|o| o.get_mut(key))
    {
        text.push_str("\n\n");
        text.push_str(keyword);
        return;
    }
    if let Some(Value::Array(links)) = body.pointer_mut("/feedCard/links")
        && let Some(Value::String(title)) = links.first_mut().and_then(|l| l.get_mut("title"))
    {
        title.push(' ');
        title.push_str(keyword);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn spec_vectors() {
        assert_eq!(
            dingtalk_sign("secret", "1700000000000"),
            "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="
        );
        assert_eq!(
            dingtalk_sign("this is secret", "1700000000000"),
            "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0="
        );
        assert_eq!(
            dingtalk_sign(
                "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd",
                "1700000000000"
            ),
            "8SZas7RY4E7wuOlgLfjLwHSKZpyUEdXdLvFYSDZiiFw="
        );
    }

    #[test]
    fn signs_in_the_query_encoded_once_with_ms_timestamp() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let target = SendTarget {
            url: "https://oapi.dingtalk.com/robot/send?access_token=TOKEN",
            secret: Some("secret"),
            keyword: None,
        };
        let req = DingTalk
            .prepare(
                &target,
                json!({"msgtype":"text","text":{"content":"hi"}}),
                now,
            )
            .unwrap();
        assert_eq!(
            req.url.as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=TOKEN&timestamp=1700000000000&sign=OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
        );
        assert!(!req.url.as_str().contains("%25"), "double encoded");
        // A hex signature or a seconds timestamp would not be what we send.
        assert!(!req.url.as_str().contains("timestamp=1700000000&"));
    }

    #[test]
    fn no_secret_means_no_signature() {
        let target = SendTarget {
            url: "https://oapi.dingtalk.com/robot/send?access_token=T",
            secret: None,
            keyword: None,
        };
        let req = DingTalk
            .prepare(
                &target,
                json!({"msgtype":"text","text":{"content":"x"}}),
                SystemTime::now(),
            )
            .unwrap();
        assert_eq!(req.url.query(), Some("access_token=T"));
    }

    #[test]
    fn keyword_is_appended_once() {
        let target = SendTarget {
            url: "https://x/robot/send?access_token=T",
            secret: None,
            keyword: Some("gitee"),
        };
        let body = json!({"msgtype":"markdown","markdown":{"title":"t","text":"hello"}});
        let req = DingTalk.prepare(&target, body, SystemTime::now()).unwrap();
        assert_eq!(req.body["markdown"]["text"], "hello\n\ngitee");
        let body = json!({"msgtype":"markdown","markdown":{"title":"gitee push","text":"x"}});
        let req = DingTalk.prepare(&target, body, SystemTime::now()).unwrap();
        assert_eq!(req.body["markdown"]["text"], "x");
    }

    fn verdict(status: u16, body: &str) -> Verdict {
        DingTalk.classify(&Reply {
            status,
            retry_after: None,
            body,
        })
    }

    #[test]
    fn replies_are_classified_per_the_error_table() {
        assert_eq!(
            verdict(200, r#"{"errcode":0,"errmsg":"ok"}"#),
            Verdict::Delivered
        );
        assert!(matches!(
            verdict(200, r#"{"errcode":-1,"errmsg":"系统繁忙"}"#),
            Verdict::Retry {
                class: RetryClass::Transient,
                ..
            }
        ));
        match verdict(
            200,
            r#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#,
        ) {
            Verdict::Retry {
                class: RetryClass::RateLimited,
                after,
                ..
            } => {
                // No Retry-After: the dispatcher applies its configured pause (60 s).
                assert_eq!(after, None)
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            verdict(200, r#"{"errcode":310000,"errmsg":"invalid timestamp"}"#),
            Verdict::Retry {
                class: RetryClass::Signature,
                ..
            }
        ));
        assert!(matches!(
            verdict(200, r#"{"errcode":460101,"errmsg":"message too long"}"#),
            Verdict::Retry {
                class: RetryClass::TooLarge,
                ..
            }
        ));
        assert_eq!(
            verdict(
                200,
                r#"{"errcode":310000,"errmsg":"keywords not in content"}"#
            ),
            Verdict::dead("errcode 310000: keywords not in content")
        );
        assert!(matches!(
            verdict(
                200,
                r#"{"errcode":400101,"errmsg":"access_token does not exist"}"#
            ),
            Verdict::Dead { .. }
        ));
        assert!(matches!(
            verdict(502, "bad gateway"),
            Verdict::Retry {
                class: RetryClass::Transient,
                ..
            }
        ));
        assert!(matches!(verdict(404, "<html>"), Verdict::Dead { .. }));
    }
}
