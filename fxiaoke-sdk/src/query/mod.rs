//! CRM data queries: filters, orders, projection, one page or all of them.

mod filter;
mod pager;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::client::Client;
use crate::crm::{self, Base};
use crate::de;
use crate::error::{Endpoint, Error, Result};
use crate::response::Data;
use crate::transport::Call;

pub use filter::{Filter, Operator, Order};
pub use pager::{Pager, PagingMode};

/// The largest `limit` the current documentation allows (older sources say 200 or 1000;
/// we keep to the documented 100).
pub const MAX_LIMIT: u32 = 100;

/// The largest `offset` the server accepts (10013 beyond it).
pub const MAX_OFFSET: u32 = 10_000;

/// A query on one object. Created by [`Client::query`].
///
/// Rows decode into any `Deserialize` type: the typed models in [`types`](crate::types), your
/// own structs, or `serde_json::Value`.
///
/// ```no_run
/// use fxiaoke_sdk::{Filter, types::SalesOrderObj};
///
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// let since = 1_716_000_000_000_i64;
/// let mut pages = client
///     .query("SalesOrderObj")
///     .filter(Filter::gte("last_modified_time", since))
///     .order_by("last_modified_time", true)
///     .pages::<SalesOrderObj>();
/// while let Some(page) = pages.next_page().await? {
///     for order in page {
///         println!("{} {:?}", order.id, order.order_amount);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until you call .send() or .pages()"]
pub struct Query<'c> {
    pub(crate) base: Base<'c>,
    pub(crate) filters: Vec<Filter>,
    pub(crate) orders: Vec<Order>,
    pub(crate) projection: Option<Vec<String>>,
    pub(crate) limit: u32,
    pub(crate) offset: u32,
    pub(crate) total: Option<bool>,
    pub(crate) data_extra: Map<String, Value>,
}

impl<'c> Query<'c> {
    pub(crate) fn new(client: &'c Client, object: String) -> Self {
        Query {
            base: Base::new(client, object),
            filters: Vec::new(),
            orders: Vec::new(),
            projection: None,
            limit: MAX_LIMIT,
            offset: 0,
            total: None,
            data_extra: Map::new(),
        }
    }

    /// Adds a condition (conditions are AND-ed).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }

    /// Adds several conditions.
    pub fn filters(mut self, filters: impl IntoIterator<Item = Filter>) -> Self {
        self.filters.extend(filters);
        self
    }

    /// Adds a sort key. [`Query::send`] sends the orders as given; the pager sorts by at most
    /// one field and adds `_id` after it, so that the order is total.
    pub fn order_by(mut self, field: impl Into<String>, ascending: bool) -> Self {
        self.orders.push(Order::new(field, ascending));
        self
    }

