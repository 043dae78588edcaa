//! Every fixture in `reference/fxiaoke-wire/`: our request has the fixture's path and exact
//! JSON body (token, corp id and operator included), and the fixture's answer decodes to the
//! expected typed result or error kind.

mod common;

use chrono::DateTime;
use common::*;
use fxiaoke_sdk::types::{AccountObj, SalesOrderObj, SalesOrderProductObj, SystemFields};
use fxiaoke_sdk::{Composite, Error, FieldType, Filter, Operator, User};
use serde_json::{Value, json};
use wiremock::MockServer;

/// Every fixture, and the test below that replays it.
const COVERED: [&str; 41] = [
    "crm_custom_data_invalid_batch_v1.json", // custom_object_writes
    "crm_custom_v2_data_change_owner.json",  // custom_object_writes
    "crm_custom_v2_data_create.json",        // custom_object_writes
    "crm_custom_v2_data_delete.json",        // custom_object_writes
    "crm_custom_v2_data_find_one.json",      // custom_object_reads
    "crm_custom_v2_data_get.json",           // custom_object_reads
    "crm_custom_v2_data_invalid.json",       // custom_object_writes
    "crm_custom_v2_data_query.json",         // custom_object_reads
    "crm_custom_v2_data_update.json",        // custom_object_writes
    "crm_v2_data_change_owner.json",         // standard_object_writes
    "crm_v2_data_create.json",               // standard_object_writes
    "crm_v2_data_create_sales_order_with_details.json", // sales_order_with_lines
    "crm_v2_data_delete.json",               // standard_object_writes
    "crm_v2_data_get.json",                  // standard_object_reads
    "crm_v2_data_invalid.json",              // standard_object_writes
    "crm_v2_data_query.json",                // standard_object_reads
    "crm_v2_data_query_deep_paging.json",    // standard_object_reads
    "crm_v2_data_recover.json",              // standard_object_writes
    "crm_v2_data_update.json",               // standard_object_writes
    "crm_v2_object_describe.json",           // metadata
    "crm_v2_object_list.json",               // metadata
    "department_list.json",                  // org_directory
    "error_daily_quota_30002.json",          // quota_and_rate_errors
    "error_lookup_not_found_business.json",  // business_error_on_create
    "error_missing_auth_20017.json",         // missing_auth
    "error_no_openapi_quota_30003.json",     // quota_and_rate_errors
    "error_offset_out_of_range_10013.json",  // offset_out_of_range
    "error_rate_limited_30004.json",         // quota_and_rate_errors
    "error_token_invalid_20016.json",        // token_invalid_twice
    "error_unknown_path_10006.json",         // unknown_path
    "legacy_v1_crm_data_query.json",         // legacy_v1_query_through_raw
    "message_send_composite.json",           // messages
    "message_send_text.json",                // messages
    "token_corp_access_token_get_v2.json",   // token_request
    "token_corp_access_token_get_v2_error_bad_secret.json", // token_refused
    "token_oauth2_app_secret.json",          // oauth2_token_through_raw
    "user_get.json",                         // org_directory
    "user_get_batch_by_upd_time.json",       // org_directory
    "user_get_by_mobile.json",               // org_directory
    "user_list.json",                        // org_directory
    "user_simple_list.json",                 // org_directory
];

#[test]
fn every_fixture_is_covered() {
    let mut covered: Vec<String> = COVERED.iter().map(|s| (*s).to_owned()).collect();
    covered.sort();
    assert_eq!(covered, fixture_names());
}

/// The endpoint path of a fixture (`"POST /cgi/…"`).
fn path_of(f: &Value) -> String {
    let endpoint = f["endpoint"].as_str().unwrap();
    let path = endpoint.trim_start_matches("POST ");
    path.split(['?', ' ']).next().unwrap().to_owned()
}

/// A server that hands out the fixture token and answers `at` with the fixture's response.
async fn serving(file: &str, at: Option<&str>) -> (MockServer, Value, String) {
    let f = fixture(file);
    let at = at.map_or_else(|| path_of(&f), str::to_owned);
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(&server, &at, &f["response"]).await;
    (server, f, at)
}

