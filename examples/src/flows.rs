//! The three flows, each composed from `sync-core`: a source, a mapping file, a sink, options.
//! The connectors' settings are `fxk3`'s presets ([`fxk3::presets`]), the same `fxk3 run`
//! uses, so that a program and the command sync alike.
//!
//! The mapping files are `examples/mappings/*.toml` (the same files `fxk3 init` writes); set
//! `FXK3_MAPPINGS` to a directory to use edited copies without rebuilding.

use std::sync::Arc;

use fxk3::presets;
use sync_core::fxiaoke::{ObjectSink, ObjectSource, ObjectWriteBack};
use sync_core::k3cloud::{AuditedEdits, Cancellations, FormSink, ShipmentSource};
use sync_core::{DeclarativeMapping, Flow, Mapping};

use crate::{BoxError, Systems};

/// A mapping file by name: from `$FXK3_MAPPINGS` when set, else the copy built in.
pub fn mapping(name: &str) -> Result<Arc<dyn Mapping>, BoxError> {
    if let Some(dir) = std::env::var_os("FXK3_MAPPINGS") {
        let path = std::path::Path::new(&dir).join(name);
        return Ok(Arc::new(DeclarativeMapping::from_path(path)?));
    }
    let text = match name {
        "customer.toml" => include_str!("../mappings/customer.toml"),
        "order.toml" => include_str!("../mappings/order.toml"),
        "delivery.toml" => include_str!("../mappings/delivery.toml"),
        other => return Err(format!("no built-in mapping {other}").into()),
    };
    let mapping = DeclarativeMapping::from_toml(text)?;
    Ok(Arc::new(mapping))
}

/// Customers: CRM `AccountObj` (with its contacts) → ERP `BD_Customer`; the ERP number is
/// written back to the CRM field `field_erp_no__c`.
pub fn customers(systems: &Systems) -> Result<Flow, BoxError> {
    let source = ObjectSource::new(
        systems.fxiaoke.clone(),
        presets::customers_source("AccountObj", true),
    );
    // A changed customer updates only the mapped fields and keeps the ERP's own contact rows.
    let sink = FormSink::new(
        systems.k3cloud.clone(),
        presets::customers_sink("BD_Customer", false, true),
    );
    let write_back = ObjectWriteBack::new(
        systems.fxiaoke.clone(),
        "AccountObj",
        presets::CUSTOMER_NUMBER_FIELD,
    );
    Ok(Flow::builder(
        "customers",
        Arc::new(source),
        mapping("customer.toml")?,
        Arc::new(sink),
    )
    .write_back(Arc::new(write_back))
    .settle_ms(systems.settle_ms())
    .build()?)
}

/// Orders: CRM `SalesOrderObj` with its `SalesOrderProductObj` lines → ERP `SAL_SaleOrder`,
/// then Submit and Audit; edits and invalidations follow (see [`presets::orders_sink`]). The customer comes from the customers flow's ID map: an order whose
/// customer has not synced yet waits for a later run.
pub fn orders(systems: &Systems) -> Result<Flow, BoxError> {
    let source = ObjectSource::new(
        systems.fxiaoke.clone(),
        presets::orders_source("SalesOrderObj", true),
    );
    // An edit reaches an ERP order not yet audited; an audited one is changed in the ERP
    // (refused here, with the reason). An invalidated CRM order closes or deletes its ERP order.
    let sink = FormSink::new(
        systems.k3cloud.clone(),
        presets::orders_sink(
            "SAL_SaleOrder",
            "SAL_OUTSTOCK",
            AuditedEdits::Refuse,
            Cancellations::CloseOrDelete,
            true,
        ),
    );
    Ok(Flow::builder(
        "orders",
        Arc::new(source),
        mapping("order.toml")?,
        Arc::new(sink),
    )
    .depends_on("customers")
    .actions(presets::ORDER_ACTIONS)
    .settle_ms(systems.settle_ms())
    .build()?)
}

/// Deliveries: what the ERP outbounds (`SAL_OUTSTOCK`) shipped of each order → the CRM order
/// (cumulative quantity, per line too, latest carriage number, 发货状态) and one message to the
/// order's owner per change — an un-audited outbound takes its quantities back.
pub fn deliveries(systems: &Systems) -> Result<Flow, BoxError> {
    let source = ShipmentSource::new(
        systems.k3cloud.clone(),
        presets::deliveries_source("SAL_OUTSTOCK", "SAL_SaleOrder"),
    );
    // Sent once per change: a message cannot be looked up, so it is never resent.
    let sink = ObjectSink::new(
        systems.fxiaoke.clone(),
        presets::deliveries_sink(
            "SalesOrderObj",
            presets::DELIVERY_TITLE,
            presets::DELIVERY_TEXT,
        ),
    );
    Ok(Flow::builder(
        "deliveries",
        Arc::new(source),
        mapping("delivery.toml")?,
        Arc::new(sink),
    )
    .depends_on("orders")
    .actions(presets::DELIVERY_ACTIONS)
    .actions_on_update(true)
    .settle_ms(systems.settle_ms())
    .build()?)
}
