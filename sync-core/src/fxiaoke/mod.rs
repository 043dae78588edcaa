//! Connectors over [`fxiaoke_sdk`] (feature `fxiaoke`): an object [`Source`](crate::Source)
//! that reads changed CRM records by `last_modified_time` (with their detail lines and
//! referenced records), an object [`Sink`](crate::Sink) that creates or updates CRM records and
//! can notify their owners, a message sink, and a [`SourceWriteBack`](crate::SourceWriteBack) that writes the
//! ERP number into a CRM field.
//!
//! ```no_run
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use sync_core::fxiaoke::{ObjectSource, ObjectSourceConfig};
//!
//! let client = fxiaoke_sdk::Client::builder()
//!     .app_id("FSAID_…")
//!     .app_secret(std::env::var("FXIAOKE_APP_SECRET").unwrap_or_default())
//!     .permanent_code(std::env::var("FXIAOKE_PERMANENT_CODE").unwrap_or_default())
//!     .operator("FSUID_…")
//!     .build()?;
//! let orders = ObjectSource::new(
//!     client,
//!     ObjectSourceConfig::new("SalesOrderObj")
//!         .related("SalesOrderProductObj", "order_id", "details.SalesOrderProductObj")
//!         .expand("details.SalesOrderProductObj", "product_id", "ProductObj", ["product_code"]),
//! );
//! # let _ = orders; Ok(()) }
//! ```

mod convert;
mod messages;
mod sink;
mod source;
mod write_back;

pub use messages::MessageSink;
pub use sink::{Notification, ObjectSink, ObjectSinkConfig, SinkMode};
pub use source::{ObjectSource, ObjectSourceConfig};
pub use write_back::ObjectWriteBack;
