//! View: read one document by number or id.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{check_form_id, flag, form_body};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::response::decode_value_at;
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// Read one document. Created by [`Client::view`].
///
/// The answer uses ORM property names (`Id`, `Number`, `DocumentStatus`, `CreateOrgId_Id`,
/// multilingual `Name: [{"Key": 2052, "Value": …}]`), not the field keys of queries.
///
/// ```no_run
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// let bill = client.view("BD_MATERIAL").number("MAT0001").send().await?;
/// println!("status {}", bill.document["DocumentStatus"]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a view does nothing until you call .send()"]
pub struct View<'c> {
    client: &'c Client,
    form_id: String,
    number: Option<String>,
    id: Option<String>,
    params: Map<String, Value>,
}

/// What View returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ViewResult {
    /// The document (`Result.Result`).
    pub document: Value,
    /// The whole answer.
    pub raw: Value,
}

impl ViewResult {
    /// Decodes the document into your own type. The path of a mismatch starts at the root of
    /// the answer (`Result.Result.FEntity[0].FQty`).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        decode_value_at(&self.document, "Result.Result", &[])
    }
}

impl<'c> View<'c> {
    pub(crate) fn new(client: &'c Client, form_id: impl Into<String>) -> Self {
        View {
            client,
            form_id: form_id.into(),
            number: None,
            id: None,
            params: Map::new(),
        }
    }

    /// The document number.
    pub fn number(mut self, number: impl Into<String>) -> Self {
        self.number = Some(number.into());
        self
    }

    /// The internal id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// `CreateOrgId`: the creating organisation's internal id.
    pub fn create_org_id(self, id: i64) -> Self {
        self.param("CreateOrgId", id)
    }

    /// `IsSortBySeq`: sort entry rows by their sequence.
    pub fn sort_by_seq(self, on: bool) -> Self {
        self.param("IsSortBySeq", flag(on))
    }

    /// Any other `data` key, sent as given.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Reads the document.
    pub async fn send(self) -> Result<ViewResult> {
        check_form_id(&self.form_id)?;
        if self.number.is_none() && self.id.is_none() {
            return Err(Error::InvalidInput("View: give a number or an id".into()));
        }
        let mut data = Map::new();
        if let Some(org) = self.params.get("CreateOrgId") {
            data.insert("CreateOrgId".into(), org.clone());
        }
        if let Some(number) = self.number {
            data.insert("Number".into(), number.into());
        }
        if let Some(id) = self.id {
            data.insert("Id".into(), id.into());
        }
        data.extend(self.params);
        let service = service::dynamic_form("View");
        let call = Call {
            service: &service,
            body: form_body(&self.form_id, data),
            idempotency: Idempotency::Idempotent,
            form_id: Some(&self.form_id),
        };
        let raw = self.client.transport.call(call).await?.into_value()?;
        let document = raw
            .get("Result")
            .and_then(|r| r.get("Result"))
            .cloned()
            .unwrap_or(Value::Null);
        Ok(ViewResult { document, raw })
    }
}
