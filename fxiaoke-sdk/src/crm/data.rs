//! The record operations, one builder each.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Base, WriteResult, check_id, check_object, data_path, to_object};
use crate::client::Client;
use crate::de;
use crate::error::{Endpoint, Error, Result};
use crate::query::{Filter, MAX_LIMIT};
use crate::response::{Answer, Data, Decoder};
use crate::transport::Call;

const OBJECT_KEY: &str = "dataObjectApiName";

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
async fn write(
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

fn object_data(object: &str, fields: Map<String, Value>) -> Result<Map<String, Value>> {
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

/// Read one record by `_id`. Created by [`Client::get`].
///
/// ```no_run
/// use fxiaoke_sdk::types::AccountObj;
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// let account: AccountObj = client.get("AccountObj", "5dc4cefa038eaa0001c0586f").send().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a get does nothing until you call .send()"]
pub struct Get<'c> {
    base: Base<'c>,
    id: String,
}

impl<'c> Get<'c> {
    pub(crate) fn new(client: &'c Client, object: String, id: String) -> Self {
        Get {
            base: Base::new(client, object),
            id,
        }
    }

    common!();

    /// Reads the record into `T`.
    pub async fn send<T: DeserializeOwned + Send>(self) -> Result<T> {
        check_object(&self.base.object)?;
        check_id(&self.id, "record id (objectDataId)")?;
        let mut data = Map::new();
        data.insert(OBJECT_KEY.into(), self.base.object.clone().into());
        data.insert("objectDataId".into(), self.id.clone().into());
        let path = data_path(&self.base.object, "get");
        let call = Call::new("crm.get", &path, self.base.body(data)).object(&self.base.object);
        let (record, _) = self
            .base
            .client
            .transport
            .call_decoded(call, &Data::NEW)
            .await?;
        Ok(record)
    }
}

/// The first record matching some filters (`/cgi/crm/custom/v2/data/findOne`, which serves
/// standard objects too). Created by [`Client::find_one`].
///
/// ```no_run
/// use fxiaoke_sdk::Filter;
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// let lead: Option<serde_json::Value> = client
///     .find_one("LeadsObj")
///     .filter(Filter::eq("email", "contact@acme.example"))
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a find does nothing until you call .send()"]
pub struct FindOne<'c> {
    base: Base<'c>,
    filters: Vec<Filter>,
    projection: Vec<String>,
    limit: u32,
}

impl<'c> FindOne<'c> {
    pub(crate) fn new(client: &'c Client, object: String) -> Self {
        FindOne {
            base: Base::new(client, object),
            filters: Vec::new(),
            projection: Vec::new(),
            limit: 10,
        }
    }

    common!();

    /// Adds a condition (conditions are AND-ed).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }

    /// `field_projection`: the fields to return (all when empty).
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.projection.extend(fields.into_iter().map(Into::into));
        self
    }

    /// `search_query_info.limit` (default 10, as the one client seen sends).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Finds the record (`data.objectData`), if any.
    pub async fn send<T: DeserializeOwned>(self) -> Result<Option<T>> {
        #[derive(serde::Deserialize)]
        struct Answer<T> {
            #[serde(default = "none")]
            data: Option<Found<T>>,
        }
        #[derive(serde::Deserialize)]
        struct Found<T> {
            #[serde(rename = "objectData", default = "none")]
            object_data: Option<T>,
        }
        fn none<T>() -> Option<T> {
            None
        }
        check_object(&self.base.object)?;
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(Error::InvalidInput(format!(
                "limit {} is out of range 1..={MAX_LIMIT}",
                self.limit
            )));
        }
        if let Some(problem) = self.filters.iter().find_map(Filter::problem) {
            return Err(Error::InvalidInput(problem));
        }
        let mut info = Map::new();
        info.insert("offset".into(), 0.into());
        info.insert("limit".into(), self.limit.into());
        info.insert(
            "filters".into(),
            serde_json::to_value(&self.filters).unwrap_or_default(),
        );
        let mut data = Map::new();
        data.insert(OBJECT_KEY.into(), self.base.object.clone().into());
        data.insert("search_query_info".into(), Value::Object(info));
        data.insert("field_projection".into(), self.projection.clone().into());
        let call = Call::new(
            "crm.find_one",
            "/cgi/crm/custom/v2/data/findOne",
            self.base.body(data),
        )
        .endpoint(Endpoint::Query)
        .object(&self.base.object);
        let answer = self.base.client.transport.call(call).await?;
        Ok(answer
            .decode::<Answer<T>>()?
            .data
            .and_then(|d| d.object_data))
    }
}

/// Invalidate (作废) one record: it moves to the recycle bin and can be recovered. Created by
/// [`Client::invalid`].
#[derive(Debug)]
#[must_use = "an invalidation does nothing until you call .send()"]
pub struct Invalid<'c> {
    base: Base<'c>,
    id: String,
}

impl<'c> Invalid<'c> {
    pub(crate) fn new(client: &'c Client, object: String, id: String) -> Self {
        Invalid {
            base: Base::new(client, object),
            id,
        }
    }

    common!();

