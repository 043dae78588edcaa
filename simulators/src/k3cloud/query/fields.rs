//! Field keys of a query: how to read each (header, entry, reference sub-field, status) and the values read.

use std::borrow::Cow;

use serde_json::Value;

use crate::clock::{k3_date_key, k3_datetime, parse_k3_date};
use crate::k3cloud::envelope::Failure;
use crate::k3cloud::forms::FieldType;
use crate::k3cloud::store::{Bill, Cell, Entry, K3Data, Table};

/// How to read one field of a row.
#[derive(Clone, Debug)]
pub(super) enum Access {
    Id,
    Number,
    Name,
    Status,
    Forbid,
    Close,
    CreateDate,
    ModifyDate,
    ApproveDate,
    EntryId,
    EntrySeq,
    Head {
        key: String,
        ty: Option<FieldType>,
        sub: Sub,
    },
    Line {
        key: String,
        ty: Option<FieldType>,
        sub: Sub,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Sub {
    None,
    Number,
    Name,
    Id,
}

impl Access {
    pub(super) fn is_date(&self) -> bool {
        matches!(
            self,
            Access::CreateDate | Access::ModifyDate | Access::ApproveDate
        ) || matches!(
            self,
            Access::Head {
                ty: Some(FieldType::Date),
                ..
            } | Access::Line {
                ty: Some(FieldType::Date),
                ..
            }
        )
    }
}

pub(super) struct Resolver<'a> {
    pub(super) table: &'a Table,
    /// The entry entity the query expands over (one row per entry).
    pub(super) entity: Option<String>,
}

pub(super) fn unknown_field(key: &str) -> Failure {
    // responses/executebillquery_error_unknown_field.json.
    Failure::new(9, None, format!("元数据中标识为{key}的字段不存在"))
}

impl Resolver<'_> {
    pub(super) fn use_entity(&mut self, entity: String) -> Result<(), Failure> {
        match &self.entity {
            Some(e) if !e.eq_ignore_ascii_case(&entity) => Err(Failure::new(
                4,
                None,
                format!("sandbox: 一次查询只支持一个单据体（{e} 与 {entity}）"),
            )),
            _ => {
                self.entity = Some(entity);
                Ok(())
            }
        }
    }

    pub(super) fn resolve(&mut self, raw: &str) -> Result<Access, Failure> {
        let raw = raw.trim();
        let def = &self.table.def;
        let (key, sub) = match raw.split_once('.') {
            Some((k, s)) => {
                let sub = if s.eq_ignore_ascii_case("FNumber") {
                    Sub::Number
                } else if s.eq_ignore_ascii_case("FName") {
                    Sub::Name
                } else if s.eq_ignore_ascii_case("FID") || s.eq_ignore_ascii_case("Id") {
                    Sub::Id
                } else {
                    return Err(unknown_field(raw));
                };
                (k, sub)
            }
            None => (raw, Sub::None),
        };
        if key.is_empty() {
            return Err(unknown_field(raw));
        }
        if sub == Sub::None {
            if key.eq_ignore_ascii_case(def.pk) || key.eq_ignore_ascii_case("FID") {
                return Ok(Access::Id);
            }
            if key.eq_ignore_ascii_case(def.number_key) {
                return Ok(Access::Number);
            }
            if def.base_data && key.eq_ignore_ascii_case("FName") {
                return Ok(Access::Name);
            }
            match crate::k3cloud::forms::FormDef::system_field(key) {
                Some("FDocumentStatus") => return Ok(Access::Status),
                Some("FForbidStatus") => return Ok(Access::Forbid),
                Some("FCloseStatus") => return Ok(Access::Close),
                Some("FCreateDate") => return Ok(Access::CreateDate),
                Some("FModifyDate") => return Ok(Access::ModifyDate),
                Some("FApproveDate") => return Ok(Access::ApproveDate),
                _ => {}
            }
            // Entry pk / seq: `FEntryID`, `FSaleOrderEntry_FEntryID`, `FEntity_FSeq`.
            let (entity_part, tail) = match key.rsplit_once('_') {
                Some((e, t)) => (Some(e), t),
                None => (None, key),
            };
            if tail.eq_ignore_ascii_case("FEntryID") || tail.eq_ignore_ascii_case("FSeq") {
                let entity = match entity_part {
                    Some(e) => self.table.entity_key(e).ok_or_else(|| unknown_field(raw))?,
                    None => self
                        .entity
                        .clone()
                        .or_else(|| self.table.def.entities.first().map(|e| e.key.to_string()))
                        .ok_or_else(|| unknown_field(raw))?,
                };
                self.use_entity(entity)?;
                return Ok(if tail.eq_ignore_ascii_case("FSeq") {
                    Access::EntrySeq
                } else {
                    Access::EntryId
                });
            }
        }
        let declared = def.field(key);
        let (canonical, entity, ty) = match declared {
            Some(f) => (f.key.to_string(), f.entity.map(str::to_string), Some(f.ty)),
            None => match self.table.extra_fields.get(&key.to_ascii_lowercase()) {
                Some((c, e)) => (c.clone(), e.clone(), None),
                None => return Err(unknown_field(raw)),
            },
        };
        match entity {
            Some(entity) => {
                self.use_entity(entity)?;
                Ok(Access::Line {
                    key: canonical,
                    ty,
                    sub,
                })
            }
            None => Ok(Access::Head {
                key: canonical,
                ty,
                sub,
            }),
        }
    }
}

