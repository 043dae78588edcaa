//! Fuzz test of the mapping loader and of the mappings it builds (see the `fuzz-kit` crate):
//! the example mappings, as TOML and as JSON, and millions of mutants of them. A broken file
//! gets a [`LoadError`](sync_core::mapping::LoadError) naming its line, a record a mapping
//! cannot take gets a `MapError`: never a panic.
//! `FUZZ_CASES=10000000 cargo test --release -p sync-core --test fuzz_mapping`.

use serde_json::json;
use sync_core::{DeclarativeMapping, Lookups, Mapping as _, Record};

fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fxk3/example/mappings");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the example mappings") {
        let text = std::fs::read_to_string(entry.expect("a mapping").path()).expect("text");
        let as_json: serde_json::Value = toml::from_str(&text).expect("the example parses");
        out.push(as_json.to_string().into_bytes());
        out.push(text.into_bytes());
    }
    out
}

/// Records in the shapes the three flows read: a CRM account, a CRM order with lines and
/// references, an ERP outbound.
fn records() -> Vec<Record> {
    vec![
        Record::new(
            "a1",
            1_716_000_000_000,
            json!({
                "_id": "a1", "name": "上海测试贸易有限公司", "account_no": "KH00001",
                "account_type": "1", "account_level": "2", "tel": "021-1234567",
                "owner": ["FSUID_0123456789ABCDEF0123456789ABCDEF"], "create_time": 1_716_000_000_000_i64,
            }),
        ),
        Record::new(
            "o1",
            1_716_000_000_000,
            json!({
                "_id": "o1", "name": "SO-0001", "account_id": "a1", "order_time": 1_716_000_000_000_i64,
                "owner": ["FSUID_0123456789ABCDEF0123456789ABCDEF"], "order_amount": "1200.50",
                "lines": [{"product_id": "p1", "quantity": "2", "sales_price": "600.25",
                           "product_id__ref": {"product_code": "MAT0001"}}],
            }),
        ),
        Record::new(
            "100001",
            1_716_000_000_000,
            json!({
                "FID": 100_001, "FBillNo": "XSCKD000001", "FDate": "2024-05-18T00:00:00",
                "FCarriageNO": "SF123", "FCustomerID.FNumber": "KH00001",
                "FEntity": [{"FEntity_FEntryID": 1, "FMaterialID.FNumber": "MAT0001", "FRealQty": 2.0,
                             "FSoorDerno": "SO-0001"}],
            }),
        ),
    ]
}

#[test]
fn fuzz_mapping_files_and_the_mappings_they_load() {
    let records = records();
    let lookups = Lookups::default();
    fuzz_kit::Fuzz::new("sync-core mapping loader", 20_000)
        .corpus(corpus())
        .dictionary([
            "natural_key",
            "[[fields]]",
            "target",
            "source",
            "transforms",
            "dictionary",
            "[dictionaries.x]",
            "on_unknown",
            "default",
            "values",
            "lookup",
            "flow",
            "required",
            "date",
            "offset",
            "format",
            "datetime",
            "number",
            "trim",
            "upper",
            "concat",
            "template",
            "entries",
            "[[entries]]",
            "{ date = { offset = \"+14:00\" } }",
            "\"%Y-%m-%d\"",
            "\"+08:00\"",
            "\"-99:99\"",
            "lines",
            "FEntity",
            "[0]",
        ])
        .run(|input| {
            let Ok(text) = std::str::from_utf8(input) else {
                return false;
            };
            let loaded = if text.trim_start().starts_with('{') {
                DeclarativeMapping::from_json(text)
            } else {
                DeclarativeMapping::from_toml(text)
            };
            let Ok(mapping) = loaded else {
                return false;
            };
            for r in &records {
                let _ = mapping.lookups(r);
                let _ = mapping.map(r, &lookups);
            }
            let _ = mapping.referenced_flows();
            let _ = mapping.natural_key_field();
            true
        });
}
