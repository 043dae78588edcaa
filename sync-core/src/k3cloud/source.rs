//! A K3Cloud form as a [`Source`]: changed documents by `FModifyDate`, entry rows grouped into
//! one record per document.

use std::fmt::Write as _;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use k3cloud_sdk::{Client, Filter};
use serde_json::{Map, Value};

use super::convert::{connector_error, describe_form};
use crate::error::ConnectorError;
use crate::json::text;
use crate::metadata::ObjectDescription;
use crate::path::FieldPath;
use crate::record::{Position, Record};
use crate::source::{Page, PageRequest, Source};

/// How a [`FormSource`] reads one form.
#[derive(Debug, Clone)]
pub struct FormSourceConfig {
    form_id: String,
    id_field: String,
    modified_field: String,
    fields: Vec<String>,
    entry: Option<(String, Vec<String>)>,
    filter: Option<String>,
    offset: FixedOffset,
    rows_per_call: u32,
}

/// K3Cloud stores local times without a zone; servers in China run at UTC+8.
pub(super) const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("+08:00 is a valid offset"),
};

/// Width of the zero-padded id used as the record key, so that keys sort like the ids.
const KEY_WIDTH: usize = 12;

impl FormSourceConfig {
    /// Reads `form_id` (`SAL_OUTSTOCK`) by `FID` and `FModifyDate`, in the server's time zone
    /// `+08:00`, 2000 rows per call.
    pub fn new(form_id: impl Into<String>) -> Self {
        Self {
            form_id: form_id.into(),
            id_field: "FID".into(),
            modified_field: "FModifyDate".into(),
            fields: Vec::new(),
            entry: None,
            filter: None,
            offset: CHINA,
            rows_per_call: 2_000,
        }
    }

    /// The internal id key (default `FID`; base data use `FMATERIALID`, `FCUSTID`, …).
    pub fn id_field(mut self, field: impl Into<String>) -> Self {
        self.id_field = field.into();
        self
    }

    /// The modification-time key (default `FModifyDate`).
    pub fn modified_field(mut self, field: impl Into<String>) -> Self {
        self.modified_field = field.into();
        self
    }

    /// Header fields to read. Dotted keys (`FCustomerID.FNumber`) become nested objects in the
    /// record body (`{"FCustomerID": {"FNumber": …}}`), so mapping paths read them naturally.
    pub fn fields<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.fields.extend(fields.into_iter().map(Into::into));
        self
    }

    /// An entry to read: its key in the record body (`FEntity`) and its fields
    /// (`FEntity_FEntryID`, `FMaterialID.FNumber`, `FRealQty`, …). Each document becomes one
    /// record with its rows in an array under that key.
    pub fn entry<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        key: impl Into<String>,
        fields: I,
    ) -> Self {
        self.entry = Some((key.into(), fields.into_iter().map(Into::into).collect()));
        self
    }

    /// An extra `FilterString`, for example `FDocumentStatus = 'C'` (audited only).
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// The server's time zone (default `+08:00`).
    pub fn utc_offset(mut self, offset: FixedOffset) -> Self {
        self.offset = offset;
        self
    }

    /// Rows per ExecuteBillQuery call (default 2000). A server that caps pages lower (2000
    /// before patch 23.11) is no problem: only an empty page ends a read.
    pub fn rows_per_call(mut self, rows: u32) -> Self {
        self.rows_per_call = rows.clamp(1, k3cloud_sdk::MAX_LIMIT);
        self
    }
}

/// Reads changed documents of a K3Cloud form, in `(FModifyDate, FID)` order, as records keyed
/// by the zero-padded `FID` with the modification time in epoch milliseconds.
///
/// Pages are read by keyset on `(FModifyDate, FID)`, so that documents changed during a run do
/// not shift the others (as offset paging would); a page that fills up drops its last document,
/// whose entry rows may continue, and the next page starts after the one before it.
#[derive(Debug, Clone)]
pub struct FormSource {
    client: Client,
    config: FormSourceConfig,
}

/// One document assembled from its rows.
struct Document {
    id: String,
    version: i64,
    body: Map<String, Value>,
    rows: usize,
}

impl FormSource {
    /// A source over `client` for the form `config` describes.
    pub fn new(client: Client, config: FormSourceConfig) -> Self {
        Self { client, config }
    }

    fn keys(&self) -> Vec<String> {
        let c = &self.config;
        let mut keys = vec![c.id_field.clone(), c.modified_field.clone()];
        keys.extend(
            c.fields
                .iter()
                .filter(|f| **f != c.id_field && **f != c.modified_field)
                .cloned(),
        );
        if let Some((_, entry_fields)) = &c.entry {
            keys.extend(entry_fields.iter().cloned());
        }
        keys
    }

