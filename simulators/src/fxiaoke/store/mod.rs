//! CRM records: create (with master-detail lines), update, invalid, recover, delete, change
//! owner, with the system fields of fxiaoke.md §5 kept on every write.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::envelope::FxError;
use super::objects::{FieldDef, ObjectDef, catalogue};
use super::org::{Org, User};
use crate::clock::k3_datetime;

mod lifecycle;
mod write;

/// A record: the field map as `data/get` answers it.
pub(crate) type Record = Map<String, Value>;

/// Per detail object sent: its api name, its master-link field, its rows.
type DetailRows<'d> = Vec<(String, String, Vec<&'d Map<String, Value>>)>;

/// Fields a client may not write through create/update: the server keeps them.
const SYSTEM_WRITE_PROTECTED: &[&str] = &[
    "_id",
    "dataObjectApiName",
    "object_describe_api_name",
    "created_by",
    "create_time",
    "last_modified_by",
    "last_modified_time",
    "life_status",
    "lock_status",
    "is_deleted",
    "version",
    "owner_department",
    "data_own_department",
    "relevant_team",
];

#[derive(Debug)]
pub(crate) struct ObjTable {
    pub(crate) def: Arc<ObjectDef>,
    pub(crate) records: BTreeMap<String, Record>,
    /// `life_status` before `invalid`, for `recover`.
    prior_status: HashMap<String, Value>,
    /// Per-day counter of `name` auto-numbers.
    numbers: HashMap<String, u64>,
}

impl ObjTable {
    pub(super) fn new(def: ObjectDef) -> Self {
        Self {
            def: Arc::new(def),
            records: BTreeMap::new(),
            prior_status: HashMap::new(),
            numbers: HashMap::new(),
        }
    }
}

/// Who writes, when, and how.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteCtx<'a> {
    pub(crate) user: &'a str,
    pub(crate) now_ms: i64,
    /// The errorCode of business-rule failures (configuration).
    pub(crate) code: i64,
    /// `hasSpecifyTime`: the client's `create_time` / `last_modified_time` are kept.
    pub(crate) specify_time: bool,
    /// `hasSpecifyCreatedBy`: the client's `created_by` is kept.
    pub(crate) specify_created_by: bool,
    /// Direct inserts (control API, seeding): `_id` and system fields of the record are kept.
    pub(crate) direct: bool,
}

/// Every CRM object's records, the directory and the sent messages.
#[derive(Debug)]
pub(crate) struct Crm {
    pub(crate) objects: BTreeMap<String, ObjTable>,
    pub(crate) org: Org,
    pub(crate) messages: Vec<Value>,
    /// A new one after every change of any record (see `crate::generation`).
    pub(crate) generation: u64,
    seq: u64,
    salt: u16,
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// A list of ids: `["a","b"]`, `"a"`, or the doc's odd `"[1000]"`.
pub(crate) fn id_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
        Some(Value::String(s)) => s
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|x| x.trim().trim_matches('"').to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

impl Crm {
    pub(crate) fn new(seed: u64) -> Self {
        let objects = catalogue()
            .into_iter()
            .map(|def| (def.api.clone(), ObjTable::new(def)))
            .collect();
        Self {
            objects,
            org: Org::demo(),
            messages: Vec::new(),
            generation: crate::generation::next(),
            seq: 1,
            salt: u16::try_from(crate::rng::SplitMix64::new(seed).next_u64() & 0xFFFF).unwrap_or(0),
        }
    }

    pub(crate) fn table(&self, api: &str) -> Option<&ObjTable> {
        self.objects.get(api)
    }

    /// A new 24-hex id: issue second, a per-sandbox salt, a counter (so ids sort by creation).
    pub(super) fn new_id(&mut self, now_ms: i64) -> String {
        self.seq += 1;
        let secs =
            u32::try_from(now_ms.div_euclid(1000).clamp(0, i64::from(u32::MAX))).unwrap_or(0);
        format!("{secs:08x}{:04x}{:012x}", self.salt, self.seq)
    }

