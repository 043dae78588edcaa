//! Save, Draft and BatchSave.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{check_form_id, flag, form_body, multi_row_outcome, to_object, written};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::response::{ResponseStatus, RowResult, attribute, write_status};
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// The options of the save family, as `data` keys in the order they were set.
macro_rules! save_options {
    () => {
        /// `NeedUpDateFields`: update only these fields (partial update). The model must then
        /// carry the internal id (`FID`, `FMATERIALID`, …) and, for entry fields, each row's
        /// `FEntryID`. Entry fields are named as `FSaleOrderEntry` plus the field key.
        pub fn need_update_fields<I, S>(self, fields: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            let list: Vec<Value> = fields
                .into_iter()
                .map(|f| Value::String(f.into()))
                .collect();
            self.param("NeedUpDateFields", list)
        }

        /// `NeedReturnFields`: fields to read back in `NeedReturnData` (entry fields as
        /// `FEntity.FKey`).
        pub fn need_return_fields<I, S>(self, fields: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            let list: Vec<Value> = fields
                .into_iter()
                .map(|f| Value::String(f.into()))
                .collect();
            self.param("NeedReturnFields", list)
        }

        /// `IsDeleteEntry`: whether entry rows missing from the model are **deleted**.
        ///
        /// The server's default is `true`: updating a document with only some of its entry rows
        /// silently deletes the others, and with them their links to source documents. Pass
        /// `false` for every partial update; this client never sends the key unless you call
        /// this, so the server default applies otherwise.
        pub fn is_delete_entry(self, delete_missing_rows: bool) -> Self {
            self.param("IsDeleteEntry", flag(delete_missing_rows))
        }

        /// `SubSystemId`.
        pub fn sub_system_id(self, id: impl Into<String>) -> Self {
            self.param("SubSystemId", id.into())
        }

        /// `IsVerifyBaseDataField`: check every base-data reference (server default false).
        pub fn verify_base_data_field(self, on: bool) -> Self {
            self.param("IsVerifyBaseDataField", flag(on))
        }

        /// `IsEntryBatchFill`: fill entries in batch (server default true).
        pub fn entry_batch_fill(self, on: bool) -> Self {
            self.param("IsEntryBatchFill", flag(on))
        }

        /// `ValidateFlag`: validate the data (server default true; false skips checks).
        pub fn validate_flag(self, on: bool) -> Self {
            self.param("ValidateFlag", flag(on))
        }

        /// `NumberSearch`: resolve base-data references by number (server default true).
        pub fn number_search(self, on: bool) -> Self {
            self.param("NumberSearch", flag(on))
        }

        /// `IsAutoAdjustField`: let the server reorder the model's fields (server default
        /// false). Field order can matter; try this when values are lost or overwritten.
        pub fn auto_adjust_field(self, on: bool) -> Self {
            self.param("IsAutoAdjustField", flag(on))
        }

        /// `InterationFlags` (sic): pre-answered interaction prompts, joined with `;`, e.g.
        /// `STK_InvCheckResult` to allow negative stock.
        pub fn interaction_flags<I, S>(self, flags: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: AsRef<str>,
        {
            let joined = flags
                .into_iter()
                .map(|f| f.as_ref().to_owned())
                .collect::<Vec<_>>()
                .join(";");
            self.param("InterationFlags", joined)
        }

        /// `IgnoreInterationFlag`: allow interaction prompts to be ignored (server default
        /// true).
        pub fn ignore_interaction_flag(self, on: bool) -> Self {
            self.param("IgnoreInterationFlag", flag(on))
        }

        /// `IsControlPrecision`: enforce the precision of amounts, prices and quantities
        /// (server default false).
        pub fn control_precision(self, on: bool) -> Self {
            self.param("IsControlPrecision", flag(on))
        }

        /// `ValidateRepeatJson`: reject a packet identical to one already submitted — the
        /// server's own duplicate protection.
        pub fn validate_repeat_json(self, on: bool) -> Self {
            self.param("ValidateRepeatJson", flag(on))
        }

        /// `IsAutoSubmitAndAudit`: submit and audit right after saving (server default false).
        pub fn auto_submit_and_audit(self, on: bool) -> Self {
            self.param("IsAutoSubmitAndAudit", flag(on))
        }

        /// `Creator`: a caller tag.
        pub fn creator(self, creator: impl Into<String>) -> Self {
            self.param("Creator", creator.into())
        }

        /// Any other `data` key, sent as given.
        pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
            self.options.insert(key.into(), value.into());
            self
        }
    };
}

