//! Client settings seen from the server's side of the socket: HTTP version, `User-Agent`, a
//! caller-supplied `reqwest::Client`.

mod common;

use std::time::Duration;

use common::raw_http::{RawRequest, RawServer};
use common::*;
use k3cloud_sdk::{Client, Error};

const VIEW_OK: &str = r#"{"Result":{"ResponseStatus":null,"Result":{}}}"#;
const VIEW_LINE: &str =
    "POST /k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.View.common.kdsvc HTTP/1.1";

/// Sends one View and returns the one request the server saw.
async fn one_view(server: &RawServer, client: &Client) -> RawRequest {
    client
        .view("BD_MATERIAL")
        .number("M1")
        .send()
        .await
        .unwrap();
    let mut requests = server.requests();
    assert_eq!(requests.len(), 1);
    requests.remove(0)
}

#[tokio::test]
async fn requests_are_http_1_1_with_the_sdk_user_agent_by_default() {
    let server = RawServer::start(VIEW_OK, Duration::ZERO).await;
    let request = one_view(&server, &builder_at(&server.uri()).build().unwrap()).await;
    assert_eq!(request.request_line, VIEW_LINE);
    assert_eq!(
        request.header_values("user-agent"),
        [concat!("k3cloud-sdk-rust/", env!("CARGO_PKG_VERSION"))]
    );
}

#[tokio::test]
async fn a_custom_user_agent_replaces_the_default() {
    let server = RawServer::start(VIEW_OK, Duration::ZERO).await;
    let client = builder_at(&server.uri())
        .user_agent("fxk3-sync/2.1 (+ops@example.com)")
        .build()
        .unwrap();
    let request = one_view(&server, &client).await;
    assert_eq!(
        request.header_values("user-agent"),
        ["fxk3-sync/2.1 (+ops@example.com)"]
    );
}

#[test]
fn a_user_agent_that_is_no_header_value_is_refused() {
    let built = builder_at("http://127.0.0.1:1")
        .user_agent("two\nlines")
        .build();
    assert!(
        matches!(&built, Err(Error::InvalidInput(m)) if m.contains("user agent")),
        "{built:?}"
    );
}

/// The client given to `http_client` is the one that sends: its default headers arrive.
#[tokio::test]
async fn a_caller_supplied_reqwest_client_is_the_one_used() {
    let server = RawServer::start(VIEW_OK, Duration::ZERO).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-egress-tag", "sync-eu-1".parse().unwrap());
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let client = builder_at(&server.uri()).http_client(http).build().unwrap();
    let request = one_view(&server, &client).await;
    assert_eq!(request.header_values("x-egress-tag"), ["sync-eu-1"]);
    // The SDK's own headers are still set on every request.
    assert_eq!(request.request_line, VIEW_LINE);
    assert_eq!(
        request.header_values("user-agent"),
        [concat!("k3cloud-sdk-rust/", env!("CARGO_PKG_VERSION"))]
    );
    assert_eq!(request.header_values("content-type"), ["application/json"]);
}
