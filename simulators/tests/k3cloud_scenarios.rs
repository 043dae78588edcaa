//! Stateful `K3Cloud` scenarios over HTTP: the document life cycle, base-data checks, and
//! sorted paging (whose order is cached between pages and must follow every write).

mod common;

use common::{K3, status};
use std::time::Duration;

use fxk3_simulators::{Clock, K3CloudConfig, Sandbox};
use serde_json::{Value, json};

async fn sandbox_with_base_data() -> Sandbox {
    let sandbox = Sandbox::builder()
        .clock(Clock::frozen_at_secs(1_700_000_000))
        .start()
        .await
        .unwrap();
    sandbox
        .k3cloud_insert(
            "BD_Customer",
            json!({"FNumber": "CUST0001", "FName": "上海示例科技有限公司", "FCreateOrgId": {"FNumber": "100"}}),
        )
        .unwrap();
    sandbox
        .k3cloud_insert(
            "BD_MATERIAL",
            json!({"FNumber": "MAT0001", "FName": "不锈钢法兰", "FCreateOrgId": {"FNumber": "100"}}),
        )
        .unwrap();
    sandbox
}

fn order(customer: &str) -> Value {
    json!({"Model": {
        "FBillTypeID": {"FNumber": "XSDD01_SYS"},
        "FDate": "2023-11-15",
        "FSaleOrgId": {"FNumber": "100"},
        "FCustId": {"FNumber": customer},
        "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE001"}},
        "FSaleOrderEntry": [
            {"FMaterialId": {"FNumber": "MAT0001"}, "FQty": 2, "FTaxPrice": 10.5},
            {"FMaterialId": {"FNumber": "MAT0001"}, "FQty": 1, "FTaxPrice": 4}
        ]
    }})
}

#[tokio::test]
async fn save_query_submit_audit_unaudit() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;

    let saved = k3
        .call("Save", Some("SAL_SaleOrder"), order("CUST0001"))
        .await;
    assert_eq!(status(&saved)["IsSuccess"], true, "{saved}");
    let number = saved["Result"]["Number"].as_str().unwrap().to_string();
    assert_eq!(number, "XSDD000001");
    let id = saved["Result"]["Id"].as_i64().unwrap();

    let query = |status_filter: &str| {
        json!({"FormId": "SAL_SaleOrder",
               "FieldKeys": "FID,FBillNo,FDocumentStatus,FCustId.FNumber,FCustId.FName,FMaterialId.FNumber,FQty,FAllAmount,FBillAllAmount",
               "FilterString": format!("FBillNo = '{number}' {status_filter}"),
               "OrderString": "FSaleOrderEntry_FSeq ASC"})
    };
    let rows = k3.call("ExecuteBillQuery", None, query("")).await;
    assert_eq!(
        rows,
        json!([
            [
                id,
                number,
                "A",
                "CUST0001",
                "上海示例科技有限公司",
                "MAT0001",
                2,
                21.0,
                25.0
            ],
            [
                id,
                number,
                "A",
                "CUST0001",
                "上海示例科技有限公司",
                "MAT0001",
                1,
                4.0,
                25.0
            ]
        ])
    );

    for (method, expected) in [("Submit", "B"), ("Audit", "C")] {
        let answer = k3
            .call(method, Some("SAL_SaleOrder"), json!({"Numbers": [number]}))
            .await;
        assert_eq!(status(&answer)["IsSuccess"], true, "{method}: {answer}");
        assert_eq!(status(&answer)["SuccessEntitys"][0]["Number"], number);
        let rows = k3
            .call(
                "ExecuteBillQuery",
                None,
                query(&format!("and FDocumentStatus = '{expected}'")),
            )
            .await;
        assert_eq!(rows.as_array().unwrap().len(), 2, "{method}: {rows}");
    }

    // Audited: a second Audit and an update are refused.
    let again = k3
        .call("Audit", Some("SAL_SaleOrder"), json!({"Numbers": [number]}))
        .await;
    assert_eq!(status(&again)["IsSuccess"], false);
    assert_eq!(
        status(&again)["Errors"][0]["Message"],
        format!("单据编号为“{number}”的销售订单，单据已经审核！")
    );
    let update = k3
        .call(
            "Save",
            Some("SAL_SaleOrder"),
            json!({"Model": {"FID": id, "FNote": "改"}}),
        )
        .await;
    assert_eq!(status(&update)["IsSuccess"], false, "{update}");

    let unaudit = k3
        .call(
            "UnAudit",
            Some("SAL_SaleOrder"),
            json!({"Numbers": [number]}),
        )
        .await;
    assert_eq!(status(&unaudit)["IsSuccess"], true, "{unaudit}");
    let view = k3
        .call("View", Some("SAL_SaleOrder"), json!({"Number": number}))
        .await;
    assert_eq!(view["Result"]["Result"]["DocumentStatus"], "D");
    assert_eq!(
        sandbox.k3cloud_record("SAL_SaleOrder", &number).unwrap()["DocumentStatus"],
        "D"
    );

    // Re-audit path after UnAudit: D → B → C.
    for method in ["Submit", "Audit"] {
        let answer = k3
            .call(method, Some("SAL_SaleOrder"), json!({"Numbers": [number]}))
            .await;
        assert_eq!(status(&answer)["IsSuccess"], true, "{method}: {answer}");
    }
    assert_eq!(sandbox.calls("k3cloud:Save"), 2);
    assert_eq!(sandbox.calls("k3cloud:ExecuteBillQuery"), 3);
    assert_eq!(sandbox.calls("k3cloud:Audit"), 3);
}

#[tokio::test]
async fn an_order_for_an_unknown_customer_is_rejected_with_the_real_message() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;
    let answer = k3
        .call("Save", Some("SAL_SaleOrder"), order("NO-SUCH-CUSTOMER"))
        .await;
    let st = status(&answer);
    assert_eq!(st["IsSuccess"], false, "{answer}");
    assert_eq!(st["MsgCode"], 11);
    assert_eq!(st["Errors"][0]["FieldName"], "FCustId");
    assert_eq!(st["Errors"][0]["Message"], "字段“客户”是必填项");
    assert_eq!(answer["Result"]["Id"], "");
    assert!(sandbox.k3cloud_records("SAL_SaleOrder").is_empty());

    // A forbidden customer does not resolve either.
    let body =
        json!({"formid": "BD_Customer", "opNumber": "Forbid", "data": {"Numbers": ["CUST0001"]}});
    let text = k3
        .request("ExcuteOperation", &body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\"IsSuccess\":true"), "{text}");
    let answer = k3
        .call("Save", Some("SAL_SaleOrder"), order("CUST0001"))
        .await;
    assert_eq!(
        status(&answer)["Errors"][0]["Message"],
        "字段“客户”是必填项"
    );
}

