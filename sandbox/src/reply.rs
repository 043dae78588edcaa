//! A simulator's answer before it becomes an HTTP response, so that faults can corrupt it.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

/// Status, content type, body bytes and cookies of one answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    pub(crate) set_cookies: Vec<String>,
}

pub(crate) const JSON: &str = "application/json; charset=utf-8";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
pub(crate) const HTML: &str = "text/html; charset=utf-8";

impl Reply {
    pub(crate) fn new(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            body,
            set_cookies: Vec::new(),
        }
    }

    /// HTTP 200 with a JSON body.
    pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        // Serialising a `serde_json::Value` or our own derive types cannot fail.
        let body = serde_json::to_vec(value).unwrap_or_default();
        Self::new(StatusCode::OK, JSON, body)
    }

    pub(crate) fn text(status: StatusCode, text: impl Into<String>) -> Self {
        Self::new(status, TEXT, text.into().into_bytes())
    }

    pub(crate) fn html(status: StatusCode, html: impl Into<String>) -> Self {
        Self::new(status, HTML, html.into().into_bytes())
    }

    /// Cuts the body to its first half (a truncated JSON document).
    pub(crate) fn truncate(&mut self) {
        let half = self.body.len() / 2;
        self.body.truncate(half);
    }

    /// Breaks the JSON syntax early in the body, keeping the rest.
    pub(crate) fn corrupt(&mut self) {
        if let Some(i) = self.body.iter().position(|b| *b == b':') {
            self.body.splice(i..=i, *b" = ");
        } else {
            self.body.splice(0..0, *b"{\"Result\" = ");
        }
    }

    pub(crate) fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for cookie in self.set_cookies {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                headers.append(header::SET_COOKIE, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_and_truncate_break_json() {
        let mut r = Reply::json(&serde_json::json!({"a": 1, "b": [1, 2, 3]}));
        r.corrupt();
        assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
        let mut r = Reply::json(&serde_json::json!({"a": 1, "b": [1, 2, 3]}));
        r.truncate();
        assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    }
}
