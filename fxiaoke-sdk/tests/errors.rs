//! Failure paths: reads retried, writes never resent after dispatch, typed errors, bad input
//! refused before sending, and the client-side rate limit.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use fxiaoke_sdk::{Composite, Error, Filter, RateLimit, RetryPolicy};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const QUERY: &str = "/cgi/crm/v2/data/query";
const CREATE: &str = "/cgi/crm/v2/data/create";
const HTML_502: &str = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";

/// Fast retries, so that tests do not wait.
fn retrying() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// Answers the listed templates in turn, then the last one forever.
struct Sequence(AtomicUsize, Vec<ResponseTemplate>);

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        self.1[n.min(self.1.len() - 1)].clone()
    }
}

async fn serving(at: &str, templates: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(path(at))
        .respond_with(Sequence(AtomicUsize::new(0), templates))
        .mount(&server)
        .await;
    server
}

fn created() -> ResponseTemplate {
    json_response(r#"{"errorCode":0,"errorMessage":"OK","dataId":"66f2a484928b280007aa6dd8"}"#)
}

async fn create(
    server: &MockServer,
    retry: RetryPolicy,
) -> Result<fxiaoke_sdk::WriteResult, Error> {
    builder(server)
        .retry_policy(retry)
        .build()
        .unwrap()
        .create("AccountObj")
        .object_data(json!({"name": "示例客户", "owner": [OPERATOR]}))
        .send()
        .await
}

#[tokio::test]
async fn a_read_is_retried_through_transient_failures() {
    let server = serving(
        QUERY,
        vec![
            ResponseTemplate::new(502).set_body_string(HTML_502),
            json_response(r#"{"errorCode":-1,"errorMessage":"系统繁忙"}"#),
            json_value(&query_answer(&[json!({"_id": "a"})])),
        ],
    )
    .await;
    let page = builder(&server)
        .retry_policy(retrying())
        .build()
        .unwrap()
        .query("AccountObj")
        .send::<Value>()
        .await
        .unwrap();
    assert_eq!(page.rows, [json!({"_id": "a"})]);
    assert_eq!(requests_to(&server, QUERY).await.len(), 3);
}

#[tokio::test]
async fn a_read_gives_up_after_its_attempts_with_the_last_error() {
    let server = serving(
        QUERY,
        vec![ResponseTemplate::new(502).set_body_string(HTML_502)],
    )
    .await;
    let err = builder(&server)
        .retry_policy(retrying())
        .build()
        .unwrap()
        .query("AccountObj")
        .send::<Value>()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Http { status: 502, snippet } if snippet.contains("502 Bad Gateway")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(requests_to(&server, QUERY).await.len(), 3);
}

#[tokio::test]
async fn a_proxy_error_page_on_create_is_outcome_unknown_and_not_resent() {
    let server = serving(
        CREATE,
        vec![ResponseTemplate::new(502).set_body_string(HTML_502)],
    )
    .await;
    let err = create(&server, retrying()).await.unwrap_err();
    match &err {
        Error::OutcomeUnknown { operation, source } => {
            assert_eq!(operation, "crm.create");
            assert!(matches!(**source, Error::Http { status: 502, .. }));
        }
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
    assert!(!err.is_retryable(), "reconcile first");
    assert_eq!(requests_to(&server, CREATE).await.len(), 1);
}

#[tokio::test]
async fn a_timeout_after_dispatch_on_create_is_outcome_unknown_with_one_request() {
    let server = serving(CREATE, vec![created().set_delay(Duration::from_secs(5))]).await;
    let client = builder(&server)
        .retry_policy(retrying())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    client.corp_id().await.unwrap();
    let err = client
        .create("AccountObj")
        .object_data(json!({"name": "x"}))
        .send()
        .await
        .unwrap_err();
    let Error::OutcomeUnknown { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            **source,
            Error::NoAnswer {
                timed_out: true,
                ..
            }
        ),
        "{source:?}"
    );
    assert_eq!(requests_to(&server, CREATE).await.len(), 1, "never resent");
}

#[tokio::test]
async fn a_timeout_on_a_query_is_retried() {
    let server = serving(
        QUERY,
        vec![
            json_value(&query_answer(&[])).set_delay(Duration::from_secs(5)),
            json_value(&query_answer(&[json!({"_id": "a"})])),
        ],
    )
    .await;
    let client = builder(&server)
        .retry_policy(retrying())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    client.corp_id().await.unwrap();
    let page = client.query("AccountObj").send::<Value>().await.unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(requests_to(&server, QUERY).await.len(), 2);
}

#[tokio::test]
async fn a_server_side_timeout_on_create_is_outcome_unknown() {
    let server = serving(
        CREATE,
        vec![json_response(
            r#"{"errorCode":50009,"errorMessage":"服务异常，如超时"}"#,
        )],
    )
    .await;
    let err = create(&server, retrying()).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(err.error_code(), Some(50009));
    assert_eq!(requests_to(&server, CREATE).await.len(), 1);
}

#[tokio::test]
async fn a_rate_limited_create_was_not_processed_and_is_resent() {
    let server = serving(
        CREATE,
        vec![
            json_response(r#"{"errorCode":30004,"errorMessage":"秒频次超限"}"#),
            created(),
        ],
    )
    .await;
    let started = Instant::now();
    let result = create(&server, retrying()).await.unwrap();
    assert_eq!(result.data_id.as_deref(), Some("66f2a484928b280007aa6dd8"));
    assert_eq!(requests_to(&server, CREATE).await.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waits at least a second"
    );
}

#[tokio::test]
async fn quota_and_business_refusals_are_not_retried() {
    for (body, kind) in [
        (
            r#"{"errorCode":30002,"errorMessage":"当天访问频次超限"}"#,
            "daily_quota_exhausted",
        ),
        (
            r#"{"errorCode":30003,"errorMessage":"客户没有购买openapi配额"}"#,
            "no_api_quota",
        ),
        (
            r#"{"errorCode":32000,"errorMessage":"参数错误"}"#,
            "bad_parameters",
        ),
        (r#"{"errorCode":-1,"errorMessage":"系统繁忙"}"#, "api"),
        // "System error" after a create reached the service says nothing of whether it was
        // saved: not resent, and reported as such.
        (
            r#"{"errorCode":-2,"errorMessage":"系统错误"}"#,
            "outcome_unknown",
        ),
    ] {
        let server = serving(CREATE, vec![json_response(body)]).await;
        let err = create(&server, retrying()).await.unwrap_err();
        assert_eq!(err.kind_label(), kind, "{body}");
        assert_eq!(requests_to(&server, CREATE).await.len(), 1, "{body}");
    }
}

#[tokio::test]
async fn unreadable_answers_to_writes_are_outcome_unknown() {
    for body in [
        "<html>maintenance</html>",
        "[1, 2]",
        r#"{"errorCode":0,"dataId":{"nested":1}}"#,
        r#"{"errorCode":0"#,
        "{}",
    ] {
        let server = serving(CREATE, vec![json_response(body)]).await;
        let err = create(&server, RetryPolicy::never()).await.unwrap_err();
        assert!(err.is_outcome_unknown(), "{body}: {err:?}");
        assert_eq!(requests_to(&server, CREATE).await.len(), 1);
    }
    // The same unreadable answer to a read is a plain error.
    let server = serving(QUERY, vec![json_response("<html/>")]).await;
    let err = client(&server)
        .query("AccountObj")
        .send::<Value>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotJson { status: 200, .. }), "{err:?}");
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_writes_and_ends_as_connect() {
    // A port with nothing listening: nothing is ever sent, so a write may be retried.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = fxiaoke_sdk::Client::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .app_id(APP_ID)
        .app_secret(APP_SECRET)
        .permanent_code(PERMANENT_CODE)
        .operator(OPERATOR)
        .retry_policy(retrying())
        .build()
        .unwrap();
    let err = client.corp_id().await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_retryable() && !err.is_outcome_unknown());
}

#[tokio::test]
async fn bad_input_is_rejected_before_anything_is_sent() {
    let server = MockServer::start().await;
    let client = client(&server);
    let no_operator = fxiaoke_sdk::Client::builder()
        .base_url(server.uri())
        .app_id(APP_ID)
        .app_secret(APP_SECRET)
        .permanent_code(PERMANENT_CODE)
        .build()
        .unwrap();
    let q = |name: &str| client.query(name.to_owned());
    let cases: Vec<(&str, Result<(), Error>)> = vec![
        ("empty object", q("").send::<Value>().await.map(drop)),
        (
            "bad object",
            q("Account Obj").send::<Value>().await.map(drop),
        ),
        (
            "limit 101",
            q("AccountObj").limit(101).send::<Value>().await.map(drop),
        ),
        (
            "limit 0",
            q("AccountObj").limit(0).send::<Value>().await.map(drop),
        ),
        (
            "offset not a multiple",
            q("AccountObj")
                .limit(100)
                .offset(150)
                .send::<Value>()
                .await
                .map(drop),
        ),
        (
            "offset past 10000",
            q("AccountObj")
                .limit(100)
                .offset(10_100)
                .send::<Value>()
                .await
                .map(drop),
        ),
        (
            "between with one value",
            q("AccountObj")
                .filter(Filter::new("t", fxiaoke_sdk::Operator::Between, [1]))
                .send::<Value>()
                .await
                .map(drop),
        ),
        (
            "filter without field",
            q("AccountObj")
                .filter(Filter::eq("", 1))
                .send::<Value>()
                .await
                .map(drop),
        ),
        (
            "create without object_data",
            client.create("AccountObj").send().await.map(drop),
        ),
        (
            "create of an empty object name",
            client
                .create("")
                .object_data(json!({}))
                .send()
                .await
                .map(drop),
        ),
        (
            "create with another dataObjectApiName",
            client
                .create("AccountObj")
                .object_data(json!({"dataObjectApiName": "ContactObj"}))
                .send()
                .await
                .map(drop),
        ),
        (
            "create of a non-object",
            client
                .create("AccountObj")
                .object_data(json!([1]))
                .send()
                .await
                .map(drop),
        ),
        (
            "a detail row that is not an object",
            client
                .create("SalesOrderObj")
                .object_data(json!({}))
                .details("SalesOrderProductObj", [json!(1)])
                .send()
                .await
                .map(drop),
        ),
        (
            "update of the owner",
            client
                .update("AccountObj", "x")
                .set("owner", json!(["FSUID_B"]))
                .send()
                .await
                .map(drop),
        ),
        (
            "update without id",
            client.update("AccountObj", " ").send().await.map(drop),
        ),
        (
            "get without id",
            client.get("AccountObj", "").send::<Value>().await.map(drop),
        ),
        (
            "delete of nothing",
            client.delete("AccountObj").send().await.map(drop),
        ),
        (
            "recover of nothing",
            client.recover("AccountObj").send().await.map(drop),
        ),
        (
            "batch invalidation of a standard object",
            client
                .invalid_many("AccountObj")
                .id("x")
                .send()
                .await
                .map(drop),
        ),
        (
            "change owner to nobody",
            client
                .change_owner("AccountObj")
                .record("x", Vec::<String>::new())
                .send()
                .await
                .map(drop),
        ),
        (
            "no operator",
            no_operator
                .query("AccountObj")
                .send::<Value>()
                .await
                .map(drop),
        ),
        (
            "message to nobody",
            client
                .text_message(Vec::<String>::new(), "hi")
                .send()
                .await
                .map(drop),
        ),
        (
            "message to 501",
            client
                .text_message((0..501).map(|i| format!("FSUID_{i}")), "hi")
                .send()
                .await
                .map(drop),
        ),
        (
            "empty text",
            client.text_message([OPERATOR], " ").send().await.map(drop),
        ),
        (
            "card without title",
            client
                .composite_message([OPERATOR], Composite::new(""))
                .send()
                .await
                .map(drop),
        ),
        (
            "users page of 1001",
            client
                .users_changed()
                .page_size(1001)
                .send()
                .await
                .map(drop),
        ),
        (
            "raw body not an object",
            client.call_raw("/cgi/x", json!([1])).await.map(drop),
        ),
        (
            "raw path",
            client.call_raw("cgi/x", json!({})).await.map(drop),
        ),
        (
            "raw path with query",
            client.call_raw("/cgi/x?a=1", json!({})).await.map(drop),
        ),
    ];
    for (name, result) in cases {
        assert!(
            matches!(result, Err(Error::InvalidInput(_))),
            "{name}: {result:?}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_rate_limit_spreads_calls_over_the_window() {
    let server = serving(QUERY, vec![json_value(&query_answer(&[]))]).await;
    let client = builder(&server)
        .rate_limit(RateLimit::per_endpoint(3, Duration::from_millis(400)))
        .build()
        .unwrap();
    client.corp_id().await.unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..7)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.query("AccountObj").send::<Value>().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // 3 at once, 3 after one window, 1 after two.
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(requests_to(&server, QUERY).await.len(), 7);
}