#[tokio::test]
async fn sorted_pages_are_consistent_and_follow_writes() {
    let sandbox = sandbox_with_base_data().await;
    // Names in an order unrelated to the numbers (and so to storage order).
    for i in 0..250u32 {
        let name = format!("客户{:03}", (i * 97) % 250);
        sandbox
            .k3cloud_insert(
                "BD_Customer",
                json!({"FNumber": format!("C{i:04}"), "FName": name, "FCreateOrgId": {"FNumber": "100"},
                       "FTEL": if i % 3 == 0 { "021" } else { "010" }}),
            )
            .unwrap();
    }
    let k3 = K3::login(&sandbox).await;
    let page = |start: usize, filter: &str| {
        json!({"FormId": "BD_Customer", "FieldKeys": "FNumber,FName", "FilterString": filter,
               "OrderString": "FName DESC, FNumber ASC", "StartRow": start, "Limit": 100})
    };
    let mut all = Vec::new();
    for start in [0, 100, 200] {
        let rows = k3
            .call(
                "ExecuteBillQuery",
                None,
                page(start, "FNumber like 'C____'"),
            )
            .await;
        all.extend(rows.as_array().unwrap().iter().cloned());
    }
    assert_eq!(all.len(), 250);
    let names: Vec<&str> = all.iter().map(|r| r[1].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted);

    // A filter over the cached order: only the "021" customers, still sorted.
    let rows = k3
        .call("ExecuteBillQuery", None, page(0, "FTEL = '021'"))
        .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 84);
    assert!(
        rows.windows(2)
            .all(|w| w[0][1].as_str() >= w[1][1].as_str())
    );

    // A write changes the order: the new customer sorts first.
    let saved = k3
        .call(
            "Save",
            Some("BD_Customer"),
            json!({"Model": {"FNumber": "C9999", "FName": "客户999", "FCreateOrgId": {"FNumber": "100"}}}),
        )
        .await;
    assert_eq!(status(&saved)["IsSuccess"], true, "{saved}");
    let rows = k3
        .call("ExecuteBillQuery", None, page(0, "FNumber like 'C____'"))
        .await;
    assert_eq!(rows[0], json!(["C9999", "客户999"]));

    // TopRowCount is an absolute end row; StartRow past the end gives nothing.
    let top = k3
        .call(
            "ExecuteBillQuery",
            None,
            json!({"FormId": "BD_Customer", "FieldKeys": "FNumber", "OrderString": "FNumber",
                   "StartRow": 10, "Limit": 100, "TopRowCount": 15}),
        )
        .await;
    assert_eq!(top.as_array().unwrap().len(), 5);
    let past = k3
        .call(
            "ExecuteBillQuery",
            None,
            json!({"FormId": "BD_Customer", "FieldKeys": "FNumber", "StartRow": 5000, "Limit": 100}),
        )
        .await;
    assert_eq!(past, json!([]));
}

/// Saves an order with a note and two lines; answers its id and the two entry ids.
async fn order_with_two_lines(k3: &K3) -> (i64, i64, i64) {
    let mut packet = order("CUST0001");
    packet["Model"]["FNote"] = json!("原备注");
    let saved = k3.call("Save", Some("SAL_SaleOrder"), packet).await;
    assert_eq!(status(&saved)["IsSuccess"], true, "{saved}");
    let id = saved["Result"]["Id"].as_i64().unwrap();
    let rows = k3
        .call(
            "ExecuteBillQuery",
            None,
            json!({"FormId": "SAL_SaleOrder", "FieldKeys": "FSaleOrderEntry_FEntryID",
                   "FilterString": format!("FID = {id}"), "OrderString": "FSaleOrderEntry_FSeq"}),
        )
        .await;
    (
        id,
        rows[0][0].as_i64().unwrap(),
        rows[1][0].as_i64().unwrap(),
    )
}

/// The head and the lines of an order, as `ExecuteBillQuery` reports them.
async fn order_state(k3: &K3, id: i64) -> Value {
    k3.call(
        "ExecuteBillQuery",
        None,
        json!({"FormId": "SAL_SaleOrder",
               "FieldKeys": "FBillNo,FDocumentStatus,FNote,FDate,FCustId.FNumber,FSaleOrderEntry_FEntryID,FQty,FTaxPrice,FAllAmount,FBillAllAmount",
               "FilterString": format!("FID = {id}"), "OrderString": "FSaleOrderEntry_FSeq"}),
    )
    .await
}

#[tokio::test]
async fn need_update_fields_changes_only_the_listed_fields() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;
    let (id, line1, line2) = order_with_two_lines(&k3).await;

    // FDate and FTaxPrice are in the packet but not listed: they stay as they were. The
    // status in the packet is the server's and is ignored.
    let answer = k3
        .call(
            "Save",
            Some("SAL_SaleOrder"),
            json!({"NeedUpDateFields": ["FNote", "FSaleOrderEntry", "FQty"], "IsDeleteEntry": false,
                   "Model": {"FID": id, "FNote": "改", "FDate": "2024-01-01", "FDocumentStatus": "C",
                             "FSaleOrderEntry": [{"FEntryID": line1, "FQty": 5, "FTaxPrice": 99}]}}),
        )
        .await;
    assert_eq!(status(&answer)["IsSuccess"], true, "{answer}");
    assert_eq!(answer["Result"]["Id"], id);
    assert_eq!(answer["Result"]["Number"], "XSDD000001");
    assert_eq!(
        order_state(&k3, id).await,
        json!([
            [
                "XSDD000001",
                "A",
                "改",
                "2023-11-15T00:00:00",
                "CUST0001",
                line1,
                5,
                10.5,
                52.5,
                56.5
            ],
            [
                "XSDD000001",
                "A",
                "改",
                "2023-11-15T00:00:00",
                "CUST0001",
                line2,
                1,
                4,
                4.0,
                56.5
            ]
        ])
    );

    // IsDeleteEntry true (the default) in a partial update: the line not sent is deleted.
    let answer = k3
        .call(
            "Save",
            Some("SAL_SaleOrder"),
            json!({"NeedUpDateFields": ["FSaleOrderEntry", "FQty"],
                   "Model": {"FID": id, "FSaleOrderEntry": [{"FEntryID": line2, "FQty": 3}]}}),
        )
        .await;
    assert_eq!(status(&answer)["IsSuccess"], true, "{answer}");
    assert_eq!(
        order_state(&k3, id).await,
        json!([[
            "XSDD000001",
            "A",
            "改",
            "2023-11-15T00:00:00",
            "CUST0001",
            line2,
            3,
            4,
            12.0,
            12.0
        ]])
    );
}

