//! The Fxiaoke connectors against the sandbox's Fxiaoke simulator: keyset paging over ties,
//! detail lines and references attached, creates/updates, update-only writes with owner
//! notifications, and the write-back.
#![cfg(feature = "fxiaoke")]

use std::collections::BTreeSet;

use fxk3_simulators::{Api, Clock, Fault, FaultKind, Sandbox};
use serde_json::{Value, json};
use sync_core::fxiaoke::{
    MessageSink, Notification, ObjectSink, ObjectSinkConfig, ObjectSource, ObjectSourceConfig,
    ObjectWriteBack, SinkMode,
};
use sync_core::{
    ActionOutcome, PageRequest, Record, Sink, Source, SourceWriteBack, TargetRef, Window,
    WriteBackItem, WriteBackOutcome, WriteItem, WriteOutcome,
};

/// The admin of the simulated tenant (employee 1000).
const ADMIN: &str = "FSUID_0123456789ABCDEF0123456789ABCDEF";
const T0: i64 = 1_750_000_000_000;

fn client(sandbox: &Sandbox) -> fxiaoke_sdk::Client {
    let app = &sandbox.config().fxiaoke.apps[0];
    fxiaoke_sdk::Client::builder()
        .base_url(sandbox.fxiaoke_url())
        .app_id(&app.app_id)
        .app_secret(&app.app_secret)
        .permanent_code(&app.permanent_code)
        .operator(ADMIN)
        .build()
        .unwrap()
}

async fn start() -> Sandbox {
    Sandbox::builder()
        .demo_data(false)
        .clock(Clock::frozen_at_ms(T0))
        .start()
        .await
        .unwrap()
}

async fn read_all(source: &ObjectSource, window: Window, limit: usize) -> Vec<Record> {
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = source
            .read_page(&PageRequest {
                window,
                after: after.clone(),
                token: None,
                limit,
            })
            .await
            .unwrap();
        assert!(page.records.len() <= limit);
        if let (Some(a), Some(first)) = (&after, page.records.first()) {
            assert!(
                first.cmp_position(a).is_gt(),
                "pages continue strictly after the last record"
            );
        }
        after = page.records.last().map(Record::position).or(after);
        seen.extend(page.records);
        if !page.has_more {
            return seen;
        }
    }
}

#[tokio::test]
async fn keyset_pages_read_every_record_once_across_ties() {
    let sandbox = start().await;
    // 250 accounts over only 5 distinct modification times: pages end inside ties.
    for i in 0..250 {
        sandbox
            .fxiaoke_insert(
                "AccountObj",
                json!({"name": format!("客户{i}"), "account_no": format!("KH{i:05}"), "owner": [ADMIN],
                       "last_modified_time": T0 - 100_000 + (i % 5) * 1_000, "create_time": T0 - 200_000}),
            )
            .unwrap();
    }
    // One outside the window.
    sandbox
        .fxiaoke_insert(
            "AccountObj",
            json!({"name": "late", "owner": [ADMIN], "last_modified_time": T0}),
        )
        .unwrap();
    let source = ObjectSource::new(client(&sandbox), ObjectSourceConfig::new("AccountObj"));
    let window = Window {
        low: T0 - 100_000,
        high: T0,
    };
    let seen = read_all(&source, window, 40).await;
    assert_eq!(seen.len(), 250);
    let keys: BTreeSet<&str> = seen.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), 250, "no record read twice");
    assert!(
        seen.windows(2)
            .all(|w| (w[0].version, &w[0].key) < (w[1].version, &w[1].key))
    );
    assert!(seen.iter().all(|r| r.body["name"] != "late"));
    let one = source.get(&seen[7].key).await.unwrap().unwrap();
    assert_eq!(one.body["account_no"], seen[7].body["account_no"]);
    assert_eq!(source.get("000000000000000000000000").await.unwrap(), None);
    let keys: Vec<String> = seen[..150].iter().map(|r| r.key.clone()).collect();
    let before = sandbox.calls("fxiaoke:/cgi/crm/v2/data/query");
    let mut many = source.get_many(&keys).await.unwrap();
    many.sort_by(|a, b| (a.version, &a.key).cmp(&(b.version, &b.key)));
    assert_eq!(many, seen[..150]);
    assert_eq!(
        sandbox.calls("fxiaoke:/cgi/crm/v2/data/query") - before,
        2,
        "100 keys a query"
    );
    let described = source.describe().await.unwrap().unwrap();
    assert_eq!(described.name, "AccountObj");
    assert!(described.fields.contains_key("account_no"), "{described:?}");
    assert!(!described.fields.contains_key("FNumber"));
}

