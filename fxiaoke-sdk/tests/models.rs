//! The typed models against records in wire form: every field lands where it belongs (epoch
//! milliseconds as times, people as lists, everything untyped — custom `__c` fields included —
//! in `extra`), and serializing gives the record back unchanged.
//!
//! `AccountObj` comes from the query fixture (the get fixture is checked in
//! `golden_requests.rs`), the order and its lines from the create fixture, whose body holds
//! them in the form the API exchanges records. No fixture holds a contact or a product record:
//! those two are built from the field tables of `reference/fxiaoke.md` §5–6 and the value
//! types of the `ProductObj` describe fixture.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use fxiaoke_sdk::types::{
    AccountObj, ContactObj, ProductObj, SalesOrderObj, SalesOrderProductObj, SystemFields,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

const OTHER_USER: &str = "FSUID_FEDCBA9876543210FEDCBA9876543210";

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Decodes `record`, and checks that serializing the model gives `record` back.
fn decode<T: DeserializeOwned + Serialize>(record: &Value) -> T {
    let model: T = serde_json::from_value(record.clone()).unwrap();
    assert_eq!(&serde_json::to_value(&model).unwrap(), record, "round trip");
    model
}

#[test]
fn account_rows_of_the_query_fixture() {
    let rows = fixture("crm_v2_data_query.json")["response"]["data"]["dataList"].clone();
    let rows: Vec<AccountObj> = rows.as_array().unwrap().iter().map(decode).collect();
    assert_eq!(
        rows[0],
        AccountObj {
            id: "5dc4cefa038eaa0001c0586f".into(),
            name: Some("上海示例科技有限公司".into()),
            account_no: Some("KH-2024-0001".into()),
            account_level: Some("2".into()),
            tel: Some("021-12345678".into()),
            extra: map(json!({
                "owner_department": "销售部",
                "object_describe_api_name": "AccountObj",
                "version": "3",
                "relevant_team": [{
                    "teamMemberEmployee": [OPERATOR],
                    "teamMemberRole": "1",
                    "teamMemberPermissionType": "2"
                }]
            })),
            system: SystemFields {
                owner: vec![OPERATOR.into()],
                created_by: vec![OPERATOR.into()],
                last_modified_by: vec![OTHER_USER.into()],
                create_time: Some(at(1_612_247_399_397)),
                last_modified_time: Some(at(1_716_000_000_000)),
                life_status: Some("normal".into()),
                lock_status: Some("0".into()),
                is_deleted: Some(false),
                record_type: Some("default__c".into()),
                ..Default::default()
            },
            ..AccountObj::default()
        }
    );
    assert_eq!(
        rows[1],
        AccountObj {
            id: "5dc4cefa038eaa0001c05870".into(),
            name: Some("北京示例贸易有限公司".into()),
            account_no: Some("KH-2024-0002".into()),
            extra: map(json!({"object_describe_api_name": "AccountObj"})),
            system: SystemFields {
                owner: vec![OTHER_USER.into()],
                create_time: Some(at(1_612_247_400_000)),
                last_modified_time: Some(at(1_716_000_100_000)),
                life_status: Some("normal".into()),
                lock_status: Some("0".into()),
                is_deleted: Some(false),
                record_type: Some("default__c".into()),
                ..Default::default()
            },
            ..AccountObj::default()
        }
    );
}

#[test]
fn a_tenant_custom_field_on_a_preset_object_stays_in_extra() {
    let mut record = fixture("crm_v2_data_query.json")["response"]["data"]["dataList"][1].clone();
    record["field_erp_no__c"] = json!("C0001");
    record["field_credit_limit__c"] = json!("50000.00");
    let account: AccountObj = decode(&record);
    assert_eq!(account.extra["field_erp_no__c"], "C0001");
    assert_eq!(account.extra["field_credit_limit__c"], "50000.00");
    assert_eq!(account.extra.len(), 3, "{:?}", account.extra);
}

