//! A CRM object as a [`Sink`]: create (with detail lines) or update records, find them by a
//! natural key, and notify their owners as a post-save action.

use std::collections::HashMap;

use async_trait::async_trait;
use fxiaoke_sdk::{Client, Error as FxError, Filter};
use serde_json::{Map, Value};

use super::convert::{connector_error, describe};
use crate::error::ConnectorError;
use crate::json::text;
use crate::metadata::ObjectDescription;
use crate::path::FieldPath;
use crate::sink::{ActionOutcome, Sink, TargetRef, WriteItem, WriteOutcome};

const ID: &str = "_id";
const DETAILS: &str = "details";
/// A payload's detail rows updated one by one, by their `_id`.
const UPDATE_DETAILS: &str = "update_details";

/// What an [`ObjectSink`] does with the mapped records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkMode {
    /// Create new records and update the ones the ID map knows; records are found by the value
    /// of `key_field` (the natural key).
    Upsert {
        /// The field that holds the natural key (`account_no`, a custom field with the ERP id).
        key_field: String,
    },
    /// Update existing records only: each payload names its record by `_id` in `id_field`
    /// (usually filled by an ID-map lookup — for example the CRM order an ERP delivery belongs
    /// to). The natural key is that `_id`.
    UpdateExisting {
        /// The payload field holding the record's `_id`.
        id_field: String,
    },
}

/// A message to the owners of a written record, sent by the post-save action `action`.
///
/// `text` may name fields of the record in braces: `订单 {name} 已发货，物流单号 {logistics_no}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The action name that sends it (for [`FlowBuilder::actions`](crate::FlowBuilder::actions)).
    pub action: String,
    /// A title line (`发货通知`).
    pub title: String,
    /// The message, with `{field}` placeholders.
    pub text: String,
}

/// How an [`ObjectSink`] writes to one CRM object.
#[derive(Debug, Clone)]
pub struct ObjectSinkConfig {
    object: String,
    mode: SinkMode,
    trigger_workflow: Option<bool>,
    trigger_approval_flow: Option<bool>,
    notifications: Vec<Notification>,
    detail_objects: Vec<String>,
    first_needs: Option<String>,
}

impl ObjectSinkConfig {
    /// Writes to `object` in `mode`.
    pub fn new(object: impl Into<String>, mode: SinkMode) -> Self {
        Self {
            object: object.into(),
            mode,
            trigger_workflow: None,
            trigger_approval_flow: None,
            notifications: Vec::new(),
            detail_objects: Vec::new(),
            first_needs: None,
        }
    }

    /// A detail object (`SalesOrderProductObj`) whose records a payload's
    /// `update_details.<object>` rows update one by one, by their `_id` (see [`ObjectSink`]);
    /// named here so that mappings are checked against it.
    pub fn update_details(mut self, object: impl Into<String>) -> Self {
        self.detail_objects.push(object.into());
        self
    }

    /// A record written for the first time (no target in the ID map yet) whose payload has no
    /// value for `field` is skipped ([`WriteOutcome::Skipped`]): nothing is written, no action
    /// runs, and a later change of it is written as a first one. For the deliveries flow, an
    /// order whose outbounds were saved but none audited has nothing to tell yet.
    pub fn first_write_needs(mut self, field: impl Into<String>) -> Self {
        self.first_needs = Some(field.into());
        self
    }

    /// Whether writes start work flows (the API's default: yes).
    pub fn trigger_workflow(mut self, on: bool) -> Self {
        self.trigger_workflow = Some(on);
        self
    }

    /// Whether writes start approval flows (the API's default: yes).
    pub fn trigger_approval_flow(mut self, on: bool) -> Self {
        self.trigger_approval_flow = Some(on);
        self
    }

    /// Sends `notification` to the record's owners when its action runs.
    pub fn notify(mut self, notification: Notification) -> Self {
        self.notifications.push(notification);
        self
    }
}