/// The one request sent to `at` has the fixture's body.
async fn sent_exactly(server: &MockServer, at: &str, f: &Value, file: &str) {
    let seen = requests_to(server, at).await;
    assert_eq!(seen.len(), 1, "{file}: one request to {at}");
    assert_eq!(body_json(&seen[0]), f["request"], "{file}: body");
    assert_eq!(
        seen[0].headers.get("content-type").unwrap(),
        "application/json",
        "{file}: content type"
    );
    assert_eq!(
        requests_to(server, TOKEN_PATH).await.len(),
        1,
        "{file}: one token request"
    );
}

const TRACE: &str = "E-O.71557.1000-8f3c2a1b6d4e4f50a1b2c3d4e5f60718";

#[tokio::test]
async fn standard_object_writes() {
    // create (LeadsObj) with every flag and option the fixture sends.
    let file = "crm_v2_data_create.json";
    let (server, f, at) = serving(file, None).await;
    let created = client(&server)
        .create("LeadsObj")
        .trigger_approval_flow(false)
        .trigger_workflow(false)
        .specify_time(false)
        .specify_created_by(false)
        .object_data(json!({
            "name": "张三-官网留资", "company": "Acme Corp", "email": "contact@acme.example",
            "mobile": "13800000000", "record_type": "default__c", "owner": [OPERATOR]
        }))
        .skip_function_validation(false)
        .use_validation_rule(true)
        .duplicate_search(true)
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(created.data_id.as_deref(), Some("68fa0c1e2b7f3d0001a4b5c6"));
    assert_eq!(created.trace_id.as_deref(), Some(TRACE));
    assert!(created.extra.is_empty(), "{:?}", created.extra);

    let file = "crm_v2_data_update.json";
    let (server, f, at) = serving(file, None).await;
    let updated = client(&server)
        .update("AccountObj", "5dc4cefa038eaa0001c0586f")
        .trigger_workflow(false)
        .set("tel", "021-87654321")
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(updated.data_id, None);

    let file = "crm_v2_data_invalid.json";
    let (server, f, at) = serving(file, None).await;
    client(&server)
        .invalid("AccountObj", "5dc4cefa038eaa0001c0586f")
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;

    let file = "crm_v2_data_delete.json";
    let (server, f, at) = serving(file, None).await;
    client(&server)
        .delete("AccountObj")
        .id("5dc4cefa038eaa0001c0586f")
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;

    let file = "crm_v2_data_recover.json";
    let (server, f, at) = serving(file, None).await;
    client(&server)
        .recover("AccountObj")
        .ids(["5dc4cefa038eaa0001c0586f"])
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;

    let file = "crm_v2_data_change_owner.json";
    let (server, f, at) = serving(file, None).await;
    client(&server)
        .change_owner("LeadsObj")
        .record(
            "5dc4cefa038eaa0001c0586f",
            ["FSUID_FEDCBA9876543210FEDCBA9876543210"],
        )
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
}

