//! The `K3Cloud` `WebAPI` simulator (k3cloud.md, k3cloud-wire/).

mod auth;
mod envelope;
mod forms;
#[cfg(test)]
mod fuzz;
mod query;
mod save;
mod store;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::RwLock;
use serde_json::{Map, Value, json};

use self::envelope::{Envelope, Failure, OrderedRow, ResponseStatus, SuccessEntity, session_lost};
use self::store::{K3Data, SaveOpts, StatusOp};
use self::wire::{Params, Service, flag, get_ci, numbers_and_ids, scalar_string};
use crate::config::K3CloudConfig;
use crate::faults::{Api, FaultKind};
use crate::reply::Reply;
use crate::rng::SplitMix64;
use crate::server::{self, ConnAbort, Shared};

use self::forms::{CURRENCY, ORG};
pub(crate) use self::forms::{OUTSTOCK, SALE_ORDER};

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

    /// The answer of a session-loss, rate-limit or quota fault.
    pub(crate) fn fault_reply(&self, endpoint: &str, kind: &FaultKind) -> Reply {
        let failure = match kind {
            FaultKind::SessionLoss => {
                self.expire_sessions();
                session_lost()
            }
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

    /// Whether the request names a live session; if so, its idle timer restarts.
    fn touch_session(&self, st: &K3State, headers: &HeaderMap, now_ms: i64) -> bool {
        let ttl_ms = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let Some(session) = session_id(headers).and_then(|sid| st.sessions.get(&sid)) else {
            return false;
        };
        if now_ms - session.last_ms.load(Ordering::Relaxed) <= ttl_ms {
            session.last_ms.store(now_ms, Ordering::Relaxed);
            return true;
        }
        false
    }

    fn data_centers(&self) -> Reply {
        Reply::json(&json!([{
            "Id": self.config.acct_id,
            "Number": "DEMO01",
            "Name": self.config.acct_name,
            "Version": self.config.server_version,
            "GDCID": "",
            "AuthenticationMethods": [],
        }]))
    }

    /// Session by SID (header `kdservice-sessionid`, Java's `SID`, or the cookie), else the
    /// signed headers (k3cloud.md §3.1.2): a live SID is accepted without checking
    /// credentials; an unknown one is ignored.
    fn authenticate(
        &self,
        st: &mut K3State,
        headers: &HeaderMap,
        path: &str,
        now_ms: i64,
    ) -> Result<Vec<String>, AuthDenied> {
        let ttl_ms = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        if let Some(sid) = session_id(headers)
            && let Some(session) = st.sessions.get(&sid)
        {
            if now_ms - session.last_ms.load(Ordering::Relaxed) <= ttl_ms {
                session.last_ms.store(now_ms, Ordering::Relaxed);
                return Ok(Vec::new());
            }
            st.sessions.remove(&sid);
        }
        if headers.get("x-kd-appkey").is_none() {
            return Err(AuthDenied::Lost);
        }
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let signed = auth::SignedHeaders { get: &get };
        match auth::verify(&signed, path, &self.config, now_ms.div_euclid(1000)) {
            Ok(()) => Ok(self.new_session(st, now_ms).1),
            Err(auth::SignFailure::Passport) => Err(AuthDenied::Passport),
            Err(auth::SignFailure::Lost(why)) => {
                tracing::debug!(why, "signed headers refused");
                Err(AuthDenied::LostWithEmptySid)
            }
        }
    }

    fn new_session(&self, st: &mut K3State, now_ms: i64) -> (String, Vec<String>) {
        let sid = st.rng.uuid();
        let asp = st.rng.alnum(24);
        if st.sessions.len() >= 10_000 {
            // Signed-header clients that ignore the cookie open a session per call.
            let ttl_ms = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
            st.sessions
                .retain(|_, s| now_ms - s.last_ms.load(Ordering::Relaxed) <= ttl_ms);
        }
        st.sessions.insert(
            sid.clone(),
            Session {
                last_ms: AtomicI64::new(now_ms),
            },
        );
        if st.issued.len() < crate::fxiaoke::ISSUED_KEPT {
            st.issued.extend([sid.clone(), asp.clone()]);
        }
        let cookies = vec![
            format!("kdservice-sessionid={sid}; path=/"),
            format!("ASP.NET_SessionId={asp}; path=/; HttpOnly"),
        ];
        (sid, cookies)
    }

    fn login(
        &self,
        st: &mut K3State,
        method: &str,
        p: &Params,
        headers: &HeaderMap,
        now_ms: i64,
    ) -> Reply {
        let cfg = &self.config;
        let s = |i: usize, name: &str| p.string(i, name).unwrap_or_default();
        let lcid_ok = |i: usize| {
            p.string(i, "lcid").is_none_or(|l| {
                l.trim()
                    .parse::<u32>()
                    .is_ok_and(|l| cfg.lcids.contains(&l))
            })
        };
        let acct = s(0, "acctID");
        let user = s(1, "username");
        let ok = match method {
            "Logout" => {
                if let Some(sid) = session_id(headers) {
                    st.sessions.remove(&sid);
                }
                return Reply::json(&true);
            }
            "ValidateUser" => s(2, "password") == cfg.password && lcid_ok(3),
            "ValidateUser2" => s(2, "password") == cfg.password && lcid_ok(4),
            "LoginByAppSecret" | "LoginByAppSecret2" => {
                s(2, "appid") == cfg.app_id
                    && s(3, "appsecret") == cfg.app_secret
                    && lcid_ok(if method == "LoginByAppSecret" { 4 } else { 5 })
            }
            "LoginBySign" | "LoginBySign2" => {
                let ts = s(3, "timestamp");
                let fresh = cfg.timestamp_window.is_none_or(|w| {
                    ts.trim()
                        .parse::<i64>()
                        .is_ok_and(|t| (now_ms.div_euclid(1000) - t).unsigned_abs() <= w.as_secs())
                });
                fresh
                    && s(2, "appid") == cfg.app_id
                    && s(4, "sign").eq_ignore_ascii_case(&auth::login_sign(
                        &acct,
                        &user,
                        &cfg.app_id,
                        &cfg.app_secret,
                        &ts,
                    ))
                    && lcid_ok(if method == "LoginBySign" { 5 } else { 6 })
            }
            _ => return not_found(method),
        } && acct == cfg.acct_id
            && user == cfg.user_name;
        if !ok {
            // LoginResultType 0 = PWError (用户或密码错误); the exact Message text is not in
            // the reference, the wording is ours.
            let message = if acct == cfg.acct_id {
                "用户名或密码错误！"
            } else {
                "数据中心不存在或已停用！"
            };
            return Reply::json(&json!({
                "Message": message,
                "MessageCode": "",
                "LoginResultType": 0,
                "Context": null,
                "KDSVCSessionId": null,
                "FormId": null,
                "RedirectFormParam": null,
                "FormInputObject": null,
                "ErrorStackTrace": null,
                "Lcid": 0,
                "AccessToken": null,
                "KdAccessResult": null,
                "IsSuccessByAPI": false,
            }));
        }
        let (sid, cookies) = self.new_session(st, now_ms);
        let context_sid = cookies
            .get(1)
            .and_then(|c| c.split(['=', ';']).nth(1))
            .unwrap_or_default()
            .to_string();
        // Shape of responses/validateuser_success_v9.json.
        let mut reply = Reply::json(&json!({
            "Message": null,
            "MessageCode": "CheckPasswordPolicy",
            "LoginResultType": 1,
            "Context": {
                "UserLocale": "zh-CN",
                "LogLocale": "zh-CN",
                "DBid": cfg.acct_id,
                "DatabaseType": 3,
                "SessionId": context_sid,
                "UseLanguages": [{"LocaleId": 2052, "LocaleName": "中文(简体)", "Alias": "CN", "LicenseType": 0}],
                "UserId": 100_008,
                "UserName": cfg.user_name,
                "CustomName": cfg.acct_name,
                "DisplayVersion": cfg.server_version,
                "DataCenterName": cfg.acct_name,
                "UserToken": st.rng.uuid(),
                "CurrentOrganizationInfo": {"ID": 1, "AcctOrgType": "1", "Name": "总公司", "FunctionIds": [101, 102, 103, 104]},
                "IsCH_ZH_AutoTrans": false,
                "ClientType": 32,
                "GDCID": "",
                "Gsid": st.rng.hex(19),
                "TRLevel": 1,
                "ProductEdition": 0,
                "DataCenterNumber": "DEMO01",
                "ContextResultType": 0,
                "TenantId": "",
                "IsDeployAsPublicCloud": false,
            },
            "KDSVCSessionId": sid,
            "FormId": null,
            "RedirectFormParam": null,
            "FormInputObject": null,
            "ErrorStackTrace": null,
            "Lcid": 0,
            "AccessToken": null,
            "CustomParam": {},
            "KdAccessResult": null,
            "IsSuccessByAPI": true,
        }));
        reply.set_cookies = cookies;
        reply
    }

    /// The operations that only read ([`is_read_only`]): they run under the shared lock,
    /// side by side.
    fn read_form(&self, st: &K3State, method: &str, path: &str, p: &Params) -> Reply {
        let data_at = |i: usize| p.data(i).map_err(|e| Failure::new(8, None, e));
        let result: Result<Reply, Failure> = (|| match method {
            "QueryAsyncResult" => {
                let info = p
                    .get(0, "queryInfo")
                    .map(wire::as_object)
                    .transpose()
                    .map_err(|e| Failure::new(8, None, e))?
                    .unwrap_or_default();
                let task = get_ci(&info, "TaskId")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                match st.tasks.get(&task) {
                    Some(result) => Ok(Reply::json(
                        &json!({"TaskId": task, "Status": 2, "Result": result}),
                    )),
                    None => Err(Failure::new(10, None, format!("任务“{task}”不存在。"))),
                }
            }
            "View" => {
                let form = form_arg(&st.data, p)?;
                let data = data_at(1)?;
                let number = get_ci(&data, "Number")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let id = get_ci(&data, "Id")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let table = st
                    .data
                    .table(form)
                    .ok_or_else(|| store::unknown_form(form))?;
                let bill = if id.trim().is_empty() || id.trim() == "0" {
                    table.by_number(number.trim())
                } else {
                    id.trim()
                        .parse::<i64>()
                        .ok()
                        .and_then(|id| table.bills.get(&id))
                };
                match bill {
                    Some(bill) => {
                        let view = st.data.view(form, bill);
                        Ok(Reply::json(
                            &json!({"Result": {"ResponseStatus": null, "Result": view}}),
                        ))
                    }
                    None if number.trim().is_empty() && id.trim().is_empty() => {
                        Err(Failure::new(8, None, "请传入单据编码Number或单据内码Id。"))
                    }
                    // Not in the reference; wording ours, MsgCode 10 未找到对应数据.
                    None => Err(Failure::new(
                        10,
                        None,
                        format!(
                            "{}不存在：编码“{}”内码“{}”。",
                            table.def.name,
                            number.trim(),
                            id.trim()
                        ),
                    )),
                }
            }
            "ExecuteBillQuery" | "BillQuery" => {
                let data = data_at(0)?;
                let result = query::run(
                    &st.data,
                    &data,
                    self.config.max_query_rows,
                    &self.order_cache,
                )?;
                if method == "BillQuery" {
                    let rows: Vec<OrderedRow<'_>> = result
                        .rows
                        .into_iter()
                        .map(|values| OrderedRow {
                            keys: &result.keys,
                            values,
                        })
                        .collect();
                    Ok(Reply::json(&rows))
                } else {
                    Ok(Reply::json(&result.rows))
                }
            }
            "QueryBusinessInfo" => {
                let data = data_at(0)?;
                let form = get_ci(&data, "FormId")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let table = st
                    .data
                    .table(&form)
                    .ok_or_else(|| store::unknown_form(&form))?;
                Ok(Reply::json(&business_info(table)))
            }
            "SwitchOrg" => {
                let data = data_at(0)?;
                let org = get_ci(&data, "OrgNumber")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let table = st.data.table(ORG).ok_or_else(|| store::unknown_form(ORG))?;
                match table.by_number(&org) {
                    Some(b) => Ok(Reply::json(&Envelope::new(ResponseStatus::ok(vec![
                        SuccessEntity {
                            id: b.id,
                            number: b.number.clone(),
                            d_index: 0,
                        },
                    ])))),
                    None => Err(Failure::new(10, None, format!("组织“{org}”不存在。"))),
                }
            }
            "AttachmentDownLoad" => {
                let data = data_at(0)?;
                let file_id = get_ci(&data, "FileId")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let (name, bytes) =
                    st.data.attachments.get(&file_id).cloned().ok_or_else(|| {
                        Failure::new(10, None, format!("附件“{file_id}”不存在。"))
                    })?;
                Ok(Reply::json(
                    &Envelope::new(ResponseStatus::ok(Vec::new()))
                        .with("FileName", Value::from(name))
                        .with("FileSize", Value::from(bytes.len()))
                        .with(
                            "FilePart",
                            Value::from(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                        )
                        .with("IsLast", Value::from(true))
                        .with("StartIndex", Value::from(0)),
                ))
            }
            _ => Ok(not_found(path)),
        })();
        result.unwrap_or_else(|failure| error_reply(method, failure))
    }

    #[allow(clippy::too_many_lines)]
    fn dynamic_form(
        &self,
        st: &mut K3State,
        method: &str,
        path: &str,
        p: &Params,
        now_ms: i64,
    ) -> Reply {
        if is_read_only(method) {
            return self.read_form(st, method, path, p);
        }
        let data_at = |i: usize| p.data(i).map_err(|e| Failure::new(8, None, e));
        let result: Result<Reply, Failure> = (|| match method {
            "Save" | "Draft" | "BatchSave" => {
                let form = form_arg(&st.data, p)?;
                let data = data_at(1)?;
                let envelope = save_call(&mut st.data, form, &data, method, now_ms);
                if p.raw_top.contains_key("beginmethod") {
                    // Async "QUERY" mode (k3cloud.md §5.9): the sandbox finishes at once.
                    let task = st.rng.uuid();
                    let result = serde_json::to_value(&envelope).unwrap_or(Value::Null);
                    st.tasks.insert(task.clone(), result.clone());
                    return Ok(Reply::json(
                        &json!({"TaskId": task, "Status": 2, "Result": result}),
                    ));
                }
                Ok(Reply::json(&envelope))
            }
            "Delete" | "Submit" | "Audit" | "UnAudit" | "CancelAssign" => {
                let form = form_arg(&st.data, p)?;
                let data = data_at(1)?;
                let (numbers, ids) = numbers_and_ids(&data);
                let op = match method {
                    "Delete" => StatusOp::Delete,
                    "Submit" => StatusOp::Submit,
                    "Audit" => StatusOp::Audit,
                    "UnAudit" => StatusOp::UnAudit,
                    _ => StatusOp::CancelAssign,
                };
                let status = st.data.transition(form, op, &numbers, &ids, now_ms);
                Ok(Reply::json(&Envelope::new(status)))
            }
            "ExcuteOperation" | "ExecuteOperation" => {
                let form = form_arg(&st.data, p)?;
                let op_number = p.string(1, "opNumber").unwrap_or_default();
                let data = data_at(2)?;
                let op = match op_number.to_ascii_lowercase().as_str() {
                    "" => return Err(Failure::new(3, None, "操作标识为空，请传入opNumber参数。")),
                    "forbid" => StatusOp::Forbid,
                    "enable" => StatusOp::Enable,
                    "cancel" | "uncancel" | "closebill" | "unclosebill" | "closeentry"
                    | "uncloseentry" | "donothing" => StatusOp::NoOp,
                    _ => {
                        return Err(Failure::new(
                            4,
                            None,
                            format!("sandbox 未模拟操作“{op_number}”。"),
                        ));
                    }
                };
                let (numbers, ids) = numbers_and_ids(&data);
                Ok(Reply::json(&Envelope::new(
                    st.data.transition(form, op, &numbers, &ids, now_ms),
                )))
            }
            "Push" => {
                let form = form_arg(&st.data, p)?;
                let data = data_at(1)?;
                Ok(Reply::json(&push(&mut st.data, form, &data, now_ms)))
            }
            "WorkflowAudit" => Ok(Reply::json(
                &Envelope::new(ResponseStatus::ok(Vec::new())).with("OperationResults", json!([])),
            )),
            "GetSysReportData" => Ok(Reply::json(
                &json!({"Result": {"IsSuccess": true, "RowCount": 0, "Rows": []}}),
            )),
            "AttachmentUpload" => {
                let data = data_at(0)?;
                let name = get_ci(&data, "FileName")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let chunk = get_ci(&data, "SendByte")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let mut file_id = get_ci(&data, "FileId")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                if file_id.is_empty() {
                    file_id = st.rng.hex(32);
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(chunk.trim())
                    .map_err(|_| Failure::new(8, None, "SendByte 不是合法的Base64。"))?;
                let entry = st
                    .data
                    .attachments
                    .entry(file_id.clone())
                    .or_insert_with(|| (name.clone(), Vec::new()));
                entry.1.extend(bytes);
                Ok(Reply::json(
                    &Envelope::new(ResponseStatus::ok(Vec::new()))
                        .with("FileId", Value::from(file_id))
                        .with("FileName", Value::from(name))
                        .with("Message", Value::from("")),
                ))
            }
            // Operations whose parameters the reference only knows as placeholders: the
            // sandbox checks the form when one is given and answers the success envelope.
            "Allocate" | "CancelAllocate" | "FlexSave" | "GroupSave" | "Disassembly"
            | "SendMsg" | "QueryGroupInfo" | "GroupDelete" => {
                if p.get(0, "formid").is_some()
                    && method != "SendMsg"
                    && method != "QueryGroupInfo"
                    && method != "GroupDelete"
                {
                    form_arg(&st.data, p)?;
                }
                Ok(Reply::json(&Envelope::new(ResponseStatus::ok(Vec::new()))))
            }
            _ => Ok(not_found(path)),
        })();
        result.unwrap_or_else(|failure| error_reply(method, failure))
    }
}

/// Methods that change nothing (session bookkeeping aside).
fn is_read_only(method: &str) -> bool {
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

fn form_arg(data: &K3Data, p: &Params) -> Result<&'static str, Failure> {
    let form = p.string(0, "formid").unwrap_or_default();
    if form.trim().is_empty() {
        return Err(Failure::new(5, None, "表单标识为空，请传入formid参数。"));
    }
    data.form_id(&form)
        .ok_or_else(|| store::unknown_form(&form))
}

/// How an authentication failure is answered.
#[derive(Debug)]
enum AuthDenied {
    /// No session and no signature: `MsgCode` 1.
    Lost,
    /// Signature or credentials wrong: `MsgCode` 1 and an empty SID cookie.
    LostWithEmptySid,
    /// Wrong data centre: non-JSON, non-200 (k3cloud.md §3.1.2; the status is not recorded,
    /// 500 is our choice).
    Passport,
}

fn reply_for(method: &str, denied: &AuthDenied) -> Reply {
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
fn error_reply(method: &str, failure: Failure) -> Reply {
    let envelope = Envelope::error(failure);
    if method.eq_ignore_ascii_case("ExecuteBillQuery") {
        Reply::json(&[[&envelope]])
    } else {
        Reply::json(&envelope)
    }
}

/// An unhandled server exception (k3cloud-wire/37_ERR_response_error_prefix.json).
fn response_error(message: &str) -> Reply {
    let body = json!({"Message": message, "InnerExWrapper": null, "InnerException": null});
    Reply::text(StatusCode::OK, format!("response_error:{body}"))
}

fn not_found(path: &str) -> Reply {
    // IIS answers an unknown service with its 404 page; the exact page is not in the reference.
    Reply::html(
        StatusCode::NOT_FOUND,
        format!(
            "<!DOCTYPE html><html><head><title>无法找到资源。</title></head><body><h1>“/k3cloud”应用程序中的服务器错误。</h1><h2>无法找到资源。</h2><p>请求的 URL: {path}</p></body></html>"
        ),
    )
}

fn session_id(headers: &HeaderMap) -> Option<String> {
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

fn save_opts(data: &Map<String, Value>, method: &str) -> SaveOpts {
    let need_update_fields = match get_ci(data, "NeedUpDateFields") {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_string).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    SaveOpts {
        need_update_fields,
        is_delete_entry: flag(data, "IsDeleteEntry", true),
        verify_base_data: flag(data, "IsVerifyBaseDataField", false),
        validate: flag(data, "ValidateFlag", true),
        auto_submit_audit: flag(data, "IsAutoSubmitAndAudit", false),
        draft: method == "Draft",
        keep_ids: false,
    }
}

fn return_fields(data: &Map<String, Value>) -> Vec<String> {
    match get_ci(data, "NeedReturnFields") {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_string).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// Save / Draft / `BatchSave`.
fn save_call(
    data: &mut K3Data,
    form: &str,
    packet: &Map<String, Value>,
    method: &str,
    now_ms: i64,
) -> Envelope {
    let opts = save_opts(packet, method);
    let fields = return_fields(packet);
    let models: Vec<Map<String, Value>> = match get_ci(packet, "Model") {
        Some(Value::Array(items)) if method == "BatchSave" => items
            .iter()
            .map(|m| m.as_object().cloned().unwrap_or_default())
            .collect(),
        Some(Value::Object(m)) => vec![m.clone()],
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => vec![m],
            Ok(Value::Array(items)) if method == "BatchSave" => items
                .iter()
                .map(|m| m.as_object().cloned().unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    if models.is_empty() {
        return Envelope::error(Failure::new(
            8,
            Some("Model"),
            "data数据包中的参数Model的值不能为空。",
        ))
        .with("Id", Value::from(""))
        .with("Number", Value::from(""))
        .with("NeedReturnData", json!([{}]));
    }
    let mut errors = Vec::new();
    let mut success = Vec::new();
    let mut returned = Vec::new();
    if let Some(def) = data.table(form).map(|t| Arc::clone(&t.def)) {
        for model in &models {
            if let Some(number) = get_ci(model, def.number_key)
                .and_then(scalar_string)
                .filter(|n| !n.trim().is_empty())
            {
                *data.saves.entry((def.id, number)).or_insert(0) += 1;
            }
        }
    }
    for (i, model) in models.iter().enumerate() {
        match data.save(form, model, &opts, now_ms) {
            Ok((id, number)) => {
                returned.push(data.return_fields(form, id, &fields));
                success.push(SuccessEntity {
                    id,
                    number,
                    d_index: i,
                });
            }
            Err(errs) => {
                returned.push(json!({}));
                errors.extend(errs.into_iter().map(|e| e.at(i)));
            }
        }
    }
    let single = method != "BatchSave";
    let first = success.first().map(|s| (s.id, s.number.clone()));
    let envelope = Envelope::new(ResponseStatus::from_parts(errors, success));
    if single {
        match first {
            Some((id, number)) => envelope
                .with("Id", Value::from(id))
                .with("Number", Value::from(number))
                .with("NeedReturnData", Value::Array(returned)),
            // responses/save_error_quantity_limit.json: failure Id is "".
            None => envelope
                .with("Id", Value::from(""))
                .with("Number", Value::from(""))
                .with("NeedReturnData", json!([{}])),
        }
    } else {
        envelope.with("NeedReturnData", Value::Array(returned))
    }
}

/// Push from a sales order to an outbound (`SAL_OUTSTOCK`) or delivery notice.
fn push(data: &mut K3Data, form: &str, packet: &Map<String, Value>, now_ms: i64) -> Envelope {
    let fail = |f: Failure| {
        Envelope::new(ResponseStatus::failed(vec![f], Vec::new()))
            .with("ConvertResponseStatus", Value::Null)
    };
    if form != SALE_ORDER {
        return fail(Failure::new(
            4,
            None,
            format!("sandbox 只模拟从销售订单下推，不支持“{form}”。"),
        ));
    }
    let target = get_ci(packet, "TargetFormId")
        .and_then(scalar_string)
        .unwrap_or_default();
    let target = if target.trim().is_empty() {
        OUTSTOCK.to_string()
    } else {
        target
    };
    let Some(target) = data
        .form_id(&target)
        .filter(|t| *t == OUTSTOCK || *t == "SAL_DELIVERYNOTICE")
    else {
        return fail(Failure::new(
            4,
            None,
            format!("sandbox 不支持下推到“{target}”。"),
        ));
    };
    let (numbers, ids) = numbers_and_ids(packet);
    let entry_ids: Vec<i64> = get_ci(packet, "EntryIds")
        .and_then(scalar_string)
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let sources: Vec<store::Bill> = {
        let Some(table) = data.table(SALE_ORDER) else {
            return fail(store::unknown_form(SALE_ORDER));
        };
        let mut found: Vec<store::Bill> = numbers
            .iter()
            .filter_map(|n| table.by_number(n).cloned())
            .collect();
        found.extend(
            ids.iter()
                .filter_map(|s| s.parse::<i64>().ok())
                .filter_map(|id| table.bills.get(&id).cloned()),
        );
        if !entry_ids.is_empty() && found.is_empty() {
            found = table
                .bills
                .values()
                .filter(|b| {
                    b.entries
                        .values()
                        .flatten()
                        .any(|e| entry_ids.contains(&e.id))
                })
                .cloned()
                .collect();
        }
        found
    };
    if sources.is_empty() {
        return fail(Failure::new(10, None, "没有找到要下推的源单。"));
    }
    let mut errors = Vec::new();
    let mut success = Vec::new();
    let draft_on_fail = flag(packet, "IsDraftWhenSaveFail", false);
    for (i, source) in sources.iter().enumerate() {
        if source.status != 'C' {
            errors.push(
                Failure::new(
                    11,
                    Some(""),
                    format!(
                        "单据编号为“{}”的销售订单，单据未审核，不能下推！",
                        source.number
                    ),
                )
                .at(i),
            );
            continue;
        }
        let model = store::push_model(data, source, &entry_ids, target);
        let mut opts = SaveOpts {
            validate: true,
            is_delete_entry: true,
            ..SaveOpts::default()
        };
        let mut saved = data.save(target, &model, &opts, now_ms);
        if saved.is_err() && draft_on_fail {
            opts.draft = true;
            saved = data.save(target, &model, &opts, now_ms);
        }
        match saved {
            Ok((id, number)) => success.push(SuccessEntity {
                id,
                number,
                d_index: i,
            }),
            Err(errs) => errors.extend(errs.into_iter().map(|e| e.at(i))),
        }
    }
    Envelope::new(ResponseStatus::from_parts(errors, success)).with(
        "ConvertResponseStatus",
        serde_json::to_value(ResponseStatus::ok(Vec::new())).unwrap_or(Value::Null),
    )
}

/// `QueryBusinessInfo`'s metadata (shape read by kingdee-mcp's parser, k3cloud.md §5 table).
fn business_info(table: &store::Table) -> Value {
    let def = &table.def;
    let name = |n: &str| json!([{"Key": 2052, "Value": n}]);
    let field = |f: &forms::FieldDef| {
        let (field_type, lookup) = match f.ty {
            forms::FieldType::Text => ("TextField", Value::Null),
            forms::FieldType::Decimal => ("DecimalField", Value::Null),
            forms::FieldType::Integer => ("IntegerField", Value::Null),
            forms::FieldType::Date => ("DateField", Value::Null),
            forms::FieldType::Combo => ("ComboField", Value::Null),
            forms::FieldType::BaseData(t) => ("BaseDataField", Value::from(t)),
            forms::FieldType::LooseRef(t) => ("BaseDataField", t.map_or(Value::Null, Value::from)),
        };
        json!({"Key": f.key, "Name": name(f.name), "FieldType": field_type, "ElementType": field_type, "MustInput": f.required, "LookUpObjectFormId": lookup})
    };
    let mut head_fields: Vec<Value> = vec![
        json!({"Key": def.pk, "Name": name("内码"), "FieldType": "PKField", "ElementType": "PKField", "MustInput": false, "LookUpObjectFormId": null}),
    ];
    head_fields.extend(def.fields.iter().filter(|f| f.entity.is_none()).map(field));
    let mut entrys = vec![
        json!({"Key": "FBillHead", "ParentKey": "", "Name": name(def.name), "Fields": head_fields}),
    ];
    for e in &def.entities {
        let mut fields = vec![
            json!({"Key": "FEntryID", "Name": name("分录内码"), "FieldType": "PKField", "ElementType": "PKField", "MustInput": false, "LookUpObjectFormId": null}),
        ];
        fields.extend(
            def.fields
                .iter()
                .filter(|f| f.entity == Some(e.key))
                .map(field),
        );
        entrys.push(json!({"Key": e.key, "ParentKey": "FBillHead", "Name": name(e.name), "TableName": e.table, "Fields": fields}));
    }
    json!({"Result": {"ResponseStatus": null, "NeedReturnData": {
        "Id": def.id,
        "Name": name(def.name),
        "PkFieldName": def.pk,
        "NumberFieldName": def.number_key,
        "Entrys": entrys,
        "Operations": ["Save", "Submit", "Audit", "UnAudit", "Delete", "Forbid", "Enable"],
    }}})
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
