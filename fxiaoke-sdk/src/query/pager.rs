//! Walking every matching row, past the 10,000-row offset cap.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Filter, MAX_OFFSET, Order, Query};
use crate::error::{Error, Result};
use crate::response::decode_value;

const ID: &str = "_id";

/// How the [`Pager`] moves from page to page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PagingMode {
    /// A keyset jump on every page (`offset` always 0): each page continues from the last row
    /// read, so where the walk is depends on row values, never on row counts. Every row that
    /// matches for the whole walk and keeps its order value is yielded exactly once, however
    /// other rows change, arrive or leave the filter meanwhile. The default. When ties on the
    /// order field are common, the server returns the rows tied with the last row again and
    /// they are dropped here: a few more calls than [`PagingMode::OffsetThenKeyset`].
    #[default]
    Keyset,
    /// Offset paging (`offset` 0, `limit`, 2·`limit`, …) while `offset + limit` stays within
    /// 10,000, then a keyset jump from the last row read, then offset paging again — the
    /// vendor's documented way past the cap, and the fewest calls. **It can skip rows**: a row
    /// that leaves the filter or moves to the end (an edit, when ordered by
    /// `last_modified_time`) behind the walk's position shifts every later row one offset back,
    /// and the row at the page boundary is never returned. Use it only on data that holds
    /// still during the walk.
    OffsetThenKeyset,
}

/// Walks every row of a [`Query`], page by page, whatever the count, each row at most once.
///
/// The order is made total: by the query's order field (at most one) and then `_id`, or by
/// `_id` alone. In the default [`PagingMode::Keyset`] every page continues from the last row
/// read, with `offset` 0 (so the 10,000-row offset cap never applies): a keyset condition on
/// the order field (`GTE`, dropping the rows already passed among equal values; or `_id GT id`
/// when ordered by `_id` alone). A run of more than a page of rows with equal order values is
/// read by `_id` within the value. The walk ends on a page shorter than the limit; `total` is
/// never trusted (it is 0 unless counted).
///
/// What a walk guarantees while others edit the data:
///
/// - A row that matches the filter for the whole walk and keeps its order value is yielded
///   **exactly once**, whatever other rows do meanwhile (change their order value, arrive,
///   leave the filter).
/// - **No row is yielded twice.** The pager remembers the `_id` of every row it yielded (some
///   50 bytes a row). Ordered by `last_modified_time`, a row edited after it was read moves
///   past the walk's position and the server returns it again: that copy is dropped and its
///   `_id` listed in [`Pager::repeated_ids`]. Its newer version has a time later than the start
///   of the walk, so the next incremental read from the walk's *start* time sees it (a
///   checkpoint taken as the largest time yielded may be past it).
/// - A row edited before it was read is yielded once, as its newer version, near the end.
///   Ordered *descending* by a time that edits raise, an edited row moves behind the walk and
///   is missed if it was not read yet: order ascending for incremental reads.
///
/// [`PagingMode::OffsetThenKeyset`] keeps the no-repeat rule but can skip rows (see there).
///
/// The order field must have a value on every row (system times such as `last_modified_time`
/// and `create_time` always do) and `_id` values compare as text, as the vendor's deep-paging
/// example assumes.
#[derive(Debug)]
#[must_use = "a pager does nothing until you call .next_page()"]
pub struct Pager<'c, T> {
    query: Query<'c>,
    user_filters: Vec<Filter>,
    order: Option<Order>,
    mode: PagingMode,
    segment: Segment,
    offset: u32,
    setup_error: Option<String>,
    calls: u64,
    done: bool,
    /// `_id`s yielded in this walk.
    yielded: HashSet<Box<str>>,
    /// `_id`s the server returned again after they were yielded.
    repeated: Vec<String>,
    marker: PhantomData<fn() -> T>,
}

/// Where the current run of offset pages starts.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// From the first row.
    Start,
    /// From the row `(value, id)` on, that row included: order field `GTE value` (or
    /// `_id GT id` without an order field); rows up to and including it are dropped.
    From { value: Option<Value>, id: String },
    /// Rows with order value `value` and `_id` above `id`, by `_id`.
    Ties { value: Value, id: String },
    /// Rows with order value strictly beyond `value`.
    Past { value: Value },
}

