//! `Error::Decode::path`: every answer that does not decode says where, as a JSON path from the
//! root of the answer (`[2].FQty`, `Result.ResponseStatus.Errors`).

mod common;

use std::fmt::Debug;

use common::*;
use k3cloud_sdk::{Attachment, Error};
use serde::Deserialize;
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer};

/// A server answering `body` to the DynamicFormService (or AuthService login) method.
async fn answering(method: &str, body: &str) -> MockServer {
    let server = MockServer::start().await;
    let service = if method == "ValidateUser" {
        format!("{AUTH}.{method}.common.kdsvc")
    } else if method == "GetDataCenterList" {
        "/k3cloud/Kingdee.BOS.ServiceFacade.ServicesStub.Account.AccountService.GetDataCenterList.common.kdsvc".to_owned()
    } else {
        format!("{DFS}.{method}.common.kdsvc")
    };
    Mock::given(path(service))
        .respond_with(json_response(body))
        .mount(&server)
        .await;
    server
}

/// The path of a decode error, bare or as the cause of an unknown outcome.
fn decode_path<T: Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Decode { path, .. }) => path,
        Err(Error::OutcomeUnknown { source, .. }) => match *source {
            Error::Decode { path, .. } => path,
            other => panic!("expected a decode error inside, got {other:?}"),
        },
        other => panic!("expected a decode error, got {other:?}"),
    }
}

/// Fields declared in another order than the field keys: rows are matched by key.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Line {
    #[serde(rename = "FQty")]
    qty: f64,
    #[serde(rename = "FBillNo")]
    number: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct LenientLine {
    #[serde(rename = "FBillNo")]
    number: String,
    #[serde(rename = "FQty", deserialize_with = "k3cloud_sdk::de::f64")]
    qty: f64,
}

const ROWS: &str = r#"[["SO1", 1], ["SO2", "2.5"], ["SO3", "lots"]]"#;

