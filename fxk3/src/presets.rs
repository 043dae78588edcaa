//! The three standard flows' connector settings, in one place: `fxk3` builds its flows from
//! them (adding what the configuration file says), and the repository's `examples/` compose
//! the same presets in plain code.
//!
//! ```
//! use sync_core::k3cloud::{AuditedEdits, Cancellations};
//!
//! let source = fxk3::presets::orders_source("SalesOrderObj", true);
//! let sink = fxk3::presets::orders_sink(
//!     "SAL_SaleOrder",
//!     "SAL_OUTSTOCK",
//!     AuditedEdits::Refuse,
//!     Cancellations::CloseOrDelete,
//!     true,
//! );
//! assert_eq!(fxk3::presets::ORDER_ACTIONS, ["Submit", "Audit"]);
//! # let _ = (source, sink);
//! ```

use fxiaoke_sdk::Filter;
use sync_core::fxiaoke::{Notification, ObjectSinkConfig, ObjectSourceConfig, SinkMode};
use sync_core::k3cloud::{
    AuditedEdits, BillLifecycle, Cancellations, FormSinkConfig, ShipmentSourceConfig, UpdatePolicy,
};

/// The ERP customer field a customers mapping sets from the account's `life_status` (`B`
/// when invalidated, 作废) for the account's lifecycle to reach the ERP.
pub const CUSTOMER_FORBID_FIELD: &str = "FForbidStatus";

/// The CRM accounts read by the customers flow, each with its contacts under `contacts` (for
/// the ERP's contact entry). With `lifecycle`, invalidated accounts are read too, so that
/// their customers are forbidden (and enabled again when they are recovered); without, only
/// accounts in use.
pub fn customers_source(object: &str, lifecycle: bool) -> ObjectSourceConfig {
    let config = ObjectSourceConfig::new(object)
        .filter(life_status(lifecycle))
        .related("ContactObj", "account_id", "contacts")
        .watch_details();
    if lifecycle {
        config.invalidated_details()
    } else {
        config
    }
}

/// Records in use, and invalidated ones too with `lifecycle`.
fn life_status(lifecycle: bool) -> Filter {
    // Naming `life_status` in a filter is also what makes invalidated records visible to a
    // query (the simulators' reading of the recycle bin; not confirmed on a live tenant).
    if lifecycle {
        Filter::is_in("life_status", ["normal", "invalid"])
    } else {
        Filter::eq("life_status", "normal")
    }
}

/// The ERP customers form: a changed customer updates only the mapped fields; its entry rows
/// (contacts) are replaced only when `replace_entries`, else the ERP's own rows are kept. With
/// `lifecycle`, [`CUSTOMER_FORBID_FIELD`] forbids or enables the customer after its save
/// (an account invalidated before it reached the ERP is not created).
pub fn customers_sink(form: &str, replace_entries: bool, lifecycle: bool) -> FormSinkConfig {
    let config = FormSinkConfig::new(form, "FCUSTID", "FNumber")
        .update_policy(UpdatePolicy::MappedFields { replace_entries });
    if lifecycle {
        config.forbid_status_field(CUSTOMER_FORBID_FIELD)
    } else {
        config
    }
}

/// The CRM field the customers flow writes the ERP number back to.
pub const CUSTOMER_NUMBER_FIELD: &str = "field_erp_no__c";

/// The ERP order field an orders mapping sets from the order's `life_status` (`B` when
/// invalidated, 作废) for cancellations to reach the ERP. It is not saved: it says whether the
/// ERP order is closed or deleted (see [`orders_sink`]).
pub const ORDER_CANCEL_FIELD: &str = "FCancelStatus";

/// The ERP order-line field an orders mapping fills with the CRM line's `_id` (a custom field
/// of `FSaleOrderEntry`): an edit then updates the ERP rows of the lines it finds, by their
/// entry ids, instead of replacing the rows.
pub const ORDER_LINE_KEY_FIELD: &str = "F_CRM_LineId";

/// The ERP order form's line entry.
pub const ORDER_ENTRY: &str = "FSaleOrderEntry";