    fn local(&self, ms: i64) -> Result<NaiveDateTime, ConnectorError> {
        DateTime::from_timestamp_millis(ms)
            .map(|utc| utc.with_timezone(&self.config.offset).naive_local())
            .ok_or_else(|| super::convert::permanent(format!("time {ms} ms is out of range")))
    }

    fn millis(&self, cell: &Value) -> Result<i64, ConnectorError> {
        let text = cell.as_str().unwrap_or_default();
        let local = k3cloud_sdk::de::parse_datetime(text).ok_or_else(|| {
            super::convert::permanent(format!(
                "{} `{text}` of {} is not a date",
                self.config.modified_field, self.config.form_id
            ))
        })?;
        self.config
            .offset
            .from_local_datetime(&local)
            .single()
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| super::convert::permanent(format!("ambiguous local time `{text}`")))
    }

    /// The query of `filter` (and the configured filter), in `(modified, id, entry)` order.
    fn query(&self, filter: Filter) -> k3cloud_sdk::Query<'_> {
        let c = &self.config;
        let mut filter = filter;
        if let Some(extra) = &c.filter {
            filter = filter.and(Filter::raw(extra.clone()));
        }
        let mut order = format!("{} ASC, {} ASC", c.modified_field, c.id_field);
        if let Some((_, entry_fields)) = &c.entry
            && let Some(first) = entry_fields.first()
        {
            let _ = write!(order, ", {first} ASC");
        }
        self.client
            .query(&c.form_id)
            .fields(self.keys())
            .filter(filter)
            .order_by(order)
    }

    async fn fetch(&self, filter: Filter, limit: u32) -> Result<Vec<Vec<Value>>, ConnectorError> {
        self.query(filter)
            .limit(limit)
            .send()
            .await
            .map_err(connector_error)
    }

    /// Groups consecutive rows of one document into a record body.
    fn group(&self, rows: Vec<Vec<Value>>) -> Result<Vec<Document>, ConnectorError> {
        let keys = self.keys();
        // `FCustomerID.FNumber` is placed as `{"FCustomerID": {"FNumber": …}}`; a key that is
        // not a path stays as it is.
        let paths: Vec<Option<FieldPath>> = keys.iter().map(|k| k.parse().ok()).collect();
        let put = |i: usize, object: &mut Map<String, Value>, cell: &Value| {
            if !paths[i]
                .as_ref()
                .is_some_and(|p| p.put(object, cell.clone()))
            {
                object.insert(keys[i].clone(), cell.clone());
            }
        };
        let header_len = keys.len() - self.config.entry.as_ref().map_or(0, |(_, f)| f.len());
        let mut docs: Vec<Document> = Vec::new();
        for row in rows {
            let id = text(row.first().unwrap_or(&Value::Null));
            if docs.last().is_none_or(|d| d.id != id) {
                let version = self.millis(row.get(1).unwrap_or(&Value::Null))?;
                let mut body = Map::new();
                for (i, cell) in row.iter().enumerate().take(header_len) {
                    put(i, &mut body, cell);
                }
                if let Some((entry_key, _)) = &self.config.entry {
                    body.insert(entry_key.clone(), Value::Array(Vec::new()));
                }
                docs.push(Document {
                    id,
                    version,
                    body,
                    rows: 0,
                });
            }
            let Some(doc) = docs.last_mut() else { continue };
            doc.rows += 1;
            if let Some((entry_key, _)) = &self.config.entry {
                let cells = &row[header_len.min(row.len())..];
                if cells.iter().any(|c| !c.is_null()) {
                    let mut line = Map::new();
                    for (i, cell) in (header_len..keys.len()).zip(cells) {
                        put(i, &mut line, cell);
                    }
                    if let Some(Value::Array(lines)) = doc.body.get_mut(entry_key) {
                        lines.push(Value::Object(line));
                    }
                }
            }
        }
        Ok(docs)
    }

    fn record(doc: Document) -> Record {
        Record::new(pad(&doc.id), doc.version, Value::Object(doc.body))
    }
}

/// `"100110"` → `"000000100110"`: string order of keys is then the numeric order of ids.
fn pad(id: &str) -> String {
    if id.bytes().all(|b| b.is_ascii_digit()) && id.len() < KEY_WIDTH {
        format!("{id:0>KEY_WIDTH$}")
    } else {
        id.to_owned()
    }
}

fn unpad(key: &str) -> &str {
    let trimmed = key.trim_start_matches('0');
    if trimmed.is_empty() && !key.is_empty() {
        "0"
    } else {
        trimmed
    }
}

#[async_trait]
impl Source for FormSource {
    async fn server_time_ms(&self) -> Result<Option<i64>, ConnectorError> {
        if self.client.server_time().is_none() {
            // One row-less query for the server's `Date`: a fresh process has had no answer yet.
            self.fetch(Filter::eq(&self.config.id_field, 0), 1).await?;
        }
        Ok(self.client.server_time().map(|t| t.timestamp_millis()))
    }

