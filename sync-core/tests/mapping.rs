//! The declarative mapping: load-time rejection with lines, and mapping of real payload shapes.

use serde_json::json;
use sync_core::mapping::{Format, Severity};
use sync_core::metadata::{FieldDescription, FieldKind, ObjectDescription};
use sync_core::state::IdMapEntry;
use sync_core::{DeclarativeMapping, LookupKey, Lookups, MapError, Mapping, Record, TargetRef};

fn rejected(text: &str, format: Format) -> (Option<usize>, String) {
    let e = DeclarativeMapping::load(text, format).unwrap_err();
    (e.line(), e.to_string())
}

#[test]
fn load_errors_name_the_line_and_the_reason() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "[[fields]]\ntarget = \"A\"\nsource = \"a\"\n\n[[fields]]\ntarget = \"B\"\nsource = \"b\"\ntransforms = [\"trim\", \"uper\"]\n",
            8,
            "unknown transform `uper`",
        ),
        (
            "[[fields]]\ntarget = \"A\"\nsource = \"owner[x]\"\n",
            3,
            "bad path `owner[x]`",
        ),
        (
            "[dictionaries.t]\nvalues = { \"1\" = \"X\" }\n[[fields]]\ntarget = \"A\"\nsource = \"a\"\ndictionary = \"type\"\n",
            6,
            "unknown dictionary `type` (defined: t)",
        ),
        (
            "[[fields]]\ntarget = \"A\"\nsource = \"a\"\nconstant = 1\n",
            1,
            "exactly one of",
        ),
        (
            "[[fields]]\ntarget = \"A\"\nsource = \"a\"\nrequird = true\n",
            4,
            "unknown field `requird`",
        ),
        (
            "[[fields]]\ntarget = \"A\"\nsource = \"a\"\ntransforms = [{ date = { offset = \"+8\" } }]\n",
            4,
            "bad offset `+8`",
        ),
        (
            "[[fields]]\ntarget = \"A\"\nsource = \"a\"\ntransforms = [{ date = { format = \"%Q\" } }]\n",
            4,
            "bad date format",
        ),
        (
            "[[fields]]\ntarget = \"A\"\nsource = \"a\"\n[[fields]]\ntarget = \"A\"\nconstant = 2\n",
            5,
            "conflicts with fields[0]",
        ),
        (
            "[[fields]]\ntarget = \"A\"\nlookup = { flow = \"c\", from = \"x\", take = \"code\" }\n",
            3,
            "unknown variant `code`",
        ),
        (
            "[[fields]]\ntarget = \"A\"\nsource = \"a\"\n[[entries]]\ntarget = \"E\"\nsource = \"lines\"\n[[entries.fields]]\ntarget = \"Q\"\nsource = \"q\"\ntransforms = [\"nope\"]\n",
            10,
            "unknown transform `nope`",
        ),
        (
            "natural_key = \"FNumber\"\n[[fields]]\ntarget = \"A\"\nsource = \"a\"\n",
            1,
            "not a mapped target field",
        ),
        ("[[fields]\ntarget = \"A\"\n", 1, ""),
    ];
    for (text, line, reason) in cases {
        let (got_line, msg) = rejected(text, Format::Toml);
        assert_eq!(got_line, Some(*line), "{msg}");
        assert!(msg.contains(reason), "{msg}");
    }
}

#[test]
fn json_load_errors_name_the_line_too() {
    let text = r#"{
  "dictionaries": {"level": {"values": {"A": "KH01"}}},
  "fields": [
    {"target": "FName", "source": "name"},
    {"target": "FLevel", "source": "account_level", "dictionary": "levels"}
  ]
}"#;
    let (line, msg) = rejected(text, Format::Json);
    assert_eq!(line, Some(5), "{msg}");
    assert!(msg.contains("unknown dictionary `levels`"), "{msg}");
    let (line, _) = rejected("{\n \"fields\": [\n", Format::Json);
    assert_eq!(line, Some(3));
}

