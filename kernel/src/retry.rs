//! When to send a call again — a pure function, tested as a table — and the one loop that
//! applies it.
//!
//! Neither vendor's writes carry an idempotency key, so a write is resent only when the server
//! did not act on it. Each SDK says what its errors mean through [`Classify`]; [`decide`] turns
//! that into a [`Decision`], and [`Attempts`] counts, waits and gives up. A write that was sent
//! without a readable answer ends as the SDK's "outcome unknown" error and is never resent.

use std::fmt::Display;
use std::time::Duration;

/// Whether a call may be repeated without changing the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Idempotency {
    /// A read (query, view, metadata, token, login): safe to resend.
    Idempotent,
    /// A write: resent only when the server did not act on it.
    NonIdempotent,
}

/// How often and how patiently to retry transient failures.
///
/// ```
/// use std::time::Duration;
/// use fxk3_kernel::retry::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_max_attempts(5)
///     .with_backoff(Duration::from_millis(500), Duration::from_secs(10));
/// assert_eq!(policy.max_attempts, 5);
/// assert_eq!(policy.backoff(2, 1.0), Duration::from_secs(1));
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
    /// of the capped exponential delay, so that many clients do not retry in step. A jitter
    /// outside the range is clamped, and NaN counts as 0.
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

/// What an SDK's error says about resending the call that failed.
pub trait Classify {
    /// The request may have reached the server.
    fn was_dispatched(&self) -> bool;
    /// The server's answer was read, so what happened is known.
    fn outcome_known(&self) -> bool;
    /// Trying again later may succeed.
    fn is_retryable(&self) -> bool;
    /// A retryable failure of a *write* that may be sent again: the server answered that it
    /// did nothing with it (a gateway refusal, a call limit, a whole-call conflict).
    fn write_may_be_resent(&self) -> bool;
    /// The shortest wait the server asked for (a rate-limit window), if any.
    fn retry_floor(&self) -> Option<Duration>;
    /// The error that replaces this one when a write may have happened.
    #[must_use]
    fn into_outcome_unknown(self, operation: &str) -> Self;
}

/// What to do after attempt number `attempt` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send the call again after this wait.
    Retry(Duration),
    /// Give up and return the error.
    Fail,
    /// Give up: the write may have happened; return the "outcome unknown" error.
    OutcomeUnknown,
}

/// Decides whether to resend a call after attempt `attempt` (1-based) failed with `error`.
pub fn decide<E: Classify + ?Sized>(
    policy: &RetryPolicy,
    attempt: u32,
    error: &E,
    idempotency: Idempotency,
    jitter: f64,
) -> Decision {
    let write = idempotency == Idempotency::NonIdempotent;
    if write && error.was_dispatched() && !error.outcome_known() {
        return Decision::OutcomeUnknown;
    }
    if !error.is_retryable() || (write && !error.write_may_be_resent()) {
        return Decision::Fail;
    }
    if attempt >= policy.max_attempts {
        return Decision::Fail;
    }
    let wait = policy.backoff(attempt, jitter);
    Decision::Retry(error.retry_floor().map_or(wait, |floor| wait.max(floor)))
}

/// The attempts of one call: counts them, and after a failure waits or gives up as [`decide`]
/// says.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use fxk3_kernel::retry::{Attempts, Classify, Idempotency, RetryPolicy};
///
/// #[derive(Debug)]
/// struct Busy;
/// impl std::fmt::Display for Busy {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("busy") }
/// }
/// impl Classify for Busy {
///     fn was_dispatched(&self) -> bool { true }
///     fn outcome_known(&self) -> bool { true }
///     fn is_retryable(&self) -> bool { true }
///     fn write_may_be_resent(&self) -> bool { true }
///     fn retry_floor(&self) -> Option<Duration> { None }
///     fn into_outcome_unknown(self, _: &str) -> Self { self }
/// }
///
/// let policy = RetryPolicy::default();
/// let mut attempts = Attempts::new(&policy, Idempotency::Idempotent);
/// let mut calls = 0;
/// let result: Result<(), Busy> = loop {
///     attempts.start();
///     calls += 1;
///     if let Err(e) = attempts.back_off(Busy, "Query").await {
///         break Err(e);
///     }
/// };
/// assert!(result.is_err());
/// assert_eq!(calls, 3);
/// # }
/// ```
#[derive(Debug)]
pub struct Attempts<'p> {
    policy: &'p RetryPolicy,
    idempotency: Idempotency,
    made: u32,
}

impl<'p> Attempts<'p> {
    /// No attempt made yet.
    pub fn new(policy: &'p RetryPolicy, idempotency: Idempotency) -> Self {
        Attempts {
            policy,
            idempotency,
            made: 0,
        }
    }

    /// Starts the next attempt and returns its number (1-based).
    pub fn start(&mut self) -> u32 {
        self.made += 1;
        self.made
    }

    /// Does not count the attempt just made: the server refused it without acting on it (a
    /// lost session, a refused token) and it is sent again at once with new credentials.
    pub fn refund(&mut self) {
        self.made = self.made.saturating_sub(1);
    }

