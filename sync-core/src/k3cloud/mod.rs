//! Connectors over [`k3cloud_sdk`] (feature `k3cloud`): a form [`Sink`](crate::Sink) that saves
//! documents with BatchSave, and a form [`Source`](crate::Source) that reads changed documents
//! with ExecuteBillQuery.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use sync_core::k3cloud::{FormSink, FormSinkConfig, UpdatePolicy};
//!
//! let client = k3cloud_sdk::Client::builder("https://erp.example.com/k3cloud/")
//!     .account("5db25ac8d2b819")
//!     .user("webapi")
//!     .auth(k3cloud_sdk::Auth::signed("…", "…"))
//!     .build()?;
//! let customers = FormSink::new(
//!     client,
//!     FormSinkConfig::new("BD_Customer", "FCUSTID", "FNumber")
//!         .update_policy(UpdatePolicy::MappedFields { replace_entries: true }),
//! );
//! # let _ = Arc::new(customers);
//! # Ok(()) }
//! ```

mod bill;
mod convert;
mod shipments;
mod sink;
mod source;

pub use bill::{AuditedEdits, BillLifecycle, Cancellations};
pub use shipments::{ShipmentSource, ShipmentSourceConfig};
pub use sink::{FormSink, FormSinkConfig, UpdatePolicy};
pub use source::{FormSource, FormSourceConfig};
