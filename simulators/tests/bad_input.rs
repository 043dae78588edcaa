//! Bad input gets the vendor's error answer: never a panic, a dropped connection or a hang.

mod common;

use std::time::Duration;

use common::{Fx, K3};
use fxk3_simulators::{Clock, FxiaokeConfig, Sandbox};
use serde_json::{Value, json};

const PATHS: &[&str] = &[
    "/cgi/corpAccessToken/get/V2",
    "/oauth2.0/token",
    "/cgi/user/getByMobile",
    "/cgi/user/get",
    "/cgi/user/list",
    "/cgi/user/simpleList",
    "/cgi/user/get/batchByUpdTime",
    "/cgi/department/list",
    "/cgi/department/detail",
    "/cgi/crm/v2/object/list",
    "/cgi/crm/v2/object/describe",
    "/cgi/crm/v2/data/query",
    "/cgi/crm/v2/data/get",
    "/cgi/crm/v2/data/create",
    "/cgi/crm/v2/data/update",
    "/cgi/crm/v2/data/invalid",
    "/cgi/crm/v2/data/delete",
    "/cgi/crm/v2/data/recover",
    "/cgi/crm/v2/data/changeOwner",
    "/cgi/crm/custom/v2/data/findOne",
    "/cgi/crm/custom/v2/data/findSimple",
    "/cgi/crm/custom/data/invalid",
    "/cgi/crm/data/query",
    "/cgi/crm/data/get",
    "/cgi/message/send",
];

/// Odd `data` payloads: wrong types, missing parts, hostile values.
fn payloads() -> Vec<Value> {
    vec![
        Value::Null,
        json!(1),
        json!("data"),
        json!([]),
        json!({}),
        json!({"dataObjectApiName": 5}),
        json!({"dataObjectApiName": "AccountObj", "search_query_info": {"limit": -1, "offset": "x"}}),
        json!({"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 0}}),
        json!({"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 10, "offset": 0,
            "filters": [1, {"field_name": 1}, {"field_name": "_id", "operator": "GT", "field_values": {"a": 1}}],
            "orders": [{}, {"fieldName": "name", "isAsc": "no"}]}}),
        json!({"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 10, "offset": 0,
            "filters": [{"field_name": "_id", "operator": "LT", "field_values": [""]},
                        {"field_name": "_id", "operator": "GT", "field_values": ["z"]}]}}),
        json!({"object_data": [], "details": 3}),
        json!({"object_data": {"dataObjectApiName": "SalesOrderObj", "account_id": {"x": 1}, "owner": "FSUID_X"},
               "details": {"SalesOrderProductObj": {"product_id": null}, "AccountObj": []}}),
        json!({"object_data": {"dataObjectApiName": "AccountObj", "_id": ["a"], "name": {"deep": [[[]]]}}}),
        json!({"dataObjectApiName": "AccountObj", "idList": [null, 1, {}], "object_data_id": 7}),
        json!({"dataObjectApiName": "AccountObj", "Data": [{"objectDataId": 1, "ownerId": 2}, 3]}),
        json!({"dataObjectApiName": "object_Hk2p1__c", "search_query_info": null}),
        json!({"apiName": ["AccountObj"]}),
    ]
}

#[tokio::test]
async fn fxiaoke_answers_every_odd_request_with_an_error_code() {
    let sandbox = Sandbox::builder()
        .clock(Clock::frozen_at_secs(1_700_000_000))
        .fxiaoke(FxiaokeConfig {
            rate_limit: None,
            ..FxiaokeConfig::default()
        })
        .start()
        .await
        .unwrap();
    let fx = Fx::token(&sandbox).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut raw_bodies: Vec<String> = vec![
        String::new(),
        "{".into(),
        "not json".into(),
        "[1,2]".into(),
        "\"s\"".into(),
        "{\"corpAccessToken\": 1, \"corpId\": [], \"currentOpenUserId\": {}}".into(),
    ];
    for data in payloads() {
        raw_bodies.push(fx.auth(json!({"data": data.clone(), "apiName": data.clone(), "toUser": data.clone(),
                                       "msgType": "text", "text": data.clone(), "searchQuery": data.clone(),
                                       "dataId": data.clone(), "mobile": data.clone(), "departmentId": data.clone(),
                                       "openUserId": data.clone(), "pageSize": data.clone(), "pageNumber": data,
                                       "appId": "FSAID_1000001"})).to_string());
    }
    for path in PATHS {
        for body in &raw_bodies {
            let response = http
                .post(format!("{}{path}", sandbox.fxiaoke_url()))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path} {body}: {e}"));
            assert_eq!(response.status(), 200, "{path} {body}");
            let answer: Value = response.json().await.unwrap();
            assert!(answer["errorCode"].is_i64(), "{path} {body}: {answer}");
        }
    }
    // Headers that are not what they should be.
    let answer: Value = http
        .post(format!("{}/cgi/crm/v2/data/query", sandbox.fxiaoke_url()))
        .header("authorization", "Bearer")
        .header("x-fs-userid", "\u{1F600}".as_bytes())
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["errorCode"], 20016);
}

#[tokio::test]
async fn k3cloud_answers_every_odd_request_in_its_envelope() {
    let sandbox = Sandbox::builder()
        .clock(Clock::frozen_at_secs(1_700_000_000))
        .start()
        .await
        .unwrap();
    let k3 = K3::login(&sandbox).await;
    let methods = [
        "Save",
        "BatchSave",
        "Draft",
        "View",
        "Delete",
        "Submit",
        "Audit",
        "UnAudit",
        "Push",
        "ExecuteBillQuery",
        "BillQuery",
        "QueryBusinessInfo",
        "ExcuteOperation",
        "SwitchOrg",
        "AttachmentUpload",
        "AttachmentDownLoad",
        "QueryAsyncResult",
        "NoSuchMethod",
    ];
    let forms = [
        Value::Null,
        json!("BD_Customer"),
        json!("SAL_SaleOrder"),
        json!(7),
        json!("NOPE"),
    ];
    for method in methods {
        for form in &forms {
            for data in payloads().into_iter().chain([
                json!({"Model": {"FCustId": [], "FSaleOrderEntry": "x"}}),
                json!({"Model": [{"FNumber": null}], "NeedUpDateFields": 5}),
                json!({"FormId": "BD_Customer", "FieldKeys": "FNumber,", "FilterString": "FNumber = '", "StartRow": -5, "Limit": "x"}),
                json!({"FormId": "BD_Customer", "FieldKeys": "FNumber", "FilterString": [{"FieldName": 1}], "OrderString": "FNumber sideways"}),
                json!({"FormId": "SAL_SaleOrder", "FieldKeys": "FBillNo", "FilterString": "((((FBillNo", "TopRowCount": 1e300}),
                // A year that overflowed the date key arithmetic (a panic) before it was refused.
                json!({"FormId": "BD_Customer", "FieldKeys": "FNumber", "FilterString": "FModifyDate >= '9999999999-01-01'"}),
                json!({"Numbers": {"a": 1}, "Ids": [[]]}),
            ]) {
                let body = json!({"formid": form, "data": data, "opNumber": "Forbid"});
                let response = k3
                    .request(method, &body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{method} {body}: {e}"));
                let status = response.status().as_u16();
                let text = response.text().await.unwrap();
                assert!(status == 200 || (status == 404 && method == "NoSuchMethod"), "{method} {body}: {status} {text}");
                if status == 200 {
                    let parsed: Result<Value, _> = serde_json::from_str(&text);
                    assert!(parsed.is_ok() || text.starts_with("response_error:"), "{method} {body}: {text}");
                }
            }
        }
    }
}
