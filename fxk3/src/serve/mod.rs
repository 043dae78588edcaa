//! `fxk3 serve`: the operator's web page, its JSON endpoints and `/metrics`.
//!
//! On loopback, requests must name a loopback host (`Host: 127.0.0.1:9184`, `localhost:…`):
//! a page of another site that rebinds its own name to 127.0.0.1 cannot read this one.
//! Reads need nothing more; anything that changes state (retry, drop) needs the token of
//! `[serve] token_env` as `Authorization: Bearer …` — a header, so that another site's page
//! cannot make a browser send it. Without a token configured the page only shows. No secret
//! is ever in an answer: the state file holds none, and errors come from the SDKs, which
//! redact theirs.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::metrics::Metrics;
use crate::{App, AppError, FlowOutcome};

const PAGE: &str = include_str!("page.html");

struct Shared {
    app: Arc<App>,
    metrics: Metrics,
    changed: Arc<tokio::sync::Notify>,
}

/// The page, its endpoints and `/metrics` for `app`; `changed` is notified after the page
/// changed the state (`watch` then checks its alerts at once, not after its next run).
/// `loopback_only`: refuse requests that do not name a loopback host or one of `[serve]
/// hosts` (see the module's documentation); for a server bound to loopback.
pub fn router(
    app: Arc<App>,
    metrics: Metrics,
    changed: Arc<tokio::sync::Notify>,
    loopback_only: bool,
) -> Router {
    let hosts = app.config().serve.hosts.clone();
    let router = Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics_text))
        .route("/api/status", get(status))
        .route("/api/flows/{flow}/dead-letters", get(dead_letters))
        .route("/api/flows/{flow}/retry", post(retry))
        .route("/api/flows/{flow}/drop", post(drop_letters))
        .with_state(Arc::new(Shared {
            app,
            metrics,
            changed,
        }));
    if loopback_only {
        router.layer(axum::middleware::from_fn_with_state(
            Arc::new(hosts),
            loopback_host,
        ))
    } else {
        router
    }
}

/// Lets through requests whose `Host` is a loopback name or address, or one of `hosts`.
async fn loopback_host(
    State(hosts): State<Arc<Vec<String>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if host_allowed(host, &hosts) {
        next.run(request).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            Json(
                json!({"error": "this page answers only to a loopback host name (127.0.0.1, \
                                  localhost) or one of [serve] hosts"}),
            ),
        )
            .into_response()
    }
}

/// `host` (a `Host` header: `name:port`, `[v6]:port`, or without the port) names a loopback
/// address, `localhost`, or one of `hosts`.
fn host_allowed(host: &str, hosts: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn only_loopback_names_and_the_configured_hosts_are_let_through() {
        let hosts = ["fxk3.corp.example".to_owned()];
        for (host, allowed) in [
            ("127.0.0.1:9184", true),
            ("127.0.0.1", true),
            ("127.8.9.10:80", true),
            ("localhost:9184", true),
            ("LOCALHOST", true),
            ("localhost.:9184", true),
            ("[::1]:9184", true),
            ("[::1]", true),
            ("fxk3.corp.example", true),
            ("FXK3.corp.example:443", true),
            ("", false),
            ("attacker.example:9184", false),
            ("127.0.0.1.attacker.example", false),
            ("localhost.attacker.example", false),
            ("[::2]:9184", false),
            ("10.0.0.1:9184", false),
            ("corp.example", false),
        ] {
            assert_eq!(host_allowed(host, &hosts), allowed, "Host: {host}");
        }
    }
}

/// Serves [`router`] on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    metrics: Metrics,
    changed: Arc<tokio::sync::Notify>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    axum::serve(listener, router(app, metrics, changed, loopback))
        .with_graceful_shutdown(shutdown)
        .await
}

