//! Stateful Fxiaoke scenarios over HTTP: the token rules on a controlled clock, the CRM
//! record life cycle, paging limits, rate limits and quotas, auth styles, messages.

mod common;

use std::time::Duration;

use common::{ADMIN, Fx, LISI};
use fxk3_simulators::{Clock, Config, FxiaokeConfig, Sandbox};
use serde_json::{Value, json};

const T0: i64 = 1_700_000_000;

async fn sandbox() -> Sandbox {
    Sandbox::builder()
        .clock(Clock::frozen_at_secs(T0))
        .start()
        .await
        .unwrap()
}

async fn unlimited() -> Sandbox {
    Sandbox::builder()
        .clock(Clock::frozen_at_secs(T0))
        .fxiaoke(FxiaokeConfig {
            rate_limit: None,
            ..FxiaokeConfig::default()
        })
        .start()
        .await
        .unwrap()
}

async fn token_answer(sandbox: &Sandbox) -> Value {
    let app = &sandbox.config().fxiaoke.apps[0];
    reqwest::Client::new()
        .post(format!("{}/cgi/corpAccessToken/get/V2", sandbox.fxiaoke_url()))
        .json(&json!({"appId": app.app_id, "appSecret": app.app_secret, "permanentCode": app.permanent_code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn code(answer: &Value) -> i64 {
    answer["errorCode"].as_i64().unwrap()
}

async fn query_with(fx: &Fx, token: &str) -> Value {
    let mut body = fx.auth(json!({"data": {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 10, "offset": 0}}}));
    body["corpAccessToken"] = json!(token);
    fx.raw("/cgi/crm/v2/data/query", &body).await
}

#[tokio::test]
async fn token_reuse_window_overlap_and_expiry() {
    let sandbox = sandbox().await;
    let fx = Fx::token(&sandbox).await;
    let first = fx.token.clone();
    let clock = sandbox.clock();

    clock.advance(Duration::from_secs(6_599));
    let again = token_answer(&sandbox).await;
    assert_eq!(again["corpAccessToken"], first.as_str());
    assert_eq!(again["expiresIn"], 601);

    clock.advance(Duration::from_secs(1));
    let renewed = token_answer(&sandbox).await;
    let second = renewed["corpAccessToken"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(renewed["expiresIn"], 7200);
    // Both work until the first one's 7,200 s.
    clock.advance(Duration::from_secs(599));
    assert_eq!(code(&query_with(&fx, &first).await), 0);
    assert_eq!(code(&query_with(&fx, &second).await), 0);
    clock.advance(Duration::from_secs(1));
    let expired = query_with(&fx, &first).await;
    assert_eq!(code(&expired), 20016);
    assert_eq!(
        expired["errorMessage"],
        "the cropId,cropAccessToken or authorization is error"
    );
    assert_eq!(code(&query_with(&fx, &second).await), 0);
    // Later fetches reuse the second token, with what is left of it.
    let reused = token_answer(&sandbox).await;
    assert_eq!(
        (
            reused["corpAccessToken"].as_str(),
            reused["expiresIn"].as_i64()
        ),
        (Some(second.as_str()), Some(6600))
    );
}

#[tokio::test]
async fn token_endpoint_allows_ten_calls_a_minute_and_concurrent_calls() {
    let sandbox = sandbox().await;
    let answers = futures_join(&sandbox, 10).await;
    let first = answers[0]["corpAccessToken"].clone();
    assert!(
        answers.iter().all(|a| a["corpAccessToken"] == first),
        "{answers:?}"
    );
    let eleventh = token_answer(&sandbox).await;
    assert_eq!(code(&eleventh), 30004, "{eleventh}");
    sandbox.clock().advance(Duration::from_secs(60));
    assert_eq!(token_answer(&sandbox).await["corpAccessToken"], first);
    assert_eq!(sandbox.calls("fxiaoke:/cgi/corpAccessToken/get/V2"), 12);
}

async fn futures_join(sandbox: &Sandbox, n: usize) -> Vec<Value> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let app = sandbox.config().fxiaoke.apps[0].clone();
        let url = format!("{}/cgi/corpAccessToken/get/V2", sandbox.fxiaoke_url());
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"appId": app.app_id, "appSecret": app.app_secret, "permanentCode": app.permanent_code}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn auth_errors_have_the_vendors_codes() {
    let sandbox = sandbox().await;
    let fx = Fx::token(&sandbox).await;
    let query = json!({"data": {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 10, "offset": 0}}});
    let none = fx.raw("/cgi/crm/v2/data/query", &query).await;
    assert_eq!(
        (code(&none), none["errorMessage"].as_str()),
        (20017, Some("corpAccessToken为必填项，不能为空"))
    );
    let mut wrong_corp = fx.auth(query.clone());
    wrong_corp["corpId"] = json!("FSCID_OTHER");
    assert_eq!(
        code(&fx.raw("/cgi/crm/v2/data/query", &wrong_corp).await),
        20016
    );
    let mut no_user = fx.auth(query.clone());
    no_user.as_object_mut().unwrap().remove("currentOpenUserId");
    assert_eq!(
        code(&fx.raw("/cgi/crm/v2/data/query", &no_user).await),
        10010
    );
    let mut stranger = fx.auth(query.clone());
    stranger["currentOpenUserId"] = json!("FSUID_NOBODY");
    assert_eq!(
        code(&fx.raw("/cgi/crm/v2/data/query", &stranger).await),
        20012
    );
    // The directory needs no operator.
    let users = fx.raw("/cgi/user/simpleList", &json!({"corpAccessToken": fx.token, "corpId": fx.corp_id, "departmentId": 999_999, "fetchChild": true})).await;
    assert_eq!(users["userList"].as_array().unwrap().len(), 8);

    let unknown = fx.call("/cgi/crm/v2/data/nope", query.clone()).await;
    assert_eq!(
        unknown["errorMessage"],
        "the request uri=[/cgi/crm/v2/data/nope], apiName=[null] is not exists"
    );
    let text = reqwest::Client::new()
        .post(format!("{}/cgi/crm/v2/data/query", sandbox.fxiaoke_url()))
        .body("{\"data\": ")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(code(&serde_json::from_str(&text).unwrap()), 15002, "{text}");
    let bad_secret = fx
        .raw(
            "/cgi/corpAccessToken/get/V2",
            &json!({"appId": "FSAID_1000001", "appSecret": "x", "permanentCode": "y"}),
        )
        .await;
    assert_eq!(
        bad_secret["errorMessage"],
        "the parameter appSecret is missing or illegal"
    );
}

#[tokio::test]
async fn new_style_header_auth() {
    let sandbox = sandbox().await;
    let app = sandbox.config().fxiaoke.apps[0].clone();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/oauth2.0/token?thirdTraceId=1", sandbox.fxiaoke_url()))
        .json(&json!({"appId": app.app_id, "appSecret": app.app_secret, "permanentCode": app.permanent_code, "grantType": "app_secret"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (token["ea"].as_str(), token["openUserId"].as_str()),
        (Some(app.ea.as_str()), Some(app.corp_id.as_str()))
    );
    let bearer = format!("Bearer {}", token["accessToken"].as_str().unwrap());
    let create = |ea: &str| {
        http.post(format!("{}/cgi/crm/v2/data/create", sandbox.fxiaoke_url()))
            .header("authorization", &bearer)
            .header("x-fs-ea", ea)
            .header("x-fs-userid", "1001")
            .json(&json!({"data": {"object_data": {"dataObjectApiName": "AccountObj", "name": "新客户"}}}))
            .send()
    };
    let ok: Value = create(&app.ea).await.unwrap().json().await.unwrap();
    assert_eq!(code(&ok), 0, "{ok}");
    let record = sandbox
        .fxiaoke_record("AccountObj", ok["dataId"].as_str().unwrap())
        .unwrap();
    // Employee 1001 is 李四; the sandbox stores people as openUserIds in both auth styles.
    assert_eq!(record["owner"], json!([LISI]));
    let wrong: Value = create("other").await.unwrap().json().await.unwrap();
    assert_eq!(code(&wrong), 20016);
}

#[tokio::test]
async fn crm_record_life_cycle() {
    let sandbox = sandbox().await;
    let fx = Fx::token(&sandbox).await;
    let clock = sandbox.clock();
    let created = fx
        .create("AccountObj", json!({"name": "上海示例科技有限公司", "account_no": "KH-1", "account_level": "2", "owner": [ADMIN]}), None)
        .await;
    assert_eq!(code(&created), 0, "{created}");
    let account = created["dataId"].as_str().unwrap().to_string();
    let get = fx
        .call(
            "/cgi/crm/v2/data/get",
            json!({"data": {"dataObjectApiName": "AccountObj", "objectDataId": account}}),
        )
        .await;
    let record = &get["data"];
    assert_eq!(record["_id"], account.as_str());
    assert_eq!(record["create_time"], T0 * 1000);
    assert_eq!(
        (
            record["life_status"].as_str(),
            record["is_deleted"].as_bool(),
            record["version"].as_str()
        ),
        (Some("normal"), Some(false), Some("1"))
    );
    assert_eq!(record["owner_department"], "销售部");

    clock.advance(Duration::from_secs(60));
    let updated = fx
        .call("/cgi/crm/v2/data/update", json!({"data": {"object_data": {"dataObjectApiName": "AccountObj", "_id": account, "tel": "021-1"}}}))
        .await;
    assert_eq!(code(&updated), 0, "{updated}");
    let record = sandbox.fxiaoke_record("AccountObj", &account).unwrap();
    assert_eq!(
        (record["tel"].as_str(), record["version"].as_str()),
        (Some("021-1"), Some("2"))
    );
    assert_eq!(record["last_modified_time"], (T0 + 60) * 1000);

    // An incremental read by modification time sees the change.
    let window = fx
        .query("AccountObj", json!({"limit": 100, "offset": 0,
            "filters": [{"field_name": "last_modified_time", "operator": "GTE", "field_values": [(T0 + 30) * 1000]}],
            "orders": [{"fieldName": "last_modified_time", "isAsc": true}]}))
        .await;
    assert_eq!(window["data"]["total"], 1);

    // An order with lines; a product must exist.
    let product = fx
        .create(
            "ProductObj",
            json!({"name": "球阀 DN50", "product_code": "MAT0001", "price": "180.00"}),
            None,
        )
        .await;
    let product = product["dataId"].as_str().unwrap().to_string();
    let order = fx
        .create(
            "SalesOrderObj",
            json!({"account_id": account, "order_time": T0 * 1000}),
            Some(json!({"SalesOrderProductObj": [{"product_id": product, "quantity": "2", "sales_price": "170.00"},
                                                 {"product_id": product, "quantity": 1, "sales_price": 180}]})),
        )
        .await;
    assert_eq!(code(&order), 0, "{order}");
    let order = order["dataId"].as_str().unwrap().to_string();
    assert_eq!(
        sandbox.fxiaoke_record("SalesOrderObj", &order).unwrap()["name"],
        "20231115-001"
    );
    let lines = fx
        .query(
            "SalesOrderProductObj",
            json!({"limit": 10, "offset": 0,
            "filters": [{"field_name": "order_id", "operator": "EQ", "field_values": [order]}]}),
        )
        .await;
    assert_eq!(lines["data"]["total"], 2, "{lines}");

    // A line whose product does not exist fails the whole create.
    let bad = fx
        .create(
            "SalesOrderObj",
            json!({"account_id": account}),
            Some(json!({"SalesOrderProductObj": [{"product_id": "nope", "quantity": "1"}]})),
        )
        .await;
    assert_eq!(code(&bad), -1);
    assert!(
        bad["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("的字段[产品名称]关联关系不存在-201112011"),
        "{bad}"
    );
    assert_eq!(sandbox.fxiaoke_objects()["SalesOrderObj"], 1);

    // Invalid: gone from lists (lines too), readable by id; recover brings it back.
    let invalid = fx
        .call(
            "/cgi/crm/v2/data/invalid",
            json!({"data": {"dataObjectApiName": "SalesOrderObj", "object_data_id": order}}),
        )
        .await;
    assert_eq!(code(&invalid), 0, "{invalid}");
    let listed = fx
        .query("SalesOrderObj", json!({"limit": 10, "offset": 0}))
        .await;
    assert_eq!(listed["data"]["total"], 0);
    let bin = fx.query("SalesOrderObj", json!({"limit": 10, "offset": 0, "filters": [{"field_name": "life_status", "operator": "EQ", "field_values": ["invalid"]}]})).await;
    assert_eq!(bin["data"]["total"], 1);
    let delete_normal = fx
        .call(
            "/cgi/crm/v2/data/delete",
            json!({"data": {"dataObjectApiName": "AccountObj", "idList": [account]}}),
        )
        .await;
    assert_eq!(code(&delete_normal), -1);
    assert!(
        delete_normal["errorMessage"]
            .as_str()
            .unwrap()
            .contains("删除之前请先作废数据")
    );
    let recover = fx
        .call(
            "/cgi/crm/v2/data/recover",
            json!({"data": {"dataObjectApiName": "SalesOrderObj", "idList": [order]}}),
        )
        .await;
    assert_eq!(code(&recover), 0);
    assert!(
        sandbox
            .fxiaoke_records("SalesOrderProductObj")
            .iter()
            .all(|l| l["life_status"] == "normal")
    );

    // Change owner, then invalid + delete.
    let owner = fx.call("/cgi/crm/v2/data/changeOwner", json!({"data": {"dataObjectApiName": "AccountObj", "Data": [{"objectDataId": account, "ownerId": [LISI]}]}})).await;
    assert_eq!(code(&owner), 0, "{owner}");
    let record = sandbox.fxiaoke_record("AccountObj", &account).unwrap();
    assert_eq!(
        (record["owner"].clone(), record["owner_department"].as_str()),
        (json!([LISI]), Some("华东销售组"))
    );
    for path in ["/cgi/crm/v2/data/invalid", "/cgi/crm/v2/data/delete"] {
        let answer = fx.call(path, json!({"data": {"dataObjectApiName": "SalesOrderObj", "object_data_id": order, "idList": [order]}})).await;
        assert_eq!(code(&answer), 0, "{path}: {answer}");
    }
    assert!(sandbox.fxiaoke_records("SalesOrderProductObj").is_empty());
    let gone = fx
        .call(
            "/cgi/crm/v2/data/get",
            json!({"data": {"dataObjectApiName": "SalesOrderObj", "objectDataId": order}}),
        )
        .await;
    assert_eq!(code(&gone), -1);
}

#[tokio::test]
async fn custom_objects_and_paths() {
    let sandbox = sandbox().await;
    let fx = Fx::token(&sandbox).await;
    let on_preset = fx
        .call("/cgi/crm/v2/data/create", json!({"data": {"object_data": {"dataObjectApiName": "object_Hk2p1__c", "name": "计划"}}}))
        .await;
    assert_eq!(code(&on_preset), 15002, "{on_preset}");
    assert_eq!(
        code(
            &fx.create(
                "object_Hk2p1__c",
                json!({"name": "计划", "amount__c": "1.5"}),
                None
            )
            .await
        ),
        0
    );
    // Preset objects are served on the custom path too (as crm-cli uses it).
    let preset_on_custom = fx
        .call("/cgi/crm/custom/v2/data/query", json!({"data": {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 1, "offset": 0}}}))
        .await;
    assert_eq!(code(&preset_on_custom), 0);
    // A tenant's own object, defined through the handle.
    sandbox
        .fxiaoke_define_object(&json!({"api_name": "object_visit__c", "display_name": "拜访记录",
            "fields": {"result__c": {"label": "结果", "type": "select_one", "options": [{"label": "成功", "value": "ok"}]}}}))
        .unwrap();
    assert_eq!(
        code(
            &fx.create(
                "object_visit__c",
                json!({"name": "拜访", "result__c": "ok"}),
                None
            )
            .await
        ),
        0
    );
    let bad = fx
        .create(
            "object_visit__c",
            json!({"name": "拜访", "result__c": "maybe"}),
            None,
        )
        .await;
    assert!(
        bad["errorMessage"]
            .as_str()
            .unwrap()
            .contains("选项值[maybe]不存在"),
        "{bad}"
    );
    let list = fx.call("/cgi/crm/v2/object/list", json!({})).await;
    assert!(
        list["data"]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["describeApiName"] == "object_visit__c" && o["defineType"] == "custom")
    );
    let describe = fx
        .call(
            "/cgi/crm/v2/object/describe",
            json!({"apiName": "SalesOrderObj", "includeDetail": true}),
        )
        .await;
    assert_eq!(
        describe["data"]["describe"]["fields"]["account_id"]["target_api_name"],
        "AccountObj"
    );
    let unknown = fx
        .call(
            "/cgi/crm/v2/object/describe",
            json!({"data": {"apiName": "NopeObj"}}),
        )
        .await;
    assert_eq!(code(&unknown), -1);
}

#[tokio::test]
async fn offset_ten_thousand_is_the_last_page_and_keyset_paging_goes_on() {
    let sandbox = unlimited().await;
    for i in 0..10_050 {
        sandbox
            .fxiaoke_insert("AccountObj", json!({"name": format!("客户{i:05}")}))
            .unwrap();
    }
    let fx = Fx::token(&sandbox).await;
    let page = |offset: usize, limit: usize| {
        fx.query("AccountObj", json!({"limit": limit, "offset": offset, "orders": [{"fieldName": "name", "isAsc": true}]}))
    };
    let last = page(10_000, 100).await;
    assert_eq!(code(&last), 0);
    assert_eq!(last["data"]["total"], 10_050);
    assert_eq!(last["data"]["dataList"].as_array().unwrap().len(), 50);
    assert_eq!(last["data"]["dataList"][0]["name"], "客户10000");
    let beyond = page(10_100, 100).await;
    assert_eq!(
        (code(&beyond), beyond["errorMessage"].as_str()),
        (10013, Some("offset out of range 10000"))
    );
    assert_eq!(code(&page(150, 100).await), 15002);
    assert_eq!(code(&page(0, 101).await), 15002);

    // Keyset paging by _id walks everything, totals off.
    let mut last_id = "0".to_string();
    let mut seen = 0;
    loop {
        let answer = fx
            .call(
                "/cgi/crm/v2/data/query",
                json!({"data": {"dataObjectApiName": "AccountObj", "find_explicit_total_num": false,
                "search_query_info": {"limit": 100, "offset": 0, "fieldProjection": ["_id"],
                    "filters": [{"field_name": "_id", "operator": "GT", "field_values": [last_id]}],
                    "orders": [{"fieldName": "_id", "isAsc": true}]}}}),
            )
            .await;
        assert_eq!(answer["data"]["total"], 0);
        let rows = answer["data"]["dataList"].as_array().unwrap();
        seen += rows.len();
        if rows.len() < 100 {
            break;
        }
        last_id = rows[99]["_id"].as_str().unwrap().to_string();
    }
    assert_eq!(seen, 10_050);
}

#[tokio::test]
async fn per_path_rate_limit_and_daily_quota() {
    let sandbox = sandbox().await;
    let fx = Fx::token(&sandbox).await;
    let query = || fx.query("AccountObj", json!({"limit": 10, "offset": 0}));
    for _ in 0..100 {
        assert_eq!(code(&query().await), 0);
    }
    let limited = query().await;
    assert_eq!(
        (code(&limited), limited["errorMessage"].as_str()),
        (30004, Some("秒频次超限"))
    );
    // Another path has its own budget; the window slides on the sandbox clock.
    assert_eq!(
        code(&fx.call("/cgi/crm/v2/object/list", json!({})).await),
        0
    );
    sandbox.clock().advance(Duration::from_secs(20));
    assert_eq!(code(&query().await), 0);
    assert_eq!(sandbox.calls("fxiaoke:/cgi/crm/v2/data/query"), 102);

    // 102 calls counted today (the limited one was not).
    sandbox.fxiaoke_set_daily_quota(Some(103));
    assert_eq!(code(&query().await), 0);
    let quota = query().await;
    assert_eq!(
        (code(&quota), quota["errorMessage"].as_str()),
        (30002, Some("当天访问频次超限（0点重新统计）"))
    );
    // 2023-11-15 06:13:20 GMT+8 → the next day starts 17 h 46 min 40 s later.
    sandbox
        .clock()
        .advance(Duration::from_secs(17 * 3600 + 46 * 60 + 40));
    // The token has expired by then; a new day, a new token.
    assert_eq!(code(&query().await), 20016);
    let fx = Fx::token(&sandbox).await;
    let query = || fx.query("AccountObj", json!({"limit": 10, "offset": 0}));
    assert_eq!(code(&query().await), 0);

    sandbox.fxiaoke_set_openapi_purchased(false);
    assert_eq!(code(&query().await), 30003);
    assert_eq!(code(&token_answer(&sandbox).await), 30003);
}

#[tokio::test]
async fn messages_are_kept() {
    let sandbox = sandbox().await;
    let fx = Fx::token(&sandbox).await;
    let text = fx.raw("/cgi/message/send", &json!({"corpAccessToken": fx.token, "corpId": fx.corp_id, "toUser": [ADMIN, LISI], "msgType": "text", "text": {"content": "订单已发货"}})).await;
    assert_eq!(code(&text), 0, "{text}");
    let composite = fx.raw("/cgi/message/send", &json!({"corpAccessToken": fx.token, "corpId": fx.corp_id, "toUser": [ADMIN], "msgType": "composite",
        "composite": {"head": {"title": "发货通知"}, "form": [{"label": "单号", "value": "XSCKD000001"}]}})).await;
    assert_eq!(code(&composite), 0);
    for (body, expected) in [
        (
            json!({"toUser": [], "msgType": "text", "text": {"content": "x"}}),
            10015,
        ),
        (
            json!({"toUser": ["FSUID_NOBODY"], "msgType": "text", "text": {"content": "x"}}),
            11016,
        ),
        (
            json!({"toUser": [ADMIN], "msgType": "text", "text": {"content": ""}}),
            12005,
        ),
        (json!({"toUser": [ADMIN], "msgType": "video"}), 12003),
    ] {
        let mut body = body;
        body["corpAccessToken"] = json!(fx.token);
        body["corpId"] = json!(fx.corp_id);
        assert_eq!(
            code(&fx.raw("/cgi/message/send", &body).await),
            expected,
            "{body}"
        );
    }
    let messages = sandbox.fxiaoke_messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["text"]["content"], "订单已发货");
    assert_eq!(messages[0]["toUser"], json!([ADMIN, LISI]));
    assert_eq!(messages[1]["composite"]["head"]["title"], "发货通知");
    assert_eq!(messages[0]["sentAt"], T0 * 1000);
    let over_http: Value =
        reqwest::get(format!("{}/__sandbox/fxiaoke/messages", sandbox.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(over_http, json!(messages));
}

#[tokio::test]
async fn control_api_reads_and_writes_fxiaoke_state() {
    let sandbox = sandbox().await;
    let http = reqwest::Client::new();
    let base = format!("{}/__sandbox/fxiaoke", sandbox.base_url());
    let created: Value = http
        .post(format!("{base}/objects/AccountObj"))
        .json(&json!({"name": "甲", "account_no": "KH1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["_id"].as_str().unwrap();
    sandbox.clock().advance(Duration::from_secs(5));
    let patched: Value = http
        .patch(format!("{base}/objects/AccountObj/{id}"))
        .json(&json!({"tel": "1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            patched["tel"].as_str(),
            patched["last_modified_time"].as_i64()
        ),
        (Some("1"), Some((T0 + 5) * 1000))
    );
    let counts: Value = http
        .get(format!("{base}/objects"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["AccountObj"], 1);
    let refused = http
        .post(format!("{base}/objects/NopeObj"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let describe: Value = http
        .get(format!("{base}/describe/ProductObj"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(describe["fields"]["product_code"]["label"], "产品编码");
    let users: Value = http
        .get(format!("{base}/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users[0]["employeeId"], "1000");
    let limits: Value = http
        .post(format!("{base}/limits"))
        .json(&json!({"rate_limit": null, "daily_quota": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        limits,
        json!({"rate_limit": null, "daily_quota": 5, "openapi_purchased": true})
    );
    // reset restores the configured limits and empties the objects.
    http.post(format!("{}/__sandbox/reset", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    let limits: Value = http
        .get(format!("{base}/limits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        limits["rate_limit"],
        json!({"calls": 100, "window_ms": 20_000})
    );
    assert!(sandbox.fxiaoke_records("AccountObj").is_empty());
    let _ = Config::default();
}

#[tokio::test]
async fn sorted_pages_follow_writes() {
    let sandbox = unlimited().await;
    for i in 0..250 {
        sandbox
            .fxiaoke_insert("AccountObj", json!({"name": format!("客户{:03}", (i * 97) % 250), "account_level": if i % 2 == 0 { "1" } else { "2" }}))
            .unwrap();
    }
    let fx = Fx::token(&sandbox).await;
    let page = |offset: usize| {
        fx.query(
            "AccountObj",
            json!({"limit": 50, "offset": offset,
            "filters": [{"field_name": "account_level", "operator": "EQ", "field_values": ["2"]}],
            "orders": [{"fieldName": "name", "isAsc": false}]}),
        )
    };
    let names = |answer: &Value| -> Vec<String> {
        answer["data"]["dataList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut all = Vec::new();
    for offset in [0, 50, 100] {
        let answer = page(offset).await;
        assert_eq!(answer["data"]["total"], 125);
        all.extend(names(&answer));
    }
    assert_eq!(all.len(), 125);
    let mut sorted = all.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(all, sorted);

    // A new record that sorts first, and an update that moves another one: both show.
    fx.create(
        "AccountObj",
        json!({"name": "客户999", "account_level": "2"}),
        None,
    )
    .await;
    let first = page(0).await;
    assert_eq!(
        (first["data"]["total"].as_i64(), names(&first)[0].as_str()),
        (Some(126), "客户999")
    );
    let last_id = all.last().map(|name| {
        sandbox
            .fxiaoke_records("AccountObj")
            .into_iter()
            .find(|r| r["name"] == name.as_str())
            .unwrap()["_id"]
            .clone()
    });
    fx.call("/cgi/crm/v2/data/update", json!({"data": {"object_data": {"dataObjectApiName": "AccountObj", "_id": last_id, "name": "客户998"}}})).await;
    assert_eq!(names(&page(0).await)[1], "客户998");
    fx.call(
        "/cgi/crm/v2/data/invalid",
        json!({"data": {"dataObjectApiName": "AccountObj", "object_data_id": last_id}}),
    )
    .await;
    assert_eq!(page(0).await["data"]["total"], 125);
}

#[tokio::test]
async fn invalid_recover_and_change_owner_move_last_modified_time() {
    let sandbox = unlimited().await;
    let fx = Fx::token(&sandbox).await;
    let created = fx
        .create("AccountObj", json!({"name": "时间客户"}), None)
        .await;
    assert_eq!(code(&created), 0, "{created}");
    let id = created["dataId"].as_str().unwrap().to_string();
    let get = async || {
        let answer = fx
            .call(
                "/cgi/crm/v2/data/get",
                json!({"data": {"dataObjectApiName": "AccountObj", "objectDataId": id}}),
            )
            .await;
        assert_eq!(code(&answer), 0, "{answer}");
        answer["data"].clone()
    };
    let first = get().await;
    assert_eq!(first["last_modified_time"], T0 * 1000);
    let mut version: u64 = first["version"].as_str().unwrap().parse().unwrap();

    // Each of these is a change an incremental sync (last_modified_time >= its mark) must see.
    let steps = [
        (
            "/cgi/crm/v2/data/invalid",
            json!({"dataObjectApiName": "AccountObj", "object_data_id": id}),
        ),
        (
            "/cgi/crm/v2/data/recover",
            json!({"dataObjectApiName": "AccountObj", "idList": [id]}),
        ),
        (
            "/cgi/crm/v2/data/changeOwner",
            json!({"dataObjectApiName": "AccountObj", "Data": [{"objectDataId": id, "ownerId": [LISI]}]}),
        ),
    ];
    for (step, (path, data)) in (1_i64..).zip(steps) {
        sandbox.clock().advance(Duration::from_secs(10));
        let now = (T0 + 10 * step) * 1000;
        let answer = fx.call(path, json!({ "data": data })).await;
        assert_eq!(code(&answer), 0, "{path}: {answer}");
        let record = get().await;
        assert_eq!(record["last_modified_time"], now, "{path}");
        assert_eq!(record["last_modified_by"], json!([ADMIN]), "{path}");
        assert_eq!(record["create_time"], T0 * 1000, "{path}");
        let next: u64 = record["version"].as_str().unwrap().parse().unwrap();
        assert_eq!(next, version + 1, "{path}");
        version = next;
        // An incremental query from just before the change finds it (invalid records only
        // when the filter names is_deleted, as documented in the README).
        let mut filters = vec![
            json!({"field_name": "last_modified_time", "operator": "GTE", "field_values": [now]}),
        ];
        if path.ends_with("invalid") {
            filters.push(
                json!({"field_name": "is_deleted", "operator": "EQ", "field_values": [true]}),
            );
        }
        let found = fx
            .query(
                "AccountObj",
                json!({"limit": 10, "offset": 0, "filters": filters}),
            )
            .await;
        assert_eq!(found["data"]["total"], 1, "{path}: {found}");
        assert_eq!(found["data"]["dataList"][0]["_id"], id.as_str());
    }
}
