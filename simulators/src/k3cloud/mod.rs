//! The `K3Cloud` `WebAPI` simulator (k3cloud.md, k3cloud-wire/).

mod auth;
mod envelope;
mod forms;
#[cfg(test)]
mod fuzz;
mod login;
mod operations;
mod query;
mod save;
mod store;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use std::sync::atomic::AtomicI64;

use parking_lot::RwLock;
use serde_json::{Value, json};

use self::envelope::{Envelope, Failure, session_lost};
use self::store::{K3Data, SaveOpts};
use self::wire::{Params, Service, get_ci};
use crate::config::K3CloudConfig;
use crate::faults::{Api, FaultKind};
use crate::reply::Reply;
use crate::rng::SplitMix64;
use crate::server::{self, ConnAbort, Shared};

use self::forms::{CURRENCY, ORG};

#[derive(Debug)]
struct Session {
    /// Last use; atomic so that a request with a live session needs only the shared lock.
    last_ms: AtomicI64,
}

#[derive(Debug)]
struct K3State {
    data: K3Data,
    sessions: HashMap<String, Session>,
    rng: SplitMix64,
    tasks: HashMap<String, Value>,
    /// Every session id and `ASP.NET_SessionId` issued (the first 100,000), for tests that
    /// look for them in output.
    issued: Vec<String>,
}

/// The simulator: all `K3Cloud` state behind one read-write lock. Queries and views of
/// requests with a live session share it; writes, logins and new sessions take it alone.
#[derive(Debug)]
pub(crate) struct K3Sim {
    config: K3CloudConfig,
    state: RwLock<K3State>,
    order_cache: query::OrderCache,
}

/// Base data every fresh sandbox has: organisations and the preset currencies.
fn base_data(data: &mut K3Data) {
    let opts = SaveOpts {
        validate: false,
        is_delete_entry: true,
        ..SaveOpts::default()
    };
    let mut add = |form: &str, model: Value| {
        if let Value::Object(m) = model {
            let _ = data.save(form, &m, &opts, 1_600_000_000_000);
        }
    };
    for (number, name) in [
        ("100", "总公司"),
        ("101", "华东销售公司"),
        ("102", "华南销售公司"),
        // The sales company an integrator's customer package creates customers in.
        ("603", "销售公司"),
    ] {
        add(ORG, json!({"FNumber": number, "FName": name}));
    }
    for (number, name, code) in [
        ("PRE001", "人民币", "CNY"),
        ("PRE002", "港币", "HKD"),
        ("PRE003", "欧元", "EUR"),
        ("PRE007", "美元", "USD"),
    ] {
        add(
            CURRENCY,
            json!({"FNumber": number, "FName": name, "FCODE": code, "FPRICEDIGITS": 6, "FAMOUNTDIGITS": 2}),
        );
    }
    // Preset base data is audited.
    for form in [ORG, CURRENCY] {
        if let Some(table) = data.table_mut(form) {
            for bill in table.bills.values_mut() {
                bill.status = 'C';
            }
        }
    }
}

impl K3Sim {
    pub(crate) fn new(config: &K3CloudConfig, seed: u64) -> Self {
        let mut data = K3Data::new();
        base_data(&mut data);
        Self {
            config: config.clone(),
            order_cache: query::OrderCache::default(),
            state: RwLock::new(K3State {
                data,
                sessions: HashMap::new(),
                rng: SplitMix64::new(seed ^ 0x4B33),
                tasks: HashMap::new(),
                issued: Vec::new(),
            }),
        }
    }

    pub(crate) fn reset(&self, seed: u64) {
        let mut data = K3Data::new();
        base_data(&mut data);
        *self.state.write() = K3State {
            data,
            sessions: HashMap::new(),
            rng: SplitMix64::new(seed ^ 0x4B33),
            tasks: HashMap::new(),
            issued: Vec::new(),
        };
    }

