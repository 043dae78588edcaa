//! The SDK against hand-written reqwest + serde_json doing the same requests, in the same run,
//! on a local server: a query page of 100 records and a create. Prints the wall and client CPU
//! time per call of each, their ratio (goal: SDK ≤ 1.05 × baseline), the floor (the same request and answer
//! bytes with no JSON work on the client) and the token requests the SDK made per 10,000 calls
//! (goal: 1). `cargo bench -p fxiaoke-sdk --bench calls`; nothing is asserted.
//!
//! The server is a few lines of HTTP/1.1 on its own thread and runtime that answers canned
//! bytes by path and records nothing (wiremock matches and stores every request, on a single
//! thread, which made the server a large and noisy share of each call). The floor row shows
//! what is left for the server and the sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fxiaoke_sdk::{Client, Error};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUNDS: usize = 41;
const CALLS_PER_ROUND: usize = 1_000;
const CONCURRENCY: usize = 4;
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

const TOKEN_PATH: &str = "/cgi/corpAccessToken/get/V2";
const QUERY_PATH: &str = "/cgi/crm/v2/data/query";
const CREATE_PATH: &str = "/cgi/crm/v2/data/create";

/// A whole HTTP/1.1 answer with `body`.
fn response(status: &str, body: &str) -> Arc<[u8]> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json;charset=UTF-8\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
    .into()
}

/// The canned answers, and how many token requests came in.
struct Answers {
    token: Arc<[u8]>,
    page: Arc<[u8]>,
    created: Arc<[u8]>,
    not_found: Arc<[u8]>,
    token_requests: AtomicUsize,
}

impl Answers {
    fn to(&self, path: &str) -> Arc<[u8]> {
        match path {
            TOKEN_PATH => {
                self.token_requests.fetch_add(1, Ordering::Relaxed);
                Arc::clone(&self.token)
            }
            QUERY_PATH => Arc::clone(&self.page),
            CREATE_PATH => Arc::clone(&self.created),
            _ => Arc::clone(&self.not_found),
        }
    }
}

/// Starts the server on a thread of its own; returns its base URL.
fn serve(answers: Arc<Answers>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let uri = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                stream.set_nodelay(true).expect("nodelay");
                tokio::spawn(connection(stream, Arc::clone(&answers)));
            }
        });
    });
    uri
}

/// Answers the requests of one keep-alive connection until the client closes it.
async fn connection(mut stream: tokio::net::TcpStream, answers: Arc<Answers>) {
    let mut buffer = Vec::with_capacity(8192);
    let mut chunk = [0_u8; 8192];
    loop {
        // The head, then the body its content-length announces.
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let path = head
            .split(' ')
            .nth(1)
            .and_then(|target| target.split('?').next())
            .unwrap_or_default()
            .to_owned();
        let length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        if stream.write_all(&answers.to(&path)).await.is_err() {
            return;
        }
    }
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

    /// The same request bytes and answer bytes as a query, with no JSON work: what the
    /// sockets and the server cost.
    async fn floor(&self, body: &'static [u8]) -> usize {
        self.http
            .post(format!("{}{QUERY_PATH}", self.base))
            .timeout(Duration::from_secs(60))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send")
            .bytes()
            .await
            .expect("answer")
            .len()
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

/// CPU time this thread has used, from Linux's `/proc/thread-self/schedstat` (nanoseconds);
/// `None` elsewhere. The client runs on a current-thread runtime, so this is the client's own
/// work (JSON, HTTP, syscalls), which the wall clock of a shared 2-core machine hides under
/// scheduling noise: waiting for the server costs no CPU.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `calls` calls, `CONCURRENCY` at a time; returns the wall time and the client's CPU
/// time per call.
async fn timed<F, Fut>(calls: usize, op: F) -> (Duration, Option<Duration>)
where
    F: Fn(usize) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let local = tokio::task::LocalSet::new();
    for _ in 0..CONCURRENCY {
        let (next, op) = (Arc::clone(&next), op.clone());
        local.spawn_local(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    break;
                }
                op(i).await;
            }
        });
    }
    local.await;
    let n = u32::try_from(calls).expect("calls");
    let cpu = thread_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before) / n);
    (started.elapsed() / n, cpu)
}

/// Per-call medians of the two sides and the median ratio of the rounds, for wall time and
/// (where the OS reports it) client CPU time.
struct Figures {
    wall: (Duration, Duration, f64),
    cpu: Option<(Duration, Duration, f64)>,
}

type Side = (Duration, Option<Duration>);