    async fn read_page(&self, request: &PageRequest) -> Result<Page, ConnectorError> {
        let c = &self.config;
        let window = request.window;
        let high = Filter::lt(&c.modified_field, self.local(window.high)?);
        // Keyset on (modification time, id): documents changed during the run leave the window
        // without shifting the others, as they would with offset paging.
        let filter = match &request.after {
            None => Filter::ge(&c.modified_field, self.local(window.low)?).and(high),
            Some(after) => {
                let at = self.local(after.version.max(window.low))?;
                let id = unpad(&after.key);
                let next_id = match id.parse::<i64>() {
                    Ok(n) => Filter::gt(&c.id_field, n),
                    Err(_) => Filter::gt(&c.id_field, id),
                };
                Filter::eq(&c.modified_field, at)
                    .and(next_id)
                    .or(Filter::gt(&c.modified_field, at))
                    .and(high)
            }
        };
        let mut limit = c.rows_per_call;
        loop {
            let rows = self.fetch(filter.clone(), limit).await?;
            // Only an empty page ends the read: a server may cap rows below the limit asked
            // for (2000 before patch 23.11, or a site's own setting), so a short page proves
            // nothing — taking it for the last one skipped the rest of the window.
            if rows.is_empty() {
                return Ok(Page {
                    records: Vec::new(),
                    has_more: false,
                    token: None,
                });
            }
            let full = rows.len() >= limit as usize;
            let mut docs = self.group(rows)?;
            if docs.len() > 1 {
                // The last document's rows may continue on the next page (full, or cut by a
                // server cap): read it again there.
                docs.pop();
            } else if full && limit < k3cloud_sdk::MAX_LIMIT {
                // One document has more rows than a page holds.
                limit = (limit * 2).min(k3cloud_sdk::MAX_LIMIT);
                continue;
            } else if full {
                return Err(super::convert::permanent(format!(
                    "a {} document has more than {limit} rows",
                    c.form_id
                )));
            }
            // (One document on a short page is kept whole: a server cap below the rows of a
            // single document cannot be told from its end.)
            // Times stored below the millisecond can bring back a document already read.
            let mut records: Vec<Record> = docs
                .into_iter()
                .map(Self::record)
                .filter(|r| window.contains(r.version))
                .filter(|r| {
                    request
                        .after
                        .as_ref()
                        .is_none_or(|a: &Position| r.cmp_position(a).is_gt())
                })
                .collect();
            records.sort_by(|a, b| (a.version, &a.key).cmp(&(b.version, &b.key)));
            records.truncate(request.limit.max(1));
            // Rows came back: there may be more, whatever their number.
            let has_more = true;
            if records.is_empty() {
                return Err(super::convert::permanent(format!(
                    "{} paging made no progress past {:?}",
                    c.form_id, request.after
                )));
            }
            return Ok(Page {
                records,
                has_more,
                token: None,
            });
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, ConnectorError> {
        let filter = Filter::eq(&self.config.id_field, unpad(key));
        let rows = self.fetch(filter, self.config.rows_per_call).await?;
        Ok(self.group(rows)?.into_iter().next().map(Self::record))
    }

    /// 100 documents per query (all their entry rows, page by page).
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Record>, ConnectorError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let ids: Vec<&str> = chunk.iter().map(|k| unpad(k)).collect();
            let filter = match ids
                .iter()
                .map(|id| id.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(numbers) => Filter::is_in(&self.config.id_field, numbers),
                Err(_) => Filter::is_in(&self.config.id_field, ids),
            };
            let rows = self
                .query(filter)
                .limit(self.config.rows_per_call)
                .pages()
                .collect_all()
                .await
                .map_err(connector_error)?;
            out.extend(self.group(rows)?.into_iter().map(Self::record));
        }
        Ok(out)
    }

    /// QueryBusinessInfo: header fields, entries under their key.
    async fn describe(&self) -> Result<Option<ObjectDescription>, ConnectorError> {
        Ok(Some(
            describe_form(&self.client, &self.config.form_id).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_pad_and_unpad() {
        assert_eq!(pad("100110"), "000000100110");
        assert_eq!(unpad("000000100110"), "100110");
        assert_eq!(pad("A-1"), "A-1");
        assert_eq!(unpad("000000000000"), "0");
        assert!(pad("99") < pad("100"));
    }

    #[test]
    fn dotted_keys_nest() {
        let mut m = Map::new();
        for (key, value) in [
            ("FCustomerID.FNumber", "C1"),
            ("FCustomerID.FName", "客户"),
            ("FBillNo", "XSCKD1"),
        ] {
            assert!(
                key.parse::<FieldPath>()
                    .unwrap()
                    .put(&mut m, Value::from(value))
            );
        }
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"FCustomerID": {"FNumber": "C1", "FName": "客户"}, "FBillNo": "XSCKD1"})
        );
    }
}