#[tokio::test]
async fn a_full_save_of_an_existing_bill_replaces_what_it_does_not_send() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;
    let (id, line1, _line2) = order_with_two_lines(&k3).await;
    let created = sandbox
        .k3cloud_record("SAL_SaleOrder", "XSDD000001")
        .unwrap();
    // A day later (a new session: the old one has expired).
    sandbox
        .clock()
        .advance(std::time::Duration::from_secs(86_400));
    let k3 = K3::login(&sandbox).await;

    // No NeedUpDateFields: FNote is left out (cleared), line 1 is sent without its price
    // (cleared, so no amount either), line 2 is not sent (deleted: IsDeleteEntry defaults to
    // true). FDate goes back to its default, the day of the save. FBillNo and FDocumentStatus
    // in the packet cannot change the server's number and status.
    let answer = k3
        .call(
            "Save",
            Some("SAL_SaleOrder"),
            json!({"Model": {"FID": id, "FDocumentStatus": "C", "FCustId": {"FNumber": "CUST0001"},
                             "FSaleOrderEntry": [{"FEntryID": line1, "FMaterialId": {"FNumber": "MAT0001"}, "FQty": 3}]}}),
        )
        .await;
    assert_eq!(status(&answer)["IsSuccess"], true, "{answer}");
    assert_eq!(answer["Result"]["Number"], "XSDD000001");
    assert_eq!(
        order_state(&k3, id).await,
        json!([[
            "XSDD000001",
            "A",
            null,
            "2023-11-16T00:00:00",
            "CUST0001",
            line1,
            3,
            null,
            null,
            0.0
        ]])
    );
    // The server's fields survive: id, number, status, creation date; the sale org went back
    // to the context's organisation, as on a new bill.
    let view = k3
        .call("View", Some("SAL_SaleOrder"), json!({"Id": id}))
        .await;
    let bill = &view["Result"]["Result"];
    assert_eq!(bill["Id"], id);
    assert_eq!(bill["BillNo"], "XSDD000001");
    assert_eq!(bill["DocumentStatus"], "A");
    assert_eq!(bill["CreateDate"], created["CreateDate"]);
    assert_ne!(bill["ModifyDate"], created["ModifyDate"]);
    assert_eq!(bill["SaleOrgId"]["Number"], "100");
    assert!(bill.get("Note").is_none(), "{bill}");

    // A full save that leaves out a required field fails like a new bill would.
    let answer = k3
        .call(
            "Save",
            Some("SAL_SaleOrder"),
            json!({"Model": {"FID": id, "FNote": "无客户"}}),
        )
        .await;
    assert_eq!(status(&answer)["IsSuccess"], false, "{answer}");
    assert_eq!(
        status(&answer)["Errors"][0]["Message"],
        "字段“客户”是必填项"
    );
}

#[tokio::test]
async fn is_delete_entry_false_keeps_the_lines_not_sent() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;
    let (id, line1, line2) = order_with_two_lines(&k3).await;

    // A full save with IsDeleteEntry false: line 2 is kept as it was, line 1 is replaced by
    // what is sent (in its place), and a row without FEntryID is a new line at the end.
    let answer = k3
        .call(
            "Save",
            Some("SAL_SaleOrder"),
            json!({"IsDeleteEntry": false,
                   "Model": {"FID": id, "FCustId": {"FNumber": "CUST0001"}, "FNote": "保留",
                             "FSaleOrderEntry": [
                                 {"FEntryID": line1, "FMaterialId": {"FNumber": "MAT0001"}, "FQty": 7, "FTaxPrice": 2},
                                 {"FMaterialId": {"FNumber": "MAT0001"}, "FQty": 1, "FTaxPrice": 1}]}}),
        )
        .await;
    assert_eq!(status(&answer)["IsSuccess"], true, "{answer}");
    let state = order_state(&k3, id).await;
    let rows: Vec<(i64, i64, f64)> = state
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[5].as_i64().unwrap(),
                r[6].as_i64().unwrap(),
                r[8].as_f64().unwrap(),
            )
        })
        .collect();
    let new_line = rows[2].0;
    assert!(new_line != line1 && new_line != line2);
    assert_eq!(
        rows,
        vec![(line1, 7, 14.0), (line2, 1, 4.0), (new_line, 1, 1.0)]
    );
    assert_eq!(state[0][2], "保留");
    assert_eq!(state[0][9], 19.0);

    // The same save with IsDeleteEntry true: only the lines sent are left.
    let answer = k3
        .call(
            "Save",
            Some("SAL_SaleOrder"),
            json!({"IsDeleteEntry": true,
                   "Model": {"FID": id, "FCustId": {"FNumber": "CUST0001"},
                             "FSaleOrderEntry": [{"FEntryID": line1, "FMaterialId": {"FNumber": "MAT0001"}, "FQty": 7, "FTaxPrice": 2}]}}),
        )
        .await;
    assert_eq!(status(&answer)["IsSuccess"], true, "{answer}");
    let state = order_state(&k3, id).await;
    assert_eq!(state.as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state[0][5], line1);
}

/// One status operation on one bill number.
async fn op(k3: &K3, method: &str, number: &str) -> Value {
    k3.call(method, Some("SAL_SaleOrder"), json!({"Numbers": [number]}))
        .await
}

