//! The `fxk3-simulators` binary as a process: started on a free port, one K3Cloud and one Fxiaoke call,
//! its command-line options for K3Cloud sessions and query rows, stopped by SIGINT (Ctrl-C).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The child process, killed if a test fails before it stopped it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the binary on port 0 and answers its base URL, read from the first line it prints
/// ("sandbox listening on http://127.0.0.1:PORT (seed N)") — printed once it listens.
fn start(args: &[&str]) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fxk3-simulators"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sandbox binary starts");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        // Keep reading so that the child never blocks on a full pipe.
        for _ in lines {}
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the sandbox prints its address");
    let url = first
        .strip_prefix("sandbox listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "{url}");
    (running, url)
}

/// Sends SIGINT (what Ctrl-C sends) and waits for a clean exit.
fn interrupt(mut running: Running) {
    let pid = running.0.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sandbox did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn post(http: &reqwest::Client, url: String, body: &Value, sid: Option<&str>) -> Value {
    let mut request = http.post(url).json(body);
    if let Some(sid) = sid {
        request = request.header("kdservice-sessionid", sid);
    }
    let text = request.send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn k3_login(http: &reqwest::Client, base: &str) -> String {
    let login = post(
        http,
        format!("{base}/k3cloud/Kingdee.BOS.WebApi.ServicesStub.AuthService.ValidateUser.common.kdsvc"),
        &json!({"acctID": "60a1b2c3d4e5f6", "username": "webapi", "password": "P@ssw0rd", "lcid": 2052}),
        None,
    )
    .await;
    assert_eq!(login["LoginResultType"], 1, "{login}");
    login["KDSVCSessionId"].as_str().unwrap().to_string()
}

fn query_url(base: &str) -> String {
    format!(
        "{base}/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
    )
}

#[tokio::test]
async fn the_binary_serves_both_apis_and_stops_on_sigint() {
    let (running, base) = start(&["--seed", "7"]);
    let http = reqwest::Client::new();

    // K3Cloud with the printed demo credentials: the demo materials.
    let sid = k3_login(&http, &base).await;
    let rows = post(
        &http,
        query_url(&base),
        &json!({"data": {"FormId": "BD_MATERIAL", "FieldKeys": "FNumber", "OrderString": "FNumber", "Limit": 2}}),
        Some(&sid),
    )
    .await;
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    assert!(rows[0][0].is_string(), "{rows}");

    // Fxiaoke: a token, then a query of the demo customers.
    let token = post(
        &http,
        format!("{base}/cgi/corpAccessToken/get/V2"),
        &json!({"appId": "FSAID_1000001", "appSecret": "0123456789abcdef0123456789abcdef",
                "permanentCode": "0123456789ABCDEF0123456789ABCDEF"}),
        None,
    )
    .await;
    assert_eq!(token["errorCode"], 0, "{token}");
    let page = post(
        &http,
        format!("{base}/cgi/crm/v2/data/query"),
        &json!({"corpAccessToken": token["corpAccessToken"], "corpId": token["corpId"],
                "currentOpenUserId": common::ADMIN,
                "data": {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 2, "offset": 0}}}),
        None,
    )
    .await;
    assert_eq!(page["errorCode"], 0, "{page}");
    assert_eq!(page["data"]["dataList"].as_array().unwrap().len(), 2);

    interrupt(running);
}

#[tokio::test]
async fn the_binary_takes_a_session_ttl_and_a_query_row_cap() {
    let (running, base) = start(&["--no-demo", "--session-ttl", "60", "--max-query-rows", "2"]);
    let http = reqwest::Client::new();
    let sid = k3_login(&http, &base).await;
    // Four currencies are preset; two come back at most.
    let query = json!({"data": {"FormId": "BD_Currency", "FieldKeys": "FNumber", "OrderString": "FNumber"}});
    let rows = post(&http, query_url(&base), &query, Some(&sid)).await;
    assert_eq!(rows, json!([["PRE001"], ["PRE002"]]));

    // 61 idle seconds later (the clock moved through the control API) the session is lost.
    let clock = post(
        &http,
        format!("{base}/__sandbox/clock"),
        &json!({"advance_ms": 61_000}),
        None,
    )
    .await;
    assert!(clock["now_ms"].is_i64(), "{clock}");
    let lost = post(&http, query_url(&base), &query, Some(&sid)).await;
    assert_eq!(
        lost[0][0]["Result"]["ResponseStatus"]["MsgCode"], 1,
        "{lost}"
    );

    interrupt(running);
}

#[test]
fn bad_options_exit_2_with_the_usage() {
    for args in [
        &["--session-ttl", "soon"][..],
        &["--max-query-rows", "0"],
        &["--bogus"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fxk3-simulators"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("usage: fxk3-simulators"),
            "{args:?}: {stderr}"
        );
    }
}
