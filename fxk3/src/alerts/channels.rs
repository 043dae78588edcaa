//! Where alerts go: a plain webhook (the notice as JSON), the group robots of 企业微信,
//! 钉钉 and 飞书 (each in its own message format, with the optional 加签 of the last two),
//! and Fxiaoke users (a CRM text message).

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::Notice;
use super::text::Rendered;

/// The kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChannelKind {
    /// POST of the notice as JSON (`event`, `problem`, `since`, `at`, `title`, `text`).
    Webhook,
    /// 企业微信 group robot (`msgtype: text`).
    Wecom,
    /// 钉钉 custom robot (`msgtype: text`, signed when a secret is set).
    Dingtalk,
    /// 飞书 custom bot (`msg_type: text`, signed when a secret is set).
    Feishu,
    /// A Fxiaoke text message to CRM users.
    Crm,
}

impl ChannelKind {
    /// The name in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Feishu => "feishu",
            ChannelKind::Crm => "crm",
        }
    }
}

/// Why a notice did not reach a channel. Never holds a webhook's address: robots' addresses
/// carry their key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// No answer (connection, timeout).
    #[error("could not reach the webhook: {0}")]
    Unreachable(String),
    /// An HTTP status other than 2xx.
    #[error("the webhook answered HTTP {0}")]
    Status(u16),
    /// The robot answered with an error code.
    #[error("the robot refused the message: {code} {message}")]
    Refused {
        /// `errcode` (企业微信, 钉钉) or `code` (飞书).
        code: i64,
        /// Its message.
        message: String,
    },
    /// The CRM refused the message or could not be reached.
    #[error("the CRM message failed: {0}")]
    Crm(#[from] fxiaoke_sdk::Error),
}

impl DeliveryError {
    /// False for a message that may have gone out, and for one the robot refused for good
    /// (too long, a keyword missing, a bad signature): it is not offered again. Robots' rate
    /// limits (企业微信 45009, 钉钉 130101) and failures to connect or answer are offered again.
    pub fn may_retry(&self) -> bool {
        match self {
            DeliveryError::Crm(e) => !e.is_outcome_unknown() && e.is_retryable(),
            DeliveryError::Refused { code, .. } => matches!(code, 45009 | 130_101),
            DeliveryError::Unreachable(_) | DeliveryError::Status(_) => true,
        }
    }
}

/// One configured channel, with its secrets.
#[derive(Clone)]
pub struct Channel {
    kind: ChannelKind,
    to: To,
}

#[derive(Clone)]
enum To {
    Url {
        http: reqwest::Client,
        url: SecretString,
        secret: Option<SecretString>,
    },
    Crm {
        client: fxiaoke_sdk::Client,
        users: Vec<String>,
    },
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A webhook or robot channel posting to `url` (a secret: robots' addresses carry their
    /// key), signing with `secret` where the robot supports it.
    pub fn url(
        kind: ChannelKind,
        http: reqwest::Client,
        url: SecretString,
        secret: Option<SecretString>,
    ) -> Self {
        Channel {
            kind,
            to: To::Url { http, url, secret },
        }
    }

    /// Fxiaoke users (`FSUID_…`), told by a CRM text message.
    pub fn crm(client: fxiaoke_sdk::Client, users: Vec<String>) -> Self {
        Channel {
            kind: ChannelKind::Crm,
            to: To::Crm { client, users },
        }
    }

    /// The kind.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    pub(crate) async fn send(&self, notice: &Notice, text: &Rendered) -> Result<(), DeliveryError> {
        match &self.to {
            To::Crm { client, users } => {
                client.text_message(users, text.full()).send().await?;
                Ok(())
            }
            To::Url { http, url, secret } => {
                let now = chrono::Utc::now().timestamp_millis();
                let (address, body) = request(
                    self.kind,
                    url.expose_secret(),
                    secret.as_ref(),
                    notice,
                    text,
                    now,
                );
                let answer = http
                    .post(address)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| DeliveryError::Unreachable(e.without_url().to_string()))?;
                let status = answer.status().as_u16();
                if !answer.status().is_success() {
                    return Err(DeliveryError::Status(status));
                }
                let bytes = answer
                    .bytes()
                    .await
                    .map_err(|e| DeliveryError::Unreachable(e.without_url().to_string()))?;
                check_answer(self.kind, &bytes)
            }
        }
    }
}