fn customer_mapping() -> DeclarativeMapping {
    DeclarativeMapping::from_toml(
        r#"
        natural_key = "FNumber"
        [dictionaries.level]
        values = { "A" = "KHDJ01", "B" = "KHDJ02" }
        default = "KHDJ99"
        [dictionaries.source]
        values = { "web" = "LY01" }
        on_unknown = "keep"
        [dictionaries.strict]
        values = { "1" = "X" }
        [[fields]]
        target = "FNumber"
        source = "account_no"
        reference = "FNumber"
        [[fields]]
        target = "FLevel"
        source = "account_level"
        dictionary = "level"
        reference = "FNumber"
        [[fields]]
        target = "FSource"
        source = "account_source"
        dictionary = "source"
        [[fields]]
        target = "FTags"
        source = "tags"
        dictionary = "strict"
        reference = "FNumber"
        [[fields]]
        target = "FSaleOrg.FNumber"
        constant = "100"
        [[fields]]
        target = "FRemark"
        source = "remark"
        keep_null = true
        [[fields]]
        target = "FAmount"
        source = "amount"
        transforms = ["number"]
        [[fields]]
        target = "FCreated"
        source = "create_time"
        transforms = [{ datetime = { offset = "+00:00" } }]
        "#,
    )
    .unwrap()
}

#[test]
fn dictionaries_references_constants_and_transforms() {
    let m = customer_mapping();
    let r = Record::new(
        "id1",
        1,
        json!({
            "account_no": "C1", "account_level": "B", "account_source": "fair", "tags": ["1"],
            "amount": "100.50", "create_time": "1716000000000"
        }),
    );
    let out = m.map(&r, &Lookups::new()).unwrap();
    assert_eq!(
        out.payload,
        json!({
            "FNumber": {"FNumber": "C1"},
            "FLevel": {"FNumber": "KHDJ02"},
            "FSource": "fair",
            "FTags": [{"FNumber": "X"}],
            "FSaleOrg": {"FNumber": "100"},
            "FRemark": null,
            "FAmount": 100.5,
            "FCreated": "2024-05-18 02:40:00"
        })
    );
    assert_eq!(
        out.natural_key, "C1",
        "a reference yields its value as natural key"
    );

    // Unknown values: default, keep, or an error naming the value and the dictionary.
    let r = Record::new(
        "id2",
        1,
        json!({"account_no": "C2", "account_level": "Z", "tags": ["2"]}),
    );
    match m.map(&r, &Lookups::new()) {
        Err(MapError::Invalid { location, reason }) => {
            assert_eq!(location, "fields[3] (FTags)");
            assert_eq!(reason, "value \"2\" is not in dictionary `strict`");
        }
        other => panic!("{other:?}"),
    }
    let r = Record::new(
        "id3",
        1,
        json!({"account_no": "C3", "account_level": "Z", "amount": "abc"}),
    );
    assert!(
        matches!(m.map(&r, &Lookups::new()), Err(MapError::Invalid { reason, .. }) if reason.contains("`abc` is not a number"))
    );
    let r = Record::new("id4", 1, json!({"account_no": "C4", "account_level": "Z"}));
    assert_eq!(
        m.map(&r, &Lookups::new()).unwrap().payload["FLevel"],
        json!({"FNumber": "KHDJ99"})
    );
}

