//! Shared test helpers: fixtures, clients pointed at a local mock server.
#![allow(dead_code, unreachable_pub)]

pub mod raw_http;

use std::sync::Arc;
use std::time::Duration;

use k3cloud_sdk::{Auth, Client, ClientBuilder, FixedClock, RetryPolicy};
use serde_json::Value;
use wiremock::MockServer;

/// The fake credentials of the captures (`k3cloud-wire/README.md`).
pub const ACCT: &str = "60a1b2c3d4e5f6";
pub const USER: &str = "webapi";
pub const APP_ID: &str = "123456_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
pub const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const PASSWORD: &str = "P@ssw0rd-not-real";
/// The instant the captures' clock was frozen at.
pub const CAPTURE_TIME: i64 = 1_700_000_000;
/// The session the capture recorder issued.
pub const SID: &str = "2c6dfa6c-039b-4b65-b52f-898d3c7c522a";
pub const ASPNET_SID: &str = "n3xfizba4et0o2uutwdftvzg";

pub const DFS: &str = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService";
pub const AUTH: &str = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.AuthService";

/// `reference/k3cloud-wire/<name>` (the workspace copy of the protocol reference) as JSON.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../reference/k3cloud-wire/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The body of a real response sample in `responses/`.
pub fn sample(name: &str) -> String {
    let f = fixture(&format!("responses/{name}"));
    match f.get("body_raw").and_then(Value::as_str) {
        Some(raw) => raw.to_owned(),
        None => f["body"].to_string(),
    }
}

/// A builder with the capture credentials, signed headers, the capture clock, and no retries
/// (so that each test sees exactly the requests it expects).
pub fn builder(server: &MockServer) -> ClientBuilder {
    builder_at(&server.uri())
}

/// [`builder`] for a server that is not wiremock's.
pub fn builder_at(uri: &str) -> ClientBuilder {
    Client::builder(uri)
        .account(ACCT)
        .user(USER)
        .auth(Auth::signed(APP_ID, APP_SECRET))
        .clock(Arc::new(FixedClock(CAPTURE_TIME)))
        .retry_policy(RetryPolicy::never())
        .timeout(Duration::from_secs(10))
}

pub fn signed_client(server: &MockServer) -> Client {
    builder(server).build().unwrap()
}

pub fn password_client(server: &MockServer) -> Client {
    builder(server)
        .auth(Auth::password(PASSWORD))
        .build()
        .unwrap()
}

/// A successful login answer, as v9 servers send it.
pub fn login_ok(session: &str) -> String {
    serde_json::json!({
        "Message": null, "MessageCode": "CheckPasswordPolicy", "LoginResultType": 1,
        "Context": {"SessionId": "ctx-session", "UserId": 178_301, "UserName": USER,
                    "DisplayVersion": "9.0.553.10", "DataCenterName": "TEST"},
        "KDSVCSessionId": session, "IsSuccessByAPI": true
    })
    .to_string()
}

pub const SESSION_LOST: &str = r#"{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,"Message":"会话信息已丢失，请重新登录","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":1}}}"#;

pub const SAVE_OK: &str = r#"{"Result":{"ResponseStatus":{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":140670,"Number":"MAT0001","DIndex":0}],"SuccessMessages":[],"MsgCode":0},"Id":140670,"Number":"MAT0001","NeedReturnData":[{"FNumber":"MAT0001"}]}}"#;

pub fn json_response(body: &str) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(200)
        .insert_header("content-type", "application/json; charset=utf-8")
        .set_body_string(body)
}

/// The requests the server saw on `path`.
pub async fn requests_to(server: &MockServer, path: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .collect()
}

pub fn body_json(request: &wiremock::Request) -> Value {
    serde_json::from_slice(&request.body).expect("request body is JSON")
}
