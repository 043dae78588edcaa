//! Every fault kind end to end, against both simulators, with raw HTTP clients: what the
//! client sees, and what the state holds afterwards. Draws are reproducible from the seed.

mod common;

use std::time::{Duration, Instant};

use common::{Fx, K3, status};
use fxk3_simulators::{Api, Clock, Fault, FaultKind, FxiaokeConfig, Sandbox};
use serde_json::{Value, json};

async fn sandbox(seed: u64) -> Sandbox {
    let sandbox = Sandbox::builder()
        .clock(Clock::frozen_at_secs(1_700_000_000))
        .seed(seed)
        .fxiaoke(FxiaokeConfig {
            rate_limit: None,
            ..FxiaokeConfig::default()
        })
        .start()
        .await
        .unwrap();
    sandbox
        .k3cloud_insert(
            "BD_Customer",
            json!({"FNumber": "CUST0001", "FName": "甲", "FCreateOrgId": {"FNumber": "100"}}),
        )
        .unwrap();
    sandbox
}

fn customer(number: &str) -> Value {
    json!({"formid": "BD_Customer", "data": {"Model": {"FNumber": number, "FName": number, "FCreateOrgId": {"FNumber": "100"}}}})
}

fn account(name: &str) -> Value {
    json!({"data": {"object_data": {"dataObjectApiName": "AccountObj", "name": name}}})
}

/// Sends and returns the status and the raw body, or the transport error.
async fn send(request: reqwest::RequestBuilder) -> Result<(u16, String), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

fn fx_request(fx: &Fx, path: &str, body: &Value) -> reqwest::RequestBuilder {
    fx.http
        .post(format!("{}{path}", fx.url))
        .json(&fx.auth(body.clone()))
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let sandbox = sandbox(1).await;
    let (k3, fx) = (K3::login(&sandbox).await, Fx::token(&sandbox).await);
    let _ = sandbox.set_fault(
        Fault::new(
            Api::K3cloud,
            "Save",
            FaultKind::Latency {
                ms: 150,
                per_row_ms: 0,
            },
        )
        .next(1),
    );
    let _ = sandbox.set_fault(
        Fault::new(
            Api::Fxiaoke,
            "/cgi/crm/v2/data/create",
            FaultKind::Latency {
                ms: 150,
                per_row_ms: 0,
            },
        )
        .next(1),
    );
    let start = Instant::now();
    let (_, body) = send(k3.request("Save", &customer("C1"))).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert!(body.contains("\"IsSuccess\":true"), "{body}");
    let start = Instant::now();
    let (_, body) = send(fx_request(&fx, "/cgi/crm/v2/data/create", &account("甲")))
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert!(body.contains("\"errorCode\":0"), "{body}");
}

#[tokio::test]
async fn a_per_row_cost_grows_with_the_rows_a_call_writes() {
    let sandbox = sandbox(1).await;
    let k3 = K3::login(&sandbox).await;
    let _ = sandbox.set_fault(Fault::any_endpoint(
        Api::K3cloud,
        FaultKind::Latency {
            ms: 0,
            per_row_ms: 100,
        },
    ));
    let models: Vec<Value> = (1..=4)
        .map(|i| json!({"FNumber": format!("B{i}"), "FName": "乙", "FCreateOrgId": {"FNumber": "100"}}))
        .collect();
    let start = Instant::now();
    let (_, body) = send(k3.request(
        "BatchSave",
        &json!({"formid": "BD_Customer", "data": {"Model": models}}),
    ))
    .await
    .unwrap();
    assert!(body.contains("\"IsSuccess\":true"), "{body}");
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "four rows cost four times the per-row time: {:?}",
        start.elapsed()
    );
    assert_eq!(sandbox.k3cloud_records("BD_Customer").len(), 5);
}