    pub(crate) fn define(&mut self, def: ObjectDef) {
        self.generation = crate::generation::next();
        let api = def.api.clone();
        match self.objects.get_mut(&api) {
            Some(table) => table.def = Arc::new(def),
            None => {
                self.objects.insert(api, ObjTable::new(def));
            }
        }
    }

    pub(super) fn business(ctx: &WriteCtx<'_>, message: String) -> FxError {
        FxError::new(ctx.code, message.clone(), message)
    }

    pub(super) fn not_found(ctx: &WriteCtx<'_>, id: &str) -> FxError {
        Self::business(ctx, format!("数据[{id}]不存在或已被删除"))
    }

    pub(crate) fn unknown_object(code: i64, api: &str) -> FxError {
        let message = format!("对象[{api}]不存在或已被禁用");
        FxError::new(code, message.clone(), message)
    }

    pub(super) fn user(&self, id: &str) -> Option<&User> {
        self.org.user(id)
    }

    /// System fields of a new record (given values kept for direct inserts).
    pub(super) fn stamp_new(&self, def: &ObjectDef, r: &mut Record, id: &str, ctx: &WriteCtx<'_>) {
        let keep = |r: &Record, k: &str| ctx.direct && !is_empty(r.get(k));
        r.insert("_id".into(), json!(id));
        if is_empty(r.get("owner")) {
            r.insert("owner".into(), json!([ctx.user]));
        }
        let client_created_by = ctx.specify_created_by && !is_empty(r.get("created_by"));
        if !keep(r, "created_by") && !client_created_by {
            r.insert("created_by".into(), json!([ctx.user]));
        }
        if !keep(r, "last_modified_by") {
            r.insert("last_modified_by".into(), json!([ctx.user]));
        }
        let given_time = ctx.direct || ctx.specify_time;
        if !given_time || is_empty(r.get("create_time")) {
            r.insert("create_time".into(), json!(ctx.now_ms));
        }
        if !given_time || is_empty(r.get("last_modified_time")) {
            r.insert("last_modified_time".into(), json!(ctx.now_ms));
        }
        for (key, value) in [
            ("life_status", json!("normal")),
            ("lock_status", json!("0")),
            ("is_deleted", json!(false)),
            ("record_type", json!("default__c")),
            ("version", json!("1")),
        ] {
            let client_record_type = key == "record_type" && !is_empty(r.get(key));
            if !keep(r, key) && !client_record_type {
                r.insert(key.into(), value);
            }
        }
        r.insert("object_describe_api_name".into(), json!(def.api));
        self.stamp_owner(r);
        for f in &def.fields {
            if let Some(default) = &f.default
                && is_empty(r.get(&f.api))
            {
                r.insert(f.api.clone(), default.clone());
            }
        }
    }

    /// `owner_department`, `data_own_department` and `relevant_team` follow the owner.
    pub(super) fn stamp_owner(&self, r: &mut Record) {
        let owner = id_list(r.get("owner"))
            .into_iter()
            .next()
            .unwrap_or_default();
        let dept = self.user(&owner).map(|u| u.main_department);
        if let Some(d) = dept {
            let name = self
                .org
                .department(d)
                .map(|d| d.name.clone())
                .unwrap_or_default();
            r.insert("owner_department".into(), json!(name));
            r.insert("data_own_department".into(), json!([d.to_string()]));
        }
        r.insert(
            "relevant_team".into(),
            json!([{"teamMemberEmployee": [owner], "teamMemberRole": "1", "teamMemberPermissionType": "2"}]),
        );
    }

    /// A write changes `last_modified_*` and the version.
    pub(super) fn touch(r: &mut Record, ctx: &WriteCtx<'_>) {
        r.insert("last_modified_time".into(), json!(ctx.now_ms));
        r.insert("last_modified_by".into(), json!([ctx.user]));
        let version = r
            .get("version")
            .and_then(text)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        r.insert("version".into(), json!((version + 1).to_string()));
    }

    /// `name` auto-number `yyyyMMdd-NNN` (as the reference's `数据[20210525-010]`).
    pub(super) fn auto_number(&mut self, api: &str, now_ms: i64) -> String {
        let day: String = k3_datetime(now_ms)[..10].replace('-', "");
        let Some(table) = self.objects.get_mut(api) else {
            return day;
        };
        let n = table.numbers.entry(day.clone()).or_insert(0);
        *n += 1;
        format!("{day}-{:03}", *n)
    }

