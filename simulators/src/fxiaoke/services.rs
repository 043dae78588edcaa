//! The services behind the paths: token, authentication of a call, and the directory, CRM data and message services.

use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::envelope::{FxError, OkKind};
use super::org::ADMIN_OPEN_USER_ID;
use super::query::Search;
use super::store::{Crm, id_list};
use super::{Caller, DataOp, FxSim, Out, Route, flag, obj, payload, str_of};
use crate::reply::Reply;

impl FxSim {
    pub(super) fn process(
        &self,
        route: Route,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> Reply {
        let body: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return self.error_reply(&FxError::bad_body("不是对象")),
                Err(e) => return self.error_reply(&FxError::bad_body(&e.to_string())),
            }
        };
        let n = self.trace();
        let answer = match route {
            Route::CorpToken | Route::OAuthToken => self.token(route, &body, now_ms),
            _ => self
                .authenticate(route, &body, headers, now_ms)
                .and_then(|caller| {
                    self.auth
                        .lock()
                        .admit(path, self.config.rate_limit_code, now_ms)?;
                    self.dispatch(route, &body, &caller, now_ms)
                }),
        };
        match answer {
            Ok(value) => Reply::json(&value).with_rows(written_rows(route, &body)),
            Err(e) => {
                let mut value = self.tracer.error(n, &e);
                // The OAuth endpoint adds the OAuth error keys (probe, answer-shapes.md N1).
                if route == Route::OAuthToken
                    && e.code == 10006
                    && let Some(m) = value.as_object_mut()
                {
                    m.insert("error".into(), json!("非法请求"));
                    m.insert("error_description".into(), json!(e.description));
                }
                Reply::json(&value)
            }
        }
    }

    pub(super) fn app_by_id(&self, body: &Map<String, Value>) -> Result<usize, FxError> {
        // A missing appId was not probed: it is named. Any wrong credential is answered
        // as a wrong appSecret, as the probes with a fake appId and permanentCode were.
        let app_id = str_of(body, "appId").ok_or_else(|| FxError::bad_app_param("appId"))?;
        let wrong = || FxError::bad_app_param("appSecret");
        let index = self
            .config
            .apps
            .iter()
            .position(|a| a.app_id == app_id)
            .ok_or_else(wrong)?;
        let app = &self.config.apps[index];
        if str_of(body, "appSecret") != Some(app.app_secret.as_str())
            || str_of(body, "permanentCode") != Some(app.permanent_code.as_str())
        {
            return Err(wrong());
        }
        Ok(index)
    }

    pub(super) fn token(&self, route: Route, body: &Map<String, Value>, now_ms: i64) -> Out {
        let app = self.app_by_id(body)?;
        if route == Route::OAuthToken && str_of(body, "grantType") != Some("app_secret") {
            return Err(FxError::bad_app_param("grantType"));
        }
        let (token, expires_in) = {
            let mut auth = self.auth.lock();
            if !auth.limits.openapi_purchased {
                return Err(FxError::no_quota());
            }
            auth.issue(app, &self.config, now_ms)?
        };
        let a = &self.config.apps[app];
        let mut out = Map::new();
        if route == Route::CorpToken {
            out.insert("corpAccessToken".into(), json!(token));
            out.insert("corpId".into(), json!(a.corp_id));
            out.insert("expiresIn".into(), json!(expires_in));
        } else {
            // The doc example: openUserId is the corp's open id, ea the enterprise account.
            out.insert("openUserId".into(), json!(a.corp_id));
            out.insert("accessToken".into(), json!(token));
            out.insert("expiresIn".into(), json!(expires_in));
            out.insert("appId".into(), json!(a.app_id));
            out.insert("ea".into(), json!(a.ea));
        }
        Ok(self.tracer.ok(self.trace(), OkKind::Token, out))
    }

    /// Legacy body auth (`corpAccessToken`, `corpId`, `currentOpenUserId`) or the new headers
    /// (`authorization: Bearer`, `x-fs-ea`, `x-fs-userid`).
    pub(super) fn authenticate(
        &self,
        route: Route,
        body: &Map<String, Value>,
        headers: &HeaderMap,
        now_ms: i64,
    ) -> Result<Caller, FxError> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let bearer = header("authorization").map(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or(v)
                .trim()
                .to_string()
        });
        let (app, user) = if let Some(token) = bearer {
            let app = self
                .auth
                .lock()
                .check(&token, now_ms)
                .map(|t| t.app)
                .ok_or_else(FxError::bad_token)?;
            if header("x-fs-ea").is_some_and(|ea| ea != self.config.apps[app].ea) {
                return Err(FxError::bad_token());
            }
            let user = header("x-fs-userid")
                .map(str::to_string)
                .or_else(|| str_of(body, "currentOpenUserId").map(str::to_string));
            (app, user)
        } else {
            let token = str_of(body, "corpAccessToken").ok_or_else(FxError::missing_auth)?;
            let app = self
                .auth
                .lock()
                .check(token, now_ms)
                .map(|t| t.app)
                .ok_or_else(FxError::bad_token)?;
            if str_of(body, "corpId") != Some(self.config.apps[app].corp_id.as_str()) {
                return Err(FxError::bad_token());
            }
            (app, str_of(body, "currentOpenUserId").map(str::to_string))
        };
        let needs_user = !matches!(route, Route::Org(_) | Route::Message);
        let user = match (user, needs_user) {
            (None, true) => return Err(FxError::missing_user()),
            (None, false) => None,
            (Some(id), _) => {
                let crm = self.crm.read();
                match crm.org.user(&id) {
                    Some(u) => Some(u.open_user_id.clone()),
                    None if needs_user => return Err(FxError::unknown_user(&id)),
                    None => None,
                }
            }
        };
        Ok(Caller { app, user })
    }

    pub(super) fn dispatch(
        &self,
        route: Route,
        body: &Map<String, Value>,
        caller: &Caller,
        now_ms: i64,
    ) -> Out {
        let user = caller.user.as_deref().unwrap_or(ADMIN_OPEN_USER_ID);
        let ok = |crm: bool, payload: Map<String, Value>| {
            let kind = if crm { OkKind::Crm } else { OkKind::Other };
            Ok(self.tracer.ok(self.trace(), kind, payload))
        };
        let code = self.config.business_error_code;
        match route {
            Route::Org(op) => ok(false, self.crm.read().org.call(op, body)?),
            Route::ObjectList => {
                let crm = self.crm.read();
                let objects: Vec<Value> =
                    crm.objects.values().map(|t| t.def.list_entry()).collect();
                ok(true, payload("data", json!({"objects": objects})))
            }
            Route::Describe => {
                // Legacy clients send `apiName` at the top level, new docs under `data`.
                let api = str_of(body, "apiName")
                    .or_else(|| obj(body.get("data")).and_then(|d| str_of(d, "apiName")))
                    .ok_or_else(|| FxError::param("apiName 不能为空"))?;
                let crm = self.crm.read();
                let table = crm
                    .table(api)
                    .ok_or_else(|| Crm::unknown_object(code, api))?;
                ok(
                    true,
                    payload("data", json!({"describe": table.def.describe()})),
                )
            }
            Route::Message => self.send_message(body, caller, now_ms),
            Route::V1Query => {
                let api =
                    str_of(body, "apiName").ok_or_else(|| FxError::param("apiName 不能为空"))?;
                let search = Search::from_v1(
                    obj(body.get("searchQuery")).unwrap_or(&Map::new()),
                    self.caps(),
                )?;
                let crm = self.crm.read();
                let table = crm
                    .table(api)
                    .ok_or_else(|| Crm::unknown_object(code, api))?;
                let (total, page) = self.search(&crm, table, api, &search);
                let mut out = Map::new();
                out.insert("totalNumber".into(), json!(total));
                out.insert("datas".into(), Value::Array(page));
                ok(true, out)
            }
            Route::V1Get => {
                let api =
                    str_of(body, "apiName").ok_or_else(|| FxError::param("apiName 不能为空"))?;
                let id = str_of(body, "dataId").ok_or_else(|| FxError::param("dataId 不能为空"))?;
                let crm = self.crm.read();
                let table = crm
                    .table(api)
                    .ok_or_else(|| Crm::unknown_object(code, api))?;
                let record = table.records.get(id).ok_or_else(|| {
                    let m = format!("数据[{id}]不存在或已被删除");
                    FxError::new(code, m.clone(), m)
                })?;
                ok(true, payload("data", Value::Object(record.clone())))
            }
            Route::Data(op, custom) => self.data(op, custom, body, user, now_ms),
            Route::CorpToken | Route::OAuthToken => Err(FxError::unknown_path("token")),
        }
    }

    pub(super) fn data(
        &self,
        op: DataOp,
        custom: bool,
        body: &Map<String, Value>,
        user: &str,
        now_ms: i64,
    ) -> Out {
        let code = self.config.business_error_code;
        let empty = Map::new();
        let data = obj(body.get("data")).ok_or_else(|| FxError::param("data 不能为空"))?;
        let object_data = obj(data.get("object_data"));
        let api = object_data
            .and_then(|o| str_of(o, "dataObjectApiName"))
            .or_else(|| str_of(data, "dataObjectApiName"))
            .or_else(|| str_of(data, "apiName"))
            .ok_or_else(|| FxError::param("dataObjectApiName 不能为空"))?;
        if !custom && api.ends_with("__c") && !self.config.accept_custom_on_preset_path {
            // Undocumented on the real service (fxiaoke.md §4.1); the sandbox is strict so that
            // a client routing custom objects to the preset path is caught.
            return Err(FxError::param(format!(
                "{api} 是自定义对象，请使用 /cgi/crm/custom/v2/data/* 接口"
            )));
        }
        if self.crm.read().table(api).is_none() {
            return Err(Crm::unknown_object(code, api));
        }
        let ok =
            |payload: Map<String, Value>| Ok(self.tracer.ok(self.trace(), OkKind::Crm, payload));
        let mut ctx = self.write_ctx(user, now_ms);
        ctx.specify_time = flag(body, data, "hasSpecifyTime");
        ctx.specify_created_by = flag(body, data, "hasSpecifyCreatedBy");
        match op {
            DataOp::Query | DataOp::FindSimple | DataOp::FindOne => {
                let info = obj(data.get("search_query_info")).unwrap_or(&empty);
                let search = Search::parse(info, data, body, self.caps())?;
                let crm = self.crm.read();
                let table = crm
                    .table(api)
                    .ok_or_else(|| Crm::unknown_object(code, api))?;
                let (total, page) = self.search(&crm, table, api, &search);
                if op == DataOp::FindOne {
                    let first = page.into_iter().next().unwrap_or(Value::Null);
                    return ok(payload("data", json!({"objectData": first})));
                }
                ok(payload(
                    "data",
                    json!({"offset": search.offset, "limit": search.limit, "total": total, "dataList": page}),
                ))
            }
            DataOp::Get => {
                let id = str_of(data, "objectDataId")
                    .or_else(|| str_of(data, "object_data_id"))
                    .or_else(|| str_of(data, "dataId"))
                    .ok_or_else(|| FxError::param("objectDataId 不能为空"))?;
                let crm = self.crm.read();
                let record = crm
                    .table(api)
                    .and_then(|t| t.records.get(id))
                    .ok_or_else(|| {
                        let m = format!("数据[{id}]不存在或已被删除");
                        FxError::new(code, m.clone(), m)
                    })?;
                ok(payload("data", Value::Object(record.clone())))
            }
            DataOp::Create => {
                let object_data =
                    object_data.ok_or_else(|| FxError::param("object_data 不能为空"))?;
                let details = obj(data.get("details"));
                let id = self.crm.write().create(api, object_data, details, &ctx)?;
                ok(payload("dataId", json!(id)))
            }
            DataOp::Update => {
                let object_data =
                    object_data.ok_or_else(|| FxError::param("object_data 不能为空"))?;
                let details = obj(data.get("details"));
                self.crm.write().update(api, object_data, details, &ctx)?;
                ok(Map::new())
            }
            DataOp::Invalid | DataOp::Delete | DataOp::Recover => {
                // v2 invalid takes one `object_data_id`; v1 invalid, delete and recover `idList`.
                let mut ids = id_list(data.get("idList"));
                if let Some(one) =
                    str_of(data, "object_data_id").or_else(|| str_of(data, "objectDataId"))
                {
                    ids.push(one.to_string());
                }
                let mut crm = self.crm.write();
                match op {
                    DataOp::Invalid => crm.invalid(api, &ids, &ctx)?,
                    DataOp::Delete => crm.delete(api, &ids, &ctx)?,
                    _ => crm.recover(api, &ids, &ctx)?,
                }
                ok(Map::new())
            }
            DataOp::ChangeOwner => {
                // `Data` (docs, Go, PHP), `data` (.NET's camel-case) or `dataList` (v1).
                let items = data
                    .get("Data")
                    .or_else(|| data.get("data"))
                    .or_else(|| data.get("dataList"))
                    .and_then(Value::as_array)
                    .ok_or_else(|| FxError::param("Data 不能为空"))?;
                let changes: Vec<(String, Vec<String>)> = items
                    .iter()
                    .filter_map(Value::as_object)
                    .map(|m| {
                        let id = str_of(m, "objectDataId").unwrap_or_default().to_string();
                        (id, id_list(m.get("ownerId")))
                    })
                    .collect();
                self.crm.write().change_owner(api, &changes, &ctx)?;
                ok(Map::new())
            }
        }
    }

    /// `/cgi/message/send`: kept for tests and users to read.
    pub(super) fn send_message(
        &self,
        body: &Map<String, Value>,
        caller: &Caller,
        now_ms: i64,
    ) -> Out {
        let to = id_list(body.get("toUser"));
        if to.is_empty() {
            return Err(FxError::new(10015, "缺少参数toUser", "缺少参数toUser"));
        }
        let mut crm = self.crm.write();
        if to.len() > 500 || to.iter().any(|u| crm.org.user(u).is_none()) {
            return Err(FxError::new(11016, "toUser不合法", "toUser不合法"));
        }
        let msg_type = str_of(body, "msgType").unwrap_or_default().to_string();
        let content = match msg_type.as_str() {
            "text" => {
                let text = obj(body.get("text")).and_then(|t| str_of(t, "content"));
                if text.is_none() {
                    return Err(FxError::new(12005, "消息内容为空", "消息内容为空"));
                }
                body.get("text")
            }
            "composite" => body.get("composite").filter(|c| c.is_object()),
            "articles" => body
                .get("articles")
                .filter(|a| a.as_array().is_some_and(|a| (1..=7).contains(&a.len()))),
            "" => return Err(FxError::new(11017, "msgType不合法", "msgType不合法")),
            _ => return Err(FxError::new(12003, "不支持的消息类型", "不支持的消息类型")),
        }
        .ok_or_else(|| FxError::param(format!("{msg_type} 消息内容不合法")))?;
        crm.messages.push(json!({
            "toUser": to,
            "msgType": msg_type,
            msg_type.clone(): content,
            "appId": self.config.apps[caller.app].app_id,
            "sentAt": now_ms,
        }));
        Ok(self.tracer.ok(self.trace(), OkKind::Crm, Map::new()))
    }
}

/// Records a successful create or update wrote: the record and its detail rows.
fn written_rows(route: Route, body: &Map<String, Value>) -> usize {
    match route {
        Route::Data(DataOp::Create | DataOp::Update, _) => {
            let details = obj(body.get("data"))
                .and_then(|d| obj(d.get("details")))
                .map_or(0, |d| {
                    d.values()
                        .map(|rows| rows.as_array().map_or(0, Vec::len))
                        .sum()
                });
            1 + details
        }
        _ => 0,
    }
}