#[tokio::test]
async fn server_errors_answer_an_html_page_and_write_nothing() {
    let sandbox = sandbox(1).await;
    let (k3, fx) = (K3::login(&sandbox).await, Fx::token(&sandbox).await);
    let _ = sandbox.set_fault(
        Fault::new(Api::K3cloud, "Save", FaultKind::ServerError { status: 500 }).next(1),
    );
    let _ = sandbox.set_fault(
        Fault::new(
            Api::Fxiaoke,
            "/cgi/crm/v2/data/create",
            FaultKind::ServerError { status: 502 },
        )
        .next(1),
    );
    let response = k3.request("Save", &customer("C1")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("应用程序中的服务器错误")
    );
    let (code, body) = send(fx_request(&fx, "/cgi/crm/v2/data/create", &account("甲")))
        .await
        .unwrap();
    assert_eq!(code, 502);
    assert!(
        body.contains("<center><h1>502 Bad Gateway</h1></center>"),
        "{body}"
    );
    assert!(sandbox.k3cloud_record("BD_Customer", "C1").is_none());
    assert!(sandbox.fxiaoke_records("AccountObj").is_empty());
    // Used up: the next calls go through.
    let (_, body) = send(k3.request("Save", &customer("C1"))).await.unwrap();
    assert!(body.contains("\"IsSuccess\":true"));
}

#[tokio::test]
async fn a_hang_ends_in_the_clients_timeout() {
    let sandbox = sandbox(1).await;
    let (k3, fx) = (K3::login(&sandbox).await, Fx::token(&sandbox).await);
    let _ = sandbox.set_fault(Fault::new(Api::K3cloud, "Save", FaultKind::Hang).next(1));
    let _ = sandbox
        .set_fault(Fault::new(Api::Fxiaoke, "/cgi/crm/v2/data/create", FaultKind::Hang).next(1));
    let timeout = Duration::from_millis(300);
    let err = send(k3.request("Save", &customer("C1")).timeout(timeout))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let err = send(fx_request(&fx, "/cgi/crm/v2/data/create", &account("甲")).timeout(timeout))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // A hang happens before the work.
    assert!(sandbox.k3cloud_record("BD_Customer", "C1").is_none());
    assert!(sandbox.fxiaoke_records("AccountObj").is_empty());
    assert_eq!(sandbox.calls("k3cloud:Save"), 1);
}

#[tokio::test]
async fn drop_after_write_applies_the_write_and_gives_no_answer() {
    let sandbox = sandbox(1).await;
    let (k3, fx) = (K3::login(&sandbox).await, Fx::token(&sandbox).await);
    let _ = sandbox.set_fault(Fault::new(Api::K3cloud, "Save", FaultKind::DropAfterWrite).next(1));
    let _ = sandbox.set_fault(
        Fault::new(
            Api::Fxiaoke,
            "/cgi/crm/v2/data/create",
            FaultKind::DropAfterWrite,
        )
        .next(1),
    );
    let err = send(k3.request("Save", &customer("C1"))).await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(
        sandbox.k3cloud_record("BD_Customer", "C1").is_some(),
        "the write happened"
    );
    let err = send(fx_request(&fx, "/cgi/crm/v2/data/create", &account("甲")))
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(
        sandbox.fxiaoke_records("AccountObj").len(),
        1,
        "the write happened"
    );

    // A naive client resends: K3Cloud refuses the duplicate number, Fxiaoke makes a twin.
    let (_, body) = send(k3.request("Save", &customer("C1"))).await.unwrap();
    assert!(body.contains("违反字段唯一性要求"), "{body}");
    let (_, body) = send(fx_request(&fx, "/cgi/crm/v2/data/create", &account("甲")))
        .await
        .unwrap();
    assert!(body.contains("\"errorCode\":0"));
    assert_eq!(sandbox.fxiaoke_records("AccountObj").len(), 2);
}

#[tokio::test]
async fn session_loss_and_token_invalidation() {
    let sandbox = sandbox(1).await;
    let (k3, fx) = (K3::login(&sandbox).await, Fx::token(&sandbox).await);
    let _ = sandbox
        .set_fault(Fault::new(Api::K3cloud, "ExecuteBillQuery", FaultKind::SessionLoss).next(1));
    let query = json!({"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}});
    let (_, body) = send(k3.request("ExecuteBillQuery", &query)).await.unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body[0][0]["Result"]["ResponseStatus"]["MsgCode"], 1,
        "{body}"
    );
    // The session is really gone: the next call too, until a new login.
    let again = k3
        .call("Save", Some("BD_Customer"), customer("C1")["data"].clone())
        .await;
    assert_eq!(status(&again)["MsgCode"], 1);
    let k3 = K3::login(&sandbox).await;
    assert_eq!(
        status(
            &k3.call("Save", Some("BD_Customer"), customer("C1")["data"].clone())
                .await
        )["IsSuccess"],
        true
    );

    let _ = sandbox.set_fault(
        Fault::new(
            Api::Fxiaoke,
            "/cgi/crm/v2/data/query",
            FaultKind::SessionLoss,
        )
        .next(1),
    );
    let q = json!({"data": {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 10, "offset": 0}}});
    for _ in 0..2 {
        let answer = fx.call("/cgi/crm/v2/data/query", q.clone()).await;
        assert_eq!(answer["errorCode"], 20016, "{answer}");
    }
    let fx = Fx::token(&sandbox).await;
    assert_eq!(
        fx.call("/cgi/crm/v2/data/query", q.clone()).await["errorCode"],
        0
    );
    // The same through the handle.
    sandbox.fxiaoke_invalidate_tokens();
    assert_eq!(
        fx.call("/cgi/crm/v2/data/query", q).await["errorCode"],
        20016
    );
}