    /// Checks one record against its describe: required fields, lookups, numbers, times,
    /// option values and the owner. `label` names the record in messages.
    pub(super) fn validate(
        &self,
        def: &ObjectDef,
        r: &Record,
        label: &str,
        ctx: &WriteCtx<'_>,
        skip: Option<&str>,
    ) -> Result<(), FxError> {
        let fail = |f: &FieldDef, what: String| {
            Self::business(ctx, format!("数据[{label}]的字段[{}]{what}", f.label))
        };
        for f in &def.fields {
            if Some(f.api.as_str()) == skip || f.define == "system" && f.api != "owner" {
                continue;
            }
            let value = r.get(&f.api);
            if is_empty(value) {
                if f.required && f.ty != "auto_number" {
                    return Err(fail(f, "为必填项".into()));
                }
                continue;
            }
            let Some(value) = value else { continue };
            if f.is_lookup() {
                let target = f.target.as_deref().unwrap_or_default();
                let ok = text(value).is_some_and(|id| {
                    self.objects
                        .get(target)
                        .and_then(|t| t.records.get(&id))
                        .is_some_and(|x| x.get("is_deleted") != Some(&json!(true)))
                });
                if !ok {
                    // The observed text (fxiaoke.md §5, Q&A doc #6).
                    return Err(fail(f, "关联关系不存在-201112011".into()));
                }
            } else if f.is_numeric() {
                let ok = match value {
                    Value::Number(_) => true,
                    Value::String(s) => s.trim().parse::<f64>().is_ok(),
                    _ => false,
                };
                if !ok {
                    return Err(fail(f, format!("的值[{}]不是合法的数字", show(value))));
                }
            } else if f.is_time() {
                let ok = match value {
                    Value::Number(n) => n.as_i64().is_some(),
                    Value::String(s) => s.trim().parse::<i64>().is_ok(),
                    _ => false,
                };
                if !ok {
                    return Err(fail(f, format!("的值[{}]不是毫秒时间戳", show(value))));
                }
            } else if f.ty == "select_one" && !f.options.is_empty() {
                let v = text(value).unwrap_or_default();
                if !f.options.iter().any(|(o, _)| *o == v) {
                    return Err(fail(f, format!("的选项值[{v}]不存在")));
                }
            } else if f.ty == "employee" {
                // `owner` and other people fields are lists of employee ids (Q&A: "owner是数组").
                let Value::Array(items) = value else {
                    return Err(fail(f, "必须是员工ID的数组".into()));
                };
                if let Some(bad) = items
                    .iter()
                    .find(|x| text(x).is_none_or(|id| self.user(&id).is_none()))
                {
                    return Err(fail(f, format!("的值[{}]不是有效的员工", show(bad))));
                }
            }
        }
        Ok(())
    }

    /// The detail objects of `master` and their rows in a `details` map.
    pub(super) fn detail_rows<'d>(
        &self,
        master: &str,
        details: Option<&'d Map<String, Value>>,
        ctx: &WriteCtx<'_>,
    ) -> Result<DetailRows<'d>, FxError> {
        let mut out = Vec::new();
        for (api, rows) in details.into_iter().flatten() {
            let table = self
                .objects
                .get(api)
                .ok_or_else(|| Self::unknown_object(ctx.code, api))?;
            let link = table
                .def
                .master_field(master)
                .ok_or_else(|| Self::business(ctx, format!("对象[{api}]不是[{master}]的从对象")))?;
            // Clients send lists; one doc example shows a single map (fxiaoke.md §4.6).
            let rows: Vec<&Map<String, Value>> = match rows {
                Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
                Value::Object(m) => vec![m],
                _ => Vec::new(),
            };
            out.push((api.clone(), link.api.clone(), rows));
        }
        Ok(out)
    }
}

