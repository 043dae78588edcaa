//! When to send a call again: a pure function, tested as a table.
//!
//! K3Cloud writes (Save, BatchSave, Submit, Audit, Push, …) have no idempotency key, so a write
//! is resent only when the server *answered* that it did nothing and may succeed later
//! (connection refused, network-control conflict, call limit). A write that was sent without a
//! readable answer becomes [`Error::OutcomeUnknown`] and is never resent here.

use std::time::Duration;

use crate::error::Error;

/// Whether a call may be repeated without changing the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Idempotency {
    /// A read (View, queries, metadata): safe to resend.
    Idempotent,
    /// A write: resent only when the server answered that nothing happened.
    NonIdempotent,
}

/// How often and how patiently to retry transient failures.
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
        capped.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
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
    if !error.is_retryable() || (write && error.has_partial_success()) {
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
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::Idempotency::{Idempotent as Read, NonIdempotent as Write};
    use super::*;
    use crate::error::{BusinessError, SuccessEntity};

    fn business(code: i64, saved_rows: usize) -> Error {
        Error::Business(Box::new(BusinessError {
            msg_code: Some(code),
            error_code: Some(500),
            errors: vec![],
            success_entities: vec![SuccessEntity::default(); saved_rows],
            raw: String::new(),
        }))
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
            ("read, connection refused", connect(), Read, 1, D::Retry),
            (
                "read, timed out after sending",
                no_answer(true),
                Read,
                1,
                D::Retry,
            ),
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
            ("write, connection refused", connect(), Write, 1, D::Retry),
            (
                "write, connection refused, attempts used up",
                connect(),
                Write,
                3,
                D::Fail,
            ),
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
            ("read, HTTP 503", http(503), Read, 1, D::Retry),
            ("read, HTTP 500 page", http(500), Read, 2, D::Retry),
            (
                "read, HTTP 500, attempts used up",
                http(500),
                Read,
                3,
                D::Fail,
            ),
            ("read, HTTP 429", http(429), Read, 1, D::Retry),
            ("read, HTTP 404", http(404), Read, 1, D::Fail),
            (
                "read, body not JSON (cut or garbled)",
                not_json(),
                Read,
                1,
                D::Retry,
            ),
            (
                "read, network-control conflict",
                business(13, 0),
                Read,
                1,
                D::Retry,
            ),
            ("read, call limit", business(14, 0), Read, 1, D::Retry),
            (
                "read, validation failure",
                business(11, 0),
                Read,
                1,
                D::Fail,
            ),
            (
                "read, invalid input",
                Error::InvalidInput("x".into()),
                Read,
                1,
                D::Fail,
            ),
            ("write, HTTP 500 page", http(500), Write, 1, D::Unknown),
            (
                "write, HTTP 502 from a proxy",
                http(502),
                Write,
                1,
                D::Unknown,
            ),
            ("write, HTML at 200", not_json(), Write, 1, D::Unknown),
            ("write, HTTP 404", http(404), Write, 1, D::Fail),
            (
                "write, call limit, nothing saved",
                business(14, 0),
                Write,
                1,
                D::Retry,
            ),
            (
                "write, conflict, nothing saved",
                business(13, 0),
                Write,
                2,
                D::Retry,
            ),
            (
                "write, conflict, attempts used up",
                business(13, 0),
                Write,
                3,
                D::Fail,
            ),
            (
                "write, call limit, some rows saved",
                business(14, 2),
                Write,
                1,
                D::Fail,
            ),
            (
                "write, validation failure",
                business(11, 0),
                Write,
                1,
                D::Fail,
            ),
            (
                "write, server exception (response_error:)",
                Error::ServerException {
                    message: String::new(),
                    raw: String::new(),
                },
                Write,
                1,
                D::Unknown,
            ),
            (
                "read, server exception",
                Error::ServerException {
                    message: String::new(),
                    raw: String::new(),
                },
                Read,
                1,
                D::Fail,
            ),
            (
                "write, 502 from a gateway with a JSON body",
                Error::Gateway {
                    status: 502,
                    errcode: 502,
                    description: "Bad Gateway".into(),
                },
                Write,
                1,
                D::Unknown,
            ),
            (
                "write, 504 from a gateway with a JSON body",
                Error::Gateway {
                    status: 504,
                    errcode: 504,
                    description: "Gateway Timeout".into(),
                },
                Write,
                1,
                D::Unknown,
            ),
            (
                "write, gateway refusal",
                Error::Gateway {
                    status: 519,
                    errcode: 4006,
                    description: String::new(),
                },
                Write,
                1,
                D::Fail,
            ),
            (
                "write, credentials refused",
                Error::AuthFailed {
                    message: String::new(),
                    login_result_type: None,
                },
                Write,
                1,
                D::Fail,
            ),
            (
                "write, undecodable success",
                Error::Decode {
                    path: String::new(),
                    message: String::new(),
                    snippet: String::new(),
                },
                Write,
                1,
                D::Unknown,
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
    }

    #[test]
    fn call_limit_waits_at_least_a_second() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, 1, &business(14, 0), Write, 0.0),
            Decision::Retry(Duration::from_secs(1))
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
