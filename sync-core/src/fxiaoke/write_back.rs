//! Writing the ERP number (or id) back into a CRM field after a create.

use async_trait::async_trait;
use fxiaoke_sdk::Client;
use serde_json::{Map, Value};

use crate::error::ConnectorError;
use crate::source::{SourceWriteBack, WriteBackItem, WriteBackOutcome};

/// Writes each created target's number (or its id, when it has none) into `field` of the
/// source CRM record, for example the K3Cloud customer number into the account's
/// `field_erp_no__c`. Leave that field out of the mapping, so that the write-back does not
/// count as a change of the record.
#[derive(Debug, Clone)]
pub struct ObjectWriteBack {
    client: Client,
    object: String,
    field: String,
}

impl ObjectWriteBack {
    /// Writes into `field` of `object` records.
    pub fn new(client: Client, object: impl Into<String>, field: impl Into<String>) -> Self {
        Self {
            client,
            object: object.into(),
            field: field.into(),
        }
    }
}

#[async_trait]
impl SourceWriteBack for ObjectWriteBack {
    async fn write_back(
        &self,
        items: &[WriteBackItem],
    ) -> Result<Vec<WriteBackOutcome>, ConnectorError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let value = item
                .target
                .number
                .clone()
                .unwrap_or_else(|| item.target.id.clone());
            let mut fields = Map::new();
            fields.insert(self.field.clone(), Value::String(value));
            // An update of one field is idempotent: repeating it after an unknown outcome is safe.
            let result = self
                .client
                .update(&self.object, &item.source_key)
                .fields(Value::Object(fields))
                .send()
                .await;
            out.push(match result {
                Ok(_) => WriteBackOutcome::Done,
                Err(e) => WriteBackOutcome::Failed {
                    reason: e.to_string(),
                },
            });
        }
        Ok(out)
    }

    fn written_back(&self, record: &crate::Record) -> Option<String> {
        record
            .body
            .get(&self.field)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}