/// Save or Draft one document. Created by [`Client::save`] and [`Client::draft`].
///
/// ```no_run
/// use serde_json::json;
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// let saved = client
///     .save("BD_Customer")
///     .model(json!({
///         "FCUSTID": 0,
///         "FCreateOrgId": {"FNumber": "100"},
///         "FUseOrgId": {"FNumber": "100"},
///         "FNumber": "CUST0001",
///         "FName": "示例客户",
///     }))
///     .need_return_fields(["FNumber"])
///     .send()
///     .await?;
/// println!("saved {} as id {}", saved.number, saved.id);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a save does nothing until you call .send()"]
pub struct Save<'c> {
    client: &'c Client,
    method: &'static str,
    form_id: String,
    model: Option<Result<Value, String>>,
    options: Map<String, Value>,
}

/// What a successful Save or Draft returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SaveResult {
    /// Internal id of the document (`Result.Id`), as text.
    pub id: String,
    /// Its number (`Result.Number`); empty for drafts of documents numbered on submit.
    pub number: String,
    /// The server's status report.
    pub status: ResponseStatus,
    /// `NeedReturnData`: the fields asked for with `need_return_fields`.
    pub need_return_data: Value,
    /// The whole answer.
    pub raw: Value,
}

impl<'c> Save<'c> {
    pub(crate) fn new(
        client: &'c Client,
        method: &'static str,
        form_id: impl Into<String>,
    ) -> Self {
        Save {
            client,
            method,
            form_id: form_id.into(),
            model: None,
            options: Map::new(),
        }
    }

    /// The document (`Model`): a `serde_json::Value` or any `Serialize` type that serializes
    /// to a JSON object. Keep the field order of the vendor's examples; it can matter.
    pub fn model(mut self, model: impl Serialize) -> Self {
        self.model = Some(to_object(&model, "model"));
        self
    }

    save_options!();

    /// Sends the document. A refusal is an [`Error::Business`] with every message; a call
    /// sent without a readable answer is an [`Error::OutcomeUnknown`] and is not resent.
    pub async fn send(self) -> Result<SaveResult> {
        check_form_id(&self.form_id)?;
        let model = match self.model {
            None => {
                return Err(Error::InvalidInput(format!(
                    "{}: no model given",
                    self.method
                )));
            }
            Some(m) => m.map_err(Error::InvalidInput)?,
        };
        warn_about_delete_entry(&self.options);
        let mut data = self.options;
        data.insert("Model".into(), model);
        let service = service::dynamic_form(self.method);
        let call = Call {
            service: &service,
            body: form_body(&self.form_id, data),
            idempotency: Idempotency::NonIdempotent,
            form_id: Some(&self.form_id),
        };
        let answer = self.client.transport.call(call).await?;
        written(self.method, decode_save(answer))
    }
}

pub(crate) fn decode_save(answer: crate::response::Answer) -> Result<SaveResult> {
    let raw = answer.into_value()?;
    let status = write_status(&raw)?;
    let result = raw.get("Result");
    let field = |key: &str| {
        result
            .and_then(|r| r.get(key))
            .and_then(crate::de::scalar_to_string)
            .filter(|s| !s.is_empty())
    };
    let first = status.success_entities.first();
    let id = field("Id")
        .or_else(|| first.map(|e| e.id.clone()))
        .unwrap_or_default();
    let number = field("Number")
        .or_else(|| first.map(|e| e.number.clone()))
        .unwrap_or_default();
    let need_return_data = result
        .and_then(|r| r.get("NeedReturnData"))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(SaveResult {
        id,
        number,
        status,
        need_return_data,
        raw,
    })
}

fn warn_about_delete_entry(options: &Map<String, Value>) {
    let partial = options
        .get("NeedUpDateFields")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if partial && !options.contains_key("IsDeleteEntry") {
        tracing::warn!(
            "partial update without is_delete_entry(false): the server default deletes entry rows \
             missing from the model"
        );
    }
}

/// Save several documents in one call. Created by [`Client::batch_save`].
///
/// Each input row gets its own [`RowResult`]: the server saves what it can and reports the
/// rest by `DIndex`.
///
/// ```no_run
/// use serde_json::json;
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// let result = client
///     .batch_save("BD_MATERIAL")
///     .models([
///         json!({"FMATERIALID": 0, "FNumber": "MAT0002", "FName": "物料2"}),
///         json!({"FMATERIALID": 0, "FNumber": "MAT0003", "FName": "物料3"}),
///     ])
///     .batch_count(2)
///     .send()
///     .await?;
/// for (i, row) in result.rows.iter().enumerate() {
///     println!("row {i}: {row:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a batch save does nothing until you call .send()"]
pub struct BatchSave<'c> {
    client: &'c Client,
    form_id: String,
    models: Vec<Value>,
    bad_model: Option<String>,
    options: Map<String, Value>,
    batch_count: Option<u32>,
    query_mode: bool,
}

