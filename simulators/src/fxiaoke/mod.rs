//! The Fxiaoke `OpenAPI` simulator (fxiaoke.md, fxiaoke-wire/).
//!
//! Served at the real paths: `/cgi/corpAccessToken/get/V2`, `/oauth2.0/token`, the directory
//! (`/cgi/user/*`, `/cgi/department/*`), CRM metadata (`/cgi/crm/v2/object/*`), data of preset
//! objects (`/cgi/crm/v2/data/*`) and custom objects (`/cgi/crm/custom/v2/data/*`, and the v1
//! `/cgi/crm/custom/data/*`), the 2017 `/cgi/crm/data/query|get`, and `/cgi/message/send`.
//! Every answer is HTTP 200 with the vendor's envelope; anything else answers 10006.

mod auth;
mod envelope;
mod objects;
mod org;
mod query;
mod services;
mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use axum::extract::{Request, State};
use axum::response::Response;
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value, json};

use self::auth::AuthState;
pub(crate) use self::auth::{ISSUED_KEPT, Limits};
use self::envelope::{FxError, Tracer};
use self::objects::ObjectDef;
pub(crate) use self::org::{ADMIN_MOBILE, ADMIN_OPEN_USER_ID};
use self::query::{Caps, Search};
use self::store::{Crm, ObjTable, WriteCtx, id_list};
use crate::config::FxiaokeConfig;
use crate::faults::{Api, FaultKind};
use crate::reply::Reply;
use crate::server::{self, ConnAbort, Shared};

/// An operation of the `…/data/*` families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataOp {
    Query,
    Get,
    Create,
    Update,
    Invalid,
    Delete,
    Recover,
    ChangeOwner,
    FindOne,
    FindSimple,
}

/// What a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    CorpToken,
    OAuthToken,
    Org(&'static str),
    ObjectList,
    Describe,
    /// `custom` is true for the custom-object families.
    Data(DataOp, bool),
    V1Query,
    V1Get,
    Message,
}

/// Lower-case path → (canonical path, route).
static ROUTES: LazyLock<HashMap<String, (String, Route)>> = LazyLock::new(|| {
    let mut routes: Vec<(String, Route)> = vec![
        ("/cgi/corpAccessToken/get/V2".into(), Route::CorpToken),
        ("/oauth2.0/token".into(), Route::OAuthToken),
        ("/cgi/user/getByMobile".into(), Route::Org("getByMobile")),
        ("/cgi/user/get".into(), Route::Org("get")),
        ("/cgi/user/list".into(), Route::Org("list")),
        ("/cgi/user/simpleList".into(), Route::Org("simpleList")),
        (
            "/cgi/user/get/batchByUpdTime".into(),
            Route::Org("batchByUpdTime"),
        ),
        ("/cgi/department/list".into(), Route::Org("department/list")),
        (
            "/cgi/department/detail".into(),
            Route::Org("department/detail"),
        ),
        ("/cgi/crm/v2/object/list".into(), Route::ObjectList),
        ("/cgi/crm/v2/object/describe".into(), Route::Describe),
        ("/cgi/crm/data/query".into(), Route::V1Query),
        ("/cgi/crm/data/get".into(), Route::V1Get),
        ("/cgi/message/send".into(), Route::Message),
    ];
    let ops = [
        ("query", DataOp::Query),
        ("get", DataOp::Get),
        ("create", DataOp::Create),
        ("update", DataOp::Update),
        ("invalid", DataOp::Invalid),
        ("delete", DataOp::Delete),
        ("recover", DataOp::Recover),
        ("changeOwner", DataOp::ChangeOwner),
    ];
    for (name, op) in ops {
        routes.push((format!("/cgi/crm/v2/data/{name}"), Route::Data(op, false)));
        routes.push((
            format!("/cgi/crm/custom/v2/data/{name}"),
            Route::Data(op, true),
        ));
        routes.push((
            format!("/cgi/crm/custom/data/{name}"),
            Route::Data(op, true),
        ));
    }
    for (name, op) in [
        ("findOne", DataOp::FindOne),
        ("findSimple", DataOp::FindSimple),
    ] {
        routes.push((
            format!("/cgi/crm/custom/v2/data/{name}"),
            Route::Data(op, true),
        ));
    }
    routes
        .into_iter()
        .map(|(path, route)| (path.to_ascii_lowercase(), (path, route)))
        .collect()
});

fn route(path: &str) -> Option<(&'static str, Route)> {
    let key = path.trim_end_matches('/').to_ascii_lowercase();
    ROUTES.get(&key).map(|(p, r)| (p.as_str(), *r))
}

/// A cached total order of an object's records.
type SortedIds = Arc<Vec<String>>;

