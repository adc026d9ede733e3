//! Which failures are worth retrying, and how long to wait: exponential backoff with full
//! jitter, or the server's `Retry-After` when it gives one.

use std::time::Duration;

/// Transient: rate limited, request timeout, server errors, and (outside HTTP) timeouts and
/// connection failures. A 4xx other than 408/429 is the request's fault and is never retried.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status)
}

/// `Retry-After` as seconds (the HTTP-date form is rare from LLM servers and is ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(600.0)))
}

/// Delay before retry number `attempt` (1-based): uniform in [0, min(cap, base * 2^(attempt-1))].
/// `unit` in [0, 1) is the jitter draw.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    exp.min(cap).mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!is_transient_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_and_backoff() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        let (base, cap) = (Duration::from_millis(100), Duration::from_secs(2));
        assert_eq!(backoff(1, base, cap, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(3, base, cap, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(10, base, cap, 1.0), cap);
        assert_eq!(backoff(3, base, cap, 0.5), Duration::from_millis(200));
        assert_eq!(backoff(40, base, cap, 0.0), Duration::ZERO);
    }
}