impl<'c, T: DeserializeOwned> Pager<'c, T> {
    pub(super) fn new(mut query: Query<'c>) -> Self {
        let mut setup_error = None;
        let mut user_orders: Vec<Order> = std::mem::take(&mut query.orders)
            .into_iter()
            .filter(|o| o.field() != ID || !o.is_ascending())
            .collect();
        if user_orders.iter().any(|o| o.field() == ID) {
            setup_error = Some("the pager sorts by `_id` ascending only".to_owned());
        }
        if user_orders.len() > 1 {
            setup_error = Some(format!(
                "the pager sorts by one field (then `_id`); got {}",
                user_orders.len()
            ));
        }
        let order = user_orders.pop();
        if let Some(p) = &mut query.projection {
            for f in std::iter::once(ID).chain(order.as_ref().map(Order::field)) {
                if !p.iter().any(|x| x == f) {
                    p.push(f.to_owned());
                }
            }
        }
        let offset = query.offset;
        Pager {
            user_filters: std::mem::take(&mut query.filters),
            query,
            order,
            mode: PagingMode::default(),
            segment: Segment::Start,
            offset,
            setup_error,
            calls: 0,
            done: false,
            yielded: HashSet::new(),
            repeated: Vec::new(),
            marker: PhantomData,
        }
    }

    /// How pages follow each other (default [`PagingMode::Keyset`]).
    pub fn mode(mut self, mode: PagingMode) -> Self {
        self.mode = mode;
        self
    }

    /// Starts the walk after the row `(order value, _id)`: rows up to and including it in the
    /// pager's order are not read. This resumes a walk that stopped (a sync's cursor kept
    /// between runs). Without an order field `value` is ignored and the walk resumes after
    /// `_id`.
    pub fn start_after(mut self, value: impl Into<Value>, id: impl Into<String>) -> Self {
        // From the row's value on, dropping the rows of that value up to `_id`: one call when
        // few rows share the value (a resumed sync: times in milliseconds), where reading the
        // rest of the value by `_id` first always costs a second call. A page of nothing but
        // such rows turns to reading them by `_id` (see `advance`).
        let id = id.into();
        self.segment = match self.order {
            Some(_) => Segment::From {
                value: Some(value.into()),
                id,
            },
            None => Segment::From { value: None, id },
        };
        self.offset = 0;
        self
    }

    /// Whether every row has been read: the next [`Pager::next_page`] returns `None` without
    /// a call. After a page this says whether there may be more.
    pub fn is_done(&self) -> bool {
        self.done || self.setup_error.is_some()
    }

    /// Rows returned so far.
    pub fn rows_read(&self) -> u64 {
        self.yielded.len() as u64
    }

    /// Query calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// The `_id`s the server returned again after they had been yielded, in the order met:
    /// those copies were dropped. In [`PagingMode::Keyset`] these are rows whose order value
    /// moved past the walk's position after they were read (edited, when ordered by
    /// `last_modified_time`); [`Client::get`](crate::Client::get) reads their newer version
    /// if you need it before the next incremental read.
    pub fn repeated_ids(&self) -> &[String] {
        &self.repeated
    }

