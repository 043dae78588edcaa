//! Shared test helpers: fixtures, clients pointed at a local mock server.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use fxiaoke_sdk::{Client, ClientBuilder, RetryPolicy};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The placeholder credentials and ids of the fixtures (`fxiaoke-wire/token_*.json`).
pub const APP_ID: &str = "FSAID_1000001";
pub const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const PERMANENT_CODE: &str = "0123456789ABCDEF0123456789ABCDEF";
pub const TOKEN: &str = "E3B0C44298FC1C149AFBF4C8996FB924";
pub const CORP_ID: &str = "FSCID_1A2B3C4D5E6F708192A3B4C5D6E7F809";
pub const OPERATOR: &str = "FSUID_0123456789ABCDEF0123456789ABCDEF";
pub const TOKEN_PATH: &str = "/cgi/corpAccessToken/get/V2";

/// `reference/fxiaoke-wire/<name>` (the workspace copy of the protocol reference) as JSON.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../reference/fxiaoke-wire/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every fixture file name.
pub fn fixture_names() -> Vec<String> {
    let dir = format!("{}/../reference/fxiaoke-wire", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        })
        .collect();
    names.sort();
    names
}

/// A builder with the fixture credentials and operator, and no retries (so that each test
/// sees exactly the requests it expects).
pub fn builder(server: &MockServer) -> ClientBuilder {
    Client::builder()
        .base_url(server.uri())
        .app_id(APP_ID)
        .app_secret(APP_SECRET)
        .permanent_code(PERMANENT_CODE)
        .operator(OPERATOR)
        .retry_policy(RetryPolicy::never())
        .timeout(Duration::from_secs(10))
}

pub fn client(server: &MockServer) -> Client {
    builder(server).build().unwrap()
}

pub fn json_response(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json;charset=UTF-8")
        .set_body_string(body)
}

pub fn json_value(body: &Value) -> ResponseTemplate {
    json_response(&body.to_string())
}

/// A token answer with a given token and lifetime.
pub fn token_answer(token: &str, expires_in: i64) -> ResponseTemplate {
    json_value(&serde_json::json!({
        "errorCode": 0, "errorMessage": "success",
        "corpAccessToken": token, "corpId": CORP_ID, "expiresIn": expires_in
    }))
}

/// Answers the token endpoint with the fixture's token.
pub async fn mount_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(json_value(
            &fixture("token_corp_access_token_get_v2.json")["response"],
        ))
        .mount(server)
        .await;
}

/// Answers `path` with `body`.
pub async fn mount(server: &MockServer, at: &str, body: &Value) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(json_value(body))
        .mount(server)
        .await;
}

/// The requests the server saw on `path`.
pub async fn requests_to(server: &MockServer, at: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == at)
        .collect()
}

pub fn body_json(request: &wiremock::Request) -> Value {
    serde_json::from_slice(&request.body).expect("request body is JSON")
}

/// A successful query answer holding `rows`.
pub fn query_answer(rows: &[Value]) -> Value {
    serde_json::json!({
        "errorCode": 0, "errorMessage": "OK", "errorDescription": "success",
        "traceId": "E-O.test",
        "data": {"dataList": rows, "offset": 0, "limit": 100, "total": 0}
    })
}

pub const OK: &str =
    r#"{"errorCode":0,"errorMessage":"OK","errorDescription":"success","traceId":"E-O.ok"}"#;
pub const TOKEN_INVALID: &str = r#"{"traceId":"E-O.null.-1000-0f1e2d3c4b5a","errorMessage":"the cropId,cropAccessToken or authorization is error","errorCode":20016}"#;
