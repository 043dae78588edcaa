//! The K3Cloud connectors against the sandbox's K3Cloud simulator: BatchSave outcomes per row,
//! updates of mapped fields only, reconciliation after a dropped answer, actions, ID-map
//! listing, metadata, and the form source's keyset paging.
#![cfg(feature = "k3cloud")]

use std::sync::Arc;

use fxk3_simulators::{Api, Clock, Fault, FaultKind, Sandbox};
use serde_json::{Value, json};
use sync_core::k3cloud::{FormSink, FormSinkConfig, FormSource, FormSourceConfig, UpdatePolicy};
use sync_core::testing::{MemorySink, MemorySource};
use sync_core::{
    ActionOutcome, DeclarativeMapping, Engine, Flow, MemoryStore, Page, PageRequest, Record, Sink,
    Source, TargetRef, Window, WriteItem, WriteOutcome,
};

fn client(sandbox: &Sandbox) -> k3cloud_sdk::Client {
    let c = &sandbox.config().k3cloud;
    k3cloud_sdk::Client::builder(sandbox.k3cloud_url())
        .account(&c.acct_id)
        .user(&c.user_name)
        .auth(k3cloud_sdk::Auth::signed(&c.app_id, &c.app_secret))
        .build()
        .unwrap()
}

async fn start() -> Sandbox {
    Sandbox::builder().demo_data(false).start().await.unwrap()
}

fn customers(sandbox: &Sandbox, policy: UpdatePolicy) -> FormSink {
    FormSink::new(
        client(sandbox),
        FormSinkConfig::new("BD_Customer", "FCUSTID", "FNumber").update_policy(policy),
    )
}

fn customer(number: &str, name: &str) -> Value {
    json!({"FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
           "FNumber": number, "FName": name, "FTEL": "021-1234"})
}

fn item(key: &str, payload: Value, target: Option<TargetRef>) -> WriteItem {
    WriteItem {
        source_key: key.into(),
        natural_key: payload["FNumber"].as_str().unwrap_or_default().into(),
        payload,
        target,
    }
}

#[tokio::test]
async fn batch_save_outcomes_map_to_each_record() {
    let sandbox = start().await;
    let sink = customers(
        &sandbox,
        UpdatePolicy::MappedFields {
            replace_entries: false,
        },
    );
    let outcomes = sink
        .write(&[
            item("crm-1", customer("C001", "甲公司"), None),
            // No name: 名称 is required.
            item(
                "crm-2",
                json!({"FCreateOrgId": {"FNumber": "100"}, "FNumber": "C002"}),
                None,
            ),
            item("crm-3", customer("C003", "丙公司"), None),
        ])
        .await
        .unwrap();
    let WriteOutcome::Created(first) = &outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(first.number.as_deref(), Some("C001"));
    assert!(
        first.id.parse::<i64>().is_ok(),
        "the internal id: {first:?}"
    );
    assert!(
        matches!(&outcomes[1], WriteOutcome::Failed { reason, retryable: false } if reason.contains("必填")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[2], WriteOutcome::Created(t) if t.number.as_deref() == Some("C003"))
    );
    assert_eq!(sandbox.k3cloud_records("BD_Customer").len(), 2);
    assert_eq!(
        sandbox.calls("k3cloud:BatchSave"),
        1,
        "creates go out in one call"
    );
}

#[tokio::test]
async fn updates_touch_only_the_mapped_fields() {
    let sandbox = start().await;
    let sink = customers(
        &sandbox,
        UpdatePolicy::MappedFields {
            replace_entries: false,
        },
    );
    let WriteOutcome::Created(target) = sink
        .write(&[item("crm-1", customer("C001", "甲公司"), None)])
        .await
        .unwrap()
        .remove(0)
    else {
        panic!()
    };
    // Someone adds a fax in the ERP; the CRM changes the name only.
    sandbox
        .k3cloud_insert(
            "BD_Customer",
            json!({"FCUSTID": target.id.parse::<i64>().unwrap(), "FFAX": "021-9999"}),
        )
        .ok();
    let changed = json!({"FNumber": "C001", "FName": "甲公司（新）"});
    let outcome = sink
        .write(&[item("crm-1", changed, Some(target.clone()))])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(outcome, WriteOutcome::Updated(target.clone()));
    let saved = sandbox.k3cloud_record("BD_Customer", "C001").unwrap();
    assert_eq!(field(&saved, "FName"), "甲公司（新）");
    assert_eq!(
        field(&saved, "FTEL"),
        "021-1234",
        "an unmapped field is left alone: {saved}"
    );
    assert_eq!(sandbox.k3cloud_records("BD_Customer").len(), 1);

    let refusing = customers(&sandbox, UpdatePolicy::Refuse);
    let outcome = refusing
        .write(&[item(
            "crm-1",
            json!({"FNumber": "C001", "FName": "x"}),
            Some(target),
        )])
        .await
        .unwrap()
        .remove(0);
    assert!(
        matches!(outcome, WriteOutcome::Failed { ref reason, .. } if reason.contains("does not update"))
    );
}

