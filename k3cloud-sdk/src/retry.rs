//! When to send a call again.
//!
//! K3Cloud writes (Save, BatchSave, Submit, Audit, Push, …) have no idempotency key, so a write
//! is resent only when the server *answered* that it did nothing and may succeed later
//! (connection refused, network-control conflict, call limit). A write that was sent without a
//! readable answer becomes [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown) and is never
//! resent here. The policy and the pure [`decide`] function live in `fxk3-kernel`, shared with
//! the Fxiaoke SDK; this crate's [`Error`](crate::Error) says what each failure means, and the
//! table below tests that meaning.

pub use fxk3_kernel::retry::{Decision, Idempotency, RetryPolicy, decide};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Idempotency::{Idempotent as Read, NonIdempotent as Write};
    use super::*;
    use crate::error::{BusinessError, Error, SuccessEntity};

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
    fn call_limit_waits_at_least_a_second() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, 1, &business(14, 0), Write, 0.0),
            Decision::Retry(Duration::from_secs(1))
        );
    }
}
