//! Read one record: by `_id`, or the first matching some filters.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::OBJECT_KEY;
use crate::client::Client;
use crate::crm::{Base, check_id, check_object, data_path};
use crate::error::{Endpoint, Error, Result};
use crate::query::{Filter, MAX_LIMIT};
use crate::response::Data;
use crate::transport::Call;

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