/// The text of a field in the sandbox's record, which uses View's ORM names (`FName` is
/// `Name`, multilingual as `[{"Key": 2052, "Value": …}]`).
fn field(record: &Value, key: &str) -> String {
    let v = record
        .get(key)
        .or_else(|| record.get(key.trim_start_matches('F')));
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(texts)) => texts
            .first()
            .and_then(|t| t["Value"].as_str())
            .unwrap_or_default()
            .to_owned(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Now, in whole seconds, as epoch ms: the sandbox's clock is frozen here and signed headers
/// from the client's real clock stay inside its timestamp window.
fn now_ms() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap() * 1000
}

#[tokio::test]
async fn a_dropped_answer_is_reconciled_without_a_duplicate() {
    let sandbox = start().await;
    let _ =
        sandbox.set_fault(Fault::new(Api::K3cloud, "BatchSave", FaultKind::DropAfterWrite).next(1));
    let crm = Arc::new(MemorySource::new());
    for i in 1..=5 {
        crm.upsert(Record::new(
            format!("crm-{i}"),
            1_700_000_000_000 + i,
            json!({"no": format!("C{i:03}"), "name": format!("客户{i}")}),
        ));
    }
    let mapping = DeclarativeMapping::from_toml(
        r#"
        natural_key = "FNumber"
        [[fields]]
        target = "FCreateOrgId"
        constant = "100"
        reference = "FNumber"
        [[fields]]
        target = "FNumber"
        source = "no"
        [[fields]]
        target = "FName"
        source = "name"
        "#,
    )
    .unwrap();
    let sink = Arc::new(customers(
        &sandbox,
        UpdatePolicy::MappedFields {
            replace_entries: false,
        },
    ));
    let flow = Flow::builder("customers", crm, Arc::new(mapping), sink)
        .build()
        .unwrap();
    let engine = Engine::new(Arc::new(MemoryStore::new()));
    let first = engine.run(&flow).await.unwrap();
    // The write happened but its answer was lost: the engine found the documents by number.
    assert_eq!(sandbox.k3cloud_records("BD_Customer").len(), 5);
    let second = engine.run(&flow).await.unwrap();
    assert_eq!(
        sandbox.k3cloud_records("BD_Customer").len(),
        5,
        "no duplicates: {first:?} {second:?}"
    );
    assert_eq!(
        sandbox.calls("k3cloud:BatchSave"),
        1,
        "nothing was sent twice"
    );
    assert_eq!(second.counts.created + second.counts.updated, 0);
}