/// What a BatchSave returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchSaveResult {
    /// One entry per input row, in input order.
    pub rows: Vec<RowResult>,
    /// The server's status report.
    pub status: ResponseStatus,
    /// `NeedReturnData`, one entry per saved document when the server sends it.
    pub need_return_data: Vec<Value>,
    /// The whole answer.
    pub raw: Value,
}

impl BatchSaveResult {
    /// True when every row was confirmed.
    pub fn all_succeeded(&self) -> bool {
        self.rows.iter().all(RowResult::is_success)
    }
}

impl<'c> BatchSave<'c> {
    pub(crate) fn new(client: &'c Client, form_id: impl Into<String>) -> Self {
        BatchSave {
            client,
            form_id: form_id.into(),
            models: Vec::new(),
            bad_model: None,
            options: Map::new(),
            batch_count: None,
            query_mode: false,
        }
    }

    /// Adds one document.
    pub fn model(mut self, model: impl Serialize) -> Self {
        let index = self.models.len();
        match to_object(&model, &format!("model {index}")) {
            Ok(v) => self.models.push(v),
            Err(e) => {
                self.bad_model.get_or_insert(e);
            }
        }
        self
    }

    /// Adds several documents.
    pub fn models<I, T>(self, models: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Serialize,
    {
        models.into_iter().fold(self, BatchSave::model)
    }

    /// `BatchCount`: how many server threads share the work (only useful when there are more
    /// documents than threads).
    pub fn batch_count(mut self, threads: u32) -> Self {
        self.batch_count = Some(threads);
        self
    }

    /// Uses the vendor's asynchronous ("QUERY") invocation: the server answers with a task id
    /// and the client polls `QueryAsyncResult` until the task completes (see
    /// [`ClientBuilder::async_polling`](crate::ClientBuilder::async_polling)).
    pub fn query_mode(mut self, on: bool) -> Self {
        self.query_mode = on;
        self
    }

    save_options!();

    /// Sends the documents.
    pub async fn send(self) -> Result<BatchSaveResult> {
        check_form_id(&self.form_id)?;
        if let Some(bad) = self.bad_model {
            return Err(Error::InvalidInput(bad));
        }
        if self.models.is_empty() {
            return Err(Error::InvalidInput("BatchSave: no models given".into()));
        }
        warn_about_delete_entry(&self.options);
        let rows = self.models.len();
        let mut data = self.options;
        if let Some(n) = self.batch_count {
            data.insert("BatchCount".into(), n.into());
        }
        data.insert("Model".into(), Value::Array(self.models));
        let mut body = form_body(&self.form_id, data);
        if self.query_mode
            && let Value::Object(map) = &mut body
        {
            map.insert("beginmethod".into(), "BeginQueryImpl".into());
            map.insert("querymethod".into(), "QueryAsyncResult".into());
        }
        let service = service::dynamic_form("BatchSave");
        let call = Call {
            service: &service,
            body,
            idempotency: Idempotency::NonIdempotent,
            form_id: Some(&self.form_id),
        };
        let answer = self.client.transport.call(call).await;
        let answer = if self.query_mode {
            match answer {
                Ok(task) => {
                    let task = written("BatchSave", task.into_value())?;
                    match crate::async_task::complete(self.client, task).await {
                        // The task ran and reported; or it is still running under its id.
                        Ok(a) => Ok(a),
                        Err(e @ (Error::Business(_) | Error::TaskPending { .. })) => Err(e),
                        // The save was started and its end was not seen.
                        Err(e) => Err(Error::OutcomeUnknown {
                            operation: "BatchSave".into(),
                            source: Box::new(e),
                        }),
                    }
                }
                Err(e) => Err(e),
            }
        } else {
            answer
        };
        let (status, raw) = multi_row_outcome("BatchSave", answer)?;
        let need_return_data = raw
            .get("Result")
            .and_then(|r| r.get("NeedReturnData"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(BatchSaveResult {
            rows: attribute(rows, &status),
            status,
            need_return_data,
            raw,
        })
    }
}
