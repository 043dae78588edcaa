//! A CRM object as a [`Source`]: records changed in the window, in `(last_modified_time, _id)`
//! order, with their detail lines and referenced records attached.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use fxiaoke_sdk::{Client, Filter, Query};
use serde_json::{Map, Value};

use super::convert::{connector_error, describe};
use crate::error::ConnectorError;
use crate::json::text;
use crate::metadata::ObjectDescription;
use crate::path::FieldPath;
use crate::record::{Position, Record};
use crate::source::{Page, PageRequest, PerWindow, Source, Window};

const MODIFIED: &str = "last_modified_time";
const ID: &str = "_id";
/// The largest page the Fxiaoke API serves.
const MAX_LIMIT: usize = 100;

/// Detail records to attach: rows of `object` whose `foreign_key` holds the record's `_id`,
/// as an array at `into`.
#[derive(Debug, Clone)]
struct Related {
    object: String,
    foreign_key: String,
    into: String,
}

/// Referenced records to attach: for the reference `field` of the rows at `at`, the
/// `fields` of the `object` it points to, as `<field>__ref`.
#[derive(Debug, Clone)]
struct Expand {
    at: String,
    field: String,
    object: String,
    fields: Vec<String>,
}

const LIFE_STATUS: &str = "life_status";
const INVALID: &str = "invalid";
/// Every `life_status` option: 未生效, 审核中, 正常, 变更中, 作废.
const LIFE_STATUSES: [&str; 5] = [
    "ineffective",
    "under_review",
    "normal",
    "in_change",
    INVALID,
];

/// Whether a CRM record is invalidated (作废).
fn is_invalid(record: &Map<String, Value>) -> bool {
    record.get(LIFE_STATUS).and_then(Value::as_str) == Some(INVALID)
}

/// How an [`ObjectSource`] reads one CRM object.
#[derive(Debug, Clone)]
pub struct ObjectSourceConfig {
    object: String,
    fields: Vec<String>,
    filters: Vec<Filter>,
    related: Vec<Related>,
    invalidated_details: bool,
    watch_details: bool,
    expand: Vec<Expand>,
}

impl ObjectSourceConfig {
    /// Reads `object` (`AccountObj`, `SalesOrderObj`, `object_x__c`).
    pub fn new(object: impl Into<String>) -> Self {
        Self {
            object: object.into(),
            fields: Vec::new(),
            filters: Vec::new(),
            related: Vec::new(),
            invalidated_details: false,
            watch_details: false,
            expand: Vec::new(),
        }
    }

    /// Reads only these fields (`fieldProjection`); `_id` and `last_modified_time` are always
    /// read. Default: every field.
    pub fn fields<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.fields.extend(fields.into_iter().map(Into::into));
        self
    }

    /// An extra condition every record must meet (for example
    /// `Filter::eq("life_status", "normal")`).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }

    /// Attaches detail records: the rows of `object` whose `foreign_key` is the record's `_id`,
    /// as an array at the dotted path `into` (`details.SalesOrderProductObj`, `contacts`).
    ///
    /// A change of a detail alone does not move the record's `last_modified_time` on every
    /// tenant: with [`watch_details`](Self::watch_details) it is read in the window it happened
    /// in, else with the record's next change.
    pub fn related(
        mut self,
        object: impl Into<String>,
        foreign_key: impl Into<String>,
        into: impl Into<String>,
    ) -> Self {
        self.related.push(Related {
            object: object.into(),
            foreign_key: foreign_key.into(),
            into: into.into(),
        });
        self
    }

    /// Reads the [related](Self::related) records of an invalidated (作废) record too: the CRM
    /// invalidates a record's details with it, and a flow that reads invalidated records (to
    /// cancel what they became) needs them whole. An invalidated detail under a record in
    /// force (a line deleted from an order) stays out.
    pub fn invalidated_details(mut self) -> Self {
        self.invalidated_details = true;
        self
    }

    /// Reads a record again when one of its [related](Self::related) records changed on its
    /// own (a contact's phone, an order line edited through the API): a record whose detail
    /// changed in the window comes with the window's records, at the detail's modification
    /// time. It costs one query per related object per window (more when that many details
    /// changed).
    pub fn watch_details(mut self) -> Self {
        self.watch_details = true;
        self
    }

    /// Attaches referenced records: for every row at the dotted path `at` (`""` for the
    /// record itself; arrays are walked), the `fields` of the `object` whose `_id` the
    /// reference `field` holds, as an object at `<field>__ref` (for example
    /// `product_id__ref.product_code` on each order line).
    pub fn expand<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        at: impl Into<String>,
        field: impl Into<String>,
        object: impl Into<String>,
        fields: I,
    ) -> Self {
        self.expand.push(Expand {
            at: at.into(),
            field: field.into(),
            object: object.into(),
            fields: fields.into_iter().map(Into::into).collect(),
        });
        self
    }
}

