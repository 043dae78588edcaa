//! The escape hatch: any path with any JSON body.

use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::{Endpoint, Error, Result};
use crate::transport::{AuthFields, Call};

/// A call to any path with a JSON body of your making. Created by [`Client::raw`].
///
/// The token, corp id and operator are added (unless turned off), and the answer is checked
/// like every other: a non-zero `errorCode` is a typed error, a refused token is replaced
/// once. The whole answer comes back as JSON.
///
/// ```no_run
/// use serde_json::json;
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// let team = client
///     .raw("/cgi/crm/team/get")
///     .body(json!({"apiName": "AccountObj", "data": {"dataID": "5dc4cefa038eaa0001c0586f"}}))
///     .idempotent(true)
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a call does nothing until you call .send()"]
pub struct RawCall<'c> {
    client: &'c Client,
    path: String,
    body: Value,
    idempotent: bool,
    auth: AuthFields,
}

impl<'c> RawCall<'c> {
    pub(crate) fn new(client: &'c Client, path: String) -> Self {
        RawCall {
            client,
            path,
            body: Value::Object(Map::new()),
            idempotent: false,
            auth: AuthFields::CorpAndOperator,
        }
    }

    /// The JSON body, an object (default `{}`). A `currentOpenUserId` in it overrides the
    /// client's operator.
    pub fn body(mut self, body: Value) -> Self {
        self.body = body;
        self
    }

    /// Declares the call safe to resend (a read). Calls are treated as writes by default:
    /// never resent once they may have reached the server.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Leaves `currentOpenUserId` out (org and message endpoints do not take it).
    pub fn without_operator(mut self) -> Self {
        self.auth = AuthFields::Corp;
        self
    }

    /// Sends the body exactly as given: no token, corp id or operator (for token endpoints
    /// and other unauthenticated paths).
    pub fn without_auth(mut self) -> Self {
        self.auth = AuthFields::None;
        self
    }

    /// Sends the call and returns the whole answer.
    pub async fn send(self) -> Result<Value> {
        let Value::Object(body) = self.body else {
            return Err(Error::InvalidInput("the body must be a JSON object".into()));
        };
        // 10013 means "offset out of range" on query paths.
        let endpoint = if self.path.ends_with("/data/query") || self.path.ends_with("/findOne") {
            Endpoint::Query
        } else {
            Endpoint::Other
        };
        let mut call = Call::new("raw", &self.path, body)
            .auth(self.auth)
            .endpoint(endpoint);
        if !self.idempotent {
            call = call.write();
        }
        let answer = self.client.transport.call(call).await?;
        let value = answer.into_value();
        if self.idempotent {
            value
        } else {
            value.map_err(|e| Error::OutcomeUnknown {
                operation: "raw".into(),
                source: Box::new(e),
            })
        }
    }
}
