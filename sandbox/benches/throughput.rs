//! Requests per second of Save and ExecuteBillQuery against an in-process sandbox, over
//! loopback with keep-alive connections. `cargo bench -p sandbox` prints the figures; nothing
//! is asserted.

use std::time::{Duration, Instant};

use sandbox::Sandbox;

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 500;

async fn login(sandbox: &Sandbox, client: &reqwest::Client) -> String {
    let url = format!(
        "{}Kingdee.BOS.WebApi.ServicesStub.AuthService.ValidateUser.common.kdsvc",
        sandbox.k3cloud_url()
    );
    let cfg = &sandbox.config().k3cloud;
    let body = format!(
        r#"{{"parameters":["{}","{}","{}",2052]}}"#,
        cfg.acct_id, cfg.user_name, cfg.password
    );
    let answer: serde_json::Value = client
        .post(url)
        .body(body)
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

async fn run(
    sandbox: &Sandbox,
    method: &str,
    body: impl Fn(usize) -> String + Send + Sync + Clone + 'static,
) -> (f64, Duration) {
    let url = format!(
        "{}Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.{method}.common.kdsvc",
        sandbox.k3cloud_url()
    );
    let client = reqwest::Client::new();
    let sid = login(sandbox, &client).await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, url, sid, body) = (client.clone(), url.clone(), sid.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_CLIENT {
                let response = client
                    .post(&url)
                    .header("kdservice-sessionid", &sid)
                    .body(body(c * PER_CLIENT + i))
                    .send()
                    .await
                    .expect("request");
                let text = response.text().await.expect("answer");
                assert!(!text.contains("\"IsSuccess\":false"), "{text}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let elapsed = start.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let rps = (CLIENTS * PER_CLIENT) as f64 / elapsed.as_secs_f64();
    (rps, elapsed)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sandbox = Sandbox::builder().start().await.expect("sandbox");
        let (save_rps, save_time) = run(&sandbox, "Save", |i| {
            format!(
                r#"{{"formid":"BD_Customer","data":{{"Model":{{"FCUSTID":0,"FNumber":"B{i:06}","FName":"客户{i}","FCreateOrgId":{{"FNumber":"100"}}}}}}}}"#
            )
        })
        .await;
        let (query_rps, query_time) = run(&sandbox, "ExecuteBillQuery", |i| {
            format!(
                r#"{{"data":{{"FormId":"BD_Customer","FieldKeys":"FCUSTID,FNumber,FName,FCreateOrgId.FNumber","FilterString":"FNumber like 'B00%'","OrderString":"FNumber ASC","StartRow":{},"Limit":100}}}}"#,
                (i % 40) * 100
            )
        })
        .await;
        println!("sandbox throughput ({CLIENTS} keep-alive clients x {PER_CLIENT} requests, loopback)");
        println!("  Save (BD_Customer, 1 record)                   {save_rps:>8.0} req/s  ({save_time:?})");
        println!("  ExecuteBillQuery (100 rows of {} customers)  {query_rps:>8.0} req/s  ({query_time:?})", CLIENTS * PER_CLIENT);
        sandbox.shutdown().await;
    });
}
