//! The three standard flows end to end against the simulators: exact state afterwards,
//! nothing written twice, changes and late customers, dead letters fixed and retried.

use fxk3::{App, Config, FlowOutcome, sandbox_config, sandbox_secrets};
use fxk3_simulators::{Api, Fault, FaultKind, Sandbox};
use serde_json::{Value, json};

const OWNER: &str = "FSUID_FEDCBA9876543210FEDCBA9876543210";

struct World {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
}

impl World {
    async fn new(demo: bool) -> World {
        let sandbox = Sandbox::builder().demo_data(demo).start().await.unwrap();
        sandbox.fxiaoke_set_rate_limit(None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("mappings")).unwrap();
        for (name, text) in fxk3::EXAMPLE_MAPPINGS {
            std::fs::write(dir.path().join("mappings").join(name), text).unwrap();
        }
        World { sandbox, dir }
    }

    fn config(&self) -> Config {
        let mut config = sandbox_config(
            &self.sandbox,
            &self.dir.path().join("state.sqlite3"),
            self.dir.path(),
        )
        .unwrap();
        if let Some(fx) = config.fxiaoke.as_mut() {
            fx.rate_limit = false;
        }
        for flow in &mut config.flows {
            // The simulators commit synchronously: nothing needs time to settle, and no write
            // is still running once its answer is lost.
            flow.settle = Some("0s".into());
            flow.quiet_period = Some("0s".into());
        }
        config
    }

    async fn app(&self) -> App {
        App::build(self.config(), &sandbox_secrets(&self.sandbox))
            .await
            .unwrap()
    }

    fn edit_mapping(&self, name: &str, from: &str, to: &str) {
        let path = self.dir.path().join("mappings").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from} not in {name}");
        std::fs::write(path, text.replace(from, to)).unwrap();
    }

    /// The small world of the exact-state tests: one material, one salesman, one CRM product.
    fn base_data(&self) -> String {
        self.sandbox
            .k3cloud_insert(
                "BD_MATERIAL",
                json!({"FNumber": "MAT0001", "FName": "镀锌钢管", "FCreateOrgId": {"FNumber": "100"}, "FDocumentStatus": "C"}),
            )
            .unwrap();
        self.sandbox
            .k3cloud_insert(
                "BD_Empinfo",
                json!({"FNumber": "EMP0002", "FName": "李雷", "FCreateOrgId": {"FNumber": "100"}, "FDocumentStatus": "C"}),
            )
            .unwrap();
        self.sandbox
            .fxiaoke_insert(
                "ProductObj",
                json!({"name": "镀锌钢管", "product_code": "MAT0001", "price": "100", "owner": [OWNER]}),
            )
            .unwrap()
    }

    fn account(&self, no: &str, name: &str, account_type: &str) -> String {
        let id = self
            .sandbox
            .fxiaoke_insert(
                "AccountObj",
                json!({"name": name, "account_no": no, "account_type": account_type, "account_level": "2",
                       "tel": "021-1234 5678", "address": "上海市浦东新区1号", "owner": [OWNER]}),
            )
            .unwrap();
        self.sandbox
            .fxiaoke_insert(
                "ContactObj",
                json!({"name": "韩梅梅", "account_id": id, "mobile1": "13900001111", "owner": [OWNER]}),
            )
            .unwrap();
        id
    }

    fn order(&self, account: &str, product: &str, quantity: &str) -> String {
        self.sandbox
            .fxiaoke_insert(
                "SalesOrderObj",
                json!({"account_id": account, "order_time": 1_716_000_000_000_i64,
                       "delivery_date": 1_716_604_800_000_i64, "owner": [OWNER], "remark": "加急",
                       "details": {"SalesOrderProductObj": [
                           {"product_id": product, "quantity": quantity, "sales_price": "113.00"}]}}),
            )
            .unwrap()
    }

    /// The warehouse: pushes the ERP order of CRM order `order` to an outbound delivery with
    /// carriage number `carriage`, then submits and audits it.
    async fn ship(&self, app: &App, order: &str, carriage: &str) {
        let k3 = app.k3cloud().unwrap();
        let order_no = self.sandbox.fxiaoke_record("SalesOrderObj", order).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned();
        let pushed = k3
            .push("SAL_SaleOrder")
            .numbers([order_no.as_str()])
            .target_form("SAL_OUTSTOCK")
            .enable_default_rule(true)
            .send()
            .await
            .unwrap();
        let outbound = pushed.created[0].id.clone();
        k3.save("SAL_OUTSTOCK")
            .need_update_fields(["FCarriageNO"])
            .is_delete_entry(false)
            .model(json!({"FID": outbound.parse::<i64>().unwrap(), "FCarriageNO": carriage}))
            .send()
            .await
            .unwrap();
        submit_and_audit(k3, &outbound).await;
    }

    /// K3Cloud rows, through the SDK as any client would read them.
    async fn erp(&self, app: &App, form: &str, fields: &[&str], filter: &str) -> Vec<Value> {
        app.k3cloud()
            .unwrap()
            .query(form)
            .fields(fields.iter().copied())
            .filter(filter)
            .send::<Value>()
            .await
            .unwrap()
    }
}

/// The warehouse submits and audits outbound `id`; the audit belongs to the next run.
async fn submit_and_audit(k3: &k3cloud_sdk::Client, id: &str) {
    k3.submit("SAL_OUTSTOCK").ids([id]).send().await.unwrap();
    k3.audit("SAL_OUTSTOCK").ids([id]).send().await.unwrap();
    next_millisecond().await;
}

/// Un-audits an outbound in the ERP, as a warehouse clerk taking it back does.
async fn unaudit_outbound(k3: &k3cloud_sdk::Client, id: &str) {
    k3.unaudit("SAL_OUTSTOCK").ids([id]).send().await.unwrap();
    next_millisecond().await;
}

/// Deletes an (un-audited) outbound in the ERP.
async fn delete_outbound(k3: &k3cloud_sdk::Client, id: &str) {
    k3.delete("SAL_OUTSTOCK").ids([id]).send().await.unwrap();
    next_millisecond().await;
}

/// A run reads changes up to its start, exclusive (with `settle = 0s`): a change made in the
/// millisecond a run starts belongs to the next run. Tests that change data and run at once
/// let that millisecond pass.
async fn next_millisecond() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

