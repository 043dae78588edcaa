//! Typed async client for the Kingdee K3Cloud (金蝶云星空) WebAPI.
//!
//! - **Auth**: signed headers (`X-Api-*`/`X-Kd-*`, the default) or a session login
//!   (`ValidateUser`, `LoginByAppSecret`, `LoginBySign`) with a per-client cookie jar; logins are
//!   lazy and single-flight, and a lost session is replaced once, transparently.
//! - **Operations**: Save, BatchSave (a result per row), Draft, Submit, Audit, UnAudit, Delete,
//!   View, Push, ExcuteOperation, Allocate, WorkflowAudit, metadata, reports, attachments —
//!   each a typed builder ending in `.send().await` — and [`Client::call_raw`] for anything else.
//! - **Queries**: ExecuteBillQuery/BillQuery rows decoded into your own types by field key, a safe
//!   [`Filter`] builder, and a [`Pager`] that reads every row whatever the server's page cap.
//! - **Errors**: one [`Error`] that keeps MsgCode, every `Errors[]` entry and the raw body.
//!   Writes are never resent after they were sent without an answer: that is
//!   [`Error::OutcomeUnknown`], so that you can look before writing again.
//!
//! ```no_run
//! use k3cloud_sdk::{Auth, Client};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), k3cloud_sdk::Error> {
//! let client = Client::builder("https://erp.example.com/k3cloud/")
//!     .account("5db25ac8d2b819")
//!     .user("webapi")
//!     .auth(Auth::signed(
//!         std::env::var("K3_APP_ID").unwrap_or_default(),
//!         std::env::var("K3_APP_SECRET").unwrap_or_default(),
//!     ))
//!     .build()?;
//!
//! let saved = client
//!     .save("SAL_SaleOrder")
//!     .model(json!({
//!         "FBillTypeID": {"FNUMBER": "XSDD01_SYS"},
//!         "FDate": "2024-01-15 00:00:00",
//!         "FSaleOrgId": {"FNumber": "100"},
//!         "FCustId": {"FNumber": "CUST0001"},
//!         "FSaleOrderEntry": [{"FMaterialId": {"FNumber": "MAT0001"}, "FQty": 10, "FTaxPrice": 11.3}],
//!     }))
//!     .send()
//!     .await?;
//! client.submit("SAL_SaleOrder").numbers([saved.number.as_str()]).send().await?;
//! client.audit("SAL_SaleOrder").numbers([saved.number.as_str()]).send().await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod async_task;
mod attachment;
mod auth;
mod client;
mod clock;
pub mod de;
#[cfg(test)]
mod decode_props;
mod error;
mod form;
#[cfg(test)]
mod fuzz;
mod generic;
mod limit;
mod meta;
mod query;
mod raw;
mod report;
mod response;
pub mod retry;
mod service;
mod transport;
mod workflow;

pub use async_task::AsyncTask;
pub use attachment::Attachment;
pub use auth::{Auth, AuthMode, LoginInfo};
pub use client::{Client, ClientBuilder};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{BusinessError, Error, ErrorEntry, MsgCode, Result, SuccessEntity};
pub use form::{
    Allocate, BatchSave, BatchSaveResult, Operation, OperationKind, OperationResult, Push,
    PushResult, Save, SaveResult, View, ViewResult,
};
pub use generic::{CallResult, FormCall};
pub use limit::{Permit, RateLimit, RateLimiter};
pub use meta::{DataCenter, EntryMetadata, FieldMetadata, FormMetadata, LocalizedText};
pub use query::{
    Compare, DEFAULT_LIMIT, Filter, FilterItem, FilterString, FilterValue, IntoFilter, MAX_LIMIT,
    Pager, Query,
};
pub use raw::RawCall;
pub use report::{ReportPage, ReportQuery};
pub use response::{ResponseStatus, RowResult};
pub use retry::RetryPolicy;
pub use workflow::{Approval, WorkflowAudit, WorkflowResult};

/// The README's examples, compiled as doctests so that they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
