//! The SDK against a hand-written reqwest + serde_json client doing the same requests, side by
//! side in one run, on a minimal local HTTP/1.1 server (so that the client's cost dominates).
//!
//! Run: `cargo bench -p k3cloud-sdk --bench vs_reqwest`. Prints time per call and the ratio
//! SDK / hand-written (goal ≤ 1.05).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use k3cloud_sdk::{Auth, Client, FixedClock, RetryPolicy};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ACCT: &str = "60a1b2c3d4e5f6";
const USER: &str = "webapi";
const APP_ID: &str = "123456_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
const ROWS: usize = 2_000;
const PATH: &str = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService";

fn query_answer() -> String {
    let rows: Vec<Value> = (0..ROWS)
        .map(|i| {
            json!([
                100_000 + i,
                format!("SO{i:06}"),
                format!("CUST{:04}", i % 500),
                12.5 + f64::from(u32::try_from(i).unwrap()),
                "2024-01-15T00:00:00"
            ])
        })
        .collect();
    Value::Array(rows).to_string()
}

const SAVE_ANSWER: &str = r#"{"Result":{"ResponseStatus":{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":140670,"Number":"MAT0001","DIndex":0}],"SuccessMessages":[],"MsgCode":0},"Id":140670,"Number":"MAT0001","NeedReturnData":[{}]}}"#;

/// A keep-alive HTTP/1.1 server answering ExecuteBillQuery with `ROWS` rows and anything else
/// with a Save success.
async fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let query: Arc<[u8]> = query_answer().into_bytes().into();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            // Without this, small answers wait for the client's delayed ACK (~40 ms).
            let _ = socket.set_nodelay(true);
            let query = Arc::clone(&query);
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(16 * 1024);
                loop {
                    let Some(head_end) = read_head(&mut socket, &mut buf).await else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let mut chunk = [0u8; 8192];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: &[u8] = if head.contains("executebillquery") {
                        &query
                    } else {
                        SAVE_ANSWER.as_bytes()
                    };
                    let mut answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    answer.extend_from_slice(body);
                    if socket.write_all(&answer).await.is_err() {
                        return;
                    }
                    buf.drain(..head_end + length);
                }
            });
        }
    });
    format!("http://{addr}")
}

async fn read_head(socket: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 8192];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Order {
    #[serde(rename = "FID")]
    id: i64,
    #[serde(rename = "FBillNo")]
    number: String,
    #[serde(rename = "FCustId.FNumber")]
    customer: String,
    #[serde(rename = "FQty")]
    qty: f64,
    #[serde(rename = "FDate")]
    date: String,
}

/// What a careful hand-written client does: the same body, the same signed headers computed per
/// call, a status check, and a typed decode with an error-shape check.
struct HandWritten {
    http: reqwest::Client,
    base: String,
}