fn counts(outcomes: &[FlowOutcome], flow: &str) -> sync_core::engine::Counts {
    let o = outcomes.iter().find(|o| o.flow == flow).unwrap();
    assert!(o.error.is_none(), "{flow}: {:?}", o.error);
    o.report.as_ref().unwrap().counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_reach_the_erp_with_the_full_package_and_the_number_comes_back() {
    let w = World::new(false).await;
    w.base_data();
    let account = w.account(" kh00001 ", " 上海甲贸易有限公司 ", "2");
    let app = w.app().await;
    let out = app.run(&["customers".into()], false, None).await.unwrap();
    let c = counts(&out, "customers");
    assert_eq!(
        (
            c.read,
            c.created,
            c.updated,
            c.dead_lettered,
            c.written_back
        ),
        (1, 1, 0, 0, 1)
    );

    let rows = w
        .erp(
            &app,
            "BD_Customer",
            &[
                "FNumber",
                "FName",
                "FCreateOrgId.FNumber",
                "FUseOrgId.FNumber",
                "FCustTypeId.FNumber",
                "FGroup.FNumber",
                "FTRADINGCURRID.FNumber",
                "FTaxType.FNumber",
                "FTaxRate.FNumber",
                "FCOUNTRY.FNumber",
                "FTEL",
                "FADDRESS",
                "FSELLER.FNumber",
            ],
            "FNumber = 'KH00001'",
        )
        .await;
    assert_eq!(
        rows,
        [json!({
            "FNumber": "KH00001", "FName": "上海甲贸易有限公司",
            "FCreateOrgId.FNumber": "603", "FUseOrgId.FNumber": "603",
            "FCustTypeId.FNumber": "KHLB002_SYS", "FGroup.FNumber": "NORMAL",
            "FTRADINGCURRID.FNumber": "PRE001", "FTaxType.FNumber": "SFL02_SYS", "FTaxRate.FNumber": "SL02_SYS",
            "FCOUNTRY.FNumber": "China", "FTEL": "021-1234 5678", "FADDRESS": "上海市浦东新区1号",
            "FSELLER.FNumber": "EMP0002",
        })]
    );
    let contacts = w
        .erp(
            &app,
            "BD_Customer",
            &["FNumber", "FContactName", "FMobile"],
            "FNumber = 'KH00001'",
        )
        .await;
    assert_eq!(
        contacts,
        [json!({"FNumber": "KH00001", "FContactName": "韩梅梅", "FMobile": "13900001111"})]
    );
    // The ERP number went back into the CRM account.
    assert_eq!(
        w.sandbox.fxiaoke_record("AccountObj", &account).unwrap()["field_erp_no__c"],
        "KH00001"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_run_writes_nothing_and_one_change_updates_one_customer() {
    let w = World::new(false).await;
    w.base_data();
    let first = w.account("KH00001", "甲公司", "1");
    w.account("KH00002", "乙公司", "2");
    let app = w.app().await;
    let out = app.run(&["customers".into()], false, None).await.unwrap();
    assert_eq!(counts(&out, "customers").created, 2);
    let saves = w.sandbox.calls("k3cloud:BatchSave");

    let again = app.run(&["customers".into()], false, None).await.unwrap();
    let c = counts(&again, "customers");
    assert_eq!((c.created, c.updated), (0, 0), "{c:?}");
    assert_eq!(
        w.sandbox.calls("k3cloud:BatchSave"),
        saves,
        "nothing was sent to the ERP"
    );

    w.sandbox
        .fxiaoke_update("AccountObj", &first, json!({"tel": "021-0000 0000"}))
        .unwrap();
    next_millisecond().await;
    let after = app.run(&["customers".into()], false, None).await.unwrap();
    let c = counts(&after, "customers");
    assert_eq!((c.created, c.updated), (0, 1), "{c:?}");
    assert_eq!(w.sandbox.calls("k3cloud:BatchSave"), saves + 1);
    let rows = w
        .erp(
            &app,
            "BD_Customer",
            &["FNumber", "FTEL", "FName"],
            "FNumber in ('KH00001', 'KH00002')",
        )
        .await;
    assert_eq!(
        rows,
        [
            json!({"FNumber": "KH00001", "FTEL": "021-0000 0000", "FName": "甲公司"}),
            json!({"FNumber": "KH00002", "FTEL": "021-1234 5678", "FName": "乙公司"}),
        ]
    );
    // Only the mapped fields were sent: the contact rows are still one per customer.
    let contacts = w
        .erp(
            &app,
            "BD_Customer",
            &["FNumber", "FContactName"],
            "FNumber = 'KH00001'",
        )
        .await;
    assert_eq!(contacts.len(), 1);
}

/// The forbid status of the test's ERP customers.
async fn forbid_status(w: &World, app: &fxk3::App) -> Vec<Value> {
    w.erp(
        app,
        "BD_Customer",
        &["FNumber", "FForbidStatus"],
        "FNumber in ('KH00001', 'KH00002', 'KH00003')",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_account_forbids_its_customer_and_recovering_it_enables_it() {
    let w = World::new(false).await;
    w.base_data();
    let first = w.account("KH00001", "甲公司", "1");
    w.account("KH00002", "乙公司", "2");
    // Invalidated (作废) before it ever reached the ERP: not created.
    let never = w.account("KH00003", "丙公司", "1");
    w.sandbox.fxiaoke_invalidate("AccountObj", &never).unwrap();
    let app = w.app().await;
    let out = app.run(&["customers".into()], false, None).await.unwrap();
    let c = counts(&out, "customers");
    assert_eq!((c.created, c.skipped, c.dead_lettered), (2, 1, 0), "{c:?}");
    assert_eq!(
        forbid_status(&w, &app).await,
        [
            json!({"FNumber": "KH00001", "FForbidStatus": "A"}),
            json!({"FNumber": "KH00002", "FForbidStatus": "A"}),
        ]
    );

    // Invalidated in the CRM: its ERP customer is forbidden (禁用).
    w.sandbox.fxiaoke_invalidate("AccountObj", &first).unwrap();
    next_millisecond().await;
    let out = app.run(&["customers".into()], false, None).await.unwrap();
    assert_eq!(counts(&out, "customers").updated, 1);
    assert_eq!(
        forbid_status(&w, &app).await,
        [
            json!({"FNumber": "KH00001", "FForbidStatus": "B"}),
            json!({"FNumber": "KH00002", "FForbidStatus": "A"}),
        ]
    );
    let ops = w.sandbox.calls("k3cloud:ExcuteOperation");
    assert_eq!(ops, 1, "one Forbid");

    // Recovered: enabled again; a run with nothing changed sends nothing.
    w.sandbox.fxiaoke_recover("AccountObj", &first).unwrap();
    next_millisecond().await;
    let out = app.run(&["customers".into()], false, None).await.unwrap();
    assert_eq!(counts(&out, "customers").updated, 1);
    assert_eq!(
        forbid_status(&w, &app).await[0],
        json!({"FNumber": "KH00001", "FForbidStatus": "A"})
    );
    assert_eq!(
        w.sandbox.calls("k3cloud:ExcuteOperation"),
        ops + 1,
        "one Enable"
    );
    let out = app.run(&["customers".into()], false, None).await.unwrap();
    let c = counts(&out, "customers");
    assert_eq!((c.created, c.updated), (0, 0), "{c:?}");
    assert_eq!(w.sandbox.calls("k3cloud:ExcuteOperation"), ops + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_waits_for_its_customer_then_syncs_submitted_and_audited() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let order = w.order(&account, &product, "12");
    let order_no = w.sandbox.fxiaoke_record("SalesOrderObj", &order).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = w.app().await;

    // The orders flow alone: its customer has not synced, so it waits.
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let c = counts(&out, "orders");
    assert_eq!((c.deferred, c.created), (1, 0), "{c:?}");
    assert!(
        w.sandbox.k3cloud_records("SAL_SaleOrder").is_empty(),
        "never sent with a dangling customer"
    );

    // All flows in dependency order: the customer, then the order from the deferral list.
    let out = app.run(&[], false, None).await.unwrap();
    assert_eq!(counts(&out, "customers").created, 1);
    let c = counts(&out, "orders");
    assert_eq!((c.created, c.actions_done, c.deferred), (1, 2, 0), "{c:?}");
    let rows = w
        .erp(
            &app,
            "SAL_SaleOrder",
            &[
                "FBillNo",
                "FDate",
                "FCustId.FNumber",
                "FSaleOrgId.FNumber",
                "FSalerId.FNumber",
                "FNote",
                "FDocumentStatus",
                "FMaterialId.FNumber",
                "FQty",
                "FTaxPrice",
                "FEntryTaxRate",
                "FDeliveryDate",
            ],
            &format!("FBillNo = '{order_no}'"),
        )
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r["FCustId.FNumber"], "KH00001");
    assert_eq!(r["FSaleOrgId.FNumber"], "603");
    assert_eq!(r["FSalerId.FNumber"], "EMP0002");
    assert_eq!(r["FNote"], "加急");
    assert_eq!(r["FDocumentStatus"], "C", "submitted and audited");
    assert_eq!(r["FMaterialId.FNumber"], "MAT0001");
    assert_eq!(r["FQty"].as_f64(), Some(12.0));
    assert_eq!(r["FTaxPrice"].as_f64(), Some(113.0));
    assert_eq!(r["FEntryTaxRate"].as_f64(), Some(13.0));
    assert!(
        r["FDate"].as_str().unwrap().starts_with("2024-05-18"),
        "{r}"
    );
    assert!(
        r["FDeliveryDate"]
            .as_str()
            .unwrap()
            .starts_with("2024-05-25"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_option_is_dead_lettered_then_synced_after_the_dictionary_is_fixed() {
    let w = World::new(false).await;
    w.base_data();
    let odd = w.account("KH00009", "丁公司", "other");
    w.account("KH00001", "甲公司", "1");
    let app = w.app().await;
    let out = app.run(&["customers".into()], false, None).await.unwrap();
    let c = counts(&out, "customers");
    assert_eq!((c.created, c.dead_lettered), (1, 1), "{c:?}");
    let letters = app
        .store()
        .dead_letters("customers", None, 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].source_key, odd);
    assert!(
        letters[0].reason.contains("other") && letters[0].reason.contains("customer_type"),
        "{}",
        letters[0].reason
    );
    assert_eq!(
        w.erp(&app, "BD_Customer", &["FNumber"], "FNumber = 'KH00009'")
            .await
            .len(),
        0
    );

    // The fix: the dictionary learns the option; then one call retries the dead letters.
    w.edit_mapping(
        "customer.toml",
        r#""3" = "KHLB003_SYS" }"#,
        r#""3" = "KHLB003_SYS", "other" = "KHLB004_SYS" }"#,
    );
    let fixed = w.app().await;
    let report = fixed.retry_dead_letters("customers", None).await.unwrap();
    assert_eq!(
        (report.counts.created, report.counts.dead_lettered),
        (1, 0),
        "{:?}",
        report.counts
    );
    assert!(
        fixed
            .store()
            .dead_letters("customers", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let rows = w
        .erp(
            &fixed,
            "BD_Customer",
            &["FNumber", "FCustTypeId.FNumber"],
            "FNumber = 'KH00009'",
        )
        .await;
    assert_eq!(
        rows,
        [json!({"FNumber": "KH00009", "FCustTypeId.FNumber": "KHLB004_SYS"})]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_updates_its_crm_order_and_notifies_the_owner_once() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let order = w.order(&account, &product, "12");
    let app = w.app().await;
    app.run(&[], false, None).await.unwrap();
    let k3 = app.k3cloud().unwrap();
    let order_no = w.sandbox.fxiaoke_record("SalesOrderObj", &order).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let pushed = k3
        .push("SAL_SaleOrder")
        .numbers([order_no.as_str()])
        .target_form("SAL_OUTSTOCK")
        .enable_default_rule(true)
        .send()
        .await
        .unwrap();
    let outbound = pushed.created[0].id.clone();
    k3.save("SAL_OUTSTOCK")
        .need_update_fields(["FCarriageNO"])
        .is_delete_entry(false)
        .model(json!({"FID": outbound.parse::<i64>().unwrap(), "FCarriageNO": "SF1234567890"}))
        .send()
        .await
        .unwrap();
    // Not audited yet: the deliveries flow leaves it alone.
    let out = app.run(&["deliveries".into()], false, None).await.unwrap();
    assert_eq!(counts(&out, "deliveries").created, 0);
    submit_and_audit(k3, &outbound).await;

    let out = app.run(&["deliveries".into()], false, None).await.unwrap();
    let c = counts(&out, "deliveries");
    assert_eq!((c.read, c.created, c.actions_done), (1, 1, 1), "{c:?}");
    let crm = w.sandbox.fxiaoke_record("SalesOrderObj", &order).unwrap();
    assert_eq!(crm["field_express_no__c"], "SF1234567890");
    assert_eq!(crm["logistics_status"], "3");
    assert_eq!(crm["field_shipped_qty__c"].as_f64(), Some(12.0), "{crm}");
    assert!(
        crm["field_erp_bill_no__c"]
            .as_str()
            .unwrap()
            .starts_with("XSCKD"),
        "{crm}"
    );
    let messages = w.sandbox.fxiaoke_messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let text = messages[0].to_string();
    assert!(
        text.contains("发货通知") && text.contains(&order_no) && text.contains("SF1234567890"),
        "{text}"
    );
    assert!(text.contains(OWNER), "to the order's owner: {text}");

    // Re-runs (and a re-read of the same delivery) notify nobody again.
    app.run(&[], false, None).await.unwrap();
    let retry = app.retry_dead_letters("deliveries", None).await.unwrap();
    assert_eq!(retry.counts.actions_done, 0);
    assert_eq!(w.sandbox.fxiaoke_messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_neither_lose_a_delivery_update_nor_send_a_second_message() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let first = w.order(&account, &product, "12");
    let second = w.order(&account, &product, "5");
    let app = w.app().await;
    app.run(&[], false, None).await.unwrap();

    // The CRM applies the order's update, but its answer is lost: the next run sends the
    // update again (an update is harmless to repeat), then the message, once.
    w.ship(&app, &first, "SF0000000001").await;
    let _ = w.sandbox.set_fault(
        Fault::new(
            Api::Fxiaoke,
            "/cgi/crm/v2/data/update",
            FaultKind::DropAfterWrite,
        )
        .next(1),
    );
    let out = app.run(&["deliveries".into()], false, None).await.unwrap();
    let c = counts(&out, "deliveries");
    assert_eq!((c.unknown, c.actions_done), (1, 0), "{c:?}");
    assert!(w.sandbox.fxiaoke_messages().is_empty());
    let out = app.run(&["deliveries".into()], false, None).await.unwrap();
    let c = counts(&out, "deliveries");
    assert_eq!((c.created, c.actions_done), (1, 1), "{c:?}");
    let messages = w.sandbox.fxiaoke_messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].to_string().contains("SF0000000001"),
        "{messages:?}"
    );

    // The message goes out but its answer is lost: it may have reached the owner, so it is
    // reported and never sent again — not by a re-run, not by a dead-letter retry.
    w.ship(&app, &second, "SF0000000002").await;
    let _ = w.sandbox.set_fault(
        Fault::new(Api::Fxiaoke, "/cgi/message/send", FaultKind::DropAfterWrite).next(1),
    );
    let out = app.run(&["deliveries".into()], false, None).await.unwrap();
    let c = counts(&out, "deliveries");
    assert_eq!(
        (
            c.created,
            c.actions_done,
            c.actions_unknown,
            c.dead_lettered
        ),
        (1, 0, 1, 0),
        "{c:?}"
    );
    assert!(!out[0].is_clean());
    assert_eq!(
        w.sandbox.fxiaoke_record("SalesOrderObj", &second).unwrap()["field_express_no__c"],
        "SF0000000002"
    );
    app.retry_dead_letters("deliveries", None).await.unwrap();
    app.run(&[], false, None).await.unwrap();
    let messages = w.sandbox.fxiaoke_messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[1].to_string().contains("SF0000000002"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_state_file_is_lost_a_rebuild_sends_nothing_twice() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let order = w.order(&account, &product, "12");
    let app = w.app().await;
    app.run(&[], false, None).await.unwrap();
    w.ship(&app, &order, "SF0000000001").await;
    app.run(&[], false, None).await.unwrap();
    assert_eq!(w.sandbox.fxiaoke_messages().len(), 1);
    drop(app);

    // The state file is lost; meanwhile a new customer arrives in the CRM.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(w.dir.path().join(format!("state.sqlite3{suffix}")));
    }
    w.account("KH00002", "乙公司", "2");
    next_millisecond().await;
    let app = w.app().await;
    let rebuilt: Vec<u64> = app
        .rebuild_id_maps(&[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.counts.rebuilt)
        .collect();
    assert_eq!(rebuilt, [1, 1, 1], "customers, orders, deliveries");

    let out = app.run(&[], false, None).await.unwrap();
    let (customers, orders, deliveries) = (
        counts(&out, "customers"),
        counts(&out, "orders"),
        counts(&out, "deliveries"),
    );
    assert_eq!(
        (
            customers.created,
            customers.unchanged,
            customers.dead_lettered
        ),
        (1, 1, 0)
    );
    assert_eq!(
        (orders.created, orders.unchanged, orders.dead_lettered),
        (0, 1, 0)
    );
    assert_eq!(
        (
            deliveries.created,
            deliveries.unchanged,
            deliveries.actions_done
        ),
        (0, 1, 0)
    );
    assert_eq!(w.sandbox.k3cloud_records("BD_Customer").len(), 2);
    assert_eq!(w.sandbox.k3cloud_records("SAL_SaleOrder").len(), 1);
    assert_eq!(
        w.sandbox.fxiaoke_messages().len(),
        1,
        "the owner is not told twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_flows_on_the_demo_data() {
    let w = World::new(true).await;
    let crm_accounts = w.sandbox.fxiaoke_records("AccountObj").len();
    let crm_orders = w.sandbox.fxiaoke_records("SalesOrderObj").len();
    let app = w.app().await;
    let out = app.run(&[], false, None).await.unwrap();
    let customers = counts(&out, "customers");
    let orders = counts(&out, "orders");
    assert_eq!(
        (
            customers.created,
            customers.dead_lettered,
            customers.written_back
        ),
        (300, 0, 300)
    );
    assert_eq!(usize::try_from(customers.created).unwrap(), crm_accounts);
    assert_eq!(
        (orders.created, orders.deferred, orders.dead_lettered),
        (200, 0, 0)
    );
    assert_eq!(usize::try_from(orders.created).unwrap(), crm_orders);
    assert_eq!(orders.actions_done, 400, "Submit and Audit for every order");
    assert_eq!(counts(&out, "deliveries").created, 0);
    assert_eq!(w.sandbox.k3cloud_records("BD_Customer").len(), 300);
    let erp_orders = w.sandbox.k3cloud_records("SAL_SaleOrder");
    assert_eq!(erp_orders.len(), 200);
    assert!(erp_orders.iter().all(|o| o["DocumentStatus"] == "C"));
    // Every ERP customer number is a CRM customer code, once.
    let mut numbers: Vec<String> = w
        .sandbox
        .k3cloud_records("BD_Customer")
        .iter()
        .map(|c| c["Number"].as_str().unwrap().to_owned())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 300);

    let again = app.run(&[], false, None).await.unwrap();
    for flow in ["customers", "orders", "deliveries"] {
        let c = counts(&again, flow);
        assert_eq!(
            (c.created, c.updated, c.dead_lettered),
            (0, 0, 0),
            "{flow}: {c:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_mappings_validate_against_both_systems() {
    let w = World::new(true).await;
    let app = w.app().await;
    let results = app.validate(&[]).await.unwrap();
    let errors: Vec<String> = results
        .iter()
        .flat_map(|(flow, issues)| {
            issues
                .iter()
                .filter(|i| i.severity == sync_core::mapping::Severity::Error)
                .map(move |i| format!("{flow}: {i}"))
        })
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(results.len(), 3);
}

/// The orders flow's configuration edited by `edit`, over the same state file.
async fn app_with(w: &World, edit: impl Fn(&mut fxk3::config::FlowConfig)) -> App {
    app_with_flows(w, |flow| {
        if flow.name == "orders" {
            edit(flow);
        }
    })
    .await
}

/// Every flow's configuration edited by `edit`, over the same state file.
async fn app_with_flows(w: &World, edit: impl Fn(&mut fxk3::config::FlowConfig)) -> App {
    let mut config = w.config();
    for flow in &mut config.flows {
        edit(flow);
    }
    App::build(config, &sandbox_secrets(&w.sandbox))
        .await
        .unwrap()
}

fn order_no(w: &World, order: &str) -> String {
    w.sandbox.fxiaoke_record("SalesOrderObj", order).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn order_lines(w: &World, order: &str) -> Vec<String> {
    w.sandbox
        .fxiaoke_records("SalesOrderProductObj")
        .into_iter()
        .filter(|l| l["order_id"] == order)
        .map(|l| l["_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The ERP order's header status and its rows (entry id, CRM line, quantity, note).
async fn erp_order(w: &World, app: &App, no: &str) -> Vec<Value> {
    w.erp(
        app,
        "SAL_SaleOrder",
        &[
            "FDocumentStatus",
            "FCloseStatus",
            "FNote",
            "FSaleOrderEntry_FEntryID",
            "F_CRM_LineId",
            "FQty",
            "FEntryNote",
        ],
        &format!("FBillNo = '{no}'"),
    )
    .await
}

fn dead_letter_reason(outcomes: &[FlowOutcome], flow: &str) -> String {
    let o = outcomes.iter().find(|o| o.flow == flow).unwrap();
    let report = o.report.as_ref().unwrap();
    assert_eq!(report.counts.dead_lettered, 1, "{:?}", report.counts);
    match &report.failures[0].outcome {
        sync_core::RecordOutcome::DeadLettered { reason, .. } => reason.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_a_draft_order_saves_the_changes_and_keeps_the_erp_rows_of_its_lines() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let order = w.order(&account, &product, "12");
    let no = order_no(&w, &order);
    let line = order_lines(&w, &order).remove(0);
    // Orders left as drafts in the ERP.
    let app = app_with(&w, |f| f.actions = Some(Vec::new())).await;
    app.run(&[], false, None).await.unwrap();
    let before = erp_order(&w, &app, &no).await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["FDocumentStatus"], "A");
    assert_eq!(before[0]["F_CRM_LineId"], line.as_str());
    let entry_id = before[0]["FSaleOrderEntry_FEntryID"].clone();
    let fid = w
        .erp(
            &app,
            "SAL_SaleOrder",
            &["FID"],
            &format!("FBillNo = '{no}'"),
        )
        .await[0]["FID"]
        .clone();
    // The ERP's own value on the row, which an edit must keep.
    app.k3cloud()
        .unwrap()
        .save("SAL_SaleOrder")
        .need_update_fields(["FSaleOrderEntry", "FEntryNote"])
        .is_delete_entry(false)
        .model(
            json!({"FID": fid, "FSaleOrderEntry": [{"FEntryID": entry_id, "FEntryNote": "仓库备注"}]}),
        )
        .send()
        .await
        .unwrap();

    // Edited in the CRM: the line's quantity, a second line, the remark.
    w.sandbox
        .fxiaoke_update("SalesOrderProductObj", &line, json!({"quantity": "20"}))
        .unwrap();
    w.sandbox
        .fxiaoke_insert(
            "SalesOrderProductObj",
            json!({"order_id": order, "product_id": product, "quantity": "5", "sales_price": "113.00", "owner": [OWNER]}),
        )
        .unwrap();
    w.sandbox
        .fxiaoke_update("SalesOrderObj", &order, json!({"remark": "改期"}))
        .unwrap();
    next_millisecond().await;
    let saves = w.sandbox.calls("k3cloud:BatchSave");
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let c = counts(&out, "orders");
    assert_eq!((c.updated, c.created, c.dead_lettered), (1, 0, 0), "{c:?}");
    assert_eq!(w.sandbox.calls("k3cloud:BatchSave"), saves + 1);
    let after = erp_order(&w, &app, &no).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0]["FNote"], "改期");
    assert_eq!(after[0]["FDocumentStatus"], "A");
    assert_eq!(
        after[0]["FSaleOrderEntry_FEntryID"], entry_id,
        "the same ERP row"
    );
    assert_eq!(after[0]["FQty"].as_f64(), Some(20.0));
    assert_eq!(
        after[0]["FEntryNote"], "仓库备注",
        "the ERP's value on it kept"
    );
    assert_eq!(after[1]["FQty"].as_f64(), Some(5.0));
    assert_ne!(after[1]["FSaleOrderEntry_FEntryID"], entry_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_an_audited_order_is_refused_by_default_and_reaudited_when_configured() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let order = w.order(&account, &product, "12");
    let no = order_no(&w, &order);
    let app = w.app().await;
    app.run(&[], false, None).await.unwrap();
    assert_eq!(erp_order(&w, &app, &no).await[0]["FDocumentStatus"], "C");

    w.sandbox
        .fxiaoke_update("SalesOrderObj", &order, json!({"remark": "改期"}))
        .unwrap();
    next_millisecond().await;
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let reason = dead_letter_reason(&out, "orders");
    assert!(
        reason.contains(&no) && reason.contains("does not change audited"),
        "{reason}"
    );
    let rows = erp_order(&w, &app, &no).await;
    assert_eq!(
        (&rows[0]["FNote"], &rows[0]["FDocumentStatus"]),
        (&json!("加急"), &json!("C"))
    );

    // With `audited_orders = "reaudit"` the dead letter's retry un-audits, saves, audits.
    let app = app_with(&w, |f| {
        f.audited_orders = Some(fxk3::config::AuditedOrders::Reaudit);
    })
    .await;
    let calls = |name: &str| w.sandbox.calls(&format!("k3cloud:{name}"));
    let (unaudits, audits) = (calls("UnAudit"), calls("Audit"));
    let report = app.retry_dead_letters("orders", None).await.unwrap();
    assert_eq!(
        (report.counts.updated, report.counts.dead_lettered),
        (1, 0),
        "{:?}",
        report.counts
    );
    let rows = erp_order(&w, &app, &no).await;
    assert_eq!(
        (&rows[0]["FNote"], &rows[0]["FDocumentStatus"]),
        (&json!("改期"), &json!("C"))
    );
    assert_eq!(
        (calls("UnAudit"), calls("Audit")),
        (unaudits + 1, audits + 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_an_order_with_an_outbound_is_refused_with_the_outbound() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let order = w.order(&account, &product, "12");
    let no = order_no(&w, &order);
    let app = app_with(&w, |f| {
        f.audited_orders = Some(fxk3::config::AuditedOrders::Reaudit);
    })
    .await;
    app.run(&[], false, None).await.unwrap();
    w.ship(&app, &order, "SF1").await;
    let outbound = w.erp(&app, "SAL_OUTSTOCK", &["FBillNo"], "").await[0]["FBillNo"]
        .as_str()
        .unwrap()
        .to_owned();

    w.sandbox
        .fxiaoke_update("SalesOrderObj", &order, json!({"remark": "改期"}))
        .unwrap();
    next_millisecond().await;
    let unaudits = w.sandbox.calls("k3cloud:UnAudit");
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let reason = dead_letter_reason(&out, "orders");
    assert!(
        reason.contains("downstream") && reason.contains(&outbound),
        "{reason}"
    );
    assert_eq!(
        w.sandbox.calls("k3cloud:UnAudit"),
        unaudits,
        "never un-audited"
    );
    let rows = erp_order(&w, &app, &no).await;
    assert_eq!(
        (&rows[0]["FNote"], &rows[0]["FDocumentStatus"]),
        (&json!("加急"), &json!("C"))
    );

    // Closed in the ERP once shipped: a later CRM edit does not reopen it.
    app.k3cloud()
        .unwrap()
        .execute_operation("SAL_SaleOrder", "CloseBill")
        .numbers([no.as_str()])
        .send()
        .await
        .unwrap();
    w.sandbox
        .fxiaoke_update("SalesOrderObj", &order, json!({"remark": "再改"}))
        .unwrap();
    next_millisecond().await;
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let reason = dead_letter_reason(&out, "orders");
    assert!(
        reason.contains("closed in the ERP") && reason.contains(&outbound),
        "{reason}"
    );
    let rows = erp_order(&w, &app, &no).await;
    assert_eq!(
        (&rows[0]["FNote"], &rows[0]["FCloseStatus"]),
        (&json!("加急"), &json!("B"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_order_closes_or_deletes_its_erp_order_and_recovering_it_undoes_that() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let audited = w.order(&account, &product, "12");
    let draft = w.order(&account, &product, "3");
    let never = w.order(&account, &product, "1");
    w.sandbox
        .fxiaoke_invalidate("SalesOrderObj", &never)
        .unwrap();
    let app = w.app().await;
    let out = app.run(&[], false, None).await.unwrap();
    let c = counts(&out, "orders");
    let failures = &out
        .iter()
        .find(|o| o.flow == "orders")
        .unwrap()
        .report
        .as_ref()
        .unwrap()
        .failures;
    assert_eq!((c.created, c.skipped), (2, 1), "{c:?} {failures:?}");
    let (audited_no, draft_no) = (order_no(&w, &audited), order_no(&w, &draft));
    // Un-audited in the ERP (重新审核): not audited, so deleted when cancelled.
    app.k3cloud()
        .unwrap()
        .unaudit("SAL_SaleOrder")
        .numbers([draft_no.as_str()])
        .send()
        .await
        .unwrap();

    w.sandbox
        .fxiaoke_invalidate("SalesOrderObj", &audited)
        .unwrap();
    w.sandbox
        .fxiaoke_invalidate("SalesOrderObj", &draft)
        .unwrap();
    next_millisecond().await;
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let c = counts(&out, "orders");
    assert_eq!((c.updated, c.removed, c.dead_lettered), (1, 1, 0), "{c:?}");
    let rows = erp_order(&w, &app, &audited_no).await;
    assert_eq!(
        (&rows[0]["FDocumentStatus"], &rows[0]["FCloseStatus"]),
        (&json!("C"), &json!("B"))
    );
    assert!(erp_order(&w, &app, &draft_no).await.is_empty(), "deleted");
    // Nothing more on a second run.
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let c = counts(&out, "orders");
    assert_eq!((c.updated, c.removed, c.created), (0, 0, 0), "{c:?}");

    // Recovered: the closed order is reopened, the deleted one created (and audited) again.
    w.sandbox
        .fxiaoke_recover("SalesOrderObj", &audited)
        .unwrap();
    w.sandbox.fxiaoke_recover("SalesOrderObj", &draft).unwrap();
    next_millisecond().await;
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let c = counts(&out, "orders");
    assert_eq!((c.updated, c.created, c.dead_lettered), (1, 1, 0), "{c:?}");
    let rows = erp_order(&w, &app, &audited_no).await;
    assert_eq!(rows[0]["FCloseStatus"], "A");
    let rows = erp_order(&w, &app, &draft_no).await;
    assert_eq!(rows[0]["FDocumentStatus"], "C");
    assert_eq!(rows.len(), 1);

    // `cancelled_orders = "report"`: a dead letter, the ERP order left alone.
    let app = app_with(&w, |f| {
        f.cancelled_orders = Some(fxk3::config::CancelledOrders::Report);
    })
    .await;
    w.sandbox
        .fxiaoke_invalidate("SalesOrderObj", &audited)
        .unwrap();
    next_millisecond().await;
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let reason = dead_letter_reason(&out, "orders");
    assert!(reason.contains("reports cancellations"), "{reason}");
    assert_eq!(
        erp_order(&w, &app, &audited_no).await[0]["FCloseStatus"],
        "A"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_or_an_order_line_changed_on_its_own_is_synced_in_the_next_run() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let order = w.order(&account, &product, "12");
    let no = order_no(&w, &order);
    let contact = w
        .sandbox
        .fxiaoke_records("ContactObj")
        .into_iter()
        .find(|c| c["account_id"] == account.as_str())
        .unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let line = order_lines(&w, &order).remove(0);
    // ERP contact rows follow the CRM's; orders stay drafts, so that edits reach them.
    let app = app_with_flows(&w, |f| match f.name.as_str() {
        "customers" => f.replace_entries = true,
        "orders" => f.actions = Some(Vec::new()),
        _ => {}
    })
    .await;
    app.run(&[], false, None).await.unwrap();
    let modified = |api: &str, id: &str| {
        w.sandbox.fxiaoke_record(api, id).unwrap()["last_modified_time"].clone()
    };
    let (account_at, order_at) = (
        modified("AccountObj", &account),
        modified("SalesOrderObj", &order),
    );

    // The details alone change: their records' modification times do not move.
    w.sandbox
        .fxiaoke_update("ContactObj", &contact, json!({"mobile1": "13900002222"}))
        .unwrap();
    w.sandbox
        .fxiaoke_update("SalesOrderProductObj", &line, json!({"quantity": "30"}))
        .unwrap();
    assert_eq!(modified("AccountObj", &account), account_at);
    assert_eq!(modified("SalesOrderObj", &order), order_at);
    next_millisecond().await;
    let out = app
        .run(&["customers".into(), "orders".into()], false, None)
        .await
        .unwrap();
    assert_eq!(counts(&out, "customers").updated, 1);
    assert_eq!(counts(&out, "orders").updated, 1);
    let contacts = w
        .erp(&app, "BD_Customer", &["FMobile"], "FNumber = 'KH00001'")
        .await;
    assert_eq!(contacts, [json!({"FMobile": "13900002222"})]);
    assert_eq!(
        erp_order(&w, &app, &no).await[0]["FQty"].as_f64(),
        Some(30.0)
    );

    // Written once: the next run (which reads the lookback again) sends nothing.
    let saves = w.sandbox.calls("k3cloud:BatchSave");
    let out = app
        .run(&["customers".into(), "orders".into()], false, None)
        .await
        .unwrap();
    assert_eq!(counts(&out, "customers").updated, 0);
    assert_eq!(counts(&out, "orders").updated, 0);
    assert_eq!(w.sandbox.calls("k3cloud:BatchSave"), saves);
}

/// The ERP entry id of CRM order `order`'s first line.
async fn erp_line(w: &World, app: &App, order: &str) -> Value {
    let no = order_no(w, order);
    erp_order(w, app, &no).await[0]["FSaleOrderEntry_FEntryID"].clone()
}

/// An outbound of `lines` (order, ERP entry id, quantity) — from several orders at once, as a
/// merged push makes it — with carriage number `carriage`, submitted and audited; its id.
async fn outbound(w: &World, app: &App, lines: &[(&str, Value, f64)], carriage: &str) -> String {
    let k3 = app.k3cloud().unwrap();
    let rows: Vec<Value> = lines
        .iter()
        .map(|(order, entry, qty)| {
            let no = order_no(w, order);
            json!({"FMaterialID": {"FNumber": "MAT0001"}, "FRealQty": qty, "FSoorDerno": no,
                   "FSrcBillNo": no, "FSOEntryId": entry})
        })
        .collect();
    let saved = k3
        .save("SAL_OUTSTOCK")
        .model(
            json!({"FStockOrgId": {"FNumber": "603"}, "FCustomerID": {"FNumber": "KH00001"},
                      "FCarriageNO": carriage, "FEntity": rows}),
        )
        .send()
        .await
        .unwrap();
    submit_and_audit(k3, &saved.id).await;
    saved.id.clone()
}

/// What the CRM shows of order `order`: shipped quantity, 发货状态, carriage number, and its
/// first line's shipped quantity.
fn crm_shipping(w: &World, order: &str) -> (Value, Value, Value, Value) {
    let o = w.sandbox.fxiaoke_record("SalesOrderObj", order).unwrap();
    let line = order_lines(w, order).remove(0);
    let l = w
        .sandbox
        .fxiaoke_record("SalesOrderProductObj", &line)
        .unwrap();
    (
        o["field_shipped_qty__c"].clone(),
        o["logistics_status"].clone(),
        o["field_express_no__c"].clone(),
        l["field_shipped_qty__c"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_add_up_per_order_line_cover_several_orders_and_are_taken_back_by_an_unaudit() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let a = w.order(&account, &product, "10");
    let b = w.order(&account, &product, "4");
    let app = w.app().await;
    app.run(&[], false, None).await.unwrap();
    let (line_a, line_b) = (erp_line(&w, &app, &a).await, erp_line(&w, &app, &b).await);
    let messages = || w.sandbox.fxiaoke_messages().len();
    let run = || async { app.run(&["deliveries".into()], false, None).await.unwrap() };

    // One outbound ships part of A and all of B.
    let first = outbound(
        &w,
        &app,
        &[(&a, line_a.clone(), 6.0), (&b, line_b.clone(), 4.0)],
        "SF1",
    )
    .await;
    let out = run().await;
    assert_eq!(counts(&out, "deliveries").created, 2, "both orders");
    assert_eq!(
        crm_shipping(&w, &a),
        (json!(6.0), json!("2"), json!("SF1"), json!(6.0))
    );
    assert_eq!(
        crm_shipping(&w, &b),
        (json!(4.0), json!("3"), json!("SF1"), json!(4.0))
    );
    assert_eq!(messages(), 2, "one to each order's owner");

    // The rest of A: cumulative.
    let second = outbound(&w, &app, &[(&a, line_a.clone(), 4.0)], "SF2").await;
    let out = run().await;
    let c = counts(&out, "deliveries");
    assert_eq!((c.created, c.updated), (0, 1), "{c:?}");
    assert_eq!(
        crm_shipping(&w, &a),
        (json!(10.0), json!("3"), json!("SF2"), json!(10.0))
    );
    assert_eq!(messages(), 3);
    let last = w.sandbox.fxiaoke_messages().last().unwrap().to_string();
    assert!(
        last.contains(&order_no(&w, &a)) && last.contains("累计发货 10"),
        "{last}"
    );

    // Un-audited in the ERP: taken back, and the owner told.
    let k3 = app.k3cloud().unwrap();
    unaudit_outbound(k3, &second).await;
    let out = run().await;
    assert_eq!(counts(&out, "deliveries").updated, 1);
    assert_eq!(
        crm_shipping(&w, &a),
        (json!(6.0), json!("2"), json!("SF1"), json!(6.0))
    );
    assert_eq!(messages(), 4);
    // …then deleted: nothing more to take back.
    delete_outbound(k3, &second).await;
    let out = run().await;
    assert_eq!(counts(&out, "deliveries").updated, 0);
    assert_eq!(messages(), 4);

    // The first one un-audited too: nothing shipped, the carriage number cleared.
    unaudit_outbound(k3, &first).await;
    let out = run().await;
    assert_eq!(counts(&out, "deliveries").updated, 2);
    assert_eq!(
        crm_shipping(&w, &a),
        (json!(0.0), json!("1"), Value::Null, json!(0.0))
    );
    assert_eq!(
        crm_shipping(&w, &b),
        (json!(0.0), json!("1"), Value::Null, json!(0.0))
    );
    assert_eq!(messages(), 6);
    // Quiet afterwards.
    let out = run().await;
    assert_eq!(counts(&out, "deliveries").updated, 0);
    assert_eq!(messages(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_deleted_in_the_erp_leaves_no_action_waiting_for_it() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let order = w.order(&account, &product, "12");
    let no = order_no(&w, &order);
    let _ = w
        .sandbox
        .set_fault(Fault::new(Api::K3cloud, "Audit", FaultKind::QuotaExceeded).next(10));
    let app = w.app().await;
    let out = app.run(&[], false, None).await.unwrap();
    let reason = dead_letter_reason(&out, "orders");
    assert!(!reason.is_empty());
    assert_eq!(erp_order(&w, &app, &no).await[0]["FDocumentStatus"], "B");

    // Invalidated while its Audit waits to be retried: withdrawn and deleted, and the Audit
    // letter goes with it.
    w.sandbox
        .fxiaoke_invalidate("SalesOrderObj", &order)
        .unwrap();
    next_millisecond().await;
    let out = app.run(&["orders".into()], false, None).await.unwrap();
    let c = counts(&out, "orders");
    assert_eq!((c.removed, c.dead_lettered), (1, 0), "{c:?}");
    assert!(erp_order(&w, &app, &no).await.is_empty());
    let retry = app.retry_dead_letters("orders", None).await.unwrap();
    assert_eq!(retry.counts.read, 0, "{:?}", retry.counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_finds_the_deletions_no_run_can_see() {
    let w = World::new(false).await;
    let product = w.base_data();
    let account = w.account("KH00001", "甲公司", "1");
    let leaving = w.account("KH00002", "乙公司", "2");
    let audited = w.order(&account, &product, "12");
    let draft = w.order(&account, &product, "3");
    let shipped = w.order(&account, &product, "10");
    let app = w.app().await;
    app.run(&[], false, None).await.unwrap();
    let (audited_no, draft_no) = (order_no(&w, &audited), order_no(&w, &draft));
    let k3 = app.k3cloud().unwrap();
    k3.unaudit("SAL_SaleOrder")
        .numbers([draft_no.as_str()])
        .send()
        .await
        .unwrap();
    let line = erp_line(&w, &app, &shipped).await;
    outbound(&w, &app, &[(&shipped, line.clone(), 6.0)], "SF1").await;
    let second = outbound(&w, &app, &[(&shipped, line, 4.0)], "SF2").await;
    app.run(&[], false, None).await.unwrap();
    assert_eq!(crm_shipping(&w, &shipped).0, json!(10.0));

    // Between two runs: invalidated and purged in the CRM, un-audited and deleted in the ERP.
    for (api, id) in [
        ("SalesOrderObj", &audited),
        ("SalesOrderObj", &draft),
        ("AccountObj", &leaving),
    ] {
        w.sandbox.fxiaoke_invalidate(api, id).unwrap();
        w.sandbox.fxiaoke_delete(api, id).unwrap();
    }
    unaudit_outbound(k3, &second).await;
    delete_outbound(k3, &second).await;
    // A run later still: nothing of it is visible to an incremental read.
    let mut config = w.config();
    for flow in &mut config.flows {
        flow.lookback = Some("0s".into());
    }
    let app = App::build(config, &sandbox_secrets(&w.sandbox))
        .await
        .unwrap();
    app.run(&[], false, None).await.unwrap();
    assert_eq!(
        erp_order(&w, &app, &audited_no).await[0]["FCloseStatus"],
        "A"
    );
    assert_eq!(erp_order(&w, &app, &draft_no).await.len(), 1);
    assert_eq!(crm_shipping(&w, &shipped).0, json!(10.0));
    let messages = w.sandbox.fxiaoke_messages().len();

    // The sweep: the audited order closed, the draft deleted, the customer forbidden, the
    // deleted outbound's quantity taken back (and the owner told).
    let reports = app.sweep(&[]).await.unwrap();
    let counts = |flow: &str| reports.iter().find(|r| r.flow == flow).unwrap().counts;
    assert_eq!(counts("orders").removed, 1, "{:?}", counts("orders"));
    assert_eq!(counts("orders").updated, 1, "{:?}", counts("orders"));
    assert_eq!(counts("customers").updated, 1, "{:?}", counts("customers"));
    assert_eq!(
        counts("deliveries").updated,
        1,
        "{:?}",
        counts("deliveries")
    );
    assert_eq!(
        erp_order(&w, &app, &audited_no).await[0]["FCloseStatus"],
        "B"
    );
    assert!(erp_order(&w, &app, &draft_no).await.is_empty());
    assert_eq!(
        forbid_status(&w, &app).await,
        [
            json!({"FNumber": "KH00001", "FForbidStatus": "A"}),
            json!({"FNumber": "KH00002", "FForbidStatus": "B"}),
        ]
    );
    assert_eq!(crm_shipping(&w, &shipped).0, json!(6.0));
    assert_eq!(w.sandbox.fxiaoke_messages().len(), messages + 1);

    // Swept again: nothing more to do.
    let saves = w.sandbox.calls("k3cloud:BatchSave");
    let ops = w.sandbox.calls("k3cloud:ExcuteOperation");
    let reports = app.sweep(&[]).await.unwrap();
    assert!(
        reports
            .iter()
            .all(|r| r.counts.created + r.counts.updated + r.counts.removed == 0),
        "{reports:?}"
    );
    assert_eq!(w.sandbox.calls("k3cloud:BatchSave"), saves);
    assert_eq!(w.sandbox.calls("k3cloud:ExcuteOperation"), ops);
}
