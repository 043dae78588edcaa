//! Push (下推): create target documents from source documents by a conversion rule.

use std::fmt::Display;

use serde_json::{Map, Value};

use super::{check_form_id, flag, form_body, written};
use crate::client::Client;
use crate::error::{Error, Result, SuccessEntity};
use crate::response::{ResponseStatus, decode_value_at, write_status};
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// Push source documents to a target form. Created by [`Client::push`].
///
/// ```no_run
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// let pushed = client
///     .push("SAL_SaleOrder")
///     .numbers(["SO0001"])
///     .target_form("SAL_OUTSTOCK")
///     .enable_default_rule(true)
///     .send()
///     .await?;
/// for bill in &pushed.created {
///     println!("created {} ({})", bill.number, bill.id);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a push does nothing until you call .send()"]
pub struct Push<'c> {
    client: &'c Client,
    form_id: String,
    numbers: Vec<String>,
    ids: Vec<String>,
    entry_ids: Vec<String>,
    params: Map<String, Value>,
}

/// What Push returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PushResult {
    /// The target documents saved (`ResponseStatus.SuccessEntitys`).
    pub created: Vec<SuccessEntity>,
    /// The save result of the target documents.
    pub status: ResponseStatus,
    /// The conversion result (`ConvertResponseStatus`), when sent.
    pub convert_status: Option<ResponseStatus>,
    /// The whole answer.
    pub raw: Value,
}

impl<'c> Push<'c> {
    pub(crate) fn new(client: &'c Client, form_id: impl Into<String>) -> Self {
        Push {
            client,
            form_id: form_id.into(),
            numbers: Vec::new(),
            ids: Vec::new(),
            entry_ids: Vec::new(),
            params: Map::new(),
        }
    }

    /// Source document numbers.
    pub fn numbers<I, S>(mut self, numbers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.numbers.extend(numbers.into_iter().map(Into::into));
        self
    }

    /// Source document internal ids.
    pub fn ids<I, T: Display>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = T>,
    {
        self.ids.extend(ids.into_iter().map(|i| i.to_string()));
        self
    }

    /// Source entry ids, for an entry-level push (then give no numbers or ids).
    pub fn entry_ids<I, T: Display>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = T>,
    {
        self.entry_ids
            .extend(ids.into_iter().map(|i| i.to_string()));
        self
    }

    /// `RuleId`: the conversion rule (required unless the default rule is enabled).
    pub fn rule_id(self, rule: impl Into<String>) -> Self {
        self.param("RuleId", rule.into())
    }

    /// `TargetFormId`: the target form (required with the default rule).
    pub fn target_form(self, form_id: impl Into<String>) -> Self {
        self.param("TargetFormId", form_id.into())
    }

    /// `TargetBillTypeId`.
    pub fn target_bill_type(self, bill_type: impl Into<String>) -> Self {
        self.param("TargetBillTypeId", bill_type.into())
    }

    /// `TargetOrgId`: the target organisation's internal id.
    pub fn target_org_id(self, id: i64) -> Self {
        self.param("TargetOrgId", id)
    }

    /// `IsEnableDefaultRule`: use the default conversion rule (server default false).
    pub fn enable_default_rule(self, on: bool) -> Self {
        self.param("IsEnableDefaultRule", flag(on))
    }

    /// `IsDraftWhenSaveFail`: keep targets that fail to save as drafts (which have no number).
    pub fn draft_when_save_fails(self, on: bool) -> Self {
        self.param("IsDraftWhenSaveFail", flag(on))
    }

    /// `CustomParams`: passed to conversion plug-ins.
    pub fn custom_params(self, params: Value) -> Self {
        self.param("CustomParams", params)
    }

    /// Any other `data` key, sent as given.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Pushes.
    pub async fn send(self) -> Result<PushResult> {
        check_form_id(&self.form_id)?;
        if self.numbers.is_empty() && self.ids.is_empty() && self.entry_ids.is_empty() {
            return Err(Error::InvalidInput(
                "Push: give source numbers, ids or entry ids".into(),
            ));
        }
        let mut data = Map::new();
        data.insert("Ids".into(), self.ids.join(",").into());
        data.insert("Numbers".into(), self.numbers.into());
        data.insert("EntryIds".into(), self.entry_ids.join(",").into());
        data.extend(self.params);
        let service = service::dynamic_form("Push");
        let call = Call {
            service: &service,
            body: form_body(&self.form_id, data),
            idempotency: Idempotency::NonIdempotent,
            form_id: Some(&self.form_id),
        };
        let answer = self.client.transport.call(call).await?;
        written("Push", decode_push(answer))
    }
}

pub(crate) fn decode_push(answer: crate::response::Answer) -> Result<PushResult> {
    let raw = answer.into_value()?;
    let status = write_status(&raw)?;
    let convert_status = match raw
        .get("Result")
        .and_then(|r| r.get("ConvertResponseStatus"))
    {
        Some(v @ Value::Object(_)) => {
            Some(decode_value_at(v, "Result.ConvertResponseStatus", &[])?)
        }
        _ => None,
    };
    Ok(PushResult {
        created: status.success_entities.clone(),
        status,
        convert_status,
        raw,
    })
}
