//! The only code that sends HTTP: builds the body with the token, corp id and operator,
//! rate-limits, checks the envelope, replaces a refused token once, retries what may be
//! retried, and opens one `tracing` span per call.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use secrecy::ExposeSecret;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use tracing::Instrument;
use url::Url;

use crate::auth::{CorpToken, Credentials, TOKEN_PATH, TokenAnswer, TokenManager};
use crate::error::{Endpoint, Error, Result};
use crate::limit::RateLimiter;
use crate::response::{self, Answer, Context, Decoder};
use crate::retry::{Idempotency, RetryPolicy};
use fxk3_kernel::retry::Attempts;
use fxk3_kernel::send::SendFailure;

/// Which identity fields the body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFields {
    /// Nothing (the token endpoint; raw calls that bring their own).
    None,
    /// `corpAccessToken` and `corpId` (org directory, messages).
    Corp,
    /// `corpAccessToken`, `corpId` and `currentOpenUserId` (CRM calls).
    CorpAndOperator,
}

/// The body key of the acting user.
pub(crate) const OPERATOR_KEY: &str = "currentOpenUserId";
const TOKEN_KEY: &str = "corpAccessToken";
const CORP_KEY: &str = "corpId";

/// Everything needed to send a call; shared by all clones of a client.
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Url,
    pub(crate) credentials: Credentials,
    pub(crate) operator: Option<String>,
    pub(crate) tokens: TokenManager,
    pub(crate) retry: RetryPolicy,
    pub(crate) limiter: Option<Arc<dyn RateLimiter>>,
    pub(crate) timeout: Duration,
    pub(crate) user_agent: HeaderValue,
    pub(crate) third_trace_id: bool,
    /// HTTP requests sent, token requests included.
    pub(crate) requests: std::sync::atomic::AtomicU64,
    /// The server's clock, from the `Date` of its answers.
    pub(crate) server_clock: fxk3_kernel::server_clock::ServerClock,
    /// Each API path joined to the base once: a client calls a handful of paths, and parsing
    /// the URL again on every call was a measurable share of a create's client CPU.
    pub(crate) urls: std::sync::RwLock<std::collections::HashMap<String, Url>>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .field("operator", &self.operator)
            .field("tokens", &self.tokens)
            .field("retry", &self.retry)
            .field("limiter", &self.limiter)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One call: the path, its JSON body (without identity fields), and whether it may be resent.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    /// The endpoint path, e.g. `/cgi/crm/v2/data/query`.
    pub(crate) path: &'a str,
    pub(crate) body: Map<String, Value>,
    pub(crate) auth: AuthFields,
    pub(crate) idempotency: Idempotency,
    pub(crate) endpoint: Endpoint,
    /// For the tracing span and errors: `crm.create`, `org.user_list`, ….
    pub(crate) operation: &'static str,
    /// For the tracing span: the object API name.
    pub(crate) object: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A call with the defaults of a CRM read.
    pub(crate) fn new(operation: &'static str, path: &'a str, body: Map<String, Value>) -> Self {
        Call {
            path,
            body,
            auth: AuthFields::CorpAndOperator,
            idempotency: Idempotency::Idempotent,
            endpoint: Endpoint::Other,
            operation,
            object: None,
        }
    }

    pub(crate) fn auth(mut self, auth: AuthFields) -> Self {
        self.auth = auth;
        self
    }

    pub(crate) fn write(mut self) -> Self {
        self.idempotency = Idempotency::NonIdempotent;
        self
    }

    pub(crate) fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = endpoint;
        self
    }

    pub(crate) fn object(mut self, object: &'a str) -> Self {
        self.object = Some(object);
        self
    }
}

