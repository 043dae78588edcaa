//! Typed async client for the Fxiaoke (纷享销客 / ShareCRM) OpenAPI.
//!
//! - **Token**: the corp access token is fetched when first needed, single-flight (a thousand
//!   concurrent first calls make one token request), replaced ahead of expiry within the
//!   vendor's reuse window, kept within the vendor's 10 fetches a minute, shared through a
//!   pluggable [`TokenCache`], and put into every body with the corp id and the operator
//!   (`currentOpenUserId`). A refused token (20016) is replaced once and the call resent once.
//! - **CRM data**: query (every filter operator, orders, projection), a [`Pager`] that reads
//!   every row past the 10,000-row offset cap, get, create with detail records (an order and
//!   its lines in one call), update, invalid, delete, recover, change owner — standard and
//!   custom (`__c`) objects routed to their paths; typed models in [`types`].
//! - **Metadata, org directory, messages**: object list and describe (with a mapping check),
//!   users and departments, text and card messages; [`Client::raw`] for anything else.
//! - **Errors**: one [`Error`] that keeps `errorCode`, `errorMessage`, `traceId` and the raw
//!   body, with kinds for the codes that need different handling. Writes are never resent once
//!   they may have reached the server: that is [`Error::OutcomeUnknown`].
//!
//! ```no_run
//! use fxiaoke_sdk::{Client, Filter, RateLimit};
//! use fxiaoke_sdk::types::{SalesOrderObj, SalesOrderProductObj};
//!
//! # async fn run() -> Result<(), fxiaoke_sdk::Error> {
//! let client = Client::builder()
//!     .app_id("FSAID_1000001")
//!     .app_secret(std::env::var("FXIAOKE_APP_SECRET").unwrap_or_default())
//!     .permanent_code(std::env::var("FXIAOKE_PERMANENT_CODE").unwrap_or_default())
//!     .operator("FSUID_0123456789ABCDEF0123456789ABCDEF")
//!     .rate_limit(RateLimit::vendor_default())
//!     .build()?;
//!
//! // Every order changed since a point in time, however many.
//! let orders: Vec<SalesOrderObj> = client
//!     .query("SalesOrderObj")
//!     .filter(Filter::gte("last_modified_time", 1_716_000_000_000_i64))
//!     .order_by("last_modified_time", true)
//!     .all()
//!     .await?;
//!
//! // An order with its lines, in one call.
//! let created = client
//!     .create("SalesOrderObj")
//!     .object_data(serde_json::json!({
//!         "account_id": "5dc4cefa038eaa0001c0586f",
//!         "owner": ["FSUID_0123456789ABCDEF0123456789ABCDEF"],
//!     }))
//!     .details("SalesOrderProductObj", [SalesOrderProductObj {
//!         product_id: Some("5f0ff4299b09cb000129d9a1".into()),
//!         quantity: Some("2".into()),
//!         ..Default::default()
//!     }])
//!     .trigger_approval_flow(false)
//!     .send()
//!     .await?;
//! # let _ = (orders, created);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod auth;
mod client;
mod clock;
mod crm;
pub mod de;
mod error;
#[cfg(test)]
mod fuzz;
mod limit;
mod message;
mod meta;
mod org;
mod query;
mod raw;
mod response;
pub mod retry;
mod transport;
pub mod types;

pub use auth::{
    CacheError, CorpToken, MemoryTokenCache, RefreshGuard, TokenCache, TokenKey, TokenPolicy,
};
pub use client::{Client, ClientBuilder, DEFAULT_BASE_URL};
pub use clock::{Clock, SystemClock, TokioClock};
pub use crm::{
    ChangeOwner, Create, Delete, FindOne, Get, Invalid, InvalidMany, Recover, Update, WriteResult,
    is_custom_object,
};
pub use error::{ApiError, Error, ErrorCode, Result};
pub use limit::{RateLimit, RateLimiter};
pub use message::{Composite, MAX_RECIPIENTS, Message};
pub use meta::{
    Describe, FieldDescribe, FieldProblem, FieldType, ObjectDescribe, ObjectList, ObjectSummary,
    SelectOption,
};
pub use org::{
    Department, DepartmentList, MAX_USERS_PAGE_SIZE, User, UserByMobile, UserGet, UserList,
    UserSimpleList, UsersChanged, UsersPage,
};
pub use query::{
    Filter, MAX_LIMIT, MAX_OFFSET, Operator, Order, Pager, PagingMode, Query, QueryPage,
};
pub use raw::RawCall;
pub use retry::RetryPolicy;

// The README's program is compiled with the doctests, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
