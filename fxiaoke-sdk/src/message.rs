//! Messages to employees (`/cgi/message/send`): text and composite cards. Parameters are
//! top-level, with no `data` wrapper and no operator.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::client::Client;
use crate::crm::{WriteAnswer, WriteResult};
use crate::error::{Error, Result};
use crate::transport::{AuthFields, Call};

/// The most recipients one message may have.
pub const MAX_RECIPIENTS: usize = 500;

/// A composite (card) message: a title, a first line, label/value rows, a remark and a link.
///
/// ```
/// use fxiaoke_sdk::Composite;
///
/// let card = Composite::new("对接状态报告")
///     .first("2026-01-01 10:00")
///     .row("单号", "SO-0001")
///     .row("结果", "成功")
///     .remark("同步完成")
///     .link("查看客户", Composite::crm_link("AccountObj", "5dc4cefa038eaa0001c0586f"));
/// # let _ = card;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Composite {
    head: Title,
    #[serde(skip_serializing_if = "Option::is_none")]
    first: Option<Content>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    form: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Title {
    title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Content {
    content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Row {
    label: String,
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Link {
    title: String,
    url: String,
}

impl Composite {
    /// A card with a title (`head.title`).
    pub fn new(title: impl Into<String>) -> Self {
        Composite {
            head: Title {
                title: title.into(),
            },
            first: None,
            form: Vec::new(),
            remark: None,
            link: None,
        }
    }

    /// The first line (`first.content`).
    pub fn first(mut self, content: impl Into<String>) -> Self {
        self.first = Some(Content {
            content: content.into(),
        });
        self
    }

    /// A label/value row (`form[]`).
    pub fn row(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.form.push(Row {
            label: label.into(),
            value: value.into(),
        });
        self
    }

    /// The remark (`remark.content`).
    pub fn remark(mut self, content: impl Into<String>) -> Self {
        self.remark = Some(Content {
            content: content.into(),
        });
        self
    }

    /// The link (`link.title`, `link.url`).
    pub fn link(mut self, title: impl Into<String>, url: impl Into<String>) -> Self {
        self.link = Some(Link {
            title: title.into(),
            url: url.into(),
        });
        self
    }

    /// A link that opens a CRM record in the app:
    /// `fs://CRM/udobj?{"objDescApiName":…,"objDataId":…}`.
    pub fn crm_link(object_api_name: &str, id: &str) -> String {
        format!(
            "fs://CRM/udobj?{}",
            serde_json::json!({"objDescApiName": object_api_name, "objDataId": id})
        )
    }
}

#[derive(Debug, Clone)]
enum Body {
    Text(String),
    Composite(Composite),
}

/// A message. Created by [`Client::text_message`] and [`Client::composite_message`].
///
/// A message is a write: once it may have reached the server it is never resent (a second
/// copy would reach the employees).
///
/// ```no_run
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// client
///     .text_message(["FSUID_0123456789ABCDEF0123456789ABCDEF"], "订单 SO-0001 已发货")
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a message is not sent until you call .send()"]
pub struct Message<'c> {
    client: &'c Client,
    to: Vec<String>,
    body: Body,
    extra: Map<String, Value>,
}

impl<'c> Message<'c> {
    fn new<I, S>(client: &'c Client, to: I, body: Body) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Message {
            client,
            to: to.into_iter().map(Into::into).collect(),
            body,
            extra: Map::new(),
        }
    }

    pub(crate) fn text<I, S>(client: &'c Client, to: I, content: String) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Message::new(client, to, Body::Text(content))
    }

    pub(crate) fn composite<I, S>(client: &'c Client, to: I, composite: Composite) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Message::new(client, to, Body::Composite(composite))
    }

    /// Any other top-level key, sent as given.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    fn body(&self) -> Result<Map<String, Value>> {
        if self.to.is_empty() || self.to.len() > MAX_RECIPIENTS {
            return Err(Error::InvalidInput(format!(
                "a message needs 1 to {MAX_RECIPIENTS} recipients, got {}",
                self.to.len()
            )));
        }
        if self.to.iter().any(|u| u.trim().is_empty()) {
            return Err(Error::InvalidInput("a recipient id is empty".into()));
        }
        let mut body = Map::new();
        body.insert("toUser".into(), self.to.clone().into());
        match &self.body {
            Body::Text(content) => {
                if content.trim().is_empty() {
                    return Err(Error::InvalidInput("the message text is empty".into()));
                }
                body.insert("msgType".into(), "text".into());
                body.insert("text".into(), serde_json::json!({"content": content}));
            }
            Body::Composite(c) => {
                if c.head.title.trim().is_empty() {
                    return Err(Error::InvalidInput("the card has no title".into()));
                }
                body.insert("msgType".into(), "composite".into());
                body.insert(
                    "composite".into(),
                    serde_json::to_value(c).unwrap_or_default(),
                );
            }
        }
        body.extend(self.extra.clone());
        Ok(body)
    }

    /// Sends the message.
    pub async fn send(self) -> Result<WriteResult> {
        let body = self.body()?;
        let call = Call::new("message.send", "/cgi/message/send", body)
            .auth(AuthFields::Corp)
            .write();
        self.client
            .transport
            .call_decoded(
                call,
                &WriteAnswer {
                    operation: "message.send",
                },
            )
            .await
    }
}