/// The error envelope of a refused status move, as the real sample
/// `responses/audit_error_already_audited.json` has it (`FieldName` empty, `MsgCode` 11).
fn refused(message: &str) -> Value {
    json!({"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": false,
        "Errors": [{"FieldName": "", "Message": message, "DIndex": 0}],
        "SuccessEntitys": [], "SuccessMessages": [], "MsgCode": 11}}})
}

/// The success envelope of a status move (`responses/unaudit_two_numbers_success.json`).
fn moved(id: i64, number: &str) -> Value {
    json!({"Result": {"ResponseStatus": {"IsSuccess": true, "Errors": [],
        "SuccessEntitys": [{"Id": id, "Number": number, "DIndex": 0}],
        "SuccessMessages": [], "MsgCode": 0}}})
}

async fn document_status(k3: &K3, number: &str) -> Value {
    let view = k3
        .call("View", Some("SAL_SaleOrder"), json!({"Number": number}))
        .await;
    view["Result"]["Result"]["DocumentStatus"].clone()
}

#[tokio::test]
async fn the_document_status_machine() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;

    // Draft: Z (暂存), without the required-field checks (no customer here).
    let mut draft = order("CUST0001");
    draft["Model"].as_object_mut().unwrap().remove("FCustId");
    let answer = k3.call("Draft", Some("SAL_SaleOrder"), draft.clone()).await;
    assert_eq!(status(&answer)["IsSuccess"], true, "{answer}");
    let id = answer["Result"]["Id"].as_i64().unwrap();
    let number = "XSDD000001";
    assert_eq!(answer["Result"]["Number"], number);
    assert_eq!(document_status(&k3, number).await, "Z");

    // A draft can be neither submitted nor audited nor un-audited.
    assert_eq!(
        op(&k3, "Submit", number).await,
        refused("单据编号为“XSDD000001”的销售订单，暂存的单据不能提交，请先保存！")
    );
    assert_eq!(
        op(&k3, "Audit", number).await,
        refused("单据编号为“XSDD000001”的销售订单，单据不是审核中状态，不能审核！")
    );
    assert_eq!(
        op(&k3, "UnAudit", number).await,
        refused("单据编号为“XSDD000001”的销售订单，单据未审核，不能反审核！")
    );
    assert_eq!(document_status(&k3, number).await, "Z");

    // Saving the draft (now complete) makes it A (创建).
    let mut complete = order("CUST0001");
    complete["Model"]["FID"] = json!(id);
    let answer = k3.call("Save", Some("SAL_SaleOrder"), complete).await;
    assert_eq!(status(&answer)["IsSuccess"], true, "{answer}");
    assert_eq!(document_status(&k3, number).await, "A");
    assert_eq!(
        op(&k3, "Audit", number).await,
        refused("单据编号为“XSDD000001”的销售订单，单据不是审核中状态，不能审核！")
    );

    // A → B (审核中): neither deleted nor changed; CancelAssign takes it back to A.
    assert_eq!(op(&k3, "Submit", number).await, moved(id, number));
    assert_eq!(document_status(&k3, number).await, "B");
    assert_eq!(
        op(&k3, "Submit", number).await,
        refused("单据编号为“XSDD000001”的销售订单，单据已经提交！")
    );
    assert_eq!(
        op(&k3, "Delete", number).await,
        refused("单据编号为“XSDD000001”的销售订单，单据正在审核中，不能删除！")
    );
    let edit = k3
        .call(
            "Save",
            Some("SAL_SaleOrder"),
            json!({"NeedUpDateFields": ["FNote"], "Model": {"FID": id, "FNote": "改"}}),
        )
        .await;
    assert_eq!(status(&edit)["MsgCode"], 11, "{edit}");
    assert_eq!(
        status(&edit)["Errors"][0]["Message"],
        "单据编号为“XSDD000001”的销售订单，审核中状态的单据不允许修改！"
    );
    assert_eq!(op(&k3, "CancelAssign", number).await, moved(id, number));
    assert_eq!(document_status(&k3, number).await, "A");

    // A → B → C (已审核): an audited bill cannot be deleted, audited again or submitted.
    assert_eq!(op(&k3, "Submit", number).await, moved(id, number));
    assert_eq!(op(&k3, "Audit", number).await, moved(id, number));
    assert_eq!(document_status(&k3, number).await, "C");
    for method in ["Delete", "Audit", "Submit"] {
        assert_eq!(
            op(&k3, method, number).await,
            refused("单据编号为“XSDD000001”的销售订单，单据已经审核！"),
            "{method}"
        );
    }

    // C → D (重新审核, k3cloud.md §6) by UnAudit; D cannot be un-audited again, but can be
    // deleted.
    assert_eq!(op(&k3, "UnAudit", number).await, moved(id, number));
    assert_eq!(document_status(&k3, number).await, "D");
    assert_eq!(
        op(&k3, "UnAudit", number).await,
        refused("单据编号为“XSDD000001”的销售订单，单据未审核，不能反审核！")
    );
    assert_eq!(op(&k3, "Delete", number).await, moved(id, number));
    assert!(sandbox.k3cloud_record("SAL_SaleOrder", number).is_none());
    let gone = op(&k3, "Delete", number).await;
    assert_eq!(status(&gone)["MsgCode"], 10, "{gone}");

    // Drafts and fresh bills (A) can be deleted.
    let answer = k3.call("Draft", Some("SAL_SaleOrder"), draft).await;
    let draft_number = answer["Result"]["Number"].as_str().unwrap().to_string();
    let draft_id = answer["Result"]["Id"].as_i64().unwrap();
    assert_eq!(
        op(&k3, "Delete", &draft_number).await,
        moved(draft_id, &draft_number)
    );
    let answer = k3
        .call("Save", Some("SAL_SaleOrder"), order("CUST0001"))
        .await;
    let fresh = answer["Result"]["Number"].as_str().unwrap().to_string();
    let fresh_id = answer["Result"]["Id"].as_i64().unwrap();
    assert_eq!(op(&k3, "Delete", &fresh).await, moved(fresh_id, &fresh));
    assert!(sandbox.k3cloud_records("SAL_SaleOrder").is_empty());
}