/// The simulator: tokens and limits under one lock, CRM data under a read-write lock.
#[derive(Debug)]
pub(crate) struct FxSim {
    config: FxiaokeConfig,
    auth: Mutex<AuthState>,
    crm: RwLock<Crm>,
    traces: AtomicU64,
    tracer: Tracer,
    /// Sorted `_id`s per (object, sort), for the data generation they were built from: a
    /// client paging through a sorted list pays for the sort once, not per page.
    order_cache: Mutex<HashMap<String, (u64, SortedIds)>>,
}

/// Who is calling, once authenticated.
#[derive(Clone, Debug)]
struct Caller {
    app: usize,
    /// The acting employee's `FSUID_…` (CRM calls only).
    user: Option<String>,
}

type Out = Result<Value, FxError>;

fn obj(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn flag(body: &Map<String, Value>, data: &Map<String, Value>, key: &str) -> bool {
    // Flow flags belong at the top level; some clients put them in `data` (fxiaoke.md §4.2).
    body.get(key)
        .or_else(|| data.get(key))
        .and_then(Value::as_bool)
        == Some(true)
}

impl FxSim {
    pub(crate) fn new(config: &FxiaokeConfig, seed: u64) -> Self {
        let ea = config
            .apps
            .first()
            .map_or_else(|| "fsdemo".to_string(), |a| a.ea.clone());
        Self {
            config: config.clone(),
            auth: Mutex::new(AuthState::new(config, seed)),
            crm: RwLock::new(Crm::new(seed)),
            traces: AtomicU64::new(seed.wrapping_mul(0x9E37_79B9)),
            tracer: Tracer { ea },
            order_cache: Mutex::new(HashMap::new()),
        }
    }

    /// Calls refused by the per-path rate limit since the last reset.
    pub(crate) fn rate_limited(&self) -> u64 {
        self.auth.lock().rate_limited
    }

    pub(crate) fn reset(&self, seed: u64, _now: i64) {
        *self.auth.lock() = AuthState::new(&self.config, seed);
        *self.crm.write() = Crm::new(seed);
        self.traces
            .store(seed.wrapping_mul(0x9E37_79B9), Ordering::Relaxed);
    }

    fn trace(&self) -> u64 {
        self.traces.fetch_add(1, Ordering::Relaxed)
    }

    fn error_reply(&self, e: &FxError) -> Reply {
        Reply::json(&self.tracer.error(self.trace(), e))
    }

    /// The answer of a session-loss, rate-limit or quota fault.
    pub(crate) fn fault_reply(&self, kind: &FaultKind, config: &FxiaokeConfig) -> Reply {
        let e = match kind {
            FaultKind::SessionLoss => {
                self.invalidate_tokens();
                FxError::bad_token()
            }
            FaultKind::QuotaExceeded => FxError::daily_quota(),
            _ => FxError::rate_limited(config.rate_limit_code),
        };
        self.error_reply(&e)
    }

    fn write_ctx<'a>(&self, user: &'a str, now_ms: i64) -> WriteCtx<'a> {
        WriteCtx {
            user,
            now_ms,
            code: self.config.business_error_code,
            specify_time: false,
            specify_created_by: false,
            direct: false,
        }
    }

    /// Runs a search. Sorted searches go through two caches, both valid for one data
    /// generation: the object's total order for the sort, and the result (matching ids in
    /// order) for the filters, so that paging with offsets costs a page, not a scan.
    fn search(
        &self,
        crm: &Crm,
        table: &ObjTable,
        api: &str,
        search: &Search,
    ) -> (usize, Vec<Value>) {
        let (Some(order_key), Some(result_key)) = (search.order_key(api), search.result_key(api))
        else {
            return search.run(&table.records, Some(&table.def), None);
        };
        let def = Some(&*table.def);
        let ids = self.cached(result_key, crm.generation, || {
            let sorted = self.cached(order_key, crm.generation, || {
                search.sorted_ids(&table.records, def)
            });
            search.matching_ids(&table.records, def, &sorted)
        });
        search.page_of(&table.records, &ids)
    }

    fn cached(
        &self,
        key: String,
        generation: u64,
        build: impl FnOnce() -> Vec<String>,
    ) -> SortedIds {
        if let Some((g, ids)) = self.order_cache.lock().get(&key)
            && *g == generation
        {
            return ids.clone();
        }
        // Built without the cache's lock; two searches may both build it, harmlessly.
        let ids = Arc::new(build());
        let mut cache = self.order_cache.lock();
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(key, (generation, ids.clone()));
        ids
    }

    fn caps(&self) -> Caps {
        Caps {
            max_limit: self.config.max_query_limit,
            max_offset: self.config.max_query_offset,
        }
    }

    // ---- in-process API (handle and control routes) -----------------------------------

    pub(crate) fn records(&self, api: &str) -> Vec<Value> {
        let crm = self.crm.read();
        crm.table(api)
            .map(|t| {
                t.records
                    .values()
                    .map(|r| Value::Object(r.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn record(&self, api: &str, id: &str) -> Option<Value> {
        let crm = self.crm.read();
        crm.table(api)?
            .records
            .get(id)
            .map(|r| Value::Object(r.clone()))
    }

    /// Object api names and their record counts.
    pub(crate) fn objects(&self) -> Vec<(String, usize)> {
        let crm = self.crm.read();
        crm.objects
            .iter()
            .map(|(k, t)| (k.clone(), t.records.len()))
            .collect()
    }

    pub(crate) fn insert(&self, api: &str, record: Value, now: i64) -> Result<String, String> {
        let Value::Object(record) = record else {
            return Err("the record must be a JSON object".into());
        };
        let mut crm = self.crm.write();
        let owner = id_list(record.get("owner"))
            .into_iter()
            .next()
            .filter(|o| crm.org.user(o).is_some())
            .unwrap_or_else(|| ADMIN_OPEN_USER_ID.to_string());
        let mut ctx = self.write_ctx(&owner, now);
        ctx.direct = true;
        let details = obj(record.get("details")).cloned();
        let mut record = record;
        record.remove("details");
        crm.create(api, &record, details.as_ref(), &ctx)
            .map_err(|e| e.message)
    }

    /// Changes fields of a record as a CRM user would (`last_modified_time` moves).
    pub(crate) fn update(&self, api: &str, id: &str, patch: Value, now: i64) -> Result<(), String> {
        let Value::Object(mut patch) = patch else {
            return Err("the patch must be a JSON object".into());
        };
        patch.insert("_id".into(), json!(id));
        let ctx = self.write_ctx(ADMIN_OPEN_USER_ID, now);
        self.crm
            .write()
            .update(api, &patch, None, &ctx)
            .map_err(|e| e.message)
    }

    /// `delete` of one invalidated record (and its details), as the API does it.
    pub(crate) fn delete(&self, api: &str, id: &str, now: i64) -> Result<(), String> {
        let ctx = self.write_ctx(ADMIN_OPEN_USER_ID, now);
        self.crm
            .write()
            .delete(api, &[id.to_owned()], &ctx)
            .map_err(|e| e.message)
    }

    /// `invalid` (作废) or `recover` of one record, as the API does them.
    pub(crate) fn set_invalid(
        &self,
        api: &str,
        id: &str,
        invalid: bool,
        now: i64,
    ) -> Result<(), String> {
        let ctx = self.write_ctx(ADMIN_OPEN_USER_ID, now);
        let ids = [id.to_owned()];
        let mut crm = self.crm.write();
        let done = if invalid {
            crm.invalid(api, &ids, &ctx)
        } else {
            crm.recover(api, &ids, &ctx)
        };
        done.map_err(|e| e.message)
    }

    pub(crate) fn messages(&self) -> Vec<Value> {
        self.crm.read().messages.clone()
    }

    pub(crate) fn users(&self) -> Vec<Value> {
        let crm = self.crm.read();
        crm.org
            .users
            .iter()
            .map(|u| {
                let mut m = org::Org::user_json(u);
                m.insert("employeeId".into(), json!(u.employee_id));
                Value::Object(m)
            })
            .collect()
    }

    pub(crate) fn describe(&self, api: &str) -> Option<Value> {
        self.crm.read().table(api).map(|t| t.def.describe())
    }

    pub(crate) fn define(&self, describe: &Value) -> Result<(), String> {
        let def = ObjectDef::from_describe(describe)?;
        self.crm.write().define(def);
        Ok(())
    }

    /// Makes `token` a token of the first app (nothing happens without apps).
    pub(crate) fn pin_token(&self, token: &str, config: &FxiaokeConfig, now: i64) {
        if !config.apps.is_empty() {
            self.auth.lock().pin(token, 0, config, now);
        }
    }

    pub(crate) fn issued_tokens(&self) -> Vec<String> {
        self.auth.lock().issued.clone()
    }

    pub(crate) fn invalidate_tokens(&self) {
        self.auth.lock().invalidate();
    }

    pub(crate) fn limits(&self) -> Limits {
        self.auth.lock().limits.clone()
    }

    pub(crate) fn set_limits(&self, f: impl FnOnce(&mut Limits)) {
        f(&mut self.auth.lock().limits);
    }
}

fn payload(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), value);
    m
}

/// The handler of every path that is not `K3Cloud` or the control API.
pub(crate) async fn http_handler(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let conn = parts.extensions.get::<ConnAbort>().cloned();
    let Some((canonical, route)) = route(&path) else {
        shared.calls.hit(Api::Fxiaoke, "unknown");
        let reply = shared.fx.error_reply(&FxError::unknown_path(&path));
        return reply.into_response();
    };
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return shared
            .fx
            .error_reply(&FxError::new(12004, "POST请求体为空", "POST请求体读取失败"))
            .into_response();
    };
    let now_ms = shared.clock.now_ms();
    let sim = shared.clone();
    server::handle(&shared, Api::Fxiaoke, canonical, conn.as_ref(), move || {
        sim.fx
            .process(route, canonical, &parts.headers, &body, now_ms)
    })
    .await
}
