//! The shipping state of sales orders, from their outbounds, as a [`Source`]: one record per
//! order whose outbounds changed, with what every audited outbound of it shipped so far.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use k3cloud_sdk::{Client, Filter};
use serde_json::{Value, json};

use super::convert::{connector_error, permanent};
use crate::error::ConnectorError;
use crate::json::text;
use crate::record::{Position, Record};
use crate::source::{Page, PageRequest, PerWindow, Source, Window};

/// How a [`ShipmentSource`] reads outbounds and the orders they ship.
#[derive(Debug, Clone)]
pub struct ShipmentSourceConfig {
    outbound_form: String,
    order_form: String,
    order_entry: String,
    line_key: Option<String>,
    offset: FixedOffset,
}

impl ShipmentSourceConfig {
    /// Outbounds of `outbound_form` (`SAL_OUTSTOCK`) shipping orders of `order_form`
    /// (`SAL_SaleOrder`) whose lines are the entry `order_entry` (`FSaleOrderEntry`). Outbound
    /// lines name their order by `FSoorDerno` (订单单号) and the order line by `FSOEntryId`
    /// (the order entry's `FEntryID`).
    pub fn new(
        outbound_form: impl Into<String>,
        order_form: impl Into<String>,
        order_entry: impl Into<String>,
    ) -> Self {
        Self {
            outbound_form: outbound_form.into(),
            order_form: order_form.into(),
            order_entry: order_entry.into(),
            line_key: None,
            offset: super::source::CHINA,
        }
    }

    /// The order-line field holding the source line's id (`F_CRM_LineId`): each record's
    /// `lines` then carry it as `source_line`, for the CRM lines to be updated.
    pub fn line_key(mut self, field: impl Into<String>) -> Self {
        self.line_key = Some(field.into());
        self
    }

    /// The ERP server's time zone (its dates carry none); default `+08:00`.
    pub fn utc_offset(mut self, offset: FixedOffset) -> Self {
        self.offset = offset;
        self
    }
}

/// What the orders whose outbounds changed have shipped, read from K3Cloud.
///
/// A run asks once which outbounds changed in its window (`FModifyDate` or `FApproveDate` in
/// it, whatever their status: an un-audited outbound changes what its orders shipped), then
/// yields one record per order they ship, keyed by the order number, in `(time of the latest
/// change, number)` order. Each record is computed from the audited outbounds only:
///
/// ```json
/// {"order_no": "SO1", "shipped_qty": 17.0, "state": "partial",
///  "outbounds": ["XSCKD000001", "XSCKD000002"], "last_outbound": "XSCKD000002",
///  "last_carriage_no": "SF2",
///  "lines": [{"entry_id": 7, "source_line": "L1", "material": "MAT1", "ordered": 12.0, "shipped": 12.0}]}
/// ```
///
/// `state` is `none` (nothing shipped), `partial` or `full` (every line shipped in full). An
/// outbound whose lines come from several orders changes each of them. An outbound deleted
/// between two runs is not seen (K3Cloud lists no deleted documents); an audited one must be
/// un-audited first, and a run in between sees that.
#[derive(Debug, Clone)]
pub struct ShipmentSource {
    client: Client,
    config: ShipmentSourceConfig,
    changed: PerWindow<Vec<Position>>,
}

const ORDER_NO: &str = "FSoorDerno";
const ORDER_LINE: &str = "FSOEntryId";

impl ShipmentSource {
    /// A source over `client`.
    pub fn new(client: Client, config: ShipmentSourceConfig) -> Self {
        Self {
            client,
            config,
            changed: PerWindow::default(),
        }
    }

    fn local(&self, ms: i64) -> Result<NaiveDateTime, ConnectorError> {
        DateTime::from_timestamp_millis(ms)
            .map(|utc| utc.with_timezone(&self.config.offset).naive_local())
            .ok_or_else(|| permanent(format!("time {ms} ms is out of range")))
    }

