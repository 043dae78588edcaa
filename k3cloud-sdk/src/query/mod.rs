//! ExecuteBillQuery and BillQuery: typed rows, filters, paging.

mod filter;
mod pager;
mod rows;

use std::marker::PhantomData;

use serde::de::{DeserializeOwned, DeserializeSeed};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::response::{Answer, snippet};
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

pub use filter::{Compare, Filter, FilterItem, FilterString, FilterValue};
pub use pager::Pager;

/// The largest `Limit` the current documentation allows (servers before patch 23.11 cap pages
/// at 2000 rows; the cap is configurable on the server).
pub const MAX_LIMIT: u32 = 10_000;

/// The default page size: safe on every server version.
pub const DEFAULT_LIMIT: u32 = 2_000;

/// Which query service to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// Rows as arrays in `FieldKeys` order (every server).
    ExecuteBillQuery,
    /// Rows as objects keyed by field key (servers from 2023-09).
    BillQuery,
}

/// A bill query. Created by [`Client::query`] (ExecuteBillQuery) and [`Client::bill_query`]
/// (BillQuery).
///
/// Rows decode into any `Deserialize` type: a struct matches cells to its fields by field key
/// (rename fields to keys such as `"FCustId.FNumber"`), a tuple or `Vec` takes them by
/// position, `serde_json::Value` gives an object per row.
///
/// ```no_run
/// use serde::Deserialize;
/// use k3cloud_sdk::Filter;
///
/// #[derive(Deserialize)]
/// struct Customer {
///     #[serde(rename = "FCUSTID")]
///     id: i64,
///     #[serde(rename = "FNumber")]
///     number: String,
///     #[serde(rename = "FName")]
///     name: String,
/// }
///
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// let mut pages = client
///     .query("BD_Customer")
///     .fields(["FCUSTID", "FNumber", "FName"])
///     .filter(Filter::eq("FDocumentStatus", "C"))
///     .order_by("FCUSTID ASC")
///     .pages::<Customer>();
/// while let Some(page) = pages.next_page().await? {
///     for c in page {
///         println!("{} {} {}", c.id, c.number, c.name);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until you call .send() or .pages()"]
pub struct Query<'c> {
    client: &'c Client,
    endpoint: Endpoint,
    form_id: String,
    fields: Vec<String>,
    filter: FilterString,
    filter_error: Option<String>,
    order: String,
    start_row: u64,
    limit: u32,
    top_row_count: u64,
    sub_system_id: String,
    extra: Map<String, Value>,
}

impl<'c> Query<'c> {
    fn new(client: &'c Client, endpoint: Endpoint, form_id: impl Into<String>) -> Self {
        Query {
            client,
            endpoint,
            form_id: form_id.into(),
            fields: Vec::new(),
            filter: FilterString::default(),
            filter_error: None,
            order: String::new(),
            start_row: 0,
            limit: DEFAULT_LIMIT,
            top_row_count: 0,
            sub_system_id: String::new(),
            extra: Map::new(),
        }
    }

    pub(crate) fn execute_bill_query(client: &'c Client, form_id: impl Into<String>) -> Self {
        Query::new(client, Endpoint::ExecuteBillQuery, form_id)
    }

    pub(crate) fn bill_query(client: &'c Client, form_id: impl Into<String>) -> Self {
        Query::new(client, Endpoint::BillQuery, form_id)
    }