type AppState = State<Arc<Shared>>;

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page's own script and style only; nothing from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 frame-ancestors 'none'",
            ),
        ],
        Html(PAGE),
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn metrics_text(State(s): AppState) -> Response {
    // `serve` alone has no runs to update the gauges after: read the state now.
    match s.app.health(&[]).await {
        Ok(health) => {
            s.metrics
                .set_health(&health, now(), s.app.config().alerts.stall_after());
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                s.metrics.encode(),
            )
                .into_response()
        }
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

async fn status(State(s): AppState) -> Response {
    let at = now();
    let health = match s.app.health(&[]).await {
        Ok(h) => h,
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let stall = s.app.config().alerts.stall_after();
    let problems: Vec<_> = health.iter().flat_map(|h| h.problems(at, stall)).collect();
    let offset = s
        .app
        .config()
        .time_zone()
        .map_or(8 * 3600, |z| z.local_minus_utc());
    Json(json!({
        "now": at,
        "utc_offset_seconds": offset,
        "language": match s.app.config().alerts.language {
            crate::alerts::Lang::En => "en",
            _ => "zh",
        },
        "can_change": s.app.serve_token().is_some(),
        "flows": health,
        "problems": problems,
    }))
    .into_response()
}

async fn dead_letters(State(s): AppState, Path(flow): Path<String>) -> Response {
    if let Err(e) = s.app.select(std::slice::from_ref(&flow)) {
        return failure(StatusCode::NOT_FOUND, &e);
    }
    let letters = match s
        .app
        .store()
        .dead_letters(&flow, None, crate::health::LETTERS_READ)
        .await
    {
        Ok(l) => l,
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &e.into()),
    };
    let list: Vec<Value> = letters
        .iter()
        .map(|d| {
            json!({
                "key": d.source_key,
                "stage": d.stage,
                "reason": d.reason,
                "attempts": d.attempts,
                "retryable": d.retryable,
                "unknown_outcome": d.is_unknown_outcome(),
                "first_at": d.first_at,
                "last_at": d.last_at,
                "payload": d.payload,
            })
        })
        .collect();
    Json(list).into_response()
}

async fn retry(State(s): AppState, Path(flow): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = authorize(&s.app, &headers) {
        return refused;
    }
    let started = Instant::now();
    // On its own task: a browser that goes away must not cancel a run halfway (its lease
    // would stay taken until it expires, and the run would not be on record).
    let app = s.app.clone();
    let name = flow.clone();
    let result = match tokio::spawn(async move { app.retry_dead_letters(&name, None).await }).await
    {
        Ok(result) => result,
        Err(e) => return stopped(&e),
    };
    match result {
        Ok(report) => {
            let mut outcome = FlowOutcome::new(&flow, report, started.elapsed());
            outcome.api_calls = s.app.api_calls(&flow);
            tracing::info!(%flow, "dead letters retried from the web page");
            s.changed.notify_one();
            Json(outcome).into_response()
        }
        Err(e @ AppError::UnknownFlow(_)) => failure(StatusCode::NOT_FOUND, &e),
        Err(e @ AppError::Sync(sync_core::Error::FlowLocked { .. })) => {
            failure(StatusCode::CONFLICT, &e)
        }
        Err(e) => failure(StatusCode::BAD_GATEWAY, &e),
    }
}

#[derive(Deserialize)]
struct DropBody {
    keys: Vec<String>,
}

async fn drop_letters(
    State(s): AppState,
    Path(flow): Path<String>,
    headers: HeaderMap,
    body: Result<Json<DropBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(refused) = authorize(&s.app, &headers) {
        return refused;
    }
    let Ok(Json(body)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "send {\"keys\": [\"…\"]}"})),
        )
            .into_response();
    };
    let app = s.app.clone();
    let (name, keys) = (flow.clone(), body.keys.clone());
    let result = match tokio::spawn(async move { app.drop_dead_letters(&name, &keys).await }).await
    {
        Ok(result) => result,
        Err(e) => return stopped(&e),
    };
    match result {
        Ok(dropped) => {
            tracing::info!(%flow, dropped = dropped.len(), "dead letters dropped from the web page");
            s.changed.notify_one();
            let missing: Vec<&String> = body.keys.iter().filter(|k| !dropped.contains(k)).collect();
            Json(json!({"flow": flow, "dropped": dropped, "not_found": missing})).into_response()
        }
        Err(e @ AppError::UnknownFlow(_)) => failure(StatusCode::NOT_FOUND, &e),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// `None` when the request carries the configured token; else the refusal.
fn authorize(app: &App, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = app.serve_token() else {
        return Some(
            (
                StatusCode::FORBIDDEN,
                Json(json!({"error": format!(
                    "changes are off: set the token in the environment variable {} of the \
                     process serving this page",
                    app.config().serve.token_env
                )})),
            )
                .into_response(),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if same(given.as_bytes(), token.expose_secret().as_bytes()) {
        None
    } else {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "a wrong or missing token"})),
            )
                .into_response(),
        )
    }
}

/// Compares in a time that does not depend on where the two differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The task doing a change ended without an answer (it panicked).
fn stopped(e: &tokio::task::JoinError) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": format!("stopped before it answered: {e}")})),
    )
        .into_response()
}

fn failure(status: StatusCode, e: &AppError) -> Response {
    (status, Json(json!({"error": e.to_string()}))).into_response()
}
