//! The `K3Cloud` data: forms with bills, entries and base-data references; the document
//! status machine, View and Push (Save is in `save`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::envelope::{Failure, ResponseStatus, SuccessEntity};
use super::forms::{self, FieldType, FormDef};
use crate::clock::k3_datetime;

/// A stored field value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell {
    Val(Value),
    /// A base-data reference: the lookup value and the resolved internal id (0 when the
    /// referenced form is not checked).
    Ref {
        number: String,
        id: i64,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) id: i64,
    pub(crate) seq: usize,
    pub(crate) fields: BTreeMap<String, Cell>,
}

#[derive(Clone, Debug)]
pub(crate) struct Bill {
    pub(crate) id: i64,
    pub(crate) number: String,
    /// Z 暂存, A 创建, B 审核中, C 已审核, D 重新审核.
    pub(crate) status: char,
    /// A normal, B forbidden.
    pub(crate) forbid: char,
    /// A open, B closed (`CloseBill`; a closed order takes no more deliveries).
    pub(crate) close: char,
    pub(crate) head: BTreeMap<String, Cell>,
    pub(crate) entries: BTreeMap<String, Vec<Entry>>,
    pub(crate) create_ms: i64,
    pub(crate) modify_ms: i64,
    pub(crate) approve_ms: Option<i64>,
}

impl Bill {
    pub(crate) fn name(&self) -> Option<&str> {
        match self.head.get("FName") {
            Some(Cell::Val(Value::String(s))) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) def: Arc<FormDef>,
    pub(crate) bills: BTreeMap<i64, Bill>,
    by_number: HashMap<String, i64>,
    next_number: u64,
    /// Undeclared fields written by clients: lower-case key → (canonical key, entity).
    pub(crate) extra_fields: HashMap<String, (String, Option<String>)>,
    /// Undeclared entry entities written by clients.
    pub(crate) extra_entities: Vec<String>,
}

impl Table {
    fn new(def: Arc<FormDef>) -> Self {
        Self {
            def,
            bills: BTreeMap::new(),
            by_number: HashMap::new(),
            next_number: 1,
            extra_fields: HashMap::new(),
            extra_entities: Vec::new(),
        }
    }

    pub(crate) fn by_number(&self, number: &str) -> Option<&Bill> {
        self.by_number
            .get(&number.to_ascii_lowercase())
            .and_then(|id| self.bills.get(id))
    }

    pub(super) fn id_by_number(&self, number: &str) -> Option<i64> {
        self.by_number.get(&number.to_ascii_lowercase()).copied()
    }

    /// The next generated document number no bill has.
    pub(super) fn next_free_number(&mut self) -> String {
        loop {
            let candidate = format!(
                "{}{:0width$}",
                self.def.number_prefix,
                self.next_number,
                width = self.def.number_width
            );
            self.next_number += 1;
            if self.id_by_number(&candidate).is_none() {
                return candidate;
            }
        }
    }

    /// Stores a bill, replacing the one with its id (and that one's number).
    pub(super) fn insert(&mut self, bill: Bill) {
        if let Some(old) = self.bills.get(&bill.id) {
            let old_number = old.number.to_ascii_lowercase();
            self.by_number.remove(&old_number);
        }
        self.by_number
            .insert(bill.number.to_ascii_lowercase(), bill.id);
        self.bills.insert(bill.id, bill);
    }

    /// The canonical entity key if `key` names an entry entity of this form.
    pub(crate) fn entity_key(&self, key: &str) -> Option<String> {
        self.def.entity(key).map(|e| e.key.to_string()).or_else(|| {
            self.extra_entities
                .iter()
                .find(|e| e.eq_ignore_ascii_case(key))
                .cloned()
        })
    }
}

/// Options of Save / `BatchSave` / Draft (k3cloud.md §5.1).
#[derive(Debug, Default)]
pub(crate) struct SaveOpts {
    pub(crate) need_update_fields: Vec<String>,
    pub(crate) is_delete_entry: bool,
    pub(crate) verify_base_data: bool,
    pub(crate) validate: bool,
    pub(crate) auto_submit_audit: bool,
    pub(crate) draft: bool,
    /// Keep a non-zero pk / `FEntryID` of the packet as the new ids (direct inserts).
    pub(crate) keep_ids: bool,
}

/// What a status operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusOp {
    Submit,
    Audit,
    UnAudit,
    CancelAssign,
    Delete,
    Forbid,
    Enable,
    Close,
    UnClose,
    NoOp,
}

