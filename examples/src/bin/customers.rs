//! Customers: CRM `AccountObj` → ERP `BD_Customer`, run twice to show that the second run
//! writes nothing.
//!
//! `cargo run -p examples --bin customers` runs on the built-in simulators; set the
//! `FXK3_*` variables of `examples::systems::VARIABLES` to run on real servers.

use examples::{BoxError, Systems, flows, print_report};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let systems = Systems::connect().await?;
    let customers = flows::customers(&systems)?;
    let engine = systems.engine();

    print_report(&engine.run(&customers).await?);
    // Nothing changed in the CRM: everything read again (the look-back) is unchanged.
    print_report(&engine.run(&customers).await?);

    systems.shutdown().await;
    Ok(())
}
