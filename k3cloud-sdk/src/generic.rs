//! A plain `data` call, for the services whose parameters the reference does not document
//! (FlexSave, Disassembly, GroupSave, QueryGroupInfo, GroupDelete, SendMsg) and for SwitchOrg.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::form::{check_form_id, to_object, written};
use crate::response::{ResponseStatus, status_of, write_status};
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// Where a call puts its form id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormIdPlace {
    /// `{"formid": …, "data": {…}}`.
    Top,
    /// `{"data": {"FormId": …, …}}`.
    InData,
    /// No form id.
    None,
}

/// A call with free-form `data`. Created by [`Client::flex_save`], [`Client::disassembly`],
/// [`Client::group_save`], [`Client::query_group_info`], [`Client::group_delete`] and
/// [`Client::send_msg`].
///
/// ```no_run
/// use serde_json::json;
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// client
///     .group_save("BD_MATERIAL")
///     .param("GroupFieldKey", "")
///     .param("GroupPkId", 0)
///     .param("FParentId", 0)
///     .param("FNumber", "G01")
///     .param("FName", "分组1")
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a call does nothing until you call .send()"]
pub struct FormCall<'c> {
    client: &'c Client,
    method: &'static str,
    form_id: String,
    place: FormIdPlace,
    idempotency: Idempotency,
    data: Map<String, Value>,
    models: Option<Vec<Value>>,
    bad: Option<String>,
}

/// What a [`FormCall`] returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallResult {
    /// The server's status report (empty and successful when it sent none).
    pub status: ResponseStatus,
    /// The whole answer.
    pub raw: Value,
}

impl<'c> FormCall<'c> {
    pub(crate) fn new(
        client: &'c Client,
        method: &'static str,
        form_id: impl Into<String>,
        place: FormIdPlace,
        idempotency: Idempotency,
    ) -> Self {
        FormCall {
            client,
            method,
            form_id: form_id.into(),
            place,
            idempotency,
            data: Map::new(),
            models: None,
            bad: None,
        }
    }

    /// Sets a `data` key.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }

    /// Sets `Model` (FlexSave, Disassembly) — a JSON object.
    pub fn model(mut self, model: impl Serialize) -> Self {
        match to_object(&model, "model") {
            Ok(m) => {
                self.data.insert("Model".into(), m);
            }
            Err(e) => self.bad = Some(e),
        }
        self
    }

    /// Adds one entry to a `Model` array (SendMsg: one message each).
    pub fn push_model(mut self, model: impl Serialize) -> Self {
        match to_object(&model, "model") {
            Ok(m) => self.models.get_or_insert_with(Vec::new).push(m),
            Err(e) => self.bad = Some(e),
        }
        self
    }

    /// Sends the call.
    pub async fn send(self) -> Result<CallResult> {
        if let Some(bad) = self.bad {
            return Err(Error::InvalidInput(bad));
        }
        let mut data = Map::new();
        if self.place == FormIdPlace::InData {
            check_form_id(&self.form_id)?;
            data.insert("FormId".into(), self.form_id.clone().into());
        }
        data.extend(self.data);
        if let Some(models) = self.models {
            data.insert("Model".into(), Value::Array(models));
        }
        let body = if self.place == FormIdPlace::Top {
            check_form_id(&self.form_id)?;
            crate::form::form_body(&self.form_id, data)
        } else {
            let mut body = Map::new();
            body.insert("data".into(), Value::Object(data));
            Value::Object(body)
        };
        let service = service::dynamic_form(self.method);
        let call = Call {
            service: &service,
            body,
            idempotency: self.idempotency,
            form_id: (self.place != FormIdPlace::None).then_some(self.form_id.as_str()),
        };
        let answer = self.client.transport.call(call).await;
        let write = self.idempotency == Idempotency::NonIdempotent;
        let decode = |answer: Result<crate::response::Answer>| -> Result<CallResult> {
            let raw = answer?.into_value()?;
            let status = if write {
                write_status(&raw)?
            } else {
                status_of(&raw, &[])?
            };
            Ok(CallResult { status, raw })
        };
        if write {
            written(self.method, decode(answer))
        } else {
            decode(answer)
        }
    }
}
