//! What a save refuses: a pk that names no bill, a submitted or audited bill, a number
//! another bill has, and (when validating) empty required fields.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::k3cloud::envelope::Failure;
use crate::k3cloud::forms::{FieldDef, FormDef};
use crate::k3cloud::store::{Cell, Entry, Table};

/// The bill a save changes, if any: named by its pk, or — in a partial update — by its
/// number. Refused when the pk names no bill, the bill is submitted or audited, or the
/// number is another bill's.
pub(super) fn target(
    table: &Table,
    def: &FormDef,
    pk: Option<i64>,
    number: Option<&str>,
    partial: bool,
    keep_ids: bool,
) -> Result<Option<i64>, Failure> {
    let existing = match pk {
        Some(id) if keep_ids && !table.bills.contains_key(&id) => None,
        Some(id) => {
            if !table.bills.contains_key(&id) {
                return Err(Failure::new(
                    10,
                    Some(def.pk),
                    format!("{}的内码“{id}”对应的数据不存在或已被删除。", def.name),
                ));
            }
            Some(id)
        }
        None if partial => number.and_then(|n| table.id_by_number(n)),
        None => None,
    };
    if let Some(bill) = existing.and_then(|id| table.bills.get(&id))
        && matches!(bill.status, 'B' | 'C')
    {
        return Err(Failure::new(
            11,
            Some(def.number_key),
            format!(
                "单据编号为“{}”的{}，{}状态的单据不允许修改！",
                bill.number,
                def.name,
                status_text(bill.status)
            ),
        ));
    }
    if let Some(number) = number
        && let Some(other) = table.id_by_number(number)
        && Some(other) != existing
    {
        // responses/save_error_duplicate_number.json.
        return Err(Failure::new(
            11,
            Some(def.number_key),
            format!("违反字段唯一性要求：编码唯一。[{number}]在当前系统中已经被使用。"),
        ));
    }
    Ok(existing)
}

/// A failure per required field left empty, header first, then entry rows in order.
pub(super) fn required_fields(
    def: &FormDef,
    head: &BTreeMap<String, Cell>,
    entries: &BTreeMap<String, Vec<Entry>>,
) -> Vec<Failure> {
    let mut errors = Vec::new();
    for field in def.fields.iter().filter(|f| f.required) {
        match field.entity {
            None => {
                if is_empty_cell(head.get(field.key)) {
                    errors.push(required(field, None));
                }
            }
            Some(entity) => {
                for (i, entry) in entries.get(entity).into_iter().flatten().enumerate() {
                    if is_empty_cell(entry.fields.get(field.key)) {
                        let name = def.entity(entity).map_or(entity, |e| e.name);
                        errors.push(required(field, Some((name, i + 1))));
                    }
                }
            }
        }
    }
    errors
}

fn is_empty_cell(cell: Option<&Cell>) -> bool {
    match cell {
        None | Some(Cell::Val(Value::Null)) => true,
        Some(Cell::Val(Value::String(s))) => s.trim().is_empty(),
        Some(Cell::Ref { number, .. }) => number.is_empty(),
        Some(Cell::Val(_)) => false,
    }
}

fn required(field: &FieldDef, entry: Option<(&str, usize)>) -> Failure {
    let message = match entry {
        // responses/save_error_required_field_old_server.json.
        Some((entity, row)) => format!("单据体“{entity}”第{row}行字段“{}”是必填项", field.name),
        None => format!("字段“{}”是必填项", field.name),
    };
    Failure::new(11, Some(field.key), message)
}

fn status_text(status: char) -> &'static str {
    match status {
        'Z' => "暂存",
        'A' => "创建",
        'B' => "审核中",
        'C' => "已审核",
        _ => "重新审核",
    }
}
