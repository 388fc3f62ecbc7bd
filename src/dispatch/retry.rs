//! The retry schedule as pure functions: given what the robot said and the delivery's
//! history, what happens next. No clocks or randomness inside: callers pass `now` and a
//! uniform random number, so every rule is unit-tested exactly.

use std::time::Duration;

use crate::config::DeliverySettings;
use crate::platform::{RetryClass, Verdict};
use crate::store::Completion;

/// Exponential backoff with full jitter: a delay uniform in [0, min(cap, first · 2^retry)],
/// where `retry` counts the retries already made (0 for the first). `unit` is in [0, 1).
/// Never below a small floor, so a hot loop is impossible.
pub fn backoff(retry: u32, first: Duration, cap: Duration, unit: f64) -> Duration {
    let ceiling = first
        .checked_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(cap)
        .min(cap);
    let floor = Duration::from_millis(100).min(ceiling);
    ceiling.mul_f64(unit.clamp(0.0, 1.0)).max(floor)
}

pub fn class_name(class: RetryClass) -> &'static str {
    match class {
        RetryClass::Transient => "transient",
        RetryClass::RateLimited => "rate_limited",
        RetryClass::Signature => "signature",
        RetryClass::TooLarge => "too_large",
        RetryClass::Ambiguous => "ambiguous",
    }
}

/// The facts about a delivery the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// Attempts made before the one just finished.
    pub attempts_before: u32,
    pub created_ms: i64,
    /// Retry class of the previous failed attempt.
    pub last_class: Option<&'a str>,
}

/// What to do after an attempt that ended with `verdict` at `now_ms`.
pub fn decide(
    verdict: &Verdict,
    history: History<'_>,
    now_ms: i64,
    settings: &DeliverySettings,
    unit: f64,
) -> Completion {
    let (class, reason, after) = match verdict {
        Verdict::Delivered => return Completion::Delivered,
        Verdict::Dead { reason } => {
            return Completion::Dead {
                error: reason.clone(),
            };
        }
        Verdict::Retry {
            class,
            reason,
            after,
        } => (*class, reason, *after),
    };
    let attempts = history.attempts_before + 1;
    let name = class_name(class);
    // Signature/timestamp, size and ambiguous rejections earn exactly one more try: a fresh
    // timestamp, a shortened body or a pause either fixes them or nothing will.
    let once_only = matches!(
        class,
        RetryClass::Signature | RetryClass::TooLarge | RetryClass::Ambiguous
    );
    if once_only && history.last_class == Some(name) {
        return Completion::Dead {
            error: format!("{reason} (again after a retry)"),
        };
    }
    if attempts >= settings.max_attempts {
        return Completion::Dead {
            error: format!("{reason} (gave up after {attempts} attempts)"),
        };
    }
    let age = Duration::from_millis((now_ms - history.created_ms).max(0) as u64);
    if age >= settings.give_up_after {
        return Completion::Dead {
            error: format!(
                "{reason} (gave up after {}s of retries)",
                settings.give_up_after.as_secs()
            ),
        };
    }
    let delay = match class {
        RetryClass::Signature | RetryClass::TooLarge => Duration::ZERO,
        RetryClass::RateLimited => after.unwrap_or(settings.rate_limit_pause),
        _ => after.unwrap_or_else(|| {
            backoff(
                history.attempts_before,
                settings.retry_first,
                settings.retry_cap,
                unit,
            )
        }),
    };
    Completion::Retry {
        at_ms: now_ms + delay.as_millis() as i64,
        class: name,
        error: reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        DeliverySettings::default()
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let first = Duration::from_secs(5);
        let cap = Duration::from_secs(3600);
        assert_eq!(backoff(0, first, cap, 0.999_999_999).as_secs(), 4);
        assert_eq!(backoff(0, first, cap, 1.0), Duration::from_secs(5));
        assert_eq!(backoff(1, first, cap, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(4, first, cap, 1.0), Duration::from_secs(80));
        assert_eq!(backoff(20, first, cap, 1.0), cap);
        assert_eq!(backoff(u32::MAX, first, cap, 1.0), cap);
        assert_eq!(backoff(3, first, cap, 0.5), Duration::from_secs(20));
        // Full jitter never goes to zero.
        assert_eq!(backoff(3, first, cap, 0.0), Duration::from_millis(100));
    }

    fn history(attempts_before: u32, last_class: Option<&str>) -> History<'_> {
        History {
            attempts_before,
            created_ms: 0,
            last_class,
        }
    }

    #[test]
    fn delivered_and_dead_pass_through() {
        assert_eq!(
            decide(&Verdict::Delivered, history(0, None), 10, &settings(), 0.5),
            Completion::Delivered
        );
        assert_eq!(
            decide(
                &Verdict::dead("errcode 310000: keywords not in content"),
                history(0, None),
                10,
                &settings(),
                0.5
            ),
            Completion::Dead {
                error: "errcode 310000: keywords not in content".into()
            }
        );
    }

    #[test]
    fn transient_failures_back_off() {
        let v = Verdict::retry(RetryClass::Transient, "HTTP 500");
        assert_eq!(
            decide(&v, history(2, Some("transient")), 1_000, &settings(), 1.0),
            Completion::Retry {
                at_ms: 1_000 + 20_000,
                class: "transient",
                error: "HTTP 500".into()
            }
        );
    }

    #[test]
    fn retry_after_is_honoured() {
        let v = Verdict::Retry {
            class: RetryClass::RateLimited,
            reason: "HTTP 429".into(),
            after: Some(Duration::from_secs(30)),
        };
        assert_eq!(
            decide(&v, history(0, None), 1_000, &settings(), 0.1),
            Completion::Retry {
                at_ms: 31_000,
                class: "rate_limited",
                error: "HTTP 429".into()
            }
        );
    }

    #[test]
    fn a_rate_limit_without_retry_after_pauses_for_the_configured_penalty() {
        let v = Verdict::retry(RetryClass::RateLimited, "errcode 130101");
        assert_eq!(
            decide(&v, history(0, None), 1_000, &settings(), 0.1),
            Completion::Retry {
                at_ms: 61_000,
                class: "rate_limited",
                error: "errcode 130101".into()
            }
        );
    }

    #[test]
    fn signature_and_size_rejections_get_one_immediate_retry() {
        for class in [RetryClass::Signature, RetryClass::TooLarge] {
            let v = Verdict::retry(class, "rejected");
            assert_eq!(
                decide(&v, history(0, None), 5_000, &settings(), 0.7),
                Completion::Retry {
                    at_ms: 5_000,
                    class: class_name(class),
                    error: "rejected".into()
                }
            );
            assert!(matches!(
                decide(
                    &v,
                    history(1, Some(class_name(class))),
                    5_000,
                    &settings(),
                    0.7
                ),
                Completion::Dead { .. }
            ));
        }
    }

    #[test]
    fn gives_up_after_max_attempts_or_age() {
        let v = Verdict::retry(RetryClass::Transient, "HTTP 503");
        let mut s = settings();
        s.max_attempts = 3;
        assert!(matches!(
            decide(&v, history(1, None), 10, &s, 0.5),
            Completion::Retry { .. }
        ));
        assert!(matches!(
            decide(&v, history(2, None), 10, &s, 0.5),
            Completion::Dead { .. }
        ));
        let day_ms = 24 * 3600 * 1000;
        assert!(matches!(
            decide(&v, history(1, None), day_ms, &settings(), 0.5),
            Completion::Dead { .. }
        ));
    }
}
