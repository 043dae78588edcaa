//! The warehouse of the simulated ERP: ships audited sales orders, as a storekeeper would.

use serde_json::{Value, json};

use crate::BoxError;

/// Ships `orders` (numbers of audited sales orders): pushes each to an outbound delivery (销售出库单),
/// notes a carriage number, submits and audits it. Returns how many shipped.
pub async fn ship(k3: &k3cloud_sdk::Client, orders: &[String]) -> Result<usize, BoxError> {
    for (i, order) in orders.iter().enumerate() {
        let pushed = k3
            .push("SAL_SaleOrder")
            .numbers([order.as_str()])
            .target_form("SAL_OUTSTOCK")
            .enable_default_rule(true)
            .send()
            .await?;
        let outbound = pushed
            .created
            .first()
            .ok_or("the push created no outbound delivery")?;
        k3.save("SAL_OUTSTOCK")
            .need_update_fields(["FCarriageNO"])
            .is_delete_entry(false)
            .model(json!({"FID": id_value(&outbound.id), "FCarriageNO": format!("SF{:010}", 1_000_000 + i)}))
            .send()
            .await?;
        k3.submit("SAL_OUTSTOCK")
            .ids([outbound.id.as_str()])
            .send()
            .await?;
        k3.audit("SAL_OUTSTOCK")
            .ids([outbound.id.as_str()])
            .send()
            .await?;
    }
    Ok(orders.len())
}

/// Ships part of several audited sales orders of one customer in one outbound delivery, as a
/// merged 下推 makes it: for each `(order number, share)`, every line of the order with `share`
/// (0–1] of its quantity. Saved with carriage number `carriage`, submitted and audited; returns
/// the outbound's number.
pub async fn ship_together(
    k3: &k3cloud_sdk::Client,
    orders: &[(String, f64)],
    carriage: &str,
) -> Result<String, BoxError> {
    let numbers: Vec<&str> = orders.iter().map(|(n, _)| n.as_str()).collect();
    let lines: Vec<Value> = k3
        .query("SAL_SaleOrder")
        .fields([
            "FBillNo",
            "FCustId.FNumber",
            "FSaleOrgId.FNumber",
            "FSaleOrderEntry_FEntryID",
            "FMaterialId.FNumber",
            "FQty",
        ])
        .filter(k3cloud_sdk::Filter::is_in(
            "FBillNo",
            numbers.iter().copied(),
        ))
        .order_by("FBillNo ASC")
        .send::<Value>()
        .await?;
    let first = lines.first().ok_or("none of these orders is in the ERP")?;
    let rows: Vec<Value> = lines
        .iter()
        .filter_map(|l| {
            let no = l["FBillNo"].as_str()?;
            let share = orders.iter().find(|(n, _)| n == no)?.1;
            let qty = l["FQty"].as_f64()? * share;
            Some(json!({"FMaterialID": {"FNumber": l["FMaterialId.FNumber"]}, "FRealQty": qty,
                        "FSoorDerno": no, "FSrcBillNo": no, "FSOEntryId": l["FSaleOrderEntry_FEntryID"]}))
        })
        .collect();
    let saved = k3
        .save("SAL_OUTSTOCK")
        .model(
            json!({"FStockOrgId": {"FNumber": first["FSaleOrgId.FNumber"]},
                      "FSaleOrgId": {"FNumber": first["FSaleOrgId.FNumber"]},
                      "FCustomerID": {"FNumber": first["FCustId.FNumber"]},
                      "FCarriageNO": carriage, "FEntity": rows}),
        )
        .send()
        .await?;
    k3.submit("SAL_OUTSTOCK")
        .ids([saved.id.as_str()])
        .send()
        .await?;
    k3.audit("SAL_OUTSTOCK")
        .ids([saved.id.as_str()])
        .send()
        .await?;
    Ok(saved.number.clone())
}

/// Two audited sales orders of one customer in the simulated ERP, not among `except`.
pub fn two_orders_of_one_customer(
    sandbox: &fxk3_simulators::Sandbox,
    except: &[String],
) -> Option<(String, String)> {
    let mut by_customer: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    for o in sandbox.k3cloud_records("SAL_SaleOrder") {
        let number = o["BillNo"].as_str().or(o["Number"].as_str())?.to_owned();
        if o["DocumentStatus"] != "C" || except.contains(&number) {
            continue;
        }
        let customer = o["CustId"]["Number"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        by_customer.entry(customer).or_default().push(number);
    }
    by_customer
        .into_values()
        .find(|orders| orders.len() >= 2)
        .map(|orders| (orders[0].clone(), orders[1].clone()))
}

/// The numbers of up to `n` audited sales orders in the simulated ERP.
pub fn audited_orders(sandbox: &fxk3_simulators::Sandbox, n: usize) -> Vec<String> {
    sandbox
        .k3cloud_records("SAL_SaleOrder")
        .iter()
        .filter(|o| o["DocumentStatus"] == "C")
        .filter_map(|o| {
            o["Number"]
                .as_str()
                .or(o["BillNo"].as_str())
                .map(str::to_owned)
        })
        .take(n)
        .collect()
}

fn id_value(id: &str) -> Value {
    id.parse::<i64>()
        .map_or_else(|_| Value::String(id.to_owned()), Value::from)
}
