//! When to send a call again.
//!
//! Fxiaoke writes (create, update, invalid, delete, recover, change owner, message send) carry
//! no idempotency key, so a write is resent only when it never left this process (connection
//! refused) or when the gateway refused it before processing (rate limits, and — handled by
//! the transport, once — a refused token). A write that was sent without a readable answer, or
//! that the server reports as timed out inside (50009), becomes
//! [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown) and is never resent here. The policy
//! and the pure [`decide`] function live in `fxk3-kernel`, shared with the K3Cloud SDK; this
//! crate's [`Error`](crate::Error) says what each failure means, and the table below tests
//! that meaning.

pub use fxk3_kernel::retry::{Decision, Idempotency, RetryPolicy, decide};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Idempotency::{Idempotent as Read, NonIdempotent as Write};
    use super::*;
    use crate::error::{ApiError, Endpoint, Error};

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
}