#[tokio::test]
async fn sales_order_with_lines() {
    let file = "crm_v2_data_create_sales_order_with_details.json";
    let (server, f, at) = serving(file, None).await;
    let order = SalesOrderObj {
        account_id: Some("5dc4cefa038eaa0001c0586f".into()),
        order_time: DateTime::from_timestamp_millis(1_716_000_000_000),
        order_amount: Some("250.00".into()),
        delivery_date: DateTime::from_timestamp_millis(1_716_604_800_000),
        remark: Some("ERP单号 SO-0001".into()),
        system: SystemFields {
            owner: vec![OPERATOR.into()],
            record_type: Some("default__c".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let line = |product: &str, qty: &str, price: &str, list: &str, subtotal: &str, remark: &str| {
        SalesOrderProductObj {
            product_id: Some(product.into()),
            quantity: Some(qty.into()),
            sales_price: Some(price.into()),
            product_price: Some(list.into()),
            discount: Some("100".into()),
            subtotal: Some(subtotal.into()),
            unit: Some("1".into()),
            remark: Some(remark.into()),
            ..Default::default()
        }
    };
    let lines = [
        line(
            "5f0ff4299b09cb000129d9a1",
            "2",
            "100.00",
            "120.00",
            "200.00",
            "行1",
        ),
        line(
            "5f0ff4299b09cb000129d9a2",
            "1",
            "50.00",
            "50.00",
            "50.00",
            "行2",
        ),
    ];
    let created = client(&server)
        .create("SalesOrderObj")
        .trigger_approval_flow(false)
        .trigger_workflow(false)
        .object_data(&order)
        .details("SalesOrderProductObj", &lines)
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(created.data_id.as_deref(), Some("66f2a484928b280007aa6dd8"));
}

#[tokio::test]
async fn standard_object_reads() {
    let file = "crm_v2_data_get.json";
    let (server, f, at) = serving(file, None).await;
    let account: AccountObj = client(&server)
        .get("AccountObj", "5dc4cefa038eaa0001c0586f")
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(account.id, "5dc4cefa038eaa0001c0586f");
    assert_eq!(account.name.as_deref(), Some("上海示例科技有限公司"));
    assert_eq!(account.account_no.as_deref(), Some("KH-2024-0001"));
    assert_eq!(account.account_level.as_deref(), Some("2"));
    assert_eq!(account.system.owner, [OPERATOR]);
    assert_eq!(
        account.system.last_modified_by,
        ["FSUID_FEDCBA9876543210FEDCBA9876543210"]
    );
    assert_eq!(
        account.system.create_time.unwrap().timestamp_millis(),
        1_612_247_399_397
    );
    assert_eq!(account.system.life_status.as_deref(), Some("normal"));
    assert_eq!(account.system.lock_status.as_deref(), Some("0"));
    assert_eq!(account.system.is_deleted, Some(false));
    assert_eq!(account.extra["owner__r"]["name"], "张三");
    assert_eq!(account.extra["life_status__r"], "正常");
    assert_eq!(account.extra["version"], "3");
    // Nothing is lost: the typed record serializes back to the same fields.
    assert_eq!(
        serde_json::to_value(&account).unwrap(),
        f["response"]["data"]
    );

    let file = "crm_v2_data_query.json";
    let (server, f, at) = serving(file, None).await;
    let page = client(&server)
        .query("AccountObj")
        .find_explicit_total_num(true)
        .limit(100)
        .offset(0)
        .filter(Filter::between(
            "last_modified_time",
            1_716_000_000_000_i64,
            1_716_086_400_000_i64,
        ))
        .filter(Filter::eq("life_status", "normal"))
        .order_by("last_modified_time", true)
        .fields([
            "_id",
            "name",
            "account_no",
            "owner",
            "life_status",
            "is_deleted",
            "create_time",
            "last_modified_time",
        ])
        .send::<AccountObj>()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(
        (page.offset, page.limit, page.total),
        (Some(0), Some(100), Some(2))
    );
    assert_eq!(page.trace_id.as_deref(), Some(TRACE));
    let ids: Vec<&str> = page.rows.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        ["5dc4cefa038eaa0001c0586f", "5dc4cefa038eaa0001c05870"]
    );
    assert_eq!(page.rows[1].name.as_deref(), Some("北京示例贸易有限公司"));
    assert_eq!(
        page.rows[1]
            .system
            .last_modified_time
            .unwrap()
            .timestamp_millis(),
        1_716_000_100_000
    );

    let file = "crm_v2_data_query_deep_paging.json";
    let (server, f, at) = serving(file, None).await;
    let page = client(&server)
        .query("AccountObj")
        .find_explicit_total_num(false)
        .limit(5)
        .filter(Filter::new(
            "_id",
            Operator::Gt,
            ["00000000000000000000000000000000"],
        ))
        .order_by("_id", true)
        .fields(["_id"])
        .send::<Value>()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(
        page.rows,
        f["response"]["data"]["dataList"]
            .as_array()
            .unwrap()
            .clone()
    );
    assert_eq!(page.total, Some(0), "totals off: 0, not a count");
}

#[tokio::test]
async fn custom_object_writes() {
    let object = "object_Hk2p1__c";
    let id = "5f323dd6d97520000155369f";

    let file = "crm_custom_v2_data_create.json";
    let (server, f, at) = serving(file, None).await;
    assert_eq!(at, "/cgi/crm/custom/v2/data/create");
    let created = client(&server)
        .create(object)
        .trigger_approval_flow(false)
        .trigger_workflow(false)
        .specify_time(false)
        .object_data(json!({
            "name": "2026Q4 回款计划-示例", "amount__c": "12000.50",
            "plan_date__c": 1_790_784_000_000_i64, "owner": [OPERATOR]
        }))
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(created.data_id.as_deref(), Some(id));

    let file = "crm_custom_v2_data_update.json";
    let (server, f, at) = serving(file, None).await;
    client(&server)
        .update(object, id)
        .trigger_workflow(false)
        .skip_data_status_validate(false)
        .set("amount__c", "13000.00")
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;

    let file = "crm_custom_v2_data_invalid.json";
    let (server, f, at) = serving(file, None).await;
    client(&server).invalid(object, id).send().await.unwrap();
    sent_exactly(&server, &at, &f, file).await;

    let file = "crm_custom_data_invalid_batch_v1.json";
    let (server, f, at) = serving(file, None).await;
    client(&server)
        .invalid_many(object)
        .ids([id, "5f323dd6d9752000015536a0"])
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;

    let file = "crm_custom_v2_data_delete.json";
    let (server, f, at) = serving(file, None).await;
    client(&server).delete(object).id(id).send().await.unwrap();
    sent_exactly(&server, &at, &f, file).await;

    let file = "crm_custom_v2_data_change_owner.json";
    let (server, f, at) = serving(file, None).await;
    client(&server)
        .change_owner(object)
        .record(id, ["FSUID_FEDCBA9876543210FEDCBA9876543210"])
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
}

#[tokio::test]
async fn custom_object_reads() {
    let object = "object_Hk2p1__c";

    let file = "crm_custom_v2_data_get.json";
    let (server, f, at) = serving(file, None).await;
    let record: Value = client(&server)
        .get(object, "5f323dd6d97520000155369f")
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(record, f["response"]["data"]);

    let file = "crm_custom_v2_data_query.json";
    let (server, f, at) = serving(file, None).await;
    let page = client(&server)
        .query(object)
        .limit(100)
        .filter(Filter::eq("life_status", "normal"))
        .order_by("_id", true)
        .send::<Value>()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(
        page.rows,
        f["response"]["data"]["dataList"]
            .as_array()
            .unwrap()
            .clone()
    );
    assert_eq!(page.total, Some(1));

    let file = "crm_custom_v2_data_find_one.json";
    let (server, f, at) = serving(file, None).await;
    let lead: Option<Value> = client(&server)
        .find_one("LeadsObj")
        .filter(Filter::eq("email", "contact@acme.example"))
        .limit(10)
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(lead.unwrap(), f["response"]["data"]["objectData"]);
}

#[tokio::test]
async fn metadata() {
    let file = "crm_v2_object_list.json";
    let (server, f, at) = serving(file, None).await;
    let objects = client(&server).objects().send().await.unwrap();
    sent_exactly(&server, &at, &f, file).await;
    let names: Vec<(&str, &str, &str)> = objects
        .iter()
        .map(|o| {
            (
                o.api_name.as_str(),
                o.display_name.as_str(),
                o.define_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("AccountObj", "客户", "package"),
            ("LeadsObj", "销售线索", "package"),
            ("object_Hk2p1__c", "回款计划(自定义)", "custom"),
        ]
    );
    assert_eq!(objects[0].is_active, Some(true));
    assert_eq!(objects[0].extra["publicObject"], false);

    let file = "crm_v2_object_describe.json";
    let (server, f, at) = serving(file, None).await;
    let d = client(&server)
        .describe("ProductObj")
        .include_detail(true)
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(d.api_name, "ProductObj");
    assert_eq!(d.display_name.as_deref(), Some("产品"));
    let names: Vec<&str> = d.fields.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "life_status",
            "name",
            "off_shelves_time",
            "owner",
            "price",
            "unit"
        ]
    );
    let price = d.field("price").unwrap();
    assert_eq!(
        (
            price.field_type.clone(),
            price.decimal_places,
            price.is_required
        ),
        (FieldType::Currency, Some(2), true)
    );
    assert_eq!(price.extra["currency_unit"], "￥");
    let unit = d.field("unit").unwrap();
    assert_eq!(unit.field_type, FieldType::SelectOne);
    assert_eq!(unit.option_value("辆"), Some("18"));
    assert!(unit.has_option("1") && !unit.has_option("个"));
    assert_eq!(
        d.field("off_shelves_time").unwrap().field_type,
        FieldType::DateTime
    );
    assert_eq!(d.field("owner").unwrap().field_type, FieldType::Employee);
    assert_eq!(d.field("name").unwrap().max_length, Some(100));
    let required: Vec<&str> = d.required_fields().map(|f| f.api_name.as_str()).collect();
    assert_eq!(required, ["name", "owner", "price"]);
    let life = d.field("life_status").unwrap();
    assert_eq!(life.options.len(), 5);
    assert_eq!(life.option_value("作废"), Some("invalid"));
}

#[tokio::test]
async fn org_directory() {
    let file = "user_get_by_mobile.json";
    let (server, f, at) = serving(file, None).await;
    let users = client(&server)
        .user_by_mobile("13800000000")
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].open_user_id, OPERATOR);
    assert_eq!(users[0].status.as_deref(), Some("NORMAL"));
    assert_eq!(users[0].main_department_ids, [1001]);

    let file = "user_get.json";
    let (server, f, at) = serving(file, None).await;
    let user: User = client(&server)
        .user(OPERATOR)
        .show_department_ids_detail(true)
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(user.name.as_deref(), Some("张三"));
    assert_eq!(user.department_ids, [1001, 999_999]);
    assert_eq!(user.main_department_id, Some(1001));
    assert_eq!(user.is_stop, Some(false));
    assert_eq!(user.hire_date.as_deref(), Some("2020-03-16"));
    assert_eq!(
        user.create_time.unwrap().timestamp_millis(),
        1_584_316_800_000
    );
    assert_eq!(
        user.leader_id.as_deref(),
        Some("FSUID_FEDCBA9876543210FEDCBA9876543210")
    );
    assert_eq!(user.extra["birthDate"], "");

    let file = "user_list.json";
    let (server, f, at) = serving(file, None).await;
    let users = client(&server)
        .users(999_999)
        .fetch_child(true)
        .show_department_ids_detail(true)
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name.as_deref(), Some("小明"));

    let file = "user_simple_list.json";
    let (server, f, at) = serving(file, None).await;
    let users = client(&server)
        .users_simple(999_999)
        .fetch_child(true)
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    let names: Vec<_> = users.iter().map(|u| u.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["张三", "李四"]);

    let file = "user_get_batch_by_upd_time.json";
    let (server, f, at) = serving(file, None).await;
    let page = client(&server)
        .users_changed()
        .page_size(100)
        .page_number(1)
        .since(DateTime::from_timestamp_millis(1_700_000_000_000).unwrap())
        .until(DateTime::from_timestamp_millis(1_760_000_000_000).unwrap())
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(
        (page.page_number, page.page_count, page.total_count),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(
        page.last_changed_time.unwrap().timestamp_millis(),
        1_759_000_000_000
    );
    assert_eq!(page.employees[1].is_stop, Some(true));

    let file = "department_list.json";
    let (server, f, at) = serving(file, None).await;
    let departments = client(&server).departments().send().await.unwrap();
    sent_exactly(&server, &at, &f, file).await;
    let tree: Vec<(i64, &str, Option<i64>)> = departments
        .iter()
        .map(|d| (d.id, d.name.as_str(), d.parent_id))
        .collect();
    assert_eq!(
        tree,
        [
            (999_999, "示例科技有限公司", Some(0)),
            (1001, "销售部", Some(999_999))
        ]
    );
}