fn kd_hmac(message: &str, key: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    let hex = mac
        .finalize()
        .into_bytes()
        .iter()
        .fold(String::new(), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
    base64::engine::general_purpose::STANDARD.encode(hex)
}

impl HandWritten {
    fn signed(&self, path: &str) -> reqwest::RequestBuilder {
        let ts = "1700000000";
        let encoded = path.replace('/', "%2F");
        let to_sign = format!("POST\n{encoded}\n\nx-api-nonce:{ts}\nx-api-timestamp:{ts}\n");
        let app_data = format!("{ACCT},{USER},2052,0");
        self.http
            .post(format!("{}{path}", self.base))
            .header("X-Api-ClientID", "123456")
            .header("X-Api-Auth-Version", "2.0")
            .header("x-api-timestamp", ts)
            .header("x-api-nonce", ts)
            .header("x-api-signheaders", "x-api-timestamp,x-api-nonce")
            .header(
                "X-Api-Signature",
                kd_hmac(&to_sign, "MDE3N2I2PzBrPzg4OD45N3IhK3B1InIk"),
            )
            .header("X-Kd-Appkey", APP_ID)
            .header(
                "X-Kd-Appdata",
                base64::engine::general_purpose::STANDARD.encode(&app_data),
            )
            .header(
                "X-Kd-Signature",
                kd_hmac(&format!("{APP_ID}{app_data}"), APP_SECRET),
            )
            .header("content-type", "application/json")
            // Any production client bounds its calls; the SDK does too.
            .timeout(Duration::from_secs(120))
    }

    async fn query(&self) -> Vec<Tuple> {
        let body = json!({"data": {"FormId": "SAL_SaleOrder", "FieldKeys": "FID,FBillNo,FCustId.FNumber,FQty,FDate",
            "FilterString": "FDocumentStatus = 'C'", "OrderString": "FID ASC", "TopRowCount": 0, "StartRow": 0,
            "Limit": 2000, "SubSystemId": ""}});
        let path = format!("{PATH}.ExecuteBillQuery.common.kdsvc");
        let resp = self
            .signed(&path)
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let bytes = resp.bytes().await.unwrap();
        assert!(!bytes.starts_with(b"[[{"), "error envelope");
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn save(&self) -> String {
        let body = json!({"formid": "BD_MATERIAL", "data": {"IsDeleteEntry": "false",
            "Model": {"FMATERIALID": 0, "FNumber": "MAT0001", "FName": "测试物料"}}});
        let path = format!("{PATH}.Save.common.kdsvc");
        let resp = self
            .signed(&path)
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(v["Result"]["ResponseStatus"]["IsSuccess"], true);
        v["Result"]["Id"].to_string()
    }
}

type Tuple = (i64, String, String, f64, String);

async fn sdk_query_tuples(client: &Client) -> Vec<Tuple> {
    client
        .query("SAL_SaleOrder")
        .fields(["FID", "FBillNo", "FCustId.FNumber", "FQty", "FDate"])
        .filter("FDocumentStatus = 'C'")
        .order_by("FID ASC")
        .send()
        .await
        .unwrap()
}

async fn sdk_query(client: &Client) -> Vec<Order> {
    client
        .query("SAL_SaleOrder")
        .fields(["FID", "FBillNo", "FCustId.FNumber", "FQty", "FDate"])
        .filter("FDocumentStatus = 'C'")
        .order_by("FID ASC")
        .send()
        .await
        .unwrap()
}

async fn sdk_save(client: &Client) -> String {
    client
        .save("BD_MATERIAL")
        .is_delete_entry(false)
        .model(json!({"FMATERIALID": 0, "FNumber": "MAT0001", "FName": "测试物料"}))
        .send()
        .await
        .unwrap()
        .id
}

/// Runs `rounds` rounds of `n` calls of each side, alternating, and returns the median time per
/// call of each.
async fn measure<A, B, FA, FB>(rounds: usize, n: usize, mut a: A, mut b: B) -> (Duration, Duration)
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: std::future::Future<Output = ()>,
    FB: std::future::Future<Output = ()>,
{
    let mut ta = Vec::new();
    let mut tb = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            a().await;
        }
        ta.push(t.elapsed() / u32::try_from(n).unwrap());
        let t = Instant::now();
        for _ in 0..n {
            b().await;
        }
        tb.push(t.elapsed() / u32::try_from(n).unwrap());
    }
    ta.sort();
    tb.sort();
    (ta[rounds / 2], tb[rounds / 2])
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let base = serve().await;
        let sdk = Client::builder(&base)
            .account(ACCT)
            .user(USER)
            .auth(Auth::signed(APP_ID, APP_SECRET))
            .clock(Arc::new(FixedClock(1_700_000_000)))
            .retry_policy(RetryPolicy::never())
            .build()
            .unwrap();
        let hand = HandWritten { http: reqwest::Client::builder().http1_only().build().unwrap(), base };
        // Warm up connections and caches.
        for _ in 0..20 {
            sdk_query(&sdk).await;
            hand.query().await;
            sdk_save(&sdk).await;
            hand.save().await;
        }
        let quick = std::env::args().any(|a| a == "--quick");
        let (rounds, nq, ns) = if quick { (3, 5, 50) } else { (9, 40, 400) };
        let (q_sdk, q_hand) = measure(
            rounds,
            nq,
            || async { assert_eq!(sdk_query(&sdk).await.len(), ROWS) },
            || async { assert_eq!(hand.query().await.len(), ROWS) },
        )
        .await;
        let (t_sdk, t_hand) = measure(
            rounds,
            nq,
            || async { assert_eq!(sdk_query_tuples(&sdk).await.len(), ROWS) },
            || async { assert_eq!(hand.query().await.len(), ROWS) },
        )
        .await;
        let (s_sdk, s_hand) = measure(
            rounds,
            ns,
            || async { assert_eq!(sdk_save(&sdk).await, "140670") },
            || async { assert_eq!(hand.save().await, "140670") },
        )
        .await;
        println!("k3cloud-sdk vs hand-written reqwest + serde_json (median of {rounds} rounds)");
        println!(
            "  ExecuteBillQuery, {ROWS} rows -> tuples:   sdk {:>9.1?}  hand {:>9.1?}  ratio {:.3}",
            t_sdk,
            t_hand,
            t_sdk.as_secs_f64() / t_hand.as_secs_f64()
        );
        println!(
            "  ExecuteBillQuery, {ROWS} rows -> struct by field key (hand: tuples): sdk {:>9.1?}  hand {:>9.1?}  ratio {:.3}",
            q_sdk,
            q_hand,
            q_sdk.as_secs_f64() / q_hand.as_secs_f64()
        );
        println!(
            "  Save, one document:                       sdk {:>9.1?}  hand {:>9.1?}  ratio {:.3}",
            s_sdk,
            s_hand,
            s_sdk.as_secs_f64() / s_hand.as_secs_f64()
        );
    });
}