    /// Invalidates the record. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        check_object(&self.base.object)?;
        check_id(&self.id, "record id (object_data_id)")?;
        let mut data = Map::new();
        data.insert(OBJECT_KEY.into(), self.base.object.clone().into());
        data.insert("object_data_id".into(), self.id.clone().into());
        let path = data_path(&self.base.object, "invalid");
        write(
            self.base.client,
            "crm.invalid",
            &path,
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}

/// The id-list operations: batch invalidate (custom objects), delete, recover.
macro_rules! id_list_op {
    ($name:ident, $what:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        #[must_use = "nothing happens until you call .send()"]
        pub struct $name<'c> {
            base: Base<'c>,
            ids: Vec<String>,
        }

        impl<'c> $name<'c> {
            pub(crate) fn new(client: &'c Client, object: String) -> Self {
                $name {
                    base: Base::new(client, object),
                    ids: Vec::new(),
                }
            }

            common!();

            /// Adds a record id.
            pub fn id(mut self, id: impl Into<String>) -> Self {
                self.ids.push(id.into());
                self
            }

            /// Adds record ids.
            pub fn ids<I, S>(mut self, ids: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                self.ids.extend(ids.into_iter().map(Into::into));
                self
            }

            fn data(&self) -> Result<Map<String, Value>> {
                check_object(&self.base.object)?;
                if self.ids.is_empty() {
                    return Err(Error::InvalidInput(concat!($what, " of no records").into()));
                }
                for id in &self.ids {
                    check_id(id, "a record id")?;
                }
                let mut data = Map::new();
                data.insert(OBJECT_KEY.into(), self.base.object.clone().into());
                data.insert("idList".into(), self.ids.clone().into());
                Ok(data)
            }
        }
    };
}

id_list_op!(
    Delete,
    "delete",
    "Delete invalidated records for good (records must be invalidated first). Created by [`Client::delete`].\n\n```no_run\n# async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {\nclient.invalid(\"AccountObj\", \"5dc4cefa038eaa0001c0586f\").send().await?;\nclient.delete(\"AccountObj\").id(\"5dc4cefa038eaa0001c0586f\").send().await?;\n# Ok(()) }\n```"
);
id_list_op!(
    Recover,
    "recover",
    "Bring invalidated records back. Created by [`Client::recover`]."
);
id_list_op!(
    InvalidMany,
    "invalidate",
    "Invalidate several records of a **custom** object at once (`/cgi/crm/custom/data/invalid`, the only batch form). Created by [`Client::invalid_many`]."
);

impl Delete<'_> {
    /// Deletes the records. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        let data = self.data()?;
        let path = data_path(&self.base.object, "delete");
        write(
            self.base.client,
            "crm.delete",
            &path,
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}

impl Recover<'_> {
    /// Recovers the records. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        let data = self.data()?;
        let path = data_path(&self.base.object, "recover");
        write(
            self.base.client,
            "crm.recover",
            &path,
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}

impl InvalidMany<'_> {
    /// Invalidates the records. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        if !super::is_custom_object(&self.base.object) {
            return Err(Error::InvalidInput(format!(
                "batch invalidation exists for custom objects (`…__c`) only; invalidate `{}` records one by one",
                self.base.object
            )));
        }
        let data = self.data()?;
        write(
            self.base.client,
            "crm.invalid_many",
            "/cgi/crm/custom/data/invalid",
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}

/// Give records new owners. Created by [`Client::change_owner`].
///
/// ```no_run
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// client
///     .change_owner("LeadsObj")
///     .record("5dc4cefa038eaa0001c0586f", ["FSUID_FEDCBA9876543210FEDCBA9876543210"])
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a change of owner does nothing until you call .send()"]
pub struct ChangeOwner<'c> {
    base: Base<'c>,
    records: Vec<(String, Vec<String>)>,
}

impl<'c> ChangeOwner<'c> {
    pub(crate) fn new(client: &'c Client, object: String) -> Self {
        ChangeOwner {
            base: Base::new(client, object),
            records: Vec::new(),
        }
    }

    common!();

    /// Gives record `id` the owners `owners` (a list, as the API wants, usually of one).
    pub fn record<I, S>(mut self, id: impl Into<String>, owners: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.records
            .push((id.into(), owners.into_iter().map(Into::into).collect()));
        self
    }

    /// Changes the owners. Never resent once it may have reached the server.
    pub async fn send(self) -> Result<WriteResult> {
        check_object(&self.base.object)?;
        if self.records.is_empty() {
            return Err(Error::InvalidInput("change of owner of no records".into()));
        }
        let mut list = Vec::with_capacity(self.records.len());
        for (id, owners) in &self.records {
            check_id(id, "a record id")?;
            if owners.is_empty() || owners.iter().any(|o| o.trim().is_empty()) {
                return Err(Error::InvalidInput(format!("no valid owner for `{id}`")));
            }
            list.push(serde_json::json!({"objectDataId": id, "ownerId": owners}));
        }
        let mut data = Map::new();
        data.insert(OBJECT_KEY.into(), self.base.object.clone().into());
        // Capital D, as the documentation and most clients send it.
        data.insert("Data".into(), Value::Array(list));
        let path = data_path(&self.base.object, "changeOwner");
        write(
            self.base.client,
            "crm.change_owner",
            &path,
            &self.base.object,
            self.base.body(data),
        )
        .await
    }
}