fn order_mapping() -> DeclarativeMapping {
    DeclarativeMapping::from_json(r#"{
      "natural_key": "F_CrmId",
      "fields": [
        {"target": "F_CrmId", "source": "_id"},
        {"target": "FBillNo", "source": "name", "transforms": ["trim"]},
        {"target": "FDate", "source": "order_time", "transforms": ["date"], "required": true},
        {"target": "FCustId", "lookup": {"flow": "customers", "from": "account_id"}, "reference": "FNumber", "required": true},
        {"target": "FSalerId", "source": "owner", "transforms": ["first"], "reference": "FNumber"},
        {"target": "FNote", "sources": ["ship_to_add", "ship_to_tel"], "separator": " "}
      ],
      "entries": [{
        "target": "FSaleOrderEntry", "source": "details.SalesOrderProductObj", "required": true,
        "fields": [
          {"target": "FMaterialId", "lookup": {"flow": "materials", "from": "product_id", "take": "number"}, "reference": "FNumber"},
          {"target": "FQty", "source": "quantity", "transforms": ["number"]},
          {"target": "FTaxPrice", "source": "sales_price", "transforms": ["number", {"default": 0}]}
        ]
      }]
    }"#).unwrap()
}

fn order_record() -> Record {
    Record::new(
        "o1",
        1_716_000_000_000,
        json!({
            "_id": "o1", "name": " O20240518-0001 ", "order_time": 1_716_000_000_000_i64,
            "account_id": "acc1", "owner": ["FSUID_7"], "ship_to_add": "上海", "ship_to_tel": "021",
            "details": {"SalesOrderProductObj": [
                {"product_id": "p1", "quantity": "2", "sales_price": "100.00"},
                {"product_id": "p2", "quantity": "1"}
            ]}
        }),
    )
}

fn id(key: &str, number: &str) -> IdMapEntry {
    IdMapEntry {
        source_key: key.into(),
        target: TargetRef::new("9", Some(number.into())),
        payload_hash: None,
        updated_at: 0,
    }
}

#[test]
fn master_detail_order_with_lookups() {
    let m = order_mapping();
    let r = order_record();
    assert_eq!(m.referenced_flows(), ["customers", "materials"]);
    let wanted: Vec<LookupKey> = m.lookups(&r);
    assert_eq!(wanted.len(), 3);
    let mut lookups = Lookups::new();
    lookups.insert("customers", id("acc1", "CUST-0001"));
    lookups.insert("materials", id("p1", "MAT-1"));
    // p2 has not synced yet: the order must wait, not fail.
    assert_eq!(
        m.map(&r, &lookups).unwrap_err(),
        MapError::MissingReference {
            flow: "materials".into(),
            key: "p2".into()
        }
    );
    lookups.insert("materials", id("p2", "MAT-2"));
    let out = m.map(&r, &lookups).unwrap();
    assert_eq!(
        out.payload,
        json!({
            "F_CrmId": "o1", "FBillNo": "O20240518-0001", "FDate": "2024-05-18",
            "FCustId": {"FNumber": "CUST-0001"}, "FSalerId": {"FNumber": "FSUID_7"}, "FNote": "上海 021",
            "FSaleOrderEntry": [
                {"FMaterialId": {"FNumber": "MAT-1"}, "FQty": 2, "FTaxPrice": 100.0},
                {"FMaterialId": {"FNumber": "MAT-2"}, "FQty": 1, "FTaxPrice": 0}
            ]
        })
    );
    assert_eq!(out.natural_key, "o1");

    let mut empty = order_record();
    empty.body["details"] = json!({"SalesOrderProductObj": []});
    assert!(
        matches!(m.map(&empty, &lookups), Err(MapError::Invalid { reason, .. }) if reason.contains("at least one line"))
    );
}

#[test]
fn never_panics_on_odd_input() {
    let m = order_mapping();
    let mut lookups = Lookups::new();
    lookups.insert("customers", id("acc1", "C"));
    for body in [
        json!(null),
        json!([]),
        json!("x"),
        json!({"details": 5}),
        json!({"order_time": "soon", "account_id": "acc1"}),
        json!({"order_time": 1e300, "account_id": "acc1"}),
        json!({"order_time": i64::MAX, "account_id": "acc1"}),
    ] {
        assert!(m.map(&Record::new("k", 0, body), &lookups).is_err());
    }
}