#[tokio::test]
async fn malformed_and_truncated_json_after_the_work() {
    let sandbox = sandbox(1).await;
    let (k3, fx) = (K3::login(&sandbox).await, Fx::token(&sandbox).await);
    for kind in [FaultKind::MalformedJson, FaultKind::TruncatedJson] {
        let _ = sandbox.set_fault(Fault::new(Api::K3cloud, "Save", kind.clone()).next(1));
        let _ = sandbox
            .set_fault(Fault::new(Api::Fxiaoke, "/cgi/crm/v2/data/create", kind.clone()).next(1));
        let number = format!("C-{kind:?}");
        let (code, body) = send(k3.request("Save", &customer(&number))).await.unwrap();
        assert_eq!(code, 200);
        assert!(
            serde_json::from_str::<Value>(&body).is_err(),
            "{kind:?}: {body}"
        );
        assert!(
            body.contains("IsSuccess") || body.starts_with("{\"Result\""),
            "{body}"
        );
        assert!(sandbox.k3cloud_record("BD_Customer", &number).is_some());
        let (code, body) = send(fx_request(
            &fx,
            "/cgi/crm/v2/data/create",
            &account(&number),
        ))
        .await
        .unwrap();
        assert_eq!(code, 200);
        assert!(
            serde_json::from_str::<Value>(&body).is_err(),
            "{kind:?}: {body}"
        );
    }
    assert_eq!(sandbox.fxiaoke_records("AccountObj").len(), 2);
}

#[tokio::test]
async fn rate_limit_and_quota_faults() {
    let sandbox = sandbox(1).await;
    let (k3, fx) = (K3::login(&sandbox).await, Fx::token(&sandbox).await);
    let _ = sandbox.set_fault(Fault::new(Api::K3cloud, "Save", FaultKind::RateLimited).next(1));
    let _ = sandbox.set_fault(Fault::new(Api::K3cloud, "Save", FaultKind::QuotaExceeded).next(1));
    for _ in 0..2 {
        let answer = k3
            .call("Save", Some("BD_Customer"), customer("C1")["data"].clone())
            .await;
        assert_eq!(
            (
                status(&answer)["IsSuccess"].as_bool(),
                status(&answer)["MsgCode"].as_i64()
            ),
            (Some(false), Some(14)),
            "{answer}"
        );
    }
    assert!(sandbox.k3cloud_record("BD_Customer", "C1").is_none());
    let _ = sandbox.set_fault(Fault::any_endpoint(Api::Fxiaoke, FaultKind::RateLimited).next(1));
    let _ = sandbox.set_fault(Fault::any_endpoint(Api::Fxiaoke, FaultKind::QuotaExceeded).next(1));
    let first = fx.call("/cgi/crm/v2/data/create", account("甲")).await;
    let second = fx.call("/cgi/crm/v2/data/create", account("甲")).await;
    assert_eq!(
        (first["errorCode"].as_i64(), first["errorMessage"].as_str()),
        (Some(30004), Some("秒频次超限"))
    );
    assert_eq!(second["errorCode"], 30002);
    assert!(sandbox.fxiaoke_records("AccountObj").is_empty());
    assert_eq!(sandbox.calls("fxiaoke:/cgi/crm/v2/data/create"), 2);
}