    fn millis(&self, cell: &Value) -> Option<i64> {
        let local = k3cloud_sdk::de::parse_datetime(cell.as_str()?)?;
        self.config
            .offset
            .from_local_datetime(&local)
            .single()
            .map(|t| t.timestamp_millis())
    }

    /// The orders whose outbounds changed in `window`, each at its latest change, in order.
    async fn changed(&self, window: Window) -> Result<Arc<Vec<Position>>, ConnectorError> {
        if let Some(found) = self.changed.get(window) {
            return Ok(found);
        }
        let (low, high) = (self.local(window.low)?, self.local(window.high)?);
        let in_window = |field: &str| Filter::ge(field, low).and(Filter::lt(field, high));
        let rows: Vec<(Value, Value, Value, Value)> = self
            .client
            .query(&self.config.outbound_form)
            .fields(["FID", "FModifyDate", "FApproveDate", ORDER_NO])
            // The reference does not say whether Audit and UnAudit move FModifyDate on every
            // release; either date in the window counts.
            .filter(in_window("FModifyDate").or(in_window("FApproveDate")))
            // One row per line: a unique order keeps offset pages apart.
            .order_by("FID ASC, FEntity_FEntryID ASC")
            .pages()
            .collect_all()
            .await
            .map_err(connector_error)?;
        let mut latest: BTreeMap<String, i64> = BTreeMap::new();
        for (_, modified, approved, order) in rows {
            let order = text(&order);
            let at = [self.millis(&modified), self.millis(&approved)]
                .into_iter()
                .flatten()
                .filter(|t| window.contains(*t))
                .max();
            if let Some(at) = at
                && !order.trim().is_empty()
            {
                let v = latest.entry(order).or_insert(at);
                *v = (*v).max(at);
            }
        }
        let mut found: Vec<Position> = latest
            .into_iter()
            .map(|(key, version)| Position { version, key })
            .collect();
        found.sort();
        let found = self.changed.put(window, found);
        Ok(found)
    }

    /// The shipping state of the orders `numbers`, by number (each order that has a line or
    /// an audited outbound).
    async fn states(&self, numbers: &[String]) -> Result<BTreeMap<String, Value>, ConnectorError> {
        let c = &self.config;
        let mut out = BTreeMap::new();
        for chunk in numbers.chunks(100) {
            let in_chunk = |field: &str| Filter::is_in(field, chunk.iter().map(String::as_str));
            let mut order_fields = vec![
                "FBillNo".to_owned(),
                format!("{}_FEntryID", c.order_entry),
                "FQty".to_owned(),
                "FMaterialId.FNumber".to_owned(),
            ];
            if let Some(key) = &c.line_key {
                order_fields.push(key.clone());
            }
            let lines: Vec<Vec<Value>> = self
                .client
                .query(&c.order_form)
                .fields(order_fields.iter().map(String::as_str))
                .filter(in_chunk("FBillNo"))
                .order_by(format!("FBillNo ASC, {}_FEntryID ASC", c.order_entry))
                .pages()
                .collect_all()
                .await
                .map_err(connector_error)?;
            let shipped: Vec<Vec<Value>> = self
                .client
                .query(&c.outbound_form)
                .fields([
                    "FID",
                    "FBillNo",
                    "FApproveDate",
                    "FCarriageNO",
                    ORDER_NO,
                    ORDER_LINE,
                    "FRealQty",
                ])
                .filter(in_chunk(ORDER_NO).and(Filter::eq("FDocumentStatus", "C")))
                .order_by("FApproveDate ASC, FID ASC, FEntity_FEntryID ASC")
                .pages()
                .collect_all()
                .await
                .map_err(connector_error)?;
            let mut orders: BTreeMap<String, Shipping> = BTreeMap::new();
            for row in lines {
                let cell = |i: usize| row.get(i).cloned().unwrap_or(Value::Null);
                let order = orders.entry(text(&cell(0))).or_default();
                order.lines.push(Line {
                    entry_id: cell(1),
                    source: cell(4),
                    material: cell(3),
                    ordered: number(&cell(2)),
                    shipped: 0.0,
                });
            }
            for row in shipped {
                let cell = |i: usize| row.get(i).cloned().unwrap_or(Value::Null);
                let order = orders.entry(text(&cell(4))).or_default();
                let qty = number(&cell(6));
                order.shipped += qty;
                let outbound = text(&cell(1));
                if !order.outbounds.contains(&outbound) {
                    order.outbounds.push(outbound.clone());
                }
                order.last = Some((outbound, text(&cell(3))));
                let entry = text(&cell(5));
                if let Some(line) = order.lines.iter_mut().find(|l| text(&l.entry_id) == entry) {
                    line.shipped += qty;
                }
            }
            for (no, state) in orders {
                let body = state.body(&no);
                out.insert(no, body);
            }
        }
        Ok(out)
    }
}