#[tokio::test]
async fn orders_come_with_their_lines_and_product_codes() {
    let sandbox = start().await;
    let p1 = sandbox
        .fxiaoke_insert(
            "ProductObj",
            json!({"name": "钢管", "product_code": "MAT0001", "price": "10", "owner": [ADMIN]}),
        )
        .unwrap();
    let p2 = sandbox
        .fxiaoke_insert(
            "ProductObj",
            json!({"name": "弯头", "product_code": "MAT0002", "price": "3", "owner": [ADMIN]}),
        )
        .unwrap();
    let account = sandbox
        .fxiaoke_insert(
            "AccountObj",
            json!({"name": "甲", "account_no": "KH00001", "owner": [ADMIN]}),
        )
        .unwrap();
    let order = sandbox
        .fxiaoke_insert(
            "SalesOrderObj",
            json!({"account_id": account, "order_time": T0, "owner": [ADMIN], "last_modified_time": T0 - 5_000,
                   "details": {"SalesOrderProductObj": [
                       {"product_id": p1, "quantity": "2", "sales_price": "10.00"},
                       {"product_id": p2, "quantity": "5", "sales_price": "2.80"}]}}),
        )
        .unwrap();
    let source = ObjectSource::new(
        client(&sandbox),
        ObjectSourceConfig::new("SalesOrderObj")
            .related(
                "SalesOrderProductObj",
                "order_id",
                "details.SalesOrderProductObj",
            )
            .expand(
                "details.SalesOrderProductObj",
                "product_id",
                "ProductObj",
                ["product_code"],
            )
            .expand("", "account_id", "AccountObj", ["account_no"]),
    );
    let seen = read_all(
        &source,
        Window {
            low: T0 - 60_000,
            high: T0,
        },
        100,
    )
    .await;
    assert_eq!(seen.len(), 1);
    let body = &seen[0].body;
    assert_eq!(seen[0].key, order);
    assert_eq!(body["account_id__ref"], json!({"account_no": "KH00001"}));
    let mut codes: Vec<&str> = body["details"]["SalesOrderProductObj"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["product_id__ref"]["product_code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, ["MAT0001", "MAT0002"]);
}

fn item(key: &str, payload: Value, target: Option<TargetRef>) -> WriteItem {
    let natural_key = payload["account_no"]
        .as_str()
        .or(payload["_id"].as_str())
        .unwrap_or_default()
        .to_owned();
    WriteItem {
        source_key: key.into(),
        natural_key,
        payload,
        target,
    }
}

#[tokio::test]
async fn upserts_create_update_and_find_by_natural_key() {
    let sandbox = start().await;
    let sink = ObjectSink::new(
        client(&sandbox),
        ObjectSinkConfig::new(
            "AccountObj",
            SinkMode::Upsert {
                key_field: "account_no".into(),
            },
        )
        .trigger_workflow(false),
    );
    let outcomes = sink
        .write(&[
            item(
                "erp-1",
                json!({"name": "甲", "account_no": "C001", "owner": [ADMIN]}),
                None,
            ),
            // No name, which is required: the vendor's refusal, for this record only.
            item(
                "erp-2",
                json!({"account_no": "C002", "owner": [ADMIN]}),
                None,
            ),
        ])
        .await
        .unwrap();
    let WriteOutcome::Created(created) = &outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(created.number.as_deref(), Some("C001"));
    // The code of business refusals is not known (the reference's sample uses -1, which its
    // code table calls "busy"), so only the message is checked.
    assert!(
        matches!(&outcomes[1], WriteOutcome::Failed { reason, .. } if reason.contains("必填")),
        "{outcomes:?}"
    );
    assert_eq!(sink.find("C001").await.unwrap().as_ref(), Some(created));
    assert_eq!(sink.find("C404").await.unwrap(), None);

    let updated = sink
        .write(&[item(
            "erp-1",
            json!({"name": "甲（新）", "account_no": "C001"}),
            Some(created.clone()),
        )])
        .await
        .unwrap();
    assert_eq!(updated, [WriteOutcome::Updated(created.clone())]);
    assert_eq!(
        sandbox.fxiaoke_record("AccountObj", &created.id).unwrap()["name"],
        "甲（新）"
    );
    let existing = sink
        .existing_targets(&["C001".into(), "C404".into()])
        .await
        .unwrap();
    assert_eq!(existing.len(), 1);
    assert_eq!(existing["C001"].id, created.id);
    assert!(
        sink.describe()
            .await
            .unwrap()
            .unwrap()
            .fields
            .contains_key("account_no")
    );
}

#[tokio::test]
async fn an_order_is_created_and_updated_with_its_lines() {
    let sandbox = start().await;
    let account = sandbox
        .fxiaoke_insert(
            "AccountObj",
            json!({"name": "甲", "account_no": "KH00001", "owner": [ADMIN]}),
        )
        .unwrap();
    let product = sandbox
        .fxiaoke_insert(
            "ProductObj",
            json!({"name": "钢管", "product_code": "MAT0001", "owner": [ADMIN]}),
        )
        .unwrap();
    let sink = ObjectSink::new(
        client(&sandbox),
        ObjectSinkConfig::new(
            "SalesOrderObj",
            SinkMode::Upsert {
                key_field: "remark".into(),
            },
        ),
    );
    let order = |qty: &str| {
        json!({"remark": "ERP-XSDD000001", "account_id": account, "owner": [ADMIN], "order_time": T0,
               "details": {"SalesOrderProductObj": [{"product_id": product, "quantity": qty, "sales_price": "10.00"}]}})
    };
    let write = |payload: Value, target: Option<TargetRef>| WriteItem {
        source_key: "100001".into(),
        natural_key: "ERP-XSDD000001".into(),
        payload,
        target,
    };
    let created = sink.write(&[write(order("2"), None)]).await.unwrap();
    let WriteOutcome::Created(target) = &created[0] else {
        panic!("{created:?}")
    };
    let quantities = || -> Vec<String> {
        sandbox
            .fxiaoke_records("SalesOrderProductObj")
            .iter()
            .filter(|l| l["order_id"] == json!(target.id))
            .map(|l| l["quantity"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(quantities(), ["2"]);
    // A changed line reaches the CRM with the update, not only the master's fields.
    let updated = sink
        .write(&[write(order("5"), Some(target.clone()))])
        .await
        .unwrap();
    assert_eq!(updated, [WriteOutcome::Updated(target.clone())]);
    assert_eq!(quantities(), ["5"]);
}

#[tokio::test]
async fn update_only_writes_and_notifies_the_owner_once_per_action() {
    let sandbox = start().await;
    let account = sandbox
        .fxiaoke_insert(
            "AccountObj",
            json!({"name": "甲", "account_no": "KH00001", "owner": [ADMIN]}),
        )
        .unwrap();
    let order = sandbox
        .fxiaoke_insert(
            "SalesOrderObj",
            json!({"name": "20250101-001", "account_id": account, "owner": [ADMIN], "order_time": T0}),
        )
        .unwrap();
    let sink = ObjectSink::new(
        client(&sandbox),
        ObjectSinkConfig::new(
            "SalesOrderObj",
            SinkMode::UpdateExisting {
                id_field: "_id".into(),
            },
        )
        .notify(Notification {
            action: "notify".into(),
            title: "发货通知".into(),
            text: "订单 {name} 已发货，物流单号 {remark}".into(),
        }),
    );
    let outcomes = sink
        .write(&[
            item(
                "delivery-1",
                json!({"_id": order, "remark": "SF1001"}),
                None,
            ),
            item("delivery-2", json!({"remark": "no order named"}), None),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes[0],
        WriteOutcome::Created(TargetRef::new(order.clone(), None))
    );
    assert!(
        matches!(&outcomes[1], WriteOutcome::Failed { reason, retryable: false } if reason.contains("_id"))
    );
    assert_eq!(
        sandbox.fxiaoke_record("SalesOrderObj", &order).unwrap()["remark"],
        "SF1001"
    );
    // The order exists whether or not an update landed: an unknown update is sent again.
    assert_eq!(sink.find(&order).await.unwrap(), None);
    assert!(!sink.action_repeatable("notify"));

    let done = sink
        .action("notify", &[TargetRef::new(order.clone(), None)])
        .await
        .unwrap();
    assert_eq!(done, [ActionOutcome::Done]);
    let messages = sandbox.fxiaoke_messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let text = messages[0].to_string();
    assert!(
        text.contains("发货通知") && text.contains("20250101-001") && text.contains("SF1001"),
        "{text}"
    );
    assert!(text.contains(ADMIN), "sent to the owner: {text}");
    assert!(sink.action("unknown", &[]).await.is_err());
}

#[tokio::test]
async fn the_erp_number_is_written_back() {
    let sandbox = start().await;
    let account = sandbox
        .fxiaoke_insert(
            "AccountObj",
            json!({"name": "甲", "account_no": "KH00001", "owner": [ADMIN]}),
        )
        .unwrap();
    let write_back = ObjectWriteBack::new(client(&sandbox), "AccountObj", "remark");
    let outcomes = write_back
        .write_back(&[
            WriteBackItem {
                source_key: account.clone(),
                target: TargetRef::new("100123", Some("KH00001".into())),
            },
            WriteBackItem {
                source_key: "ffffffffffffffffffffffff".into(),
                target: TargetRef::new("1", None),
            },
        ])
        .await
        .unwrap();
    assert_eq!(outcomes[0], WriteBackOutcome::Done);
    assert!(matches!(outcomes[1], WriteBackOutcome::Failed { .. }));
    assert_eq!(
        sandbox.fxiaoke_record("AccountObj", &account).unwrap()["remark"],
        "KH00001"
    );
}

#[tokio::test]
async fn the_message_sink_sends_one_message_per_record() {
    let sandbox = start().await;
    let sink = MessageSink::new(client(&sandbox));
    let outcomes = sink
        .write(&[
            WriteItem {
                source_key: "d1".into(),
                natural_key: "d1".into(),
                payload: json!({"to": [ADMIN], "title": "发货通知", "text": "订单已发货"}),
                target: None,
            },
            WriteItem {
                source_key: "d2".into(),
                natural_key: "d2".into(),
                payload: json!({"text": "nobody"}),
                target: None,
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes[0],
        WriteOutcome::Created(TargetRef::new("d1", None))
    );
    assert!(matches!(
        outcomes[1],
        WriteOutcome::Failed {
            retryable: false,
            ..
        }
    ));
    assert_eq!(sandbox.fxiaoke_messages().len(), 1);
    // A message cannot be looked up: the engine reports an unknown one and never resends it.
    assert!(!sink.write_repeatable());
    assert_eq!(
        sink.find("d9").await.unwrap_err().kind(),
        sync_core::ConnectorErrorKind::Unsupported
    );
}

#[tokio::test]
async fn a_token_refused_twice_in_a_row_is_transient_not_a_stopped_flow() {
    let sandbox = start().await;
    // The first answer refuses the token, and so does the answer to the call resent with a
    // fresh one.
    let _fault = sandbox.set_fault(
        Fault::new(
            Api::Fxiaoke,
            "/cgi/crm/v2/data/query",
            FaultKind::SessionLoss,
        )
        .next(2),
    );
    let source = ObjectSource::new(client(&sandbox), ObjectSourceConfig::new("AccountObj"));
    let e = source
        .read_page(&PageRequest {
            window: Window { low: 0, high: T0 },
            after: None,
            token: None,
            limit: 10,
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), sync_core::ConnectorErrorKind::Transient, "{e}");
    assert_eq!(e.system(), Some(sync_core::System::Fxiaoke));
    assert!(matches!(
        e.source_as::<fxiaoke_sdk::Error>(),
        Some(fxiaoke_sdk::Error::TokenInvalid(_))
    ));
}

#[tokio::test]
async fn records_whose_details_alone_changed_join_the_window_in_order() {
    let sandbox = start().await;
    let low = T0 - 100_000;
    let contact = |account: &str, at: i64| {
        sandbox
            .fxiaoke_insert(
                "ContactObj",
                json!({"name": "联系人", "account_id": account, "owner": [ADMIN], "last_modified_time": at}),
            )
            .unwrap();
    };
    let mut expected = Vec::new();
    for i in 0..30_i64 {
        let (at, level) = if i < 20 {
            (low + (i % 3) * 1_000, "1")
        } else {
            (low - 500_000, if i == 29 { "2" } else { "1" })
        };
        let id = sandbox
            .fxiaoke_insert(
                "AccountObj",
                json!({"name": format!("客户{i}"), "account_no": format!("KH{i:05}"), "owner": [ADMIN],
                       "account_level": level, "last_modified_time": at, "create_time": low - 600_000}),
            )
            .unwrap();
        if i < 20 {
            // Contacts that did not change in the window…
            contact(&id, low - 1);
            match i {
                // …but one that changed after its account: read once, at the contact's time;
                0 => {
                    contact(&id, low + 2_500);
                    expected.push((low + 2_500, id));
                }
                // one that changed before it: read once, at the account's.
                1 => {
                    contact(&id, low + 500);
                    expected.push((at, id));
                }
                // one that changed in the same millisecond: read once.
                2 => {
                    contact(&id, at);
                    expected.push((at, id));
                }
                _ => expected.push((at, id)),
            }
        } else {
            // The account did not change; its contact did, between and on the others' times.
            let changed = low + (i % 4) * 700;
            contact(&id, changed);
            if i != 29 {
                expected.push((changed, id));
            }
        }
    }
    expected.sort();
    let source = ObjectSource::new(
        client(&sandbox),
        ObjectSourceConfig::new("AccountObj")
            .filter(fxiaoke_sdk::Filter::eq("account_level", "1"))
            .related("ContactObj", "account_id", "contacts")
            .watch_details(),
    );
    let window = Window { low, high: T0 };
    // As the engine reads: the position and the token of the last page, strict order.
    let (mut after, mut token, mut seen) = (None, None, Vec::new());
    loop {
        let page = source
            .read_page(&PageRequest {
                window,
                after: after.clone(),
                token: token.clone(),
                limit: 7,
            })
            .await
            .unwrap();
        assert!(page.records.len() <= 7);
        let mut prev = after.clone();
        for r in &page.records {
            assert!(
                prev.as_ref().is_none_or(|p| r.cmp_position(p).is_gt()),
                "order"
            );
            prev = Some(r.position());
        }
        after = page.records.last().map(Record::position).or(after);
        token = page.token;
        seen.extend(page.records);
        if !page.has_more {
            break;
        }
    }
    let got: Vec<(i64, String)> = seen.iter().map(|r| (r.version, r.key.clone())).collect();
    assert_eq!(
        got, expected,
        "every record once, the detail-changed ones at the detail's time"
    );
    assert!(
        seen.iter()
            .all(|r| r.body["contacts"].as_array().is_some_and(|c| !c.is_empty()))
    );
    // The details are read once for the window, not per page.
    let calls = || sandbox.calls("fxiaoke:/cgi/crm/v2/data/query");
    let first = PageRequest {
        window,
        after: None,
        token: None,
        limit: 7,
    };
    let fresh = ObjectSource::new(
        client(&sandbox),
        ObjectSourceConfig::new("AccountObj")
            .related("ContactObj", "account_id", "contacts")
            .watch_details(),
    );
    let before = calls();
    fresh.read_page(&first).await.unwrap();
    let once = calls() - before;
    let before = calls();
    fresh.read_page(&first).await.unwrap();
    assert_eq!(calls() - before, once - 1);
}
