//! Failure paths: retries of reads, no resend of writes, typed errors, bad input.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::raw_http::RawServer;
use common::*;
use k3cloud_sdk::{Error, RateLimit, RetryPolicy, RowResult};
use serde_json::{Value, json};
use tokio::time::Instant;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn dfs(method: &str) -> String {
    format!("{DFS}.{method}.common.kdsvc")
}

const HTML_500: &str = "<!DOCTYPE html><html><head><title>运行时错误</title></head><body><h1>&quot;/k3cloud&quot;应用程序中的服务器错误。</h1></body></html>";

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

fn sequence(templates: Vec<ResponseTemplate>) -> Sequence {
    Sequence(AtomicUsize::new(0), templates)
}

#[tokio::test]
async fn an_html_500_page_is_a_typed_error_and_reads_are_retried() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("View")))
        .respond_with(ResponseTemplate::new(500).set_body_string(HTML_500))
        .mount(&server)
        .await;
    let client = builder(&server).retry_policy(retrying()).build().unwrap();
    let err = client
        .view("BD_MATERIAL")
        .number("X")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Http { status: 500, snippet } if snippet.contains("服务器错误")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(requests_to(&server, &dfs("View")).await.len(), 3);
}

#[tokio::test]
async fn a_read_recovers_after_a_transient_failure() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("ExecuteBillQuery")))
        .respond_with(sequence(vec![
            ResponseTemplate::new(503).set_body_string("Service Unavailable"),
            json_response(r#"[["MAT0001"]]"#),
        ]))
        .mount(&server)
        .await;
    let client = builder(&server).retry_policy(retrying()).build().unwrap();
    let rows: Vec<(String,)> = client
        .query("BD_MATERIAL")
        .fields(["FNumber"])
        .send()
        .await
        .unwrap();
    assert_eq!(rows, [("MAT0001".to_owned(),)]);
    assert_eq!(
        requests_to(&server, &dfs("ExecuteBillQuery")).await.len(),
        2
    );
}

#[tokio::test]
async fn an_html_500_page_on_save_is_outcome_unknown_and_not_resent() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("Save")))
        .respond_with(ResponseTemplate::new(500).set_body_string(HTML_500))
        .mount(&server)
        .await;
    let client = builder(&server).retry_policy(retrying()).build().unwrap();
    let err = client
        .save("BD_MATERIAL")
        .model(json!({"FNumber": "M1"}))
        .send()
        .await
        .unwrap_err();
    match &err {
        Error::OutcomeUnknown { operation, source } => {
            assert_eq!(operation, "Save");
            assert!(matches!(**source, Error::Http { status: 500, .. }));
        }
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
    assert!(!err.is_retryable(), "reconcile first");
    assert_eq!(requests_to(&server, &dfs("Save")).await.len(), 1);
}

