//! The SDK against hand-written reqwest + serde_json doing the same requests, in the same run,
//! on a local wiremock server: a query page of 100 records and a create. Prints the time per
//! call of each, their ratio (goal: SDK ≤ 1.05 × baseline) and the token requests the SDK made
//! per 10,000 calls (goal: 1). `cargo bench -p fxiaoke-sdk`; nothing is asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fxiaoke_sdk::{Client, Error};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ROUNDS: usize = 9;
const CALLS_PER_ROUND: usize = 3_000;
const CONCURRENCY: usize = 8;
const OPERATOR: &str = "FSUID_0123456789ABCDEF0123456789ABCDEF";
const TOKEN: &str = "E3B0C44298FC1C149AFBF4C8996FB924";
const CORP_ID: &str = "FSCID_1A2B3C4D5E6F708192A3B4C5D6E7F809";

fn page_body() -> String {
    let rows: Vec<Value> = (0..100)
        .map(|i| {
            json!({
                "_id": format!("5dc4cefa038eaa0001c0{i:04x}"),
                "name": format!("上海示例科技有限公司{i}"),
                "account_no": format!("KH-2024-{i:04}"),
                "owner": [OPERATOR],
                "created_by": [OPERATOR],
                "last_modified_by": [OPERATOR],
                "create_time": 1_612_247_399_397_i64 + i,
                "last_modified_time": 1_716_000_000_000_i64 + i,
                "life_status": "normal",
                "lock_status": "0",
                "is_deleted": false,
                "record_type": "default__c",
                "object_describe_api_name": "AccountObj",
                "version": "3",
                "field_erp_no__c": format!("C{i:05}"),
            })
        })
        .collect();
    json!({"errorCode": 0, "errorMessage": "OK", "errorDescription": "success",
           "traceId": "E-O.71557.1000-8f3c2a1b6d4e4f50a1b2c3d4e5f60718",
           "data": {"dataList": rows, "offset": 0, "limit": 100, "total": 0}})
    .to_string()
}

const CREATED: &str = r#"{"traceId":"E-O.71557.1000-8f3c2a1b6d4e4f50a1b2c3d4e5f60718","errorDescription":"success","dataId":"68fa0c1e2b7f3d0001a4b5c6","errorMessage":"OK","errorCode":0}"#;

fn respond(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json;charset=UTF-8")
        .set_body_string(body)
}

/// The hand-written client: what a careful integrator writes without an SDK.
#[derive(Clone)]
struct Baseline {
    http: reqwest::Client,
    base: String,
    token: String,
    corp_id: String,
}

impl Baseline {
    async fn new(base: &str) -> Baseline {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .build()
            .expect("client");
        let answer: Value = http
            .post(format!("{base}/cgi/corpAccessToken/get/V2"))
            .json(
                &json!({"appId": "FSAID_1000001", "appSecret": "0123456789abcdef0123456789abcdef",
                          "permanentCode": "0123456789ABCDEF0123456789ABCDEF"}),
            )
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token answer");
        Baseline {
            http,
            base: base.to_owned(),
            token: answer["corpAccessToken"]
                .as_str()
                .expect("token")
                .to_owned(),
            corp_id: answer["corpId"].as_str().expect("corp").to_owned(),
        }
    }

    async fn post(&self, at: &str, data: Value, top: Value) -> Value {
        let mut body = json!({"corpAccessToken": self.token, "corpId": self.corp_id,
                              "currentOpenUserId": OPERATOR});
        let map = body.as_object_mut().expect("object");
        if let Value::Object(top) = top {
            map.extend(top);
        }
        map.insert("data".into(), data);
        let bytes = self
            .http
            .post(format!("{}{at}", self.base))
            .timeout(Duration::from_secs(60))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).expect("body"))
            .send()
            .await
            .expect("send")
            .bytes()
            .await
            .expect("answer");
        let answer: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(answer["errorCode"], 0, "{answer}");
        answer
    }

    async fn query(&self) -> usize {
        let mut answer = self
            .post(
                "/cgi/crm/v2/data/query",
                json!({"dataObjectApiName": "AccountObj",
                       "search_query_info": {"limit": 100, "offset": 0, "filters": [], "orders": []}}),
                json!({}),
            )
            .await;
        // Take the rows out of the parsed answer: no copy.
        match answer["data"]["dataList"].take() {
            Value::Array(rows) => rows.len(),
            other => panic!("no rows: {other}"),
        }
    }

    async fn create(&self, i: usize) -> String {
        let answer = self
            .post(
                "/cgi/crm/v2/data/create",
                json!({"object_data": {"dataObjectApiName": "AccountObj",
                       "name": format!("客户{i}"), "owner": [OPERATOR]}}),
                json!({"triggerWorkFlow": false}),
            )
            .await;
        answer["dataId"].as_str().expect("dataId").to_owned()
    }
}