#[derive(Debug)]
pub(crate) struct K3Data {
    tables: HashMap<String, Table>,
    /// Changes whenever any table may have changed; unique across resets (see
    /// `crate::generation`), so that cached query orders are never mistaken for current ones.
    pub(crate) generation: u64,
    pub(super) next_id: i64,
    pub(super) next_entry_id: i64,
    pub(crate) attachments: HashMap<String, (String, Vec<u8>)>,
    /// Save, Draft and BatchSave rows that reached the server, per (form, number): a client
    /// that resends shows here even when the number's uniqueness refused the copy.
    pub(crate) saves: HashMap<(&'static str, String), u64>,
}

fn as_f64(cell: Option<&Cell>) -> Option<f64> {
    match cell? {
        Cell::Val(Value::Number(n)) => n.as_f64(),
        Cell::Val(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

impl K3Data {
    pub(crate) fn new() -> Self {
        let tables = forms::all_forms()
            .into_iter()
            .map(|def| (def.id.to_ascii_lowercase(), Table::new(Arc::new(def))))
            .collect();
        Self {
            tables,
            generation: crate::generation::next(),
            next_id: 100_001,
            next_entry_id: 100_001,
            attachments: HashMap::new(),
            saves: HashMap::new(),
        }
    }

    /// The canonical `FormId` (look-up is case-insensitive, k3cloud.md §6).
    pub(crate) fn form_id(&self, form: &str) -> Option<&'static str> {
        self.tables
            .get(&form.trim().to_ascii_lowercase())
            .map(|t| t.def.id)
    }

    pub(crate) fn table(&self, form: &str) -> Option<&Table> {
        self.tables.get(&form.trim().to_ascii_lowercase())
    }

    /// A table to change; every change makes a new [`K3Data::generation`].
    pub(crate) fn table_mut(&mut self, form: &str) -> Option<&mut Table> {
        self.generation = crate::generation::next();
        self.tables.get_mut(&form.trim().to_ascii_lowercase())
    }

    /// The id of a usable (not forbidden) base-data record by number.
    pub(super) fn resolve_ref(&self, form: &str, number: &str) -> Option<i64> {
        let table = self.table(form)?;
        let bill = table.by_number(number)?;
        (bill.forbid != 'B').then_some(bill.id)
    }

    /// Name of a referenced record (for `FCustId.FName` and View).
    pub(crate) fn ref_name(&self, form: &str, id: i64) -> Option<&str> {
        self.table(form)?.bills.get(&id)?.name()
    }

    /// The value of `NeedReturnFields` of a saved bill.
    pub(crate) fn return_fields(&self, form: &str, id: i64, fields: &[String]) -> Value {
        let mut out = Map::new();
        let Some(table) = self.table(form) else {
            return Value::Object(out);
        };
        let Some(bill) = table.bills.get(&id) else {
            return Value::Object(out);
        };
        for field in fields {
            if let Some((entity, key)) = field.split_once('.') {
                let Some(entity) = table.entity_key(entity) else {
                    continue;
                };
                let rows: Vec<Value> = bill
                    .entries
                    .get(&entity)
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        let v = if key.eq_ignore_ascii_case("FEntryID") {
                            Value::from(e.id)
                        } else {
                            cell_json(e.fields.get(&canonical(&table.def, key)))
                        };
                        json!({ key: v })
                    })
                    .collect();
                out.insert(entity, Value::Array(rows));
            } else if field.eq_ignore_ascii_case(table.def.pk) || field.eq_ignore_ascii_case("FID")
            {
                out.insert(field.clone(), Value::from(bill.id));
            } else {
                out.insert(
                    field.clone(),
                    cell_json(bill.head.get(&canonical(&table.def, field))),
                );
            }
        }
        Value::Object(out)
    }

    /// Submit / Audit / `UnAudit` / `CancelAssign` / Delete / Forbid / Enable by Numbers or Ids.
    pub(crate) fn transition(
        &mut self,
        form: &str,
        op: StatusOp,
        numbers: &[String],
        ids: &[String],
        now_ms: i64,
    ) -> ResponseStatus {
        // Orders already shipped: their numbers, read before the table is borrowed to change.
        let shipped = if form.eq_ignore_ascii_case(forms::SALE_ORDER)
            && matches!(op, StatusOp::UnAudit | StatusOp::Delete)
        {
            self.outbound_order_numbers()
        } else {
            BTreeMap::new()
        };
        let Some(table) = self.table_mut(form) else {
            return ResponseStatus::failed(vec![unknown_form(form)], Vec::new());
        };
        let def = table.def.clone();
        let keys: Vec<(usize, Option<i64>, String)> = if ids.is_empty() {
            numbers
                .iter()
                .enumerate()
                .map(|(i, n)| (i, table.id_by_number(n), n.clone()))
                .collect()
        } else {
            ids.iter()
                .enumerate()
                .map(|(i, s)| {
                    let id = s
                        .parse::<i64>()
                        .ok()
                        .filter(|id| table.bills.contains_key(id));
                    (i, id, s.clone())
                })
                .collect()
        };
        if keys.is_empty() {
            return ResponseStatus::failed(
                vec![Failure::new(
                    8,
                    None,
                    "请传入单据编码集合Numbers或单据内码集合Ids。",
                )],
                Vec::new(),
            );
        }
        // Third-party reports (responses/unaudit_two_numbers_success.json, k3cloud.md §5.3):
        // numbers that do not exist are skipped silently ("假成功"); only when none exists
        // does the call fail.
        if keys.iter().all(|(_, id, _)| id.is_none()) {
            let shown = keys
                .iter()
                .map(|(_, _, k)| k.as_str())
                .collect::<Vec<_>>()
                .join(",");
            return ResponseStatus::failed(
                vec![Failure::new(
                    10,
                    None,
                    format!("没有找到编码或内码为“{shown}”的{}数据。", def.name),
                )],
                Vec::new(),
            );
        }
        let mut errors = Vec::new();
        let mut success = Vec::new();
        let mut deleted = Vec::new();
        for (d_index, id, _) in keys {
            let Some(id) = id else { continue };
            let Some(bill) = table.bills.get_mut(&id) else {
                continue;
            };
            let fail = |reason: &str| {
                Failure::new(
                    11,
                    Some(""),
                    format!("单据编号为“{}”的{}，{reason}！", bill.number, def.name),
                )
                .at(d_index)
            };
            // Closing is for audited documents, and a closed one is reopened before anything
            // else (the reference names CloseBill/UnCloseBill only; the rules and wording are
            // ours).
            // An order with an outbound cannot go back: the outbound is deleted first (the
            // reference does not record the message; the wording is ours).
            let downstream = shipped.get(&bill.number);
            let outcome = match (op, bill.status) {
                (StatusOp::UnAudit | StatusOp::Delete, _) if downstream.is_some() => {
                    Err(fail(&format!(
                        "已经生成下游单据（销售出库单 {}），不允许{}",
                        downstream.map(|d| d.join("、")).unwrap_or_default(),
                        if op == StatusOp::Delete {
                            "删除"
                        } else {
                            "反审核"
                        }
                    )))
                }
                (StatusOp::Close, 'C') if bill.close == 'B' => Err(fail("单据已经关闭")),
                (StatusOp::Close, 'C') => {
                    bill.close = 'B';
                    Ok(None)
                }
                (StatusOp::Close, _) => Err(fail("单据未审核，不能关闭")),
                (StatusOp::UnClose, _) if bill.close == 'B' => {
                    bill.close = 'A';
                    Ok(None)
                }
                (StatusOp::UnClose, _) => Err(fail("单据未关闭，不能反关闭")),
                (StatusOp::UnAudit, 'C') if bill.close == 'B' => {
                    Err(fail("单据已经关闭，不能反审核，请先反关闭"))
                }
                (StatusOp::Submit, 'A' | 'D') => Ok(Some('B')),
                (StatusOp::Submit, 'Z') => Err(fail("暂存的单据不能提交，请先保存")),
                (StatusOp::Submit, 'B') => Err(fail("单据已经提交")),
                (StatusOp::Submit | StatusOp::Delete | StatusOp::CancelAssign, 'C') => {
                    Err(fail("单据已经审核"))
                }
                (StatusOp::Submit, _) => Err(fail("单据状态不允许提交")),
                (StatusOp::Audit, 'B') => Ok(Some('C')),
                (StatusOp::Audit, 'C') => Err(fail("单据已经审核")),
                (StatusOp::Audit, _) => Err(fail("单据不是审核中状态，不能审核")),
                (StatusOp::UnAudit, 'C') => Ok(Some('D')),
                (StatusOp::UnAudit, _) => Err(fail("单据未审核，不能反审核")),
                (StatusOp::CancelAssign, 'B') => Ok(Some('A')),
                (StatusOp::CancelAssign, _) => Err(fail("单据不是审核中状态，不能撤销")),
                (StatusOp::Delete, 'B') => Err(fail("单据正在审核中，不能删除")),
                (StatusOp::Delete, _) => {
                    deleted.push(id);
                    Ok(None)
                }
                (StatusOp::Forbid, _) => {
                    bill.forbid = 'B';
                    Ok(None)
                }
                (StatusOp::Enable, _) => {
                    bill.forbid = 'A';
                    Ok(None)
                }
                (StatusOp::NoOp, _) => Ok(None),
            };
            match outcome {
                Ok(new_status) => {
                    if let Some(s) = new_status {
                        bill.status = s;
                        bill.approve_ms = (s == 'C').then_some(now_ms);
                    }
                    bill.modify_ms = now_ms;
                    success.push(SuccessEntity {
                        id,
                        number: bill.number.clone(),
                        d_index,
                    });
                }
                Err(e) => errors.push(e),
            }
        }
        for id in deleted {
            if let Some(bill) = table.bills.remove(&id) {
                table.by_number.remove(&bill.number.to_ascii_lowercase());
            }
        }
        ResponseStatus::from_parts(errors, success)
    }

    /// Sales-order numbers the outbounds' lines come from (`FSoorDerno`), each with the
    /// outbounds' numbers.
    fn outbound_order_numbers(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let Some(table) = self.table(forms::OUTSTOCK) else {
            return out;
        };
        for bill in table.bills.values() {
            for line in bill.entries.values().flatten() {
                if let Some(Cell::Val(Value::String(order))) = line.fields.get("FSoorDerno") {
                    let outbounds = out.entry(order.clone()).or_default();
                    if !outbounds.contains(&bill.number) {
                        outbounds.push(bill.number.clone());
                    }
                }
            }
        }
        out
    }

    /// The bill as View shows it: ORM property names, references expanded, entries as arrays.
    pub(crate) fn view(&self, form: &str, bill: &Bill) -> Value {
        let Some(table) = self.table(form) else {
            return Value::Null;
        };
        let def = &table.def;
        let mut out = Map::new();
        out.insert("Id".into(), Value::from(bill.id));
        if def.base_data {
            out.insert("msterID".into(), Value::from(bill.id));
        }
        out.insert(
            "DocumentStatus".into(),
            Value::from(bill.status.to_string()),
        );
        out.insert("ForbidStatus".into(), Value::from(bill.forbid.to_string()));
        if !def.base_data {
            out.insert("CloseStatus".into(), Value::from(bill.close.to_string()));
        }
        let number_orm = if def.base_data { "Number" } else { "BillNo" };
        out.insert(number_orm.into(), Value::from(bill.number.clone()));
        out.insert(
            "CreateDate".into(),
            Value::from(k3_datetime(bill.create_ms)),
        );
        out.insert(
            "ModifyDate".into(),
            Value::from(k3_datetime(bill.modify_ms)),
        );
        out.insert(
            "ApproveDate".into(),
            bill.approve_ms
                .map_or(Value::Null, |ms| Value::from(k3_datetime(ms))),
        );
        for (key, cell) in &bill.head {
            if key.eq_ignore_ascii_case(def.number_key) {
                continue;
            }
            self.view_cell(def, key, cell, &mut out);
        }
        for (entity, rows) in &bill.entries {
            let rows: Vec<Value> = rows
                .iter()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("Id".into(), Value::from(e.id));
                    m.insert("Seq".into(), Value::from(e.seq));
                    for (key, cell) in &e.fields {
                        self.view_cell(def, key, cell, &mut m);
                    }
                    Value::Object(m)
                })
                .collect();
            out.insert(orm_name(entity), Value::Array(rows));
        }
        Value::Object(out)
    }

    fn view_cell(&self, def: &FormDef, key: &str, cell: &Cell, out: &mut Map<String, Value>) {
        let orm = orm_name(key);
        match cell {
            Cell::Val(v) if key.eq_ignore_ascii_case("FName") => {
                out.insert(orm, json!([{"Key": 2052, "Value": v}]));
            }
            Cell::Val(v) => {
                out.insert(orm, v.clone());
            }
            Cell::Ref { number, id } => {
                let target = match def.field(key).map(|f| f.ty) {
                    Some(FieldType::BaseData(t)) => Some(t),
                    _ => None,
                };
                let name = target.and_then(|t| self.ref_name(t, *id));
                out.insert(format!("{orm}_Id"), Value::from(*id));
                out.insert(
                    orm,
                    json!({"Id": id, "Number": number, "Name": [{"Key": 2052, "Value": name}]}),
                );
            }
        }
    }
}

