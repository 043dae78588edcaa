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