#[tokio::test]
async fn a_generic_form_saves_views_and_queries() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;
    // BD_Supplier has no seeded data and no modelled fields: any fields are kept.
    let answer = k3
        .call(
            "Save",
            Some("BD_Supplier"),
            json!({"Model": {"FNumber": "SUP001", "FName": "示例供应商", "FShortName": "示例",
                             "FCreateOrgId": {"FNumber": "100"}}}),
        )
        .await;
    assert_eq!(status(&answer)["IsSuccess"], true, "{answer}");
    let id = answer["Result"]["Id"].as_i64().unwrap();
    assert_eq!(answer["Result"]["Number"], "SUP001");

    let view = k3
        .call("View", Some("BD_Supplier"), json!({"Number": "SUP001"}))
        .await;
    // A current server's View answers a full status (`K3Release::Current`, the default).
    assert_eq!(status(&view)["IsSuccess"], true, "{view}");
    assert_eq!(status(&view)["Errors"], json!([]), "{view}");
    assert_eq!(view["Result"]["Result"]["Id"], id);
    assert_eq!(view["Result"]["Result"]["Number"], "SUP001");
    assert_eq!(view["Result"]["Result"]["DocumentStatus"], "A");

    let rows = k3
        .call(
            "ExecuteBillQuery",
            None,
            json!({"FormId": "BD_Supplier", "FieldKeys": "FNumber,FName,FShortName",
                   "FilterString": "FShortName = '示例'"}),
        )
        .await;
    assert_eq!(rows, json!([["SUP001", "示例供应商", "示例"]]));
    let rows = k3
        .call(
            "BillQuery",
            None,
            json!({"FormId": "bd_supplier", "FieldKeys": "FNumber,FShortName"}),
        )
        .await;
    assert_eq!(rows, json!([{"FNumber": "SUP001", "FShortName": "示例"}]));

    // A FormId the reference does not name is not a business object.
    let answer = k3
        .call(
            "Save",
            Some("NO_SUCH_FORM"),
            json!({"Model": {"FName": "x"}}),
        )
        .await;
    assert_eq!(status(&answer)["MsgCode"], 4, "{answer}");
    assert_eq!(
        status(&answer)["Errors"][0]["Message"],
        "标识为“NO_SUCH_FORM”的业务对象不存在，或者被删除。"
    );
}

/// Moves the sandbox clock through the control API, as a test in another language would.
async fn advance_over_http(sandbox: &Sandbox, ms: u64) {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/__sandbox/clock", sandbox.base_url()))
        .json(&json!({ "advance_ms": ms }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["now_ms"], sandbox.clock().now_ms(), "{answer}");
}

#[tokio::test]
async fn a_session_expires_after_the_configured_idle_time() {
    let sandbox = Sandbox::builder()
        .clock(Clock::frozen_at_secs(1_700_000_000))
        .k3cloud(K3CloudConfig {
            session_ttl: Duration::from_secs(60),
            ..K3CloudConfig::default()
        })
        .start()
        .await
        .unwrap();
    let k3 = K3::login(&sandbox).await;
    let query = json!({"FormId": "BD_Currency", "FieldKeys": "FNumber", "OrderString": "FNumber", "Limit": 1});
    let save = json!({"Model": {"FNumber": "C1", "FName": "客户1"}});

    // Idle expiry: every call within the TTL restarts the timer.
    for _ in 0..3 {
        advance_over_http(&sandbox, 59_000).await;
        let rows = k3.call("ExecuteBillQuery", None, query.clone()).await;
        assert_eq!(rows, json!([["PRE001"]]));
    }
    advance_over_http(&sandbox, 60_001).await;
    let lost = json!({"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": false,
        "Errors": [{"FieldName": null, "Message": "会话信息已丢失，请重新登录", "DIndex": 0}],
        "SuccessEntitys": [], "SuccessMessages": [], "MsgCode": 1}}});
    // A query wraps the envelope in two arrays (responses/executebillquery_session_lost_wrapped.json).
    assert_eq!(
        k3.call("ExecuteBillQuery", None, query.clone()).await,
        json!([[lost]])
    );
    // The session is gone for good: a write is refused too, and nothing is written.
    assert_eq!(
        k3.call("Save", Some("BD_Customer"), save.clone()).await,
        lost
    );
    assert!(sandbox.k3cloud_records("BD_Customer").is_empty());

    // A new login works again.
    let k3 = K3::login(&sandbox).await;
    let saved = k3.call("Save", Some("BD_Customer"), save).await;
    assert_eq!(status(&saved)["IsSuccess"], true, "{saved}");
}

#[tokio::test]
async fn query_pages_are_capped_at_the_configured_maximum() {
    let sandbox = Sandbox::builder()
        .clock(Clock::frozen_at_secs(1_700_000_000))
        .k3cloud(K3CloudConfig {
            max_query_rows: 50,
            ..K3CloudConfig::default()
        })
        .start()
        .await
        .unwrap();
    for i in 0..120 {
        sandbox
            .k3cloud_insert(
                "BD_Customer",
                json!({"FNumber": format!("C{i:03}"), "FName": format!("客户{i}")}),
            )
            .unwrap();
    }
    let k3 = K3::login(&sandbox).await;
    let page = |start: usize, limit: usize| {
        json!({"FormId": "BD_Customer", "FieldKeys": "FNumber", "OrderString": "FNumber",
               "StartRow": start, "Limit": limit})
    };
    let numbers = |rows: &Value| -> Vec<String> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_str().unwrap().to_string())
            .collect()
    };
    // Limit 0 (no page size) and a Limit above the cap both stop at the cap.
    for limit in [0, 100, 50] {
        let rows = k3.call("ExecuteBillQuery", None, page(0, limit)).await;
        let rows = numbers(&rows);
        assert_eq!(rows.len(), 50, "Limit {limit}");
        assert_eq!((rows[0].as_str(), rows[49].as_str()), ("C000", "C049"));
    }
    let rows = k3.call("ExecuteBillQuery", None, page(0, 10)).await;
    assert_eq!(numbers(&rows).len(), 10);
    // Paging on with StartRow reaches every row, the last page short.
    let rows = k3.call("ExecuteBillQuery", None, page(100, 100)).await;
    assert_eq!(
        numbers(&rows),
        (100..120).map(|i| format!("C{i}")).collect::<Vec<_>>()
    );
    // BillQuery has the same cap.
    let rows = k3.call("BillQuery", None, page(0, 0)).await;
    assert_eq!(rows.as_array().unwrap().len(), 50);
    assert_eq!(rows[49], json!({"FNumber": "C049"}));
}