/// Writes mapped records to a CRM object, one call per record (the API has no batch write).
///
/// A payload's `details` map (`{"SalesOrderProductObj": [lines…]}`) is sent as the detail lines
/// of a create (and, on an update, as the master's complete rows). An update's
/// `update_details` map (same shape, each row with its `_id`) updates those detail records one
/// by one and leaves the master's other rows alone (the deliveries flow's shipped quantity per
/// order line); rows without an `_id` are skipped. A write sent without an answer is reported as unknown, so that the engine looks
/// the record up by its natural key before sending it again.
#[derive(Debug, Clone)]
pub struct ObjectSink {
    client: Client,
    config: ObjectSinkConfig,
}

impl ObjectSink {
    /// A sink over `client` for the object `config` describes.
    pub fn new(client: Client, config: ObjectSinkConfig) -> Self {
        Self { client, config }
    }

    async fn query_one(
        &self,
        field: &str,
        value: &str,
    ) -> Result<Option<Map<String, Value>>, ConnectorError> {
        let rows = self
            .client
            .query(&self.config.object)
            .filter(Filter::eq(field, value))
            .limit(2)
            .send::<Map<String, Value>>()
            .await
            .map_err(connector_error)?
            .rows;
        match rows.len() {
            0 | 1 => Ok(rows.into_iter().next()),
            n => Err(super::convert::permanent(format!(
                "{n} {} records have {field} = {value}; the natural key must be unique",
                self.config.object
            ))),
        }
    }

    fn target_of(&self, record: &Map<String, Value>) -> TargetRef {
        let number = match &self.config.mode {
            SinkMode::Upsert { key_field } => record.get(key_field).map(text),
            SinkMode::UpdateExisting { .. } => record.get("name").map(text),
        };
        TargetRef::new(
            record.get(ID).map(text).unwrap_or_default(),
            number.filter(|n| !n.is_empty()),
        )
    }

    /// One write; `Err` only when nothing was sent.
    async fn write_one(&self, item: &WriteItem) -> Result<WriteOutcome, FxError> {
        let c = &self.config;
        let Value::Object(payload) = &item.payload else {
            return Ok(WriteOutcome::Failed {
                reason: "the mapped payload is not an object".into(),
                retryable: false,
            });
        };
        if item.target.is_none()
            && let Some(field) = &c.first_needs
            && payload
                .get(field)
                .is_none_or(|v| v.is_null() || text(v).is_empty())
        {
            return Ok(WriteOutcome::Skipped {
                reason: format!("no `{field}` yet: nothing to write"),
            });
        }
        let mut fields = payload.clone();
        let details = fields.remove(DETAILS);
        let detail_updates = fields.remove(UPDATE_DETAILS);
        match &c.mode {
            SinkMode::UpdateExisting { id_field } => {
                let id = fields
                    .remove(id_field)
                    .map(|v| text(&v))
                    .unwrap_or_default();
                if id.is_empty() {
                    return Ok(WriteOutcome::Failed {
                        reason: format!(
                            "the payload names no {} to update (`{id_field}`)",
                            c.object
                        ),
                        retryable: false,
                    });
                }
                self.update(&id, fields, details).await?;
                self.update_details(detail_updates).await?;
                let target = TargetRef::new(id, None);
                Ok(if item.target.is_some() {
                    WriteOutcome::Updated(target)
                } else {
                    WriteOutcome::Created(target)
                })
            }
            SinkMode::Upsert { key_field } => {
                if let Some(target) = &item.target {
                    self.update(&target.id, fields, details).await?;
                    self.update_details(detail_updates).await?;
                    return Ok(WriteOutcome::Updated(target.clone()));
                }
                let number = fields.get(key_field).map(text).filter(|n| !n.is_empty());
                let mut create = self
                    .client
                    .create(&c.object)
                    .object_data(Value::Object(fields));
                if let Some(on) = c.trigger_workflow {
                    create = create.trigger_workflow(on);
                }
                if let Some(on) = c.trigger_approval_flow {
                    create = create.trigger_approval_flow(on);
                }
                if let Some(Value::Object(details)) = details {
                    for (object, rows) in details {
                        let rows = match rows {
                            Value::Array(rows) => rows,
                            other => vec![other],
                        };
                        create = create.details(object, rows);
                    }
                }
                let written = create.send().await?;
                Ok(match written.data_id {
                    Some(id) => WriteOutcome::Created(TargetRef::new(id, number)),
                    // Custom-object creates may not name the new record.
                    None => WriteOutcome::Unknown {
                        reason: "the create answered without a dataId".into(),
                    },
                })
            }
        }
    }

