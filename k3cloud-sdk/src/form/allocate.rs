//! Allocate and CancelAllocate: share base data with other organisations.

use std::fmt::Display;

use serde_json::{Map, Value};

use super::{OperationResult, check_form_id, flag, form_body, written};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::response::{attribute, write_status};
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// Allocate (分配) base data to organisations, or cancel an allocation. Created by
/// [`Client::allocate`] and [`Client::cancel_allocate`].
///
/// ```no_run
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// client
///     .allocate("BD_MATERIAL")
///     .pk_ids([100001])
///     .target_orgs([100207, 100208])
///     .auto_submit_and_audit(true)
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "an allocation does nothing until you call .send()"]
pub struct Allocate<'c> {
    client: &'c Client,
    method: &'static str,
    form_id: String,
    pk_ids: Vec<String>,
    target_orgs: Vec<String>,
    params: Map<String, Value>,
}

impl<'c> Allocate<'c> {
    pub(crate) fn new(
        client: &'c Client,
        method: &'static str,
        form_id: impl Into<String>,
    ) -> Self {
        Allocate {
            client,
            method,
            form_id: form_id.into(),
            pk_ids: Vec::new(),
            target_orgs: Vec::new(),
            params: Map::new(),
        }
    }

    /// `PkIds`: internal ids of the base data.
    pub fn pk_ids<I, T: Display>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = T>,
    {
        self.pk_ids.extend(ids.into_iter().map(|i| i.to_string()));
        self
    }

    /// `TOrgIds`: internal ids of the target organisations.
    pub fn target_orgs<I, T: Display>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = T>,
    {
        self.target_orgs
            .extend(ids.into_iter().map(|i| i.to_string()));
        self
    }

    /// `IsAutoSubmitAndAudit`: submit and audit the allocated copies (Allocate only).
    pub fn auto_submit_and_audit(self, on: bool) -> Self {
        self.param("IsAutoSubmitAndAudit", flag(on))
    }

    /// Any other `data` key, sent as given.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Sends the allocation; rows follow `pk_ids`.
    pub async fn send(self) -> Result<OperationResult> {
        check_form_id(&self.form_id)?;
        if self.pk_ids.is_empty() || self.target_orgs.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{}: give base-data ids and target organisations",
                self.method
            )));
        }
        let rows = self.pk_ids.len();
        let mut data = Map::new();
        data.insert("PkIds".into(), self.pk_ids.join(",").into());
        data.insert("TOrgIds".into(), self.target_orgs.join(",").into());
        data.extend(self.params);
        let service = service::dynamic_form(self.method);
        let call = Call {
            service: &service,
            body: form_body(&self.form_id, data),
            idempotency: Idempotency::NonIdempotent,
            form_id: Some(&self.form_id),
        };
        let answer = self.client.transport.call(call).await?;
        let raw = written(self.method, answer.into_value())?;
        let status = written(self.method, write_status(&raw))?;
        Ok(OperationResult {
            rows: attribute(rows, &status),
            status,
            raw,
        })
    }
}
