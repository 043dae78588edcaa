//! Durable state: cursors, the ID map, intents, deferrals, dead letters, run history, leases.
//!
//! Everything the engine must not forget goes through [`StateStore`]. Changes made for one
//! batch are applied together by [`StateStore::apply`] in one transaction, so that an ID-map
//! entry and the clearing of its intent (rule 3) — and the cursor that moves past them (rule 5)
//! — are never half-written.

mod memory;
mod sqlite;
mod types;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
pub use types::{
    Changes, Cursor, DeadLetter, Deferral, IdMapEntry, Intent, IntentOp, KeyState, Lease,
    PendingSend, RunKind, RunRecord, Stage, WRITE_BACK,
};

use crate::error::Result;
use async_trait::async_trait;
use std::collections::HashMap;

/// Where a flow's state lives.
///
/// Implemented by [`MemoryStore`] (tests) and [`SqliteStore`] (the embedded default). Every
/// method takes the flow name; flows never see each other's state except through
/// [`id_map_get_many`](StateStore::id_map_get_many), which mappings use for lookups.
///
/// ```
/// # tokio_test_block_on(async {
/// use sync_core::state::{Changes, Cursor, MemoryStore, StateStore};
///
/// let store = MemoryStore::new();
/// let lease = store.acquire_lease("customers", "worker-1", 0, 60_000).await?;
/// let changes = Changes { cursor: Some(Cursor { version: 42, key: None }), ..Changes::default() };
/// store.apply(&lease, &changes).await?;
/// assert_eq!(store.cursor("customers").await?.map(|c| c.version), Some(42));
/// # Ok::<(), sync_core::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Takes (or renews, for the same owner) the flow's lease until `now_ms + ttl_ms`. Fails
    /// with [`Error::FlowLocked`](crate::Error::FlowLocked) while another owner holds an
    /// unexpired lease.
    async fn acquire_lease(
        &self,
        flow: &str,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Lease>;

    /// Gives the lease up (only if still held by its owner).
    async fn release_lease(&self, lease: &Lease) -> Result<()>;

    /// The flow's committed cursor.
    async fn cursor(&self, flow: &str) -> Result<Option<Cursor>>;

    /// Everything known about each key, in the order of `keys`.
    async fn lookup(&self, flow: &str, keys: &[String]) -> Result<Vec<KeyState>>;

    /// ID-map entries for the keys that have one (used for lookups from other flows).
    async fn id_map_get_many(
        &self,
        flow: &str,
        keys: &[String],
    ) -> Result<HashMap<String, IdMapEntry>>;

    /// Up to `limit` ID-map entries in source-key order, after `after` (a sweep walks them
    /// all).
    async fn id_map_page(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdMapEntry>>;

    /// The ID-map entry pointing at a target id (the reverse direction).
    async fn id_map_by_target(&self, flow: &str, target_id: &str) -> Result<Option<IdMapEntry>>;

    /// The ID-map entries whose targets have these numbers, keyed by number (the reverse
    /// direction: an ERP order number to the CRM order it was made from).
    async fn id_map_by_target_numbers(
        &self,
        flow: &str,
        numbers: &[String],
    ) -> Result<HashMap<String, IdMapEntry>>;

    /// Applies `changes` to the lease's flow in one transaction. Fails with
    /// [`Error::LeaseLost`](crate::Error::LeaseLost), changing nothing, when the lease is no
    /// longer held by its owner.
    async fn apply(&self, lease: &Lease, changes: &Changes) -> Result<()>;

    /// Pending intents: writes that were started and not settled.
    async fn intents(&self, flow: &str) -> Result<Vec<Intent>>;

    /// Sends of actions that must not be repeated, started and not settled (queued
    /// write-backs are not among them: see [`queued`](Self::queued)).
    async fn sends(&self, flow: &str) -> Result<Vec<PendingSend>>;

    /// The first `limit` follow-ups of `action` on record (the write-back queue, action
    /// [`WRITE_BACK`]), by source key.
    async fn queued(&self, flow: &str, action: &str, limit: usize) -> Result<Vec<PendingSend>>;

    /// How many follow-ups of `action` are on record.
    async fn queued_count(&self, flow: &str, action: &str) -> Result<u64>;

    /// The dead letters of at most `limit` source keys (all stages of each), ordered by source
    /// key and stage, starting after the key `after`.
    async fn dead_letters(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>>;

    /// Deferred records ordered by source key, starting after `after`.
    async fn deferrals(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Deferral>>;

    /// Appends a run to the history.
    async fn record_run(&self, run: &RunRecord) -> Result<()>;

    /// The latest runs of a flow, newest first.
    async fn runs(&self, flow: &str, limit: usize) -> Result<Vec<RunRecord>>;
}