#[tokio::test]
async fn messages() {
    let file = "message_send_text.json";
    let (server, f, at) = serving(file, None).await;
    let sent = client(&server)
        .text_message(
            [OPERATOR, "FSUID_FEDCBA9876543210FEDCBA9876543210"],
            "今日有 3 条新线索待跟进",
        )
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(sent.trace_id.as_deref(), Some(TRACE));

    let file = "message_send_composite.json";
    let (server, f, at) = serving(file, None).await;
    let card = Composite::new("对接状态报告")
        .first("2026-01-01 10:00")
        .row("类型", "订单")
        .row("单号", "SO-0001")
        .row("结果", "成功")
        .remark("同步完成")
        .link(
            "查看客户",
            Composite::crm_link("AccountObj", "5dc4cefa038eaa0001c0586f"),
        );
    client(&server)
        .composite_message([OPERATOR], card)
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
}

#[tokio::test]
async fn token_request() {
    let file = "token_corp_access_token_get_v2.json";
    let (server, f, at) = serving(file, None).await;
    let client = client(&server);
    assert_eq!(client.corp_id().await.unwrap(), CORP_ID);
    let seen = requests_to(&server, &at).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(body_json(&seen[0]), f["request"]);
    assert_eq!(client.token_requests(), 1);
}