/// `FCustId` → `CustId`: the ORM property names View answers with (an approximation: real
/// ORM names are per-field metadata and mostly, not always, follow this rule).
fn orm_name(key: &str) -> String {
    let mut chars = key.chars();
    match (chars.next(), chars.clone().next()) {
        (Some('F'), Some(c)) if c.is_ascii_uppercase() => chars.collect(),
        _ => key.to_string(),
    }
}

fn canonical(def: &FormDef, key: &str) -> String {
    def.field(key)
        .map_or_else(|| key.to_string(), |f| f.key.to_string())
}

pub(crate) fn cell_json(cell: Option<&Cell>) -> Value {
    match cell {
        None => Value::Null,
        Some(Cell::Val(v)) => v.clone(),
        Some(Cell::Ref { number, .. }) => json!({"FNumber": number}),
    }
}

pub(crate) fn unknown_form(form: &str) -> Failure {
    // responses/query_errors_observed_live.json.
    Failure::new(
        4,
        None,
        format!("标识为“{form}”的业务对象不存在，或者被删除。"),
    )
}

/// Line amount = quantity × tax-inclusive price, header total = sum, when the client did not
/// send them (a small part of what the real bill plug-ins compute).
pub(super) fn compute_amounts(
    def: &FormDef,
    head: &mut BTreeMap<String, Cell>,
    entries: &mut BTreeMap<String, Vec<Entry>>,
) {
    let (entity, qty_key) = match def.id {
        forms::SALE_ORDER => ("FSaleOrderEntry", "FQty"),
        forms::OUTSTOCK => ("FEntity", "FRealQty"),
        _ => return,
    };
    let mut total = 0.0;
    for entry in entries.get_mut(entity).into_iter().flatten() {
        let qty = as_f64(entry.fields.get(qty_key));
        let price = as_f64(entry.fields.get("FTaxPrice"));
        if let (Some(q), Some(p)) = (qty, price) {
            let amount = (q * p * 100.0).round() / 100.0;
            entry
                .fields
                .insert("FAllAmount".into(), Cell::Val(Value::from(amount)));
        }
        total += as_f64(entry.fields.get("FAllAmount")).unwrap_or(0.0);
    }
    if def.id == forms::SALE_ORDER {
        head.insert(
            "FBillAllAmount".into(),
            Cell::Val(Value::from((total * 100.0).round() / 100.0)),
        );
    }
}

