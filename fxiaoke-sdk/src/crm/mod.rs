//! CRM data: get, create (with details), update, invalid, delete, recover, change owner,
//! find one. Standard objects go to `/cgi/crm/v2/data/*`, custom objects (API name ending in
//! `__c`) to `/cgi/crm/custom/v2/data/*`.

mod data;
pub(crate) use data::WriteAnswer;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::de;
use crate::error::{Error, Result};
use crate::transport::OPERATOR_KEY;

pub use data::{ChangeOwner, Create, Delete, FindOne, Get, Invalid, InvalidMany, Recover, Update};

/// True for custom objects: their API names end in `__c` (`object_Hk2p1__c`).
///
/// ```
/// assert!(fxiaoke_sdk::is_custom_object("object_Hk2p1__c"));
/// assert!(!fxiaoke_sdk::is_custom_object("AccountObj"));
/// ```
pub fn is_custom_object(object_api_name: &str) -> bool {
    object_api_name.ends_with("__c")
}

/// `…/data/<op>` for the object's family.
pub(crate) fn data_path(object: &str, op: &str) -> String {
    if is_custom_object(object) {
        format!("/cgi/crm/custom/v2/data/{op}")
    } else {
        format!("/cgi/crm/v2/data/{op}")
    }
}

/// Rejects an empty or malformed object API name before anything is sent.
pub(crate) fn check_object(object: &str) -> Result<()> {
    if object.trim().is_empty() {
        return Err(Error::InvalidInput(
            "object API name (dataObjectApiName) is empty".into(),
        ));
    }
    if !object
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::InvalidInput(format!(
            "`{object}` is not an object API name (letters, digits and `_` only)"
        )));
    }
    Ok(())
}

pub(crate) fn check_id(id: &str, what: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(Error::InvalidInput(format!("{what} is empty")));
    }
    Ok(())
}

/// What every CRM builder has: the client, the object, the operator override and top-level
/// options.
#[derive(Debug, Clone)]
pub(crate) struct Base<'c> {
    pub(crate) client: &'c Client,
    pub(crate) object: String,
    pub(crate) operator: Option<String>,
    /// Top-level keys (`triggerWorkFlow`, …) in the order they were set.
    pub(crate) top: Map<String, Value>,
}

impl<'c> Base<'c> {
    pub(crate) fn new(client: &'c Client, object: String) -> Self {
        Base {
            client,
            object,
            operator: None,
            top: Map::new(),
        }
    }

    /// `{…top, "data": data}` with the operator override, if any.
    pub(crate) fn body(&self, data: Map<String, Value>) -> Map<String, Value> {
        let mut body = Map::new();
        if let Some(op) = &self.operator {
            body.insert(OPERATOR_KEY.into(), op.clone().into());
        }
        body.extend(self.top.clone());
        body.insert("data".into(), Value::Object(data));
        body
    }
}

/// What a write answered: the new record's id (create) and the trace id.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WriteResult {
    /// `dataId`: the new record's `_id` (create). Custom-object creates may leave it out.
    pub data_id: Option<String>,
    /// `traceId`, to quote to Fxiaoke support.
    pub trace_id: Option<String>,
    /// Any other top-level key of the answer except the envelope's (for example detail ids
    /// when asked for with `include_detail_ids`, whose shape is not documented).
    pub extra: Map<String, Value>,
}

impl WriteResult {
    /// The answer object, envelope keys dropped; `Err` names a key that is not text.
    pub(crate) fn from_answer(mut extra: Map<String, Value>) -> Result<Self, String> {
        let mut text = |key: &str| match extra.remove(key) {
            None => Ok(None),
            Some(v) if de::is_blank(&v) => Ok(None),
            Some(v) => de::scalar_to_string(&v)
                .map(Some)
                .ok_or_else(|| format!("`{key}` is not text")),
        };
        let data_id = text("dataId")?;
        let trace_id = text("traceId")?;
        for k in ["errorCode", "errorMessage", "errorDescription"] {
            extra.remove(k);
        }
        Ok(WriteResult {
            data_id,
            trace_id,
            extra,
        })
    }
}

impl<'de> Deserialize<'de> for WriteResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        WriteResult::from_answer(Map::<String, Value>::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// A caller's record as a JSON object, or why it is not one.
pub(crate) fn to_object(record: &impl Serialize, what: &str) -> Result<Map<String, Value>, String> {
    match serde_json::to_value(record) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "{what} must be a JSON object, got {}",
            fxk3_kernel::json::kind(&other)
        )),
        Err(e) => Err(format!("{what} cannot be serialized: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_by_family() {
        assert_eq!(data_path("AccountObj", "query"), "/cgi/crm/v2/data/query");
        assert_eq!(
            data_path("object_Hk2p1__c", "create"),
            "/cgi/crm/custom/v2/data/create"
        );
    }

    #[test]
    fn object_names_are_checked() {
        assert!(check_object("SalesOrderObj").is_ok());
        assert!(check_object("object_Hk2p1__c").is_ok());
        for bad in ["", " ", "Account Obj", "../x", "a/b"] {
            assert!(check_object(bad).is_err(), "{bad}");
        }
    }
}
