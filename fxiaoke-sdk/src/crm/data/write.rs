//! Create (with details) and update.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{object_data, write};
use crate::client::Client;
use crate::crm::{Base, WriteResult, check_id, check_object, data_path, to_object};
use crate::error::{Error, Result};

/// Create a record, with its detail records in the same call. Created by [`Client::create`].
///
/// ```no_run
/// use fxiaoke_sdk::types::{SalesOrderObj, SalesOrderProductObj, SystemFields};
///
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// let order = SalesOrderObj {
///     account_id: Some("5dc4cefa038eaa0001c0586f".into()),
///     order_amount: Some("250.00".into()),
///     system: SystemFields {
///         owner: vec!["FSUID_0123456789ABCDEF0123456789ABCDEF".into()],
///         ..Default::default()
///     },
///     ..Default::default()
/// };
/// let lines = [SalesOrderProductObj {
///     product_id: Some("5f0ff4299b09cb000129d9a1".into()),
///     quantity: Some("2".into()),
///     sales_price: Some("125.00".into()),
///     ..Default::default()
/// }];
/// let created = client
///     .create("SalesOrderObj")
///     .object_data(&order)
///     .details("SalesOrderProductObj", &lines)
///     .trigger_approval_flow(false)
///     .trigger_workflow(false)
///     .send()
///     .await?;
/// println!("order {:?}", created.data_id);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a create does nothing until you call .send()"]
pub struct Create<'c> {
    base: Base<'c>,
    fields: Option<Result<Map<String, Value>, String>>,
    details: Map<String, Value>,
    data: Map<String, Value>,
    option_info: Map<String, Value>,
    error: Option<String>,
}

impl<'c> Create<'c> {
    pub(crate) fn new(client: &'c Client, object: String) -> Self {
        Create {
            base: Base::new(client, object),
            fields: None,
            details: Map::new(),
            data: Map::new(),
            option_info: Map::new(),
            error: None,
        }
    }

    common!();
    flow_flags!();

    /// `object_data`: the record's fields (a typed model or a JSON object). The object's API
    /// name (`dataObjectApiName`) is added. Required.
    pub fn object_data(mut self, record: impl Serialize) -> Self {
        self.fields = Some(to_object(&record, "object_data"));
        self
    }

    /// `hasSpecifyTime`: keep the `create_time` / `last_modified_time` you send (migrations).
    pub fn specify_time(self, on: bool) -> Self {
        self.param("hasSpecifyTime", on)
    }

    /// `hasSpecifyCreatedBy`: keep the `created_by` you send.
    pub fn specify_created_by(self, on: bool) -> Self {
        self.param("hasSpecifyCreatedBy", on)
    }

    /// `includeDetailIds`: ask for the ids of the created detail records (their shape in the
    /// answer is not documented; they land in [`WriteResult::extra`]).
    pub fn include_detail_ids(self, on: bool) -> Self {
        self.param("includeDetailIds", on)
    }

    /// `checkDuplicateSearch` (custom objects): apply the duplicate check.
    pub fn check_duplicate_search(self, on: bool) -> Self {
        self.param("checkDuplicateSearch", on)
    }

    /// `optionInfo.isDuplicateSearch`: apply the object's duplicate-check (查重) rules;
    /// `false` skips them.
    pub fn duplicate_search(mut self, on: bool) -> Self {
        self.option_info
            .insert("isDuplicateSearch".into(), on.into());
        self
    }

    /// `optionInfo.skipFuncValidate`: skip the object's validation functions.
    pub fn skip_function_validation(mut self, on: bool) -> Self {
        self.option_info
            .insert("skipFuncValidate".into(), on.into());
        self
    }

    /// `optionInfo.useValidationRule`: apply the object's validation rules.
    pub fn use_validation_rule(mut self, on: bool) -> Self {
        self.option_info
            .insert("useValidationRule".into(), on.into());
        self
    }

    /// `data.fillOutOwner` (custom objects): fill the owner in from the operator.
    pub fn fill_out_owner(self, on: bool) -> Self {
        self.data_param("fillOutOwner", on)
    }

    /// `data.needConvertLookup` (custom objects): lookups are given by name (`<field>__r`)
    /// and converted by the server.
    pub fn need_convert_lookup(self, on: bool) -> Self {
        self.data_param("needConvertLookup", on)
    }