/// Push: a sales order (audited) becomes an outbound (`SAL_OUTSTOCK`) or a delivery notice.
pub(crate) fn push_model(
    data: &K3Data,
    source: &Bill,
    entry_ids: &[i64],
    target: &str,
) -> Map<String, Value> {
    let head = |key: &str| cell_json(source.head.get(key));
    let mut model = Map::new();
    let lines: Vec<&Entry> = source
        .entries
        .get("FSaleOrderEntry")
        .into_iter()
        .flatten()
        .filter(|e| entry_ids.is_empty() || entry_ids.contains(&e.id))
        .collect();
    let (customer_key, entity, qty_key, material_key, org_key) = if target == forms::OUTSTOCK {
        (
            "FCustomerID",
            "FEntity",
            "FRealQty",
            "FMaterialID",
            "FStockOrgId",
        )
    } else {
        (
            "FCustomerID",
            "FEntity",
            "FQty",
            "FMaterialID",
            "FDeliveryOrgID",
        )
    };
    model.insert(customer_key.into(), head("FCustId"));
    model.insert("FSaleOrgId".into(), head("FSaleOrgId"));
    model.insert(org_key.into(), head("FSaleOrgId"));
    if source.head.contains_key("FSalerId") {
        model.insert("FSalesManID".into(), head("FSalerId"));
    }
    if source.head.contains_key("FSettleCurrId") {
        model.insert("FSettleCurrID".into(), head("FSettleCurrId"));
    }
    let _ = data;
    let rows: Vec<Value> = lines
        .iter()
        .map(|line| {
            let f = |key: &str| cell_json(line.fields.get(key));
            json!({
                material_key: f("FMaterialId"),
                qty_key: f("FQty"),
                "FTaxPrice": f("FTaxPrice"),
                "FSrcBillNo": source.number,
                "FSoorDerno": source.number,
                "FSOEntryId": line.id,
                "FEntity_Link": [{
                    "FEntity_Link_FRuleId": "SaleOrder-OutStock",
                    "FEntity_Link_FSTableName": "T_SAL_ORDERENTRY",
                    "FEntity_Link_FSBillId": source.id,
                    "FEntity_Link_FSId": line.id,
                }],
            })
        })
        .collect();
    model.insert(entity.into(), Value::Array(rows));
    model
}