/// A window and the positions of the records whose details changed in it.
/// The records whose details changed in a window: in read order, and each key's place.
#[derive(Debug, Default)]
struct ChangedDetails {
    order: Vec<Position>,
    latest: HashMap<String, i64>,
}

/// Reads changed records of a CRM object.
///
/// Pages are read with the SDK's pager, resumed after the engine's position
/// `(last_modified_time, _id)` ([`Pager::start_after`](fxiaoke_sdk::Pager::start_after)): keyset
/// paging, offsets never used, so records changing during a run do not shift the others and
/// the 10,000-row offset cap does not apply.
#[derive(Debug, Clone)]
pub struct ObjectSource {
    client: Client,
    config: ObjectSourceConfig,
    /// The records whose details changed in the last window asked for (see
    /// [`ObjectSourceConfig::watch_details`]), read once per window.
    details_changed: PerWindow<ChangedDetails>,
}

impl ObjectSource {
    /// A source over `client` for the object `config` describes.
    pub fn new(client: Client, config: ObjectSourceConfig) -> Self {
        Self {
            client,
            config,
            details_changed: PerWindow::default(),
        }
    }

    /// The records whose related records changed in `window`: each record's key at its
    /// details' latest change in the window, in `(version, key)` order.
    async fn details_changed(&self, window: Window) -> Result<Arc<ChangedDetails>, ConnectorError> {
        if let Some(found) = self.details_changed.get(window) {
            return Ok(found);
        }
        let mut latest: BTreeMap<String, i64> = BTreeMap::new();
        for related in &self.config.related {
            let filters = vec![
                Filter::gte(MODIFIED, window.low),
                Filter::lt(MODIFIED, window.high),
                // Naming every status lets invalidated details (a deleted line) count too.
                Filter::is_in(LIFE_STATUS, LIFE_STATUSES),
            ];
            let fields = [ID, MODIFIED, related.foreign_key.as_str()].map(String::from);
            for row in self.all(&related.object, filters, &fields).await? {
                let parent = row.get(&related.foreign_key).map(text).unwrap_or_default();
                let version = row
                    .get(MODIFIED)
                    .and_then(fxiaoke_sdk::de::value_to_time)
                    .map(|t| t.timestamp_millis());
                if let Some(v) = version.filter(|v| window.contains(*v))
                    && !parent.is_empty()
                {
                    let at = latest.entry(parent).or_insert(v);
                    *at = (*at).max(v);
                }
            }
        }
        let mut order: Vec<Position> = latest
            .iter()
            .map(|(key, version)| Position {
                version: *version,
                key: key.clone(),
            })
            .collect();
        order.sort();
        let found = self.details_changed.put(
            window,
            ChangedDetails {
                order,
                latest: latest.into_iter().collect(),
            },
        );
        Ok(found)
    }

