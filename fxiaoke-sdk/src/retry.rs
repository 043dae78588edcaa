//! When to send a call again: a pure function, tested as a table.
//!
//! Fxiaoke writes (create, update, invalid, delete, recover, change owner, message send) carry
//! no idempotency key, so a write is resent only when it never left this process (connection
//! refused) or when the gateway refused it before processing (rate limits, and — handled by
//! the transport, once — a refused token). A write that was sent without a readable answer, or
//! that the server reports as timed out inside (50009), becomes [`Error::OutcomeUnknown`] and
//! is never resent here.

use std::time::Duration;

use crate::error::Error;

/// Whether a call may be repeated without changing the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Idempotency {
    /// A read (query, get, describe, users, token): safe to resend.
    Idempotent,
    /// A write: resent only when the server did not act on it.
    NonIdempotent,
}

/// How often and how patiently to retry transient failures.
///
/// ```
/// use std::time::Duration;
/// use fxiaoke_sdk::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_max_attempts(5)
///     .with_backoff(Duration::from_millis(500), Duration::from_secs(10));
/// assert_eq!(policy.max_attempts, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound of one wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms doubling up to 5 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Sets the number of attempts in total (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the first wait and the cap of one wait.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The wait before attempt `attempt + 1`, for a `jitter` in `[0, 1)`: between half and all
    /// of the capped exponential delay, so that many clients do not retry in step.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let capped = exp.min(self.max_backoff);
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let factor = 0.5 + jitter / 2.0;
        Duration::try_from_secs_f64(capped.as_secs_f64() * factor).unwrap_or(capped)
    }
}

/// What to do after attempt number `attempt` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send the call again after this wait.
    Retry(Duration),
    /// Give up and return the error.
    Fail,
    /// Give up: the write may have happened; return [`Error::OutcomeUnknown`].
    OutcomeUnknown,
}

/// Decides whether to resend a call after attempt `attempt` (1-based) failed with `error`.
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    error: &Error,
    idempotency: Idempotency,
    jitter: f64,
) -> Decision {
    let write = idempotency == Idempotency::NonIdempotent;
    if write && error.was_dispatched() && !error.outcome_known() {
        return Decision::OutcomeUnknown;
    }
    if !error.is_retryable() {
        return Decision::Fail;
    }
    // A write that reached the server is resent only when the gateway refused it unprocessed.
    if write && error.was_dispatched() && !error.refused_before_processing() {
        return Decision::Fail;
    }
    if attempt >= policy.max_attempts {
        return Decision::Fail;
    }
    let wait = policy.backoff(attempt, jitter);
    Decision::Retry(error.retry_floor().map_or(wait, |floor| wait.max(floor)))
}

