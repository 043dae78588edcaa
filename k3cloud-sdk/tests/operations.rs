//! Operations beyond the captures: QUERY-mode polling bounds, chunked attachments, metadata.

mod common;

use std::time::Duration;

use common::*;
use k3cloud_sdk::{Attachment, Error, RowResult};
use serde::Serialize;
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer};

fn dfs(method: &str) -> String {
    format!("{DFS}.{method}.common.kdsvc")
}

const RUNNING: &str = r#"{"TaskId":"t-1","Status":1,"Result":null}"#;

#[tokio::test]
async fn a_query_mode_task_that_never_completes_is_task_pending_after_the_bound() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("BatchSave")))
        .respond_with(json_response(RUNNING))
        .mount(&server)
        .await;
    Mock::given(path(dfs("QueryAsyncResult")))
        .respond_with(json_response(RUNNING))
        .mount(&server)
        .await;
    let client = builder(&server)
        .async_polling(Duration::from_millis(1), 4)
        .build()
        .unwrap();
    let err = client
        .batch_save("BD_MATERIAL")
        .query_mode(true)
        .model(json!({}))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::TaskPending { task_id, polls: 4 } if task_id == "t-1"),
        "{err:?}"
    );
    assert_eq!(
        requests_to(&server, &dfs("QueryAsyncResult")).await.len(),
        4
    );
    assert_eq!(requests_to(&server, &dfs("BatchSave")).await.len(), 1);
}

/// A task that faulted may have saved some rows before it did: its outcome is unknown.
#[tokio::test]
async fn a_faulted_task_is_an_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("BatchSave")))
        .respond_with(json_response(
            r#"{"TaskId":"t-2","Status":2,"IsFaulted":true,"FaultedException":{"Message":"数据库死锁"}}"#,
        ))
        .mount(&server)
        .await;
    let err = signed_client(&server)
        .batch_save("X")
        .query_mode(true)
        .model(json!({}))
        .send()
        .await
        .unwrap_err();
    let Error::OutcomeUnknown { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(&**source, Error::ServerException { message, .. } if message == "数据库死锁"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_completed_task_with_refused_rows_is_per_row() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("BatchSave")))
        .respond_with(json_response(
            r#"{"TaskId":"t-3","Status":2,"Result":{"Result":{"ResponseStatus":{"IsSuccess":false,
            "Errors":[{"FieldName":"FName","Message":"名称必填","DIndex":1}],
            "SuccessEntitys":[{"Id":1,"Number":"A","DIndex":0}],"MsgCode":11}}}}"#,
        ))
        .mount(&server)
        .await;
    let r = signed_client(&server)
        .batch_save("X")
        .query_mode(true)
        .models([json!({"FNumber": "A"}), json!({"FNumber": "B"})])
        .send()
        .await
        .unwrap();
    assert!(r.rows[0].is_success());
    assert!(matches!(&r.rows[1], RowResult::Failed(e) if e[0].message == "名称必填"));
}

#[tokio::test]
async fn attachments_are_uploaded_and_downloaded_in_chunks() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("AttachmentUpload")))
        .respond_with(json_response(
            r#"{"Result":{"ResponseStatus":{"IsSuccess":true},"FileId":"f-9","FileName":"a.txt"}}"#,
        ))
        .mount(&server)
        .await;
    let client = builder(&server).attachment_chunk_bytes(4).build().unwrap();
    let file = Attachment::new(
        "SAL_SaleOrder",
        "100110",
        "SO0001",
        "a.txt",
        b"0123456789".to_vec(),
    );
    assert_eq!(client.upload_attachment(&file).await.unwrap(), "f-9");
    let sent: Vec<Value> = requests_to(&server, &dfs("AttachmentUpload"))
        .await
        .iter()
        .map(body_json)
        .collect();
    let parts: Vec<(&str, &str, bool)> = sent
        .iter()
        .map(|b| {
            let d = &b["data"];
            (
                d["SendByte"].as_str().unwrap(),
                d["FileId"].as_str().unwrap(),
                d["IsLast"].as_bool().unwrap(),
            )
        })
        .collect();
    // "0123", "4567", "89": the first chunk opens the file, the others append to it.
    assert_eq!(
        parts,
        [
            ("MDEyMw==", "", false),
            ("NDU2Nw==", "f-9", false),
            ("ODk=", "f-9", true)
        ]
    );

    // Download: two chunks, addressed by the byte offset already received.
    let server = MockServer::start().await;
    Mock::given(path(dfs("AttachmentDownLoad")))
        .and(wiremock::matchers::body_partial_json(
            json!({"data": {"StartIndex": 0}}),
        ))
        .respond_with(json_response(
            r#"{"Result":{"FilePart":"MDEyMw==","IsLast":false}}"#,
        ))
        .mount(&server)
        .await;
    Mock::given(path(dfs("AttachmentDownLoad")))
        .and(wiremock::matchers::body_partial_json(
            json!({"data": {"StartIndex": 4}}),
        ))
        .respond_with(json_response(
            r#"{"Result":{"FilePart":"NDU=","IsLast":true}}"#,
        ))
        .mount(&server)
        .await;
    let bytes = signed_client(&server)
        .download_attachment("f-9")
        .await
        .unwrap();
    assert_eq!(bytes, b"012345");

    // A server that sends empty, unfinished chunks forever is an error, not a loop.
    let server = MockServer::start().await;
    Mock::given(path(dfs("AttachmentDownLoad")))
        .respond_with(json_response(
            r#"{"Result":{"FilePart":"","IsLast":false}}"#,
        ))
        .mount(&server)
        .await;
    assert!(matches!(
        signed_client(&server).download_attachment("f").await,
        Err(Error::Decode { .. })
    ));
}