    /// A page of the window's records merged with the records whose details changed: the
    /// changed records come in `(version, key)` order, so a detail-changed record joins a
    /// page only up to the last record read (the next ones follow on later pages).
    async fn merge_detail_changes(
        &self,
        request: &PageRequest,
        after: Option<Position>,
        mut records: Vec<Record>,
        has_more: bool,
    ) -> Result<Page, ConnectorError> {
        let changed = self.details_changed(request.window).await?;
        // While the records' own query has more, nothing past what it has read may join: not
        // past its last record, nor past where the page started when it brought none.
        let bound = if has_more {
            Some(
                records
                    .last()
                    .map(Record::position)
                    .or_else(|| after.clone())
                    .unwrap_or(Position {
                        version: i64::MIN,
                        key: String::new(),
                    }),
            )
        } else {
            None
        };
        // Each record once a window, at its latest change: one read again for a detail that
        // changed after it waits for that place.
        records.retain(|r| {
            changed
                .latest
                .get(&r.key)
                .is_none_or(|detail| *detail <= r.version)
        });
        let here: BTreeSet<&str> = records.iter().map(|r| r.key.as_str()).collect();
        let pending: Vec<&Position> = changed
            .order
            .iter()
            // Read here at its own place, which is not before its detail's.
            .filter(|p| !here.contains(p.key.as_str()))
            .filter(|p| after.as_ref().is_none_or(|a| *p > a))
            .filter(|p| bound.as_ref().is_none_or(|b| *p <= b))
            .collect();
        let mut merged: Vec<(Position, Option<Record>)> = records
            .drain(..)
            .map(|r| (r.position(), Some(r)))
            .chain(pending.iter().map(|p| ((*p).clone(), None)))
            .collect();
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        let limit = request.limit.max(1);
        let cut = merged.len() > limit;
        merged.truncate(limit);
        // The same record twice (its own change and a detail's): the later place is kept.
        let mut seen = BTreeSet::new();
        let mut kept: Vec<(Position, Option<Record>)> = Vec::with_capacity(merged.len());
        for item in merged.into_iter().rev() {
            if seen.insert(item.0.key.clone()) {
                kept.push(item);
            }
        }
        kept.reverse();
        let wanted: Vec<String> = kept
            .iter()
            .filter(|(_, r)| r.is_none())
            .map(|(p, _)| p.key.clone())
            .collect();
        let mut fetched: BTreeMap<String, Record> = self
            .filtered(&wanted)
            .await?
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect();
        let last = kept.last().map(|(p, _)| p.clone());
        let records = kept
            .into_iter()
            .filter_map(|(p, r)| {
                r.or_else(|| {
                    // At the detail's time: its place in this window's order.
                    fetched
                        .remove(&p.key)
                        // Changed itself at or after its detail: read at its own place.
                        .filter(|r| !(request.window.contains(r.version) && r.version >= p.version))
                        .map(|mut r| {
                            r.version = p.version;
                            r
                        })
                })
            })
            .collect();
        let remaining = last
            .as_ref()
            .is_some_and(|l| changed.order.iter().any(|p| p > l));
        Ok(Page {
            records,
            has_more: has_more || cut || remaining,
            // Where this page ended, even when every record of it was filtered out (the
            // engine's position does not move then).
            token: last.as_ref().map(crate::source::position_token),
        })
    }

    /// The records `keys` that meet the source's filters (a record whose detail changed is
    /// read only if it is one the flow reads).
    async fn filtered(&self, keys: &[String]) -> Result<Vec<Record>, ConnectorError> {
        self.by_ids(keys, &self.config.filters).await
    }