async fn sdk_query(client: &Client) -> Result<usize, Error> {
    let page = client
        .query("AccountObj")
        .limit(100)
        .send::<Value>()
        .await?;
    Ok(page.rows.len())
}

async fn sdk_create(client: &Client, i: usize) -> Result<String, Error> {
    let created = client
        .create("AccountObj")
        .object_data(json!({"name": format!("客户{i}"), "owner": [OPERATOR]}))
        .trigger_workflow(false)
        .send()
        .await?;
    Ok(created.data_id.unwrap_or_default())
}

/// Runs `calls` calls, `CONCURRENCY` at a time; returns the time per call.
async fn timed<F, Fut>(calls: usize, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (next, op) = (Arc::clone(&next), op.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= calls {
                        break;
                    }
                    op(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    started.elapsed() / u32::try_from(calls).expect("calls")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path("/cgi/corpAccessToken/get/V2"))
            .respond_with(respond(
                json!({"errorCode": 0, "errorMessage": "success", "corpAccessToken": TOKEN,
                       "corpId": CORP_ID, "expiresIn": 7200})
                .to_string(),
            ))
            .mount(&server)
            .await;
        let page = page_body();
        Mock::given(path("/cgi/crm/v2/data/query"))
            .respond_with(respond(page.clone()))
            .mount(&server)
            .await;
        Mock::given(path("/cgi/crm/v2/data/create"))
            .respond_with(respond(CREATED.to_owned()))
            .mount(&server)
            .await;
        let token_requests = || async {
            server
                .received_requests()
                .await
                .unwrap_or_default()
                .iter()
                .filter(|r: &&Request| r.url.path() == "/cgi/corpAccessToken/get/V2")
                .count()
        };

        let client = Client::builder()
            .base_url(server.uri())
            .app_id("FSAID_1000001")
            .app_secret("0123456789abcdef0123456789abcdef")
            .permanent_code("0123456789ABCDEF0123456789ABCDEF")
            .operator(OPERATOR)
            .build()
            .expect("client");
        let baseline = Baseline::new(&server.uri()).await;
        let tokens_before = token_requests().await;

        // Warm both up (connections, allocator).
        for i in 0..200 {
            sdk_query(&client).await.expect("query");
            baseline.query().await;
            sdk_create(&client, i).await.expect("create");
            baseline.create(i).await;
        }

        let mut results = Vec::new();
        for op in ["query page (100 records)", "create"] {
            let (mut sdk, mut base) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let c = client.clone();
                let b = baseline.clone();
                let is_query = op.starts_with("query");
                sdk.push(
                    timed(CALLS_PER_ROUND, move |i| {
                        let c = c.clone();
                        async move {
                            if is_query {
                                assert_eq!(sdk_query(&c).await.expect("query"), 100);
                            } else {
                                assert!(!sdk_create(&c, i).await.expect("create").is_empty());
                            }
                        }
                    })
                    .await,
                );
                base.push(
                    timed(CALLS_PER_ROUND, move |i| {
                        let b = b.clone();
                        async move {
                            if is_query {
                                assert_eq!(b.query().await, 100);
                            } else {
                                assert!(!b.create(i).await.is_empty());
                            }
                        }
                    })
                    .await,
                );
            }
            results.push((op, median(sdk), median(base)));
        }

        let sdk_calls = 2 * ROUNDS * CALLS_PER_ROUND + 400;
        let sdk_token_requests = token_requests().await - tokens_before;
        println!();
        println!(
            "fxiaoke-sdk vs hand-written reqwest + serde_json, {CONCURRENCY} concurrent callers, \
             median of {ROUNDS} rounds of {CALLS_PER_ROUND} calls"
        );
        println!(
            "{:<26} {:>12} {:>12} {:>8}",
            "operation", "sdk/call", "baseline", "ratio"
        );
        for (op, sdk, base) in results {
            println!(
                "{op:<26} {:>10.1}µs {:>10.1}µs {:>7.3}×",
                sdk.as_secs_f64() * 1e6,
                base.as_secs_f64() * 1e6,
                sdk.as_secs_f64() / base.as_secs_f64()
            );
        }
        #[allow(clippy::cast_precision_loss)]
        let per_10k = sdk_token_requests as f64 * 10_000.0 / sdk_calls as f64;
        println!(
            "token requests by the SDK: {sdk_token_requests} in {sdk_calls} calls \
             ({per_10k:.2} per 10,000 calls; the SDK's own count: {})",
            client.token_requests()
        );
    });
}