#[tokio::test]
async fn business_info_is_typed_enough_to_check_a_mapping() {
    let meta = json!({"Result": {"ResponseStatus": null, "NeedReturnData": {
        "Id": "SAL_SaleOrder",
        "Name": [{"Key": 2052, "Value": "销售订单"}, {"Key": 1033, "Value": "Sales Order"}],
        "Entrys": [
            {"Key": "FBillHead", "Name": [{"Key": 2052, "Value": "单据头"}], "Fields": [
                {"Key": "FBillNo", "Name": [{"Key": 2052, "Value": "单据编号"}], "FieldType": 167, "MustInput": 0},
                {"Key": "FCustId", "Name": [{"Key": 2052, "Value": "客户"}], "FieldType": "BaseData", "MustInput": 1, "LookUpObjectFormId": "BD_Customer"}
            ]},
            {"Key": "FSaleOrderEntry", "ParentKey": "FBillHead", "Fields": [
                {"Key": "FQty", "MustInput": "true"}
            ]}
        ],
        "Operations": [{"OperationNumber": "Save"}]
    }}});
    let server = MockServer::start().await;
    Mock::given(path(dfs("QueryBusinessInfo")))
        .respond_with(json_response(&meta.to_string()))
        .mount(&server)
        .await;
    let m = signed_client(&server)
        .business_info("SAL_SaleOrder")
        .await
        .unwrap();
    assert_eq!(m.name.get(1033), Some("Sales Order"));
    let (entry, field) = m.field("fcustid").unwrap();
    assert_eq!(entry.key, "FBillHead");
    assert_eq!(field.lookup_form_id.as_deref(), Some("BD_Customer"));
    assert_eq!(field.field_type.as_deref(), Some("BaseData"));
    assert_eq!(
        m.field("FBillNo").unwrap().1.field_type.as_deref(),
        Some("167")
    );
    let required: Vec<&str> = m.required_fields().map(|(_, f)| f.key.as_str()).collect();
    assert_eq!(required, ["FCustId", "FQty"]);
    assert_eq!(
        m.entry("FSaleOrderEntry").unwrap().parent_key.as_deref(),
        Some("FBillHead")
    );
    assert_eq!(m.operations.len(), 1);
}

/// A reference by number, as K3Cloud models name base data.
#[derive(Serialize)]
struct ByNumber {
    #[serde(rename = "FNumber")]
    number: &'static str,
}

#[derive(Serialize)]
struct OrderLine {
    #[serde(rename = "FMaterialId")]
    material: ByNumber,
    #[serde(rename = "FQty")]
    qty: f64,
    #[serde(rename = "FTaxPrice")]
    tax_price: f64,
    #[serde(rename = "FIsFree")]
    free: bool,
}

/// Field order is deliberately not alphabetical: the vendor warns that it can matter.
#[derive(Serialize)]
struct SaleOrder {
    #[serde(rename = "FID")]
    id: i64,
    #[serde(rename = "FDate")]
    date: &'static str,
    #[serde(rename = "FSaleOrgId")]
    sale_org: ByNumber,
    #[serde(rename = "FCustId")]
    customer: ByNumber,
    #[serde(rename = "FNote", skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
    #[serde(rename = "FSaleOrderEntry")]
    lines: Vec<OrderLine>,
}

/// A caller's own `Serialize` struct is sent as `Model` exactly as it serializes (field order,
/// skipped fields, number formats), with no option keys: every option keeps the server's
/// default (`IsDeleteEntry` included) unless its setter is called.
#[tokio::test]
async fn a_serialize_struct_is_saved_exactly_as_it_serializes() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("Save")))
        .respond_with(json_response(SAVE_OK))
        .mount(&server)
        .await;
    let order = SaleOrder {
        id: 0,
        date: "2024-01-15 00:00:00",
        sale_org: ByNumber { number: "100" },
        customer: ByNumber { number: "CUST0001" },
        note: None,
        lines: vec![OrderLine {
            material: ByNumber { number: "MAT0001" },
            qty: 10.0,
            tax_price: 11.3,
            free: false,
        }],
    };
    let saved = signed_client(&server)
        .save("SAL_SaleOrder")
        .model(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (saved.id.as_str(), saved.number.as_str()),
        ("140670", "MAT0001")
    );

    let sent = requests_to(&server, &dfs("Save")).await;
    assert_eq!(sent.len(), 1);
    let body = std::str::from_utf8(&sent[0].body).unwrap();
    assert_eq!(
        body,
        r#"{"formid":"SAL_SaleOrder","data":{"Model":{"FID":0,"FDate":"2024-01-15 00:00:00","FSaleOrgId":{"FNumber":"100"},"FCustId":{"FNumber":"CUST0001"},"FSaleOrderEntry":[{"FMaterialId":{"FNumber":"MAT0001"},"FQty":10.0,"FTaxPrice":11.3,"FIsFree":false}]}}}"#
    );
    assert_eq!(
        body,
        format!(
            r#"{{"formid":"SAL_SaleOrder","data":{{"Model":{}}}}}"#,
            serde_json::to_string(&order).unwrap()
        )
    );
}
