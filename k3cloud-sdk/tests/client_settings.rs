//! Client settings seen from the server's side of the socket: HTTP version, `User-Agent`, a
//! caller-supplied `reqwest::Client`, TLS certificate verification.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::raw_http::{RawRequest, RawServer};
use common::*;
use k3cloud_sdk::{Client, Error};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

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

/// A freshly generated self-signed certificate for 127.0.0.1, and a TLS acceptor serving it
/// that offers `alpn` (in preference order).
fn self_signed(alpn: &[&[u8]]) -> (TlsAcceptor, CertificateDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned()]).unwrap();
    let cert = generated.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (TlsAcceptor::from(Arc::new(config)), cert)
}

/// A self-signed server is refused unless the caller opts out of verification (or trusts the
/// certificate through a client of its own).
#[tokio::test]
async fn tls_certificates_are_verified_by_default() {
    let (acceptor, cert) = self_signed(&[b"http/1.1"]);
    let server = RawServer::start_tls(VIEW_OK, Duration::ZERO, acceptor).await;

    let err = builder_at(&server.uri())
        .build()
        .unwrap()
        .view("BD_MATERIAL")
        .number("M1")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_retryable() && !err.is_outcome_unknown());
    assert_eq!(server.failed_handshakes(1).await, 1);
    assert!(server.requests().is_empty());

    // Given a client of your own, its TLS settings are yours: the builder's opt-out is ignored.
    let err = builder_at(&server.uri())
        .http_client(reqwest::Client::new())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .view("BD_MATERIAL")
        .number("M1")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(server.failed_handshakes(2).await, 2);

    // The recommended fix: a client of your own that trusts the server's certificate.
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&cert).unwrap())
        .build()
        .unwrap();
    let client = builder_at(&server.uri())
        .http_client(trusting)
        .build()
        .unwrap();
    let request = one_view(&server, &client).await;
    assert_eq!(request.request_line, VIEW_LINE);

    // The explicit opt-out.
    let client = builder_at(&server.uri())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    client
        .view("BD_MATERIAL")
        .number("M1")
        .send()
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.failed_handshakes(2).await, 2);
}

/// The client offers only HTTP/1.1, even to a server that prefers HTTP/2 (some K3Cloud
/// deployments answer HTTP/2 with 502). Plain `http://` cannot show this: there reqwest speaks
/// HTTP/1.1 anyway; over TLS the ALPN offer decides.
#[tokio::test]
async fn http_1_1_is_negotiated_by_default_even_when_the_server_prefers_h2() {
    let (acceptor, _) = self_signed(&[b"h2", b"http/1.1"]);
    let server = RawServer::start_tls(VIEW_OK, Duration::ZERO, acceptor).await;
    let client = builder_at(&server.uri())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let request = one_view(&server, &client).await;
    assert_eq!(request.request_line, VIEW_LINE);
    assert_eq!(server.negotiated_alpn(), [Some(b"http/1.1".to_vec())]);
}

/// With the `http2` feature, `http2(true)` lets the same server negotiate h2: the setting, not
/// the server, is what kept the default on HTTP/1.1.
#[cfg(feature = "http2")]
#[tokio::test]
async fn http2_opt_in_negotiates_h2() {
    let (acceptor, _) = self_signed(&[b"h2", b"http/1.1"]);
    let server = RawServer::start_tls(VIEW_OK, Duration::ZERO, acceptor).await;
    let client = builder_at(&server.uri())
        .danger_accept_invalid_certs(true)
        .http2(true)
        .build()
        .unwrap();
    // The test server closes h2 connections after the handshake; only the ALPN matters here.
    let _ = client.view("BD_MATERIAL").number("M1").send().await;
    assert_eq!(server.negotiated_alpn(), [Some(b"h2".to_vec())]);
}
