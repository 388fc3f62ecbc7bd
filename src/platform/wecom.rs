//! WeCom (WeChat Work) group robot: the key in the URL is the only credential; replies are
//! HTTP 200 with an `errcode`.

use serde_json::Value;
use std::time::SystemTime;

use super::{
    OutgoingRequest, Platform, PlatformKind, PrepareError, Reply, RetryClass, SendTarget, Verdict,
    coded_reply, unsigned_request,
};

pub struct WeCom;

impl Platform for WeCom {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Wecom
    }

    fn prepare(
        &self,
        target: &SendTarget<'_>,
        body: Value,
        _now: SystemTime,
    ) -> Result<OutgoingRequest, PrepareError> {
        unsigned_request(target, body)
    }

    fn classify(&self, reply: &Reply<'_>) -> Verdict {
        let (errcode, errmsg) = match coded_reply(reply, &["errcode"], &["errmsg"]) {
            Ok(coded) => coded,
            Err(verdict) => return verdict,
        };
        let reason = format!("errcode {errcode}: {errmsg}");
        match errcode {
            0 => Verdict::Delivered,
            -1 | 45033 => Verdict::retry(RetryClass::Transient, reason),
            45009 => Verdict::Retry {
                class: RetryClass::RateLimited,
                reason,
                after: reply.retry_after,
            },
            45002 => Verdict::retry(RetryClass::TooLarge, reason),
            40058 if errmsg.contains("exceed") || errmsg.contains("length") => {
                Verdict::retry(RetryClass::TooLarge, reason)
            }
            _ => Verdict::dead(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(body: &str) -> Verdict {
        WeCom.classify(&Reply {
            status: 200,
            retry_after: None,
            body,
        })
    }

    #[test]
    fn replies_are_classified_per_the_error_table() {
        assert_eq!(
            verdict(r#"{"errcode":0,"errmsg":"ok"}"#),
            Verdict::Delivered
        );
        assert!(matches!(
            verdict(r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
            Verdict::Retry {
                class: RetryClass::RateLimited,
                after: None,
                ..
            }
        ));
        assert!(matches!(
            verdict(r#"{"errcode":-1,"errmsg":"busy"}"#),
            Verdict::Retry {
                class: RetryClass::Transient,
                ..
            }
        ));
        assert!(matches!(
            verdict(r#"{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}"#),
            Verdict::Retry {
                class: RetryClass::TooLarge,
                ..
            }
        ));
        assert!(matches!(
            verdict(r#"{"errcode":40058,"errmsg":"invalid Request Parameter"}"#),
            Verdict::Dead { .. }
        ));
        assert_eq!(
            verdict(r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#),
            Verdict::dead("errcode 93000: invalid webhook url")
        );
    }

    #[test]
    fn the_url_is_used_as_is() {
        let t = SendTarget {
            url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K",
            secret: None,
            keyword: None,
        };
        let req = WeCom
            .prepare(&t, serde_json::json!({"msgtype":"text"}), SystemTime::now())
            .unwrap();
        assert_eq!(
            req.url.as_str(),
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"
        );
    }
}
