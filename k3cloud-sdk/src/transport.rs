//! The only code that sends HTTP: builds the request, attaches auth, rate-limits, classifies the
//! answer, re-logs in once when a session is lost, retries what may be retried, and opens one
//! `tracing` span per call.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT_CHARSET, CONTENT_TYPE, COOKIE, HeaderValue, USER_AGENT};
use serde_json::Value;
use tracing::Instrument;
use url::Url;

use crate::auth::{
    Auth, HeaderSigner, Identity, LoginInfo, LoginOutcome, SessionManager, login_body, parse_login,
};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::limit::RateLimiter;
use crate::response::{self, Answer};
use crate::retry::{Idempotency, RetryPolicy};
use crate::service;
use fxk3_kernel::retry::Attempts;
use fxk3_kernel::send::SendFailure;

/// Everything needed to send a call; shared by all clones of a client.
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Url,
    pub(crate) identity: Identity,
    pub(crate) auth: Auth,
    /// Set with signed-header auth.
    pub(crate) signer: Option<HeaderSigner>,
    pub(crate) sessions: SessionManager,
    pub(crate) retry: RetryPolicy,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) timeout: Duration,
    pub(crate) user_agent: HeaderValue,
    /// HTTP requests sent, logins and retries included.
    pub(crate) requests: std::sync::atomic::AtomicU64,
    /// The server's clock, from the `Date` of its answers.
    pub(crate) server_clock: fxk3_kernel::server_clock::ServerClock,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base.as_str())
            .field("identity", &self.identity)
            .field("auth", &self.auth)
            .field("sessions", &self.sessions)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One call: the service, its JSON body, and whether it may be resent.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    /// Full service name without `.common.kdsvc`, e.g.
    /// `Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save`.
    pub(crate) service: &'a str,
    pub(crate) body: Value,
    pub(crate) idempotency: Idempotency,
    /// For the tracing span only.
    pub(crate) form_id: Option<&'a str>,
}

impl Transport {
    /// Sends a call and returns the checked answer.
    pub(crate) async fn call(&self, call: Call<'_>) -> Result<Answer> {
        let operation = service::method_of(call.service);
        let span = tracing::info_span!(
            "k3cloud.call",
            operation,
            form_id = call.form_id.unwrap_or(""),
            attempts = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
            error_code = tracing::field::Empty,
        );
        let started = tokio::time::Instant::now();
        let result = self
            .call_in_span(&call, operation, &span)
            .instrument(span.clone())
            .await;
        span.record("duration_ms", started.elapsed().as_millis());
        span.record(
            "outcome",
            match &result {
                Ok(_) => "ok",
                Err(e) => e.kind_label(),
            },
        );
        // The vendor's code, for metrics by code (`fxk3`'s call counter reads the span).
        if let Some(code) = result.as_ref().err().and_then(Error::msg_code) {
            span.record("error_code", code);
        }
        result
    }

