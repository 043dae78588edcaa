//! The HTTP control API under `/__sandbox/` (the same operations as the Rust handle).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::{Fault, FaultId};
use crate::seed::{self, GenerateSpec};
use crate::server::Shared;

type S = State<Arc<Shared>>;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(info))
        .route("/reset", post(reset))
        .route("/seed", post(seed))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/calls", get(calls).delete(reset_calls))
        .route("/clock", get(clock).post(set_clock))
        .route("/k3cloud/forms/{form}", get(k3_records).post(k3_insert))
        .route("/k3cloud/forms/{form}/{key}", get(k3_record))
        .route("/k3cloud/sessions/expire", post(k3_expire))
        .route("/fxiaoke/objects", get(fx_objects))
        .route("/fxiaoke/objects/{api}", get(fx_records).post(fx_insert))
        .route(
            "/fxiaoke/objects/{api}/{id}",
            get(fx_record).patch(fx_update),
        )
        .route("/fxiaoke/describe", post(fx_define))
        .route("/fxiaoke/describe/{api}", get(fx_describe))
        .route("/fxiaoke/users", get(fx_users))
        .route("/fxiaoke/limits", get(fx_limits).post(fx_set_limits))
        .route("/fxiaoke/messages", get(fx_messages))
        .route("/fxiaoke/tokens", post(fx_pin_token))
        .route("/fxiaoke/tokens/invalidate", post(fx_invalidate))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message.into()})),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "not found"})),
    )
        .into_response()
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Box<Response>> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| Box::new(bad_request(format!("invalid JSON: {e}"))))
}

pub(crate) async fn info(State(shared): S) -> Response {
    let k3 = &shared.config.k3cloud;
    let fx = &shared.config.fxiaoke;
    axum::Json(json!({
        "k3cloud": {
            "path": "/k3cloud/",
            "acct_id": k3.acct_id,
            "user_name": k3.user_name,
            "password": k3.password,
            "app_id": k3.app_id,
            "app_secret": k3.app_secret,
            "lcid": 2052,
        },
        "fxiaoke": {
            "apps": fx.apps.iter().map(|a| json!({
                "app_id": a.app_id,
                "app_secret": a.app_secret,
                "permanent_code": a.permanent_code,
                "corp_id": a.corp_id,
                "ea": a.ea,
            })).collect::<Vec<_>>(),
            "admin_open_user_id": crate::fxiaoke::ADMIN_OPEN_USER_ID,
            "admin_mobile": crate::fxiaoke::ADMIN_MOBILE,
        },
        "note": "demo credentials of a local simulator; never real ones",
    }))
    .into_response()
}

async fn reset(State(shared): S) -> Response {
    shared.reset();
    axum::Json(json!({"ok": true})).into_response()
}

#[derive(Deserialize)]
struct SeedBody {
    #[serde(default)]
    demo: bool,
    #[serde(default)]
    generate: Option<GenerateSpec>,
}

async fn seed(State(shared): S, body: Bytes) -> Response {
    let body: SeedBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if !body.demo && body.generate.is_none() {
        return bad_request("say {\"demo\": true} and/or {\"generate\": {…}}");
    }
    if body.demo {
        seed::demo(&shared);
    }
    if let Some(spec) = &body.generate {
        seed::generate(&shared, spec);
    }
    axum::Json(json!({"ok": true})).into_response()
}

async fn list_faults(State(shared): S) -> Response {
    let faults: Vec<Value> = shared
        .faults
        .list()
        .into_iter()
        .map(|(id, fault)| json!({"id": id.0, "fault": fault}))
        .collect();
    axum::Json(faults).into_response()
}

async fn add_fault(State(shared): S, body: Bytes) -> Response {
    match parse::<Fault>(&body) {
        Ok(fault) => axum::Json(json!({"id": shared.faults.add(fault).0})).into_response(),
        Err(r) => *r,
    }
}

async fn clear_faults(State(shared): S) -> Response {
    shared.faults.clear(shared.config.seed);
    axum::Json(json!({"ok": true})).into_response()
}

async fn remove_fault(State(shared): S, Path(id): Path<u64>) -> Response {
    if shared.faults.remove(FaultId(id)) {
        axum::Json(json!({"ok": true})).into_response()
    } else {
        not_found()
    }
}

#[derive(Deserialize)]
struct CallsQuery {
    endpoint: Option<String>,
}

async fn calls(State(shared): S, Query(q): Query<CallsQuery>) -> Response {
    match q.endpoint {
        Some(endpoint) => {
            let n = shared.calls.get(&endpoint);
            axum::Json(json!({"endpoint": endpoint, "calls": n})).into_response()
        }
        None => axum::Json(shared.calls.all()).into_response(),
    }
}

async fn reset_calls(State(shared): S) -> Response {
    shared.calls.clear();
    axum::Json(json!({"ok": true})).into_response()
}

