//! WorkflowAudit: approve, reject or terminate the workflow step of documents.

use std::fmt::Display;

use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::form::{check_form_id, written};
use crate::response::{ResponseStatus, write_status};
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// The decision of a [`WorkflowAudit`] (`ApprovalType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Approval {
    /// 1 — approve (通过).
    Approve,
    /// 2 — reject (驳回).
    Reject,
    /// 3 — terminate (终止).
    Terminate,
}

impl Approval {
    fn code(self) -> i64 {
        match self {
            Approval::Approve => 1,
            Approval::Reject => 2,
            Approval::Terminate => 3,
        }
    }
}

/// A workflow decision on documents. Created by [`Client::workflow_audit`].
///
/// ```no_run
/// use k3cloud_sdk::Approval;
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// client
///     .workflow_audit("SAL_SaleOrder")
///     .numbers(["SO0001"])
///     .user_name("webapi")
///     .approval(Approval::Approve)
///     .disposition("同意")
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a workflow decision does nothing until you call .send()"]
pub struct WorkflowAudit<'c> {
    client: &'c Client,
    form_id: String,
    numbers: Vec<String>,
    ids: Vec<String>,
    approval: Option<Approval>,
    params: Map<String, Value>,
}

/// What WorkflowAudit returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkflowResult {
    /// The server's status report.
    pub status: ResponseStatus,
    /// `OperationResults`, as sent.
    pub operation_results: Value,
    /// The whole answer.
    pub raw: Value,
}

impl<'c> WorkflowAudit<'c> {
    pub(crate) fn new(client: &'c Client, form_id: impl Into<String>) -> Self {
        WorkflowAudit {
            client,
            form_id: form_id.into(),
            numbers: Vec::new(),
            ids: Vec::new(),
            approval: None,
            params: Map::new(),
        }
    }

    /// Document numbers.
    pub fn numbers<I, S>(mut self, numbers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.numbers.extend(numbers.into_iter().map(Into::into));
        self
    }

    /// Internal ids (sent as an array here, unlike the other operations).
    pub fn ids<I, T: Display>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = T>,
    {
        self.ids.extend(ids.into_iter().map(|i| i.to_string()));
        self
    }

    /// The decision. Required.
    pub fn approval(mut self, approval: Approval) -> Self {
        self.approval = Some(approval);
        self
    }

    /// `UserId` of the approver.
    pub fn user_id(self, id: i64) -> Self {
        self.param("UserId", id)
    }

    /// `UserName` of the approver.
    pub fn user_name(self, name: impl Into<String>) -> Self {
        self.param("UserName", name.into())
    }

    /// `ActionResultId`.
    pub fn action_result_id(self, id: impl Into<String>) -> Self {
        self.param("ActionResultId", id.into())
    }

    /// `PostId` of the approver's post.
    pub fn post_id(self, id: i64) -> Self {
        self.param("PostId", id)
    }

    /// `PostNumber` of the approver's post.
    pub fn post_number(self, number: impl Into<String>) -> Self {
        self.param("PostNumber", number.into())
    }

    /// `Disposition`: the approval comment.
    pub fn disposition(self, text: impl Into<String>) -> Self {
        self.param("Disposition", text.into())
    }

    /// Any other `data` key, sent as given.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Sends the decision.
    pub async fn send(self) -> Result<WorkflowResult> {
        check_form_id(&self.form_id)?;
        let approval = self
            .approval
            .ok_or_else(|| Error::InvalidInput("WorkflowAudit: no approval decision".into()))?;
        if self.numbers.is_empty() && self.ids.is_empty() {
            return Err(Error::InvalidInput(
                "WorkflowAudit: give numbers or ids".into(),
            ));
        }
        let mut data = Map::new();
        data.insert("FormId".into(), self.form_id.clone().into());
        data.insert("Ids".into(), self.ids.into());
        data.insert("Numbers".into(), self.numbers.into());
        data.insert("ApprovalType".into(), approval.code().into());
        data.extend(self.params);
        let service = service::dynamic_form("WorkflowAudit");
        let call = Call {
            service: &service,
            body: serde_json::json!({ "data": data }),
            idempotency: Idempotency::NonIdempotent,
            form_id: Some(&self.form_id),
        };
        let answer = self.client.transport.call(call).await?;
        written(
            "WorkflowAudit",
            (|| {
                let raw = answer.into_value()?;
                let status = write_status(&raw)?;
                let operation_results = raw
                    .get("Result")
                    .and_then(|r| r.get("OperationResults"))
                    .cloned()
                    .unwrap_or(Value::Null);
                Ok(WorkflowResult {
                    status,
                    operation_results,
                    raw,
                })
            })(),
        )
    }
}
