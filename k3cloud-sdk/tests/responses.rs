//! Every real response sample in `k3cloud-wire/responses/` decodes to the right typed result or
//! error kind.

mod common;

use chrono::NaiveDateTime;
use common::*;
use k3cloud_sdk::{Error, MsgCode, RowResult};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn serving(method: &str, status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    let service = if method.starts_with("Kingdee.") {
        format!("/k3cloud/{method}.common.kdsvc")
    } else if ["ValidateUser", "LoginByAppSecret", "LoginBySign"].contains(&method) {
        format!("{AUTH}.{method}.common.kdsvc")
    } else {
        format!("{DFS}.{method}.common.kdsvc")
    };
    Mock::given(path(service))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&server)
        .await;
    server
}

fn business(err: &Error) -> &k3cloud_sdk::BusinessError {
    err.business()
        .unwrap_or_else(|| panic!("expected a business error, got {err:?}"))
}

#[tokio::test]
async fn audit_refusal_and_success() {
    let server = serving("Audit", 200, &sample("audit_error_already_audited.json")).await;
    let err = signed_client(&server)
        .audit("SAL_OUTSTOCK")
        .numbers(["TK202504030001"])
        .send()
        .await
        .unwrap_err();
    let b = business(&err);
    assert_eq!(
        (b.msg_code, b.error_code),
        (Some(MsgCode::VALIDATION), Some(500))
    );
    assert_eq!(b.errors.len(), 1);
    assert_eq!(
        b.errors[0].field_name, None,
        "an empty FieldName is no field"
    );
    assert!(b.errors[0].message.contains("单据已经审核"));
    assert!(matches!(&b.rows(1)[..], [RowResult::Failed(e)] if e.len() == 1));
    assert!(!err.is_retryable());

    let server = serving("Audit", 200, &sample("audit_success_with_message.json")).await;
    let ok = signed_client(&server)
        .audit("AR")
        .numbers(["TK202504030001"])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.rows[0].entity().unwrap().id, "105016");
    assert!(ok.status.success_messages[0].message.contains("审核成功"));
}

#[tokio::test]
async fn unaudit_of_two_numbers() {
    let server = serving("UnAudit", 200, &sample("unaudit_two_numbers_success.json")).await;
    let r = signed_client(&server)
        .unaudit("SCG")
        .numbers(["SCGSL004743", "SCGSL004744"])
        .send()
        .await
        .unwrap();
    let numbers: Vec<&str> = r.succeeded().map(|e| e.number.as_str()).collect();
    assert_eq!(numbers, ["SCGSL004743", "SCGSL004744"]);
}

#[tokio::test]
async fn save_samples() {
    let cases = [
        ("save_success.json", "140670", "MBCGRK-2023051500004"),
        ("save_success_fksq.json", "100029", "FKSQ000004"),
        (
            "save_success_old_server_minimal.json",
            "100040",
            "CGRK00016",
        ),
    ];
    for (file, id, number) in cases {
        let server = serving("Save", 200, &sample(file)).await;
        let saved = signed_client(&server)
            .save("STK_InStock")
            .model(json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (saved.id.as_str(), saved.number.as_str()),
            (id, number),
            "{file}"
        );
        assert!(saved.status.is_success, "{file}");
    }

    let server = serving("Save", 200, &sample("save_error_duplicate_number.json")).await;
    let err = signed_client(&server)
        .save("X")
        .model(json!({}))
        .send()
        .await
        .unwrap_err();
    let b = business(&err);
    assert_eq!(b.msg_code, Some(11));
    assert_eq!(b.errors[0].field_name.as_deref(), Some("FBillNo"));
    assert_eq!(b.errors[0].d_index, Some(0));
    assert!(err.to_string().contains("违反字段唯一性要求"), "{err}");

    let server = serving("Save", 200, &sample("save_error_quantity_limit.json")).await;
    let err = signed_client(&server)
        .save("PRD_MO")
        .model(json!({}))
        .send()
        .await
        .unwrap_err();
    let b = business(&err);
    assert_eq!(b.msg_code, None, "this sample has no MsgCode");
    assert_eq!(b.errors[0].field_name.as_deref(), Some("FQTY"));

    let server = serving(
        "Save",
        200,
        &sample("save_error_required_field_old_server.json"),
    )
    .await;
    let err = signed_client(&server)
        .save("STK")
        .model(json!({}))
        .send()
        .await
        .unwrap_err();
    let b = business(&err);
    assert_eq!(b.errors.len(), 2, "every Errors[] entry is kept");
    assert_eq!(
        b.errors[1].field_name.as_deref(),
        Some("AbstractInteractionResult")
    );
    assert!(b.errors.iter().all(|e| e.d_index.is_none()));
    assert!(b.raw.contains("仓库"), "the raw body is kept");
}

