//! Orders: CRM `SalesOrderObj` → ERP `SAL_SaleOrder`, submitted and audited.
//!
//! An order needs its customer in the ERP, so the customers flow runs first; run the orders
//! flow alone and every order waits (deferred) until its customer has synced.
//!
//! `cargo run -p examples --bin orders` runs on the built-in simulators; set the `FXK3_*`
//! variables of `examples::systems::VARIABLES` to run on real servers.

use examples::{BoxError, Systems, flows, print_report};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let systems = Systems::connect().await?;
    let customers = flows::customers(&systems)?;
    let orders = flows::orders(&systems)?;
    let engine = systems.engine();

    print_report(&engine.run(&customers).await?);
    print_report(&engine.run(&orders).await?);

    systems.shutdown().await;
    Ok(())
}