    /// `FieldKeys`: the fields to read, in order. Entry keys (`FSaleOrderEntry_FEntryID`),
    /// base-data sub-fields (`FCustId.FNumber`) and the bill key (`FID`) are all allowed.
    pub fn fields<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields.extend(keys.into_iter().map(Into::into));
        self
    }

    /// `FilterString`: text (`"FDocumentStatus = 'C'"`), a [`Filter`], or structured
    /// [`FilterItem`]s.
    pub fn filter(mut self, filter: impl IntoFilter) -> Self {
        let (filter, error) = filter.into_filter();
        self.filter = filter;
        self.filter_error = error;
        self
    }

    /// `OrderString`, e.g. `"FID ASC"`. Paging needs an order on a unique key to be stable.
    pub fn order_by(mut self, order: impl Into<String>) -> Self {
        self.order = order.into();
        self
    }

    /// `StartRow`: the 0-based first row.
    pub fn start_row(mut self, row: u64) -> Self {
        self.start_row = row;
        self
    }

    /// `Limit`: rows per call, 1 to 10 000 (default 2000; servers before 23.11 cap at 2000).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// `TopRowCount` (0 = no limit). Servers treat it as an absolute end row, so a value
    /// smaller than `StartRow + Limit` truncates the page; the pager leaves it at 0.
    pub fn top_row_count(mut self, rows: u64) -> Self {
        self.top_row_count = rows;
        self
    }

    /// `SubSystemId`.
    pub fn sub_system_id(mut self, id: impl Into<String>) -> Self {
        self.sub_system_id = id.into();
        self
    }

    /// Any other `data` key, sent as given.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    fn body(&self) -> Result<Value> {
        if self.form_id.trim().is_empty() {
            return Err(Error::InvalidInput("form id is empty".into()));
        }
        if self.fields.is_empty() {
            return Err(Error::InvalidInput("no field keys given".into()));
        }
        if let Some(bad) = self
            .fields
            .iter()
            .find(|f| f.trim().is_empty() || f.contains(','))
        {
            return Err(Error::InvalidInput(format!("invalid field key `{bad}`")));
        }
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(Error::InvalidInput(format!(
                "Limit {} is out of range 1..={MAX_LIMIT}",
                self.limit
            )));
        }
        if let Some(e) = &self.filter_error {
            return Err(Error::InvalidInput(format!("filter: {e}")));
        }
        let filter = match &self.filter {
            FilterString::Text(t) => Value::String(t.clone()),
            FilterString::Items(items) => serde_json::to_value(items)
                .map_err(|e| Error::InvalidInput(format!("filter: {e}")))?,
        };
        let mut data = Map::new();
        data.insert("FormId".into(), self.form_id.clone().into());
        data.insert("FieldKeys".into(), self.fields.join(",").into());
        data.insert("FilterString".into(), filter);
        data.insert("OrderString".into(), self.order.clone().into());
        data.insert("TopRowCount".into(), self.top_row_count.into());
        data.insert("StartRow".into(), self.start_row.into());
        data.insert("Limit".into(), self.limit.into());
        data.insert("SubSystemId".into(), self.sub_system_id.clone().into());
        data.extend(self.extra.clone());
        let mut body = Map::new();
        body.insert("data".into(), Value::Object(data));
        Ok(Value::Object(body))
    }

    /// Runs the query once (one page: `StartRow`, `Limit`) and decodes the rows.
    pub async fn send<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let method = match self.endpoint {
            Endpoint::ExecuteBillQuery => "ExecuteBillQuery",
            Endpoint::BillQuery => "BillQuery",
        };
        let service = service::dynamic_form(method);
        let call = Call {
            service: &service,
            body: self.body()?,
            idempotency: Idempotency::Idempotent,
            form_id: Some(&self.form_id),
        };
        let answer = self.client.transport.call(call).await?;
        match self.endpoint {
            Endpoint::ExecuteBillQuery => decode_rows(&answer, &self.fields),
            Endpoint::BillQuery => answer.decode(),
        }
    }

    /// A pager that walks every matching row, page by page (see [`Pager`]).
    pub fn pages<T: DeserializeOwned>(self) -> Pager<'c, T> {
        Pager::new(self)
    }
}

/// Row decoding with three made-up field keys, for the property tests.
#[cfg(test)]
pub(crate) fn decode_rows_for_tests(answer: &Answer) -> Result<Vec<Value>> {
    decode_rows(answer, &["A".to_owned(), "B".to_owned(), "C".to_owned()])
}

/// Decodes positional rows; on failure, decodes again with path tracking to say where.
fn decode_rows<T: DeserializeOwned>(answer: &Answer, keys: &[String]) -> Result<Vec<T>> {
    let fast = {
        let mut de = serde_json::Deserializer::from_slice(&answer.bytes);
        rows::Rows {
            keys,
            marker: PhantomData,
        }
        .deserialize(&mut de)
        .and_then(|rows| de.end().map(|()| rows))
    };
    let first = match fast {
        Ok(rows) => return Ok(rows),
        Err(e) => e,
    };
    if !first.is_data() {
        return Err(Error::NotJson {
            status: 200,
            snippet: snippet(&answer.bytes),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(&answer.bytes);
    let mut track = serde_path_to_error::Track::new();
    let traced = serde_path_to_error::Deserializer::new(&mut de, &mut track);
    let seed = rows::Rows::<T> {
        keys,
        marker: PhantomData,
    };
    let message = match seed.deserialize(traced) {
        Err(e) => e.to_string(),
        Ok(_) => first.to_string(),
    };
    Err(Error::Decode {
        path: row_path(&track.path(), keys),
        message,
        snippet: snippet(&answer.bytes),
    })
}

/// The tracked path `[row][cell]…` written with the cell's field key, `[row].FKey…`, as for
/// BillQuery rows; a cell beyond the field keys keeps its position.
fn row_path(path: &serde_path_to_error::Path, keys: &[String]) -> String {
    use serde_path_to_error::Segment;
    let segments: Vec<Segment> = path
        .iter()
        .enumerate()
        .map(|(i, segment)| match (i, segment) {
            (1, Segment::Seq { index }) => keys
                .get(*index)
                .map_or_else(|| segment.clone(), |key| Segment::Map { key: key.clone() }),
            _ => segment.clone(),
        })
        .collect();
    crate::response::join_path("", &segments)
}

/// What [`Query::filter`] accepts.
pub trait IntoFilter {
    /// The filter, and an error found while building it.
    fn into_filter(self) -> (FilterString, Option<String>);
}

impl IntoFilter for Filter {
    fn into_filter(self) -> (FilterString, Option<String>) {
        let error = self.error().map(str::to_owned);
        (FilterString::Text(self.to_string()), error)
    }
}

impl IntoFilter for &str {
    fn into_filter(self) -> (FilterString, Option<String>) {
        (FilterString::Text(self.to_owned()), None)
    }
}

impl IntoFilter for String {
    fn into_filter(self) -> (FilterString, Option<String>) {
        (FilterString::Text(self), None)
    }
}

impl IntoFilter for Vec<FilterItem> {
    fn into_filter(self) -> (FilterString, Option<String>) {
        (FilterString::Items(self), None)
    }
}

impl IntoFilter for FilterString {
    fn into_filter(self) -> (FilterString, Option<String>) {
        (self, None)
    }
}