/// The body as sent: identity fields first, then the call's own keys.
struct Outgoing<'a> {
    token: Option<&'a CorpToken>,
    operator: Option<&'a str>,
    body: &'a Map<String, Value>,
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(token) = self.token {
            map.serialize_entry(TOKEN_KEY, token.expose_token())?;
            map.serialize_entry(CORP_KEY, token.corp_id())?;
        }
        if let Some(operator) = self.operator {
            map.serialize_entry(OPERATOR_KEY, operator)?;
        }
        for (k, v) in self.body {
            let ours = (self.token.is_some() && (k == TOKEN_KEY || k == CORP_KEY))
                || (self.operator.is_some() && k == OPERATOR_KEY);
            if !ours {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl Transport {
    /// Sends a call and returns the checked answer.
    pub(crate) async fn call(&self, call: Call<'_>) -> Result<Answer> {
        self.call_decoded(call, &response::Whole).await
    }

    /// Sends a call and decodes a successful answer with `decoder` (in one pass over the
    /// body when the decoder can).
    pub(crate) async fn call_decoded<D: Decoder>(
        &self,
        call: Call<'_>,
        decoder: &D,
    ) -> Result<D::Output> {
        let span = tracing::info_span!(
            "fxiaoke.call",
            operation = call.operation,
            path = call.path,
            object = call.object.unwrap_or(""),
            attempts = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
            error_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let started = tokio::time::Instant::now();
        let result = self
            .call_in_span(&call, decoder, &span)
            .instrument(span.clone())
            .await;
        span.record("duration_ms", started.elapsed().as_millis());
        match &result {
            Ok((_, trace_id)) => {
                span.record("outcome", "ok");
                if let Some(t) = trace_id {
                    span.record("trace_id", t.as_str());
                }
            }
            Err(e) => {
                span.record("outcome", e.kind_label());
                if let Some(a) = e.api_error() {
                    span.record("error_code", a.code);
                    if let Some(t) = &a.trace_id {
                        span.record("trace_id", t.as_str());
                    }
                }
            }
        }
        result.map(|(output, _)| output)
    }

    async fn call_in_span<D: Decoder>(
        &self,
        call: &Call<'_>,
        decoder: &D,
        span: &tracing::Span,
    ) -> Result<(D::Output, Option<String>)> {
        let url = self.url(call.path)?;
        let operator = match call.auth {
            AuthFields::CorpAndOperator => Some(self.operator_for(&call.body)?),
            _ => None,
        };
        let mut attempts = Attempts::new(&self.retry, call.idempotency);
        let mut token_replaced = false;
        let mut token = None;
        loop {
            span.record("attempts", attempts.start());
            if call.auth != AuthFields::None && token.is_none() {
                token = Some(self.token().await?);
            }
            let body = serde_json::to_vec(&Outgoing {
                token: token.as_deref(),
                operator,
                body: &call.body,
            })
            .map_err(|e| Error::InvalidInput(format!("body cannot be serialized: {e}")))?;
            if let Some(limiter) = &self.limiter {
                limiter.acquire(call.path).await;
            }
            let secret = token.as_ref().map(|t| t.expose_token());
            let secrets: Vec<&str> = secret.into_iter().collect();
            let ctx = Context {
                path: call.path,
                endpoint: call.endpoint,
                secrets: &secrets,
            };
            let error = match self.send(&url, Bytes::from(body)).await {
                Ok((status, bytes)) => {
                    if let Some(done) = decoder.fast(status, &bytes) {
                        return Ok(done);
                    }
                    match response::check(status, bytes, &ctx) {
                        Ok(answer) => {
                            let trace_id = answer.trace_id.clone();
                            return decoder.slow(answer).map(|out| (out, trace_id));
                        }
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            if let (Error::TokenInvalid(_), Some(rejected)) = (&error, &token) {
                if token_replaced {
                    return Err(error);
                }
                // The gateway refused the token without acting on the call, so even a write
                // is safe to send once more with a new token.
                tracing::info!("corp access token refused (20016); replacing it once");
                let rejected = Arc::clone(rejected);
                token = Some(
                    self.tokens
                        .replace(&rejected, || self.fetch_token())
                        .await?,
                );
                token_replaced = true;
                attempts.refund();
                continue;
            }
            attempts.back_off(error, call.operation).await?;
        }
    }

    /// The operator of a call: `currentOpenUserId` of the body, else the client's default.
    fn operator_for<'b>(&'b self, body: &'b Map<String, Value>) -> Result<&'b str> {
        match body.get(OPERATOR_KEY) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(Error::InvalidInput(
                "currentOpenUserId must be a non-empty string".into(),
            )),
            None => self.operator.as_deref().ok_or_else(|| {
                Error::InvalidInput(
                    "no operator (currentOpenUserId): set ClientBuilder::operator or .operator(…) on the call".into(),
                )
            }),
        }
    }

    /// A token to send, fetched if needed.
    pub(crate) async fn token(&self) -> Result<Arc<CorpToken>> {
        self.tokens.get(|| self.fetch_token()).await
    }

    /// One request to the token endpoint.
    async fn fetch_token(&self) -> Result<TokenAnswer> {
        let url = self.url(TOKEN_PATH)?;
        let c = &self.credentials;
        let body = serde_json::json!({
            "appId": c.app_id,
            "appSecret": c.app_secret.expose_secret(),
            "permanentCode": c.permanent_code.expose_secret(),
        });
        let body = serde_json::to_vec(&body).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let span = tracing::info_span!("fxiaoke.token", outcome = tracing::field::Empty);
        let result = async {
            if let Some(limiter) = &self.limiter {
                limiter.acquire(TOKEN_PATH).await;
            }
            let (status, bytes) = self.send(&url, Bytes::from(body)).await?;
            let secrets = [
                c.app_secret.expose_secret(),
                c.permanent_code.expose_secret(),
            ];
            let ctx = Context {
                path: TOKEN_PATH,
                endpoint: Endpoint::Token,
                secrets: &secrets,
            };
            let answer = response::check(status, bytes, &ctx)?;
            // A mismatch must not quote the body, nor serde's message, which quotes the value
            // it could not take (a token sent as a number, say): only the path is kept.
            answer.decode::<TokenAnswer>().map_err(|e| match e {
                Error::Decode { path, .. } => Error::Decode {
                    message: format!("unexpected value at `{path}` of the token answer"),
                    path,
                    snippet: "[token answer not shown]".into(),
                },
                other => other,
            })
        }
        .instrument(span.clone())
        .await;
        span.record(
            "outcome",
            match &result {
                Ok(_) => "ok",
                Err(e) => e.kind_label(),
            },
        );
        result
    }

    fn url(&self, path: &str) -> Result<Url> {
        if !path.starts_with('/') || path.contains(['?', '#', ' ']) || path.contains("//") {
            return Err(Error::InvalidInput(format!(
                "not an API path: `{path}` (expected e.g. `/cgi/crm/v2/data/query`)"
            )));
        }
        let cached = self
            .urls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(path)
            .cloned();
        let mut url = if let Some(url) = cached {
            url
        } else {
            let url = self
                .base
                .join(path.trim_start_matches('/'))
                .map_err(|e| Error::InvalidInput(format!("path `{path}`: {e}")))?;
            let mut urls = self
                .urls
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // A caller naming paths without end (ids in paths) cannot grow it for ever.
            if urls.len() >= 64 {
                urls.clear();
            }
            urls.insert(path.to_owned(), url.clone());
            url
        };
        if self.third_trace_id {
            url.query_pairs_mut()
                .append_pair("thirdTraceId", &uuid_v4());
        }
        Ok(url)
    }

    /// One HTTP exchange.
    async fn send(&self, url: &Url, body: Bytes) -> Result<(u16, Bytes)> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = self
            .http
            .post(url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, self.user_agent.clone())
            .body(body)
            .send()
            .await
            .map_err(classify_send_error)?;
        self.server_clock.observe(response.headers());
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(classify_send_error)?;
        tracing::debug!(status, bytes = bytes.len(), "answer");
        Ok((status, bytes))
    }
}

fn classify_send_error(e: reqwest::Error) -> Error {
    match fxk3_kernel::send::classify(e) {
        SendFailure::Invalid(message) => Error::InvalidInput(message),
        SendFailure::Connect(source) => Error::Connect { source },
        SendFailure::NoAnswer { timed_out, source } => Error::NoAnswer { timed_out, source },
    }
}

/// A random (version 4) UUID for `thirdTraceId`.
fn uuid_v4() -> String {
    let hi = fxk3_kernel::retry::random_u64();
    let lo = fxk3_kernel::retry::random_u64();
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, uuid_v4());
    }

    #[test]
    fn identity_fields_come_first_and_win() {
        let token = CorpToken::new("TOK", "FSCID_1", chrono::Utc::now(), chrono::Utc::now());
        let mut body = Map::new();
        body.insert("corpAccessToken".into(), "forged".into());
        body.insert("data".into(), serde_json::json!({"a": 1}));
        let sent = serde_json::to_string(&Outgoing {
            token: Some(&token),
            operator: Some("FSUID_A"),
            body: &body,
        })
        .unwrap();
        assert_eq!(
            sent,
            r#"{"corpAccessToken":"TOK","corpId":"FSCID_1","currentOpenUserId":"FSUID_A","data":{"a":1}}"#
        );
    }
}
