//! Authentication of Gitee deliveries (`X-Gitee-Token` / `X-Gitee-Timestamp`).
//!
//! * Password mode: the token is the hook password, verbatim.
//! * Signature-key mode: the token is `base64(HMAC-SHA256(key = secret,
//!   msg = timestamp + "\n" + secret))` with the timestamp header text used verbatim
//!   (milliseconds). Only the secret and the timestamp are signed, not the body, so the
//!   timestamp must be fresh. The token is raw standard base64: it is never URL-decoded.
//!
//! All comparisons are constant-time. Errors never carry the secret, the password or the token.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The skew Gitee's documentation allows between the timestamp and the receipt time (1 hour).
pub const DEFAULT_MAX_SKEW_MS: i64 = 3_600_000;

/// How a source authenticates its deliveries. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum SourceAuth {
    /// The hook has a signing key ("签名密钥"): the token is an HMAC signature.
    Signature { secret: String },
    /// The hook has a password ("WebHook 密码"): the token is the password.
    Password { password: String },
    /// Accept every delivery. Only for tests and local experiments.
    Unauthenticated,
}

impl SourceAuth {
    /// `signature`, `password` or `none`, for logs.
    pub fn mode(&self) -> &'static str {
        match self {
            SourceAuth::Signature { .. } => "signature",
            SourceAuth::Password { .. } => "password",
            SourceAuth::Unauthenticated => "none",
        }
    }
}

impl fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceAuth::Signature { .. } => f.write_str("Signature { secret: <redacted> }"),
            SourceAuth::Password { .. } => f.write_str("Password { password: <redacted> }"),
            SourceAuth::Unauthenticated => f.write_str("Unauthenticated"),
        }
    }
}

/// Why a delivery was rejected. The HTTP layer answers every variant with the same 401 and
/// logs the variant; `Display` is a short reason without any secret or token value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    MissingToken,
    #[error("wrong token")]
    WrongToken,
    #[error("missing timestamp")]
    MissingTimestamp,
    #[error("malformed timestamp")]
    BadTimestamp,
    /// `skew_ms` is `now - timestamp`: positive for old deliveries, negative for future ones.
    #[error("stale timestamp (skew {skew_ms} ms)")]
    StaleTimestamp { skew_ms: i64 },
}

/// Gitee's signature: standard base64 of HMAC-SHA256 keyed with the secret over
/// `"<timestamp>\n<secret>"`. The timestamp text is used exactly as received.
pub fn gitee_signature(secret: &str, timestamp: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(secret.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// At most this many digits: 16 digits of milliseconds reach past the year 300000, and the
/// value always fits an `i64`.
const MAX_TIMESTAMP_DIGITS: usize = 16;

/// Parses the `X-Gitee-Timestamp` header: decimal milliseconds, ASCII digits only.
fn parse_timestamp(ts: &str) -> Result<i64, AuthError> {
    if ts.is_empty() || ts.len() > MAX_TIMESTAMP_DIGITS || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::BadTimestamp);
    }
    ts.parse::<i64>().map_err(|_| AuthError::BadTimestamp)
}

/// Constant-time equality of two byte strings of any length (the lengths are not leaked
/// either: both sides are hashed first).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    bool::from(ha.as_slice().ct_eq(hb.as_slice())) & (a.len() == b.len())
}