    /// The records `keys` that also meet `filters`, 100 keys per query, with their related
    /// records attached.
    async fn by_ids(
        &self,
        keys: &[String],
        filters: &[Filter],
    ) -> Result<Vec<Record>, ConnectorError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_LIMIT) {
            // At most 100 rows for 100 ids: one page, no walk.
            let mut all = filters.to_vec();
            all.push(Filter::is_in(ID, chunk.iter().map(String::as_str)));
            let rows = self
                .query(&self.config.object, all, &self.projection())
                .send::<Map<String, Value>>()
                .await
                .map_err(connector_error)?
                .rows;
            out.extend(self.records(rows).await?);
        }
        Ok(out)
    }

    /// A query of `object`: 100 rows a page, the projection when there is one.
    fn query<'c>(&'c self, object: &str, filters: Vec<Filter>, fields: &[String]) -> Query<'c> {
        let mut query = self.client.query(object).filters(filters).limit(100);
        if !fields.is_empty() {
            query = query.fields(fields.iter().cloned());
        }
        query
    }

    /// Every row of `object` matching `filters`, through the SDK's pager (keyset on `_id`, no
    /// offset cap).
    async fn all(
        &self,
        object: &str,
        filters: Vec<Filter>,
        fields: &[String],
    ) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        self.query(object, filters, fields)
            .pages::<Map<String, Value>>()
            .collect_all()
            .await
            .map_err(connector_error)
    }

    fn projection(&self) -> Vec<String> {
        let c = &self.config;
        if c.fields.is_empty() {
            return Vec::new();
        }
        let mut fields = c.fields.clone();
        for f in [ID, MODIFIED] {
            if !fields.iter().any(|x| x == f) {
                fields.push(f.to_owned());
            }
        }
        fields
    }

    /// Turns rows into records, with details and references attached.
    async fn records(&self, rows: Vec<Map<String, Value>>) -> Result<Vec<Record>, ConnectorError> {
        let mut bodies = rows;
        for related in &self.config.related {
            let ids: Vec<Value> = bodies.iter().filter_map(|b| b.get(ID).cloned()).collect();
            if ids.is_empty() {
                continue;
            }
            let mut by_parent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            let invalidated: BTreeSet<String> = if self.config.invalidated_details {
                bodies
                    .iter()
                    .filter(|b| is_invalid(b))
                    .filter_map(|b| b.get(ID).map(text))
                    .collect()
            } else {
                BTreeSet::new()
            };
            for chunk in ids.chunks(MAX_LIMIT) {
                let mut filters = vec![Filter::is_in(
                    related.foreign_key.clone(),
                    chunk.iter().cloned(),
                )];
                if self.config.invalidated_details {
                    // Naming every status is what lets a query see invalidated rows.
                    filters.push(Filter::is_in(LIFE_STATUS, LIFE_STATUSES));
                }
                for row in self.all(&related.object, filters, &[]).await? {
                    let parent = row.get(&related.foreign_key).map(text).unwrap_or_default();
                    if is_invalid(&row) && !invalidated.contains(&parent) {
                        continue;
                    }
                    by_parent
                        .entry(parent)
                        .or_default()
                        .push(Value::Object(row));
                }
            }
            let into = place(&related.into)?;
            for body in &mut bodies {
                let id = body.get(ID).map(text).unwrap_or_default();
                let lines = by_parent.remove(&id).unwrap_or_default();
                into.put(body, Value::Array(lines));
            }
        }
        for expand in &self.config.expand {
            let at = place(&expand.at)?;
            let mut ids = BTreeSet::new();
            for body in &bodies {
                for row in at.rows(body) {
                    if let Some(id) = row.get(&expand.field).map(text).filter(|s| !s.is_empty()) {
                        ids.insert(id);
                    }
                }
            }
            let ids: Vec<Value> = ids.into_iter().map(Value::String).collect();
            let mut found: BTreeMap<String, Value> = BTreeMap::new();
            let mut fields = expand.fields.clone();
            fields.push(ID.to_owned());
            for chunk in ids.chunks(MAX_LIMIT) {
                let filter = Filter::is_in(ID, chunk.iter().cloned());
                for row in self.all(&expand.object, vec![filter], &fields).await? {
                    let id = row.get(ID).map(text).unwrap_or_default();
                    let kept: Map<String, Value> = row
                        .into_iter()
                        .filter(|(k, _)| expand.fields.contains(k))
                        .collect();
                    found.insert(id, Value::Object(kept));
                }
            }
            let key = format!("{}__ref", expand.field);
            for body in &mut bodies {
                for row in at.rows_mut(body) {
                    let id = row.get(&expand.field).map(text).unwrap_or_default();
                    if let Some(target) = found.get(&id) {
                        row.insert(key.clone(), target.clone());
                    }
                }
            }
        }
        bodies
            .into_iter()
            .map(|body| {
                let key = body.get(ID).map(text).unwrap_or_default();
                let version = body
                    .get(MODIFIED)
                    .and_then(fxiaoke_sdk::de::value_to_time)
                    .map(|t| t.timestamp_millis())
                    .ok_or_else(|| {
                        super::convert::permanent(format!(
                            "{} {key} has no {MODIFIED} in epoch milliseconds",
                            self.config.object
                        ))
                    })?;
                Ok(Record::new(key, version, Value::Object(body)))
            })
            .collect()
    }
}