    /// `details`, when mapped, go with the update as the master's complete detail rows. What
    /// the CRM does with rows it already has is not documented (the simulator replaces them,
    /// keeping rows sent with their `_id`): map the detail `_id` to keep a row's identity.
    async fn update(
        &self,
        id: &str,
        fields: Map<String, Value>,
        details: Option<Value>,
    ) -> Result<(), FxError> {
        let c = &self.config;
        let mut fields = fields;
        // The owner is set by a create; `data/update` refuses it (changeOwner is its own call,
        // and a sync should not take records away from the people working on them).
        fields.remove("owner");
        let mut update = self
            .client
            .update(&c.object, id)
            .fields(Value::Object(fields));
        if let Some(Value::Object(details)) = details {
            for (object, rows) in details {
                let rows = match rows {
                    Value::Array(rows) => rows,
                    other => vec![other],
                };
                update = update.details(object, rows);
            }
        }
        if let Some(on) = c.trigger_workflow {
            update = update.trigger_workflow(on);
        }
        if let Some(on) = c.trigger_approval_flow {
            update = update.trigger_approval_flow(on);
        }
        update.send().await.map(drop)
    }

    /// Updates each detail row of `updates` (`{object: [rows with _id]}`) on its own.
    async fn update_details(&self, updates: Option<Value>) -> Result<(), FxError> {
        let Some(Value::Object(updates)) = updates else {
            return Ok(());
        };
        for (object, rows) in updates {
            let rows = match rows {
                Value::Array(rows) => rows,
                other => vec![other],
            };
            for row in rows {
                let Value::Object(mut fields) = row else {
                    continue;
                };
                let id = fields.remove(ID).map(|v| text(&v)).unwrap_or_default();
                if id.is_empty() || fields.is_empty() {
                    continue;
                }
                fields.remove("owner");
                self.client
                    .update(&object, &id)
                    .fields(Value::Object(fields))
                    .trigger_workflow(false)
                    .send()
                    .await?;
            }
        }
        Ok(())
    }

    async fn notify(&self, n: &Notification, target: &TargetRef) -> ActionOutcome {
        let record = match self.query_one(ID, &target.id).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                return ActionOutcome::Failed {
                    reason: format!("{} {} no longer exists", self.config.object, target.id),
                };
            }
            Err(e) => {
                return ActionOutcome::Failed {
                    reason: e.to_string(),
                };
            }
        };
        let owners: Vec<String> = match record.get("owner") {
            Some(Value::Array(owners)) => {
                owners.iter().map(text).filter(|o| !o.is_empty()).collect()
            }
            Some(one) => vec![text(one)]
                .into_iter()
                .filter(|o| !o.is_empty())
                .collect(),
            None => Vec::new(),
        };
        if owners.is_empty() {
            return ActionOutcome::Failed {
                reason: format!(
                    "{} {} has no owner to notify",
                    self.config.object, target.id
                ),
            };
        }
        let content = format!("{}\n{}", n.title, render(&n.text, &record));
        match self.client.text_message(owners, content).send().await {
            Ok(_) => ActionOutcome::Done,
            Err(e) if e.is_outcome_unknown() => ActionOutcome::Unknown {
                reason: e.to_string(),
            },
            Err(e) => ActionOutcome::Failed {
                reason: e.to_string(),
            },
        }
    }
}