pub(super) fn show(v: &Value) -> String {
    text(v).unwrap_or_else(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fxiaoke::org::ADMIN_OPEN_USER_ID;

    pub(super) fn ctx() -> WriteCtx<'static> {
        WriteCtx {
            user: ADMIN_OPEN_USER_ID,
            now_ms: 1_716_000_000_000,
            code: -1,
            specify_time: false,
            specify_created_by: false,
            direct: false,
        }
    }

    pub(super) fn obj(v: &Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    pub(super) fn order_with_lines_and_lookup_errors() {
        let mut crm = Crm::new(1);
        let c = ctx();
        let account = crm
            .create("AccountObj", &obj(&json!({"name": "甲"})), None, &c)
            .unwrap();
        let product = crm
            .create(
                "ProductObj",
                &obj(&json!({"name": "P", "price": "10"})),
                None,
                &c,
            )
            .unwrap();
        let order = crm
            .create(
                "SalesOrderObj",
                &obj(&json!({"account_id": account})),
                Some(&obj(
                    &json!({"SalesOrderProductObj": [{"product_id": product, "quantity": "2"}]}),
                )),
                &c,
            )
            .unwrap();
        let lines = &crm.objects["SalesOrderProductObj"].records;
        assert_eq!(lines.len(), 1);
        let line = lines.values().next().unwrap();
        assert_eq!(line["order_id"], json!(order));
        let r = &crm.objects["SalesOrderObj"].records[&order];
        assert_eq!(r["name"], "20240518-001");
        assert_eq!(r["owner"], json!([ADMIN_OPEN_USER_ID]));
        assert_eq!(r["version"], "1");
        assert_eq!(order.len(), 24);

        let e = crm
            .create(
                "SalesOrderObj",
                &obj(&json!({"account_id": "not-a-crm-id"})),
                None,
                &c,
            )
            .unwrap_err();
        assert_eq!(
            e.message,
            "数据[20240518-002]的字段[客户名称]关联关系不存在-201112011"
        );
        assert_eq!(e.code, -1);

        // Invalid cascades to the lines; delete needs invalid first.
        assert!(
            crm.delete("SalesOrderObj", std::slice::from_ref(&order), &c)
                .is_err()
        );
        crm.invalid("SalesOrderObj", std::slice::from_ref(&order), &c)
            .unwrap();
        assert!(
            crm.objects["SalesOrderProductObj"]
                .records
                .values()
                .all(|l| l["is_deleted"] == json!(true))
        );
        crm.recover("SalesOrderObj", std::slice::from_ref(&order), &c)
            .unwrap();
        assert_eq!(
            crm.objects["SalesOrderObj"].records[&order]["life_status"],
            "normal"
        );
        crm.invalid("SalesOrderObj", std::slice::from_ref(&order), &c)
            .unwrap();
        crm.delete("SalesOrderObj", &[order], &c).unwrap();
        assert!(crm.objects["SalesOrderProductObj"].records.is_empty());
    }

    #[test]
    pub(super) fn update_patches_and_bumps_version() {
        let mut crm = Crm::new(1);
        let mut c = ctx();
        let id = crm
            .create(
                "AccountObj",
                &obj(&json!({"name": "甲", "tel": "1", "account_level": "2"})),
                None,
                &c,
            )
            .unwrap();
        c.now_ms += 5;
        crm.update(
            "AccountObj",
            &obj(&json!({"_id": id, "tel": "2", "owner": ["x"], "create_time": 1})),
            None,
            &c,
        )
        .unwrap();
        let r = &crm.objects["AccountObj"].records[&id];
        assert_eq!(
            (r["tel"].as_str(), r["name"].as_str()),
            (Some("2"), Some("甲"))
        );
        assert_eq!(r["owner"], json!([ADMIN_OPEN_USER_ID]));
        assert_eq!(r["version"], "2");
        assert_eq!(r["last_modified_time"], json!(1_716_000_000_005_i64));
        assert_eq!(r["create_time"], json!(1_716_000_000_000_i64));
        let e = crm
            .update(
                "AccountObj",
                &obj(&json!({"_id": id, "account_level": "9"})),
                None,
                &c,
            )
            .unwrap_err();
        assert!(e.message.contains("选项值[9]"), "{e:?}");
    }
}