#[tokio::test]
async fn filter_strings_over_http() {
    let sandbox = Sandbox::builder()
        .clock(Clock::frozen_at_secs(1_700_000_000))
        .start()
        .await
        .unwrap();
    for (number, name, tel) in [
        ("C001", "上海甲", Some("021")),
        ("C002", "北京乙", Some("010")),
        ("C003", "上海丙", Some("021")),
        ("C004", "广州丁", Some("020")),
        ("C005", "深圳戊", None),
    ] {
        sandbox
            .k3cloud_insert(
                "BD_Customer",
                json!({"FNumber": number, "FName": name, "FTEL": tel}),
            )
            .unwrap();
    }
    for (number, date) in [
        ("SO1", "2023-11-01"),
        ("SO2", "2023-11-15 00:00:00"),
        ("SO3", "2023-12-01T00:00:00"),
    ] {
        sandbox
            .k3cloud_insert(
                "SAL_SaleOrder",
                json!({"FBillNo": number, "FDate": date, "FCustId": {"FNumber": "C001"}}),
            )
            .unwrap();
    }
    let k3 = K3::login(&sandbox).await;
    let numbers = async |form: &str, key: &str, filter: &str| -> Value {
        k3.call(
            "ExecuteBillQuery",
            None,
            json!({"FormId": form, "FieldKeys": key, "FilterString": filter, "OrderString": key}),
        )
        .await
    };
    for (filter, expected) in [
        (
            "FNumber in ('C001','C004', 'C999')",
            json!([["C001"], ["C004"]]),
        ),
        (
            "FNumber not in ('C001','C002')",
            json!([["C003"], ["C004"], ["C005"]]),
        ),
        ("FTEL = '010' or FTEL = '020'", json!([["C002"], ["C004"]])),
        // AND binds tighter than OR; parentheses change that.
        (
            "FTEL = '021' and FName like '%甲' or FNumber = 'C002'",
            json!([["C001"], ["C002"]]),
        ),
        (
            "FTEL = '021' and (FName like '%甲' or FNumber = 'C002')",
            json!([["C001"]]),
        ),
        (
            "(FName like '%乙' or FName like '%丁') and not FNumber = 'C004'",
            json!([["C002"]]),
        ),
        ("FName like '上海%'", json!([["C001"], ["C003"]])),
        (
            "FName not like '%海%'",
            json!([["C002"], ["C004"], ["C005"]]),
        ),
        (
            "FNumber like 'C00_' and FTEL is not null",
            json!([["C001"], ["C002"], ["C003"], ["C004"]]),
        ),
        ("FTEL is null", json!([["C005"]])),
        ("FTEL <> '021'", json!([["C002"], ["C004"]])),
    ] {
        assert_eq!(
            numbers("BD_Customer", "FNumber", filter).await,
            expected,
            "{filter}"
        );
    }
    // Date literals, with or without a time, compare as dates.
    for (filter, expected) in [
        ("FDate >= '2023-11-15'", json!([["SO2"], ["SO3"]])),
        ("FDate = '2023-11-15 00:00:00'", json!([["SO2"]])),
        (
            "FDate between '2023-11-01' and '2023-11-30'",
            json!([["SO1"], ["SO2"]]),
        ),
        (
            "FDate < '2023-11-15' or FDate > '2023-11-30'",
            json!([["SO1"], ["SO3"]]),
        ),
        (
            "FCustId.FNumber = 'C001' and FCreateDate >= '2023-11-14'",
            json!([["SO1"], ["SO2"], ["SO3"]]),
        ),
    ] {
        assert_eq!(
            numbers("SAL_SaleOrder", "FBillNo", filter).await,
            expected,
            "{filter}"
        );
    }

    // What the sandbox does not understand is refused, naming the construct, in the query
    // error shape (MsgCode 4 "GetRealExpress error…", responses/query_errors_observed_live.json).
    let refused = |message: &str| {
        json!([[{"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": false,
            "Errors": [{"FieldName": null, "Message": message, "DIndex": 0}],
            "SuccessEntitys": [], "SuccessMessages": [], "MsgCode": 4}}}]])
    };
    assert_eq!(
        numbers("SAL_SaleOrder", "FBillNo", "FDate > getdate").await,
        refused(
            "GetRealExpress error: sandbox 只支持常量作比较值，不支持 “getdate”（函数和字段比较不在支持的子集内）"
        )
    );
    assert_eq!(
        numbers("BD_Customer", "FNumber", "FNumber = 'C00' + '1'").await,
        refused("GetRealExpress error: sandbox 不支持的字符 “+”")
    );
    let answer = numbers("BD_Customer", "FNumber", "FNumber = 'C001").await;
    assert_eq!(
        answer[0][0]["Result"]["ResponseStatus"]["MsgCode"], 4,
        "{answer}"
    );
    // An unknown field is MsgCode 9, as on a real server.
    let answer = numbers("BD_Customer", "FNumber", "FNoSuchField = 1").await;
    assert_eq!(
        answer[0][0]["Result"]["ResponseStatus"]["Errors"][0]["Message"],
        "元数据中标识为FNoSuchField的字段不存在"
    );
    assert_eq!(answer[0][0]["Result"]["ResponseStatus"]["MsgCode"], 9);
}

/// Every form the sandbox serves: the modelled ones and the generic ones (README).
const FORMS: &[&str] = &[
    "BD_MATERIAL",
    "BD_Customer",
    "BD_Empinfo",
    "BD_Currency",
    "ORG_Organizations",
    "SAL_SaleOrder",
    "SAL_OUTSTOCK",
    "BD_Supplier",
    "BD_Department",
    "BD_CommonContact",
    "BD_UNIT",
    "BD_STOCK",
    "BD_Saler",
    "BOS_BillType",
    "BOS_ASSISTANTDATA_DETAIL",
    "BD_TaxRate",
    "BD_CustomerGroup",
    "BD_FLEXSITEMDETAILV",
    "SAL_DELIVERYNOTICE",
    "PUR_PurchaseOrder",
    "STK_InStock",
    "STK_Inventory",
    "STK_MISCELLANEOUS",
    "STK_MisDelivery",
    "STK_TransferDirect",
    "STK_AssembledApp",
    "PRD_MO",
    "PRD_INSTOCK",
    "PRD_PPBOM",
    "ENG_BOM",
    "GL_VOUCHER",
    "AP_PAYBILL",
    "AR_RECEIVEBILL",
    "ER_ExpReimbursement",
    "ER_ExpenseRequest",
    "IOS_PriceList",
];