#[test]
fn validation_against_descriptions_reports_unknown_and_missing_fields() {
    let m = order_mapping();
    let crm = ObjectDescription::new("SalesOrderObj")
        .field(FieldDescription::new("_id", FieldKind::Text))
        .field(FieldDescription::new("name", FieldKind::Text))
        .field(FieldDescription::new("order_time", FieldKind::Date))
        .field(FieldDescription::new("account_id", FieldKind::Reference))
        .field(FieldDescription::new(
            "owner",
            FieldKind::Other("employee".into()),
        ))
        .field(FieldDescription::new("ship_to_add", FieldKind::Text))
        .entry(
            "details.SalesOrderProductObj",
            ObjectDescription::new("SalesOrderProductObj")
                .field(FieldDescription::new("product_id", FieldKind::Reference))
                .field(FieldDescription::new("quantity", FieldKind::Number))
                .field(FieldDescription::new("sales_price", FieldKind::Number)),
        );
    let erp = ObjectDescription::new("SAL_SaleOrder")
        .field(FieldDescription::new("FBillNo", FieldKind::Text))
        .field(FieldDescription::new("FDate", FieldKind::Date).required())
        .field(FieldDescription::new("FCustId", FieldKind::Reference).required())
        .field(FieldDescription::new("FSaleOrgId", FieldKind::Reference).required())
        .field(FieldDescription::new("FSalerId", FieldKind::Reference))
        .field(FieldDescription::new("FNote", FieldKind::Text))
        .field(FieldDescription::new("F_CrmId", FieldKind::Text))
        .entry(
            "FSaleOrderEntry",
            ObjectDescription::new("FSaleOrderEntry")
                .field(FieldDescription::new("FMaterialId", FieldKind::Reference).required())
                .field(FieldDescription::new("FQty", FieldKind::Number))
                .field(FieldDescription::new("FTaxPrice", FieldKind::Number)),
        );
    let issues = m.validate(Some(&crm), Some(&erp));
    let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "error: fields[5] (FNote): source field `ship_to_tel` does not exist in `SalesOrderObj`",
            "error: fields: required target field `FSaleOrgId` of `SAL_SaleOrder` is not mapped",
        ],
        "{text:#?}"
    );
    assert!(issues.iter().all(|i| i.severity == Severity::Error));

    let customer = customer_mapping();
    let crm = ObjectDescription::new("AccountObj").field(
        FieldDescription::new("account_level", FieldKind::SelectOne).with_options(["A", "B", "C"]),
    );
    let issues = customer.validate(Some(&crm), None);
    assert!(
        issues
            .iter()
            .any(|i| i.severity == Severity::Warning && i.message.contains("option `C`")),
        "{issues:#?}"
    );
    assert!(issues.iter().any(|i| {
        i.message
            .contains("source field `account_no` does not exist")
    }));
}

#[test]
fn fields_of_a_sub_header_entity_are_checked_inside_it() {
    let m = DeclarativeMapping::from_toml(
        r#"
        natural_key = "FBillNo"
        [[fields]]
        target = "FBillNo"
        source = "name"
        [[fields]]
        target = "FSaleOrderFinance.FSettleCurrId"
        constant = "PRE001"
        reference = "FNumber"
        [[fields]]
        target = "FSaleOrderFinance.FNope"
        constant = "x"
        "#,
    )
    .unwrap();
    let erp = ObjectDescription::new("SAL_SaleOrder")
        .field(FieldDescription::new("FBillNo", FieldKind::Text))
        .entry(
            "FSaleOrderFinance",
            ObjectDescription::new("FSaleOrderFinance")
                .field(FieldDescription::new("FSettleCurrId", FieldKind::Reference)),
        );
    let text: Vec<String> = m
        .validate(None, Some(&erp))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        text,
        [
            "error: fields[2] (FSaleOrderFinance.FNope): target field `FNope` does not exist in `FSaleOrderFinance`"
        ]
    );
    // A server that folds the sub-header's fields into the header.
    let flat = ObjectDescription::new("SAL_SaleOrder")
        .field(FieldDescription::new("FBillNo", FieldKind::Text))
        .field(FieldDescription::new("FSettleCurrId", FieldKind::Reference));
    let text: Vec<String> = m
        .validate(None, Some(&flat))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        text,
        [
            "error: fields[2] (FSaleOrderFinance.FNope): target field `FSaleOrderFinance` does not exist in `SAL_SaleOrder`"
        ]
    );
}