#[tokio::test]
async fn actions_submit_and_audit_and_count_a_repeat_as_done() {
    let sandbox = start().await;
    let sink = customers(
        &sandbox,
        UpdatePolicy::MappedFields {
            replace_entries: false,
        },
    );
    let outcomes = sink
        .write(&[
            item("a", customer("C001", "甲"), None),
            item("b", customer("C002", "乙"), None),
        ])
        .await
        .unwrap();
    let targets: Vec<TargetRef> = outcomes
        .iter()
        .map(|o| match o {
            WriteOutcome::Created(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sink.action("Submit", &targets).await.unwrap(),
        [ActionOutcome::Done, ActionOutcome::Done]
    );
    assert_eq!(
        sink.action("Audit", &targets).await.unwrap(),
        [ActionOutcome::Done, ActionOutcome::Done]
    );
    let audited = sandbox.k3cloud_record("BD_Customer", "C001").unwrap();
    assert_eq!(field(&audited, "FDocumentStatus"), "C", "{audited}");
    // After a crash the engine repeats the action: "already audited" counts as done.
    assert_eq!(
        sink.action("Audit", &targets[..1]).await.unwrap(),
        [ActionOutcome::Done]
    );
    // A real failure stays a failure: an unknown id.
    let ghost = TargetRef::new("999999", None);
    assert!(matches!(
        &sink.action("Audit", &[ghost]).await.unwrap()[0],
        ActionOutcome::Failed { .. }
    ));
}

#[tokio::test]
async fn a_repeated_action_is_done_for_every_document_under_a_server_row_cap() {
    let sandbox = Sandbox::builder()
        .demo_data(false)
        .k3cloud(fxk3_simulators::K3CloudConfig {
            max_query_rows: 2,
            ..fxk3_simulators::K3CloudConfig::default()
        })
        .start()
        .await
        .unwrap();
    let sink = customers(
        &sandbox,
        UpdatePolicy::MappedFields {
            replace_entries: false,
        },
    );
    let items: Vec<WriteItem> = (1..=5)
        .map(|i| item(&format!("k{i}"), customer(&format!("C00{i}"), "甲"), None))
        .collect();
    let targets: Vec<TargetRef> = sink
        .write(&items)
        .await
        .unwrap()
        .into_iter()
        .map(|o| match o {
            WriteOutcome::Created(t) => t,
            other => panic!("{other:?}"),
        })
        .collect();
    sink.action("Submit", &targets).await.unwrap();
    sink.action("Audit", &targets).await.unwrap();
    // The repeat fails on the server for all five; their statuses are read in pages of two.
    assert_eq!(
        sink.action("Audit", &targets).await.unwrap(),
        vec![ActionOutcome::Done; 5]
    );
}

#[tokio::test]
async fn a_repeated_action_whose_status_cannot_be_read_is_unknown_not_failed() {
    let sandbox = start().await;
    let sink = customers(
        &sandbox,
        UpdatePolicy::MappedFields {
            replace_entries: false,
        },
    );
    let targets: Vec<TargetRef> = sink
        .write(&[item("a", customer("C001", "甲"), None)])
        .await
        .unwrap()
        .into_iter()
        .map(|o| match o {
            WriteOutcome::Created(t) => t,
            other => panic!("{other:?}"),
        })
        .collect();
    sink.action("Submit", &targets).await.unwrap();
    sink.action("Audit", &targets).await.unwrap();
    // "Already audited" comes back, and the status query that would tell so fails.
    let fault = sandbox.set_fault(Fault::new(
        Api::K3cloud,
        "ExecuteBillQuery",
        FaultKind::ServerError { status: 502 },
    ));
    let outcomes = sink.action("Audit", &targets).await.unwrap();
    assert!(
        matches!(&outcomes[..], [ActionOutcome::Unknown { reason }] if reason.contains("已经审核")),
        "{outcomes:?}"
    );
    assert!(sandbox.remove_fault(fault));
    assert_eq!(
        sink.action("Audit", &targets).await.unwrap(),
        [ActionOutcome::Done]
    );
}

#[tokio::test]
async fn find_existing_targets_and_describe() {
    let sandbox = start().await;
    let sink = customers(
        &sandbox,
        UpdatePolicy::MappedFields {
            replace_entries: false,
        },
    );
    sink.write(&[
        item("a", customer("C001", "甲"), None),
        item("b", customer("C002", "乙"), None),
    ])
    .await
    .unwrap();
    let found = sink.find("C002").await.unwrap().unwrap();
    assert_eq!(found.number.as_deref(), Some("C002"));
    assert_eq!(sink.find("C404").await.unwrap(), None);
    let existing = sink
        .existing_targets(&["C001".into(), "C002".into(), "C404".into()])
        .await
        .unwrap();
    let mut keys: Vec<(&str, Option<&str>)> = existing
        .iter()
        .map(|(k, t)| (k.as_str(), t.number.as_deref()))
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, [("C001", Some("C001")), ("C002", Some("C002"))]);
    assert_eq!(existing["C002"], found);
    let description = sink.describe().await.unwrap().unwrap();
    assert!(
        description.fields.get("FName").is_some_and(|f| f.required),
        "{description:?}"
    );
}

#[tokio::test]
async fn a_failed_call_names_k3cloud_and_keeps_the_sdk_error() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let client = k3cloud_sdk::Client::builder("http://127.0.0.1:9/k3cloud/")
        .account("acct")
        .user("u")
        .auth(k3cloud_sdk::Auth::signed("app", "secret"))
        .retry_policy(k3cloud_sdk::RetryPolicy::never())
        .build()
        .unwrap();
    let sink = FormSink::new(
        client,
        FormSinkConfig::new("BD_Customer", "FCUSTID", "FNumber"),
    );
    let e = sink.find("C001").await.unwrap_err();
    assert_eq!(e.kind(), sync_core::ConnectorErrorKind::Transient);
    assert_eq!(e.system(), Some(sync_core::System::K3Cloud));
    assert!(
        matches!(
            e.source_as::<k3cloud_sdk::Error>(),
            Some(k3cloud_sdk::Error::Connect { .. })
        ),
        "{e:?}"
    );
    assert!(std::error::Error::source(&e).is_some());
}

/// Outbound deliveries with `lines` entry rows each, all saved at one frozen instant so that
/// paging must break ties on FID.
async fn deliveries(sandbox: &Sandbox, count: usize, lines: usize) {
    let k3 = client(sandbox);
    k3.save("BD_MATERIAL")
        .model(json!({"FCreateOrgId": {"FNumber": "100"}, "FNumber": "MAT0001", "FName": "物料"}))
        .send()
        .await
        .unwrap();
    k3.save("BD_Customer")
        .model(customer("C001", "甲"))
        .send()
        .await
        .unwrap();
    for i in 0..count {
        let entries: Vec<Value> = (0..lines)
            .map(|l| json!({"FMaterialID": {"FNumber": "MAT0001"}, "FRealQty": l + 1, "FSoorDerno": format!("SO{i:03}")}))
            .collect();
        let saved = k3
            .save("SAL_OUTSTOCK")
            .model(
                json!({"FStockOrgId": {"FNumber": "100"}, "FCustomerID": {"FNumber": "C001"},
                          "FCarriageNO": format!("SF{i:04}"), "FEntity": entries}),
            )
            .send()
            .await
            .unwrap();
        k3.submit("SAL_OUTSTOCK")
            .numbers([saved.number.as_str()])
            .send()
            .await
            .unwrap();
        k3.audit("SAL_OUTSTOCK")
            .numbers([saved.number.as_str()])
            .send()
            .await
            .unwrap();
    }
}