/// `QueryBusinessInfo` of a form: its `NeedReturnData`.
async fn business_info(k3: &K3, form: &str) -> Value {
    let answer = k3
        .call("QueryBusinessInfo", None, json!({"FormId": form}))
        .await;
    answer["Result"]["NeedReturnData"].clone()
}

/// (entity, field) → the form a reference field looks up, for every reference field.
fn lookups(info: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for entity in info["Entrys"].as_array().unwrap() {
        for field in entity["Fields"].as_array().unwrap() {
            if let Some(target) = field["LookUpObjectFormId"].as_str() {
                assert_eq!(field["FieldType"], "BaseDataField", "{field}");
                out.push((
                    entity["Key"].as_str().unwrap().to_string(),
                    field["Key"].as_str().unwrap().to_string(),
                    target.to_string(),
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn query_business_info_describes_every_form_and_where_references_point() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;
    let mut targets = Vec::new();
    for form in FORMS {
        // FormIds are case-insensitive; the answer names the canonical one.
        let info = business_info(&k3, &form.to_ascii_lowercase()).await;
        assert_eq!(info["Id"], *form, "{info}");
        let head = &info["Entrys"][0];
        assert_eq!(head["Key"], "FBillHead", "{form}");
        assert_eq!(head["Fields"][0]["Key"], info["PkFieldName"], "{form}");
        assert_eq!(head["Fields"][0]["FieldType"], "PKField", "{form}");
        targets.extend(lookups(&info).into_iter().map(|(_, _, t)| t));
    }
    // Every form a reference points to is itself described.
    targets.sort();
    targets.dedup();
    for target in &targets {
        assert!(FORMS.contains(&target.as_str()), "{target}");
    }

    let order = business_info(&k3, "SAL_SaleOrder").await;
    let expected: Vec<(String, String, String)> = [
        ("FBillHead", "FBillTypeID", "BOS_BillType"),
        ("FBillHead", "FSaleOrgId", "ORG_Organizations"),
        ("FBillHead", "FCustId", "BD_Customer"),
        ("FBillHead", "FReceiveId", "BD_Customer"),
        ("FBillHead", "FSettleId", "BD_Customer"),
        ("FBillHead", "FChargeId", "BD_Customer"),
        ("FBillHead", "FSalerId", "BD_Empinfo"),
        ("FBillHead", "FSaleDeptId", "BD_Department"),
        ("FBillHead", "FSettleCurrId", "BD_Currency"),
        ("FSaleOrderEntry", "FMaterialId", "BD_MATERIAL"),
        ("FSaleOrderEntry", "FUnitID", "BD_UNIT"),
    ]
    .iter()
    .map(|(e, f, t)| ((*e).to_string(), (*f).to_string(), (*t).to_string()))
    .collect();
    assert_eq!(lookups(&order), expected);
    let outstock = lookups(&business_info(&k3, "SAL_OUTSTOCK").await);
    for wanted in [
        ("FBillHead", "FCustomerID", "BD_Customer"),
        ("FBillHead", "FStockOrgId", "ORG_Organizations"),
        ("FEntity", "FMaterialID", "BD_MATERIAL"),
        ("FEntity", "FStockID", "BD_STOCK"),
    ] {
        let wanted = (
            wanted.0.to_string(),
            wanted.1.to_string(),
            wanted.2.to_string(),
        );
        assert!(outstock.contains(&wanted), "{wanted:?} in {outstock:?}");
    }
    let customer = lookups(&business_info(&k3, "BD_Customer").await);
    assert!(customer.contains(&(
        "FBillHead".into(),
        "FCreateOrgId".into(),
        "ORG_Organizations".into()
    )));
    assert!(customer.contains(&(
        "FBillHead".into(),
        "FTRADINGCURRID".into(),
        "BD_Currency".into()
    )));

    // An unknown form: MsgCode 4, as every other call.
    let answer = k3
        .call("QueryBusinessInfo", None, json!({"FormId": "NO_SUCH_FORM"}))
        .await;
    assert_eq!(status(&answer)["MsgCode"], 4, "{answer}");
}

#[tokio::test]
async fn push_turns_an_audited_sales_order_into_an_outbound_with_linked_lines() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;
    let saved = k3
        .call("Save", Some("SAL_SaleOrder"), order("CUST0001"))
        .await;
    let number = saved["Result"]["Number"].as_str().unwrap().to_string();

    // Not audited yet: refused with the real message, nothing created.
    let refused = k3
        .call(
            "Push",
            Some("SAL_SaleOrder"),
            json!({"Numbers": [number], "TargetFormId": "SAL_OUTSTOCK"}),
        )
        .await;
    assert_eq!(status(&refused)["IsSuccess"], false, "{refused}");
    assert_eq!(
        status(&refused)["Errors"][0]["Message"],
        format!("单据编号为“{number}”的销售订单，单据未审核，不能下推！")
    );
    assert!(sandbox.k3cloud_records("SAL_OUTSTOCK").is_empty());

    for method in ["Submit", "Audit"] {
        let answer = k3
            .call(method, Some("SAL_SaleOrder"), json!({"Numbers": [number]}))
            .await;
        assert_eq!(status(&answer)["IsSuccess"], true, "{method}: {answer}");
    }
    let pushed = k3
        .call(
            "Push",
            Some("SAL_SaleOrder"),
            json!({"Numbers": [number], "TargetFormId": "SAL_OUTSTOCK"}),
        )
        .await;
    assert_eq!(status(&pushed)["IsSuccess"], true, "{pushed}");
    let outbound = status(&pushed)["SuccessEntitys"][0]["Number"]
        .as_str()
        .unwrap()
        .to_string();

    // The outbound carries the order's customer, lines and quantities, and names its source.
    let rows = k3
        .call(
            "ExecuteBillQuery",
            None,
            json!({"FormId": "SAL_OUTSTOCK",
                   "FieldKeys": "FBillNo,FCustomerID.FNumber,FMaterialID.FNumber,FRealQty,FSoorDerno",
                   "FilterString": format!("FBillNo = '{outbound}'"),
                   "OrderString": "FEntity_FSeq ASC"}),
        )
        .await;
    assert_eq!(
        rows,
        json!([
            [outbound, "CUST0001", "MAT0001", 2, number],
            [outbound, "CUST0001", "MAT0001", 1, number]
        ])
    );
}

/// `FilterString` arrays exactly as public clients send them (reference/k3cloud-filter-compare.md):
/// Kingdee's documentation example (Compare and Logic as text, every row in parentheses) and a
/// warehouse app's (Logic as a number joining a row to the next, Value a number).
#[tokio::test]
async fn filter_arrays_with_the_numeric_codes_of_public_clients() {
    let sandbox = Sandbox::builder().demo_data(false).start().await.unwrap();
    let k3 = K3::login(&sandbox).await;
    for (number, name) in [
        ("C-1", "上海一号"),
        ("C-2", "上海二号"),
        ("D-3", "北京三号"),
    ] {
        let saved = k3
            .call(
                "Save",
                Some("BD_Customer"),
                json!({"Model": {"FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                                  "FNumber": number, "FName": name}}),
            )
            .await;
        assert_eq!(status(&saved)["IsSuccess"], true, "{saved}");
    }
    let query = |filter: Value| {
        let k3 = &k3;
        async move {
            let rows = k3
                .call(
                    "ExecuteBillQuery",
                    None,
                    json!({"FormId": "BD_Customer", "FieldKeys": "FNumber", "FilterString": filter,
                           "OrderString": "FNumber"}),
                )
                .await;
            rows.as_array()
                .unwrap_or_else(|| panic!("{rows}"))
                .iter()
                .map(|r| r[0].as_str().unwrap_or_else(|| panic!("{rows}")).to_owned())
                .collect::<Vec<_>>()
        }
    };
    let doc = json!([
        {"Left":"(","FieldName":"FNumber","Compare":"67","Value":"C-1","Right":")","Logic":"1"},
        {"Left":"(","FieldName":"FNumber","Compare":"67","Value":"D-3","Right":")","Logic":"0"}
    ]);
    assert_eq!(query(doc).await, ["C-1", "D-3"]);
    let app = json!([
        {"Left":"(","FieldName":"FName","Compare":"81","Value":"上海","Right":"","Logic":1},
        {"Left":"","FieldName":"FNumber","Compare":"60","Value":"D","Right":")","Logic":0},
        {"Left":"","FieldName":"FDocumentStatus","Compare":"105","Value":"A","Right":"","Logic":0},
        {"Left":"","FieldName":"FNumber","Compare":"338","Value":"C-2,D-3","Right":"","Logic":0}
    ]);
    assert_eq!(query(app).await, ["C-2", "D-3"]);
    // A code whose meaning no public source settles is refused, as an unsupported filter.
    let unsettled = k3
        .call(
            "ExecuteBillQuery",
            None,
            json!({"FormId": "BD_Customer", "FieldKeys": "FNumber",
                   "FilterString": [{"FieldName":"FCreateDate","Compare":"88","Value":"2024-01-01","Logic":0}]}),
        )
        .await;
    assert_eq!(
        unsettled[0][0]["Result"]["ResponseStatus"]["MsgCode"], 4,
        "{unsettled}"
    );
}

async fn operation(k3: &K3, op_number: &str, number: &str) -> Value {
    let body = json!({"formid": "SAL_SaleOrder", "opNumber": op_number,
                      "data": {"Numbers": [number]}});
    let text = k3
        .request("ExcuteOperation", &body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{op_number}: {e}: {text}"))
}

async fn close_status(k3: &K3, number: &str) -> (Value, Value) {
    let view = k3
        .call("View", Some("SAL_SaleOrder"), json!({"Number": number}))
        .await;
    let rows = k3
        .call(
            "ExecuteBillQuery",
            None,
            json!({"FormId": "SAL_SaleOrder", "FieldKeys": "FCloseStatus",
                   "FilterString": format!("FBillNo = '{number}'")}),
        )
        .await;
    (
        view["Result"]["Result"]["CloseStatus"].clone(),
        rows[0][0].clone(),
    )
}

/// CloseBill / UnCloseBill through ExcuteOperation: an audited order closes (FCloseStatus B),
/// a closed one is reopened before it can be un-audited.
#[tokio::test]
async fn an_audited_order_closes_and_reopens() {
    let sandbox = sandbox_with_base_data().await;
    let k3 = K3::login(&sandbox).await;
    let saved = k3
        .call("Save", Some("SAL_SaleOrder"), order("CUST0001"))
        .await;
    let id = saved["Result"]["Id"].as_i64().unwrap();
    let number = saved["Result"]["Number"].as_str().unwrap().to_owned();
    assert_eq!(
        operation(&k3, "CloseBill", &number).await,
        refused(&format!(
            "单据编号为“{number}”的销售订单，单据未审核，不能关闭！"
        ))
    );
    op(&k3, "Submit", &number).await;
    op(&k3, "Audit", &number).await;
    assert_eq!(close_status(&k3, &number).await, (json!("A"), json!("A")));
    assert_eq!(
        operation(&k3, "CloseBill", &number).await,
        moved(id, &number)
    );
    assert_eq!(close_status(&k3, &number).await, (json!("B"), json!("B")));
    assert_eq!(
        operation(&k3, "CloseBill", &number).await,
        refused(&format!("单据编号为“{number}”的销售订单，单据已经关闭！"))
    );
    assert_eq!(
        op(&k3, "UnAudit", &number).await,
        refused(&format!(
            "单据编号为“{number}”的销售订单，单据已经关闭，不能反审核，请先反关闭！"
        ))
    );
    assert_eq!(
        operation(&k3, "UnCloseBill", &number).await,
        moved(id, &number)
    );
    assert_eq!(close_status(&k3, &number).await, (json!("A"), json!("A")));
    assert_eq!(op(&k3, "UnAudit", &number).await, moved(id, &number));
}