#[tokio::test]
async fn a_query_cell_of_the_wrong_type_names_its_row_and_field_key() {
    let server = answering("ExecuteBillQuery", ROWS).await;
    let client = signed_client(&server);
    let query = || client.query("SAL_SaleOrder").fields(["FBillNo", "FQty"]);

    let err = query().send::<Line>().await.unwrap_err();
    match &err {
        Error::Decode {
            path,
            message,
            snippet,
        } => {
            // Row 1 already fails: "2.5" is a string and `f64` is strict.
            assert_eq!(path, "[1].FQty");
            assert!(
                message.starts_with(r#"invalid type: string "2.5", expected f64"#),
                "{message}"
            );
            assert_eq!(snippet, r#"[["SO1", 1], ["SO2", "2.5"], ["SO3", "lots"]]"#);
        }
        other => panic!("{other:?}"),
    }
    // A lenient field takes "2.5" and fails on the next row, with its own message.
    let err = query().send::<LenientLine>().await.unwrap_err();
    assert!(
        matches!(&err, Error::Decode { path, message, .. }
            if path == "[2].FQty" && message.starts_with("expected a number, got a string")),
        "{err:?}"
    );
    // Positional rows name the field key of the cell too.
    assert_eq!(
        decode_path(query().send::<(String, f64)>().await),
        "[1].FQty"
    );
    // A cell beyond the field keys has no name: its position is kept.
    let server = answering("ExecuteBillQuery", r#"[["SO1", 1, "x"]]"#).await;
    let result = signed_client(&server)
        .query("SAL_SaleOrder")
        .fields(["FBillNo", "FQty"])
        .send::<(String, f64, i64)>()
        .await;
    assert_eq!(decode_path(result), "[0][2]");
}

#[tokio::test]
async fn a_short_query_row_names_the_row_and_the_missing_field_key() {
    let server = answering("ExecuteBillQuery", r#"[["SO1", 1], ["SO2"]]"#).await;
    let err = signed_client(&server)
        .query("SAL_SaleOrder")
        .fields(["FBillNo", "FQty"])
        .send::<LenientLine>()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Decode { path, message, .. }
            if path == "[1]" && message.starts_with("the row has no cell for field key `FQty`")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_bill_query_value_of_the_wrong_type_names_its_row_and_field_key() {
    let server = answering(
        "BillQuery",
        r#"[{"FBillNo": "SO1", "FQty": 1}, {"FBillNo": "SO2", "FQty": "2.5"}]"#,
    )
    .await;
    let result = signed_client(&server)
        .bill_query("SAL_SaleOrder")
        .fields(["FBillNo", "FQty"])
        .send::<Line>()
        .await;
    assert_eq!(decode_path(result), "[1].FQty");
}

/// A `ResponseStatus` that does not decode is located wherever the answer carried it.
#[tokio::test]
async fn a_response_status_that_does_not_decode_is_located_in_the_answer() {
    let bad_status = r#"{"IsSuccess": false, "Errors": 5}"#;

    let server = answering(
        "View",
        &format!(r#"{{"Result":{{"ResponseStatus":{bad_status}}}}}"#),
    )
    .await;
    let result = signed_client(&server).view("X").number("1").send().await;
    assert_eq!(decode_path(result), "Result.ResponseStatus.Errors");

    // ExecuteBillQuery wraps its errors as [[{…}]].
    let server = answering(
        "ExecuteBillQuery",
        &format!(r#"[[{{"Result":{{"ResponseStatus":{bad_status}}}}}]]"#),
    )
    .await;
    let result = signed_client(&server)
        .query("X")
        .fields(["F"])
        .send::<serde_json::Value>()
        .await;
    assert_eq!(decode_path(result), "[0][0].Result.ResponseStatus.Errors");

    // GetSysReportData carries the status in `Result` itself.
    let server = answering(
        "GetSysReportData",
        r#"{"Result":{"IsSuccess":"maybe","RowCount":0,"Rows":[]}}"#,
    )
    .await;
    let result = signed_client(&server)
        .report("X")
        .fields(["F"])
        .send()
        .await;
    assert_eq!(decode_path(result), "Result.IsSuccess");

    // The same on a write is an unknown outcome, still with the path.
    let server = answering(
        "Save",
        &format!(r#"{{"Result":{{"ResponseStatus":{bad_status}}}}}"#),
    )
    .await;
    let result = signed_client(&server)
        .save("X")
        .model(json!({}))
        .send()
        .await;
    assert!(matches!(&result, Err(e) if e.is_outcome_unknown()));
    assert_eq!(decode_path(result), "Result.ResponseStatus.Errors");
}

#[tokio::test]
async fn write_answers_that_do_not_decode_are_located() {
    // No `Result` object at all.
    let server = answering("Save", r#"{"Id": 140670}"#).await;
    let result = signed_client(&server)
        .save("X")
        .model(json!({}))
        .send()
        .await;
    assert_eq!(decode_path(result), "Result");

    let server = answering(
        "Push",
        r#"{"Result":{"ResponseStatus":{"IsSuccess":true},"ConvertResponseStatus":{"Errors":5}}}"#,
    )
    .await;
    let result = signed_client(&server)
        .push("SAL_SaleOrder")
        .numbers(["SO1"])
        .target_form("SAL_DELIVERYNOTICE")
        .send()
        .await;
    assert_eq!(decode_path(result), "Result.ConvertResponseStatus.Errors");
}

#[tokio::test]
async fn attachment_answers_that_do_not_decode_are_located() {
    let file = &Attachment::new("SAL_SaleOrder", "100110", "SO1", "a.txt", b"ab".to_vec());
    let upload = |body: &'static str| async move {
        let server = answering("AttachmentUpload", body).await;
        signed_client(&server).upload_attachment(file).await
    };
    assert_eq!(
        decode_path(upload(r#"{"Result":{"ResponseStatus":{"IsSuccess":true}}}"#).await),
        "Result.FileId"
    );
    assert_eq!(
        decode_path(
            upload(r#"{"Result":{"ResponseStatus":{"IsSuccess":true},"FileId":[1]}}"#).await
        ),
        "Result.FileId"
    );

    let download = |body: &'static str| async move {
        let server = answering("AttachmentDownLoad", body).await;
        signed_client(&server).download_attachment("f-1").await
    };
    for body in [
        // Not base64.
        r#"{"Result":{"FilePart":"not base64!","IsLast":true}}"#,
        // Not text.
        r#"{"Result":{"FilePart":[1],"IsLast":true}}"#,
        // An empty chunk that is not the last.
        r#"{"Result":{"FilePart":"","IsLast":false}}"#,
    ] {
        assert_eq!(
            decode_path(download(body).await),
            "Result.FilePart",
            "{body}"
        );
    }
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Entry {
    #[serde(rename = "Qty")]
    qty: f64,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Bill {
    #[serde(rename = "Entries")]
    entries: Vec<Entry>,
}

#[tokio::test]
async fn read_answers_that_do_not_decode_are_located() {
    let server = answering(
        "GetSysReportData",
        r#"{"Result":{"IsSuccess":true,"RowCount":"many","Rows":[]}}"#,
    )
    .await;
    let result = signed_client(&server)
        .report("X")
        .fields(["F"])
        .send()
        .await;
    assert_eq!(decode_path(result), "Result.RowCount");

    let server = answering("GetDataCenterList", r#"[{"Id":"a"},{"Id":["b"]}]"#).await;
    assert_eq!(
        decode_path(signed_client(&server).data_centers().await),
        "[1].Id"
    );

    // A View document decoded into your own type: the path still starts at the answer.
    let server = answering(
        "View",
        r#"{"Result":{"ResponseStatus":null,"Result":{"Entries":[{"Qty":1},{"Qty":"x"}]}}}"#,
    )
    .await;
    let view = signed_client(&server)
        .view("X")
        .number("1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        decode_path(view.decode::<Bill>()),
        "Result.Result.Entries[1].Qty"
    );
}

#[tokio::test]
async fn metadata_that_does_not_decode_is_located() {
    let meta = |body: &'static str| async move {
        let server = answering("QueryBusinessInfo", body).await;
        signed_client(&server).business_info("SAL_SaleOrder").await
    };
    assert_eq!(
        decode_path(meta(r#"{"Result":{"ResponseStatus":null}}"#).await),
        "Result.NeedReturnData"
    );
    // Some servers send the metadata as a JSON string; this one is not JSON.
    assert_eq!(
        decode_path(meta(r#"{"Result":{"NeedReturnData":"{not json"}}"#).await),
        "Result.NeedReturnData"
    );
    assert_eq!(
        decode_path(
            meta(r#"{"Result":{"NeedReturnData":{"Id":"X","Entrys":[{"Key":"FBillHead","Fields":[{"Key":"FBillNo"},{"Key":["x"]}]}]}}}"#)
                .await
        ),
        "Result.NeedReturnData.Entrys[0].Fields[1].Key"
    );
}

#[tokio::test]
async fn a_login_answer_that_does_not_decode_is_located() {
    let server = answering(
        "ValidateUser",
        r#"{"LoginResultType":"yes","Context":null}"#,
    )
    .await;
    let result = password_client(&server).login().await;
    assert_eq!(decode_path(result), "LoginResultType");
}