async fn clock(State(shared): S) -> Response {
    axum::Json(json!({
        "now_ms": shared.clock.now_ms(),
        "frozen": shared.clock.is_frozen(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct ClockBody {
    set_ms: Option<i64>,
    set_secs: Option<i64>,
    advance_ms: Option<u64>,
    #[serde(default)]
    unfreeze: bool,
}

async fn set_clock(State(shared): S, body: Bytes) -> Response {
    let body: ClockBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if let Some(ms) = body.set_ms {
        shared.clock.set_ms(ms);
    }
    if let Some(secs) = body.set_secs {
        shared.clock.set_ms(secs.saturating_mul(1000));
    }
    if let Some(ms) = body.advance_ms {
        shared.clock.advance(Duration::from_millis(ms));
    }
    if body.unfreeze {
        shared.clock.unfreeze();
    }
    clock(State(shared)).await
}

async fn k3_records(State(shared): S, Path(form): Path<String>) -> Response {
    axum::Json(shared.k3.records(&form)).into_response()
}

async fn k3_record(State(shared): S, Path((form, key)): Path<(String, String)>) -> Response {
    match shared.k3.record(&form, &key) {
        Some(record) => axum::Json(record).into_response(),
        None => not_found(),
    }
}

async fn k3_insert(State(shared): S, Path(form): Path<String>, body: Bytes) -> Response {
    let model: Value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match shared.k3.insert(&form, model, shared.clock.now_ms()) {
        Ok((id, number)) => axum::Json(json!({"Id": id, "Number": number})).into_response(),
        Err(e) => bad_request(e),
    }
}

async fn k3_expire(State(shared): S) -> Response {
    shared.k3.expire_sessions();
    axum::Json(json!({"ok": true})).into_response()
}

async fn fx_records(State(shared): S, Path(api): Path<String>) -> Response {
    axum::Json(shared.fx.records(&api)).into_response()
}

async fn fx_record(State(shared): S, Path((api, id)): Path<(String, String)>) -> Response {
    match shared.fx.record(&api, &id) {
        Some(record) => axum::Json(record).into_response(),
        None => not_found(),
    }
}

async fn fx_insert(State(shared): S, Path(api): Path<String>, body: Bytes) -> Response {
    let record: Value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match shared.fx.insert(&api, record, shared.clock.now_ms()) {
        Ok(id) => axum::Json(json!({"_id": id})).into_response(),
        Err(e) => bad_request(e),
    }
}

async fn fx_messages(State(shared): S) -> Response {
    axum::Json(shared.fx.messages()).into_response()
}

#[derive(Deserialize)]
struct PinBody {
    token: String,
}

async fn fx_pin_token(State(shared): S, body: Bytes) -> Response {
    match parse::<PinBody>(&body) {
        Ok(b) => {
            shared
                .fx
                .pin_token(&b.token, &shared.config.fxiaoke, shared.clock.now_ms());
            axum::Json(json!({"ok": true})).into_response()
        }
        Err(r) => *r,
    }
}

async fn fx_invalidate(State(shared): S) -> Response {
    shared.fx.invalidate_tokens();
    axum::Json(json!({"ok": true})).into_response()
}

async fn fx_objects(State(shared): S) -> Response {
    let counts: serde_json::Map<String, Value> = shared
        .fx
        .objects()
        .into_iter()
        .map(|(k, n)| (k, json!(n)))
        .collect();
    axum::Json(counts).into_response()
}

async fn fx_update(
    State(shared): S,
    Path((api, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let patch: Value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match shared.fx.update(&api, &id, patch, shared.clock.now_ms()) {
        Ok(()) => match shared.fx.record(&api, &id) {
            Some(record) => axum::Json(record).into_response(),
            None => not_found(),
        },
        Err(e) => bad_request(e),
    }
}

async fn fx_describe(State(shared): S, Path(api): Path<String>) -> Response {
    match shared.fx.describe(&api) {
        Some(d) => axum::Json(d).into_response(),
        None => not_found(),
    }
}

async fn fx_define(State(shared): S, body: Bytes) -> Response {
    let describe: Value = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match shared.fx.define(&describe) {
        Ok(()) => axum::Json(json!({"ok": true})).into_response(),
        Err(e) => bad_request(e),
    }
}

async fn fx_users(State(shared): S) -> Response {
    axum::Json(shared.fx.users()).into_response()
}

async fn fx_limits(State(shared): S) -> Response {
    let l = shared.fx.limits();
    axum::Json(json!({
        "rate_limit": l.rate_limit.map(|(calls, window)| json!({
            "calls": calls,
            "window_ms": u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        })),
        "daily_quota": l.daily_quota,
        "openapi_purchased": l.openapi_purchased,
    }))
    .into_response()
}

/// `{"rate_limit": {"calls": 100, "window_ms": 20000} | null, "daily_quota": N | null,
/// "openapi_purchased": bool}`; absent keys stay as they are.
async fn fx_set_limits(State(shared): S, body: Bytes) -> Response {
    let body: serde_json::Map<String, Value> = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let rate = match body.get("rate_limit") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match (
            v.get("calls").and_then(Value::as_u64),
            v.get("window_ms").and_then(Value::as_u64),
        ) {
            (Some(calls), Some(ms)) => Some(Some((
                usize::try_from(calls).unwrap_or(usize::MAX),
                Duration::from_millis(ms),
            ))),
            _ => return bad_request("rate_limit needs calls and window_ms"),
        },
    };
    let quota = match body.get("daily_quota") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match v.as_u64() {
            Some(n) => Some(Some(n)),
            None => return bad_request("daily_quota must be a number or null"),
        },
    };
    let purchased = match body.get("openapi_purchased") {
        None => None,
        Some(v) => match v.as_bool() {
            Some(b) => Some(b),
            None => return bad_request("openapi_purchased must be a boolean"),
        },
    };
    shared.fx.set_limits(|l| {
        if let Some(r) = rate {
            l.rate_limit = r;
        }
        if let Some(q) = quota {
            l.daily_quota = q;
        }
        if let Some(p) = purchased {
            l.openapi_purchased = p;
        }
    });
    fx_limits(State(shared)).await
}