/// One order line and what shipped of it.
#[derive(Debug)]
struct Line {
    entry_id: Value,
    source: Value,
    material: Value,
    ordered: f64,
    shipped: f64,
}

/// What an order shipped.
#[derive(Debug, Default)]
struct Shipping {
    lines: Vec<Line>,
    shipped: f64,
    outbounds: Vec<String>,
    /// The latest audited outbound and its carriage number.
    last: Option<(String, String)>,
}

impl Shipping {
    fn body(&self, order_no: &str) -> Value {
        let state = if self.shipped <= 0.0 {
            "none"
        } else if !self.lines.is_empty() && self.lines.iter().all(|l| l.shipped >= l.ordered) {
            "full"
        } else {
            "partial"
        };
        let (last_outbound, last_carriage) =
            self.last
                .clone()
                .map_or((Value::Null, Value::Null), |(o, c)| {
                    (
                        Value::from(o),
                        Some(c)
                            .filter(|c| !c.is_empty())
                            .map_or(Value::Null, Value::from),
                    )
                });
        json!({
            "order_no": order_no,
            "shipped_qty": self.shipped,
            "state": state,
            "outbounds": self.outbounds,
            "last_outbound": last_outbound,
            "last_carriage_no": last_carriage,
            "lines": self.lines.iter().map(|l| json!({
                "entry_id": l.entry_id,
                "source_line": l.source,
                "material": l.material,
                "ordered": l.ordered,
                "shipped": l.shipped,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A quantity cell: a number, or a number in text.
fn number(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[async_trait]
impl Source for ShipmentSource {
    async fn read_page(&self, request: &PageRequest) -> Result<Page, ConnectorError> {
        let changed = self.changed(request.window).await?;
        let resume = request.resume_after();
        let after = resume.as_ref();
        let limit = request.limit.max(1);
        let next: Vec<&Position> = changed
            .iter()
            .filter(|p| after.is_none_or(|a| *p > a))
            .take(limit + 1)
            .collect();
        let has_more = next.len() > limit;
        let page: Vec<&Position> = next.into_iter().take(limit).collect();
        let numbers: Vec<String> = page.iter().map(|p| p.key.clone()).collect();
        let mut states = self.states(&numbers).await?;
        let records = page
            .iter()
            .filter_map(|p| {
                states
                    .remove(&p.key)
                    .map(|body| Record::new(p.key.clone(), p.version, body))
            })
            .collect::<Vec<_>>();
        // Where the page ended, even when none of its orders could be read.
        let token = page.last().map(|p| crate::source::position_token(p));
        Ok(Page {
            records,
            has_more,
            token,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, ConnectorError> {
        Ok(self.get_many(&[key.to_owned()]).await?.into_iter().next())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Record>, ConnectorError> {
        let states = self.states(keys).await?;
        Ok(states
            .into_iter()
            .map(|(key, body)| Record::new(key, 0, body))
            .collect())
    }

    async fn server_time_ms(&self) -> Result<Option<i64>, ConnectorError> {
        if self.client.server_time().is_none() {
            self.client
                .query(&self.config.outbound_form)
                .fields(["FID"])
                .filter(Filter::eq("FID", 0))
                .limit(1)
                .send::<Value>()
                .await
                .map_err(connector_error)?;
        }
        Ok(self.client.server_time().map(|t| t.timestamp_millis()))
    }
}