    /// The query for the current segment and offset.
    fn page_query(&self) -> Query<'c> {
        let mut q = self.query.clone();
        q.filters.clone_from(&self.user_filters);
        q.offset = self.offset;
        let id_order = Order::new(ID, true);
        let by_value = |field: &Order| vec![field.clone(), id_order.clone()];
        match (&self.segment, &self.order) {
            (Segment::Start, Some(o)) => q.orders = by_value(o),
            (Segment::From { value: Some(v), .. }, Some(o)) => {
                let op = if o.is_ascending() {
                    Filter::gte
                } else {
                    Filter::lte
                };
                q.filters.push(op(o.field(), v.clone()));
                q.orders = by_value(o);
            }
            (Segment::Ties { value, id }, Some(o)) => {
                q.filters.push(Filter::eq(o.field(), value.clone()));
                q.filters.push(Filter::gt(ID, id.clone()));
                q.orders = vec![id_order];
            }
            (Segment::Past { value }, Some(o)) => {
                let op = if o.is_ascending() {
                    Filter::gt
                } else {
                    Filter::lt
                };
                q.filters.push(op(o.field(), value.clone()));
                q.orders = by_value(o);
            }
            // By `_id` alone (Ties and Past exist only with an order field).
            (Segment::From { id, .. } | Segment::Ties { id, .. }, _) => {
                q.filters.push(Filter::gt(ID, id.clone()));
                q.orders = vec![id_order];
            }
            (Segment::Start | Segment::Past { .. }, None) => q.orders = vec![id_order],
        }
        q
    }

    /// The next page, or `None` when every row has been read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>> {
        if let Some(e) = &self.setup_error {
            return Err(Error::InvalidInput(e.clone()));
        }
        let limit = self.query.limit;
        loop {
            if self.done {
                return Ok(None);
            }
            let query = self.page_query();
            query.check()?;
            self.calls += 1;
            let rows = query.fetch::<Value>().await?.0.data_list;
            let full = rows.len() >= limit as usize;
            let mut keys = Vec::with_capacity(rows.len());
            for (i, row) in rows.iter().enumerate() {
                keys.push(self.key_of(row, i)?);
            }
            let last = keys.last().cloned();
            let mut kept = Vec::with_capacity(rows.len());
            let mut last_dropped = false;
            for (row, key) in rows.into_iter().zip(keys) {
                // Rows behind the anchor are the walk's own overlap; a yielded id beyond it is
                // a row that moved (or, with offsets, shifted) and came round again.
                last_dropped = self.already_read(&key);
                if last_dropped {
                    continue;
                }
                let id = key.1;
                if self.yielded.contains(id.as_str()) {
                    self.repeated.push(id);
                } else {
                    self.yielded.insert(id.into_boxed_str());
                    kept.push(row);
                }
            }
            let (segment, offset) = (self.segment.clone(), self.offset);
            self.advance(full, last, last_dropped);
            if kept.is_empty() {
                // A whole page of rows read before, and the walk would ask for the same page
                // again: a server that ignores the keyset condition would keep us here forever.
                if !self.done && self.segment == segment && self.offset == offset {
                    return Err(Error::Decode {
                        path: "data.dataList".into(),
                        message: "paging makes no progress: the server answered a page of rows \
                                  already read for the next page"
                            .into(),
                        snippet: String::new(),
                    });
                }
                continue;
            }
            let mut page = Vec::with_capacity(kept.len());
            for row in kept {
                page.push(decode_value(row)?);
            }
            return Ok(Some(page));
        }
    }

    /// `(order value, _id)` of a row.
    fn key_of(&self, row: &Value, i: usize) -> Result<(Option<Value>, String)> {
        let id = match row.get(ID) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(Error::Decode {
                    path: format!("data.dataList[{i}]._id"),
                    message: "the pager needs `_id` on every row".into(),
                    snippet: String::new(),
                });
            }
        };
        let value = match &self.order {
            None => None,
            Some(o) => match row.get(o.field()) {
                Some(v) if !v.is_null() => Some(v.clone()),
                _ => {
                    return Err(Error::Decode {
                        path: format!("data.dataList[{i}].{}", o.field()),
                        message: format!(
                            "the pager orders by `{}` and needs it on every row",
                            o.field()
                        ),
                        snippet: String::new(),
                    });
                }
            },
        };
        Ok((value, id))
    }

    /// Rows at or before the `From` anchor were read in an earlier segment.
    fn already_read(&self, (value, id): &(Option<Value>, String)) -> bool {
        match &self.segment {
            Segment::From {
                value: anchor_value,
                id: anchor_id,
            } => {
                let same_value = match (value, anchor_value) {
                    (Some(a), Some(b)) => same(a, b),
                    (None, None) => true,
                    _ => false,
                };
                same_value && id.as_str() <= anchor_id.as_str()
            }
            _ => false,
        }
    }

    /// Moves to the next page after one with `full` rows whose last key was `last`.
    fn advance(&mut self, full: bool, last: Option<(Option<Value>, String)>, last_dropped: bool) {
        let limit = self.query.limit;
        let Some((value, id)) = last.filter(|_| full) else {
            // A short page ends its segment.
            self.offset = 0;
            match std::mem::replace(&mut self.segment, Segment::Start) {
                Segment::Ties { value, .. } => self.segment = Segment::Past { value },
                _ => self.done = true,
            }
            return;
        };
        let next_offset = self.offset.saturating_add(limit);
        let room = next_offset.saturating_add(limit) <= MAX_OFFSET;
        if self.mode == PagingMode::OffsetThenKeyset && room {
            self.offset = next_offset;
            return;
        }
        self.offset = 0;
        self.segment = match (&self.segment, value) {
            // A whole page of rows already read: more than a page of equal values. Read the
            // rest of them by `_id`.
            (
                Segment::From {
                    value: Some(v),
                    id: anchor,
                },
                _,
            ) if last_dropped => Segment::Ties {
                value: v.clone(),
                id: anchor.clone(),
            },
            (Segment::Ties { value, .. }, _) => Segment::Ties {
                value: value.clone(),
                id,
            },
            (_, value) => Segment::From { value, id },
        };
    }

    /// Reads every remaining row.
    pub async fn collect_all(mut self) -> Result<Vec<T>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}

/// Equal order values: numbers by value (`1.0` = `1`), the rest as JSON.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .zip(y.as_f64())
            .is_some_and(|(x, y)| x.partial_cmp(&y) == Some(Ordering::Equal)),
        _ => a == b,
    }
}
