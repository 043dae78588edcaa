//! CRM messages as a [`Sink`]: each mapped record is one text message.

use async_trait::async_trait;
use fxiaoke_sdk::Client;
use serde_json::Value;

use super::convert::connector_error;
use crate::error::ConnectorError;
use crate::sink::{Sink, TargetRef, WriteItem, WriteOutcome};

/// Sends each mapped record as a text message: the payload names the recipients in `to` (a
/// list of `openUserId`s, or one) and the message in `text` (and an optional `title` line).
///
/// Messages cannot be looked up afterwards, so a message whose answer was lost (or that a
/// crash interrupted) is reported as unknown and never sent again: messages go out at most
/// once (never twice), which is what notifications want.
#[derive(Debug, Clone)]
pub struct MessageSink {
    client: Client,
}

impl MessageSink {
    /// A sink that sends through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn recipients(payload: &Value) -> Vec<String> {
    match payload.get("to") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

#[async_trait]
impl Sink for MessageSink {
    async fn find(&self, _natural_key: &str) -> Result<Option<TargetRef>, ConnectorError> {
        Err(super::convert::unsupported(
            "a sent message cannot be looked up",
        ))
    }

    fn write_repeatable(&self) -> bool {
        false
    }

    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let to = recipients(&item.payload);
            let text = item
                .payload
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if to.is_empty() || text.trim().is_empty() {
                out.push(WriteOutcome::Failed {
                    reason: "a message needs `to` (openUserIds) and `text`".into(),
                    retryable: false,
                });
                continue;
            }
            let content = match item.payload.get("title").and_then(Value::as_str) {
                Some(title) if !title.is_empty() => format!("{title}\n{text}"),
                _ => text.to_owned(),
            };
            out.push(match self.client.text_message(to, content).send().await {
                Ok(_) => WriteOutcome::Created(TargetRef::new(item.natural_key.clone(), None)),
                Err(e) if e.is_outcome_unknown() => WriteOutcome::Unknown {
                    reason: e.to_string(),
                },
                Err(e)
                    if out.is_empty()
                        && !e.is_outcome_unknown()
                        && matches!(e, fxiaoke_sdk::Error::Connect { .. }) =>
                {
                    return Err(connector_error(e));
                }
                Err(e) => WriteOutcome::Failed {
                    reason: e.to_string(),
                    retryable: e.is_retryable(),
                },
            });
        }
        Ok(out)
    }
}