    /// `fieldProjection`: the fields to return (all when not set).
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.projection
            .get_or_insert_with(Vec::new)
            .extend(fields.into_iter().map(Into::into));
        self
    }

    /// Rows per call, 1 to 100 (default 100).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// The first row, a multiple of the limit and at most 10,000 (default 0). The pager
    /// sets it itself.
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = offset;
        self
    }

    /// `find_explicit_total_num`: count the matching rows (`total`). Not sent unless set;
    /// counting costs the server time and the pager does not need it.
    pub fn find_explicit_total_num(mut self, count: bool) -> Self {
        self.total = Some(count);
        self
    }

    /// The operator (`currentOpenUserId`) for this call, instead of the client's default.
    pub fn operator(mut self, open_user_id: impl Into<String>) -> Self {
        self.base.operator = Some(open_user_id.into());
        self
    }

    /// Any other top-level body key (`includeNull`, `returnTotalNum`, …), sent as given.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.base.top.insert(key.into(), value.into());
        self
    }

    /// Any other key of `data` (`search_template_id`, …), sent as given.
    pub fn data_param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data_extra.insert(key.into(), value.into());
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        crm::check_object(&self.base.object)?;
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(Error::InvalidInput(format!(
                "limit {} is out of range 1..={MAX_LIMIT}",
                self.limit
            )));
        }
        if !self.offset.is_multiple_of(self.limit) {
            return Err(Error::InvalidInput(format!(
                "offset {} is not a multiple of the limit {}",
                self.offset, self.limit
            )));
        }
        if self.offset > MAX_OFFSET {
            return Err(Error::InvalidInput(format!(
                "offset {} is above {MAX_OFFSET}: page with .pages(), which switches to keyset paging",
                self.offset
            )));
        }
        if let Some(problem) = self.filters.iter().find_map(Filter::problem) {
            return Err(Error::InvalidInput(problem));
        }
        if self.orders.iter().any(|o| o.field().trim().is_empty()) {
            return Err(Error::InvalidInput(
                "an order has an empty field name".into(),
            ));
        }
        if let Some(p) = &self.projection
            && p.iter().any(|f| f.trim().is_empty())
        {
            return Err(Error::InvalidInput(
                "a projected field name is empty".into(),
            ));
        }
        Ok(())
    }

    /// The body: `data.{dataObjectApiName, search_query_info{limit, offset, filters, orders,
    /// fieldProjection}}`.
    pub(crate) fn body(&self) -> Map<String, Value> {
        let mut info = Map::new();
        info.insert("limit".into(), self.limit.into());
        info.insert("offset".into(), self.offset.into());
        info.insert("filters".into(), to_json(&self.filters));
        info.insert("orders".into(), to_json(&self.orders));
        if let Some(p) = &self.projection {
            info.insert("fieldProjection".into(), to_json(p));
        }
        let mut data = Map::new();
        data.insert("dataObjectApiName".into(), self.base.object.clone().into());
        if let Some(total) = self.total {
            data.insert("find_explicit_total_num".into(), total.into());
        }
        data.insert("search_query_info".into(), Value::Object(info));
        data.extend(self.data_extra.clone());
        self.base.body(data)
    }

    /// Sends the call and decodes `data`.
    pub(crate) async fn fetch<T: DeserializeOwned + Send>(
        &self,
    ) -> Result<(QueryData<T>, Option<String>)> {
        self.check()?;
        let path = crm::data_path(&self.base.object, "query");
        let call = Call::new("crm.query", &path, self.body())
            .endpoint(Endpoint::Query)
            .object(&self.base.object);
        self.base
            .client
            .transport
            .call_decoded(call, &Data::NEW)
            .await
    }

    /// Runs the query once (one page: `offset`, `limit`) and decodes the rows.
    pub async fn send<T: DeserializeOwned + Send>(&self) -> Result<QueryPage<T>> {
        let (data, trace_id) = self.fetch::<T>().await?;
        Ok(QueryPage {
            rows: data.data_list,
            offset: data.offset,
            limit: data.limit,
            total: data.total,
            trace_id,
        })
    }

    /// A pager that walks every matching row, past the 10,000-row offset cap (see [`Pager`]).
    pub fn pages<T: DeserializeOwned + Send>(self) -> Pager<'c, T> {
        Pager::new(self)
    }

    /// Reads every matching row (see [`Pager`]).
    pub async fn all<T: DeserializeOwned + Send>(self) -> Result<Vec<T>> {
        self.pages().collect_all().await
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    // Filters, orders and strings always serialize.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueryPage<T> {
    /// The rows (`data.dataList`).
    pub rows: Vec<T>,
    /// `data.offset`, as the server echoed it.
    pub offset: Option<i64>,
    /// `data.limit`, as the server echoed it.
    pub limit: Option<i64>,
    /// `data.total`: the number of matching rows — **0 unless totals were asked for**
    /// ([`Query::find_explicit_total_num`]); do not loop on it.
    pub total: Option<i64>,
    /// `traceId`.
    pub trace_id: Option<String>,
}

/// `data` of a query answer: `{"dataList": […], "offset", "limit", "total"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct QueryData<T> {
    #[serde(
        rename = "dataList",
        deserialize_with = "null_as_empty",
        bound(deserialize = "T: Deserialize<'de>")
    )]
    pub(crate) data_list: Vec<T>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub(crate) offset: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub(crate) limit: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub(crate) total: Option<i64>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}
