//! The escape hatch: any service with any JSON body.

use serde_json::Value;

use crate::client::Client;
use crate::error::Result;
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// A call to any service with a JSON body of your making. Created by [`Client::raw`].
///
/// The answer is checked like every other (HTTP status, `response_error:`, `IsSuccess: false`,
/// `[[{…}]]` errors, session loss) and returned as JSON.
///
/// ```no_run
/// use serde_json::json;
/// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
/// let stock = client
///     .raw("Kingdee.K3.SCM.WebApi.ServicesStub.InventoryQueryService.GetInventoryData")
///     .body(json!({"para": {"FMaterialNumbers": ["MAT0001"]}}))
///     .idempotent(true)
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a call does nothing until you call .send()"]
pub struct RawCall<'c> {
    client: &'c Client,
    service: String,
    body: Value,
    idempotent: bool,
}

impl<'c> RawCall<'c> {
    pub(crate) fn new(client: &'c Client, service: &str) -> Self {
        // A bare method name means DynamicFormService.<method>.
        let service = if service.contains('.') || service.trim().is_empty() {
            service.to_owned()
        } else {
            service::dynamic_form(service)
        };
        RawCall {
            client,
            service,
            body: Value::Object(serde_json::Map::new()),
            idempotent: false,
        }
    }

    /// The JSON body (default `{}`).
    pub fn body(mut self, body: Value) -> Self {
        self.body = body;
        self
    }

    /// Declares the call safe to resend (a read). Calls are treated as writes by default:
    /// never resent once sent without an answer.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Sends the call.
    pub async fn send(self) -> Result<Value> {
        let idempotency = if self.idempotent {
            Idempotency::Idempotent
        } else {
            Idempotency::NonIdempotent
        };
        let call = Call {
            service: &self.service,
            body: self.body,
            idempotency,
            form_id: None,
        };
        let value = self.client.transport.call(call).await?.into_value();
        if self.idempotent {
            value
        } else {
            crate::form::written(service::method_of(&self.service), value)
        }
    }
}