/// A place in the records that the source's settings name (`""`: the record itself).
fn place(path: &str) -> Result<FieldPath, ConnectorError> {
    FieldPath::place(path)
        .map_err(|e| super::convert::permanent(format!("the source's settings: {e}")))
}

#[async_trait]
impl Source for ObjectSource {
    async fn server_time_ms(&self) -> Result<Option<i64>, ConnectorError> {
        if self.client.server_time().is_none() {
            // One row-less query for the server's `Date`: a fresh process has had no answer yet.
            let filter = Filter::eq(ID, "");
            self.query(&self.config.object, vec![filter], &[ID.to_owned()])
                .limit(1)
                .pages::<Map<String, Value>>()
                .next_page()
                .await
                .map_err(connector_error)?;
        }
        Ok(self.client.server_time().map(|t| t.timestamp_millis()))
    }

    async fn read_page(&self, request: &PageRequest) -> Result<Page, ConnectorError> {
        let c = &self.config;
        let mut filters = c.filters.clone();
        filters.push(Filter::gte(MODIFIED, request.window.low));
        filters.push(Filter::lt(MODIFIED, request.window.high));
        let limit = u32::try_from(request.limit.clamp(1, MAX_LIMIT)).unwrap_or(100);
        let mut pager = self
            .query(&c.object, filters, &self.projection())
            .limit(limit)
            .order_by(MODIFIED, true)
            .pages::<Map<String, Value>>();
        let after = request.resume_after();
        if let Some(after) = &after {
            pager = pager.start_after(after.version, after.key.clone());
        }
        let rows = pager
            .next_page()
            .await
            .map_err(connector_error)?
            .unwrap_or_default();
        let has_more = !pager.is_done();
        let mut records = self.records(rows).await?;
        // Keep the engine's contract even if the server's order or filters disagree with ours.
        records.retain(|r| {
            request.window.contains(r.version)
                && after.as_ref().is_none_or(|a| r.cmp_position(a).is_gt())
        });
        records.sort_by(|a, b| (a.version, &a.key).cmp(&(b.version, &b.key)));
        if c.watch_details && !c.related.is_empty() {
            return self
                .merge_detail_changes(request, after, records, has_more)
                .await;
        }
        Ok(Page {
            records,
            has_more,
            token: None,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, ConnectorError> {
        Ok(self.get_many(&[key.to_owned()]).await?.into_iter().next())
    }

    /// 100 keys per query, with their related records attached a page at a time (deferred
    /// orders and dead letters are re-read this way).
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Record>, ConnectorError> {
        self.by_ids(keys, &[]).await
    }

    async fn describe(&self) -> Result<Option<ObjectDescription>, ConnectorError> {
        let d = self
            .client
            .describe(&self.config.object)
            .send()
            .await
            .map_err(connector_error)?;
        Ok(Some(describe(&d)))
    }
}