#[tokio::test]
async fn a_timeout_after_dispatch_on_save_is_outcome_unknown_with_one_request() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("Save")))
        .respond_with(json_response(SAVE_OK).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let client = builder(&server)
        .retry_policy(retrying())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client
        .save("BD_MATERIAL")
        .model(json!({"FNumber": "M1"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    let Error::OutcomeUnknown { source, .. } = &err else {
        unreachable!()
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
    assert_eq!(
        requests_to(&server, &dfs("Save")).await.len(),
        1,
        "never resent"
    );
}

#[tokio::test]
async fn a_timeout_on_a_query_is_retried() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("ExecuteBillQuery")))
        .respond_with(sequence(vec![
            json_response("[]").set_delay(Duration::from_secs(5)),
            json_response(r#"[["MAT0001"]]"#),
        ]))
        .mount(&server)
        .await;
    let client = builder(&server)
        .retry_policy(retrying())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let rows: Vec<Vec<Value>> = client
        .query("BD_MATERIAL")
        .fields(["FNumber"])
        .send()
        .await
        .unwrap();
    assert_eq!(rows, [vec![json!("MAT0001")]]);
    assert_eq!(
        requests_to(&server, &dfs("ExecuteBillQuery")).await.len(),
        2
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_writes_and_ends_as_connect() {
    // A port with nothing listening: nothing is ever sent, so a write may be retried.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = k3cloud_sdk::Client::builder(format!("http://127.0.0.1:{port}/k3cloud/"))
        .account(ACCT)
        .user(USER)
        .auth(k3cloud_sdk::Auth::signed(APP_ID, APP_SECRET))
        .retry_policy(retrying())
        .build()
        .unwrap();
    let err = client
        .save("BD_MATERIAL")
        .model(json!({}))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.is_retryable() && !err.is_outcome_unknown());
}

#[tokio::test]
async fn a_network_control_conflict_on_save_is_retried() {
    let conflict = r#"{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":"","Message":"网控冲突","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":13}}}"#;
    let server = MockServer::start().await;
    Mock::given(path(dfs("Save")))
        .respond_with(sequence(vec![
            json_response(conflict),
            json_response(SAVE_OK),
        ]))
        .mount(&server)
        .await;
    let client = builder(&server).retry_policy(retrying()).build().unwrap();
    let saved = client
        .save("BD_MATERIAL")
        .model(json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.id, "140670");
    assert_eq!(requests_to(&server, &dfs("Save")).await.len(), 2);
}

#[tokio::test]
async fn a_partial_batch_save_is_per_row_and_not_resent() {
    let partial = r#"{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,
        "Errors":[{"FieldName":"FNumber","Message":"编码重复","DIndex":0},{"FieldName":"FName","Message":"名称必填","DIndex":2}],
        "SuccessEntitys":[{"Id":7,"Number":"MAT0002","DIndex":1}],"SuccessMessages":[],"MsgCode":14}}}"#;
    let server = MockServer::start().await;
    Mock::given(path(dfs("BatchSave")))
        .respond_with(json_response(partial))
        .mount(&server)
        .await;
    let client = builder(&server).retry_policy(retrying()).build().unwrap();
    let result = client
        .batch_save("BD_MATERIAL")
        .models([
            json!({"FNumber": "MAT0001"}),
            json!({"FNumber": "MAT0002"}),
            json!({"FNumber": "MAT0003"}),
        ])
        .send()
        .await
        .unwrap();
    assert!(matches!(&result.rows[0], RowResult::Failed(e) if e[0].message == "编码重复"));
    assert!(
        matches!(&result.rows[1], RowResult::Succeeded(e) if e.id == "7" && e.number == "MAT0002")
    );
    assert!(
        matches!(&result.rows[2], RowResult::Failed(e) if e[0].field_name.as_deref() == Some("FName"))
    );
    assert!(!result.all_succeeded());
    assert_eq!(
        requests_to(&server, &dfs("BatchSave")).await.len(),
        1,
        "a call limit with saved rows is not resent"
    );
}

#[tokio::test]
async fn a_batch_save_refused_as_a_whole_is_an_error() {
    let refused = r#"{"Result":{"ResponseStatus":{"IsSuccess":false,"Errors":[{"Message":"标识为“NO_SUCH”的业务对象不存在，或者被删除。"}],"MsgCode":4}}}"#;
    let server = MockServer::start().await;
    Mock::given(path(dfs("BatchSave")))
        .respond_with(json_response(refused))
        .mount(&server)
        .await;
    let err = signed_client(&server)
        .batch_save("NO_SUCH")
        .models([json!({}), json!({})])
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.msg_code(), Some(4));
}

#[tokio::test]
async fn unreadable_answers_to_writes_are_outcome_unknown() {
    for body in [
        "<html>maintenance</html>",
        "[1, 2]",
        r#"{"Result":{"Respo"#,
        "{}",
    ] {
        let server = MockServer::start().await;
        Mock::given(path(dfs("Save")))
            .respond_with(json_response(body))
            .mount(&server)
            .await;
        let err = signed_client(&server)
            .save("X")
            .model(json!({}))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_outcome_unknown(), "{body}: {err:?}");
    }
    // The same unreadable answer to a read is a plain error.
    let server = MockServer::start().await;
    Mock::given(path(dfs("View")))
        .respond_with(json_response("<html/>"))
        .mount(&server)
        .await;
    let err = signed_client(&server)
        .view("X")
        .number("1")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotJson { status: 200, .. }), "{err:?}");
}

