//! Submit, Audit, UnAudit, Delete, CancelAssign and ExcuteOperation: one builder, because they
//! take the same `data` (`Numbers` or `Ids`, plus options).

use std::fmt::Display;

use serde_json::{Map, Value};

use super::{OperationResult, check_form_id, flag, form_body, written};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::response::{attribute, write_status};
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// Which document operation an [`Operation`] performs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperationKind {
    /// 提交 `Submit`: draft (A) → under review (B), starting any workflow.
    Submit,
    /// 审核 `Audit`: → audited (C).
    Audit,
    /// 反审核 `UnAudit`: audited → re-audit (D).
    UnAudit,
    /// 删除 `Delete` (only documents that are not submitted or audited).
    Delete,
    /// 撤销 `CancelAssign`: withdraw a submitted document.
    CancelAssign,
    /// `ExcuteOperation` (the vendor's spelling) with an operation number such as `Forbid`,
    /// `Enable`, `Cancel`, `UnCancel`, `CloseBill`, `UnCloseBill`.
    Custom(String),
}

impl OperationKind {
    fn method(&self) -> &'static str {
        match self {
            OperationKind::Submit => "Submit",
            OperationKind::Audit => "Audit",
            OperationKind::UnAudit => "UnAudit",
            OperationKind::Delete => "Delete",
            OperationKind::CancelAssign => "CancelAssign",
            OperationKind::Custom(_) => "ExcuteOperation",
        }
    }
}

/// A document operation on numbers or ids. Created by [`Client::submit`], [`Client::audit`],
/// [`Client::unaudit`], [`Client::delete`], [`Client::cancel_assign`] and
/// [`Client::execute_operation`].
///
/// ```no_run
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// let result = client.audit("SAL_SaleOrder").numbers(["SO0001", "SO0002"]).send().await?;
/// for (number, row) in ["SO0001", "SO0002"].iter().zip(&result.rows) {
///     println!("{number}: {row:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "an operation does nothing until you call .send()"]
pub struct Operation<'c> {
    client: &'c Client,
    kind: OperationKind,
    form_id: String,
    numbers: Vec<String>,
    ids: Vec<String>,
    params: Map<String, Value>,
}

impl<'c> Operation<'c> {
    pub(crate) fn new(client: &'c Client, kind: OperationKind, form_id: impl Into<String>) -> Self {
        Operation {
            client,
            kind,
            form_id: form_id.into(),
            numbers: Vec::new(),
            ids: Vec::new(),
            params: Map::new(),
        }
    }

    /// Acts on these document numbers (`Numbers`, sent as an array).
    pub fn numbers<I, S>(mut self, numbers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.numbers.extend(numbers.into_iter().map(Into::into));
        self
    }

    /// Acts on these internal ids (`Ids`, sent as a comma-separated string).
    pub fn ids<I, T>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Display,
    {
        self.ids.extend(ids.into_iter().map(|i| i.to_string()));
        self
    }

    /// `CreateOrgId`: the creating organisation's internal id (0 = not given).
    pub fn create_org_id(self, id: i64) -> Self {
        self.param("CreateOrgId", id)
    }

    /// `UseOrgId`: the using organisation's internal id.
    pub fn use_org_id(self, id: i64) -> Self {
        self.param("UseOrgId", id)
    }

    /// `NetworkCtrl`: take the network-control lock while operating (server default false).
    pub fn network_ctrl(self, on: bool) -> Self {
        self.param("NetworkCtrl", flag(on))
    }

    /// `IgnoreInterationFlag`: allow interaction prompts to be ignored (server default true).
    pub fn ignore_interaction_flag(self, on: bool) -> Self {
        self.param("IgnoreInterationFlag", flag(on))
    }

    /// `InterationFlags` (sic): pre-answered interaction prompts, e.g. `STK_InvCheckResult`
    /// (allow negative stock). Audit and UnAudit.
    pub fn interaction_flags<I, S>(self, flags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined = flags
            .into_iter()
            .map(|f| f.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join(";");
        self.param("InterationFlags", joined)
    }

    /// `IsVerifyProcInst`: check for a running workflow instance (Audit, UnAudit; default true).
    pub fn verify_proc_inst(self, on: bool) -> Self {
        self.param("IsVerifyProcInst", flag(on))
    }

    /// `UseBatControlTimes`: apply the batch-size parameter (Audit; default false).
    pub fn use_bat_control_times(self, on: bool) -> Self {
        self.param("UseBatControlTimes", flag(on))
    }

    /// `SelectedPostId`: the workflow initiator's post (Submit).
    pub fn selected_post_id(self, id: i64) -> Self {
        self.param("SelectedPostId", id)
    }

    /// `PkEntryIds`: entry-level targets for ExcuteOperation, `[{"Id": …, "EntryIds": "…"}]`.
    pub fn pk_entry_ids(self, entries: Value) -> Self {
        self.param("PkEntryIds", entries)
    }

    /// Any other `data` key, sent as given.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Sends the operation.
    ///
    /// When the server reports success, each requested number or id gets a
    /// [`RowResult`](crate::RowResult) in request order — `Unconfirmed` for any the server
    /// silently skipped. When it reports failure (`IsSuccess: false`), this is an
    /// [`Error::Business`], even if some documents went through;
    /// [`BusinessError::rows`](crate::BusinessError::rows) maps its entries back to the
    /// request.
    pub async fn send(self) -> Result<OperationResult> {
        check_form_id(&self.form_id)?;
        let rows = match (self.numbers.is_empty(), self.ids.is_empty()) {
            (true, true) => {
                return Err(Error::InvalidInput(format!(
                    "{}: give the document numbers or ids to act on",
                    self.kind.method()
                )));
            }
            (false, false) => {
                return Err(Error::InvalidInput(format!(
                    "{}: give numbers or ids, not both",
                    self.kind.method()
                )));
            }
            (false, true) => self.numbers.len(),
            (true, false) => self.ids.len(),
        };
        if let Some(bad) = self.ids.iter().find(|i| i.is_empty() || i.contains(',')) {
            return Err(Error::InvalidInput(format!("invalid id `{bad}`")));
        }
        let mut data = Map::new();
        data.insert("Numbers".into(), self.numbers.into());
        data.insert("Ids".into(), self.ids.join(",").into());
        data.extend(self.params);
        let mut body = form_body(&self.form_id, data);
        if let (OperationKind::Custom(op), Value::Object(map)) = (&self.kind, &mut body) {
            if op.trim().is_empty() {
                return Err(Error::InvalidInput("operation number is empty".into()));
            }
            // Keep the vendor's key order: formid, opNumber, data.
            let data = map.remove("data");
            map.insert("opNumber".into(), Value::String(op.clone()));
            if let Some(data) = data {
                map.insert("data".into(), data);
            }
        }
        let service = service::dynamic_form(self.kind.method());
        let call = Call {
            service: &service,
            body,
            idempotency: Idempotency::NonIdempotent,
            form_id: Some(&self.form_id),
        };
        let method = self.kind.method();
        let answer = self.client.transport.call(call).await?;
        let raw = written(method, answer.into_value())?;
        let status = written(method, write_status(&raw))?;
        Ok(OperationResult {
            rows: attribute(rows, &status),
            status,
            raw,
        })
    }
}
