//! The demo data set and the generator: counts, cross-references between the CRM and the
//! ERP side, determinism, and a CRM order that the ERP accepts once mapped.

mod common;

use std::collections::HashSet;

use common::{K3, status};
use fxk3_simulators::{Clock, GenerateSpec, Sandbox};
use serde_json::{Value, json};

async fn demo(seed: u64) -> Sandbox {
    Sandbox::builder()
        .clock(Clock::frozen_at_secs(1_700_000_000))
        .seed(seed)
        .demo_data(true)
        .start()
        .await
        .unwrap()
}

fn field<'a>(r: &'a Value, key: &str) -> &'a str {
    r[key].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_demo_data_set_hangs_together() {
    let sandbox = demo(7).await;
    let objects = sandbox.fxiaoke_objects();
    assert_eq!(objects["ProductObj"], 60);
    assert_eq!(objects["AccountObj"], 300);
    assert!((300..=600).contains(&objects["ContactObj"]), "{objects:?}");
    assert_eq!(objects["SalesOrderObj"], 200);
    assert!(
        (200..=1000).contains(&objects["SalesOrderProductObj"]),
        "{objects:?}"
    );

    // Products and materials share their numbers.
    let materials: HashSet<String> = sandbox
        .k3cloud_records("BD_MATERIAL")
        .iter()
        .map(|m| field(m, "Number").to_string())
        .collect();
    let products = sandbox.fxiaoke_records("ProductObj");
    assert_eq!(materials.len(), 60);
    assert!(
        products
            .iter()
            .all(|p| materials.contains(field(p, "product_code")))
    );
    assert_eq!(sandbox.k3cloud_records("BD_Empinfo").len(), 8);
    assert!(
        sandbox
            .k3cloud_records("BD_MATERIAL")
            .iter()
            .all(|m| m["DocumentStatus"] == "C")
    );

    // Customers: unique codes and names, option values of the describe.
    let accounts = sandbox.fxiaoke_records("AccountObj");
    let codes: HashSet<&str> = accounts.iter().map(|a| field(a, "account_no")).collect();
    let names: HashSet<&str> = accounts.iter().map(|a| field(a, "name")).collect();
    assert_eq!((codes.len(), names.len()), (300, 300));
    assert!(codes.contains("KH00001") && codes.contains("KH00300"));
    let describe = sandbox.fxiaoke_describe("AccountObj").unwrap();
    let levels: Vec<&str> = describe["fields"]["account_level"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    assert!(
        accounts
            .iter()
            .all(|a| levels.contains(&field(a, "account_level")))
    );
    assert!(accounts.iter().all(|a| {
        let (c, m) = (
            a["create_time"].as_i64().unwrap(),
            a["last_modified_time"].as_i64().unwrap(),
        );
        c <= m && m <= 1_700_000_000_000 && c > 1_700_000_000_000 - 366 * 86_400_000
    }));

    // Every line points at its order and at a product; amounts add up.
    let product_ids: HashSet<&str> = products.iter().map(|p| field(p, "_id")).collect();
    let orders = sandbox.fxiaoke_records("SalesOrderObj");
    let lines = sandbox.fxiaoke_records("SalesOrderProductObj");
    for order in &orders {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|l| l["order_id"] == order["_id"])
            .collect();
        assert!((1..=5).contains(&mine.len()), "{order}");
        assert!(
            mine.iter()
                .all(|l| product_ids.contains(field(l, "product_id")))
        );
        let sum: f64 = mine
            .iter()
            .map(|l| field(l, "subtotal").parse::<f64>().unwrap())
            .sum();
        let amount: f64 = field(order, "order_amount").parse().unwrap();
        assert!((sum - amount).abs() < 0.005, "{order}");
        assert!(field(order, "name").len() == 12, "{order}");
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_data_and_another_seed_other_data() {
    let (a, b, c) = (demo(7).await, demo(7).await, demo(8).await);
    assert_eq!(
        a.fxiaoke_records("SalesOrderObj"),
        b.fxiaoke_records("SalesOrderObj")
    );
    assert_eq!(
        a.fxiaoke_records("AccountObj"),
        b.fxiaoke_records("AccountObj")
    );
    assert_ne!(
        a.fxiaoke_records("AccountObj"),
        c.fxiaoke_records("AccountObj")
    );
}

#[tokio::test]
async fn the_generator_adds_n_records_after_the_existing_ones() {
    let sandbox = demo(1).await;
    sandbox.generate(&GenerateSpec {
        crm_products: 5,
        erp_customers: 10,
        ..GenerateSpec::crm(1_000)
    });
    let objects = sandbox.fxiaoke_objects();
    assert_eq!(objects["AccountObj"], 1_300);
    assert_eq!(objects["SalesOrderObj"], 1_200);
    assert_eq!(objects["ProductObj"], 65);
    assert!(sandbox.k3cloud_record("BD_MATERIAL", "MAT0065").is_some());
    assert!(sandbox.k3cloud_record("BD_Customer", "G000010").is_some());
    let codes: HashSet<String> = sandbox
        .fxiaoke_records("AccountObj")
        .iter()
        .map(|a| field(a, "account_no").to_string())
        .collect();
    assert_eq!(codes.len(), 1_300);

    // From an empty sandbox: products are made for the orders.
    let empty = Sandbox::start().await.unwrap();
    empty.generate(&GenerateSpec::crm(3));
    let objects = empty.fxiaoke_objects();
    assert_eq!(
        (
            objects["AccountObj"],
            objects["SalesOrderObj"],
            objects["ProductObj"]
        ),
        (3, 3, 20)
    );
}

/// What the order flow will do: a demo CRM order, mapped by hand, is accepted by the ERP.
#[tokio::test]
async fn a_demo_order_maps_onto_an_erp_sales_order() {
    let sandbox = demo(3).await;
    let order = &sandbox.fxiaoke_records("SalesOrderObj")[0];
    let account = sandbox
        .fxiaoke_record("AccountObj", field(order, "account_id"))
        .unwrap();
    let products = sandbox.fxiaoke_records("ProductObj");
    let lines: Vec<Value> = sandbox
        .fxiaoke_records("SalesOrderProductObj")
        .into_iter()
        .filter(|l| l["order_id"] == order["_id"])
        .map(|l| {
            let product = products
                .iter()
                .find(|p| p["_id"] == l["product_id"])
                .unwrap();
            json!({"FMaterialId": {"FNumber": product["product_code"]},
                   "FQty": field(&l, "quantity").parse::<f64>().unwrap(),
                   "FTaxPrice": field(&l, "sales_price").parse::<f64>().unwrap()})
        })
        .collect();
    let k3 = K3::login(&sandbox).await;
    let customer = k3
        .call(
            "Save",
            Some("BD_Customer"),
            json!({"Model": {"FNumber": account["account_no"], "FName": account["name"],
                             "FCreateOrgId": {"FNumber": "100"}, "FSELLER": {"FNumber": "EMP0001"}}}),
        )
        .await;
    assert_eq!(status(&customer)["IsSuccess"], true, "{customer}");
    let saved = k3
        .call(
            "Save",
            Some("SAL_SaleOrder"),
            json!({"Model": {"FSaleOrgId": {"FNumber": "100"}, "FCustId": {"FNumber": account["account_no"]},
                             "FSalerId": {"FNumber": "EMP0001"}, "FNote": order["_id"],
                             "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE001"}},
                             "FSaleOrderEntry": lines}}),
        )
        .await;
    assert_eq!(status(&saved)["IsSuccess"], true, "{saved}");
    let erp = sandbox
        .k3cloud_record("SAL_SaleOrder", saved["Result"]["Number"].as_str().unwrap())
        .unwrap();
    let total = erp["BillAllAmount"].as_f64().unwrap();
    let crm_total: f64 = field(order, "order_amount").parse().unwrap();
    assert!((total - crm_total).abs() < 0.01, "{total} vs {crm_total}");
}