/// The draw pattern of a 30 % fault over 40 queries.
async fn pattern(seed: u64) -> Vec<bool> {
    let sandbox = sandbox(seed).await;
    let fx = Fx::token(&sandbox).await;
    // Through the HTTP control API, as another language's test would.
    let added: Value = reqwest::Client::new()
        .post(format!("{}/__sandbox/faults", sandbox.base_url()))
        .json(&json!({"api": "fxiaoke", "endpoint": "/cgi/crm/v2/data/query",
                      "kind": {"type": "server_error", "status": 503}, "trigger": {"probability": 0.3}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(added["id"].is_u64());
    let q = json!({"data": {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 10, "offset": 0}}});
    let mut out = Vec::new();
    for _ in 0..40 {
        let (code, _) = send(fx_request(&fx, "/cgi/crm/v2/data/query", &q))
            .await
            .unwrap();
        out.push(code == 503);
    }
    out
}

#[tokio::test]
async fn probabilistic_faults_are_reproducible_from_the_seed() {
    let (a, b, c) = (pattern(42).await, pattern(42).await, pattern(43).await);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let hits = a.iter().filter(|x| **x).count();
    assert!((4..=20).contains(&hits), "{hits}");
}

/// What a client sees of one call.
#[derive(Debug, PartialEq)]
enum Seen {
    /// HTTP 200 and JSON with this vendor code (`K3Cloud` `MsgCode`, Fxiaoke `errorCode`).
    Code(i64),
    /// This HTTP status and an HTML page.
    Html(u16),
    /// HTTP 200 and a body that is not JSON.
    NotJson,
    /// The client's own timeout.
    Timeout,
    /// The connection closed without an answer.
    Dropped,
}

async fn seen(request: reqwest::RequestBuilder, k3cloud: bool) -> Seen {
    match send(request.timeout(Duration::from_millis(500))).await {
        Err(e) if e.is_timeout() => Seen::Timeout,
        Err(_) => Seen::Dropped,
        Ok((200, body)) => match serde_json::from_str::<Value>(&body) {
            Ok(v) if k3cloud => Seen::Code(status(&v)["MsgCode"].as_i64().unwrap()),
            Ok(v) => Seen::Code(v["errorCode"].as_i64().unwrap()),
            Err(_) => Seen::NotJson,
        },
        Ok((code, body)) => {
            assert!(body.to_ascii_lowercase().contains("<html"), "{body}");
            Seen::Html(code)
        }
    }
}

async fn control(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap())
}

#[tokio::test]
async fn every_fault_kind_set_through_the_control_api() {
    let sandbox = sandbox(3).await;
    let http = reqwest::Client::new();
    let faults = format!("{}/__sandbox/faults", sandbox.base_url());
    // (kind, what the K3Cloud client sees, what the Fxiaoke client sees, whether the write
    // happened) — the table of the README.
    let table = [
        (
            json!({"type": "latency", "ms": 120}),
            Seen::Code(0),
            Seen::Code(0),
            true,
        ),
        (
            json!({"type": "server_error", "status": 503}),
            Seen::Html(503),
            Seen::Html(503),
            false,
        ),
        (json!({"type": "hang"}), Seen::Timeout, Seen::Timeout, false),
        (
            json!({"type": "drop_after_write"}),
            Seen::Dropped,
            Seen::Dropped,
            true,
        ),
        (
            json!({"type": "session_loss"}),
            Seen::Code(1),
            Seen::Code(20016),
            false,
        ),
        (
            json!({"type": "malformed_json"}),
            Seen::NotJson,
            Seen::NotJson,
            true,
        ),
        (
            json!({"type": "truncated_json"}),
            Seen::NotJson,
            Seen::NotJson,
            true,
        ),
        (
            json!({"type": "rate_limited"}),
            Seen::Code(14),
            Seen::Code(30004),
            false,
        ),
        (
            json!({"type": "quota_exceeded"}),
            Seen::Code(14),
            Seen::Code(30002),
            false,
        ),
        (
            json!({"type": "server_error_after_write"}),
            Seen::Html(504),
            Seen::Html(504),
            true,
        ),
        (
            json!({"type": "without_key", "key": "Message"}),
            Seen::Code(0),
            Seen::Code(0),
            true,
        ),
        // A Save and a create answer objects, not rows: a row cap leaves them whole.
        (
            json!({"type": "row_cap", "rows": 0}),
            Seen::Code(0),
            Seen::Code(0),
            true,
        ),
    ];
    for (i, (kind, k3_sees, fx_sees, written)) in table.into_iter().enumerate() {
        // A token per row: past the token endpoint's ten a minute.
        sandbox.clock().advance(Duration::from_secs(7));
        let (k3, fx) = (K3::login(&sandbox).await, Fx::token(&sandbox).await);
        let name = format!("F{i}");
        for (api, endpoint) in [("k3cloud", "Save"), ("fxiaoke", "/cgi/crm/v2/data/create")] {
            let (code, answer) = control(
                &http,
                reqwest::Method::POST,
                faults.clone(),
                Some(
                    json!({"api": api, "endpoint": endpoint, "kind": kind, "trigger": {"next": 1}}),
                ),
            )
            .await;
            assert_eq!(code, 200, "{answer}");
            assert!(answer["id"].is_u64(), "{answer}");
        }
        let started = Instant::now();
        let k3_seen = seen(k3.request("Save", &customer(&name)), true).await;
        assert_eq!(k3_seen, k3_sees, "{kind}");
        if kind["type"] == "latency" {
            assert!(started.elapsed() >= Duration::from_millis(120));
        }
        let fx_seen = seen(
            fx_request(&fx, "/cgi/crm/v2/data/create", &account(&name)),
            false,
        )
        .await;
        assert_eq!(fx_seen, fx_sees, "{kind}");
        assert_eq!(
            sandbox.k3cloud_record("BD_Customer", &name).is_some(),
            written,
            "{kind}"
        );
        let in_crm = sandbox
            .fxiaoke_records("AccountObj")
            .iter()
            .any(|a| a["name"] == name.as_str());
        assert_eq!(in_crm, written, "{kind}");
        // `next: 1` is used up: the list is empty again.
        let (_, list) = control(&http, reqwest::Method::GET, faults.clone(), None).await;
        assert_eq!(list, json!([]), "{kind}");
    }
}

#[tokio::test]
async fn the_fault_control_api_lists_removes_and_clears() {
    let sandbox = sandbox(3).await;
    let http = reqwest::Client::new();
    let faults = format!("{}/__sandbox/faults", sandbox.base_url());
    let k3 = K3::login(&sandbox).await;

    // A body that is not a fault: 400 with the reason, nothing set.
    let (code, answer) = control(
        &http,
        reqwest::Method::POST,
        faults.clone(),
        Some(json!({"api": "k3cloud", "kind": {"type": "meteor_strike"}})),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("meteor_strike"),
        "{answer}"
    );

    let always = json!({"api": "k3cloud", "endpoint": "Save", "kind": {"type": "server_error", "status": 502}, "trigger": "always"});
    let sometimes = json!({"api": "fxiaoke", "endpoint": null, "kind": {"type": "latency", "ms": 5}, "trigger": {"probability": 0.5}});
    let (_, first) = control(
        &http,
        reqwest::Method::POST,
        faults.clone(),
        Some(always.clone()),
    )
    .await;
    let (_, second) = control(
        &http,
        reqwest::Method::POST,
        faults.clone(),
        Some(sometimes.clone()),
    )
    .await;
    let (first, second) = (
        first["id"].as_u64().unwrap(),
        second["id"].as_u64().unwrap(),
    );
    let (_, list) = control(&http, reqwest::Method::GET, faults.clone(), None).await;
    assert_eq!(
        list,
        json!([{"id": first, "fault": always}, {"id": second, "fault": sometimes}])
    );

    // "always" keeps firing; the call counters count the refused calls too.
    for _ in 0..2 {
        assert_eq!(
            seen(k3.request("Save", &customer("C9")), true).await,
            Seen::Html(502)
        );
    }
    let (_, calls) = control(
        &http,
        reqwest::Method::GET,
        format!(
            "{}/__sandbox/calls?endpoint=k3cloud:Save",
            sandbox.base_url()
        ),
        None,
    )
    .await;
    assert_eq!(calls, json!({"endpoint": "k3cloud:Save", "calls": 2}));

    // Removed by id (once: a second time is 404), then the Save goes through.
    let (code, _) = control(
        &http,
        reqwest::Method::DELETE,
        format!("{faults}/{first}"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = control(
        &http,
        reqwest::Method::DELETE,
        format!("{faults}/{first}"),
        None,
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        seen(k3.request("Save", &customer("C9")), true).await,
        Seen::Code(0)
    );

    // Cleared all at once.
    let (code, _) = control(&http, reqwest::Method::DELETE, faults.clone(), None).await;
    assert_eq!(code, 200);
    let (_, list) = control(&http, reqwest::Method::GET, faults.clone(), None).await;
    assert_eq!(list, json!([]));
    assert!(sandbox.faults().is_empty());
}

/// A latency on every call no longer hides the other faults: the Save is late AND answers its
/// 502, the Fxiaoke create is late AND applied-then-dropped. Both set over the control API.
#[tokio::test]
async fn latency_composes_with_the_other_faults() {
    let sandbox = sandbox(1).await;
    let (k3, fx) = (K3::login(&sandbox).await, Fx::token(&sandbox).await);
    let http = reqwest::Client::new();
    let faults = format!("{}/__sandbox/faults", sandbox.base_url());
    for fault in [
        json!({"api": null, "endpoint": "*", "kind": {"type": "latency", "ms": 120}}),
        json!({"api": "k3cloud", "endpoint": "Save", "kind": {"type": "server_error", "status": 502}, "trigger": {"next": 1}}),
        json!({"api": "fxiaoke", "endpoint": "/cgi/crm/v2/data/create", "kind": {"type": "drop_after_write"}, "trigger": {"next": 1}}),
    ] {
        let (code, answer) =
            control(&http, reqwest::Method::POST, faults.clone(), Some(fault)).await;
        assert_eq!(code, 200, "{answer}");
    }

    let started = Instant::now();
    let (code, body) = send(k3.request("Save", &customer("C1"))).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(120));
    assert_eq!(code, 502, "{body}");
    assert!(
        sandbox.k3cloud_record("BD_Customer", "C1").is_none(),
        "nothing written"
    );

    let started = Instant::now();
    let err = send(fx_request(&fx, "/cgi/crm/v2/data/create", &account("乙")))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(120));
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(
        sandbox.fxiaoke_records("AccountObj").len(),
        1,
        "the write happened"
    );

    // The one-shot faults are spent; the latency stays and the next Save succeeds, late.
    let started = Instant::now();
    let (code, body) = send(k3.request("Save", &customer("C1"))).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(120));
    assert_eq!(code, 200);
    assert!(body.contains("\"IsSuccess\":true"), "{body}");
    assert_eq!(sandbox.calls("k3cloud:Save"), 2);
    assert_eq!(sandbox.faults().len(), 1);
}

