//! Feishu / Lark custom bot: `timestamp` (seconds) and `sign` at the top of the JSON body,
//! where the signing key is `timestamp + "\n" + secret` over an empty message (the reverse of
//! DingTalk's roles). open.larksuite.com hooks work the same way.

use serde_json::Value;
use std::time::SystemTime;

use super::{
    OutgoingRequest, Platform, PlatformKind, PrepareError, Reply, RetryClass, SendTarget, Verdict,
    body_contains_text, coded_reply, hmac_sha256_base64, unix_ms,
};

pub struct Feishu;

/// Feishu's signature: base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = "")).
pub fn feishu_sign(secret: &str, timestamp_s: &str) -> String {
    hmac_sha256_base64(format!("{timestamp_s}\n{secret}").as_bytes(), b"")
}

impl Platform for Feishu {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Feishu
    }

    fn prepare(
        &self,
        target: &SendTarget<'_>,
        mut body: Value,
        now: SystemTime,
    ) -> Result<OutgoingRequest, PrepareError> {
        let url = url::Url::parse(target.url).map_err(|_| PrepareError::BadUrl)?;
        if let Some(keyword) = target.keyword {
            append_keyword(&mut body, keyword);
        }
        let map = body.as_object_mut().ok_or(PrepareError::NotAnObject)?;
        if let Some(secret) = target.secret {
            let timestamp = (unix_ms(now) / 1000).to_string();
            let sign = feishu_sign(secret, &timestamp);
            // The doc shows the timestamp as a JSON string.
            map.insert("timestamp".into(), Value::String(timestamp));
            map.insert("sign".into(), Value::String(sign));
        }
        Ok(OutgoingRequest { url, body })
    }

    fn classify(&self, reply: &Reply<'_>) -> Verdict {
        // Feishu's HTTP status is unreliable: read the body first, whatever the status.
        let (code, msg) =
            match coded_reply(reply, &["code", "StatusCode"], &["msg", "StatusMessage"]) {
                Ok(coded) => coded,
                Err(verdict) => return verdict,
            };
        let reason = format!("code {code}: {msg}");
        match code {
            0 => Verdict::Delivered,
            11232 | 11233 | 11247 | 99991400 => Verdict::Retry {
                class: RetryClass::RateLimited,
                reason,
                after: reply.retry_after,
            },
            1500 | 2200 => Verdict::retry(RetryClass::Transient, reason),
            19021 => Verdict::retry(RetryClass::Signature, reason),
            19036 => Verdict::retry(RetryClass::TooLarge, reason),
            9499 => Verdict::retry(RetryClass::Ambiguous, reason),
            _ => Verdict::dead(reason),
        }
    }
}

/// Feishu keyword mode checks text values only; add the keyword as a card note or to the text.
fn append_keyword(body: &mut Value, keyword: &str) {
    if body_contains_text(body, keyword) {
        return;
    }
    if let Some(Value::Array(elements)) = body.pointer_mut("/card/elements") {
        elements.push(serde_json::json!({
            "tag": "note",
            "elements": [{"tag": "plain_text", "content": keyword}]
        }));
    } else if let Some(Value::Array(elements)) = body.pointer_mut("/card/body/elements") {
        elements.push(serde_json::json!({"tag": "markdown", "content": keyword}));
    } else if let Some(Value::String(text)) = body.pointer_mut("/content/text") {
        text.push(' ');
        text.push_str(keyword);
    } else if let Some(Value::Object(locales)) = body.pointer_mut("/content/post")
        && let Some(Value::Object(first)) = locales.values_mut().next()
        && let Some(Value::String(title)) = first.get_mut("title")
    {
        title.push(' ');
        title.push_str(keyword);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::dingtalk_sign;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn spec_vectors() {
        assert_eq!(
            feishu_sign("demo", "1599360473"),
            "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
        );
        assert_eq!(
            feishu_sign("secret", "1700000000"),
            "fiWS2+gh28DOydAv7hzONH/mDn9+b1Y4Y5ivXWXy8vA="
        );
    }

    #[test]
    fn dingtalk_roles_are_not_feishu() {
        // The spec's counter-example: DingTalk's roles give a different value.
        assert_eq!(
            dingtalk_sign("demo", "1599360473"),
            "DkEDUyVoOOJ539qBvUgMyzkzIdRWlf4e/V3Rq+ONJnQ="
        );
        assert_ne!(
            feishu_sign("demo", "1599360473"),
            dingtalk_sign("demo", "1599360473")
        );
    }

    #[test]
    fn signs_in_the_body_with_seconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_599_360_473_999);
        let target = SendTarget {
            url: "https://open.larksuite.com/open-apis/bot/v2/hook/abc",
            secret: Some("demo"),
            keyword: None,
        };
        let req = Feishu
            .prepare(
                &target,
                json!({"msg_type":"text","content":{"text":"hi"}}),
                now,
            )
            .unwrap();
        assert_eq!(req.body["timestamp"], "1599360473");
        assert_eq!(
            req.body["sign"],
            "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
        );
        assert_eq!(
            req.url.as_str(),
            "https://open.larksuite.com/open-apis/bot/v2/hook/abc"
        );
    }

    #[test]
    fn keyword_goes_into_a_card_note() {
        let target = SendTarget {
            url: "https://open.feishu.cn/open-apis/bot/v2/hook/abc",
            secret: None,
            keyword: Some("gitee"),
        };
        let body = json!({"msg_type":"interactive","card":{"elements":[]}});
        let req = Feishu.prepare(&target, body, SystemTime::now()).unwrap();
        assert_eq!(
            req.body["card"]["elements"][0]["elements"][0]["content"],
            "gitee"
        );
    }

    fn verdict(status: u16, body: &str) -> Verdict {
        Feishu.classify(&Reply {
            status,
            retry_after: None,
            body,
        })
    }

    #[test]
    fn replies_are_classified_per_the_error_table() {
        assert_eq!(
            verdict(200, r#"{"code":0,"msg":"success","data":{}}"#),
            Verdict::Delivered
        );
        assert_eq!(
            verdict(200, r#"{"StatusCode":0,"StatusMessage":"success"}"#),
            Verdict::Delivered
        );
        assert!(matches!(
            verdict(200, r#"{"code":11232,"msg":"frequency limited"}"#),
            Verdict::Retry {
                class: RetryClass::RateLimited,
                ..
            }
        ));
        assert!(matches!(
            verdict(400, r#"{"code":19021,"msg":"sign match fail"}"#),
            Verdict::Retry {
                class: RetryClass::Signature,
                ..
            }
        ));
        assert!(matches!(
            verdict(200, r#"{"code":19036,"msg":"too large"}"#),
            Verdict::Retry {
                class: RetryClass::TooLarge,
                ..
            }
        ));
        assert!(matches!(
            verdict(200, r#"{"code":19024,"msg":"Key Words Not Found"}"#),
            Verdict::Dead { .. }
        ));
        assert!(matches!(
            verdict(503, "busy"),
            Verdict::Retry {
                class: RetryClass::Transient,
                ..
            }
        ));
    }
}
