//! GetSysReportData: rows of a system report.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::Client;
use crate::de;
use crate::error::{Error, Result};
use crate::form::{check_form_id, flag, form_body};
use crate::query::{FilterItem, MAX_LIMIT};
use crate::response::decode_value_at;
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// A report query. Created by [`Client::report`].
///
/// The form id travels beside `data`, not inside it (inside, servers answer "表单标识为空").
///
/// ```no_run
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// let page = client
///     .report("PLN_MRPCalDetailRpt")
///     .fields(["FOrgId", "FOrgName", "FQty"])
///     .limit(2000)
///     .send()
///     .await?;
/// println!("{} rows", page.row_count);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a report query does nothing until you call .send()"]
pub struct ReportQuery<'c> {
    client: &'c Client,
    form_id: String,
    fields: Vec<String>,
    scheme_id: String,
    start_row: u64,
    limit: u32,
    filter: Vec<FilterItem>,
    model: Value,
    params: Map<String, Value>,
}

/// One page of report rows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ReportPage {
    /// `RowCount`: the total number of rows of the report.
    #[serde(rename = "RowCount", default, deserialize_with = "de::i64")]
    pub row_count: i64,
    /// `Rows`, cells in field-key order.
    #[serde(rename = "Rows", default)]
    pub rows: Vec<Vec<Value>>,
}

impl<'c> ReportQuery<'c> {
    pub(crate) fn new(client: &'c Client, form_id: impl Into<String>) -> Self {
        ReportQuery {
            client,
            form_id: form_id.into(),
            fields: Vec::new(),
            scheme_id: String::new(),
            start_row: 0,
            limit: crate::query::DEFAULT_LIMIT,
            filter: Vec::new(),
            model: Value::Object(Map::new()),
            params: Map::new(),
        }
    }

    /// `FieldKeys`.
    pub fn fields<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields.extend(keys.into_iter().map(Into::into));
        self
    }

    /// `SchemeId`: a saved filter scheme.
    pub fn scheme_id(mut self, id: impl Into<String>) -> Self {
        self.scheme_id = id.into();
        self
    }

    /// `StartRow`.
    pub fn start_row(mut self, row: u64) -> Self {
        self.start_row = row;
        self
    }

    /// `Limit` (1 to 10 000).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// `FilterString` conditions.
    pub fn filter(mut self, items: Vec<FilterItem>) -> Self {
        self.filter = items;
        self
    }

    /// `Model`: the report's filter-form fields.
    pub fn model(mut self, model: Value) -> Self {
        self.model = model;
        self
    }

    /// `IsVerifyBaseDataField`.
    pub fn verify_base_data_field(self, on: bool) -> Self {
        self.param("IsVerifyBaseDataField", flag(on))
    }

    /// Any other `data` key, sent as given.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Reads one page.
    pub async fn send(self) -> Result<ReportPage> {
        check_form_id(&self.form_id)?;
        if self.fields.is_empty() {
            return Err(Error::InvalidInput("no field keys given".into()));
        }
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(Error::InvalidInput(format!(
                "Limit {} is out of range 1..={MAX_LIMIT}",
                self.limit
            )));
        }
        let mut data = Map::new();
        data.insert("FieldKeys".into(), self.fields.join(",").into());
        data.insert("SchemeId".into(), self.scheme_id.into());
        data.insert("StartRow".into(), self.start_row.into());
        data.insert("Limit".into(), self.limit.into());
        data.extend(self.params);
        data.insert(
            "FilterString".into(),
            serde_json::to_value(&self.filter).map_err(|e| Error::InvalidInput(e.to_string()))?,
        );
        data.insert("Model".into(), self.model);
        let service = service::dynamic_form("GetSysReportData");
        let call = Call {
            service: &service,
            body: form_body(&self.form_id, data),
            idempotency: Idempotency::Idempotent,
            form_id: Some(&self.form_id),
        };
        let answer = self.client.transport.call(call).await?;
        let raw = answer.clone().into_value()?;
        let result = raw.get("Result").cloned().unwrap_or(Value::Null);
        decode_value_at(&result, "Result", &answer.bytes)
    }
}
