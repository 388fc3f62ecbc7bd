//! Slack incoming webhook: the URL is the credential; success is the body `ok`, failures are
//! 4xx/5xx with a bare error word, 429 carries `Retry-After`.

use serde_json::Value;
use std::time::SystemTime;

use super::{
    OutgoingRequest, Platform, PlatformKind, PrepareError, Reply, RetryClass, SendTarget, Verdict,
    excerpt, unsigned_request,
};

pub struct Slack;

impl Platform for Slack {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Slack
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
        let word = reply.body.trim();
        if reply.status == 200 && word == "ok" {
            return Verdict::Delivered;
        }
        let reason = format!("HTTP {}: {}", reply.status, excerpt(word));
        match (reply.status, word) {
            (429, _) | (_, "rate_limited") => Verdict::Retry {
                class: RetryClass::RateLimited,
                reason,
                after: reply.retry_after,
            },
            (_, "msg_too_long" | "msg_blocks_too_long") => {
                Verdict::retry(RetryClass::TooLarge, reason)
            }
            (500..=599, _) | (_, "rollup_error") => Verdict::retry(RetryClass::Transient, reason),
            _ => Verdict::dead(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn verdict(status: u16, retry_after: Option<u64>, body: &str) -> Verdict {
        Slack.classify(&Reply {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            body,
        })
    }

    #[test]
    fn replies_are_classified_per_the_error_table() {
        assert_eq!(verdict(200, None, "ok"), Verdict::Delivered);
        assert_eq!(
            verdict(429, Some(30), "rate_limited"),
            Verdict::Retry {
                class: RetryClass::RateLimited,
                reason: "HTTP 429: rate_limited".into(),
                after: Some(Duration::from_secs(30))
            }
        );
        assert!(matches!(
            verdict(500, None, "rollup_error"),
            Verdict::Retry {
                class: RetryClass::Transient,
                ..
            }
        ));
        assert_eq!(
            verdict(404, None, "no_service"),
            Verdict::dead("HTTP 404: no_service")
        );
        assert!(matches!(
            verdict(403, None, "invalid_token"),
            Verdict::Dead { .. }
        ));
        assert!(matches!(
            verdict(400, None, "invalid_payload"),
            Verdict::Dead { .. }
        ));
        // A 200 that is not `ok` is not a success.
        assert!(matches!(
            verdict(200, None, "something else"),
            Verdict::Dead { .. }
        ));
    }
}
