//! A model packet taken apart: header values, entry rows, and the ids and number it names.

use serde_json::{Map, Value};

use crate::k3cloud::forms::FormDef;
use crate::k3cloud::store::Table;
use crate::k3cloud::wire::{get_ci, scalar_string};

/// The parts of one `Model`.
pub(super) struct Packet {
    /// Header fields, sub-header objects flattened (`SubHeadEntity: {…}` → its fields).
    pub(super) head: Vec<(String, Value)>,
    /// Entry rows per entity key.
    pub(super) entities: Vec<(String, Vec<Map<String, Value>>)>,
    /// Entities the form does not declare, named by the packet (lists of objects).
    pub(super) new_entities: Vec<String>,
    /// The primary key, when the packet names a bill by it (0 counts as none).
    pub(super) pk: Option<i64>,
    /// The document number the packet sets, when not blank.
    pub(super) number: Option<String>,
}

impl Packet {
    pub(super) fn split(table: &Table, def: &FormDef, model: &Map<String, Value>) -> Packet {
        let mut head: Vec<(String, Value)> = Vec::new();
        let mut entities: Vec<(String, Vec<Map<String, Value>>)> = Vec::new();
        let mut new_entities: Vec<String> = Vec::new();
        for (key, value) in model {
            // The pk targets the bill; status and audit fields belong to the server (a
            // status in a direct insert is applied by the caller, not stored as a field).
            if key.eq_ignore_ascii_case(def.pk)
                || key.eq_ignore_ascii_case("FID")
                || FormDef::system_field(key).is_some()
            {
                continue;
            }
            if let Some(entity) = table.entity_key(key) {
                entities.push((entity, objects(value)));
                continue;
            }
            let declared = def.field(key);
            match value {
                Value::Array(rows)
                    if declared.is_none()
                        && rows.iter().all(Value::is_object)
                        && !rows.is_empty() =>
                {
                    new_entities.push(key.clone());
                    entities.push((key.clone(), objects(value)));
                }
                Value::Object(sub)
                    if declared.is_none() && (def.is_sub_head(key) || !looks_like_ref(sub)) =>
                {
                    for (k, v) in sub {
                        head.push((k.clone(), v.clone()));
                    }
                }
                _ => head.push((key.clone(), value.clone())),
            }
        }
        let number = head
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(def.number_key))
            .and_then(|(_, v)| scalar_string(v))
            .filter(|s| !s.trim().is_empty());
        Packet {
            head,
            entities,
            new_entities,
            pk: id_at(model, &[def.pk, "FID"]),
            number,
        }
    }
}

fn objects(value: &Value) -> Vec<Map<String, Value>> {
    value
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r.as_object().cloned()).collect())
        .unwrap_or_default()
}

/// A non-zero id under the first of `keys` the object has (keys matched case-insensitively).
fn id_at(object: &Map<String, Value>, keys: &[&str]) -> Option<i64> {
    let v = keys.iter().find_map(|k| get_ci(object, k))?;
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|id| *id != 0)
}

/// The `FEntryID` of an entry row.
pub(super) fn entry_id_of(row: &Map<String, Value>) -> Option<i64> {
    id_at(row, &["FEntryID", "FEntryId"])
}

/// `{"FNumber": "X"}` and the other one-key lookups of a base-data reference.
pub(super) fn looks_like_ref(m: &Map<String, Value>) -> bool {
    const LOOKUP: &[&str] = &[
        "FNumber",
        "FName",
        "FID",
        "FUserID",
        "FCODE",
        "FENTRYID",
        "FUSERNAME",
        "FSTAFFNUMBER",
        "FUserAccount",
    ];
    m.len() == 1
        && m.keys()
            .all(|k| LOOKUP.iter().any(|l| l.eq_ignore_ascii_case(k)))
        && m.values().all(|v| !v.is_object() && !v.is_array())
}