    pub(crate) fn saves_by_number(&self, form: &str) -> BTreeMap<String, u64> {
        let st = self.state.read();
        let Some(id) = st.data.form_id(form) else {
            return BTreeMap::new();
        };
        st.data
            .saves
            .iter()
            .filter(|((f, _), _)| *f == id)
            .map(|((_, n), c)| (n.clone(), *c))
            .collect()
    }

    pub(crate) fn issued_sessions(&self) -> Vec<String> {
        self.state.read().issued.clone()
    }

    pub(crate) fn expire_sessions(&self) {
        self.state.write().sessions.clear();
    }

    pub(crate) fn records(&self, form: &str) -> Vec<Value> {
        let st = self.state.read();
        let Some(table) = st.data.table(form) else {
            return Vec::new();
        };
        let id = table.def.id;
        table.bills.values().map(|b| st.data.view(id, b)).collect()
    }

    pub(crate) fn record(&self, form: &str, key: &str) -> Option<Value> {
        let st = self.state.read();
        let table = st.data.table(form)?;
        let bill = table
            .by_number(key)
            .or_else(|| key.parse::<i64>().ok().and_then(|id| table.bills.get(&id)))?;
        Some(st.data.view(table.def.id, bill))
    }

    /// A direct save (the Rust and control APIs), validated like Save; ids in the packet kept,
    /// and a `FDocumentStatus` in the packet (Z/A/B/C/D) sets the status.
    pub(crate) fn insert(
        &self,
        form: &str,
        model: Value,
        now_ms: i64,
    ) -> Result<(i64, String), String> {
        let Value::Object(model) = model else {
            return Err("the model must be a JSON object".into());
        };
        let status = get_ci(&model, "FDocumentStatus")
            .and_then(Value::as_str)
            .and_then(|s| s.chars().next())
            .filter(|c| "ZABCD".contains(*c));
        let opts = SaveOpts {
            validate: true,
            is_delete_entry: true,
            keep_ids: true,
            ..SaveOpts::default()
        };
        let saved = self
            .state
            .write()
            .data
            .save(form, &model, &opts, now_ms)
            .map_err(|errors| {
                errors
                    .into_iter()
                    .map(|e| e.message)
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        if let Some(status) = status {
            self.force_status(form, &saved.1, status);
        }
        Ok(saved)
    }

    /// Sets a record's document status directly (seeding).
    pub(crate) fn force_status(&self, form: &str, number: &str, status: char) {
        let mut st = self.state.write();
        if let Some(table) = st.data.table_mut(form)
            && let Some(id) = table.by_number(number).map(|b| b.id)
            && let Some(bill) = table.bills.get_mut(&id)
        {
            bill.status = status;
        }
    }

    /// The answer of a rate-limit or quota fault.
    pub(crate) fn fault_reply(endpoint: &str, kind: &FaultKind) -> Reply {
        let failure = match kind {
            // K3Cloud documents MsgCode 14 调用限制 but no text; the wording is ours.
            FaultKind::QuotaExceeded => {
                Failure::new(14, None, "调用限制：已超过许可的接口调用次数。")
            }
            _ => Failure::new(14, None, "调用限制：接口调用过于频繁，请稍后再试。"),
        };
        error_reply(endpoint, failure)
    }

    fn process(
        &self,
        service: Service,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> Reply {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let params = match wire::decode_body(content_type, body) {
            Ok(p) => p,
            Err(e) => return response_error(&format!("请求数据包格式错误：{}", e.0)),
        };
        match service {
            Service::Account => {
                if method == "GetDataCenterList" {
                    return self.data_centers();
                }
                not_found(path)
            }
            Service::Auth => {
                let mut st = self.state.write();
                self.login(&mut st, method, &params, headers, now_ms)
            }
            Service::DynamicForm => {
                // The common case, a live session, needs only the shared lock.
                let live = self.touch_session(&self.state.read(), headers, now_ms);
                let cookies = if live {
                    Vec::new()
                } else {
                    match self.authenticate(&mut self.state.write(), headers, path, now_ms) {
                        Ok(cookies) => cookies,
                        Err(denied) => return reply_for(method, &denied),
                    }
                };
                let mut reply = if is_read_only(method) {
                    self.read_form(&self.state.read(), method, path, &params)
                } else {
                    self.dynamic_form(&mut self.state.write(), method, path, &params, now_ms)
                };
                reply.set_cookies.extend(cookies);
                reply
            }
        }
    }
}

/// Methods that change nothing (session bookkeeping aside).
pub(super) fn is_read_only(method: &str) -> bool {
    matches!(
        method,
        "View"
            | "ExecuteBillQuery"
            | "BillQuery"
            | "QueryBusinessInfo"
            | "SwitchOrg"
            | "AttachmentDownLoad"
            | "QueryAsyncResult"
    )
}

pub(super) fn form_arg(data: &K3Data, p: &Params) -> Result<&'static str, Failure> {
    let form = p.string(0, "formid").unwrap_or_default();
    if form.trim().is_empty() {
        return Err(Failure::new(5, None, "表单标识为空，请传入formid参数。"));
    }
    data.form_id(&form)
        .ok_or_else(|| store::unknown_form(&form))
}

/// How an authentication failure is answered.
#[derive(Debug)]
pub(super) enum AuthDenied {
    /// No session and no signature: `MsgCode` 1.
    Lost,
    /// Signature or credentials wrong: `MsgCode` 1 and an empty SID cookie.
    LostWithEmptySid,
    /// Wrong data centre: non-JSON, non-200 (k3cloud.md §3.1.2; the status is not recorded,
    /// 500 is our choice).
    Passport,
}

pub(super) fn reply_for(method: &str, denied: &AuthDenied) -> Reply {
    match denied {
        AuthDenied::Passport => Reply::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Fail to verify thirty passport",
        ),
        AuthDenied::Lost => error_reply(method, session_lost()),
        AuthDenied::LostWithEmptySid => {
            let mut reply = error_reply(method, session_lost());
            reply
                .set_cookies
                .push("kdservice-sessionid=; path=/".into());
            reply
        }
    }
}

/// One failure in the method's error shape: `ExecuteBillQuery` wraps it in `[[…]]`.
pub(super) fn error_reply(method: &str, failure: Failure) -> Reply {
    let envelope = Envelope::error(failure);
    if method.eq_ignore_ascii_case("ExecuteBillQuery") {
        Reply::json(&[[&envelope]])
    } else {
        Reply::json(&envelope)
    }
}

/// An unhandled server exception (k3cloud-wire/37_ERR_response_error_prefix.json).
pub(super) fn response_error(message: &str) -> Reply {
    let body = json!({"Message": message, "InnerExWrapper": null, "InnerException": null});
    Reply::text(StatusCode::OK, format!("response_error:{body}"))
}

pub(super) fn not_found(path: &str) -> Reply {
    // IIS answers an unknown service with its 404 page; the exact page is not in the reference.
    Reply::html(
        StatusCode::NOT_FOUND,
        format!(
            "<!DOCTYPE html><html><head><title>无法找到资源。</title></head><body><h1>“/k3cloud”应用程序中的服务器错误。</h1><h2>无法找到资源。</h2><p>请求的 URL: {path}</p></body></html>"
        ),
    )
}

pub(super) fn session_id(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    header("kdservice-sessionid")
        .or_else(|| header("sid"))
        .or_else(|| {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("kdservice-sessionid") && !v.is_empty()
                })
                .map(|(_, v)| v.trim().to_string())
        })
}

/// The route handler for everything under `/k3cloud/`.
pub(crate) async fn http_handler(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let conn = parts.extensions.get::<ConnAbort>().cloned();
    let Some((service, method)) = wire::parse_path(&path) else {
        shared.calls.hit(Api::K3cloud, "unknown");
        return not_found(&path).into_response();
    };
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return response_error("请求数据包读取失败").into_response();
    };
    let now_ms = shared.clock.now_ms();
    let sim = shared.clone();
    let endpoint = method.clone();
    server::handle(&shared, Api::K3cloud, &endpoint, conn.as_ref(), move || {
        sim.k3
            .process(service, &method, &path, &parts.headers, &body, now_ms)
    })
    .await
}