impl Figures {
    fn of(rounds: &[(Side, Side)]) -> Figures {
        let summary = |pairs: Vec<(Duration, Duration)>| {
            let mut ratios: Vec<f64> = pairs
                .iter()
                .map(|(s, h)| s.as_secs_f64() / h.as_secs_f64())
                .collect();
            ratios.sort_by(f64::total_cmp);
            (
                median(pairs.iter().map(|p| p.0).collect()),
                median(pairs.iter().map(|p| p.1).collect()),
                ratios[ratios.len() / 2],
            )
        };
        let wall = summary(rounds.iter().map(|(s, h)| (s.0, h.0)).collect());
        let cpu: Option<Vec<(Duration, Duration)>> =
            rounds.iter().map(|(s, h)| s.1.zip(h.1)).collect();
        Figures {
            wall,
            cpu: cpu.map(summary),
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let answers = Arc::new(Answers {
        token: response(
            "200 OK",
            &json!({"errorCode": 0, "errorMessage": "success", "corpAccessToken": TOKEN,
                   "corpId": CORP_ID, "expiresIn": 7200})
            .to_string(),
        ),
        page: response("200 OK", &page_body()),
        created: response("200 OK", CREATED),
        not_found: response("404 Not Found", "{}"),
        token_requests: AtomicUsize::new(0),
    });
    let uri = serve(Arc::clone(&answers));
    let token_requests = || answers.token_requests.load(Ordering::Relaxed);
    // One thread for every client task, so that its CPU time is the clients' work.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = Client::builder()
            .base_url(&uri)
            .app_id("FSAID_1000001")
            .app_secret("0123456789abcdef0123456789abcdef")
            .permanent_code("0123456789ABCDEF0123456789ABCDEF")
            .operator(OPERATOR)
            .build()
            .expect("client");
        let baseline = Baseline::new(&uri).await;
        let tokens_before = token_requests();
        // A query body as the SDK sends it, for the floor.
        let floor_body: &'static [u8] = serde_json::to_vec(&json!({
            "corpAccessToken": TOKEN, "corpId": CORP_ID, "currentOpenUserId": OPERATOR,
            "data": {"dataObjectApiName": "AccountObj",
                     "search_query_info": {"limit": 100, "offset": 0, "filters": [], "orders": []}}
        }))
        .expect("body")
        .leak();

        // Warm both up (connections, allocator).
        for i in 0..200 {
            sdk_query(&client).await.expect("query");
            baseline.query().await;
            sdk_create(&client, i).await.expect("create");
            baseline.create(i).await;
        }

        let mut results = Vec::new();
        for op in ["query page (100 records)", "create"] {
            let is_query = op.starts_with("query");
            let mut rounds = Vec::new();
            for round in 0..ROUNDS {
                let c = client.clone();
                let b = baseline.clone();
                let sdk_side = move || {
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
                };
                let base_side = move || {
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
                };
                // Alternate which side goes first, and compare each round with its twin: the
                // machine's speed drifts between rounds (shared cores), not within one.
                rounds.push(if round % 2 == 0 {
                    let s = sdk_side().await;
                    (s, base_side().await)
                } else {
                    let h = base_side().await;
                    (sdk_side().await, h)
                });
            }
            results.push((op, Figures::of(&rounds)));
        }
        let mut floor = Vec::new();
        for _ in 0..ROUNDS {
            let b = baseline.clone();
            let (wall, _) = timed(CALLS_PER_ROUND, move |_| {
                let b = b.clone();
                async move {
                    assert!(b.floor(floor_body).await > 0);
                }
            })
            .await;
            floor.push(wall);
        }
        let floor = median(floor);

        let sdk_calls = 2 * ROUNDS * CALLS_PER_ROUND + 400;
        let sdk_token_requests = token_requests() - tokens_before;
        println!();
        println!(
            "fxiaoke-sdk vs hand-written reqwest + serde_json, {CONCURRENCY} caller(s), \
             {ROUNDS} rounds of {CALLS_PER_ROUND} calls a side, sides alternating; \
             medians, ratios are the median of the rounds' ratios"
        );
        println!(
            "{:<26} {:>10} {:>10} {:>7}   {:>10} {:>10} {:>7}",
            "operation", "sdk wall", "hand wall", "ratio", "sdk CPU", "hand CPU", "ratio"
        );
        for (op, f) in results {
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            let cpu = match f.cpu {
                Some((s, h, r)) => format!("{:>8.1}µs {:>8.1}µs {r:>6.3}×", us(s), us(h)),
                None => "(no per-thread CPU time on this OS)".to_owned(),
            };
            println!(
                "{op:<26} {:>8.1}µs {:>8.1}µs {:>6.3}×   {cpu}",
                us(f.wall.0),
                us(f.wall.1),
                f.wall.2
            );
        }
        println!(
            "floor: a query's bytes there and back, no JSON work: {:.1}µs/call",
            floor.as_secs_f64() * 1e6
        );
        #[allow(clippy::cast_precision_loss)]
        let per_10k = sdk_token_requests as f64 * 10_000.0 / sdk_calls as f64;
        println!(
            "token requests by the SDK: {sdk_token_requests} in {sdk_calls} calls \
             ({per_10k:.2} per 10,000 calls; the SDK's own count: {})",
            client.token_requests()
        );
    });
}
