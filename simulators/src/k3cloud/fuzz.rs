//! Fuzz test of the query engine (see the `fuzz-kit` crate): `FilterString` text and whole
//! query packets, from the reference's and our clients' queries and millions of mutants of
//! them. Bad input gets a K3Cloud error, never a panic (a panic would take a simulator's
//! connection down in the middle of a test). `FUZZ_CASES=10000000 cargo test --release -p
//! sandbox fuzz_`.

use serde_json::{Map, Value, json};

use super::K3Sim;
use super::query::{OrderCache, run};
use crate::config::K3CloudConfig;

/// Filters in the shapes clients send: the reference's, the SDK's builder's, sync-core's
/// keyset pages and base-data look-ups.
const FILTERS: &[&str] = &[
    "FNumber like 'MAT%' and FDocumentStatus='C'",
    "FNumber like 'MA''T%' and (FQty >= 1.5 or FID in (1,2))",
    "FModifyDate >= '2024-01-15 08:00:00' and FModifyDate < '2024-01-15 09:00:00'",
    "(FModifyDate > '2024-05-18 10:40:00.123' or (FModifyDate = '2024-05-18 10:40:00.123' and FCUSTID > 100002))",
    "FNumber in ('KH00001','KH00002') and FUseOrgId.FNumber = '100'",
    "FDocumentStatus = 'C' and FApproveDate >= '2024-01-01' and FSoorDerno <> ''",
    "FName is null or not (FNumber like '%1_')",
    "FCUSTID = 0",
    "",
];

fn sim() -> K3Sim {
    let sim = K3Sim::new(&K3CloudConfig::default(), 7);
    for i in 1..=30 {
        let _ = sim.insert(
            "BD_Customer",
            json!({"FNumber": format!("KH{i:05}"), "FName": format!("客户{i}"),
                   "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"}}),
            1_716_000_000_000 + i * 60_000,
        );
        let _ = sim.insert(
            "BD_MATERIAL",
            json!({"FNumber": format!("MAT{i:04}"), "FName": format!("物料{i}"),
                   "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                   "FBaseUnitId": {"FNumber": "Pcs"}, "FErpClsID": "1", "FDocumentStatus": "C"}),
            1_716_000_000_000 + i * 60_000,
        );
    }
    sim
}

fn packet(form: &str, keys: &str, filter: &str) -> Vec<u8> {
    json!({"FormId": form, "FieldKeys": keys, "FilterString": filter,
           "OrderString": "FModifyDate ASC, FNumber ASC", "TopRowCount": 0, "StartRow": 0,
           "Limit": 2000})
    .to_string()
    .into_bytes()
}

#[test]
fn fuzz_filter_strings_and_query_packets() {
    let sim = sim();
    let cache = OrderCache::default();
    let mut corpus: Vec<Vec<u8>> = FILTERS.iter().map(|f| f.as_bytes().to_vec()).collect();
    for f in FILTERS {
        corpus.push(packet(
            "BD_Customer",
            "FCUSTID,FNumber,FName,FModifyDate,FUseOrgId.FNumber",
            f,
        ));
        corpus.push(packet(
            "BD_MATERIAL",
            "FMATERIALID,FNumber,FName,FDocumentStatus",
            f,
        ));
    }
    corpus.push(
        json!({"FormId": "BD_MATERIAL", "FieldKeys": "FNumber", "FilterString": [
            {"Left": "(", "FieldName": "FDocumentStatus", "Compare": "StatusEqualto", "Value": "C",
             "Right": ")", "Logic": "AND"},
            {"Left": "", "FieldName": "FNumber", "Compare": "=", "Value": "MAT0001", "Right": "",
             "Logic": "1"}]})
        .to_string()
        .into_bytes(),
    );
    fuzz_kit::Fuzz::new("sandbox FilterString and query packets", 20_000)
        .corpus(corpus)
        .dictionary([
            "FNumber",
            "FName",
            "FID",
            "FCUSTID",
            "FModifyDate",
            "FDocumentStatus",
            "FUseOrgId",
            ".FNumber",
            " like ",
            " in ",
            " is null",
            " not ",
            " between ",
            "<>",
            ">=",
            "<=",
            "!=",
            "'%'",
            "'_'",
            "FormId",
            "FieldKeys",
            "FilterString",
            "OrderString",
            "StartRow",
            "Limit",
            "TopRowCount",
            " ASC",
            " DESC",
            "Compare",
            "Logic",
            "StatusEqualto",
        ])
        .run(|input| {
            let state = sim.state.read();
            let query: Map<String, Value> =
                if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(input) {
                    m
                } else {
                    let filter = String::from_utf8_lossy(input);
                    let Ok(Value::Object(m)) = serde_json::from_slice(&packet(
                        "BD_Customer",
                        "FCUSTID,FNumber,FName,FModifyDate",
                        &filter,
                    )) else {
                        return false;
                    };
                    m
                };
            run(&state.data, &query, 2_000, &cache).is_ok()
        });
}