/// A field value of one row, borrowed from the store wherever it can be: filtering and
/// sorting thousands of rows then allocate nothing; only the rows of the page become JSON.
#[derive(Clone, Copy, Debug)]
pub(super) enum V<'a> {
    Null,
    Int(i64),
    Str(&'a str),
    Json(&'a Value),
    /// A system date (Unix ms), formatted only for output.
    Ms(i64),
    /// Text of a date field, normalised only for output.
    DateText(&'a str),
}

impl<'a> V<'a> {
    pub(super) fn into_json(self) -> Value {
        match self {
            V::Null => Value::Null,
            V::Int(i) => Value::from(i),
            V::Str(s) => Value::from(s),
            V::Json(v) => v.clone(),
            V::Ms(ms) => Value::from(k3_datetime(ms)),
            V::DateText(s) => Value::from(normalise_date(s).unwrap_or_else(|| s.to_string())),
        }
    }

    pub(super) fn is_null(self) -> bool {
        matches!(self, V::Null | V::Json(Value::Null))
    }

    /// The value as text, as `scalar_string` would make it of the JSON form.
    pub(super) fn text(self) -> Option<Cow<'a, str>> {
        match self {
            V::Null | V::Json(Value::Null | Value::Array(_) | Value::Object(_)) => None,
            V::Str(s) | V::DateText(s) => Some(Cow::Borrowed(s)),
            V::Json(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            V::Int(i) => Some(Cow::Owned(i.to_string())),
            V::Json(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            V::Json(Value::Bool(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            V::Ms(ms) => Some(Cow::Owned(k3_datetime(ms))),
        }
    }

    pub(super) fn number(self) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            V::Int(i) => Some(i as f64),
            V::Json(Value::Number(n)) => n.as_f64(),
            V::Json(Value::Bool(b)) => Some(f64::from(u8::from(*b))),
            V::Str(s) | V::DateText(s) => s.trim().parse().ok(),
            V::Json(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(super) fn is_number(self) -> bool {
        matches!(self, V::Int(_) | V::Json(Value::Number(_)))
    }

    pub(super) fn date_key(self) -> Option<i64> {
        match self {
            V::Ms(ms) => Some(k3_date_key(ms)),
            other => parse_k3_date(&other.text()?),
        }
    }
}

pub(super) fn status_str(status: char) -> &'static str {
    match status {
        'Z' => "Z",
        'A' => "A",
        'B' => "B",
        'C' => "C",
        _ => "D",
    }
}

pub(super) fn read<'a>(
    data: &'a K3Data,
    bill: &'a Bill,
    entry: Option<&'a Entry>,
    access: &Access,
) -> V<'a> {
    let cell_value = |cell: Option<&'a Cell>, ty: Option<FieldType>, sub: Sub| -> V<'a> {
        match cell {
            None => V::Null,
            Some(Cell::Val(v)) => match (ty, v) {
                (Some(FieldType::Date), Value::String(s)) => V::DateText(s),
                _ => V::Json(v),
            },
            Some(Cell::Ref { number, id }) => match sub {
                Sub::Number => V::Str(number),
                Sub::Id | Sub::None => V::Int(*id),
                Sub::Name => match ty {
                    Some(FieldType::BaseData(form)) => {
                        data.ref_name(form, *id).map_or(V::Null, V::Str)
                    }
                    _ => V::Null,
                },
            },
        }
    };
    match access {
        Access::Id => V::Int(bill.id),
        Access::Number => V::Str(&bill.number),
        Access::Name => bill.name().map_or(V::Null, V::Str),
        Access::Status => V::Str(status_str(bill.status)),
        Access::Forbid => V::Str(if bill.forbid == 'B' { "B" } else { "A" }),
        Access::Close => V::Str(if bill.close == 'B' { "B" } else { "A" }),
        Access::CreateDate => V::Ms(bill.create_ms),
        Access::ModifyDate => V::Ms(bill.modify_ms),
        Access::ApproveDate => bill.approve_ms.map_or(V::Null, V::Ms),
        Access::EntryId => entry.map_or(V::Null, |e| V::Int(e.id)),
        Access::EntrySeq => entry.map_or(V::Null, |e| V::Int(i64::try_from(e.seq).unwrap_or(0))),
        Access::Head { key, ty, sub } => cell_value(bill.head.get(key), *ty, *sub),
        Access::Line { key, ty, sub } => {
            cell_value(entry.and_then(|e| e.fields.get(key)), *ty, *sub)
        }
    }
}

pub(super) fn normalise_date(s: &str) -> Option<String> {
    let key = parse_k3_date(s)?;
    let (secs, ms) = (key / 1000, key % 1000);
    let (ymd, hms) = (secs / 1_000_000, secs % 1_000_000);
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        ymd / 10_000,
        (ymd / 100) % 100,
        ymd % 100,
        hms / 10_000,
        (hms / 100) % 100,
        hms % 100
    );
    if ms != 0 {
        text.push_str(format!(".{ms:03}").trim_end_matches('0'));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_normalise() {
        assert_eq!(
            normalise_date("2024-01-15 00:00:00").unwrap(),
            "2024-01-15T00:00:00"
        );
        assert_eq!(normalise_date("2024-01-15").unwrap(), "2024-01-15T00:00:00");
        assert_eq!(
            normalise_date("2024-01-15 10:11:12.120").unwrap(),
            "2024-01-15T10:11:12.12"
        );
    }
}
