//! Signature helpers, computed independently from `im-platforms.md` (§1.3 and §3.3).
//!
//! These are the *server-side* reference computations the fakes use to verify
//! requests. They are public so tests can build correctly signed requests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256_b64(key: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// DingTalk signature for a decimal timestamp string exactly as it appears in the query.
pub(crate) fn dingtalk_sign_str(secret: &str, timestamp: &str) -> String {
    let string_to_sign = format!("{timestamp}\n{secret}");
    hmac_sha256_b64(secret.as_bytes(), string_to_sign.as_bytes())
}

/// Feishu signature for a decimal timestamp string exactly as it appears in the body.
pub(crate) fn feishu_sign_str(secret: &str, timestamp: &str) -> String {
    let string_to_sign = format!("{timestamp}\n{secret}");
    hmac_sha256_b64(string_to_sign.as_bytes(), b"")
}

/// DingTalk custom-robot signature (spec §1.3): standard base64 (with `=` padding) of
/// `HMAC-SHA256(key = secret, message = ts_ms + "\n" + secret)`.
///
/// The result is **not** URL-encoded; see [`dingtalk_sign_query`] for the query form.
///
/// ```
/// assert_eq!(
///     fake_robot::dingtalk_sign("secret", 1_700_000_000_000),
///     "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="
/// );
/// ```
pub fn dingtalk_sign(secret: &str, ts_ms: u64) -> String {
    dingtalk_sign_str(secret, &ts_ms.to_string())
}

/// The query-string suffix a correct DingTalk client appends after `access_token`:
/// `timestamp=<ts_ms>&sign=<base64 URL-encoded exactly once>` (no leading `&`).
///
/// ```
/// assert_eq!(
///     fake_robot::dingtalk_sign_query("secret", 1_700_000_000_000),
///     "timestamp=1700000000000&sign=OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
/// );
/// ```
pub fn dingtalk_sign_query(secret: &str, ts_ms: u64) -> String {
    let sign: String =
        url::form_urlencoded::byte_serialize(dingtalk_sign(secret, ts_ms).as_bytes()).collect();
    format!("timestamp={ts_ms}&sign={sign}")
}

/// Feishu/Lark custom-bot signature (spec §3.3): standard base64 of
/// `HMAC-SHA256(key = ts_s + "\n" + secret, message = empty)`. Sent as-is in the JSON body.
///
/// ```
/// assert_eq!(
///     fake_robot::feishu_sign("demo", 1_599_360_473),
///     "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
/// );
/// ```
pub fn feishu_sign(secret: &str, ts_s: u64) -> String {
    feishu_sign_str(secret, &ts_s.to_string())
}

/// Current Unix time in milliseconds (what a DingTalk client puts in `timestamp`).
pub fn now_ms() -> u64 {
    since_epoch(SystemTime::now()).as_millis() as u64
}

/// Current Unix time in seconds (what a Feishu client puts in `timestamp`).
pub fn now_s() -> u64 {
    since_epoch(SystemTime::now()).as_secs()
}

pub(crate) fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dingtalk_vectors() {
        assert_eq!(
            dingtalk_sign("secret", 1_700_000_000_000),
            "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="
        );
        assert_eq!(
            dingtalk_sign("this is secret", 1_700_000_000_000),
            "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0="
        );
        assert_eq!(
            dingtalk_sign(
                "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd",
                1_700_000_000_000
            ),
            "8SZas7RY4E7wuOlgLfjLwHSKZpyUEdXdLvFYSDZiiFw="
        );
    }

    #[test]
    fn dingtalk_query_is_encoded_once() {
        assert_eq!(
            dingtalk_sign_query("secret", 1_700_000_000_000),
            "timestamp=1700000000000&sign=OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
        );
        assert_eq!(
            dingtalk_sign_query("this is secret", 1_700_000_000_000),
            "timestamp=1700000000000&sign=sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0%3D"
        );
    }

    #[test]
    fn feishu_vectors() {
        assert_eq!(
            feishu_sign("demo", 1_599_360_473),
            "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
        );
        assert_eq!(
            feishu_sign("secret", 1_700_000_000),
            "fiWS2+gh28DOydAv7hzONH/mDn9+b1Y4Y5ivXWXy8vA="
        );
    }

    #[test]
    fn feishu_is_not_dingtalk_role_swap() {
        // Spec §3.3 third row: DingTalk roles on Feishu inputs give a different value.
        let swapped = hmac_sha256_b64(b"demo", b"1599360473\ndemo");
        assert_eq!(swapped, "DkEDUyVoOOJ539qBvUgMyzkzIdRWlf4e/V3Rq+ONJnQ=");
        assert_ne!(swapped, feishu_sign("demo", 1_599_360_473));
    }
}