/// The CRM orders read by the orders flow, with their lines under
/// `details.SalesOrderProductObj` and each line's product code and name (the ERP wants the
/// product code, 物料编码; lines name the product by id). With `lifecycle`, invalidated orders
/// are read too, so that their ERP orders are closed or deleted.
pub fn orders_source(object: &str, lifecycle: bool) -> ObjectSourceConfig {
    let config = ObjectSourceConfig::new(object)
        .filter(life_status(lifecycle))
        .related(
            "SalesOrderProductObj",
            "order_id",
            "details.SalesOrderProductObj",
        )
        .expand(
            "details.SalesOrderProductObj",
            "product_id",
            "ProductObj",
            ["product_code", "name"],
        )
        .watch_details();
    if lifecycle {
        config.invalidated_details()
    } else {
        config
    }
}

/// The ERP sales orders form. An edit saves the mapped fields of an order not yet audited;
/// an audited one follows `audited` (refused by default), one with an outbound (`outbound`
/// form) is never edited; an order invalidated in the CRM follows `cancelled` (see
/// [`BillLifecycle`]). With `match_lines`, the mapping fills [`ORDER_LINE_KEY_FIELD`] and
/// edits keep the ERP rows of the lines they find.
pub fn orders_sink(
    form: &str,
    outbound: &str,
    audited: AuditedEdits,
    cancelled: Cancellations,
    match_lines: bool,
) -> FormSinkConfig {
    let mut lifecycle = BillLifecycle::new(ORDER_CANCEL_FIELD)
        .audited_edits(audited)
        .cancellations(cancelled)
        .downstream(outbound, "FSoorDerno", "FEntity");
    if match_lines {
        lifecycle = lifecycle.lines(ORDER_ENTRY, ORDER_LINE_KEY_FIELD);
    }
    FormSinkConfig::new(form, "FID", "FBillNo").bill_lifecycle(lifecycle)
}

/// What the orders flow does to each new ERP order.
pub const ORDER_ACTIONS: [&str; 2] = ["Submit", "Audit"];

/// What the ERP outbounds (`outbound` form, `SAL_OUTSTOCK`) shipped of each order (`order`
/// form, `SAL_SaleOrder`), read by the deliveries flow: one record per order whose outbounds
/// changed (audited, un-audited, edited), cumulative over all its audited outbounds, per order
/// line by the line's [`ORDER_LINE_KEY_FIELD`] (see [`ShipmentSource`](sync_core::k3cloud::ShipmentSource)).
pub fn deliveries_source(outbound: &str, order: &str) -> ShipmentSourceConfig {
    ShipmentSourceConfig::new(outbound, order, ORDER_ENTRY).line_key(ORDER_LINE_KEY_FIELD)
}

/// The title of the message a delivery sends to the order's owner.
pub const DELIVERY_TITLE: &str = "发货通知";
/// Its text; `{field}` takes the CRM order's field. The same message tells of a shipment and
/// of one taken back (an outbound un-audited in the ERP).
pub const DELIVERY_TEXT: &str = "您的订单 {name} 发货情况有更新：累计发货 {field_shipped_qty__c}，物流单号：{field_express_no__c}";

/// The CRM orders the deliveries flow updates (by the `_id` the mapping found), with their
/// lines (`update_details`), sending one message per change of what an order shipped as its
/// `notify` action — at most once: a message cannot be looked up.
pub fn deliveries_sink(object: &str, title: &str, text: &str) -> ObjectSinkConfig {
    ObjectSinkConfig::new(
        object,
        SinkMode::UpdateExisting {
            id_field: "_id".into(),
        },
    )
    .trigger_workflow(false)
    .update_details("SalesOrderProductObj")
    // An order whose outbounds are saved but not audited has shipped nothing yet.
    .first_write_needs("field_erp_bill_no__c")
    .notify(Notification {
        action: "notify".into(),
        title: title.into(),
        text: text.into(),
    })
}

/// The deliveries flow's action.
pub const DELIVERY_ACTIONS: [&str; 1] = ["notify"];
