//! The demo: the three flows on the built-in simulators, twice.
//!
//! `cargo run -p examples --bin demo` starts both simulators in this process with their demo
//! data (300 CRM customers with contacts, 200 orders with lines, 60 products that are ERP
//! materials, 8 salesmen), then:
//!
//! 1. runs customers → orders → deliveries with the state in a local SQLite file;
//! 2. plays a day of business: a few CRM customers change, a new customer orders, an order's
//!    line is edited, an order is invalidated (作废), the warehouse ships twenty orders (push to
//!    outbound, carriage number, audit) and one outbound covers part of one order and all of
//!    another;
//! 3. runs again: only what changed is read and written — the edited order is un-audited,
//!    saved and audited again in the ERP, the invalidated one is closed, each shipment updates
//!    its CRM orders (cumulative, per line) and messages each order's owner once.
//!
//! No credentials, no network (everything is on 127.0.0.1).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use examples::{BoxError, warehouse};
use fxk3::config::AuditedOrders;
use fxk3::observers::Progress;
use fxk3::{App, FlowKind, FlowOutcome, report, sandbox_config, sandbox_secrets};
use fxk3_simulators::Sandbox;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let started = Instant::now();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let state = dir.join("fxk3-demo-state.sqlite3");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state.display()));
    }

    println!("Starting the Fxiaoke and K3Cloud simulators with their demo data…");
    let sandbox = Sandbox::builder().demo_data(true).start().await?;
    // The demo writes a few hundred records in seconds; the vendor's 100 calls / 20 s limit
    // would stretch that to minutes (`fxk3` keeps to it against real servers).
    sandbox.fxiaoke_set_rate_limit(None);
    println!(
        "  CRM: {} customers, {} orders · ERP: {} materials, {} salesmen · state: {}\n",
        sandbox.fxiaoke_records("AccountObj").len(),
        sandbox.fxiaoke_records("SalesOrderObj").len(),
        sandbox.k3cloud_records("BD_MATERIAL").len(),
        sandbox.k3cloud_records("BD_Empinfo").len(),
        state.display()
    );

    let mut config = sandbox_config(&sandbox, &state, dir)?;
    if let Some(fx) = config.fxiaoke.as_mut() {
        fx.rate_limit = false;
    }
    for flow in &mut config.flows {
        // The simulators commit synchronously: nothing needs time to settle.
        flow.settle = Some("0s".into());
        if flow.kind == FlowKind::Orders {
            // Edits of audited orders reach the ERP (the default refuses them for a person).
            flow.audited_orders = Some(AuditedOrders::Reaudit);
        }
    }
    let app = App::build(config, &sandbox_secrets(&sandbox)).await?;

    println!("Run 1: everything the CRM has");
    let first = run(&app).await?;
    println!(
        "  ERP now has {} customers and {} sales orders ({} audited)\n",
        sandbox.k3cloud_records("BD_Customer").len(),
        sandbox.k3cloud_records("SAL_SaleOrder").len(),
        audited(&sandbox, "SAL_SaleOrder")
    );

    println!("A day of business:");
    let changed = change_customers(&sandbox, 5)?;
    println!("  · {changed} customers changed their phone number in the CRM");
    new_customer_with_order(&sandbox)?;
    println!("  · a new customer placed an order in the CRM");
    let k3 = app.k3cloud().ok_or("no K3Cloud client")?;
    let to_ship = warehouse::audited_orders(&sandbox, 20);
    let shipped = warehouse::ship(k3, &to_ship).await?;
    println!("  · the warehouse shipped {shipped} orders (outbound deliveries audited in the ERP)");
    let (part, whole) = warehouse::two_orders_of_one_customer(&sandbox, &to_ship)
        .ok_or("no two orders of one customer")?;
    let outbound = warehouse::ship_together(
        k3,
        &[(part.clone(), 0.5), (whole.clone(), 1.0)],
        "SF2000000001",
    )
    .await?;
    println!("  · outbound {outbound} ships half of order {part} and all of order {whole}");
    let busy = [to_ship.clone(), vec![part.clone(), whole.clone()]].concat();
    let (edited, quantity) = edit_an_order(&sandbox, &busy)?;
    println!(
        "  · order {edited}'s first line was changed to {quantity} in the CRM (the line alone)"
    );
    let cancelled = cancel_an_order(&sandbox, &[busy, vec![edited.clone()]].concat())?;
    println!("  · order {cancelled} was invalidated (作废) in the CRM\n");

    println!("Run 2: only what changed");
    let second = run(&app).await?;
    let crm = sandbox.fxiaoke_records("SalesOrderObj");
    let status = |s: &str| crm.iter().filter(|o| o["logistics_status"] == s).count();
    println!(
        "  CRM orders 已发货: {} · 部分发货: {} · messages sent to order owners: {}",
        status("3"),
        status("2"),
        sandbox.fxiaoke_messages().len()
    );
    let erp = |no: &str| {
        sandbox
            .k3cloud_record("SAL_SaleOrder", no)
            .unwrap_or_default()
    };
    let e = erp(&edited);
    println!(
        "  ERP order {edited}: first line {} (status {})",
        e["SaleOrderEntry"][0]["Qty"], e["DocumentStatus"]
    );
    println!(
        "  ERP order {cancelled}: closed ({})\n",
        erp(&cancelled)["CloseStatus"]
    );

    let calls: u64 = first
        .iter()
        .chain(&second)
        .filter_map(|o| o.api_calls)
        .sum();
    println!(
        "Done in {:.1}s: {calls} API calls in all. Run it again: the state file is started afresh.",
        started.elapsed().as_secs_f64()
    );
    sandbox.shutdown().await;
    Ok(())
}