/// The address and body of a robot's or webhook's message at `now` (epoch ms, for signing).
fn request(
    kind: ChannelKind,
    url: &str,
    secret: Option<&SecretString>,
    notice: &Notice,
    text: &Rendered,
    now: i64,
) -> (String, Value) {
    match kind {
        ChannelKind::Wecom => (
            url.to_owned(),
            json!({"msgtype": "text", "text": {"content": text.full()}}),
        ),
        ChannelKind::Dingtalk => {
            let mut address = url.to_owned();
            if let Some(secret) = secret {
                // 加签: HmacSHA256 keyed by the secret over "timestamp\nsecret", Base64, then
                // URL-encoded into the query.
                let secret = secret.expose_secret();
                let sign = hmac_base64(secret.as_bytes(), format!("{now}\n{secret}").as_bytes());
                let sign: String = url::form_urlencoded::byte_serialize(sign.as_bytes()).collect();
                let join = if address.contains('?') { '&' } else { '?' };
                address = format!("{address}{join}timestamp={now}&sign={sign}");
            }
            (
                address,
                json!({"msgtype": "text", "text": {"content": text.full()}}),
            )
        }
        ChannelKind::Feishu => {
            let mut body = json!({"msg_type": "text", "content": {"text": text.full()}});
            if let Some(secret) = secret {
                // 签名校验: HmacSHA256 keyed by "timestamp\nsecret" over nothing, Base64; the
                // timestamp in seconds.
                let secs = now / 1000;
                let key = format!("{secs}\n{}", secret.expose_secret());
                body["timestamp"] = secs.to_string().into();
                body["sign"] = hmac_base64(key.as_bytes(), b"").into();
            }
            (url.to_owned(), body)
        }
        ChannelKind::Webhook | ChannelKind::Crm => (
            url.to_owned(),
            json!({
                "event": notice.event,
                "problem": notice.problem.kind,
                "flow": notice.problem.flow,
                "count": notice.problem.count,
                "detail": notice.problem.detail,
                "since": notice.since,
                "at": notice.at,
                "title": text.title,
                "text": text.body,
            }),
        ),
    }
}

fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Robots answer HTTP 200 with an error code in the body.
fn check_answer(kind: ChannelKind, body: &[u8]) -> Result<(), DeliveryError> {
    let code_key = match kind {
        ChannelKind::Wecom | ChannelKind::Dingtalk => "errcode",
        ChannelKind::Feishu => "code",
        ChannelKind::Webhook | ChannelKind::Crm => return Ok(()),
    };
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = answer[code_key]
        .as_i64()
        // Older 飞书 bots answer `StatusCode`.
        .or_else(|| answer["StatusCode"].as_i64());
    match code {
        Some(0) => Ok(()),
        code => Err(DeliveryError::Refused {
            code: code.unwrap_or(-1),
            message: answer["errmsg"]
                .as_str()
                .or(answer["msg"].as_str())
                .unwrap_or("an answer without a code")
                .chars()
                .take(200)
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Event;
    use crate::health::{Problem, ProblemKind};

    fn notice() -> (Notice, Rendered) {
        let n = Notice {
            event: Event::Alert,
            problem: Problem {
                kind: ProblemKind::FlowFailed,
                flow: "orders".into(),
                count: 1,
                detail: "K3Cloud unreachable".into(),
            },
            since: 5,
            at: 6,
        };
        let text = Rendered {
            title: "T".into(),
            body: "B".into(),
        };
        (n, text)
    }

    #[test]
    fn each_robot_gets_its_own_format_and_signature() {
        // The signatures were computed apart, with Python's hmac and base64 modules, from the
        // vendors' recipes.
        let (n, text) = notice();
        let secret = SecretString::from("SEC123");
        let now = 1_700_000_000_123;
        let table = [
            (
                ChannelKind::Wecom,
                None,
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K",
                json!({"msgtype": "text", "text": {"content": "T\nB"}}),
            ),
            (
                ChannelKind::Dingtalk,
                Some(&secret),
                "https://oapi.dingtalk.com/robot/send?access_token=A&timestamp=1700000000123&sign=\
                 FVgVLxEM%2BJweBRCq6YFMJ4KCCc7PFGREuLoDL%2FV5GSc%3D",
                json!({"msgtype": "text", "text": {"content": "T\nB"}}),
            ),
            (
                ChannelKind::Feishu,
                Some(&secret),
                "https://open.feishu.cn/open-apis/bot/v2/hook/H",
                json!({"msg_type": "text", "content": {"text": "T\nB"}, "timestamp": "1700000000",
                       "sign": "j/tImR0k8vYXRsYw0+GHVQkV1v/J/8obOuMU7PE/KDo="}),
            ),
            (
                ChannelKind::Webhook,
                None,
                "http://127.0.0.1/hook",
                json!({"event": "alert", "problem": "flow_failed", "flow": "orders", "count": 1,
                       "detail": "K3Cloud unreachable", "since": 5, "at": 6, "title": "T",
                       "text": "B"}),
            ),
        ];
        for (kind, secret, want_url, want_body) in table {
            let base = want_url.split("&timestamp").next().unwrap();
            let (url, body) = request(kind, base, secret, &n, &text, now);
            assert_eq!((url.as_str(), &body), (want_url, &want_body), "{kind:?}");
        }
    }

    #[test]
    fn a_robot_refusal_is_an_error_with_its_code() {
        let ok = [
            (ChannelKind::Wecom, r#"{"errcode":0,"errmsg":"ok"}"#),
            (ChannelKind::Feishu, r#"{"code":0,"msg":"success"}"#),
            (ChannelKind::Feishu, r#"{"StatusCode":0}"#),
            (ChannelKind::Webhook, "anything"),
        ];
        for (kind, body) in ok {
            assert!(
                check_answer(kind, body.as_bytes()).is_ok(),
                "{kind:?} {body}"
            );
        }
        let refused = check_answer(
            ChannelKind::Dingtalk,
            br#"{"errcode":310000,"errmsg":"sign not match"}"#,
        );
        assert!(
            matches!(&refused, Err(DeliveryError::Refused { code: 310_000, message }) if message == "sign not match"),
            "{refused:?}"
        );
        assert!(matches!(
            check_answer(ChannelKind::Feishu, b"<html>"),
            Err(DeliveryError::Refused { code: -1, .. })
        ));
    }
}