#[tokio::test]
async fn token_refused() {
    let file = "token_corp_access_token_get_v2_error_bad_secret.json";
    let f = fixture(file);
    let server = MockServer::start().await;
    mount(&server, TOKEN_PATH, &f["response"]).await;
    let client = builder(&server).app_secret("wrong").build().unwrap();
    let err = client.corp_id().await.unwrap_err();
    let Error::AuthFailed(a) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(a.code, 10006);
    assert_eq!(a.message, "the parameter appSecret is missing or illegal");
    assert_eq!(a.description.as_deref(), Some("缺少参数或参数不合法"));
    assert_eq!(
        a.trace_id.as_deref(),
        Some("open-api-gateway-web/0a1b2c3d4e5f")
    );
    assert!(!err.is_retryable());
    let seen = requests_to(&server, TOKEN_PATH).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(body_json(&seen[0]), f["request"]);
    // A business call with refused credentials sends nothing but the token request.
    assert!(matches!(
        client.departments().send().await,
        Err(Error::AuthFailed(_))
    ));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn oauth2_token_through_raw() {
    // New-generation auth is not built in; the raw call reaches it, without our auth fields
    // and with a thirdTraceId.
    let file = "token_oauth2_app_secret.json";
    let (server, f, at) = serving(file, None).await;
    let client = builder(&server).third_trace_id(true).build().unwrap();
    let answer = client
        .raw("/oauth2.0/token")
        .without_auth()
        .idempotent(true)
        .body(f["request"].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer, f["response"]);
    let seen = requests_to(&server, &at).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(body_json(&seen[0]), f["request"]);
    let trace: Vec<_> = seen[0].url.query_pairs().collect();
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0].0, "thirdTraceId");
    assert_eq!(trace[0].1.len(), 36);
    assert!(requests_to(&server, TOKEN_PATH).await.is_empty());
}

