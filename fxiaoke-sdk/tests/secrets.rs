//! Secrets (app secret, permanent code, tokens) never reach logs, `Debug`, `Display` or
//! errors, even when the server echoes them; and every call leaves one span with its outcome.
//! (Its own test binary: `tracing` caches per-callsite interest process-wide, so the capturing
//! subscriber must be the only one.)

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use fxiaoke_sdk::{Error, RetryPolicy};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request};

const QUERY: &str = "/cgi/crm/v2/data/query";

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_and_tokens_never_reach_logs_debug_display_or_errors() {
    const SECRET: &str = "app-secret-7d1f0c9e";
    const CODE: &str = "permanent-code-55aa01";
    const T1: &str = "TOKEN-ONE-1f2e3d4c";
    const T2: &str = "TOKEN-TWO-9a8b7c6d";
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    let issued = AtomicUsize::new(0);
    Mock::given(path(TOKEN_PATH))
        .respond_with(move |_: &Request| {
            let t = if issued.fetch_add(1, Ordering::SeqCst) == 0 {
                T1
            } else {
                T2
            };
            token_answer(t, 7200)
        })
        .mount(&server)
        .await;
    // The server refuses the first token and echoes secrets back in its errors.
    Mock::given(path(QUERY))
        .respond_with(move |r: &Request| {
            let token = body_json(r)["corpAccessToken"].as_str().unwrap().to_owned();
            if token == T1 {
                json_response(TOKEN_INVALID)
            } else {
                json_value(
                    &json!({"errorCode": 30004, "errorMessage": format!("limit for {token}")}),
                )
            }
        })
        .mount(&server)
        .await;
    let client = fxiaoke_sdk::Client::builder()
        .base_url(server.uri())
        .app_id(APP_ID)
        .app_secret(SECRET)
        .permanent_code(CODE)
        .operator(OPERATOR)
        .retry_policy(RetryPolicy::never())
        .build()
        .unwrap();
    let err = client
        .query("AccountObj")
        .send::<Value>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited(_)), "{err:?}");

    // The token endpoint echoing the secret in a refusal.
    let refusing = MockServer::start().await;
    Mock::given(path(TOKEN_PATH))
        .respond_with(json_value(&json!({
            "errorCode": 10006,
            "errorMessage": format!("appSecret {SECRET} illegal for {CODE}"),
            "corpAccessToken": T1
        })))
        .mount(&refusing)
        .await;
    let refused_client = fxiaoke_sdk::Client::builder()
        .base_url(refusing.uri())
        .app_id(APP_ID)
        .app_secret(SECRET)
        .permanent_code(CODE)
        .build()
        .unwrap();
    let refused = refused_client.corp_id().await.unwrap_err();
    assert!(matches!(refused, Error::AuthFailed(_)));

    let shown = format!(
        "{err} {err:?} {refused} {refused:?} {client:?} {refused_client:?} {:?} {}",
        client.token_key(),
        client.token_key()
    );
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for secret in [SECRET, CODE, T1, T2] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
        assert!(!logged.contains(secret), "{secret} logged in {logged}");
    }
    // The logs do say what happened: one span per call, with its outcome.
    assert!(logged.contains("fxiaoke.call"), "{logged}");
    assert!(
        logged.contains("outcome=\"rate_limited\"") || logged.contains("outcome=rate_limited"),
        "{logged}"
    );
    assert!(logged.contains("error_code=30004"), "{logged}");
    assert!(
        logged.contains("20016"),
        "the refused token is logged as such: {logged}"
    );
}
