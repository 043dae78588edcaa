//! The record operations, one builder each: creates and updates (`write`), reads (`read`),
//! and what follows a record's life (`lifecycle`). The builder methods they share are the
//! macros here.

use serde_json::{Map, Value};

use super::WriteResult;
use crate::client::Client;
use crate::de;
use crate::error::{Error, Result};
use crate::response::{Answer, Decoder};
use crate::transport::Call;

pub(super) const OBJECT_KEY: &str = "dataObjectApiName";

/// The builder methods every CRM call has.
macro_rules! common {
    () => {
        /// The operator (`currentOpenUserId`) for this call, instead of the client's default.
        pub fn operator(mut self, open_user_id: impl Into<String>) -> Self {
            self.base.operator = Some(open_user_id.into());
            self
        }

        /// Any other top-level body key, sent as given.
        pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
            self.base.top.insert(key.into(), value.into());
            self
        }
    };
}

/// The flow flags of create and update (top-level keys; the server's default for both flows
/// is **on**: API writes start approval and work flows unless told otherwise).
macro_rules! flow_flags {
    () => {
        /// `triggerWorkFlow`: run the object's work flows (server default true).
        pub fn trigger_workflow(self, on: bool) -> Self {
            self.param("triggerWorkFlow", on)
        }

        /// `triggerApprovalFlow`: start the object's approval flow (server default true).
        pub fn trigger_approval_flow(self, on: bool) -> Self {
            self.param("triggerApprovalFlow", on)
        }

        /// Any other key of `data`, sent as given.
        pub fn data_param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
            self.data.insert(key.into(), value.into());
            self
        }

        /// `details`: the detail records of one detail object (for a `SalesOrderObj`, its
        /// `SalesOrderProductObj` lines), each a JSON object. Rows need no link to the master:
        /// the server fills it.
        pub fn details<I, R>(mut self, detail_object: impl Into<String>, rows: I) -> Self
        where
            I: IntoIterator<Item = R>,
            R: Serialize,
        {
            let name = detail_object.into();
            let mut list = Vec::new();
            for (i, row) in rows.into_iter().enumerate() {
                match to_object(&row, &format!("detail row {i} of {name}")) {
                    Ok(map) => list.push(Value::Object(map)),
                    Err(e) => {
                        self.error.get_or_insert(e);
                    }
                }
            }
            if let Err(e) = check_object(&name) {
                self.error.get_or_insert(e.to_string());
            }
            self.details.insert(name, Value::Array(list));
            self
        }
    };
}

/// Sends a write and reads its answer; an answer that cannot be read means the outcome is
/// unknown.
pub(super) async fn write(
    client: &Client,
    operation: &'static str,
    path: &str,
    object: &str,
    body: Map<String, Value>,
) -> Result<WriteResult> {
    let call = Call::new(operation, path, body).write().object(object);
    client
        .transport
        .call_decoded(call, &WriteAnswer { operation })
        .await
}

/// A write's answer, decoded in one pass when it is a plain success. A success that does not
/// decode is an unknown outcome: the server did something, we cannot tell what.
pub(crate) struct WriteAnswer {
    pub(crate) operation: &'static str,
}

impl Decoder for WriteAnswer {
    type Output = WriteResult;

    fn fast(&self, status: u16, body: &[u8]) -> Option<(WriteResult, Option<String>)> {
        if status != 200 {
            return None;
        }
        let answer: Map<String, Value> = serde_json::from_slice(body).ok()?;
        if de::to_i64(answer.get("errorCode")?)? != 0 {
            return None;
        }
        let result = WriteResult::from_answer(answer).ok()?;
        let trace_id = result.trace_id.clone();
        Some((result, trace_id))
    }

    fn slow(&self, answer: Answer) -> Result<WriteResult> {
        answer
            .decode::<WriteResult>()
            .map_err(|e| Error::OutcomeUnknown {
                operation: self.operation.to_owned(),
                source: Box::new(e),
            })
    }
}

pub(super) fn object_data(object: &str, fields: Map<String, Value>) -> Result<Map<String, Value>> {
    match fields.get(OBJECT_KEY) {
        None => {}
        Some(Value::String(s)) if s == object => {}
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "the record says dataObjectApiName {other}, but the call is for `{object}`"
            )));
        }
    }
    let mut out = Map::with_capacity(fields.len() + 1);
    out.insert(OBJECT_KEY.into(), object.into());
    out.extend(fields.into_iter().filter(|(k, _)| k != OBJECT_KEY));
    Ok(out)
}

mod lifecycle;
mod read;
mod write;

pub use lifecycle::{ChangeOwner, Delete, Invalid, InvalidMany, Recover};
pub use read::{FindOne, Get};
pub use write::{Create, Update};
