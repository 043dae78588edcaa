//! Deliveries: audited ERP `SAL_OUTSTOCK` → the CRM order it ships, and a 发货通知 message to
//! the order's owner.
//!
//! A delivery finds its CRM order through the orders flow's ID map, so customers and orders
//! run first. On the simulators the warehouse then ships ten orders; on real servers the
//! deliveries are whatever your warehouse has audited.
//!
//! `cargo run -p examples --bin deliveries` runs on the built-in simulators; set the `FXK3_*`
//! variables of `examples::systems::VARIABLES` to run on real servers.

use examples::{BoxError, Systems, flows, print_report, warehouse};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let systems = Systems::connect().await?;
    let engine = systems.engine();
    for flow in [flows::customers(&systems)?, flows::orders(&systems)?] {
        print_report(&engine.run(&flow).await?);
    }

    if let Some(sandbox) = &systems.sandbox {
        let orders = warehouse::audited_orders(sandbox, 10);
        let shipped = warehouse::ship(&systems.k3cloud, &orders).await?;
        println!("the warehouse shipped {shipped} orders");
    }

    let deliveries = flows::deliveries(&systems)?;
    print_report(&engine.run(&deliveries).await?);
    // Each delivery has notified its order's owner once; a second run sends nothing.
    print_report(&engine.run(&deliveries).await?);

    if let Some(sandbox) = &systems.sandbox {
        println!("messages sent: {}", sandbox.fxiaoke_messages().len());
    }
    systems.shutdown().await;
    Ok(())
}