#[test]
fn the_order_and_its_lines_of_the_create_fixture() {
    let data =
        fixture("crm_v2_data_create_sales_order_with_details.json")["request"]["data"].clone();
    let mut record = data["object_data"].clone();
    record["field_erp_order_no__c"] = json!("SO-0001");
    let order: SalesOrderObj = decode(&record);
    assert_eq!(
        order,
        SalesOrderObj {
            account_id: Some("5dc4cefa038eaa0001c0586f".into()),
            order_time: Some(at(1_716_000_000_000)),
            order_amount: Some("250.00".into()),
            delivery_date: Some(at(1_716_604_800_000)),
            remark: Some("ERP单号 SO-0001".into()),
            extra: map(json!({
                "dataObjectApiName": "SalesOrderObj",
                "field_erp_order_no__c": "SO-0001"
            })),
            system: SystemFields {
                owner: vec![OPERATOR.into()],
                record_type: Some("default__c".into()),
                ..Default::default()
            },
            ..SalesOrderObj::default()
        }
    );

    let lines: Vec<SalesOrderProductObj> = data["details"]["SalesOrderProductObj"]
        .as_array()
        .unwrap()
        .iter()
        .map(decode)
        .collect();
    let line =
        |product: &str, quantity: &str, price: &str, list: &str, total: &str, remark: &str| {
            SalesOrderProductObj {
                product_id: Some(product.into()),
                quantity: Some(quantity.into()),
                sales_price: Some(price.into()),
                product_price: Some(list.into()),
                discount: Some("100".into()),
                subtotal: Some(total.into()),
                unit: Some("1".into()),
                remark: Some(remark.into()),
                ..SalesOrderProductObj::default()
            }
        };
    assert_eq!(
        lines,
        [
            line(
                "5f0ff4299b09cb000129d9a1",
                "2",
                "100.00",
                "120.00",
                "200.00",
                "行1"
            ),
            line(
                "5f0ff4299b09cb000129d9a2",
                "1",
                "50.00",
                "50.00",
                "50.00",
                "行2"
            ),
        ]
    );
}

#[test]
fn a_contact_with_the_reference_fields() {
    let record = json!({
        "_id": "66f2a484928b280007aa6dd9",
        "name": "李四",
        "account_id": "5dc4cefa038eaa0001c0586f",
        "company": "上海示例科技有限公司",
        "tel1": "021-12345678",
        "mobile1": "13800000000",
        "email": "lisi@example.com",
        "owner": [OPERATOR],
        "created_by": [OPERATOR],
        "create_time": 1_716_000_000_000_i64,
        "last_modified_time": 1_716_000_100_000_i64,
        "life_status": "normal",
        "is_deleted": false,
        "record_type": "default__c",
        "data_own_department": ["1001"],
        "owner__r": {"id": "1000", "name": "张三"},
        "field_wechat__c": "lisi_wx"
    });
    let contact: ContactObj = decode(&record);
    assert_eq!(
        contact,
        ContactObj {
            id: "66f2a484928b280007aa6dd9".into(),
            name: Some("李四".into()),
            account_id: Some("5dc4cefa038eaa0001c0586f".into()),
            company: Some("上海示例科技有限公司".into()),
            tel1: Some("021-12345678".into()),
            mobile1: Some("13800000000".into()),
            email: Some("lisi@example.com".into()),
            extra: map(json!({
                "owner__r": {"id": "1000", "name": "张三"},
                "field_wechat__c": "lisi_wx"
            })),
            system: SystemFields {
                owner: vec![OPERATOR.into()],
                created_by: vec![OPERATOR.into()],
                create_time: Some(at(1_716_000_000_000)),
                last_modified_time: Some(at(1_716_000_100_000)),
                life_status: Some("normal".into()),
                is_deleted: Some(false),
                record_type: Some("default__c".into()),
                data_own_department: vec!["1001".into()],
                ..Default::default()
            },
            ..ContactObj::default()
        }
    );
}

#[test]
fn a_product_with_the_describe_fixture_types() {
    // `price` is currency (text), `off_shelves_time` date_time (epoch ms), `unit` select_one.
    let record = json!({
        "_id": "5f0ff4299b09cb000129d9a1",
        "name": "示例产品A",
        "product_code": "M-0001",
        "product_spec": "10kg/箱",
        "unit": "18",
        "price": "120.00",
        "category": "1",
        "product_status": "1",
        "off_shelves_time": 1_790_784_000_000_i64,
        "owner": [OPERATOR],
        "life_status": "normal",
        "lock_status": "0",
        "last_modified_by": [OTHER_USER],
        "last_modified_time": 1_716_000_000_000_i64,
        "field_k3_material_id__c": "100234"
    });
    let product: ProductObj = decode(&record);
    assert_eq!(
        product,
        ProductObj {
            id: "5f0ff4299b09cb000129d9a1".into(),
            name: Some("示例产品A".into()),
            product_code: Some("M-0001".into()),
            product_spec: Some("10kg/箱".into()),
            unit: Some("18".into()),
            price: Some("120.00".into()),
            category: Some("1".into()),
            product_status: Some("1".into()),
            off_shelves_time: Some(at(1_790_784_000_000)),
            extra: map(json!({"field_k3_material_id__c": "100234"})),
            system: SystemFields {
                owner: vec![OPERATOR.into()],
                life_status: Some("normal".into()),
                lock_status: Some("0".into()),
                last_modified_by: vec![OTHER_USER.into()],
                last_modified_time: Some(at(1_716_000_000_000)),
                ..Default::default()
            },
            ..ProductObj::default()
        }
    );
}