fn outstock_source(sandbox: &Sandbox, rows_per_call: u32) -> FormSource {
    FormSource::new(
        client(sandbox),
        FormSourceConfig::new("SAL_OUTSTOCK")
            .fields(["FBillNo", "FCustomerID.FNumber", "FCarriageNO"])
            .entry(
                "FEntity",
                [
                    "FEntity_FEntryID",
                    "FMaterialID.FNumber",
                    "FRealQty",
                    "FSoorDerno",
                ],
            )
            .filter("FDocumentStatus = 'C'")
            .rows_per_call(rows_per_call),
    )
}

#[tokio::test]
async fn the_form_source_describes_header_fields_and_entries() {
    let sandbox = start().await;
    let d = outstock_source(&sandbox, 100)
        .describe()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.name, "SAL_OUTSTOCK");
    assert!(d.fields.contains_key("FCarriageNO"), "{d:?}");
    assert!(
        d.entries["FEntity"].fields.contains_key("FSoorDerno"),
        "{d:?}"
    );
}

#[tokio::test]
async fn the_form_source_groups_entries_and_pages_by_keyset() {
    let now = now_ms();
    let sandbox = Sandbox::builder()
        .demo_data(false)
        .clock(Clock::frozen_at_ms(now))
        .start()
        .await
        .unwrap();
    deliveries(&sandbox, 7, 3).await;
    // 7 documents × 3 rows, 5 rows per call: pages end inside documents and every document
    // shares one modification time.
    let source = outstock_source(&sandbox, 5);
    let window = Window {
        low: now - 60_000,
        high: now + 60_000,
    };
    let mut after = None;
    let mut seen: Vec<Record> = Vec::new();
    loop {
        let page: Page = source
            .read_page(&PageRequest {
                window,
                after: after.clone(),
                token: None,
                limit: 100,
            })
            .await
            .unwrap();
        assert!(
            page.records
                .windows(2)
                .all(|w| (w[0].version, &w[0].key) < (w[1].version, &w[1].key))
        );
        after = page.records.last().map(Record::position).or(after);
        seen.extend(page.records);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen.len(), 7, "every document once");
    let numbers: std::collections::BTreeSet<&str> = seen
        .iter()
        .map(|r| r.body["FBillNo"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 7);
    for r in &seen {
        assert_eq!(r.version, now);
        assert_eq!(r.body["FCustomerID"]["FNumber"], "C001");
        let lines = r.body["FEntity"].as_array().unwrap();
        assert_eq!(lines.len(), 3, "{}", r.body);
        assert_eq!(lines[2]["FRealQty"].as_f64(), Some(3.0));
        let got = source.get(&r.key).await.unwrap().unwrap();
        assert_eq!(got.body, r.body);
    }
    // Several documents by key in one query, all their rows (5 per call: the pager reads on).
    let keys: Vec<String> = seen.iter().skip(2).map(|r| r.key.clone()).collect();
    let before = sandbox.calls("k3cloud:ExecuteBillQuery");
    let many = source.get_many(&keys).await.unwrap();
    assert_eq!(many, seen[2..]);
    assert_eq!(
        sandbox.calls("k3cloud:ExecuteBillQuery") - before,
        4,
        "15 rows, 5 a call, then an empty page"
    );
    // Nothing outside the window.
    let empty = source
        .read_page(&PageRequest {
            window: Window {
                low: now + 1,
                high: now + 2,
            },
            after: None,
            token: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(empty.records.is_empty() && !empty.has_more);
}

#[tokio::test]
async fn the_engine_reads_every_delivery_once_through_the_form_source() {
    let now = now_ms();
    let sandbox = Sandbox::builder()
        .demo_data(false)
        .clock(Clock::frozen_at_ms(now))
        .start()
        .await
        .unwrap();
    deliveries(&sandbox, 12, 2).await;
    let mapping = DeclarativeMapping::from_toml(
        r#"
        natural_key = "bill"
        [[fields]]
        target = "bill"
        source = "FBillNo"
        [[fields]]
        target = "order"
        source = "FEntity[0].FSoorDerno"
        "#,
    )
    .unwrap();
    let crm = Arc::new(MemorySink::new());
    let flow = Flow::builder(
        "deliveries",
        Arc::new(outstock_source(&sandbox, 3)),
        Arc::new(mapping),
        crm.clone(),
    )
    .start_from_ms(now - 60_000)
    .settle_ms(0)
    .build()
    .unwrap();
    let engine = Engine::new(Arc::new(MemoryStore::new()))
        .with_clock(Arc::new(sync_core::ManualClock::new(now + 10_000)));
    let report = engine.run(&flow).await.unwrap();
    assert_eq!(report.counts.created, 12, "{report:?}");
    let documents = crm.documents();
    assert_eq!(documents.len(), 12);
    let orders: std::collections::BTreeSet<String> = documents
        .iter()
        .map(|d| d.payload["order"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        orders.len(),
        12,
        "each delivery names its own order: {orders:?}"
    );
    let again = engine.run(&flow).await.unwrap();
    assert_eq!(again.counts.created, 0);
}

#[tokio::test]
async fn a_server_row_cap_below_the_page_size_skips_no_document() {
    let now = now_ms();
    let sandbox = Sandbox::builder()
        .demo_data(false)
        .clock(Clock::frozen_at_ms(now))
        .k3cloud(fxk3_simulators::K3CloudConfig {
            max_query_rows: 5,
            ..fxk3_simulators::K3CloudConfig::default()
        })
        .start()
        .await
        .unwrap();
    deliveries(&sandbox, 12, 2).await;
    let mapping = DeclarativeMapping::from_toml(
        "natural_key = \"bill\"\n[[fields]]\ntarget = \"bill\"\nsource = \"FBillNo\"",
    )
    .unwrap();
    let crm = Arc::new(MemorySink::new());
    // 100 rows asked for, 5 served: every page is short.
    let flow = Flow::builder(
        "deliveries",
        Arc::new(outstock_source(&sandbox, 100)),
        Arc::new(mapping),
        crm.clone(),
    )
    .start_from_ms(now - 60_000)
    .settle_ms(0)
    .build()
    .unwrap();
    let engine = Engine::new(Arc::new(MemoryStore::new()))
        .with_clock(Arc::new(sync_core::ManualClock::new(now + 10_000)));
    let report = engine.run(&flow).await.unwrap();
    assert_eq!(report.counts.created, 12, "{report:?}");
    assert_eq!(crm.documents().len(), 12);
    assert_eq!(crm.duplicates(), 0);
}

#[tokio::test]
async fn a_flow_whose_natural_key_is_not_the_field_the_sink_finds_by_is_refused() {
    let sandbox = start().await;
    let mapping = |key: &str| {
        Arc::new(
            DeclarativeMapping::from_toml(&format!(
                "natural_key = \"{key}\"\n[[fields]]\ntarget = \"FNumber\"\nsource = \"no\"\n\
                 [[fields]]\ntarget = \"F_CrmId\"\nsource = \"_id\""
            ))
            .unwrap(),
        )
    };
    let build = |key: &str| {
        Flow::builder(
            "customers",
            Arc::new(MemorySource::new()),
            mapping(key),
            Arc::new(customers(
                &sandbox,
                UpdatePolicy::MappedFields {
                    replace_entries: false,
                },
            )),
        )
        .build()
    };
    let e = build("F_CrmId").unwrap_err();
    assert!(
        e.to_string()
            .contains("natural_key is `F_CrmId`, but the sink finds documents by `FNumber`"),
        "{e}"
    );
    assert!(build("FNumber").is_ok());
}

/// An ERP where customer C001 was allocated from organisation 100 to 200: two rows, two ids,
/// one number (the simulator keeps numbers unique, so a scripted server stands in).
async fn allocated_customer() -> wiremock::MockServer {
    use wiremock::matchers::path_regex;
    use wiremock::{Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    Mock::given(path_regex("ExecuteBillQuery"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"[["C001",100,"C001","100","100"],["C001",200,"C001","200","100"]]"#,
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path_regex("ExecuteBillQuery"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_customer_allocated_to_several_organisations_is_found_once() {
    let erp = |server: &wiremock::MockServer, config: FormSinkConfig| {
        FormSink::new(
            k3cloud_sdk::Client::builder(server.uri())
                .account("acct")
                .user("webapi")
                .auth(k3cloud_sdk::Auth::signed("app", "secret-of-the-app"))
                .build()
                .unwrap(),
            config,
        )
    };
    // The row of the organisation that created it; the copy is not a second document.
    let server = allocated_customer().await;
    let sink = erp(
        &server,
        FormSinkConfig::new("BD_Customer", "FCUSTID", "FNumber"),
    );
    assert_eq!(
        sink.find("C001").await.unwrap(),
        Some(TargetRef::new("100", Some("C001".into())))
    );
    let asked = server.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&asked[0].body).into_owned();
    assert!(
        body.contains("FUseOrgId.FNumber") && body.contains("FCreateOrgId.FNumber"),
        "{body}"
    );
    // With the flow's use organisation, the lookup is within it.
    let server = allocated_customer().await;
    let sink = erp(
        &server,
        FormSinkConfig::new("BD_Customer", "FCUSTID", "FNumber").use_org("200"),
    );
    sink.find("C001").await.unwrap();
    let asked = server.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&asked[0].body).into_owned();
    assert!(body.contains(r"FUseOrgId.FNumber = '200'"), "{body}");
}

#[tokio::test]
async fn a_create_refused_because_its_number_is_taken_is_found_not_dead_lettered() {
    let sandbox = start().await;
    let sink = customers(
        &sandbox,
        UpdatePolicy::MappedFields {
            replace_entries: false,
        },
    );
    // The document exists already (an earlier create whose answer and intent were lost).
    let existing = sink
        .write(&[item("crm-1", customer("C001", "甲公司"), None)])
        .await
        .unwrap();
    let WriteOutcome::Created(made) = &existing[0] else {
        panic!("{existing:?}")
    };
    let again = sink
        .write(&[
            item("crm-1", customer("C001", "甲公司"), None),
            item("crm-2", customer("C002", "乙公司"), None),
        ])
        .await
        .unwrap();
    assert!(
        matches!(&again[0], WriteOutcome::Unknown { reason } if reason.contains("违反字段唯一性要求")),
        "{again:?}"
    );
    assert!(matches!(&again[1], WriteOutcome::Created(_)), "{again:?}");
    // The engine then finds it by its number: the ID map points at the one document.
    assert_eq!(sink.find("C001").await.unwrap().as_ref(), Some(made));
    assert_eq!(sandbox.k3cloud_records("BD_Customer").len(), 2);
}

#[tokio::test]
async fn a_session_lost_on_the_server_costs_signed_headers_nothing_and_a_password_session_a_login()
{
    // k3cloud.md §3.1.2: under signed headers an unknown session id is ignored and a new one
    // issued, so a session the server dropped never shows; a password session is refused
    // (MsgCode 1), and the client logs in again and sends the call once more.
    let sandbox = start().await;
    let c = sandbox.config().k3cloud.clone();
    let signed = client(&sandbox);
    let password = k3cloud_sdk::Client::builder(sandbox.k3cloud_url())
        .account(&c.acct_id)
        .user(&c.user_name)
        .auth(k3cloud_sdk::Auth::password(&c.password))
        .build()
        .unwrap();
    let logins = || sandbox.calls("k3cloud:ValidateUser");
    for (client, number, calls, logins_after) in [(&signed, "C1", 1, 0), (&password, "C2", 2, 2)] {
        // A first call, so that the client holds a session when the server drops it.
        let rows: Vec<Value> = client
            .bill_query("BD_Customer")
            .fields(["FNumber"])
            .send()
            .await
            .unwrap();
        assert_eq!(rows.len(), usize::from(number == "C2"));
        let before = sandbox.calls("k3cloud:BatchSave");
        let _ = sandbox
            .set_fault(Fault::new(Api::K3cloud, "BatchSave", FaultKind::SessionLoss).next(1));
        let saved = client
            .batch_save("BD_Customer")
            .models(vec![customer(number, "客户")])
            .send()
            .await
            .unwrap();
        assert_eq!(saved.rows.len(), 1, "{number}");
        assert!(saved.status.is_success, "{number}: {:?}", saved.status);
        assert_eq!(
            sandbox.calls("k3cloud:BatchSave") - before,
            calls,
            "{number}"
        );
        assert_eq!(logins(), logins_after, "{number}");
    }
    assert_eq!(sandbox.k3cloud_records("BD_Customer").len(), 2);
}

#[tokio::test]
async fn bill_queries_filter_with_the_numeric_compare_codes_public_clients_send() {
    use k3cloud_sdk::{Compare, FilterItem};
    let sandbox = start().await;
    let client = client(&sandbox);
    let models = vec![
        customer("MAT01", "上海客户"),
        customer("MAT02", "北京客户"),
        customer("X03", "上海门店"),
    ];
    let saved = client
        .batch_save("BD_Customer")
        .models(models)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.rows.len(), 3);
    let numbers = |items: Vec<FilterItem>| {
        let client = client.clone();
        async move {
            let rows: Vec<Value> = client
                .bill_query("BD_Customer")
                .fields(["FNumber"])
                .filter(items)
                .order_by("FNumber")
                .send()
                .await
                .unwrap();
            rows.into_iter()
                .map(|r| r["FNumber"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // (FNumber starts with MAT or FName contains 门店) and status is A (created, not audited).
    let found = numbers(vec![
        FilterItem::compare("FNumber", Compare::StartsWith, "MAT")
            .or_next()
            .parens("(", ""),
        FilterItem::compare("FName", Compare::Contains, "门店").parens("", ")"),
        FilterItem::compare("FDocumentStatus", Compare::StatusEqual, "A"),
    ])
    .await;
    assert_eq!(found, ["MAT01", "MAT02", "X03"]);
    let found = numbers(vec![
        FilterItem::is_in("FNumber", ["MAT02", "X03"]),
        FilterItem::compare("FNumber", Compare::NotEqual, "X03"),
    ])
    .await;
    assert_eq!(found, ["MAT02"]);
    let found = numbers(vec![FilterItem::compare(
        "FName",
        Compare::Equal,
        "上海客户",
    )])
    .await;
    assert_eq!(found, ["MAT01"]);
}

#[tokio::test]
async fn view_reads_the_answers_of_older_and_current_servers() {
    // An older server answers a View with `"ResponseStatus": null` (the one real sample);
    // current clients check `Result.ResponseStatus.IsSuccess` after a View, i.e. current servers
    // send a full status. The client reads both alike.
    use fxk3_simulators::{K3CloudConfig, K3Release};
    let mut documents = Vec::new();
    for release in [K3Release::Legacy, K3Release::Current] {
        let sandbox = Sandbox::builder()
            .demo_data(false)
            .k3cloud(K3CloudConfig {
                release,
                ..K3CloudConfig::default()
            })
            .start()
            .await
            .unwrap();
        let client = client(&sandbox);
        client
            .batch_save("BD_Customer")
            .models(vec![customer("C1", "上海客户")])
            .send()
            .await
            .unwrap();
        let view = client
            .view("BD_Customer")
            .number("C1")
            .send()
            .await
            .unwrap();
        let status = &view.raw["Result"]["ResponseStatus"];
        match release {
            K3Release::Legacy => assert_eq!(status, &Value::Null),
            _ => assert_eq!(
                (&status["IsSuccess"], &status["MsgCode"], &status["Errors"]),
                (&json!(true), &json!(0), &json!([]))
            ),
        }
        assert_eq!(view.document["Number"], "C1", "{release:?}");
        documents.push(view.document);
    }
    assert_eq!(documents[0]["Name"], documents[1]["Name"]);
}

#[tokio::test]
async fn an_older_servers_login_without_a_session_id_in_its_body_logs_in_by_the_cookie() {
    // k3cloud.md §3.2.1: v7 answered a successful login with `KDSVCSessionId: null` and a
    // licence warning; the session is only in the cookie.
    use fxk3_simulators::{K3CloudConfig, K3Release};
    let sandbox = Sandbox::builder()
        .demo_data(false)
        .k3cloud(K3CloudConfig {
            release: K3Release::Legacy,
            ..K3CloudConfig::default()
        })
        .start()
        .await
        .unwrap();
    let c = sandbox.config().k3cloud.clone();
    let client = k3cloud_sdk::Client::builder(sandbox.k3cloud_url())
        .account(&c.acct_id)
        .user(&c.user_name)
        .auth(k3cloud_sdk::Auth::password(&c.password))
        .build()
        .unwrap();
    let info = client.login().await.unwrap();
    assert!(
        info.message.as_deref().unwrap_or_default().contains("许可"),
        "{info:?}"
    );
    let saved = client
        .batch_save("BD_Customer")
        .models(vec![customer("C1", "客户")])
        .send()
        .await
        .unwrap();
    assert!(saved.status.is_success, "{:?}", saved.status);
    assert_eq!(
        sandbox.calls("k3cloud:ValidateUser"),
        1,
        "one login, no re-login"
    );
}

#[tokio::test]
async fn a_forbid_status_in_the_payload_forbids_and_enables_the_document() {
    let sandbox = start().await;
    let sink = FormSink::new(
        client(&sandbox),
        FormSinkConfig::new("BD_Customer", "FCUSTID", "FNumber")
            .forbid_status_field("FForbidStatus"),
    );
    let with_status = |number: &str, status: &str| {
        let mut payload = customer(number, "客户");
        payload["FForbidStatus"] = json!(status);
        payload
    };
    let record = |number: &str| sandbox.k3cloud_record("BD_Customer", number);
    let forbid_status = |number: &str| record(number).unwrap()["ForbidStatus"].clone();
    let ops = || sandbox.calls("k3cloud:ExcuteOperation");
    // One in use is created; one forbidden (an account invalidated before it ever reached
    // the ERP) is not created at all.
    let out = sink
        .write(&[
            item("c1", with_status("C1", "A"), None),
            item("c9", with_status("C9", "B"), None),
        ])
        .await
        .unwrap();
    let WriteOutcome::Created(c1) = out[0].clone() else {
        panic!("{out:?}")
    };
    assert!(
        matches!(&out[1], WriteOutcome::Skipped { reason } if reason.contains("not created")),
        "{out:?}"
    );
    assert!(record("C9").is_none());
    assert_eq!((forbid_status("C1"), ops()), (json!("A"), 0));
    // Invalidated in the CRM: forbidden; the status key is never sent in a Save.
    let out = sink
        .write(&[item("c1", with_status("C1", "B"), Some(c1.clone()))])
        .await
        .unwrap();
    assert!(matches!(out[0], WriteOutcome::Updated(_)), "{out:?}");
    assert_eq!((forbid_status("C1"), ops()), (json!("B"), 1));
    assert!(record("C1").unwrap().get("FForbidStatus").is_none());
    // Recovered: enabled; an update of one already in use sends no Enable.
    let out = sink
        .write(&[item("c1", with_status("C1", "A"), Some(c1.clone()))])
        .await
        .unwrap();
    assert!(matches!(out[0], WriteOutcome::Updated(_)), "{out:?}");
    assert_eq!((forbid_status("C1"), ops()), (json!("A"), 2));
    sink.write(&[item("c1", with_status("C1", "A"), Some(c1.clone()))])
        .await
        .unwrap();
    assert_eq!(ops(), 2, "no Enable for a document in use");
    // Forbidden twice in a row (a retry after a lost answer): one Forbid.
    for _ in 0..2 {
        sink.write(&[item("c1", with_status("C1", "B"), Some(c1.clone()))])
            .await
            .unwrap();
    }
    assert_eq!((forbid_status("C1"), ops()), (json!("B"), 3));
    sink.write(&[item("c1", with_status("C1", "A"), Some(c1.clone()))])
        .await
        .unwrap();
    assert_eq!((forbid_status("C1"), ops()), (json!("A"), 4));
    // The Forbid call fails: a retryable failure, and the next attempt sets the status.
    let _ = sandbox.set_fault(
        Fault::new(
            Api::K3cloud,
            "ExcuteOperation",
            FaultKind::ServerError { status: 502 },
        )
        .next(10),
    );
    let out = sink
        .write(&[item("c1", with_status("C1", "B"), Some(c1.clone()))])
        .await
        .unwrap();
    assert!(
        matches!(&out[0], WriteOutcome::Failed { reason, retryable: true }
            if reason.starts_with("saved, but its forbid status was not set: Forbid")),
        "{out:?}"
    );
    sandbox.clear_faults();
    let out = sink
        .write(&[item("c1", with_status("C1", "B"), Some(c1))])
        .await
        .unwrap();
    assert!(matches!(out[0], WriteOutcome::Updated(_)), "{out:?}");
    assert_eq!(forbid_status("C1"), json!("B"));
}

/// An ERP holding draft order SO1 (id 100001) with one row (entry 7) of CRM line L1.
async fn draft_order() -> wiremock::MockServer {
    use wiremock::matchers::path_regex;
    use wiremock::{Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    Mock::given(path_regex("ExecuteBillQuery"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"[[100001,"SO1","A","A",7,"L1"]]"#),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path_regex("ExecuteBillQuery"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;
    Mock::given(path_regex("BatchSave"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"Result":{"ResponseStatus":{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":100001,"Number":"SO1","DIndex":0}],"SuccessMessages":[],"MsgCode":0},"NeedReturnData":[{}]}}"#,
        ))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn an_order_edit_reads_the_state_then_saves_the_mapped_fields_with_the_rows_entry_ids() {
    use sync_core::k3cloud::BillLifecycle;
    let server = draft_order().await;
    let sink = FormSink::new(
        k3cloud_sdk::Client::builder(server.uri())
            .account("acct")
            .user("webapi")
            .auth(k3cloud_sdk::Auth::signed("app", "secret-of-the-app"))
            .build()
            .unwrap(),
        FormSinkConfig::new("SAL_SaleOrder", "FID", "FBillNo").bill_lifecycle(
            BillLifecycle::new("FCancelStatus").lines("FSaleOrderEntry", "F_CRM_LineId"),
        ),
    );
    let payload = json!({"FBillNo": "SO1", "FNote": "改期", "FCancelStatus": "A",
        "FSaleOrderEntry": [{"F_CRM_LineId": "L1", "FQty": 20}, {"F_CRM_LineId": "L2", "FQty": 5}]});
    let target = TargetRef::new("100001", Some("SO1".into()));
    let out = sink
        .write(&[WriteItem {
            source_key: "crm-1".into(),
            natural_key: "SO1".into(),
            payload,
            target: Some(target.clone()),
        }])
        .await
        .unwrap();
    assert_eq!(out, [WriteOutcome::Updated(target)]);
    let asked = server.received_requests().await.unwrap();
    // The state query's pager asks once more to learn there is no more (a server row cap may
    // sit below the page size), then the one save.
    assert_eq!(asked.len(), 3);
    let body = |i: usize| -> Value {
        let outer: Value = serde_json::from_slice(&asked[i].body).unwrap();
        outer["data"].clone()
    };
    let query = body(0);
    assert_eq!(
        query["FieldKeys"],
        "FID,FBillNo,FDocumentStatus,FCloseStatus,FSaleOrderEntry_FEntryID,F_CRM_LineId"
    );
    assert_eq!(query["FilterString"], "FID in ('100001')");
    assert!(asked[1].url.path().contains("ExecuteBillQuery"));
    let save = body(2);
    assert_eq!(
        save["NeedUpDateFields"],
        json!([
            "FBillNo",
            "FNote",
            "FQty",
            "FSaleOrderEntry",
            "F_CRM_LineId"
        ])
    );
    assert_eq!(save["IsDeleteEntry"], json!("true"));
    assert_eq!(
        save["Model"],
        json!([{"FID": 100_001, "FBillNo": "SO1", "FNote": "改期", "FSaleOrderEntry": [
            {"FEntryID": 7, "F_CRM_LineId": "L1", "FQty": 20},
            {"F_CRM_LineId": "L2", "FQty": 5}]}]),
        "the cancel status never saved; the known line's row by its entry id"
    );
}
