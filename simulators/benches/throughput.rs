//! Requests per second against an in-process sandbox, over loopback with keep-alive
//! connections: K3Cloud Save and ExecuteBillQuery, Fxiaoke create and query.
//! `cargo bench -p fxk3-simulators` prints the figures; nothing is asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fxk3_simulators::{FxiaokeConfig, Sandbox};
use serde_json::{Value, json};

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 500;
const RECORDS: usize = CLIENTS * PER_CLIENT;

type MakeRequest = Arc<dyn Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;

/// `CLIENTS` tasks send `PER_CLIENT` requests each; every answer must be a success.
async fn run(make: MakeRequest, ok: fn(&str) -> bool) -> (f64, Duration) {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, make) = (client.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_CLIENT {
                let response = make(&client, c * PER_CLIENT + i)
                    .send()
                    .await
                    .expect("request");
                let text = response.text().await.expect("answer");
                assert!(ok(&text), "{text}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let elapsed = start.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let rps = RECORDS as f64 / elapsed.as_secs_f64();
    (rps, elapsed)
}

fn k3_ok(text: &str) -> bool {
    !text.contains("\"IsSuccess\":false")
}

fn fx_ok(text: &str) -> bool {
    text.contains("\"errorCode\":0")
}

async fn k3_session(sandbox: &Sandbox) -> String {
    let cfg = &sandbox.config().k3cloud;
    let answer: Value = reqwest::Client::new()
        .post(format!(
            "{}Kingdee.BOS.WebApi.ServicesStub.AuthService.ValidateUser.common.kdsvc",
            sandbox.k3cloud_url()
        ))
        .body(format!(
            r#"{{"parameters":["{}","{}","{}",2052]}}"#,
            cfg.acct_id, cfg.user_name, cfg.password
        ))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login answer");
    answer["KDSVCSessionId"]
        .as_str()
        .expect("session")
        .to_string()
}

async fn fx_token(sandbox: &Sandbox) -> Value {
    let app = &sandbox.config().fxiaoke.apps[0];
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/cgi/corpAccessToken/get/V2", sandbox.fxiaoke_url()))
        .json(&json!({"appId": app.app_id, "appSecret": app.app_secret, "permanentCode": app.permanent_code}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token answer");
    json!({"corpAccessToken": answer["corpAccessToken"], "corpId": answer["corpId"],
           "currentOpenUserId": "FSUID_0123456789ABCDEF0123456789ABCDEF"})
}

fn k3(sandbox: &Sandbox, sid: &str, method: &str, body: fn(usize) -> String) -> MakeRequest {
    let url = format!(
        "{}Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.{method}.common.kdsvc",
        sandbox.k3cloud_url()
    );
    let sid = sid.to_string();
    Arc::new(move |client, i| {
        client
            .post(&url)
            .header("kdservice-sessionid", &sid)
            .body(body(i))
    })
}

fn fx(sandbox: &Sandbox, auth: &Value, path: &str, data: fn(usize) -> Value) -> MakeRequest {
    let url = format!("{}{path}", sandbox.fxiaoke_url());
    let auth = auth.clone();
    Arc::new(move |client, i| {
        let mut body = auth.clone();
        body["data"] = data(i);
        client.post(&url).json(&body)
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Benchmarks measure the simulator, not the vendor's 100 calls / 20 s.
        let sandbox = Sandbox::builder()
            .fxiaoke(FxiaokeConfig { rate_limit: None, ..FxiaokeConfig::default() })
            .start()
            .await
            .expect("sandbox");
        let sid = k3_session(&sandbox).await;
        let auth = fx_token(&sandbox).await;

        let save = run(
            k3(&sandbox, &sid, "Save", |i| {
                format!(r#"{{"formid":"BD_Customer","data":{{"Model":{{"FCUSTID":0,"FNumber":"B{i:06}","FName":"客户{i}","FCreateOrgId":{{"FNumber":"100"}}}}}}}}"#)
            }),
            k3_ok,
        )
        .await;
        let query = run(
            k3(&sandbox, &sid, "ExecuteBillQuery", |i| {
                format!(r#"{{"data":{{"FormId":"BD_Customer","FieldKeys":"FCUSTID,FNumber,FName,FCreateOrgId.FNumber","FilterString":"FNumber like 'B00%'","OrderString":"FName DESC","StartRow":{},"Limit":100}}}}"#, (i % 40) * 100)
            }),
            k3_ok,
        )
        .await;
        // Every query follows a write: the sorted order is rebuilt each time.
        let mixed = {
            let (save, query) = (
                k3(&sandbox, &sid, "Save", |i| {
                    format!(r#"{{"formid":"BD_Customer","data":{{"Model":{{"FNumber":"M{i:06}","FName":"混合{i}","FCreateOrgId":{{"FNumber":"100"}}}}}}}}"#)
                }),
                k3(&sandbox, &sid, "ExecuteBillQuery", |i| {
                    format!(r#"{{"data":{{"FormId":"BD_Customer","FieldKeys":"FNumber,FName","FilterString":"FNumber like 'B00%'","OrderString":"FName DESC","StartRow":{},"Limit":100}}}}"#, (i % 40) * 100)
                }),
            );
            let alternate: MakeRequest = Arc::new(move |client, i| {
                if i % 2 == 0 { save(client, i) } else { query(client, i) }
            });
            run(alternate, k3_ok).await
        };
        let create = run(
            fx(&sandbox, &auth, "/cgi/crm/v2/data/create", |i| {
                json!({"object_data": {"dataObjectApiName": "AccountObj", "name": format!("客户{i}"),
                                       "account_no": format!("KH{i:05}"), "account_level": "2",
                                       "owner": ["FSUID_0123456789ABCDEF0123456789ABCDEF"]}})
            }),
            fx_ok,
        )
        .await;
        let fx_query = run(
            fx(&sandbox, &auth, "/cgi/crm/v2/data/query", |i| {
                json!({"dataObjectApiName": "AccountObj", "search_query_info": {
                    "limit": 100, "offset": (i % 40) * 100,
                    "filters": [{"field_name": "account_level", "operator": "EQ", "field_values": ["2"]}],
                    "orders": [{"fieldName": "name", "isAsc": true}]}})
            }),
            fx_ok,
        )
        .await;

        println!("sandbox throughput ({CLIENTS} keep-alive clients x {PER_CLIENT} requests, loopback)");
        let line = |label: &str, (rps, time): (f64, Duration)| {
            println!("  {label:<58} {rps:>8.0} req/s  ({time:.2?})");
        };
        line("K3Cloud Save (BD_Customer, 1 record)", save);
        line(&format!("K3Cloud ExecuteBillQuery (100 of {RECORDS} rows, sorted)"), query);
        line("K3Cloud Save + sorted ExecuteBillQuery alternating", mixed);
        line("Fxiaoke data/create (AccountObj)", create);
        line(&format!("Fxiaoke data/query (100 of {RECORDS}, filter + order)"), fx_query);
        sandbox.shutdown().await;
    });
}