#[tokio::test]
async fn query_errors_are_errors_not_rows() {
    let server = serving(
        "ExecuteBillQuery",
        200,
        &sample("executebillquery_error_unknown_field.json"),
    )
    .await;
    let err = signed_client(&server)
        .query("BD_MATERIAL")
        .fields(["FIssueType"])
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(err.msg_code(), Some(MsgCode::FIELD_NOT_FOUND));

    let server = serving(
        "ExecuteBillQuery",
        200,
        &sample("executebillquery_session_lost_wrapped.json"),
    )
    .await;
    let err = signed_client(&server)
        .query("BD_MATERIAL")
        .fields(["FNumber"])
        .send::<Value>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthFailed { .. }), "{err:?}");

    // The live observations list messages and codes; wrapped as the server wraps them.
    let observed = fixture("responses/query_errors_observed_live.json");
    for case in observed["body"].as_array().unwrap() {
        let Some(code) = case["MsgCode"].as_i64() else {
            // Wrong account id: a non-JSON, non-200 answer.
            let server = serving("ExecuteBillQuery", 500, "Fail to verify thirty passport").await;
            let err = signed_client(&server)
                .query("BD_MATERIAL")
                .fields(["FNumber"])
                .send::<Value>()
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Http { status: 500, snippet } if snippet.contains("thirty passport")),
                "{err:?}"
            );
            continue;
        };
        let body = json!([[{"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": false,
            "Errors": [{"FieldName": null, "Message": case["Message"], "DIndex": 0}],
            "SuccessEntitys": [], "SuccessMessages": [], "MsgCode": code}}}]]);
        let server = serving("ExecuteBillQuery", 200, &body.to_string()).await;
        let err = signed_client(&server)
            .query("NO_SUCH_FORM")
            .fields(["FNumber"])
            .send::<Value>()
            .await
            .unwrap_err();
        assert_eq!(err.msg_code(), Some(code), "{}", case["case"]);
        assert_eq!(business(&err).message(), case["Message"].as_str().unwrap());
    }
}

