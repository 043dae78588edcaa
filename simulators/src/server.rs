//! The HTTP server: routes, the accept loop, call counting and fault application.
//!
//! We drive hyper's HTTP/1.1 connections ourselves (instead of `axum::serve`) so that a
//! [`FaultKind::DropAfterWrite`] can close a connection after the write was applied without
//! writing a single byte of response, and so that hung requests end when the sandbox stops.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::header::DATE;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::Response;
use axum::routing::{any, get};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Config;
use crate::faults::{Api, FaultKind, FaultRegistry};
use crate::reply::Reply;
use crate::{control, fxiaoke, k3cloud};

/// State shared by every request and the in-process handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) faults: FaultRegistry,
    pub(crate) calls: Counters,
    pub(crate) k3: k3cloud::K3Sim,
    pub(crate) fx: fxiaoke::FxSim,
}

impl Shared {
    pub(crate) fn new(config: Config, clock: Clock) -> Self {
        Self {
            faults: FaultRegistry::new(config.seed),
            calls: Counters::default(),
            k3: k3cloud::K3Sim::new(&config.k3cloud, config.seed),
            fx: fxiaoke::FxSim::new(&config.fxiaoke, config.seed),
            config,
            clock,
        }
    }

    /// Back to the state of a fresh sandbox: base data only, no faults, no counters.
    pub(crate) fn reset(&self) {
        self.k3.reset(self.config.seed);
        self.fx.reset(self.config.seed, self.clock.now_ms());
        self.faults.clear(self.config.seed);
        self.calls.clear();
    }
}

/// Per-endpoint call counters, keyed `k3cloud:Save`, `fxiaoke:/cgi/crm/v2/data/query`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    map: Mutex<HashMap<String, u64>>,
}

impl Counters {
    pub(crate) fn hit(&self, api: Api, endpoint: &str) {
        let mut map = self.map.lock();
        let key = format!("{}:{endpoint}", api.as_str());
        *map.entry(key).or_insert(0) += 1;
    }

    pub(crate) fn get(&self, key: &str) -> u64 {
        let map = self.map.lock();
        if let Some(n) = map.get(key) {
            return *n;
        }
        // Method names are case-insensitive on the wire; so is the look-up.
        map.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, n)| *n)
            .sum()
    }

    pub(crate) fn all(&self) -> BTreeMap<String, u64> {
        self.map
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub(crate) fn clear(&self) {
        self.map.lock().clear();
    }
}

/// Lets a handler close its own connection without answering.
#[derive(Clone, Debug)]
pub(crate) struct ConnAbort(Arc<Notify>);

impl ConnAbort {
    fn abort(&self) {
        self.0.notify_one();
    }
}

/// Counts the call, applies the fault that fires (if any) and runs `work` (the simulator).
/// The answer's `Date` is the simulator's clock, as a real server's is its own: clients that
/// measure their windows by the server's time read it there.
pub(crate) async fn handle(
    shared: &Shared,
    api: Api,
    endpoint: &str,
    conn: Option<&ConnAbort>,
    work: impl FnOnce() -> Reply + Send + 'static,
) -> Response {
    let mut response = answer(shared, api, endpoint, conn, work).await;
    if let Some(date) = http_date(shared.clock.now_ms()) {
        response.headers_mut().insert(DATE, date);
    }
    response
}

/// `Thu, 03 Dec 2026 23:08:40 GMT`.
fn http_date(ms: i64) -> Option<HeaderValue> {
    let t = std::time::UNIX_EPOCH.checked_add(Duration::from_millis(u64::try_from(ms).ok()?))?;
    HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok()
}

