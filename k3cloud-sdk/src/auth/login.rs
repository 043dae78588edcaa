//! Session logins: the request bodies and the `LoginResult` answer.

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AuthKind;
use super::signature::login_sign;
use crate::de;
use crate::error::{Error, Result};

/// What a session login reported (no secret in it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginInfo {
    /// `LoginResultType` (1 success, -5 accepted "needs form handling").
    pub result_type: i64,
    /// `Message`: usually empty; on some servers a licence-expiry warning.
    pub message: Option<String>,
    /// `Context.UserId`.
    pub user_id: Option<i64>,
    /// `Context.UserName`.
    pub user_name: Option<String>,
    /// `Context.DisplayVersion`, the server version (e.g. `9.0.553.10`).
    pub server_version: Option<String>,
    /// `Context.DataCenterName`.
    pub data_center_name: Option<String>,
}

/// The body of the login call, in the positional `parameters` form the Java/.NET SDKs send,
/// and the `AuthService` method it goes to.
pub(crate) fn login_body(
    kind: &AuthKind,
    acct_id: &str,
    user: &str,
    lcid: u32,
    now: i64,
) -> Option<(&'static str, Value)> {
    Some(match kind {
        AuthKind::Signed { .. } => return None,
        AuthKind::Password { password } => (
            "ValidateUser",
            json!({"parameters": [acct_id, user, password.expose_secret(), lcid]}),
        ),
        AuthKind::AppSecret { app_id, app_secret } => (
            "LoginByAppSecret",
            json!({"parameters": [acct_id, user, app_id.expose_secret(), app_secret.expose_secret(), lcid]}),
        ),
        AuthKind::Sign { app_id, app_secret } => {
            let sign = login_sign(
                acct_id,
                user,
                app_id.expose_secret(),
                app_secret.expose_secret(),
                now,
            );
            (
                "LoginBySign",
                json!({"parameters": [acct_id, user, app_id.expose_secret(), now, sign, lcid]}),
            )
        }
    })
}

#[derive(Deserialize)]
struct LoginResultWire {
    #[serde(rename = "LoginResultType", default, deserialize_with = "de::opt_i64")]
    result_type: Option<i64>,
    #[serde(rename = "Message", default, deserialize_with = "de::opt_string")]
    message: Option<String>,
    #[serde(
        rename = "KDSVCSessionId",
        default,
        deserialize_with = "de::opt_string"
    )]
    kdsvc_session_id: Option<String>,
    #[serde(rename = "IsSuccessByAPI", default, deserialize_with = "de::bool")]
    is_success_by_api: bool,
    #[serde(rename = "Context", default)]
    context: Option<LoginContext>,
}

#[derive(Deserialize)]
struct LoginContext {
    #[serde(rename = "SessionId", default, deserialize_with = "de::opt_string")]
    session_id: Option<String>,
    #[serde(rename = "UserId", default, deserialize_with = "de::opt_i64")]
    user_id: Option<i64>,
    #[serde(rename = "UserName", default, deserialize_with = "de::opt_string")]
    user_name: Option<String>,
    #[serde(
        rename = "DisplayVersion",
        default,
        deserialize_with = "de::opt_string"
    )]
    display_version: Option<String>,
    #[serde(
        rename = "DataCenterName",
        default,
        deserialize_with = "de::opt_string"
    )]
    data_center_name: Option<String>,
}

/// A successful login: what it said, and the session id it named in its body, if any. No
/// `Debug`: it holds the session id.
pub(crate) struct LoginOutcome {
    pub(crate) info: LoginInfo,
    /// `KDSVCSessionId`, or else `Context.SessionId`. Servers that answer
    /// `KDSVCSessionId: null` (seen on 7.1 with a licence warning) still set the
    /// `kdservice-sessionid` cookie, which the caller prefers when present.
    pub(crate) body_session_id: Option<String>,
}

/// Reads a `LoginResult`. Success is `LoginResultType` 1 or -5 (the interface spec allows -5,
/// "administrator may need form handling"), or `IsSuccessByAPI` when the type is absent.
/// A decode error quotes no part of the answer: a login answer carries the session id.
pub(crate) fn parse_login(value: &Value) -> Result<LoginOutcome> {
    let wire: LoginResultWire = crate::response::decode_value(value, &[])?;
    let accepted = match wire.result_type {
        Some(t) => t == 1 || t == -5,
        None => wire.is_success_by_api,
    };
    if !accepted {
        let message = wire.message.clone().unwrap_or_else(|| {
            format!(
                "login refused (LoginResultType {})",
                wire.result_type.unwrap_or_default()
            )
        });
        return Err(Error::AuthFailed {
            message,
            login_result_type: wire.result_type,
        });
    }
    let context = wire.context;
    let body_session_id = wire
        .kdsvc_session_id
        .or_else(|| context.as_ref().and_then(|c| c.session_id.clone()));
    Ok(LoginOutcome {
        info: LoginInfo {
            result_type: wire.result_type.unwrap_or(1),
            message: wire.message,
            user_id: context.as_ref().and_then(|c| c.user_id),
            user_name: context.as_ref().and_then(|c| c.user_name.clone()),
            server_version: context.as_ref().and_then(|c| c.display_version.clone()),
            data_center_name: context.and_then(|c| c.data_center_name),
        },
        body_session_id,
    })
}
