//! Form operations: the save family, the document workflow (Submit, Audit, …), View, Push,
//! Allocate.

mod allocate;
mod operation;
mod push;
mod save;
mod view;

#[cfg(test)]
pub(crate) use push::decode_push;
#[cfg(test)]
pub(crate) use save::decode_save;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result, SuccessEntity};
use crate::response::{Answer, ResponseStatus, RowResult, status_of_refusal, write_status};

pub use allocate::Allocate;
pub use operation::{Operation, OperationKind};
pub use push::{Push, PushResult};
pub use save::{BatchSave, BatchSaveResult, Save, SaveResult};
pub use view::{View, ViewResult};

/// The result of an operation on several documents (Submit, Audit, UnAudit, Delete, …).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OperationResult {
    /// One entry per requested number or id, in request order.
    pub rows: Vec<RowResult>,
    /// The server's status report.
    pub status: ResponseStatus,
    /// The whole answer.
    pub raw: Value,
}

impl OperationResult {
    /// True when the server confirmed every requested document.
    pub fn all_succeeded(&self) -> bool {
        self.rows.iter().all(RowResult::is_success)
    }

    /// The documents the server confirmed.
    pub fn succeeded(&self) -> impl Iterator<Item = &SuccessEntity> {
        self.rows.iter().filter_map(RowResult::entity)
    }
}

/// K3Cloud's spelling of booleans in `data`: the strings `"true"` and `"false"`.
pub(crate) fn flag(on: bool) -> Value {
    Value::String(if on { "true" } else { "false" }.to_owned())
}

/// Serializes a caller's model, insisting on a JSON object.
pub(crate) fn to_object(model: &impl Serialize, what: &str) -> Result<Value, String> {
    match serde_json::to_value(model) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(format!(
            "{what} must be a JSON object, got {}",
            fxk3_kernel::json::kind(&other)
        )),
        Err(e) => Err(format!("{what} cannot be serialized: {e}")),
    }
}

pub(crate) fn check_form_id(form_id: &str) -> Result<()> {
    if form_id.trim().is_empty() {
        return Err(Error::InvalidInput("form id is empty".into()));
    }
    Ok(())
}

/// `{"formid": …, "data": {…}}`, form A of the vendor SDK.
pub(crate) fn form_body(form_id: &str, data: Map<String, Value>) -> Value {
    let mut body = Map::new();
    body.insert("formid".into(), Value::String(form_id.to_owned()));
    body.insert("data".into(), Value::Object(data));
    Value::Object(body)
}

/// A successful write whose answer cannot be read: the write happened (or may have), so it is
/// reported as an unknown outcome rather than a failure that invites a resend.
pub(crate) fn written<T>(operation: &str, result: Result<T>) -> Result<T> {
    result.map_err(|e| match e {
        Error::Decode { .. } | Error::NotJson { .. } => Error::OutcomeUnknown {
            operation: operation.to_owned(),
            source: Box::new(e),
        },
        other => other,
    })
}

/// Status and whole answer of a write on several rows, whether the server accepted every row or
/// refused some; a refusal of the whole call stays an error.
pub(crate) fn multi_row_outcome(
    operation: &str,
    result: Result<Answer>,
) -> Result<(ResponseStatus, Value)> {
    match result {
        Ok(answer) => {
            let raw = written(operation, answer.into_value())?;
            let status = written(operation, write_status(&raw))?;
            Ok((status, raw))
        }
        Err(Error::Business(b)) => {
            let raw = serde_json::from_str(&b.raw).unwrap_or(Value::Null);
            Ok((status_of_refusal(b)?, raw))
        }
        Err(e) => Err(e),
    }
}
