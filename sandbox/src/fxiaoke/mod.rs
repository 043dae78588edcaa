//! The Fxiaoke `OpenAPI` simulator (stub while the `K3Cloud` side lands).
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;

use crate::config::FxiaokeConfig;
use crate::faults::FaultKind;
use crate::reply::Reply;
use crate::server::Shared;

pub(crate) const ADMIN_OPEN_USER_ID: &str = "FSUID_0123456789ABCDEF0123456789ABCDEF";
pub(crate) const ADMIN_MOBILE: &str = "13800000000";

#[derive(Debug)]
pub(crate) struct FxSim;

#[allow(clippy::unused_self)] // stub, replaced by the Fxiaoke simulator
impl FxSim {
    pub(crate) fn new(_c: &FxiaokeConfig, _seed: u64) -> Self {
        Self
    }
    pub(crate) fn reset(&self, _seed: u64, _now: i64) {}
    pub(crate) fn fault_reply(&self, _k: &FaultKind, _c: &FxiaokeConfig) -> Reply {
        Reply::json(&Value::Null)
    }
    pub(crate) fn records(&self, _a: &str) -> Vec<Value> {
        Vec::new()
    }
    pub(crate) fn record(&self, _a: &str, _id: &str) -> Option<Value> {
        None
    }
    pub(crate) fn insert(&self, _a: &str, _r: Value, _now: i64) -> Result<String, String> {
        Err("todo".into())
    }
    pub(crate) fn messages(&self) -> Vec<Value> {
        Vec::new()
    }
    pub(crate) fn pin_token(&self, _t: &str, _c: &FxiaokeConfig, _now: i64) {}
    pub(crate) fn invalidate_tokens(&self) {}
}

pub(crate) async fn http_handler(
    State(_shared): State<Arc<Shared>>,
    _request: Request,
) -> Response {
    Reply::json(&Value::Null).into_response()
}
