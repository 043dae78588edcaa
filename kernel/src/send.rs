//! What a failed HTTP exchange means for the call: never sent, or sent without an answer.

/// A request that did not come back with an HTTP answer.
#[derive(Debug)]
pub enum SendFailure {
    /// The request could not be built (a bad header value): nothing was sent.
    Invalid(String),
    /// No connection was made: the server never saw the request.
    Connect(reqwest::Error),
    /// The request may have reached the server, and no answer was read.
    NoAnswer {
        /// The client's timeout ran out (rather than the connection dropping).
        timed_out: bool,
        /// The underlying error.
        source: reqwest::Error,
    },
}

/// Sorts a failed `send` (or body read) into [`SendFailure`]. The URL is dropped from the
/// error: a query string may carry a credential.
pub fn classify(e: reqwest::Error) -> SendFailure {
    let e = e.without_url();
    if e.is_builder() {
        SendFailure::Invalid(e.to_string())
    } else if e.is_connect() {
        SendFailure::Connect(e)
    } else {
        SendFailure::NoAnswer {
            timed_out: e.is_timeout(),
            source: e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_was_never_sent() {
        // Port 9 on loopback: nothing listens there on a test machine.
        let e = reqwest::Client::new()
            .post("http://127.0.0.1:9/x?secret=1")
            .send()
            .await
            .unwrap_err();
        let SendFailure::Connect(e) = classify(e) else {
            panic!("not a connect failure")
        };
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn an_unbuildable_request_is_invalid() {
        let e = reqwest::Client::new().get("http://").build().unwrap_err();
        assert!(matches!(classify(e), SendFailure::Invalid(_)));
    }
}