/// Replaces `{field}` (or `{a.b}`) with the record's values; unknown fields become empty.
fn render(template: &str, record: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let path = &rest[open + 1..open + close];
        let value = path
            .parse::<FieldPath>()
            .ok()
            .and_then(|p| p.get_in_object(record));
        out.push_str(&value.map(text).unwrap_or_default());
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

#[async_trait]
impl Sink for ObjectSink {
    fn natural_key_field(&self) -> Option<&str> {
        match &self.config.mode {
            SinkMode::Upsert { key_field } => Some(key_field),
            SinkMode::UpdateExisting { id_field } => Some(id_field),
        }
    }

    async fn find(&self, natural_key: &str) -> Result<Option<TargetRef>, ConnectorError> {
        let key_field = match &self.config.mode {
            SinkMode::Upsert { key_field } => key_field,
            // The record always exists, whether the update landed or not: finding it would
            // settle an update that never happened. Not found, the engine sends the update
            // again, which is harmless.
            SinkMode::UpdateExisting { .. } => return Ok(None),
        };
        Ok(self
            .query_one(key_field, natural_key)
            .await?
            .map(|r| self.target_of(&r)))
    }

    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match self.write_one(item).await {
                Ok(outcome) => out.push(outcome),
                Err(e) if e.is_outcome_unknown() => out.push(WriteOutcome::Unknown {
                    reason: e.to_string(),
                }),
                // Nothing was sent at all: stop the run, nothing is lost.
                Err(e)
                    if out.is_empty()
                        && matches!(e, FxError::Connect { .. } | FxError::InvalidInput(_)) =>
                {
                    return Err(connector_error(e));
                }
                Err(e) => out.push(WriteOutcome::Failed {
                    reason: e.to_string(),
                    retryable: e.is_retryable(),
                }),
            }
        }
        Ok(out)
    }

    /// By the key field (`Upsert`), or by `_id` (`UpdateExisting`: the record a payload names
    /// is its target), 100 keys per query.
    async fn existing_targets(
        &self,
        natural_keys: &[String],
    ) -> Result<HashMap<String, TargetRef>, ConnectorError> {
        let field = match &self.config.mode {
            SinkMode::Upsert { key_field } => key_field.as_str(),
            SinkMode::UpdateExisting { .. } => ID,
        };
        let mut found = HashMap::with_capacity(natural_keys.len());
        for chunk in natural_keys.chunks(100) {
            let rows = self
                .client
                .query(&self.config.object)
                .filter(Filter::is_in(field, chunk.iter().map(String::as_str)))
                .limit(100)
                .send::<Map<String, Value>>()
                .await
                .map_err(connector_error)?
                .rows;
            for row in rows {
                if let Some(key) = row.get(field).map(text).filter(|k| !k.is_empty()) {
                    found.insert(key, self.target_of(&row));
                }
            }
        }
        Ok(found)
    }

    async fn action(
        &self,
        action: &str,
        targets: &[TargetRef],
    ) -> Result<Vec<ActionOutcome>, ConnectorError> {
        let Some(notification) = self
            .config
            .notifications
            .iter()
            .find(|n| n.action == action)
        else {
            return Err(super::convert::unsupported(format!(
                "no action `{action}` on {}",
                self.config.object
            )));
        };
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            out.push(self.notify(notification, target).await);
        }
        Ok(out)
    }

    /// Messages cannot be looked up: one whose answer was lost is not sent again.
    fn action_repeatable(&self, action: &str) -> bool {
        !self.config.notifications.iter().any(|n| n.action == action)
    }

    async fn describe(&self) -> Result<Option<ObjectDescription>, ConnectorError> {
        let d = self
            .client
            .describe(&self.config.object)
            .send()
            .await
            .map_err(connector_error)?;
        let mut description = describe(&d);
        if matches!(self.config.mode, SinkMode::UpdateExisting { .. }) {
            // Updating an existing record needs none of the fields a create requires.
            for field in description.fields.values_mut() {
                field.required = false;
            }
        }
        for object in &self.config.detail_objects {
            let d = self
                .client
                .describe(object)
                .send()
                .await
                .map_err(connector_error)?;
            let mut detail = describe(&d);
            for field in detail.fields.values_mut() {
                field.required = false;
            }
            description
                .entries
                .insert(format!("{UPDATE_DETAILS}.{object}"), detail);
        }
        Ok(Some(description))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_name_fields() {
        let record = json!({"name": "20240518-001", "logistics_no": "SF1001", "owner": ["FSUID_1"], "a": {"b": 2}});
        let record = record.as_object().unwrap();
        assert_eq!(
            render(
                "订单 {name} 已发货，物流单号 {logistics_no}，{missing}{a.b}",
                record
            ),
            "订单 20240518-001 已发货，物流单号 SF1001，2"
        );
        assert_eq!(render("no placeholders", record), "no placeholders");
        assert_eq!(render("open { brace", record), "open { brace");
    }
}
