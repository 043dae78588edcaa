//! The vendor's asynchronous ("QUERY") invocation: a task id, then `QueryAsyncResult` polls.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::Client;
use crate::de;
use crate::error::{Error, Result};
use crate::response::{Answer, check, decode_value};
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// The state of an asynchronous task (`QueryResultInfo`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct AsyncTask {
    /// `TaskId`.
    #[serde(rename = "TaskId", default, deserialize_with = "de::string")]
    pub task_id: String,
    /// `Status`: 0 pending, 1 running, 2 complete.
    #[serde(rename = "Status", default, deserialize_with = "de::opt_i64")]
    pub status: Option<i64>,
    /// `Result`: the operation's answer once complete.
    #[serde(rename = "Result", default)]
    pub result: Value,
    /// `IsFaulted`.
    #[serde(rename = "IsFaulted", default, deserialize_with = "de::bool")]
    pub is_faulted: bool,
    /// `FaultedException` or `Message`, when the task failed.
    #[serde(rename = "FaultedException", default)]
    pub faulted_exception: Value,
    /// `Progress`, when sent.
    #[serde(rename = "Progress", default, deserialize_with = "de::opt_i64")]
    pub progress: Option<i64>,
}

/// `Status` of a finished task.
const COMPLETE: i64 = 2;

impl AsyncTask {
    /// True when the task has finished.
    pub fn is_complete(&self) -> bool {
        self.status == Some(COMPLETE)
    }
}

impl Client {
    /// Polls an asynchronous task once (`DynamicFormService.QueryAsyncResult`).
    pub async fn query_async_result(&self, task_id: &str) -> Result<AsyncTask> {
        if task_id.trim().is_empty() {
            return Err(Error::InvalidInput("task id is empty".into()));
        }
        // The vendor SDK sends the task as a JSON *string* in Python's spacing.
        let info = format!(
            "{{\"TaskId\": {}, \"Cancelled\": false}}",
            Value::String(task_id.to_owned())
        );
        let service = service::dynamic_form("QueryAsyncResult");
        let call = Call {
            service: &service,
            body: json!({ "queryInfo": info }),
            idempotency: Idempotency::Idempotent,
            form_id: None,
        };
        let answer = self.transport.call(call).await?;
        answer.decode()
    }
}

/// Takes the first answer of a QUERY-mode call and polls until the task completes; returns
/// the task's own answer, checked like any other.
pub(crate) async fn complete(client: &Client, first: Value) -> Result<Answer> {
    let mut task: AsyncTask = decode_value(&first, &[])?;
    let mut polls = 0;
    while !task.is_complete() && !task.is_faulted {
        if polls >= client.settings.async_max_polls {
            return Err(Error::TaskPending {
                task_id: task.task_id,
                polls,
            });
        }
        tokio::time::sleep(client.settings.async_poll_interval).await;
        task = client.query_async_result(&task.task_id).await?;
        polls += 1;
    }
    if task.is_faulted {
        let message = match &task.faulted_exception {
            Value::String(s) => s.clone(),
            Value::Null => format!("task {} failed", task.task_id),
            other => other
                .get("Message")
                .and_then(Value::as_str)
                .map_or_else(|| other.to_string(), str::to_owned),
        };
        return Err(Error::ServerException {
            message,
            raw: first.to_string(),
        });
    }
    let bytes = Bytes::from(serde_json::to_vec(&task.result).unwrap_or_default());
    check(200, bytes)
}