#[tokio::test]
async fn applied_late_times_the_client_out_then_applies_the_write() {
    let sandbox = sandbox(1).await;
    let k3 = K3::login(&sandbox).await;
    let _ = sandbox
        .set_fault(Fault::new(Api::K3cloud, "Save", FaultKind::AppliedLate { ms: 900 }).next(1));
    // The client gives up at 500 ms: nothing is there yet.
    assert_eq!(
        seen(k3.request("Save", &customer("LATE1")), true).await,
        Seen::Timeout
    );
    assert!(sandbox.k3cloud_record("BD_Customer", "LATE1").is_none());
    // The server was still running it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sandbox.k3cloud_record("BD_Customer", "LATE1").is_none() {
        assert!(Instant::now() < deadline, "the late write never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sandbox.calls("k3cloud:Save"), 1);
}

#[tokio::test]
async fn a_batch_save_answer_without_dindex_and_a_query_under_a_row_cap() {
    let sandbox = sandbox(1).await;
    let k3 = K3::login(&sandbox).await;
    let _ = sandbox.set_fault(Fault::new(
        Api::K3cloud,
        "BatchSave",
        FaultKind::WithoutKey {
            key: "DIndex".into(),
        },
    ));
    // The second row repeats a number: one row saved, one refused.
    let batch = json!({"formid": "BD_Customer", "data": {"Model": [
        {"FNumber": "B1", "FName": "B1", "FCreateOrgId": {"FNumber": "100"}},
        {"FNumber": "CUST0001", "FName": "dup", "FCreateOrgId": {"FNumber": "100"}}]}});
    let (_, body) = send(k3.request("BatchSave", &batch)).await.unwrap();
    assert!(!body.contains("DIndex"), "{body}");
    assert!(body.contains("违反字段唯一性要求"), "{body}");
    assert!(sandbox.k3cloud_record("BD_Customer", "B1").is_some());

    let _ = sandbox.set_fault(Fault::new(
        Api::K3cloud,
        "ExecuteBillQuery",
        FaultKind::RowCap { rows: 1 },
    ));
    let query = json!({"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber",
                                "OrderString": "FNumber ASC", "Limit": 2000}});
    let (_, body) = send(k3.request("ExecuteBillQuery", &query)).await.unwrap();
    assert_eq!(body, r#"[["B1"]]"#);
}
