//! The three flows, each composed from `sync-core`: a source, a mapping file, a sink, options.
//!
//! The mapping files are `examples/mappings/*.toml` (the same files `fxk3 init` writes); set
//! `FXK3_MAPPINGS` to a directory to use edited copies without rebuilding.

use std::sync::Arc;

use fxiaoke_sdk::Filter;
use sync_core::fxiaoke::{
    Notification, ObjectSink, ObjectSinkConfig, ObjectSource, ObjectSourceConfig, ObjectWriteBack,
    SinkMode,
};
use sync_core::k3cloud::{FormSink, FormSinkConfig, FormSource, FormSourceConfig, UpdatePolicy};
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
    // Each account is read with its contacts under `contacts`, for the FT_BD_CUSTCONTACT entry.
    let source = ObjectSource::new(
        systems.fxiaoke.clone(),
        ObjectSourceConfig::new("AccountObj")
            .filter(Filter::eq("life_status", "normal"))
            .related("ContactObj", "account_id", "contacts"),
    );
    // A changed customer updates only the mapped fields and keeps the ERP's own contact rows.
    let sink = FormSink::new(
        systems.k3cloud.clone(),
        FormSinkConfig::new("BD_Customer", "FCUSTID", "FNumber").update_policy(
            UpdatePolicy::MappedFields {
                replace_entries: false,
            },
        ),
    );
    let write_back = ObjectWriteBack::new(systems.fxiaoke.clone(), "AccountObj", "field_erp_no__c");
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
/// then Submit and Audit. The customer comes from the customers flow's ID map: an order whose
/// customer has not synced yet waits for a later run.
pub fn orders(systems: &Systems) -> Result<Flow, BoxError> {
    let source = ObjectSource::new(
        systems.fxiaoke.clone(),
        ObjectSourceConfig::new("SalesOrderObj")
            .filter(Filter::eq("life_status", "normal"))
            .related(
                "SalesOrderProductObj",
                "order_id",
                "details.SalesOrderProductObj",
            )
            // Lines name their product by id; the ERP wants the product code (物料编码).
            .expand(
                "details.SalesOrderProductObj",
                "product_id",
                "ProductObj",
                ["product_code", "name"],
            ),
    );
    // An audited ERP order is changed in the ERP, not overwritten from the CRM.
    let sink = FormSink::new(
        systems.k3cloud.clone(),
        FormSinkConfig::new("SAL_SaleOrder", "FID", "FBillNo").update_policy(UpdatePolicy::Refuse),
    );
    Ok(Flow::builder(
        "orders",
        Arc::new(source),
        mapping("order.toml")?,
        Arc::new(sink),
    )
    .depends_on("customers")
    .actions(["Submit", "Audit"])
    .settle_ms(systems.settle_ms())
    .build()?)
}

/// Deliveries: audited ERP `SAL_OUTSTOCK` → the CRM order it ships (carriage number, shipped
/// quantity, 已发货) and one message to the order's owner.
pub fn deliveries(systems: &Systems) -> Result<Flow, BoxError> {
    // The audit is the event: an outbound saved before one run and audited after it keeps its
    // FModifyDate, but gets a new FApproveDate.
    let source = FormSource::new(
        systems.k3cloud.clone(),
        FormSourceConfig::new("SAL_OUTSTOCK")
            .modified_field("FApproveDate")
            .fields(["FBillNo", "FDate", "FCarriageNO", "FCustomerID.FNumber"])
            .entry(
                "FEntity",
                [
                    "FEntity_FEntryID",
                    "FMaterialID.FNumber",
                    "FRealQty",
                    "FSoorDerno",
                ],
            )
            .filter("FDocumentStatus = 'C'"),
    );
    let sink = ObjectSink::new(
        systems.fxiaoke.clone(),
        ObjectSinkConfig::new(
            "SalesOrderObj",
            SinkMode::UpdateExisting {
                id_field: "_id".into(),
            },
        )
        .trigger_workflow(false)
        // Sent once per delivery: a message cannot be looked up, so it is never resent.
        .notify(Notification {
            action: "notify".into(),
            title: "发货通知".into(),
            text: "您的订单 {name} 已发货，物流单号：{field_express_no__c}，发货数量：{field_shipped_qty__c}"
                .into(),
        }),
    );
    Ok(Flow::builder(
        "deliveries",
        Arc::new(source),
        mapping("delivery.toml")?,
        Arc::new(sink),
    )
    .depends_on("orders")
    .actions(["notify"])
    .settle_ms(systems.settle_ms())
    .build()?)
}