/// A query of the error fixtures' shape: `limit 10, offset 0, no filters, no orders`.
async fn small_query(file: &str) -> (Error, MockServer, Value) {
    let (server, f, _) = serving(file, Some("/cgi/crm/v2/data/query")).await;
    let err = client(&server)
        .query("AccountObj")
        .limit(10)
        .send::<Value>()
        .await
        .unwrap_err();
    sent_exactly(&server, "/cgi/crm/v2/data/query", &f, file).await;
    (err, server, f)
}

#[tokio::test]
async fn quota_and_rate_errors() {
    let (err, _, _) = small_query("error_daily_quota_30002.json").await;
    assert!(
        matches!(&err, Error::DailyQuotaExhausted(a) if a.message == "当天访问频次超限（0点重新统计）")
    );
    assert!(!err.is_retryable());
    assert_eq!(err.error_code(), Some(30002));

    let (err, _, _) = small_query("error_no_openapi_quota_30003.json").await;
    assert!(matches!(&err, Error::NoApiQuota(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(err.api_error().unwrap().trace_id.as_deref(), Some(TRACE));

    let (err, _, f) = small_query("error_rate_limited_30004.json").await;
    assert!(matches!(&err, Error::RateLimited(_)), "{err:?}");
    assert!(err.is_retryable());
    let raw: Value = serde_json::from_str(&err.api_error().unwrap().raw).unwrap();
    assert_eq!(raw, f["response"], "the raw body is kept");
}

#[tokio::test]
async fn token_invalid_twice() {
    // Both attempts get 20016: one replacement token, one resend, then the error.
    let file = "error_token_invalid_20016.json";
    let (server, f, at) = serving(file, Some("/cgi/crm/v2/data/query")).await;
    let err = client(&server)
        .query("AccountObj")
        .limit(10)
        .send::<Value>()
        .await
        .unwrap_err();
    let Error::TokenInvalid(a) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(a.code, 20016);
    assert_eq!(
        a.message,
        "the cropId,cropAccessToken or authorization is error"
    );
    let seen = requests_to(&server, &at).await;
    assert_eq!(seen.len(), 2);
    assert_eq!(body_json(&seen[0]), f["request"]);
    assert_eq!(body_json(&seen[1]), f["request"]);
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
}

#[tokio::test]
async fn missing_auth() {
    // The probe sent no auth at all; we always do. Its answer decodes as a plain API error.
    let file = "error_missing_auth_20017.json";
    let (server, f, at) = serving(file, Some("/cgi/crm/v2/data/query")).await;
    let err = client(&server)
        .query("AccountObj")
        .limit(10)
        .send::<Value>()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api(a) if a.code == 20017 && a.message == "corpAccessToken为必填项，不能为空")
    );
    let mut ours = body_json(&requests_to(&server, &at).await[0]);
    let obj = ours.as_object_mut().unwrap();
    for key in ["corpAccessToken", "corpId", "currentOpenUserId"] {
        assert!(obj.remove(key).is_some(), "{key} is sent");
    }
    assert_eq!(ours, f["request"]);
}

#[tokio::test]
async fn offset_out_of_range() {
    let file = "error_offset_out_of_range_10013.json";
    let (server, f, at) = serving(file, None).await;
    let client = client(&server);
    // The builder refuses the fixture's offset before sending…
    let refused = client
        .query("AccountObj")
        .limit(100)
        .offset(10_100)
        .send::<Value>()
        .await;
    assert!(matches!(refused, Err(Error::InvalidInput(m)) if m.contains("10000")));
    assert!(server.received_requests().await.unwrap().is_empty());
    // …and the server's refusal, reached through a raw call, is a typed error.
    let mut body = f["request"].clone();
    let obj = body.as_object_mut().unwrap();
    obj.remove("corpAccessToken");
    obj.remove("corpId");
    let err = client
        .raw(&at)
        .idempotent(true)
        .body(body)
        .send()
        .await
        .unwrap_err();
    let Error::OffsetOutOfRange(a) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(a.description.as_deref(), Some("offset 不能超过10000"));
    sent_exactly(&server, &at, &f, file).await;
}

#[tokio::test]
async fn unknown_path() {
    let file = "error_unknown_path_10006.json";
    let (server, f, at) = serving(file, None).await;
    let err = client(&server)
        .call_raw(&at, json!({"data": {}}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadParameters(a) if a.code == 10006 && a.message.contains("is not exists")),
        "{err:?}"
    );
    assert!(
        !err.is_outcome_unknown(),
        "the server answered: nothing was done"
    );
    sent_exactly(&server, &at, &f, file).await;
}

#[tokio::test]
async fn business_error_on_create() {
    let file = "error_lookup_not_found_business.json";
    let (server, f, at) = serving(file, None).await;
    let err = client(&server)
        .create("SalesOrderObj")
        .object_data(json!({"account_id": "not-a-crm-id", "owner": [OPERATOR]}))
        .send()
        .await
        .unwrap_err();
    let Error::Api(a) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(a.code, -1);
    assert_eq!(
        a.message,
        "数据[20210525-010]的字段[客户名称]关联关系不存在-201112011"
    );
    assert_eq!(a.endpoint, "/cgi/crm/v2/data/create");
    sent_exactly(&server, &at, &f, file).await;
}

#[tokio::test]
async fn legacy_v1_query_through_raw() {
    let file = "legacy_v1_crm_data_query.json";
    let (server, f, at) = serving(file, None).await;
    let request = f["request"].as_object().unwrap();
    let answer = client(&server)
        .raw(&at)
        .idempotent(true)
        .body(json!({"apiName": request["apiName"], "searchQuery": request["searchQuery"]}))
        .send()
        .await
        .unwrap();
    sent_exactly(&server, &at, &f, file).await;
    assert_eq!(answer["totalNumber"], 1);
    assert_eq!(answer["datas"][0]["name"], "上海示例科技有限公司");
}