#[tokio::test]
async fn gateway_errors() {
    let sample = fixture("responses/gateway_errors_galaxyapi.json");
    for case in sample["body"].as_array().unwrap() {
        let status = u16::try_from(case["http"].as_u64().unwrap()).unwrap();
        let server = serving("ExecuteBillQuery", status, &case["body"].to_string()).await;
        let err = signed_client(&server)
            .query("BD_MATERIAL")
            .fields(["FNumber"])
            .send::<Value>()
            .await
            .unwrap_err();
        let expected = case["body"]["errcode"].as_i64().unwrap();
        assert!(
            matches!(&err, Error::Gateway { status: 519, errcode, description } if *errcode == expected && description.ends_with("[GW]")),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn session_lost_sample_with_signed_headers_is_auth_failed() {
    let server = serving("Save", 200, &sample("session_lost_msgcode1.json")).await;
    let err = signed_client(&server)
        .save("X")
        .model(json!({}))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::AuthFailed {
                login_result_type: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_auth());
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn doc_templates_with_string_types() {
    let templates = fixture("responses/doc_templates_string_typed.json")["body"].clone();
    let server = serving("Save", 200, templates["Save"].as_str().unwrap()).await;
    let err = signed_client(&server)
        .save("X")
        .model(json!({}))
        .send()
        .await
        .unwrap_err();
    let b = business(&err);
    assert_eq!(
        (b.msg_code, b.error_code),
        (None, None),
        "\"\" codes are absent codes"
    );

    let server = serving("View", 200, templates["View"].as_str().unwrap()).await;
    let err = signed_client(&server)
        .view("X")
        .number("1")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.business().is_some(),
        "IsSuccess \"false\" is a refusal: {err:?}"
    );

    let server = serving(
        "GetSysReportData",
        200,
        templates["GetSysReportData"].as_str().unwrap(),
    )
    .await;
    let page = signed_client(&server)
        .report("R")
        .fields(["F"])
        .send()
        .await
        .unwrap();
    assert_eq!((page.row_count, page.rows.len()), (0, 0));

    let server = serving(
        "QueryBusinessInfo",
        200,
        templates["QueryBusinessInfo"].as_str().unwrap(),
    )
    .await;
    let meta = signed_client(&server).business_info("X").await.unwrap();
    assert!(meta.entries.is_empty());

    let server = serving(
        "WorkflowAudit",
        200,
        templates["WorkflowAudit"].as_str().unwrap(),
    )
    .await;
    let r = signed_client(&server)
        .workflow_audit("X")
        .numbers(["1"])
        .approval(k3cloud_sdk::Approval::Reject)
        .send()
        .await
        .unwrap();
    assert_eq!(r.operation_results, json!("{}"));
}

#[tokio::test]
async fn view_sample_decodes_into_a_typed_struct() {
    #[derive(serde::Deserialize)]
    struct Employee {
        #[serde(rename = "Id")]
        id: i64,
        #[serde(rename = "Number")]
        number: String,
        #[serde(rename = "CreateDate", deserialize_with = "k3cloud_sdk::de::datetime")]
        created: NaiveDateTime,
        #[serde(
            rename = "ForbidDate",
            default,
            deserialize_with = "k3cloud_sdk::de::opt_datetime"
        )]
        forbidden: Option<NaiveDateTime>,
        #[serde(rename = "FModifyDate", deserialize_with = "k3cloud_sdk::de::datetime")]
        modified: NaiveDateTime,
    }
    let server = serving("View", 200, &sample("view_success_empinfo.json")).await;
    let view = signed_client(&server)
        .view("BD_Empinfo")
        .number("001")
        .send()
        .await
        .unwrap();
    let e: Employee = view.decode().unwrap();
    assert_eq!((e.id, e.number.as_str()), (100_024, "001"));
    assert_eq!(e.created.to_string(), "2019-01-06 15:22:26.763");
    assert_eq!(e.modified.to_string(), "2019-02-13 15:46:44.720");
    assert_eq!(e.forbidden, None);
}

#[tokio::test]
async fn validate_user_samples() {
    // v9: KDSVCSessionId present.
    let server = MockServer::start().await;
    let v9 = fixture("responses/validateuser_success_v9.json")["body"].to_string();
    Mock::given(path(format!("{AUTH}.ValidateUser.common.kdsvc")))
        .respond_with(ResponseTemplate::new(200).set_body_string(v9))
        .mount(&server)
        .await;
    Mock::given(path(format!("{DFS}.View.common.kdsvc")))
        .respond_with(json_response(
            r#"{"Result":{"ResponseStatus":null,"Result":{}}}"#,
        ))
        .mount(&server)
        .await;
    let client = password_client(&server);
    let info = client.login().await.unwrap();
    assert_eq!(info.server_version.as_deref(), Some("9.0.553.10"));
    assert_eq!(info.user_id, Some(178_301));
    client.view("X").number("1").send().await.unwrap();
    let view = requests_to(&server, &format!("{DFS}.View.common.kdsvc")).await;
    assert_eq!(
        view[0]
            .headers
            .get("kdservice-sessionid")
            .unwrap()
            .to_str()
            .unwrap(),
        "2c6dfa6c-039b-4b65-b52f-898d3c7c522a"
    );

    // v7: success with a licence warning and KDSVCSessionId null; the session is the cookie.
    // The published text has `xxxxxx` placeholders for numbers; they are filled in here.
    let raw = fixture("responses/validateuser_success_v7_license_warning_null_sessionid.json")
        ["body_raw"]
        .as_str()
        .unwrap()
        .replace("\"UserId\":xxxxxx", "\"UserId\":100008");
    for with_cookie in [true, false] {
        let server = MockServer::start().await;
        let mut answer = ResponseTemplate::new(200).set_body_string(raw.clone());
        if with_cookie {
            answer = answer.append_header("set-cookie", "kdservice-sessionid=from-cookie; path=/");
        }
        Mock::given(path(format!("{AUTH}.ValidateUser.common.kdsvc")))
            .respond_with(answer)
            .mount(&server)
            .await;
        Mock::given(path(format!("{DFS}.View.common.kdsvc")))
            .respond_with(json_response(
                r#"{"Result":{"ResponseStatus":null,"Result":{}}}"#,
            ))
            .mount(&server)
            .await;
        let client = password_client(&server);
        let info = client.login().await.unwrap();
        assert!(info.message.as_deref().unwrap().contains("还剩26天"));
        client.view("X").number("1").send().await.unwrap();
        let view = requests_to(&server, &format!("{DFS}.View.common.kdsvc")).await;
        let sid = view[0]
            .headers
            .get("kdservice-sessionid")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            sid,
            if with_cookie {
                "from-cookie"
            } else {
                "tgxr1ywjh1xycjlpyjdgczeo"
            }
        );
    }

    // The documented failure template: LoginResultType 0.
    let server = serving(
        "ValidateUser",
        200,
        &sample("validateuser_doc_template.json"),
    )
    .await;
    let err = password_client(&server).login().await.unwrap_err();
    assert!(
        matches!(&err, Error::AuthFailed { message, login_result_type: Some(0) } if message == "！"),
        "{err:?}"
    );
}