    /// After the current attempt failed with `error`: waits and returns `Ok` when the call
    /// is to be sent again; else returns the error to give up with — replaced by the SDK's
    /// "outcome unknown" error when a write may have happened.
    pub async fn back_off<E: Classify + Display>(
        &self,
        error: E,
        operation: &str,
    ) -> Result<(), E> {
        match decide(self.policy, self.made, &error, self.idempotency, jitter()) {
            Decision::Retry(wait) => {
                tracing::debug!(
                    attempt = self.made,
                    wait_ms = wait.as_millis(),
                    error = %error,
                    "retrying"
                );
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Decision::Fail => Err(error),
            Decision::OutcomeUnknown => Err(error.into_outcome_unknown(operation)),
        }
    }
}

/// A random number in `[0, 1)` for jitter, without a random-number dependency: the standard
/// library seeds each `RandomState` randomly.
#[allow(clippy::cast_precision_loss)] // Both values fit in 53 bits: the conversion is exact.
pub fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// 64 random bits from the standard library's per-`RandomState` seed.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::Idempotency::{Idempotent as Read, NonIdempotent as Write};
    use super::*;

    /// An error described by its answers to [`Classify`].
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct E {
        dispatched: bool,
        known: bool,
        retryable: bool,
        resend_write: bool,
        floor: Option<Duration>,
        unknown: bool,
    }

    impl Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    impl Classify for E {
        fn was_dispatched(&self) -> bool {
            self.dispatched
        }
        fn outcome_known(&self) -> bool {
            self.known
        }
        fn is_retryable(&self) -> bool {
            self.retryable
        }
        fn write_may_be_resent(&self) -> bool {
            self.resend_write
        }
        fn retry_floor(&self) -> Option<Duration> {
            self.floor
        }
        fn into_outcome_unknown(self, _: &str) -> Self {
            E {
                unknown: true,
                ..self
            }
        }
    }

    const REFUSED: E = E {
        dispatched: false,
        known: true,
        retryable: true,
        resend_write: true,
        floor: None,
        unknown: false,
    };
    const NO_ANSWER: E = E {
        dispatched: true,
        known: false,
        ..REFUSED
    };
    const RATE_LIMITED: E = E {
        dispatched: true,
        floor: Some(Duration::from_secs(20)),
        ..REFUSED
    };
    const SERVER_ERROR_AFTER_WRITE: E = E {
        dispatched: true,
        resend_write: false,
        ..REFUSED
    };
    const BAD_INPUT: E = E {
        dispatched: true,
        retryable: false,
        ..REFUSED
    };

    #[derive(Debug, PartialEq)]
    enum D {
        Retry,
        Fail,
        Unknown,
    }

    #[test]
    fn decision_table() {
        let p = RetryPolicy::default();
        let rows = [
            ("read, never sent", REFUSED, Read, 1, D::Retry),
            ("read, no answer", NO_ANSWER, Read, 2, D::Retry),
            ("read, attempts used up", NO_ANSWER, Read, 3, D::Fail),
            ("read, not retryable", BAD_INPUT, Read, 1, D::Fail),
            ("write, never sent", REFUSED, Write, 1, D::Retry),
            ("write, never sent, used up", REFUSED, Write, 3, D::Fail),
            ("write, no answer", NO_ANSWER, Write, 1, D::Unknown),
            ("write, no answer, used up", NO_ANSWER, Write, 3, D::Unknown),
            (
                "write, refused unprocessed",
                RATE_LIMITED,
                Write,
                1,
                D::Retry,
            ),
            (
                "write, may have acted",
                SERVER_ERROR_AFTER_WRITE,
                Write,
                1,
                D::Fail,
            ),
            (
                "read, may have acted",
                SERVER_ERROR_AFTER_WRITE,
                Read,
                1,
                D::Retry,
            ),
            ("write, not retryable", BAD_INPUT, Write, 1, D::Fail),
        ];
        for (name, error, idem, attempt, want) in rows {
            let got = match decide(&p, attempt, &error, idem, 0.5) {
                Decision::Retry(_) => D::Retry,
                Decision::Fail => D::Fail,
                Decision::OutcomeUnknown => D::Unknown,
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_server_asked_wait_is_a_floor() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, 1, &RATE_LIMITED, Read, 0.0),
            Decision::Retry(Duration::from_secs(20))
        );
        assert_eq!(
            decide(&p, 1, &REFUSED, Read, 0.0),
            Decision::Retry(Duration::from_millis(100))
        );
    }

    #[test]
    fn backoff_doubles_is_capped_and_takes_any_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(200));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(400));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(5));
        assert_eq!(p.backoff(u32::MAX, 1.0), Duration::from_secs(5));
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(100));
        assert_eq!(p.backoff(1, f64::NAN), Duration::from_millis(100));
        assert_eq!(p.backoff(1, f64::INFINITY), Duration::from_millis(200));
        assert_eq!(p.backoff(1, -3.0), Duration::from_millis(100));
        assert_eq!(RetryPolicy::default().with_max_attempts(0).max_attempts, 1);
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_wait_refund_and_give_up_as_decided() {
        let p = RetryPolicy::default();
        let mut reads = Attempts::new(&p, Read);
        assert_eq!(reads.start(), 1);
        let before = tokio::time::Instant::now();
        reads.back_off(RATE_LIMITED, "query").await.unwrap();
        assert_eq!(before.elapsed(), Duration::from_secs(20));
        assert_eq!(reads.start(), 2);
        reads.refund();
        assert_eq!(reads.start(), 2, "a refunded attempt is not counted");
        reads.back_off(REFUSED, "query").await.unwrap();
        assert_eq!(reads.start(), 3);
        assert_eq!(reads.back_off(REFUSED, "query").await, Err(REFUSED));

        let mut writes = Attempts::new(&p, Write);
        writes.start();
        let e = writes.back_off(NO_ANSWER, "save").await.unwrap_err();
        assert!(
            e.unknown,
            "a write without an answer ends as outcome unknown"
        );
    }
}