/// The deliveries direction: an ERP order number (a target number of the `orders` flow) leads
/// back to the CRM order id (its source key).
#[test]
fn reverse_lookup_by_target_number() {
    let m = DeclarativeMapping::from_toml(
        r#"
        natural_key = "_id"
        [[fields]]
        target = "_id"
        lookup = { flow = "orders", from = "FEntity[0].FSoorDerno", by = "number", take = "source" }
        required = true
        [[fields]]
        target = "logistics_no"
        source = "FCarriageNO"
        "#,
    )
    .unwrap();
    let r = Record::new(
        "000000100123",
        1,
        serde_json::json!({"FCarriageNO": "SF1001", "FEntity": [{"FSoorDerno": "XSDD000007"}]}),
    );
    assert_eq!(
        m.lookups(&r),
        [LookupKey::target_number("orders", "XSDD000007")]
    );
    let mut lookups = Lookups::new();
    // Known by source key only: the reverse lookup does not see it.
    lookups.insert("orders", id("crm-order-7", "XSDD000007"));
    assert_eq!(
        m.map(&r, &Lookups::new()).unwrap_err(),
        MapError::MissingReference {
            flow: "orders".into(),
            key: "XSDD000007".into()
        }
    );
    lookups.insert_by_number("orders", id("crm-order-7", "XSDD000007"));
    let out = m.map(&r, &lookups).unwrap();
    assert_eq!(
        out.payload,
        serde_json::json!({"_id": "crm-order-7", "logistics_no": "SF1001"})
    );
    assert_eq!(out.natural_key, "crm-order-7");
}

/// Lines can read the whole record (`$.…`), and `sum` adds up a field of the lines.
#[test]
fn record_paths_inside_lines_and_sums() {
    let m = DeclarativeMapping::from_toml(
        r#"
        [[fields]]
        target = "shipped"
        source = "FEntity"
        transforms = [{ sum = "FRealQty" }]
        [[entries]]
        target = "FSaleOrderEntry"
        source = "lines"
        [[entries.fields]]
        target = "FDeliveryDate"
        source = "$.delivery_date"
        transforms = [{ date = { offset = "+08:00" } }]
        [[entries.fields]]
        target = "FQty"
        source = "quantity"
        transforms = ["number"]
        "#,
    )
    .unwrap();
    let r = Record::new(
        "o1",
        1,
        serde_json::json!({
            "delivery_date": 1_716_000_000_000_i64,
            "lines": [{"quantity": "2"}, {"quantity": "3"}],
            "FEntity": [{"FRealQty": 2}, {"FRealQty": "3.5"}, {"FRealQty": null}],
        }),
    );
    let out = m.map(&r, &Lookups::new()).unwrap();
    assert_eq!(
        out.payload,
        serde_json::json!({
            "shipped": 5.5,
            "FSaleOrderEntry": [
                {"FDeliveryDate": "2024-05-18", "FQty": 2},
                {"FDeliveryDate": "2024-05-18", "FQty": 3},
            ],
        })
    );
    let bad = DeclarativeMapping::from_toml(
        "[[fields]]\ntarget = \"x\"\nsource = \"a\"\ntransforms = [{ sum = 3 }]\n",
    );
    assert!(bad.unwrap_err().to_string().contains("sum"));
    let bad = Record::new(
        "o2",
        1,
        serde_json::json!({"FEntity": [{"FRealQty": "x"}], "lines": []}),
    );
    assert!(m.map(&bad, &Lookups::new()).is_err());
}