async fn run(app: &App) -> Result<Vec<FlowOutcome>, BoxError> {
    let outcomes = app.run(&[], false, Some(Arc::new(Progress::new()))).await?;
    print!("{}", report::table(&outcomes));
    if let Some(failed) = outcomes.iter().find_map(|o| o.error.clone()) {
        return Err(failed.into());
    }
    Ok(outcomes)
}

fn audited(sandbox: &Sandbox, form: &str) -> usize {
    sandbox
        .k3cloud_records(form)
        .iter()
        .filter(|r| r["DocumentStatus"] == "C")
        .count()
}

/// Changes the first line's quantity of a CRM order whose ERP order is audited and not in
/// `except`: the line alone, as an API client or an import does. Its number and the quantity.
fn edit_an_order(sandbox: &Sandbox, except: &[String]) -> Result<(String, i64), BoxError> {
    let order = unshipped_crm_order(sandbox, except)?;
    let id = order["_id"].as_str().ok_or("an order without _id")?;
    let line = sandbox
        .fxiaoke_records("SalesOrderProductObj")
        .into_iter()
        .find(|l| l["order_id"] == id)
        .ok_or("an order without lines")?;
    // Demo quantities are whole numbers in text.
    let quantity = 1 + line["quantity"]
        .as_str()
        .and_then(|q| q.split('.').next()?.parse::<i64>().ok())
        .unwrap_or(1);
    let line_id = line["_id"].as_str().ok_or("a line without _id")?;
    sandbox.fxiaoke_update(
        "SalesOrderProductObj",
        line_id,
        json!({"quantity": quantity.to_string()}),
    )?;
    Ok((
        order["name"].as_str().unwrap_or_default().to_owned(),
        quantity,
    ))
}

/// Invalidates a CRM order whose ERP order is audited and not in `except`; its number.
fn cancel_an_order(sandbox: &Sandbox, except: &[String]) -> Result<String, BoxError> {
    let order = unshipped_crm_order(sandbox, except)?;
    let id = order["_id"].as_str().ok_or("an order without _id")?;
    sandbox.fxiaoke_invalidate("SalesOrderObj", id)?;
    Ok(order["name"].as_str().unwrap_or_default().to_owned())
}

fn unshipped_crm_order(
    sandbox: &Sandbox,
    except: &[String],
) -> Result<serde_json::Value, BoxError> {
    sandbox
        .fxiaoke_records("SalesOrderObj")
        .into_iter()
        .find(|o| {
            o["name"].as_str().is_some_and(|n| {
                !except.iter().any(|e| e == n)
                    && sandbox
                        .k3cloud_record("SAL_SaleOrder", n)
                        .is_some_and(|e| e["DocumentStatus"] == "C")
            })
        })
        .ok_or_else(|| "no order left to change".into())
}

fn change_customers(sandbox: &Sandbox, n: usize) -> Result<usize, BoxError> {
    let accounts = sandbox.fxiaoke_records("AccountObj");
    for (i, account) in accounts.iter().take(n).enumerate() {
        let id = account["_id"].as_str().ok_or("an account without _id")?;
        sandbox.fxiaoke_update("AccountObj", id, json!({"tel": format!("021-6000{i:04}")}))?;
    }
    Ok(n.min(accounts.len()))
}

fn new_customer_with_order(sandbox: &Sandbox) -> Result<(), BoxError> {
    let owner = "FSUID_FEDCBA9876543210FEDCBA9876543210";
    let account = sandbox.fxiaoke_insert(
        "AccountObj",
        json!({"name": "上海新客户贸易有限公司", "account_no": "KH90001", "account_type": "2",
               "account_level": "1", "tel": "021-5555 0001", "owner": [owner]}),
    )?;
    sandbox.fxiaoke_insert(
        "ContactObj",
        json!({"name": "王芳", "account_id": account, "mobile1": "13900009999", "owner": [owner]}),
    )?;
    let product = sandbox
        .fxiaoke_records("ProductObj")
        .first()
        .and_then(|p| p["_id"].as_str().map(str::to_owned))
        .ok_or("no product")?;
    sandbox.fxiaoke_insert(
        "SalesOrderObj",
        json!({"account_id": account, "order_time": sandbox.clock().now_ms(), "owner": [owner],
               "details": {"SalesOrderProductObj": [{"product_id": product, "quantity": "12", "sales_price": "88.00"}]}}),
    )?;
    Ok(())
}
