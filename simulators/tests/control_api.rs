//! The control API over HTTP, as a test in another language would drive it: seeding, reading
//! and inserting ERP records, dropping sessions, pinning and invalidating tokens.

mod common;

use common::{Fx, K3, status};
use fxk3_simulators::Sandbox;
use serde_json::{Value, json};

async fn control(
    sandbox: &Sandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().request(method, format!("{}/__sandbox{path}", sandbox.base_url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap())
}

#[tokio::test]
async fn seed_generates_records_in_both_systems_and_refuses_an_empty_body() {
    let sandbox = Sandbox::start().await.unwrap();
    let (code, _) = control(&sandbox, reqwest::Method::POST, "/seed", Some(json!({}))).await;
    assert_eq!(code, 400);
    let customers_before = control(
        &sandbox,
        reqwest::Method::GET,
        "/k3cloud/forms/BD_Customer",
        None,
    )
    .await
    .1;
    let (code, answer) = control(
        &sandbox,
        reqwest::Method::POST,
        "/seed",
        Some(json!({"generate": {"crm_accounts": 3, "erp_customers": 2}})),
    )
    .await;
    assert_eq!((code, answer), (200, json!({"ok": true})));
    let objects = control(&sandbox, reqwest::Method::GET, "/fxiaoke/objects", None)
        .await
        .1;
    assert_eq!(objects["AccountObj"], 3, "{objects}");
    let customers = control(
        &sandbox,
        reqwest::Method::GET,
        "/k3cloud/forms/BD_Customer",
        None,
    )
    .await
    .1;
    assert_eq!(
        customers.as_array().unwrap().len(),
        customers_before.as_array().unwrap().len() + 2
    );
}

#[tokio::test]
async fn erp_records_are_inserted_and_read_by_number_or_id() {
    let sandbox = Sandbox::start().await.unwrap();
    let model = json!({"FNumber": "CTL001", "FName": "控制台客户",
                       "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"}});
    let (code, created) = control(
        &sandbox,
        reqwest::Method::POST,
        "/k3cloud/forms/BD_Customer",
        Some(model),
    )
    .await;
    assert_eq!(code, 200, "{created}");
    assert_eq!(created["Number"], "CTL001");
    let id = created["Id"].as_i64().unwrap();
    let (code, by_number) = control(
        &sandbox,
        reqwest::Method::GET,
        "/k3cloud/forms/BD_Customer/CTL001",
        None,
    )
    .await;
    assert_eq!(code, 200);
    let (_, by_id) = control(
        &sandbox,
        reqwest::Method::GET,
        &format!("/k3cloud/forms/BD_Customer/{id}"),
        None,
    )
    .await;
    assert_eq!(by_number, by_id);
    assert!(by_number.to_string().contains("控制台客户"), "{by_number}");
    let (code, _) = control(
        &sandbox,
        reqwest::Method::GET,
        "/k3cloud/forms/BD_Customer/NOPE",
        None,
    )
    .await;
    assert_eq!(code, 404);
    let (code, refused) = control(
        &sandbox,
        reqwest::Method::POST,
        "/k3cloud/forms/BD_Customer",
        Some(json!([1])),
    )
    .await;
    assert_eq!(code, 400, "{refused}");
}

#[tokio::test]
async fn expired_sessions_answer_session_lost() {
    let sandbox = Sandbox::start().await.unwrap();
    let k3 = K3::login(&sandbox).await;
    let query = json!({"FormId": "BD_Customer", "FieldKeys": "FNumber"});
    let rows = k3.call("ExecuteBillQuery", None, query.clone()).await;
    assert!(rows.is_array(), "{rows}");
    let (code, _) = control(
        &sandbox,
        reqwest::Method::POST,
        "/k3cloud/sessions/expire",
        None,
    )
    .await;
    assert_eq!(code, 200);
    let lost = k3.call("ExecuteBillQuery", None, query).await;
    let lost = &lost[0][0];
    assert_eq!(status(lost)["MsgCode"], 1, "{lost}");
}

#[tokio::test]
async fn a_pinned_token_is_served_and_invalidated_tokens_answer_20016() {
    let sandbox = Sandbox::start().await.unwrap();
    let (code, _) = control(
        &sandbox,
        reqwest::Method::POST,
        "/fxiaoke/tokens",
        Some(json!({"token": "PINNED0123456789"})),
    )
    .await;
    assert_eq!(code, 200);
    let fx = Fx::token(&sandbox).await;
    assert_eq!(fx.token, "PINNED0123456789");
    let users = fx
        .call("/cgi/user/list", json!({"departmentId": 999_999}))
        .await;
    assert_eq!(users["errorCode"], 0, "{users}");
    let (code, _) = control(
        &sandbox,
        reqwest::Method::POST,
        "/fxiaoke/tokens/invalidate",
        None,
    )
    .await;
    assert_eq!(code, 200);
    let refused = fx
        .call("/cgi/user/list", json!({"departmentId": 999_999}))
        .await;
    assert_eq!(refused["errorCode"], 20016, "{refused}");
}
