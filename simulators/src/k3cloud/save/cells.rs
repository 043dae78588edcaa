//! Packet values to stored cells: base-data references resolved, undeclared fields noted.

use serde_json::Value;

use super::packet::looks_like_ref;
use crate::k3cloud::envelope::Failure;
use crate::k3cloud::forms::{FieldType, FormDef};
use crate::k3cloud::store::{Cell, K3Data, SaveOpts};
use crate::k3cloud::wire::scalar_string;

/// Converts the values of one save, collecting its errors and the undeclared fields it met.
pub(super) struct Cells<'a> {
    data: &'a K3Data,
    def: &'a FormDef,
    verify_base_data: bool,
    pub(super) errors: Vec<Failure>,
    /// Undeclared fields (key, entity) to remember when the save commits.
    pub(super) extra_fields: Vec<(String, Option<String>)>,
}

impl<'a> Cells<'a> {
    pub(super) fn new(data: &'a K3Data, def: &'a FormDef, opts: &SaveOpts) -> Self {
        Cells {
            data,
            def,
            verify_base_data: opts.verify_base_data,
            errors: Vec::new(),
            extra_fields: Vec::new(),
        }
    }

    /// The canonical key of `key` (in `entity`, or the header) and its cell; `None` empties it.
    pub(super) fn convert(
        &mut self,
        key: &str,
        value: &Value,
        entity: Option<&str>,
    ) -> (String, Option<Cell>) {
        let def = self.def;
        let field = def.field(key).filter(|f| f.entity == entity);
        let canonical = if let Some(f) = field {
            f.key.to_string()
        } else {
            let lower = key.to_ascii_lowercase();
            if let Some((c, _)) = self
                .data
                .table(def.id)
                .and_then(|t| t.extra_fields.get(&lower))
            {
                c.clone()
            } else {
                self.extra_fields
                    .push((key.to_string(), entity.map(str::to_string)));
                key.to_string()
            }
        };
        let cell = match (field.map(|f| f.ty), value) {
            (_, Value::Null) => None,
            (Some(FieldType::BaseData(target)), v) => match ref_lookup(v) {
                None => None,
                Some(number) => {
                    if let Some(id) = self.data.resolve_ref(target, &number) {
                        Some(Cell::Ref { number, id })
                    } else {
                        // NumberSearch finds nothing: the value stays empty and a required
                        // field then fails with 字段“…”是必填项 (the real behaviour seen in a
                        // public Java client's comment). IsVerifyBaseDataField reports it
                        // directly; that message is our wording.
                        if self.verify_base_data {
                            self.errors.push(Failure::new(
                                11,
                                Some(&canonical),
                                format!(
                                    "字段“{}”的值“{number}”在系统中不存在或未审核！",
                                    field.map_or("", |f| f.name)
                                ),
                            ));
                        }
                        None
                    }
                }
            },
            (Some(FieldType::LooseRef(_)), v) => {
                ref_lookup(v).map(|number| Cell::Ref { number, id: 0 })
            }
            (None, Value::Object(m)) if looks_like_ref(m) => {
                ref_lookup(value).map(|number| Cell::Ref { number, id: 0 })
            }
            (_, v) => Some(Cell::Val(v.clone())),
        };
        (canonical, cell)
    }
}

/// Reads the lookup value of a reference packet `{"FNumber": "X"}` (any lookup key).
fn ref_lookup(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => m.values().find_map(scalar_string),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| !s.trim().is_empty())
}
