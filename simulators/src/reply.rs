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
    /// Rows the call wrote, for the per-row cost of a latency rule.
    pub(crate) rows: u64,
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
            rows: 0,
        }
    }

    /// Records how many rows the call wrote.
    pub(crate) fn with_rows(mut self, rows: usize) -> Self {
        self.rows = u64::try_from(rows).unwrap_or(u64::MAX);
        self
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

    /// Takes `key` out of every object of a JSON body; other bodies are left alone.
    pub(crate) fn without_key(&mut self, key: &str) {
        fn strip(v: &mut serde_json::Value, key: &str) {
            match v {
                serde_json::Value::Object(m) => {
                    m.remove(key);
                    m.values_mut().for_each(|x| strip(x, key));
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(|x| strip(x, key)),
                _ => {}
            }
        }
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            strip(&mut v, key);
            self.body = serde_json::to_vec(&v).unwrap_or_default();
        }
    }

    /// Keeps the first `rows` elements of a JSON array body; other bodies are left alone.
    pub(crate) fn cap_rows(&mut self, rows: usize) {
        if let Ok(serde_json::Value::Array(mut a)) = serde_json::from_slice(&self.body) {
            a.truncate(rows);
            self.body = serde_json::to_vec(&a).unwrap_or_default();
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

    #[test]
    fn a_key_is_taken_out_at_every_depth_and_rows_are_capped() {
        let mut r = Reply::json(&serde_json::json!(
            {"Result": {"ResponseStatus": {"Errors": [{"DIndex": 1, "Message": "x"}],
                        "SuccessEntitys": [{"Id": 7, "DIndex": 0}]}}}
        ));
        r.without_key("DIndex");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(),
            serde_json::json!({"Result": {"ResponseStatus": {"Errors": [{"Message": "x"}],
                               "SuccessEntitys": [{"Id": 7}]}}})
        );
        let mut r = Reply::json(&serde_json::json!([[1], [2], [3]]));
        r.cap_rows(2);
        assert_eq!(r.body, b"[[1],[2]]");
        let mut r = Reply::json(&serde_json::json!({"a": 1}));
        r.cap_rows(0);
        assert_eq!(r.body, br#"{"a":1}"#);
    }
}