async fn answer(
    shared: &Shared,
    api: Api,
    endpoint: &str,
    conn: Option<&ConnAbort>,
    work: impl FnOnce() -> Reply + Send + 'static,
) -> Response {
    shared.calls.hit(api, endpoint);
    let picked = shared.faults.pick(api, endpoint);
    // The round trip is slow first; whatever else fires happens after it, as it would behind a
    // slow network.
    if picked.delay_ms > 0 {
        tracing::debug!(
            api = api.as_str(),
            endpoint,
            ms = picked.delay_ms,
            "latency"
        );
        tokio::time::sleep(Duration::from_millis(picked.delay_ms)).await;
    }
    let per_row = picked.per_row_ms;
    let Some(kind) = picked.kind else {
        return worked(work, per_row).await.into_response();
    };
    tracing::debug!(api = api.as_str(), endpoint, ?kind, "fault fires");
    let reply = match kind {
        // `pick` folds every latency into `delay_ms`; kept for exhaustiveness.
        FaultKind::Latency { .. } => worked(work, per_row).await,
        FaultKind::ServerError { status } => error_page(api, status),
        FaultKind::Hang => return std::future::pending().await,
        FaultKind::DropAfterWrite => {
            let _applied = worked(work, per_row).await;
            if let Some(conn) = conn {
                conn.abort();
            }
            return std::future::pending().await;
        }
        FaultKind::MalformedJson => {
            let mut reply = worked(work, per_row).await;
            reply.corrupt();
            reply
        }
        FaultKind::TruncatedJson => {
            let mut reply = worked(work, per_row).await;
            reply.truncate();
            reply
        }
        FaultKind::AppliedLate { ms } => {
            let conn = conn.cloned();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let _applied = worked(work, per_row).await;
                if let Some(conn) = conn {
                    conn.abort();
                }
            });
            return std::future::pending().await;
        }
        FaultKind::ServerErrorAfterWrite { status } => {
            let _applied = worked(work, per_row).await;
            error_page(api, status)
        }
        FaultKind::WithoutKey { key } => {
            let mut reply = worked(work, per_row).await;
            reply.without_key(&key);
            reply
        }
        FaultKind::RowCap { rows } => {
            let mut reply = worked(work, per_row).await;
            reply.cap_rows(rows);
            reply
        }
        // The server drops its K3Cloud sessions; the request then meets the server's own rules
        // (k3cloud.md §3.1.2): a session cookie alone is refused with MsgCode 1, while signed
        // headers are checked again, a new session is issued and the request succeeds.
        FaultKind::SessionLoss if api == Api::K3cloud => {
            shared.k3.expire_sessions();
            worked(work, per_row).await
        }
        kind @ (FaultKind::SessionLoss | FaultKind::RateLimited | FaultKind::QuotaExceeded) => {
            match api {
                Api::K3cloud => k3cloud::K3Sim::fault_reply(endpoint, &kind),
                Api::Fxiaoke => shared.fx.fault_reply(&kind, &shared.config.fxiaoke),
            }
        }
    };
    reply.into_response()
}

/// Does the simulator's work, then waits the per-row cost of what it wrote: the server's
/// processing, before its answer leaves.
async fn worked(work: impl FnOnce() -> Reply, per_row_ms: u64) -> Reply {
    let reply = work();
    let cost = per_row_ms.saturating_mul(reply.rows);
    if cost > 0 {
        tokio::time::sleep(Duration::from_millis(cost)).await;
    }
    reply
}

/// The HTML error page of a 5xx fault.
fn error_page(api: Api, status: u16) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let html = match api {
        // The IIS/ASP.NET page of k3cloud-wire/36_ERR_http500_html.json.
        Api::K3cloud => "<!DOCTYPE html><html><head><title>运行时错误</title></head><body><h1>&quot;/k3cloud&quot;应用程序中的服务器错误。</h1></body></html>".to_string(),
        Api::Fxiaoke => format!(
            "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        ),
    };
    Reply::html(status, html)
}

/// Every route: `K3Cloud` under `/k3cloud/`, the control API under `/__sandbox/`, Fxiaoke at its
/// real paths (everything else, so that unknown paths get Fxiaoke's 10006 answer).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/k3cloud/{*rest}", any(k3cloud::http_handler))
        .nest("/__sandbox", control::router())
        // `nest` serves `/__sandbox` but not `/__sandbox/`, the URL the binary prints.
        .route("/__sandbox/", get(control::info))
        .fallback(fxiaoke::http_handler)
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared)
}

async fn index() -> &'static str {
    "fxiaoke-k3cloud sandbox: K3Cloud under /k3cloud/, Fxiaoke at /cgi/…, control API under /__sandbox/\n"
}

/// Accepts connections until `shutdown` turns true; every connection ends then too.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => Some(accepted),
            () = stopped(&mut shutdown) => None,
        };
        let stream = match accepted {
            None => break,
            Some(Ok((stream, _))) => stream,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let abort = ConnAbort(Arc::new(Notify::new()));
            let for_requests = abort.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(for_requests.clone());
                let mut router = router.clone();
                async move {
                    let response: Result<Response, Infallible> =
                        tower_service::Service::call(&mut router, request).await;
                    response
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = abort.0.notified() => {}
                () = stopped(&mut shutdown) => {}
            }
        });
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