    async fn call_in_span(
        &self,
        call: &Call<'_>,
        operation: &str,
        span: &tracing::Span,
    ) -> Result<Answer> {
        let url = self.url(call.service)?;
        let body = Bytes::from(
            serde_json::to_vec(&call.body).map_err(|e| Error::InvalidInput(e.to_string()))?,
        );
        let _permit = self.limiter.acquire(call.service).await;
        let mut attempts = Attempts::new(&self.retry, call.idempotency);
        let mut relogged_in = false;
        loop {
            span.record("attempts", attempts.start());
            let generation = self.ensure_session().await?;
            let error = match self.send(&url, body.clone()).await {
                Ok((status, bytes)) => match response::check(status, bytes) {
                    Ok(answer) => return Ok(answer),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if let Error::Business(b) = &error
                && b.is_session_lost()
            {
                let message = b.message().to_owned();
                if !self.auth.uses_session() {
                    // With signed headers MsgCode 1 means the credentials were refused.
                    return Err(Error::AuthFailed {
                        message,
                        login_result_type: None,
                    });
                }
                if relogged_in {
                    return Err(Error::SessionExpired { message });
                }
                // The server refused the call without acting on it, so even a write is safe
                // to send once more on a fresh session.
                tracing::info!("K3Cloud session lost; logging in again");
                self.sessions
                    .replace(generation, || self.login_exchange())
                    .await?;
                relogged_in = true;
                attempts.refund();
                continue;
            }
            attempts.back_off(error, operation).await?;
        }
    }

    fn url(&self, service: &str) -> Result<Url> {
        if service.trim().is_empty()
            || service.ends_with('.')
            || service.contains(['/', '?', '#', ' '])
        {
            return Err(Error::InvalidInput(format!(
                "not a K3Cloud service name: `{service}`"
            )));
        }
        self.base
            .join(&format!("{service}{}", service::SUFFIX))
            .map_err(|e| Error::InvalidInput(format!("service `{service}`: {e}")))
    }

    /// One HTTP exchange. Keeps the response's cookies.
    async fn send(&self, url: &Url, body: Bytes) -> Result<(u16, Bytes)> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut request = self
            .http
            .post(url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT_CHARSET, "utf-8")
            .header(USER_AGENT, self.user_agent.clone());
        if let Some(signer) = &self.signer {
            for (name, value) in signer.headers(url.path(), self.clock.unix_seconds()) {
                request = request.header(name, value);
            }
        }
        let session = self.sessions.jar().headers();
        if let Some(id) = session.session_id {
            request = request.header(crate::auth::SESSION_COOKIE, id);
        }
        if let Some(cookie) = session.cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(classify_send_error)?;
        self.sessions.jar().store_cookies(response.headers());
        self.server_clock.observe(response.headers());
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(classify_send_error)?;
        tracing::debug!(status, bytes = bytes.len(), "answer");
        Ok((status, bytes))
    }

    /// Logs in if the auth mode needs a session and there is none; returns the session's
    /// generation (0 with signed headers).
    async fn ensure_session(&self) -> Result<u64> {
        if !self.auth.uses_session() {
            return Ok(0);
        }
        self.sessions.get(|| self.login_exchange()).await
    }

    /// Logs in now, replacing any session.
    pub(crate) async fn login_now(&self) -> Result<LoginInfo> {
        self.sessions.login_now(|| self.login_exchange()).await
    }

    /// One login call of the auth mode, retried as a read, and its answer read.
    async fn login_exchange(&self) -> Result<LoginOutcome> {
        let id = &self.identity;
        let Some((method, body)) = login_body(
            &self.auth.kind,
            &id.acct_id,
            &id.user,
            id.lcid,
            self.clock.unix_seconds(),
        ) else {
            return Err(Error::InvalidInput(
                "signed-header auth has no login call".into(),
            ));
        };
        let url = self.url(&format!("{}.{method}", service::AUTH_SERVICE))?;
        let body =
            Bytes::from(serde_json::to_vec(&body).map_err(|e| Error::InvalidInput(e.to_string()))?);
        let span = tracing::info_span!("k3cloud.login", method);
        let mut attempts = Attempts::new(&self.retry, Idempotency::Idempotent);
        let answer = loop {
            attempts.start();
            let result = self
                .send(&url, body.clone())
                .instrument(span.clone())
                .await
                .and_then(|(status, bytes)| response::check(status, bytes))
                .map_err(hide_login_answer);
            match result {
                Ok(answer) => break answer,
                Err(e) => attempts.back_off(e, method).await?,
            }
        };
        parse_login(&answer.into_value()?)
    }
}

fn classify_send_error(e: reqwest::Error) -> Error {
    match fxk3_kernel::send::classify(e) {
        SendFailure::Invalid(message) => Error::InvalidInput(message),
        SendFailure::Connect(source) => Error::Connect { source },
        SendFailure::NoAnswer { timed_out, source } => Error::NoAnswer { timed_out, source },
    }
}

/// A login answer the client could not read is not quoted: truncated or malformed, it may
/// still hold `KDSVCSessionId` (or echo the password), and nothing can be taken out of what
/// does not parse.
fn hide_login_answer(e: Error) -> Error {
    let hidden = |snippet: &str| format!("[login answer of {} bytes not shown]", snippet.len());
    match e {
        Error::Http { status, snippet } => Error::Http {
            status,
            snippet: hidden(&snippet),
        },
        Error::NotJson { status, snippet } => Error::NotJson {
            status,
            snippet: hidden(&snippet),
        },
        Error::Decode { path, snippet, .. } => Error::Decode {
            message: format!("unexpected value at `{path}` of the login answer"),
            snippet: hidden(&snippet),
            path,
        },
        Error::ServerException { message, raw } => Error::ServerException {
            message: hidden(&message),
            raw: hidden(&raw),
        },
        other => other,
    }
}