#[tokio::test]
async fn bad_input_is_rejected_before_anything_is_sent() {
    let server = MockServer::start().await;
    let client = signed_client(&server);
    let cases: Vec<(&str, Result<(), Error>)> = vec![
        (
            "empty form id",
            client.save(" ").model(json!({})).send().await.map(drop),
        ),
        (
            "model not an object",
            client.save("X").model(json!([1])).send().await.map(drop),
        ),
        (
            "model a string",
            client.save("X").model("FNumber=1").send().await.map(drop),
        ),
        ("no model", client.save("X").send().await.map(drop)),
        (
            "batch of nothing",
            client.batch_save("X").send().await.map(drop),
        ),
        (
            "a bad batch row",
            client
                .batch_save("X")
                .model(json!({}))
                .model(json!(3))
                .send()
                .await
                .map(drop),
        ),
        (
            "limit 0",
            client
                .query("X")
                .fields(["F"])
                .limit(0)
                .send::<Value>()
                .await
                .map(drop),
        ),
        (
            "limit too big",
            client
                .query("X")
                .fields(["F"])
                .limit(10_001)
                .send::<Value>()
                .await
                .map(drop),
        ),
        (
            "no fields",
            client.query("X").send::<Value>().await.map(drop),
        ),
        (
            "a comma in a field",
            client
                .query("X")
                .fields(["A,B"])
                .send::<Value>()
                .await
                .map(drop),
        ),
        (
            "an unsafe filter field",
            client
                .query("X")
                .fields(["F"])
                .filter(k3cloud_sdk::Filter::eq("F' or '1'='1", 1))
                .send::<Value>()
                .await
                .map(drop),
        ),
        ("audit of nothing", client.audit("X").send().await.map(drop)),
        (
            "numbers and ids",
            client
                .audit("X")
                .numbers(["A"])
                .ids([1])
                .send()
                .await
                .map(drop),
        ),
        (
            "empty op number",
            client
                .execute_operation("X", "")
                .numbers(["A"])
                .send()
                .await
                .map(drop),
        ),
        ("view of nothing", client.view("X").send().await.map(drop)),
        ("push of nothing", client.push("X").send().await.map(drop)),
        (
            "empty service",
            client.call_raw("", json!({})).await.map(drop),
        ),
        ("empty org", client.switch_org(" ").await.map(drop)),
    ];
    for (name, result) in cases {
        assert!(
            matches!(result, Err(Error::InvalidInput(_))),
            "{name}: {result:?}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(matches!(
        k3cloud_sdk::Client::builder("not a url")
            .account("a")
            .user("u")
            .auth(k3cloud_sdk::Auth::password("p"))
            .build(),
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn call_raw_checks_the_answer_and_returns_json() {
    let server = MockServer::start().await;
    Mock::given(path("/k3cloud/Kingdee.K3.SCM.WebApi.ServicesStub.InventoryQueryService.GetInventoryData.common.kdsvc"))
        .respond_with(json_response(r#"{"Result":{"ResponseStatus":{"IsSuccess":true},"Data":[1]}}"#))
        .mount(&server)
        .await;
    Mock::given(path(dfs("Save")))
        .respond_with(json_response(SESSION_LOST))
        .mount(&server)
        .await;
    let client = signed_client(&server);
    let v = client
        .raw("Kingdee.K3.SCM.WebApi.ServicesStub.InventoryQueryService.GetInventoryData")
        .body(json!({"para": 1}))
        .idempotent(true)
        .send()
        .await
        .unwrap();
    assert_eq!(v["Result"]["Data"], json!([1]));
    let err = client
        .call_raw("Save", json!({"formid": "X", "data": {}}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthFailed { .. }));
}

/// An answer a View decodes.
const VIEW_OK: &str = r#"{"Result":{"ResponseStatus":null,"Result":{}}}"#;

/// Sends `n` Views at once from clones of `client` and waits for them all.
async fn views_at_once(client: &k3cloud_sdk::Client, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.view("X").number(i.to_string()).send().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}

/// `max_concurrent` caps the calls in flight. The server holds every answer 100 ms (paused
/// time) and serves requests concurrently, so without the cap all 8 would overlap.
#[tokio::test(start_paused = true)]
async fn the_rate_limit_caps_concurrent_calls() {
    let server = RawServer::start(VIEW_OK, Duration::from_millis(100)).await;
    let client = builder_at(&server.uri())
        .rate_limit(RateLimit::none().max_concurrent(2))
        .build()
        .unwrap();
    let started = Instant::now();
    views_at_once(&client, 8).await;
    assert_eq!(server.requests().len(), 8);
    assert_eq!(server.peak_in_flight(), 2, "calls in flight at once");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(400),
        "four rounds of two calls"
    );
}

/// One limiter shared by two clients of a server caps them together.
#[tokio::test(start_paused = true)]
async fn a_shared_limiter_caps_several_clients_together() {
    let server = RawServer::start(VIEW_OK, Duration::from_millis(100)).await;
    let shared = RateLimit::none().max_concurrent(2).limiter();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            builder_at(&server.uri())
                .rate_limiter(std::sync::Arc::clone(&shared))
                .build()
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    tokio::join!(views_at_once(&clients[0], 4), views_at_once(&clients[1], 4));
    assert_eq!(server.requests().len(), 8);
    assert_eq!(server.peak_in_flight(), 2, "calls in flight at once");
    assert_eq!(started.elapsed(), Duration::from_millis(400));
}

/// What a plugged-in limiter sees: the service of each call, once per call (retries included),
/// and its permit is held until the call is over.
#[derive(Debug, Default)]
struct Recording {
    services: std::sync::Mutex<Vec<String>>,
    held: std::sync::Arc<AtomicUsize>,
}

struct Held(std::sync::Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl k3cloud_sdk::RateLimiter for Recording {
    async fn acquire(&self, service: &str) -> k3cloud_sdk::Permit {
        self.services.lock().unwrap().push(service.to_owned());
        self.held.fetch_add(1, Ordering::SeqCst);
        k3cloud_sdk::Permit::holding(Held(std::sync::Arc::clone(&self.held)))
    }
}

/// Answers 502 first, then `VIEW_OK`, noting how many permits were held at each request.
struct SeesHeld {
    held: std::sync::Arc<AtomicUsize>,
    seen: std::sync::Mutex<Vec<usize>>,
}

impl Respond for SeesHeld {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut seen = self.seen.lock().unwrap();
        seen.push(self.held.load(Ordering::SeqCst));
        if seen.len() == 1 {
            ResponseTemplate::new(502)
        } else {
            json_response(VIEW_OK)
        }
    }
}

#[tokio::test]
async fn a_plugged_in_limiter_sees_each_call_once_and_holds_it_to_the_end() {
    let server = MockServer::start().await;
    let recording = std::sync::Arc::new(Recording::default());
    let responder = std::sync::Arc::new(SeesHeld {
        held: std::sync::Arc::clone(&recording.held),
        seen: std::sync::Mutex::default(),
    });
    // A 502 first: the retry is part of the same call, under the same permit.
    Mock::given(path(
        "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.View.common.kdsvc",
    ))
    .respond_with(SharedResponder(std::sync::Arc::clone(&responder)))
    .mount(&server)
    .await;
    let client = builder(&server)
        .retry_policy(retrying())
        .rate_limiter(recording.clone())
        .build()
        .unwrap();
    client
        .view("BD_Customer")
        .number("C1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        *recording.services.lock().unwrap(),
        ["Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.View"]
    );
    assert_eq!(
        *responder.seen.lock().unwrap(),
        [1, 1],
        "the permit is held at the first request and at its retry"
    );
    assert_eq!(
        recording.held.load(Ordering::SeqCst),
        0,
        "released after the call"
    );
}

struct SharedResponder(std::sync::Arc<SeesHeld>);

impl Respond for SharedResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

/// `per_second` spaces the starts of calls evenly, even when they are all made at once.
#[tokio::test(start_paused = true)]
async fn the_rate_limit_spaces_call_starts() {
    let server = RawServer::start(VIEW_OK, Duration::ZERO).await;
    let client = builder_at(&server.uri())
        .rate_limit(RateLimit::none().per_second(4))
        .build()
        .unwrap();
    let started = Instant::now();
    views_at_once(&client, 5).await;
    let mut arrivals: Vec<u128> = server
        .requests()
        .iter()
        .map(|r| (r.arrived - started).as_millis())
        .collect();
    arrivals.sort_unstable();
    assert_eq!(arrivals, [0, 250, 500, 750, 1000]);
}