/// Checks a delivery's `X-Gitee-Token` (and, in signature mode, `X-Gitee-Timestamp`)
/// against the source's configuration. `now_ms` is the receipt time in Unix milliseconds;
/// signature-mode timestamps must satisfy `|now_ms - ts| <= max_skew_ms`.
///
/// An empty token counts as missing (Gitee sends an empty header when the hook has no
/// password or key). `Unauthenticated` accepts everything.
pub fn verify(
    auth: &SourceAuth,
    token: Option<&str>,
    timestamp: Option<&str>,
    now_ms: i64,
    max_skew_ms: i64,
) -> Result<(), AuthError> {
    let token = || {
        token
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)
    };
    match auth {
        SourceAuth::Unauthenticated => Ok(()),
        SourceAuth::Password { password } => {
            let token = token()?;
            if ct_eq(token.as_bytes(), password.as_bytes()) {
                Ok(())
            } else {
                Err(AuthError::WrongToken)
            }
        }
        SourceAuth::Signature { secret } => {
            let token = token()?;
            let ts_text = timestamp
                .filter(|t| !t.is_empty())
                .ok_or(AuthError::MissingTimestamp)?;
            let ts = parse_timestamp(ts_text)?;
            // i128: no overflow whatever `now_ms` is.
            let skew = i128::from(now_ms) - i128::from(ts);
            if skew.abs() > i128::from(max_skew_ms.max(0)) {
                let skew_ms =
                    i64::try_from(skew).unwrap_or(if skew < 0 { i64::MIN } else { i64::MAX });
                return Err(AuthError::StaleTimestamp { skew_ms });
            }
            let expected = gitee_signature(secret, ts_text);
            // `expected` is always 44 bytes; a token of any other length (1 MB, URL-encoded,
            // hex) is simply not equal.
            if ct_eq(token.as_bytes(), expected.as_bytes()) {
                Ok(())
            } else {
                Err(AuthError::WrongToken)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_SCM: &str = "bBg5lrt03VixkX85CNqYIcecC0SIGASE";
    const SKEW: i64 = DEFAULT_MAX_SKEW_MS;

    fn sig(secret: &str) -> SourceAuth {
        SourceAuth::Signature {
            secret: secret.to_owned(),
        }
    }

    fn check(secret: &str, ts: &str, token: &str) -> Result<(), AuthError> {
        let now: i64 = ts.parse().unwrap();
        verify(&sig(secret), Some(token), Some(ts), now + 1234, SKEW)
    }

    /// Spec §3.3: every vector (captured and computed).
    const VECTORS: &[(&str, &str, &str)] = &[
        (
            GO_SCM,
            "1633679083918",
            "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck=",
        ),
        (
            GO_SCM,
            "1633686799688",
            "OyjGt7PDU9xXl5khawx5APOUmODD+SaulKYnS/Nifew=",
        ),
        (
            "437EBE55A75911E8",
            "1646657144174",
            "mNR0yK7W4UlZ4E4aehEVtupxLaE73siwbGgDVSloTVE=",
        ),
        (
            "this is secret",
            "1576754827988",
            "2D978FIy4DMMTbiN80zQkNH1Eq/kMBt3gL6OnWfGzzY=",
        ),
        (
            "my-webhook-secret",
            "1700000000000",
            "1rAaaiDzyq29Ury9Me3lnXWn4MG51ULt1mfIrpP/NcY=",
        ),
        (
            "密钥🔑",
            "1700000000000",
            "3C03sWTx5Mk+79s2nmP7pDaBtQcj7EU5gerEbVEAP+0=",
        ),
    ];

    #[test]
    fn spec_vectors_sign_and_verify() {
        for (secret, ts, expected) in VECTORS {
            assert_eq!(gitee_signature(secret, ts), *expected, "secret {secret:?}");
            assert_eq!(check(secret, ts, expected), Ok(()), "secret {secret:?}");
        }
    }

    #[test]
    fn negative_checks_are_wrong_token() {
        let ts = "1633679083918";
        let wrong = [
            // hex instead of base64
            "5ef87860f55eea5df55e90d12fd276c9e6845da6ec724228514b1c8695e255c9",
            // timestamp in seconds
            "xM2hl3RZum20tWGKjZGtxhrN5la3bB0tiyOA1LOts0E=",
            // the doc's sample with an unknown secret
            "rLEHLuZRIQHuTPeXMib9Czoq9dVXO4TsQcmQQHtjXHA=",
            // not base64 at all, right length
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=",
            // right signature without padding, with whitespace
            "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck",
            " Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck=",
        ];
        for token in wrong {
            assert_eq!(
                check(GO_SCM, ts, token),
                Err(AuthError::WrongToken),
                "{token}"
            );
        }
        // URL-encoded base64 (`+` → `%2B`, `/` → `%2F`) is not accepted: no URL-decoding.
        let encoded = "OyjGt7PDU9xXl5khawx5APOUmODD%2BSaulKYnS%2FNifew%3D";
        assert_eq!(
            check(GO_SCM, "1633686799688", encoded),
            Err(AuthError::WrongToken)
        );
        // wrong secret
        let other = gitee_signature("not-the-secret", ts);
        assert_eq!(check(GO_SCM, ts, &other), Err(AuthError::WrongToken));
        // signature of another timestamp
        assert_eq!(
            check(GO_SCM, ts, "OyjGt7PDU9xXl5khawx5APOUmODD+SaulKYnS/Nifew="),
            Err(AuthError::WrongToken)
        );
        // 1 MB token
        let huge = "A".repeat(1 << 20);
        assert_eq!(check(GO_SCM, ts, &huge), Err(AuthError::WrongToken));
    }

    #[test]
    fn missing_and_empty_token() {
        let now = 1633679083918;
        let ts = Some("1633679083918");
        assert_eq!(
            verify(&sig(GO_SCM), None, ts, now, SKEW),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            verify(&sig(GO_SCM), Some(""), ts, now, SKEW),
            Err(AuthError::MissingToken)
        );
        let pw = SourceAuth::Password {
            password: "gitee".into(),
        };
        assert_eq!(
            verify(&pw, None, None, now, SKEW),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            verify(&pw, Some(""), None, now, SKEW),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn timestamp_validation() {
        let token = Some("Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck=");
        let now = 1633679083918;
        let v = |ts: Option<&str>| verify(&sig(GO_SCM), token, ts, now, SKEW);
        assert_eq!(v(None), Err(AuthError::MissingTimestamp));
        assert_eq!(v(Some("")), Err(AuthError::MissingTimestamp));
        for bad in [
            "-5",
            "abc",
            "+1633679083918",
            " 1633679083918",
            "1633679083918 ",
            "1633679083.918",
            "1e12",
            "１６３３６７９０８３９１８", // full-width digits
            "123456789012345678901234567890",
            "99999999999999999999",
        ] {
            assert_eq!(v(Some(bad)), Err(AuthError::BadTimestamp), "{bad:?}");
        }
        let huge = "9".repeat(1 << 20);
        assert_eq!(v(Some(&huge)), Err(AuthError::BadTimestamp));
        // seconds instead of milliseconds: 50 years in the past
        assert!(matches!(
            v(Some("1633679083")),
            Err(AuthError::StaleTimestamp { skew_ms }) if skew_ms > 0
        ));
    }

    #[test]
    fn freshness_window() {
        let (secret, ts, token) = VECTORS[0];
        let t: i64 = ts.parse().unwrap();
        let v = |now: i64, skew: i64| verify(&sig(secret), Some(token), Some(ts), now, skew);
        assert_eq!(v(t, SKEW), Ok(()));
        assert_eq!(v(t + SKEW, SKEW), Ok(()));
        assert_eq!(v(t - SKEW, SKEW), Ok(()));
        assert_eq!(
            v(t + SKEW + 1, SKEW),
            Err(AuthError::StaleTimestamp { skew_ms: SKEW + 1 })
        );
        assert_eq!(
            v(t - SKEW - 1, SKEW),
            Err(AuthError::StaleTimestamp { skew_ms: -SKEW - 1 })
        );
        // 5-minute window
        assert_eq!(v(t + 300_000, 300_000), Ok(()));
        assert!(v(t + 300_001, 300_000).is_err());
        // far future / far past / extreme clocks: no overflow
        assert!(matches!(v(0, SKEW), Err(AuthError::StaleTimestamp { .. })));
        assert!(matches!(
            v(i64::MIN, SKEW),
            Err(AuthError::StaleTimestamp { .. })
        ));
        assert!(matches!(
            v(i64::MAX, SKEW),
            Err(AuthError::StaleTimestamp { .. })
        ));
        // a negative window is treated as zero
        assert_eq!(v(t, -1), Ok(()));
        assert!(v(t + 1, -1).is_err());
        let far_future = "9999999999999999";
        let tok = gitee_signature(secret, far_future);
        assert!(matches!(
            verify(&sig(secret), Some(&tok), Some(far_future), t, SKEW),
            Err(AuthError::StaleTimestamp { skew_ms }) if skew_ms < 0
        ));
        let far_past = "0000000000001";
        let tok = gitee_signature(secret, far_past);
        assert!(matches!(
            verify(&sig(secret), Some(&tok), Some(far_past), t, SKEW),
            Err(AuthError::StaleTimestamp { skew_ms }) if skew_ms > 0
        ));
        // i64::MAX window: anything representable goes timing-wise, signature still checked
        assert_eq!(v(0, i64::MAX), Ok(()));
        assert!(matches!(
            verify(&sig(secret), Some("x"), Some(ts), 0, i64::MAX),
            Err(AuthError::WrongToken)
        ));
    }

    #[test]
    fn password_mode() {
        let pw = SourceAuth::Password {
            password: "gitee".into(),
        };
        assert_eq!(
            verify(&pw, Some("gitee"), Some("1600756504787"), 0, SKEW),
            Ok(())
        );
        // no timestamp check in password mode
        assert_eq!(verify(&pw, Some("gitee"), None, i64::MAX, SKEW), Ok(()));
        assert_eq!(verify(&pw, Some("gitee"), Some("garbage"), 0, SKEW), Ok(()));
        for wrong in ["Gitee", "gitee ", "gite", "giteee", "%67itee"] {
            assert_eq!(
                verify(&pw, Some(wrong), None, 0, SKEW),
                Err(AuthError::WrongToken)
            );
        }
        let huge = "g".repeat(1 << 20);
        assert_eq!(
            verify(&pw, Some(&huge), None, 0, SKEW),
            Err(AuthError::WrongToken)
        );
        let cn = SourceAuth::Password {
            password: "密码🔑".into(),
        };
        assert_eq!(verify(&cn, Some("密码🔑"), None, 0, SKEW), Ok(()));
    }

    #[test]
    fn unauthenticated_accepts_anything() {
        let a = SourceAuth::Unauthenticated;
        assert_eq!(verify(&a, None, None, 0, SKEW), Ok(()));
        assert_eq!(verify(&a, Some("x"), Some("y"), 0, SKEW), Ok(()));
    }

    #[test]
    fn nothing_secret_is_displayed() {
        let secret = "bBg5lrt03VixkX85CNqYIcecC0SIGASE";
        let auth = sig(secret);
        assert!(!format!("{auth:?}").contains(secret));
        let pw = SourceAuth::Password {
            password: "hunter2".into(),
        };
        assert!(!format!("{pw:?}").contains("hunter2"));
        let token = "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck=";
        for now in [0, 1633679083918] {
            for tok in [token, "hunter2-token"] {
                if let Err(e) = verify(&auth, Some(tok), Some("1633679083918"), now, SKEW) {
                    let shown = format!("{e} {e:?}");
                    assert!(!shown.contains(secret) && !shown.contains(tok), "{shown}");
                }
            }
        }
        assert_eq!(AuthError::WrongToken.to_string(), "wrong token");
        assert_eq!(
            AuthError::StaleTimestamp { skew_ms: 5 }.to_string(),
            "stale timestamp (skew 5 ms)"
        );
    }
}