/// A random number in `[0, 1)` for jitter, without a random-number dependency: the standard
/// library seeds each `RandomState` randomly.
#[allow(clippy::cast_precision_loss)] // Both values fit in 53 bits: the conversion is exact.
pub(crate) fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// 64 random bits from the standard library's per-`RandomState` seed.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::Idempotency::{Idempotent as Read, NonIdempotent as Write};
    use super::*;
    use crate::error::{ApiError, Endpoint};

    fn api(code: i64) -> Error {
        Error::from_api(
            ApiError {
                code,
                message: String::new(),
                description: None,
                trace_id: None,
                endpoint: "/cgi/crm/v2/data/query".into(),
                raw: String::new(),
            },
            Endpoint::Query,
        )
    }

    fn http(status: u16) -> Error {
        Error::Http {
            status,
            snippet: String::new(),
        }
    }

    // A real reqwest::Error to wrap; decide() only looks at the variant around it.
    fn reqwest_error() -> reqwest::Error {
        reqwest::Client::new().get("http://").build().unwrap_err()
    }

    fn connect() -> Error {
        Error::Connect {
            source: reqwest_error(),
        }
    }

    fn no_answer(timed_out: bool) -> Error {
        Error::NoAnswer {
            timed_out,
            source: reqwest_error(),
        }
    }

    fn not_json() -> Error {
        Error::NotJson {
            status: 200,
            snippet: String::new(),
        }
    }

    fn decode() -> Error {
        Error::Decode {
            path: String::new(),
            message: String::new(),
            snippet: String::new(),
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum D {
        Retry,
        Fail,
        Unknown,
    }

    fn kind(d: Decision) -> D {
        match d {
            Decision::Retry(_) => D::Retry,
            Decision::Fail => D::Fail,
            Decision::OutcomeUnknown => D::Unknown,
        }
    }

    #[test]
    fn decision_table() {
        let p = RetryPolicy::default();
        let rows: Vec<(&str, Error, Idempotency, u32, D)> = vec![
            // Reads: every transient fault and rate limit, until the attempts are used up.
            ("read, connection refused", connect(), Read, 1, D::Retry),
            ("read, timed out", no_answer(true), Read, 1, D::Retry),
            (
                "read, connection dropped",
                no_answer(false),
                Read,
                2,
                D::Retry,
            ),
            (
                "read, timed out, attempts used up",
                no_answer(true),
                Read,
                3,
                D::Fail,
            ),
            ("read, HTTP 502", http(502), Read, 1, D::Retry),
            ("read, HTTP 429", http(429), Read, 1, D::Retry),
            ("read, HTTP 404", http(404), Read, 1, D::Fail),
            (
                "read, body not JSON (cut or garbled)",
                not_json(),
                Read,
                1,
                D::Retry,
            ),
            ("read, 30004 rate limited", api(30004), Read, 1, D::Retry),
            ("read, 14001 call limit", api(14001), Read, 2, D::Retry),
            (
                "read, 30004, attempts used up",
                api(30004),
                Read,
                3,
                D::Fail,
            ),
            ("read, -1 system busy", api(-1), Read, 1, D::Retry),
            ("read, 50009 server timeout", api(50009), Read, 1, D::Retry),
            ("read, 30002 daily quota", api(30002), Read, 1, D::Fail),
            ("read, 30003 no quota", api(30003), Read, 1, D::Fail),
            ("read, 10013 offset", api(10013), Read, 1, D::Fail),
            (
                "read, 20016 token (transport's job)",
                api(20016),
                Read,
                1,
                D::Fail,
            ),
            ("read, business refusal", api(201_112_011), Read, 1, D::Fail),
            (
                "read, bad input",
                Error::InvalidInput("x".into()),
                Read,
                1,
                D::Fail,
            ),
            ("read, undecodable", decode(), Read, 1, D::Fail),
            // Writes: resent only when nothing happened on the server.
            ("write, connection refused", connect(), Write, 1, D::Retry),
            (
                "write, connection refused, attempts used up",
                connect(),
                Write,
                3,
                D::Fail,
            ),
            ("write, 30004 rate limited", api(30004), Write, 1, D::Retry),
            ("write, 14001 call limit", api(14001), Write, 2, D::Retry),
            (
                "write, timed out after sending",
                no_answer(true),
                Write,
                1,
                D::Unknown,
            ),
            (
                "write, connection dropped",
                no_answer(false),
                Write,
                1,
                D::Unknown,
            ),
            (
                "write, HTTP 502 from a proxy",
                http(502),
                Write,
                1,
                D::Unknown,
            ),
            ("write, HTTP 500 page", http(500), Write, 1, D::Unknown),
            ("write, HTTP 429", http(429), Write, 1, D::Retry),
            ("write, HTTP 404", http(404), Write, 1, D::Fail),
            ("write, HTML at 200", not_json(), Write, 1, D::Unknown),
            ("write, undecodable success", decode(), Write, 1, D::Unknown),
            (
                "write, 50009 server timeout",
                api(50009),
                Write,
                1,
                D::Unknown,
            ),
            ("write, -1 system busy", api(-1), Write, 1, D::Fail),
            ("write, -2 system error", api(-2), Write, 1, D::Unknown),
            ("read, -2 system error", api(-2), Read, 1, D::Fail),
            ("write, 30002 daily quota", api(30002), Write, 1, D::Fail),
            (
                "write, business refusal",
                api(201_112_011),
                Write,
                1,
                D::Fail,
            ),
            (
                "write, bad input",
                Error::InvalidInput("x".into()),
                Write,
                1,
                D::Fail,
            ),
        ];
        for (name, error, idem, attempt, expected) in rows {
            assert_eq!(
                kind(decide(&p, attempt, &error, idem, 0.5)),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn never_policy_never_retries() {
        assert_eq!(
            decide(&RetryPolicy::never(), 1, &http(503), Read, 0.0),
            Decision::Fail
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p =
            RetryPolicy::default().with_backoff(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(200));
        assert_eq!(p.backoff(4, 1.0), Duration::from_millis(800));
        assert_eq!(p.backoff(5, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(40, 1.0), Duration::from_secs(1));
        let huge = RetryPolicy::default().with_backoff(Duration::MAX, Duration::MAX);
        assert!(huge.backoff(3, 0.999) > Duration::ZERO, "no overflow panic");
        assert_eq!(p.backoff(1, f64::NAN), Duration::from_millis(50));
    }

    #[test]
    fn rate_limits_wait_at_least_a_second() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, 1, &api(30004), Write, 0.0),
            Decision::Retry(Duration::from_secs(1))
        );
        assert_eq!(
            decide(&p, 1, &connect(), Read, 0.0),
            Decision::Retry(Duration::from_millis(100))
        );
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
