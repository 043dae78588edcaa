//! Client settings as the server sees them: the `User-Agent` (the SDK's by default, the
//! caller's when set) on every request, token requests included, and a caller-supplied
//! `reqwest::Client` doing the sending. (A `User-Agent` that is no header value is refused by
//! `build()` with `Error::InvalidInput`: a unit test in `src/client.rs`.)

mod common;

use common::*;
use fxiaoke_sdk::Client;
use serde_json::json;
use wiremock::MockServer;

const DEPARTMENTS: &str = "/cgi/department/list";

/// A server with the token and department answers, and a client's one department call on it.
async fn one_call(build: impl FnOnce(&MockServer) -> Client) -> MockServer {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(
        &server,
        DEPARTMENTS,
        &json!({"errorCode": 0, "departments": [{"id": 1001, "name": "销售部"}]}),
    )
    .await;
    build(&server).departments().send().await.unwrap();
    server
}

/// Every value of `header` on each request the server saw: token request, then the call.
async fn header_values(server: &MockServer, header: &str) -> Vec<(String, Vec<String>)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let values = r
                .headers
                .get_all(header)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            (r.url.path().to_owned(), values)
        })
        .collect()
}

fn on_both(value: &str) -> Vec<(String, Vec<String>)> {
    vec![
        (TOKEN_PATH.to_owned(), vec![value.to_owned()]),
        (DEPARTMENTS.to_owned(), vec![value.to_owned()]),
    ]
}

#[tokio::test]
async fn the_default_user_agent_names_the_sdk_and_its_version() {
    let server = one_call(client).await;
    assert_eq!(
        header_values(&server, "user-agent").await,
        on_both(concat!("fxiaoke-sdk-rust/", env!("CARGO_PKG_VERSION")))
    );
}

#[tokio::test]
async fn a_custom_user_agent_replaces_the_default_on_every_request() {
    let server = one_call(|s| {
        builder(s)
            .user_agent("fxk3-sync/2.1 (+ops@example.com)")
            .build()
            .unwrap()
    })
    .await;
    assert_eq!(
        header_values(&server, "user-agent").await,
        on_both("fxk3-sync/2.1 (+ops@example.com)")
    );
}

#[tokio::test]
async fn a_caller_supplied_reqwest_client_is_the_one_that_sends() {
    // Its default headers arrive; the SDK's own headers are still set on each request.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-egress-tag", "sync-eu-1".parse().unwrap());
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let server = one_call(|s| builder(s).http_client(http).build().unwrap()).await;
    assert_eq!(
        header_values(&server, "x-egress-tag").await,
        on_both("sync-eu-1")
    );
    assert_eq!(
        header_values(&server, "user-agent").await,
        on_both(concat!("fxiaoke-sdk-rust/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(
        header_values(&server, "content-type").await,
        on_both("application/json")
    );
}
