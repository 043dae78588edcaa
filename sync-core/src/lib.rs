//! Correct, resumable syncs between systems of record — built for Fxiaoke (纷享销客) CRM and
//! Kingdee K3Cloud (金蝶云星空) ERP, but vendor-neutral.
//!
//! A [`Flow`] reads changed [`Record`]s from a [`Source`], maps them with a [`Mapping`] (Rust
//! code or a [`DeclarativeMapping`] file) and writes them to a [`Sink`] in batches. The
//! [`Engine`] keeps every step on record in a [`StateStore`] so that timeouts, crashes and
//! re-runs lose nothing and duplicate nothing:
//!
//! 1. it reads the window `[cursor - lookback, now - settle)` in `(modified_time, id)` order;
//! 2. skips records whose mapped payload did not change;
//! 3. records an intent before each write, and the ID-map entry with the cleared intent in one
//!    transaction after it;
//! 4. reconciles writes with an unknown outcome by natural key before sending them again;
//! 5. moves the cursor only past settled records;
//! 6. defers records whose references have not synced yet, then dead-letters them;
//! 7. keeps failures per record on a dead-letter list that one call re-runs;
//! 8. writes in batches with bounded concurrency;
//! 9. optionally writes the target number back to the source and runs post-save actions;
//! 10. offers a dry run that writes nothing.
//!
//! `docs/sync-model.md` in the repository explains the model; the crate's README has a
//! complete program.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use serde_json::json;
//! use sync_core::testing::{MemorySink, MemorySource};
//! use sync_core::{DeclarativeMapping, Engine, Flow, Record, SqliteStore};
//!
//! let crm = Arc::new(MemorySource::new());
//! crm.upsert(Record::new("6650a1", 1_716_000_000_000, json!({"name": "ACME", "account_no": "C001"})));
//! let erp = Arc::new(MemorySink::new());
//! let mapping = DeclarativeMapping::from_toml(r#"
//!     natural_key = "FNumber"
//!     [[fields]]
//!     target = "FNumber"
//!     source = "account_no"
//!     [[fields]]
//!     target = "FName"
//!     source = "name"
//! "#)?;
//! let flow = Flow::builder("customers", crm, Arc::new(mapping), erp.clone()).build()?;
//! let engine = Engine::new(Arc::new(SqliteStore::open_in_memory()?));
//! let report = engine.run(&flow).await?;
//! assert_eq!(report.counts.created, 1);
//! assert_eq!(erp.documents()[0].payload, json!({"FNumber": "C001", "FName": "ACME"}));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]

pub mod clock;
pub mod engine;
pub mod error;
pub mod flow;
#[cfg(feature = "fxiaoke")]
pub mod fxiaoke;
mod hash;
#[cfg(any(feature = "fxiaoke", feature = "k3cloud"))]
mod json;
#[cfg(feature = "k3cloud")]
pub mod k3cloud;
pub mod mapping;
pub mod metadata;
pub mod observer;
mod path;
pub mod record;
pub mod report;
pub mod sink;
pub mod source;
pub mod state;
pub mod testing;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Counts, Engine, Failure, PlannedWrite, RecordOutcome, RunReport};
pub use error::{ConnectorError, ConnectorErrorKind, Error, Result, System};
pub use flow::{Flow, FlowBuilder, FlowOptions};
pub use hash::payload_hash;
pub use mapping::{DeclarativeMapping, LookupBy, LookupKey, Lookups, MapError, Mapped, Mapping};
pub use observer::{NoopObserver, Observer, TracingObserver};
pub use record::{Position, Record};
pub use sink::{ActionOutcome, Sink, TargetRef, WriteItem, WriteOutcome};
pub use source::{
    Page, PageRequest, Source, SourceWriteBack, Window, WriteBackItem, WriteBackOutcome,
};
pub use state::{MemoryStore, SqliteStore, StateStore};

/// The README's program, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