    /// The request body; takes the record out of the builder (`send` consumes it anyway, and
    /// a record may carry hundreds of fields).
    fn body(&mut self) -> Result<Map<String, Value>> {
        check_object(&self.base.object)?;
        let fields = match self.fields.take() {
            None => {
                return Err(Error::InvalidInput(
                    "create needs object_data (the record, with its dataObjectApiName)".into(),
                ));
            }
            Some(Err(e)) => return Err(Error::InvalidInput(e)),
            Some(Ok(f)) => f,
        };
        if let Some(e) = &self.error {
            return Err(Error::InvalidInput(e.clone()));
        }
        let mut data = Map::new();
        data.insert(
            "object_data".into(),
            Value::Object(object_data(&self.base.object, fields)?),
        );
        if !self.details.is_empty() {
            data.insert(
                "details".into(),
                Value::Object(std::mem::take(&mut self.details)),
            );
        }
        if !self.option_info.is_empty() {
            data.insert(
                "optionInfo".into(),
                Value::Object(std::mem::take(&mut self.option_info)),
            );
        }
        data.extend(std::mem::take(&mut self.data));
        Ok(self.base.body(data))
    }

    /// Creates the record. A create sent without a readable answer is
    /// [`Error::OutcomeUnknown`] and is not resent.
    pub async fn send(mut self) -> Result<WriteResult> {
        let body = self.body()?;
        let path = data_path(&self.base.object, "create");
        write(
            self.base.client,
            "crm.create",
            &path,
            &self.base.object,
            body,
        )
        .await
    }
}

/// Update fields of a record. Created by [`Client::update`].
///
/// Only the fields given change. The owner cannot be changed here: use
/// [`Client::change_owner`].
///
/// ```no_run
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// client
///     .update("AccountObj", "5dc4cefa038eaa0001c0586f")
///     .set("tel", "021-87654321")
///     .trigger_workflow(false)
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "an update does nothing until you call .send()"]
pub struct Update<'c> {
    base: Base<'c>,
    id: String,
    fields: Map<String, Value>,
    details: Map<String, Value>,
    data: Map<String, Value>,
    error: Option<String>,
}

impl<'c> Update<'c> {
    pub(crate) fn new(client: &'c Client, object: String, id: String) -> Self {
        Update {
            base: Base::new(client, object),
            id,
            fields: Map::new(),
            details: Map::new(),
            data: Map::new(),
            error: None,
        }
    }

    common!();
    flow_flags!();

    /// Sets one field.
    pub fn set(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(field.into(), value.into());
        self
    }

    /// Sets the fields of a typed model or JSON object (absent `Option`s of the typed
    /// models are left out, so they do not clear anything).
    pub fn fields(mut self, record: impl Serialize) -> Self {
        match to_object(&record, "fields") {
            Ok(map) => self.fields.extend(map),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// `data.skipDataStatusValidate` (custom objects): allow editing locked records.
    pub fn skip_data_status_validate(self, on: bool) -> Self {
        self.data_param("skipDataStatusValidate", on)
    }

    fn body(&self) -> Result<Map<String, Value>> {
        check_object(&self.base.object)?;
        check_id(&self.id, "record id (_id)")?;
        if let Some(e) = &self.error {
            return Err(Error::InvalidInput(e.clone()));
        }
        match self.fields.get("_id") {
            Some(Value::String(id)) if *id != self.id => {
                return Err(Error::InvalidInput(format!(
                    "the fields carry _id `{id}` but the update is for `{}`",
                    self.id
                )));
            }
            _ => {}
        }
        if self
            .fields
            .get("owner")
            .is_some_and(|o| !o.is_null() && o.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Err(Error::InvalidInput(
                "the owner cannot be changed by update; use change_owner".into(),
            ));
        }
        let mut fields = Map::with_capacity(self.fields.len() + 1);
        fields.insert("_id".into(), self.id.clone().into());
        fields.extend(
            self.fields
                .iter()
                .filter(|(k, _)| *k != "_id" && *k != "owner")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let mut data = self.data.clone();
        data.insert(
            "object_data".into(),
            Value::Object(object_data(&self.base.object, fields)?),
        );
        if !self.details.is_empty() {
            data.insert("details".into(), Value::Object(self.details.clone()));
        }
        Ok(self.base.body(data))
    }

    /// Updates the record. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        let body = self.body()?;
        let path = data_path(&self.base.object, "update");
        write(
            self.base.client,
            "crm.update",
            &path,
            &self.base.object,
            body,
        )
        .await
    }
}
